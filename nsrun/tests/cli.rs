//! Black-box tests of nsrun's command line that need no container: usage
//! errors, unknown ids, the idempotent `delete --force`, `list` of an empty
//! root, bad configs. Containers are exercised in tests/tests/nsrun.rs.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Root(PathBuf);

impl Root {
    fn new(tag: &str) -> Root {
        let p = std::env::temp_dir().join(format!("nsrun-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Root(p)
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nsrun"))
            .arg("--root")
            .arg(self.0.join("state"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn one_line_error(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(e.starts_with("nsrun: "), "{e:?}");
    e
}

#[test]
fn unknown_container_is_a_clear_error() {
    let r = Root::new("unknown");
    for args in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope"],
        &["delete", "nope"],
        &["exec", "nope", "--", "true"],
    ] {
        let o = r.run(args);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(
            one_line_error(&o).contains("\"nope\" does not exist"),
            "{args:?}"
        );
    }
}

#[test]
fn delete_force_of_an_unknown_id_succeeds() {
    let r = Root::new("delf");
    let o = r.run(&["delete", "--force", "nope"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // as runc: nothing on stdout
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn an_error_goes_to_the_log_file_as_json() {
    let r = Root::new("log");
    let log = std::env::temp_dir().join(format!("nsrun-log-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let o = r.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert_eq!(code(&o), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("\"nope\" does not exist"),
        "{v}"
    );
    assert!(one_line_error(&o).contains("\"nope\" does not exist"));
}

#[test]
fn features_and_version_answer() {
    let r = Root::new("feat");
    let o = r.run(&["features"]);
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    assert!(v["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    let o = r.run(&["--version"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("spec: 1.0.2"));
}

#[test]
fn list_of_an_empty_root_is_an_empty_array() {
    let r = Root::new("list");
    let o = r.run(&["list"]);
    assert_eq!(code(&o), 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

#[test]
fn bad_ids_and_signals_are_usage_errors() {
    let r = Root::new("usage");
    for id in ["../x", "-x", "a/b", ""] {
        let o = r.run(&["state", "--", id]);
        assert_eq!(code(&o), 2, "{id:?}");
    }
    let o = r.run(&["kill", "abc", "NOSIG"]);
    assert_eq!(code(&o), 2);
    one_line_error(&o);
    assert_eq!(code(&r.run(&["frobnicate"])), 2);
    assert_eq!(code(&r.run(&["exec", "abc"])), 2, "exec needs a command");
}

#[test]
fn bad_configs_fail_before_any_state_is_made() {
    let r = Root::new("cfg");
    let bundle = r.0.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let b = bundle.to_str().unwrap();
    let cases: [(&str, &str); 4] = [
        ("{ nope", "parse config"),
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":[]},"linux":{"namespaces":[{"type":"mount"}]}}"#,
            "process.args",
        ),
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"missing"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["true"]},"linux":{"namespaces":[{"type":"mount"}]}}"#,
            "root.path",
        ),
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["true"]},"linux":{"namespaces":[{"type":"mount"}],"intelRdt":{}}}"#,
            "linux.intelRdt",
        ),
    ];
    for (cfg, needle) in cases {
        std::fs::write(bundle.join("config.json"), cfg).unwrap();
        let o = r.run(&["create", "--bundle", b, "c1"]);
        assert_eq!(
            code(&o),
            2,
            "{needle}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(one_line_error(&o).contains(needle), "{needle}");
        let left = std::fs::read_dir(r.0.join("state"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "state left by a bad config");
    }
}

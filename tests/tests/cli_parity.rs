//! End-to-end: docker CLI parity (issue 14): `--format` templates, `ps`
//! and `images` filters, the missing commands and run flags, checked
//! against docker's documented output and exit codes.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root};

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn ps_format_templates_and_tables() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_exit_code(
        &d.run(&[
            "run",
            "--network",
            "none",
            "--name",
            "three",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]),
        3,
    );
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "web");
    assert_eq!(d.ok(&["ps", "--format", "{{.ID}}"]), &id[..12]);
    assert_eq!(d.ok(&["ps", "--no-trunc", "--format", "{{.ID}}"]), id);
    assert_eq!(
        d.ok(&["ps", "--format", "{{.State}} {{.Image}}"]),
        "running busybox"
    );
    // table: docker's header names, tabwriter alignment (min 10, pad 3)
    let t = d.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
    assert_eq!(
        lines(&t),
        vec!["NAMES     STATE", "three     exited", "web       running"],
        "{t}"
    );
    // json: one object per line with docker's keys
    let j = d.ok(&["ps", "--format", "{{json .}}"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["Names"], "web");
    assert_eq!(v["State"], "running");
    assert_eq!(v["Command"], "\"sleep 60\"");
    for k in [
        "ID",
        "Image",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Ports",
        "Labels",
        "Mounts",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(d.ok(&["ps", "--format", "json"]), j);
    // an unknown field is docker's template error, exit 1, nothing printed
    let out = d.run(&["ps", "--format", "{{.Nope}}"]);
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out).trim(),
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
    let out = d.run(&["ps", "--format", "{{.ID"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("unclosed action"), "{}", stderr(&out));
    // the default table is docker's columns
    let ps = d.ok(&["ps"]);
    let head = ps.lines().next().unwrap();
    let cols: Vec<&str> = head
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        cols,
        vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
}

#[test]
fn ps_filters_and_last() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web1",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "60",
    ]);
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "job0",
        "busybox",
        "true",
    ]);
    assert_exit_code(
        &d.run(&[
            "run",
            "--network",
            "none",
            "--name",
            "job3",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]),
        3,
    );
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = d.ok(&a).lines().map(String::from).collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names(&[]), "web1");
    assert_eq!(names(&["-a"]), "job0,job3,web1");
    assert_eq!(names(&["-a", "-f", "name=job"]), "job0,job3");
    assert_eq!(names(&["-a", "-f", "name=^job0$"]), "job0");
    assert_eq!(
        names(&["-a", "-f", "name=job0", "-f", "name=web1"]),
        "job0,web1"
    );
    // status implies -a; keys combine with AND
    assert_eq!(names(&["-f", "status=exited"]), "job0,job3");
    assert_eq!(names(&["-a", "-f", "exited=3"]), "job3");
    assert_eq!(names(&["-f", "status=exited", "-f", "exited=0"]), "job0");
    assert_eq!(names(&["-a", "-f", "label=tier"]), "web1");
    assert_eq!(names(&["-a", "-f", "label=tier=front"]), "web1");
    assert_eq!(names(&["-a", "-f", "label=tier=back"]), "");
    assert_eq!(names(&["-a", "-f", "ancestor=busybox"]), "job0,job3,web1");
    assert_eq!(names(&["-a", "-f", "ancestor=alpine"]), "");
    let web_id = d.ok(&["ps", "-q", "-f", "name=web1"]);
    assert_eq!(names(&["-f", &format!("id={web_id}")]), "web1");
    // -n / -l: the newest, whatever their state
    assert_eq!(d.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]), "job3");
    assert_eq!(d.ok(&["ps", "-l", "--format", "{{.Names}}"]), "job3");
    assert_eq!(names(&["-n", "2"]), "job0,job3");
    // bad filters: docker's daemon errors, exit 1
    let out = d.run(&["ps", "-f", "bogus=1"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: invalid filter 'bogus'"
    );
    let out = d.run(&["ps", "-f", "status=sleepy"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("invalid filter 'status=sleepy'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn images_format_filters_and_no_trunc() {
    require_root!();
    let d = Docker::new();
    let img = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(img, "busybox:latest");
    let short = d.ok(&["images", "-q"]);
    assert_eq!(short.len(), 12, "{short}");
    let full = d.ok(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        full.starts_with("sha256:") && full.len() == 71 && full[7..].starts_with(&short),
        "{full}"
    );
    let t = d.ok(&["images"]);
    assert!(
        t.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{t}"
    );
    let t = d.ok(&["images", "--digests"]);
    assert!(t.lines().next().unwrap().contains("DIGEST"), "{t}");
    assert!(t.lines().nth(1).unwrap().contains("<none>"), "{t}");
    assert_eq!(d.ok(&["images", "-f", "dangling=true", "-q"]), "");
    assert_eq!(d.ok(&["images", "-f", "dangling=false", "-q"]), short);
    assert_eq!(d.ok(&["images", "-f", "reference=busy*", "-q"]), short);
    assert_eq!(d.ok(&["images", "-f", "reference=alp*", "-q"]), "");
    assert_eq!(d.ok(&["images", "-q", "busybox"]), short);
    assert_eq!(d.ok(&["images", "-q", "busybox:latest"]), short);
    assert_eq!(d.ok(&["images", "-q", "alpine"]), "");
    let j: serde_json::Value =
        serde_json::from_str(&d.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(j["Repository"], "busybox");
    assert_eq!(j["Tag"], "latest");
    let out = d.run(&["images", "-f", "dangling=maybe"]);
    assert_exit_code(&out, 1);
    let out = d.run(&["images", "--format", "{{.Nope}}"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("can't evaluate field Nope"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_format_and_image_fallback() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "running"
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.Name}} {{.State.Running}}", "web"]),
        "/web true"
    );
    let st: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "-f", "{{json .State}}", "web"])).unwrap();
    assert_eq!(st["Status"], "running");
    // a map: a missing key is <no value>, as docker's fallback prints
    assert_eq!(d.ok(&["inspect", "-f", "{{.Nope}}", "web"]), "<no value>");
    // docker indents inspect output by four spaces
    assert!(d.ok(&["inspect", "web"]).starts_with("[\n    {"));
    // images: `inspect` falls back to them, `image inspect` has docker's keys
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "busybox"])).unwrap();
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", "busybox"])).unwrap();
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
    ] {
        assert!(v[0].get(k).is_some(), "{k} missing: {v}");
    }
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Os}}", "busybox"]),
        "linux"
    );
    let out = d.run(&["inspect", "--type", "container", "busybox"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("No such container: busybox"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["inspect", "nosuch"]);
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).trim(), "Error: No such object: nosuch");
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn network_and_volume_ls_formats() {
    require_root!();
    let d = Docker::new();
    d.ok(&["volume", "create", "vol1"]);
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]),
        "vol1 local"
    );
    assert_eq!(
        lines(&d.ok(&["volume", "ls"])),
        vec!["DRIVER    VOLUME NAME", "local     vol1"]
    );
    d.ok(&["volume", "rm", "vol1"]);
    let n = d.ok(&["network", "ls"]);
    assert!(n.starts_with("NETWORK ID"), "{n}");
    assert!(n.lines().next().unwrap().ends_with("SCOPE"), "{n}");
    d.ok(&["network", "create", "pnet"]);
    assert!(lines(&d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}"
    ]))
    .contains(&"pnet bridge local"));
    assert!(lines(&d.ok(&["network", "ls", "-q"])).contains(&"pnet"));
    let out = d.run(&["network", "ls", "--format", "{{.Bogus}}"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("can't evaluate field Bogus"),
        "{}",
        stderr(&out)
    );
}

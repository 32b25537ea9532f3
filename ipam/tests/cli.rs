//! Black-box tests of the ipam binary: CNI protocol and human subcommands.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipam");

fn conf(name: &str, subnet: &str, data_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "netbr",
        "unknownField": {"tolerated": true},
        "ipam": {"type": "ipam", "subnet": subnet, "dataDir": data_dir},
    })
    .to_string()
}

fn cni(cmd: &str, id: &str, args: Option<&str>, stdin: &str) -> Output {
    let mut c = Command::new(BIN);
    c.env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/dev/null")
        .env("CNI_PATH", "/nonexistent");
    if let Some(a) = args {
        c.env("CNI_ARGS", a);
    }
    pipe(&mut c, stdin)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ls(dir: &Path, net: &str) -> Value {
    let out = Command::new(BIN)
        .arg("ls")
        .arg(net)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    json(&out)
}

#[test]
fn add_returns_cni_result_and_del_releases() {
    let d = TempDir::new("ipam");
    let c = conf("n1", "10.22.0.0/16", d.path());
    let out = cni("ADD", "c1", None, &c);
    assert_exit_code(&out, 0);
    let r = json(&out);
    assert_eq!(r["cniVersion"], "1.0.0");
    assert_eq!(r["ips"][0]["address"], "10.22.0.2/16");
    assert_eq!(r["ips"][0]["gateway"], "10.22.0.1");
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    assert!(d.path().join("n1").exists());

    // CHECK sees it, ls lists it.
    assert_exit_code(&cni("CHECK", "c1", None, &c), 0);
    let l = ls(d.path(), "n1");
    assert_eq!(l["subnet"], "10.22.0.0/16");
    assert_eq!(l["allocations"][0]["ip"], "10.22.0.2");
    assert_eq!(l["allocations"][0]["id"], "c1");
    assert_eq!(l["allocations"][0]["ifname"], "eth0");

    // DEL twice succeeds; CHECK then fails with code 3.
    assert_exit_code(&cni("DEL", "c1", None, &c), 0);
    assert_exit_code(&cni("DEL", "c1", None, &c), 0);
    let out = cni("CHECK", "c1", None, &c);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(json(&out)["code"], 3);
    assert_eq!(
        ls(d.path(), "n1")["allocations"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn del_without_any_state_succeeds() {
    let d = TempDir::new("ipam");
    let out = cni(
        "DEL",
        "ghost",
        None,
        &conf("never", "10.1.0.0/24", &d.path().join("x")),
    );
    assert_exit_code(&out, 0);
    assert!(out.stdout.is_empty());
    assert!(
        !d.path().join("x").exists(),
        "DEL of nothing must not create state"
    );
}

#[test]
fn requested_ip_is_honoured_then_refused_when_taken() {
    let d = TempDir::new("ipam");
    let c = conf("n2", "10.23.0.0/24", d.path());
    let out = cni("ADD", "a", Some("IgnoreUnknown=1;IP=10.23.0.77"), &c);
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["ips"][0]["address"], "10.23.0.77/24");

    let out = cni("ADD", "b", Some("IP=10.23.0.77"), &c);
    assert_exit_code(&out, 1);
    let e = json(&out);
    assert_eq!(e["code"], 100);
    assert!(e["msg"].as_str().unwrap().contains("10.23.0.77"), "{e}");

    // The ips capability works too.
    let mut v: Value = serde_json::from_str(&c).unwrap();
    v["runtimeConfig"] = serde_json::json!({"ips": ["10.23.0.88/24"]});
    let out = cni("ADD", "b", None, &v.to_string());
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["ips"][0]["address"], "10.23.0.88/24");
}

#[test]
fn exhausted_subnet_is_a_clear_cni_error() {
    let d = TempDir::new("ipam");
    // /29: .1 gateway, .2-.6 hosts.
    let c = conf("small", "10.24.0.0/29", d.path());
    for i in 0..5 {
        assert_exit_code(&cni("ADD", &format!("c{i}"), None, &c), 0);
    }
    let out = cni("ADD", "c5", None, &c);
    assert_exit_code(&out, 1);
    let e = json(&out);
    assert_eq!(e["code"], 101);
    assert!(
        e["msg"].as_str().unwrap().contains("no free address"),
        "{e}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ipam: "));
}

#[test]
fn fifty_concurrent_adds_get_distinct_addresses() {
    let d = TempDir::new("ipam");
    let c = conf("busy", "10.25.0.0/24", d.path());
    let mut kids = Vec::new();
    for i in 0..50 {
        let mut cmd = Command::new(BIN);
        cmd.env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", format!("c{i}"))
            .env("CNI_IFNAME", "eth0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(c.as_bytes()).unwrap();
        kids.push(child);
    }
    let mut seen = HashSet::new();
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert_exit_code(&out, 0);
        let addr = json(&out)["ips"][0]["address"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(seen.insert(addr.clone()), "{addr} handed out twice");
    }
    assert_eq!(seen.len(), 50);
    let l = ls(d.path(), "busy");
    let listed: HashSet<String> = l["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/24", a["ip"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, seen, "the file parses and holds exactly the 50");
}

#[test]
fn version_lists_supported_versions() {
    let out = cni("VERSION", "", None, "");
    assert_exit_code(&out, 0);
    let v = json(&out);
    assert!(v["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "1.0.0"));
}

#[test]
fn bad_config_is_code_7_exit_2() {
    let d = TempDir::new("ipam");
    let out = cni("ADD", "c", None, &conf("n", "10.0.0.0/40", d.path()));
    assert_exit_code(&out, 2);
    assert_eq!(json(&out)["code"], 7);
    let out = cni("ADD", "c", None, "{not json");
    assert_exit_code(&out, 2);
    assert_eq!(json(&out)["code"], 6);
    let out = cni("ADD", "c", None, &conf("../evil", "10.0.0.0/24", d.path()));
    assert_exit_code(&out, 2);
    assert_eq!(json(&out)["code"], 7);
}

#[test]
fn human_alloc_release_ls() {
    let d = TempDir::new("ipam");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--root")
            .arg(d.path())
            .output()
            .unwrap()
    };
    let out = run(&[
        "alloc",
        "--network",
        "h",
        "--subnet",
        "10.26.0.0/24",
        "--id",
        "x",
        "--ip",
        "10.26.0.9",
    ]);
    assert_exit_code(&out, 0);
    let a = json(&out);
    assert_eq!(a["address"], "10.26.0.9/24");
    assert_eq!(a["ifname"], "eth0");
    assert!(d.path().join("ipam/h").exists());
    let out = run(&[
        "alloc",
        "--network",
        "h",
        "--subnet",
        "10.26.0.0/24",
        "--id",
        "y",
        "--ip",
        "10.26.0.9",
    ]);
    assert_exit_code(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already allocated to x/eth0"));
    let out = run(&["ls", "h"]);
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["allocations"].as_array().unwrap().len(), 1);
    let out = run(&["release", "--network", "h", "--id", "x"]);
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["released"][0], "10.26.0.9");
    let out = run(&["release", "--network", "h", "--id", "x"]);
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["released"].as_array().unwrap().len(), 0);
    let out = run(&["ls", "nosuch"]);
    assert_exit_code(&out, 1);
    let out = run(&["alloc", "--network", "h", "--subnet", "bogus", "--id", "x"]);
    assert_exit_code(&out, 2);
}

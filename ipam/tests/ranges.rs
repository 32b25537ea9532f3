//! CNI 1.1 range sets, both families, GC and STATUS, black box.

use std::process::{Command, Output};

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ipam");

fn cni(cmd: &str, id: &str, args: Option<&str>, stdin: &Value) -> Output {
    let mut c = Command::new(BIN);
    c.env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/dev/null");
    if let Some(a) = args {
        c.env("CNI_ARGS", a);
    }
    pipe(&mut c, &stdin.to_string())
}

fn out_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// The shape of podman's default conflist's ipam, both families.
fn podman_conf(d: &std::path::Path) -> Value {
    json!({
        "cniVersion": "1.1.0", "name": "podman", "type": "netbr",
        "ipam": {
            "type": "ipam", "dataDir": d,
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
            "ranges": [
                [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}],
                [{"subnet": "fd89::/64", "gateway": "fd89::1"}]
            ]
        }
    })
}

#[test]
fn range_sets_give_one_address_per_family_and_del_releases_both() {
    let d = TempDir::new("ipam-ranges");
    let c = podman_conf(d.path());
    let out = cni("ADD", "c1", None, &c);
    assert_exit_code(&out, 0);
    let r = out_json(&out);
    assert_eq!(r["ips"][0]["address"], "10.89.0.2/24");
    assert_eq!(r["ips"][0]["gateway"], "10.89.0.1");
    assert_eq!(r["ips"][1]["address"], "fd89::2/64");
    assert_eq!(r["ips"][1]["gateway"], "fd89::1");
    assert_eq!(r["routes"][1]["dst"], "::/0");
    // A requested pair: one address per family.
    let out = cni("ADD", "c2", Some("IP=10.89.0.77,fd89::77"), &c);
    assert_exit_code(&out, 0);
    let r = out_json(&out);
    assert_eq!(r["ips"][0]["address"], "10.89.0.77/24");
    assert_eq!(r["ips"][1]["address"], "fd89::77/64");
    // Taken, or in no range: refused, nothing half-allocated.
    let out = cni("ADD", "c3", Some("IP=fd89::77"), &c);
    assert_exit_code(&out, 1);
    assert_eq!(out_json(&out)["code"], 100);
    let out = cni("ADD", "c3", Some("IP=fd90::1"), &c);
    assert_eq!(out_json(&out)["code"], 100);
    assert_exit_code(&cni("CHECK", "c3", None, &c), 1);
    // The v6 pool file is small: cursor and owners, no bitmap.
    let v6 = d.path().join("podman+fd89::_64");
    assert!(std::fs::metadata(&v6).unwrap().len() < 300);

    assert_exit_code(&cni("CHECK", "c1", None, &c), 0);
    assert_exit_code(&cni("DEL", "c1", None, &c), 0);
    assert_exit_code(&cni("DEL", "c1", None, &c), 0);
    assert_exit_code(&cni("CHECK", "c1", None, &c), 1);
    // Next-fit: neither family hands c1's addresses out again at once.
    let r = out_json(&cni("ADD", "c4", None, &c));
    assert_ne!(r["ips"][0]["address"], "10.89.0.2/24");
    assert_eq!(r["ips"][1]["address"], "fd89::3/64");
}

#[test]
fn several_ranges_in_a_set_are_tried_in_order() {
    let d = TempDir::new("ipam-ranges2");
    let c = json!({
        "cniVersion": "1.0.0", "name": "two",
        "ipam": {"type": "ipam", "dataDir": d.path(), "ranges": [[
            {"subnet": "10.90.0.0/30"},
            {"subnet": "10.91.0.0/24", "rangeStart": "10.91.0.100", "rangeEnd": "10.91.0.101"}
        ]]}
    });
    // /30: one host after the gateway, then the second range.
    let ips: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            let o = cni("ADD", id, None, &c);
            assert_exit_code(&o, 0);
            out_json(&o)["ips"][0]["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips, ["10.90.0.2/30", "10.91.0.100/24", "10.91.0.101/24"]);
    let o = cni("ADD", "d", None, &c);
    assert_eq!(out_json(&o)["code"], 101, "exhausted");
    // Mixed families in one set, or a bad subnet: code 7 before anything.
    let mut bad = c.clone();
    bad["ipam"]["ranges"][0][1]["subnet"] = json!("fd00::/64");
    assert_eq!(out_json(&cni("ADD", "e", None, &bad))["code"], 7);
    bad["ipam"]["ranges"][0][1]["subnet"] = json!("nonsense");
    assert_eq!(out_json(&cni("ADD", "e", None, &bad))["code"], 7);
}

#[test]
fn gc_releases_attachments_not_listed_and_status_answers() {
    let d = TempDir::new("ipam-gc");
    let mut c = podman_conf(d.path());
    for id in ["keep", "stale"] {
        assert_exit_code(&cni("ADD", id, None, &c), 0);
    }
    c["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let mut gc = Command::new(BIN);
    gc.env("CNI_COMMAND", "GC");
    let out = pipe(&mut gc, &c.to_string());
    assert_exit_code(&out, 0);
    assert_exit_code(&cni("CHECK", "keep", None, &c), 0);
    assert_exit_code(&cni("CHECK", "stale", None, &c), 1);
    let r = out_json(&cni("ADD", "again", Some("IP=10.89.0.3,fd89::3"), &c));
    assert_eq!(
        r["ips"][1]["address"], "fd89::3/64",
        "stale's addresses are free"
    );

    let mut st = Command::new(BIN);
    st.env("CNI_COMMAND", "STATUS");
    assert_exit_code(&pipe(&mut st, &c.to_string()), 0);
    let mut bad = c.clone();
    bad["ipam"]["dataDir"] = json!("/proc/no-such-dir/ipam");
    let mut st = Command::new(BIN);
    st.env("CNI_COMMAND", "STATUS");
    let out = pipe(&mut st, &bad.to_string());
    assert_eq!(out_json(&out)["code"], 50);

    let mut v = Command::new(BIN);
    v.env("CNI_COMMAND", "VERSION");
    let out = out_json(&pipe(&mut v, ""));
    assert!(out["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("1.1.0")));
}

//! A corrupt state file is detected with a one-line error naming the file
//! and the repair command; `ipam repair` keeps every owner that reads back
//! (DEL by it frees its address, no ADD gets it), keeps the corrupt file
//! beside it, and the pool works after. Input that could make a file
//! unreadable is refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipam");
const NET: &str = "rn";

fn conf(dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0", "name": NET, "type": "netbr",
        "ipam": {"type": "ipam", "subnet": "10.77.0.0/24", "dataDir": dir},
    })
    .to_string()
}

fn cni(cmd: &str, id: &str, dir: &Path) -> Output {
    let mut c = Command::new(BIN);
    c.env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/dev/null")
        .env("CNI_PATH", "/nonexistent");
    pipe(&mut c, &conf(dir))
}

fn add(id: &str, dir: &Path) -> String {
    let out = cni("ADD", id, dir);
    assert_exit_code(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["ips"][0]["address"].as_str().unwrap().to_string()
}

fn human(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn state(dir: &Path) -> PathBuf {
    dir.join(NET)
}

/// Owners c0..c5 (c2 a 64-hex id, packed), c3 released in place; returns
/// the addresses by owner and the byte position where each record starts.
fn populate(dir: &Path) -> (Vec<(String, String)>, Vec<u64>) {
    let mut held = vec![];
    let mut starts = vec![];
    for i in 0..6 {
        let id = if i == 2 {
            "ab".repeat(32)
        } else {
            format!("c{i}")
        };
        let before = std::fs::metadata(state(dir)).map(|m| m.len()).ok();
        let ip = add(&id, dir);
        starts.push(before.unwrap_or(0));
        held.push((id, ip));
    }
    assert_exit_code(&cni("DEL", "c3", dir), 0);
    held.remove(3);
    (held, starts)
}

/// The one-line error of every command on a corrupt file.
fn assert_detected(dir: &Path) {
    let out = human(dir, &["ls", NET]);
    assert_exit_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&state(dir).display().to_string()), "{err}");
    let cmd = format!("ipam --data-dir {} repair {NET}", dir.display());
    assert!(err.contains(&cmd), "{err}");
    // CNI ADD says the same with code 102.
    let out = cni("ADD", "newcomer", dir);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 102, "{v}");
    assert!(v["msg"].as_str().unwrap().contains(&cmd), "{v}");
}

/// Repairs and checks that `kept` are held by their owners and `lost` are
/// free, that DEL by an owner frees its address, and that the pool works.
fn repair_and_check(dir: &Path, extra: &[&str], kept: &[(String, String)], lost: &[&str]) {
    let mut args = vec!["repair", NET];
    args.extend_from_slice(extra);
    let out = human(dir, &args);
    assert_exit_code(&out, 0);
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pool = &rep["pools"][0];
    assert_eq!(pool["state"], "repaired", "{rep}");
    assert_eq!(pool["owners"], kept.len(), "{rep}");
    let backup = PathBuf::from(pool["backup"].as_str().unwrap());
    assert!(backup.exists() && backup.parent() == Some(dir), "{rep}");
    assert!(backup
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(&format!("{NET}.corrupt-")));
    // The kept owners: listed with their addresses, CHECK passes.
    let ls = human(dir, &["ls", NET]);
    assert_exit_code(&ls, 0);
    let l: Value = serde_json::from_slice(&ls.stdout).unwrap();
    let listed: Vec<(String, String)> = l["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                format!("{}/24", a["ip"].as_str().unwrap()),
            )
        })
        .collect();
    let mut want = kept.to_vec();
    want.sort_by(|a, b| a.1.cmp(&b.1));
    let mut got = listed.clone();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got, want);
    for (id, _) in kept {
        assert_exit_code(&cni("CHECK", id, dir), 0);
    }
    for id in lost {
        assert_ne!(cni("CHECK", id, dir).status.code(), Some(0), "{id}");
    }
    // New ADDs never get a kept address; the pool works.
    let fresh: Vec<String> = (0..20).map(|i| add(&format!("new{i}"), dir)).collect();
    for (id, ip) in kept {
        assert!(!fresh.contains(ip), "{ip} of {id} handed out again");
    }
    // DEL by an owner frees its address: a requested ADD then gets it.
    let (id, ip) = &kept[0];
    assert_exit_code(&cni("DEL", id, dir), 0);
    let bare = ip.split('/').next().unwrap();
    let mut c = Command::new(BIN);
    c.env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "taker")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/dev/null")
        .env("CNI_PATH", "/nonexistent")
        .env("CNI_ARGS", format!("IP={bare}"));
    assert_exit_code(&pipe(&mut c, &conf(dir)), 0);
    // A second repair finds nothing to do.
    let out = human(dir, &["repair", NET]);
    assert_exit_code(&out, 0);
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["pools"][0]["state"], "ok", "{rep}");
}

#[test]
fn a_truncated_state_file_is_detected_and_repaired_keeping_the_whole_records() {
    let d = TempDir::new("ipam-trunc");
    let (held, starts) = populate(d.path());
    // Cut in the middle of the last record (c5's).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(state(d.path()))
        .unwrap();
    f.set_len(starts[5] + 5).unwrap();
    drop(f);
    assert_detected(d.path());
    let kept: Vec<_> = held.iter().filter(|(id, _)| id != "c5").cloned().collect();
    repair_and_check(d.path(), &[], &kept, &["c5", "c3"]);
}

#[test]
fn flipped_bytes_are_detected_and_repaired_around_the_damage() {
    let d = TempDir::new("ipam-flip");
    let (held, starts) = populate(d.path());
    let mut b = std::fs::read(state(d.path())).unwrap();
    // c1's id length and the magic.
    b[starts[1] as usize + 6] ^= 0xff;
    b[0] ^= 0x20;
    std::fs::write(state(d.path()), &b).unwrap();
    assert_detected(d.path());
    // The header is gone: the repair needs the subnet and says so.
    let out = human(d.path(), &["repair", NET]);
    assert_exit_code(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("--subnet"), "{err}");
    assert_eq!(
        std::fs::read(state(d.path())).unwrap(),
        b,
        "nothing written"
    );
    let kept: Vec<_> = held.iter().filter(|(id, _)| id != "c1").cloned().collect();
    repair_and_check(d.path(), &["--subnet", "10.77.0.0/24"], &kept, &["c1"]);
}

#[test]
fn appended_garbage_is_ignored_and_nothing_is_lost() {
    let d = TempDir::new("ipam-garbage");
    let (held, _) = populate(d.path());
    let mut b = std::fs::read(state(d.path())).unwrap();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        b.push((x >> 16) as u8);
    }
    std::fs::write(state(d.path()), &b).unwrap();
    // Bytes after the last counted record are an ADD cut short: ignored.
    let ls = human(d.path(), &["ls", NET]);
    assert_exit_code(&ls, 0);
    for (id, _) in &held {
        assert_exit_code(&cni("CHECK", id, d.path()), 0);
    }
    let ip = add("after", d.path());
    assert!(!held.iter().any(|(_, h)| *h == ip));
    // And a repair finds the file fine.
    let out = human(d.path(), &["repair", NET]);
    assert_exit_code(&out, 0);
}

#[test]
fn an_owner_that_could_not_be_stored_is_refused_before_anything_is_written() {
    let d = TempDir::new("ipam-owner");
    let (held, _) = populate(d.path());
    let before = std::fs::read(state(d.path())).unwrap();
    let huge = "x".repeat(70_000);
    for (id, ifname) in [
        (huge.as_str(), "eth0"),
        ("ok", "a-sixteen-bytes!"),
        ("", "eth0"),
    ] {
        let out = human(
            d.path(),
            &[
                "alloc",
                "--network",
                NET,
                "--subnet",
                "10.77.0.0/24",
                "--id",
                id,
                "--ifname",
                ifname,
            ],
        );
        assert_exit_code(&out, 2);
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
    assert_eq!(std::fs::read(state(d.path())).unwrap(), before);
    assert_exit_code(&human(d.path(), &["ls", NET]), 0);
    assert_eq!(held.len(), 5);
}

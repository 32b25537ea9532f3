//! Black-box tests of the ctrstate binary: JSON in, JSON out, exit codes,
//! files on disk. Each test has its own temp root.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::{json, Value};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ctrstate"))
}

/// Runs `ctrstate --root ROOT ARGS...` with `stdin`.
fn run(root: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = bin();
    c.arg("--root").arg(root).args(args);
    pipe(&mut c, stdin)
}

/// Runs and expects success; returns the parsed stdout.
fn ok(root: &Path, args: &[&str], stdin: &str) -> Value {
    let out = run(root, args, stdin);
    assert_exit_code(&out, 0);
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Container directories under the root (names only).
fn container_dirs(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join("containers")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn create_get_ls_update_rm_roundtrip() {
    let t = TempDir::new("cst");
    let r = t.path();
    let rec = ok(
        r,
        &["create"],
        r#"{"image":"busybox","name":"web","command":["httpd","-f"],"id":"ignored","status":"running","config":{"tty":true},"unknown":1}"#,
    );
    let id = rec["id"].as_str().unwrap().to_string();
    assert!(is_hex64(&id), "{id}");
    assert_eq!(rec["name"], "web");
    assert_eq!(rec["status"], "created");
    assert_eq!(rec["command"], json!(["httpd", "-f"]));
    assert_eq!(rec["config"], json!({"tty": true}));
    assert_eq!(rec["finishedAt"], "0001-01-01T00:00:00Z");
    assert!(rec.get("unknown").is_none());
    // Assigned fields are ignored whatever their type.
    let other = ok(
        r,
        &["create"],
        r#"{"image":"b","id":5,"created":[],"status":7,"error":null}"#,
    );
    assert_eq!(other["status"], "created");
    assert!(other.get("error").is_none());
    ok(r, &["rm", other["id"].as_str().unwrap()], "");
    let created = rec["created"].as_str().unwrap();
    assert_eq!(created.len(), 30, "{created}");
    assert!(created.ends_with('Z'));

    // On disk, where the contract says.
    let on_disk: Value = serde_json::from_slice(
        &std::fs::read(r.join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, rec);

    assert_eq!(ok(r, &["get", "web"], ""), rec);
    assert_eq!(ok(r, &["get", &id], ""), rec);
    assert_eq!(ok(r, &["get", &id[..12]], ""), rec);
    assert_eq!(ok(r, &["ls"], ""), json!([rec.clone()]));

    let upd = ok(
        r,
        &["update", "web"],
        r#"{"status":"exited","exitCode":3,"pid":0,"config":{"tty":null,"rm":true},"error":"x"}"#,
    );
    assert_eq!(upd["status"], "exited");
    assert_eq!(upd["exitCode"], 3);
    assert_eq!(upd["config"], json!({"rm": true}));
    assert_eq!(upd["created"], rec["created"]);
    assert_eq!(ok(r, &["get", &id], ""), upd);
    // null resets to the default, and an absent optional is omitted.
    let upd = ok(r, &["update", "web"], r#"{"error":null,"exitCode":null}"#);
    assert!(upd.get("error").is_none());
    assert_eq!(upd["exitCode"], 0);

    // Other tools' files in the container dir go too.
    std::fs::create_dir(r.join("containers").join(&id).join("upper")).unwrap();
    let rm = ok(r, &["rm", "web"], "");
    assert_eq!(rm, json!({"removed": true, "id": id, "name": "web"}));
    assert!(!r.join("containers").join(&id).exists());
    assert_eq!(ok(r, &["ls"], ""), json!([]));
}

#[test]
fn taken_name_exits_1_and_writes_nothing() {
    let t = TempDir::new("cst");
    let r = t.path();
    let first = ok(r, &["create"], r#"{"image":"busybox","name":"web"}"#);
    let out = run(r, &["create"], r#"{"image":"alpine","name":"web"}"#);
    assert_exit_code(&out, 1);
    let short = &first["id"].as_str().unwrap()[..12];
    assert_eq!(
        stderr(&out).trim(),
        format!("ctrstate: name \"web\" is already in use by container {short}")
    );
    assert!(out.stdout.is_empty());
    assert_eq!(container_dirs(r).len(), 1);
    assert_eq!(ok(r, &["get", "web"], ""), first);
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let t = TempDir::new("cst");
    let r = t.path();
    for input in [
        r#"{"image":"busybox","name":"_bad"}"#,
        r#"{"image":"busybox","name":"a b"}"#,
        r#"{"image":"busybox","name":"x"}"#,
        r#"{"name":"noimage"}"#,
        r#"{"image":"busybox","command":"sh"}"#,
        r#"{"image":"busybox","pid":-1}"#,
        "not json",
        "[]",
    ] {
        let out = run(r, &["create"], input);
        assert_exit_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.starts_with("ctrstate: ") && err.lines().count() == 1,
            "{err}"
        );
    }
    assert!(container_dirs(r).is_empty());
    assert_exit_code(&run(r, &["bogus-subcommand"], ""), 2);
}

#[test]
fn update_checks_names_immutables_and_input() {
    let t = TempDir::new("cst");
    let r = t.path();
    let a = ok(r, &["create"], r#"{"image":"busybox","name":"alpha"}"#);
    ok(r, &["create"], r#"{"image":"busybox","name":"beta"}"#);

    let out = run(r, &["update", "alpha"], r#"{"name":"beta"}"#);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    for patch in [
        r#"{"id":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
        r#"{"created":"2000-01-01T00:00:00Z"}"#,
        r#"{"name":"-bad"}"#,
        r#"{"name":null}"#,
        r#"{"status":"sleeping"}"#,
        r#"["status"]"#,
        "{",
    ] {
        assert_exit_code(&run(r, &["update", "alpha"], patch), 2);
    }
    assert_eq!(
        ok(r, &["get", "alpha"], ""),
        a,
        "failed updates changed nothing"
    );

    let renamed = ok(r, &["update", "alpha"], r#"{"name":"gamma"}"#);
    assert_eq!(renamed["name"], "gamma");
    assert_eq!(renamed["id"], a["id"]);
    assert_exit_code(&run(r, &["get", "alpha"], ""), 1);
    // The old name is free again.
    ok(r, &["create"], r#"{"image":"busybox","name":"alpha"}"#);
    assert_exit_code(&run(r, &["update", "nope"], "{}"), 1);
    // A root never used stays untouched.
    let fresh = t.path().join("fresh");
    assert_exit_code(&run(&fresh, &["update", "x"], "{}"), 1);
    assert_exit_code(&run(&fresh, &["rm", "-f", "x"], ""), 0);
    assert!(!fresh.exists());
}

#[test]
fn references_resolve_by_id_then_name_then_unique_prefix() {
    let t = TempDir::new("cst");
    let r = t.path();
    // 17 ids over 16 hex digits: some first character is shared.
    let mut ids: Vec<String> = (0..17)
        .map(|i| {
            let rec = ok(
                r,
                &["create"],
                &format!(r#"{{"image":"busybox","name":"c{i}"}}"#),
            );
            rec["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    let shared = ids
        .windows(2)
        .find(|w| w[0][..1] == w[1][..1])
        .map(|w| w[0][..1].to_string())
        .unwrap();
    let out = run(r, &["get", &shared], "");
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("\"{shared}\"")));

    // A prefix long enough to be unique resolves.
    for id in &ids {
        assert_eq!(ok(r, &["get", &id[..12]], "")["id"], id.as_str());
    }
    // An exact name wins over an id prefix.
    let target = &ids[0];
    let named = ok(
        r,
        &["create"],
        &format!(r#"{{"image":"busybox","name":"{}"}}"#, &target[..6]),
    );
    assert_eq!(ok(r, &["get", &target[..6]], "")["id"], named["id"]);
    assert_eq!(ok(r, &["get", &target[..7]], "")["id"], target.as_str());
    // A docker-style leading slash names the same container.
    assert_eq!(ok(r, &["get", "/c3"], "")["name"], "c3");

    let out = run(r, &["get", "zz-nothing"], "");
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "ctrstate: no such container: zz-nothing"
    );
}

#[test]
fn missing_names_get_random_docker_style_names() {
    let t = TempDir::new("cst");
    let r = t.path();
    let mut names = HashSet::new();
    for input in [
        r#"{"image":"busybox"}"#,
        r#"{"image":"busybox","name":""}"#,
        r#"{"image":"b","name":null}"#,
    ] {
        let rec = ok(r, &["create"], input);
        let name = rec["name"].as_str().unwrap().to_string();
        let (adj, surname) = name.split_once('_').unwrap_or_else(|| panic!("{name}"));
        assert!(
            !adj.is_empty() && adj.bytes().all(|b| b.is_ascii_lowercase()),
            "{name}"
        );
        assert!(
            !surname.is_empty() && surname.bytes().all(|b| b.is_ascii_lowercase()),
            "{name}"
        );
        assert!(names.insert(name));
    }
}

/// Starts `n` `ctrstate create` processes before feeding any of them, so
/// they race for the lock.
fn create_many(root: &Path, inputs: &[String]) -> Vec<Output> {
    let mut children: Vec<Child> = inputs
        .iter()
        .map(|_| {
            bin()
                .arg("--root")
                .arg(root)
                .arg("create")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (c, input) in children.iter_mut().zip(inputs) {
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn fifty_concurrent_creates_with_one_name_yield_one_record() {
    let t = TempDir::new("cst");
    let r = t.path();
    let inputs = vec![r#"{"image":"busybox","name":"race"}"#.to_string(); 50];
    let outs = create_many(r, &inputs);
    let won: Vec<&Output> = outs.iter().filter(|o| o.status.code() == Some(0)).collect();
    assert_eq!(won.len(), 1);
    for o in &outs {
        if o.status.code() != Some(0) {
            assert_exit_code(o, 1);
            assert!(stderr(o).contains("already in use"), "{}", stderr(o));
        }
    }
    assert_eq!(container_dirs(r).len(), 1);
    let winner: Value = serde_json::from_slice(&won[0].stdout).unwrap();
    assert_eq!(ok(r, &["get", "race"], ""), winner);
}

#[test]
fn fifty_concurrent_creates_without_names_yield_distinct_names() {
    let t = TempDir::new("cst");
    let r = t.path();
    let inputs: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"image":"img{i}"}}"#))
        .collect();
    let outs = create_many(r, &inputs);
    for o in &outs {
        assert_exit_code(o, 0);
    }
    let dirs = container_dirs(r);
    assert_eq!(dirs.len(), 50);
    let mut names = HashSet::new();
    for d in &dirs {
        assert!(is_hex64(d), "{d}");
        let rec: Value = serde_json::from_slice(
            &std::fs::read(r.join("containers").join(d).join("state.json")).unwrap(),
        )
        .expect("every state.json parses");
        assert_eq!(rec["id"], d.as_str());
        names.insert(rec["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 50, "{names:?}");
    // No temp files or dirs left behind.
    let leftovers: Vec<_> = std::fs::read_dir(r.join("containers"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with('.') && ![".lock", ".names", ".live", ".index"].contains(&n.as_str())
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The name index holds the 50 names, nothing else.
    let indexed: HashSet<String> = std::fs::read_dir(r.join("containers/.names"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(indexed, names);
}

#[test]
fn ls_is_newest_first_with_100_records() {
    let t = TempDir::new("cst");
    let r = t.path();
    for i in 0..100 {
        ok(
            r,
            &["create"],
            &format!(r#"{{"image":"busybox","name":"n{i}"}}"#),
        );
    }
    // How long ls and reconcile take is the benchmarks' to measure.
    let ls = ok(r, &["ls"], "");
    let ls = ls.as_array().unwrap();
    assert_eq!(ls.len(), 100);
    assert_eq!(ls[0]["name"], "n99");
    assert_eq!(ls[99]["name"], "n0");
    let created: Vec<&str> = ls.iter().map(|x| x["created"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(ok(r, &["reconcile"], ""), json!([]));
}

#[test]
fn rm_of_unknown_fails_unless_forced() {
    let t = TempDir::new("cst");
    let r = t.path();
    let out = run(r, &["rm", "ghost"], "");
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).trim(), "ctrstate: no such container: ghost");
    assert_eq!(
        ok(r, &["rm", "--force", "ghost"], ""),
        json!({"removed": false})
    );
    let rec = ok(r, &["create"], r#"{"image":"busybox","name":"once"}"#);
    ok(r, &["rm", "-f", "once"], "");
    assert_eq!(
        ok(r, &["rm", "-f", rec["id"].as_str().unwrap()], ""),
        json!({"removed": false})
    );
}

#[test]
fn root_comes_from_mydocker_root_env() {
    let t = TempDir::new("cst");
    let out = pipe(
        bin().env("MYDOCKER_ROOT", t.path()).arg("create"),
        r#"{"image":"busybox","name":"envroot"}"#,
    );
    assert_exit_code(&out, 0);
    assert_eq!(container_dirs(t.path()).len(), 1);
}

/// Kills and reaps a process on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper() -> Proc {
    Proc(
        Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn sleep"),
    )
}

fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn running(r: &Path, name: &str, pid: u32, start: u64, extra: &str) -> String {
    let rec = ok(
        r,
        &["create"],
        &format!(r#"{{"image":"busybox","name":"{name}"}}"#),
    );
    ok(
        r,
        &["update", name],
        &format!(
            r#"{{"status":"running","pid":{pid},"pidStartTime":{start},"startedAt":"2026-01-01T00:00:00.000000000Z"{extra}}}"#
        ),
    );
    rec["id"].as_str().unwrap().to_string()
}

#[test]
fn reconcile_marks_vanished_and_reused_pids_exited_and_leaves_live_ones() {
    let t = TempDir::new("cst");
    let r = t.path();

    let mut dead = sleeper();
    let dead_pid = dead.0.id();
    let dead_start = start_time(dead_pid);
    dead.0.kill().unwrap();
    dead.0.wait().unwrap();

    let live = sleeper();
    let live_pid = live.0.id();
    let reused = sleeper();
    let reused_pid = reused.0.id();

    running(r, "dead", dead_pid, dead_start, "");
    running(r, "live", live_pid, start_time(live_pid), "");
    running(r, "reused", reused_pid, start_time(reused_pid) + 1, "");
    // A supervisor recorded the exit but died before updating the status.
    let dead2 = sleeper();
    let (dead2_pid, dead2_start) = (dead2.0.id(), start_time(dead2.0.id()));
    drop(dead2);
    running(
        r,
        "recorded",
        dead2_pid,
        dead2_start,
        r#","exitCode":7,"finishedAt":"2026-01-01T00:00:01.000000000Z""#,
    );
    // Not claiming a process: left alone whatever the pid.
    ok(r, &["create"], r#"{"image":"busybox","name":"fresh"}"#);
    ok(r, &["create"], r#"{"image":"busybox","name":"done"}"#);
    ok(
        r,
        &["update", "done"],
        &format!(r#"{{"status":"exited","pid":{dead_pid}}}"#),
    );

    let changed = ok(r, &["reconcile"], "");
    let mut names: Vec<&str> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dead", "recorded", "reused"]);

    for n in ["dead", "reused"] {
        let g = ok(r, &["get", n], "");
        assert_eq!(g["status"], "exited", "{n}");
        assert_eq!(g["exitCode"], 255, "{n}");
        assert_eq!(g["pid"], 0, "{n}");
        assert_eq!(g["pidStartTime"], 0, "{n}");
        assert_eq!(g["error"], "process vanished", "{n}");
        assert_ne!(g["finishedAt"], "0001-01-01T00:00:00Z", "{n}");
        assert!(g["finishedAt"].as_str().unwrap() > "2026-01-01", "{n}");
    }
    let g = ok(r, &["get", "recorded"], "");
    assert_eq!(g["status"], "exited");
    assert_eq!(g["exitCode"], 7);
    assert_eq!(g["finishedAt"], "2026-01-01T00:00:01.000000000Z");
    assert!(g.get("error").is_none());

    let g = ok(r, &["get", "live"], "");
    assert_eq!(g["status"], "running");
    assert_eq!(g["pid"], live_pid);
    assert_eq!(ok(r, &["get", "fresh"], "")["status"], "created");
    assert_eq!(ok(r, &["get", "done"], "")["pid"], dead_pid);

    // Nothing left to fix.
    assert_eq!(ok(r, &["reconcile"], ""), json!([]));
    drop(live);
    drop(reused);
}

/// Unmounts (lazily, so a panic mid-test cannot leave it busy) on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn rm_refuses_while_something_is_mounted_in_the_container_dir() {
    e2e::skip_unless!(e2e::is_root(), "needs root to mount");
    let t = TempDir::new("cst");
    let r = t.path();
    let rec = ok(r, &["create"], r#"{"image":"busybox","name":"mnt"}"#);
    let dir = r.join("containers").join(rec["id"].as_str().unwrap());
    let target = dir.join("rootfs");
    std::fs::create_dir(&target).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount tmpfs");
    let guard = Mounted(target.clone());
    std::fs::write(target.join("precious"), "keep").unwrap();

    let out = run(r, &["rm", "-f", "mnt"], "");
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("mounted"), "{}", stderr(&out));
    assert!(stderr(&out).contains("rootfs"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(target.join("precious")).unwrap(),
        "keep"
    );
    assert!(dir.join("state.json").exists());

    drop(guard);
    ok(r, &["rm", "mnt"], "");
    assert!(!dir.exists());
}

#[test]
fn reconcile_marks_a_launch_whose_supervisor_died_abandoned_and_keeps_its_pid() {
    let t = TempDir::new("csa");
    let r = t.path();
    let mut sup = sleeper();
    let sup_pid = sup.0.id();
    sup.0.kill().unwrap();
    sup.0.wait().unwrap();
    let init = sleeper();
    let init_pid = init.0.id();
    let live_sup = sleeper();
    for (name, sup) in [("gone", sup_pid), ("busy", live_sup.0.id())] {
        ok(
            r,
            &["create"],
            &format!(r#"{{"image":"busybox","name":"{name}"}}"#),
        );
        ok(
            r,
            &["update", name],
            &format!(
                r#"{{"pid":{init_pid},"pidStartTime":{},"supervisorPid":{sup}}}"#,
                start_time(init_pid)
            ),
        );
    }
    let changed = ok(r, &["reconcile"], "");
    let names: Vec<&str> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gone"]);
    let g = ok(r, &["get", "gone"], "");
    assert_eq!(g["status"], "created");
    assert_eq!(g["pid"], init_pid, "kept for the caller to kill");
    assert!(g.get("supervisorPid").is_none());
    assert!(
        g["error"].as_str().unwrap().contains("supervisor died"),
        "{g}"
    );
    // A live supervisor's launch is its own.
    assert_eq!(
        ok(r, &["get", "busy"], "")["supervisorPid"],
        live_sup.0.id()
    );
    // Once the caller cleared the pid, nothing is left to do.
    ok(r, &["update", "gone"], r#"{"pid":0,"pidStartTime":0}"#);
    assert_eq!(ok(r, &["reconcile"], ""), json!([]));
    drop(init);
    drop(live_sup);
}

//! End-to-end: the CLI's remaining docker parity (issue 14): shell
//! completions and man pages, `--format` on stats and the inspect
//! commands, `logs --details`, prune filters, `cp` of a directory's
//! contents (`dir/.`) both ways, and the exec and load events; each
//! checked against docker's documented output and exit codes.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, bin, require_root, TempDir};
use std::process::Command;

#[test]
fn completions_and_man_pages() {
    let dir = TempDir::new("cpl");
    let script = dir.path().join("mydocker.bash");
    let out = Command::new(bin("mydocker"))
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    std::fs::write(&script, &out.stdout).unwrap();
    let c = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p mydocker", script.display()))
        .output()
        .unwrap();
    assert_exit_code(&c, 0);
    assert!(
        stdout(&c).contains("-F _mydocker mydocker"),
        "{}",
        stdout(&c)
    );
    // the function completes subcommands: `mydocker sta<TAB>` offers start, stats
    let c = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(mydocker sta); COMP_CWORD=1; _mydocker mydocker sta mydocker; echo ${{COMPREPLY[@]}}",
            script.display()
        ))
        .output()
        .unwrap();
    let offered = stdout(&c);
    assert!(
        offered.contains("start") && offered.contains("stats"),
        "{offered}"
    );
    for shell in ["zsh", "fish"] {
        let out = Command::new(bin("mydocker"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
        assert!(stdout(&out).contains("mydocker"), "{shell}");
    }
    let out = Command::new(bin("mydocker"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_exit_code(&out, 125);
    // man pages: the top page and one per subcommand, hidden ones left out
    let man = dir.path().join("man1");
    let out = Command::new(bin("mydocker"))
        .arg("_man")
        .arg(&man)
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    let top = std::fs::read_to_string(man.join("mydocker.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH mydocker 1"),
        "{top:.200}"
    );
    assert!(top.contains(".TH mydocker 1"));
    let stats = std::fs::read_to_string(man.join("mydocker-stats.1")).unwrap();
    assert!(stats.contains(".TH mydocker-stats 1"), "{stats:.200}");
    assert!(man.join("mydocker-network-inspect.1").exists());
    assert!(!man.join("mydocker-_exited.1").exists());
    if let Ok(r) = Command::new("man")
        .arg("-l")
        .arg(man.join("mydocker-stats.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        if r.status.success() {
            let text = stdout(&r);
            assert!(
                text.contains("NAME") && text.contains("no-stream"),
                "{text}"
            );
        }
    }
    // setup.sh's installer: idempotent, rooted at PREFIX
    let prefix = dir.path().join("prefix");
    for _ in 0..2 {
        let out = Command::new(e2e::workspace().join("scripts/install-completions.sh"))
            .arg(bin("mydocker"))
            .env("PREFIX", &prefix)
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
    }
    for f in [
        "usr/share/bash-completion/completions/mydocker",
        "usr/share/zsh/vendor-completions/_mydocker",
        "usr/share/fish/vendor_completions.d/mydocker.fish",
        "usr/local/share/man/man1/mydocker.1",
        "usr/local/share/man/man1/mydocker-run.1",
    ] {
        let m = std::fs::metadata(prefix.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(m.len() > 0, "{f} empty");
    }
}

#[test]
fn stats_format_fields_table_and_json() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "st",
        "busybox",
        "sleep",
        "60",
    ]);
    let one = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.ID}}|{{.Container}}|{{.PIDs}}|{{.NetIO}}",
        "st",
    ]);
    assert_eq!(one, format!("st|{}|st|1|0B / 0B", &id[..12]));
    let all = d.ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Container}}",
    ]);
    assert_eq!(all, format!("{id} {id}"));
    let row = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.CPUPerc}} {{.MemPerc}} {{.MemUsage}} {{.BlockIO}}",
        "st",
    ]);
    let re = |s: &str| s.ends_with('%') && s[..s.len() - 1].parse::<f64>().is_ok();
    let f: Vec<&str> = row.split(' ').collect();
    assert!(re(f[0]) && re(f[1]), "{row}");
    assert!(
        f[2].ends_with("B") && f[3] == "/" && f[4].ends_with("B"),
        "{row}"
    );
    assert!(f[5].ends_with("B") && f[6] == "/", "{row}");
    // table: docker's headers
    let t = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\\t{{.PIDs}}",
        "st",
    ]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines, vec!["NAME      PIDS", "st        1"], "{t}");
    let t = d.ok(&["stats", "--no-stream", "st"]);
    let head: Vec<&str> = t
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        head,
        vec![
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    // json: docker's keys
    let j: serde_json::Value =
        serde_json::from_str(&d.ok(&["stats", "--no-stream", "--format", "json", "st"])).unwrap();
    for k in [
        "BlockIO",
        "CPUPerc",
        "Container",
        "ID",
        "MemPerc",
        "MemUsage",
        "Name",
        "NetIO",
        "PIDs",
    ] {
        assert!(j.get(k).is_some(), "{k} missing: {j}");
    }
    // unknown field: Go's template error, exit 1
    let out = d.run(&["stats", "--no-stream", "--format", "{{.Nope}}", "st"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *container.statsContext"
    );
    let out = d.run(&["stats", "--no-stream", "--format", "{{.Name", "st"]);
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out), "");
}

#[test]
fn inspect_formats_for_networks_volumes_and_history() {
    require_root!();
    let d = Docker::new();
    d.ok(&["volume", "create", "--label", "a=b", "v1"]);
    assert_eq!(
        d.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels.a}}",
            "v1"
        ]),
        "v1 local b"
    );
    assert_eq!(
        d.ok(&["volume", "inspect", "--format", "{{json .Labels}}", "v1"]),
        r#"{"a":"b"}"#
    );
    // docker's inspect: a JSON array indented by four spaces
    let raw = d.ok(&["volume", "inspect", "v1"]);
    assert!(raw.starts_with("[\n    {"), "{raw}");
    let out = d.run(&["volume", "inspect", "-f", "{{.Name}}", "v1", "nope"]);
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out).trim(), "v1");
    assert!(
        stderr(&out).starts_with("Error response from daemon:"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["volume", "inspect", "-f", "{{.Name", "v1"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).starts_with("template parsing error: template: :1: unclosed action"),
        "{}",
        stderr(&out)
    );

    d.ok(&["network", "create", "--subnet", "10.231.7.0/24", "uxnet"]);
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "uxnet"
        ]),
        "uxnet bridge 10.231.7.0/24"
    );
    let out = d.run(&["network", "inspect", "--format", "{{.Name}}", "nonet"]);
    assert_exit_code(&out, 1);

    // history --format: docker's historyContext fields
    let h = d.ok(&["history", "--format", "{{.ID}}|{{.CreatedBy}}", "busybox"]);
    assert!(
        h.lines()
            .next()
            .unwrap()
            .starts_with(&d.ok(&["images", "-q", "busybox"])[..]),
        "{h}"
    );
    let out = d.run(&["history", "--format", "{{.Nope}}", "busybox"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("can't evaluate field Nope"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn logs_details_prints_log_attributes() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "lg",
        "-l",
        "com.example=web app",
        "-l",
        "other=x",
        "-e",
        "STAGE=prod",
        "--log-opt",
        "labels=com.example,missing",
        "--log-opt",
        "env=STAGE",
        "busybox",
        "echo",
        "hello",
    ]);
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "plain",
        "busybox",
        "echo",
        "hi",
    ]);
    // docker: the attributes k=v (URL query escaped, comma-joined), a space, the line
    let out = d.run(&["logs", "--details", "lg"]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "STAGE=prod,com.example=web+app hello\n");
    // none: a leading space
    assert_eq!(stdout(&d.run(&["logs", "--details", "plain"])), " hi\n");
    assert_eq!(stdout(&d.run(&["logs", "plain"])), "hi\n");
    // with timestamps: the time first
    let t = stdout(&d.run(&["logs", "--details", "-t", "plain"]));
    let (ts, rest) = t.split_once(' ').unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{t}");
    assert_eq!(rest, " hi\n");
}

#[test]
fn volume_prune_anonymous_unless_all_and_filters() {
    require_root!();
    let d = Docker::new();
    d.ok(&["volume", "create", "named"]);
    d.ok(&["volume", "create", "--label", "keep=yes", "kept"]);
    let anon = d.ok(&["volume", "create"]);
    assert_eq!(anon.len(), 64);
    // bad filters: docker's flag error (125), the daemon's invalid filter (1); nothing removed
    let out = d.run(&["volume", "prune", "-f", "--filter", "label"]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out).contains("bad format of filter (expected name=value)"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["volume", "prune", "-f", "--filter", "color=red"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: invalid filter 'color'"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), 3);
    // docker asks first; a closed stdin is no
    let out = d.run(&["volume", "prune"]);
    assert_exit_code(&out, 0);
    assert!(stdout(&out).starts_with(
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    ));
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), 3);
    // without -a: only the anonymous one
    let out = d.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B")
    );
    // -a with label!=: everything unused but the labelled one
    let out = d.ok(&["volume", "prune", "-a", "-f", "--filter", "label!=keep"]);
    assert!(out.starts_with("Deleted Volumes:\nnamed\n"), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "kept");
    // the all filter is -a; label= picks
    d.ok(&["volume", "create", "--label", "keep=no", "other"]);
    let out = d.ok(&[
        "volume",
        "prune",
        "-f",
        "--filter",
        "all=true",
        "--filter",
        "label=keep=no",
    ]);
    assert!(out.starts_with("Deleted Volumes:\nother\n"), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "kept");
}

#[test]
fn container_and_image_prune_filters() {
    require_root!();
    let d = Docker::new();
    let run = |name: &str, label: &str| {
        d.ok(&[
            "run",
            "--network",
            "none",
            "--name",
            name,
            "-l",
            label,
            "busybox",
            "true",
        ]);
    };
    run("a1", "tier=front");
    run("a2", "tier=back");
    run("a3", "other=1");
    let out = d.run(&["container", "prune", "-f", "--filter", "nope"]);
    assert_exit_code(&out, 125);
    let out = d.run(&["container", "prune", "-f", "--filter", "status=exited"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: invalid filter 'status'"
    );
    let out = d.run(&["container", "prune", "-f", "--filter", "until=whenever"]);
    assert_exit_code(&out, 1);
    // until before they were made: none
    let out = d.ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "until=2001-01-01T00:00:00Z",
    ]);
    assert_eq!(out, "Total reclaimed space: 0B");
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 3);
    let a1 = d.ok(&["inspect", "-f", "{{.Id}}", "a1"]);
    let out = d.ok(&["container", "prune", "-f", "--filter", "label=tier=front"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{a1}\n\n")),
        "{out}"
    );
    let out = d.ok(&[
        "container",
        "prune",
        "-f",
        "--filter",
        "label!=tier",
        "--filter",
        "until=0s",
    ]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "a2");
    d.ok(&["container", "prune", "-f"]);

    // image prune: filters validated before asking; busybox has no labels
    let out = d.run(&["image", "prune", "-a", "-f", "--filter", "color=red"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: invalid filter 'color'"
    );
    let out = d.run(&["image", "prune", "-f", "--filter", "dangling=maybe"]);
    assert_exit_code(&out, 1);
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "label=maintainer"]);
    assert_eq!(out, "Total reclaimed space: 0B");
    let out = d.ok(&[
        "image",
        "prune",
        "-f",
        "--filter",
        "dangling=false",
        "--filter",
        "until=-86400",
    ]);
    assert_eq!(out, "Total reclaimed space: 0B");
    assert!(d.ok(&["images", "-q"]).len() >= 12);
    let out = d.ok(&[
        "image",
        "prune",
        "-f",
        "--filter",
        "dangling=false",
        "--filter",
        "label!=maintainer",
    ]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: busybox:latest\n"),
        "{out}"
    );
    assert_eq!(d.ok(&["images", "-q"]), "");
    // images -a is accepted
    d.ok(&["images", "-a"]);
}

/// The relative paths of every file and dir under `dir`, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(".")
        .arg("-mindepth")
        .arg("1")
        .current_dir(dir)
        .output()
        .unwrap();
    let mut v: Vec<String> = stdout(&out).lines().map(|l| l[2..].to_string()).collect();
    v.sort();
    v
}

#[test]
fn cp_dir_dot_copies_the_contents_both_ways() {
    require_root!();
    let d = Docker::new();
    let host = TempDir::new("cpdot");
    d.ok(&[
        "run", "--network", "none", "--name", "cpc", "busybox", "sh", "-c",
        "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && mkdir /into && echo f > /file",
    ]);
    // out: CTR:/data/. into an existing dir puts a and sub in it
    let existing = host.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    d.ok(&["cp", "cpc:/data/.", existing.to_str().unwrap()]);
    assert_eq!(tree(&existing), vec!["a", "sub", "sub/b"]);
    // ... without /. the dir itself goes in
    d.ok(&["cp", "cpc:/data", existing.to_str().unwrap()]);
    assert_eq!(
        tree(&existing),
        vec![
            "a",
            "data",
            "data/a",
            "data/sub",
            "data/sub/b",
            "sub",
            "sub/b"
        ]
    );
    // into a missing dir: it is made and holds the contents (both forms)
    let fresh = host.path().join("fresh");
    d.ok(&["cp", "cpc:/data/.", fresh.to_str().unwrap()]);
    assert_eq!(tree(&fresh), vec!["a", "sub", "sub/b"]);
    assert_eq!(
        std::fs::read_to_string(fresh.join("sub/b")).unwrap(),
        "two\n"
    );
    // a file with /. is not a directory
    let out = d.run(&["cp", "cpc:/file/.", host.path().join("x").to_str().unwrap()]);
    assert_exit_code(&out, 1);
    assert!(!host.path().join("x").exists());

    // in: SRC/. into an existing container dir
    let src = host.path().join("src");
    std::fs::create_dir_all(src.join("deep")).unwrap();
    std::fs::write(src.join("x"), "ex").unwrap();
    std::fs::write(src.join("deep/y"), "why").unwrap();
    let dot = format!("{}/.", src.display());
    d.ok(&["cp", &dot, "cpc:/into"]);
    d.ok(&["cp", src.to_str().unwrap(), "cpc:/into"]);
    d.ok(&["cp", &dot, "cpc:/made"]);
    let back = host.path().join("back");
    d.ok(&["cp", "cpc:/into", back.to_str().unwrap()]);
    assert_eq!(
        tree(&back),
        vec![
            "deep",
            "deep/y",
            "src",
            "src/deep",
            "src/deep/y",
            "src/x",
            "x"
        ]
    );
    let made = host.path().join("made");
    d.ok(&["cp", "cpc:/made", made.to_str().unwrap()]);
    assert_eq!(tree(&made), vec!["deep", "deep/y", "x"]);
    // a dir's contents onto a file: docker's refusal
    let out = d.run(&["cp", &dot, "cpc:/file"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("cannot overwrite non-directory"),
        "{}",
        stderr(&out)
    );
}

fn unix_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn exec_and_load_events() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ex",
        "-l",
        "app=x",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = d.run(&["exec", "ex", "sh", "-c", "exit 3"]);
    assert_exit_code(&out, 3);
    // a signal sent to `mydocker exec` reaches the command
    let mut child = d.cmd(&["exec", "ex", "sleep", "30"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(143), "{st:?}");
    let until = unix_now();
    let ev = |args: &[&str]| {
        let mut a = vec!["events", "--since", "0", "--until", &until];
        a.extend_from_slice(args);
        d.ok(&a)
    };
    let got = ev(&[
        "--filter",
        "container=ex",
        "--format",
        "{{.Action}}|{{.Actor.ID}}|{{.Actor.Attributes.exitCode}}|{{.Actor.Attributes.app}}",
    ]);
    let execs: Vec<&str> = got.lines().filter(|l| l.starts_with("exec_")).collect();
    assert_eq!(
        execs,
        vec![
            format!("exec_create: sh -c exit 3|{id}|<no value>|x"),
            format!("exec_start: sh -c exit 3|{id}|<no value>|x"),
            format!("exec_die|{id}|3|x"),
            format!("exec_create: sleep 30|{id}|<no value>|x"),
            format!("exec_start: sleep 30|{id}|<no value>|x"),
            format!("exec_die|{id}|143|x"),
        ],
        "{got}"
    );
    // one exec's three events share its execID (64 hex)
    let ids = ev(&[
        "--filter",
        "event=exec_die",
        "--format",
        "{{index .Actor.Attributes \"execID\"}}",
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter().all(|i| i.len() == 64) && ids[0] != ids[1],
        "{ids:?}"
    );
    // `event=exec_start` matches `exec_start: CMD`
    assert_eq!(
        ev(&["--filter", "event=exec_start", "--format", "{{.Action}}"])
            .lines()
            .count(),
        2
    );

    // load: one event per tag (docker's containerd store), actor the image ID
    let tar = d.root.path().join("two.tar");
    d.ok(&["tag", "busybox", "other:1"]);
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox", "other:1"]);
    let since = unix_now();
    d.ok(&["load", "-i", tar.to_str().unwrap()]);
    let until = unix_now();
    let img = d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    let loads = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--filter",
        "event=load",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let mut got: Vec<&str> = loads.lines().collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            format!("image load {img} busybox:latest"),
            format!("image load {img} other:1"),
        ],
        "{loads}"
    );
}

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

//! End-to-end: the host side is safe. Other host users reach nothing in
//! the store; `-o` writes through what it names; archives stream through
//! pipes (compressed too); a terminal is never written a tar; a closed
//! stdout ends a listing quietly.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, bin, require_root, unique, TempDir};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const NOBODY: &str = "65534";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// `args` run as user and group 65534 with no supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn nobody_reaches_nothing_in_the_store() {
    require_root!();
    e2e::skip_unless!(have("setpriv"), "no setpriv");
    let d = Docker::new();
    let secret = format!("SECRET={}", unique("hush"));
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "quiet",
        "-e",
        &secret,
        "busybox",
        "sh",
        "-c",
        "echo logged-line; sleep 30",
    ]);
    d.wait_status("quiet", "running");
    let root = d.root.path();
    let ctr = root.join("containers").join(&id);
    let log = ctr.join(format!("{id}-json.log"));
    // The secret is there for root: the checks below can fail.
    let config = std::fs::read_to_string(ctr.join("config.json")).unwrap();
    assert!(config.contains(&secret));

    assert_eq!(mode(root), 0o710, "store root");
    for dir in ["containers", "layers", "images", "volumes", "run"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    for f in ["config.json", "state.json"] {
        assert_eq!(mode(&ctr.join(f)) & 0o077, 0, "{f} readable by others");
    }
    let layer = std::fs::read_dir(root.join("layers/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for p in [
        s(root),
        s(&root.join("layers/sha256")),
        s(&layer),
        s(&root.join("containers")),
        s(&ctr),
        s(&ctr.join("rootfs")),
        s(&root.join("run")),
    ] {
        let out = as_nobody(&["ls", &p]);
        assert!(!out.status.success(), "nobody listed {p}: {}", stdout(&out));
    }
    for p in [
        s(&ctr.join("config.json")),
        s(&ctr.join("state.json")),
        s(&log),
        s(&layer.join("bin/busybox")),
        s(&ctr.join("rootfs/bin/busybox")),
    ] {
        let out = as_nobody(&["cat", &p]);
        assert!(!out.status.success(), "nobody read {p}");
    }
    // Nor does any process's command line (the supervisor of `run -d`
    // keeps running, exec'd from the CLI that had the user's flags).
    let value = secret.trim_start_matches("SECRET=");
    let out = as_nobody(&["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null; true"]);
    let cmdlines = stdout(&out);
    assert!(
        cmdlines.contains("mydocker-supervisor"),
        "no cmdline was read"
    );
    assert!(!cmdlines.contains(value), "the secret is in a command line");
    // Nothing under the root yields the secret to a search.
    let out = as_nobody(&["grep", "-rs", &secret, &s(root)]);
    assert_eq!(stdout(&out), "", "nobody found the secret");
    let out = as_nobody(&[&s(&bin("mydocker")), "--root", &s(root), "inspect", "quiet"]);
    assert!(!stdout(&out).contains(&secret), "inspect as nobody");
    d.ok(&["rm", "-f", "quiet"]);
}

#[test]
fn an_old_open_store_is_tightened_on_first_use() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "old",
        "-e",
        "A=1",
        "busybox",
        "true",
    ]);
    d.wait_status("old", "exited");
    let root = d.root.path();
    let ctr = root.join("containers").join(&id);
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // The store as older versions left it.
    chmod(root, 0o755);
    for dir in ["containers", "layers", "images", "volumes", "run"] {
        chmod(&root.join(dir), 0o755);
    }
    chmod(&ctr, 0o755);
    chmod(&ctr.join("config.json"), 0o644);
    chmod(&ctr.join("state.json"), 0o644);
    d.ok(&["ps", "-a"]);
    assert_eq!(mode(root), 0o710);
    for dir in ["containers", "layers", "images", "volumes", "run"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&ctr), 0o700);
    assert_eq!(mode(&ctr.join("config.json")), 0o600);
    assert_eq!(mode(&ctr.join("state.json")), 0o600);
    d.ok(&["rm", "old"]);
}

#[test]
fn save_o_writes_through_a_symlink_and_a_fifo() {
    require_root!();
    let d = Docker::new();
    let dir = TempDir::new("out");
    let plain = dir.path().join("plain.tar");
    d.ok(&["save", "busybox", "-o", plain.to_str().unwrap()]);
    let want = std::fs::read(&plain).unwrap();
    assert!(want.len() > 1 << 20);

    // A symlink: the file it names gets the tar, the link stays a link.
    let target = dir.path().join("target.tar");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.tar");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    d.ok(&["save", "busybox", "-o", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), want);

    // A FIFO: its reader gets the tar, the FIFO stays a FIFO.
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = d.run(&["save", "busybox", "-o", fifo.to_str().unwrap()]);
    // Unblock the reader even if save failed before opening the FIFO.
    if !out.status.success() {
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    assert_exit_code(&out, 0);
    assert_eq!(reader.join().unwrap(), want);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // An export onto a symlink writes through it too.
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "ex",
        "busybox",
        "true",
    ]);
    d.ok(&["export", "ex", "-o", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let tar = std::fs::read(&target).unwrap();
    assert_ne!(tar, want);
    assert!(tar.len() > 1 << 20);
    d.ok(&["rm", "ex"]);
    // No temp file is left beside the outputs.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fifo", "link.tar", "plain.tar", "target.tar"]);
}

/// `left | right`, both run to the end; their outputs.
fn pipeline(mut left: Command, mut right: Command) -> (Output, Output) {
    let mut l = left
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = right.stdin(l.stdout.take().unwrap()).output().unwrap();
    (l.wait_with_output().unwrap(), r)
}

#[test]
fn save_load_and_export_import_round_trip_through_pipes() {
    require_root!();
    let d = Docker::new();
    let other = TempDir::new("mdk");
    let mut load = Command::new(bin("mydocker"));
    load.arg("--root").arg(other.path()).arg("load");
    let (saved, loaded) = pipeline(d.cmd(&["save", "busybox"]), load);
    assert_exit_code(&saved, 0);
    assert_exit_code(&loaded, 0);
    assert!(stdout(&loaded).contains("Loaded image: busybox:latest"));
    let ids = Command::new(bin("mydocker"))
        .arg("--root")
        .arg(other.path())
        .args(["images", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&ids).trim(),
        d.ok(&["images", "-q"]),
        "same image id"
    );

    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo piped > /marker",
    ]);
    let mut import = d.cmd(&["import", "-", "piped:1"]);
    import.stdin(Stdio::null());
    let (exported, imported) = pipeline(d.cmd(&["export", "src"]), import);
    assert_exit_code(&exported, 0);
    assert_exit_code(&imported, 0);
    assert!(
        stdout(&imported).starts_with("sha256:"),
        "{}",
        stdout(&imported)
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "piped:1",
            "/bin/cat",
            "/marker"
        ]),
        "piped"
    );
    d.ok(&["rm", "src"]);
}

#[test]
fn load_reads_compressed_archives() {
    require_root!();
    let d = Docker::new();
    let dir = TempDir::new("cmp");
    let plain = dir.path().join("b.tar");
    d.ok(&["save", "busybox", "-o", plain.to_str().unwrap()]);
    let mut tried = 0;
    for (tool, ext) in [
        ("gzip", "gz"),
        ("xz", "xz"),
        ("bzip2", "bz2"),
        ("zstd", "zst"),
    ] {
        if !have(tool) {
            e2e::skip::record(
                "e2e host_safety load of a compressed archive",
                &format!("no {tool}"),
            );
            continue;
        }
        tried += 1;
        let packed = dir.path().join(format!("b.tar.{ext}"));
        let out = Command::new(tool)
            .arg("-c")
            .stdin(std::fs::File::open(&plain).unwrap())
            .stdout(std::fs::File::create(&packed).unwrap())
            .status()
            .unwrap();
        assert!(out.success(), "{tool}");
        let root = TempDir::new("mdk");
        let load = |stdin: Stdio, args: &[&str]| {
            Command::new(bin("mydocker"))
                .arg("--root")
                .arg(root.path())
                .arg("load")
                .args(args)
                .stdin(stdin)
                .output()
                .unwrap()
        };
        let out = load(Stdio::null(), &["-i", packed.to_str().unwrap()]);
        assert_exit_code(&out, 0);
        assert!(
            stdout(&out).contains("Loaded image: busybox:latest"),
            "{tool}"
        );
        // And from a pipe.
        let mut cat = Command::new("cat")
            .arg(&packed)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = load(Stdio::from(cat.stdout.take().unwrap()), &[]);
        cat.wait().unwrap();
        assert_exit_code(&out, 0);
        assert!(
            stdout(&out).contains("Loaded image: busybox:latest"),
            "{tool} stdin"
        );
    }
    assert!(tried >= 1, "no compressor to test with");

    // Garbage, compressed or not, is an error of printable words.
    let mut garbage = vec![0x1f, 0x8b, 0x08, 0x00];
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    for bytes in [garbage.clone(), garbage[4..].to_vec()] {
        let f = dir.path().join("garbage");
        std::fs::write(&f, &bytes).unwrap();
        let out = d.run(&["load", "-i", f.to_str().unwrap()]);
        assert_exit_code(&out, 1);
        let err = stderr(&out);
        assert!(
            err.trim_end()
                .chars()
                .all(|c| !c.is_control() && c != '\u{fffd}'),
            "binary in the error: {err:?}"
        );
    }
}

#[test]
fn a_terminal_stdout_is_refused() {
    require_root!();
    e2e::skip_unless!(have("script"), "no script(1)");
    let d = Docker::new();
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "tty",
        "busybox",
        "true",
    ]);
    let me = bin("mydocker");
    let root = d.root.path().to_str().unwrap().to_string();
    for cmd in ["save busybox", "export tty"] {
        // script(1) gives the command a terminal as its stdin and stdout.
        let line = format!("{} --root {root} {cmd}", me.display());
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            text.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
            "{cmd}: {text:?}"
        );
        assert!(
            text.len() < 200,
            "{cmd} wrote more than the refusal: {text:?}"
        );
        assert_eq!(out.status.code(), Some(1), "{cmd}");
    }
    let line = format!("{} --root {root} load", me.display());
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("requested load from stdin"),
        "{}",
        stdout(&out)
    );
    d.ok(&["rm", "tty"]);
}

#[test]
fn listings_exit_quietly_when_stdout_is_closed() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "lst",
        "busybox",
        "true",
    ]);
    d.ok(&["volume", "create", "lstvol"]);
    for args in [
        &["ps", "-a"][..],
        &["images"],
        &["network", "ls"],
        &["volume", "ls"],
        &["inspect", "lst"],
    ] {
        // A pipe whose reader is gone before the command writes.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let out = d
            .cmd(args)
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(stderr(&out), "", "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {:?}", out.status);
    }
    d.ok(&["rm", "lst"]);
    d.ok(&["volume", "rm", "lstvol"]);
}

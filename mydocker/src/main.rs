use clap::Parser;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match mydocker::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // docker: a bad flag is 125; help and version are success.
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    if let Some(code) = mydocker::completion::standalone(&cli) {
        return ExitCode::from(code);
    }
    hide_env_values();
    let ctx = mydocker::context::Ctx::new(&cli.root);
    if let Err(e) = secure_store(&ctx.root, &ctx.run) {
        eprintln!("mydocker: warning: cannot make the store private: {e}");
    }
    ExitCode::from(mydocker::main_with(cli))
}

/// `mydocker ps | head -1`: a reader that stops early is not an error. The
/// print macros panic on a closed pipe (SIGPIPE is ignored, so the write
/// fails with EPIPE); every command prints with them, so the exit is taken
/// here, once, instead of in each listing.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let epipe = std::io::Error::from_raw_os_error(libc::EPIPE).to_string();
        let msg = info.payload_as_str().unwrap_or("");
        if (msg.starts_with("failed printing to stdout")
            || msg.starts_with("failed printing to stderr"))
            && msg.ends_with(&epipe)
        {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// `run -d -e KEY=VALUE` leaves a supervisor running with this command
/// line, which every host user may read in `/proc/PID/cmdline`: once the
/// flags are parsed, the values of `-e`/`--env` are starred out in place,
/// in the memory the kernel shows (prctl(PR_SET_MM) would need
/// CAP_SYS_RESOURCE). Nothing reads `std::env::args` after parsing.
fn hide_env_values() {
    let Some((start, end)) = args_area() else {
        return;
    };
    // SAFETY: [start, end) is this process's own argv strings (the kernel's
    // arg_start..arg_end), writable stack memory, and no Rust reference
    // points into it: clap copied what it parsed. One thread runs here.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    let mut value_next = false;
    let mut at = 0;
    while at < area.len() {
        let len = area[at..]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(area.len() - at);
        let arg = &mut area[at..at + len];
        // Where KEY=VALUE starts in this arg, if it is one.
        let kv = if value_next {
            Some(0)
        } else if arg.starts_with(b"--env=") {
            Some(6)
        } else if arg.len() > 2 && arg.starts_with(b"-e") && arg[2] != b'-' {
            Some(2)
        } else {
            None
        };
        value_next = arg == b"-e" || arg == b"--env";
        if let Some(k) = kv {
            if let Some(eq) = arg[k..].iter().position(|&b| b == b'=') {
                arg[k + eq + 1..].fill(b'*');
            }
        }
        at += len + 1;
    }
}

/// arg_start and arg_end from /proc/self/stat (fields 48 and 49).
fn args_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: field 3 first.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let start: usize = f.get(48 - 3)?.parse().ok()?;
    let end: usize = f.get(49 - 3)?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// The store is root's alone (docker keeps its root 0710, CVE-2021-41091):
/// the root 0710; every dir in it and the runtime dir 0700; the files
/// holding a container's config, environment, state and logs 0600. Made so
/// when missing, tightened (never loosened) when they exist, so an old
/// store is fixed on first use. A shared sticky dir given as a root is
/// left alone.
///
/// The writers create container dirs and files with these modes, so the
/// walk of every container dir (7-11 ms with 1,000 containers, on every
/// command) runs only for a store without the current [`SECURED`] stamp
/// (made by an older mydocker) or whose root was found open.
fn secure_store(root: &Path, run: &Path) -> std::io::Result<()> {
    let opened = ensure_dir(root, 0o710)?;
    ensure_dir(run, 0o700)?;
    for e in std::fs::read_dir(root)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            ensure_dir(&e.path(), 0o700)?;
        }
    }
    let stamp = root.join(".secured");
    if !opened && std::fs::read(&stamp).is_ok_and(|s| s == SECURED) {
        return Ok(());
    }
    let secret =
        |name: &str| name == "config.json" || name == "state.json" || name.ends_with(".log");
    for dir in [root.join("containers"), run.join("nsrun")] {
        for c in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !c.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            ensure_dir(&c.path(), 0o700)?;
            for f in std::fs::read_dir(c.path())?.flatten() {
                let name = f.file_name();
                if f.file_type().is_ok_and(|t| t.is_file()) && secret(&name.to_string_lossy()) {
                    tighten(&f.path(), f.metadata()?, 0o600)?;
                }
            }
        }
    }
    // A torn write reads as another version: the walk runs again.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&stamp)
        .and_then(|mut f| f.write_all(SECURED))
}

/// The stamp's content: the store was walked by a mydocker whose writers
/// create private files. A change of what is private bumps it.
const SECURED: &[u8] = b"secured 1\n";

/// Makes `dir` (missing parents as usual) with `mode`, or tightens it (a
/// dir behind a symlink: the dir it names). True if it was tightened.
fn ensure_dir(dir: &Path, mode: u32) -> std::io::Result<bool> {
    if !dir.exists() {
        if let Some(p) = dir.parent() {
            std::fs::create_dir_all(p)?;
        }
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    tighten(dir, std::fs::metadata(dir)?, mode)
}

/// Takes from `path` (of metadata `m`) every permission bit `mode` does
/// not have.
fn tighten(path: &Path, m: std::fs::Metadata, mode: u32) -> std::io::Result<bool> {
    let have = m.permissions().mode() & 0o7777;
    let want = have & (mode | 0o6000);
    if have & 0o1000 != 0 || want == have {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).map(|()| true)
}

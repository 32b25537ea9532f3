//! `mydocker attach` and the attach-related `run` flags (`-a`,
//! `--sig-proxy`, `--detach-keys`).
//!
//! # The attach socket (spec; the detached supervisor serves it)
//!
//! A detached container's supervisor holds its stdio (the pipes, or the pty
//! master). To let `attach` reach them, it listens on
//! `<root>/containers/<id>/attach.sock` (a unix stream socket, mode 0600,
//! made before the record says running, removed when the container exits)
//! and serves any number of clients at once:
//!
//! 1. The client sends one line of JSON, `{"stdin":B,"stdout":B,"stderr":B}\n`
//!    (the streams it wants).
//! 2. The supervisor then copies the container's output to every client
//!    that asked for that stream, from the moment it connected (history is
//!    the log's business), as docker's multiplexed frames (`stdcopy`): an
//!    8-byte header `[stream, 0, 0, 0, len (u32 big-endian)]` and `len`
//!    bytes. Stream 1 is stdout (all of a pty's output), 2 stderr. When the
//!    container exits it sends one frame of stream 3 whose payload is the
//!    exit code in ASCII decimal, then closes.
//! 3. Bytes the client writes after its line go to the container's stdin
//!    (the pty master for `-t`), when it asked for stdin and the container
//!    was started with `-i`; otherwise they are read and dropped. A client
//!    shutting down its write side detaches its stdin only: the
//!    container's stdin stays open for the next client (docker without
//!    StdinOnce).
//! 4. A slow client must not stall the container: a client whose socket
//!    cannot take a whole frame at once is dropped.
//! 5. A hello line with `"height":H,"width":W` also gives the container's
//!    terminal (`-t`) that size; the client of a terminal sends its size so,
//!    and again on a connection of its own (a hello with no streams) after
//!    each SIGWINCH.
//!
//! mydocker binds the socket ([`listen`]) before the launch and hands it
//! to `mydocker-supervisor`, which serves it (supervisor/src/attach.rs).
//! The exit frame comes after the exit is recorded: the supervisor leaves
//! the clients' sockets open across its exec of `mydocker _exited`, which
//! records the exit, then sends the frame
//! (`supervisor::attach::send_exit`).
//!
//! The client ([`attach`]) handles detach keys and signal proxying itself:
//! detach closes its connection; a proxied signal is `nsrun kill`.
//!
//! Until a supervisor serves the socket, `attach` follows the log instead
//! (output only, as `logs -f --tail 0`), and says so when stdin was asked for.

use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use clap::Args;
use ctrstate::record::Status;
use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;

#[derive(Args, Debug, Clone)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process (default true).
    #[arg(long = "sig-proxy", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

/// docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// docker's `--detach-keys` syntax: a comma-separated list of single
/// characters and `ctrl-X` (X one of a-z, @, [, \, ], ^, _).
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>> {
    let bad = || fail(format!("Invalid detach keys ({keys}) provided"));
    let mut out = vec![];
    for k in keys.split(',') {
        let lower = k.to_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return bad(),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return bad();
        }
    }
    if out.is_empty() {
        return bad();
    }
    Ok(out)
}

/// The streams a foreground `run` connects (stdin, stdout, stderr), as
/// docker's CLI: stdout and stderr unless `-a` names streams; stdin
/// whenever `-i` is given (`-a stdin` alone opens nothing).
pub fn streams(cfg: &RunConfig) -> (bool, bool, bool) {
    let a = &cfg.extra.attach;
    if a.is_empty() {
        return (cfg.open_stdin, true, true);
    }
    let has = |s: &str| a.iter().any(|x| x == s);
    (cfg.open_stdin, has("stdout"), has("stderr"))
}

/// Whether a foreground `run` forwards the signals it gets (`--sig-proxy`,
/// default true; docker never proxies for a tty).
pub fn sig_proxy(cfg: &RunConfig) -> bool {
    cfg.extra.sig_proxy.unwrap_or(true)
}

/// The attach socket of container `id`.
pub fn socket_path(ctx: &Ctx, id: &str) -> std::path::PathBuf {
    ctx.container_dir(id).join("attach.sock")
}

/// Binds container `id`'s attach socket (0600; a stale one is replaced),
/// for its supervisor to serve; None if it cannot (attach then follows
/// the log).
pub fn listen(ctx: &Ctx, id: &str) -> Option<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(ctx, id);
    let _ = std::fs::remove_file(&path);
    let l = std::os::unix::net::UnixListener::bind(&path).ok()?;
    if std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).is_err() {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(l)
}

/// `mydocker attach`: the container's output (and stdin) until it exits
/// (its exit code) or the detach keys are typed.
pub fn attach(ctx: &Ctx, a: &AttachArgs) -> Result<i32> {
    let keys = parse_detach_keys(a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))?;
    let rec = records::get(ctx, &a.container)?;
    if rec.status == Status::Paused {
        return fail("You cannot attach to a paused container, unpause it first");
    }
    if rec.status == Status::Restarting {
        return fail("You cannot attach to a restarting container, wait until it is running");
    }
    if rec.status != Status::Running {
        return fail("You cannot attach to a stopped container, start it first");
    }
    let cfg: RunConfig =
        serde_json::from_value(serde_json::Value::Object(rec.config.clone())).unwrap_or_default();
    let want_stdin = !a.no_stdin && cfg.open_stdin;
    let _proxy = (a.sig_proxy && !cfg.tty).then(|| SigProxy::start(ctx, &rec.id));
    let path = socket_path(ctx, &rec.id);
    // A terminal's container: ours in raw mode (keys go through as typed,
    // the detach keys among them), its size following ours.
    let _raw = (cfg.tty && want_stdin)
        .then(crate::supervise::RawMode::enter)
        .flatten();
    if cfg.tty {
        follow_winsize(path.clone());
    }
    match UnixStream::connect(&path) {
        Ok(s) => over_socket(ctx, &rec.id, s, want_stdin, &keys),
        Err(_) => {
            if want_stdin {
                eprintln!(
                    "mydocker: attach: this container's supervisor serves no attach socket: output only (stdin is not attached)"
                );
            }
            follow_log(ctx, &rec.id)
        }
    }
}

/// The exit code the record holds once the container stopped.
fn exit_code(ctx: &Ctx, id: &str) -> i32 {
    records::peek(ctx, id).map(|r| r.exit_code).unwrap_or(0)
}

/// The fallback: the log from now on, until the container stops.
fn follow_log(ctx: &Ctx, id: &str) -> Result<i32> {
    let la = crate::cli::LogsArgs {
        follow: true,
        tail: Some("0".into()),
        timestamps: false,
        since: None,
        until: None,
        details: false,
        container: id.to_string(),
    };
    crate::logs::logs(ctx, &la)?;
    // The supervisor records the exit just after the last line.
    for _ in 0..100 {
        match records::peek(ctx, id) {
            Some(r) if matches!(r.status, Status::Running | Status::Paused) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => break,
        }
    }
    Ok(exit_code(ctx, id))
}

fn over_socket(ctx: &Ctx, id: &str, mut s: UnixStream, stdin: bool, keys: &[u8]) -> Result<i32> {
    let size = winsize()
        .map(|(h, w)| format!(",\"height\":{h},\"width\":{w}"))
        .unwrap_or_default();
    let hello = format!("{{\"stdin\":{stdin},\"stdout\":true,\"stderr\":true{size}}}\n");
    s.write_all(hello.as_bytes())
        .map_err(|e| Error::Daemon(format!("attach socket: {e}")))?;
    if stdin {
        let mut w = s
            .try_clone()
            .map_err(|e| Error::Daemon(format!("attach socket: {e}")))?;
        let keys = keys.to_vec();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut matched = 0;
            let mut stdin = std::io::stdin().lock();
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = w.shutdown(std::net::Shutdown::Write);
                        return;
                    }
                    Ok(n) => n,
                };
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if b == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            // Detached: the container runs on; docker exits 0.
                            crate::supervise::RawMode::restore();
                            std::process::exit(0);
                        }
                        continue;
                    }
                    // A partial sequence that did not complete is input after all.
                    out.extend_from_slice(&keys[..matched]);
                    matched = 0;
                    out.push(b);
                }
                if w.write_all(&out).is_err() {
                    return;
                }
            }
        });
    }
    let mut r = std::io::BufReader::new(s);
    let mut header = [0u8; 8];
    loop {
        if r.read_exact(&mut header).is_err() {
            // Closed without an exit frame: the record knows.
            return Ok(exit_code(ctx, id));
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut data = vec![0u8; len];
        if r.read_exact(&mut data).is_err() {
            return Ok(exit_code(ctx, id));
        }
        let ok = match header[0] {
            1 => {
                let mut o = std::io::stdout().lock();
                o.write_all(&data).and_then(|_| o.flush()).is_ok()
            }
            2 => std::io::stderr().write_all(&data).is_ok(),
            3 => {
                return Ok(String::from_utf8_lossy(&data).trim().parse().unwrap_or(0));
            }
            _ => true,
        };
        if !ok {
            // Our output is gone (`attach | head`): detach quietly.
            return Ok(0);
        }
        let _ = r.fill_buf();
    }
}

/// The size of our terminal (rows, columns), if stdin or stdout is one.
fn winsize() -> Option<(u16, u16)> {
    [0, 1].into_iter().find_map(|fd| {
        // SAFETY: TIOCGWINSZ into a local struct.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
        (ok && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    })
}

/// Sends our terminal's size again after each SIGWINCH (protocol point 5),
/// from a thread that waits for it.
fn follow_winsize(path: std::path::PathBuf) {
    use nix::sys::signal::{SigSet, Signal};
    if winsize().is_none() {
        return;
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || loop {
        if set.wait().is_err() {
            return;
        }
        if let (Some((h, w)), Ok(mut s)) = (winsize(), UnixStream::connect(&path)) {
            let _ = writeln!(s, "{{\"height\":{h},\"width\":{w}}}");
        }
    });
}

/// Forwards the signals `attach` gets to the container (`nsrun kill`), as
/// docker's sig-proxy, from a thread that waits for them.
struct SigProxy;

impl SigProxy {
    fn start(ctx: &Ctx, id: &str) -> SigProxy {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ] {
            set.add(s);
        }
        // Blocked here before the thread starts, so every thread inherits it
        // and only `wait` below takes them.
        if set.thread_block().is_err() {
            return SigProxy;
        }
        let nsrun_root = ctx.nsrun_root();
        let id = id.to_string();
        std::thread::spawn(move || loop {
            let Ok(sig) = set.wait() else { return };
            let name = sig.as_str().trim_start_matches("SIG").to_string();
            let _ = crate::tools::Call::new("nsrun", &nsrun_root)
                .args(["kill", &id, &name])
                .output();
        });
        SigProxy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[").unwrap(),
            vec![b'a', 0, 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("").is_err());
    }
}

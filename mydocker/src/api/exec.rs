//! Exec endpoints: create (`POST /containers/{id}/exec`), start (a hijacked
//! stream like attach's, or detached), inspect and resize. The command runs
//! as a `mydocker exec` child of the service, so it is exactly the CLI's
//! exec; the instances live in the service's memory only (docker keeps
//! them in its daemon too). With a tty the service holds the pty the child
//! runs on: resize sets its size, and the kernel's SIGWINCH makes nsrun
//! copy it to the command's own terminal.

use super::containers::{mydocker, resolve};
use super::http::{Conn, Request};
use super::stream::frame;
use super::{send_json, ApiError, ApiResult, Service};
use ctrstate::record::Status;
use serde_json::{json, Value};
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest exec config accepted.
const MAX_CONFIG: u64 = 1 << 20;
/// Finished instances are forgotten after this long.
const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// One exec instance.
pub struct ExecInst {
    pub id: String,
    pub container: String,
    cmd: Vec<String>,
    env: Vec<String>,
    user: String,
    workdir: String,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: u32,
    /// The pty master while a tty exec runs.
    master: Option<Arc<OwnedFd>>,
    finished: Option<Instant>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// The instance `id` names (its full id or a unique prefix), or docker's 404.
fn get(svc: &Service, id: &str) -> ApiResult<Arc<ExecInst>> {
    let execs = svc.execs.lock().unwrap();
    if let Some(e) = execs.get(id) {
        return Ok(e.clone());
    }
    let mut hits = execs.values().filter(|e| e.id.starts_with(id));
    match (hits.next(), hits.next()) {
        (Some(e), None) if !id.is_empty() => Ok(e.clone()),
        _ => Err(ApiError::new(404, format!("No such exec instance: {id}"))),
    }
}

/// `POST /containers/{id}/exec`: validates the config against a running
/// container and keeps it; `{"Id"}` with 201.
pub fn create(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request, r: &str) -> ApiResult<()> {
    let body = conn
        .read_body(req, MAX_CONFIG)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?;
    let rec = resolve(svc, r)?;
    match rec.status {
        Status::Running if crate::records::alive(rec.pid, rec.pid_start_time) => {}
        Status::Paused => {
            return Err(ApiError::new(
                409,
                format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                ),
            ))
        }
        _ => {
            return Err(ApiError::new(
                409,
                format!("Container {} is not running", rec.id),
            ))
        }
    }
    let cmd = strings(&body["Cmd"]);
    if cmd.is_empty() {
        return Err(ApiError::new(400, "No exec command specified"));
    }
    if body["Privileged"].as_bool() == Some(true) {
        return Err(ApiError::new(
            400,
            "Privileged exec is not supported by mydocker",
        ));
    }
    if body["DetachKeys"].as_str().is_some_and(|k| !k.is_empty()) {
        return Err(ApiError::new(
            400,
            "DetachKeys is not supported by mydocker",
        ));
    }
    let flag = |k: &str| body[k].as_bool() == Some(true);
    let s = |k: &str| body[k].as_str().unwrap_or("").to_string();
    let id = randid::id().map_err(|e| ApiError::new(500, format!("exec id: {e}")))?;
    let inst = Arc::new(ExecInst {
        id: id.clone(),
        container: rec.id.clone(),
        cmd,
        env: strings(&body["Env"]),
        user: s("User"),
        workdir: s("WorkingDir"),
        tty: flag("Tty"),
        stdin: flag("AttachStdin"),
        stdout: flag("AttachStdout"),
        stderr: flag("AttachStderr"),
        state: Mutex::new(ExecState::default()),
    });
    let mut execs = svc.execs.lock().unwrap();
    execs.retain(|_, e| {
        e.state
            .lock()
            .unwrap()
            .finished
            .is_none_or(|t| t.elapsed() < KEEP_FINISHED)
    });
    execs.insert(id.clone(), inst);
    drop(execs);
    send_json(conn, 201, &json!({ "Id": id }))
}

/// `GET /exec/{id}/json`.
pub fn inspect(svc: &Arc<Service>, conn: &mut Conn, id: &str) -> ApiResult<()> {
    let e = get(svc, id)?;
    let st = e.state.lock().unwrap();
    let v = json!({
        "ID": e.id,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "ProcessConfig": {
            "tty": e.tty,
            "entrypoint": e.cmd[0],
            "arguments": e.cmd[1..],
            "privileged": false,
            "user": e.user,
        },
        "OpenStdin": e.stdin,
        "OpenStderr": e.stderr,
        "OpenStdout": e.stdout,
        "CanRemove": false,
        "ContainerID": e.container,
        "DetachKeys": "",
        "Pid": if st.running { command_pid(st.pid) } else { st.pid },
    });
    drop(st);
    send_json(conn, 200, &v)
}

/// The command's own pid: below the `mydocker exec` the service ran (its
/// child `nsrun exec`, whose child is the command), the first process
/// that is neither; the last one found while the command is not there yet.
fn command_pid(launcher: u32) -> u32 {
    let ours = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| {
            e.file_name()
                .is_some_and(|n| n == "mydocker" || n == "nsrun")
        })
    };
    let child = |pid: u32| -> Option<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut pid = launcher;
    while ours(pid) {
        match child(pid) {
            Some(c) => pid = c,
            None => break,
        }
    }
    pid
}

/// `POST /exec/{id}/resize?h=&w=`: the size of a tty exec's terminal.
pub fn resize(svc: &Arc<Service>, conn: &mut Conn, req: &Request, id: &str) -> ApiResult<()> {
    let e = get(svc, id)?;
    let (h, w) = size(req)?;
    let master = e.state.lock().unwrap().master.clone();
    if let Some(m) = master {
        set_winsize(m.as_fd(), h, w);
    }
    super::send_empty(conn, 200)
}

/// The `h` and `w` query values (docker's 400 for a bad one).
pub fn size(req: &Request) -> ApiResult<(u16, u16)> {
    let n = |k: &str| -> ApiResult<u16> {
        let v = req.q(k).unwrap_or("");
        v.parse::<u16>()
            .map_err(|_| ApiError::new(400, format!("invalid value for {k}: \"{v}\"")))
    };
    Ok((n("h")?, n("w")?))
}

/// TIOCSWINSZ on either side of a pty.
pub fn set_winsize(fd: std::os::fd::BorrowedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// `POST /exec/{id}/start` (`{"Detach","Tty"}`): runs the command; attached,
/// the connection is hijacked and carries its output (framed unless a
/// tty) and the client's stdin; it closes once the command has exited and
/// its exit code is known to `inspect`.
pub fn start(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request, id: &str) -> ApiResult<()> {
    let body = conn
        .read_body(req, MAX_CONFIG)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?
    };
    let e = get(svc, id)?;
    let detach = body["Detach"].as_bool() == Some(true);
    {
        let mut st = e.state.lock().unwrap();
        if st.running {
            return Err(ApiError::new(
                409,
                format!("Exec command {} is already running", e.id),
            ));
        }
        if st.started {
            return Err(ApiError::new(
                409,
                format!("Exec command {} has already run", e.id),
            ));
        }
        st.started = true;
    }
    let rec = resolve(svc, &e.container)?;
    if !(rec.status == Status::Running && crate::records::alive(rec.pid, rec.pid_start_time)) {
        return Err(ApiError::new(
            409,
            format!("Container {} is not running", rec.id),
        ));
    }
    let attach_in = e.stdin && !detach;
    let mut cmd = mydocker(svc);
    cmd.arg("exec");
    if e.tty {
        // The pty is its stdin either way (docker's tty exec has one too).
        cmd.args(["-i", "-t"]);
    } else if attach_in {
        cmd.arg("-i");
    }
    for v in &e.env {
        cmd.arg(format!("--env={v}"));
    }
    if !e.workdir.is_empty() {
        cmd.arg(format!("--workdir={}", e.workdir));
    }
    if !e.user.is_empty() {
        cmd.arg(format!("--user={}", e.user));
    }
    cmd.arg(&e.container).arg("--").args(&e.cmd);
    let spawned = if e.tty {
        spawn_tty(&mut cmd)
    } else {
        spawn_pipes(&mut cmd, attach_in, detach)
    };
    // The command keeps its copies of the pty's slave until dropped: the
    // master sees the end only once they are gone.
    drop(cmd);
    let (mut child, master) = match spawned {
        Ok(c) => c,
        Err(err) => {
            e.state.lock().unwrap().started = false;
            return Err(ApiError::new(500, format!("run mydocker exec: {err}")));
        }
    };
    {
        let mut st = e.state.lock().unwrap();
        st.running = true;
        st.pid = child.id();
        st.master = master.clone();
    }
    if detach {
        let e = e.clone();
        std::thread::spawn(move || {
            let code = code_of(child.wait());
            finish(&e, code);
        });
        return super::send_empty(conn, 200);
    }
    let (relays, w) = match attach_io(conn, req, &e, &mut child, master.as_deref(), attach_in) {
        Ok(x) => x,
        Err(err) => {
            // Nobody to run it for: it ends now, and is reaped.
            let _ = child.kill();
            let e = e.clone();
            std::thread::spawn(move || {
                let code = code_of(child.wait());
                finish(&e, code);
            });
            conn.closed = true;
            return Err(ApiError::new(500, err.to_string()));
        }
    };
    // The command's end, then the rest of its output (a process it left
    // behind may hold the pipes: not waited for long), then the code for
    // `inspect`, then the connection's end, which the client waits for.
    let code = code_of(child.wait());
    let until = Instant::now() + Duration::from_secs(2);
    while relays.iter().any(|r| !r.is_finished()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    finish(&e, code);
    let _ = w.lock().unwrap().shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Hijacks the connection and joins it to the command: its output relayed
/// (the handles), the client's stdin fed to it when asked.
#[allow(clippy::type_complexity)]
fn attach_io(
    conn: &mut Conn,
    req: &Request,
    e: &ExecInst,
    child: &mut std::process::Child,
    master: Option<&OwnedFd>,
    attach_in: bool,
) -> std::io::Result<(Vec<std::thread::JoinHandle<()>>, Arc<Mutex<UnixStream>>)> {
    conn.hijack(req.wants_upgrade())?;
    let client_in = std::mem::replace(&mut conn.reader, BufReader::new(conn.writer.try_clone()?));
    let w = Arc::new(Mutex::new(conn.writer.try_clone()?));
    let mut relays = vec![];
    if let Some(m) = master {
        let from = Box::new(std::fs::File::from(m.try_clone()?));
        relays.push(relay(from, w.clone(), None, e.stdout || e.stderr));
        if attach_in {
            feed(client_in, std::fs::File::from(m.try_clone()?));
        }
    } else {
        if let Some(o) = child.stdout.take() {
            relays.push(relay(Box::new(o), w.clone(), Some(1), e.stdout));
        }
        if let Some(er) = child.stderr.take() {
            relays.push(relay(Box::new(er), w.clone(), Some(2), e.stderr));
        }
        if let Some(to) = child.stdin.take() {
            feed(client_in, to);
        }
    }
    Ok((relays, w))
}

/// The exit code docker reports: the command's, or 128+N after signal N.
fn code_of(st: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(s) => s.code().or(s.signal().map(|n| 128 + n)).unwrap_or(126),
        Err(_) => 126,
    }
}

fn finish(e: &ExecInst, code: i32) {
    let mut st = e.state.lock().unwrap();
    st.running = false;
    st.exit_code = Some(code);
    st.master = None;
    st.finished = Some(Instant::now());
}

/// Copies `from` to the client (as `stream`'s frames, or raw when None)
/// until its end; reads on when the client is gone or not listening, so
/// the command never blocks on a full pipe.
fn relay(
    mut from: Box<dyn Read + Send>,
    w: Arc<Mutex<UnixStream>>,
    stream: Option<u8>,
    wanted: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        let mut gone = !wanted;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if gone {
                continue;
            }
            let data = match stream {
                Some(s) => frame(s, &buf[..n]),
                None => buf[..n].to_vec(),
            };
            gone = w.lock().unwrap().write_all(&data).is_err();
        }
    })
}

/// The client's stdin into the command until the client closes its side.
fn feed(mut from: BufReader<UnixStream>, mut to: impl Write + Send + 'static) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
    });
}

fn spawn_pipes(
    cmd: &mut std::process::Command,
    stdin: bool,
    detach: bool,
) -> std::io::Result<(std::process::Child, Option<Arc<OwnedFd>>)> {
    let out = || {
        if detach {
            Stdio::null()
        } else {
            Stdio::piped()
        }
    };
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(out())
        .stderr(out())
        // Its own process group: signals meant for the service stay there.
        .process_group(0);
    Ok((cmd.spawn()?, None))
}

/// Runs `cmd` on a new pty (its controlling terminal, so a resize reaches
/// it as SIGWINCH); returns the master. The pty is raw: the command's own
/// terminal (nsrun's) does the line discipline.
fn spawn_tty(
    cmd: &mut std::process::Command,
) -> std::io::Result<(std::process::Child, Option<Arc<OwnedFd>>)> {
    let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
    let (master, slave) = (pty.master, pty.slave);
    if let Ok(mut t) = nix::sys::termios::tcgetattr(&slave) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    set_winsize(slave.as_fd(), 24, 80);
    // SAFETY: FD_CLOEXEC on our own fd.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(slave);
    Ok((child, Some(Arc::new(master))))
}

//! `mydocker-supervisor`: see the crate doc (src/lib.rs) for the contract.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use supervisor::attach::Server;
use supervisor::logfile::{LineSplitter, Rotation, Writer};

struct Args {
    pid: i32,
    stdout: Option<i32>,
    stderr: Option<i32>,
    pty: Option<i32>,
    hold: Vec<i32>,
    attach: Option<i32>,
    log: Option<PathBuf>,
    rotation: Rotation,
    health_interval: Option<Duration>,
    health: Vec<String>,
    sleep: Option<Duration>,
    then: Vec<String>,
}

fn main() {
    let a = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mydocker-supervisor: {e}");
            std::process::exit(2);
        }
    };
    let sfd = signal_fd();
    let code = match a.sleep {
        Some(d) => {
            sleep(sfd, d);
            None
        }
        None => {
            // Attach clients' input goes to the container's stdin (-i) or
            // its pty.
            let mut srv = a
                .attach
                .map(|l| Server::new(l, a.hold.first().copied().or(a.pty)));
            let code = supervise(&a, sfd, &mut srv);
            if let Some(fds) = srv.map(Server::hand_off).filter(|f| !f.is_empty()) {
                let list: Vec<String> = fds.iter().map(i32::to_string).collect();
                std::env::set_var(supervisor::attach::FDS_ENV, list.join(","));
            }
            Some(code)
        }
    };
    let mut argv = a.then.clone();
    if let Some(c) = code {
        argv.push(c.to_string());
    }
    exec(&argv);
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        pid: 0,
        stdout: None,
        stderr: None,
        pty: None,
        hold: vec![],
        attach: None,
        log: None,
        rotation: Rotation::default(),
        health_interval: None,
        health: vec![],
        sleep: None,
        then: vec![],
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--" {
            a.then = it.collect();
            break;
        }
        let v = it.next().ok_or(format!("{flag}: missing value"))?;
        let num = |v: &str| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--pid" => a.pid = num(&v)? as i32,
            "--stdout" => a.stdout = Some(num(&v)? as i32),
            "--stderr" => a.stderr = Some(num(&v)? as i32),
            "--pty" => a.pty = Some(num(&v)? as i32),
            "--hold" => a.hold.push(num(&v)? as i32),
            "--attach" => a.attach = Some(num(&v)? as i32),
            "--log" => a.log = Some(PathBuf::from(v)),
            "--log-max-size" => a.rotation.max_size = num(&v)?,
            "--log-max-file" => a.rotation.max_file = (num(&v)? as u32).max(1),
            "--health-interval-ms" => a.health_interval = Some(Duration::from_millis(num(&v)?)),
            "--health" => a.health.push(v),
            "--sleep-ms" => a.sleep = Some(Duration::from_millis(num(&v)?)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.then.is_empty() {
        return Err("missing -- COMMAND".into());
    }
    if a.sleep.is_none() && a.pid <= 0 {
        return Err("--pid is required".into());
    }
    if a.health_interval.is_some_and(|d| d.is_zero()) {
        return Err("--health-interval-ms must be positive".into());
    }
    Ok(a)
}

/// Blocks the signals we handle (mydocker blocked them already; a pending
/// SIGCHLD survived the exec) and reads them from a signalfd.
fn signal_fd() -> i32 {
    // SAFETY: plain signal-mask syscalls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGCHLD,
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    }
}

/// Reads one pending signal; None when there is none.
fn read_signal(sfd: i32) -> Option<u32> {
    // SAFETY: reading one signalfd_siginfo into a local struct.
    unsafe {
        let mut si: libc::signalfd_siginfo = std::mem::zeroed();
        let n = libc::read(
            sfd,
            &mut si as *mut _ as *mut libc::c_void,
            std::mem::size_of::<libc::signalfd_siginfo>(),
        );
        (n == std::mem::size_of::<libc::signalfd_siginfo>() as isize).then_some(si.ssi_signo)
    }
}

/// The backoff sleep; SIGUSR1 or SIGTERM end it early.
fn sleep(sfd: i32, d: Duration) {
    let until = Instant::now() + d;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [libc::pollfd {
            fd: sfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on a local array.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                1,
                left.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        while let Some(s) = read_signal(sfd) {
            if s == libc::SIGUSR1 as u32 || s == libc::SIGTERM as u32 {
                return;
            }
            if s == libc::SIGCHLD as u32 {
                reap(0, &mut None);
            }
        }
    }
}

/// One output stream of the container.
struct Stream {
    fd: i32,
    name: &'static str,
    lines: LineSplitter,
}

/// Copies output to the log until the container has exited and its output
/// is drained; returns its exit code.
fn supervise(a: &Args, sfd: i32, srv: &mut Option<Server>) -> i32 {
    let mut log = a
        .log
        .as_ref()
        .and_then(|p| Writer::open(p, a.rotation).ok());
    let mut streams: Vec<Stream> = match a.pty {
        Some(fd) => vec![stream(fd, "stdout")],
        None => [(a.stdout, "stdout"), (a.stderr, "stderr")]
            .into_iter()
            .filter_map(|(fd, n)| fd.map(|fd| stream(fd, n)))
            .collect(),
    };
    let mut status: Option<i32> = None;
    let mut health_pid: Option<i32> = None;
    let mut next_health = a.health_interval.map(|i| Instant::now() + i);
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 32 * 1024];
    let trimmer = supervisor::trim::Trimmer::new();
    // Trim at most this often, once something ran since the last trim
    // (see trim.rs): an idle supervisor sits trimmed; a chatty one refills
    // a few hundred KiB of text between trims.
    const TRIM_EVERY: Duration = Duration::from_secs(1);
    let mut trimmed = false;
    let mut last_trim = Instant::now();
    // The container may be gone already (its SIGCHLD pending or delivered
    // before the exec).
    if let Some(c) = reap(a.pid, &mut health_pid) {
        status = Some(c);
        drain_deadline = Some(Instant::now() + Duration::from_secs(2));
    }
    loop {
        if status.is_some() && streams.is_empty() {
            break;
        }
        let now = Instant::now();
        if drain_deadline.is_some_and(|d| now > d) {
            // The init is gone; a process that escaped with our pipe must
            // not keep the supervisor (and `docker wait`) hanging.
            break;
        }
        if status.is_none() {
            if let Some(t) = next_health.filter(|&t| now >= t) {
                if health_pid.is_none() {
                    health_pid = spawn(&a.health);
                    trimmed = false;
                }
                next_health = Some(t.max(now) + a.health_interval.unwrap_or_default());
            }
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        for s in &streams {
            fds.push(libc::pollfd {
                fd: s.fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let attach_at = fds.len();
        let polled = srv.as_ref().map(|s| s.poll_fds(&mut fds));
        let mut timeout = match (drain_deadline, next_health.filter(|_| status.is_none())) {
            (Some(_), _) => 100,
            (None, Some(t)) => t.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1,
            (None, None) => -1,
        };
        if !trimmed {
            let t = (last_trim + TRIM_EVERY).saturating_duration_since(now);
            if t.is_zero() && drain_deadline.is_none() {
                trimmer.trim();
                trimmed = true;
                last_trim = now;
                continue;
            }
            let t = t.as_millis() as i32 + 1;
            if timeout < 0 || timeout > t {
                timeout = t;
            }
        }
        // SAFETY: poll on a local array of valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n > 0 {
            trimmed = false;
        }
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            while let Some(sig) = read_signal(sfd) {
                if sig == libc::SIGCHLD as u32 {
                    if let Some(c) = reap(a.pid, &mut health_pid) {
                        status = Some(c);
                        drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                    }
                }
                // Other signals are not forwarded: the detached container is
                // stopped through `mydocker stop`, not through us.
            }
        }
        if let (Some(s), Some(p)) = (srv.as_mut(), polled) {
            s.ready(p, &fds[attach_at..]);
        }
        let mut closed = vec![];
        for (i, s) in streams.iter_mut().enumerate() {
            if fds[i + 1].revents == 0 {
                continue;
            }
            // SAFETY: read into our buffer from an fd we own.
            let n = unsafe { libc::read(s.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            let name = s.name;
            let mut write = |line: &[u8]| {
                if let Some(l) = log.as_mut() {
                    l.write(name, line)
                }
            };
            if n > 0 {
                if let Some(srv) = srv.as_mut() {
                    srv.output(if name == "stderr" { 2 } else { 1 }, &buf[..n as usize]);
                }
                s.lines.push(&buf[..n as usize], &mut write);
                continue;
            }
            let e = std::io::Error::last_os_error().raw_os_error();
            if n < 0 && matches!(e, Some(libc::EINTR) | Some(libc::EAGAIN)) {
                continue;
            }
            // EOF, or EIO from a pty whose other side is gone.
            s.lines.flush(&mut write);
            closed.push(i);
        }
        for i in closed.into_iter().rev() {
            // SAFETY: closing an fd we own, once.
            unsafe { libc::close(streams.remove(i).fd) };
        }
    }
    for s in &mut streams {
        let name = s.name;
        s.lines.flush(|line| {
            if let Some(l) = log.as_mut() {
                l.write(name, line)
            }
        });
    }
    match status {
        Some(c) => c,
        None => wait_blocking(a.pid),
    }
}

fn stream(fd: i32, name: &'static str) -> Stream {
    Stream {
        fd,
        name,
        lines: LineSplitter::default(),
    }
}

/// Reaps every exited child (the container, a health check, processes
/// orphaned to us as subreaper); returns the container's code if it was one.
fn reap(pid: i32, health: &mut Option<i32>) -> Option<i32> {
    let mut found = None;
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a local status word.
        let p = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if p <= 0 {
            return found;
        }
        if *health == Some(p) {
            *health = None;
        }
        if p == pid {
            found = Some(exit_code(st));
        }
    }
}

fn wait_blocking(pid: i32) -> i32 {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a local status word.
        let p = unsafe { libc::waitpid(pid, &mut st, 0) };
        if p == pid {
            return exit_code(st);
        }
        if p < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 255;
        }
    }
}

fn exit_code(st: i32) -> i32 {
    if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        libc::WEXITSTATUS(st)
    }
}

/// Starts a health check; its pid. std's spawn resets the signal mask and
/// SIGPIPE in the child.
fn spawn(argv: &[String]) -> Option<i32> {
    let (cmd, rest) = argv.split_first()?;
    std::process::Command::new(cmd)
        .args(rest)
        .spawn()
        .ok()
        .map(|c| c.id() as i32)
}

/// Replaces this process with `argv`; on failure exits 127.
fn exec(argv: &[String]) -> ! {
    let c: Vec<CString> = argv
        .iter()
        .filter_map(|s| CString::new(std::ffi::OsStr::new(s).as_bytes()).ok())
        .collect();
    let mut p: Vec<*const libc::c_char> = c.iter().map(|s| s.as_ptr()).collect();
    p.push(std::ptr::null());
    // SAFETY: a NULL-terminated array of valid C strings that outlive the call.
    unsafe { libc::execv(p[0], p.as_ptr()) };
    eprintln!(
        "mydocker-supervisor: exec {}: {}",
        argv[0],
        std::io::Error::last_os_error()
    );
    std::process::exit(127);
}

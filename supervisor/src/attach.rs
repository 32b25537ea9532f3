//! The server side of a detached container's attach socket
//! (`<root>/containers/<id>/attach.sock`; the protocol is specified in
//! mydocker's attach.rs, the client side). Single-threaded: the supervisor's
//! poll loop drives it ([`Server::poll_fds`], [`Server::ready`]), so a
//! client costs a socket and a few bytes, not a thread.
//!
//! The exit frame (stream 3) must come after the exit is recorded, which is
//! mydocker's `_exited`, exec'd by the supervisor. So the supervisor does
//! not send it: [`Server::hand_off`] closes the listener and leaves the
//! clients' sockets open across that exec, listed in [`FDS_ENV`], and
//! `_exited` calls [`send_exit`] once the record says exited.

use std::io::Error;

/// The environment variable that hands the clients' fds (comma-separated)
/// to the exit command.
pub const FDS_ENV: &str = "MYDOCKER_ATTACH_FDS";

/// A hello line longer than this is not a client of ours.
const MAX_HELLO: usize = 1024;

struct Client {
    fd: i32,
    /// The hello line so far; None once it is complete.
    hello: Option<Vec<u8>>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// Its write side is shut (stdin detached); only output goes to it.
    eof: bool,
}

pub struct Server {
    listener: i32,
    clients: Vec<Client>,
    /// The container's stdin write end or pty master (input goes there).
    stdin: Option<i32>,
    /// Input the container's stdin did not take yet; clients are not read
    /// meanwhile (their input waits in their sockets, not in our memory).
    pending: Vec<u8>,
}

/// What [`Server::poll_fds`] asked for, in order: the listener, the stdin
/// fd when input is pending, then each client.
pub struct Polled {
    n: usize,
}

impl Server {
    /// Serves on `listener` (a bound, listening unix socket); client input
    /// goes to `stdin` if given.
    /// `stdin` is dup'ed: the caller may close its own (a pty master at EOF)
    /// without its number coming back as another file under us.
    pub fn new(listener: i32, stdin: Option<i32>) -> Server {
        set_flags(listener);
        // SAFETY: dup of an fd we were given.
        let stdin = stdin
            .map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
            .filter(|&fd| fd >= 0);
        if let Some(fd) = stdin {
            set_flags(fd);
        }
        Server {
            listener,
            clients: vec![],
            stdin,
            pending: vec![],
        }
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Appends the pollfds this server waits on.
    pub fn poll_fds(&self, fds: &mut Vec<libc::pollfd>) -> Polled {
        let start = fds.len();
        let mut push = |fd, events| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        };
        push(self.listener, libc::POLLIN);
        let waiting = !self.pending.is_empty();
        if let (true, Some(fd)) = (waiting, self.stdin) {
            push(fd, libc::POLLOUT);
        }
        for c in &self.clients {
            // (POLLHUP and POLLERR are reported even when not asked for.)
            // Input waits in its socket while stdin is full.
            let read = !(c.eof || waiting && c.hello.is_none());
            push(c.fd, if read { libc::POLLIN } else { 0 });
        }
        Polled {
            n: fds.len() - start,
        }
    }

    /// Acts on the poll results `fds` (the slice [`Server::poll_fds`] added).
    pub fn ready(&mut self, p: Polled, fds: &[libc::pollfd]) {
        let fds = &fds[..p.n];
        let mut i = 1;
        if !self.pending.is_empty() && self.stdin.is_some() {
            if fds[i].revents != 0 {
                self.flush_input();
            }
            i += 1;
        }
        let mut drop = vec![];
        let mut buf = [0u8; 8192];
        for (k, f) in fds[i..].iter().enumerate() {
            if f.revents == 0 {
                continue;
            }
            let c = &mut self.clients[k];
            if f.revents & libc::POLLIN == 0 {
                // Hung up or failed, with nothing left to read.
                drop.push(k);
                continue;
            }
            // SAFETY: read into a local buffer from a client socket we own.
            let n = unsafe { libc::read(c.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 {
                let e = Error::last_os_error().raw_os_error();
                if !matches!(e, Some(libc::EINTR) | Some(libc::EAGAIN)) {
                    drop.push(k);
                }
                continue;
            }
            if n == 0 {
                // Its stdin is done; the container's stays open for the next.
                c.eof = true;
                if c.hello.is_some() {
                    drop.push(k);
                }
                continue;
            }
            let mut data = &buf[..n as usize];
            if let Some(h) = c.hello.as_mut() {
                let nl = data.iter().position(|&b| b == b'\n');
                h.extend_from_slice(&data[..nl.unwrap_or(data.len())]);
                if h.len() > MAX_HELLO {
                    drop.push(k);
                    continue;
                }
                let Some(nl) = nl else { continue };
                let line = String::from_utf8_lossy(h).into_owned();
                c.hello = None;
                c.stdin = flag(&line, "stdin");
                c.stdout = flag(&line, "stdout");
                c.stderr = flag(&line, "stderr");
                if let (Some(h), Some(w), Some(fd)) =
                    (number(&line, "height"), number(&line, "width"), self.stdin)
                {
                    resize(fd, h, w);
                }
                data = &data[nl + 1..];
            }
            if c.stdin && self.stdin.is_some() && !data.is_empty() {
                self.pending.extend_from_slice(data);
            }
        }
        for k in drop.into_iter().rev() {
            close(self.clients.remove(k).fd);
        }
        if !self.pending.is_empty() {
            self.flush_input();
        }
        if fds[0].revents & libc::POLLIN != 0 {
            self.accept();
        }
    }

    fn accept(&mut self) {
        loop {
            // SAFETY: accept4 on our listener, no address wanted.
            let fd = unsafe {
                libc::accept4(
                    self.listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                return;
            }
            self.clients.push(Client {
                fd,
                hello: Some(vec![]),
                stdin: false,
                stdout: false,
                stderr: false,
                eof: false,
            });
        }
    }

    /// Writes what the container's stdin takes now; the rest waits.
    fn flush_input(&mut self) {
        let Some(fd) = self.stdin else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            // SAFETY: write from our buffer to an fd we hold.
            let n = unsafe {
                libc::write(
                    fd,
                    self.pending.as_ptr() as *const libc::c_void,
                    self.pending.len(),
                )
            };
            if n > 0 {
                self.pending.drain(..n as usize);
                continue;
            }
            match Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return,
                // The container closed its stdin: input is dropped.
                _ => {
                    self.pending = vec![];
                    return;
                }
            }
        }
        // Give the memory back: this buffer may have held a large paste.
        self.pending = vec![];
    }

    /// Copies `data` of `stream` (1 stdout, 2 stderr) to the clients that
    /// want it; a client that cannot take the whole frame now is dropped
    /// (a slow client must not stall the container).
    pub fn output(&mut self, stream: u8, data: &[u8]) {
        self.clients.retain(|c| {
            let wanted = c.hello.is_none() && if stream == 2 { c.stderr } else { c.stdout };
            if !wanted || send_frame(c.fd, stream, data) {
                return true;
            }
            close(c.fd);
            false
        });
    }

    /// The container is over: closes the listener and returns the clients'
    /// fds, their close-on-exec flag cleared so that they survive the exec
    /// of the exit command (see the module doc).
    pub fn hand_off(self) -> Vec<i32> {
        close(self.listener);
        if let Some(fd) = self.stdin {
            close(fd);
        }
        self.clients
            .iter()
            .map(|c| {
                // SAFETY: fcntl on a socket we own.
                unsafe { libc::fcntl(c.fd, libc::F_SETFD, 0) };
                c.fd
            })
            .collect()
    }
}

/// Whether the hello line sets `key` to true (`"key":true`, spaces allowed).
fn flag(line: &str, key: &str) -> bool {
    let Some(at) = line.find(&format!("\"{key}\"")) else {
        return false;
    };
    let rest = line[at + key.len() + 2..].trim_start();
    rest.strip_prefix(':')
        .is_some_and(|r| r.trim_start().starts_with("true"))
}

/// The non-negative integer the hello line gives `key` (`"key":N`).
fn number(line: &str, key: &str) -> Option<u16> {
    let at = line.find(&format!("\"{key}\""))?;
    let rest = line[at + key.len() + 2..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Gives the container's terminal the client's size (a pipe refuses it:
/// a container without -t has no size).
fn resize(fd: i32, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a properly sized local struct.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Close-on-exec and non-blocking: the poll loop reads and writes it, and
/// health checks must not inherit it.
fn set_flags(fd: i32) {
    // SAFETY: fcntl flag changes on an fd we were given.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

fn close(fd: i32) {
    // SAFETY: closing an fd we own, once.
    unsafe { libc::close(fd) };
}

/// docker's stdcopy frame header: stream, three zero bytes, length (u32 BE).
pub fn header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Sends a whole frame without blocking (header and data in one sendmsg,
/// no copy), or returns false: a partial frame would break the framing.
pub fn send_frame(fd: i32, stream: u8, data: &[u8]) -> bool {
    let h = header(stream, data.len());
    let mut iov = [
        libc::iovec {
            iov_base: h.as_ptr() as *mut libc::c_void,
            iov_len: h.len(),
        },
        libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        },
    ];
    // SAFETY: a zeroed msghdr pointing at our two iovecs, which outlive the call.
    let n = unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = iov.as_mut_ptr();
        m.msg_iovlen = 2;
        libc::sendmsg(fd, &m, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    n == (h.len() + data.len()) as isize
}

/// For the exit command, first thing: the clients handed over in
/// [`FDS_ENV`] (sockets only: a stale variable must not make us write
/// elsewhere), close-on-exec again so that the tools it runs do not hold
/// them; removes the variable, so that nothing it runs inherits it.
pub fn handed_over() -> Vec<i32> {
    let Ok(list) = std::env::var(FDS_ENV) else {
        return vec![];
    };
    std::env::remove_var(FDS_ENV);
    list.split(',')
        .filter_map(|s| s.parse::<i32>().ok())
        .filter(|&fd| {
            // SAFETY: fstat into a local struct; fcntl on a socket we own.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                libc::fstat(fd, &mut st) == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
                    && libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
            }
        })
        .collect()
}

/// Sends the exit frame (stream 3, the code in ASCII decimal) to `fds`
/// and closes them.
pub fn send_exit(fds: Vec<i32>, code: i32) {
    for fd in fds {
        send_frame(fd, 3, code.to_string().as_bytes());
        close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::os::unix::net::{UnixListener, UnixStream};

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        [&header(stream, data.len())[..], data].concat()
    }

    fn pump(s: &mut Server) {
        let mut fds = vec![];
        let p = s.poll_fds(&mut fds);
        // SAFETY: poll on a local array.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
        s.ready(p, &fds);
    }

    #[test]
    fn frames_output_takes_input_and_hands_off() {
        let dir = std::env::temp_dir().join(format!("sup-attach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("attach.sock");
        let l = UnixListener::bind(&path).unwrap();
        let mut p = [0i32; 2];
        // SAFETY: pipe into a local array.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        let mut s = Server::new(l.into_raw_fd(), Some(p[1]));
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"{\"stdin\": true, \"stdout\":true,\"stderr\":false}\nhi")
            .unwrap();
        let mut other = UnixStream::connect(&path).unwrap();
        other.write_all(b"{\"stdin\":false}\nignored").unwrap();
        for _ in 0..4 {
            pump(&mut s);
        }
        assert_eq!(s.clients(), 2);
        let mut got = [0u8; 2];
        // SAFETY: p[0] is our pipe's read end, owned by the File from here.
        let mut r = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(p[0]) };
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        s.output(2, b"not wanted");
        s.output(1, b"out");
        let fds = s.hand_off();
        assert_eq!(fds.len(), 2);
        // The exit command's side.
        std::env::set_var(FDS_ENV, format!("{},{}", fds[0], r.as_raw_fd() + 1000));
        let handed = handed_over();
        assert_eq!(handed, vec![fds[0]], "only open sockets are taken");
        assert!(std::env::var(FDS_ENV).is_err());
        send_exit(handed, 5);
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut all = vec![];
        c.read_to_end(&mut all).unwrap();
        assert_eq!(all, [frame(1, b"out"), frame(3, b"5")].concat());
        // SAFETY: the other client's fd, handed to us.
        unsafe { libc::close(fds[1]) };
        // SAFETY: the pipe's write end.
        unsafe { libc::close(p[1]) };
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hello_flags_parse() {
        assert!(flag("{\"stdin\" : true}", "stdin"));
        assert!(!flag("{\"stdin\":false,\"stdout\":true}", "stdin"));
        assert!(flag("{\"stdin\":false,\"stdout\":true}", "stdout"));
        assert!(!flag("{}", "stderr"));
        assert_eq!(number("{\"height\": 33,\"width\":120}", "height"), Some(33));
        assert_eq!(number("{\"height\":33,\"width\":120}", "width"), Some(120));
        assert_eq!(number("{\"width\":-1}", "width"), None);
        assert_eq!(number("{}", "width"), None);
    }
}

//! The channel between `nsrun create` (the parent) and the container's init:
//! one SOCK_SEQPACKET socketpair, one typed message per protocol step. The
//! parent sends `Go` once the init may set itself up (uid/gid maps written,
//! cgroup joined); the init sends an optional `Pty` (run mode) or
//! `SeccompFd` (a notify listener), then `Ready` or `Failed`. A message other
//! than the one a step expects is an error that names both.

use crate::tty;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Debug)]
pub enum Msg {
    /// parent -> init: maps written, cgroup joined; go on with the setup.
    Go,
    /// init -> parent: the pty master (`run` with a terminal).
    Pty(OwnedFd),
    /// init -> parent: the seccomp notify fd for the listener.
    SeccompFd(OwnedFd),
    /// init -> parent: mounts made; run the prestart and createRuntime
    /// hooks, then send `Go` again.
    Hooks,
    /// init -> parent: set up, blocked on the exec fifo.
    Ready,
    /// init -> parent: the setup step that failed; the init exits 1.
    Failed(String),
    /// init -> parent: args[0] cannot be run (127 not found, 126 not
    /// executable) and why; the init exits with that code.
    NoCommand(u8, String),
}

impl Msg {
    fn tag(&self) -> u8 {
        match self {
            Msg::Go => b'G',
            Msg::Pty(_) => b'T',
            Msg::SeccompFd(_) => b'S',
            Msg::Ready => b'R',
            Msg::Hooks => b'H',
            Msg::Failed(_) => b'E',
            Msg::NoCommand(..) => b'C',
        }
    }

    /// The message's name, for "expected X, got Y".
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Go => "go",
            Msg::Pty(_) => "pty",
            Msg::SeccompFd(_) => "seccomp fd",
            Msg::Ready => "ready",
            Msg::Hooks => "hooks",
            Msg::Failed(_) => "failed",
            Msg::NoCommand(..) => "no command",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync: send {what}: {err}")]
    Send { what: &'static str, err: String },
    #[error("sync: receive: {0}")]
    Recv(String),
    #[error("sync: the other side went away (expected {expected})")]
    Closed { expected: &'static str },
    #[error("sync: expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn new(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let fail = |err: String| SyncError::Send {
            what: msg.name(),
            err,
        };
        match msg {
            Msg::Pty(fd) | Msg::SeccompFd(fd) => {
                tty::send_fd(self.raw(), &[msg.tag()], fd.as_raw_fd())
                    .map_err(|e| fail(e.to_string()))
            }
            Msg::Failed(text) => {
                let mut b = vec![msg.tag()];
                b.extend_from_slice(text.as_bytes());
                self.send_bytes(&b).map_err(fail)
            }
            Msg::NoCommand(code, text) => {
                let mut b = vec![msg.tag(), *code];
                b.extend_from_slice(text.as_bytes());
                self.send_bytes(&b).map_err(fail)
            }
            Msg::Go | Msg::Ready | Msg::Hooks => self.send_bytes(&[msg.tag()]).map_err(fail),
        }
    }

    fn send_bytes(&self, b: &[u8]) -> Result<(), String> {
        nix::sys::socket::send(self.raw(), b, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The next message; `expected` names what the caller waits for.
    pub fn recv(&self, expected: &'static str) -> Result<Msg, SyncError> {
        let (b, fd) = tty::recv_msg(self.raw()).map_err(|e| SyncError::Recv(e.to_string()))?;
        let unexpected = |got: String| SyncError::Unexpected { expected, got };
        match (b.first(), fd) {
            (None, _) => Err(SyncError::Closed { expected }),
            (Some(b'G'), None) => Ok(Msg::Go),
            (Some(b'R'), None) => Ok(Msg::Ready),
            (Some(b'H'), None) => Ok(Msg::Hooks),
            (Some(b'E'), None) => Ok(Msg::Failed(String::from_utf8_lossy(&b[1..]).into())),
            (Some(b'C'), None) if b.len() >= 2 => Ok(Msg::NoCommand(
                b[1],
                String::from_utf8_lossy(&b[2..]).into(),
            )),
            (Some(b'T'), Some(fd)) => Ok(Msg::Pty(fd)),
            (Some(b'S'), Some(fd)) => Ok(Msg::SeccompFd(fd)),
            (Some(t), fd) => Err(unexpected(format!(
                "tag {:?}{}",
                *t as char,
                if fd.is_some() { " with an fd" } else { "" }
            ))),
        }
    }

    /// Waits for exactly `Go`.
    pub fn wait_go(&self) -> Result<(), SyncError> {
        match self.recv("go")? {
            Msg::Go => Ok(()),
            other => Err(SyncError::Unexpected {
                expected: "go",
                got: other.name().into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    fn pair() -> (Channel, Channel) {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        (Channel::new(a), Channel::new(b))
    }

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair();
        a.send(&Msg::Go).unwrap();
        b.wait_go().unwrap();
        b.send(&Msg::Failed("mount /proc: EPERM".into())).unwrap();
        match a.recv("ready").unwrap() {
            Msg::Failed(t) => assert_eq!(t, "mount /proc: EPERM"),
            m => panic!("got {}", m.name()),
        }
        let devnull = std::fs::File::open("/dev/null").unwrap();
        b.send(&Msg::Pty(devnull.into())).unwrap();
        assert!(matches!(a.recv("pty").unwrap(), Msg::Pty(_)));
    }

    #[test]
    fn an_unexpected_message_names_both() {
        let (a, b) = pair();
        a.send(&Msg::Ready).unwrap();
        let e = b.wait_go().unwrap_err().to_string();
        assert_eq!(e, "sync: expected go, got ready");
        drop(a);
        let e = b.recv("go").unwrap_err().to_string();
        assert!(e.contains("went away (expected go)"), "{e}");
    }
}

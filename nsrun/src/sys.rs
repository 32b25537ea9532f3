//! The few syscalls nsrun makes through small helpers: nix's safe wrappers
//! with `io::Error` results (what the callers report), plus the raw calls
//! nix has no wrapper for (close_range, pidfd_open, pidfd_send_signal, _exit).

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a `-1` return into the errno as `io::Error`.
fn cvt_long(r: libc::c_long) -> io::Result<libc::c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A path as a C string (paths with NUL bytes become an error).
pub fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains NUL"))
}

/// mount(2); `None` and empty `data` become NULL pointers.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let data = data.filter(|d| !d.is_empty());
    nix::mount::mount(
        source,
        target,
        fstype,
        MsFlags::from_bits_retain(flags),
        data,
    )
    .map_err(io::Error::from)
}

/// mount_setattr(2) (Linux 5.12) on the mount at `target` and, with
/// `recursive`, every mount below it: sets then clears MOUNT_ATTR_* bits.
pub fn mount_setattr(target: &Path, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let path = cpath(target)?;
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: path is a live C string and attr a live struct of the size
    // passed; the kernel only reads both.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// MOUNT_ATTR_RDONLY of mount_setattr(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;

pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    nix::mount::umount2(target, MntFlags::from_bits_retain(flags)).map_err(io::Error::from)
}

/// open(2) with O_CLOEXEC.
pub fn open(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::from_bits_retain(mode)).map_err(io::Error::from)
}

/// Marks every fd from `first` up close-on-exec (close_range CLOSE_RANGE_CLOEXEC),
/// so an exec failure can still be reported on the open fds.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes only integers; CLOEXEC closes nothing, so
    // no fd owned elsewhere in this process is invalidated.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    cvt_long(r).map(drop)
}

pub fn setns(fd: impl AsFd, nstype: libc::c_int) -> io::Result<()> {
    let flags = nix::sched::CloneFlags::from_bits_retain(nstype);
    nix::sched::setns(fd, flags).map_err(io::Error::from)
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes only integers.
    let r = cvt_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: on success the return is a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Sends `signo` (0: only check) to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signo: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is borrowed for the call; the info pointer is NULL,
    // which the kernel reads as a plain kill().
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signo,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    cvt_long(r).map(drop)
}

/// Waits up to `ms` for the process behind `pidfd` to exit; true when it did.
pub fn pidfd_wait(pidfd: &OwnedFd, ms: u16) -> bool {
    let mut p = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    nix::poll::poll(&mut p, PollTimeout::from(ms)).is_ok_and(|n| n > 0)
}

/// Ends this process at once, without the exit handlers and destructors
/// that belong to the process it was forked from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// A short description of an io::Error: the errno name and message.
pub fn errstr(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).to_string(),
        None => e.to_string(),
    }
}

/// Replaces `path` with `bytes` by a temp file in the same directory and a
/// rename: readers see the old or the new content, never a mix. Not
/// fsynced: nsrun's state is runtime state (it lives in /run and means
/// nothing after a reboot), and runc does not sync it either; two fsyncs
/// per file cost 1-10 ms on a disk.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replace_replaces_whole_and_leaves_no_temp_file() {
        let d = std::env::temp_dir().join(format!("nsrun-wr-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("state.json");
        write_replace(&p, b"old").unwrap();
        write_replace(&p, b"new content").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new content");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        assert!(write_replace(&d.join("no/such/dir"), b"x").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

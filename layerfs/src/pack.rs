//! A directory tree into a tar stream: a container's upper dir as a layer
//! (overlay whiteouts back to `.wh.` entries) or a flattened rootfs.
//!
//! The walk holds a dir fd per level and names entries relative to it
//! (one path component per lookup, one stat per entry), takes entry types
//! from readdir, and copies file contents without a trip through user
//! space when the output is a file (`pack_file`: sendfile).

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, PackError>;

/// Writes the tree under `dir` as a tar to `out`, entries sorted by name
/// (so the same tree gives the same bytes). With `upper`, `dir` is an
/// overlay upper dir: 0/0 char devices become `.wh.NAME` and an opaque dir
/// gets a `.wh..wh..opq` entry.
pub fn pack<W: Write>(dir: &Path, out: W, upper: bool) -> Result<W> {
    let sink = Stream {
        w: out,
        buf: vec![0; 256 * 1024],
    };
    Ok(run(dir, sink, upper, &[])?.w)
}

/// `pack` into a file, written through a 1 MiB buffer with file contents
/// sent by the kernel (sendfile) instead of read and written back. Does
/// not fsync: that is the caller's choice.
pub fn pack_file(dir: &Path, out: File, upper: bool) -> Result<File> {
    Ok(pack_file_with(dir, out, upper, true, &[])?.0)
}

/// `pack_file` of an upper dir leaving out the empty regular files at
/// `skip` (paths relative to `dir`): the mount points a runtime creates
/// for its bind mounts (`etc/hosts`, ...), which docker never commits.
pub fn pack_file_skipping(dir: &Path, out: File, skip: &[&str]) -> Result<File> {
    Ok(pack_file_with(dir, out, true, true, skip)?.0)
}

/// `pack_file`, also returning the bytes written (a pipe has no size to stat).
pub fn pack_file_counted(dir: &Path, out: File, upper: bool) -> Result<(File, u64)> {
    pack_file_with(dir, out, upper, true, &[])
}

fn pack_file_with(
    dir: &Path,
    out: File,
    upper: bool,
    sendfile: bool,
    skip: &[&str],
) -> Result<(File, u64)> {
    let sink = FileSink {
        f: out,
        buf: Vec::with_capacity(BUF),
        sendfile,
        written: 0,
    };
    let mut s = run(dir, sink, upper, skip)?;
    s.flush().map_err(|e| io_err("write", dir, e))?;
    Ok((s.f, s.written))
}

/// `docker cp`'s archive of one entry: `name` in the dir `parent` (not
/// followed when a symlink), named `top` in the tar, with everything
/// below it when a dir. `shown` names it in messages.
pub fn pack_entry<W: Write>(
    parent: BorrowedFd,
    name: &OsStr,
    top: &OsStr,
    out: W,
    shown: &Path,
) -> Result<W> {
    let sink = Stream {
        w: out,
        buf: vec![0; 256 * 1024],
    };
    let mut p = Packer {
        b: tar::Builder::new(sink),
        upper: false,
        links: HashMap::new(),
        skip: vec![],
    };
    let mut path = shown.to_path_buf();
    let mut rel = PathBuf::from(top);
    if let Some(child) = p.entry(parent, name, None, &path, &mut rel)? {
        p.walk(child, &mut path, &mut rel)?;
    }
    Ok(p.b
        .into_inner()
        .map_err(|e| io_err("finish tar for", shown, e))?
        .w)
}

fn run<S: Sink>(dir: &Path, sink: S, upper: bool, skip: &[&str]) -> Result<S> {
    let root = open_dir(None, dir.as_os_str()).map_err(|e| io_err("open", dir, e.into()))?;
    let mut p = Packer {
        b: tar::Builder::new(sink),
        upper,
        links: HashMap::new(),
        skip: skip.iter().map(PathBuf::from).collect(),
    };
    let mut path = dir.to_path_buf();
    let mut rel = PathBuf::new();
    p.walk(root, &mut path, &mut rel)?;
    p.b.into_inner()
        .map_err(|e| io_err("finish tar for", dir, e))
}

/// Where the tar goes: a writer that can also take a file's content.
trait Sink: Write {
    /// Appends exactly `len` bytes of `f` from its current offset: zeros
    /// stand in for bytes a shrinking file no longer has, bytes past `len`
    /// of a growing one are left out (the header already says `len`).
    fn file(&mut self, f: &File, len: u64) -> io::Result<()>;
}

/// Any writer: contents go through one reused buffer.
struct Stream<W> {
    w: W,
    buf: Vec<u8>,
}

impl<W: Write> Write for Stream<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.w.write(b)
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl<W: Write> Sink for Stream<W> {
    fn file(&mut self, mut f: &File, len: u64) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.w.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        zeros(&mut self.w, left)
    }
}

const BUF: usize = 1 << 20;
/// Files up to this size are read into the buffer (one read); larger ones
/// are sent by the kernel after a flush.
const SMALL: u64 = 64 * 1024;

/// A file written through a buffer, contents sent with sendfile.
struct FileSink {
    f: File,
    buf: Vec<u8>,
    /// Cleared when the kernel refuses sendfile for these files.
    sendfile: bool,
    /// Bytes written to `f` so far.
    written: u64,
}

impl FileSink {
    fn drain(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.f.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Reads up to `len` bytes of `f` into the buffer's tail; the count.
    fn read_in(&mut self, mut f: &File, len: u64) -> io::Result<u64> {
        let start = self.buf.len();
        let end = start + len as usize;
        self.buf.resize(end, 0);
        let mut at = start;
        while at < end {
            match f.read(&mut self.buf[at..end]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(at);
        Ok((at - start) as u64)
    }
}

impl Write for FileSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > BUF {
            self.drain()?;
        }
        if b.len() >= BUF {
            let n = self.f.write(b)?;
            self.written += n as u64;
            return Ok(n);
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.f.flush()
    }
}

impl Sink for FileSink {
    fn file(&mut self, f: &File, len: u64) -> io::Result<()> {
        let mut left = len;
        if len <= SMALL || !self.sendfile {
            while left > 0 {
                let want = left.min(BUF as u64 / 2);
                if self.buf.len() as u64 + want > BUF as u64 {
                    self.drain()?;
                }
                let n = self.read_in(f, want)?;
                if n == 0 {
                    break;
                }
                left -= n;
            }
            return zeros(self, left);
        }
        self.drain()?;
        while left > 0 {
            let chunk = left.min(1 << 30) as usize;
            // SAFETY: two valid fds; a null offset uses and moves f's position.
            let n = unsafe {
                libc::sendfile(
                    self.f.as_raw_fd(),
                    f.as_raw_fd(),
                    std::ptr::null_mut(),
                    chunk,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Nothing was sent yet: read and write this one instead.
                    Some(libc::EINVAL) | Some(libc::ENOSYS) if left == len => {
                        self.sendfile = false;
                        return self.file(f, len);
                    }
                    _ => return Err(e),
                }
            }
            if n == 0 {
                break;
            }
            left -= n as u64;
            self.written += n as u64;
        }
        zeros(self, left)
    }
}

fn zeros<W: Write + ?Sized>(w: &mut W, mut n: u64) -> io::Result<()> {
    let z = [0u8; 4096];
    while n > 0 {
        let k = n.min(z.len() as u64) as usize;
        w.write_all(&z[..k])?;
        n -= k as u64;
    }
    Ok(())
}

struct Packer<S: Sink> {
    b: tar::Builder<S>,
    upper: bool,
    /// (dev, ino) of files with several links -> the first path written.
    links: HashMap<(u64, u64), PathBuf>,
    /// Relative paths left out when they are empty regular files.
    skip: Vec<PathBuf>,
}

/// A file or dir opened for packing, or a name to stat (anything else).
enum Opened {
    Fd(OwnedFd, FileStat),
    Other(FileStat),
}

/// One dir of the walk: its children not packed yet. Its fd is kept for
/// the first `KEEP` levels and every `KEEP`th below; any other is closed
/// when the walk goes deeper and reopened from the nearest kept one
/// (`beneath::open_dir`) when it comes back, so a tree of any depth needs
/// neither a deep stack nor an fd per level.
struct Frame {
    fd: Option<OwnedFd>,
    /// This dir's name in its parent (empty for the root).
    name: OsString,
    /// (dev, ino): a reopened dir must be the one the walk left.
    id: (u64, u64),
    names: std::vec::IntoIter<(OsString, Option<Type>)>,
}

const KEEP: usize = 64;

impl<S: Sink> Packer<S> {
    /// Packs the tree below the dir open as `root`, at `path` (for
    /// messages) and `rel` (empty) in the tar: an iterative depth-first
    /// walk, entries sorted by name.
    fn walk(&mut self, root: OwnedFd, path: &mut PathBuf, rel: &mut PathBuf) -> Result<()> {
        let mut stack = vec![frame(root, OsString::new(), path)?];
        while let Some(top) = stack.last_mut() {
            let Some((name, kind)) = top.names.next() else {
                if stack.pop().is_some() && !stack.is_empty() {
                    path.pop();
                    rel.pop();
                }
                continue;
            };
            let dirfd = reopen(&mut stack, path)?;
            path.push(&name);
            rel.push(&name);
            if !self.skip.is_empty() && self.skipped(dirfd, &name, rel) {
                path.pop();
                rel.pop();
                continue;
            }
            match self.entry(dirfd.as_fd(), &name, kind, path, rel) {
                Ok(Some(child)) => {
                    let depth = stack.len();
                    if depth > KEEP && depth % KEEP != 0 {
                        // `depth` is the index of the parent frame.
                        stack[depth - 1].fd = None;
                    }
                    stack.push(frame(child, name, path)?);
                }
                Ok(None) => {
                    path.pop();
                    rel.pop();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether `rel` (`name` in `dirfd`) is left out: a skip path that is
    /// an empty regular file, or a dir (copied up for them) holding
    /// nothing else but such files.
    fn skipped(&self, dirfd: BorrowedFd, name: &OsStr, rel: &Path) -> bool {
        let empty_file = |fd: BorrowedFd, n: &OsStr| {
            fstatat(fd, n, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size == 0)
        };
        if self.skip.iter().any(|p| p == rel) {
            return empty_file(dirfd, name);
        }
        if !self.skip.iter().any(|p| p.parent() == Some(rel)) {
            return false;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let Ok(mut d) = Dir::openat(dirfd, name, flags, Mode::empty()) else {
            return false;
        };
        let fd = d.as_raw_fd();
        // SAFETY: `d` owns the fd and outlives this borrow.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut any = false;
        for e in d.iter() {
            let Ok(e) = e else { return false };
            let n = OsStr::from_bytes(e.file_name().to_bytes());
            if n == "." || n == ".." {
                continue;
            }
            if !(self.skip.iter().any(|p| *p == rel.join(n)) && empty_file(bfd, n)) {
                return false;
            }
            any = true;
        }
        any
    }

    fn entry(
        &mut self,
        dirfd: BorrowedFd,
        name: &OsStr,
        kind: Option<Type>,
        path: &Path,
        rel: &mut PathBuf,
    ) -> Result<Option<OwnedFd>> {
        let opened = self.open(dirfd, name, kind, path)?;
        let st = match &opened {
            Opened::Fd(_, st) | Opened::Other(st) => *st,
        };
        let fmt = st.st_mode & libc::S_IFMT;
        if self.upper && fmt == libc::S_IFCHR && st.st_rdev == 0 {
            let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
            return self.empty_file(&wh).map(|_| None);
        }
        let mut h = header(&st);
        match &opened {
            Opened::Fd(fd, _) => self.xattrs(Xattrs::Fd(fd.as_fd()), path)?,
            Opened::Other(_) => {
                // Through the parent's fd: the full path may be longer
                // than PATH_MAX, and cannot be redirected above it.
                let mut p = format!("/proc/self/fd/{}/", dirfd.as_raw_fd()).into_bytes();
                p.extend_from_slice(name.as_bytes());
                let p =
                    CString::new(p).map_err(|e| io_err("listxattr", path, io::Error::other(e)))?;
                self.xattrs(Xattrs::Path(&p), path)?
            }
        }
        let write_err = |e| io_err("write", path, e);
        match (fmt, opened) {
            (libc::S_IFDIR, Opened::Fd(fd, _)) => {
                h.set_entry_type(tar::EntryType::Directory);
                self.b
                    .append_data(&mut h, &*rel, io::empty())
                    .map_err(write_err)?;
                if self.upper
                    && fgetxattr(fd.as_fd(), c"trusted.overlay.opaque").as_deref() == Some(b"y")
                {
                    self.empty_file(&rel.join(".wh..wh..opq"))?;
                }
                return Ok(Some(fd));
            }
            (libc::S_IFREG, Opened::Fd(fd, st)) => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        return self
                            .b
                            .append_link(&mut h, &*rel, &first)
                            .map(|_| None)
                            .map_err(write_err);
                    }
                    self.links.insert(key, rel.clone());
                }
                let len = st.st_size.max(0) as u64;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(len);
                // The header (and any long-name entry) alone: no data is
                // copied from an empty reader, so no padding either.
                self.b
                    .append_data(&mut h, &*rel, io::empty())
                    .map_err(write_err)?;
                let f = File::from(fd);
                let s = self.b.get_mut();
                s.file(&f, len).map_err(|e| io_err("copy", path, e))?;
                pad(s, len).map_err(write_err)?;
            }
            (libc::S_IFLNK, _) => {
                let target =
                    readlinkat(dirfd, name).map_err(|e| io_err("readlink", path, e.into()))?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, &*rel, &target)
                    .map_err(write_err)?;
            }
            (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO, _) => {
                let kind = match fmt {
                    libc::S_IFIFO => tar::EntryType::Fifo,
                    libc::S_IFCHR => tar::EntryType::Char,
                    _ => tar::EntryType::Block,
                };
                h.set_entry_type(kind);
                if fmt != libc::S_IFIFO {
                    let _ = h.set_device_major(libc::major(st.st_rdev));
                    let _ = h.set_device_minor(libc::minor(st.st_rdev));
                }
                self.b
                    .append_data(&mut h, &*rel, io::empty())
                    .map_err(write_err)?;
            }
            // Sockets are not content: skipped, as docker does.
            _ => {}
        }
        Ok(None)
    }

    /// Files and dirs are opened (their stat, xattrs and content come from
    /// the fd); anything else is only stat'ed. Never follows a symlink.
    fn open(
        &self,
        dirfd: BorrowedFd,
        name: &OsStr,
        kind: Option<Type>,
        path: &Path,
    ) -> Result<Opened> {
        let flags = match kind {
            Some(Type::File) => OFlag::O_RDONLY,
            Some(Type::Directory) => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            _ => {
                let st = fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("stat", path, e.into()))?;
                match st.st_mode & libc::S_IFMT {
                    libc::S_IFREG => OFlag::O_RDONLY,
                    libc::S_IFDIR => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    _ => return Ok(Opened::Other(st)),
                }
            }
        };
        // O_NONBLOCK: a fifo swapped in since readdir must not block the open.
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        match openat(dirfd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let st = fstat(&fd).map_err(|e| io_err("stat", path, e.into()))?;
                match st.st_mode & libc::S_IFMT {
                    libc::S_IFREG | libc::S_IFDIR => Ok(Opened::Fd(fd, st)),
                    _ => Ok(Opened::Other(st)),
                }
            }
            // Replaced since readdir by a symlink (or not a dir any more):
            // packed as whatever it is now.
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                let st = fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("stat", path, e.into()))?;
                Ok(Opened::Other(st))
            }
            Err(e) => Err(io_err("open", path, e.into())),
        }
    }

    fn empty_file(&mut self, rel: &Path) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        self.b
            .append_data(&mut h, rel, io::empty())
            .map_err(|e| io_err("write", rel, e))
    }

    /// PAX `SCHILY.xattr.*` records for the next entry (overlay's own
    /// `trusted.overlay.*` attributes are not content and stay behind).
    fn xattrs(&mut self, at: Xattrs, path: &Path) -> Result<()> {
        let names = listxattr(at).map_err(|e| io_err("listxattr", path, e))?;
        if names.is_empty() {
            return Ok(());
        }
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
            if n.starts_with(b"trusted.overlay.") {
                continue;
            }
            let Ok(c) = CString::new(n) else { continue };
            if let Some(v) = getxattr_at(at, &c) {
                recs.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(n)), v));
            }
        }
        if !recs.is_empty() {
            self.b
                .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| io_err("write", path, e))?;
        }
        Ok(())
    }
}

/// A frame for the dir open as `fd`: its children, sorted by name.
fn frame(fd: OwnedFd, name: OsString, path: &Path) -> Result<Frame> {
    let st = fstat(&fd).map_err(|e| io_err("stat", path, e.into()))?;
    let mut names: Vec<(OsString, Option<Type>)> = Vec::new();
    let mut d = Dir::openat(
        fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("read dir", path, e.into()))?;
    for e in d.iter() {
        let e = e.map_err(|e| io_err("read dir", path, e.into()))?;
        let n = e.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push((OsStr::from_bytes(n).to_os_string(), e.file_type()));
    }
    names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Frame {
        fd: Some(fd),
        name,
        id: (st.st_dev, st.st_ino),
        names: names.into_iter(),
    })
}

/// The top frame's dir fd, reopened below the nearest frame that kept one
/// when it was closed; a dir renamed or replaced meanwhile is an error.
fn reopen<'a>(stack: &'a mut [Frame], path: &Path) -> Result<BorrowedFd<'a>> {
    let top = stack.len() - 1;
    if stack[top].fd.is_none() {
        let kept = (0..top)
            .rev()
            .find(|&i| stack[i].fd.is_some())
            .expect("root kept");
        let comps: Vec<OsString> = stack[kept + 1..].iter().map(|f| f.name.clone()).collect();
        let base = stack[kept].fd.as_ref().expect("kept").as_fd();
        let fd =
            crate::beneath::open_dir(base, &comps).map_err(|e| io_err("reopen", path, e.into()))?;
        let st = fstat(&fd).map_err(|e| io_err("stat", path, e.into()))?;
        if (st.st_dev, st.st_ino) != stack[top].id {
            return Err(io_err(
                "reopen",
                path,
                io::Error::other("directory replaced during the walk"),
            ));
        }
        stack[top].fd = Some(fd);
    }
    Ok(stack[top].fd.as_ref().expect("just set").as_fd())
}

/// Zeros after `len` bytes of content, up to the next 512-byte block.
fn pad<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let rem = (512 - len % 512) % 512;
    w.write_all(&[0u8; 512][..rem as usize])
}

fn header(st: &FileStat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// What xattr calls act on: an open fd, or a path (not followed).
#[derive(Clone, Copy)]
enum Xattrs<'a> {
    Fd(BorrowedFd<'a>),
    Path(&'a CStr),
}

/// The NUL-separated names of the xattrs of `at`; empty when the
/// filesystem has none.
fn listxattr(at: Xattrs) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: valid fd or C path, and a buffer of the given length.
        let n = unsafe {
            match at {
                Xattrs::Fd(fd) => {
                    libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                }
                Xattrs::Path(p) => libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()),
            }
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(vec![]),
            _ => return Err(e),
        }
    }
}

fn getxattr_at(at: Xattrs, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid fd or C path, C name, and a buffer of the given length.
        let r = unsafe {
            match at {
                Xattrs::Fd(fd) => libc::fgetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                ),
                Xattrs::Path(p) => libc::lgetxattr(
                    p.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                ),
            }
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Some(buf);
        }
        if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 8, 0);
            continue;
        }
        return None;
    }
}

fn fgetxattr(fd: BorrowedFd, name: &CStr) -> Option<Vec<u8>> {
    getxattr_at(Xattrs::Fd(fd), name)
}

/// One xattr of `path` (not following a symlink), None when absent.
pub fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    getxattr_at(Xattrs::Path(&p), &n)
}

fn open_dir(dirfd: Option<BorrowedFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match dirfd {
        Some(fd) => openat(fd, name, flags | OFlag::O_NOFOLLOW, Mode::empty()),
        None => nix::fcntl::open(name, flags, Mode::empty()),
    }
}

fn io_err(step: &'static str, path: &Path, source: io::Error) -> PackError {
    PackError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_stream_outputs_are_the_same_tar() {
        let dir = std::env::temp_dir().join(format!("pack-test-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        let big: Vec<u8> = (0..(3 * BUF as u32 + 777))
            .map(|i| (i % 249) as u8)
            .collect();
        std::fs::write(src.join("d/big"), &big).unwrap();
        std::fs::write(src.join("small"), b"small").unwrap();
        std::os::unix::fs::symlink("small", src.join("link")).unwrap();
        let streamed = pack(&src, Vec::new(), false).unwrap();
        let mut outs = vec![];
        for sendfile in [true, false] {
            let p = dir.join(format!("out-{sendfile}"));
            let f = File::create(&p).unwrap();
            drop(pack_file_with(&src, f, false, sendfile, &[]).unwrap());
            outs.push(std::fs::read(&p).unwrap());
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(outs[0] == streamed, "sendfile output differs");
        assert!(outs[1] == streamed, "buffered output differs");
        let mut ar = tar::Archive::new(&streamed[..]);
        let mut seen = vec![];
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            if path == "d/big" {
                let mut got = Vec::new();
                e.read_to_end(&mut got).unwrap();
                assert!(got == big);
            }
            seen.push(path);
        }
        assert_eq!(seen, vec!["d", "d/big", "link", "small"]);
    }
}

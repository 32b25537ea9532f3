//! Safe extraction of one layer tar into a fresh directory.
//!
//! Every entry's parent is resolved inside the layer dir without following
//! symlinks (openat2 `RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH`, or a per-component
//! `O_NOFOLLOW` walk that creates missing dirs), and the entry itself is
//! created with `*at` calls relative to that parent, so no entry can write
//! outside the layer however earlier entries were crafted. `..` anywhere is
//! refused; a leading `/` is stripped (as docker does). Whiteouts become
//! overlay whiteouts: `.wh.NAME` a 0/0 char device, `.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on the directory.

use crate::split::SharedSplit;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Why an entry could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("unsafe tar entry {entry:?}: {why}")]
    Unsafe { entry: String, why: String },
    #[error("unsupported tar entry {entry:?}: type {kind}")]
    Unsupported { entry: String, kind: String },
    #[error("reading the layer tar: {0}")]
    Tar(#[source] io::Error),
    #[error("{step} {entry:?}: {source}")]
    Io {
        step: &'static str,
        entry: String,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ExtractError>;

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT: &str = ".wh.";

/// Extracts the tar stream `reader` into the existing empty directory `dir`.
/// Stops at the tar's end-of-archive marker; the caller drains the rest.
/// With `split`, file contents are marked in the tar-split record.
pub fn unpack<R: Read>(reader: R, dir: &Path, split: Option<SharedSplit>) -> Result<()> {
    let root = open_dir(None, dir.as_os_str()).map_err(|e| io_err("open", dir, e))?;
    unpack_with(reader, root, split, None, false)
}

/// `docker cp`'s extraction into the dir `root` (already open, e.g.
/// resolved inside a container's rootfs): existing files are replaced,
/// `.wh.` names are plain names, and with `rename_top` the first component
/// of every entry path is that name (a copy to a new name).
pub fn unpack_cp<R: Read>(reader: R, root: OwnedFd, rename_top: Option<OsString>) -> Result<()> {
    unpack_with(reader, root, None, rename_top, true)
}

fn unpack_with<R: Read>(
    reader: R,
    root: OwnedFd,
    split: Option<SharedSplit>,
    rename_top: Option<OsString>,
    plain: bool,
) -> Result<()> {
    let owner = Owner::current(root.as_fd());
    let mut u = Unpacker {
        owner,
        root,
        cache: None,
        retired: Vec::new(),
        split,
        dir_times: Vec::new(),
        buf: vec![0; 256 * 1024],
        rename_top,
        plain,
    };
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(ExtractError::Tar)? {
        let mut entry = entry.map_err(ExtractError::Tar)?;
        u.entry(&mut entry)?;
    }
    u.finish();
    Ok(())
}

/// A tar entry path as layer-relative components: leading `/` and `.`
/// dropped, `..` refused.
pub fn clean(path: &Path) -> std::result::Result<Vec<OsString>, String> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..'".into()),
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::Prefix(_) => return Err("path has a prefix".into()),
        }
    }
    Ok(out)
}

struct Unpacker {
    root: OwnedFd,
    /// The last resolved parent dir: tars list a dir's children together.
    cache: Option<(Vec<OsString>, OwnedFd)>,
    /// Fds replaced in the cache during the current entry: a `Dir` handed
    /// out earlier in the entry may still use them, so they close at the
    /// next entry.
    retired: Vec<OwnedFd>,
    split: Option<SharedSplit>,
    /// Dir mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, i64)>,
    buf: Vec<u8>,
    /// Who owns what we create, and the umask it is created under: an
    /// entry that creation already gives the right owner and mode gets no
    /// chown/chmod (tar does both for every file; half the syscalls of a
    /// small file).
    owner: Owner,
    /// `cp`: the first path component of every entry becomes this name.
    rename_top: Option<OsString>,
    /// `cp`: `.wh.` names are plain files, not whiteouts.
    plain: bool,
}

/// The owner and mode a newly created file gets without chown/chmod.
#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
    umask: u32,
    /// A setgid dir may be a parent: new files take its group, so the gid
    /// is not known without a stat. Set once any dir has the bit.
    setgid: bool,
}

impl Owner {
    fn current(root: BorrowedFd) -> Owner {
        // SAFETY: plain syscalls; the umask is set back at once (no other
        // thread of ours creates files meanwhile).
        let (uid, gid, umask) = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            (libc::geteuid(), libc::getegid(), m as u32)
        };
        let setgid = fstat(root).map_or(true, |st| st.st_mode & libc::S_ISGID != 0);
        Owner {
            uid,
            gid,
            umask,
            setgid,
        }
    }

    /// True when a file created now already has `m`'s owner.
    fn owns(&self, m: &Meta) -> bool {
        !self.setgid && m.uid == self.uid && m.gid == self.gid
    }

    /// The mode to create a regular file with: its final permission bits
    /// when no chmod is needed after, else 0600 until the chmod.
    fn create_mode(&self, m: &Meta) -> u32 {
        if self.needs_chmod(m) {
            0o600
        } else {
            m.mode & 0o777
        }
    }

    /// setuid/setgid/sticky bits (cleared by chown, filtered at creation)
    /// and bits the umask would strip need an explicit chmod.
    fn needs_chmod(&self, m: &Meta) -> bool {
        m.mode & 0o7000 != 0 || m.mode & self.umask != 0 || !self.owns(m)
    }
}

/// What an entry's header says, with PAX overrides applied.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>) -> Result<()> {
        self.retired.clear();
        let kind = e.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let raw = e.path().map_err(ExtractError::Tar)?.into_owned();
        let name = raw.display().to_string();
        let unsafe_ = |why: &str| ExtractError::Unsafe {
            entry: name.clone(),
            why: why.to_string(),
        };
        let mut rel = clean(&raw).map_err(|w| unsafe_(&w))?;
        if let (Some(n), Some(first)) = (&self.rename_top, rel.first_mut()) {
            *first = n.clone();
        }
        let meta = self.meta(e, &name)?;
        let Some((base, parent)) = rel.split_last() else {
            // "./": the layer root itself.
            if kind.is_dir() {
                self.owner.setgid |= meta.mode & libc::S_ISGID != 0;
                self.set_meta(self.root.as_fd(), OsStr::new("."), &meta, &name, true)?;
                return Ok(());
            }
            return Err(unsafe_("names the layer root but is not a directory"));
        };
        let base_b = base.as_bytes();
        if let Some(target) = base_b
            .strip_prefix(WHITEOUT.as_bytes())
            .filter(|_| !self.plain)
        {
            return self.whiteout(parent, base, target, &name);
        }
        let pfd = self.parent(parent, &name)?;
        let full: PathBuf = rel.iter().collect();
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let mode = Mode::from_bits_truncate(self.owner.create_mode(&meta));
                let fd = self.create(pfd, base, &name, "create", || {
                    openat(
                        pfd.as_fd(),
                        base.as_os_str(),
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        mode,
                    )
                })?;
                let mut f = File::from(fd);
                // Sparse files read back expanded: their stored bytes stay raw.
                let split = self
                    .split
                    .clone()
                    .filter(|_| kind != T::GNUSparse && e.size() > 0);
                if let Some(sp) = &split {
                    sp.borrow_mut().begin_file(full.as_os_str().as_bytes());
                }
                loop {
                    let n = match e.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => return Err(ExtractError::Tar(err)),
                    };
                    f.write_all(&self.buf[..n])
                        .map_err(|err| ExtractError::Io {
                            step: "write",
                            entry: name.clone(),
                            source: err,
                        })?;
                }
                if let Some(sp) = &split {
                    sp.borrow_mut().end_file();
                }
                self.set_meta(f.as_fd(), OsStr::new(""), &meta, &name, false)?;
            }
            T::Directory => {
                let mkdir = || {
                    mkdirat(
                        pfd.as_fd(),
                        base.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                };
                match mkdir() {
                    Ok(()) => {}
                    // An existing dir stays (its children too); anything else is replaced.
                    Err(Errno::EEXIST) => {
                        if !self.clear(pfd.as_fd(), base, &name, true)? {
                            mkdir().map_err(|e| io_err("mkdir", &name, e))?;
                        }
                    }
                    Err(e) => return Err(io_err("mkdir", &name, e)),
                }
                let dfd =
                    open_dir(Some(pfd.as_fd()), base).map_err(|e| io_err("open dir", &name, e))?;
                // Files created under it from now on take its group.
                self.owner.setgid |= meta.mode & libc::S_ISGID != 0;
                self.set_meta(dfd.as_fd(), OsStr::new(""), &meta, &name, true)?;
                self.dir_times.push((full, meta.mtime));
            }
            T::Symlink => {
                let target = e
                    .link_name()
                    .map_err(ExtractError::Tar)?
                    .ok_or_else(|| unsafe_("symlink without a target"))?;
                self.create(pfd, base, &name, "symlink", || {
                    symlinkat(target.as_os_str(), pfd.as_fd(), base.as_os_str())
                })?;
                self.set_link_meta(pfd.as_fd(), base, &meta, &name)?;
            }
            T::Link => {
                let target = e
                    .link_name()
                    .map_err(ExtractError::Tar)?
                    .ok_or_else(|| unsafe_("hardlink without a target"))?;
                let trel = clean(&target)
                    .map_err(|w| unsafe_(&format!("hardlink target {}: {w}", target.display())))?;
                let Some((tbase, tparent)) = trel.split_last() else {
                    return Err(unsafe_("hardlink to the layer root"));
                };
                let tpfd = self.parent(tparent, &name)?;
                match fstatat(
                    tpfd.as_fd(),
                    tbase.as_os_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                        return Err(unsafe_("hardlink to a directory"));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(unsafe_(&format!(
                            "hardlink target {} is not in this layer",
                            target.display()
                        )));
                    }
                }
                if tparent == parent && tbase == base {
                    return Ok(());
                }
                // Flags 0: a symlink target is linked itself, never followed.
                self.create(pfd, base, &name, "link", || {
                    linkat(
                        tpfd.as_fd(),
                        tbase.as_os_str(),
                        pfd.as_fd(),
                        base.as_os_str(),
                        AtFlags::empty(),
                    )
                })?;
            }
            T::Char | T::Block | T::Fifo => {
                let (sflag, dev) = match kind {
                    T::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = e.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                        let f = if kind == T::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (f, libc::makedev(major, minor))
                    }
                };
                self.create(pfd, base, &name, "mknod", || {
                    mknodat(
                        pfd.as_fd(),
                        base.as_os_str(),
                        sflag,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )
                })?;
                fchownat(
                    pfd.as_fd(),
                    base.as_os_str(),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err("chown", &name, e))?;
                fchmodat(
                    pfd.as_fd(),
                    base.as_os_str(),
                    Mode::from_bits_truncate(meta.mode),
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| io_err("chmod", &name, e))?;
                self.set_link_meta(pfd.as_fd(), base, &meta, &name)?;
            }
            other => {
                return Err(ExtractError::Unsupported {
                    entry: name,
                    kind: format!("{other:?}"),
                });
            }
        }
        Ok(())
    }

    /// A whiteout entry `parent/.wh.TARGET` (or the opaque marker).
    fn whiteout(
        &mut self,
        parent: &[OsString],
        base: &OsStr,
        target: &[u8],
        name: &str,
    ) -> Result<()> {
        let pfd = self.parent(parent, name)?;
        if base == OPAQUE {
            let key = c"trusted.overlay.opaque";
            // SAFETY: valid fd, NUL-terminated key, value slice of len 1.
            let rc = unsafe {
                libc::fsetxattr(pfd.as_raw_fd(), key.as_ptr(), b"y".as_ptr().cast(), 1, 0)
            };
            if rc != 0 {
                return Err(ExtractError::Io {
                    step: "set opaque xattr",
                    entry: name.into(),
                    source: io::Error::last_os_error(),
                });
            }
            return Ok(());
        }
        if target.starts_with(WHITEOUT.as_bytes()) {
            // Other `.wh..wh.` metadata (aufs hardlink dirs): not content.
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(ExtractError::Unsafe {
                entry: name.into(),
                why: "bad whiteout name".into(),
            });
        }
        let target = OsStr::from_bytes(target);
        self.create(pfd, target, name, "mknod whiteout", || {
            mknodat(
                pfd.as_fd(),
                target,
                SFlag::S_IFCHR,
                Mode::empty(),
                libc::makedev(0, 0),
            )
        })?;
        Ok(())
    }

    /// The fd of the parent dir `comps`, never reached through a symlink;
    /// missing dirs are created 0755 (as docker does).
    fn parent(&mut self, comps: &[OsString], name: &str) -> Result<Dir> {
        if comps.is_empty() {
            return Ok(Dir(self.root.as_raw_fd()));
        }
        let mut deeper = None;
        if let Some((p, fd)) = &self.cache {
            if p == comps {
                return Ok(Dir(fd.as_raw_fd()));
            }
            // A tar lists a dir's subdirs right after it: going one level
            // deeper walks on from the cached dir, so a deep chain costs a
            // lookup per level, not one per level per entry.
            if comps.len() > p.len() && comps.len() - p.len() <= 4 && comps.starts_with(p) {
                deeper = Some(self.walk_from(fd.as_fd(), &comps[p.len()..], comps, name)?);
            }
        }
        let fd = match deeper {
            Some(fd) => fd,
            None => match crate::beneath::open_dir(self.root.as_fd(), comps) {
                Ok(fd) => fd,
                Err(Errno::ELOOP) | Err(Errno::EXDEV) => {
                    return Err(self.unsafe_parent(comps, name))
                }
                Err(Errno::ENOTDIR) => {
                    let rel: PathBuf = comps.iter().collect();
                    return Err(ExtractError::Unsafe {
                        entry: name.into(),
                        why: format!("parent {} is not a directory", rel.display()),
                    });
                }
                Err(_) => self.walk(comps, name)?,
            },
        };
        let dir = Dir(fd.as_raw_fd());
        self.retire_cache();
        self.cache = Some((comps.to_vec(), fd));
        Ok(dir)
    }

    /// Drops the cached parent, keeping its fd open until the next entry.
    fn retire_cache(&mut self) {
        if let Some((_, fd)) = self.cache.take() {
            self.retired.push(fd);
        }
    }

    /// Runs `create`; when the name is taken, clears it (see `clear`) and
    /// runs it again. Trying first saves a stat per entry.
    fn create<T>(
        &mut self,
        pfd: Dir,
        base: &OsStr,
        name: &str,
        step: &'static str,
        create: impl Fn() -> nix::Result<T>,
    ) -> Result<T> {
        match create() {
            Err(Errno::EEXIST) => {
                self.clear(pfd.as_fd(), base, name, false)?;
                create().map_err(|e| io_err(step, name, e))
            }
            r => r.map_err(|e| io_err(step, name, e)),
        }
    }

    /// Component-by-component walk creating missing dirs (openat2's ENOENT
    /// path, or a kernel without openat2).
    fn walk(&self, comps: &[OsString], name: &str) -> Result<OwnedFd> {
        self.walk_from(self.root.as_fd(), comps, comps, name)
    }

    /// `walk` of `rest` (the end of `comps`) from the dir `from`.
    fn walk_from(
        &self,
        from: BorrowedFd,
        rest: &[OsString],
        comps: &[OsString],
        name: &str,
    ) -> Result<OwnedFd> {
        let mut cur = from.try_clone_to_owned().map_err(|e| ExtractError::Io {
            step: "dup",
            entry: name.into(),
            source: e,
        })?;
        for c in rest {
            let next = match open_dir(Some(cur.as_fd()), c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(cur.as_fd(), c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io_err("mkdir parent", name, e)),
                    }
                    open_dir(Some(cur.as_fd()), c).map_err(|e| io_err("open parent", name, e))?
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(self.unsafe_parent(comps, name))
                }
                Err(e) => return Err(io_err("open parent", name, e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    fn unsafe_parent(&self, comps: &[OsString], name: &str) -> ExtractError {
        let rel: PathBuf = comps.iter().collect();
        ExtractError::Unsafe {
            entry: name.into(),
            why: format!(
                "parent {} is a symlink or not a directory (would write through it)",
                rel.display()
            ),
        }
    }

    /// Makes room for a new entry `base` in `pfd`: a dir stays when the new
    /// entry is a dir (returns true), anything else is removed.
    fn clear(&mut self, pfd: BorrowedFd, base: &OsStr, name: &str, want_dir: bool) -> Result<bool> {
        let st = match fstatat(pfd, base, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(io_err("stat", name, e)),
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && want_dir {
            return Ok(true);
        }
        if is_dir {
            // The cached parent may be inside the removed tree.
            self.retire_cache();
            let path = proc_path(pfd, base);
            std::fs::remove_dir_all(&path).map_err(|e| ExtractError::Io {
                step: "replace dir",
                entry: name.into(),
                source: e,
            })?;
        } else {
            unlinkat(pfd, base, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io_err("replace", name, e))?;
        }
        Ok(false)
    }

    /// Owner, mode, xattrs and mtime on an open file or dir.
    fn set_meta(
        &self,
        fd: BorrowedFd,
        _name_in: &OsStr,
        m: &Meta,
        name: &str,
        is_dir: bool,
    ) -> Result<()> {
        // SAFETY: plain syscalls on a valid fd. chown before chmod: chown
        // clears setuid bits; xattrs after chown: it clears capabilities.
        // A new file (not a dir: those may have been there) that creation
        // already gave the right owner and mode skips chown and chmod.
        let (chown, chmod) = if is_dir {
            (true, true)
        } else {
            (!self.owner.owns(m), self.owner.needs_chmod(m))
        };
        unsafe {
            if chown && libc::fchown(fd.as_raw_fd(), m.uid, m.gid) != 0 {
                return Err(ExtractError::Io {
                    step: "chown",
                    entry: name.into(),
                    source: io::Error::last_os_error(),
                });
            }
            if chmod && libc::fchmod(fd.as_raw_fd(), m.mode) != 0 {
                return Err(ExtractError::Io {
                    step: "chmod",
                    entry: name.into(),
                    source: io::Error::last_os_error(),
                });
            }
            for (k, v) in &m.xattrs {
                if libc::fsetxattr(fd.as_raw_fd(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0) != 0
                    && !xattr_unsupported()
                {
                    return Err(ExtractError::Io {
                        step: "setxattr",
                        entry: name.into(),
                        source: io::Error::last_os_error(),
                    });
                }
            }
        }
        if !is_dir {
            let t = TimeSpec::new(m.mtime, 0);
            let _ = nix::sys::stat::futimens(fd, &t, &t);
        }
        Ok(())
    }

    /// Owner, xattrs and mtime on a symlink or device, without following it.
    fn set_link_meta(&self, pfd: BorrowedFd, base: &OsStr, m: &Meta, name: &str) -> Result<()> {
        if !self.owner.owns(m) {
            fchownat(
                pfd,
                base,
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err("chown", name, e))?;
        }
        if !m.xattrs.is_empty() {
            let p =
                CString::new(proc_path(pfd, base).into_os_string().into_vec()).map_err(|_| {
                    ExtractError::Unsafe {
                        entry: name.into(),
                        why: "NUL in path".into(),
                    }
                })?;
            for (k, v) in &m.xattrs {
                // SAFETY: NUL-terminated path and key, valid value slice.
                if unsafe { libc::lsetxattr(p.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0) }
                    != 0
                    && !xattr_unsupported()
                {
                    return Err(ExtractError::Io {
                        step: "setxattr",
                        entry: name.into(),
                        source: io::Error::last_os_error(),
                    });
                }
            }
        }
        let t = TimeSpec::new(m.mtime, 0);
        let _ = utimensat(pfd, base, &t, &t, UtimensatFlags::NoFollowSymlink);
        Ok(())
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<R>, name: &str) -> Result<Meta> {
        let h = e.header();
        let mut m = Meta {
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
        };
        if let Some(exts) = e.pax_extensions().map_err(ExtractError::Tar)? {
            for ext in exts {
                let ext = ext.map_err(ExtractError::Tar)?;
                let Ok(key) = ext.key() else { continue };
                let num = || {
                    ext.value()
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                    let k = CString::new(x).map_err(|_| ExtractError::Unsafe {
                        entry: name.into(),
                        why: "NUL in xattr name".into(),
                    })?;
                    m.xattrs.push((k, ext.value_bytes().to_vec()));
                } else if key == "uid" {
                    m.uid = num().unwrap_or(m.uid as i64) as u32;
                } else if key == "gid" {
                    m.gid = num().unwrap_or(m.gid as i64) as u32;
                } else if key == "mtime" {
                    m.mtime = num().unwrap_or(m.mtime);
                }
            }
        }
        Ok(m)
    }

    fn finish(&mut self) {
        // Deepest first is not needed: setting a dir's times does not touch
        // its parent. Tar order puts a dir before its subdirs: each one is
        // opened from the previous when below it (a deep chain stays linear).
        let mut last: Option<(PathBuf, OwnedFd)> = None;
        for (path, mtime) in std::mem::take(&mut self.dir_times) {
            let comps = |p: &Path| -> Vec<OsString> {
                p.components()
                    .map(|c| c.as_os_str().to_os_string())
                    .collect()
            };
            let opened = match &last {
                Some((lp, lfd)) if path.starts_with(lp) => {
                    let rest = path.strip_prefix(lp).map(comps).unwrap_or_default();
                    crate::beneath::open_dir(lfd.as_fd(), &rest)
                }
                _ => crate::beneath::open_dir(self.root.as_fd(), &comps(&path)),
            };
            // A later entry may have replaced the dir: then there is nothing to set.
            if let Ok(fd) = opened {
                let t = TimeSpec::new(mtime, 0);
                let _ = nix::sys::stat::futimens(&fd, &t, &t);
                last = Some((path, fd));
            }
        }
    }
}

/// After a failed setxattr: true when the store's filesystem (or the
/// object: user.* on a symlink) cannot hold that attribute, which docker
/// also skips rather than failing the layer.
fn xattr_unsupported() -> bool {
    matches!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOTSUP) | Some(libc::EPERM)
    )
}

/// A directory fd owned by the unpacker (the root, the cached parent, or a
/// retired one), valid until the next entry starts.
#[derive(Clone, Copy)]
struct Dir(RawFd);

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open until the next entry (see `retired`).
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

impl AsRawFd for Dir {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn open_dir(dirfd: Option<BorrowedFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match dirfd {
        Some(fd) => openat(fd, name, flags, Mode::empty()),
        None => nix::fcntl::open(name, flags, Mode::empty()),
    }
}

/// `/proc/self/fd/N/base`: a path through a dir fd we already hold, so
/// path-based calls (remove_dir_all) cannot be redirected by a symlink above.
fn proc_path(dirfd: BorrowedFd, base: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(base)
}

fn io_err(step: &'static str, entry: impl AsRef<Path>, e: Errno) -> ExtractError {
    ExtractError::Io {
        step,
        entry: entry.as_ref().display().to_string(),
        source: io::Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_root_and_dots() {
        let c = clean(Path::new("/./a/./b/")).unwrap();
        assert_eq!(c, vec![OsString::from("a"), OsString::from("b")]);
        assert!(clean(Path::new("./")).unwrap().is_empty());
    }

    #[test]
    fn clean_refuses_dotdot() {
        assert!(clean(Path::new("a/../b")).is_err());
        assert!(clean(Path::new("../x")).is_err());
    }
}

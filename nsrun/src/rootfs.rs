//! The container's filesystem: private propagation, the rootfs bind, the
//! config's mounts (targets resolved inside the rootfs), /dev, pivot_root,
//! masked and read-only paths. Runs in the init, in its new mount namespace.

use crate::resolve::{self, Kind};
use crate::sys;
use nix::errno::Errno;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{step} {path}: {err}")]
    Step {
        step: String,
        path: PathBuf,
        err: String,
    },
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
}

fn step(step: impl Into<String>, path: &Path, e: std::io::Error) -> RootfsError {
    RootfsError::Step {
        step: step.into(),
        path: path.to_path_buf(),
        err: sys::errstr(&e),
    }
}

/// The propagation flag for `linux.rootfsPropagation`.
pub fn propagation_flag(p: &str) -> Option<libc::c_ulong> {
    Some(match p {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Mount options split into flags, propagation flags and the data string.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opts {
    pub flags: libc::c_ulong,
    pub propagation: libc::c_ulong,
    pub data: String,
    pub bind: bool,
    /// `tmpcopyup`: the tmpfs starts with a copy of what it covers.
    pub tmpcopyup: bool,
    /// `rro` / `rrw`: read-only (or writable) recursively, every submount
    /// too, by mount_setattr.
    pub recursive_ro: Option<bool>,
}

pub fn parse_options(opts: &[String]) -> Opts {
    let mut o = Opts::default();
    let mut data = Vec::new();
    for s in opts {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match s.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (libc::MS_BIND, 0)
            }
            "rbind" => {
                o.bind = true;
                (libc::MS_BIND | libc::MS_REC, 0)
            }
            "defaults" => (0, 0),
            "tmpcopyup" => {
                o.tmpcopyup = true;
                (0, 0)
            }
            "rro" => {
                o.recursive_ro = Some(true);
                (0, 0)
            }
            "rrw" => {
                o.recursive_ro = Some(false);
                (0, 0)
            }
            p => {
                if let Some(f) = propagation_flag(p) {
                    o.propagation |= f;
                } else {
                    data.push(p.to_string());
                }
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o.data = data.join(",");
    o
}

/// Steps before pivot_root. `rootfs` is the absolute host path.
pub fn prepare(spec: &Spec, rootfs: &Path, userns: bool) -> Result<(), RootfsError> {
    // Nothing mounted from here on may propagate to the host.
    sys::mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .map_err(|e| step("make / private (MS_REC|MS_PRIVATE)", Path::new("/"), e))?;
    sys::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| step("bind rootfs onto itself", rootfs, e))?;
    let rootfd = sys::open(rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| step("open rootfs", rootfs, e))?;
    let mut dev_is_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        mount_one(&rootfd, m, userns)?;
        if m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
    }
    if dev_is_tmpfs {
        default_devices(&rootfd, userns)?;
    }
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        let ty = serde_json::to_value(d.typ())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let kind = match ty.as_str() {
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        let mode = d.file_mode().unwrap_or(0o666);
        make_device(
            &rootfd,
            d.path(),
            kind | mode,
            d.major() as u32,
            d.minor() as u32,
            userns,
        )?;
        if d.uid().is_some() || d.gid().is_some() {
            let fd = resolve::ensure(&rootfd, d.path(), Kind::File)?;
            let p = resolve::fd_path(&fd);
            std::os::unix::fs::chown(&p, d.uid(), d.gid())
                .map_err(|e| step("chown device", d.path(), e))?;
        }
    }
    let cwd = spec
        .process()
        .as_ref()
        .map(|p| p.cwd().clone())
        .unwrap_or_else(|| "/".into());
    resolve::ensure(&rootfd, &cwd, Kind::Dir)?;
    Ok(())
}

fn mount_one(rootfd: &OwnedFd, m: &Mount, userns: bool) -> Result<(), RootfsError> {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().clone().unwrap_or_default();
    let bind = opts.bind || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(rootfd, dest, &opts);
    }
    if bind {
        let src = m.source().clone().ok_or_else(|| RootfsError::Step {
            step: "bind mount".into(),
            path: dest.clone(),
            err: "no source".into(),
        })?;
        let meta = std::fs::metadata(&src).map_err(|e| step("bind mount source", &src, e))?;
        let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
        let fd = resolve::ensure(rootfd, dest, kind)?;
        let target = resolve::fd_path(&fd);
        let flags = libc::MS_BIND | (opts.flags & libc::MS_REC);
        sys::mount(Some(&src), &target, None, flags, None)
            .map_err(|e| step(format!("bind mount {}", src.display()), dest, e))?;
        // Bind ignores the other flags: they take a remount.
        let rest = opts.flags & !(libc::MS_BIND | libc::MS_REC);
        if rest != 0 {
            let fd = resolve::ensure(rootfd, dest, kind)?;
            remount_bind(&resolve::fd_path(&fd), rest)
                .map_err(|e| step("remount bind mount", dest, e))?;
        }
        if opts.propagation != 0 {
            // `target` names the directory under the new mount: the
            // propagation change needs the mount itself, so resolve again.
            let fd = resolve::ensure(rootfd, dest, kind)?;
            sys::mount(None, &resolve::fd_path(&fd), None, opts.propagation, None)
                .map_err(|e| step("mount propagation", dest, e))?;
        }
        if let Some(ro) = opts.recursive_ro {
            let fd = resolve::ensure(rootfd, dest, kind)?;
            set_recursive_ro(&resolve::fd_path(&fd), ro, dest)?;
        }
        return Ok(());
    }
    // As runc: a tmpfs root takes the mode of the directory it covers, if
    // there was one (a `mode=` of the config's, later in the data, wins).
    let covered_mode = match (typ.as_str(), resolve::find(rootfd, dest)) {
        ("tmpfs", Some(fd)) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(resolve::fd_path(&fd))
                .ok()
                .map(|md| md.permissions().mode() & 0o7777)
        }
        _ => None,
    };
    let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
    let target = resolve::fd_path(&fd);
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let mut data = opts.data.clone();
    if typ == "mqueue" && userns {
        // mqueue cannot be mounted in a user namespace without its own ipc
        // namespace; runc falls back the same way.
        data.clear();
    }
    if let Some(mode) = covered_mode {
        let mode = format!("mode={mode:04o}");
        data = if data.is_empty() {
            mode
        } else {
            format!("{mode},{data}")
        };
    }
    if opts.tmpcopyup && typ != "tmpfs" {
        return Err(RootfsError::Step {
            step: "mount option tmpcopyup".into(),
            path: dest.clone(),
            err: format!("only for tmpfs, not {typ}"),
        });
    }
    // tmpcopyup: a descriptor of the directory about to be covered still
    // reaches its contents once the tmpfs is on top (runc copies through a
    // temporary mount; this needs none). Written before a read-only remount.
    let covered = if opts.tmpcopyup {
        Some(
            sys::open(&target, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| step("open tmpcopyup source", dest, e))?,
        )
    } else {
        None
    };
    let first = if covered.is_some() {
        opts.flags & !libc::MS_RDONLY
    } else {
        opts.flags
    };
    sys::mount(Some(&src), &target, Some(&typ), first, Some(&data))
        .map_err(|e| step(format!("mount {typ}"), dest, e))?;
    if let Some(old) = covered {
        let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
        let new = resolve::fd_path(&fd);
        copy_tree(&resolve::fd_path(&old), &new).map_err(|e| step("tmpcopyup", dest, e))?;
        if opts.flags & libc::MS_RDONLY != 0 {
            sys::mount(None, &new, None, libc::MS_REMOUNT | opts.flags, Some(&data))
                .map_err(|e| step("remount read-only", dest, e))?;
        }
    }
    if opts.propagation != 0 {
        let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
        sys::mount(None, &resolve::fd_path(&fd), None, opts.propagation, None)
            .map_err(|e| step("mount propagation", dest, e))?;
    }
    if let Some(ro) = opts.recursive_ro {
        let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
        set_recursive_ro(&resolve::fd_path(&fd), ro, dest)?;
    }
    Ok(())
}

/// `rro`/`rrw` through mount_setattr(AT_RECURSIVE); a kernel without it
/// (before 5.12) is an error naming the option, as runc.
fn set_recursive_ro(target: &Path, ro: bool, dest: &Path) -> Result<(), RootfsError> {
    let (set, clear) = if ro {
        (sys::MOUNT_ATTR_RDONLY, 0)
    } else {
        (0, sys::MOUNT_ATTR_RDONLY)
    };
    sys::mount_setattr(target, true, set, clear).map_err(|e| {
        let opt = if ro { "rro" } else { "rrw" };
        if e.raw_os_error() == Some(libc::ENOSYS) {
            step(
                format!("mount option {opt} (needs mount_setattr, Linux 5.12)"),
                dest,
                e,
            )
        } else {
            step(format!("mount option {opt}: mount_setattr"), dest, e)
        }
    })
}

/// Copies a directory's contents (files, dirs, symlinks, device nodes and
/// fifos) with their modes, owners and times: what tmpcopyup needs.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            nix::sys::stat::mknod(
                &dst,
                SFlag::from_bits_truncate(md.mode()),
                Mode::from_bits_truncate(md.mode()),
                md.rdev(),
            )?;
        }
        lchown(&dst, Some(md.uid()), Some(md.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Remounts a bind mount with `flags` (ro, nosuid...), keeping the flags the
/// kernel locks on it (an unprivileged remount may not clear them).
fn remount_bind(target: &Path, flags: libc::c_ulong) -> std::io::Result<()> {
    let st = nix::sys::statvfs::statvfs(target)?;
    // FsFlags' bits are statvfs's f_flag, which equal the MS_* mount flags.
    let keep = st.flags().bits()
        & (libc::ST_NOSUID
            | libc::ST_NODEV
            | libc::ST_NOEXEC
            | libc::ST_NOATIME
            | libc::ST_NODIRATIME
            | libc::ST_RELATIME
            | libc::ST_RDONLY);
    sys::mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | keep as libc::c_ulong | flags,
        None,
    )
}

/// `type: cgroup`: a tmpfs with each host hierarchy mounted under it (on a
/// cgroup v2 host, one cgroup2 mount), read-only when asked. In a cgroup
/// namespace a fresh mount shows the container's cgroup as its root; without
/// one (v1 `--cgroupns host`), each hierarchy is a bind of the container's own
/// cgroup directory, as runc does, so the container sees its own limits at
/// the top and nothing of the host's tree.
fn mount_cgroup(rootfd: &OwnedFd, dest: &Path, opts: &Opts) -> Result<(), RootfsError> {
    let mounts =
        mountinfo::own().map_err(|e| step("read mountinfo", Path::new(mountinfo::SELF), e))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| step("read", Path::new("/proc/self/cgroup"), e))?;
    // (name under /sys/fs/cgroup, fs type, mount data, own cgroup path there)
    let mut hier: Vec<(String, String, String, String)> = Vec::new();
    let mut pure_v2 = false;
    for m in &mounts {
        let (mp, fstype) = (m.mount_point.to_string_lossy(), m.fs_type.as_str());
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if mp == "/sys/fs/cgroup" && fstype == "cgroup2" {
            pure_v2 = true;
        }
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if hier.iter().any(|h| h.0 == name) {
            continue;
        }
        let data: Vec<&str> = m
            .super_options
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        // this hierarchy's line of /proc/self/cgroup: its controllers are
        // among the mount's options (`name=systemd` for named ones)
        let path = own
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                Some((f.next()?, f.next()?, f.next()?))
            })
            .find(|(_, ctrls, _)| {
                if fstype == "cgroup2" {
                    ctrls.is_empty()
                } else {
                    !ctrls.is_empty() && ctrls.split(',').all(|c| m.has_super_option(c))
                }
            })
            .map(|(_, _, p)| p.to_string())
            .unwrap_or_else(|| "/".into());
        hier.push((name.to_string(), fstype.to_string(), data.join(","), path));
    }
    let flags = opts.flags & !libc::MS_RDONLY;
    let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
    let target = resolve::fd_path(&fd);
    if pure_v2 {
        let own_path = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/");
        let host = Path::new("/sys/fs/cgroup");
        let src = if own_path != "/" {
            // no cgroup namespace: show our own cgroup, not the host's tree
            host.join(own_path.trim_start_matches('/'))
        } else {
            match sys::mount(
                Some(Path::new("cgroup2")),
                &target,
                Some("cgroup2"),
                opts.flags,
                None,
            ) {
                Ok(()) => return Ok(()),
                // Without a cgroup namespace a user namespace may not mount
                // cgroup2: bind the host's instead.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => host.to_path_buf(),
                Err(e) => return Err(step("mount cgroup2", dest, e)),
            }
        };
        sys::mount(
            Some(&src),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| step("bind cgroup2", dest, e))?;
        if opts.flags & libc::MS_RDONLY != 0 {
            let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
            remount_bind(&resolve::fd_path(&fd), libc::MS_RDONLY)
                .map_err(|e| step("remount cgroup2 read-only", dest, e))?;
        }
        return Ok(());
    }
    sys::mount(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| step("mount tmpfs for cgroup", dest, e))?;
    for (name, fstype, data, own_path) in &hier {
        let sub = dest.join(name);
        let fd = resolve::ensure(rootfd, &sub, Kind::Dir)?;
        let target = resolve::fd_path(&fd);
        let host = Path::new("/sys/fs/cgroup").join(name);
        let bind_from = if own_path != "/" {
            // not the root of our view: no cgroup namespace, show our own cgroup
            Some(host.join(own_path.trim_start_matches('/')))
        } else {
            None
        };
        let fresh = match &bind_from {
            Some(_) => None,
            None => Some(sys::mount(
                Some(Path::new(fstype)),
                &target,
                Some(fstype),
                opts.flags,
                Some(data),
            )),
        };
        let src = match fresh {
            Some(Ok(())) => continue,
            // In a user namespace a cgroup v1 mount is refused: bind the
            // host's hierarchy instead (as runc does).
            Some(Err(e)) if e.raw_os_error() == Some(libc::EPERM) => host,
            Some(Err(e)) => return Err(step(format!("mount {fstype} {data}"), &sub, e)),
            None => bind_from.expect("set when not fresh"),
        };
        sys::mount(
            Some(&src),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| step("bind cgroup hierarchy", &sub, e))?;
        if opts.flags & libc::MS_RDONLY != 0 {
            // A fresh lookup: the old fd names the dir under the mount.
            let fd = resolve::ensure(rootfd, &sub, Kind::Dir)?;
            remount_bind(&resolve::fd_path(&fd), libc::MS_RDONLY)
                .map_err(|e| step("remount cgroup read-only", &sub, e))?;
        }
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        let fd = resolve::ensure(rootfd, dest, Kind::Dir)?;
        sys::mount(
            None,
            &resolve::fd_path(&fd),
            None,
            libc::MS_REMOUNT | opts.flags,
            Some("mode=755"),
        )
        .map_err(|e| step("remount cgroup tmpfs read-only", dest, e))?;
    }
    Ok(())
}

fn make_device(
    rootfd: &OwnedFd,
    path: &Path,
    mode: u32,
    major: u32,
    minor: u32,
    userns: bool,
) -> Result<(), RootfsError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| RootfsError::Step {
        step: "device".into(),
        path: path.into(),
        err: "no file name".into(),
    })?;
    let dir = resolve::ensure(rootfd, parent, Kind::Dir)?;
    // O_PATH dir fds cannot be mknodat'ed into: reopen the dir for real.
    let dirfd = sys::open(
        &resolve::fd_path(&dir),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    )
    .map_err(|e| step("open device dir", parent, e))?;
    if userns {
        // No mknod in a user namespace: bind the host's node instead.
        let fd = resolve::ensure(rootfd, path, Kind::File)?;
        let host = Path::new("/dev").join(name);
        return sys::mount(
            Some(&host),
            &resolve::fd_path(&fd),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| step("bind device", path, e));
    }
    let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(mode & !libc::S_IFMT);
    let dev = makedev(major.into(), minor.into());
    match mknodat(&dirfd, name, kind, perm, dev) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(step("mknod", path, e.into())),
    }
}

/// null, zero, full, random, urandom, tty and the /dev links.
fn default_devices(rootfd: &OwnedFd, userns: bool) -> Result<(), RootfsError> {
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        make_device(
            rootfd,
            &Path::new("/dev").join(name),
            libc::S_IFCHR | 0o666,
            major,
            minor,
            userns,
        )?;
    }
    let dev = resolve::ensure(rootfd, Path::new("/dev"), Kind::Dir)?;
    let devfd = sys::open(
        &resolve::fd_path(&dev),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    )
    .map_err(|e| step("open", Path::new("/dev"), e))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        // As runc: /dev/core only where the kernel has a /proc/kcore.
        if name == "core" && !Path::new(target).exists() {
            continue;
        }
        match nix::unistd::symlinkat(target, &devfd, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(step("symlink", &Path::new("/dev").join(name), e.into())),
        }
    }
    Ok(())
}

/// `linux.rootfsPropagation`, applied to the new `/` after pivot_root (as
/// runc): pivot_root refuses a shared new root (EINVAL), and before it the
/// flag would be applied to a mount the host may share.
pub fn root_propagation(spec: &Spec) -> Result<(), RootfsError> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(());
    };
    let f = propagation_flag(&p).unwrap_or(libc::MS_PRIVATE | libc::MS_REC);
    sys::mount(None, Path::new("/"), None, f, None)
        .map_err(|e| step(format!("rootfsPropagation {p}"), Path::new("/"), e))
}

/// pivot_root into `rootfs` and detach the old root.
pub fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    std::env::set_current_dir(rootfs).map_err(|e| step("chdir", rootfs, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| step("pivot_root", rootfs, e.into()))?;
    // The old root now sits under ".": keep its unmount from propagating anywhere.
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .map_err(|e| step("make old root rslave", rootfs, e))?;
    sys::umount2(Path::new("."), libc::MNT_DETACH)
        .map_err(|e| step("detach old root", rootfs, e))?;
    std::env::set_current_dir("/").map_err(|e| step("chdir", Path::new("/"), e))?;
    Ok(())
}

/// `--no-pivot` (runc's msMoveRoot), for roots pivot_root refuses (the
/// initramfs): the full proc and sysfs mounts outside the rootfs are
/// detached first (a chroot leaves them in the namespace, and a mounted
/// proc there would let the container mount another), then the rootfs is
/// moved onto `/` and chrooted into.
pub fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    // Mount points are real paths: so must the prefix be.
    let real = std::fs::canonicalize(rootfs).map_err(|e| step("resolve", rootfs, e))?;
    let mut outside: Vec<PathBuf> = mountinfo::own()
        .map_err(|e| step("read", Path::new(mountinfo::SELF), e))?
        .into_iter()
        .filter(|m| {
            m.root == Path::new("/")
                && (m.fs_type == "proc" || m.fs_type == "sysfs")
                && !m.mount_point.starts_with(&real)
        })
        .map(|m| m.mount_point)
        .collect();
    // Deepest first, so a parent is not detached under its children.
    outside.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in outside {
        match sys::mount(None, &p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => r.map_err(|e| step("make rslave", &p, e))?,
        }
        match sys::umount2(&p, libc::MNT_DETACH) {
            Ok(()) => {}
            // Not ours to unmount (a user namespace): cover it instead.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EPERM)) => {
                sys::mount(Some(Path::new("tmpfs")), &p, Some("tmpfs"), 0, None)
                    .map_err(|e| step("cover", &p, e))?
            }
            Err(e) => return Err(step("detach", &p, e)),
        }
    }
    std::env::set_current_dir(rootfs).map_err(|e| step("chdir", rootfs, e))?;
    sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
        .map_err(|e| step("move rootfs onto /", rootfs, e))?;
    nix::unistd::chroot(".").map_err(|e| step("chroot", rootfs, e.into()))?;
    std::env::set_current_dir("/").map_err(|e| step("chdir", Path::new("/"), e))?;
    Ok(())
}

/// `linux.sysctl`, written through the container's /proc/sys.
pub fn sysctls(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    for (k, v) in linux.and_then(|l| l.sysctl().clone()).unwrap_or_default() {
        let path = Path::new("/proc/sys").join(k.replace('.', "/"));
        if k.contains("..") || k.contains('/') {
            return Err(RootfsError::Step {
                step: "sysctl".into(),
                path,
                err: "bad key".into(),
            });
        }
        std::fs::write(&path, v.as_bytes()).map_err(|e| step("sysctl", &path, e))?;
    }
    Ok(())
}

/// Steps after pivot_root: sysctls, masked and read-only paths, read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    // Sysctls first: /proc/sys is among the read-only paths below.
    sysctls(spec)?;
    for p in linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
    {
        let p = Path::new(&p);
        match std::fs::metadata(p) {
            Err(_) => continue,
            Ok(m) if m.is_dir() => sys::mount(
                Some(Path::new("tmpfs")),
                p,
                Some("tmpfs"),
                libc::MS_RDONLY,
                Some("size=0k,mode=555"),
            )
            .map_err(|e| step("mask", p, e))?,
            Ok(_) => sys::mount(Some(Path::new("/dev/null")), p, None, libc::MS_BIND, None)
                .map_err(|e| step("mask", p, e))?,
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        let p = Path::new(&p);
        if !p.exists() {
            continue;
        }
        sys::mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None)
            .map_err(|e| step("bind read-only path", p, e))?;
        remount_bind(
            p,
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        )
        .map_err(|e| step("remount read-only", p, e))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(Path::new("/"), libc::MS_RDONLY)
            .map_err(|e| step("remount / read-only", Path::new("/"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "ro".into(),
            "rprivate".into(),
        ]);
        assert_eq!(
            o.flags,
            libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_RDONLY
        );
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert!(!o.bind);
        let b = parse_options(&["rbind".into(), "ro".into(), "rw".into()]);
        assert!(b.bind);
        assert_eq!(b.flags, libc::MS_BIND | libc::MS_REC);
    }
}

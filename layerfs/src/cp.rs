//! `docker cp` and `docker diff` for a container's rootfs.
//!
//! Paths in the container are resolved with `openat2(RESOLVE_IN_ROOT)` on
//! its mounted rootfs: `..` and absolute symlinks stop at the container's
//! root, so no symlink the container made can lead out of it. Below the
//! resolved dir, packing and extraction never follow symlinks (`pack`,
//! `extract`).
//!
//! A source path ending in `/.` (`CTR:/dir/.`, `dir/.`) is docker's "the
//! contents of dir": the archive's top entry is `.`, so its children land
//! in the destination directory itself (made when missing) instead of in
//! a `dir` inside it.

use crate::layout::Layout;
use crate::mount::{self, MountError};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use serde::Serialize;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("container {0} has no rootfs made by layerfs (no layerfs.json)")]
    NoContainer(String),
    #[error("Could not find the file {path} in container {id}")]
    NotFound { path: String, id: String },
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
    #[error(transparent)]
    Pack(#[from] crate::pack::PackError),
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, CpError>;

fn io_err(step: &'static str, path: &Path, e: impl Into<io::Error>) -> CpError {
    CpError::Io {
        step,
        path: path.into(),
        source: e.into(),
    }
}

/// Opens `path` inside the tree of `root` as the container sees it.
fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// `path` split into its parent and last component (`/` -> (`/`, `.`)).
fn split(path: &Path) -> (PathBuf, OsString) {
    let comps: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    match comps.split_last() {
        Some((last, parent)) => (
            parent.iter().fold(PathBuf::from("/"), |p, c| p.join(c)),
            last.to_os_string(),
        ),
        None => (PathBuf::from("/"), OsString::from(".")),
    }
}

/// Whether `path` names a directory's contents (`dir/.`, `.`): the
/// archive's top entry is then `.`.
fn contents_of(path: &Path) -> bool {
    let b = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    b == b"." || b.ends_with(b"/.")
}

/// The top entry of a `cp` archive for `path`, named `name` on disk.
fn top_name(path: &Path, name: &OsStr) -> OsString {
    if contents_of(path) {
        OsString::from(".")
    } else {
        name.to_os_string()
    }
}

/// Refuses `dir/.` when `name` in `parent` is not a directory (a symlink
/// is not followed here: `-L` resolved it before).
fn check_contents_dir(path: &Path, st: &nix::sys::stat::FileStat) -> Result<()> {
    if contents_of(path) && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(CpError::Bad {
            path: path.display().to_string(),
            why: "not a directory".into(),
        });
    }
    Ok(())
}

/// Runs `f` on the container's rootfs dir, mounting it for the call when
/// it is not mounted (a stopped container).
fn with_rootfs<T>(layout: &Layout, id: &str, f: impl FnOnce(OwnedFd) -> Result<T>) -> Result<T> {
    mount::check_id(id)?;
    let dir = layout.container(id);
    let rec = mount::read_record(&dir).map_err(|_| CpError::NoContainer(id.into()))?;
    let rootfs = dir.join("rootfs");
    let mounted_here = !mount::is_mounted(&rootfs);
    if mounted_here {
        mount::mount_rootfs(layout, &rec.image, id)?;
    }
    let res = nix::fcntl::open(
        &rootfs,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_err("open", &rootfs, e))
    .and_then(f);
    if mounted_here {
        mount::umount_rootfs(layout, id)?;
    }
    res
}

/// `cp-out ID PATH [-L]`: PATH in the container as a tar on `out`, its
/// top entry named as PATH's last component. Without `follow` a symlink
/// at PATH is archived as the link; with it, its target (in the container).
pub fn cp_out<W: Write>(layout: &Layout, id: &str, path: &Path, follow: bool, out: W) -> Result<W> {
    let not_found = || CpError::NotFound {
        path: path.display().to_string(),
        id: id.to_string(),
    };
    with_rootfs(layout, id, |root| {
        let (parent, name) = split(path);
        let top = top_name(path, &name);
        let (parent, name) = if follow {
            // The in-root path of the final target: resolved IN_ROOT, then
            // read back from the fd relative to the rootfs.
            let fd = open_in_root(root.as_fd(), path, OFlag::O_PATH).map_err(|_| not_found())?;
            let real = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .map_err(|e| io_err("readlink", path, e))?;
            let base = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&root)
            ))
            .map_err(|e| io_err("readlink", path, e))?;
            let inside = real.strip_prefix(&base).map_err(|_| not_found())?;
            split(&Path::new("/").join(inside))
        } else {
            (parent, name)
        };
        let pfd = open_in_root(root.as_fd(), &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|_| not_found())?;
        match nix::sys::stat::fstatat(
            &pfd,
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => check_contents_dir(path, &st)?,
            Err(Errno::ENOENT) => return Err(not_found()),
            Err(e) => return Err(io_err("stat", path, e)),
        }
        Ok(crate::pack::pack_entry(
            pfd.as_fd(),
            &name,
            &top,
            out,
            path,
        )?)
    })
}

/// Where an archive lands, as docker decides: into `dest` when it is a
/// directory (entries keep their names), else into its parent with the
/// top entry renamed to `dest`'s last component. `dir_only` (a tar from
/// stdin): `dest` must be a directory.
fn extract_at(
    open: impl Fn(&Path, OFlag) -> nix::Result<OwnedFd>,
    dest: &Path,
    dir_only: bool,
    reader: impl Read,
) -> Result<()> {
    let (contents, reader) = peek_top(reader).map_err(|e| io_err("read archive for", dest, e))?;
    let dirflags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    match open(dest, dirflags) {
        Ok(fd) => return Ok(crate::extract::unpack_cp(reader, fd, None)?),
        Err(Errno::ENOTDIR) if contents => {
            return Err(CpError::Bad {
                path: dest.display().to_string(),
                why: "cannot overwrite non-directory with directory".into(),
            })
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) if !dir_only => {}
        Err(Errno::ENOENT | Errno::ENOTDIR) => {
            return Err(CpError::Bad {
                path: dest.display().to_string(),
                why: "no such directory".into(),
            })
        }
        Err(e) => return Err(io_err("open", dest, e)),
    }
    let (parent, name) = split(dest);
    let fd = open(&parent, dirflags).map_err(|e| match e {
        Errno::ENOENT | Errno::ENOTDIR => CpError::Bad {
            path: parent.display().to_string(),
            why: "no such directory".into(),
        },
        e => io_err("open", &parent, e),
    })?;
    if contents {
        // docker: DEST is made, the source dir's contents go into it (the
        // `.` entry then gives it the source dir's mode and times).
        match nix::sys::stat::mkdirat(
            &fd,
            name.as_os_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err("mkdir", dest, e)),
        }
        let dfd = open(dest, dirflags).map_err(|e| io_err("open", dest, e))?;
        return Ok(crate::extract::unpack_cp(reader, dfd, None)?);
    }
    Ok(crate::extract::unpack_cp(reader, fd, Some(name))?)
}

/// An archive whose first header was read, put back in front.
type Peeked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Reads the archive's first header: whether its top entry is `.` (a
/// `dir/.` source), and the reader with those bytes put back.
fn peek_top<R: Read>(mut reader: R) -> io::Result<(bool, Peeked<R>)> {
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    // ustar: name is bytes 0..100, prefix 345..500 (both NUL-padded).
    let field = |b: &[u8]| b.split(|&c| c == 0).next().unwrap_or(&[]).to_vec();
    let contents = got == 512 && {
        let name = field(&head[..100]);
        let prefix = field(&head[345..500]);
        prefix.is_empty() && (name == b"." || name == b"./")
    };
    Ok((contents, io::Cursor::new(head).chain(reader)))
}

/// `cp-in ID PATH [--dir-only]`: a tar on `reader` into PATH in the container.
pub fn cp_in<R: Read>(
    layout: &Layout,
    id: &str,
    dest: &Path,
    dir_only: bool,
    reader: R,
) -> Result<()> {
    with_rootfs(layout, id, |root| {
        extract_at(
            |p, f| open_in_root(root.as_fd(), p, f),
            dest,
            dir_only,
            reader,
        )
    })
}

/// `tar-host PATH [-L]`: a host path as `cp`'s archive on `out`.
pub fn tar_host<W: Write>(path: &Path, follow: bool, out: W) -> Result<W> {
    let abs = std::path::absolute(path).map_err(|e| io_err("resolve", path, e))?;
    let top = top_name(path, &split(&abs).1);
    let real = if follow {
        std::fs::canonicalize(&abs).map_err(|e| io_err("resolve", path, e))?
    } else {
        abs
    };
    let (parent, name) = split(&real);
    let pfd = nix::fcntl::open(
        &parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_err("open", &parent, e))?;
    let st = nix::sys::stat::fstatat(
        &pfd,
        name.as_os_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("stat", path, e))?;
    check_contents_dir(path, &st)?;
    Ok(crate::pack::pack_entry(
        pfd.as_fd(),
        &name,
        &top,
        out,
        path,
    )?)
}

/// `untar-host PATH`: a tar on `reader` to a host path, placed as `cp` does.
pub fn untar_host<R: Read>(dest: &Path, reader: R) -> Result<()> {
    let abs = std::path::absolute(dest).map_err(|e| io_err("resolve", dest, e))?;
    extract_at(
        |p, f| nix::fcntl::open(p, f | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()),
        &abs,
        false,
        reader,
    )
}

/// One line of `diff`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    /// `A` added, `C` changed, `D` deleted.
    pub kind: char,
    pub path: String,
}

/// Files docker keeps out of `diff` (its init layer's mount points).
const MOUNT_POINTS: [&str; 4] = [
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/.dockerenv",
];

/// `diff ID`: the container's upper dir against its image's layers:
/// a 0/0 char device (overlay whiteout) is `D`, an entry the layers have
/// is `C`, anything else `A`; sorted by path. The empty mount points of
/// the bind-mounted files are left out, and so is a dir holding only them.
pub fn diff(layout: &Layout, id: &str) -> Result<Vec<Change>> {
    mount::check_id(id)?;
    let dir = layout.container(id);
    let rec = mount::read_record(&dir).map_err(|_| CpError::NoContainer(id.into()))?;
    // Layers top first, as the overlay stacks them.
    let lowers: Vec<PathBuf> = rec
        .layers
        .iter()
        .rev()
        .map(|l| layout.layer(l.strip_prefix("sha256:").unwrap_or(l)))
        .collect();
    let mut out = Vec::new();
    walk_upper(&dir.join("upper"), Path::new("/"), &lowers, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Whether `rel` exists in the image: the first layer that has it, or a
/// whiteout of it, decides.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    for l in lowers {
        if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            return !(m.file_type().is_char_device() && m.rdev() == 0);
        }
    }
    false
}

/// Adds the changes below `upper` (shown as `rel`); returns how many.
fn walk_upper(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<usize> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: Vec<_> = match std::fs::read_dir(upper) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("read dir", upper, e)),
    };
    entries.sort_by_key(|e| e.file_name());
    let mut n = 0;
    for e in entries {
        let path = e.path();
        let shown = rel.join(e.file_name());
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let text = shown.to_string_lossy().into_owned();
        if m.file_type().is_char_device() && m.rdev() == 0 {
            out.push(Change {
                kind: 'D',
                path: text,
            });
            n += 1;
            continue;
        }
        if MOUNT_POINTS.contains(&text.as_str()) && m.is_file() && m.len() == 0 {
            continue;
        }
        let existed = in_lowers(lowers, &shown);
        if m.is_dir() {
            let at = out.len();
            let below = walk_upper(&path, &shown, lowers, out)?;
            let only_mount_points = below == 0
                && existed
                && std::fs::read_dir(&path).is_ok_and(|rd| rd.filter_map(|e| e.ok()).count() > 0);
            if only_mount_points {
                continue;
            }
            out.insert(
                at,
                Change {
                    kind: if existed { 'C' } else { 'A' },
                    path: text,
                },
            );
            n += below + 1;
        } else {
            out.push(Change {
                kind: if existed { 'C' } else { 'A' },
                path: text,
            });
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_parent_and_name() {
        assert_eq!(
            split(Path::new("/a/b/")),
            (PathBuf::from("/a"), OsString::from("b"))
        );
        assert_eq!(
            split(Path::new("a")),
            (PathBuf::from("/"), OsString::from("a"))
        );
        assert_eq!(
            split(Path::new("/")),
            (PathBuf::from("/"), OsString::from("."))
        );
    }

    #[test]
    fn dot_sources_name_contents() {
        assert!(contents_of(Path::new("/a/b/.")));
        assert!(contents_of(Path::new(".")));
        assert!(!contents_of(Path::new("/a/b")));
        assert!(!contents_of(Path::new("/a/.b")));
        assert_eq!(top_name(Path::new("a/."), OsStr::new("a")), ".");
        assert_eq!(top_name(Path::new("a/"), OsStr::new("a")), "a");
    }

    #[test]
    fn in_root_resolution_stays_inside() {
        let t = std::env::temp_dir().join(format!("layerfs-cp-{}", std::process::id()));
        let root = t.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(t.join("secret"), "host").unwrap();
        std::fs::write(root.join("secret"), "inside").unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("d/up")).unwrap();
        std::os::unix::fs::symlink("/secret", root.join("d/abs")).unwrap();
        let rfd = nix::fcntl::open(
            &root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        for p in ["/d/up", "d/abs", "/../secret"] {
            let fd = open_in_root(rfd.as_fd(), Path::new(p), OFlag::O_RDONLY).unwrap();
            let mut s = String::new();
            std::fs::File::from(fd).read_to_string(&mut s).unwrap();
            assert_eq!(s, "inside", "{p}");
        }
        std::fs::remove_dir_all(&t).unwrap();
    }
}

//! Opening paths below a dir fd without ever following a symlink, at any
//! depth: paths longer than one syscall takes (PATH_MAX) are opened a chunk
//! of components at a time, each chunk `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` from the fd the previous chunk gave, so the whole
//! walk stays below the first fd as one openat2 would.

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Bytes of path per openat2 call: under PATH_MAX (4096, with its NUL).
const CHUNK: usize = 3072;

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    )
}

/// Opens the dir `comps` (no `..`, none empty) below `root`.
pub fn open_dir(root: BorrowedFd, comps: &[OsString]) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let mut cur: Option<OwnedFd> = None;
    let mut rest = comps;
    loop {
        let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
        let (take, path) = chunk(rest);
        if take == 0 {
            // Nothing (left) to walk: the dir itself.
            return openat2(at, ".", how(flags));
        }
        let fd = openat2(at, path.as_os_str(), how(flags))?;
        rest = &rest[take..];
        if rest.is_empty() {
            return Ok(fd);
        }
        cur = Some(fd);
    }
}

/// Opens the relative path `path` (bytes, `/`-separated) below `root`
/// with `flags`; the last component is not followed either.
pub fn open(root: BorrowedFd, path: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    if path.len() < CHUNK {
        return openat2(root, path, how(flags | OFlag::O_NOFOLLOW));
    }
    let comps: Vec<OsString> = path
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect();
    let Some((last, dirs)) = comps.split_last() else {
        return Err(Errno::ENOENT);
    };
    let dir = open_dir(root, dirs)?;
    openat2(
        dir.as_fd(),
        last.as_os_str(),
        how(flags | OFlag::O_NOFOLLOW),
    )
}

/// The first components of `comps` that fit in one call, joined by `/`,
/// and how many they are (at least one when any is left).
fn chunk(comps: &[OsString]) -> (usize, OsString) {
    let mut path: Vec<u8> = Vec::new();
    let mut n = 0;
    for c in comps {
        if n > 0 && path.len() + 1 + c.len() > CHUNK {
            break;
        }
        if n > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(c.as_bytes());
        n += 1;
    }
    (n, OsString::from_vec(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{mkdirat, Mode};

    #[test]
    fn deep_paths_open_in_chunks_and_never_through_symlinks() {
        let d = std::env::temp_dir().join(format!("beneath-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let root =
            nix::fcntl::open(&d, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        // 3000 levels of a 2-byte name: 9000 bytes of path, > PATH_MAX.
        let comps: Vec<OsString> = (0..3000).map(|_| OsString::from("dd")).collect();
        let mut cur = root.try_clone().unwrap();
        for c in &comps {
            mkdirat(cur.as_fd(), c.as_os_str(), Mode::from_bits_truncate(0o755)).unwrap();
            cur = nix::fcntl::openat(cur.as_fd(), c.as_os_str(), OFlag::O_RDONLY, Mode::empty())
                .unwrap();
        }
        nix::unistd::symlinkat("/etc", cur.as_fd(), "up").unwrap();
        let f = nix::fcntl::openat(
            cur.as_fd(),
            "f",
            OFlag::O_WRONLY | OFlag::O_CREAT,
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        drop(f);
        open_dir(root.as_fd(), &comps).unwrap();
        let mut file = comps
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect::<Vec<_>>()
            .join("/");
        file.push_str("/f");
        open(root.as_fd(), OsStr::new(&file), OFlag::O_RDONLY).unwrap();
        let mut through = comps.clone();
        through.push("up".into());
        assert_eq!(open_dir(root.as_fd(), &through).unwrap_err(), Errno::ELOOP);
        let _ = std::process::Command::new("rm").arg("-rf").arg(&d).status();
    }
}

//! # atomicfile: files that several processes update
//!
//! The stores of every tool (records, indexes, conflists, allocation state)
//! are files that concurrent processes read and rewrite. Two rules keep
//! them whole, and this crate is the one place they are written:
//!
//! - [`write`] / [`write_with`]: a reader sees the old content or the new,
//!   never a mix, and a crash leaves one of them: a temp file in the same
//!   directory (`tempfile`, removed on any failure), fsync, rename over the
//!   target, fsync the directory. The file is created `0644` less the umask
//!   ([`write_private`]: `0600`).
//! - [`lock`] / [`lock_shared`]: writers serialize their read-modify-write
//!   on a separate lock file with flock(2) (`nix`'s `Flock`), held until
//!   the returned guard drops. The lock file is created `0600` if missing
//!   and never removed by this crate (removing a lock file others may hold
//!   open would let two writers in).
//! - [`private_dir`]: a store's directory (and missing parents) created
//!   `0700`, so only root reads the records.
//!
//! Errors are `std::io::Error`; callers name the path in their own errors.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// A held flock; dropping it releases the lock.
pub type Lock = Flock<File>;

/// Replaces `path` with `bytes` atomically (see the crate doc).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// As [`write`], the file created `0600`: for records only root may read
/// (a container's environment is in them).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_mode(path, 0o600, |f| f.write_all(bytes))
}

/// Replaces `path` atomically with what `fill` writes to the new file.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    write_mode(path, 0o644, fill)
}

fn write_mode(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the directory is.
    File::open(dir)?.sync_all()
}

/// Creates a store directory only root may enter: `dir` and its missing
/// parents `0700` (less the umask), as a store holds what other host users
/// must not read. An existing directory is left as it is.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Takes an exclusive flock on `path`, waiting for other holders.
pub fn lock(path: &Path) -> io::Result<Lock> {
    flock(path, FlockArg::LockExclusive)
}

/// Takes a shared flock on `path` (readers that must not overlap a writer).
pub fn lock_shared(path: &Path) -> io::Result<Lock> {
    flock(path, FlockArg::LockShared)
}

fn flock(path: &Path, arg: FlockArg) -> io::Result<Lock> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    loop {
        match Flock::lock(file, arg) {
            Ok(l) => return Ok(l),
            // A signal handler ran while waiting: wait again.
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("atomicfile-{tag}-"))
            .tempdir()
            .unwrap()
    }
    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_private_creates_0600() {
        let d = dir("p");
        let p = d.path().join("state.json");
        write_private(&p, b"{}").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert_eq!(names(d.path()), ["state.json"]);
    }

    #[test]
    fn write_replaces_and_leaves_no_temp_file() {
        let d = dir("w");
        let p = d.path().join("state.json");
        write(&p, b"old").unwrap();
        write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(names(d.path()), ["state.json"]);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(mode & 0o022, 0, "{mode:o}");
    }

    #[test]
    fn a_failed_fill_keeps_the_old_content_and_no_temp_file() {
        let d = dir("f");
        let p = d.path().join("x");
        write(&p, b"old").unwrap();
        let err = write_with(&p, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), ["x"]);
        assert!(write(&d.path().join("missing/x"), b"").is_err());
    }

    #[test]
    fn private_dir_makes_parents_0700_and_accepts_an_existing_one() {
        let d = dir("p");
        let p = d.path().join("a/b");
        private_dir(&p).unwrap();
        private_dir(&p).unwrap();
        for q in [d.path().join("a"), p] {
            let mode = std::fs::metadata(&q).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{}: {mode:o}", q.display());
        }
        let file = d.path().join("f");
        write(&file, b"").unwrap();
        assert!(private_dir(&file).is_err());
    }

    #[test]
    fn exclusive_lock_excludes_until_dropped() {
        let d = dir("l");
        let p = d.path().join(".lock");
        let held = lock(&p).unwrap();
        // flock locks belong to the open file description: a second open
        // of the same file conflicts even within one process.
        let f = File::open(&p).unwrap();
        let f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Err((f, Errno::EWOULDBLOCK)) => f,
            other => panic!("expected EWOULDBLOCK, got {:?}", other.map(|_| ())),
        };
        drop(held);
        let again = Flock::lock(f, FlockArg::LockExclusiveNonblock);
        assert!(again.is_ok(), "free after drop");
        drop(again);
        let a = lock_shared(&p).unwrap();
        let b = lock_shared(&p).unwrap();
        drop((a, b));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

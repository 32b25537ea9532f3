//! Where `save` and `export` write: stdout, or a path written through what
//! it is, as docker does.
//!
//! A new path or a plain regular file gets an unnamed temp file in the same
//! dir (`O_TMPFILE`), linked and renamed into place when complete: a
//! failure, or a kill at any moment, leaves the old file and no temp file
//! (a filesystem without `O_TMPFILE` gets a named temp file, removed on
//! failure). Any other path (a symlink, a FIFO, a device, `/dev/stdout`) is opened and
//! truncated: renaming over it would replace the link or the node itself
//! instead of writing to what it names.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    Terminal,
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, OutputError>;

/// An open output; `finish` makes it final.
pub struct Output {
    file: File,
    how: How,
}

enum How {
    Stdout,
    /// Opened and truncated in place.
    Through(PathBuf),
    /// A temp file renamed onto `dest` by `finish`: unnamed until then
    /// (`tmp` is the name it gets), or, without O_TMPFILE, created as
    /// `tmp` and removed if dropped before.
    Replace {
        tmp: PathBuf,
        dest: PathBuf,
        unnamed: bool,
    },
}

impl Output {
    /// `None` or `-`: stdout, refused when it is a terminal. Else the path.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Output::stdout(),
            Some(p) if p == Path::new("-") => Output::stdout(),
            Some(p) => Output::path(p),
        }
    }

    fn stdout() -> Result<Output> {
        let out = io::stdout();
        if out.is_terminal() {
            return Err(OutputError::Terminal);
        }
        let fd = out
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| OutputError::Io {
                step: "dup",
                path: "stdout".into(),
                source,
            })?;
        Ok(Output {
            file: File::from(fd),
            how: How::Stdout,
        })
    }

    fn path(p: &Path) -> Result<Output> {
        let io_err = |step, source| OutputError::Io {
            step,
            path: p.to_path_buf(),
            source,
        };
        let meta = match std::fs::symlink_metadata(p) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("stat", e)),
        };
        // A file with other hard links is written in place, so the links
        // keep seeing one file.
        let replace = meta
            .as_ref()
            .is_none_or(|m| m.file_type().is_file() && m.nlink() == 1);
        let through = || -> Result<Output> {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .map_err(|e| io_err("open", e))?;
            Ok(Output {
                file,
                how: How::Through(p.to_path_buf()),
            })
        };
        if !replace {
            return through();
        }
        let name = p.file_name().ok_or_else(|| {
            io_err(
                "open",
                io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            )
        })?;
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let unnamed = OpenOptions::new()
            .write(true)
            .mode(0o666)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        let (file, unnamed) = match unnamed {
            Ok(f) => (f, true),
            Err(e) if meta.is_some() && e.kind() == io::ErrorKind::PermissionDenied => {
                return through();
            }
            // EOPNOTSUPP / EISDIR: no O_TMPFILE on this filesystem.
            Err(_) => match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&tmp)
            {
                Ok(f) => (f, false),
                // A writable file in a dir we may not add to: written in place.
                Err(e) if meta.is_some() && e.kind() == io::ErrorKind::PermissionDenied => {
                    return through();
                }
                Err(e) => return Err(io_err("create", e)),
            },
        };
        let out = Output {
            file,
            how: How::Replace {
                tmp,
                dest: p.to_path_buf(),
                unnamed,
            },
        };
        // The replaced file keeps its permission bits.
        if let Some(m) = meta {
            let mode = m.permissions().mode() & 0o7777;
            out.file
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_err("chmod", e))?;
        }
        Ok(out)
    }

    /// A handle to write to (the same open file).
    pub fn file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// The path to report: absolute for a file, `-` for stdout.
    pub fn name(&self) -> PathBuf {
        match &self.how {
            How::Stdout => "-".into(),
            How::Through(p) | How::Replace { dest: p, .. } => {
                std::path::absolute(p).unwrap_or_else(|_| p.clone())
            }
        }
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self.how, How::Stdout)
    }

    /// Makes the output final: with `sync` fsynced (a file; a pipe or a
    /// terminal has nothing to sync), then a temp file renamed into place
    /// (and its dir fsynced with `sync`).
    pub fn finish(mut self, sync: bool) -> Result<()> {
        let how = std::mem::replace(&mut self.how, How::Stdout);
        let path = match &how {
            How::Stdout => PathBuf::from("stdout"),
            How::Through(p) | How::Replace { dest: p, .. } => p.clone(),
        };
        let io_err = |step, source| OutputError::Io {
            step,
            path: path.clone(),
            source,
        };
        if sync {
            if let Err(e) = self.file.sync_all() {
                // EINVAL: a pipe, a socket or a terminal.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    self.how = how;
                    return Err(io_err("fsync", e));
                }
            }
        }
        if let How::Replace { tmp, dest, unnamed } = &how {
            if *unnamed {
                let _ = std::fs::remove_file(tmp);
                let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                if let Err(e) = nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    fd.as_str(),
                    nix::fcntl::AT_FDCWD,
                    tmp.as_path(),
                    nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
                ) {
                    self.how = how;
                    return Err(io_err("link", e.into()));
                }
                // Named now: a failure below removes it (Drop).
                self.how = How::Replace {
                    tmp: tmp.clone(),
                    dest: dest.clone(),
                    unnamed: false,
                };
            }
            if let Err(e) = std::fs::rename(tmp, dest) {
                // Named by now: Drop removes it.
                self.how = How::Replace {
                    tmp: tmp.clone(),
                    dest: dest.clone(),
                    unnamed: false,
                };
                return Err(io_err("rename", e));
            }
            if sync {
                let dir = dest
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err("fsync dir of", e))?;
            }
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let How::Replace {
            tmp,
            unnamed: false,
            ..
        } = &self.how
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("layerfs-out-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlink_is_written_through() {
        let d = tmpdir("link");
        std::fs::write(d.join("target"), b"old old old").unwrap();
        std::os::unix::fs::symlink("target", d.join("link")).unwrap();
        let out = Output::open(Some(&d.join("link"))).unwrap();
        out.file().unwrap().write_all(b"new").unwrap();
        out.finish(false).unwrap();
        assert!(std::fs::symlink_metadata(d.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(d.join("target")).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn regular_file_is_replaced_whole_or_left() {
        let d = tmpdir("reg");
        let p = d.join("f");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = Output::open(Some(&p)).unwrap();
        out.file().unwrap().write_all(b"partial").unwrap();
        drop(out); // a failure: the old file stays, the temp file goes
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        let out = Output::open(Some(&p)).unwrap();
        out.file().unwrap().write_all(b"whole").unwrap();
        out.finish(true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"whole");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

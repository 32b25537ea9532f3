//! A directory tree into a tar stream: a container's upper dir as a layer
//! (overlay whiteouts back to `.wh.` entries) or a flattened rootfs.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
    let mut p = Packer {
        b: tar::Builder::new(out),
        upper,
        links: HashMap::new(),
    };
    p.walk(dir, Path::new(""))?;
    p.b.into_inner()
        .map_err(|e| io_err("finish tar for", dir, e))
}

struct Packer<W: Write> {
    b: tar::Builder<W>,
    upper: bool,
    /// (dev, ino) of files with several links -> the first path written.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Packer<W> {
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io_err("read dir", dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| io_err("read dir", dir, e))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            let m = std::fs::symlink_metadata(&path).map_err(|e| io_err("stat", &path, e))?;
            let ft = m.file_type();
            if self.upper && ft.is_char_device() && m.rdev() == 0 {
                let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
                self.empty_file(&wh)?;
                continue;
            }
            let mut h = header(&m);
            self.xattrs(&path)?;
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                self.b
                    .append_data(&mut h, &rel, io::empty())
                    .map_err(|e| io_err("write", &path, e))?;
                if self.upper && getxattr(&path, "trusted.overlay.opaque").as_deref() == Some(b"y")
                {
                    self.empty_file(&rel.join(".wh..wh..opq"))?;
                }
                self.walk(&path, &rel)?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        let first = first.clone();
                        self.b
                            .append_link(&mut h, &rel, &first)
                            .map_err(|e| io_err("write", &path, e))?;
                        continue;
                    }
                    self.links.insert((m.dev(), m.ino()), rel.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(m.len());
                let f = File::open(&path).map_err(|e| io_err("open", &path, e))?;
                self.b
                    .append_data(&mut h, &rel, f)
                    .map_err(|e| io_err("write", &path, e))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| io_err("readlink", &path, e))?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, &rel, &target)
                    .map_err(|e| io_err("write", &path, e))?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                h.set_entry_type(kind);
                if !ft.is_fifo() {
                    let _ = h.set_device_major(libc::major(m.rdev()));
                    let _ = h.set_device_minor(libc::minor(m.rdev()));
                }
                self.b
                    .append_data(&mut h, &rel, io::empty())
                    .map_err(|e| io_err("write", &path, e))?;
            }
            // Sockets are not content: skipped, as docker does.
        }
        Ok(())
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
    fn xattrs(&mut self, path: &Path) -> Result<()> {
        let names = listxattr(path).map_err(|e| io_err("listxattr", path, e))?;
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names {
            if n.starts_with("trusted.overlay.") {
                continue;
            }
            if let Some(v) = getxattr(path, &n) {
                recs.push((format!("SCHILY.xattr.{n}"), v));
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

fn header(m: &Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn listxattr(path: &Path) -> io::Result<Vec<String>> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: valid C path and buffer.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(vec![]),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// One xattr of `path` (not following a symlink), None when absent.
pub fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings and buffer.
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
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

fn io_err(step: &'static str, path: &Path, source: io::Error) -> PackError {
    PackError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

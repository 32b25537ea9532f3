//! What `load` and `import` read: a file or stdin, plain or compressed
//! (gzip, bzip2, xz, zstd, told by their magic bytes, as docker does).
//!
//! The archive is read as a seekable plain tar: a plain file (or a plain
//! file on stdin) as it is; a pipe or a compressed archive is first spooled,
//! decompressed, into an unlinked temp file in the store's `layers/tmp`,
//! which only root can reach.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// An archive's compression, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// `r` decompressed (concatenated streams included, as the tools write them).
    pub fn decoder<'a, R: BufRead + Send + 'a>(
        self,
        r: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
            Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        })
    }
}

/// Where an archive comes from: the name for messages and its bytes.
pub struct Source {
    /// The path as given, or `stdin`.
    pub name: String,
    pub file: File,
    /// The compression it had (the file is plain unless it was kept).
    pub compression: Compression,
    /// Whether `file` is a temp copy rather than the input itself.
    pub spooled: bool,
}

/// Opens `input` (`None` or `-`: stdin) as a plain, seekable tar, spooling
/// into `spool_dir` what must be (see the module docs). With `keep_gzip`
/// a gzip file is passed as it is (for a reader that decompresses gzip
/// itself).
pub fn open(input: Option<&Path>, spool_dir: &Path, keep_gzip: bool) -> io::Result<Source> {
    let (name, mut file) = match input {
        Some(p) if p != Path::new("-") => (p.display().to_string(), File::open(p)?),
        _ => (
            "stdin".to_string(),
            File::from(io::stdin().as_fd().try_clone_to_owned()?),
        ),
    };
    // Member offsets are taken from the start of the file: a file read
    // from elsewhere (stdin left part-way) is spooled like a pipe.
    let seekable = file.metadata()?.file_type().is_file() && file.stream_position()? == 0;
    let mut head = [0u8; 6];
    let n = read_head(&mut file, &mut head)?;
    let compression = Compression::detect(&head[..n]);
    let direct =
        compression == Compression::None || (keep_gzip && compression == Compression::Gzip);
    if direct && seekable {
        file.rewind()?;
        return Ok(Source {
            name,
            file,
            compression,
            spooled: false,
        });
    }
    let r = BufReader::with_capacity(1 << 20, io::Cursor::new(head[..n].to_vec()).chain(file));
    let mut dec = if direct {
        Compression::None.decoder(r)?
    } else {
        compression.decoder(r)?
    };
    let mut spool = spool_file(spool_dir)?;
    io::copy(&mut dec, &mut spool)
        .map_err(|e| io::Error::new(e.kind(), format!("{} data: {e}", compression.name())))?;
    spool.rewind()?;
    Ok(Source {
        name,
        file: spool,
        compression,
        spooled: true,
    })
}

/// Reads up to `buf.len()` bytes: fewer only at the end of the input (a
/// pipe may deliver the magic over several reads).
fn read_head<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A temp file in `dir`, already unlinked: nothing to clean up after a crash.
fn spool_file(dir: &Path) -> io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(format!("spool-{}-{}", std::process::id(), nonce()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_told_apart() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Compression::Xz
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"manifest.json\0"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn each_compression_decodes() {
        let data = b"hello layers".repeat(100);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
            io::Write::write_all(&mut e, &data).unwrap();
            e.finish().unwrap()
        };
        let bz = {
            let mut e = bzip2::write::BzEncoder::new(vec![], bzip2::Compression::fast());
            io::Write::write_all(&mut e, &data).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = xz2::write::XzEncoder::new(vec![], 1);
            io::Write::write_all(&mut e, &data).unwrap();
            e.finish().unwrap()
        };
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        for (want, bytes) in [
            (Compression::Gzip, gz),
            (Compression::Bzip2, bz),
            (Compression::Xz, xz),
            (Compression::Zstd, zs),
        ] {
            let c = Compression::detect(&bytes);
            assert_eq!(c, want);
            let mut out = vec![];
            c.decoder(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{want:?}");
        }
    }
}

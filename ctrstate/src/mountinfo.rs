//! Mount points from /proc/self/mountinfo, so `rm` never deletes through a
//! mount into a filesystem that is not the container's.

use std::path::{Path, PathBuf};
use thiserror::Error;

const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Error)]
pub enum MountinfoError {
    #[error("read {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Mount points at `dir` or beneath it. `dir` must be absolute and free of
/// symlinks (canonicalized), as mountinfo paths are.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, MountinfoError> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| MountinfoError::Read {
        path: MOUNTINFO,
        source,
    })?;
    Ok(parse_mount_points(&text)
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// Field 5 of every mountinfo line, with the kernel's octal escapes
/// (`\040` for a space, ...) decoded.
pub fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escaped_mount_points() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 0:5 / /var/lib/x/containers/abc/rootfs rw - overlay overlay rw\n";
        let m = parse_mount_points(text);
        assert_eq!(m[0], PathBuf::from("/mnt/a b"));
        assert!(
            Path::new("/var/lib/x/containers/abc/rootfs").starts_with("/var/lib/x/containers/abc")
        );
        // Path::starts_with compares components, so a sibling with a longer
        // name is not "under".
        assert!(!m[1].starts_with("/var/lib/x/containers/ab"));
        assert!(m[1].starts_with("/var/lib/x/containers/abc"));
    }

    #[test]
    fn root_is_mounted() {
        assert!(mounts_under(Path::new("/"))
            .unwrap()
            .contains(&PathBuf::from("/")));
    }
}

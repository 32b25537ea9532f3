//! # mountinfo: the mount table, from `/proc/self/mountinfo`
//!
//! One parser of `/proc/PID/mountinfo` (proc(5)) for every tool. Each line
//! is a [`Mount`]; paths and strings have the kernel's octal escapes
//! (`\040` space, `\011` tab, `\012` newline, `\134` backslash) decoded, so
//! a mount point with a space compares equal to its real path. Lines that
//! do not parse are skipped (the kernel writes none). The `procfs` crate's
//! parser keeps the escapes, which is the bug this crate exists to avoid.
//!
//! ```no_run
//! let mounts = mountinfo::own().unwrap();
//! let cgroups = mounts.iter().filter(|m| m.fs_type == "cgroup2");
//! ```

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// This process's mount table.
pub const SELF: &str = "/proc/self/mountinfo";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Field 1: the mount's id.
    pub id: u32,
    /// Field 2: the parent mount's id.
    pub parent: u32,
    /// Field 3: `major:minor` of the filesystem's device.
    pub major_minor: String,
    /// Field 4: the directory of the filesystem mounted here (`/` unless a
    /// bind mount of a subtree, or a cgroup namespace's view).
    pub root: PathBuf,
    /// Field 5: where it is mounted, relative to the process's root.
    pub mount_point: PathBuf,
    /// Field 6: per-mount options (`rw,nosuid,relatime`).
    pub options: String,
    /// The optional fields before ` - ` (`shared:1`, `master:2`, ...).
    pub optional: Vec<String>,
    /// The filesystem type (`ext4`, `overlay`, `cgroup2`).
    pub fs_type: String,
    /// The mount source (a device, `overlay`, `none`).
    pub source: String,
    /// Per-superblock options (for cgroup v1, the controllers).
    pub super_options: String,
}

impl Mount {
    /// Parses one line; `None` when it is not a mountinfo line.
    pub fn parse(line: &str) -> Option<Mount> {
        let (pre, post) = line.split_once(" - ")?;
        let mut pre = pre.split(' ');
        let id = pre.next()?.parse().ok()?;
        let parent = pre.next()?.parse().ok()?;
        let major_minor = pre.next()?.to_string();
        let root = unescape_path(pre.next()?);
        let mount_point = unescape_path(pre.next()?);
        let options = pre.next()?.to_string();
        let optional = pre.map(String::from).collect();
        let mut post = post.split(' ');
        Some(Mount {
            id,
            parent,
            major_minor,
            root,
            mount_point,
            options,
            optional,
            fs_type: unescape(post.next()?),
            source: unescape(post.next()?),
            super_options: unescape(post.next().unwrap_or("")),
        })
    }

    /// True when the per-superblock options hold `opt` (`memory`, `ro`).
    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.split(',').any(|o| o == opt)
    }

    /// True when the per-mount options hold `opt` (`ro`, `nosuid`).
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }
}

/// Every mount of a mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(Mount::parse).collect()
}

/// Reads and parses a mountinfo file (`/proc/PID/mountinfo`).
pub fn read(path: impl AsRef<Path>) -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

/// This process's mounts ([`SELF`]).
pub fn own() -> std::io::Result<Vec<Mount>> {
    read(SELF)
}

/// True when `path` is a mount point in this mount namespace. mountinfo
/// holds resolved paths, so `path` is canonicalized first (a path that
/// does not resolve is compared as given).
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    Ok(own()?.iter().any(|m| m.mount_point == path))
}

/// Mount points at `dir` or beneath it, in mount order. `dir` must be
/// absolute and free of symlinks (canonicalized), as mountinfo paths are.
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(own()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect())
}

/// Decodes the kernel's `\ooo` escapes into bytes.
fn unescape_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d[0] <= b'3' && d.iter().all(|c| (b'0'..=b'7').contains(c))
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// A path field, decoded byte for byte (paths need not be UTF-8).
pub fn unescape_path(s: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape_bytes(s)))
}

/// A text field, decoded (invalid UTF-8 replaced).
pub fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(s)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
36 22 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 propagate_from:2 - ext3 /dev/my\\040disk rw
40 22 0:35 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
41 22 0:36 /sub\\134dir /x\\011y\\012z ro - tmpfs none rw,size=1024k
garbage line
";

    #[test]
    fn parses_fields_and_decodes_escapes() {
        let m = parse(TEXT);
        assert_eq!(m.len(), 4, "the garbage line is skipped");
        assert_eq!(m[0].id, 22);
        assert_eq!(m[0].parent, 1);
        assert_eq!(m[0].major_minor, "8:1");
        assert_eq!(m[0].mount_point, Path::new("/"));
        assert_eq!(m[0].optional, ["shared:1"]);
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[1].mount_point, Path::new("/mnt/a b"));
        assert_eq!(m[1].root, Path::new("/mnt1"));
        assert_eq!(m[1].source, "/dev/my disk");
        assert_eq!(m[1].optional, ["master:1", "propagate_from:2"]);
        assert!(m[2].has_super_option("memory"));
        assert!(!m[2].has_super_option("mem"));
        assert!(m[2].has_option("nosuid"));
        assert_eq!(m[3].root, Path::new("/sub\\dir"));
        assert_eq!(m[3].mount_point, Path::new("/x\ty\nz"));
        assert!(m[3].has_option("ro"));
    }

    #[test]
    fn a_backslash_without_three_octal_digits_stays() {
        assert_eq!(unescape(r"a\04"), r"a\04");
        assert_eq!(unescape(r"a\9999"), r"a\9999");
        assert_eq!(unescape(r"\040\040"), "  ");
        assert_eq!(unescape(r"end\"), r"end\");
    }

    #[test]
    fn own_table_has_the_root_and_is_mount_point_agrees() {
        let own = own().unwrap();
        assert!(own.iter().any(|m| m.mount_point == Path::new("/")));
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(!is_mount_point(Path::new("/proc/self/fd")).unwrap());
        assert!(mounts_under(Path::new("/proc"))
            .unwrap()
            .contains(&PathBuf::from("/proc")));
    }
}

//! The store is root's alone: the root dir 0710 and the dirs under it 0700
//! (as docker keeps `/var/lib/docker`), so no other host user can reach a
//! layer's setuid binaries or device nodes, a container's files or a volume.
//! Existing dirs are tightened (never loosened) on first use.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The mode of the store root: others may not enter, the group may pass
/// through (docker's 0710).
pub const ROOT_MODE: u32 = 0o710;
/// The mode of every dir directly under the root.
pub const DIR_MODE: u32 = 0o700;

/// Makes `dir` (and missing parents, 0755 as usual) with `mode`, or takes
/// from an existing `dir` every permission bit that `mode` does not have.
/// A shared sticky dir (`/tmp` given as a root by mistake) is left alone.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    // A root behind a symlink is the dir it names.
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let have = m.permissions().mode() & 0o7777;
            let want = have & (mode | 0o7000);
            if have & 0o1000 == 0 && want != have {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))?;
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::DirBuilder::new().mode(mode).create(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            // The umask may have taken bits `mode` asked for; never more.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        }
        Err(e) => Err(e),
    }
}

/// The root and layerfs's dirs under it: `layers`, `images`,
/// `containers`, `volumes`.
pub fn secure_store(root: &Path) -> io::Result<()> {
    ensure_dir(root, ROOT_MODE)?;
    for d in ["layers", "images", "containers", "volumes"] {
        ensure_dir(&root.join(d), DIR_MODE)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_store_is_private_and_old_one_is_tightened() {
        let base = std::env::temp_dir().join(format!("layerfs-perms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("a/root");
        secure_store(&root).unwrap();
        assert_eq!(mode(&root), 0o710);
        assert_eq!(mode(&root.join("layers")), 0o700);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(root.join("images"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        secure_store(&root).unwrap();
        assert_eq!(mode(&root), 0o710);
        assert_eq!(mode(&root.join("images")), 0o700);
        // Tighter than asked stays as it is.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        secure_store(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sticky_shared_dir_is_left_alone() {
        let d = std::env::temp_dir().join(format!("layerfs-sticky-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_dir(&d, ROOT_MODE).unwrap();
        assert_eq!(mode(&d), 0o1777);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

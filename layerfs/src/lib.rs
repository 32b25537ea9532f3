//! layerfs: the image store (load, save, import, commit, tag, rmi), an
//! overlay rootfs per container (mount, umount, remove, export), and
//! volumes (named volumes, mount specs -> OCI mounts).
//!
//! # CLI contract
//!
//! `layerfs [--root DIR] SUBCOMMAND`; DIR defaults to `$MYDOCKER_ROOT` or
//! `/var/lib/mydocker`. Each subcommand prints one JSON document on stdout;
//! an error prints one line `layerfs: message` on stderr.
//!
//! - `load [-i FILE]` (FILE `-` or absent: stdin) loads a `docker save`
//!   tarball or an OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/sha256/`; layers plain, gzip, zstd, bzip2 or xz; of an index
//!   listing several platforms only this host's manifest, os/arch then
//!   variant), each as a tarball (plain,
//!   gzip, bzip2, xz or zstd, told by its magic) or as an unpacked
//!   directory; tags come from `RepoTags`, or for OCI from the
//!   `io.containerd.image.name` / `org.opencontainers.image.ref.name`
//!   annotation (a bare repository name gets `:latest`; a bare tag names
//!   nothing). Prints `{"loaded":["name:tag"],"ids":["sha256:..."],
//!   "untagged":[ids loaded without a tag]}`. Manifest digests (the OCI
//!   index's, also in a docker >= 25 save) become `repoDigests`
//!   (`name@sha256:...`, for each tag's name).
//!   Every layer's uncompressed digest is checked against the config's
//!   `rootfs.diff_ids` while it is extracted; a mismatch or an unsafe entry
//!   stores nothing. Loading again is a no-op that moves tags to this image.
//! - `images`: `[{"id","repoTags","repoDigests"?,"created","size","layers"}]`,
//!   newest first. References: `docker.io/library/x`, `library/x` and `x`
//!   are one name, stored and shown as docker's familiar `x:tag`;
//!   `docker.io/x/y` is `x/y`; other registries are kept;
//!   `name@sha256:<manifest digest>` resolves through `repoDigests`.
//! - `inspect IMAGE`: `{"id","repoTags","repoDigests"?,"created","size","layers","config"}`,
//!   `config` being the image config JSON as loaded. IMAGE is `name`
//!   (`:latest` implied), `name:tag`, `sha256:<hex>` or a unique id prefix.
//! - `tag SOURCE TARGET`: `{"id","tagged"}`; the tag leaves any other image.
//! - `rmi IMAGE [--force]`: `{"untagged":[...],"deleted":[ids and layer diff ids]}`.
//!   Refused while a container's `layerfs.json` names the image, unless forced.
//! - `mount IMAGE ID`: overlay on `DIR/containers/ID/rootfs` (lowerdirs the
//!   layers top first, `upper`, `work` beside it), records
//!   `DIR/containers/ID/layerfs.json` = `{"image","layers","rootfs"}`;
//!   prints `{"rootfs":"/abs/path"}`. Already mounted: same output. Layer
//!   lists too long for one option page use the new mount API (`lowerdir+`,
//!   kernel >= 6.8), else paths relative to the layer dir.
//! - `umount ID`: `{"id","mounted":false}`; a plain umount (MNT_DETACH
//!   only when busy), keeping `upper`. Not mounted: success.
//! - `commit ID [NAME:TAG] [-m MSG] [--created-by CMD] [--change-json PATCH]`:
//!   the container's `upper` dir (less the empty mount points of
//!   bind-mounted `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`,
//!   `/.dockerenv`) as a new layer (overlay whiteouts -> `.wh.NAME`, opaque
//!   dirs -> `.wh..wh..opq`) on its image's layers; the config is the
//!   image's, with `created`, `rootfs.diff_ids` and `history` extended and
//!   PATCH (`{"Cmd":[..],"Env":[..],..}`, `null` removes a key) merged into
//!   `config`. PATCH is JSON text, `-` for stdin, or a file path. Prints
//!   `{"id","tag"?,"layer"}`. The container may be mounted or not.
//! - `import FILE [NAME:TAG] [--change-json PATCH]`: a flat rootfs tarball
//!   (plain, gzip, bzip2, xz or zstd; FILE `-`: stdin) as a one-layer
//!   image; prints `{"id","tag"?,"layer"}`.
//! - `export ID [-o FILE] [--sync]`: the merged rootfs as one tar (mounted
//!   for the export when not mounted); not fsynced (as `docker export`)
//!   unless `--sync`; prints `{"id","output","size"}`. Outputs of `export`
//!   and `save`: FILE absent or `-` is stdout (refused when a terminal;
//!   then the tar is all that is printed); a new or regular FILE is
//!   written to an unnamed temp file in its dir (`O_TMPFILE`) linked and
//!   renamed onto it at the end, so a failure or a kill leaves no temp
//!   file; any other FILE (a symlink, a FIFO, a device) is opened and
//!   written through. Trees of any depth are walked (iteratively, paths
//!   past PATH_MAX opened in chunks below the root).
//! - `history IMAGE`: `[{"created","createdBy","comment","emptyLayer","layer","size"}]`,
//!   newest first.
//! - `save IMAGE... [-o FILE]`: a `docker save` tarball as docker >= 25
//!   writes it (`manifest.json`, `repositories`, blobs under
//!   `blobs/sha256/`, and an OCI `index.json` + `oci-layout` with one
//!   manifest per image, serialized the same way every time, so the
//!   manifest digest a load records in `repoDigests` survives a save) whose
//!   layer tars are rebuilt byte for byte from tar-split records kept at
//!   load time, so loading it gives the same ids; prints `{"output","ids","size"}`.
//! - `volume create [NAME] [--label K=V]...` (random 64-hex name when
//!   absent; existing: returned as is), `volume inspect NAME`, `volume ls`:
//!   `{"name","mountpoint","createdAt","driver","labels":{},"inUseBy":[container
//!   ids]}` (ls: an array). `volume rm NAME [--force]`: `{"removed":[NAME]}`, refused (1)
//!   while a container uses it; gone already: success. `volume prune`:
//!   `{"removed":[...]}`, every volume no container uses.
//! - `volume resolve ID` reads `[{"type":"volume"|"bind"|"tmpfs","source",
//!   "target","readonly"}]` on stdin and prints OCI mounts
//!   `[{"destination","type","source","options"}]`: a volume (named, or
//!   anonymous when source is empty) -> bind of its `_data` (`rbind,rprivate`),
//!   created on first use and then seeded with the image's content at the
//!   target; bind -> bind (a missing host dir is created); tmpfs ->
//!   `nosuid,nodev,noexec,mode=1777`; `ro` appended when readonly. The
//!   container's `layerfs-volumes.json` records the volumes it uses (kept
//!   until `remove ID`).
//! - `cp-out ID PATH [-L]`: PATH in the container as a tar on stdout (top
//!   entry PATH's last component; a symlink archived as such unless `-L`).
//!   `cp-in ID PATH [--dir-only]`: a tar on stdin into PATH (an existing
//!   dir: inside it; else its parent, the top entry renamed to PATH's last
//!   component), prints `{"id","path"}`. Container paths are resolved with
//!   `openat2(RESOLVE_IN_ROOT)` on the rootfs (mounted for the call when
//!   not mounted): no symlink leads out of the container; below, nothing
//!   is followed. `tar-host PATH [-L]` and `untar-host PATH` (prints
//!   `{"path"}`) are the host halves of `docker cp`. A PATH ending in `/.`
//!   (cp-out, tar-host) archives the dir's contents: the top entry is `.`
//!   (not a dir: refused); such an archive lands in an existing dir's
//!   contents, or makes a missing PATH (cp-in, untar-host; an existing
//!   file: refused).
//! - `diff ID`: `[{"kind":"A"|"C"|"D","path":"/..."}]` from the upper dir
//!   (whiteouts are `D`), sorted; bind mount points left out.
//! - `remove ID`: `{"id","removed":true}`; umount, then delete upper, work,
//!   rootfs, layerfs.json and layerfs-volumes.json (the container dir and
//!   the volumes stay). Gone already: success.
//!
//! The store root is made 0710 and its top dirs 0700 (existing ones are
//! tightened) before any subcommand runs: see `perms`. Error messages never
//! carry control bytes (`printable`). A closed stdout is not an error.
//!
//! Exit codes: 0 ok; 1 the operation failed (no such image, image in use,
//! I/O, mount); 2 bad usage or bad input (flags, a malformed reference or
//! container id, a malformed, corrupted or hostile tarball).
//!
//! # Store layout
//!
//! ```text
//! DIR/layers/sha256/<diffid hex>/   extracted layer, an overlay lowerdir
//! DIR/layers/meta/<hex>.json        {"diffId","size"}
//! DIR/layers/meta/<hex>.split       tar-split record (rebuilds the layer tar)
//! DIR/layers/tmp/                   layers being extracted (renamed into place)
//! DIR/images/index.json             {"images":{"sha256:<id>":{record}}}
//! DIR/images/index.lock             flock serializing writers
//! DIR/images/sha256/<hex>.json      image config blobs, verbatim
//! DIR/containers/<ID>/{upper,work,rootfs,layerfs.json,layerfs-volumes.json}
//! DIR/volumes/<name>/{_data,meta.json}, DIR/volumes/.lock
//! ```

pub mod atomic;
pub mod beneath;
pub mod commit;
pub mod cp;
pub mod digest;
pub mod export;
pub mod extract;
pub mod image;
pub mod index;
pub mod input;
pub mod layer;
pub mod layout;
pub mod load;
pub mod mount;
mod oci;
pub mod output;
pub mod pack;
pub mod perms;
pub mod progress;
pub mod reference;
pub mod save;
pub mod split;
pub mod volume;

pub use layout::Layout;

/// Any layerfs failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Mount(#[from] mount::MountError),
    #[error(transparent)]
    Commit(#[from] commit::CommitError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Save(#[from] save::SaveError),
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    #[error(transparent)]
    Cp(#[from] cp::CpError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// 2 for bad input (arguments or archive content), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        use index::IndexError as I;
        use layer::LayerError as L;
        use load::LoadError as Ld;
        let bad_layer = |l: &L| {
            matches!(
                l,
                L::Extract {
                    source: extract::ExtractError::Unsafe { .. }
                        | extract::ExtractError::Unsupported { .. }
                        | extract::ExtractError::Tar(_),
                    ..
                } | L::Mismatch { .. }
                    | L::Compression { .. }
            )
        };
        match self {
            Error::Load(Ld::Format { .. } | Ld::Reference(_)) => 2,
            Error::Load(Ld::Layer(l)) if bad_layer(l) => 2,
            Error::Load(Ld::Index(I::Reference(_))) => 2,
            Error::Image(
                image::ImageError::Reference(_) | image::ImageError::Index(I::Reference(_)),
            ) => 2,
            Error::Mount(
                mount::MountError::BadId(_) | mount::MountError::Index(I::Reference(_)),
            ) => 2,
            Error::Commit(
                commit::CommitError::Reference(_)
                | commit::CommitError::BadChange(_)
                | commit::CommitError::Mount(mount::MountError::BadId(_)),
            ) => 2,
            Error::Commit(commit::CommitError::Layer(l)) if bad_layer(l) => 2,
            Error::Export(export::ExportError::Mount(mount::MountError::BadId(_))) => 2,
            Error::Cp(
                cp::CpError::Mount(mount::MountError::BadId(_))
                | cp::CpError::Extract(
                    extract::ExtractError::Unsafe { .. }
                    | extract::ExtractError::Unsupported { .. }
                    | extract::ExtractError::Tar(_),
                ),
            ) => 2,
            Error::Volume(
                volume::VolumeError::BadName(_)
                | volume::VolumeError::BadSpec { .. }
                | volume::VolumeError::BadJson(_)
                | volume::VolumeError::Mount(mount::MountError::BadId(_)),
            ) => 2,
            _ => 1,
        }
    }
}

/// `s` with control characters and undecodable bytes (U+FFFD) escaped, so
/// an error quoting an archive's bytes stays one readable line.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// Whether `e` comes from writing to a closed pipe (somewhere in its chain).
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_binary() {
        let s = super::printable("bad \u{1f}\u{8b}\u{fffd} x\ny");
        assert!(!s.chars().any(|c| c.is_control() || c == '\u{fffd}'), "{s}");
        assert!(s.starts_with("bad "), "{s}");
    }
}

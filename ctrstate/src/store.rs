//! The record store: one directory per container under `ROOT/containers`,
//! `state.json` written by atomic rename, writers serialized by one flock.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::index::{needs_check, Index};
use crate::name::{self, NameError};
use crate::patch;
use crate::procfs;
use crate::record::{is_full_id, Record, Status};
use crate::time::{is_zero, now_rfc3339};

pub type Result<T> = std::result::Result<T, StoreError>;

const STATE: &str = "state.json";
const LOCK: &str = ".lock";
/// Where `rm` moves a container directory before deleting it, so a crash
/// in the middle leaves it there, out of the records, for `rm ID` to finish.
pub const REMOVING: &str = ".removing";
/// Exit code `reconcile` records for a process that vanished unobserved
/// (docker shows such containers as `Exited (255)`).
pub const VANISHED_EXIT_CODE: i32 = 255;
pub const VANISHED_ERROR: &str = "process vanished";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("image is required")]
    MissingImage,
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("invalid {what}: {source}")]
    BadInput {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the update patch must be a JSON object (RFC 7386 merge patch)")]
    PatchNotObject,
    #[error("{field} of container {id} cannot be changed")]
    Immutable { field: &'static str, id: String },
    #[error("name \"{name}\" is already in use by container {short_id}")]
    NameInUse { name: String, short_id: String },
    #[error("no such container: {reference}")]
    NoSuchContainer { reference: String },
    #[error("id prefix \"{reference}\" is ambiguous: it matches {candidates}")]
    Ambiguous {
        reference: String,
        candidates: String,
    },
    #[error("refusing to remove {}: {} is mounted there; unmount it first", dir.display(), mount.display())]
    Mounted { dir: PathBuf, mount: PathBuf },
    #[error("no free random name after {tries} tries")]
    NamesExhausted { tries: u32 },
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt record {}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("read {}: {source}", mountinfo::SELF)]
    Mountinfo {
        #[source]
        source: io::Error,
    },
    #[error("getrandom: {0}")]
    Random(#[from] randid::Error),
}

impl StoreError {
    /// 2 for bad input (nothing was attempted), 1 for a failed operation.
    pub fn exit_code(&self) -> u8 {
        match self {
            StoreError::MissingImage
            | StoreError::Name(_)
            | StoreError::BadInput { .. }
            | StoreError::PatchNotObject
            | StoreError::Immutable { .. } => 2,
            _ => 1,
        }
    }
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { step, path, source }
}

/// A record as stored, with the fields listings sort and match by.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    bytes: Vec<u8>,
    path: PathBuf,
}

impl RawRecord {
    /// The whole record.
    pub fn parse(&self) -> Result<Record> {
        serde_json::from_slice(&self.bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })
    }

    /// A narrower view of the record (a listing's columns), borrowing
    /// from the stored bytes where it can: skipping what a caller does
    /// not show is most of the cost of a listing.
    pub fn parse_as<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T> {
        serde_json::from_slice(&self.bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })
    }
}

/// What `list_raw` reads of each record (the rest is skipped unparsed).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RawKey {
    id: String,
    name: String,
    created: String,
}

/// What `remove` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// False only for `--force` of an unknown reference.
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The store under one root.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    index: Index,
}

impl Store {
    /// A store rooted at `root` (records in `root/containers`). Touches
    /// nothing: directories are made by the first write.
    pub fn open(root: impl AsRef<Path>) -> Store {
        let dir = root.as_ref().join("containers");
        Store {
            index: Index::new(&dir),
            dir,
        }
    }

    /// `ROOT/containers`.
    pub fn containers_dir(&self) -> &Path {
        &self.dir
    }

    /// `ROOT/containers/<id>`, the directory other tools put their files in.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Appends the events of a record change to `ROOT/events.jsonl`.
    fn journal(&self, old: Option<&Record>, new: Option<&Record>) {
        if let Some(root) = self.dir.parent() {
            crate::journal::record_change(root, old, new);
        }
    }

    /// The writers' lock; dropping it releases the flock. The indexes are
    /// valid while it is held (rebuilt here when they are not).
    fn lock(&self) -> Result<atomicfile::Lock> {
        atomicfile::private_dir(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.dir.join(LOCK);
        let lock = atomicfile::lock(&path).map_err(io_err("flock", &path))?;
        if !self.index.valid() {
            let all = self.load_all()?;
            self.index
                .rebuild(&all)
                .map_err(io_err("rebuild index", &self.dir))?;
        }
        Ok(lock)
    }

    /// The record the name index gives for a valid `name`, if it still
    /// has that name (`None` when the index is not valid).
    fn by_name(&self, name: &str) -> Result<Option<Record>> {
        let Some(id) = self.index.name(name) else {
            return Ok(None);
        };
        Ok(self.read(&id)?.filter(|r| r.name == name))
    }

    /// The full ids of the container directories (one readdir, no record read).
    fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read dir", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read dir", &self.dir))?;
            if let Some(id) = entry.file_name().to_str().filter(|n| is_full_id(n)) {
                out.push(id.to_string());
            }
        }
        Ok(out)
    }

    /// Reads one record; `None` when it does not exist (or is being removed).
    fn read(&self, id: &str) -> Result<Option<Record>> {
        let path = self.container_dir(id).join(STATE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Every record, in directory order. Safe without the lock: records
    /// appear and change only by rename.
    fn load_all(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if let Some(r) = self.read(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Resolves a reference the way docker does: full id, then exact name,
    /// then unique id prefix. Returns the id and the record when it has one
    /// (a directory left without `state.json` resolves by full id only).
    fn resolve(&self, reference: &str) -> Result<(String, Option<Record>)> {
        let no_such = || StoreError::NoSuchContainer {
            reference: reference.to_string(),
        };
        if reference.is_empty() {
            return Err(no_such());
        }
        if is_full_id(reference) && self.container_dir(reference).is_dir() {
            return Ok((reference.to_string(), self.read(reference)?));
        }
        let wanted = reference.strip_prefix('/').unwrap_or(reference);
        let mut hits: Vec<Record> = if self.index.valid() {
            // Only a valid name can be a record's name (and a file name).
            if name::validate(wanted).is_ok() {
                if let Some(r) = self.by_name(wanted)? {
                    return Ok((r.id.clone(), Some(r)));
                }
            }
            let mut hits = Vec::new();
            for id in self
                .ids()?
                .into_iter()
                .filter(|id| id.starts_with(reference))
            {
                hits.extend(self.read(&id)?);
            }
            hits
        } else {
            let all = self.load_all()?;
            if let Some(r) = all.iter().find(|r| r.name == wanted) {
                return Ok((r.id.clone(), Some(r.clone())));
            }
            all.into_iter()
                .filter(|r| r.id.starts_with(reference))
                .collect()
        };
        match hits.len() {
            0 => Err(no_such()),
            1 => {
                let r = hits.remove(0);
                Ok((r.id.clone(), Some(r)))
            }
            _ => Err(StoreError::Ambiguous {
                reference: reference.to_string(),
                candidates: hits
                    .iter()
                    .map(|r| format!("{} ({})", r.short_id(), r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Writes `rec` over `dir/state.json` atomically (compact JSON), and
    /// durably unless the record is of an auto-removed container.
    fn write(&self, dir: &Path, rec: &Record) -> Result<()> {
        let mut buf = serde_json::to_vec(rec).map_err(|source| StoreError::BadInput {
            what: "record",
            source,
        })?;
        buf.push(b'\n');
        let path = dir.join(STATE);
        if ephemeral(rec) {
            // Atomic for readers all the same; only the fsyncs (two per
            // write, 1-10 ms each here) are skipped. Writers hold the lock,
            // so one temp name per directory is enough.
            let tmp = dir.join(".state.json.tmp");
            return fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&buf))
                .and_then(|()| fs::rename(&tmp, &path))
                .map_err(io_err("write", &path));
        }
        atomicfile::write_private(&path, &buf).map_err(io_err("write", &path))
    }

    /// Creates a record from `req`: `id`, `created` and `status` are
    /// assigned; an empty name gets a random one. A taken name is an error
    /// and nothing is written.
    pub fn create(&self, req: Record) -> Result<Record> {
        if req.image.is_empty() {
            return Err(StoreError::MissingImage);
        }
        let wanted = if req.name.is_empty() {
            None
        } else {
            Some(name::validate(&req.name)?)
        };

        let _lock = self.lock()?;
        let owner = |n: &str| self.by_name(n);
        let name = match wanted {
            Some(n) => {
                if let Some(r) = owner(&n)? {
                    return Err(StoreError::NameInUse {
                        name: n,
                        short_id: r.short_id().to_string(),
                    });
                }
                n
            }
            None => {
                const TRIES: u32 = 100;
                let mut found = None;
                for retry in 0..TRIES {
                    // Plain names first; docker appends a digit after collisions.
                    let n = name::random(randid::u64()?, if retry < 10 { 0 } else { retry });
                    if owner(&n)?.is_none() {
                        found = Some(n);
                        break;
                    }
                }
                found.ok_or(StoreError::NamesExhausted { tries: TRIES })?
            }
        };
        let id = loop {
            let id = randid::id()?;
            // A prefix clash is harmless (docker resolves longer prefixes);
            // an exact one would be a 2^-256 event, but cheap to exclude.
            if !self.container_dir(&id).exists() {
                break id;
            }
        };
        let rec = Record {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            status: Status::Created,
            ..req
        };

        // The whole directory appears at once by rename, so readers never
        // see a container directory without its state.json.
        // The name is indexed first: a crash before the rename leaves
        // only an entry naming no record, which lookups ignore.
        let tmp = self.dir.join(format!(".tmp-{id}"));
        let dest = self.container_dir(&id);
        let res = self
            .index_before(None, &rec)
            .and_then(|()| {
                // 0700 from the start: mydocker no longer walks every
                // container dir to tighten it.
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&tmp)
                    .map_err(io_err("create", &tmp))
            })
            .and_then(|()| self.write(&tmp, &rec))
            .and_then(|()| fs::rename(&tmp, &dest).map_err(io_err("rename", &dest)));
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&tmp);
            let _ = self.index.drop_name(&rec.name, &id);
            let _ = self.index.set_live(&id, false);
            return Err(e);
        }
        self.journal(None, Some(&rec));
        Ok(rec)
    }

    /// The record named by `reference` (full id, name or unique id prefix).
    pub fn get(&self, reference: &str) -> Result<Record> {
        match self.resolve(reference)? {
            (_, Some(r)) => Ok(r),
            (_, None) => Err(StoreError::NoSuchContainer {
                reference: reference.to_string(),
            }),
        }
    }

    /// All records, newest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        self.list_raw()?.iter().map(RawRecord::parse).collect()
    }

    /// All records newest first, unparsed but for their id, name and
    /// creation time: a caller that looks at one record at a time parses
    /// each (`RawRecord::parse`) and drops it, instead of holding every
    /// record's parsed config at once (with 1,000 records that is most of
    /// `ps`'s time, in page faults).
    pub fn list_raw(&self) -> Result<Vec<RawRecord>> {
        let mut all = Vec::new();
        for id in self.ids()? {
            let path = self.container_dir(&id).join(STATE);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // Removed meanwhile, or a cut-short create or rm.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            };
            let key: RawKey =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            all.push(RawRecord {
                id: key.id,
                name: key.name,
                created: key.created,
                bytes,
                path,
            });
        }
        // Fixed-width UTC timestamps sort as strings; the id breaks ties.
        all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Applies an RFC 7386 merge patch to a record. `id` and `created` cannot
    /// change; a new name must be valid and free.
    pub fn update(&self, reference: &str, merge_patch: &Value) -> Result<Record> {
        if !merge_patch.is_object() {
            return Err(StoreError::PatchNotObject);
        }
        self.modify(reference, |old| {
            let mut v = serde_json::to_value(old).map_err(|source| StoreError::BadInput {
                what: "record",
                source,
            })?;
            patch::merge(&mut v, merge_patch);
            serde_json::from_value(v).map_err(|source| StoreError::BadInput {
                what: "patch",
                source,
            })
        })
    }

    /// Like `update`, for in-process callers: `f` edits the record under the
    /// lock, with the same checks before it is written.
    pub fn update_with(&self, reference: &str, f: impl FnOnce(&mut Record)) -> Result<Record> {
        self.modify(reference, |old| {
            let mut new = old.clone();
            f(&mut new);
            Ok(new)
        })
    }

    /// Read-modify-write of one record under the lock.
    fn modify(&self, reference: &str, f: impl FnOnce(&Record) -> Result<Record>) -> Result<Record> {
        // A root without records has nothing to update; do not create it.
        if !self.dir.is_dir() {
            return Err(StoreError::NoSuchContainer {
                reference: reference.to_string(),
            });
        }
        let _lock = self.lock()?;
        let old = self.get(reference)?;
        let mut new = f(&old)?;
        for (field, same) in [
            ("id", new.id == old.id),
            ("created", new.created == old.created),
        ] {
            if !same {
                return Err(StoreError::Immutable { field, id: old.id });
            }
        }
        if new.name != old.name {
            new.name = name::validate(&new.name)?;
            if new.name != old.name {
                if let Some(r) = self.by_name(&new.name)? {
                    return Err(StoreError::NameInUse {
                        name: new.name,
                        short_id: r.short_id().to_string(),
                    });
                }
            }
        }
        self.index_before(Some(&old), &new)?;
        // Journal first: whoever sees the new record (`stop` waiting for
        // the exit) then finds its events already written, so theirs
        // (`stop` after `die`) come after them, in docker's order.
        self.journal(Some(&old), Some(&new));
        self.write(&self.container_dir(&old.id), &new)?;
        self.index_after(&old, &new)?;
        Ok(new)
    }

    /// Index entries `new` needs, added before it is written (under the lock).
    fn index_before(&self, old: Option<&Record>, new: &Record) -> Result<()> {
        let err = || io_err("index", &self.dir);
        if old.is_none_or(|o| o.name != new.name) {
            self.index.set_name(&new.name, &new.id).map_err(err())?;
        }
        if needs_check(new) && !old.is_some_and(needs_check) {
            self.index.set_live(&new.id, true).map_err(err())?;
        }
        Ok(())
    }

    /// Index entries dropped once `new` is written (under the lock).
    fn index_after(&self, old: &Record, new: &Record) -> Result<()> {
        let err = || io_err("index", &self.dir);
        if new.name != old.name {
            self.index.drop_name(&old.name, &old.id).map_err(err())?;
        }
        if needs_check(old) && !needs_check(new) {
            self.index.set_live(&old.id, false).map_err(err())?;
        }
        Ok(())
    }

    /// Removes `ROOT/containers/<id>/` and everything in it, unless anything
    /// is mounted at or under it. With `force`, an unknown reference is not
    /// an error (so undo steps can repeat).
    pub fn remove(&self, reference: &str, force: bool) -> Result<Removed> {
        // Removing from a root that was never used must not create it.
        let _lock = if self.dir.is_dir() {
            Some(self.lock()?)
        } else {
            None
        };
        let (id, rec) = match self.resolve(reference) {
            Ok(x) => x,
            // A removal a crash cut short (see below): finish it.
            Err(StoreError::NoSuchContainer { .. })
                if is_full_id(reference) && self.dir.join(REMOVING).join(reference).is_dir() =>
            {
                let gone = self.dir.join(REMOVING).join(reference);
                self.remove_tree(&gone)?;
                self.index
                    .set_live(reference, false)
                    .map_err(io_err("index", &self.dir))?;
                return Ok(Removed {
                    removed: true,
                    id: Some(reference.to_string()),
                    name: None,
                });
            }
            Err(StoreError::NoSuchContainer { .. }) if force => {
                return Ok(Removed {
                    removed: false,
                    id: None,
                    name: None,
                })
            }
            Err(e) => return Err(e),
        };
        let dir = self.container_dir(&id);
        let canon = self.unmounted(&dir)?;
        // The record goes at once (a rename); the files after it, so a
        // crash between leaves no container without its record, only a
        // directory under .removing (`rm ID` finishes it; mydocker's
        // reconcile pass does).
        let removing = self.dir.join(REMOVING);
        let gone = removing.join(&id);
        fs::create_dir_all(&removing).map_err(io_err("create", &removing))?;
        match fs::rename(&canon, &gone) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("rename", &canon)(e))
            }
            _ => {}
        }
        let err = || io_err("index", &self.dir);
        if let Some(r) = &rec {
            self.index.drop_name(&r.name, &id).map_err(err())?;
        }
        self.index.set_live(&id, false).map_err(err())?;
        match fs::remove_dir_all(&gone) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &gone)(e))
            }
            _ => {}
        }
        if let Some(r) = &rec {
            self.journal(Some(r), None);
        }
        Ok(Removed {
            removed: true,
            id: Some(id),
            name: rec.map(|r| r.name),
        })
    }

    /// True when `reconcile` would change something (or rebuild the
    /// index). Read-only and lock-free, like `reconcile`'s common case, so
    /// a caller can skip running it.
    pub fn needs_reconcile(&self) -> Result<bool> {
        if !self.dir.is_dir() {
            return Ok(false);
        }
        if !self.index.valid() {
            return Ok(true);
        }
        let (stale, unmark) = self.scan_live()?;
        Ok(!stale.is_empty() || !unmark.is_empty())
    }

    /// Reads the records the live index names, without the lock: those
    /// `reconcile` must fix, and the entries it must drop (left by a crash
    /// between a write and the index update, or naming a removed record).
    /// The common case changes nothing, so the check at the start of every
    /// mydocker command never waits on writers.
    fn scan_live(&self) -> Result<(Vec<String>, Vec<String>)> {
        let mut stale = Vec::new();
        let mut unmark = Vec::new();
        let live = self
            .index
            .live_ids()
            .map_err(io_err("read index", &self.dir))?;
        for id in live {
            match self.read(&id)? {
                Some(r) if fix(&r).is_some() => stale.push(id),
                Some(r) if needs_check(&r) => {}
                _ => unmark.push(id),
            }
        }
        Ok((stale, unmark))
    }

    /// `dir` made absolute and symlink-free (as mountinfo lists paths),
    /// refused while anything is mounted at or under it.
    fn unmounted(&self, dir: &Path) -> Result<PathBuf> {
        let canon = dir.canonicalize().map_err(io_err("resolve", dir))?;
        let mounts =
            mountinfo::mounts_under(&canon).map_err(|source| StoreError::Mountinfo { source })?;
        match mounts.into_iter().next() {
            Some(mount) => Err(StoreError::Mounted { dir: canon, mount }),
            None => Ok(canon),
        }
    }

    /// Deletes a directory under .removing (nothing mounted in it).
    fn remove_tree(&self, dir: &Path) -> Result<()> {
        let canon = match self.unmounted(dir) {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            r => r?,
        };
        match fs::remove_dir_all(&canon) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &canon)(e)),
            _ => Ok(()),
        }
    }

    /// The full ids under .removing: removals a crash cut short.
    pub fn removing(&self) -> Vec<String> {
        fs::read_dir(self.dir.join(REMOVING))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .filter(|n| is_full_id(n))
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Settles every record whose process or launch is gone (see
    /// `Fix`): an abandoned launch stays `created` with its supervisor
    /// cleared and an error (its pid kept, for the caller to kill and
    /// clear), a vanished process becomes `exited`. Returns the changed
    /// records.
    pub fn reconcile(&self) -> Result<Vec<Record>> {
        if !self.dir.is_dir() {
            return Ok(Vec::new());
        }
        if !self.index.valid() {
            drop(self.lock()?); // rebuilds it
        }
        let (stale, unmark) = self.scan_live()?;
        if stale.is_empty() && unmark.is_empty() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        for id in unmark {
            if !self.read(&id)?.as_ref().is_some_and(needs_check) {
                self.index
                    .set_live(&id, false)
                    .map_err(io_err("index", &self.dir))?;
            }
        }
        let mut changed = Vec::new();
        for id in stale {
            // Re-read under the lock: a supervisor may have recorded the exit.
            let Some(mut r) = self.read(&id)? else {
                continue;
            };
            let old = r.clone();
            match fix(&r) {
                None => continue,
                Some(Fix::Abandoned) => {
                    r.supervisor_pid = None;
                    r.error = Some(ABANDONED_ERROR.to_string());
                }
                Some(Fix::Vanished) => {
                    if is_zero(&r.finished_at) {
                        r.exit_code = VANISHED_EXIT_CODE;
                        r.error = Some(VANISHED_ERROR.to_string());
                        r.finished_at = now_rfc3339();
                    }
                    r.status = Status::Exited;
                    r.pid = 0;
                    r.pid_start_time = 0;
                }
            }
            self.journal(Some(&old), Some(&r));
            self.write(&self.container_dir(&id), &r)?;
            if !needs_check(&r) {
                self.index
                    .set_live(&id, false)
                    .map_err(io_err("index", &self.dir))?;
            }
            changed.push(r);
        }
        Ok(changed)
    }
}

/// A record of a container removed when it exits (docker's `--rm`,
/// `config.autoRemove` in mydocker's run options): nothing needs it after
/// a power loss, so its writes skip fsync.
fn ephemeral(r: &Record) -> bool {
    r.config.get("autoRemove") == Some(&Value::Bool(true))
}

/// What `reconcile` does to a record.
#[derive(Debug, PartialEq)]
enum Fix {
    /// `created`, its launch begun (a supervisor recorded, or an init's
    /// pid) and its supervisor gone: the command never ran (or ran
    /// unrecorded, with nobody left to watch it). It stays `created`.
    Abandoned,
    /// Claims a process that no longer exists: `exited`.
    Vanished,
}

/// The error an abandoned launch's record gets.
pub const ABANDONED_ERROR: &str =
    "the launch was interrupted: its supervisor died before the container started";

fn supervisor_alive(r: &Record) -> bool {
    r.supervisor_pid
        .is_some_and(|s| procfs::stat(s).is_some_and(|st| st.state != 'Z'))
}

/// A zombie still counts as alive: its parent (the supervisor) will reap
/// it and record the real exit code. A start time of 0 means unknown:
/// existence only. A record whose supervisor is alive is the supervisor's
/// to settle.
fn fix(r: &Record) -> Option<Fix> {
    if supervisor_alive(r) {
        return None;
    }
    if r.status == Status::Restarting {
        // Its supervisor died in the backoff: nobody will start it again.
        return Some(Fix::Vanished);
    }
    if r.status == Status::Created && (r.supervisor_pid.is_some() || r.pid != 0) {
        return Some(Fix::Abandoned);
    }
    if !r.status.claims_process() || r.pid == 0 {
        return None;
    }
    match procfs::stat(r.pid) {
        None => Some(Fix::Vanished),
        Some(st) if r.pid_start_time != 0 && st.start_time != r.pid_start_time => {
            Some(Fix::Vanished)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Root(PathBuf);
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn root(tag: &str) -> Root {
        Root(std::env::temp_dir().join(format!("ctrstate-unit-{tag}-{}", std::process::id())))
    }

    #[test]
    fn update_with_edits_and_keeps_immutables() {
        let r = root("upd");
        let s = Store::open(&r.0);
        let rec = s
            .create(Record {
                image: "busybox".into(),
                name: "u1".into(),
                ..Record::default()
            })
            .unwrap();
        let new = s
            .update_with("u1", |x| {
                x.status = Status::Running;
                x.pid = 42;
            })
            .unwrap();
        assert_eq!((new.status, new.pid), (Status::Running, 42));
        assert_eq!(s.get(&rec.id).unwrap(), new);
        let err = s.update_with("u1", |x| x.id = "0".repeat(64)).unwrap_err();
        assert!(
            matches!(err, StoreError::Immutable { field: "id", .. }),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        let err = s
            .update_with("u1", |x| x.name = "bad name".into())
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(s.get("u1").unwrap(), new);
    }

    fn rec(name: &str) -> Record {
        Record {
            image: "busybox".into(),
            name: name.into(),
            ..Record::default()
        }
    }

    #[test]
    fn records_are_private_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let r = root("modes");
        let s = Store::open(&r.0);
        let mut rm = rec("gone");
        rm.config.insert("autoRemove".into(), Value::Bool(true));
        for r in [s.create(rec("kept")).unwrap(), s.create(rm).unwrap()] {
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let dir = s.container_dir(&r.id);
            assert_eq!(mode(&dir), 0o700, "{}", r.name);
            assert_eq!(mode(&dir.join(STATE)), 0o600, "{}", r.name);
            s.update_with(&r.id, |x| x.pid = 0).unwrap();
            assert_eq!(mode(&dir.join(STATE)), 0o600, "{} updated", r.name);
        }
    }

    fn names_dir(s: &Store) -> PathBuf {
        s.containers_dir().join(".names")
    }

    fn live_dir(s: &Store) -> PathBuf {
        s.containers_dir().join(".live")
    }

    #[test]
    fn name_index_follows_create_rename_and_remove() {
        let r = root("idx");
        let s = Store::open(&r.0);
        let a = s.create(rec("alpha")).unwrap();
        assert_eq!(s.index.name("alpha").as_deref(), Some(a.id.as_str()));
        assert!(s.index.valid());

        s.update_with("alpha", |x| x.name = "beta".into()).unwrap();
        assert_eq!(s.index.name("alpha"), None);
        assert_eq!(s.index.name("beta").as_deref(), Some(a.id.as_str()));
        assert!(matches!(
            s.get("alpha"),
            Err(StoreError::NoSuchContainer { .. })
        ));
        assert_eq!(s.get("beta").unwrap().id, a.id);
        // The old name is free again, the new one taken.
        let b = s.create(rec("alpha")).unwrap();
        assert!(matches!(
            s.create(rec("beta")),
            Err(StoreError::NameInUse { .. })
        ));
        assert_eq!(s.get("/alpha").unwrap().id, b.id);

        s.remove("beta", false).unwrap();
        assert_eq!(s.index.name("beta"), None);
        assert!(matches!(
            s.get("beta"),
            Err(StoreError::NoSuchContainer { .. })
        ));
        assert_eq!(fs::read_dir(names_dir(&s)).unwrap().count(), 1);
    }

    #[test]
    fn stale_name_entries_are_ignored_and_replaced() {
        let r = root("stale");
        let s = Store::open(&r.0);
        let a = s.create(rec("web")).unwrap();
        // As a crash between the index and the record would leave them: an
        // entry to a record that is gone, one to a record of another name.
        std::os::unix::fs::symlink("f".repeat(64), names_dir(&s).join("ghost")).unwrap();
        std::os::unix::fs::symlink(&a.id, names_dir(&s).join("other")).unwrap();
        for n in ["ghost", "other"] {
            assert!(
                matches!(s.get(n), Err(StoreError::NoSuchContainer { .. })),
                "{n}"
            );
        }
        let g = s.create(rec("ghost")).unwrap();
        assert_eq!(s.get("ghost").unwrap().id, g.id);
        s.update_with("web", |x| x.name = "other".into()).unwrap();
        assert_eq!(s.get("other").unwrap().id, a.id);
    }

    #[test]
    fn a_missing_or_outdated_index_is_rebuilt_from_the_records() {
        let r = root("rebuild");
        let s = Store::open(&r.0);
        let a = s.create(rec("one")).unwrap();
        let b = s
            .update_with(&s.create(rec("two")).unwrap().id, |x| {
                x.status = Status::Running;
                x.pid = std::process::id();
            })
            .unwrap();
        assert!(live_dir(&s).join(&b.id).exists());
        assert!(!live_dir(&s).join(&a.id).exists());
        // A root of an older ctrstate (no index), and one from another
        // boot (a power loss may have lost unsynced entries).
        for damage in ["remove", "stamp"] {
            if damage == "remove" {
                fs::remove_dir_all(names_dir(&s)).unwrap();
                fs::remove_dir_all(live_dir(&s)).unwrap();
                fs::remove_file(s.containers_dir().join(".index")).unwrap();
            } else {
                fs::remove_file(names_dir(&s).join("one")).unwrap();
                fs::remove_file(live_dir(&s).join(&b.id)).unwrap();
                fs::write(s.containers_dir().join(".index"), "index 1 old-boot\n").unwrap();
            }
            assert!(!s.index.valid());
            // Readers scan meanwhile.
            assert_eq!(s.get("one").unwrap().id, a.id);
            // reconcile rebuilds before it reads the live index.
            assert_eq!(s.reconcile().unwrap(), vec![]);
            assert!(s.index.valid(), "{damage}");
            assert_eq!(s.index.name("one").as_deref(), Some(a.id.as_str()));
            assert_eq!(s.index.name("two").as_deref(), Some(b.id.as_str()));
            assert_eq!(s.index.live_ids().unwrap(), vec![b.id.clone()]);
        }
        // A writer rebuilds too.
        fs::remove_file(s.containers_dir().join(".index")).unwrap();
        fs::remove_dir_all(names_dir(&s)).unwrap();
        assert!(matches!(
            s.create(rec("one")),
            Err(StoreError::NameInUse { .. })
        ));
        assert!(s.index.valid());
    }

    #[test]
    fn reconcile_reads_only_live_records_and_settles_them() {
        let r = root("live");
        let s = Store::open(&r.0);
        let gone = s.create(rec("gone")).unwrap();
        // A pid that cannot exist (above pid_max's limit).
        s.update_with("gone", |x| {
            x.status = Status::Running;
            x.pid = 4_194_305;
        })
        .unwrap();
        s.create(rec("idle")).unwrap();
        // An exited record with a marker left by a crash is unmarked.
        let idle = s.get("idle").unwrap();
        fs::File::create(live_dir(&s).join(&idle.id)).unwrap();
        let changed = s.reconcile().unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].id, gone.id);
        assert_eq!(changed[0].status, Status::Exited);
        assert_eq!(changed[0].exit_code, VANISHED_EXIT_CODE);
        assert_eq!(s.index.live_ids().unwrap(), Vec::<String>::new());
        assert_eq!(s.reconcile().unwrap(), vec![]);
        // A corrupt record outside the live index does not stop reconcile
        // (it reads only the live ones).
        fs::write(s.container_dir(&idle.id).join(STATE), "{").unwrap();
        assert_eq!(s.reconcile().unwrap(), vec![]);
    }

    #[test]
    fn rm_moves_the_directory_out_first_and_finishes_a_cut_short_removal() {
        let r = root("rm");
        let s = Store::open(&r.0);
        let a = s.create(rec("keep")).unwrap();
        let b = s.create(rec("gone")).unwrap();
        fs::write(s.container_dir(&b.id).join("log"), "x").unwrap();
        let out = s.remove("gone", false).unwrap();
        assert_eq!(out.id.as_deref(), Some(b.id.as_str()));
        assert!(!s.container_dir(&b.id).exists());
        assert_eq!(s.removing(), Vec::<String>::new());
        // What a kill between the rename and the delete leaves.
        let cut = s.containers_dir().join(REMOVING).join(&a.id);
        fs::rename(s.container_dir(&a.id), &cut).unwrap();
        assert_eq!(s.removing(), vec![a.id.clone()]);
        assert!(matches!(
            s.get("keep"),
            Err(StoreError::NoSuchContainer { .. })
        ));
        let out = s.remove(&a.id, false).unwrap();
        assert!(out.removed);
        assert!(!cut.exists());
        assert!(s.removing().is_empty());
        assert!(!s.remove(&a.id, true).unwrap().removed);
    }

    #[test]
    fn auto_removed_records_are_written_the_same_without_fsync() {
        let r = root("eph");
        let s = Store::open(&r.0);
        let mut x = rec("eph");
        x.config.insert("autoRemove".into(), Value::Bool(true));
        assert!(ephemeral(&x));
        assert!(!ephemeral(&rec("durable")));
        let a = s.create(x).unwrap();
        let b = s
            .update_with("eph", |x| x.status = Status::Running)
            .unwrap();
        assert_eq!(s.get(&a.id).unwrap(), b);
        let files: Vec<_> = fs::read_dir(s.container_dir(&a.id))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, [STATE]);
    }

    #[test]
    fn missing_image_is_bad_input_and_creates_nothing() {
        let r = root("img");
        let err = Store::open(&r.0).create(Record::default()).unwrap_err();
        assert!(matches!(err, StoreError::MissingImage));
        assert_eq!(err.exit_code(), 2);
        assert!(!r.0.exists());
    }
}

//! The record store: one directory per container under `ROOT/containers`,
//! `state.json` written by atomic rename, writers serialized by one flock.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::name::{self, NameError};
use crate::patch;
use crate::procfs;
use crate::record::{is_full_id, Record, Status};
use crate::time::{is_zero, now_rfc3339};

pub type Result<T> = std::result::Result<T, StoreError>;

const STATE: &str = "state.json";
const LOCK: &str = ".lock";
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
}

impl Store {
    /// A store rooted at `root` (records in `root/containers`). Touches
    /// nothing: directories are made by the first write.
    pub fn open(root: impl AsRef<Path>) -> Store {
        Store {
            dir: root.as_ref().join("containers"),
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

    /// The writers' lock; dropping it releases the flock.
    fn lock(&self) -> Result<atomicfile::Lock> {
        atomicfile::private_dir(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.dir.join(LOCK);
        atomicfile::lock(&path).map_err(io_err("flock", &path))
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
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read dir", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read dir", &self.dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|n| is_full_id(n)) else {
                continue;
            };
            if let Some(r) = self.read(id)? {
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
        let all = self.load_all()?;
        let wanted = reference.strip_prefix('/').unwrap_or(reference);
        if let Some(r) = all.iter().find(|r| r.name == wanted) {
            return Ok((r.id.clone(), Some(r.clone())));
        }
        let mut hits: Vec<&Record> = all.iter().filter(|r| r.id.starts_with(reference)).collect();
        match hits.len() {
            0 => Err(no_such()),
            1 => {
                let r = hits.remove(0);
                Ok((r.id.clone(), Some(r.clone())))
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

    /// Writes `rec` over `dir/state.json` atomically (compact JSON).
    fn write(&self, dir: &Path, rec: &Record) -> Result<()> {
        let mut buf = serde_json::to_vec(rec).map_err(|source| StoreError::BadInput {
            what: "record",
            source,
        })?;
        buf.push(b'\n');
        let path = dir.join(STATE);
        atomicfile::write(&path, &buf).map_err(io_err("write", &path))
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
        let all = self.load_all()?;
        let owner = |n: &str| all.iter().find(|r| r.name == n);
        let name = match wanted {
            Some(n) => {
                if let Some(r) = owner(&n) {
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
                    if owner(&n).is_none() {
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
        let tmp = self.dir.join(format!(".tmp-{id}"));
        let dest = self.container_dir(&id);
        let res = fs::create_dir(&tmp)
            .map_err(io_err("create", &tmp))
            .and_then(|()| self.write(&tmp, &rec))
            .and_then(|()| fs::rename(&tmp, &dest).map_err(io_err("rename", &dest)));
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&tmp);
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
        let mut all = self.load_all()?;
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
                if let Some(r) = self.load_all()?.iter().find(|r| r.name == new.name) {
                    return Err(StoreError::NameInUse {
                        name: new.name,
                        short_id: r.short_id().to_string(),
                    });
                }
            }
        }
        // Journal first: whoever sees the new record (`stop` waiting for
        // the exit) then finds its events already written, so theirs
        // (`stop` after `die`) come after them, in docker's order.
        self.journal(Some(&old), Some(&new));
        self.write(&self.container_dir(&old.id), &new)?;
        Ok(new)
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
        // mountinfo holds absolute, symlink-free paths.
        let canon = dir.canonicalize().map_err(io_err("resolve", &dir))?;
        let mounts =
            mountinfo::mounts_under(&canon).map_err(|source| StoreError::Mountinfo { source })?;
        if let Some(mount) = mounts.into_iter().next() {
            return Err(StoreError::Mounted { dir: canon, mount });
        }
        match fs::remove_dir_all(&canon) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &canon)(e))
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

    /// Settles every record whose process or launch is gone (see
    /// `Fix`): an abandoned launch stays `created` with its supervisor
    /// cleared and an error (its pid kept, for the caller to kill and
    /// clear), a vanished process becomes `exited`. Returns the changed
    /// records.
    pub fn reconcile(&self) -> Result<Vec<Record>> {
        // The common case changes nothing: decide without the lock, so the
        // check at the start of every mydocker command never waits on writers.
        let stale: Vec<String> = self
            .load_all()?
            .into_iter()
            .filter(|r| fix(r).is_some())
            .map(|r| r.id)
            .collect();
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
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
            changed.push(r);
        }
        Ok(changed)
    }
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

    #[test]
    fn missing_image_is_bad_input_and_creates_nothing() {
        let r = root("img");
        let err = Store::open(&r.0).create(Record::default()).unwrap_err();
        assert!(matches!(err, StoreError::MissingImage));
        assert_eq!(err.exit_code(), 2);
        assert!(!r.0.exists());
    }
}

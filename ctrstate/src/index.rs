//! Indexes beside the records, so that a name resolves, and `reconcile`
//! runs, without reading every record:
//!
//! - `ROOT/containers/.names/<name>`: a symlink to the id of the record of
//!   that name;
//! - `ROOT/containers/.live/<id>`: an empty file for every record
//!   `reconcile` must check (see [`needs_check`]);
//! - `ROOT/containers/.index`: the boot id they were built in.
//!
//! Writers keep them under the store's lock: an entry is added before the
//! record that needs it is written and dropped after, so a crash leaves
//! only extra entries, and readers check every entry against its record.
//! Entries are not fsynced (they cost nothing on the hot path that way):
//! a power loss may lose some, and the boot id in `.index` then differs, so
//! the next writer or `reconcile` rebuilds both from the records. A root
//! written before the index existed has no `.index` and is rebuilt the
//! same way; until then readers scan the records as before.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::record::{is_full_id, Record};

const NAMES: &str = ".names";
const LIVE: &str = ".live";
const STAMP: &str = ".index";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Bumped when the layout changes, so an older index is rebuilt.
const VERSION: &str = "index 1";

/// True for a record `reconcile` must look at: one naming a supervisor, or
/// claiming a process (exactly the records `reconcile` may change).
pub fn needs_check(r: &Record) -> bool {
    r.supervisor_pid.is_some() || (r.status.claims_process() && r.pid != 0)
}

/// The indexes of one `ROOT/containers`.
#[derive(Debug, Clone)]
pub struct Index {
    dir: PathBuf,
}

fn stamp_text() -> String {
    // /proc is always there on Linux; without it the index never expires.
    let boot = fs::read_to_string(BOOT_ID).unwrap_or_else(|_| "unknown".into());
    format!("{VERSION} {}\n", boot.trim())
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl Index {
    pub fn new(containers_dir: &Path) -> Index {
        Index {
            dir: containers_dir.to_path_buf(),
        }
    }

    /// True when the index was built in this boot by this layout.
    pub fn valid(&self) -> bool {
        fs::read_to_string(self.dir.join(STAMP)).is_ok_and(|s| s == stamp_text())
    }

    /// Rebuilds both indexes from `records` (under the writers' lock). The
    /// stamp goes first and comes back last, so readers scan meanwhile.
    pub fn rebuild(&self, records: &[Record]) -> io::Result<()> {
        ignore_missing(fs::remove_file(self.dir.join(STAMP)))?;
        for (sub, live) in [(NAMES, false), (LIVE, true)] {
            let new = self.dir.join(format!("{sub}.new"));
            ignore_missing(fs::remove_dir_all(&new))?;
            fs::create_dir(&new)?;
            for r in records {
                if live && needs_check(r) {
                    fs::File::create(new.join(&r.id))?;
                } else if !live && !r.name.is_empty() {
                    match symlink(&r.id, new.join(&r.name)) {
                        // Two records of one name (never written by this
                        // crate): the first keeps it, as a scan would find.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        r => r?,
                    }
                }
            }
            let cur = self.dir.join(sub);
            ignore_missing(fs::remove_dir_all(&cur))?;
            fs::rename(&new, &cur)?;
        }
        atomicfile::write(&self.dir.join(STAMP), stamp_text().as_bytes())
    }

    /// The id the name index gives for `name` (to be checked against the
    /// record). `name` must be a valid name (no `/`).
    pub fn name(&self, name: &str) -> Option<String> {
        let target = fs::read_link(self.dir.join(NAMES).join(name)).ok()?;
        target.to_str().filter(|t| is_full_id(t)).map(String::from)
    }

    /// Points `name` at `id`, replacing a stale entry atomically.
    pub fn set_name(&self, name: &str, id: &str) -> io::Result<()> {
        let dir = self.dir.join(NAMES);
        let path = dir.join(name);
        match symlink(id, &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let tmp = dir.join(format!(".{id}.tmp"));
                ignore_missing(fs::remove_file(&tmp))?;
                symlink(id, &tmp)?;
                fs::rename(&tmp, &path)
            }
            r => r,
        }
    }

    /// Drops `name` if it still points at `id`.
    pub fn drop_name(&self, name: &str, id: &str) -> io::Result<()> {
        if self.name(name).as_deref() == Some(id) {
            ignore_missing(fs::remove_file(self.dir.join(NAMES).join(name)))?;
        }
        Ok(())
    }

    /// Marks `id` as one `reconcile` must check, or not.
    pub fn set_live(&self, id: &str, live: bool) -> io::Result<()> {
        let path = self.dir.join(LIVE).join(id);
        if live {
            fs::File::create(path).map(drop)
        } else {
            ignore_missing(fs::remove_file(path))
        }
    }

    /// The ids marked live (one readdir).
    pub fn live_ids(&self) -> io::Result<Vec<String>> {
        let dir = self.dir.join(LIVE);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            r => r?,
        };
        for e in entries {
            if let Some(id) = e?.file_name().to_str().filter(|n| is_full_id(n)) {
                out.push(id.to_string());
            }
        }
        Ok(out)
    }
}

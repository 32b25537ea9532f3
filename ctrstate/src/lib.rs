//! # ctrstate: container records (ids, names, status, exit codes)
//!
//! One JSON record per container at `ROOT/containers/<id>/state.json`.
//! `ROOT` is `--root DIR`, else `$MYDOCKER_ROOT` (when non-empty), else
//! `/var/lib/mydocker`. The container directory is shared: other tools keep
//! their files (logs, overlay upper/work, rootfs) next to `state.json`.
//!
//! Two indexes live beside the records (see `index`): `.names/<name>` (a
//! symlink to the id) resolves a name without reading every record, and
//! `.live/<id>` lists the records `reconcile` must check. They are kept by
//! the writers, checked against the records by readers, and rebuilt from
//! the records when missing or built in another boot (`.index`).
//!
//! Writers (`create`, `update`, `rm`, `reconcile`) hold an exclusive flock on
//! `ROOT/containers/.lock`. Every write is atomic (temp file in the same
//! directory, fsync, rename; `create` renames a whole new directory into
//! place), so readers (`get`, `ls`) take no lock and never see a torn file.
//! A record whose `config.autoRemove` is `true` (mydocker's run options of a
//! `--rm` container) is written without the fsyncs: the same rename, but
//! not durable, since such a container is gone once it exits anyway.
//!
//! ## The record (`Record`)
//!
//! camelCase JSON; every field has a default, so input may be any subset;
//! unknown fields are ignored (and not kept).
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `id` | string | 64 lowercase hex, random (getrandom); assigned by `create` |
//! | `name` | string | unique; `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is dropped); random `adjective_surname` when empty |
//! | `image` | string | as the user typed it; required by `create` |
//! | `imageId` | string | |
//! | `command` | [string] | the full argv run |
//! | `created` | string | RFC 3339 UTC with nanoseconds (`2026-11-22T21:30:00.123456789Z`); assigned by `create` |
//! | `status` | string | `created` \| `running` \| `paused` \| `exited` \| `dead` \| `restarting`; `create` sets `created` |
//! | `pid` | u32 | the container's process on the host; 0 when none |
//! | `pidStartTime` | u64 | field 22 of /proc/PID/stat when `pid` was recorded; 0 = unknown |
//! | `supervisorPid` | u32 | optional, omitted when absent |
//! | `startedAt`, `finishedAt` | string | RFC 3339; `0001-01-01T00:00:00Z` when unset |
//! | `exitCode` | i32 | |
//! | `oomKilled` | bool | |
//! | `restartCount` | u32 | |
//! | `ports`, `mounts` | [any] | opaque |
//! | `network` | any | opaque, default `null` |
//! | `config` | object | opaque (mydocker's run options), default `{}` |
//! | `error` | string | optional, omitted when absent |
//! | `health` | any | opaque, omitted when null |
//!
//! ## References
//!
//! `REF` is resolved as docker does: a full id, then an exact name, then a
//! unique id prefix (at least one character). No match: `no such container:
//! REF`; a prefix matching several ids is an error naming them.
//!
//! ## CLI
//!
//! Output is one compact JSON document (one line) on stdout. Errors are one line
//! `ctrstate: message` on stderr. Exit codes: 0 success; 1 the operation
//! failed (name in use, no such container, ambiguous prefix, something
//! mounted, I/O); 2 bad usage or bad input (flags, invalid JSON, invalid
//! name, missing image, a patch changing `id`/`created`). A closed stdout
//! (broken pipe) is not an error.
//!
//! - `ctrstate create` - a record (any subset, `image` required) on stdin;
//!   `id`, `created` and `status` are assigned (input values ignored); prints
//!   the full record. A taken name exits 1 with `name "web" is already in
//!   use by container <shortid>` and writes nothing. 50 concurrent creates
//!   never duplicate a name or corrupt a file.
//! - `ctrstate get REF` - prints the record.
//! - `ctrstate ls` - prints an array of all records, newest `created` first.
//! - `ctrstate update REF` - an RFC 7386 JSON merge patch (an object) on
//!   stdin, e.g. `{"status":"exited","exitCode":0,"pid":0}`; `null` resets a
//!   field to its default. `id` and `created` cannot change; a new name is
//!   validated and must be free. Prints the new record.
//! - `ctrstate rm [--force] REF` - removes `ROOT/containers/<id>/` entirely,
//!   whatever the status. Refuses (exit 1) when anything is mounted at or
//!   under that directory (per /proc/self/mountinfo), so nothing is deleted
//!   through a mount. Prints `{"removed":true,"id":ID,"name":NAME}`; with
//!   `--force` an unknown REF prints `{"removed":false}` and exits 0. A
//!   directory without `state.json` can be removed by its full id. The
//!   directory is renamed to `ROOT/containers/.removing/<id>` (the record
//!   is gone at once) and then deleted; a removal a crash cut short stays
//!   there (`Store::removing()` lists them) until `rm ID` finishes it.
//! - `ctrstate reconcile` - first, an abandoned launch: a `created` record
//!   with a `supervisorPid` or a non-zero `pid` whose supervisor is gone (or
//!   was never recorded) keeps `created` (and its `pid`, for the caller to
//!   kill and then clear), loses `supervisorPid` and gets `error` "the launch
//!   was interrupted: ...". Then every record in `created`/`running`/`paused`
//!   with a non-zero `pid` whose process is gone, or whose start time differs
//!   from a non-zero `pidStartTime` (a reused pid), becomes `exited` with
//!   `pid` 0, `pidStartTime` 0, and so does a `restarting` record whose
//!   `supervisorPid` is gone. If `finishedAt` was unset it becomes now,
//!   `exitCode` 255 and `error` "process vanished" (docker's `Exited (255)`);
//!   otherwise the recorded exit is kept. A zombie counts as alive (its
//!   parent will reap it and record the real exit), and so is a record whose
//!   `supervisorPid` is alive: that supervisor records the exit. Prints the array of
//!   changed records (`[]` usually). Lock-free when nothing changes; it
//!   reads only the records the live index names (those with a
//!   `supervisorPid`, or claiming a process with a non-zero `pid`).
//!
//! ## Library
//!
//! `Store::open(root)` then `create`, `get`, `list`, `update` (a merge
//! patch), `update_with` (a closure editing the `Record`), `remove`,
//! `reconcile`, `needs_reconcile` (whether `reconcile` would change
//! anything: lock-free, read-only), `removing`, `container_dir(id)`; errors are `StoreError` with `exit_code()`. Also
//! `pid_start_time(pid)` and `now_rfc3339()`.
//!
//! ## Events
//!
//! Every record change is also an event appended to `ROOT/events.jsonl`
//! (docker's event shape, one JSON line each; `journal` says how appends
//! stay whole and how the file rotates to `events.jsonl.1` at 1 MiB):
//! `create`, `start`, `pause`, `unpause`, `oom`, `die` (`exitCode`),
//! `rename` (`oldName`), `destroy`. Other tools append theirs with
//! `journal::append(root, &Event::new(...))`.

pub mod index;
pub mod journal;
pub mod name;
pub mod patch;
pub mod procfs;
pub mod record;
pub mod store;
pub mod time;

pub use patch::RecordPatch;
pub use procfs::pid_start_time;
pub use record::{is_full_id, Record, Status};
pub use store::{RawRecord, Removed, Store, StoreError};
pub use time::{now_rfc3339, ZERO_TIME};

/// Parses `create` input: a JSON object (empty input counts as `{}`). A
/// `null` field means absent (its default), as in a merge patch; `id`,
/// `created` and `status` are assigned by `create`, so they are dropped
/// whatever their type.
pub fn record_from_json(text: &str) -> Result<Record, StoreError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let bad = |source| StoreError::BadInput {
        what: "record JSON",
        source,
    };
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
    if let serde_json::Value::Object(m) = &mut v {
        m.retain(|k, x| !x.is_null() && !matches!(k.as_str(), "id" | "created" | "status"));
    }
    serde_json::from_value(v).map_err(bad)
}

/// Parses `update` input: a JSON merge patch, which must be an object.
pub fn patch_from_json(text: &str) -> Result<serde_json::Value, StoreError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|source| StoreError::BadInput {
            what: "patch JSON",
            source,
        })?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(StoreError::PatchNotObject)
    }
}

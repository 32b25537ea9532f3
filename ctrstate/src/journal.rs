//! The event journal: `ROOT/events.jsonl`, one docker event per line
//! (`{"Type","Action","Actor":{"ID","Attributes"},"scope","time","timeNano"}`
//! plus docker's legacy `status`/`id`/`from` on container and image events),
//! appended by every tool that changes something and read by `mydocker
//! events`.
//!
//! No interleaving: each event is one `write(2)` of one whole line on a
//! descriptor opened with `O_APPEND`. Linux takes the inode lock for the
//! seek-to-end and the copy of a regular-file write, so concurrent appends
//! land one after the other, never mixed; a line is kept under
//! `PIPE_BUF` (4096) bytes anyway (long attributes are cut), and a short
//! write is reported, never completed by a second write that could land
//! after someone else's line.
//!
//! Size cap: once the file reaches `MAX_BYTES` the writer that notices
//! renames it to `events.jsonl.1` (dropping the older `.1`) under the flock
//! `ROOT/events.lock`, after checking under the lock that the file is still
//! the big one (so two writers never rotate twice). A writer that opened the
//! old file just before appends there: its line is in `.1`, not lost.
//! Readers read `.1` then the file, and a follower notices the new inode.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::record::{Record, Status};
use crate::time::is_zero;

pub const FILE: &str = "events.jsonl";
pub const ROTATED: &str = "events.jsonl.1";
const LOCK: &str = "events.lock";
/// The journal rotates past this size (the rotated file keeps as much).
pub const MAX_BYTES: u64 = 1 << 20;
/// One line stays below this, so one write is one line even where
/// `O_APPEND` atomicity is only promised up to `PIPE_BUF`.
pub const MAX_LINE: usize = 4096;

/// docker's `events.Message`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Event {
    /// Legacy (docker < 1.22) fields, still sent for containers and images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// container, image, network, volume.
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Actor {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event now, in docker's shape (the legacy fields filled where
    /// docker fills them: `from` is the image of a container event).
    pub fn new<K: Into<String>, V: Into<String>>(
        kind: &str,
        action: &str,
        id: &str,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> Event {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let attributes: BTreeMap<String, String> = attributes
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let legacy = matches!(kind, "container" | "image");
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: (kind == "container")
                .then(|| attributes.get("image").cloned())
                .flatten(),
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".to_string(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// One JSON line (with its `\n`) below `MAX_LINE` bytes: attribute
    /// values are cut until it fits.
    pub fn line(&self) -> Vec<u8> {
        let mut ev = self.clone();
        loop {
            let mut buf = serde_json::to_vec(&ev).unwrap_or_default();
            buf.push(b'\n');
            if buf.len() < MAX_LINE {
                return buf;
            }
            let Some(longest) = ev
                .actor
                .attributes
                .values_mut()
                .max_by_key(|v| v.len())
                .filter(|v| !v.is_empty())
            else {
                return b"{}\n".to_vec();
            };
            let mut cut = longest.len() / 2;
            while !longest.is_char_boundary(cut) {
                cut -= 1;
            }
            longest.truncate(cut);
        }
    }
}

pub fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

fn open_append(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(p)
}

/// Appends `ev` to `ROOT/events.jsonl` in one write (see the module doc),
/// rotating the file first when it is over `MAX_BYTES`.
pub fn append(root: &Path, ev: &Event) -> io::Result<()> {
    let p = path(root);
    let mut f = match open_append(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            atomicfile::private_dir(root)?;
            open_append(&p)?
        }
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() >= MAX_BYTES {
        rotate(root, &f)?;
        f = open_append(&p)?;
    }
    let line = ev.line();
    let n = f.write(&line)?;
    if n != line.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write to {} ({n} of {})", p.display(), line.len()),
        ));
    }
    Ok(())
}

/// Renames the full journal to `.1`, unless another writer already did.
fn rotate(root: &Path, opened: &File) -> io::Result<()> {
    let _lock = atomicfile::lock(&root.join(LOCK))?;
    let p = path(root);
    let mine = opened.metadata()?;
    match fs::metadata(&p) {
        Ok(m) if m.ino() == mine.ino() && m.dev() == mine.dev() && m.len() >= MAX_BYTES => {
            fs::rename(&p, root.join(ROTATED))
        }
        _ => Ok(()),
    }
}

/// Appends, reporting a failure on stderr only: an event that cannot be
/// written must not fail the change it describes (docker's daemon drops
/// events to slow subscribers, too).
pub fn emit(root: &Path, ev: &Event) {
    if let Err(e) = append(root, ev) {
        eprintln!("warning: event journal {}: {e}", path(root).display());
    }
}

/// Every event in the journal, oldest first (`.1` then the file); lines
/// that do not parse (a torn tail after a crash) are skipped.
pub fn read_all(root: &Path) -> io::Result<Vec<Event>> {
    let mut out = Vec::new();
    for name in [ROTATED, FILE] {
        match File::open(root.join(name)) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    if let Ok(ev) = serde_json::from_str::<Event>(&line?) {
                        out.push(ev);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Follows the journal: `poll` returns the events appended since the last
/// call (and across a rotation). Made before any history is read, so that
/// history and stream come from one reader and nothing is seen twice.
pub struct Follower {
    root: PathBuf,
    file: Option<File>,
    ino: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// With `from_start`, the first `poll` returns the whole journal (`.1`
    /// then the file); otherwise only what is appended from now on.
    pub fn new(root: &Path, from_start: bool) -> Follower {
        let mut f = Follower {
            root: root.to_path_buf(),
            file: None,
            ino: 0,
            partial: Vec::new(),
        };
        if let Ok(mut file) = File::open(path(root)) {
            f.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
            if !from_start {
                let _ = io::copy(&mut file, &mut io::sink());
            }
            f.file = Some(file);
        }
        if from_start {
            // Opened after the file: if a rotation came in between, `.1`
            // is the file already open, read once through it.
            if let Ok(mut old) = File::open(root.join(ROTATED)) {
                if old.metadata().map(|m| m.ino()).ok() != Some(f.ino) {
                    let _ = old.read_to_end(&mut f.partial);
                    if f.partial.last().is_some_and(|&b| b != b'\n') {
                        f.partial.push(b'\n');
                    }
                }
            }
        }
        f
    }

    /// Starts at the end of the current file.
    pub fn at_end(root: &Path) -> Follower {
        Follower::new(root, false)
    }

    /// The complete lines appended since the last call.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut buf = Vec::new();
        if let Some(f) = &mut self.file {
            let _ = f.read_to_end(&mut buf);
        }
        // A new inode at the path: the file was rotated (the old one was
        // read to its end just above) or created.
        let now = fs::metadata(path(&self.root)).map(|m| m.ino()).ok();
        if now.is_some_and(|i| i != self.ino || self.file.is_none()) {
            if buf.last().is_some_and(|&b| b != b'\n') {
                buf.push(b'\n');
            }
            if let Ok(mut file) = File::open(path(&self.root)) {
                let _ = file.read_to_end(&mut buf);
                self.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
                self.file = Some(file);
            }
        }
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        whole
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

/// A container event with docker's attributes: image, name and labels.
pub fn container_event(r: &Record, action: &str, extra: &[(&str, String)]) -> Event {
    let mut attrs: BTreeMap<String, String> = r
        .config
        .get("labels")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    attrs.insert("image".into(), r.image.clone());
    attrs.insert("name".into(), r.name.clone());
    for (k, v) in extra {
        attrs.insert(k.to_string(), v.clone());
    }
    Event::new("container", action, &r.id, attrs)
}

/// The container events a record change means, as docker emits them:
/// `create`, `start`, `oom`, `die` (with `exitCode`), `pause`, `unpause`,
/// `rename` (with `oldName`), `destroy`. `None` is "no record".
pub fn changes(old: Option<&Record>, new: Option<&Record>) -> Vec<Event> {
    let (old, new) = match (old, new) {
        (None, Some(n)) => return vec![container_event(n, "create", &[])],
        (Some(o), None) => {
            // docker always reports a die before a destroy. A record removed
            // while it still says running (`rm -f`, or `kill` then `rm`
            // before the supervisor recorded the exit) gets one here, with
            // 137 (SIGKILL, what `rm -f` sends) as its exit code is not
            // known yet; an `--rm` container's supervisor writes its own
            // with the real code (`autoRemove` in mydocker's config).
            let auto_remove = o.config.get("autoRemove").and_then(|v| v.as_bool()) == Some(true);
            let mut out = Vec::new();
            if matches!(o.status, Status::Running | Status::Paused) && !auto_remove {
                out.push(container_event(o, "die", &[("exitCode", "137".into())]));
            }
            out.push(container_event(o, "destroy", &[]));
            return out;
        }
        (Some(o), Some(n)) => (o, n),
        (None, None) => return Vec::new(),
    };
    let mut out = Vec::new();
    if old.name != new.name {
        out.push(container_event(
            new,
            "rename",
            &[("oldName", format!("/{}", old.name))],
        ));
    }
    use Status::*;
    match (old.status, new.status) {
        (Running, Paused) => out.push(container_event(new, "pause", &[])),
        (Paused, Running) => out.push(container_event(new, "unpause", &[])),
        (a, Running) if a != Running => out.push(container_event(new, "start", &[])),
        (a, Exited | Dead) if !matches!(a, Exited | Dead) => {
            if new.oom_killed {
                out.push(container_event(new, "oom", &[]));
            }
            out.push(container_event(
                new,
                "die",
                &[("exitCode", new.exit_code.to_string())],
            ));
        }
        // A restart loop records a new start without passing through
        // another status: a newer startedAt is a start.
        (Running, Running) if new.started_at != old.started_at && !is_zero(&new.started_at) => {
            out.push(container_event(new, "start", &[]))
        }
        _ => {}
    }
    out
}

/// Writes the events of a record change (see `changes`).
pub fn record_change(root: &Path, old: Option<&Record>, new: Option<&Record>) {
    for ev in changes(old, new) {
        emit(root, &ev);
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
        Root(std::env::temp_dir().join(format!("ctrstate-journal-{tag}-{}", std::process::id())))
    }

    fn rec(status: Status) -> Record {
        Record {
            id: "a".repeat(64),
            name: "web".into(),
            image: "busybox".into(),
            status,
            ..Record::default()
        }
    }

    #[test]
    fn events_have_dockers_shape() {
        let ev = container_event(&rec(Status::Running), "start", &[]);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["status"], "start");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["scope"], "local");
        assert_eq!(
            v["time"].as_i64().unwrap(),
            v["timeNano"].as_i64().unwrap() / 1_000_000_000
        );
        let net = Event::new(
            "network",
            "create",
            "n1",
            [("name", "n1"), ("type", "bridge")],
        );
        let v = serde_json::to_value(&net).unwrap();
        assert!(v.get("status").is_none() && v.get("from").is_none());
    }

    #[test]
    fn status_changes_map_to_docker_actions() {
        let acts = |o: Option<&Record>, n: Option<&Record>| -> Vec<String> {
            changes(o, n).into_iter().map(|e| e.action).collect()
        };
        let (c, r, p) = (
            rec(Status::Created),
            rec(Status::Running),
            rec(Status::Paused),
        );
        let mut e = rec(Status::Exited);
        e.exit_code = 3;
        assert_eq!(acts(None, Some(&c)), ["create"]);
        assert_eq!(acts(Some(&c), Some(&r)), ["start"]);
        assert_eq!(acts(Some(&r), Some(&p)), ["pause"]);
        assert_eq!(acts(Some(&p), Some(&r)), ["unpause"]);
        assert_eq!(acts(Some(&r), Some(&e)), ["die"]);
        assert_eq!(
            changes(Some(&r), Some(&e))[0].actor.attributes["exitCode"],
            "3"
        );
        assert_eq!(acts(Some(&e), Some(&e)), Vec::<String>::new());
        assert_eq!(acts(Some(&e), None), ["destroy"]);
        assert_eq!(acts(Some(&r), None), ["die", "destroy"]);
        let mut rm = r.clone();
        rm.config.insert("autoRemove".into(), true.into());
        assert_eq!(acts(Some(&rm), None), ["destroy"]);
        let mut renamed = e.clone();
        renamed.name = "db".into();
        let evs = changes(Some(&e), Some(&renamed));
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].actor.attributes["oldName"], "/web");
        assert_eq!(evs[0].actor.attributes["name"], "db");
    }

    #[test]
    fn appends_whole_lines_rotates_and_follows() {
        let r = root("append");
        let mut follow = Follower::at_end(&r.0);
        let ev = Event::new("volume", "create", "v1", [("driver", "local")]);
        append(&r.0, &ev).unwrap();
        assert_eq!(read_all(&r.0).unwrap(), vec![ev.clone()]);
        assert_eq!(follow.poll(), vec![ev.clone()]);
        assert!(follow.poll().is_empty());
        // A huge attribute is cut, the line stays one line.
        let big = Event::new("volume", "create", "v2", [("x", "y".repeat(10_000))]);
        assert!(big.line().len() < MAX_LINE);
        // Past the cap the next append rotates.
        let mut f = OpenOptions::new().append(true).open(path(&r.0)).unwrap();
        let fill = MAX_BYTES - f.metadata().unwrap().len();
        f.write_all(&[vec![b' '; fill as usize - 1], vec![b'\n']].concat())
            .unwrap();
        drop(f);
        append(&r.0, &ev).unwrap();
        assert_eq!(fs::metadata(r.0.join(ROTATED)).unwrap().len(), MAX_BYTES);
        assert_eq!(read_all(&r.0).unwrap().last(), Some(&ev));
        assert_eq!(follow.poll(), vec![ev.clone()]);
        // From the start: the rotated file's events, then the file's.
        let all = Follower::new(&r.0, true).poll();
        assert_eq!(all.len(), 2);
        assert_eq!(all, read_all(&r.0).unwrap());
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        let r = root("conc");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let root = r.0.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let ev = Event::new(
                            "volume",
                            "create",
                            &format!("{t}-{i}"),
                            [("pad", "z".repeat(1000))],
                        );
                        append(&root, &ev).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 1600 lines of ~1.1 kB: one rotation, no line lost or mixed.
        let text = fs::read_to_string(r.0.join(ROTATED)).unwrap()
            + &fs::read_to_string(path(&r.0)).unwrap();
        assert_eq!(text.lines().count(), 1600);
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<Event>(l).is_ok()));
        assert_eq!(read_all(&r.0).unwrap().len(), 1600);
    }
}

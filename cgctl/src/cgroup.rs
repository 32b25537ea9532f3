//! Creating, finding, attaching to and deleting a named cgroup across all of
//! the host's hierarchies.

use crate::cgfile::{self, CgFileError};
use crate::hierarchy::{is_v2_dir, HierarchyError, Host, Mode};
use crate::limits::{self, LimitsError};
use crate::name::CgroupName;
use crate::record::{Record, RecordError, Store};
use crate::resources::{IdSet, Resources, ResourcesError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    File(#[from] CgFileError),
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    Resources(#[from] ResourcesError),
    #[error("mkdir {path}: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rmdir {path}: {source}")]
    Rmdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enable controllers {controllers:?} in {path}/cgroup.subtree_control: {source}")]
    Enable {
        path: PathBuf,
        controllers: Vec<String>,
        source: std::io::Error,
    },
    #[error("cgroup {name} not found (no record {path}; create it first)")]
    NotFound { name: String, path: PathBuf },
    #[error("cgroup {name} still has processes {pids:?} (use delete --force to kill them)")]
    NotEmpty { name: String, pids: Vec<i32> },
    #[error("{step}: {path} still not done after {secs}s")]
    Timeout {
        step: &'static str,
        path: PathBuf,
        secs: u64,
    },
    #[error("invalid pid {pid:?}: {why}")]
    BadPid { pid: String, why: &'static str },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

impl CgroupError {
    /// ENOENT from a mkdir or a control file: a directory vanished under us.
    fn is_not_found(&self) -> bool {
        let io = match self {
            CgroupError::Mkdir { source, .. } | CgroupError::Enable { source, .. } => source,
            CgroupError::File(
                CgFileError::Read { source, .. } | CgFileError::Write { source, .. },
            ) => source,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::NotFound
    }
}

/// What `create` and `set` print.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub mode: Mode,
    /// Settings this host cannot hold (e.g. `blockIO.weight` without a
    /// weight file); absent when nothing was skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<&'static str>,
}

/// What `delete` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub name: String,
    pub removed: Vec<PathBuf>,
    pub killed: Vec<i32>,
}

/// v2 controllers cgctl distributes (hugetlb, rdma, misc: no limits set).
const V2_WANTED: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];
/// How long delete --force and freeze wait for the kernel.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn load(store: &Store, name: &CgroupName) -> Result<Record> {
    store.load(name)?.ok_or_else(|| CgroupError::NotFound {
        name: name.to_string(),
        path: store.path(name),
    })
}

/// One hierarchy's part of a new cgroup.
struct Plan {
    base: PathBuf,
    /// v2: controllers to enable in subtree_control on the way down.
    enable: Option<Vec<String>>,
    /// hybrid's unified dir with nothing to control: skip it if not writable.
    optional: bool,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// Turns on `wanted` (those available) in `dir`'s subtree_control; writes
/// nothing when they are already on.
fn enable(dir: &Path, wanted: &[String]) -> Result<()> {
    let avail = words(&cgfile::read(dir, "cgroup.controllers")?);
    let have = words(&cgfile::read(dir, "cgroup.subtree_control")?);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| avail.contains(c) && !have.contains(c))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let line = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(dir.join("cgroup.subtree_control"), line).map_err(|source| CgroupError::Enable {
        path: dir.to_path_buf(),
        controllers: missing,
        source,
    })
}

fn plan(host: &Host) -> Result<Vec<Plan>> {
    let mut plans: Vec<Plan> = host
        .v1
        .iter()
        .map(|h| Plan {
            base: h.base.clone(),
            enable: None,
            optional: false,
        })
        .collect();
    if let Some(u) = &host.unified {
        let avail = words(&cgfile::read(&u.mountpoint, "cgroup.controllers")?);
        // on hybrid, only what no v1 hierarchy already provides
        let wanted: Vec<String> = V2_WANTED
            .iter()
            .filter(|c| avail.iter().any(|a| a == *c) && host.v1_with(c).is_none())
            .map(|c| c.to_string())
            .collect();
        let optional = host.mode == Mode::Hybrid && wanted.is_empty();
        let mut base = u.base.clone();
        if !optional {
            // v2 "no internal processes": a non-root cgroup holding processes
            // (the caller's own) cannot enable controllers for children
            // (EBUSY), so nest under the nearest ancestor that can.
            loop {
                match enable(&base, &wanted) {
                    Ok(()) => break,
                    Err(CgroupError::Enable { source, .. })
                        if source.raw_os_error() == Some(libc::EBUSY) && base != u.mountpoint =>
                    {
                        base = base.parent().unwrap_or(&u.mountpoint).to_path_buf();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        plans.push(Plan {
            base,
            enable: (!optional).then_some(wanted),
            optional,
        });
    }
    Ok(plans)
}

/// The cpus and mems the caller's cpuset allows (for validation).
fn host_cpuset(host: &Host) -> (IdSet, IdSet) {
    let read = |dir: &Path, files: &[&str]| {
        files
            .iter()
            .find_map(|f| cgfile::read(dir, f).ok().filter(|s| !s.trim().is_empty()))
            .and_then(|s| IdSet::parse(&s).ok())
    };
    let dir = host
        .v1_with("cpuset")
        .map(|h| h.base.clone())
        .or_else(|| host.unified.as_ref().map(|u| u.base.clone()));
    let (c, m) = match dir {
        Some(d) => (
            read(
                &d,
                &[
                    "cpuset.effective_cpus",
                    "cpuset.cpus.effective",
                    "cpuset.cpus",
                ],
            ),
            read(
                &d,
                &[
                    "cpuset.effective_mems",
                    "cpuset.mems.effective",
                    "cpuset.mems",
                ],
            ),
        ),
        None => (None, None),
    };
    let sys = |p: &str| IdSet::parse(&std::fs::read_to_string(p).unwrap_or_default()).ok();
    (
        c.or_else(|| sys("/sys/devices/system/cpu/online"))
            .unwrap_or(IdSet::parse("0").unwrap()),
        m.or_else(|| sys("/sys/devices/system/node/online"))
            .unwrap_or(IdSet::parse("0").unwrap()),
    )
}

/// v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks
/// ("No space left on device") until they are filled from the parent.
fn fill_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if cgfile::read(dir, f)?.trim().is_empty() {
            let v = cgfile::read(parent, f)?;
            cgfile::write(dir, f, v.trim())?;
        }
    }
    Ok(())
}

fn mkdir(path: &Path) -> std::io::Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes base/NAME one level at a time; pushes what it made onto `made`.
fn make_chain(p: &Plan, name: &CgroupName, made: &mut Vec<PathBuf>) -> Result<Option<PathBuf>> {
    let comps: Vec<&str> = name.as_str().split('/').collect();
    let mut dir = p.base.clone();
    for (i, c) in comps.iter().enumerate() {
        dir.push(c);
        match mkdir(&dir) {
            Ok(true) => made.push(dir.clone()),
            Ok(false) => {}
            Err(e)
                if p.optional
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EACCES | libc::EPERM | libc::EROFS)
                    ) =>
            {
                return Ok(None)
            }
            Err(source) => return Err(CgroupError::Mkdir { path: dir, source }),
        }
        if !is_v2_dir(&dir) && cgfile::exists(&dir, "cpuset.cpus") {
            fill_cpuset(&dir)?;
        }
        if let Some(wanted) = &p.enable {
            if i + 1 < comps.len() {
                enable(&dir, wanted)?;
            }
        }
    }
    Ok(Some(dir))
}

fn rmdir_quiet(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

/// `create NAME`: makes the cgroup in every hierarchy (or finds it) and
/// applies `res`. Undoes what it made when a later step fails.
pub fn create(store: &Store, name: &CgroupName, res: &Resources) -> Result<Created> {
    let host = Host::detect()?;
    let (cpus, mems) = host_cpuset(&host);
    res.check_cpuset(&cpus, &mems)?;

    let _lock = store.lock()?;
    let old = store.load(name)?;
    if let Some(rec) = &old {
        if rec.paths.iter().all(|p| p.is_dir()) {
            let skipped = limits::apply(res, &rec.paths)?;
            return Ok(Created {
                name: name.to_string(),
                paths: rec.paths.clone(),
                mode: rec.mode,
                skipped,
            });
        }
    }
    let plans = plan(&host)?;
    let leaf = |p: &Plan| p.base.join(name.rel());
    let mut rec = Record {
        name: name.to_string(),
        mode: host.mode,
        paths: plans.iter().map(leaf).collect(),
    };
    if let Some(o) = &old {
        // a stale record (e.g. after a reboot): keep any dir still there
        for p in &o.paths {
            if p.is_dir() && !rec.paths.contains(p) {
                rec.paths.push(p.clone());
            }
        }
    }
    // record first: a crash below leaves something `delete` can clean
    store.save(&rec, name)?;
    let mut made = Vec::new();
    let result = (|| {
        let mut paths = Vec::new();
        for p in &plans {
            // a concurrent delete (another --root) may remove a shared parent
            // like `mydocker` between two of our mkdirs: start that chain again
            let mut tries = 0;
            let dir = loop {
                match make_chain(p, name, &mut made) {
                    Err(e) if e.is_not_found() && tries < 10 => tries += 1,
                    r => break r?,
                }
            };
            if let Some(d) = dir {
                paths.push(d);
            }
        }
        let skipped = limits::apply(res, &paths)?;
        Ok((paths, skipped))
    })();
    match result {
        Ok((paths, skipped)) => {
            if paths != rec.paths {
                rec.paths = paths;
                store.save(&rec, name)?;
            }
            Ok(Created {
                name: name.to_string(),
                paths: rec.paths,
                mode: rec.mode,
                skipped,
            })
        }
        Err(e) => {
            for d in made.iter().rev() {
                rmdir_quiet(d);
            }
            let _ = match &old {
                Some(o) => store.save(o, name),
                None => store.remove(name),
            };
            Err(e)
        }
    }
}

/// `set NAME`: applies `res` to an existing cgroup.
pub fn set(store: &Store, name: &CgroupName, res: &Resources) -> Result<Created> {
    let host = Host::detect()?;
    let (cpus, mems) = host_cpuset(&host);
    res.check_cpuset(&cpus, &mems)?;
    let _lock = store.lock()?;
    let rec = load(store, name)?;
    let skipped = limits::apply(res, &rec.paths)?;
    Ok(Created {
        name: name.to_string(),
        paths: rec.paths,
        mode: rec.mode,
        skipped,
    })
}

/// Parses a PID argument and checks the process exists.
pub fn parse_pid(s: &str) -> Result<i32> {
    let bad = |why| CgroupError::BadPid {
        pid: s.to_string(),
        why,
    };
    let pid: i32 = s.trim().parse().map_err(|_| bad("not a number"))?;
    if pid <= 0 {
        return Err(bad("must be positive"));
    }
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(bad("no such process"));
    }
    Ok(pid)
}

/// `attach NAME PID`: moves the process into every directory. If one move
/// fails, the process goes back where it was in the hierarchies already done.
pub fn attach(store: &Store, name: &CgroupName, pid: i32) -> Result<Vec<PathBuf>> {
    let rec = load(store, name)?;
    let before = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .zip(std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok())
        .and_then(|(mi, cg)| Host::from_texts(&mi, &cg).ok());
    for (i, d) in rec.paths.iter().enumerate() {
        if let Err(e) = cgfile::write(d, "cgroup.procs", &pid.to_string()) {
            if let Some(h) = &before {
                for done in &rec.paths[..i] {
                    let home =
                        h.v1.iter()
                            .map(|v| (&v.mountpoint, &v.base))
                            .chain(h.unified.iter().map(|u| (&u.mountpoint, &u.base)))
                            .filter(|(m, _)| done.starts_with(m))
                            .max_by_key(|(m, _)| m.as_os_str().len());
                    if let Some((_, base)) = home {
                        let _ = cgfile::write(base, "cgroup.procs", &pid.to_string());
                    }
                }
            }
            return Err(e.into());
        }
    }
    Ok(rec.paths)
}

/// Every pid in any of the directories, sorted, without duplicates.
pub fn procs_in(paths: &[PathBuf]) -> Result<Vec<i32>> {
    let mut all = Vec::new();
    for d in paths {
        all.extend(cgfile::procs(d)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

pub fn procs(store: &Store, name: &CgroupName) -> Result<Vec<i32>> {
    procs_in(&load(store, name)?.paths)
}

/// Kills everything in the directories and waits until they are empty.
fn kill_all(paths: &[PathBuf]) -> Result<Vec<i32>> {
    let mut killed = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let pids = procs_in(paths)?;
        if pids.is_empty() {
            killed.sort_unstable();
            killed.dedup();
            return Ok(killed);
        }
        for d in paths {
            if cgfile::exists(d, "cgroup.kill") {
                let _ = cgfile::write(d, "cgroup.kill", "1");
            }
        }
        for &p in &pids {
            // ESRCH: cgroup.kill got there first; it was killed all the same
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            killed.push(p);
        }
        // a frozen task keeps its SIGKILL pending until thawed
        for d in paths {
            if cgfile::read(d, "freezer.state").is_ok_and(|s| s.trim() != "THAWED") {
                let _ = cgfile::write(d, "freezer.state", "THAWED");
            }
            if cgfile::read(d, "cgroup.freeze").is_ok_and(|s| s.trim() == "1") {
                let _ = cgfile::write(d, "cgroup.freeze", "0");
            }
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Timeout {
                step: "delete --force: waiting for the killed processes to leave",
                path: paths[0].clone(),
                secs: WAIT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// rmdir, retrying briefly on EBUSY (exiting tasks leave a moment later);
/// already gone is fine. Returns whether it removed something.
fn rmdir(dir: &Path, deadline: Instant) -> Result<bool> {
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// `delete [--force] NAME`: idempotent. Also removes the NAME's own parent
/// components (`mydocker` of `mydocker/<id>`) once nothing else uses them.
pub fn delete(store: &Store, name: &CgroupName, force: bool) -> Result<Deleted> {
    let _lock = store.lock()?;
    let Some(rec) = store.load(name)? else {
        return Ok(Deleted {
            name: name.to_string(),
            removed: Vec::new(),
            killed: Vec::new(),
        });
    };
    let pids = procs_in(&rec.paths)?;
    let killed = if pids.is_empty() {
        Vec::new()
    } else if force {
        kill_all(&rec.paths)?
    } else {
        return Err(CgroupError::NotEmpty {
            name: name.to_string(),
            pids,
        });
    };
    let deadline = Instant::now() + WAIT;
    let mut removed = Vec::new();
    for d in rec.paths.iter().rev() {
        if rmdir(d, deadline)? {
            removed.push(d.clone());
        }
        let mut up = d.clone();
        for _ in 1..name.depth() {
            up.pop();
            match std::fs::remove_dir(&up) {
                Ok(()) => removed.push(up.clone()),
                Err(_) => break, // still used by another cgroup, or gone
            }
        }
    }
    store.remove(name)?;
    Ok(Deleted {
        name: name.to_string(),
        removed,
        killed,
    })
}

/// Directories whose control files answer for the whole cgroup: v1 first.
pub fn dir_with<'a>(paths: &'a [PathBuf], file: &str) -> Option<&'a PathBuf> {
    paths
        .iter()
        .find(|d| !is_v2_dir(d) && cgfile::exists(d, file))
        .or_else(|| {
            paths
                .iter()
                .find(|d| is_v2_dir(d) && cgfile::exists(d, file))
        })
}

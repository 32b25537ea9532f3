//! Creating, finding, attaching to and deleting a cgroup across all of the
//! host's hierarchies. One implementation serves both callers: the CLI's
//! named, recorded cgroups (`create NAME` ... `delete NAME`) and the
//! record-less `runtime::Cgroup` that nsrun uses for an OCI cgroupsPath.

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
    /// `looked` says where: the record file, the directories.
    #[error("cgroup {name} not found ({looked})")]
    NotFound { name: String, looked: String },
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
    /// (ENODEV: the files of a cgroup directory removed meanwhile.)
    fn is_not_found(&self) -> bool {
        let io = match self {
            CgroupError::Mkdir { source, .. } | CgroupError::Enable { source, .. } => source,
            CgroupError::File(
                CgFileError::Read { source, .. } | CgFileError::Write { source, .. },
            ) => source,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::NotFound || io.raw_os_error() == Some(libc::ENODEV)
    }
}

/// What `create` and `set` print.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub mode: Mode,
}

/// What `delete` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub name: String,
    pub removed: Vec<PathBuf>,
    pub killed: Vec<i32>,
}

/// v2 controllers always distributed; hugetlb and rdma only when asked for.
const V2_WANTED: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];
/// How long delete --force and freeze wait for the kernel.
pub const WAIT: Duration = Duration::from_secs(5);

/// Where a cgroup goes in every hierarchy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// Under the caller's own cgroup (`mydocker/<id>`, `nsrun/<id>`).
    Relative(String),
    /// From each hierarchy's mount point (an OCI `/a/b`), without the `/`.
    Absolute(String),
}

impl Target {
    pub fn rel(&self) -> &str {
        match self {
            Target::Relative(r) | Target::Absolute(r) => r,
        }
    }
    /// Parent components `delete` may remove when empty: those of a relative
    /// path are ours by name (`nsrun` of `nsrun/<id>`); an absolute path's
    /// parents may belong to anyone.
    pub fn prunable(&self) -> usize {
        match self {
            Target::Relative(r) => r.split('/').count() - 1,
            Target::Absolute(_) => 0,
        }
    }
}

/// One hierarchy's part of a cgroup: the directory its path starts from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Leg {
    pub base: PathBuf,
    pub v2: bool,
}

/// The directory each hierarchy's part starts from. Reads only: on pure v2
/// a relative path starts at the nearest ancestor of the caller's cgroup
/// that holds no processes (the "no internal processes" rule: a cgroup with
/// processes cannot enable controllers for children), or the root.
pub fn layout(host: &Host, target: &Target) -> Result<Vec<Leg>> {
    let abs = matches!(target, Target::Absolute(_));
    let mut legs: Vec<Leg> = host
        .v1
        .iter()
        .map(|h| Leg {
            base: if abs {
                h.mountpoint.clone()
            } else {
                h.base.clone()
            },
            v2: false,
        })
        .collect();
    if let Some(u) = &host.unified {
        let mut base = if abs {
            u.mountpoint.clone()
        } else {
            u.base.clone()
        };
        if !abs && host.mode == Mode::V2 {
            while base != u.mountpoint && !cgfile::procs(&base)?.is_empty() {
                base = base.parent().unwrap_or(&u.mountpoint).to_path_buf();
            }
        }
        legs.push(Leg { base, v2: true });
    }
    Ok(legs)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The v2 controllers to enable for `res`: the usual ones plus hugetlb and
/// rdma (and any a `unified` key names) when asked for; on hybrid only those
/// no v1 hierarchy provides, and only those the kernel offers.
pub fn v2_wanted(host: &Host, res: &Resources) -> Result<Vec<String>> {
    let Some(u) = &host.unified else {
        return Ok(Vec::new());
    };
    let avail = words(&cgfile::read(&u.mountpoint, "cgroup.controllers")?);
    let mut want: Vec<&str> = V2_WANTED.to_vec();
    if !res.hugepage_limits.is_empty() {
        want.push("hugetlb");
    }
    if !res.rdma.is_empty() {
        want.push("rdma");
    }
    want.extend(res.unified.keys().filter_map(|k| k.split('.').next()));
    let mut out: Vec<String> = Vec::new();
    for c in want {
        if avail.iter().any(|a| a == c) && host.v1_with(c).is_none() && !out.iter().any(|o| o == c)
        {
            out.push(c.to_string());
        }
    }
    Ok(out)
}

/// Turns on `wanted` (those available) in `dir`'s subtree_control; writes
/// nothing when they are already on.
fn enable(dir: &Path, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
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

/// The checks on `res` that need the host (cpuset ranges).
pub fn check(host: &Host, res: &Resources) -> Result<()> {
    let (cpus, mems) = host_cpuset(host);
    Ok(res.check_cpuset(&cpus, &mems)?)
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

/// Makes base/REL one level at a time, enabling `wanted` on the way down
/// (v2); pushes what it made onto `made`. None: an optional leg that could
/// not be made.
fn make_chain(
    leg: &Leg,
    rel: &str,
    wanted: &[String],
    optional: bool,
    made: &mut Vec<PathBuf>,
) -> Result<Option<PathBuf>> {
    let comps: Vec<&str> = rel.split('/').collect();
    let mut dir = leg.base.clone();
    if leg.v2 {
        enable(&dir, wanted)?;
    }
    for (i, c) in comps.iter().enumerate() {
        dir.push(c);
        match mkdir(&dir) {
            Ok(true) => made.push(dir.clone()),
            Ok(false) => {}
            Err(e)
                if optional
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EACCES | libc::EPERM | libc::EROFS)
                    ) =>
            {
                return Ok(None)
            }
            Err(source) => return Err(CgroupError::Mkdir { path: dir, source }),
        }
        if !leg.v2 && cgfile::exists(&dir, "cpuset.cpus") {
            fill_cpuset(&dir)?;
        }
        if leg.v2 && i + 1 < comps.len() {
            enable(&dir, wanted)?;
        }
    }
    Ok(Some(dir))
}

/// Removes what `make` made, deepest first.
pub fn undo(made: &[PathBuf]) {
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Makes (or finds) the cgroup in every leg and applies `res`. On failure
/// everything made here is removed again. Returns the directories (an
/// optional hybrid v2 leg that could not be made is left out).
pub fn make(host: &Host, legs: &[Leg], rel: &str, res: &Resources) -> Result<Vec<PathBuf>> {
    let wanted = v2_wanted(host, res)?;
    // on hybrid, a v2 directory with no controllers to hold is a courtesy
    let optional = host.mode == Mode::Hybrid && wanted.is_empty();
    let mut made = Vec::new();
    let result = (|| {
        let mut paths = Vec::new();
        for leg in legs {
            // a concurrent delete may remove a shared parent like `mydocker`
            // between two of our mkdirs: start that chain again
            let mut tries = 0;
            let dir = loop {
                match make_chain(leg, rel, &wanted, optional && leg.v2, &mut made) {
                    Err(e) if e.is_not_found() && tries < 10 => tries += 1,
                    r => break r?,
                }
            };
            paths.extend(dir);
        }
        limits::apply(res, &paths)?;
        Ok(paths)
    })();
    if result.is_err() {
        undo(&made);
    }
    result
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

/// Moves the process into every directory. If one move fails, the process
/// goes back where it was in the hierarchies already done.
pub fn attach_to(paths: &[PathBuf], pid: i32) -> Result<()> {
    let before = mountinfo::own()
        .ok()
        .zip(std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok())
        .and_then(|(mi, cg)| Host::from_mounts(&mi, &cg).ok());
    for (i, d) in paths.iter().enumerate() {
        if let Err(e) = cgfile::write(d, "cgroup.procs", &pid.to_string()) {
            if let Some(h) = &before {
                for done in &paths[..i] {
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
    Ok(())
}

/// Every pid in any of the directories, sorted, without duplicates.
pub fn procs_in(paths: &[PathBuf]) -> Result<Vec<i32>> {
    let mut all = Vec::new();
    // A directory gone meanwhile (removed, its hierarchy unmounted) holds
    // nothing: the others still count.
    for d in paths.iter().filter(|d| d.is_dir()) {
        all.extend(cgfile::procs(d)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

/// Kills everything in the directories and waits until they are empty.
pub fn kill_all(paths: &[PathBuf]) -> Result<Vec<i32>> {
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

/// Kills what is left (with `force`; else fails naming the pids), removes
/// the directories and then up to `prune` parent components of each that
/// are empty. Returns (removed, killed).
pub fn remove(
    name: &str,
    paths: &[PathBuf],
    prune: usize,
    force: bool,
) -> Result<(Vec<PathBuf>, Vec<i32>)> {
    let pids = procs_in(paths)?;
    let killed = if pids.is_empty() {
        Vec::new()
    } else if force {
        kill_all(paths)?
    } else {
        return Err(CgroupError::NotEmpty {
            name: name.to_string(),
            pids,
        });
    };
    let deadline = Instant::now() + WAIT;
    let mut removed = Vec::new();
    // Every hierarchy is tried: one that cannot be removed (a child cgroup
    // in it, a hierarchy going away) must not leave the others behind.
    let mut first_err = None;
    for d in paths.iter().rev() {
        match rmdir(d, deadline) {
            Ok(true) => removed.push(d.clone()),
            Ok(false) => {}
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        }
        let mut up = d.clone();
        for _ in 0..prune {
            up.pop();
            match std::fs::remove_dir(&up) {
                Ok(()) => removed.push(up.clone()),
                Err(_) => break, // still used by another cgroup, or gone
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((removed, killed)),
    }
}

/// The directories `target` has on this host that exist now.
pub fn existing(host: &Host, target: &Target) -> Result<Vec<PathBuf>> {
    Ok(layout(host, target)?
        .into_iter()
        .map(|l| l.base.join(target.rel()))
        .filter(|p| p.is_dir())
        .collect())
}

/// A CLI NAME's directories: from its record, else (a cgroup cgctl did not
/// record, e.g. one nsrun made) those of NAME read as a cgroupsPath that
/// exist. None when neither.
pub fn find(store: &Store, name: &str) -> crate::Result<Option<(Vec<PathBuf>, Mode, Target)>> {
    if let Ok(n) = CgroupName::parse(name) {
        if let Some(rec) = store.load(&n).map_err(CgroupError::from)? {
            return Ok(Some((rec.paths, rec.mode, Target::Relative(n.to_string()))));
        }
    }
    let target = crate::runtime::target(Some(name), "")?;
    let host = Host::detect().map_err(CgroupError::from)?;
    let dirs = existing(&host, &target)?;
    Ok((!dirs.is_empty()).then_some((dirs, host.mode, target)))
}

/// `find`, or the not-found error naming the record and the directories.
pub fn find_or_fail(store: &Store, name: &str) -> crate::Result<(Vec<PathBuf>, Mode, Target)> {
    if let Some(f) = find(store, name)? {
        return Ok(f);
    }
    let target = crate::runtime::target(Some(name), "")?;
    let dirs: Vec<PathBuf> = Host::detect()
        .ok()
        .and_then(|h| layout(&h, &target).ok())
        .map(|legs| legs.iter().map(|l| l.base.join(target.rel())).collect())
        .unwrap_or_default();
    let mut looked = match CgroupName::parse(name) {
        Ok(n) => format!("no record {}, ", store.path(&n).display()),
        Err(_) => String::new(),
    };
    looked += &format!("no directory {dirs:?}");
    Err(CgroupError::NotFound {
        name: name.to_string(),
        looked,
    }
    .into())
}

/// `create NAME`: makes the cgroup in every hierarchy (or finds it) and
/// applies `res`. Undoes what it made when a later step fails.
pub fn create(store: &Store, name: &CgroupName, res: &Resources) -> Result<Created> {
    let host = Host::detect()?;
    check(&host, res)?;
    let _lock = store.lock()?;
    let old = store.load(name)?;
    if let Some(rec) = &old {
        if rec.paths.iter().all(|p| p.is_dir()) {
            limits::apply(res, &rec.paths)?;
            return Ok(Created {
                name: name.to_string(),
                paths: rec.paths.clone(),
                mode: rec.mode,
            });
        }
    }
    let target = Target::Relative(name.to_string());
    let legs = layout(&host, &target)?;
    let mut rec = Record {
        name: name.to_string(),
        mode: host.mode,
        paths: legs.iter().map(|l| l.base.join(name.rel())).collect(),
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
    match make(&host, &legs, name.as_str(), res) {
        Ok(paths) => {
            if paths != rec.paths {
                rec.paths = paths;
                store.save(&rec, name)?;
            }
            Ok(Created {
                name: name.to_string(),
                paths: rec.paths,
                mode: rec.mode,
            })
        }
        Err(e) => {
            let _ = match &old {
                Some(o) => store.save(o, name),
                None => store.remove(name),
            };
            Err(e)
        }
    }
}

/// `delete [--force] NAME` of a recorded cgroup: idempotent. Also removes
/// NAME's own parent components (`mydocker` of `mydocker/<id>`) once nothing
/// else uses them. None when there is no record.
pub fn delete_recorded(store: &Store, name: &CgroupName, force: bool) -> Result<Option<Deleted>> {
    let _lock = store.lock()?;
    let Some(rec) = store.load(name)? else {
        return Ok(None);
    };
    let (removed, killed) = remove(name.as_str(), &rec.paths, name.depth() - 1, force)?;
    store.remove(name)?;
    Ok(Some(Deleted {
        name: name.to_string(),
        removed,
        killed,
    }))
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

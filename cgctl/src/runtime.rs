//! The cgroup API an OCI runtime links (nsrun, as youki links libcgroups):
//! a container's cgroup from `linux.cgroupsPath`, made record-less (nothing
//! under any `--root`), so any later call finds it again by resolving the
//! same path. The mechanism is cgroup.rs's, shared with the CLI.

use crate::cgroup::{self, CgroupError, Leg, Target};
use crate::freezer::{self, State};
use crate::hierarchy::{Host, Mode};
use crate::name::NameError;
use crate::resources::Resources;
use crate::stats::{self, Stats};
use crate::Result;
use std::path::PathBuf;

/// A container's cgroup: one directory per hierarchy, resolved from an OCI
/// cgroupsPath, made or found.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub paths: Vec<PathBuf>,
    pub mode: Mode,
    host: Host,
    legs: Vec<Leg>,
    target: Target,
}

/// What a runtime keeps to find the cgroup again from any process (the
/// caller's own cgroup, which a relative path hangs from, may differ then).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub paths: Vec<PathBuf>,
    pub mode: Mode,
    legs: Vec<Leg>,
    target: Target,
}

/// Why a cgroupsPath is refused (one line, naming the path).
fn bad(path: &str, why: &'static str) -> crate::Error {
    NameError::Invalid {
        name: path.to_string(),
        why,
    }
    .into()
}

fn check_components(full: &str, rel: &str) -> Result<()> {
    if rel.len() > 1024 {
        return Err(bad(full, "it is longer than 1024 bytes"));
    }
    for c in rel.split('/') {
        if c.is_empty() {
            return Err(bad(
                full,
                "a path component is empty (double or trailing '/')",
            ));
        }
        if c == "." || c == ".." {
            return Err(bad(full, "'.' and '..' are not allowed"));
        }
        if c.len() > 255 {
            return Err(bad(full, "a path component is longer than 255 bytes"));
        }
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
        {
            return Err(bad(full, "components may hold only A-Z a-z 0-9 _ . : -"));
        }
    }
    Ok(())
}

/// Reads a cgroupsPath: absolute = from each hierarchy's mount point,
/// relative = under the caller's cgroup, None or "" = `nsrun/<id>`.
pub(crate) fn target(cgroups_path: Option<&str>, id: &str) -> Result<Target> {
    let p = cgroups_path.unwrap_or("");
    if p.is_empty() {
        let rel = format!("nsrun/{id}");
        check_components(&rel, &rel)?;
        return Ok(Target::Relative(rel));
    }
    if !p.contains('/') && p.split(':').count() == 3 {
        return Err(bad(
            p,
            "this is runc's systemd form slice:prefix:name, and nsrun has no systemd cgroup driver: give a path such as /system.slice/name",
        ));
    }
    match p.strip_prefix('/') {
        Some("") => Err(bad(p, "the root cgroup cannot be a container's")),
        Some(rel) => {
            check_components(p, rel)?;
            Ok(Target::Absolute(rel.to_string()))
        }
        None => {
            check_components(p, p)?;
            Ok(Target::Relative(p.to_string()))
        }
    }
}

impl Cgroup {
    /// Resolves without touching anything. `cgroups_path`: absolute ("/a/b")
    /// = relative to each hierarchy's mount point (runtime-spec); relative
    /// ("a/b") = under the caller's own cgroup in each hierarchy (on pure v2,
    /// where the caller's cgroup holds processes and cannot delegate
    /// controllers, under the nearest ancestor that can); None or "" =
    /// relative "nsrun/<id>". Components are `[A-Za-z0-9_.:-]+`, no `..`;
    /// runc's systemd form "slice:prefix:name" is refused.
    pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let target = target(cgroups_path, id)?;
        let host = Host::detect().map_err(CgroupError::from)?;
        let legs = cgroup::layout(&host, &target)?;
        Ok(Cgroup {
            paths: legs.iter().map(|l| l.base.join(target.rel())).collect(),
            mode: host.mode,
            host,
            legs,
            target,
        })
    }

    /// What to keep to find this cgroup again (`from_saved`).
    pub fn saved(&self) -> Saved {
        Saved {
            paths: self.paths.clone(),
            mode: self.mode,
            legs: self.legs.clone(),
            target: self.target.clone(),
        }
    }

    /// The cgroup `saved` described, wherever the caller sits now.
    pub fn from_saved(s: Saved) -> Result<Cgroup> {
        let host = Host::detect().map_err(CgroupError::from)?;
        Ok(Cgroup {
            paths: s.paths,
            mode: s.mode,
            host,
            legs: s.legs,
            target: s.target,
        })
    }

    /// Makes the directories (no record anywhere) and applies `res`; on
    /// failure removes what it made. Existing directories are reused
    /// (joining a cgroup another container made is allowed by the spec).
    pub fn create(&self, res: &Resources) -> Result<()> {
        cgroup::check(&self.host, res)?;
        cgroup::make(&self.host, &self.legs, self.target.rel(), res)?;
        Ok(())
    }

    /// The directories that exist now; none is an error.
    fn live(&self) -> Result<Vec<PathBuf>> {
        let live: Vec<PathBuf> = self.paths.iter().filter(|p| p.is_dir()).cloned().collect();
        if live.is_empty() {
            return Err(CgroupError::NotFound {
                name: self.target.rel().to_string(),
                looked: format!("no directory {:?}", self.paths),
            }
            .into());
        }
        Ok(live)
    }

    /// Moves `pid` into the cgroup in every hierarchy (cgroup.procs).
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        Ok(cgroup::attach_to(&self.live()?, pid)?)
    }

    /// Applies `res` to the existing directories.
    pub fn update(&self, res: &Resources) -> Result<()> {
        cgroup::check(&self.host, res)?;
        crate::limits::apply(res, &self.live()?).map_err(CgroupError::from)?;
        Ok(())
    }

    pub fn procs(&self) -> Result<Vec<i32>> {
        Ok(cgroup::procs_in(&self.live()?)?)
    }

    /// Kills whatever is left (cgroup.kill on v2, SIGKILL + thaw otherwise),
    /// waits, removes the directories, and the empty parent components of a
    /// relative path (`nsrun` of `nsrun/<id>`). Already gone = Ok. Returns
    /// the pids killed.
    pub fn delete(&self) -> Result<Vec<i32>> {
        let live: Vec<PathBuf> = self.paths.iter().filter(|p| p.is_dir()).cloned().collect();
        let (_, killed) = cgroup::remove(self.target.rel(), &live, self.target.prunable(), true)?;
        Ok(killed)
    }

    pub fn freeze(&self) -> Result<()> {
        freezer::set(&self.live()?, true)?;
        Ok(())
    }

    pub fn thaw(&self) -> Result<()> {
        freezer::set(&self.live()?, false)?;
        Ok(())
    }

    pub fn freezer_state(&self) -> Result<State> {
        Ok(freezer::state(&self.live()?)?)
    }

    pub fn stats(&self) -> Result<Stats> {
        Ok(stats::collect(&self.live()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(
            target(None, "abc").unwrap(),
            Target::Relative("nsrun/abc".into())
        );
        assert_eq!(
            target(Some(""), "abc").unwrap(),
            Target::Relative("nsrun/abc".into())
        );
        assert_eq!(
            target(Some("/a/b:c"), "x").unwrap(),
            Target::Absolute("a/b:c".into())
        );
        assert_eq!(
            target(Some("x.y/z_1-2"), "x").unwrap(),
            Target::Relative("x.y/z_1-2".into())
        );
        assert_eq!(target(Some("/a/b"), "x").unwrap().prunable(), 0);
        assert_eq!(target(Some("a/b/c"), "x").unwrap().prunable(), 2);
    }

    #[test]
    fn bad_cgroups_paths_refused() {
        for p in ["/", "a/../b", "/a/./b", "a//b", "a/", "/a b", "a\nb", "é"] {
            let e = target(Some(p), "x").unwrap_err().to_string();
            assert!(e.contains(&format!("{p:?}")), "{p:?}: {e}");
        }
        let e = target(Some("system.slice:docker:abc"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("systemd"), "{e}");
        assert!(target(None, "../x").is_err());
        assert!(target(None, "").is_err());
    }
}

//! `network prune` and `system prune`: docker's question (unless `-f`; a
//! closed stdin answers no), then its report: `Deleted Containers:`,
//! `Deleted Networks:`, `Deleted Volumes:`, `Deleted Images:` sections and
//! `Total reclaimed space:`. What is pruned is what docker prunes: stopped
//! containers; user networks no container (in any state) names; with
//! `--volumes` anonymous volumes no container uses; dangling images (with
//! `-a`, every image no container uses). `container prune` and `volume
//! prune` live here too, with docker's `--filter`s (`PruneFilter`):
//! containers `until`, `label`, `label!`; volumes `label`, `label!`, `all`
//! (`volume prune` takes only anonymous volumes unless `-a`, as docker 23+).
//! A filter without `=` is docker's flag error (125); an unknown key or a
//! bad value the daemon's `invalid filter` (1); both before anything is
//! asked or removed.

use crate::context::Ctx;
use crate::error::Result;
use crate::humanize;
use crate::records;
use ctrstate::record::Status;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Networks docker never prunes.
const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// `network prune [-f]`.
pub fn network_cmd(ctx: &Ctx, force: bool) -> Result<i32> {
    if !force
        && !crate::cmds::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    print_section("Deleted Networks:", &networks(ctx)?);
    Ok(0)
}

/// Removes the user networks no container names; returns their names.
pub fn networks(ctx: &Ctx) -> Result<Vec<String>> {
    networks_except(ctx, &BTreeSet::new())
}

/// `networks`, keeping those named in `keep` too.
fn networks_except(ctx: &Ctx, keep: &BTreeSet<String>) -> Result<Vec<String>> {
    let mut used = keep.clone();
    for r in records::list(ctx)? {
        used.extend(
            r.network["Networks"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        );
        // A container not started yet has no settings: its run config names it.
        if let Some(n) = r.config.get("network").and_then(Value::as_str) {
            used.insert(n.to_string());
        }
    }
    let list = ctx.netbr().arg("ls").json()?;
    let mut removed = vec![];
    for n in list.as_array().into_iter().flatten() {
        let name = n["name"].as_str().unwrap_or("");
        if name.is_empty() || PREDEFINED.contains(&name) || used.contains(name) {
            continue;
        }
        if ctx.netbr().args(["rm", name]).output().is_ok() {
            crate::events::emit(
                ctx,
                "network",
                "destroy",
                name,
                &[("name", name), ("type", "bridge")],
            );
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

/// Removes every stopped container; (ids, bytes of their upper dirs).
pub fn containers(ctx: &Ctx) -> Result<(Vec<String>, u64)> {
    containers_matching(ctx, &PruneFilter::default())
}

/// Removes the stopped containers `f` lets through (until, labels).
pub fn containers_matching(ctx: &Ctx, f: &PruneFilter) -> Result<(Vec<String>, u64)> {
    let (mut deleted, mut bytes) = (vec![], 0);
    for r in records::list(ctx)? {
        let stopped = matches!(r.status, Status::Exited | Status::Created | Status::Dead)
            && !records::alive(r.pid, r.pid_start_time);
        if !stopped {
            continue;
        }
        let created = humanize::parse_rfc3339(&r.created).unwrap_or(0.0);
        if !f.created_before_until(created) || !f.labels_match(&crate::ps::labels(&r)) {
            continue;
        }
        let size = crate::ps::dir_size(&ctx.container_dir(&r.id).join("upper"));
        if crate::teardown::remove_teardown(ctx, &r.id).is_empty() {
            deleted.push(r.id);
            bytes += size;
        }
    }
    Ok((deleted, bytes))
}

/// `container prune [-f] [--filter until=|label=|label!=]...`.
pub fn container_cmd(ctx: &Ctx, force: bool, filters: &[String]) -> Result<i32> {
    let f = match PruneFilter::parse(filters, &["until", "label", "label!"]) {
        Ok(f) => f,
        Err(e) => return Ok(e.report("container prune")),
    };
    if !force && !crate::cmds::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let (ids, bytes) = containers_matching(ctx, &f)?;
    print_section("Deleted Containers:", &ids);
    println!("Total reclaimed space: {}", humanize::size(bytes));
    Ok(0)
}

/// `volume prune [-a] [-f] [--filter label=|label!=|all=]...`: anonymous
/// volumes no container uses (every unused one with `-a` or `all=true`).
pub fn volume_cmd(ctx: &Ctx, all: bool, force: bool, filters: &[String]) -> Result<i32> {
    let f = match PruneFilter::parse(filters, &["label", "label!", "all"]) {
        Ok(f) => f,
        Err(e) => return Ok(e.report("volume prune")),
    };
    let all = match f.bool_or("all", all) {
        Ok(a) => a,
        Err(e) => return Ok(e.report("volume prune")),
    };
    let warning = if all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !force && !crate::cmds::confirm(warning) {
        return Ok(0);
    }
    let (names, bytes) = volumes_matching(ctx, all, &f)?;
    print_section("Deleted Volumes:", &names);
    println!("Total reclaimed space: {}", humanize::size(bytes));
    Ok(0)
}

/// Removes the anonymous volumes (64-hex names, as `-v /path` makes
/// them) no container uses; (names, bytes).
pub fn volumes(ctx: &Ctx) -> Result<(Vec<String>, u64)> {
    volumes_matching(ctx, false, &PruneFilter::default())
}

/// Removes the unused volumes `f` lets through: anonymous ones (docker's
/// are 64 hex, or carry its anonymous label), every one with `all`.
pub fn volumes_matching(ctx: &Ctx, all: bool, f: &PruneFilter) -> Result<(Vec<String>, u64)> {
    let list = ctx.layerfs().args(["volume", "ls"]).json()?;
    let (mut removed, mut bytes) = (vec![], 0);
    for v in list.as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        let labels: BTreeMap<String, String> =
            serde_json::from_value(v["labels"].clone()).unwrap_or_default();
        let anonymous = (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            || labels.contains_key("com.docker.volume.anonymous");
        let used = v["inUseBy"].as_array().is_some_and(|u| !u.is_empty());
        if name.is_empty() || !(all || anonymous) || used || !f.labels_match(&labels) {
            continue;
        }
        let size = crate::ps::dir_size(&ctx.root.join("volumes").join(name).join("_data"));
        if ctx.layerfs().args(["volume", "rm", name]).output().is_ok() {
            crate::events::emit(ctx, "volume", "destroy", name, &[("driver", "local")]);
            removed.push(name.to_string());
            bytes += size;
        }
    }
    Ok((removed, bytes))
}

/// A prune's `--filter KEY=VALUE`s (keys lower-cased, as docker's
/// `filters.ParseFlag`).
#[derive(Default, Debug)]
pub struct PruneFilter {
    args: BTreeMap<String, Vec<String>>,
    until: Option<f64>,
}

/// Why a filter was refused: `Format` is docker's flag error (exit 125),
/// `Invalid` the daemon's answer (exit 1).
#[derive(Debug, PartialEq)]
pub enum FilterError {
    Format(String),
    Invalid(String),
}

impl FilterError {
    /// Prints docker's message for `mydocker CMD`; the exit code.
    pub fn report(&self, cmd: &str) -> i32 {
        match self {
            FilterError::Format(arg) => {
                eprintln!("invalid argument \"{arg}\" for \"--filter\" flag: bad format of filter (expected name=value)");
                eprintln!("See 'mydocker {cmd} --help'.");
                125
            }
            FilterError::Invalid(m) => {
                eprintln!("Error response from daemon: {m}");
                1
            }
        }
    }
}

impl PruneFilter {
    /// Parses `specs`; a key outside `accepted`, a second or unreadable
    /// `until` are refused.
    pub fn parse(
        specs: &[String],
        accepted: &[&str],
    ) -> std::result::Result<PruneFilter, FilterError> {
        let mut f = PruneFilter::default();
        for s in specs {
            let Some((k, v)) = s.split_once('=') else {
                return Err(FilterError::Format(s.clone()));
            };
            let k = k.trim().to_lowercase();
            if !accepted.contains(&k.as_str()) {
                return Err(FilterError::Invalid(format!("invalid filter '{k}'")));
            }
            f.args.entry(k).or_default().push(v.trim().to_string());
        }
        if let Some(u) = f.args.get("until") {
            if u.len() > 1 {
                return Err(FilterError::Invalid(
                    "more than one until filter specified".into(),
                ));
            }
            let t = crate::cmds::parse_log_time(&u[0], humanize::now())
                .map_err(|_| FilterError::Invalid(format!("invalid filter 'until={}'", u[0])))?;
            f.until = Some(t);
        }
        Ok(f)
    }

    /// A bool filter (`all`, `dangling`), `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> std::result::Result<bool, FilterError> {
        let Some(vals) = self.args.get(key) else {
            return Ok(default);
        };
        let mut out = default;
        for v in vals {
            out = match v.to_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(FilterError::Invalid(format!("invalid filter '{key}={v}'"))),
            };
        }
        Ok(out)
    }

    /// `until`: created strictly before it (no filter: everything).
    pub fn created_before_until(&self, created: f64) -> bool {
        self.until.is_none_or(|u| created <= u)
    }

    /// docker's `matchLabels`: every `label` matches, and not every
    /// `label!` does (each `K` or `K=V`).
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        if !kv_list(self.args.get("label"), labels) {
            return false;
        }
        !(self.args.contains_key("label!") && kv_list(self.args.get("label!"), labels))
    }
}

/// moby's `filters.Args.MatchKVList`: true without values; otherwise
/// every value `K` or `K=V` is in `labels`.
fn kv_list(vals: Option<&Vec<String>>, labels: &BTreeMap<String, String>) -> bool {
    let Some(vals) = vals.filter(|v| !v.is_empty()) else {
        return true;
    };
    if labels.is_empty() {
        return false;
    }
    vals.iter().all(|v| match v.split_once('=') {
        Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
        None => labels.contains_key(v.as_str()),
    })
}

/// `system prune [-a] [-f] [--volumes] [--filter until=|label=|label!=]...`:
/// the filters go to each prune, as docker's CLI sends them (`until`
/// not with `--volumes`: volumes have no creation time to compare).
pub fn system(
    ctx: &Ctx,
    all: bool,
    force: bool,
    with_volumes: bool,
    filters: &[String],
) -> Result<i32> {
    let f = match PruneFilter::parse(filters, &["until", "label", "label!"]) {
        Ok(f) => f,
        Err(e) => return Ok(e.report("system prune")),
    };
    if with_volumes && f.until.is_some() {
        eprintln!("ERROR: The \"until\" filter is not supported with \"--volumes\"");
        return Ok(1);
    }
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if with_volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    // docker's CLI lists the filters under the warning, sorted.
    let mut shown: Vec<String> = ["label", "label!", "until"]
        .iter()
        .flat_map(|k| {
            f.args
                .get(*k)
                .into_iter()
                .flatten()
                .map(move |v| format!("{k}={v}"))
        })
        .collect();
    shown.sort();
    if !shown.is_empty() {
        warning.push_str("\n  Items to be pruned will be filtered with:\n");
        for s in &shown {
            warning.push_str(&format!("  - {s}\n"));
        }
    }
    if !force && !crate::cmds::confirm(&warning) {
        return Ok(0);
    }
    // Containers first: what they held (networks, volumes, images) is
    // unused once they are gone.
    let (ctrs, mut total) = containers_matching(ctx, &f)?;
    print_section("Deleted Containers:", &ctrs);
    print_section("Deleted Networks:", &networks_matching(ctx, &f)?);
    if with_volumes {
        let (vols, bytes) = volumes_matching(ctx, false, &f)?;
        print_section("Deleted Volumes:", &vols);
        total += bytes;
    }
    let (untagged, deleted, bytes) = crate::images::prune_images_matching(ctx, all, &f)?;
    total += bytes;
    let mut lines: Vec<String> = untagged.iter().map(|t| format!("untagged: {t}")).collect();
    lines.extend(deleted.iter().map(|d| format!("deleted: {d}")));
    print_section("Deleted Images:", &lines);
    println!("Total reclaimed space: {}", humanize::size(total));
    Ok(0)
}

/// `networks` for the ones `f` lets through: labels from the network's
/// conflist, `until` against the time its file was written (netbr keeps
/// no creation time).
fn networks_matching(ctx: &Ctx, f: &PruneFilter) -> Result<Vec<String>> {
    if f.args.is_empty() {
        return networks(ctx);
    }
    let mut keep = BTreeSet::new();
    for n in ctx
        .netbr()
        .arg("ls")
        .json()?
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = n["name"].as_str().unwrap_or("").to_string();
        let labels: BTreeMap<String, String> = ctx
            .netbr()
            .args(["inspect", &name])
            .json()
            .ok()
            .and_then(|v| serde_json::from_value(crate::network::labels_of(&v["config"])).ok())
            .unwrap_or_default();
        let written = std::fs::metadata(ctx.root.join("networks").join(format!("{name}.json")))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        if !f.created_before_until(written) || !f.labels_match(&labels) {
            keep.insert(name);
        }
    }
    networks_except(ctx, &keep)
}

/// A heading, its lines and a blank line; nothing when there are none.
fn print_section(title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("{title}");
    for i in items {
        println!("{i}");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(specs: &[&str]) -> PruneFilter {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        PruneFilter::parse(&specs, &["label", "label!", "until", "all"]).unwrap()
    }

    #[test]
    fn labels_match_like_moby() {
        let l: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into();
        assert!(f(&[]).labels_match(&l));
        assert!(f(&["label=a"]).labels_match(&l));
        assert!(f(&["label=a=1", "label=b"]).labels_match(&l));
        assert!(!f(&["label=a=2"]).labels_match(&l));
        assert!(!f(&["label=c"]).labels_match(&l));
        assert!(!f(&["label!=a"]).labels_match(&l));
        assert!(f(&["label!=a=2"]).labels_match(&l));
        assert!(f(&["label!=a", "label!=c"]).labels_match(&l));
        assert!(f(&["label!=c"]).labels_match(&BTreeMap::new()));
        assert!(!f(&["label=c"]).labels_match(&BTreeMap::new()));
    }

    #[test]
    fn bad_filters_are_docker_errors() {
        let p = |s: &str| PruneFilter::parse(&[s.to_string()], &["label", "until"]);
        assert_eq!(p("label").unwrap_err(), FilterError::Format("label".into()));
        assert_eq!(
            p("color=red").unwrap_err(),
            FilterError::Invalid("invalid filter 'color'".into())
        );
        assert!(matches!(
            p("until=never").unwrap_err(),
            FilterError::Invalid(_)
        ));
        assert!(p("until=10m").unwrap().until.is_some());
        assert!(f(&["all=maybe"]).bool_or("all", false).is_err());
        assert!(f(&["all=true"]).bool_or("all", false).unwrap());
    }
}

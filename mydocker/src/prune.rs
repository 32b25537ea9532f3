//! `network prune` and `system prune`: docker's question (unless `-f`; a
//! closed stdin answers no), then its report: `Deleted Containers:`,
//! `Deleted Networks:`, `Deleted Volumes:`, `Deleted Images:` sections and
//! `Total reclaimed space:`. What is pruned is what docker prunes: stopped
//! containers; user networks no container (in any state) names; with
//! `--volumes` anonymous volumes no container uses; dangling images (with
//! `-a`, every image no container uses).

use crate::context::Ctx;
use crate::error::Result;
use crate::humanize;
use crate::records;
use ctrstate::record::Status;
use serde_json::Value;
use std::collections::BTreeSet;

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
    let mut used = BTreeSet::new();
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
    let (mut deleted, mut bytes) = (vec![], 0);
    for r in records::list(ctx)? {
        let stopped = matches!(r.status, Status::Exited | Status::Created | Status::Dead)
            && !records::alive(r.pid, r.pid_start_time);
        if !stopped {
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

/// Removes the anonymous volumes (64-hex names, as `-v /path` makes
/// them) no container uses; (names, bytes).
pub fn volumes(ctx: &Ctx) -> Result<(Vec<String>, u64)> {
    let list = ctx.layerfs().args(["volume", "ls"]).json()?;
    let (mut removed, mut bytes) = (vec![], 0);
    for v in list.as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let used = v["inUseBy"].as_array().is_some_and(|u| !u.is_empty());
        if !anonymous || used {
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

/// `system prune [-a] [-f] [--volumes]`.
pub fn system(ctx: &Ctx, all: bool, force: bool, with_volumes: bool) -> Result<i32> {
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
    if !force && !crate::cmds::confirm(&warning) {
        return Ok(0);
    }
    // Containers first: what they held (networks, volumes, images) is
    // unused once they are gone.
    let (ctrs, mut total) = containers(ctx)?;
    print_section("Deleted Containers:", &ctrs);
    print_section("Deleted Networks:", &networks(ctx)?);
    if with_volumes {
        let (vols, bytes) = volumes(ctx)?;
        print_section("Deleted Volumes:", &vols);
        total += bytes;
    }
    let (untagged, deleted, bytes) = crate::images::prune_images(ctx, all)?;
    total += bytes;
    let mut lines: Vec<String> = untagged.iter().map(|t| format!("untagged: {t}")).collect();
    lines.extend(deleted.iter().map(|d| format!("deleted: {d}")));
    print_section("Deleted Images:", &lines);
    println!("Total reclaimed space: {}", humanize::size(total));
    Ok(0)
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

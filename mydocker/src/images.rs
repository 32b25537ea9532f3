//! `images`, `load`, `rmi`: the image store is layerfs's.

use crate::cli::{ImagesArgs, LoadArgs, RmiArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::humanize;
use serde_json::Value;

pub fn images(ctx: &Ctx, a: &ImagesArgs) -> Result<i32> {
    let list = ctx.layerfs().arg("images").json()?;
    let list = list.as_array().cloned().unwrap_or_default();
    let mut rows = vec![];
    for img in &list {
        let id = img["id"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("sha256:");
        let short = &id[..id.len().min(12)];
        let tags: Vec<String> = img["repoTags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "latest"));
            rows.push([
                repo.to_string(),
                tag.to_string(),
                short.to_string(),
                humanize::ago(img["created"].as_str().unwrap_or("")),
                humanize::size(img["size"].as_u64().unwrap_or(0)),
            ]);
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r[2].clone()) {
                println!("{}", r[2]);
            }
        }
        return Ok(0);
    }
    if a.format.as_deref() == Some("json") {
        for r in &rows {
            println!(
                "{}",
                serde_json::json!({"Repository": r[0], "Tag": r[1], "ID": r[2], "CreatedSince": r[3], "Size": r[4]})
            );
        }
        return Ok(0);
    }
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let print = |cells: &[&str]| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:w$}", c, w = w[i]))
            .collect();
        println!("{}", s.join("   ").trim_end());
    };
    print(&header);
    for r in &rows {
        print(&r.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    }
    Ok(0)
}

pub fn load(ctx: &Ctx, a: &LoadArgs) -> Result<i32> {
    let out = ctx
        .layerfs()
        .arg("load")
        .arg("-i")
        .arg(&a.input)
        .json()
        .map_err(|e| match e {
            Error::Tool { msg, .. } => Error::Daemon(msg),
            e => e,
        })?;
    if !a.quiet {
        for t in out["loaded"].as_array().into_iter().flatten() {
            println!("Loaded image: {}", t.as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

pub fn rmi(ctx: &Ctx, a: &RmiArgs) -> Result<i32> {
    let mut code = 0;
    for img in &a.images {
        let mut call = ctx.layerfs().arg("rmi");
        if a.force {
            call = call.arg("--force");
        }
        match call.arg(img).json() {
            Ok(v) => {
                for (key, word) in [("untagged", "Untagged"), ("deleted", "Deleted")] {
                    for x in v[key].as_array().into_iter().flatten() {
                        println!("{word}: {}", x.as_str().unwrap_or(&Value::to_string(x)));
                    }
                }
            }
            Err(e) => {
                eprintln!(
                    "Error response from daemon: {}",
                    match e {
                        Error::Tool { msg, .. } => msg,
                        e => e.to_string(),
                    }
                );
                code = 1;
            }
        }
    }
    Ok(code)
}

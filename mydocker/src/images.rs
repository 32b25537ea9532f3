//! `images`, `load`, `rmi`: the image store is layerfs's.

use crate::cli::{ImagesArgs, LoadArgs, RmiArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::humanize;
use crate::tools::Call;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::Path;
use std::process::Stdio;

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// `images`: docker's table, `-q`, `--no-trunc`, `--digests`, `--filter`
/// (dangling, reference, before, since), `REPOSITORY[:TAG]` and
/// `--format` over docker's image context (ID, Repository, Tag, Digest,
/// CreatedSince, CreatedAt, Size, Containers, VirtualSize, SharedSize,
/// UniqueSize).
pub fn images(ctx: &Ctx, a: &ImagesArgs) -> Result<i32> {
    let mut filters: Vec<(String, String)> = vec![];
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            return crate::error::fail("bad format of filter (expected name=value)");
        };
        let k = k.trim().to_lowercase();
        let ok = match k.as_str() {
            "dangling" => v == "true" || v == "false",
            "reference" | "before" | "since" => true,
            _ => return crate::error::fail(format!("invalid filter '{k}'")),
        };
        if !ok {
            return crate::error::fail(format!("invalid filter '{k}={v}'"));
        }
        filters.push((k, v.to_string()));
    }
    if let Some(r) = &a.reference {
        filters.push(("reference".into(), r.clone()));
    }
    let table = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    let fmt = match crate::gotmpl::ListFormat::new(format, table) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let list = ctx.layerfs().arg("images").json()?;
    let list = list.as_array().cloned().unwrap_or_default();
    // before/since: relative to the creation time of the image named.
    let created_of = |r: &str| -> Result<f64> {
        let v = ctx
            .layerfs()
            .args(["inspect", r])
            .json()
            .map_err(|_| Error::Daemon(format!("No such image: {r}")))?;
        Ok(humanize::parse_rfc3339(v["created"].as_str().unwrap_or("")).unwrap_or(0.0))
    };
    let mut bounds = vec![];
    for (k, v) in &filters {
        if k == "before" || k == "since" {
            bounds.push((k.clone(), created_of(v)?));
        }
    }
    let mut items = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for img in &list {
        let full = img["id"].as_str().unwrap_or("");
        let hex = full.trim_start_matches("sha256:");
        let created = img["created"].as_str().unwrap_or("");
        let at = humanize::parse_rfc3339(created).unwrap_or(0.0);
        if bounds
            .iter()
            .any(|(k, t)| (k == "before" && at >= *t) || (k == "since" && at <= *t))
        {
            continue;
        }
        let tags: Vec<String> = img["repoTags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let dangling = tags.is_empty();
        if filters
            .iter()
            .any(|(k, v)| k == "dangling" && (v == "true") != dangling)
        {
            continue;
        }
        let refs: Vec<(String, String)> = if dangling {
            vec![("<none>".into(), "<none>".into())]
        } else {
            tags.iter()
                .map(|t| {
                    let (r, tag) = split_tag(t);
                    (r.to_string(), tag.to_string())
                })
                .collect()
        };
        for (repo, tag) in refs {
            let wanted: Vec<String> = filters
                .iter()
                .filter(|(k, _)| k == "reference")
                .map(|(_, v)| familiar(v))
                .collect();
            if !wanted.is_empty()
                && !wanted.iter().any(|p| {
                    glob(p, &repo)
                        || glob(p, &format!("{repo}:{tag}"))
                        || glob(p, &format!("docker.io/library/{repo}:{tag}"))
                })
            {
                continue;
            }
            if a.quiet && !seen.insert(hex.to_string()) {
                continue;
            }
            let size = humanize::size(img["size"].as_u64().unwrap_or(0));
            // docker: the digest recorded for this repository, if any.
            let digest = img["repoDigests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(n, _)| *n == repo)
                        .map(|(_, d)| d)
                })
                .unwrap_or("<none>")
                .to_string();
            items.push((
                serde_json::json!({
                    "ID": if a.no_trunc { full.to_string() } else { hex[..hex.len().min(12)].to_string() },
                    "Repository": repo,
                    "Tag": tag,
                    "Digest": digest,
                    "CreatedSince": humanize::ago(created),
                    "CreatedAt": crate::ps::go_time(created),
                    "Size": size,
                    "Containers": "N/A",
                    "VirtualSize": size,
                    "SharedSize": "N/A",
                    "UniqueSize": "N/A",
                }),
                serde_json::json!({}),
            ));
        }
    }
    let header = serde_json::json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
    });
    match fmt.render(&items, "*formatter.imageContext", &header) {
        Ok(s) => {
            print!("{s}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

/// A reference pattern in docker's familiar form, as the store keeps
/// names: `docker.io/library/x` and `library/x` -> `x`, `docker.io/x/y` -> `x/y`.
fn familiar(p: &str) -> String {
    let p = p
        .strip_prefix("docker.io/")
        .or_else(|| p.strip_prefix("index.docker.io/"))
        .unwrap_or(p);
    match p.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => p.to_string(),
    }
}

/// `repo:tag` split at the tag's colon (not a registry port's).
fn split_tag(t: &str) -> (&str, &str) {
    match t.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => (r, tag),
        _ => (t, "latest"),
    }
}

/// Shell-style pattern (`*`, `?`) over a whole string, as Go's path.Match
/// for references without slashes in the pattern's stars.
pub fn glob(p: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| m(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && m(&p[1..], &s[1..]),
        }
    }
    m(&p, &s)
}

pub fn load(ctx: &Ctx, a: &LoadArgs) -> Result<i32> {
    let from_stdin = a.input.as_deref().is_none_or(|p| p == Path::new("-"));
    if from_stdin && std::io::stdin().is_terminal() {
        // docker's words: a terminal is never an archive.
        eprintln!("requested load from stdin, but stdin is empty");
        return Ok(1);
    }
    let call = ctx
        .layerfs()
        .arg("load")
        .arg("-i")
        .arg(a.input.as_deref().unwrap_or(Path::new("-")));
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let out = stream(&call, from_stdin, false, progress)?;
    let out: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    for id in strings(&out["ids"]) {
        load_events(ctx, &id);
    }
    if !a.quiet {
        for t in out["loaded"].as_array().into_iter().flatten() {
            println!("Loaded image: {}", t.as_str().unwrap_or(""));
        }
        for id in out["untagged"].as_array().into_iter().flatten() {
            println!("Loaded image ID: {}", id.as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

/// docker refuses to write an archive to a terminal.
const TERMINAL: &str = "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Runs a layerfs call that streams a tar through our own stdin or stdout
/// (`load`, `import`, `save`, `export`); the tool's JSON when stdout is
/// not handed over. With `stderr_through` the tool draws its progress on
/// our terminal (and its error line is printed there too).
fn stream(call: &Call, stdin: bool, stdout: bool, stderr_through: bool) -> Result<String> {
    if crate::tools::debug_enabled() {
        eprintln!("mydocker: + {}", call.shell());
    }
    let pick = |through: bool| {
        if through {
            Stdio::inherit()
        } else {
            Stdio::piped()
        }
    };
    let out = call
        .command()
        .stdin(if stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(pick(stdout))
        .stderr(pick(stderr_through))
        .output()
        .map_err(|e| Error::Daemon(format!("cannot run layerfs: {e}")))?;
    if !out.status.success() {
        return Err(Error::Daemon(crate::tools::tool_error(
            "layerfs",
            &out.stderr,
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn rmi(ctx: &Ctx, a: &RmiArgs) -> Result<i32> {
    let mut code = 0;
    for img in &a.images {
        let mut call = ctx.layerfs().arg("rmi");
        if a.force {
            call = call.arg("--force");
        }
        // Its id before it goes, for the events.
        let id = ctx
            .layerfs()
            .args(["inspect", img])
            .json()
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from));
        match call.arg(img).json() {
            Ok(v) => {
                let id = id.unwrap_or_default();
                for t in strings(&v["untagged"]) {
                    image_event(ctx, "untag", &id, &t);
                }
                if strings(&v["deleted"]).contains(&id) {
                    image_event(ctx, "delete", &id, &id);
                }
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

/// Dockerfile instructions of `commit -c` / `import -c` as an image config
/// patch: CMD, ENTRYPOINT (JSON or shell form), ENV, WORKDIR, USER, LABEL, EXPOSE.
pub fn changes_patch(changes: &[String], base: &Value) -> Result<Value> {
    let mut patch = serde_json::Map::new();
    let mut env: Vec<String> = base["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut env_changed = false;
    for c in changes {
        let c = c.trim();
        let (instr, rest) = c.split_once(char::is_whitespace).unwrap_or((c, ""));
        let rest = rest.trim();
        let argv = || -> Value {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => serde_json::json!(v),
                Err(_) => serde_json::json!(["/bin/sh", "-c", rest]),
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                patch.insert("Cmd".into(), argv());
            }
            "ENTRYPOINT" => {
                patch.insert("Entrypoint".into(), argv());
            }
            "WORKDIR" => {
                patch.insert("WorkingDir".into(), Value::String(rest.into()));
            }
            "USER" => {
                patch.insert("User".into(), Value::String(rest.into()));
            }
            "ENV" => {
                let kv = if rest.contains('=') {
                    rest.to_string()
                } else {
                    rest.replacen(' ', "=", 1)
                };
                crate::runconfig::merge_env(&mut env, &kv)?;
                env_changed = true;
            }
            "LABEL" => {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                let mut labels = base["Labels"].as_object().cloned().unwrap_or_default();
                if let Some(Value::Object(l)) = patch.get("Labels") {
                    labels = l.clone();
                }
                labels.insert(
                    k.trim().into(),
                    Value::String(v.trim().trim_matches('"').into()),
                );
                patch.insert("Labels".into(), Value::Object(labels));
            }
            "EXPOSE" => {
                let mut ports = base["ExposedPorts"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, serde_json::json!({}));
                }
                patch.insert("ExposedPorts".into(), Value::Object(ports));
            }
            other => {
                return Err(Error::Daemon(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    if env_changed {
        patch.insert("Env".into(), serde_json::json!(env));
    }
    Ok(Value::Object(patch))
}

fn plain(e: Error) -> Error {
    match e {
        Error::Tool { msg, .. } => Error::Daemon(msg),
        e => e,
    }
}

/// docker's PATH for a container whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `commit`: the container's changes as a new image, its config the
/// image's plus `-c` changes; history `created_by` is the container's
/// command, as docker records it.
pub fn commit(ctx: &Ctx, a: &crate::cli::CommitArgs) -> Result<i32> {
    let rec = crate::records::get(ctx, &a.container)?;
    let base = ctx
        .layerfs()
        .args(["inspect", &rec.image_id])
        .json()
        .map_err(plain)?;
    let mut patch = changes_patch(&a.change, &base["config"]["config"])?;
    // docker's container config always has a PATH (the default one when
    // the image has none), and a commit keeps it.
    let env = patch
        .get("Env")
        .or(base["config"]["config"].get("Env"))
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default();
    if !env
        .iter()
        .any(|e| e.as_str().is_some_and(|e| e.starts_with("PATH=")))
    {
        let mut with_path = vec![Value::from(DEFAULT_PATH)];
        with_path.extend(env);
        patch["Env"] = Value::Array(with_path);
    }
    let mut call = ctx
        .layerfs()
        .args(["commit", &rec.id, "--created-by", &rec.command.join(" ")]);
    if let Some(r) = &a.repository {
        call = call.arg(if r.contains(':') {
            r.clone()
        } else {
            format!("{r}:latest")
        });
    }
    if let Some(m) = &a.message {
        call = call.args(["-m", m]);
    }
    let v = call
        .args(["--change-json", &patch.to_string()])
        .json()
        .map_err(plain)?;
    let new_id = v["id"].as_str().unwrap_or("");
    let tag = v["tag"].as_str().unwrap_or("");
    let comment = a.message.clone().unwrap_or_default();
    let ev = ctrstate::journal::container_event(
        &rec,
        "commit",
        &[
            ("comment", comment),
            ("imageID", new_id.into()),
            ("imageRef", tag.into()),
        ],
    );
    ctrstate::journal::emit(&ctx.root, &ev);
    println!("{new_id}");
    Ok(0)
}

pub fn export(ctx: &Ctx, a: &crate::cli::ExportArgs) -> Result<i32> {
    let to_stdout = a.output.as_deref().is_none_or(|p| p == Path::new("-"));
    if to_stdout && std::io::stdout().is_terminal() {
        eprintln!("{TERMINAL}");
        return Ok(1);
    }
    let rec = crate::records::get(ctx, &a.container)?;
    let call = ctx
        .layerfs()
        .args(["export", &rec.id, "-o"])
        .arg(a.output.as_deref().unwrap_or(Path::new("-")));
    stream(&call, false, to_stdout, false)?;
    Ok(0)
}

pub fn import(ctx: &Ctx, a: &crate::cli::ImportArgs) -> Result<i32> {
    let from_stdin = a.file == Path::new("-");
    if from_stdin && std::io::stdin().is_terminal() {
        eprintln!("requested import from stdin, but stdin is a terminal");
        return Ok(1);
    }
    let patch = changes_patch(&a.change, &Value::Null)?;
    let mut call = ctx.layerfs().arg("import").arg(&a.file);
    if let Some(r) = &a.repository {
        call = call.arg(if r.contains(':') {
            r.clone()
        } else {
            format!("{r}:latest")
        });
    }
    let call = call.args(["--change-json", &patch.to_string()]);
    let v: Value = serde_json::from_str(&stream(&call, from_stdin, false, false)?)
        .map_err(|e| Error::Daemon(format!("layerfs import: bad JSON output: {e}")))?;
    let id = v["id"].as_str().unwrap_or("");
    image_event(ctx, "import", id, v["tag"].as_str().unwrap_or(id));
    println!("{id}");
    Ok(0)
}

pub fn save(ctx: &Ctx, a: &crate::cli::SaveArgs) -> Result<i32> {
    let to_stdout = a.output.as_deref().is_none_or(|p| p == Path::new("-"));
    if to_stdout && std::io::stdout().is_terminal() {
        eprintln!("{TERMINAL}");
        return Ok(1);
    }
    let call = ctx
        .layerfs()
        .arg("save")
        .args(&a.images)
        .arg("-o")
        .arg(a.output.as_deref().unwrap_or(Path::new("-")));
    let out = stream(&call, false, to_stdout, false)?;
    // To stdout the tar is all that is printed: the ids are asked for then.
    let ids = match serde_json::from_str::<Value>(&out) {
        Ok(v) => strings(&v["ids"]),
        Err(_) => a
            .images
            .iter()
            .filter_map(|i| {
                let v = ctx.layerfs().args(["inspect", i]).json().ok()?;
                v["id"].as_str().map(String::from)
            })
            .collect(),
    };
    for (i, id) in ids.iter().enumerate() {
        let name = a.images.get(i).filter(|_| ids.len() == a.images.len());
        image_event(ctx, "save", id, name.map_or(id.as_str(), |n| n));
    }
    Ok(0)
}

/// An image event as docker's daemon writes it (`name` the reference).
/// The `load` events of one loaded image: one per tag, `name` the tag
/// (docker's containerd image store; an untagged image: one, `name` its
/// ID), actor the image ID, with the image's labels.
fn load_events(ctx: &Ctx, id: &str) {
    let v = ctx
        .layerfs()
        .args(["inspect", id])
        .json()
        .unwrap_or(Value::Null);
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_value(v["config"]["config"]["Labels"].clone()).unwrap_or_default();
    let mut names = strings(&v["repoTags"]);
    if names.is_empty() {
        names.push(id.to_string());
    }
    for name in &names {
        let mut attrs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        attrs.push(("name", name));
        crate::events::emit(ctx, "image", "load", id, &attrs);
    }
}

fn image_event(ctx: &Ctx, action: &str, id: &str, name: &str) {
    crate::events::emit(ctx, "image", action, id, &[("name", name)]);
}

pub fn tag(ctx: &Ctx, source: &str, target: &str) -> Result<i32> {
    let target = if target.rsplit('/').next().is_some_and(|t| t.contains(':')) {
        target.to_string()
    } else {
        format!("{target}:latest")
    };
    let v = ctx
        .layerfs()
        .args(["tag", source, &target])
        .json()
        .map_err(plain)?;
    image_event(ctx, "tag", v["id"].as_str().unwrap_or(""), &target);
    Ok(0)
}

/// `history`: docker's table (the image id on the newest step,
/// `<missing>` below; CREATED humanized; CREATED BY cut at 45 characters
/// with an ellipsis unless `--no-trunc`), `-q`, `-H=false`, `--format`.
pub fn history(ctx: &Ctx, a: &crate::cli::HistoryArgs) -> Result<i32> {
    let fmt = match crate::gotmpl::ListFormat::new(
        if a.quiet {
            Some("{{.ID}}")
        } else {
            a.format.as_deref()
        },
        HISTORY_TABLE,
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let img = ctx
        .layerfs()
        .args(["inspect", &a.image])
        .json()
        .map_err(plain)?;
    let id = img["id"].as_str().unwrap_or("");
    let rows = ctx
        .layerfs()
        .args(["history", &a.image])
        .json()
        .map_err(plain)?;
    let mut items = vec![];
    for (i, h) in rows.as_array().into_iter().flatten().enumerate() {
        let shown_id = match i {
            0 if a.no_trunc => id.to_string(),
            0 => id.trim_start_matches("sha256:").chars().take(12).collect(),
            _ => "<missing>".to_string(),
        };
        let created = h["created"].as_str().unwrap_or("");
        let by = h["createdBy"].as_str().unwrap_or("").replace('\t', " ");
        let by = if a.no_trunc { by } else { ellipsis(&by, 45) };
        let size = h["size"].as_u64().unwrap_or(0);
        items.push((
            serde_json::json!({
                "ID": shown_id,
                "CreatedSince": if a.human { humanize::ago(created) } else { created.to_string() },
                "CreatedAt": created,
                "CreatedBy": by,
                "Size": if a.human { humanize::size(size) } else { size.to_string() },
                "Comment": h["comment"].as_str().unwrap_or(""),
            }),
            serde_json::json!({}),
        ));
    }
    let header = serde_json::json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    match fmt.render(&items, "*formatter.historyContext", &header) {
        Ok(s) => {
            print!("{s}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A layer's size as the store recorded it (`layers/meta/<hex>.json`).
fn layer_size(ctx: &Ctx, diff_id: &str) -> u64 {
    let hex = diff_id.trim_start_matches("sha256:");
    std::fs::read(ctx.root.join("layers/meta").join(format!("{hex}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["size"].as_u64())
        .unwrap_or(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// Image ids some container (in any state) was created from.
fn used_images(ctx: &Ctx) -> Result<std::collections::BTreeSet<String>> {
    Ok(crate::records::list(ctx)?
        .into_iter()
        .map(|r| r.image_id)
        .collect())
}

/// `image prune [-a] [-f]`: dangling images (with `-a` every image) that
/// no container uses, after docker's question unless `-f` (a closed or
/// empty stdin answers no).
pub fn prune(ctx: &Ctx, all: bool, force: bool, filters: &[String]) -> Result<i32> {
    use crate::prune::PruneFilter;
    let f = match PruneFilter::parse(filters, &["until", "label", "label!", "dangling"]) {
        Ok(f) => f,
        Err(e) => return Ok(e.report("image prune")),
    };
    // docker's CLI sends dangling=false for -a.
    let all = match f.bool_or("dangling", !all) {
        Ok(dangling) => !dangling,
        Err(e) => return Ok(e.report("image prune")),
    };
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !force && !crate::cmds::confirm(warning) {
        return Ok(0);
    }
    let (untagged, deleted, reclaimed) = prune_images_matching(ctx, all, &f)?;
    if !untagged.is_empty() || !deleted.is_empty() {
        println!("Deleted Images:");
        for t in &untagged {
            println!("untagged: {t}");
        }
        for d in &deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", humanize::size(reclaimed));
    Ok(0)
}

/// Removes dangling images (every one with `all`) no container uses:
/// (untagged references, deleted ids and layers, bytes reclaimed).
pub fn prune_images(ctx: &Ctx, all: bool) -> Result<(Vec<String>, Vec<String>, u64)> {
    prune_images_matching(ctx, all, &Default::default())
}

/// `prune_images` for the images `f` lets through (until, labels).
pub fn prune_images_matching(
    ctx: &Ctx,
    all: bool,
    f: &crate::prune::PruneFilter,
) -> Result<(Vec<String>, Vec<String>, u64)> {
    let list = ctx.layerfs().arg("images").json()?;
    let used = used_images(ctx)?;
    let (mut untagged, mut deleted, mut reclaimed) = (vec![], vec![], 0u64);
    for img in list.as_array().into_iter().flatten() {
        let id = img["id"].as_str().unwrap_or("");
        let dangling = strings(&img["repoTags"]).is_empty();
        if !(all || dangling) || used.contains(id) {
            continue;
        }
        let created = img["created"]
            .as_str()
            .and_then(humanize::parse_rfc3339)
            .unwrap_or(0.0);
        if !f.created_before_until(created) || !f.labels_match(&image_labels(ctx, id)) {
            continue;
        }
        let sizes: std::collections::HashMap<String, u64> = strings(&img["layers"])
            .into_iter()
            .map(|l| {
                let s = layer_size(ctx, &l);
                (l, s)
            })
            .collect();
        // --force: by id with several tags; layerfs still keeps the
        // layers other images use.
        if let Ok(v) = ctx.layerfs().args(["rmi", "--force", id]).json() {
            for t in strings(&v["untagged"]) {
                image_event(ctx, "untag", id, &t);
                untagged.push(t);
            }
            for d in strings(&v["deleted"]) {
                if d == id {
                    image_event(ctx, "delete", id, id);
                }
                reclaimed += sizes.get(&d).copied().unwrap_or(0);
                deleted.push(d);
            }
        }
    }
    Ok((untagged, deleted, reclaimed))
}

/// The image's config labels (none when it cannot be read).
fn image_labels(ctx: &Ctx, id: &str) -> std::collections::BTreeMap<String, String> {
    ctx.layerfs()
        .args(["inspect", id])
        .json()
        .ok()
        .and_then(|v| serde_json::from_value(v["config"]["config"]["Labels"].clone()).ok())
        .unwrap_or_default()
}

/// docker's RECLAIMABLE cell: `SIZE (PCT%)` when there is any total.
fn reclaimable(part: u64, total: u64) -> String {
    match (part * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", humanize::size(part)),
        None => humanize::size(part),
    }
}

/// `system df`: images, containers, volumes (and an empty build cache)
/// with docker's TOTAL, ACTIVE, SIZE and RECLAIMABLE: an image is active
/// while a container (in any state) uses it, its reclaimable space
/// docker's `total - sum(size - shared size)` over the active ones; a
/// container is active while running or paused; a volume while a
/// container uses it.
pub fn system_df(ctx: &Ctx) -> Result<i32> {
    let images = ctx.layerfs().arg("images").json()?;
    let images = images.as_array().cloned().unwrap_or_default();
    let used = used_images(ctx)?;
    // Each layer once, and how many images hold it.
    let mut layers: std::collections::HashMap<String, (u64, usize)> = Default::default();
    for img in &images {
        for l in strings(&img["layers"]) {
            let size = layer_size(ctx, &l);
            layers.entry(l).or_insert((size, 0)).1 += 1;
        }
    }
    let img_total: u64 = layers.values().map(|(s, _)| s).sum();
    let mut img_active = 0;
    let mut img_used = 0u64;
    for img in &images {
        if !used.contains(img["id"].as_str().unwrap_or("")) {
            continue;
        }
        img_active += 1;
        let ls = strings(&img["layers"]);
        let size: u64 = ls.iter().map(|l| layers[l].0).sum();
        let shared: u64 = ls
            .iter()
            .filter(|l| layers[*l].1 > 1)
            .map(|l| layers[l].0)
            .sum();
        img_used += size - shared;
    }
    let recs = crate::records::list(ctx)?;
    let mut ctr_total = 0;
    let mut ctr_idle = 0;
    let mut ctr_active = 0;
    for r in &recs {
        let size = crate::ps::dir_size(&ctx.container_dir(&r.id).join("upper"));
        ctr_total += size;
        let live = matches!(
            r.status,
            ctrstate::record::Status::Running | ctrstate::record::Status::Paused
        ) && crate::records::alive(r.pid, r.pid_start_time);
        if live {
            ctr_active += 1;
        } else {
            ctr_idle += size;
        }
    }
    let vols = ctx.layerfs().args(["volume", "ls"]).json()?;
    let vols = vols.as_array().cloned().unwrap_or_default();
    let (mut vol_total, mut vol_idle, mut vol_active) = (0, 0, 0);
    for v in &vols {
        let size =
            crate::ps::dir_size(std::path::Path::new(v["mountpoint"].as_str().unwrap_or("")));
        vol_total += size;
        if v["inUseBy"].as_array().is_some_and(|u| !u.is_empty()) {
            vol_active += 1;
        } else {
            vol_idle += size;
        }
    }
    let rows = [
        "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_string(),
        format!(
            "Images\t{}\t{}\t{}\t{}",
            images.len(),
            img_active,
            humanize::size(img_total),
            reclaimable(img_total.saturating_sub(img_used), img_total)
        ),
        format!(
            "Containers\t{}\t{}\t{}\t{}",
            recs.len(),
            ctr_active,
            humanize::size(ctr_total),
            reclaimable(ctr_idle, ctr_total)
        ),
        format!(
            "Local Volumes\t{}\t{}\t{}\t{}",
            vols.len(),
            vol_active,
            humanize::size(vol_total),
            reclaimable(vol_idle, vol_total)
        ),
        "Build Cache\t0\t0\t0B\t0B".to_string(),
    ];
    print!("{}", crate::gotmpl::tabwrite(&(rows.join("\n") + "\n")));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ellipsis_cuts_like_docker() {
        assert_eq!(ellipsis("abc", 3), "abc");
        assert_eq!(ellipsis("abcd", 3), "ab…");
    }

    #[test]
    fn patterns_become_familiar() {
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("library/busy*"), "busy*");
        assert_eq!(familiar("docker.io/x/y"), "x/y");
        assert_eq!(familiar("quay.io/library/x"), "quay.io/library/x");
    }

    #[test]
    fn globs_match_references() {
        assert!(super::glob("busy*", "busybox"));
        assert!(super::glob("busybox:*", "busybox:latest"));
        assert!(!super::glob("busy*", "library/busybox"));
        assert!(super::glob("b?sybox", "busybox"));
        assert!(!super::glob("alpine", "busybox"));
    }

    #[test]
    fn changes_become_a_config_patch() {
        let base = json!({"Env": ["PATH=/bin"]});
        let p = changes_patch(
            &[
                "CMD [\"httpd\", \"-f\"]".into(),
                "ENV A=1".into(),
                "WORKDIR /srv".into(),
                "ENTRYPOINT echo hi".into(),
            ],
            &base,
        )
        .unwrap();
        assert_eq!(p["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(p["Env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(p["WorkingDir"], "/srv");
        assert_eq!(p["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert!(changes_patch(&["RUN rm -rf /".into()], &base).is_err());
    }
}

//! `network ls` and `volume ls` through docker's formatter: default
//! tables, `-q` and `--format` (network context: ID, Name, Driver, Scope,
//! IPv6, Internal, Labels, CreatedAt; volume context: Name, Driver, Scope,
//! Mountpoint, Labels, Links, Size). A network's ID is its name here.
//! `network inspect` and `volume inspect` print through `inspect_objects`.

use crate::context::Ctx;
use crate::error::Result;
use crate::gotmpl::ListFormat;
use serde_json::{json, Value};

/// Prints `items` through `format` (or `default`); exit code 1 and
/// docker's message on a bad template.
fn emit(
    format: Option<&str>,
    default: &str,
    items: &[(Value, Value)],
    ty: &str,
    header: &Value,
) -> Result<i32> {
    match ListFormat::new(format, default).and_then(|f| f.render(items, ty, header)) {
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

pub fn networks(ctx: &Ctx, quiet: bool, format: Option<&str>) -> Result<i32> {
    let v = ctx.netbr().arg("ls").json()?;
    let items: Vec<(Value, Value)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let ipv6 = n["subnets"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.contains(':')))
            });
            (
                json!({
                    "ID": n["name"], "Name": n["name"], "Driver": "bridge", "Scope": "local",
                    "IPv6": ipv6.to_string(), "Internal": "false", "Labels": "", "CreatedAt": "",
                }),
                json!({"Label": {}}),
            )
        })
        .collect();
    let header = json!({
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED",
        "Label": "LABEL",
    });
    let format = if quiet { Some("{{.ID}}") } else { format };
    emit(
        format,
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &items,
        "*formatter.networkContext",
        &header,
    )
}

pub fn volumes(ctx: &Ctx, quiet: bool, format: Option<&str>) -> Result<i32> {
    let v = ctx.layerfs().args(["volume", "ls"]).json()?;
    let items: Vec<(Value, Value)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            let links = x["inUseBy"].as_array().map_or(0, |a| a.len());
            (
                json!({
                    "Name": x["name"], "Driver": x["driver"].as_str().unwrap_or("local"),
                    "Scope": "local", "Mountpoint": x["mountpoint"], "Labels": "",
                    "Links": links.to_string(), "Size": "N/A",
                }),
                json!({"Label": {}}),
            )
        })
        .collect();
    let header = json!({
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Label": "LABEL",
    });
    let format = if quiet { Some("{{.Name}}") } else { format };
    emit(
        format,
        "table {{.Driver}}\t{{.Name}}",
        &items,
        "*formatter.volumeContext",
        &header,
    )
}

/// `network inspect` / `volume inspect`: the template (`-f`) is parsed
/// before anything is looked up; then each name's object from `lookup`
/// (an error prints docker's line and makes the exit 1, the rest still
/// print), as a JSON array indented by four spaces or the template's
/// output per object.
pub fn inspect_objects(
    names: &[String],
    format: Option<&str>,
    lookup: impl Fn(&str) -> std::result::Result<Value, String>,
) -> Result<i32> {
    let tmpl = match format.filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match crate::gotmpl::Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("template parsing error: {e}");
                return Ok(1);
            }
        },
    };
    let mut out = vec![];
    let mut code = 0;
    for n in names {
        match lookup(n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    if out.is_empty() && tmpl.is_some() {
        return Ok(code);
    }
    crate::inspect::print_objects(&out, tmpl.as_ref(), code)
}

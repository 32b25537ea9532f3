//! Volumes: `-v`, `--mount`, `--tmpfs` specs parsed into layerfs's mount
//! specs, and `mydocker volume ...` over `layerfs volume`.

use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One mount spec as `layerfs volume resolve` reads it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MountSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub readonly: bool,
    /// A volume made for this container alone (`-v /path`): `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
}

/// A fresh name for an anonymous volume (docker's are 64 hex too). No
/// randomness is an error: a fixed name would be shared by every container.
fn anonymous_name() -> Result<String> {
    randid::id().or_else(|e| fail(format!("naming an anonymous volume: getrandom: {e}")))
}

fn check_target(t: &str, spec: &str) -> Result<()> {
    if !t.starts_with('/') {
        return fail(format!(
            "invalid volume specification: '{spec}': mount path must be absolute"
        ));
    }
    if t.split('/').any(|c| c == "..") {
        return fail(format!(
            "invalid volume specification: '{spec}': mount path must not contain '..'"
        ));
    }
    Ok(())
}

/// docker's `-v NAME:/path[:ro]`, `-v /host:/path[:ro]`, `-v /path`.
pub fn parse_volume(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return fail(format!("invalid volume specification: '{spec}'")),
    };
    check_target(dst, spec)?;
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" | "z" | "Z" | "rprivate" | "private" | "nocopy" => {}
            _ => {
                return fail(format!(
                    "invalid volume specification: '{spec}': unknown option {o}"
                ))
            }
        }
    }
    let (kind, source, anonymous) = if src.is_empty() {
        ("volume", anonymous_name()?, true)
    } else if src.starts_with('/') {
        ("bind", src.to_string(), false)
    } else if src.starts_with('.') {
        return fail(format!(
            "invalid volume specification: '{spec}': a host path must be absolute"
        ));
    } else {
        ("volume", src.to_string(), false)
    };
    Ok(MountSpec {
        kind: kind.into(),
        source,
        target: dst.into(),
        readonly,
        anonymous,
    })
}

/// docker's `--mount type=volume,source=x,target=/p,readonly`.
pub fn parse_mount(spec: &str) -> Result<MountSpec> {
    let mut m = MountSpec {
        kind: "volume".into(),
        source: String::new(),
        target: String::new(),
        readonly: false,
        anonymous: false,
    };
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => m.kind = v.into(),
            "source" | "src" => m.source = v.into(),
            "target" | "destination" | "dst" => m.target = v.into(),
            "readonly" | "ro" => m.readonly = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" | "volume-nocopy" | "tmpfs-size" | "tmpfs-mode" | "consistency" => {}
            _ => return fail(format!("invalid field '{k}' in --mount {spec}")),
        }
    }
    if !matches!(m.kind.as_str(), "bind" | "volume" | "tmpfs") {
        return fail(format!("invalid mount type '{}' in --mount {spec}", m.kind));
    }
    check_target(&m.target, spec)?;
    match m.kind.as_str() {
        "bind" if !m.source.starts_with('/') => {
            return fail(format!(
                "invalid mount config: bind source must be an absolute path: {spec}"
            ))
        }
        "volume" if m.source.is_empty() => {
            m.source = anonymous_name()?;
            m.anonymous = true;
        }
        _ => {}
    }
    Ok(m)
}

/// docker's `--tmpfs /path[:options]` (options are ignored but for ro).
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec> {
    let (t, opts) = spec.split_once(':').unwrap_or((spec, ""));
    check_target(t, spec)?;
    let readonly = opts.split(',').any(|o| o == "ro");
    Ok(MountSpec {
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        target: t.into(),
        readonly,
        anonymous: false,
    })
}

/// Step 3: the specs as OCI mounts (named volumes made and seeded on first use).
pub fn resolve(ctx: &Ctx, id: &str, specs: &[MountSpec]) -> Result<Vec<Value>> {
    if specs.is_empty() {
        return Ok(vec![]);
    }
    // Named volumes this call makes get docker's `create` event.
    let new: Vec<&str> = specs
        .iter()
        .filter(|m| m.kind == "volume" && !ctx.root.join("volumes").join(&m.source).exists())
        .map(|m| m.source.as_str())
        .collect();
    let v = ctx
        .layerfs()
        .args(["volume", "resolve", id])
        .stdin_json(&json!(specs))
        .json()?;
    for n in new {
        crate::events::emit(ctx, "volume", "create", n, &[("driver", "local")]);
    }
    for m in specs.iter().filter(|m| m.kind == "volume") {
        let rw = if m.readonly { "false" } else { "true" };
        crate::events::emit(
            ctx,
            "volume",
            "mount",
            &m.source,
            &[
                ("container", id),
                ("destination", &m.target),
                ("driver", "local"),
                ("propagation", ""),
                ("read/write", rw),
            ],
        );
    }
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// docker's `Mounts` of inspect.
pub fn docker_mounts(ctx: &Ctx, specs: &[MountSpec]) -> Value {
    json!(specs
        .iter()
        .map(|m| {
            let source = if m.kind == "volume" {
                ctx.root
                    .join("volumes")
                    .join(&m.source)
                    .join("_data")
                    .to_string_lossy()
                    .to_string()
            } else {
                m.source.clone()
            };
            json!({
                "Type": m.kind,
                "Name": if m.kind == "volume" { m.source.clone() } else { String::new() },
                "Source": source,
                "Destination": m.target,
                "RW": !m.readonly,
            })
        })
        .collect::<Vec<_>>())
}

/// `mydocker volume create|ls|inspect|rm|prune`.
pub fn command(ctx: &Ctx, a: &crate::cli::VolumeCmd) -> Result<i32> {
    use crate::cli::VolumeCmd as V;
    let plain = |e: Error| match e {
        Error::Tool { msg, .. } => Error::Daemon(msg),
        e => e,
    };
    match a {
        V::Create { name, label } => {
            let mut call = ctx.layerfs().args(["volume", "create"]);
            if let Some(n) = name {
                call = call.arg(n);
            }
            for l in label {
                call = call.args(["--label", l]);
            }
            let v = call.json().map_err(plain)?;
            let n = v["name"].as_str().unwrap_or("");
            crate::events::emit(ctx, "volume", "create", n, &[("driver", "local")]);
            println!("{n}");
        }
        V::Ls { quiet, format } => return crate::listings::volumes(ctx, *quiet, format.as_deref()),
        V::Inspect { format, names } => {
            return crate::listings::inspect_objects(names, format.as_deref(), |n| {
                let v = ctx
                    .layerfs()
                    .args(["volume", "inspect", n])
                    .json()
                    .map_err(|e| plain(e).to_string())?;
                Ok(
                    json!({"Name": v["name"], "Driver": v["driver"], "Mountpoint": v["mountpoint"], "CreatedAt": v["createdAt"], "Scope": "local", "Labels": v["labels"], "Options": {}, "UsedBy": v["inUseBy"]}),
                )
            });
        }
        V::Rm { force, names } => {
            let mut code = 0;
            for n in names {
                let mut call = ctx.layerfs().args(["volume", "rm"]);
                if *force {
                    call = call.arg("--force");
                }
                match call.arg(n).output() {
                    Ok(_) => {
                        crate::events::emit(ctx, "volume", "destroy", n, &[("driver", "local")]);
                        println!("{n}")
                    }
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", plain(e));
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        V::Prune { all, force, filter } => {
            return crate::prune::volume_cmd(ctx, *all, *force, filter)
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse_like_docker() {
        let m = parse_volume("data:/data:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.readonly
            ),
            ("volume", "data", "/data", true)
        );
        let m = parse_volume("/srv/x:/x").unwrap();
        assert_eq!((m.kind.as_str(), m.readonly), ("bind", false));
        let m = parse_volume("/anon").unwrap();
        assert!(m.anonymous && m.source.len() == 64);
        for bad in [
            "data:relative",
            "./x:/x",
            "a:/b:weird",
            "a:/b:c:d",
            "v:/a/../b",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_and_tmpfs_flags_parse() {
        let m = parse_mount("type=bind,src=/srv,dst=/x,readonly").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.readonly
            ),
            ("bind", "/srv", "/x", true)
        );
        assert!(parse_mount("type=nfs,target=/x").is_err());
        assert!(parse_mount("type=bind,src=rel,target=/x").is_err());
        assert!(parse_mount("type=volume,target=/x").unwrap().anonymous);
        let t = parse_tmpfs("/run:rw,size=64m").unwrap();
        assert_eq!(
            (t.kind.as_str(), t.target.as_str(), t.readonly),
            ("tmpfs", "/run", false)
        );
    }
}

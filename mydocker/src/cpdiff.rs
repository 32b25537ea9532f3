//! `cp` (container <-> host, `-` for a tar on stdin or stdout) and `diff`.
//! layerfs does the work: it resolves container paths inside the rootfs
//! (`openat2(RESOLVE_IN_ROOT)`) and packs or extracts without following
//! symlinks; a copy between a container and the host is two layerfs
//! processes joined by a pipe.
//!
//! Volumes and bind mounts: docker's cp sees them at their targets, as the
//! container does. Here mydocker first moves itself into a mount
//! namespace of its own (a slave of the host's, so nothing it mounts is
//! seen outside and all of it goes when the command ends), mounts the
//! rootfs there if the container is stopped, and binds each volume's
//! `_data` and each bind source onto its target, the target opened inside
//! the rootfs (`RESOLVE_IN_ROOT`). layerfs, a child, then copies through
//! them.

use crate::cli::CpArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};
use std::process::{Command, Stdio};

/// One side of `cp`: a container path or a local one.
#[derive(Debug, PartialEq)]
enum End {
    Container(String, String),
    Local(String),
}

/// docker's split: `NAME:PATH` when the part before the first `:` holds
/// no `/` (so `./a:b` and `/x:y` are local paths).
fn parse(arg: &str) -> End {
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => {
            let p = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            };
            End::Container(c.to_string(), p)
        }
        _ => End::Local(arg.to_string()),
    }
}

/// Runs `from | to`; Ok when both succeed, else the first one's error line.
fn pipe(from: &mut Command, to: &mut Command) -> Result<()> {
    let mut a = from
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Daemon(format!("cannot run layerfs: {e}")))?;
    let out = to
        .stdin(a.stdout.take().expect("piped"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Daemon(format!("cannot run layerfs: {e}")))?;
    let a_out = a
        .wait_with_output()
        .map_err(|e| Error::Daemon(format!("layerfs: {e}")))?;
    if !a_out.status.success() {
        return Err(Error::Daemon(crate::tools::tool_error(
            "layerfs",
            &a_out.stderr,
        )));
    }
    if !out.status.success() {
        return Err(Error::Daemon(crate::tools::tool_error(
            "layerfs",
            &out.stderr,
        )));
    }
    Ok(())
}

/// Runs one layerfs call with our stdin or stdout handed over.
fn through(mut c: Command, stdin: bool) -> Result<()> {
    let out = c
        .stdin(if stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(if stdin {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Daemon(format!("cannot run layerfs: {e}")))?;
    if !out.status.success() {
        return Err(Error::Daemon(crate::tools::tool_error(
            "layerfs",
            &out.stderr,
        )));
    }
    Ok(())
}

/// `cp [-L] SRC DEST`, one of them `CONTAINER:PATH`. Errors name the
/// container as the user did.
pub fn cp(ctx: &Ctx, a: &CpArgs) -> Result<i32> {
    let name = match (parse(&a.src), parse(&a.dest)) {
        (End::Container(c, _), _) | (_, End::Container(c, _)) => c,
        _ => String::new(),
    };
    copy(ctx, a).map_err(|e| match e {
        Error::Daemon(m) if !name.is_empty() => match crate::records::get(ctx, &name) {
            Ok(r) => Error::Daemon(m.replace(&r.id, &name)),
            Err(_) => Error::Daemon(m),
        },
        e => e,
    })
}

fn copy(ctx: &Ctx, a: &CpArgs) -> Result<i32> {
    let follow = |mut c: crate::tools::Call| {
        if a.follow_link {
            c = c.arg("-L");
        }
        c
    };
    match (parse(&a.src), parse(&a.dest)) {
        (End::Container(..), End::Container(..)) => Err(Error::Daemon(
            "copying between containers is not supported".into(),
        )),
        (End::Local(_), End::Local(_)) => Err(Error::Daemon(
            "must specify at least one container source".into(),
        )),
        (End::Container(c, path), End::Local(dest)) => {
            let rec = crate::records::get(ctx, &c)?;
            with_volumes(ctx, &rec)?;
            let id = rec.id;
            // These three are bind-mounted from the container's dir: the
            // rootfs only holds their empty mount points.
            let own = ctx
                .container_dir(&id)
                .join(path.trim_start_matches("/etc/"));
            let bound = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
                .contains(&path.as_str())
                && own.is_file();
            let out = if bound {
                ctx.layerfs().arg("tar-host").arg(&own)
            } else {
                follow(ctx.layerfs().args(["cp-out", &id, &path]))
            };
            if dest == "-" {
                use std::io::IsTerminal;
                if std::io::stdout().is_terminal() {
                    return Err(Error::Daemon(
                        "cowardly refusing to write a tar to a terminal".into(),
                    ));
                }
                through(out.command(), false)?;
            } else {
                pipe(
                    &mut out.command(),
                    &mut ctx.layerfs().args(["untar-host", &dest]).command(),
                )?;
            }
            Ok(0)
        }
        (End::Local(src), End::Container(c, path)) => {
            let rec = crate::records::get(ctx, &c)?;
            with_volumes(ctx, &rec)?;
            let id = rec.id;
            if src == "-" {
                let call = ctx.layerfs().args(["cp-in", &id, &path, "--dir-only"]);
                through(call.command(), true)?;
            } else {
                if std::fs::symlink_metadata(&src).is_err() {
                    return Err(Error::Daemon(format!(
                        "lstat {src}: no such file or directory"
                    )));
                }
                pipe(
                    &mut follow(ctx.layerfs().args(["tar-host", &src])).command(),
                    &mut ctx.layerfs().args(["cp-in", &id, &path]).command(),
                )?;
            }
            Ok(0)
        }
    }
}

/// The container's volumes and binds: (target, host source, read-only),
/// parents before what is mounted below them.
fn binds(ctx: &Ctx, rec: &ctrstate::Record) -> Vec<(String, std::path::PathBuf, bool)> {
    let specs: Vec<crate::volumes::MountSpec> = rec
        .config
        .get("mounts")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let mut out: Vec<_> = specs
        .into_iter()
        .filter_map(|m| {
            let src = match m.kind.as_str() {
                "volume" => ctx.root.join("volumes").join(&m.source).join("_data"),
                "bind" => std::path::PathBuf::from(&m.source),
                _ => return None,
            };
            Some((m.target, src, m.readonly))
        })
        .collect();
    out.sort_by_key(|(t, _, _)| t.matches('/').count());
    out
}

/// See the module doc: this process's own mount namespace with the
/// container's volumes and binds over its rootfs. Nothing to do for a
/// container without any.
fn with_volumes(ctx: &Ctx, rec: &ctrstate::Record) -> Result<()> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use nix::mount::{mount, MsFlags};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let binds = binds(ctx, rec);
    if binds.is_empty() {
        return Ok(());
    }
    let err = |what: String| move |e: nix::errno::Errno| Error::Daemon(format!("cp: {what}: {e}"));
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(err("a mount namespace of its own".into()))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(err("make / a slave".into()))?;
    let dir = ctx.container_dir(&rec.id);
    let rootfs = dir.join("rootfs");
    let dev = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(&rootfs).is_none() || dev(&rootfs) == dev(&dir) {
        // Stopped: its rootfs, mounted in this namespace only.
        ctx.layerfs()
            .args(["mount", &rec.image_id, &rec.id])
            .output()?;
    }
    let root = nix::fcntl::open(
        &rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(err(format!("open {}", rootfs.display())))?;
    for (target, src, ro) in binds {
        let rel = target.trim_start_matches('/');
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let fd = match openat2(&root, if rel.is_empty() { "." } else { rel }, how) {
            Ok(fd) => fd,
            // Never started: nsrun makes mount points at the start.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(err(format!("open {target} in the container"))(e)),
        };
        let at = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        mount(Some(&src), at.as_str(), None::<&str>, flags, None::<&str>)
            .map_err(err(format!("bind {} on {target}", src.display())))?;
        if ro {
            // The new mount is the one at the path now, not the fd's.
            let fd = openat2(&root, rel, how).map_err(err(format!("open {target}")))?;
            let at = format!("/proc/self/fd/{}", fd.as_raw_fd());
            flags |= MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, at.as_str(), None::<&str>, flags, None::<&str>)
                .map_err(err(format!("read-only {target}")))?;
        }
    }
    Ok(())
}

/// `diff CONTAINER`: docker's `A /path`, `C /path`, `D /path` lines.
pub fn diff(ctx: &Ctx, container: &str) -> Result<i32> {
    let id = crate::records::get(ctx, container)?.id;
    let v = ctx
        .layerfs()
        .args(["diff", &id])
        .json()
        .map_err(|e| match e {
            Error::Tool { msg, .. } => Error::Daemon(msg),
            e => e,
        })?;
    for c in v.as_array().into_iter().flatten() {
        println!(
            "{} {}",
            c["kind"].as_str().unwrap_or("?"),
            c["path"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_like_docker() {
        assert_eq!(
            parse("c1:/etc/x"),
            End::Container("c1".into(), "/etc/x".into())
        );
        assert_eq!(parse("c1:tmp"), End::Container("c1".into(), "/tmp".into()));
        assert_eq!(parse("./a:b"), End::Local("./a:b".into()));
        assert_eq!(parse("/x:y"), End::Local("/x:y".into()));
        assert_eq!(parse("-"), End::Local("-".into()));
    }
}

//! The OCI runtime config (`config.json`) handed to nsrun: docker's defaults
//! (capabilities, masked and read-only paths, /dev, /proc, /sys, shm, mqueue)
//! plus the container's process, hostname and files.

use crate::error::{fail, Result};
use crate::runconfig::RunConfig;
use serde_json::{json, Value};
use std::path::Path;

/// docker's default capability set (nsrun's list: one source for both).
pub use nsrun::caps::DOCKER_DEFAULT as DEFAULT_CAPS;

const MASKED: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Numeric ids of the process user.
#[derive(Debug, PartialEq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional: Vec<u32>,
}

/// Resolves docker's `-u name|uid[:group|gid]` against the image's
/// /etc/passwd and /etc/group, opened with `openat2(RESOLVE_IN_ROOT)`:
/// symlinks (an `/etc` that links to an absolute path too) resolve inside
/// the rootfs, never to the host's files. Anything but a regular file
/// reads as empty; at most `MAX_DB` bytes are read.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<Ids> {
    let read = |p: &str| -> String { read_in_root(rootfs, p).unwrap_or_default() };
    if user.is_empty() {
        return Ok(Ids {
            uid: 0,
            gid: 0,
            additional: vec![],
        });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read("etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid, name) = match (u.parse::<u32>(), &entry) {
        (Ok(n), Some(f)) => (n, f[3].parse().unwrap_or(0), f[0].to_string()),
        (Ok(n), None) => (n, 0, String::new()),
        (Err(_), Some(f)) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
        ),
        (Err(_), None) => {
            return fail(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        }
    };
    let groups = read("etc/group");
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    crate::error::Error::Daemon(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let additional = if name.is_empty() {
        vec![]
    } else {
        groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|&n| n != gid)
            .collect()
    };
    Ok(Ids {
        uid,
        gid,
        additional,
    })
}

/// The most of /etc/passwd or /etc/group read (an image cannot make us
/// read without end).
const MAX_DB: u64 = 16 << 20;

/// The regular file `rel` under `rootfs`, every component resolved inside
/// it; None when missing, not a regular file or unreadable.
fn read_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::Mode;
    use std::io::Read;
    let root = open(
        rootfs,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // O_NONBLOCK: a FIFO planted as /etc/passwd must not block the open.
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&root, rel, how).ok()?;
    let f = std::fs::File::from(fd);
    if !f.metadata().ok()?.file_type().is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(MAX_DB).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Options of one container's config.json.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub cfg: &'a RunConfig,
    pub rootfs: &'a Path,
    pub hostname: &'a str,
    pub ids: Ids,
    /// Files written for the container: (source on the host, target inside).
    pub files: Vec<(String, String)>,
    /// A netns file to join, or None for a new empty network namespace.
    pub netns: Option<String>,
    /// Share the host's network namespace (`--network host`).
    pub host_network: bool,
    /// Volumes, binds and tmpfs as OCI mounts.
    pub extra_mounts: Vec<Value>,
}

pub fn build(i: &SpecInput) -> Result<Value> {
    let sec = &i.cfg.security;
    let caps = sec.caps();
    let seccomp = sec.seccomp(&caps)?;
    let (devices, device_rules) = sec.devices()?;
    let mut resources = match &i.cfg.resources {
        Value::Object(o) => Value::Object(o.clone()),
        _ => json!({}),
    };
    resources["devices"] = Value::Array(device_rules);
    let mut env = i.cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", i.hostname));
    }
    if i.cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(if i.ids.uid == 0 {
            "HOME=/root".into()
        } else {
            "HOME=/".into()
        });
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        if sec.privileged {
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev"]})
        } else {
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]})
        },
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": if sec.privileged { json!(["nosuid", "noexec", "nodev"]) } else { json!(["ro", "nosuid", "noexec", "nodev"]) }}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    let x = &i.cfg.extra;
    if x.ipc_host {
        // docker: the host's IPC namespace comes with the host's /dev/shm.
        mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]}));
    } else {
        let size = if x.shm_size > 0 { x.shm_size } else { 64 << 20 };
        mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={size}")]}));
    }
    if let Some(init) = &x.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }
    for (src, dst) in &i.files {
        mounts
            .push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    mounts.extend(i.extra_mounts.iter().cloned());
    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, host) in [
        ("pid", x.pid_host),
        ("ipc", x.ipc_host),
        ("uts", x.uts_host),
    ] {
        // `container:X`: X's namespace (`nsjoin::at_launch` found its path).
        if let Some(p) = x.ns_paths.get(kind) {
            namespaces.push(json!({"type": kind, "path": p}));
        } else if !host {
            namespaces.push(json!({"type": kind}));
        }
    }
    if sec.private_cgroupns() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    match (&i.netns, i.host_network) {
        _ if x.ns_paths.contains_key("network") => {
            namespaces.push(json!({"type": "network", "path": x.ns_paths["network"]}))
        }
        (_, true) => {}
        (Some(p), false) => namespaces.push(json!({"type": "network", "path": p})),
        (None, false) => namespaces.push(json!({"type": "network"})),
    }
    let cwd = if i.cfg.working_dir.is_empty() {
        "/"
    } else {
        &i.cfg.working_dir
    };
    let (masked, readonly): (&[&str], &[&str]) = if sec.privileged {
        (&[], &[])
    } else {
        (&MASKED, &READONLY)
    };
    let mut linux = json!({
        "cgroupsPath": sec.cgroups_path(i.id),
        "resources": resources,
        "devices": devices,
        "namespaces": namespaces,
        "maskedPaths": masked,
        "readonlyPaths": readonly
    });
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    if !x.sysctls.is_empty() {
        linux["sysctl"] = json!(x.sysctls);
    }
    let mut gids = i.ids.additional.clone();
    for g in group_ids(i.rootfs, &x.group_add)? {
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    let mut args = i.cfg.args();
    if x.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": i.cfg.tty,
            "user": {"uid": i.ids.uid, "gid": i.ids.gid, "additionalGids": gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": sec.no_new_privileges
        },
        "root": {"path": i.rootfs, "readonly": i.cfg.read_only},
        "hostname": i.hostname,
        "domainname": i.cfg.net.domainname,
        "mounts": mounts,
        "linux": linux
    });
    if !x.ulimits.is_empty() {
        spec["process"]["rlimits"] = json!(x.ulimits);
    }
    if let Some(n) = x.oom_score_adj {
        spec["process"]["oomScoreAdj"] = json!(n);
    }
    if !x.annotations.is_empty() {
        spec["annotations"] = json!(x.annotations);
    }
    if x.uts_host {
        // No uts namespace of its own: the host's name stays.
        spec.as_object_mut().unwrap().remove("hostname");
    }
    Ok(spec)
}

/// Where `--init` mounts the init binary, as docker does.
const INIT_PATH: &str = "/sbin/docker-init";

/// `--group-add` values as gids: numbers as they are, names from the
/// image's /etc/group (never the host's).
fn group_ids(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>> {
    let mut out = vec![];
    let db = if groups.iter().any(|g| g.parse::<u32>().is_err()) {
        read_in_root(rootfs, "etc/group").unwrap_or_default()
    } else {
        String::new()
    };
    for g in groups {
        if let Ok(n) = g.parse::<u32>() {
            out.push(n);
            continue;
        }
        let gid = db.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == g)
                .then(|| f[2].parse::<u32>().ok())
                .flatten()
        });
        match gid {
            Some(n) => out.push(n),
            None => {
                return crate::error::fail(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            }
        }
    }
    Ok(out)
}

/// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, files
/// in its dir bind-mounted into it, as docker writes them: the hosts file
/// holds the defaults, `--add-host` entries (`host-gateway`: the gateway of
/// its network, the host's address there), its own addresses with its
/// hostname (and `hostname.domainname`), then, on user-defined networks,
/// the other containers' names ([`crate::names`], which also registers
/// this one). Returns them as (source, target) bind mounts. resolv.conf: `--dns` or the host's resolvers (loopback ones
/// dropped), `--dns-search` and `--dns-option` replacing the host's.
pub fn write_etc_files(
    ctx: &crate::context::Ctx,
    dir: &Path,
    id: &str,
    hostname: &str,
    cfg: &RunConfig,
    network: &Value,
) -> Result<Vec<(String, String)>> {
    use crate::error::IoContext;
    let n = &cfg.net;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let gateway = network["Gateway"].as_str().filter(|g| !g.is_empty());
    for (name, addr) in &n.extra_hosts {
        let addr = if addr == "host-gateway" {
            gateway.unwrap_or("127.0.0.1")
        } else {
            addr
        };
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    let names = if n.domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{} {hostname}", n.domainname)
    };
    let own: Vec<&str> = ["IPAddress", "GlobalIPv6Address"]
        .iter()
        .filter_map(|k| network[*k].as_str().filter(|s| !s.is_empty()))
        .collect();
    if own.is_empty() {
        hosts.push_str(&format!("127.0.1.1\t{names}\n"));
    }
    for ip in &own {
        hosts.push_str(&format!("{ip}\t{names}\n"));
    }
    // The host's resolvers, minus loopback ones, which mean nothing inside.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = String::new();
    for l in host_resolv.lines() {
        let key = l.split_whitespace().next().unwrap_or("");
        let replaced = match key {
            "nameserver" => {
                !n.dns.is_empty()
                    || l.starts_with("nameserver 127.")
                    || l.starts_with("nameserver ::1")
            }
            "search" | "domain" => !n.dns_search.is_empty(),
            "options" => !n.dns_options.is_empty(),
            _ => false,
        };
        if !replaced {
            resolv.push_str(l);
            resolv.push('\n');
        }
    }
    for d in &n.dns {
        resolv.push_str(&format!("nameserver {d}\n"));
    }
    let search: Vec<&str> = n
        .dns_search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !n.dns_options.is_empty() {
        resolv.push_str(&format!("options {}\n", n.dns_options.join(" ")));
    }
    if !resolv.contains("nameserver") {
        resolv.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    let mut out = vec![];
    for (name, body) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, body).step(|| format!("write {}", p.display()))?;
        out.push((p.to_string_lossy().to_string(), format!("/etc/{name}")));
    }
    // On user-defined networks: register, and fill every hosts file there.
    let name = crate::records::peek(ctx, id)
        .map(|r| r.name)
        .unwrap_or_default();
    for (net, entry) in network["Networks"].as_object().into_iter().flatten() {
        if crate::names::named(net) {
            let ep = crate::network::name_endpoint(id, &name, &n.aliases, entry, ctx);
            crate::names::join(ctx, net, &ep)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_from_the_image() {
        let d = std::env::temp_dir().join(format!("spec-user-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/group"),
            "root:x:0:\nwww:x:34:\nextra:x:50:web\n",
        )
        .unwrap();
        assert_eq!(
            resolve_user(&d, "").unwrap(),
            Ids {
                uid: 0,
                gid: 0,
                additional: vec![]
            }
        );
        assert_eq!(
            resolve_user(&d, "web").unwrap(),
            Ids {
                uid: 33,
                gid: 34,
                additional: vec![50]
            }
        );
        assert_eq!(
            resolve_user(&d, "1000:www").unwrap(),
            Ids {
                uid: 1000,
                gid: 34,
                additional: vec![]
            }
        );
        assert!(resolve_user(&d, "nobody").is_err());
        assert!(resolve_user(&d, "web:nogroup").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn users_never_resolve_from_the_host() {
        let base = std::env::temp_dir().join(format!("spec-host-{}", std::process::id()));
        let host = base.join("host-etc");
        let root = base.join("rootfs");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(host.join("passwd"), "hostonly:x:4242:4242::/:/bin/sh\n").unwrap();
        std::fs::write(host.join("group"), "hostgrp:x:4343:hostonly\n").unwrap();
        // /etc -> an absolute host path: resolved inside the rootfs, where
        // it does not exist.
        std::os::unix::fs::symlink(&host, root.join("etc")).unwrap();
        assert!(resolve_user(&root, "hostonly").is_err());
        assert!(resolve_user(&root, "0:hostgrp").is_err());
        // A relative escape through `..` stays inside too.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../..".to_string() + host.to_str().unwrap(),
            root.join("etc"),
        )
        .unwrap();
        assert!(resolve_user(&root, "hostonly").is_err());
        // A link that stays inside is followed, as docker does.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/passwd"), "app:x:7:8::/:/bin/sh\n").unwrap();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/passwd", root.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(&root, "app").unwrap().uid, 7);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

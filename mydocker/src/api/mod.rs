//! `mydocker system service`: the Docker Engine REST API (v1.41) on a unix
//! socket, so the docker CLI and the Docker SDKs drive mydocker.
//!
//! The service holds no state of its own: reads go through the same
//! library calls as the CLI's (records, layerfs), and every action runs
//! the `mydocker` binary itself with the service's `--root` (`start`,
//! `stop`, `rm`, `load` ...), so the CLI and the API see the same
//! containers and stopping the service stops no container. The one thing
//! it keeps is in-flight: an attach waiting for its container's start
//! (docker's `run` attaches first), which then starts the container as a
//! `mydocker start -a` child whose output is relayed to the client, and
//! that child's exit code for `wait` (a `--rm` container's record is gone
//! by then).
//!
//! Exec instances are the other in-memory state (`exec`): the command runs
//! as a `mydocker exec` child of the service, on a pty the service holds
//! when it has a tty. Container endpoints beyond the lifecycle: `exec`,
//! `archive` (docker cp), `ctrops` (top, stats, pause, unpause, rename,
//! update, prune, resize).
//!
//! Served (each with or without a `/v1.NN` prefix):
//! - system: `GET|HEAD /_ping`, `GET /version`, `GET /info`,
//!   `GET /events` (since, until, filters; streamed), `GET /system/df`.
//! - containers: `GET /containers/json` (all, limit, filters; no `size`),
//!   `POST /containers/create`, `GET /containers/{id}/json`, `POST
//!   /containers/{id}/start|stop|kill|restart|wait|attach|resize|pause|
//!   unpause|rename|update`, `DELETE /containers/{id}` (force, v),
//!   `GET /containers/{id}/logs|top|stats`, `GET|HEAD|PUT
//!   /containers/{id}/archive`, `POST /containers/prune`.
//! - exec: `POST /containers/{id}/exec`, `POST /exec/{id}/start|resize`,
//!   `GET /exec/{id}/json`.
//! - images: `GET /images/json` (reference, dangling filters), `POST
//!   /images/load`, `POST /images/create` (answers that no registry is
//!   reachable, as docker does offline), `GET /images/{name}/json|history`,
//!   `POST /images/{name}/tag`, `DELETE /images/{name}`, `GET
//!   /images/{name}/get` and `GET /images/get` (save), `POST /images/prune`.
//! - networks: `GET /networks` (with docker's predefined `bridge`, `host`
//!   and `none`), `GET|DELETE /networks/{id}`, `POST /networks/create|
//!   prune`, `POST /networks/{id}/connect|disconnect`.
//! - volumes: `GET /volumes`, `GET|DELETE /volumes/{name}`, `POST
//!   /volumes/create|prune`.
//!
//! Not served (docker's 404 `page not found`): build (`/build`,
//! `/build/prune`, `/session`), `/commit`, `/containers/{id}/export`,
//! `/containers/{id}/changes`, `/containers/{id}/attach/ws`, image push
//! and search (`/images/{name}/push`, `/images/search`), `/auth`,
//! `/distribution/{name}/json`, swarm (`/swarm`, `/nodes`, `/services`,
//! `/tasks`, `/secrets`, `/configs`) and `/plugins`. Refused with a 400:
//! image import (`/images/create` with `fromSrc`), networks of a driver
//! other than the bridge, and create fields mydocker has no flag for.
//! Errors are docker's `{"message": ...}` with its status codes.

mod archive;
mod containers;
mod ctrops;
mod events;
mod exec;
mod filters;
mod http;
mod images;
mod networks;
mod stream;
mod system;
mod volumes;

use crate::context::Ctx;
use http::{Conn, Request};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API version whose behaviour is implemented (what `/_ping` advertises).
pub const API_VERSION: &str = "1.41";
/// The oldest version accepted in a `/vX.Y` prefix.
const MIN_API_VERSION: &str = "1.24";

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// Unix socket to listen on.
    #[arg(long, default_value = "/run/mydocker/docker.sock")]
    pub socket: PathBuf,
    /// Exit after this many seconds without a connection (0: never).
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// What the handlers share: the store and the in-flight attaches and exits.
pub struct Service {
    pub ctx: Ctx,
    pub attaches: Mutex<HashMap<String, stream::PendingAttach>>,
    /// Exit codes of the containers this service started attached, by id
    /// (None while running).
    pub exits: Mutex<HashMap<String, Option<i32>>>,
    /// Exec instances by id (docker keeps them in its daemon's memory too).
    pub execs: Mutex<HashMap<String, Arc<exec::ExecInst>>>,
    active: AtomicUsize,
    last_seen: Mutex<Instant>,
}

/// An error answer: docker's status code and message.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// A mydocker error (library or CLI child) with the status docker
    /// would give for the same failure, judged by its message.
    pub fn from_message(message: impl Into<String>) -> ApiError {
        let message: String = message.into();
        let m = message.to_ascii_lowercase();
        let status = if m.contains("no such container")
            || m.contains("no such image")
            || m.contains("unable to find image")
            || m.contains("not found")
        {
            404
        } else if m.contains("already in use")
            || m.contains("is running")
            || m.contains("is not running")
            || m.contains("is paused")
            || m.contains("conflict")
        {
            409
        } else if m.contains("invalid") || m.contains("must ") || m.contains("bad ") {
            400
        } else {
            500
        };
        ApiError { status, message }
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> ApiError {
        ApiError::from_message(e.to_string())
    }
}

/// Serves until the idle timeout; returns the exit code.
pub fn serve(ctx: Ctx, a: &ServiceArgs) -> crate::error::Result<i32> {
    if !nix::unistd::geteuid().is_root() {
        return crate::error::fail("system service: needs root");
    }
    let listener = bind(&a.socket).map_err(|e| {
        crate::error::Error::Daemon(format!("--socket {}: {e}", a.socket.display()))
    })?;
    let svc = Arc::new(Service {
        ctx,
        attaches: Mutex::new(HashMap::new()),
        exits: Mutex::new(HashMap::new()),
        execs: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        last_seen: Mutex::new(Instant::now()),
    });
    eprintln!(
        "mydocker: serving the Docker Engine API {API_VERSION} on unix://{}",
        a.socket.display()
    );
    if a.timeout > 0 {
        let (svc, sock, limit) = (
            svc.clone(),
            a.socket.clone(),
            Duration::from_secs(a.timeout),
        );
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let idle = svc.active.load(Ordering::SeqCst) == 0
                && svc.attaches.lock().unwrap().is_empty()
                && svc.last_seen.lock().unwrap().elapsed() >= limit;
            let running_children = svc.exits.lock().unwrap().values().any(|c| c.is_none());
            if idle && !running_children {
                let _ = std::fs::remove_file(&sock);
                eprintln!(
                    "mydocker: no client for {}s: service exits",
                    limit.as_secs()
                );
                std::process::exit(0);
            }
        });
    }
    for s in listener.incoming() {
        let Ok(s) = s else { continue };
        let svc = svc.clone();
        svc.active.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            connection(&svc, s);
            *svc.last_seen.lock().unwrap() = Instant::now();
            svc.active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(0)
}

/// Binds the socket 0660 root:root; a stale socket file is replaced, a
/// live one (another service answering) is an error.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !m.file_type().is_socket() {
            return Err(std::io::Error::other("exists and is not a socket"));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::other("another service is listening there"));
        }
        std::fs::remove_file(path)?;
    }
    // Made under a umask that keeps it private until the mode is set.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = l?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    nix::unistd::chown(path, Some(0.into()), Some(0.into()))?;
    Ok(l)
}

fn connection(svc: &Arc<Service>, s: UnixStream) {
    let Ok(mut conn) = Conn::new(s) else { return };
    while !conn.closed {
        let mut req = match conn.next_request() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = send_error(&mut conn, false, &ApiError::new(400, e.to_string()));
                return;
            }
        };
        *svc.last_seen.lock().unwrap() = Instant::now();
        let head = req.method == "HEAD";
        let close = req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        if let Err(e) = route(svc, &mut conn, &mut req) {
            if send_error(&mut conn, head, &e).is_err() {
                return;
            }
        }
        if !conn.closed {
            conn.finish_request(&mut req);
        }
        if close {
            return;
        }
    }
}

fn send_error(conn: &mut Conn, head: bool, e: &ApiError) -> std::io::Result<()> {
    let body = json!({ "message": e.message }).to_string();
    conn.respond(
        head,
        e.status,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// Sends `v` as a JSON answer.
pub fn send_json(conn: &mut Conn, status: u16, v: &Value) -> ApiResult<()> {
    conn.respond(
        false,
        status,
        &[("Content-Type", "application/json")],
        v.to_string().as_bytes(),
    )
    .map_err(|e| {
        conn.closed = true;
        ApiError::new(500, e.to_string())
    })
}

/// An empty answer (204, 304).
pub fn send_empty(conn: &mut Conn, status: u16) -> ApiResult<()> {
    conn.respond(false, status, &[], b"").map_err(|e| {
        conn.closed = true;
        ApiError::new(500, e.to_string())
    })
}

/// Strips a `/vX.Y` prefix, refusing versions outside what is served.
fn strip_version(path: &str) -> ApiResult<&str> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(v) = parse_version(ver) else {
        return Ok(path);
    };
    if v > parse_version(API_VERSION).unwrap() {
        return Err(ApiError::new(
            400,
            format!(
                "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
            ),
        ));
    }
    if v < parse_version(MIN_API_VERSION).unwrap() {
        return Err(ApiError::new(
            400,
            format!("client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
        ));
    }
    Ok(if tail.is_empty() { "/" } else { tail })
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn route(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request) -> ApiResult<()> {
    let full = req.path.clone();
    let path = strip_version(&full)?;
    let m = req.method.clone();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // A command that reads the store settles crashed records first, as the CLI does.
    if path != "/_ping" {
        crate::records::reconcile(&svc.ctx);
    }
    match (m.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => {
            let headers = [
                ("API-Version", API_VERSION),
                ("OSType", "linux"),
                ("Docker-Experimental", "false"),
                ("Cache-Control", "no-cache, no-store, must-revalidate"),
                ("Pragma", "no-cache"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ];
            conn.respond(m == "HEAD", 200, &headers, b"OK")
                .map_err(|e| ApiError::new(500, e.to_string()))
        }
        ("GET", ["version"]) => send_json(conn, 200, &version()),
        ("GET", ["events"]) => events::events(svc, conn, req),
        ("GET", ["info"]) => send_json(conn, 200, &info(&svc.ctx)),
        ("GET", ["containers", "json"]) => containers::list(svc, conn, req),
        ("POST", ["containers", "create"]) => containers::create(svc, conn, req),
        ("GET", ["containers", id, "json"]) => containers::inspect(svc, conn, id),
        ("POST", ["containers", id, "start"]) => containers::start(svc, conn, id),
        ("POST", ["containers", id, "wait"]) => containers::wait(svc, conn, req, id),
        ("POST", ["containers", id, "stop"]) => containers::stop(svc, conn, req, id),
        ("POST", ["containers", id, "kill"]) => containers::kill(svc, conn, req, id),
        ("POST", ["containers", id, "restart"]) => containers::restart(svc, conn, req, id),
        ("DELETE", ["containers", id]) => containers::remove(svc, conn, req, id),
        ("GET", ["containers", id, "logs"]) => stream::logs(svc, conn, req, id),
        ("POST", ["containers", id, "attach"]) => stream::attach(svc, conn, req, id),
        // apictr: exec, archive, top, stats, pause, rename, update, prune, resize
        ("POST", ["containers", "prune"]) => ctrops::prune(svc, conn, req),
        ("POST", ["containers", id, "exec"]) => exec::create(svc, conn, req, id),
        ("POST", ["exec", id, "start"]) => exec::start(svc, conn, req, id),
        ("GET", ["exec", id, "json"]) => exec::inspect(svc, conn, id),
        ("POST", ["exec", id, "resize"]) => exec::resize(svc, conn, req, id),
        ("GET", ["containers", id, "archive"]) => archive::get(svc, conn, req, id),
        ("HEAD", ["containers", id, "archive"]) => archive::head(svc, conn, req, id),
        ("PUT", ["containers", id, "archive"]) => archive::put(svc, conn, req, id),
        ("GET", ["containers", id, "top"]) => ctrops::top(svc, conn, req, id),
        ("GET", ["containers", id, "stats"]) => ctrops::stats(svc, conn, req, id),
        ("POST", ["containers", id, "pause"]) => ctrops::pause(svc, conn, id, true),
        ("POST", ["containers", id, "unpause"]) => ctrops::pause(svc, conn, id, false),
        ("POST", ["containers", id, "rename"]) => ctrops::rename(svc, conn, req, id),
        ("POST", ["containers", id, "update"]) => ctrops::update(svc, conn, req, id),
        ("POST", ["containers", id, "resize"]) => ctrops::resize(svc, conn, req, id),
        ("GET", ["images", "json"]) => images::list(svc, conn, req),
        ("POST", ["images", "load"]) => images::load(svc, conn, req),
        ("POST", ["images", "create"]) => images::pull(req),
        ("GET", ["images", rest @ .., "json"]) if !rest.is_empty() => {
            images::inspect(svc, conn, &rest.join("/"))
        }
        // Images (history, tag, rm, save, prune), networks, volumes, system df.
        ("GET", ["images", "get"]) => {
            let names: Vec<String> = (req.query_all.iter())
                .filter(|(k, _)| k == "names")
                .map(|(_, v)| v.clone())
                .collect();
            images::save(svc, conn, &names)
        }
        ("POST", ["images", "prune"]) => images::prune(svc, conn, req),
        ("GET", ["images", rest @ .., "history"]) if !rest.is_empty() => {
            images::history(svc, conn, &rest.join("/"))
        }
        ("GET", ["images", rest @ .., "get"]) if !rest.is_empty() => {
            images::save(svc, conn, &[rest.join("/")])
        }
        ("POST", ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            images::tag(svc, conn, req, &rest.join("/"))
        }
        ("DELETE", ["images", rest @ ..]) if !rest.is_empty() => {
            images::remove(svc, conn, req, &rest.join("/"))
        }
        ("GET", ["networks"]) => networks::list(svc, conn, req),
        ("POST", ["networks", "create"]) => networks::create(svc, conn, req),
        ("POST", ["networks", "prune"]) => networks::prune(svc, conn, req),
        ("GET", ["networks", id]) => networks::inspect(svc, conn, id),
        ("DELETE", ["networks", id]) => networks::remove(svc, conn, id),
        ("POST", ["networks", id, "connect"]) => networks::connect(svc, conn, req, id),
        ("POST", ["networks", id, "disconnect"]) => networks::disconnect(svc, conn, req, id),
        ("GET", ["volumes"]) => volumes::list(svc, conn, req),
        ("POST", ["volumes", "create"]) => volumes::create(svc, conn, req),
        ("POST", ["volumes", "prune"]) => volumes::prune(svc, conn, req),
        ("GET", ["volumes", name]) => volumes::inspect(svc, conn, name),
        ("DELETE", ["volumes", name]) => volumes::remove(svc, conn, req, name),
        ("GET", ["system", "df"]) => system::df(svc, conn),
        _ => Err(ApiError::new(
            404,
            format!("page not found: {} {}", req.method, full),
        )),
    }
}

fn version() -> Value {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let ver = env!("CARGO_PKG_VERSION");
    json!({
        "Platform": {"Name": "mydocker"},
        "Components": [{
            "Name": "Engine",
            "Version": ver,
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": "amd64", "KernelVersion": kernel}
        }],
        "Version": ver,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

fn info(ctx: &Ctx) -> Value {
    let recs = crate::records::list(ctx).unwrap_or_default();
    use ctrstate::record::Status;
    let count = |s: Status| recs.iter().filter(|r| r.status == s).count();
    let images = ctx
        .layerfs()
        .arg("images")
        .json()
        .ok()
        .and_then(|v| v.as_array().map(|a| a.len()))
        .unwrap_or(0);
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    json!({
        "ID": "mydocker",
        "Containers": recs.len(),
        "ContainersRunning": count(Status::Running),
        "ContainersPaused": count(Status::Paused),
        "ContainersStopped": recs.len() - count(Status::Running) - count(Status::Paused),
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [],
        "DockerRootDir": ctx.root,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "OomKillDisable": false,
        "IPv4Forwarding": true,
        "Debug": false,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if v2 { "2" } else { "1" },
        "KernelVersion": field(|u| u.release()),
        "OperatingSystem": "mydocker",
        "OSType": "linux",
        "Architecture": field(|u| u.machine()),
        "NCPU": ncpu,
        "MemTotal": mem,
        "Name": field(|u| u.nodename()),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"nsrun": {"path": "nsrun"}},
        "DefaultRuntime": "nsrun",
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Labels": [],
        "Warnings": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(strip_version("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
        assert_eq!(strip_version("/v1.47/info").unwrap_err().status, 400);
        assert_eq!(strip_version("/v1.12/info").unwrap_err().status, 400);
    }

    #[test]
    fn errors_get_dockers_status() {
        assert_eq!(ApiError::from_message("no such container: x").status, 404);
        assert_eq!(
            ApiError::from_message("name \"x\" is already in use by container 1").status,
            409
        );
        assert_eq!(ApiError::from_message("disk on fire").status, 500);
    }
}

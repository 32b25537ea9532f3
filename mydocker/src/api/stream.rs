//! Output streams: `logs` (from the json-file log, `follow` polling it as
//! `mydocker logs -f` does) and `attach` (a hijacked connection). Without a
//! tty both carry docker's multiplexed frames: an 8-byte header (stream 1
//! stdout or 2 stderr, three zero bytes, the payload's length big-endian)
//! before each payload; with a tty the raw bytes.

use super::containers::{mydocker, resolve};
use super::http::{Conn, Request};
use super::{ApiError, ApiResult, Service};
use crate::logfile::Entry;
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A client attached to a container that has not started yet: `start`
/// takes it and runs the container for it.
pub struct PendingAttach {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// One frame of docker's multiplexed stream.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

fn is_tty(r: &Record) -> bool {
    r.config
        .get("tty")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn running(r: &Record) -> bool {
    matches!(r.status, Status::Running | Status::Paused)
}

/// Bytes of one log entry as the client gets them.
fn encode(e: &Entry, tty: bool, timestamps: bool, out: bool, err: bool) -> Option<Vec<u8>> {
    let stream = if e.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !out) || (stream == 2 && !err) {
        return None;
    }
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    Some(if tty {
        text.into_bytes()
    } else {
        frame(stream, text.as_bytes())
    })
}

/// `GET /containers/{id}/logs?stdout&stderr&follow&tail&timestamps`.
pub fn logs(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let (out, err) = (req.flag("stdout"), req.flag("stderr"));
    if !out && !err {
        return Err(ApiError::new(
            400,
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match req.q("tail") {
        None | Some("all") | Some("") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::new(400, format!("invalid value for tail: {n}")))?,
        ),
    };
    let cfg: RunConfig =
        serde_json::from_value(Value::Object(rec.config.clone())).unwrap_or_default();
    if !cfg.log_config.enabled() {
        return Err(ApiError::new(
            501,
            "configured logging driver does not support reading",
        ));
    }
    let (tty, ts, follow) = (is_tty(&rec), req.flag("timestamps"), req.flag("follow"));
    let path = svc
        .ctx
        .container_dir(&rec.id)
        .join(format!("{}-json.log", rec.id));
    // Opened before reading so that what follows is the same file.
    let file = std::fs::File::open(&path).ok();
    let peer = conn
        .writer
        .try_clone()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let entries =
        crate::logfile::read_entries(&path).map_err(|e| ApiError::new(500, e.to_string()))?;
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut body = conn
        .start_chunked(200, ctype)
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let skip = tail.map(|n| entries.len().saturating_sub(n)).unwrap_or(0);
    for e in &entries[skip..] {
        if let Some(b) = encode(e, tty, ts, out, err) {
            if body.send(&b).is_err() {
                return Ok(());
            }
        }
    }
    if follow {
        if let Some(mut f) = file {
            let _ = f.seek(SeekFrom::End(0));
            let mut send = |e: &Entry| match encode(e, tty, ts, out, err) {
                Some(b) => body.send(&b).is_ok(),
                None => true,
            };
            follow_log(svc, &rec.id, &peer, f, &mut send);
        }
    }
    let _ = body.finish();
    Ok(())
}

/// Sends what is appended to the log until the container stops or the
/// client leaves (`send` fails or its side is closed).
fn follow_log(
    svc: &Service,
    id: &str,
    peer: &UnixStream,
    f: std::fs::File,
    send: &mut dyn FnMut(&Entry) -> bool,
) {
    let mut reader = BufReader::new(f);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                if super::http::peer_gone(peer) {
                    return;
                }
                let live = crate::records::peek(&svc.ctx, id).is_some_and(|r| running(&r));
                if !live {
                    // The last lines land just before the exit is recorded.
                    let mut rest = String::new();
                    while reader.read_line(&mut rest).unwrap_or(0) > 0 {
                        if let Ok(e) = serde_json::from_str::<Entry>(&rest) {
                            if !send(&e) {
                                return;
                            }
                        }
                        rest.clear();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(_) if line.ends_with('\n') => {
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    if !send(&e) {
                        return;
                    }
                }
            }
            Ok(_) => {
                // A torn line: read it again once whole.
                let pos = reader.stream_position().unwrap_or(0) - line.len() as u64;
                std::thread::sleep(Duration::from_millis(20));
                let _ = reader.seek(SeekFrom::Start(pos));
            }
            Err(_) => return,
        }
    }
}

/// `POST /containers/{id}/attach?stream&stdin&stdout&stderr`: hijacks the
/// connection. A container not running yet is run by its `start` for this
/// client (see `start_attached`); a running one's output is followed from
/// its log (stdin then goes nowhere: its supervisor holds the pipe).
pub fn attach(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let (out, err) = (req.flag("stdout"), req.flag("stderr"));
    let stdin = req.flag("stdin");
    conn.hijack(req.wants_upgrade())
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    if !running(&rec) {
        let reader = std::mem::replace(
            &mut conn.reader,
            BufReader::new(
                conn.writer
                    .try_clone()
                    .map_err(|e| ApiError::new(500, e.to_string()))?,
            ),
        );
        let writer = conn
            .writer
            .try_clone()
            .map_err(|e| ApiError::new(500, e.to_string()))?;
        svc.attaches.lock().unwrap().insert(
            rec.id.clone(),
            PendingAttach {
                reader,
                writer,
                stdin,
                stdout: out,
                stderr: err,
            },
        );
        return Ok(());
    }
    let tty = is_tty(&rec);
    let path = svc
        .ctx
        .container_dir(&rec.id)
        .join(format!("{}-json.log", rec.id));
    if let Ok(mut f) = std::fs::File::open(&path) {
        let _ = f.seek(SeekFrom::End(0));
        let mut w = conn
            .writer
            .try_clone()
            .map_err(|e| ApiError::new(500, e.to_string()))?;
        let mut send = |e: &Entry| match encode(e, tty, false, out, err) {
            Some(b) => w.write_all(&b).is_ok(),
            None => true,
        };
        follow_log(svc, &rec.id, &conn.writer, f, &mut send);
    }
    let _ = conn.writer.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Starts `rec` as a `mydocker start -a` child for the attached client:
/// its output relayed to the client (framed unless a tty), the client's
/// stdin to it when both asked for it, its exit code kept for `wait`.
/// Returns once the container runs (or has already run) or its start failed.
pub fn start_attached(svc: &Arc<Service>, rec: &Record, p: PendingAttach) -> ApiResult<()> {
    let cfg: RunConfig =
        serde_json::from_value(Value::Object(rec.config.clone())).unwrap_or_default();
    let tty = cfg.tty;
    let feed = p.stdin && cfg.open_stdin;
    let mut cmd = mydocker(svc);
    cmd.args(["start", "--attach", &rec.id])
        .stdin(if feed { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a signal meant for the service's group
        // must not reach the container's supervisor.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::new(500, format!("run mydocker start: {e}")))?;
    let id = rec.id.clone();
    svc.exits.lock().unwrap().insert(id.clone(), None);
    let w = Arc::new(Mutex::new(p.writer));
    // Nothing reaches the client before the start is judged: a launch
    // that failed is the start's error (docker's), not also output.
    let gate = Gate::new();
    let mut relays = vec![];
    for (src, stream, wanted) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            1u8,
            p.stdout,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            2u8,
            p.stderr,
        ),
    ] {
        let Some(mut src) = src else { continue };
        let (w, gate) = (w.clone(), gate.clone());
        relays.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            let mut client_gone = false;
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Read to the end even when nobody listens: the child must not block.
                if !wanted || client_gone || !gate.wait() {
                    continue;
                }
                let data = if tty {
                    buf[..n].to_vec()
                } else {
                    frame(stream, &buf[..n])
                };
                client_gone = w.lock().unwrap().write_all(&data).is_err();
            }
        }));
    }
    if let Some(to_child) = child.stdin.take() {
        // The container's stdin closes when it exits (docker's does): a
        // `start -a` on a tty would otherwise wait for the client's EOF.
        let slot = Arc::new(Mutex::new(Some(to_child)));
        let mut from_client = p.reader;
        let feed = slot.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = from_client.read(&mut buf).unwrap_or(0);
                let mut to = feed.lock().unwrap();
                match (n, to.as_mut()) {
                    (0, _) | (_, None) => break,
                    (n, Some(w)) => {
                        if w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            feed.lock().unwrap().take();
        });
        let (svc, id, before) = (svc.clone(), rec.id.clone(), rec.started_at.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            if slot.lock().unwrap().is_none() {
                return;
            }
            let ended = match crate::records::peek(&svc.ctx, &id) {
                None => true,
                Some(n) => !running(&n) && n.status != Status::Created && n.started_at != before,
            };
            if ended || matches!(svc.exits.lock().unwrap().get(&id), Some(Some(_))) {
                slot.lock().unwrap().take();
                return;
            }
        });
    }
    let child = Arc::new(Mutex::new(child));
    {
        let (svc, child, w) = (svc.clone(), child.clone(), w.clone());
        std::thread::spawn(move || {
            // The exit first: the relays hold output until the start is
            // judged, and a failed launch is judged by this exit.
            let status = child.lock().unwrap().wait();
            let code = status.ok().and_then(|s| s.code()).unwrap_or(255);
            svc.exits.lock().unwrap().insert(id, Some(code));
            for r in relays {
                let _ = r.join();
            }
            let _ = w.lock().unwrap().shutdown(std::net::Shutdown::Both);
        });
    }
    // Docker answers start once the container runs; a launch that failed
    // (the child gone, the record never started, its error kept) is the
    // start's error.
    let before = rec.started_at.clone();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < until {
        let now = crate::records::peek(&svc.ctx, &rec.id);
        let started = now
            .as_ref()
            .is_none_or(|n| n.status != Status::Created && n.started_at != before);
        if started {
            break;
        }
        if matches!(svc.exits.lock().unwrap().get(&rec.id), Some(Some(_))) {
            let err = now.and_then(|n| n.error).filter(|e| !e.is_empty());
            gate.open(err.is_none());
            return match err {
                Some(e) => Err(ApiError::from_message(e)),
                None => Ok(()),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gate.open(true);
    Ok(())
}

/// Whether the relays may pass output on: undecided, then open or shut.
#[derive(Clone)]
struct Gate(Arc<(Mutex<Option<bool>>, std::sync::Condvar)>);

impl Gate {
    fn new() -> Gate {
        Gate(Arc::new((Mutex::new(None), std::sync::Condvar::new())))
    }
    fn open(&self, pass: bool) {
        *self.0 .0.lock().unwrap() = Some(pass);
        self.0 .1.notify_all();
    }
    /// Blocks until decided; true to pass.
    fn wait(&self) -> bool {
        let g = self.0 .0.lock().unwrap();
        let g = self.0 .1.wait_while(g, |d| d.is_none()).unwrap();
        g.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_have_dockers_header() {
        assert_eq!(
            super::frame(2, b"hi\n"),
            vec![2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
    }
}

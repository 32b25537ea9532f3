//! `/containers/{id}/archive?path=`: GET (the path as a tar), HEAD (its
//! stat only) and PUT (a tar extracted into a directory), what `docker cp`
//! calls both ways. layerfs does the work as for `mydocker cp` (`cp-out`,
//! `cp-in --dir-only`, paths resolved inside the rootfs); the stat in
//! `X-Docker-Container-Path-Stat` is read from the archive's first header,
//! so a HEAD packs no more than that.

use super::containers::resolve;
use super::http::{Conn, Request};
use super::{ApiError, ApiResult, Service};
use ctrstate::record::Record;
use serde_json::json;
use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::Arc;

const BLOCK: usize = 512;

/// What docker's clients read of a path: its `types.ContainerPathStat`.
#[derive(Debug, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode` bits (the CLI tests `IsDir` and `ModeSymlink`).
    pub mode: u32,
    pub mtime: u64,
    pub link_target: String,
}

impl PathStat {
    /// The header value: the stat as base64 JSON.
    fn header(&self) -> String {
        let mtime = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.mtime),
        );
        let v = json!({
            "name": self.name, "size": self.size, "mode": self.mode,
            "mtime": mtime.to_string(), "linkTarget": self.link_target,
        });
        base64(v.to_string().as_bytes())
    }
}

fn container_path(req: &Request) -> ApiResult<String> {
    match req.q("path") {
        None | Some("") => Err(ApiError::new(400, "path cannot be empty")),
        Some(p) if p.starts_with('/') => Ok(p.to_string()),
        Some(p) => Ok(format!("/{p}")),
    }
}

/// `layerfs cp-out` for `path` (or `tar-host` of the container's own copy
/// of a file bind-mounted over the rootfs), its tar on a pipe.
fn pack(svc: &Service, rec: &Record, path: &str) -> ApiResult<Child> {
    let ctx = &svc.ctx;
    let norm = path.trim_end_matches('/');
    let own = ctx
        .container_dir(&rec.id)
        .join(norm.trim_start_matches("/etc/"));
    let bound =
        ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].contains(&norm) && own.is_file();
    let call = if bound {
        ctx.layerfs().arg("tar-host").arg(&own)
    } else {
        ctx.layerfs().args(["cp-out", &rec.id, path])
    };
    call.command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::new(500, format!("run layerfs: {e}")))
}

/// Reads the child's tar up to its first real entry: the stat and the
/// bytes read so far. A child that fails first is the 404 (or its error).
fn first_entry(child: &mut Child, path: &str, r: &str) -> ApiResult<(PathStat, Vec<u8>)> {
    let out = child.stdout.as_mut().expect("piped");
    let mut read = Vec::new();
    let stat = parse_first(out, &mut read, path);
    match stat {
        Some(s) => Ok((s, read)),
        None => {
            let _ = child.kill();
            let mut err = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_end(&mut err);
            }
            let _ = child.wait();
            let msg = crate::tools::tool_error("layerfs", &err);
            if msg.contains("Could not find") || msg.contains("No such") || err.is_empty() {
                Err(ApiError::new(
                    404,
                    format!("Could not find the file {path} in container {r}"),
                ))
            } else {
                Err(ApiError::from_message(msg))
            }
        }
    }
}

/// The stat of the archive's first entry (PAX and GNU long-name headers
/// applied), every byte read kept in `read`.
fn parse_first(r: &mut impl Read, read: &mut Vec<u8>, path: &str) -> Option<PathStat> {
    let mut long_link: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    let mut pax_mtime: Option<u64> = None;
    loop {
        let mut h = [0u8; BLOCK];
        r.read_exact(&mut h).ok()?;
        read.extend_from_slice(&h);
        if h.iter().all(|b| *b == 0) {
            return None;
        }
        let size = number(&h[124..136])?;
        let kind = h[156];
        if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            let padded = (size as usize).div_ceil(BLOCK) * BLOCK;
            let mut data = vec![0u8; padded];
            r.read_exact(&mut data).ok()?;
            read.extend_from_slice(&data);
            let data = &data[..size as usize];
            match kind {
                b'x' => {
                    for (k, v) in pax_records(data) {
                        match k.as_str() {
                            "linkpath" => long_link = Some(v),
                            "size" => pax_size = v.parse().ok(),
                            "mtime" => pax_mtime = v.split('.').next()?.parse().ok(),
                            _ => {}
                        }
                    }
                }
                b'K' => long_link = Some(cstr(data)),
                _ => {}
            }
            continue;
        }
        let mode = number(&h[100..108])? as u32;
        let link = long_link.unwrap_or_else(|| cstr(&h[157..257]));
        let name = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("/")
            .to_string();
        let link_target = if kind == b'2' {
            if link.starts_with('/') {
                link
            } else {
                let parent = path.trim_end_matches('/').rsplit_once('/').map(|p| p.0);
                format!("{}/{link}", parent.unwrap_or(""))
            }
        } else {
            String::new()
        };
        return Some(PathStat {
            name,
            size: pax_size.unwrap_or(size),
            mode: go_mode(mode, kind),
            mtime: pax_mtime.unwrap_or(number(&h[136..148]).unwrap_or(0)),
            link_target,
        });
    }
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A tar numeric field: octal text, or base-256 when the high bit is set.
fn number(b: &[u8]) -> Option<u64> {
    if b[0] & 0x80 != 0 {
        return Some(
            b[1..]
                .iter()
                .fold((b[0] & 0x7f) as u64, |n, c| (n << 8) | *c as u64),
        );
    }
    let s = cstr(b);
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// PAX records: `LEN KEY=VALUE\n`.
fn pax_records(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = vec![];
    while let Some(sp) = d.iter().position(|c| *c == b' ') {
        let Some(len) = std::str::from_utf8(&d[..sp])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > d.len() {
            break;
        }
        let rec = String::from_utf8_lossy(&d[sp + 1..len - 1]).into_owned();
        if let Some((k, v)) = rec.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        d = &d[len..];
    }
    out
}

/// A tar mode and type flag as Go's `os.FileMode`.
fn go_mode(mode: u32, kind: u8) -> u32 {
    let mut m = mode & 0o777;
    m |= match kind {
        b'5' => 1 << 31,
        b'2' => 1 << 27,
        b'3' => (1 << 26) | (1 << 21),
        b'4' => 1 << 26,
        b'6' => 1 << 25,
        _ => 0,
    };
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The stat of `path` in the container (the packing stopped after it).
fn stat(svc: &Service, rec: &Record, path: &str, r: &str) -> ApiResult<PathStat> {
    let mut child = pack(svc, rec, path)?;
    let res = first_entry(&mut child, path, r);
    let _ = child.kill();
    let _ = child.wait();
    res.map(|(s, _)| s)
}

/// `HEAD /containers/{id}/archive?path=`.
pub fn head(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let path = container_path(req)?;
    let s = stat(svc, &rec, &path, r)?;
    conn.respond(
        true,
        200,
        &[
            ("Content-Type", "application/json"),
            ("X-Docker-Container-Path-Stat", &s.header()),
        ],
        b"",
    )
    .map_err(|e| ApiError::new(500, e.to_string()))
}

/// `GET /containers/{id}/archive?path=`: the tar, streamed as layerfs packs it.
pub fn get(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let path = container_path(req)?;
    let mut child = pack(svc, &rec, &path)?;
    let (s, first) = match first_entry(&mut child, &path, r) {
        Ok(x) => x,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let stat = s.header();
    let mut out = match conn.start_chunked_with(
        200,
        &[
            ("Content-Type", "application/x-tar"),
            ("X-Docker-Container-Path-Stat", &stat),
        ],
    ) {
        Ok(o) => o,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ApiError::new(500, e.to_string()));
        }
    };
    let mut ok = out.send(&first).is_ok();
    let mut src = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 64 * 1024];
    while ok {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => ok = out.send(&buf[..n]).is_ok(),
        }
    }
    drop(src);
    if !ok {
        // The client left: nothing more to pack.
        let _ = child.kill();
    }
    let status = child.wait();
    if ok && status.is_ok_and(|s| s.success()) {
        let _ = out.finish();
    }
    // A failure half-way cannot change the status sent: the connection
    // ends without the last chunk, which the client sees as a broken tar.
    Ok(())
}

/// `PUT /containers/{id}/archive?path=`: the tar body extracted into the
/// directory `path` (`cp-in --dir-only`).
pub fn put(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let path = container_path(req)?;
    let cfg: crate::runconfig::RunConfig =
        serde_json::from_value(serde_json::Value::Object(rec.config.clone())).unwrap_or_default();
    if cfg.read_only {
        return Err(ApiError::new(403, "container rootfs is marked read-only"));
    }
    let s = stat(svc, &rec, &path, r)?;
    if s.mode & (1 << 31) == 0 {
        return Err(ApiError::new(400, "extraction point is not a directory"));
    }
    let mut child = svc
        .ctx
        .layerfs()
        .args(["cp-in", &rec.id, &path, "--dir-only"])
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::new(500, format!("run layerfs: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let copied = std::io::copy(&mut conn.body(req), &mut stdin);
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| ApiError::new(500, format!("layerfs cp-in: {e}")))?;
    if !out.status.success() {
        let msg = crate::tools::tool_error("layerfs", &out.stderr);
        return Err(match copied {
            Err(e) => ApiError::new(400, format!("read the archive: {e}")),
            Ok(_) => ApiError::new(400, msg.replace(&rec.id, r)),
        });
    }
    if let Err(e) = copied {
        return Err(ApiError::new(400, format!("read the archive: {e}")));
    }
    super::send_empty(conn, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, mode: u32, size: u64, kind: u8, link: &str) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(format!("{:011o}", 1_700_000_000u64).as_bytes());
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h
    }

    #[test]
    fn stat_comes_from_the_first_entry() {
        let mut tar = header("etc", 0o755, 0, b'5', "");
        tar.extend(header("etc/a", 0o644, 3, b'0', ""));
        let mut read = vec![];
        let s = parse_first(&mut tar.as_slice(), &mut read, "/etc/").unwrap();
        assert_eq!(s.name, "etc");
        assert_eq!(s.mode, 0o755 | 1 << 31);
        assert_eq!(s.mtime, 1_700_000_000);
        assert_eq!(read.len(), BLOCK);

        // A PAX header first (a long link), then the symlink.
        let rec = "19 linkpath=../x/y\n";
        let mut tar = header("././@PaxHeader", 0o644, rec.len() as u64, b'x', "");
        let mut data = rec.as_bytes().to_vec();
        data.resize(BLOCK, 0);
        tar.extend(data);
        tar.extend(header("l", 0o777, 0, b'2', "short"));
        let s = parse_first(&mut tar.as_slice(), &mut vec![], "/a/l").unwrap();
        assert_eq!(s.link_target, "/a/../x/y");
        assert_eq!(s.mode, 0o777 | 1 << 27);
        assert!(parse_first(&mut [0u8; BLOCK].as_slice(), &mut vec![], "/x").is_none());
    }

    #[test]
    fn base64_and_numbers() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
        assert_eq!(base64(b"h"), "aA==");
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(go_mode(0o4755, b'0'), 0o755 | 1 << 23);
    }
}

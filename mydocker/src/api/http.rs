//! A small HTTP/1.1 server side for one unix-socket connection: requests
//! with Content-Length or chunked bodies, keep-alive, fixed and chunked
//! (flushed per chunk, for `wait` and `logs -f`) responses, and docker's
//! hijack (`Upgrade: tcp`, 101). Hand-written rather than a crate because
//! docker's streaming needs headers flushed before a body exists and the
//! raw socket afterwards, which is all this file does.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

/// Longest request head accepted (docker's own limit is far above any client's).
const MAX_HEAD: usize = 64 * 1024;

pub struct Request {
    pub method: String,
    /// The path without the query, percent-decoded.
    pub path: String,
    pub query: HashMap<String, String>,
    /// Every query pair in order (`names=a&names=b` of `images/get`).
    pub query_all: Vec<(String, String)>,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    /// Bytes of body left to read (None: chunked).
    body_left: Option<u64>,
    chunk_left: u64,
    body_done: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|s| s.as_str())
    }
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(|s| s.as_str())
    }
    /// docker's boolean query values: 1, true, True (anything else is false).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.q(name), Some("1" | "true" | "True" | "TRUE"))
    }
    pub fn wants_upgrade(&self) -> bool {
        self.header("upgrade").is_some()
    }
}

/// One client connection.
pub struct Conn {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
    /// Set once the connection cannot carry another request (a hijack, a
    /// body not read to its end, a response without a length).
    pub closed: bool,
}

impl Conn {
    pub fn new(s: UnixStream) -> io::Result<Conn> {
        Ok(Conn {
            writer: s.try_clone()?,
            reader: BufReader::new(s),
            closed: false,
        })
    }

    /// The next request's head; None at a clean end of the connection.
    pub fn next_request(&mut self) -> io::Result<Option<Request>> {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = (&mut self.reader)
                .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                return if head.is_empty() {
                    Ok(None)
                } else {
                    Err(bad("connection closed inside a request head"))
                };
            }
            if head.len() + n > MAX_HEAD {
                return Err(bad("request head too large"));
            }
            if line == b"\r\n" || line == b"\n" {
                if head.is_empty() {
                    continue; // stray CRLF between requests (RFC 9112 2.2)
                }
                break;
            }
            head.extend_from_slice(&line);
        }
        let head = String::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
        let mut lines = head.lines();
        let first = lines.next().unwrap_or("");
        let mut parts = first.split(' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed request line"));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(bad("only HTTP/1.x is served"));
        }
        let mut headers = HashMap::new();
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                return Err(bad("malformed header line"));
            };
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        let mut query = HashMap::new();
        let mut query_all = Vec::new();
        for kv in raw_query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            query.insert(decode(k), decode(v));
            query_all.push((decode(k), decode(v)));
        }
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        let body_left = if chunked {
            None
        } else {
            Some(
                headers
                    .get("content-length")
                    .map(|l| l.parse::<u64>().map_err(|_| bad("bad Content-Length")))
                    .transpose()?
                    .unwrap_or(0),
            )
        };
        Ok(Some(Request {
            method: method.to_string(),
            path: decode(raw_path),
            query,
            query_all,
            headers,
            body_left,
            chunk_left: 0,
            body_done: body_left == Some(0),
        }))
    }

    /// A reader of the request's body (Content-Length or chunked).
    pub fn body<'a>(&'a mut self, req: &'a mut Request) -> Body<'a> {
        Body { conn: self, req }
    }

    /// The whole body, up to `limit` bytes.
    pub fn read_body(&mut self, req: &mut Request, limit: u64) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body(req).take(limit + 1).read_to_end(&mut v)?;
        if v.len() as u64 > limit {
            return Err(bad("request body too large"));
        }
        Ok(v)
    }

    /// Reads what the handler left of the body, so the next request starts
    /// where it should; a huge leftover closes the connection instead.
    pub fn finish_request(&mut self, req: &mut Request) {
        if req.body_done {
            return;
        }
        let r = io::copy(&mut self.body(req).take(1 << 20), &mut io::sink());
        if r.is_err() || !req.body_done {
            self.closed = true;
        }
    }

    /// A complete response with a Content-Length.
    pub fn respond(
        &mut self,
        head_only: bool,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut out = status_line(status);
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(body);
        }
        self.writer.write_all(&bytes)?;
        self.writer.flush()
    }

    /// Sends the head of a chunked response now (so a client blocked on
    /// the headers goes on); the body follows through the returned writer.
    pub fn start_chunked(&mut self, status: u16, content_type: &str) -> io::Result<Chunked<'_>> {
        let out = format!(
            "{}Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
            status_line(status)
        );
        self.writer.write_all(out.as_bytes())?;
        self.writer.flush()?;
        Ok(Chunked {
            w: &mut self.writer,
        })
    }

    /// `start_chunked` with more headers (the archive's stat).
    pub fn start_chunked_with(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
    ) -> io::Result<Chunked<'_>> {
        let mut out = status_line(status);
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        self.writer.write_all(out.as_bytes())?;
        self.writer.flush()?;
        Ok(Chunked {
            w: &mut self.writer,
        })
    }

    /// docker's hijack: 101 with `Upgrade: tcp` when asked (else a 200 raw
    /// stream); the socket then carries the raw stream both ways and no
    /// more HTTP.
    pub fn hijack(&mut self, upgrade: bool) -> io::Result<()> {
        self.closed = true;
        let head = if upgrade {
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        } else {
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
        };
        self.writer.write_all(head.as_bytes())?;
        self.writer.flush()
    }
}

/// The body of a chunked response; `finish` ends it (a drop without it
/// leaves the connection unusable, which `closed` records).
pub struct Chunked<'a> {
    w: &'a mut UnixStream,
}

impl Chunked<'_> {
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut b = format!("{:x}\r\n", data.len()).into_bytes();
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
        self.w.write_all(&b)?;
        self.w.flush()
    }
    pub fn finish(self) -> io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
}

pub struct Body<'a> {
    conn: &'a mut Conn,
    req: &'a mut Request,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.req.body_done || buf.is_empty() {
            return Ok(0);
        }
        let r = &mut self.conn.reader;
        match self.req.body_left {
            Some(left) => {
                let want = (buf.len() as u64).min(left) as usize;
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(bad("connection closed inside a request body"));
                }
                self.req.body_left = Some(left - n as u64);
                self.req.body_done = left == n as u64;
                Ok(n)
            }
            None => {
                if self.req.chunk_left == 0 {
                    let mut line = String::new();
                    r.take(1024).read_line(&mut line)?;
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                    if size == 0 {
                        // Trailers, then the blank line.
                        loop {
                            line.clear();
                            if r.take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        self.req.body_done = true;
                        return Ok(0);
                    }
                    self.req.chunk_left = size;
                }
                let want = (buf.len() as u64).min(self.req.chunk_left) as usize;
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(bad("connection closed inside a chunk"));
                }
                self.req.chunk_left -= n as u64;
                if self.req.chunk_left == 0 {
                    let mut crlf = [0u8; 2];
                    r.read_exact(&mut crlf)?;
                }
                Ok(n)
            }
        }
    }
}

/// True once the client has closed its side (a waiting handler stops
/// then instead of holding a thread for the container's lifetime).
pub fn peer_gone(s: &UnixStream) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    matches!(
        recv(
            s.as_raw_fd(),
            &mut b,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(0)
    )
}

fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Status",
    };
    format!("HTTP/1.1 {status} {reason}\r\nServer: mydocker\r\nApi-Version: 1.41\r\n")
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Percent-decoding of a path or query part ('+' is a space in queries;
/// docker's clients never put one in a path).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("a%2Fb+c"), "a/b c");
        assert_eq!(decode("%7B%22x%22%3A1%7D"), "{\"x\":1}");
        assert_eq!(decode("50%"), "50%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn reads_chunked_and_keep_alive_requests() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"POST /x?a=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /y HTTP/1.1\r\nHost: d\r\n\r\n").unwrap();
        let mut c = Conn::new(a).unwrap();
        let mut r = c.next_request().unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.q("a")),
            ("POST", "/x", Some("1"))
        );
        assert_eq!(c.read_body(&mut r, 100).unwrap(), b"abcde");
        c.finish_request(&mut r);
        let r2 = c.next_request().unwrap().unwrap();
        assert_eq!(r2.path, "/y");
        assert!(!c.closed);
    }
}

//! `ApiService`: `mydocker system service` on a temp socket over a
//! `Docker` root, with the docker CLI pointed at it; killed on drop.

use crate::docker::{stdout, Docker};
use crate::{assert_exit_code, bin, wait_for, TempDir};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub struct ApiService {
    pub child: Child,
    pub sock: PathBuf,
    _dir: TempDir,
    /// A private docker CLI config dir (the CLI writes to it).
    pub config: TempDir,
}

impl ApiService {
    /// A service that never idles out.
    pub fn start(d: &Docker) -> ApiService {
        ApiService::start_with_timeout(d, 0)
    }
    /// A service that exits after `idle` seconds without a client.
    pub fn start_with_timeout(d: &Docker, idle: u32) -> ApiService {
        let dir = TempDir::new("api");
        let sock = dir.path().join("docker.sock");
        let child = Command::new(bin("mydocker"))
            .arg("--root")
            .arg(d.root.path())
            .args([
                "system",
                "service",
                "--timeout",
                &idle.to_string(),
                "--socket",
            ])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let s = ApiService {
            child,
            sock,
            _dir: dir,
            config: TempDir::new("dockercfg"),
        };
        wait_for("the service socket", 10, || {
            UnixStream::connect(&s.sock).is_ok()
        });
        s
    }
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .stdin(Stdio::null());
        c
    }
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().unwrap()
    }
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert_exit_code(&out, 0);
        stdout(&out).trim().to_string()
    }
    /// One raw HTTP/1.1 request (`Connection: close`): (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = self.http_full(method, path, body);
        (status, body)
    }
    /// `http` with the response's head (status line and headers) too.
    pub fn http_full(&self, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap();
        (status, head.to_string(), body.to_string())
    }
    /// `http`, with docker's `{"message"}` of an error body unwrapped.
    pub fn message(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (st, b) = self.http(method, path, body);
        let m = serde_json::from_str::<serde_json::Value>(&b)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or(b);
        (st, m)
    }
}

impl Drop for ApiService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The docker CLI client is installed (scripts/deps.sh).
pub fn docker_cli_present() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Python docker SDK is importable by `python3`.
pub fn python_sdk_present() -> bool {
    Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `python3 -c SCRIPT`, asserted to exit 0; its stdout.
pub fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    stdout(&out)
}

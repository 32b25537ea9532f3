//! End-to-end: Debian's docker-compose 1.29 against `mydocker system
//! service`: `up -d` of a server and a client on the project network (the
//! client fetches from the server by service name), a named volume and a
//! published port on 127.0.0.1; `ps`, `logs`, `exec -T`; `down -v` leaves
//! no container, network, volume, bridge or iptables rule.
//!
//! compose runs under Debian's /usr/bin/python3 with Debian's
//! dist-packages first on its path: compose 1.29 needs docker-py 5.0
//! (python3-docker), and a newer `docker` from pip under /usr/local
//! (7.x dropped what compose 1.29 calls) would otherwise shadow it.

use e2e::apisvc::{docker_cli_present, ApiService};
use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, skip_unless, unique, wait_for, TempDir};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const COMPOSE: &str = "/usr/bin/docker-compose";

fn compose_cmd(svc: &ApiService, project: &str, file: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(COMPOSE)
        .arg("-p")
        .arg(project)
        .arg("-f")
        .arg(file)
        .args(args)
        .env("DOCKER_HOST", svc.host())
        .env("DOCKER_CONFIG", svc.config.path())
        .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
        .env_remove("PYTHONHOME")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .stdin(Stdio::null());
    c
}

fn compose_present() -> bool {
    Path::new(COMPOSE).exists()
        && Command::new("/usr/bin/python3")
            .args([COMPOSE, "version"])
            .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// A TCP port free now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `down -v` on drop, so a failed test leaves nothing either (the
/// `Docker` root's own Drop then removes whatever is still there).
struct Project<'a> {
    svc: &'a ApiService,
    name: String,
    file: std::path::PathBuf,
}

impl Project<'_> {
    fn run(&self, args: &[&str]) -> Output {
        compose_cmd(self.svc, &self.name, &self.file, args)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_exit_code(&out, 0);
        stdout(&out)
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.run(&["down", "-v", "-t", "1"]);
        }
    }
}

fn iptables_dump() -> String {
    ["iptables-save", "ip6tables-save"]
        .iter()
        .filter_map(|c| Command::new(c).output().ok())
        .map(|o| stdout(&o))
        .collect()
}

#[test]
fn compose_up_ps_logs_exec_down_leaves_nothing() {
    require_root!();
    skip_unless!(
        docker_cli_present(),
        "no docker CLI (scripts/deps.sh installs docker.io)"
    );
    skip_unless!(
        compose_present(),
        "no docker-compose 1.29 (scripts/deps.sh installs docker-compose)"
    );
    let d = Docker::new();
    let svc = ApiService::start(&d);
    let dir = TempDir::new("compose");
    let port = free_port();
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(
        &file,
        format!(
            r#"version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo from-web > /www/index.html && cp /www/index.html /data/ && exec httpd -f -p 80 -h /www"]
    volumes:
      - data:/data
    ports:
      - "127.0.0.1:{port}:80"
  client:
    image: busybox
    depends_on: [web]
    command: ["sh", "-c", "for i in $$(seq 100); do wget -qO- http://web/ && break; sleep 0.2; done; echo client-done; exec sleep 300"]
volumes:
  data: {{}}
"#
        ),
    )
    .unwrap();
    let project = unique("mdc").replace(['-', '_'], "").to_ascii_lowercase();
    let p = Project {
        svc: &svc,
        name: project.clone(),
        file,
    };
    let up = p.run(&["up", "-d"]);
    assert_exit_code(&up, 0);
    // The mydocker CLI sees compose's containers, network and volume.
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [format!("{project}_client_1"), format!("{project}_web_1")],
        "{}",
        stderr(&up)
    );
    let net = format!("{project}_default");
    assert!(d.ok(&["network", "ls", "-q"]).lines().any(|l| l == net));
    let vol = format!("{project}_data");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), vol);
    let bridge = d.ok(&["network", "inspect", &net]);
    let bridge: serde_json::Value = serde_json::from_str(&bridge).unwrap();
    let bridge = bridge[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = bridge_subnet(&d, &net);

    let ps = p.ok(&["ps"]);
    for s in ["web_1", "client_1"] {
        assert!(
            ps.lines()
                .any(|l| l.contains(&format!("{project}_{s}")) && l.contains("Up")),
            "{ps}"
        );
    }
    // The client reached the server by its service name.
    wait_for("the client's fetch", 30, || {
        p.ok(&["logs", "client"]).contains("client-done")
    });
    let logs = p.ok(&["logs", "--no-color", "client"]);
    assert!(logs.contains("from-web"), "{logs}");
    // The named volume holds what the server wrote; exec reaches it.
    let cat = p.ok(&["exec", "-T", "web", "cat", "/data/index.html"]);
    assert_eq!(cat, "from-web\n");
    // The published port answers on 127.0.0.1.
    let mut got = None;
    wait_for("the published port", 10, || {
        got = http_get(port);
        got.as_deref().is_some_and(|g| g.contains("from-web"))
    });

    let down = p.run(&["down", "-v", "-t", "1"]);
    assert_exit_code(&down, 0);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "{}", stderr(&down));
    assert!(!d.ok(&["network", "ls", "-q"]).lines().any(|l| l == net));
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
    let links = stdout(&Command::new("ip").args(["-o", "link"]).output().unwrap());
    assert!(!links.contains(&format!(" {bridge}:")), "{links}");
    let rules = iptables_dump();
    assert!(!rules.contains(&subnet), "{rules}");
    assert!(!rules.contains(&format!("dport {port} ")), "{rules}");
}

fn bridge_subnet(d: &Docker, net: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["network", "inspect", net])).unwrap();
    v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string()
}

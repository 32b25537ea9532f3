//! End-to-end: podman with its CNI backend runs its containers' networking
//! through netbr and ipam. The network is podman's own default conflist
//! (/etc/cni/net.d/87-podman-bridge.conflist, or the same shape when it is
//! absent) with `bridge` -> `netbr`, `host-local` -> `ipam`, a bridge, a
//! dual-stack range set and a data dir of the test's own. Its `portmap`,
//! `firewall` and `tuning` entries go: they are the reference plugins, not
//! ours (netbr maps ports itself, so the `portMappings` capability moves to
//! it; `firewall`'s chains are machine-wide and outlive every network).
//! Two containers talk, a published port answers on 127.0.0.1, and after
//! `podman rm` and `podman network rm` nothing of the network is left.
//! A private podman store, containers.conf, plugin dir and cgroup parent;
//! the guard's Drop removes all of it even when the test fails.

use e2e::docker::{stderr, stdout};
use e2e::{assert_exit_code, require_root, unique, TempDir};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEFAULT_CONFLIST: &str = "/etc/cni/net.d/87-podman-bridge.conflist";

/// podman's default conflist, for hosts without the file.
fn podman_default() -> Value {
    json!({
      "cniVersion": "0.4.0", "name": "podman",
      "plugins": [
        {"type": "bridge", "bridge": "cni-podman0", "isGateway": true, "ipMasq": true,
         "hairpinMode": true,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall"},
        {"type": "tuning"}
      ]
    })
}

struct PodmanCni {
    tmp: TempDir,
    runtime: PathBuf,
    net: String,
    bridge: String,
    /// `10.a.b.` of the IPv4 subnet, `fd5f:a:b:` of the IPv6 one.
    v4: String,
    v6: String,
    /// `--cgroup-parent` of every container: ours to remove.
    parent: String,
}

impl PodmanCni {
    fn new(runtime: PathBuf) -> PodmanCni {
        let pid = std::process::id();
        let h = pid.wrapping_mul(2654435761);
        let (a, b) = (140 + h % 20, (h >> 8) % 256);
        let p = PodmanCni {
            tmp: TempDir::new("podcni"),
            runtime,
            net: format!("pcni{pid}"),
            bridge: format!("pcnibr{}", pid % 1_000_000),
            v4: format!("10.{a}.{b}."),
            v6: format!("fd5f:{a:x}:{b:x}:"),
            parent: format!("/{}", unique("mdpodcni")),
        };
        let t = p.tmp.path();
        let plugins = t.join("cni");
        std::fs::create_dir_all(&plugins).unwrap();
        // Under the names the conflist uses.
        for name in ["netbr", "ipam"] {
            std::fs::copy(e2e::bin(name), plugins.join(name)).unwrap();
        }
        let confdir = t.join("net.d");
        std::fs::create_dir_all(&confdir).unwrap();
        std::fs::write(
            t.join("containers.conf"),
            format!(
                "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{}\"\n",
                plugins.display(),
                confdir.display()
            ),
        )
        .unwrap();
        let conf = p.conflist();
        std::fs::write(
            confdir.join(format!("{}.conflist", p.net)),
            serde_json::to_string_pretty(&conf).unwrap(),
        )
        .unwrap();
        p
    }

    /// podman's default conflist with the types swapped to ours.
    fn conflist(&self) -> Value {
        let mut c = std::fs::read_to_string(DEFAULT_CONFLIST)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .unwrap_or_else(podman_default);
        c["name"] = json!(self.net);
        let plugins = c["plugins"].as_array().unwrap().clone();
        let mut main = plugins
            .iter()
            .find(|p| p["type"] == "bridge")
            .expect("a bridge plugin in podman's conflist")
            .clone();
        main["type"] = json!("netbr");
        main["bridge"] = json!(self.bridge);
        main["capabilities"] = json!({"portMappings": true});
        let ipam = &mut main["ipam"];
        assert_eq!(ipam["type"], "host-local", "{ipam}");
        ipam["type"] = json!("ipam");
        ipam["dataDir"] = json!(self.tmp.path().join("ipam"));
        ipam["routes"] = json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]);
        ipam["ranges"] = json!([
            [{"subnet": format!("{}0/24", self.v4), "gateway": format!("{}1", self.v4)}],
            [{"subnet": format!("{}:/64", self.v6), "gateway": format!("{}:1", self.v6)}]
        ]);
        c["plugins"] = json!([main]);
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let t = self.tmp.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", t.join("containers.conf"))
            .arg("--root")
            .arg(t.join("root"))
            .arg("--runroot")
            .arg(t.join("run"))
            .arg("--tmpdir")
            .arg(t.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(&self.runtime)
            // the runtime's state under our temp dir, not its default under /run
            .arg("--runtime-flag")
            .arg(format!("root={}", t.join("rt").display()))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "podman {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o).trim().to_string()
    }

    /// `podman run` on the network, in our cgroup parent, with the rlimits
    /// this host lets podman set.
    fn run(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut a = vec![
            "run",
            "--network",
            &self.net,
            "--cgroup-parent",
            &self.parent,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        a.extend_from_slice(flags);
        a.push("busybox");
        a.extend_from_slice(args);
        self.out(&a)
    }

    /// Rules of either family that mention the network.
    fn rules(&self) -> Vec<String> {
        let tag = format!("mydocker:{}", self.net);
        ["iptables-save", "ip6tables-save"]
            .iter()
            .flat_map(|c| {
                let o = Command::new(c).output().unwrap();
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.contains(&self.v4) || l.contains(&self.v6) || l.contains(&tag))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for PodmanCni {
    fn drop(&mut self) {
        let _ = self.out(&["rm", "-af", "-t", "0"]);
        let _ = self.out(&["network", "rm", "-f", &self.net]);
        let _ = self.out(&["system", "reset", "-f"]);
        // What podman mounted under its store, then the cgroups it made.
        e2e::engine::unmount_under(self.tmp.path());
        e2e::engine::remove_cgroup_tree(&self.parent);
        // A failed test may have left the network's rules (found by the
        // bridge's alias) and the bridge.
        let _ = Command::new(e2e::bin("netbr"))
            .arg("--root")
            .arg(self.tmp.path().join("netbr"))
            .args(["rm", &self.net])
            .output();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
    }
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    Some(r)
}

/// An OCI runtime podman can use here: runc (crun refuses this hybrid
/// cgroup host, see /work/shared/PEERS.md), else crun.
fn runtime() -> Option<PathBuf> {
    ["runc", "crun"].iter().find_map(|r| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(r))
            .find(|p| p.exists())
    })
}

#[test]
fn podman_cni_backend_on_netbr_and_ipam_talks_publishes_and_leaves_nothing() {
    require_root!();
    e2e::skip_unless!(
        Command::new("podman").arg("--version").output().is_ok(),
        "podman is not installed (scripts/deps.sh installs it)"
    );
    let rt = runtime();
    e2e::skip_unless!(rt.is_some(), "neither runc nor crun is installed");
    let p = PodmanCni::new(rt.unwrap());
    let out = p
        .cmd(&["load", "-i"])
        .arg(e2e::busybox_tar())
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert_eq!(
        p.ok(&["info", "--format", "{{.Host.NetworkBackend}}"]),
        "cni"
    );
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.contains(&format!("{} netbr", p.net)), "{nets}");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let publish = format!("127.0.0.1:{port}:80");
    let out = p.run(
        &["-d", "--name", "web", "-p", &publish],
        &["httpd", "-f", "-p", "80", "-h", "/etc"],
    );
    assert_exit_code(&out, 0);
    let web = stdout(&out).trim().to_string();
    let field = |f: &str| {
        p.ok(&[
            "inspect",
            "web",
            "--format",
            &format!(
                "{{{{(index .NetworkSettings.Networks \"{}\").{f}}}}}",
                p.net
            ),
        ])
    };
    let ip = field("IPAddress");
    let ip6 = field("GlobalIPv6Address");
    assert!(ip.starts_with(&p.v4), "{ip}");
    assert!(ip6.starts_with(&p.v6), "{ip6}");
    let sandbox = p.ok(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.SandboxKey}}",
    ]);
    assert!(Path::new(&sandbox).exists(), "netns {sandbox}");
    let ports: Vec<String> = std::fs::read_dir(format!("/sys/class/net/{}/brif", p.bridge))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ports.len(), 1, "{ports:?}");

    // The other container fetches from it by address (podman's hostname is
    // the short id).
    let out = p.run(
        &["--rm"],
        &["wget", "-q", "-O-", &format!("http://{ip}/hostname")],
    );
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out).trim(), &web[..12]);
    let out = p.run(&["--rm"], &["ping", "-6", "-c1", "-W3", &ip6]);
    assert_exit_code(&out, 0);
    // The published port answers on the host's loopback.
    let mut got = String::new();
    for _ in 0..50 {
        got = http_get(port).unwrap_or_default();
        if got.contains(&web[..12]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(got.contains(&web[..12]), "127.0.0.1:{port}: {got:?}");
    assert!(!p.rules().is_empty(), "no rules while running?");

    p.ok(&["rm", "-f", "-t", "0", "web"]);
    p.ok(&["network", "rm", &p.net]);
    let left = p.rules();
    assert!(left.is_empty(), "rules left: {left:?}");
    assert!(
        !Path::new("/sys/class/net").join(&p.bridge).exists(),
        "bridge {} left",
        p.bridge
    );
    for v in &ports {
        assert!(
            !Path::new("/sys/class/net").join(v).exists(),
            "veth {v} left"
        );
    }
    assert!(!Path::new(&sandbox).exists(), "netns {sandbox} left");
    let ipam: Vec<String> = std::fs::read_dir(p.tmp.path().join("ipam"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&p.net))
        .collect();
    assert!(ipam.is_empty(), "ipam files left: {ipam:?}");
}

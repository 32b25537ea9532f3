//! Black-box tests of netbr as root: real bridges, veths, namespaces and
//! netfilter. Every test uses unique names and a guard that removes all it
//! made, even on panic.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::Value;

mod common;
use common::{cni_path, json, BIN};

static N: AtomicUsize = AtomicUsize::new(0);

/// A pseudo-random number from the clock, pid and a counter.
fn rand() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let x = t
        ^ (std::process::id() << 8)
        ^ (N.fetch_add(1, Ordering::SeqCst) as u32).wrapping_mul(2654435761);
    x.wrapping_mul(2246822519) ^ (x >> 13)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn iptables_save() -> String {
    String::from_utf8(Command::new("iptables-save").output().unwrap().stdout).unwrap()
}

/// One test network: temp root, netns dir, unique names; Drop removes it all.
struct Fixture {
    root: TempDir,
    nsdir: TempDir,
    name: String,
    bridge: String,
    /// `10.A.B.0/24`, with `prefix` = `10.A.B.`.
    subnet: String,
    prefix: String,
    netns: Vec<String>,
    kids: Vec<Child>,
}

impl Fixture {
    fn new() -> Fixture {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let r = rand();
        let prefix = format!("10.{}.{}.", 128 + r % 120, (r >> 8) % 256);
        Fixture {
            root: TempDir::new("nbr"),
            nsdir: TempDir::new("nbns"),
            name: format!("tn{}x{n}", std::process::id()),
            bridge: format!("tbr{}{n}", std::process::id() % 10000),
            subnet: format!("{prefix}0/24"),
            prefix,
            netns: vec![],
            kids: vec![],
        }
    }

    fn netbr(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env("CNI_PATH", cni_path())
            .output()
            .unwrap()
    }

    /// Container ids are unique per fixture: the host veth name derives from them.
    fn id(&self, i: usize) -> String {
        format!("{}c{i}", self.name)
    }

    fn create(&self) {
        let out = self.netbr(&[
            "create",
            &self.name,
            "--subnet",
            &self.subnet,
            "--bridge",
            &self.bridge,
        ]);
        assert_exit_code(&out, 0);
    }

    /// A fresh netns file via `netbr netns add`.
    fn netns(&mut self) -> PathBuf {
        let id = format!("ns{}", N.fetch_add(1, Ordering::SeqCst));
        let out = Command::new(BIN)
            .args(["netns", "add", &id, "--dir"])
            .arg(self.nsdir.path())
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
        self.netns.push(id.clone());
        let p = PathBuf::from(json(&out)["path"].as_str().unwrap());
        assert_eq!(p, self.nsdir.path().join(&id));
        p
    }

    /// The plugin's own config (as a CNI runtime passes it).
    fn conf(&self, maps: Value) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "type": "netbr",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {"type": "ipam", "subnet": self.subnet, "dataDir": self.root.path().join("ipam")},
            "runtimeConfig": {"portMappings": maps},
        })
        .to_string()
    }

    fn cni(&self, cmd: &str, id: &str, netns: &Path, stdin: &str) -> Output {
        let mut c = Command::new(BIN);
        c.env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path());
        pipe(&mut c, stdin)
    }

    fn ns_run(&self, ns: &Path, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// After the DELs: the veths and the containers' rules are gone; the
    /// network's rules stay when `netbr create` made it (they go with
    /// `netbr rm`), else they went with the last DEL.
    fn assert_all_gone(&self, veths: &[String]) {
        for v in veths {
            assert!(!link_exists(v), "veth {v} left behind");
        }
        let save = iptables_save();
        let ctag = format!("mydocker:{}:", self.name);
        assert!(
            !save.contains(&ctag),
            "container rules of {} left behind:\n{save}",
            self.name
        );
        let managed = self
            .root
            .path()
            .join("networks")
            .join(format!("{}.json", self.name))
            .exists();
        if managed {
            assert!(
                net_rules(&save, &self.name) > 0,
                "the network's rules stay until rm:\n{save}"
            );
        } else {
            assert_eq!(
                net_rules(&save, &self.name),
                0,
                "plugin mode: the last DEL takes the network's rules:\n{save}"
            );
            assert!(ifalias(&self.bridge).is_empty(), "alias cleared");
        }
    }

    /// `netbr rm` (with or without a conflist) leaves no rule and no marker.
    fn rm_and_assert_clean(&self) -> Value {
        let out = self.netbr(&["rm", &self.name]);
        assert_exit_code(&out, 0);
        let save = iptables_save();
        let tag = format!("mydocker:{}", self.name);
        assert!(
            !save.contains(&tag),
            "rules of {} left after rm:\n{save}",
            self.name
        );
        assert!(
            ifalias(&self.bridge).is_empty(),
            "the alias of {} still claims rules after rm",
            self.bridge
        );
        json(&out)
    }
}

/// Lines of iptables-save carrying the network's own comment.
fn net_rules(save: &str, name: &str) -> usize {
    let tag = format!("mydocker:{name}");
    save.lines()
        .filter(|l| {
            l.contains(&format!("--comment {tag} ")) || l.contains(&format!("--comment \"{tag}\""))
        })
        .count()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        let ids: Vec<String> = (0..4).map(|i| self.id(i)).collect();
        for ns in &self.netns {
            for id in &ids {
                let p = self.nsdir.path().join(ns);
                let _ = self.cni("DEL", id, &p, &self.conf(Value::Array(vec![])));
            }
        }
        let _ = self.netbr(&["rm", "--force", &self.name]);
        if link_exists(&self.bridge) {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
        for ns in &self.netns {
            let _ = Command::new(BIN)
                .args(["netns", "del", ns, "--dir"])
                .arg(self.nsdir.path())
                .output();
        }
    }
}

fn veth_of(result: &Value) -> String {
    result["interfaces"][1]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_netns_on_one_bridge_ping_each_other() {
    e2e::require_root!();
    let mut f = Fixture::new();
    let (a, b) = (f.netns(), f.netns());
    let conf = f.conf(Value::Array(vec![]));
    let ra = f.cni("ADD", &f.id(0), &a, &conf);
    assert_exit_code(&ra, 0);
    let rb = f.cni("ADD", &f.id(1), &b, &conf);
    assert_exit_code(&rb, 0);
    let (ra, rb) = (json(&ra), json(&rb));
    assert_eq!(ra["cniVersion"], "1.0.0");
    assert_eq!(ra["interfaces"][0]["name"], f.bridge.as_str());
    assert_eq!(ra["interfaces"][2]["name"], "eth0");
    assert_eq!(ra["interfaces"][2]["sandbox"], a.to_str().unwrap());
    assert_eq!(ra["ips"][0]["gateway"], format!("{}1", f.prefix));
    let ip_b = rb["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(ip_b.starts_with(&f.prefix));
    assert!(link_exists(&f.bridge));
    // The bridge's alias records that the network's rules are in.
    assert_eq!(
        ifalias(&f.bridge),
        format!("mydocker-rules {} {} true", f.name, f.subnet)
    );
    assert_eq!(ifalias(&veth_of(&ra)), "", "no port mappings, no mark");

    let out = f.ns_run(&a, &["busybox", "ping", "-c1", "-W2", &ip_b]);
    assert_exit_code(&out, 0);
    // The gateway (the bridge) answers too, so the default route works.
    let out = f.ns_run(
        &a,
        &["busybox", "ping", "-c1", "-W2", &format!("{}1", f.prefix)],
    );
    assert_exit_code(&out, 0);

    // MASQUERADE for the subnet sits in our chain.
    let post = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", "MYDOCKER-POSTROUTING"])
        .output()
        .unwrap();
    let post = String::from_utf8_lossy(&post.stdout);
    assert!(
        post.contains(&format!("-s {} ! -d {}", f.subnet, f.subnet)) && post.contains("MASQUERADE"),
        "{post}"
    );

    let veths = [veth_of(&ra), veth_of(&rb)];
    for (id, ns) in [(f.id(0), &a), (f.id(1), &b)] {
        assert_exit_code(&f.cni("DEL", &id, ns, &conf), 0);
    }
    // No `netbr create`: the last DEL takes the network whole (rules,
    // bridge, ipam state), as a CNI runtime never calls `netbr rm`.
    assert!(!link_exists(&f.bridge));
    f.assert_all_gone(&veths);
    assert!(
        !f.root.path().join("ipam").join(&f.name).exists(),
        "ipam state left"
    );
    assert_eq!(f.rm_and_assert_clean()["removed"], false);
    // The next ADD makes it all again.
    assert_exit_code(&f.cni("ADD", &f.id(0), &a, &conf), 0);
    assert!(link_exists(&f.bridge));
    assert!(net_rules(&iptables_save(), &f.name) > 0);
    // rm of a network never created as a conflist removes its rules.
    assert_eq!(f.rm_and_assert_clean()["removed"], true);
    assert_exit_code(&f.cni("DEL", &f.id(0), &a, &conf), 0);
    f.rm_and_assert_clean();
}

fn ifalias(link: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{link}/ifalias"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn port_mapping_reachable_from_localhost_and_host_address() {
    e2e::require_root!();
    let mut f = Fixture::new();
    f.create();
    let ns = f.netns();
    let port = 20000 + rand() % 40000;
    let publish = format!(r#"[{{"hostPort":{port},"containerPort":80,"protocol":"tcp"}}]"#);
    let out = f.netbr(&[
        "connect",
        &f.name,
        &f.id(0),
        "--netns",
        ns.to_str().unwrap(),
        "--publish",
        &publish,
    ]);
    assert_exit_code(&out, 0);
    let r = json(&out);
    let ip = r["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();

    assert_eq!(ifalias(&veth_of(&r)), "mydocker-ports");
    let dnat = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", "MYDOCKER"])
        .output()
        .unwrap();
    let dnat = String::from_utf8_lossy(&dnat.stdout);
    assert!(
        dnat.contains(&format!("--dport {port}"))
            && dnat.contains(&format!("--to-destination {ip}:80")),
        "{dnat}"
    );

    // A persistent server in the container's namespace.
    let kid = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    f.kids.push(kid);

    let fetch = |host: &str| -> String {
        for _ in 0..40 {
            let addr = std::net::SocketAddr::new(host.parse().unwrap(), port as u16);
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if !buf.is_empty() {
                    return buf;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        String::new()
    };
    let got = fetch("127.0.0.1");
    assert_eq!(
        got.trim(),
        "hi",
        "via 127.0.0.1:{port}; rules:\n{}",
        iptables_save()
    );
    // The host's own address: its first global IPv4 outside our subnet, or the gateway.
    let addrs = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&addrs.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next())
        .find(|a| !a.starts_with(&f.prefix))
        .map(String::from)
        .unwrap_or_else(|| format!("{}1", f.prefix));
    assert_eq!(fetch(&host).trim(), "hi", "via {host}:{port}");
    // Hairpin: the container reaches its own published port via the host.
    let out = f.ns_run(&ns, &["busybox", "nc", "-w", "2", &host, &port.to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hi",
        "hairpin via {host}:{port}: {out:?}"
    );

    let out = f.netbr(&[
        "disconnect",
        &f.name,
        &f.id(0),
        "--netns",
        ns.to_str().unwrap(),
    ]);
    assert_exit_code(&out, 0);
    assert!(
        TcpStream::connect(("127.0.0.1", port as u16)).is_err()
            || !fetch("127.0.0.1").contains("hi")
    );
    f.assert_all_gone(&[veth_of(&r)]);
    assert_eq!(f.rm_and_assert_clean()["removed"], true);
    assert!(!link_exists(&f.bridge), "rm deletes the bridge");
}

#[test]
fn check_then_del_twice_succeeds() {
    e2e::require_root!();
    let mut f = Fixture::new();
    let ns = f.netns();
    let port = 20000 + rand() % 40000;
    let conf = f.conf(serde_json::json!([{"hostPort": port, "containerPort": 8080}]));
    let out = f.cni("ADD", &f.id(0), &ns, &conf);
    assert_exit_code(&out, 0);
    let r = json(&out);

    let mut with_prev: Value = serde_json::from_str(&conf).unwrap();
    with_prev["prevResult"] = r.clone();
    assert_exit_code(&f.cni("CHECK", &f.id(0), &ns, &with_prev.to_string()), 0);

    // Break it: CHECK must notice.
    let out = f.ns_run(&ns, &["ip", "addr", "flush", "dev", "eth0"]);
    assert_exit_code(&out, 0);
    let out = f.cni("CHECK", &f.id(0), &ns, &with_prev.to_string());
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(json(&out)["code"], 113);

    assert_exit_code(&f.cni("DEL", &f.id(0), &ns, &conf), 0);
    let out = f.cni("DEL", &f.id(0), &ns, &conf);
    assert_exit_code(&out, 0);
    assert!(out.stdout.is_empty());
    // DEL with the namespace already gone succeeds as well.
    assert_exit_code(
        &f.cni("DEL", &f.id(0), Path::new("/nonexistent/ns"), &conf),
        0,
    );
    f.assert_all_gone(&[veth_of(&r)]);
    f.rm_and_assert_clean();
    // Nothing held: the last DEL of a network netbr did not create
    // removed its ipam state.
    let out = Command::new(cni_path().join("ipam"))
        .args(["ls", &f.name, "--data-dir"])
        .arg(f.root.path().join("ipam"))
        .output()
        .unwrap();
    assert_exit_code(&out, 1);
}

#[test]
fn add_into_missing_netns_fails_cleanly() {
    e2e::require_root!();
    let f = Fixture::new();
    let out = f.cni(
        "ADD",
        &f.id(0),
        Path::new("/nonexistent/netns"),
        &f.conf(Value::Array(vec![])),
    );
    assert_exit_code(&out, 1);
    let e = json(&out);
    assert_eq!(e["code"], 5);
    assert!(e["msg"].as_str().unwrap().contains("/nonexistent/netns"));
    assert!(
        !f.root.path().join("ipam").join(&f.name).exists() || {
            let l = Command::new(cni_path().join("ipam"))
                .args(["ls", &f.name, "--data-dir"])
                .arg(f.root.path().join("ipam"))
                .output()
                .unwrap();
            json(&l)["allocations"].as_array().unwrap().is_empty()
        }
    );
}

#[test]
fn bad_config_is_rejected_before_side_effects() {
    let f = Fixture::new();
    let mut c: Value = serde_json::from_str(&f.conf(Value::Array(vec![]))).unwrap();
    c["bridge"] = "this-name-is-too-long".into();
    let out = f.cni("ADD", &f.id(0), Path::new("/nonexistent"), &c.to_string());
    assert_exit_code(&out, 2);
    assert_eq!(json(&out)["code"], 7);
    assert!(!link_exists("this-name-is-too-long"));
    let out = f.cni("VERSION", "", Path::new(""), "");
    assert_exit_code(&out, 0);
    assert!(json(&out)["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "1.0.0"));
}

#[test]
fn netns_add_and_del_are_idempotent() {
    e2e::require_root!();
    let d = TempDir::new("nbns");
    let run = |sub: &str| {
        Command::new(BIN)
            .args(["netns", sub, "x1", "--dir"])
            .arg(d.path())
            .output()
            .unwrap()
    };
    assert_exit_code(&run("add"), 0);
    assert_exit_code(&run("add"), 0);
    let p = d.path().join("x1");
    assert!(
        mountinfo::is_mount_point(&p).unwrap(),
        "netns file is a mount"
    );
    // It is a different namespace from ours.
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", p.display()))
        .args(["readlink", "/proc/self/ns/net"])
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert_ne!(
        String::from_utf8_lossy(&out.stdout).trim(),
        mine.to_str().unwrap()
    );
    assert_exit_code(&run("del"), 0);
    assert!(!p.exists());
    assert_exit_code(&run("del"), 0);
    let out = Command::new(BIN)
        .args(["netns", "add", "../evil", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_exit_code(&out, 2);
}

#[test]
fn create_ls_inspect_and_overlap_refused() {
    let f = Fixture::new();
    f.create();
    let out = f.netbr(&[
        "create",
        &format!("{}b", f.name),
        "--subnet",
        &format!("{}128/25", f.prefix),
    ]);
    assert_exit_code(&out, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("overlaps"),
        "{out:?}"
    );
    let out = f.netbr(&["create", &f.name, "--subnet", "10.1.2.0/24"]);
    assert_exit_code(&out, 1);
    let out = f.netbr(&["create", "x", "--subnet", "nonsense"]);
    assert_exit_code(&out, 2);
    let out = f.netbr(&["ls"]);
    assert_exit_code(&out, 0);
    let l = json(&out);
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["subnet"], f.subnet.as_str());
    assert_eq!(l[0]["gateway"], format!("{}1", f.prefix));
    let out = f.netbr(&["inspect", &f.name]);
    assert_exit_code(&out, 0);
    let i = json(&out);
    assert_eq!(i["bridge"], f.bridge.as_str());
    assert_eq!(i["config"]["plugins"][0]["type"], "netbr");
    assert_eq!(
        i["config"]["plugins"][0]["ipam"]["dataDir"],
        f.root.path().join("ipam").to_str().unwrap()
    );
    assert!(f
        .root
        .path()
        .join("networks")
        .join(format!("{}.json", f.name))
        .exists());
    let out = f.netbr(&["inspect", "nosuch"]);
    assert_exit_code(&out, 1);
    // Default bridge name fits an interface name.
    let out = f.netbr(&["create", "other", "--subnet", "10.127.250.0/24"]);
    assert_exit_code(&out, 0);
    let b = json(&out)["bridge"].as_str().unwrap().to_string();
    assert!(b.starts_with("br-") && b.len() == 15, "{b}");
    let _ = f.netbr(&["rm", "other"]);
}

#[test]
fn add_del_timing() {
    e2e::require_root!();
    let mut f = Fixture::new();
    let ns = f.netns();
    let conf = f.conf(Value::Array(vec![]));
    // Warm up: bridge and network rules exist.
    assert_exit_code(&f.cni("ADD", &f.id(0), &ns, &conf), 0);
    let ns2 = f.netns();
    let t = std::time::Instant::now();
    let out = f.cni("ADD", &f.id(1), &ns2, &conf);
    assert_exit_code(&out, 0);
    assert_exit_code(&f.cni("DEL", &f.id(1), &ns2, &conf), 0);
    eprintln!("ADD+DEL with a fresh netns: {:?}", t.elapsed());
    // DEL returns once the veth is gone from every view (its kernel
    // teardown may still run in the helper).
    let veth = veth_of(&json(&out));
    assert!(!link_exists(&veth), "{veth} still in /sys/class/net");
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!(" {veth}@")));
    assert_exit_code(&f.cni("DEL", &f.id(0), &ns, &conf), 0);
    let _ = std::io::stderr().flush();
}

#[test]
fn concurrent_adds_and_dels_on_one_new_bridge() {
    e2e::require_root!();
    let mut f = Fixture::new();
    let nss: Vec<PathBuf> = (0..4).map(|_| f.netns()).collect();
    let port0 = 20000 + rand() % 40000;
    let run_all = |cmd: &str| -> Vec<Output> {
        let kids: Vec<Child> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let conf = f
                    .conf(serde_json::json!([{"hostPort": port0 + i as u32, "containerPort": 80}]));
                let mut c = Command::new(BIN);
                c.env("CNI_COMMAND", cmd)
                    .env("CNI_CONTAINERID", f.id(i))
                    .env("CNI_NETNS", ns)
                    .env("CNI_IFNAME", "eth0")
                    .env("CNI_PATH", cni_path())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut k = c.spawn().unwrap();
                k.stdin.take().unwrap().write_all(conf.as_bytes()).unwrap();
                k
            })
            .collect();
        kids.into_iter()
            .map(|k| k.wait_with_output().unwrap())
            .collect()
    };
    let outs = run_all("ADD");
    let mut ips = std::collections::HashSet::new();
    let mut veths = Vec::new();
    for o in &outs {
        assert_exit_code(o, 0);
        let r = json(o);
        assert!(ips.insert(r["ips"][0]["address"].as_str().unwrap().to_string()));
        veths.push(veth_of(&r));
    }
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", f.bridge))
        .unwrap()
        .count();
    assert_eq!(ports, 4, "all four veths on the bridge");
    let tag = format!("mydocker:{}:", f.name);
    let dnats = iptables_save()
        .lines()
        .filter(|l| l.contains(&tag) && l.contains("DNAT"))
        .count();
    assert_eq!(dnats, 4);
    for o in run_all("DEL") {
        assert_exit_code(&o, 0);
    }
    f.assert_all_gone(&veths);
    f.rm_and_assert_clean();
}

#[test]
fn rm_leaves_a_same_named_network_of_another_root_alone() {
    e2e::require_root!();
    let mut a = Fixture::new();
    let mut b = Fixture::new();
    b.name = a.name.clone();
    if a.prefix == b.prefix {
        return; // 1 in 30,000: the two random subnets collided
    }
    a.create();
    b.create();
    let port = 20000 + rand() % 40000;
    let mut ips = vec![];
    for (f, id, p) in [(&mut a, "ra", port), (&mut b, "rb", port + 1)] {
        let ns = f.netns();
        let id = format!("{}{id}", f.name);
        let publish = format!(r#"[{{"hostPort":{p},"containerPort":80}}]"#);
        let out = f.netbr(&[
            "connect",
            &f.name,
            &id,
            "--netns",
            ns.to_str().unwrap(),
            "--publish",
            &publish,
        ]);
        assert_exit_code(&out, 0);
        let r = json(&out);
        ips.push(
            r["ips"][0]["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    let out = a.netbr(&["rm", "--force", &a.name]);
    assert_exit_code(&out, 0);
    let save = iptables_save();
    assert!(
        !save.contains(&format!("{}:80", ips[0])),
        "a's DNAT gone:\n{save}"
    );
    assert!(
        !save.contains(&format!("-s {} ", a.subnet)),
        "a's masquerade gone:\n{save}"
    );
    assert!(
        save.contains(&format!("{}:80", ips[1])),
        "b's DNAT stays:\n{save}"
    );
    assert!(
        save.contains(&format!("-s {} ", b.subnet)),
        "b's masquerade stays:\n{save}"
    );
    assert!(
        save.contains(&format!("-o {} ", b.bridge)),
        "b's rules stay:\n{save}"
    );
    // b's own rm takes the rest (its container too, with --force).
    let out = b.netbr(&["rm", "--force", &b.name]);
    assert_exit_code(&out, 0);
    let save = iptables_save();
    assert!(!save.contains(&format!("mydocker:{}", b.name)), "{save}");
}

#[test]
fn link_del_helper_of_a_missing_link_succeeds() {
    e2e::require_root!();
    // ifindexes are allocated upwards from 1: this one is far from any in use.
    let out = Command::new(BIN)
        .args(["link-del", "2000000000"])
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert_eq!(json(&out)["deleted"], false);
}

//! CNI 1.1 with podman's default conflist shape (`ranges`, IPv4 and IPv6):
//! netbr + ipam side by side with the reference bridge + host-local doing
//! the same, as root, with real namespaces. Unique names; a guard removes
//! everything even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::{assert_exit_code, pipe, TempDir};
use serde_json::{json, Value};

mod common;
use common::{cni_path, json, BIN};

const REF_DIR: &str = "/usr/lib/cni";

static N: AtomicUsize = AtomicUsize::new(0);

fn save(cmd: &str) -> String {
    String::from_utf8_lossy(&Command::new(cmd).output().unwrap().stdout).into_owned()
}

/// One network under test (ours or the reference plugins'), with its netns
/// files; Drop DELs every attachment, removes the bridge and the netns files.
struct Net {
    dir: TempDir,
    nsdir: TempDir,
    name: String,
    bridge: String,
    v4: String,
    v6: String,
    plugin_dir: PathBuf,
    conf: Value,
    attached: Vec<(String, PathBuf)>,
    netns: Vec<String>,
}

impl Net {
    fn new(reference: bool) -> Net {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let r = pid.wrapping_mul(2654435761) ^ (n as u32).wrapping_mul(40503);
        let dir = TempDir::new("cni11");
        let name = format!("c11n{pid}x{n}");
        let bridge = format!("c11b{}{n}", pid % 100000);
        let v4 = format!("10.{}.{}.0/24", 100 + r % 20, (r >> 8) % 256);
        let v6 = format!("fd5e:{:x}:{:x}::/64", (r >> 16) & 0xffff, n + 1);
        let (kind, ipam, plugin_dir) = if reference {
            ("bridge", "host-local", PathBuf::from(REF_DIR))
        } else {
            ("netbr", "ipam", cni_path())
        };
        let conf = json!({
            // Debian's reference plugins (1.1.1) stop at CNI 1.0.0.
            "cniVersion": if reference { "1.0.0" } else { "1.1.0" }, "name": name, "type": kind,
            "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "ipam": {
                "type": ipam, "dataDir": dir.path().join("ipam"),
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
                "ranges": [
                    [{"subnet": v4, "gateway": v4.replace(".0/24", ".1")}],
                    [{"subnet": v6, "gateway": v6.replace("::/64", "::1")}]
                ]
            }
        });
        Net {
            dir,
            nsdir: TempDir::new("cni11ns"),
            name,
            bridge,
            v4,
            v6,
            plugin_dir,
            conf,
            attached: vec![],
            netns: vec![],
        }
    }

    fn netns(&mut self) -> PathBuf {
        let id = format!("ns{}", N.fetch_add(1, Ordering::SeqCst));
        let out = Command::new(BIN)
            .args(["netns", "add", &id, "--dir"])
            .arg(self.nsdir.path())
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
        self.netns.push(id.clone());
        self.nsdir.path().join(id)
    }

    fn cni(&self, cmd: &str, id: &str, ns: &Path, conf: &Value) -> Output {
        let kind = conf["type"].as_str().unwrap();
        let mut c = Command::new(self.plugin_dir.join(kind));
        c.env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", ns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.plugin_dir);
        pipe(&mut c, &conf.to_string())
    }

    fn add(&mut self, id: &str, ns: &Path) -> Value {
        self.attached.push((id.into(), ns.into()));
        let out = self.cni("ADD", id, ns, &self.conf.clone());
        assert_exit_code(&out, 0);
        json(&out)
    }

    /// The rules of both families that mention the network.
    fn rules(&self) -> Vec<String> {
        let (s4, s6) = (save("iptables-save"), save("ip6tables-save"));
        let v6_base = self.v6.trim_end_matches("::/64").to_string() + ":";
        s4.lines()
            .chain(s6.lines())
            .filter(|l| {
                l.contains(&self.v4[..self.v4.len() - 4])
                    || l.contains(&v6_base)
                    || l.contains(&format!("mydocker:{}", self.name))
            })
            .map(String::from)
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (id, ns) in self.attached.clone() {
            let _ = self.cni("DEL", &id, &ns, &self.conf.clone());
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
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
        let _ = &self.dir;
    }
}

fn addr(r: &Value, i: usize) -> String {
    r["ips"][i]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no ips[{i}] in {r}"))
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// ADD gives both families, they reach each other, CHECK and STATUS pass,
/// GC releases what is not listed, and after the last DEL no rule of
/// either family mentions the network: for netbr as for the reference
/// plugins.
fn dual_stack_lifecycle(reference: bool) {
    let mut net = Net::new(reference);
    let (a, b, c) = (net.netns(), net.netns(), net.netns());
    let ra = net.add("ctr-a", &a);
    let rb = net.add("ctr-b", &b);
    for r in [&ra, &rb] {
        assert_eq!(r["ips"].as_array().unwrap().len(), 2, "{r}");
        assert!(addr(r, 0).starts_with(&net.v4[..net.v4.len() - 4]), "{r}");
        assert!(addr(r, 1).contains(':'), "{r}");
    }
    let ns_run = |ns: &Path, args: &[&str]| {
        Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(args)
            .output()
            .unwrap()
    };
    // IPv6 between the two, and both default routes.
    let out = ns_run(&a, &["busybox", "ping", "-6", "-c1", "-W3", &addr(&rb, 1)]);
    assert_exit_code(&out, 0);
    let out = ns_run(&a, &["busybox", "ping", "-c1", "-W3", &addr(&rb, 0)]);
    assert_exit_code(&out, 0);
    let routes = String::from_utf8_lossy(&ns_run(&a, &["ip", "-6", "route"]).stdout).into_owned();
    assert!(routes.contains("default via"), "{routes}");

    let mut check = net.conf.clone();
    check["prevResult"] = ra.clone();
    assert_exit_code(&net.cni("CHECK", "ctr-a", &a, &check), 0);
    if !reference {
        assert_exit_code(&net.cni("STATUS", "", Path::new(""), &net.conf.clone()), 0);
        assert!(
            net.rules()
                .iter()
                .any(|r| r.contains(&format!("-s {} ! -d", net.v6))),
            "IPv6 masquerade in ip6tables: {:?}",
            net.rules()
        );
    }

    // GC: c is not listed, so its addresses go; a and b stay. (CNI 1.1:
    // the reference plugins here answer 1.0 only.)
    let rc = net.add("ctr-c", &c);
    if reference {
        for (id, ns) in [("ctr-a", &a), ("ctr-b", &b), ("ctr-c", &c)] {
            assert_exit_code(&net.cni("DEL", id, ns, &net.conf.clone()), 0);
        }
        let left = net.rules();
        assert!(
            left.is_empty(),
            "reference: rules left after the last DEL: {left:?}"
        );
        return;
    }
    let mut gc = net.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([
        {"containerID": "ctr-a", "ifname": "eth0"},
        {"containerID": "ctr-b", "ifname": "eth0"}
    ]);
    assert_exit_code(&net.cni("GC", "", Path::new(""), &gc), 0);
    let mut check_c = net.conf.clone();
    check_c["prevResult"] = rc;
    assert_ne!(
        net.cni("CHECK", "ctr-c", &c, &check_c).status.code(),
        Some(0),
        "c's addresses were collected"
    );
    assert_exit_code(&net.cni("CHECK", "ctr-a", &a, &check), 0);

    for (id, ns) in [("ctr-a", &a), ("ctr-b", &b), ("ctr-c", &c)] {
        assert_exit_code(&net.cni("DEL", id, ns, &net.conf.clone()), 0);
    }
    assert_exit_code(&net.cni("DEL", "ctr-a", &a, &net.conf.clone()), 0);
    let left = net.rules();
    assert!(left.is_empty(), "rules left after the last DEL: {left:?}");
}

#[test]
fn netbr_dual_stack_add_check_gc_del_leaves_no_rules() {
    e2e::require_root!();
    dual_stack_lifecycle(false);
}

#[test]
fn reference_plugins_do_the_same() {
    e2e::require_root!();
    if !Path::new(REF_DIR).join("bridge").exists() {
        println!("SKIP reference_plugins_do_the_same: {REF_DIR}/bridge missing (apt-get install containernetworking-plugins)");
        return;
    }
    dual_stack_lifecycle(true);
}

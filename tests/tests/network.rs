//! End-to-end networking as users expect it from docker: dual stack,
//! names on user-defined networks, DNS and hosts flags, port ranges and
//! MAC addresses. Traffic only goes to loopback and to the test's own
//! containers; `Docker`'s Drop removes containers and networks even when a
//! test fails.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

/// A subnet pair unique to this test process and call.
fn subnets() -> (String, String, String) {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let x = std::process::id().wrapping_mul(2654435761) ^ n.wrapping_mul(40503);
    let (a, b) = (60 + x % 40, (x >> 8) % 256);
    (
        format!("10.{a}.{b}."),
        format!("10.{a}.{b}.0/24"),
        format!("fd6e:{a:x}:{b:x}::/64"),
    )
}

fn save(cmd: &str) -> String {
    stdout(&Command::new(cmd).output().unwrap())
}

#[test]
fn dual_stack_network_gives_both_addresses_ping6_and_leaves_nothing() {
    require_root!();
    let d = Docker::new();
    let (pfx, v4, v6) = subnets();
    let v6_base = v6.trim_end_matches("::/64").to_string();
    d.ok(&[
        "network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, "ds",
    ]);
    let net = d.ok(&["network", "inspect", "ds"]);
    assert!(
        net.contains("\"EnableIPv6\": true") && net.contains(&v6),
        "{net}"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--network",
        "ds",
        "busybox",
        "sleep",
        "60",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "ds",
        "--ip",
        &format!("{pfx}50"),
        "--ip6",
        &format!("{v6_base}::50"),
        "busybox",
        "sleep",
        "60",
    ]);
    let a = d.inspect("ca");
    let ns = &a["NetworkSettings"];
    let ip6 = ns["Networks"]["ds"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip6.starts_with(&v6_base), "{ns}");
    assert_eq!(ns["GlobalIPv6Address"], ip6.as_str());
    assert_eq!(ns["IPv6Gateway"], format!("{v6_base}::1"));
    assert!(ns["IPAddress"].as_str().unwrap().starts_with(&pfx), "{ns}");
    let b = d.inspect("cb");
    assert_eq!(b["NetworkSettings"]["IPAddress"], format!("{pfx}50"));
    assert_eq!(
        b["NetworkSettings"]["GlobalIPv6Address"],
        format!("{v6_base}::50")
    );
    // IPv6 between the two; both default routes inside.
    let out = d.run(&["exec", "cb", "ping", "-6", "-c1", "-W3", &ip6]);
    assert_exit_code(&out, 0);
    let routes = d.ok(&["exec", "ca", "ip", "-6", "route"]);
    assert!(
        routes.contains(&format!("default via {v6_base}::1")),
        "{routes}"
    );
    let routes = d.ok(&["exec", "ca", "ip", "route"]);
    assert!(routes.contains(&format!("default via {pfx}1")), "{routes}");
    // NAT for the IPv6 subnet in our own chain.
    assert!(
        save("ip6tables-save").contains(&format!("-A MYDOCKER-POSTROUTING -s {v6} ! -d {v6}")),
        "no IPv6 masquerade"
    );

    d.ok(&["rm", "-f", "ca", "cb"]);
    d.ok(&["network", "rm", "ds"]);
    for cmd in ["iptables-save", "ip6tables-save"] {
        let s = save(cmd);
        assert!(
            !s.contains(&v6_base) && !s.contains(&pfx),
            "{cmd} still mentions the network:\n{s}"
        );
    }
    let links = stdout(&Command::new("ip").args(["-6", "route"]).output().unwrap());
    assert!(!links.contains(&v6_base), "IPv6 route left: {links}");
}

#[test]
fn names_resolve_on_user_networks_and_follow_containers_but_not_on_bridge() {
    require_root!();
    let d = Docker::new();
    let (_, v4, _) = subnets();
    d.ok(&["network", "create", "--subnet", &v4, "names"]);
    let web = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "names",
        "--network-alias",
        "www",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let get = |host: &str| {
        d.run(&[
            "run",
            "--rm",
            "--network",
            "names",
            "busybox",
            "wget",
            "-q",
            "-O-",
            &format!("http://{host}/hostname"),
        ])
    };
    // By name, alias and short id, the server answers with its hostname.
    // (No `wget -T`: busybox's wget crashes with it.)
    for host in ["web", "www", &web[..12]] {
        let out = get(host);
        assert_exit_code(&out, 0);
        assert_eq!(stdout(&out).trim(), &web[..12], "via {host}");
    }
    // A container already running learns of one that joins later.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "names",
        "busybox",
        "sleep",
        "60",
    ]);
    let late = d.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "names",
        "busybox",
        "sleep",
        "60",
    ]);
    let hosts = d.ok(&["exec", "client", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("late {}", &late[..12])), "{hosts}");
    // ... and forgets one that leaves.
    d.ok(&["rm", "-f", "late"]);
    let hosts = d.ok(&["exec", "client", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("late"), "{hosts}");

    // The name follows: remove the server, another takes the name.
    d.ok(&["rm", "-f", "web"]);
    assert_ne!(get("web").status.code(), Some(0), "web is gone");
    let web2 = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "names",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let out = d.run(&["exec", "client", "wget", "-q", "-O-", "http://web/hostname"]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out).trim(), &web2[..12]);

    // The default bridge: no names, as docker.
    d.ok(&[
        "run", "-d", "--name", "plain", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ]);
    let out = d.run(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O-",
        "http://plain/hostname",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let hosts = d.ok(&["run", "--rm", "busybox", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("plain"), "{hosts}");
    d.ok(&["rm", "-f", "web", "client", "plain"]);
    d.ok(&["network", "rm", "names"]);
}

#[test]
fn dns_and_hosts_flags_fill_resolv_conf_and_hosts() {
    require_root!();
    let d = Docker::new();
    let out = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--domainname",
        "example.org",
        "--dns",
        "192.0.2.53",
        "--dns",
        "2001:db8::53",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:192.0.2.7",
        "--add-host",
        "v6:2001:db8::7",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts",
    ]);
    let (resolv, hosts) = out.split_once("---").unwrap();
    let ns: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(
        ns,
        ["nameserver 192.0.2.53", "nameserver 2001:db8::53"],
        "{resolv}"
    );
    assert!(resolv.contains("search corp.example\n"), "{resolv}");
    assert!(resolv.contains("options ndots:2"), "{resolv}");
    assert!(
        hosts.contains("192.0.2.7\tdb\n") && hosts.contains("2001:db8::7\tv6\n"),
        "{hosts}"
    );
    assert!(hosts.contains("\tbox.example.org box"), "{hosts}");
    // host-gateway: the host's address on the container's network.
    let gw = hosts.lines().find(|l| l.ends_with("\tgw")).unwrap();
    assert!(
        gw.starts_with("10.") || gw.starts_with("172.") || gw.starts_with("192.168."),
        "{gw}"
    );
    for bad in [
        &["--add-host", "nocolon"][..],
        &["--dns", "not-an-ip"],
        &["--ip6", "zz::1"],
        &["--mac-address", "01:00:5e:00:00:01"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(bad);
        args.extend(["busybox", "true"]);
        let out = d.run(&args);
        assert_exit_code(&out, 125);
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    assert!(
        d.containers_dir_entries().is_empty(),
        "bad flags leave nothing"
    );
}

fn http_get(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").unwrap();
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r
}

#[test]
fn port_ranges_and_mac_address() {
    require_root!();
    let d = Docker::new();
    let base = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().clamp(20000, 60000)
    };
    let spec = format!("{}-{}:8000-8001", base, base + 1);
    let id = d.ok(&[
        "run",
        "-d",
        "-p",
        &spec,
        "--mac-address",
        "92:d0:c6:0a:29:33",
        "busybox",
        "sh",
        "-c",
        "httpd -p 8000 -h /etc; httpd -f -p 8001 -h /etc",
    ]);
    let v = d.inspect(&id);
    assert_eq!(v["NetworkSettings"]["MacAddress"], "92:d0:c6:0a:29:33");
    let mac = d.ok(&["exec", &id, "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac, "92:d0:c6:0a:29:33");
    let ports = &v["NetworkSettings"]["Ports"];
    assert_eq!(
        ports["8001/tcp"][0]["HostPort"],
        (base + 1).to_string(),
        "{ports}"
    );
    // Both ends of the range answer (httpd may take a moment to listen).
    for p in [base, base + 1] {
        let mut got = String::new();
        for _ in 0..50 {
            got = std::panic::catch_unwind(|| http_get(p)).unwrap_or_default();
            if got.contains(&id[..12]) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(got.contains(&id[..12]), "port {p}: {got}");
    }
    let out = d.run(&["run", "--rm", "-p", "8000-8002:80-81", "busybox", "true"]);
    assert_exit_code(&out, 125);
    d.ok(&["rm", "-f", &id]);
}

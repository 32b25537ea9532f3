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
    // ... follows a rename ...
    d.ok(&["rename", "late", "later"]);
    let hosts = d.ok(&["exec", "client", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("later {}", &late[..12])), "{hosts}");
    assert!(!hosts.contains("late "), "{hosts}");
    // ... and forgets one that leaves.
    d.ok(&["rm", "-f", "later"]);
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

/// A UDP echo server (busybox's nc here has no `-u`, nor is udpsvd built
/// in): answers each datagram with "pong " and the datagram.
const UDP_ECHO: &str = r#"
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    for (;;) {
        char buf[512] = "pong ";
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &fl);
        if (n > 0) sendto(s, buf, n + 5, 0, (struct sockaddr *)&from, fl);
    }
}
"#;

/// Builds the UDP echo server statically into `dir`.
fn udp_echo(dir: &std::path::Path) {
    let src = dir.join("udpecho.c");
    std::fs::write(&src, UDP_ECHO).unwrap();
    let out = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("udpecho"))
        .arg(&src)
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
}

#[test]
fn udp_port_published_answers_on_loopback() {
    require_root!();
    let d = Docker::new();
    let bin = e2e::TempDir::new("udpecho");
    udp_echo(bin.path());
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let id = d.ok(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:9000/udp"),
        "-v",
        &format!("{}:/u:ro", bin.path().display()),
        "busybox",
        "/u/udpecho",
        "9000",
    ]);
    let v = d.inspect(&id);
    assert_eq!(
        v["NetworkSettings"]["Ports"]["9000/udp"][0]["HostPort"],
        port.to_string()
    );
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut got = String::new();
    // The server may take a moment to bind: send until it answers.
    for _ in 0..50 {
        s.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = s.recv(&mut buf) {
            got = String::from_utf8_lossy(&buf[..n]).into_owned();
            break;
        }
    }
    assert_eq!(got, "pong ping");
    d.ok(&["rm", "-f", &id]);
    assert!(
        !save("iptables-save").contains(&format!("--dport {port} ")),
        "UDP DNAT left"
    );
}

#[test]
fn publish_all_maps_exposed_ports_from_a_committed_image() {
    require_root!();
    let d = Docker::new();
    let base = d.ok(&["run", "-d", "busybox", "sleep", "60"]);
    d.ok(&["commit", "-c", "EXPOSE 8080", &base, "exposed:1"]);
    d.ok(&["rm", "-f", &base]);
    let id = d.ok(&[
        "run",
        "-d",
        "-P",
        "exposed:1",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let v = d.inspect(&id);
    let host_port: u16 = v["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        .as_str()
        .unwrap_or_else(|| panic!("8080/tcp not published: {}", v["NetworkSettings"]))
        .parse()
        .unwrap();
    assert!(host_port > 0);
    let mut got = String::new();
    for _ in 0..50 {
        got = std::panic::catch_unwind(|| http_get(host_port)).unwrap_or_default();
        if got.contains(&id[..12]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(got.contains(&id[..12]), "port {host_port}: {got}");
    d.ok(&["rm", "-f", &id]);
}

/// docker answers a published port on the host's IPv6 loopback with its
/// userland proxy (docker-proxy on [::]:port); in the kernel a packet from
/// ::1 never leaves lo (IPv6 has no route_localnet), so with NAT alone, as
/// here, [::1]:port cannot reach a container. What can be checked: a
/// container with an IPv6 address gets the IPv6 DNAT of its published
/// port in our own ip6tables chain (used from other hosts and from the
/// host's own non-loopback IPv6 addresses), and it goes with the container.
#[test]
fn ipv6_published_port_gets_its_ip6tables_dnat() {
    require_root!();
    let d = Docker::new();
    let (_, v4, v6) = subnets();
    d.ok(&[
        "network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, "ds6p",
    ]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "ds6p",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let ip6 = d.inspect(&id)["NetworkSettings"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    let dnat = format!("--dport {port} ");
    let rule = save("ip6tables-save")
        .lines()
        .find(|l| l.contains(&dnat) && l.contains("DNAT"))
        .map(String::from);
    let rule = rule.unwrap_or_else(|| panic!("no IPv6 DNAT for {port}"));
    assert!(rule.contains(&format!("[{ip6}]:80")), "{rule}");
    // The IPv4 one answers on 127.0.0.1 as always.
    let mut got = String::new();
    for _ in 0..50 {
        got = std::panic::catch_unwind(|| http_get(port)).unwrap_or_default();
        if got.contains(&id[..12]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(got.contains(&id[..12]), "port {port}: {got}");
    d.ok(&["rm", "-f", &id]);
    assert!(!save("ip6tables-save").contains(&dnat), "IPv6 DNAT left");
    d.ok(&["network", "rm", "ds6p"]);
}

#[test]
fn network_connect_alias_resolves_and_domainname_is_set() {
    require_root!();
    let d = Docker::new();
    let (_, a, _) = subnets();
    let (_, b, _) = subnets();
    d.ok(&["network", "create", "--subnet", &a, "front"]);
    d.ok(&["network", "create", "--subnet", &b, "back"]);
    let web = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    d.ok(&[
        "network", "connect", "--alias", "api", "--alias", "api2", "back", "web",
    ]);
    let v = d.inspect("web");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["back"]["Aliases"],
        serde_json::json!(["api", "api2"]),
        "{}",
        v["NetworkSettings"]
    );
    // On the connected network, by each alias; not on the other network.
    for host in ["api", "api2"] {
        let out = d.run(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "wget",
            "-q",
            "-O-",
            &format!("http://{host}/hostname"),
        ]);
        assert_exit_code(&out, 0);
        assert_eq!(stdout(&out).trim(), &web[..12], "via {host}");
    }
    let hosts = d.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("web") && !hosts.contains("api"), "{hosts}");
    let out = d.run(&["network", "connect", "--alias", "bad alias", "front", "web"]);
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    d.ok(&["rm", "-f", "web"]);
    d.ok(&["network", "rm", "front", "back"]);

    // --domainname: the UTS domain name, as docker sets it.
    let out = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--domainname",
        "example.org",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname",
    ]);
    assert_eq!(out, "box\nexample.org");
}

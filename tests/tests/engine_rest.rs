//! End-to-end: networks, volumes, images and `system df` of `mydocker
//! system service` driven by the real docker CLI (DOCKER_HOST at the
//! test's socket), checked against the mydocker CLI and docker's status
//! codes. `Docker`'s Drop removes containers and networks (bridges and
//! rules with them) even when a test fails; volumes go with its root.

use e2e::apisvc::{docker_cli_present, ApiService};
use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, skip_unless, wait_for};
use serde_json::Value;

macro_rules! require_docker_cli {
    () => {
        require_root!();
        skip_unless!(
            docker_cli_present(),
            "no docker CLI (scripts/deps.sh installs docker.io)"
        );
    };
}

/// A /24 unique to this test process and call (as tests/network.rs picks).
fn subnet(n: u32) -> String {
    let x = std::process::id().wrapping_mul(2654435761) ^ n.wrapping_mul(40503);
    format!("10.{}.{}.0/24", 100 + x % 40, (x >> 8) % 256)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn networks_by_the_docker_cli_name_containers_and_refuse_what_docker_refuses() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = ApiService::start(&d);
    let sub = subnet(1);
    let id = svc.docker_ok(&[
        "network", "create", "--subnet", &sub, "--label", "tier=web", "apinet",
    ]);
    assert_eq!(id, "apinet");
    // The same network for the mydocker CLI.
    assert!(d
        .ok(&["network", "ls", "-q"])
        .lines()
        .any(|l| l == "apinet"));
    let dup = svc.docker(&["network", "create", "apinet"]);
    assert_exit_code(&dup, 1);
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    assert_eq!(
        svc.docker_ok(&[
            "network",
            "ls",
            "--filter",
            "label=tier=web",
            "--format",
            "{{.Name}}"
        ]),
        "apinet"
    );
    assert_eq!(
        svc.docker_ok(&["network", "ls", "--filter", "label=tier=db", "-q"]),
        ""
    );
    // docker's predefined networks are listed (the bridge before its first use too).
    let names = svc.docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["bridge bridge", "host host", "none null", "apinet bridge"] {
        assert!(names.lines().any(|l| l == want), "{want} in {names}");
    }
    assert_eq!(
        svc.docker_ok(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}}"
        ]),
        "apinet"
    );
    assert_eq!(
        svc.docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}}",
            "none",
            "host"
        ]),
        "none null\nhost host"
    );
    for builtin in ["host", "none", "bridge"] {
        let out = svc.docker(&["network", "rm", builtin]);
        assert_exit_code(&out, 1);
        assert!(
            stderr(&out).contains(&format!(
                "{builtin} is a pre-defined network and cannot be removed"
            )),
            "{}",
            stderr(&out)
        );
    }
    let out = svc.docker(&["network", "create", "host"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let ins = json(&svc.docker_ok(&["network", "inspect", "apinet"]));
    let n = &ins[0];
    assert_eq!(n["Name"], "apinet");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Labels"]["tier"], "web");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], sub.as_str());

    // Two containers talking by name over it.
    svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "apisrv",
        "--network",
        "apinet",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo from-srv > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let fetch =
        "for i in $(seq 50); do wget -qO- http://apisrv/ && exit 0; sleep 0.2; done; exit 1";
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        "busybox",
        "sh",
        "-c",
        fetch,
    ]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "from-srv\n");
    let ins = json(&svc.docker_ok(&["network", "inspect", "apinet"]));
    let ctrs: Vec<&Value> = ins[0]["Containers"].as_object().unwrap().values().collect();
    assert_eq!(ctrs.len(), 1, "{ins}");
    assert_eq!(ctrs[0]["Name"], "apisrv");
    assert!(
        ctrs[0]["IPv4Address"]
            .as_str()
            .unwrap()
            .starts_with(sub.trim_end_matches("0/24")),
        "{ins}"
    );

    // A created container (compose connects between create and start):
    // its own network's aliases take effect at start; another network waits.
    svc.docker_ok(&[
        "create",
        "--name",
        "apilate",
        "--network",
        "apinet",
        "busybox",
        "sleep",
        "60",
    ]);
    svc.docker_ok(&["network", "connect", "--alias", "late", "apinet", "apilate"]);
    svc.docker_ok(&["network", "create", "--subnet", &subnet(2), "apinet2"]);
    let other = svc.docker(&["network", "connect", "apinet2", "apilate"]);
    assert_exit_code(&other, 1);
    assert!(
        stderr(&other).contains("is not running"),
        "{}",
        stderr(&other)
    );
    svc.docker_ok(&["start", "apilate"]);
    let ping = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "late",
    ]);
    assert_exit_code(&ping, 0);
    svc.docker_ok(&["rm", "-f", "apilate"]);

    // connect (with an alias) and disconnect a running container.
    svc.docker_ok(&[
        "network", "connect", "--alias", "extra", "apinet2", "apisrv",
    ]);
    let ins = json(&svc.docker_ok(&["network", "inspect", "apinet2"]));
    assert_eq!(ins[0]["Containers"].as_object().unwrap().len(), 1, "{ins}");
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "apinet2",
        "busybox",
        "sh",
        "-c",
        &fetch.replace("apisrv", "extra"),
    ]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "from-srv\n");
    svc.docker_ok(&["network", "disconnect", "apinet2", "apisrv"]);
    let ins = json(&svc.docker_ok(&["network", "inspect", "apinet2"]));
    assert!(
        ins[0]["Containers"].as_object().unwrap().is_empty(),
        "{ins}"
    );

    // In use: docker's 403 "active endpoints"; unknown: 404.
    let busy = svc.docker(&["network", "rm", "apinet"]);
    assert_exit_code(&busy, 1);
    assert!(
        stderr(&busy).contains("has active endpoints"),
        "{}",
        stderr(&busy)
    );
    let (st, _) = svc.http("DELETE", "/v1.41/networks/apinet", "");
    assert_eq!(st, 403);
    let (st, body) = svc.http("GET", "/v1.41/networks/apinope", "");
    assert_eq!(st, 404, "{body}");
    assert_eq!(json(&body)["message"], "network apinope not found");
    let (st, _) = svc.http("DELETE", "/networks/apinope", "");
    assert_eq!(st, 404);
    let (st, body) = svc.http(
        "POST",
        "/networks/create",
        r#"{"Name": "apibad", "Driver": "overlay"}"#,
    );
    assert_eq!(st, 404, "{body}");
    let (st, _) = svc.http(
        "POST",
        "/networks/create",
        r#"{"Name": "apibad", "Internal": true}"#,
    );
    assert_eq!(st, 400);
    let (st, _) = svc.http("POST", "/networks/create", r#"{"Name": "#);
    assert_eq!(st, 400);
    let (st, _) = svc.http(
        "POST",
        "/networks/apinet/connect",
        r#"{"Container": "nosuchctr"}"#,
    );
    assert_eq!(st, 404);
    assert!(!d.ok(&["network", "ls", "-q"]).contains("apibad"));

    // prune takes the unused one and keeps the used one.
    svc.docker_ok(&["rm", "-f", "apisrv"]);
    svc.docker_ok(&["network", "create", "--subnet", &subnet(3), "apinet3"]);
    svc.docker_ok(&["network", "rm", "apinet"]);
    svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "apiuser",
        "--network",
        "apinet3",
        "busybox",
        "sleep",
        "60",
    ]);
    let pruned = svc.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("apinet2"), "{pruned}");
    assert!(!pruned.contains("apinet3"), "{pruned}");
    let left = svc.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(left.lines().any(|l| l == "apinet3"), "{left}");
    assert!(
        !left.lines().any(|l| l == "apinet2" || l == "apinet"),
        "{left}"
    );
    svc.docker_ok(&["rm", "-f", "apiuser"]);
    svc.docker_ok(&["network", "rm", "apinet3"]);
    assert!(!d.ok(&["network", "ls", "-q"]).contains("apinet"));
}

#[test]
fn volumes_by_the_docker_cli_hold_data_and_refuse_removal_in_use() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = ApiService::start(&d);
    assert_eq!(
        svc.docker_ok(&["volume", "create", "--label", "k=v", "apivol"]),
        "apivol"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "apivol");
    let ins = json(&svc.docker_ok(&["volume", "inspect", "apivol"]));
    assert_eq!(ins[0]["Labels"]["k"], "v");
    assert_eq!(ins[0]["Driver"], "local");
    assert!(std::path::Path::new(ins[0]["Mountpoint"].as_str().unwrap()).is_dir());
    svc.docker_ok(&["volume", "create", "apiother"]);
    assert_eq!(
        svc.docker_ok(&["volume", "ls", "-q", "--filter", "label=k=v"]),
        "apivol"
    );
    assert_eq!(
        svc.docker_ok(&["volume", "ls", "-q", "--filter", "name=other"]),
        "apiother"
    );

    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "apivol:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_exit_code(&out, 0);
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "apivol:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "kept\n");

    svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "apivoluser",
        "--network",
        "none",
        "-v",
        "apivol:/data",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        svc.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "apiother"
    );
    let busy = svc.docker(&["volume", "rm", "apivol"]);
    assert_exit_code(&busy, 1);
    assert!(
        stderr(&busy).contains("volume is in use"),
        "{}",
        stderr(&busy)
    );
    let (st, _) = svc.http("DELETE", "/v1.41/volumes/apivol", "");
    assert_eq!(st, 409);
    let (st, body) = svc.http("GET", "/volumes/apinope", "");
    assert_eq!(st, 404, "{body}");
    let (st, _) = svc.http("DELETE", "/volumes/apinope", "");
    assert_eq!(st, 404);
    let (st, _) = svc.http("DELETE", "/volumes/apinope?force=1", "");
    assert_eq!(st, 204);
    let (st, _) = svc.http(
        "POST",
        "/volumes/create",
        r#"{"Name": "x", "Driver": "nfs"}"#,
    );
    assert_eq!(st, 404);
    let missing = svc.docker(&["volume", "inspect", "apinope"]);
    assert_exit_code(&missing, 1);
    assert!(
        stderr(&missing).contains("no such volume"),
        "{}",
        stderr(&missing)
    );

    // prune: the unused one goes, the used one stays.
    let pruned = svc.docker_ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains("apiother"), "{pruned}");
    assert_eq!(svc.docker_ok(&["volume", "ls", "-q"]), "apivol");
    svc.docker_ok(&["rm", "-f", "apivoluser"]);
    assert_eq!(svc.docker_ok(&["volume", "rm", "apivol"]), "apivol");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
fn images_history_tag_save_rm_prune_pull_and_system_df() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = ApiService::start(&d);
    let id = d.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let id = id.trim();
    let hist = svc.docker_ok(&["image", "history", "--format", "{{.ID}}", "busybox"]);
    assert_eq!(hist.lines().next(), Some(&id[7..19]), "{hist}");
    let missing = svc.docker(&["image", "history", "nosuch"]);
    assert_exit_code(&missing, 1);
    assert!(
        stderr(&missing).contains("No such image: nosuch"),
        "{}",
        stderr(&missing)
    );

    svc.docker_ok(&["tag", "busybox", "apicopy:v2"]);
    assert!(d
        .ok(&["images"])
        .lines()
        .any(|l| l.starts_with("apicopy ") && l.contains("v2")));
    let tags = svc.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.lines().any(|l| l == "apicopy:v2"), "{tags}");

    // save, one image and two (the `names=a&names=b` form), loads back.
    let tar = d.root.path().join("api-save.tar");
    svc.docker_ok(&["save", "-o", tar.to_str().unwrap(), "apicopy:v2"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        stdout(&list).lines().any(|l| l == "manifest.json"),
        "{}",
        stdout(&list)
    );
    let two = d.root.path().join("api-save2.tar");
    svc.docker_ok(&["save", "-o", two.to_str().unwrap(), "busybox", "apicopy:v2"]);
    let manifest = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&two)
        .arg("manifest.json")
        .output()
        .unwrap();
    let m = json(&stdout(&manifest));
    let repo_tags: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["RepoTags"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    assert!(
        repo_tags.contains(&"busybox:latest") && repo_tags.contains(&"apicopy:v2"),
        "{m}"
    );
    let (st, _) = svc.http("GET", "/images/nosuch/get", "");
    assert_eq!(st, 404);

    assert_eq!(
        svc.docker_ok(&["rmi", "apicopy:v2"]),
        "Untagged: apicopy:v2"
    );
    assert!(!d.ok(&["images"]).contains("apicopy"));
    let out = svc.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("apicopy:v2"), "{out}");
    svc.docker_ok(&["rmi", "apicopy:v2"]);
    let missing = svc.docker(&["rmi", "nosuch"]);
    assert_exit_code(&missing, 1);
    assert!(
        stderr(&missing).contains("No such image: nosuch"),
        "{}",
        stderr(&missing)
    );

    // An image a container uses: docker's 409 without force.
    svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "apiimguser",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let (st, body) = svc.http("DELETE", "/images/busybox", "");
    assert_eq!(st, 409, "{body}");

    // system df: the image is active, the running container too.
    let df = svc.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.lines().any(|l| l == "Images 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Containers 1 1"), "{df}");
    assert!(df.lines().any(|l| l == "Local Volumes 0 0"), "{df}");
    let (st, body) = svc.http("GET", "/system/df", "");
    assert_eq!(st, 200);
    assert!(json(&body)["LayersSize"].as_u64().unwrap() > 0, "{body}");

    // prune: nothing dangling, nothing unused; busybox stays.
    let pruned = svc.docker_ok(&["image", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space: 0B"), "{pruned}");
    let pruned = svc.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Total reclaimed space: 0B"), "{pruned}");
    assert!(d.ok(&["images"]).contains("busybox"));
    svc.docker_ok(&["rm", "-f", "apiimguser"]);

    // pull: docker's error for a registry it cannot reach.
    let pull = svc.docker(&["pull", "busybox:nope"]);
    assert_exit_code(&pull, 1);
    assert!(
        stderr(&pull)
            .contains("Error response from daemon: Get \"https://registry-1.docker.io/v2/\""),
        "{}",
        stderr(&pull)
    );
    wait_for("nothing left", 5, || d.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn python_sdk_runs_execs_waits_and_manages_networks_and_volumes() {
    require_docker_cli!();
    skip_unless!(
        e2e::apisvc::python_sdk_present(),
        "no python3 docker SDK (python3-docker)"
    );
    let d = Docker::new();
    let svc = ApiService::start(&d);
    let script = format!(
        r#"
import docker
c = docker.DockerClient(base_url="{}")
net = c.networks.create("apipynet", driver="bridge", labels={{"py": "1"}},
    ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="{}")]))
print(net.name, c.networks.get("apipynet").attrs["Labels"]["py"])
vol = c.volumes.create("apipyvol", labels={{"py": "2"}})
print(vol.name, [v.name for v in c.volumes.list(filters={{"label": "py=2"}})][0])
ct = c.containers.run("busybox", ["sh", "-c", "echo py > /v/f; echo out; exec sleep 60"],
    detach=True, network="apipynet", volumes={{"apipyvol": {{"bind": "/v", "mode": "rw"}}}})
import time
for _ in range(100):
    if ct.logs() == b"out\n":
        break
    time.sleep(0.1)
print(ct.logs().decode().strip())
r = ct.exec_run(["cat", "/v/f"])
print(r.exit_code, r.output.decode().strip())
ct.kill()
print(ct.wait()["StatusCode"])
ct.remove()
net.remove()
vol.remove()
print(len(c.networks.list(names=["apipynet"])), len(c.volumes.list()))
"#,
        svc.host(),
        subnet(7)
    );
    let text = e2e::apisvc::python(&script);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "apipynet 1",
            "apipyvol apipyvol",
            "out",
            "0 py",
            "137",
            "0 0"
        ],
        "{text}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

//! End-to-end: image UX as docker has it: reference normalization, OCI
//! indexes with several platforms, zstd layers, manifest digests,
//! history, commit, image prune, system df, cp and diff.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, TempDir};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn sha256(bytes: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = c.wait_with_output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", s.split_whitespace().next().unwrap())
}

fn filter(cmd: &str, arg: &str, bytes: &[u8]) -> Vec<u8> {
    let mut c = Command::new(cmd)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = bytes.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = c.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success(), "{cmd} {arg}");
    out.stdout
}

/// An OCI image layout written by hand (skopeo and umoci are not here).
struct Layout {
    dir: TempDir,
}

impl Layout {
    fn new() -> Layout {
        let dir = TempDir::new("oci");
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stores a blob; returns its descriptor.
    fn blob(&self, media: &str, bytes: &[u8]) -> Value {
        let d = sha256(bytes);
        std::fs::write(
            self.path().join("blobs/sha256").join(&d["sha256:".len()..]),
            bytes,
        )
        .unwrap();
        json!({"mediaType": media, "digest": d, "size": bytes.len()})
    }

    /// A layer holding `files`, compressed with `how` ("gzip", "zstd" or
    /// "none"); returns (descriptor, diff id).
    fn layer(&self, files: &[(&str, &str)], how: &str) -> (Value, String) {
        let stage = TempDir::new("stage");
        for (name, body) in files {
            let p = stage.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let out = Command::new("tar")
            .args(["--owner=0", "--group=0", "-C"])
            .arg(stage.path())
            .args(["-cf", "-", "."])
            .output()
            .unwrap();
        assert!(out.status.success());
        let diff_id = sha256(&out.stdout);
        let (media, bytes) = match how {
            "gzip" => (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                filter("gzip", "-c", &out.stdout),
            ),
            "zstd" => (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                filter("zstd", "-c", &out.stdout),
            ),
            _ => ("application/vnd.oci.image.layer.v1.tar", out.stdout),
        };
        (self.blob(media, &bytes), diff_id)
    }

    /// An image manifest for `arch` with one layer; returns its descriptor
    /// (with a platform).
    fn image(&self, arch: &str, files: &[(&str, &str)], how: &str) -> Value {
        let (layer, diff_id) = self.layer(files, how);
        let config = json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2024-01-02T03:04:05Z", "created_by": format!("COPY {arch} /")}],
        });
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [layer],
        });
        let mut d = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        d
    }

    /// An image index over `manifests`; returns its descriptor.
    fn index(&self, manifests: Vec<Value>) -> Value {
        let ix = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            ix.to_string().as_bytes(),
        )
    }

    /// Writes `index.json` listing `top`, named `ref_name` when given.
    fn finish(&self, mut top: Vec<(Value, Option<&str>)>) {
        let manifests: Vec<Value> = top
            .iter_mut()
            .map(|(d, name)| {
                if let Some(n) = name {
                    d["annotations"] = json!({"org.opencontainers.image.ref.name": n});
                }
                d.clone()
            })
            .collect();
        let ix = json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(self.path().join("index.json"), ix.to_string()).unwrap();
    }
}

fn image_inspect(d: &Docker, r: &str) -> Value {
    let v: Value = serde_json::from_str(&d.ok(&["image", "inspect", r])).unwrap();
    v[0].clone()
}

fn image_count(d: &Docker) -> usize {
    d.ok(&["images", "-q", "--no-trunc"])
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn references_normalize_like_docker() {
    require_root!();
    let d = Docker::new();
    let id = image_inspect(&d, "busybox")["Id"].clone();
    for r in [
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
    ] {
        assert_eq!(image_inspect(&d, r)["Id"], id, "{r}");
    }
    d.ok(&["tag", "docker.io/library/busybox", "docker.io/x/y:1"]);
    d.ok(&["tag", "busybox", "docker.io/library/other"]);
    let tags = image_inspect(&d, "x/y:1")["RepoTags"].clone();
    let mut tags: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "other:latest", "x/y:1"]);
    let listed = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(listed.lines().any(|l| l == "x/y:1"), "{listed}");
    assert!(!listed.contains("docker.io"), "{listed}");
    let by_full = d.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "docker.io/library/busybox",
    ]);
    assert_eq!(by_full, "busybox");
    d.ok(&["rmi", "docker.io/x/y:1"]);
    assert_exit_code(&d.run(&["image", "inspect", "x/y:1"]), 1);
    // a bad name is refused, nothing tagged
    let out = d.run(&["tag", "busybox", "docker.io/Bad"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(image_count(&d), 1);
}

#[test]
fn oci_index_loads_this_platform_with_zstd_layers_and_digests() {
    require_root!();
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIP oci_index_loads_this_platform: the layout is built for amd64 hosts");
        return;
    }
    let d = Docker::new();
    let l = Layout::new();
    let arm = l.image("arm64", &[("which", "arm64\n")], "gzip");
    let amd = l.image("amd64", &[("which", "amd64\n")], "zstd");
    let amd_digest = amd["digest"].as_str().unwrap().to_string();
    let attestation = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": amd_digest, "size": amd["size"],
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
    });
    // arm64 first: a loader taking the first or the last one is caught.
    let ix = l.index(vec![arm, amd.clone(), attestation]);
    let ix_digest = ix["digest"].as_str().unwrap().to_string();
    l.finish(vec![(ix, Some("multi"))]);
    let out = d.run(&["load", "-i", l.path().to_str().unwrap()]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "Loaded image: multi:latest");
    assert_eq!(image_count(&d), 2, "only one platform is loaded");
    let img = image_inspect(&d, "multi");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["RepoDigests"], json!([format!("multi@{ix_digest}")]));
    // the zstd layer was unpacked (the amd64 one, not arm64's)
    let diff = img["RootFS"]["Layers"][0].as_str().unwrap();
    let which = d
        .root
        .path()
        .join("layers/sha256")
        .join(&diff["sha256:".len()..])
        .join("which");
    assert_eq!(std::fs::read_to_string(which).unwrap(), "amd64\n");
    // digests: the images column and resolving by digest
    let rows = d.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
    ]);
    assert!(
        rows.lines().any(|r| r == format!("multi {ix_digest}")),
        "{rows}"
    );
    assert!(rows.lines().any(|r| r == "busybox <none>"), "{rows}");
    let by_digest = image_inspect(&d, &format!("docker.io/library/multi@{ix_digest}"));
    assert_eq!(by_digest["Id"], img["Id"]);
}

#[test]
fn oci_ref_names_and_other_platforms() {
    require_root!();
    let d = Docker::new();
    // a bare tag names no repository: loaded untagged, its id printed
    let l = Layout::new();
    let (os_arch, other) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        _ => ("arm64", "amd64"),
    };
    let img = l.image(os_arch, &[("a", "1\n")], "none");
    l.finish(vec![(img, Some("1.0"))]);
    let out = d.run(&["load", "-i", l.path().to_str().unwrap()]);
    assert_exit_code(&out, 0);
    let line = stdout(&out).trim().to_string();
    assert!(line.starts_with("Loaded image ID: sha256:"), "{line}");
    assert_eq!(image_count(&d), 2);
    // only another platform: refused with what the index has, nothing stored
    let l = Layout::new();
    let img = l.image(other, &[("a", "2\n")], "gzip");
    let ix = l.index(vec![img]);
    l.finish(vec![(ix, Some("docker.io/library/foreign:2"))]);
    let out = d.run(&["load", "-i", l.path().to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains(&format!("linux/{other}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(image_count(&d), 2);
}

#[test]
fn history_and_commit_like_docker() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "h1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hi > /x; echo a long command line that docker cuts at forty-five characters",
    ]);
    let id = d.ok(&["commit", "-m", "my note", "h1", "mine:1"]);
    let img = image_inspect(&d, "mine:1");
    // PATH kept in Env
    let env = img["Config"]["Env"].as_array().unwrap().clone();
    assert!(
        env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
        "{env:?}"
    );
    // no placeholder for the bind-mounted files in the new layer
    let diff = img["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let layer = d
        .root
        .path()
        .join("layers/sha256")
        .join(&diff.as_str().unwrap()["sha256:".len()..]);
    assert!(layer.join("x").exists());
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(!layer.join(f).exists(), "{f} committed");
    }
    // nor the /etc the runtime's mount points made overlay copy up
    assert!(!layer.join("etc").exists(), "an untouched /etc committed");
    // history: docker's columns, aligned, created_by the command
    let out = d.ok(&["history", "mine:1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    // Columns by character position (the ellipsis is one character).
    let col = |l: &str, name: &str| -> Option<String> {
        let at = lines[0].find(name)?;
        Some(l.chars().skip(lines[0][..at].chars().count()).collect())
    };
    assert!(lines[0].starts_with("IMAGE "), "{out}");
    assert!(lines[1].starts_with(&id["sha256:".len()..][..12]), "{out}");
    assert!(lines[2].starts_with("<missing>"), "{out}");
    let by = col(lines[1], "CREATED BY").unwrap();
    assert!(
        by.starts_with("sh -c echo hi > /x; echo a long command line…"),
        "{out}"
    );
    let created = col(lines[1], "CREATED ").unwrap();
    assert!(
        created.starts_with("Less than a second ago") || created.contains("second"),
        "{out}"
    );
    assert!(
        col(lines[1], "COMMENT").unwrap().starts_with("my note"),
        "{out}"
    );
    // every row's SIZE starts at the header's column: nothing overflowed
    for l in &lines[1..] {
        let s = col(l, "SIZE").unwrap();
        assert!(s.starts_with(|c: char| c.is_ascii_digit()), "{out}");
    }
    let full = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}",
        "mine:1",
    ]);
    assert_eq!(
        full.lines().next().unwrap(),
        format!("{id}|sh -c echo hi > /x; echo a long command line that docker cuts at forty-five characters")
    );
    assert_eq!(d.ok(&["history", "-q", "mine:1"]).lines().count(), 2);
    d.ok(&["rm", "h1"]);
}

/// The row of `system df` named `kind`, split on runs of 2+ spaces.
fn df_row(d: &Docker, kind: &str) -> Vec<String> {
    let out = d.ok(&["system", "df"]);
    let line = out
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} row in {out}"));
    line.split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn image_prune_asks_and_system_df_counts_active() {
    require_root!();
    let d = Docker::new();
    let out = d.ok(&["system", "df"]);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{out}"
    );
    // one image, no container: nothing active, all of it reclaimable
    let row = df_row(&d, "Images");
    assert_eq!(row[1..3], ["1", "0"], "{row:?}");
    assert!(row[4].ends_with("(100%)"), "{row:?}");
    d.ok(&[
        "run",
        "--name",
        "p1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /f",
    ]);
    let row = df_row(&d, "Images");
    assert_eq!(row[1..3], ["1", "1"], "{row:?}");
    assert_eq!(row[4], "0B (0%)", "{row:?}");
    let row = df_row(&d, "Containers");
    assert_eq!(row[1..3], ["1", "0"], "{row:?}");
    assert!(row[4].ends_with("(100%)"), "{row:?}");
    // a dangling image (untagged commit) and a tagged one nobody uses
    let dangling = d.ok(&["commit", "p1"]);
    d.ok(&["commit", "-c", "ENV X=1", "p1", "kept:1"]);
    assert_eq!(image_count(&d), 3);
    // a closed stdin answers no: nothing removed
    let out = d.run(&["image", "prune"]);
    assert_exit_code(&out, 0);
    assert!(stdout(&out).contains("WARNING! This will remove all dangling images."));
    assert_eq!(image_count(&d), 3);
    // yes: the dangling one goes, the tagged one stays
    let out = e2e::pipe(&mut d.cmd(&["image", "prune"]), "y\n");
    assert_exit_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("deleted: {dangling}")),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("Total reclaimed space: "),
        "{}",
        stdout(&out)
    );
    assert_eq!(image_count(&d), 2);
    // -a -f: every image no container uses (busybox is used by p1)
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: kept:1"), "{out}");
    assert_eq!(d.ok(&["images", "--format", "{{.Repository}}"]), "busybox");
    d.ok(&["rm", "p1"]);
}

/// Runs `cmd` with `bytes` on its stdin.
fn pipe_bytes(cmd: &mut Command, bytes: &[u8]) -> std::process::Output {
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = bytes.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = c.wait_with_output().unwrap();
    w.join().unwrap();
    out
}

#[test]
fn cp_both_ways_stays_inside_the_container() {
    require_root!();
    let d = Docker::new();
    let host = TempDir::new("cphost");
    // A host-only file the container's symlinks point at by host path.
    let secret = host.path().join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let up = "../".repeat(12);
    let script = format!(
        "mkdir -p /data/sub /out && echo inside > /data/sub/f && \
         ln -s {up}{s} /data/esc && ln -s {up}{h} /out/link && \
         mkdir -p {hp} && echo container copy > {s}",
        s = secret.display(),
        h = host.path().display(),
        hp = host.path().display(),
    );
    d.ok(&[
        "run",
        "--name",
        "cp1",
        "--hostname",
        "cph",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    // container -> host: a dir, named as the destination when that is new
    let out = host.path().join("copy");
    d.ok(&["cp", "cp1:/data", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("sub/f")).unwrap(),
        "inside\n"
    );
    // into an existing dir: inside it, under the source's name
    let into = out.join("into");
    std::fs::create_dir(&into).unwrap();
    d.ok(&["cp", "cp1:/data/sub", into.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(into.join("sub/f")).unwrap(),
        "inside\n"
    );
    // a symlink is copied as a link...
    let link = host.path().join("esc");
    d.ok(&["cp", "cp1:/data/esc", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // ...and followed with -L inside the container only: the container's
    // file at that path, never the host's
    let got = host.path().join("followed");
    d.ok(&["cp", "-L", "cp1:/data/esc", got.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "container copy\n");
    // host -> container through a symlinked dir: lands inside the rootfs
    let src_dir = TempDir::new("cpsrc");
    let src = src_dir.path().join("in.txt");
    std::fs::write(&src, "from host\n").unwrap();
    d.ok(&["cp", src.to_str().unwrap(), "cp1:/out/link"]);
    let mut names: Vec<String> = std::fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["copy", "esc", "followed", "secret"],
        "written on the host"
    );
    let back = host.path().join("back");
    d.ok(&[
        "cp",
        &format!("cp1:{}/in.txt", host.path().display()),
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from host\n");
    std::fs::remove_file(&back).unwrap();
    // new name in the container, and a tar on stdout
    d.ok(&["cp", src.to_str().unwrap(), "cp1:/data/renamed.txt"]);
    let tar = d.run(&["cp", "cp1:/data", "-"]);
    assert_exit_code(&tar, 0);
    let tarfile = host.path().join("data.tar");
    std::fs::write(&tarfile, &tar.stdout).unwrap();
    let names = Command::new("tar")
        .arg("-tf")
        .arg(&tarfile)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout).to_string();
    assert!(names.lines().any(|l| l == "data/renamed.txt"), "{names}");
    assert!(names.lines().any(|l| l == "data/sub/f"), "{names}");
    // a tar on stdin into a dir
    let out = pipe_bytes(&mut d.cmd(&["cp", "-", "cp1:/out"]), &tar.stdout);
    assert_exit_code(&out, 0);
    let back = host.path().join("back");
    d.ok(&["cp", "cp1:/out/data/renamed.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from host\n");
    // a bind-mounted file reads as the container sees it
    let hn = host.path().join("hn");
    d.ok(&["cp", "cp1:/etc/hostname", hn.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&hn).unwrap(), "cph\n");
    // errors: a missing path names the container as given
    let out = d.run(&["cp", "cp1:/nope", back.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Could not find the file /nope in container cp1"),
        "{}",
        stderr(&out)
    );
    assert_ne!(d.run(&["cp", "a", "b"]).status.code(), Some(0));
    d.ok(&["rm", "cp1"]);
}

#[test]
fn diff_lists_added_changed_deleted() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "df1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /new && echo 1 > /new/f && rm /bin/vi && echo x >> /etc/group",
    ]);
    let out = d.ok(&["diff", "df1"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "A /new",
        "A /new/f",
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "C /etc/group",
    ] {
        assert!(lines.contains(&want), "{want} missing: {out}");
    }
    for mp in ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"] {
        assert!(!lines.iter().any(|l| l.ends_with(mp)), "{mp} listed: {out}");
    }
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| &l[2..]);
    assert_eq!(lines, sorted);
    assert_ne!(d.run(&["diff", "nosuch"]).status.code(), Some(0));
    d.ok(&["rm", "df1"]);
}

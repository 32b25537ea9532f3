//! Black-box tests of the layerfs CLI against real tarballs, real overlay
//! mounts and a temp store root per test.

use e2e::{assert_exit_code, TempDir};
use layerfs::digest::sha256_of;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp store root; drop unmounts every container rootfs under it (through
/// the CLI) before the TempDir is removed.
struct Store {
    dir: TempDir,
}

impl Store {
    fn new() -> Store {
        Store {
            dir: TempDir::new("lfs"),
        }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_layerfs"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .expect("run layerfs")
    }
    /// Runs and expects exit 0 and a JSON document.
    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_exit_code(&out, 0);
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }
    fn layer_dirs(&self) -> Vec<String> {
        names(&self.root().join("layers/sha256"))
    }
    fn tmp_entries(&self) -> Vec<String> {
        names(&self.root().join("layers/tmp"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        for id in names(&self.root().join("containers")) {
            let _ = self.run(&["umount", &id]);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mount_count(path: &Path) -> usize {
    mountinfo::own()
        .unwrap()
        .iter()
        .filter(|m| m.mount_point == path)
        .count()
}

// ---- building test images --------------------------------------------------

/// A layer tar built entry by entry.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }
    fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_000_000);
        // Raw bytes, bypassing set_path's '..' check: hostile tars need them.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h
    }
    fn file(mut self, path: &str, data: &[u8]) -> Layer {
        if path.len() >= 100 {
            // GNU long-name entry, written by the builder.
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            self.0.append_data(&mut h, path, data).unwrap();
            return self;
        }
        let mut h = Self::header(path, tar::EntryType::Regular, 0o644, data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    fn dir(mut self, path: &str) -> Layer {
        let mut h = Self::header(path, tar::EntryType::Directory, 0o755, 0);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Layer {
        let mut h = Self::header(path, kind, 0o777, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    fn symlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Symlink, path, target)
    }
    fn hardlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Link, path, target)
    }
    fn custom(mut self, h: tar::Header, data: &[u8]) -> Layer {
        self.0.append(&h, data).unwrap();
        self
    }
    fn pax(mut self, ext: &[(&str, &[u8])]) -> Layer {
        self.0.append_pax_extensions(ext.iter().copied()).unwrap();
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn add(b: &mut tar::Builder<std::fs::File>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Writes a `docker save` tarball of one image; `diff_ids` overrides the
/// true digests (to corrupt them).
fn docker_save(
    out: &Path,
    tag: &str,
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<String>>,
    cmd: &[&str],
) -> String {
    let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha256_of(l)).collect());
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/", "User": ""},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = sha256_of(&config);
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut paths = vec![];
    for l in layers {
        let p = format!("{}/layer.tar", &sha256_of(l)[7..]);
        add(&mut b, &p, l);
        paths.push(p);
    }
    add(&mut b, &format!("{}.json", &id[7..]), &config);
    let manifest =
        json!([{"Config": format!("{}.json", &id[7..]), "RepoTags": [tag], "Layers": paths}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.finish().unwrap();
    id
}

fn loaded(store: &Store) -> Value {
    store.ok(&["load", "-i", e2e::busybox_tar().to_str().unwrap()])
}

// ---- load, images, inspect ---------------------------------------------------

#[test]
fn load_busybox_then_images_and_inspect() {
    e2e::require_root!();
    let s = Store::new();
    let out = loaded(&s);
    assert_eq!(out["loaded"], json!(["busybox:latest"]));
    let id = out["ids"][0].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let images = s.ok(&["images"]);
    assert_eq!(images.as_array().unwrap().len(), 1);
    assert_eq!(images[0]["id"], json!(id));
    assert_eq!(images[0]["repoTags"], json!(["busybox:latest"]));
    assert!(images[0]["size"].as_u64().unwrap() > 1_000_000);

    for r in ["busybox", "busybox:latest", &id, &id[7..19]] {
        let img = s.ok(&["inspect", r]);
        assert_eq!(img["id"], json!(id), "inspect {r}");
        assert_eq!(img["config"]["config"]["Cmd"], json!(["sh"]));
    }
    let layer = images[0]["layers"][0].as_str().unwrap();
    assert!(s
        .root()
        .join("layers/sha256")
        .join(&layer[7..])
        .join("bin/busybox")
        .is_file());
    assert!(s
        .root()
        .join("images/sha256")
        .join(format!("{}.json", &id[7..]))
        .is_file());

    let out = s.run(&["inspect", "nope"]);
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).trim(), "layerfs: no such image: nope");
}

#[test]
fn reload_is_a_noop_and_tags_move_to_the_newest_image() {
    e2e::require_root!();
    let s = Store::new();
    let first = loaded(&s);
    let again = loaded(&s);
    assert_eq!(first["ids"], again["ids"]);
    assert_eq!(s.ok(&["images"]).as_array().unwrap().len(), 1);

    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("img.tar");
    let other = docker_save(
        &tar,
        "busybox:latest",
        &[Layer::new().file("hello", b"hi").bytes()],
        None,
        &["cat", "/hello"],
    );
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(s.ok(&["inspect", "busybox"])["id"], json!(other));
    let old = s.ok(&["inspect", first["ids"][0].as_str().unwrap()]);
    assert_eq!(old["repoTags"], json!([]));

    let t = s.ok(&["tag", "busybox", "mine:v1"]);
    assert_eq!(t["id"], json!(other));
    assert_eq!(s.ok(&["inspect", "mine:v1"])["id"], json!(other));
}

#[test]
fn load_from_stdin() {
    e2e::require_root!();
    let s = Store::new();
    let out = Command::new(env!("CARGO_BIN_EXE_layerfs"))
        .arg("--root")
        .arg(s.root())
        .arg("load")
        .stdin(std::fs::File::open(e2e::busybox_tar()).unwrap())
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert_eq!(s.ok(&["images"])[0]["repoTags"], json!(["busybox:latest"]));
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
}

#[test]
fn corrupted_layer_is_refused_and_nothing_stored() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("bad.tar");
    let good = Layer::new().file("a", b"1").bytes();
    let l2 = Layer::new().file("b", b"2").bytes();
    // The second layer's recorded digest is wrong: the first must not stay either.
    let ids = vec![sha256_of(&good), sha256_of(b"something else")];
    docker_save(&tar, "bad:1", &[good, l2], Some(ids), &["sh"]);
    let out = s.run(&["load", "-i", tar.to_str().unwrap()]);
    assert_exit_code(&out, 2);
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert!(s.layer_dirs().is_empty(), "{:?}", s.layer_dirs());
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    assert_eq!(s.ok(&["images"]), json!([]));
}

#[test]
fn bad_input_exits_2() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"not a tarball at all").unwrap();
    assert_exit_code(&s.run(&["load", "-i", junk.to_str().unwrap()]), 2);
    loaded(&s);
    let out = s.run(&["mount", "busybox", "../evil"]);
    assert_exit_code(&out, 2);
    assert_exit_code(&s.run(&["tag", "busybox", "Bad Name"]), 2);
    assert!(!s.root().join("evil").exists());
}

// ---- mount, umount, remove, rmi ---------------------------------------------

#[test]
fn mount_gives_a_rootfs_whose_writes_land_in_upper() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let (a, b) = (e2e::unique("ca"), e2e::unique("cb"));
    let ra = PathBuf::from(s.ok(&["mount", "busybox", &a])["rootfs"].as_str().unwrap());
    let rb = PathBuf::from(s.ok(&["mount", "busybox", &b])["rootfs"].as_str().unwrap());
    assert_eq!(ra, s.root().join("containers").join(&a).join("rootfs"));
    assert!(ra.join("bin/busybox").is_file());
    // Mounting again is the same answer and no second mount.
    assert_eq!(s.ok(&["mount", "busybox", &a])["rootfs"], json!(ra));
    assert_eq!(mount_count(&ra), 1);

    std::fs::write(ra.join("etc/written"), b"x").unwrap();
    assert!(s
        .root()
        .join("containers")
        .join(&a)
        .join("upper/etc/written")
        .is_file());
    let layer = s.ok(&["inspect", "busybox"])["layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!s
        .root()
        .join("layers/sha256")
        .join(&layer[7..])
        .join("etc/written")
        .exists());
    assert!(!rb.join("etc/written").exists(), "containers share a file");

    let rec: Value = serde_json::from_slice(
        &std::fs::read(s.root().join("containers").join(&a).join("layerfs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["image"], s.ok(&["inspect", "busybox"])["id"]);

    // umount keeps the writable layer: remounting shows the file again.
    s.ok(&["umount", &a]);
    assert_eq!(mount_count(&ra), 0);
    s.ok(&["mount", "busybox", &a]);
    assert!(ra.join("etc/written").is_file());
}

#[test]
fn umount_and_remove_are_idempotent() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let id = e2e::unique("ci");
    let root = PathBuf::from(s.ok(&["mount", "busybox", &id])["rootfs"].as_str().unwrap());
    std::fs::write(
        s.root().join("containers").join(&id).join("state.json"),
        b"{}",
    )
    .unwrap();
    s.ok(&["umount", &id]);
    s.ok(&["umount", &id]);
    assert_eq!(mount_count(&root), 0);
    s.ok(&["remove", &id]);
    s.ok(&["remove", &id]);
    s.ok(&["remove", "never-existed"]);
    s.ok(&["umount", "never-existed"]);
    let dir = s.root().join("containers").join(&id);
    assert_eq!(names(&dir), vec!["state.json"], "other tools' files stay");
}

#[test]
fn rmi_is_refused_while_a_container_uses_the_image() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let id = e2e::unique("cr");
    s.ok(&["mount", "busybox", &id]);
    let out = s.run(&["rmi", "busybox"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains(&id), "{}", stderr(&out));
    assert_eq!(s.layer_dirs().len(), 1);

    s.ok(&["remove", &id]);
    let out = s.ok(&["rmi", "busybox"]);
    assert_eq!(out["untagged"], json!(["busybox:latest"]));
    assert_eq!(out["deleted"].as_array().unwrap().len(), 2);
    assert!(s.layer_dirs().is_empty());
    assert_eq!(s.ok(&["images"]), json!([]));
    assert_exit_code(&s.run(&["rmi", "busybox"]), 1);
}

#[test]
fn rmi_of_one_tag_keeps_the_image_and_shared_layers_stay() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    s.ok(&["tag", "busybox", "other:1"]);
    let out = s.ok(&["rmi", "other:1"]);
    assert_eq!(out, json!({"untagged": ["other:1"], "deleted": []}));
    assert_eq!(
        s.ok(&["inspect", "busybox"])["repoTags"],
        json!(["busybox:latest"])
    );

    // Two images sharing the busybox layer: removing one keeps the layer.
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("two.tar");
    let bb_layer = s.ok(&["inspect", "busybox"])["layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = Vec::new();
    {
        let mut ar = tar::Archive::new(std::fs::File::open(e2e::busybox_tar()).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().ends_with("layer.tar") {
                std::io::Read::read_to_end(&mut e, &mut raw).unwrap();
            }
        }
    }
    assert_eq!(sha256_of(&raw), bb_layer);
    docker_save(
        &tar,
        "two:1",
        &[raw, Layer::new().file("x", b"x").bytes()],
        None,
        &["sh"],
    );
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(s.layer_dirs().len(), 2);
    s.ok(&["rmi", "busybox"]);
    assert_eq!(s.layer_dirs().len(), 2, "shared layer kept");
    s.ok(&["rmi", "two:1"]);
    assert!(s.layer_dirs().is_empty());
}

// ---- safe extraction --------------------------------------------------------

/// Loads a one-layer image and expects it refused with `needle` in the
/// message, nothing stored and `outside` untouched.
fn assert_refused(layer: Vec<u8>, needle: &str, outside: &TempDir) {
    let s = Store::new();
    let before = names(outside.path());
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("hostile.tar");
    docker_save(&tar, "hostile:1", &[layer], None, &["sh"]);
    let out = s.run(&["load", "-i", tar.to_str().unwrap()]);
    assert_exit_code(&out, 2);
    assert!(
        stderr(&out).contains(needle),
        "expected {needle:?} in {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(s.layer_dirs().is_empty(), "{:?}", s.layer_dirs());
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    assert_eq!(
        names(outside.path()),
        before,
        "something was written outside"
    );
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"precious"
    );
}

fn outside() -> TempDir {
    let d = TempDir::new("lfso");
    std::fs::write(d.path().join("victim"), b"precious").unwrap();
    d
}

#[test]
fn dotdot_entry_is_refused() {
    e2e::require_root!();
    let o = outside();
    let rel = format!("../../../../../../..{}/evil", o.path().display());
    assert_refused(
        Layer::new().file("ok", b"1").file(&rel, b"pwned").bytes(),
        "evil",
        &o,
    );
    assert_refused(
        Layer::new().dir("a").file("a/../../x", b"pwned").bytes(),
        "a/../../x",
        &o,
    );
}

#[test]
fn file_through_a_planted_symlink_is_refused() {
    e2e::require_root!();
    let o = outside();
    let l = Layer::new()
        .symlink("lnk", o.path().to_str().unwrap())
        .file("lnk/pwned", b"x")
        .bytes();
    assert_refused(l, "lnk/pwned", &o);
    let l = Layer::new()
        .symlink("lnk", o.path().to_str().unwrap())
        .file("lnk/victim", b"x")
        .bytes();
    assert_refused(l, "lnk/victim", &o);
    // A symlinked dir deeper down, and a relative escape.
    let l = Layer::new()
        .dir("a")
        .symlink("a/b", "../../../../../../../../..")
        .file("a/b/tmp/pwned", b"x")
        .bytes();
    assert_refused(l, "a/b/tmp/pwned", &o);
}

#[test]
fn hardlink_outside_is_refused() {
    e2e::require_root!();
    let o = outside();
    let victim = o.path().join("victim");
    let rel = format!("../../../../../../..{}", victim.display());
    assert_refused(Layer::new().hardlink("h", &rel).bytes(), "\"h\"", &o);
    // Absolute targets are layer-relative: not in this layer -> refused.
    assert_refused(
        Layer::new().hardlink("h", victim.to_str().unwrap()).bytes(),
        "not in this layer",
        &o,
    );
}

#[test]
fn whiteout_under_a_symlinked_parent_is_refused() {
    e2e::require_root!();
    let o = outside();
    let l = Layer::new()
        .symlink("lnk", o.path().to_str().unwrap())
        .file("lnk/.wh.victim", b"")
        .bytes();
    assert_refused(l, "lnk/.wh.victim", &o);
    let l = Layer::new()
        .symlink("lnk", o.path().to_str().unwrap())
        .file("lnk/.wh..wh..opq", b"")
        .bytes();
    assert_refused(l, "lnk/.wh..wh..opq", &o);
}

#[test]
fn replacing_a_planted_symlink_does_not_write_through_it() {
    e2e::require_root!();
    let o = outside();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("t.tar");
    let victim = o.path().join("victim");
    let l = Layer::new()
        .symlink("f", victim.to_str().unwrap())
        .file("f", b"new")
        .file("/abs/file", b"abs")
        .bytes();
    let diff = sha256_of(&l);
    docker_save(&tar, "t:1", &[l], None, &["sh"]);
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    let dir = s.root().join("layers/sha256").join(&diff[7..]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(dir.join("f")).unwrap().is_file());
    assert_eq!(
        std::fs::read(dir.join("abs/file")).unwrap(),
        b"abs",
        "leading / is stripped"
    );
}

#[test]
fn metadata_survives_extraction() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("meta.tar");
    let mut suid = Layer::header("bin/suid", tar::EntryType::Regular, 0o4755, 2);
    suid.set_uid(1000);
    suid.set_gid(1001);
    suid.set_cksum();
    let mut null = Layer::header("dev/null", tar::EntryType::Char, 0o666, 0);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    null.set_cksum();
    let mut fifo = Layer::header("run/fifo", tar::EntryType::Fifo, 0o600, 0);
    fifo.set_cksum();
    let mut sticky = Layer::header("tmp", tar::EntryType::Directory, 0o1777, 0);
    sticky.set_cksum();
    let l = Layer::new()
        .dir("bin")
        .custom(suid, b"#!")
        .hardlink("bin/same", "bin/suid")
        .symlink("bin/sh", "/bin/suid")
        .dir("dev")
        .custom(null, b"")
        .dir("run")
        .custom(fifo, b"")
        .custom(sticky, b"")
        .pax(&[("SCHILY.xattr.user.test", b"v1")])
        .file("x", b"x")
        .bytes();
    let diff = sha256_of(&l);
    docker_save(&tar, "meta:1", &[l], None, &["sh"]);
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    let d = s.root().join("layers/sha256").join(&diff[7..]);
    let m = std::fs::metadata(d.join("bin/suid")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1000, 1001, 0o4755)
    );
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(
        std::fs::metadata(d.join("bin/same")).unwrap().ino(),
        m.ino()
    );
    assert_eq!(
        std::fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("/bin/suid")
    );
    let n = std::fs::metadata(d.join("dev/null")).unwrap();
    assert!(n.file_type().is_char_device());
    assert_eq!(n.rdev(), libc::makedev(1, 3));
    assert!(std::fs::metadata(d.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::metadata(d.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(
        getxattr(&d.join("x"), "user.test").as_deref(),
        Some(&b"v1"[..])
    );
}

#[test]
fn owners_and_modes_hold_without_chown_where_creation_gives_them() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("modes.tar");
    let mut sgid = Layer::header("shared", tar::EntryType::Directory, 0o2775, 0);
    sgid.set_gid(1234);
    sgid.set_cksum();
    let file = |path: &str, mode: u32| {
        let mut h = Layer::header(path, tar::EntryType::Regular, mode, 1);
        h.set_cksum();
        h
    };
    let l = Layer::new()
        .custom(file("ro", 0o444), b"r")
        .custom(file("private", 0o600), b"p")
        // Bits the umask (022) strips at creation: need a chmod.
        .custom(file("open", 0o666), b"o")
        .custom(sgid, b"")
        // Root-owned in the tar, under a setgid dir of group 1234: created
        // with group 1234, so it needs its chown.
        .custom(file("shared/f", 0o644), b"f")
        .symlink("shared/l", "f")
        .bytes();
    let diff = sha256_of(&l);
    docker_save(&tar, "modes:1", &[l], None, &["sh"]);
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    let d = s.root().join("layers/sha256").join(&diff[7..]);
    let mode = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("ro"), 0o444);
    assert_eq!(mode("private"), 0o600);
    assert_eq!(mode("open"), 0o666);
    assert_eq!(mode("shared"), 0o2775);
    let m = std::fs::metadata(d.join("shared/f")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o644));
    let l = std::fs::symlink_metadata(d.join("shared/l")).unwrap();
    assert_eq!((l.uid(), l.gid()), (0, 0));
    assert_eq!(std::fs::read(d.join("ro")).unwrap(), b"r");
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

#[test]
fn three_layers_with_whiteouts_show_the_final_state() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("three.tar");
    let l1 = Layer::new()
        .dir("a")
        .file("a/1", b"1")
        .file("a/2", b"2")
        .dir("d")
        .file("d/old", b"o")
        .dir("d/sub")
        .file("f", b"f")
        .bytes();
    let l2 = Layer::new()
        .file("a/.wh.1", b"")
        .dir("d")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file("g", b"g")
        .bytes();
    let l3 = Layer::new().file(".wh.f", b"").file("a/3", b"3").bytes();
    let l2_diff = sha256_of(&l2);
    docker_save(&tar, "three:1", &[l1, l2, l3], None, &["sh"]);
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    // The stored layer carries overlay's own whiteout forms.
    let d2 = s.root().join("layers/sha256").join(&l2_diff[7..]);
    let wh = std::fs::symlink_metadata(d2.join("a/1")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        getxattr(&d2.join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!d2.join("d/.wh..wh..opq").exists());

    let id = e2e::unique("c3");
    let root = PathBuf::from(s.ok(&["mount", "three:1", &id])["rootfs"].as_str().unwrap());
    assert_eq!(names(&root), vec!["a", "d", "g"]);
    assert_eq!(names(&root.join("a")), vec!["2", "3"]);
    assert_eq!(names(&root.join("d")), vec!["new"]);
    assert_eq!(std::fs::read(root.join("a/3")).unwrap(), b"3");
    s.ok(&["remove", &id]);
}

// ---- OCI layout ---------------------------------------------------------------

#[test]
fn oci_layout_dir_and_tarball_with_gzip_layers_load() {
    e2e::require_root!();
    use std::io::Write;
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let out = tmp.path().join("oci.tar");
    let layer = Layer::new().file("hello.txt", b"oci").bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let gz = gz.finish().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_of(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_of(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_of(&gz), "size": gz.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "ocitest:v2"}}],
    }))
    .unwrap();
    // The layout as a directory, then the same as a tarball.
    let dir = tmp.path().join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), &index).unwrap();
    for blob in [&config, &manifest, &gz] {
        std::fs::write(dir.join("blobs/sha256").join(&sha256_of(blob)[7..]), blob).unwrap();
    }
    let res = s.ok(&["load", "-i", dir.to_str().unwrap()]);
    assert_eq!(res["loaded"], json!(["ocitest:v2"]));
    assert_eq!(res["ids"], json!([sha256_of(&config)]));
    s.ok(&["rmi", "ocitest:v2"]);
    assert!(s.layer_dirs().is_empty());

    let mut b = tar::Builder::new(std::fs::File::create(&out).unwrap());
    b.append_dir_all(".", &dir).unwrap();
    b.finish().unwrap();
    drop(b);
    let res = s.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(res["loaded"], json!(["ocitest:v2"]));
    assert_eq!(res["ids"], json!([sha256_of(&config)]));
    let d = s.root().join("layers/sha256").join(&sha256_of(&layer)[7..]);
    assert_eq!(std::fs::read(d.join("hello.txt")).unwrap(), b"oci");
}

// ---- commit, export, import, history -------------------------------------------

#[test]
fn commit_turns_upper_changes_into_a_layer() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let (a, b) = (e2e::unique("cm"), e2e::unique("cn"));
    let ra = PathBuf::from(s.ok(&["mount", "busybox", &a])["rootfs"].as_str().unwrap());
    std::fs::write(ra.join("new.txt"), b"new").unwrap();
    std::fs::remove_file(ra.join("etc/hostname")).unwrap();
    std::fs::remove_dir_all(ra.join("usr/sbin")).unwrap();
    std::fs::create_dir(ra.join("usr/sbin")).unwrap();
    std::fs::write(ra.join("usr/sbin/only"), b"o").unwrap();

    let out = s.ok(&[
        "commit",
        &a,
        "mine:v1",
        "-m",
        "msg",
        "--change-json",
        r#"{"Cmd":["cat","/new.txt"]}"#,
    ]);
    assert_eq!(out["tag"], json!("mine:v1"));
    let img = s.ok(&["inspect", "mine:v1"]);
    assert_eq!(img["id"], out["id"]);
    assert_eq!(img["config"]["config"]["Cmd"], json!(["cat", "/new.txt"]));
    assert_eq!(
        img["config"]["config"]["Env"],
        s.ok(&["inspect", "busybox"])["config"]["config"]["Env"]
    );
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);
    assert_eq!(img["layers"][1], out["layer"]);
    assert_eq!(img["config"]["rootfs"]["diff_ids"], img["layers"]);

    let hist = s.ok(&["history", "mine:v1"]);
    assert_eq!(hist[0]["comment"], json!("msg"));
    assert_eq!(hist[0]["layer"], out["layer"]);
    assert_eq!(hist.as_array().unwrap().len(), 2);

    // The new image shows exactly the committed state.
    let rb = PathBuf::from(s.ok(&["mount", "mine:v1", &b])["rootfs"].as_str().unwrap());
    assert_eq!(std::fs::read(rb.join("new.txt")).unwrap(), b"new");
    assert!(!rb.join("etc/hostname").exists());
    assert!(rb.join("etc/passwd").exists());
    assert_eq!(names(&rb.join("usr/sbin")), vec!["only"]);
    assert!(rb.join("bin/busybox").is_file());

    // The committed image is in use by b: rmi refused; the parent too (a).
    assert_exit_code(&s.run(&["rmi", "mine:v1"]), 1);
    s.ok(&["remove", &a]);
    s.ok(&["remove", &b]);
    s.ok(&["rmi", "mine:v1"]);
    assert_eq!(
        s.layer_dirs().len(),
        1,
        "the busybox layer stays for busybox"
    );
}

#[test]
fn commit_of_an_unknown_container_fails() {
    e2e::require_root!();
    let s = Store::new();
    let out = s.run(&["commit", "nosuch", "x:1"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
    assert_exit_code(
        &s.run(&["commit", "nosuch", "x:1", "--change-json", "[1]"]),
        2,
    );
}

#[test]
fn export_then_import_round_trips_the_rootfs() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let id = e2e::unique("ce");
    let root = PathBuf::from(s.ok(&["mount", "busybox", &id])["rootfs"].as_str().unwrap());
    std::fs::write(root.join("etc/motd"), b"hello").unwrap();
    std::fs::remove_file(root.join("etc/hostname")).unwrap();
    // Export of an unmounted container mounts it for the time of the export.
    s.ok(&["umount", &id]);
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("flat.tar");
    let out = s.ok(&["export", &id, "-o", tar.to_str().unwrap()]);
    assert!(out["size"].as_u64().unwrap() > 1_000_000);
    assert_eq!(mount_count(&root), 0, "temporary mount undone");

    let imp = s.ok(&[
        "import",
        tar.to_str().unwrap(),
        "flat:1",
        "--change-json",
        r#"{"Cmd":["sh"]}"#,
    ]);
    let img = s.ok(&["inspect", "flat:1"]);
    assert_eq!(img["layers"], json!([imp["layer"]]));
    assert_eq!(img["config"]["config"]["Cmd"], json!(["sh"]));
    let d = s
        .root()
        .join("layers/sha256")
        .join(&imp["layer"].as_str().unwrap()[7..]);
    assert_eq!(std::fs::read(d.join("etc/motd")).unwrap(), b"hello");
    assert!(!d.join("etc/hostname").exists());
    assert!(d.join("bin/busybox").is_file());
    assert!(std::fs::symlink_metadata(d.join("bin/sh"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn export_keeps_metadata_long_names_and_large_files() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let src = tmp.path().join("rich.tar");
    let mut suid = Layer::header("bin/suid", tar::EntryType::Regular, 0o4755, 2);
    suid.set_uid(1000);
    suid.set_gid(1001);
    suid.set_cksum();
    let mut null = Layer::header("dev/null", tar::EntryType::Char, 0o666, 0);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    null.set_cksum();
    // Past the 64 KiB that go through the buffer: sent by the kernel.
    let big: Vec<u8> = (0..300_001u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let long = format!("deep/{}/file", "n".repeat(120));
    let l = Layer::new()
        .dir("bin")
        .custom(suid, b"#!")
        .hardlink("bin/same", "bin/suid")
        .symlink("bin/sh", "/bin/suid")
        .dir("dev")
        .custom(null, b"")
        .pax(&[("SCHILY.xattr.user.test", b"v1")])
        .file("x", b"x")
        .file("big", &big)
        .file(&long, b"long")
        .bytes();
    docker_save(&src, "rich:1", &[l], None, &["sh"]);
    s.ok(&["load", "-i", src.to_str().unwrap()]);
    let id = e2e::unique("cx");
    s.ok(&["mount", "rich:1", &id]);
    let out = tmp.path().join("out.tar");
    let exported = s.ok(&["export", &id, "-o", out.to_str().unwrap(), "--sync"]);
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(exported["size"].as_u64(), Some(size));
    assert_eq!(size % 512, 0, "a tar is whole blocks");
    // No temp file left beside the output.
    assert_eq!(names(tmp.path()), vec!["out.tar", "rich.tar"]);

    let imp = s.ok(&["import", out.to_str().unwrap(), "back:1"]);
    let d = s
        .root()
        .join("layers/sha256")
        .join(&imp["layer"].as_str().unwrap()[7..]);
    assert_eq!(std::fs::read(d.join("big")).unwrap(), big);
    assert_eq!(std::fs::read(d.join(&long)).unwrap(), b"long");
    let m = std::fs::metadata(d.join("bin/suid")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1000, 1001, 0o4755)
    );
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(
        std::fs::metadata(d.join("bin/same")).unwrap().ino(),
        m.ino(),
        "hardlink kept"
    );
    assert_eq!(
        std::fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("/bin/suid")
    );
    assert_eq!(
        std::fs::metadata(d.join("dev/null")).unwrap().rdev(),
        libc::makedev(1, 3)
    );
    assert_eq!(
        getxattr(&d.join("x"), "user.test").as_deref(),
        Some(&b"v1"[..])
    );
    // The same tree gives the same bytes.
    let again = tmp.path().join("again.tar");
    s.ok(&["export", &id, "-o", again.to_str().unwrap()]);
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&out).unwrap());
}

#[test]
fn save_then_load_gives_the_same_ids() {
    e2e::require_root!();
    let s = Store::new();
    let first = loaded(&s);
    let tmp = TempDir::new("lfst");
    // A multi-layer image with whiteouts, long names and xattrs, plus a commit.
    let long = format!("d/{}", "n".repeat(150));
    let l1 = Layer::new()
        .dir("d")
        .file("d/a", b"a")
        .file(&long, b"long")
        .pax(&[("SCHILY.xattr.user.k", b"v")])
        .file("x", b"x")
        .bytes();
    let l2 = Layer::new()
        .file("d/.wh.a", b"")
        .file("d/.wh..wh..opq", b"")
        .bytes();
    let multi = tmp.path().join("multi.tar");
    let multi_id = docker_save(&multi, "multi:1", &[l1, l2], None, &["sh"]);
    s.ok(&["load", "-i", multi.to_str().unwrap()]);
    let c = e2e::unique("cs");
    let root = PathBuf::from(s.ok(&["mount", "busybox", &c])["rootfs"].as_str().unwrap());
    std::fs::write(root.join("committed"), b"c").unwrap();
    let committed = s.ok(&["commit", &c, "mine:v1"])["id"].clone();
    s.ok(&["remove", &c]);

    let out = tmp.path().join("saved.tar");
    let saved = s.ok(&[
        "save",
        "busybox",
        "multi:1",
        "mine:v1",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(saved["ids"], json!([first["ids"][0], multi_id, committed]));

    let s2 = Store::new();
    let back = s2.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(back["ids"], saved["ids"]);
    assert_eq!(
        back["loaded"],
        json!(["busybox:latest", "multi:1", "mine:v1"])
    );
    for r in ["busybox", "multi:1", "mine:v1"] {
        assert_eq!(
            s2.ok(&["inspect", r])["layers"],
            s.ok(&["inspect", r])["layers"],
            "{r}"
        );
    }
    assert_exit_code(&s.run(&["save", "nope", "-o", out.to_str().unwrap()]), 1);
}

// ---- volumes ------------------------------------------------------------------

fn resolve(s: &Store, id: &str, specs: Value) -> Output {
    e2e::pipe(
        Command::new(env!("CARGO_BIN_EXE_layerfs"))
            .arg("--root")
            .arg(s.root())
            .args(["volume", "resolve", id]),
        &specs.to_string(),
    )
}

#[test]
fn volume_create_ls_inspect_rm() {
    e2e::require_root!();
    let s = Store::new();
    let v = s.ok(&["volume", "create", "data"]);
    assert_eq!(v["name"], json!("data"));
    assert!(Path::new(v["mountpoint"].as_str().unwrap()).is_dir());
    assert_eq!(
        s.ok(&["volume", "create", "data"])["createdAt"],
        v["createdAt"],
        "create is idempotent"
    );
    let anon = s.ok(&["volume", "create"]);
    let anon_name = anon["name"].as_str().unwrap().to_string();
    assert_eq!(anon_name.len(), 64);
    let ls = s.ok(&["volume", "ls"]);
    assert_eq!(ls.as_array().unwrap().len(), 2);
    assert_eq!(s.ok(&["volume", "inspect", "data"])["inUseBy"], json!([]));
    s.ok(&["volume", "rm", "data"]);
    s.ok(&["volume", "rm", "data"]);
    let out = s.run(&["volume", "inspect", "data"]);
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).trim(), "layerfs: no such volume: data");
    assert_exit_code(&s.run(&["volume", "create", "../x"]), 2);
    assert_eq!(s.ok(&["volume", "prune"])["removed"], json!([anon_name]));
    assert_eq!(s.ok(&["volume", "ls"]), json!([]));
}

#[test]
fn volume_resolve_makes_oci_mounts_and_seeds_new_volumes() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let id = e2e::unique("cv");
    s.ok(&["mount", "busybox", &id]);
    let host = s.root().join("hostdir");
    let specs = json!([
        {"type": "volume", "source": "etcvol", "target": "/etc/"},
        {"type": "volume", "target": "/anon", "extra": "ignored"},
        {"type": "bind", "source": host, "target": "/h", "readonly": true},
        {"type": "tmpfs", "target": "/run"},
    ]);
    let out = resolve(&s, &id, specs.clone());
    assert_exit_code(&out, 0);
    let mounts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let etc = s.root().join("volumes/etcvol/_data");
    assert_eq!(
        mounts[0],
        json!({"destination": "/etc", "type": "bind", "source": etc, "options": ["rbind", "rprivate"]})
    );
    assert_eq!(mounts[1]["type"], json!("bind"));
    assert_eq!(
        mounts[2],
        json!({"destination": "/h", "type": "bind", "source": host, "options": ["rbind", "rprivate", "ro"]})
    );
    assert_eq!(mounts[3]["type"], json!("tmpfs"));
    assert!(host.is_dir(), "missing bind source created");
    // Seeded from the image.
    assert_eq!(std::fs::read(etc.join("hostname")).unwrap(), b"busybox\n");

    // An existing volume is not seeded again.
    std::fs::remove_file(etc.join("hostname")).unwrap();
    assert_exit_code(
        &resolve(
            &s,
            &id,
            json!([{"type": "volume", "source": "etcvol", "target": "/etc"}]),
        ),
        0,
    );
    assert!(!etc.join("hostname").exists());

    // In use: rm refused (naming the container), prune keeps it.
    let out = s.run(&["volume", "rm", "etcvol"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains(&id));
    assert_eq!(
        s.ok(&["volume", "inspect", "etcvol"])["inUseBy"],
        json!([id])
    );
    assert_eq!(s.ok(&["volume", "prune"])["removed"], json!([]));
    s.ok(&["remove", &id]);
    assert_eq!(
        s.ok(&["volume", "prune"])["removed"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn volume_resolve_refuses_bad_specs_before_creating_anything() {
    e2e::require_root!();
    let s = Store::new();
    let id = e2e::unique("cw");
    for bad in [
        json!([{"type": "volume", "source": "ok", "target": "/a"}, {"type": "volume", "source": "ok2", "target": "/a"}]),
        json!([{"type": "volume", "source": "ok", "target": "relative"}]),
        json!([{"type": "volume", "source": "ok", "target": "/a/../b"}]),
        json!([{"type": "bind", "source": "rel", "target": "/b"}]),
        json!([{"type": "nfs", "target": "/c"}]),
        json!({"not": "an array"}),
    ] {
        let out = resolve(&s, &id, bad.clone());
        assert_exit_code(&out, 2);
        assert_eq!(s.ok(&["volume", "ls"]), json!([]), "{bad}");
    }
}

#[test]
fn many_layers_mount_past_the_option_page_limit() {
    e2e::require_root!();
    let s = Store::new();
    let tmp = TempDir::new("lfst");
    let tar = tmp.path().join("many.tar");
    // 70 lowerdirs: too long for one mount option page, absolute or relative.
    let layers: Vec<Vec<u8>> = (0..70)
        .map(|i| {
            Layer::new()
                .file(&format!("f{i:02}"), format!("{i}").as_bytes())
                .bytes()
        })
        .collect();
    docker_save(&tar, "many:1", &layers, None, &["sh"]);
    s.ok(&["load", "-i", tar.to_str().unwrap()]);
    let id = e2e::unique("cl");
    let root = PathBuf::from(s.ok(&["mount", "many:1", &id])["rootfs"].as_str().unwrap());
    assert_eq!(names(&root).len(), 70);
    assert_eq!(std::fs::read(root.join("f69")).unwrap(), b"69");
    assert_eq!(mount_count(&root), 1);
    s.ok(&["remove", &id]);
    assert_eq!(mount_count(&root), 0);
}

#[test]
fn entry_under_a_regular_file_is_refused() {
    e2e::require_root!();
    let o = outside();
    assert_refused(
        Layer::new().file("f", b"1").file("f/child", b"2").bytes(),
        "f/child",
        &o,
    );
}

#[test]
fn root_behind_a_symlink_mounts_once() {
    e2e::require_root!();
    let s = Store::new();
    loaded(&s);
    let link = s.root().join("via-link");
    std::os::unix::fs::symlink(s.root(), &link).unwrap();
    let id = e2e::unique("cy");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_layerfs"))
            .arg("--root")
            .arg(&link)
            .args(args)
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
    };
    run(&["mount", "busybox", &id]);
    run(&["mount", "busybox", &id]);
    let real = s.root().join("containers").join(&id).join("rootfs");
    assert_eq!(mount_count(&real), 1);
    run(&["umount", &id]);
    assert_eq!(mount_count(&real), 0);
}

#[test]
fn concurrent_loads_and_mounts_stay_consistent() {
    e2e::require_root!();
    let s = Store::new();
    let tar = e2e::busybox_tar();
    let loads: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_layerfs"))
                .arg("--root")
                .arg(s.root())
                .args(["load", "-i", tar.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in loads {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(s.ok(&["images"]).as_array().unwrap().len(), 1);
    assert_eq!(s.layer_dirs().len(), 1);
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    let ids: Vec<String> = (0..4).map(|_| e2e::unique("cc")).collect();
    let mounts: Vec<_> = ids
        .iter()
        .map(|id| {
            Command::new(env!("CARGO_BIN_EXE_layerfs"))
                .arg("--root")
                .arg(s.root())
                .args(["mount", "busybox", id])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in mounts {
        assert!(c.wait().unwrap().success());
    }
    for id in &ids {
        assert!(s
            .root()
            .join("containers")
            .join(id)
            .join("rootfs/bin/busybox")
            .is_file());
    }
}

//! End-to-end: images and storage through `mydocker`: commit, save/load,
//! export, volumes, read-only mounts, and hostile image content.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, unique, TempDir};
use std::process::Command;

#[test]
fn commit_makes_a_small_layer_that_new_containers_see() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "builder",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo committed > /hello.txt; rm /bin/vi",
    ]);
    let id = d.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/hello.txt\"]",
        "builder",
        "mine:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    // the new image runs its new Cmd and sees the change, the deletion too
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "mine:v1"]),
        "committed"
    );
    assert_exit_code(
        &d.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "mine:v1",
            "test",
            "-e",
            "/bin/vi",
        ]),
        1,
    );
    // the commit costs the change, not the rootfs
    let img: serde_json::Value = serde_json::from_str(&stdout(
        &Command::new(e2e::bin("layerfs"))
            .arg("--root")
            .arg(d.root.path())
            .args(["inspect", "mine:v1"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let layers = img["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let top = layers[1].as_str().unwrap().trim_start_matches("sha256:");
    let du = Command::new("du")
        .args(["-sb"])
        .arg(d.root.path().join("layers/sha256").join(top))
        .output()
        .unwrap();
    let bytes: u64 = stdout(&du)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes < 64 * 1024, "committed layer is {bytes} bytes");
    assert!(d.ok(&["history", "mine:v1"]).lines().count() >= 3);
    // rmi is refused while a container uses the image
    d.ok(&["run", "--name", "user", "--network", "none", "mine:v1"]);
    assert_exit_code(&d.run(&["rmi", "mine:v1"]), 1);
    d.ok(&["rm", "user"]);
    d.ok(&["rm", "builder"]);
    assert!(d.ok(&["rmi", "mine:v1"]).contains("Untagged: mine:v1"));
}

#[test]
fn save_and_load_round_trip_by_digest() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "bb",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo x > /x",
    ]);
    let id = d.ok(&["commit", "bb", "rt:1"]);
    d.ok(&["rm", "bb"]);
    let out = TempDir::new("sav");
    let tar = out.path().join("rt.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "rt:1"]);
    let d2 = Docker::new();
    assert!(d2
        .ok(&["load", "-i", tar.to_str().unwrap()])
        .contains("Loaded image: rt:1"));
    let ids = |dd: &Docker| dd.ok(&["images", "-q"]);
    assert!(
        ids(&d2).contains(&id.trim_start_matches("sha256:")[..12]),
        "{} vs {id}",
        ids(&d2)
    );
    assert_eq!(
        d2.ok(&["run", "--rm", "--network", "none", "rt:1", "cat", "/x"]),
        "x"
    );
}

#[test]
fn export_contains_the_containers_files_and_import_makes_an_image() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "ex",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo exported > /etc/marker",
    ]);
    let out = TempDir::new("exp");
    let tar = out.path().join("fs.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "ex"]);
    let list = stdout(&Command::new("tar").arg("-tf").arg(&tar).output().unwrap());
    assert!(
        list.lines()
            .any(|l| l.trim_start_matches("./") == "etc/marker"),
        "marker not in export"
    );
    assert!(list
        .lines()
        .any(|l| l.trim_start_matches("./") == "bin/busybox"));
    d.ok(&["rm", "ex"]);
    d.ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/etc/marker\"]",
        tar.to_str().unwrap(),
        "flat:1",
    ]);
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "flat:1"]),
        "exported"
    );
}

#[test]
fn named_volumes_persist_are_shared_and_honour_ro() {
    require_root!();
    let d = Docker::new();
    let vol = unique("vol");
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert!(d.ok(&["volume", "ls", "-q"]).lines().any(|l| l == vol));
    // a second container sees it; two at once share it
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sharer",
        "--network",
        "none",
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["exec", "sharer", "sh", "-c", "echo shared > /data/g"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{vol}:/data"),
            "busybox",
            "cat",
            "/data/f",
            "/data/g"
        ]),
        "kept\nshared"
    );
    // removal is refused while in use
    assert_exit_code(&d.run(&["volume", "rm", &vol]), 1);
    d.ok(&["rm", "-f", "sharer"]);
    // :ro refuses writes
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{vol}:/data:ro"),
        "busybox",
        "sh",
        "-c",
        "echo no > /data/h",
    ]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("Read-only"), "{}", stderr(&out));
    // a new named volume is seeded from the image
    let seeded = unique("vol");
    assert!(d
        .ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{seeded}:/etc"),
            "busybox",
            "cat",
            "/etc/passwd"
        ])
        .contains("root:x:0:0"));
    d.ok(&["volume", "rm", &vol, &seeded]);
}

#[test]
fn read_only_rootfs_allows_only_volumes_and_tmpfs() {
    require_root!();
    let d = Docker::new();
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "busybox",
        "touch",
        "/x",
    ]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("Read-only"), "{}", stderr(&out));
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        "/anonvol",
        "busybox",
        "sh",
        "-c",
        "touch /scratch/a /anonvol/b",
    ]);
    // --rm took the anonymous volume with it
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn a_volume_target_symlinked_to_etc_stays_inside_the_container() {
    require_root!();
    let d = Docker::new();
    // An image whose /data is a symlink to /etc (and one to ../..).
    d.ok(&[
        "run",
        "--name",
        "evil",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /data; ln -s ../../.. /up",
    ]);
    d.ok(&["commit", "evil", "evil:1"]);
    d.ok(&["rm", "evil"]);
    let marker = unique("escape");
    let script = format!("touch /data/{marker} /up/{marker}-2");
    let vol = unique("vol");
    d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{vol}:/data"),
        "-v",
        "/tmp:/up",
        "evil:1",
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        !std::path::Path::new("/etc").join(&marker).exists(),
        "a write reached the host's /etc"
    );
    assert!(
        !std::path::Path::new("/")
            .join(format!("{marker}-2"))
            .exists(),
        "a write reached the host's /"
    );
    let _ = std::fs::remove_file(std::path::Path::new("/tmp").join(format!("{marker}-2")));
    let _ = d.run(&["volume", "rm", &vol]);
}

#[test]
fn system_df_and_image_listing() {
    require_root!();
    let d = Docker::new();
    let images = d.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox") && l.contains("latest")),
        "{images}"
    );
    let df = d.ok(&["system", "df"]);
    assert!(df.lines().any(|l| l.starts_with("Images")), "{df}");
    assert_exit_code(&d.run(&["load", "-i", "/nonexistent.tar"]), 1);
}

use clap::{Parser, Subcommand};
use layerfs::{commit, cp, export, image, load, mount, save, volume, Error, Layout};
use serde::Serialize;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;

/// Image store, overlay rootfs, commit, export, volumes.
#[derive(Parser)]
#[command(name = "layerfs", version)]
struct Cli {
    /// Store root.
    #[arg(
        long,
        global = true,
        env = "MYDOCKER_ROOT",
        default_value = "/var/lib/mydocker"
    )]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load a `docker save` tarball or an OCI image layout (tar or dir).
    Load {
        /// The tarball; `-` or absent reads stdin.
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
    /// List images.
    Images,
    /// Print one image with its config.
    Inspect { image: String },
    /// Add a tag to an image.
    Tag { source: String, target: String },
    /// Make an image from a container's writable layer.
    Commit {
        id: String,
        tag: Option<String>,
        /// Comment recorded in the history.
        #[arg(short, long)]
        message: Option<String>,
        /// The history's `created_by` (docker: the container's command).
        #[arg(long)]
        created_by: Option<String>,
        /// Config patch: JSON text, `-` for stdin, or a file.
        #[arg(long)]
        change_json: Option<String>,
    },
    /// Make a one-layer image from a flat rootfs tarball.
    Import {
        /// The tarball; `-` reads stdin.
        file: PathBuf,
        tag: Option<String>,
        /// Config patch: JSON text, `-` for stdin, or a file.
        #[arg(long)]
        change_json: Option<String>,
    },
    /// Write a container's merged rootfs as one tar.
    Export {
        id: String,
        /// Where to write; `-` or absent: stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// fsync the output (and its dir) before returning.
        #[arg(long)]
        sync: bool,
    },
    /// Write images as a `docker save` tarball.
    Save {
        #[arg(required = true)]
        images: Vec<String>,
        /// Where to write; `-` or absent: stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show an image's history, newest first.
    History { image: String },
    /// A path in a container as a tar on stdout (`docker cp CTR:PATH`).
    CpOut {
        id: String,
        path: PathBuf,
        /// Follow a symlink at PATH (inside the container).
        #[arg(short = 'L', long)]
        follow_link: bool,
    },
    /// A tar on stdin into a path in a container (`docker cp - CTR:PATH`).
    CpIn {
        id: String,
        path: PathBuf,
        /// PATH must be an existing directory (a tar from the user).
        #[arg(long)]
        dir_only: bool,
    },
    /// A host path as `cp`'s tar on stdout.
    TarHost {
        path: PathBuf,
        #[arg(short = 'L', long)]
        follow_link: bool,
    },
    /// `cp`'s tar on stdin to a host path.
    UntarHost { path: PathBuf },
    /// The container's changes to its image: `[{"kind":"A|C|D","path"}]`.
    Diff { id: String },
    /// Named volumes and mount specs.
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Remove a tag or an image.
    Rmi {
        image: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Mount a container's overlay rootfs.
    Mount { image: String, id: String },
    /// Unmount a container's rootfs, keeping its writable layer.
    Umount { id: String },
    /// Unmount and delete a container's rootfs and writable layer.
    Remove { id: String },
}

#[derive(Subcommand)]
enum VolumeCmd {
    /// Create a volume (a random name when none is given).
    Create {
        name: Option<String>,
        /// A label KEY=VALUE (repeatable).
        #[arg(long)]
        label: Vec<String>,
    },
    /// List volumes.
    Ls,
    /// Print one volume.
    Inspect { name: String },
    /// Remove a volume.
    Rm {
        name: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Remove every volume no container uses.
    Prune,
    /// Mount specs (JSON array on stdin) -> OCI mount entries for container ID.
    Resolve { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        // The tar went to stdout: it is the whole output.
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            let res = serde_json::to_writer(&mut out, &v)
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out));
            match res {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("layerfs: write stdout: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        // Whoever read our stdout stopped reading: not an error.
        Err(e) if layerfs::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layerfs: {}", layerfs::printable(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn json<T: Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).expect("output serializes")
}

fn run(cli: Cli) -> Result<serde_json::Value, Error> {
    let layout = Layout::new(&cli.root);
    layerfs::perms::secure_store(layout.root()).map_err(|source| Error::Io {
        step: "secure store root",
        path: layout.root().into(),
        source,
    })?;
    Ok(match cli.cmd {
        Cmd::Load { input } => json(load::load_input(&layout, input.as_deref())?),
        Cmd::Images => json(image::list(&layout)?),
        Cmd::Inspect { image } => json(image::inspect(&layout, &image)?),
        Cmd::Tag { source, target } => json(image::tag(&layout, &source, &target)?),
        Cmd::Rmi { image, force } => json(image::remove(&layout, &image, force)?),
        Cmd::Commit {
            id,
            tag,
            message,
            created_by,
            change_json,
        } => {
            let change = change_json.map(|c| read_change(&c)).transpose()?;
            json(commit::commit(
                &layout,
                &id,
                tag.as_deref(),
                message.as_deref(),
                created_by.as_deref(),
                change,
            )?)
        }
        Cmd::Import {
            file,
            tag,
            change_json,
        } => {
            let change = change_json.map(|c| read_change(&c)).transpose()?;
            // A pipe, or a compression layer's own reader does not handle
            // (only gzip), goes through a plain temp file first.
            let src = layerfs::input::open(Some(&file), &layout.layers_tmp(), true).map_err(
                |source| Error::Io {
                    step: "read",
                    path: if file == std::path::Path::new("-") {
                        "stdin".into()
                    } else {
                        file.clone()
                    },
                    source,
                },
            )?;
            // The history names the file as given; a spooled one has no name.
            let path = if src.spooled || file == std::path::Path::new("-") {
                PathBuf::from(format!("/proc/self/fd/{}", src.file.as_raw_fd()))
            } else {
                file.clone()
            };
            json(commit::import(&layout, &path, tag.as_deref(), change)?)
        }
        Cmd::Export { id, output, sync } => {
            let v = json(export::export(&layout, &id, output.as_deref(), sync)?);
            to_stdout(output.as_deref(), v)
        }
        Cmd::Save { images, output } => {
            let v = json(save::save(&layout, &images, output.as_deref())?);
            to_stdout(output.as_deref(), v)
        }
        Cmd::Volume(v) => match v {
            VolumeCmd::Create { name, label } => {
                let labels = label
                    .iter()
                    .map(|l| {
                        let (k, v) = l.split_once('=').unwrap_or((l, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                json(volume::create(&layout, name.as_deref(), labels)?)
            }
            VolumeCmd::Ls => json(volume::list(&layout)?),
            VolumeCmd::Inspect { name } => json(volume::inspect(&layout, &name)?),
            VolumeCmd::Rm { name, force } => {
                volume::remove(&layout, &name, force)?;
                serde_json::json!({ "removed": [name] })
            }
            VolumeCmd::Prune => serde_json::json!({ "removed": volume::prune(&layout)? }),
            VolumeCmd::Resolve { id } => {
                let specs = small_stdin()?.map_err(volume::VolumeError::BadJson)?;
                json(volume::resolve(&layout, &id, &specs)?)
            }
        },
        Cmd::History { image } => json(image::history(&layout, &image)?),
        Cmd::CpOut {
            id,
            path,
            follow_link,
        } => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut out = cp::cp_out(&layout, &id, &path, follow_link, out)?;
            out.flush().map_err(|source| Error::Io {
                step: "write",
                path: "stdout".into(),
                source,
            })?;
            serde_json::Value::Null
        }
        Cmd::CpIn { id, path, dir_only } => {
            cp::cp_in(&layout, &id, &path, dir_only, std::io::stdin().lock())?;
            serde_json::json!({ "id": id, "path": path })
        }
        Cmd::TarHost { path, follow_link } => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut out = cp::tar_host(&path, follow_link, out)?;
            out.flush().map_err(|source| Error::Io {
                step: "write",
                path: "stdout".into(),
                source,
            })?;
            serde_json::Value::Null
        }
        Cmd::UntarHost { path } => {
            cp::untar_host(&path, std::io::stdin().lock())?;
            serde_json::json!({ "path": path })
        }
        Cmd::Diff { id } => json(cp::diff(&layout, &id)?),
        Cmd::Mount { image, id } => json(mount::mount_rootfs(&layout, &image, &id)?),
        Cmd::Umount { id } => {
            mount::umount_rootfs(&layout, &id)?;
            serde_json::json!({ "id": id, "mounted": false })
        }
        Cmd::Remove { id } => {
            mount::remove_rootfs(&layout, &id)?;
            serde_json::json!({ "id": id, "removed": true })
        }
    })
}

/// `v`, or nothing when the output was stdout (the tar took it).
fn to_stdout(output: Option<&std::path::Path>, v: serde_json::Value) -> serde_json::Value {
    match output {
        Some(p) if p != std::path::Path::new("-") => v,
        _ => serde_json::Value::Null,
    }
}

/// The most bytes of a JSON document read from stdin (a mount list or a
/// config patch is kilobytes).
const MAX_STDIN: u64 = 1 << 20;

/// Stdin as text: Err(why) when larger than `MAX_STDIN` (bad input, told
/// before anything is done); a read error is an I/O error.
fn small_stdin() -> Result<Result<String, String>, Error> {
    use std::io::Read;
    let mut s = String::new();
    std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut s)
        .map_err(|source| Error::Io {
            step: "read",
            path: "stdin".into(),
            source,
        })?;
    if s.len() as u64 > MAX_STDIN {
        return Ok(Err(format!("stdin: larger than {MAX_STDIN} bytes")));
    }
    Ok(Ok(s))
}

/// `--change-json`: JSON text, `-` for stdin, or a file holding it.
fn read_change(arg: &str) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let text = if arg == "-" {
        small_stdin()?.map_err(commit::CommitError::BadChange)?
    } else if std::path::Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|source| Error::Io {
            step: "read",
            path: arg.into(),
            source,
        })?
    } else {
        arg.to_string()
    };
    Ok(commit::parse_change(&text)?)
}

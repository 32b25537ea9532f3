//! `mydocker completion bash|zsh|fish|powershell|elvish` prints the shell's
//! completion script (docker's `completion` command; clap_complete) and
//! the hidden `mydocker _man DIR` writes the man pages, `mydocker.1` and one
//! `mydocker-SUB[-SUB].1` per visible subcommand (clap_mangen).
//! `scripts/setup.sh` installs both. Neither reads or makes the store, so
//! `main` runs them before it touches the root (`standalone`).

use crate::cli::{Cli, Cmd};
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Runs `completion` and `_man`, which need no store; None for any other
/// command.
pub fn standalone(cli: &Cli) -> Option<u8> {
    let r = match &cli.cmd {
        Cmd::Completion { shell } => print_completion(*shell),
        Cmd::Man { dir } => write_man_pages(dir),
        _ => return None,
    };
    Some(match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mydocker: {e}");
            1
        }
    })
}

/// The completion script for `shell`, as text.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mydocker", &mut out);
    out
}

fn print_completion(shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(&completion_script(shell))
        .and_then(|_| out.flush())
    {
        // `mydocker completion bash | head`: a reader that stops early is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Writes mydocker.1 and the subcommands' pages into `dir` (made if missing).
pub fn write_man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bash_script_registers_mydocker() {
        let s = super::completion_script(clap_complete::Shell::Bash);
        let s = String::from_utf8(s).unwrap();
        assert!(s.contains("complete -F _mydocker"), "{s:.200}");
    }

    #[test]
    fn man_pages_have_th_headers() {
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        impl Dir {
            fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        let d = Dir(std::env::temp_dir().join(format!("mydocker-man-{}", std::process::id())));
        super::write_man_pages(d.path()).unwrap();
        let top = std::fs::read_to_string(d.path().join("mydocker.1")).unwrap();
        assert!(top.contains(".TH mydocker 1"), "{top:.200}");
        let run = std::fs::read_to_string(d.path().join("mydocker-run.1")).unwrap();
        assert!(
            run.contains("\\-\\-restart") || run.contains("restart"),
            "{run:.300}"
        );
        assert!(
            !d.path().join("mydocker-_exited.1").exists(),
            "hidden commands have no page"
        );
    }
}

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match mydocker::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // docker: a bad flag is 125; help and version are success.
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    ExitCode::from(mydocker::main_with(cli))
}

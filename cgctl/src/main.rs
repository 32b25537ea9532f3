use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("cgctl: not implemented yet");
    ExitCode::from(2)
}

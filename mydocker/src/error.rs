//! mydocker's error type and docker's exit codes.

/// What went wrong, and the exit code docker would use for it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// mydocker itself failed (unknown image, taken name, bad flag): exit 125.
    #[error("{0}")]
    Daemon(String),
    /// A tool of the pipeline failed: names the tool and step.
    #[error("{tool} {step}: {msg}")]
    Tool {
        tool: String,
        step: String,
        msg: String,
    },
    /// The container's command could not be invoked: 126.
    #[error("{0}")]
    CannotInvoke(String),
    /// The container's command was not found: 127.
    #[error("{0}")]
    NotFound(String),
    #[error("{step}: {err}")]
    Io { step: String, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CannotInvoke(_) => 126,
            Error::NotFound(_) => 127,
            _ => 125,
        }
    }
}

/// Shorthand for a plain mydocker failure.
pub fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Daemon(msg.into()))
}

/// Adds the step to an io::Error.
pub trait IoContext<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Io { step: step(), err })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io {
            step: step(),
            err: std::io::Error::from(e),
        })
    }
}

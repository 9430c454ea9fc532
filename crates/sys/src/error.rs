//! Errors and the exit codes every upkeep binary documents.

use std::path::{Path, PathBuf};

/// Exit codes shared by every binary (see the man pages, EXIT STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok,
    Failed,
    Usage,
    Refused,
    Finding,
    /// Stopped at a step the operator does (a reboot, a setup screen);
    /// the journal keeps the place and `resume` goes on.
    Waiting,
    BadInput,
    Busy,
    /// A child's own status, passed through (a wrapped reconfigure).
    Child(u8),
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failed => 1,
            ExitCode::Usage => 2,
            ExitCode::Refused => 3,
            ExitCode::Finding => 4,
            ExitCode::Waiting => 5,
            ExitCode::BadInput => 65,
            ExitCode::Busy => 75,
            ExitCode::Child(c) => i32::from(c),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input we could not read past: names the file and, where known, the line.
    #[error("{}{}: {msg}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    BadInput {
        path: PathBuf,
        line: Option<usize>,
        msg: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refused: {0}")]
    Refused(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn bad_input(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        msg: impl Into<String>,
    ) -> Self {
        Error::BadInput {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::BadInput { .. } => ExitCode::BadInput,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                ExitCode::BadInput
            }
            Error::Io { .. } | Error::Failed(_) => ExitCode::Failed,
            Error::Refused(_) => ExitCode::Refused,
            Error::Busy(_) => ExitCode::Busy,
            Error::Usage(_) => ExitCode::Usage,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

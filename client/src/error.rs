//! The client's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the client. No method of the client panics; each
/// returns one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder is missing a required setting or has an invalid one.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A file in the data dir could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file in the data dir is not what the client wrote.
    #[error("malformed {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The crash handler or its monitor process could not be started.
    #[error("crash monitoring could not be started: {0}")]
    Install(String),
    /// No report with this id is pending or sent.
    #[error("no report with id {0}")]
    UnknownReport(String),
    /// The dump could not be scrubbed; it is not sent.
    #[error("the dump could not be scrubbed: {0}")]
    Scrub(String),
    /// The HTTP request could not be made or the server could not be reached.
    #[error("network error: {0}")]
    Network(String),
    /// The server answered with an error the client cannot fix by retrying.
    #[error("the server answered {status}: {body}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// The first bytes of the body.
        body: String,
    },
    /// The server's reply to an upload is not a receipt: no `CrashID=` line, a
    /// CrashID or DeletionToken of the wrong shape, or a body over 64 KiB. The
    /// report stays pending.
    #[error("the server's reply is not a valid receipt")]
    BadReceipt,
}

impl Error {
    /// A stable short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Io { .. } => "io",
            Error::Json { .. } => "json",
            Error::Install(_) => "install",
            Error::UnknownReport(_) => "unknown_report",
            Error::Scrub(_) => "scrub",
            Error::Network(_) => "network",
            Error::Server { .. } => "server",
            Error::BadReceipt => "bad_receipt",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Error::Json {
            path: path.into(),
            source,
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The scrubber's error type.

/// Why a dump could not be scrubbed or inspected.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// The bytes are not a minidump the `minidump` crate can open (no `MDMP`
    /// header, wrong version, no stream directory). Nothing was changed.
    #[error("not a readable minidump: {0}")]
    Unreadable(#[from] ::minidump::Error),
    /// The dump has no system info stream, so what it holds can't be described.
    #[error("minidump has no system info stream")]
    NoSystemInfo,
    /// Stack memory to put back into a dump, or where it goes, is not what
    /// [`cut_stack_memory`](crate::scrub::cut_stack_memory) made, or does not
    /// fit the dump.
    #[error("stack memory does not fit the dump")]
    BadStackMemory,
    /// Reading the dump, or handing on the scrubbed one, failed (a windowed
    /// scrub: [`scrub_minidump_windowed`](crate::scrub::scrub_minidump_windowed)).
    #[error("reading or writing the dump: {0}")]
    Io(#[from] std::io::Error),
    /// The dump cannot be scrubbed a window at a time (nothing was handed on):
    /// it has to be scrubbed whole.
    #[error("the dump cannot be scrubbed in windows: {0}")]
    NotWindowed(&'static str),
}

impl ScrubError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ScrubError::Unreadable(_) => "unreadable_minidump",
            ScrubError::NoSystemInfo => "no_system_info",
            ScrubError::BadStackMemory => "bad_stack_memory",
            ScrubError::Io(_) => "io",
            ScrubError::NotWindowed(_) => "not_windowed",
        }
    }
}

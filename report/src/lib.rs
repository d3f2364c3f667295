//! What travels between the Mayday client and server.
//!
//! - [`upload`]: the Breakpad/Crashpad-compatible upload format — form field names
//!   and the server's reply (`CrashID=bp-…`, `DeletionToken=…`).
//! - [`scrub`]: minidump and annotation scrubbing, shared by the client (before
//!   anything leaves the machine) and the server (before anything is stored).

pub mod crash_site;
pub mod scrub;
pub mod upload;

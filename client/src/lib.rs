//! Mayday's crash handler for applications: capture a crash out of process, ask the
//! user, send the report, and let them take it back.
//!
//! ```no_run
//! use mayday_client::{Client, ConsentPolicy};
//!
//! fn main() -> Result<(), mayday_client::Error> {
//!     // First thing in main: in the monitor process (this executable, started
//!     // again by install()), this call runs the monitor and never returns.
//!     let guard = Client::builder()
//!         .product("myapp")
//!         .version(env!("CARGO_PKG_VERSION"))
//!         .endpoint("https://crash.example.org")
//!         .data_dir("/home/me/.local/share/myapp/crashes")
//!         .consent(ConsentPolicy::Ask)
//!         .install()?;
//!
//!     // Reports from earlier crashes: ask (terminal prompt by default) and send.
//!     let summary = guard.client().send_pending()?;
//!     for sent in &summary.sent {
//!         println!("sent {}", sent.crash_id);
//!     }
//!     // ... the application ...
//!     Ok(())
//! }
//! ```
//!
//! - **Capture** ([`ClientBuilder::install`]): a signal handler (crash-handler)
//!   asks a monitor process (minidumper, minidump-writer) to write the dump. The
//!   monitor is the application itself, re-executed with the same arguments and
//!   `MAYDAY_MONITOR_SOCKET` set, so there is no second binary to ship. Covered:
//!   SIGSEGV, SIGABRT (`abort()`, `panic = "abort"`), SIGBUS, SIGFPE, SIGILL and Rust
//!   panics (through a panic hook, which chains to the previous one).
//! - **Queue**: `<data_dir>/pending/<id>.dmp` + `<id>.json`, written atomically,
//!   bounded by count (10) and age (30 days). A report leaves it only when the
//!   server acknowledged it, the server refused it for good, or the user declined.
//! - **Consent** ([`ConsentPolicy`]): `Ask` (default) shows a [`ReportSummary`] through
//!   a [`ConsentPrompt`] ([`TerminalPrompt`] or a closure in [`FnPrompt`]); the
//!   user's choice is kept in `<data_dir>/consent.json`. Consent is read again before
//!   each upload; [`Client::set_consent`]`(Never)` deletes everything pending.
//! - **Scrubbing** (default on): system-detail streams (environment, command line,
//!   …) blanked and the user's home and name replaced, before anything is shown or
//!   sent.
//! - **Upload** ([`Client::send_pending`]): multipart, gzipped, rustls, retries with
//!   backoff and jitter, `Retry-After` and `StopSendingReportsFor=` honoured.
//! - **Receipts and deletion**: [`Client::sent_reports`], [`Client::forget`],
//!   [`Client::forget_all`].
//!
//! Nothing that identifies the person or the machine is sent: no hardware or
//! install id, no user or host name; local report ids are random and never sent.

mod builder;
mod capture;
mod client;
mod config;
mod consent;
mod error;
mod fsutil;
mod queue;
mod receipts;
mod scrub;
mod summary;
mod upload;

pub use builder::ClientBuilder;
pub use capture::{CrashGuard, MONITOR_ENV};
pub use client::{
    COMMENT_ANNOTATION, Client, PANIC_ANNOTATION, PRODUCT_ANNOTATION, SendSummary,
    VERSION_ANNOTATION, Waiting,
};
pub use config::RetryPolicy;
pub use consent::{
    ConsentAnswer, ConsentPolicy, ConsentPrompt, Decision, FnPrompt, StoredConsent, TerminalPrompt,
};
pub use error::{Error, Result};
pub use mayday_report::crash_site::{CrashSiteAnswer, CrashSiteSummary};
pub use queue::{PendingReport, ReportMeta};
pub use receipts::{CountedCrash, Forgotten, SentReport};
pub use summary::ReportSummary;

//! Minidump and annotation scrubbing.
//!
//! The same code runs in the client (before anything leaves the machine) and in
//! the server (before anything is stored):
//!
//! - [`scrub_minidump`] rewrites a minidump in place, without changing its length,
//!   so it still parses and unwinds the same: system-detail streams, user names in
//!   paths, environment blocks, e-mail and IP addresses in captured memory, heap.
//! - [`drop_stack_memory`] zeroes the captured stacks once a report is fully
//!   symbolicated (unless [`ScrubConfig::keep_stack_memory`]).
//! - [`scrub_annotations`] and [`scrub_text`] apply [`AnnotationRules`] to crash
//!   annotations and to strings taken from a dump into a processed report.
//! - [`inventory`] says what a dump holds, for the client's consent prompt.
//!
//! Each call records what it removed in a [`ScrubSummary`]: counts per kind,
//! never the values.
//!
//! ```
//! use mayday_report::scrub::{AnnotationRules, ScrubSummary, scrub_annotations, scrub_text};
//! use std::collections::BTreeMap;
//!
//! let rules = AnnotationRules::default();
//! let mut annotations = BTreeMap::from([
//!     ("ProductName".to_owned(), "Demo".to_owned()),
//!     ("Email".to_owned(), "someone@example.org".to_owned()),
//!     ("comment".to_owned(), "ping 10.1.2.3 failed".to_owned()),
//! ]);
//! let mut summary = ScrubSummary::default();
//! scrub_annotations(&mut annotations, &rules, &mut summary);
//! assert!(!annotations.contains_key("Email"));
//! assert_eq!(annotations["comment"], "ping ******** failed");
//! assert_eq!(scrub_text("/home/kevin/app/libfoo.so", &rules), "/home/*****/app/libfoo.so");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod annotations;
mod inventory;
mod minidump;
mod text;

pub use annotations::{Action, AnnotationRules, scrub_annotations, scrub_text};
pub use inventory::{DumpInventory, inventory};
pub use minidump::{drop_stack_memory, scrub_minidump};

/// What to scrub. Deserializes from the `[scrub]` TOML section; every field is
/// optional, and the default scrubs everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrubConfig {
    /// Zero the Linux environment, command line, process status and auxv
    /// streams; blank serial-like `/proc/cpuinfo` fields and lsb-release
    /// fields beyond the distribution's name and version; Windows token and
    /// comment streams and macOS boot arguments.
    pub system_streams: bool,
    /// Misc-info time zone, handle object names, Crashpad report and client ids,
    /// thread names that hold paths.
    pub process_details: bool,
    /// User names in paths anywhere in the dump (`/home/<u>/` and the like),
    /// replaced by `*` of the same length, and user and host names learned from
    /// the dump (`USER=`, `HOSTNAME=`, home directories) wherever they occur.
    pub user_names: bool,
    /// Environment-style `KEY=value` strings, e-mail and IP addresses, tokens and
    /// keys found in captured memory (stack included), ASCII and UTF-16, blanked.
    pub memory_text: bool,
    /// Zero captured memory that is neither a thread's stack nor inside a loaded
    /// module (heap, anonymous mappings).
    pub heap_memory: bool,
    /// Keep stack memory after a report is fully symbolicated. `scrub_minidump`
    /// always keeps it (unwinding needs it); the server calls
    /// [`drop_stack_memory`] afterwards unless this is set.
    pub keep_stack_memory: bool,
    /// Literal values to mask wherever they occur (the client passes the local
    /// user name, host name and real name here).
    pub known_values: Vec<String>,
    /// Rules for annotations, also applied to the Crashpad annotations inside
    /// the dump.
    pub annotations: AnnotationRules,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        Self {
            system_streams: true,
            process_details: true,
            user_names: true,
            memory_text: true,
            heap_memory: true,
            keep_stack_memory: false,
            known_values: Vec::new(),
            annotations: AnnotationRules::default(),
        }
    }
}

/// What scrubbing removed: a count per kind. Never holds a removed value.
///
/// Kinds: whole streams (`linux_environ_stream`, `linux_cmdline_stream`,
/// `linux_proc_status_stream`, `linux_auxv_stream`, `windows_token_stream`,
/// `comment_stream`, `macos_bootargs_stream`), fields (`lsb_release_field`,
/// `cpuinfo_serial`, `misc_info_time_zone`, `thread_name_path`,
/// `handle_object_name`, `crashpad_report_id`, `crashpad_client_id`), memory
/// (`heap_memory_regions`, `heap_memory_bytes`), strings found anywhere
/// (`environment_variable`, `email_address`, `ip_address`, `credit_card_number`,
/// `bearer_token`, `pem_private_key`, `url_credentials`, `user_name_in_path`,
/// `user_or_host_name`) and annotations (`identity_annotation`,
/// `secret_annotation`, plus the string kinds for values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrubSummary {
    /// Count per kind of what was removed or masked.
    pub removed: BTreeMap<String, u64>,
}

impl ScrubSummary {
    /// Adds `n` to the count of `kind` (nothing when `n` is zero).
    pub fn add(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.removed.entry(kind.to_owned()).or_insert(0) += n;
        }
    }

    /// Adds every count of `other` to this summary.
    pub fn merge(&mut self, other: &ScrubSummary) {
        for (kind, n) in &other.removed {
            self.add(kind, *n);
        }
    }

    /// The count of one kind (0 when absent).
    pub fn count(&self, kind: &str) -> u64 {
        self.removed.get(kind).copied().unwrap_or(0)
    }

    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }
}

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
}

impl ScrubError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ScrubError::Unreadable(_) => "unreadable_minidump",
            ScrubError::NoSystemInfo => "no_system_info",
        }
    }
}

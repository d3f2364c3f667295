//! Minidump and annotation scrubbing.
//!
//! The same code runs in the client (before anything leaves the machine) and in
//! the server (before anything is stored):
//!
//! - [`scrub_minidump`] rewrites a minidump in place, without changing its length,
//!   so it still parses and unwinds the same: system-detail streams, user names in
//!   paths, environment blocks, e-mail and IP addresses in captured memory, heap.
//!   [`scrub_minidump_windowed`] does the same (and cuts the stack memory out)
//!   to a dump too large to hold, a window at a time, handing the result on in
//!   order.
//! - [`drop_stack_memory`] zeroes the captured stacks once a report is fully
//!   symbolicated (unless [`ScrubConfig::keep_stack_memory`]);
//!   [`cut_stack_memory`] takes the same bytes out and keeps them apart, to be
//!   stored under their own key and put back by [`restore_stack_memory`] (which
//!   puts zeros there when they are gone).
//! - [`scrub_annotations`] and [`scrub_text`] apply [`AnnotationRules`] to crash
//!   annotations and to strings taken from a dump into a processed report;
//!   [`drop_annotations`] removes the keys they drop from annotations put
//!   together from parts scrubbed before.
//! - [`inventory`] says what a dump holds, for the client's consent prompt.
//! - [`scrub_attachment`] cleans a text attachment a deployment keeps
//!   ([`ScrubConfig::text_attachments`]); every other attachment is dropped.
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

mod annotations;
mod attachments;
mod config;
mod error;
mod inventory;
mod minidump;
mod runs;
mod summary;
mod text;

pub use annotations::{Action, AnnotationRules, drop_annotations, scrub_annotations, scrub_text};
pub use attachments::{
    DEFAULT_MAX_ATTACHMENT_BYTES, NotText, TextAttachment, TextAttachmentRule, attachment_text,
    scrub_attachment,
};
pub use config::ScrubConfig;
pub use error::ScrubError;
pub use inventory::{DumpInventory, inventory};
pub use minidump::{
    CutStacks, DumpPages, StackHoles, WindowLimits, WindowedScrub, cut_stack_memory,
    drop_stack_memory, restore_stack_memory, scrub_and_cut_stack_memory, scrub_minidump,
    scrub_minidump_windowed,
};
pub use summary::ScrubSummary;

/// The scrubber's own checks of its fast paths against their plain forms, for
/// the fuzz target `scrub_text` (report/fuzz). Built only with `--cfg
/// fuzzing`, as cargo-fuzz builds: not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// The value rules' one-pass prefilter finds in `text` what every pattern
    /// run over it finds; panics where it does not.
    pub fn check_value_prefilters(text: &str) {
        super::text::assert_one_pass_keeps_every_finding(text);
    }

    /// The text runs found in `bytes` (whole and a window at a time) are those
    /// of a plain byte-at-a-time scan; panics where they are not.
    pub fn check_text_runs(bytes: &[u8]) {
        super::runs::assert_runs_of_a_plain_scan(bytes);
    }
}

/// What the scrubber's tests share.
#[cfg(test)]
pub(crate) mod test_support {
    /// A xorshift64 generator from `seed` (not 0): the same numbers every run,
    /// so a failing case can be found again.
    pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }
}

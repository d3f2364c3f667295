//! What scrubbing removed, counted per kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What scrubbing removed: a count per kind. Never holds a removed value.
///
/// Kinds: whole streams (`linux_environ_stream`, `linux_cmdline_stream`,
/// `linux_proc_status_stream`, `linux_auxv_stream`, `linux_maps_stream`,
/// `windows_token_stream`, `comment_stream`, `macos_bootargs_stream`), fields
/// (`lsb_release_field`, `cpuinfo_serial`, `misc_info_time_zone`, `thread_name_path`,
/// `handle_object_name`, `crashpad_report_id`, `crashpad_client_id`), memory
/// (`heap_memory_regions`, `heap_memory_bytes`), strings found anywhere
/// (`environment_variable`, `email_address`, `ip_address`, `credit_card_number`,
/// `bearer_token`, `pem_private_key`, `url_credentials`, `user_name_in_path`,
/// `user_or_host_name`), text too long to search, zeroed (`long_text_run_bytes`,
/// only when a large dump is scrubbed in windows), runs of text masked whole
/// once a dump held more findings than it may (`crowded_text_run`) and annotations
/// (`identity_annotation`, `secret_annotation`, plus the string kinds for
/// values).
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

    /// What was removed, in words for the person who sent the report, e.g. "3
    /// environment variables, 1 e-mail address, the command line"; "nothing" when
    /// empty. Kinds this version does not know read by their name.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .removed
            .iter()
            .filter_map(|(kind, &n)| match PHRASES.iter().find(|p| p.0 == kind) {
                Some((_, Phrase::Skip)) => None,
                Some((_, Phrase::Whole(what))) => Some((*what).to_owned()),
                Some((_, Phrase::Counted(one, many))) => {
                    Some(format!("{n} {}", if n == 1 { one } else { many }))
                }
                None => Some(format!("{n} × {}", kind.replace('_', " "))),
            })
            .collect();
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// How a kind reads in [`ScrubSummary::describe`].
enum Phrase {
    /// Not mentioned (told by another kind).
    Skip,
    /// A whole thing, removed once or not at all.
    Whole(&'static str),
    /// Counted: the singular and the plural.
    Counted(&'static str, &'static str),
}

/// The words for every kind the scrubbers count. A table: its entries are alike
/// by design.
const PHRASES: &[(&str, Phrase)] = &[
    ("linux_environ_stream", Phrase::Whole("the environment")),
    ("linux_cmdline_stream", Phrase::Whole("the command line")),
    (
        "linux_proc_status_stream",
        Phrase::Whole("the process status"),
    ),
    ("linux_auxv_stream", Phrase::Whole("the auxiliary vector")),
    ("linux_maps_stream", Phrase::Whole("the memory maps")),
    (
        "windows_token_stream",
        Phrase::Whole("the Windows user token"),
    ),
    ("comment_stream", Phrase::Whole("the dump's comment")),
    ("macos_bootargs_stream", Phrase::Whole("the boot arguments")),
    (
        "lsb_release_field",
        Phrase::Counted("release field", "release fields"),
    ),
    ("cpuinfo_serial", Phrase::Whole("the CPU serial number")),
    ("misc_info_time_zone", Phrase::Whole("the time zone")),
    (
        "thread_name_path",
        Phrase::Counted("path in a thread name", "paths in thread names"),
    ),
    (
        "handle_object_name",
        Phrase::Counted("handle name", "handle names"),
    ),
    ("crashpad_report_id", Phrase::Whole("Crashpad's report id")),
    ("crashpad_client_id", Phrase::Whole("Crashpad's client id")),
    (
        "heap_memory_regions",
        Phrase::Counted("heap memory region", "heap memory regions"),
    ),
    ("heap_memory_bytes", Phrase::Skip),
    (
        "environment_variable",
        Phrase::Counted("environment variable", "environment variables"),
    ),
    (
        "email_address",
        Phrase::Counted("e-mail address", "e-mail addresses"),
    ),
    ("ip_address", Phrase::Counted("IP address", "IP addresses")),
    (
        "credit_card_number",
        Phrase::Counted("card number", "card numbers"),
    ),
    (
        "bearer_token",
        Phrase::Counted("access token", "access tokens"),
    ),
    (
        "pem_private_key",
        Phrase::Counted("private key", "private keys"),
    ),
    (
        "url_credentials",
        Phrase::Counted("password in a URL", "passwords in URLs"),
    ),
    (
        "user_name_in_path",
        Phrase::Counted("user name in a path", "user names in paths"),
    ),
    (
        "user_or_host_name",
        Phrase::Counted("user or host name", "user or host names"),
    ),
    (
        "long_text_run_bytes",
        Phrase::Counted("byte of overlong text", "bytes of overlong text"),
    ),
    (
        "crowded_text_run",
        Phrase::Counted(
            "run of text too full of findings, masked whole",
            "runs of text too full of findings, masked whole",
        ),
    ),
    (
        "identity_annotation",
        Phrase::Counted("identifying annotation", "identifying annotations"),
    ),
    (
        "secret_annotation",
        Phrase::Counted("secret annotation", "secret annotations"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_was_removed_in_words() {
        let mut summary = ScrubSummary::default();
        assert_eq!(summary.describe(), "nothing");
        summary.add("environment_variable", 3);
        summary.add("email_address", 1);
        summary.add("linux_cmdline_stream", 1);
        summary.add("heap_memory_bytes", 4096);
        summary.add("some_new_kind", 2);
        assert_eq!(
            summary.describe(),
            "1 e-mail address, 3 environment variables, the command line, 2 × some new kind"
        );
    }
}

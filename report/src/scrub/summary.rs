//! What scrubbing removed, counted per kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

//! What to scrub: the `[scrub]` section of a configuration.

use serde::{Deserialize, Serialize};

use super::annotations::AnnotationRules;
use super::attachments::TextAttachmentRule;

/// What to scrub. Deserializes from the `[scrub]` TOML section; every field is
/// optional, and the default scrubs everything; an unknown key is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// [`drop_stack_memory`](crate::scrub::drop_stack_memory) afterwards unless this is set.
    pub keep_stack_memory: bool,
    /// Literal values to mask wherever they occur (the client passes the local
    /// user name, host name and real name here).
    pub known_values: Vec<String>,
    /// Rules for annotations, also applied to the Crashpad annotations inside
    /// the dump.
    pub annotations: AnnotationRules,
    /// Text attachments to keep, scrubbed by the annotation rules
    /// ([`scrub_attachment`](crate::scrub::scrub_attachment)); none by default:
    /// every attachment is dropped unread.
    pub text_attachments: Vec<TextAttachmentRule>,
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
            text_attachments: Vec::new(),
        }
    }
}

//! The processed report: what the pipeline makes of a minidump, stored as
//! `reports/<id>.json` and served by the API.
//!
//! Frame fields follow minidump-stackwalk's `--json` output (`module`, `function`,
//! `file`, `line`, `module_offset`, inlined calls in `inlines[]`), so tools written
//! against Socorro's processed crash format read it without surprises.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::index::CrashFacts;

/// A processed crash report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessedReport {
    /// The CrashID as returned to the client: `bp-<uuid>`.
    pub id: String,
    /// Product, version, platform and crash, flat in the JSON.
    #[serde(flatten)]
    pub facts: CrashFacts,
    /// Index of the crashing thread in `threads`, if known.
    pub crashing_thread_index: Option<usize>,
    /// The crashing thread, walked.
    pub crashing_thread: Option<Thread>,
    /// Every thread, walked (the crashing one included).
    pub threads: Vec<Thread>,
    /// Loaded modules.
    pub modules: Vec<Module>,
    /// Annotations: the upload's text parts merged with the dump's Crashpad annotations.
    pub annotations: BTreeMap<String, String>,
    /// The crash signature the report was grouped by.
    pub signature: String,
    /// Modules whose symbols were missing when this report was processed.
    pub missing_symbols: Vec<MissingSymbols>,
    /// What scrubbing removed before anything was stored: kinds and counts, never
    /// values.
    #[serde(default)]
    pub scrub: mayday_report::scrub::ScrubSummary,
}

/// A thread and its walked stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// The OS thread id.
    pub thread_id: u32,
    /// Thread name, where the dump has one.
    pub name: Option<String>,
    /// Physical frames, innermost first.
    pub frames: Vec<Frame>,
}

/// One physical stack frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Frame {
    /// Position in the stack, 0 for the innermost frame.
    pub frame: usize,
    /// Module file name (basename of the code file), when the address is in a module.
    pub module: Option<String>,
    /// Function name, when symbols were found.
    pub function: Option<String>,
    /// Offset of the instruction into the function, `0x`-prefixed hex.
    pub function_offset: Option<String>,
    /// Source file, when symbols have line records.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
    /// Offset of the instruction into the module, `0x`-prefixed hex.
    pub module_offset: Option<String>,
    /// The instruction address, `0x`-prefixed hex.
    pub offset: String,
    /// Whether the module of this frame lacked symbols.
    pub missing_symbols: bool,
    /// How the frame was found: `context`, `cfi`, `frame_pointer`, `scan`, …
    pub trust: String,
    /// Calls inlined at this frame, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlines: Vec<InlineFrame>,
}

/// A call inlined into a physical frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InlineFrame {
    /// Function name of the inlined call.
    pub function: String,
    /// Source file.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
}

/// A loaded module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Module {
    /// Basename of the code file.
    pub filename: String,
    /// Code file as recorded in the dump (after scrubbing).
    pub code_file: String,
    /// Version, where the dump has one.
    pub version: Option<String>,
    /// Basename of the debug file, as symbol lookups use it.
    pub debug_file: Option<String>,
    /// Breakpad debug id.
    pub debug_id: Option<String>,
    /// Base address, `0x`-prefixed hex.
    pub base_address: String,
    /// End address, `0x`-prefixed hex.
    pub end_address: String,
    /// Whether symbols were loaded for it.
    pub loaded_symbols: bool,
    /// Whether symbols were looked for and missing.
    pub missing_symbols: bool,
}

/// A module whose symbols were looked for and not found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct MissingSymbols {
    /// Basename of the debug file.
    pub debug_file: String,
    /// Breakpad debug id.
    pub debug_id: String,
}

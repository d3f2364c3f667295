//! Crash signatures, Socorro style.
//!
//! A signature names a crash by the few frames at the top of the crashing thread that
//! tell where it happened, so that the same bug hit by many users lands in one issue.
//! The algorithm follows Mozilla Socorro's C/C++/Rust signature generator
//! (`socorro/signature/rules.py`, `CSignatureTool`):
//!
//! 1. Every physical frame is expanded into its inlined calls (innermost first)
//!    followed by the frame's own function; at most [`MAX_FRAMES`] of those are read.
//! 2. Each one is normalized: a function name has its return type, parameter list,
//!    template/generic arguments (as `<T>`), cv/ref qualifiers, Rust hash suffix
//!    (`::h0123456789abcdef`) and compiler clone suffixes removed; without a function,
//!    `file#line`; without that, `module@0xoffset` (the module-relative offset, so the
//!    same code gives the same text in every process); with no module at all, the
//!    address as `@0xaddress`.
//! 3. If a *sentinel* frame (a panic entry point, a signal trampoline) is on the stack,
//!    everything above the innermost one is dropped.
//! 4. Walking from the top: *irrelevant* frames (abort, raise, panic machinery,
//!    allocator shims, the crash reporter) are skipped; *prefix* frames (memcpy,
//!    free, unwrap, system libraries without symbols) are kept and the walk goes on;
//!    the first other frame is kept and ends the walk. Frames of some modules
//!    without symbols (system libraries, graphics drivers) are *trimmed* to the
//!    module name first.
//! 5. The kept frames are joined with ` | `, whitespace is tidied and the text is cut
//!    to [`MAX_SIGNATURE_LENGTH`] characters. If every frame was irrelevant, the first
//!    frame is used; with no frames at all the text is [`EMPTY_NO_FRAMES`].
//!
//! The lists that drive steps 3 and 4 are data, not code: `server/signature/*.txt`,
//! one regular expression per line (sentinels are exact names), adapted from
//! Socorro's `siglists` (MPL-2.0; each file says where it comes from) and embedded in
//! the binary. A deployment adds its own entries: files of the same names in the
//! directory `[signatures] rules_dir` names ([`SignatureRules::load`], see
//! [`LIST_FILES`]), each added to the built-in list of its name.
//! [`SignatureRules::new`] compiles other lists from text (a test's own).
//!
//! The rules are compiled once when the server (or a command) starts, and handed
//! to the pipeline ([`Pipeline::signatures`](super::Pipeline::signatures)): a
//! rule change applies to reports processed from then on, and `mayday-server
//! signatures reprocess` regroups the stored ones ([`super::regroup`]).
//!
//! Without symbols every frame is `module@0xoffset`, so two different crashes in the
//! same module get different signatures and the same crash always gets the same one:
//! reports never fall into one bucket per module. When symbols arrive and the report
//! is reprocessed, its signature becomes the function-name one.

mod normalize;
mod rules;
#[cfg(test)]
mod tests;

pub use rules::{LIST_FILES, RuleLists, RulesError, SignatureRules};

/// Longest signature text, in characters; longer ones end in `...` (as Socorro).
pub const MAX_SIGNATURE_LENGTH: usize = 255;

/// Most frames (inlined calls counted) that signature generation looks at.
pub const MAX_FRAMES: usize = 40;

/// Signature of a crashing thread that has no frames.
pub const EMPTY_NO_FRAMES: &str = "EMPTY: no frame data available";

/// Signature of a report whose crashing thread could not be identified.
pub const EMPTY_NO_CRASHING_THREAD: &str = "EMPTY: no crashing thread identified";

/// A crash signature: the text shown to developers and the key issues are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Human-readable signature, frames joined with ` | `.
    pub text: String,
}

impl Signature {
    /// A signature with the given text.
    pub fn from_text(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The grouping key: hex SHA-256 of the text. The one place it is
    /// computed.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.text.as_bytes()))
    }

    /// The signature of a report whose crashing thread is unknown
    /// ([`EMPTY_NO_CRASHING_THREAD`]).
    pub fn no_crashing_thread() -> Self {
        Self::from_text(EMPTY_NO_CRASHING_THREAD)
    }
}

//! The rule lists (`server/signature/*.txt`), their compilation into
//! [`SignatureRules`], and the walk that applies them to normalized frames.

use regex::Regex;

use super::normalize::{collapse_whitespace, normalize_frames};
use super::{EMPTY_NO_FRAMES, MAX_SIGNATURE_LENGTH, Signature};
use crate::pipeline::report::Frame;

/// The text of the rule lists, one entry per line, `#` starts a comment line.
#[derive(Debug, Clone, Copy)]
pub struct RuleLists<'a> {
    /// Regular expressions of frames to skip (`irrelevant_signature_re.txt`).
    pub irrelevant: &'a str,
    /// Regular expressions of frames to keep while going on to the next one
    /// (`prefix_signature_re.txt`).
    pub prefix: &'a str,
    /// Regular expressions of `module@0xoffset` frames to cut to the module name
    /// (`trim_module_signature_re.txt`).
    pub trim_module: &'a str,
    /// Regular expressions of functions that get `:line` appended
    /// (`signatures_with_line_numbers_re.txt`).
    pub line_numbers: &'a str,
    /// Exact frames where the signature starts if present (`signature_sentinels.txt`).
    pub sentinels: &'a str,
}

impl RuleLists<'static> {
    /// The lists in `server/signature/`, embedded at build time.
    pub const EMBEDDED: Self = Self {
        irrelevant: include_str!("../../../signature/irrelevant_signature_re.txt"),
        prefix: include_str!("../../../signature/prefix_signature_re.txt"),
        trim_module: include_str!("../../../signature/trim_module_signature_re.txt"),
        line_numbers: include_str!("../../../signature/signatures_with_line_numbers_re.txt"),
        sentinels: include_str!("../../../signature/signature_sentinels.txt"),
    };
}

/// A rule list that could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A line is not a valid regular expression.
    #[error("signature rule list `{list}`, line {line}: invalid regular expression")]
    BadRegex {
        /// Which list (`irrelevant`, `prefix`, `trim_module`, `line_numbers`).
        list: &'static str,
        /// 1-based line number in that list (0: the list as a whole is too big).
        line: usize,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
}

impl RulesError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadRegex { .. } => "bad_regex",
        }
    }
}

/// Compiled signature rules: build once, use for every report.
#[derive(Debug, Clone)]
pub struct SignatureRules {
    pub(super) irrelevant: Option<Regex>,
    pub(super) prefix: Option<Regex>,
    pub(super) trim_module: Option<Regex>,
    pub(super) line_numbers: Option<Regex>,
    pub(super) sentinels: Vec<String>,
}

impl Default for SignatureRules {
    /// The embedded rule lists ([`RuleLists::EMBEDDED`]).
    fn default() -> Self {
        // The embedded lists are checked by a unit test, so this cannot fail at run time.
        Self::new(&RuleLists::EMBEDDED).expect("embedded signature rule lists compile")
    }
}

impl SignatureRules {
    /// Compiles rule lists.
    pub fn new(lists: &RuleLists<'_>) -> Result<Self, RulesError> {
        Ok(Self {
            irrelevant: compile_list("irrelevant", lists.irrelevant)?,
            prefix: compile_list("prefix", lists.prefix)?,
            trim_module: compile_list("trim_module", lists.trim_module)?,
            line_numbers: compile_list("line_numbers", lists.line_numbers)?,
            sentinels: list_entries(lists.sentinels)
                .map(|(_, entry)| entry.to_owned())
                .collect(),
        })
    }

    /// The normalized frames signature generation walks (Socorro's
    /// `normalized_frames`; joined with ` | ` they are its "proto signature"): inlined
    /// calls expanded, at most [`MAX_FRAMES`](super::MAX_FRAMES).
    pub fn normalize_frames(&self, frames: &[Frame]) -> Vec<String> {
        normalize_frames(frames, self.line_numbers.as_ref())
    }

    /// Computes the signature of a crashing thread's frames (innermost first).
    pub fn signature(&self, frames: &[Frame]) -> Signature {
        Signature::from_text(self.generate(&self.normalize_frames(frames)))
    }

    /// Turns normalized frames into the signature text.
    fn generate(&self, normalized: &[String]) -> String {
        // Start at the innermost sentinel, if any.
        let start = normalized
            .iter()
            .position(|frame| self.sentinels.iter().any(|s| s == frame))
            .unwrap_or(0);
        let frames = &normalized[start..];

        let mut kept: Vec<&str> = Vec::new();
        for frame in frames {
            if matches(&self.irrelevant, frame) {
                continue;
            }
            let mut frame = frame.as_str();
            if matches(&self.trim_module, frame) {
                frame = frame.split('@').next().unwrap_or(frame);
                if kept.last() == Some(&frame) {
                    continue;
                }
            }
            kept.push(frame);
            if !matches(&self.prefix, frame) {
                break;
            }
        }

        let text = if !kept.is_empty() {
            kept.join(" | ")
        } else if let Some(first) = frames.first() {
            // Every frame was irrelevant: the top one still says more than nothing.
            first.clone()
        } else {
            EMPTY_NO_FRAMES.to_owned()
        };
        truncate(&collapse_whitespace(&text))
    }
}

/// The non-comment, non-blank lines of a list, with their 1-based line numbers.
fn list_entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// Compiles a list into one regex matching at the start of a frame (like Python's
/// `re.match`), or `None` for an empty list.
fn compile_list(list: &'static str, text: &str) -> Result<Option<Regex>, RulesError> {
    let mut alternatives = Vec::new();
    for (line, entry) in list_entries(text) {
        // Check each line alone so a mistake is reported where it is.
        let single = format!("^(?:{entry})");
        Regex::new(&single).map_err(|source| RulesError::BadRegex { list, line, source })?;
        alternatives.push(format!("(?:{entry})"));
    }
    if alternatives.is_empty() {
        return Ok(None);
    }
    let combined = format!("^(?:{})", alternatives.join("|"));
    Regex::new(&combined)
        .map(Some)
        .map_err(|source| RulesError::BadRegex {
            list,
            line: 0,
            source,
        })
}

fn matches(regex: &Option<Regex>, text: &str) -> bool {
    regex.as_ref().is_some_and(|r| r.is_match(text))
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_SIGNATURE_LENGTH {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_SIGNATURE_LENGTH - 3).collect();
    cut.push_str("...");
    cut
}

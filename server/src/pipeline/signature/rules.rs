//! The rule lists (`server/signature/*.txt`), their compilation into
//! [`SignatureRules`], and the walk that applies them to normalized frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::normalize::{collapse_whitespace, normalize_frames};
use super::{EMPTY_NO_FRAMES, MAX_SIGNATURE_LENGTH, Signature};
use crate::pipeline::report::{Frame, Thread};

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

/// The five lists: the name errors give each, and its file name (in
/// `server/signature/` and in a deployment's rules directory).
pub const LIST_FILES: [(&str, &str); 5] = [
    ("irrelevant", "irrelevant_signature_re.txt"),
    ("prefix", "prefix_signature_re.txt"),
    ("trim_module", "trim_module_signature_re.txt"),
    ("line_numbers", "signatures_with_line_numbers_re.txt"),
    ("sentinels", "signature_sentinels.txt"),
];

impl<'a> RuleLists<'a> {
    /// No entries in any list.
    pub const EMPTY: RuleLists<'static> = RuleLists {
        irrelevant: "",
        prefix: "",
        trim_module: "",
        line_numbers: "",
        sentinels: "",
    };

    /// The text of the list named `list` (a name of [`LIST_FILES`]).
    fn get(&self, list: &str) -> &'a str {
        match list {
            "irrelevant" => self.irrelevant,
            "prefix" => self.prefix,
            "trim_module" => self.trim_module,
            "line_numbers" => self.line_numbers,
            _ => self.sentinels,
        }
    }

    /// Sets the text of the list named `list` (a name of [`LIST_FILES`]).
    fn set(&mut self, list: &str, text: &'a str) {
        match list {
            "irrelevant" => self.irrelevant = text,
            "prefix" => self.prefix = text,
            "trim_module" => self.trim_module = text,
            "line_numbers" => self.line_numbers = text,
            _ => self.sentinels = text,
        }
    }
}

/// Signature rules that could not be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A line is not a valid regular expression.
    #[error("signature rules {file}, line {line} (list `{list}`): invalid regular expression")]
    BadRegex {
        /// The file the line is in: a built-in list's file name, or the path of
        /// a deployment's file.
        file: String,
        /// Which list (`irrelevant`, `prefix`, `trim_module`, `line_numbers`).
        list: &'static str,
        /// 1-based line number in that file (0: the list as a whole is too big).
        line: usize,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
    /// The rules directory holds a file that is none of the lists.
    #[error(
        "signature rules directory: {file} is not a rule list (the lists are \
         irrelevant_signature_re.txt, prefix_signature_re.txt, \
         trim_module_signature_re.txt, signatures_with_line_numbers_re.txt and \
         signature_sentinels.txt)"
    )]
    UnknownFile {
        /// The file.
        file: PathBuf,
    },
    /// The rules directory or one of its files could not be read.
    #[error("signature rules {file}: {source}")]
    Read {
        /// The directory or file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RulesError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadRegex { .. } => "bad_regex",
            Self::UnknownFile { .. } => "unknown_file",
            Self::Read { .. } => "read",
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
    /// Compiles rule lists (a test's own, or [`RuleLists::EMBEDDED`]).
    pub fn new(lists: &RuleLists<'_>) -> Result<Self, RulesError> {
        Self::compile(&[Part {
            dir: None,
            lists: *lists,
        }])
    }

    /// The built-in lists, each with the entries of the file of the same name in
    /// `dir` added: a deployment's own rules (see [`LIST_FILES`]; every file is
    /// optional, any other file is an error). `None`: the built-in lists alone.
    pub fn load(dir: Option<&Path>) -> Result<Self, RulesError> {
        let Some(dir) = dir else {
            return Ok(Self::default());
        };
        let texts = read_rules_dir(dir)?;
        let mut own = RuleLists::EMPTY;
        for (list, file) in LIST_FILES {
            if let Some(text) = texts.get(file) {
                own.set(list, text);
            }
        }
        Self::compile(&[
            Part {
                dir: None,
                lists: RuleLists::EMBEDDED,
            },
            Part {
                dir: Some(dir),
                lists: own,
            },
        ])
    }

    /// Compiles each list from its text in every part, in order.
    fn compile(parts: &[Part<'_>]) -> Result<Self, RulesError> {
        let [irrelevant, prefix, trim_module, line_numbers, _] = LIST_FILES;
        Ok(Self {
            irrelevant: compile_list(irrelevant, parts)?,
            prefix: compile_list(prefix, parts)?,
            trim_module: compile_list(trim_module, parts)?,
            line_numbers: compile_list(line_numbers, parts)?,
            sentinels: parts
                .iter()
                .flat_map(|part| list_entries(part.lists.get("sentinels")))
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

    /// The signature of a report whose crashing thread is `crashing_thread`
    /// ([`Signature::no_crashing_thread`] when it is unknown): what processing
    /// gives a report, and what its stored processed report gives again.
    pub fn report_signature(&self, crashing_thread: Option<&Thread>) -> Signature {
        match crashing_thread {
            Some(thread) => self.signature(&thread.frames),
            None => Signature::no_crashing_thread(),
        }
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

/// The lists of one origin: the built-in ones (or a test's), or a deployment's
/// files in `dir`.
struct Part<'a> {
    dir: Option<&'a Path>,
    lists: RuleLists<'a>,
}

impl Part<'_> {
    /// Where list file `file` of this part is, for errors.
    fn file(&self, file: &str) -> String {
        match self.dir {
            Some(dir) => dir.join(file).display().to_string(),
            None => file.to_owned(),
        }
    }
}

/// Compiles list `list` (a name and file of [`LIST_FILES`]) of every part into
/// one regex matching at the start of a frame (like Python's `re.match`), or
/// `None` when the list is empty.
fn compile_list(
    (list, file): (&'static str, &'static str),
    parts: &[Part<'_>],
) -> Result<Option<Regex>, RulesError> {
    let mut alternatives = Vec::new();
    for part in parts {
        for (line, entry) in list_entries(part.lists.get(list)) {
            // Check each line alone so a mistake is reported where it is.
            let single = format!("^(?:{entry})");
            Regex::new(&single).map_err(|source| RulesError::BadRegex {
                file: part.file(file),
                list,
                line,
                source,
            })?;
            alternatives.push(format!("(?:{entry})"));
        }
    }
    if alternatives.is_empty() {
        return Ok(None);
    }
    let combined = format!("^(?:{})", alternatives.join("|"));
    Regex::new(&combined)
        .map(Some)
        .map_err(|source| RulesError::BadRegex {
            file: file.to_owned(),
            list,
            line: 0,
            source,
        })
}

/// Reads the list files in a deployment's rules directory: file name -> text.
/// A file that is none of [`LIST_FILES`] is an error, so a misspelt name is not
/// silently ignored.
fn read_rules_dir(dir: &Path) -> Result<BTreeMap<&'static str, String>, RulesError> {
    let read_error = |file: &Path| {
        let file = file.to_owned();
        move |source| RulesError::Read { file, source }
    };
    let mut texts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some((_, file)) = LIST_FILES.iter().find(|(_, file)| *file == name) else {
            return Err(RulesError::UnknownFile { file: path });
        };
        let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
        texts.insert(*file, text);
    }
    Ok(texts)
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

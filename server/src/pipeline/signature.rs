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
//! the binary. [`SignatureRules::new`] compiles other lists from text (a deployment's
//! own, or a test's).
//!
//! Without symbols every frame is `module@0xoffset`, so two different crashes in the
//! same module get different signatures and the same crash always gets the same one:
//! reports never fall into one bucket per module. When symbols arrive and the report
//! is reprocessed, its signature becomes the function-name one.

use std::sync::LazyLock;

use regex::{NoExpand, Regex};

use super::report::Frame;

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
    /// Hex SHA-256 of `text`: the issue's grouping key.
    pub hash: String,
}

impl Signature {
    /// A signature with the given text and its hash.
    pub fn from_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let hash = hex_sha256(&text);
        Self { text, hash }
    }

    /// The signature of a report whose crashing thread is unknown
    /// ([`EMPTY_NO_CRASHING_THREAD`]).
    pub fn no_crashing_thread() -> Self {
        Self::from_text(EMPTY_NO_CRASHING_THREAD)
    }
}

/// Computes the signature of a crashing thread's frames (innermost first) with the
/// embedded rule lists.
pub fn signature(frames: &[Frame]) -> Signature {
    static DEFAULT: LazyLock<SignatureRules> = LazyLock::new(SignatureRules::default);
    DEFAULT.signature(frames)
}

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
        irrelevant: include_str!("../../signature/irrelevant_signature_re.txt"),
        prefix: include_str!("../../signature/prefix_signature_re.txt"),
        trim_module: include_str!("../../signature/trim_module_signature_re.txt"),
        line_numbers: include_str!("../../signature/signatures_with_line_numbers_re.txt"),
        sentinels: include_str!("../../signature/signature_sentinels.txt"),
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
    irrelevant: Option<Regex>,
    prefix: Option<Regex>,
    trim_module: Option<Regex>,
    line_numbers: Option<Regex>,
    sentinels: Vec<String>,
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

    /// Computes the signature of a crashing thread's frames (innermost first).
    pub fn signature(&self, frames: &[Frame]) -> Signature {
        Signature::from_text(self.generate(&self.normalize_frames(frames)))
    }

    /// The normalized frames signature generation walks (Socorro's
    /// `normalized_frames`; joined with ` | ` they are its "proto signature"): inlined
    /// calls expanded, at most [`MAX_FRAMES`].
    pub fn normalize_frames(&self, frames: &[Frame]) -> Vec<String> {
        let mut normalized = Vec::new();
        for frame in frames {
            let module = frame.module.as_deref().map(normalize_module);
            let own = FrameFields {
                module: module.as_deref(),
                function: frame.function.as_deref(),
                file: frame.file.as_deref(),
                line: frame.line,
                module_offset: frame.module_offset.as_deref(),
                offset: &frame.offset,
            };
            let inlines = frame.inlines.iter().map(|inline| FrameFields {
                function: Some(&inline.function),
                file: inline.file.as_deref(),
                line: inline.line,
                ..own
            });
            for fields in inlines.chain(std::iter::once(own)) {
                if normalized.len() == MAX_FRAMES {
                    return normalized;
                }
                normalized.push(self.normalize_frame(&fields));
            }
        }
        normalized
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

    fn normalize_frame(&self, frame: &FrameFields<'_>) -> String {
        if let Some(function) = frame.function {
            let rust = frame.file.is_some_and(|f| source_path(f).ends_with(".rs"))
                || looks_like_rust(function);
            let mut function = if rust {
                normalize_rust_function(function)
            } else {
                normalize_cpp_function(function)
            };
            if let Some(line) = frame.line
                && matches(&self.line_numbers, &function)
            {
                function = format!("{function}:{line}");
            }
            let function = fixup_spacing(&function);
            // A name that normalizes to nothing (blank, or only a parameter list)
            // falls through to the next best description.
            if !function.is_empty() {
                return function;
            }
        }
        if let (Some(file), Some(line)) = (frame.file, frame.line)
            && !file.is_empty()
            && line != 0
        {
            return format!("{}#{line}", file_basename(file));
        }
        match (frame.module, frame.module_offset) {
            (None, None) => format!("@{}", strip_leading_zeros(frame.offset)),
            (module, module_offset) => format!(
                "{}@{}",
                module.unwrap_or(""),
                strip_leading_zeros(module_offset.unwrap_or(frame.offset))
            ),
        }
    }
}

/// One frame as signature generation sees it: a physical frame or an inlined call.
#[derive(Clone, Copy)]
struct FrameFields<'a> {
    module: Option<&'a str>,
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    module_offset: Option<&'a str>,
    offset: &'a str,
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

/// Windows file names ignore case, and dumps spell them either way (`KERNEL32.DLL`,
/// `kernel32.dll`): lowercase them so both give one signature, as Socorro does for
/// Windows crashes.
fn normalize_module(module: &str) -> String {
    let lower = module.to_ascii_lowercase();
    if [".dll", ".exe", ".sys"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        lower
    } else {
        module.to_owned()
    }
}

/// The path part of a source file name, which may be a VCS reference like
/// `hg:hg.mozilla.org/mozilla-central:memory/mozalloc/mozalloc.cpp:958d142c`.
fn source_path(file: &str) -> &str {
    let parts: Vec<&str> = file.split(':').collect();
    if parts.len() == 4 { parts[2] } else { file }
}

fn file_basename(file: &str) -> &str {
    let path = source_path(file).trim_end_matches(['/', '\\']);
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `0x0000429e` → `0x429e`; anything that is not hex is returned unchanged.
fn strip_leading_zeros(hex: &str) -> String {
    let digits = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    match u64::from_str_radix(digits, 16) {
        Ok(value) => format!("{value:#x}"),
        Err(_) => hex.to_owned(),
    }
}

/// Rust names seen without a `.rs` file (no line records, or a `.sym` from a tool
/// that drops files): a legacy hash suffix, a closure, or a trait impl.
fn looks_like_rust(function: &str) -> bool {
    RUST_HASH.is_match(function)
        || function.contains("{{closure}}")
        || function.contains("{closure#")
        || function.contains(" as ")
}

/// Legacy Rust mangling ends each symbol with a 16-hex-digit hash.
static RUST_HASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"::h[0-9a-fA-F]{16}$").unwrap());
/// C++ lambda numbers (`::$_12::`) change with unrelated edits.
static LAMBDA_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"::\$_\d+::").unwrap());
/// GCC/Clang clone suffixes: `[clone .cold.222]`, `[clone .constprop.0]`, ….
static CLONE_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*\[clone [^\]]*\]").unwrap());
static SPACE_BEFORE_PUNCT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" ([*&,])").unwrap());
static COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r",\s*").unwrap());

fn normalize_rust_function(function: &str) -> String {
    let function = RUST_HASH.replace(function.trim(), "");
    let function = drop_prefix_and_return_type(&function);
    let function = collapse(&function, '<', '>', "<T>", &[" as "]);
    collapse(&function, '(', ')', "", &[])
}

fn normalize_cpp_function(function: &str) -> String {
    let function = RUST_HASH.replace(function.trim(), "");
    let function = strip_qualifiers(&function);
    // Operator overloads have no return type to drop, and their `<`/`>`/`(`
    // characters confuse the tokenizer.
    let function = if function.contains("::operator") {
        function.to_owned()
    } else {
        drop_prefix_and_return_type(function)
    };
    // MSVC spells it `` `anonymous namespace' ``, GCC and Clang `(anonymous namespace)`.
    let function = function.replace("`anonymous namespace'", "(anonymous namespace)");
    let function = LAMBDA_NUMBER.replace_all(&function, NoExpand("::$::"));
    let function = collapse(
        &function,
        '<',
        '>',
        "<T>",
        // `<name omitted>` (MSVC) and `<unknown in foo.dll>` are not template arguments.
        &["name omitted", " in "],
    );
    let function = collapse(
        &function,
        '(',
        ')',
        "",
        &["anonymous namespace", "operator"],
    );
    CLONE_SUFFIX.replace_all(&function, "").into_owned()
}

/// Drops member function qualifiers after the parameter list: `const`, `volatile`,
/// `noexcept`, `&`, `&&`.
fn strip_qualifiers(function: &str) -> &str {
    const QUALIFIERS: [&str; 6] = ["const&", "const", "volatile", "noexcept", "&&", "&"];
    let mut function = function.trim_end();
    loop {
        let stripped = QUALIFIERS.iter().find_map(|q| {
            let rest = function.strip_suffix(q)?.trim_end();
            rest.ends_with(')').then_some(rest)
        });
        match stripped {
            Some(rest) => function = rest,
            None => return function,
        }
    }
}

/// Spaces and commas: none before `*`, `&` and `,`, one after `,`, no runs.
fn fixup_spacing(function: &str) -> String {
    let function = collapse_whitespace(function);
    let function = SPACE_BEFORE_PUNCT.replace_all(&function, "$1");
    COMMA.replace_all(&function, ", ").trim().to_owned()
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_SIGNATURE_LENGTH {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_SIGNATURE_LENGTH - 3).collect();
    cut.push_str("...");
    cut
}

/// Drops storage class and return type: splits on spaces outside any `()`, `{}`,
/// `[]`, `<>` or `` `' `` pair and keeps the last token (with a parameter list or
/// `[clone …]` that followed a space).
///
/// `static void * Allocator<Foo>::malloc(unsigned __int64)` →
/// `Allocator<Foo>::malloc(unsigned __int64)`.
fn drop_prefix_and_return_type(function: &str) -> String {
    fn closer(open: char) -> char {
        match open {
            '(' => ')',
            '{' => '}',
            '[' => ']',
            '<' => '>',
            _ => '\'',
        }
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut levels: Vec<char> = Vec::new();
    let mut current = String::new();
    for c in function.trim().chars() {
        match c {
            '(' | '{' | '[' | '<' | '`' => {
                levels.push(c);
                current.push(c);
            }
            ')' | '}' | ']' | '>' | '\'' => {
                if levels.last().map(|&open| closer(open)) == Some(c) {
                    levels.pop();
                }
                current.push(c);
            }
            ' ' if levels.is_empty() => tokens.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    while tokens.len() > 1 {
        let last = &tokens[tokens.len() - 1];
        if !(last.starts_with('(') || last.starts_with("[clone")) {
            break;
        }
        let last = tokens.pop().unwrap_or_default();
        let before = tokens.pop().unwrap_or_default();
        tokens.push(format!("{before} {last}"));
    }
    tokens.pop().unwrap_or_default()
}

/// Replaces each outermost `open … close` group with `replacement`, except where
/// the text before the group ends with, or the group contains, one of `exceptions`
/// (`(anonymous namespace)` stays, `foo(int, char)` becomes `foo`).
fn collapse(
    function: &str,
    open: char,
    close: char,
    replacement: &str,
    exceptions: &[&str],
) -> String {
    let is_exception = |before: &str, token: &str| {
        exceptions
            .iter()
            .any(|e| before.ends_with(e) || token.contains(e))
    };
    let mut out = String::with_capacity(function.len());
    let mut depth = 0usize;
    let mut token = String::new();
    for (i, c) in function.char_indices() {
        if depth == 0 {
            if c == open && !is_exception(&function[..i], "") {
                depth = 1;
                token.clear();
                token.push(c);
            } else {
                out.push(c);
            }
            continue;
        }
        token.push(c);
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                if is_exception(&function[..i], &token) {
                    out.push_str(&token);
                } else {
                    out.push_str(replacement);
                }
                token.clear();
            }
        }
    }
    if depth > 0 {
        // Unbalanced: treat the rest as one group.
        if is_exception(function, &token) {
            out.push_str(&token);
        } else {
            out.push_str(replacement);
        }
    }
    out
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::report::InlineFrame;
    use super::*;

    // ---- helpers -------------------------------------------------------------------

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
    }

    /// The crashing thread of a minidump-stackwalk `--json` reference output.
    fn reference_frames(path: &str) -> Vec<Frame> {
        let text = std::fs::read_to_string(testdata().join(path)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["crashing_thread"]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|frame| {
                let mut frame = frame.clone();
                // minidump-stackwalk writes `"inlines": null` where there are none.
                if frame["inlines"].is_null() {
                    frame["inlines"] = serde_json::json!([]);
                }
                serde_json::from_value(frame).unwrap()
            })
            .collect()
    }

    /// Every reference output under the shared test data, with its signature text.
    const REFERENCES: &[(&str, &str)] = &[
        (
            "breakpad-win-x86-minidump2/reference/minidump2.minidump-stackwalk-0.27.0.json",
            "(anonymous namespace)::CrashFunction",
        ),
        (
            "mozilla-firefox-linux-x64/reference/firefox-linux-x86_64.minidump-stackwalk-0.27.0.json",
            "libxul.so@0x34464e8",
        ),
        (
            "mozilla-firefox-win-x64/reference/firefox-windows-x86_64.minidump-stackwalk-0.27.0.json",
            "xul.dll@0x38ab264",
        ),
        (
            "mozilla-firefox-android-arm64/reference/firefox-android-aarch64.minidump-stackwalk-0.27.0.json",
            "libxul.so@0x2d4da90",
        ),
        (
            "rust-minidump-macos-x64-inlines/reference/pipeline-inlines-macos-segv.minidump-stackwalk-0.27.0.json",
            "core::ptr::write_volatile::<T> | sadness_generator::raise_segfault",
        ),
        (
            "symbolic-linux-x64-crash/reference/linux-mini.minidump-stackwalk-0.27.0.json",
            "main",
        ),
        (
            "symbolic-win-x86-crash/reference/windows-mini.minidump-stackwalk-0.27.0.json",
            "main",
        ),
        (
            "breakpad-linux-x64-inline/reference/linux_inline.minidump-stackwalk-0.27.0.json",
            "linux_inline@0x161b6",
        ),
        (
            "crashpad-iossim-x64-annotations/reference/minidump_crashpad_annotation.minidump-stackwalk-0.27.0.json",
            "ios_crash_xcuitests@0x6bc34",
        ),
        (
            "electron-nosyms/reference/electron-linux.minidump-stackwalk-0.27.0.json",
            "electron@0x30785f0",
        ),
        (
            "electron-nosyms/reference/electron-mac.minidump-stackwalk-0.27.0.json",
            "Electron Framework@0xf34e4",
        ),
        (
            "electron-nosyms/reference/electron-windows.minidump-stackwalk-0.27.0.json",
            "electron.exe@0xe8da4",
        ),
    ];

    fn frame(module: Option<&str>, module_offset: Option<&str>, offset: &str) -> Frame {
        Frame {
            module: module.map(str::to_owned),
            module_offset: module_offset.map(str::to_owned),
            offset: offset.to_owned(),
            trust: "cfi".to_owned(),
            ..Frame::default()
        }
    }

    /// A symbolicated frame in module `app`.
    fn func(function: &str) -> Frame {
        Frame {
            function: Some(function.to_owned()),
            ..frame(Some("app"), Some("0x10"), "0x1010")
        }
    }

    /// A frame without symbols.
    fn nosym(module: &str, module_offset: &str) -> Frame {
        Frame {
            missing_symbols: true,
            ..frame(Some(module), Some(module_offset), "0x7f0000001000")
        }
    }

    fn text(frames: &[Frame]) -> String {
        signature(frames).text
    }

    /// The normalized form of one symbolicated frame.
    fn normalized(function: &str) -> String {
        SignatureRules::default().normalize_frames(&[func(function)])[0].clone()
    }

    // ---- real test data ------------------------------------------------------------

    #[test]
    fn reference_outputs_give_the_expected_signatures() {
        for (path, expected) in REFERENCES {
            let frames = reference_frames(path);
            assert!(!frames.is_empty(), "{path}");
            let sig = signature(&frames);
            assert_eq!(sig.text, *expected, "{path}");
            assert_eq!(sig.hash, hex_sha256(expected), "{path}");
        }
    }

    #[test]
    fn reference_dumps_of_different_crashes_get_different_issues() {
        let mut seen = std::collections::BTreeMap::new();
        for (path, _) in REFERENCES {
            let sig = signature(&reference_frames(path));
            if let Some(other) = seen.insert(sig.hash.clone(), *path) {
                // The two symbolic dumps with the same crash in a `main` both say `main`.
                assert_eq!(sig.text, "main", "{path} and {other} share {}", sig.text);
            }
        }
        assert_eq!(seen.len(), REFERENCES.len() - 1);
    }

    #[test]
    fn the_same_dump_in_two_variants_gets_the_same_signature() {
        // The same crash written by Breakpad and re-written by rust-minidump's tools.
        let a = reference_frames(
            "symbolic-linux-x64-crash/reference/linux-mini.minidump-stackwalk-0.27.0.json",
        );
        let b = reference_frames(
            "symbolic-linux-x64-crash/reference/linux-mini.rust-minidump-variant.minidump-stackwalk-0.27.0.json",
        );
        assert_eq!(signature(&a), signature(&b));
    }

    #[test]
    fn signatures_are_deterministic() {
        // A fresh rule set, and the frames read again, give the same result.
        let fresh = SignatureRules::new(&RuleLists::EMBEDDED).unwrap();
        for (path, _) in REFERENCES {
            let frames = reference_frames(path);
            let first = signature(&frames);
            assert_eq!(fresh.signature(&reference_frames(path)), first, "{path}");
            assert_eq!(fresh.signature(&frames), signature(&frames), "{path}");
        }
    }

    #[test]
    fn reference_frames_normalize_like_socorro() {
        let frames = reference_frames(REFERENCES[0].0);
        assert_eq!(
            SignatureRules::default().normalize_frames(&frames),
            [
                "(anonymous namespace)::CrashFunction",
                "main",
                "__tmainCRTStartup",
                "BaseProcessStart",
            ]
        );
        // Inlined calls come first, innermost first, then the physical frame's own.
        let frames = reference_frames(REFERENCES[4].0);
        let normalized = SignatureRules::default().normalize_frames(&frames);
        assert_eq!(
            normalized[..5],
            [
                "core::ptr::write_volatile::<T>",
                "sadness_generator::raise_segfault",
                "crash_client::real_main::{closure#1}",
                "crash_client::real_main",
                "crash_client::main",
            ]
        );
        assert!(normalized.len() <= MAX_FRAMES);
    }

    // ---- rule lists ----------------------------------------------------------------

    #[test]
    fn embedded_lists_compile_and_are_not_empty() {
        let rules = SignatureRules::new(&RuleLists::EMBEDDED).unwrap();
        assert!(rules.irrelevant.is_some());
        assert!(rules.prefix.is_some());
        assert!(rules.trim_module.is_some());
        assert!(rules.sentinels.iter().any(|s| s == "rust_begin_unwind"));
        // Comment lines are not entries.
        assert!(rules.sentinels.iter().all(|s| !s.starts_with('#')));
    }

    #[test]
    fn a_bad_regex_is_reported_with_its_list_and_line() {
        let lists = RuleLists {
            prefix: "# comment\n\nmemcpy\nfoo(\n",
            ..RuleLists::EMBEDDED
        };
        let err = SignatureRules::new(&lists).unwrap_err();
        assert_eq!(err.name(), "bad_regex");
        assert!(
            matches!(
                err,
                RulesError::BadRegex {
                    list: "prefix",
                    line: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "signature rule list `prefix`, line 4: invalid regular expression"
        );
    }

    #[test]
    fn rules_are_data() {
        // The same stack under other lists gives another signature.
        let frames = [func("memcpy"), func("Parser::parse"), func("main")];
        assert_eq!(text(&frames), "memcpy | Parser::parse");
        let lists = RuleLists {
            prefix: "",
            irrelevant: "memcpy\nParser::",
            ..RuleLists::EMBEDDED
        };
        let rules = SignatureRules::new(&lists).unwrap();
        assert_eq!(rules.signature(&frames).text, "main");
        // Entries match at the start of a frame, like Python's `re.match`.
        let lists = RuleLists {
            irrelevant: "parse",
            ..RuleLists::EMBEDDED
        };
        let rules = SignatureRules::new(&lists).unwrap();
        assert_eq!(rules.signature(&frames).text, "memcpy | Parser::parse");
    }

    // ---- the walk ------------------------------------------------------------------

    #[test]
    fn irrelevant_frames_are_skipped_and_prefix_frames_combined() {
        let frames = [
            func("__GI_raise"),
            func("__GI_abort"),
            func("__libc_message"),
            func("malloc_printerr"),
            func("_int_free"),
            func("free"),
            func("Buffer::~Buffer()"),
            func("Document::close()"),
            func("main"),
        ];
        assert_eq!(
            text(&frames),
            "__libc_message | malloc_printerr | _int_free | free | Buffer::~Buffer"
        );
        // Windows: exception dispatch skipped, the throwing function named.
        let frames = [
            func("KiUserExceptionDispatcher"),
            func("RaiseException"),
            func("_CxxThrowException"),
            func("Config::load(std::string const &)"),
            func("wmain"),
        ];
        assert_eq!(text(&frames), "Config::load");
    }

    #[test]
    fn when_every_frame_is_irrelevant_the_first_is_used() {
        let frames = [func("abort"), func("raise")];
        assert_eq!(text(&frames), "abort");
    }

    #[test]
    fn sentinels_cut_the_frames_above_them() {
        let frames = [
            func("write"),
            func("myapp::crash_hook::{{closure}}"),
            func("_sigtramp"),
            func("Renderer::draw()"),
            func("main"),
        ];
        assert_eq!(text(&frames), "Renderer::draw");
    }

    #[test]
    fn only_the_first_frames_are_read() {
        let mut frames: Vec<Frame> = (0..MAX_FRAMES).map(|_| func("memcpy")).collect();
        frames.push(func("too_deep"));
        let sig = text(&frames);
        assert!(!sig.contains("too_deep"), "{sig}");
        assert_eq!(
            SignatureRules::default().normalize_frames(&frames).len(),
            MAX_FRAMES
        );
    }

    #[test]
    fn long_signatures_are_truncated() {
        let name = format!("memcpy_{}", "x".repeat(100));
        let frames: Vec<Frame> = (0..5).map(|_| func(&name)).collect();
        let sig = text(&frames);
        assert_eq!(sig.chars().count(), MAX_SIGNATURE_LENGTH);
        assert!(sig.ends_with("..."));
        assert!(sig.starts_with(&name));
    }

    #[test]
    fn no_frames_give_a_stable_empty_signature() {
        let sig = signature(&[]);
        assert_eq!(sig.text, EMPTY_NO_FRAMES);
        assert_eq!(sig, signature(&[]));
        assert_eq!(sig.hash.len(), 64);
        assert_eq!(
            Signature::no_crashing_thread().text,
            "EMPTY: no crashing thread identified"
        );
        assert_ne!(Signature::no_crashing_thread().hash, sig.hash);
    }

    #[test]
    fn hash_is_hex_sha256_of_the_text() {
        assert_eq!(
            Signature::from_text("abc").hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let sig = signature(&[func("Parser::parse")]);
        assert_eq!(sig, Signature::from_text("Parser::parse"));
    }

    // ---- inlined calls -------------------------------------------------------------

    #[test]
    fn inlined_calls_come_before_their_physical_frame() {
        let mut outer = func("Engine::run()");
        outer.inlines = vec![
            InlineFrame {
                function: "Vec::index".to_owned(),
                file: Some("/src/vec.cc".to_owned()),
                line: Some(12),
            },
            InlineFrame {
                function: "Engine::step()".to_owned(),
                file: Some("/src/engine.cc".to_owned()),
                line: Some(40),
            },
        ];
        let frames = [func("memset"), outer, func("main")];
        assert_eq!(
            SignatureRules::default().normalize_frames(&frames),
            [
                "memset",
                "Vec::index",
                "Engine::step",
                "Engine::run",
                "main"
            ]
        );
        assert_eq!(text(&frames), "memset | Vec::index");
    }

    // ---- Rust ----------------------------------------------------------------------

    /// A Rust frame with a `.rs` file, as dump_syms writes it.
    fn rust(function: &str) -> Frame {
        Frame {
            file: Some("/rustc/abc/library/std/src/panicking.rs".to_owned()),
            line: Some(1),
            ..func(function)
        }
    }

    #[test]
    fn rust_panics_are_named_by_the_panicking_call() {
        let frames = [
            func("__pthread_kill_implementation"),
            func("raise"),
            func("abort"),
            rust("std::sys::pal::unix::abort_internal"),
            rust("std::process::abort"),
            // A panic hook that writes the minidump: above the sentinel, ignored.
            rust("myapp::report::install::{{closure}}"),
            rust("std::panicking::rust_panic_with_hook"),
            rust("std::panicking::begin_panic_handler::{{closure}}"),
            rust(
                "std::sys::backtrace::__rust_end_short_backtrace<std::panicking::begin_panic_handler::{{closure}}, !>",
            ),
            rust("__rustc::rust_begin_unwind"),
            rust("core::panicking::panic_fmt"),
            rust("core::panicking::panic"),
            rust("core::option::unwrap_failed"),
            rust("crashy::parse_config::h0123456789abcdef"),
            rust("crashy::main"),
        ];
        assert_eq!(
            text(&frames),
            "core::option::unwrap_failed | crashy::parse_config"
        );
    }

    #[test]
    fn rust_panics_without_a_sentinel_still_skip_the_machinery() {
        let frames = [
            func("abort"),
            rust("std::sys::unix::abort_internal"),
            rust("std::process::abort"),
            rust("rust_panic"),
            rust("__rust_start_panic"),
            rust("panic_abort::__rust_start_panic::abort"),
            rust("<usize as core::slice::index::SliceIndex<[T]>>::index"),
            rust("crashy::lookup"),
        ];
        // Index panics name the caller too.
        assert_eq!(
            text(&frames),
            "<usize as core::slice::index::SliceIndex<[T]>>::index | crashy::lookup"
        );
        let frames = [
            rust("__rust_alloc"),
            rust("alloc::alloc::handle_alloc_error"),
            rust("alloc::raw_vec::handle_error"),
            rust("alloc::raw_vec::RawVec<T,A>::grow_one"),
            rust("crashy::fill"),
        ];
        assert_eq!(text(&frames), "alloc::raw_vec::RawVec<T>::grow_one");
    }

    #[test]
    fn rust_names_are_normalized() {
        // Hash suffix, with or without a `.rs` file.
        assert_eq!(
            normalized("crashy::main::h0123456789abcdef"),
            "crashy::main"
        );
        assert_eq!(
            SignatureRules::default().normalize_frames(&[rust("crashy::main::h0123456789abcdef")]),
            ["crashy::main"]
        );
        // Not a hash: fewer than 16 hex digits.
        assert_eq!(normalized("crashy::hadd"), "crashy::hadd");
        // Generic arguments collapse to <T>; trait impls keep their `as`.
        assert_eq!(
            SignatureRules::default()
                .normalize_frames(&[rust("alloc::vec::Vec<u8, alloc::alloc::Global>::push")]),
            ["alloc::vec::Vec<T>::push"]
        );
        assert_eq!(
            normalized("<crashy::Config as core::fmt::Debug>::fmt"),
            "<crashy::Config as core::fmt::Debug>::fmt"
        );
        assert_eq!(
            normalized("crashy::worker::{{closure}}::h00112233445566ff"),
            "crashy::worker::{{closure}}"
        );
    }

    // ---- C and C++ names -----------------------------------------------------------

    #[test]
    fn cpp_names_are_normalized_like_socorro() {
        let cases = [
            // Parameter lists and return types go.
            ("Parser::parse(char const*, int)", "Parser::parse"),
            (
                "static void * Allocator<MozJemallocBase>::malloc(unsigned __int64)",
                "Allocator<T>::malloc",
            ),
            // cv/ref qualifiers go; an `operator&` keeps its name.
            ("Foo::get() const", "Foo::get"),
            ("Foo::take() &&", "Foo::take"),
            ("Foo::operator&(Foo const&)", "Foo::operator&"),
            ("Foo::operator()(int) const", "Foo::operator()"),
            // Anonymous namespaces, both spellings, end up the same.
            (
                "`anonymous namespace'::CrashFunction",
                "(anonymous namespace)::CrashFunction",
            ),
            (
                "(anonymous namespace)::CrashFunction()",
                "(anonymous namespace)::CrashFunction",
            ),
            // Templates collapse, except `<name omitted>` and `<unknown in foo.dll>`.
            (
                "std::vector<int, std::allocator<int> >::push_back(int const&)",
                "std::vector<T>::push_back",
            ),
            ("<name omitted>", "<name omitted>"),
            ("<unknown in foo.dll>", "<unknown in foo.dll>"),
            // Lambda numbers and compiler clone suffixes go.
            (
                "Runner::Run()::$_12::operator()() const",
                "Runner::Run::$::operator()",
            ),
            (
                "(anonymous namespace)::MinidumpWriter::WriteProcFile(MDLocationDescriptor*, int, char const*) [clone .constprop.119]",
                "(anonymous namespace)::MinidumpWriter::WriteProcFile",
            ),
            ("Decoder::decode(int) [clone .cold.222]", "Decoder::decode"),
            // Whitespace is tidied.
            ("  Foo::bar\t ", "Foo::bar"),
        ];
        for (function, expected) in cases {
            assert_eq!(normalized(function), expected, "{function}");
        }
    }

    #[test]
    fn names_that_normalize_to_nothing_fall_back_to_the_location() {
        let blank = Frame {
            function: Some("  ".to_owned()),
            ..nosym("libapp.so", "0x40")
        };
        let params_only = Frame {
            function: Some("(int)".to_owned()),
            ..nosym("libapp.so", "0x40")
        };
        assert_eq!(text(&[blank]), "libapp.so@0x40");
        assert_eq!(text(&[params_only]), "libapp.so@0x40");
    }

    #[test]
    fn line_numbers_are_appended_where_listed() {
        let lists = RuleLists {
            line_numbers: "Interpreter::run$",
            ..RuleLists::EMBEDDED
        };
        let rules = SignatureRules::new(&lists).unwrap();
        let frame = Frame {
            line: Some(1234),
            ..func("Interpreter::run(Frame*)")
        };
        assert_eq!(rules.signature(&[frame]).text, "Interpreter::run:1234");
    }

    // ---- frames without symbols ----------------------------------------------------

    #[test]
    fn without_a_function_file_and_line_are_used() {
        let plain = Frame {
            file: Some("c:\\build\\src\\engine.cc".to_owned()),
            line: Some(58),
            ..frame(Some("app.exe"), Some("0x429e"), "0x40429e")
        };
        assert_eq!(text(&[plain]), "engine.cc#58");
        let vcs = Frame {
            file: Some(
                "hg:hg.mozilla.org/mozilla-central:memory/mozalloc/mozalloc.cpp:958d142c"
                    .to_owned(),
            ),
            line: Some(7),
            ..frame(Some("app"), Some("0x1"), "0x1")
        };
        assert_eq!(text(&[vcs]), "mozalloc.cpp#7");
    }

    #[test]
    fn without_symbols_frames_are_module_and_offset() {
        // Different crashes in one module without symbols: different issues.
        let a = signature(&[
            nosym("libapp.so", "0x0000000000012a40"),
            nosym("libapp.so", "0x500"),
        ]);
        let b = signature(&[
            nosym("libapp.so", "0x0000000000013b00"),
            nosym("libapp.so", "0x500"),
        ]);
        assert_eq!(a.text, "libapp.so@0x12a40");
        assert_eq!(b.text, "libapp.so@0x13b00");
        assert_ne!(a.hash, b.hash);
        // The same crash again (another process, another load address): the same issue.
        let mut again = [nosym("libapp.so", "0x12a40"), nosym("libapp.so", "0x500")];
        again[0].offset = "0x55d0c0012a40".to_owned();
        assert_eq!(signature(&again), a);
    }

    #[test]
    fn system_libraries_without_symbols_are_trimmed_and_passed() {
        let frames = [
            nosym("ntdll.dll", "0x9f1c4"),
            nosym("NTDLL.DLL", "0x9f000"),
            nosym("KERNELBASE.dll", "0x3a9fc"),
            nosym("App.exe", "0x0001f00"),
            nosym("App.exe", "0x0002000"),
        ];
        assert_eq!(text(&frames), "ntdll.dll | kernelbase.dll | app.exe@0x1f00");
        let frames = [
            nosym("libc.so.6", "0x1c4507"),
            nosym("libpthread.so.0", "0x12000"),
            nosym("libapp.so", "0x289d"),
        ];
        assert_eq!(
            text(&frames),
            "libc.so.6 | libpthread.so.0 | libapp.so@0x289d"
        );
        let frames = [nosym("nvwgf2um.dll", "0x1234"), func("Renderer::draw()")];
        assert_eq!(text(&frames), "nvwgf2um.dll | Renderer::draw");
    }

    #[test]
    fn frames_without_a_module_use_the_address() {
        // The address alone is the frame.
        let only = [frame(None, None, "0x00007f1234567890")];
        assert_eq!(text(&only), "@0x7f1234567890");
        // A random address (JIT code, a wild jump) differs in every process, so a
        // frame below it names the crash; a null call says so and names the caller.
        let frames = [frame(None, None, "0x7f1234567890"), func("Jit::enter()")];
        assert_eq!(text(&frames), "Jit::enter");
        let frames = [frame(None, None, "0x0"), func("Callbacks::fire()")];
        assert_eq!(text(&frames), "@0x0 | Callbacks::fire");
    }
}

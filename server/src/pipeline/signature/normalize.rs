//! Frame normalisation: each frame (or inlined call) becomes one short, stable
//! text — a function name without its noise, else `file#line`, else
//! `module@0xoffset`, else `@0xaddress`.

use std::sync::LazyLock;

use regex::{NoExpand, Regex};

use super::MAX_FRAMES;
use crate::pipeline::report::{Frame, Hex};

/// The normalized frames signature generation walks (Socorro's
/// `normalized_frames`; joined with ` | ` they are its "proto signature"): inlined
/// calls expanded, at most [`MAX_FRAMES`]. Functions that `line_numbers` matches
/// keep their line number.
pub(super) fn normalize_frames(frames: &[Frame], line_numbers: Option<&Regex>) -> Vec<String> {
    let mut normalized = Vec::new();
    for frame in frames {
        let module = frame.module.as_deref().map(normalize_module);
        let own = FrameFields {
            module: module.as_deref(),
            function: frame.function.as_deref(),
            file: frame.file.as_deref(),
            line: frame.line,
            module_offset: frame.module_offset,
            offset: frame.offset,
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
            normalized.push(normalize_frame(&fields, line_numbers));
        }
    }
    normalized
}

fn normalize_frame(frame: &FrameFields<'_>, line_numbers: Option<&Regex>) -> String {
    if let Some(function) = frame.function {
        let rust = frame.file.is_some_and(|f| source_path(f).ends_with(".rs"))
            || looks_like_rust(function);
        let mut function = if rust {
            normalize_rust_function(function)
        } else {
            normalize_cpp_function(function)
        };
        if let Some(line) = frame.line
            && line_numbers.is_some_and(|r| r.is_match(&function))
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
        // Without leading zeros: `0x429e`.
        (None, None) => format!("@{:#x}", frame.offset.0),
        (module, module_offset) => format!(
            "{}@{:#x}",
            module.unwrap_or(""),
            module_offset.unwrap_or(frame.offset).0
        ),
    }
}

/// One frame as signature generation sees it: a physical frame or an inlined call.
#[derive(Clone, Copy)]
struct FrameFields<'a> {
    module: Option<&'a str>,
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    module_offset: Option<Hex>,
    offset: Hex,
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

pub(super) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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

//! The processed report: what the pipeline makes of a minidump, stored as
//! `reports/<id>.json` and served by the API.
//!
//! Frame fields follow minidump-stackwalk's `--json` output (`module`, `function`,
//! `file`, `line`, `module_offset`, inlined calls in `inlines[]`), so tools written
//! against Socorro's processed crash format read it without surprises.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// The text attachments a rule kept, scrubbed at ingest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_attachments: Vec<mayday_report::scrub::TextAttachment>,
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

/// The most frames [`Thread::stack_text`] writes.
pub const STACK_TEXT_FRAMES: usize = 30;

impl Thread {
    /// The stack as text, one frame a line, innermost first, at most
    /// [`STACK_TEXT_FRAMES`]: the frame number, `module!function` (or
    /// `module + offset` without symbols) and the source file's name and line —
    /// never memory, registers or annotations, and of a source path only its last
    /// part. What an issue keeps when its reports are deleted.
    pub fn stack_text(&self) -> String {
        let mut out = String::new();
        for frame in self.frames.iter().take(STACK_TEXT_FRAMES) {
            let module = frame.module.as_deref().unwrap_or("???");
            let place = match (&frame.function, &frame.module_offset) {
                (Some(function), _) => format!("{module}!{function}"),
                (None, Some(offset)) => format!("{module} + {offset}"),
                (None, None) => frame.offset.to_string(),
            };
            let source = match (&frame.file, frame.line) {
                (Some(file), Some(line)) => format!(" [{}:{line}]", file_name(file)),
                (Some(file), None) => format!(" [{}]", file_name(file)),
                _ => String::new(),
            };
            out.push_str(&format!("{:>2}  {place}{source}\n", frame.frame));
        }
        if self.frames.len() > STACK_TEXT_FRAMES {
            out.push_str(&format!(
                "    … {} more frames\n",
                self.frames.len() - STACK_TEXT_FRAMES
            ));
        }
        out
    }
}

/// The last part of a path, whichever separator it uses (of a module's code
/// file or a source file, for every frame: a byte search, not a `char` pattern).
pub(crate) fn file_name(path: &str) -> &str {
    match path.bytes().rposition(|b| b == b'/' || b == b'\\') {
        // After an ASCII separator: a char boundary.
        Some(at) => &path[at + 1..],
        None => path,
    }
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
    /// Offset of the instruction into the function.
    pub function_offset: Option<Hex>,
    /// Source file, when symbols have line records.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
    /// Offset of the instruction into the module.
    pub module_offset: Option<Hex>,
    /// The instruction address.
    pub offset: Hex,
    /// Whether the module of this frame lacked symbols.
    pub missing_symbols: bool,
    /// How the frame was found: `context`, `cfi`, `frame_pointer`, `scan`, …
    /// (minidump-processor's own text when the report is made: no copy a frame).
    pub trust: Cow<'static, str>,
    /// Calls inlined at this frame, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlines: Vec<InlineFrame>,
}

/// An address or an offset, written as minidump-stackwalk writes an address
/// (its `Address`, outside a 32-bit dump's JSON): `0x` and 16 hex digits. Held
/// as the number and written when the report is, not as text of its own: a
/// frame has three, and each text was an allocation (and a free) a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hex(pub u64);

impl Hex {
    /// `0x` and 16 hex digits, ASCII.
    fn digits(self) -> [u8; 18] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'0'; 18];
        text[1] = b'x';
        for (i, digit) in text[2..].iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        text
    }

    /// Reads `0x` and 1 to 16 hex digits (as written, or without the
    /// leading zeros); `None` for anything else.
    pub fn parse(text: &str) -> Option<Hex> {
        let digits = text.strip_prefix("0x")?;
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        u64::from_str_radix(digits, 16).ok().map(Hex)
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ASCII only.
        f.write_str(std::str::from_utf8(&self.digits()).unwrap_or_default())
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(&self.digits()).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Hex, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Hex;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x and 1 to 16 hex digits")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hex, E> {
                Hex::parse(text)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_is_what_follows_the_last_separator_of_either_kind() {
        for (path, name) in [
            ("/usr/lib/libc.so.6", "libc.so.6"),
            ("C:\\Windows\\System32\\ntdll.dll", "ntdll.dll"),
            ("C:\\src/mixed\\é/crash.cc", "crash.cc"),
            ("née.so", "née.so"),
            ("dir/", ""),
            ("", ""),
        ] {
            assert_eq!(file_name(path), name);
            assert_eq!(file_name(path), path.rsplit(['/', '\\']).next().unwrap());
        }
    }

    /// As minidump-stackwalk writes an address, and read back; other text is
    /// not an address.
    #[test]
    fn addresses_are_written_as_minidump_stackwalk_writes_them_and_read_back() {
        for value in [0, 1, 0x40_1000, 0x7fff_0000_1234, u64::MAX] {
            let written = serde_json::to_string(&Hex(value)).unwrap();
            let expected = minidump_processor::Address(value).to_string();
            assert_eq!(written, format!("\"{expected}\""));
            assert_eq!(Hex(value).to_string(), expected);
            assert_eq!(serde_json::from_str::<Hex>(&written).unwrap(), Hex(value));
        }
        assert_eq!(Hex::parse("0x2a1f0"), Some(Hex(0x2a1f0)));
        for bad in [
            "",
            "0x",
            "2a1f0",
            "0X2a1f0",
            "0x-1",
            "0x+1",
            "0x2a1f0 ",
            "0x10000000000000000",
        ] {
            assert_eq!(Hex::parse(bad), None, "{bad}");
            assert!(serde_json::from_str::<Hex>(&format!("\"{bad}\"")).is_err());
        }
        assert!(serde_json::from_str::<Hex>("4096").is_err());
    }

    #[test]
    fn stack_text_names_frames_without_paths_or_memory() {
        let thread = Thread {
            thread_id: 7,
            name: Some("main".to_owned()),
            frames: vec![
                Frame {
                    frame: 0,
                    module: Some("app.exe".to_owned()),
                    function: Some("crash_here(int)".to_owned()),
                    file: Some("C:\\Users\\alice\\src\\crash.cc".to_owned()),
                    line: Some(42),
                    offset: Hex(0x401000),
                    ..Frame::default()
                },
                Frame {
                    frame: 1,
                    module: Some("libc.so.6".to_owned()),
                    module_offset: Some(Hex(0x2a1f0)),
                    file: Some("/home/bob/glibc/abort.c".to_owned()),
                    offset: Hex(0x7f0000),
                    ..Frame::default()
                },
                Frame {
                    frame: 2,
                    offset: Hex(0xdead),
                    ..Frame::default()
                },
            ],
        };
        assert_eq!(
            thread.stack_text(),
            " 0  app.exe!crash_here(int) [crash.cc:42]\n 1  libc.so.6 + 0x000000000002a1f0 [abort.c]\n 2  0x000000000000dead\n"
        );
        let long = Thread {
            frames: (0..STACK_TEXT_FRAMES + 5)
                .map(|frame| Frame {
                    frame,
                    offset: Hex(frame as u64),
                    ..Frame::default()
                })
                .collect(),
            ..thread
        };
        let text = long.stack_text();
        assert_eq!(text.lines().count(), STACK_TEXT_FRAMES + 1);
        assert!(text.ends_with("… 5 more frames\n"), "{text}");
    }
}

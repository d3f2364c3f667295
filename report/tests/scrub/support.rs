//! Fixtures and helpers: testdata paths, byte searches, a synthetic dump to
//! start from, unwinding a dump.

use std::path::{Path, PathBuf};

use breakpad_symbols::{SimpleSymbolSupplier, Symbolizer};
use minidump::{Minidump, Module};
use minidump_synth::{Memory, SynthMinidump, SystemInfo, Thread, amd64_context};
use test_assembler::Endian;

/// The shared testdata directory. (As `mayday_tests::testdata::dir` finds it:
/// this crate's tests do not depend on `mayday-tests`, which builds the server.)
pub fn testdata() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata"
    ))
}

/// The bytes of `<case>/<file>` under the testdata directory.
pub fn read_dump(rel: &str) -> Vec<u8> {
    let path = testdata().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `system-details.json`, parsed.
pub fn system_details() -> serde_json::Value {
    let text = std::fs::read_to_string(testdata().join("system-details.json"))
        .expect("system-details.json");
    serde_json::from_str(&text).expect("system-details.json is JSON")
}

/// A little-endian amd64 Linux dump of one thread running at `rip` on `stack`
/// (the stack pointer at its start), with that stack in the memory list: to add
/// more to, and finish.
pub fn amd64_linux_dump(stack: Memory, rip: u64) -> SynthMinidump {
    let le = Endian::Little;
    let context = amd64_context(le, rip, stack.address);
    let thread = Thread::new(le, 1, &stack, &context);
    let mut system_info = SystemInfo::new(le);
    system_info.processor_architecture = 9; // AMD64
    system_info.platform_id = 0x8201; // Linux
    SynthMinidump::with_endian(le)
        .add_system_info(system_info)
        .add_thread(thread)
        .add(context)
        .add_memory(stack)
}

/// `s` as UTF-16LE bytes.
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return needle.is_empty();
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return false,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}

/// Whether `s` occurs in `hay` as ASCII/UTF-8 or as UTF-16LE.
pub fn contains_text(hay: &[u8], s: &str) -> bool {
    contains(hay, s.as_bytes()) || contains(hay, &utf16(s))
}

/// Every `KEY=value` string in `hay` (ASCII or UTF-16LE) whose key starts with
/// `prefix`, up to the terminating NUL.
pub fn assignments(hay: &[u8], prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    // ASCII
    let mut i = 0;
    while let Some(p) = hay[i..]
        .windows(prefix.len())
        .position(|w| w == prefix.as_bytes())
    {
        let start = i + p;
        let end = hay[start..]
            .iter()
            .position(|&b| b == 0 || !(0x20..0x7f).contains(&b))
            .map_or(hay.len(), |e| start + e);
        let s = String::from_utf8_lossy(&hay[start..end]).into_owned();
        if s.contains('=') {
            out.push(s);
        }
        i = start + 1;
    }
    // UTF-16LE
    let needle = utf16(prefix);
    let mut i = 0;
    while let Some(p) = hay[i..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
    {
        let start = i + p;
        let mut units = Vec::new();
        let mut j = start;
        while j + 1 < hay.len() {
            let u = u16::from_le_bytes([hay[j], hay[j + 1]]);
            if u == 0 || u < 0x20 {
                break;
            }
            units.push(u);
            j += 2;
        }
        let s = String::from_utf16_lossy(&units);
        if s.contains('=') {
            out.push(s);
        }
        i = start + 1;
    }
    out.sort();
    out.dedup();
    out
}

/// A symbolizer over `<case>/symbols` (or no symbols at all).
pub fn symbolizer(case: &str) -> Symbolizer {
    let dir = testdata().join(case).join("symbols");
    let paths = if dir.is_dir() { vec![dir] } else { Vec::new() };
    Symbolizer::new(SimpleSymbolSupplier::new(paths))
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The crashing (requesting) thread's frames, one line each: address, module file
/// name, function, file:line, inlined functions, trust.
pub fn crashing_frames(dump: &[u8], symbolizer: &Symbolizer) -> Vec<String> {
    let md = Minidump::read(dump).expect("dump parses");
    let state = futures::executor::block_on(minidump_processor::process_minidump(&md, symbolizer))
        .expect("dump processes");
    let thread = state.requesting_thread.unwrap_or(0);
    state.threads[thread]
        .frames
        .iter()
        .map(|f| {
            let module = f
                .module
                .as_ref()
                .map(|m| m.code_file().into_owned())
                .unwrap_or_default();
            let inlines: Vec<&str> = f.inlines.iter().map(|i| i.function_name.as_str()).collect();
            format!(
                "{:#x} {} {:?} {:?}:{:?} {:?} {:?}",
                f.instruction,
                base_name(&module),
                f.function_name,
                f.source_file_name,
                f.source_line,
                inlines,
                f.trust
            )
        })
        .collect()
}

/// The case directory of a `<case>/<file>` path.
pub fn case_of(rel: &str) -> &str {
    Path::new(rel)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("")
}

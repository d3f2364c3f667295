//! How fast `scrub_minidump` scrubs dumps built to be slow to scrub: 16 MiB of
//! one repeated piece of text (addresses, home paths, `KEY=value` strings that
//! teach it secrets to look for, …), as the memory of a memory list and as a
//! dump with no streams at all (the whole file searched as memory), each once
//! (`cargo bench -p mayday-report --bench scrub_hostile`; `-- <text>`: only the
//! pieces whose name holds it). Ordinary dumps scrub at several hundred MB/s
//! (the `scrub` bench); what matters here is that nothing is far slower, and
//! nothing grows faster than the dump: an upload may be 200 MiB.

use std::time::Instant;

use mayday_report::scrub::{ScrubConfig, scrub_minidump};

/// The size of each hostile memory.
const LEN: usize = 16 << 20;

/// A minidump header, and with `memory_list` one memory list stream of one
/// range holding `memory`; without, `memory` follows the header unlisted.
fn dump_with(memory: &[u8], memory_list: bool) -> Vec<u8> {
    let u32le = |v: u32| v.to_le_bytes();
    let mut dump = Vec::with_capacity(memory.len() + 64);
    dump.extend_from_slice(b"MDMP");
    dump.extend_from_slice(&u32le(0xa793));
    dump.extend_from_slice(&u32le(u32::from(memory_list)));
    dump.extend_from_slice(&u32le(32)); // the stream directory
    dump.extend_from_slice(&[0; 16]); // checksum, time, flags
    if memory_list {
        // Directory: the memory list (type 5), 20 bytes at 44.
        for v in [5, 20, 44] {
            dump.extend_from_slice(&u32le(v));
        }
        // One range at 0x10000, its bytes at 64.
        dump.extend_from_slice(&u32le(1));
        dump.extend_from_slice(&0x10000u64.to_le_bytes());
        dump.extend_from_slice(&u32le(u32::try_from(memory.len()).expect("fits")));
        dump.extend_from_slice(&u32le(64));
    }
    dump.extend_from_slice(memory);
    dump
}

/// `piece(0)`, `piece(1)`, … up to [`LEN`] bytes.
fn repeated(piece: &dyn Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN + 4096);
    let mut i = 0;
    while out.len() < LEN {
        out.extend_from_slice(&piece(i));
        i += 1;
    }
    out.truncate(LEN);
    out
}

fn utf16(text: &[u8]) -> Vec<u8> {
    text.iter().flat_map(|&b| [b, 0]).collect()
}

/// 256 secrets of 4 KiB alike but for their last two bytes, then text that
/// repeats their start.
fn alike_secrets() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..256usize {
        out.extend_from_slice(format!("TOKEN{i}=").as_bytes());
        out.extend(b"abc".iter().cycle().take(4094));
        out.extend_from_slice(&[b'D' + (i % 16) as u8, b'D' + (i / 16) as u8, 0]);
    }
    out.extend(b"abc".iter().cycle().take(LEN - out.len()));
    out
}

type Piece = Box<dyn Fn(usize) -> Vec<u8>>;

/// Texts the text rules find, each repeated.
const RULE_TEXTS: [(&str, &[u8]); 7] = [
    ("emails", b"a@b.cc "),
    ("ipv4", b"1.2.3.4 "),
    ("ipv6", b"::1:2:3 "),
    ("cards", b"4111111111111111 "),
    ("bearer", b"bearer abcdefgh "),
    ("pem", b"-----BEGIN PRIVATE KEY-----"),
    ("url-credentials", b"x://user@"),
];

/// Texts the path and environment rules find, and short runs of letters (the
/// per-run cost), each repeated.
const PATH_TEXTS: [(&str, &[u8]); 5] = [
    ("home-paths", b"/home/abcdef/x "),
    ("home-paths-glued", b"/home/a"),
    ("env", b"KEY=value\0"),
    ("drives", b"=C:=C:\\x\0"),
    ("short-runs", b"abcd\0"),
];

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let fixed = |text: &'static [u8]| -> Piece { Box::new(move |_| text.to_vec()) };
    let mut pieces: Vec<(&str, Piece)> = vec![("zeros", Box::new(|_| vec![0; 64]))];
    for (name, text) in RULE_TEXTS.into_iter().chain(PATH_TEXTS) {
        pieces.push((name, fixed(text)));
    }
    pieces.extend::<[(&str, Piece); 5]>([
        (
            "learned-secrets",
            Box::new(|i| format!("TOKEN=abcdefgh{i}\0").into_bytes()),
        ),
        (
            "learned-names",
            Box::new(|i| format!("USER=abc{}\0abc{} ", i % 200, (i + 7) % 200).into_bytes()),
        ),
        ("utf16-emails", Box::new(|_| utf16(b"a@b.cc "))),
        ("utf16-home-paths", Box::new(|_| utf16(b"/home/abcdef/x "))),
        ("latin", Box::new(|_| vec![0xc3, 0xa9, b'a'])),
    ]);
    let config = ScrubConfig::default();
    let mut slowest: Option<(String, f64)> = None;
    let mut memories: Vec<(&str, Vec<u8>)> = pieces
        .iter()
        .map(|(name, piece)| (*name, repeated(piece.as_ref())))
        .collect();
    memories.push(("learned-secrets-alike", alike_secrets()));
    for (name, memory) in &memories {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        for memory_list in [true, false] {
            let mut dump = dump_with(memory, memory_list);
            let started = Instant::now();
            let summary = scrub_minidump(&mut dump, &config);
            let seconds = started.elapsed().as_secs_f64();
            std::hint::black_box(summary.ok());
            let rate = LEN as f64 / seconds / 1e6;
            let layout = if memory_list {
                "memory list"
            } else {
                "no streams"
            };
            println!("{name:<22} {layout:<12} {seconds:>7.3} s {rate:>8.1} MB/s");
            if slowest.as_ref().is_none_or(|(_, r)| rate < *r) {
                slowest = Some((format!("{name}, {layout}"), rate));
            }
        }
    }
    if let Some((name, rate)) = slowest {
        println!(
            "RESULT scrub_hostile: slowest {name}: {rate:.1} MB/s ({:.1} s for a 200 MiB upload)",
            200.0 * 1.048_576 / rate
        );
    }
}

//! Text built to make the scrubber's pattern search slow: 3 MiB of stack memory
//! repeating the start of what it looks for (e-mail addresses, user paths,
//! tokens, card numbers, environment assignments…). Each is scrubbed in a bounded
//! time (a liveness bound far above the ~1 s a debug build takes, not a
//! performance figure), and the dump keeps its length and still parses.

use std::time::{Duration, Instant};

use mayday_report::scrub::{ScrubConfig, scrub_minidump};
use minidump::Minidump;
use minidump_synth::Memory;
use test_assembler::{Endian, Section};

use crate::support::amd64_linux_dump;

/// Far above what any of these takes; a quadratic search takes minutes.
const BOUND: Duration = Duration::from_secs(30);

const PATTERNS: &[&[u8]] = &[
    b"a@",
    b"a",
    b"1 ",
    b"http://",
    b"x=",
    b"/home/",
    b"C:\\Users\\",
    b"a.a.",
    b"1.1.",
    b"a:b@",
    b"-----BEGIN ",
    b"Bearer ",
    b"4111",
    b"aaaa=@",
    b"a-",
    b"@a.",
    b"=a@a.",
];

fn dump_with_stack(text: &[u8]) -> Vec<u8> {
    let le = Endian::Little;
    let stack = Memory::with_section(
        Section::with_endian(le).D64(0x40_1234).append_bytes(text),
        0x7fff_0000,
    );
    amd64_linux_dump(stack, 0x40_1000).finish().unwrap()
}

#[test]
fn text_built_to_be_slow_is_scrubbed_in_bounded_time() {
    for unit in PATTERNS {
        let text: Vec<u8> = unit.iter().copied().cycle().take(3 * 1024 * 1024).collect();
        let mut dump = dump_with_stack(&text);
        let len = dump.len();
        let started = Instant::now();
        scrub_minidump(&mut dump, &ScrubConfig::default()).unwrap();
        let took = started.elapsed();
        eprintln!("{:>12}: {took:?}", String::from_utf8_lossy(unit));
        assert!(
            took < BOUND,
            "{:?} took {took:?}",
            String::from_utf8_lossy(unit)
        );
        assert_eq!(dump.len(), len);
        Minidump::read(dump).unwrap();
    }
}

//! A seeded, bounded mutation run: damaged copies of real dumps never make the
//! scrubber (or `inventory`, `drop_stack_memory`) panic, and never change a
//! dump's length. `report/fuzz` has the open-ended cargo-fuzz target.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mayday_report::scrub::{
    ScrubConfig, cut_stack_memory, drop_stack_memory, inventory, restore_stack_memory,
    scrub_minidump,
};

use crate::support::read_dump;

/// Marsaglia's xorshift64: tiny, seeded, reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEED: u64 = 0x4d61_7964_6179_2121; // "Mayday!!"
const MUTATIONS: usize = 2000;

/// The small real dumps: structure-rich, quick to scrub.
const BASES: &[&str] = &[
    "breakpad-linux-x64-inline/linux_inline.dmp",
    "breakpad-win-x86-minidump2/minidump2.dmp",
    "symbolic-linux-x64-crash/linux-mini.dmp",
    "symbolic-linux-x64-crash/linux-mini.rust-minidump-variant.dmp",
    "symbolic-win-x86-crash/windows-mini.dmp",
];

/// Values that break length and offset arithmetic.
const INTERESTING: &[u32] = &[
    0,
    1,
    2,
    4,
    8,
    12,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

fn mutate(rng: &mut XorShift, dump: &mut [u8]) {
    let len = dump.len();
    for _ in 0..1 + rng.below(4) {
        // Half of the edits hit the header and stream directory, where offsets live.
        let hot = rng.below(2) == 0;
        let pos = if hot {
            rng.below(len.min(512))
        } else {
            rng.below(len)
        };
        match rng.below(3) {
            0 => dump[pos] ^= 1 << rng.below(8),
            1 => dump[pos] = rng.next() as u8,
            _ => {
                let pos = pos & !3;
                if pos + 4 <= len {
                    let v = match rng.below(3) {
                        0 => INTERESTING[rng.below(INTERESTING.len())],
                        1 => rng.below(len + 64) as u32,
                        _ => rng.next() as u32,
                    };
                    dump[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

#[test]
fn mutated_dumps_never_panic_or_change_length() {
    let bases: Vec<Vec<u8>> = BASES.iter().map(|b| read_dump(b)).collect();
    // Every mutant goes through the structural scrubbing (streams, strings,
    // memory classification, Crashpad annotations); every fifth also through the
    // text scan of the whole file, which costs milliseconds in a debug build and
    // is fuzzed open-endedly by `report/fuzz`.
    let full = ScrubConfig::default();
    let structural = ScrubConfig {
        user_names: false,
        memory_text: false,
        ..ScrubConfig::default()
    };
    let mut rng = XorShift(SEED);
    let (mut scrubbed, mut rejected) = (0, 0);
    for i in 0..MUTATIONS {
        let base = rng.below(bases.len());
        let mut dump = bases[base].clone();
        mutate(&mut rng, &mut dump);
        // Every tenth input is also cut short.
        if i % 10 == 0 {
            let keep = rng.below(dump.len());
            dump.truncate(keep);
        }
        let len = dump.len();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let config = if i % 5 == 0 { &full } else { &structural };
            let result = scrub_minidump(&mut dump, config);
            assert_eq!(dump.len(), len, "scrub changed the length");
            // The other entry points on every fourth mutant.
            if i % 4 == 0 {
                let _ = inventory(&dump);
                let mut cut = dump.clone();
                if let Ok(stacks) = cut_stack_memory(&mut cut, 0) {
                    let whole = restore_stack_memory(&cut, &stacks.holes, Some(&stacks.bytes));
                    assert!(whole.expect("restores") == dump, "cut then restored");
                }
                let _ = drop_stack_memory(&mut dump);
            }
            assert_eq!(dump.len(), len, "drop_stack_memory changed the length");
            result.is_ok()
        }));
        match outcome {
            Ok(true) => scrubbed += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!("mutation {i} of {} (seed {SEED:#x}) panicked", BASES[base]),
        }
    }
    // The run exercised the scrubber, not only the header check.
    assert!(
        scrubbed > MUTATIONS / 2,
        "only {scrubbed} of {MUTATIONS} mutants were scrubbed ({rejected} rejected)"
    );
}

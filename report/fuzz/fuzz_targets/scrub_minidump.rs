//! Fuzzes the minidump scrubber: whatever the bytes, `scrub_minidump`,
//! `inventory`, `cut_stack_memory` and `drop_stack_memory` return (never
//! panic) and never change the dump's length (cutting the stacks out
//! shortens a copy); cutting the stacks out and restoring them gives the dump
//! again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mayday_report::scrub::{
    ScrubConfig, cut_stack_memory, drop_stack_memory, inventory, restore_stack_memory,
    scrub_minidump,
};

fuzz_target!(|data: &[u8]| {
    let mut dump = data.to_vec();
    let len = dump.len();
    let scrubbed = scrub_minidump(&mut dump, &ScrubConfig::default());
    assert_eq!(dump.len(), len);
    if scrubbed.is_ok() {
        // A scrubbed dump is still a dump the other entry points can read.
        let _ = inventory(&dump);
        let mut cut = dump.clone();
        if let Ok(stacks) = cut_stack_memory(&mut cut, 0) {
            let whole = restore_stack_memory(&cut, &stacks.holes, Some(&stacks.bytes));
            assert_eq!(whole.expect("restores"), dump);
        }
        let _ = drop_stack_memory(&mut dump);
        assert_eq!(dump.len(), len);
    } else {
        // Rejected input is left as it was.
        assert_eq!(dump, data);
    }
});

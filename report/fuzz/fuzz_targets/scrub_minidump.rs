//! Fuzzes the minidump scrubber: whatever the bytes, `scrub_minidump`,
//! `inventory`, `split_stack_memory` and `drop_stack_memory` return (never
//! panic) and never change the dump's length; splitting the stacks off and
//! splicing them back gives the dump again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mayday_report::scrub::{
    ScrubConfig, drop_stack_memory, inventory, scrub_minidump, splice_stack_memory,
    split_stack_memory,
};

fuzz_target!(|data: &[u8]| {
    let mut dump = data.to_vec();
    let len = dump.len();
    let scrubbed = scrub_minidump(&mut dump, &ScrubConfig::default());
    assert_eq!(dump.len(), len);
    if scrubbed.is_ok() {
        // A scrubbed dump is still a dump the other entry points can read.
        let _ = inventory(&dump);
        let before = dump.clone();
        if let Ok(stack) = split_stack_memory(&mut dump) {
            assert_eq!(dump.len(), len);
            let mut spliced = dump.clone();
            splice_stack_memory(&mut spliced, stack.as_bytes()).expect("splices");
            assert_eq!(spliced, before);
        }
        let _ = drop_stack_memory(&mut dump);
        assert_eq!(dump.len(), len);
    } else {
        // Rejected input is left as it was.
        assert_eq!(dump, data);
    }
});

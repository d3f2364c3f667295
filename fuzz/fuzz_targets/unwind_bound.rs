//! The count of frames a dump's threads could unwind into
//! (`pipeline::unwind_bound`), which runs on every uploaded dump before the
//! processor does: any bytes that read as a minidump are counted without a
//! panic, and counting stops soon past its limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mayday_server::pipeline::unwind_bound::count;

fuzz_target!(|data: &[u8]| {
    if let Ok(dump) = minidump::Minidump::read(data) {
        // A small limit, so that the stop is reached too.
        let limit = 64;
        let counted = count(&dump, limit);
        // Past the limit by at most the words of the region it stopped in.
        assert!(counted <= limit + 1 + data.len() as u64, "{counted}");
    }
});

//! Fuzzes the windowed minidump scrubber (what ingest runs on a dump too large
//! to scrub whole): whatever the bytes and however small the windows,
//! `scrub_minidump_windowed` returns (never panics), reads only inside the
//! dump, and hands on the whole dump but for the stack memory it cut out;
//! what it hands on with those stacks put back is as long as the dump. It
//! rejects only what the whole-dump scrubber rejects, or what does not fit
//! its limits (`NotWindowed`: then ingest scrubs it whole).

#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use mayday_report::scrub::{
    DumpPages, ScrubConfig, ScrubError, WindowLimits, restore_stack_memory,
    scrub_and_cut_stack_memory, scrub_minidump_windowed,
};

/// The dump in memory; what is released reads as zeros after, as the pages of
/// an anonymous mapping given back do.
struct Source<'a>(&'a [u8]);

impl DumpPages for Source<'_> {
    fn fill(&mut self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        let bytes = offset
            .checked_add(buf.len())
            .and_then(|end| self.0.get(offset..end))
            .expect("fills only inside the dump");
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn release(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
}

fuzz_target!(|dump: &[u8]| {
    // The length picks the window (2..=510 bytes, so boundaries fall everywhere
    // in small inputs, and a seed dump stays whole); the limits are small enough
    // to be reached.
    let window = 2 + (dump.len() % 255) * 2;
    let limits = WindowLimits {
        window,
        max_run: window * 2,
        max_structure: 16 * 1024,
        max_stacks: 4 * 1024,
    };
    let mut buf = vec![0u8; dump.len()];
    let mut out = Vec::new();
    let scrubbed = scrub_minidump_windowed(
        &mut buf,
        &mut Source(dump),
        &mut |bytes: &[u8]| {
            out.extend_from_slice(bytes);
            Ok(())
        },
        &ScrubConfig::default(),
        &limits,
    );
    let whole = scrub_and_cut_stack_memory(&mut dump.to_vec(), 0, &ScrubConfig::default());
    match scrubbed {
        Ok(scrubbed) => {
            let restored = match &scrubbed.stacks {
                Some(stacks) => restore_stack_memory(&out, &stacks.holes, Some(&stacks.bytes))
                    .expect("the stacks cut out go back"),
                None => out,
            };
            assert_eq!(restored.len(), dump.len());
        }
        // Too much structure or stack memory for the limits: scrubbed whole.
        Err(ScrubError::NotWindowed(_)) => {}
        Err(e) => assert!(whole.is_err(), "rejected a dump the whole scrub reads: {e}"),
    }
});

//! Fuzzes the text the scrubber finds and rewrites, against plain forms of
//! the same: whatever the bytes,
//!
//! - the runs of text found in them (ASCII/UTF-8 and UTF-16LE, with SIMD or
//!   word-wide bit sets, whole and a window at a time) are those of a plain
//!   byte-at-a-time scan;
//! - the value rules' one-pass prefilter lets every pattern find in the text
//!   (the bytes as UTF-8, invalid sequences replaced) what it finds when run
//!   regardless;
//! - `scrub_text` with the default rules leaves nothing a second scrub would
//!   find.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mayday_report::scrub::{AnnotationRules, fuzzing, scrub_text};

fuzz_target!(|data: &[u8]| {
    fuzzing::check_text_runs(data);
    let text = String::from_utf8_lossy(data);
    fuzzing::check_value_prefilters(&text);
    let rules = AnnotationRules::default();
    let once = scrub_text(&text, &rules);
    let twice = scrub_text(&once, &rules);
    assert_eq!(once, twice, "{text:?}");
});

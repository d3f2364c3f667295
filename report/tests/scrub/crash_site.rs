//! The crash-site key of every shared testdata dump: read without symbols, the
//! same before and after scrubbing and after the stack memory is dropped (the
//! client keys its scrubbed dump, the server the dump it stored), and different
//! for different crashes.

use std::collections::BTreeMap;

use mayday_report::crash_site::CrashSite;
use mayday_report::scrub::{ScrubConfig, drop_stack_memory, scrub_minidump};

use crate::support::read_dump;
use crate::testdata::DUMPS;

#[test]
fn every_testdata_crash_has_one_key_that_scrubbing_keeps() {
    let mut keys: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for path in DUMPS {
        let original = read_dump(path);
        let site = CrashSite::of_minidump(&original).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            site.debug_file.is_some() && site.offset.is_some(),
            "{path}: {site:?}"
        );
        let key = site.key();
        assert!(key.starts_with("v1:") && key.len() == 67, "{key}");

        let mut scrubbed = original.clone();
        scrub_minidump(&mut scrubbed, &ScrubConfig::default()).unwrap();
        assert_eq!(
            CrashSite::of_minidump(&scrubbed).unwrap().key(),
            key,
            "{path}"
        );
        drop_stack_memory(&mut scrubbed).unwrap();
        assert_eq!(
            CrashSite::of_minidump(&scrubbed).unwrap().key(),
            key,
            "{path}"
        );
        keys.entry(key).or_default().push(path);
    }
    // The two variants of one Linux crash are one crash site; every other dump
    // is a crash of its own.
    let shared: Vec<&Vec<&str>> = keys.values().filter(|paths| paths.len() > 1).collect();
    assert_eq!(
        shared,
        vec![&vec![
            "symbolic-linux-x64-crash/linux-mini.dmp",
            "symbolic-linux-x64-crash/linux-mini.rust-minidump-variant.dmp"
        ]],
        "{keys:#?}"
    );
}

#[test]
fn what_is_not_a_crash_dump_has_no_crash_site() {
    assert!(CrashSite::of_minidump(b"MDMP but nothing else").is_err());
    assert!(CrashSite::of_minidump(b"").is_err());
}

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

#[test]
fn a_summary_carries_the_key_and_names_only_and_is_checked() {
    use mayday_report::crash_site::{CrashSiteSummary, SummaryError};

    let dump = read_dump(DUMPS[0]);
    let summary = CrashSiteSummary::of_minidump(&dump, "App", Some("1.0")).unwrap();
    assert_eq!(
        summary.crash_site,
        CrashSite::of_minidump(&dump).unwrap().key()
    );
    assert!(summary.os.is_some());
    assert_eq!(summary.validate(), Ok(()));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["crash_site", "os", "product", "version"]
    );

    let with = |change: fn(&mut CrashSiteSummary)| {
        let mut s = summary.clone();
        change(&mut s);
        s.validate()
    };
    assert_eq!(
        with(|s| s.crash_site = "v1:abc".into()),
        Err(SummaryError::Key)
    );
    assert_eq!(
        with(|s| s.crash_site = s.crash_site.to_uppercase()),
        Err(SummaryError::Key)
    );
    assert_eq!(
        with(|s| s.crash_site = s.crash_site.replacen("v1:", "x1:", 1)),
        Err(SummaryError::Key)
    );
    assert_eq!(
        with(|s| s.product = String::new()),
        Err(SummaryError::Field("product"))
    );
    assert_eq!(
        with(|s| s.version = Some("1.0\n".into())),
        Err(SummaryError::Field("version"))
    );
    assert_eq!(
        with(|s| s.os = Some("x".repeat(129))),
        Err(SummaryError::Field("os"))
    );
    // Unknown fields are refused when read: a summary carries these four only.
    assert!(
        serde_json::from_str::<CrashSiteSummary>(
            r#"{"product":"App","crash_site":"v1:00","user":"alice"}"#
        )
        .is_err()
    );
}

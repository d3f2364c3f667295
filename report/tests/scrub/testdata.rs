//! Every shared testdata dump: scrubbed in place it keeps its length, parses,
//! unwinds to the same crashing-thread frames, and no longer holds the user
//! names, host names and SSH values `system-details.json` lists.

use mayday_report::scrub::{ScrubConfig, drop_stack_memory, inventory, scrub_minidump};
use minidump::{Minidump, MinidumpModuleList, MinidumpThreadList};

use crate::support::{
    assignments, case_of, contains_text, crashing_frames, read_dump, symbolizer, system_details,
};

/// Every dump in the testdata, as `system-details.json` names them.
pub const DUMPS: &[&str] = &[
    "breakpad-linux-x64-inline/linux_inline.dmp",
    "breakpad-win-x86-minidump2/minidump2.dmp",
    "crashpad-iossim-x64-annotations/minidump_crashpad_annotation.dmp",
    "electron-nosyms/electron-linux.dmp",
    "electron-nosyms/electron-mac.dmp",
    "electron-nosyms/electron-windows.dmp",
    "mozilla-firefox-android-arm64/firefox-android-aarch64.dmp",
    "mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp",
    "mozilla-firefox-win-x64/firefox-windows-x86_64.dmp",
    "rust-minidump-macos-x64-inlines/pipeline-inlines-macos-segv.dmp",
    "symbolic-linux-x64-crash/linux-mini.dmp",
    "symbolic-linux-x64-crash/linux-mini.rust-minidump-variant.dmp",
    "symbolic-win-x86-crash/windows-mini.dmp",
];

#[test]
fn every_testdata_dump_is_covered() {
    let details = system_details();
    let mut listed: Vec<&str> = details["dumps"]
        .as_object()
        .expect("dumps")
        .keys()
        .map(String::as_str)
        .collect();
    listed.sort_unstable();
    let mut ours = DUMPS.to_vec();
    ours.sort_unstable();
    assert_eq!(listed, ours);
}

/// The strings that must be gone from a scrubbed dump: user directories and
/// user/host names from `system-details.json`, and the `SSH_*` assignments (and
/// their addresses and keys) found in the raw dump.
fn secrets(rel: &str, raw: &[u8]) -> Vec<String> {
    let details = system_details();
    let entry = &details["dumps"][rel];
    let mut out = Vec::new();
    for list in [
        "user_dirs_in_module_paths",
        "user_dir_like_strings_anywhere_in_dump",
    ] {
        for dir in entry[list].as_array().expect(list) {
            let dir = dir.as_str().expect("string");
            // Android app data directories name the app, not a person; `Public`
            // is no one's profile. Both are kept on purpose.
            if dir.starts_with("/data/") || dir.ends_with("\\Public") {
                continue;
            }
            out.push(dir.to_owned());
        }
    }
    for (key, values) in entry["env_var_strings_anywhere_in_dump"]
        .as_object()
        .expect("env")
    {
        for v in values.as_array().expect("values") {
            let v = v.as_str().expect("string");
            // `/root` is the super-user's home, not a person's.
            if v == "<redacted here>" || (key == "HOME" && v == "/root") {
                continue;
            }
            out.push(v.to_owned());
        }
    }
    for assignment in assignments(raw, "SSH_") {
        let Some((_, value)) = assignment.split_once('=') else {
            continue;
        };
        out.push(assignment.clone());
        // Addresses, sockets, keys: every distinctive part of the value.
        for token in value.split_whitespace() {
            if token.len() >= 6 && !token.bytes().all(|b| b.is_ascii_digit()) {
                out.push(token.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn check(rel: &str) {
    let raw = read_dump(rel);
    let mut scrubbed = raw.clone();
    let config = ScrubConfig::default();
    let summary = scrub_minidump(&mut scrubbed, &config).expect("scrubs");

    // Length preserved, still parses, same threads and modules.
    assert_eq!(scrubbed.len(), raw.len(), "{rel}: length changed");
    let (a, b) = (
        Minidump::read(&raw[..]).expect("raw parses"),
        Minidump::read(&scrubbed[..]).expect("scrubbed parses"),
    );
    assert_eq!(
        a.get_stream::<MinidumpThreadList<'_>>()
            .expect("threads")
            .threads
            .len(),
        b.get_stream::<MinidumpThreadList<'_>>()
            .expect("threads")
            .threads
            .len()
    );
    assert_eq!(
        a.get_stream::<MinidumpModuleList>()
            .expect("modules")
            .iter()
            .count(),
        b.get_stream::<MinidumpModuleList>()
            .expect("modules")
            .iter()
            .count()
    );

    // Unwinds the same.
    let symbolizer = symbolizer(case_of(rel));
    let before = crashing_frames(&raw, &symbolizer);
    let after = crashing_frames(&scrubbed, &symbolizer);
    assert!(!before.is_empty(), "{rel}: no frames");
    assert_eq!(
        before, after,
        "{rel}: crashing-thread frames differ after scrubbing"
    );

    // The personal details are gone, ASCII and UTF-16.
    let secrets = secrets(rel, &raw);
    for s in &secrets {
        assert!(
            !contains_text(&scrubbed, s),
            "{rel}: {s:?} is still in the scrubbed dump"
        );
    }

    // Scrubbing again finds nothing and changes nothing.
    let mut again = scrubbed.clone();
    let second = scrub_minidump(&mut again, &config).expect("scrubs again");
    assert!(second.is_empty(), "{rel}: second scrub removed {second:?}");
    assert_eq!(again, scrubbed);

    // What the consent prompt would show, before and after.
    let inv_raw = inventory(&raw).expect("inventory of raw");
    let inv = inventory(&scrubbed).expect("inventory of scrubbed");
    assert!(
        !inv.command_line && !inv.heap_memory && !inv.environment,
        "{rel}: {inv:?}"
    );
    assert_eq!(inv.thread_count, inv_raw.thread_count);
    assert_eq!(inv.crashing_module, inv_raw.crashing_module);

    // Dropping the stacks: still parses, no stack bytes left.
    let mut dropped = scrubbed.clone();
    let zeroed = drop_stack_memory(&mut dropped).expect("drops stacks");
    assert_eq!(dropped.len(), raw.len());
    assert!(zeroed > 0, "{rel}: no stack memory");
    assert_eq!(
        inventory(&dropped).expect("inventory").stack_memory_bytes,
        0
    );

    let name = rel.replace(['/', '.'], "_");
    insta::assert_json_snapshot!(
        name,
        serde_json::json!({
            "summary": summary,
            "secrets_checked": secrets.len(),
            "inventory_raw": inv_raw,
            "inventory_scrubbed": inv,
            "stack_bytes_dropped": zeroed,
        })
    );
}

macro_rules! cases {
    ($($name:ident => $rel:expr,)*) => {
        $(
            #[test]
            fn $name() {
                check($rel);
            }
        )*
    };
}

cases! {
    linux_inline => "breakpad-linux-x64-inline/linux_inline.dmp",
    minidump2 => "breakpad-win-x86-minidump2/minidump2.dmp",
    crashpad_ios_annotations => "crashpad-iossim-x64-annotations/minidump_crashpad_annotation.dmp",
    electron_linux => "electron-nosyms/electron-linux.dmp",
    electron_mac => "electron-nosyms/electron-mac.dmp",
    electron_windows => "electron-nosyms/electron-windows.dmp",
    firefox_android => "mozilla-firefox-android-arm64/firefox-android-aarch64.dmp",
    firefox_linux => "mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp",
    firefox_windows => "mozilla-firefox-win-x64/firefox-windows-x86_64.dmp",
    macos_inlines => "rust-minidump-macos-x64-inlines/pipeline-inlines-macos-segv.dmp",
    symbolic_linux => "symbolic-linux-x64-crash/linux-mini.dmp",
    symbolic_linux_variant => "symbolic-linux-x64-crash/linux-mini.rust-minidump-variant.dmp",
    symbolic_windows => "symbolic-win-x86-crash/windows-mini.dmp",
}

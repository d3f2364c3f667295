//! Fuzzes what a Sentry minidump upload's form says of its event
//! (`ingest::apply_form_event`): the `__sentry-event` file (MessagePack, as
//! sentry-native's Crashpad handler attaches it) or the `sentry` field (JSON),
//! beside the form's own fields. It must never panic, nor let the client's text
//! past Sentry's rules: the answered id is 32 hex digits, the event's fields
//! are gone and what it adds are tags Sentry would take, product and version
//! from a release of at most 200 characters, within the annotation limits.
//!
//! Input: a mode byte (bit 0: the bytes are the JSON `sentry` field, else the
//! MessagePack file; bit 1: a `sentry[release]` field too; bit 2: a
//! `sentry[tags][os]` field too), then the event's bytes.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use mayday_server::config::Limits;
use mayday_server::ingest::apply_form_event;

/// The longest release Sentry takes, in characters.
const MAX_RELEASE_CHARS: usize = 200;

fuzz_target!(|data: &[u8]| {
    let [mode, event @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_annotation_bytes: 1 << 10,
        max_annotations: 16,
        ..Limits::default()
    };
    let mut annotations = BTreeMap::from([("channel".to_owned(), "beta".to_owned())]);
    let mut event_file = None;
    if mode & 1 == 1 {
        annotations.insert(
            "sentry".to_owned(),
            String::from_utf8_lossy(event).into_owned(),
        );
    } else {
        event_file = Some(event);
    }
    if mode & 2 == 2 {
        annotations.insert("sentry[release]".to_owned(), "form@1.0".to_owned());
    }
    if mode & 4 == 4 {
        annotations.insert("sentry[tags][os]".to_owned(), "linux".to_owned());
    }
    let own: usize = annotations
        .iter()
        .filter(|(key, _)| !key.starts_with("sentry"))
        .map(|(key, value)| key.len() + value.len())
        .sum();

    let id = apply_form_event(&mut annotations, event_file, None, &limits);

    assert!(
        id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "event id {id:?}"
    );
    assert_eq!(annotations["channel"], "beta");
    // Every other field is a tag Sentry would take (a `sentry` field left is
    // one: the event's own are gone).
    for (key, value) in &annotations {
        if ["channel", "ProductName", "Version"].contains(&key.as_str()) {
            continue;
        }
        let key_taken = (1..=32).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        assert!(key_taken, "tag key {key:?}");
        assert!(
            value.chars().count() <= 200 && !value.contains('\n'),
            "tag {key}: {value:?}"
        );
    }
    let mut released = 0;
    for key in ["ProductName", "Version"] {
        if let Some(value) = annotations.get(key) {
            assert!(
                value.chars().count() <= MAX_RELEASE_CHARS,
                "{key}: {value:?}"
            );
            assert!(!value.chars().any(char::is_control), "{key}: {value:?}");
            released += key.len() + value.len();
        }
    }
    assert!(annotations.len() <= limits.max_annotations);
    let bytes: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    let allowed = (limits.max_annotation_bytes as usize).max(own + released);
    assert!(bytes <= allowed, "{bytes} bytes of annotations");
});

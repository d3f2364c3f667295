//! Annotation rules: key rules, value rules, identity fields, actions, config.

use std::collections::BTreeMap;

use mayday_report::scrub::{
    Action, AnnotationRules, ScrubConfig, ScrubSummary, drop_annotations, scrub_annotations,
    scrub_text,
};

fn scrub(
    pairs: &[(&str, &str)],
    rules: &AnnotationRules,
) -> (BTreeMap<String, String>, ScrubSummary) {
    let mut map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut summary = ScrubSummary::default();
    scrub_annotations(&mut map, rules, &mut summary);
    (map, summary)
}

/// Scrubs `pairs` with the default rules: only the `kept` keys stay, and the
/// summary counts `count` of `kind`.
fn assert_dropped(pairs: &[(&str, &str)], kept: &[&str], kind: &str, count: u64) {
    let (map, summary) = scrub(pairs, &AnnotationRules::default());
    assert_eq!(map.keys().collect::<Vec<_>>(), kept);
    assert_eq!(summary.count(kind), count);
}

#[test]
fn secret_keys_are_removed_by_default() {
    assert_dropped(
        &[
            ("db_password", "hunter2"),
            ("X-Api-Key", "abc"),
            ("apikey", "abc"),
            ("AUTH_HEADER", "Basic Zm9v"),
            ("session_token", "t0k3n"),
            ("mysql_pwd", "x"),
            ("private_key", "x"),
            ("credentials", "x"),
            ("ProductName", "Demo"),
        ],
        &["ProductName"],
        "secret_annotation",
        8,
    );
}

#[test]
fn identity_fields_are_dropped() {
    assert_dropped(
        &[
            ("Email", "someone@example.org"),
            ("guid", "{8f2d}"),
            ("InstallID", "1234"),
            ("TelemetryClientId", "c0ffee"),
            ("TelemetrySessionId", "5e55"),
            ("URL", "https://example.org/private"),
            ("ver", "1.0"),
        ],
        &["ver"],
        "identity_annotation",
        6,
    );
}

#[test]
fn url_is_kept_when_the_user_allowed_it_but_still_scrubbed() {
    let rules = AnnotationRules::default();
    let (map, _) = scrub(
        &[
            ("URL", "https://bob:pw@example.org/x"),
            ("MaydayURLAllowed", "1"),
        ],
        &rules,
    );
    assert_eq!(map["URL"], "https://******@example.org/x");
    let (map, _) = scrub(
        &[("URL", "https://example.org/"), ("MaydayURLAllowed", "0")],
        &rules,
    );
    assert!(!map.contains_key("URL"));
}

#[test]
fn value_rules_mask_addresses_cards_and_paths() {
    let rules = AnnotationRules::default();
    let (map, summary) = scrub(
        &[
            (
                "comment",
                "mail jane.doe@example.com from 10.0.0.7 or fe80::1",
            ),
            ("card", "paid with 4111-1111-1111-1111"),
            (
                "log",
                "opened C:\\Users\\Jane Doe\\file.txt and /home/jane/x",
            ),
            ("hdr", "Authorization: Bearer eyJhbGciOi.abc"),
            (
                "key",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
            ),
            ("Version", "10.0.19041.1"),
        ],
        &rules,
    );
    assert_eq!(
        map["comment"],
        "mail ******************** from ******** or *******"
    );
    assert_eq!(map["card"], "paid with *******************");
    assert_eq!(
        map["log"],
        "opened C:\\Users\\********\\file.txt and /home/****/x"
    );
    assert_eq!(map["hdr"], "Authorization: Bearer [bearer_token]");
    assert_eq!(map["key"], "[pem_private_key]");
    // Versions look like IPv4 addresses; allowed keys are left alone.
    assert_eq!(map["Version"], "10.0.19041.1");
    assert_eq!(summary.count("email_address"), 1);
    assert_eq!(summary.count("ip_address"), 2);
    assert_eq!(summary.count("credit_card_number"), 1);
    assert_eq!(summary.count("user_name_in_path"), 2);
    assert_eq!(summary.count("bearer_token"), 1);
}

#[test]
fn pem_keys_in_values_are_removed() {
    let rules = AnnotationRules::default();
    let (map, summary) = scrub(
        &[(
            "blob",
            "x -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- y",
        )],
        &rules,
    );
    assert_eq!(map["blob"], "x [pem_private_key] y");
    assert_eq!(summary.count("pem_private_key"), 1);
}

#[test]
fn actions_are_configurable_per_rule() {
    let rules = AnnotationRules {
        key_action: Action::Hash,
        email_address: Action::Remove,
        ip_address: Action::Keep,
        extra_keys: vec!["cookie".into()],
        hash_salt: "pepper".into(),
        ..AnnotationRules::default()
    };
    let (map, summary) = scrub(
        &[
            ("session_cookie", "abc"),
            ("password", "abc"),
            ("comment", "a@example.org at 10.0.0.7"),
        ],
        &rules,
    );
    // Equal values hash equally, and not to the value.
    assert_eq!(map["session_cookie"], map["password"]);
    assert_eq!(map["password"].len(), 16);
    assert_ne!(map["password"], "abc");
    assert_eq!(map["comment"], "[email_address] at 10.0.0.7");
    assert_eq!(summary.count("secret_annotation"), 2);

    let masked = AnnotationRules {
        key_action: Action::Mask,
        ..AnnotationRules::default()
    };
    let (map, _) = scrub(&[("token", "abcd")], &masked);
    assert_eq!(map["token"], "****");
}

#[test]
fn hashes_depend_on_the_salt() {
    let a = AnnotationRules {
        email_address: Action::Hash,
        ..AnnotationRules::default()
    };
    let b = AnnotationRules {
        hash_salt: "other".into(),
        ..a.clone()
    };
    let (ma, _) = scrub(&[("c", "x@example.org")], &a);
    let (mb, _) = scrub(&[("c", "x@example.org")], &b);
    assert!(ma["c"].starts_with("[email_address:"), "{}", ma["c"]);
    assert_ne!(ma["c"], mb["c"]);
}

#[test]
fn summary_merges_and_never_holds_values() {
    let rules = AnnotationRules::default();
    let (_, mut a) = scrub(&[("Email", "x@example.org"), ("c", "ip 10.1.1.1")], &rules);
    let (_, b) = scrub(&[("guid", "secret-guid-value")], &rules);
    a.merge(&b);
    assert_eq!(a.count("identity_annotation"), 2);
    assert_eq!(a.count("ip_address"), 1);
    let json = serde_json::to_string(&a).expect("serializes");
    for value in ["x@example.org", "10.1.1.1", "secret-guid-value"] {
        assert!(!json.contains(value));
    }
    let back: ScrubSummary = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, a);
}

#[test]
fn scrub_text_borrows_clean_strings() {
    let rules = AnnotationRules::default();
    assert!(matches!(
        scrub_text("/usr/lib/libc.so.6", &rules),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        scrub_text("/Users/ABeingessner/dev/crash-client", &rules),
        "/Users/************/dev/crash-client"
    );
    assert_eq!(
        scrub_text(r"c:\Users\gsvelto\AppData\x.dll", &rules),
        r"c:\Users\*******\AppData\x.dll"
    );
}

#[test]
fn partial_toml_config_keeps_the_defaults() {
    let config: ScrubConfig = toml::from_str(
        r#"
        heap_memory = false
        [annotations]
        extra_keys = ["cookie"]
        ip_address = "keep"
        key_action = "mask"
        "#,
    )
    .expect("parses");
    let defaults = ScrubConfig::default();
    assert!(!config.heap_memory);
    assert!(
        config.system_streams
            && config.user_names
            && config.memory_text
            && !config.keep_stack_memory
    );
    assert_eq!(config.annotations.extra_keys, vec!["cookie"]);
    assert_eq!(config.annotations.ip_address, Action::Keep);
    assert_eq!(config.annotations.key_action, Action::Mask);
    assert_eq!(config.annotations.keys, defaults.annotations.keys);
    assert_eq!(config.annotations.email_address, Action::Mask);
    let empty: ScrubConfig = toml::from_str("").expect("parses");
    assert_eq!(empty, defaults);
}

/// The `.extra` annotations Firefox sent with the testdata dumps.
fn firefox_extra(rel: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(crate::support::testdata().join(rel)).expect("extra file");
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("JSON object");
    json.into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}

#[test]
fn firefox_extra_annotations_lose_their_identity_fields() {
    let rules = AnnotationRules::default();
    for (name, rel) in [
        (
            "firefox_linux_extra",
            "mozilla-firefox-linux-x64/firefox-linux-x86_64.extra",
        ),
        (
            "firefox_windows_extra",
            "mozilla-firefox-win-x64/firefox-windows-x86_64.extra",
        ),
        (
            "firefox_android_extra",
            "mozilla-firefox-android-arm64/firefox-android-aarch64.extra",
        ),
    ] {
        let raw = firefox_extra(rel);
        let mut map = raw.clone();
        let mut summary = ScrubSummary::default();
        scrub_annotations(&mut map, &rules, &mut summary);
        for key in ["URL", "TelemetryClientId", "TelemetrySessionId"] {
            assert!(!map.contains_key(key), "{rel}: {key} kept");
        }
        // What triage needs stays as it was.
        for key in [
            "ProductName",
            "Version",
            "BuildID",
            "ReleaseChannel",
            "MozCrashReason",
            "AdapterDriverVersion",
        ] {
            assert_eq!(map.get(key), raw.get(key), "{rel}: {key} changed");
        }
        // No removed identity value survives in another annotation.
        for key in ["URL", "TelemetryClientId", "TelemetrySessionId"] {
            if let Some(value) = raw.get(key) {
                assert!(
                    map.values().all(|v| !v.contains(value.as_str())),
                    "{rel}: {key} value survived"
                );
            }
        }
        insta::assert_json_snapshot!(name, summary);
    }
}

#[test]
fn drop_annotations_removes_dropped_keys_and_leaves_values() {
    let pairs = [
        ("Email", ""),
        ("api_token", ""),
        ("guid", "6c9a3b1e"),
        ("URL", "https://example.org/"),
        ("MaydayURLAllowed", "1"),
        ("comment", "ping 10.1.2.3"),
    ];
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut annotations = map(&pairs);
    assert_eq!(
        drop_annotations(&mut annotations, &AnnotationRules::default()),
        3
    );
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        vec!["MaydayURLAllowed", "URL", "comment"]
    );
    // Values are not its business.
    assert_eq!(annotations["comment"], "ping 10.1.2.3");
    // Secret keys the rules mask or hash are kept; without consent, no URL.
    let rules = AnnotationRules {
        key_action: Action::Hash,
        ..AnnotationRules::default()
    };
    let mut annotations = map(&pairs[..4]);
    assert_eq!(drop_annotations(&mut annotations, &rules), 3);
    assert_eq!(annotations.keys().collect::<Vec<_>>(), vec!["api_token"]);
}

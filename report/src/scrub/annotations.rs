//! Annotation scrubbing: key rules, value rules and identity fields, and the
//! value rules applied to any string ([`scrub_text`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::summary::ScrubSummary;
use super::text::{Finding, Kind, KnownValues, find_values, merge_findings, settle_findings};

/// What a rule does with what it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Leave it: the rule is off.
    Keep,
    /// Key rules drop the annotation; value rules replace the match with `[<kind>]`.
    Remove,
    /// Replace each character with `*`.
    Mask,
    /// Replace with the first 16 hex digits of the SHA-256 of the value (and the
    /// configured [`AnnotationRules::hash_salt`]), so equal values stay equal.
    Hash,
}

/// Rules for crash annotations (the multipart fields, Firefox's `extra` JSON,
/// Crashpad's annotations). Deserializes from the `[scrub.annotations]` TOML
/// section; every field is optional and defaults to the rules below (an unknown
/// key is refused).
///
/// ```toml
/// extra_keys = ["session_cookie"]
/// key_action = "hash"
/// ip_address = "keep"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnotationRules {
    /// Case-insensitive key substrings whose values are secrets: `password`,
    /// `secret`, `passwd`, `api_key`, `apikey`, `auth`, `credentials`, `mysql_pwd`,
    /// `privatekey`, `private_key`, `token`, `bearer`, `email`.
    pub keys: Vec<String>,
    /// More key substrings, added to [`Self::keys`] (so configuring them keeps the
    /// defaults).
    pub extra_keys: Vec<String>,
    /// What a key rule does: [`Action::Remove`] by default (the annotation is dropped).
    pub key_action: Action,
    /// Identity fields, matched case-insensitively on the whole key, always
    /// dropped: `Email`, `guid`, `InstallID`, telemetry client and session ids,
    /// and `URL` unless [`Self::url_consent_key`] says the user allowed it.
    pub identity_keys: Vec<String>,
    /// The annotation a client sets (to `1`, `true` or `yes`) when the user agreed
    /// to send the URL; it keeps `URL` (still passed through the value rules).
    pub url_consent_key: String,
    /// Keys the value rules never touch (versions look like IPv4 addresses);
    /// keys containing `version` are always among them.
    pub allowed_keys: Vec<String>,
    /// E-mail addresses in values.
    pub email_address: Action,
    /// IPv4 and IPv6 addresses in values.
    pub ip_address: Action,
    /// Credit-card numbers (13–19 digits passing the Luhn check).
    pub credit_card_number: Action,
    /// `Bearer <token>` credentials.
    pub bearer_token: Action,
    /// PEM private keys.
    pub pem_private_key: Action,
    /// `user:password@` in URLs.
    pub url_credentials: Action,
    /// User names in home directory paths (`/home/<u>/`, `C:\Users\<u>\` …).
    pub user_name_in_path: Action,
    /// Salt mixed into [`Action::Hash`] so hashes can't be looked up in a table of
    /// hashed e-mail addresses. Empty by default; set one per deployment.
    pub hash_salt: String,
}

/// A key's byte as key rules compare it: ASCII lowercased, and `-`, ` ` and `.`
/// read as `_`. (Bytes of a multi-byte UTF-8 character are never ASCII, so
/// folding bytes folds the string.)
fn fold_key_byte(b: u8) -> u8 {
    match b {
        b'-' | b' ' | b'.' => b'_',
        _ => b.to_ascii_lowercase(),
    }
}

/// Keys up to this long are compared with the rules byte by byte
/// ([`contains_folded`], which takes time of the key's length times the rule's).
const SHORT_KEY: usize = 64;

/// Whether `needle` stands in `hay`, both folded by [`fold_key_byte`].
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay.windows(needle.len()).any(|window| {
            window
                .iter()
                .zip(needle)
                .all(|(a, b)| fold_key_byte(*a) == fold_key_byte(*b))
        })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for AnnotationRules {
    fn default() -> Self {
        Self {
            keys: strings(&[
                "password",
                "secret",
                "passwd",
                "api_key",
                "apikey",
                "auth",
                "credentials",
                "mysql_pwd",
                "privatekey",
                "private_key",
                "token",
                "bearer",
                "email",
            ]),
            extra_keys: Vec::new(),
            key_action: Action::Remove,
            identity_keys: strings(&[
                "Email",
                "guid",
                "InstallID",
                "TelemetryClientId",
                "TelemetrySessionId",
                "TelemetryProfileGroupId",
                "ClientId",
                "SessionId",
                "client_id",
                "session_id",
                "URL",
            ]),
            url_consent_key: "MaydayURLAllowed".to_owned(),
            allowed_keys: strings(&[
                "ver",
                "Version",
                "prod",
                "ProductName",
                "ProductID",
                "BuildID",
                "ReleaseChannel",
                "channel",
                "plat",
                "ptime",
            ]),
            email_address: Action::Mask,
            ip_address: Action::Mask,
            credit_card_number: Action::Mask,
            bearer_token: Action::Remove,
            pem_private_key: Action::Remove,
            url_credentials: Action::Mask,
            user_name_in_path: Action::Mask,
            hash_salt: String::new(),
        }
    }
}

/// What the rules decide for one annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep the value unchanged.
    Keep,
    /// Drop the annotation; the kind for the summary.
    Drop(&'static str),
    /// Replace the value; the kinds for the summary.
    Replace(String, Vec<&'static str>),
}

impl AnnotationRules {
    /// The configured action of a value rule.
    pub(crate) fn action_for(&self, kind: Kind) -> Action {
        match kind {
            Kind::Email => self.email_address,
            Kind::Ip => self.ip_address,
            Kind::CreditCard => self.credit_card_number,
            Kind::BearerToken => self.bearer_token,
            Kind::PemKey => self.pem_private_key,
            Kind::UrlCredentials => self.url_credentials,
            Kind::UserPath => self.user_name_in_path,
            Kind::KnownValue | Kind::Environment | Kind::Crowded => Action::Mask,
        }
    }

    /// The salted, truncated SHA-256 of `value`, hex encoded.
    pub(crate) fn hash(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.hash_salt.as_bytes());
        h.update(value.as_bytes());
        hex::encode(&h.finalize()[..8])
    }

    fn is_identity(&self, key: &str) -> bool {
        self.identity_keys
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Whether `key` holds one of the secret key rules, both folded by
    /// [`fold_key_byte`]: `X-Api-Key`, `api key` and `api_key` are the same key.
    /// Compared byte by byte, no string built: the scrubber asks this of every
    /// `KEY=value` string in a dump's memory. A long key (a hostile dump can
    /// hold megabytes of key characters before an `=`) is folded once and
    /// searched in linear time instead.
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        let mut rules = self.keys.iter().chain(&self.extra_keys);
        if key.len() <= SHORT_KEY {
            let key = key.as_bytes();
            return rules.any(|rule| !rule.is_empty() && contains_folded(key, rule.as_bytes()));
        }
        let key: Vec<u8> = key.bytes().map(fold_key_byte).collect();
        rules.any(|rule| {
            let rule: Vec<u8> = rule.bytes().map(fold_key_byte).collect();
            !rule.is_empty() && memchr::memmem::find(&key, &rule).is_some()
        })
    }

    pub(crate) fn is_allowed(&self, key: &str) -> bool {
        // Versions (`AdapterDriverVersion=20.2.6.0`) look like IPv4 addresses.
        key.to_ascii_lowercase().contains("version")
            || self
                .allowed_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Whether the rules drop the annotation `key` whatever its value, and the
    /// kind for the summary: identity fields, and secret keys when
    /// [`Self::key_action`] is [`Action::Remove`]. The one list of dropped keys:
    /// form fields, the dump's Crashpad annotations and the report all follow it.
    pub(crate) fn dropped(&self, key: &str, url_allowed: bool) -> Option<&'static str> {
        let url_key = key.eq_ignore_ascii_case("URL");
        if self.is_identity(key) && !(url_key && url_allowed) {
            Some("identity_annotation")
        } else if self.key_action == Action::Remove && self.is_secret_key(key) {
            Some("secret_annotation")
        } else {
            None
        }
    }

    /// Decides one annotation. `url_allowed` is whether the user allowed the URL.
    pub(crate) fn decide(&self, key: &str, value: &str, url_allowed: bool) -> Decision {
        if let Some(kind) = self.dropped(key, url_allowed) {
            return Decision::Drop(kind);
        }
        if self.is_secret_key(key) {
            let replaced = match self.key_action {
                Action::Mask => "*".repeat(value.chars().count()),
                Action::Hash => self.hash(value),
                // `Remove` was dropped above.
                Action::Keep | Action::Remove => return Decision::Keep,
            };
            return Decision::Replace(replaced, vec!["secret_annotation"]);
        }
        if self.is_allowed(key) {
            return Decision::Keep;
        }
        match apply_value_rules(value, self, None) {
            None => Decision::Keep,
            Some((out, kinds)) => {
                Decision::Replace(out, kinds.into_iter().map(Kind::name).collect())
            }
        }
    }

    /// Whether `annotations` say the user allowed sending the URL.
    pub(crate) fn url_allowed<'a>(
        &self,
        mut annotations: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        annotations.any(|(k, v)| {
            k.eq_ignore_ascii_case(&self.url_consent_key)
                && matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        })
    }
}

/// Applies `rules` to one string value and returns the result with the kinds
/// found, or `None` when nothing matched.
pub(crate) fn apply_value_rules(
    text: &str,
    rules: &AnnotationRules,
    known: Option<&KnownValues>,
) -> Option<(String, Vec<Kind>)> {
    let find = |text: &str, out: &mut Vec<Finding>, _: usize| {
        find_values(text, out);
        if let Some(known) = known {
            known.find(text, out);
        }
        out.retain(|f| rules.action_for(f.kind) != Action::Keep);
        true
    };
    let mut findings = Vec::new();
    find(text, &mut findings, usize::MAX);
    if findings.is_empty() {
        return None;
    }
    settle_findings(text, &mut findings, usize::MAX, find);
    let findings = merge_findings(findings);
    let mut out = String::with_capacity(text.len());
    let mut kinds = Vec::with_capacity(findings.len());
    let mut pos = 0;
    for f in &findings {
        out.push_str(&text[pos..f.range.start]);
        let matched = &text[f.range.clone()];
        match rules.action_for(f.kind) {
            Action::Keep => out.push_str(matched),
            Action::Mask => out.extend(std::iter::repeat_n('*', matched.chars().count())),
            Action::Remove => {
                out.push('[');
                out.push_str(f.kind.name());
                out.push(']');
            }
            Action::Hash => {
                out.push('[');
                out.push_str(f.kind.name());
                out.push(':');
                out.push_str(&rules.hash(matched));
                out.push(']');
            }
        }
        kinds.push(f.kind);
        pos = f.range.end;
    }
    out.push_str(&text[pos..]);
    Some((out, kinds))
}

/// Scrubs a string the server takes from a dump into the processed report (a
/// module path, a source file path, a crash message): user names in paths,
/// e-mail and IP addresses and the other value rules of `rules`, with the action
/// each rule is configured with. Borrows when nothing matched.
pub fn scrub_text<'a>(text: &'a str, rules: &AnnotationRules) -> Cow<'a, str> {
    match apply_value_rules(text, rules, None) {
        Some((out, _)) => Cow::Owned(out),
        None => Cow::Borrowed(text),
    }
}

/// Scrubs crash annotations in place with `rules`: identity fields are dropped,
/// secret keys removed, masked or hashed, values matching a value rule rewritten.
/// Counts what it did (kinds, never values) into `summary`.
pub fn scrub_annotations(
    annotations: &mut BTreeMap<String, String>,
    rules: &AnnotationRules,
    summary: &mut ScrubSummary,
) {
    let url_allowed = rules.url_allowed(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    annotations.retain(|key, value| match rules.decide(key, value, url_allowed) {
        Decision::Keep => true,
        Decision::Drop(kind) => {
            summary.add(kind, 1);
            false
        }
        Decision::Replace(new, kinds) => {
            for kind in kinds {
                summary.add(kind, 1);
            }
            *value = new;
            true
        }
    });
}

/// Removes the annotations `rules` drop whatever their value (identity fields,
/// secret keys when [`AnnotationRules::key_action`] is [`Action::Remove`]) and
/// leaves every other one as it is. For annotations put together from parts
/// scrubbed before, such as a dump's Crashpad annotations merged with the
/// upload's fields: a dropped key never comes back. Returns how many went.
pub fn drop_annotations(
    annotations: &mut BTreeMap<String, String>,
    rules: &AnnotationRules,
) -> usize {
    let url_allowed = rules.url_allowed(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let before = annotations.len();
    annotations.retain(|key, _| rules.dropped(key, url_allowed).is_none());
    before - annotations.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value glued to another is found once the other is masked: text
    /// scrubbed once has nothing left that a second scrub would find (the
    /// fuzz target `scrub_text` found the first of these).
    #[test]
    fn a_value_glued_to_a_finding_is_found_once_the_finding_is_masked() {
        let rules = AnnotationRules::default();
        for (text, kept) in [
            ("fe80::rootce@exam.le.or", "fe80"),
            ("peer 2001:db8::7:bob@example.com", "2001:db8"),
            ("connect to 2001:db8::1: refused", "2001:db8"),
        ] {
            let once = scrub_text(text, &rules);
            assert!(!once.contains(kept), "{text:?} -> {once:?}");
            assert_eq!(scrub_text(&once, &rules), once, "{text:?}");
        }
        // Where nothing is glued, as before.
        assert_eq!(
            scrub_text("from 10.1.2.3 (bob@example.com)", &rules),
            "from ******** (***************)"
        );
    }

    /// Folding byte by byte answers as folding both strings and searching
    /// one in the other would, on keys of every shape the rules meet.
    #[test]
    fn secret_keys_fold_as_the_strings_would() {
        let fold = |s: &str| s.to_ascii_lowercase().replace(['-', ' ', '.'], "_");
        let rules = AnnotationRules {
            extra_keys: vec![
                "Session-Cookie".into(),
                "ключ".into(),
                "a.b c".into(),
                String::new(),
            ],
            ..AnnotationRules::default()
        };
        let long_secret = format!("{}_X-API-KEY", "a".repeat(SHORT_KEY));
        let long_other = format!("{}_X-API-KEX", "a".repeat(SHORT_KEY));
        let keys = [
            long_secret.as_str(),
            long_other.as_str(),
            "X-Api-Key",
            "api key",
            "API.KEY",
            "apikey",
            "ap",
            "",
            "MY_SESSION.COOKIE",
            "session cookie",
            "sessioncookie",
            "Ключ",
            "мой_ключ",
            "A-B_C",
            "a_b_",
            "PASSWORD",
            "pass_word",
            "ProductName",
            "Tokenizer",
            "e-mail",
            "Email",
        ];
        let mut secret = 0;
        for key in keys {
            let expected = rules
                .keys
                .iter()
                .chain(&rules.extra_keys)
                .any(|k| !k.is_empty() && fold(key).contains(&fold(k)));
            assert_eq!(rules.is_secret_key(key), expected, "{key:?}");
            secret += usize::from(expected);
        }
        // Both answers occur: the comparison is not vacuous.
        assert!(secret > 5 && secret < keys.len() - 5, "{secret}");
    }
}

//! Text attachments a deployment chooses to keep (an app's log sent as a form
//! file part beside the dump): which ones, whether their bytes are text the
//! scrubber can clean, and the cleaning. Every other attachment is dropped
//! unread.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::annotations::{AnnotationRules, Decision, apply_value_rules};
use super::summary::ScrubSummary;

/// The largest text attachment kept unless a rule says otherwise: 64 KiB.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 64 * 1024;

/// One text attachment to keep: `[[scrub.text_attachments]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextAttachmentRule {
    /// The form field the attachment comes in (its part's `name`).
    pub field: String,
    /// A larger attachment is dropped (the upload is still accepted).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_ATTACHMENT_BYTES
}

/// A kept text attachment, scrubbed: stored sealed with the report's upload and
/// shown in the processed report; deleted with the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextAttachment {
    /// The form field it came in.
    pub field: String,
    /// Its text, scrubbed.
    pub text: String,
}

/// Why an attachment's bytes are not text the scrubber can clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotText {
    /// Not UTF-8.
    NotUtf8,
    /// A control character other than tab, line feed or carriage return (a NUL
    /// in a binary file, an escape sequence).
    ControlCharacter,
}

/// `bytes` as text if the scrubber can clean it: UTF-8 with no control
/// character but tab, line feed and carriage return.
pub fn attachment_text(bytes: &[u8]) -> Result<&str, NotText> {
    let text = std::str::from_utf8(bytes).map_err(|_| NotText::NotUtf8)?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(NotText::ControlCharacter);
    }
    Ok(text)
}

/// `key=value` and `key: value` pairs in a line of a log: the key an
/// identifier-like word, the value up to the next space or separator.
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?:=|:[ \t]*)(?P<value>[^\s,;&"']+)"#)
        .expect("pair pattern")
});

/// Scrubs a text attachment with the annotation `rules`: each `key=value` or
/// `key: value` pair whose key the rules drop or treat as secret has its value
/// masked (or hashed) whatever it is; a pair whose key the rules allow (versions)
/// keeps its value; the value rules (e-mail and IP addresses, tokens, user names
/// in paths, …) run over all the rest. Counts what it did into `summary` (kinds,
/// never values).
pub fn scrub_attachment(text: &str, rules: &AnnotationRules, summary: &mut ScrubSummary) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for pair in PAIR.captures_iter(text) {
        let (key, value) = (&pair["key"], pair.name("value").expect("value group"));
        let kept = if rules.dropped(key, false).is_some() || rules.is_secret_key(key) {
            match rules.decide(key, value.as_str(), false) {
                Decision::Keep => continue,
                Decision::Drop(kind) => {
                    summary.add(kind, 1);
                    "*".repeat(value.as_str().chars().count())
                }
                Decision::Replace(new, kinds) => {
                    for kind in kinds {
                        summary.add(kind, 1);
                    }
                    new
                }
            }
        } else if rules.is_allowed(key) {
            value.as_str().to_owned()
        } else {
            // Left to the value rules with the text around it.
            continue;
        };
        out.push_str(&value_rules(&text[pos..value.start()], rules, summary));
        out.push_str(&kept);
        pos = value.end();
    }
    out.push_str(&value_rules(&text[pos..], rules, summary));
    out
}

/// `text` with the value rules applied, counted into `summary`.
fn value_rules<'a>(
    text: &'a str,
    rules: &AnnotationRules,
    summary: &mut ScrubSummary,
) -> std::borrow::Cow<'a, str> {
    match apply_value_rules(text, rules, None) {
        Some((out, kinds)) => {
            for kind in kinds {
                summary.add(kind.name(), 1);
            }
            std::borrow::Cow::Owned(out)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_without_control_characters() {
        assert_eq!(
            attachment_text(b"one\ttwo\r\nthree\n"),
            Ok("one\ttwo\r\nthree\n")
        );
        assert_eq!(attachment_text(b"\xff\xfe"), Err(NotText::NotUtf8));
        assert_eq!(attachment_text(b"MDMP\0\0"), Err(NotText::ControlCharacter));
        assert_eq!(
            attachment_text(b"\x1b[31mred"),
            Err(NotText::ControlCharacter)
        );
    }

    #[test]
    fn pairs_follow_the_annotation_rules_and_values_the_value_rules() {
        let rules = AnnotationRules::default();
        let mut summary = ScrubSummary::default();
        let log = "12:00:01 start build=4711 api_token=tok-5f2a91c07d\n\
                   12:00:02 Email: someone@example.org\n\
                   12:00:03 open /home/kevin/notes.txt from 10.1.2.3\n\
                   12:00:04 AdapterDriverVersion=20.2.6.0 done\n";
        let out = scrub_attachment(log, &rules, &mut summary);
        assert!(out.contains("build=4711"), "{out}");
        assert!(!out.contains("tok-5f2a91c07d"), "{out}");
        assert!(!out.contains("someone@example.org"), "{out}");
        assert!(!out.contains("kevin"), "{out}");
        assert!(!out.contains("10.1.2.3"), "{out}");
        assert!(out.contains("AdapterDriverVersion=20.2.6.0"), "{out}");
        assert_eq!(out.lines().count(), 4);
        assert!(summary.count("identity_annotation") >= 1, "{summary:?}");
        assert!(summary.count("secret_annotation") >= 1, "{summary:?}");
        // Nothing to clean: the text as it was.
        let mut none = ScrubSummary::default();
        assert_eq!(
            scrub_attachment("plain line\n", &rules, &mut none),
            "plain line\n"
        );
        assert!(none.is_empty());
    }
}

//! The upload format: what a crash handler sends and what the server answers.
//!
//! Requests are `multipart/form-data` with the minidump in the
//! [`MINIDUMP_FIELD`] part and annotations as text parts, as Breakpad and Crashpad
//! send them. The server answers `200` with a `text/plain` body of `key=value`
//! lines ([`SubmitReceipt`]), or JSON with `Accept: application/json`.

use serde::{Deserialize, Serialize};

use crate::scrub::ScrubSummary;

/// The multipart field that carries the minidump.
pub const MINIDUMP_FIELD: &str = "upload_file_minidump";
/// The multipart field that carries a JSON map of annotations (Firefox). Read as
/// a text part or as a file part: Firefox sends it as a file, `extra.json`,
/// `application/json`.
pub const EXTRA_FIELD: &str = "extra";
/// Annotation names that carry the product name, in order of preference: the
/// app's own (`ProductName` from Breakpad and Firefox, `_productName` from
/// Electron's `crashReporter`) before `prod` (which Electron sets to
/// `Electron`) and Crashpad's `product` query field.
pub const PRODUCT_KEYS: &[&str] = &["ProductName", "_productName", "prod", "product"];
/// Annotation names that carry the product version, in order of preference: the
/// app's own (`Version`, Electron's `_version`) before `ver` (Electron's own
/// version there) and Crashpad's `version` query field.
pub const VERSION_KEYS: &[&str] = &["Version", "_version", "ver", "version"];
/// The `Authorization` scheme for users' deletion requests: `Deletion <token>`.
pub const DELETION_AUTH_SCHEME: &str = "Deletion";
/// Prefix of every CrashID, as Socorro's.
pub const CRASH_ID_PREFIX: &str = "bp-";
/// The longest CrashID a receipt may carry.
pub const MAX_CRASH_ID_LEN: usize = 128;
/// The longest DeletionToken a receipt may carry.
pub const MAX_DELETION_TOKEN_LEN: usize = 256;
/// The longest ViewURL a receipt keeps.
pub const MAX_VIEW_URL_LEN: usize = 2048;
/// The most kinds a receipt's `Scrubbed` line keeps.
pub const MAX_SCRUBBED_KINDS: usize = 64;

/// Whether `id` has the shape of a CrashID: 1 to [`MAX_CRASH_ID_LEN`] ASCII
/// letters, digits, `-` and `_` (`bp-<uuid>`). Such an id is safe as a file name
/// and as a URL path segment: no `/`, `.`, `%`, spaces or control characters.
pub fn is_valid_crash_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CRASH_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `token` can be a DeletionToken: at most [`MAX_DELETION_TOKEN_LEN`]
/// visible ASCII characters (it travels in an `Authorization` header). Empty is
/// allowed: older servers send none.
fn is_valid_deletion_token(token: &str) -> bool {
    token.len() <= MAX_DELETION_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `url` can be a ViewURL: an `http(s)` URL of at most
/// [`MAX_VIEW_URL_LEN`] visible ASCII characters.
fn is_valid_view_url(url: &str) -> bool {
    url.len() <= MAX_VIEW_URL_LEN
        && (url.starts_with("https://") || url.starts_with("http://"))
        && url.bytes().all(|b| b.is_ascii_graphic())
}

/// The server's answer to an accepted upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReceipt {
    /// The report's id, `bp-<uuid>`.
    pub crash_id: String,
    /// The secret that lets whoever holds it delete the report. The server keeps only
    /// its hash.
    pub deletion_token: String,
    /// A URL to view the report, where the server is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_url: Option<String>,
    /// What the server's scrubbing removed from this report before storing it:
    /// kinds and counts, never a value.
    #[serde(default, skip_serializing_if = "ScrubSummary::is_empty")]
    pub scrubbed: ScrubSummary,
}

/// Whether `kind` can be a scrub kind in a receipt: 1 to 64 of `a-z`, `0-9`, `_`.
fn is_valid_scrub_kind(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A `Scrubbed` line's value, `kind:count,kind:count`; entries of another shape
/// and those past [`MAX_SCRUBBED_KINDS`] are left out.
fn parse_scrubbed(value: &str) -> ScrubSummary {
    let mut summary = ScrubSummary::default();
    for entry in value.split(',').take(MAX_SCRUBBED_KINDS) {
        if let Some((kind, n)) = entry.trim().split_once(':')
            && is_valid_scrub_kind(kind)
            && let Ok(n) = n.parse::<u64>()
        {
            summary.add(kind, n);
        }
    }
    summary
}

/// Why a reply body could not be read as a [`SubmitReceipt`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// The body has no `CrashID=` line.
    #[error("reply has no CrashID line")]
    NoCrashId,
    /// The CrashID is not a CrashID's shape (see [`is_valid_crash_id`]).
    #[error("reply has a malformed CrashID")]
    BadCrashId,
    /// The DeletionToken is longer than [`MAX_DELETION_TOKEN_LEN`] or holds
    /// characters other than visible ASCII.
    #[error("reply has a malformed DeletionToken")]
    BadDeletionToken,
}

impl SubmitReceipt {
    /// The `text/plain` body: `CrashID=…\nDeletionToken=…\n`, `ViewURL=…\n` when
    /// set and `Scrubbed=kind:count,…\n` when scrubbing removed anything.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "CrashID={}\nDeletionToken={}\n",
            self.crash_id, self.deletion_token
        );
        if let Some(url) = &self.view_url {
            out.push_str(&format!("ViewURL={url}\n"));
        }
        if !self.scrubbed.is_empty() {
            let kinds: Vec<String> = self
                .scrubbed
                .removed
                .iter()
                .map(|(kind, n)| format!("{kind}:{n}"))
                .collect();
            out.push_str(&format!("Scrubbed={}\n", kinds.join(",")));
        }
        out
    }

    /// Reads a `text/plain` reply body. Unknown lines are ignored; a missing
    /// `DeletionToken` line leaves the token empty (older servers). The reply is
    /// untrusted: a CrashID of another shape than [`is_valid_crash_id`] allows or
    /// a malformed DeletionToken is an error; a ViewURL that is not a plain
    /// `http(s)` URL of at most [`MAX_VIEW_URL_LEN`] bytes is left out.
    pub fn parse_text(body: &str) -> Result<Self, ReceiptError> {
        let mut crash_id = None;
        let mut deletion_token = String::new();
        let mut view_url = None;
        let mut scrubbed = ScrubSummary::default();
        for line in body.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key.trim() {
                "CrashID" => crash_id = Some(value.trim().to_owned()),
                "DeletionToken" => deletion_token = value.trim().to_owned(),
                "ViewURL" => view_url = Some(value.trim().to_owned()),
                "Scrubbed" => scrubbed = parse_scrubbed(value),
                _ => {}
            }
        }
        let crash_id = crash_id.ok_or(ReceiptError::NoCrashId)?;
        if !is_valid_crash_id(&crash_id) {
            return Err(ReceiptError::BadCrashId);
        }
        if !is_valid_deletion_token(&deletion_token) {
            return Err(ReceiptError::BadDeletionToken);
        }
        Ok(SubmitReceipt {
            crash_id,
            deletion_token,
            view_url: view_url.filter(|u| is_valid_view_url(u)),
            scrubbed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let receipt = SubmitReceipt {
            crash_id: "bp-6c9a3b1e-0b8f-4a55-9d3e-2f1c0a7b5e21".into(),
            deletion_token: "s3cr3t".into(),
            view_url: None,
            scrubbed: ScrubSummary::default(),
        };
        assert_eq!(
            SubmitReceipt::parse_text(&receipt.to_text()),
            Ok(receipt.clone())
        );
        let mut scrubbed = receipt;
        scrubbed.scrubbed.add("environment_variable", 3);
        scrubbed.scrubbed.add("linux_cmdline_stream", 1);
        assert_eq!(SubmitReceipt::parse_text(&scrubbed.to_text()), Ok(scrubbed));
        assert_eq!(
            SubmitReceipt::parse_text("Discarded=malformed_no_minidump\n"),
            Err(ReceiptError::NoCrashId)
        );
    }

    #[test]
    fn hostile_values_are_refused_or_left_out() {
        for id in [
            "../../etc/passwd",
            "bp-1/../x",
            "bp-1\u{1b}[2J",
            "bp-1.json",
            "bp 1",
            "",
            &"a".repeat(MAX_CRASH_ID_LEN + 1),
        ] {
            assert_eq!(
                SubmitReceipt::parse_text(&format!("CrashID={id}\nDeletionToken=t\n")),
                Err(ReceiptError::BadCrashId),
                "{id:?}"
            );
        }
        for token in ["a b", "a\u{7}b", &"t".repeat(MAX_DELETION_TOKEN_LEN + 1)] {
            assert_eq!(
                SubmitReceipt::parse_text(&format!("CrashID=bp-1\nDeletionToken={token}\n")),
                Err(ReceiptError::BadDeletionToken),
                "{token:?}"
            );
        }
        for url in [
            "javascript:alert(1)",
            "https://x.example/\u{1b}]8;;",
            "file:///etc",
        ] {
            let r = SubmitReceipt::parse_text(&format!("CrashID=bp-1\nViewURL={url}\n")).unwrap();
            assert_eq!(r.view_url, None, "{url:?}");
        }
        let r = SubmitReceipt::parse_text("CrashID=bp-1\nViewURL=https://x.example/r/bp-1\n");
        assert_eq!(
            r.unwrap().view_url.as_deref(),
            Some("https://x.example/r/bp-1")
        );
        assert!(is_valid_crash_id("bp-6c9a3b1e-0b8f-4a55-9d3e-2f1c0a7b5e21"));
        let many: Vec<String> = (0..1000).map(|i| format!("k{i}:1")).collect();
        let line = format!(
            "CrashID=bp-1\nScrubbed=email_address:2,Bad Kind:1,\u{1b}[2J:1,ip_address:-1,ip_address:x,{}\n",
            many.join(",")
        );
        let r = SubmitReceipt::parse_text(&line).unwrap();
        assert_eq!(r.scrubbed.count("email_address"), 2);
        assert_eq!(r.scrubbed.count("ip_address"), 0);
        assert!(r.scrubbed.removed.len() <= MAX_SCRUBBED_KINDS);
        assert!(r.scrubbed.removed.keys().all(|k| is_valid_scrub_kind(k)));
    }
}

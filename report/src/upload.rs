//! The upload format: what a crash handler sends and what the server answers.
//!
//! Requests are `multipart/form-data` with the minidump in the
//! [`MINIDUMP_FIELD`] part and annotations as text parts, as Breakpad and Crashpad
//! send them. The server answers `200` with a `text/plain` body of `key=value`
//! lines ([`SubmitReceipt`]), or JSON with `Accept: application/json`.

use serde::{Deserialize, Serialize};

/// The multipart field that carries the minidump.
pub const MINIDUMP_FIELD: &str = "upload_file_minidump";
/// The multipart field that carries a JSON map of annotations (Firefox).
pub const EXTRA_FIELD: &str = "extra";
/// The `Authorization` scheme for users' deletion requests: `Deletion <token>`.
pub const DELETION_AUTH_SCHEME: &str = "Deletion";
/// Prefix of every CrashID, as Socorro's.
pub const CRASH_ID_PREFIX: &str = "bp-";

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
}

/// Why a reply body could not be read as a [`SubmitReceipt`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// The body has no `CrashID=` line.
    #[error("reply has no CrashID line")]
    NoCrashId,
}

impl SubmitReceipt {
    /// The `text/plain` body: `CrashID=…\nDeletionToken=…\n` and `ViewURL=…\n` when set.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "CrashID={}\nDeletionToken={}\n",
            self.crash_id, self.deletion_token
        );
        if let Some(url) = &self.view_url {
            out.push_str(&format!("ViewURL={url}\n"));
        }
        out
    }

    /// Reads a `text/plain` reply body. Unknown lines are ignored; a missing
    /// `DeletionToken` line leaves the token empty (older servers).
    pub fn parse_text(body: &str) -> Result<Self, ReceiptError> {
        let mut crash_id = None;
        let mut deletion_token = String::new();
        let mut view_url = None;
        for line in body.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key.trim() {
                "CrashID" => crash_id = Some(value.trim().to_owned()),
                "DeletionToken" => deletion_token = value.trim().to_owned(),
                "ViewURL" => view_url = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        Ok(SubmitReceipt {
            crash_id: crash_id.ok_or(ReceiptError::NoCrashId)?,
            deletion_token,
            view_url,
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
        };
        assert_eq!(SubmitReceipt::parse_text(&receipt.to_text()), Ok(receipt));
        assert_eq!(
            SubmitReceipt::parse_text("Discarded=malformed_no_minidump\n"),
            Err(ReceiptError::NoCrashId)
        );
    }
}

//! Receipts of sent reports: `<data_dir>/sent/<crash-id>.json`, holding what the
//! user needs to have the report deleted later.

use std::path::{Path, PathBuf};

use mayday_report::scrub::ScrubSummary;
use mayday_report::upload::is_valid_crash_id;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

/// A report the server acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentReport {
    /// The server's report id, `bp-<uuid>`.
    pub crash_id: String,
    /// The secret that lets this user have the report deleted.
    pub deletion_token: String,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: time::OffsetDateTime,
    /// Product name of the crashed application.
    pub product: String,
    /// Product version.
    pub version: String,
    /// Where the deletion request goes (`DELETE`), fixed when the report was sent.
    pub delete_url: Option<String>,
    /// The page where the user deletes the report in a browser:
    /// `<endpoint>/forget#<crash_id>.<deletion_token>` (receipts of older
    /// versions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_url: Option<String>,
    /// The server's view URL, where it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_url: Option<String>,
    /// What the server's scrubbing removed before it stored the report (kinds and
    /// counts, never values); empty from servers that do not say.
    #[serde(default, skip_serializing_if = "ScrubSummary::is_empty")]
    pub scrubbed: ScrubSummary,
    /// The local id the report had in the pending queue (never sent): a pending
    /// report with a receipt was sent already and is not sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
}

/// What a deletion request achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgotten {
    /// The server deleted the report (or had already deleted it).
    Deleted,
    /// The server does not know the report with this token (`404`); it holds
    /// nothing the client could still delete. The receipt is removed too.
    NotFound,
}

pub(crate) struct Receipts {
    dir: PathBuf,
}

impl Receipts {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Receipts {
            dir: data_dir.join("sent"),
        }
    }

    fn path(&self, crash_id: &str) -> Result<PathBuf> {
        // A crash id is used as a file name: only the shape a receipt may carry.
        if !is_valid_crash_id(crash_id) {
            return Err(Error::UnknownReport(crash_id.to_owned()));
        }
        Ok(self.dir.join(format!("{crash_id}.json")))
    }

    pub(crate) fn store(&self, receipt: &SentReport) -> Result<()> {
        fsutil::write_json(&self.path(&receipt.crash_id)?, receipt)
    }

    pub(crate) fn get(&self, crash_id: &str) -> Result<Option<SentReport>> {
        fsutil::read_json(&self.path(crash_id)?)
    }

    pub(crate) fn remove(&self, crash_id: &str) -> Result<()> {
        fsutil::remove_if_exists(&self.path(crash_id)?)?;
        fsutil::sync_dir(&self.dir);
        Ok(())
    }

    /// Every receipt, oldest first.
    pub(crate) fn list(&self) -> Result<Vec<SentReport>> {
        let mut out = Vec::new();
        for (name, path) in fsutil::dir_entries(&self.dir)? {
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match fsutil::read_json::<SentReport>(&path) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "skipping unreadable receipt"),
            }
        }
        out.sort_by(|a, b| (a.sent_at, &a.crash_id).cmp(&(b.sent_at, &b.crash_id)));
        Ok(out)
    }
}

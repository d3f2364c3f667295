//! Receipts of sent reports: `<data_dir>/sent/<crash-id>.json`, holding what the
//! user needs to have the report deleted later; and of crashes of which only a
//! summary was sent: `<data_dir>/counted/<local-id>.json`, holding the summary and
//! the server's answer.

use std::path::{Path, PathBuf};

use mayday_report::crash_site::{CrashSiteAnswer, CrashSiteSummary};
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

/// A crash of which only its summary left the machine: the server counted it and
/// did not want the dump, which was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedCrash {
    /// The local id the report had in the pending queue.
    pub local_id: String,
    /// When the summary was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: time::OffsetDateTime,
    /// Exactly what was sent.
    pub summary: CrashSiteSummary,
    /// The server's answer (`counted`, or `fixed` with the version that fixes it).
    pub answer: CrashSiteAnswer,
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
        let mut out: Vec<SentReport> = read_all(&self.dir)?;
        out.sort_by(|a, b| (a.sent_at, &a.crash_id).cmp(&(b.sent_at, &b.crash_id)));
        Ok(out)
    }
}

/// The receipts of summaries: `<data_dir>/counted/<local-id>.json`.
pub(crate) struct CountedReceipts {
    dir: PathBuf,
}

impl CountedReceipts {
    pub(crate) fn new(data_dir: &Path) -> Self {
        CountedReceipts {
            dir: data_dir.join("counted"),
        }
    }

    pub(crate) fn store(&self, counted: &CountedCrash) -> Result<()> {
        // A local id is used as a file name: only the queue's shape (a UUID).
        if uuid::Uuid::parse_str(&counted.local_id).is_err() {
            return Err(Error::UnknownReport(counted.local_id.clone()));
        }
        fsutil::write_json(
            &self.dir.join(format!("{}.json", counted.local_id)),
            counted,
        )
    }

    pub(crate) fn contains(&self, local_id: &str) -> bool {
        uuid::Uuid::parse_str(local_id).is_ok()
            && self.dir.join(format!("{local_id}.json")).exists()
    }

    /// Every receipt, oldest first.
    pub(crate) fn list(&self) -> Result<Vec<CountedCrash>> {
        let mut out: Vec<CountedCrash> = read_all(&self.dir)?;
        out.sort_by(|a, b| (a.sent_at, &a.local_id).cmp(&(b.sent_at, &b.local_id)));
        Ok(out)
    }
}

/// Every receipt in `dir` (unreadable ones skipped, with a warning).
fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (name, path) in fsutil::dir_entries(dir)? {
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        match fsutil::read_json::<T>(&path) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "skipping unreadable receipt"),
        }
    }
    Ok(out)
}

//! Placing a processed report in the issue of its signature: the one place the
//! index applies the grouping policy ([`crate::grouping`]) — a new issue, a
//! report counted in its issue and counted out of the one it leaves, a resolved
//! issue regressed or the report dropped. Finishing a processed report
//! ([`Index::finish_processed`]) and regrouping a stored one under other
//! signature rules ([`Index::regroup_report`]) both go through [`place`].

use sqlx::Row as _;

use super::batch::{Batch, Statement, statement};
use super::daily::{self, Occurrence, Tally};
use super::issues::{ISSUE_COLUMNS, issue_from_row};
use super::outbox::{self, IssueChange};
use super::write::{Commit, WriteTx};
use super::{Index, IndexError, IssueRow, crash_sites, report_id_at};
use crate::grouping::{self, IssuePlace, ReportPlace, Resolution, Verdict};
use crate::report_id::ReportId;

/// A report to place, as the index holds it, and the issue it belongs in.
pub(super) struct Placing<'a> {
    /// The report.
    pub report_id: &'a str,
    /// The grouping key of its signature.
    pub signature_hash: &'a str,
    /// The signature text (for a new issue).
    pub signature: &'a str,
    /// The title of a new issue.
    pub title: &'a str,
    /// The issue it is in now, if any.
    pub previous_issue: Option<i64>,
    /// When it was received, Unix ms.
    pub received_at: i64,
    /// Its product and version: what processing found, else what its row holds.
    pub product: Option<&'a str>,
    /// See `product`.
    pub version: Option<&'a str>,
    /// The product and version its row holds now: what the issue it leaves
    /// counted it under.
    pub stored_product: Option<&'a str>,
    /// See `stored_product`.
    pub stored_version: Option<&'a str>,
    /// Its crash-site key, which follows it to its issue.
    pub crash_site: Option<&'a str>,
}

/// Where [`place`] put the report.
pub(super) enum Placed<'a> {
    /// In the change's issue, as the change says (created, regressed, counted;
    /// the product is the placed report's), for [`outbox::record`]: its row
    /// names the issue when it moved from another one (a report placed for the
    /// first time is the caller's to write).
    Kept(IssueChange<'a>),
    /// Dropped: its issue was resolved without it. Its rows, data key and job
    /// are deleted in the transaction; the caller removes its blobs.
    Dropped,
}

/// Places a report in the issue of its signature, in `tx`: creates the issue,
/// widens its time span, applies [`grouping::group`] (counts, daily counts,
/// regression, drop), moves the crash site along, and counts the report out of
/// the issue it leaves (removing that issue when nothing is left of it).
///
/// Runs what `batch` holds with the issue's creation and reads the issue; what
/// follows from the grouping is pushed to `batch`, for the caller to run with
/// its own statements.
pub(super) async fn place<'a>(
    tx: &mut WriteTx,
    batch: &mut Batch,
    report: &Placing<'a>,
    now: i64,
) -> Result<Placed<'a>, IndexError> {
    batch.push(
        statement(
            "INSERT INTO issues (signature_hash, signature, title, status, first_seen, \
             last_seen, report_count) VALUES ($1, $2, $3, 'open', $4, $4, 0) \
             ON CONFLICT (signature_hash) DO NOTHING RETURNING id AS created_id",
        )
        .bind(report.signature_hash)
        .bind(report.signature)
        .bind(report.title)
        .bind(report.received_at),
    );
    // Widen the issue's time span, and read its status in the same statement:
    // on PostgreSQL the UPDATE waits for a concurrent resolution and returns
    // the row as it left it (and holds it until commit), so a report is never
    // added to an issue resolved meanwhile.
    batch.push(
        statement(
            "UPDATE issues SET \
             first_seen = CASE WHEN first_seen > $2 THEN $2 ELSE first_seen END, \
             last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END \
             WHERE signature_hash = $1 \
             RETURNING id, status, resolved_at, resolved_in_version, resolved_product",
        )
        .bind(report.signature_hash)
        .bind(report.received_at),
    );
    let rows = tx.run(batch).await?;
    // The row the INSERT returned (only when it made the issue), then the
    // issue's.
    let created = rows
        .iter()
        .any(|row| row.try_get::<i64>("created_id").is_ok());
    let issue = rows
        .iter()
        .find(|row| row.try_get::<i64>("created_id").is_err())
        .ok_or(sqlx::Error::RowNotFound)?;
    let issue_id: i64 = issue.try_get("id")?;
    let status: String = issue.try_get("status")?;
    let in_version: Option<String> = issue.try_get("resolved_in_version")?;
    let resolved_product: Option<String> = issue.try_get("resolved_product")?;
    let resolved = (status == "resolved").then(|| -> Result<Resolution<'_>, IndexError> {
        Ok(Resolution {
            at: issue.try_get("resolved_at")?,
            in_version: in_version.as_deref(),
            product: resolved_product.as_deref(),
        })
    });
    let grouping = grouping::group(
        &ReportPlace {
            previous_issue: report.previous_issue,
            received_at: report.received_at,
            product: report.product,
            version: report.version,
        },
        &IssuePlace {
            id: issue_id,
            resolved: resolved.transpose()?,
        },
    );

    if grouping.count {
        batch.push(
            statement("UPDATE issues SET report_count = report_count + 1 WHERE id = $1")
                .bind(issue_id),
        );
        let occurrence = Occurrence {
            issue_id,
            at_ms: report.received_at,
            product: report.product,
            version: report.version,
        };
        batch.push(daily::add(occurrence, Tally::Report));
    }
    if let Some(left) = grouping.leaves {
        batch.push(
            statement("UPDATE issues SET report_count = report_count - 1 WHERE id = $1").bind(left),
        );
        let occurrence = Occurrence {
            issue_id: left,
            at_ms: report.received_at,
            product: report.stored_product,
            version: report.stored_version,
        };
        batch.push(daily::remove_report(occurrence));
    }
    // The crash site belongs to this issue now, whatever becomes of the report.
    if let Some(key) = report.crash_site {
        batch.push(crash_sites::learn(
            key,
            issue_id,
            report.previous_issue,
            now,
        ));
    }
    let regressed = matches!(grouping.verdict, Verdict::Regress);
    match grouping.verdict {
        Verdict::Join => {}
        Verdict::Regress => {
            batch.push(
                statement(
                    "UPDATE issues SET status = 'regressed', resolved_at = NULL WHERE id = $1",
                )
                .bind(issue_id),
            );
        }
        Verdict::Drop(reason) => {
            batch.push(
                statement("UPDATE issues SET dropped_count = dropped_count + 1 WHERE id = $1")
                    .bind(issue_id),
            );
            for sql in [
                "DELETE FROM report_stack_keys WHERE report_id = $1",
                "DELETE FROM report_keys WHERE report_id = $1",
                "DELETE FROM report_annotations WHERE report_id = $1",
                "DELETE FROM report_missing_symbols WHERE report_id = $1",
                "DELETE FROM jobs WHERE report_id = $1",
                "DELETE FROM reports WHERE id = $1",
            ] {
                batch.push(statement(sql).bind(report.report_id));
            }
            if let Some(left) = grouping.leaves {
                batch.push(remove_if_empty(left));
            }
            tracing::info!(
                report = %report.report_id,
                issue = issue_id,
                reason = reason.describe(),
                "report of a resolved issue dropped"
            );
            return Ok(Placed::Dropped);
        }
    }
    if let Some(left) = grouping.leaves {
        batch.push(
            statement("UPDATE reports SET issue_id = $2 WHERE id = $1")
                .bind(report.report_id)
                .bind(issue_id),
        );
        batch.push(remove_if_empty(left));
    }
    Ok(Placed::Kept(IssueChange {
        issue_id,
        product: report.product,
        created,
        regressed,
        counted: grouping.count,
    }))
}

/// The statement that removes issue `issue_id` when a report left it and
/// nothing is left of it: an open issue without reports, counted crashes or a
/// resolution to remember.
fn remove_if_empty(issue_id: i64) -> Statement {
    statement(
        "DELETE FROM issues WHERE id = $1 AND report_count <= 0 AND status = 'open' \
         AND counted_count = 0 AND NOT EXISTS (SELECT 1 FROM reports WHERE issue_id = $1)",
    )
    .bind(issue_id)
}

/// A processed report and the issue it is grouped in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedReport {
    /// The report.
    pub id: ReportId,
    /// Its issue.
    pub issue_id: i64,
    /// The issue's signature.
    pub signature: String,
    /// The issue's grouping key.
    pub signature_hash: String,
}

/// How an issue was resolved (the owned form of [`Resolution`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueResolution {
    /// When, Unix ms (older rows may lack it).
    pub at: Option<i64>,
    /// The version it was fixed in.
    pub in_version: Option<String>,
    /// The product that version is of; `None`: any product.
    pub product: Option<String>,
}

impl IssueResolution {
    /// As the grouping policy takes it.
    pub fn as_resolution(&self) -> Resolution<'_> {
        Resolution {
            at: self.at,
            in_version: self.in_version.as_deref(),
            product: self.product.as_deref(),
        }
    }
}

/// A stored report's new signature, for [`Index::regroup_report`].
#[derive(Debug, Clone)]
pub struct Regrouping {
    /// Hex SHA-256 of the signature text: the grouping key.
    pub signature_hash: String,
    /// The signature text.
    pub signature: String,
    /// The title of the issue, if one is created for it.
    pub title: String,
}

/// What [`Index::regroup_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regrouped {
    /// The report is in issue `issue_id` now.
    Moved {
        /// The issue.
        issue_id: i64,
        /// The issue was created for it.
        created: bool,
    },
    /// The report's new issue is resolved and the report is no news to it: its
    /// rows and data key are deleted (remove its blobs).
    Dropped,
    /// Nothing done: the report is gone, is not processed, is no longer in the
    /// issue it was planned to leave, or is in the new signature's issue
    /// already.
    Skipped,
}

impl Index {
    /// Processed reports with their issues, in report id order, after `after`:
    /// at most `limit` (to walk every one a page at a time).
    pub async fn grouped_reports_after(
        &self,
        after: Option<&ReportId>,
        limit: i64,
    ) -> Result<Vec<GroupedReport>, IndexError> {
        let rows = sqlx::query(
            "SELECT r.id, r.issue_id, i.signature, i.signature_hash \
             FROM reports r JOIN issues i ON i.id = r.issue_id \
             WHERE r.state = 'processed' AND r.id > $1 ORDER BY r.id LIMIT $2",
        )
        .bind(after.map(ToString::to_string).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GroupedReport {
                    id: report_id_at(row, "id")?,
                    issue_id: row.try_get("issue_id")?,
                    signature: row.try_get("signature")?,
                    signature_hash: row.try_get("signature_hash")?,
                })
            })
            .collect()
    }

    /// The issue whose grouping key is `signature_hash`, if there is one.
    pub async fn issue_of_signature(
        &self,
        signature_hash: &str,
    ) -> Result<Option<IssueRow>, IndexError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE signature_hash = $1"
        )))
        .bind(signature_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issue_from_row).transpose()
    }

    /// How issue `issue_id` was resolved; `None` when it is not resolved (or
    /// not there).
    pub async fn issue_resolution(
        &self,
        issue_id: i64,
    ) -> Result<Option<IssueResolution>, IndexError> {
        let row = sqlx::query(
            "SELECT resolved_at, resolved_in_version, resolved_product FROM issues \
             WHERE id = $1 AND status = 'resolved'",
        )
        .bind(issue_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(IssueResolution {
                at: row.try_get("resolved_at")?,
                in_version: row.try_get("resolved_in_version")?,
                product: row.try_get("resolved_product")?,
            })
        })
        .transpose()
    }

    /// Moves processed report `report_id` out of issue `from_issue` into the
    /// issue of its new signature, as processing places a report whose signature
    /// changed (`place`: a new issue when there is none, counts, daily counts,
    /// crash site, regression or drop; webhook events), in one transaction. Its
    /// other facts stay as they are.
    pub async fn regroup_report(
        &self,
        report_id: &ReportId,
        from_issue: i64,
        to: &Regrouping,
        now: i64,
    ) -> Result<Regrouped, IndexError> {
        let id = report_id.to_string();
        let mut read = Batch::new(self.backend);
        read.push(
            statement(
                "SELECT r.issue_id, r.state, r.received_at, r.product, r.version, \
                 r.crash_site, i.signature_hash FROM reports r JOIN issues i \
                 ON i.id = r.issue_id WHERE r.id = $1",
            )
            .bind(&id),
        );
        let (mut tx, rows) = self.begin_running(Commit::Durable, read).await?;
        // Nothing written when skipped: the transaction ends with nothing in it.
        let skipped = |tx: WriteTx| async move {
            tx.commit_after(Batch::new(self.backend)).await?;
            Ok(Regrouped::Skipped)
        };
        let Some(current) = rows.into_iter().next() else {
            return skipped(tx).await;
        };
        let issue_id: i64 = current.try_get("issue_id")?;
        let state: String = current.try_get("state")?;
        let hash: String = current.try_get("signature_hash")?;
        if issue_id != from_issue || state != "processed" || hash == to.signature_hash {
            return skipped(tx).await;
        }
        let product: Option<String> = current.try_get("product")?;
        let version: Option<String> = current.try_get("version")?;
        let crash_site: Option<String> = current.try_get("crash_site")?;
        let placing = Placing {
            report_id: &id,
            signature_hash: &to.signature_hash,
            signature: &to.signature,
            title: &to.title,
            previous_issue: Some(issue_id),
            received_at: current.try_get("received_at")?,
            product: product.as_deref(),
            version: version.as_deref(),
            stored_product: product.as_deref(),
            stored_version: version.as_deref(),
            crash_site: crash_site.as_deref(),
        };
        let mut batch = Batch::new(self.backend);
        let Placed::Kept(change) = place(&mut tx, &mut batch, &placing, now).await? else {
            tx.commit_after(batch).await?;
            return Ok(Regrouped::Dropped);
        };
        let alerted = outbox::record(&mut tx, &mut batch, &self.alerts, change, now).await?;
        tx.commit_after(batch).await?;
        if alerted {
            self.alerts.wrote();
        }
        Ok(Regrouped::Moved {
            issue_id: change.issue_id,
            created: change.created,
        })
    }
}

//! The webhook outbox: events written in the transaction that made them (an issue
//! created, regressed, or over its spike threshold), one row per webhook, claimed
//! by deliverers as jobs are claimed by workers.
//!
//! A body holds the issue's title, status, counts, first and last seen and link,
//! and the product: nothing else of any crash.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use tokio::sync::Notify;

use super::batch::{Batch, statement};
use super::issues::{ISSUE_COLUMNS, issue_from_row};
use super::write::WriteTx;
use super::{Index, IndexError, Queue};
use crate::config::{WebhookConfig, WebhookEvent};

/// An hour in Unix ms: the spike window.
const HOUR_MS: i64 = 3_600_000;

/// What the index needs to write webhook events: the webhooks, the base of the
/// issue links, and a signal for the deliverer of this process.
#[derive(Debug, Default)]
pub struct Alerts {
    hooks: Vec<(String, WebhookConfig)>,
    public_url: String,
    written: Notify,
}

impl Alerts {
    /// The events of `hooks`, with issue links under `public_url`.
    pub fn new(hooks: &[WebhookConfig], public_url: &str) -> Alerts {
        Alerts {
            hooks: hooks.iter().map(|h| (h.id(), h.clone())).collect(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            written: Notify::new(),
        }
    }

    /// Waits until an event is written by this process (or was since the last
    /// wait).
    pub async fn written(&self) {
        self.written.notified().await;
    }
}

/// What happened to an issue in one transaction, for [`record`].
#[derive(Debug, Clone, Copy)]
pub(super) struct IssueChange<'a> {
    /// The issue.
    pub issue_id: i64,
    /// The product of the report that changed it.
    pub product: Option<&'a str>,
    /// The report created the issue.
    pub created: bool,
    /// The report reopened the resolved issue.
    pub regressed: bool,
    /// The report was counted in the issue (a spike may have begun).
    pub counted: bool,
}

/// One event for one webhook, to be written.
struct Event<'a> {
    event: WebhookEvent,
    /// The webhook's id.
    hook: &'a str,
    /// For a spike: the threshold and the reports in the last hour.
    spike: Option<(u64, i64)>,
}

/// Writes the events `change` makes for the webhooks that want them, in `tx`.
/// Returns whether any was written (call [`Alerts::wrote`] after the commit).
/// Where a webhook wants an event of the change, what `batch` holds is run
/// first: the events read the issue as the transaction left it.
pub(super) async fn record(
    tx: &mut WriteTx,
    batch: &mut Batch,
    alerts: &Alerts,
    change: IssueChange<'_>,
    now: i64,
) -> Result<bool, IndexError> {
    let wanted = |event| {
        alerts
            .hooks
            .iter()
            .filter(move |(_, hook)| hook.wants(event, change.product))
    };
    let mut events: Vec<Event<'_>> = Vec::new();
    for (happened, event) in [
        (change.created, WebhookEvent::NewIssue),
        (change.regressed, WebhookEvent::Regression),
    ] {
        if happened {
            events.extend(wanted(event).map(|(hook, _)| Event {
                event,
                hook,
                spike: None,
            }));
        }
    }
    let spikes: Vec<_> = if change.counted {
        wanted(WebhookEvent::Spike).collect()
    } else {
        Vec::new()
    };
    if events.is_empty() && spikes.is_empty() {
        return Ok(false);
    }
    tx.run(batch).await?;
    if !spikes.is_empty() {
        let mut count = Batch::new(batch.backend());
        count.push(
            statement("SELECT COUNT(*) AS n FROM reports WHERE issue_id = $1 AND received_at > $2")
                .bind(change.issue_id)
                .bind(now - HOUR_MS),
        );
        let rows = tx.run(&mut count).await?;
        let last_hour: i64 = rows.first().ok_or(sqlx::Error::RowNotFound)?.try_get("n")?;
        for (hook, config) in spikes {
            let threshold = config.spike_per_hour.unwrap_or(u64::MAX);
            if u64::try_from(last_hour).unwrap_or(0) > threshold {
                events.push(Event {
                    event: WebhookEvent::Spike,
                    hook,
                    spike: Some((threshold, last_hour)),
                });
            }
        }
    }
    if events.is_empty() {
        return Ok(false);
    }
    let mut read = Batch::new(batch.backend());
    read.push(
        statement(format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1"))
            .bind(change.issue_id),
    );
    let rows = tx.run(&mut read).await?;
    let issue = issue_from_row(rows.first().ok_or(sqlx::Error::RowNotFound)?)?;
    // Each event's row, returned where it was written (not already there).
    let mut inserts = Batch::new(batch.backend());
    for Event { event, hook, spike } in events {
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut body = serde_json::json!({
            "id": event_id,
            "event": event.as_str(),
            "at": now,
            "product": change.product,
            "issue": {
                "id": issue.id,
                "title": issue.title,
                "status": issue.status,
                "count": issue.count,
                "counted_without_dump": issue.counted_without_dump,
                "first_seen": issue.first_seen,
                "last_seen": issue.last_seen,
                "url": format!("{}/issues/{}", alerts.public_url, issue.id),
            },
        });
        let mut dedupe_key = None;
        if let Some((threshold, last_hour)) = spike {
            body["spike"] = serde_json::json!({
                "reports_last_hour": last_hour,
                "spike_per_hour": threshold,
            });
            dedupe_key = Some(format!("{hook}:spike:{}:{}", issue.id, now / HOUR_MS));
        }
        inserts.push(
            statement(
                "INSERT INTO webhook_outbox (event_id, dedupe_key, hook, event, issue_id, body, \
                 state, not_before, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) \
                 ON CONFLICT DO NOTHING RETURNING event_id",
            )
            .bind(event_id)
            .bind(dedupe_key)
            .bind(hook)
            .bind(event.as_str())
            .bind(issue.id)
            .bind(body.to_string())
            .bind(now),
        );
    }
    Ok(!tx.run(&mut inserts).await?.is_empty())
}

impl Alerts {
    /// Tells this process's deliverer that events were committed.
    pub(super) fn wrote(&self) {
        self.written.notify_one();
    }
}

/// A claimed webhook delivery. Like a [`Job`](super::Job), the claim is its id
/// with its attempt count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Outbox row id.
    pub id: i64,
    /// The event's unique id (`X-Mayday-Delivery`).
    pub event_id: String,
    /// The webhook ([`WebhookConfig::id`]).
    pub hook: String,
    /// The event (`X-Mayday-Event`).
    pub event: WebhookEvent,
    /// The exact JSON body to send.
    pub body: String,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
}

/// How many outbox rows are in each state, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent, or being sent.
    pub pending: i64,
    /// Attempts used up.
    pub failed: i64,
}

/// The webhook outbox, as a queue.
pub(super) const OUTBOX: Queue = Queue {
    table: "webhook_outbox",
    claimed: "sending",
};

impl Index {
    /// This index with the webhooks that finishing processed reports writes
    /// events for (none by default).
    pub fn with_alerts(mut self, alerts: Alerts) -> Index {
        self.alerts = Arc::new(alerts);
        self
    }

    /// The webhooks events are written for.
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Claims the oldest due delivery: a pending one whose time has come, or one
    /// being sent whose lease ran out (its deliverer died).
    pub async fn claim_delivery(
        &self,
        now: i64,
        lease: Duration,
    ) -> Result<Option<Delivery>, IndexError> {
        let expired = now - lease.as_millis() as i64;
        let returning = "id, event_id, hook, event, body, attempts";
        let sql = self.claim_statement(OUTBOX, "", returning);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(expired)
            .fetch_optional(&self.writer)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let event: String = row.try_get("event")?;
        Ok(Some(Delivery {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            hook: row.try_get("hook")?,
            event: WebhookEvent::parse(&event)
                .ok_or_else(|| IndexError::Corrupt(format!("webhook event {event:?}")))?,
            body: row.try_get("body")?,
            attempts: row.try_get("attempts")?,
        }))
    }

    /// Ends a claimed delivery: `Delivered`, back to pending until `Retry`'s
    /// time, or `Failed` for good. A delivery claimed again meanwhile is left to
    /// that claim ([`IndexError::ClaimLost`]).
    pub async fn end_delivery(
        &self,
        delivery: &Delivery,
        end: DeliveryEnd<'_>,
        now: i64,
    ) -> Result<(), IndexError> {
        let (state, not_before, error) = match end {
            DeliveryEnd::Delivered => ("delivered", now, None),
            DeliveryEnd::Retry { at, error } => ("pending", at, Some(error)),
            DeliveryEnd::Failed { error } => ("failed", now, Some(error)),
        };
        let done_at = (state != "pending").then_some(now);
        let done = sqlx::query(
            "UPDATE webhook_outbox SET state = $3, not_before = $4, last_error = $5, \
             done_at = $6, claimed_at = NULL \
             WHERE id = $1 AND attempts = $2 AND state = 'sending'",
        )
        .bind(delivery.id)
        .bind(delivery.attempts)
        .bind(state)
        .bind(not_before)
        .bind(error)
        .bind(done_at)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(IndexError::ClaimLost(delivery.id));
        }
        Ok(())
    }

    /// When the next delivery falls due (Unix ms), `None` when none waits.
    pub async fn next_delivery_due(&self, lease: Duration) -> Result<Option<i64>, IndexError> {
        self.next_due(OUTBOX, lease).await
    }

    /// Removes delivered rows done before `delivered_before` and failed ones done
    /// before `failed_before`; returns how many.
    pub async fn prune_outbox(
        &self,
        delivered_before: i64,
        failed_before: i64,
    ) -> Result<u64, IndexError> {
        let done = sqlx::query(
            "DELETE FROM webhook_outbox WHERE (state = 'delivered' AND done_at < $1) \
             OR (state = 'failed' AND done_at < $2)",
        )
        .bind(delivered_before)
        .bind(failed_before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// How many outbox rows wait and how many failed.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, IndexError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM webhook_outbox WHERE state IN ('pending', 'sending')) \
             AS pending, (SELECT COUNT(*) FROM webhook_outbox WHERE state = 'failed') AS failed",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            pending: row.try_get("pending")?,
            failed: row.try_get("failed")?,
        })
    }
}

/// How a claimed delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEnd<'a> {
    /// The webhook answered 2xx.
    Delivered,
    /// It failed; try again at `at` (Unix ms).
    Retry {
        /// When.
        at: i64,
        /// What went wrong (status or network error, no body).
        error: &'a str,
    },
    /// It failed on its last attempt.
    Failed {
        /// What went wrong.
        error: &'a str,
    },
}

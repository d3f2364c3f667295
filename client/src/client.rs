//! The client: the pending queue, consent, upload, receipts and deletion requests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mayday_report::crash_site::{CrashSiteAnswer, CrashSiteSummary};
use mayday_report::upload::DELETION_AUTH_SCHEME;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::consent::{self, ConsentPolicy, ConsentPrompt, Decision};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::queue::{PendingReport, Queue};
use crate::receipts::{CountedCrash, CountedReceipts, Forgotten, Receipts, SentReport};
use crate::scrub::{self, LocalUser};
use crate::summary::ReportSummary;
use crate::upload::{self, Outcome, SummaryReply};

/// The annotation that carries the product name.
pub const PRODUCT_ANNOTATION: &str = "ProductName";
/// The annotation that carries the product version.
pub const VERSION_ANNOTATION: &str = "Version";
/// The annotation that carries the user's comment.
pub const COMMENT_ANNOTATION: &str = "Comments";
/// The annotation that carries a Rust panic's message and location.
pub const PANIC_ANNOTATION: &str = "PanicMessage";

/// A handle on the data dir: pending reports, consent, sending, receipts and
/// deletion requests. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    queue: Queue,
    receipts: Receipts,
    counted: CountedReceipts,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What one [`Client::send_pending`] call did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SendSummary {
    /// Reports the server acknowledged (their receipts are stored).
    pub sent: Vec<SentReport>,
    /// Crashes of which only the summary was sent: the server counted them and
    /// did not want their dumps, which were deleted (their receipts are stored).
    pub counted: Vec<CountedCrash>,
    /// Reports the user declined (deleted).
    pub declined: usize,
    /// Reports deleted because consent is `Never`.
    pub deleted_by_policy: usize,
    /// Reports the server refused for good (`400`, `413`, `200 Discarded=`),
    /// deleted.
    pub discarded: usize,
    /// Reports still pending (no answer, server unreachable, throttled).
    pub still_pending: usize,
    /// The last error that left reports pending, if any.
    pub last_error: Option<Error>,
    /// Set when the server asked the client to stop sending until this time.
    pub throttled_until: Option<time::OffsetDateTime>,
    /// Why reports still wait, when some do.
    pub waiting: Option<Waiting>,
}

/// Why pending reports were left pending by a [`Client::send_pending`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// Another process of this application is sending them now.
    OtherSender,
    /// No endpoint is configured to send them to.
    NoEndpoint,
    /// Consent is `Ask` and the prompt could not ask anyone (the terminal prompt
    /// asks only on a terminal).
    NoOneToAsk,
    /// The server asked not to send before this time.
    Throttled(time::OffsetDateTime),
    /// Sending failed (see [`SendSummary::last_error`]); they are tried again next time.
    SendFailed,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::OtherSender => {
                f.write_str("another process of this application is sending them")
            }
            Waiting::NoEndpoint => f.write_str("no server endpoint is configured"),
            Waiting::NoOneToAsk => {
                f.write_str("they wait for your consent, and there was no one to ask (no terminal)")
            }
            Waiting::Throttled(until) => write!(f, "the server asked to wait until {until}"),
            Waiting::SendFailed => f.write_str("sending failed; they are tried again next time"),
        }
    }
}

/// `<data_dir>/throttle.json`: the server asked the client not to send before this.
#[derive(Debug, Serialize, Deserialize)]
struct Throttle {
    #[serde(with = "time::serde::rfc3339")]
    not_before: time::OffsetDateTime,
}

impl Client {
    pub(crate) fn new(config: Config) -> Result<Client> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let queue = Queue::new(&config.data_dir, config.max_pending, config.max_age);
        let receipts = Receipts::new(&config.data_dir);
        let counted = CountedReceipts::new(&config.data_dir);
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                queue,
                receipts,
                counted,
            }),
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// The consent policy in force: the user's remembered choice, else the
    /// application's default.
    pub fn consent(&self) -> Result<ConsentPolicy> {
        let c = self.config();
        consent::effective(&c.data_dir, c.consent, c.consent_text_version)
    }

    /// Remembers the user's choice in `consent.json`. `Never` also deletes every
    /// pending report at once.
    pub fn set_consent(&self, policy: ConsentPolicy) -> Result<()> {
        let c = self.config();
        consent::store(&c.data_dir, policy, c.consent_text_version)?;
        if policy == ConsentPolicy::Never {
            self.queue().clear()?;
        }
        Ok(())
    }

    /// The pending reports, oldest first (past-the-bounds reports are dropped).
    pub fn pending(&self) -> Result<Vec<PendingReport>> {
        self.queue().list()
    }

    /// Deletes one pending report without sending it.
    pub fn discard(&self, id: &str) -> Result<()> {
        self.queue().remove(id)
    }

    /// The receipts of sent reports, oldest first.
    pub fn sent_reports(&self) -> Result<Vec<SentReport>> {
        self.inner.receipts.list()
    }

    /// The crashes of which only a summary was sent, oldest first.
    pub fn counted_crashes(&self) -> Result<Vec<CountedCrash>> {
        self.inner.counted.list()
    }

    /// What the user is shown about a pending report: exactly what would be sent.
    pub fn summary(&self, report: &PendingReport) -> Result<ReportSummary> {
        Ok(self.prepare(report)?.summary)
    }

    /// Runs `f` with an HTTP client on a thread of its own, where the client is
    /// also dropped: reqwest's blocking client must not be created or dropped on
    /// a thread inside an async runtime, and the application may call the client
    /// from one.
    fn with_http<T: Send>(
        &self,
        f: impl FnOnce(&reqwest::blocking::Client) -> Result<T> + Send,
    ) -> Result<T> {
        let (timeout, connect_timeout) = (self.config().timeout, self.config().connect_timeout);
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(timeout)
                        .connect_timeout(connect_timeout)
                        .user_agent(concat!("mayday-client/", env!("CARGO_PKG_VERSION")))
                        .build()
                        .map_err(|e| Error::Network(e.to_string()))?;
                    f(&http)
                })
                .join()
                .unwrap_or_else(|_| Err(Error::Network("the HTTP thread panicked".into())))
        })
    }

    /// The dump and annotations as they would be sent, and their summary.
    fn prepare(&self, report: &PendingReport) -> Result<Prepared> {
        let c = self.config();
        let mut dump =
            std::fs::read(&report.dump_path).map_err(|e| Error::io(&report.dump_path, e))?;
        let user = LocalUser::from_env();
        let mut annotations = report.meta.annotations.clone();
        if c.client_scrub {
            scrub::scrub_dump(&mut dump, &user)?;
            annotations = scrub::scrub_annotations(&annotations, &user);
        }
        annotations.insert(PRODUCT_ANNOTATION.into(), report.meta.product.clone());
        annotations.insert(VERSION_ANNOTATION.into(), report.meta.version.clone());
        let version = Some(report.meta.version.as_str()).filter(|v| !v.is_empty());
        let summary_first = c
            .endpoint
            .as_ref()
            .and_then(|_| CrashSiteSummary::of_minidump(&dump, &report.meta.product, version).ok());
        let facts = scrub::inspect(&dump).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the pending dump does not parse");
            Default::default()
        });
        let crashed_at = report
            .meta
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let summary = ReportSummary {
            id: report.meta.id.clone(),
            product: report.meta.product.clone(),
            version: report.meta.version.clone(),
            crashed_at,
            crash_reason: report
                .meta
                .annotations
                .get(PANIC_ANNOTATION)
                .map(|_| "Rust panic".to_owned())
                .or(facts.crash_reason),
            crashing_module: facts.crashing_module,
            os: facts.os,
            threads: facts.threads,
            modules: facts.modules,
            stack_bytes: facts.stack_bytes,
            has_environment: facts.has_environment,
            has_command_line: facts.has_command_line,
            has_heap: facts.has_heap,
            client_scrubbed: c.client_scrub || report.meta.client_scrubbed,
            size_bytes: dump.len() as u64,
            annotations: annotations.clone(),
            endpoint: c.endpoint.clone(),
            summary_first,
        };
        Ok(Prepared {
            dump,
            annotations,
            summary,
        })
    }

    fn throttled_until(&self) -> Option<time::OffsetDateTime> {
        let path = self.data_dir().join("throttle.json");
        let t: Throttle = fsutil::read_json(&path).ok().flatten()?;
        (t.not_before > fsutil::now()).then_some(t.not_before)
    }

    fn throttle(&self, until: time::OffsetDateTime) -> Result<()> {
        fsutil::write_json(
            &self.data_dir().join("throttle.json"),
            &Throttle { not_before: until },
        )
    }

    /// Asks about (per the consent policy) and sends every pending report, oldest
    /// first. Consent is read again right before each upload. A report leaves the
    /// queue only when the server acknowledged it (its receipt is then stored),
    /// the server refused it for good, or the user declined it.
    ///
    /// Blocks until done (HTTP runs on a thread of its own, so calling it from
    /// inside an async runtime is safe, if blocking).
    pub fn send_pending(&self) -> Result<SendSummary> {
        let prompt = Arc::clone(&self.config().prompt);
        self.send_pending_with(prompt.as_ref())
    }

    /// [`Client::send_pending`], asking with `prompt` instead of the builder's (for
    /// a prompt that exists only during this call, such as a C callback).
    pub fn send_pending_with(&self, prompt: &dyn ConsentPrompt) -> Result<SendSummary> {
        let mut out = SendSummary::default();
        let Some(_lock) = self.lock_sender()? else {
            out.still_pending = self.pending()?.len();
            out.waiting = Some(Waiting::OtherSender);
            return Ok(out);
        };
        let pending = self.pending()?;
        if pending.is_empty() {
            return Ok(out);
        }
        if self.consent()? == ConsentPolicy::Never {
            return self.delete_by_policy(out, pending.len());
        }
        let Some(submit_url) = self.config().submit_url() else {
            out.still_pending = pending.len();
            out.waiting = Some(Waiting::NoEndpoint);
            return Ok(out);
        };
        let queued = self.drop_already_sent(pending)?;
        let total = queued.len();
        let mut handled = 0;
        for report in queued {
            if let Some(until) = self.throttled_until() {
                out.throttled_until = Some(until);
                out.waiting = Some(Waiting::Throttled(until));
                break;
            }
            let policy = self.consent()?;
            if policy == ConsentPolicy::Never {
                return self.delete_by_policy(out, total - handled);
            }
            let mut prepared = match self.prepare(&report) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(id = report.id(), error = %e, "cannot prepare report");
                    out.last_error = Some(e);
                    continue;
                }
            };
            if policy == ConsentPolicy::Ask {
                match self.ask(prompt, &report, &mut prepared)? {
                    Asked::Send => {}
                    // No one could be asked: the report waits for next time.
                    Asked::NoOne => {
                        out.waiting = Some(Waiting::NoOneToAsk);
                        break;
                    }
                    Asked::DontSend => {
                        out.declined += 1;
                        handled += 1;
                        continue;
                    }
                    Asked::Never => {
                        out.declined += 1;
                        out.deleted_by_policy += total - handled - 1;
                        return Ok(out);
                    }
                }
            }
            // Consent may have been revoked while the prompt was open or since the
            // loop started (another process, a settings page).
            if self.consent()? == ConsentPolicy::Never {
                return self.delete_by_policy(out, total - handled);
            }
            if let Some(flow) = self.summary_first(&report, &prepared, &mut out)? {
                match flow {
                    Flow::Next => handled += 1,
                    Flow::Stop => break,
                }
                continue;
            }
            match self.upload(&report, prepared, &submit_url, &mut out)? {
                Flow::Next => handled += 1,
                Flow::Stop => break,
            }
        }
        out.still_pending = self.pending()?.len();
        if out.still_pending > 0 && out.waiting.is_none() {
            out.waiting = Some(match out.throttled_until {
                Some(until) => Waiting::Throttled(until),
                None => Waiting::SendFailed,
            });
        }
        Ok(out)
    }

    /// One sender per data dir (two instances of the application must not upload
    /// the same report twice): `<data_dir>/send.lock`, released when the returned
    /// guard is dropped, also if the process dies. `None` when another sender holds it.
    fn lock_sender(&self) -> Result<Option<SendLock>> {
        let lock_path = self.data_dir().join("send.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(SendLock(lock))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&lock_path, e)),
        }
    }

    /// Consent is `Never`: every pending report is deleted; `remaining` of them
    /// were still to be handled in this call.
    fn delete_by_policy(&self, mut out: SendSummary, remaining: usize) -> Result<SendSummary> {
        out.deleted_by_policy += remaining;
        self.queue().clear()?;
        Ok(out)
    }

    /// `pending` without the reports whose receipt exists: they were acknowledged,
    /// but the process died before they left the queue. They are removed, not sent
    /// twice.
    fn drop_already_sent(&self, pending: Vec<PendingReport>) -> Result<Vec<PendingReport>> {
        let already_sent: std::collections::BTreeSet<String> = self
            .sent_reports()?
            .into_iter()
            .filter_map(|r| r.local_id)
            .collect();
        let mut queued = Vec::with_capacity(pending.len());
        for report in pending {
            if already_sent.contains(report.id()) || self.inner.counted.contains(report.id()) {
                self.queue().remove(report.id())?;
            } else {
                queued.push(report);
            }
        }
        Ok(queued)
    }

    /// Asks the user about one report (consent `Ask`) and carries out the answer:
    /// remembers `Always` or `Never` (which deletes everything pending), deletes a
    /// declined report, adds the user's comment to the annotations.
    fn ask(
        &self,
        prompt: &dyn ConsentPrompt,
        report: &PendingReport,
        prepared: &mut Prepared,
    ) -> Result<Asked> {
        let Some(answer) = prompt.ask(&prepared.summary) else {
            return Ok(Asked::NoOne);
        };
        match answer.decision {
            Decision::Send => {}
            Decision::Always => self.set_consent(ConsentPolicy::Always)?,
            Decision::DontSend => {
                self.queue().remove(report.id())?;
                return Ok(Asked::DontSend);
            }
            Decision::Never => {
                self.set_consent(ConsentPolicy::Never)?;
                return Ok(Asked::Never);
            }
        }
        if let Some(comment) = answer.comment {
            let comment = if self.config().client_scrub {
                scrub::scrub_text(&comment, &LocalUser::from_env())
            } else {
                comment
            };
            prepared
                .annotations
                .insert(COMMENT_ANNOTATION.into(), comment);
        }
        Ok(Asked::Send)
    }

    /// Sends one prepared report and files the outcome: receipt stored and report
    /// removed, report discarded, or a throttle remembered. Says whether to go on
    /// with the next report.
    fn upload(
        &self,
        report: &PendingReport,
        prepared: Prepared,
        submit_url: &str,
        out: &mut SendSummary,
    ) -> Result<Flow> {
        let body = upload::build_body(prepared.dump, &prepared.annotations)?;
        let retry = self.config().retry;
        let outcome = self.with_http(|http| Ok(upload::send(http, submit_url, &body, &retry)))?;
        self.file(report, outcome, out)
    }

    /// Sends the report's crash-site summary first, when it has one and the server
    /// takes summaries, and files the answer: `None` when the dump is to be sent
    /// (the server asked for it, or gave no answer: an older server); else the
    /// report was handled (counted: its dump deleted, the summary's receipt
    /// stored) or sending stops.
    fn summary_first(
        &self,
        report: &PendingReport,
        prepared: &Prepared,
        out: &mut SendSummary,
    ) -> Result<Option<Flow>> {
        let (Some(summary), Some(url)) = (
            prepared.summary.summary_first.as_ref(),
            self.config().crash_sites_url(),
        ) else {
            return Ok(None);
        };
        let retry = self.config().retry;
        let reply = self.with_http(|http| Ok(upload::ask(http, &url, summary, &retry)))?;
        let answer = match reply {
            SummaryReply::Answer(CrashSiteAnswer::Send) | SummaryReply::NoAnswer => {
                return Ok(None);
            }
            SummaryReply::Refused(outcome) => return self.file(report, outcome, out).map(Some),
            SummaryReply::Answer(answer) => answer,
        };
        let counted = CountedCrash {
            local_id: report.id().to_owned(),
            sent_at: fsutil::now(),
            summary: summary.clone(),
            answer,
        };
        // Receipt first, as for a sent report: if the process dies now, the
        // pending report is removed next time, not sent.
        self.inner.counted.store(&counted)?;
        self.queue().remove(report.id())?;
        tracing::info!(
            id = report.id(),
            "crash counted from its summary; the dump was not needed"
        );
        out.counted.push(counted);
        Ok(Some(Flow::Next))
    }

    /// Files what came of sending a report: receipt stored and report removed,
    /// report discarded, or a throttle remembered. Says whether to go on.
    fn file(
        &self,
        report: &PendingReport,
        outcome: Outcome,
        out: &mut SendSummary,
    ) -> Result<Flow> {
        match outcome {
            Outcome::Accepted { receipt, stop } => {
                let sent = SentReport {
                    delete_url: self.config().report_url(&receipt.crash_id),
                    forget_url: self
                        .config()
                        .forget_url(&receipt.crash_id, &receipt.deletion_token),
                    crash_id: receipt.crash_id,
                    deletion_token: receipt.deletion_token,
                    sent_at: fsutil::now(),
                    product: report.meta.product.clone(),
                    version: report.meta.version.clone(),
                    view_url: receipt.view_url,
                    scrubbed: receipt.scrubbed,
                    local_id: Some(report.id().to_owned()),
                };
                // Receipt first: if the process dies now, the report may be
                // sent twice, but the user never loses the way to delete it.
                self.inner.receipts.store(&sent)?;
                self.queue().remove(report.id())?;
                out.sent.push(sent);
                if let Some(stop) = stop {
                    let until = upload::until(stop);
                    self.throttle(until)?;
                    out.throttled_until = Some(until);
                    return Ok(Flow::Stop);
                }
                Ok(Flow::Next)
            }
            Outcome::Discarded { status, reason } => {
                tracing::warn!(id = report.id(), status, %reason, "server refused report");
                self.queue().remove(report.id())?;
                out.discarded += 1;
                Ok(Flow::Next)
            }
            Outcome::Throttled { until } => {
                self.throttle(until)?;
                out.throttled_until = Some(until);
                Ok(Flow::Stop)
            }
            Outcome::Failed(e) => {
                tracing::warn!(id = report.id(), error = %e, "report not sent, kept");
                out.last_error = Some(e);
                Ok(Flow::Stop)
            }
        }
    }

    /// Asks the server to delete a sent report (`DELETE /api/v1/reports/<id>` with
    /// `Authorization: Deletion <token>`), then removes the receipt. A report the
    /// server does not know (`404`) counts as gone.
    pub fn forget(&self, crash_id: &str) -> Result<Forgotten> {
        let receipt = self
            .inner
            .receipts
            .get(crash_id)?
            .ok_or_else(|| Error::UnknownReport(crash_id.to_owned()))?;
        let url = receipt
            .delete_url
            .clone()
            .or_else(|| self.config().report_url(crash_id))
            .ok_or_else(|| Error::Config("no endpoint to send the deletion request to".into()))?;
        let token = receipt.deletion_token.clone();
        let outcome = self.with_http(move |http| {
            let response = http
                .delete(&url)
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("{DELETION_AUTH_SCHEME} {token}"),
                )
                .send()
                .map_err(|e| Error::Network(e.to_string()))?;
            let status = response.status().as_u16();
            match status {
                200..=299 => Ok(Forgotten::Deleted),
                404 | 410 => Ok(Forgotten::NotFound),
                _ => Err(Error::Server {
                    status,
                    body: upload::snippet(&upload::read_reply(response).text),
                }),
            }
        })?;
        self.inner.receipts.remove(crash_id)?;
        Ok(outcome)
    }

    /// [`Client::forget`] for every sent report. Tries them all; returns how many
    /// the server deleted, or the first error after trying the rest.
    pub fn forget_all(&self) -> Result<usize> {
        let mut deleted = 0;
        let mut first_error = None;
        for r in self.sent_reports()? {
            match self.forget(&r.crash_id) {
                Ok(Forgotten::Deleted) => deleted += 1,
                Ok(Forgotten::NotFound) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }
}

/// The held `send.lock`. Dropping it unlocks the file, then closes it: closing
/// alone does not release the lock while a child process still has the file open
/// (a flock belongs to the open file, which a child forked meanwhile shares until
/// it execs, and for its whole life if it never does), and another sender would
/// then find it taken.
struct SendLock(std::fs::File);

impl Drop for SendLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

struct Prepared {
    dump: Vec<u8>,
    annotations: BTreeMap<String, String>,
    summary: ReportSummary,
}

/// What the user answered about one report, once carried out.
enum Asked {
    /// Send it.
    Send,
    /// Not this one (deleted).
    DontSend,
    /// Never send reports (consent stored, everything pending deleted).
    Never,
    /// No one could be asked.
    NoOne,
}

/// Whether [`Client::send_pending`] goes on with the next report.
enum Flow {
    /// The report was handled; next one.
    Next,
    /// Stop sending in this call (throttled, or the server is unreachable).
    Stop,
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::Client;

    /// A child process that shares the open lock file (as one forked while the lock
    /// was held does, until it execs) does not keep the lock once the sender is done.
    #[test]
    fn the_send_lock_is_released_while_a_child_shares_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::builder()
            .product("app")
            .version("1.0")
            .data_dir(dir.path())
            .build()
            .unwrap();
        let lock = client.lock_sender().unwrap().expect("nobody sends");
        let mut child = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::from(lock.0.try_clone().unwrap()))
            .spawn()
            .unwrap();
        assert!(
            client.lock_sender().unwrap().is_none(),
            "held while sending"
        );
        drop(lock);
        let again = client.lock_sender();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(again.unwrap().is_some(), "released when the sender is done");
    }
}

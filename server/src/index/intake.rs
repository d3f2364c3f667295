//! Group commit of received reports: concurrent uploads share one durable index
//! commit instead of queueing for one each.
//!
//! Uploads hand their [`NewReport`] to the [`Intake`]; one task takes whatever is
//! queued (up to [`BATCH`]), records it all in one write transaction
//! ([`Index::insert_reports`]) and only then answers each upload. When a batch
//! fails, its reports are recorded again one by one, so each upload gets its own
//! answer: one bad report never fails the others.

use tokio::sync::{mpsc, oneshot};

use super::{Index, IndexError, NewReport};
use crate::metrics::WriterUser;

/// Reports waiting for a commit, at most; further uploads wait to queue.
const QUEUE: usize = 1024;
/// Reports in one commit, at most.
const BATCH: usize = 256;

/// A report waiting for its commit, and where its outcome goes.
struct Pending {
    report: NewReport,
    recorded: oneshot::Sender<Result<(), IndexError>>,
}

/// Records received reports by group commit; cheap to clone. Its task runs while
/// a clone is alive.
#[derive(Clone, Debug)]
pub struct Intake {
    queue: mpsc::Sender<Pending>,
}

impl Intake {
    /// Starts the task that commits reports to `index`, on the writer's
    /// thread (`writer_thread`).
    pub fn start(index: Index) -> Intake {
        let (queue, pending) = mpsc::channel(QUEUE);
        super::writer_thread::spawn(super::writing_as(
            WriterUser::Intake,
            commit_batches(index, pending),
        ));
        Intake { queue }
    }

    /// Records `report` with its data key and its job; returns once the
    /// transaction holding them is committed (or failed).
    pub async fn record(&self, report: NewReport) -> Result<(), IndexError> {
        let (recorded, outcome) = oneshot::channel();
        self.queue
            .send(Pending { report, recorded })
            .await
            .map_err(|_| IndexError::Stopped)?;
        outcome.await.map_err(|_| IndexError::Stopped)?
    }
}

/// Commits what is queued, batch after batch, until every [`Intake`] is gone.
async fn commit_batches(index: Index, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let (reports, answers): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.report, p.recorded)).unzip();
        match index.insert_reports(&reports).await {
            Ok(()) => {
                for answer in answers {
                    // An upload that went away meanwhile is recorded all the same.
                    let _ = answer.send(Ok(()));
                }
            }
            Err(e) if answers.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, reports = reports.len(), "batch not recorded; one by one");
                for (report, answer) in reports.iter().zip(answers) {
                    let outcome = index.insert_reports(std::slice::from_ref(report)).await;
                    let _ = answer.send(outcome);
                }
            }
        }
    }
}

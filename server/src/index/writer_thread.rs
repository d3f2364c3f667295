//! A runtime thread of the writer's own, for the tasks that hold it: the
//! intake's group commits and the jobs' finishes.
//!
//! A write transaction holds the SQLite writer from its `BEGIN` to its
//! `COMMIT`, and each round trip to the connection's thread in between ends
//! with the transaction's task woken to send the next. On the server's runtime
//! that task waits for one of its threads to come free, and those threads also
//! walk dumps (minidump-processor's walk is async and runs on them, milliseconds
//! of CPU at a stretch): the writer then sits held, idle, while every other
//! write queues for it. This thread is asleep but for those tasks, so the OS
//! runs it as soon as it is woken. (On 2 cores, draining a queue, in one pass:
//! the writer held 66% of the time, 3.7 ms a finish, on the server's runtime;
//! 54%, 2.6 ms here. README, "The writer's own thread".)
//!
//! One thread for the process, made when first needed and never stopped; its
//! tasks mostly wait on the database. Where it cannot be made, the work runs
//! where it is awaited, as before.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use super::{IndexError, WRITER_USER, writing_as};

std::thread_local! {
    /// Whether this thread is one of the writer's runtime.
    static ON_WRITER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is the writer's own, where a transaction's
/// statements may block the thread while they run (`index/direct.rs`).
pub(super) fn is_current() -> bool {
    ON_WRITER_THREAD.get()
}

/// The writer's runtime: one worker thread; `None` if it could not start.
fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mayday-index-writer")
                .on_thread_start(|| ON_WRITER_THREAD.set(true))
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "no thread of its own for the index writer");
                })
                .ok()
        })
        .as_ref()
}

/// Runs `work` to its end on the writer's thread, counted for the writer user
/// of the task that awaits it, and returns its result. Dropping the returned
/// future does not stop `work`: a transaction runs to its commit or rollback
/// by itself.
pub(super) async fn run<T, F>(work: F) -> Result<T, IndexError>
where
    F: Future<Output = Result<T, IndexError>> + Send + 'static,
    T: Send + 'static,
{
    let Some(runtime) = runtime() else {
        return work.await;
    };
    let task = match WRITER_USER.try_with(|user| *user) {
        Ok(user) => runtime.spawn(writing_as(user, work)),
        Err(_) => runtime.spawn(work),
    };
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime stops, which it never does.
        Err(_) => Err(IndexError::Stopped),
    }
}

/// Starts `work` on the writer's thread (or, where it has none, on the
/// current Tokio runtime).
pub(super) fn spawn<F>(work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    match runtime() {
        Some(runtime) => drop(runtime.spawn(work)),
        None => drop(tokio::spawn(work)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::metrics::WriterUser;

    #[tokio::test]
    async fn work_runs_on_the_writers_thread_for_the_awaiting_tasks_user() {
        let here = std::thread::current().id();
        let (thread, name, user) = writing_as(
            WriterUser::Intake,
            run(async {
                let thread = std::thread::current();
                let user = WRITER_USER.try_with(|user| *user).ok();
                Ok((thread.id(), thread.name().map(str::to_owned), user))
            }),
        )
        .await
        .unwrap();
        assert_ne!(thread, here);
        assert_eq!(name.as_deref(), Some("mayday-index-writer"));
        assert_eq!(user, Some(WriterUser::Intake));
        // Known as the writer's there, and only there.
        assert!(run(async { Ok(is_current()) }).await.unwrap());
        assert!(!is_current());
    }

    #[tokio::test]
    async fn work_runs_to_its_end_when_its_caller_stops_waiting() {
        let (go, wait) = oneshot::channel::<()>();
        let (done, finished) = oneshot::channel();
        let work = run(async move {
            let _ = wait.await;
            let _ = done.send(());
            Ok(())
        });
        // The caller gives up while the work waits, and drops its future.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), work)
                .await
                .is_err()
        );
        go.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), finished)
            .await
            .expect("the work ran on")
            .expect("the work finished");
    }

    #[tokio::test]
    #[should_panic(expected = "a finish that panics")]
    async fn a_panic_reaches_the_awaiting_task() {
        let _: Result<(), IndexError> = run(async { panic!("a finish that panics") }).await;
    }
}

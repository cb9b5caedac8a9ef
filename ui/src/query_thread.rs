//! Queries (PromQL and LogQL) run on threads of their own at a lower CPU priority
//! (niceness [`QUERY_NICENESS`]), so that a heavy query shares the cores with ingestion —
//! scrapes, pushes and WAL syncs on the runtime's threads — instead of starving it: with two
//! cores and the engine's gate letting 20 queries run, blocking-pool threads of equal
//! priority would leave ingestion a tenth of the machine.
//!
//! Decision: a new thread per query rather than the blocking pool. Linux lets a thread raise
//! its niceness but not lower it again without privileges, so a pooled thread could not be
//! given back to the WAL reads and pushes that share the pool. Starting a thread costs tens
//! of microseconds against a query's milliseconds; the engine's gate bounds how many run.

use tokio::sync::oneshot;

/// Niceness of query threads (the process's own is 0 unless started with `nice`).
pub(crate) const QUERY_NICENESS: i32 = 10;

/// Runs `work` on a new low-priority thread; `Err` with the reason when the thread could
/// not start or panicked.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name("query".into())
        .spawn(move || {
            // Setting the calling thread's priority (Linux: PRIO_PROCESS with 0 names the
            // thread); a failure leaves the query at normal priority, which is only slower
            // for ingestion.
            if let Err(error) = rustix::process::setpriority_process(None, QUERY_NICENESS) {
                tracing::debug!("query thread keeps its priority: {error}");
            }
            let _ = done.send(work());
        })
        .map_err(|error| format!("cannot start a query thread: {error}"))?;
    result
        .await
        .map_err(|_| "the query thread panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queries_run_below_the_priority_of_everything_else() {
        let own = rustix::process::getpriority_process(None).unwrap();
        let query = run(|| rustix::process::getpriority_process(None).unwrap())
            .await
            .unwrap();
        assert_eq!(query, (own + QUERY_NICENESS).min(19));
        // The caller's thread is untouched.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
        assert_eq!(run(|| 6 * 7).await, Ok(42));
        let panicked = run(|| -> u8 { panic!("boom") }).await;
        assert_eq!(panicked, Err("the query thread panicked".to_owned()));
    }
}

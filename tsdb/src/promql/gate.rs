//! The query gate: at most `max_concurrency` queries evaluate at once; later ones wait for a
//! free slot until their deadline, as Prometheus's `--query.max-concurrency` gate does
//! (`util/gate`, used by `promql.Engine.queueActive`). A query whose deadline passes while it
//! waits fails with Prometheus's "query timed out in query queue".
//!
//! Waiters are woken one at a time when a slot frees; which waiter gets it is up to the
//! operating system's condition variable (upstream's channel is not strictly fair either).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::error::{Error, Result, Stage};

/// Counts running queries against a limit.
#[derive(Debug)]
pub(crate) struct QueryGate {
    limit: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

/// A query's slot in the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    gate: &'a QueryGate,
}

impl QueryGate {
    /// A gate letting `limit` queries through at once (at least one).
    pub fn new(limit: usize) -> QueryGate {
        QueryGate {
            limit: limit.max(1),
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a slot until `deadline` (forever when `None`).
    pub fn enter(&self, deadline: Option<(Instant, Duration)>) -> Result<Slot<'_>> {
        let mut running = self.lock();
        while *running >= self.limit {
            running = match deadline {
                None => self
                    .freed
                    .wait(running)
                    .unwrap_or_else(PoisonError::into_inner),
                Some((at, timeout)) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout {
                            timeout_ms: timeout.as_millis(),
                            stage: Stage::Queue,
                        });
                    }
                    self.freed
                        .wait_timeout(running, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        *running += 1;
        Ok(Slot { gate: self })
    }

    /// The counter; a panic while it was held cannot leave it inconsistent (every update
    /// is a single statement), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.gate.lock();
        *running = running.saturating_sub(1);
        drop(running);
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_times_out_in_the_queue_and_frees_on_drop() {
        let gate = QueryGate::new(1);
        let slot = gate.enter(None).unwrap();
        let deadline = Some((
            Instant::now() + Duration::from_millis(20),
            Duration::from_millis(20),
        ));
        let err = gate.enter(deadline).unwrap_err();
        assert_eq!(err.to_string(), "query timed out in query queue");
        drop(slot);
        assert!(
            gate.enter(deadline.map(|(_, t)| (Instant::now() + t, t)))
                .is_ok()
        );
    }

    #[test]
    fn a_waiter_gets_the_slot_another_query_gives_back() {
        let gate = std::sync::Arc::new(QueryGate::new(1));
        let slot_holder = std::sync::Arc::clone(&gate);
        let (entered, wait_for_entry) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _slot = slot_holder.enter(None).unwrap();
            entered.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        });
        wait_for_entry.recv().unwrap();
        let timeout = Duration::from_secs(5);
        assert!(
            gate.enter(Some((Instant::now() + timeout, timeout)))
                .is_ok()
        );
        holder.join().unwrap();
    }
}

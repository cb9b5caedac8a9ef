//! Following the log WAL for a forwarder: [`WalFollower`] reads every push the store takes,
//! in order, from a sequence number its owner keeps across restarts, and holds the WAL
//! segments it has not sent yet back from deletion, so that an outage of the receiver loses
//! nothing within the follower's byte budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::codec;
use super::wal::{Wal, WalReader};
use crate::error::Error;
use crate::push::PushStream;

/// One push as the store took it: its sequence number in the WAL and its accepted streams.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    /// The record's sequence number; the next record has a higher one.
    pub seq: u64,
    /// The streams stored by that push.
    pub streams: Vec<PushStream>,
}

/// What a follower keeps from deletion: the records from `from` on, within `max_bytes` of
/// segments.
#[derive(Debug)]
pub(super) struct WalHold {
    from: AtomicU64,
    max_bytes: u64,
}

/// The holds of every live follower of one store.
#[derive(Debug, Default)]
pub(super) struct WalHolds(Mutex<Vec<Weak<WalHold>>>);

impl WalHolds {
    /// A new hold from `from` on.
    pub(super) fn add(&self, from: u64, max_bytes: u64) -> Arc<WalHold> {
        let hold = Arc::new(WalHold {
            from: AtomicU64::new(from),
            max_bytes,
        });
        let mut holds = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        holds.retain(|hold| hold.strong_count() > 0);
        holds.push(Arc::downgrade(&hold));
        hold
    }

    /// The lowest sequence number any live hold keeps, each within its budget; `None`
    /// without holds.
    pub(super) fn floor(&self, wal: &Wal) -> Option<u64> {
        let holds = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        holds
            .iter()
            .filter_map(Weak::upgrade)
            .map(|hold| wal.floor_within(hold.from.load(Ordering::Acquire), hold.max_bytes))
            .min()
    }
}

/// Reads the store's WAL from a sequence number on and keeps the records it has not
/// released from deletion. Dropping it releases everything.
pub struct WalFollower {
    reader: WalReader,
    hold: Arc<WalHold>,
}

impl WalFollower {
    pub(super) fn new(reader: WalReader, hold: Arc<WalHold>) -> WalFollower {
        WalFollower { reader, hold }
    }

    /// Up to `max` records from the next one on; empty when nothing new has been taken.
    /// Records are read as soon as they are written, before the push is acknowledged.
    pub fn read(&mut self, max: usize) -> Result<Vec<WalRecord>, Error> {
        let mut records = Vec::new();
        for (seq, payload) in self.reader.read(max)? {
            match codec::decode_push(&payload) {
                Ok(streams) => records.push(WalRecord { seq, streams }),
                Err(error) => {
                    tracing::warn!(
                        seq,
                        "skipping a log WAL record that does not decode: {error}"
                    );
                }
            }
        }
        Ok(records)
    }

    /// The sequence number of the next record [`read`](Self::read) returns.
    pub fn position(&self) -> u64 {
        self.reader.next_seq()
    }

    /// Lets the store delete the records before `seq` (they have been sent).
    pub fn release_before(&self, seq: u64) {
        self.hold.from.fetch_max(seq, Ordering::AcqRel);
    }

    /// Records that were deleted (past the byte budget) or damaged before they were read.
    pub fn skipped_records(&self) -> u64 {
        self.reader.skipped_records()
    }
}

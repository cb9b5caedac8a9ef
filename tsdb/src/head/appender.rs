//! Batched appends: what the scraper and the remote-write receiver call.
//!
//! Follows Prometheus's `headAppender` (`tsdb/head_append.go`): samples are buffered by the
//! [`Appender`] and validated at [`Appender::commit`], which writes the WAL records (new
//! series first, then samples), fsyncs when `wal_sync` is zero, and only then makes the
//! samples visible in memory. Commits are serialised by the WAL lock, so validation,
//! the WAL write and the in-memory apply see one consistent order.
//!
//! Semantics (Prometheus's): a sample at the same timestamp with a bit-identical value as the
//! series' last sample is dropped silently; a different value at that timestamp is rejected
//! and counted (`sightline_tsdb_duplicate_samples_total`); an older sample is rejected and
//! counted (`sightline_tsdb_out_of_order_samples_total`). Staleness markers (the NaN with bits
//! `0x7ff0000000000002`) and every other NaN are stored bit for bit. A rejected sample never
//! fails the batch; [`CommitStats`] reports it.
//!
//! Steady state: [`Appender::append_ref`] takes a shared lock for a bounds check, hashes
//! nothing and allocates nothing once the buffers have grown to the batch size, and so does
//! `commit` (the WAL record vectors are reused), but for a commit that completes chunks,
//! which writes them to the head's chunk files.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sightline_core::labels::Labels;

use super::series::Verdict;
use super::{Head, SeriesRef, lock};
use crate::storage;
use crate::wal::{Record, RefSample, RefSeries};
use crate::{Error, Result};

/// Buffers one batch of samples for the head. Reusable: after [`commit`](Self::commit) or
/// [`rollback`](Self::rollback) it is empty and keeps its buffers.
#[derive(Debug)]
pub struct Appender {
    head: Arc<Head>,
    pending: Vec<Pending>,
    /// Series that completed a chunk in this commit, to write to the chunk files.
    sealed: Vec<u32>,
}

/// A buffered sample: 24 bytes, and an appender holds a scrape's worth.
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u32,
    verdict: Option<Verdict>,
    t: i64,
    v: f64,
}

const _: () = assert!(std::mem::size_of::<Pending>() <= 24);

/// What a commit did with the batch's samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Samples stored.
    pub appended: u64,
    /// Series written to the WAL for the first time.
    pub new_series: u64,
    /// Exact duplicates (same timestamp, same value bits) dropped silently.
    pub exact_duplicates: u64,
    /// Rejected: a different value at an existing timestamp.
    pub duplicates: u64,
    /// Rejected: older than the series' last sample or the head's minimum valid time.
    pub out_of_order: u64,
    /// Rejected: the series was dropped from the head between append and commit.
    pub unknown_series: u64,
}

impl CommitStats {
    /// Samples not stored for a reason the sender should hear about (not exact duplicates).
    pub fn rejected(&self) -> u64 {
        self.duplicates + self.out_of_order + self.unknown_series
    }
}

impl Appender {
    pub(super) fn new(head: Arc<Head>) -> Appender {
        Appender {
            head,
            pending: Vec::new(),
            sealed: Vec::new(),
        }
    }

    /// Buffers a sample of the series with `labels`, creating the series if it is new.
    /// Returns the series' ref: cache it and use [`append_ref`](Self::append_ref) next time.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        let id = self.head.get_or_create(labels)?;
        self.push(id, t, v);
        Ok(SeriesRef::from_id(id))
    }

    /// Buffers a sample of the series `series_ref` names. Fails with
    /// [`Error::UnknownSeriesRef`] if the head dropped that series: append by labels again.
    pub fn append_ref(&mut self, series_ref: SeriesRef, t: i64, v: f64) -> Result<()> {
        let id = series_ref
            .id()
            .filter(|&id| self.head.read().get(id).is_some())
            .ok_or(Error::UnknownSeriesRef {
                series_ref: series_ref.get(),
            })?;
        self.push(id, t, v);
        Ok(())
    }

    fn push(&mut self, id: u32, t: i64, v: f64) {
        self.pending.push(Pending {
            id,
            verdict: None,
            t,
            v,
        });
    }

    /// Samples buffered.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops the buffered samples.
    pub fn rollback(&mut self) {
        self.pending.clear();
    }

    /// Validates the batch, writes it to the WAL (fsynced before returning when `wal_sync`
    /// is zero), and stores the accepted samples in memory.
    ///
    /// An `Err` means the WAL write or fsync failed: nothing of the batch was stored, and the
    /// caller should answer with a server error (the batch may be retried; exact duplicates of
    /// what did get through are dropped silently). The appender is empty afterwards either way.
    pub fn commit(&mut self) -> Result<CommitStats> {
        let result = self.commit_inner();
        self.pending.clear();
        result
    }

    fn commit_inner(&mut self) -> Result<CommitStats> {
        let head = &*self.head;
        let mut stats = CommitStats::default();
        if self.pending.is_empty() {
            return Ok(stats);
        }
        let mut wal = lock(&head.wal);
        let wal = &mut *wal;
        let min_valid = head.min_valid_time();
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);

        // 1. Validate in batch order and build the WAL records.
        let mut series_buf = mem::take(&mut wal.series_buf);
        let mut samples_buf = mem::take(&mut wal.samples_buf);
        series_buf.clear();
        samples_buf.clear();
        wal.newly_logged.clear();
        {
            let state = head.read();
            for p in &mut self.pending {
                let Some(series) = state.get(p.id) else {
                    stats.unknown_series += 1;
                    continue;
                };
                let mut data = lock(&series.data);
                let verdict = data.validate(p.t, p.v.to_bits(), min_valid);
                drop(data);
                p.verdict = Some(verdict);
                match verdict {
                    Verdict::Accepted => {}
                    Verdict::ExactDuplicate => {
                        stats.exact_duplicates += 1;
                        continue;
                    }
                    Verdict::Duplicate => {
                        stats.duplicates += 1;
                        continue;
                    }
                    Verdict::OutOfOrder => {
                        stats.out_of_order += 1;
                        continue;
                    }
                }
                // A plain load first: the series is almost always logged already, and the
                // swap's read-modify-write would cost every sample.
                if !series.logged.load(Ordering::Relaxed)
                    && !series.logged.swap(true, Ordering::Relaxed)
                {
                    wal.newly_logged.push(p.id);
                    series_buf.push(RefSeries {
                        series_ref: u64::from(p.id),
                        labels: series
                            .labels
                            .iter()
                            .map(|&(n, v)| {
                                (
                                    state.symbols.get(n).to_owned(),
                                    state.symbols.get(v).to_owned(),
                                )
                            })
                            .collect(),
                    });
                }
                samples_buf.push(RefSample {
                    series_ref: u64::from(p.id),
                    timestamp: p.t,
                    value: p.v,
                });
                min_t = min_t.min(p.t);
                max_t = max_t.max(p.t);
            }
        }
        stats.new_series = series_buf.len() as u64;

        // 2. The WAL: series first, then samples; the vectors go back to the buffers.
        let mut written = Ok(());
        let mut series_record = Record::Series(series_buf);
        if stats.new_series > 0 {
            written = wal.writer.append(&series_record);
        }
        let mut samples_record = Record::Samples(samples_buf);
        if written.is_ok() && !matches!(&samples_record, Record::Samples(s) if s.is_empty()) {
            written = wal.writer.append(&samples_record);
            if written.is_ok() {
                let seq = wal.writer.segment();
                let entry = wal.segment_max_t.entry(seq).or_insert(i64::MIN);
                *entry = (*entry).max(max_t);
            }
        }
        if written.is_ok() {
            written = if wal.every_batch {
                let started = Instant::now();
                let synced = wal.writer.sync();
                head.metrics
                    .wal_fsync_duration
                    .observe(started.elapsed().as_secs_f64());
                synced
            } else {
                head.sync_if_due_locked(wal).map(|_| ())
            };
        }
        if let Record::Series(buf) = &mut series_record {
            wal.series_buf = mem::take(buf);
        }
        if let Record::Samples(buf) = &mut samples_record {
            wal.samples_buf = mem::take(buf);
        }
        if let Err(e) = written {
            self.undo(&wal.newly_logged);
            return Err(e);
        }

        // 3. Memory.
        let chunk_range = head.options.chunk_range;
        let state = head.read();
        for p in &self.pending {
            if p.verdict != Some(Verdict::Accepted) {
                continue;
            }
            if let Some(series) = state.get(p.id) {
                let appended = lock(&series.data).append(p.t, p.v, chunk_range, p.id);
                stats.appended += u64::from(appended.stored);
                if appended.sealed {
                    self.sealed.push(p.id);
                }
            }
        }
        if !self.sealed.is_empty() {
            state.write_sealed_chunks(&mut lock(&head.chunk_files), self.sealed.drain(..));
        }
        head.min_time.fetch_min(min_t, Ordering::Relaxed);
        drop(state);
        head.metrics.samples_appended.inc_by(stats.appended);
        head.metrics.out_of_order.inc_by(stats.out_of_order);
        head.metrics.duplicate.inc_by(stats.duplicates);
        Ok(stats)
    }

    /// Puts back the series' last samples (their newest stored ones: nothing of the batch
    /// was stored) and WAL flags after a failed WAL write.
    fn undo(&self, newly_logged: &[u32]) {
        let state = self.head.read();
        let mut files = self.head.chunk_registry.reader();
        for p in &self.pending {
            if p.verdict == Some(Verdict::Accepted)
                && let Some(series) = state.get(p.id)
            {
                let mut data = lock(&series.data);
                data.last = data.newest_stored(&mut files).into();
            }
        }
        for &id in newly_logged {
            if let Some(series) = state.get(id) {
                series.logged.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// The head as appenders see it through the storage interfaces (the scraper, the remote-write
/// receiver).
impl storage::Appendable for Arc<Head> {
    fn appender(&self) -> Box<dyn storage::Appender + '_> {
        Box::new(Head::appender(self))
    }
}

impl storage::Appender for Appender {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<storage::SeriesRef> {
        Appender::append(self, labels, t, v).map(SeriesRef::get)
    }

    fn append_ref(&mut self, series: storage::SeriesRef, t: i64, v: f64) -> Result<()> {
        Appender::append_ref(self, SeriesRef(series), t, v)
    }

    fn commit(mut self: Box<Self>) -> Result<storage::CommitSummary> {
        let stats = Appender::commit(&mut self)?;
        Ok(storage::CommitSummary {
            appended: stats.appended,
            out_of_order: stats.out_of_order,
            duplicate: stats.duplicates,
        })
    }
}

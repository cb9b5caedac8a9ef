//! The storage interfaces, as Prometheus's `storage` package has them: writers append through
//! [`Appendable`] (the scraper and the remote-write receiver), readers see [`Querier`]
//! whoever stores the data — the head, the blocks, or a merge of both. PromQL evaluates
//! against [`Querier`] only, so the engine never names a WAL segment or a RocksDB key, and
//! tests on either side can use a store in memory.

use std::sync::Arc;

use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;

use crate::Result;
use crate::chunk::{ColumnarIter, ColumnarPiece, DiskChunk, XorChunk, XorIter};

/// A handle to a series, returned by [`Appender::append`], that appends to the same series
/// again without looking its labels up.
pub type SeriesRef = u64;

/// What one committed batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitSummary {
    /// Samples stored.
    pub appended: u64,
    /// Samples older than the newest of their series, rejected.
    pub out_of_order: u64,
    /// Samples at an existing timestamp with a different value, rejected.
    pub duplicate: u64,
}

/// A batch of samples being appended; nothing is visible or durable before [`commit`].
///
/// [`commit`]: Appender::commit
pub trait Appender {
    /// Adds a sample of the series `labels`, creating the series if it is new; returns its
    /// reference for later [`Appender::append_ref`] calls.
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef>;

    /// Adds a sample to a series by reference, without hashing or copying labels; fails for
    /// a reference the store no longer knows (the caller then appends by labels).
    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<()>;

    /// Makes the batch durable (per the WAL sync policy) and visible to queries.
    fn commit(self: Box<Self>) -> Result<CommitSummary>;
}

/// A store samples can be appended to.
pub trait Appendable: Send + Sync {
    /// A new, empty batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// A chunk and the time range of its samples (milliseconds, inclusive).
#[derive(Debug, Clone)]
pub struct ChunkMeta {
    /// Timestamp of the first sample.
    pub min_time: i64,
    /// Timestamp of the last sample.
    pub max_time: i64,
    /// The samples; shared so that a query does not copy them.
    pub chunk: ChunkData,
}

/// The samples of a chunk in the form the store holds them, so that a read hands them on
/// without converting: the head's compressed XOR chunks (in memory, or completed and written
/// to its chunk files, read when iterated), pieces of a block's columnar value, or samples
/// already decoded (an import's).
#[derive(Debug, Clone)]
pub enum ChunkData {
    /// A Prometheus XOR chunk (its bytes are shared).
    Xor(XorChunk),
    /// A Prometheus XOR chunk in one of the head's chunk files.
    Disk(DiskChunk),
    /// Part of a block's columnar value, decoded as it is iterated (boxed: a query holds a
    /// [`ChunkMeta`] per chunk it reads, which this keeps at 40 bytes).
    Columnar(Box<ColumnarPiece>),
    /// Decoded samples, timestamps strictly increasing.
    Decoded(Arc<Vec<(i64, f64)>>),
}

const _: () = assert!(std::mem::size_of::<ChunkMeta>() <= 40);

impl ChunkData {
    /// The samples in time order.
    pub fn iter(&self) -> ChunkIter<'_> {
        match self {
            ChunkData::Xor(chunk) => ChunkIter::Xor(chunk.iter()),
            ChunkData::Disk(chunk) => ChunkIter::Read(chunk.samples().into_iter()),
            ChunkData::Columnar(piece) => ChunkIter::Columnar(piece.iter()),
            ChunkData::Decoded(samples) => ChunkIter::Decoded(samples.iter()),
        }
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        match self {
            ChunkData::Xor(chunk) => chunk.num_samples(),
            ChunkData::Disk(chunk) => chunk.num_samples(),
            ChunkData::Columnar(piece) => piece.num_samples(),
            ChunkData::Decoded(samples) => samples.len(),
        }
    }

    /// The XOR chunk's bytes, when the samples are held as one in memory (see
    /// [`ChunkData::loaded`]).
    pub fn xor_bytes(&self) -> Option<&[u8]> {
        match self {
            ChunkData::Xor(chunk) => Some(chunk.bytes()),
            ChunkData::Disk(_) | ChunkData::Columnar(_) | ChunkData::Decoded(_) => None,
        }
    }

    /// The chunk with its bytes in memory: a chunk on disk is read (failing on an IO error,
    /// unlike [`ChunkData::iter`], which cannot fail); the others are shared.
    pub fn loaded(&self) -> Result<ChunkData> {
        match self {
            ChunkData::Disk(chunk) => Ok(ChunkData::Xor(chunk.read()?)),
            other => Ok(other.clone()),
        }
    }
}

impl From<XorChunk> for ChunkData {
    fn from(chunk: XorChunk) -> Self {
        ChunkData::Xor(chunk)
    }
}

impl<'a> IntoIterator for &'a ChunkData {
    type Item = (i64, f64);
    type IntoIter = ChunkIter<'a>;
    fn into_iter(self) -> ChunkIter<'a> {
        self.iter()
    }
}

/// Iterator over the samples of a [`ChunkData`].
#[derive(Debug)]
pub enum ChunkIter<'a> {
    /// Decoding an XOR chunk in memory.
    Xor(XorIter<'a>),
    /// Walking the samples of a chunk read from disk.
    Read(std::vec::IntoIter<(i64, f64)>),
    /// Decoding a piece of a columnar value.
    Columnar(ColumnarIter<'a>),
    /// Walking decoded samples.
    Decoded(std::slice::Iter<'a, (i64, f64)>),
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        match self {
            ChunkIter::Xor(iter) => iter.next(),
            ChunkIter::Read(iter) => iter.next(),
            ChunkIter::Columnar(iter) => iter.next(),
            ChunkIter::Decoded(iter) => iter.next().copied(),
        }
    }
}

/// One series and its chunks that overlap a queried time range.
#[derive(Debug, Clone)]
pub struct SeriesChunks {
    /// The series' labels, metric name included.
    pub labels: Labels,
    /// Chunks sorted by `min_time`, not overlapping each other.
    pub chunks: Vec<ChunkMeta>,
}

impl SeriesChunks {
    /// The samples with `mint <= t <= maxt`, in time order.
    pub fn samples(&self, mint: i64, maxt: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.chunks
            .iter()
            .filter(move |meta| meta.max_time >= mint && meta.min_time <= maxt)
            .flat_map(|meta| meta.chunk.iter())
            .filter(move |(t, _)| (mint..=maxt).contains(t))
    }
}

/// Read access to stored series over a time range `[mint, maxt]` in milliseconds.
pub trait Querier: Send + Sync {
    /// Series that match every matcher and have a sample in the range, sorted by labels.
    /// No matchers selects every series.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>>;

    /// Label names of the series `matchers` select in the range (all series when empty),
    /// sorted and unique.
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>>;

    /// Values of label `name` among the series `matchers` select in the range, sorted and
    /// unique.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>>;
}

/// A shared store reads like the store itself.
impl<T: Querier + ?Sized> Querier for Arc<T> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>> {
        (**self).select(matchers, mint, maxt)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        (**self).label_names(matchers, mint, maxt)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        (**self).label_values(name, matchers, mint, maxt)
    }
}

/// Several queriers seen as one: blocks and the head, whose time ranges may touch.
///
/// A series present in several sources has its chunk lists merged by time; a chunk that
/// overlaps one already taken (data written to a block and also replayed into the head after
/// a crash) is dropped, so every sample is returned once.
pub struct MergeQuerier {
    sources: Vec<Box<dyn Querier>>,
}

impl MergeQuerier {
    /// Merges `sources`; earlier sources win where chunks overlap.
    pub fn new(sources: Vec<Box<dyn Querier>>) -> MergeQuerier {
        MergeQuerier { sources }
    }
}

impl Querier for MergeQuerier {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>> {
        let mut merged: Vec<SeriesChunks> = Vec::new();
        for source in &self.sources {
            merged.extend(source.select(matchers, mint, maxt)?);
        }
        // Stable sort keeps source order among equal labels, so earlier sources win below.
        merged.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out: Vec<SeriesChunks> = Vec::with_capacity(merged.len());
        for series in merged {
            match out.last_mut() {
                Some(last) if last.labels == series.labels => last.chunks.extend(series.chunks),
                _ => out.push(series),
            }
        }
        for series in &mut out {
            drop_overlapping(&mut series.chunks);
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        self.union(|source| source.label_names(matchers, mint, maxt))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        self.union(|source| source.label_values(name, matchers, mint, maxt))
    }
}

impl MergeQuerier {
    /// The sorted, unique union of what `list` returns for each source.
    fn union(&self, list: impl Fn(&dyn Querier) -> Result<Vec<String>>) -> Result<Vec<String>> {
        let mut all = Vec::new();
        for source in &self.sources {
            all.extend(list(source.as_ref())?);
        }
        all.sort();
        all.dedup();
        Ok(all)
    }
}

/// Sorts chunks by time and drops each chunk that overlaps one kept before it; on equal start
/// times the chunk listed first is kept.
fn drop_overlapping(chunks: &mut Vec<ChunkMeta>) {
    chunks.sort_by_key(|meta| meta.min_time);
    let mut kept_until = i64::MIN;
    let mut first = true;
    chunks.retain(|meta| {
        let keep = first || meta.min_time > kept_until;
        if keep {
            kept_until = meta.max_time;
            first = false;
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::XorAppender;

    fn chunk(samples: &[(i64, f64)]) -> ChunkMeta {
        let mut appender = XorAppender::new();
        for &(t, v) in samples {
            appender.append(t, v).unwrap();
        }
        ChunkMeta {
            min_time: samples[0].0,
            max_time: samples[samples.len() - 1].0,
            chunk: appender.finish().into(),
        }
    }

    struct Fixed(Vec<SeriesChunks>);

    impl Querier for Fixed {
        fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<SeriesChunks>> {
            Ok(self.0.clone())
        }
        fn label_names(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
            Ok(self
                .0
                .iter()
                .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
                .collect())
        }
        fn label_values(&self, name: &str, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
            Ok(self
                .0
                .iter()
                .filter_map(|s| s.labels.get(name).map(str::to_owned))
                .collect())
        }
    }

    fn series(job: &str, chunks: Vec<ChunkMeta>) -> SeriesChunks {
        SeriesChunks {
            labels: Labels::from_pairs([("__name__", "up"), ("job", job)]),
            chunks,
        }
    }

    #[test]
    fn merge_joins_series_and_drops_replayed_overlap() {
        let blocks = Fixed(vec![series("a", vec![chunk(&[(0, 1.0), (10, 2.0)])])]);
        let head = Fixed(vec![
            series(
                "a",
                vec![chunk(&[(10, 2.0)]), chunk(&[(20, 3.0), (30, 4.0)])],
            ),
            series("b", vec![chunk(&[(5, 9.0)])]),
        ]);
        let merged = MergeQuerier::new(vec![Box::new(blocks), Box::new(head)]);
        let result = merged.select(&[], 0, 100).unwrap();
        assert_eq!(result.len(), 2);
        let a: Vec<(i64, f64)> = result[0].samples(0, 100).collect();
        assert_eq!(a, [(0, 1.0), (10, 2.0), (20, 3.0), (30, 4.0)]);
        assert_eq!(result[0].samples(10, 20).count(), 2, "range is inclusive");
        assert_eq!(result[1].labels.get("job"), Some("b"));
        assert_eq!(merged.label_values("job", &[], 0, 100).unwrap(), ["a", "b"]);
        assert_eq!(
            merged.label_names(&[], 0, 100).unwrap(),
            ["__name__", "job"]
        );
    }
}

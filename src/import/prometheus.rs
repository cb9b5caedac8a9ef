//! `sightline import prometheus --url URL [--since 7d] [--match SELECTOR]`: copies a
//! Prometheus's history into `<data>/metrics/blocks` through its remote-read API
//! (`POST /api/v1/read`, snappy `prometheus.ReadRequest`). Streamed XOR chunks are asked for
//! first (Prometheus ≥ 2.13 answers with them: frames of a uvarint length, a big-endian
//! CRC-32C and a `prometheus.ChunkedReadResponse`, whose chunks are Prometheus XOR chunks
//! that Sightline's own chunk decoder reads); a source that only has sample responses
//! answers with a snappy `prometheus.ReadResponse`, read as well.
//!
//! Decisions:
//! - The window `[now - since, now)` is cut at 2 h boundaries (the block range), and each
//!   range is written as one block. The window and how far the import got are kept in
//!   `<data>/import/prometheus-<hash>.json` ([`Progress`]), so an interrupted import
//!   resumes at the first range not written.
//! - A range that the source refuses as too big (its `--storage.remote.read-sample-limit`,
//!   50 M samples by default) is asked for in halves, down to a minute.
//! - Nothing is counted twice: a range written just before an interruption is written again
//!   on resume, and the two blocks' chunks overlap exactly, which queries read once.
//! - Native histograms are not imported (Sightline stores floats), and counted.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use prost::Message as _;
use sightline_core::labels::Labels;
use sightline_core::matcher::MatchOp;
use sightline_core::selector::SeriesSelector;
use sightline_scraper::remote_write::prompb;
use sightline_tsdb::block::BlockStore;
use sightline_tsdb::chunk::XorChunk;
use sightline_tsdb::storage::{ChunkData, ChunkMeta};

use super::progress::Progress;

/// The block range ranges are cut at.
const RANGE_MS: i64 = 2 * 3_600_000;
/// The smallest range asked for when the source refuses bigger ones.
const MIN_REQUEST_MS: i64 = 60_000;
/// Samples per chunk, as the head cuts them.
const SAMPLES_PER_CHUNK: usize = 120;

/// What the command line asks for.
pub struct Request {
    /// The Prometheus's base URL.
    pub url: url::Url,
    /// Which series.
    pub selector: SeriesSelector,
    /// How far back from now.
    pub since: std::time::Duration,
}

/// What one run found.
#[derive(Default)]
struct Tally {
    series: HashSet<u64>,
    histograms: u64,
}

/// Imports into `data_dir`; returns the summary.
pub async fn import(
    client: &reqwest::Client,
    request: &Request,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let since = i64::try_from(request.since.as_millis()).unwrap_or(i64::MAX);
    let mut progress = Progress::resume(
        data_dir,
        "prometheus",
        request.url.as_str(),
        &request.selector.to_string(),
        super::unix_ms(),
        since,
    )?;
    let blocks_dir = data_dir.join("metrics").join("blocks");
    let blocks = tokio::task::spawn_blocking(move || BlockStore::open(&blocks_dir))
        .await?
        .context("cannot open the metric block store")?;
    let blocks = Arc::new(blocks);
    let endpoint = request.url.join("api/v1/read")?;
    let mut tally = Tally::default();
    while progress.done_before < progress.end {
        let from = progress.done_before;
        let until = (from.div_euclid(RANGE_MS) + 1)
            .saturating_mul(RANGE_MS)
            .min(progress.end);
        let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        read_range(
            client,
            &endpoint,
            request,
            from,
            until,
            &mut series,
            &mut tally,
        )
        .await?;
        let samples = write_block(&blocks, from, until, series, &mut tally).await?;
        let detail = format!(
            "{} series  {} samples",
            tally.series.len(),
            progress.copied + samples
        );
        progress.advance(until, samples, &detail)?;
    }
    let mut summary = format!(
        "imported {} samples from {} ({} samples of {} series in this run{})",
        progress.copied,
        request.url,
        progress.copied_now(),
        tally.series.len(),
        if progress.resumed() { ", resumed" } else { "" }
    );
    if tally.histograms > 0 {
        summary.push_str(&format!(
            "; {} native histogram samples or chunks left out (Sightline stores floats)",
            tally.histograms
        ));
    }
    Ok(summary)
}

/// Reads `[from, until)` into `series`, in halves while the source refuses the range.
async fn read_range(
    client: &reqwest::Client,
    endpoint: &url::Url,
    request: &Request,
    from: i64,
    until: i64,
    series: &mut BTreeMap<Labels, Vec<(i64, f64)>>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut pending = vec![(from, until)];
    while let Some((from, until)) = pending.pop() {
        match read(client, endpoint, request, from, until).await? {
            Read::Series(found) => {
                for one in found {
                    let labels = Labels::from_pairs(
                        one.labels
                            .iter()
                            .map(|l| (l.name.as_str(), l.value.as_str())),
                    );
                    tally.histograms += one.histograms;
                    series.entry(labels).or_default().extend(one.samples);
                }
            }
            Read::TooBig(reason) if until - from > MIN_REQUEST_MS => {
                let middle = from + (until - from) / 2;
                // Popped last first: the earlier half is read first.
                pending.push((middle, until));
                pending.push((from, middle));
                tracing::debug!("range too big ({reason}), asking for halves");
            }
            Read::TooBig(reason) => {
                anyhow::bail!("the source refuses even a minute of these series: {reason}")
            }
        }
    }
    Ok(())
}

/// What one remote-read request gave.
enum Read {
    Series(Vec<Series>),
    /// The source refused the range as too big; its reason.
    TooBig(String),
}

/// One remote-read request for `[from, until)`.
async fn read(
    client: &reqwest::Client,
    endpoint: &url::Url,
    request: &Request,
    from: i64,
    until: i64,
) -> anyhow::Result<Read> {
    let query = prompb::ReadRequest {
        queries: vec![prompb::Query {
            start_timestamp_ms: from,
            end_timestamp_ms: until - 1,
            matchers: request
                .selector
                .matchers()
                .iter()
                .map(|m| prompb::LabelMatcher {
                    r#type: match m.op() {
                        MatchOp::Equal => 0,
                        MatchOp::NotEqual => 1,
                        MatchOp::Regex => 2,
                        MatchOp::NotRegex => 3,
                    },
                    name: m.name().to_owned(),
                    value: m.value().to_owned(),
                })
                .collect(),
        }],
        // Streamed XOR chunks, else samples.
        accepted_response_types: vec![1, 0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&query.encode_to_vec())
        .context("cannot compress the read request")?;
    let response = client
        .post(endpoint.clone())
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .with_context(|| format!("{endpoint}: request failed"))?;
    let status = response.status();
    let streamed = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-streamed-protobuf"));
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {endpoint}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        if text.contains("limit") {
            return Ok(Read::TooBig(text));
        }
        anyhow::bail!("{endpoint} answered {status}: {text}");
    }
    let series = if streamed {
        streamed_series(&bytes).with_context(|| format!("{endpoint}: a streamed answer"))?
    } else {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&bytes)
            .with_context(|| format!("{endpoint} did not answer a snappy body"))?;
        let answer = prompb::ReadResponse::decode(raw.as_slice())
            .with_context(|| format!("{endpoint} did not answer a prometheus.ReadResponse"))?;
        answer
            .results
            .into_iter()
            .flat_map(|result| result.timeseries)
            .map(|series| Series {
                samples: series
                    .samples
                    .iter()
                    .map(|s| (s.timestamp, s.value))
                    .collect(),
                histograms: series.histograms.len() as u64,
                labels: series.labels,
            })
            .collect()
    };
    Ok(Read::Series(series))
}

/// A series of an answer: its labels and samples, and the histogram samples left out.
struct Series {
    labels: Vec<prompb::Label>,
    samples: Vec<(i64, f64)>,
    histograms: u64,
}

/// The series of a streamed answer: frames of `uvarint length | CRC-32C (big-endian) |
/// ChunkedReadResponse`, whose XOR chunks are decoded; chunks of other encodings
/// (histograms) are counted.
fn streamed_series(mut body: &[u8]) -> anyhow::Result<Vec<Series>> {
    let mut series = Vec::new();
    while !body.is_empty() {
        let length = prost::encoding::decode_varint(&mut body).context("a frame length")?;
        let length = usize::try_from(length).context("a frame length")?;
        let Some((crc, rest)) = body.split_first_chunk::<4>() else {
            anyhow::bail!("a frame cut short");
        };
        let Some((frame, rest)) = rest.split_at_checked(length) else {
            anyhow::bail!("a frame cut short");
        };
        if crc32c::crc32c(frame) != u32::from_be_bytes(*crc) {
            anyhow::bail!("a frame's checksum does not match");
        }
        body = rest;
        let response = prompb::ChunkedReadResponse::decode(frame)
            .context("a frame is not a prometheus.ChunkedReadResponse")?;
        for chunked in response.chunked_series {
            let mut one = Series {
                labels: chunked.labels,
                samples: Vec::new(),
                histograms: 0,
            };
            for chunk in chunked.chunks {
                if chunk.r#type != 1 {
                    one.histograms += 1;
                    continue;
                }
                let decoded = XorChunk::decode_counted(&chunk.data)
                    .map_err(|error| anyhow::anyhow!("an XOR chunk does not decode: {error}"))?;
                one.samples.extend(decoded);
            }
            series.push(one);
        }
    }
    Ok(series)
}

/// Writes `series` as the block `[from, until)`; returns the samples written.
async fn write_block(
    blocks: &Arc<BlockStore>,
    from: i64,
    until: i64,
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    tally: &mut Tally,
) -> anyhow::Result<u64> {
    let mut samples = 0u64;
    let mut chunked = Vec::with_capacity(series.len());
    for (labels, mut points) in series {
        points.sort_by_key(|(t, _)| *t);
        points.dedup_by_key(|(t, _)| *t);
        points.retain(|(t, _)| (from..until).contains(t));
        if points.is_empty() {
            continue;
        }
        samples += points.len() as u64;
        let mut hasher = DefaultHasher::new();
        labels.hash(&mut hasher);
        tally.series.insert(hasher.finish());
        let chunks: Vec<ChunkMeta> = points
            .chunks(SAMPLES_PER_CHUNK)
            .map(|part| ChunkMeta {
                min_time: part[0].0,
                max_time: part[part.len() - 1].0,
                chunk: ChunkData::Decoded(Arc::new(part.to_vec())),
            })
            .collect();
        chunked.push((labels, chunks));
    }
    if chunked.is_empty() {
        return Ok(0);
    }
    let blocks = blocks.clone();
    tokio::task::spawn_blocking(move || blocks.write_block(from, until, chunked))
        .await?
        .with_context(|| format!("cannot write the block [{from}, {until})"))?;
    Ok(samples)
}

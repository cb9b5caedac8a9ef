//! `sightline import loki --url URL [--since 7d] [--query SELECTOR]`: copies the log lines
//! of a Loki (or anything serving Loki's query API, another Sightline included) into
//! `<data>/logs`, through `GET /loki/api/v1/query_range` in forward direction.
//!
//! Decisions:
//! - The window `[now - since, now)` is fixed by the first run and kept, with how far the
//!   import got, in `<data>/import/loki-<hash>.json` ([`Progress`]), so an interrupted
//!   import resumes there with the same window.
//! - The window is read in slices of `--slice` (1 h); a slice is read in pages of
//!   `--limit` lines (Loki's `max_entries_limit_per_query` is 5,000 by default): when a page
//!   is full, the next page starts at its last timestamp, and the lines of that timestamp it
//!   already had are skipped. A timestamp holding more lines than one page is an error
//!   (lower nothing; raise the source's limit and `--limit`).
//! - Nothing is stored twice: before a page is stored, the lines the store already holds for
//!   its streams in its range are left out, so a page stored just before an interruption is
//!   not stored again on resume (Loki also keeps one copy of identical lines).
//! - Structured metadata is not asked for (without Loki's `categorize-labels` flag it comes
//!   back folded into the stream labels, which is how it is then stored).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};
use sightline_logstore::push::{Entry, PushStream};
use sightline_logstore::store::{Direction, LogStore, StoreOptions};

use super::progress::Progress;

/// What the command line asks for.
pub struct Request {
    /// The source's base URL.
    pub url: url::Url,
    /// The LogQL stream selector of the lines to copy.
    pub query: String,
    /// How far back from now.
    pub since: std::time::Duration,
    /// The time read per series of pages.
    pub slice: std::time::Duration,
    /// Lines per request.
    pub limit: usize,
}

/// `query_range`'s answer, the parts read.
#[derive(Deserialize)]
struct Answer {
    data: AnswerData,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<AnswerStream>,
}

#[derive(Deserialize)]
struct AnswerStream {
    stream: BTreeMap<String, String>,
    values: Vec<(String, String)>,
}

/// Imports into `data_dir`; returns the summary.
pub async fn import(
    client: &reqwest::Client,
    request: &Request,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let since = i64::try_from(request.since.as_nanos()).unwrap_or(i64::MAX);
    let mut progress = Progress::resume(
        data_dir,
        "loki",
        request.url.as_str(),
        &request.query,
        super::unix_ns(),
        since,
    )?;
    let store_dir = data_dir.join("logs");
    let store =
        tokio::task::spawn_blocking(move || LogStore::open(&store_dir, StoreOptions::default()))
            .await?
            .context("cannot open the log store")?;
    let endpoint = request.url.join("loki/api/v1/query_range")?;
    let slice = i64::try_from(request.slice.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut skipped = 0u64;
    while progress.done_before < progress.end {
        let from = progress.done_before;
        let until = from.saturating_add(slice).min(progress.end);
        let (stored, already) =
            import_slice(client, &endpoint, request, &store, from, until).await?;
        skipped += already;
        let detail = format!("{} lines", progress.copied + stored);
        progress.advance(until, stored, &detail)?;
    }
    store.flush().context("cannot flush the log store")?;
    Ok(format!(
        "imported {} log lines of {} from {} ({} of them in this run{}; {skipped} were already stored)",
        progress.copied,
        request.query,
        request.url,
        progress.copied_now(),
        if progress.resumed() { ", resumed" } else { "" },
    ))
}

/// Reads `[start_ns, end_ns)` page by page and stores it; returns the lines stored and
/// those left out because the store had them.
async fn import_slice(
    client: &reqwest::Client,
    endpoint: &url::Url,
    request: &Request,
    store: &LogStore,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<(u64, u64)> {
    let (mut stored, mut already) = (0, 0);
    let mut from = start_ns;
    // The lines at `from` that the previous page had.
    let mut seen_at_from: HashSet<(Labels, String)> = HashSet::new();
    loop {
        let page = fetch(client, endpoint, request, from, end_ns).await?;
        let count: usize = page.iter().map(|(_, entries)| entries.len()).sum();
        let last = page
            .iter()
            .flat_map(|(_, entries)| entries.iter().map(|e| e.timestamp_ns))
            .max();
        let mut streams = Vec::new();
        let mut at_last: HashSet<(Labels, String)> = HashSet::new();
        for (labels, entries) in page {
            let mut fresh = Vec::new();
            for entry in entries {
                let key = (labels.clone(), entry.line.clone());
                if entry.timestamp_ns == from && seen_at_from.contains(&key) {
                    continue;
                }
                if Some(entry.timestamp_ns) == last {
                    at_last.insert(key);
                }
                fresh.push(entry);
            }
            streams.push(PushStream {
                labels,
                entries: fresh,
                ..PushStream::default()
            });
        }
        let fresh: usize = streams.iter().map(|s| s.entries.len()).sum();
        let (new, old) = store_new(store, streams)?;
        stored += new;
        already += old;
        let Some(last) = last.filter(|_| count >= request.limit) else {
            return Ok((stored, already));
        };
        if fresh == 0 {
            anyhow::bail!(
                "more than {} lines at one timestamp ({last} ns): raise --limit (and the source's max_entries_limit_per_query)",
                request.limit
            );
        }
        if last != from {
            seen_at_from.clear();
        }
        seen_at_from.extend(at_last);
        from = last;
    }
}

/// One page: the streams of `[start_ns, end_ns)`, oldest lines first.
async fn fetch(
    client: &reqwest::Client,
    endpoint: &url::Url,
    request: &Request,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<Vec<(Labels, Vec<Entry>)>> {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("query", &request.query)
        .append_pair("start", &start_ns.to_string())
        .append_pair("end", &end_ns.to_string())
        .append_pair("limit", &request.limit.to_string())
        .append_pair("direction", "forward");
    let answer: Answer = super::get_json(client.get(url)).await?;
    if answer.data.result_type != "streams" {
        anyhow::bail!(
            "the query answered a {} instead of log streams: give a log query (a stream selector)",
            answer.data.result_type
        );
    }
    let mut page = Vec::new();
    for stream in answer.data.result {
        let labels =
            Labels::from_pairs(stream.stream.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let mut entries = Vec::with_capacity(stream.values.len());
        for (timestamp, line) in stream.values {
            let timestamp_ns = timestamp
                .parse::<i64>()
                .with_context(|| format!("the source sent the timestamp {timestamp:?}"))?;
            entries.push(Entry {
                timestamp_ns,
                line,
                metadata: Vec::new(),
            });
        }
        page.push((labels, entries));
    }
    Ok(page)
}

/// Stores the entries of `streams` the store does not hold yet; returns how many were
/// stored and how many it held.
fn store_new(store: &LogStore, mut streams: Vec<PushStream>) -> anyhow::Result<(u64, u64)> {
    let mut held = 0;
    for stream in &mut streams {
        let (Some(min), Some(max)) = (
            stream.entries.iter().map(|e| e.timestamp_ns).min(),
            stream.entries.iter().map(|e| e.timestamp_ns).max(),
        ) else {
            continue;
        };
        let exact: Vec<Matcher> = stream
            .labels
            .iter()
            .map(|label| Matcher::new(MatchOp::Equal, &label.name, &label.value))
            .collect::<Result<_, _>>()
            .context("a stream label does not make a matcher")?;
        let mut present = HashSet::new();
        for found in store.streams(&exact, min, max + 1)? {
            if found.labels != stream.labels {
                continue;
            }
            let page = store.entries(found.id, min, max + 1, Direction::Forward, 0)?;
            present.extend(page.entries.into_iter().map(|e| (e.timestamp_ns, e.line)));
        }
        let before = stream.entries.len();
        stream
            .entries
            .retain(|e| !present.contains(&(e.timestamp_ns, e.line.clone())));
        held += (before - stream.entries.len()) as u64;
    }
    let new: u64 = streams.iter().map(|s| s.entries.len() as u64).sum();
    store.push(&streams).context("cannot store the lines")?;
    Ok((new, held))
}

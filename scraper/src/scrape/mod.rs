//! Scraping one target: fetch, parse, label, limit, append, mark stale, report.
//!
//! Follows Prometheus's scrape loop (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config):
//! the target's labels are attached to every sample (with `honor_labels: false`, a clashing
//! exposed label is kept as `exported_<name>`), `metric_relabel_configs` run, then the limits
//! (`sample_limit`, `label_limit`, `label_name_length_limit`, `label_value_length_limit`) —
//! a scrape over a limit fails whole, as in Prometheus. Each scrape also writes `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`. A series that was in
//! the previous scrape but not in this one, and every series after a failed scrape, gets a
//! staleness marker, except series exposed with their own timestamps.
//!
//! Steady state: a series is found in the cache by the raw text of its line (`name{labels}`),
//! which maps to the storage reference (or to "dropped by relabeling"), so labels are built
//! and relabeled only the first time a series is seen.

pub mod client;
pub mod metadata;
mod series_cache;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sightline_core::config::ScrapeConfig;
use sightline_core::labels::{Labels, METRIC_NAME};
use sightline_tsdb::storage::{Appendable, Appender, SeriesRef};

use crate::exposition::{self, Entry, Format, Parser, Validation};
use crate::relabel::relabel;
use crate::target::Target;
use metadata::{MetadataRecorder, SharedMetadata};
use series_cache::{Cached, SeriesCache};

/// Prometheus's staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Why a scrape failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    /// The HTTP client could not be built (bad TLS files, unsupported setting).
    #[error("cannot set up the scrape client: {0}")]
    Client(String),
    /// A credentials file could not be read.
    #[error("cannot read credentials: {0}")]
    Credentials(String),
    /// The request did not complete in time.
    #[error("context deadline exceeded")]
    Timeout,
    /// The request failed (connection refused, reset, DNS, TLS).
    #[error("{0}")]
    Request(String),
    /// The target answered with a non-2xx status.
    #[error("server returned HTTP status {0}")]
    Status(u16),
    /// The body was larger than `body_size_limit`.
    #[error("body size limit exceeded ({0} bytes)")]
    BodySizeLimit(u64),
    /// The body did not parse.
    #[error("{0}")]
    Parse(String),
    /// More samples than `sample_limit` remained after relabeling.
    #[error("sample limit exceeded: more than {0} samples")]
    SampleLimit(u64),
    /// A series broke one of the label limits.
    #[error("{0}")]
    LabelLimit(String),
    /// Storage refused the batch.
    #[error("appending to storage failed: {0}")]
    Storage(String),
}

impl ScrapeError {
    fn from_request(error: reqwest::Error) -> ScrapeError {
        if error.is_timeout() {
            ScrapeError::Timeout
        } else {
            // reqwest's Display hides the cause; the chain names it (e.g. "Connection refused").
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            ScrapeError::Request(message)
        }
    }
}

/// What one scrape did, as the report series and the targets page show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeReport {
    /// Samples in the body.
    pub samples_scraped: u64,
    /// Samples left after `metric_relabel_configs`.
    pub samples_post_relabeling: u64,
    /// Series not seen in the previous scrape.
    pub series_added: u64,
    /// Samples storage rejected as out of order or conflicting.
    pub rejected: u64,
}

/// The outcome of the last scrape, for `/api/v1/targets`.
#[derive(Debug, Clone, Default)]
pub struct ScrapeStatus {
    /// When the last scrape started; `None` before the first.
    pub last_scrape: Option<SystemTime>,
    /// How long it took.
    pub last_duration: Duration,
    /// Its error, empty when it succeeded.
    pub last_error: String,
    /// Whether it succeeded.
    pub up: bool,
}

impl ScrapeStatus {
    /// Prometheus's target health: `unknown` before the first scrape, then `up` or `down`.
    pub fn health(&self) -> &'static str {
        match (self.last_scrape, self.up) {
            (None, _) => "unknown",
            (Some(_), true) => "up",
            (Some(_), false) => "down",
        }
    }
}

/// The names of the series every scrape writes about itself.
const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Scrapes one target into storage, keeping what it needs between scrapes.
pub struct ScrapeLoop {
    target: Target,
    target_labels: Labels,
    job: std::sync::Arc<ScrapeConfig>,
    client: std::sync::Arc<client::ScrapeClient>,
    /// Whether the next fetch keeps its connection, from the size of the last body.
    reuse: client::Reuse,
    cache: SeriesCache,
    report_refs: [Option<SeriesRef>; 5],
    metadata: MetadataRecorder,
}

impl ScrapeLoop {
    /// A loop for `target` of `job`, fetching with `client`.
    pub fn new(
        target: Target,
        job: std::sync::Arc<ScrapeConfig>,
        client: std::sync::Arc<client::ScrapeClient>,
    ) -> ScrapeLoop {
        ScrapeLoop {
            target_labels: target.labels(),
            target,
            job,
            client,
            reuse: client::Reuse::Keep,
            cache: SeriesCache::default(),
            report_refs: [None; 5],
            metadata: MetadataRecorder::default(),
        }
    }

    /// Where this loop publishes its target's metadata.
    pub fn metadata(&self) -> SharedMetadata {
        self.metadata.shared()
    }

    /// The target this loop scrapes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Scrapes once at wall-clock time `now` and appends everything to `storage`.
    pub async fn scrape(
        &mut self,
        storage: &dyn Appendable,
        now: SystemTime,
    ) -> Result<ScrapeReport, ScrapeError> {
        let started = Instant::now();
        let fetched = match self.target.url() {
            Ok(url) => {
                self.client
                    .fetch(&url, self.target.timeout().as_std(), self.reuse)
                    .await
            }
            Err(error) => Err(ScrapeError::Request(error.to_string())),
        };
        if let Ok(fetched) = &fetched {
            self.reuse = client::Reuse::after_body(fetched.body.len());
        }
        self.store(
            storage,
            now,
            started,
            fetched.as_ref().map_err(ScrapeError::clone),
        )
    }

    /// Stores the outcome of one fetch started at `now` (`started` on the monotonic clock):
    /// parses, relabels and appends the body, marks vanished series stale and writes the
    /// report series. [`scrape`](Self::scrape) is a fetch followed by this; benchmarks call
    /// it with a body in hand to measure the ingest path without HTTP.
    pub fn store(
        &mut self,
        storage: &dyn Appendable,
        now: SystemTime,
        started: Instant,
        fetched: Result<&client::Fetched, ScrapeError>,
    ) -> Result<ScrapeReport, ScrapeError> {
        let timestamp = unix_millis(now);
        let mut appender = storage.appender();
        let result = fetched.and_then(|fetched| {
            // A target that names no usable Content-Type is read as the text format, as
            // Prometheus 2 did (Prometheus 3 needs `fallback_scrape_protocol` for that).
            let format = exposition::negotiate(
                fetched.content_type.as_deref(),
                Some(Format::PrometheusText),
            )
            .map_or(Format::PrometheusText, |negotiated| negotiated.format);
            let body = std::str::from_utf8(&fetched.body)
                .map_err(|error| ScrapeError::Parse(format!("body is not UTF-8: {error}")))?;
            self.append_body(body, format, timestamp, appender.as_mut())
        });
        // A failed scrape stores none of its samples: its batch is replaced by a fresh one
        // holding only staleness markers and the report series.
        if result.is_err() {
            appender = storage.appender();
            self.cache.mark_all_unseen();
        }
        self.append_stale_markers(appender.as_mut(), timestamp);
        let report = result.clone().unwrap_or_default();
        self.append_report(
            appender.as_mut(),
            timestamp,
            &report,
            result.is_ok(),
            started.elapsed(),
        )?;
        let summary = appender
            .commit()
            .map_err(|error| ScrapeError::Storage(error.to_string()))?;
        result.map(|report| ScrapeReport {
            rejected: summary.out_of_order + summary.duplicate,
            ..report
        })
    }

    /// Writes staleness markers for every series of the last scrape, when the target goes.
    pub fn append_stale_on_stop(
        &mut self,
        storage: &dyn Appendable,
        now: SystemTime,
    ) -> Result<(), ScrapeError> {
        let mut appender = storage.appender();
        self.cache.mark_all_unseen();
        let timestamp = unix_millis(now);
        self.append_stale_markers(appender.as_mut(), timestamp);
        for series in self.report_refs.iter().flatten() {
            // A reference the store has forgotten has nothing to mark stale.
            let _ = appender.append_ref(*series, timestamp, f64::from_bits(STALE_NAN));
        }
        appender
            .commit()
            .map(|_| ())
            .map_err(|error| ScrapeError::Storage(error.to_string()))
    }

    /// Parses `body` and appends its samples at `timestamp` (unless they carry their own).
    fn append_body(
        &mut self,
        body: &str,
        format: Format,
        timestamp: i64,
        appender: &mut dyn Appender,
    ) -> Result<ScrapeReport, ScrapeError> {
        let mut report = ScrapeReport::default();
        // Prometheus's own checks, not the OpenMetrics suite's strictest: real client libraries
        // expose what strict validation rejects (negative summary quantiles, for one).
        let mut parser = Parser::new(body, format).validation(Validation::Prometheus);
        let sample_limit = self.job.sample_limit;
        self.cache.begin_scrape(format);
        self.metadata.begin_scrape();
        loop {
            // The key of a line whose label set the parser skipped, the cache knowing its text.
            let mut known_key = None;
            let entry = match self.cache.expected_len() {
                Some(len) => {
                    let cache = &self.cache;
                    parser.next_entry_known(len, &mut |series| {
                        let key = cache.key(series);
                        let expected = cache.is_expected(&key);
                        known_key = expected.then_some(key);
                        expected
                    })
                }
                None => parser.next_entry(),
            };
            let Some(entry) = entry else { break };
            let sample = match entry.map_err(|error| ScrapeError::Parse(error.to_string()))? {
                Entry::Sample(sample) => sample,
                Entry::Type {
                    family,
                    metric_type,
                } => {
                    self.metadata.set_type(family, metric_type);
                    continue;
                }
                Entry::Help { family, help } => {
                    self.metadata.set_help(family, help);
                    continue;
                }
                Entry::Unit { family, unit } => {
                    self.metadata.set_unit(family, unit);
                    continue;
                }
            };
            report.samples_scraped += 1;
            let explicit = self.job.honor_timestamps && sample.timestamp_ms.is_some();
            let t = if explicit {
                sample.timestamp_ms.unwrap_or(timestamp)
            } else {
                timestamp
            };
            let cached = match known_key {
                Some(key) => self.cache.lookup_key(key, explicit),
                None => self.cache.lookup(sample.series, explicit),
            };
            let series = match cached {
                Some(Cached::Dropped) => continue,
                Some(Cached::Stored(series)) => Some(series),
                None => None,
            };
            report.samples_post_relabeling += 1;
            if sample_limit > 0 && report.samples_post_relabeling > sample_limit {
                return Err(ScrapeError::SampleLimit(sample_limit));
            }
            if let Some(series) = series
                && appender.append_ref(series, t, sample.value).is_ok()
            {
                continue;
            }
            let labels = if known_key.is_some() {
                // A known series whose reference the store no longer has: its labels were
                // not parsed.
                self.reparsed_series_labels(sample.series, format)?
            } else {
                self.series_labels(sample.name, sample.labels)
            };
            let Some(labels) = relabel(&labels, &self.job.metric_relabel_configs) else {
                report.samples_post_relabeling -= 1;
                self.cache.insert(sample.series, Cached::Dropped, explicit);
                continue;
            };
            self.check_label_limits(&labels)?;
            let series = appender
                .append(&labels, t, sample.value)
                .map_err(|error| ScrapeError::Storage(error.to_string()))?;
            if self
                .cache
                .insert(sample.series, Cached::Stored(series), explicit)
            {
                report.series_added += 1;
            }
        }
        self.metadata.end_scrape();
        Ok(report)
    }

    /// The labels of a series text the parser skipped (see [`SeriesCache::expected_len`]),
    /// parsed on their own.
    fn reparsed_series_labels(&self, series: &str, format: Format) -> Result<Labels, ScrapeError> {
        let line = format!("{series} 0\n");
        let mut parser = Parser::new(&line, format).validation(Validation::Prometheus);
        match parser.next_entry() {
            Some(Ok(Entry::Sample(sample))) => Ok(self.series_labels(sample.name, sample.labels)),
            Some(Err(error)) => Err(ScrapeError::Parse(error.to_string())),
            _ => Err(ScrapeError::Parse(format!(
                "cannot parse the series {series} again"
            ))),
        }
    }

    /// The exposed labels with the target's attached, as `honor_labels` says.
    fn series_labels(&self, name: &str, exposed: exposition::Labels<'_>) -> Labels {
        let mut labels = Labels::from_pairs(exposed.iter().map(|l| (l.name, l.value)));
        labels.set(METRIC_NAME, name);
        for label in &self.target_labels {
            match labels.get(&label.name) {
                Some(_) if self.job.honor_labels => {}
                Some(existing) => {
                    let existing = existing.to_owned();
                    labels.set(&format!("exported_{}", label.name), &existing);
                    labels.set(&label.name, &label.value);
                }
                None => labels.set(&label.name, &label.value),
            }
        }
        labels
    }

    fn check_label_limits(&self, labels: &Labels) -> Result<(), ScrapeError> {
        let job = &self.job;
        if job.label_limit > 0 && labels.len() as u64 > job.label_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                labels.metric_name().unwrap_or(""),
                labels.len(),
                job.label_limit
            )));
        }
        for label in labels {
            if job.label_name_length_limit > 0
                && label.name.len() as u64 > job.label_name_length_limit
            {
                return Err(ScrapeError::LabelLimit(format!(
                    "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                    labels.metric_name().unwrap_or(""),
                    label.name,
                    label.name.len(),
                    job.label_name_length_limit
                )));
            }
            if job.label_value_length_limit > 0
                && label.value.len() as u64 > job.label_value_length_limit
            {
                return Err(ScrapeError::LabelLimit(format!(
                    "label_value_length_limit exceeded (metric: {}, label name: {}, value length: {}, limit: {})",
                    labels.metric_name().unwrap_or(""),
                    label.name,
                    label.value.len(),
                    job.label_value_length_limit
                )));
            }
        }
        Ok(())
    }

    /// Staleness markers for series of the previous scrape that this one did not see.
    fn append_stale_markers(&mut self, appender: &mut dyn Appender, timestamp: i64) {
        for series in self.cache.end_scrape() {
            // The store may have dropped the series already; then nothing is to be marked.
            let _ = appender.append_ref(series, timestamp, f64::from_bits(STALE_NAN));
        }
    }

    fn append_report(
        &mut self,
        appender: &mut dyn Appender,
        timestamp: i64,
        report: &ScrapeReport,
        up: bool,
        duration: Duration,
    ) -> Result<(), ScrapeError> {
        let values = [
            if up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            report.samples_scraped as f64,
            report.samples_post_relabeling as f64,
            report.series_added as f64,
        ];
        for ((name, value), series) in REPORT_SERIES
            .iter()
            .zip(values)
            .zip(self.report_refs.iter_mut())
        {
            if let Some(known) = *series
                && appender.append_ref(known, timestamp, value).is_ok()
            {
                continue;
            }
            let mut labels = self.target_labels.clone();
            labels.set(METRIC_NAME, name);
            let stored = appender
                .append(&labels, timestamp, value)
                .map_err(|error| ScrapeError::Storage(error.to_string()))?;
            *series = Some(stored);
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

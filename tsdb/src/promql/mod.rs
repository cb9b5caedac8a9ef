//! The PromQL engine: instant and range queries over a [`Querier`], in Prometheus's float
//! semantics (Prometheus 3.x, `promql/engine.go` and `promql/functions.go`;
//! <https://prometheus.io/docs/prometheus/latest/querying/basics/>).
//!
//! Layout: [`parser`] adapts the `promql-parser` crate; `eval` walks the AST one evaluation
//! timestamp at a time (a range query is the instant evaluation at every step, after each
//! selector's chunks were fetched once for the whole range and each chunk is decoded once, as
//! windows slide forward over a per-series buffer). As in Prometheus, the leaves of a range
//! query — instant selectors, and range functions over a matrix selector with literal
//! parameters — are evaluated series by series for a batch of steps at once (one pass over
//! a series' samples serves 64 steps); aggregations, operators and the other functions then
//! work step by step on those results. Nodes inside subqueries are evaluated per step;
//! `binary`,
//! `aggregate`, `instant_functions`, `range_functions` and `info` hold the operators and
//! functions; [`value`] holds the result types, serializable in the Prometheus HTTP API's
//! JSON shape.
//!
//! Not supported, because the parser cannot read them: duration arithmetic (`[5m+1m]`,
//! `offset step()`), the `anchored` / `smoothed` range modifiers, selectors whose matchers
//! all accept the empty value inside `info()`. Native histograms are not stored at all.
//!
//! Behaviour followed and edge cases decided:
//! - Selection windows are left-open, `(t - range, t]`, as since Prometheus 3.0; an instant
//!   selector takes the newest sample in `(t - lookback, t]`, and none if that sample is a
//!   staleness marker ([`STALE_NAN_BITS`]). Range windows skip staleness markers.
//! - `offset` and `@` shift the selector's evaluation time; `@ start()` / `@ end()` are the
//!   query's start and end (both the evaluation time for an instant query).
//! - The metric name is removed late ("delayed name removal", as the upstream test suite
//!   runs): functions and arithmetic mark a sample, and the name is dropped when the result
//!   is returned. Two result series that then share a label set are an error.
//! - Subquery steps are aligned to multiples of the step (Go's truncating division, as
//!   upstream); a subquery without a step uses [`EngineOptions::default_subquery_step_ms`].
//! - Native histograms are not stored, so functions that read only native histograms
//!   (`histogram_count`, `histogram_sum`, …) return nothing, as Prometheus does on float
//!   series.
//! - `info()` (experimental upstream) is implemented in `info` with upstream's rules.
//! - `fill(v)`, `fill_left(v)`, `fill_right(v)` complete unmatched pairs: the left fill value
//!   stands in for a missing "many"-side series (the result carries the match group's
//!   labels), the right one for a missing "one"-side series, as the upstream tests expect.
//! - Warning and info annotations are produced where Prometheus produces them for float
//!   data (see `annotations`), returned in [`QueryResult::warnings`] / [`QueryResult::infos`].
//! - At most [`EngineOptions::max_concurrency`] queries evaluate at once; the others wait for
//!   a slot until their timeout (see `gate`).
//! - `max_samples` bounds the samples a single evaluation step holds (selected points plus
//!   the range query's accumulated output), an approximation of Prometheus's peak count;
//!   a batched leaf's samples count at the step that reads them, as if selected then.
//!   The timeout is checked at every selection, batch and (sub)query step.
//! - `topk`/`bottomk` break ties by input order (upstream's heap may pick differently);
//!   `limit_ratio` samples by an FNV hash of the label set, not upstream's xxhash, so the
//!   chosen subset is stable but not the one Prometheus picks; `sort*` are stable sorts.
//!
//! ```
//! use sightline_tsdb::promql::{Engine, EngineOptions, Value};
//! use sightline_tsdb::storage::MergeQuerier;
//!
//! let engine = Engine::new(EngineOptions::default());
//! let storage = MergeQuerier::new(Vec::new()); // any `Querier`: the head, blocks, a merge
//! let result = engine.instant_query(&storage, "vector(1) + 1", 60_000)?;
//! assert_eq!(
//!     serde_json::to_string(&result.value).unwrap(),
//!     r#"{"resultType":"vector","result":[{"metric":{},"value":[60,"2"]}]}"#
//! );
//! let range = engine.range_query(&storage, "time()", 0, 120_000, 60_000)?;
//! assert!(matches!(range.value, Value::Matrix(ref m) if m[0].points.len() == 3));
//! # Ok::<(), sightline_tsdb::promql::Error>(())
//! ```

mod aggregate;
mod annotations;
mod binary;
mod binary_error;
pub mod error;
mod eval;
mod gate;
mod grammar_error;
mod info;
mod instant_functions;
pub mod parser;
mod range_functions;
pub mod test_series;
mod type_error;
pub mod value;

use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::Expr;

use crate::storage::Querier;

pub use error::{Error, Position, Result, Stage};
pub use value::{Sample, Series, Value};

/// The bit pattern of Prometheus's staleness marker, a NaN that ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is a staleness marker (not merely any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample, in ms (Prometheus: 5 m).
    pub lookback_delta_ms: i64,
    /// The most samples one evaluation may hold (Prometheus `query.max-samples`: 50 M).
    pub max_samples: usize,
    /// Evaluation time limit (Prometheus `query.timeout`: 2 m); `None` for no limit.
    pub timeout: Option<Duration>,
    /// Step of a subquery that gives none, in ms (Prometheus: the global evaluation
    /// interval, 1 m by default).
    pub default_subquery_step_ms: i64,
    /// Queries evaluated at once; more wait for a slot until their timeout (Prometheus
    /// `query.max-concurrency`: 20). Zero counts as one.
    pub max_concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Some(Duration::from_secs(120)),
            default_subquery_step_ms: 60 * 1000,
            max_concurrency: 20,
        }
    }
}

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// Warning annotations ("PromQL warning: …"), as the HTTP API's `warnings`.
    pub warnings: Vec<String>,
    /// Info annotations ("PromQL info: …"), as the HTTP API's `infos`.
    pub infos: Vec<String>,
}

/// Evaluates PromQL queries; cheap to clone, and clones share the concurrency limit.
#[derive(Debug, Clone)]
pub struct Engine {
    options: EngineOptions,
    gate: Arc<gate::QueryGate>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineOptions::default())
    }
}

impl Engine {
    /// An engine with these settings.
    pub fn new(options: EngineOptions) -> Engine {
        let gate = Arc::new(gate::QueryGate::new(options.max_concurrency));
        Engine { options, gate }
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// This engine with its timeout lowered to `timeout` where that is shorter (the HTTP
    /// API's `timeout` parameter); the concurrency limit stays shared with `self`.
    pub fn with_shorter_timeout(&self, timeout: Duration) -> Engine {
        let mut options = self.options.clone();
        options.timeout = Some(options.timeout.map_or(timeout, |own| own.min(timeout)));
        Engine {
            options,
            gate: Arc::clone(&self.gate),
        }
    }

    /// Evaluates `query` at `time_ms`: Prometheus's `/api/v1/query`. The result is a scalar,
    /// a string, an instant vector or (for a range selector or subquery) a matrix.
    pub fn instant_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult> {
        let expr = parser::parse(query)?;
        self.execute(querier, Some(query), &expr, time_ms, time_ms, 0)
    }

    /// Evaluates an already parsed expression at `time_ms`; annotation positions refer to
    /// the expression's canonical text.
    pub fn instant_expr(
        &self,
        querier: &dyn Querier,
        expr: &Expr,
        time_ms: i64,
    ) -> Result<QueryResult> {
        self.execute(querier, None, expr, time_ms, time_ms, 0)
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` (inclusive):
    /// Prometheus's `/api/v1/query_range`. The result is a matrix sorted by labels.
    pub fn range_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let expr = parser::parse(query)?;
        check_range(start_ms, end_ms, step_ms)?;
        self.execute(querier, Some(query), &expr, start_ms, end_ms, step_ms)
    }

    /// Evaluates an already parsed expression as a range query; annotation positions refer
    /// to the expression's canonical text.
    pub fn range_expr(
        &self,
        querier: &dyn Querier,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        check_range(start_ms, end_ms, step_ms)?;
        self.execute(querier, None, expr, start_ms, end_ms, step_ms)
    }

    /// Waits for a slot in the gate, then evaluates: instantly when `step_ms` is zero.
    /// Annotation positions refer to `text`, or to the expression's canonical text.
    fn execute(
        &self,
        querier: &dyn Querier,
        text: Option<&str>,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let deadline = self.deadline();
        let _slot = self.gate.enter(deadline)?;
        let mut ev =
            eval::Evaluator::new(querier, &self.options, start_ms, end_ms, step_ms, deadline);
        let value = if step_ms == 0 {
            ev.run_instant(expr)?
        } else {
            ev.run_range(expr)?
        };
        let annotations = ev.into_annotations();
        let (warnings, infos) = match text {
            _ if annotations.is_empty() => (Vec::new(), Vec::new()),
            Some(text) => annotations.into_strings(text),
            None => annotations.into_strings(&expr.to_string()),
        };
        Ok(QueryResult {
            value,
            warnings,
            infos,
        })
    }

    fn deadline(&self) -> Option<(Instant, Duration)> {
        self.options
            .timeout
            .map(|timeout| (Instant::now() + timeout, timeout))
    }
}

/// Refuses a range query's step of zero or less and an end before the start.
fn check_range(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<()> {
    if step_ms <= 0 {
        return Err(Error::InvalidParameter(
            "zero or negative query resolution step widths are not accepted: try a positive \
             integer"
                .to_owned(),
        ));
    }
    if end_ms < start_ms {
        return Err(Error::InvalidParameter(
            "end timestamp must not be before start time".to_owned(),
        ));
    }
    Ok(())
}

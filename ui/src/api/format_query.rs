//! `GET|POST /api/v1/format_query`: a PromQL expression pretty-printed
//! (https://prometheus.io/docs/prometheus/latest/querying/api/#formatting-query-expressions).
//!
//! The formatting is `promql-parser`'s `prettify`, a port of Prometheus's `parser.Pretty`:
//! normalized spacing, and expressions longer than 100 characters split over indented lines.
//! A query that does not parse is a 400 `bad_data` naming the parameter, as in Prometheus.

use axum::response::Response;
use sightline_tsdb::promql;

use super::{ApiError, Params, success};

/// `GET|POST /api/v1/format_query`
pub(crate) async fn format_query(params: Params) -> Result<Response, ApiError> {
    let query = params.get("query").unwrap_or("");
    let expr = promql::parser::parse(query)
        .map_err(|error| ApiError::bad_data(format!("invalid parameter \"query\": {error}")))?;
    Ok(success(expr.prettify()))
}

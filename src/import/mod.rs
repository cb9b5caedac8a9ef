//! `sightline import …`: bring what the replaced stack holds — metric and log history,
//! silences, dashboards — into Sightline's data directory. An import runs while Sightline is stopped (it takes the
//! data directory's lock, so a running instance refuses it with the usual message), which
//! makes it a Kubernetes init step before the first start.
//!
//! Imports are idempotent: what is already there (a silence with the same id, a dashboard
//! with the same uid, a log line with the same stream, time and text, a block range already
//! written) is left as it is or read once, so an interrupted import is simply run again.

mod alertmanager;
mod grafana;
mod loki;
mod progress;
mod prometheus;

use std::time::Duration;

use anyhow::Context;
use sightline_core::config::ConfigSource;
use sightline_core::selector::SeriesSelector;

use crate::cli::{ImportCommand, ImportTarget};
use crate::data_dir::DataDir;

/// How long one request to the source may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs an import; reports on stderr; true when it succeeded.
pub fn run(command: ImportCommand) -> bool {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(dispatch(command)));
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            true
        }
        Err(error) => {
            eprintln!("import failed: {error:#}");
            false
        }
    }
}

async fn dispatch(command: ImportCommand) -> anyhow::Result<String> {
    match command {
        ImportCommand::Alertmanager { target, url } => {
            let data_dir = lock(&target)?;
            alertmanager::import(&client()?, &url, data_dir.path()).await
        }
        ImportCommand::Grafana {
            target,
            dir,
            url,
            token,
        } => {
            let data_dir = lock(&target)?;
            let source = match (dir, url) {
                (Some(dir), _) => grafana::Source::Dir(dir),
                (None, Some(url)) => grafana::Source::Api { url, token },
                (None, None) => anyhow::bail!("give --dir or --url"),
            };
            grafana::import(&client()?, source, data_dir.path()).await
        }
        ImportCommand::Loki {
            target,
            url,
            since,
            query,
            slice,
            limit,
        } => {
            let data_dir = lock(&target)?;
            let request = loki::Request {
                url,
                query,
                since: since.into(),
                slice: slice.into(),
                limit,
            };
            loki::import(&client()?, &request, data_dir.path()).await
        }
        ImportCommand::Prometheus {
            target,
            url,
            since,
            selector,
        } => {
            let data_dir = lock(&target)?;
            let request = prometheus::Request {
                url,
                selector: SeriesSelector::parse(&selector)
                    .map_err(|error| anyhow::anyhow!("--match {selector:?}: {error}"))?,
                since: since.into(),
            };
            prometheus::import(&client()?, &request, data_dir.path()).await
        }
    }
}

/// Reads the config (if any) and takes the lock of the data directory it and the flags
/// name, as `serve` would.
fn lock(target: &ImportTarget) -> anyhow::Result<DataDir> {
    let source = target
        .config
        .clone()
        .map_or(ConfigSource::Embedded, ConfigSource::File);
    let config = source.load().map_err(|error| anyhow::anyhow!("{error}"))?;
    DataDir::lock(&DataDir::path_for(target.data_dir.as_deref(), &config))
}

/// An HTTP client for the source, which may be anywhere the operator points it.
fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a TLS crypto provider of its own; an error means one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("Sightline/", env!("CARGO_PKG_VERSION"), " import"))
        .build()
        .context("cannot build the HTTP client")
}

/// GETs `url` and parses the JSON answer, saying which URL failed and how.
async fn get_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> anyhow::Result<T> {
    let response = request.send().await.context("request failed")?;
    let url = response.url().clone();
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{url} did not answer the expected JSON"))
}

/// Now, in Unix milliseconds.
fn unix_ms() -> i64 {
    unix_time().map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Now, in Unix nanoseconds.
fn unix_ns() -> i64 {
    unix_time().map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn unix_time() -> Option<Duration> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
}

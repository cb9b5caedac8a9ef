//! Posting a batch until the receiver takes it: the HTTP side of remote write out and log
//! forwarding.
//!
//! Decisions, after Prometheus's remote-write client (and Promtail's, which does the same):
//! network errors and 5xx answers are retried with exponential backoff from `min_backoff`
//! to `max_backoff`, as is 429 when `retry_on_http_429` is set, until the batch is taken or
//! the queue stops — the WAL is the buffer, so there is no retry limit. Any other answer
//! (4xx) refuses the batch for good: sending it again cannot succeed.

use std::path::PathBuf;
use std::time::Duration;

use prost::bytes::Bytes;
use reqwest::header::USER_AGENT;
use sightline_core::config::scrape::TlsConfig;
use tokio_util::sync::CancellationToken;

use crate::scrape::client::{Credentials, build_http_client};

/// How failed posts are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// First wait after a failure; doubled after each one.
    pub(crate) min_backoff: Duration,
    /// Longest wait.
    pub(crate) max_backoff: Duration,
    /// Whether 429 Too Many Requests is retried (else the batch is refused).
    pub(crate) retry_on_http_429: bool,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The receiver answered 2xx.
    Taken,
    /// The receiver refused it for good; why.
    Refused(String),
    /// The queue stopped before the receiver took it.
    Stopped,
}

/// A receiver's URL with the client, headers and credentials to post to it.
pub(crate) struct Endpoint {
    url: url::Url,
    timeout: Duration,
    headers: Vec<(String, String)>,
    http: reqwest::Client,
    credentials: Credentials,
    base_dir: PathBuf,
    retry: RetryPolicy,
}

impl Endpoint {
    /// An endpoint for `url` sending `headers` (the protocol's, then the configured ones)
    /// with each request; credential and TLS files are read relative to `base_dir`.
    pub(crate) fn new(
        url: url::Url,
        timeout: Duration,
        headers: Vec<(String, String)>,
        tls: Option<&TlsConfig>,
        credentials: Credentials,
        base_dir: PathBuf,
        retry: RetryPolicy,
    ) -> Result<Endpoint, String> {
        let http = build_http_client(tls, &base_dir, true).map_err(|error| error.to_string())?;
        Ok(Endpoint {
            url,
            timeout,
            headers,
            http,
            credentials,
            base_dir,
            retry,
        })
    }

    /// Posts `body` until it is taken, refused for good, or `stop` is cancelled;
    /// `on_failure(error, retrying)` is told of each failed attempt.
    pub(crate) async fn deliver(
        &self,
        body: Bytes,
        stop: &CancellationToken,
        mut on_failure: impl FnMut(&str, bool),
    ) -> Delivery {
        let mut backoff = self.retry.min_backoff;
        loop {
            if stop.is_cancelled() {
                return Delivery::Stopped;
            }
            let Err((error, retryable)) = self.attempt(body.clone()).await else {
                return Delivery::Taken;
            };
            on_failure(&error, retryable);
            if !retryable {
                return Delivery::Refused(error);
            }
            tokio::select! {
                () = stop.cancelled() => return Delivery::Stopped,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// One request: `Err((why, retryable))` unless it was answered with 2xx.
    async fn attempt(&self, body: Bytes) -> Result<(), (String, bool)> {
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(USER_AGENT, concat!("Sightline/", env!("CARGO_PKG_VERSION")));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = self
            .credentials
            .apply(request, &self.base_dir)
            .map_err(|error| (error.to_string(), true))?;
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| (format!("{}: {error}", self.url), true))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let retryable =
            status.is_server_error() || (status.as_u16() == 429 && self.retry.retry_on_http_429);
        Err((
            format!("{} answered {status}: {}", self.url, text.trim()),
            retryable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::StatusCode;

    use super::*;

    /// A receiver on 127.0.0.1 that answers the given statuses in turn (then 204) and
    /// records each request's headers and body.
    async fn receiver(
        answers: Vec<u16>,
    ) -> (url::Url, Arc<Mutex<Vec<(axum::http::HeaderMap, Bytes)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let recorded = seen.clone();
        let app = axum::Router::new().route(
            "/push",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let recorded = recorded.clone();
                let answers = answers.clone();
                async move {
                    recorded.lock().unwrap().push((headers, body));
                    let code = answers.lock().unwrap().next().unwrap_or(204);
                    (StatusCode::from_u16(code).unwrap(), "told you so")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{address}/push").parse().unwrap();
        (url, seen)
    }

    fn endpoint(url: url::Url, retry_on_http_429: bool) -> Endpoint {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Endpoint::new(
            url,
            Duration::from_secs(5),
            vec![("X-Scope-OrgID".into(), "lab".into())],
            None,
            Credentials::BearerToken("secret".into()),
            PathBuf::from("."),
            RetryPolicy {
                min_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(4),
                retry_on_http_429,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn server_errors_and_429_are_retried_until_taken() {
        let (url, seen) = receiver(vec![500, 503, 429]).await;
        let mut failures = Vec::new();
        let delivery = endpoint(url, true)
            .deliver(
                Bytes::from_static(b"batch"),
                &CancellationToken::new(),
                |error, retrying| failures.push((error.to_owned(), retrying)),
            )
            .await;
        assert_eq!(delivery, Delivery::Taken);
        assert_eq!(failures.len(), 3);
        assert!(failures.iter().all(|(_, retrying)| *retrying));
        assert!(
            failures[2].0.contains("429 Too Many Requests: told you so"),
            "{failures:?}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4);
        let (headers, body) = &seen[3];
        assert_eq!(body.as_ref(), b"batch");
        assert_eq!(headers["x-scope-orgid"], "lab");
        assert_eq!(headers["authorization"], "Bearer secret");
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("Sightline/")
        );
    }

    #[tokio::test]
    async fn other_4xx_and_429_without_retry_refuse_the_batch() {
        for (answer, retry_429) in [(400, true), (413, true), (429, false)] {
            let (url, seen) = receiver(vec![answer]).await;
            let mut failures = Vec::new();
            let delivery = endpoint(url, retry_429)
                .deliver(
                    Bytes::from_static(b"x"),
                    &CancellationToken::new(),
                    |error, retrying| failures.push((error.to_owned(), retrying)),
                )
                .await;
            assert!(
                matches!(&delivery, Delivery::Refused(why) if why.contains(&answer.to_string())),
                "{answer}: {delivery:?}"
            );
            assert_eq!(failures.len(), 1);
            assert!(!failures[0].1);
            assert_eq!(seen.lock().unwrap().len(), 1, "{answer} is not sent again");
        }
    }

    #[tokio::test]
    async fn a_stopped_queue_stops_retrying_an_unreachable_receiver() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/push", closed.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(closed);
        let stop = CancellationToken::new();
        let mut attempts = 0;
        let stopper = stop.clone();
        let delivery = endpoint(url, true)
            .deliver(Bytes::from_static(b"x"), &stop, |_, retrying| {
                assert!(retrying);
                attempts += 1;
                if attempts == 3 {
                    stopper.cancel();
                }
            })
            .await;
        assert_eq!(delivery, Delivery::Stopped);
        assert_eq!(attempts, 3);
    }
}

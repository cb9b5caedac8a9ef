//! The scrape loop and manager against real HTTP servers on 127.0.0.1: a small axum server
//! whose body each test controls, and the real `prometheus-node-exporter`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sightline_core::config::{Config, ScrapeConfig};
use sightline_core::labels::Labels;
use sightline_scraper::discovery::static_groups;
use sightline_scraper::manager::ScrapeManager;
use sightline_scraper::scrape::client::ScrapeClient;
use sightline_scraper::scrape::{STALE_NAN, ScrapeError, ScrapeLoop};
use sightline_scraper::target::Target;
use sightline_tsdb::storage::{Appendable, Appender, CommitSummary, SeriesRef};

/// Storage in memory that records committed samples and how they were appended.
#[derive(Default)]
struct MemoryStorage {
    inner: Mutex<Stored>,
}

#[derive(Default)]
struct Stored {
    series: Vec<Labels>,
    samples: Vec<(SeriesRef, i64, f64)>,
    appends_by_labels: usize,
    appends_by_ref: usize,
    /// References are refused, as the head refuses those of series it dropped.
    refs_forgotten: bool,
}

struct Batch<'a> {
    storage: &'a MemoryStorage,
    samples: Vec<(SeriesRef, i64, f64)>,
}

impl Appendable for MemoryStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Batch {
            storage: self,
            samples: Vec::new(),
        })
    }
}

impl Appender for Batch<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> sightline_tsdb::Result<SeriesRef> {
        let mut inner = self.storage.inner.lock().unwrap();
        inner.appends_by_labels += 1;
        let series = match inner.series.iter().position(|known| known == labels) {
            Some(index) => index,
            None => {
                inner.series.push(labels.clone());
                inner.series.len() - 1
            }
        } as SeriesRef;
        self.samples.push((series, t, v));
        Ok(series)
    }

    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> sightline_tsdb::Result<()> {
        let mut inner = self.storage.inner.lock().unwrap();
        if inner.refs_forgotten {
            return Err(sightline_tsdb::Error::UnknownSeriesRef { series_ref: series });
        }
        inner.appends_by_ref += 1;
        self.samples.push((series, t, v));
        Ok(())
    }

    fn commit(self: Box<Self>) -> sightline_tsdb::Result<CommitSummary> {
        let appended = self.samples.len() as u64;
        self.storage
            .inner
            .lock()
            .unwrap()
            .samples
            .extend(self.samples);
        Ok(CommitSummary {
            appended,
            ..CommitSummary::default()
        })
    }
}

impl MemoryStorage {
    /// Values of the series with this metric name, in append order.
    fn values(&self, metric: &str) -> Vec<(Labels, f64)> {
        let inner = self.inner.lock().unwrap();
        inner
            .samples
            .iter()
            .filter(|(series, _, _)| inner.series[*series as usize].metric_name() == Some(metric))
            .map(|(series, _, v)| (inner.series[*series as usize].clone(), *v))
            .collect()
    }

    fn last(&self, metric: &str) -> Option<f64> {
        self.values(metric).last().map(|(_, v)| *v)
    }
}

/// What the test server answers.
#[derive(Clone)]
struct Response {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    delay: Duration,
}

/// A server on 127.0.0.1 whose `/metrics` answer the test changes.
async fn serve(response: Response) -> (SocketAddr, Arc<Mutex<Response>>) {
    let shared = Arc::new(Mutex::new(response));
    let state = shared.clone();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let response = state.lock().unwrap().clone();
            async move {
                tokio::time::sleep(response.delay).await;
                (
                    response.status,
                    [(header::CONTENT_TYPE, response.content_type)],
                    response.body,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, shared)
}

fn text(body: &str) -> Response {
    Response {
        status: StatusCode::OK,
        content_type: "text/plain; version=0.0.4",
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

fn job(yaml: &str) -> ScrapeConfig {
    let text = format!("global: {{scrape_interval: 15s}}\nscrape_configs:\n  - {yaml}\n");
    Config::parse(Path::new("t.yml"), &text)
        .unwrap()
        .scrape_configs
        .remove(0)
}

fn scrape_loop(job: ScrapeConfig) -> ScrapeLoop {
    let group = &static_groups(&job)[0];
    let target = Target::populate(&job, &group.targets[0], &group.labels)
        .unwrap()
        .unwrap();
    let client = Arc::new(ScrapeClient::new(&job, Path::new(".")).unwrap());
    ScrapeLoop::new(target, Arc::new(job), client)
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

#[tokio::test]
async fn scrape_stores_samples_with_target_labels_and_report_series() {
    let (address, _) = serve(text(
        "# TYPE a counter\na_total{x=\"1\"} 5\na_total{x=\"2\"} 7\nb 1.5\n",
    ))
    .await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let report = lp.scrape(&storage, at(0)).await.unwrap();
    assert_eq!(
        (
            report.samples_scraped,
            report.samples_post_relabeling,
            report.series_added
        ),
        (3, 3, 3)
    );
    let a = storage.values("a_total");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].0.get("job"), Some("app"));
    assert_eq!(a[0].0.get("instance"), Some(address.to_string().as_str()));
    assert_eq!(storage.last("up"), Some(1.0));
    assert_eq!(storage.last("scrape_samples_scraped"), Some(3.0));
    assert_eq!(storage.last("scrape_series_added"), Some(3.0));
    assert!(storage.last("scrape_duration_seconds").unwrap() > 0.0);

    // The second scrape appends every series by reference: no label work.
    let by_labels = storage.inner.lock().unwrap().appends_by_labels;
    let report = lp.scrape(&storage, at(15)).await.unwrap();
    assert_eq!(report.series_added, 0);
    assert_eq!(storage.inner.lock().unwrap().appends_by_labels, by_labels);
    assert_eq!(storage.values("b").len(), 2);
}

/// The loop skips the label sets of the series it knows; when the store has dropped one's
/// reference, the series is appended by its full labels again, in either format.
#[tokio::test]
async fn a_known_series_whose_reference_the_store_dropped_keeps_its_labels() {
    for (content_type, eof) in [
        ("text/plain; version=0.0.4", ""),
        ("application/openmetrics-text; version=1.0.0", "# EOF\n"),
    ] {
        let body = format!(
            "# TYPE a counter\na_total{{x=\"1\",y=\"a b\"}} 5\na_total{{x=\"2\"}} 7\nb 1.5\n{eof}"
        );
        let (address, _) = serve(Response {
            content_type,
            ..text(&body)
        })
        .await;
        let storage = MemoryStorage::default();
        let mut lp = scrape_loop(job(&format!(
            "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
        )));
        lp.scrape(&storage, at(0)).await.unwrap();
        lp.scrape(&storage, at(15)).await.unwrap();
        let series_before = storage.inner.lock().unwrap().series.clone();
        storage.inner.lock().unwrap().refs_forgotten = true;
        lp.scrape(&storage, at(30)).await.unwrap();
        let inner = storage.inner.lock().unwrap();
        assert_eq!(
            inner.series, series_before,
            "{content_type}: no new label sets"
        );
        drop(inner);
        let a = storage.values("a_total");
        assert_eq!(a.len(), 6, "{content_type}");
        let first = &a[4].0;
        assert_eq!(
            (first.get("x"), first.get("y"), first.get("job")),
            (Some("1"), Some("a b"), Some("app")),
            "{content_type}"
        );
        assert_eq!(storage.values("b").len(), 3);
    }
}

#[tokio::test]
async fn vanished_series_and_failed_scrapes_get_staleness_markers() {
    let (address, response) = serve(text("a 1\nb 2\n")).await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    lp.scrape(&storage, at(0)).await.unwrap();

    response.lock().unwrap().body = "a 1\n".into();
    lp.scrape(&storage, at(15)).await.unwrap();
    assert_eq!(
        storage.last("b").map(f64::to_bits),
        Some(STALE_NAN),
        "b vanished"
    );
    assert_eq!(storage.last("a"), Some(1.0));

    response.lock().unwrap().status = StatusCode::INTERNAL_SERVER_ERROR;
    let error = lp.scrape(&storage, at(30)).await.unwrap_err();
    assert_eq!(error, ScrapeError::Status(500));
    assert_eq!(
        storage.last("a").map(f64::to_bits),
        Some(STALE_NAN),
        "failed scrape marks all stale"
    );
    assert_eq!(storage.last("up"), Some(0.0));
}

#[tokio::test]
async fn honor_labels_decides_who_wins_a_clash() {
    let (address, _) = serve(text("m{job=\"exposed\"} 1\n")).await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    lp.scrape(&storage, at(0)).await.unwrap();
    let labels = storage.values("m")[0].0.clone();
    assert_eq!(
        (labels.get("job"), labels.get("exported_job")),
        (Some("app"), Some("exposed"))
    );

    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, honor_labels: true, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    lp.scrape(&storage, at(0)).await.unwrap();
    let labels = storage.values("m")[0].0.clone();
    assert_eq!(
        (labels.get("job"), labels.get("exported_job")),
        (Some("exposed"), None)
    );
}

#[tokio::test]
async fn metric_relabeling_and_limits() {
    let (address, _) = serve(text("keep 1\ngo_gc_x 2\ngo_gc_y 3\n")).await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}],
          metric_relabel_configs: [{{source_labels: [__name__], regex: 'go_gc_.*', action: drop}}]}}"
    )));
    let report = lp.scrape(&storage, at(0)).await.unwrap();
    assert_eq!(
        (report.samples_scraped, report.samples_post_relabeling),
        (3, 1)
    );
    assert!(storage.values("go_gc_x").is_empty());
    assert_eq!(
        storage.last("scrape_samples_post_metric_relabeling"),
        Some(1.0)
    );

    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, sample_limit: 2, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err();
    assert_eq!(error, ScrapeError::SampleLimit(2));
    assert!(
        storage.values("keep").is_empty(),
        "a scrape over the limit stores nothing"
    );
    assert_eq!(storage.last("up"), Some(0.0));

    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, label_limit: 2, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err();
    assert!(
        error.to_string().starts_with("label_limit exceeded"),
        "{error}"
    );
}

#[tokio::test]
async fn timeouts_bodies_and_formats() {
    let (address, response) = serve(text("a 1\n")).await;
    response.lock().unwrap().delay = Duration::from_millis(1500);
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, scrape_timeout: 1s, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    assert_eq!(
        lp.scrape(&storage, at(0)).await.unwrap_err(),
        ScrapeError::Timeout
    );

    *response.lock().unwrap() = text("a 1\nb 2\nc 3\n");
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, body_size_limit: 8, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    assert_eq!(
        lp.scrape(&storage, at(0)).await.unwrap_err(),
        ScrapeError::BodySizeLimit(8)
    );

    *response.lock().unwrap() = text("a 1\nbroken{ 2\n");
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err();
    assert!(matches!(error, ScrapeError::Parse(_)), "{error}");

    *response.lock().unwrap() = Response {
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ..text("# TYPE c counter\nc_total 4 1700000100.5\n# EOF\n")
    };
    let storage = MemoryStorage::default();
    lp.scrape(&storage, at(0)).await.unwrap();
    let inner = storage.inner.lock().unwrap();
    let c = inner
        .series
        .iter()
        .position(|s| s.metric_name() == Some("c_total"))
        .unwrap() as SeriesRef;
    assert!(
        inner.samples.contains(&(c, 1_700_000_100_500, 4.0)),
        "explicit timestamp honoured"
    );
}

#[tokio::test]
async fn refused_connection_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err().to_string();
    assert!(
        error.to_lowercase().contains("connection refused"),
        "{error}"
    );
    assert_eq!(storage.last("up"), Some(0.0));
}

#[tokio::test]
async fn manager_scrapes_every_target_keeps_unchanged_loops_and_retires_removed_ones() {
    let (first, _) = serve(text("x 1\n")).await;
    let (second, _) = serve(text("x 2\n")).await;
    let storage = Arc::new(MemoryStorage::default());
    let manager = ScrapeManager::new(storage.clone(), ".".into());
    let config = |targets: &str| {
        Config::parse(
            Path::new("t.yml"),
            &format!("scrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs: [{{targets: [{targets}]}}]\n"),
        )
        .unwrap()
    };
    manager.apply(&config(&format!("'{first}', '{second}'")));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let targets = manager.active_targets();
    assert_eq!(targets.len(), 2);
    assert!(
        targets
            .iter()
            .all(|t| t.status.up && t.status.last_scrape.is_some()),
        "{targets:?}"
    );
    let values: Vec<f64> = storage.values("x").iter().map(|(_, v)| *v).collect();
    assert!(values.contains(&1.0) && values.contains(&2.0));

    let first_instance = first.to_string();
    let series_added_by_first = || {
        storage
            .values("scrape_series_added")
            .into_iter()
            .filter(|(labels, _)| labels.get("instance") == Some(first_instance.as_str()))
            .map(|(_, added)| added)
            .collect::<Vec<f64>>()
    };
    let before_reload = series_added_by_first().len();
    manager.apply(&config(&format!("'{first}'")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(manager.active_targets().len(), 1);
    // The unchanged target's loop kept running: a restarted loop would start with an empty
    // series cache and report its series as added again.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after_reload = series_added_by_first().split_off(before_reload);
    assert!(
        after_reload.len() >= 2 && after_reload.iter().all(|&added| added == 0.0),
        "{after_reload:?}"
    );
    let second_instance = second.to_string();
    let last_of_second = storage
        .values("x")
        .into_iter()
        .rfind(|(labels, _)| labels.get("instance") == Some(second_instance.as_str()))
        .unwrap();
    assert_eq!(
        last_of_second.1.to_bits(),
        STALE_NAN,
        "a removed target's series go stale"
    );
    manager.stop_all();
}

/// The real node exporter from Debian as a scrape target.
#[tokio::test]
async fn scrapes_the_real_node_exporter() {
    let binary = Path::new("/usr/bin/prometheus-node-exporter");
    assert!(
        binary.exists(),
        "this test needs the Debian package prometheus-node-exporter: apt-get install prometheus-node-exporter (scripts/test installs it)"
    );
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut exporter = std::process::Command::new(binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: node, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}"
    )));
    let mut result = Err(ScrapeError::Timeout);
    for attempt in 0..50 {
        result = lp.scrape(&storage, at(attempt)).await;
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = exporter.kill();
    let _ = exporter.wait();
    let report = result.unwrap();
    assert!(report.samples_scraped > 100, "{report:?}");
    assert!(!storage.values("node_cpu_seconds_total").is_empty());
    assert!(!storage.values("node_memory_MemTotal_bytes").is_empty());
    assert_eq!(storage.last("up"), Some(1.0));
}

/// A server whose `/metrics` streams `chunk` forever, one chunk every `pause`.
async fn serve_stream(chunk: &'static [u8], pause: Duration) -> SocketAddr {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            let stream = futures_util::stream::unfold((), move |()| async move {
                tokio::time::sleep(pause).await;
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(chunk)),
                    (),
                ))
            });
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                axum::body::Body::from_stream(stream),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

#[tokio::test]
async fn bad_targets_are_down_with_a_clear_error() {
    let storage = MemoryStorage::default();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"\x1b[2J<html>{{{ not metrics".to_vec(),
            "line 1",
        ),
        ("truncated", b"a 1\nb{x=\"unterminated".to_vec(), "line 2"),
        (
            "invalid UTF-8",
            b"a{x=\"\xff\xfe\"} 1\n".to_vec(),
            "body is not UTF-8",
        ),
    ];
    for (name, body, expected) in cases {
        let address = serve_bytes(body).await;
        let mut lp = scrape_loop(job(&format!(
            "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
        )));
        let error = lp.scrape(&storage, at(0)).await.unwrap_err().to_string();
        assert!(error.contains(expected), "{name}: {error}");
        assert_eq!(storage.last("up"), Some(0.0), "{name}");
    }
}

/// A server whose `/metrics` answers `body` as it is, bytes that need not be UTF-8.
async fn serve_bytes(body: Vec<u8>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A server whose `/metrics` answers `body` gzip-compressed when the request accepts gzip
/// (and 406 otherwise).
async fn serve_gzip(body: Vec<u8>) -> SocketAddr {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&body).unwrap();
    let compressed = encoder.finish().unwrap();
    let app = axum::Router::new().route(
        "/metrics",
        get(move |headers: header::HeaderMap| {
            let compressed = compressed.clone();
            async move {
                let accepts_gzip = headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|value| value.contains("gzip"));
                if !accepts_gzip {
                    return StatusCode::NOT_ACCEPTABLE.into_response();
                }
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; version=0.0.4"),
                        (header::CONTENT_ENCODING, "gzip"),
                    ],
                    compressed,
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

#[tokio::test]
async fn gzip_bodies_are_asked_for_decompressed_and_limited_by_their_decompressed_size() {
    let storage = MemoryStorage::default();
    let address = serve_gzip(b"a 1\nb 2\n".to_vec()).await;
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    lp.scrape(&storage, at(0)).await.unwrap();
    assert_eq!(storage.last("a"), Some(1.0));
    assert_eq!(storage.last("b"), Some(2.0));
    assert_eq!(storage.last("up"), Some(1.0));

    // 16 MiB of comments compress to a few KiB: the limit counts what they decompress to.
    let bomb = b"# padding padding padding\n".repeat(16 << 20 >> 5);
    let address = serve_gzip(bomb).await;
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, body_size_limit: 1MB, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err();
    assert!(matches!(error, ScrapeError::BodySizeLimit(_)), "{error}");
    assert_eq!(storage.last("up"), Some(0.0));
}

#[tokio::test]
async fn endless_and_slow_bodies_are_cut_off() {
    // 100 MB and more: the default body size limit stops it long before memory grows.
    let endless = serve_stream(&[b'#'; 64 * 1024], Duration::ZERO).await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{endless}']}}]}}"
    )));
    let error = lp.scrape(&storage, at(0)).await.unwrap_err();
    assert!(matches!(error, ScrapeError::BodySizeLimit(_)), "{error}");
    assert_eq!(storage.last("up"), Some(0.0));

    let slow = serve_stream(b"a 1\n", Duration::from_millis(200)).await;
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, scrape_timeout: 1s, static_configs: [{{targets: ['{slow}']}}]}}"
    )));
    assert_eq!(
        lp.scrape(&storage, at(0)).await.unwrap_err(),
        ScrapeError::Timeout
    );
}

#[tokio::test]
async fn duplicate_series_in_one_body_do_not_fail_the_scrape() {
    let (address, _) = serve(text("a 1\na 2\n")).await;
    let storage = MemoryStorage::default();
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let report = lp.scrape(&storage, at(0)).await.unwrap();
    assert_eq!(report.samples_scraped, 2);
    assert_eq!(storage.last("up"), Some(1.0));
}

#[tokio::test]
async fn one_bad_target_leaves_the_others_alone() {
    let (good, _) = serve(text("x 1\n")).await;
    let (bad, _) = serve(Response {
        status: StatusCode::BAD_GATEWAY,
        ..text("")
    })
    .await;
    let storage = Arc::new(MemoryStorage::default());
    let manager = ScrapeManager::new(storage.clone(), ".".into());
    let config = Config::parse(
        Path::new("t.yml"),
        &format!("scrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{good}', '{bad}']}}]\n"),
    )
    .unwrap();
    manager.apply(&config);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let targets = manager.active_targets();
    let status_of = |address: SocketAddr| {
        targets
            .iter()
            .find(|t| t.target.labels().get("instance") == Some(address.to_string().as_str()))
            .map(|t| (t.status.up, t.status.last_error.clone()))
            .unwrap()
    };
    assert_eq!(status_of(good), (true, String::new()));
    assert_eq!(
        status_of(bad),
        (false, "server returned HTTP status 502".to_owned())
    );
    manager.stop_all();
}

/// Each request a [`serve_sized`] server saw: the client's port (one per connection) and
/// its `Connection` header.
type Requests = Arc<Mutex<Vec<(u16, Option<String>)>>>;

/// A server whose `/metrics` answers a valid body of about the size the test sets, recording
/// each request.
async fn serve_sized(size: Arc<Mutex<usize>>) -> (SocketAddr, Requests) {
    use axum::extract::ConnectInfo;
    let requests: Requests = Arc::default();
    let record = requests.clone();
    let app = axum::Router::new().route(
        "/metrics",
        get(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: axum::http::HeaderMap| {
                let connection = headers
                    .get(header::CONNECTION)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                record.lock().unwrap().push((peer.port(), connection));
                let size = *size.lock().unwrap();
                async move {
                    let mut body = String::with_capacity(size + 32);
                    let mut i = 0;
                    while body.len() < size {
                        body.push_str(&format!("m{{i=\"{i}\"}} 1\n"));
                        i += 1;
                    }
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (address, requests)
}

/// Connections are kept alive between scrapes, but a target whose last body was larger
/// than `LARGE_BODY` is asked to close each one after its response, so that no idle
/// connection keeps a large read buffer between scrapes.
#[tokio::test]
async fn connections_are_kept_alive_unless_bodies_are_large() {
    use sightline_scraper::scrape::client::LARGE_BODY;
    let size = Arc::new(Mutex::new(0));
    let (address, requests) = serve_sized(size.clone()).await;
    let mut lp = scrape_loop(job(&format!(
        "{{job_name: app, static_configs: [{{targets: ['{address}']}}]}}"
    )));
    let storage = MemoryStorage::default();
    let (small, large) = (1_000, LARGE_BODY + 50_000);
    for (i, body) in [small, small, large, large, large, small, small]
        .into_iter()
        .enumerate()
    {
        *size.lock().unwrap() = body;
        lp.scrape(&storage, at(i as u64)).await.unwrap();
    }
    let requests = requests.lock().unwrap().clone();
    let closing: Vec<bool> = requests
        .iter()
        .map(|(_, connection)| connection.as_deref() == Some("close"))
        .collect();
    // Each scrape after a large body asks to close.
    assert_eq!(closing, [false, false, false, true, true, true, false]);
    let ports: Vec<u16> = requests.iter().map(|(port, _)| *port).collect();
    // The first four share the kept connection (the fourth closes it); each closing scrape
    // leaves none behind, so the ones after it start a new connection.
    assert!(ports[..4].iter().all(|&port| port == ports[0]), "{ports:?}");
    assert!(
        ports[3..].windows(2).all(|pair| pair[0] != pair[1]),
        "{ports:?}"
    );
}

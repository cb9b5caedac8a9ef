//! The appliance over real HTTP on 127.0.0.1: health, readiness, metrics, reload, auth, the
//! data directory lock and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::{Appliance, free_port, get_json, http, scraping_appliance, write_file};
use reqwest::StatusCode;

#[test]
fn health_ready_and_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let client = http();

    let healthy = client.get(app.url("/-/healthy")).send().unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
    assert_eq!(healthy.text().unwrap(), "Sightline is Healthy.\n");
    let ready = client.get(app.url("/-/ready")).send().unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        client.get(app.url("/nope")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let response = client.get(app.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().unwrap();
    for expected in [
        "sightline_build_info{revision=",
        "sightline_uptime_seconds ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "sightline_config_last_reload_successful 1",
        "sightline_config_last_reload_success_timestamp_seconds ",
        "sightline_http_requests_total{code=\"200\",handler=\"/-/healthy\",method=\"GET\"} 1",
        "sightline_http_requests_total{code=\"404\",handler=\"unmatched\",method=\"GET\"} 1",
        "sightline_http_request_duration_seconds_bucket{handler=\"/-/ready\",le=\"0.005\"}",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(expected)),
            "missing {expected:?} in\n{text}"
        );
    }
    let rss: f64 = app
        .wait_for_metric("process_resident_memory_bytes ")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 1_000_000.0, "RSS {rss} looks wrong");
}

#[test]
fn responses_are_compressed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let response = http()
        .get(app.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[test]
fn reload_applies_good_config_and_keeps_old_on_bad() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "limits:\n  request_body_size: 4KiB\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = http();
    let post_reload = |bytes: usize| {
        client
            .post(app.url("/-/reload"))
            .body(vec![b'x'; bytes])
            .send()
            .unwrap()
    };

    assert_eq!(post_reload(3000).status(), StatusCode::OK);

    // A good reload lowers the body limit: the same request is now too large.
    write_file(
        dir.path(),
        "sightline.yml",
        "limits:\n  request_body_size: 1KiB\n",
    );
    assert_eq!(post_reload(0).status(), StatusCode::OK);
    let refused = post_reload(3000);
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        refused
            .text()
            .unwrap()
            .contains("exceeds the limit of 1KiB (limits.request_body_size)")
    );

    // A bad reload answers 500 with the position, keeps the 1 KiB limit, and says so in /metrics.
    write_file(
        dir.path(),
        "sightline.yml",
        "limits:\n  request_body_size: 1KiB\n  bogus: 1\n",
    );
    let failed = post_reload(0);
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let message = failed.text().unwrap();
    let expected = format!(
        "failed to reload config: {}:3:3: limits: unknown field `bogus`",
        config.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert_eq!(
        app.wait_for_metric("sightline_config_last_reload_successful "),
        "sightline_config_last_reload_successful 0"
    );
    assert_eq!(post_reload(3000).status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        post_reload(500).status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "still bad, still served"
    );
    assert!(
        app.log()
            .iter()
            .any(|line| line.contains("configuration reload failed") && line.contains(":3:3:"))
    );

    // SIGHUP reloads too.
    write_file(
        dir.path(),
        "sightline.yml",
        "limits:\n  request_body_size: 8KiB\n",
    );
    app.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.wait_for_metric("sightline_config_last_reload_successful ")
        != "sightline_config_last_reload_successful 1"
    {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(post_reload(6000).status(), StatusCode::OK);
}

#[test]
fn bad_config_at_start_up_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "global:\n  scrape_interval: 1x\n",
    );
    let output = std::process::Command::new(common::binary())
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:2:20: global.scrape_interval: not a valid duration string: \"1x\"",
        config.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Appliance::start(&data, &[]);
    let started = Instant::now();
    let output = std::process::Command::new(common::binary())
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusal must be immediate"
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "data directory {} is in use by pid {}",
        data.display(),
        first.pid()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(
        http().get(first.url("/-/healthy")).send().unwrap().status(),
        StatusCode::OK,
        "the first keeps running"
    );
}

#[test]
fn sigterm_stops_cleanly_within_10s_and_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut app = Appliance::start(&data, &[]);
    assert_eq!(
        http().get(app.url("/-/ready")).send().unwrap().status(),
        StatusCode::OK
    );
    let started = Instant::now();
    app.signal("TERM");
    let status = app
        .wait_for_exit(Duration::from_secs(10))
        .expect("exits within 10 s");
    assert!(status.success(), "exit status {status:?}");
    println!("SIGTERM to exit: {:?}", started.elapsed());
    assert!(app.log().iter().any(|line| line.contains("stopped")));
    let next = Appliance::start(&data, &[]);
    assert_eq!(
        http().get(next.url("/-/healthy")).send().unwrap().status(),
        StatusCode::OK
    );
}

#[test]
fn basic_auth_protects_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!("web:\n  auth:\n    basic_auth_users:\n      admin: '{hash}'\n"),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = http();
    let denied = client.get(app.url("/metrics")).send().unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = client
        .get(app.url("/metrics"))
        .basic_auth("admin", Some("nope"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let stranger = client
        .get(app.url("/metrics"))
        .basic_auth("eve", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let allowed = client
            .get(app.url("/metrics"))
            .basic_auth("admin", Some("s3cret"))
            .send()
            .unwrap();
        assert_eq!(allowed.status(), StatusCode::OK);
    }
    assert_eq!(
        client.get(app.url("/-/healthy")).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(app.url("/-/ready")).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client.post(app.url("/-/reload")).send().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn external_url_path_becomes_the_route_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "web:\n  external_url: https://lab.example/sightline/\n",
    );
    let app = Appliance::start_under(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        "/sightline",
    );
    let client = http();
    assert_eq!(
        client
            .get(app.url("/sightline/-/healthy"))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(app.url("/sightline/metrics"))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(app.url("/-/healthy")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn listens_on_every_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &["--listen", "127.0.0.2:0"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let addresses = loop {
        let addresses: Vec<String> = app
            .log()
            .iter()
            .filter_map(|line| line.split("address=").nth(1).map(|a| a.trim().to_owned()))
            .collect();
        if addresses.len() == 2 || Instant::now() > deadline {
            break addresses;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    for address in addresses {
        let url = format!("http://{address}/-/healthy");
        assert_eq!(http().get(url).send().unwrap().status(), StatusCode::OK);
    }
}

#[test]
fn scrapes_itself_into_storage_and_replays_it_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "scrape_configs:\n  - job_name: sightline\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    );
    let data = dir.path().join("data");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ];
    let mut app = Appliance::start(&data, &args);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let line = app.wait_for_metric("sightline_tsdb_head_samples_appended_total ");
        let appended: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        if appended > 100.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no samples stored: {line}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let series_line = app.wait_for_metric("sightline_tsdb_head_series ");
    let series: f64 = series_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(series > 20.0, "{series_line}");

    app.signal("TERM");
    assert!(
        app.wait_for_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let restarted = Appliance::start(&data, &args);
    restarted.wait_for_metric("sightline_tsdb_head_series ");
    let replayed = restarted
        .log()
        .into_iter()
        .find(|line| line.contains("metrics WAL replayed"))
        .expect("replay is logged");
    let replayed_series: f64 = replayed
        .split("series=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(replayed_series >= series, "{replayed}");
}

#[test]
fn prometheus_api_answers_from_scraped_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance(dir.path());

    let up = get_json(&app, "/api/v1/query?query=up");
    assert_eq!(up["status"], "success");
    assert_eq!(up["data"]["resultType"], "vector");
    let sample = &up["data"]["result"][0];
    assert_eq!(sample["metric"]["job"], "sightline");
    assert_eq!(sample["value"][1], "1");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = get_json(
        &app,
        &format!(
            "/api/v1/query_range?query=sum(scrape_samples_scraped)&start={}&end={}&step=1",
            now - 30,
            now + 1
        ),
    );
    assert_eq!(range["data"]["resultType"], "matrix", "{range}");
    assert!(
        !range["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let posted = http()
        .post(app.url("/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=count(up)")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(posted.contains(r#""value":["#), "{posted}");

    let series = get_json(&app, "/api/v1/series?match[]=up");
    assert_eq!(series["data"].as_array().unwrap().len(), 1);
    let labels = get_json(&app, "/api/v1/labels");
    for name in ["__name__", "instance", "job"] {
        assert!(
            labels["data"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(name)),
            "{labels}"
        );
    }
    assert_eq!(
        get_json(&app, "/api/v1/label/job/values")["data"],
        serde_json::json!(["sightline"])
    );

    let targets = get_json(&app, "/api/v1/targets");
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["scrapePool"], "sightline");
    assert_eq!(target["health"], "up");
    assert_eq!(target["scrapeInterval"], "1s");

    let build = get_json(&app, "/api/v1/status/buildinfo");
    assert_eq!(build["data"]["version"], env!("CARGO_PKG_VERSION"));
    let tsdb = get_json(&app, "/api/v1/status/tsdb");
    assert!(
        tsdb["data"]["headStats"]["numSeries"].as_u64().unwrap() > 10,
        "{tsdb}"
    );
    assert!(
        !tsdb["data"]["seriesCountByMetricName"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn prometheus_api_rejects_bad_requests_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let cases = [
        ("/api/v1/query?query=up%7B", 400, "bad_data"),
        ("/api/v1/query", 400, "bad_data"),
        ("/api/v1/query?query=up&time=yesterday", 400, "bad_data"),
        (
            "/api/v1/query_range?query=up&start=10&end=20",
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=up&start=20&end=10&step=1",
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            400,
            "bad_data",
        ),
        ("/api/v1/series", 400, "bad_data"),
        ("/api/v1/series?match[]=rate(up[5m])", 400, "bad_data"),
        ("/api/v1/query?query=rate(up)", 400, "bad_data"),
    ];
    for (path, status, kind) in cases {
        let response = http().get(app.url(path)).send().unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: serde_json::Value = serde_json::from_str(&response.text().unwrap()).unwrap();
        assert_eq!(
            (body["status"].as_str(), body["errorType"].as_str()),
            (Some("error"), Some(kind)),
            "{path}: {body}"
        );
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
}

/// Status, `errorType` and `error` of a query answer.
fn query_error(app: &Appliance, path: &str) -> (u16, String, String) {
    let response = http().get(app.url(path)).send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}: {text}"));
    assert_eq!(body["status"], "error", "{path}: {body}");
    (
        status,
        body["errorType"].as_str().unwrap_or_default().to_owned(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A query that selects nothing at billions of subquery steps: it runs until its timeout.
const ENDLESS_QUERY: &str =
    "/api/v1/query?query=count_over_time(absent_metric%5B100y:1ms%5D)&time=0";

#[test]
fn query_limits_answer_with_prometheus_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "query:\n  max_samples: 100\n  timeout: 1s\n  max_concurrency: 1\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );

    // 201 output points of one series are more than 100 samples.
    assert_eq!(
        query_error(
            &app,
            "/api/v1/query_range?query=vector(1)&start=0&end=200&step=1"
        ),
        (
            422,
            "execution".to_owned(),
            "query processing would load too many samples into memory in query execution"
                .to_owned()
        )
    );
    assert_eq!(
        query_error(&app, ENDLESS_QUERY),
        (
            503,
            "timeout".to_owned(),
            "query timed out in expression evaluation".to_owned()
        )
    );

    // With the only slot taken, a query with a shorter `timeout` times out waiting for it.
    let holder = {
        let url = app.url(ENDLESS_QUERY);
        std::thread::spawn(move || http().get(url).send().unwrap().status().as_u16())
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        query_error(&app, "/api/v1/query?query=vector(1)&timeout=100ms"),
        (
            503,
            "timeout".to_owned(),
            "query timed out in query queue".to_owned()
        )
    );
    assert_eq!(holder.join().unwrap(), 503);
    // The slot is free again.
    assert_eq!(
        get_json(&app, "/api/v1/query?query=vector(1)")["status"],
        "success"
    );
}

#[test]
fn bad_query_time_and_step_are_bad_data_with_prometheus_messages() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let cases = [
        // Parse errors with Prometheus's line:column (the same texts as Prometheus 2.42).
        (
            "/api/v1/query?query=sum(rate(up%5B5m%5D)",
            "invalid parameter \"query\": 1:17: parse error: unclosed left parenthesis",
        ),
        (
            "/api/v1/query_range?query=up%20%24%20x&start=0&end=10&step=1",
            "invalid parameter \"query\": 1:4: parse error: unexpected character: '$'",
        ),
        (
            "/api/v1/query?query=up%20bar",
            "invalid parameter \"query\": 1:4: parse error: unexpected identifier \"bar\"",
        ),
        (
            "/api/v1/query?query=sum(rate(up))",
            "invalid parameter \"query\": 1:10: parse error: expected type range vector in call \
             to function \"rate\", got instant vector",
        ),
        (
            "/api/v1/query?query=sum(up)%5B5m%5D",
            "invalid parameter \"query\": 1:8: parse error: ranges only allowed for vector \
             selectors",
        ),
        (
            "/api/v1/query?query=rate(up%5B5m%5D,)",
            "invalid parameter \"query\": 1:12: parse error: trailing commas not allowed in \
             function call args",
        ),
        (
            "/api/v1/query?query=up&time=yesterday",
            "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0",
            "invalid parameter \"step\": zero or negative query resolution step widths are \
             not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=often",
            "invalid parameter \"step\": cannot parse \"often\" to a valid duration",
        ),
        (
            "/api/v1/query?query=up&timeout=soon",
            "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration",
        ),
    ];
    for (path, message) in cases {
        assert_eq!(
            query_error(&app, path),
            (400, "bad_data".to_owned(), message.to_owned()),
            "{path}"
        );
    }
}

/// Polls an instant query until it returns a sample, or fails after 15 s.
fn wait_for_result(app: &Appliance, query: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let encoded: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let path = format!("/api/v1/query?query={encoded}");
        let result = get_json(app, &path)["data"]["result"].clone();
        if result.as_array().is_some_and(|r| !r.is_empty()) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: no result; log: {:?}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn query_answers_carry_warnings_and_infos() {
    let dir = tempfile::tempdir().unwrap();
    let app = scraping_appliance(dir.path());

    let plain = get_json(&app, "/api/v1/query?query=up");
    assert!(
        plain.get("warnings").is_none() && plain.get("infos").is_none(),
        "{plain}"
    );

    let rate = get_json(&app, "/api/v1/query?query=rate(up%5B1m%5D)");
    assert_eq!(rate["status"], "success", "{rate}");
    assert_eq!(
        rate["infos"],
        serde_json::json!([
            "PromQL info: metric might not be a counter, name does not end in \
             _total/_sum/_count/_bucket: \"up\" (1:6)"
        ]),
        "{rate}"
    );
    assert!(rate.get("warnings").is_none(), "{rate}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let quantile = get_json(
        &app,
        &format!(
            "/api/v1/query_range?query=histogram_quantile(1.5,%20up)&start={}&end={}&step=1",
            now - 5,
            now + 1
        ),
    );
    assert_eq!(quantile["status"], "success", "{quantile}");
    assert_eq!(
        quantile["warnings"],
        serde_json::json!([
            "PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:20)",
            "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\" \
             for metric name \"up\" (1:25)"
        ]),
        "{quantile}"
    );
}

#[test]
fn rules_evaluate_over_scraped_data_and_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let rules = write_file(
        dir.path(),
        "rules.yaml",
        "groups:\n  - name: self\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: SightlineUp\n        expr: up == 1\n        annotations:\n          summary: '{{ $labels.job }} is up'\n",
    );
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yaml]\nscrape_configs:\n  - job_name: sightline\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let recorded = wait_for_result(&app, "job:up:sum");
    assert_eq!(recorded[0]["metric"]["job"], "sightline");
    assert_eq!(recorded[0]["value"][1], "1");
    let alerts = wait_for_result(&app, r#"ALERTS{alertname="SightlineUp"}"#);
    assert_eq!(alerts[0]["metric"]["alertstate"], "firing");
    assert_eq!(alerts[0]["metric"]["job"], "sightline");

    let listed = get_json(&app, "/api/v1/rules");
    let group = &listed["data"]["groups"][0];
    assert_eq!(group["name"], "self");
    assert_eq!(group["interval"], 1.0);
    assert_eq!(group["rules"][0]["type"], "recording");
    assert_eq!(group["rules"][0]["health"], "ok");
    assert_eq!(group["rules"][1]["type"], "alerting");
    assert_eq!(group["rules"][1]["state"], "firing");
    assert_eq!(
        group["rules"][1]["alerts"][0]["annotations"]["summary"],
        "sightline is up"
    );
    let only_alerts = get_json(&app, "/api/v1/rules?type=alert");
    assert_eq!(
        only_alerts["data"]["groups"][0]["rules"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let active = get_json(&app, "/api/v1/alerts");
    assert_eq!(
        active["data"]["alerts"][0]["labels"]["alertname"],
        "SightlineUp"
    );
    assert_eq!(active["data"]["alerts"][0]["state"], "firing");
    assert_eq!(active["data"]["alerts"][0]["value"], "1e+00");

    std::fs::write(
        &rules,
        "groups:\n  - name: self\n    rules:\n      - record: job:up:count\n        expr: count by (job) (up)\n",
    )
    .unwrap();
    app.signal("HUP");
    let counted = wait_for_result(&app, "job:up:count");
    assert_eq!(counted[0]["value"][1], "1");
}

#[test]
fn listening_beyond_loopback_without_users_is_warned_about_in_the_log_and_on_home() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let open = Appliance::start(&dir.path().join("open"), &["--listen", &listen]);
    let warned = |app: &Appliance| {
        app.log()
            .iter()
            .any(|line| line.contains("WARN") && line.contains("without authentication"))
    };
    assert!(warned(&open), "{:#?}", open.log());
    let home = http()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        home.contains("Open to the network") && home.contains(&listen),
        "{home}"
    );
    drop(open);

    // With a user, neither the log nor Home warns; on loopback alone, neither does.
    let config = write_file(
        dir.path(),
        "auth.yml",
        "web:\n  auth:\n    basic_auth_users:\n      admin: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n",
    );
    let guarded = Appliance::start(
        &dir.path().join("guarded"),
        &["--config", config.to_str().unwrap(), "--listen", &listen],
    );
    assert!(!warned(&guarded), "{:#?}", guarded.log());
    drop(guarded);
    let local = Appliance::start(&dir.path().join("local"), &["--listen", "127.0.0.1:0"]);
    assert!(!warned(&local), "{:#?}", local.log());
    let home = http().get(local.url("/")).send().unwrap().text().unwrap();
    assert!(!home.contains("Open to the network"));
}

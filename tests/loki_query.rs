//! The Loki query API on the real binary over loopback HTTP: Loki's JSON shapes for streams,
//! matrices, vectors and scalars; `direction`, `limit`, `step`, `interval`; labels, values,
//! series, index stats and volume, `format_query`, `/ready`; parse errors with positions; a
//! replay of the requests Grafana's Loki datasource makes; and the live tail over a websocket
//! receiving lines pushed after it connected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Appliance, http};
use serde_json::{Value, json};

const SECOND: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn push(app: &Appliance, labels: Value, entries: &[(i64, &str)]) {
    let values: Vec<Value> = entries
        .iter()
        .map(|(ts, line)| json!([ts.to_string(), line]))
        .collect();
    let body = json!({"streams": [{"stream": labels, "values": values}]});
    let response = http()
        .post(app.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 204, "{}", response.text().unwrap());
}

fn get(app: &Appliance, path: &str, params: &[(&str, String)]) -> (u16, String) {
    let url =
        url::Url::parse_with_params(&app.url(path), params.iter().map(|(k, v)| (*k, v.as_str())))
            .unwrap();
    let response = http().get(url).send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

fn get_ok(app: &Appliance, path: &str, params: &[(&str, String)]) -> Value {
    let (status, body) = get(app, path, params);
    assert_eq!(status, 200, "{path}: {body}");
    let value: Value = serde_json::from_str(&body).unwrap();
    value
}

/// An appliance with two streams: api (logfmt, 4 lines) and web (json, 2 lines), ten seconds
/// apart, the last one `base + 50s`.
fn loaded() -> (tempfile::TempDir, Appliance, i64) {
    loaded_with_config("")
}

/// [`loaded`] with `config` as its configuration file (none when empty).
fn loaded_with_config(config: &str) -> (tempfile::TempDir, Appliance, i64) {
    let dir = tempfile::tempdir().unwrap();
    let app = if config.is_empty() {
        Appliance::start(dir.path(), &[])
    } else {
        let file = common::write_file(dir.path(), "sightline.yaml", config);
        Appliance::start(dir.path(), &["--config", file.to_str().unwrap()])
    };
    let base = (now_ns() / SECOND - 120) * SECOND;
    push(
        &app,
        json!({"app": "api", "env": "prod"}),
        &[
            (
                base + 10 * SECOND,
                "level=info status=200 msg=\"GET /users\"",
            ),
            (
                base + 20 * SECOND,
                "level=error status=500 msg=\"GET /orders\"",
            ),
            (base + 30 * SECOND, "level=warn status=200 msg=\"slow\""),
            (
                base + 40 * SECOND,
                "level=error status=503 msg=\"POST /orders\"",
            ),
        ],
    );
    push(
        &app,
        json!({"app": "web", "env": "dev"}),
        &[
            (base + 25 * SECOND, r#"{"level":"info","path":"/"}"#),
            (base + 50 * SECOND, r#"{"level":"error","path":"/login"}"#),
        ],
    );
    (dir, app, base)
}

fn lines(stream: &Value) -> Vec<&str> {
    stream["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap())
        .collect()
}

#[test]
fn query_range_returns_streams_and_matrices_in_lokis_shapes() {
    let (_dir, app, base) = loaded();
    let range = |extra: &[(&str, String)]| {
        let mut params = vec![
            ("start", base.to_string()),
            ("end", (base + 60 * SECOND).to_string()),
        ];
        params.extend(extra.iter().cloned());
        get_ok(&app, "/loki/api/v1/query_range", &params)
    };

    // Log query: streams, newest first by default, limit over all streams.
    let body = range(&[
        ("query", r#"{env=~".+"} |= "error""#.into()),
        ("limit", "2".into()),
    ]);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "streams");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["stream"], json!({"app": "api", "env": "prod"}));
    assert_eq!(
        lines(&result[0]),
        ["level=error status=503 msg=\"POST /orders\""]
    );
    assert_eq!(result[1]["stream"], json!({"app": "web", "env": "dev"}));
    let first = &result[0]["values"][0];
    assert_eq!(
        first[0],
        json!((base + 40 * SECOND).to_string()),
        "timestamps are ns strings"
    );
    assert!(
        body["data"]["stats"]["summary"]["totalLinesProcessed"]
            .as_u64()
            .unwrap()
            >= 6
    );

    // direction=forward, parsed labels, line_format.
    let body = range(&[
        (
            "query",
            r#"{app="api"} | logfmt | level="error" | line_format "{{.status}} {{.msg}}""#.into(),
        ),
        ("direction", "forward".into()),
    ]);
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "one stream per label set: {body}");
    assert_eq!(result[0]["stream"]["status"], "500");
    assert_eq!(lines(&result[0]), ["500 GET /orders"]);
    assert_eq!(lines(&result[1]), ["503 POST /orders"]);

    // interval: at most one entry per 25 s from the start.
    let body = range(&[
        ("query", r#"{app="api"}"#.into()),
        ("direction", "forward".into()),
        ("interval", "25s".into()),
    ]);
    assert_eq!(lines(&body["data"]["result"][0]).len(), 2, "{body}");

    // Metric query: a matrix of [seconds, "value"] pairs at each step.
    let body = range(&[
        (
            "query",
            r#"sum by (app) (count_over_time({env=~".+"}[20s]))"#.into(),
        ),
        ("step", "20s".into()),
    ]);
    assert_eq!(body["data"]["resultType"], "matrix");
    let series = body["data"]["result"].as_array().unwrap();
    assert_eq!(series[0]["metric"], json!({"app": "api"}));
    let values = series[0]["values"].as_array().unwrap();
    let first_step = base as f64 / 1e9 + 20.0;
    assert_eq!(values[0], json!([first_step, "2"]));
    assert_eq!(values[1], json!([first_step + 20.0, "2"]));
    assert_eq!(series[1]["metric"], json!({"app": "web"}));

    // A step given as float seconds, and the default step.
    let body = range(&[
        ("query", r#"rate({app="web"}[1m])"#.into()),
        ("step", "30".into()),
    ]);
    assert_eq!(
        body["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Default step: the range over 250 points, at least 1 s: steps each second, and the
    // window holds an entry from the first one (at +25 s) to the end (+60 s).
    let body = range(&[("query", r#"count_over_time({app="web"}[1m])"#.into())]);
    assert_eq!(
        body["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        36
    );

    // Limits and errors: plain text with Loki's messages.
    let (status, text) = get(
        &app,
        "/loki/api/v1/query_range",
        &[("query", r#"{app="api"}"#.into()), ("limit", "5001".into())],
    );
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            "max entries limit per query exceeded, limit > max_entries_limit (5001 > 5000)\n"
        )
    );
    let (status, text) = get(
        &app,
        "/loki/api/v1/query_range",
        &[("query", r#"{app="api"} | jsn"#.into())],
    );
    assert_eq!(status, 400);
    assert!(
        text.starts_with(
            "parse error at line 1, col 15: syntax error: unexpected IDENTIFIER \"jsn\""
        ),
        "{text}"
    );
    let (status, text) = get(
        &app,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum_over_time({app="web"} | json | unwrap path [1m])"#.into(),
            ),
            ("start", base.to_string()),
        ],
    );
    assert_eq!(status, 400);
    assert!(
        text.starts_with("pipeline error: 'SampleExtractionErr'"),
        "{text}"
    );
}

#[test]
fn configured_query_limits_fail_queries_with_their_reasons() {
    let (_dir, app, base) = loaded_with_config(
        "limits:\n  logs:\n    max_entries_limit_per_query: 3\n    max_query_series: 1\n    max_query_bytes_read: 100B\n",
    );
    let query = |query: &str, extra: &[(&str, String)]| {
        let mut params = vec![
            ("query", query.to_owned()),
            ("start", base.to_string()),
            ("end", (base + 60 * SECOND).to_string()),
        ];
        params.extend_from_slice(extra);
        get(&app, "/loki/api/v1/query_range", &params)
    };
    assert_eq!(
        query(r#"{app="web"}"#, &[("limit", "4".into())]),
        (
            400,
            "max entries limit per query exceeded, limit > max_entries_limit (4 > 3)\n".into()
        )
    );
    let (status, text) = query(r#"{app="web"}"#, &[("limit", "3".into())]);
    assert_eq!(status, 200, "{text}");
    let (status, text) = query(
        r#"sum by (level) (count_over_time({app="web"} | json [1m]))"#,
        &[],
    );
    assert_eq!(status, 400);
    assert!(
        text.starts_with("maximum number of series (1) reached for a single query"),
        "{text}"
    );
    let (status, text) = query(r#"sum(count_over_time({app="web"}[1m]))"#, &[]);
    assert_eq!(status, 200, "{text}");
    // The api stream's four lines are 151 bytes, the web stream's two 60; metric queries
    // count what they read too, as Loki's limit does.
    let (status, text) = query(r#"{app="api"}"#, &[("limit", "3".into())]);
    assert_eq!(status, 400);
    assert!(
        text.starts_with("the query would read more than 100 bytes of log lines"),
        "{text}"
    );
    let (status, text) = query(r#"count_over_time({env=~".+"}[1m])"#, &[]);
    assert_eq!(status, 400);
    assert!(
        text.starts_with("the query would read more than 100 bytes of log lines"),
        "{text}"
    );
    let (status, text) = query(r#"{app="web"} |= "login""#, &[("limit", "3".into())]);
    assert_eq!(status, 200, "{text}");
}

#[test]
fn instant_queries_metadata_and_format() {
    let (_dir, app, base) = loaded();
    let at = (base + 60 * SECOND).to_string();

    let body = get_ok(
        &app,
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sort_desc(count_over_time({env=~".+"}[1m]))"#.into(),
            ),
            ("time", at.clone()),
        ],
    );
    assert_eq!(body["data"]["resultType"], "vector");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result[0]["metric"], json!({"app": "api", "env": "prod"}));
    assert_eq!(
        result[0]["value"],
        json!([(base + 60 * SECOND) as f64 / 1e9, "4"])
    );
    assert_eq!(result[1]["value"][1], "2");

    let body = get_ok(
        &app,
        "/loki/api/v1/query",
        &[("query", "1 + 2 * 3".into()), ("time", at.clone())],
    );
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"][1], "7");

    let (status, text) = get(
        &app,
        "/loki/api/v1/query",
        &[("query", r#"{app="api"}"#.into())],
    );
    assert_eq!(status, 400);
    assert!(text.starts_with("log queries are not supported as an instant query type"));

    let range = [("start", base.to_string()), ("end", at.clone())];
    let body = get_ok(&app, "/loki/api/v1/labels", &range);
    assert_eq!(body, json!({"status": "success", "data": ["app", "env"]}));
    let body = get_ok(&app, "/loki/api/v1/label/app/values", &range);
    assert_eq!(body["data"], json!(["api", "web"]));
    let mut with_query = range.to_vec();
    with_query.push(("query", r#"{env="dev"}"#.into()));
    let body = get_ok(&app, "/loki/api/v1/label/app/values", &with_query);
    assert_eq!(body["data"], json!(["web"]));
    let mut series = range.to_vec();
    series.push(("match[]", r#"{app="api"}"#.into()));
    series.push(("match[]", r#"{env="dev"}"#.into()));
    let body = get_ok(&app, "/loki/api/v1/series", &series);
    assert_eq!(
        body["data"],
        json!([{"app": "api", "env": "prod"}, {"app": "web", "env": "dev"}])
    );

    let mut stats = range.to_vec();
    stats.push(("query", r#"{env=~".+"}"#.into()));
    let body = get_ok(&app, "/loki/api/v1/index/stats", &stats);
    assert_eq!(body["streams"], 2);
    assert_eq!(body["entries"], 6);
    assert!(body["bytes"].as_u64().unwrap() > 100);
    assert!(body.get("chunks").is_some());

    let body = get_ok(&app, "/loki/api/v1/index/volume", &stats);
    assert_eq!(body["data"]["resultType"], "vector");
    let volumes = body["data"]["result"].as_array().unwrap();
    assert_eq!(volumes.len(), 2);
    assert_eq!(
        volumes[0]["metric"],
        json!({"env": "prod"}),
        "largest first: {body}"
    );
    let mut by_app = stats.clone();
    by_app.push(("targetLabels", "app".into()));
    let body = get_ok(&app, "/loki/api/v1/index/volume", &by_app);
    assert_eq!(body["data"]["result"][1]["metric"], json!({"app": "web"}));

    let body = get_ok(
        &app,
        "/loki/api/v1/format_query",
        &[("query", r#"sum by(app)(rate({app="api"}|="x"[5m]))"#.into())],
    );
    assert_eq!(
        body["data"],
        r#"sum by (app) (rate({app="api"} |= "x" [5m]))"#
    );

    let (status, text) = get(&app, "/ready", &[]);
    assert_eq!((status, text.as_str()), (200, "ready\n"));
}

/// The requests Grafana's Loki datasource sends (captured from Grafana 11's explore view,
/// log volume histogram, label browser and health check), with the fields it reads.
#[test]
fn grafana_loki_datasource_replay() {
    let (_dir, app, base) = loaded();
    let start = base.to_string();
    let end = (base + 60 * SECOND).to_string();

    // Health check: an instant `vector(1)+vector(1)`.
    let body = get_ok(
        &app,
        "/loki/api/v1/query",
        &[
            ("query", "vector(1)+vector(1)".into()),
            ("time", end.clone()),
        ],
    );
    assert_eq!(body["data"]["result"][0]["value"][1], "2");

    // Label browser.
    let body = get_ok(
        &app,
        "/loki/api/v1/labels",
        &[("start", start.clone()), ("end", end.clone())],
    );
    assert!(body["data"].as_array().unwrap().contains(&json!("app")));
    let body = get_ok(
        &app,
        "/loki/api/v1/label/env/values",
        &[
            ("start", start.clone()),
            ("end", end.clone()),
            ("query", r#"{app="api"}"#.into()),
        ],
    );
    assert_eq!(body["data"], json!(["prod"]));
    let body = get_ok(
        &app,
        "/loki/api/v1/series",
        &[
            ("match[]", r#"{app="api"}"#.into()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    // Explore: stats first, then the logs and the volume histogram.
    let body = get_ok(
        &app,
        "/loki/api/v1/index/stats",
        &[
            ("query", r#"{app="api"}"#.into()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    );
    assert_eq!(body["entries"], 4);
    let body = get_ok(
        &app,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward".into()),
            ("end", end.clone()),
            ("limit", "1000".into()),
            ("query", r#"{app="api"} |= `` | logfmt"#.into()),
            ("start", start.clone()),
            ("step", "100ms".into()),
        ],
    );
    let streams = body["data"]["result"].as_array().unwrap();
    let total: usize = streams
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 4);
    let body = get_ok(
        &app,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward".into()),
            ("end", end.clone()),
            ("query", r#"sum by (level, detected_level) (count_over_time({app="api"} | drop __error__[1s]))"#.into()),
            ("start", start.clone()),
            ("step", "1000ms".into()),
        ],
    );
    assert_eq!(body["data"]["resultType"], "matrix");
    let points: usize = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 4);
    let body = get_ok(
        &app,
        "/loki/api/v1/index/volume",
        &[
            ("query", r#"{app="api"}"#.into()),
            ("start", start.clone()),
            ("end", end.clone()),
            ("limit", "5000".into()),
            ("aggregateBy", "series".into()),
        ],
    );
    assert_eq!(
        body["data"]["result"][0]["metric"],
        json!({"app": "api", "env": "prod"})
    );

    // A dashboard panel: range query with RFC 3339 times and a step in seconds.
    let rfc3339 = |ns: i64| chrono_like(ns);
    let body = get_ok(
        &app,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"sum(rate({env=~".+"} |= "error" [30s]))"#.into()),
            ("start", rfc3339(base)),
            ("end", rfc3339(base + 60 * SECOND)),
            ("step", "15".into()),
        ],
    );
    assert_eq!(body["data"]["result"][0]["metric"], json!({}));
}

/// RFC 3339 text of a time in whole seconds (UTC), without a date library.
fn chrono_like(ns: i64) -> String {
    let seconds = ns / SECOND;
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[test]
fn live_tail_sends_lines_pushed_after_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(dir.path(), &[]);
    let before = now_ns() - 5 * SECOND;
    push(
        &app,
        json!({"app": "tail"}),
        &[(before, "before connecting")],
    );

    let url = app
        .url("/loki/api/v1/tail?query=%7Bapp%3D%22tail%22%7D%20%7C%3D%20%22ing%22&limit=10")
        .replacen("http://", "ws://", 1);
    let address = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut socket, response) = tungstenite::client(url.as_str(), stream).unwrap();
    assert_eq!(response.status(), 101);

    let mut seen: Vec<String> = Vec::new();
    let mut pushed = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|l| l == "pushed while tailing") {
        assert!(
            Instant::now() < deadline,
            "tail did not deliver the new line; saw {seen:?}"
        );
        let message = socket.read().unwrap();
        let tungstenite::Message::Text(text) = message else {
            continue;
        };
        let body: Value = serde_json::from_str(text.as_str()).unwrap();
        assert!(body.get("dropped_entries").is_some(), "{body}");
        for stream in body["streams"].as_array().unwrap() {
            assert_eq!(stream["stream"], json!({"app": "tail"}));
            seen.extend(lines(stream).into_iter().map(str::to_owned));
        }
        if !pushed {
            assert_eq!(
                seen,
                ["before connecting"],
                "the first batch is the recent history"
            );
            push(
                &app,
                json!({"app": "tail"}),
                &[
                    (now_ns(), "filtered out"),
                    (now_ns() + 1, "pushed while tailing"),
                ],
            );
            pushed = true;
        }
    }
    assert!(!seen.iter().any(|l| l == "filtered out"), "{seen:?}");
    socket.close(None).unwrap();

    // A bad query is refused before the upgrade, as plain text.
    let (status, text) = get(&app, "/loki/api/v1/tail", &[("query", "{app=".into())]);
    assert_eq!(status, 400, "{text}");
}

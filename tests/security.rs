//! Roles and CSRF over real HTTP: an admin and a viewer user (bcrypt), a push token and a
//! viewer token (one inline, one from a file); what each may read, push and change; a
//! cross-site change refused even from an admin's browser, also without authentication;
//! tokens hidden in `/api/v1/status/config`; users named by a trusted proxy and anonymous
//! viewers; and no request that makes Sightline fetch a URL it carries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use chrono::{Duration as Span, SecondsFormat, Utc};
use common::{Appliance, http, write_file};
use reqwest::StatusCode;
use reqwest::blocking::RequestBuilder;
use serde_json::json;

const PUSH_TOKEN: &str = "push-0123456789abcdef";
const VIEW_TOKEN: &str = "view-0123456789abcdef";

fn silence() -> serde_json::Value {
    let now = Utc::now();
    json!({
        "matchers": [{"name": "alertname", "value": "Noisy", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "endsAt": (now + Span::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        "createdBy": "test",
        "comment": "maintenance",
    })
}

fn push_body() -> serde_json::Value {
    let ns = Utc::now().timestamp_nanos_opt().unwrap().to_string();
    json!({"streams": [{"stream": {"app": "door"}, "values": [[ns, "opened"]]}]})
}

/// The status of `request`.
fn status(request: RequestBuilder) -> StatusCode {
    request.send().unwrap().status()
}

#[test]
fn users_and_tokens_may_do_what_their_role_allows() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "viewer.token", &format!("{VIEW_TOKEN}\n"));
    let admin = bcrypt::hash("admin-pw", 4).unwrap();
    let guest = bcrypt::hash("guest-pw", 4).unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        &format!(
            "web:\n  auth:\n    basic_auth_users:\n      admin: '{admin}'\n      guest: '{guest}'\n    viewers: [guest]\n    bearer_tokens:\n      - {{token: {PUSH_TOKEN}, role: push}}\n      - {{token_file: viewer.token, role: viewer}}\n"
        ),
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let client = http();
    let query = || client.get(app.url("/api/v1/query?query=up"));
    let query_form = || {
        client
            .post(app.url("/api/v1/query"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("query=up")
    };
    let add_silence = || {
        client
            .post(app.url("/api/v2/silences"))
            .header("Content-Type", "application/json")
            .body(silence().to_string())
    };
    let push = || {
        client
            .post(app.url("/loki/api/v1/push"))
            .header("Content-Type", "application/json")
            .body(push_body().to_string())
    };
    let reload = || client.post(app.url("/-/reload"));

    // Nobody: only the probes.
    assert_eq!(status(query()), StatusCode::UNAUTHORIZED);
    assert_eq!(status(push()), StatusCode::UNAUTHORIZED);
    assert_eq!(status(client.get(app.url("/-/ready"))), StatusCode::OK);

    // The admin may do everything.
    let as_admin = |request: RequestBuilder| request.basic_auth("admin", Some("admin-pw"));
    assert_eq!(status(as_admin(query())), StatusCode::OK);
    assert_eq!(status(as_admin(add_silence())), StatusCode::OK);
    assert_eq!(status(as_admin(push())), StatusCode::NO_CONTENT);
    assert_eq!(status(as_admin(reload())), StatusCode::OK);

    // The viewer reads, also with query forms, and may not change or push anything.
    let as_guest = |request: RequestBuilder| request.basic_auth("guest", Some("guest-pw"));
    assert_eq!(status(as_guest(query())), StatusCode::OK);
    assert_eq!(status(as_guest(query_form())), StatusCode::OK);
    assert_eq!(
        status(as_guest(client.get(app.url("/api/v2/silences")))),
        StatusCode::OK
    );
    let refused = as_guest(add_silence()).send().unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .unwrap()
            .contains("user \"guest\" has the viewer role")
    );
    assert_eq!(status(as_guest(reload())), StatusCode::FORBIDDEN);
    assert_eq!(status(as_guest(push())), StatusCode::FORBIDDEN);
    assert_eq!(
        status(as_guest(
            client.delete(app.url("/api/dashboards/uid/anything"))
        )),
        StatusCode::FORBIDDEN
    );

    // The push token pushes (Loki and remote write reach their handlers) and reads nothing.
    let as_pusher = |request: RequestBuilder| request.bearer_auth(PUSH_TOKEN);
    assert_eq!(status(as_pusher(push())), StatusCode::NO_CONTENT);
    assert_eq!(
        status(as_pusher(client.post(app.url("/api/v1/write")).body("x"))),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(status(as_pusher(query())), StatusCode::FORBIDDEN);
    assert_eq!(status(as_pusher(add_silence())), StatusCode::FORBIDDEN);

    // The viewer token, read from its file, reads; a wrong token is nobody.
    assert_eq!(status(query().bearer_auth(VIEW_TOKEN)), StatusCode::OK);
    assert_eq!(
        status(push().bearer_auth(VIEW_TOKEN)),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(query().bearer_auth("view-0123456789abcdeX")),
        StatusCode::UNAUTHORIZED
    );

    // CSRF: the admin's browser on another site may not change anything; on Sightline's own
    // origin it may.
    let origin = app.url("").trim_end_matches('/').to_owned();
    assert_eq!(
        status(as_admin(add_silence()).header("Origin", "http://evil.example")),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(as_admin(add_silence()).header("Sec-Fetch-Site", "cross-site")),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(as_admin(add_silence()).header("Origin", &origin)),
        StatusCode::OK
    );
    assert_eq!(
        status(as_admin(add_silence()).header("Sec-Fetch-Site", "same-origin")),
        StatusCode::OK
    );
    // Reading cross-site stays allowed (a page cannot read the answer anyway).
    assert_eq!(
        status(as_admin(query_form()).header("Origin", "http://evil.example")),
        StatusCode::OK
    );

    // Tokens never show in the config the API returns.
    let config = as_admin(client.get(app.url("/api/v1/status/config")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!config.contains(PUSH_TOKEN), "{config}");
    assert!(config.contains("token: <secret>"), "{config}");
}

#[test]
fn without_authentication_cross_site_changes_are_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let client = http();
    let reload = || client.post(app.url("/-/reload"));
    assert_eq!(
        status(reload().header("Origin", "http://evil.example")),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(
            client
                .post(app.url("/api/v2/silences"))
                .header("Content-Type", "application/json")
                .body(silence().to_string())
                .header("Sec-Fetch-Site", "cross-site")
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(reload()), StatusCode::OK);
}

/// A client whose requests leave from `address` (any of 127.0.0.0/8 reaches the loopback
/// listener), standing in for a proxy or for someone who bypasses it.
fn client_from(address: &str) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn proxy_users_are_believed_only_from_the_trusted_proxy_and_guests_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "sightline.yml",
        "web:\n  auth:\n    proxy:\n      trusted_proxies: [127.0.0.1]\n      admins: [alice@example.org]\n    anonymous: viewer\n",
    );
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let proxy = client_from("127.0.0.1");
    let elsewhere = client_from("127.0.0.2");
    let add_silence = |client: &reqwest::blocking::Client, user: Option<(&str, &str)>| {
        let mut request = client
            .post(app.url("/api/v2/silences"))
            .header("Content-Type", "application/json")
            .body(silence().to_string());
        if let Some((header, value)) = user {
            request = request.header(header, value);
        }
        status(request)
    };
    // oauth2-proxy's headers from the proxy: the admin may change things, others only read.
    let alice = Some(("X-Auth-Request-Email", "alice@example.org"));
    assert_eq!(add_silence(&proxy, alice), StatusCode::OK);
    // oauth2-proxy may pass its own Authorization header along: the proxy's user header wins.
    let with_token = proxy
        .get(app.url("/api/v1/query?query=up"))
        .header("X-Auth-Request-User", "bob")
        .header("Authorization", "Bearer an-oauth2-proxy-id-token");
    assert_eq!(status(with_token), StatusCode::OK);
    let bob = Some(("X-Auth-Request-User", "bob"));
    let refused = proxy
        .post(app.url("/api/v2/silences"))
        .header("X-Auth-Request-User", "bob")
        .header("Content-Type", "application/json")
        .body(silence().to_string())
        .send()
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .unwrap()
            .contains("user \"bob\" has the viewer role")
    );
    assert_eq!(add_silence(&proxy, bob), StatusCode::FORBIDDEN);
    assert_eq!(
        status(
            proxy
                .get(app.url("/api/v1/query?query=up"))
                .header("X-Forwarded-User", "bob")
        ),
        StatusCode::OK
    );
    // The same headers from anywhere else are ignored: an anonymous guest, who reads only.
    assert_eq!(add_silence(&elsewhere, alice), StatusCode::FORBIDDEN);
    assert_eq!(add_silence(&elsewhere, None), StatusCode::FORBIDDEN);
    assert_eq!(
        status(elsewhere.get(app.url("/api/v1/query?query=up"))),
        StatusCode::OK
    );
    assert_eq!(status(elsewhere.get(app.url("/alerts"))), StatusCode::OK);

    // Without anonymous access, nobody unnamed gets in, whatever headers they send.
    std::fs::write(
        &config,
        "web:\n  auth:\n    proxy:\n      trusted_proxies: [127.0.0.1/32]\n",
    )
    .unwrap();
    app.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(elsewhere.get(app.url("/api/v1/query?query=up"))) != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload did not apply"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let from_elsewhere = elsewhere
        .get(app.url("/api/v1/query?query=up"))
        .header("X-Auth-Request-User", "alice@example.org");
    assert_eq!(status(from_elsewhere), StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(proxy.get(app.url("/api/v1/query?query=up"))),
        StatusCode::UNAUTHORIZED
    );
    let named = proxy
        .get(app.url("/api/v1/query?query=up"))
        .header("X-Auth-Request-User", "carol");
    assert_eq!(status(named), StatusCode::OK);
}

/// A loopback listener that counts the connections made to it.
struct Canary {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Canary {
    fn start() -> Canary {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        Canary { port, connections }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/steal", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Every input that can carry a URL — query parameters, pushed lines, alerts'
/// `generatorURL`, silences, dashboards with data source URLs and links, Prometheus's
/// `/graph` and the explore pages — is taken as data: Sightline connects to none of them.
#[test]
fn no_request_makes_sightline_fetch_a_url() {
    let canary = Canary::start();
    // The canary counts: one connection of the test's own.
    drop(std::net::TcpStream::connect(("127.0.0.1", canary.port)).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while canary.connections() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary counts nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let target = canary.url();
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(&dir.path().join("data"), &[]);
    let client = http();
    let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let gets = [
        format!("/api/v1/query?query=up&url={encoded}"),
        format!("/api/v1/query_range?query=up&start=0&end=60&step=15&url={encoded}"),
        format!("/federate?match[]=up&url={encoded}"),
        format!("/graph?g0.expr=up&url={encoded}"),
        format!("/explore/metrics?q={encoded}"),
        format!("/explore/logs?q={encoded}"),
        format!("/loki/api/v1/query_range?query=%7Bapp%3D%22x%22%7D&url={encoded}"),
        format!("/api/v1/targets?url={encoded}"),
        format!("/api/search?query={encoded}"),
        format!("/?url={encoded}"),
    ];
    for path in &gets {
        let response = client.get(app.url(path)).send().unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{path}: {}",
            response.status()
        );
    }
    let now = Utc::now();
    let posts: [(&str, serde_json::Value); 4] = [
        (
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "Fetch"}, "generatorURL": target,
                    "annotations": {"runbook_url": target}}]),
        ),
        (
            "/api/v2/silences",
            json!({
                "matchers": [{"name": "alertname", "value": "Fetch", "isRegex": false}],
                "startsAt": now.to_rfc3339_opts(SecondsFormat::Secs, true),
                "endsAt": (now + Span::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
                "createdBy": target, "comment": target,
            }),
        ),
        (
            "/loki/api/v1/push",
            json!({"streams": [{"stream": {"app": "fetch"}, "values": [[
                now.timestamp_nanos_opt().unwrap().to_string(), format!("GET {target}")]]}]}),
        ),
        (
            "/api/dashboards/db",
            json!({"dashboard": {
                "uid": "fetch", "title": "Fetch",
                "links": [{"url": target, "type": "link"}],
                "panels": [{"type": "timeseries", "title": "x",
                            "datasource": {"type": "prometheus", "url": target},
                            "targets": [{"expr": "up", "datasource": {"url": target}}]}],
            }}),
        ),
    ];
    for (path, body) in &posts {
        let response = client
            .post(app.url(path))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    let dashboard = client.get(app.url("/d/fetch")).send().unwrap();
    assert!(dashboard.status().is_success());
    // Give anything started in the background (notifications, rule evaluation) time to act.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        canary.connections(),
        1,
        "Sightline connected to a URL from a request"
    );
}

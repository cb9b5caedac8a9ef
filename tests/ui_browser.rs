//! The web UI in real headless Chromium (Debian `chromium` + `chromium-driver`), driven over
//! WebDriver with fantoccini against the real binary: every page loads without a console
//! error, a PromQL query draws a graph with points (hover values, legend toggle, drag to
//! zoom, stacked, table, autocomplete), a LogQL query lists lines and the volume histogram,
//! a pod's series leads to its logs beside a metric graph, the keyboard alone is enough, a
//! silence made and edited in the UI reaches `/api/v2/silences` (and is expired from the
//! UI), a webhook delivery shows in the notification history, every fixture dashboard
//! renders without a panel error, the built-in dashboards draw data in every panel (with
//! Kubernetes series and pod logs; and on the embedded default, all but those that need
//! them) and drill down from a namespace to a pod's logs, template variables filter panels, live tail and line
//! context work, Home and Alerts fit a phone, and hostile label values and log lines render
//! as text. Screenshots of every page go to `<target>/tmp/ui-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failure is a failed test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use common::{
    Appliance, Recorder, free_port, http, remote_write, remote_write_body, scraping_appliance_with,
};
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Values a page must print as text, never run: they set `window.__xss` if they ever do.
const SCRIPT_TAG: &str = "<script>window.__xss=1</script>";
const BROKEN_ATTRIBUTE: &str = "\"><img src=x onerror=\"window.__xss=2\">";

/// Explore logs on the pushed `{job="uitest"}` lines of the last hour.
const UITEST_LOGS: &str = "/explore/logs?query=%7Bjob%3D%22uitest%22%7D&range=1h";

/// Every page of the navigation, and Prometheus's `/graph` link form.
const PAGES: [(&str, &str); 10] = [
    ("home", "/"),
    ("explore-metrics", "/explore/metrics?expr=up&range=5m"),
    ("explore-logs", UITEST_LOGS),
    ("alerts", "/alerts"),
    ("targets", "/targets"),
    ("rules", "/rules"),
    ("status", "/status"),
    ("graph-link", "/graph?g0.expr=up&g0.tab=1"),
    ("dashboards", "/dashboards"),
    ("dashboard-nodes", "/d/7d57716318ee0dddbac5a7f451fb7753"),
];

/// chromedriver's non-W3C log endpoint: the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// A chromedriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install the Debian packages chromium and chromium-driver \
                 (scripts/test does)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    async fn session(&self, profile: &Path) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Console messages of level SEVERE since the last call.
async fn console_errors(browser: &Client) -> Vec<String> {
    let log = browser.issue_cmd(BrowserLog).await.expect("browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Evaluates `condition` (a JS expression) until it is truthy, failing after 15 s.
async fn wait_until(browser: &Client, condition: &str, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let value = browser
            .execute(&format!("return ({condition});"), Vec::new())
            .await
            .expect("script runs");
        let truthy = !matches!(&value, Value::Null | Value::Bool(false))
            && value != json!(0)
            && value != json!("");
        if truthy {
            return value;
        }
        if Instant::now() > deadline {
            let text = browser
                .execute("return document.body.innerText;", Vec::new())
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what} ({condition}); page text:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `typed` into an emptied `editor` and waits for a suggestion starting with `wanted`.
async fn suggests(
    browser: &Client,
    editor: &fantoccini::elements::Element,
    typed: &str,
    wanted: &str,
) {
    editor.clear().await.unwrap();
    editor.send_keys(typed).await.unwrap();
    let condition = format!(
        "Array.from(document.querySelectorAll('#suggestions li')).some(li => li.textContent.startsWith({}))",
        json!(wanted)
    );
    wait_until(
        browser,
        &condition,
        &format!("a suggestion {wanted:?} for {typed:?}"),
    )
    .await;
}

/// Saves a dashboard through Grafana's `POST /api/dashboards/db`.
fn save_dashboard(app: &Appliance, body: &Value) {
    let status = tokio::task::block_in_place(|| {
        http()
            .post(app.url("/api/dashboards/db"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
}

/// Opens [`UITEST_LOGS`] and waits for its lines; returns the status line's text.
async fn open_uitest_logs(browser: &Client, app: &Appliance) -> String {
    browser.goto(&app.url(UITEST_LOGS)).await.unwrap();
    let status = wait_until(
        browser,
        "/lines shown/.test(document.getElementById('query-status').textContent) && document.getElementById('query-status').textContent",
        "the lines",
    )
    .await;
    status.as_str().unwrap_or_default().to_owned()
}

/// Clicks the element `css` selects.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .click()
        .await
        .unwrap();
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// kube-prometheus's dashboards (../shared/fixtures/dashboards).
fn fixture_dashboards() -> PathBuf {
    common::package_path("../shared/fixtures/dashboards")
}

/// The blocking HTTP helper from inside the browser's async code.
fn get_json(app: &Appliance, path: &str) -> Value {
    tokio::task::block_in_place(|| common::get_json(app, path))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The appliance with a firing rule notified to a local webhook, a target whose label is
/// hostile, pushed log lines (errors among them, hostile ones too), a remote-written series
/// with a hostile label, and a pod's series and log lines.
fn appliance(dir: &Path, hook: &Recorder) -> Appliance {
    let rules = common::write_file(
        dir,
        "ui.rules.yml",
        "groups:\n  - name: ui\n    interval: 1s\n    rules:\n      - alert: UiTestAlert\n        expr: vector(1)\n        labels: {severity: critical}\n        annotations: {summary: 'Raised for the UI test'}\n      - record: ui:up:sum\n        expr: sum(up)\n",
    );
    let extra = format!(
        "  - job_name: node-exporter\n    scrape_interval: 1s\n    metrics_path: /metrics/node\n    static_configs: [{{targets: ['127.0.0.1:{{port}}']}}]\n  - job_name: hostile\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:9'], labels: {{evil: {}}}}}]\nrule_files: [{}]\ndashboards:\n  paths: [{}]\nalertmanager:\n  route: {{receiver: hook, group_wait: 0s, group_interval: 1s}}\n  receivers:\n    - name: hook\n      webhook_configs: [{{url: '{}'}}]\n",
        json!(BROKEN_ATTRIBUTE),
        rules.display(),
        fixture_dashboards().display(),
        hook.url("/hook")
    );
    let app = scraping_appliance_with(dir, &extra);
    let now = now_ns();
    let push = json!({"streams": [
        {"stream": {"job": "uitest", "app": SCRIPT_TAG},
         "values": [
            [(now - 3_000_000_000).to_string(), "level=info msg=\"starting\""],
            [(now - 2_000_000_000).to_string(), format!("level=error msg=\"disk {SCRIPT_TAG} failed\"")],
            [(now - 1_000_000_000).to_string(), format!("level=warn msg={BROKEN_ATTRIBUTE}")],
            [now.to_string(), "{\"level\":\"info\",\"msg\":\"json line\",\"user\":{\"id\":7}}"],
         ]},
        {"stream": {"namespace": "media", "pod": "jellyfin-0"},
         "values": [[(now - 1_000_000_000).to_string(), "level=info msg=\"transcode started\""]]},
    ]});
    let response = http()
        .post(app.url("/loki/api/v1/push"))
        .header("content-type", "application/json")
        .body(push.to_string())
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        204,
        "{}",
        response.text().unwrap()
    );
    let now_ms = i64::try_from(now / 1_000_000).unwrap();
    let body = remote_write_body(&[
        (
            &[("__name__", "ui_xss"), ("evil", BROKEN_ATTRIBUTE)],
            &[(now_ms - 1000, 1.0)],
        ),
        (
            &[
                ("__name__", "ui_pod_cpu"),
                ("namespace", "media"),
                ("pod", "jellyfin-0"),
            ],
            &[(now_ms - 30_000, 0.25), (now_ms - 1000, 0.5)],
        ),
    ]);
    let (status, text) = remote_write(&app, body, "snappy");
    assert_eq!(status, 204, "{text}");
    app
}

#[test]
fn the_ui_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Recorder::start("{}");
    let app = appliance(dir.path(), &hook);
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let browser = driver.session(&dir.path().join("chromium")).await;
        let result = walk_through(&browser, &app, &hook).await;
        let _ = browser.close().await;
        result
    });
}

/// The built-in dashboards on the embedded default (`sightline config default`: host metrics
/// and Sightline's own, no Kubernetes, no logs), with its scrape and evaluation intervals
/// shortened to 1 s and its address moved to a free port: no panel errors, and every panel
/// but those of Kubernetes series and log lines draws data.
#[test]
fn built_in_dashboards_render_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let default = Command::new(common::binary())
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(default.status.success());
    let port = free_port();
    let text = String::from_utf8(default.stdout)
        .unwrap()
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    let config = common::write_file(dir.path(), "default.yml", &text);
    let listen = format!("127.0.0.1:{port}");
    let app = Appliance::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap(), "--listen", &listen],
    );
    // Rates need a few scrapes of both jobs.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_json(
        &app,
        "/api/v1/query?query=count(count_over_time(up[1m])>=5)",
    )["data"]["result"][0]["value"][1]
        != "2"
    {
        assert!(
            Instant::now() < deadline,
            "both default jobs scraped 5 times"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes = runtime.block_on(async {
        let browser = driver.session(&dir.path().join("chromium")).await;
        let outcomes = render_built_in_dashboards(&browser, &app).await;
        screenshot(&browser, "dashboard-sightline-embedded-default").await;
        let _ = browser.close().await;
        outcomes
    });
    let kubernetes_or_logs = [
        (
            "Homelab overview",
            &[
                "Pods running",
                "Restarts (1 h)",
                "Pods by phase",
                "Restarts by namespace (1 h)",
                "Error lines by namespace",
            ][..],
        ),
        ("Node", &[]),
        (
            "Logs overview",
            &[
                "Lines by namespace",
                "Volume by app",
                "Top error sources",
                "Recent errors",
            ],
        ),
        ("Sightline", &[]),
    ];
    for (title, empty) in &outcomes {
        if title == "Kubernetes workloads" {
            assert!(
                !empty.is_empty(),
                "no Kubernetes data on the embedded default"
            );
            continue;
        }
        let (_, expected) = kubernetes_or_logs
            .iter()
            .find(|(name, _)| name == title)
            .unwrap();
        assert_eq!(empty, expected, "{title}: the panels without data");
    }
}

async fn walk_through(browser: &Client, app: &Appliance, hook: &Recorder) {
    // The firing alert is on Alerts once a rule evaluation has run.
    let deadline = Instant::now() + Duration::from_secs(15);
    while get_json(app, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "UiTestAlert did not fire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    every_page_loads_without_console_errors(browser, app).await;
    home_and_status_show_the_homelab(browser, app).await;
    notifications_are_in_the_history(browser, app, hook).await;
    promql_draws_a_graph_with_points(browser, app).await;
    logql_lists_lines_and_the_volume(browser, app).await;
    a_pod_series_leads_to_its_logs_beside_its_graph(browser, app).await;
    live_tail_and_context(browser, app).await;
    the_keyboard_is_enough(browser, app).await;
    silences_are_made_edited_and_expired_in_the_ui(browser, app).await;
    every_fixture_dashboard_renders(browser, app).await;
    built_in_dashboards_render_with_kubernetes_series(browser, app).await;
    hostile_values_render_as_text(browser, app).await;
    dashboards_are_imported_in_the_ui(browser, app).await;
    template_variables_filter_the_panels(browser, app).await;
    home_and_alerts_read_on_a_phone(browser, app).await;
}

async fn every_page_loads_without_console_errors(browser: &Client, app: &Appliance) {
    for (name, path) in PAGES {
        browser.goto(&app.url(path)).await.unwrap();
        wait_until(browser, "document.readyState === 'complete'", name).await;
        if path.starts_with("/d/") {
            wait_until(
                browser,
                "window.sightlineDashboard && window.sightlineDashboard.finished",
                "the dashboard",
            )
            .await;
        }
        if path.starts_with("/explore") || path.starts_with("/graph") {
            wait_until(
                browser,
                "!/Running/.test(document.getElementById('query-status').textContent)",
                "the query to finish",
            )
            .await;
        }
        let title = browser.title().await.unwrap();
        assert!(title.ends_with("· Sightline"), "{path}: title {title:?}");
        let errors = console_errors(browser).await;
        assert!(errors.is_empty(), "{path}: console errors: {errors:#?}");
        screenshot(browser, name).await;
    }
    // The dark theme is one click away and stays chosen.
    browser.goto(&app.url("/")).await.unwrap();
    let before = browser
        .execute("return document.documentElement.dataset.theme;", Vec::new())
        .await
        .unwrap();
    click(browser, "#theme-toggle").await;
    browser.refresh().await.unwrap();
    let after = browser
        .execute("return document.documentElement.dataset.theme;", Vec::new())
        .await
        .unwrap();
    assert_ne!(before, after, "the theme toggles and persists");
    screenshot(browser, "home-toggled-theme").await;
    eprintln!("{} pages loaded with no console error", PAGES.len());
}

async fn promql_draws_a_graph_with_points(browser: &Client, app: &Appliance) {
    browser
        .goto(&app.url("/explore/metrics?expr=up&range=5m"))
        .await
        .unwrap();
    let status = wait_until(
        browser,
        "/(\\d+) series, (\\d+) points/.test(document.getElementById('query-status').textContent) && document.getElementById('query-status').textContent",
        "the graph's status line",
    )
    .await;
    let status = status.as_str().unwrap().to_owned();
    let points: u64 = status
        .split(", ")
        .nth(1)
        .and_then(|p| p.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert!(points > 0, "{status}");
    wait_until(
        browser,
        "document.querySelector('#graph canvas')",
        "the graph's canvas",
    )
    .await;
    // Hovering at the right end of the plot shows the values there in the legend.
    let plot = browser.find(Locator::Css("#graph .u-over")).await.unwrap();
    let width = browser
        .execute(
            "return document.querySelector('#graph .u-over').getBoundingClientRect().width;",
            Vec::new(),
        )
        .await
        .unwrap();
    let hover = MouseActions::new("mouse".to_owned()).then(PointerAction::MoveToElement {
        element: plot,
        duration: None,
        x: width.as_f64().unwrap() / 2.0 - 3.0,
        y: 0.0,
    });
    browser.perform_actions(hover).await.unwrap();
    wait_until(
        browser,
        "/^[0-9.]+$/.test(document.querySelector('.u-legend .u-series:nth-child(2) .u-value').textContent.trim())",
        "the value under the cursor in the legend",
    )
    .await;
    // The legend lists the series and toggles one off when clicked.
    let legend = browser
        .find(Locator::Css(".u-legend .u-series:nth-child(2)"))
        .await
        .unwrap();
    legend.click().await.unwrap();
    wait_until(
        browser,
        "document.querySelector('.u-legend .u-series:nth-child(2)').classList.contains('u-off')",
        "the series to toggle off",
    )
    .await;
    // Dragging across the plot zooms: the range becomes absolute, in the URL.
    let plot = browser.find(Locator::Css("#graph .u-over")).await.unwrap();
    let drag = MouseActions::new("mouse".to_owned())
        .then(PointerAction::MoveToElement {
            element: plot,
            duration: None,
            x: 250.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: 230.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.perform_actions(drag).await.unwrap();
    wait_until(
        browser,
        "/from=\\d+/.test(location.search) && /to=\\d+/.test(location.search) && !/range=/.test(location.search)",
        "the zoomed range in the URL",
    )
    .await;
    // The table view answers the instant query (at the end of a range that has data); the
    // state is in the URL.
    browser
        .goto(&app.url("/explore/metrics?expr=up&range=5m"))
        .await
        .unwrap();
    wait_until(
        browser,
        "document.querySelector('#graph canvas')",
        "the graph again",
    )
    .await;
    // A step typed in is used, and kept in the URL.
    let step = browser.find(Locator::Css("[name=step]")).await.unwrap();
    step.send_keys("10s").await.unwrap();
    click(browser, "#query-form button[type=submit]").await;
    wait_until(
        browser,
        "/step=10s/.test(location.search) && /step 10s,/.test(document.getElementById('query-status').textContent)",
        "the query at a 10s step",
    )
    .await;
    step.clear().await.unwrap();
    // Stacked areas are a checkbox away, and in the URL too.
    click(browser, "[name=stacked]").await;
    wait_until(
        browser,
        "/stacked=1/.test(location.search) && /series, \\d+ points/.test(document.getElementById('query-status').textContent)",
        "the stacked graph",
    )
    .await;
    screenshot(browser, "explore-metrics-stacked").await;
    click(browser, "[data-tab=table]").await;
    wait_until(
        browser,
        "document.querySelectorAll('#result-table tbody tr td code').length > 0",
        "table rows",
    )
    .await;
    let url = browser.current_url().await.unwrap();
    assert!(
        url.as_str().contains("tab=table") && url.as_str().contains("expr=up"),
        "{url}"
    );
    // Autocomplete offers metric names as one types.
    let editor = browser.find(Locator::Id("expr")).await.unwrap();
    suggests(browser, &editor, "scrape_dur", "scrape_duration_seconds").await;
    // And label values inside a selector.
    suggests(browser, &editor, "up{job=\"", "sightline").await;
    screenshot(browser, "explore-metrics-autocomplete").await;
    // Functions, and label names inside a selector.
    suggests(browser, &editor, "histogram_qu", "histogram_quantile").await;
    suggests(browser, &editor, "up{ins", "instance").await;
    // The history keeps what ran, and choosing an entry runs it again.
    click(browser, "details.history summary").await;
    let history = browser
        .execute(
            "return Array.from(document.querySelectorAll('#history a')).map(a => a.textContent);",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(history, json!(["up"]), "{history}");
    editor.clear().await.unwrap();
    click(browser, "#history a").await;
    wait_until(
        browser,
        "document.getElementById('expr').value === 'up' && /Evaluated at/.test(document.getElementById('query-status').textContent)",
        "the query from the history",
    )
    .await;
    eprintln!("PromQL graph drawn: {status}");
}

async fn logql_lists_lines_and_the_volume(browser: &Client, app: &Appliance) {
    let status = open_uitest_logs(browser, app).await;
    let count = browser
        .execute(
            "return document.querySelectorAll('#lines > li').length;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(count, json!(4), "{status}");
    wait_until(
        browser,
        "document.querySelector('#volume canvas')",
        "the volume histogram",
    )
    .await;
    // Levels are coloured, from logfmt and JSON lines alike.
    let levels = browser
        .execute(
            "return Array.from(document.querySelectorAll('#lines > li')).map(li => li.className);",
            Vec::new(),
        )
        .await
        .unwrap();
    let levels = levels.to_string();
    for level in ["level-error", "level-warn", "level-info"] {
        assert!(levels.contains(level), "{level} in {levels}");
    }
    // A line expands to its labels and parsed fields.
    click(browser, "#lines > li:first-child .row").await;
    let details = wait_until(
        browser,
        "document.querySelector('#lines > li:first-child .details') && document.querySelector('#lines > li:first-child .details').textContent",
        "the line's details",
    )
    .await;
    let details = details.as_str().unwrap();
    assert!(
        details.contains("uitest") && details.contains("user_id"),
        "{details}"
    );
    screenshot(browser, "explore-logs-details").await;
    // Unwrapped lines stay on one line; the choice is in the URL.
    click(browser, "[name=wrap]").await;
    wait_until(
        browser,
        "!document.getElementById('lines').classList.contains('wrap') && /wrap=0/.test(location.search)",
        "lines unwrapped",
    )
    .await;
    click(browser, "[name=wrap]").await;
    // The editor suggests label names, then their values.
    let editor = browser.find(Locator::Id("query")).await.unwrap();
    suggests(browser, &editor, "{jo", "job").await;
    suggests(browser, &editor, "{job=\"ui", "uitest").await;
    eprintln!("LogQL listed {count} lines: {status}");
}

/// Hostile log lines, label values, and a dashboard's title and panel title (inlined in the
/// page as JSON) show as text and never run.
async fn hostile_values_render_as_text(browser: &Client, app: &Appliance) {
    let dashboard = json!({"dashboard": {"uid": "ui-hostile", "title": format!("</script>{SCRIPT_TAG}"),
        "panels": [{"type": "stat", "title": BROKEN_ATTRIBUTE, "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
            "targets": [{"expr": "vector(1)"}]}]}});
    save_dashboard(app, &dashboard);
    let checks = [
        ("/d/ui-hostile", "main", SCRIPT_TAG),
        ("/d/ui-hostile", ".dash-panel", BROKEN_ATTRIBUTE),
        (UITEST_LOGS, "#lines", SCRIPT_TAG),
        (UITEST_LOGS, "#lines", "onerror=\"window.__xss=2\""),
        (
            "/explore/metrics?expr=ui_xss&range=15m&tab=table",
            "#result-table",
            "onerror=\\\"window.__xss=2\\\"",
        ),
        ("/", "main", SCRIPT_TAG),
        ("/targets", "main", BROKEN_ATTRIBUTE),
    ];
    for (path, container, text) in checks {
        browser.goto(&app.url(path)).await.unwrap();
        let probe = format!(
            "document.querySelector({}).textContent.includes({})",
            json!(container),
            json!(text)
        );
        wait_until(browser, &probe, &format!("{text:?} as text on {path}")).await;
        let injected = browser
            .execute(
                "return [window.__xss === undefined, document.querySelectorAll('main img, main script').length];",
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(injected, json!([true, 0]), "{path}: markup was injected");
    }
    eprintln!("{} hostile values rendered as text", checks.len());
}

async fn silences_are_made_edited_and_expired_in_the_ui(browser: &Client, app: &Appliance) {
    browser.goto(&app.url("/alerts")).await.unwrap();
    // "Silence" on the firing alert opens the form with its labels.
    click(browser, "details.alert-rule a.button").await;
    let matchers = wait_until(
        browser,
        "document.querySelector('#silence-form [name=matchers]').value",
        "the form's matchers",
    )
    .await;
    assert!(
        matchers
            .as_str()
            .unwrap()
            .contains("alertname=\"UiTestAlert\""),
        "{matchers}"
    );
    let form = browser.find(Locator::Id("silence-form")).await.unwrap();
    form.find(Locator::Css("[name=createdBy]"))
        .await
        .unwrap()
        .send_keys("ui test")
        .await
        .unwrap();
    form.find(Locator::Css("[name=comment]"))
        .await
        .unwrap()
        .send_keys("silenced from the browser")
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        browser,
        "document.querySelector('#silences tbody tr') && document.readyState === 'complete'",
        "the silence in the list",
    )
    .await;
    let silences = get_json(app, "/api/v2/silences");
    let made = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["comment"] == "silenced from the browser")
        .unwrap_or_else(|| panic!("no silence from the UI in {silences:#}"));
    assert_eq!(made["createdBy"], "ui test");
    assert_eq!(made["status"]["state"], "active");
    assert!(
        made["matchers"].as_array().unwrap().contains(
            &json!({"name": "alertname", "value": "UiTestAlert", "isRegex": false, "isEqual": true})
        ),
        "{made:#}"
    );
    screenshot(browser, "alerts-silenced").await;
    // Edit its comment from the list: the form fills in, and saving updates it.
    click(browser, "#silences button[data-action=edit]").await;
    let comment = browser
        .find(Locator::Css("#silence-form [name=comment]"))
        .await
        .unwrap();
    assert_eq!(
        comment.prop("value").await.unwrap().as_deref(),
        Some("silenced from the browser")
    );
    comment.clear().await.unwrap();
    comment.send_keys("edited in the browser").await.unwrap();
    click(browser, "#silence-form button[type=submit]").await;
    wait_until(
        browser,
        "/saved=/.test(location.search) && document.querySelector('#silences').textContent.includes('edited in the browser')",
        "the edited silence in the list",
    )
    .await;
    let silences = get_json(app, "/api/v2/silences");
    let active: Vec<&Value> = silences
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"]["state"] == "active")
        .collect();
    assert_eq!(
        active.len(),
        1,
        "one active silence after the edit: {silences:#}"
    );
    assert_eq!(active[0]["comment"], "edited in the browser");
    assert_eq!(active[0]["matchers"], made["matchers"]);
    // Expire it from the list.
    click(browser, "#silences button[data-action=expire]").await;
    let id = active[0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let silence = get_json(app, &format!("/api/v2/silence/{id}"));
        if silence["status"]["state"] == "expired" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silence was not expired: {silence:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let errors = console_errors(browser).await;
    assert!(errors.is_empty(), "console errors on /alerts: {errors:#?}");
    eprintln!("silence {id} made, edited and expired in the UI");
}

/// Opens every fixture dashboard, expands its collapsed rows, and counts the panels that
/// rendered and the ones that show an error.
async fn every_fixture_dashboard_renders(browser: &Client, app: &Appliance) {
    let listed = get_json(app, "/api/search");
    let dashboards: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|hit| hit["folderTitle"] != BUILT_IN_FOLDER)
        .collect();
    let files = std::fs::read_dir(fixture_dashboards())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "json")
        })
        .count();
    assert_eq!(
        dashboards.len(),
        files,
        "every fixture file is listed: {listed:#}"
    );
    let (mut panels, mut errors) = (0, Vec::new());
    for dashboard in dashboards {
        let url = dashboard["url"].as_str().unwrap();
        let progress = render_dashboard(browser, app, url).await;
        if dashboard["uid"] == "7d57716318ee0dddbac5a7f451fb7753" {
            // Node Exporter / Nodes has the built-in host metrics to draw.
            let drawn = browser
                .execute(
                    "return document.querySelectorAll('.dash-panel canvas').length;",
                    Vec::new(),
                )
                .await
                .unwrap();
            assert!(drawn.as_u64().unwrap() >= 6, "{url}: {drawn} graphs drawn");
            screenshot(browser, "dashboard-nodes-with-data").await;
        }
        panels += progress["panels"].as_u64().unwrap();
        for error in progress["errors"].as_array().unwrap() {
            errors.push(format!(
                "{}: {}: {}",
                dashboard["title"], error["panel"], error["error"]
            ));
        }
    }
    screenshot(browser, "dashboard-last-fixture").await;
    eprintln!(
        "{} dashboards: {panels} panels rendered, {} errors",
        files,
        errors.len()
    );
    assert!(errors.is_empty(), "panel errors:\n{}", errors.join("\n"));
}

/// Opens the dashboard at `url`, expands its collapsed rows and waits until every panel has
/// run; checks that each panel element ran and the console stayed clean. Returns
/// `window.sightlineDashboard` (`panels`, `errors`).
async fn render_dashboard(browser: &Client, app: &Appliance, url: &str) -> Value {
    browser.goto(&app.url(url)).await.unwrap();
    let finished = "window.sightlineDashboard && window.sightlineDashboard.finished";
    wait_until(browser, finished, url).await;
    let collapsed = browser
        .find_all(Locator::Css(".row-toggle[aria-expanded=false]"))
        .await
        .unwrap();
    for row in collapsed {
        row.click().await.unwrap();
    }
    wait_until(browser, finished, url).await;
    let progress = browser
        .execute("return window.sightlineDashboard;", Vec::new())
        .await
        .unwrap();
    let shown = browser
        .execute(
            "return document.querySelectorAll('.dash-panel').length;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        progress["panels"], shown,
        "{url}: every panel element was run"
    );
    let errors = console_errors(browser).await;
    assert!(errors.is_empty(), "{url}: console errors: {errors:#?}");
    progress
}

/// The folder of Sightline's built-in dashboards.
const BUILT_IN_FOLDER: &str = "Sightline";

/// The built-in dashboards, in the order they are listed.
const BUILT_IN_DASHBOARDS: [&str; 5] = [
    "Homelab overview",
    "Node",
    "Kubernetes workloads",
    "Logs overview",
    "Sightline",
];

/// Titles of the open dashboard's panels that show nothing: "No data", an empty graph, or
/// an error.
async fn panels_without_data(browser: &Client) -> Vec<String> {
    let script = r#"return Array.from(document.querySelectorAll('.dash-panel')).filter((panel) => {
        const body = panel.querySelector('.panel-body');
        const values = Array.from(body.querySelectorAll('.stat-big, .gauge-value')).map((e) => e.textContent);
        return panel.dataset.state !== 'done' || body.querySelector('.empty, .panel-error') !== null
          || values.includes('No data') || body.textContent.trim() === '';
      }).map((panel) => panel.dataset.title);"#;
    let titles = browser.execute(script, Vec::new()).await.unwrap();
    serde_json::from_value(titles).unwrap()
}

/// Renders each built-in dashboard (listed first, in their folder) and returns, by title,
/// the panels that show no data; fails on any panel error.
async fn render_built_in_dashboards(
    browser: &Client,
    app: &Appliance,
) -> Vec<(String, Vec<String>)> {
    let listed = get_json(app, "/api/search");
    let first: Vec<(&str, &str)> = listed.as_array().unwrap()[..BUILT_IN_DASHBOARDS.len()]
        .iter()
        .map(|hit| {
            (
                hit["folderTitle"].as_str().unwrap(),
                hit["title"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = BUILT_IN_DASHBOARDS
        .iter()
        .map(|title| (BUILT_IN_FOLDER, *title))
        .collect();
    assert_eq!(first, expected, "the built-in dashboards are listed first");
    let mut outcomes = Vec::new();
    for hit in &listed.as_array().unwrap()[..BUILT_IN_DASHBOARDS.len()] {
        let title = hit["title"].as_str().unwrap();
        if title == "Sightline" {
            // Its query-latency panel reads the queries the other dashboards made: give the
            // 1 s self-scrape two samples of them.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let progress = render_dashboard(browser, app, hit["url"].as_str().unwrap()).await;
        assert_eq!(progress["errors"], json!([]), "{title}: {progress}");
        outcomes.push((title.to_owned(), panels_without_data(browser).await));
    }
    outcomes
}

/// A series to remote-write: its labels and samples.
type OwnedSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Loads a small cluster: kube-state-metrics and cAdvisor series of two pods in `media`
/// (remote-written, 15 s apart over the last minute), and their pods' log lines, errors among
/// them, as the pod-log tailer labels them.
fn load_kubernetes_series(app: &Appliance) {
    let now_ms = i64::try_from(now_ns() / 1_000_000).unwrap();
    let times: Vec<i64> = (0..5).map(|i| now_ms - 60_000 + i * 15_000).collect();
    let steady = |value: f64| times.iter().map(|t| (*t, value)).collect::<Vec<_>>();
    let growing = |step: f64| {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, step * i as f64))
            .collect::<Vec<_>>()
    };
    let mut series: Vec<OwnedSeries> = Vec::new();
    for (pod, container, restarts) in [("jellyfin-0", "jellyfin", 1.0), ("sonarr-0", "sonarr", 0.0)]
    {
        let pod_labels =
            |name: &'static str| vec![("__name__", name), ("namespace", "media"), ("pod", pod)];
        let container_labels = |name: &'static str| {
            vec![
                ("__name__", name),
                ("namespace", "media"),
                ("pod", pod),
                ("container", container),
            ]
        };
        series.push((
            [pod_labels("kube_pod_info"), vec![("node", "homelab-1")]].concat(),
            steady(1.0),
        ));
        for phase in ["Running", "Pending"] {
            let value = if phase == "Running" { 1.0 } else { 0.0 };
            series.push((
                [pod_labels("kube_pod_status_phase"), vec![("phase", phase)]].concat(),
                steady(value),
            ));
        }
        series.push((
            container_labels("kube_pod_container_status_restarts_total"),
            growing(restarts),
        ));
        series.push((
            container_labels("container_cpu_usage_seconds_total"),
            growing(3.0),
        ));
        series.push((
            container_labels("container_memory_working_set_bytes"),
            steady(300e6),
        ));
    }
    let body = remote_write_body(
        &series
            .iter()
            .map(|(labels, samples)| (labels.as_slice(), samples.as_slice()))
            .collect::<Vec<_>>(),
    );
    let (status, text) = remote_write(app, body, "snappy");
    assert_eq!(status, 204, "{text}");
    let now = now_ns();
    let line = |ago_s: u128, text: &str| json!([(now - ago_s * 1_000_000_000).to_string(), text]);
    let stream = |pod: &str, container: &str, app_name: &str| json!({"namespace": "media", "pod": pod, "container": container, "app": app_name, "node": "homelab-1"});
    let push = json!({"streams": [
        {"stream": stream("jellyfin-0", "jellyfin", "jellyfin"), "values": [
            line(40, "level=info msg=\"library scan started\""),
            line(30, "level=error msg=\"transcode failed\" file=movie.mkv"),
            line(20, "level=info msg=\"library scan done\""),
        ]},
        {"stream": stream("sonarr-0", "sonarr", "sonarr"), "values": [
            line(35, "level=warn msg=\"indexer slow\""),
            line(25, "level=info msg=\"sonarr import finished\""),
        ]},
    ]});
    let response = http()
        .post(app.url("/loki/api/v1/push"))
        .header("content-type", "application/json")
        .body(push.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
}

/// With Kubernetes series and pod logs loaded, every panel of every built-in dashboard
/// draws data; the workloads dashboard drills down from a namespace to a pod, whose logs
/// show beside its metrics.
async fn built_in_dashboards_render_with_kubernetes_series(browser: &Client, app: &Appliance) {
    tokio::task::block_in_place(|| load_kubernetes_series(app));
    let outcomes = render_built_in_dashboards(browser, app).await;
    for (title, empty) in &outcomes {
        assert!(empty.is_empty(), "{title}: panels without data: {empty:?}");
    }
    let panels: usize = outcomes.len();
    eprintln!("{panels} built-in dashboards rendered with data in every panel");

    // Drill down: the first namespace and pod are chosen; a pod's link chooses it.
    browser
        .goto(&app.url("/d/sightline-kubernetes-workloads"))
        .await
        .unwrap();
    let finished = "window.sightlineDashboard && window.sightlineDashboard.finished";
    wait_until(browser, finished, "the workloads dashboard").await;
    click(
        browser,
        ".dash-panel[data-title='Pods in media'] a[href*='var-pod=sonarr-0']",
    )
    .await;
    wait_until(
        browser,
        "location.search.includes('var-pod=sonarr-0') && window.sightlineDashboard && window.sightlineDashboard.finished",
        "the chosen pod",
    )
    .await;
    let logs = wait_until(
        browser,
        "(document.querySelector(\".dash-panel[data-title='Logs of sonarr-0'] .loglines\") || {}).innerText",
        "the pod's logs",
    )
    .await;
    let logs = logs.as_str().unwrap();
    assert!(
        logs.contains("sonarr import finished") && !logs.contains("transcode"),
        "{logs}"
    );
    let graphs = browser
        .execute(
            "return document.querySelectorAll(\".dash-panel[data-title='CPU of sonarr-0'] canvas, .dash-panel[data-title='Memory of sonarr-0'] canvas\").length;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(graphs, 2, "the pod's CPU and memory graphs beside its logs");
    screenshot(browser, "dashboard-kubernetes-workloads-pod").await;
}

/// A dashboard pasted into the import form, or chosen as a file, opens and renders; it is
/// listed under its folder, and the list's search finds it.
async fn dashboards_are_imported_in_the_ui(browser: &Client, app: &Appliance) {
    let dashboard = json!({
        "title": "Imported in the browser",
        "panels": [
            {"type": "stat", "title": "Targets up", "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
             "targets": [{"expr": "sum(up)"}]},
            {"type": "timeseries", "title": "Samples", "gridPos": {"x": 6, "y": 0, "w": 18, "h": 8},
             "fieldConfig": {"defaults": {"unit": "short"}},
             "targets": [{"expr": "rate(sightline_tsdb_head_samples_appended_total[$__rate_interval])", "legendFormat": "{{job}}"}]},
        ],
    });
    browser.goto(&app.url("/dashboards")).await.unwrap();
    let form = browser.find(Locator::Id("import-form")).await.unwrap();
    form.find(Locator::Css("[name=json]"))
        .await
        .unwrap()
        .send_keys(&dashboard.to_string())
        .await
        .unwrap();
    let folder = form.find(Locator::Css("[name=folder]")).await.unwrap();
    folder.clear().await.unwrap();
    folder.send_keys("Browser").await.unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        browser,
        "location.pathname.startsWith('/d/imported-in-the-browser') && window.sightlineDashboard && window.sightlineDashboard.finished",
        "the imported dashboard",
    )
    .await;
    let progress = browser
        .execute("return window.sightlineDashboard;", Vec::new())
        .await
        .unwrap();
    assert_eq!(progress["panels"], 2, "{progress}");
    assert_eq!(progress["errors"], json!([]), "{progress}");
    let stat = browser
        .find(Locator::Css(".panel-stat .stat-big"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        stat.parse::<f64>().is_ok_and(|v| v >= 1.0),
        "Targets up shows {stat:?}"
    );
    let hits = get_json(app, "/api/search?query=imported");
    assert_eq!(hits[0]["folderTitle"], "Browser", "{hits:#}");
    screenshot(browser, "dashboard-imported").await;
    // A dashboard file chosen in the form imports the same way.
    let file = std::env::temp_dir().join(format!("ui-upload-{}.json", std::process::id()));
    std::fs::write(
        &file,
        json!({"uid": "uploaded", "title": "Uploaded from a file", "panels": [
            {"type": "stat", "title": "Up", "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
             "targets": [{"expr": "sum(up)"}]}]})
        .to_string(),
    )
    .unwrap();
    browser.goto(&app.url("/dashboards")).await.unwrap();
    let form = browser.find(Locator::Id("import-form")).await.unwrap();
    form.find(Locator::Css("[name=file]"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    click(browser, "#import-form button[type=submit]").await;
    wait_until(
        browser,
        "location.pathname.startsWith('/d/uploaded') && window.sightlineDashboard && window.sightlineDashboard.finished",
        "the uploaded dashboard",
    )
    .await;
    std::fs::remove_file(&file).unwrap();
    // The list's search finds it, in its folder, and nothing else.
    browser.goto(&app.url("/dashboards")).await.unwrap();
    let search = browser
        .find(Locator::Css("input[name=query]"))
        .await
        .unwrap();
    search.send_keys("imported in").await.unwrap();
    press(browser, &[Key::Enter]).await;
    wait_until(
        browser,
        "/query=imported/.test(location.search) && document.readyState === 'complete'",
        "the search results",
    )
    .await;
    let found = browser
        .execute(
            "return Array.from(document.querySelectorAll('details.pool')).map(d => [d.querySelector('h2').firstChild.textContent.trim(), Array.from(d.querySelectorAll('li > a:first-child')).map(a => a.textContent)]);",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(found, json!([["Browser", ["Imported in the browser"]]]));
}

/// Live tail shows a line pushed after it started; "Show context" adds the stream's
/// neighbouring lines around a line.
async fn live_tail_and_context(browser: &Client, app: &Appliance) {
    open_uitest_logs(browser, app).await;
    // The third line (newest first) has one newer and one older neighbour in its stream.
    click(browser, "#lines > li:nth-child(3) .row").await;
    click(browser, "#lines > li:nth-child(3) .details button").await;
    wait_until(
        browser,
        "document.querySelectorAll('#lines > li.context').length >= 3 && document.querySelector('#lines > li.anchor')",
        "context lines around the anchor",
    )
    .await;
    click(browser, "#tail").await;
    wait_until(
        browser,
        "/Tailing/.test(document.getElementById('query-status').textContent)",
        "the tail to start",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let push = json!({"streams": [{"stream": {"job": "uitest", "app": "tail"},
        "values": [[now_ns().to_string(), "level=info msg=\"tailed line\""]]}]});
    let status = tokio::task::block_in_place(|| {
        http()
            .post(app.url("/loki/api/v1/push"))
            .header("content-type", "application/json")
            .body(push.to_string())
            .send()
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 204);
    wait_until(
        browser,
        "document.querySelector('#lines').textContent.includes('tailed line')",
        "the tailed line",
    )
    .await;
    click(browser, "#tail").await;
    screenshot(browser, "explore-logs-tail").await;
}

/// Home and Alerts fit a phone's width with every `<details>` open: nothing scrolls
/// sideways.
async fn home_and_alerts_read_on_a_phone(browser: &Client, app: &Appliance) {
    browser.set_window_size(390, 844).await.unwrap();
    for (name, path) in [("phone-home", "/"), ("phone-alerts", "/alerts")] {
        browser.goto(&app.url(path)).await.unwrap();
        wait_until(browser, "document.readyState === 'complete'", name).await;
        let overflow = browser
            .execute(
                "document.querySelectorAll('details').forEach(d => d.open = true);\
                 const width = document.documentElement.clientWidth;\
                 return [document.documentElement.scrollWidth - width,\
                   Array.from(document.querySelectorAll('main *'))\
                     .filter(e => e.getBoundingClientRect().right > width + 1 && !e.parentElement.closest('.scroll'))\
                     .slice(0, 6).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right + ' ' + e.textContent.slice(0, 80))];",
                Vec::new(),
            )
            .await
            .unwrap();
        assert!(
            overflow[0].as_i64().unwrap() <= 0,
            "{path} scrolls sideways by {} px; too wide: {}",
            overflow[0],
            overflow[1]
        );
        screenshot(browser, name).await;
    }
    browser.set_window_size(1280, 900).await.unwrap();
}

/// Presses `keys` together (the first ones held as modifiers) in the focused element.
async fn press(browser: &Client, keys: &[Key]) {
    let mut actions = KeyActions::new("keyboard".to_owned());
    for key in keys {
        actions = actions.then(KeyAction::Down {
            value: char::from(*key),
        });
    }
    for key in keys.iter().rev() {
        actions = actions.then(KeyAction::Up {
            value: char::from(*key),
        });
    }
    browser.perform_actions(actions).await.unwrap();
}

/// The id (or class) of the focused element, and whether it shows a focus outline.
async fn focused(browser: &Client) -> (String, bool) {
    let focus = browser
        .execute(
            "const e = document.activeElement; return [e.id || e.className, getComputedStyle(e).outlineStyle !== 'none'];",
            Vec::new(),
        )
        .await
        .unwrap();
    (
        focus[0].as_str().unwrap_or_default().to_owned(),
        focus[1] == true,
    )
}

/// The webhook receiver got the firing alert, and Alerts lists the delivery.
async fn notifications_are_in_the_history(browser: &Client, app: &Appliance, hook: &Recorder) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let delivered = loop {
        let bodies = hook.bodies();
        if let Some(body) = bodies.iter().find_map(|body| {
            let payload: Value = serde_json::from_slice(body).ok()?;
            let alerts = payload["alerts"].as_array()?;
            alerts
                .iter()
                .any(|alert| alert["labels"]["alertname"] == "UiTestAlert")
                .then_some(payload)
        }) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook got no UiTestAlert: {} bodies",
            bodies.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivered["status"], "firing", "{delivered:#}");
    browser.goto(&app.url("/alerts")).await.unwrap();
    let row = wait_until(
        browser,
        "Array.from(document.querySelectorAll('section[aria-labelledby=history-h] tbody tr')).map(tr => tr.textContent).find(t => t.includes('hook') && t.includes('firing'))",
        "the delivery in the notification history",
    )
    .await;
    assert!(row.as_str().unwrap().contains("webhook"), "{row}");
    screenshot(browser, "alerts-history").await;
}

/// A series with namespace and pod labels links to that pod's logs over the same range,
/// and the logs page graphs a PromQL query beside the lines.
async fn a_pod_series_leads_to_its_logs_beside_its_graph(browser: &Client, app: &Appliance) {
    browser
        .goto(&app.url("/explore/metrics?expr=ui_pod_cpu&range=15m"))
        .await
        .unwrap();
    wait_until(
        browser,
        "document.querySelector('#graph canvas')",
        "the pod's graph",
    )
    .await;
    click(browser, "details.series-logs summary").await;
    click(browser, "details.series-logs a").await;
    let status = wait_until(
        browser,
        "location.pathname === '/explore/logs' && /lines shown/.test(document.getElementById('query-status').textContent) && document.getElementById('query-status').textContent",
        "the pod's logs",
    )
    .await;
    let shown = browser
        .execute(
            "return [document.getElementById('query').value, document.getElementById('lines').textContent, location.search];",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        shown[0], "{namespace=\"media\", pod=\"jellyfin-0\"}",
        "{status}"
    );
    assert!(
        shown[1].as_str().unwrap().contains("transcode started"),
        "{shown}"
    );
    let search = shown[2].as_str().unwrap();
    assert!(
        search.contains("from=") && search.contains("to="),
        "the metric graph's range carries over: {search}"
    );
    // The metric graph beside the logs, on the same range.
    click(browser, "[name=split]").await;
    let expr = browser.find(Locator::Id("split-expr")).await.unwrap();
    expr.send_keys("ui_pod_cpu").await.unwrap();
    press(browser, &[Key::Enter]).await;
    wait_until(
        browser,
        "document.querySelector('#split-graph canvas') && /split=1/.test(location.search) && /expr=ui_pod_cpu/.test(location.search) && document.querySelectorAll('#lines > li').length === 1",
        "the metric graph beside the pod's logs",
    )
    .await;
    screenshot(browser, "explore-logs-split").await;
}

/// With keys alone: the skip link, a visible focus ring, the editor, accepting a
/// suggestion, Ctrl+Enter to run, and expanding a log line.
async fn the_keyboard_is_enough(browser: &Client, app: &Appliance) {
    browser
        .goto(&app.url("/explore/metrics?range=5m"))
        .await
        .unwrap();
    wait_until(
        browser,
        "document.readyState === 'complete'",
        "explore metrics",
    )
    .await;
    press(browser, &[Key::Tab]).await;
    assert_eq!(focused(browser).await, ("skip".to_owned(), true));
    press(browser, &[Key::Enter]).await;
    wait_until(
        browser,
        "document.activeElement.id === 'main'",
        "focus on the content",
    )
    .await;
    let mut presses = 0;
    loop {
        press(browser, &[Key::Tab]).await;
        presses += 1;
        let (id, ring) = focused(browser).await;
        if id == "expr" {
            assert!(ring, "the editor shows where the focus is");
            break;
        }
        assert!(presses < 10, "Tab did not reach the editor; at {id:?}");
    }
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("scrape_dur")
        .await
        .unwrap();
    wait_until(
        browser,
        "!document.getElementById('suggestions').hidden",
        "the suggestions",
    )
    .await;
    press(browser, &[Key::Tab]).await;
    wait_until(
        browser,
        "document.getElementById('expr').value.startsWith('scrape_duration_seconds') && document.activeElement.id === 'expr'",
        "the accepted suggestion",
    )
    .await;
    press(browser, &[Key::Control, Key::Enter]).await;
    wait_until(
        browser,
        "/expr=scrape_duration_seconds/.test(location.search) && /\\d+ series, \\d+ points/.test(document.getElementById('query-status').textContent)",
        "the query run by Ctrl+Enter",
    )
    .await;
    // A log line opens with Enter.
    open_uitest_logs(browser, app).await;
    browser
        .execute(
            "document.querySelector('#lines > li:first-child .row').focus();",
            Vec::new(),
        )
        .await
        .unwrap();
    press(browser, &[Key::Enter]).await;
    wait_until(
        browser,
        "document.querySelector('#lines > li:first-child .details')",
        "the line's details opened with Enter",
    )
    .await;
    eprintln!(
        "keyboard: skip link, {presses} Tabs to the editor, suggestion, Ctrl+Enter, Enter on a line"
    );
}

/// A dashboard's multi-value query variable with All lists the jobs; choosing one filters
/// the panel to it and goes into the URL; custom and interval variables fill the query.
async fn template_variables_filter_the_panels(browser: &Client, app: &Appliance) {
    let dashboard = json!({"overwrite": true, "dashboard": {
        "uid": "ui-variables", "title": "Variables",
        "templating": {"list": [
            {"name": "job", "type": "query", "query": "label_values(up, job)",
             "multi": true, "includeAll": true, "current": {"value": ["$__all"]}},
            {"name": "window", "type": "custom", "query": "1m,5m", "current": {"value": "5m"}},
            {"name": "res", "type": "interval", "query": "15s,1m"},
            {"name": "floor", "type": "constant", "query": "0"},
            {"name": "ds", "type": "datasource", "query": "prometheus"},
            {"name": "busiest", "type": "query", "query": "query_result(topk(1, count by (job) (up{job=\"sightline\"})))",
             "regex": "/job=\"([^\"]+)\"/"},
        ]},
        "panels": [
            {"type": "timeseries", "title": "Up by job", "gridPos": {"x": 0, "y": 0, "w": 18, "h": 8},
             "interval": "$res", "datasource": {"type": "prometheus", "uid": "${ds}"},
             "targets": [{"expr": "sum by (job) (max_over_time(up{job=~\"$job\"}[$window])) >= $floor", "legendFormat": "{{job}}"}]},
            {"type": "stat", "title": "Scrapes of $busiest in range", "gridPos": {"x": 18, "y": 0, "w": 6, "h": 8},
             "targets": [{"expr": "sum(count_over_time(up{job=\"$busiest\"}[$__range]))"}]},
        ],
    }});
    save_dashboard(app, &dashboard);
    let finished = "window.sightlineDashboard && window.sightlineDashboard.finished && document.querySelector('.dash-panel canvas')";
    let legend = "return Array.from(document.querySelectorAll('.dash-panel .u-legend .u-series:not(:first-child) .u-label')).map(e => e.textContent).sort();";
    browser.goto(&app.url("/d/ui-variables")).await.unwrap();
    wait_until(browser, finished, "the variables dashboard").await;
    let options = browser
        .execute(
            "return Array.from(document.querySelectorAll('[name=var-job] option')).map(o => o.textContent);",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        options,
        json!(["All", "hostile", "node-exporter", "sightline"]),
        "{options}"
    );
    // query_result with a regex, interpolated into the stat panel's title and query.
    let busiest = browser
        .execute(
            "return [Array.from(document.querySelectorAll('[name=var-busiest] option')).map(o => o.value), document.querySelector('.panel-stat').getAttribute('aria-label'), document.querySelector('.panel-stat .stat-big').textContent];",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(busiest[0], json!(["sightline"]), "{busiest}");
    assert_eq!(busiest[1], "Scrapes of sightline in range", "{busiest}");
    assert!(
        busiest[2]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok_and(|n| n >= 1.0),
        "{busiest}"
    );
    let all = browser.execute(legend, Vec::new()).await.unwrap();
    assert_eq!(all, json!(["hostile", "node-exporter", "sightline"]));
    // WebDriver's click toggles an option of a multiple select, as Ctrl+click does: pick
    // sightline, then drop All.
    click(browser, "[name=var-job] option[value=sightline]").await;
    wait_until(
        browser,
        "/var-job=sightline/.test(location.search)",
        "sightline chosen",
    )
    .await;
    click(browser, "[name=var-job] option[value='$__all']").await;
    wait_until(
        browser,
        "/var-job=sightline/.test(location.search) && !/var-job=%24__all/.test(location.search) && document.querySelectorAll('.dash-panel .u-legend .u-series').length === 2",
        "the panel filtered to one job",
    )
    .await;
    let one = browser.execute(legend, Vec::new()).await.unwrap();
    assert_eq!(one, json!(["sightline"]));
    // Auto-refresh runs the panels again, and is in the URL.
    let before = browser
        .execute("return window.sightlineDashboard.finishedAt;", Vec::new())
        .await
        .unwrap();
    browser
        .find(Locator::XPath("//select[@name='refresh']/option[.='5s']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let condition = format!(
        "/refresh=5s/.test(location.search) && window.sightlineDashboard.finished && window.sightlineDashboard.finishedAt > {before}"
    );
    wait_until(browser, &condition, "the panels refreshed").await;
    let progress = browser
        .execute("return window.sightlineDashboard;", Vec::new())
        .await
        .unwrap();
    assert_eq!(progress["errors"], json!([]), "{progress}");
    // The choice survives a reload: it is in the URL.
    browser.refresh().await.unwrap();
    wait_until(browser, finished, "the reloaded dashboard").await;
    let reloaded = browser.execute(legend, Vec::new()).await.unwrap();
    assert_eq!(reloaded, json!(["sightline"]));
    screenshot(browser, "dashboard-variables").await;
}

/// The text of the card (or section) whose heading has id `heading`.
async fn card_text(browser: &Client, heading: &str) -> String {
    let script = format!(
        "return document.getElementById({}).closest('section').textContent;",
        json!(heading)
    );
    let text = browser.execute(&script, Vec::new()).await.unwrap();
    text.as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Home: targets up and down, the firing alert, ingest rates, storage with retention, and
/// the recent error line; Status: build facts, storage, cardinality and log streams.
async fn home_and_status_show_the_homelab(browser: &Client, app: &Appliance) {
    // Rates need two readings: the page before this one was the first.
    browser.goto(&app.url("/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser.refresh().await.unwrap();
    let targets = card_text(browser, "targets-h").await;
    assert!(
        targets.contains("2 up") && targets.contains("1 down") && targets.contains("hostile"),
        "{targets}"
    );
    let alerts = card_text(browser, "alerts-h").await;
    assert!(alerts.contains("UiTestAlert"), "{alerts}");
    let ingest = card_text(browser, "ingest-h").await;
    let samples: f64 = ingest
        .split("Samples/s ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no samples/s figure in {ingest:?}"));
    assert!(samples > 0.0, "{ingest}");
    assert!(
        ingest.contains("Log lines/s") && ingest.contains("streams"),
        "{ingest}"
    );
    let storage = card_text(browser, "storage-h").await;
    assert!(
        storage.contains("Metrics on disk")
            && storage.contains("kept 1w")
            && storage.contains("Logs on disk"),
        "{storage}"
    );
    let errors = card_text(browser, "errors-h").await;
    assert!(
        errors.contains("disk") && errors.contains("failed") && !errors.contains("starting"),
        "{errors}"
    );
    browser.goto(&app.url("/status")).await.unwrap();
    let build = card_text(browser, "build-h").await;
    assert!(
        build.contains("Version") && build.contains("Revision"),
        "{build}"
    );
    let metrics = card_text(browser, "metrics-h").await;
    assert!(
        metrics.contains("Series in memory") && metrics.contains("Retention"),
        "{metrics}"
    );
    let logs = card_text(browser, "logs-h").await;
    assert!(
        logs.contains("Streams") && logs.contains("Lines since start-up"),
        "{logs}"
    );
    let cardinality = browser
        .execute(
            "return Array.from(document.querySelectorAll('main h3')).map(h => [h.textContent, h.closest('section').querySelectorAll('tbody tr').length]);",
            Vec::new(),
        )
        .await
        .unwrap();
    let tables = cardinality.as_array().unwrap();
    assert!(
        tables.len() >= 2 && tables.iter().all(|t| t[1].as_u64().unwrap() > 0),
        "cardinality tables with rows: {cardinality}"
    );
    let config = browser
        .find(Locator::Css("pre.config"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("job_name: node-exporter"), "{config}");
    eprintln!(
        "Home: {targets} · {ingest}; Status: {} cardinality tables",
        tables.len()
    );
}

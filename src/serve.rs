//! `sightline serve`: start-up, signals, reload and graceful shutdown.
//!
//! Order matters: the config is read first (a bad one stops start-up with its position), then
//! the data directory is locked (a second process stops here), then the listeners are bound
//! so that `/-/healthy` answers while storage recovers, and `/-/ready` turns 200 only when
//! recovery (the metrics WAL replay) is done; then the scrape manager starts. SIGHUP reloads
//! the config; SIGTERM or SIGINT stops scraping, drains HTTP and syncs the WAL, within 10 s.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus::Registry;
use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::service::{Notifier, RetryPolicy, now_ms};
use sightline_alerting::rulefmt::RuleFile;
use sightline_alerting::rules::builtin::BuiltinRules;
use sightline_alerting::rules::manager::{RuleManager, RuleSettings};
use sightline_core::config::{Config, ConfigSource, ConfigStore};
use sightline_logstore::logql::QueryLimits;
use sightline_logstore::store::{LogStore, StoreOptions};
use sightline_scraper::log_forward::LogForwarder;
use sightline_scraper::manager::ScrapeManager;
use sightline_scraper::remote_write::RemoteWriter;
use sightline_tsdb::block::RetentionPolicy;
use sightline_tsdb::db::{Db, DbOptions};
use sightline_tsdb::head::{Head, HeadOptions};
use sightline_tsdb::promql::{Engine, EngineOptions};
use sightline_ui::dashboards::DashboardLibrary;
use sightline_ui::{Backends, HttpServer, LogBackend, MetricBackend, Readiness};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::cli::ServeArgs;
use crate::data_dir::DataDir;
use crate::self_metrics;

/// How long in-flight HTTP requests may take to finish after SIGTERM. Together with the
/// storage flush that follows, shutdown stays within the 10 s Kubernetes and systemd allow
/// by default.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// How often the WAL is checked for a due sync; well below the 1 s default interval.
const WAL_SYNC_TICK: Duration = Duration::from_millis(100);

/// How often finished block ranges are cut from the head.
const BLOCK_CUT_INTERVAL: Duration = Duration::from_secs(60);

/// Retention and day compaction run every this many block cuts (an hour).
const RETENTION_EVERY_TICKS: u64 = 60;

/// How often log head chunks are checked for age and idleness and the log WAL truncated.
const LOG_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

/// Log retention runs every this many log maintenance rounds (an hour).
const LOG_RETENTION_EVERY_TICKS: u64 = 360;

/// Runs the appliance until SIGTERM or SIGINT; false when it could not start.
pub fn main(args: ServeArgs) -> bool {
    if let Err(error) = init_logging(&args.log_level) {
        eprintln!("error: {error:#}");
        return false;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the async runtime: {error}");
            return false;
        }
    };
    crate::allocator::spawn_trimmer();
    match runtime.block_on(run(args)) {
        Ok(()) => true,
        Err(error) => {
            tracing::error!("{error:#}");
            false
        }
    }
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .with_context(|| format!("invalid --log-level {level:?} (use e.g. info or debug)"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let source = args
        .config
        .clone()
        .map_or(ConfigSource::Embedded, ConfigSource::File);
    let config = Arc::new(ConfigStore::open(source)?);
    let startup = config.current();
    let data_path = DataDir::path_for(args.data_dir.as_deref(), &startup);
    let data_dir = DataDir::lock(&data_path)?;
    let listen = if args.listen.is_empty() {
        startup.web.listen.clone()
    } else {
        args.listen.clone()
    };

    let registry = Registry::new();
    self_metrics::register(&registry).context("cannot register process metrics")?;
    for metric in config.metrics() {
        registry
            .register(metric)
            .context("cannot register config metrics")?;
    }
    let readiness = Readiness::new();
    let backends = Backends::default();
    let server = HttpServer::new(
        config.clone(),
        registry.clone(),
        readiness.clone(),
        backends.clone(),
        self_metrics::build_info(),
        effective_flags(&args, &data_path, &listen),
        &listen,
    )?;
    if let Some(warning) = sightline_ui::exposure_warning(&listen, &startup.web.auth) {
        tracing::warn!("{warning}");
    }
    let listeners = HttpServer::bind(&listen).await?;
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.serve(listeners, shutdown.clone()));
    tokio::spawn(warn_on_restart_only_changes(
        config.clone(),
        listen.clone(),
        data_path.clone(),
    ));

    // Storage recovery: /-/healthy answers while the WAL replays, /-/ready only afterwards.
    let db = open_db(&data_dir, &startup).await?;
    let head = db.head().clone();
    head.metrics()
        .register(&registry)
        .context("cannot register storage metrics")?;
    let wal_sync = spawn_wal_sync(head.clone());
    let block_maintenance = spawn_block_maintenance(db.clone());
    tokio::spawn(follow_retention_changes(config.clone(), db.clone()));
    let logs = open_logs(&data_dir, &registry).await?;
    // The forwarders hold the log WAL they have not sent before maintenance first truncates.
    let log_forwarder = Arc::new(
        LogForwarder::new(
            logs.clone(),
            data_dir.path().join("log_forward"),
            config.source().base_dir().to_owned(),
        )
        .context("cannot create the log-forwarding metrics")?,
    );
    log_forwarder
        .register_metrics(&registry)
        .context("cannot register log-forwarding metrics")?;
    let log_forwarding = log_forwarder
        .clone()
        .spawn(config.subscribe(), shutdown.clone());
    backends.set_logs(LogBackend::new(
        logs.clone(),
        &startup.limits.logs,
        log_forwarder,
    ));
    let log_maintenance = spawn_log_maintenance(logs.clone(), config.clone());
    let log_collection = crate::log_collection::spawn(
        &startup,
        config.source().base_dir(),
        data_dir.path(),
        logs.clone(),
        &registry,
        shutdown.clone(),
    )?;
    registry
        .register(Box::new(self_metrics::StorageMetrics::new(
            data_dir.path().to_owned(),
            db.clone(),
            logs.clone(),
            config.clone(),
        )?))
        .context("cannot register storage metrics")?;
    let scrape_manager = Arc::new(ScrapeManager::new(
        Arc::new(head.clone()),
        config.source().base_dir().to_owned(),
    ));
    scrape_manager
        .register_metrics(&registry)
        .context("cannot register scrape metrics")?;
    let remote_writer = Arc::new(
        RemoteWriter::new(
            data_dir.path().join("metrics").join("wal"),
            data_dir.path().join("remote_write"),
            config.source().base_dir().to_owned(),
            scrape_manager.clone(),
        )
        .context("cannot create the remote-write metrics")?,
    );
    remote_writer
        .register_metrics(&registry)
        .context("cannot register remote-write metrics")?;
    let remote_writing = remote_writer
        .clone()
        .spawn(config.subscribe(), shutdown.clone());
    backends.set_dashboards(DashboardLibrary::new(data_dir.path().join("dashboards")));
    backends.set_metrics(MetricBackend {
        querier: db.querier().clone(),
        head: head.clone(),
        blocks: db.blocks().clone(),
        engine: Engine::new(engine_options(&startup)),
        scrapes: scrape_manager.clone(),
        remote_writes: remote_writer,
    });
    let scraping = tokio::spawn(
        scrape_manager
            .clone()
            .run(config.subscribe(), shutdown.clone()),
    );
    let rule_manager = Arc::new(RuleManager::new(
        Engine::new(EngineOptions::default()),
        db.querier().clone(),
        Arc::new(head.clone()),
    ));
    tokio::spawn(keep_rules_loaded(
        rule_manager.clone(),
        config.clone(),
        scrape_manager.clone(),
        listen.clone(),
    ));
    rule_manager.set_log_store(logs.clone());
    backends.set_rules(rule_manager.clone());
    let notifier = start_notifier(&config, &data_dir, &listen)?;
    notifier
        .metrics()
        .register(&registry)
        .context("cannot register notifier metrics")?;
    let sink_target = notifier.clone();
    rule_manager.set_alert_sink(Arc::new(move |alerts| {
        sink_target.receive(alerts, now_ms())
    }));
    tokio::spawn(keep_notifier_config(
        notifier.clone(),
        config.clone(),
        listen.clone(),
    ));
    backends.set_notifier(notifier.clone());
    tokio::spawn(notifier.clone().run(shutdown.clone()));
    let rule_evaluation = tokio::spawn(rule_manager.clone().run(shutdown.clone()));
    readiness.set_ready();
    tracing::info!(data_dir = %data_dir.path().display(), "Sightline is ready");

    wait_for_termination(&config).await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    let _ = scraping.await;
    let _ = remote_writing.await;
    let _ = log_forwarding.await;
    let _ = rule_evaluation.await;
    if let Some(log_collection) = log_collection {
        let _ = log_collection.await;
    }
    match tokio::time::timeout(HTTP_DRAIN_TIMEOUT, serving).await {
        Ok(Ok(result)) => result?,
        Ok(Err(panicked)) => tracing::error!("HTTP server task failed: {panicked}"),
        Err(_) => {
            tracing::warn!("requests still in flight after {HTTP_DRAIN_TIMEOUT:?}; closing them")
        }
    }
    wal_sync.abort();
    block_maintenance.abort();
    log_maintenance.abort();
    tokio::task::spawn_blocking(move || head.sync())
        .await
        .context("WAL sync task failed")?
        .context("cannot sync the metrics WAL at shutdown")?;
    drop(data_dir);
    tracing::info!("stopped");
    Ok(())
}

/// The command-line flags with the values in effect, for `/api/v1/status/flags`.
fn effective_flags(
    args: &ServeArgs,
    data_dir: &std::path::Path,
    listen: &[SocketAddr],
) -> BTreeMap<String, String> {
    let listen: Vec<String> = listen.iter().map(SocketAddr::to_string).collect();
    BTreeMap::from([
        (
            "config".to_owned(),
            args.config
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        ),
        ("data-dir".to_owned(), data_dir.display().to_string()),
        ("listen".to_owned(), listen.join(",")),
        ("log-level".to_owned(), args.log_level.clone()),
    ])
}

/// Opens the metric store under `DATA/metrics`: replays its WAL into the head and opens the
/// blocks.
async fn open_db(data_dir: &DataDir, config: &Config) -> anyhow::Result<Arc<Db>> {
    let dir = data_dir.path().join("metrics");
    let options = DbOptions {
        head: HeadOptions {
            wal_sync: config.storage.wal_sync.as_std(),
            ..HeadOptions::default()
        },
        block_range_ms: i64::try_from(config.storage.metrics.block_range.as_millis())
            .context("storage.metrics.block_range is too long")?,
        retention: RetentionPolicy::from(&config.storage.metrics),
    };
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, options))
        .await
        .context("WAL replay task failed")?
        .context("cannot open the metric store")?;
    let report = db.head().replay_report();
    tracing::info!(
        series = report.series,
        samples = report.samples,
        duration = ?report.duration,
        "metrics WAL replayed"
    );
    Ok(Arc::new(db))
}

/// Applies the retention settings of every reloaded config to `db` (from the next hourly
/// compaction on).
async fn follow_retention_changes(config: Arc<ConfigStore>, db: Arc<Db>) {
    let mut updates = config.subscribe();
    while updates.changed().await.is_ok() {
        let new = updates.borrow_and_update().clone();
        db.set_retention(RetentionPolicy::from(&new.storage.metrics));
    }
}

/// Opens the log store under `DATA/logs`, replaying its WAL; counts torn WAL tails in
/// `sightline_log_wal_torn_segments_total`.
async fn open_logs(data_dir: &DataDir, registry: &Registry) -> anyhow::Result<Arc<LogStore>> {
    let dir = data_dir.path().join("logs");
    let started = std::time::Instant::now();
    let store = tokio::task::spawn_blocking(move || LogStore::open(&dir, StoreOptions::default()))
        .await
        .context("log WAL replay task failed")?
        .context("cannot open the log store")?;
    let stats = store.stats();
    tracing::info!(
        streams = stats.streams,
        records = stats.replay.records,
        entries = stats.replayed_entries,
        torn_segments = stats.replay.torn_segments,
        duration = ?started.elapsed(),
        "log WAL replayed"
    );
    let torn = prometheus::IntCounter::new(
        "sightline_log_wal_torn_segments_total",
        "Log WAL segments whose tail was cut at a torn or corrupt record during replay.",
    )
    .context("cannot create the log WAL metric")?;
    torn.inc_by(stats.replay.torn_segments);
    registry
        .register(Box::new(torn))
        .context("cannot register the log WAL metric")?;
    Ok(Arc::new(store))
}

/// Every 10 s cuts old and idle log head chunks and truncates the log WAL; every hour drops
/// the days older than `storage.logs.retention`, then the oldest days while the stored days
/// exceed `storage.logs.retention_size`.
fn spawn_log_maintenance(
    store: Arc<LogStore>,
    config: Arc<ConfigStore>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LOG_MAINTENANCE_INTERVAL);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            ticks += 1;
            let expire = (ticks - 1).is_multiple_of(LOG_RETENTION_EVERY_TICKS);
            let logs = config.current().storage.logs.clone();
            let store = store.clone();
            let result = tokio::task::spawn_blocking(move || {
                store.maintain()?;
                if expire {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                    store.expire(now, logs.retention.into())?;
                    if logs.retention_size.bytes() > 0 {
                        store.expire_to_size(logs.retention_size.bytes())?;
                    }
                }
                Ok::<(), sightline_logstore::Error>(())
            })
            .await;
            if let Ok(Err(error)) = result {
                tracing::error!("log store maintenance failed: {error}");
            }
        }
    })
}

/// Every minute cuts finished block ranges from the head into blocks; every hour compacts
/// days and applies retention.
fn spawn_block_maintenance(db: Arc<Db>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BLOCK_CUT_INTERVAL);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            ticks += 1;
            let expire = ticks.is_multiple_of(RETENTION_EVERY_TICKS);
            let db = db.clone();
            let result = tokio::task::spawn_blocking(move || {
                let now = sightline_scraper::scrape::unix_millis(std::time::SystemTime::now());
                db.cut_blocks(now)?;
                if expire {
                    db.compact_and_expire(now)?;
                }
                Ok::<(), sightline_tsdb::Error>(())
            })
            .await;
            if let Ok(Err(error)) = result {
                tracing::error!("metric block maintenance failed: {error}");
            }
        }
    })
}

/// Syncs the WAL when the `storage.wal_sync` interval is due, also when no appends come.
fn spawn_wal_sync(head: Arc<Head>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WAL_SYNC_TICK);
        loop {
            tick.tick().await;
            let head = head.clone();
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || head.sync_if_due()).await {
                tracing::error!("cannot sync the metrics WAL: {error}");
            }
        }
    })
}

/// Reloads the config on SIGHUP; returns on SIGTERM or SIGINT.
async fn wait_for_termination(config: &Arc<ConfigStore>) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let config = config.clone();
                // The outcome is logged and exposed as a metric by the store itself.
                let _ = tokio::task::spawn_blocking(move || config.reload()).await;
            }
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
    }
}

/// Loads the rule files at start-up and again after every config reload (SIGHUP,
/// `/-/reload`) and every change of the PrometheusRule objects read from Kubernetes; a file
/// that fails keeps the rules already running, and the error is logged.
async fn keep_rules_loaded(
    rules: Arc<RuleManager>,
    config: Arc<ConfigStore>,
    scrapes: Arc<ScrapeManager>,
    listen: Vec<SocketAddr>,
) {
    let mut updates = config.subscribe();
    let base_dir = config.source().base_dir().to_owned();
    let mut current = config.current();
    let mut objects = scrapes.prometheus_rules();
    loop {
        let settings = RuleSettings {
            files: current.rule_file_paths(&base_dir),
            log_files: current.log_rule_file_paths(&base_dir),
            objects: prometheus_rule_files(&objects),
            evaluation_interval: current.global.evaluation_interval.as_std(),
            external_labels: current.global.external_labels.clone(),
            external_url: external_url(&current, &listen),
            builtin: BuiltinRules {
                enabled: current.builtin_rules.enabled,
                disabled: current.builtin_rules.disabled.iter().cloned().collect(),
                overrides: current.builtin_rules.overrides.clone(),
            },
            log_query_limits: QueryLimits::from_config(&current.limits.logs, &current.query),
        };
        let files = settings.files.len() + settings.log_files.len();
        let rules = rules.clone();
        match tokio::task::spawn_blocking(move || rules.update(settings)).await {
            Ok(Ok(())) => tracing::info!(files, "rule files loaded"),
            Ok(Err(errors)) => {
                for error in errors {
                    tracing::error!("{error}; the rules loaded before stay in force");
                }
            }
            Err(error) => tracing::error!("rule loading task failed: {error}"),
        }
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                current = updates.borrow_and_update().clone();
            }
            changed = rule_objects_change(&scrapes, &objects) => objects = changed,
        }
    }
}

/// PrometheusRule objects as `(namespace, name, spec)`.
type RuleObjects = Vec<(String, String, serde_json::Value)>;

/// Waits until the PrometheusRule objects differ from `seen` (checked every 2 s) and
/// returns them.
async fn rule_objects_change(scrapes: &ScrapeManager, seen: &RuleObjects) -> RuleObjects {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = scrapes.prometheus_rules();
        if &now != seen {
            return now;
        }
    }
}

/// The rule groups of PrometheusRule objects; an object that is not a valid rule file is
/// left out with an error in the log, and the others load (prometheus-operator's admission
/// webhook would have refused it).
fn prometheus_rule_files(objects: &RuleObjects) -> Vec<RuleFile> {
    objects
        .iter()
        .filter_map(|(namespace, name, spec)| {
            RuleFile::from_prometheus_rule(namespace, name, spec)
                .inspect_err(|error| {
                    tracing::error!(namespace, name, "PrometheusRule left out: {error}")
                })
                .ok()
        })
        .collect()
}

/// The server's external URL: `web.external_url` without a trailing slash, else the first
/// listen address.
fn external_url(config: &Config, listen: &[SocketAddr]) -> String {
    config.web.external_url.as_ref().map_or_else(
        || {
            listen
                .first()
                .map_or_else(String::new, |addr| format!("http://{addr}"))
        },
        |url| url.as_str().trim_end_matches('/').to_owned(),
    )
}

/// Loads the notifier's config (a bad one stops start-up with its position) and opens its
/// state under `DATA/alertmanager`.
fn start_notifier(
    config: &ConfigStore,
    data_dir: &DataDir,
    listen: &[SocketAddr],
) -> anyhow::Result<Arc<Notifier>> {
    let current = config.current();
    let notifier_config = AlertmanagerConfig::from_sightline(&current, config.source())?;
    for warning in notifier_config.warnings() {
        tracing::warn!("{warning}");
    }
    let notifier = Notifier::new(
        notifier_config,
        Some(&data_dir.path().join("alertmanager")),
        RetryPolicy::default(),
    )
    .context("cannot open the notifier's state")?;
    notifier.set_external_url(external_url(&current, listen));
    Ok(Arc::new(notifier))
}

/// Reloads the notifier's config after every config reload (SIGHUP, `/-/reload`); a config
/// that fails keeps the one running, and the error is logged.
async fn keep_notifier_config(
    notifier: Arc<Notifier>,
    config: Arc<ConfigStore>,
    listen: Vec<SocketAddr>,
) {
    let mut updates = config.subscribe();
    while updates.changed().await.is_ok() {
        let current = updates.borrow_and_update().clone();
        match AlertmanagerConfig::from_sightline(&current, config.source()) {
            Ok(notifier_config) => {
                for warning in notifier_config.warnings() {
                    tracing::warn!("{warning}");
                }
                notifier.set_external_url(external_url(&current, &listen));
                notifier.set_config(notifier_config, now_ms());
                tracing::info!("notifier config reloaded");
            }
            Err(error) => {
                tracing::error!("{error}; the notifier config loaded before stays in force")
            }
        }
    }
}

/// Logs a warning when a reload changes a setting that only takes effect at start-up.
/// The PromQL engine's settings from the `query` section and the global evaluation interval
/// (the step of subqueries without one), read at start-up.
fn engine_options(config: &Config) -> EngineOptions {
    let millis =
        |d: sightline_core::duration::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    EngineOptions {
        lookback_delta_ms: millis(config.query.lookback_delta),
        max_samples: config.query.max_samples,
        timeout: Some(config.query.timeout.as_std()),
        default_subquery_step_ms: millis(config.global.evaluation_interval),
        max_concurrency: config.query.max_concurrency,
    }
}

async fn warn_on_restart_only_changes(
    config: Arc<ConfigStore>,
    listen: Vec<SocketAddr>,
    data_path: PathBuf,
) {
    let mut updates = config.subscribe();
    let started_with: Arc<Config> = config.current();
    while updates.changed().await.is_ok() {
        let new = updates.borrow_and_update().clone();
        if new.web.listen != started_with.web.listen {
            tracing::warn!(
                ?listen,
                "web.listen changed; it takes effect after a restart"
            );
        }
        if new.storage.path != started_with.storage.path {
            tracing::warn!(data_dir = %data_path.display(), "storage.path changed; it takes effect after a restart");
        }
        if new.storage.metrics.block_range != started_with.storage.metrics.block_range {
            tracing::warn!("storage.metrics.block_range changed; it takes effect after a restart");
        }
        if new.query != started_with.query {
            tracing::warn!("query limits changed; they take effect after a restart");
        }
        if new.web.external_url != started_with.web.external_url {
            tracing::warn!("web.external_url changed; the route prefix changes after a restart");
        }
    }
}

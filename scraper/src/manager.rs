//! The scrape manager: the config's jobs turned into running scrape loops, kept in step with
//! discovery and config reloads.
//!
//! One pool per job. A pool's targets are its discovered groups run through
//! [`Target::populate`]; a target whose labels after relabeling stay the same keeps its loop
//! (and its series cache) across discovery updates and reloads, as in Prometheus; a changed
//! job restarts its loops; a removed target writes staleness markers for its series.
//! Kubernetes discoveries run as tasks of their own and wake the manager after a change; pools
//! with the same `kubernetes_sd_configs` entry share one discovery. With a `kubernetes:`
//! section, the selected ServiceMonitors and PodMonitors are turned into jobs
//! ([`crate::discovery::monitors`]) that are pools like the config's own, rebuilt whenever a
//! monitor (or a Secret it names) changes; an unchanged generated job keeps its loops.
//! On shutdown no staleness markers are written (as Prometheus disables end-of-run
//! staleness then), so that a restart leaves no gap in the series.
//! Decision: each loop waits a per-target offset (a hash of its labels, modulo the interval)
//! before its first scrape, so that targets of one job do not all scrape at the same instant.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Weak;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use prometheus::{IntCounter, Registry};
use sightline_core::config::kubernetes::KubernetesConfig;
use sightline_core::config::scrape::KubernetesSdConfig;
use sightline_core::config::{Config, ScrapeConfig};
use sightline_core::labels::Labels;
use sightline_tsdb::storage::Appendable;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::discovery::file::FileDiscovery;
use crate::discovery::kubernetes::KubernetesDiscovery;
use crate::discovery::monitors;
use crate::discovery::{TargetGroup, static_groups};
use crate::scrape::client::ScrapeClient;
use crate::scrape::metadata::{MetadataMap, SharedMetadata};
use crate::scrape::{ScrapeError, ScrapeLoop, ScrapeStatus};
use crate::target::Target;

/// How often file discovery looks for changed files.
const DISCOVERY_POLL: Duration = Duration::from_secs(5);

/// Least time between two re-syncs caused by Kubernetes changes, so that a burst of events
/// (a rollout) costs one re-sync, not one per event. Prometheus waits 5 s; a shorter wait
/// shows a homelab's new pod sooner at the same cost.
const DISCOVERY_THROTTLE: Duration = Duration::from_secs(1);

/// The most a scrape's timestamp is moved onto its schedule. Within 1 % of the interval (at
/// most this), a scrape is stamped with the time it was scheduled for rather than the time it
/// started, so that a target's samples are evenly spaced and their timestamps compress to one
/// bit each in the XOR chunks instead of one to two bytes of jitter. Prometheus does the same
/// within 2 ms (`--scrape.timestamp-tolerance`); a busy host wakes loops later than that.
const MAX_TIMESTAMP_TOLERANCE: Duration = Duration::from_millis(25);

/// One active target as the targets API shows it.
#[derive(Debug, Clone)]
pub struct ActiveTarget {
    /// The job.
    pub scrape_pool: String,
    /// The target.
    pub target: Target,
    /// The last scrape's outcome.
    pub status: ScrapeStatus,
    /// The metric metadata of its recent scrapes.
    pub metadata: Arc<MetadataMap>,
}

/// A dashboard as a ConfigMap carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapDashboard {
    /// Its folder: the ConfigMap's `grafana_folder` annotation (as Grafana's sidecar reads
    /// it), else its namespace.
    pub folder: String,
    /// `namespace/name:key`, for log lines.
    pub origin: String,
    /// The dashboard JSON text.
    pub text: String,
}

/// A target relabeling dropped, with the labels it was discovered with.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    /// The job.
    pub scrape_pool: String,
    /// Its labels before relabeling.
    pub discovered_labels: Labels,
}

struct Running {
    target: Target,
    status: Arc<Mutex<ScrapeStatus>>,
    metadata: SharedMetadata,
    stop: CancellationToken,
}

struct Pool {
    job: Arc<ScrapeConfig>,
    client: Option<Arc<ScrapeClient>>,
    client_error: Option<String>,
    file_sd: Vec<FileDiscovery>,
    /// Each discovery with the generation the pool last synced from.
    kubernetes_sd: Vec<(Arc<KubernetesDiscovery>, u64)>,
    running: HashMap<Labels, Running>,
    dropped: Vec<Labels>,
    last_full_refresh: Instant,
}

/// Runs every job's scrape loops against one storage.
pub struct ScrapeManager {
    storage: Arc<dyn Appendable>,
    base_dir: PathBuf,
    pools: Mutex<BTreeMap<String, Pool>>,
    /// Cancelled when the process stops: every loop ends without staleness markers.
    shutdown: CancellationToken,
    discovery_changed: Arc<Notify>,
    kubernetes: Mutex<KubernetesState>,
    /// `prometheus_target_scrapes_exceeded_sample_limit_total`, Prometheus's name: scrapes
    /// refused because a target exposed more samples than its `sample_limit`.
    exceeded_sample_limit: IntCounter,
}

/// Kubernetes discoveries shared between pools, and the monitors' discovery.
#[derive(Default)]
struct KubernetesState {
    /// By the `kubernetes_sd_configs` entry they follow (as JSON).
    shared: HashMap<String, Weak<KubernetesDiscovery>>,
    /// The `kubernetes:` section being followed, its discovery and the generation the
    /// monitor jobs were last built from.
    monitors: Option<(KubernetesConfig, KubernetesDiscovery, u64)>,
    /// The `kubernetes:` section and the discovery behind its `kube_*` series, when
    /// `cluster_metrics` is on.
    cluster: Option<(KubernetesConfig, KubernetesDiscovery)>,
    /// The last config applied, to rebuild monitor jobs from.
    config: Option<Config>,
}

impl ScrapeManager {
    /// A manager appending to `storage`; relative file paths resolve against `base_dir`.
    pub fn new(storage: Arc<dyn Appendable>, base_dir: PathBuf) -> ScrapeManager {
        ScrapeManager {
            storage,
            base_dir,
            pools: Mutex::new(BTreeMap::new()),
            shutdown: CancellationToken::new(),
            discovery_changed: Arc::new(Notify::new()),
            kubernetes: Mutex::new(KubernetesState::default()),
            exceeded_sample_limit: IntCounter::new(
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
            )
            .unwrap_or_else(|error| unreachable!("a constant metric definition: {error}")),
        }
    }

    /// Registers the manager's counters with `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.exceeded_sample_limit.clone()))
    }

    /// Follows `config` until `stop`: applies every new config, polls file discovery and
    /// re-syncs pools when a Kubernetes discovery reports a change. Then every loop ends
    /// without staleness markers (the process is stopping).
    pub async fn run(
        self: Arc<Self>,
        mut config: watch::Receiver<Arc<Config>>,
        stop: CancellationToken,
    ) {
        let current = config.borrow_and_update().clone();
        self.apply(&current);
        let mut poll = tokio::time::interval(DISCOVERY_POLL);
        let mut last_change = Instant::now();
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let current = config.borrow_and_update().clone();
                    self.apply(&current);
                }
                _ = poll.tick() => self.refresh_discovery(),
                _ = self.discovery_changed.notified() => {
                    let since = last_change.elapsed();
                    if since < DISCOVERY_THROTTLE {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(DISCOVERY_THROTTLE - since) => {}
                        }
                    }
                    last_change = Instant::now();
                    self.refresh_discovery();
                }
            }
        }
        self.shutdown.cancel();
    }

    /// Brings the pools in line with `config`: new jobs start, removed jobs stop, changed
    /// jobs restart. A job whose only change is where its targets come from (static, file or
    /// Kubernetes discovery) keeps its pool: the loops of targets still there keep running.
    /// With a `kubernetes:` section, the jobs of the selected ServiceMonitors and PodMonitors
    /// are pools too (see [`monitors`]).
    pub fn apply(&self, config: &Config) {
        let monitor_jobs = self.monitor_jobs(config);
        let mut pools = self.lock();
        let wanted: BTreeMap<&str, &ScrapeConfig> = config
            .scrape_configs
            .iter()
            .chain(&monitor_jobs)
            .map(|job| (job.job_name.as_str(), job))
            .collect();
        pools.retain(|name, pool| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|job| scrape_settings(job) == scrape_settings(&pool.job));
            if !keep {
                pool.stop_all();
            }
            keep
        });
        for (name, job) in wanted {
            if let Some(pool) = pools.get_mut(name) {
                if *job != *pool.job {
                    pool.job = Arc::new(job.clone());
                    self.discover(pool);
                }
                continue;
            }
            let (client, client_error) = match ScrapeClient::new(job, &self.base_dir) {
                Ok(client) => (Some(Arc::new(client)), None),
                Err(error) => {
                    tracing::error!(job = name, "cannot scrape this job: {error}");
                    (None, Some(error.to_string()))
                }
            };
            let mut pool = Pool {
                job: Arc::new(job.clone()),
                client,
                client_error,
                file_sd: Vec::new(),
                kubernetes_sd: Vec::new(),
                running: HashMap::new(),
                dropped: Vec::new(),
                last_full_refresh: Instant::now(),
            };
            self.discover(&mut pool);
            pools.insert(name.to_owned(), pool);
        }
    }

    /// (Re)starts the discoveries of `pool`'s job and syncs its loops with what they find.
    fn discover(&self, pool: &mut Pool) {
        pool.file_sd = pool
            .job
            .file_sd_configs
            .iter()
            .map(|sd| FileDiscovery::new(sd.clone(), &self.base_dir))
            .collect();
        pool.kubernetes_sd = pool
            .job
            .kubernetes_sd_configs
            .iter()
            .map(|sd| (self.kubernetes_discovery(sd), 0))
            .collect();
        for discovery in &mut pool.file_sd {
            discovery.refresh(true);
        }
        pool.last_full_refresh = Instant::now();
        self.sync(pool);
    }

    /// Re-reads changed discovery files, takes Kubernetes discovery changes, and syncs the
    /// pools they feed.
    pub fn refresh_discovery(&self) {
        let reapply = {
            let state = self.kubernetes_state();
            match (&state.monitors, &state.config) {
                (Some((_, discovery, seen)), Some(config)) if discovery.generation() != *seen => {
                    Some(config.clone())
                }
                _ => None,
            }
        };
        if let Some(config) = reapply {
            self.apply(&config);
        }
        let mut pools = self.lock();
        for pool in pools.values_mut() {
            let mut changed = false;
            let due = pool
                .file_sd
                .iter()
                .any(|sd| pool.last_full_refresh.elapsed() >= sd.refresh_interval());
            for discovery in &mut pool.file_sd {
                changed |= discovery.refresh(due).0;
            }
            for (discovery, seen) in &mut pool.kubernetes_sd {
                let generation = discovery.generation();
                changed |= generation != *seen;
                *seen = generation;
            }
            if due {
                pool.last_full_refresh = Instant::now();
            }
            if changed {
                self.sync(pool);
            }
        }
    }

    /// Every target being scraped, by job.
    pub fn active_targets(&self) -> Vec<ActiveTarget> {
        let pools = self.lock();
        let mut targets: Vec<ActiveTarget> = pools
            .iter()
            .flat_map(|(name, pool)| {
                pool.running.values().map(move |running| ActiveTarget {
                    scrape_pool: name.clone(),
                    target: running.target.clone(),
                    status: running
                        .status
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                    metadata: running.metadata.snapshot(),
                })
            })
            .collect();
        targets.sort_by(|a, b| {
            (&a.scrape_pool, a.target.labels()).cmp(&(&b.scrape_pool, b.target.labels()))
        });
        targets
    }

    /// Every target relabeling dropped, by job.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        let pools = self.lock();
        pools
            .iter()
            .flat_map(|(name, pool)| {
                pool.dropped.iter().map(move |labels| DroppedTarget {
                    scrape_pool: name.clone(),
                    discovered_labels: labels.clone(),
                })
            })
            .collect()
    }

    /// Retires every target; each loop writes staleness markers for its series.
    pub fn stop_all(&self) {
        for pool in self.lock().values_mut() {
            pool.stop_all();
        }
    }

    /// Starts loops for new targets and stops loops for targets that went away.
    fn sync(&self, pool: &mut Pool) {
        let mut groups: Vec<TargetGroup> = static_groups(&pool.job);
        for discovery in &pool.file_sd {
            groups.extend(discovery.groups());
        }
        for (discovery, seen) in &mut pool.kubernetes_sd {
            *seen = discovery.generation();
            groups.extend(discovery.groups());
        }
        let mut wanted: HashMap<Labels, Target> = HashMap::new();
        pool.dropped.clear();
        for group in &groups {
            for discovered in &group.targets {
                let labels = Target::discovered(&pool.job, discovered, &group.labels);
                match Target::from_discovered(&pool.job, labels.clone()) {
                    Ok(Some(target)) => {
                        wanted.insert(target.internal_labels().clone(), target);
                    }
                    Ok(None) => pool.dropped.push(labels),
                    Err(error) => {
                        tracing::warn!(
                            job = pool.job.job_name,
                            "skipping target {discovered}: {error}"
                        );
                    }
                }
            }
        }
        let target_limit = pool.job.target_limit;
        if target_limit > 0 && wanted.len() as u64 > target_limit {
            tracing::error!(
                job = pool.job.job_name,
                "target_limit exceeded: {} targets, limit {target_limit}; scraping none",
                wanted.len()
            );
            wanted.clear();
        }
        pool.running.retain(|key, running| {
            let keep = wanted.contains_key(key);
            if !keep {
                running.stop.cancel();
            }
            keep
        });
        for (key, target) in wanted {
            if pool.running.contains_key(&key) {
                continue;
            }
            let status = Arc::new(Mutex::new(ScrapeStatus::default()));
            let stop = CancellationToken::new();
            let mut metadata = SharedMetadata::default();
            let client = match &pool.client {
                Some(client) => client
                    .for_target(&target)
                    .map_err(|error| error.to_string()),
                None => Err(pool.client_error.clone().unwrap_or_default()),
            };
            match client {
                Ok(client) => {
                    let scrape_loop = ScrapeLoop::new(target.clone(), pool.job.clone(), client);
                    metadata = scrape_loop.metadata();
                    tokio::spawn(run_loop(
                        scrape_loop,
                        self.storage.clone(),
                        status.clone(),
                        self.exceeded_sample_limit.clone(),
                        stop.clone(),
                        self.shutdown.clone(),
                    ));
                }
                Err(error) => {
                    let mut status = status.lock().unwrap_or_else(PoisonError::into_inner);
                    status.last_error = error;
                }
            }
            pool.running.insert(
                key,
                Running {
                    target,
                    status,
                    metadata,
                    stop,
                },
            );
        }
    }

    /// The scrape jobs of the monitors the `kubernetes:` section selects, starting or
    /// restarting the monitors' discovery when the section changed.
    fn monitor_jobs(&self, config: &Config) -> Vec<ScrapeConfig> {
        let mut state = self.kubernetes_state();
        state.config = Some(config.clone());
        let Some(section) = &config.kubernetes else {
            state.monitors = None;
            state.cluster = None;
            return Vec::new();
        };
        if !section.cluster_metrics.unwrap_or(true) {
            state.cluster = None;
        } else if state.cluster.as_ref().is_none_or(|(old, _)| old != section) {
            let discovery = KubernetesDiscovery::spawn_cluster_state(section, &self.base_dir);
            state.cluster = Some((section.clone(), discovery));
        }
        if state
            .monitors
            .as_ref()
            .is_none_or(|(old, _, _)| old != section)
        {
            let discovery = KubernetesDiscovery::spawn_monitors(
                section,
                &self.base_dir,
                self.discovery_changed.clone(),
            );
            state.monitors = Some((section.clone(), discovery, 0));
        }
        let Some((_, discovery, seen)) = &mut state.monitors else {
            return Vec::new();
        };
        *seen = discovery.generation();
        discovery.with_stores(|stores| monitors::scrape_configs(stores, config, section))
    }

    /// The dashboards of the ConfigMaps labelled `grafana_dashboard: "1"` that the
    /// `kubernetes:` section reads, one per JSON entry of a ConfigMap's `data`, sorted by
    /// namespace, name and key; none without the section.
    pub fn dashboards(&self) -> Vec<ConfigMapDashboard> {
        let state = self.kubernetes_state();
        let Some((_, discovery, _)) = state.monitors.as_ref() else {
            return Vec::new();
        };
        discovery.with_stores(|stores| {
            stores
                .dashboards
                .iter()
                .flat_map(|((namespace, name), map)| {
                    let folder = map
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("grafana_folder"))
                        .cloned()
                        .unwrap_or_else(|| namespace.clone());
                    map.data
                        .iter()
                        .flatten()
                        .filter(|(key, _)| key.ends_with(".json"))
                        .map(move |(key, text)| ConfigMapDashboard {
                            folder: folder.clone(),
                            origin: format!("{namespace}/{name}:{key}"),
                            text: text.clone(),
                        })
                })
                .collect()
        })
    }

    /// The cluster's `kube_*` series in the text format
    /// ([`cluster_state`](crate::cluster_state)), from the objects the `kubernetes:` section
    /// follows; `None` without the section or with `cluster_metrics: false`.
    pub fn cluster_metrics(&self) -> Option<String> {
        let state = self.kubernetes_state();
        let (_, discovery) = state.cluster.as_ref()?;
        Some(discovery.with_stores(crate::cluster_state::render))
    }

    /// The PrometheusRule objects the `kubernetes:` section reads, as `(namespace, name,
    /// spec)` sorted by namespace and name; none without the section.
    pub fn prometheus_rules(&self) -> Vec<(String, String, serde_json::Value)> {
        let state = self.kubernetes_state();
        let Some((_, discovery, _)) = state.monitors.as_ref() else {
            return Vec::new();
        };
        discovery.with_stores(|stores| {
            stores
                .prometheus_rules
                .iter()
                .map(|((namespace, name), rule)| {
                    (namespace.clone(), name.clone(), rule.spec.clone())
                })
                .collect()
        })
    }

    /// The running discovery for `config`, shared with every pool that has the same entry.
    fn kubernetes_discovery(&self, config: &KubernetesSdConfig) -> Arc<KubernetesDiscovery> {
        let key = serde_json::to_string(config).unwrap_or_default();
        let mut state = self.kubernetes_state();
        state.shared.retain(|_, weak| weak.strong_count() > 0);
        if let Some(discovery) = state.shared.get(&key).and_then(Weak::upgrade) {
            return discovery;
        }
        let discovery = Arc::new(KubernetesDiscovery::spawn(
            config,
            &self.base_dir,
            self.discovery_changed.clone(),
        ));
        state.shared.insert(key, Arc::downgrade(&discovery));
        discovery
    }

    fn kubernetes_state(&self) -> std::sync::MutexGuard<'_, KubernetesState> {
        self.kubernetes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pool>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    fn stop_all(&mut self) {
        for running in self.running.values() {
            running.stop.cancel();
        }
        self.running.clear();
    }
}

/// A loop's ticks, and the wall-clock time each was scheduled for.
struct Schedule {
    ticker: tokio::time::Interval,
    /// The first tick, on the monotonic clock and on the wall clock.
    anchor: (tokio::time::Instant, SystemTime),
    tolerance: Duration,
}

impl Schedule {
    /// Ticks every `interval` from now; a scrape that overruns skips the ticks it missed.
    fn start(interval: Duration) -> Schedule {
        let now = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval_at(now, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Schedule {
            ticker,
            anchor: (now, SystemTime::now()),
            tolerance: (interval / 100).min(MAX_TIMESTAMP_TOLERANCE),
        }
    }

    /// The timestamp of the scrape of `tick` starting at `wall`: the scheduled time when
    /// `wall` is within the tolerance of it, else `wall` (and the schedule is re-anchored
    /// there, should the wall clock have been stepped).
    fn timestamp(&mut self, tick: tokio::time::Instant, wall: SystemTime) -> SystemTime {
        let (start, start_wall) = self.anchor;
        let scheduled = start_wall + tick.saturating_duration_since(start);
        let off = match wall.duration_since(scheduled) {
            Ok(late) => late,
            Err(early) => early.duration(),
        };
        if off <= self.tolerance {
            scheduled
        } else {
            self.anchor = (tick, wall);
            wall
        }
    }
}

/// A job's settings without its target discovery: what its loops scrape with.
fn scrape_settings(job: &ScrapeConfig) -> ScrapeConfig {
    ScrapeConfig {
        static_configs: Vec::new(),
        file_sd_configs: Vec::new(),
        kubernetes_sd_configs: Vec::new(),
        ..job.clone()
    }
}

/// How long a target's loop waits before its first scrape: a hash of its labels modulo the
/// interval, so that targets spread over the interval and a target keeps its phase.
fn start_offset(target: &Target, interval: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    target.internal_labels().hash(&mut hasher);
    let interval_nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_nanos(hasher.finish() % interval_nanos)
}

/// Scrapes one target every interval until `retire` (the target went away: its series are
/// marked stale) or `shutdown` (the process stops: they are not).
async fn run_loop(
    mut scrape_loop: ScrapeLoop,
    storage: Arc<dyn Appendable>,
    status: Arc<Mutex<ScrapeStatus>>,
    exceeded_sample_limit: IntCounter,
    retire: CancellationToken,
    shutdown: CancellationToken,
) {
    let interval = scrape_loop.target().interval().as_std();
    let offset = start_offset(scrape_loop.target(), interval);
    tokio::select! {
        _ = retire.cancelled() => return,
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(offset) => {}
    }
    let mut schedule = Schedule::start(interval);
    loop {
        tokio::select! {
            _ = retire.cancelled() => break,
            _ = shutdown.cancelled() => return,
            tick = schedule.ticker.tick() => {
                let wall = SystemTime::now();
                let timestamp = schedule.timestamp(tick, wall);
                let result = scrape_loop.scrape(storage.as_ref(), timestamp).await;
                if matches!(result, Err(ScrapeError::SampleLimit(_))) {
                    exceeded_sample_limit.inc();
                }
                let mut status = status.lock().unwrap_or_else(PoisonError::into_inner);
                status.last_scrape = Some(timestamp);
                status.last_duration = wall.elapsed().unwrap_or_default();
                status.up = result.is_ok();
                status.last_error = result.err().map(|error| error.to_string()).unwrap_or_default();
            }
        }
    }
    if let Err(error) = scrape_loop.append_stale_on_stop(storage.as_ref(), SystemTime::now()) {
        tracing::warn!("cannot write staleness markers for a stopped target: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_spread_over_the_interval_and_stay_put() {
        let job = Config::parse(
            std::path::Path::new("t.yml"),
            "scrape_configs: [{job_name: app, scrape_interval: 10s}]",
        )
        .map(|mut config| config.scrape_configs.remove(0))
        .unwrap_or_else(|error| panic!("{error}"));
        let interval = Duration::from_secs(10);
        let mut per_second = [0_usize; 10];
        for port in 0..200 {
            let address = format!("10.0.0.1:{}", 9000 + port);
            let target = Target::populate(
                &job,
                &Labels::from_pairs([("__address__", address.as_str())]),
                &Labels::default(),
            )
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{address} is a valid target"));
            let offset = start_offset(&target, interval);
            assert!(offset < interval);
            assert_eq!(offset, start_offset(&target, interval), "stable per target");
            per_second[usize::try_from(offset.as_secs()).unwrap_or(0)] += 1;
        }
        // 200 targets over 10 one-second slots: every slot is used and none holds a crowd.
        assert!(
            per_second.iter().all(|&n| (5..=40).contains(&n)),
            "{per_second:?}"
        );
    }
}

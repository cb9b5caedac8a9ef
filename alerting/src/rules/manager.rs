//! The rule manager: loads rule files into groups, evaluates each group at its interval and
//! keeps alert state across reloads.
//!
//! Follows Prometheus's `rules.Manager`:
//! - A reload reads every rule file first; if any fails, the groups already running stay
//!   (the error is returned for the caller to log), as upstream keeps the old rules.
//! - A group that is unchanged by a reload keeps its alerts; a changed rule starts over.
//! - Evaluation times are aligned to multiples of the group's interval; a group whose
//!   evaluation took longer than its interval skips the missed slots (Prometheus counts them
//!   as missed iterations and does the same).
//! - Groups are evaluated one after the other on a blocking thread: PromQL is CPU work.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use sightline_logstore::logql::{QueryLimits, StreamReader};
use sightline_tsdb::promql::Engine;
use sightline_tsdb::storage::{Appendable, Querier};
use tokio_util::sync::CancellationToken;

use super::builtin::{BUILTIN_RULES_FILE, BuiltinRules};
use super::group::{EvalContext, Group};
use crate::rulefmt::{NameValidation, QueryLanguage, RuleFile, RuleFileError};

/// How often the scheduler looks for due groups.
const TICK: Duration = Duration::from_millis(250);

/// The settings of the rule manager that come from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    /// The rule files, globs already expanded.
    pub files: Vec<PathBuf>,
    /// The LogQL rule files (Loki ruler style), globs already expanded.
    pub log_files: Vec<PathBuf>,
    /// Rule groups from elsewhere, already validated (PrometheusRule objects).
    pub objects: Vec<RuleFile>,
    /// `global.evaluation_interval`.
    pub evaluation_interval: Duration,
    /// `global.external_labels`.
    pub external_labels: BTreeMap<String, String>,
    /// The server's external URL, for `$externalURL`.
    pub external_url: String,
    /// Which of Sightline's built-in rules run next to the files.
    pub builtin: BuiltinRules,
    /// The limits LogQL rules query under (`limits.logs`, `query`), as the query API's.
    pub log_query_limits: QueryLimits,
}

/// A rule file that did not load.
#[derive(Debug, thiserror::Error)]
#[error("cannot load rule file {}: {source}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: RuleFileError,
}

struct Scheduled {
    group: Arc<Mutex<Group>>,
    /// When the group is due next (ms).
    next_ms: i64,
}

/// Where alerts go after each evaluation: the notifier's receive.
pub type AlertSink = Arc<dyn Fn(Vec<crate::notifier::alert::PostedAlert>) + Send + Sync>;

/// Evaluates rule groups over the metric store.
pub struct RuleManager {
    engine: Engine,
    querier: Arc<dyn Querier>,
    appendable: Arc<dyn Appendable>,
    settings: RwLock<RuleSettings>,
    groups: RwLock<Vec<Arc<Mutex<Group>>>>,
    sink: RwLock<Option<AlertSink>>,
    logs: RwLock<Option<LogReader>>,
}

/// The log store, for LogQL rules.
pub type LogReader = Arc<dyn StreamReader + Send + Sync>;

impl RuleManager {
    /// A manager with no groups, reading from `querier` and writing to `appendable`.
    pub fn new(
        engine: Engine,
        querier: Arc<dyn Querier>,
        appendable: Arc<dyn Appendable>,
    ) -> RuleManager {
        RuleManager {
            engine,
            querier,
            appendable,
            settings: RwLock::new(RuleSettings {
                files: Vec::new(),
                log_files: Vec::new(),
                objects: Vec::new(),
                evaluation_interval: Duration::from_secs(60),
                external_labels: BTreeMap::new(),
                external_url: String::new(),
                builtin: BuiltinRules::default(),
                log_query_limits: QueryLimits::default(),
            }),
            groups: RwLock::new(Vec::new()),
            sink: RwLock::new(None),
            logs: RwLock::new(None),
        }
    }

    /// Sends the firing and resolved alerts of every evaluation to `sink`.
    pub fn set_alert_sink(&self, sink: AlertSink) {
        *write(&self.sink) = Some(sink);
    }

    /// Lets LogQL rules read `logs`; until then they fail with an error in their health.
    pub fn set_log_store(&self, logs: LogReader) {
        *write(&self.logs) = Some(logs);
    }

    /// Loads the rule files of `settings`, replacing the groups; unchanged groups keep their
    /// state. If any file fails, nothing changes and every failure is returned.
    pub fn update(&self, settings: RuleSettings) -> Result<(), Vec<LoadError>> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let promql = settings
            .files
            .iter()
            .map(|path| (path, QueryLanguage::PromQl));
        let logql = settings
            .log_files
            .iter()
            .map(|path| (path, QueryLanguage::LogQl));
        for (path, language) in promql.chain(logql) {
            match RuleFile::load_as(path, NameValidation::default(), language) {
                Ok(file) => files.push(file),
                Err(source) => errors.push(LoadError {
                    path: path.clone(),
                    source,
                }),
            }
        }
        files.extend(settings.objects.iter().cloned());
        match settings.builtin.rule_files(&files) {
            Ok(builtin) => files.extend(builtin),
            Err(source) => errors.push(LoadError {
                path: PathBuf::from(BUILTIN_RULES_FILE),
                source,
            }),
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let interval_ms = settings.evaluation_interval.as_millis() as i64;
        let mut old: HashMap<(String, String), Group> = self
            .groups()
            .into_iter()
            .map(|group| ((group.file.clone(), group.spec.name.clone()), group))
            .collect();
        let mut groups = Vec::new();
        for file in files {
            let name = file.path.display().to_string();
            for spec in file.groups {
                let key = (name.clone(), spec.name.clone());
                let mut group = Group::new(name.clone(), spec, interval_ms);
                if let Some(previous) = old.remove(&key) {
                    group.inherit(previous);
                }
                groups.push(Arc::new(Mutex::new(group)));
            }
        }
        *write(&self.groups) = groups;
        *write(&self.settings) = settings;
        Ok(())
    }

    /// A copy of every group with its rules' state, for the APIs.
    pub fn groups(&self) -> Vec<Group> {
        read(&self.groups)
            .iter()
            .map(|group| lock(group).clone())
            .collect()
    }

    /// Evaluates every group once at `ts` (ms): what the scheduler does when they are due,
    /// callable directly by tests and benchmarks with a controlled clock.
    pub fn evaluate_all(&self, ts: i64) {
        let groups: Vec<_> = read(&self.groups).clone();
        for group in groups {
            self.evaluate(&group, ts);
        }
    }

    fn evaluate(&self, group: &Mutex<Group>, ts: i64) {
        let settings = read(&self.settings).clone();
        let logs = read(&self.logs).clone();
        let ctx = EvalContext {
            engine: &self.engine,
            querier: self.querier.clone(),
            logs: logs.as_deref().map(|logs| logs as &dyn StreamReader),
            appendable: self.appendable.as_ref(),
            external_labels: &settings.external_labels,
            external_url: &settings.external_url,
            log_query_limits: &settings.log_query_limits,
        };
        let mut group = lock(group);
        if let Err(error) = group.evaluate(&ctx, ts) {
            tracing::error!(group = %group.spec.name, file = %group.file, %error, "rule group evaluation failed");
        }
        let Some(sink) = read(&self.sink).clone() else {
            return;
        };
        let alerts: Vec<_> = group
            .rules
            .iter()
            .filter_map(|rule| match rule {
                super::group::RuleState::Alerting(state) => Some(state.to_notify(
                    ts,
                    group.interval_ms,
                    &settings.external_labels,
                    &settings.external_url,
                )),
                super::group::RuleState::Recording { .. } => None,
            })
            .flatten()
            .collect();
        drop(group);
        if !alerts.is_empty() {
            sink(alerts);
        }
    }

    /// Evaluates the groups at their intervals until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut schedule: Vec<Scheduled> = Vec::new();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            self.refresh_schedule(&mut schedule, now);
            let due: Vec<Arc<Mutex<Group>>> = schedule
                .iter_mut()
                .filter(|entry| entry.next_ms <= now)
                .map(|entry| {
                    let interval = lock(&entry.group).interval_ms;
                    entry.next_ms = next_slot(now, interval);
                    entry.group.clone()
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            let manager = self.clone();
            let evaluated = tokio::task::spawn_blocking(move || {
                for group in due {
                    manager.evaluate(&group, now);
                }
            })
            .await;
            if let Err(error) = evaluated {
                tracing::error!(%error, "rule evaluation task failed");
            }
        }
    }

    /// Adds newly loaded groups to the schedule (due at their next slot) and drops removed
    /// ones.
    fn refresh_schedule(&self, schedule: &mut Vec<Scheduled>, now: i64) {
        let groups = read(&self.groups).clone();
        let mut next = Vec::with_capacity(groups.len());
        for group in groups {
            let next_ms = schedule
                .iter()
                .find(|entry| Arc::ptr_eq(&entry.group, &group))
                .map_or_else(|| next_slot(now, lock(&group).interval_ms), |e| e.next_ms);
            next.push(Scheduled { group, next_ms });
        }
        *schedule = next;
    }
}

/// The first multiple of `interval_ms` after `now`.
fn next_slot(now: i64, interval_ms: i64) -> i64 {
    (now / interval_ms + 1) * interval_ms
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// A panic while a lock was held leaves data that is still consistent for our use (whole
// values are replaced under the lock), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

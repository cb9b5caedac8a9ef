//! The dispatcher: alerts in, routed into aggregation groups, and out as notifications when a
//! group is due — a state machine driven by the caller's clock.
//!
//! Follows Alertmanager's `dispatch` and `notify` packages:
//! - Every alert received is merged into the alert store ([`super::alert`]) and added to the
//!   group of each route node it matches ([`super::route`]): one group per node and group
//!   labels.
//! - A new group is first flushed `group_wait` after it was created — at once when the alert
//!   that created it started more than `group_wait` ago — then every `group_interval`.
//! - At a flush, alerts that an active silence or an inhibit rule mutes are left out; a node
//!   inside one of its `mute_time_intervals` (or outside all its `active_time_intervals`)
//!   sends nothing. What is left goes to every integration of the node's receiver that the
//!   notification log says needs it ([`super::nflog`]); resolved alerts go only to
//!   integrations with `send_resolved`.
//! - After a flush, resolved alerts leave the group; an empty group is deleted, and an alert
//!   in no group leaves the store.
//! - A new config rebuilds the groups from the stored alerts (each waits `group_wait`
//!   again); the notification log keeps a rebuilt group from repeating itself.
//!
//! Every method takes `now` (Unix ms): the service passes the wall clock, tests a clock of
//! their own. The dispatcher never sends: [`Dispatcher::flush`] returns the notifications, and
//! the caller reports each one sent with [`Dispatcher::record`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sightline_core::labels::Labels;

use super::alert::{Alert, PostedAlert};
use super::config::AlertmanagerConfig;
use super::nflog::{Entry, EntryKey, NotificationLog};
use super::receivers::Receiver;
use super::route::{GroupKey, RouteOpts};
use super::silence::Silences;

/// The kinds of integration the notifier sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IntegrationKind {
    /// `pushover_configs`.
    Pushover,
    /// `telegram_configs`.
    Telegram,
    /// `webhook_configs`.
    Webhook,
    /// `email_configs`.
    Email,
}

impl IntegrationKind {
    /// Every kind, in the order of the config's lists.
    pub const ALL: [IntegrationKind; 4] = [
        IntegrationKind::Pushover,
        IntegrationKind::Telegram,
        IntegrationKind::Webhook,
        IntegrationKind::Email,
    ];

    /// Alertmanager's name of the integration.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Pushover => "pushover",
            IntegrationKind::Telegram => "telegram",
            IntegrationKind::Webhook => "webhook",
            IntegrationKind::Email => "email",
        }
    }
}

/// One integration of a receiver: its kind and its index in that kind's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Integration {
    /// The kind.
    pub kind: IntegrationKind,
    /// The index in the receiver's `<kind>_configs`.
    pub index: usize,
}

/// `pushover[0]`, as Alertmanager names integrations in logs and metrics.
impl fmt::Display for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.kind.as_str(), self.index)
    }
}

/// The integrations of `receiver` that are sent to, with their `send_resolved`, in a fixed
/// order.
pub fn integrations(receiver: &Receiver) -> Vec<(Integration, bool)> {
    let of = |kind, flags: Vec<bool>| {
        flags
            .into_iter()
            .enumerate()
            .map(move |(index, send_resolved)| (Integration { kind, index }, send_resolved))
    };
    of(
        IntegrationKind::Pushover,
        receiver
            .pushover_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    )
    .chain(of(
        IntegrationKind::Telegram,
        receiver
            .telegram_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    ))
    .chain(of(
        IntegrationKind::Webhook,
        receiver
            .webhook_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    ))
    .chain(of(
        IntegrationKind::Email,
        receiver
            .email_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    ))
    .collect()
}

/// One message to one integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The receiver's name.
    pub receiver: String,
    /// Which of its integrations.
    pub integration: Integration,
    /// The group.
    pub group_key: GroupKey,
    /// The alerts, firing ones first; resolved ones only with `send_resolved`.
    pub alerts: Vec<Alert>,
    /// When the flush happened (ms): alerts ended by then are resolved.
    pub at: i64,
    /// Until when sending may be retried (ms): the next flush of the group.
    pub deadline: i64,
    /// What to record in the notification log once sent.
    log: (EntryKey, Entry),
}

impl Notification {
    /// `firing` when any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|alert| !alert.resolved_at(self.at)) {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// Why an alert is not notified at some instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Muting {
    /// Ids of the active silences that match it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the firing alerts that inhibit it.
    pub inhibited_by: Vec<u64>,
}

impl Muting {
    /// Whether anything mutes the alert.
    pub fn is_muted(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// An aggregation group, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    /// Its key.
    pub key: GroupKey,
    /// The receiver of its route node.
    pub receiver: String,
    /// Its alerts.
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupId {
    route_id: String,
    labels: Labels,
}

#[derive(Debug)]
struct Group {
    key: GroupKey,
    opts: RouteOpts,
    alerts: BTreeSet<u64>,
    next_flush: i64,
    flushed: bool,
}

/// Alerts, groups, silences and the notification log.
pub struct Dispatcher {
    config: Arc<AlertmanagerConfig>,
    alerts: HashMap<u64, Alert>,
    groups: BTreeMap<GroupId, Group>,
    nflog: NotificationLog,
    silences: Silences,
}

fn millis(duration: sightline_core::duration::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Dispatcher {
    /// A dispatcher with no alerts.
    pub fn new(
        config: Arc<AlertmanagerConfig>,
        nflog: NotificationLog,
        silences: Silences,
    ) -> Dispatcher {
        Dispatcher {
            config,
            alerts: HashMap::new(),
            groups: BTreeMap::new(),
            nflog,
            silences,
        }
    }

    /// The config in force.
    pub fn config(&self) -> &Arc<AlertmanagerConfig> {
        &self.config
    }

    /// Replaces the config and rebuilds the groups from the stored alerts.
    pub fn set_config(&mut self, config: Arc<AlertmanagerConfig>, now: i64) {
        self.config = config;
        self.groups.clear();
        let alerts: Vec<Alert> = self.alerts.values().cloned().collect();
        for alert in alerts {
            self.group(&alert, now);
        }
    }

    /// Takes in alerts posted at `now`.
    pub fn receive(&mut self, posted: Vec<PostedAlert>, now: i64) {
        let resolve_timeout = millis(self.config.global.resolve_timeout);
        for alert in posted {
            let alert = alert.receive(now, resolve_timeout);
            let fingerprint = alert.fingerprint();
            let merged = match self.alerts.get_mut(&fingerprint) {
                Some(stored) => {
                    stored.merge(alert);
                    stored.clone()
                }
                None => {
                    self.alerts.insert(fingerprint, alert.clone());
                    alert
                }
            };
            self.group(&merged, now);
        }
    }

    fn group(&mut self, alert: &Alert, now: i64) {
        let fingerprint = alert.fingerprint();
        for node in self.config.route.matches(&alert.labels) {
            let opts = node.opts();
            let wait = millis(opts.group_wait);
            let id = GroupId {
                route_id: node.id().to_owned(),
                labels: node.group_labels(&alert.labels),
            };
            let group = self.groups.entry(id).or_insert_with(|| Group {
                key: node.group_key(&alert.labels),
                opts: opts.clone(),
                alerts: BTreeSet::new(),
                next_flush: now.saturating_add(wait),
                flushed: false,
            });
            group.alerts.insert(fingerprint);
            if !group.flushed && alert.starts_at.saturating_add(wait) < now {
                group.next_flush = group.next_flush.min(now);
            }
        }
    }

    /// The earliest time a group is due, if there is a group.
    pub fn next_flush(&self) -> Option<i64> {
        self.groups.values().map(|group| group.next_flush).min()
    }

    /// Flushes every group due at `now`: the notifications to send.
    pub fn flush(&mut self, now: i64) -> Vec<Notification> {
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, group)| group.next_flush <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut notifications = Vec::new();
        for id in due {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            let interval = millis(group.opts.group_interval);
            group.next_flush = now.saturating_add(interval);
            group.flushed = true;
            let (key, opts) = (group.key.clone(), group.opts.clone());
            let mut alerts: Vec<Alert> = group
                .alerts
                .iter()
                .filter_map(|fingerprint| self.alerts.get(fingerprint).cloned())
                .collect();
            alerts.retain(|alert| !self.muting(alert, now).is_muted());
            let at = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
            if self.config.route_active_at(&opts, &at) {
                self.notify(&key, &opts, alerts, now, &mut notifications);
            }
            self.drop_resolved(&id, now);
        }
        notifications
    }

    fn notify(
        &mut self,
        key: &GroupKey,
        opts: &RouteOpts,
        mut alerts: Vec<Alert>,
        now: i64,
        out: &mut Vec<Notification>,
    ) {
        let config = self.config.clone();
        let Some(receiver) = config.receiver(&opts.receiver) else {
            return;
        };
        alerts.sort_by_key(|alert| (alert.resolved_at(now), alert.labels.clone()));
        let firing: BTreeSet<u64> = alerts
            .iter()
            .filter(|alert| !alert.resolved_at(now))
            .map(Alert::fingerprint)
            .collect();
        let resolved: BTreeSet<u64> = alerts
            .iter()
            .filter(|alert| alert.resolved_at(now))
            .map(Alert::fingerprint)
            .collect();
        let repeat = millis(opts.repeat_interval);
        for (integration, send_resolved) in integrations(receiver) {
            let entry_key = EntryKey {
                group_key: key.to_string(),
                receiver: receiver.name.clone(),
                integration: integration.to_string(),
            };
            if !self
                .nflog
                .needs_update(&entry_key, &firing, &resolved, send_resolved, repeat, now)
            {
                continue;
            }
            let entry = Entry {
                firing: firing.clone(),
                resolved: resolved.clone(),
                at: now,
            };
            let to_send: Vec<Alert> = alerts
                .iter()
                .filter(|alert| send_resolved || !alert.resolved_at(now))
                .cloned()
                .collect();
            if to_send.is_empty() {
                self.record_entry(entry_key, entry);
                continue;
            }
            out.push(Notification {
                receiver: receiver.name.clone(),
                integration,
                group_key: key.clone(),
                alerts: to_send,
                at: now,
                deadline: now.saturating_add(millis(opts.group_interval)),
                log: (entry_key, entry),
            });
        }
    }

    fn drop_resolved(&mut self, id: &GroupId, now: i64) {
        let Some(group) = self.groups.get_mut(id) else {
            return;
        };
        let alerts = &self.alerts;
        group.alerts.retain(|fingerprint| {
            alerts
                .get(fingerprint)
                .is_some_and(|alert| !alert.resolved_at(now))
        });
        if group.alerts.is_empty() {
            self.groups.remove(id);
        }
        let grouped: BTreeSet<u64> = self
            .groups
            .values()
            .flat_map(|group| group.alerts.iter().copied())
            .collect();
        self.alerts
            .retain(|fingerprint, alert| grouped.contains(fingerprint) || !alert.resolved_at(now));
    }

    /// Records that `notification` was sent.
    pub fn record(&mut self, notification: &Notification) {
        let (key, entry) = notification.log.clone();
        self.record_entry(key, entry);
    }

    fn record_entry(&mut self, key: EntryKey, entry: Entry) {
        let at = entry.at;
        if let Err(error) = self.nflog.record(key, entry) {
            tracing::error!("cannot write the notification log: {error}");
        }
        if let Err(error) = self.nflog.expire(at) {
            tracing::error!("cannot write the notification log: {error}");
        }
    }

    /// What mutes `alert` at `now`: silences, and inhibition by firing alerts.
    pub fn muting(&self, alert: &Alert, now: i64) -> Muting {
        let silenced_by = self.silences.muting(&alert.labels, now);
        let mut inhibited_by: Vec<u64> = self
            .alerts
            .iter()
            .filter(|(_, source)| !source.resolved_at(now))
            .filter(|(_, source)| {
                self.config
                    .inhibit_rules
                    .iter()
                    .any(|rule| rule.inhibits(&source.labels, &alert.labels))
            })
            .map(|(fingerprint, _)| *fingerprint)
            .collect();
        inhibited_by.sort_unstable();
        Muting {
            silenced_by,
            inhibited_by,
        }
    }

    /// Every stored alert.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut all: Vec<Alert> = self.alerts.values().cloned().collect();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all
    }

    /// The receivers of the route nodes `alert` goes to.
    pub fn receivers_of(&self, alert: &Alert) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .route
            .matches(&alert.labels)
            .into_iter()
            .map(|node| node.receiver().to_owned())
            .collect();
        names.dedup();
        names
    }

    /// Every aggregation group with its alerts.
    pub fn groups(&self) -> Vec<GroupView> {
        self.groups
            .values()
            .map(|group| GroupView {
                key: group.key.clone(),
                receiver: group.opts.receiver.clone(),
                alerts: group
                    .alerts
                    .iter()
                    .filter_map(|fingerprint| self.alerts.get(fingerprint).cloned())
                    .collect(),
            })
            .collect()
    }

    /// The silences.
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// The silences, to change.
    pub fn silences_mut(&mut self) -> &mut Silences {
        &mut self.silences
    }
}

//! The notifier's counters, under Alertmanager's names so that its mixin's rules and
//! dashboards read them unchanged: every attempt to send is counted in
//! `alertmanager_notifications_total{integration}`, every failed one also in
//! `alertmanager_notifications_failed_total{integration}` (a retried send counts each try,
//! as in Alertmanager). The caller owns the registry (see [`NotifierMetrics::register`]).

use prometheus::{IntCounterVec, Opts, Registry};

use super::dispatch::IntegrationKind;

/// Attempts and failures by integration kind.
#[derive(Clone, Debug)]
pub struct NotifierMetrics {
    attempts: IntCounterVec,
    failed: IntCounterVec,
}

impl NotifierMetrics {
    /// Fresh, unregistered counters, with every integration kind at zero so that a rate
    /// over them exists before the first failure.
    pub fn new() -> prometheus::Result<NotifierMetrics> {
        let attempts = IntCounterVec::new(
            Opts::new(
                "alertmanager_notifications_total",
                "The total number of attempted notifications.",
            ),
            &["integration"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "alertmanager_notifications_failed_total",
                "The total number of failed notifications.",
            ),
            &["integration"],
        )?;
        for kind in IntegrationKind::ALL {
            attempts.with_label_values(&[kind.as_str()]);
            failed.with_label_values(&[kind.as_str()]);
        }
        Ok(NotifierMetrics { attempts, failed })
    }

    /// Registers both counters with `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.attempts.clone()))?;
        registry.register(Box::new(self.failed.clone()))
    }

    /// Counts one attempt through `kind`, and whether it failed.
    pub(crate) fn attempted(&self, kind: IntegrationKind, failed: bool) {
        self.attempts.with_label_values(&[kind.as_str()]).inc();
        if failed {
            self.failed.with_label_values(&[kind.as_str()]).inc();
        }
    }
}

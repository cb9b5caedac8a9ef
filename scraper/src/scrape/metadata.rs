//! Per-target metric metadata (`# TYPE`, `# HELP`, `# UNIT`) from the last scrapes, for
//! `/api/v1/metadata` and `/api/v1/targets/metadata`.
//!
//! Follows Prometheus's scrape cache (scrape/scrape.go, `scrapeCache.setType/setHelp/setUnit`):
//! metadata is kept per metric family of each target; a family with only some of the three
//! lines has type `unknown` and empty help and unit; a family that stops appearing is
//! forgotten after [`FORGET_AFTER_SCRAPES`] scrapes, as Prometheus keeps it for ten.
//!
//! Cost: the recorder sees only metadata lines, never samples. Each line costs one hash
//! lookup by the family name; a string is allocated only when a family is new or its text
//! changed. Readers get a snapshot published at the end of a scrape, and only when something
//! changed, so a steady target costs one lookup per metadata line and no locking per line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::exposition::MetricType;

/// A family not seen for this many scrapes is forgotten.
pub const FORGET_AFTER_SCRAPES: u64 = 10;

/// The metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The declared type; `unknown` when no `# TYPE` line named it.
    pub metric_type: MetricType,
    /// The `# HELP` text, empty when absent.
    pub help: String,
    /// The `# UNIT` (OpenMetrics), empty when absent.
    pub unit: String,
}

/// A target's metadata by family name, as last published.
pub type MetadataMap = HashMap<String, Metadata>;

/// Where a scrape loop publishes its target's metadata and the API reads it; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SharedMetadata(Arc<Mutex<Arc<MetadataMap>>>);

impl SharedMetadata {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<MetadataMap> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, map: MetadataMap) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
    }
}

#[derive(Debug)]
struct Recorded {
    metadata: Metadata,
    seen_in: u64,
}

/// Collects one target's metadata lines during scrapes.
#[derive(Debug, Default)]
pub struct MetadataRecorder {
    families: HashMap<Box<str>, Recorded>,
    scrape: u64,
    changed: bool,
    shared: SharedMetadata,
}

impl MetadataRecorder {
    /// Where this recorder publishes.
    pub fn shared(&self) -> SharedMetadata {
        self.shared.clone()
    }

    /// Starts a scrape.
    pub fn begin_scrape(&mut self) {
        self.scrape += 1;
    }

    /// A `# TYPE` line.
    pub fn set_type(&mut self, family: &str, metric_type: MetricType) {
        self.update(family, |metadata| {
            let changed = metadata.metric_type != metric_type;
            metadata.metric_type = metric_type;
            changed
        });
    }

    /// A `# HELP` line.
    pub fn set_help(&mut self, family: &str, help: &str) {
        self.update(family, |metadata| replace(&mut metadata.help, help));
    }

    /// A `# UNIT` line.
    pub fn set_unit(&mut self, family: &str, unit: &str) {
        self.update(family, |metadata| replace(&mut metadata.unit, unit));
    }

    /// Ends a scrape: forgets families unseen for [`FORGET_AFTER_SCRAPES`] scrapes and
    /// publishes a snapshot if anything changed.
    pub fn end_scrape(&mut self) {
        let scrape = self.scrape;
        let before = self.families.len();
        self.families
            .retain(|_, recorded| scrape - recorded.seen_in <= FORGET_AFTER_SCRAPES);
        if self.families.len() != before {
            self.changed = true;
        }
        if self.changed {
            self.changed = false;
            self.shared.publish(
                self.families
                    .iter()
                    .map(|(name, recorded)| (name.to_string(), recorded.metadata.clone()))
                    .collect(),
            );
        }
    }

    /// Marks `family` seen and applies `change`, which says whether it changed anything.
    fn update(&mut self, family: &str, change: impl FnOnce(&mut Metadata) -> bool) {
        let scrape = self.scrape;
        if let Some(recorded) = self.families.get_mut(family) {
            recorded.seen_in = scrape;
            self.changed |= change(&mut recorded.metadata);
            return;
        }
        let mut metadata = Metadata {
            metric_type: MetricType::Unknown,
            help: String::new(),
            unit: String::new(),
        };
        change(&mut metadata);
        self.families.insert(
            family.into(),
            Recorded {
                metadata,
                seen_in: scrape,
            },
        );
        self.changed = true;
    }
}

/// Sets `text` to `new` if it differs, saying whether it did; allocates only then.
fn replace(text: &mut String, new: &str) -> bool {
    if text == new {
        return false;
    }
    new.clone_into(text);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_on_change_only_and_forgets_after_ten_scrapes() {
        let mut recorder = MetadataRecorder::default();
        let shared = recorder.shared();
        recorder.begin_scrape();
        recorder.set_help("http_requests_total", "Requests.");
        recorder.set_type("http_requests_total", MetricType::Counter);
        recorder.set_help("temperature", "Degrees.");
        recorder.end_scrape();
        let first = shared.snapshot();
        assert_eq!(
            first["http_requests_total"],
            Metadata {
                metric_type: MetricType::Counter,
                help: "Requests.".into(),
                unit: String::new()
            }
        );
        assert_eq!(first["temperature"].metric_type, MetricType::Unknown);

        recorder.begin_scrape();
        recorder.set_help("http_requests_total", "Requests.");
        recorder.set_type("http_requests_total", MetricType::Counter);
        recorder.end_scrape();
        assert!(
            Arc::ptr_eq(&first, &shared.snapshot()),
            "an unchanged scrape publishes nothing"
        );

        recorder.begin_scrape();
        recorder.set_help("http_requests_total", "All requests.");
        recorder.end_scrape();
        assert_eq!(
            shared.snapshot()["http_requests_total"].help,
            "All requests."
        );

        for _ in 0..FORGET_AFTER_SCRAPES {
            recorder.begin_scrape();
            recorder.set_type("http_requests_total", MetricType::Counter);
            recorder.end_scrape();
        }
        let last = shared.snapshot();
        assert!(last.contains_key("http_requests_total"));
        assert!(!last.contains_key("temperature"), "{last:?}");
    }
}

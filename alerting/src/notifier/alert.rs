//! Alerts as the notifier holds them: what Prometheus (or any Alertmanager client) posts,
//! merged by identity.
//!
//! Follows Alertmanager's `types.Alert` and `api/v2` receipt rules:
//! - An alert's identity is its label set; its [`fingerprint`] is the same 64-bit FNV-1a hash
//!   Alertmanager computes, so ids shown by the API match Alertmanager's.
//! - An alert posted without `startsAt` starts now; one without `endsAt` ends
//!   `resolve_timeout` after it was received, unless it is posted again before then.
//! - An alert posted again while the stored one has not ended (or overlaps it) is merged:
//!   the earliest start is kept, the newer end, annotations and generator URL win.
//!
//! Times are Unix milliseconds throughout, so that tests drive the clock.

use std::collections::BTreeMap;

use sightline_core::labels::Labels;

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The identity: `alertname` and the rest.
    pub labels: Labels,
    /// Descriptive text (summary, description, runbook_url).
    pub annotations: BTreeMap<String, String>,
    /// When the alert started (ms).
    pub starts_at: i64,
    /// When it ends or ended (ms).
    pub ends_at: i64,
    /// Whether `ends_at` was filled in from `resolve_timeout` rather than sent.
    pub timeout: bool,
    /// The link back to the alert's source.
    pub generator_url: String,
    /// When the notifier last received it (ms).
    pub updated_at: i64,
}

impl Alert {
    /// Whether the alert has ended at `now`.
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at <= now
    }

    /// [`fingerprint`] of the labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Merges `newer` (the same labels, received later) into this alert.
    pub fn merge(&mut self, newer: Alert) {
        let overlaps = newer.starts_at <= self.ends_at && self.starts_at <= newer.ends_at;
        if !overlaps {
            *self = newer;
            return;
        }
        let starts_at = self.starts_at.min(newer.starts_at);
        // An explicit end from an older post is not undone by a post that only timed out.
        let ends_at = if newer.timeout && !self.timeout && self.ends_at > newer.updated_at {
            self.ends_at
        } else {
            newer.ends_at
        };
        *self = Alert {
            starts_at,
            ends_at,
            ..newer
        };
    }
}

/// The alert as a client posts it, before the receipt rules fill in its times.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedAlert {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `startsAt` (ms), if sent.
    pub starts_at: Option<i64>,
    /// `endsAt` (ms), if sent.
    pub ends_at: Option<i64>,
    /// `generatorURL`.
    pub generator_url: String,
}

impl PostedAlert {
    /// The alert as stored when received at `now` with the config's `resolve_timeout` (ms).
    pub fn receive(self, now: i64, resolve_timeout_ms: i64) -> Alert {
        let starts_at = match (self.starts_at, self.ends_at) {
            (Some(start), _) => start,
            (None, Some(end)) if end <= now => end,
            (None, _) => now,
        };
        let (ends_at, timeout) = match self.ends_at {
            Some(end) => (end, false),
            None => (now.saturating_add(resolve_timeout_ms), true),
        };
        Alert {
            labels: self.labels,
            annotations: self.annotations,
            starts_at,
            ends_at,
            timeout,
            generator_url: self.generator_url,
            updated_at: now,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEPARATOR: u8 = 0xff;

/// Alertmanager's (Prometheus `model.LabelSet`'s) fingerprint: FNV-1a 64 over each label's
/// name, a 0xff byte, its value and a 0xff byte, in name order.
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut hash = FNV_OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    for label in labels.iter() {
        add(label.name.as_bytes());
        add(&[SEPARATOR]);
        add(label.value.as_bytes());
        add(&[SEPARATOR]);
    }
    hash
}

/// A fingerprint as Alertmanager prints it: 16 hex digits.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_alertmanagers() {
        // prometheus/common model/signature_test.go (TestLabelsToSignature): the value Go
        // computes for this label set, and for the empty one.
        let labels =
            Labels::from_pairs([("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(fingerprint(&labels), 5_799_056_148_416_392_346);
        assert_eq!(fingerprint(&Labels::new()), 14_695_981_039_346_656_037);
        assert_eq!(fingerprint_hex(0xab), "00000000000000ab");
    }

    #[test]
    fn receipt_fills_times_and_merge_keeps_the_first_start() {
        let posted = PostedAlert {
            labels: Labels::from_pairs([("alertname", "X")]),
            annotations: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            generator_url: String::new(),
        };
        let first = posted.clone().receive(1_000, 300_000);
        assert_eq!(
            (first.starts_at, first.ends_at, first.timeout),
            (1_000, 301_000, true)
        );
        let mut stored = first;
        stored.merge(posted.clone().receive(61_000, 300_000));
        assert_eq!((stored.starts_at, stored.ends_at), (1_000, 361_000));
        let resolved = PostedAlert {
            ends_at: Some(70_000),
            ..posted.clone()
        };
        stored.merge(resolved.receive(70_000, 300_000));
        assert!(stored.resolved_at(70_000));
        assert_eq!(stored.starts_at, 1_000);
        // Firing again after it ended starts anew.
        stored.merge(posted.receive(500_000, 300_000));
        assert_eq!(stored.starts_at, 500_000);
    }
}

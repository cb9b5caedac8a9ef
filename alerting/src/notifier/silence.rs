//! Silences: matchers that mute alerts between a start and an end, with who set them and why.
//!
//! Follows Alertmanager's `silence` package and API v2:
//! - A silence is pending before `startsAt`, active until `endsAt`, expired after; only an
//!   active one mutes. Every matcher must match (a missing label matches as empty).
//! - A silence needs at least one matcher, and one that does not match the empty string (a
//!   silence of everything is refused, as Alertmanager refuses it), `endsAt` after
//!   `startsAt`, an end in the future, a creator and a comment.
//! - Updating an active silence's matchers or start expires it and creates a new one (a new
//!   id), as Alertmanager does; changing only end, comment or creator keeps the id. A pending
//!   silence is updated in place. Expiring sets `endsAt` to now.
//! - Persistence: the whole set is a JSON file in the data directory written after every
//!   change (temporary file, rename); silences expired for longer than
//!   [`super::nflog::RETENTION_MS`] are dropped when it is written.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sightline_core::labels::Labels;
use sightline_core::matcher::{MatchOp, Matcher};

use super::nflog::{RETENTION_MS, read_stored, write_atomically};

/// One matcher of a silence, in API v2's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// `=`/`=~` (true, the default) or `!=`/`!~`.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn compile(&self) -> Result<Matcher, String> {
        let op = match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        if self.name.is_empty() {
            return Err("a matcher needs a label name".to_owned());
        }
        Matcher::new(op, &self.name, &self.value).map_err(|e| e.to_string())
    }
}

/// A silence as given (API v2 `postableSilence`), before it gets an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceSpec {
    /// The id of the silence to update, if any.
    pub id: Option<String>,
    /// What it mutes.
    pub matchers: Vec<SilenceMatcher>,
    /// From (ms).
    pub starts_at: i64,
    /// Until (ms).
    pub ends_at: i64,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Where a silence is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    /// Not started.
    Pending,
    /// Muting.
    Active,
    /// Over.
    Expired,
}

impl SilenceState {
    /// The API's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its id (UUID form).
    pub id: String,
    /// What it mutes.
    pub matchers: Vec<SilenceMatcher>,
    /// From (ms).
    pub starts_at: i64,
    /// Until (ms).
    pub ends_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// Its state at `now`.
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// The silence breaks a rule of the module doc.
    #[error("invalid silence: {0}")]
    Invalid(String),
    /// No silence has the id.
    #[error("silence {0} not found")]
    NotFound(String),
    /// The silence could not be written to the data directory.
    #[error("cannot store silences: {0}")]
    Store(String),
}

#[derive(Clone)]
struct Compiled {
    silence: Silence,
    matchers: Vec<Matcher>,
}

/// Every silence, by id.
pub struct Silences {
    silences: BTreeMap<String, Compiled>,
    file: Option<PathBuf>,
    ids: RandomState,
    next: u64,
}

impl Default for Silences {
    fn default() -> Silences {
        Silences {
            silences: BTreeMap::new(),
            file: None,
            ids: RandomState::new(),
            next: 0,
        }
    }
}

impl Silences {
    /// Silences kept in memory only.
    pub fn in_memory() -> Silences {
        Silences::default()
    }

    /// The silences stored in `file` (none when it does not exist yet).
    pub fn open(file: &Path) -> Silences {
        let mut silences = Silences {
            file: Some(file.to_owned()),
            ..Silences::default()
        };
        let stored: Vec<Silence> = read_stored(file);
        for silence in stored {
            match compile(&silence.matchers) {
                Ok(matchers) => {
                    silences
                        .silences
                        .insert(silence.id.clone(), Compiled { silence, matchers });
                }
                Err(error) => tracing::error!(id = %silence.id, "stored silence dropped: {error}"),
            }
        }
        silences
    }

    /// Every silence, newest end first.
    pub fn list(&self) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.silences.values().map(|c| c.silence.clone()).collect();
        all.sort_by(|a, b| b.ends_at.cmp(&a.ends_at).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// The silence with `id`.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.silences.get(id).map(|c| &c.silence)
    }

    /// The ids of the silences active at `now` that mute `labels`.
    pub fn muting(&self, labels: &Labels, now: i64) -> Vec<String> {
        self.silences
            .values()
            .filter(|c| c.silence.state(now) == SilenceState::Active)
            .filter(|c| super::matchers::all_match(&c.matchers, labels))
            .map(|c| c.silence.id.clone())
            .collect()
    }

    /// Creates or updates a silence at `now`; returns its id.
    pub fn set(&mut self, spec: SilenceSpec, now: i64) -> Result<String, SilenceError> {
        let matchers = check(&spec, now)?;
        let existing = match &spec.id {
            Some(id) => Some(
                self.silences
                    .get(id)
                    .cloned()
                    .ok_or_else(|| SilenceError::NotFound(id.clone()))?,
            ),
            None => None,
        };
        let in_place = existing.as_ref().is_some_and(|old| {
            let state = old.silence.state(now);
            state == SilenceState::Pending
                || (state == SilenceState::Active
                    && old.silence.matchers == spec.matchers
                    && old.silence.starts_at == spec.starts_at)
        });
        let id = match (&existing, in_place) {
            (Some(old), true) => old.silence.id.clone(),
            (Some(old), false) => {
                if old.silence.state(now) == SilenceState::Active {
                    self.end(&old.silence.id, now);
                }
                self.new_id(now)
            }
            (None, _) => self.new_id(now),
        };
        let silence = Silence {
            id: id.clone(),
            matchers: spec.matchers,
            // A start in the past is now, except for an active silence kept in place.
            starts_at: if in_place && spec.starts_at <= now {
                spec.starts_at
            } else {
                spec.starts_at.max(now)
            },
            ends_at: spec.ends_at,
            updated_at: now,
            created_by: spec.created_by,
            comment: spec.comment,
        };
        self.silences
            .insert(id.clone(), Compiled { silence, matchers });
        self.persist(now)?;
        Ok(id)
    }

    /// Adds a silence copied from another Alertmanager, keeping its id and times, unless
    /// one with its id is there already (`Ok(false)`). It must be valid, as a new one is.
    pub fn import(&mut self, silence: Silence, now: i64) -> Result<bool, SilenceError> {
        if self.silences.contains_key(&silence.id) {
            return Ok(false);
        }
        let spec = SilenceSpec {
            id: None,
            matchers: silence.matchers.clone(),
            starts_at: silence.starts_at,
            ends_at: silence.ends_at,
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
        };
        let matchers = check(&spec, now)?;
        self.silences
            .insert(silence.id.clone(), Compiled { silence, matchers });
        self.persist(now)?;
        Ok(true)
    }

    /// Expires the silence `id` at `now`.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<(), SilenceError> {
        let state = self
            .get(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?
            .state(now);
        if state == SilenceState::Expired {
            return Err(SilenceError::Invalid(format!(
                "silence {id} is already expired"
            )));
        }
        self.end(id, now);
        self.persist(now)
    }

    fn end(&mut self, id: &str, now: i64) {
        if let Some(compiled) = self.silences.get_mut(id) {
            compiled.silence.starts_at = compiled.silence.starts_at.min(now);
            compiled.silence.ends_at = now;
            compiled.silence.updated_at = now;
        }
    }

    fn new_id(&mut self, now: i64) -> String {
        self.next += 1;
        let high = self.ids.hash_one((now, self.next));
        let low = self.ids.hash_one((self.next, now, "silence"));
        let hex = format!("{high:016x}{low:016x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    fn persist(&mut self, now: i64) -> Result<(), SilenceError> {
        self.silences
            .retain(|_, c| c.silence.ends_at > now.saturating_sub(RETENTION_MS));
        let Some(file) = &self.file else {
            return Ok(());
        };
        let all: Vec<&Silence> = self.silences.values().map(|c| &c.silence).collect();
        let bytes = serde_json::to_vec(&all).map_err(|e| SilenceError::Store(e.to_string()))?;
        write_atomically(file, &bytes).map_err(|e| SilenceError::Store(e.to_string()))
    }
}

fn compile(matchers: &[SilenceMatcher]) -> Result<Vec<Matcher>, String> {
    matchers.iter().map(SilenceMatcher::compile).collect()
}

fn check(spec: &SilenceSpec, now: i64) -> Result<Vec<Matcher>, SilenceError> {
    let invalid = |message: &str| Err(SilenceError::Invalid(message.to_owned()));
    if spec.matchers.is_empty() {
        return invalid("at least one matcher is required");
    }
    let matchers = compile(&spec.matchers).map_err(SilenceError::Invalid)?;
    if matchers.iter().all(Matcher::matches_empty) {
        return invalid("at least one matcher must not match the empty string");
    }
    if spec.ends_at <= spec.starts_at {
        return invalid("endsAt must be after startsAt");
    }
    if spec.ends_at <= now {
        return invalid("endsAt is in the past");
    }
    if spec.created_by.trim().is_empty() {
        return invalid("createdBy is required");
    }
    if spec.comment.trim().is_empty() {
        return invalid("comment is required");
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str, starts_at: i64, ends_at: i64) -> SilenceSpec {
        SilenceSpec {
            id: None,
            matchers: vec![SilenceMatcher {
                name: "alertname".to_owned(),
                value: value.to_owned(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at,
            ends_at,
            created_by: "me".to_owned(),
            comment: "maintenance".to_owned(),
        }
    }

    #[test]
    fn silence_mutes_while_active_and_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("silences.json");
        let mut silences = Silences::open(&file);
        let id = silences.set(spec("Disk", 100, 200), 50).unwrap();
        let disk = Labels::from_pairs([("alertname", "Disk")]);
        assert!(silences.muting(&disk, 99).is_empty());
        assert_eq!(silences.muting(&disk, 100), std::slice::from_ref(&id));
        assert!(
            silences
                .muting(&Labels::from_pairs([("alertname", "Cpu")]), 150)
                .is_empty()
        );
        assert!(silences.muting(&disk, 200).is_empty());

        let reopened = Silences::open(&file);
        assert_eq!(reopened.get(&id), silences.get(&id));
        assert_eq!(reopened.muting(&disk, 150), std::slice::from_ref(&id));

        let mut reopened = reopened;
        reopened.expire(&id, 150).unwrap();
        assert!(reopened.muting(&disk, 151).is_empty());
        assert_eq!(
            Silences::open(&file).get(&id).unwrap().state(151),
            SilenceState::Expired
        );
    }

    #[test]
    fn bad_silences_are_refused() {
        let mut silences = Silences::in_memory();
        let everything = SilenceSpec {
            matchers: vec![SilenceMatcher {
                name: "alertname".to_owned(),
                value: ".*".to_owned(),
                is_regex: true,
                is_equal: true,
            }],
            ..spec("x", 0, 10)
        };
        assert!(matches!(
            silences.set(everything, 0),
            Err(SilenceError::Invalid(_))
        ));
        assert!(matches!(
            silences.set(spec("x", 10, 5), 0),
            Err(SilenceError::Invalid(_))
        ));
        assert!(matches!(
            silences.set(spec("x", 0, 5), 6),
            Err(SilenceError::Invalid(_))
        ));
        let unknown = SilenceSpec {
            id: Some("nope".to_owned()),
            ..spec("x", 0, 10)
        };
        assert!(matches!(
            silences.set(unknown, 0),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn changing_an_active_silences_matchers_makes_a_new_one() {
        let mut silences = Silences::in_memory();
        let id = silences.set(spec("A", 0, 100), 0).unwrap();
        let same = silences
            .set(
                SilenceSpec {
                    id: Some(id.clone()),
                    ..spec("A", 0, 200)
                },
                10,
            )
            .unwrap();
        assert_eq!(same, id);
        let other = silences
            .set(
                SilenceSpec {
                    id: Some(id.clone()),
                    ..spec("B", 0, 200)
                },
                20,
            )
            .unwrap();
        assert_ne!(other, id);
        assert_eq!(silences.get(&id).unwrap().state(20), SilenceState::Expired);
        assert_eq!(
            silences.get(&other).unwrap().state(20),
            SilenceState::Active
        );
    }
}

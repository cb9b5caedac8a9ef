//! `sightline import alertmanager --url URL`: copies an Alertmanager's active and pending
//! silences (API v2, `GET /api/v2/silences`) into `<data>/alertmanager/silences.json`,
//! keeping their ids, so that running the import again adds nothing twice and the
//! Alertmanager's links to a silence keep naming the same one. Expired silences stay
//! behind.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use sightline_alerting::notifier::silence::{Silence, SilenceMatcher, Silences};

/// `gettableSilence`, the fields imported.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatus,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    updated_at: Option<String>,
    created_by: String,
    comment: String,
}

#[derive(Deserialize)]
struct SilenceStatus {
    state: String,
}

/// Imports the silences of the Alertmanager at `url` into `data_dir`; returns the summary.
pub async fn import(
    client: &reqwest::Client,
    url: &url::Url,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let endpoint = url
        .join("api/v2/silences")
        .with_context(|| format!("{url} cannot be joined with api/v2/silences"))?;
    let silences: Vec<GettableSilence> = super::get_json(client.get(endpoint)).await?;
    let dir = data_dir.join("alertmanager");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut store = Silences::open(&dir.join("silences.json"));
    let now = super::unix_ms();
    let (mut added, mut present, mut expired) = (0, 0, 0);
    for silence in silences {
        if silence.status.state == "expired" {
            expired += 1;
            continue;
        }
        let id = silence.id.clone();
        let imported = Silence {
            id: silence.id,
            matchers: silence.matchers,
            starts_at: time_ms("startsAt", &silence.starts_at)?,
            ends_at: time_ms("endsAt", &silence.ends_at)?,
            updated_at: match &silence.updated_at {
                Some(text) => time_ms("updatedAt", text)?,
                None => now,
            },
            created_by: silence.created_by,
            comment: silence.comment,
        };
        if imported.ends_at <= now {
            // Ended since the Alertmanager answered.
            expired += 1;
            continue;
        }
        if store
            .import(imported, now)
            .with_context(|| format!("silence {id}"))?
        {
            added += 1;
        } else {
            present += 1;
        }
    }
    Ok(format!(
        "imported {added} silences from {url} ({present} were already there, {expired} expired ones left behind)"
    ))
}

/// An RFC 3339 time in Unix milliseconds.
fn time_ms(field: &str, text: &str) -> anyhow::Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .with_context(|| format!("{field} {text:?} is not an RFC 3339 time"))
}

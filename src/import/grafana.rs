//! `sightline import grafana`: takes Grafana dashboards into `<data>/dashboards`, as if each
//! were imported through `POST /api/dashboards/db`, from either
//!
//! - `--dir DIR`: exported dashboard JSON files under DIR. A file holds a dashboard, or
//!   Grafana's API form `{"dashboard": …, "meta": {"folderTitle": …}}`; otherwise a file's
//!   folder is its first subdirectory under DIR ("General" at the top), as Grafana's file
//!   provisioning with `foldersFromFilesStructure` has it; or
//! - `--url URL [--token T]`: every dashboard a Grafana's HTTP API lists (`/api/search`,
//!   then `/api/dashboards/uid/<uid>`), with its folder.
//!
//! A dashboard whose uid is already there is kept as it is (so the import can run again),
//! and so is one that Sightline provides itself (its built-ins). A file that is not a
//! dashboard is reported and skipped; the import then fails, after taking the others.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use sightline_ui::dashboards::{Dashboard, DashboardLibrary, DashboardSource, ImportError};

/// Where the dashboards come from.
pub enum Source {
    /// Exported JSON files under a directory.
    Dir(PathBuf),
    /// A Grafana's HTTP API, with an API token (service account token) if it needs one.
    Api {
        /// The Grafana, e.g. `http://grafana.monitoring`.
        url: url::Url,
        /// Sent as `Authorization: Bearer <token>`.
        token: Option<String>,
    },
}

/// One hit of `/api/search`.
#[derive(Deserialize)]
struct SearchHit {
    uid: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// What became of the dashboards.
#[derive(Default)]
struct Tally {
    added: usize,
    present: usize,
    provided: usize,
    failed: Vec<String>,
}

/// Imports the dashboards of `source` into `data_dir`; returns the summary.
pub async fn import(
    client: &reqwest::Client,
    source: Source,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let library = DashboardLibrary::new(data_dir.join("dashboards"));
    let mut taker = Taker {
        existing: library.list(true, &[], &[]),
        library,
        tally: Tally::default(),
    };
    let from = match source {
        Source::Dir(dir) => {
            for (file, folder) in dashboard_files(&dir)? {
                let read = std::fs::read_to_string(&file)
                    .map_err(|error| error.to_string())
                    .and_then(|text| {
                        serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())
                    });
                match read {
                    Ok(json) => taker.take(json, &folder, &file.display().to_string()),
                    Err(error) => taker
                        .tally
                        .failed
                        .push(format!("{}: {error}", file.display())),
                }
            }
            dir.display().to_string()
        }
        Source::Api { url, token } => {
            let authorized = |request: reqwest::RequestBuilder| match &token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let search = url.join("api/search?type=dash-db&limit=5000")?;
            let hits: Vec<SearchHit> = super::get_json(authorized(client.get(search))).await?;
            for hit in hits
                .iter()
                .filter(|hit| hit.kind.is_empty() || hit.kind == "dash-db")
            {
                let one = url.join(&format!("api/dashboards/uid/{}", hit.uid))?;
                let answer: Value = super::get_json(authorized(client.get(one))).await?;
                taker.take(answer, "General", &format!("uid {}", hit.uid));
            }
            url.to_string()
        }
    };
    let tally = taker.tally;
    let summary = format!(
        "imported {} dashboards from {from} ({} were already there, {} are Sightline's own)",
        tally.added, tally.present, tally.provided
    );
    if tally.failed.is_empty() {
        Ok(summary)
    } else {
        anyhow::bail!(
            "{summary}; {} could not be imported:\n  {}",
            tally.failed.len(),
            tally.failed.join("\n  ")
        )
    }
}

/// Imports dashboards into the library, knowing what it holds: listed once, then each
/// import added, rather than the import directory read again for every dashboard.
struct Taker {
    library: DashboardLibrary,
    existing: Vec<Dashboard>,
    tally: Tally,
}

impl Taker {
    /// Imports one dashboard (bare, or in the API's `{dashboard, meta}` form whose folder
    /// wins over `folder`), counting the outcome.
    fn take(&mut self, json: Value, folder: &str, origin: &str) {
        let (dashboard, folder) = match json.get("dashboard") {
            Some(dashboard) => {
                let folder = json
                    .pointer("/meta/folderTitle")
                    .and_then(Value::as_str)
                    .filter(|title| !title.is_empty())
                    .unwrap_or(folder)
                    .to_owned();
                (dashboard.clone(), folder)
            }
            None => (json, folder.to_owned()),
        };
        let body = json!({"dashboard": dashboard, "folderTitle": folder, "overwrite": false});
        match self.library.import(body, &self.existing) {
            Ok(uid) => {
                self.tally.added += 1;
                // Only the uid and the source matter to later imports' checks.
                self.existing.push(Dashboard {
                    uid,
                    title: String::new(),
                    folder,
                    tags: Vec::new(),
                    source: DashboardSource::Imported,
                    json: Value::Null,
                });
            }
            Err(ImportError::Exists(_)) => self.tally.present += 1,
            Err(ImportError::Provisioned(_)) => self.tally.provided += 1,
            Err(error) => self.tally.failed.push(format!("{origin}: {error}")),
        }
    }
}

/// Every `*.json` file under `dir` with its folder: the first subdirectory's name, or
/// "General" at the top. Sorted, so that imports happen in a stable order.
fn dashboard_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_owned(), None::<String>)];
    while let Some((current, folder)) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("cannot list {}", current.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", current.display()))?
                .path();
            if path.is_dir() {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                pending.push((path, folder.clone().or(name)));
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push((path, folder.clone().unwrap_or_else(|| "General".to_owned())));
            }
        }
    }
    found.sort();
    Ok(found)
}

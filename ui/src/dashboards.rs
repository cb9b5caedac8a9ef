//! The dashboard library: Grafana dashboard JSON from the config's `dashboards.paths`, from
//! Kubernetes ConfigMaps labelled `grafana_dashboard: "1"`, imported through the UI or
//! Grafana's `POST /api/dashboards/db` (kept as `<uid>.json` in `<data>/dashboards`), and
//! Sightline's own, built into the binary (`ui/dashboards/`, switched off with
//! `dashboards.builtin: false`).
//!
//! Decisions: the library is read on each request, so edits to files show without a
//! reload (a homelab has tens of dashboards, a few MB). A dashboard's id is its `uid`, else
//! its file name without `.json`; when two sources have the same uid the first wins, in the
//! order files, ConfigMaps, imports, built-ins: a file can replace a built-in dashboard by
//! using its uid. Built-ins are listed first, in the folder "Sightline". A file's folder is its subdirectory under a configured
//! directory ("General" at the top), a ConfigMap's is its `grafana_folder` annotation (as
//! Grafana's sidecar reads it) or its namespace, an import's is the folder it was saved with.
//! A file that is not a dashboard is skipped with a warning in the log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_json::Value;
pub use sightline_scraper::manager::ConfigMapDashboard;

/// Where a dashboard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardSource {
    /// A file under `dashboards.paths`.
    File,
    /// A ConfigMap on Kubernetes.
    ConfigMap,
    /// Imported through the UI or the API; the only kind that can be deleted.
    Imported,
    /// Built into Sightline.
    BuiltIn,
}

/// The folder of the built-in dashboards.
pub const BUILT_IN_FOLDER: &str = "Sightline";

/// Sightline's own dashboards, in the order they are listed (file stem, JSON).
const BUILT_IN: [(&str, &str); 5] = [
    (
        "homelab-overview",
        include_str!("../dashboards/homelab-overview.json"),
    ),
    ("node", include_str!("../dashboards/node.json")),
    (
        "kubernetes-workloads",
        include_str!("../dashboards/kubernetes-workloads.json"),
    ),
    (
        "logs-overview",
        include_str!("../dashboards/logs-overview.json"),
    ),
    ("self", include_str!("../dashboards/self.json")),
];

/// The built-in dashboards, parsed once; one that does not parse is left out with a warning
/// (the unit tests parse them all).
static BUILT_IN_DASHBOARDS: LazyLock<Vec<Dashboard>> = LazyLock::new(|| {
    let mut found = Vec::new();
    for (stem, text) in BUILT_IN {
        match serde_json::from_str::<Value>(text) {
            Ok(json) => push_dashboard(
                json,
                stem,
                BUILT_IN_FOLDER,
                DashboardSource::BuiltIn,
                &mut found,
            ),
            Err(error) => tracing::warn!(dashboard = stem, "built-in dashboard: {error}"),
        }
    }
    found
});

/// A dashboard in the library.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Its id in URLs.
    pub uid: String,
    /// Its title.
    pub title: String,
    /// Its folder's title.
    pub folder: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Where it came from.
    pub source: DashboardSource,
    /// The dashboard JSON.
    pub json: Value,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The body is not a dashboard.
    #[error("not a Grafana dashboard: {0}")]
    Invalid(String),
    /// A dashboard with this uid exists and `overwrite` was not set.
    #[error("a dashboard with uid {0:?} exists; set \"overwrite\": true to replace it")]
    Exists(String),
    /// The uid names a dashboard from a file or ConfigMap, which imports cannot replace.
    #[error("dashboard {0:?} is provisioned from a file or ConfigMap and cannot be replaced")]
    Provisioned(String),
    /// Imports are not kept because there is no data directory.
    #[error("imports are not enabled")]
    Disabled,
    /// Writing the file failed.
    #[error("cannot save the dashboard: {0}")]
    Io(#[from] std::io::Error),
}

/// The library; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct DashboardLibrary {
    import_dir: Option<PathBuf>,
}

impl DashboardLibrary {
    /// A library keeping imports in `import_dir` (created when the first one is saved).
    pub fn new(import_dir: PathBuf) -> DashboardLibrary {
        DashboardLibrary {
            import_dir: Some(import_dir),
        }
    }

    /// Every dashboard: the built-in ones first when `builtin`, then those from the `paths`
    /// (files and directories), `config_maps` and imports, sorted by folder and title.
    pub fn list(
        &self,
        builtin: bool,
        paths: &[PathBuf],
        config_maps: &[ConfigMapDashboard],
    ) -> Vec<Dashboard> {
        let mut found = Vec::new();
        for path in paths {
            if path.is_dir() {
                read_dir_tree(path, path, &mut found);
            } else {
                read_file(path, "General", DashboardSource::File, &mut found);
            }
        }
        for map in config_maps {
            match serde_json::from_str::<Value>(&map.text) {
                Ok(json) => push_dashboard(
                    json,
                    &map.origin,
                    &map.folder,
                    DashboardSource::ConfigMap,
                    &mut found,
                ),
                Err(error) => tracing::warn!(configmap = %map.origin, "not a dashboard: {error}"),
            }
        }
        if let Some(dir) = &self.import_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "json"))
            {
                read_file(file, "", DashboardSource::Imported, &mut found);
            }
        }
        let mut seen = BTreeSet::new();
        found.retain(|dashboard| seen.insert(dashboard.uid.clone()));
        found.sort_by(|a, b| {
            (a.folder.to_lowercase(), a.title.to_lowercase())
                .cmp(&(b.folder.to_lowercase(), b.title.to_lowercase()))
        });
        if builtin {
            let mut listed: Vec<Dashboard> = BUILT_IN_DASHBOARDS
                .iter()
                .filter(|dashboard| seen.insert(dashboard.uid.clone()))
                .cloned()
                .collect();
            listed.append(&mut found);
            found = listed;
        }
        found
    }

    /// Saves an imported dashboard (Grafana's `POST /api/dashboards/db` body: `dashboard`,
    /// `folderTitle`, `overwrite`) and returns its uid. A dashboard without a uid gets one
    /// from its title.
    pub fn import(&self, body: Value, existing: &[Dashboard]) -> Result<String, ImportError> {
        let dir = self.import_dir.as_ref().ok_or(ImportError::Disabled)?;
        let overwrite = body
            .get("overwrite")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let folder = body
            .get("folderTitle")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
            .unwrap_or("Imported")
            .to_owned();
        let mut dashboard = match body.get("dashboard") {
            Some(dashboard) => dashboard.clone(),
            None => body,
        };
        let object = dashboard
            .as_object_mut()
            .ok_or_else(|| ImportError::Invalid("the body is not a JSON object".into()))?;
        if !object.get("panels").is_some_and(Value::is_array)
            && !object.get("rows").is_some_and(Value::is_array)
        {
            return Err(ImportError::Invalid("it has no \"panels\"".into()));
        }
        let title = object
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ImportError::Invalid("it has no \"title\"".into()))?
            .to_owned();
        let uid = object
            .get("uid")
            .and_then(Value::as_str)
            .filter(|uid| valid_uid(uid))
            .map_or_else(|| slug(&title), str::to_owned);
        if let Some(current) = existing.iter().find(|d| d.uid == uid) {
            if current.source != DashboardSource::Imported {
                return Err(ImportError::Provisioned(uid));
            }
            if !overwrite {
                return Err(ImportError::Exists(uid));
            }
        }
        object.insert("uid".into(), Value::from(uid.clone()));
        object.insert("sightlineFolder".into(), Value::from(folder));
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{uid}.json"));
        let temporary = dir.join(format!(".{uid}.json.tmp"));
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(&dashboard).unwrap_or_default(),
        )?;
        std::fs::rename(&temporary, &path)?;
        Ok(uid)
    }

    /// Deletes an imported dashboard; `false` when there is none with `uid`.
    pub fn delete(&self, uid: &str) -> std::io::Result<bool> {
        let Some(dir) = &self.import_dir else {
            return Ok(false);
        };
        if !valid_uid(uid) {
            return Ok(false);
        }
        match std::fs::remove_file(dir.join(format!("{uid}.json"))) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Grafana's uid alphabet, and short enough for a file name.
fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 128
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !uid.starts_with('.')
}

/// `Node Exporter / Nodes` → `node-exporter-nodes`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "dashboard".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn read_dir_tree(root: &Path, dir: &Path, found: &mut Vec<Dashboard>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(path = %dir.display(), "cannot read the dashboards directory");
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let folder = dir
        .strip_prefix(root)
        .ok()
        .and_then(|relative| relative.to_str())
        .filter(|relative| !relative.is_empty())
        .unwrap_or("General")
        .to_owned();
    for path in paths {
        if path.is_dir() {
            read_dir_tree(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            read_file(&path, &folder, DashboardSource::File, found);
        }
    }
}

fn read_file(path: &Path, folder: &str, source: DashboardSource, found: &mut Vec<Dashboard>) {
    let parsed = std::fs::read(path)
        .map_err(|error| error.to_string())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()));
    match parsed {
        Ok(json) => {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("dashboard");
            let folder = match source {
                DashboardSource::Imported => json
                    .get("sightlineFolder")
                    .and_then(Value::as_str)
                    .unwrap_or("Imported")
                    .to_owned(),
                _ => folder.to_owned(),
            };
            push_dashboard(json, stem, &folder, source, found);
        }
        Err(error) => tracing::warn!(path = %path.display(), "not a dashboard: {error}"),
    }
}

fn push_dashboard(
    json: Value,
    fallback_uid: &str,
    folder: &str,
    source: DashboardSource,
    found: &mut Vec<Dashboard>,
) {
    let Some(object) = json.as_object() else {
        tracing::warn!(origin = fallback_uid, "not a dashboard: not a JSON object");
        return;
    };
    if !object.contains_key("panels") && !object.contains_key("rows") {
        tracing::warn!(origin = fallback_uid, "not a dashboard: no \"panels\"");
        return;
    }
    let uid = object
        .get("uid")
        .and_then(Value::as_str)
        .filter(|uid| valid_uid(uid))
        .map_or_else(|| slug(fallback_uid), str::to_owned);
    let title = object
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(fallback_uid)
        .to_owned();
    let tags = object
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    found.push(Dashboard {
        uid,
        title,
        folder: folder.to_owned(),
        tags,
        source,
        json,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn files_folders_imports_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        write(
            &files.join("nodes.json"),
            r#"{"uid":"nodes","title":"Nodes","tags":["node"],"panels":[]}"#,
        );
        write(
            &files.join("media/plex.json"),
            r#"{"title":"Plex","panels":[]}"#,
        );
        write(&files.join("broken.json"), "{not json");
        write(&files.join("notes.txt"), "skipped");
        let library = DashboardLibrary::new(dir.path().join("imports"));
        let maps = [ConfigMapDashboard {
            folder: "monitoring".into(),
            origin: "monitoring/dash:nodes.json".into(),
            text: r#"{"uid":"nodes","title":"Nodes again","panels":[]}"#.into(),
        }];
        let listed = library.list(false, std::slice::from_ref(&files), &maps);
        let summary: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|d| (d.folder.as_str(), d.uid.as_str(), d.title.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("General", "nodes", "Nodes"), ("media", "plex", "Plex")]
        );
        assert_eq!(listed[0].tags, ["node"]);

        let imported = library
            .import(serde_json::json!({"dashboard": {"title": "My Lab", "panels": []}, "folderTitle": "Mine"}), &listed)
            .unwrap();
        assert_eq!(imported, "my-lab");
        let listed = library.list(false, std::slice::from_ref(&files), &[]);
        let mine = listed.iter().find(|d| d.uid == "my-lab").unwrap();
        assert_eq!(
            (mine.folder.as_str(), mine.source),
            ("Mine", DashboardSource::Imported)
        );

        let again = serde_json::json!({"dashboard": {"title": "My Lab", "panels": []}});
        assert!(matches!(
            library.import(again.clone(), &listed),
            Err(ImportError::Exists(_))
        ));
        let mut overwrite = again;
        overwrite["overwrite"] = true.into();
        assert_eq!(library.import(overwrite, &listed).unwrap(), "my-lab");
        let provisioned = serde_json::json!({"dashboard": {"uid": "nodes", "title": "X", "panels": []}, "overwrite": true});
        assert!(matches!(
            library.import(provisioned, &listed),
            Err(ImportError::Provisioned(_))
        ));
        assert!(matches!(
            library.import(serde_json::json!({"title": "no panels"}), &listed),
            Err(ImportError::Invalid(_))
        ));
        assert!(library.delete("my-lab").unwrap());
        assert!(!library.delete("my-lab").unwrap());
        assert!(!library.delete("../files/nodes").unwrap());
    }

    #[test]
    fn built_in_dashboards_come_first_and_yield_to_a_file_with_their_uid() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("node.json"),
            r#"{"uid":"sightline-node","title":"My node","panels":[]}"#,
        );
        write(
            &dir.path().join("plex.json"),
            r#"{"uid":"plex","title":"Plex","panels":[]}"#,
        );
        let library = DashboardLibrary::default();
        let listed = library.list(true, &[dir.path().to_owned()], &[]);
        let summary: Vec<(&str, &str, DashboardSource)> = listed
            .iter()
            .map(|d| (d.folder.as_str(), d.uid.as_str(), d.source))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "Sightline",
                    "sightline-homelab-overview",
                    DashboardSource::BuiltIn
                ),
                (
                    "Sightline",
                    "sightline-kubernetes-workloads",
                    DashboardSource::BuiltIn
                ),
                (
                    "Sightline",
                    "sightline-logs-overview",
                    DashboardSource::BuiltIn
                ),
                ("Sightline", "sightline-self", DashboardSource::BuiltIn),
                ("General", "sightline-node", DashboardSource::File),
                ("General", "plex", DashboardSource::File),
            ]
        );
        assert_eq!(listed[4].title, "My node", "the file replaces the built-in");
        assert_eq!(
            BUILT_IN_DASHBOARDS.len(),
            BUILT_IN.len(),
            "every one parses"
        );
        for dashboard in BUILT_IN_DASHBOARDS.iter() {
            assert!(
                dashboard.tags.iter().any(|t| t == "sightline"),
                "{}",
                dashboard.uid
            );
        }
        let off = library.list(false, &[dir.path().to_owned()], &[]);
        assert!(off.iter().all(|d| d.source == DashboardSource::File));
    }

    #[test]
    fn slugs_read_like_grafana_urls() {
        assert_eq!(slug("Node Exporter / Nodes"), "node-exporter-nodes");
        assert_eq!(slug("  !! "), "dashboard");
    }
}

//! Grafana dashboard JSON: imported as `POST /api/dashboards/db` does (validation, uid,
//! saving), then listed back as dashboards from files are read.
#![no_main]
// Harness set-up: a failure there is a broken harness, not a finding.
#![allow(clippy::expect_used)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sightline_ui::dashboards::DashboardLibrary;

fn import_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fuzz_target!(|body: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let dir = import_dir();
    let library = DashboardLibrary::new(dir.to_owned());
    if library.import(json, &[]).is_ok() {
        std::hint::black_box(library.list(false, &[dir.to_owned()], &[]));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
});

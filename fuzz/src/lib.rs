//! What the fuzz targets share: a push through decoding and validation, the in-memory series
//! the PromQL target queries, the log store the LogQL target queries.

// Harness set-up: a failure there is a broken harness, not a finding.
#![allow(clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sightline_logstore::push::{self, DecodeLimits, PushLimits};
use sightline_logstore::store::{LogStore, StoreOptions};

/// The in-memory `Querier` of the PromQL test binaries.
#[path = "../../tsdb/tests/support/mod.rs"]
pub mod mem_store;

/// A fixed "now" (2026-09-21), so that a crash reproduces whatever the day.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// Decodes `body` as the push endpoint does for these headers, validates it under the
/// default limits and formats the answer a rejection would get.
pub fn push_body(body: &[u8], content_type: &str, content_encoding: Option<&str>) {
    let limits = DecodeLimits {
        max_decompressed_bytes: 4 << 20,
    };
    let Ok(request) = push::decode(body, Some(content_type), content_encoding, &limits) else {
        return;
    };
    let validated = push::validate(request, &PushLimits::default(), now());
    std::hint::black_box(validated.error().map(|error| error.to_string()));
}

/// A log store in a temporary directory holding a few streams of JSON, logfmt and plain
/// lines over the minute before [`now`]; opened once per fuzzing process.
pub fn log_store() -> &'static LogStore {
    static STORE: OnceLock<LogStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("a temporary directory")));
        let store = LogStore::open(dir.path(), StoreOptions::default()).expect("the store opens");
        let now_ns = now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        let lines = [
            r#"{"level":"error","msg":"disk full","bytes":"12KB","took":"1.5s","nested":{"a":[1,2]}}"#,
            r#"level=info msg="request served" status=200 duration=12ms path=/api"#,
            "GET /index.html 404 0.003 \x1b[31mred\x1b[0m ünïcode",
        ];
        let mut values = Vec::new();
        for i in 0..60u128 {
            let line = lines[(i % 3) as usize];
            values.push(serde_json::json!([
                (now_ns - 60_000_000_000 + i * 1_000_000_000).to_string(),
                line,
                {"trace_id": format!("{i:x}")}
            ]));
        }
        let body = serde_json::json!({"streams": [
            {"stream": {"app": "api", "namespace": "prod"}, "values": values},
            {"stream": {"app": "db", "namespace": "dev", "level": "warn"}, "values": values},
        ]});
        let request = push::decode(
            body.to_string().as_bytes(),
            Some("application/json"),
            None,
            &DecodeLimits::default(),
        )
        .expect("the seed push decodes");
        let validated = push::validate(request, &PushLimits::default(), now());
        store.push(&validated.streams).expect("the seed push is stored");
        store
    })
}

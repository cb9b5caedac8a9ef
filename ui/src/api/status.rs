//! The status endpoints about the process itself: `/api/v1/status/config`,
//! `/api/v1/status/flags` and `/api/v1/status/runtimeinfo`
//! (https://prometheus.io/docs/prometheus/latest/querying/api/#status).
//!
//! Decisions: the config is the running one after defaults and `global` inheritance (what
//! Prometheus shows too), written as YAML without unset (`null`) keys; every credential —
//! `password`, `credentials`, `bearer_token` and the web users' password hashes — is shown as
//! `<secret>` as Prometheus's `config.Secret` does. Flags are Sightline's own command-line
//! flags with their effective values (there are no Prometheus flags to mirror). The runtime
//! information keeps Prometheus's keys; the Go-only ones say what the Rust process has instead
//! (`goroutineCount`: live tokio tasks, `GOMAXPROCS`: runtime worker threads) or stay empty.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use sightline_core::config::Config;
use yaml_serde::Value;

use super::{ApiError, success};
use crate::server::AppState;

/// Keys whose values are credentials, shown as `<secret>`.
const SECRET_KEYS: [&str; 4] = ["password", "credentials", "bearer_token", "token"];

/// Mappings whose every value is a credential (user → password hash).
const SECRET_MAPS: [&str; 1] = ["basic_auth_users"];

/// What Prometheus writes in place of a secret.
const SECRET: &str = "<secret>";

/// `GET /api/v1/status/config`
pub(crate) async fn config(State(state): State<AppState>) -> Result<Response, ApiError> {
    let yaml = config_yaml(&state.config.current())?;
    Ok(success(serde_json::json!({ "yaml": yaml })))
}

/// The config as YAML with its secrets hidden.
pub(crate) fn config_yaml(config: &Config) -> Result<String, ApiError> {
    let mut value = yaml_serde::to_value(config)
        .map_err(|error| ApiError::internal(format!("cannot write the config: {error}")))?;
    redact(&mut value);
    yaml_serde::to_string(&value)
        .map_err(|error| ApiError::internal(format!("cannot write the config: {error}")))
}

/// Drops `null` entries and hides secrets, recursively.
fn redact(value: &mut Value) {
    match value {
        Value::Mapping(mapping) => {
            mapping.retain(|_, entry| !entry.is_null());
            for (key, entry) in mapping.iter_mut() {
                let key = key.as_str().unwrap_or("");
                if SECRET_KEYS.contains(&key) {
                    *entry = Value::String(SECRET.into());
                } else if SECRET_MAPS.contains(&key)
                    && let Value::Mapping(secrets) = entry
                {
                    for (_, secret) in secrets.iter_mut() {
                        *secret = Value::String(SECRET.into());
                    }
                } else {
                    redact(entry);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(redact),
        Value::Tagged(tagged) => redact(&mut tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// `GET /api/v1/status/flags`
pub(crate) async fn flags(State(state): State<AppState>) -> Response {
    success(&*state.flags)
}

/// `GET /api/v1/status/runtimeinfo`
pub(crate) async fn runtime_info(State(state): State<AppState>) -> Response {
    let config = state.config.current();
    let retention = &config.storage.metrics;
    let mut storage_retention = Vec::new();
    if !retention.retention.is_zero() {
        storage_retention.push(retention.retention.to_string());
    }
    if retention.retention_size.bytes() > 0 {
        storage_retention.push(retention.retention_size.to_string());
    }
    let runtime = tokio::runtime::Handle::current().metrics();
    let info: BTreeMap<&str, serde_json::Value> = BTreeMap::from([
        ("startTime", rfc3339(state.started).into()),
        (
            "CWD",
            std::env::current_dir()
                .map(|dir| dir.display().to_string())
                .unwrap_or_default()
                .into(),
        ),
        (
            "reloadConfigSuccess",
            state.config.last_reload_successful().into(),
        ),
        (
            "lastConfigTime",
            chrono::DateTime::from_timestamp_millis(
                (state.config.last_reload_success_seconds() * 1000.0) as i64,
            )
            .map(|time| time.to_rfc3339())
            .unwrap_or_default()
            .into(),
        ),
        ("corruptionCount", 0.into()),
        ("goroutineCount", runtime.num_alive_tasks().into()),
        ("GOMAXPROCS", runtime.num_workers().into()),
        ("GOMEMLIMIT", 0.into()),
        ("GOGC", "".into()),
        ("GODEBUG", "".into()),
        ("storageRetention", storage_retention.join(" or ").into()),
    ]);
    success(info)
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_nulls_dropped() {
        let hash = format!("$2y$10${}", "a".repeat(53));
        let text = format!(
            "scrape_configs:\n\
             - job_name: a\n  basic_auth: {{username: u, password: hunter2}}\n  \
               static_configs: [{{targets: ['x:1']}}]\n\
             - job_name: b\n  bearer_token: tok3n\n  static_configs: [{{targets: ['y:1']}}]\n\
             - job_name: c\n  authorization: {{credentials: cr3d}}\n  \
               static_configs: [{{targets: ['z:1']}}]\n\
             web:\n  auth:\n    basic_auth_users: {{admin: '{hash}'}}\n"
        );
        let config = Config::parse(std::path::Path::new("test.yml"), &text).unwrap();
        let yaml = config_yaml(&config).unwrap();
        for secret in ["hunter2", "tok3n", "cr3d", "$2y$10$"] {
            assert!(!yaml.contains(secret), "{secret} leaked:\n{yaml}");
        }
        assert_eq!(yaml.matches("<secret>").count(), 4, "{yaml}");
        assert!(yaml.contains("username: u"), "{yaml}");
        assert!(!yaml.contains("null"), "{yaml}");
    }
}

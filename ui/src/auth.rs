//! HTTP basic authentication from `web.auth.basic_auth_users`, as Prometheus's web config
//! file does it: bcrypt hashes, checked against the running configuration on every request
//! so a reload adds or removes users at once.
//!
//! Decisions: `/-/healthy` and `/-/ready` stay open so that Kubernetes probes need no
//! credentials (they reveal nothing). bcrypt costs milliseconds by design, so verified
//! (hash, password) pairs are cached like exporter-toolkit does, and an unknown user is
//! checked against a dummy hash so that timing does not reveal which users exist.
//!
//! Without users, listening beyond loopback is reported ([`exposure_warning`]) at start-up
//! and on Home.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sightline_core::config::AuthConfig;

use crate::server::AppState;

/// Why listening on `listen` with `auth` is open to more than this machine: some address is
/// not loopback and no user is configured. `None` when the exposure is fine.
pub fn exposure_warning(listen: &[SocketAddr], auth: &AuthConfig) -> Option<String> {
    if !auth.basic_auth_users.is_empty() {
        return None;
    }
    let open: Vec<String> = listen
        .iter()
        .filter(|address| !address.ip().is_loopback())
        .map(SocketAddr::to_string)
        .collect();
    (!open.is_empty()).then(|| {
        format!(
            "listening on {} without authentication: anyone who can reach it can read every \
             metric and log line, silence alerts and delete dashboards; set \
             web.auth.basic_auth_users, or listen on 127.0.0.1 behind a proxy that authenticates",
            open.join(", ")
        )
    })
}

/// Most cached verification results before the cache is cleared.
const CACHE_LIMIT: usize = 1024;

/// A valid bcrypt hash of a password nobody knows, to spend equal time on unknown users.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Remembers the outcome of bcrypt checks, keyed by hash and password.
#[derive(Default)]
pub(crate) struct VerifiedCredentials(Mutex<HashMap<(String, String), bool>>);

impl VerifiedCredentials {
    /// True when `password` matches `hash`, computing bcrypt only on a cache miss.
    async fn verify(&self, hash: &str, password: &str) -> bool {
        let key = (hash.to_owned(), password.to_owned());
        if let Some(known) = self.lock().get(&key) {
            return *known;
        }
        let (hash, password) = key.clone();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|result| result.unwrap_or(false));
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, matches);
        matches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), bool>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Lets a request through when no users are configured or its credentials match.
pub(crate) async fn require_basic_auth(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.config.current();
    let users = &config.web.auth.basic_auth_users;
    if users.is_empty() {
        return next.run(request).await;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_basic);
    if let Some((user, password)) = credentials {
        let (hash, known_user) = match users.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        if state.verified.verify(hash, &password).await && known_user {
            return next.run(request).await;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"Sightline\"")],
        "Unauthorized\n",
    )
        .into_response()
}

/// Splits an `Authorization: Basic base64(user:password)` header value.
fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_credentials() {
        // "admin:pa:ss" — the password may contain colons.
        assert_eq!(
            parse_basic("Basic YWRtaW46cGE6c3M="),
            Some(("admin".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn exposure_is_reported_only_beyond_loopback_without_users() {
        let open: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let warning = exposure_warning(&[local, open], &AuthConfig::default()).unwrap();
        assert_eq!(
            warning,
            "listening on 0.0.0.0:9090 without authentication: anyone who can reach it can \
             read every metric and log line, silence alerts and delete dashboards; set \
             web.auth.basic_auth_users, or listen on 127.0.0.1 behind a proxy that authenticates"
        );
        assert_eq!(exposure_warning(&[local], &AuthConfig::default()), None);
        let mut users = AuthConfig::default();
        users
            .basic_auth_users
            .insert("admin".into(), DUMMY_HASH.into());
        assert_eq!(exposure_warning(&[open], &users), None);
    }

    #[test]
    fn dummy_hash_is_a_valid_bcrypt_hash() {
        assert!(!bcrypt::verify("anything", DUMMY_HASH).unwrap());
    }
}

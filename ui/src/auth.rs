//! Authentication and authorization: HTTP basic auth from `web.auth.basic_auth_users`, as
//! Prometheus's web config file does it (bcrypt hashes), bearer tokens from
//! `web.auth.bearer_tokens`, users named by a trusted reverse proxy's headers
//! (`web.auth.proxy`, as Grafana's `auth.proxy`) and read-only anonymous access
//! (`web.auth.anonymous: viewer`), all checked against the running configuration on every
//! request so a reload adds or removes them at once; each user or token has a role
//! (admin, viewer, push), and cross-site requests that change anything are refused (CSRF).
//!
//! Decisions: `/-/healthy` and `/-/ready` stay open so that Kubernetes probes need no
//! credentials (they reveal nothing). bcrypt costs milliseconds by design, so verified
//! (hash, password) pairs are cached like exporter-toolkit does, and an unknown user is
//! checked against a dummy hash so that timing does not reveal which users exist. Users are
//! admins unless listed in `viewers`. Reading is every GET and the query endpoints' POST
//! forms; pushing is remote write, Loki push and alert posting; everything else changes
//! state and needs an admin. The CSRF check uses `Sec-Fetch-Site` and `Origin`, which
//! browsers set and cannot be made to forge, rather than a token in every form, and also
//! applies without authentication: a page on any site could otherwise post to a Sightline
//! on the visitor's loopback.
//!
//! Without users, listening beyond loopback is reported ([`exposure_warning`]) at start-up
//! and on Home.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use std::path::Path;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sightline_core::config::proxy_auth::{AnonymousAccess, ProxyAuthConfig};
use sightline_core::config::{AuthConfig, BearerToken, Role, WebConfig};

use crate::server::AppState;

/// Why listening on `listen` with `auth` is open to more than this machine: some address is
/// not loopback and no user is configured. `None` when the exposure is fine.
pub fn exposure_warning(listen: &[SocketAddr], auth: &AuthConfig) -> Option<String> {
    if auth.required() {
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

/// What a request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reading: any GET, and the query endpoints' POST form bodies.
    Read,
    /// Sending data: remote write, Loki push, alerts from another Prometheus.
    Push,
    /// Changing state: silences, reloads, imports, deletions, flushes.
    Change,
}

/// Endpoints whose POST only reads (Prometheus and Loki accept queries as form bodies).
const READING_POSTS: [&str; 14] = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/format_query",
    "/loki/api/v1/query",
    "/loki/api/v1/query_range",
    "/loki/api/v1/labels",
    "/loki/api/v1/series",
    "/loki/api/v1/index/stats",
    "/loki/api/v1/index/volume",
    "/loki/api/v1/format_query",
    "/api/v1/label/",
    "/loki/api/v1/label/",
];

/// Endpoints that receive data.
const PUSHES: [&str; 4] = [
    "/api/v1/write",
    "/loki/api/v1/push",
    "/api/prom/push",
    "/api/v2/alerts",
];

impl Access {
    /// What `method` on `path` (relative to the route prefix) needs.
    fn of(method: &Method, path: &str) -> Access {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Access::Read;
        }
        if PUSHES.contains(&path) {
            return Access::Push;
        }
        let reading = READING_POSTS.iter().any(|endpoint| {
            path == *endpoint || (endpoint.ends_with('/') && path.starts_with(endpoint))
        });
        if reading {
            Access::Read
        } else {
            Access::Change
        }
    }

    /// Whether `role` may do this.
    fn allowed_for(self, role: Role) -> bool {
        match role {
            Role::Admin => true,
            Role::Viewer => self == Access::Read,
            Role::Push => self == Access::Push,
        }
    }
}

/// Who sent a request, once its credentials checked out.
enum Principal {
    /// Nobody: authentication is off.
    Anonymous,
    /// Nobody, with authentication on and `anonymous: viewer`: may read.
    Guest,
    /// A `basic_auth_users` user or one a trusted proxy named, with their role.
    User(String, Role),
    /// A bearer token, with its role.
    Token(Role),
}

/// Lets a request through when its credentials (basic auth or a bearer token) carry a role
/// that allows it, or when no users and tokens are configured; and refuses cross-site
/// requests that push or change anything unless they carry a bearer token (CSRF: a browser
/// sends basic credentials, or reaches a loopback-only Sightline, on any site's behalf).
pub(crate) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.config.current();
    let access = Access::of(request.method(), request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let principal = match identify(&state, &config.web.auth, request.headers(), peer).await {
        Some(principal) => principal,
        None => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"Sightline\"")],
                "Unauthorized\n",
            )
                .into_response();
        }
    };
    let role = match &principal {
        Principal::Anonymous => Role::Admin,
        Principal::Guest => Role::Viewer,
        Principal::User(_, role) | Principal::Token(role) => *role,
    };
    if !access.allowed_for(role) {
        let who = match &principal {
            Principal::User(user, _) => format!("user {user:?}"),
            Principal::Guest => "anonymous access".to_owned(),
            _ => "this token".to_owned(),
        };
        let role = role.name();
        return (
            StatusCode::FORBIDDEN,
            format!("Forbidden: {who} has the {role} role, which may not do this\n"),
        )
            .into_response();
    }
    let by_token = matches!(principal, Principal::Token(_));
    if access != Access::Read && !by_token && cross_site(&request, &config.web) {
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: cross-site request (its Origin is not this server); \
             send it from Sightline's own pages or without a browser\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// The principal behind `headers`' credentials, or the user a trusted proxy at `peer`
/// names; without either, a guest when `anonymous: viewer`. `None` when authentication is
/// required and the credentials are missing or wrong.
async fn identify(
    state: &AppState,
    auth: &AuthConfig,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<Principal> {
    if !auth.required() {
        return Some(Principal::Anonymous);
    }
    // The proxy's word comes first: oauth2-proxy may also pass its own Authorization header.
    if let Some(user) = proxied_user(auth.proxy.as_ref(), headers, peer) {
        return Some(user);
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return (auth.anonymous == AnonymousAccess::Viewer).then_some(Principal::Guest);
    };
    let value = value.to_str().ok()?;
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        let base_dir = state.config.source().base_dir();
        return auth
            .bearer_tokens
            .iter()
            .find(|known| token_matches(known, base_dir, token.trim()))
            .map(|known| Principal::Token(known.role));
    }
    let (user, password) = parse_basic(value)?;
    let (hash, known_user) = match auth.basic_auth_users.get(&user) {
        Some(hash) => (hash.as_str(), true),
        None => (DUMMY_HASH, false),
    };
    if !(state.verified.verify(hash, &password).await && known_user) {
        return None;
    }
    let role = if auth.viewers.contains(&user) {
        Role::Viewer
    } else {
        Role::Admin
    };
    Some(Principal::User(user, role))
}

/// The user named by the first of `proxy`'s user headers present, when `peer` is one of its
/// trusted proxies; from any other address the headers are ignored.
fn proxied_user(
    proxy: Option<&ProxyAuthConfig>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<Principal> {
    let proxy = proxy?;
    if !peer.is_some_and(|peer| proxy.trusts(peer)) {
        return None;
    }
    let user = proxy.user_headers.iter().find_map(|name| {
        headers
            .get(name.as_str())
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|user| !user.is_empty())
    })?;
    Some(Principal::User(user.to_owned(), proxy.role_of(user)))
}

/// Whether `offered` is `known`'s token (read from its file now, if it has one), compared
/// in constant time.
fn token_matches(known: &BearerToken, base_dir: &Path, offered: &str) -> bool {
    let secret = match (&known.token, &known.token_file) {
        (Some(token), _) => token.trim().to_owned(),
        (None, Some(file)) => match std::fs::read_to_string(base_dir.join(file)) {
            Ok(text) => text.trim().to_owned(),
            Err(error) => {
                tracing::warn!(file = %file.display(), "cannot read bearer token file: {error}");
                return false;
            }
        },
        (None, None) => return false,
    };
    !secret.is_empty()
        && secret.len() == offered.len()
        && secret
            .bytes()
            .zip(offered.bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// Whether a browser sent `request` from another site: `Sec-Fetch-Site` says so, or its
/// `Origin` names another host than the one addressed (the `Host` header, a proxy's
/// `X-Forwarded-Host`, or `web.external_url`). Clients that are not browsers send neither
/// header and are not affected.
fn cross_site(request: &Request, web: &WebConfig) -> bool {
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text("origin") else {
        return false;
    };
    let Some(origin) = url::Url::parse(origin).ok().map(|url| authority(&url)) else {
        return true;
    };
    let mut ours: Vec<String> = ["host", "x-forwarded-host"]
        .into_iter()
        .filter_map(text)
        .map(str::to_owned)
        .collect();
    ours.extend(web.external_url.as_ref().map(authority));
    !ours.iter().any(|host| host.eq_ignore_ascii_case(&origin))
}

/// `host[:port]` of `url`, the port only when it is not the scheme's default.
fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
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

//! A fake Kubernetes API server on 127.0.0.1 that speaks the real list/watch JSON.
//!
//! Collections are addressed as the API server does (`/api/v1/pods`,
//! `/api/v1/namespaces/<ns>/pods`, `/apis/<group>/<version>/[namespaces/<ns>/]<plural>`). A
//! list returns every object with the current `resourceVersion`; `?watch=true` streams
//! `{"type":…,"object":…}` lines from the history after the requested resource version, then
//! live. [`FakeApi::drop_watches`] ends every open watch (a dropped connection, which the
//! client resumes); [`FakeApi::compact`] forgets the history, so that a resumed watch gets
//! `410 Gone` and must relist.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Test code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

#[derive(Clone)]
struct Event {
    rv: u64,
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// collection → (namespace, name) → object
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    history: Vec<Event>,
    compacted_below: u64,
    watch_requests: usize,
    list_requests: usize,
    authorizations: Vec<String>,
    /// Collections answered with 403, as RBAC refuses a kind.
    forbidden: std::collections::BTreeSet<String>,
}

/// A TCP listener whose connections are TLS, handshaken as they are accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The fake server's state; cheap to clone.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    live: broadcast::Sender<Event>,
    drops: Arc<tokio::sync::watch::Sender<u64>>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl FakeApi {
    /// Starts a server on a free port.
    pub async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        FakeApi::serve(listener, format!("http://{address}"))
    }

    /// Starts a server on a free port that speaks HTTPS with `tls` (as a real API server
    /// does, and as in-cluster clients require).
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let listener = TlsListener {
            tcp: listener,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
        };
        FakeApi::serve(listener, format!("https://{address}"))
    }

    fn serve<L: axum::serve::Listener>(listener: L, url: String) -> FakeApi
    where
        L::Addr: std::fmt::Debug,
    {
        let (live, _) = broadcast::channel(1024);
        let api = FakeApi {
            inner: Arc::new(Mutex::new(Inner::default())),
            live,
            drops: Arc::new(tokio::sync::watch::channel(0).0),
            url,
        };
        let app = axum::Router::new().fallback(handle).with_state(api.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        api
    }

    /// The `Authorization` headers of every request so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.inner.lock().unwrap().authorizations.clone()
    }

    /// Creates or replaces an object (ADDED or MODIFIED). `object` has apiVersion, kind and
    /// metadata; the collection is derived from them.
    pub fn apply(&self, object: Value) {
        let collection = collection_of(&object);
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let mut inner = self.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let previous = inner
            .objects
            .entry(collection.clone())
            .or_default()
            .insert((namespace.clone(), name), object.clone());
        let event = Event {
            rv,
            collection,
            namespace,
            kind: if previous.is_some() {
                "MODIFIED"
            } else {
                "ADDED"
            },
            object,
        };
        inner.history.push(event.clone());
        let _ = self.live.send(event);
    }

    /// Deletes an object (DELETED).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let collection = collection_of(&json!({"apiVersion": api_version, "kind": kind}));
        let mut inner = self.inner.lock().unwrap();
        let Some(mut object) = inner
            .objects
            .get_mut(&collection)
            .and_then(|objects| objects.remove(&(namespace.to_owned(), name.to_owned())))
        else {
            return;
        };
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = Event {
            rv,
            collection,
            namespace: namespace.to_owned(),
            kind: "DELETED",
            object,
        };
        inner.history.push(event.clone());
        let _ = self.live.send(event);
    }

    /// Removes an object without any event, as if its DELETED event had been compacted away.
    pub fn delete_silently(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let collection = collection_of(&json!({"apiVersion": api_version, "kind": kind}));
        let mut inner = self.inner.lock().unwrap();
        if let Some(objects) = inner.objects.get_mut(&collection) {
            objects.remove(&(namespace.to_owned(), name.to_owned()));
        }
        inner.rv += 1;
    }

    /// Ends every open watch stream, as a dropped connection would.
    /// Answers every request for `collection` (`/apis/policy/v1/poddisruptionbudgets`) with
    /// 403 Forbidden from now on.
    pub fn forbid(&self, collection: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.forbidden.insert(collection.to_owned());
    }

    pub fn drop_watches(&self) {
        self.drops.send_modify(|generation| *generation += 1);
    }

    /// Forgets the history: a watch from an older resource version gets 410 Gone.
    pub fn compact(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.compacted_below = inner.rv + 1;
        inner.history.clear();
    }

    /// How many list and watch requests were served.
    pub fn requests(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.list_requests, inner.watch_requests)
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            self.url
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `/api/v1/pods` or `/apis/<group>/<version>/<plural>` for an object's apiVersion and kind.
fn collection_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap();
    let plural = match kind {
        "Endpoints" => "endpoints".to_owned(),
        kind => format!("{}s", kind.to_lowercase()),
    };
    if api_version.contains('/') {
        format!("/apis/{api_version}/{plural}")
    } else {
        format!("/api/{api_version}/{plural}")
    }
}

/// Splits `/api/v1/namespaces/<ns>/pods[/<name>]` into (`/api/v1/pods`, Some(ns), name).
fn parse_path(path: &str) -> (String, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let prefix_len = if parts.first() == Some(&"api") { 2 } else { 3 };
    if parts.len() >= prefix_len + 3 && parts[prefix_len] == "namespaces" {
        let collection = format!(
            "/{}/{}",
            parts[..prefix_len].join("/"),
            parts[prefix_len + 2]
        );
        let name = parts.get(prefix_len + 3).map(|n| (*n).to_owned());
        return (collection, Some(parts[prefix_len + 1].to_owned()), name);
    }
    (path.to_owned(), None, None)
}

async fn handle(
    State(api): State<FakeApi>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(authorization) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        let mut inner = api.inner.lock().unwrap();
        inner.authorizations.push(authorization.to_owned());
    }
    let (collection, namespace, name) = parse_path(uri.path());
    if api.inner.lock().unwrap().forbidden.contains(&collection) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": "Forbidden", "code": 403,
                "message": format!("{collection} is forbidden")})),
        )
            .into_response();
    }
    if let Some(name) = name {
        let inner = api.inner.lock().unwrap();
        let key = (namespace.clone().unwrap_or_default(), name);
        return match inner.objects.get(&collection).and_then(|o| o.get(&key)) {
            Some(object) => axum::Json(object.clone()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": format!("{} not found", key.1)})),
            )
                .into_response(),
        };
    }
    let wanted = move |event_ns: &str| namespace.as_deref().is_none_or(|ns| ns == event_ns);
    let label_selector = query.get("labelSelector").cloned().unwrap_or_default();
    let field_selector = query.get("fieldSelector").cloned().unwrap_or_default();
    let selected = move |object: &Value| {
        matches_selector(object, &label_selector) && matches_fields(object, &field_selector)
    };
    if query.get("watch").map(String::as_str) != Some("true") {
        let mut inner = api.inner.lock().unwrap();
        inner.list_requests += 1;
        let items: Vec<Value> = inner
            .objects
            .get(&collection)
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(|((ns, _), object)| wanted(ns) && selected(object))
            .map(|(_, object)| object.clone())
            .collect();
        let body = json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": inner.rv.to_string()},
            "items": items,
        });
        return axum::Json(body).into_response();
    }
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0);
    let (backlog, mut live) = {
        let mut inner = api.inner.lock().unwrap();
        inner.watch_requests += 1;
        if from < inner.compacted_below {
            let gone = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from}"), "reason": "Expired", "code": 410}});
            return (StatusCode::OK, format!("{gone}\n")).into_response();
        }
        let backlog: Vec<Event> = inner
            .history
            .iter()
            .filter(|e| e.rv > from && e.collection == collection)
            .cloned()
            .collect();
        (backlog, api.live.subscribe())
    };
    let mut drops = api.drops.subscribe();
    drops.borrow_and_update();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let line =
            |event: &Event| format!("{}\n", json!({"type": event.kind, "object": event.object}));
        for event in backlog
            .iter()
            .filter(|e| wanted(&e.namespace) && selected(&e.object))
        {
            if tx.send(Ok(line(event))).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = drops.changed() => return,
                event = live.recv() => {
                    let Ok(event) = event else { return };
                    if event.rv <= from || event.collection != collection || !wanted(&event.namespace) || !selected(&event.object) {
                        continue;
                    }
                    if tx.send(Ok(line(&event))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// `spec.nodeName=a,metadata.name=b`: equality on dotted field paths only.
fn matches_fields(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (path, value) = term.split_once('=').unwrap_or((term, ""));
        let field = path.split('.').fold(object, |value, key| &value[key]);
        field.as_str() == Some(value.trim_start_matches('='))
    })
}

/// `a=b,c=d` equality selectors only.
fn matches_selector(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (name, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][name].as_str() == Some(value.trim_start_matches('='))
    })
}

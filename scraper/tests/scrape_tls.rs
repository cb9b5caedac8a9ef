//! The scrape client's `tls_config` against a real TLS server on 127.0.0.1 whose certificate,
//! signed by a CA made in the test, is valid only for a DNS name: `server_name` is the name
//! sent as SNI and the certificate is verified against, so the scrape of the IP address
//! succeeds with it and fails verification without it or with another name. The server
//! records the SNI and `Host` header of every request it answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sightline_core::config::{Config, ScrapeConfig};
use sightline_core::labels::Labels;
use sightline_scraper::scrape::client::{Reuse, ScrapeClient};
use sightline_scraper::target::Target;

const NAME: &str = "metrics.internal.example";
const BODY: &str = "# TYPE tls_metric gauge\ntls_metric 7\n";

/// A fresh CA and a server certificate it signed for `name` only: the CA's PEM, and the
/// server's rustls configuration.
fn certificates(name: &str) -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server.der().clone(), ca.der().clone()], key)
        .unwrap();
    (ca.pem(), Arc::new(config))
}

/// What the server saw of one request: the SNI (none for an IP address) and the `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    sni: Option<String>,
    host: String,
}

/// An HTTPS server on 127.0.0.1 answering every request with [`BODY`] over HTTP/1.1, and what
/// it saw of each request it answered.
fn serve(config: Arc<rustls::ServerConfig>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            let record = record.clone();
            std::thread::spawn(move || answer(config, stream, &record));
        }
    });
    (address, seen)
}

/// One connection: the TLS handshake (which a client that rejects the certificate aborts),
/// the request head, the response.
fn answer(config: Arc<rustls::ServerConfig>, stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), stream);
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let host = head
        .lines()
        .find_map(|line| line.strip_prefix("host: ").or(line.strip_prefix("Host: ")))
        .unwrap_or_default()
        .to_owned();
    let sni = tls.conn.server_name().map(str::to_owned);
    seen.lock().unwrap().push(Seen { sni, host });
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tls.write_all(response.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn job(tls_config: &str) -> ScrapeConfig {
    let text = format!(
        "scrape_configs:\n  - {{job_name: tls, scheme: https, tls_config: {tls_config}, static_configs: [{{targets: ['127.0.0.1:1']}}]}}\n"
    );
    Config::parse(Path::new("t.yml"), &text)
        .unwrap()
        .scrape_configs
        .remove(0)
}

/// Scrapes the target `address` (an `IP:port` or `name:port`) of a job with `tls_config`,
/// through the client the scrape manager gives that target.
async fn fetch(address: &str, tls_config: &str) -> Result<String, String> {
    let job = job(tls_config);
    let target = Target::populate(
        &job,
        &Labels::from_pairs([("__address__", address)]),
        &Labels::default(),
    )
    .unwrap()
    .unwrap();
    let client = Arc::new(ScrapeClient::new(&job, Path::new(".")).map_err(|e| e.to_string())?)
        .for_target(&target)
        .map_err(|e| e.to_string())?;
    client
        .fetch(&target.url().unwrap(), Duration::from_secs(10), Reuse::Keep)
        .await
        .map(|fetched| String::from_utf8(fetched.body).unwrap())
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn server_name_is_sent_as_sni_and_verified_while_host_names_the_target() {
    let (ca_pem, config) = certificates(NAME);
    let (address, seen) = serve(config);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca_file = ca_file.display();
    let target = address.to_string();
    let last_seen = || seen.lock().unwrap().pop();

    let body = fetch(
        &target,
        &format!("{{ca_file: '{ca_file}', server_name: {NAME}}}"),
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));
    let expected = Seen {
        sni: Some(NAME.to_owned()),
        host: target.clone(),
    };
    assert_eq!(last_seen(), Some(expected));

    // A target addressed by name is reached through its own name's addresses.
    let by_name = format!("localhost:{}", address.port());
    let body = fetch(
        &by_name,
        &format!("{{ca_file: '{ca_file}', server_name: {NAME}}}"),
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));
    let expected = Seen {
        sni: Some(NAME.to_owned()),
        host: by_name,
    };
    assert_eq!(last_seen(), Some(expected));

    // Without server_name the certificate is checked against 127.0.0.1, which it does not name.
    let error = fetch(&target, &format!("{{ca_file: '{ca_file}'}}"))
        .await
        .unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");

    let error = fetch(
        &target,
        &format!("{{ca_file: '{ca_file}', server_name: other.example}}"),
    )
    .await
    .unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");

    // The CA still matters: with the platform's roots the test CA is unknown.
    let error = fetch(&target, &format!("{{server_name: {NAME}}}"))
        .await
        .unwrap_err();
    assert!(error.contains("certificate"), "{error}");

    // insecure_skip_verify wins over server_name, as in Prometheus, which still sends it.
    seen.lock().unwrap().clear();
    let body = fetch(
        &target,
        "{server_name: other.example, insecure_skip_verify: true}",
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));
    let expected = Seen {
        sni: Some("other.example".to_owned()),
        host: target.clone(),
    };
    assert_eq!(last_seen(), Some(expected));
}

#[tokio::test]
async fn an_ip_address_as_server_name_is_verified_but_not_sent() {
    let (ca_pem, config) = certificates("127.0.0.2");
    let (address, seen) = serve(config);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca_file = ca_file.display();
    let target = address.to_string();

    let body = fetch(
        &target,
        &format!("{{ca_file: '{ca_file}', server_name: 127.0.0.2}}"),
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));
    let expected = Seen {
        sni: None,
        host: target.clone(),
    };
    assert_eq!(seen.lock().unwrap().pop(), Some(expected));

    let error = fetch(&target, &format!("{{ca_file: '{ca_file}'}}"))
        .await
        .unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");
}

#[tokio::test]
async fn a_server_name_that_is_no_name_is_a_clear_error() {
    let error = fetch("127.0.0.1:1", "{server_name: 'bad name!'}")
        .await
        .unwrap_err();
    assert!(error.contains("tls_config.server_name"), "{error}");
}

//! The scrape client's `tls_config` against a real TLS server on 127.0.0.1 whose certificate,
//! signed by a CA made in the test, is valid only for a DNS name: `server_name` is the name
//! the certificate is verified against, so the scrape of the IP address succeeds with it and
//! fails verification without it or with another name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sightline_core::config::{Config, ScrapeConfig};
use sightline_scraper::scrape::client::ScrapeClient;
use url::Url;

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

/// An HTTPS server on 127.0.0.1 answering every request with [`BODY`] over HTTP/1.1.
fn serve(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || answer(config, stream));
        }
    });
    address
}

/// One connection: the TLS handshake (which a client that rejects the certificate aborts),
/// the request head, the response.
fn answer(config: Arc<rustls::ServerConfig>, stream: TcpStream) {
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), stream);
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
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

/// Fetches `/metrics` from `address` with a client built for `tls_config`.
async fn fetch(address: SocketAddr, tls_config: &str) -> Result<String, String> {
    let client = ScrapeClient::new(&job(tls_config), Path::new(".")).map_err(|e| e.to_string())?;
    let url = Url::parse(&format!("https://{address}/metrics")).unwrap();
    client
        .fetch(&url, Duration::from_secs(10))
        .await
        .map(|fetched| String::from_utf8(fetched.body).unwrap())
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn server_name_is_the_name_the_certificate_is_verified_against() {
    let (ca_pem, config) = certificates(NAME);
    let address = serve(config);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca_file = ca_file.display();

    let body = fetch(
        address,
        &format!("{{ca_file: '{ca_file}', server_name: {NAME}}}"),
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));

    // Without server_name the certificate is checked against 127.0.0.1, which it does not name.
    let error = fetch(address, &format!("{{ca_file: '{ca_file}'}}"))
        .await
        .unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");

    let error = fetch(
        address,
        &format!("{{ca_file: '{ca_file}', server_name: other.example}}"),
    )
    .await
    .unwrap_err();
    assert!(error.contains("certificate not valid for name"), "{error}");

    // The CA still matters: with the platform's roots the test CA is unknown.
    let error = fetch(address, &format!("{{server_name: {NAME}}}"))
        .await
        .unwrap_err();
    assert!(error.contains("certificate"), "{error}");

    // insecure_skip_verify wins over server_name, as in Prometheus.
    let body = fetch(
        address,
        "{server_name: other.example, insecure_skip_verify: true}",
    )
    .await;
    assert_eq!(body.as_deref(), Ok(BODY));
}

#[tokio::test]
async fn a_server_name_that_is_no_name_is_a_clear_error() {
    let error = fetch("127.0.0.1:1".parse().unwrap(), "{server_name: 'bad name!'}")
        .await
        .unwrap_err();
    assert!(error.contains("tls_config.server_name"), "{error}");
}

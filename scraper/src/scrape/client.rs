//! Fetching one scrape: the HTTP request Prometheus makes, and its limits.
//!
//! Follows Prometheus's scrape client: an `Accept` header that prefers OpenMetrics and falls
//! back to the text format, `Accept-Encoding: gzip`, `X-Prometheus-Scrape-Timeout-Seconds`,
//! credentials from `basic_auth`, `authorization` or `bearer_token(_file)` — files are read
//! again for every scrape so that rotated tokens are picked up —, TLS from `tls_config`, and
//! `body_size_limit` enforced on the decompressed body while it streams in.
//!
//! `tls_config.server_name` works as Go's `tls.Config.ServerName` does in Prometheus: it is the
//! name sent as SNI and the name the certificate is verified against, while the connection
//! still goes to the target's address and the `Host` header still names the target. reqwest
//! takes both SNI and verification name from the URL's host and pools connections by it, so a
//! job with a DNS `server_name` gets one client per target ([`ScrapeClient::for_target`]):
//! its requests are addressed to `server_name`, and its resolver maps that name to the
//! target's host. An IP address as `server_name` is never sent as SNI (RFC 6066), so there it
//! only changes what the certificate is verified against.
//!
//! Connections are kept alive between scrapes, as Prometheus keeps them, except after a body
//! larger than [`LARGE_BODY`]: the next scrape of that target asks for `Connection: close`
//! ([`Reuse`]). hyper keeps a pooled connection's read buffer at the size its largest body
//! grew it to (about 400 KiB, which reqwest gives no way to cap), so 20 targets of 650 KB each
//! held 10 MB between scrapes; a fresh connection per large scrape costs little next to
//! parsing its body.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sightline_core::config::ScrapeConfig;
use sightline_core::config::scrape::{Authorization, BasicAuth, TlsConfig};
use url::{Host, Position, Url};

use super::ScrapeError;
use crate::exposition::ACCEPT_HEADER;
use crate::target::Target;

/// The most a `Content-Length` header makes the client allocate before the body arrives.
const PREALLOCATE_MAX: u64 = 64 << 20;

/// Bodies larger than this many bytes make the next scrape of the target use a fresh
/// connection (see the module docs).
pub const LARGE_BODY: usize = 256 << 10;

/// Whether a scrape's connection goes back to the pool once its response is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reuse {
    /// Kept alive for the next scrape.
    #[default]
    Keep,
    /// Asked to close (`Connection: close`), so that it is dropped with its read buffer.
    Close,
}

impl Reuse {
    /// What the next scrape of a target asks for after a body of `len` bytes.
    pub fn after_body(len: usize) -> Reuse {
        if len > LARGE_BODY {
            Reuse::Close
        } else {
            Reuse::Keep
        }
    }
}

/// The body and content type of a successful scrape.
pub struct Fetched {
    /// The decompressed body.
    pub body: Vec<u8>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
}

/// How a job authenticates to its targets (or remote write to its receiver).
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    None,
    Basic(BasicAuth),
    Authorization(Authorization),
    BearerToken(String),
    BearerTokenFile(PathBuf),
}

/// An HTTP client configured for one scrape job, or for one of its targets.
pub struct ScrapeClient {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
    /// For a client of one target ([`ScrapeClient::for_target`]): the `server_name` its
    /// requests are addressed to.
    addressed_as: Option<String>,
    credentials: Credentials,
    base_dir: PathBuf,
    body_size_limit: u64,
}

/// What a job's clients are built from, kept to build a client per target when needed.
struct ClientSettings {
    follow_redirects: bool,
    tls: Option<TlsConfig>,
    base_dir: PathBuf,
}

impl ClientSettings {
    /// A reqwest client with these settings, resolving names through `resolver` if given.
    fn build(&self, resolver: Option<TargetResolver>) -> Result<reqwest::Client, ScrapeError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("Sightline/", env!("CARGO_PKG_VERSION")))
            .redirect(if self.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .no_proxy();
        if let Some(tls) = &self.tls {
            builder = configure_tls(builder, tls, &self.base_dir)?;
        }
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(Arc::new(resolver));
        }
        builder
            .build()
            .map_err(|error| ScrapeError::Client(error.to_string()))
    }

    /// The `server_name` to address requests to, when it is a DNS name (an IP address is
    /// never sent as SNI).
    fn sni_name(&self) -> Option<&str> {
        let name = self.tls.as_ref()?.server_name.as_deref()?;
        matches!(ServerName::try_from(name), Ok(ServerName::DnsName(_))).then_some(name)
    }
}

impl ScrapeClient {
    /// Builds the client for `job`; relative credential and TLS files resolve against
    /// `base_dir` (the config file's directory).
    pub fn new(job: &ScrapeConfig, base_dir: &Path) -> Result<ScrapeClient, ScrapeError> {
        let settings = Arc::new(ClientSettings {
            follow_redirects: job.follow_redirects,
            tls: job.tls_config.clone(),
            base_dir: base_dir.to_owned(),
        });
        let credentials = Credentials::new(
            job.basic_auth.as_ref(),
            job.authorization.as_ref(),
            job.bearer_token.as_ref(),
            job.bearer_token_file.as_ref(),
        );
        Ok(ScrapeClient {
            http: settings.build(None)?,
            settings,
            addressed_as: None,
            credentials,
            base_dir: base_dir.to_owned(),
            body_size_limit: job.body_size_limit.bytes(),
        })
    }

    /// The client to scrape `target` with: this job's client, or — for an HTTPS target of a
    /// job whose `tls_config.server_name` is a DNS name — a client of the target's own that
    /// sends `server_name` as SNI and connects to the target's address.
    pub fn for_target(self: &Arc<Self>, target: &Target) -> Result<Arc<ScrapeClient>, ScrapeError> {
        let (Some(server_name), Ok(url)) = (self.settings.sni_name(), target.url()) else {
            return Ok(self.clone());
        };
        let Some(host) = url.host().filter(|_| url.scheme() == "https") else {
            return Ok(self.clone());
        };
        let resolver = TargetResolver {
            server_name: server_name.to_owned(),
            target: host.to_owned(),
        };
        Ok(Arc::new(ScrapeClient {
            http: self.settings.build(Some(resolver))?,
            settings: self.settings.clone(),
            addressed_as: Some(server_name.to_owned()),
            credentials: self.credentials.clone(),
            base_dir: self.base_dir.clone(),
            body_size_limit: self.body_size_limit,
        }))
    }

    /// Fetches `url` within `timeout`.
    pub async fn fetch(
        &self,
        url: &Url,
        timeout: Duration,
        reuse: Reuse,
    ) -> Result<Fetched, ScrapeError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
        if reuse == Reuse::Close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(value) = HeaderValue::from_str(&format!("{}", timeout.as_secs_f64())) {
            headers.insert("X-Prometheus-Scrape-Timeout-Seconds", value);
        }
        let mut request = match &self.addressed_as {
            Some(server_name) => {
                // The URL names server_name (SNI, certificate, connection pool); the Host
                // header keeps naming the target, as Go's client does.
                let mut addressed = url.clone();
                addressed
                    .set_host(Some(server_name))
                    .map_err(|error| ScrapeError::Request(format!("server_name: {error}")))?;
                if let Ok(value) =
                    HeaderValue::from_str(&url[Position::BeforeHost..Position::AfterPort])
                {
                    headers.insert(HOST, value);
                }
                self.http.get(addressed)
            }
            None => self.http.get(url.clone()),
        };
        request = request.headers(headers).timeout(timeout);
        request = self.credentials.apply(request, &self.base_dir)?;
        let mut response = request.send().await.map_err(ScrapeError::from_request)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeError::Status(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        // Sized once from Content-Length (no regrowth, no unused doubled tail), trusting it only
        // up to the body size limit and `PREALLOCATE_MAX`; the limit is enforced on what
        // actually arrives.
        let mut limit = PREALLOCATE_MAX;
        if self.body_size_limit > 0 {
            limit = limit.min(self.body_size_limit);
        }
        let expected = response.content_length().unwrap_or(0).min(limit);
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(ScrapeError::from_request)? {
            body.extend_from_slice(&chunk);
            if self.body_size_limit > 0 && body.len() as u64 > self.body_size_limit {
                return Err(ScrapeError::BodySizeLimit(self.body_size_limit));
            }
        }
        Ok(Fetched { body, content_type })
    }
}

impl Credentials {
    /// The first of the ways to authenticate that is set, as Prometheus's HTTP client takes
    /// them (the config allows at most one).
    pub(crate) fn new(
        basic_auth: Option<&BasicAuth>,
        authorization: Option<&Authorization>,
        bearer_token: Option<&String>,
        bearer_token_file: Option<&PathBuf>,
    ) -> Credentials {
        if let Some(basic) = basic_auth {
            Credentials::Basic(basic.clone())
        } else if let Some(authorization) = authorization {
            Credentials::Authorization(authorization.clone())
        } else if let Some(token) = bearer_token {
            Credentials::BearerToken(token.clone())
        } else if let Some(file) = bearer_token_file {
            Credentials::BearerTokenFile(file.clone())
        } else {
            Credentials::None
        }
    }

    /// Adds the credentials to `request`; files (relative to `base_dir`) are read each time,
    /// so that rotated secrets are picked up.
    pub(crate) fn apply(
        &self,
        request: reqwest::RequestBuilder,
        base_dir: &Path,
    ) -> Result<reqwest::RequestBuilder, ScrapeError> {
        Ok(match self {
            Credentials::None => request,
            Credentials::Basic(basic) => {
                let username = match &basic.username_file {
                    Some(file) => read_secret(base_dir, file)?,
                    None => basic.username.clone(),
                };
                let password = match (&basic.password, &basic.password_file) {
                    (_, Some(file)) => Some(read_secret(base_dir, file)?),
                    (password, None) => password.clone(),
                };
                request.basic_auth(username, password)
            }
            Credentials::Authorization(authorization) => {
                let credentials =
                    match (&authorization.credentials, &authorization.credentials_file) {
                        (_, Some(file)) => read_secret(base_dir, file)?,
                        (credentials, None) => credentials.clone().unwrap_or_default(),
                    };
                request.header(
                    AUTHORIZATION,
                    format!("{} {credentials}", authorization.kind),
                )
            }
            Credentials::BearerToken(token) => request.bearer_auth(token),
            Credentials::BearerTokenFile(file) => request.bearer_auth(read_secret(base_dir, file)?),
        })
    }
}

/// Reads a credentials file, trimmed of surrounding whitespace as Prometheus does.
fn read_secret(base_dir: &Path, file: &Path) -> Result<String, ScrapeError> {
    let path = base_dir.join(file);
    std::fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .map_err(|error| ScrapeError::Credentials(format!("{}: {error}", path.display())))
}

/// A client with `tls` (files relative to `base_dir`), for requests other than scrapes
/// (remote write).
pub(crate) fn build_http_client(
    tls: Option<&TlsConfig>,
    base_dir: &Path,
    follow_redirects: bool,
) -> Result<reqwest::Client, ScrapeError> {
    ClientSettings {
        follow_redirects,
        tls: tls.cloned(),
        base_dir: base_dir.to_owned(),
    }
    .build(None)
}

/// Resolves a job's `server_name` to the addresses of one target's host, so that requests
/// addressed to `server_name` connect to that target; any other name (a redirect's) resolves
/// as usual. The port comes from the URL, as with reqwest's own resolver.
struct TargetResolver {
    server_name: String,
    target: Host<String>,
}

impl Resolve for TargetResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            self.target.clone()
        } else {
            Host::Domain(name.as_str().to_owned())
        };
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = match host {
                Host::Ipv4(ip) => vec![SocketAddr::new(ip.into(), 0)],
                Host::Ipv6(ip) => vec![SocketAddr::new(ip.into(), 0)],
                Host::Domain(domain) => tokio::net::lookup_host((domain.as_str(), 0))
                    .await?
                    .collect(),
            };
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Makes ring the process's TLS crypto provider unless one is installed already: reqwest is
/// built without a provider of its own (see the workspace Cargo.toml) and refuses to build a
/// client without one.
fn install_crypto_provider() {
    // An error means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn configure_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
    base_dir: &Path,
) -> Result<reqwest::ClientBuilder, ScrapeError> {
    let read = |file: &Path| {
        let path = base_dir.join(file);
        std::fs::read(&path)
            .map_err(|error| ScrapeError::Client(format!("{}: {error}", path.display())))
    };
    if let Some(server_name) = &tls.server_name {
        let name = ServerName::try_from(server_name.as_str())
            .map_err(|error| ScrapeError::Client(format!("tls_config.server_name: {error}")))?;
        // A DNS name is the URL's host in a target's own client, where reqwest verifies
        // against it; an IP address needs a verifier that checks against it instead.
        if let ServerName::IpAddress(_) = name
            && !tls.insecure_skip_verify
        {
            let config = server_name_tls(name.to_owned(), tls, &read)?;
            return Ok(builder.tls_backend_preconfigured(config));
        }
    }
    if let Some(ca_file) = &tls.ca_file {
        let pem = read(ca_file)?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
            ScrapeError::Client(format!("ca_file {}: {error}", ca_file.display()))
        })?;
        builder = builder.tls_certs_only(certificates);
    }
    if let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read(cert_file)?;
        pem.extend(read(key_file)?);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|error| ScrapeError::Client(format!("cert_file/key_file: {error}")))?;
        builder = builder.identity(identity);
    }
    Ok(builder.tls_danger_accept_invalid_certs(tls.insecure_skip_verify))
}

/// A rustls configuration that verifies the target's certificate against the IP address
/// `server_name`, with
/// the roots of `ca_file` (or the platform's) and the client certificate of `cert_file` and
/// `key_file` — what reqwest builds itself when no server name is set.
fn server_name_tls(
    name: ServerName<'static>,
    tls: &TlsConfig,
    read: &dyn Fn(&Path) -> Result<Vec<u8>, ScrapeError>,
) -> Result<rustls::ClientConfig, ScrapeError> {
    let invalid = |what: &str, error: &dyn std::fmt::Display| {
        ScrapeError::Client(format!("tls_config.{what}: {error}"))
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner: Arc<dyn ServerCertVerifier> = match &tls.ca_file {
        Some(ca_file) => {
            let pem = read(ca_file)?;
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(certificate.map_err(|error| invalid("ca_file", &error))?)
                    .map_err(|error| invalid("ca_file", &error))?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|error| invalid("ca_file", &error))?
        }
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|error| invalid("server_name", &error))?,
        ),
    };
    let verifier = Arc::new(ServerNameVerifier { inner, name });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid("server_name", &error))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certificates = CertificateDer::pem_slice_iter(&read(cert_file)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| invalid("cert_file", &error))?;
            let key = PrivateKeyDer::from_pem_slice(&read(key_file)?)
                .map_err(|error| invalid("key_file", &error))?;
            builder
                .with_client_auth_cert(certificates, key)
                .map_err(|error| invalid("cert_file", &error))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies the server's certificate for a fixed name, whatever host the URL names.
#[derive(Debug)]
struct ServerNameVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ServerNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

//! The distribution protocol client: manifests and blobs from OCI registries.
//!
//! Entry point: [`Registry::connect`]. The protocol (bearer-token escalation after a 401,
//! Accept headers, blob streaming, uploads) is `oci-client`'s, the client the ORAS project
//! maintains; den adds what docker users expect around it:
//!
//! * **Where to connect** ([`transports`]). https first, always. Insecure registries (loopback
//!   ones: `localhost`, 127.0.0.0/8, `::1`; those listed as insecure in the configuration; any
//!   with `--tls-verify=false`) are tried over https without verifying the certificate, then over
//!   plain http, as docker does; everything else over https, verified against the system's trust
//!   store. A pull probes `/v2/` once to choose; `login` and `push` take the first transport whose
//!   `/v2/` answers as a registry does (2xx or 401), so a registry spoken to in the wrong protocol
//!   is never taken for one. docker.io images go to the configured mirrors first, then to
//!   docker.io.
//! * **Verification.** Every byte is checked against its digest before den keeps it: manifests by
//!   [`crate::store::Store::put_blob`], blobs by [`crate::store::BlobWriter`] while they stream.
//! * **Errors that say what to do**: unreachable registry, unknown image, access denied.

pub mod session;

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::error::Diagnose;
use crate::image::Reference;
use crate::image::{checks, manifest};
use crate::store::{BlobWriter, Incoming};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("{reference}: not found in the registry ({message})")]
    NotFound { reference: String, message: String },
    #[error("access to {reference} denied by the registry ({message})")]
    Denied { reference: String, message: String },
    #[error("registry {registry} answered {what} with an error: {message}")]
    Protocol {
        registry: String,
        what: String,
        message: String,
    },
    #[error("{registry} does not answer as a registry: {url} gave {status}")]
    NotARegistry {
        registry: String,
        url: String,
        status: String,
    },
    #[error("{registry} refused the user name or password of {user:?} ({message})")]
    BadCredentials {
        registry: String,
        user: String,
        message: String,
    },
    #[error("push to {reference} denied by the registry ({message})")]
    PushDenied {
        reference: String,
        logged_in: bool,
        message: String,
    },
    #[error("blob {digest} of {reference} does not match its digest")]
    Tampered {
        reference: String,
        digest: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("{registry} sent less than 16 KiB in {secs} s while den fetched {what}")]
    Stalled {
        registry: String,
        what: String,
        secs: u64,
    },
    #[error("{reference} sent more than the {size} bytes blob {digest} has")]
    Oversized {
        reference: String,
        digest: String,
        size: u64,
    },
    #[error("{reference}: the registry sent a manifest whose digest is {actual}, not {expected}")]
    ManifestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("layer {digest} of {reference} cannot be unpacked")]
    Layer {
        reference: String,
        digest: String,
        #[source]
        source: crate::unpack::UnpackError,
    },
    #[error("cannot store what {reference} sent")]
    Store {
        reference: String,
        #[source]
        source: crate::store::StoreError,
    },
}

impl Diagnose for RegistryError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RegistryError::Unreachable { registry, message } if message.contains("certificate") => format!(
                "{registry}'s certificate is not trusted here: add its CA to the system's trust \
                 store, or pass --tls-verify=false (or list it as insecure in den's config) to \
                 skip the check"
            ),
            RegistryError::Unreachable { registry, .. } => format!(
                "check that {registry} is the right address and is up; for a local registry, start it first; \
                 behind a proxy, set HTTPS_PROXY"
            ),
            RegistryError::NotFound { .. } => "check the image's name and tag; `den images` lists what is local".into(),
            RegistryError::Denied { reference, .. } => format!(
                "the repository may not exist, or may require `den login {}`",
                reference.split('/').next().unwrap_or_default()
            ),
            RegistryError::NotARegistry { registry, .. } => format!(
                "check that {registry} is a registry's address (host[:port]); for one with a \
                 self-signed certificate, add --tls-verify=false"
            ),
            RegistryError::BadCredentials { registry, .. } => format!(
                "check the user name and password, then run `den login {registry}` again"
            ),
            RegistryError::PushDenied { reference, logged_in: false, .. } => format!(
                "log in first with `den login {}`",
                reference.split('/').next().unwrap_or_default()
            ),
            RegistryError::PushDenied { .. } => {
                "your account may not push to this repository; check its name and your rights".into()
            }
            RegistryError::Protocol { .. } => "try again; if it persists, the registry is misbehaving".into(),
            RegistryError::Tampered { .. } => {
                "the registry's copy is corrupt or was tampered with; nothing was stored. Tell the registry's operator".into()
            }
            RegistryError::Stalled { .. } => {
                "the network or the registry stalled; run the command again (a transfer that brings \
                 16 KiB every 30 s, however slow, is never cut off)"
                    .into()
            }
            RegistryError::Oversized { .. } | RegistryError::ManifestMismatch { .. } => {
                "the registry's copy is corrupt or was tampered with; nothing was stored. Tell the registry's operator".into()
            }
            RegistryError::Store { source, .. } => return source.hint(),
            RegistryError::Layer { source, .. } => return source.hint(),
            RegistryError::Image(e) => return e.hint(),
        })
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;

/// Whether a registry host is on the loopback network (plain http allowed, as in docker).
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if registry.matches(':').count() == 1 {
        registry.split(':').next().unwrap_or(registry)
    } else {
        registry
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Split a mirror entry (`https://m.example:5000/`, `m.example`) into host and plain-http flag.
fn mirror_host(entry: &str) -> (String, bool) {
    let http = entry.starts_with("http://");
    let host = entry
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    (host.to_string(), http)
}

/// How den speaks to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// https, verified against the system's trust store.
    Https,
    /// https without checking the certificate: registries the user called insecure.
    HttpsUnverified,
    /// Plain http: insecure registries that do not speak https.
    Http,
}

impl Transport {
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https | Transport::HttpsUnverified => "https",
        }
    }
}

/// The transports to try for `registry`, in docker's order: https first, and for an insecure
/// registry (on the loopback network, listed in `insecure`, or `--tls-verify=false`) unverified
/// https, then plain http. `--tls-verify=true` insists on verified https, even on loopback.
pub fn transports(
    registry: &str,
    cfg: &RegistryConfig,
    tls_verify: Option<bool>,
) -> &'static [Transport] {
    let listed = cfg.insecure.iter().any(|i| mirror_host(i).0 == registry);
    match tls_verify {
        Some(true) => &[Transport::Https],
        Some(false) => &[Transport::HttpsUnverified, Transport::Http],
        None if listed || is_loopback(registry) => &[Transport::HttpsUnverified, Transport::Http],
        None => &[Transport::Https],
    }
}

/// A connection to the registry serving one reference.
pub struct Registry {
    client: oci_client::Client,
    /// For blob downloads (see [`Registry::blob`]); follows no redirects.
    http: reqwest::Client,
    /// With the system's CA certificates, made on first use when a blob is redirected to an
    /// https address elsewhere.
    tls: std::sync::OnceLock<reqwest::Client>,
    transport: Transport,
    auth: RegistryAuth,
    /// The Authorization header for blob requests, once known.
    authorization: tokio::sync::OnceCell<Option<String>>,
    /// The reference on the host actually used (a mirror's, for docker.io images).
    pub reference: Reference,
}

/// A self-signed certificate whose private key was thrown away when it was made: the whole trust
/// store of clients that never verify a certificate. Building an HTTP client loads and parses the
/// system's CA certificates (10 ms each time, two clients per pull); a registry reached over
/// plain http or unverified https never needs them, and oci-client has no other way to say so.
const PLACEHOLDER_CA: &[u8] = include_bytes!("placeholder-ca.der");

fn client(registry: &str, transport: Transport) -> oci_client::Client {
    let protocol = match transport {
        Transport::Http => ClientProtocol::HttpsExcept(vec![registry.to_string()]),
        Transport::Https | Transport::HttpsUnverified => ClientProtocol::Https,
    };
    let tls_certs_only = if transport == Transport::Https {
        vec![]
    } else {
        vec![oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Der,
            data: PLACEHOLDER_CA.to_vec(),
        }]
    };
    let cfg = ClientConfig {
        protocol,
        tls_certs_only,
        accept_invalid_certificates: transport == Transport::HttpsUnverified,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(120)),
        max_concurrent_download: 8,
        ..Default::default()
    };
    oci_client::Client::new(cfg)
}

/// A transfer that brings less than [`MIN_PROGRESS`] bytes in this long is given up: a slow
/// but moving link is fine, a server that stops sending (or drips a byte now and then to hold
/// den) is not. `DEN_STALL_SECS` shortens it for tests.
pub fn stall() -> Duration {
    std::env::var("DEN_STALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// The least a transfer must bring in each [`stall`] window: 16 KiB, half a kilobyte a second.
pub const MIN_PROGRESS: u64 = 16 << 10;

/// A transfer's progress, measured in windows of [`stall`].
struct Progress {
    window: tokio::time::Instant,
    bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            window: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    /// Count `n` bytes; false when a whole window brought too little.
    fn moved(&mut self, n: usize) -> bool {
        self.bytes += n as u64;
        if self.window.elapsed() < stall() {
            return true;
        }
        let enough = self.bytes >= MIN_PROGRESS;
        *self = Progress::new();
        enough
    }
}

/// The most redirects a blob request follows (a registry redirects once, to its storage).
const MAX_REDIRECTS: usize = 10;

/// The most of a server's error body den reads and shows.
const SERVER_TEXT: usize = 300;

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(stall())
        .user_agent(concat!("den/", env!("CARGO_PKG_VERSION")))
}

/// Text a server sent, made fit to print: at most [`SERVER_TEXT`] characters, control characters
/// (terminal escape sequences among them) replaced, whitespace collapsed.
pub fn server_text(raw: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if out.chars().count() >= SERVER_TEXT {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// The start of a response's body as [`server_text`], read no further than needed.
pub async fn body_text(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < 4 * SERVER_TEXT {
        match tokio::time::timeout(stall(), resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    server_text(&String::from_utf8_lossy(&buf))
}

/// The status and what the server said about it.
async fn failure_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    match body_text(resp).await {
        b if b.is_empty() => status.to_string(),
        b => format!("{status}: {b}"),
    }
}

/// An HTTP client for `transport` that follows `redirects` (a limit; 0 for none).
fn transport_client(transport: Transport, redirects: usize) -> reqwest::Client {
    let mut b = http_builder().redirect(if redirects == 0 {
        reqwest::redirect::Policy::none()
    } else {
        reqwest::redirect::Policy::limited(redirects)
    });
    if transport != Transport::Https {
        let placeholder =
            reqwest::Certificate::from_der(PLACEHOLDER_CA).expect("valid placeholder certificate");
        b = b.tls_certs_only([placeholder]);
    }
    if transport == Transport::HttpsUnverified {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().expect("an HTTP client builds")
}

/// Which of `transports` reaches `host`: the first whose `/v2/` answers at all (a registry that
/// does not speak https fails the TLS handshake at once).
async fn probe(host: &str, transports: &[Transport]) -> Transport {
    let (last, first) = transports.split_last().expect("at least one transport");
    for t in first {
        let url = format!("{}://{host}/v2/", t.scheme());
        // A server that neither answers nor closes is not worth a pull's whole read timeout.
        let req = transport_client(*t, 0)
            .get(url)
            .timeout(Duration::from_secs(5));
        if req.send().await.is_ok() {
            return *t;
        }
    }
    *last
}

impl Registry {
    fn new(reference: Reference, transport: Transport, auth: RegistryAuth) -> Registry {
        let host = reference.oci().resolve_registry().to_string();
        // Redirects are followed by hand (see `blob`): credentials must not travel with them.
        let http = transport_client(transport, 0);
        Registry {
            client: client(&host, transport),
            http,
            tls: std::sync::OnceLock::new(),
            transport,
            auth,
            authorization: tokio::sync::OnceCell::new(),
            reference,
        }
    }
}

fn classify(reference: &Reference, what: &str, e: OciDistributionError) -> RegistryError {
    let registry = reference.registry().to_string();
    let r = reference.to_string();
    match e {
        OciDistributionError::RequestError(re) if re.is_connect() || re.is_timeout() => {
            let mut msg = re.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&re);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            RegistryError::Unreachable {
                registry,
                message: msg,
            }
        }
        OciDistributionError::RequestError(re) => RegistryError::Unreachable {
            registry,
            message: crate::error::chain(&re),
        },
        OciDistributionError::ImageManifestNotFoundError(m) => RegistryError::NotFound {
            reference: r,
            message: m,
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => RegistryError::Denied {
            reference: r,
            message: "unauthorized".into(),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = server_text(
                &envelope
                    .errors
                    .iter()
                    .take(5)
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                RegistryError::NotFound {
                    reference: r,
                    message,
                }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                RegistryError::Denied {
                    reference: r,
                    message,
                }
            } else {
                RegistryError::Protocol {
                    registry,
                    what: what.into(),
                    message,
                }
            }
        }
        OciDistributionError::ServerError {
            code: 404, message, ..
        } => RegistryError::NotFound {
            reference: r,
            message: server_text(&message),
        },
        OciDistributionError::ServerError {
            code: 401 | 403,
            message,
            ..
        } => RegistryError::Denied {
            reference: r,
            message: server_text(&message),
        },
        other => RegistryError::Protocol {
            registry,
            what: what.into(),
            message: server_text(&crate::error::chain(&other)),
        },
    }
}

impl Registry {
    /// Connect for `reference`, trying docker.io's mirrors first. Checks the first manifest
    /// request, so a mirror that does not answer is skipped.
    pub async fn connect(
        reference: &Reference,
        cfg: &RegistryConfig,
        auth: RegistryAuth,
    ) -> Result<(Registry, Manifest)> {
        if reference.registry() == crate::image::reference::DOCKER_HUB {
            for m in &cfg.mirrors {
                let (host, http) = mirror_host(m);
                let transport = if http {
                    Transport::Http
                } else {
                    probe(&host, transports(&host, cfg, None)).await
                };
                let r = Registry::new(reference.on_registry(&host), transport, auth.clone());
                match r.manifest(&r.reference.clone()).await {
                    Ok(m) => return Ok((r, m)),
                    Err(e) => {
                        tracing::info!(mirror = %host, error = %e, "mirror failed; trying the next source")
                    }
                }
            }
        }
        let host = reference.registry();
        let transport = probe(
            reference.oci().resolve_registry(),
            transports(host, cfg, None),
        )
        .await;
        let r = Registry::new(reference.clone(), transport, auth);
        tracing::debug!("clients made");
        // The registry's own answer is the one to report: a mirror's failure was logged.
        let m = r.manifest(reference).await?;
        Ok((r, m))
    }

    /// Fetch the manifest (or index) `reference` names: its bytes (at most
    /// [`checks::MAX_DOCUMENT`]), their digest, and the server's Content-Type. Fetched by digest,
    /// the bytes must have that digest.
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        let r = if reference.registry() == self.reference.registry() {
            reference.clone()
        } else {
            reference.on_registry(self.reference.registry())
        };
        let what = reference.to_string();
        let unreachable = |e: reqwest::Error| self.transfer_error(&what, e);
        let tag_or_digest = r.digest().or(r.tag()).unwrap_or("latest");
        let url = format!(
            "{}://{}/v2/{}/manifests/{tag_or_digest}",
            self.transport.scheme(),
            r.oci().resolve_registry(),
            r.repository()
        );
        let mut req = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, manifest::ACCEPTED.join(", "));
        if let Some(h) = self.authorization().await? {
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            let message = failure_text(resp).await;
            return Err(match status.as_u16() {
                404 => RegistryError::NotFound {
                    reference: what,
                    message,
                },
                401 | 403 => RegistryError::Denied {
                    reference: what,
                    message,
                },
                _ => RegistryError::Protocol {
                    registry: r.registry().into(),
                    what: "a manifest request".into(),
                    message,
                },
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .map(String::from);
        let too_large = |size| {
            RegistryError::Image(crate::image::ImageError::TooLarge {
                what: format!("the manifest of {what}"),
                size,
                limit: checks::MAX_DOCUMENT,
            })
        };
        if let Some(n) = resp.content_length()
            && n > checks::MAX_DOCUMENT
        {
            return Err(too_large(n));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        let mut progress = Progress::new();
        while let Some(chunk) = self.next_chunk(&mut stream, &mut progress, &what).await? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > checks::MAX_DOCUMENT {
                return Err(too_large(body.len() as u64));
            }
        }
        let digest = Digest::of(&body);
        if let Some(want) = r.digest()
            && digest != want
        {
            return Err(RegistryError::ManifestMismatch {
                reference: what,
                expected: want.into(),
                actual: digest.to_string(),
            });
        }
        Ok(Manifest {
            bytes: body,
            digest,
            content_type,
        })
    }

    /// The next chunk of a transfer, or the end; too little progress (see [`stall`]) is an
    /// error.
    async fn next_chunk(
        &self,
        stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
        progress: &mut Progress,
        what: &str,
    ) -> Result<Option<bytes::Bytes>> {
        let stalled = || RegistryError::Stalled {
            registry: self.reference.registry().into(),
            what: what.into(),
            secs: stall().as_secs(),
        };
        match tokio::time::timeout(stall(), stream.next()).await {
            Err(_) => Err(stalled()),
            Ok(None) => Ok(None),
            Ok(Some(Ok(c))) if progress.moved(c.len()) => Ok(Some(c)),
            Ok(Some(Ok(_))) => Err(stalled()),
            Ok(Some(Err(e))) => Err(self.transfer_error(what, e)),
        }
    }

    /// A failed request or transfer: stalled (no data for [`stall`]), or unreachable.
    fn transfer_error(&self, what: &str, e: reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            RegistryError::Stalled {
                registry: self.reference.registry().into(),
                what: what.into(),
                secs: stall().as_secs(),
            }
        } else {
            RegistryError::Unreachable {
                registry: self.reference.registry().into(),
                message: server_text(&crate::error::chain(&e)),
            }
        }
    }

    /// The Authorization header for this repository: a bearer token from the registry's token
    /// service (oci-client runs the challenge), basic credentials, or none.
    async fn authorization(&self) -> Result<Option<String>> {
        let r = &self.reference;
        self.authorization
            .get_or_try_init(|| async {
                match &self.auth {
                    RegistryAuth::Bearer(token) => Ok(Some(format!("Bearer {token}"))),
                    // A token when the registry has a token service (credentials, if any, go
                    // to it); else basic credentials, or nothing.
                    RegistryAuth::Basic(..) | RegistryAuth::Anonymous => {
                        // The challenge and the token are a few hundred bytes: a registry or
                        // token service that takes a whole stall window over them (dripping
                        // its headers, say) has stalled. oci-client's own limit is per read.
                        let token = tokio::time::timeout(
                            stall(),
                            self.client.auth(
                                r.oci(),
                                &self.auth,
                                oci_client::RegistryOperation::Pull,
                            ),
                        )
                        .await
                        .map_err(|_| RegistryError::Stalled {
                            registry: r.registry().into(),
                            what: "a token".into(),
                            secs: stall().as_secs(),
                        })?
                        .map_err(|e| classify(r, "a token request", e))?;
                        Ok(match (token, &self.auth) {
                            (Some(t), _) => Some(format!("Bearer {t}")),
                            (None, RegistryAuth::Basic(user, pass)) => Some(
                                crate::auth::Credentials {
                                    username: user.clone(),
                                    password: pass.clone(),
                                }
                                .basic_header(),
                            ),
                            (None, _) => None,
                        })
                    }
                }
            })
            .await
            .cloned()
    }

    /// Stream the blob `blob` into `incoming`, verifying its digest as it arrives and reading
    /// no byte past its size; `on_bytes` sees progress. The request is den's own (oci-client
    /// would hash the stream a second time).
    pub async fn blob(
        &self,
        incoming: &Incoming,
        blob: &checks::Blob,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<std::path::PathBuf> {
        let digest = &blob.digest;
        let reference = &self.reference;
        let store_err = |source| RegistryError::Store {
            reference: reference.to_string(),
            source,
        };
        let what = format!("blob {digest}");
        let url = format!(
            "{}://{}/v2/{}/blobs/{digest}",
            self.transport.scheme(),
            reference.oci().resolve_registry(),
            reference.repository()
        );
        let authorization = self.authorization().await?;
        let mut url = reqwest::Url::parse(&url).map_err(|e| RegistryError::Protocol {
            registry: reference.registry().into(),
            what: url.clone(),
            message: e.to_string(),
        })?;
        let origin = url.origin();
        let mut hops = 0;
        let resp = loop {
            // Elsewhere (a redirect to a CDN), https is verified whatever the registry's
            // transport.
            let client = if url.scheme() == "https"
                && (url.origin() != origin || self.transport == Transport::Http)
                && self.transport != Transport::Https
            {
                self.tls
                    .get_or_init(|| transport_client(Transport::Https, 0))
            } else {
                &self.http
            };
            let mut req = client.get(url.clone());
            // Credentials go to the registry only, never to where it redirects (CVE-2020-15157).
            if let (Some(h), true) = (&authorization, url.origin() == origin) {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.transfer_error(&what, e))?;
            match resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            {
                Some(loc) if resp.status().is_redirection() => {
                    let refused = |message: String| RegistryError::Protocol {
                        registry: reference.registry().into(),
                        what: what.clone(),
                        message,
                    };
                    if hops == MAX_REDIRECTS {
                        return Err(refused(format!(
                            "redirected more than {MAX_REDIRECTS} times, the last time to {}",
                            server_text(loc)
                        )));
                    }
                    hops += 1;
                    url = url.join(loc).map_err(|e| {
                        refused(format!("a bad redirect ({e}): {}", server_text(loc)))
                    })?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(refused(format!(
                            "a redirect to {}, which is not an http or https address",
                            server_text(url.as_str())
                        )));
                    }
                }
                _ => break resp,
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let message = failure_text(resp).await;
            return Err(match status.as_u16() {
                404 => RegistryError::NotFound {
                    reference: format!("{reference} blob {digest}"),
                    message,
                },
                401 | 403 => RegistryError::Denied {
                    reference: reference.to_string(),
                    message,
                },
                _ => RegistryError::Protocol {
                    registry: reference.registry().into(),
                    what: what.clone(),
                    message,
                },
            });
        }
        let oversized = || RegistryError::Oversized {
            reference: reference.to_string(),
            digest: digest.to_string(),
            size: blob.size,
        };
        if resp.content_length().is_some_and(|n| n > blob.size) {
            return Err(oversized());
        }
        let mut w: BlobWriter = incoming.blob_writer().map_err(store_err)?;
        let mut stream = resp.bytes_stream();
        let mut progress = Progress::new();
        while let Some(chunk) = self.next_chunk(&mut stream, &mut progress, &what).await? {
            if w.len() + chunk.len() as u64 > blob.size {
                return Err(oversized());
            }
            w.write(&chunk).map_err(store_err)?;
            on_bytes(chunk.len() as u64);
        }
        incoming
            .commit_blob(w, digest)
            .map_err(|source| match source {
                crate::store::StoreError::DigestMismatch { .. } => RegistryError::Tampered {
                    reference: reference.to_string(),
                    digest: digest.to_string(),
                    source,
                },
                other => store_err(other),
            })
    }
}

/// A manifest or index as a registry served it.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub content_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_may_use_plain_http() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
            "x.localhost:80",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "registry.lan:5000",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn https_comes_first_and_insecure_registries_may_fall_back() {
        use Transport::*;
        let cfg = RegistryConfig {
            mirrors: vec![],
            insecure: vec!["lan.example:5000".into()],
        };
        let insecure: &[Transport] = &[HttpsUnverified, Http];
        assert_eq!(transports("127.0.0.1:5000", &cfg, None), insecure);
        assert_eq!(transports("localhost", &cfg, None), insecure);
        assert_eq!(transports("lan.example:5000", &cfg, None), insecure);
        assert_eq!(transports("quay.io", &cfg, None), &[Https]);
        assert_eq!(transports("quay.io", &cfg, Some(false)), insecure);
        // Asked to verify, den never speaks plain http, even on loopback.
        assert_eq!(transports("127.0.0.1:5000", &cfg, Some(true)), &[Https]);
    }

    #[test]
    fn mirror_entries_parse() {
        assert_eq!(
            mirror_host("https://m.example:5000/"),
            ("m.example:5000".into(), false)
        );
        assert_eq!(mirror_host("http://m.local"), ("m.local".into(), true));
        assert_eq!(mirror_host("m.example"), ("m.example".into(), false));
    }
}

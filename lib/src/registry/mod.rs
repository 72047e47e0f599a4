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
//!
//! The parts: `transport` (where and how to connect), `authorization` (the header for a
//! repository, and what oci-client's errors mean), `manifest` and `blob` (the two fetches),
//! `transfer` (stalls, and a server's text made fit to print), `session` (login and push).

mod authorization;
mod blob;
mod manifest;
pub mod session;
mod transfer;
mod transport;

use oci_client::secrets::RegistryAuth;

use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::error::Diagnose;
use crate::image::Reference;

pub use transfer::{MIN_PROGRESS, body_text, server_text, stall};
pub use transport::{Transport, is_loopback, transports};
use transport::{client, mirror_host, probe, transport_client};

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
    /// Asked of den, not of a registry: a push names a tag.
    #[error("cannot push to {0}: a push names a tag, not a digest")]
    PushDigest(String),
    #[error("no registry to search for {0:?}: the term names none and config.toml lists none")]
    NoSearchRegistry(String),
    /// Verified https needs the system's CA certificates, and this host has none that load.
    #[error("cannot verify {registry}'s certificate: {message}")]
    NoTrustStore { registry: String, message: String },
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
            RegistryError::PushDigest(_) => "push to NAME:TAG; the registry computes the digest".into(),
            RegistryError::NoTrustStore { registry, .. } => format!(
                "install the system's CA certificates (Debian: apt-get install ca-certificates) or \
                 point SSL_CERT_FILE at a bundle; to reach {registry} without verifying it, pass \
                 --tls-verify=false"
            ),
            RegistryError::NoSearchRegistry(t) => {
                format!(
                    "name the registry in the term: den search REGISTRY/{t} (e.g. localhost:5000/{t}), \
                     or list registries to search in config.toml: [registry] search = [\"REGISTRY\"]"
                )
            }
        })
    }
}

impl RegistryError {
    /// Whether a registry (or the way to it) failed, rather than den's request: docker's login
    /// and push exit 1 then, and 125 for their own mistakes.
    pub fn from_registry(&self) -> bool {
        !matches!(
            self,
            RegistryError::PushDigest(_)
                | RegistryError::NoSearchRegistry(_)
                | RegistryError::NoTrustStore { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;

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

impl Registry {
    /// A registry reached over `transport`, with `http`, that transport's client following no
    /// redirects (they are followed by hand, see `blob`: credentials must not travel with them).
    fn new(
        reference: Reference,
        (transport, http): (Transport, reqwest::Client),
        auth: RegistryAuth,
    ) -> Result<Registry> {
        let host = reference.oci().resolve_registry().to_string();
        Ok(Registry {
            client: client(&host, transport)?,
            http,
            tls: std::sync::OnceLock::new(),
            transport,
            auth,
            authorization: tokio::sync::OnceCell::new(),
            reference,
        })
    }

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
                let reached = if http {
                    (
                        Transport::Http,
                        transport_client(&host, Transport::Http, 0)?,
                    )
                } else {
                    probe(&host, transports(&host, cfg, None)).await?
                };
                let r = Registry::new(reference.on_registry(&host), reached, auth.clone())?;
                match r.manifest(&r.reference.clone()).await {
                    Ok(m) => return Ok((r, m)),
                    Err(e) => {
                        tracing::info!(mirror = %host, error = %e, "mirror failed; trying the next source")
                    }
                }
            }
        }
        let host = reference.registry();
        let reached = probe(
            reference.oci().resolve_registry(),
            transports(host, cfg, None),
        )
        .await?;
        let r = Registry::new(reference.clone(), reached, auth)?;
        tracing::debug!("clients made");
        // The registry's own answer is the one to report: a mirror's failure was logged.
        let m = r.manifest(reference).await?;
        Ok((r, m))
    }
}

/// A manifest or index as a registry served it.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub content_type: Option<String>,
}

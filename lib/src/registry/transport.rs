//! Where and how den connects to a registry: which transports to try (https first; unverified
//! https, then plain http, for insecure registries), the HTTP clients for each, and the probe that
//! picks one.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};

use super::transfer::stall;
use crate::config::RegistryConfig;

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
pub(super) fn mirror_host(entry: &str) -> (String, bool) {
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

/// A self-signed certificate whose private key was thrown away when it was made: the whole trust
/// store of clients that never verify a certificate. Building an HTTP client loads and parses the
/// system's CA certificates (10 ms each time, two clients per pull); a registry reached over
/// plain http or unverified https never needs them, and oci-client has no other way to say so.
const PLACEHOLDER_CA: &[u8] = include_bytes!("placeholder-ca.der");

pub(super) fn client(registry: &str, transport: Transport) -> oci_client::Client {
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

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(stall())
        .user_agent(concat!("den/", env!("CARGO_PKG_VERSION")))
}

/// An HTTP client for `transport` that follows `redirects` (a limit; 0 for none).
pub(super) fn transport_client(transport: Transport, redirects: usize) -> reqwest::Client {
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
pub(super) async fn probe(host: &str, transports: &[Transport]) -> Transport {
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
            search: vec![],
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

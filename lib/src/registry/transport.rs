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

/// Make ring the process's TLS provider, before any client is built (reqwest and oci-client
/// take the process default). aws-lc-rs, reqwest's own default, seeds its random generator
/// from CPU jitter: 45 ms of CPU at the first handshake, which every pull and push paid, even to a
/// plain-http registry (https is tried first). ring takes its randomness from getrandom(2).
fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Already installed (by a test harness, say): that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(super) fn client(
    registry: &str,
    transport: Transport,
) -> Result<oci_client::Client, super::RegistryError> {
    tls_provider();
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
    // try_from, not new: new falls back to a default client (the system's trust store) when
    // the configured one cannot be built.
    oci_client::Client::try_from(cfg).map_err(|e| no_trust_store(registry, e))
}

/// A client that could not be built: with rustls and den's settings, only verified https can
/// fail, when the system's CA certificates are missing.
fn no_trust_store(registry: &str, e: impl std::error::Error) -> super::RegistryError {
    super::RegistryError::NoTrustStore {
        registry: registry.to_string(),
        message: crate::error::chain(&e),
    }
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(stall())
        .user_agent(concat!("den/", env!("CARGO_PKG_VERSION")))
}

/// An HTTP client for `transport` to `registry` that follows `redirects` (a limit; 0 for none).
pub(super) fn transport_client(
    registry: &str,
    transport: Transport,
    redirects: usize,
) -> Result<reqwest::Client, super::RegistryError> {
    tls_provider();
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
    b.build().map_err(|e| no_trust_store(registry, e))
}

/// What `/v2/` said over one transport.
pub(super) type Answer = reqwest::Result<reqwest::Response>;

/// Whether an answer is a registry's: 2xx, or 401 with (or without) a challenge.
fn from_registry(answer: &Answer) -> bool {
    answer
        .as_ref()
        .is_ok_and(|r| r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED)
}

/// Ask a registry's `/v2/` over every one of `transports` at once, `ask(t)` the request. The
/// first registry answer (2xx or 401) decides at once: a port that answers plain http as a
/// registry is no TLS port, and a TLS handshake that succeeds was no plain-http one, so racing
/// picks what docker's one-after-another order picks, without waiting on the failing handshake
/// (50 ms against the Go registry on loopback). Without a registry answer, every transport's
/// answer, in `transports`' order.
pub(super) async fn ask_v2(
    transports: &[Transport],
    ask: impl Fn(Transport) -> reqwest::RequestBuilder,
) -> Result<(Transport, reqwest::Response), Vec<(Transport, Answer)>> {
    use futures_util::StreamExt;
    let mut asks: futures_util::stream::FuturesUnordered<_> = transports
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let req = ask(*t);
            async move { (i, req.send().await) }
        })
        .collect();
    let mut answers: Vec<Option<Answer>> = transports.iter().map(|_| None).collect();
    while let Some((i, answer)) = asks.next().await {
        if from_registry(&answer) {
            return Ok((transports[i], answer.expect("a registry answer")));
        }
        answers[i] = Some(answer);
    }
    Err(transports
        .iter()
        .zip(answers)
        .map(|(t, a)| (*t, a.expect("every ask answered")))
        .collect())
}

/// Which of `transports` reaches `host`: the one that answers as a registry ([`ask_v2`]), else
/// the first that answers at all, else the last; with its client (no redirects followed), whose
/// connection the probe left open.
pub(super) async fn probe(
    host: &str,
    transports: &[Transport],
) -> Result<(Transport, reqwest::Client), super::RegistryError> {
    if let [only] = transports {
        return Ok((*only, transport_client(host, *only, 0)?));
    }
    let mut clients = transports
        .iter()
        .map(|t| transport_client(host, *t, 0).map(|c| (*t, c)))
        .collect::<Result<Vec<_>, _>>()?;
    // A server that neither answers nor closes is not worth a pull's whole read timeout.
    let ask = |t: Transport| {
        let (_, c) = clients
            .iter()
            .find(|(k, _)| *k == t)
            .expect("a client per transport");
        c.get(format!("{}://{host}/v2/", t.scheme()))
            .timeout(Duration::from_secs(5))
    };
    let chosen = match ask_v2(transports, ask).await {
        Ok((t, _)) => t,
        Err(answers) => answers
            .iter()
            .find(|(_, a)| a.is_ok())
            .map(|(t, _)| *t)
            .unwrap_or(*transports.last().expect("at least one transport")),
    };
    let at = clients
        .iter()
        .position(|(t, _)| *t == chosen)
        .expect("a client per transport");
    Ok(clients.swap_remove(at))
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

    /// A server on loopback answering every request with `reply` (None: accepts and never
    /// answers); its port.
    fn server(reply: Option<&'static str>) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut c in l.incoming().flatten() {
                use std::io::{Read, Write};
                let mut b = [0u8; 1024];
                let _ = c.read(&mut b);
                match reply {
                    Some(r) => drop(c.write_all(r.as_bytes())),
                    None => held.push(c),
                }
            }
        });
        port
    }

    /// Ask each transport's `/v2/` of the server given for it (all plain http underneath).
    fn ask(ports: &[(Transport, u16)]) -> Result<(Transport, u16), Vec<(Transport, u16)>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let transports: Vec<Transport> = ports.iter().map(|(t, _)| *t).collect();
        let port = |t: Transport| ports.iter().find(|(p, _)| *p == t).unwrap().1;
        let client = transport_client("127.0.0.1", Transport::Http, 0).unwrap();
        let req = |t: Transport| {
            client
                .get(format!("http://127.0.0.1:{}/v2/", port(t)))
                .timeout(Duration::from_millis(500))
        };
        let status = |a: &Answer| a.as_ref().map_or(0, |r| r.status().as_u16());
        rt.block_on(ask_v2(&transports, req))
            .map(|(t, r)| (t, r.status().as_u16()))
            .map_err(|all| all.iter().map(|(t, a)| (*t, status(a))).collect())
    }

    #[test]
    fn a_registry_answer_decides_without_waiting_on_the_other_transport() {
        use Transport::*;
        let registry = server(Some(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        ));
        let silent = server(None);
        let not_registry = server(Some(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        ));
        let t0 = std::time::Instant::now();
        assert_eq!(
            ask(&[(HttpsUnverified, silent), (Http, registry)]),
            Ok((Http, 401))
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "no wait on the silent one"
        );
        // Whichever transport the registry is on wins; a 400 is no registry's answer.
        assert_eq!(
            ask(&[(HttpsUnverified, registry), (Http, not_registry)]),
            Ok((HttpsUnverified, 401))
        );
        // No registry: every answer, in the transports' order (0: none came).
        assert_eq!(
            ask(&[(HttpsUnverified, not_registry), (Http, silent)]),
            Err(vec![(HttpsUnverified, 400), (Http, 0)])
        );
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

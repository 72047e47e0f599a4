//! A token service for `docker-registry`'s bearer-token authentication, as Docker Hub runs one:
//! the registry answers 401 with a `WWW-Authenticate: Bearer realm=...` challenge, the client
//! asks the realm for a token with the scopes it needs, and the registry checks the token's
//! ES256 signature against the certificate it was configured with.
//!
//! Policy: anyone may pull; users in `users` (HTTP basic credentials) may also push.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;

pub struct TokenService {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// The certificate the registry trusts (PEM).
    pub cert_pem: PathBuf,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

impl TokenService {
    /// Start the service; `dir` receives its key and certificate.
    pub fn start(dir: &std::path::Path, users: &[(&str, &str)]) -> TokenService {
        std::fs::create_dir_all(dir).unwrap();
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args(["-subj", "/CN=den test token issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pem_der(&std::fs::read_to_string(&key).unwrap()),
        )
        .expect("PKCS#8 key");
        let cert_der = pem_der(&std::fs::read_to_string(&cert).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = "den-test-issuer".to_string();
        let service = "den-test-registry".to_string();
        let users: Arc<Vec<String>> =
            Arc::new(users.iter().map(|(u, p)| format!("{u}:{p}")).collect());
        let ctx = Arc::new((pair, cert_der, issuer.clone(), service.clone()));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (ctx, users) = (ctx.clone(), users.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut request = String::new();
                    let _ = reader.read_line(&mut request);
                    let mut authorization = None;
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if let Some(v) = line
                            .strip_prefix("Authorization: Basic ")
                            .or_else(|| line.strip_prefix("authorization: Basic "))
                        {
                            authorization = base64::engine::general_purpose::STANDARD
                                .decode(v.trim())
                                .ok()
                                .map(|b| String::from_utf8_lossy(&b).into_owned());
                        }
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let mut query = path
                        .split_once('?')
                        .map(|(_, q)| q)
                        .unwrap_or("")
                        .to_string();
                    // docker's identity tokens: an OAuth2 refresh-token grant, POSTed as a form.
                    // The test service's refresh token for a user is `idtoken-USER`.
                    if request.starts_with("POST") {
                        let mut body = vec![0u8; length.min(1 << 16)];
                        let _ = std::io::Read::read_exact(&mut reader, &mut body);
                        let body = String::from_utf8_lossy(&body).into_owned();
                        let field = |name: &str| {
                            body.split('&')
                                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                                .unwrap_or("")
                                .to_string()
                        };
                        let refresh = field("refresh_token");
                        authorization = Some(
                            users
                                .iter()
                                .find(|u| {
                                    field("grant_type") == "refresh_token"
                                        && u.split(':').next().map(|n| format!("idtoken-{n}"))
                                            == Some(refresh.clone())
                                })
                                .cloned()
                                .unwrap_or_else(|| "refused:".into()),
                        );
                        query = field("scope")
                            .split("%20")
                            .map(|s| format!("scope={s}"))
                            .collect::<Vec<_>>()
                            .join("&");
                    }
                    let known = authorization.as_ref().is_some_and(|a| users.contains(a));
                    let (status, body) = if authorization.is_some() && !known {
                        ("401 Unauthorized", r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#.to_string())
                    } else {
                        let access: Vec<String> = query
                            .split('&')
                            .filter_map(|kv| kv.strip_prefix("scope="))
                            .map(|s| {
                                s.replace("%3A", ":")
                                    .replace("%2F", "/")
                                    .replace("%2C", ",")
                            })
                            .filter_map(|scope| {
                                let mut it = scope.splitn(3, ':');
                                let (kind, name, actions) = (it.next()?, it.next()?, it.next()?);
                                let allowed: Vec<&str> = actions
                                    .split(',')
                                    .filter(|a| *a == "pull" || known)
                                    .collect();
                                Some(format!(
                                    r#"{{"type":"{kind}","name":"{name}","actions":{}}}"#,
                                    serde_json::to_string(&allowed).unwrap()
                                ))
                            })
                            .collect();
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs();
                        let (pair, cert_der, issuer, service) = &*ctx;
                        let header = format!(
                            r#"{{"typ":"JWT","alg":"ES256","x5c":["{}"]}}"#,
                            base64::engine::general_purpose::STANDARD.encode(cert_der)
                        );
                        let claims = format!(
                            r#"{{"iss":"{issuer}","sub":"{}","aud":"{service}","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
                            authorization
                                .as_deref()
                                .and_then(|a| a.split(':').next())
                                .unwrap_or(""),
                            now + 300,
                            now - 10,
                            std::process::id(),
                            access.join(",")
                        );
                        let signing_input = format!(
                            "{}.{}",
                            b64url(header.as_bytes()),
                            b64url(claims.as_bytes())
                        );
                        let rng = aws_lc_rs::rand::SystemRandom::new();
                        let sig = pair.sign(&rng, signing_input.as_bytes()).expect("sign");
                        let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
                        (
                            "200 OK",
                            format!(
                                r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#
                            ),
                        )
                    };
                    let mut conn = conn;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        TokenService {
            realm: format!("http://{addr}/token"),
            service,
            issuer,
            cert_pem: cert,
        }
    }

    /// The `auth:` section of a docker-registry config that trusts this service.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm,
            self.service,
            self.issuer,
            self.cert_pem.display()
        )
    }
}

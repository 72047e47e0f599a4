//! A session with one registry for `login` and `push`: authentication and uploads.
//!
//! Written on reqwest rather than through oci-client (which den uses to pull) because push needs
//! three things that client cannot do:
//!
//! * **One token for several repositories.** Mounting a blob from `alice/app` into `bob/app`
//!   needs `pull` on the first and `push` on the second in the same token; oci-client asks for
//!   one repository's scope at a time, and its mounts would silently fall back to uploads.
//! * **Checking a password.** `den login` must fail on a wrong password. Against a registry with
//!   HTTP basic auth, oci-client only remembers the credentials; it never tries them.
//! * **Uploads from the store's files**, a chunk at a time, without holding a layer in memory.
//!
//! The protocol is the OCI distribution spec's: a `GET /v2/` names the auth scheme in its
//! `WWW-Authenticate` challenge (none, `Basic`, or `Bearer realm=... service=...`); for `Bearer`
//! the token service is asked for a token with `scope=repository:NAME:ACTIONS` parameters, sending
//! the user's credentials (if any) as basic auth. Blobs are checked with `HEAD`, mounted with
//! `POST .../blobs/uploads/?mount=D&from=REPO`, uploaded with `POST` then `PUT ?digest=` (one
//! request) or `PATCH` chunks then `PUT` (large blobs); the manifest goes last, with `PUT`.
//! Credentials are sent only to the registry and its token service, never logged.

use crate::auth::Credentials;
use crate::config::RegistryConfig;

use super::{RegistryError, Result, Transport};

/// What `GET /v2/` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The registry answered without asking for credentials.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A small runtime for one registry conversation (a login, a push).
pub fn runtime() -> std::result::Result<tokio::runtime::Runtime, crate::store::StoreError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| crate::store::StoreError::Io {
            path: "tokio runtime".into(),
            source: e,
        })
}

/// Parse a `WWW-Authenticate` header: `Bearer realm="...",service="...",scope="..."`.
pub fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let mut realm = None;
    let mut service = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_string(), &q[end + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        match key.as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
        rest = after.trim_start_matches([',', ' ']);
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service },
        None => Challenge::None,
    }
}

/// Trade docker's identity token (an OAuth2 refresh token) for a registry token, as docker
/// does: `POST realm` with `grant_type=refresh_token` and the scopes, answered with
/// `{"access_token": ...}` (distribution's token spec, "OAuth2 token authentication").
pub(super) async fn oauth_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    refresh_token: &str,
) -> Result<String> {
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.to_string()),
        ("client_id", "den".to_string()),
        ("scope", scopes.join(" ")),
    ];
    if let Some(s) = service {
        form.push(("service", s.to_string()));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let resp = http
        .post(realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| RegistryError::Unreachable {
            registry: registry.into(),
            message: crate::error::chain(&e),
        })?;
    let status = resp.status();
    if status.is_client_error() {
        return Err(RegistryError::BadCredentials {
            registry: registry.into(),
            user: crate::auth::helper::IDENTITY_TOKEN_USER.into(),
            message: format!("the token service refused the identity token: {status}"),
        });
    }
    let protocol = |message: String| RegistryError::Protocol {
        registry: registry.into(),
        what: "an identity token's exchange".into(),
        message,
    };
    if !status.is_success() {
        return Err(protocol(status.to_string()));
    }
    let bytes = resp.bytes().await.map_err(|e| protocol(e.to_string()))?;
    if bytes.len() > 1 << 20 {
        return Err(protocol("the answer is larger than 1 MiB".into()));
    }
    #[derive(serde::Deserialize)]
    struct OAuthResponse {
        access_token: Option<String>,
        token: Option<String>,
    }
    let t: OAuthResponse = serde_json::from_slice(&bytes).map_err(|e| protocol(e.to_string()))?;
    t.access_token
        .or(t.token)
        .ok_or_else(|| protocol("the answer has no access_token".into()))
}

/// Percent-encoding of one value for a query string or an
/// `application/x-www-form-urlencoded` body: RFC 3986's unreserved characters kept, every other
/// byte as `%XX`.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blob to upload: where it is in the store and what it is.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: crate::digest::Digest,
    pub size: u64,
    pub path: std::path::PathBuf,
}

/// How a blob reached the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// The registry already had it in this repository.
    Exists,
    /// Mounted from another repository on the same registry.
    Mounted(String),
    /// Uploaded, in this many requests carrying data.
    Pushed { requests: u32 },
}

/// A session with one registry.
pub struct Session {
    http: reqwest::Client,
    /// `http://host` or `https://host`.
    base: String,
    registry: String,
    creds: Option<Credentials>,
    challenge: Challenge,
    /// Scopes asked for with every token (`repository:NAME:pull,push`).
    scopes: Vec<String>,
    /// The `Authorization` header for requests to the registry, once known.
    authorization: tokio::sync::Mutex<Option<Option<String>>>,
    /// Uploads larger than this go in PATCH chunks of this size.
    pub chunk_size: u64,
}

impl Session {
    /// Reach `registry` and learn how it authenticates, over the first of its
    /// [`super::transports`] whose `/v2/` answers as a registry does: 2xx, or 401 with a
    /// challenge. Anything else (a 400 from an https server spoken to in plain http, a 404 from
    /// a web server) is no registry, and the next transport is tried.
    pub async fn open(
        registry: &str,
        cfg: &RegistryConfig,
        tls_verify: Option<bool>,
        creds: Option<Credentials>,
    ) -> Result<Session> {
        let host = if registry == crate::image::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let transports = super::transports(registry, cfg, tls_verify);
        let url = |t: Transport| format!("{}://{host}/v2/", t.scheme());
        // One client per transport, the winner's kept with its connection.
        let clients = transports
            .iter()
            .map(|t| super::transport_client(host, *t, 5).map(|c| (*t, c)))
            .collect::<Result<Vec<(Transport, reqwest::Client)>>>()?;
        let client_for = |t: Transport| {
            clients
                .iter()
                .find(|(c, _)| *c == t)
                .map(|(_, http)| http.clone())
                .expect("a client per transport")
        };
        let ask = |t: Transport| client_for(t).get(url(t));
        let (transport, resp) = match super::transport::ask_v2(transports, ask).await {
            Ok(won) => won,
            // The last transport's failure is the one to report (plain http, where allowed).
            Err(mut answers) => {
                let (t, answer) = answers.pop().expect("at least one transport");
                return Err(match answer {
                    Err(e) => RegistryError::Unreachable {
                        registry: registry.into(),
                        message: crate::error::chain(&e),
                    },
                    Ok(resp) => RegistryError::NotARegistry {
                        registry: registry.into(),
                        url: url(t),
                        status: resp.status().to_string(),
                    },
                });
            }
        };
        let challenge = match resp.status() {
            reqwest::StatusCode::UNAUTHORIZED => resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .map(parse_challenge)
                .unwrap_or(Challenge::Basic),
            _ => Challenge::None,
        };
        let base = format!("{}://{host}", transport.scheme());
        tracing::debug!(%base, ?challenge, "registry reached");
        Ok(Session {
            http: client_for(transport),
            base,
            registry: registry.into(),
            creds,
            challenge,
            scopes: Vec::new(),
            authorization: tokio::sync::Mutex::new(None),
            chunk_size: chunk_size(),
        })
    }

    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Check the session's credentials, as `den login` does: a basic-auth registry must accept
    /// them on `/v2/`, a token service must issue a token for them.
    pub async fn check_login(&self) -> Result<()> {
        let Some(creds) = &self.creds else {
            return Ok(());
        };
        let wrong = |status: reqwest::StatusCode| RegistryError::BadCredentials {
            registry: self.registry.clone(),
            user: creds.username.clone(),
            message: status.to_string(),
        };
        let resp = match &self.challenge {
            Challenge::None => return Ok(()),
            Challenge::Basic => self
                .http
                .get(format!("{}/v2/", self.base))
                .header(reqwest::header::AUTHORIZATION, creds.basic_header())
                .send()
                .await
                .map_err(|e| self.unreachable(e))?,
            Challenge::Bearer { realm, service } => {
                let mut q: Vec<(&str, &str)> = vec![("account", &creds.username)];
                if let Some(s) = service {
                    q.push(("service", s));
                }
                self.http
                    .get(realm)
                    .query(&q)
                    .header(reqwest::header::AUTHORIZATION, creds.basic_header())
                    .send()
                    .await
                    .map_err(|e| self.unreachable(e))?
            }
        };
        match resp.status() {
            s if s.is_success() => Ok(()),
            s @ (reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN) => {
                Err(wrong(s))
            }
            s => Err(RegistryError::Protocol {
                registry: self.registry.clone(),
                what: "the login".into(),
                message: s.to_string(),
            }),
        }
    }

    /// Ask for these scopes with every token (call before the first request).
    pub fn set_scopes(&mut self, scopes: Vec<String>) {
        self.scopes = scopes;
    }

    fn unreachable(&self, e: reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            message: crate::error::chain(&e),
        }
    }

    /// The Authorization header, fetching a token the first time (or again after `reset`).
    async fn authorization(&self, reset: bool) -> Result<Option<String>> {
        let mut guard = self.authorization.lock().await;
        if !reset && let Some(h) = &*guard {
            return Ok(h.clone());
        }
        let header = match &self.challenge {
            Challenge::None => None,
            Challenge::Basic => self.creds.as_ref().map(|c| c.basic_header()),
            Challenge::Bearer { realm, service } => {
                if let Some(token) = self.creds.as_ref().and_then(|c| c.identity_token()) {
                    let t = oauth_token(
                        &self.http,
                        &self.registry,
                        realm,
                        service.as_deref(),
                        &self.scopes,
                        token,
                    )
                    .await?;
                    *guard = Some(Some(format!("Bearer {t}")));
                    return Ok(Some(format!("Bearer {t}")));
                }
                let mut q: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = service {
                    q.push(("service", s));
                }
                for s in &self.scopes {
                    q.push(("scope", s));
                }
                if let Some(c) = &self.creds {
                    q.push(("account", &c.username));
                }
                let mut req = self.http.get(realm).query(&q);
                if let Some(c) = &self.creds {
                    req = req.header(reqwest::header::AUTHORIZATION, c.basic_header());
                }
                let resp = req.send().await.map_err(|e| self.unreachable(e))?;
                let status = resp.status();
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN
                {
                    return Err(match &self.creds {
                        Some(c) => RegistryError::BadCredentials {
                            registry: self.registry.clone(),
                            user: c.username.clone(),
                            message: status.to_string(),
                        },
                        None => RegistryError::Denied {
                            reference: self.registry.clone(),
                            message: format!("the token service answered {status}"),
                        },
                    });
                }
                if !status.is_success() {
                    return Err(RegistryError::Protocol {
                        registry: self.registry.clone(),
                        what: "a token request".into(),
                        message: status.to_string(),
                    });
                }
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: TokenResponse = resp.json().await.map_err(|e| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    what: "a token request".into(),
                    message: e.to_string(),
                })?;
                t.token.or(t.access_token).map(|t| format!("Bearer {t}"))
            }
        };
        *guard = Some(header.clone());
        Ok(header)
    }

    /// GET `path` (with its query) on the registry, with authorization: the status, the `Link`
    /// header (the catalog's next page) and at most `cap` bytes of the body.
    pub async fn get(&self, path: &str, cap: usize) -> Result<(u16, Option<String>, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let mut resp = self.send(|| self.http.get(&url)).await?;
        let link = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(e))? {
            if body.len() + chunk.len() > cap {
                return Err(RegistryError::Protocol {
                    registry: self.registry.clone(),
                    what: path.into(),
                    message: format!("an answer over {cap} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, link, body))
    }

    /// Send a request built by `make`, with authorization; a 401 fetches a new token and
    /// tries once more (tokens expire).
    async fn send(&self, make: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let mut reset = false;
        loop {
            let mut req = make();
            if let Some(h) = self.authorization(reset).await? {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|e| self.unreachable(e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !reset {
                reset = true;
                continue;
            }
            return Ok(resp);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolve an upload `Location` (often relative) against the registry.
    fn location(&self, resp: &reqwest::Response) -> Result<reqwest::Url> {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry.clone(),
                what: "an upload".into(),
                message: "no Location header".into(),
            })?;
        reqwest::Url::parse(&self.base)
            .and_then(|b| b.join(loc))
            .map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                what: "an upload".into(),
                message: e.to_string(),
            })
    }

    async fn failure(&self, repo: &str, what: &str, resp: reqwest::Response) -> RegistryError {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let message = match body.trim() {
            "" => status.to_string(),
            b => format!("{status}: {b}"),
        };
        let reference = format!("{}/{repo}", self.registry);
        match status.as_u16() {
            401 | 403 => RegistryError::PushDenied {
                reference,
                logged_in: self.creds.is_some(),
                message,
            },
            404 => RegistryError::NotFound { reference, message },
            _ => RegistryError::Protocol {
                registry: self.registry.clone(),
                what: what.into(),
                message,
            },
        }
    }

    /// Whether `repo` has the blob.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(|| self.http.head(&url)).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failure(repo, "a blob check", resp).await),
        }
    }

    /// Put `blob` into `repo`: nothing if there, a mount from one of `sources` if one has it,
    /// else an upload. `on_bytes` sees upload progress.
    pub async fn put_blob(
        &self,
        repo: &str,
        blob: &Blob,
        sources: &[String],
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Landed> {
        if self.has_blob(repo, blob.digest.as_str()).await? {
            return Ok(Landed::Exists);
        }
        let uploads = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let mut session = None;
        for from in sources.iter().filter(|s| s.as_str() != repo) {
            let resp = self
                .send(|| {
                    self.http
                        .post(&uploads)
                        .query(&[("mount", blob.digest.as_str()), ("from", from.as_str())])
                        .header(reqwest::header::CONTENT_LENGTH, "0")
                })
                .await?;
            match resp.status().as_u16() {
                201 => return Ok(Landed::Mounted(from.clone())),
                // Not mountable: the registry opened an ordinary upload instead.
                202 => {
                    session = Some(self.location(&resp)?);
                    break;
                }
                _ => tracing::debug!(%from, status = %resp.status(), "mount refused"),
            }
        }
        let location = match session {
            Some(l) => l,
            None => {
                let resp = self
                    .send(|| {
                        self.http
                            .post(&uploads)
                            .header(reqwest::header::CONTENT_LENGTH, "0")
                    })
                    .await?;
                if resp.status().as_u16() != 202 {
                    return Err(self.failure(repo, "an upload", resp).await);
                }
                self.location(&resp)?
            }
        };
        let requests = self.upload(repo, blob, location, on_bytes).await?;
        Ok(Landed::Pushed { requests })
    }

    /// Send the blob's bytes to an upload session: one `PUT` for a blob up to the chunk size,
    /// `PATCH` chunks then an empty `PUT` above it. Reads a chunk at a time from the store.
    async fn upload(
        &self,
        repo: &str,
        blob: &Blob,
        mut location: reqwest::Url,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u32> {
        use tokio::io::AsyncReadExt;
        let io = |source| RegistryError::Store {
            reference: format!("{}/{repo}", self.registry),
            source: crate::store::StoreError::Io {
                path: blob.path.clone(),
                source,
            },
        };
        let mut file = tokio::fs::File::open(&blob.path).await.map_err(io)?;
        let mut requests = 0;
        let mut offset = 0u64;
        let chunked = blob.size > self.chunk_size;
        while chunked && offset < blob.size {
            let n = self.chunk_size.min(blob.size - offset);
            let mut chunk = vec![0u8; n as usize];
            file.read_exact(&mut chunk).await.map_err(io)?;
            let chunk = bytes::Bytes::from(chunk);
            let range = format!("{}-{}", offset, offset + n - 1);
            let resp = self
                .send(|| {
                    self.http
                        .patch(location.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .header(reqwest::header::CONTENT_RANGE, &range)
                        .header(reqwest::header::CONTENT_LENGTH, n)
                        .body(chunk.clone())
                })
                .await?;
            if resp.status().as_u16() != 202 {
                return Err(self.failure(repo, "a chunk upload", resp).await);
            }
            location = self.location(&resp)?;
            requests += 1;
            offset += n;
            on_bytes(n);
        }
        let body = if chunked {
            bytes::Bytes::new()
        } else {
            let mut all = Vec::with_capacity(blob.size as usize);
            file.read_to_end(&mut all).await.map_err(io)?;
            bytes::Bytes::from(all)
        };
        let len = body.len() as u64;
        location
            .query_pairs_mut()
            .append_pair("digest", blob.digest.as_str());
        let resp = self
            .send(|| {
                self.http
                    .put(location.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(body.clone())
            })
            .await?;
        if resp.status().as_u16() != 201 {
            return Err(self.failure(repo, "an upload", resp).await);
        }
        if len > 0 {
            requests += 1;
            on_bytes(len);
        }
        Ok(requests)
    }

    /// Put a manifest under `tag`; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(|| {
                self.http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.failure(repo, "the manifest upload", resp).await);
        }
        // The manifest went byte for byte: its digest is ours to compute, not the server's to say.
        Ok(crate::digest::Digest::of(bytes).to_string())
    }
}

/// The upload chunk size: 32 MiB, or `DEN_PUSH_CHUNK_SIZE` bytes (tests use small chunks to
/// exercise chunked uploads).
fn chunk_size() -> u64 {
    std::env::var("DEN_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &u64| *n > 0)
        .unwrap_or(32 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(parse_challenge(r#"Basic realm="x""#), Challenge::Basic);
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a:pull""#
            ),
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("reg".into())
            }
        );
        assert_eq!(
            parse_challenge("bearer realm=https://auth.example/t, service=s"),
            Challenge::Bearer {
                realm: "https://auth.example/t".into(),
                service: Some("s".into())
            }
        );
        assert_eq!(parse_challenge("Negotiate"), Challenge::None);
    }
}

//! The Authorization header for a repository's requests: a bearer token from the registry's
//! token service (oci-client runs the challenge), basic credentials, or none; and what
//! oci-client's errors mean for the user.

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use super::transfer::{server_text, stall};
use super::{Registry, RegistryError, Result};
use crate::auth::helper::IDENTITY_TOKEN_USER;
use crate::image::Reference;

impl Registry {
    /// The Authorization header for this repository: a bearer token from the registry's token
    /// service (oci-client runs the challenge), basic credentials, or none.
    pub(super) async fn authorization(&self) -> Result<Option<String>> {
        let r = &self.reference;
        self.authorization
            .get_or_try_init(|| async {
                match &self.auth {
                    RegistryAuth::Bearer(token) => Ok(Some(format!("Bearer {token}"))),
                    RegistryAuth::Basic(user, token) if user == IDENTITY_TOKEN_USER => {
                        self.identity_authorization(token).await
                    }
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
}

impl Registry {
    /// The Authorization header for docker's identity token: the registry's challenge, then
    /// the token service's OAuth2 exchange for a pull token (oci-client sends credentials as
    /// basic auth only).
    async fn identity_authorization(&self, token: &str) -> Result<Option<String>> {
        let r = &self.reference;
        let host = r.oci().resolve_registry().to_string();
        let url = format!("{}://{host}/v2/", self.transport.scheme());
        let resp = tokio::time::timeout(stall(), self.http.get(&url).send())
            .await
            .map_err(|_| RegistryError::Stalled {
                registry: r.registry().into(),
                what: "the registry's challenge".into(),
                secs: stall().as_secs(),
            })?
            .map_err(|e| RegistryError::Unreachable {
                registry: r.registry().into(),
                message: crate::error::chain(&e),
            })?;
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(super::session::parse_challenge);
        match challenge {
            Some(super::session::Challenge::Bearer { realm, service }) => {
                let scope = format!("repository:{}:pull", r.repository());
                let t = tokio::time::timeout(
                    stall(),
                    super::session::oauth_token(
                        &self.http,
                        r.registry(),
                        &realm,
                        service.as_deref(),
                        &[scope],
                        token,
                    ),
                )
                .await
                .map_err(|_| RegistryError::Stalled {
                    registry: r.registry().into(),
                    what: "a token".into(),
                    secs: stall().as_secs(),
                })??;
                Ok(Some(format!("Bearer {t}")))
            }
            // A registry without a token service has no use for an identity token.
            _ => Ok(None),
        }
    }
}

/// What an error from oci-client means for the user (`what`: the request that failed).
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
            envelope_error(registry, r, what, &envelope)
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

/// What a registry's error envelope means: the image is unknown, access is denied, or the
/// registry said something else.
fn envelope_error(
    registry: String,
    r: String,
    what: &str,
    envelope: &oci_client::errors::OciEnvelope,
) -> RegistryError {
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

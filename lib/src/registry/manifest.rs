//! Fetching a manifest or index: the request with the Accept header of every format den reads,
//! a body of at most [`checks::MAX_DOCUMENT`] bytes, and, fetched by digest, the digest checked.

use super::transfer::{Progress, failure_text};
use super::{Manifest, Registry, RegistryError, Result};
use crate::digest::Digest;
use crate::image::{Reference, checks, manifest};

impl Registry {
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
        let resp = self.manifest_response(&r, &what).await?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .map(String::from);
        let body = self.manifest_body(resp, &what).await?;
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

    /// Ask for the manifest `r` (on this registry) names; an answer other than success is the
    /// error its status means (`what` names the reference the user gave).
    async fn manifest_response(&self, r: &Reference, what: &str) -> Result<reqwest::Response> {
        let unreachable = |e: reqwest::Error| self.transfer_error(what, e);
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
                    reference: what.to_string(),
                    message,
                },
                401 | 403 => RegistryError::Denied {
                    reference: what.to_string(),
                    message,
                },
                _ => RegistryError::Protocol {
                    registry: r.registry().into(),
                    what: "a manifest request".into(),
                    message,
                },
            });
        }
        Ok(resp)
    }

    /// The manifest's bytes: refused as soon as they pass [`checks::MAX_DOCUMENT`], whatever the
    /// Content-Length said.
    async fn manifest_body(&self, resp: reqwest::Response, what: &str) -> Result<Vec<u8>> {
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
        while let Some(chunk) = self.next_chunk(&mut stream, &mut progress, what).await? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > checks::MAX_DOCUMENT {
                return Err(too_large(body.len() as u64));
            }
        }
        Ok(body)
    }
}

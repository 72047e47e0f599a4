//! Fetching a blob: den's own request (oci-client would hash the stream a second time), its
//! redirects followed by hand so that credentials never leave the registry, and the body
//! streamed into the store's intake, no byte past the size the manifest gave.

use super::transfer::{Progress, failure_text, server_text};
use super::transport::transport_client;
use super::{Registry, RegistryError, Result, Transport};
use crate::digest::Digest;
use crate::image::checks;
use crate::store::{BlobWriter, Incoming};

/// The most redirects a blob request follows (a registry redirects once, to its storage).
const MAX_REDIRECTS: usize = 10;

impl Registry {
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
        let resp = self.blob_response(digest, &what).await?;
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

    /// Ask for the blob, following redirects (at most [`MAX_REDIRECTS`]); an answer other than
    /// success is the error its status means.
    async fn blob_response(&self, digest: &Digest, what: &str) -> Result<reqwest::Response> {
        let reference = &self.reference;
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
            let at_origin = url.origin() == origin;
            let mut req = self.blob_client(&url, at_origin)?.get(url.clone());
            // Credentials go to the registry only, never to where it redirects (CVE-2020-15157).
            if let (Some(h), true) = (&authorization, at_origin) {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|e| self.transfer_error(what, e))?;
            match resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
            {
                Some(loc) if resp.status().is_redirection() => {
                    url = self.redirect(&url, loc, &mut hops, what)?;
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
                    what: what.to_string(),
                    message,
                },
            });
        }
        Ok(resp)
    }

    /// The client for a blob request to `url` (`at_origin`: on the registry itself): elsewhere
    /// (a redirect to a CDN), https is verified whatever the registry's transport.
    fn blob_client(&self, url: &reqwest::Url, at_origin: bool) -> Result<&reqwest::Client> {
        if url.scheme() == "https"
            && (!at_origin || self.transport == Transport::Http)
            && self.transport != Transport::Https
        {
            if let Some(c) = self.tls.get() {
                return Ok(c);
            }
            let host = url.host_str().unwrap_or_default();
            let made = transport_client(host, Transport::Https, 0)?;
            Ok(self.tls.get_or_init(|| made))
        } else {
            Ok(&self.http)
        }
    }

    /// Where the redirect `loc` from `url` leads: an http or https address, within
    /// [`MAX_REDIRECTS`] hops (`hops` counts them).
    fn redirect(
        &self,
        url: &reqwest::Url,
        loc: &str,
        hops: &mut usize,
        what: &str,
    ) -> Result<reqwest::Url> {
        let refused = |message: String| RegistryError::Protocol {
            registry: self.reference.registry().into(),
            what: what.to_string(),
            message,
        };
        if *hops == MAX_REDIRECTS {
            return Err(refused(format!(
                "redirected more than {MAX_REDIRECTS} times, the last time to {}",
                server_text(loc)
            )));
        }
        *hops += 1;
        let next = url
            .join(loc)
            .map_err(|e| refused(format!("a bad redirect ({e}): {}", server_text(loc))))?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(refused(format!(
                "a redirect to {}, which is not an http or https address",
                server_text(next.as_str())
            )));
        }
        Ok(next)
    }
}

//! `push`: send an image's blobs, config and manifest to a registry.
//!
//! Every blob is checked with `HEAD` first, so a second push of the same image sends nothing but
//! the manifest, and a push that was interrupted sends only what had not landed. A blob the
//! registry holds in another repository the image came from or went to (its repo digests on the
//! same registry) is mounted rather than uploaded. The manifest pushed is the one in the store,
//! byte for byte, so the digest a pull reported stays the image's digest everywhere.
//! Blobs go up four at a time, the config after the layers, the manifest last: a registry never
//! holds a manifest whose blobs are missing.

use futures_util::StreamExt;

use super::{Ctx, Result};
use crate::digest::Digest;
use crate::image::Reference;
use crate::registry::session::{Blob, Landed, Session};
use crate::store::{ImageRecord, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The local image: a name, or an id when `destination` is given.
    pub image: String,
    /// Where to push, when not the image's own name (podman's `push IMAGE DEST`).
    pub destination: Option<String>,
    pub tls_verify: Option<bool>,
    /// `--authfile`, `--creds`.
    pub access: crate::auth::Access,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: Reference,
    pub digest: String,
    pub size: usize,
    /// Each blob's short digest and how it landed.
    pub blobs: Vec<(String, Landed)>,
}

/// One line of progress (docker's `<id>: Pushed`).
pub trait PushReport: Sync {
    fn line(&self, text: &str);
}

/// `push`: the image's layers, config and manifest to `destination` (else the image's own
/// name).
pub fn push(ctx: &Ctx, opts: &PushOptions, report: &dyn PushReport) -> Result<Pushed> {
    let target = Reference::parse(opts.destination.as_deref().unwrap_or(&opts.image))?;
    if target.digest().is_some() {
        return Err(crate::registry::RegistryError::PushDigest(target.to_string()).into());
    }
    let store = ctx.store()?;
    let image = store.find_image(&opts.image)?;
    // Pinned: a prune waits until the push has read what it needs.
    let _pin = store.lock_content_shared()?;
    let registry = target.registry().to_string();
    let repo = target.repository().to_string();
    let blobs = blobs_with_sources(&store, &image, &registry, &repo)?;
    let manifest = store.read_blob(&image.manifest)?;
    let creds = opts
        .access
        .credentials(&ctx.paths.config, &registry, &repo)?;
    report.line(&format!(
        "The push refers to repository [{}]",
        target.repo_name()
    ));
    let (digest, landed) = crate::registry::session::runtime()?.block_on(async {
        let mut session =
            Session::open(&registry, &ctx.config.registry, opts.tls_verify, creds).await?;
        session.set_scopes(scopes(&repo, &blobs));
        let tag = target.tag().unwrap_or("latest");
        let m = (image.manifest_media_type.as_str(), manifest.as_slice());
        upload(&session, &repo, tag, m, blobs, report).await
    })?;
    // Remember where the image now is (docker's RepoDigests; the source of later mounts).
    let repo_digest = format!("{}@{digest}", target.repo_name());
    store.update_images(|images| {
        if let Some(i) = images.iter_mut().find(|i| i.id == image.id)
            && !i.repo_digests.contains(&repo_digest)
        {
            i.repo_digests.push(repo_digest.clone());
        }
        Ok(())
    })?;
    let name = crate::image::familiar_name(&target.canonical());
    store
        .record_event(&crate::store::Event::new("image", "push", &name).with("name", name.clone()));
    Ok(Pushed {
        reference: target,
        digest,
        size: manifest.len(),
        blobs: landed,
    })
}

/// The image's layer blobs then its config, each with the repositories on `registry` that
/// already hold it (of every local image that has the blob and was pulled from or pushed to
/// this registry): sources for mounts.
pub(super) fn blobs_with_sources(
    store: &Store,
    image: &ImageRecord,
    registry: &str,
    repo: &str,
) -> Result<Vec<(Blob, Vec<String>)>> {
    let mut blobs = Vec::new();
    for l in &image.layers {
        blobs.push(blob(store, &image.id, &l.blob)?);
    }
    blobs.push(blob(store, &image.id, &image.config)?);
    let prefix = format!("{registry}/");
    let images = store.images()?;
    let sources_of = |digest: &Digest| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in &images {
            if i.config != *digest && !i.layers.iter().any(|l| l.blob == *digest) {
                continue;
            }
            for r in i
                .repo_digests
                .iter()
                .filter_map(|d| d.strip_prefix(&prefix))
                .filter_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
            {
                if r != repo && !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    };
    Ok(blobs
        .into_iter()
        .map(|b| {
            let s = sources_of(&b.digest);
            (b, s)
        })
        .collect())
}

/// The token scopes a push to `repo` needs: push there, pull from each mount source.
pub(super) fn scopes(repo: &str, blobs: &[(Blob, Vec<String>)]) -> Vec<String> {
    let mut sources: Vec<String> = blobs.iter().flat_map(|(_, s)| s.clone()).collect();
    sources.sort();
    sources.dedup();
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    scopes.extend(sources.iter().map(|s| format!("repository:{s}:pull")));
    scopes
}

/// Send the blobs (layers and config, four at a time) and the manifest (its media
/// type and bytes) last, under `tag` (a tag, or the manifest's digest); the manifest's digest
/// and how each blob landed. The session's scopes are set ([`scopes`]).
pub(super) async fn upload(
    session: &Session,
    repo: &str,
    tag: &str,
    (media_type, manifest): (&str, &[u8]),
    blobs: Vec<(Blob, Vec<String>)>,
    report: &dyn PushReport,
) -> Result<(String, Vec<(String, Landed)>)> {
    let put = |(b, sources): (Blob, Vec<String>)| async move {
        let short = b.digest.short().to_string();
        let landed = session.put_blob(repo, &b, &sources, &|_| {}).await?;
        report.line(&format!(
            "{short}: {}",
            match &landed {
                Landed::Exists => "Layer already exists".to_string(),
                Landed::Mounted(from) => format!("Mounted from {from}"),
                Landed::Pushed { .. } => "Pushed".to_string(),
            }
        ));
        Ok::<_, super::Error>((short, landed))
    };
    // The config goes with the layers: only the manifest needs them all in place.
    let landed: Vec<(String, Landed)> = futures_util::stream::iter(blobs.into_iter().map(put))
        .buffered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let digest = session
        .put_manifest(repo, tag, media_type, manifest)
        .await?;
    Ok((digest, landed))
}

fn blob(store: &Store, image: &Digest, digest: &Digest) -> Result<Blob> {
    let path = store.blob_path(digest);
    let md = std::fs::metadata(&path).map_err(|_| StoreError::MissingBlob {
        image: image.short().to_string(),
        digest: digest.to_string(),
    })?;
    Ok(Blob {
        digest: digest.clone(),
        size: md.len(),
        path,
    })
}

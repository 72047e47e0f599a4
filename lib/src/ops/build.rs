//! `build`: a Dockerfile into an image. The verb opens the store and hands the build seam
//! ([`crate::build`], which plans the build as data and applies it) what it needs from above:
//! images found or pulled through den-image, RUN steps' containers run by den-run, and the
//! progress lines.

use super::Ctx;
use super::{Error, Result};
pub use crate::build::output::Output;
use crate::build::{BuildError, HostError, share};
pub use crate::build::{BuildOptions, Entitlement};
use crate::digest::Digest;
use crate::image::Reference;
use crate::registry::Registry;
use crate::registry::session::{Blob, Session};
use crate::store::{ImageRecord, StoreError};
use oci_client::secrets::RegistryAuth;

/// Where progress lines go (stderr, or nowhere with `-q`).
pub type Say<'a> = &'a (dyn Fn(&str) + Sync);

/// Build the image `opts` describes; returns its id.
pub fn build(ctx: &Ctx, opts: &BuildOptions, say: Say<'_>) -> Result<Digest> {
    let store = ctx.store()?;
    let host = Host {
        ctx,
        say,
        access: &opts.access,
    };
    let id = crate::build::build(&store, ctx.config.storage.driver, &host, opts).map_err(|e| {
        match e {
            // A den tool that has already reported stays one: the binaries say nothing more.
            BuildError::Reported(r) => Error::Reported(r),
            e => Error::Build(e),
        }
    })?;
    let mut event = crate::store::Event::new("image", "build", id.as_ref());
    if let Some(tag) = opts.tags.first() {
        event = event.with("name", crate::image::familiar_name(&tag.canonical()));
    }
    store.record_event(&event);
    Ok(id)
}

/// `build --platform A,B --manifest LIST`: one build per platform (`None`: the default), each
/// image added to the list when one is named (made if missing, as podman does). The ids, in
/// the platforms' order.
pub fn build_platforms(
    ctx: &Ctx,
    opts: &BuildOptions,
    platforms: &[Option<crate::image::Platform>],
    manifest: Option<&str>,
    say: Say<'_>,
) -> Result<Vec<Digest>> {
    let several = platforms.len() > 1;
    let mut ids = Vec::new();
    for p in platforms {
        let mut o = opts.clone();
        if let Some(p) = p {
            o.platform = Some(p.to_string());
            if several {
                say(&format!("[{p}]"));
            }
        }
        let id = build(ctx, &o, say)?;
        if let Some(list) = manifest {
            let store = ctx.store()?;
            let image = store.find_image(id.as_str())?;
            store.add_to_list(list, store.list_entry(&image)?)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A host error into the build seam's: the verb's error, carried whole.
fn lift(e: Error) -> BuildError {
    match e {
        Error::Build(e) => e,
        Error::Reported(r) => BuildError::Reported(r),
        e => BuildError::Host(HostError(Box::new(e))),
    }
}

/// The build's view of den: the verbs' image lookups and den's tools.
struct Host<'a> {
    ctx: &'a Ctx,
    say: Say<'a>,
    /// `--authfile`, `--creds`, handed to the pulls.
    access: &'a crate::auth::Access,
}

impl crate::build::Host for Host<'_> {
    fn find_or_pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord, BuildError> {
        self.ctx
            .find_or_pull_as(name, platform, self.access, self)
            .map_err(lift)
    }

    fn pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord, BuildError> {
        self.ctx
            .pull_image_as(name, platform, self.access)
            .map_err(lift)
    }

    fn run_container(&self, id: &str, quiet: bool) -> Result<Option<i32>, BuildError> {
        let Some(tool) = crate::config::tool_path("den-run") else {
            return Ok(None);
        };
        let out: std::process::Stdio = if quiet {
            std::process::Stdio::null()
        } else {
            std::os::fd::AsFd::as_fd(&std::io::stderr())
                .try_clone_to_owned()
                .map(std::process::Stdio::from)
                .unwrap_or_else(|_| std::process::Stdio::inherit())
        };
        let status = std::process::Command::new(tool)
            .arg("__run-created")
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .status()
            .map_err(|e| StoreError::Io {
                path: "den-run".into(),
                source: e,
            })?;
        Ok(Some(status.code().unwrap_or(128 + 9)))
    }

    fn say(&self, line: &str) {
        (self.say)(line)
    }

    fn cache_source(&self, reference: &str) -> Result<Box<dyn share::Blobs>, String> {
        let reference = Reference::parse(reference).map_err(|e| e.to_string())?;
        let auth = match self
            .access
            .credentials(
                &self.ctx.paths.config,
                reference.registry(),
                reference.repository(),
            )
            .map_err(|e| e.to_string())?
        {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let rt = crate::registry::session::runtime().map_err(|e| e.to_string())?;
        let cfg = &self.ctx.config.registry;
        let (registry, manifest) = rt
            .block_on(Registry::connect(&reference, cfg, auth))
            .map_err(|e| crate::error::chain(&e))?;
        // Fetched by digest, the registry client has checked it; by tag there is nothing to
        // check it against (the steps and blobs it names are checked one by one).
        let digest = reference.digest().map(|_| manifest.digest.clone());
        Ok(Box::new(RegistryBlobs {
            rt,
            registry,
            manifest: manifest.bytes,
            digest,
        }))
    }

    fn push_cache(&self, reference: &str, cache: &share::Export) -> Result<(), BuildError> {
        push_cache(self.ctx, self.access, reference, cache).map_err(lift)
    }

    fn layer_owners(&self) -> crate::unpack::Owners {
        match self.ctx.idmap() {
            crate::userns::IdMap::Single { .. } => crate::unpack::Owners::Ignore,
            _ => crate::unpack::Owners::Keep,
        }
    }

    fn runtime_dir(&self) -> Option<std::path::PathBuf> {
        self.ctx.runtime_dir().ok()
    }
}

/// A base image pull's notes go out as progress lines.
impl super::Report for Host<'_> {
    fn note(&self, text: &str) {
        (self.say)(text)
    }
}

/// A `--cache-from` cache in a registry: its manifest as fetched, its blobs streamed into the
/// store's intake by the registry client (digest checked, no byte past the cap).
struct RegistryBlobs {
    rt: tokio::runtime::Runtime,
    registry: Registry,
    manifest: Vec<u8>,
    digest: Option<Digest>,
}

impl share::Blobs for RegistryBlobs {
    fn manifest(&self) -> Result<(Vec<u8>, Option<Digest>), String> {
        Ok((self.manifest.clone(), self.digest.clone()))
    }

    fn fetch(
        &self,
        incoming: &crate::store::Incoming,
        digest: &Digest,
        cap: u64,
    ) -> Result<std::path::PathBuf, String> {
        let blob = crate::image::checks::Blob {
            digest: digest.clone(),
            size: cap,
            media_type: String::new(),
        };
        self.rt
            .block_on(self.registry.blob(incoming, &blob, |_| {}))
            .map_err(|e| crate::error::chain(&e))
    }
}

/// `--cache-to REF`: the cache's layers, then its step list, then its manifest (a registry
/// takes a manifest only once every blob it names is there).
fn push_cache(
    ctx: &Ctx,
    access: &crate::auth::Access,
    reference: &str,
    cache: &share::Export,
) -> Result<()> {
    let target = Reference::parse(reference)?;
    let (registry, repo) = (target.registry(), target.repository());
    let store = ctx.store()?;
    let creds = access.credentials(&ctx.paths.config, registry, repo)?;
    let staging = store.staging_dir("cache-push")?;
    let config_path = staging.path.join("steps.json");
    std::fs::write(&config_path, &cache.config).map_err(|e| StoreError::Io {
        path: config_path.clone(),
        source: e,
    })?;
    let mut blobs = Vec::new();
    for l in &cache.layers {
        let path = store.blob_path(&l.blob);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(l.size);
        blobs.push(Blob {
            digest: l.blob.clone(),
            size,
            path,
        });
    }
    blobs.push(Blob {
        digest: Digest::of(&cache.config),
        size: cache.config.len() as u64,
        path: config_path,
    });
    let tag = target.tag().unwrap_or("latest");
    let pushed = crate::registry::session::runtime()?.block_on(async {
        let mut session = Session::open(registry, &ctx.config.registry, None, creds).await?;
        session.set_scopes(vec![format!("repository:{repo}:pull,push")]);
        for b in &blobs {
            session.put_blob(repo, b, &[], &|_| {}).await?;
        }
        let media_type = crate::image::manifest::OCI_MANIFEST;
        session
            .put_manifest(repo, tag, media_type, &cache.manifest)
            .await
    });
    let _ = crate::fs::remove_tree(&staging.path);
    pushed?;
    Ok(())
}

//! `manifest create|add|annotate|inspect|push|rm|exists|remove`: multi-platform images as
//! manifest lists in the store ([`crate::store::manifests`]), written as an OCI image index or a
//! Docker manifest list ([`crate::image::list`]).
//!
//! An entry comes from a local image (its manifest, as stored) or from a registry: then only
//! the manifest (or index) is fetched, and for a lone manifest its small configuration, to
//! learn the platform; layers are not pulled until a push needs them. A push sends each entry's
//! image (mounting blobs the registry already holds elsewhere, as `push` does), each manifest
//! by digest, and the list last under its tag; an entry that is not in the store is pulled by
//! digest first, verified as every pull is.

use oci_client::secrets::RegistryAuth;

use super::push::{PushReport, blobs_with_sources, scopes, upload};
use super::{Ctx, Result};
use crate::auth::Access;
use crate::digest::Digest;
use crate::image::checks::{self, Document};
use crate::image::list::{self, Entry, ListFormat, ManifestList};
use crate::image::{ImageError, Platform, Reference};
use crate::registry::Registry;
use crate::registry::session::Session;
use crate::store::manifests::list_name;
use crate::store::{ImageRecord, Store, StoreError};

/// Platform fields given on the command line (`add`, `annotate`), each checked.
#[derive(Debug, Clone, Default)]
pub struct PlatformFields {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub os_features: Vec<String>,
    pub annotations: Vec<String>,
}

impl PlatformFields {
    /// Apply these fields to `e`, each checked first; nothing changes when one is bad.
    fn apply(&self, e: &mut Entry) -> Result<()> {
        let word = |what: &str, v: &Option<String>| -> Result<Option<String>> {
            Ok(match v {
                Some(v) => Some(list::platform_word(what, v)?),
                None => None,
            })
        };
        let os = word("os", &self.os)?;
        let arch = word("architecture", &self.arch)?;
        let variant = word("variant", &self.variant)?;
        let os_version = word("os version", &self.os_version)?;
        let features = self
            .os_features
            .iter()
            .map(|f| list::platform_word("os feature", f))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let annotations = self
            .annotations
            .iter()
            .map(|a| list::annotation(a))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if let Some(os) = os {
            e.os = os;
        }
        if let Some(arch) = arch {
            e.architecture = arch;
        }
        if variant.is_some() {
            e.variant = variant;
        }
        if os_version.is_some() {
            e.os_version = os_version;
        }
        if !features.is_empty() {
            e.os_features = features;
        }
        e.annotations.extend(annotations);
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub list: String,
    pub images: Vec<String>,
    /// Add to an existing list instead of refusing.
    pub amend: bool,
    /// For an image that is an index in a registry: add all its entries.
    pub all: bool,
    /// `--authfile`, `--creds`.
    pub access: Access,
}

/// `manifest create`: a new list (or, with `amend`, the existing one) with `images` added.
pub fn create(ctx: &Ctx, opts: &CreateOptions) -> Result<ManifestList> {
    let store = ctx.store()?;
    let name = list_name(&opts.list)?;
    let existing = store.manifest_lists()?.into_iter().find(|l| l.name == name);
    if existing.is_some() && !opts.amend {
        return Err(StoreError::ListExists(crate::image::familiar_name(&name)).into());
    }
    let mut entries = Vec::new();
    for image in &opts.images {
        entries.extend(entries_for(ctx, &store, image, opts.all, &opts.access)?);
    }
    store
        .update_lists(|lists| {
            let at = match lists.iter().position(|l| l.name == name) {
                Some(i) if opts.amend => i,
                Some(_) => return Err(StoreError::ListExists(name.clone())),
                None => {
                    lists.push(ManifestList::new(name.clone()));
                    lists.len() - 1
                }
            };
            for e in entries {
                lists[at].add(e).map_err(StoreError::from)?;
            }
            Ok(lists[at].clone())
        })
        .map_err(Into::into)
}

#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub list: String,
    pub image: String,
    pub all: bool,
    pub fields: PlatformFields,
    pub access: Access,
}

/// `manifest add`: the image's manifest (all of an index's, with `all`) into the list.
pub fn add(ctx: &Ctx, opts: &AddOptions) -> Result<ManifestList> {
    let store = ctx.store()?;
    store.find_list(&opts.list)?;
    let mut entries = entries_for(ctx, &store, &opts.image, opts.all, &opts.access)?;
    for e in &mut entries {
        opts.fields.apply(e)?;
    }
    change(&store, &opts.list, |l| {
        for e in entries {
            l.add(e)?;
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Default)]
pub struct AnnotateOptions {
    pub list: String,
    /// The entry: its manifest digest, or the image it was added from.
    pub image: String,
    pub fields: PlatformFields,
    /// `--index`: the annotations are the list's own.
    pub index: bool,
}

/// `manifest annotate`: change an entry's platform or annotations (or, with `index`, the
/// list's annotations).
pub fn annotate(ctx: &Ctx, opts: &AnnotateOptions) -> Result<ManifestList> {
    let store = ctx.store()?;
    let list = store.find_list(&opts.list)?;
    if opts.index {
        let annotations = opts
            .fields
            .annotations
            .iter()
            .map(|a| list::annotation(a))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return change(&store, &opts.list, |l| {
            l.annotations.extend(annotations);
            Ok(())
        });
    }
    let digest = entry_digest(&store, &list, &opts.image)?;
    let mut entry = list
        .entries
        .iter()
        .find(|e| e.digest == digest)
        .cloned()
        .expect("entry_digest found it");
    opts.fields.apply(&mut entry)?;
    change(&store, &opts.list, |l| {
        match l.entry_mut(&digest) {
            Some(e) => *e = entry,
            None => l.add(entry)?,
        }
        Ok(())
    })
}

/// `manifest remove LIST DIGEST` (podman's): the entry out of the list.
pub fn remove_entry(ctx: &Ctx, name: &str, image: &str) -> Result<ManifestList> {
    let store = ctx.store()?;
    let list = store.find_list(name)?;
    let digest = entry_digest(&store, &list, image)?;
    change(&store, name, |l| {
        l.entries.retain(|e| e.digest != digest);
        Ok(())
    })
}

/// The digest of the entry `image` names in `list`: a digest, or a local image (by name or id)
/// whose manifest is an entry.
fn entry_digest(store: &Store, list: &ManifestList, image: &str) -> Result<Digest> {
    let unknown = || StoreError::EntryUnknown {
        list: crate::image::familiar_name(&list.name),
        image: image.to_string(),
    };
    let digest = match Digest::parse(image) {
        Ok(d) => d,
        Err(_) => match store.find_image(image) {
            Ok(i) => i.manifest,
            Err(StoreError::ImageUnknown(_)) => {
                let r = Reference::parse(image)?;
                let d = r.digest().ok_or_else(unknown)?;
                Digest::parse(d).map_err(StoreError::from)?
            }
            Err(e) => return Err(e.into()),
        },
    };
    if list.entries.iter().any(|e| e.digest == digest) {
        Ok(digest)
    } else {
        Err(unknown().into())
    }
}

/// Change the list `name` under the store's lock (it is read again there: a list removed
/// meanwhile is not brought back).
fn change(
    store: &Store,
    name: &str,
    f: impl FnOnce(&mut ManifestList) -> std::result::Result<(), ImageError>,
) -> Result<ManifestList> {
    let canonical = list_name(name)?;
    store
        .update_lists(|lists| {
            let l = lists
                .iter_mut()
                .find(|l| l.name == canonical)
                .ok_or_else(|| StoreError::ListUnknown(name.to_string()))?;
            f(l)?;
            Ok(l.clone())
        })
        .map_err(Into::into)
}

/// `manifest rm`: each list removed, or why not.
pub fn remove(ctx: &Ctx, names: &[String]) -> Result<Vec<(String, Result<ManifestList>)>> {
    let store = ctx.store()?;
    Ok(names
        .iter()
        .map(|n| (n.clone(), store.remove_list(n).map_err(Into::into)))
        .collect())
}

/// `manifest exists` (podman's): whether the store holds the list.
pub fn exists(ctx: &Ctx, name: &str) -> Result<bool> {
    match ctx.store()?.find_list(name) {
        Ok(_) => Ok(true),
        Err(StoreError::ListUnknown(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `manifest inspect`: the local list as an OCI index, else what the registry holds for `name`
/// (a list, or an image's manifest), checked: the document's bytes (the binary indents them
/// as docker does).
pub fn inspect(ctx: &Ctx, name: &str, access: &Access) -> Result<Vec<u8>> {
    let store = ctx.store()?;
    match store.find_list(name) {
        Ok(l) => return Ok(l.document(ListFormat::Oci)),
        Err(StoreError::ListUnknown(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let name = name.strip_prefix("docker://").unwrap_or(name);
    let reference = Reference::parse(name)?;
    let m = remote(ctx, &reference, access, |_, m| async move { Ok(m) })?;
    // Checked before it is shown: a document den cannot read is refused, not echoed.
    checks::document(name, &m.bytes, m.content_type.as_deref())?;
    Ok(m.bytes)
}

/// Connect to `reference`'s registry (with the user's credentials), fetch its manifest, and
/// run `then` with both.
fn remote<T, F, Fut>(ctx: &Ctx, reference: &Reference, access: &Access, then: F) -> Result<T>
where
    F: FnOnce(Registry, crate::registry::Manifest) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let auth = match access.credentials(
        &ctx.paths.config,
        reference.registry(),
        reference.repository(),
    )? {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    };
    crate::registry::session::runtime()?.block_on(async {
        let (registry, m) = Registry::connect(reference, &ctx.config.registry, auth).await?;
        then(registry, m).await
    })
}

/// The entries `image` gives: a local image's manifest, else the registry's manifest (or the
/// host's entry of its index, or every entry with `all`).
fn entries_for(
    ctx: &Ctx,
    store: &Store,
    image: &str,
    all: bool,
    access: &Access,
) -> Result<Vec<Entry>> {
    // podman's transport prefix for a registry's image: the reference is what follows.
    let image = image.strip_prefix("docker://").unwrap_or(image);
    match store.find_image(image) {
        Ok(i) => return Ok(vec![store.list_entry(&i)?]),
        Err(StoreError::ImageUnknown(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let reference = Reference::parse(image)?;
    let source = reference.repo_name();
    let _pin = store.lock_content_shared()?;
    remote(ctx, &reference, access, |registry, m| async move {
        match checks::document(image, &m.bytes, m.content_type.as_deref())? {
            Document::Manifest(man) => {
                let config = fetch_config(store, &registry, image, &man.config).await?;
                Ok(vec![Entry {
                    source: Some(source),
                    ..Entry::of_config(m.digest, &man.media_type, m.bytes.len(), &config)?
                }])
            }
            Document::Index(index) => index_entries(image, &index, all, &source),
        }
    })
}

/// The entries of a registry's index: the host's (as a pull picks it), or all of them with
/// `all` (attestations, platform unknown, left out); an entry that is itself an index is
/// refused, so lists never nest.
fn index_entries(
    image: &str,
    index: &oci_spec::image::ImageIndex,
    all: bool,
    source: &str,
) -> Result<Vec<Entry>> {
    if index.manifests().len() > list::MAX_ENTRIES {
        return Err(ImageError::TooManyEntries {
            what: image.to_string(),
            count: index.manifests().len(),
        }
        .into());
    }
    let host = Platform::host();
    let chosen = if all {
        index.manifests().iter().collect::<Vec<_>>()
    } else {
        vec![crate::image::manifest::select(image, index, &host)?]
    };
    let mut out = Vec::new();
    for d in chosen {
        let Some(p) = d.platform() else { continue };
        if p.os().to_string() == "unknown" {
            continue;
        }
        let blob = checks::blob(image, d)?;
        if matches!(
            blob.media_type.as_str(),
            crate::image::manifest::OCI_INDEX | crate::image::manifest::DOCKER_LIST
        ) {
            return Err(ImageError::UnsupportedManifest {
                reference: format!("{image}@{}", blob.digest),
                media_type: "nested index".into(),
            }
            .into());
        }
        out.push(Entry {
            digest: blob.digest,
            media_type: blob.media_type,
            size: blob.size,
            os: list::platform_word("os", &p.os().to_string())?,
            architecture: list::platform_word("architecture", &p.architecture().to_string())?,
            variant: p
                .variant()
                .as_deref()
                .map(|v| list::platform_word("variant", v))
                .transpose()?,
            os_version: p
                .os_version()
                .as_deref()
                .map(|v| list::platform_word("os version", v))
                .transpose()?,
            os_features: Vec::new(),
            annotations: d
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            image: None,
            source: Some(source.to_string()),
        });
    }
    Ok(out)
}

/// A lone manifest's configuration, fetched (it is small) into a staging area that is thrown
/// away: only its platform fields are kept.
async fn fetch_config(
    store: &Store,
    registry: &Registry,
    image: &str,
    config: &checks::Blob,
) -> Result<Vec<u8>> {
    checks::size(&format!("the configuration of {image}"), config.size)?;
    let incoming = store.incoming()?;
    registry.blob(&incoming, config, |_| {}).await?;
    Ok(incoming.read_blob(&config.digest)?)
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub list: String,
    /// Where to push, when not the list's own name.
    pub destination: Option<String>,
    /// Push the entries' images too (podman's default); else only the list.
    pub all: bool,
    pub format: ListFormat,
    /// Remove the list from the store once pushed.
    pub remove: bool,
    pub tls_verify: Option<bool>,
    /// `--authfile`, `--creds`.
    pub access: Access,
}

/// What a list push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: Reference,
    pub digest: String,
}

/// `manifest push`: each entry's image (pulled first when it is not in the store), each
/// manifest by digest, then the list under its tag.
pub fn push(ctx: &Ctx, opts: &PushOptions, report: &dyn PushReport) -> Result<Pushed> {
    let store = ctx.store()?;
    let list = store.find_list(&opts.list)?;
    let target = Reference::parse(opts.destination.as_deref().unwrap_or(&list.name))?;
    if target.digest().is_some() {
        return Err(crate::registry::RegistryError::PushDigest(target.to_string()).into());
    }
    let images = if opts.all {
        entry_images(ctx, &store, &list)?
    } else {
        Vec::new()
    };
    let _pin = store.lock_content_shared()?;
    let registry = target.registry().to_string();
    let repo = target.repository().to_string();
    let mut sends = Vec::new();
    for image in &images {
        let blobs = blobs_with_sources(&store, image, &registry, &repo)?;
        sends.push((image, store.read_blob(&image.manifest)?, blobs));
    }
    let all_blobs: Vec<_> = sends.iter().flat_map(|(_, _, b)| b.clone()).collect();
    let document = list.document(opts.format);
    let creds = opts
        .access
        .credentials(&ctx.paths.config, &registry, &repo)?;
    report.line(&format!(
        "The push refers to repository [{}]",
        target.repo_name()
    ));
    let tag = target.tag().unwrap_or("latest");
    let digest = crate::registry::session::runtime()?.block_on(async {
        let mut session =
            Session::open(&registry, &ctx.config.registry, opts.tls_verify, creds).await?;
        session.set_scopes(scopes(&repo, &all_blobs));
        for (image, manifest, blobs) in sends {
            let m = (image.manifest_media_type.as_str(), manifest.as_slice());
            upload(&session, &repo, image.manifest.as_str(), m, blobs, report).await?;
        }
        let media_type = opts.format.media_type();
        Ok::<_, super::Error>(
            session
                .put_manifest(&repo, tag, media_type, &document)
                .await?,
        )
    })?;
    if opts.remove {
        store.remove_list(&opts.list)?;
    }
    Ok(Pushed {
        reference: target,
        digest,
    })
}

/// Each entry's image in the store: the one it was added from, or one whose manifest it is,
/// or pulled by digest from the repository it was found in.
fn entry_images(ctx: &Ctx, store: &Store, list: &ManifestList) -> Result<Vec<ImageRecord>> {
    let mut out = Vec::new();
    for e in &list.entries {
        let images = store.images()?;
        if let Some(i) = images.iter().find(|i| i.manifest == e.digest) {
            out.push(i.clone());
            continue;
        }
        let Some(source) = &e.source else {
            return Err(StoreError::EntryMissing {
                list: crate::image::familiar_name(&list.name),
                digest: e.digest.to_string(),
            }
            .into());
        };
        let by_digest = format!("{source}@{}", e.digest);
        let image = ctx.pull_image(&by_digest, Some(&e.platform().to_string()))?;
        if image.manifest != e.digest {
            return Err(StoreError::MissingBlob {
                image: by_digest,
                digest: e.digest.to_string(),
            }
            .into());
        }
        out.push(image);
    }
    Ok(out)
}

//! `tag`, `rmi` and `image prune`: naming and removing local images, docker's rules.
//!
//! Removing is two steps. First the records: a name is untagged, and an image left with no name
//! (or named by id) loses its record. Then [`Store::collect_garbage`] deletes the layers and
//! blobs that no image, container or build-cache step still refers to. Both happen under the
//! exclusive content lock, so no container can be created from an image between the check that
//! none uses it and its removal.
//!
//! Containers pin their image: without `-f`, an image a container uses (running or stopped)
//! is not removed. With `-f` a stopped container's image goes from the list, and the container
//! keeps running on its layers: they are written into its record first, which makes them
//! referenced. A running container's image cannot be deleted by id even with `-f` (docker's
//! "cannot be forced"); removing its last name with `-f` only untags it.

use super::Ctx;
use super::Result;
use super::container::Container;
use crate::image::{Reference, ReferenceError, familiar_repo};
use crate::store::{ImageRecord, Status, Store};

/// What `rmi` and the prunes removed: each a line of their reports
/// ([`crate::render::images::removed`], [`crate::render::images::pruned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A familiar name: `busybox:latest`, `busybox@sha256:...`.
    Untagged(String),
    /// An image id, `sha256:<hex>`.
    Deleted(String),
}

/// `tag SOURCE TARGET`: name an image. TARGET is `NAME[:TAG]` (no digest).
pub fn tag(ctx: &Ctx, source: &str, target: &str) -> Result<ImageRecord> {
    let name = tag_target(target)?;
    Ok(ctx.store()?.tag_image(source, &name)?)
}

/// A name an image can be given: docker's reference rules, without a digest, and not a
/// 64-digit hex string (it would read as an id).
pub fn tag_target(target: &str) -> Result<Reference, ReferenceError> {
    let bad = |reason: &str| ReferenceError {
        input: target.into(),
        reason: reason.into(),
    };
    let r = Reference::parse(target)?;
    if r.digest().is_some() {
        return Err(bad("a tag cannot have a digest"));
    }
    let repo = target
        .rsplit_once(':')
        .map_or(target, |(r, t)| if t.contains('/') { target } else { r });
    if repo.len() == 64 && repo.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("cannot specify 64-byte hexadecimal strings"));
    }
    Ok(r)
}

/// A stored name (`docker.io/library/busybox:latest`) as docker shows it (`busybox:latest`).
pub fn familiar_name(canonical: &str) -> String {
    let split = canonical.find('@').or_else(|| {
        canonical
            .rfind(':')
            .filter(|&i| !canonical[i..].contains('/'))
    });
    match split {
        Some(i) => format!("{}{}", familiar_repo(&canonical[..i]), &canonical[i..]),
        None => familiar_repo(canonical),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RmiOptions {
    pub force: bool,
    /// Leave unused layers and blobs in place (the next prune removes them).
    pub no_prune: bool,
}

/// What `rmi` did: per image given, its lines or its error; and the bytes collected.
pub struct RmiReport {
    pub results: Vec<(String, Result<Vec<Removed>>)>,
    pub reclaimed: u64,
}

/// `rmi IMAGE...`: each image is handled on its own; a failure does not stop the rest.
pub fn rmi(ctx: &Ctx, inputs: &[String], opts: RmiOptions) -> Result<RmiReport> {
    let store = ctx.store()?;
    let lock = store.lock_content_exclusive()?;
    let mut results = Vec::new();
    for input in inputs {
        let r = super::container::all(&store)
            .and_then(|containers| remove_one(&store, input, opts, &containers));
        results.push((input.clone(), r));
    }
    // Collected even when nothing was deleted now: an `rmi` killed between removing records
    // and collecting left content no record names, and running it again (the image is gone by
    // then) finishes that collection.
    let reclaimed = if !opts.no_prune {
        store.collect_garbage_locked(&lock)?.bytes
    } else {
        0
    };
    Ok(RmiReport { results, reclaimed })
}

fn short(id: &str) -> String {
    id[..12.min(id.len())].to_string()
}

/// Remove one image (or one of its names), deciding from the records read under the lock.
fn remove_one(
    store: &Store,
    input: &str,
    opts: RmiOptions,
    containers: &[Container],
) -> Result<Vec<Removed>> {
    let images = store.images()?;
    let image = Store::find_in(&images, input)?;
    let users: Vec<&Container> = containers
        .iter()
        .filter(|c| c.record.image_id == image.id)
        .collect();
    let running = users.iter().find(|c| c.state.status == Status::Running);
    let by_name = Reference::parse(input)
        .ok()
        .map(|r| r.canonical())
        .filter(|c| image.names.contains(c));

    if let Some(name) = by_name {
        let last = image.names.len() == 1;
        if last
            && !opts.force
            && let Some(c) = users.first()
        {
            return Err(crate::store::ImagesError::NameInUse {
                reference: input.into(),
                container: short(&c.record.id),
                image: image.id.short().to_string(),
            }
            .into());
        }
        let mut out = vec![Removed::Untagged(familiar_name(&name))];
        // The last name of an image a running container uses goes; the image stays, nameless.
        if !last || running.is_some() {
            store.update_images(|images| {
                for i in images.iter_mut().filter(|i| i.id == image.id) {
                    i.names.retain(|n| n != &name);
                }
                Ok(())
            })?;
            return Ok(out);
        }
        out.extend(delete(store, &image, &users, false)?);
        return Ok(out);
    }

    if image.names.len() > 1 && !opts.force {
        return Err(crate::store::ImagesError::MultipleNames {
            image: image.id.short().to_string(),
        }
        .into());
    }
    if let Some(c) = running {
        return Err(crate::store::ImagesError::InUse {
            image: image.id.short().to_string(),
            container: short(&c.record.id),
            state: "running",
            how: "cannot be forced",
        }
        .into());
    }
    if let Some(c) = users.first()
        && !opts.force
    {
        return Err(crate::store::ImagesError::InUse {
            image: image.id.short().to_string(),
            container: short(&c.record.id),
            state: "stopped",
            how: "must be forced",
        }
        .into());
    }
    delete(store, &image, &users, true)
}

/// Remove `image`'s record (its names with it, reported when `untag`), after writing its
/// layers into the records of the stopped containers that use it.
fn delete(
    store: &Store,
    image: &ImageRecord,
    users: &[&Container],
    untag: bool,
) -> Result<Vec<Removed>> {
    for c in users {
        pin_layers(store, &c.record.id, image)?;
    }
    let mut out = Vec::new();
    store.update_images(|images| {
        if let Some(i) = images.iter().find(|i| i.id == image.id) {
            if untag {
                out.extend(i.names.iter().map(|n| Removed::Untagged(familiar_name(n))));
            }
            out.extend(
                i.repo_digests
                    .iter()
                    .map(|n| Removed::Untagged(familiar_name(n))),
            );
        }
        images.retain(|i| i.id != image.id);
        Ok(())
    })?;
    out.push(Removed::Deleted(image.id.to_string()));
    Ok(out)
}

/// Make a container's record name its layers itself, so they outlive its image's record.
fn pin_layers(store: &Store, id: &str, image: &ImageRecord) -> Result<()> {
    let mut record = store.container(id)?;
    if record.layers.is_empty() {
        record.layers = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let path = store.container_dir(id).join("container.json");
        store.write_json(&path, &record)?;
    }
    Ok(())
}

/// `image prune` filters: `until=TIME`, `label=K[=V]`, `label!=K[=V]`.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every image no container uses, not only dangling ones.
    pub all: bool,
    pub filters: Vec<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    pub removed: Vec<Removed>,
    pub reclaimed: u64,
}

/// `image prune`: remove dangling images (with `all`, every image no container uses), then
/// collect garbage.
pub fn prune(ctx: &Ctx, opts: &PruneOptions) -> Result<Pruned> {
    let store = ctx.store()?;
    let lock = store.lock_content_exclusive()?;
    let removed = prune_records(ctx, &store, opts)?;
    let reclaimed = store.collect_garbage_locked(&lock)?.bytes;
    Ok(Pruned { removed, reclaimed })
}

/// The record part of [`prune`], for a caller holding the content lock exclusive.
pub fn prune_records(ctx: &Ctx, store: &Store, opts: &PruneOptions) -> Result<Vec<Removed>> {
    let now = chrono::Utc::now();
    let mut checks = Vec::new();
    for f in &opts.filters {
        checks.push(PruneFilter::parse(f, now)?);
    }
    let used: std::collections::HashSet<crate::digest::Digest> = super::container::all(store)?
        .into_iter()
        .map(|c| c.record.image_id)
        .collect();
    let mut removed = Vec::new();
    for image in store.images()? {
        if used.contains(&image.id) || (!opts.all && !image.names.is_empty()) {
            continue;
        }
        if !checks.is_empty() {
            let labels = super::images::labels(ctx, &image);
            if !checks.iter().all(|c| c.keeps(&image, &labels)) {
                continue;
            }
        }
        removed.extend(delete(store, &image, &[], true)?);
    }
    Ok(removed)
}

enum PruneFilter {
    Until(chrono::DateTime<chrono::Utc>),
    Label {
        key: String,
        value: Option<String>,
        negate: bool,
    },
}

impl PruneFilter {
    fn parse(f: &str, now: chrono::DateTime<chrono::Utc>) -> Result<PruneFilter> {
        let bad = || crate::store::ImagesError::BadFilter(f.into());
        if let Some((k, v)) = f.split_once("!=")
            && k == "label"
        {
            let (key, value) = split_label(v);
            return Ok(PruneFilter::Label {
                key,
                value,
                negate: true,
            });
        }
        let (k, v) = f.split_once('=').ok_or_else(bad)?;
        match k {
            "until" => Ok(PruneFilter::Until(
                super::container::parse_time(v, now).ok_or_else(bad)?,
            )),
            "label" => {
                let (key, value) = split_label(v);
                Ok(PruneFilter::Label {
                    key,
                    value,
                    negate: false,
                })
            }
            _ => Err(bad().into()),
        }
    }

    fn keeps(
        &self,
        image: &ImageRecord,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        match self {
            PruneFilter::Until(t) => image.created.unwrap_or(image.added) < *t,
            PruneFilter::Label { key, value, negate } => {
                let has = match value {
                    Some(v) => labels.get(key) == Some(v),
                    None => labels.contains_key(key),
                };
                has != *negate
            }
        }
    }
}

/// `k=v` as a key and a value; `k` alone as a key.
pub fn split_label(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((k, v)) => (k.into(), Some(v.into())),
        None => (s.into(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_targets_follow_dockers_rules() {
        assert_eq!(
            tag_target("app").unwrap().canonical(),
            "docker.io/library/app:latest"
        );
        assert_eq!(
            tag_target("127.0.0.1:5000/x/app:v1").unwrap().canonical(),
            "127.0.0.1:5000/x/app:v1"
        );
        for bad in [
            "App",
            "app:",
            "app:-x",
            "app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            &"a".repeat(64),
            "",
            "a b",
        ] {
            let e = tag_target(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn names_show_as_docker_shows_them() {
        assert_eq!(
            familiar_name("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar_name("docker.io/user/app:1"), "user/app:1");
        assert_eq!(
            familiar_name("127.0.0.1:5000/library/busybox:latest"),
            "127.0.0.1:5000/library/busybox:latest"
        );
        assert_eq!(
            familiar_name("docker.io/library/busybox@sha256:abc"),
            "busybox@sha256:abc"
        );
        assert_eq!(familiar_name("localhost:5000/app"), "localhost:5000/app");
    }

    #[test]
    fn prune_filters_parse() {
        let now = chrono::Utc::now();
        assert!(PruneFilter::parse("until=24h", now).is_ok());
        assert!(PruneFilter::parse("label=a=b", now).is_ok());
        assert!(PruneFilter::parse("label!=a", now).is_ok());
        assert!(PruneFilter::parse("dangling", now).is_err());
        assert!(PruneFilter::parse("colour=red", now).is_err());
    }
}

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
use crate::image::{Reference, familiar_name};
use crate::store::{Container, Deleted, Event, ImageRecord, Status, Store};

/// What `rmi` and the prunes removed: each a line of their reports
/// ([`crate::render::images::removed`], [`crate::render::images::pruned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A familiar name: `busybox:latest`, `busybox@sha256:...`.
    Untagged(String),
    /// An image id, `sha256:<hex>`.
    Deleted(String),
}

impl Removed {
    /// The lines of a removed image record: its names when `untag`, its repository digests,
    /// then its id.
    pub fn of(d: &Deleted, untag: bool) -> Vec<Removed> {
        let names = if untag { &d.names[..] } else { &[] };
        names
            .iter()
            .chain(&d.repo_digests)
            .map(|n| Removed::Untagged(familiar_name(n)))
            .chain(std::iter::once(Removed::Deleted(d.id.to_string())))
            .collect()
    }
}

/// `tag SOURCE TARGET`: name an image. TARGET is `NAME[:TAG]` (no digest).
pub fn tag(ctx: &Ctx, source: &str, target: &str) -> Result<ImageRecord> {
    let name = Reference::parse_tag(target)?;
    let store = ctx.store()?;
    let image = store.tag_image(source, &name)?;
    store.record_event(
        &crate::store::Event::new("image", "tag", image.id.as_ref())
            .with("name", familiar_name(&name.canonical())),
    );
    Ok(image)
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
        let r = store
            .containers()
            .map_err(super::Error::from)
            .and_then(|containers| remove_one(&store, input, opts, &containers));
        if let Ok(removed) = &r {
            for line in removed {
                let e = match line {
                    Removed::Untagged(n) => Event::new("image", "untag", n).with("name", n.clone()),
                    Removed::Deleted(id) => {
                        Event::new("image", "delete", id).with("name", id.clone())
                    }
                };
                store.record_event(&e);
            }
        }
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

/// Why an image this store lacks cannot be removed: it is only in a read-only additional
/// store, or nowhere.
fn not_own(store: &Store, input: &str) -> super::Error {
    match store.find_image_from(input) {
        Ok((_, Some(root))) => crate::store::ImagesError::ReadOnly {
            image: input.into(),
            store: root,
        }
        .into(),
        _ => crate::store::StoreError::ImageUnknown(input.into()).into(),
    }
}

/// Remove one image (or one of its names), deciding from the records read under the lock.
fn remove_one(
    store: &Store,
    input: &str,
    opts: RmiOptions,
    containers: &[Container],
) -> Result<Vec<Removed>> {
    let images = store.images()?;
    let image = match Store::find_in(&images, input) {
        Ok(i) => i,
        // A manifest list of that name goes (podman's rmi removes lists too); its images stay.
        Err(crate::store::StoreError::ImageUnknown(_)) if store.find_list(input).is_ok() => {
            let list = store.remove_list(input)?;
            return Ok(vec![
                Removed::Untagged(familiar_name(&list.name)),
                Removed::Deleted(list.id.to_string()),
            ]);
        }
        Err(crate::store::StoreError::ImageUnknown(_)) => return Err(not_own(store, input)),
        Err(e) => return Err(e.into()),
    };
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

/// Remove `image`'s record after pinning its layers into the records of the stopped
/// containers that use it; the lines it makes (its names too when `untag`).
fn delete(
    store: &Store,
    image: &ImageRecord,
    users: &[&Container],
    untag: bool,
) -> Result<Vec<Removed>> {
    let ids: Vec<&str> = users.iter().map(|c| c.record.id.as_str()).collect();
    Ok(Removed::of(&store.delete_image(image, &ids)?, untag))
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
    let removed = prune_records(&store, opts)?;
    let reclaimed = store.collect_garbage_locked(&lock)?.bytes;
    Ok(Pruned { removed, reclaimed })
}

/// The record part of [`prune`], for a caller holding the content lock exclusive.
fn prune_records(store: &Store, opts: &PruneOptions) -> Result<Vec<Removed>> {
    let filters = super::filter::prune_filters(&opts.filters, chrono::Utc::now())?;
    Ok(store
        .prune_images(opts.all, &filters)?
        .iter()
        .flat_map(|d| Removed::of(d, true))
        .collect())
}

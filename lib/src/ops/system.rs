//! `system df`, `system prune`, `system check` and `system reset`.
//!
//! `df` counts what the store holds as docker does: images by the unique bytes of their layers
//! (a layer two images share counts once), containers by their writable layers, volumes by
//! their data, and the build cache by the layers only cache steps keep. Reclaimable is what a
//! prune would free: layers no container's image needs, stopped containers, unused volumes,
//! the whole cache.
//!
//! `prune` removes stopped containers, dangling (or, with `-a`, unused) images, the build cache
//! and, with `--volumes`, unused anonymous volumes, then collects the layers and blobs nothing
//! refers to any more: the same steps as `container prune`, `image prune` and `builder prune`,
//! under one exclusive content lock.
//!
//! `check` walks the store and reports what is wrong with it, one line per problem; with
//! `--repair` it puts it right (the walk and the repairs are `store::check`'s).
//!
//! `reset` removes everything den stores for this user, as `podman system reset` does.
//!
//! All four run inside den's user namespace: files in layers and writable layers belong to
//! subordinate ids, which only the user's own namespace can read and delete.

use std::collections::{HashMap, HashSet};

use super::rmi::Removed;
use super::{Ctx, Result};
use crate::digest::Digest;
use crate::store::{
    Container, ContainerRecord, ContainerState, ImageRecord, Status, Store, StoreError, disk_usage,
};

/// One line of `system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
    /// Whether RECLAIMABLE shows a percentage (not for the build cache, as in docker).
    pub percent: bool,
}

/// An image in `system df -v`: its size, the bytes of it other images share, the containers
/// using it.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ImageRecord,
    pub size: u64,
    pub shared: u64,
    pub containers: usize,
}

/// A container in `system df -v`, with the bytes of its own files.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub record: ContainerRecord,
    pub state: ContainerState,
    pub size: u64,
}

/// A volume in `system df -v`: the containers that mount it, the bytes of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUsage {
    pub name: String,
    pub links: usize,
    pub size: u64,
}

/// Everything `system df` reports.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Images, Containers, Local Volumes, Build Cache.
    pub lines: Vec<Usage>,
    /// For `-v`.
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub cache_entries: usize,
}

/// `system df`: what the store holds, and what a prune would free ([`DiskUsage`]).
pub fn df(ctx: &Ctx) -> Result<DiskUsage> {
    let store = ctx.store()?;
    let images = store.images()?;
    let containers = store.containers()?;
    let layers = LayerUse::of(&images, &containers);
    let (images_line, image_rows) = image_usage(&store, &images, &layers)?;
    let (containers_line, csizes) = container_usage(&store, &containers);
    let volumes = volume_usage(&store, &containers)?;
    let (cache_line, cache_entries) = cache_usage(&store, &layers)?;
    let volumes_line = Usage {
        kind: "Local Volumes",
        total: volumes.len(),
        active: volumes.iter().filter(|v| v.links > 0).count(),
        size: volumes.iter().map(|v| v.size).sum(),
        reclaimable: volumes
            .iter()
            .filter(|v| v.links == 0)
            .map(|v| v.size)
            .sum(),
        percent: true,
    };
    Ok(DiskUsage {
        lines: vec![images_line, containers_line, volumes_line, cache_line],
        images: image_rows,
        containers: csizes,
        volumes,
        cache_entries,
    })
}

/// Which layers images hold, and which of them containers need (their image's, or their
/// record's own).
struct LayerUse<'a> {
    images: HashSet<&'a Digest>,
    needed: HashSet<&'a Digest>,
    used_ids: HashSet<&'a Digest>,
}

impl<'a> LayerUse<'a> {
    fn of(images: &'a [ImageRecord], containers: &'a [Container]) -> LayerUse<'a> {
        let used_ids: HashSet<&Digest> = containers.iter().map(|c| &c.record.image_id).collect();
        let mut needed: HashSet<&Digest> = images
            .iter()
            .filter(|i| used_ids.contains(&i.id))
            .flat_map(|i| i.layers.iter().map(|l| &l.diff_id))
            .collect();
        needed.extend(containers.iter().flat_map(|c| c.record.layers.iter()));
        LayerUse {
            images: images
                .iter()
                .flat_map(|i| i.layers.iter().map(|l| &l.diff_id))
                .collect(),
            needed,
            used_ids,
        }
    }
}

fn layer_size(store: &Store, d: &Digest) -> u64 {
    store.layer_record(d).map(|r| r.size).unwrap_or(0)
}

/// Images: their unique layers, reclaimable unless a container's image or record needs them;
/// and each image's line of `df -v`.
fn image_usage(
    store: &Store,
    images: &[ImageRecord],
    layers: &LayerUse,
) -> Result<(Usage, Vec<ImageUsage>)> {
    let sizes: HashMap<&Digest, u64> = layers
        .images
        .iter()
        .map(|d| (*d, layer_size(store, d)))
        .collect();
    let line = Usage {
        kind: "Images",
        total: images.len(),
        active: images
            .iter()
            .filter(|i| layers.used_ids.contains(&i.id))
            .count(),
        size: sizes.values().sum(),
        reclaimable: sizes
            .iter()
            .filter(|(d, _)| !layers.needed.contains(*d))
            .map(|(_, s)| s)
            .sum(),
        percent: true,
    };
    let sharing = store.sharing(images)?;
    let rows = images
        .iter()
        .map(|i| ImageUsage {
            image: i.clone(),
            size: i.size,
            shared: sharing.shared.get(&i.id).copied().unwrap_or(0),
            containers: sharing.containers.get(&i.id).copied().unwrap_or(0),
        })
        .collect();
    Ok((line, rows))
}

/// Containers: their writable layers, reclaimable when stopped.
fn container_usage(store: &Store, containers: &[Container]) -> (Usage, Vec<ContainerUsage>) {
    let rows: Vec<ContainerUsage> = containers
        .iter()
        .map(|c| ContainerUsage {
            record: c.record.clone(),
            state: c.state.clone(),
            size: store.container_size(c),
        })
        .collect();
    let running = |s: &ContainerState| s.status == Status::Running;
    let line = Usage {
        kind: "Containers",
        total: containers.len(),
        active: containers.iter().filter(|c| running(&c.state)).count(),
        size: rows.iter().map(|c| c.size).sum(),
        reclaimable: rows
            .iter()
            .filter(|c| !running(&c.state))
            .map(|c| c.size)
            .sum(),
        percent: true,
    };
    (line, rows)
}

/// Volumes: their data, and the containers that mount each.
fn volume_usage(store: &Store, containers: &[Container]) -> Result<Vec<VolumeUsage>> {
    let vols = store.volumes();
    let mut volumes = Vec::new();
    for v in vols.list()? {
        let links = containers
            .iter()
            .filter(|c| c.record.mounts_volume(&v.name))
            .count();
        volumes.push(VolumeUsage {
            size: disk_usage(&vols.data_dir(&v.name)),
            name: v.name,
            links,
        });
    }
    Ok(volumes)
}

/// The build cache: its records and mounts, and the layers only its steps keep; all of it
/// reclaimable. Its line, and how many steps it holds.
fn cache_usage(store: &Store, layers: &LayerUse) -> Result<(Usage, usize)> {
    let cache_dir = store.root().join("build-cache");
    let keep = store.referenced()?;
    let cached_only: u64 = keep
        .layers
        .iter()
        .filter(|d| !layers.images.contains(d) && !layers.needed.contains(d))
        .map(|d| layer_size(store, d))
        .sum();
    let entries = std::fs::read_dir(cache_dir.join("steps"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0);
    let size = disk_usage(&cache_dir) + cached_only;
    let line = Usage {
        kind: "Build Cache",
        total: entries,
        active: 0,
        size,
        reclaimable: size,
        percent: false,
    };
    Ok((line, entries))
}

#[derive(Debug, Clone, Default)]
pub struct SystemPruneOptions {
    /// Every unused image, not only dangling ones.
    pub all: bool,
    /// Unused anonymous volumes too.
    pub volumes: bool,
    pub filters: Vec<String>,
}

/// What `system prune` removed.
#[derive(Debug, Clone, Default)]
pub struct SystemPruned {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<Removed>,
    pub reclaimed: u64,
}

/// `system prune`: stopped containers, dangling or unused images, the build cache, unused
/// anonymous volumes with `volumes`; then unreferenced layers and blobs.
pub fn prune(ctx: &Ctx, opts: &SystemPruneOptions) -> Result<SystemPruned> {
    // Filters first: a bad one leaves the store as it was.
    let filters = super::filter::prune_filters(&opts.filters, chrono::Utc::now())?;
    let store = ctx.store()?;
    let lock = store.lock_content_exclusive()?;
    let mut out = SystemPruned::default();
    let stopped: HashMap<String, u64> = store
        .containers()?
        .iter()
        .filter(|c| c.state.status != Status::Running)
        .map(|c| (c.record.id.clone(), store.container_size(c)))
        .collect();
    out.containers = store.prune_containers()?;
    out.reclaimed += out
        .containers
        .iter()
        .filter_map(|id| stopped.get(id))
        .sum::<u64>();
    if opts.volumes {
        let vols = store.volumes();
        let sizes: HashMap<String, u64> = vols
            .list()
            .map_err(super::Error::Volume)?
            .into_iter()
            .map(|v| {
                let s = disk_usage(&vols.data_dir(&v.name));
                (v.name, s)
            })
            .collect();
        let in_use = store.volumes_in_use()?;
        out.volumes = vols.prune(false, &in_use)?;
        out.reclaimed += out.volumes.iter().filter_map(|n| sizes.get(n)).sum::<u64>();
    }
    out.images = store
        .prune_images(opts.all, &filters)?
        .iter()
        .flat_map(|d| Removed::of(d, true))
        .collect();
    out.reclaimed += crate::build::cache::prune(&store)?;
    out.reclaimed += store.collect_garbage_locked(&lock)?.bytes;
    Ok(out)
}

/// `builder prune`: the build cache, then the layers and blobs only it kept (under one
/// exclusive content lock, as `system prune`). Returns the bytes freed.
pub fn builder_prune(ctx: &Ctx) -> Result<u64> {
    let store = ctx.store()?;
    let lock = store.lock_content_exclusive()?;
    let freed = crate::build::cache::prune(&store)?;
    Ok(freed + store.collect_garbage_locked(&lock)?.bytes)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Remove what is wrong.
    pub repair: bool,
    /// Re-hash every blob; compare image records with their manifests and configs.
    pub full: bool,
}

/// What `system check` found, and with `--repair` what it fixed.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub root: std::path::PathBuf,
    /// Problems `--repair` fixed (empty without it).
    pub fixed: Vec<crate::store::Problem>,
    /// The store as it is now: what was looked at, and the problems left.
    pub checked: crate::store::Checked,
}

impl CheckReport {
    /// The error to report when problems are left: the store's path and how many.
    pub fn unclean(&self) -> Option<StoreError> {
        (!self.checked.problems.is_empty()).then(|| StoreError::Unclean {
            path: self.root.clone(),
            problems: self.checked.problems.len(),
        })
    }
}

/// `system share`: open the store to other users as a read-only additional store of theirs
/// (see `store::share`).
pub fn share(ctx: &Ctx) -> Result<crate::store::Shared> {
    Ok(ctx.store()?.share()?)
}

/// `system check [--repair] [--full]`, under the exclusive content lock (it waits for pulls,
/// builds and container creations in progress, and says so).
pub fn check(ctx: &Ctx, opts: &CheckOptions, report: &dyn super::Report) -> Result<CheckReport> {
    let store = ctx.store()?;
    let path = store.root().join("locks/content.lock");
    let lock = match crate::store::Lock::try_exclusive(&path)? {
        Some(l) => l,
        None => {
            report.note("waiting for the other den commands using the store to finish");
            store.lock_content_exclusive()?
        }
    };
    let copts = crate::store::CheckOptions { full: opts.full };
    let (fixed, checked) = if opts.repair {
        let r = store.repair(&lock, copts)?;
        (r.fixed, r.remaining)
    } else {
        (Vec::new(), store.check(&lock, copts)?)
    };
    Ok(CheckReport {
        root: store.root().to_path_buf(),
        fixed,
        checked,
    })
}

/// Remove the store and the runtime state, and stop the keeper of den's user namespace. The
/// store is renamed aside first, so a reset that is interrupted leaves either the whole store
/// or none of it.
pub fn reset(ctx: &Ctx) -> Result<()> {
    let root = &ctx.paths.root;
    let empty = std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_none());
    if root.exists() && !empty && !crate::store::Store::is_store(root) {
        return Err(StoreError::NotAStore { path: root.clone() }.into());
    }
    if root.exists() {
        let aside = root.with_file_name(format!(
            ".{}.removing-{}",
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(root, &aside).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        crate::fs::remove_tree(&aside).map_err(|source| StoreError::Io {
            path: aside.clone(),
            source,
        })?;
    }
    // Additional stores are other users' (or read only): reset is about the user's own.
    for a in &ctx.config.storage.additional {
        ctx.notes().note(&format!(
            "note: the additional store {} is read only to den: left as it is",
            a.display()
        ));
    }
    let rt = &ctx.paths.runtime;
    if rt.join("libcontainer").exists() {
        let _ = crate::fs::remove_tree(&rt.join("libcontainer"));
    }
    crate::userns::keeper::stop(rt);
    Ok(())
}

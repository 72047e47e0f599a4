//! `images`: the local images, as docker lists them, with docker's `--filter` and `--format`.
//!
//! Filters that concern a whole image (`dangling`, `label`, `before`, `since`) choose images;
//! `reference` then chooses rows (one per name). Different filter keys must all match, several
//! `reference` patterns any one. The rows are [`Row`]s, which the binaries show with
//! [`crate::render::images`] as docker does.

use chrono::{DateTime, Utc};

use super::Ctx;
use super::Result;
use crate::digest::Digest;
use crate::image::familiar_repo;
use crate::store::{ImageRecord, Store};

#[derive(Debug, Clone, Default)]
pub struct ImagesOptions {
    /// Only images in this repository (`busybox`, `127.0.0.1:5000/x`), optionally with a tag.
    pub filter: Option<String>,
    /// `--filter KEY=VALUE`.
    pub filters: Vec<String>,
    /// Count each row's shared bytes and containers ([`Row::shared`], [`Row::containers`]),
    /// which only some `--format`s show (it reads every layer and container record).
    pub usage: bool,
    /// `--sort` (podman's); the store's order when `None`.
    pub sort: Option<ImageSort>,
}

/// podman's `images --sort` keys: created lists the newest first, the others ascend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSort {
    Created,
    Id,
    Repository,
    Size,
    Tag,
}

impl ImageSort {
    pub fn parse(s: &str) -> Option<ImageSort> {
        Some(match s {
            "created" => ImageSort::Created,
            "id" => ImageSort::Id,
            "repository" => ImageSort::Repository,
            "size" => ImageSort::Size,
            "tag" => ImageSort::Tag,
            _ => return None,
        })
    }

    /// Order `rows` by this key (stable: ties keep the store's order).
    pub fn sort(self, rows: &mut [Row]) {
        match self {
            ImageSort::Created => rows.sort_by_key(|r| std::cmp::Reverse(r.created)),
            ImageSort::Id => rows.sort_by(|a, b| a.id.hex().cmp(b.id.hex())),
            ImageSort::Repository => rows.sort_by(|a, b| a.repository.cmp(&b.repository)),
            ImageSort::Size => rows.sort_by_key(|r| r.size),
            ImageSort::Tag => rows.sort_by(|a, b| a.tag.cmp(&b.tag)),
        }
    }
}

/// One row of `images`: an image under one of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The familiar repository (`busybox`, `127.0.0.1:5000/x`), `<none>` for a dangling image.
    pub repository: String,
    pub tag: String,
    pub id: Digest,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    /// The repository's digest for this image (`sha256:...`), if it was pulled or pushed.
    pub digest: Option<String>,
    /// Bytes of its layers other images share, and the containers using it: counted only when
    /// asked for (`images --format` offers them), else 0.
    pub shared: u64,
    pub containers: usize,
    /// In an additional (read-only) store, not the user's own (podman's `ReadOnly`).
    pub read_only: bool,
}

/// The rows of `images`: each image once per name, in the images' order; with `filter`
/// (`REPOSITORY[:TAG]`), only that repository (and tag).
pub fn rows(images: &[ImageRecord], filter: Option<&str>) -> Vec<Row> {
    let want = filter.and_then(|f| {
        crate::image::Reference::parse(f).ok().map(|r| {
            (
                r.repo_name(),
                f.contains(':').then(|| r.tag().unwrap_or("").to_string()),
            )
        })
    });
    let mut out = Vec::new();
    for i in images {
        let mut names: Vec<(String, String)> = i
            .names
            .iter()
            .filter_map(|n| {
                let (repo, tag) = n.rsplit_once(':').filter(|(r, _)| !r.is_empty())?;
                Some((repo.to_string(), tag.to_string()))
            })
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            if let Some((wrepo, wtag)) = &want
                && (&repo != wrepo || wtag.as_ref().is_some_and(|t| t != &tag))
            {
                continue;
            }
            let digest = i.repo_digests.iter().find_map(|d| {
                let (r, digest) = d.split_once('@')?;
                (r == repo).then(|| digest.to_string())
            });
            let repository = if repo == "<none>" {
                repo
            } else {
                familiar_repo(&repo)
            };
            out.push(Row {
                repository,
                tag,
                id: i.id.clone(),
                created: i.created,
                size: i.size,
                digest,
                shared: 0,
                containers: 0,
                read_only: false,
            });
        }
    }
    out
}

/// A parsed `--filter` of `images`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    Dangling(bool),
    Label(String, Option<String>),
    Before(String),
    Since(String),
    Reference(String),
}

fn parse_filter(f: &str) -> Result<Filter> {
    let bad = || crate::store::ImagesError::BadFilter(f.into());
    let (k, v) = f.split_once('=').ok_or_else(bad)?;
    Ok(match k {
        "dangling" => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => return Err(bad().into()),
        },
        "label" => {
            let (k, v) = super::filter::split_label(v);
            Filter::Label(k, v)
        }
        "before" => Filter::Before(v.into()),
        "since" => Filter::Since(v.into()),
        "reference" => Filter::Reference(v.into()),
        _ => return Err(bad().into()),
    })
}

/// The images and rows `filters` keep, in listing order.
fn select(
    store: &Store,
    images: &[ImageRecord],
    repository: Option<&str>,
    filters: &[String],
) -> Result<Vec<Row>> {
    let parsed: Vec<Filter> = filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<_>>()?;
    let created = |i: &ImageRecord| i.created.unwrap_or(i.added);
    let mut kept = Vec::new();
    'image: for i in images {
        for f in &parsed {
            let ok = match f {
                Filter::Dangling(d) => i.names.is_empty() == *d,
                Filter::Label(k, v) => {
                    let labels = store.image_labels(i);
                    match v {
                        Some(v) => labels.get(k) == Some(v),
                        None => labels.contains_key(k),
                    }
                }
                Filter::Before(r) => created(i) < created(&store.find_image(r)?),
                Filter::Since(r) => created(i) > created(&store.find_image(r)?),
                Filter::Reference(_) => true,
            };
            if !ok {
                continue 'image;
            }
        }
        kept.push(i.clone());
    }
    let patterns: Vec<&str> = parsed
        .iter()
        .filter_map(|f| match f {
            Filter::Reference(p) => Some(p.as_str()),
            _ => None,
        })
        .collect();
    let mut out = rows(&kept, repository);
    if !patterns.is_empty() {
        out.retain(|r| {
            r.repository != "<none>"
                && patterns.iter().any(|p| {
                    glob_match(p, &format!("{}:{}", r.repository, r.tag))
                        || glob_match(p, &r.repository)
                })
        });
    }
    Ok(out)
}

/// Go's `path.Match`: `*` is any run of characters but `/`, `?` one such character, `[...]` a
/// class (`[^...]` negated, ranges `a-z`), `\` quotes the next character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&k| k == 0 || n[k - 1] != '/')
            .any(|k| glob_at(&p[1..], &n[k..])),
        Some('?') => n.first().is_some_and(|&c| c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            let Some(end) = p.iter().skip(2).position(|&x| x == ']').map(|e| e + 2) else {
                return false;
            };
            let (negate, class) = match p[1] {
                '^' => (true, &p[2..end]),
                _ => (false, &p[1..end]),
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == '-' {
                    hit |= class[k] <= c && c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == c;
                    k += 1;
                }
            }
            hit != negate && c != '/' && glob_at(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

/// `images`: a row per image and name, docker's filters applied, in the store's order.
pub fn images(ctx: &Ctx, opts: &ImagesOptions) -> Result<Vec<Row>> {
    if let Some(f) = opts.filter.as_deref()
        && crate::image::sqsh::is_image_file(f)
    {
        return Ok(vec![super::squash::row(std::path::Path::new(f))?]);
    }
    let store = ctx.store()?;
    let images = store.images()?;
    let mut rows = select(&store, &images, opts.filter.as_deref(), &opts.filters)?;
    // The additional stores' images after the own ones, marked: they are used in place.
    let shared: Vec<ImageRecord> = store
        .additional_images()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let mut more = select(&store, &shared, opts.filter.as_deref(), &opts.filters)?;
    for r in &mut more {
        r.read_only = true;
    }
    let own = rows.len();
    rows.append(&mut more);
    if opts.usage {
        let sharing = store.sharing(&images)?;
        for r in &mut rows[..own] {
            r.shared = sharing.shared.get(&r.id).copied().unwrap_or(0);
            r.containers = sharing.containers.get(&r.id).copied().unwrap_or(0);
        }
    }
    if let Some(key) = opts.sort {
        key.sort(&mut rows);
    }
    Ok(rows)
}

//! `images`: the local images, as docker lists them, with docker's `--filter` and `--format`.
//!
//! Filters that concern a whole image (`dangling`, `label`, `before`, `since`) choose images;
//! `reference` then chooses rows (one per name). Different filter keys must all match, several
//! `reference` patterns any one. `--format` gets docker's fields for each row.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Ctx;
use crate::digest::Digest;
use crate::error::{Result, UsageError};
use crate::image::familiar_repo;
use crate::store::{ImageRecord, Store};

#[derive(Debug, Clone, Default)]
pub struct ImagesOptions {
    pub quiet: bool,
    pub no_trunc: bool,
    /// Only images in this repository (`busybox`, `127.0.0.1:5000/x`), optionally with a tag.
    pub filter: Option<String>,
    /// `--filter KEY=VALUE`.
    pub filters: Vec<String>,
    /// `--format`: `table ...`, `json`, or a Go template per row.
    pub format: Option<String>,
    /// Show the DIGEST column.
    pub digests: bool,
}

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub repository: String,
    pub tag: String,
    pub id: Digest,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    /// The repository's digest for this image (`sha256:...`), if it was pulled or pushed.
    pub digest: Option<String>,
}

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
            });
        }
    }
    out
}

/// An image's labels (`config.Labels` in its configuration); empty when it has none.
pub fn labels(ctx: &Ctx, image: &ImageRecord) -> BTreeMap<String, String> {
    let Ok(store) = ctx.store() else {
        return BTreeMap::new();
    };
    let Ok(bytes) = store.read_blob(&image.config) else {
        return BTreeMap::new();
    };
    let config: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    config
        .pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
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
    let bad = || UsageError::BadImageFilter(f.into());
    let (k, v) = f.split_once('=').ok_or_else(bad)?;
    Ok(match k {
        "dangling" => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => return Err(bad().into()),
        },
        "label" => {
            let (k, v) = super::rmi::split_label(v);
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
    ctx: &Ctx,
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
                    let labels = labels(ctx, i);
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

pub fn images(ctx: &Ctx, opts: &ImagesOptions) -> Result<String> {
    let store = ctx.store()?;
    let images = store.images()?;
    let rows = select(ctx, &store, &images, opts.filter.as_deref(), &opts.filters)?;
    match opts.format.as_deref() {
        Some(f) if !opts.quiet && !f.is_empty() && f != "table" => {
            let values = row_values(ctx, &store, &images, &rows, opts.no_trunc)?;
            super::container::render_rows(Some(f), IMAGES_TABLE, IMAGES_HEADERS, &values)
        }
        _ => Ok(render(&rows, opts, Utc::now())),
    }
}

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

/// Bytes of each image's layers that other images share, and the containers using each image.
pub struct Sharing {
    pub shared: HashMap<Digest, u64>,
    pub containers: HashMap<Digest, usize>,
}

/// [`Sharing`] for every image in the store.
pub fn sharing(store: &Store, images: &[ImageRecord]) -> Result<Sharing> {
    let mut users: HashMap<&Digest, usize> = HashMap::new();
    for i in images {
        let mut seen = std::collections::HashSet::new();
        for l in &i.layers {
            if seen.insert(&l.diff_id) {
                *users.entry(&l.diff_id).or_default() += 1;
            }
        }
    }
    let mut shared = HashMap::new();
    for i in images {
        let mut seen = std::collections::HashSet::new();
        let bytes = i
            .layers
            .iter()
            .filter(|l| seen.insert(&l.diff_id) && users[&l.diff_id] > 1)
            .map(|l| store.layer_record(&l.diff_id).map(|r| r.size).unwrap_or(0))
            .sum();
        shared.insert(i.id.clone(), bytes);
    }
    let mut containers = HashMap::new();
    for c in super::container::all(store)? {
        *containers.entry(c.record.image_id).or_default() += 1;
    }
    Ok(Sharing { shared, containers })
}

/// docker's `images --format` fields for each row.
fn row_values(
    _ctx: &Ctx,
    store: &Store,
    images: &[ImageRecord],
    rows: &[Row],
    no_trunc: bool,
) -> Result<Vec<Value>> {
    let now = Utc::now();
    let sharing = sharing(store, images)?;
    Ok(rows
        .iter()
        .map(|r| {
            let shared = sharing.shared.get(&r.id).copied().unwrap_or(0);
            json!({
                "Containers": sharing.containers.get(&r.id).copied().unwrap_or(0).to_string(),
                "CreatedAt": r.created.map(|c| c.format("%Y-%m-%d %H:%M:%S %z UTC").to_string()).unwrap_or_default(),
                "CreatedSince": r.created.map(|c| format!("{} ago", human_duration(now - c))).unwrap_or_else(|| "N/A".into()),
                "Digest": r.digest.clone().unwrap_or_else(|| "<none>".into()),
                "ID": if no_trunc { r.id.to_string() } else { r.id.short().to_string() },
                "Repository": r.repository,
                "SharedSize": human_size(shared),
                "Size": human_size(r.size),
                "Tag": r.tag,
                "UniqueSize": human_size(r.size.saturating_sub(shared)),
                "VirtualSize": human_size(r.size),
            })
        })
        .collect())
}

fn render(rows: &[Row], opts: &ImagesOptions, now: DateTime<Utc>) -> String {
    let id = |r: &Row| {
        if opts.no_trunc {
            r.id.to_string()
        } else {
            r.id.short().to_string()
        }
    };
    if opts.quiet {
        let mut seen = std::collections::HashSet::new();
        return rows
            .iter()
            .filter(|r| seen.insert(r.id.clone()))
            .map(|r| format!("{}\n", id(r)))
            .collect();
    }
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if opts.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    let mut table = vec![header];
    for r in rows {
        let created = r
            .created
            .map(|c| format!("{} ago", human_duration(now - c)))
            .unwrap_or_else(|| "N/A".into());
        let mut line = vec![r.repository.clone(), r.tag.clone()];
        if opts.digests {
            line.push(r.digest.clone().unwrap_or_else(|| "<none>".into()));
        }
        line.extend([id(r), created, human_size(r.size)]);
        table.push(line);
    }
    crate::cli::template::align(&table)
}

/// Columns padded to the widest cell plus three spaces, as docker's tabwriter does.
pub fn tabulate<const N: usize>(table: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in table {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// docker's (go-units) HumanDuration.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = ((d.num_seconds() as f64) / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// docker's (go-units) HumanSizeWithPrecision(size, 3): decimal units, three significant digits.
pub fn human_size(size: u64) -> String {
    human_size_digits(size, 3)
}

/// go-units' HumanSizeWithPrecision: decimal units, `digits` significant digits as printf's
/// `%.Ng` gives them for these values (no exponent; trailing zeros dropped).
pub fn human_size_digits(size: u64, digits: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let whole = match v {
        v if v >= 1000.0 => 4,
        v if v >= 100.0 => 3,
        v if v >= 10.0 => 2,
        _ => 1,
    };
    let s = format!("{v:.*}", digits.saturating_sub(whole));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// An image as `den image inspect` shows it: docker's shape.
pub fn inspect_value(ctx: &Ctx, image: &crate::store::ImageRecord) -> Result<serde_json::Value> {
    let store = ctx.store()?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.config)?)
        .map_err(|e| crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source: e,
        })?;
    let tags: Vec<String> = image
        .names
        .iter()
        .map(|n| match n.rsplit_once(':') {
            Some((repo, tag)) if !repo.is_empty() => format!("{}:{tag}", familiar_repo(repo)),
            _ => n.clone(),
        })
        .collect();
    let get = |k: &str| config.get(k).cloned().unwrap_or(serde_json::Value::Null);
    Ok(serde_json::json!({
        "Id": image.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": config.get("comment").cloned().unwrap_or(serde_json::json!("")),
        "Created": get("created"),
        "Author": config.get("author").cloned().unwrap_or(serde_json::json!("")),
        "Config": get("config"),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "RootFS": {
            "Type": "layers",
            "Layers": image.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "History": config.get("history").cloned().unwrap_or(serde_json::json!([])),
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }))
}

/// `image inspect`.
pub fn inspect(ctx: &Ctx, names: &[String], format: Option<&str>) -> (String, Vec<crate::Error>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match ctx
            .store()
            .and_then(|s| Ok(s.find_image(n)?))
            .and_then(|i| inspect_value(ctx, &i))
        {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    super::container::render_values(values, format, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_200_000_000), "1.2GB");
        assert_eq!(human_size(5_000), "5kB");
    }

    #[test]
    fn durations_like_docker() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(30)), "30 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    fn img(id: &str, names: &[&str], size: u64) -> ImageRecord {
        let mut r = crate::store::test_image(id, names);
        r.created = Some(Utc::now() - chrono::Duration::days(3));
        r.size = size;
        r
    }

    #[test]
    fn listing_shows_familiar_names_and_dangling_images() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let images = vec![
            img(
                &a,
                &[
                    "docker.io/library/busybox:latest",
                    "127.0.0.1:5000/library/busybox:1",
                ],
                4_261_000,
            ),
            img(&b, &[], 10),
        ];
        let out = render(&rows(&images, None), &ImagesOptions::default(), Utc::now());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("REPOSITORY"), "{out}");
        assert!(
            lines[1].starts_with("busybox ")
                && lines[1].contains("latest")
                && lines[1].contains(&a[..12])
        );
        assert!(lines[1].contains("3 days ago") && lines[1].ends_with("4.26MB"));
        assert!(lines[2].starts_with("127.0.0.1:5000/library/busybox"));
        assert!(lines[3].starts_with("<none>"));
        let q = render(
            &rows(&images, None),
            &ImagesOptions {
                quiet: true,
                ..Default::default()
            },
            Utc::now(),
        );
        assert_eq!(q, format!("{}\n{}\n", &a[..12], &b[..12]));
        let filtered = rows(&images, Some("busybox"));
        assert_eq!(filtered.len(), 1);
    }
}

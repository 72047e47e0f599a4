//! `images`: the local images, as docker lists them.

use chrono::{DateTime, Utc};

use super::Ctx;
use crate::error::Result;
use crate::image::familiar_repo;
use crate::store::ImageRecord;

#[derive(Debug, Clone, Default)]
pub struct ImagesOptions {
    pub quiet: bool,
    pub no_trunc: bool,
    /// Only images in this repository (`busybox`, `127.0.0.1:5000/x`), optionally with a tag.
    pub filter: Option<String>,
}

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub repository: String,
    pub tag: String,
    pub id: String,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
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
            });
        }
    }
    out
}

pub fn images(ctx: &Ctx, opts: &ImagesOptions) -> Result<String> {
    let store = ctx.store()?;
    let rows = rows(&store.images()?, opts.filter.as_deref());
    Ok(render(&rows, opts, Utc::now()))
}

fn render(rows: &[Row], opts: &ImagesOptions, now: DateTime<Utc>) -> String {
    let id = |r: &Row| {
        if opts.no_trunc {
            format!("sha256:{}", r.id)
        } else {
            r.id[..12.min(r.id.len())].to_string()
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
    let mut table = vec![[
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for r in rows {
        let created = r
            .created
            .map(|c| format!("{} ago", human_duration(now - c)))
            .unwrap_or_else(|| "N/A".into());
        table.push([
            r.repository.clone(),
            r.tag.clone(),
            id(r),
            created,
            human_size(r.size),
        ]);
    }
    tabulate(&table)
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
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g3(v), UNITS[i])
}

/// printf's `%.3g` for the values human_size produces (0 <= v < 1000).
fn format_g3(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    // %g drops trailing zeros.
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An image as `den image inspect` shows it: docker's shape.
pub fn inspect_value(ctx: &Ctx, image: &crate::store::ImageRecord) -> Result<serde_json::Value> {
    let store = ctx.store()?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.config)?)
        .map_err(|e| crate::image::ImageError::BadConfig {
            digest: image.config.clone(),
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
        "Id": image.digest(),
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
        ImageRecord {
            id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            manifest: String::new(),
            manifest_media_type: String::new(),
            config: String::new(),
            layers: vec![],
            created: Some(Utc::now() - chrono::Duration::days(3)),
            size,
            os: "linux".into(),
            architecture: "amd64".into(),
            added: Utc::now(),
        }
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

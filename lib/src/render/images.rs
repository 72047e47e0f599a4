//! Images as docker shows them: `images` (one row per name, familiar names, `<none>` for
//! dangling images), `history`, and the reports of `rmi`, `load` and `logout`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::units::{ellipsis, human_duration, human_size};
use super::{Listing, TemplateError};
use crate::digest::Digest;
use crate::image::Reference;
use crate::ops::history::Step;
use crate::ops::images::Row;
use crate::ops::rmi::Removed;

/// `images --format`: docker's default columns and the header of every field it offers.
pub const IMAGES: Listing = Listing {
    table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: &[
        ("Containers", "CONTAINERS"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedSince", "CREATED"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("ReadOnly", "R/O"),
        ("Repository", "REPOSITORY"),
        ("SharedSize", "SHARED SIZE"),
        ("Size", "SIZE"),
        ("Tag", "TAG"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ],
};

/// How `images` shows its rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImagesView<'a> {
    /// Image ids only, each once.
    pub quiet: bool,
    pub no_trunc: bool,
    /// The DIGEST column.
    pub digests: bool,
    /// `--format`: `table ...`, `json`, or a Go template per row.
    pub format: Option<&'a str>,
}

impl ImagesView<'_> {
    /// The format that replaces docker's fixed listing, if one does (not with `-q`, and not
    /// plain `table`). Only such a format shows [`Row::shared`] and [`Row::containers`].
    pub fn custom_format(&self) -> Option<&str> {
        self.format
            .filter(|f| !self.quiet && !f.is_empty() && *f != "table")
    }
}

/// `images`: the rows as `view` asks.
pub fn images(
    rows: &[Row],
    view: &ImagesView,
    now: DateTime<Utc>,
) -> Result<String, TemplateError> {
    match view.custom_format() {
        Some(f) => super::rows(Some(f), &IMAGES, &row_values(rows, view.no_trunc, now)),
        None => Ok(listing(rows, view, now)),
    }
}

fn created_since(created: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    created
        .map(|c| format!("{} ago", human_duration(now - c)))
        .unwrap_or_else(|| "N/A".into())
}

/// docker's `images --format` fields for each row.
pub fn row_values(rows: &[Row], no_trunc: bool, now: DateTime<Utc>) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({
                "Containers": r.containers.to_string(),
                "CreatedAt": r.created.map(|c| c.format("%Y-%m-%d %H:%M:%S %z UTC").to_string()).unwrap_or_default(),
                "CreatedSince": created_since(r.created, now),
                "Digest": r.digest.clone().unwrap_or_else(|| "<none>".into()),
                "ID": if no_trunc { r.id.to_string() } else { r.id.short().to_string() },
                "ReadOnly": r.read_only,
                "Repository": r.repository,
                "SharedSize": human_size(r.shared),
                "Size": human_size(r.size),
                "Tag": r.tag,
                "UniqueSize": human_size(r.size.saturating_sub(r.shared)),
                "VirtualSize": human_size(r.size),
            })
        })
        .collect()
}

/// docker's fixed listing (no format, or `table`): ids only with `quiet`, the DIGEST column
/// with `digests`.
fn listing(rows: &[Row], view: &ImagesView, now: DateTime<Utc>) -> String {
    let id = |r: &Row| {
        if view.no_trunc {
            r.id.to_string()
        } else {
            r.id.short().to_string()
        }
    };
    if view.quiet {
        let mut seen = std::collections::HashSet::new();
        return rows
            .iter()
            .filter(|r| seen.insert(r.id.clone()))
            .map(|r| format!("{}\n", id(r)))
            .collect();
    }
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if view.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    // podman's R/O column, where an additional store's image is listed.
    let read_only = rows.iter().any(|r| r.read_only);
    if read_only {
        header.push("R/O".into());
    }
    let mut table = vec![header];
    for r in rows {
        let mut line = vec![r.repository.clone(), r.tag.clone()];
        if view.digests {
            line.push(r.digest.clone().unwrap_or_else(|| "<none>".into()));
        }
        line.extend([id(r), created_since(r.created, now), human_size(r.size)]);
        if read_only {
            line.push(r.read_only.to_string());
        }
        table.push(line);
    }
    super::table::align(&table)
}

// ------------------------------------------------------------------------------------------
// history

/// `history`: docker's default columns and headers.
pub const HISTORY: Listing = Listing {
    table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

/// How `history` shows the steps.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryView<'a> {
    pub no_trunc: bool,
    /// The IMAGE column only.
    pub quiet: bool,
    pub format: Option<&'a str>,
}

/// docker's rows for the steps (oldest first) of image `id`, newest first. Only the newest
/// carries the id: docker keeps none for the steps of a pulled image, and prints `<missing>`.
pub fn history_rows(id: &Digest, steps: &[Step], no_trunc: bool, now: DateTime<Utc>) -> Vec<Value> {
    let id = if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    };
    steps
        .iter()
        .rev()
        .enumerate()
        .map(|(k, s)| {
            let by = s.created_by.replace('\t', " ");
            json!({
                "ID": if k == 0 { id.clone() } else { "<missing>".into() },
                "CreatedSince": created_since(s.created, now),
                "CreatedAt": s.created.map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                "CreatedBy": if no_trunc { by } else { ellipsis(&by, 45) },
                "Size": human_size(s.size),
                "Comment": s.comment,
            })
        })
        .collect()
}

/// `history`: the steps of image `id` as `view` asks.
pub fn history(
    id: &Digest,
    steps: &[Step],
    view: &HistoryView,
    now: DateTime<Utc>,
) -> Result<String, TemplateError> {
    let rows = history_rows(id, steps, view.no_trunc, now);
    if view.quiet {
        return Ok(rows
            .iter()
            .map(|r| format!("{}\n", r["ID"].as_str().unwrap_or_default()))
            .collect());
    }
    super::rows(view.format, &HISTORY, &rows)
}

// ------------------------------------------------------------------------------------------
// rmi, load, logout

/// A removal as `rmi` prints it.
pub fn removed(r: &Removed) -> String {
    match r {
        Removed::Untagged(n) => format!("Untagged: {n}"),
        Removed::Deleted(d) => format!("Deleted: {d}"),
    }
}

/// A removal as `image prune` and `system prune` print it.
pub fn pruned(r: &Removed) -> String {
    match r {
        Removed::Untagged(n) => format!("untagged: {n}"),
        Removed::Deleted(d) => format!("deleted: {d}"),
    }
}

/// docker's report of a load: `Loaded image: NAME` per name (after a note when the name is
/// taken from another image), `Loaded image ID: ID` for an image without one.
pub fn loaded(loaded: &[crate::archive::Loaded]) -> String {
    let mut out = String::new();
    for l in loaded {
        if l.names.is_empty() {
            out.push_str(&format!("Loaded image ID: {}\n", l.id));
        }
        for n in &l.names {
            let familiar = format!("{}:{}", n.familiar_repo(), n.tag().unwrap_or("latest"));
            if let Some((_, old)) = l.renamed.iter().find(|(c, _)| *c == n.canonical()) {
                out.push_str(&format!(
                    "The image {familiar} already exists, renaming the old one with ID {old} to empty string\n"
                ));
            }
            out.push_str(&format!("Loaded image: {familiar}\n"));
        }
    }
    out
}

/// What `logout` did, in docker's words, and the other tools' files it left alone.
pub fn logout(registry: &str, removed: bool, elsewhere: &[PathBuf]) -> String {
    let mut out = if removed {
        format!("Removing login credentials for {registry}\n")
    } else {
        format!("Not logged in to {registry}\n")
    };
    for f in elsewhere {
        out.push_str(&format!(
            "note: {} also holds credentials for {registry}; den left that file alone\n",
            f.display()
        ));
    }
    out
}

/// What `pull` prints: the status line for stderr (`Status: Downloaded newer image for
/// busybox:latest`, with the name as the user writes it) and the name pulled, for stdout
/// (`docker.io/library/busybox:latest`, or `NAME@DIGEST` for a pull by digest).
pub fn pulled(reference: &Reference, digest: &Digest, changed: bool) -> (String, String) {
    let shown = if reference.tag().is_some() {
        reference.canonical()
    } else {
        format!("{}@{}", reference.repo_name(), digest)
    };
    let familiar = shown.replacen(&reference.repo_name(), &reference.familiar_repo(), 1);
    let status = if changed {
        format!("Status: Downloaded newer image for {familiar}")
    } else {
        format!("Status: Image is up to date for {familiar}")
    };
    (status, format!("{shown}\n"))
}

/// What `push` prints when it is done: `TAG: digest: DIGEST size: SIZE`, as docker does.
pub fn pushed(reference: &Reference, digest: &str, size: usize) -> String {
    format!(
        "{}: digest: {digest} size: {size}\n",
        reference.tag().unwrap_or("latest")
    )
}

/// What `build` says on stderr when it is done: the short id, and each name it gave.
pub fn built(id: &Digest, tags: &[String]) -> String {
    let mut out = format!("--> {}\n", id.short());
    for t in tags {
        out.push_str(&format!("Successfully tagged {t}\n"));
    }
    out
}

// ------------------------------------------------------------------------------------------
// search

/// `search`: docker's columns (NAME DESCRIPTION STARS OFFICIAL).
pub const SEARCH: Listing = Listing {
    table: "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
    headers: &[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
    ],
};

/// A search result's fields as docker's templates read them; the description cut at 45
/// characters unless `no_trunc`, official shown as `[OK]`.
pub fn search_rows(found: &[crate::ops::search::Found], no_trunc: bool) -> Vec<serde_json::Value> {
    found
        .iter()
        .map(|f| {
            let description = if no_trunc {
                f.description.clone()
            } else {
                super::units::ellipsis(&f.description, 45)
            };
            serde_json::json!({
                "Name": f.name,
                "Description": description,
                "StarCount": f.stars.to_string(),
                "IsOfficial": if f.official { "[OK]" } else { "" },
                "IsAutomated": if f.automated { "[OK]" } else { "" },
            })
        })
        .collect()
}

/// `manifest create`: docker's line, with the list's full name.
pub fn manifest_created(list: &crate::image::list::ManifestList) -> String {
    format!("Created manifest list {}\n", list.name)
}

/// `manifest add` and `manifest remove`: the list's id, as podman prints it.
pub fn manifest_id(list: &crate::image::list::ManifestList) -> String {
    format!("{}\n", list.id.hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Reference;
    use crate::ops::images::rows;
    use crate::store::ImageRecord;

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
        let view = ImagesView::default();
        let out = images_text(&images, &view);
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
        let quiet = ImagesView {
            quiet: true,
            format: Some("{{.ID}}"),
            ..Default::default()
        };
        assert_eq!(quiet.custom_format(), None);
        assert_eq!(
            images_text(&images, &quiet),
            format!("{}\n{}\n", &a[..12], &b[..12])
        );
        let filtered = rows(&images, Some("busybox"));
        assert_eq!(filtered.len(), 1);
    }

    #[test]
    fn read_only_images_add_podmans_r_o_column() {
        let mut r = rows(
            &[
                img(&"a".repeat(64), &["docker.io/library/x:1"], 3000),
                img(&"b".repeat(64), &["docker.io/shared/solver:2.1"], 3000),
            ],
            None,
        );
        let plain = images(&r, &ImagesView::default(), Utc::now()).unwrap();
        assert!(!plain.contains("R/O"), "{plain}");
        r[1].read_only = true;
        let out = images(&r, &ImagesView::default(), Utc::now()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("R/O"), "{out}");
        assert!(
            lines[1].ends_with("false") && lines[2].ends_with("true"),
            "{out}"
        );
        let view = ImagesView {
            format: Some("{{.Repository}} {{.ReadOnly}}"),
            ..Default::default()
        };
        assert_eq!(
            images(&r, &view, Utc::now()).unwrap(),
            "x false\nshared/solver true\n"
        );
    }

    fn images_text(images: &[ImageRecord], view: &ImagesView) -> String {
        super::images(&rows(images, None), view, Utc::now()).unwrap()
    }

    #[test]
    fn formats_offer_docker_fields() {
        let mut r = rows(
            &[img(&"a".repeat(64), &["docker.io/library/x:1"], 3000)],
            None,
        );
        r[0].shared = 1000;
        r[0].containers = 2;
        let view = ImagesView {
            format: Some(
                "{{.Repository}}:{{.Tag}} {{.Size}} {{.SharedSize}} {{.UniqueSize}} {{.Containers}} {{.Digest}}",
            ),
            ..Default::default()
        };
        assert!(view.custom_format().is_some());
        assert_eq!(
            images(&r, &view, Utc::now()).unwrap(),
            "x:1 3kB 1kB 2kB 2 <none>\n"
        );
        let table = ImagesView {
            format: Some("table {{.ID}}\t{{.VirtualSize}}"),
            ..Default::default()
        };
        assert_eq!(
            images(&r, &table, Utc::now()).unwrap(),
            format!("IMAGE ID       SIZE\n{}   3kB\n", &"a".repeat(12))
        );
    }

    #[test]
    fn history_rows_newest_first() {
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let steps = [
            Step {
                created: t("2024-01-02T03:04:05Z"),
                created_by: "/bin/sh -c #(nop) ADD file:abc in / ".into(),
                comment: String::new(),
                size: 4_261_000,
            },
            Step {
                created: t("2024-01-02T03:04:06Z"),
                created_by: "ENV\tA=1".into(),
                comment: String::new(),
                size: 0,
            },
            Step {
                created: t("2024-01-02T03:04:07Z"),
                created_by: "RUN /bin/sh -c echo a very long command that docker cuts at forty-five characters".into(),
                comment: "c".into(),
                size: 12,
            },
        ];
        let id = Digest::from_hex(&"f".repeat(64)).unwrap();
        let now = t("2026-01-02T03:04:05Z").unwrap();
        let rows = history_rows(&id, &steps, false, now);
        assert_eq!(rows[0]["ID"], "ffffffffffff");
        assert_eq!(rows[1]["ID"], "<missing>");
        assert_eq!(rows[0]["Size"], "12B");
        assert_eq!(rows[0]["Comment"], "c");
        assert_eq!(rows[0]["CreatedBy"].as_str().unwrap().chars().count(), 45);
        assert_eq!(rows[1]["CreatedBy"], "ENV A=1");
        assert_eq!(rows[1]["Size"], "0B");
        assert_eq!(rows[2]["Size"], "4.26MB");
        assert_eq!(rows[2]["CreatedSince"], "2 years ago");
        let full = history_rows(&id, &steps, true, now);
        assert_eq!(full[0]["ID"], format!("sha256:{}", "f".repeat(64)));
        assert!(
            full[0]["CreatedBy"]
                .as_str()
                .unwrap()
                .ends_with("characters")
        );
        let quiet = HistoryView {
            quiet: true,
            ..Default::default()
        };
        assert_eq!(
            history(&id, &steps, &quiet, now).unwrap(),
            "ffffffffffff\n<missing>\n<missing>\n"
        );
    }

    #[test]
    fn loads_report_like_docker() {
        let loaded = vec![
            crate::archive::Loaded {
                id: Digest::from_hex(&"a".repeat(64)).unwrap(),
                names: vec![
                    Reference::parse("busybox").unwrap(),
                    Reference::parse("127.0.0.1:5000/x/y:2").unwrap(),
                ],
                renamed: vec![(
                    "docker.io/library/busybox:latest".into(),
                    Digest::from_hex(&"c".repeat(64)).unwrap(),
                )],
            },
            crate::archive::Loaded {
                id: Digest::from_hex(&"b".repeat(64)).unwrap(),
                names: vec![],
                renamed: vec![],
            },
        ];
        assert_eq!(
            super::loaded(&loaded),
            format!(
                "The image busybox:latest already exists, renaming the old one with ID sha256:{} to empty string\n\
                 Loaded image: busybox:latest\nLoaded image: 127.0.0.1:5000/x/y:2\nLoaded image ID: sha256:{}\n",
                "c".repeat(64),
                "b".repeat(64)
            )
        );
    }

    #[test]
    fn removals_report_like_docker() {
        let untagged = Removed::Untagged("busybox:latest".into());
        let deleted = Removed::Deleted(format!("sha256:{}", "a".repeat(64)));
        assert_eq!(removed(&untagged), "Untagged: busybox:latest");
        assert_eq!(pruned(&untagged), "untagged: busybox:latest");
        assert_eq!(
            removed(&deleted),
            format!("Deleted: sha256:{}", "a".repeat(64))
        );
        assert_eq!(
            pruned(&deleted),
            format!("deleted: sha256:{}", "a".repeat(64))
        );
    }

    #[test]
    fn logout_says_what_it_did() {
        assert_eq!(
            logout("r:5000", true, &[PathBuf::from("/h/.docker/config.json")]),
            "Removing login credentials for r:5000\n\
             note: /h/.docker/config.json also holds credentials for r:5000; den left that file alone\n"
        );
        assert_eq!(logout("r:5000", false, &[]), "Not logged in to r:5000\n");
    }
}

//! `history`: the steps that made an image, newest first, from its configuration's `history`.
//!
//! Each history entry either made a layer or was metadata only (`empty_layer`, e.g. ENV); the
//! entries that made layers are matched, in order, with the image's layers, whose unpacked
//! sizes are shown. Only the newest row carries the image's id: docker keeps no ids for the
//! steps of a pulled image, and prints `<missing>`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Ctx;
use super::images::{human_duration, human_size};
use crate::error::Result;
use crate::store::{ImageRecord, Store};

#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    pub no_trunc: bool,
    pub quiet: bool,
    pub format: Option<String>,
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub comment: String,
    /// Unpacked bytes of the layer it made; 0 for a metadata step.
    pub size: u64,
}

/// The steps of `image`, oldest first. `layer_size` gives a layer's unpacked size.
pub fn steps(
    config: &Value,
    image: &ImageRecord,
    layer_size: &dyn Fn(&crate::digest::Digest) -> u64,
) -> Vec<Step> {
    let mut layers = image.layers.iter();
    let entries = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let time = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&Utc))
    };
    let mut out: Vec<Step> = entries
        .iter()
        .map(|h| {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                layers.next().map(|l| layer_size(&l.diff_id)).unwrap_or(0)
            };
            Step {
                created: time(h.get("created")),
                created_by: h
                    .get("created_by")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                comment: h
                    .get("comment")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                size,
            }
        })
        .collect();
    // Layers the history does not account for (an image without history) get a row each.
    for l in layers {
        out.push(Step {
            created: image.created,
            created_by: String::new(),
            comment: String::new(),
            size: layer_size(&l.diff_id),
        });
    }
    out
}

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// docker's rows, newest first.
pub fn rows(
    image: &ImageRecord,
    steps: &[Step],
    opts: &HistoryOptions,
    now: DateTime<Utc>,
) -> Vec<Value> {
    let id = if opts.no_trunc {
        image.id.to_string()
    } else {
        image.short_id().to_string()
    };
    steps
        .iter()
        .rev()
        .enumerate()
        .map(|(k, s)| {
            let by = s.created_by.replace('\t', " ");
            json!({
                "ID": if k == 0 { id.clone() } else { "<missing>".into() },
                "CreatedSince": s.created.map(|c| format!("{} ago", human_duration(now - c))).unwrap_or_else(|| "N/A".into()),
                "CreatedAt": s.created.map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                "CreatedBy": if opts.no_trunc { by } else { super::container::ellipsis(&by, 45) },
                "Size": human_size(s.size),
                "Comment": s.comment,
            })
        })
        .collect()
}

pub fn history(ctx: &Ctx, input: &str, opts: &HistoryOptions) -> Result<String> {
    let store = ctx.store()?;
    let image = store.find_image(input)?;
    let config: Value = serde_json::from_slice(&store.read_blob(&image.config)?).map_err(|e| {
        crate::image::ImageError::BadConfig {
            digest: image.config.to_string(),
            source: e,
        }
    })?;
    let size = |d: &crate::digest::Digest| layer_size(&store, d);
    let steps = steps(&config, &image, &size);
    let rows = rows(&image, &steps, opts, Utc::now());
    if opts.quiet {
        return Ok(rows
            .iter()
            .map(|r| format!("{}\n", r["ID"].as_str().unwrap_or_default()))
            .collect());
    }
    super::container::render_rows(
        opts.format.as_deref(),
        HISTORY_TABLE,
        HISTORY_HEADERS,
        &rows,
    )
}

fn layer_size(store: &Store, diff_id: &crate::digest::Digest) -> u64 {
    store.layer_record(diff_id).map(|r| r.size).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::store::LayerRef;

    fn image(layers: &[&str]) -> ImageRecord {
        let mut r = crate::store::test_image(&"f".repeat(64), &[]);
        r.layers = layers
            .iter()
            .map(|d| LayerRef {
                diff_id: Digest::of(d.as_bytes()),
                blob: Digest::of(d.as_bytes()),
                media_type: String::new(),
                size: 0,
            })
            .collect();
        r
    }

    #[test]
    fn layers_match_non_empty_entries_newest_first() {
        let config = json!({"history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created": "2024-01-02T03:04:06Z", "created_by": "ENV\tA=1", "empty_layer": true},
            {"created": "2024-01-02T03:04:07Z", "created_by": "RUN /bin/sh -c echo a very long command that docker cuts at forty-five characters", "comment": "c"},
        ]});
        let img = image(&["one", "two"]);
        let one = Digest::of(b"one");
        let size = |d: &Digest| if *d == one { 4_261_000 } else { 12 };
        let steps = steps(&config, &img, &size);
        assert_eq!(
            steps.iter().map(|s| s.size).collect::<Vec<_>>(),
            [4_261_000, 0, 12]
        );
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let rows = rows(&img, &steps, &HistoryOptions::default(), now);
        assert_eq!(rows[0]["ID"], "ffffffffffff");
        assert_eq!(rows[1]["ID"], "<missing>");
        assert_eq!(rows[0]["Size"], "12B");
        assert_eq!(rows[0]["Comment"], "c");
        assert_eq!(rows[0]["CreatedBy"].as_str().unwrap().chars().count(), 45);
        assert_eq!(rows[1]["CreatedBy"], "ENV A=1");
        assert_eq!(rows[1]["Size"], "0B");
        assert_eq!(rows[2]["Size"], "4.26MB");
        assert_eq!(rows[2]["CreatedSince"], "2 years ago");
        let full = super::rows(
            &img,
            &steps,
            &HistoryOptions {
                no_trunc: true,
                ..Default::default()
            },
            now,
        );
        assert_eq!(full[0]["ID"], format!("sha256:{}", "f".repeat(64)));
        assert!(
            full[0]["CreatedBy"]
                .as_str()
                .unwrap()
                .ends_with("characters")
        );
    }

    #[test]
    fn images_without_history_get_a_row_per_layer() {
        let img = image(&["sha256:one"]);
        let steps = steps(&json!({}), &img, &|_| 5);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].size, 5);
    }
}

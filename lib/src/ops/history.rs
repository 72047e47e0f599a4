//! `history`: the steps that made an image, from its configuration's `history`.
//!
//! Each history entry either made a layer or was metadata only (`empty_layer`, e.g. ENV); the
//! entries that made layers are matched, in order, with the image's layers, whose unpacked
//! sizes are shown ([`crate::render::images::history`] shows the steps as docker does).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Ctx;
use super::Result;
use crate::store::{ImageRecord, Store};

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub comment: String,
    /// Unpacked bytes of the layer it made; 0 for a metadata step.
    pub size: u64,
}

/// An image and the steps that made it, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    pub image: ImageRecord,
    pub steps: Vec<Step>,
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

/// `history`: the image a user names, and its steps.
pub fn history(ctx: &Ctx, input: &str) -> Result<History> {
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
    Ok(History { image, steps })
}

fn layer_size(store: &Store, diff_id: &crate::digest::Digest) -> u64 {
    store.layer_record(diff_id).map(|r| r.size).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn layers_match_non_empty_entries() {
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
        assert_eq!(steps[1].created_by, "ENV\tA=1");
        assert_eq!(steps[2].comment, "c");
        assert_eq!(
            steps[0].created,
            Some(
                DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
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

//! `events`: what den did, from the journal the verbs and monitors write (den has no daemon to
//! ask; see [`crate::store::events`]). Past events first, then new ones as they are appended,
//! until `--until` passes or the caller stops.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Ctx, Result};
use crate::store::{ContainersError, Event, events::Follow};

/// `events`' selection: a time window and docker's filters (`type`, `event`, `container`,
/// `image`, `label`; the same key twice is either value, different keys all hold).
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub filters: Vec<(String, String)>,
}

/// Parse `KEY=VALUE` filters, refusing keys `events` does not know.
pub fn parse_filters(filters: &[String]) -> Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if matches!(k, "type" | "event" | "container" | "image" | "label") => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(ContainersError::BadEventFilter(f.clone()).into()),
        })
        .collect()
}

fn matches_one(e: &Event, key: &str, value: &str) -> bool {
    let attr = |k: &str| e.attributes.get(k).map(String::as_str);
    match key {
        "type" => e.kind == value,
        "event" => e.action == value,
        "container" => {
            e.kind == "container"
                && (attr("name") == Some(value) || (!value.is_empty() && e.id.starts_with(value)))
        }
        "image" => {
            let image = if e.kind == "image" {
                attr("name").unwrap_or(&e.id)
            } else {
                attr("image").unwrap_or("")
            };
            image == value || e.id == value || image.strip_suffix(":latest") == Some(value)
        }
        "label" => match value.split_once('=') {
            Some((k, v)) => attr(k) == Some(v),
            None => attr(value).is_some(),
        },
        _ => false,
    }
}

/// Whether an event passes the filters: for each key, any of its values.
pub fn matches(e: &Event, filters: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    keys.iter().all(|key| {
        filters
            .iter()
            .filter(|(k, _)| k == key)
            .any(|(k, v)| matches_one(e, k, v))
    })
}

fn in_window(e: &Event, opts: &EventsOptions) -> bool {
    let nanos = |t: &DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    opts.since.as_ref().is_none_or(|s| e.time >= nanos(s))
        && opts.until.as_ref().is_none_or(|u| e.time <= nanos(u))
}

/// `events`: hand each selected event to `emit`, past ones first; then follow the journal
/// until `until` passes (forever without it, or until `emit` returns false).
pub fn events(ctx: &Ctx, opts: &EventsOptions, emit: &mut dyn FnMut(&Event) -> bool) -> Result<()> {
    let store = ctx.store()?;
    // Follow from here before reading the past: nothing appended between is lost (an event
    // appended in between may show twice; its time orders it).
    let mut follow = Follow::new(&store);
    let mut last = i64::MIN;
    for e in store.events() {
        if in_window(&e, opts) && matches(&e, &opts.filters) {
            last = last.max(e.time);
            if !emit(&e) {
                return Ok(());
            }
        }
    }
    loop {
        if opts.until.is_some_and(|u| Utc::now() > u) {
            return Ok(());
        }
        for e in follow.poll() {
            if e.time > last && in_window(&e, opts) && matches(&e, &opts.filters) && !emit(&e) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Event {
        Event::new("container", "start", "abcdef")
            .with("name", "web")
            .with("image", "busybox:latest")
            .with("tier", "front")
    }

    #[test]
    fn filters_as_docker_combines_them() {
        let f = |s: &[&str]| {
            parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let e = start();
        assert!(matches(&e, &f(&["type=container", "event=start"])));
        assert!(matches(&e, &f(&["event=stop", "event=start"])));
        assert!(!matches(&e, &f(&["type=image"])));
        assert!(matches(&e, &f(&["container=web"])));
        assert!(matches(&e, &f(&["container=abc"])));
        assert!(matches(&e, &f(&["image=busybox"])));
        assert!(matches(&e, &f(&["label=tier=front", "label=tier"])));
        assert!(!matches(&e, &f(&["label=tier=back"])));
        assert!(parse_filters(&["nope=1".into()]).is_err());
        assert!(parse_filters(&["type".into()]).is_err());
    }
}

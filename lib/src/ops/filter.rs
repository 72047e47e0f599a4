//! The filter and time syntax several verbs share: docker's times (`--since`, `--until`,
//! `until=`), `KEY[=VALUE]` labels, and `image prune`'s filters (also `system prune`'s). Not a
//! verb: parsing shared by verbs, so no verb calls another for it.

use chrono::{DateTime, Utc};

use super::Result;
use crate::store::PruneFilter;

/// A time for `--since`/`--until`: RFC 3339, a Unix timestamp, or a duration ago (`10m`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return DateTime::from_timestamp(secs as i64, ((secs.fract()) * 1e9) as u32);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "ms" => n / 1000.0,
        _ => return None,
    };
    Some(now - chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

/// `k=v` as a key and a value; `k` alone as a key.
pub fn split_label(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((k, v)) => (k.into(), Some(v.into())),
        None => (s.into(), None),
    }
}

/// `image prune` filters: `until=TIME`, `label=K[=V]`, `label!=K[=V]`.
pub fn prune_filter(f: &str, now: DateTime<Utc>) -> Result<PruneFilter> {
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
        "until" => Ok(PruneFilter::Until(parse_time(v, now).ok_or_else(bad)?)),
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

/// Every filter of `filters`, or the first that does not parse.
pub fn prune_filters(filters: &[String], now: DateTime<Utc>) -> Result<Vec<PruneFilter>> {
    filters.iter().map(|f| prune_filter(f, now)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let now = Utc::now();
        assert_eq!(
            parse_time("10s", now),
            Some(now - chrono::Duration::seconds(10))
        );
        assert!(parse_time("2026-01-02T03:04:05Z", now).is_some());
        assert!(parse_time("yesterday", now).is_none());
    }

    #[test]
    fn prune_filters_parse() {
        let now = chrono::Utc::now();
        assert!(prune_filter("until=24h", now).is_ok());
        assert!(prune_filter("label=a=b", now).is_ok());
        assert!(prune_filter("label!=a", now).is_ok());
        assert!(prune_filter("dangling", now).is_err());
        assert!(prune_filter("colour=red", now).is_err());
    }
}

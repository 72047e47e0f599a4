//! `search TERM`: docker's search API (`/v1/search`) where the registry offers it, else the
//! distribution catalog (`/v2/_catalog`, page by page through its `Link` header) filtered by
//! TERM. The registry is TERM's first component (`localhost:5000/alpine`); a TERM that names
//! none is searched in each registry of `[registry] search` in config.toml, in order (podman's
//! `unqualified-search-registries`; `--limit` applies to each, as podman's does). With none
//! configured den says how to name one: docker searches Docker Hub through its index, which
//! den does not speak.

use super::{Ctx, Result};
use crate::registry::RegistryError;
use crate::registry::session::Session;

/// The most catalog pages read, and the most bytes in one answer: a registry's catalog is
/// outside input.
const MAX_PAGES: usize = 100;
const MAX_BODY: usize = 4 << 20;

/// One result, with docker's columns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub name: String,
    pub description: String,
    pub stars: u64,
    pub official: bool,
    pub automated: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub term: String,
    pub limit: usize,
    /// `stars=N`, `is-official=true|false`, `is-automated=true|false`.
    pub filters: Vec<(String, String)>,
    /// `--authfile`, `--creds`.
    pub access: crate::auth::Access,
}

/// Split `REGISTRY/TERM`: the first component names a registry when it has a dot or a port,
/// or is `localhost`, as in image references.
fn split(term: &str) -> Option<(&str, &str)> {
    let (host, rest) = term.split_once('/')?;
    (host.contains('.') || host.contains(':') || host == "localhost").then_some((host, rest))
}

/// Where to search for `term`: the registry it names, else the configured ones (and the term
/// whole).
fn targets<'a>(term: &'a str, configured: &'a [String]) -> Result<Vec<(&'a str, &'a str)>> {
    match split(term) {
        Some(one) => Ok(vec![one]),
        None if configured.is_empty() => Err(RegistryError::NoSearchRegistry(term.into()).into()),
        None => Ok(configured.iter().map(|r| (r.as_str(), term)).collect()),
    }
}

pub fn search(ctx: &Ctx, opts: &SearchOptions) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut failed = None;
    let targets = targets(&opts.term, &ctx.config.registry.search)?;
    let several = targets.len() > 1;
    for (registry, term) in targets {
        match search_one(ctx, registry, term, opts) {
            Ok(f) => found.extend(f),
            // One of several registries failing leaves the others' results, as podman's does.
            Err(e) if several => {
                tracing::warn!("searching {registry}: {}", crate::error::chain(&e));
                failed.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match failed {
        Some(e) if found.is_empty() => Err(e),
        _ => Ok(found),
    }
}

/// The results of one registry, filtered and cut to `--limit`.
fn search_one(ctx: &Ctx, registry: &str, term: &str, opts: &SearchOptions) -> Result<Vec<Found>> {
    let creds = opts.access.credentials(&ctx.paths.config, registry, "")?;
    let found = crate::registry::session::runtime()?.block_on(async {
        let mut session = Session::open(registry, &ctx.config.registry, None, creds).await?;
        session.set_scopes(vec!["registry:catalog:*".into()]);
        let q: String = crate::registry::session::form_encode(term);
        let (status, _, body) = session
            .get(&format!("/v1/search?q={q}&n={}", opts.limit), MAX_BODY)
            .await?;
        if status == 200
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(results) = v["results"].as_array()
        {
            return Ok(results
                .iter()
                .map(|r| Found {
                    name: r["name"].as_str().unwrap_or_default().to_string(),
                    description: r["description"].as_str().unwrap_or_default().to_string(),
                    stars: r["star_count"].as_u64().unwrap_or(0),
                    official: r["is_official"].as_bool().unwrap_or(false),
                    automated: r["is_automated"].as_bool().unwrap_or(false),
                })
                .collect());
        }
        catalog(&session, registry, term).await
    })?;
    let mut found: Vec<Found> = found
        .into_iter()
        .filter(|f| keep(f, &opts.filters))
        .collect();
    found.truncate(opts.limit);
    Ok(found)
}

/// The catalog's repositories whose names contain `term`, as `REGISTRY/NAME`.
async fn catalog(
    session: &Session,
    registry: &str,
    term: &str,
) -> Result<Vec<Found>, RegistryError> {
    let mut found = Vec::new();
    let mut path = "/v2/_catalog?n=100".to_string();
    for _ in 0..MAX_PAGES {
        let (status, link, body) = session.get(&path, MAX_BODY).await?;
        if status != 200 {
            return Err(RegistryError::Protocol {
                registry: registry.into(),
                what: "the catalog".into(),
                message: format!(
                    "status {status}: the registry offers neither docker's search API nor the catalog"
                ),
            });
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: registry.into(),
                what: "the catalog".into(),
                message: e.to_string(),
            })?;
        for name in v["repositories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
        {
            if name.contains(term) {
                found.push(Found {
                    name: format!("{registry}/{name}"),
                    description: String::new(),
                    stars: 0,
                    official: false,
                    automated: false,
                });
            }
        }
        // `Link: </v2/_catalog?last=x&n=100>; rel="next"`: only a path on this registry.
        match link.as_deref().and_then(next_page) {
            Some(next) => path = next,
            None => break,
        }
    }
    Ok(found)
}

fn next_page(link: &str) -> Option<String> {
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    let target = &link[start..end];
    (target.starts_with("/v2/_catalog?") && link[end..].contains("rel=\"next\""))
        .then(|| target.to_string())
}

fn keep(f: &Found, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "stars" => v.parse::<u64>().is_ok_and(|n| f.stars >= n),
        "is-official" => (v == "true") == f.official,
        "is-automated" => (v == "true") == f.automated,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_links_and_registries() {
        assert_eq!(
            next_page("</v2/_catalog?last=b&n=100>; rel=\"next\"").as_deref(),
            Some("/v2/_catalog?last=b&n=100")
        );
        assert_eq!(next_page("<https://evil/x>; rel=\"next\""), None);
        assert_eq!(split("localhost:5000/alp"), Some(("localhost:5000", "alp")));
        assert_eq!(split("alpine"), None);
        assert_eq!(split("library/alpine"), None);
        assert_eq!(crate::registry::session::form_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn a_term_without_a_registry_goes_to_the_configured_ones() {
        let conf = vec!["reg.lan:5000".to_string(), "quay.io".to_string()];
        assert_eq!(
            targets("alpine", &conf).unwrap(),
            [("reg.lan:5000", "alpine"), ("quay.io", "alpine")]
        );
        assert_eq!(
            targets("localhost:5000/alp", &conf).unwrap(),
            [("localhost:5000", "alp")]
        );
        let err = targets("alpine", &[]).unwrap_err();
        assert!(
            crate::error::Diagnose::hint(&err)
                .unwrap()
                .contains("config.toml")
        );
    }
}

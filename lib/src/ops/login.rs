//! `login` and `logout`: check credentials against a registry and keep them in den's auth file
//! ([`crate::auth`]). Pulls and pushes find them there (or in podman's and docker's files).

use super::Ctx;
use super::Result;
use crate::auth::{AuthFiles, Credentials};
use crate::registry::session::Session;

#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// `HOST[:PORT]`, a URL, or `None` for Docker Hub.
    pub registry: Option<String>,
    pub credentials: Credentials,
    pub tls_verify: Option<bool>,
}

fn auth_files(ctx: &Ctx) -> AuthFiles {
    AuthFiles::discover(&ctx.paths.config)
}

/// Check the credentials against the registry, then store them. Returns the registry's name.
pub fn login(ctx: &Ctx, opts: &LoginOptions) -> Result<String> {
    let registry = crate::auth::registry_arg(opts.registry.as_deref());
    let cfg = ctx.config.registry.clone();
    let creds = opts.credentials.clone();
    crate::registry::session::runtime()?.block_on(async {
        let session = Session::open(&registry, &cfg, opts.tls_verify, Some(creds)).await?;
        session.check_login().await
    })?;
    auth_files(ctx).store(&registry, &opts.credentials)?;
    Ok(registry)
}

/// What `logout` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    pub registry: String,
    /// Credentials were removed from den's file (else there were none).
    pub removed: bool,
    /// Other tools' files that also hold credentials for it, left alone.
    pub elsewhere: Vec<std::path::PathBuf>,
}

/// `logout`: forget the credentials den keeps for `registry` (Docker Hub when `None`).
pub fn logout(ctx: &Ctx, registry: Option<&str>) -> Result<Logout> {
    let registry = crate::auth::registry_arg(registry);
    let files = auth_files(ctx);
    let removed = files.remove(&registry)?;
    let elsewhere = files.elsewhere(&registry);
    Ok(Logout {
        registry,
        removed,
        elsewhere,
    })
}

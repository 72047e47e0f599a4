//! `login` and `logout`: check credentials against a registry and keep them in den's auth file
//! (or `--authfile`, or the credential helper that file names: [`crate::auth`]). Pulls and
//! pushes find them there (or in podman's and docker's files).

use super::Ctx;
use super::Result;
use crate::auth::{Access, AuthFiles, Credentials};
use crate::registry::session::Session;

#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// `HOST[:PORT]`, a URL, or `None` for Docker Hub.
    pub registry: Option<String>,
    pub credentials: Credentials,
    pub tls_verify: Option<bool>,
    /// `--authfile`: the file to keep them in instead of den's own.
    pub authfile: Option<std::path::PathBuf>,
}

fn auth_files(ctx: &Ctx, authfile: Option<&std::path::Path>) -> AuthFiles {
    Access {
        authfile: authfile.map(Into::into),
        creds: None,
    }
    .files(&ctx.paths.config)
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
    auth_files(ctx, opts.authfile.as_deref()).store(&registry, &opts.credentials)?;
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

/// `logout`: forget the credentials den keeps for `registry` (Docker Hub when `None`), in
/// `authfile` when given.
pub fn logout(
    ctx: &Ctx,
    registry: Option<&str>,
    authfile: Option<&std::path::Path>,
) -> Result<Logout> {
    let registry = crate::auth::registry_arg(registry);
    let files = auth_files(ctx, authfile);
    let removed = files.remove(&registry)?;
    let elsewhere = files.elsewhere(&registry);
    Ok(Logout {
        registry,
        removed,
        elsewhere,
    })
}

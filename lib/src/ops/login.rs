//! `login` and `logout`: check credentials against a registry and keep them in den's auth file
//! ([`crate::auth`]). Pulls and pushes find them there (or in podman's and docker's files).

use super::Ctx;
use crate::auth::{AuthFiles, Credentials};
use crate::error::Result;
use crate::registry::session::Session;

#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// `HOST[:PORT]`, a URL, or `None` for Docker Hub.
    pub registry: Option<String>,
    pub credentials: Credentials,
    pub tls_verify: Option<bool>,
}

/// A small runtime for one registry conversation.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            crate::store::StoreError::Io {
                path: "tokio runtime".into(),
                source: e,
            }
            .into()
        })
}

pub fn auth_files(ctx: &Ctx) -> AuthFiles {
    AuthFiles::discover(&ctx.paths.config)
}

/// Credentials for `repository` on `registry`, from any auth file.
pub fn credentials(ctx: &Ctx, registry: &str, repository: &str) -> Result<Option<Credentials>> {
    Ok(auth_files(ctx).lookup(registry, repository)?)
}

/// Check the credentials against the registry, then store them. Returns the registry's name.
pub fn login(ctx: &Ctx, opts: &LoginOptions) -> Result<String> {
    let registry = crate::auth::registry_arg(opts.registry.as_deref());
    let cfg = ctx.config.registry.clone();
    let creds = opts.credentials.clone();
    runtime()?.block_on(async {
        let session = Session::open(&registry, &cfg, opts.tls_verify, Some(creds)).await?;
        session.check_login().await
    })?;
    auth_files(ctx).store(&registry, &opts.credentials)?;
    Ok(registry)
}

/// What `logout` did, in docker's words.
pub fn logout(ctx: &Ctx, registry: Option<&str>) -> Result<String> {
    let registry = crate::auth::registry_arg(registry);
    let files = auth_files(ctx);
    let removed = files.remove(&registry)?;
    let mut out = if removed {
        format!("Removing login credentials for {registry}\n")
    } else {
        format!("Not logged in to {registry}\n")
    };
    for f in files.elsewhere(&registry) {
        out.push_str(&format!(
            "note: {} also holds credentials for {registry}; den left that file alone\n",
            f.display()
        ));
    }
    Ok(out)
}

//! `build`: a Dockerfile into an image. The verb opens the store and hands the build seam
//! ([`crate::build`], which plans the build as data and applies it) what it needs from above:
//! images found or pulled through den-image, RUN steps' containers run by den-run, and the
//! progress lines.

use super::Ctx;
use super::{Error, Result};
pub use crate::build::output::Output;
use crate::build::{BuildError, HostError};
pub use crate::build::{BuildOptions, Entitlement};
use crate::digest::Digest;
use crate::store::{ImageRecord, StoreError};

/// Where progress lines go (stderr, or nowhere with `-q`).
pub type Say<'a> = &'a (dyn Fn(&str) + Sync);

/// Build the image `opts` describes; returns its id.
pub fn build(ctx: &Ctx, opts: &BuildOptions, say: Say<'_>) -> Result<Digest> {
    let store = ctx.store()?;
    let host = Host {
        ctx,
        say,
        access: &opts.access,
    };
    let id = crate::build::build(&store, ctx.config.storage.driver, &host, opts).map_err(|e| {
        match e {
            // A den tool that has already reported stays one: the binaries say nothing more.
            BuildError::Reported(r) => Error::Reported(r),
            e => Error::Build(e),
        }
    })?;
    let mut event = crate::store::Event::new("image", "build", id.as_ref());
    if let Some(tag) = opts.tags.first() {
        event = event.with("name", crate::image::familiar_name(&tag.canonical()));
    }
    store.record_event(&event);
    Ok(id)
}

/// A host error into the build seam's: the verb's error, carried whole.
fn lift(e: Error) -> BuildError {
    match e {
        Error::Build(e) => e,
        Error::Reported(r) => BuildError::Reported(r),
        e => BuildError::Host(HostError(Box::new(e))),
    }
}

/// The build's view of den: the verbs' image lookups and den's tools.
struct Host<'a> {
    ctx: &'a Ctx,
    say: Say<'a>,
    /// `--authfile`, `--creds`, handed to the pulls.
    access: &'a crate::auth::Access,
}

impl crate::build::Host for Host<'_> {
    fn find_or_pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord, BuildError> {
        self.ctx
            .find_or_pull_as(name, platform, self.access, self)
            .map_err(lift)
    }

    fn pull(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord, BuildError> {
        self.ctx
            .pull_image_as(name, platform, self.access)
            .map_err(lift)
    }

    fn run_container(&self, id: &str, quiet: bool) -> Result<Option<i32>, BuildError> {
        let Some(tool) = crate::config::tool_path("den-run") else {
            return Ok(None);
        };
        let out: std::process::Stdio = if quiet {
            std::process::Stdio::null()
        } else {
            std::os::fd::AsFd::as_fd(&std::io::stderr())
                .try_clone_to_owned()
                .map(std::process::Stdio::from)
                .unwrap_or_else(|_| std::process::Stdio::inherit())
        };
        let status = std::process::Command::new(tool)
            .arg("__run-created")
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .status()
            .map_err(|e| StoreError::Io {
                path: "den-run".into(),
                source: e,
            })?;
        Ok(Some(status.code().unwrap_or(128 + 9)))
    }

    fn say(&self, line: &str) {
        (self.say)(line)
    }

    fn layer_owners(&self) -> crate::unpack::Owners {
        match self.ctx.idmap() {
            crate::userns::IdMap::Single { .. } => crate::unpack::Owners::Ignore,
            _ => crate::unpack::Owners::Keep,
        }
    }
}

/// A base image pull's notes go out as progress lines.
impl super::Report for Host<'_> {
    fn note(&self, text: &str) {
        (self.say)(text)
    }
}

//! den-image: images in the local store and in registries (pull, push, login, logout, images,
//! inspect, tag, rmi, prune, history, import, save, load), and the store as a whole (system df,
//! system prune, system check).
//!
//! Verbs that write or delete layer files (pull, rmi, prune, import, system prune, system check)
//! and `df`, which reads writable layers, enter den's user namespace first, while
//! single-threaded.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use std::path::Path;

use clap::{Parser, Subcommand};
use den::cli::image::{
    CheckArgs, DfArgs, HistoryArgs, ImagePruneArgs, ImportArgs, RmiArgs, SquashArgs,
    SystemPruneArgs, TagArgs,
};
use den::cli::registry::{LoginArgs, LogoutArgs, PushArgs};
use den::cli::{GlobalArgs, ImagesArgs, LoadArgs, PullArgs, SaveArgs};
use den::ops::{self, Ctx};
use den::render;

#[path = "common.rs"]
mod common;

use common::{OnFailure, Result, each, enter, open, print};

#[derive(Parser)]
#[command(
    name = "den-image",
    version,
    about = "Images: pull from registries, list the local store"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Download an image from a registry
    Pull(PullArgs),
    /// List images
    #[command(alias = "ls", alias = "list")]
    Images(ImagesArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Show images' details as JSON
    Inspect {
        /// Format the output with a Go template, or `json`
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images
    #[command(alias = "rm", alias = "remove")]
    Rmi(RmiArgs),
    /// Remove unused images and the layers only they used
    Prune(ImagePruneArgs),
    /// Show the steps that made an image
    History(HistoryArgs),
    /// Make an image from a root filesystem tar
    Import(ImportArgs),
    /// Show how much space images, containers, volumes and the build cache use
    Df(DfArgs),
    /// Remove stopped containers, unused images and the build cache
    #[command(name = "system-prune")]
    SystemPrune(SystemPruneArgs),
    /// Check the store for leftovers and damage; --repair removes them
    #[command(name = "system-check")]
    SystemCheck(CheckArgs),
    /// Open the store (--root) to other users, who list it in storage.additional
    #[command(name = "system-share")]
    SystemShare,
    /// Write images to a tar archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Load images from a tar archive (docker's or OCI's, as save and podman write them)
    Load(LoadArgs),
    /// Write an image as one SquashFS file, for `den run FILE.sqsh`
    Squash(SquashArgs),
    /// Search a registry for repositories
    Search(den::cli::registry::SearchArgs),
    /// Manage manifest lists (multi-platform images)
    #[command(subcommand)]
    Manifest(den::cli::manifest::ManifestVerb),
}

type Root<'a> = Option<&'a Path>;

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    let root = cli.global.root.as_deref();
    let (result, on) = match cli.verb {
        Verb::Pull(a) => (pull(root, a), OnFailure::Den),
        Verb::Images(a) => (images(root, a), OnFailure::OneIfUnknownImage),
        Verb::Login(a) => (login(root, a), OnFailure::OneIfRegistry),
        Verb::Logout(a) => (logout(root, a), OnFailure::Den),
        Verb::Push(a) => (push(root, a), OnFailure::OneIfRegistry),
        Verb::Inspect { format, names } => (inspect(root, format, &names), OnFailure::Den),
        Verb::Tag(a) => (tag(root, a), OnFailure::OneIfUnknownImage),
        Verb::Rmi(a) => (rmi(root, a), OnFailure::Den),
        Verb::Prune(a) => (prune(root, a), OnFailure::Den),
        Verb::History(a) => (history(root, a), OnFailure::OneIfUnknownImage),
        Verb::Import(a) => (import(root, a), OnFailure::Den),
        Verb::Df(a) => (df(root, a), OnFailure::Den),
        Verb::SystemPrune(a) => (system_prune(root, a), OnFailure::Den),
        Verb::SystemCheck(a) => (system_check(root, a), OnFailure::Den),
        Verb::SystemShare => (system_share(root), OnFailure::Den),
        Verb::Save(a) => archive_verb(open(root), |ctx| save(&ctx, a)),
        Verb::Load(a) => archive_verb(load_ctx(root), |ctx| load(&ctx, a)),
        Verb::Search(a) => (search(root, &a), OnFailure::OneIfRegistry),
        Verb::Squash(a) => (squash(root, &a), OnFailure::Den),
        // docker's manifest verbs exit 1 on any failure.
        Verb::Manifest(v) => (manifest(root, v), OnFailure::One),
    };
    common::exit(result, on)
}

/// `image squash`: inside den's user namespace, so the file keeps the container's owners.
fn squash(root: Root, a: &SquashArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let done = ops::squash::squash(&ctx, &a.options())?;
    print(&format!("{}\n", done.output.display()));
    Ok(0)
}

/// `search`: docker's table of what the registry has.
fn search(root: Root, a: &den::cli::registry::SearchArgs) -> Result<i32> {
    let found = ops::search::search(&open(root)?, &a.options()?)?;
    let rows = den::render::images::search_rows(&found, a.no_trunc);
    print(&den::render::rows(
        a.format.as_deref(),
        &den::render::images::SEARCH,
        &rows,
    )?);
    Ok(0)
}

/// `manifest VERB`: lists in the store, pushed to and read from registries.
fn manifest(root: Root, verb: den::cli::manifest::ManifestVerb) -> Result<i32> {
    use den::cli::manifest::ManifestVerb as M;
    let ctx = open(root)?;
    match verb {
        M::Create(a) => {
            let list = ops::manifest::create(&ctx, &a.options()?)?;
            print(&render::images::manifest_created(&list));
        }
        M::Add(a) => print(&render::images::manifest_id(&ops::manifest::add(
            &ctx,
            &a.options()?,
        )?)),
        M::Annotate(a) => {
            ops::manifest::annotate(&ctx, &a.options())?;
        }
        M::Remove(a) => print(&render::images::manifest_id(&ops::manifest::remove_entry(
            &ctx, &a.list, &a.digest,
        )?)),
        M::Inspect(a) => print(&render::indent_json(&ops::manifest::inspect(
            &ctx,
            &a.name,
            &a.access.access("the registry")?,
        )?)),
        M::Push(a) => {
            let pushed = ops::manifest::push(&ctx, &a.options()?, &PushLines(a.quiet))?;
            if let Some(f) = &a.digestfile {
                std::fs::write(f, &pushed.digest).map_err(|source| den::store::StoreError::Io {
                    path: f.clone(),
                    source,
                })?;
            }
            print(&format!("{}\n", pushed.digest));
        }
        M::Rm(a) => {
            return Ok(each(ops::manifest::remove(&ctx, &a.lists)?, |(_, r)| {
                r?;
                Ok(None)
            }));
        }
        M::Exists(a) => {
            return Ok(if ops::manifest::exists(&ctx, &a.list)? {
                0
            } else {
                1
            });
        }
    }
    Ok(0)
}

/// docker exits 1 when save or load fails, and den's own failures there are the user's too (an
/// unknown image, a damaged archive); failing to start (the context, the namespace) is 125.
fn archive_verb(
    ctx: Result<Ctx>,
    verb: impl FnOnce(Ctx) -> Result<i32>,
) -> (Result<i32>, OnFailure) {
    match ctx {
        Ok(ctx) => (verb(ctx), OnFailure::One),
        Err(e) => (Err(e), OnFailure::Den),
    }
}

/// Layers keep their owners only inside den's user namespace: pull enters it first.
fn pull(root: Root, a: PullArgs) -> Result<i32> {
    // Without re-executing: a pull only writes files, it starts no process of its own (a
    // second start-up of den-image was an eighth of a small pull).
    let ctx = common::enter_in_place(&open(root)?, root)?;
    let report = den::cli::progress::PullReport::new(a.quiet, false);
    ctx.note_ownership(&mut |t| den::cli::note(t))?;
    ctx.note_placement(&mut |t| den::cli::note(t));
    let registry = den::image::Reference::parse(&a.image)?
        .registry()
        .to_string();
    let opts = ops::pull::PullOptions {
        access: a.access.access_or_inherited(&registry)?,
        reference: a.image,
        platform: a.platform,
    };
    let pulled = ops::pull::pull(&ctx, &opts, &report)?;
    let (status, shown) = render::images::pulled(&pulled.reference, &pulled.digest, pulled.changed);
    report.line(&status);
    print(&shown);
    Ok(0)
}

fn login(root: Root, a: LoginArgs) -> Result<i32> {
    let ctx = open(root)?;
    let registry = den::auth::registry_arg(a.server.as_deref());
    let credentials = den::cli::registry::login_credentials(&a, &registry)?;
    let opts = ops::login::LoginOptions {
        registry: Some(registry),
        credentials,
        tls_verify: a.tls_verify,
        authfile: a.authfile,
    };
    ops::login::login(&ctx, &opts)?;
    print("Login Succeeded\n");
    Ok(0)
}

fn logout(root: Root, a: LogoutArgs) -> Result<i32> {
    let l = ops::login::logout(&open(root)?, a.server.as_deref(), a.authfile.as_deref())?;
    print(&render::images::logout(
        &l.registry,
        l.removed,
        &l.elsewhere,
    ));
    Ok(0)
}

/// Progress lines of a push, on stderr unless `-q`.
struct PushLines(bool);

impl ops::push::PushReport for PushLines {
    fn line(&self, text: &str) {
        if !self.0 {
            eprintln!("{text}");
        }
    }
}

fn push(root: Root, a: PushArgs) -> Result<i32> {
    let ctx = open(root)?;
    let target = den::image::Reference::parse(a.destination.as_deref().unwrap_or(&a.image))?;
    let opts = ops::push::PushOptions {
        access: a.access.access(target.registry())?,
        image: a.image,
        destination: a.destination,
        tls_verify: a.tls_verify,
    };
    let pushed = ops::push::push(&ctx, &opts, &PushLines(a.quiet))?;
    if let Some(f) = &a.digestfile {
        std::fs::write(f, &pushed.digest).map_err(|source| den::store::StoreError::Io {
            path: f.clone(),
            source,
        })?;
    }
    print(&render::images::pushed(
        &pushed.reference,
        &pushed.digest,
        pushed.size,
    ));
    Ok(0)
}

fn inspect(root: Root, format: Option<String>, names: &[String]) -> Result<i32> {
    let (values, errors) = ops::inspect::images(&open(root)?, names);
    Ok(common::print_objects(&values, format.as_deref(), errors))
}

fn save(ctx: &Ctx, a: SaveArgs) -> Result<i32> {
    ops::archive::save(ctx, &a.options())?;
    Ok(0)
}

/// Layers keep their owners only inside den's user namespace (as for pull).
fn load_ctx(root: Root) -> Result<Ctx> {
    let ctx = enter(&open(root)?, root)?;
    ctx.note_ownership(&mut |t| den::cli::note(t))?;
    Ok(ctx)
}

fn load(ctx: &Ctx, a: LoadArgs) -> Result<i32> {
    let loaded = ops::archive::load(ctx, &a.options())?;
    print(&render::images::loaded(&loaded));
    Ok(0)
}

fn images(root: Root, a: ImagesArgs) -> Result<i32> {
    let ctx = open(root)?;
    let view = render::images::ImagesView {
        quiet: a.quiet,
        no_trunc: a.no_trunc,
        digests: a.digests,
        format: a.format.as_deref(),
    };
    let opts = ops::images::ImagesOptions {
        filter: a.repository.clone(),
        filters: a.filter.clone(),
        usage: view.custom_format().is_some(),
        sort: a.sort.as_deref().and_then(ops::images::ImageSort::parse),
    };
    let rows = ops::images::images(&ctx, &opts)?;
    print(&render::images::images(&rows, &view, chrono::Utc::now())?);
    Ok(0)
}

fn tag(root: Root, a: TagArgs) -> Result<i32> {
    ops::rmi::tag(&open(root)?, &a.source, &a.target)?;
    Ok(0)
}

fn rmi(root: Root, a: RmiArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let opts = ops::rmi::RmiOptions {
        force: a.force,
        no_prune: a.no_prune,
    };
    let report = ops::rmi::rmi(&ctx, &a.images, opts)?;
    Ok(each(report.results, |(_, result)| {
        let lines: Vec<String> = result?.iter().map(render::images::removed).collect();
        Ok((!lines.is_empty()).then(|| lines.join("\n")))
    }))
}

fn prune(root: Root, a: ImagePruneArgs) -> Result<i32> {
    // Asked inside: `enter` runs this program again in the namespace.
    let ctx = enter(&open(root)?, root)?;
    if !a.force && !den::cli::confirm_at_terminal(a.warning()) {
        return Ok(0);
    }
    let opts = ops::rmi::PruneOptions {
        all: a.all,
        filters: a.filter.clone(),
    };
    let pruned = ops::rmi::prune(&ctx, &opts)?;
    let images = pruned.removed.iter().map(render::images::pruned).collect();
    print(&render::system::pruned(
        &[("Deleted Images:", images)],
        &render::units::human_size4(pruned.reclaimed),
    ));
    Ok(0)
}

fn history(root: Root, a: HistoryArgs) -> Result<i32> {
    let ctx = open(root)?;
    let view = render::images::HistoryView {
        no_trunc: a.no_trunc,
        quiet: a.quiet,
        format: a.format.as_deref(),
    };
    let h = ops::history::history(&ctx, &a.image)?;
    let now = chrono::Utc::now();
    print(&render::images::history(&h.image.id, &h.steps, &view, now)?);
    Ok(0)
}

fn import(root: Root, a: ImportArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    ctx.note_ownership(&mut |t| den::cli::note(t))?;
    let opts = ops::import::ImportOptions {
        source: a.source,
        reference: a.reference,
        changes: a.change,
        message: a.message,
    };
    let image = ops::import::import(&ctx, &opts)?;
    print(&format!("{}\n", image.id));
    Ok(0)
}

/// `df` reads writable layers, whose files belong to the namespace's users.
fn df(root: Root, a: DfArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let usage = ops::system::df(&ctx)?;
    let now = chrono::Utc::now();
    print(&render::system::df(
        &usage,
        a.verbose,
        a.format.as_deref(),
        now,
    )?);
    Ok(0)
}

/// The report, then (when problems are left) the store's error: exit 1.
fn system_check(root: Root, a: CheckArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let opts = ops::system::CheckOptions {
        repair: a.repair,
        full: a.full,
    };
    let report = ops::system::check(&ctx, &opts, &common::Notes)?;
    print(&render::system::checked(
        &report.root,
        &report.fixed,
        &report.checked,
    ));
    match report.unclean() {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}

/// `system share`: the store's images become usable by other users (read only).
fn system_share(root: Root) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    let shared = ops::system::share(&ctx)?;
    print(&render::system::shared(&ctx.paths.root, &shared));
    Ok(0)
}

fn system_prune(root: Root, a: SystemPruneArgs) -> Result<i32> {
    let ctx = enter(&open(root)?, root)?;
    if !a.force && !den::cli::confirm_at_terminal(&a.warning()) {
        return Ok(0);
    }
    let opts = ops::system::SystemPruneOptions {
        all: a.all,
        volumes: a.volumes,
        filters: a.filter.clone(),
    };
    let pruned = ops::system::prune(&ctx, &opts)?;
    let images = pruned.images.iter().map(render::images::pruned).collect();
    print(&render::system::pruned(
        &[
            ("Deleted Containers:", pruned.containers),
            ("Deleted Volumes:", pruned.volumes),
            ("Deleted Images:", images),
        ],
        &render::units::human_size4(pruned.reclaimed),
    ));
    Ok(0)
}

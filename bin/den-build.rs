//! den-build: images from Dockerfiles (`build`), and the build cache (`prune`).
//!
//! Runs inside den's user namespace, where the files of layers keep their owners; the
//! containers of RUN steps are den-run's.

#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use den::build::BuildError;
use den::build::share::CacheRef;
use den::cli::GlobalArgs;
use den::ops::{self, Ctx};

#[path = "common.rs"]
mod common;

use common::{OnFailure, Result, enter, open, print};

#[derive(Parser)]
#[command(name = "den-build", version, about = "Build images from Dockerfiles")]
pub(crate) struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Remove the build cache
    Prune {
        /// Remove everything (the only mode: the cache holds no more than step results)
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The build context: a directory, or - for a Dockerfile on stdin and no context
    #[arg(value_name = "PATH | -")]
    context: String,
    /// Name and optionally a tag (name:tag); may be given more than once
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile); - reads it from stdin
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Build this stage and stop
    #[arg(long)]
    target: Option<String>,
    /// Print only the image id
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Write the image id to this file (left untouched when the id is the same)
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Run every step; use no cached result
    #[arg(long)]
    no_cache: bool,
    /// Pull the base images even when they are in the store
    #[arg(long, num_args = 0..=1, default_missing_value = "always", require_equals = true)]
    pull: Option<String>,
    /// Network for RUN steps: default, none, host
    #[arg(long)]
    network: Option<String>,
    /// Platform to build for (os/arch[/variant]); several, comma-separated, with --manifest
    #[arg(long)]
    platform: Option<String>,
    /// Add the image (one per --platform) to this manifest list, made if missing
    #[arg(long, value_name = "LIST")]
    manifest: Option<String>,
    /// Set a label on the image (KEY=VALUE)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Allow an extra entitlement: network.host (RUN --network=host)
    #[arg(long = "allow", value_delimiter = ',')]
    allow: Vec<String>,
    #[command(flatten)]
    access: den::cli::registry::AccessArgs,
    /// Also write the result: DIR, type=local,dest=DIR, type=tar,dest=FILE|-, type=oci|docker,dest=FILE (the image is stored too, as podman's)
    #[arg(short = 'o', long, value_name = "OUTPUT")]
    output: Option<String>,
    /// Accepted for buildx's scripts (-o type=docker): den stores every image it builds
    #[arg(long)]
    load: bool,
    /// Take cached steps from: type=local,src=DIR, type=registry,ref=REF, or REGISTRY/REPO
    #[arg(long = "cache-from", value_name = "CACHE")]
    cache_from: Vec<String>,
    /// Export the build's cached steps to: type=local,dest=DIR, type=registry,ref=REF, or REGISTRY/REPO
    #[arg(long = "cache-to", value_name = "CACHE")]
    cache_to: Option<String>,
    /// The image's manifest format: oci (the default) or docker (podman's flag; also BUILDAH_FORMAT)
    #[arg(long, value_name = "oci|docker")]
    format: Option<String>,
    /// A secret RUN --mount=type=secret may read: id=ID,src=FILE or id=ID,env=VARIABLE
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// An SSH agent RUN --mount=type=ssh may reach: default ($SSH_AUTH_SOCK), ID=SOCKET or
    /// ID=KEYFILE[,KEYFILE]
    #[arg(long = "ssh", value_name = "default|ID=SOCKET|ID=KEY")]
    ssh: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = common::parse();
    common::init_logging(&cli.global.log_level);
    common::exit(run(cli), OnFailure::Den)
}

/// Both verbs run inside den's user namespace, where layer files keep their owners.
fn run(cli: Cli) -> Result<i32> {
    let root = cli.global.root.as_deref();
    let ctx = enter(&open(root)?, root)?;
    match cli.verb {
        Verb::Build(a) => build(&ctx, *a),
        Verb::Prune { .. } => {
            let freed = ops::system::builder_prune(&ctx)?;
            print(&den::render::system::pruned(
                &[],
                &den::render::units::human_size(freed),
            ));
            Ok(0)
        }
    }
}

fn build(ctx: &Ctx, a: BuildArgs) -> Result<i32> {
    let opts = options(&a)?;
    let quiet = a.quiet;
    // A tar on stdout is all that goes there.
    let id_out = !opts.output.as_ref().is_some_and(|o| o.to_stdout());
    let say = move |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let platforms = den::cli::manifest::platforms(
        a.platform.as_deref(),
        a.manifest.as_deref(),
        !a.tags.is_empty(),
    )?;
    let ids = ops::build::build_platforms(ctx, &opts, &platforms, a.manifest.as_deref(), &say)?;
    for id in &ids {
        if !quiet {
            eprint!("{}", den::render::images::built(id, &a.tags));
        }
        if id_out {
            print(&format!("{id}\n"));
        }
    }
    if let (Some(path), Some(id)) = (&a.iidfile, ids.last()) {
        write_iidfile(path, id.as_ref())?;
    }
    Ok(0)
}

/// The flags into the build's options, before the store is touched: a bad one leaves it as it
/// was. A Dockerfile on stdin is read here.
fn options(a: &BuildArgs) -> Result<ops::build::BuildOptions> {
    let stdin = a.context == "-" || a.file.as_deref() == Some(Path::new("-"));
    let stdin_text = if stdin {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .map_err(|e| BuildError::Read {
                path: "stdin".into(),
                source: e,
            })?;
        Some(t)
    } else {
        None
    };
    let context = match a.context.as_str() {
        "-" => None,
        c => Some(std::fs::canonicalize(c).map_err(|e| BuildError::Read {
            path: a.context.clone(),
            source: e,
        })?),
    };
    let allow = a.allow.iter().map(|e| ops::build::Entitlement::parse(e));
    let tags = a.tags.iter().map(|t| den::image::Reference::parse(t));
    let pull = a.pull.as_deref();
    Ok(ops::build::BuildOptions {
        context,
        file: a.file.clone().filter(|f| f != Path::new("-")),
        stdin_text,
        tags: tags.collect::<std::result::Result<_, _>>()?,
        build_args: build_args(&a.build_args),
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: pull.is_some_and(|p| p != "false" && p != "never" && p != "missing"),
        network: match a.network.clone().filter(|n| n != "default") {
            Some(n) => Some(
                den::net::Network::parse(&n)
                    .ok_or(ops::Error::from(den::net::NetError::BadNetwork(n)))?,
            ),
            None => None,
        },
        platform: a.platform.clone(),
        labels: a.labels.iter().map(|l| label(l)).collect(),
        quiet: a.quiet,
        allow: allow.collect::<std::result::Result<_, _>>()?,
        access: a.access.access("the base images' registry")?,
        secrets: secrets(&a.secrets)?,
        ssh: ssh(&a.ssh)?,
        format: image_format(a.format.as_deref())?,
        cache_from: a
            .cache_from
            .iter()
            .map(|c| Ok(CacheRef::parse(c, true)?.absolute()))
            .collect::<Result<_>>()?,
        cache_to: match &a.cache_to {
            Some(c) => Some(CacheRef::parse(c, false)?.absolute()),
            None => None,
        },
        output: match &a.output {
            Some(o) => Some(ops::build::Output::parse(o)?.check()?),
            None => None,
        },
    })
}

/// `--format`, else podman's `BUILDAH_FORMAT`, else OCI.
fn image_format(flag: Option<&str>) -> Result<den::image::manifest::Format> {
    let env = std::env::var("BUILDAH_FORMAT")
        .ok()
        .filter(|f| !f.is_empty());
    match flag.map(String::from).or(env) {
        Some(f) => Ok(den::image::manifest::Format::parse(&f).map_err(ops::Error::from)?),
        None => Ok(den::image::manifest::Format::Oci),
    }
}

/// `--secret`, buildx's way (an id alone: the variable of that name when it is set).
fn secrets(specs: &[String]) -> Result<Vec<den::build::secrets::Secret>> {
    let has_env = |v: &str| std::env::var_os(v).is_some();
    Ok(specs
        .iter()
        .map(|s| den::build::secrets::parse_secret(s, &has_env))
        .collect::<std::result::Result<_, _>>()?)
}

/// `--ssh`; no path means the user's `$SSH_AUTH_SOCK`.
fn ssh(specs: &[String]) -> Result<Vec<den::build::secrets::Ssh>> {
    let sock = std::env::var("SSH_AUTH_SOCK").ok();
    Ok(specs
        .iter()
        .map(|s| den::build::secrets::parse_ssh(s, sock.as_deref()))
        .collect::<std::result::Result<_, _>>()?)
}

/// `--label KEY=VALUE` (or `KEY`, an empty value).
fn label(l: &str) -> (String, String) {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    (k.to_string(), v.to_string())
}

/// `--iidfile`: rewritten only when the id changes, so make sees nothing new after a no-op
/// rebuild.
fn write_iidfile(path: &Path, id: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(id) {
        den::fs::write_atomic(path, id.as_bytes()).map_err(|source| {
            den::store::StoreError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// `--build-arg KEY=VALUE`, or `KEY` with its value from the environment (left out when unset).
fn build_args(args: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    out
}

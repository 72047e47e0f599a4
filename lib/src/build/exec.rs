//! The executor: a [`Plan`] applied stage by stage, one cached step at a time. Runs inside
//! den's user namespace (files keep their image owners); RUN steps run in containers that
//! den-run makes, through the [`Host`].
//!
//! Each needed stage starts from its base (an image, pulled when missing, an earlier stage, or
//! `scratch`) and applies its instructions to a [`State`]: the layers so far, the image config,
//! the build arguments in scope and a cache key. Each instruction is first read into a
//! [`Step`] (data: what it does and what its key is made of, [`super::instruction`]); then the
//! key is looked up in the build cache ([`super::cache`]). A hit takes the cached layers and
//! config as they are, so an unchanged rebuild runs nothing and makes the same image id; a miss
//! applies the step: RUN ([`super::run`]) and COPY/ADD ([`super::copy`]) make one layer each,
//! the others only change the config ([`super::config`]) and add a history entry, as docker
//! does.
//!
//! Layers are committed to the store as steps finish (they are whole and reusable); the image
//! and its names only at the end, so a failed build leaves no tag.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Result;
use super::instruction::{self, Op, Scope, Step};
use super::plan::{Plan, Stage};
use super::secrets::{Agents, PrivateDir};
use super::state::{State, base_config, strings};
use super::syntax::{self, Node};
use super::{
    BuildError, BuildOptions, Host, cache, config, expand, foreign, ignore::Ignore, share,
};
use crate::config::DriverChoice;
use crate::digest::Digest;
use crate::image::{ImageError, Platform};
use crate::net::Network;
use crate::store::Store;
use crate::store::driver::{self, Driver};

/// What the build is working on, shared by its steps.
pub(super) struct Build<'a> {
    pub(super) plan: &'a Plan,
    pub(super) store: &'a Store,
    pub(super) host: &'a dyn Host,
    pub(super) opts: &'a BuildOptions,
    pub(super) ignore: Ignore,
    pub(super) driver: Driver,
    /// RUN's network unless a step says otherwise.
    pub(super) network: Network,
    step: usize,
    steps: usize,
    /// Finished stages, by index.
    pub(super) done: Vec<Option<State>>,
    /// `--cache-from`'s caches that could be read.
    imported: Vec<super::share::Imported>,
    /// The cache keys of this build's steps, for `--cache-to`.
    keys: Vec<String>,
    /// `--ssh` ids to agent sockets (agents den started stop when this drops, before
    /// `private` is removed).
    pub(super) agents: Agents,
    /// The build's 0700 directory in den's runtime directory (steps' secrets, agents'
    /// sockets), removed when the build ends.
    pub(super) private: Option<PrivateDir>,
}

/// Build the image `opts` describes in `store`, with the storage driver `want` chooses; returns
/// the image's id.
pub fn build(
    store: &Store,
    want: DriverChoice,
    host: &dyn Host,
    opts: &BuildOptions,
) -> Result<Digest> {
    let (file, text, dockerfile) = read_dockerfile(opts)?;
    let df = syntax::parse(&file, &text)?;
    let ignore = read_ignore(opts.context.as_deref(), dockerfile.as_deref())?;
    let mut plan = Plan::new(&file, df, opts.build_args.clone(), opts.target.as_deref())?;
    let target = target_platform(opts)?;
    for (k, v) in foreign::platform_args(&target, &Platform::host()) {
        if !plan.build_args.contains_key(&k) {
            plan.global_args.entry(k).or_insert(None).get_or_insert(v);
        }
    }
    check_runs(&plan, &target)?;
    let (agents, private) = secrets_and_agents(host, opts)?;
    // Chosen (and probed, the first time) only once the Dockerfile is known to be good.
    let driver = driver::choose(&crate::sys::LinuxSys, store, want).driver;
    let mut b = Build {
        plan: &plan,
        store,
        host,
        opts,
        ignore,
        driver,
        network: default_network(opts, host),
        step: 0,
        steps: plan.steps(),
        done: vec![None; plan.stages.len()],
        imported: Vec::new(),
        keys: Vec::new(),
        agents,
        private,
    };
    // What killed dens left goes first (a killed build's layers and step containers among it).
    store.sweep();
    // Layers being added must not be pruned meanwhile.
    let _pin = store.lock_content_shared()?;
    // Held while the build runs: a build killed midway leaves it stale, and the next writer's
    // sweep then collects what the build left (layers not yet cached, step containers).
    let _running = store.staging_dir("build")?;
    if !opts.no_cache {
        b.imported = import(store, host, &opts.cache_from);
    }
    for &i in &plan.needed {
        let state = b.stage(&plan.stages[i])?;
        b.done[i] = Some(state);
    }
    let mut last = b.done[plan.target].take().expect("target built");
    if opts.platform.is_some() {
        // The image says what it was built for (a `scratch` base says the host's until here).
        let root = last.root();
        root.insert("os".into(), Value::String(target.os.clone()));
        root.insert("architecture".into(), Value::String(target.arch.clone()));
        match &target.variant {
            Some(v) => root.insert("variant".into(), Value::String(v.clone())),
            None => root.remove("variant"),
        };
    }
    for (k, v) in &opts.labels {
        last.cfg_object("Labels")[k] = Value::String(v.clone());
    }
    // The first name comes with the record: a build killed here leaves no nameless image.
    let first = opts.tags.first().map(|t| t.canonical());
    let image = store.incoming()?.finish_local_as(
        &last.config,
        &last.layers,
        first.as_deref(),
        opts.format,
    )?;
    for reference in opts.tags.iter().skip(1) {
        store.put_image(image.clone(), Some(reference))?;
    }
    if let Some(out) = &opts.output {
        super::output::write(store, &image, &opts.tags, out)?;
    }
    match &opts.cache_to {
        Some(share::CacheRef::Local(dir)) => share::export_layout(store, &b.keys, dir)?,
        Some(share::CacheRef::Registry(reference)) => {
            host.push_cache(reference, &share::export(store, &b.keys)?)?
        }
        None => {}
    }
    Ok(image.id)
}

/// `--cache-from`'s caches, each read and checked; one that cannot be is a warning.
fn import(store: &Store, host: &dyn Host, refs: &[share::CacheRef]) -> Vec<share::Imported> {
    let mut out = Vec::new();
    for r in refs {
        let (shown, opened) = match r {
            share::CacheRef::Local(dir) => (
                dir.display().to_string(),
                share::Imported::open(store, Box::new(share::Layout(dir.clone()))),
            ),
            share::CacheRef::Registry(reference) => (
                reference.clone(),
                host.cache_source(reference)
                    .and_then(|blobs| share::Imported::open(store, blobs)),
            ),
        };
        match opened {
            Ok(i) => {
                host.say(&format!("--> cache from {shown}: {} steps", i.len()));
                out.push(i);
            }
            Err(m) => host.say(&format!(
                "warning: --cache-from {shown}: {m}; building without it"
            )),
        }
    }
    out
}

/// `--platform` (checked), else the host's.
fn target_platform(opts: &BuildOptions) -> Result<Platform> {
    match &opts.platform {
        Some(p) => Ok(Platform::parse(p).ok_or_else(|| ImageError::BadPlatform(p.clone()))?),
        None => Ok(Platform::host()),
    }
}

/// The platform a stage's FROM asks for (`--platform`, its variables expanded), else `target`.
fn stage_platform(plan: &Plan, from: &Node, target: &Platform) -> Result<Platform> {
    let lookup = |n: &str| plan.global_args.get(n).cloned().flatten();
    let Some(flag) = from.flag("platform") else {
        return Ok(target.clone());
    };
    let p = expand::word(flag, plan.escape, &lookup)
        .map_err(|m| BuildError::step(&plan.file, from, &m, "check the FROM line's variables"))?;
    Ok(Platform::parse(&p).ok_or(ImageError::BadPlatform(p))?)
}

/// Refuse, before anything runs, a build whose RUN steps are for a platform this host cannot
/// run (see [`foreign`]).
fn check_runs(plan: &Plan, target: &Platform) -> Result<()> {
    for &i in &plan.needed {
        let stage = &plan.stages[i];
        let Some(run) = stage.nodes.iter().find(|n| n.name == "RUN") else {
            continue;
        };
        let platform = stage_platform(plan, &stage.from, target)?;
        let binfmt = Path::new(foreign::BINFMT_MISC);
        foreign::can_run(&platform, &Platform::host(), binfmt).map_err(|m| {
            BuildError::step(
                &plan.file,
                run,
                &format!("cannot run steps for {platform}: {m}"),
                &foreign::hint(&platform),
            )
        })?;
    }
    Ok(())
}

/// The user's secrets checked (there, small enough) before anything is built, the build's
/// private directory (after what killed builds left is swept), and its SSH agents.
fn secrets_and_agents(
    host: &dyn Host,
    opts: &BuildOptions,
) -> Result<(Agents, Option<PrivateDir>)> {
    // The user's secrets are there and small enough before anything is built.
    for s in &opts.secrets {
        s.check()?;
    }
    // What killed builds left of their secrets goes first.
    let runtime_dir = host.runtime_dir();
    if let Some(dir) = &runtime_dir {
        PrivateDir::sweep(dir, "build");
    }
    let private = match runtime_dir {
        Some(dir) if !opts.secrets.is_empty() || !opts.ssh.is_empty() => {
            Some(PrivateDir::new(&dir, "build", true)?)
        }
        _ => None,
    };
    let agents = Agents::start(&opts.ssh, private.as_ref().map(|p| p.path.as_path()))?;
    Ok((agents, private))
}

/// RUN steps get a network of their own; without slirp4netns there is none to give, and the
/// host's is not a Dockerfile's to take unasked (see [`super::run`]).
fn default_network(opts: &BuildOptions, host: &dyn Host) -> Network {
    match &opts.network {
        Some(n) => n.clone(),
        None if crate::config::find_in_path("slirp4netns").is_some() => Network::Slirp4netns {
            allow_host_loopback: false,
        },
        None => {
            host.say(
                "note: slirp4netns is not installed: RUN steps have no network (install \
                 slirp4netns, or build with --network host to give them the host's)",
            );
            Network::None
        }
    }
}

/// The Dockerfile's display name, text and path.
fn read_dockerfile(opts: &BuildOptions) -> Result<(String, String, Option<PathBuf>)> {
    if let Some(t) = &opts.stdin_text {
        return Ok(("Dockerfile (stdin)".into(), t.clone(), None));
    }
    let path = match (&opts.file, &opts.context) {
        (Some(f), _) => f.clone(),
        (None, Some(c)) => {
            let p = c.join("Dockerfile");
            if !p.exists() && c.join("Containerfile").exists() {
                c.join("Containerfile")
            } else {
                p
            }
        }
        (None, None) => PathBuf::from("Dockerfile"),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| BuildError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    Ok((name, text, Some(path)))
}

/// The context's `.dockerignore` (or the Dockerfile's own `NAME.dockerignore`).
fn read_ignore(context: Option<&Path>, dockerfile: Option<&Path>) -> Result<Ignore> {
    let Some(p) = context.and_then(|c| super::ignore::find(c, dockerfile)) else {
        return Ok(Ignore::default());
    };
    let text = std::fs::read_to_string(&p).map_err(|e| BuildError::Read {
        path: p.display().to_string(),
        source: e,
    })?;
    Ok(Ignore::parse(&text))
}

impl Build<'_> {
    fn announce(&mut self, text: &str) {
        self.step += 1;
        self.host
            .say(&format!("STEP {}/{}: {}", self.step, self.steps, text));
    }

    pub(super) fn err(&self, node: &Node, message: &str, hint: &str) -> BuildError {
        BuildError::step(&self.plan.file, node, message, hint)
    }

    /// `node`'s view of `state`, for expanding its words.
    pub(super) fn scope<'s>(&'s self, node: &'s Node, state: &'s State) -> Scope<'s> {
        Scope {
            file: &self.plan.file,
            escape: self.plan.escape,
            node,
            state,
        }
    }

    /// An earlier stage that `--from` names (its name or number), when it is built.
    pub(super) fn built_stage(&self, name: &str) -> Option<&State> {
        self.plan.find(name).and_then(|i| self.done[i].as_ref())
    }

    /// Run one stage from its FROM to its last instruction.
    fn stage(&mut self, stage: &Stage) -> Result<State> {
        let from = &stage.from;
        self.announce(&from.original);
        let mut state = self.base(stage)?;
        // ONBUILD triggers of the base run first.
        let triggers = strings(state.get("OnBuild"));
        if !triggers.is_empty() {
            state.cfg().remove("OnBuild");
            for t in triggers {
                let df = syntax::parse(&self.plan.file, &t)?;
                for mut n in df.nodes {
                    n.line = from.line;
                    self.steps += 1;
                    self.instruction(&mut state, &n)?;
                }
            }
        }
        for node in &stage.nodes {
            self.instruction(&mut state, node)?;
        }
        Ok(state)
    }

    /// The state a stage starts from: `scratch`, an earlier stage (its build arguments and
    /// CMD flag left behind), or an image (pulled when missing, or always with `--pull`).
    fn base(&self, stage: &Stage) -> Result<State> {
        let from = &stage.from;
        let globals = &self.plan.global_args;
        let lookup = |n: &str| globals.get(n).cloned().flatten();
        let base = expand::word(&stage.base(), self.plan.escape, &lookup)
            .map_err(|m| self.err(from, &m, "check the FROM line's variables"))?;
        let platform = match from.flag("platform") {
            Some(_) => Some(stage_platform(self.plan, from, &Platform::host())?.to_string()),
            None => self.opts.platform.clone(),
        };
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(State::scratch());
        }
        if let Some(earlier) = self.plan.named(&base).and_then(|i| self.done[i].as_ref()) {
            let mut s = earlier.clone();
            s.args.clear();
            s.cmd_set = false;
            return Ok(s);
        }
        let mut image = if self.opts.pull {
            self.host.pull(&base, platform.as_deref())?
        } else {
            self.host.find_or_pull(&base, platform.as_deref())?
        };
        // A local image of another platform is not the base asked for: pull the one that is
        // (docker's rule; a list's entry was chosen for the platform already).
        if let Some(want) = platform.as_deref().and_then(Platform::parse)
            && (image.os != want.os || image.architecture != want.arch)
        {
            image = self.host.pull(&base, platform.as_deref())?;
        }
        let bytes = self.store.read_blob(&image.config)?;
        let config = base_config(&bytes, image.config.as_str())?;
        Ok(State::image(image.id, image.layers, config))
    }

    /// Apply one instruction: from the cache when its key is known, else by doing it.
    fn instruction(&mut self, state: &mut State, node: &Node) -> Result<()> {
        self.announce(&node.original);
        let mut step = instruction::prepare(self.plan, state, node)?;
        match &step.op {
            Op::Arg(values) => {
                state.args.extend(values.iter().cloned());
                return Ok(());
            }
            Op::Copy { srcs, .. } => {
                let digest = self.sources_digest(node, srcs)?;
                step.key.push(digest);
            }
            Op::Run { .. } => {
                // What `--mount=type=bind,from=` binds: the stage's key or the image's id.
                for from in super::plan::mount_froms(node) {
                    step.key.push(self.source_key(node, &from)?);
                }
            }
            Op::Config(_) => {}
        }
        let key = step.cache_key(&state.key);
        if let Some(hit) = self.cached(&key) {
            self.host.say("--> Using cache");
            self.keys.push(key.clone());
            state.layers = hit.layers;
            state.config = hit.config;
            state.key = key;
            if node.name == "CMD" {
                state.cmd_set = true;
            }
            return Ok(());
        }
        self.apply(state, node, &step)?;
        state.key = key.clone();
        self.keys.push(key.clone());
        cache::put(
            self.store,
            &key,
            &cache::Entry {
                layers: state.layers.clone(),
                config: state.config.clone(),
            },
        )
    }

    /// The step `key`'s result from the local cache, else from a `--cache-from` cache (its
    /// layers brought into the store); None with `--no-cache`.
    fn cached(&self, key: &str) -> Option<cache::Entry> {
        if self.opts.no_cache {
            return None;
        }
        if let Some(hit) = cache::get(self.store, key) {
            return Some(hit);
        }
        for imported in &self.imported {
            match imported.take(self.store, key, self.host.layer_owners()) {
                Some(Ok(hit)) => return Some(hit),
                Some(Err(m)) => self.host.say(&format!(
                    "warning: the imported cache's step is not usable: {m}"
                )),
                None => {}
            }
        }
        None
    }

    /// Do what `step` says, and add its history entry.
    fn apply(&self, state: &mut State, node: &Node, step: &Step) -> Result<()> {
        let created_by = match &step.op {
            Op::Run { argv } => format!("RUN {}", argv.join(" ")),
            _ => node.original.clone(),
        };
        match &step.op {
            Op::Run { argv } => {
                let layer = self.run(state, node, argv)?;
                state.push_layer(layer);
            }
            Op::Copy { add, srcs, dest } => {
                let layer = self.copy(state, node, *add, srcs, dest)?;
                state.push_layer(layer);
            }
            Op::Config(change) => config::apply(state, change),
            // Applied before the cache is asked: it is no step of its own.
            Op::Arg(_) => {}
        }
        state.history(&created_by, !step.makes_layer());
        Ok(())
    }
}

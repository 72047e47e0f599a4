//! `build`: a Dockerfile into an image, one cached step at a time. Runs inside den's user
//! namespace (files keep their image owners); RUN steps run in containers den-run makes.
//!
//! Each stage starts from its base (an image, pulled when missing, an earlier stage, or
//! `scratch`) and applies its instructions to a [`State`]: the layers so far, the image config
//! (docker's JSON, history included), the build arguments in scope and a cache key. Every
//! instruction that changes the config or the files is a step with a key
//! ([`crate::build::cache`]); a hit takes the cached layers and config as they are, so an
//! unchanged rebuild runs nothing and makes the same image id. RUN and COPY/ADD make one layer
//! each; the others only change the config and add a history entry, as docker does.
//!
//! Layers are committed to the store as steps finish (they are whole and reusable); the image
//! and its names only at the end, so a failed build leaves no tag.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Value, json};

use super::Ctx;
use crate::build::cache::{self, Entry, Key};
use crate::build::syntax::{Args, Node};
use crate::build::{BuildError, expand, ignore::Ignore, step};
use crate::error::Result;
use crate::runtime::driver::{self, Driver, Layout};
use crate::store::{ContainerRecord, ImageRecord, LayerRef, RestartPolicy, RunSpec, Store};

/// Where progress lines go (stderr, or nowhere with `-q`).
pub type Say<'a> = &'a (dyn Fn(&str) + Sync);

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory; None for `den build -` (a Dockerfile on stdin, no context).
    pub context: Option<PathBuf>,
    /// `-f`: a path, or `-` for stdin; default `Dockerfile` in the context.
    pub file: Option<PathBuf>,
    /// The Dockerfile's text when it came on stdin.
    pub stdin_text: Option<String>,
    pub tags: Vec<String>,
    pub build_args: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub network: Option<String>,
    pub platform: Option<String>,
    pub labels: Vec<String>,
    pub quiet: bool,
    /// `--allow`: entitlements granted to the Dockerfile (only `network.host`).
    pub allow: Vec<String>,
}

/// The build so far, within one stage.
#[derive(Debug, Clone)]
struct State {
    layers: Vec<LayerRef>,
    config: Value,
    key: String,
    /// Build arguments declared in this stage, with their values (None: declared, unset).
    args: BTreeMap<String, Option<String>>,
    /// The base image's id, for the containers of RUN steps.
    /// The base image's id; none for `FROM scratch`.
    base_id: Option<crate::digest::Digest>,
    /// CMD was set in this stage (ENTRYPOINT then leaves it alone).
    cmd_set: bool,
}

impl State {
    /// The image config's `config` object, made an empty one when it is missing, `null` or not
    /// an object (images in the wild have `"config": null`).
    fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        let c = self.root().entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("made an object just above")
    }

    /// The image config itself (an object: [`base_config`] checked it, or den made it).
    fn root(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.is_object() {
            self.config = json!({});
        }
        self.config
            .as_object_mut()
            .expect("made an object just above")
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.config.get("config").and_then(|c| c.get(field))
    }

    fn env(&self) -> Vec<String> {
        strings(self.get("Env"))
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.env().iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == name).then(|| v.to_string())
        })
    }

    /// A variable as the builder expands it: ENV first, then build arguments in scope.
    fn lookup(&self, name: &str) -> Option<String> {
        self.env_value(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn workdir(&self) -> String {
        self.get("WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        let s = strings(self.get("Shell"));
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    fn diff_ids(&self) -> Vec<crate::digest::Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The build arguments in scope, as they go into cache keys and RUN's environment.
    fn arg_pairs(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    fn history(&mut self, created_by: &str, empty: bool) {
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let root = self.root();
        root.insert("created".into(), Value::String(now.clone()));
        let mut h = json!({"created": now, "created_by": created_by, "comment": "den build"});
        if empty {
            h["empty_layer"] = Value::Bool(true);
        }
        match root.get_mut("history").and_then(|h| h.as_array_mut()) {
            Some(list) => list.push(h),
            None => {
                root.insert("history".into(), Value::Array(vec![h]));
            }
        }
    }

    fn push_layer(&mut self, layer: LayerRef) {
        self.layers.push(layer);
        // The layers are the build's; the config lists exactly them.
        let ids = self.diff_ids();
        self.root()
            .insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
    }
}

/// A base image's config: a JSON object (else the image is refused), whose `config` may be
/// missing or `null` (an empty one then, as docker reads it).
fn base_config(bytes: &[u8], digest: &str) -> Result<Value> {
    let bad = |source| crate::image::ImageError::BadConfig {
        digest: digest.to_string(),
        source,
    };
    let mut config: Value = serde_json::from_slice(bytes).map_err(bad)?;
    let Some(root) = config.as_object_mut() else {
        return Err(bad(<serde_json::Error as serde::de::Error>::custom(
            "the image config is not a JSON object",
        ))
        .into());
    };
    if !root.get("config").is_some_and(Value::is_object) {
        root.insert("config".into(), json!({}));
    }
    Ok(config)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// One stage of the Dockerfile.
struct Stage {
    name: Option<String>,
    from: Node,
    nodes: Vec<Node>,
}

/// What the build is working on, shared by its steps.
struct Build<'a> {
    ctx: &'a Ctx,
    store: Store,
    opts: &'a BuildOptions,
    file: String,
    escape: char,
    context: Option<PathBuf>,
    ignore: Ignore,
    build_args: BTreeMap<String, String>,
    global_args: BTreeMap<String, Option<String>>,
    driver: Driver,
    network: String,
    say: Say<'a>,
    step: usize,
    steps: usize,
    /// Finished stages, by index.
    done: Vec<Option<State>>,
    names: Vec<Option<String>>,
}

/// Build the image `opts` describes; returns its id (config digest hex).
pub fn build(ctx: &Ctx, opts: &BuildOptions, say: Say<'_>) -> Result<String> {
    for a in &opts.allow {
        match a.as_str() {
            NETWORK_HOST => {}
            "security.insecure" => {
                return Err(BuildError::Entitlement {
                    name: a.clone(),
                    reason: "den does not run build steps with extra privileges",
                }
                .into());
            }
            _ => {
                return Err(BuildError::Entitlement {
                    name: a.clone(),
                    reason: "not an entitlement den knows",
                }
                .into());
            }
        }
    }
    let store = ctx.store()?;
    let (file, text, dockerfile_path) = read_dockerfile(opts)?;
    let df = crate::build::syntax::parse(&file, &text)?;
    let ignore = match &opts.context {
        Some(c) => match crate::build::ignore::find(c, dockerfile_path.as_deref()) {
            Some(p) => {
                Ignore::parse(&std::fs::read_to_string(&p).map_err(|e| BuildError::Read {
                    path: p.display().to_string(),
                    source: e,
                })?)
            }
            None => Ignore::default(),
        },
        None => Ignore::default(),
    };
    let mut build_args = BTreeMap::new();
    for a in &opts.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    // Split into stages; ARGs before the first FROM are global (usable in FROM lines).
    let mut global_args = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in df.nodes {
        if node.name == "FROM" {
            let words: Vec<String> = node.text().split_whitespace().map(String::from).collect();
            let name = match words.as_slice() {
                [_, kw, name] if kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                [_] => None,
                _ => {
                    return Err(step_err(
                        &file,
                        &node,
                        "expected FROM IMAGE [AS NAME]",
                        "write it as FROM image[:tag] [AS name]",
                    ));
                }
            };
            stages.push(Stage {
                name,
                from: node,
                nodes: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.nodes.push(node);
        } else if node.name == "ARG" {
            for (k, v) in arg_decls(&node, df.escape, &|n| {
                build_args
                    .get(n)
                    .cloned()
                    .or_else(|| global_args.get(n).cloned().flatten())
            })
            .map_err(|m| step_err(&file, &node, &m, "check the ARG's quoting"))?
            {
                let v = build_args.get(&k).cloned().or(v);
                global_args.insert(k, v);
            }
        } else {
            return Err(step_err(
                &file,
                &node,
                "no FROM before this instruction",
                "start the Dockerfile with FROM image (ARG may come before it)",
            ));
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Syntax {
            file: file.clone(),
            line: 1,
            message: "the Dockerfile has no FROM".into(),
        }
        .into());
    }
    let target = match &opts.target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| BuildError::Step {
                file: file.clone(),
                line: 1,
                instruction: "--target".into(),
                message: format!("no stage is named {t:?}"),
                hint: "name stages with FROM image AS name".into(),
            })?,
        None => stages.len() - 1,
    };
    let names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
    let needed = needed_stages(&stages, target, &names);
    let steps = needed.iter().map(|&i| 1 + stages[i].nodes.len()).sum();
    let choice = driver::choose(&crate::sys::LinuxSys, &store, ctx.config.storage.driver);
    // RUN steps get a network of their own; without slirp4netns there is none to give, and the
    // host's is not a Dockerfile's to take unasked (see `host_network_allowed`).
    let network = match &opts.network {
        Some(n) => n.clone(),
        None if crate::userns::find_in_path("slirp4netns").is_some() => "slirp4netns".into(),
        None => {
            say(
                "note: slirp4netns is not installed: RUN steps have no network (install \
                 slirp4netns, or build with --network host to give them the host's)",
            );
            "none".into()
        }
    };
    let mut b = Build {
        ctx,
        store: store.clone(),
        opts,
        file,
        escape: df.escape,
        context: opts.context.clone(),
        ignore,
        build_args,
        global_args,
        driver: choice.driver,
        network,
        say,
        step: 0,
        steps,
        done: vec![None; stages.len()],
        names,
    };
    // What killed dens left goes first (a killed build's layers and step containers among it).
    store.sweep();
    // Layers being added must not be pruned meanwhile.
    let _pin = store.lock_content_shared()?;
    // Held while the build runs: a build killed midway leaves it stale, and the next writer's
    // sweep then collects what the build left (layers not yet cached, step containers).
    let _running = store.staging_dir("build")?;
    for (i, stage) in stages.iter().enumerate() {
        if !needed.contains(&i) {
            continue;
        }
        let state = b.stage(stage)?;
        b.done[i] = Some(state);
    }
    let mut last = b.done[target].take().expect("target built");
    for l in &opts.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        let labels = last.cfg().entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[k] = Value::String(v.to_string());
    }
    let tags = opts
        .tags
        .iter()
        .map(|t| crate::image::Reference::parse(t))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // The first name comes with the record: a build killed here leaves no nameless image.
    let first = tags.first().map(|t| t.canonical());
    let image = commit_image(&store, &last.config, &last.layers, first.as_deref())?;
    for reference in tags.iter().skip(1) {
        store.put_image(image.clone(), Some(reference))?;
    }
    Ok(image.id.hex().to_string())
}

/// The stages the target needs: itself and, transitively, the stages its FROM, COPY --from
/// and RUN --mount from= name.
fn needed_stages(stages: &[Stage], target: usize, names: &[Option<String>]) -> Vec<usize> {
    let find = |r: &str| -> Option<usize> {
        let r = r.to_ascii_lowercase();
        names
            .iter()
            .position(|n| n.as_deref() == Some(r.as_str()))
            .or_else(|| r.parse::<usize>().ok().filter(|&i| i < stages.len()))
    };
    let mut need = vec![target];
    let mut i = 0;
    while i < need.len() {
        let s = &stages[need[i]];
        let mut refs: Vec<String> = Vec::new();
        if let Some(base) = s.from.text().split_whitespace().next() {
            refs.push(base.to_string());
        }
        for n in &s.nodes {
            if let Some(f) = n.flag("from") {
                refs.push(f.to_string());
            }
            for m in n.flags_named("mount") {
                for kv in m.split(',') {
                    if let Some(f) = kv.strip_prefix("from=") {
                        refs.push(f.to_string());
                    }
                }
            }
        }
        for r in refs {
            if let Some(j) = find(&r)
                && j < need[i]
                && !need.contains(&j)
            {
                need.push(j);
            }
        }
        i += 1;
    }
    need.sort();
    need
}

fn step_err(file: &str, node: &Node, message: &str, hint: &str) -> crate::Error {
    BuildError::Step {
        file: file.into(),
        line: node.line,
        instruction: node.name.clone(),
        message: message.into(),
        hint: hint.into(),
    }
    .into()
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

/// `ARG a b=1 c="x y"`: declarations with their expanded defaults.
fn arg_decls(
    node: &Node,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    for w in split_raw(&node.text()) {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(expand::word(v, escape, lookup)?))),
            None => out.push((w.to_string(), None)),
        }
    }
    Ok(out)
}

/// Split on unquoted whitespace, keeping quotes (for expanding each part afterwards).
fn split_raw(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match (c, quote) {
            ('\\', _) => {
                cur.push(c);
                esc = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                cur.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                cur.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `KEY=VALUE ...` pairs (ENV, LABEL), or the legacy `KEY VALUE` form.
fn pairs(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, String)>, String> {
    let parts = split_raw(text);
    if parts.first().is_some_and(|p| !p.contains('=')) {
        // ENV KEY the rest of the line
        let (k, v) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("needs KEY=VALUE")?;
        return Ok(vec![(
            k.to_string(),
            expand::word(v.trim(), escape, lookup)?,
        )]);
    }
    let mut out = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{p:?} is not KEY=VALUE"))?;
        out.push((
            expand::word(k, escape, lookup)?,
            expand::word(v, escape, lookup)?,
        ));
    }
    Ok(out)
}

impl Build<'_> {
    fn announce(&mut self, text: &str) {
        self.step += 1;
        (self.say)(&format!("STEP {}/{}: {}", self.step, self.steps, text));
    }

    fn err(&self, node: &Node, message: &str, hint: &str) -> crate::Error {
        step_err(&self.file, node, message, hint)
    }

    /// Run one stage from its FROM to its last instruction.
    fn stage(&mut self, stage: &Stage) -> Result<State> {
        let from = &stage.from;
        self.announce(&from.original);
        let globals = self.global_args.clone();
        let lookup = |n: &str| globals.get(n).cloned().flatten();
        let base = from
            .text()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let base = expand::word(&base, self.escape, &lookup)
            .map_err(|m| self.err(from, &m, "check the FROM line's variables"))?;
        let platform = from
            .flag("platform")
            .map(String::from)
            .or(self.opts.platform.clone());
        let mut state = if base.eq_ignore_ascii_case("scratch") {
            State {
                layers: Vec::new(),
                config: json!({
                    "architecture": crate::image::manifest::Platform::host().arch,
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                key: "scratch".into(),
                args: BTreeMap::new(),
                base_id: None,
                cmd_set: false,
            }
        } else if let Some(i) = self
            .names
            .iter()
            .position(|n| n.as_deref() == Some(base.to_ascii_lowercase().as_str()))
            .filter(|&i| self.done[i].is_some())
        {
            let mut s = self.done[i].clone().expect("built");
            s.args.clear();
            s.cmd_set = false;
            s
        } else {
            let image = if self.opts.pull {
                super::run::pull_image(self.ctx, &base, platform.as_deref())?
            } else {
                super::run::find_or_pull(self.ctx, &base, platform.as_deref(), &Notes(self.say))?
            };
            let bytes = self.store.read_blob(&image.config)?;
            let config = base_config(&bytes, image.config.as_str())?;
            State {
                layers: image.layers.clone(),
                config,
                key: format!("image:{}", image.id),
                args: BTreeMap::new(),
                base_id: Some(image.id.clone()),
                cmd_set: false,
            }
        };
        // ONBUILD triggers of the base run first.
        let triggers = strings(state.get("OnBuild"));
        if !triggers.is_empty() {
            state.cfg().remove("OnBuild");
            for t in triggers {
                let df = crate::build::syntax::parse(&self.file, &t)?;
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

    /// Apply one instruction: from the cache when its key is known, else by doing it.
    fn instruction(&mut self, state: &mut State, node: &Node) -> Result<()> {
        self.announce(&node.original);
        let esc = self.escape;
        if node.name == "ARG" {
            let s = state.clone();
            let decls = arg_decls(node, esc, &|n| s.lookup(n))
                .map_err(|m| self.err(node, &m, "check the ARG's quoting"))?;
            for (k, default) in decls {
                let v = self
                    .build_args
                    .get(&k)
                    .cloned()
                    .or(default)
                    .or_else(|| self.global_args.get(&k).cloned().flatten());
                state.args.insert(k, v);
            }
            return Ok(());
        }
        let snapshot = state.clone();
        let lookup = move |n: &str| snapshot.lookup(n);
        let word = |s: &str| {
            expand::word(s, esc, &lookup)
                .map_err(|m| self.err(node, &m, "check the variable's name and quoting"))
        };
        let words = |s: &str| {
            expand::words(s, esc, &lookup).map_err(|m| self.err(node, &m, "check the quoting"))
        };
        // What decides the step, beyond the parent's key: the instruction after expansion
        // (RUN's text is the shell's to expand, so the build arguments go in instead).
        let mut key = Key::new(&state.key);
        key.add(&node.name);
        for (k, v) in &node.flags {
            key.add(&format!("--{k}={v}"));
        }
        key.add(&node.text());
        for h in &node.heredocs {
            key.add(&h.body);
        }
        for a in state.arg_pairs() {
            key.add(&a);
        }
        key.add(&state.shell().join(" "));
        let is_fs = matches!(node.name.as_str(), "RUN" | "COPY" | "ADD");
        if matches!(node.name.as_str(), "COPY" | "ADD") {
            let digest = self.sources_digest(state, node, &word)?;
            key.add(&digest);
        }
        if matches!(
            node.name.as_str(),
            "WORKDIR" | "ENV" | "LABEL" | "USER" | "EXPOSE" | "VOLUME" | "STOPSIGNAL"
        ) {
            key.add(&words(&node.text())?.join("\0"));
        }
        let key = key.finish();
        if !self.opts.no_cache
            && let Some(hit) = cache::get(&self.store, &key)
        {
            (self.say)("--> Using cache");
            state.layers = hit.layers;
            state.config = hit.config;
            state.key = key;
            if node.name == "CMD" {
                state.cmd_set = true;
            }
            return Ok(());
        }
        let text = node.text();
        let created_by = match node.name.as_str() {
            "RUN" => format!("RUN {}", self.run_argv(state, node).join(" ")),
            _ => node.original.clone(),
        };
        match node.name.as_str() {
            "RUN" => {
                let layer = self.run(state, node)?;
                state.push_layer(layer);
            }
            "COPY" | "ADD" => {
                let layer = self.copy(state, node, &word)?;
                state.push_layer(layer);
            }
            "ENV" => {
                let kv = pairs(&text, esc, &lookup)
                    .map_err(|m| self.err(node, &m, "write ENV KEY=VALUE"))?;
                let mut env = state.env();
                for (k, v) in kv {
                    env.retain(|e| {
                        e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()) && e != &k
                    });
                    env.push(format!("{k}={v}"));
                }
                state.cfg().insert("Env".into(), json!(env));
            }
            "LABEL" => {
                let kv = pairs(&text, esc, &lookup)
                    .map_err(|m| self.err(node, &m, "write LABEL key=value"))?;
                let labels = state.cfg().entry("Labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                for (k, v) in kv {
                    labels[k] = Value::String(v);
                }
            }
            "MAINTAINER" => {
                state
                    .root()
                    .insert("author".into(), Value::String(text.clone()));
            }
            "EXPOSE" => {
                let mut ports = Vec::new();
                for p in words(&text)? {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let proto = proto.to_ascii_lowercase();
                    let range = match num.split_once('-') {
                        Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
                        None => num.parse::<u16>().ok().map(|a| (a, a)),
                    };
                    let Some((a, b)) = range.filter(|(a, b)| a <= b && *a > 0) else {
                        return Err(self.err(
                            node,
                            &format!("invalid port {p:?}"),
                            "write EXPOSE 80 or EXPOSE 53/udp",
                        ));
                    };
                    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                        return Err(self.err(
                            node,
                            &format!("invalid protocol in {p:?}"),
                            "use tcp, udp or sctp",
                        ));
                    }
                    for n in a..=b {
                        ports.push(format!("{n}/{proto}"));
                    }
                }
                let exposed = state
                    .cfg()
                    .entry("ExposedPorts")
                    .or_insert_with(|| json!({}));
                if !exposed.is_object() {
                    *exposed = json!({});
                }
                for p in ports {
                    exposed[p] = json!({});
                }
            }
            "VOLUME" => {
                let vols = match &node.args {
                    Args::Json(v) => v.iter().map(|s| word(s)).collect::<Result<Vec<_>>>()?,
                    Args::Raw(r) => words(r)?,
                };
                let v = state.cfg().entry("Volumes").or_insert_with(|| json!({}));
                if !v.is_object() {
                    *v = json!({});
                }
                for p in vols {
                    v[p] = json!({});
                }
            }
            "USER" => {
                let u = word(&text)?;
                state.cfg().insert("User".into(), Value::String(u));
            }
            "WORKDIR" => {
                let w = word(&text)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{}", state.workdir().trim_end_matches('/'), w)
                };
                state
                    .cfg()
                    .insert("WorkingDir".into(), Value::String(clean_abs(&path)));
            }
            "CMD" | "ENTRYPOINT" => {
                let argv = match &node.args {
                    Args::Json(v) => v.clone(),
                    Args::Raw(r) if r.is_empty() => Vec::new(),
                    Args::Raw(r) => {
                        let mut v = state.shell();
                        v.push(r.clone());
                        v
                    }
                };
                let field = if node.name == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                state.cfg().insert(field.into(), json!(argv));
                if node.name == "CMD" {
                    state.cmd_set = true;
                } else if !state.cmd_set {
                    state.cfg().insert("Cmd".into(), Value::Null);
                }
            }
            "SHELL" => {
                let Args::Json(v) = &node.args else {
                    return Err(self.err(
                        node,
                        "SHELL takes the JSON form",
                        "write SHELL [\"/bin/bash\", \"-c\"]",
                    ));
                };
                state.cfg().insert("Shell".into(), json!(v));
            }
            "STOPSIGNAL" => {
                let s = word(&text)?;
                state.cfg().insert("StopSignal".into(), Value::String(s));
            }
            "HEALTHCHECK" => {
                let hc = self.healthcheck(state, node)?;
                state.cfg().insert("Healthcheck".into(), hc);
            }
            "ONBUILD" => {
                let t = text.trim();
                let first = t
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(self.err(
                        node,
                        &format!("{first} is not allowed in ONBUILD"),
                        "use another instruction",
                    ));
                }
                crate::build::syntax::parse(&self.file, &format!("{}\n", t)).map_err(|e| {
                    self.err(node, &e.to_string(), "check the triggered instruction")
                })?;
                let list = state.cfg().entry("OnBuild").or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(Value::String(t.to_string()));
                } else {
                    *list = json!([t]);
                }
            }
            other => return Err(self.err(node, &format!("{other} is not supported"), "remove it")),
        }
        state.history(&created_by, !is_fs);
        state.key = key.clone();
        cache::put(
            &self.store,
            &key,
            &Entry {
                layers: state.layers.clone(),
                config: state.config.clone(),
            },
        )?;
        Ok(())
    }

    fn healthcheck(&self, state: &State, node: &Node) -> Result<Value> {
        let text = node.text();
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(json!({"Test": ["NONE"]}));
        }
        let Some(rest) = text
            .trim()
            .strip_prefix("CMD")
            .or_else(|| text.trim().strip_prefix("cmd"))
        else {
            return Err(self.err(
                node,
                "expected HEALTHCHECK [OPTIONS] CMD command, or NONE",
                "write HEALTHCHECK --interval=30s CMD curl -f http://localhost/",
            ));
        };
        let rest = rest.trim();
        let test = match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) if rest.starts_with('[') => {
                let mut t = vec!["CMD".to_string()];
                t.extend(v);
                t
            }
            _ => vec!["CMD-SHELL".into(), rest.into()],
        };
        let _ = state;
        let mut hc = json!({"Test": test});
        for (k, v) in &node.flags {
            let field = match k.as_str() {
                "interval" => "Interval",
                "timeout" => "Timeout",
                "start-period" => "StartPeriod",
                "start-interval" => "StartInterval",
                "retries" => {
                    let n: u64 = v.parse().map_err(|_| self.err(node, &format!("--retries={v} is not a number"), "write --retries=3"))?;
                    hc["Retries"] = json!(n);
                    continue;
                }
                other => return Err(self.err(node, &format!("unknown flag --{other}"), "HEALTHCHECK takes --interval, --timeout, --start-period, --start-interval and --retries")),
            };
            let ns = parse_duration(v).ok_or_else(|| {
                self.err(
                    node,
                    &format!("--{k}={v} is not a duration"),
                    "write e.g. 30s, 1m30s or 500ms",
                )
            })?;
            hc[field] = json!(ns);
        }
        Ok(hc)
    }

    /// RUN's command line: the exec form as it is, else the shell with the text (heredocs: the
    /// body as the script).
    fn run_argv(&self, state: &State, node: &Node) -> Vec<String> {
        match &node.args {
            Args::Json(v) => v.clone(),
            Args::Raw(r) => {
                let mut argv = state.shell();
                let only_heredoc = node.heredocs.len() == 1
                    && r.trim()
                        .trim_start_matches("<<")
                        .trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\'')
                        == node.heredocs[0].name;
                if only_heredoc {
                    argv.push(node.heredocs[0].body.clone());
                } else if node.heredocs.is_empty() {
                    argv.push(r.clone());
                } else {
                    // `RUN cmd <<EOF`: the shell reads the heredocs as written.
                    let mut script = r.clone();
                    for h in &node.heredocs {
                        script.push('\n');
                        script.push_str(&h.body);
                        script.push_str(&h.name);
                    }
                    argv.push(script);
                }
                argv
            }
        }
    }

    /// RUN: the command in a container on the build so far; its writable layer is the new layer.
    fn run(&self, state: &State, node: &Node) -> Result<LayerRef> {
        if self.driver == Driver::Vfs {
            return Err(BuildError::NeedsOverlay.into());
        }
        let argv = self.run_argv(state, node);
        let mut env = state.env();
        for a in state.arg_pairs() {
            let k = a.split_once('=').map(|(k, _)| k).unwrap_or(&a);
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k))
            {
                env.push(a.clone());
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        let mut mounts = Vec::new();
        // Indices of `rw` bind mounts, which get a throwaway layer.
        let mut rw_binds = Vec::new();
        let mut network = self.network.clone();
        for (k, v) in &node.flags {
            match k.as_str() {
                "mount" => {
                    let (m, rw) = self.run_mount(node, v)?;
                    if rw {
                        rw_binds.push(mounts.len());
                    }
                    mounts.push(m);
                }
                "network" => {
                    network = match v.as_str() {
                        "default" => self.network.clone(),
                        "none" => v.clone(),
                        // The host's network reaches its loopback services: docker's
                        // entitlement, granted by the user, not the Dockerfile.
                        "host" if self.host_network_allowed() => v.clone(),
                        "host" => {
                            return Err(self.err(
                                node,
                                "--network=host needs the network.host entitlement",
                                "if you trust this Dockerfile with the host's network, build with \
                                 `den build --allow network.host` (or --network host)",
                            ));
                        }
                        _ => {
                            return Err(self.err(
                                node,
                                &format!("--network={v} is not supported"),
                                "use default, none or host",
                            ));
                        }
                    }
                }
                "security" if v == "sandbox" => {}
                other => {
                    return Err(self.err(
                        node,
                        &format!("unknown flag --{other}"),
                        "RUN takes --mount and --network",
                    ));
                }
            }
        }
        let record = ContainerRecord {
            id: String::new(),
            name: String::new(),
            // A scratch stage has no base image; the empty digest names none.
            image_id: state
                .base_id
                .clone()
                .unwrap_or_else(|| crate::digest::Digest::of(b"")),
            image: "den-build".into(),
            created: Utc::now(),
            driver: self.driver.name().into(),
            spec: RunSpec {
                args: argv,
                env,
                cwd: state.workdir(),
                user: state
                    .get("User")
                    .and_then(|u| u.as_str())
                    .unwrap_or("")
                    .to_string(),
                hostname: String::new(),
                tty: false,
                stdin: false,
                network,
                stop_signal: None,
                read_only: false,
                entrypoint: Vec::new(),
                cmd: Vec::new(),
                mounts,
                restart: RestartPolicy::No,
                stop_timeout: None,
                labels: BTreeMap::from([(
                    crate::store::BUILD_STEP_LABEL.to_string(),
                    std::process::id().to_string(),
                )]),
                ports: Vec::new(),
                add_hosts: Vec::new(),
                dns: Vec::new(),
                // docker's defaults, as for `docker build`'s RUN.
                security: Default::default(),
            },
            auto_remove: false,
            layers: state.diff_ids(),
        };
        let mut record = self.store.create_container(record, None)?;
        let id = record.id.clone();
        let _cleanup = RemoveContainer(&self.store, id.clone());
        record.spec.hostname = id[..12].to_string();
        let cdir = self.store.container_dir(&id);
        // Unmounted (dropped) before the container directory is removed.
        let _binds = self.throwaway_binds(node, &cdir, &mut record.spec.mounts, &rw_binds)?;
        self.store
            .write_json(&cdir.join("container.json"), &record)?;
        driver::prepare(self.driver, &self.store, &record.layers, &cdir)?;
        let tool = super::tool_path("den-run").ok_or_else(|| {
            self.err(
                node,
                "den-run was not found",
                "install den-run next to den-build",
            )
        })?;
        let out: std::process::Stdio = if self.opts.quiet {
            std::process::Stdio::null()
        } else {
            std::os::fd::AsFd::as_fd(&std::io::stderr())
                .try_clone_to_owned()
                .map(std::process::Stdio::from)
                .unwrap_or_else(|_| std::process::Stdio::inherit())
        };
        let status = std::process::Command::new(tool)
            .arg("__run-created")
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .status()
            .map_err(|e| crate::store::StoreError::Io {
                path: "den-run".into(),
                source: e,
            })?;
        let code = status.code().unwrap_or(128 + 9);
        if code != 0 {
            return Err(BuildError::RunFailed {
                file: self.file.clone(),
                line: node.line,
                instruction: node.original.clone(),
                code,
            }
            .into());
        }
        step::commit_upper(&self.store, &Layout::of(&cdir).upper, self.driver)
    }

    /// Whether RUN may use the host's network: `den build --network host` or
    /// `--allow network.host`.
    fn host_network_allowed(&self) -> bool {
        self.opts.network.as_deref() == Some("host")
            || self.opts.allow.iter().any(|a| a == NETWORK_HOST)
    }

    /// `RUN --mount=type=bind,rw`: the step may write to the mount but, as with BuildKit, what
    /// it writes is thrown away and never reaches the build context. Each such mount's source
    /// gets a throwaway writable layer under the step's container directory (an overlay over a
    /// directory, a copy of a file), and the container binds that instead.
    fn throwaway_binds(
        &self,
        node: &Node,
        cdir: &Path,
        mounts: &mut [crate::volume::MountSpec],
        which: &[usize],
    ) -> Result<Throwaway> {
        let mut t = Throwaway {
            driver: self.driver,
            dirs: Vec::new(),
        };
        for (n, &i) in which.iter().enumerate() {
            let m = &mut mounts[i];
            let src = PathBuf::from(&m.source);
            let dir = cdir.join("binds").join(n.to_string());
            let fail = |what: String| {
                self.err(
                    node,
                    &format!("cannot give the rw bind mount of {} a throwaway layer: {what}", src.display()),
                    "mount it read-only (leave out rw), or build from a context outside den's store",
                )
            };
            if src.is_dir() {
                let merged = driver::mount_over(&crate::sys::LinuxSys, self.driver, &src, &dir)
                    .map_err(|e| fail(crate::error::chain(&e)))?;
                t.dirs.push(dir);
                m.source = merged.to_string_lossy().into_owned();
            } else {
                std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
                let copy = dir.join(src.file_name().unwrap_or_else(|| "file".as_ref()));
                std::fs::copy(&src, &copy).map_err(|e| fail(e.to_string()))?;
                m.source = copy.to_string_lossy().into_owned();
            }
        }
        Ok(t)
    }

    /// `--mount=type=cache|bind|tmpfs,...` as a container mount, and whether it is a writable
    /// bind mount (which needs a throwaway layer, see [`Self::throwaway_binds`]).
    fn run_mount(&self, node: &Node, spec: &str) -> Result<(crate::volume::MountSpec, bool)> {
        let mut kv = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            kv.insert(k.to_string(), v.to_string());
        }
        let target = kv
            .get("target")
            .or(kv.get("dst"))
            .or(kv.get("destination"))
            .cloned()
            .ok_or_else(|| {
                self.err(
                    node,
                    &format!("--mount={spec} has no target"),
                    "add target=/path",
                )
            })?;
        let kind = kv.get("type").map(String::as_str).unwrap_or("bind");
        let ro = |k: &BTreeMap<String, String>| {
            k.get("ro")
                .or(k.get("readonly"))
                .is_some_and(|v| v != "false")
        };
        let cwd = std::path::PathBuf::from("/");
        let mut rw_bind = false;
        let flag = match kind {
            "cache" => {
                let id = kv.get("id").cloned().unwrap_or_else(|| target.clone());
                let dir = cache::mount_dir(&self.store, &id);
                std::fs::create_dir_all(&dir).map_err(|e| crate::store::StoreError::Io {
                    path: dir.clone(),
                    source: e,
                })?;
                format!(
                    "type=bind,source={},target={}{}",
                    dir.display(),
                    target,
                    if ro(&kv) { ",readonly" } else { "" }
                )
            }
            "bind" => {
                let source = kv
                    .get("source")
                    .or(kv.get("src"))
                    .cloned()
                    .unwrap_or_else(|| "/".into());
                let host = if let Some(from) = kv.get("from") {
                    return Err(self.err(
                        node,
                        &format!("--mount from={from} is not supported yet"),
                        "COPY --from the files into the stage instead",
                    ));
                } else {
                    let ctxdir = self.context.as_ref().ok_or_else(|| {
                        self.err(
                            node,
                            "a bind mount needs a build context",
                            "build with a context directory",
                        )
                    })?;
                    crate::unpack::scope::resolve(ctxdir, Path::new(&source), true)
                        .map_err(|e| self.err(node, &e.to_string(), "check the source path"))?
                };
                rw_bind = kv
                    .get("rw")
                    .or(kv.get("readwrite"))
                    .is_some_and(|v| v != "false");
                format!(
                    "type=bind,source={},target={}{}",
                    host.display(),
                    target,
                    if rw_bind { "" } else { ",readonly" }
                )
            }
            "tmpfs" => format!("type=tmpfs,target={target}"),
            other => {
                return Err(self.err(
                    node,
                    &format!("--mount type={other} is not supported"),
                    "use type=cache, bind or tmpfs",
                ));
            }
        };
        crate::volume::parse_mount_flag(&flag, &cwd)
            .map(|m| (m, rw_bind))
            .map_err(|e| self.err(node, &e.to_string(), "check the --mount options"))
    }

    /// The sources of a COPY/ADD and its destination, expanded.
    fn copy_args(
        &self,
        node: &Node,
        word: &dyn Fn(&str) -> Result<String>,
    ) -> Result<(Vec<String>, String)> {
        let mut parts: Vec<String> = match &node.args {
            Args::Json(v) => v.iter().map(|s| word(s)).collect::<Result<_>>()?,
            Args::Raw(r) => split_raw(r)
                .iter()
                .map(|s| word(s))
                .collect::<Result<_>>()?,
        };
        if parts.len() < 2 {
            return Err(self.err(
                node,
                "needs a source and a destination",
                &format!("write {} SRC... DEST", node.name),
            ));
        }
        let dest = parts.pop().expect("two or more");
        Ok((parts, dest))
    }

    /// The digest of what a COPY/ADD would copy: names, modes and contents (not times).
    fn sources_digest(
        &self,
        state: &State,
        node: &Node,
        word: &dyn Fn(&str) -> Result<String>,
    ) -> Result<String> {
        let (srcs, _) = self.copy_args(node, word)?;
        let mut key = Key::new("sources");
        if let Some(from) = node.flag("from") {
            // Another stage's or image's files: its key (or id) decides them.
            key.add(&self.source_key(node, from)?);
            for s in srcs {
                key.add(&s);
            }
            return Ok(key.finish());
        }
        let heredocs: Vec<&str> = node.heredocs.iter().map(|h| h.name.as_str()).collect();
        let _ = state;
        let mut links = HashMap::new();
        for s in &srcs {
            let name = s
                .trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'');
            if heredocs.contains(&name) {
                continue;
            }
            if is_url(s) {
                // Fetched to learn its content, as docker does on every build.
                key.add(s);
                let bytes =
                    fetch(s).map_err(|m| self.err(node, &m, "check the URL and the network"))?;
                key.add_bytes(&bytes);
                continue;
            }
            for (rel, path) in self.matches(node, s)? {
                hash_tree(
                    &mut key,
                    &path,
                    &rel,
                    &|r, d| self.ignore.keeps(r, d),
                    &mut links,
                )?;
            }
        }
        Ok(key.finish())
    }

    fn source_key(&self, node: &Node, from: &str) -> Result<String> {
        match self.stage_index(from) {
            Some(i) => Ok(self.done[i]
                .as_ref()
                .map(|s| s.key.clone())
                .unwrap_or_default()),
            None => {
                let image = super::run::find_or_pull(
                    self.ctx,
                    from,
                    self.opts.platform.as_deref(),
                    &Notes(self.say),
                )
                .map_err(|e| {
                    self.err(
                        node,
                        &crate::error::chain(&e),
                        "name an earlier stage or an image",
                    )
                })?;
                Ok(format!("image:{}", image.id))
            }
        }
    }

    fn stage_index(&self, name: &str) -> Option<usize> {
        let l = name.to_ascii_lowercase();
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(l.as_str()))
            .or_else(|| l.parse::<usize>().ok())
            .filter(|&i| i < self.done.len() && self.done[i].is_some())
    }

    /// Context paths a source pattern names, relative and absolute, sorted; ignored ones left out.
    fn matches(&self, node: &Node, src: &str) -> Result<Vec<(String, PathBuf)>> {
        let ctxdir = self.context.as_ref().ok_or_else(|| {
            self.err(
                node,
                "there is no build context to copy from",
                "build with a context directory: den build -f - DIR",
            )
        })?;
        let clean: Vec<&str> = src
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if clean.contains(&"..") {
            return Err(self.err(
                node,
                &format!("{src} is outside the build context"),
                "copy files from inside the context directory",
            ));
        }
        let rel = clean.join("/");
        let mut out = Vec::new();
        if rel.contains(['*', '?', '[']) {
            let pattern = format!(
                "{}/{}",
                glob::Pattern::escape(&ctxdir.to_string_lossy()),
                rel
            );
            let paths = glob::glob(&pattern).map_err(|e| {
                self.err(node, &format!("bad pattern {src}: {e}"), "fix the pattern")
            })?;
            for p in paths.flatten() {
                let r = p
                    .strip_prefix(ctxdir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if !self.ignore.excluded(&r) {
                    out.push((r, p));
                }
            }
        } else {
            let p = if rel.is_empty() {
                ctxdir.clone()
            } else {
                ctxdir.join(&rel)
            };
            if std::fs::symlink_metadata(&p).is_ok()
                && (rel.is_empty() || !self.ignore.excluded(&rel))
            {
                out.push((rel.clone(), p));
            }
        }
        if out.is_empty() {
            return Err(self.err(
                node,
                &format!("{src}: no such file or directory in the build context"),
                "check the path (relative to the context directory) and .dockerignore",
            ));
        }
        out.sort();
        Ok(out)
    }

    /// COPY/ADD: files into a mounted root; its writable layer is the new layer.
    fn copy(
        &self,
        state: &State,
        node: &Node,
        word: &dyn Fn(&str) -> Result<String>,
    ) -> Result<LayerRef> {
        let (srcs, dest) = self.copy_args(node, word)?;
        let add = node.name == "ADD";
        let mut attrs = step::Attrs::default();
        let mut from = None;
        let mut chown = None;
        for (k, v) in &node.flags {
            match k.as_str() {
                "from" => from = Some(word(v)?),
                "chown" => chown = Some(word(v)?),
                "chmod" => {
                    attrs.mode = Some(u32::from_str_radix(&word(v)?, 8).map_err(|_| {
                        self.err(
                            node,
                            &format!("--chmod={v} is not an octal mode"),
                            "write e.g. --chmod=755",
                        )
                    })?)
                }
                "link" | "parents" | "keep-git-dir" | "checksum" | "exclude" => {}
                other => {
                    return Err(self.err(
                        node,
                        &format!("unknown flag --{other}"),
                        "COPY takes --from, --chown, --chmod and --link",
                    ));
                }
            }
        }
        // docker cleans the destination lexically (filepath.Join) before resolving it.
        let dest_abs = PathBuf::from(if dest.starts_with('/') {
            clean_abs(&dest)
        } else {
            clean_abs(&format!("{}/{}", state.workdir(), dest))
        });
        let mut root = step::StepRoot::mount(&self.store, &state.diff_ids(), self.driver)?;
        if let Some(spec) = &chown {
            // Names are looked up in the root as it is, all layers merged.
            attrs.owner = self.owner(&root.merged, node, spec)?;
        }
        // --from: the other stage's or image's files, mounted read-only beside.
        let from_root = match &from {
            Some(f) => {
                let layers = match self.stage_index(f) {
                    Some(i) => self.done[i].as_ref().expect("built").diff_ids(),
                    None => {
                        let image = super::run::find_or_pull(
                            self.ctx,
                            f,
                            self.opts.platform.as_deref(),
                            &Notes(self.say),
                        )?;
                        image.layers.iter().map(|l| l.diff_id.clone()).collect()
                    }
                };
                Some(step::StepRoot::mount(&self.store, &layers, self.driver)?)
            }
            None => None,
        };
        let many = srcs.len() > 1 || srcs.iter().any(|s| s.contains(['*', '?', '[']));
        let dest_host = crate::unpack::scope::resolve(&root.merged, &dest_abs, true)
            .map_err(|e| self.err(node, &e.to_string(), "check the destination"))?;
        let dest_exists_as_dir = std::fs::symlink_metadata(&dest_host).is_ok_and(|m| m.is_dir());
        let dest_is_dir = dest.ends_with('/') || many || dest_exists_as_dir;
        if many && !dest.ends_with('/') && !dest_exists_as_dir {
            return Err(self.err(
                node,
                &format!("with several sources the destination {dest} must end with /"),
                "add a / to the destination",
            ));
        }
        // Where a source named `name` goes: its directory in the root, open, and its name there.
        let into = |name: &std::ffi::OsStr| -> Result<(step::Dir, std::ffi::OsString)> {
            let path = if dest_is_dir {
                dest_abs.join(name)
            } else {
                dest_abs.clone()
            };
            step::target_inside(&root.merged, &path, attrs)
        };
        let mut links = step::Links::new(&root.merged)?;
        for s in &srcs {
            let hname = s
                .trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'');
            if s.starts_with("<<")
                && let Some(h) = node.heredocs.iter().find(|h| h.name == hname)
            {
                let (dir, name) = into(hname.as_ref())?;
                let body = if h.expand {
                    expand::text(&h.body, self.escape, &|n| state.lookup(n))
                        .map_err(|m| self.err(node, &m, "check the heredoc's variables"))?
                } else {
                    h.body.clone()
                };
                step::write_file(&dir, &name, body.as_bytes(), attrs, 0o644)?;
                continue;
            }
            if add && is_url(s) {
                let base = s
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .filter(|b| crate::unpack::scope::is_plain(b.as_ref()))
                    .unwrap_or("download")
                    .to_string();
                let (dir, name) = into(base.as_ref())?;
                let bytes =
                    fetch(s).map_err(|m| self.err(node, &m, "check the URL and the network"))?;
                // docker gives a download mode 0600.
                step::write_file(&dir, &name, &bytes, attrs, 0o600)?;
                continue;
            }
            let sources: Vec<(String, PathBuf)> = match &from_root {
                Some(fr) => {
                    let p = crate::unpack::scope::resolve(&fr.merged, Path::new(s), true)
                        .map_err(|e| self.err(node, &e.to_string(), "check the path"))?;
                    if std::fs::symlink_metadata(&p).is_err() {
                        return Err(self.err(
                            node,
                            &format!(
                                "{s}: no such file or directory in {}",
                                from.as_deref().unwrap_or("")
                            ),
                            "check the path in that stage or image",
                        ));
                    }
                    vec![(String::new(), p)]
                }
                None => self.matches(node, s)?,
            };
            for (rel, path) in sources {
                let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
                let keep = |r: &str, d: bool| from_root.is_some() || self.ignore.keeps(r, d);
                if is_dir {
                    let d = step::mkdir_inside(&root.merged, &dest_abs, attrs)?;
                    step::copy_dir_into(&path, &rel, &d, attrs, &keep, &mut links)?;
                } else if add && from_root.is_none() && is_archive(&path) {
                    let d = step::mkdir_inside(&root.merged, &dest_abs, attrs)?;
                    self.extract(node, &path, &root.merged, &d)?;
                } else {
                    let (dir, name) = into(path.file_name().unwrap_or_default())?;
                    step::copy_tree(&path, &rel, &dir, &name, attrs, &keep, &mut links)?;
                }
            }
        }
        drop(links);
        drop(from_root);
        root.unmount();
        step::commit_upper(&self.store, &root.upper(), self.driver)
    }

    /// ADD of a local archive: unpacked into the directory `dest` of the root by `cp`'s writer
    /// ([`crate::copy::untar_in`]), which resolves the archive's paths inside the root and
    /// writes through descriptors, with docker's untar rules; the archive's owners are kept.
    fn extract(&self, node: &Node, archive: &Path, root: &Path, dest: &step::Dir) -> Result<()> {
        let mut f = std::fs::File::open(archive).map_err(|e| BuildError::Read {
            path: archive.display().to_string(),
            source: e,
        })?;
        let dest = dest.path();
        crate::copy::untar_in(root, &dest.to_string_lossy(), &mut f).map_err(|e| {
            let hint =
                crate::error::Diagnose::hint(&e).unwrap_or_else(|| "check the archive".into());
            self.err(
                node,
                &format!("{}: {}", archive.display(), crate::error::chain(&e)),
                &hint,
            )
        })
    }

    /// `--chown=user[:group]`: numbers, or names from the image's /etc/passwd and /etc/group,
    /// read in the mounted root `root` (see [`crate::unpack::scope::read_small`]).
    fn owner(&self, root: &Path, node: &Node, spec: &str) -> Result<(u32, u32)> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let lookup = |file: &str, name: &str| -> Result<Option<(u32, u32)>> {
            if let Ok(n) = name.parse::<u32>() {
                return Ok(Some((n, n)));
            }
            let bytes =
                crate::unpack::scope::read_small(root, file, crate::unpack::scope::SMALL_FILE_CAP)
                    .map_err(|e| {
                        let hint = crate::error::Diagnose::hint(&e).unwrap_or_default();
                        self.err(node, &e.to_string(), &hint)
                    })?
                    .unwrap_or_default();
            Ok(String::from_utf8_lossy(&bytes).lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.first() == Some(&name) && f.len() > 3)
                    .then(|| (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)))
            }))
        };
        let Some((uid, primary)) = lookup("/etc/passwd", u)? else {
            return Err(self.err(
                node,
                &format!("user {u:?} is not in the image's /etc/passwd"),
                "use a numeric uid:gid",
            ));
        };
        let gid = match g {
            Some(g) => match lookup("/etc/group", g)? {
                Some((gid, _)) => gid,
                None => {
                    return Err(self.err(
                        node,
                        &format!("group {g:?} is not in the image's /etc/group"),
                        "use a numeric gid",
                    ));
                }
            },
            None if u.parse::<u32>().is_ok() => uid,
            None => primary,
        };
        Ok((uid, gid))
    }
}

/// Reports a base image pull's notes through the build's progress lines.
struct Notes<'a>(Say<'a>);
impl super::Report for Notes<'_> {
    fn note(&self, text: &str) {
        (self.0)(text)
    }
}

/// The throwaway layers of a RUN step's `rw` bind mounts, unmounted when the step ends
/// (before its container directory, where their writes are, is removed).
struct Throwaway {
    driver: Driver,
    dirs: Vec<PathBuf>,
}
impl Drop for Throwaway {
    fn drop(&mut self) {
        for d in &self.dirs {
            driver::unmount(&crate::sys::LinuxSys, self.driver, d);
        }
    }
}

/// docker's entitlement for `RUN --network=host` (`--allow network.host`).
pub const NETWORK_HOST: &str = "network.host";

/// Removes a build step's container when the step ends, whatever happened.
struct RemoveContainer<'a>(&'a Store, String);
impl Drop for RemoveContainer<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove_container(&self.1);
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn clean_abs(p: &str) -> String {
    crate::volume::clean_path(p)
}

/// Go duration syntax (`1m30s`, `500ms`) in nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        num.clear();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        num.push_str(&rest[..digits]);
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let n: f64 = num.parse().ok()?;
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
    }
    Some(total as u64)
}

/// Hash a context tree for the cache: relative names, kinds, modes, contents, and which names
/// are hard links to a file hashed before (`links`: (device, inode) to its first name), since
/// COPY keeps them.
fn hash_tree(
    key: &mut Key,
    path: &Path,
    rel: &str,
    keep: &dyn Fn(&str, bool) -> bool,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path).map_err(|e| BuildError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    key.add(rel);
    key.add(&format!("{:o}", md.mode()));
    if md.is_dir() {
        let children = step::kept_children(path, rel, keep).map_err(|e| BuildError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        for (r, p) in children {
            hash_tree(key, &p, &r, keep, links)?;
        }
    } else if md.file_type().is_symlink() {
        let t = std::fs::read_link(path).unwrap_or_default();
        key.add(&t.to_string_lossy());
    } else if md.is_file() {
        if md.nlink() > 1 {
            match links.entry((md.dev(), md.ino())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    key.add(&format!("hard link to {}", first.get()));
                    return Ok(());
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(rel.to_string());
                }
            }
        }
        let mut f = std::fs::File::open(path).map_err(|e| BuildError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut buf = vec![0u8; 1 << 16];
        key.add(&md.len().to_string());
        loop {
            let n = f.read(&mut buf).map_err(|e| BuildError::Read {
                path: path.display().to_string(),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            key.add_bytes(&buf[..n]);
        }
    }
    Ok(())
}

/// ADD's local archives: tar, gzip- or zstd-compressed tar (by their first bytes).
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b])
        || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// ADD of a URL: its bytes.
fn fetch(url: &str) -> std::result::Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let resp = reqwest::get(url)
            .await
            .map_err(|e| format!("{url}: {}", crate::error::chain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    })
}

/// Write the image's config and manifest blobs and its record, named `name` (canonical) if
/// given.
pub(crate) fn commit_image(
    store: &Store,
    config: &Value,
    layers: &[LayerRef],
    name: Option<&str>,
) -> Result<ImageRecord> {
    Ok(store.incoming()?.finish_local(config, layers, name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_paths() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(clean_abs("/app/../srv/./x/"), "/srv/x");
    }

    #[test]
    fn a_null_or_missing_image_config_is_an_empty_one() {
        for bytes in [
            &br#"{"config":null}"#[..],
            br#"{"os":"linux"}"#,
            br#"{"config":7}"#,
        ] {
            let config = base_config(bytes, "sha256:x").unwrap();
            let mut state = State {
                layers: Vec::new(),
                config,
                key: String::new(),
                args: BTreeMap::new(),
                base_id: None,
                cmd_set: false,
            };
            assert_eq!(state.env(), Vec::<String>::new());
            state.cfg().insert("User".into(), json!("app"));
            state.history("USER app", true);
            assert_eq!(state.config["config"]["User"], "app");
            assert_eq!(state.config["history"][0]["created_by"], "USER app");
        }
        assert!(base_config(b"[]", "sha256:x").is_err());
        assert!(base_config(b"null", "sha256:x").is_err());
    }

    #[test]
    fn env_and_label_pairs() {
        let l = |n: &str| (n == "A").then(|| "a".to_string());
        assert_eq!(
            pairs("K=\"v 1\" L=$A", '\\', &l).unwrap(),
            [
                ("K".to_string(), "v 1".to_string()),
                ("L".into(), "a".into())
            ]
        );
        assert_eq!(
            pairs("K the rest $A", '\\', &l).unwrap(),
            [("K".to_string(), "the rest a".to_string())]
        );
        assert!(pairs("K=1 junk", '\\', &l).is_err());
    }
}

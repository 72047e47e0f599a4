//! The build as data, before anything runs: the Dockerfile's stages, the global build arguments,
//! the stage `--target` names and the stages it needs, each with its instructions.
//!
//! [`Plan::new`] reads only the parsed Dockerfile and the flags: no store, no image, no file.
//! What an instruction does and what its cache key is made of is also data
//! ([`super::instruction::Step`]), but it is worked out just before the step runs, because it
//! depends on the image config the steps before it leave (a base image's `ENV` expands later
//! words, its `SHELL` wraps RUN, its `ONBUILD` triggers add steps). The executor
//! ([`super::exec`]) applies the plan stage by stage.
//!
//! Only the stages the target needs are built (BuildKit's rule): the target itself and,
//! transitively, the earlier stages its `FROM`, `COPY --from` and `RUN --mount from=` name.
//! Errors here are the Dockerfile's shape (no FROM, a malformed FROM, an unknown target); an
//! instruction's own mistakes are found when its step is reached, as docker reports them.

use std::collections::BTreeMap;

use super::BuildError;
use super::Result;
use super::expand;
use super::syntax::{Dockerfile, Node};

/// Build arguments with their values (None: declared, unset).
pub type ArgValues = BTreeMap<String, Option<String>>;

/// The build as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The Dockerfile's name in messages (`Dockerfile`, `Dockerfile (stdin)`).
    pub file: String,
    /// The escape character (`# escape=` directive).
    pub escape: char,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// ARGs before the first FROM, with their values: usable in FROM lines, and in a stage
    /// that declares them again.
    pub global_args: ArgValues,
    pub stages: Vec<Stage>,
    /// The stage the image is made of: `--target`, else the last.
    pub target: usize,
    /// The stages built, in Dockerfile order: the target and those it needs.
    pub needed: Vec<usize>,
}

/// One stage of the Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// `AS name`, lower case.
    pub name: Option<String>,
    pub from: Node,
    /// Its instructions after FROM.
    pub nodes: Vec<Node>,
}

impl Stage {
    /// The FROM line's image (or stage) word, before expansion.
    pub fn base(&self) -> String {
        self.from
            .text()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }
}

impl Plan {
    /// Split `df` into stages and choose what to build for `target`.
    pub fn new(
        file: &str,
        df: Dockerfile,
        build_args: BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Plan> {
        let (global_args, stages) = split(file, df.nodes, df.escape, &build_args)?;
        if stages.is_empty() {
            return Err(BuildError::Syntax {
                file: file.to_string(),
                line: 1,
                message: "the Dockerfile has no FROM".into(),
            });
        }
        let target = match target {
            Some(t) => stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .ok_or_else(|| BuildError::Step {
                    file: file.to_string(),
                    line: 1,
                    instruction: "--target".into(),
                    message: format!("no stage is named {t:?}"),
                    hint: "name stages with FROM image AS name".into(),
                })?,
            None => stages.len() - 1,
        };
        let mut plan = Plan {
            file: file.to_string(),
            escape: df.escape,
            build_args,
            global_args,
            stages,
            target,
            needed: Vec::new(),
        };
        plan.needed = plan.needed_by(target);
        Ok(plan)
    }

    /// The steps announced (`STEP n/m`): each needed stage's FROM and instructions. A base
    /// image's ONBUILD triggers add theirs when the base is known.
    pub fn steps(&self) -> usize {
        self.needed
            .iter()
            .map(|&i| 1 + self.stages[i].nodes.len())
            .sum()
    }

    /// The stage a `--from` or `from=` names: its name (case-insensitive), else its number.
    pub fn find(&self, reference: &str) -> Option<usize> {
        let r = reference.to_ascii_lowercase();
        self.named(&r)
            .or_else(|| r.parse::<usize>().ok().filter(|&i| i < self.stages.len()))
    }

    /// The first stage named `name` (FROM takes names only: `FROM 0` is an image).
    pub fn named(&self, name: &str) -> Option<usize> {
        let n = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(n.as_str()))
    }

    /// The stages `target` needs: itself and, transitively, the earlier stages its FROM, COPY
    /// --from and RUN --mount from= name; sorted.
    fn needed_by(&self, target: usize) -> Vec<usize> {
        let mut need = vec![target];
        let mut i = 0;
        while i < need.len() {
            for r in references(&self.stages[need[i]]) {
                if let Some(j) = self.find(&r)
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
}

/// What a stage names that may be another stage: its base, `--from=` flags, `from=` in mounts.
fn references(stage: &Stage) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    if let Some(base) = stage.from.text().split_whitespace().next() {
        refs.push(base.to_string());
    }
    for n in &stage.nodes {
        if let Some(f) = n.flag("from") {
            refs.push(f.to_string());
        }
        refs.extend(mount_froms(n));
    }
    refs
}

/// The stages or images a node's `--mount` flags bind `from=`.
pub fn mount_froms(n: &Node) -> Vec<String> {
    n.flags_named("mount")
        .flat_map(|m| m.split(','))
        .filter_map(|kv| kv.strip_prefix("from="))
        .map(String::from)
        .collect()
}

/// The global ARGs and the stages; ARGs before the first FROM are global.
fn split(
    file: &str,
    nodes: Vec<Node>,
    escape: char,
    build_args: &BTreeMap<String, String>,
) -> Result<(ArgValues, Vec<Stage>)> {
    let mut global_args = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in nodes {
        if node.name == "FROM" {
            let words: Vec<String> = node.text().split_whitespace().map(String::from).collect();
            let name = match words.as_slice() {
                [_, kw, name] if kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                [_] => None,
                _ => {
                    return Err(BuildError::step(
                        file,
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
            let lookup = |n: &str| {
                build_args
                    .get(n)
                    .cloned()
                    .or_else(|| global_args.get(n).cloned().flatten())
            };
            let decls = arg_decls(&node, escape, &lookup)
                .map_err(|m| BuildError::step(file, &node, &m, "check the ARG's quoting"))?;
            for (k, v) in decls {
                let v = build_args.get(&k).cloned().or(v);
                global_args.insert(k, v);
            }
        } else {
            return Err(BuildError::step(
                file,
                &node,
                "no FROM before this instruction",
                "start the Dockerfile with FROM image (ARG may come before it)",
            ));
        }
    }
    Ok((global_args, stages))
}

/// `ARG a b=1 c="x y"`: declarations with their expanded defaults.
pub fn arg_decls(
    node: &Node,
    escape: char,
    lookup: expand::Lookup<'_>,
) -> std::result::Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    for w in expand::split_raw(&node.text()) {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(expand::word(v, escape, lookup)?))),
            None => out.push((w.to_string(), None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::syntax::parse;

    fn plan(text: &str, target: Option<&str>) -> Result<Plan> {
        let args = BTreeMap::from([("V".to_string(), "9".to_string())]);
        Plan::new("Dockerfile", parse("Dockerfile", text)?, args, target)
    }

    const MULTI: &str = "\
ARG BASE=alpine
ARG V=1
FROM $BASE AS deps
RUN make deps
FROM busybox AS tools
RUN make tools
FROM deps AS app
COPY --from=tools /bin/tool /bin/
RUN --mount=type=bind,from=0,target=/d true
FROM app AS test
RUN make test
FROM busybox
COPY --from=app /app /app
";

    #[test]
    fn a_target_builds_itself_and_the_stages_it_names() {
        let p = plan(MULTI, None).unwrap();
        assert_eq!(p.stages.len(), 5);
        assert_eq!(p.target, 4);
        // `test` is not needed by the last stage.
        assert_eq!(p.needed, [0, 1, 2, 4]);
        assert_eq!(p.steps(), 2 + 2 + 3 + 2);

        let p = plan(MULTI, Some("TOOLS")).unwrap();
        assert_eq!((p.target, p.needed.clone()), (1, vec![1]));
        assert_eq!(p.steps(), 2);

        let p = plan(MULTI, Some("test")).unwrap();
        assert_eq!(p.needed, [0, 1, 2, 3]);
        assert_eq!(p.stages[3].nodes[0].original, "RUN make test");
    }

    #[test]
    fn global_args_take_build_args_and_feed_from_lines() {
        let p = plan(MULTI, None).unwrap();
        assert_eq!(p.global_args["BASE"].as_deref(), Some("alpine"));
        assert_eq!(p.global_args["V"].as_deref(), Some("9"));
        assert_eq!(p.stages[0].base(), "$BASE");
        assert_eq!(p.stages[0].name.as_deref(), Some("deps"));
        assert_eq!(p.named("DEPS"), Some(0));
        assert_eq!(
            (p.find("1"), p.find("9"), p.named("1")),
            (Some(1), None, None)
        );
    }

    #[test]
    fn the_dockerfiles_shape_is_checked_before_anything_runs() {
        let msg = |r: Result<Plan>| r.unwrap_err().to_string();
        assert!(msg(plan("RUN x\n", None)).contains("no FROM before this instruction"));
        assert!(msg(plan("ARG A\n", None)).contains("the Dockerfile has no FROM"));
        assert!(msg(plan("FROM a b\n", None)).contains("expected FROM IMAGE [AS NAME]"));
        assert!(msg(plan(MULTI, Some("nope"))).contains("no stage is named \"nope\""));
    }
}

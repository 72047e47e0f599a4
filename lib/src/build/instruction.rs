//! One instruction as data: what it does, its arguments expanded against the state before it,
//! and the inputs of its cache key ([`prepare`]). Nothing here touches a file or the store, so
//! unit tests read a step the way they read a plan.
//!
//! A step's key ([`Step::cache_key`]) is its parent's key followed by [`Step::key`]: the
//! instruction's name, flags, text and heredoc bodies, the build arguments in scope, the shell,
//! and for the instructions whose words den expands (WORKDIR, ENV, LABEL, USER, EXPOSE,
//! VOLUME, STOPSIGNAL) those words after expansion; RUN's text is the shell's to expand, which
//! is why the build arguments go in instead. COPY and ADD add the digest of what they copy
//! ([`super::copy`]), which is the one input that needs the build context, so the executor
//! computes it and appends it before the lookup.

use super::BuildError;
use super::Result;
use super::cache::Key;
use super::config::{self, Change};
use super::expand;
use super::plan::{self, Plan};
use super::state::State;
use super::syntax::{Args, Node};

/// An instruction ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub op: Op,
    /// What decides the step's result besides its parent's key, in order.
    pub key: Vec<String>,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// ARG: the declared names with their values (`--build-arg`, else the default, else the
    /// global ARG's). Not a cached step: the values go into the keys of the steps after it.
    Arg(Vec<(String, Option<String>)>),
    /// RUN: the command line of the step's container.
    Run { argv: Vec<String> },
    /// COPY or ADD: sources and destination expanded. Flags are read when the step runs, after
    /// the sources' digest (so a missing source is reported first, as before).
    Copy {
        add: bool,
        srcs: Vec<String>,
        dest: String,
    },
    /// Only the image config changes.
    Config(Change),
}

impl Step {
    /// The step's key, continuing from `parent` (the previous step's key).
    pub fn cache_key(&self, parent: &str) -> String {
        let mut key = Key::new(parent);
        for part in &self.key {
            key.add(part);
        }
        key.finish()
    }

    /// Whether the step makes a layer (else its history entry is an empty layer).
    pub fn makes_layer(&self) -> bool {
        matches!(self.op, Op::Run { .. } | Op::Copy { .. })
    }
}

/// An instruction's view while it is read: its node, the state before it, the Dockerfile's
/// name and escape character.
pub struct Scope<'a> {
    pub file: &'a str,
    pub escape: char,
    pub node: &'a Node,
    pub state: &'a State,
}

impl Scope<'_> {
    /// An error at this instruction's line.
    pub fn err(&self, message: &str, hint: &str) -> BuildError {
        BuildError::step(self.file, self.node, message, hint)
    }

    /// One word, expanded (ENV and build arguments in scope).
    pub fn word(&self, s: &str) -> Result<String> {
        expand::word(s, self.escape, &|n| self.state.lookup(n))
            .map_err(|m| self.err(&m, "check the variable's name and quoting"))
    }

    /// Words, expanded and split on unquoted whitespace.
    pub fn words(&self, s: &str) -> Result<Vec<String>> {
        expand::words(s, self.escape, &|n| self.state.lookup(n))
            .map_err(|m| self.err(&m, "check the quoting"))
    }
}

/// Read `node` against `state`, the build so far.
pub fn prepare(plan: &Plan, state: &State, node: &Node) -> Result<Step> {
    let s = Scope {
        file: &plan.file,
        escape: plan.escape,
        node,
        state,
    };
    if node.name == "ARG" {
        return Ok(Step {
            op: Op::Arg(args(plan, &s)?),
            key: Vec::new(),
        });
    }
    let key = key_inputs(&s)?;
    let op = match node.name.as_str() {
        "RUN" => Op::Run {
            argv: run_argv(state, node),
        },
        "COPY" | "ADD" => {
            let (srcs, dest) = copy_args(&s)?;
            Op::Copy {
                add: node.name == "ADD",
                srcs,
                dest,
            }
        }
        _ => Op::Config(config::parse(&s)?),
    };
    Ok(Step { op, key })
}

/// The key's inputs known from the node and the state (see the module doc).
fn key_inputs(s: &Scope<'_>) -> Result<Vec<String>> {
    let node = s.node;
    let mut key = vec![node.name.clone()];
    key.extend(node.flags.iter().map(|(k, v)| format!("--{k}={v}")));
    key.push(node.text());
    key.extend(node.heredocs.iter().map(|h| h.body.clone()));
    key.extend(s.state.arg_pairs());
    key.push(s.state.shell().join(" "));
    if matches!(
        node.name.as_str(),
        "WORKDIR" | "ENV" | "LABEL" | "USER" | "EXPOSE" | "VOLUME" | "STOPSIGNAL"
    ) {
        key.push(s.words(&node.text())?.join("\0"));
    }
    Ok(key)
}

/// ARG's declarations with their values.
fn args(plan: &Plan, s: &Scope<'_>) -> Result<Vec<(String, Option<String>)>> {
    let decls = plan::arg_decls(s.node, s.escape, &|n| s.state.lookup(n))
        .map_err(|m| s.err(&m, "check the ARG's quoting"))?;
    Ok(decls
        .into_iter()
        .map(|(k, default)| {
            let v = plan
                .build_args
                .get(&k)
                .cloned()
                .or(default)
                .or_else(|| plan.global_args.get(&k).cloned().flatten());
            (k, v)
        })
        .collect())
}

/// RUN's command line: the exec form as it is, else the shell with the text (heredocs: the
/// body as the script).
pub fn run_argv(state: &State, node: &Node) -> Vec<String> {
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

/// The sources of a COPY/ADD and its destination, expanded.
pub fn copy_args(s: &Scope<'_>) -> Result<(Vec<String>, String)> {
    let mut parts: Vec<String> = match &s.node.args {
        Args::Json(v) => v.iter().map(|w| s.word(w)).collect::<Result<_>>()?,
        Args::Raw(r) => expand::split_raw(r)
            .iter()
            .map(|w| s.word(w))
            .collect::<Result<_>>()?,
    };
    if parts.len() < 2 {
        return Err(s.err(
            "needs a source and a destination",
            &format!("write {} SRC... DEST", s.node.name),
        ));
    }
    let dest = parts.pop().expect("two or more");
    Ok((parts, dest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::syntax::parse;

    /// The plan of `text` and the step its last instruction is, on a scratch state with `ENV`
    /// and the stage's ARGs applied as the executor would.
    fn step(text: &str, build_args: &[(&str, &str)]) -> Step {
        let args = build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let plan = Plan::new("Dockerfile", parse("Dockerfile", text).unwrap(), args, None).unwrap();
        let stage = &plan.stages[plan.target];
        let mut state = State::scratch();
        let (last, before) = stage.nodes.split_last().unwrap();
        for node in before {
            match prepare(&plan, &state, node).unwrap().op {
                Op::Arg(values) => state.args.extend(values),
                Op::Config(c) => config::apply(&mut state, &c),
                _ => {}
            }
        }
        prepare(&plan, &state, last).unwrap()
    }

    #[test]
    fn run_keys_take_build_arguments_not_the_expanded_text() {
        let s = step("FROM scratch\nARG V=1\nENV E=x\nRUN echo $V $E\n", &[]);
        assert_eq!(
            s.op,
            Op::Run {
                argv: vec!["/bin/sh".into(), "-c".into(), "echo $V $E".into()]
            }
        );
        assert_eq!(s.key, ["RUN", "echo $V $E", "V=1", "/bin/sh -c"]);
        // A --build-arg changes the key; the ENV value is in the parent's key already.
        let other = step(
            "FROM scratch\nARG V=1\nENV E=x\nRUN echo $V $E\n",
            &[("V", "2")],
        );
        assert_eq!(other.key[2], "V=2");
        assert_ne!(s.cache_key("p"), other.cache_key("p"));
        assert_ne!(s.cache_key("p"), s.cache_key("q"));
        assert!(s.makes_layer());
    }

    #[test]
    fn expanded_words_go_into_config_keys() {
        let s = step("FROM scratch\nARG P=80\nEXPOSE $P/udp\n", &[]);
        assert_eq!(s.op, Op::Config(Change::Expose(vec!["80/udp".into()])));
        assert_eq!(s.key, ["EXPOSE", "$P/udp", "P=80", "/bin/sh -c", "80/udp"]);
        assert!(!s.makes_layer());
        let s = step("FROM scratch\nSHELL [\"/bin/bash\", \"-c\"]\nCMD go\n", &[]);
        assert_eq!(s.key.last().unwrap(), "/bin/bash -c");
        assert_eq!(s.key.len(), 3, "CMD's words are not expanded: {:?}", s.key);
    }

    #[test]
    fn copy_is_expanded_and_its_flags_are_keyed_as_written() {
        let s = step(
            "FROM scratch\nARG D=/app\nCOPY --chown=$U src/ ${D}/\n",
            &[("U", "1")],
        );
        assert_eq!(
            s.op,
            Op::Copy {
                add: false,
                srcs: vec!["src/".into()],
                dest: "/app/".into()
            }
        );
        // The sources' digest is appended by the executor, from the context.
        assert_eq!(
            s.key,
            ["COPY", "--chown=$U", "src/ ${D}/", "D=/app", "/bin/sh -c"]
        );
    }

    #[test]
    fn args_take_build_args_then_defaults_then_globals() {
        let s = step(
            "ARG G=g\nARG H=h\nFROM scratch\nARG A=1 B G H\n",
            &[("B", "b")],
        );
        assert_eq!(
            s.op,
            Op::Arg(vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("b".into())),
                ("G".into(), Some("g".into())),
                ("H".into(), Some("h".into())),
            ])
        );
        assert!(s.key.is_empty());
    }

    #[test]
    fn heredocs_are_the_script_and_part_of_the_key() {
        let s = step("FROM scratch\nRUN <<EOF\necho hi\nEOF\n", &[]);
        let Op::Run { argv } = &s.op else {
            panic!("{s:?}")
        };
        assert_eq!(argv[2], "echo hi\n");
        assert!(s.key.contains(&"echo hi\n".to_string()), "{:?}", s.key);
    }
}

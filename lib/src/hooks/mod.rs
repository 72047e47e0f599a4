//! OCI hooks from `hooks.d` directories, in the 1.0.0 format podman and CRI-O read
//! (oci-hooks(5)): which files den reads ([`load`]), which of their hooks a container gets
//! ([`Definitions::matching`]), and how one hook is run ([`run`]).
//!
//! A definition is one JSON file ending in `.json`:
//!
//! ```json
//! {"version": "1.0.0",
//!  "hook": {"path": "/abs/prog", "args": ["prog", "arg"], "env": ["K=V"], "timeout": 5},
//!  "when": {"always": true, "annotations": {"KEY-REGEX": "VALUE-REGEX"},
//!           "commands": ["REGEX"], "hasBindMounts": true},
//!  "stages": ["prestart", "createRuntime", "createContainer", "startContainer",
//!             "poststart", "poststop"]}
//! ```
//!
//! The directories are read in order; a file in a later directory masks the same-named file of
//! an earlier one (podman's rule for repeated `--hooks-dir`), and hooks are injected in the
//! lexical order of their file names. `when`'s conditions follow oci-hooks(5) exactly: at least
//! one is given, and every one given must hold: `always` true; for each `annotations` pair, some
//! annotation of the container whose key matches the key regex has a value matching the value
//! regex; `commands`: the container process's `args[0]` matches one of the regexes;
//! `hasBindMounts` true and the container has a bind mount of a host path. Regexes are
//! unanchored, as Go's `regexp.MatchString` is (write `^…$` to anchor).
//!
//! The files are the user's or the site's, never an image's, but still read as untrusted
//! text: at most [`MAX_FILES`] per directory and [`MAX_FILE_BYTES`] each; a file that does not
//! parse or check is one error naming the file and line. Resolved hooks are stored in the
//! container's record ([`Hooks`], the OCI spec's `hooks` object), so a restarted container
//! runs the same hooks.
//!
//! Hand-written rather than a crate: the format is five fields, and no maintained Rust crate
//! reads it (oci-spec has the spec's `Hook`, which [`Hook`] mirrors, but not `hooks.d`).

mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Diagnose;
pub use runner::{HookFailure, run};

/// The most `.json` files den reads from one hooks directory.
pub const MAX_FILES: usize = 256;
/// The largest hook file den reads.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// One hook as the OCI spec has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds; none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// A container's hooks by stage: the OCI spec's `hooks` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        Stage::ALL.iter().all(|s| self.stage(*s).is_empty())
    }
    pub fn stage(&self, s: Stage) -> &Vec<Hook> {
        match s {
            Stage::Prestart => &self.prestart,
            Stage::CreateRuntime => &self.create_runtime,
            Stage::CreateContainer => &self.create_container,
            Stage::StartContainer => &self.start_container,
            Stage::Poststart => &self.poststart,
            Stage::Poststop => &self.poststop,
        }
    }
    pub fn stage_mut(&mut self, s: Stage) -> &mut Vec<Hook> {
        match s {
            Stage::Prestart => &mut self.prestart,
            Stage::CreateRuntime => &mut self.create_runtime,
            Stage::CreateContainer => &mut self.create_container,
            Stage::StartContainer => &mut self.start_container,
            Stage::Poststart => &mut self.poststart,
            Stage::Poststop => &mut self.poststop,
        }
    }
}

/// The OCI hook stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ];
    /// The stage's name in the spec and in hook files.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// A hooks.d file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookFile {
    version: String,
    hook: Hook,
    when: WhenFile,
    stages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WhenFile {
    always: Option<bool>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    commands: Vec<String>,
    has_bind_mounts: Option<bool>,
}

/// `when`, its regexes compiled.
#[derive(Debug, Clone)]
struct When {
    always: Option<bool>,
    annotations: Vec<(regex::Regex, regex::Regex)>,
    commands: Vec<regex::Regex>,
    has_bind_mounts: Option<bool>,
}

/// One checked definition.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The file's name: what masks and orders definitions.
    pub name: String,
    pub file: PathBuf,
    pub hook: Hook,
    when: When,
    pub stages: Vec<Stage>,
}

/// What `when` is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub annotations: &'a BTreeMap<String, String>,
    /// The container process's `args[0]`.
    pub command: &'a str,
    /// The container has a bind mount of a host path.
    pub has_bind_mounts: bool,
}

/// The definitions of some directories, masked and ordered by file name.
#[derive(Debug, Clone, Default)]
pub struct Definitions(pub Vec<Definition>);

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot read hooks directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hooks directory {path} has more than {MAX_FILES} hook files")]
    TooManyFiles { path: PathBuf },
    #[error("hook file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("invalid hook file {path}, line {line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl Diagnose for HookError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            HookError::ReadDir { .. } => "check --hooks-dir and the config's [hooks] dirs".into(),
            HookError::TooManyFiles { .. } | HookError::TooLarge { .. } => {
                "keep hook definitions small, a few per directory".into()
            }
            HookError::Invalid { .. } => {
                "write it in oci-hooks(5)'s 1.0.0 format (see den's hooks/README.md), or remove it"
                    .into()
            }
        })
    }
}

/// Read the definitions of `dirs`, in order: a later directory's file masks an earlier one's of
/// the same name. A directory that does not exist has none.
pub fn load(dirs: &[PathBuf]) -> Result<Definitions, HookError> {
    let mut by_name: BTreeMap<String, Definition> = BTreeMap::new();
    for dir in dirs {
        for file in json_files(dir)? {
            let d = read_definition(&file)?;
            by_name.insert(d.name.clone(), d);
        }
    }
    Ok(Definitions(by_name.into_values().collect()))
}

/// The `.json` files of `dir`, at most [`MAX_FILES`].
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, HookError> {
    let read_err = |source| HookError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            if files.len() == MAX_FILES {
                return Err(HookError::TooManyFiles {
                    path: dir.to_path_buf(),
                });
            }
            files.push(path);
        }
    }
    Ok(files)
}

/// One file, parsed and checked.
fn read_definition(path: &Path) -> Result<Definition, HookError> {
    let invalid = |line: usize, reason: String| HookError::Invalid {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| invalid(0, e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(HookError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| invalid(0, e.to_string()))?;
    let f: HookFile = serde_json::from_str(&text).map_err(|e| invalid(e.line(), e.to_string()))?;
    // Where a field is written, for the messages of the checks after parsing.
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.contains(&format!("\"{key}\"")))
            .map_or(1, |n| n + 1)
    };
    check(&f).map_err(|(key, reason)| invalid(line_of(key), reason))?;
    let stages = f
        .stages
        .iter()
        .map(|s| Stage::parse(s).ok_or_else(|| invalid(line_of("stages"), format!("unknown stage {s:?} (prestart, createRuntime, createContainer, startContainer, poststart or poststop)"))))
        .collect::<Result<Vec<_>, _>>()?;
    let when = compile(&f.when).map_err(|(key, reason)| invalid(line_of(key), reason))?;
    Ok(Definition {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: path.to_path_buf(),
        hook: f.hook,
        when,
        stages,
    })
}

/// The checks oci-hooks(5) asks for beyond the shape: the version, an absolute path to an
/// existing file, at least one stage and one condition. The failing field and why.
fn check(f: &HookFile) -> Result<(), (&'static str, String)> {
    if f.version != "1.0.0" {
        return Err((
            "version",
            format!("version {:?}: den reads 1.0.0", f.version),
        ));
    }
    if !f.hook.path.is_absolute() {
        return Err((
            "path",
            format!("hook path {} is not absolute", f.hook.path.display()),
        ));
    }
    if !f.hook.path.exists() {
        return Err((
            "path",
            format!("hook path {} does not exist", f.hook.path.display()),
        ));
    }
    if f.stages.is_empty() {
        return Err(("stages", "no stages".into()));
    }
    let w = &f.when;
    if w.always.is_none()
        && w.annotations.is_empty()
        && w.commands.is_empty()
        && w.has_bind_mounts.is_none()
    {
        return Err((
            "when",
            "when has no condition (always, annotations, commands or hasBindMounts)".into(),
        ));
    }
    Ok(())
}

fn compile(w: &WhenFile) -> Result<When, (&'static str, String)> {
    let re = |key: &'static str, s: &str| {
        regex::Regex::new(s).map_err(|e| (key, format!("regex {s:?}: {e}")))
    };
    Ok(When {
        always: w.always,
        annotations: w
            .annotations
            .iter()
            .map(|(k, v)| Ok((re("annotations", k)?, re("annotations", v)?)))
            .collect::<Result<_, _>>()?,
        commands: w
            .commands
            .iter()
            .map(|c| re("commands", c))
            .collect::<Result<_, _>>()?,
        has_bind_mounts: w.has_bind_mounts,
    })
}

impl When {
    /// Every condition given holds (oci-hooks(5)'s 1.0.0 rule).
    fn matches(&self, t: &Target<'_>) -> bool {
        if self.always == Some(false) || self.has_bind_mounts == Some(false) {
            return false;
        }
        if self.has_bind_mounts == Some(true) && !t.has_bind_mounts {
            return false;
        }
        let annotations = self.annotations.iter().all(|(k, v)| {
            t.annotations
                .iter()
                .any(|(ak, av)| k.is_match(ak) && v.is_match(av))
        });
        let commands =
            self.commands.is_empty() || self.commands.iter().any(|c| c.is_match(t.command));
        annotations && commands
    }
}

impl Definitions {
    /// The hooks `t` gets, by stage, in file-name order.
    pub fn matching(&self, t: &Target<'_>) -> Hooks {
        let mut hooks = Hooks::default();
        for d in self.0.iter().filter(|d| d.when.matches(t)) {
            for s in &d.stages {
                hooks.stage_mut(*s).push(d.hook.clone());
            }
        }
        hooks
    }
}

#[cfg(test)]
mod tests;

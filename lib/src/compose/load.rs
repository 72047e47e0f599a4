//! Reading a project: which files, which variables, one merged and interpolated YAML tree, the
//! project's name. The process environment and the working directory come in as arguments, so
//! unit tests give their own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::interpolate::{self, Vars};
use super::model::Project;
use super::{ComposeError, MAX_FILE, ProjectOptions};

/// The files docker compose looks for, in its order, and their overrides.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// The project's files read, merged, checked and typed. `env` is the process environment.
pub fn load(
    opts: &ProjectOptions,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<Project, ComposeError> {
    let (tree, ctx) = merged_tree(opts, env, cwd)?;
    super::keys::check(&tree)?;
    Project::from_tree(tree, ctx)
}

/// What typing the tree needs beside it.
pub struct Context {
    pub name: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub vars: BTreeMap<String, String>,
    pub profiles: Vec<String>,
    pub warnings: Vec<String>,
}

/// The files' merged tree, interpolated, with its project name set; and the project's context.
pub fn merged_tree(
    opts: &ProjectOptions,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<(Value, Context), ComposeError> {
    let files = find_files(opts, env, cwd)?;
    let dir = match &opts.project_directory {
        Some(d) => cwd.join(d),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf()),
    };
    let vars = variables(opts, env, cwd, &dir)?;
    let interp = Vars::new(&vars);
    let mut tree = Value::Mapping(Mapping::new());
    for f in &files {
        let mut doc = parse_yaml(f)?;
        interpolate::tree(&mut doc, "", &interp)?;
        merge(&mut tree, doc, "");
    }
    let mut warnings: Vec<String> = interp
        .unset
        .borrow()
        .iter()
        .map(|n| format!("The \"{n}\" variable is not set. Defaulting to a blank string."))
        .collect();
    if let Some(map) = tree.as_mapping_mut()
        && map.remove("version").is_some()
    {
        warnings.push("the attribute `version` is obsolete, it will be ignored".into());
    }
    let name = project_name(opts, &vars, &tree, &dir)?;
    if let Some(map) = tree.as_mapping_mut() {
        map.insert("name".into(), Value::String(name.clone()));
    }
    let profiles = match (opts.profiles.is_empty(), vars.get("COMPOSE_PROFILES")) {
        (true, Some(p)) => p
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => opts.profiles.clone(),
    };
    let ctx = Context {
        name,
        dir,
        files,
        vars,
        profiles,
        warnings,
    };
    Ok((tree, ctx))
}

/// `-f` files (relative to `cwd`), else COMPOSE_FILE, else the first default file found in
/// `cwd` and its override.
fn find_files(
    opts: &ProjectOptions,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !opts.files.is_empty() {
        return Ok(opts.files.iter().map(|f| cwd.join(f)).collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        return Ok(list.split(':').map(|f| cwd.join(f)).collect());
    }
    let first = |names: &[&str]| names.iter().map(|n| cwd.join(n)).find(|p| p.is_file());
    let main = first(DEFAULT_FILES).ok_or_else(|| ComposeError::NoFile(cwd.to_path_buf()))?;
    Ok([Some(main), first(OVERRIDE_FILES)]
        .into_iter()
        .flatten()
        .collect())
}

/// The variables interpolation reads: the env files (`--env-file`, else the project's `.env`)
/// under the process environment, which wins as in docker compose.
fn variables(
    opts: &ProjectOptions,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    dir: &Path,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let files: Vec<PathBuf> = if opts.env_files.is_empty() {
        Some(dir.join(".env"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect()
    } else {
        opts.env_files.iter().map(|f| cwd.join(f)).collect()
    };
    let mut vars = BTreeMap::new();
    for f in files {
        for (k, v) in env_file(&f, env)? {
            vars.insert(k, v);
        }
    }
    vars.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
}

/// A file's contents, at most [`MAX_FILE`] bytes.
pub fn read_capped(path: &Path) -> Result<String, ComposeError> {
    let read = |source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_FILE {
        return Err(ComposeError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_FILE,
        });
    }
    Ok(text)
}

fn parse_yaml(path: &Path) -> Result<Value, ComposeError> {
    let text = read_capped(path)?;
    let yaml = |message: String| ComposeError::Yaml {
        path: path.to_path_buf(),
        message,
    };
    let mut doc: Value = serde_norway::from_str(&text).map_err(|e| yaml(e.to_string()))?;
    doc.apply_merge().map_err(|e| yaml(e.to_string()))?;
    match doc {
        Value::Mapping(_) => Ok(doc),
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        _ => Err(yaml(
            "the top level must be a mapping (services: ...)".into(),
        )),
    }
}

/// An env file (`.env`, `env_file:`): `KEY=VALUE` lines, `export ` allowed, `#` comments,
/// single quotes literal, double quotes with `\n` escapes, `${VAR}` expanded outside single
/// quotes (from the lines above, then `env`); a bare `KEY` takes `env`'s value if it has one.
pub fn env_file(
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, ComposeError> {
    let text = read_capped(path)?;
    let mut seen: BTreeMap<String, String> = env.clone();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), n + 1);
        let Some((key, raw)) = line.split_once('=') else {
            if let Some(v) = env.get(line) {
                out.push((line.to_string(), v.clone()));
            }
            continue;
        };
        let key = key.trim().to_string();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ComposeError::Invalid {
                path: at,
                problem: format!("{line:?} is not KEY=VALUE"),
            });
        }
        let value = env_value(raw.trim_start(), &at, &seen)?;
        seen.insert(key.clone(), value.clone());
        out.push((key, value));
    }
    Ok(out)
}

fn env_value(raw: &str, at: &str, vars: &BTreeMap<String, String>) -> Result<String, ComposeError> {
    if let Some(rest) = raw.strip_prefix('\'') {
        return Ok(rest.split_once('\'').map_or(rest, |(v, _)| v).to_string());
    }
    let expanded = |s: &str| interpolate::text(s, at, &Vars::new(vars));
    if let Some(rest) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                },
                c => out.push(c),
            }
        }
        return expanded(&out);
    }
    let value = raw.split_once(" #").map_or(raw, |(v, _)| v).trim_end();
    expanded(value)
}

/// `-p`, COMPOSE_PROJECT_NAME, the files' `name:`, else the project directory's name made
/// lower-case with what a name cannot hold dropped (docker compose's normalisation).
fn project_name(
    opts: &ProjectOptions,
    vars: &BTreeMap<String, String>,
    tree: &Value,
    dir: &Path,
) -> Result<String, ComposeError> {
    let given = opts
        .project_name
        .clone()
        .or_else(|| vars.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|s| !s.is_empty())
        .or_else(|| tree.get("name").and_then(Value::as_str).map(String::from));
    if let Some(name) = given {
        return if valid_name(&name) {
            Ok(name)
        } else {
            Err(ComposeError::ProjectName(name))
        };
    }
    let base = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalize_name(&base);
    if valid_name(&name) {
        Ok(name)
    } else {
        Err(ComposeError::ProjectName(base))
    }
}

/// docker compose's `NormalizeProjectName`.
pub fn normalize_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

fn valid_name(s: &str) -> bool {
    s.len() <= 200
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A mapping key as text (YAML allows numbers and booleans as keys).
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => "?".into(),
    }
}

/// Sequences later files add to rather than replace.
const APPENDED: &[&str] = &[
    "ports",
    "expose",
    "volumes",
    "dns",
    "cap_add",
    "cap_drop",
    "secrets",
    "configs",
    "extra_hosts",
    "env_file",
    "profiles",
];
/// Keys that may be a list or a mapping, merged as mappings.
const KEYED: &[&str] = &["environment", "labels", "args", "depends_on", "networks"];

/// Merge `over` (a later file) into `base`, as docker compose merges files: mappings key by
/// key, [`APPENDED`] sequences concatenated without repeats, [`KEYED`] lists as mappings,
/// anything else replaced.
pub fn merge(base: &mut Value, over: Value, key: &str) {
    if KEYED.contains(&key) {
        keyed(base);
        let mut over = over;
        keyed(&mut over);
        return merge_maps(base, over);
    }
    match (base, over) {
        (Value::Sequence(b), Value::Sequence(o)) if APPENDED.contains(&key) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b @ Value::Mapping(_), o @ Value::Mapping(_)) => merge_maps(b, o),
        (b, o) => *b = o,
    }
}

fn merge_maps(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let name = key_text(&k);
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v, &name),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A `KEY=VALUE` / `NAME` list as a mapping (`NAME: null`); a mapping stays.
fn keyed(v: &mut Value) {
    let Value::Sequence(items) = v else { return };
    let mut map = Mapping::new();
    for item in items.iter() {
        let text = match item {
            Value::String(s) => s.clone(),
            other => key_text(other),
        };
        match text.split_once('=') {
            Some((k, val)) => map.insert(k.into(), Value::String(val.into())),
            None => map.insert(text.into(), Value::Null),
        };
    }
    *v = Value::Mapping(map);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn later_files_merge_as_docker_compose_merges() {
        let mut base = yaml(
            "services:\n  web:\n    image: a\n    command: [x, y]\n    ports: ['80:80']\n    environment: [A=1, B=2]\n",
        );
        let over = yaml(
            "services:\n  web:\n    image: b\n    command: [z]\n    ports: ['80:80', '443:443']\n    environment:\n      B: '3'\n      C: '4'\n",
        );
        merge(&mut base, over, "");
        let web = &base["services"]["web"];
        assert_eq!(web["image"], yaml("b"));
        assert_eq!(web["command"], yaml("[z]"));
        assert_eq!(web["ports"], yaml("['80:80', '443:443']"));
        assert_eq!(web["environment"], yaml("{A: '1', B: '3', C: '4'}"));
    }

    #[test]
    fn names_are_normalised_as_docker_compose_does() {
        assert_eq!(normalize_name("My App.v2"), "myappv2");
        assert_eq!(normalize_name("__x-Y"), "x-y");
        assert!(valid_name("web_1-a"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("Web"));
    }

    #[test]
    fn env_files_quote_comment_and_expand() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".env");
        std::fs::write(
            &f,
            "# c\nexport A=1\nB=\"x\\ny\"\nC='lit $A'\nD=${A}2 # note\nE\n",
        )
        .unwrap();
        let env = BTreeMap::from([("E".to_string(), "from-env".to_string())]);
        let got = env_file(&f, &env).unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "x\ny"),
            ("C", "lit $A"),
            ("D", "12"),
            ("E", "from-env"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_environment_wins_over_dotenv_and_names_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("My_Proj");
        std::fs::create_dir(&proj).unwrap();
        std::fs::write(
            proj.join("compose.yaml"),
            "version: '3'\nservices:\n  web:\n    image: \"busybox:${TAG:-1}\"\n    labels: [\"x=${UNSET}\"]\n",
        )
        .unwrap();
        std::fs::write(proj.join(".env"), "TAG=2\n").unwrap();
        let opts = ProjectOptions::default();
        let (tree, ctx) = merged_tree(&opts, &BTreeMap::new(), &proj).unwrap();
        assert_eq!(ctx.name, "my_proj");
        assert_eq!(tree["services"]["web"]["image"], yaml("busybox:2"));
        assert_eq!(ctx.warnings.len(), 2, "{:?}", ctx.warnings);
        let env = BTreeMap::from([("TAG".to_string(), "3".to_string())]);
        let (tree, _) = merged_tree(&opts, &env, &proj).unwrap();
        assert_eq!(tree["services"]["web"]["image"], yaml("busybox:3"));
        let named = ProjectOptions {
            project_name: Some("Bad Name".into()),
            ..Default::default()
        };
        assert!(matches!(
            merged_tree(&named, &env, &proj),
            Err(ComposeError::ProjectName(_))
        ));
    }
}

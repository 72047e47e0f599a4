//! Where den keeps things, and the user's configuration file.
//!
//! Entry points: [`Paths::resolve`] (store root, config file, runtime directory) and
//! [`Config::load`] (`$XDG_CONFIG_HOME/den/config.toml`).
//!
//! Paths are resolved once, in the process the user started, and passed to den's own child
//! processes through the environment (`DEN_ROOT`, `DEN_RUNTIME_DIR`, `DEN_CONFIG`): inside the user
//! namespace den runs as uid 0, so `getuid()` there would name the wrong runtime directory.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Diagnose;

pub mod logging;
pub mod run;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find a home directory: HOME is not set")]
    NoHome,
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("runtime directory {path} cannot be used")]
    RuntimeDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime directory {path} is not private to uid {uid} (owner {owner}, mode {mode:o})")]
    RuntimeDirNotPrivate {
        path: PathBuf,
        uid: u32,
        owner: u32,
        mode: u32,
    },
    #[error("unknown storage driver {0:?} in config or DEN_STORAGE_DRIVER")]
    BadDriver(String),
    #[error("logger: no log driver named '{0}' is registered")]
    UnknownLogDriver(String),
    #[error(
        "log driver {0:?} is not supported by den (it has k8s-file, json-file, none, passthrough)"
    )]
    UnsupportedLogDriver(String),
    #[error("invalid network {0:?} in the config file's [run] section")]
    BadRunNetwork(String),
    #[error("[storage] root {root:?} in the config file names ${var}, which is not set")]
    RootVariableUnset { root: String, var: String },
    #[error("[storage] root {0:?} in the config file is not an absolute path")]
    RootNotAbsolute(String),
    #[error("invalid log option {0:?}: expected KEY=VALUE")]
    BadLogOpt(String),
    #[error("unknown log opt '{key}' for {driver} log driver")]
    UnknownLogOpt { key: String, driver: &'static str },
    #[error("invalid value {value:?} for log opt '{key}': expected {why}")]
    BadLogOptValue {
        key: String,
        value: String,
        why: &'static str,
    },
}

impl Diagnose for ConfigError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            ConfigError::NoHome => {
                "set HOME, or give the store's place with --root or DEN_ROOT".into()
            }
            ConfigError::Read { .. } => {
                "check that the file is readable, or remove it to use the defaults".into()
            }
            ConfigError::Parse { .. } => {
                "fix the TOML syntax; see README.md, section Configuration, for the keys den reads"
                    .into()
            }
            ConfigError::RuntimeDir { .. } => {
                "set XDG_RUNTIME_DIR or DEN_RUNTIME_DIR to a writable directory private to you"
                    .into()
            }
            ConfigError::RuntimeDirNotPrivate { path, .. } => format!(
                "another user owns or can write {}: remove it, or set DEN_RUNTIME_DIR to a private directory",
                path.display()
            ),
            ConfigError::BadDriver(_) => "use one of: auto, overlay, fuse-overlayfs, vfs".into(),
            ConfigError::UnknownLogDriver(_) | ConfigError::UnsupportedLogDriver(_) => format!(
                "name one of {} with --log-driver, or as [log] driver in config.toml",
                logging::LogDriver::ALL
            ),
            ConfigError::BadRunNetwork(_) => {
                "set [run] network to host, none, slirp4netns or pasta, or remove it".into()
            }
            ConfigError::RootVariableUnset { .. } => {
                "set the variable, write the path out, or give the store's place with --root or DEN_ROOT".into()
            }
            ConfigError::RootNotAbsolute(_) => {
                "write an absolute path, e.g. root = \"$TMPDIR/den\" or \"/local/$USER/den\"".into()
            }
            ConfigError::BadLogOpt(_) => "write it as --log-opt KEY=VALUE".into(),
            ConfigError::UnknownLogOpt { .. } => {
                "k8s-file and json-file take max-size and max-file (docker's labels, env and tag are accepted and ignored); every driver takes docker's mode and max-buffer-size".into()
            }
            ConfigError::BadLogOptValue { .. } => {
                "e.g. --log-opt max-size=10m --log-opt max-file=3".into()
            }
        })
    }
}

/// The places den reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The store: images, layers, containers. `--root`, `DEN_ROOT`, `$XDG_DATA_HOME/den`.
    pub root: PathBuf,
    /// The configuration file (may not exist).
    pub config: PathBuf,
    /// Per-user runtime state (sockets, libcontainer state): private, may vanish at reboot.
    pub runtime: PathBuf,
}

/// The environment den's paths depend on, so tests can inject it.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
    fn uid(&self) -> u32;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
    fn uid(&self) -> u32 {
        nix::unistd::getuid().as_raw()
    }
}

impl Paths {
    /// Resolve the paths from the flag, the environment and the XDG defaults. Does not create them.
    pub fn resolve(root_flag: Option<&Path>, env: &dyn Env) -> Result<Paths, ConfigError> {
        let home = || {
            env.var("HOME")
                .map(PathBuf::from)
                .ok_or(ConfigError::NoHome)
        };
        let root = match (root_flag, env.var("DEN_ROOT"), env.var("XDG_DATA_HOME")) {
            (Some(r), _, _) => absolute(r),
            (None, Some(r), _) => absolute(Path::new(&r)),
            (None, None, Some(x)) => PathBuf::from(x).join("den"),
            (None, None, None) => home()?.join(".local/share/den"),
        };
        let config = match (env.var("DEN_CONFIG"), env.var("XDG_CONFIG_HOME")) {
            (Some(c), _) => PathBuf::from(c),
            (None, Some(x)) => PathBuf::from(x).join("den/config.toml"),
            (None, None) => home()?.join(".config/den/config.toml"),
        };
        let runtime = match (env.var("DEN_RUNTIME_DIR"), env.var("XDG_RUNTIME_DIR")) {
            (Some(r), _) => PathBuf::from(r),
            (None, Some(x)) => PathBuf::from(x).join("den"),
            // runuser/su sessions and HPC nodes without systemd have no XDG_RUNTIME_DIR.
            (None, None) => PathBuf::from(format!("/tmp/den-{}", env.uid())),
        };
        Ok(Paths {
            root,
            config,
            runtime,
        })
    }

    /// `[storage] root` from the config file: the store's place where neither `--root` nor
    /// `DEN_ROOT` names one (the config file's own place never depends on the store's, so the
    /// file can say where the store is). `~` and `$VAR`/`${VAR}` are expanded from `env`: a
    /// site writes `root = "$TMPDIR/den"` to keep stores on node-local disk.
    pub fn use_configured_root(
        &mut self,
        root_flag: Option<&Path>,
        env: &dyn Env,
        configured: Option<&str>,
    ) -> Result<(), ConfigError> {
        let Some(text) = configured else {
            return Ok(());
        };
        if root_flag.is_some() || env.var("DEN_ROOT").is_some() {
            return Ok(());
        }
        let root = PathBuf::from(expand(text, env)?);
        if !root.is_absolute() {
            return Err(ConfigError::RootNotAbsolute(text.into()));
        }
        self.root = root;
        Ok(())
    }

    /// Export the resolved paths so den's child processes (in or out of the user namespace)
    /// see the same ones. Call it while den is single-threaded (before any thread starts).
    pub fn export(&self) -> Result<(), crate::sys::SysError> {
        crate::sys::set_env("DEN_ROOT", &self.root)?;
        crate::sys::set_env("DEN_CONFIG", &self.config)?;
        crate::sys::set_env("DEN_RUNTIME_DIR", &self.runtime)
    }

    /// Create the runtime directory (0700) if needed and check it is ours alone.
    pub fn ensure_runtime_dir(&self, uid: u32) -> Result<&Path, ConfigError> {
        let path = &self.runtime;
        let err = |source| ConfigError::RuntimeDir {
            path: path.clone(),
            source,
        };
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(path)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        let md = std::fs::symlink_metadata(path).map_err(err)?;
        if !md.is_dir() || md.uid() != uid || md.mode() & 0o077 != 0 {
            return Err(ConfigError::RuntimeDirNotPrivate {
                path: path.clone(),
                uid,
                owner: md.uid(),
                mode: md.permissions().mode() & 0o7777,
            });
        }
        Ok(path)
    }
}

/// `~` (at the start) and `$NAME` / `${NAME}` in a configured path, from `env`; an unset (or
/// empty) variable is an error, never an empty string (`$TMPDIR/den` must not become `/den`).
/// Hand-written: these two rules are all a path in the config needs, no crate's worth.
fn expand(text: &str, env: &dyn Env) -> Result<String, ConfigError> {
    let unset = |var: &str| ConfigError::RootVariableUnset {
        root: text.into(),
        var: var.into(),
    };
    let mut out = String::new();
    let mut rest = text;
    if let Some(r) = rest.strip_prefix('~')
        && (r.is_empty() || r.starts_with('/'))
    {
        out.push_str(&env.var("HOME").ok_or_else(|| unset("HOME"))?);
        rest = r;
    }
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, next) = match after.strip_prefix('{') {
            Some(b) => match b.find('}') {
                Some(end) => (&b[..end], &b[end + 1..]),
                None => (b, ""),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&env.var(name).ok_or_else(|| unset(name))?);
        }
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The storage driver used for container root filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverChoice {
    /// Kernel overlayfs, then fuse-overlayfs, then a copy: the first that works.
    Auto,
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl std::str::FromStr for DriverChoice {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "auto" | "" => DriverChoice::Auto,
            "overlay" | "overlayfs" | "kernel" => DriverChoice::Overlay,
            "fuse-overlayfs" | "fuse" => DriverChoice::FuseOverlayfs,
            "vfs" | "copy" => DriverChoice::Vfs,
            other => return Err(ConfigError::BadDriver(other.into())),
        })
    }
}

/// The contents of `config.toml`. Every key is optional.
///
/// ```toml
/// [registry]
/// mirrors = ["mirror.example.com"]      # tried in order for docker.io images, before docker.io
/// insecure = ["registry.lan:5000"]      # plain http / unverified TLS allowed
/// search = ["registry.lan:5000"]        # what `den search TERM` searches when TERM names none
///
/// [storage]
/// driver = "auto"                       # auto | overlay | fuse-overlayfs | vfs
/// additional = ["/sw/den"]              # read-only stores used in place (DEN_ADDITIONAL_STORES)
/// root = "$TMPDIR/den"                  # the store, unless --root or DEN_ROOT say
///
/// [cgroup]
/// parent = "/sys/fs/cgroup/site/USER"   # a delegated cgroup v2 group for --memory, --cpus, ...
///                                       # (DEN_CGROUP first; else den's own group's delegated top)
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub registry: RegistryConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[log]`: the default log driver and options (docker's daemon.json `log-driver`,
    /// `log-opts`).
    #[serde(default)]
    pub log: logging::LogTable,
    /// `[run]`: `run`'s and `create`'s defaults (host network, binds, keep-id, ipc, pid, env_host).
    #[serde(default)]
    pub run: run::RunTable,
    /// `[cgroup]`: where containers with resource limits get their groups.
    #[serde(default)]
    pub cgroup: CgroupTable,
    /// `[hooks]`: the site's hooks.d directories.
    #[serde(default)]
    pub hooks: HooksConfig,
}

/// `[cgroup]`: `parent`, a cgroup v2 directory delegated to the user (a site's, for every
/// user: `$USER` is replaced).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CgroupTable {
    #[serde(default)]
    pub parent: Option<PathBuf>,
}

/// `[hooks]`: `dirs`, the site's directories of OCI hook definitions (oci-hooks(5)), read
/// before the user's `hooks.d`; a later directory's file masks an earlier one's of the same
/// name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Hosts (optionally with a scheme) that serve docker.io's content.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Registries (host or host:port) reached over plain http or with unverified TLS.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Registries `den search TERM` searches, in order, when TERM names no registry (podman's
    /// `unqualified-search-registries`).
    #[serde(default)]
    pub search: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "auto")]
    pub driver: DriverChoice,
    /// Read-only stores (made with `den --root DIR`, shared by `system share`) whose images
    /// are used in place, looked up after the own store in this order; `DEN_ADDITIONAL_STORES`
    /// (colon-separated) replaces the list.
    #[serde(default)]
    pub additional: Vec<PathBuf>,
    /// The store's place where neither `--root` nor `DEN_ROOT` names one (`~` and `$VAR`
    /// expanded: `"$TMPDIR/den"` for node-local disk on a cluster).
    #[serde(default)]
    pub root: Option<String>,
}

fn auto() -> DriverChoice {
    DriverChoice::Auto
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            driver: DriverChoice::Auto,
            additional: Vec::new(),
            root: None,
        }
    }
}

impl Config {
    /// Read the config file; a missing file means the defaults. `DEN_STORAGE_DRIVER` overrides
    /// the storage driver.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut cfg = match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        if let Some(d) = ProcessEnv.var("DEN_STORAGE_DRIVER") {
            cfg.storage.driver = d.parse()?;
        }
        if let Some(list) = ProcessEnv.var("DEN_ADDITIONAL_STORES") {
            cfg.storage.additional = additional_stores(&list);
        }
        cfg.log.log_config()?;
        Ok(cfg)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }
}

/// `DEN_ADDITIONAL_STORES`: store roots separated by ':' (empty entries ignored, so an empty
/// value means none).
pub fn additional_stores(list: &str) -> Vec<PathBuf> {
    list.split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The first executable called `name` on PATH (the helpers den runs: slirp4netns, pasta,
/// newuidmap, fuse-overlayfs).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The path of another den tool: next to this executable first, then on PATH.
pub fn tool_path(name: &str) -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    find_in_path(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>, u32);
    impl Env for FakeEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|s| s.to_string())
        }
        fn uid(&self) -> u32 {
            self.1
        }
    }

    #[test]
    fn defaults_follow_xdg_with_home() {
        let env = FakeEnv(HashMap::from([("HOME", "/home/a")]), 1000);
        let p = Paths::resolve(None, &env).unwrap();
        assert_eq!(p.root, PathBuf::from("/home/a/.local/share/den"));
        assert_eq!(p.config, PathBuf::from("/home/a/.config/den/config.toml"));
        assert_eq!(p.runtime, PathBuf::from("/tmp/den-1000"));
    }

    #[test]
    fn flag_beats_env_beats_xdg() {
        let env = FakeEnv(
            HashMap::from([
                ("HOME", "/h"),
                ("DEN_ROOT", "/env-root"),
                ("XDG_DATA_HOME", "/xdg"),
                ("XDG_RUNTIME_DIR", "/run/user/7"),
                ("XDG_CONFIG_HOME", "/cfg"),
            ]),
            7,
        );
        assert_eq!(
            Paths::resolve(Some(Path::new("/flag")), &env).unwrap().root,
            PathBuf::from("/flag")
        );
        let p = Paths::resolve(None, &env).unwrap();
        assert_eq!(p.root, PathBuf::from("/env-root"));
        assert_eq!(p.runtime, PathBuf::from("/run/user/7/den"));
        assert_eq!(p.config, PathBuf::from("/cfg/den/config.toml"));
    }

    #[test]
    fn the_configured_root_comes_after_the_flag_and_den_root_and_is_expanded() {
        let env = FakeEnv(
            HashMap::from([("HOME", "/h"), ("TMPDIR", "/local/tmp"), ("USER", "ann")]),
            7,
        );
        let at = |flag: Option<&str>, env: &FakeEnv, root: &str| {
            let mut p = Paths::resolve(flag.map(Path::new), env).unwrap();
            p.use_configured_root(flag.map(Path::new), env, Some(root))
                .map(|()| p.root)
        };
        assert_eq!(
            at(None, &env, "$TMPDIR/den").unwrap(),
            PathBuf::from("/local/tmp/den")
        );
        assert_eq!(
            at(None, &env, "/scratch/${USER}x/den").unwrap(),
            PathBuf::from("/scratch/annx/den")
        );
        assert_eq!(at(None, &env, "~/d").unwrap(), PathBuf::from("/h/d"));
        assert_eq!(
            at(Some("/flag"), &env, "$TMPDIR/den").unwrap(),
            PathBuf::from("/flag")
        );
        let with_root = FakeEnv(HashMap::from([("HOME", "/h"), ("DEN_ROOT", "/env")]), 7);
        assert_eq!(at(None, &with_root, "/cfg").unwrap(), PathBuf::from("/env"));
        // Never an empty expansion: `$SCRATCH/den` must not become `/den`.
        let e = at(None, &env, "$SCRATCH/den").unwrap_err();
        assert!(matches!(&e, ConfigError::RootVariableUnset { var, .. } if var == "SCRATCH"));
        assert!(e.hint().is_some());
        assert!(matches!(
            at(None, &env, "den"),
            Err(ConfigError::RootNotAbsolute(_))
        ));
        // Without the key, the XDG default stays.
        let mut p = Paths::resolve(None, &env).unwrap();
        p.use_configured_root(None, &env, None).unwrap();
        assert_eq!(p.root, PathBuf::from("/h/.local/share/den"));
    }

    #[test]
    fn no_home_is_an_error_with_a_hint() {
        let env = FakeEnv(HashMap::new(), 1);
        let e = Paths::resolve(None, &env).unwrap_err();
        assert!(matches!(e, ConfigError::NoHome));
        assert!(e.hint().unwrap().contains("DEN_ROOT"));
    }

    #[test]
    fn runtime_dir_is_created_private_and_checked() {
        let t = tempfile::tempdir().unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let p = Paths {
            root: t.path().into(),
            config: t.path().into(),
            runtime: t.path().join("rt"),
        };
        p.ensure_runtime_dir(uid).unwrap();
        let mode = std::fs::metadata(t.path().join("rt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(t.path().join("rt"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert!(matches!(
            p.ensure_runtime_dir(uid),
            Err(ConfigError::RuntimeDirNotPrivate { .. })
        ));
    }

    #[test]
    fn config_file_parses_and_rejects_unknown_keys() {
        let c = Config::parse(
            Path::new("c.toml"),
            "[registry]\nmirrors=[\"m.example\"]\ninsecure=[\"r:5000\"]\n[storage]\ndriver=\"fuse-overlayfs\"\n",
        )
        .unwrap();
        assert_eq!(c.registry.mirrors, vec!["m.example"]);
        assert_eq!(c.storage.driver, DriverChoice::FuseOverlayfs);
        let e = Config::parse(Path::new("c.toml"), "[registry]\nmirror=1\n").unwrap_err();
        assert!(e.to_string().contains("c.toml"));
    }

    #[test]
    fn additional_stores_come_from_the_config_or_the_environment_list() {
        let c = Config::parse(
            Path::new("c.toml"),
            "[storage]\nadditional=[\"/sw/den\", \"/scratch/den\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.storage.additional,
            vec![PathBuf::from("/sw/den"), PathBuf::from("/scratch/den")]
        );
        assert_eq!(
            additional_stores("/a::/b:"),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert!(additional_stores("").is_empty());
    }
}

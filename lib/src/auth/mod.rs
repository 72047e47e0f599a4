//! Registry credentials: where `den login` keeps them and where den looks for them.
//!
//! den writes only its own file, `$XDG_CONFIG_HOME/den/auth.json` (next to `config.toml`), in
//! the format docker and podman share (`{"auths": {"HOST": {"auth": base64("user:password")}}}`),
//! created with mode 0600 and replaced atomically. It reads, in order, its own file, the file
//! named by `REGISTRY_AUTH_FILE`, podman's (`$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json`) and docker's (`$DOCKER_CONFIG/config.json`,
//! `~/.docker/config.json`), so a user who logged in with another tool is logged in for den too.
//! Keys may be a host (`127.0.0.1:5000`), a URL (`https://index.docker.io/v1/`, docker's key for
//! Docker Hub) or, as podman allows, a host with a repository prefix (`quay.io/team`): the
//! longest matching prefix wins.
//!
//! `--authfile PATH` (podman's flag, and as in podman `REGISTRY_AUTH_FILE` is its default)
//! replaces all of these with one file: login writes there, the other verbs read only it. `--creds USER[:PASSWORD]` gives one command its credentials
//! and stores nothing ([`Access`] carries both to the verbs).
//!
//! Any file den reads may name docker's credential helpers ([`helper`]): `credHelpers` for one
//! registry, else `credsStore` for all. As in docker, a helper named for a registry is asked
//! instead of the file's `auths`; den also falls back to `auths` when the helper has nothing
//! (podman's files mix both). `den login` stores through the helper its file names (and
//! leaves docker's empty `auths` entry beside it), `den logout` erases there.
//!
//! docker's identity tokens (an OAuth2 refresh token: a helper's answer with the user `<token>`,
//! or an entry's `identitytoken`) come back as [`Credentials`] whose
//! [`Credentials::identity_token`] the registry client trades at the token service.
//!
//! Written by hand: the format is a dozen lines of JSON, and the crates that read docker's
//! config run helpers without a time limit or an output cap.
//!
//! Passwords never reach a log or an error message: [`Credentials`]' `Debug` hides them.

pub mod helper;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read credentials file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path} is not valid JSON: {message}")]
    Damaged { path: PathBuf, message: String },
    #[error("cannot write credentials file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("no password was given for {registry}")]
    NoPassword { registry: String },
    #[error("no user name was given for {registry}")]
    NoUser { registry: String },
    #[error("auth file {path} does not exist")]
    NoAuthFile { path: PathBuf },
    #[error("--creds needs a user name: USER[:PASSWORD]")]
    CredsWithoutUser,
    #[error("--creds gave no password for {registry}, and there is no terminal to ask on")]
    CredsWithoutPassword { registry: String },
    #[error("credential helper name {name:?} in {file} is not a plain name")]
    BadHelperName { name: String, file: PathBuf },
    #[error("credential helper {helper} (for {registry}) is not on PATH")]
    HelperMissing { helper: String, registry: String },
    #[error("credential helper {helper} failed to {verb} credentials for {registry}: {message}")]
    HelperFailed {
        helper: String,
        verb: &'static str,
        registry: String,
        message: String,
    },
}

impl Diagnose for AuthError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            AuthError::Read { .. } => "check the file's permissions".into(),
            AuthError::Damaged { path, .. } => {
                format!("fix or remove {}; `den login` writes a new one", path.display())
            }
            AuthError::Write { source, .. } => return source.hint(),
            AuthError::NoPassword { .. } => {
                "pass it on standard input with --password-stdin (or -p, which shows it to other users)".into()
            }
            AuthError::NoUser { .. } => "give one with -u NAME".into(),
            AuthError::NoAuthFile { path } => format!(
                "check the path given to --authfile; `den login --authfile {}` creates it",
                path.display()
            ),
            AuthError::CredsWithoutUser => "write it as --creds USER:PASSWORD".into(),
            AuthError::CredsWithoutPassword { .. } => {
                "write it as --creds USER:PASSWORD, or run on a terminal to be asked for it".into()
            }
            AuthError::BadHelperName { file, .. } => format!(
                "a helper is named by its program's suffix (docker-credential-NAME): fix \"credsStore\" or \"credHelpers\" in {}",
                file.display()
            ),
            AuthError::HelperMissing { helper, .. } => format!(
                "install {helper} on PATH, or remove it from \"credsStore\"/\"credHelpers\" in the auth file that names it"
            ),
            AuthError::HelperFailed { helper, .. } => format!(
                "run `{helper} list` to check the helper (a keyring may need unlocking), or log in again"
            ),
        })
    }
}

pub type Result<T> = std::result::Result<T, AuthError>;

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// docker's identity token (an OAuth2 refresh token) when these are one: a helper's answer
    /// with the user name `<token>`, or an auth file's `identitytoken`.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == helper::IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.username, self.password))
        )
    }

    fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    fn decode(auth: &str) -> Option<Credentials> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (u, p) = text.split_once(':')?;
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// docker's default credential helper.
    #[serde(
        rename = "credsStore",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    creds_store: Option<String>,
    /// docker's per-registry credential helpers.
    #[serde(
        rename = "credHelpers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    cred_helpers: BTreeMap<String, String>,
    /// Everything else in the file (docker's config.json has much more) is kept as it was.
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

impl AuthEntry {
    /// The entry's identity token (docker's `identitytoken`, which wins), else its `auth`.
    fn credentials(&self) -> Option<Credentials> {
        match self.rest.get("identitytoken").and_then(|v| v.as_str()) {
            Some(t) if !t.is_empty() => Some(Credentials {
                username: helper::IDENTITY_TOKEN_USER.into(),
                password: t.into(),
            }),
            _ => self.auth.as_deref().and_then(Credentials::decode),
        }
    }
}

/// The key docker uses for Docker Hub.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A key from any of the files, reduced to `host[/path]`.
fn normalize_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::image::reference::DOCKER_HUB.into()
        }
        other => other.to_string(),
    }
}

/// The key den writes for `registry`.
fn key_for(registry: &str) -> String {
    normalize_key(registry)
}

impl AuthFile {
    /// The helper this file names for `registry` (`credHelpers`, else `credsStore`).
    fn helper(
        &self,
        registry: &str,
        path: &Path,
        search: &Option<Vec<PathBuf>>,
    ) -> Result<Option<helper::Helper>> {
        let key = key_for(registry);
        let name = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == key)
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref())
            .filter(|n| !n.is_empty());
        name.map(|n| {
            let h = helper::Helper::new(n, path)?;
            Ok(match search {
                Some(dirs) => h.with_search(dirs.clone()),
                None => h,
            })
        })
        .transpose()
    }
}

/// How `den build` hands `--creds` to the den-image pulls it starts: in the environment
/// (readable by the user only) rather than on a command line every user can read.
pub const CREDS_ENV: &str = "DEN_CREDS";

/// Where one command's credentials come from: `--creds` (used once, stored nowhere), else
/// `--authfile` (the only file read), else the usual files.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub authfile: Option<PathBuf>,
    pub creds: Option<Credentials>,
}

impl Access {
    /// The credentials for `repository` on `registry`.
    pub fn credentials(
        &self,
        den_config: &Path,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>> {
        if let Some(c) = &self.creds {
            return Ok(Some(c.clone()));
        }
        // As podman: a file named on the command line must be there (a typo would otherwise
        // look like an anonymous pull's "access denied").
        if let Some(f) = &self.authfile
            && !f.exists()
        {
            return Err(AuthError::NoAuthFile { path: f.clone() });
        }
        self.files(den_config).lookup(registry, repository)
    }

    /// The files this command reads (and login writes).
    pub fn files(&self, den_config: &Path) -> AuthFiles {
        match &self.authfile {
            Some(f) => AuthFiles::only(f),
            None => AuthFiles::discover(den_config),
        }
    }
}

/// `--creds USER[:PASSWORD]`: without a password, asked on the terminal (`ask`), else an error.
pub fn parse_creds(
    value: &str,
    registry: &str,
    ask: impl FnOnce() -> Option<String>,
) -> Result<Credentials> {
    let (user, password) = match value.split_once(':') {
        Some((u, p)) => (u, Some(p.to_string())),
        None => (value, None),
    };
    if user.is_empty() {
        return Err(AuthError::CredsWithoutUser);
    }
    let password = match password {
        Some(p) => p,
        None => ask().ok_or_else(|| AuthError::CredsWithoutPassword {
            registry: registry.into(),
        })?,
    };
    Ok(Credentials {
        username: user.into(),
        password,
    })
}

/// Where credentials are read from, den's own file first.
#[derive(Debug, Clone)]
pub struct AuthFiles {
    /// den's file: the only one written.
    pub own: PathBuf,
    /// Other tools' files, read in order.
    pub others: Vec<PathBuf>,
    /// Where credential helpers are looked for: PATH when None (tests set it).
    pub helper_search: Option<Vec<PathBuf>>,
}

impl AuthFiles {
    /// The files for this user: den's next to its config file, then podman's and docker's.
    pub fn discover(den_config: &Path) -> AuthFiles {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let home = env("HOME").map(PathBuf::from);
        let own = den_config
            .parent()
            .map(|d| d.join("auth.json"))
            .unwrap_or_else(|| PathBuf::from("auth.json"));
        let mut others = Vec::new();
        if let Some(f) = env("REGISTRY_AUTH_FILE") {
            others.push(PathBuf::from(f));
        }
        if let Some(r) = env("XDG_RUNTIME_DIR") {
            others.push(PathBuf::from(r).join("containers/auth.json"));
        }
        match (env("XDG_CONFIG_HOME"), &home) {
            (Some(x), _) => others.push(PathBuf::from(x).join("containers/auth.json")),
            (None, Some(h)) => others.push(h.join(".config/containers/auth.json")),
            _ => {}
        }
        match (env("DOCKER_CONFIG"), &home) {
            (Some(d), _) => others.push(PathBuf::from(d).join("config.json")),
            (None, Some(h)) => others.push(h.join(".docker/config.json")),
            _ => {}
        }
        others.retain(|p| p != &own);
        AuthFiles {
            own,
            others,
            helper_search: None,
        }
    }

    /// `--authfile PATH`: that file only, written by login and read by the rest.
    pub fn only(path: &Path) -> AuthFiles {
        AuthFiles {
            own: path.into(),
            others: Vec::new(),
            helper_search: None,
        }
    }

    /// Credentials for `repository` (`host/path/name`) on `registry`: the first file that has
    /// any, and in it the longest key that is a prefix of the repository.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        let full = format!("{}/{}", key_for(registry), repository);
        for path in std::iter::once(&self.own).chain(self.others.iter()) {
            let Some(file) = read(path)? else { continue };
            if let Some(h) = file.helper(registry, path, &self.helper_search)?
                && let Some(c) = h.get(registry)?
            {
                tracing::debug!(helper = h.name(), registry, "credentials from a helper");
                return Ok(Some(c));
            }
            let mut best: Option<(usize, Credentials)> = None;
            for (k, entry) in &file.auths {
                let k = normalize_key(k);
                let matches =
                    full == k || full.starts_with(&format!("{k}/")) || k == key_for(registry);
                if !matches {
                    continue;
                }
                if let Some(c) = entry.credentials()
                    && best.as_ref().is_none_or(|(len, _)| k.len() > *len)
                {
                    best = Some((k.len(), c));
                }
            }
            if let Some((_, c)) = best {
                tracing::debug!(file = %path.display(), registry, "credentials found");
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Store `creds` for `registry` in den's file (0600, atomic), or in the credential helper
    /// that file names for it (the file then keeps docker's empty entry for the registry).
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let mut file = read(&self.own)?.unwrap_or_default();
        let key = key_for(registry);
        let auth = match file.helper(registry, &self.own, &self.helper_search)? {
            Some(h) => {
                h.store(registry, creds)?;
                None
            }
            None => Some(creds.encode()),
        };
        file.auths.retain(|k, _| normalize_key(k) != key);
        file.auths.insert(
            key,
            AuthEntry {
                auth,
                rest: BTreeMap::new(),
            },
        );
        write(&self.own, &file)
    }

    /// Remove `registry` from den's file, and from the helper it names; whether it was there.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let Some(mut file) = read(&self.own)? else {
            return Ok(false);
        };
        let erased = match file.helper(registry, &self.own, &self.helper_search)? {
            Some(h) => h.erase(registry)?,
            None => false,
        };
        let key = key_for(registry);
        let before = file.auths.len();
        file.auths.retain(|k, _| normalize_key(k) != key);
        if file.auths.len() == before {
            return Ok(erased);
        }
        write(&self.own, &file)?;
        Ok(true)
    }

    /// Other tools' files that hold credentials for `registry` (logout leaves them alone).
    pub fn elsewhere(&self, registry: &str) -> Vec<PathBuf> {
        let key = key_for(registry);
        self.others
            .iter()
            .filter(|p| {
                read(p).ok().flatten().is_some_and(|f| {
                    f.auths.keys().any(|k| {
                        let k = normalize_key(k);
                        k == key || k.starts_with(&format!("{key}/"))
                    })
                })
            })
            .cloned()
            .collect()
    }
}

fn read(path: &Path) -> Result<Option<AuthFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.into(),
                source,
            });
        }
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Some(AuthFile::default()));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AuthError::Damaged {
            path: path.into(),
            message: e.to_string(),
        })
}

fn write(path: &Path, file: &AuthFile) -> Result<()> {
    let err = |source| AuthError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| {
            err(crate::store::StoreError::Io {
                path: dir.into(),
                source,
            })
        })?;
    }
    let mut bytes = serde_json::to_vec_pretty(file).expect("auth file serializes");
    bytes.push(b'\n');
    crate::fs::write_atomic_mode(path, &bytes, 0o600).map_err(|source| {
        err(crate::store::StoreError::Io {
            path: path.into(),
            source,
        })
    })
}

/// `registry` as users name it in `den login`: a host, or docker's `https://index.docker.io/v1/`;
/// no argument means Docker Hub.
pub fn registry_arg(arg: Option<&str>) -> String {
    match arg {
        None => crate::image::reference::DOCKER_HUB.into(),
        Some(a) if a == DOCKER_HUB_KEY => crate::image::reference::DOCKER_HUB.into(),
        Some(a) => normalize_key(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn files(dir: &Path) -> AuthFiles {
        AuthFiles {
            own: dir.join("den/auth.json"),
            others: vec![dir.join("docker/config.json")],
            helper_search: Some(vec![dir.join("bin")]),
        }
    }

    #[test]
    fn login_writes_a_private_file_and_lookup_finds_it() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        let c = Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        f.store("127.0.0.1:5000", &c).unwrap();
        let md = std::fs::metadata(&f.own).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        assert_eq!(f.lookup("127.0.0.1:5000", "alice/app").unwrap(), Some(c));
        assert_eq!(f.lookup("127.0.0.1:5001", "alice/app").unwrap(), None);
        assert!(f.remove("127.0.0.1:5000").unwrap());
        assert!(!f.remove("127.0.0.1:5000").unwrap());
        assert_eq!(f.lookup("127.0.0.1:5000", "alice/app").unwrap(), None);
    }

    #[test]
    fn docker_config_is_read_and_the_longest_prefix_wins() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        std::fs::create_dir_all(t.path().join("docker")).unwrap();
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            t.path().join("docker/config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}},"quay.io/team":{{"auth":"{}"}}}},"credHelpers":{{"gcr.io":"gcloud"}}}}"#,
                enc("hub:1"),
                enc("any:2"),
                enc("team:3")
            ),
        )
        .unwrap();
        let user = |reg: &str, repo: &str| f.lookup(reg, repo).unwrap().map(|c| c.username);
        assert_eq!(user("docker.io", "library/busybox").as_deref(), Some("hub"));
        assert_eq!(user("quay.io", "team/app").as_deref(), Some("team"));
        assert_eq!(user("quay.io", "other/app").as_deref(), Some("any"));
        assert_eq!(
            f.elsewhere("quay.io"),
            vec![t.path().join("docker/config.json")]
        );
    }

    #[test]
    fn other_keys_in_den_file_survive_a_login() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        std::fs::create_dir_all(t.path().join("den")).unwrap();
        std::fs::write(
            &f.own,
            r#"{"auths":{"a.example":{"auth":"eDp5"}},"other":1}"#,
        )
        .unwrap();
        f.store(
            "b.example",
            &Credentials {
                username: "u".into(),
                password: "p".into(),
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f.own).unwrap()).unwrap();
        assert_eq!(v["other"], 1);
        assert_eq!(v["auths"]["a.example"]["auth"], "eDp5");
    }

    #[test]
    fn passwords_are_not_in_debug_output() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn registry_arguments_normalize() {
        assert_eq!(registry_arg(None), "docker.io");
        assert_eq!(
            registry_arg(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            registry_arg(Some("http://127.0.0.1:5000/")),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_arg(Some("127.0.0.1:5000")), "127.0.0.1:5000");
    }

    /// A credential helper `docker-credential-NAME` in `dir/bin` that keeps one JSON file per
    /// server in `dir/keyring`.
    fn install_helper(dir: &Path, name: &str) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let ring = dir.join("keyring");
        std::fs::create_dir_all(&ring).unwrap();
        let script = format!(
            r#"#!/bin/sh
ring={ring}
case "$1" in
get) read -r url; k=$(printf %s "$url" | tr -c 'a-zA-Z0-9.' _); [ -f "$ring/$k" ] && cat "$ring/$k" || {{ echo "credentials not found in native keychain"; exit 1; }} ;;
store) j=$(cat); url=$(printf %s "$j" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); k=$(printf %s "$url" | tr -c 'a-zA-Z0-9.' _); printf %s "$j" > "$ring/$k" ;;
erase) read -r url; k=$(printf %s "$url" | tr -c 'a-zA-Z0-9.' _); [ -f "$ring/$k" ] || {{ echo "credentials not found in native keychain"; exit 1; }}; rm "$ring/$k" ;;
esac
"#,
            ring = ring.display()
        );
        let p = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn login_stores_through_the_helper_its_file_names_and_logout_erases_there() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        install_helper(t.path(), "ring");
        std::fs::create_dir_all(t.path().join("den")).unwrap();
        std::fs::write(&f.own, r#"{"credsStore":"ring"}"#).unwrap();
        let c = Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        f.store("127.0.0.1:5000", &c).unwrap();
        let text = std::fs::read_to_string(&f.own).unwrap();
        assert!(!text.contains(&c.encode()), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"]["127.0.0.1:5000"], serde_json::json!({}));
        assert_eq!(v["credsStore"], "ring");
        assert!(
            std::fs::read_to_string(t.path().join("keyring/127.0.0.1_5000"))
                .unwrap()
                .contains("s3cret")
        );
        assert_eq!(f.lookup("127.0.0.1:5000", "a/b").unwrap(), Some(c));
        assert!(f.remove("127.0.0.1:5000").unwrap());
        assert!(!t.path().join("keyring/127.0.0.1_5000").exists());
        assert_eq!(f.lookup("127.0.0.1:5000", "a/b").unwrap(), None);
    }

    #[test]
    fn cred_helpers_win_over_creds_store_and_auths() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        install_helper(t.path(), "one");
        std::fs::create_dir_all(t.path().join("docker")).unwrap();
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            t.path().join("docker/config.json"),
            format!(
                r#"{{"auths":{{"a.example":{{"auth":"{}"}},"b.example":{{"auth":"{}"}}}},"credHelpers":{{"a.example":"one"}},"credsStore":"absent"}}"#,
                enc("file-a:1"),
                enc("file-b:2")
            ),
        )
        .unwrap();
        std::fs::write(
            t.path().join("keyring/a.example"),
            r#"{"ServerURL":"a.example","Username":"helper-a","Secret":"x"}"#,
        )
        .unwrap();
        let user = |reg: &str| f.lookup(reg, "r/app").map(|c| c.map(|c| c.username));
        assert_eq!(user("a.example").unwrap().as_deref(), Some("helper-a"));
        // b.example goes to credsStore, which is not installed: one error naming it.
        let e = user("b.example").unwrap_err();
        assert!(matches!(e, AuthError::HelperMissing { .. }), "{e}");
        assert!(e.to_string().contains("docker-credential-absent"));
        assert!(e.to_string().contains("b.example"));
        // A helper with nothing for a registry leaves the file's own entry in force.
        std::fs::remove_file(t.path().join("keyring/a.example")).unwrap();
        assert_eq!(user("a.example").unwrap().as_deref(), Some("file-a"));
    }

    #[test]
    fn a_helper_name_with_a_path_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        std::fs::create_dir_all(t.path().join("den")).unwrap();
        std::fs::write(&f.own, r#"{"credsStore":"../../bin/sh"}"#).unwrap();
        let e = f.lookup("a.example", "r").unwrap_err();
        assert!(matches!(e, AuthError::BadHelperName { .. }), "{e}");
    }

    #[test]
    fn an_authfile_is_the_only_file_and_creds_need_no_file() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        let c = Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        f.store("a.example", &c).unwrap();
        let mine = t.path().join("mine.json");
        let access = Access {
            authfile: Some(mine.clone()),
            creds: None,
        };
        let files = access.files(&t.path().join("den/config.toml"));
        assert_eq!(files.own, mine);
        assert!(files.others.is_empty());
        assert_eq!(files.lookup("a.example", "r").unwrap(), None);
        let config = t.path().join("den/config.toml");
        assert!(matches!(
            access.credentials(&config, "a.example", "r"),
            Err(AuthError::NoAuthFile { .. })
        ));
        std::fs::write(&mine, "{}").unwrap();
        assert_eq!(access.credentials(&config, "a.example", "r").unwrap(), None);
        let given = Credentials {
            username: "bob".into(),
            password: "pw".into(),
        };
        let access = Access {
            authfile: None,
            creds: Some(given.clone()),
        };
        assert_eq!(
            access
                .credentials(&t.path().join("den/config.toml"), "a.example", "r")
                .unwrap(),
            Some(given)
        );
    }

    #[test]
    fn creds_parse_as_podman_does() {
        let never = || -> Option<String> { panic!("no prompt expected") };
        let c = parse_creds("alice:pa:ss", "r", never).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pa:ss")
        );
        let c = parse_creds("alice:", "r", never).unwrap();
        assert_eq!(c.password, "");
        let c = parse_creds("alice", "r", || Some("typed".into())).unwrap();
        assert_eq!(c.password, "typed");
        assert!(matches!(
            parse_creds("alice", "r", || None),
            Err(AuthError::CredsWithoutPassword { .. })
        ));
        assert!(matches!(
            parse_creds(":pw", "r", never),
            Err(AuthError::CredsWithoutUser)
        ));
    }

    #[test]
    fn identity_tokens_come_from_auths_and_helpers() {
        let t = tempfile::tempdir().unwrap();
        let f = files(t.path());
        std::fs::create_dir_all(t.path().join("docker")).unwrap();
        std::fs::write(
            t.path().join("docker/config.json"),
            r#"{"auths":{"a.example":{"auth":"Ojo=","identitytoken":"rt-1"}}}"#,
        )
        .unwrap();
        let c = f.lookup("a.example", "r").unwrap().unwrap();
        assert_eq!(c.identity_token(), Some("rt-1"));
        let plain = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(plain.identity_token(), None);
    }
}

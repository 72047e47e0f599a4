//! What a RUN step may read that never lands in the image: build secrets (`--secret`, read by
//! `RUN --mount=type=secret`) and SSH agents (`--ssh`, reached by `RUN --mount=type=ssh`).
//!
//! **The user gives them, never the Dockerfile.** A Dockerfile names a secret or an agent only
//! by its id; the host file, variable or socket behind the id comes from `den build --secret`
//! or `--ssh`, so a hostile Dockerfile cannot read `~/.ssh/id_ed25519` by naming it.
//!
//! **A secret's bytes go nowhere but the step.** They are read when a step mounts them (at most
//! [`MAX_SECRET_SIZE`], BuildKit's cap), written to a file in a 0700 directory of den's runtime
//! directory ([`PrivateDir`]) that the step's container binds read-only, and removed when the
//! step ends. The step's cache key, its history entry and den's output hold the id only (as
//! BuildKit's do: a changed secret does not invalidate the cache). A secret asked for as an
//! environment variable (`env=VAR`) is in the step's container record while the step runs
//! (as BuildKit's is in its process spec), and that record is removed with the step.
//!
//! **Keys given as files get an agent of the build's own.** `--ssh ID=KEYFILE` starts
//! `ssh-agent -D` on a socket in the build's private directory, adds the keys with `ssh-add`,
//! and stops it when the build ends; the key files are read by OpenSSH, never by den. A mount
//! with `uid`, `gid` or `mode` gets a socket of the step's own ([`AgentProxy`]) that passes
//! connections on to the agent, as BuildKit's does, so a step running as another user can
//! reach it.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{BuildError, Result};

/// BuildKit's cap on a secret's size.
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// `--secret`: an id and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub from: SecretFrom,
}

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    /// A host file (`src=`).
    File(PathBuf),
    /// An environment variable of den build's (`env=`, or `type=env`).
    Env(String),
}

/// Parse `--secret id=ID[,src=PATH|,env=VAR][,type=file|env]`, buildx's way: `type=env` takes
/// `src` as the variable's name, and an id alone is the variable of that name when `has_env`
/// says it is set, else the file of that name.
pub fn parse_secret(spec: &str, has_env: &dyn Fn(&str) -> bool) -> Result<Secret> {
    let bad = |reason: &str| BuildError::BadSecretFlag {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| bad(&format!("{field:?} is not KEY=VALUE")))?;
        match k.to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
            "type" => return Err(bad(&format!("type={v} is not file or env"))),
            _ => return Err(bad(&format!("unknown key {k:?}"))),
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| bad("it has no id"))?;
    if id.contains('/') || id == "." || id == ".." {
        return Err(bad("an id cannot contain '/' or be . or .."));
    }
    if kind.as_deref() == Some("env") && env.is_none() {
        env = src.take();
    }
    let from = match (src, env) {
        (Some(_), Some(_)) => return Err(bad("give src= or env=, not both")),
        (Some(s), None) => SecretFrom::File(PathBuf::from(s)),
        (None, Some(e)) => SecretFrom::Env(e),
        (None, None) if kind.as_deref() == Some("env") || has_env(&id) => {
            SecretFrom::Env(id.clone())
        }
        (None, None) => SecretFrom::File(PathBuf::from(&id)),
    };
    Ok(Secret { id, from })
}

impl Secret {
    /// Check the source is there and small enough, before the build starts (as BuildKit
    /// checks); the bytes are read by [`Self::read`] when a step needs them.
    pub fn check(&self) -> Result<()> {
        match &self.from {
            SecretFrom::File(p) => {
                let md = std::fs::metadata(p).map_err(|e| self.unreadable(p, e))?;
                if !md.is_file() {
                    return Err(
                        self.unreadable(p, std::io::Error::other("it is not a regular file"))
                    );
                }
                self.cap(md.len())
            }
            SecretFrom::Env(v) => match std::env::var_os(v) {
                Some(s) => self.cap(s.len() as u64),
                None => Err(BuildError::SecretEnvUnset {
                    id: self.id.clone(),
                    var: v.clone(),
                }),
            },
        }
    }

    /// The secret's bytes (at most [`MAX_SECRET_SIZE`]).
    pub fn read(&self) -> Result<Vec<u8>> {
        let bytes = match &self.from {
            SecretFrom::File(p) => {
                use std::io::Read;
                let f = std::fs::File::open(p).map_err(|e| self.unreadable(p, e))?;
                let mut b = Vec::new();
                f.take(MAX_SECRET_SIZE + 1)
                    .read_to_end(&mut b)
                    .map_err(|e| self.unreadable(p, e))?;
                b
            }
            SecretFrom::Env(v) => {
                use std::os::unix::ffi::OsStringExt;
                std::env::var_os(v)
                    .ok_or_else(|| BuildError::SecretEnvUnset {
                        id: self.id.clone(),
                        var: v.clone(),
                    })?
                    .into_vec()
            }
        };
        self.cap(bytes.len() as u64)?;
        Ok(bytes)
    }

    fn cap(&self, size: u64) -> Result<()> {
        if size > MAX_SECRET_SIZE {
            return Err(BuildError::SecretTooBig {
                id: self.id.clone(),
                size,
            });
        }
        Ok(())
    }

    fn unreadable(&self, p: &Path, source: std::io::Error) -> BuildError {
        BuildError::SecretSource {
            id: self.id.clone(),
            path: p.to_path_buf(),
            source,
        }
    }
}

/// `--ssh`: an id and the agent socket or key files behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssh {
    pub id: String,
    pub paths: Vec<PathBuf>,
}

/// Parse `--ssh default|ID|ID=PATH[,PATH...]`: a PATH is an agent's socket or a key file; no
/// path means `auth_sock` (the user's `$SSH_AUTH_SOCK`), as buildx reads it.
pub fn parse_ssh(spec: &str, auth_sock: Option<&str>) -> Result<Ssh> {
    let bad = |reason: &str| BuildError::BadSshFlag {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (id, paths) = match spec.split_once('=') {
        Some((id, paths)) => (
            id,
            paths
                .split(',')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect::<Vec<_>>(),
        ),
        None => (spec, Vec::new()),
    };
    if id.is_empty() || id.contains(',') {
        return Err(bad("it has no id"));
    }
    let paths = if paths.is_empty() {
        match auth_sock.filter(|s| !s.is_empty()) {
            Some(s) => vec![PathBuf::from(s)],
            None => {
                return Err(bad(
                    "SSH_AUTH_SOCK is not set, and no socket or key is given",
                ));
            }
        }
    } else {
        paths
    };
    Ok(Ssh {
        id: id.to_string(),
        paths,
    })
}

/// A 0700 directory of den's runtime directory, removed (with what is in it) when dropped.
/// A build's holds a lock while the build runs, so that a killed build's (its secrets, its
/// agent's socket) is removed by the next build ([`PrivateDir::sweep`]).
pub struct PrivateDir {
    pub path: PathBuf,
    _lock: Option<crate::store::Lock>,
}

impl PrivateDir {
    /// A fresh directory `PREFIX-RANDOM` under `parent` (itself private: den's runtime dir);
    /// with `locked`, holding the lock [`Self::sweep`] asks for.
    pub fn new(parent: &Path, prefix: &str, locked: bool) -> Result<PrivateDir> {
        let name = crate::fs::random_hex(8);
        // Made and locked under a name the sweep does not look at, then renamed (the lock
        // stays with the file): a sweep never sees it unlocked.
        let making = parent.join(format!("{prefix}.new-{name}"));
        let path = parent.join(format!("{prefix}-{name}"));
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| crate::store::StoreError::Io { path: p, source }
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&making)
            .map_err(io(&making))?;
        let lock = if locked {
            match crate::store::Lock::exclusive(&making.join(LOCK)) {
                Ok(l) => Some(l),
                Err(e) => {
                    let _ = crate::fs::remove_tree(&making);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&making, &path) {
            let _ = crate::fs::remove_tree(&making);
            return Err(io(&making)(e).into());
        }
        Ok(PrivateDir { path, _lock: lock })
    }

    /// Remove the `PREFIX-*` directories under `parent` whose lock nobody holds: what killed
    /// builds left. (A build killed while making its directory leaves a `PREFIX.new-*` one,
    /// empty but for the lock file, which is left alone.)
    pub fn sweep(parent: &Path, prefix: &str) {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        let start = format!("{prefix}-");
        for e in entries.flatten() {
            let dir = e.path();
            let lock = dir.join(LOCK);
            if !e.file_name().to_string_lossy().starts_with(&start)
                || !e.file_type().is_ok_and(|t| t.is_dir())
                || !lock.exists()
            {
                continue;
            }
            if let Ok(Some(_held)) = crate::store::Lock::try_exclusive(&lock) {
                let _ = crate::fs::remove_tree(&dir);
            }
        }
    }
}

const LOCK: &str = ".lock";

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = crate::fs::remove_tree(&self.path);
    }
}

/// The build's agents: `--ssh` ids to the socket a step binds. A socket the user gave is used
/// as it is; key files get an `ssh-agent` of the build's own, stopped when this is dropped.
pub struct Agents {
    pub sockets: BTreeMap<String, PathBuf>,
    children: Vec<Child>,
}

impl Agents {
    /// Sockets for `ssh`, starting agents for key files in `dir` (the build's private dir).
    pub fn start(ssh: &[Ssh], dir: Option<&Path>) -> Result<Agents> {
        let mut a = Agents {
            sockets: BTreeMap::new(),
            children: Vec::new(),
        };
        for (n, s) in ssh.iter().enumerate() {
            let sockets: Vec<&PathBuf> = s.paths.iter().filter(|p| is_socket(p)).collect();
            let socket = match (sockets.as_slice(), s.paths.len()) {
                ([one], 1) => (*one).clone(),
                ([], _) => {
                    let dir = dir.ok_or_else(|| agent_err(s, "den has no runtime directory"))?;
                    a.agent_for_keys(s, &dir.join(format!("agent.{n}")))?
                }
                _ => return Err(agent_err(s, "give one agent socket, or key files only")),
            };
            a.sockets.insert(s.id.clone(), socket);
        }
        Ok(a)
    }

    /// `ssh-agent -D -a SOCKET`, then `ssh-add` of `s`'s key files.
    fn agent_for_keys(&mut self, s: &Ssh, socket: &Path) -> Result<PathBuf> {
        for p in &s.paths {
            if !p.is_file() {
                return Err(agent_err(
                    s,
                    &format!("{} is neither a socket nor a key file", p.display()),
                ));
            }
        }
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                agent_err(
                    s,
                    &format!("cannot start ssh-agent ({e}); install openssh-client"),
                )
            })?;
        self.children.push(child);
        // The agent binds its socket, then listens: wait until it answers (at most 5 s).
        let listening = || UnixStream::connect(socket).is_ok();
        for _ in 0..100 {
            if listening() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if !listening() {
            return Err(agent_err(s, "ssh-agent did not listen on its socket"));
        }
        let out = Command::new("ssh-add")
            .args(&s.paths)
            .env("SSH_AUTH_SOCK", socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| agent_err(s, &format!("cannot run ssh-add ({e})")))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(agent_err(
                s,
                &format!("ssh-add refused the keys: {}", why.trim()),
            ));
        }
        Ok(socket.to_path_buf())
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A socket of the step's own that passes each connection on to an agent's socket, for an
/// ssh mount with `uid`, `gid` or `mode`: the agent's own socket is its owner's alone (0600),
/// so a step running as another user could not reach it. Stopped when dropped.
pub struct AgentProxy {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AgentProxy {
    /// Listen on `path` (owned by `owner` where the user namespace maps it, mode `mode`) and
    /// pass connections on to `agent`.
    pub fn start(agent: &Path, path: &Path, owner: (u32, u32), mode: u32) -> Result<AgentProxy> {
        let io = |source| crate::store::StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(io)?;
        // An id the namespace does not map (single-uid mode) keeps the user's.
        let _ = std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, flag) = (agent.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(upstream) = UnixStream::connect(&agent) {
                            let _ = client.set_nonblocking(false);
                            splice(client, upstream);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(AgentProxy {
            stop,
            thread: Some(thread),
        })
    }
}

/// Copy both ways between `a` and `b` until each side ends (a thread per direction).
fn splice(a: UnixStream, b: UnixStream) {
    let pairs = [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ];
    for (from, to) in pairs {
        if let (Ok(mut from), Ok(mut to)) = (from, to) {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Write);
            });
        }
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

fn agent_err(s: &Ssh, reason: &str) -> BuildError {
    BuildError::SshAgent {
        id: s.id.clone(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(spec: &str) -> Result<Secret> {
        parse_secret(spec, &|v| v == "SET")
    }

    #[test]
    fn secrets_parse_as_buildx_reads_them() {
        let file = |id: &str, p: &str| Secret {
            id: id.into(),
            from: SecretFrom::File(p.into()),
        };
        let env = |id: &str, v: &str| Secret {
            id: id.into(),
            from: SecretFrom::Env(v.into()),
        };
        assert_eq!(secret("id=a,src=/k").unwrap(), file("a", "/k"));
        assert_eq!(secret("id=a,source=/k,type=file").unwrap(), file("a", "/k"));
        assert_eq!(secret("id=a,env=TOKEN").unwrap(), env("a", "TOKEN"));
        assert_eq!(
            secret("id=a,src=TOKEN,type=env").unwrap(),
            env("a", "TOKEN")
        );
        assert_eq!(secret("id=a,type=env").unwrap(), env("a", "a"));
        // An id alone: the variable when it is set, else the file.
        assert_eq!(secret("id=SET").unwrap(), env("SET", "SET"));
        assert_eq!(secret("id=key.pem").unwrap(), file("key.pem", "key.pem"));
        for bad in [
            "src=/k",
            "id=",
            "id=a,src=/k,env=V",
            "id=a,type=ssh",
            "id=a,colour=red",
            "id=a,src",
            "id=../x,src=/k",
        ] {
            assert!(
                matches!(secret(bad), Err(BuildError::BadSecretFlag { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn ssh_specs_default_to_the_users_agent() {
        let got = parse_ssh("default", Some("/tmp/agent")).unwrap();
        assert_eq!(got.id, "default");
        assert_eq!(got.paths, [PathBuf::from("/tmp/agent")]);
        let got = parse_ssh("git=/k1,/k2", None).unwrap();
        assert_eq!((got.id.as_str(), got.paths.len()), ("git", 2));
        assert!(matches!(
            parse_ssh("default", None),
            Err(BuildError::BadSshFlag { .. })
        ));
        assert!(matches!(
            parse_ssh("=/k", None),
            Err(BuildError::BadSshFlag { .. })
        ));
    }

    #[test]
    fn a_secret_over_the_cap_is_refused_and_a_missing_file_named() {
        let dir = std::env::temp_dir().join(format!("den-secret-{}", crate::fs::random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_SIZE as usize + 1]).unwrap();
        let s = Secret {
            id: "big".into(),
            from: SecretFrom::File(big),
        };
        assert!(matches!(s.check(), Err(BuildError::SecretTooBig { .. })));
        assert!(matches!(s.read(), Err(BuildError::SecretTooBig { .. })));
        let small = dir.join("small");
        std::fs::write(&small, b"hush").unwrap();
        let s = Secret {
            id: "s".into(),
            from: SecretFrom::File(small),
        };
        assert_eq!(s.read().unwrap(), b"hush");
        let gone = Secret {
            id: "gone".into(),
            from: SecretFrom::File(dir.join("gone")),
        };
        let e = gone.check().unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_killed_builds_private_dir_is_swept_and_a_running_ones_kept() {
        let parent = std::env::temp_dir().join(format!("den-priv-{}", crate::fs::random_hex(4)));
        std::fs::create_dir_all(&parent).unwrap();
        let running = PrivateDir::new(&parent, "build", true).unwrap();
        // A killed build's: its lock file stays, but nobody holds the lock.
        let left = parent.join("build-dead");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join(LOCK), b"").unwrap();
        std::fs::write(left.join("0"), b"secret").unwrap();
        let fresh = parent.join("build-fresh");
        std::fs::create_dir(&fresh).unwrap();
        PrivateDir::sweep(&parent, "build");
        assert!(!left.exists());
        assert!(running.path.exists() && fresh.exists());
        drop(running);
        std::fs::remove_dir_all(&parent).unwrap();
    }
}

//! RUN: the command in a container on the build so far; the container's writable layer is the
//! new layer.
//!
//! The step's container is an ordinary den container record (labelled as a build step, so a
//! killed build's sweep finds it), run to its end by den-run through the [`super::Host`]: only
//! the runtime enters namespaces, the builder never does. Its flags: `--mount` (cache, bind,
//! tmpfs, secret and ssh mounts) and `--network` (default, none, or the host's with the user's
//! entitlement).
//!
//! **The host's network is the user's to give.** `RUN --network=host` reaches the host's
//! loopback services, so a Dockerfile gets it only with `den build --allow network.host` or
//! `--network host`, as docker's entitlement works. **The build context is read-only.** A
//! `rw` bind mount writes to a throwaway layer over its source, never to the context; a bind
//! mount `from=` another stage or an image mounts that root with a writable layer of its own,
//! resolves the source inside it (its symlinks never lead out) and throws the layer away.
//!
//! **Secrets and agents are the user's to give** ([`super::secrets`]): `type=secret` and
//! `type=ssh` name an id, and only `den build --secret`/`--ssh` say what is behind it. A
//! secret is a read-only file of a private directory bound at its target (or an environment
//! variable of that step alone); the empty files and directories the runtime makes as their
//! mount points are taken out of the layer ([`remove_stubs`]), as BuildKit does, so nothing of
//! them lands in the image.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use chrono::Utc;

use super::Result;
use super::exec::Build;
use super::secrets::{AgentProxy, PrivateDir};
use super::state::State;
use super::step::StepRoot;
use super::syntax::Node;
use super::{BuildError, Entitlement, cache, step};
use crate::net::Network;
use crate::store::driver::{self, Driver, Layout};
use crate::store::{ContainerRecord, LayerRef, RestartPolicy, RunSpec, Store};
use crate::volume::MountSpec;

/// The most `--mount` flags one RUN may have (a Dockerfile is not trusted with more).
const MAX_MOUNTS: usize = 32;

/// A RUN step's flags, read.
#[derive(Default)]
struct Flags {
    mounts: Vec<MountSpec>,
    /// Indices into `mounts` of `rw` bind mounts, which get a throwaway layer.
    rw_binds: Vec<usize>,
    network: Network,
    /// The step's own environment: `SSH_AUTH_SOCK`, `env=` secrets.
    env: Vec<String>,
    /// Targets of secret, ssh and `from=` bind mounts, whose mount points are not kept in the
    /// layer.
    stubs: Vec<String>,
    /// ssh mounts so far (the default target's number).
    ssh_count: usize,
    /// Roots of other stages and images that `from=` binds bind from; unmounted (and their
    /// writable layers removed) when the step ends.
    roots: Vec<StepRoot>,
    /// The step's own agent sockets (stopped when the step ends, before `secrets` goes).
    proxies: Vec<AgentProxy>,
    /// The step's secret files and agent sockets, removed when the step ends.
    secrets: Option<PrivateDir>,
}

impl Build<'_> {
    /// RUN `argv` on `state`; returns the new layer.
    pub(super) fn run(&self, state: &State, node: &Node, argv: &[String]) -> Result<LayerRef> {
        if self.driver == Driver::Vfs {
            return Err(BuildError::NeedsOverlay);
        }
        let mut env = run_env(state);
        let mut flags = self.run_flags(node, &state.workdir())?;
        // The step's own variables win over the image's.
        env.retain(|e| {
            let k = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
            !flags
                .env
                .iter()
                .any(|f| f.split_once('=').map(|(fk, _)| fk) == Some(k))
        });
        env.append(&mut flags.env);
        let mounts = std::mem::take(&mut flags.mounts);
        let mut record =
            self.step_container(state, argv.to_vec(), env, mounts, flags.network.clone());
        // A base from another user's additional store needs fuse-overlayfs (see `for_layers`).
        let drv = driver::for_layers(self.driver, self.store, &record.layers);
        record.driver = drv.name().into();
        let mut record = self.store.create_container(record, None)?;
        let id = record.id.clone();
        let _cleanup = RemoveContainer(self.store, id.clone());
        record.spec.hostname = id[..12].to_string();
        let cdir = self.store.container_dir(&id);
        // Unmounted (dropped) before the container directory is removed.
        let _binds = self.throwaway_binds(node, &cdir, &mut record.spec.mounts, &flags.rw_binds)?;
        self.store
            .write_json(&cdir.join("container.json"), &record)?;
        driver::prepare(drv, self.store, &record.layers, &cdir)?;
        let Some(code) = self.host.run_container(&id, self.opts.quiet)? else {
            return Err(self.err(
                node,
                "den-run was not found",
                "install den-run next to den-build",
            ));
        };
        if code != 0 {
            return Err(BuildError::RunFailed {
                file: self.plan.file.clone(),
                line: node.line,
                instruction: node.original.clone(),
                code,
            });
        }
        let upper = Layout::of(&cdir).upper;
        let lowers: Vec<PathBuf> = state
            .diff_ids()
            .iter()
            .map(|d| self.store.layer_diff(d))
            .collect();
        remove_stubs(&upper, &lowers, &flags.stubs);
        step::commit_upper(self.store, &upper, drv)
    }

    /// `--mount` and `--network`, in order; a mount's relative target is below `workdir`.
    fn run_flags(&self, node: &Node, workdir: &str) -> Result<Flags> {
        let mut flags = Flags {
            network: self.network.clone(),
            ..Flags::default()
        };
        if node.flags_named("mount").count() > MAX_MOUNTS {
            return Err(self.err(
                node,
                &format!("more than {MAX_MOUNTS} --mount flags"),
                "split the step, or mount a directory that holds what the mounts would",
            ));
        }
        for (k, v) in &node.flags {
            match k.as_str() {
                "mount" => {
                    let Some((m, rw)) = self.run_mount(node, v, workdir, &mut flags)? else {
                        continue;
                    };
                    if rw {
                        flags.rw_binds.push(flags.mounts.len());
                    }
                    flags.mounts.push(m);
                }
                "network" => flags.network = self.run_network(node, v)?,
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
        Ok(flags)
    }

    /// `--network=default|none|host`.
    fn run_network(&self, node: &Node, v: &str) -> Result<Network> {
        match v {
            "default" => Ok(self.network.clone()),
            "none" => Ok(Network::None),
            // The host's network reaches its loopback services: docker's entitlement, granted
            // by the user, not the Dockerfile.
            "host" if self.host_network_allowed() => Ok(Network::Host),
            "host" => Err(self.err(
                node,
                "--network=host needs the network.host entitlement",
                "if you trust this Dockerfile with the host's network, build with \
                 `den build --allow network.host` (or --network host)",
            )),
            _ => Err(self.err(
                node,
                &format!("--network={v} is not supported"),
                "use default, none or host",
            )),
        }
    }

    /// Whether RUN may use the host's network: `den build --network host` or
    /// `--allow network.host`.
    fn host_network_allowed(&self) -> bool {
        self.opts.network == Some(Network::Host)
            || self.opts.allow.contains(&Entitlement::NetworkHost)
    }

    /// The record of a RUN step's container (den-run gives it an id).
    fn step_container(
        &self,
        state: &State,
        argv: Vec<String>,
        env: Vec<String>,
        mounts: Vec<MountSpec>,
        network: Network,
    ) -> ContainerRecord {
        ContainerRecord {
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
            spec: Box::new(RunSpec {
                endpoints: vec![],
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
                annotations: BTreeMap::new(),
                attach: None,
                timezone: None,
                host_uts: false,
                shared: Default::default(),
                ports: Vec::new(),
                add_hosts: Vec::new(),
                dns: Vec::new(),
                // docker's defaults, as for `docker build`'s RUN; in single-uid mode package
                // managers' chown and setuid calls succeed (security::fakeids).
                security: crate::security::Security {
                    fake_ids: true,
                    ..Default::default()
                },
                // Run without a log (`run_foreground`'s keep_log is false).
                log: Default::default(),
                devices: Default::default(),
                limits: Default::default(),
                // No hooks for build steps (podman's buildah runs none either); docker's
                // process defaults.
                hooks: Default::default(),
                process: Default::default(),
                // A build step is not health-checked.
                healthcheck: None,
            }),
            auto_remove: false,
            layers: state.diff_ids(),
            image_file: None,
        }
    }

    /// `RUN --mount=type=bind,rw`: the step may write to the mount but, as with BuildKit, what
    /// it writes is thrown away and never reaches the build context. Each such mount's source
    /// gets a throwaway writable layer under the step's container directory (an overlay over a
    /// directory, a copy of a file), and the container binds that instead.
    fn throwaway_binds(
        &self,
        node: &Node,
        cdir: &Path,
        mounts: &mut [MountSpec],
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
                    &format!(
                        "cannot give the rw bind mount of {} a throwaway layer: {what}",
                        src.display()
                    ),
                    "mount it read-only (leave out rw), or build from a context outside den's \
                     store",
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

    /// `--mount=type=cache|bind|tmpfs|secret|ssh,...` as a container mount, and whether it is
    /// a writable bind mount (which needs a throwaway layer, see [`Self::throwaway_binds`]).
    /// None for a secret or agent that is not given and not required, or a secret given only
    /// as an environment variable. A relative target is below `workdir`, as BuildKit reads it.
    fn run_mount(
        &self,
        node: &Node,
        spec: &str,
        workdir: &str,
        flags: &mut Flags,
    ) -> Result<Option<(MountSpec, bool)>> {
        let mut kv = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, "true"));
            kv.insert(k.to_string(), v.to_string());
        }
        let target = kv
            .get("target")
            .or(kv.get("dst"))
            .or(kv.get("destination"))
            .map(|t| {
                if t.starts_with('/') {
                    t.clone()
                } else {
                    format!("{}/{t}", workdir.trim_end_matches('/'))
                }
            });
        let kind = kv.get("type").map(String::as_str).unwrap_or("bind");
        let needs_target = || {
            target.clone().ok_or_else(|| {
                self.err(
                    node,
                    &format!("--mount={spec} has no target"),
                    "add target=/path",
                )
            })
        };
        let mut rw_bind = false;
        let flag = match kind {
            "cache" => self.cache_mount(&kv, &needs_target()?)?,
            "bind" => {
                let (flag, rw) = self.bind_mount(node, &kv, &needs_target()?, flags)?;
                rw_bind = rw;
                flag
            }
            "tmpfs" => format!("type=tmpfs,target={}", needs_target()?),
            "secret" => match self.secret_mount(node, &kv, target, flags)? {
                Some(f) => f,
                None => return Ok(None),
            },
            "ssh" => match self.ssh_mount(node, &kv, target, flags)? {
                Some(f) => f,
                None => return Ok(None),
            },
            other => {
                return Err(self.err(
                    node,
                    &format!("--mount type={other} is not supported"),
                    "use type=cache, bind, tmpfs, secret or ssh",
                ));
            }
        };
        crate::volume::parse_mount_flag(&flag, Path::new("/"))
            .map(|m| Some((m, rw_bind)))
            .map_err(|e| self.err(node, &e.to_string(), "check the --mount options"))
    }

    /// `type=secret,id=ID[,target=PATH][,env=VAR][,required][,mode=][,uid=][,gid=]`: the
    /// secret the user gave as `--secret id=ID`, as a read-only file (default
    /// `/run/secrets/ID`) and/or the variable `env`. Not given: an error when `required`, else
    /// no mount, as BuildKit does.
    fn secret_mount(
        &self,
        node: &Node,
        kv: &BTreeMap<String, String>,
        target: Option<String>,
        flags: &mut Flags,
    ) -> Result<Option<String>> {
        let id = kv
            .get("id")
            .cloned()
            .or_else(|| {
                let t = target.as_deref()?;
                Some(Path::new(t).file_name()?.to_string_lossy().into_owned())
            })
            .ok_or_else(|| {
                self.err(
                    node,
                    "--mount type=secret has no id",
                    "add id=ID, and build with --secret id=ID,src=FILE",
                )
            })?;
        let Some(secret) = self.opts.secrets.iter().find(|s| s.id == id) else {
            if required(kv) {
                return Err(self.err(
                    node,
                    &format!("secret {id} is required but was not given"),
                    &format!("build with --secret id={id},src=FILE (or id={id},env=VARIABLE)"),
                ));
            }
            return Ok(None);
        };
        let bytes = secret.read()?;
        if let Some(var) = kv.get("env") {
            let text = String::from_utf8(bytes.clone())
                .ok()
                .filter(|t| !t.contains('\0'))
                .ok_or_else(|| {
                    self.err(
                        node,
                        &format!("secret {id} is not text, so it cannot be the variable {var}"),
                        "mount it as a file (leave out env=)",
                    )
                })?;
            flags.env.push(format!("{var}={text}"));
            if target.is_none() {
                return Ok(None);
            }
        }
        let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
        let (mode, uid, gid) = self.mode_and_owner(node, kv, 0o400)?;
        let file = self
            .private_step_dir(node, flags)?
            .join(flags.stubs.len().to_string());
        write_secret(&file, &bytes, mode, (uid, gid))?;
        flags.stubs.push(target.clone());
        Ok(Some(format!(
            "type=bind,source={},target={target},readonly",
            file.display()
        )))
    }

    /// The step's private directory (its secret files, its agent sockets), made on first use.
    fn private_step_dir(&self, node: &Node, flags: &mut Flags) -> Result<PathBuf> {
        if let Some(d) = &flags.secrets {
            return Ok(d.path.clone());
        }
        let parent = self.private.as_ref().ok_or_else(|| {
            self.err(
                node,
                "den has no runtime directory to keep the secret in",
                "set XDG_RUNTIME_DIR (or DEN_RUNTIME_DIR) to a directory of yours",
            )
        })?;
        let d = PrivateDir::new(&parent.path, "step", false)?;
        let path = d.path.clone();
        flags.secrets = Some(d);
        Ok(path)
    }

    /// `type=ssh[,id=ID][,target=PATH][,required]`: the agent the user gave as `--ssh ID`
    /// (default `default`), its socket bound at `target` (default
    /// `/run/buildkit/ssh_agent.N`); the step's first gets `SSH_AUTH_SOCK`.
    fn ssh_mount(
        &self,
        node: &Node,
        kv: &BTreeMap<String, String>,
        target: Option<String>,
        flags: &mut Flags,
    ) -> Result<Option<String>> {
        let id = kv.get("id").map(String::as_str).unwrap_or("default");
        let Some(socket) = self.agents.sockets.get(id) else {
            if required(kv) {
                return Err(self.err(
                    node,
                    &format!("ssh agent {id} is required but was not given"),
                    &format!(
                        "build with --ssh {id} (your $SSH_AUTH_SOCK), or --ssh {id}=SOCKET or \
                         {id}=KEYFILE"
                    ),
                ));
            }
            return Ok(None);
        };
        let target =
            target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{}", flags.ssh_count));
        let mut socket = socket.clone();
        if ["uid", "gid", "mode"].iter().any(|k| kv.contains_key(*k)) {
            // A socket of the step's own, owned and moded as asked, passing connections on.
            let (mode, uid, gid) = self.mode_and_owner(node, kv, 0o600)?;
            let path = self
                .private_step_dir(node, flags)?
                .join(format!("ssh{}", flags.ssh_count));
            flags
                .proxies
                .push(AgentProxy::start(&socket, &path, (uid, gid), mode)?);
            socket = path;
        }
        if flags.ssh_count == 0 {
            flags.env.push(format!("SSH_AUTH_SOCK={target}"));
        }
        flags.ssh_count += 1;
        flags.stubs.push(target.clone());
        Ok(Some(format!(
            "type=bind,source={},target={target}",
            socket.display()
        )))
    }

    /// A secret or ssh mount's `mode` (octal, default `mode`), `uid` and `gid` (default 0).
    fn mode_and_owner(
        &self,
        node: &Node,
        kv: &BTreeMap<String, String>,
        mode: u32,
    ) -> Result<(u32, u32, u32)> {
        let number = |key: &str, radix: u32, default: u32| -> Result<u32> {
            kv.get(key).map_or(Ok(default), |v| {
                u32::from_str_radix(v, radix).map_err(|_| {
                    self.err(
                        node,
                        &format!("--mount {key}={v} is not a number"),
                        "give mode in octal (0400), uid and gid as numbers",
                    )
                })
            })
        };
        Ok((
            number("mode", 8, mode)?,
            number("uid", 10, 0)?,
            number("gid", 10, 0)?,
        ))
    }

    /// `type=cache`: a directory of the build cache ([`cache::mount_dir`]), made on first use.
    fn cache_mount(&self, kv: &BTreeMap<String, String>, target: &str) -> Result<String> {
        let id = kv.get("id").cloned().unwrap_or_else(|| target.to_string());
        let dir = cache::mount_dir(self.store, &id);
        std::fs::create_dir_all(&dir).map_err(|e| crate::store::StoreError::Io {
            path: dir.clone(),
            source: e,
        })?;
        Ok(format!(
            "type=bind,source={},target={}{}",
            dir.display(),
            target,
            if read_only(kv) { ",readonly" } else { "" }
        ))
    }

    /// `type=bind`: a path of the build context, or with `from=` of another stage's or an
    /// image's root, resolved inside it; read-only unless `rw`.
    fn bind_mount(
        &self,
        node: &Node,
        kv: &BTreeMap<String, String>,
        target: &str,
        flags: &mut Flags,
    ) -> Result<(String, bool)> {
        let source = kv
            .get("source")
            .or(kv.get("src"))
            .cloned()
            .unwrap_or_else(|| "/".into());
        let rw = kv
            .get("rw")
            .or(kv.get("readwrite"))
            .is_some_and(|v| v != "false");
        if let Some(from) = kv.get("from") {
            // Its own writable layer over the stage's (or image's) layers: what `rw` writes
            // is thrown away with it when the step ends.
            let root = self.mount_from(from)?;
            let host = crate::unpack::scope::resolve(&root.merged, Path::new(&source), true)
                .map_err(|e| self.err(node, &e.to_string(), "check the source path"))?;
            if std::fs::symlink_metadata(&host).is_err() {
                return Err(self.err(
                    node,
                    &format!("{source} is not in {from}"),
                    "check the source path in that stage or image",
                ));
            }
            flags.roots.push(root);
            flags.stubs.push(target.to_string());
            let flag = format!(
                "type=bind,source={},target={}{}",
                host.display(),
                target,
                if rw { "" } else { ",readonly" }
            );
            return Ok((flag, false));
        }
        let ctxdir = self.opts.context.as_ref().ok_or_else(|| {
            self.err(
                node,
                "a bind mount needs a build context",
                "build with a context directory",
            )
        })?;
        let host = crate::unpack::scope::resolve(ctxdir, Path::new(&source), true)
            .map_err(|e| self.err(node, &e.to_string(), "check the source path"))?;
        let flag = format!(
            "type=bind,source={},target={}{}",
            host.display(),
            target,
            if rw { "" } else { ",readonly" }
        );
        Ok((flag, rw))
    }
}

fn required(kv: &BTreeMap<String, String>) -> bool {
    kv.get("required").is_some_and(|v| v != "false")
}

/// A secret's file for one step: made fresh (never through a link), its owner and mode set on
/// the open file. An owner the user namespace does not map keeps the user's (single-uid mode).
fn write_secret(path: &Path, bytes: &[u8], mode: u32, owner: (u32, u32)) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| crate::store::StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    let _ = crate::fs::write::fchown(&f, owner);
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777))
        .map_err(io)?;
    Ok(())
}

/// Take the mount points the runtime made for `targets` (secret, ssh, `from=` mounts) out of the
/// step's writable layer `upper`: the target if it is an empty file or directory, then its
/// parents while they are empty, stopping at anything a layer below (`lowers`) has. Nothing is
/// followed: a symlink on the way (the step may have made one) ends the walk.
fn remove_stubs(upper: &Path, lowers: &[PathBuf], targets: &[String]) {
    for t in targets {
        let rel: PathBuf = Path::new(t)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        // Every directory on the way must be a directory of the layer, not a link.
        let mut on_the_way = PathBuf::new();
        let plain = rel.parent().is_some_and(|p| {
            p.components().all(|c| {
                on_the_way.push(c);
                std::fs::symlink_metadata(upper.join(&on_the_way)).is_ok_and(|m| m.is_dir())
            })
        });
        if !plain {
            continue;
        }
        let mut p = rel;
        while !p.as_os_str().is_empty() {
            if lowers
                .iter()
                .any(|l| std::fs::symlink_metadata(l.join(&p)).is_ok())
            {
                break;
            }
            let host = upper.join(&p);
            let removed = match std::fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => std::fs::remove_dir(&host).is_ok(),
                Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(&host).is_ok(),
                _ => false,
            };
            if !removed {
                break;
            }
            p.pop();
        }
    }
}

fn read_only(kv: &BTreeMap<String, String>) -> bool {
    kv.get("ro")
        .or(kv.get("readonly"))
        .is_some_and(|v| v != "false")
}

/// RUN's environment: the image's, then the build arguments it does not set, and a PATH.
fn run_env(state: &State) -> Vec<String> {
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
    env
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

/// Removes a build step's container when the step ends, whatever happened.
struct RemoveContainer<'a>(&'a Store, String);
impl Drop for RemoveContainer<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove_container(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_env_keeps_the_images_values_and_adds_a_path() {
        let mut s = State::scratch();
        s.cfg().insert("Env".into(), serde_json::json!(["A=image"]));
        s.args.insert("A".into(), Some("arg".into()));
        s.args.insert("B".into(), Some("arg".into()));
        assert_eq!(
            run_env(&s),
            [
                "A=image",
                "B=arg",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
    }

    #[test]
    fn mount_stubs_leave_the_layer_but_what_a_layer_below_has_stays() {
        let tmp = std::env::temp_dir().join(format!("den-stubs-{}", crate::fs::random_hex(4)));
        let (upper, lower) = (tmp.join("upper"), tmp.join("lower"));
        std::fs::create_dir_all(lower.join("run")).unwrap();
        // The runtime's stubs: /run/secrets/tok (an empty file) and /x/y/sock.
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("run/secrets/tok"), b"").unwrap();
        std::fs::create_dir_all(upper.join("x/y")).unwrap();
        std::fs::write(upper.join("x/y/sock"), b"").unwrap();
        // What the step wrote itself stays: a file with content, a directory with a file.
        std::fs::create_dir_all(upper.join("kept")).unwrap();
        std::fs::write(upper.join("kept/data"), b"data").unwrap();
        std::fs::write(upper.join("kept/tok"), b"data").unwrap();
        // A link the step made is not followed.
        std::fs::create_dir_all(tmp.join("outside/d")).unwrap();
        std::os::unix::fs::symlink(tmp.join("outside"), upper.join("escape")).unwrap();
        remove_stubs(
            &upper,
            &[lower],
            &[
                "/run/secrets/tok".into(),
                "/x/y/sock".into(),
                "/kept/tok".into(),
                "/escape/d".into(),
            ],
        );
        assert!(!upper.join("run/secrets").exists());
        // /run is the lower layer's: its copy stays.
        assert!(upper.join("run").exists());
        assert!(!upper.join("x").exists());
        assert!(upper.join("kept/tok").exists());
        assert!(tmp.join("outside/d").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

//! RUN: the command in a container on the build so far; the container's writable layer is the
//! new layer.
//!
//! The step's container is an ordinary den container record (labelled as a build step, so a
//! killed build's sweep finds it), run to its end by den-run through the [`super::Host`]: only
//! the runtime enters namespaces, the builder never does. Its flags: `--mount` (cache, bind and
//! tmpfs mounts) and `--network` (default, none, or the host's with the user's entitlement).
//!
//! **The host's network is the user's to give.** `RUN --network=host` reaches the host's
//! loopback services, so a Dockerfile gets it only with `den build --allow network.host` or
//! `--network host`, as docker's entitlement works. **The build context is read-only.** A
//! `rw` bind mount writes to a throwaway layer over its source, never to the context.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::Result;
use super::exec::Build;
use super::state::State;
use super::syntax::Node;
use super::{BuildError, Entitlement, cache, step};
use crate::net::Network;
use crate::store::driver::{self, Driver, Layout};
use crate::store::{ContainerRecord, LayerRef, RestartPolicy, RunSpec, Store};
use crate::volume::MountSpec;

/// A RUN step's flags, read.
struct Flags {
    mounts: Vec<MountSpec>,
    /// Indices into `mounts` of `rw` bind mounts, which get a throwaway layer.
    rw_binds: Vec<usize>,
    network: Network,
}

impl Build<'_> {
    /// RUN `argv` on `state`; returns the new layer.
    pub(super) fn run(&self, state: &State, node: &Node, argv: &[String]) -> Result<LayerRef> {
        if self.driver == Driver::Vfs {
            return Err(BuildError::NeedsOverlay);
        }
        let env = run_env(state);
        let flags = self.run_flags(node)?;
        let record = self.step_container(state, argv.to_vec(), env, flags.mounts, flags.network);
        let mut record = self.store.create_container(record, None)?;
        let id = record.id.clone();
        let _cleanup = RemoveContainer(self.store, id.clone());
        record.spec.hostname = id[..12].to_string();
        let cdir = self.store.container_dir(&id);
        // Unmounted (dropped) before the container directory is removed.
        let _binds = self.throwaway_binds(node, &cdir, &mut record.spec.mounts, &flags.rw_binds)?;
        self.store
            .write_json(&cdir.join("container.json"), &record)?;
        driver::prepare(self.driver, self.store, &record.layers, &cdir)?;
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
        step::commit_upper(self.store, &Layout::of(&cdir).upper, self.driver)
    }

    /// `--mount` and `--network`, in order.
    fn run_flags(&self, node: &Node) -> Result<Flags> {
        let mut flags = Flags {
            mounts: Vec::new(),
            rw_binds: Vec::new(),
            network: self.network.clone(),
        };
        for (k, v) in &node.flags {
            match k.as_str() {
                "mount" => {
                    let (m, rw) = self.run_mount(node, v)?;
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
                annotations: BTreeMap::new(),
                timezone: None,
                host_uts: false,
                ports: Vec::new(),
                add_hosts: Vec::new(),
                dns: Vec::new(),
                // docker's defaults, as for `docker build`'s RUN.
                security: Default::default(),
                // Run without a log (`run_foreground`'s keep_log is false).
                log: Default::default(),
            },
            auto_remove: false,
            layers: state.diff_ids(),
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

    /// `--mount=type=cache|bind|tmpfs,...` as a container mount, and whether it is a writable
    /// bind mount (which needs a throwaway layer, see [`Self::throwaway_binds`]).
    fn run_mount(&self, node: &Node, spec: &str) -> Result<(MountSpec, bool)> {
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
        let mut rw_bind = false;
        let flag = match kind {
            "cache" => self.cache_mount(&kv, &target)?,
            "bind" => {
                let (flag, rw) = self.bind_mount(node, &kv, &target)?;
                rw_bind = rw;
                flag
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
        crate::volume::parse_mount_flag(&flag, Path::new("/"))
            .map(|m| (m, rw_bind))
            .map_err(|e| self.err(node, &e.to_string(), "check the --mount options"))
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

    /// `type=bind`: a path of the build context, resolved inside it; read-only unless `rw`.
    fn bind_mount(
        &self,
        node: &Node,
        kv: &BTreeMap<String, String>,
        target: &str,
    ) -> Result<(String, bool)> {
        let source = kv
            .get("source")
            .or(kv.get("src"))
            .cloned()
            .unwrap_or_else(|| "/".into());
        if let Some(from) = kv.get("from") {
            return Err(self.err(
                node,
                &format!("--mount from={from} is not supported yet"),
                "COPY --from the files into the stage instead",
            ));
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
        let rw = kv
            .get("rw")
            .or(kv.get("readwrite"))
            .is_some_and(|v| v != "false");
        let flag = format!(
            "type=bind,source={},target={}{}",
            host.display(),
            target,
            if rw { "" } else { ",readonly" }
        );
        Ok((flag, rw))
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
}

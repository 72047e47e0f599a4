//! `run`'s and `create`'s flags (and `exec`'s environment) parsed into the typed options the
//! verbs take: mounts, ports, the network, the restart policy, labels, the security settings
//! and the environment are checked here, once, before anything is pulled or created. A bad
//! flag leaves the store as it was.
//!
//! What depends on the image or the machine (the default network, `-P`'s ports, the command)
//! is the verb's to decide ([`crate::ops::run::create`]).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::RunArgs;
use crate::config::logging::{LogConfig, LogDriver};
use crate::net::{Network, PortMapping};
use crate::ops::Result;
use crate::ops::run::{PullPolicy, RunOptions};
use crate::store::{AttachStreams, RestartPolicy};
use crate::volume::MountSpec;

impl RunArgs {
    /// The image as named and the command; with `--image-file`, the first argument is the
    /// command's.
    fn image_and_command(&self) -> (String, Vec<String>) {
        match &self.image_file {
            Some(f) => (
                f.display().to_string(),
                self.image.iter().chain(&self.command).cloned().collect(),
            ),
            None => (self.image.clone().unwrap_or_default(), self.command.clone()),
        }
    }

    /// The typed options of `run` and `create`, or the first flag that does not parse.
    #[allow(
        clippy::too_many_lines,
        reason = "one line per flag: splitting it would scatter the flags"
    )]
    pub fn options(&self) -> Result<RunOptions> {
        let network = match &self.network {
            Some(n) => {
                Some(Network::parse(n).ok_or_else(|| crate::net::NetError::BadNetwork(n.clone()))?)
            }
            None => None,
        };
        for h in &self.add_host {
            if !h.contains(':') && !h.contains('=') {
                return Err(crate::net::NetError::BadAddHost(h.clone()).into());
            }
        }
        let restart = RestartPolicy::parse(&self.restart)
            .ok_or_else(|| crate::runtime::FlagError::BadRestart(self.restart.clone()))?;
        if self.rm && restart != RestartPolicy::No {
            return Err(crate::runtime::FlagError::RmWithRestart.into());
        }
        let (attach, detach_keys) = self.attach_flags()?;
        let mounts = mounts(&self.volume, &self.mount, &self.tmpfs)?;
        let (log_driver, log_opts) = self.log_flags()?;
        let security = crate::security::Security::parse(&crate::security::SecurityFlags {
            security_opt: &self.security_opt,
            cap_add: &self.cap_add,
            cap_drop: &self.cap_drop,
            privileged: self.privileged,
        })?;
        let (image, command) = self.image_and_command();
        Ok(RunOptions {
            image,
            command,
            image_file: self.image_file.clone(),
            rm: self.rm,
            detach: self.detach,
            mounts,
            restart,
            labels: labels(&self.label),
            annotations: annotations(&self.annotation)?,
            timezone: self.tz.as_deref().map(timezone).transpose()?,
            host_uts: match self.uts.as_deref() {
                None | Some("private") | Some("") => false,
                Some("host") if self.hostname.is_some() => {
                    return Err(crate::runtime::FlagError::HostnameWithHostUts.into());
                }
                Some("host") => true,
                Some(u) => return Err(crate::runtime::FlagError::BadUts(u.into()).into()),
            },
            shared: self.shared_flags()?,
            stop_timeout: self.stop_timeout,
            stop_signal: self.stop_signal.clone(),
            publish: ports(&self.publish)?,
            publish_all: self.publish_all,
            add_hosts: self.add_host.clone(),
            dns: self.dns.clone(),
            interactive: self.interactive,
            tty: self.tty,
            name: self.name.clone(),
            env: user_env(&self.env, &self.env_file)?,
            env_host: self.env_host,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            entrypoint: self.entrypoint.clone(),
            hostname: self.hostname.clone(),
            network,
            network_aliases: self.network_alias.clone(),
            ip: match &self.ip {
                Some(ip) => Some(ip.parse().map_err(|_| {
                    crate::net::NetError::BadIp(ip.clone(), "of the network".into())
                })?),
                None => None,
            },
            platform: self.platform.clone(),
            pull: match &self.pull {
                None => PullPolicy::Missing,
                Some(p) => PullPolicy::parse(p)
                    .ok_or_else(|| crate::runtime::FlagError::BadPull(p.clone()))?,
            },
            cidfile: self.cidfile.clone(),
            log_driver,
            log_opts,
            attach,
            detach_keys,
            sig_proxy: self.sig_proxy,
            read_only: self.read_only,
            security,
            devices: self.device_flags()?,
            limits: self.limits.limits()?,
            process: self.process_settings()?,
            hooks_dirs: self.hooks_dir.clone(),
            healthcheck: self.health.health()?,
        })
    }

    /// `--device`, `--gpus` and `--group-add`; the CDI devices named must be in the specs now
    /// (they are read again when the container starts).
    fn device_flags(&self) -> Result<crate::cdi::DeviceRequest> {
        let req =
            crate::cdi::DeviceRequest::parse(&self.device, self.gpus.as_deref(), &self.group_add)?;
        if !req.cdi.is_empty() {
            crate::cdi::Registry::load_default()?.resolve(&req.cdi)?;
        }
        Ok(req)
    }

    /// `--init`, `--sysctl`, `--ulimit` (against den's own hard limits) and `--shm-size`.
    fn process_settings(&self) -> Result<crate::security::process::Settings> {
        use crate::security::process::{ProcessFlags, Settings};
        Ok(Settings::parse(
            &ProcessFlags {
                init: self.init,
                sysctl: &self.sysctl,
                ulimit: &self.ulimit,
                shm_size: self.shm_size.as_deref(),
            },
            &crate::sys::hard_limit,
        )?)
    }
}

impl RunArgs {
    /// `--log-driver` and `--log-opt`, checked; passthrough refused with `-d`.
    fn log_flags(&self) -> Result<(Option<LogDriver>, BTreeMap<String, String>)> {
        let (driver, opts) = LogConfig::parse_flags(self.log_driver.as_deref(), &self.log_opt)?;
        if self.detach && driver == Some(LogDriver::Passthrough) {
            return Err(crate::runtime::FlagError::PassthroughDetached.into());
        }
        Ok((driver, opts))
    }

    /// `-a` (not with `-d`, as docker's) and the detach keys (`--detach-keys`, else docker's
    /// configured ones).
    fn attach_flags(&self) -> Result<(Option<AttachStreams>, crate::runtime::detach::DetachKeys)> {
        let attach = attach_streams(&self.attach, self.interactive)?;
        if attach.is_some() && self.detach {
            return Err(crate::runtime::FlagError::AttachWithDetach.into());
        }
        let keys = crate::runtime::detach::choose(self.detach_keys.as_deref())?;
        Ok((attach, keys))
    }

    /// `create`'s options: [`RunArgs::options`] without run's own flags, which docker's
    /// create does not know (`--detach-keys`, `--sig-proxy`: they are for `start -a`).
    pub fn create_options(&self) -> Result<RunOptions> {
        let run_only = match (&self.detach_keys, self.sig_proxy) {
            (Some(_), _) => Some("--detach-keys"),
            (None, false) => Some("--sig-proxy"),
            _ => None,
        };
        if let Some(flag) = run_only {
            return Err(crate::runtime::FlagError::RunOnly(flag).into());
        }
        self.options()
    }
}

impl super::container::ExecArgs {
    /// The typed options of `exec`: the environment resolved (files read now, as the user).
    pub fn options(&self) -> Result<crate::ops::exec::ExecOptions> {
        Ok(crate::ops::exec::ExecOptions {
            interactive: self.interactive,
            tty: self.tty,
            detach: self.detach,
            env: user_env(&self.env, &self.env_file)?,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            command: self.command.clone(),
            detach_keys: crate::runtime::detach::choose(self.detach_keys.as_deref())?,
        })
    }
}

/// `-a STREAM`s (case-insensitive, as docker's), None without any. `-i` attaches stdin too. A
/// stdin named without `-i` is recorded (docker's AttachStdin) but nothing is sent: the
/// container's stdin is not open, as docker's is not.
fn attach_streams(flags: &[String], interactive: bool) -> Result<Option<AttachStreams>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut a = AttachStreams {
        stdin: interactive,
        ..AttachStreams::default()
    };
    for f in flags {
        match f.to_ascii_lowercase().as_str() {
            "stdin" => a.stdin = true,
            "stdout" => a.stdout = true,
            "stderr" => a.stderr = true,
            _ => return Err(crate::runtime::FlagError::BadAttach(f.clone()).into()),
        }
    }
    Ok(Some(a))
}

impl RunArgs {
    /// `--ipc`, `--pid`, `--userns`, each None when not given (the config's `[run]` default
    /// applies then).
    fn shared_flags(&self) -> Result<crate::ops::run::SharedFlags> {
        use crate::runtime::FlagError;
        use crate::userns::share::{parse_host, parse_userns};
        Ok(crate::ops::run::SharedFlags {
            ipc: shared_flag(self.ipc.as_deref(), |m| {
                parse_host(m, true).ok_or_else(|| FlagError::BadIpc(m.into()))
            })?,
            pid: shared_flag(self.pid.as_deref(), |m| {
                parse_host(m, false).ok_or_else(|| FlagError::BadPid(m.into()))
            })?,
            keep_id: shared_flag(self.userns.as_deref(), |m| {
                parse_userns(m).ok_or_else(|| FlagError::BadUserns(m.into()))
            })?,
        })
    }
}

fn shared_flag(
    flag: Option<&str>,
    parse: impl Fn(&str) -> std::result::Result<bool, crate::runtime::FlagError>,
) -> Result<Option<bool>> {
    Ok(flag.map(parse).transpose()?)
}

/// `-l KEY=VALUE` (a bare `KEY` is an empty value).
fn labels(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--annotation KEY=VALUE` (podman's and docker's: a key is required, the value may be empty).
fn annotations(flags: &[String]) -> Result<BTreeMap<String, String>> {
    flags
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(crate::runtime::FlagError::BadAnnotation(a.clone()).into()),
        })
        .collect()
}

/// Where the host keeps its time zones.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// `--tz`: `local` (the host's /etc/localtime) or a zone's name, as the host zoneinfo file it
/// names. A name is a relative path of plain parts (never `..`), so it stays in the zoneinfo
/// directory. As podman's `--tz` (libpod's `makeBindMounts`), it sets /etc/localtime only and
/// not `TZ`, which stays the image's and `-e`'s to set.
fn timezone(tz: &str) -> Result<PathBuf> {
    let bad = || crate::runtime::FlagError::BadTimezone(tz.to_string());
    let path = if tz == "local" {
        std::fs::canonicalize("/etc/localtime").map_err(|_| bad())?
    } else {
        let plain = !tz.is_empty()
            && tz.split('/').all(|p| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
            });
        if !plain {
            return Err(bad().into());
        }
        PathBuf::from(ZONEINFO).join(tz)
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        _ => Err(bad().into()),
    }
}

/// `-p` flags as port mappings.
fn ports(flags: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for p in flags {
        out.extend(crate::net::ports::parse(p).map_err(crate::net::NetError::from)?);
    }
    Ok(out)
}

/// `-v`, `--mount` and `--tmpfs`, in that order, as mounts; bind sources made absolute against
/// the current directory. Each container path is mounted once.
fn mounts(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<Vec<MountSpec>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut out = Vec::new();
    for v in volumes {
        out.push(crate::volume::parse_volume_flag(v, &cwd)?);
    }
    for m in mounts {
        out.push(crate::volume::parse_mount_flag(m, &cwd)?);
    }
    for t in tmpfs {
        out.push(crate::volume::parse_tmpfs_flag(t)?);
    }
    let mut seen = HashSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(crate::runtime::FlagError::DuplicateMount(m.destination.clone()).into());
        }
    }
    Ok(out)
}

/// `-e K=V`, `-e K` (from den's own environment, skipped when unset) and `--env-file` lines:
/// the variables the user adds, files first.
pub fn user_env(env: &[String], files: &[PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |e: &str| -> Result<()> {
        if e.is_empty() || e.starts_with('=') {
            return Err(crate::runtime::FlagError::BadEnv(e.into()).into());
        }
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
        Ok(())
    };
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|source| crate::runtime::FlagError::EnvFile {
                path: f.clone(),
                source,
            })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line)?;
        }
    }
    for e in env {
        add(e)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_stay_in_zoneinfo() {
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "",
            "Europe/../UTC",
            "a//b",
            "No/Such_Zone",
        ] {
            assert!(timezone(bad).is_err(), "{bad}");
        }
        if std::path::Path::new("/usr/share/zoneinfo/UTC").is_file() {
            assert_eq!(
                timezone("UTC").unwrap(),
                std::path::Path::new("/usr/share/zoneinfo/UTC")
            );
        }
    }

    #[test]
    fn attach_streams_are_dockers() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(attach_streams(&[], true).unwrap(), None);
        let a = attach_streams(&s(&["STDOUT", "stdout"]), false)
            .unwrap()
            .unwrap();
        assert!(a.stdout && !a.stderr && !a.stdin);
        // -i attaches stdin whether -a names it or not
        let a = attach_streams(&s(&["stderr"]), true).unwrap().unwrap();
        assert!(a.stdin && a.stderr && !a.stdout);
        // named without -i: recorded, as docker's AttachStdin
        assert!(
            attach_streams(&s(&["Stdin"]), false)
                .unwrap()
                .unwrap()
                .stdin
        );
        let e = attach_streams(&s(&["stdout", "tty"]), false).unwrap_err();
        assert!(e.to_string().contains("\"tty\""), "{e}");
    }

    #[test]
    fn annotations_need_a_key() {
        let a = annotations(&["a=1".into(), "b=".into(), "c=x=y".into()]).unwrap();
        assert_eq!(a["a"], "1");
        assert_eq!(a["b"], "");
        assert_eq!(a["c"], "x=y");
        assert!(annotations(&["nokey".into()]).is_err());
        assert!(annotations(&["=v".into()]).is_err());
    }

    #[test]
    fn pull_policies_in_docker_and_podman_spellings() {
        assert_eq!(PullPolicy::parse("always"), Some(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("true"), Some(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("newer"), Some(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("missing"), Some(PullPolicy::Missing));
        assert_eq!(PullPolicy::parse("false"), Some(PullPolicy::Missing));
        assert_eq!(PullPolicy::parse("never"), Some(PullPolicy::Never));
        assert_eq!(PullPolicy::parse("sometimes"), None);
    }

    #[test]
    fn env_from_flags_and_files() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("env");
        std::fs::write(&f, "# comment\nA=1\n\nB=from file\n").unwrap();
        // A variable this process has (the test sets none: the harness runs threads, and
        // changing the environment under them races with their reads).
        let (name, value) = std::env::vars()
            .find(|(k, _)| k != "DEN_TEST_UNSET_XYZ")
            .expect("the test process has an environment");
        let env = user_env(
            &["C=3".into(), name.clone(), "DEN_TEST_UNSET_XYZ".into()],
            &[f],
        )
        .unwrap();
        let passed = format!("{name}={value}");
        assert_eq!(env, ["A=1", "B=from file", "C=3", passed.as_str()]);
        assert!(user_env(&["=x".into()], &[]).is_err());
        assert!(user_env(&[], &[t.path().join("missing")]).is_err());
    }

    #[test]
    fn mounts_keep_flag_order_and_refuse_a_path_twice() {
        let m = mounts(&["/a:/x".into()], &[], &["/t".into()]).unwrap();
        assert_eq!(
            m.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>(),
            ["/x", "/t"]
        );
        match mounts(&["/a:/x".into()], &[], &["/x".into()]) {
            Err(crate::ops::Error::Flag(crate::runtime::FlagError::DuplicateMount(d))) => {
                assert_eq!(d, "/x")
            }
            other => panic!("{other:?}"),
        }
    }
}

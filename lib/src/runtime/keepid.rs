//! `--userns keep-id` at run time: the container runs as the user's own uid and gid, with an
//! /etc/passwd and /etc/group entry for them and HOME set (podman's keep-id, for HPC jobs whose
//! files must be the user's and whose tools look the user up).
//!
//! With subordinate ids, the container gets a user namespace of its own, nested in den's, with
//! the map [`crate::userns::share::keep_id_map`] gives. den makes it before the engine runs: a
//! small holder process (`cat`, reading a pipe den holds: it ends when den does) unshares it
//! before it execs, den (root in its own namespace, so free to map any of its ids) writes its
//! maps, and the spec names it as the user namespace to join. The engine's processes join it
//! and make every other namespace inside it, so the container's root (when `-u 0` asks for it)
//! still owns its mounts and network. Once the container exists the holder is not needed.
//!
//! In single-uid mode den's namespace has one id, and the engine becomes root in any user
//! namespace it joins, which a map of the user alone has not; there the container's process
//! itself unshares its user namespace just before it execs and maps the user to den's one id,
//! the one map the kernel lets a process write for itself (see [`crate::runtime::engine`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::RuntimeError;
use super::spec::Bind;
use crate::userns::IdMap;
use crate::userns::share::{MapLine, keep_id_map, map_text};

/// The user a keep-id container runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepId {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: String,
}

impl KeepId {
    /// The user den runs for (None for real root, which has no user to keep): their host ids,
    /// their name from the host's passwd (else `USER`), HOME from den's environment.
    pub fn for_user(map: &IdMap) -> Option<KeepId> {
        if *map == IdMap::Root {
            return None;
        }
        let (uid, gid) = (map.host_uid(), map.host_gid());
        let entry = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten();
        let name = entry
            .as_ref()
            .map(|u| u.name.clone())
            .or_else(|| std::env::var("USER").ok())
            .filter(|n| valid_name(n))
            .unwrap_or_else(|| format!("u{uid}"));
        let home = std::env::var("HOME")
            .ok()
            .filter(|h| h.starts_with('/') && !h.contains(':') && !h.contains('\n'))
            .or_else(|| entry.map(|u| u.dir.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "/".into());
        Some(KeepId {
            uid,
            gid,
            name,
            home,
        })
    }
}

/// A keep-id container's run, decided where its spec is written.
pub struct Plan {
    /// Who it runs as.
    pub user: super::user::User,
    /// Its user namespace (with subordinate ids), held until the container is created.
    pub holder: Option<Holder>,
    /// In single-uid mode: the uid and gid the init becomes itself, just before it execs.
    pub becomes: Option<(u32, u32)>,
}

/// Who a container runs as, and for keep-id (where den runs for a user) how: the identity
/// files bound (added to `binds`), the user, and how the ids are mapped. Without keep-id, the
/// user resolved in the image, who in single-uid mode must be root.
pub fn plan(
    map: &IdMap,
    spec: &crate::store::RunSpec,
    rootfs: &Path,
    cdir: &Path,
    binds: &mut Vec<Bind>,
) -> Result<Plan, RuntimeError> {
    let Some(keep) = spec.shared.keep_id.then(|| KeepId::for_user(map)).flatten() else {
        let user = super::user::resolve(rootfs, &spec.user)?;
        check_mapped(map, &user)?;
        return Ok(Plan {
            user,
            holder: None,
            becomes: None,
        });
    };
    binds.extend(identity_binds(cdir, rootfs, &keep)?);
    let user = user(rootfs, &spec.user, &keep)?;
    let (holder, becomes) = match map {
        IdMap::Mapped { .. } => (Holder::start(map)?, None),
        // `-u` someone else: den's one id is root, as without keep-id.
        _ if (user.uid, user.gid) != (keep.uid, keep.gid) => {
            check_mapped(map, &user)?;
            (None, None)
        }
        _ => (None, Some((keep.uid, keep.gid))),
    };
    Ok(Plan {
        user,
        holder,
        becomes,
    })
}

/// In single-uid mode only root exists in den's namespace.
pub fn check_mapped(map: &IdMap, user: &super::user::User) -> Result<(), RuntimeError> {
    if matches!(map, IdMap::Single { .. }) && (user.uid != 0 || user.gid != 0) {
        return Err(RuntimeError::UnmappedUser {
            uid: if user.uid != 0 { user.uid } else { user.gid },
        });
    }
    Ok(())
}

/// An `exec`'d process's user, and how it becomes a keep-id container's user (None unless the
/// container is keep-id). `init_pid`: the container's init, as den sees it.
pub fn exec_user(
    map: &IdMap,
    spec: &crate::store::RunSpec,
    rootfs: &Path,
    flag: &str,
    init_pid: Option<i32>,
) -> Result<Option<(super::user::User, Option<Become>)>, RuntimeError> {
    let Some(keep) = KeepId::for_user(map).filter(|_| spec.shared.keep_id) else {
        return Ok(None);
    };
    let user = user(rootfs, flag, &keep)?;
    if (user.uid, user.gid) != (keep.uid, keep.gid) {
        return Ok(Some((user, None)));
    }
    let how = exec_becomes(map, &user, &keep, init_pid.unwrap_or(1), spec.shared.pid);
    // It starts as den's root, the user on the host, and becomes the user inside.
    let root = super::user::User {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: user.home.clone(),
    };
    Ok(Some(match how {
        Some(b) => (root, Some(b)),
        None => (user, None),
    }))
}

/// The spec annotation that tells den's executor, in the container's init, to unshare a user
/// namespace and become `UID:GID` in it (single-uid keep-id).
pub const BECOME_ANNOTATION: &str = "den.keep-id";

/// The namespace flags `unshare` stays refused with (every one but CLONE_NEWUSER).
const OTHER_NAMESPACES: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

/// Set a single-uid keep-id init up to become `ids` itself: the annotation for den's executor,
/// and a filter that lets it unshare a user namespace (and nothing more). docker's policy
/// refuses unshare without CAP_SYS_ADMIN, as a guard against the kernel's user namespace code;
/// here the user namespace is made for a process of the user's own uid, which may make one
/// outside any container as well. unshare with any other namespace stays refused. A filter that
/// allows only what it names (a profile of the user's) is left as it is.
/// Returns the spec's annotations: `annotations` and den's. Nothing changes without `ids`.
pub fn become_user_in_init(
    ids: Option<(u32, u32)>,
    seccomp: Option<&mut serde_json::Value>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut annotations = annotations.clone();
    let Some(ids) = ids else {
        return annotations;
    };
    annotations.insert(BECOME_ANNOTATION.into(), format!("{}:{}", ids.0, ids.1));
    if let Some(rules) = seccomp.and_then(|s| s["syscalls"].as_array_mut()) {
        allow_user_ns(rules);
    }
    annotations
}

/// Let `unshare` make a user namespace alone, where a plain rule refuses it.
fn allow_user_ns(rules: &mut Vec<serde_json::Value>) {
    let mut refused = false;
    for r in rules.iter_mut() {
        let plain = r["args"].as_array().is_none_or(|a| a.is_empty());
        if plain
            && r["action"] == "SCMP_ACT_ERRNO"
            && let Some(names) = r["names"].as_array_mut()
        {
            let before = names.len();
            names.retain(|n| n != "unshare");
            refused |= names.len() != before;
        }
    }
    rules.retain(|r| r["names"].as_array().is_none_or(|n| !n.is_empty()));
    if refused {
        for &flag in OTHER_NAMESPACES {
            rules.push(serde_json::json!({
                "names": ["unshare"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
    }
}

/// How a keep-id container's process becomes the user, in den's executor just before it
/// execs: an `exec`'d process always, an init in single-uid mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Become {
    /// Unshare a user namespace and map `uid`, `gid` in it to den's one id, which the process
    /// is. A process may write that one map for itself (user_namespaces(7): a single line
    /// mapping its own effective id, setgroups denied); it then runs as the user with no
    /// capability over anything outside the new namespace.
    Unshare { uid: u32, gid: u32 },
    /// Join the container's user namespace (a process that is den's root there becomes the
    /// user: keep-id maps den's 0 to the user): the path as the process sees it, in the
    /// container's /proc.
    Join(PathBuf),
}

/// How an `exec`'d process of a keep-id container becomes `keep` (None: it stays in den's
/// namespace, as `-u` asks when it names someone else in single-uid mode). `init_pid` is the
/// container's init, as den sees it; `host_pid`: the container shares den's PID namespace.
pub fn exec_becomes(
    map: &IdMap,
    user: &super::user::User,
    keep: &KeepId,
    init_pid: i32,
    host_pid: bool,
) -> Option<Become> {
    match map {
        IdMap::Mapped { .. } => {
            // In its own PID namespace the init is 1 in the container's /proc.
            let pid = if host_pid { init_pid } else { 1 };
            Some(Become::Join(format!("/proc/{pid}/ns/user").into()))
        }
        IdMap::Single { .. } if (user.uid, user.gid) == (keep.uid, keep.gid) => {
            Some(Become::Unshare {
                uid: keep.uid,
                gid: keep.gid,
            })
        }
        _ => None,
    }
}

/// Carry `how` out in the calling process (single-threaded: a container's process before
/// exec). The process is made dumpable first, so that its /proc files are its own to write
/// (an `exec`'d process comes from a den that joined den's namespace, and a non-dumpable
/// process's /proc files belong to the host's root); exec resets the flag as always.
pub fn become_user(how: &Become) -> std::io::Result<()> {
    use crate::sys::Sys;
    crate::sys::set_dumpable(true).map_err(|e| e.source)?;
    match how {
        Become::Join(path) => {
            let ns = container_userns(path)?;
            crate::sys::join_userns(&ns).map_err(|e| e.source)
        }
        Become::Unshare { uid, gid } => {
            crate::sys::LinuxSys
                .unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .map_err(|e| e.source)?;
            let write = |file: &str, text: String| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(format!("/proc/self/{file}"))
                    .and_then(|mut f| f.write_all(text.as_bytes()))
            };
            write("setgroups", "deny".into())?;
            write("uid_map", format!("{uid} 0 1\n"))?;
            write("gid_map", format!("{gid} 0 1\n"))
        }
    }
}

/// The user namespace of a keep-id container's init (`path`), once the init has made it. An
/// `exec` may come right after `run -d`, which returns once the container started, not once
/// its command runs: until then the init is still in den's namespace (joining that would be
/// joining our own), or in its new one but not yet dumpable again (its /proc files are not
/// ours to open: EACCES). Both pass within milliseconds; wait up to 2 s for them.
fn container_userns(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/user")?.ino();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let ns = std::fs::File::open(path);
        let ready = match &ns {
            Ok(f) => f.metadata()?.ino() != own,
            Err(e) => e.kind() != std::io::ErrorKind::PermissionDenied,
        };
        if ready || std::time::Instant::now() > deadline {
            return ns;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Who a keep-id container runs as: the user, unless `-u` names someone (resolved in the image
/// as always), with the user's HOME.
pub fn user(rootfs: &Path, flag: &str, keep: &KeepId) -> Result<super::user::User, RuntimeError> {
    if !flag.is_empty() {
        return super::user::resolve(rootfs, flag);
    }
    Ok(super::user::User {
        uid: keep.uid,
        gid: keep.gid,
        additional_gids: Vec::new(),
        home: keep.home.clone(),
    })
}

/// A name that can stand in a passwd line.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The image's `/etc/passwd` and `/etc/group` with the user added (where the image has no
/// entry with their uid, gid), written to the container's `userdata` and bound over the
/// image's. None needed when the image has both entries.
pub fn identity_binds(
    cdir: &Path,
    rootfs: &Path,
    user: &KeepId,
) -> Result<Vec<Bind>, RuntimeError> {
    let read = |file: &str| -> Result<String, RuntimeError> {
        let bytes =
            crate::unpack::scope::read_small(rootfs, file, crate::unpack::scope::SMALL_FILE_CAP)?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let passwd = with_entry(
        &read("/etc/passwd")?,
        user.uid,
        &format!(
            "{}:x:{}:{}:{}:{}:/bin/sh",
            user.name, user.uid, user.gid, user.name, user.home
        ),
    );
    let group = with_entry(
        &read("/etc/group")?,
        user.gid,
        &format!("{}:x:{}:", user.name, user.gid),
    );
    let dir = cdir.join("userdata");
    let mut binds = Vec::new();
    for (name, text) in [("passwd", passwd), ("group", group)] {
        let Some(text) = text else { continue };
        let p = dir.join(name);
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&p, text))
            .map_err(|source| RuntimeError::Io {
                path: p.clone(),
                source,
            })?;
        binds.push(Bind {
            source: p,
            destination: format!("/etc/{name}"),
            read_only: false,
        });
    }
    Ok(binds)
}

/// `file` (passwd or group text) with `line` appended, unless an entry has id `id` (the third
/// field) already: None then.
fn with_entry(file: &str, id: u32, line: &str) -> Option<String> {
    let has = file
        .lines()
        .any(|l| l.split(':').nth(2).and_then(|f| f.parse::<u32>().ok()) == Some(id));
    if has {
        return None;
    }
    let mut out = file.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    Some(out)
}

/// The process that holds a keep-id container's user namespace until the container's
/// processes have joined it (see the module doc). Dropping it ends it.
pub struct Holder {
    child: std::process::Child,
}

impl Holder {
    /// Start the holder and map its namespace for `map` (den's mapping). None in single-uid
    /// mode and for real root, where no namespace is made here.
    pub fn start(map: &IdMap) -> Result<Option<Holder>, RuntimeError> {
        if !matches!(map, IdMap::Mapped { .. }) {
            return Ok(None);
        }
        let Some((uids, gids)) = keep_id_map(map) else {
            return Ok(None);
        };
        let mut cmd = std::process::Command::new("cat");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        crate::sys::new_user_ns_dying_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| RuntimeError::Io {
            path: "cat (the keep-id user namespace's holder)".into(),
            source,
        })?;
        let holder = Holder { child };
        holder.map(&uids, &gids)?;
        Ok(Some(holder))
    }

    /// Write the holder's maps: den is root in the parent namespace, so any of its ids may be
    /// mapped, several lines at once, and setgroups stays allowed.
    fn map(&self, uids: &[MapLine], gids: &[MapLine]) -> Result<(), RuntimeError> {
        let pid = self.child.id();
        for (file, lines) in [("uid_map", uids), ("gid_map", gids)] {
            let path = PathBuf::from(format!("/proc/{pid}/{file}"));
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| f.write_all(map_text(lines).as_bytes()))
                .map_err(|source| RuntimeError::Io { path, source })?;
        }
        Ok(())
    }

    /// The namespace's path, for the spec.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.child.id()))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Closing its stdin ends `cat`; the kill is for one that would not.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_added_once() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/:/bin/false";
        let added = with_entry(passwd, 1001, "al:x:1001:1001:al:/home/al:/bin/sh").unwrap();
        assert_eq!(
            added,
            "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/:/bin/false\nal:x:1001:1001:al:/home/al:/bin/sh\n"
        );
        assert_eq!(with_entry(&added, 1001, "other"), None);
        assert_eq!(with_entry("", 5, "g:x:5:"), Some("g:x:5:\n".into()));
    }

    #[test]
    fn the_user_is_found_and_root_has_none() {
        assert_eq!(KeepId::for_user(&IdMap::Root), None);
        let k = KeepId::for_user(&IdMap::Single {
            uid: 4242,
            gid: 4343,
            reason: String::new(),
        })
        .unwrap();
        assert_eq!((k.uid, k.gid), (4242, 4343));
        assert!(valid_name(&k.name), "{k:?}");
        assert!(k.home.starts_with('/'));
        assert!(!valid_name("a:b") && !valid_name(""));
    }

    #[test]
    fn a_single_uid_init_may_unshare_a_user_namespace_and_nothing_more() {
        let sec = crate::security::Security::default();
        let caps = sec.capabilities(40);
        let mut filter = sec
            .seccomp(&caps, &crate::security::seccomp::Machine::this(), true)
            .unwrap();
        let refusals = |f: &serde_json::Value| -> Vec<serde_json::Value> {
            f["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| {
                    r["names"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n == "unshare")
                })
                .cloned()
                .collect()
        };
        // docker's policy: unshare refused outright.
        let before = refusals(&filter);
        assert!(
            before
                .iter()
                .any(|r| r["args"].as_array().is_none_or(|a| a.is_empty())),
            "{before:?}"
        );
        let none = std::collections::BTreeMap::new();
        let annotations = become_user_in_init(Some((1002, 1003)), Some(&mut filter), &none);
        assert_eq!(annotations[BECOME_ANNOTATION], "1002:1003");
        let after = refusals(&filter);
        // Every refusal now names a namespace flag, and CLONE_NEWUSER is not one of them.
        assert_eq!(after.len(), OTHER_NAMESPACES.len(), "{after:?}");
        for r in &after {
            let flag = r["args"][0]["value"].as_u64().unwrap();
            assert_ne!(
                flag & libc::CLONE_NEWUSER as u64,
                libc::CLONE_NEWUSER as u64
            );
            assert_eq!(r["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        }
        // What else the rule refused stays refused.
        let setns = filter["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"].as_array().unwrap().iter().any(|n| n == "setns"));
        assert!(setns);
        // No filter (unconfined): only the annotation; no keep-id: nothing.
        assert_eq!(become_user_in_init(Some((1, 1)), None, &none).len(), 1);
        assert!(become_user_in_init(None, Some(&mut filter), &none).is_empty());
        assert_eq!(refusals(&filter).len(), OTHER_NAMESPACES.len());
    }

    #[test]
    fn identity_files_are_written_and_bound() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
        let user = KeepId {
            uid: 1001,
            gid: 100,
            name: "al".into(),
            home: "/home/al".into(),
        };
        let binds = identity_binds(t.path(), &rootfs, &user).unwrap();
        // The image has group 100 already: only passwd is bound.
        assert_eq!(binds.len(), 1);
        assert_eq!(binds[0].destination, "/etc/passwd");
        let text = std::fs::read_to_string(&binds[0].source).unwrap();
        assert!(
            text.ends_with("al:x:1001:100:al:/home/al:/bin/sh\n"),
            "{text}"
        );
    }
}

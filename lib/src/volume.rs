//! Volumes: docker's mount flags, named volumes on disk, and copy-up.
//!
//! Entry points: [`parse_volume_flag`] (`-v`), [`parse_mount_flag`] (`--mount`) and
//! [`parse_tmpfs_flag`] (`--tmpfs`), which all produce a [`MountSpec`]; [`prepare_bind`] (create
//! a missing bind source, or refuse it); [`oci_options`] (the OCI runtime spec's mount options);
//! [`Volumes`] (named volumes: create, list, inspect, remove); [`copy_up`] (seed an empty volume
//! with the image's content).
//!
//! # docker's rules, as implemented here
//!
//! `-v SRC:DST[:OPTS]`, `-v DST`:
//!
//! - SRC starting with `/` or `.` (so `./x`, `../x`, `.`, `.hidden`), or `~`/`~/...` (expanded
//!   with `$HOME`), is a bind mount of a host path; relative paths are made absolute against the
//!   current directory (docker wants absolute paths; newer docker and podman accept `./`, so den
//!   does). Any other SRC is a volume name, `[a-zA-Z0-9][a-zA-Z0-9_.-]+` as docker's local
//!   driver requires (two characters at least).
//! - `-v DST` alone, or an empty SRC (`-v :/data:ro`), is an anonymous volume: a volume with a
//!   random 64-hex name.
//! - DST must be absolute and not `/`; it is cleaned lexically (`/a//b/../c` is `/a/c`).
//! - OPTS, comma-separated: `ro`/`rw`; `z`/`Z` (SELinux relabelling, ignored); `rbind` (the
//!   default) or `bind` (not recursive); `nocopy` (volumes only: no copy-up);
//!   `suid`/`nosuid`/`dev`/`nodev`/`exec`/`noexec` (kept); the propagation modes
//!   `[r]shared`/`[r]slave`/`[r]private` and the consistency modes `cached`/`delegated`/
//!   `consistent` are accepted and ignored. `-v /a:ro` is an error, as in docker: a two-part
//!   spec is SRC:DST.
//! - A bind source that does not exist is created as a directory ([`prepare_bind`]).
//!
//! `--mount` takes CSV fields (`"src=/a,b",dst=/x` quotes a comma), keys case-insensitive:
//! `type=bind|volume|tmpfs` (volume when missing), `source`/`src`, `target`/`destination`/`dst`,
//! `readonly`/`ro[=true|false|1|0]`, `bind-propagation=...` (checked, ignored),
//! `bind-nonrecursive[=bool]`, `bind-recursive=enabled|disabled`, `volume-nocopy[=bool]`,
//! `volume-driver=local`, `tmpfs-size=N[kmgtp]` (bytes, binary units), `tmpfs-mode=OCTAL`,
//! `consistency=...` (ignored). `volume-opt`, `volume-label` and `volume-subpath` are refused (den
//! has only the local driver); any other key is an error naming it, and so are `bind-*`,
//! `volume-*` and `tmpfs-*` keys given to another type. A bind source that does not exist is an
//! error, as in docker; relative bind sources are made absolute against the current directory.
//!
//! `--tmpfs DST[:OPTS]`: OPTS are the kernel's, checked against the flags and the tmpfs keys
//! (`size`, `mode`, `uid`, `gid`, `nr_inodes`, `nr_blocks`, `huge`, `mpol`) and passed on. As in
//! docker, a tmpfs is `noexec,nosuid,nodev` and mode 1777 unless the options say otherwise
//! ([`oci_options`]).
//!
//! # On disk
//!
//! Under the directory den gives [`Volumes::new`] (e.g. `~/.local/share/den/volumes`), docker's
//! layout:
//!
//! ```text
//! volumes/
//!   <name>/
//!     volume.json          name, created, labels, anonymous; written last (temp + fsync + rename)
//!     _data/               the volume's content, what containers see
//!     .copyup-<random>/    transient: copy-up is built here and renamed over an empty _data
//!   .rm-<name>-<random>/   transient: a volume being removed, renamed aside first
//! ```
//!
//! A volume exists once `volume.json` does: [`Volumes::list`] skips dot-entries and directories
//! without it. Creation is `mkdir(<name>)`; a process that loses the race (EEXIST) reads back
//! the winner's `volume.json`, so two `den run -v data:/x` at once share one volume. Removal
//! renames the directory aside before deleting it, so a half-deleted volume is never listed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What went wrong with a mount flag or a volume. Every variant carries the input that failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A `-v`/`--volume` flag that does not parse.
    #[error("invalid volume specification {spec:?}: {reason}")]
    BadSpec { spec: String, reason: String },
    /// A `--mount` flag that does not parse.
    #[error("invalid mount specification {spec:?}: {reason}")]
    BadMount { spec: String, reason: String },
    /// A `--tmpfs` flag that does not parse.
    #[error("invalid tmpfs specification {spec:?}: {reason}")]
    BadTmpfs { spec: String, reason: String },
    /// A volume name docker's local driver would refuse.
    #[error("invalid volume name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    /// `--mount type=bind` with a source that does not exist.
    #[error("bind source path does not exist: {}", path.display())]
    BindSourceMissing { path: PathBuf },
    /// Removal refused: containers use the volume.
    #[error("volume {name} is in use by {}", containers.join(", "))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("no such volume: {name}")]
    NotFound { name: String },
    /// The volume's place is taken by something that is not a volume directory.
    #[error("cannot create volume {name}: {} exists and is not a directory", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl VolumeError {
    /// One sentence on how to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            VolumeError::BadSpec { .. } => {
                "write it as -v SOURCE:DESTINATION[:OPTIONS], where SOURCE \
                 is a host path starting with / or ./ or a volume name, DESTINATION an absolute \
                 path in the container, and OPTIONS e.g. ro"
                    .into()
            }
            VolumeError::BadMount { .. } => "write it as --mount type=bind|volume|tmpfs,\
                 source=SOURCE,target=/path[,readonly]"
                .into(),
            VolumeError::BadTmpfs { .. } => {
                "write it as --tmpfs /path[:size=64m,mode=1777,exec]".into()
            }
            VolumeError::BadName { .. } => "a volume name is at least two letters, digits, '_', \
                 '.' or '-', starting with a letter or digit; to mount a host directory, start \
                 the path with / or ./"
                .into(),
            VolumeError::BindSourceMissing { path } => format!(
                "create it first (mkdir -p {}), or use -v, which creates a missing directory",
                path.display()
            ),
            VolumeError::InUse { containers, .. } => format!(
                "remove the container(s) using it first (den rm -f {}), or force the removal",
                containers.join(" ")
            ),
            VolumeError::NotFound { .. } => "list the volumes with `den volume ls`".into(),
            VolumeError::Exists { path, .. } => {
                format!("move {} out of den's volume directory", path.display())
            }
            VolumeError::Io { path, .. } => format!(
                "check that {} exists and that you may read and write it",
                path.display()
            ),
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Mount specs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// One mount, from `-v`, `--mount` or `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Bind: absolute host path (made absolute against `cwd` by the parser); Volume: the volume
    /// name (a generated 64-hex name for an anonymous `-v /data`); Tmpfs: empty.
    pub source: String,
    /// Absolute, cleaned path in the container; never `/`.
    pub destination: String,
    pub read_only: bool,
    /// Bind and Volume: `rbind` (default) or `bind` first, then kept options (`nosuid`, `noexec`,
    /// ..., and `nocopy` for volumes). Tmpfs: the given options (`size=64m`, `mode=1777`,
    /// `exec`, ...), without `ro`/`rw`, which are `read_only`.
    pub options: Vec<String>,
    /// Volume: the name was generated (`-v /data`, `-v :/data`, `--mount type=volume` without
    /// source); create it with `Volumes::get_or_create(name, true)`.
    #[serde(default)]
    pub anonymous: bool,
    /// The spec came from `--mount`: a missing bind source is an error rather than created.
    /// Pass it to [`prepare_bind`].
    #[serde(default)]
    pub from_mount_flag: bool,
}

impl MountSpec {
    /// The volume asked not to be seeded with the image's content (`nocopy`).
    pub fn nocopy(&self) -> bool {
        self.options.iter().any(|o| o == "nocopy")
    }
}

/// Parses `-v`/`--volume`. Does not touch the disk; relative bind sources are made absolute
/// against `cwd`, `~` is expanded with `$HOME`.
pub fn parse_volume_flag(s: &str, cwd: &Path) -> Result<MountSpec, VolumeError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    parse_volume_flag_with_home(s, cwd, home.as_deref())
}

fn parse_volume_flag_with_home(
    s: &str,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<MountSpec, VolumeError> {
    let bad = |reason: String| VolumeError::BadSpec {
        spec: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, None),
        [src, dst] => {
            if !dst.starts_with('/') && !dst.is_empty() && dst.split(',').all(is_volume_option) {
                return Err(bad(format!(
                    "{dst:?} is not a destination; write SOURCE:DESTINATION:{dst}, or \
                     :DESTINATION:{dst} for an anonymous volume"
                )));
            }
            (*src, *dst, None)
        }
        [src, dst, opts] => (*src, *dst, Some(*opts)),
        _ => return Err(bad("too many colons".into())),
    };
    let destination = check_destination(dst).map_err(bad)?;
    let (kind, source, anonymous) = if src.is_empty() {
        (MountKind::Volume, random_hex(32), true)
    } else if is_host_path(src) {
        let path = resolve_host_path(src, cwd, home).map_err(bad)?;
        (MountKind::Bind, path, false)
    } else {
        check_volume_name(src)?;
        (MountKind::Volume, src.to_string(), false)
    };

    let mut read_only: Option<bool> = None;
    let mut recursion: Option<&str> = None;
    let mut ignored: Option<&str> = None;
    let mut kept: Vec<String> = Vec::new();
    for opt in opts
        .map(|o| o.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        match opt {
            "" => return Err(bad("empty option".into())),
            "ro" | "rw" => {
                let ro = opt == "ro";
                if read_only.is_some_and(|r| r != ro) {
                    return Err(bad("conflicting options ro and rw".into()));
                }
                read_only = Some(ro);
            }
            "z" | "Z" | "cached" | "delegated" | "consistent" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                if ignored.is_some_and(|p| p != opt) {
                    return Err(bad(format!(
                        "conflicting propagation modes {} and {opt}",
                        ignored.unwrap_or_default()
                    )));
                }
                ignored = Some(opt);
            }
            "rbind" | "bind" => {
                if recursion.is_some_and(|r| r != opt) {
                    return Err(bad("conflicting options rbind and bind".into()));
                }
                recursion = Some(opt);
            }
            "nocopy" => {
                if kind != MountKind::Volume {
                    return Err(bad("nocopy applies only to volumes".into()));
                }
                push_unique(&mut kept, opt);
            }
            "suid" | "nosuid" | "dev" | "nodev" | "exec" | "noexec" => {
                let other = opt
                    .strip_prefix("no")
                    .map_or(format!("no{opt}"), str::to_string);
                if kept.contains(&other) {
                    return Err(bad(format!("conflicting options {other} and {opt}")));
                }
                push_unique(&mut kept, opt);
            }
            _ => return Err(bad(format!("unknown option {opt:?}"))),
        }
    }
    let mut options = vec![recursion.unwrap_or("rbind").to_string()];
    options.extend(kept);
    Ok(MountSpec {
        kind,
        source,
        destination,
        read_only: read_only.unwrap_or(false),
        options,
        anonymous,
        from_mount_flag: false,
    })
}

fn is_volume_option(o: &str) -> bool {
    matches!(
        o,
        "ro" | "rw"
            | "z"
            | "Z"
            | "rbind"
            | "bind"
            | "nocopy"
            | "suid"
            | "nosuid"
            | "dev"
            | "nodev"
            | "exec"
            | "noexec"
            | "shared"
            | "rshared"
            | "slave"
            | "rslave"
            | "private"
            | "rprivate"
            | "cached"
            | "delegated"
            | "consistent"
    )
}

fn push_unique(v: &mut Vec<String>, o: &str) {
    if !v.iter().any(|x| x == o) {
        v.push(o.to_string());
    }
}

/// Parses `--mount`. Does not touch the disk.
pub fn parse_mount_flag(s: &str, cwd: &Path) -> Result<MountSpec, VolumeError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    parse_mount_flag_with_home(s, cwd, home.as_deref())
}

fn parse_mount_flag_with_home(
    s: &str,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<MountSpec, VolumeError> {
    let bad = |reason: String| VolumeError::BadMount {
        spec: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let fields = split_csv(s).map_err(|r| bad(r.into()))?;

    let mut kind: Option<MountKind> = None;
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut read_only = false;
    let mut recursive = true;
    let mut nocopy = false;
    let mut tmpfs: Vec<String> = Vec::new();
    // The first key of each family that only applies to one type, to refuse mixing.
    let (mut bind_key, mut volume_key, mut tmpfs_key) = (None, None, None);

    for field in &fields {
        if field.is_empty() {
            return Err(bad("empty field".into()));
        }
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, VolumeError> {
            v.map(str::to_string)
                .ok_or_else(|| bad(format!("key {key:?} needs a value")))
        };
        let boolean = |v: Option<&str>| -> Result<bool, VolumeError> {
            match v {
                None => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| {
                    bad(format!("invalid value {v:?} for {key}: use true or false"))
                }),
            }
        };
        if key.starts_with("bind-") {
            bind_key.get_or_insert(key.clone());
        } else if key.starts_with("volume-") {
            volume_key.get_or_insert(key.clone());
        } else if key.starts_with("tmpfs-") {
            tmpfs_key.get_or_insert(key.clone());
        }
        match key.as_str() {
            "type" => {
                kind = Some(match need(value)?.as_str() {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    t => return Err(bad(format!("type {t:?} is not supported"))),
                })
            }
            "source" | "src" => source = Some(need(value)?),
            "target" | "destination" | "dst" => target = Some(need(value)?),
            "readonly" | "ro" => read_only = boolean(value)?,
            "bind-propagation" => {
                let v = need(value)?;
                if !matches!(
                    v.as_str(),
                    "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                ) {
                    return Err(bad(format!("invalid bind-propagation {v:?}")));
                }
            }
            "bind-nonrecursive" => recursive = !boolean(value)?,
            "bind-recursive" => match need(value)?.as_str() {
                "enabled" => recursive = true,
                "disabled" => recursive = false,
                v => return Err(bad(format!("bind-recursive={v} is not supported"))),
            },
            "volume-nocopy" => nocopy = boolean(value)?,
            "volume-driver" => {
                let v = need(value)?;
                if v != "local" {
                    return Err(bad(format!(
                        "volume driver {v:?} is not supported: den has only the local driver"
                    )));
                }
            }
            "volume-opt" | "volume-label" | "volume-subpath" => {
                return Err(bad(format!("{key} is not supported")));
            }
            "tmpfs-size" => {
                let v = need(value)?;
                let bytes =
                    ram_in_bytes(&v).ok_or_else(|| bad(format!("invalid tmpfs-size {v:?}")))?;
                tmpfs.push(format!("size={bytes}"));
            }
            "tmpfs-mode" => {
                let v = need(value)?;
                let mode = u32::from_str_radix(&v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid tmpfs-mode {v:?}: use octal")))?;
                tmpfs.push(format!("mode={mode:o}"));
            }
            "consistency" => {}
            _ => return Err(bad(format!("unknown key {key:?}"))),
        }
    }

    let kind = kind.unwrap_or(MountKind::Volume);
    for (family, key, applies) in [
        ("bind", &bind_key, MountKind::Bind),
        ("volume", &volume_key, MountKind::Volume),
        ("tmpfs", &tmpfs_key, MountKind::Tmpfs),
    ] {
        if let Some(key) = key
            && kind != applies
        {
            return Err(bad(format!(
                "{key} applies only to type={family}, not type={}",
                kind_name(&kind)
            )));
        }
    }
    let target = target.ok_or_else(|| bad("target is required".into()))?;
    let destination = check_destination(&target).map_err(bad)?;
    let source = source.unwrap_or_default();
    let recursion = if recursive { "rbind" } else { "bind" };

    let (source, anonymous, options) = match kind {
        MountKind::Bind => {
            if source.is_empty() {
                return Err(bad("source is required for type=bind".into()));
            }
            let path = resolve_host_path(&source, cwd, home).map_err(bad)?;
            (path, false, vec![recursion.to_string()])
        }
        MountKind::Volume => {
            let mut options = vec![recursion.to_string()];
            if nocopy {
                options.push("nocopy".into());
            }
            if source.is_empty() {
                (random_hex(32), true, options)
            } else {
                if is_host_path(&source) || source.contains('/') {
                    return Err(bad(format!(
                        "source {source:?} is a path; use type=bind to mount a host directory"
                    )));
                }
                check_volume_name(&source)?;
                (source, false, options)
            }
        }
        MountKind::Tmpfs => {
            if !source.is_empty() {
                return Err(bad("source is not allowed for type=tmpfs".into()));
            }
            (String::new(), false, tmpfs)
        }
    };
    Ok(MountSpec {
        kind,
        source,
        destination,
        read_only,
        options,
        anonymous,
        from_mount_flag: true,
    })
}

fn kind_name(k: &MountKind) -> &'static str {
    match k {
        MountKind::Bind => "bind",
        MountKind::Volume => "volume",
        MountKind::Tmpfs => "tmpfs",
    }
}

/// Go's `strconv.ParseBool`, which docker uses.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Splits one CSV record as Go's `encoding/csv` does (docker parses `--mount` with it): fields
/// may be quoted, `""` inside quotes is a quote, a bare quote elsewhere is an error.
fn split_csv(s: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_start = true;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c != '"' {
                cur.push(c);
            } else if chars.peek() == Some(&'"') {
                chars.next();
                cur.push('"');
            } else {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote");
                }
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            at_start = true;
        } else if c == '"' {
            if !at_start {
                return Err("a quote inside an unquoted field");
            }
            quoted = true;
            at_start = false;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return Err("an unterminated quote");
    }
    fields.push(cur);
    Ok(fields)
}

/// docker's `units.RAMInBytes`: `64m`, `1.5g`, `512MiB`, `1024`; binary units.
fn ram_in_bytes(v: &str) -> Option<u64> {
    let digits_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, rest) = v.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let num: f64 = num.parse().ok()?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut unit = rest.as_str();
    let mut mult: u64 = 1;
    if let Some(c) = unit.chars().next() {
        let exp = "kmgtp".find(c);
        if let Some(exp) = exp {
            mult = 1024u64.pow(exp as u32 + 1);
            unit = &unit[1..];
        }
    }
    let unit = unit.strip_prefix('i').unwrap_or(unit);
    let unit = unit.strip_prefix('b').unwrap_or(unit);
    if !unit.is_empty() {
        return None;
    }
    let bytes = num * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Parses `--tmpfs DST[:OPTS]`.
pub fn parse_tmpfs_flag(s: &str) -> Result<MountSpec, VolumeError> {
    let bad = |reason: String| VolumeError::BadTmpfs {
        spec: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let (dst, opts) = match s.split_once(':') {
        Some((d, o)) => (d, o),
        None => (s, ""),
    };
    let destination = check_destination(dst).map_err(bad)?;
    let mut read_only = false;
    let mut options = Vec::new();
    if !opts.is_empty() {
        for opt in opts.split(',') {
            match opt.split_once('=') {
                None => match opt {
                    "" => return Err(bad("empty option".into())),
                    "ro" => read_only = true,
                    "rw" => read_only = false,
                    _ if is_tmpfs_flag(opt) => options.push(opt.to_string()),
                    _ if is_tmpfs_key(opt) => {
                        return Err(bad(format!("option {opt:?} needs a value: {opt}=...")));
                    }
                    _ => return Err(bad(format!("unknown option {opt:?}"))),
                },
                Some((key, value)) => {
                    if !is_tmpfs_key(key) {
                        return Err(bad(format!("unknown option {key:?}")));
                    }
                    if !tmpfs_value_ok(key, value) {
                        return Err(bad(format!("invalid value {value:?} for {key}")));
                    }
                    options.push(opt.to_string());
                }
            }
        }
    }
    Ok(MountSpec {
        kind: MountKind::Tmpfs,
        source: String::new(),
        destination,
        read_only,
        options,
        anonymous: false,
        from_mount_flag: false,
    })
}

fn is_tmpfs_flag(o: &str) -> bool {
    matches!(
        o,
        "suid"
            | "nosuid"
            | "dev"
            | "nodev"
            | "exec"
            | "noexec"
            | "sync"
            | "async"
            | "dirsync"
            | "atime"
            | "noatime"
            | "diratime"
            | "nodiratime"
            | "relatime"
            | "norelatime"
            | "strictatime"
            | "nostrictatime"
            | "mand"
            | "nomand"
            | "noswap"
    )
}

fn is_tmpfs_key(k: &str) -> bool {
    matches!(
        k,
        "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "huge" | "mpol"
    )
}

fn tmpfs_value_ok(key: &str, v: &str) -> bool {
    // The kernel's memparse: digits, then one optional suffix.
    let memparse = |v: &str, percent: bool| {
        let body = v
            .strip_suffix(|c: char| "kKmMgGtTpPeE".contains(c) || (percent && c == '%'))
            .unwrap_or(v);
        !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())
    };
    match key {
        "size" | "nr_blocks" => memparse(v, true),
        "nr_inodes" => memparse(v, false),
        "mode" => u32::from_str_radix(v, 8).is_ok_and(|m| m <= 0o7777),
        "uid" | "gid" => v.parse::<u32>().is_ok(),
        "huge" => matches!(
            v,
            "never" | "always" | "within_size" | "advise" | "deny" | "force"
        ),
        _ => !v.is_empty(),
    }
}

/// Absolute, cleaned, not `/`.
fn check_destination(dst: &str) -> Result<String, String> {
    if dst.is_empty() {
        return Err("the destination is empty".into());
    }
    if !dst.starts_with('/') {
        return Err(format!(
            "destination {dst:?} is not an absolute path in the container"
        ));
    }
    let clean = clean_path(dst);
    if clean == "/" {
        return Err("destination can't be \"/\"".into());
    }
    Ok(clean)
}

/// `-v`'s test for a host path rather than a volume name.
fn is_host_path(src: &str) -> bool {
    src.starts_with('/') || src.starts_with('.') || src == "~" || src.starts_with("~/")
}

/// Expands `~`, makes relative paths absolute against `cwd`, cleans.
fn resolve_host_path(src: &str, cwd: &Path, home: Option<&Path>) -> Result<String, String> {
    let joined = if src == "~" || src.starts_with("~/") {
        let home = home.ok_or("cannot expand ~: HOME is not set")?;
        home.join(src[1..].trim_start_matches('/'))
    } else if src.starts_with('/') {
        PathBuf::from(src)
    } else {
        cwd.join(src)
    };
    let s = joined
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", joined.display()))?;
    if !s.starts_with('/') {
        return Err(format!("cannot make {src:?} an absolute path"));
    }
    Ok(clean_path(s))
}

/// Lexical cleaning of an absolute path: no `.`, `..`, empty components or trailing slash.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn check_volume_name(name: &str) -> Result<(), VolumeError> {
    let bad = |reason: &str| {
        Err(VolumeError::BadName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return bad("it is empty"),
        Some(b) if !b.is_ascii_alphanumeric() => {
            return bad("it must start with a letter or digit");
        }
        Some(_) => {}
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return bad("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    if name.len() < 2 {
        return bad("it is too short: names have at least two characters");
    }
    if name.len() > 255 {
        return bad("it is longer than 255 characters");
    }
    Ok(())
}

/// Makes sure a bind source exists: `-v` creates a missing one as a directory (as docker does),
/// `--mount` refuses it ([`VolumeError::BindSourceMissing`]). Volumes and tmpfs: nothing to do.
/// Pass `m.from_mount_flag` as `from_mount_flag`.
pub fn prepare_bind(m: &MountSpec, from_mount_flag: bool) -> Result<(), VolumeError> {
    if m.kind != MountKind::Bind {
        return Ok(());
    }
    let path = Path::new(&m.source);
    match fs::symlink_metadata(path) {
        // A symlink (even a dangling one) is the runtime's to resolve.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if from_mount_flag {
                return Err(VolumeError::BindSourceMissing {
                    path: path.to_path_buf(),
                });
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path)
                .map_err(io_err(path))
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The options of the OCI runtime spec's mount for `m`.
///
/// Bind and volume: `rbind` (or `bind`), `ro` when read-only, then the kept options (`nocopy`
/// is den's, not the runtime's, and is dropped). Tmpfs: docker's defaults `nosuid`, `nodev`,
/// `noexec` (each replaced by its opposite when given, e.g. `exec`), `mode=1777` unless a mode
/// is given, the size when given, `ro` when read-only, then the other given options; a key given
/// twice counts once, the last.
pub fn oci_options(m: &MountSpec) -> Vec<String> {
    match m.kind {
        MountKind::Bind | MountKind::Volume => {
            let recursion = if m.options.iter().any(|o| o == "bind") {
                "bind"
            } else {
                "rbind"
            };
            let mut out = vec![recursion.to_string()];
            if m.read_only {
                out.push("ro".into());
            }
            for o in &m.options {
                if !matches!(o.as_str(), "rbind" | "bind" | "nocopy") {
                    push_unique(&mut out, o);
                }
            }
            out
        }
        MountKind::Tmpfs => {
            let last_value = |key: &str| {
                m.options
                    .iter()
                    .rev()
                    .find(|o| o.split_once('=').is_some_and(|(k, _)| k == key))
                    .cloned()
            };
            let mut out = Vec::new();
            for (default, opposite) in [("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")] {
                // The later of the two, as the kernel would apply them.
                let pos = |o: &str| m.options.iter().rposition(|x| x == o);
                let pick = match (pos(default), pos(opposite)) {
                    (_, None) => default,
                    (None, Some(_)) => opposite,
                    (Some(d), Some(o)) if d > o => default,
                    _ => opposite,
                };
                out.push(pick.to_string());
            }
            out.push(last_value("mode").unwrap_or_else(|| "mode=1777".into()));
            if let Some(size) = last_value("size") {
                out.push(size);
            }
            if m.read_only {
                out.push("ro".into());
            }
            let mut seen_keys = vec!["mode", "size"];
            for o in &m.options {
                match o.split_once('=') {
                    Some((key, _)) => {
                        if !seen_keys.contains(&key) {
                            seen_keys.push(key);
                            out.push(last_value(key).unwrap_or_else(|| o.clone()));
                        }
                    }
                    None => {
                        if !matches!(
                            o.as_str(),
                            "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" | "ro" | "rw"
                        ) {
                            push_unique(&mut out, o);
                        }
                    }
                }
            }
            out
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Named volumes
// ---------------------------------------------------------------------------------------------

const META: &str = "volume.json";
const DATA: &str = "_data";

/// A named volume's record, `<dir>/<name>/volume.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The name was generated (`-v /data`); docker's `rm -v` removes such volumes with their
    /// container.
    #[serde(default)]
    pub anonymous: bool,
}

/// The named volumes under one directory.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// Does not touch the disk; the directory is created with the first volume.
    pub fn new(dir: &Path) -> Volumes {
        Volumes {
            dir: dir.to_path_buf(),
        }
    }

    /// Creates a volume, or returns the existing one of that name (docker's create is
    /// idempotent; the existing volume's labels are kept). `None`: a random 64-hex name,
    /// anonymous.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        match name {
            Some(name) => self.create_inner(name, labels, false),
            None => self.create_inner(&random_hex(32), labels, true),
        }
    }

    /// The volume `name`, created (without labels) if it does not exist.
    pub fn get_or_create(&self, name: &str, anonymous: bool) -> Result<Volume, VolumeError> {
        self.create_inner(name, BTreeMap::new(), anonymous)
    }

    /// Where the volume's content is: `<dir>/<name>/_data`, docker's layout.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    /// Every volume, sorted by name. Half-created and half-removed volumes are not listed.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || check_volume_name(&name).is_err() {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match read_meta(&entry.path(), &name) {
                Ok(v) => out.push(v),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&entry.path().join(META))(e)),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume, VolumeError> {
        let not_found = || VolumeError::NotFound {
            name: name.to_string(),
        };
        check_volume_name(name).map_err(|_| not_found())?;
        let vdir = self.dir.join(name);
        match read_meta(&vdir, name) {
            Ok(v) => Ok(v),
            Err(e) if is_not_found(&e) => Err(not_found()),
            Err(e) => Err(io_err(&vdir.join(META))(e)),
        }
    }

    /// Removes the volume and its content. `in_use` names the containers that use it: removal
    /// is refused ([`VolumeError::InUse`]) when there are any, unless `force`. With `force`, a
    /// volume that does not exist is not an error (`docker volume rm -f`).
    pub fn remove(&self, name: &str, in_use: &[String], force: bool) -> Result<(), VolumeError> {
        let not_found = || {
            if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound {
                    name: name.to_string(),
                })
            }
        };
        if check_volume_name(name).is_err() {
            return not_found();
        }
        let vdir = self.dir.join(name);
        match fs::symlink_metadata(&vdir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return not_found(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return not_found(),
            Err(e) => return Err(io_err(&vdir)(e)),
        }
        if !in_use.is_empty() && !force {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                containers: in_use.to_vec(),
            });
        }
        let aside = self.dir.join(format!(".rm-{name}-{}", random_hex(4)));
        match fs::rename(&vdir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return not_found(),
            Err(e) => return Err(io_err(&vdir)(e)),
        }
        sync_dir(&self.dir);
        remove_tree(&aside)
    }

    fn create_inner(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, VolumeError> {
        check_volume_name(name)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err(&self.dir))?;
        let vdir = self.dir.join(name);
        let fresh = || Volume {
            name: name.to_string(),
            created: Utc::now(),
            labels: labels.clone(),
            anonymous,
        };
        // A few rounds in case another process removes the volume while we wait for it.
        for _ in 0..10 {
            match fs::DirBuilder::new().mode(0o755).create(&vdir) {
                Ok(()) => {
                    let v = fresh();
                    self.finish(&vdir, &v)?;
                    return Ok(v);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&vdir)(e)),
            }
            // Someone else's: wait for its volume.json, written last.
            match self.wait_for_meta(&vdir, name)? {
                Waited::Found(v) => return Ok(v),
                Waited::Gone => continue,
                Waited::Stale => {
                    // Left by a den that died half-way: adopt it.
                    let v = fresh();
                    self.finish(&vdir, &v)?;
                    return Ok(v);
                }
            }
        }
        Err(VolumeError::Io {
            path: vdir,
            source: io::Error::other("the volume kept disappearing while being created"),
        })
    }

    /// Creates `_data` and writes `volume.json`, which makes the volume exist.
    fn finish(&self, vdir: &Path, v: &Volume) -> Result<(), VolumeError> {
        let data = vdir.join(DATA);
        match fs::DirBuilder::new().mode(0o755).create(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&data)(e)),
        }
        write_meta(vdir, v)?;
        sync_dir(&self.dir);
        Ok(())
    }

    fn wait_for_meta(&self, vdir: &Path, name: &str) -> Result<Waited, VolumeError> {
        for _ in 0..100 {
            match fs::symlink_metadata(vdir) {
                Ok(m) if !m.is_dir() => {
                    return Err(VolumeError::Exists {
                        name: name.to_string(),
                        path: vdir.to_path_buf(),
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Waited::Gone),
                Err(e) => return Err(io_err(vdir)(e)),
            }
            match read_meta(vdir, name) {
                Ok(v) => return Ok(Waited::Found(v)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(io_err(&vdir.join(META))(e)),
            }
        }
        Ok(Waited::Stale)
    }
}

enum Waited {
    Found(Volume),
    Gone,
    Stale,
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn read_meta(vdir: &Path, name: &str) -> io::Result<Volume> {
    let bytes = fs::read(vdir.join(META))?;
    let mut v: Volume = serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // The directory's name is the volume's name.
    v.name = name.to_string();
    Ok(v)
}

/// `volume.json` via a temporary file, fsync and rename: readers see all of it or none.
fn write_meta(vdir: &Path, v: &Volume) -> Result<(), VolumeError> {
    let tmp = vdir.join(format!(".{META}.tmp-{}", random_hex(6)));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        let mut bytes = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
        bytes.push(b'\n');
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, vdir.join(META))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&vdir.join(META))(e));
    }
    sync_dir(vdir);
    Ok(())
}

/// fsync a directory so a rename or mkdir in it lasts; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `remove_dir_all`, retrying once after making the tree's directories writable (content
/// written by a container may have read-only directories).
fn remove_tree(path: &Path) -> Result<(), VolumeError> {
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_writable(path);
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn make_writable(path: &Path) {
    let Ok(m) = fs::symlink_metadata(path) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(m.mode() & 0o7777 | 0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}

/// `n` random bytes as hex: from the kernel, or, should `/dev/urandom` be unreadable, from std's
/// per-process random hash keys mixed with the time.
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let from_kernel = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !from_kernel {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.write_usize(i);
            let bytes = h.finish().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Copy-up
// ---------------------------------------------------------------------------------------------

/// docker's copy-up: seeds an empty volume with the content of the image directory it is first
/// mounted over. `src` is that directory's host path in the container's rootfs; `data_dir` the
/// volume's `_data`.
///
/// Nothing happens unless `data_dir` is empty and `src` is a directory (a missing `src`, or a
/// symlink, is left alone). As in docker, the volume takes `src`'s owner and mode even when `src`
/// is empty (`RUN mkdir /data && chown app /data` + `VOLUME /data` gives a volume `app` owns).
/// Content keeps modes, times, owners (best effort: ids den cannot give are left as they are),
/// symlinks and hard links within `src`. Sockets, FIFOs and device nodes are skipped; extended
/// attributes are not copied.
///
/// The copy is built in a sibling `.copyup-<random>` directory and renamed over the empty
/// `data_dir`, so a copy cut short is never seen as the volume's content, and when two dens race
/// the first rename wins and the other copy is dropped. When `data_dir` is a mount point the copy
/// is made in place instead.
pub fn copy_up(src: &Path, data_dir: &Path) -> Result<(), VolumeError> {
    let src_meta = match fs::symlink_metadata(src) {
        Ok(m) => m,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(io_err(src)(e)),
    };
    if !src_meta.is_dir() || !dir_is_empty(data_dir)? {
        return Ok(());
    }
    if dir_is_empty(src)? {
        apply_meta(data_dir, &src_meta);
        return Ok(());
    }
    let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return copy_in_place(src, data_dir, &src_meta);
    };
    let staging = parent.join(format!(".copyup-{}", random_hex(6)));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io_err(&staging))?;
    if let Err(e) = copy_tree(src, &staging, &mut HashMap::new()) {
        let _ = remove_tree(&staging);
        return Err(e);
    }
    apply_meta(&staging, &src_meta);
    match fs::rename(&staging, data_dir) {
        Ok(()) => {
            sync_dir(parent);
            Ok(())
        }
        Err(e) => {
            let _ = remove_tree(&staging);
            match e.raw_os_error() {
                // Another den filled the volume first.
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => Ok(()),
                // A mount point cannot be replaced.
                Some(libc::EBUSY) | Some(libc::EXDEV) => copy_in_place(src, data_dir, &src_meta),
                _ => Err(io_err(data_dir)(e)),
            }
        }
    }
}

fn copy_in_place(src: &Path, data_dir: &Path, src_meta: &fs::Metadata) -> Result<(), VolumeError> {
    copy_tree(src, data_dir, &mut HashMap::new())?;
    apply_meta(data_dir, src_meta);
    Ok(())
}

fn dir_is_empty(dir: &Path) -> Result<bool, VolumeError> {
    let mut entries = fs::read_dir(dir).map_err(io_err(dir))?;
    Ok(entries.next().is_none())
}

/// Copies the content of `src` into the existing directory `dst`. `links` maps (device, inode)
/// of multiply-linked files already copied to their copy.
fn copy_tree(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), VolumeError> {
    for entry in fs::read_dir(src).map_err(io_err(src))? {
        let entry = entry.map_err(io_err(src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(io_err(&from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&to)
                .map_err(io_err(&to))?;
            copy_tree(&from, &to, links)?;
            apply_meta(&to, &meta);
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err(&from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io_err(&to))?;
            let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1
                && let Some(first) = links.get(&key)
            {
                fs::hard_link(first, &to).map_err(io_err(&to))?;
                continue;
            }
            copy_file(&from, &to, &meta)?;
            if meta.nlink() > 1 {
                links.insert(key, to);
            }
        }
        // Sockets, FIFOs, devices: skipped.
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), VolumeError> {
    let mut src = fs::File::open(from).map_err(io_err(from))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_err(to))?;
    io::copy(&mut src, &mut dst).map_err(io_err(to))?;
    // Owner before mode: chown clears set-id bits.
    let _ = std::os::unix::fs::fchown(&dst, Some(meta.uid()), Some(meta.gid()));
    let _ = dst.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777));
    let _ = dst.set_times(file_times(meta));
    Ok(())
}

/// Owner, mode and times of a directory, best effort.
fn apply_meta(path: &Path, meta: &fs::Metadata) {
    let _ = std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()));
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777));
    if let Ok(d) = fs::File::open(path) {
        let _ = d.set_times(file_times(meta));
    }
}

fn file_times(meta: &fs::Metadata) -> fs::FileTimes {
    let mut t = fs::FileTimes::new();
    if let Ok(a) = meta.accessed() {
        t = t.set_accessed(a);
    }
    if let Ok(m) = meta.modified() {
        t = t.set_modified(m);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const CWD: &str = "/work/proj";

    fn v(s: &str) -> Result<MountSpec, VolumeError> {
        parse_volume_flag_with_home(s, Path::new(CWD), Some(Path::new("/home/u")))
    }
    fn m(s: &str) -> Result<MountSpec, VolumeError> {
        parse_mount_flag_with_home(s, Path::new(CWD), Some(Path::new("/home/u")))
    }
    fn reason(e: VolumeError) -> String {
        match e {
            VolumeError::BadSpec { reason, .. }
            | VolumeError::BadMount { reason, .. }
            | VolumeError::BadTmpfs { reason, .. }
            | VolumeError::BadName { reason, .. } => reason,
            e => panic!("not a parse error: {e}"),
        }
    }
    fn is_hex64(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    // ---- -v ----

    #[test]
    fn volume_flag_absolute_bind() {
        let s = v("/host/dir:/data").unwrap();
        assert_eq!(s.kind, MountKind::Bind);
        assert_eq!(s.source, "/host/dir");
        assert_eq!(s.destination, "/data");
        assert!(!s.read_only);
        assert_eq!(s.options, strs(&["rbind"]));
        assert!(!s.anonymous && !s.from_mount_flag);
    }

    #[test]
    fn volume_flag_relative_binds_resolve_against_cwd() {
        assert_eq!(v("./src:/src").unwrap().source, "/work/proj/src");
        assert_eq!(v("../other:/o").unwrap().source, "/work/other");
        assert_eq!(v(".:/app").unwrap().source, "/work/proj");
        assert_eq!(v("..:/app").unwrap().source, "/work");
        assert_eq!(v(".hidden:/h").unwrap().source, "/work/proj/.hidden");
        assert_eq!(v("./a/./b//c/:/x").unwrap().source, "/work/proj/a/b/c");
        assert_eq!(v("./x:/x").unwrap().kind, MountKind::Bind);
    }

    #[test]
    fn volume_flag_tilde_expands_home() {
        assert_eq!(v("~/code:/code").unwrap().source, "/home/u/code");
        assert_eq!(v("~:/h").unwrap().source, "/home/u");
        let e = parse_volume_flag_with_home("~/x:/x", Path::new(CWD), None).unwrap_err();
        assert!(reason(e).contains("HOME"));
    }

    #[test]
    fn volume_flag_named_volume() {
        let s = v("my-data_1.0:/var/lib/db").unwrap();
        assert_eq!(s.kind, MountKind::Volume);
        assert_eq!(s.source, "my-data_1.0");
        assert_eq!(s.destination, "/var/lib/db");
        assert!(!s.anonymous);
        assert_eq!(s.options, strs(&["rbind"]));
    }

    #[test]
    fn volume_flag_anonymous() {
        let a = v("/data").unwrap();
        assert_eq!(a.kind, MountKind::Volume);
        assert!(a.anonymous);
        assert!(is_hex64(&a.source), "{}", a.source);
        assert_eq!(a.destination, "/data");
        let b = v("/data").unwrap();
        assert_ne!(a.source, b.source);
        // Empty source: anonymous with options.
        let c = v(":/data:ro").unwrap();
        assert!(c.anonymous && c.read_only && is_hex64(&c.source));
    }

    #[test]
    fn volume_flag_options() {
        let s = v("/a:/b:ro").unwrap();
        assert!(s.read_only);
        assert!(!v("/a:/b:rw").unwrap().read_only);
        let s = v("/a:/b:ro,Z,z,nosuid,noexec,nodev").unwrap();
        assert!(s.read_only);
        assert_eq!(s.options, strs(&["rbind", "nosuid", "noexec", "nodev"]));
        assert_eq!(v("/a:/b:bind").unwrap().options, strs(&["bind"]));
        assert_eq!(
            v("/a:/b:rbind,suid,dev,exec").unwrap().options,
            strs(&["rbind", "suid", "dev", "exec"])
        );
        // Ignored: propagation and consistency.
        assert_eq!(v("/a:/b:rslave,cached").unwrap().options, strs(&["rbind"]));
        let s = v("vol:/b:nocopy,ro").unwrap();
        assert_eq!(s.options, strs(&["rbind", "nocopy"]));
        assert!(s.nocopy() && s.read_only);
        // Duplicates are harmless.
        assert_eq!(
            v("/a:/b:ro,ro,nosuid,nosuid").unwrap().options,
            strs(&["rbind", "nosuid"])
        );
    }

    #[test]
    fn volume_flag_destination_is_cleaned() {
        assert_eq!(v("/a:/b/./c//d/").unwrap().destination, "/b/c/d");
        assert_eq!(v("/a:/b/../c").unwrap().destination, "/c");
    }

    #[test]
    fn volume_flag_errors() {
        let e = v("").unwrap_err();
        assert!(matches!(e, VolumeError::BadSpec { .. }));
        assert!(reason(v("/a:data").unwrap_err()).contains("absolute"));
        assert!(reason(v("data").unwrap_err()).contains("absolute"));
        assert!(reason(v("/a:/").unwrap_err()).contains("\"/\""));
        assert!(reason(v("/a:/b/..").unwrap_err()).contains("\"/\""));
        assert!(reason(v("/a:").unwrap_err()).contains("empty"));
        assert!(reason(v("/a:/b:c:d").unwrap_err()).contains("too many colons"));
        assert!(reason(v("/a:/b:bogus").unwrap_err()).contains("\"bogus\""));
        assert!(reason(v("/a:/b:").unwrap_err()).contains("empty option"));
        assert!(reason(v("/a:/b:ro,").unwrap_err()).contains("empty option"));
        assert!(reason(v("/a:/b:ro,rw").unwrap_err()).contains("conflicting"));
        assert!(reason(v("/a:/b:bind,rbind").unwrap_err()).contains("conflicting"));
        assert!(reason(v("/a:/b:exec,noexec").unwrap_err()).contains("conflicting"));
        assert!(reason(v("/a:/b:shared,private").unwrap_err()).contains("conflicting"));
        assert!(reason(v("/a:/b:nocopy").unwrap_err()).contains("nocopy"));
        // docker: a two-part spec is SRC:DST, so /a:ro is an error.
        assert!(reason(v("/a:ro").unwrap_err()).contains("not a destination"));
        let e = v("/a:/b:c:d").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid volume specification \"/a:/b:c:d\": too many colons"
        );
        assert!(e.hint().is_some());
    }

    #[test]
    fn volume_flag_bad_volume_names() {
        for (spec, name) in [
            ("my vol:/x", "my vol"),
            ("a/b:/x", "a/b"),
            ("-x:/x", "-x"),
            ("_x:/x", "_x"),
            ("a:/x", "a"),
            ("vol$:/x", "vol$"),
        ] {
            match v(spec).unwrap_err() {
                VolumeError::BadName { name: n, .. } => assert_eq!(n, name, "{spec}"),
                e => panic!("{spec}: {e}"),
            }
        }
        let e = v("a/b:/x").unwrap_err();
        assert!(e.to_string().contains("\"a/b\""), "{e}");
        assert!(e.hint().unwrap().contains("./"));
        let long = format!("{}:/x", "a".repeat(256));
        assert!(reason(v(&long).unwrap_err()).contains("255"));
    }

    // ---- --mount ----

    #[test]
    fn mount_flag_bind() {
        let s = m("type=bind,source=/h,target=/c").unwrap();
        assert_eq!(s.kind, MountKind::Bind);
        assert_eq!((s.source.as_str(), s.destination.as_str()), ("/h", "/c"));
        assert!(!s.read_only && s.from_mount_flag && !s.anonymous);
        assert_eq!(s.options, strs(&["rbind"]));
        let s = m("type=bind,src=./rel,dst=/c,readonly").unwrap();
        assert_eq!(s.source, "/work/proj/rel");
        assert!(s.read_only);
        assert_eq!(
            m("type=bind,src=rel,destination=/c").unwrap().source,
            "/work/proj/rel"
        );
        assert_eq!(m("type=bind,src=~/x,dst=/c").unwrap().source, "/home/u/x");
        assert!(m("type=bind,src=/h,dst=/c,ro").unwrap().read_only);
        assert!(m("type=bind,src=/h,dst=/c,ro=true").unwrap().read_only);
        assert!(m("type=bind,src=/h,dst=/c,readonly=1").unwrap().read_only);
        assert!(
            !m("type=bind,src=/h,dst=/c,readonly=false")
                .unwrap()
                .read_only
        );
        assert!(!m("type=bind,src=/h,dst=/c,ro=0").unwrap().read_only);
        // Keys are case-insensitive; bind-propagation is checked and ignored.
        let s = m("Type=bind,Source=/h,Target=/c,bind-propagation=rslave").unwrap();
        assert_eq!(s.options, strs(&["rbind"]));
        assert_eq!(
            m("type=bind,src=/h,dst=/c,bind-nonrecursive")
                .unwrap()
                .options,
            strs(&["bind"])
        );
        assert_eq!(
            m("type=bind,src=/h,dst=/c,bind-nonrecursive=false")
                .unwrap()
                .options,
            strs(&["rbind"])
        );
        assert_eq!(
            m("type=bind,src=/h,dst=/c,bind-recursive=disabled")
                .unwrap()
                .options,
            strs(&["bind"])
        );
        assert_eq!(
            m("type=bind,src=/h,dst=/c,consistency=cached")
                .unwrap()
                .options,
            strs(&["rbind"])
        );
    }

    #[test]
    fn mount_flag_volume() {
        let s = m("type=volume,source=data,target=/d").unwrap();
        assert_eq!(s.kind, MountKind::Volume);
        assert_eq!(s.source, "data");
        assert!(!s.anonymous);
        // type defaults to volume.
        let s = m("src=data,dst=/d,volume-nocopy").unwrap();
        assert_eq!(s.kind, MountKind::Volume);
        assert_eq!(s.options, strs(&["rbind", "nocopy"]));
        assert!(s.nocopy());
        let s = m("target=/d").unwrap();
        assert!(s.anonymous && is_hex64(&s.source));
        let s = m("type=volume,src=,dst=/d").unwrap();
        assert!(s.anonymous);
        assert!(m("src=data,dst=/d,volume-driver=local").is_ok());
    }

    #[test]
    fn mount_flag_tmpfs() {
        let s = m("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(s.kind, MountKind::Tmpfs);
        assert_eq!(s.source, "");
        assert_eq!(s.destination, "/run");
        assert_eq!(s.options, strs(&["size=67108864", "mode=1770"]));
        let s = m("type=tmpfs,dst=/t,tmpfs-size=1.5g,ro").unwrap();
        assert_eq!(s.options, strs(&["size=1610612736"]));
        assert!(s.read_only);
        assert_eq!(
            m("type=tmpfs,dst=/t,tmpfs-size=512MiB").unwrap().options,
            strs(&["size=536870912"])
        );
        assert_eq!(
            m("type=tmpfs,dst=/t,tmpfs-size=4096").unwrap().options,
            strs(&["size=4096"])
        );
    }

    #[test]
    fn mount_flag_csv_quoting() {
        let s = m("type=bind,\"source=/a,b\",target=/c").unwrap();
        assert_eq!(s.source, "/a,b");
        let s = m("type=bind,\"source=/a\"\"q\",target=/c").unwrap();
        assert_eq!(s.source, "/a\"q");
        assert!(reason(m("type=bind,source=/a\"b,target=/c").unwrap_err()).contains("quote"));
        assert!(reason(m("type=bind,\"source=/a,target=/c").unwrap_err()).contains("quote"));
        assert!(reason(m("\"type=bind\"x,target=/c").unwrap_err()).contains("quote"));
    }

    #[test]
    fn mount_flag_errors() {
        let e = m("type=bind,src=/a,dst=/b,colour=red").unwrap_err();
        assert!(matches!(e, VolumeError::BadMount { .. }));
        assert!(e.to_string().contains("unknown key \"colour\""), "{e}");
        assert!(e.hint().is_some());
        assert!(reason(m("").unwrap_err()).contains("empty"));
        assert!(reason(m("type=bind,src=/a,,dst=/b").unwrap_err()).contains("empty field"));
        assert!(reason(m("type=bind,src=/a").unwrap_err()).contains("target is required"));
        assert!(reason(m("type=bind,dst=/b").unwrap_err()).contains("source is required"));
        assert!(reason(m("type=bind,src=/a,dst=b").unwrap_err()).contains("absolute"));
        assert!(reason(m("type=bind,src=/a,dst=/").unwrap_err()).contains("\"/\""));
        assert!(reason(m("type=npipe,src=/a,dst=/b").unwrap_err()).contains("not supported"));
        assert!(reason(m("type,src=/a,dst=/b").unwrap_err()).contains("needs a value"));
        assert!(reason(m("type=bind,src=/a,dst=/b,ro=maybe").unwrap_err()).contains("maybe"));
        assert!(reason(m("src=v1,dst=/b,volume-opt=type=nfs").unwrap_err()).contains("volume-opt"));
        assert!(reason(m("src=v1,dst=/b,volume-driver=nfs").unwrap_err()).contains("nfs"));
        assert!(
            reason(m("type=bind,src=/a,dst=/b,bind-propagation=sideways").unwrap_err())
                .contains("sideways")
        );
        assert!(
            reason(m("type=bind,src=/a,dst=/b,bind-recursive=readonly").unwrap_err())
                .contains("readonly")
        );
        // Type-specific keys on another type.
        assert!(
            reason(m("type=volume,src=v1,dst=/b,bind-propagation=rshared").unwrap_err())
                .contains("type=bind")
        );
        assert!(
            reason(m("type=bind,src=/a,dst=/b,volume-nocopy").unwrap_err()).contains("type=volume")
        );
        assert!(
            reason(m("type=bind,src=/a,dst=/b,tmpfs-size=1m").unwrap_err()).contains("type=tmpfs")
        );
        assert!(reason(m("type=tmpfs,src=x,dst=/b").unwrap_err()).contains("source"));
        assert!(reason(m("type=tmpfs,dst=/b,tmpfs-size=lots").unwrap_err()).contains("tmpfs-size"));
        assert!(reason(m("type=tmpfs,dst=/b,tmpfs-mode=999").unwrap_err()).contains("tmpfs-mode"));
        assert!(
            reason(m("type=tmpfs,dst=/b,tmpfs-mode=17777").unwrap_err()).contains("tmpfs-mode")
        );
        // Volume sources are names, not paths.
        assert!(reason(m("type=volume,src=/abs,dst=/b").unwrap_err()).contains("type=bind"));
        assert!(reason(m("type=volume,src=a/b,dst=/b").unwrap_err()).contains("type=bind"));
        assert!(matches!(
            m("src=x y,dst=/b").unwrap_err(),
            VolumeError::BadName { .. }
        ));
    }

    // ---- --tmpfs ----

    #[test]
    fn tmpfs_flag() {
        let s = parse_tmpfs_flag("/run").unwrap();
        assert_eq!(s.kind, MountKind::Tmpfs);
        assert_eq!((s.source.as_str(), s.destination.as_str()), ("", "/run"));
        assert!(s.options.is_empty() && !s.read_only);
        let s = parse_tmpfs_flag("/run:size=64m,mode=1777,noexec").unwrap();
        assert_eq!(s.options, strs(&["size=64m", "mode=1777", "noexec"]));
        let s = parse_tmpfs_flag("/t:ro,size=10%,uid=1000,gid=1000,nr_inodes=1k,exec").unwrap();
        assert!(s.read_only);
        assert_eq!(
            s.options,
            strs(&["size=10%", "uid=1000", "gid=1000", "nr_inodes=1k", "exec"])
        );
        assert!(parse_tmpfs_flag("/t:").unwrap().options.is_empty());
        assert_eq!(parse_tmpfs_flag("/t//x/").unwrap().destination, "/t/x");
    }

    #[test]
    fn tmpfs_flag_errors() {
        let t = |s: &str| reason(parse_tmpfs_flag(s).unwrap_err());
        assert!(t("").contains("empty"));
        assert!(t("run").contains("absolute"));
        assert!(t("/").contains("\"/\""));
        assert!(t("/t:size").contains("needs a value"));
        assert!(t("/t:size=").contains("invalid value"));
        assert!(t("/t:size=lots").contains("invalid value"));
        assert!(t("/t:size=64q").contains("invalid value"));
        assert!(t("/t:mode=abc").contains("invalid value"));
        assert!(t("/t:mode=999").contains("invalid value"));
        assert!(t("/t:uid=me").contains("invalid value"));
        assert!(t("/t:huge=sometimes").contains("invalid value"));
        assert!(t("/t:colour=red").contains("unknown option"));
        assert!(t("/t:fast").contains("unknown option"));
        assert!(t("/t:size=1m,,ro").contains("empty option"));
        let e = parse_tmpfs_flag("/t:fast").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid tmpfs specification \"/t:fast\""),
            "{e}"
        );
        assert!(e.hint().is_some());
    }

    // ---- OCI options ----

    #[test]
    fn oci_options_bind_and_volume() {
        assert_eq!(oci_options(&v("/a:/b").unwrap()), strs(&["rbind"]));
        assert_eq!(oci_options(&v("/a:/b:ro").unwrap()), strs(&["rbind", "ro"]));
        assert_eq!(
            oci_options(&v("/a:/b:ro,bind,nosuid,nodev").unwrap()),
            strs(&["bind", "ro", "nosuid", "nodev"])
        );
        assert_eq!(
            oci_options(&v("vol:/b:nocopy,ro").unwrap()),
            strs(&["rbind", "ro"])
        );
        assert_eq!(oci_options(&v("/data").unwrap()), strs(&["rbind"]));
    }

    #[test]
    fn oci_options_tmpfs() {
        let t = |s: &str| oci_options(&parse_tmpfs_flag(s).unwrap());
        assert_eq!(t("/t"), strs(&["nosuid", "nodev", "noexec", "mode=1777"]));
        assert_eq!(
            t("/t:size=64m,mode=0700,ro"),
            strs(&["nosuid", "nodev", "noexec", "mode=0700", "size=64m", "ro"])
        );
        assert_eq!(
            t("/t:exec,noatime,uid=5,size=1m,size=2m"),
            strs(&[
                "nosuid",
                "nodev",
                "exec",
                "mode=1777",
                "size=2m",
                "noatime",
                "uid=5"
            ])
        );
        assert_eq!(
            t("/t:exec,noexec,dev"),
            strs(&["nosuid", "dev", "noexec", "mode=1777"])
        );
        let s = m("type=tmpfs,dst=/t,tmpfs-size=1k,readonly").unwrap();
        assert_eq!(
            oci_options(&s),
            strs(&["nosuid", "nodev", "noexec", "mode=1777", "size=1024", "ro"])
        );
    }

    // ---- prepare_bind ----

    #[test]
    fn prepare_bind_creates_for_v_and_refuses_for_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("a/b");
        let spec = format!("{}:/x", missing.display());
        let s = v(&spec).unwrap();
        prepare_bind(&s, s.from_mount_flag).unwrap();
        assert!(missing.is_dir());
        prepare_bind(&s, s.from_mount_flag).unwrap(); // exists: fine

        let gone = tmp.path().join("gone");
        let s = m(&format!("type=bind,src={},dst=/x", gone.display())).unwrap();
        let e = prepare_bind(&s, s.from_mount_flag).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bind source path does not exist: {}", gone.display())
        );
        assert!(e.hint().is_some());
        assert!(!gone.exists());
        // Existing file sources are fine for both.
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let s = m(&format!("type=bind,src={},dst=/x", file.display())).unwrap();
        prepare_bind(&s, true).unwrap();
        // Volumes and tmpfs: nothing to do.
        prepare_bind(&v("/data").unwrap(), true).unwrap();
        prepare_bind(&parse_tmpfs_flag("/t").unwrap(), true).unwrap();
    }

    #[test]
    fn mount_spec_serde_defaults() {
        let s = v("/a:/b:ro").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<MountSpec>(&json).unwrap(), s);
        let old = r#"{"kind":"Bind","source":"/a","destination":"/b","read_only":true,"options":["rbind"]}"#;
        let parsed: MountSpec = serde_json::from_str(old).unwrap();
        assert!(!parsed.from_mount_flag && !parsed.anonymous);
    }

    // ---- Volumes ----

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn volumes_create_list_inspect_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(&tmp.path().join("volumes"));
        assert!(vols.list().unwrap().is_empty()); // no directory yet

        let a = vols.create(Some("beta"), labels(&[("k", "v")])).unwrap();
        assert_eq!(a.name, "beta");
        assert!(!a.anonymous);
        assert!(vols.data_dir("beta").is_dir());
        assert_eq!(vols.data_dir("beta"), tmp.path().join("volumes/beta/_data"));
        assert!(tmp.path().join("volumes/beta/volume.json").is_file());

        // Idempotent: the existing volume comes back, labels and all.
        let again = vols.create(Some("beta"), BTreeMap::new()).unwrap();
        assert_eq!(again.created, a.created);
        assert_eq!(again.labels, labels(&[("k", "v")]));

        vols.create(Some("alpha"), BTreeMap::new()).unwrap();
        let anon = vols.create(None, BTreeMap::new()).unwrap();
        assert!(anon.anonymous && is_hex64(&anon.name));
        let g = vols.get_or_create("gamma", false).unwrap();
        assert_eq!(
            vols.get_or_create("gamma", true).unwrap().created,
            g.created
        );

        let names: Vec<_> = vols.list().unwrap().into_iter().map(|v| v.name).collect();
        let mut expected = vec![
            "alpha".to_string(),
            "beta".into(),
            "gamma".into(),
            anon.name.clone(),
        ];
        expected.sort();
        assert_eq!(names, expected);

        let i = vols.inspect("beta").unwrap();
        assert_eq!((i.name.as_str(), i.created), ("beta", a.created));
        assert_eq!(i.labels, labels(&[("k", "v")]));

        fs::write(vols.data_dir("beta").join("file"), "content").unwrap();
        vols.remove("beta", &[], false).unwrap();
        assert!(matches!(
            vols.inspect("beta"),
            Err(VolumeError::NotFound { .. })
        ));
        assert!(!tmp.path().join("volumes/beta").exists());
        // No leftovers from the rename aside.
        let left: Vec<_> = fs::read_dir(tmp.path().join("volumes"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(vols.list().unwrap().len(), 3);
    }

    #[test]
    fn volumes_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        let e = vols.inspect("nope").unwrap_err();
        assert_eq!(e.to_string(), "no such volume: nope");
        assert!(e.hint().is_some());
        assert!(matches!(
            vols.inspect("../etc"),
            Err(VolumeError::NotFound { .. })
        ));
        assert!(matches!(
            vols.remove("nope", &[], false),
            Err(VolumeError::NotFound { .. })
        ));
        vols.remove("nope", &[], true).unwrap(); // docker volume rm -f
        assert!(matches!(
            vols.create(Some("bad name"), BTreeMap::new()),
            Err(VolumeError::BadName { .. })
        ));
        assert!(matches!(
            vols.get_or_create("../x", false),
            Err(VolumeError::BadName { .. })
        ));
        // A file in the volume's place.
        fs::write(tmp.path().join("taken"), "").unwrap();
        let e = vols.create(Some("taken"), BTreeMap::new()).unwrap_err();
        assert!(matches!(e, VolumeError::Exists { .. }), "{e}");
        assert!(e.hint().is_some());
    }

    #[test]
    fn volumes_remove_refuses_in_use_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create(Some("db"), BTreeMap::new()).unwrap();
        let users = vec!["web".to_string(), "worker".to_string()];
        let e = vols.remove("db", &users, false).unwrap_err();
        match &e {
            VolumeError::InUse { name, containers } => {
                assert_eq!(name, "db");
                assert_eq!(containers, &users);
            }
            e => panic!("{e}"),
        }
        assert_eq!(e.to_string(), "volume db is in use by web, worker");
        assert!(e.hint().unwrap().contains("web worker"));
        assert!(vols.inspect("db").is_ok());
        vols.remove("db", &users, true).unwrap();
        assert!(vols.list().unwrap().is_empty());
    }

    #[test]
    fn volumes_remove_read_only_content() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create(Some("ro"), BTreeMap::new()).unwrap();
        let sub = vols.data_dir("ro").join("locked");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("f"), "x").unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o500)).unwrap();
        vols.remove("ro", &[], false).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn volumes_list_skips_partial_and_dot_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create(Some("real"), BTreeMap::new()).unwrap();
        fs::create_dir_all(tmp.path().join("halfmade/_data")).unwrap();
        fs::create_dir_all(tmp.path().join(".rm-old-1234/_data")).unwrap();
        fs::copy(
            tmp.path().join("real/volume.json"),
            tmp.path().join(".rm-old-1234/volume.json"),
        )
        .unwrap();
        fs::write(tmp.path().join("stray-file"), "").unwrap();
        let names: Vec<_> = vols.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, vec!["real"]);
        assert!(matches!(
            vols.inspect("halfmade"),
            Err(VolumeError::NotFound { .. })
        ));
        // A leftover without volume.json is adopted by create and can be removed.
        let adopted = vols.create(Some("halfmade"), BTreeMap::new()).unwrap();
        assert_eq!(adopted.name, "halfmade");
        assert_eq!(vols.list().unwrap().len(), 2);
        vols.remove("halfmade", &[], false).unwrap();
    }

    #[test]
    fn volumes_corrupt_metadata_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create(Some("x1"), BTreeMap::new()).unwrap();
        fs::write(tmp.path().join("x1/volume.json"), "{not json").unwrap();
        assert!(matches!(vols.list(), Err(VolumeError::Io { .. })));
        assert!(matches!(vols.inspect("x1"), Err(VolumeError::Io { .. })));
    }

    #[test]
    fn volumes_concurrent_create_same_name() {
        let tmp = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let name = format!("shared{round}");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let dir = tmp.path().to_path_buf();
                    let name = name.clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        let vols = Volumes::new(&dir);
                        barrier.wait();
                        if i % 2 == 0 {
                            vols.create(Some(&name), labels(&[("by", "create")]))
                                .unwrap()
                        } else {
                            vols.get_or_create(&name, false).unwrap()
                        }
                    })
                })
                .collect();
            let made: Vec<Volume> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(
                made.iter()
                    .all(|v| v.created == made[0].created && v.labels == made[0].labels)
            );
            assert!(Volumes::new(tmp.path()).data_dir(&name).is_dir());
        }
        let vols = Volumes::new(tmp.path());
        assert_eq!(vols.list().unwrap().len(), 20);
        // No temporary files left behind.
        for v in vols.list().unwrap() {
            let entries: Vec<_> = fs::read_dir(tmp.path().join(&v.name))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            let mut entries = entries;
            entries.sort();
            assert_eq!(entries, vec!["_data", "volume.json"]);
        }
    }

    // ---- copy_up ----

    #[test]
    fn copy_up_copies_content_modes_links() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("rootfs/var/lib/app");
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir(src.join("empty")).unwrap();
        fs::write(src.join("conf"), "setting=1\n").unwrap();
        fs::set_permissions(src.join("conf"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(src.join("sub/deeper/run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            src.join("sub/deeper/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::hard_link(src.join("conf"), src.join("sub/conf-link")).unwrap();
        std::os::unix::fs::symlink("../conf", src.join("sub/rel")).unwrap();
        std::os::unix::fs::symlink("/etc/app/absent", src.join("dangling")).unwrap();
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o711)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(src.join("conf"))
            .unwrap()
            .set_modified(old)
            .unwrap();

        let vols = Volumes::new(&tmp.path().join("volumes"));
        vols.create(Some("appdata"), BTreeMap::new()).unwrap();
        let data = vols.data_dir("appdata");
        copy_up(&src, &data).unwrap();

        assert_eq!(
            fs::read_to_string(data.join("conf")).unwrap(),
            "setting=1\n"
        );
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&data.join("conf")), 0o640);
        assert_eq!(mode(&data.join("sub")), 0o750);
        assert_eq!(mode(&data), 0o711);
        assert_eq!(mode(&data.join("sub/deeper/run.sh")), 0o755);
        assert!(data.join("empty").is_dir());
        assert_eq!(
            fs::read_link(data.join("sub/rel")).unwrap(),
            Path::new("../conf")
        );
        assert_eq!(
            fs::read_link(data.join("dangling")).unwrap(),
            Path::new("/etc/app/absent")
        );
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&data.join("conf")), ino(&data.join("sub/conf-link")));
        assert_ne!(ino(&data.join("conf")), ino(&src.join("conf")));
        assert_eq!(
            fs::metadata(data.join("conf")).unwrap().modified().unwrap(),
            old
        );
        let me = fs::metadata(&src).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().uid(), me.uid());
        // No staging directory left, and the volume is still listed.
        let mut entries: Vec<_> = fs::read_dir(data.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(entries, vec!["_data", "volume.json"]);
        assert_eq!(vols.list().unwrap().len(), 1);
    }

    #[test]
    fn copy_up_leaves_non_empty_volumes_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("image-file"), "x").unwrap();
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("mine"), "y").unwrap();
        copy_up(&src, &data).unwrap();
        assert!(!data.join("image-file").exists());
        assert_eq!(fs::read_dir(&data).unwrap().count(), 1);
    }

    #[test]
    fn copy_up_missing_or_empty_source() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        copy_up(&tmp.path().join("absent"), &data).unwrap();
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        // A file, not a directory, in the image: nothing.
        fs::write(tmp.path().join("file"), "x").unwrap();
        copy_up(&tmp.path().join("file"), &data).unwrap();
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        // An empty directory still gives the volume its mode.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o700)).unwrap();
        copy_up(&empty, &data).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
    }

    #[test]
    fn copy_up_concurrent_gives_one_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        for i in 0..50 {
            fs::write(src.join(format!("d/f{i}")), format!("{i}")).unwrap();
        }
        let data = tmp.path().join("vol/_data");
        fs::create_dir_all(&data).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (src, data, barrier) = (src.clone(), data.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    copy_up(&src, &data).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(fs::read_dir(data.join("d")).unwrap().count(), 50);
        assert_eq!(fs::read_dir(tmp.path().join("vol")).unwrap().count(), 1);
    }

    #[test]
    fn hints_for_every_variant() {
        let errs = [
            VolumeError::BadSpec {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadMount {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadTmpfs {
                spec: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BadName {
                name: "x".into(),
                reason: "r".into(),
            },
            VolumeError::BindSourceMissing { path: "/x".into() },
            VolumeError::InUse {
                name: "x".into(),
                containers: vec!["c".into()],
            },
            VolumeError::NotFound { name: "x".into() },
            VolumeError::Exists {
                name: "x".into(),
                path: "/v/x".into(),
            },
            VolumeError::Io {
                path: "/x".into(),
                source: io::Error::other("boom"),
            },
        ];
        for e in errs {
            assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e}");
        }
    }
}

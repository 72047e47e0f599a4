//! docker's mount flags: `-v`, `--mount` and `--tmpfs`, parsed into a [`MountSpec`] without
//! touching the disk; [`super::prepare_bind`] and [`super::oci_options`] then turn one into a
//! mount.
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
//! - A bind source that does not exist is created as a directory ([`super::prepare_bind`]).
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
//! ([`super::oci_options`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::VolumeError;

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
    /// Pass it to [`super::prepare_bind`].
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
        (MountKind::Volume, crate::fs::random_hex(32), true)
    } else if is_host_path(src) {
        let path = resolve_host_path(src, cwd, home).map_err(bad)?;
        (MountKind::Bind, path, false)
    } else {
        check_volume_name(src)?;
        (MountKind::Volume, src.to_string(), false)
    };

    let (read_only, options) = volume_options(opts, &kind).map_err(bad)?;
    Ok(MountSpec {
        kind,
        source,
        destination,
        read_only,
        options,
        anonymous,
        from_mount_flag: false,
    })
}

/// `-v`'s OPTS for a mount of `kind`: whether it is read-only, and the options kept (`rbind` or
/// `bind` first); `Err` is the reason they are refused.
fn volume_options(opts: Option<&str>, kind: &MountKind) -> Result<(bool, Vec<String>), String> {
    let mut read_only: Option<bool> = None;
    let mut recursion: Option<&str> = None;
    let mut ignored: Option<&str> = None;
    let mut kept: Vec<String> = Vec::new();
    for opt in opts
        .map(|o| o.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        match opt {
            "" => return Err("empty option".into()),
            "ro" | "rw" => {
                let ro = opt == "ro";
                if read_only.is_some_and(|r| r != ro) {
                    return Err("conflicting options ro and rw".into());
                }
                read_only = Some(ro);
            }
            "z" | "Z" | "cached" | "delegated" | "consistent" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                if let Some(p) = ignored.filter(|p| *p != opt) {
                    return Err(format!("conflicting propagation modes {p} and {opt}"));
                }
                ignored = Some(opt);
            }
            "rbind" | "bind" => {
                if recursion.is_some_and(|r| r != opt) {
                    return Err("conflicting options rbind and bind".into());
                }
                recursion = Some(opt);
            }
            "nocopy" => {
                if *kind != MountKind::Volume {
                    return Err("nocopy applies only to volumes".into());
                }
                push_unique(&mut kept, opt);
            }
            "suid" | "nosuid" | "dev" | "nodev" | "exec" | "noexec" => {
                let other = opt
                    .strip_prefix("no")
                    .map_or(format!("no{opt}"), str::to_string);
                if kept.contains(&other) {
                    return Err(format!("conflicting options {other} and {opt}"));
                }
                push_unique(&mut kept, opt);
            }
            _ => return Err(format!("unknown option {opt:?}")),
        }
    }
    let mut options = vec![recursion.unwrap_or("rbind").to_string()];
    options.extend(kept);
    Ok((read_only.unwrap_or(false), options))
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

pub(super) fn push_unique(v: &mut Vec<String>, o: &str) {
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
    let mut f = MountFields::default();
    for field in &split_csv(s).map_err(|r| bad(r.into()))? {
        f.read(field).map_err(bad)?;
    }
    let kind = f.kind.clone().unwrap_or(MountKind::Volume);
    f.check_families(&kind).map_err(bad)?;
    let target = f
        .target
        .take()
        .ok_or_else(|| bad("target is required".into()))?;
    let destination = check_destination(&target).map_err(bad)?;
    let source = f.source.take().unwrap_or_default();
    let recursion = if f.nonrecursive { "bind" } else { "rbind" };
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
            if f.nocopy {
                options.push("nocopy".into());
            }
            if source.is_empty() {
                (crate::fs::random_hex(32), true, options)
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
            (String::new(), false, std::mem::take(&mut f.tmpfs))
        }
    };
    Ok(MountSpec {
        kind,
        source,
        destination,
        read_only: f.read_only,
        options,
        anonymous,
        from_mount_flag: true,
    })
}

/// What `--mount`'s fields say, read one at a time; checked against each other afterwards.
#[derive(Default)]
struct MountFields {
    kind: Option<MountKind>,
    source: Option<String>,
    target: Option<String>,
    read_only: bool,
    nonrecursive: bool,
    nocopy: bool,
    /// tmpfs options made of `tmpfs-size` and `tmpfs-mode`.
    tmpfs: Vec<String>,
    /// The first key of each family that only applies to one type, to refuse mixing.
    bind_key: Option<String>,
    volume_key: Option<String>,
    tmpfs_key: Option<String>,
}

/// A `--mount` boolean: a bare key is true.
fn mount_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None => Ok(true),
        Some(v) => {
            parse_bool(v).ok_or_else(|| format!("invalid value {v:?} for {key}: use true or false"))
        }
    }
}

impl MountFields {
    /// One `key[=value]` field; `Err` is the reason it is refused.
    fn read(&mut self, field: &str) -> Result<(), String> {
        if field.is_empty() {
            return Err("empty field".into());
        }
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = || -> Result<String, String> {
            value
                .map(str::to_string)
                .ok_or_else(|| format!("key {key:?} needs a value"))
        };
        for (prefix, first) in [
            ("bind-", &mut self.bind_key),
            ("volume-", &mut self.volume_key),
            ("tmpfs-", &mut self.tmpfs_key),
        ] {
            if key.starts_with(prefix) {
                first.get_or_insert(key.clone());
            }
        }
        match key.as_str() {
            "type" => {
                self.kind = Some(match need()?.as_str() {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    t => return Err(format!("type {t:?} is not supported")),
                })
            }
            "source" | "src" => self.source = Some(need()?),
            "target" | "destination" | "dst" => self.target = Some(need()?),
            "readonly" | "ro" => self.read_only = mount_bool(&key, value)?,
            "consistency" => {}
            k if k.starts_with("bind-") || k.starts_with("volume-") || k.starts_with("tmpfs-") => {
                self.read_typed(k, value)?
            }
            _ => return Err(format!("unknown key {key:?}")),
        }
        Ok(())
    }

    /// A `bind-*`, `volume-*` or `tmpfs-*` field.
    fn read_typed(&mut self, key: &str, value: Option<&str>) -> Result<(), String> {
        let need = || -> Result<String, String> {
            value
                .map(str::to_string)
                .ok_or_else(|| format!("key {key:?} needs a value"))
        };
        match key {
            "bind-propagation" => {
                let v = need()?;
                if !matches!(
                    v.as_str(),
                    "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                ) {
                    return Err(format!("invalid bind-propagation {v:?}"));
                }
            }
            "bind-nonrecursive" => self.nonrecursive = mount_bool(key, value)?,
            "bind-recursive" => match need()?.as_str() {
                "enabled" => self.nonrecursive = false,
                "disabled" => self.nonrecursive = true,
                v => return Err(format!("bind-recursive={v} is not supported")),
            },
            "volume-nocopy" => self.nocopy = mount_bool(key, value)?,
            "volume-driver" => {
                let v = need()?;
                if v != "local" {
                    return Err(format!(
                        "volume driver {v:?} is not supported: den has only the local driver"
                    ));
                }
            }
            "volume-opt" | "volume-label" | "volume-subpath" => {
                return Err(format!("{key} is not supported"));
            }
            "tmpfs-size" => {
                let v = need()?;
                let bytes = ram_in_bytes(&v).ok_or_else(|| format!("invalid tmpfs-size {v:?}"))?;
                self.tmpfs.push(format!("size={bytes}"));
            }
            "tmpfs-mode" => {
                let v = need()?;
                let mode = u32::from_str_radix(&v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("invalid tmpfs-mode {v:?}: use octal"))?;
                self.tmpfs.push(format!("mode={mode:o}"));
            }
            _ => return Err(format!("unknown key {key:?}")),
        }
        Ok(())
    }

    /// `bind-*`, `volume-*` and `tmpfs-*` keys only go with their own type.
    fn check_families(&self, kind: &MountKind) -> Result<(), String> {
        for (family, key, applies) in [
            ("bind", &self.bind_key, MountKind::Bind),
            ("volume", &self.volume_key, MountKind::Volume),
            ("tmpfs", &self.tmpfs_key, MountKind::Tmpfs),
        ] {
            if let Some(key) = key
                && *kind != applies
            {
                return Err(format!(
                    "{key} applies only to type={family}, not type={}",
                    kind_name(kind)
                ));
            }
        }
        Ok(())
    }
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

pub(super) fn check_volume_name(name: &str) -> Result<(), VolumeError> {
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

#[cfg(test)]
pub(super) mod tests;

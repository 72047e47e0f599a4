//! From a parsed [`MountSpec`] to a mount: the bind source made or refused ([`prepare_bind`]),
//! and the options the OCI runtime spec gets ([`oci_options`]).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::flags::push_unique;
use super::{MountKind, MountSpec, VolumeError, io_err};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::flags::tests::{m, strs, v};
    use crate::volume::parse_tmpfs_flag;

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
}

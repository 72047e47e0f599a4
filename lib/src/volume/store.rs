//! Named volumes on disk: [`Volumes`] creates, lists, inspects and removes them, safely when
//! several dens do so at once.
//!
//! # On disk
//!
//! Under the directory den gives [`Volumes::new`] (e.g. `~/.local/share/den/volumes`), docker's
//! layout:
//!
//! ```text
//! volumes/
//!   <name>/
//!     volume.json          name, created, labels, anonymous; written last, atomically
//!     _data/               the volume's content, what containers see
//!     .copyup-<random>/    transient: copy-up is built here and renamed over an empty _data
//!   .rm-<name>-<random>/   transient: a volume being removed, renamed aside first
//! ```
//!
//! A volume exists once `volume.json` does: [`Volumes::list`] skips dot-entries and directories
//! without it. Creation is `mkdir(<name>)`; a process that loses the race (EEXIST) reads back
//! the winner's `volume.json`, so two `den run -v data:/x` at once share one volume. Removal
//! renames the directory aside before deleting it, so a half-deleted volume is never listed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::flags::check_volume_name;
use super::{VolumeError, io_err, is_not_found};

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
            None => self.create_inner(&crate::fs::random_hex(32), labels, true),
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

    /// Remove the volumes no container uses (`in_use` names those some container mounts):
    /// anonymous ones only, unless `all`. Returns the names removed; a volume that cannot be
    /// removed is left, as docker's prune leaves it.
    pub fn prune(
        &self,
        all: bool,
        in_use: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>, VolumeError> {
        let mut removed = Vec::new();
        for v in self.list()? {
            if (v.anonymous || all)
                && !in_use.contains(&v.name)
                && self.remove(&v.name, &[], false).is_ok()
            {
                removed.push(v.name);
            }
        }
        Ok(removed)
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
        let aside = self
            .dir
            .join(format!(".rm-{name}-{}", crate::fs::random_hex(4)));
        match fs::rename(&vdir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return not_found(),
            Err(e) => return Err(io_err(&vdir)(e)),
        }
        crate::fs::sync_dir(&self.dir);
        crate::fs::remove_tree(&aside).map_err(io_err(&aside))
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
        crate::fs::sync_dir(&self.dir);
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

fn read_meta(vdir: &Path, name: &str) -> io::Result<Volume> {
    let bytes = fs::read(vdir.join(META))?;
    let mut v: Volume = serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // The directory's name is the volume's name.
    v.name = name.to_string();
    Ok(v)
}

/// `volume.json` written atomically ([`crate::fs::write_atomic_mode`]): readers see all of it or
/// none.
fn write_meta(vdir: &Path, v: &Volume) -> Result<(), VolumeError> {
    let path = vdir.join(META);
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| io_err(&path)(io::Error::other(e)))?;
    bytes.push(b'\n');
    crate::fs::write_atomic_mode(&path, &bytes, 0o644).map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn is_hex64(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }

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
}

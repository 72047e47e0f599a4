//! Manifest lists: `manifests.json`, beside `images.json` and kept the same way (one file,
//! replaced atomically under the meta lock).
//!
//! A list is a named object, not an image: `den images` does not show it (neither does
//! docker's), and its entries point at images rather than owning them. Its name is a
//! reference, canonical as an image's, and may be the same as an image's name: `den manifest`
//! verbs look for lists, `den run` and `den rmi` look for an image first, then a list.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError};
use crate::image::Reference;
use crate::image::list::{Entry, ManifestList};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ListsFile {
    lists: Vec<ManifestList>,
}

impl Store {
    fn lists_path(&self) -> PathBuf {
        self.root.join("manifests.json")
    }

    /// Every manifest list. Takes no lock (the file is replaced atomically).
    pub fn manifest_lists(&self) -> Result<Vec<ManifestList>> {
        let p = self.lists_path();
        if !p.exists() {
            return Ok(Vec::new());
        }
        let f: ListsFile = self.read_json(&p)?;
        Ok(f.lists)
    }

    /// The list `input` names (a reference, with docker's defaults).
    pub fn find_list(&self, input: &str) -> Result<ManifestList> {
        let canonical = list_name(input)?;
        self.manifest_lists()?
            .into_iter()
            .find(|l| l.name == canonical)
            .ok_or_else(|| StoreError::ListUnknown(input.to_string()))
    }

    /// Change the lists under the meta lock; the closure's result is returned. Nothing is
    /// written when the closure fails.
    pub fn update_lists<T>(
        &self,
        f: impl FnOnce(&mut Vec<ManifestList>) -> Result<T>,
    ) -> Result<T> {
        let _g = self.lock_meta()?;
        let mut lists = self.manifest_lists()?;
        let out = f(&mut lists)?;
        lists.sort_by(|a, b| a.name.cmp(&b.name));
        self.write_json(&self.lists_path(), &ListsFile { lists })?;
        Ok(out)
    }

    /// Remove the list `input` names; the removed list.
    pub fn remove_list(&self, input: &str) -> Result<ManifestList> {
        let canonical = list_name(input)?;
        self.update_lists(|lists| {
            let i = lists
                .iter()
                .position(|l| l.name == canonical)
                .ok_or_else(|| StoreError::ListUnknown(input.to_string()))?;
            Ok(lists.remove(i))
        })
    }
}

impl Store {
    /// A local image's entry for a list: its stored manifest, its platform from its
    /// configuration.
    pub fn list_entry(&self, image: &crate::store::ImageRecord) -> Result<Entry> {
        let size = self.read_blob(&image.manifest)?.len();
        let config = self.read_blob(&image.config)?;
        Ok(Entry {
            image: Some(image.id.clone()),
            ..Entry::of_config(
                image.manifest.clone(),
                &image.manifest_media_type,
                size,
                &config,
            )?
        })
    }

    /// Add `entry` to the list `name`, making the list when there is none (`build --manifest`,
    /// podman's rule). The list as it is now.
    pub fn add_to_list(&self, name: &str, entry: Entry) -> Result<ManifestList> {
        let canonical = list_name(name)?;
        self.update_lists(|lists| {
            let at = match lists.iter().position(|l| l.name == canonical) {
                Some(i) => i,
                None => {
                    lists.push(ManifestList::new(canonical.clone()));
                    lists.len() - 1
                }
            };
            lists[at].add(entry)?;
            Ok(lists[at].clone())
        })
    }
}

/// A list's name as the store keys it: the reference, canonical.
pub fn list_name(input: &str) -> Result<String> {
    Reference::parse(input)
        .map(|r| r.canonical())
        .map_err(|_| StoreError::ListUnknown(input.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_kept_by_canonical_name_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        assert!(s.manifest_lists().unwrap().is_empty());
        s.update_lists(|l| {
            l.push(ManifestList::new(list_name("app:multi")?));
            Ok(())
        })
        .unwrap();
        let found = s.find_list("docker.io/library/app:multi").unwrap();
        assert_eq!(found.name, "docker.io/library/app:multi");
        // A failed change writes nothing.
        let e = s.update_lists(|l| {
            l.clear();
            Err::<(), _>(StoreError::ListUnknown("x".into()))
        });
        assert!(e.is_err());
        assert_eq!(s.manifest_lists().unwrap().len(), 1);
        assert_eq!(s.remove_list("app:multi").unwrap().id, found.id);
        assert!(matches!(
            s.find_list("app:multi"),
            Err(StoreError::ListUnknown(_))
        ));
        assert!(s.images().unwrap().is_empty());
    }
}

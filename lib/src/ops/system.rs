//! `system reset`: remove everything den stores for this user, as `podman system reset` does.
//! Runs inside den's user namespace: files in image layers belong to subordinate ids, which
//! only the user's own namespace can delete.

use super::Ctx;
use crate::error::Result;
use crate::store::StoreError;

/// Remove the store and the runtime state. The store is renamed aside first, so a reset that
/// is interrupted leaves either the whole store or none of it.
pub fn reset(ctx: &Ctx) -> Result<()> {
    let root = &ctx.paths.root;
    if root.exists() {
        let aside = root.with_file_name(format!(
            ".{}.removing-{}",
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(root, &aside).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        crate::store::remove_tree(&aside).map_err(|source| StoreError::Io {
            path: aside.clone(),
            source,
        })?;
    }
    let rt = &ctx.paths.runtime;
    if rt.join("libcontainer").exists() {
        let _ = crate::store::remove_tree(&rt.join("libcontainer"));
    }
    Ok(())
}

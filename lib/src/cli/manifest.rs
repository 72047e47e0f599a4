//! Flags of `manifest create|add|annotate|inspect|push|rm|exists|remove`, docker's spellings
//! with podman's additions (`add`, `exists`, `remove`, `push --all/--format/--rm`), and their
//! reading into the verbs' options.

use clap::{Args, Subcommand};

use super::registry::AccessArgs;
use crate::auth::AuthError;
use crate::image::ImageError;
use crate::image::list::ListFormat;
use crate::ops::manifest::{
    AddOptions, AnnotateOptions, CreateOptions, PlatformFields, PushOptions,
};

#[derive(Debug, Clone, Subcommand)]
pub enum ManifestVerb {
    /// Create a local manifest list (of local images, or images in a registry)
    Create(CreateArgs),
    /// Add an image's manifest to a local manifest list
    Add(AddArgs),
    /// Set the platform or annotations of a manifest list's entry
    Annotate(AnnotateArgs),
    /// Show a manifest list (local, else the registry's) or an image's manifest as JSON
    Inspect(InspectArgs),
    /// Push a manifest list and its images to a registry
    Push(ManifestPushArgs),
    /// Remove local manifest lists (not the images they name)
    Rm(RmArgs),
    /// Exit 0 if the manifest list exists locally, 1 if not
    Exists(ExistsArgs),
    /// Remove an entry from a manifest list
    Remove(RemoveArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The list's name (a reference, e.g. localhost:5000/app:1)
    #[arg(value_name = "LIST")]
    pub list: String,
    /// Images to add: local names or ids, or references in a registry
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Add to the list if it exists already
    #[arg(short, long)]
    pub amend: bool,
    /// For an image that is a list in a registry, add all its entries (else the host's)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl CreateArgs {
    pub fn options(&self) -> Result<CreateOptions, AuthError> {
        Ok(CreateOptions {
            list: self.list.clone(),
            images: self.images.clone(),
            amend: self.amend,
            all: self.all,
            access: self.access.access("the registry")?,
        })
    }
}

/// Platform flags of `add` and `annotate`.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// Set the entry's architecture
    #[arg(long)]
    pub arch: Option<String>,
    /// Set the entry's operating system
    #[arg(long)]
    pub os: Option<String>,
    /// Set the entry's architecture variant
    #[arg(long)]
    pub variant: Option<String>,
    /// Set the entry's operating system version
    #[arg(long)]
    pub os_version: Option<String>,
    /// Set the entry's operating system features
    #[arg(long, alias = "features", value_delimiter = ',')]
    pub os_features: Vec<String>,
    /// Set an annotation on the entry (KEY=VALUE)
    #[arg(long)]
    pub annotation: Vec<String>,
}

impl PlatformArgs {
    fn fields(&self) -> PlatformFields {
        PlatformFields {
            os: self.os.clone(),
            arch: self.arch.clone(),
            variant: self.variant.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            annotations: self.annotation.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    #[arg(value_name = "LIST")]
    pub list: String,
    /// A local image (name or id), or a reference in a registry
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// For an image that is a list in a registry, add all its entries (else the host's)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub platform: PlatformArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl AddArgs {
    pub fn options(&self) -> Result<AddOptions, AuthError> {
        Ok(AddOptions {
            list: self.list.clone(),
            image: self.image.clone(),
            all: self.all,
            fields: self.platform.fields(),
            access: self.access.access("the registry")?,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct AnnotateArgs {
    #[arg(value_name = "LIST")]
    pub list: String,
    /// The entry: its manifest digest, or the local image it was added from
    #[arg(value_name = "IMAGE|DIGEST", required_unless_present = "index")]
    pub image: Option<String>,
    /// Set the annotations on the list itself
    #[arg(long)]
    pub index: bool,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

impl AnnotateArgs {
    pub fn options(&self) -> AnnotateOptions {
        AnnotateOptions {
            list: self.list.clone(),
            image: self.image.clone().unwrap_or_default(),
            fields: self.platform.fields(),
            index: self.index,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A local list, else a reference in a registry
    #[arg(value_name = "LIST|IMAGE")]
    pub name: String,
    #[command(flatten)]
    pub access: AccessArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestPushArgs {
    #[arg(value_name = "LIST")]
    pub list: String,
    /// Where to push (default: the list's name)
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Push the entries' images too (--all=false pushes only the list)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub all: bool,
    /// The list's format: oci (an image index) or v2s2 (a docker manifest list)
    #[arg(short, long, default_value = "oci")]
    pub format: String,
    /// Remove the local list once pushed
    #[arg(long, alias = "purge", short = 'p')]
    pub rm: bool,
    /// Write the list's digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,
    /// Print no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Verify the registry's TLS certificate (false also allows plain http)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl ManifestPushArgs {
    pub fn options(&self) -> Result<PushOptions, crate::ops::Error> {
        let dest = self.destination.as_deref().unwrap_or(&self.list);
        let registry = crate::image::Reference::parse(dest)
            .map(|r| r.registry().to_string())
            .unwrap_or_else(|_| "the registry".into());
        Ok(PushOptions {
            access: self.access.access(&registry)?,
            list: self.list.clone(),
            destination: self.destination.clone(),
            all: self.all,
            format: ListFormat::parse(&self.format)?,
            remove: self.rm,
            tls_verify: self.tls_verify,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "LIST")]
    pub lists: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ExistsArgs {
    #[arg(value_name = "LIST")]
    pub list: String,
}

#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    #[arg(value_name = "LIST")]
    pub list: String,
    /// The entry's manifest digest
    #[arg(value_name = "DIGEST")]
    pub digest: String,
}

/// `build --platform A[,B...]` with `--manifest`: each platform checked; several need a list
/// to put the images in. None: one build for the default platform.
pub fn platforms(
    flag: Option<&str>,
    manifest: Option<&str>,
    tagged: bool,
) -> Result<Vec<Option<crate::image::Platform>>, crate::ops::Error> {
    if let Some(m) = manifest {
        crate::image::Reference::parse(m)?;
    }
    let Some(flag) = flag else {
        return Ok(vec![None]);
    };
    let list = flag
        .split(',')
        .map(|p| {
            crate::image::Platform::parse(p.trim())
                .map(Some)
                .ok_or_else(|| ImageError::BadPlatform(p.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if list.len() > 1 && manifest.is_none() {
        return Err(ImageError::PlatformsNeedList(flag.to_string()).into());
    }
    // A tag names one image: on several, the last would take it from the others.
    if list.len() > 1 && tagged {
        return Err(ImageError::TagsWithPlatforms(flag.to_string()).into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_platforms_are_checked_and_several_need_a_list() {
        assert_eq!(platforms(None, None, true).unwrap(), vec![None]);
        let two = platforms(Some("linux/amd64,linux/arm64/v8"), Some("app:multi"), false).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].as_ref().unwrap().to_string(), "linux/arm64/v8");
        assert!(platforms(Some("linux/amd64,linux/arm64"), None, false).is_err());
        assert!(platforms(Some("linux/amd64,linux/arm64"), Some("app:multi"), true).is_err());
        assert_eq!(platforms(Some("linux/arm64"), None, true).unwrap().len(), 1);
        assert!(platforms(Some("linux/amd64,linux"), Some("app:multi"), false).is_err());
        assert!(platforms(None, Some("Bad:Name:x"), false).is_err());
    }
}

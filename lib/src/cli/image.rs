//! Flags of the image-management verbs (`tag`, `rmi`, `image prune`, `history`, `import`,
//! `system df`, `system prune`) and of `export`, as docker spells them.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// The image: a name, an id or a unique id prefix
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// The new name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Remove an image that containers use (they keep its layers), or all names of an id
    #[arg(short, long)]
    pub force: bool,
    /// Leave unused layers in place (the next prune removes them)
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only images matching: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl ImagePruneArgs {
    /// docker's warning before it prunes.
    pub fn warning(&self) -> &'static str {
        if self.all {
            "This will remove all images without at least one container associated to them."
        } else {
            "This will remove all dangling images."
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Format: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Sizes and dates in human-readable form (always)
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub human: bool,
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER, LABEL
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// The commit message in the image's history
    #[arg(short, long)]
    pub message: Option<String>,
    /// Platform of the image (accepted for docker compatibility: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// A tar (plain, gzip or zstd), an http(s) URL, or - for stdin
    #[arg(value_name = "FILE|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DfArgs {
    /// Show each image, container and volume
    #[arg(short, long)]
    pub verbose: bool,
    /// Format: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SystemPruneArgs {
    /// Remove every unused image, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Remove unused anonymous volumes too
    #[arg(long)]
    pub volumes: bool,
    /// Only images matching: until=TIME, label=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl SystemPruneArgs {
    /// docker's warning before it prunes: what will go.
    pub fn warning(&self) -> String {
        let mut what = String::from("This will remove:\n  - all stopped containers\n");
        if self.volumes {
            what.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        what.push_str(if self.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        what.push_str("  - unused build cache\n");
        what
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Remove what is wrong (leftovers, broken records and layers, files den did not write)
    #[arg(long)]
    pub repair: bool,
    /// Also re-hash every blob and compare each image's record with its manifest and config
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Debug, Clone, Args)]
pub struct SquashArgs {
    /// The file to write (a new name, or a file to replace)
    #[arg(short, long, value_name = "FILE.sqsh")]
    pub output: PathBuf,
    /// The image: a name, an id or a unique id prefix
    pub image: String,
}

impl SquashArgs {
    pub fn options(&self) -> crate::ops::squash::SquashOptions {
        crate::ops::squash::SquashOptions {
            image: self.image.clone(),
            output: self.output.clone(),
        }
    }
}

//! Flags of the verbs about den itself: `version`, `info` (and `events` to come).

use clap::Args;

/// `version [--format TEMPLATE]`
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Format the output: json, or a Go template such as '{{.Client.Version}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `info [--format TEMPLATE]`
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Format the output: json, or a Go template with docker's fields such as '{{.Driver}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

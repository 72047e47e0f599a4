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

/// `events [--since T] [--until T] [--filter k=v]... [--format TEMPLATE]`
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Show events since a time (RFC 3339, a Unix timestamp, or a duration ago: 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stop at this time (same forms); without it, new events are followed until interrupted
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Filter: type=, event=, container=, image=, label=KEY[=VALUE]
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format: json, or a Go template such as '{{.Action}} {{.Actor.ID}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

impl EventsArgs {
    pub fn options(&self) -> crate::ops::Result<crate::ops::events::EventsOptions> {
        let now = chrono::Utc::now();
        let time = |t: &Option<String>| {
            super::optional_time(t, now, crate::store::ContainersError::BadEventFilter)
        };
        Ok(crate::ops::events::EventsOptions {
            since: time(&self.since)?,
            until: time(&self.until)?,
            filters: crate::ops::events::parse_filters(&self.filter)?,
        })
    }
}

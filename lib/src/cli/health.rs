//! `run`'s and `create`'s health check flags (docker's `--health-cmd`, `--health-interval`,
//! `--health-timeout`, `--health-start-period`, `--health-start-interval`, `--health-retries`,
//! `--no-healthcheck`), checked as docker checks them into the flags' part of a
//! [`HealthConfig`]; the image's HEALTHCHECK fills what they leave out when the container is
//! created ([`HealthConfig::merged`]).

use clap::Args;

use crate::runtime::FlagError;
use crate::store::health::{HealthConfig, parse_duration};

/// The health check the container's monitor runs (`ps` shows its status).
#[derive(Debug, Clone, Default, Args)]
pub struct HealthArgs {
    /// Command to run to check health (through /bin/sh -c in the container)
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between checks, e.g. 30s, 1m30s, 500ms (default 30s)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Longest a check may run before it is killed and fails (default 30s)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Time to start before failing checks count (default 0s)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period (default 5s)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Consecutive failures that make the container unhealthy (default 3)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Disable any health check, the image's HEALTHCHECK too
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl HealthArgs {
    /// The flags' health check: None without any; `["NONE"]` with `--no-healthcheck` (and no
    /// other health flag, as docker's).
    pub fn health(&self) -> Result<Option<HealthConfig>, FlagError> {
        let durations = [
            ("--health-interval", &self.health_interval),
            ("--health-timeout", &self.health_timeout),
            ("--health-start-period", &self.health_start_period),
            ("--health-start-interval", &self.health_start_interval),
        ];
        let any = self.health_cmd.is_some()
            || self.health_retries.is_some()
            || durations.iter().any(|(_, v)| v.is_some());
        if self.no_healthcheck {
            if any {
                return Err(FlagError::NoHealthcheckConflict);
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        let mut nanos = [0u64; 4];
        for (n, (flag, value)) in nanos.iter_mut().zip(durations) {
            if let Some(v) = value {
                *n = health_duration(flag, v)?;
            }
        }
        let retries = match &self.health_retries {
            None => 0,
            Some(r) => r.parse().map_err(|_| FlagError::BadHealth {
                flag: "--health-retries",
                value: r.clone(),
            })?,
        };
        Ok(Some(HealthConfig {
            test: match &self.health_cmd {
                Some(c) if !c.is_empty() => vec!["CMD-SHELL".into(), c.clone()],
                _ => Vec::new(),
            },
            interval: nanos[0],
            timeout: nanos[1],
            start_period: nanos[2],
            start_interval: nanos[3],
            retries,
        }))
    }
}

/// A duration flag in nanoseconds: a Go duration, 0 (the default) or at least 1ms (docker's
/// minimum).
fn health_duration(flag: &'static str, value: &str) -> Result<u64, FlagError> {
    let bad = || FlagError::BadHealth {
        flag,
        value: value.into(),
    };
    let d = parse_duration(value).ok_or_else(bad)?;
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        return Err(bad());
    }
    u64::try_from(d.as_nanos()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_into_a_health_config() {
        let a = HealthArgs {
            health_cmd: Some("curl -f localhost".into()),
            health_interval: Some("1m30s".into()),
            health_retries: Some("5".into()),
            ..Default::default()
        };
        let h = a.health().unwrap().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!((h.interval, h.retries, h.timeout), (90_000_000_000, 5, 0));
        assert_eq!(HealthArgs::default().health().unwrap(), None);
        let none = HealthArgs {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(none.health().unwrap().unwrap().test, ["NONE"]);
    }

    #[test]
    fn bad_flags_are_refused() {
        for (interval, retries) in [("5", "1"), ("-1s", "1"), ("1us", "1"), ("1s", "-1")] {
            let a = HealthArgs {
                health_interval: Some(interval.into()),
                health_retries: Some(retries.into()),
                ..Default::default()
            };
            assert!(a.health().is_err(), "{interval} {retries}");
        }
        let both = HealthArgs {
            no_healthcheck: true,
            health_cmd: Some("true".into()),
            ..Default::default()
        };
        assert!(matches!(
            both.health(),
            Err(FlagError::NoHealthcheckConflict)
        ));
    }
}

//! Health checks' data: docker's `Healthcheck` configuration (from the image's HEALTHCHECK and
//! the `--health-*` flags, merged as docker merges them) and the state a container's checker
//! keeps (`State.Health`: its status, failing streak and last five results).
//!
//! The state is a file of its own beside `state.json` (`health.json`, written atomically): the
//! checker writes it while the monitor and `pause` write the container's state, so neither
//! overwrites the other's. [`super::Store::container_state`] reads both.
//!
//! The transitions are docker's (`daemon/health.go`): a success makes the container healthy
//! and ends the failing streak; a failure adds to the streak unless the container is still
//! starting within its start period, and the streak reaching the retries makes it unhealthy.
//! Go's duration syntax (`1m30s`, `500ms`) is parsed here by hand: it is a few lines, and no
//! crate parses exactly Go's grammar.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The file of a container's health state, in its directory.
pub const HEALTH_FILE: &str = "health.json";
/// docker's caps: results kept, and bytes of a check's output kept.
pub const MAX_LOG: usize = 5;
pub const MAX_OUTPUT: usize = 4096;

/// docker's defaults for what a Healthcheck leaves zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

/// docker's `Config.Healthcheck` (durations in nanoseconds; zero: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` (inherit), `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub retries: u32,
}

impl HealthConfig {
    /// docker's merge: no flags, the image's; flags without a test take the image's test, and
    /// the image's value for each duration or count they leave zero.
    pub fn merged(flags: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<Self> {
        let (Some(f), Some(i)) = (flags, image) else {
            return flags.or(image).cloned();
        };
        let pick = |a: u64, b: u64| if a == 0 { b } else { a };
        Some(HealthConfig {
            test: if f.test.is_empty() {
                i.test.clone()
            } else {
                f.test.clone()
            },
            interval: pick(f.interval, i.interval),
            timeout: pick(f.timeout, i.timeout),
            start_period: pick(f.start_period, i.start_period),
            start_interval: pick(f.start_interval, i.start_interval),
            retries: if f.retries == 0 { i.retries } else { f.retries },
        })
    }

    /// The command a check runs (`CMD-SHELL` through `/bin/sh -c`); None for no check.
    pub fn argv(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [cmd])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
            }
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        nanos_or(self.interval, DEFAULT_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        nanos_or(self.timeout, DEFAULT_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }
    pub fn start_interval(&self) -> Duration {
        nanos_or(self.start_interval, DEFAULT_START_INTERVAL)
    }
    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn nanos_or(n: u64, default: Duration) -> Duration {
    if n == 0 {
        default
    } else {
        Duration::from_nanos(n)
    }
}

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// docker's name (`ps --filter health=`, events).
    pub fn name(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One check's result, as docker's `State.Health.Log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// 0 healthy, else unhealthy; -1 when the check could not run or ran out of time.
    pub exit_code: i32,
    pub output: String,
}

impl HealthResult {
    /// A result with `output` cut to docker's 4096 bytes (on a character boundary).
    pub fn new(start: DateTime<Utc>, exit_code: i32, output: &[u8]) -> Self {
        let mut text =
            String::from_utf8_lossy(&output[..output.len().min(MAX_OUTPUT)]).into_owned();
        while text.len() > MAX_OUTPUT {
            text.pop();
        }
        HealthResult {
            start,
            end: Utc::now(),
            exit_code,
            output: text,
        }
    }
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl Health {
    pub fn starting() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Apply one result of a container started at `started_at`; whether the status changed.
    pub fn record(
        &mut self,
        result: HealthResult,
        config: &HealthConfig,
        started_at: DateTime<Utc>,
    ) -> bool {
        let before = self.status;
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let in_start_period = self.status == HealthStatus::Starting
                && (result.start - started_at).to_std().unwrap_or_default() < config.start_period();
            if !in_start_period {
                self.failing_streak += 1;
                if self.failing_streak >= config.retries() {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            self.log.drain(..self.log.len() - MAX_LOG);
        }
        self.status != before
    }

    /// How long until the next check: the start interval while the container is starting
    /// within its start period, else the interval.
    pub fn next_wait(
        &self,
        config: &HealthConfig,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Duration {
        let since = (now - started_at).to_std().unwrap_or_default();
        if self.status == HealthStatus::Starting && since < config.start_period() {
            config.start_interval()
        } else {
            config.interval()
        }
    }
}

/// A Go duration (`1m30s`, `500ms`, `1.5h`, `0`); None when it is not one or is negative.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    (total.is_finite() && total < u64::MAX as f64).then(|| Duration::from_nanos(total as u64))
}

impl super::Store {
    /// A container's health state, None when it has no check (or none ran yet).
    pub fn container_health(&self, id: &str) -> Option<Health> {
        self.read_json(&self.container_dir(id).join(HEALTH_FILE))
            .ok()
    }

    /// Write a container's health state (atomically).
    pub fn set_container_health(&self, id: &str, health: &Health) -> super::Result<()> {
        self.write_json(&self.container_dir(id).join(HEALTH_FILE), health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(ms(500)));
        assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "10", "-1s", "1x", "s", "1s2", "abc", "1..2s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    fn result(start: DateTime<Utc>, code: i32) -> HealthResult {
        HealthResult {
            start,
            end: start,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn failures_make_it_unhealthy_after_the_retries() {
        let cfg = HealthConfig {
            retries: 2,
            ..Default::default()
        };
        let t0 = Utc::now();
        let mut h = Health::starting();
        assert!(!h.record(result(t0, 1), &cfg, t0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        assert!(h.record(result(t0, 1), &cfg, t0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        assert!(h.record(result(t0, 0), &cfg, t0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..7 {
            h.record(result(t0, 0), &cfg, t0);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn the_start_period_forgives_failures_until_a_success() {
        let cfg = HealthConfig {
            retries: 1,
            start_period: 10_000_000_000,
            interval: 1_000_000_000,
            start_interval: 100_000_000,
            ..Default::default()
        };
        let t0 = Utc::now();
        let mut h = Health::starting();
        assert!(!h.record(result(t0, 1), &cfg, t0));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.next_wait(&cfg, t0, t0), ms(100));
        assert!(h.record(result(t0, 0), &cfg, t0));
        assert_eq!(h.next_wait(&cfg, t0, t0), ms(1000));
        // Healthy once: a failure counts even within the start period.
        assert!(h.record(result(t0, 1), &cfg, t0));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        // After the start period, failures count while starting too.
        let mut h = Health::starting();
        let late = t0 + chrono::Duration::seconds(11);
        h.record(result(late, 1), &cfg, t0);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.next_wait(&cfg, t0, late), ms(1000));
    }

    #[test]
    fn flags_merge_over_the_image() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5,
            retries: 4,
            ..Default::default()
        };
        let flags = HealthConfig {
            interval: 7,
            ..Default::default()
        };
        let m = HealthConfig::merged(Some(&flags), Some(&image)).unwrap();
        assert_eq!(
            (m.test.clone(), m.interval, m.retries),
            (image.test.clone(), 7, 4)
        );
        assert_eq!(m.argv(), Some(vec!["true".to_string()]));
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let m = HealthConfig::merged(Some(&none), Some(&image)).unwrap();
        assert_eq!(m.argv(), None);
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "exit 1".into()],
            ..Default::default()
        };
        assert_eq!(shell.argv().unwrap()[..2], ["/bin/sh", "-c"]);
        assert_eq!(HealthConfig::merged(None, None), None);
    }

    #[test]
    fn output_is_capped() {
        let r = HealthResult::new(Utc::now(), 0, &[b'x'; 5000]);
        assert_eq!(r.output.len(), MAX_OUTPUT);
    }
}

//! A container's log driver and its options: `run`/`create`'s `--log-driver` and `--log-opt`,
//! and the default in `config.toml`'s `[log]` table (docker's daemon.json `log-driver` and
//! `log-opts`).
//!
//! The type lives here, below `store` (which keeps it in the container's record) and `runtime`
//! (whose monitor writes the log), because the config file gives the default. Options are
//! checked once, here, into numbers; the record keeps them as given too, for `inspect`'s
//! `HostConfig.LogConfig.Config`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The log drivers den has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// podman's default: the CRI log format, one `TIME STREAM F|P MESSAGE` record per line.
    #[default]
    K8sFile,
    /// docker's default: one JSON object per line.
    JsonFile,
    /// Nothing kept; `logs` refuses.
    None,
    /// podman's: the container's stdio is den's own; nothing kept.
    Passthrough,
}

/// Drivers docker has that den does not: named in the refusal, so the user is told den knows
/// them rather than that they do not exist.
const DOCKER_ONLY: &[&str] = &[
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

impl LogDriver {
    pub const ALL: &'static str = "k8s-file, json-file, none, passthrough";

    pub fn parse(s: &str) -> Result<LogDriver, ConfigError> {
        Ok(match s {
            "k8s-file" => LogDriver::K8sFile,
            "json-file" => LogDriver::JsonFile,
            "none" => LogDriver::None,
            "passthrough" => LogDriver::Passthrough,
            d if DOCKER_ONLY.contains(&d) => {
                return Err(ConfigError::UnsupportedLogDriver(d.into()));
            }
            d => return Err(ConfigError::UnknownLogDriver(d.into())),
        })
    }

    /// docker's name (`HostConfig.LogConfig.Type`).
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::K8sFile => "k8s-file",
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
            LogDriver::Passthrough => "passthrough",
        }
    }

    /// Whether the driver keeps a file `logs` reads.
    pub fn keeps_file(self) -> bool {
        matches!(self, LogDriver::K8sFile | LogDriver::JsonFile)
    }
}

/// Options docker's json-file driver accepts that only add attributes for log shippers (docker
/// writes matching labels and variables into each record's `attrs`; `tag` is for the drivers
/// that send elsewhere). den accepts them, so docker's command lines run, and ignores them.
const IGNORED_OPTS: &[&str] = &["labels", "labels-regex", "env", "env-regex", "tag"];

/// A container's logging: the driver, its options as given, and those options parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub driver: LogDriver,
    /// The options as given (`max-size` → `10m`), for `inspect`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub opts: BTreeMap<String, String>,
    /// `max-size` in bytes: the file is rotated before it would pass this. None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// `max-file`: how many files are kept, the live one included (docker's default 1).
    #[serde(default = "one")]
    pub max_file: u32,
}

fn one() -> u32 {
    1
}

/// The most files `max-file` may keep (a bound on what a reader opens).
pub const MAX_FILES: u32 = 100;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::k8s_file()
    }
}

impl LogConfig {
    /// The default: k8s-file, no rotation.
    pub fn k8s_file() -> LogConfig {
        LogConfig {
            driver: LogDriver::K8sFile,
            opts: BTreeMap::new(),
            max_size: None,
            max_file: 1,
        }
    }

    /// `--log-driver` and `--log-opt KEY=VALUE` flags, checked as far as they can be without
    /// the config file's default: the driver named, the options split and valid for it (for
    /// a file driver when none is named).
    pub fn parse_flags(
        driver: Option<&str>,
        opts: &[String],
    ) -> Result<(Option<LogDriver>, BTreeMap<String, String>), ConfigError> {
        let mut map = BTreeMap::new();
        for o in opts {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::BadLogOpt(o.clone()))?;
            map.insert(k.to_string(), v.to_string());
        }
        let driver = driver.map(LogDriver::parse).transpose()?;
        LogConfig::new(driver.unwrap_or(LogDriver::K8sFile), map.clone())?;
        Ok((driver, map))
    }

    /// The logging for flags parsed by [`LogConfig::parse_flags`] over `default` (the config
    /// file's): a driver given drops the default's options, as docker's daemon does; options
    /// alone add to the default's.
    pub fn resolve(
        driver: Option<LogDriver>,
        opts: &BTreeMap<String, String>,
        default: &LogConfig,
    ) -> Result<LogConfig, ConfigError> {
        match driver {
            Some(d) => LogConfig::new(d, opts.clone()),
            None if opts.is_empty() => Ok(default.clone()),
            None => {
                let mut all = default.opts.clone();
                all.extend(opts.clone());
                LogConfig::new(default.driver, all)
            }
        }
    }

    /// Check `opts` for `driver`.
    pub fn new(
        driver: LogDriver,
        opts: BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut cfg = LogConfig {
            driver,
            max_size: None,
            max_file: 1,
            opts: BTreeMap::new(),
        };
        for (k, v) in &opts {
            let unknown = || ConfigError::UnknownLogOpt {
                key: k.clone(),
                driver: driver.name(),
            };
            let bad = |why: &'static str| ConfigError::BadLogOptValue {
                key: k.clone(),
                value: v.clone(),
                why,
            };
            match k.as_str() {
                // docker's options for every driver: how its daemon buffers messages. den's
                // writer never drops output (docker's blocking mode, whichever is asked).
                "mode" if v == "blocking" || v == "non-blocking" => continue,
                "mode" => return Err(bad("blocking or non-blocking")),
                "max-buffer-size" if parse_size(v).is_some_and(|n| n > 0) => continue,
                "max-buffer-size" => return Err(bad("a size such as 4m")),
                _ if !driver.keeps_file() => return Err(unknown()),
                "max-size" => {
                    cfg.max_size = match parse_size(v) {
                        Some(-1) => None,
                        Some(n) if n > 0 => Some(n as u64),
                        _ => return Err(bad("a size such as 100k, 10m or 1g (or -1 for none)")),
                    }
                }
                "max-file" => {
                    cfg.max_file = match v.parse::<u32>() {
                        Ok(n) if (1..=MAX_FILES).contains(&n) => n,
                        _ => return Err(bad("a number of files from 1 to 100")),
                    }
                }
                k if IGNORED_OPTS.contains(&k) => {}
                _ => return Err(unknown()),
            }
        }
        cfg.opts = opts;
        Ok(cfg)
    }
}

/// docker's sizes (go-units' RAMInBytes): a number with an optional unit b, k, m, g, t
/// (kb, mb... and kib, mib... too), powers of 1024, case-insensitive; `-1` for no limit.
pub fn parse_size(s: &str) -> Option<i64> {
    if s == "-1" {
        return Some(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    let n = num * (1u64 << shift) as f64;
    (n.is_finite() && n >= 0.0 && n < i64::MAX as f64).then_some(n as i64)
}

/// `config.toml`'s `[log]` table: `driver` and `opts` as docker's daemon.json has
/// `log-driver` and `log-opts`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogTable {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub opts: BTreeMap<String, String>,
}

impl LogTable {
    /// The default logging the table sets (k8s-file when it sets none).
    pub fn log_config(&self) -> Result<LogConfig, ConfigError> {
        let driver = match &self.driver {
            Some(d) => LogDriver::parse(d)?,
            None => LogDriver::K8sFile,
        };
        LogConfig::new(driver, self.opts.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(d: Option<&str>, o: &[&str]) -> Result<LogConfig, ConfigError> {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        let (d, o) = LogConfig::parse_flags(d, &o)?;
        LogConfig::resolve(d, &o, &LogConfig::k8s_file())
    }

    #[test]
    fn sizes_in_docker_units() {
        assert_eq!(parse_size("10k"), Some(10 * 1024));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("-1"), Some(-1));
        for bad in ["", "k", "10x", "-5", "1e400", "ten"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn drivers_docker_has_and_den_lacks_are_named() {
        assert!(matches!(
            LogDriver::parse("syslog"),
            Err(ConfigError::UnsupportedLogDriver(d)) if d == "syslog"
        ));
        assert!(matches!(
            LogDriver::parse("nope"),
            Err(ConfigError::UnknownLogDriver(_))
        ));
        assert_eq!(LogDriver::parse("json-file").unwrap(), LogDriver::JsonFile);
    }

    #[test]
    fn options_are_checked_once() {
        let c = flags(Some("json-file"), &["max-size=10k", "max-file=3"]).unwrap();
        assert_eq!((c.max_size, c.max_file), (Some(10240), 3));
        assert_eq!(c.opts["max-size"], "10k");
        assert!(matches!(
            flags(Some("json-file"), &["max-size=ten"]),
            Err(ConfigError::BadLogOptValue { .. })
        ));
        assert!(matches!(
            flags(Some("json-file"), &["max-file=0"]),
            Err(ConfigError::BadLogOptValue { .. })
        ));
        assert!(matches!(
            flags(Some("json-file"), &["compress=true"]),
            Err(ConfigError::UnknownLogOpt { .. })
        ));
        assert!(matches!(
            flags(Some("none"), &["max-size=1m"]),
            Err(ConfigError::UnknownLogOpt { .. })
        ));
        assert!(matches!(
            flags(None, &["max-size"]),
            Err(ConfigError::BadLogOpt(_))
        ));
        // docker's json-file accepts these (they feed `attrs`); den ignores them.
        assert!(flags(Some("json-file"), &["tag=x", "labels=a,b", "env=A"]).is_ok());
        // docker's options for every driver.
        assert!(flags(Some("none"), &["mode=non-blocking", "max-buffer-size=4m"]).is_ok());
        assert!(matches!(
            flags(Some("json-file"), &["mode=fast"]),
            Err(ConfigError::BadLogOptValue { .. })
        ));
    }

    #[test]
    fn a_driver_given_drops_the_defaults_options() {
        let default = LogTable {
            driver: Some("json-file".into()),
            opts: [("max-size".to_string(), "1m".to_string())].into(),
        }
        .log_config()
        .unwrap();
        let none = LogConfig::resolve(Some(LogDriver::None), &BTreeMap::new(), &default).unwrap();
        assert_eq!(none.driver, LogDriver::None);
        let opts = [("max-file".to_string(), "2".to_string())].into();
        let more = LogConfig::resolve(None, &opts, &default).unwrap();
        assert_eq!((more.max_size, more.max_file), (Some(1 << 20), 2));
        assert_eq!(
            LogConfig::resolve(None, &BTreeMap::new(), &default).unwrap(),
            default
        );
    }
}

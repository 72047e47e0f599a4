//! `[run]`: the defaults of `den run` and `den create` that a site or a user switches on, the
//! HPC ones first: the host's network, the current directory and `$HOME` bound in, the user's
//! own id inside, the host's IPC and PID namespaces. A flag on the command line wins over each.
//!
//! ```toml
//! [run]
//! network = "host"      # as --network host (any --network value)
//! bind_cwd = true       # as -v $PWD:$PWD -w $PWD
//! bind_home = true      # as -v $HOME:$HOME
//! userns = "keep-id"    # as --userns keep-id
//! ipc = "host"          # as --ipc host
//! pid = "host"          # as --pid host
//! env_host = true      # as --env-host: a batch job's environment (SLURM_*) reaches the container
//! ```
//!
//! The words are checked when the file is read (TOML's error names the key); the network's
//! text is parsed by `run` with `--network`'s parser, which lives above this module.

use serde::Deserialize;

/// `[run]` as the file has it. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunTable {
    /// `--network`'s default (den's own default, slirp4netns where installed, without it).
    #[serde(default)]
    pub network: Option<String>,
    /// Bind the current directory at the same path and start there (`-v $PWD:$PWD -w $PWD`).
    #[serde(default)]
    pub bind_cwd: bool,
    /// Bind `$HOME` at the same path (`-v $HOME:$HOME`).
    #[serde(default)]
    pub bind_home: bool,
    /// `--userns`'s default.
    #[serde(default)]
    pub userns: Option<Userns>,
    /// `--ipc`'s default.
    #[serde(default)]
    pub ipc: Option<Namespace>,
    /// `--pid`'s default.
    #[serde(default)]
    pub pid: Option<Namespace>,
    /// `--env-host`'s default: den's whole environment passed to the container.
    #[serde(default)]
    pub env_host: bool,
}

/// `[run] userns`: podman's words.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Userns {
    /// The user's uid and gid inside.
    KeepId,
    /// den's user namespace as it is: the container's root is the user.
    Host,
}

/// `[run] ipc` and `pid`: docker's words.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Namespace {
    Host,
    Private,
}

impl RunTable {
    /// Whether `userns` asks for keep-id.
    pub fn keep_id(&self) -> bool {
        self.userns == Some(Userns::KeepId)
    }
    pub fn host_ipc(&self) -> bool {
        self.ipc == Some(Namespace::Host)
    }
    pub fn host_pid(&self) -> bool {
        self.pid == Some(Namespace::Host)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::path::Path;

    #[test]
    fn an_hpc_site_config_parses() {
        let c = Config::parse(
            Path::new("c.toml"),
            "[run]\nnetwork = \"host\"\nbind_cwd = true\nbind_home = true\nuserns = \"keep-id\"\nipc = \"host\"\npid = \"host\"\n",
        )
        .unwrap();
        assert_eq!(c.run.network.as_deref(), Some("host"));
        assert!(c.run.bind_cwd && c.run.bind_home);
        assert!(c.run.keep_id() && c.run.host_ipc() && c.run.host_pid());
        let none = Config::parse(Path::new("c.toml"), "").unwrap();
        assert_eq!(none.run, RunTable::default());
        assert!(!none.run.keep_id() && !none.run.host_pid());
    }

    #[test]
    fn a_bad_word_names_the_key() {
        let e = Config::parse(Path::new("c.toml"), "[run]\nipc = \"shared\"\n").unwrap_err();
        let text = crate::error::chain(&e);
        assert!(text.contains("ipc") || text.contains("shared"), "{text}");
        assert!(Config::parse(Path::new("c.toml"), "[run]\nbind_pwd = true\n").is_err());
    }

    #[test]
    fn env_host_is_read_and_off_by_default() {
        let c = Config::parse(Path::new("c.toml"), "[run]\nenv_host = true\n").unwrap();
        assert!(c.run.env_host);
        assert!(!Config::default().run.env_host);
        let e = Config::parse(Path::new("c.toml"), "[run]\nenv_host = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("c.toml"));
    }
}

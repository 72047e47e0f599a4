//! Mistakes in how a container was asked to run: `run`, `create` and `exec` flags that parse
//! but cannot work (an environment variable without a name, a restart policy den does not know,
//! `-t` without a terminal, a mount point given twice), found before anything is created.

use crate::error::Diagnose;

/// A run, create or exec flag (or its absence) that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error(
        "the passthrough log driver cannot be used with -d: the container's output would have nowhere to go"
    )]
    PassthroughDetached,
    #[error("invalid environment variable {0:?}")]
    BadEnv(String),
    #[error("cannot read env file {path}")]
    EnvFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the input device is not a TTY")]
    NotATty,
    #[error("no command specified for image {0}")]
    NoCommand(String),
    #[error("invalid restart policy {0:?}")]
    BadRestart(String),
    #[error("conflicting options: --restart and --rm")]
    RmWithRestart,
    #[error("duplicate mount point: {0}")]
    DuplicateMount(String),
    #[error("invalid signal {0:?}")]
    BadSignal(String),
    #[error("invalid pull policy {0:?}")]
    BadPull(String),
    #[error("invalid annotation {0:?}")]
    BadAnnotation(String),
    #[error("unknown time zone {0:?}")]
    BadTimezone(String),
    #[error("invalid --uts {0:?}")]
    BadUts(String),
    #[error("invalid --ipc {0:?}")]
    BadIpc(String),
    #[error("invalid --pid {0:?}")]
    BadPid(String),
    #[error("invalid --userns {0:?}")]
    BadUserns(String),
    #[error("--hostname cannot be used with --uts host")]
    HostnameWithHostUts,
    #[error("Container ID file found, make sure the other container isn't running or delete {}", .0.display())]
    CidFileExists(std::path::PathBuf),
    #[error("invalid detach keys {0:?}")]
    BadDetachKeys(String),
    #[error(
        "invalid argument {0:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
    )]
    BadAttach(String),
    #[error("{0} is a flag of run, not of create")]
    RunOnly(&'static str),
    #[error("Conflicting options: -a and -d")]
    AttachWithDetach,
    #[error("invalid {flag} {value:?}")]
    BadHealth { flag: &'static str, value: String },
    #[error("--no-healthcheck conflicts with --health-* options")]
    NoHealthcheckConflict,
    #[error("cannot write the container ID file {}", path.display())]
    CidFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for FlagError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            FlagError::PassthroughDetached => {
                "run it in the foreground, or use --log-driver k8s-file or json-file with -d".into()
            }
            FlagError::BadEnv(_) => {
                "write it as KEY=VALUE, or KEY to pass the variable from den's environment".into()
            }
            FlagError::EnvFile { .. } => "check the path given to --env-file".into(),
            FlagError::NotATty => "drop -t, or run den from a terminal".into(),
            FlagError::BadHealth {
                flag: "--health-retries",
                ..
            } => "give a count of 0 or more, e.g. --health-retries 3".into(),
            FlagError::BadHealth { flag, .. } => {
                format!("give a duration of 1ms or more, e.g. {flag} 30s or 1m30s or 500ms")
            }
            FlagError::NoHealthcheckConflict => {
                "drop --no-healthcheck, or the --health-* options".into()
            }
            FlagError::NoCommand(_) => {
                "give a command after the image name, or use an image with CMD or ENTRYPOINT".into()
            }
            FlagError::BadRestart(_) => {
                "use no, always, unless-stopped or on-failure[:MAX-RETRIES]".into()
            }
            FlagError::RmWithRestart => "drop --rm, or use --restart no".into(),
            FlagError::DuplicateMount(_) => "mount each container path once".into(),
            FlagError::BadSignal(_) => "use a signal name (TERM, SIGHUP) or number (15)".into(),
            FlagError::BadPull(_) => "use --pull always, missing or never".into(),
            FlagError::BadAnnotation(_) => "write it as KEY=VALUE".into(),
            FlagError::BadTimezone(_) => {
                "use a name under /usr/share/zoneinfo (Europe/Paris, UTC) or local".into()
            }
            FlagError::BadUts(_) => "use --uts host or --uts private".into(),
            FlagError::BadIpc(_) => "use --ipc host or --ipc private (den cannot join another container's)".into(),
            FlagError::BadPid(_) => "use --pid host or --pid private (den cannot join another container's)".into(),
            FlagError::BadUserns(_) => {
                "use --userns keep-id (your uid and gid inside) or --userns host (den's own, the default)".into()
            }
            FlagError::HostnameWithHostUts => "drop --hostname, or drop --uts host".into(),
            FlagError::CidFileExists(_) => {
                "remove the file, or give --cidfile a path that does not exist".into()
            }
            FlagError::BadDetachKeys(_) => "write a comma-separated list of ctrl-<a-z @ [ \\ ] ^ _> or single characters (ctrl-p,ctrl-q), or \"\" to disable detaching".into(),
            FlagError::BadAttach(_) => "use -a stdin, -a stdout or -a stderr (repeat -a for more)".into(),
            FlagError::RunOnly(_) => "drop it here, and give it to `den start -a` or `den run`".into(),
            FlagError::AttachWithDetach => "drop -a to run in the background, or drop -d to attach".into(),
            FlagError::CidFile { .. } => {
                "give --cidfile a path in a directory you can write".into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_errors_have_hints_and_exit_125() {
        assert!(FlagError::NotATty.hint().unwrap().contains("-t"));
        assert_eq!(FlagError::NotATty.exit_code(), crate::error::EXIT_DEN);
    }
}

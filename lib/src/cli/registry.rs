//! Flags of `login`, `logout` and `push`, podman's `--authfile` and `--creds` for every verb that
//! talks to a registry, and reading a password without showing it.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use crate::auth::{Access, AuthError, Credentials};

/// A flag's value that must not be shown: `Debug` hides it (clap's parsed arguments may be
/// logged whole).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    fn parse(s: &str) -> Result<Secret, String> {
        Ok(Secret(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// podman's `--authfile` and `--creds`, for pull, push, search and build.
#[derive(Debug, Clone, Default, Args)]
pub struct AccessArgs {
    /// Read credentials only from this auth file (and the credential helpers it names)
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<std::path::PathBuf>,
    /// Credentials for this command only, stored nowhere: USER[:PASSWORD] (the password is asked
    /// for on a terminal when left out)
    #[arg(long, value_name = "USER[:PASSWORD]", value_parser = Secret::parse)]
    pub creds: Option<Secret>,
}

impl AccessArgs {
    /// The command's [`Access`]; `registry` names the registry in the error when `--creds` has
    /// no password and there is no terminal to ask on.
    pub fn access(&self, registry: &str) -> Result<Access, AuthError> {
        let creds = match &self.creds {
            Some(c) => Some(crate::auth::parse_creds(c.expose(), registry, || {
                std::io::stdin()
                    .is_terminal()
                    .then(|| prompt(&format!("Password for {registry}: "), true))
            })?),
            None => None,
        };
        Ok(Access {
            authfile: self.authfile.clone(),
            creds,
        })
    }

    /// The same, with credentials handed down by a parent den command in [`crate::auth::CREDS_ENV`] when
    /// the command line has none (den-image pull, started by build).
    pub fn access_or_inherited(&self, registry: &str) -> Result<Access, AuthError> {
        let mut access = self.access(registry)?;
        if access.creds.is_none()
            && let Some(v) = std::env::var_os(crate::auth::CREDS_ENV).filter(|v| !v.is_empty())
        {
            access.creds = Some(crate::auth::parse_creds(
                &v.to_string_lossy(),
                registry,
                || None,
            )?);
        }
        Ok(access)
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Registry (HOST[:PORT]); Docker Hub when left out
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Verify the registry's TLS certificate (false also allows plain http)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Keep the credentials in this auth file (created 0600) instead of den's own
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Registry (HOST[:PORT]); Docker Hub when left out
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// Remove the credentials from this auth file instead of den's own
    #[arg(long, value_name = "PATH", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Image to push: NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
    /// Push to this name instead of the image's own (podman's form)
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Print only the pushed digest's line
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the pushed manifest's digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,
    /// Verify the registry's TLS certificate (false also allows plain http)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// The credentials `den login` was given: flags, standard input, or prompts on a terminal.
pub fn login_credentials(a: &LoginArgs, registry: &str) -> Result<Credentials, AuthError> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal() && !a.password_stdin;
    let username = match &a.username {
        Some(u) => u.clone(),
        None if interactive => prompt("Username: ", false),
        None => {
            return Err(AuthError::NoUser {
                registry: registry.into(),
            });
        }
    };
    if username.is_empty() {
        return Err(AuthError::NoUser {
            registry: registry.into(),
        });
    }
    let password = if a.password_stdin {
        let mut line = String::new();
        let _ = stdin.lock().read_line(&mut line);
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        crate::cli::note("using --password on the command line is insecure; use --password-stdin");
        p.clone()
    } else if interactive {
        prompt("Password: ", true)
    } else {
        String::new()
    };
    if password.is_empty() {
        return Err(AuthError::NoPassword {
            registry: registry.into(),
        });
    }
    Ok(Credentials { username, password })
}

/// Ask on the terminal; with `secret`, without echoing what is typed.
fn prompt(text: &str, secret: bool) -> String {
    use std::os::fd::AsFd;
    let mut err = std::io::stderr();
    let stdin = std::io::stdin();
    // Echo goes off before the prompt shows: a user (or a script) that answers the prompt the
    // moment it appears must never see the password echoed.
    let quiet = if secret {
        crate::sys::TerminalMode::without_echo(stdin.as_fd())
    } else {
        None
    };
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    if let Some(quiet) = quiet {
        drop(quiet);
        let _ = writeln!(err);
    }
    line.trim_end_matches(['\n', '\r']).to_string()
}

/// `search TERM`
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// REGISTRY/TERM: repositories on REGISTRY whose names contain TERM
    pub term: String,
    /// The most results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Filter: stars=N, is-official=true|false, is-automated=true|false
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format: table, json, or a Go template such as '{{.Name}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Do not truncate the description
    #[arg(long)]
    pub no_trunc: bool,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl SearchArgs {
    pub fn options(&self) -> crate::ops::Result<crate::ops::search::SearchOptions> {
        let filters = self
            .filter
            .iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) if matches!(k, "stars" | "is-official" | "is-automated") => {
                    Ok((k.to_string(), v.to_string()))
                }
                _ => Err(crate::store::ContainersError::BadFilter(f.clone()).into()),
            })
            .collect::<crate::ops::Result<Vec<_>>>()?;
        let registry = self.term.split('/').next().unwrap_or_default();
        Ok(crate::ops::search::SearchOptions {
            term: self.term.clone(),
            limit: self.limit,
            filters,
            access: self.access.access(registry)?,
        })
    }
}

//! Flags of `login`, `logout` and `push`, and reading a password without showing it.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use crate::auth::{AuthError, Credentials};

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
}

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Registry (HOST[:PORT]); Docker Hub when left out
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
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
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let stdin = std::io::stdin();
    let quiet = if secret {
        crate::sys::TerminalMode::without_echo(stdin.as_fd())
    } else {
        None
    };
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
        Ok(crate::ops::search::SearchOptions {
            term: self.term.clone(),
            limit: self.limit,
            filters,
        })
    }
}

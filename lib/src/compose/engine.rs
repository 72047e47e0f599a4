//! Running den for compose: den's own binary as a child with the argument vectors
//! [`super::plan`] makes, the project's containers found by their labels, and the waits
//! `depends_on` asks for. A child's failure has been reported by the child on the shared
//! stderr; it comes back as [`Reported`] so nothing is said twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::Reported;

use super::ComposeError;
use super::plan;

/// How often a wait looks at a container again.
const POLL: Duration = Duration::from_millis(100);

/// den's front, run as a child.
#[derive(Debug, Clone)]
pub struct Den {
    pub path: PathBuf,
}

/// A container of the project, as `den ps` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub state: String,
    pub image: String,
    pub command: String,
    pub created: String,
    pub status: String,
    pub ports: String,
    pub labels: BTreeMap<String, String>,
}

impl Existing {
    pub fn service(&self) -> &str {
        self.labels.get(plan::SERVICE).map_or("", String::as_str)
    }
    pub fn number(&self) -> usize {
        self.labels
            .get(plan::NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
    pub fn oneoff(&self) -> bool {
        self.labels.get(plan::ONEOFF).is_some_and(|v| v == "True")
    }
    pub fn hash(&self) -> &str {
        self.labels.get(plan::HASH).map_or("", String::as_str)
    }
    pub fn running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting" | "paused")
    }
}

/// A container's state, from `den inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: String,
    pub exit_code: i32,
    /// `State.Health.Status`, when the container has a health check.
    pub health: Option<String>,
}

const LISTING: &str = "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Labels}}";

impl Den {
    /// den next to this program, else on PATH.
    pub fn find() -> Result<Den, ComposeError> {
        crate::config::tool_path("den")
            .map(|path| Den { path })
            .ok_or(ComposeError::NotInstalled("den"))
    }

    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(args).stdin(Stdio::null());
        c
    }

    fn spawn_error(&self, source: std::io::Error) -> ComposeError {
        ComposeError::Spawn {
            tool: self.path.clone(),
            source,
        }
    }

    /// Run `den ARGS`; its stdout. Its stderr is the user's: a failure has said why there.
    pub fn run(&self, args: &[String]) -> Result<String, ComposeError> {
        tracing::debug!(?args, "den");
        let out = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Reported(out.status.code().unwrap_or(1)).into())
        }
    }

    /// Run `den ARGS` quietly: its stdout when it succeeded.
    pub fn probe(&self, args: &[&str]) -> Option<String> {
        let out = self
            .command(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A child `den ARGS` with its output piped (logs).
    pub fn spawn_piped(&self, args: &[String]) -> Result<std::process::Child, ComposeError> {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))
    }

    /// The project's containers, stopped ones too.
    pub fn containers(&self, project: &str) -> Result<Vec<Existing>, ComposeError> {
        let out = self.run(&[
            "ps".into(),
            "-a".into(),
            "--no-trunc".into(),
            "--filter".into(),
            format!("label={}={project}", plan::PROJECT),
            "--format".into(),
            LISTING.into(),
        ])?;
        Ok(out.lines().filter_map(parse_row).collect())
    }

    /// Every container with a compose project label (`ls`).
    pub fn all_compose_containers(&self) -> Result<Vec<Existing>, ComposeError> {
        let out = self.run(&[
            "ps".into(),
            "-a".into(),
            "--no-trunc".into(),
            "--filter".into(),
            format!("label={}", plan::PROJECT),
            "--format".into(),
            LISTING.into(),
        ])?;
        Ok(out.lines().filter_map(parse_row).collect())
    }

    /// The containers named `names` that exist (any project).
    pub fn containers_named(&self, names: &[String]) -> Result<Vec<Existing>, ComposeError> {
        let all = self.all_compose_containers()?;
        Ok(all
            .into_iter()
            .filter(|e| names.contains(&e.name))
            .collect())
    }

    /// A container's state; `None` when it is gone.
    pub fn state(&self, name: &str) -> Option<State> {
        let out = self.probe(&["inspect", "--format", "{{json .State}}", name])?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        Some(State {
            status: v["Status"].as_str().unwrap_or_default().to_string(),
            exit_code: v["ExitCode"].as_i64().unwrap_or(0) as i32,
            health: v["Health"]["Status"].as_str().map(String::from),
        })
    }

    /// Whether `den KIND inspect NAME` finds it (a network, a volume, an image).
    pub fn exists(&self, kind: &str, name: &str) -> bool {
        self.probe(&[kind, "inspect", name]).is_some()
    }

    /// Wait until `name` is healthy; an unhealthy or stopped container is an error, and so is
    /// one without a health check unless its service `declared` one (not reported yet).
    pub fn wait_healthy(&self, name: &str, declared: bool) -> Result<(), ComposeError> {
        loop {
            let s = self
                .state(name)
                .ok_or_else(|| ComposeError::ExitedUnhealthy(name.to_string()))?;
            match s.health.as_deref() {
                Some("healthy") => return Ok(()),
                Some("unhealthy") => return Err(ComposeError::Unhealthy(name.to_string())),
                None if !declared => return Err(ComposeError::NoHealthcheck(name.to_string())),
                _ if s.status == "exited" => {
                    return Err(ComposeError::ExitedUnhealthy(name.to_string()));
                }
                _ => std::thread::sleep(POLL),
            }
        }
    }

    /// Wait until `name` has exited; its exit code.
    pub fn wait_exited(&self, name: &str) -> i32 {
        loop {
            match self.state(name) {
                Some(s) if s.status == "exited" || s.status == "dead" => return s.exit_code,
                Some(_) => std::thread::sleep(POLL),
                None => return -1,
            }
        }
    }
}

/// One line of [`LISTING`].
fn parse_row(line: &str) -> Option<Existing> {
    let f: Vec<&str> = line.splitn(9, '\t').collect();
    let [
        id,
        name,
        state,
        image,
        command,
        created,
        status,
        ports,
        labels,
    ] = f.as_slice()
    else {
        return None;
    };
    Some(Existing {
        id: id.to_string(),
        name: name.to_string(),
        state: state.to_string(),
        image: image.to_string(),
        command: command.to_string(),
        created: created.to_string(),
        status: status.to_string(),
        ports: ports.to_string(),
        labels: parse_labels(labels),
    })
}

/// `den ps`'s `k=v,k=v` (a value with a comma ends up cut; compose's own labels have none but
/// the config files' list, which is only shown).
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_row_is_read_with_its_labels() {
        let row = "abc\tdemo-web-1\trunning\tdemo-web\t\"httpd -f\"\t2 seconds ago\tUp 2 seconds\t0.0.0.0:8080->80/tcp\tcom.docker.compose.project=demo,com.docker.compose.service=web,com.docker.compose.container-number=2,com.docker.compose.oneoff=False";
        let e = parse_row(row).unwrap();
        assert_eq!(e.name, "demo-web-1");
        assert_eq!(e.service(), "web");
        assert_eq!(e.number(), 2);
        assert!(!e.oneoff());
        assert!(e.running());
        assert!(parse_row("too\tfew").is_none());
    }
}

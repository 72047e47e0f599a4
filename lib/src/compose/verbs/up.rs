//! `up`: networks and volumes made, images built, then each service in its own thread: it
//! waits for its dependencies' conditions, then makes (or keeps, or remakes) its containers.
//! An unchanged service (same config hash) is left running; a changed one is recreated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};

use super::Progress;
use crate::compose::ComposeError;
use crate::compose::engine::{Den, Existing};
use crate::compose::model::{Condition, Mount, Project};
use crate::compose::plan::{self, Make};

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub services: Vec<String>,
    /// `--build` (`Some(true)`), `--no-build` (`Some(false)`), else build what is missing.
    pub build: Option<bool>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub no_deps: bool,
    pub remove_orphans: bool,
    pub wait: bool,
}

/// Bring the services up; the names of their containers, dependencies first.
pub fn up(
    den: &Den,
    project: &Project,
    opts: &UpOptions,
    progress: Progress,
) -> Result<Vec<String>, ComposeError> {
    let selected = plan::selection(project, &opts.services, opts.no_deps)?;
    let order = plan::order(project, &selected)?;
    prepare(den, project, &selected, progress)?;
    build_missing(den, project, &order, opts.build, progress)?;
    let existing = den.containers(&project.name)?;
    super::orphans(den, project, &existing, opts.remove_orphans, progress)?;
    let board = Board::new(&order);
    let results: Vec<Result<(), ComposeError>> = std::thread::scope(|s| {
        let handles: Vec<_> = order
            .iter()
            .map(|name| {
                let (board, existing, selected) = (&board, &existing, &selected);
                s.spawn(move || {
                    let r = service_up(
                        den, project, name, existing, selected, opts, board, progress,
                    );
                    board.finish(name, r.is_ok());
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(ComposeError::DependencyFailed("?".into())))
            })
            .collect()
    });
    // The first real failure, not its dependents' "dependency failed".
    let mut errors: Vec<ComposeError> = results.into_iter().filter_map(Result::err).collect();
    errors.sort_by_key(|e| matches!(e, ComposeError::DependencyFailed(_)));
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let names: Vec<String> = order.iter().flat_map(|s| replicas(project, s)).collect();
    if opts.wait {
        wait_all(den, project, &order, progress)?;
    }
    Ok(names)
}

/// The container names of `service`'s replicas.
pub fn replicas(project: &Project, service: &str) -> Vec<String> {
    (1..=project.services[service].replicas)
        .map(|n| plan::container_name(project, service, n))
        .collect()
}

/// The project networks and volumes the selected services use: made when missing, external
/// ones required.
pub fn prepare(
    den: &Den,
    project: &Project,
    selected: &BTreeSet<String>,
    progress: Progress,
) -> Result<(), ComposeError> {
    let mut nets = BTreeSet::new();
    let mut vols = BTreeSet::new();
    for s in selected {
        let svc = &project.services[s];
        nets.extend(svc.networks.keys().cloned());
        for m in &svc.mounts {
            if let Mount::Volume {
                source: Some(v), ..
            } = m
            {
                vols.insert(v.clone());
            }
        }
    }
    for key in nets {
        let def = &project.networks[&key];
        ensure(
            den,
            project,
            "network",
            &key,
            &def.name,
            def.external,
            &def.labels,
            progress,
        )?;
    }
    for key in vols {
        let def = &project.volumes[&key];
        ensure(
            den,
            project,
            "volume",
            &key,
            &def.name,
            def.external,
            &def.labels,
            progress,
        )?;
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "a network's or volume's fields, said once"
)]
fn ensure(
    den: &Den,
    project: &Project,
    kind: &'static str,
    key: &str,
    name: &str,
    external: bool,
    labels: &BTreeMap<String, String>,
    progress: Progress,
) -> Result<(), ComposeError> {
    if den.exists(kind, name) {
        return Ok(());
    }
    if external {
        return Err(ComposeError::External {
            kind,
            name: name.to_string(),
        });
    }
    den.run(&plan::create_resource(kind, project, key, name, labels))?;
    progress(&format!(" {} {name}  Created", title(kind)));
    Ok(())
}

fn title(kind: &str) -> &'static str {
    if kind == "network" {
        "Network"
    } else {
        "Volume"
    }
}

/// Build the images of services with `build:` (all with `--build`, missing ones by default).
pub fn build_missing(
    den: &Den,
    project: &Project,
    order: &[String],
    policy: Option<bool>,
    progress: Progress,
) -> Result<(), ComposeError> {
    for name in order {
        let Some(args) = plan::build(project, name, false) else {
            continue;
        };
        let image = plan::image(project, name);
        let needed = policy.unwrap_or_else(|| !den.exists("image", &image));
        if needed {
            progress(&format!(" Service {name}  Building"));
            den.run(&args)?;
            progress(&format!(" Service {name}  Built"));
        }
    }
    Ok(())
}

/// Which services are up: `None` still starting, `Some(ok)` finished.
struct Board {
    done: Mutex<BTreeMap<String, Option<bool>>>,
    changed: Condvar,
}

impl Board {
    fn new(order: &[String]) -> Board {
        Board {
            done: Mutex::new(order.iter().map(|s| (s.clone(), None)).collect()),
            changed: Condvar::new(),
        }
    }
    fn finish(&self, service: &str, ok: bool) {
        if let Ok(mut d) = self.done.lock() {
            d.insert(service.to_string(), Some(ok));
        }
        self.changed.notify_all();
    }
    /// Wait for `service` to finish; whether it came up.
    fn wait(&self, service: &str) -> bool {
        let Ok(mut d) = self.done.lock() else {
            return false;
        };
        loop {
            match d.get(service) {
                Some(Some(ok)) => return *ok,
                None => return true,
                Some(None) => match self.changed.wait(d) {
                    Ok(g) => d = g,
                    Err(_) => return false,
                },
            }
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one service's thread: what it reads, said once"
)]
fn service_up(
    den: &Den,
    project: &Project,
    name: &str,
    existing: &[Existing],
    selected: &BTreeSet<String>,
    opts: &UpOptions,
    board: &Board,
    progress: Progress,
) -> Result<(), ComposeError> {
    for (dep, d) in &project.services[name].depends_on {
        if !selected.contains(dep) {
            continue;
        }
        if !board.wait(dep) {
            return Err(ComposeError::DependencyFailed(dep.clone()));
        }
        for c in replicas(project, dep) {
            match d.condition {
                Condition::Started => {}
                Condition::Healthy => {
                    progress(&format!(" Container {c}  Waiting"));
                    den.wait_healthy(&c, declares_health(project, dep))?;
                    progress(&format!(" Container {c}  Healthy"));
                }
                Condition::CompletedSuccessfully => {
                    progress(&format!(" Container {c}  Waiting"));
                    let code = den.wait_exited(&c);
                    if code != 0 {
                        return Err(ComposeError::NotCompleted {
                            service: dep.clone(),
                            code,
                        });
                    }
                    progress(&format!(" Container {c}  Exited"));
                }
            }
        }
    }
    converge(den, project, name, existing, opts, progress)
}

/// Make `name`'s replicas match the project: keep, start, recreate, create, scale down.
fn converge(
    den: &Den,
    project: &Project,
    name: &str,
    existing: &[Existing],
    opts: &UpOptions,
    progress: Progress,
) -> Result<(), ComposeError> {
    let svc = &project.services[name];
    let hash = plan::config_hash(svc);
    let mine: Vec<&Existing> = existing
        .iter()
        .filter(|e| e.service() == name && !e.oneoff())
        .collect();
    for n in 1..=svc.replicas {
        let cname = plan::container_name(project, name, n);
        let keep = |e: &Existing| opts.no_recreate || (e.hash() == hash && !opts.force_recreate);
        match mine.iter().find(|e| e.name == cname) {
            Some(e) if keep(e) && e.running() => progress(&format!(" Container {cname}  Running")),
            Some(e) if keep(e) => {
                den.run(&["start".into(), cname.clone()])?;
                progress(&format!(" Container {cname}  Started"));
            }
            Some(_) => {
                progress(&format!(" Container {cname}  Recreate"));
                den.run(&["rm".into(), "-f".into(), cname.clone()])?;
                create(den, project, name, n, &Make::default(), true)?;
                progress(&format!(" Container {cname}  Recreated"));
            }
            None => {
                create(den, project, name, n, &Make::default(), true)?;
                progress(&format!(" Container {cname}  Started"));
            }
        }
    }
    for e in mine.iter().filter(|e| e.number() > svc.replicas) {
        den.run(&["rm".into(), "-f".into(), e.name.clone()])?;
        progress(&format!(" Container {}  Removed", e.name));
    }
    Ok(())
}

/// Make one container (and start it when `start`): `den run -d` when it has one network,
/// else `den create`, `den network connect` for the others, `den start`.
pub fn create(
    den: &Den,
    project: &Project,
    service: &str,
    n: usize,
    make: &Make,
    start: bool,
) -> Result<String, ComposeError> {
    let c = plan::container(project, service, n, make);
    if c.connect.is_empty() && start {
        let mut args = vec!["run".to_string(), "-d".to_string()];
        args.extend(c.args);
        den.run(&args)?;
        return Ok(c.name);
    }
    let mut args = vec!["create".to_string()];
    args.extend(c.args);
    den.run(&args)?;
    for v in &c.connect {
        den.run(v)?;
    }
    if start {
        den.run(&["start".into(), c.name.clone()])?;
    }
    Ok(c.name)
}

/// `--wait`: every container with a health check healthy, the others running.
fn wait_all(
    den: &Den,
    project: &Project,
    order: &[String],
    progress: Progress,
) -> Result<(), ComposeError> {
    for s in order {
        let checked = declares_health(project, s);
        for c in replicas(project, s) {
            if checked {
                den.wait_healthy(&c, true)?;
                progress(&format!(" Container {c}  Healthy"));
            }
        }
    }
    Ok(())
}

/// Whether the compose file gives `service` a health check of its own.
fn declares_health(project: &Project, service: &str) -> bool {
    project.services[service]
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disable && h.test.is_some())
}

//! The verbs of `den compose`, each a function over a typed [`Project`] and [`Den`]; the
//! binary parses flags and prints. Progress lines (` Container demo-web-1  Started`) go
//! through a [`Progress`] callback, on stderr as docker compose writes them.

pub mod down;
pub mod logs;
pub mod run;
pub mod up;

use std::collections::BTreeMap;

use super::ComposeError;
use super::engine::{Den, Existing};
use super::model::Project;
use super::plan;

/// Where progress lines go.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Containers of services the project no longer has: removed with `--remove-orphans`, else
/// named in a warning, as docker compose does.
pub fn orphans(
    den: &Den,
    project: &Project,
    existing: &[Existing],
    remove: bool,
    progress: Progress,
) -> Result<(), ComposeError> {
    let orphans: Vec<&Existing> = existing
        .iter()
        .filter(|e| !e.oneoff() && !project.services.contains_key(e.service()))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans.iter().map(|e| e.name.as_str()).collect();
        progress(&format!(
            "WARN Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
        return Ok(());
    }
    for e in orphans {
        den.run(&["rm".into(), "-f".into(), e.name.clone()])?;
        progress(&format!(" Container {}  Removed", e.name));
    }
    Ok(())
}

/// The project's containers of `services` (all for none), in dependency order then by
/// number; stopped ones only with `all`; one-off containers left out.
pub fn containers(
    den: &Den,
    project: &Project,
    services: &[String],
    all: bool,
) -> Result<Vec<Existing>, ComposeError> {
    let selected = plan::selection(project, services, true)?;
    let order = plan::order(project, &selected)?;
    let mut found: Vec<Existing> = den
        .containers(&project.name)?
        .into_iter()
        .filter(|e| !e.oneoff() && (all || e.running()))
        .filter(|e| services.is_empty() || selected.contains(e.service()))
        .collect();
    let rank = |e: &Existing| {
        order
            .iter()
            .position(|s| s == e.service())
            .unwrap_or(usize::MAX)
    };
    found.sort_by_key(|e| (rank(e), e.number(), e.name.clone()));
    Ok(found)
}

/// `ps`'s table, docker compose's columns.
pub fn ps_table(rows: &[Existing]) -> String {
    let header = [
        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.image.clone(),
                e.command.clone(),
                e.service().to_string(),
                e.created.clone(),
                e.status.clone(),
                e.ports.clone(),
            ]
        })
        .collect();
    table(&header, &body)
}

/// Columns padded to their widest cell, three spaces apart (docker's tabwriter).
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(str::len);
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `ls`: each project with containers, `running(2), exited(1)`, its files.
pub fn ls(den: &Den, all: bool) -> Result<String, ComposeError> {
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for e in den.all_compose_containers()? {
        let name = e.labels.get(plan::PROJECT).cloned().unwrap_or_default();
        let entry = projects.entry(name).or_default();
        *entry.0.entry(e.state.clone()).or_default() += 1;
        if let Some(f) = e.labels.get(plan::CONFIG_FILES) {
            entry.1 = f.clone();
        }
    }
    let rows: Vec<[String; 3]> = projects
        .into_iter()
        .filter(|(_, (states, _))| all || states.contains_key("running"))
        .map(|(name, (states, files))| {
            let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
            [name, status.join(", "), files]
        })
        .collect();
    Ok(table(&["NAME", "STATUS", "CONFIG FILES"], &rows))
}

/// `config`: the merged, interpolated project as YAML, its inactive services left out.
pub fn config(project: &Project) -> Result<String, ComposeError> {
    let mut tree = project.tree.clone();
    if let Some(services) = tree
        .get_mut("services")
        .and_then(serde_norway::Value::as_mapping_mut)
    {
        services.retain(|k, _| k.as_str().is_some_and(|name| project.active.contains(name)));
    }
    serde_norway::to_string(&tree).map_err(|e| ComposeError::Invalid {
        path: "config".into(),
        problem: e.to_string(),
    })
}

/// A verb on the containers of `services` (`start`, `stop`, `restart`, `kill`): den's
/// argument vector with `flags`, containers in dependency order (reversed for `stop`);
/// `None` when there is none.
pub fn on_containers(
    den: &Den,
    project: &Project,
    verb: &str,
    flags: &[String],
    services: &[String],
) -> Result<Option<Vec<String>>, ComposeError> {
    let mut found = containers(den, project, services, verb != "kill" && verb != "stop")?;
    if verb == "stop" || verb == "kill" {
        found.retain(Existing::running);
        found.reverse();
    }
    if found.is_empty() {
        return Ok(None);
    }
    let mut args = vec![verb.to_string()];
    args.extend(flags.iter().cloned());
    args.extend(found.into_iter().map(|e| e.name));
    Ok(Some(args))
}

/// `build`, `pull`, `push`: den's argument vectors for the services that have what each
/// needs (a build; an image to pull; a built image with a name to push).
pub fn image_verbs(
    project: &Project,
    verb: &str,
    services: &[String],
    no_cache: bool,
) -> Result<Vec<Vec<String>>, ComposeError> {
    let selected = plan::selection(project, services, true)?;
    let mut out = Vec::new();
    for name in plan::order(project, &selected)? {
        let svc = &project.services[&name];
        let args = match verb {
            "build" => plan::build(project, &name, no_cache),
            "pull" if svc.build.is_none() => Some(vec!["pull".into(), plan::image(project, &name)]),
            "push" if svc.build.is_some() && svc.image.is_some() => {
                Some(vec!["push".into(), plan::image(project, &name)])
            }
            _ => None,
        };
        out.extend(args);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_as_docker_does() {
        let t = table(
            &["NAME", "STATUS"],
            &[["demo-web-1".to_string(), "Up 1 second".to_string()]],
        );
        assert_eq!(t, "NAME         STATUS\ndemo-web-1   Up 1 second\n");
    }

    #[test]
    fn image_verbs_pick_the_services_they_apply_to() {
        let (_d, p) = crate::compose::plan::tests::project(
            "services:\n  web: {build: ., image: reg/web}\n  db: {image: busybox}\n",
            &[],
        );
        let pull = image_verbs(&p, "pull", &[], false).unwrap();
        assert_eq!(pull, [["pull", "busybox"]]);
        let push = image_verbs(&p, "push", &[], false).unwrap();
        assert_eq!(push, [["push", "reg/web"]]);
        let build = image_verbs(&p, "build", &[], true).unwrap();
        assert!(build[0].contains(&"--no-cache".to_string()));
    }
}

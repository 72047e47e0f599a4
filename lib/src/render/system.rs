//! The store and the machine as den shows them: `system df` (and `-v`) and `info`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::table::align;
use super::units::{ellipsis, human_duration, human_size4};
use super::{Listing, TemplateError};
use crate::ops::info::Info;
use crate::ops::system::{ContainerUsage, DiskUsage, ImageUsage, Usage};
use crate::store::Status;
use crate::userns::IdMap;
use crate::volume::MountKind;

fn reclaimable_text(u: &Usage) -> String {
    let r = human_size4(u.reclaimable);
    if u.percent && u.size > 0 {
        format!("{r} ({}%)", u.reclaimable * 100 / u.size)
    } else {
        r
    }
}

/// The cgroup line: which hierarchies, and where resource limits go or why they are refused.
fn cgroups(i: &Info) -> String {
    let kind = match i.cgroups {
        (true, true) => "hybrid (v1 + v2)",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none mounted",
    };
    match &i.limits {
        Ok((dir, have)) if have.is_empty() => format!(
            "{kind}; no limits (--memory, --cpus, ... are refused): {} is delegated but gets \
             no controllers (on a hybrid host they are all v1's)",
            dir.display()
        ),
        Ok((dir, have)) => format!(
            "{kind}; limits (--memory, --cpus, --pids-limit, ...) in {} (controllers: {})",
            dir.display(),
            have.join(" ")
        ),
        Err(why) => format!("{kind}; no limits (--memory, --cpus, ... are refused): {why}"),
    }
}

/// The fields `system df --format` offers for a line, as docker names them.
pub fn usage_value(u: &Usage) -> Value {
    json!({
        "Type": u.kind,
        "TotalCount": u.total.to_string(),
        "Active": u.active.to_string(),
        "Size": human_size4(u.size),
        "Reclaimable": reclaimable_text(u),
    })
}

/// `system df`: docker's default columns and headers.
pub const DF: Listing = Listing {
    table: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    headers: &[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ],
};

/// `system df [--format]`, or with `verbose` docker's four sections (`-v`, which takes no
/// format).
pub fn df(
    usage: &DiskUsage,
    verbose: bool,
    format: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, TemplateError> {
    if verbose {
        return Ok(verbose_text(usage, now));
    }
    let rows: Vec<Value> = usage.lines.iter().map(usage_value).collect();
    super::rows(format, &DF, &rows)
}

/// `df -v`: a table per kind, then the build cache's line.
fn verbose_text(u: &DiskUsage, now: DateTime<Utc>) -> String {
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&align(&images_table(&u.images, now)));
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&align(&containers_table(&u.containers, now)));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = vec![header(&["VOLUME NAME", "LINKS", "SIZE"])];
    for v in &u.volumes {
        t.push(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size4(v.size),
        ]);
    }
    out.push_str(&align(&t));
    let cache = u.lines.iter().find(|l| l.kind == "Build Cache");
    out.push_str(&format!(
        "\nBuild cache usage: {} ({} steps)\n",
        human_size4(cache.map(|c| c.size).unwrap_or(0)),
        u.cache_entries
    ));
    out
}

fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map(|t| format!("{} ago", human_duration(now - t)))
        .unwrap_or_else(|| "N/A".into())
}

fn images_table(images: &[ImageUsage], now: DateTime<Utc>) -> Vec<Vec<String>> {
    let mut t = vec![header(&[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ])];
    for i in images {
        for r in crate::ops::images::rows(std::slice::from_ref(&i.image), None) {
            t.push(vec![
                r.repository,
                r.tag,
                i.image.short_id().to_string(),
                ago(i.image.created, now),
                human_size4(i.size),
                human_size4(i.shared),
                human_size4(i.size.saturating_sub(i.shared)),
                i.containers.to_string(),
            ]);
        }
    }
    t
}

fn containers_table(containers: &[ContainerUsage], now: DateTime<Utc>) -> Vec<Vec<String>> {
    let mut t = vec![header(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ])];
    for c in containers {
        let r = &c.record;
        let vols = r
            .spec
            .mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume)
            .count();
        let status = match c.state.status {
            Status::Created => "Created".to_string(),
            Status::Running => "Up".into(),
            Status::Exited => format!("Exited ({})", c.state.exit_code.unwrap_or(0)),
        };
        t.push(vec![
            r.id[..12].to_string(),
            r.image.clone(),
            format!("{:?}", ellipsis(&r.spec.args.join(" "), 20)),
            vols.to_string(),
            human_size4(c.size),
            ago(Some(r.created), now),
            status,
            r.name.clone(),
        ]);
    }
    t
}

// ------------------------------------------------------------------------------------------
// info

/// The store, and the additional stores after it.
fn store_line(i: &Info) -> String {
    let mut out = i.store.display().to_string();
    if !i.additional.is_empty() {
        let list: Vec<String> = i
            .additional
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        out.push_str(&format!(" (then, read only: {})", list.join(", ")));
    }
    out
}

/// `info`: one line per fact, the names in a column of 20.
pub fn info(i: &Info) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<20}{v}\n"));
    let tool = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not installed".into())
    };
    line("version:", i.version.to_string());
    line("store:", store_line(i));
    if let Some(fs) = i.store_fs {
        let remark = fs.remark().map(|r| format!(" ({r})")).unwrap_or_default();
        line("store filesystem:", format!("{}{remark}", fs.name()));
    }
    line("runtime dir:", i.runtime_dir.display().to_string());
    let absent = if i.config_exists {
        ""
    } else {
        " (absent: defaults)"
    };
    line("config file:", format!("{}{absent}", i.config.display()));
    line("id mapping:", id_mapping(&i.idmap));
    line(
        "storage driver:",
        format!("{} ({})", i.driver, i.driver_reason),
    );
    line("cgroups:", cgroups(i));
    line("pause:", i.pause.clone());
    line(
        "fuse-overlayfs:",
        match &i.fuse_overlayfs {
            Ok(p) => tool(p),
            Err(e) => e.clone(),
        },
    );
    line("slirp4netns:", tool(&i.slirp4netns));
    line("pasta:", tool(&i.pasta));
    line("newuidmap:", tool(&i.newuidmap));
    line(
        "seccomp:",
        if i.seccomp {
            "on: den's default profile, docker's policy (off with --security-opt seccomp=unconfined or --privileged)".into()
        } else {
            "off: this kernel has no seccomp filters".into()
        },
    );
    line(
        "no-new-privileges:",
        "off (on with --security-opt no-new-privileges)".into(),
    );
    line(
        "capabilities:",
        format!(
            "docker's default {}, in den's user namespace only: {}",
            i.capabilities.len(),
            i.capabilities
                .iter()
                .map(|c| c.trim_start_matches("CAP_"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    line(
        "keyring:",
        "a new session keyring per container: the user's keys stay out".into(),
    );
    line("CDI devices:", cdi_line(i));
    line("kernel:", i.kernel.clone());
    out
}

/// The CDI devices found (for `--device` and `--gpus`), and where den looked.
fn cdi_line(i: &Info) -> String {
    let dirs: Vec<String> = i.cdi.0.iter().map(|d| d.display().to_string()).collect();
    match &i.cdi.1 {
        Ok(d) if d.is_empty() => format!("none (specs in {})", dirs.join(", ")),
        Ok(d) => format!("{} (specs in {})", d.join(", "), dirs.join(", ")),
        Err(e) => e.clone(),
    }
}

fn id_mapping(idmap: &IdMap) -> String {
    match idmap {
        IdMap::Mapped { uid, uids, .. } => format!(
            "subordinate ids: root is uid {uid}; {} more ids from {}",
            uids.iter().map(|r| r.count as u64).sum::<u64>(),
            uids.iter()
                .map(|r| format!("{}+{}", r.start, r.count))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        IdMap::Single { uid, reason, .. } => {
            format!("single-uid: only uid {uid} (root inside); {reason}")
        }
        IdMap::Root => "none: den runs as root".into(),
    }
}

/// docker's report of a prune: a `Deleted <Things>:` section for each kind with anything
/// deleted, then `Total reclaimed space: SIZE`.
pub fn pruned(sections: &[(&str, Vec<String>)], reclaimed: &str) -> String {
    let mut out = String::new();
    for (title, lines) in sections.iter().filter(|(_, l)| !l.is_empty()) {
        out.push_str(title);
        out.push('\n');
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {reclaimed}\n"));
    out
}

/// What `system share` did, and what other users do to use the store.
pub fn shared(root: &std::path::Path, s: &crate::store::Shared) -> String {
    format!(
        "{root}: shared read-only with other users ({} images, {} modes changed); they add it \
         to storage.additional in den's config (or DEN_ADDITIONAL_STORES={root})\n",
        s.images,
        s.changed,
        root = root.display()
    )
}

/// What `system check` found: each problem repaired, each left, or a line saying the store
/// at `root` is sound and what was looked at.
pub fn checked(
    root: &std::path::Path,
    fixed: &[crate::store::Problem],
    c: &crate::store::Checked,
) -> String {
    let mut out = String::new();
    for p in fixed {
        out.push_str(&format!("repaired: {p}\n"));
    }
    for p in &c.problems {
        out.push_str(&format!("{p}\n"));
    }
    if c.problems.is_empty() {
        out.push_str(&format!(
            "{}: no problems ({} images, {} layers, {} blobs, {} containers)\n",
            root.display(),
            c.images,
            c.layers,
            c.blobs,
            c.containers
        ));
    }
    out
}

// ------------------------------------------------------------------------------------------
// version

/// `version`: docker's layout (values at column 20), Client then Server; den reports its Rust
/// compiler where docker reports Go's.
pub fn version(v: &crate::ops::info::Version) -> String {
    let built = chrono::DateTime::parse_from_rfc3339(&v.build_time)
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default();
    let mut out = String::from("Client: den\n");
    let mut line = |k: &str, val: &str| out.push_str(&format!("{k:<20}{val}\n"));
    line(" Version:", v.version);
    line(" API version:", v.api_version);
    line(" Rust version:", v.rust_version);
    line(" Git commit:", v.git_commit);
    line(" Built:", &built);
    line(" OS/Arch:", &format!("{}/{}", v.os, v.arch));
    line(" Context:", "default");
    out.push_str("\nServer: den (no daemon: the engine is these programs)\n Engine:\n");
    let mut line = |k: &str, val: &str| out.push_str(&format!("{k:<20}{val}\n"));
    line("  Version:", v.version);
    line("  API version:", v.api_version);
    line("  Rust version:", v.rust_version);
    line("  Git commit:", v.git_commit);
    line("  Built:", &built);
    line("  OS/Arch:", &format!("{}/{}", v.os, v.arch));
    line("  Kernel version:", &v.kernel_version);
    out
}

// ------------------------------------------------------------------------------------------
// events

/// An event's time as docker prints it: local time, nanoseconds, `Z` for UTC.
fn event_time(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `events`' line: `TIME TYPE ACTION ID (k=v, k=v)`, attributes in key order.
pub fn event_line(e: &crate::store::Event) -> String {
    let mut out = format!("{} {} {} {}", event_time(e.time), e.kind, e.action, e.id);
    if !e.attributes.is_empty() {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(" ({})", attrs.join(", ")));
    }
    out.push('\n');
    out
}

/// `events --format`'s object: docker's message fields (`.Type`, `.Action`, `.Actor.ID`,
/// `.Actor.Attributes`, `.Time`, `.TimeNano`, `.Scope`, and the old `.Status`, `.ID`, `.From`
/// of container and image events).
pub fn event_object(e: &crate::store::Event) -> serde_json::Value {
    let from = if e.kind == "container" {
        e.attributes.get("image").cloned().unwrap_or_default()
    } else {
        String::new()
    };
    serde_json::json!({
        "Status": e.action,
        "ID": e.id,
        "From": from,
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "Scope": "local",
        "Time": e.time.div_euclid(1_000_000_000),
        "TimeNano": e.time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::system::VolumeUsage;

    fn usage() -> Usage {
        Usage {
            kind: "Images",
            total: 2,
            active: 1,
            size: 1000,
            reclaimable: 250,
            percent: true,
        }
    }

    #[test]
    fn reclaimable_shows_a_share_except_for_the_cache() {
        let u = usage();
        assert_eq!(usage_value(&u)["Reclaimable"], "250B (25%)");
        let c = Usage {
            kind: "Build Cache",
            percent: false,
            ..u.clone()
        };
        assert_eq!(usage_value(&c)["Reclaimable"], "250B");
        let empty = Usage {
            size: 0,
            reclaimable: 0,
            ..u
        };
        assert_eq!(usage_value(&empty)["Reclaimable"], "0B");
    }

    #[test]
    fn df_table_and_sections() {
        let cache = Usage {
            kind: "Build Cache",
            total: 3,
            active: 0,
            size: 16_430_000,
            reclaimable: 16_430_000,
            percent: false,
        };
        let u = DiskUsage {
            lines: vec![usage(), cache],
            images: Vec::new(),
            containers: Vec::new(),
            volumes: vec![VolumeUsage {
                name: "data".into(),
                links: 1,
                size: 212,
            }],
            cache_entries: 3,
        };
        let now = Utc::now();
        assert_eq!(
            df(&u, false, None, now).unwrap(),
            "TYPE          TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images        2         1         1kB       250B (25%)\n\
             Build Cache   3         0         16.43MB   16.43MB\n"
        );
        assert_eq!(
            df(&u, false, Some("{{.Type}}: {{.Size}}"), now).unwrap(),
            "Images: 1kB\nBuild Cache: 16.43MB\n"
        );
        let v = df(&u, true, None, now).unwrap();
        assert!(v.starts_with("Images space usage:\n\nREPOSITORY"), "{v}");
        assert!(
            v.contains("Local Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\ndata          1         212B\n"),
            "{v}"
        );
        assert!(
            v.ends_with("\nBuild cache usage: 16.43MB (3 steps)\n"),
            "{v}"
        );
    }

    #[test]
    fn info_lines_line_up() {
        let i = Info {
            log_driver: "k8s-file",
            version: "1.0",
            store: "/s".into(),
            additional: vec![],
            store_fs: Some(crate::fs::FsKind::Nfs),
            runtime_dir: "/r".into(),
            config: "/c.toml".into(),
            config_exists: false,
            idmap: IdMap::Root,
            driver: "vfs",
            driver_reason: "chosen".into(),
            cgroups: (false, true),
            limits: Ok((
                "/sys/fs/cgroup/site/u".into(),
                vec!["memory".into(), "pids".into()],
            )),
            fuse_overlayfs: Err("no /dev/fuse".into()),
            slirp4netns: Some("/usr/bin/slirp4netns".into()),
            pasta: None,
            newuidmap: None,
            seccomp: true,
            capabilities: vec!["CAP_CHOWN", "CAP_KILL"],
            kernel: "6.1".into(),
            pause: "signals".into(),
            cdi: (vec!["/etc/cdi".into()], Ok(vec!["v.t/d=a".into()])),
        };
        let text = info(&i);
        assert!(text.starts_with("version:            1.0\nstore:              /s\n"));
        assert!(text.contains("\nstore filesystem:   nfs (a network filesystem: no kernel overlay for containers, locks may not hold between machines)\n"), "{text}");
        assert!(text.contains("config file:        /c.toml (absent: defaults)\n"));
        assert!(text.contains("id mapping:         none: den runs as root\n"));
        assert!(text.contains("fuse-overlayfs:     no /dev/fuse\nslirp4netns:        /usr/bin/slirp4netns\npasta:              not installed\n"));
        assert!(text.contains(
            "capabilities:       docker's default 2, in den's user namespace only: CHOWN, KILL\n"
        ));
        assert!(text.contains("CDI devices:        v.t/d=a (specs in /etc/cdi)\n"));
        assert!(text.ends_with("kernel:             6.1\n"));
        assert!(text.contains(
            "cgroups:            v2; limits (--memory, --cpus, --pids-limit, ...) in /sys/fs/cgroup/site/u (controllers: memory pids)\n"
        ), "{text}");
    }

    #[test]
    fn prunes_list_what_went_in_sections() {
        let out = pruned(
            &[
                ("Deleted Containers:", vec!["c1".into()]),
                ("Deleted Volumes:", vec![]),
                ("Deleted Images:", vec!["deleted: sha256:ab".into()]),
            ],
            "1.5kB",
        );
        assert_eq!(
            out,
            "Deleted Containers:\nc1\n\nDeleted Images:\ndeleted: sha256:ab\n\nTotal reclaimed space: 1.5kB\n"
        );
        assert_eq!(pruned(&[], "0B"), "Total reclaimed space: 0B\n");
    }

    #[test]
    fn event_lines_are_dockers() {
        let e = crate::store::Event {
            time: 1_704_067_200_000_000_123,
            kind: "container".into(),
            action: "start".into(),
            id: "abc".into(),
            attributes: [("name", "web"), ("image", "busybox")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let line = event_line(&e);
        assert!(
            line.ends_with(" container start abc (image=busybox, name=web)\n"),
            "{line}"
        );
        let o = event_object(&e);
        assert_eq!(o["Time"], 1_704_067_200);
        assert_eq!(o["From"], "busybox");
        assert_eq!(o["Actor"]["Attributes"]["name"], "web");
    }
}

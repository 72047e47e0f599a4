//! Containers and volumes as docker shows them: `ps` (its fields, headers and default table),
//! `port`, `volume ls` and `volume inspect --format`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::template::Plain;
use super::units::{ellipsis, human_duration, human_size};
use super::{Listing, Template, TemplateError};
use crate::net::PortMapping;
use crate::ops::container::ContainerSize;
use crate::store::health::HealthStatus;
use crate::store::{ContainerRecord, ContainerState, Status};
use crate::volume::MountKind;

/// `ps`: docker's default columns and the header of every field it offers.
pub const PS: Listing = Listing {
    table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("State", "STATE"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ],
};

/// `volume ls`: docker's default columns and headers.
pub const VOLUMES: Listing = Listing {
    table: "table {{.Driver}}\t{{.Name}}",
    headers: &[
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
    ],
};

/// How `ps` shows its containers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PsView<'a> {
    /// Ids only.
    pub quiet: bool,
    /// Full ids, commands and mount sources.
    pub no_trunc: bool,
    /// `--format`: `table ...`, `json`, or a Go template per row.
    pub format: Option<&'a str>,
    /// `--noheading`: a table without its header line.
    pub noheading: bool,
    /// `-s`: each container's sizes, in the list's order (a SIZE column in the default table).
    pub sizes: Option<&'a [ContainerSize]>,
}

/// docker's SIZE: `12B (virtual 1.2MB)`.
pub fn size_text(s: &ContainerSize) -> String {
    format!("{} (virtual {})", human_size(s.rw), human_size(s.root_fs))
}

/// `ps -s`'s default table: docker's columns and SIZE.
const PS_WITH_SIZE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}";

/// `ps`'s template for `format` (None for `json`): docker's table, or the user's, whose fields
/// must be ps's.
fn ps_template(format: Option<&str>) -> Result<Option<Template>, TemplateError> {
    Ok(match format {
        None | Some("") | Some("table") => Some(Template::parse(PS.table)?),
        Some("json") => None,
        Some(f) => {
            let t = Template::parse(f)?;
            let known: Vec<&str> = PS.headers.iter().map(|(field, _)| *field).collect();
            t.check_fields("ps rows", &known)?;
            Some(t)
        }
    })
}

/// `ps`: the containers given, in their order, as `view` asks.
pub fn ps(
    list: &[(&ContainerRecord, &ContainerState)],
    view: &PsView,
    now: DateTime<Utc>,
) -> Result<String, TemplateError> {
    if view.quiet {
        return Ok(list
            .iter()
            .map(|(r, _)| {
                let id = if view.no_trunc {
                    &r.id[..]
                } else {
                    &r.id[..12]
                };
                format!("{id}\n")
            })
            .collect());
    }
    let mut format = view.format;
    if view.sizes.is_some() && matches!(format, None | Some("") | Some("table")) {
        format = Some(PS_WITH_SIZE);
    }
    let template = ps_template(format)?;
    let trunc = !view.no_trunc;
    let size = |i: usize| view.sizes.map(|s| size_text(&s[i]));
    let text = match template.as_ref().and_then(|t| t.plain().map(|p| (t, p))) {
        // Text and fields only (docker's table, `{{.ID}}\t{{.Names}}`): each row is printed
        // from its fields, with no object built for it.
        Some((t, pieces)) if pieces.iter().all(|p| plain_field(p)) => {
            let mut text = String::new();
            if t.is_table() {
                text.push_str(&t.render_header(PS.headers)?);
                text.push('\n');
            }
            for (i, (r, s)) in list.iter().enumerate() {
                for piece in &pieces {
                    match *piece {
                        Plain::Text(t) => text.push_str(t),
                        Plain::Field("Size") => {
                            text.push_str(&size(i).unwrap_or_else(|| "0B".into()))
                        }
                        Plain::Field(f) => {
                            text.push_str(&ps_field(f, r, s, trunc, now).unwrap_or_default())
                        }
                    }
                }
                text.push('\n');
            }
            if t.is_table() {
                super::table::align_text(&text)
            } else {
                text
            }
        }
        // Only the fields the format reads are computed: the default table reads 7 of 14, and
        // 10,000 rows of dates formatted for nothing cost a twentieth of a second.
        _ => {
            let fields = template.as_ref().and_then(Template::fields);
            let wanted = |f: &str| fields.as_ref().is_none_or(|w| w.contains(&f));
            let rows: Vec<Value> = list
                .iter()
                .enumerate()
                .map(|(i, (r, s))| {
                    let mut row = ps_row(r, s, trunc, now, &wanted);
                    if let Some(size) = size(i) {
                        row["Size"] = Value::String(size);
                    }
                    row
                })
                .collect();
            super::rows(format, &PS, &rows)?
        }
    };
    let table = format.is_none_or(|f| f.is_empty() || f.trim_start().starts_with("table"));
    if view.noheading && table {
        return Ok(text
            .split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default());
    }
    Ok(text)
}

/// Whether a plain template's piece is text or a field a `ps` row has.
fn plain_field(piece: &Plain) -> bool {
    match piece {
        Plain::Text(_) => true,
        Plain::Field(f) => PS_FIELDS.contains(f),
    }
}

/// The fields of a `ps` row (`--format '{{json .}}'` prints them all).
const PS_FIELDS: [&str; 14] = [
    "Command",
    "CreatedAt",
    "ID",
    "Image",
    "Labels",
    "LocalVolumes",
    "Mounts",
    "Names",
    "Networks",
    "Ports",
    "RunningFor",
    "Size",
    "State",
    "Status",
];

/// docker's `STATUS`: `Created`, `Up 3 minutes`, `Exited (0) 2 hours ago`.
fn status_text(state: &ContainerState, now: DateTime<Utc>) -> String {
    let ago = |t: Option<DateTime<Utc>>| human_duration(now - t.unwrap_or(now));
    match state.status {
        Status::Created => "Created".into(),
        Status::Running if state.paused => format!("Up {} (Paused)", ago(state.started_at)),
        Status::Running => match &state.health {
            Some(h) if h.status == HealthStatus::Starting => {
                format!("Up {} (health: starting)", ago(state.started_at))
            }
            Some(h) => format!("Up {} ({})", ago(state.started_at), h.status.name()),
            None => format!("Up {}", ago(state.started_at)),
        },
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(0),
            ago(state.finished_at)
        ),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The fields `ps --format` offers that `wanted` says, as docker names them; `trunc` cuts ids,
/// the command and mount sources as docker does without `--no-trunc`.
fn ps_row(
    r: &ContainerRecord,
    state: &ContainerState,
    trunc: bool,
    now: DateTime<Utc>,
    wanted: &dyn Fn(&str) -> bool,
) -> Value {
    let row = PS_FIELDS.iter().filter(|f| wanted(f)).filter_map(|&f| {
        Some((
            f.to_string(),
            Value::String(ps_field(f, r, state, trunc, now)?),
        ))
    });
    Value::Object(row.collect())
}

/// One field of a `ps` row (None for a name that is not one).
fn ps_field(
    name: &str,
    r: &ContainerRecord,
    state: &ContainerState,
    trunc: bool,
    now: DateTime<Utc>,
) -> Option<String> {
    Some(match name {
        "Command" => {
            let command = r.spec.args.join(" ");
            quote(&if trunc {
                ellipsis(&command, 20)
            } else {
                command
            })
        }
        "CreatedAt" => r.created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
        "ID" => if trunc { &r.id[..12] } else { &r.id[..] }.to_string(),
        "Image" => r.image.clone(),
        "Labels" => {
            let labels: Vec<String> = r
                .spec
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.join(",")
        }
        "LocalVolumes" => {
            let volumes = r.spec.mounts.iter().filter(|m| m.kind == MountKind::Volume);
            volumes.count().to_string()
        }
        "Mounts" => {
            let mounts: Vec<String> = r
                .spec
                .mounts
                .iter()
                .map(|m| {
                    if trunc {
                        ellipsis(&m.source, 15)
                    } else {
                        m.source.clone()
                    }
                })
                .collect();
            mounts.join(",")
        }
        "Names" => r.name.clone(),
        "Networks" => r.spec.network.to_string(),
        "Ports" if state.status == Status::Running => {
            let ports: Vec<String> = state.ports.iter().map(|p| p.display()).collect();
            ports.join(", ")
        }
        "Ports" => String::new(),
        "RunningFor" => format!("{} ago", human_duration(now - r.created)),
        "Size" => "0B".into(),
        "State" => state.status_name().into(),
        "Status" => status_text(state, now),
        _ => return None,
    })
}

/// `stats`: docker's default columns and the header of every field it offers.
pub const STATS: Listing = Listing {
    table: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
};

/// go-units' `BytesSize`: binary units, four significant digits (`1.5MiB`, `7.629GiB`).
fn bytes_size(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let whole = format!("{}", v.trunc() as u64).len();
    let s = format!("{v:.*}", 4usize.saturating_sub(whole));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// `stats`: the rows as `--format` asks (docker's table by default); `.ID` cut to 12 unless
/// `trunc` is off (`--no-trunc`).
pub fn stats(
    stats: &[crate::ops::stats::Stats],
    format: Option<&str>,
    trunc: bool,
) -> Result<String, super::TemplateError> {
    let rows: Vec<Value> = stats
        .iter()
        .map(|s| {
            let mem_perc = if s.mem_limit == 0 {
                0.0
            } else {
                s.mem_usage as f64 / s.mem_limit as f64 * 100.0
            };
            json!({
                "ID": if trunc { &s.id[..12.min(s.id.len())] } else { &s.id },
                "Container": s.container,
                "Name": s.name,
                "CPUPerc": format!("{:.2}%", s.cpu_percent),
                "MemUsage": format!("{} / {}", bytes_size(s.mem_usage), bytes_size(s.mem_limit)),
                "MemPerc": format!("{mem_perc:.2}%"),
                "NetIO": format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
                "BlockIO": format!("{} / {}", human_size(s.block_read), human_size(s.block_write)),
                "PIDs": s.pids.to_string(),
            })
        })
        .collect();
    super::rows(format, &STATS, &rows)
}

/// `top`: docker's table (columns at least 20 wide, 3 spaces apart, as its tabwriter sets them).
pub fn top(t: &crate::ops::top::Top) -> String {
    let rows: Vec<&Vec<String>> = std::iter::once(&t.titles).chain(&t.processes).collect();
    let n = t.titles.len();
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(17)
                + 3
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `diff`: docker's lines, `C /etc` (changed), `A /etc/new` (added), `D /etc/gone` (deleted).
pub fn changes(changes: &[crate::store::changes::Change]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {}\n", c.kind.letter(), c.path))
        .collect()
}

/// `port`: each mapping as `80/tcp -> 0.0.0.0:3000`, or with `host_only` (one port asked
/// for) its host address alone.
pub fn ports(ports: &[PortMapping], host_only: bool) -> String {
    let host = |p: &PortMapping| {
        let ip = match p.host_ip {
            None => "0.0.0.0".to_string(),
            Some(std::net::IpAddr::V6(a)) => format!("[{a}]"),
            Some(a) => a.to_string(),
        };
        format!("{ip}:{}", p.host_port)
    };
    ports
        .iter()
        .map(|p| {
            if host_only {
                format!("{}\n", host(p))
            } else {
                format!("{} -> {}\n", p.key(), host(p))
            }
        })
        .collect()
}

/// `volume ls`: docker's volume objects, names only with `quiet`.
pub fn volumes(
    values: &[Value],
    quiet: bool,
    format: Option<&str>,
) -> Result<String, TemplateError> {
    if quiet {
        return Ok(values
            .iter()
            .map(|v| format!("{}\n", v["Name"].as_str().unwrap_or_default()))
            .collect());
    }
    super::rows(format, &VOLUMES, values)
}

/// `network ls`: docker's default columns and headers.
pub const NETWORKS: Listing = Listing {
    table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    headers: &[("ID", "NETWORK ID")],
};

/// `network ls`: ids only with `-q` (12 characters unless `no_trunc`), else the listing.
pub fn networks(
    values: &[Value],
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> Result<String, TemplateError> {
    let rows: Vec<Value> = values
        .iter()
        .map(|v| {
            let id = v["Id"].as_str().unwrap_or_default();
            let id = if no_trunc {
                id
            } else {
                &id[..id.len().min(12)]
            };
            let mut r = v.clone();
            r["ID"] = Value::from(id);
            r
        })
        .collect();
    if quiet {
        return Ok(rows
            .iter()
            .map(|v| format!("{}\n", v["ID"].as_str().unwrap_or_default()))
            .collect());
    }
    super::rows(format, &NETWORKS, &rows)
}

/// `volume inspect`: a JSON array, or `--format` per volume as `volume ls` applies it (a
/// failure on any volume fails the whole, unlike container `inspect`).
pub fn volume_objects(values: &[Value], format: Option<&str>) -> Result<String, TemplateError> {
    match format {
        None | Some("") | Some("json") => Ok(super::pretty_array(values)),
        Some(f) => super::rows(Some(f), &super::NO_LISTING, values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Proto;
    use crate::store::RunSpec;

    fn record(args: &[&str]) -> ContainerRecord {
        ContainerRecord {
            id: "0123456789ab".repeat(4),
            name: "web".into(),
            image_id: crate::digest::Digest::of(b"image"),
            image: "busybox".into(),
            created: DateTime::parse_from_rfc3339("2026-01-02T03:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            driver: "overlay".into(),
            spec: Box::new(RunSpec {
                args: args.iter().map(|a| a.to_string()).collect(),
                network: crate::net::Network::Slirp4netns {
                    allow_host_loopback: false,
                },
                ..Default::default()
            }),
            auto_remove: false,
            layers: Vec::new(),
            image_file: None,
        }
    }

    fn port(host_ip: Option<std::net::IpAddr>) -> PortMapping {
        PortMapping {
            host_ip,
            host_port: 3000,
            container_port: 80,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn plain_formats_print_as_the_template_would() {
        let a = record(&["sh", "-c", "echo\there"]);
        let mut b = record(&["nginx"]);
        b.name = "cache\tb".into();
        let now = a.created + chrono::Duration::minutes(10);
        let mut running = ContainerState::created();
        running.status = Status::Running;
        running.started_at = Some(now - chrono::Duration::minutes(3));
        running.ports = vec![port(None)];
        let exited = ContainerState::created();
        let list = [(&a, &running), (&b, &exited)];
        let sizes = [
            ContainerSize { rw: 1, root_fs: 2 },
            ContainerSize::default(),
        ];
        // `printf` makes a template that is not plain, which is rendered row object by row object.
        let via_objects = |f: &str| {
            let fields = [
                "ID",
                "Image",
                "Command",
                "RunningFor",
                "Status",
                "Ports",
                "Names",
                "CreatedAt",
                "Size",
            ];
            fields.iter().fold(f.to_string(), |f, n| {
                f.replace(
                    &format!("{{{{.{n}}}}}"),
                    &format!("{{{{.{n} | printf \"%s\"}}}}"),
                )
            })
        };
        for (format, sized) in [
            (PS.table, false),
            (PS_WITH_SIZE, true),
            ("{{.ID}}: {{.Names}} {{.CreatedAt}}", false),
            ("table {{.Names}}\t{{.Size}}", true),
        ] {
            let view = |format| PsView {
                format: Some(format),
                sizes: sized.then_some(&sizes[..]),
                ..Default::default()
            };
            let other = via_objects(format);
            assert_ne!(other, format);
            assert_eq!(
                ps(&list, &view(format), now).unwrap(),
                ps(&list, &view(&other), now).unwrap(),
                "{format}"
            );
        }
        let t = Template::parse("{{.ID}}\t{{.Names}}").unwrap();
        assert_eq!(
            t.plain().unwrap(),
            [Plain::Field("ID"), Plain::Text("\t"), Plain::Field("Names")]
        );
        assert_eq!(t.fields().unwrap(), ["ID", "Names"]);
        let t = Template::parse("{{if .Ports}}{{.Ports}}{{end}} {{json .Labels}}").unwrap();
        assert!(t.plain().is_none());
        assert_eq!(t.fields().unwrap(), ["Ports", "Ports", "Labels"]);
        for all in [
            "{{json .}}",
            "{{range .Labels}}x{{end}}",
            "{{$x := .ID}}{{$x}}",
            "{{$.ID}}",
        ] {
            assert!(Template::parse(all).unwrap().fields().is_none(), "{all}");
        }
    }

    #[test]
    fn a_field_ps_rows_lack_is_one_error_naming_them() {
        let a = record(&["true"]);
        let state = ContainerState::created();
        let list = [(&a, &state)];
        // Whether or not there are rows.
        for list in [&list[..], &[]] {
            let e = ps(
                list,
                &PsView {
                    format: Some("{{.ID}} {{.Nope}}"),
                    ..Default::default()
                },
                a.created,
            )
            .unwrap_err();
            assert!(
                e.to_string()
                    .contains("can't evaluate field Nope: ps rows have ID, Image, Command"),
                "{e}"
            );
        }
    }

    #[test]
    fn ps_rows_as_docker_shows_them() {
        let r = record(&["sh", "-c", "while true; do sleep 1; done"]);
        let now = r.created + chrono::Duration::minutes(10);
        let mut running = ContainerState::created();
        running.status = Status::Running;
        running.started_at = Some(now - chrono::Duration::minutes(3));
        running.ports = vec![port(None)];
        let row = ps_row(&r, &running, true, now, &|_| true);
        assert_eq!(row["ID"], "0123456789ab");
        assert_eq!(row["Command"], "\"sh -c while true; d…\"");
        assert_eq!(row["RunningFor"], "10 minutes ago");
        assert_eq!(row["Status"], "Up 3 minutes");
        assert_eq!(row["State"], "running");
        assert_eq!(row["Ports"], "0.0.0.0:3000->80/tcp");
        let full = ps_row(&r, &running, false, now, &|_| true);
        assert_eq!(full["ID"], r.id.as_str());
        assert_eq!(full["Command"], "\"sh -c while true; do sleep 1; done\"");
        let mut exited = ContainerState::created();
        exited.status = Status::Exited;
        exited.exit_code = Some(3);
        exited.finished_at = Some(now - chrono::Duration::hours(2));
        exited.ports = vec![port(None)];
        let row = ps_row(&r, &exited, true, now, &|_| true);
        assert_eq!(row["Status"], "Exited (3) 2 hours ago");
        assert_eq!(row["Ports"], "");
        let created = ContainerState::created();
        assert_eq!(
            ps_row(&r, &created, true, now, &|_| true)["Status"],
            "Created"
        );
    }

    #[test]
    fn ps_tables_and_ids() {
        let r = record(&["httpd", "-f"]);
        let now = r.created + chrono::Duration::seconds(30);
        let s = ContainerState::created();
        let list = [(&r, &s)];
        let table = ps(&list, &PsView::default(), now).unwrap();
        assert_eq!(
            table,
            "CONTAINER ID   IMAGE     COMMAND      CREATED          STATUS    PORTS     NAMES\n\
             0123456789ab   busybox   \"httpd -f\"   30 seconds ago   Created             web\n"
        );
        let quiet = PsView {
            quiet: true,
            ..Default::default()
        };
        assert_eq!(ps(&list, &quiet, now).unwrap(), "0123456789ab\n");
        let names = PsView {
            format: Some("{{.Names}} {{.State}}"),
            ..Default::default()
        };
        assert_eq!(ps(&list, &names, now).unwrap(), "web created\n");
        let bare = PsView {
            noheading: true,
            ..Default::default()
        };
        assert_eq!(
            ps(&list, &bare, now).unwrap(),
            "0123456789ab   busybox   \"httpd -f\"   30 seconds ago   Created             web\n"
        );
        let sizes = [ContainerSize {
            rw: 12,
            root_fs: 1_234_567,
        }];
        let sized = PsView {
            sizes: Some(&sizes),
            format: Some("{{.Names}} {{.Size}}"),
            ..Default::default()
        };
        assert_eq!(
            ps(&list, &sized, now).unwrap(),
            "web 12B (virtual 1.23MB)\n"
        );
        let table = PsView {
            sizes: Some(&sizes),
            ..Default::default()
        };
        let out = ps(&list, &table, now).unwrap();
        assert!(
            out.lines().next().unwrap().ends_with("NAMES     SIZE"),
            "{out}"
        );
    }

    #[test]
    fn ports_as_port_prints_them() {
        let v6 = Some("::1".parse().unwrap());
        assert_eq!(
            ports(&[port(None), port(v6)], false),
            "80/tcp -> 0.0.0.0:3000\n80/tcp -> [::1]:3000\n"
        );
        assert_eq!(ports(&[port(None)], true), "0.0.0.0:3000\n");
    }

    #[test]
    fn volume_listings() {
        let v = vec![json!({"Driver": "local", "Name": "data", "Mountpoint": "/x"})];
        assert_eq!(
            volumes(&v, false, None).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     data\n"
        );
        assert_eq!(volumes(&v, true, None).unwrap(), "data\n");
        assert_eq!(volume_objects(&v, Some("{{.Mountpoint}}")).unwrap(), "/x\n");
        assert!(volume_objects(&v, None).unwrap().starts_with("[\n  {"));
    }

    #[test]
    fn stats_sizes_are_go_units_bytes_size() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(8_000_000_000), "7.451GiB");
        assert_eq!(bytes_size(1023), "1023B");
    }

    #[test]
    fn a_stopped_container_reads_zero_and_no_trunc_keeps_the_id() {
        let s = crate::ops::stats::Stats {
            id: "a".repeat(64),
            name: "halted".into(),
            ..Default::default()
        };
        let f = "{{.ID}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}";
        let short = stats(std::slice::from_ref(&s), Some(f), true).unwrap();
        assert_eq!(
            short.trim(),
            format!("{}|0.00%|0B / 0B|0.00%|0B / 0B|0B / 0B|0", "a".repeat(12))
        );
        let full = stats(&[s], Some("{{.ID}}"), false).unwrap();
        assert_eq!(full.trim(), "a".repeat(64));
    }
}

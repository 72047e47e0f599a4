//! The instructions that only change the image config (ENV, LABEL, MAINTAINER, EXPOSE, VOLUME,
//! USER, WORKDIR, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD): read into a
//! [`Change`] with their words expanded ([`parse`]), then written into the config ([`apply`]).
//!
//! Both halves are pure: no file, no store. Such a step makes no layer; docker records it in
//! the history as an empty layer, and so does den.

use serde_json::{Value, json};

use super::Result;
use super::instruction::Scope;
use super::state::State;
use super::syntax::Args;
use super::{expand, syntax};

/// What a config instruction does, its arguments expanded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Variables set, in order (a later one replaces an earlier one of the same name).
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    /// `PORT/proto` for each port of each range.
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    /// Absolute and clean.
    Workdir(String),
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Shell(Vec<String>),
    StopSignal(String),
    /// docker's `Healthcheck` object (durations in nanoseconds).
    Healthcheck(Value),
    /// The trigger as written.
    OnBuild(String),
}

/// Read a config instruction against the state before it.
pub fn parse(s: &Scope<'_>) -> Result<Change> {
    let node = s.node;
    let text = node.text();
    Ok(match node.name.as_str() {
        "ENV" => Change::Env(
            expand::pairs(&text, s.escape, &|n| s.state.lookup(n))
                .map_err(|m| s.err(&m, "write ENV KEY=VALUE"))?,
        ),
        "LABEL" => Change::Label(
            expand::pairs(&text, s.escape, &|n| s.state.lookup(n))
                .map_err(|m| s.err(&m, "write LABEL key=value"))?,
        ),
        "MAINTAINER" => Change::Maintainer(text),
        "EXPOSE" => Change::Expose(expose(s, &text)?),
        "VOLUME" => Change::Volume(match &node.args {
            Args::Json(v) => v.iter().map(|w| s.word(w)).collect::<Result<Vec<_>>>()?,
            Args::Raw(r) => s.words(r)?,
        }),
        "USER" => Change::User(s.word(&text)?),
        "WORKDIR" => {
            let w = s.word(&text)?;
            let path = if w.starts_with('/') {
                w
            } else {
                format!("{}/{}", s.state.workdir().trim_end_matches('/'), w)
            };
            Change::Workdir(crate::volume::clean_path(&path))
        }
        "CMD" => Change::Cmd(command(s.state, &node.args)),
        "ENTRYPOINT" => Change::Entrypoint(command(s.state, &node.args)),
        "SHELL" => {
            let Args::Json(v) = &node.args else {
                return Err(s.err(
                    "SHELL takes the JSON form",
                    "write SHELL [\"/bin/bash\", \"-c\"]",
                ));
            };
            Change::Shell(v.clone())
        }
        "STOPSIGNAL" => Change::StopSignal(s.word(&text)?),
        "HEALTHCHECK" => Change::Healthcheck(healthcheck(s)?),
        "ONBUILD" => Change::OnBuild(onbuild(s, &text)?),
        other => return Err(s.err(&format!("{other} is not supported"), "remove it")),
    })
}

/// Write `change` into the config.
pub fn apply(state: &mut State, change: &Change) {
    match change {
        Change::Env(kv) => {
            let mut env = state.env();
            for (k, v) in kv {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()) && e != k);
                env.push(format!("{k}={v}"));
            }
            state.cfg().insert("Env".into(), json!(env));
        }
        Change::Label(kv) => {
            let labels = state.cfg_object("Labels");
            for (k, v) in kv {
                labels[k] = Value::String(v.clone());
            }
        }
        Change::Maintainer(m) => {
            state
                .root()
                .insert("author".into(), Value::String(m.clone()));
        }
        Change::Expose(ports) => {
            let exposed = state.cfg_object("ExposedPorts");
            for p in ports {
                exposed[p] = json!({});
            }
        }
        Change::Volume(vols) => {
            let v = state.cfg_object("Volumes");
            for p in vols {
                v[p] = json!({});
            }
        }
        Change::User(u) => set(state, "User", json!(u)),
        Change::Workdir(w) => set(state, "WorkingDir", json!(w)),
        Change::Cmd(argv) => {
            set(state, "Cmd", json!(argv));
            state.cmd_set = true;
        }
        Change::Entrypoint(argv) => {
            set(state, "Entrypoint", json!(argv));
            // docker: ENTRYPOINT clears a CMD inherited from the base, not one of this stage.
            if !state.cmd_set {
                set(state, "Cmd", Value::Null);
            }
        }
        Change::Shell(v) => set(state, "Shell", json!(v)),
        Change::StopSignal(s) => set(state, "StopSignal", json!(s)),
        Change::Healthcheck(hc) => set(state, "Healthcheck", hc.clone()),
        Change::OnBuild(t) => {
            let list = state.cfg().entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(Value::String(t.clone()));
            } else {
                *list = json!([t]);
            }
        }
    }
}

fn set(state: &mut State, field: &str, value: Value) {
    state.cfg().insert(field.into(), value);
}

/// CMD's or ENTRYPOINT's argv: the exec form as it is, else the shell with the text.
fn command(state: &State, args: &Args) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Raw(r) if r.is_empty() => Vec::new(),
        Args::Raw(r) => {
            let mut v = state.shell();
            v.push(r.clone());
            v
        }
    }
}

/// `EXPOSE 80 53/udp 8000-8002`: each port as `PORT/proto`.
fn expose(s: &Scope<'_>, text: &str) -> Result<Vec<String>> {
    let mut ports = Vec::new();
    for p in s.words(text)? {
        let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
        let proto = proto.to_ascii_lowercase();
        let range = match num.split_once('-') {
            Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
            None => num.parse::<u16>().ok().map(|a| (a, a)),
        };
        let Some((a, b)) = range.filter(|(a, b)| a <= b && *a > 0) else {
            return Err(s.err(
                &format!("invalid port {p:?}"),
                "write EXPOSE 80 or EXPOSE 53/udp",
            ));
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(s.err(
                &format!("invalid protocol in {p:?}"),
                "use tcp, udp or sctp",
            ));
        }
        for n in a..=b {
            ports.push(format!("{n}/{proto}"));
        }
    }
    Ok(ports)
}

/// `ONBUILD INSTRUCTION ...`: checked now (it must parse, and may not be ONBUILD, FROM or
/// MAINTAINER), run when a build starts from this image.
fn onbuild(s: &Scope<'_>, text: &str) -> Result<String> {
    let t = text.trim();
    let first = t
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(s.err(
            &format!("{first} is not allowed in ONBUILD"),
            "use another instruction",
        ));
    }
    syntax::parse(s.file, &format!("{}\n", t))
        .map_err(|e| s.err(&e.to_string(), "check the triggered instruction"))?;
    Ok(t.to_string())
}

/// `HEALTHCHECK [--interval=...] CMD command`, or `HEALTHCHECK NONE`.
fn healthcheck(s: &Scope<'_>) -> Result<Value> {
    let text = s.node.text();
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let Some(rest) = text
        .trim()
        .strip_prefix("CMD")
        .or_else(|| text.trim().strip_prefix("cmd"))
    else {
        return Err(s.err(
            "expected HEALTHCHECK [OPTIONS] CMD command, or NONE",
            "write HEALTHCHECK --interval=30s CMD curl -f http://localhost/",
        ));
    };
    let rest = rest.trim();
    let test = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) if rest.starts_with('[') => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v);
            t
        }
        _ => vec!["CMD-SHELL".into(), rest.into()],
    };
    let mut hc = json!({"Test": test});
    for (k, v) in &s.node.flags {
        let field = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: u64 = v.parse().map_err(|_| {
                    s.err(
                        &format!("--retries={v} is not a number"),
                        "write --retries=3",
                    )
                })?;
                hc["Retries"] = json!(n);
                continue;
            }
            other => {
                return Err(s.err(
                    &format!("unknown flag --{other}"),
                    "HEALTHCHECK takes --interval, --timeout, --start-period, --start-interval \
                     and --retries",
                ));
            }
        };
        let ns = parse_duration(v).ok_or_else(|| {
            s.err(
                &format!("--{k}={v} is not a duration"),
                "write e.g. 30s, 1m30s or 500ms",
            )
        })?;
        hc[field] = json!(ns);
    }
    Ok(hc)
}

/// Go duration syntax (`1m30s`, `500ms`) in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        num.clear();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        num.push_str(&rest[..digits]);
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let n: f64 = num.parse().ok()?;
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::syntax::parse as parse_dockerfile;

    /// `line` read against `state`.
    fn change(state: &State, line: &str) -> Result<Change> {
        let df = parse_dockerfile("Dockerfile", &format!("{line}\n")).unwrap();
        let node = &df.nodes[0];
        parse(&Scope {
            file: "Dockerfile",
            escape: '\\',
            node,
            state,
        })
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("3x"), None);
    }

    #[test]
    fn changes_are_read_with_words_expanded() {
        let mut s = State::scratch();
        s.args.insert("P".into(), Some("8080".into()));
        s.cfg().insert("WorkingDir".into(), json!("/srv"));
        assert_eq!(
            change(&s, "EXPOSE $P 53/UDP 1-2").unwrap(),
            Change::Expose(vec![
                "8080/tcp".into(),
                "53/udp".into(),
                "1/tcp".into(),
                "2/tcp".into()
            ])
        );
        assert_eq!(
            change(&s, "WORKDIR app/../x").unwrap(),
            Change::Workdir("/srv/x".into())
        );
        assert_eq!(
            change(&s, "CMD run $P").unwrap(),
            Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "run $P".into()])
        );
        let hc = change(&s, "HEALTHCHECK --interval=1m --retries=3 CMD [\"true\"]").unwrap();
        assert_eq!(
            hc,
            Change::Healthcheck(
                json!({"Test": ["CMD", "true"], "Interval": 60_000_000_000u64, "Retries": 3})
            )
        );
        assert!(change(&s, "EXPOSE 0").is_err());
        assert!(change(&s, "SHELL /bin/bash").is_err());
        assert!(change(&s, "ONBUILD FROM x").is_err());
    }

    #[test]
    fn entrypoint_clears_only_an_inherited_cmd() {
        let mut s = State::scratch();
        apply(&mut s, &Change::Cmd(vec!["base".into()]));
        s.cmd_set = false; // as a new stage sees its base
        apply(&mut s, &Change::Entrypoint(vec!["ep".into()]));
        assert_eq!(s.config["config"]["Cmd"], Value::Null);
        apply(&mut s, &Change::Cmd(vec!["own".into()]));
        apply(&mut s, &Change::Entrypoint(vec!["ep2".into()]));
        assert_eq!(s.config["config"]["Cmd"], json!(["own"]));
        apply(&mut s, &Change::Env(vec![("A".into(), "1".into())]));
        apply(&mut s, &Change::Env(vec![("A".into(), "2".into())]));
        assert_eq!(s.env(), ["A=2"]);
    }
}

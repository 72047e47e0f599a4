//! `--change`: one Dockerfile instruction (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE,
//! VOLUME, ONBUILD) applied to an image configuration's `config` object, as docker's `import
//! --change` and `commit --change` apply it. The image seam owns it because both verbs (and any
//! later one) edit the same configuration; a mistake is an [`ImageError::BadChange`] naming the
//! instruction.

use serde_json::{Map, Value, json};

use super::ImageError;

/// Apply one `--change` (a Dockerfile instruction) to a container configuration.
pub fn apply(config: &mut Map<String, Value>, change: &str) -> Result<(), ImageError> {
    let bad = |reason: &str| ImageError::BadChange {
        change: change.into(),
        reason: reason.into(),
    };
    let trimmed = change.trim();
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((trimmed, ""));
    let word = word.to_ascii_uppercase();
    if rest.is_empty() && word != "CMD" && word != "ENTRYPOINT" {
        return Err(bad(&format!("{word} needs an argument")));
    }
    match word.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let args: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(a) => a,
                Err(_) if rest.trim_start().starts_with('[') => {
                    return Err(bad("the JSON form must be an array of strings"));
                }
                Err(_) if rest.is_empty() => Vec::new(),
                Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.into()],
            };
            let key = if word == "CMD" { "Cmd" } else { "Entrypoint" };
            config.insert(key.into(), json!(args));
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().expect("Env is a list");
            for (k, v) in pairs(rest).map_err(&bad)? {
                list.retain(|e| {
                    e.as_str().and_then(|e| e.split_once('=')).map(|(ek, _)| ek) != Some(k.as_str())
                });
                list.push(Value::String(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in pairs(rest).map_err(&bad)? {
                labels[k] = Value::String(v);
            }
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(unquote(rest)));
        }
        "USER" => {
            config.insert("User".into(), json!(unquote(rest)));
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if num.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&proto) {
                    return Err(bad(&format!("invalid port {p:?}")));
                }
                ports[format!("{num}/{proto}")] = json!({});
            }
        }
        "VOLUME" => volumes(config, rest).map_err(&bad)?,
        "ONBUILD" => {
            let list = config.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(l) = list.as_array_mut() {
                l.push(Value::String(rest.into()));
            }
        }
        "" => return Err(bad("empty")),
        other => {
            return Err(bad(&format!("{other} is not a valid change command")));
        }
    }
    Ok(())
}

/// `VOLUME /a /b` or `VOLUME ["/a"]` (commit's `--change`).
fn volumes(config: &mut Map<String, Value>, rest: &str) -> std::result::Result<(), &'static str> {
    let paths: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(a) => a,
        Err(_) if rest.starts_with('[') => return Err("the JSON form must be an array of strings"),
        Err(_) => rest.split_whitespace().map(unquote).collect(),
    };
    let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
    for p in paths {
        volumes[p] = json!({});
    }
    Ok(())
}

/// `K=V K2="v 2"` (or the legacy `K V...`) as pairs.
fn pairs(s: &str) -> std::result::Result<Vec<(String, String)>, &'static str> {
    let words = split_words(s)?;
    let Some(first) = words.first() else {
        return Err("needs KEY=VALUE");
    };
    if !first.contains('=') {
        let (k, v) = s.split_once(char::is_whitespace).ok_or("needs KEY=VALUE")?;
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err("every word must be KEY=VALUE"),
        })
        .collect()
}

/// Words split at blanks outside quotes; quotes removed, `\` escapes the next character.
fn split_words(s: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn unquote(s: &str) -> String {
    split_words(s)
        .ok()
        .filter(|w| w.len() == 1)
        .and_then(|mut w| w.pop())
        .unwrap_or_else(|| s.to_string())
}

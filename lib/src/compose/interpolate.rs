//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`, as the
//! Compose Specification defines them (a default may hold further interpolations). It runs on
//! every string value of the YAML tree before the files merge and before anything is typed,
//! as docker compose does; keys are left as written.
//!
//! Hand-written: the rules are these few lines of the specification, and no crate implements
//! compose's dialect (shell-expansion crates know neither `:?` with compose's message nor `$$`).

use std::collections::BTreeMap;

use serde_norway::Value;

use super::ComposeError;

/// The variables interpolation reads, and the names it found unset (docker warns once each).
pub struct Vars<'a> {
    pub values: &'a BTreeMap<String, String>,
    pub unset: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Vars<'a> {
    pub fn new(values: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars {
            values,
            unset: Default::default(),
        }
    }
}

/// Interpolate every string in `tree`; `path` names where a failure is (`services.web.image`).
pub fn tree(value: &mut Value, path: &str, vars: &Vars) -> Result<(), ComposeError> {
    match value {
        Value::String(s) => *s = text(s, path, vars)?,
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                tree(v, &format!("{path}[{i}]"), vars)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = super::load::key_text(k);
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                tree(v, &sub, vars)?;
            }
        }
        Value::Tagged(t) => tree(&mut t.value, path, vars)?,
        _ => {}
    }
    Ok(())
}

/// One string interpolated.
pub fn text(s: &str, path: &str, vars: &Vars) -> Result<String, ComposeError> {
    let bad = || ComposeError::Interpolation {
        path: path.to_string(),
        text: s.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(bad)?;
            out.push_str(&braced(&r[..end], path, vars).map_err(|e| e.unwrap_or_else(bad))?);
            rest = &r[end + 1..];
        } else {
            let n = name_len(rest);
            if n == 0 {
                // A lone `$` before something that is no name stays, as in compose.
                out.push('$');
                continue;
            }
            out.push_str(&lookup(&rest[..n], vars));
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, nested `${...}` counted.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

fn lookup(name: &str, vars: &Vars) -> String {
    match vars.values.get(name) {
        Some(v) => v.clone(),
        None => {
            vars.unset.borrow_mut().insert(name.to_string());
            String::new()
        }
    }
}

/// The inside of `${...}`: a name and an optional operator with its word. `Err(None)` is a
/// malformed expression; `Err(Some(_))` a required variable that is missing.
fn braced(inner: &str, path: &str, vars: &Vars) -> Result<String, Option<ComposeError>> {
    let n = name_len(inner);
    if n == 0 {
        return Err(None);
    }
    let (name, op) = inner.split_at(n);
    let value = vars.values.get(name);
    let empty = value.is_none_or(|v| v.is_empty());
    let word = |w: &str| text(w, path, vars).map_err(Some);
    for (prefix, unset_only) in [(":", false), ("", true)] {
        let Some(op) = op.strip_prefix(prefix) else {
            continue;
        };
        let missing = if unset_only { value.is_none() } else { empty };
        if let Some(default) = op.strip_prefix('-') {
            return if missing {
                word(default)
            } else {
                Ok(value.cloned().unwrap_or_default())
            };
        }
        if let Some(message) = op.strip_prefix('?') {
            return if missing {
                Err(Some(ComposeError::Required {
                    path: path.to_string(),
                    name: name.to_string(),
                    message: text(message, path, vars).map_err(Some)?,
                }))
            } else {
                Ok(value.cloned().unwrap_or_default())
            };
        }
        if let Some(alt) = op.strip_prefix('+') {
            return if missing {
                Ok(String::new())
            } else {
                word(alt)
            };
        }
    }
    if op.is_empty() {
        Ok(lookup(name, vars))
    } else {
        Err(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)], s: &str) -> Result<String, ComposeError> {
        let values: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        text(s, "services.web.image", &Vars::new(&values))
    }

    #[test]
    fn plain_and_braced_names() {
        let v = [("TAG", "1.2"), ("E", "")];
        assert_eq!(with(&v, "app:$TAG").unwrap(), "app:1.2");
        assert_eq!(with(&v, "app:${TAG}-x").unwrap(), "app:1.2-x");
        assert_eq!(with(&v, "cost $$5 $").unwrap(), "cost $5 $");
        assert_eq!(with(&v, "[$NOPE]").unwrap(), "[]");
    }

    #[test]
    fn defaults_tell_unset_from_empty() {
        let v = [("E", "")];
        assert_eq!(with(&v, "${E:-d}").unwrap(), "d");
        assert_eq!(with(&v, "${E-d}").unwrap(), "");
        assert_eq!(with(&v, "${U-d}").unwrap(), "d");
        assert_eq!(with(&v, "${U:-${E:-in}ner}").unwrap(), "inner");
        assert_eq!(with(&[("S", "x")], "${S:+alt}|${U+alt}").unwrap(), "alt|");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let err = with(&[("E", "")], "${E:?set E please}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "services.web.image: required variable E is missing a value: set E please"
        );
        assert_eq!(with(&[("E", "")], "${E?m}").unwrap(), "");
        assert!(with(&[], "${U?m}").is_err());
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in ["${", "${1X}", "${A!b}", "${}"] {
            assert!(
                matches!(with(&[], bad), Err(ComposeError::Interpolation { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn unset_names_are_collected() {
        let values = BTreeMap::new();
        let vars = Vars::new(&values);
        text("$A ${B} ${C:-x}", "p", &vars).unwrap();
        let unset: Vec<String> = vars.unset.borrow().iter().cloned().collect();
        assert_eq!(unset, ["A", "B"]);
    }
}

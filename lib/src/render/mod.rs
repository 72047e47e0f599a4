//! How den shows what the verbs return: docker's listings, `--format` templates, tables,
//! `json`, sizes and durations.
//!
//! The verbs in [`crate::ops`] return data (container records, image rows, disk usage, docker's
//! inspect objects); the binaries hand it to this module and print the text. Keeping the two
//! apart lets a verb be called by another program (or a test) without parsing its output, and
//! keeps docker's presentation rules (column headers, `4.26MB`, `Up 3 minutes`, `…` at column
//! 20) in one place, where unit tests pin them byte for byte.
//!
//! This module reads what the verbs return: the shapes [`crate::ops`] defines for its reports
//! ([`crate::ops::images::Row`], [`crate::ops::system::DiskUsage`], [`crate::ops::info::Info`],
//! ...) and the seams' records they carry ([`crate::store`]'s containers and images, ports from
//! [`crate::net`]). Dependencies point one way: render imports ops, ops never imports render,
//! so a verb's data does not depend on how it is shown. Errors are render's own
//! ([`TemplateError`], reported as a [`FormatError`]).
//!
//! - [`template`]: docker's `--format`, a Go `text/template` subset over JSON values.
//! - [`table`]: columns aligned as docker's tabwriter aligns them, with a `table` header.
//! - [`units`]: go-units' sizes and durations, docker's `Ellipsis`.
//! - [`containers`], [`images`], [`system`]: each verb's listing: its fields, docker's headers
//!   and default table.
//! - [`rows`] and [`objects`]: a listing's rows, or inspected objects, in the format asked for.

pub mod containers;
pub mod images;
pub mod system;
pub mod table;
pub mod template;
pub mod units;

use serde_json::Value;

pub use template::{Template, TemplateError};

/// A bad `--format`, as the binaries report it: the template's own message is the cause.
#[derive(Debug, thiserror::Error)]
#[error("invalid --format template")]
pub struct FormatError(#[from] pub TemplateError);

impl crate::error::Diagnose for FormatError {
    fn hint(&self) -> Option<String> {
        Some("see docker's --format documentation: {{.Field}}, {{json .}}, table ...".into())
    }
}

/// A listing as docker prints it when no `--format` (or `table`) is given.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    /// The default format: `table` and the columns (`{{.ID}}\t{{.Image}}...`).
    pub table: &'static str,
    /// docker's column header for each field (`ID` -> `CONTAINER ID`); fields not listed get
    /// their name upper-cased.
    pub headers: &'static [(&'static str, &'static str)],
}

/// A listing without a default table or headers (`volume inspect --format 'table ...'`).
pub const NO_LISTING: Listing = Listing {
    table: "",
    headers: &[],
};

/// Rows as docker prints them for `--format`: a table (the listing's, by default), `json` (one
/// object per line), or a template per row. A template that fails on any row fails the whole.
pub fn rows(
    format: Option<&str>,
    listing: &Listing,
    rows: &[Value],
) -> Result<String, TemplateError> {
    let format = match format {
        None | Some("") | Some("table") => listing.table,
        Some("json") => {
            return Ok(rows.iter().map(|r| format!("{r}\n")).collect());
        }
        Some(f) => f,
    };
    let t = Template::parse(format)?;
    if let Some(Value::Object(first)) = rows.first() {
        let known: Vec<&str> = first.keys().map(String::as_str).collect();
        t.check_fields("the rows", &known)?;
    }
    if t.is_table() {
        return table::render_table(&t, listing.headers, rows);
    }
    let mut out = String::new();
    for r in rows {
        out.push_str(&t.render(r)?);
        out.push('\n');
    }
    Ok(out)
}

/// Objects as `inspect` prints them: a JSON array (no format, `json`), or the template applied
/// to each. An object the template fails on is left out and its error returned with the text of
/// the others, in order.
pub fn objects(values: &[Value], format: Option<&str>) -> (String, Vec<TemplateError>) {
    let mut errors = Vec::new();
    let out = match format {
        None | Some("") | Some("json") => pretty_array(values),
        Some(f) => match Template::parse(f) {
            Ok(t) => {
                let mut s = String::new();
                for v in values {
                    match t.render(v) {
                        Ok(line) => {
                            s.push_str(&line);
                            s.push('\n');
                        }
                        Err(e) => errors.push(e),
                    }
                }
                s
            }
            Err(e) => {
                errors.push(e);
                String::new()
            }
        },
    };
    (out, errors)
}

/// One object as `version` and `info` print it for `--format`: `json` is the object on one
/// line (docker's `{{json .}}`), anything else a template applied to it.
pub fn object(value: &Value, format: &str) -> Result<String, TemplateError> {
    if format == "json" {
        return Ok(format!("{value}\n"));
    }
    let mut out = Template::parse(format)?.render(value)?;
    out.push('\n');
    Ok(out)
}

/// `values` as one indented JSON array and a newline, as `inspect` prints them.
pub fn pretty_array(values: &[Value]) -> String {
    let mut s = serde_json::to_string_pretty(values).unwrap_or_default();
    s.push('\n');
    s
}

/// A JSON document re-indented with tabs, its keys in their order, as Go's `json.Indent`
/// (docker's `manifest inspect`) writes it. Hand-written because serde_json's `Value` sorts keys
/// (den does not enable `preserve_order`, which would change every other listing's order); the
/// input was parsed already, so only its tokens' layout changes.
pub fn indent_json(doc: &[u8]) -> String {
    let text = String::from_utf8_lossy(doc);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(doc.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let next = chars[i..].iter().position(|c| !c.is_whitespace());
                if next.is_some_and(|n| chars[i + n] == close) {
                    out.push(c);
                    out.push(close);
                    i += next.unwrap_or(0) + 1;
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LISTING: Listing = Listing {
        table: "table {{.Name}}\t{{.Size}}",
        headers: &[("Name", "NAME"), ("Size", "SIZE")],
    };

    fn values() -> Vec<Value> {
        vec![
            json!({"Name": "a", "Size": "1B"}),
            json!({"Name": "bb", "Size": "22B"}),
        ]
    }

    #[test]
    fn rows_in_each_format() {
        let table = "NAME      SIZE\na         1B\nbb        22B\n";
        assert_eq!(rows(None, &LISTING, &values()).unwrap(), table);
        assert_eq!(rows(Some("table"), &LISTING, &values()).unwrap(), table);
        assert_eq!(rows(Some(""), &LISTING, &values()).unwrap(), table);
        assert_eq!(
            rows(Some("json"), &LISTING, &values()).unwrap(),
            "{\"Name\":\"a\",\"Size\":\"1B\"}\n{\"Name\":\"bb\",\"Size\":\"22B\"}\n"
        );
        assert_eq!(
            rows(Some("{{.Name}}={{.Size}}"), &LISTING, &values()).unwrap(),
            "a=1B\nbb=22B\n"
        );
        assert_eq!(
            rows(Some("table {{.Size}}"), &LISTING, &values()).unwrap(),
            "SIZE\n1B\n22B\n"
        );
        assert_eq!(rows(None, &LISTING, &[]).unwrap(), "NAME      SIZE\n");
        assert!(matches!(
            rows(Some("{{.Name"), &LISTING, &values()),
            Err(TemplateError::Parse { .. })
        ));
        assert!(matches!(
            rows(Some("{{.Name.X}}"), &LISTING, &values()),
            Err(TemplateError::Exec { .. })
        ));
        // A field the rows lack is an error naming the ones they have, as docker's typed rows
        // make it, not a `<no value>` per row.
        let e = rows(Some("{{.Name}} {{.Nope}}"), &LISTING, &values()).unwrap_err();
        assert!(
            e.to_string()
                .contains("can't evaluate field Nope: the rows have Name, Size"),
            "{e}"
        );
        assert!(rows(Some("table {{.Nope}}"), &LISTING, &values()).is_err());
        assert_eq!(rows(Some("{{.Nope}}"), &LISTING, &[]).unwrap(), "");
        assert_eq!(
            rows(Some("{{range .}}{{end}}x"), &LISTING, &values()).unwrap(),
            "x\nx\n"
        );
    }

    #[test]
    fn objects_as_inspect_prints_them() {
        let (out, errors) = objects(&values()[..1], None);
        assert_eq!(
            out,
            "[\n  {\n    \"Name\": \"a\",\n    \"Size\": \"1B\"\n  }\n]\n"
        );
        assert!(errors.is_empty());
        assert_eq!(objects(&[], Some("json")).0, "[]\n");
        let mixed = vec![
            json!({"A": {"B": 1}}),
            json!({"A": "x"}),
            json!({"A": {"B": 2}}),
        ];
        let (out, errors) = objects(&mixed, Some("{{.A.B}}"));
        assert_eq!(out, "1\n2\n");
        assert_eq!(errors.len(), 1);
        let (out, errors) = objects(&mixed, Some("{{.A"));
        assert_eq!((out.as_str(), errors.len()), ("", 1));
    }
}

#[cfg(test)]
mod indent_tests {
    #[test]
    fn indents_as_go_does_keeping_key_order() {
        let doc = br#" {"z":1, "a":[ ],"m":{"k":"a, \"b\": {c}"},"l":[{},2]}"#;
        assert_eq!(
            super::indent_json(doc),
            "{\n\t\"z\": 1,\n\t\"a\": [],\n\t\"m\": {\n\t\t\"k\": \"a, \\\"b\\\": {c}\"\n\t},\n\t\"l\": [\n\t\t{},\n\t\t2\n\t]\n}\n"
        );
        let again = super::indent_json(super::indent_json(doc).as_bytes());
        assert_eq!(again, super::indent_json(doc));
    }
}

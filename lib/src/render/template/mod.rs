//! docker's `--format`: a hand-written subset of Go's `text/template`, rendered over JSON.
//!
//! `den ps`, `den images`, `den volume ls` and `den inspect` take docker's `--format`: a Go
//! template executed once per row or inspected object. den already has each row as a
//! [`serde_json::Value`], so this module parses the template and walks that value directly.
//! It is written by hand rather than taken from a crate: the Rust ports of Go templates bring
//! their own value model that every row would first be converted into, and what docker users
//! write is a small subset (field paths, a dozen functions, `if`/`range`/`with`) that fits here.
//!
//! The syntax tree is defined here; `parse` reads a template into it (lexer and parser), `eval`
//! runs it over a value, `functions` holds the callable functions and Go's value printing.
//!
//! # Supported
//! - Text and actions: `{{.}}`, `{{.A.B}}`, `{{$}}`, `{{$x.A}}`, `{{(pipeline).A}}`, literals
//!   (`"str"`, `` `raw` ``, numbers, `true`, `false`, `nil`), comments `{{/* … */}}`, and the
//!   trim markers `{{- ` and ` -}}`.
//! - Pipelines `{{.X | json}}`: the piped value becomes the last argument.
//! - `if`/`else if`/`else`, `with`/`else with`/`else`, `range` (arrays; objects by sorted key;
//!   non-negative integers) with `else`, and variables `{{$x := …}}`, `{{$x = …}}`,
//!   `{{range $i, $e := …}}`.
//! - Go's functions `and or not len index slice print printf println eq ne lt le gt ge`, and
//!   docker's `json split join title lower upper pad truncate`.
//! - As docker does, the two characters `\t` and `\n` in the format become a tab and a newline,
//!   and a leading `table` asks for [`crate::render::table::render_table`]'s aligned columns with a
//!   header line.
//!
//! # Not supported
//! `define`/`template`/`block`, `break`/`continue`, methods (docker's `{{.Label "k"}}`),
//! `call`, `html`/`js`/`urlquery`, character constants, and printf verbs beyond
//! `%v %s %q %d %x %X %f %t %%` (with flags `-+0`, width and precision).
//!
//! # Where JSON differs from docker's typed Go values
//! A field of a row that listings (`ps`, `images`, ...) do not have is refused before any row
//! is printed ([`Template::check_fields`]), as docker's typed rows refuse it; deeper down, a
//! missing key prints `<no value>` and a `null` prints `<nil>`; a field of a `null` or missing
//! value is missing rather than an error, and string functions take a missing/`null` argument
//! as `""` (docker's typed zero values). Integral numbers print as integers. Objects print as Go
//! maps (`map[k:v]`), also where docker would print a struct (`{0.0.0.0 8080}`).

mod eval;
mod functions;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::Value;

use eval::Exec;

/// A parsed `--format` template.
#[derive(Debug)]
pub struct Template {
    /// The format as the user gave it, for error messages.
    source: String,
    table: bool,
    nodes: Vec<Node>,
}

/// A bad `--format`: the template as given, and a one-line Go-style message.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse (`template: :1: unexpected "}" in operand`).
    #[error("template parsing error in {template:?}: {message}")]
    Parse { template: String, message: String },
    /// Rendering failed for a value (`template: :1: executing at <.A.B>: …`).
    #[error("template execution error in {template:?}: {message}")]
    Exec { template: String, message: String },
}

impl Template {
    /// Parse a docker --format string. A leading "table " (or "table" alone) is recorded and
    /// stripped.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_matches(' '))
            }
            _ => (false, src),
        };
        let body = body.replace(r"\t", "\t").replace(r"\n", "\n");
        let nodes = parse::parse(&body).map_err(|message| TemplateError::Parse {
            template: src.to_string(),
            message,
        })?;
        Ok(Template {
            source: src.to_string(),
            table,
            nodes,
        })
    }

    /// True when the format began with "table".
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The fields of `.` the template reads (`{{.ID}}` reads `ID`, `{{.State.Status}}` reads
    /// `State`), or None when it may read more than named fields (`{{json .}}`, a variable,
    /// `with`, `range`): a listing need only compute these for each row.
    pub fn fields(&self) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        nodes_fields(&self.nodes, &mut out).then_some(out)
    }

    /// Refuse a field of `.` that is not among `known`, the fields of the rows named `rows` in
    /// the message (`ps rows`), as docker refuses one its typed rows lack, instead of printing
    /// `<no value>` for every row. Only the fields [`Template::fields`] can name are checked (a
    /// `range` or a variable may read others).
    pub fn check_fields(&self, rows: &str, known: &[&str]) -> Result<(), TemplateError> {
        let Some(fields) = self.fields() else {
            return Ok(());
        };
        match fields.iter().find(|f| !known.contains(f)) {
            None => Ok(()),
            Some(f) => Err(TemplateError::Exec {
                template: self.source.clone(),
                message: format!("can't evaluate field {f}: {rows} have {}", known.join(", ")),
            }),
        }
    }

    /// The template as text and fields of `.`, when it is only that (`{{.ID}}\t{{.Names}}`):
    /// a listing can then print each row's fields as they are, with no object built for it
    /// (a string field prints as itself).
    pub fn plain(&self) -> Option<Vec<Plain<'_>>> {
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Text(t) => Some(Plain::Text(t)),
                Node::Action { pipe, .. } if pipe.decl.is_empty() => match &pipe.cmds[..] {
                    [Cmd { args }] => match &args[..] {
                        [
                            Operand {
                                term: Term::Dot,
                                fields,
                            },
                        ] if fields.len() == 1 => Some(Plain::Field(&fields[0])),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Render for one value (a row / one inspected object). No trailing newline is added.
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        self.execute(value, None)
    }

    /// The header line of a `table` format: every field path (`{{.ID}}`, `{{.State.Status}}`)
    /// yields its entry in `headers` (looked up by the dotted path), or else its last field
    /// upper-cased; `.` itself is an object of all `headers`.
    pub(crate) fn render_header(&self, headers: &[(&str, &str)]) -> Result<String, TemplateError> {
        let dot: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(field, header)| (field.to_string(), Value::from(*header)))
            .collect();
        self.execute(&Value::Object(dot), Some(headers))
    }

    /// Run the template with `value` as `.` and `$`; with `headers`, every field path instead
    /// yields its column header (docker renders its table header line this way).
    fn execute(
        &self,
        value: &Value,
        headers: Option<&[(&str, &str)]>,
    ) -> Result<String, TemplateError> {
        let mut exec = Exec::new(value, headers);
        let mut out = String::new();
        exec.walk(&self.nodes, value, &mut out)
            .map_err(|message| TemplateError::Exec {
                template: self.source.clone(),
                message,
            })?;
        Ok(out)
    }
}

/// [`Template::fields`] of some nodes, into `out`; false when they read `.` otherwise.
fn nodes_fields<'a>(nodes: &'a [Node], out: &mut Vec<&'a str>) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(_) => true,
        Node::Action { pipe, .. } => pipe_fields(pipe, out),
        Node::Control {
            kind: Kind::If,
            pipe,
            body,
            otherwise,
            ..
        } => pipe_fields(pipe, out) && nodes_fields(body, out) && nodes_fields(otherwise, out),
        Node::Control { .. } => false,
    })
}

fn pipe_fields<'a>(pipe: &'a Pipe, out: &mut Vec<&'a str>) -> bool {
    pipe.decl.is_empty()
        && pipe
            .cmds
            .iter()
            .all(|c| c.args.iter().all(|o| operand_fields(o, out)))
}

fn operand_fields<'a>(o: &'a Operand, out: &mut Vec<&'a str>) -> bool {
    match &o.term {
        Term::Dot => match o.fields.first() {
            Some(f) => {
                out.push(f);
                true
            }
            None => false,
        },
        Term::Var(_) => false,
        Term::Lit(_) | Term::Func(_) => true,
        Term::Sub(p) => pipe_fields(p, out),
    }
}

/// A piece of a plain template ([`Template::plain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain<'a> {
    Text(&'a str),
    /// `{{.NAME}}`.
    Field(&'a str),
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug)]
enum Node {
    Text(String),
    /// `{{pipeline}}`: printed, unless it declares or assigns a variable.
    Action {
        pipe: Pipe,
        at: At,
    },
    /// `if`, `with` or `range`; `otherwise` is the `{{else}}` part.
    Control {
        kind: Kind,
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
        at: At,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

/// Where an action is, for error messages.
#[derive(Debug, Clone)]
struct At {
    line: usize,
    /// The action's text between the delimiters.
    src: String,
}

impl At {
    fn parse_error(&self, message: impl std::fmt::Display) -> String {
        format!("template: :{}: {message}", self.line)
    }

    fn exec_error(&self, message: impl std::fmt::Display) -> String {
        format!(
            "template: :{}: executing at <{}>: {message}",
            self.line, self.src
        )
    }
}

#[derive(Debug)]
struct Pipe {
    /// Declared (or, with `assign`, assigned) variables, `$` included.
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

/// One stage of a pipeline: a function and its arguments, or a single operand.
#[derive(Debug)]
struct Cmd {
    args: Vec<Operand>,
}

/// A term followed by field names: `.A.B` is `Dot` with fields `[A, B]`.
#[derive(Debug)]
struct Operand {
    term: Term,
    fields: Vec<String>,
}

#[derive(Debug)]
enum Term {
    Dot,
    Var(String),
    Lit(Value),
    Func(String),
    Sub(Pipe),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// A value during execution: `None` is Go's "no value" (a missing map key), printed
/// `<no value>`; `Some(Value::Null)` is nil, printed `<nil>`.
type Val = Option<Value>;

/// Go's truth: false, 0, "", nil and empty arrays/objects are false.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

//! Running a parsed template over a JSON value: Go's `text/template` execution (`.` and `$`,
//! variables and their scopes, `if`/`with`/`range`, pipelines, fields of maps).

use serde_json::Value;

use super::functions::{builtin, display};
use super::{At, Cmd, Kind, Node, Operand, Pipe, Term, Val, truthy, type_name};

pub(super) struct Exec<'a> {
    root: &'a Value,
    vars: Vec<(String, Val)>,
    /// Set while rendering a table's header line.
    headers: Option<&'a [(&'a str, &'a str)]>,
}

impl<'a> Exec<'a> {
    pub(super) fn new(root: &'a Value, headers: Option<&'a [(&'a str, &'a str)]>) -> Exec<'a> {
        Exec {
            root,
            vars: Vec::new(),
            headers,
        }
    }

    pub(super) fn walk(
        &mut self,
        nodes: &[Node],
        dot: &Value,
        out: &mut String,
    ) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action { pipe, at } => {
                    let value = self.eval_pipe(pipe, dot).map_err(|e| at.exec_error(e))?;
                    if pipe.decl.is_empty() {
                        out.push_str(&display(value.as_ref()));
                    } else {
                        self.bind(&pipe.decl[0], value, pipe.assign);
                    }
                }
                Node::Control {
                    kind,
                    pipe,
                    body,
                    otherwise,
                    at,
                } => {
                    let scope = self.vars.len();
                    let value = self.eval_pipe(pipe, dot).map_err(|e| at.exec_error(e))?;
                    match kind {
                        Kind::If | Kind::With => {
                            let truth = truthy(value.as_ref());
                            if let Some(name) = pipe.decl.first() {
                                self.bind(name, value.clone(), pipe.assign);
                            }
                            let inner = value.unwrap_or(Value::Null);
                            match (truth, kind) {
                                (true, Kind::With) => self.walk(body, &inner, out)?,
                                (true, _) => self.walk(body, dot, out)?,
                                (false, _) => self.walk(otherwise, dot, out)?,
                            }
                        }
                        Kind::Range => self.range(pipe, value, body, otherwise, dot, out, at)?,
                    }
                    self.vars.truncate(scope);
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        pipe: &Pipe,
        value: Val,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
        out: &mut String,
        at: &At,
    ) -> Result<(), String> {
        // (key, element) pairs: array index or object key (sorted, as Go sorts map keys).
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match value {
            None | Some(Value::Null) => Box::new(std::iter::empty()),
            Some(Value::Array(a)) => {
                Box::new(a.into_iter().enumerate().map(|(i, e)| (Value::from(i), e)))
            }
            Some(Value::Object(m)) => {
                let mut items: Vec<_> = m.into_iter().collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                Box::new(items.into_iter().map(|(k, e)| (Value::String(k), e)))
            }
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                Box::new((0..n.as_u64().unwrap_or(0)).map(|i| (Value::from(i), Value::from(i))))
            }
            Some(other) => {
                return Err(at.exec_error(format_args!(
                    "range can't iterate over {}",
                    display(Some(&other))
                )));
            }
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            return self.walk(otherwise, dot, out);
        }
        for (key, elem) in items {
            let scope = self.vars.len();
            match pipe.decl.as_slice() {
                [e] => self.bind(e, Some(elem.clone()), pipe.assign),
                [k, e] => {
                    self.bind(k, Some(key), pipe.assign);
                    self.bind(e, Some(elem.clone()), pipe.assign);
                }
                _ => {}
            }
            self.walk(body, &elem, out)?;
            self.vars.truncate(scope);
        }
        Ok(())
    }

    fn bind(&mut self, name: &str, value: Val, assign: bool) {
        let existing = self.vars.iter_mut().rev().find(|(n, _)| n == name);
        match existing {
            Some((_, slot)) if assign => *slot = value,
            _ => self.vars.push((name.to_string(), value)),
        }
    }

    fn var(&self, name: &str) -> Result<Option<&Value>, String> {
        if name == "$" {
            return Ok(Some(self.root));
        }
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.as_ref()),
            None => Err(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipe(&self, pipe: &Pipe, dot: &Value) -> Result<Val, String> {
        let mut piped: Option<Val> = None;
        for cmd in &pipe.cmds {
            piped = Some(self.eval_cmd(cmd, dot, piped)?);
        }
        Ok(piped.flatten())
    }

    fn eval_cmd(&self, cmd: &Cmd, dot: &Value, piped: Option<Val>) -> Result<Val, String> {
        match cmd.args.split_first() {
            Some((
                Operand {
                    term: Term::Func(name),
                    ..
                },
                args,
            )) => self.call(name, args, dot, piped),
            Some((operand, _)) => self.eval_operand(operand, dot),
            None => Err("empty command".to_string()),
        }
    }

    fn eval_operand(&self, op: &Operand, dot: &Value) -> Result<Val, String> {
        if let Some(headers) = self.headers
            && !op.fields.is_empty()
            && matches!(op.term, Term::Dot | Term::Var(_))
        {
            return Ok(Some(Value::String(header_name(headers, &op.fields))));
        }
        let owned;
        let base = match &op.term {
            Term::Dot => Some(dot),
            Term::Var(name) => self.var(name)?,
            Term::Lit(value) => return Ok(Some(value.clone())),
            Term::Func(name) => return self.call(name, &[], dot, None),
            Term::Sub(pipe) => {
                owned = self.eval_pipe(pipe, dot)?;
                owned.as_ref()
            }
        };
        Ok(walk_fields(base, &op.fields)?.cloned())
    }

    fn call(
        &self,
        name: &str,
        args: &[Operand],
        dot: &Value,
        piped: Option<Val>,
    ) -> Result<Val, String> {
        if name == "and" || name == "or" {
            // Short-circuit: the first argument that decides, else the last.
            let stop_on = name == "or";
            let mut last = None;
            for arg in args {
                let value = self.eval_operand(arg, dot)?;
                if truthy(value.as_ref()) == stop_on {
                    return Ok(value);
                }
                last = Some(value);
            }
            return match piped.or(last) {
                Some(value) => Ok(value),
                None => Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )),
            };
        }
        let mut values = args
            .iter()
            .map(|arg| self.eval_operand(arg, dot))
            .collect::<Result<Vec<_>, _>>()?;
        values.extend(piped);
        builtin(name, values)
    }
}

fn header_name(headers: &[(&str, &str)], fields: &[String]) -> String {
    let path = fields.join(".");
    match headers.iter().find(|(field, _)| *field == path) {
        Some((_, header)) => header.to_string(),
        None => fields.last().map(|f| f.to_uppercase()).unwrap_or_default(),
    }
}

fn walk_fields<'v>(
    mut value: Option<&'v Value>,
    fields: &[String],
) -> Result<Option<&'v Value>, String> {
    for field in fields {
        value = match value {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => map.get(field),
            Some(other) => {
                return Err(format!(
                    "can't evaluate field {field} in type {}",
                    type_name(other)
                ));
            }
        };
    }
    Ok(value)
}

//! Variable expansion in Dockerfile words, as BuildKit's shell lexer does it.
//!
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}`, `${VAR?message}`; single quotes keep text as it is, double quotes expand,
//! both are removed; the escape character makes the next character literal. Unset variables
//! expand to nothing. Which instructions expand (ADD, COPY, ENV, EXPOSE, FROM, LABEL,
//! STOPSIGNAL, USER, VOLUME, WORKDIR, ARG, and the flags of these) is the executor's choice;
//! RUN, CMD and ENTRYPOINT are left to the shell in the container.
//!
//! Written by hand: no crate implements docker's lexer (shell-words and shellexpand each do half
//! of it, with POSIX rules that differ in the details: escapes, `${VAR:?}`, quote removal).

/// Looks a variable up.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expand one word (quotes removed, no splitting).
pub fn word(s: &str, escape: char, lookup: Lookup<'_>) -> Result<String, String> {
    let mut out = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        escape,
        lookup,
    }
    .run(false)?;
    Ok(out.pop().map(|w| w.text).unwrap_or_default())
}

/// Expand and split on unquoted whitespace (EXPOSE, VOLUME, `KEY=VALUE` lists).
pub fn words(s: &str, escape: char, lookup: Lookup<'_>) -> Result<Vec<String>, String> {
    let out = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        escape,
        lookup,
    }
    .run(true)?;
    Ok(out.into_iter().map(|w| w.text).collect())
}

/// Expand variables in free text (a COPY heredoc with an unquoted delimiter): quotes and
/// everything else stay as they are; the escape character before `$` keeps it literal.
pub fn text(s: &str, escape: char, lookup: Lookup<'_>) -> Result<String, String> {
    let mut lx = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        escape,
        lookup,
    };
    let mut out = String::new();
    while let Some(c) = lx.peek() {
        lx.pos += 1;
        match c {
            '$' => out.push_str(&lx.dollar()?),
            e if e == escape && lx.peek() == Some('$') => {
                out.push('$');
                lx.pos += 1;
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Split on unquoted whitespace, keeping quotes (for expanding each part afterwards).
pub fn split_raw(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match (c, quote) {
            ('\\', _) => {
                cur.push(c);
                esc = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                cur.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                cur.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `KEY=VALUE ...` pairs (ENV, LABEL), or the legacy `KEY VALUE` form.
pub fn pairs(
    text: &str,
    escape: char,
    lookup: Lookup<'_>,
) -> Result<Vec<(String, String)>, String> {
    let parts = split_raw(text);
    if parts.first().is_some_and(|p| !p.contains('=')) {
        // ENV KEY the rest of the line
        let (k, v) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("needs KEY=VALUE")?;
        return Ok(vec![(k.to_string(), word(v.trim(), escape, lookup)?)]);
    }
    let mut out = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{p:?} is not KEY=VALUE"))?;
        out.push((word(k, escape, lookup)?, word(v, escape, lookup)?));
    }
    Ok(out)
}

struct Word {
    text: String,
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: Lookup<'a>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn run(&mut self, split: bool) -> Result<Vec<Word>, String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut started = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                c if split && c.is_whitespace() => {
                    if started {
                        words.push(Word {
                            text: std::mem::take(&mut cur),
                        });
                        started = false;
                    }
                }
                '\'' => {
                    started = true;
                    self.single_quoted(&mut cur)?;
                }
                '"' => {
                    started = true;
                    self.double_quoted(&mut cur)?;
                }
                '$' if split => {
                    // An unquoted value splits on its whitespace, as the shell's would.
                    for ch in self.dollar()?.chars() {
                        if ch.is_whitespace() {
                            if started {
                                words.push(Word {
                                    text: std::mem::take(&mut cur),
                                });
                                started = false;
                            }
                        } else {
                            cur.push(ch);
                            started = true;
                        }
                    }
                }
                '$' => {
                    started = true;
                    cur.push_str(&self.dollar()?);
                }
                e if e == self.escape => {
                    started = true;
                    match self.peek() {
                        Some(n) => {
                            cur.push(n);
                            self.pos += 1;
                        }
                        None => cur.push(e),
                    }
                }
                c => {
                    started = true;
                    cur.push(c);
                }
            }
        }
        if started || !split {
            words.push(Word { text: cur });
        }
        Ok(words)
    }

    /// After a `'`: the text up to the closing quote, as it is.
    fn single_quoted(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.peek() {
                None => return Err("unterminated single quote".into()),
                Some('\'') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(ch) => {
                    cur.push(ch);
                    self.pos += 1;
                }
            }
        }
    }

    /// After a `"`: the text up to the closing quote, variables expanded; the escape character
    /// keeps a `"`, `$` or itself literal.
    fn double_quoted(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.peek() {
                None => return Err("unterminated double quote".into()),
                Some('"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some('$') => {
                    self.pos += 1;
                    cur.push_str(&self.dollar()?);
                }
                Some(e) if e == self.escape => {
                    self.pos += 1;
                    match self.peek() {
                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                            cur.push(n);
                            self.pos += 1;
                        }
                        _ => cur.push(e),
                    }
                }
                Some(ch) => {
                    cur.push(ch);
                    self.pos += 1;
                }
            }
        }
    }

    /// After a `$`: a variable reference, or a literal `$`.
    fn dollar(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: ${} needs a variable name".into());
                }
                let value = (self.lookup)(&name);
                match self.peek() {
                    Some('}') => {
                        self.pos += 1;
                        Ok(value.unwrap_or_default())
                    }
                    Some(':') | Some('-') | Some('+') | Some('?') => {
                        let colon = self.peek() == Some(':');
                        if colon {
                            self.pos += 1;
                        }
                        let op = self.peek().ok_or("unterminated ${")?;
                        self.pos += 1;
                        let arg = self.until_brace()?;
                        let word = word(&arg, self.escape, self.lookup)?;
                        let set = match &value {
                            Some(v) => !(colon && v.is_empty()),
                            None => false,
                        };
                        match op {
                            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                            '+' => Ok(if set { word } else { String::new() }),
                            '?' if set => Ok(value.unwrap_or_default()),
                            '?' => Err(if word.is_empty() {
                                format!("{name}: is not set")
                            } else {
                                format!("{name}: {word}")
                            }),
                            other => Err(format!("unsupported modifier ({other}) in substitution")),
                        }
                    }
                    _ => Err(format!("bad substitution: ${{{name}")),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// The text up to the `}` that closes this substitution (nested `${...}` included).
    fn until_brace(&mut self) -> Result<String, String> {
        let mut depth = 0;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '}' if depth == 0 => return Ok(s),
                '}' => depth -= 1,
                '{' if s.ends_with('$') => depth += 1,
                _ => {}
            }
            s.push(c);
        }
        Err("unterminated ${".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_label_pairs() {
        let l = |n: &str| (n == "A").then(|| "a".to_string());
        assert_eq!(
            pairs("K=\"v 1\" L=$A", '\\', &l).unwrap(),
            [
                ("K".to_string(), "v 1".to_string()),
                ("L".into(), "a".into())
            ]
        );
        assert_eq!(
            pairs("K the rest $A", '\\', &l).unwrap(),
            [("K".to_string(), "the rest a".to_string())]
        );
        assert!(pairs("K=1 junk", '\\', &l).is_err());
        assert_eq!(split_raw(r#"a "b c"  d\ e"#), ["a", "\"b c\"", "d\\ e"]);
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    #[test]
    fn docker_expansion_forms() {
        let w = |s| word(s, '\\', &env).unwrap();
        let cases = [
            ("$A", "a"),
            ("${A}b", "ab"),
            ("$A$B.c", "a.c"),
            ("${B:-x}", "x"),
            ("${EMPTY:-x}", "x"),
            ("${EMPTY-x}", ""),
            ("${A:+y}", "y"),
            ("${B:+y}", ""),
            ("${B:-${A}z}", "az"),
            ("'$A'", "$A"),
            ("\"$A b\"", "a b"),
            ("\\$A", "$A"),
            ("a\\ b", "a b"),
            ("cost $5", "cost $5"),
            ("\"q\\\"q\"", "q\"q"),
        ];
        for (i, o) in cases {
            assert_eq!(w(i), o, "{i}");
        }
        assert_eq!(
            word("${B:?must be set}", '\\', &env).unwrap_err(),
            "B: must be set"
        );
        assert_eq!(word("${A:?x}", '\\', &env).unwrap(), "a");
        assert_eq!(word("`$A", '`', &env).unwrap(), "$A");
    }

    #[test]
    fn text_keeps_quotes() {
        assert_eq!(
            text("say \"$A\" '${B:-b}' \\$A\n", '\\', &env).unwrap(),
            "say \"a\" 'b' $A\n"
        );
    }

    #[test]
    fn words_split_outside_quotes_only() {
        assert_eq!(
            words("80/tcp  $SP \"a b\" ''", '\\', &env).unwrap(),
            ["80/tcp", "x", "y", "a b", ""]
        );
        assert_eq!(
            words("K=\"v 1\" L=$A", '\\', &env).unwrap(),
            ["K=v 1", "L=a"]
        );
        assert!(words("'open", '\\', &env).is_err());
    }
}

//! The Go text/template subset docker users write in `--format`:
//! `{{.Field.Sub}}`, `{{json .}}`, pipelines (`{{.Names | upper}}`), method
//! calls with an argument (`{{.Label "k"}}`), `if`/`else`/`end`,
//! `range`, `{{- -}}` trimming and docker's functions (json, split, join,
//! title, lower, upper, pad, truncate) plus Go's len, index, printf,
//! print, println, not, eq, ne, and, or. Data is JSON; a "typed" context
//! (docker's formatter structs: ps, images, ...) makes an unknown field an
//! error, a plain map (inspect) prints `<no value>`, as docker does. A
//! `table` format prints a header row and aligns columns like Go's
//! tabwriter (minwidth 10, padding 3), as docker's formatter does.

use serde_json::{Map, Value};

/// A parsed template. Errors read like Go's: `template: :1: ...`.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
    src: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

type Pipe = Vec<Cmd>;
type Cmd = Vec<Arg>;

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.`), its offset and text for errors.
    Field(Vec<String>, usize, String),
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
    Sub(Pipe),
}

const FUNCS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate", "len", "index",
    "printf", "print", "println", "not", "eq", "ne", "and", "or", "lt", "le", "gt", "ge",
];

/// What a template runs against: the data, an optional methods object
/// (`{{.Label "k"}}` indexes `methods.Label`), and for docker's formatter
/// structs the Go type name that makes an unknown field an error.
pub struct Data<'a> {
    pub value: &'a Value,
    pub methods: Option<&'a Value>,
    pub type_name: Option<&'a str>,
}

impl<'a> Data<'a> {
    /// A plain map (inspect's fallback): missing keys are `<no value>`.
    pub fn map(value: &'a Value) -> Data<'a> {
        Data {
            value,
            methods: None,
            type_name: None,
        }
    }
}

fn perr(src: &str, at: usize, msg: impl std::fmt::Display) -> String {
    let line = 1 + src[..at.min(src.len())].matches('\n').count();
    format!("template: :{line}: {msg}")
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut p = Parser { src, pos: 0 };
        let (nodes, end) = p.list()?;
        if let Some(kw) = end {
            return Err(perr(src, p.pos, format!("unexpected {{{{{kw}}}}}")));
        }
        Ok(Template {
            nodes,
            src: src.to_string(),
        })
    }

    /// Runs the template; `header` mode uses docker's header functions
    /// (each returns its first argument unchanged).
    pub fn execute(&self, d: &Data, header: bool) -> Result<String, String> {
        let mut out = String::new();
        let ex = Exec {
            d,
            header,
            src: &self.src,
        };
        ex.nodes(&self.nodes, d.value, &mut out)?;
        Ok(out)
    }
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl Parser<'_> {
    /// Nodes up to the end or a `{{else}}`/`{{end}}` (returned).
    fn list(&mut self) -> Result<(Vec<Node>, Option<String>), String> {
        let mut nodes = vec![];
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, None));
            };
            let mut text = rest[..open].to_string();
            let mut start = self.pos + open + 2;
            if self.src[start..].starts_with("- ") || self.src[start..].starts_with("-\t") {
                text = text.trim_end().to_string();
                start += 1;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            let close = self.src[start..]
                .find("}}")
                .ok_or_else(|| perr(self.src, start, "unclosed action"))?;
            let mut inner_end = start + close;
            let mut after = inner_end + 2;
            if self.src[..inner_end].ends_with(" -") || self.src[..inner_end].ends_with("\t-") {
                inner_end -= 1;
                let skip = self.src[after..].len() - self.src[after..].trim_start().len();
                after += skip;
            }
            let inner = &self.src[start..inner_end];
            self.pos = after;
            let t = inner.trim();
            let lead = start + (inner.len() - inner.trim_start().len());
            if t.starts_with("/*") {
                continue;
            }
            let word = t.split_whitespace().next().unwrap_or("");
            match word {
                "end" | "else" if t == word => return Ok((nodes, Some(word.to_string()))),
                "if" | "range" => {
                    let pipe = self.pipe(&t[word.len()..], lead + word.len())?;
                    let (body, end) = self.list()?;
                    let (els, end) = match end.as_deref() {
                        Some("else") => self.list()?,
                        _ => (vec![], end),
                    };
                    if end.as_deref() != Some("end") {
                        return Err(perr(self.src, self.pos, "unexpected EOF"));
                    }
                    nodes.push(if word == "if" {
                        Node::If(pipe, body, els)
                    } else {
                        Node::Range(pipe, body, els)
                    });
                }
                "" => return Err(perr(self.src, start, "missing value for command")),
                _ => nodes.push(Node::Action(self.pipe(t, lead)?)),
            }
        }
    }

    /// A pipeline from `s`, which starts at offset `base` of the source.
    fn pipe(&self, s: &str, base: usize) -> Result<Pipe, String> {
        let toks = self.tokens(s, base)?;
        let mut i = 0;
        let pipe = self.pipe_toks(&toks, &mut i)?;
        if i < toks.len() {
            return Err(perr(self.src, base, format!("unexpected {:?}", toks[i].0)));
        }
        Ok(pipe)
    }

    fn pipe_toks(&self, toks: &[(String, usize)], i: &mut usize) -> Result<Pipe, String> {
        let mut pipe = vec![];
        let mut cmd: Cmd = vec![];
        while *i < toks.len() {
            let (t, at) = &toks[*i];
            *i += 1;
            match t.as_str() {
                "|" => {
                    if cmd.is_empty() {
                        return Err(perr(self.src, *at, "missing command"));
                    }
                    pipe.push(std::mem::take(&mut cmd));
                }
                "(" => cmd.push(Arg::Sub(self.pipe_toks(toks, i)?)),
                ")" => break,
                _ => cmd.push(self.arg(t, *at)?),
            }
        }
        if cmd.is_empty() {
            return Err(perr(self.src, self.pos, "missing value for command"));
        }
        pipe.push(cmd);
        Ok(pipe)
    }

    fn arg(&self, t: &str, at: usize) -> Result<Arg, String> {
        Ok(if let Some(rest) = t.strip_prefix('.') {
            let path: Vec<String> = rest
                .split('.')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Arg::Field(path, at, t.to_string())
        } else if t.starts_with('"') {
            Arg::Str(
                serde_json::from_str(t)
                    .map_err(|_| perr(self.src, at, format!("bad string {t}")))?,
            )
        } else if let Some(raw) = t.strip_prefix('`') {
            Arg::Str(raw.trim_end_matches('`').to_string())
        } else if t == "true" || t == "false" {
            Arg::Bool(t == "true")
        } else if let Ok(n) = t.parse::<f64>() {
            Arg::Num(n)
        } else if FUNCS.contains(&t) {
            Arg::Func(t.to_string())
        } else if t.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(perr(self.src, at, format!("function {t:?} not defined")));
        } else {
            return Err(perr(self.src, at, format!("unexpected {t:?} in command")));
        })
    }

    fn tokens(&self, s: &str, base: usize) -> Result<Vec<(String, usize)>, String> {
        let b = s.as_bytes();
        let mut out = vec![];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
            } else if c == b'|' || c == b'(' || c == b')' {
                out.push(((c as char).to_string(), base + i));
                i += 1;
            } else if c == b'"' || c == b'`' {
                let mut j = i + 1;
                while j < b.len() && b[j] != c {
                    j += if b[j] == b'\\' && c == b'"' { 2 } else { 1 };
                }
                if j >= b.len() {
                    return Err(perr(self.src, base + i, "unterminated quoted string"));
                }
                out.push((s[i..=j].to_string(), base + i));
                i = j + 1;
            } else {
                let j = s[i..]
                    .find(|c: char| c.is_whitespace() || "|()\"`".contains(c))
                    .map_or(s.len(), |k| i + k);
                out.push((s[i..j].to_string(), base + i));
                i = j;
            }
        }
        Ok(out)
    }
}

struct Exec<'a> {
    d: &'a Data<'a>,
    header: bool,
    src: &'a str,
}

impl Exec<'_> {
    fn nodes(&self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => out.push_str(&print(&self.pipe(p, dot)?)),
                Node::If(p, a, b) => {
                    let v = self.pipe(p, dot)?;
                    self.nodes(if truthy(&v) { a } else { b }, dot, out)?;
                }
                Node::Range(p, body, els) => {
                    let items: Vec<Value> = match self.pipe(p, dot)? {
                        Value::Array(a) => a,
                        Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                        Value::Null => vec![],
                        v => {
                            return Err(format!("template: range can't iterate over {}", print(&v)))
                        }
                    };
                    if items.is_empty() {
                        self.nodes(els, dot, out)?;
                    }
                    for it in &items {
                        self.nodes(body, it, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut last: Option<Value> = None;
        for cmd in p {
            last = Some(self.cmd(cmd, dot, last)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn cmd(&self, cmd: &Cmd, dot: &Value, last: Option<Value>) -> Result<Value, String> {
        match &cmd[0] {
            Arg::Func(f) => {
                let mut args = vec![];
                for a in &cmd[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(last);
                self.call(f, args)
            }
            Arg::Field(path, at, text) if cmd.len() > 1 || last.is_some() => {
                // A method with an argument: `.Label "k"`.
                let m = self.field(path, *at, text, dot)?;
                let key = match cmd.get(1) {
                    Some(a) => self.arg(a, dot)?,
                    None => last.unwrap_or(Value::Null),
                };
                if self.header {
                    return Ok(m);
                }
                let key = print(&key);
                Ok(m.get(&key).cloned().unwrap_or(Value::String(String::new())))
            }
            a => self.arg(a, dot),
        }
    }

    fn arg(&self, a: &Arg, dot: &Value) -> Result<Value, String> {
        Ok(match a {
            Arg::Field(path, at, text) => self.field(path, *at, text, dot)?,
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Func(f) => self.call(f, vec![])?,
            Arg::Sub(p) => self.pipe(p, dot)?,
        })
    }

    fn field(&self, path: &[String], at: usize, text: &str, dot: &Value) -> Result<Value, String> {
        let mut v = dot.clone();
        let root = std::ptr::eq(dot, self.d.value);
        for (i, name) in path.iter().enumerate() {
            let typed = root && i == 0 && self.d.type_name.is_some();
            let found = match &v {
                Value::Object(m) => m.get(name).cloned().or_else(|| {
                    if root && i == 0 {
                        self.d.methods.and_then(|ms| ms.get(name).cloned())
                    } else {
                        None
                    }
                }),
                Value::Null if !typed => Some(Value::Null),
                _ => None,
            };
            v = match found {
                Some(x) => x,
                None if typed || !v.is_object() => {
                    let ty = if typed {
                        self.d.type_name.unwrap_or("").to_string()
                    } else {
                        go_type(&v).to_string()
                    };
                    let line = 1 + self.src[..at].matches('\n').count();
                    let col = at - self.src[..at].rfind('\n').map_or(0, |n| n + 1);
                    return Err(format!(
                        "template: :{line}:{col}: executing \"\" at <{text}>: can't evaluate field {name} in type {ty}"
                    ));
                }
                None => Value::Null,
            };
        }
        Ok(v)
    }

    fn call(&self, f: &str, args: Vec<Value>) -> Result<Value, String> {
        let want = |n: usize| -> Result<(), String> {
            if args.len() < n {
                Err(format!(
                    "template: wrong number of args for {f}: want {n} got {}",
                    args.len()
                ))
            } else {
                Ok(())
            }
        };
        let s = |i: usize| args.get(i).map(print).unwrap_or_default();
        let n = |i: usize| args.get(i).and_then(Value::as_f64).unwrap_or(0.0) as usize;
        if self.header
            && [
                "json", "split", "join", "title", "lower", "upper", "truncate",
            ]
            .contains(&f)
        {
            want(1)?;
            return Ok(Value::String(s(0)));
        }
        Ok(Value::String(match f {
            "json" => {
                want(1)?;
                let j = serde_json::to_string(&args[0]).unwrap_or_default();
                // docker's formatter structs marshal through json.Marshal,
                // which escapes HTML characters.
                if self.d.type_name.is_some() && args[0] == *self.d.value {
                    j.replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026")
                } else {
                    j
                }
            }
            "split" => {
                want(2)?;
                return Ok(Value::Array(
                    s(0).split(&s(1)).map(|x| Value::String(x.into())).collect(),
                ));
            }
            "join" => {
                want(2)?;
                match &args[0] {
                    Value::Array(a) => a.iter().map(print).collect::<Vec<_>>().join(&s(1)),
                    v => print(v),
                }
            }
            "title" => {
                want(1)?;
                let mut up = true;
                s(0).chars()
                    .map(|c| {
                        let r = if up { c.to_ascii_uppercase() } else { c };
                        up = !c.is_alphanumeric() && c != '_' && c != '\'';
                        r
                    })
                    .collect()
            }
            "lower" => {
                want(1)?;
                s(0).to_lowercase()
            }
            "upper" => {
                want(1)?;
                s(0).to_uppercase()
            }
            "pad" => {
                want(3)?;
                let x = s(0);
                if x.is_empty() {
                    x
                } else {
                    format!("{}{x}{}", " ".repeat(n(1)), " ".repeat(n(2)))
                }
            }
            "truncate" => {
                want(2)?;
                s(0).chars().take(n(1)).collect()
            }
            "len" => {
                want(1)?;
                let l = match &args[0] {
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    Value::String(x) => x.len(),
                    v => return Err(format!("template: len of type {}", go_type(v))),
                };
                return Ok(Value::from(l));
            }
            "index" => {
                want(1)?;
                let mut v = args[0].clone();
                for k in &args[1..] {
                    v = match (&v, k) {
                        (Value::Array(a), k) => a
                            .get(k.as_f64().unwrap_or(-1.0) as usize)
                            .cloned()
                            .ok_or_else(|| format!("template: index out of range: {}", print(k)))?,
                        (Value::Object(m), k) => m.get(&print(k)).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                }
                return Ok(v);
            }
            "printf" => {
                want(1)?;
                sprintf(&s(0), &args[1..])
            }
            "print" => args.iter().map(print).collect::<Vec<_>>().join(""),
            "println" => args.iter().map(print).collect::<Vec<_>>().join(" ") + "\n",
            "not" => {
                want(1)?;
                return Ok(Value::Bool(!truthy(&args[0])));
            }
            "eq" | "ne" => {
                want(2)?;
                let eq = args[1..].iter().any(|b| loose_eq(&args[0], b));
                return Ok(Value::Bool(eq == (f == "eq")));
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = match (args[0].as_f64(), args[1].as_f64()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => Some(print(&args[0]).cmp(&print(&args[1]))),
                };
                let Some(o) = ord else {
                    return Ok(Value::Bool(false));
                };
                use std::cmp::Ordering::*;
                let r = match f {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                };
                return Ok(Value::Bool(r));
            }
            "and" | "or" => {
                want(1)?;
                let pick = args
                    .iter()
                    .find(|a| truthy(a) != (f == "and"))
                    .unwrap_or(args.last().unwrap());
                return Ok(pick.clone());
            }
            _ => unreachable!("parser admits only known functions"),
        }))
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "interface {}",
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's `%v` of a value decoded from JSON (integers print as integers).
pub fn print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!("map[{}]", map_items(m).join(" ")),
    }
}

fn map_items(m: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{k}:{}", print(&m[*k])))
        .collect()
}

/// printf with the verbs people use: %s %v %d %q %%, with `-` and a width.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut width = String::new();
        while let Some(&d) = it.peek() {
            if d == '-' {
                left = true;
            } else if d.is_ascii_digit() {
                width.push(d);
            } else {
                break;
            }
            it.next();
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(n) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        n += 1;
        let s = match verb {
            'q' => serde_json::to_string(&print(a)).unwrap_or_default(),
            _ => print(a),
        };
        let w: usize = width.parse().unwrap_or(0);
        if left {
            out.push_str(&format!("{s:<w$}"));
        } else {
            out.push_str(&format!("{s:>w$}"));
        }
    }
    out
}

/// Aligns tab-separated cells as Go's text/tabwriter does with docker's
/// settings (minwidth 10, tabwidth 1, padding 3, spaces): a column's width
/// is set per block of consecutive lines that have a cell there; the last
/// cell of a line is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    let mut widths = vec![];
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = 10;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + 3);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], a: usize, b: usize, widths: &[usize], out: &mut String) {
    for line in &lines[a..b] {
        for (j, c) in line.iter().enumerate() {
            out.push_str(c);
            if j < widths.len() {
                let pad = widths[j].saturating_sub(c.chars().count());
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
}

/// docker's `--format` for a list: `table ...` (header row, aligned),
/// `json` (`{{json .}}`), or a template printed once per item.
pub struct ListFormat {
    tmpl: Template,
    table: bool,
}

impl ListFormat {
    /// `format` as the user gave it; `default_table` when it is empty or
    /// `table`. The `\t` and `\n` the shell passes literally become tabs
    /// and newlines, as in docker.
    pub fn new(format: Option<&str>, default_table: &str) -> Result<ListFormat, String> {
        let f = match format.unwrap_or("") {
            "" | "table" => default_table,
            "json" => "{{json .}}",
            f => f,
        };
        let table = f.starts_with("table");
        let body = if table { &f[5..] } else { f };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let tmpl = Template::parse(&body).map_err(|e| format!("template parsing error: {e}"))?;
        Ok(ListFormat { tmpl, table })
    }

    /// The whole output for `items`; `header` holds the column names of the
    /// context's fields (docker's `SubHeaderContext`).
    pub fn render(
        &self,
        items: &[(Value, Value)],
        type_name: &str,
        header: &Value,
    ) -> Result<String, String> {
        let mut body = String::new();
        for (v, methods) in items {
            let d = Data {
                value: v,
                methods: Some(methods),
                type_name: Some(type_name),
            };
            body.push_str(
                &self
                    .tmpl
                    .execute(&d, false)
                    .map_err(|e| format!("template parsing error: {e}"))?,
            );
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let hd = Data {
            value: header,
            methods: Some(header),
            type_name: None,
        };
        let head = self.tmpl.execute(&hd, true).unwrap_or_default();
        Ok(tabwrite(&format!("{head}\n{body}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> Result<String, String> {
        Template::parse(t)?.execute(&Data::map(v), false)
    }

    #[test]
    fn fields_functions_and_pipelines() {
        let v = json!({"Name": "web", "State": {"Status": "running", "Pid": 42}, "L": ["a", "b"]});
        assert_eq!(run("{{.Name}}", &v).unwrap(), "web");
        assert_eq!(
            run("{{.State.Status}}/{{.State.Pid}}", &v).unwrap(),
            "running/42"
        );
        assert_eq!(
            run("{{json .State}}", &v).unwrap(),
            r#"{"Pid":42,"Status":"running"}"#
        );
        assert_eq!(run("{{.Name | upper}}", &v).unwrap(), "WEB");
        assert_eq!(run("{{join .L \",\"}}", &v).unwrap(), "a,b");
        assert_eq!(run("{{index .L 1}} {{len .L}}", &v).unwrap(), "b 2");
        assert_eq!(run("{{printf \"%-5s|\" .Name}}", &v).unwrap(), "web  |");
        assert_eq!(run("{{.Nope}}", &v).unwrap(), "<no value>");
        assert_eq!(run("{{if .Name}}y{{else}}n{{end}}", &v).unwrap(), "y");
        assert_eq!(run("{{range .L}}<{{.}}>{{end}}", &v).unwrap(), "<a><b>");
        assert_eq!(run("a {{- .Name -}} b", &v).unwrap(), "awebb");
        assert_eq!(run("{{.State}}", &v).unwrap(), "map[Pid:42 Status:running]");
        assert_eq!(run("{{eq .Name \"web\"}}", &v).unwrap(), "true");
        assert_eq!(
            run("{{gt .State.Pid 0}} {{lt .State.Pid 0}}", &v).unwrap(),
            "true false"
        );
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            Template::parse("{{.ID").unwrap_err(),
            "template: :1: unclosed action"
        );
        assert_eq!(
            Template::parse("{{foo .}}").unwrap_err(),
            "template: :1: function \"foo\" not defined"
        );
        assert!(Template::parse("{{if .A}}x").is_err());
        let v = json!({"ID": "x"});
        let d = Data {
            value: &v,
            methods: None,
            type_name: Some("*formatter.ContainerContext"),
        };
        let e = Template::parse("{{.Foo}}")
            .unwrap()
            .execute(&d, false)
            .unwrap_err();
        assert_eq!(
            e,
            "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"
        );
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let f = ListFormat::new(Some("table {{.ID}}\\t{{.Name}}"), "").unwrap();
        let items = vec![(json!({"ID": "abc", "Name": "n1"}), json!({}))];
        let out = f
            .render(&items, "T", &json!({"ID": "CONTAINER ID", "Name": "NAMES"}))
            .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            n1\n");
        let f = ListFormat::new(Some("table {{.A}}\\t{{.B}}"), "").unwrap();
        let out = f
            .render(
                &[(json!({"A": "x", "B": "y"}), json!({}))],
                "T",
                &json!({"A": "A", "B": "B"}),
            )
            .unwrap();
        assert_eq!(out, "A         B\nx         y\n");
        let f = ListFormat::new(Some("{{.Label \"k\"}}"), "").unwrap();
        let out = f
            .render(
                &[(json!({}), json!({"Label": {"k": "v"}}))],
                "T",
                &json!({}),
            )
            .unwrap();
        assert_eq!(out, "v\n");
    }
}

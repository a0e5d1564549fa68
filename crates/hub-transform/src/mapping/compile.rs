//! Rule sets from JSON to a [`Program`], with every problem and its path.

use super::Program;
use super::expr::{self, Expr};
use super::funcs::{self, Func};
use super::path::{Path, TargetPath};
use crate::error::{Limits, Location, TransformError};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Most rules in one rule set, nested ones included.
pub const MAX_RULES: usize = 10_000;
/// Deepest nesting of `each`.
pub const MAX_EACH_DEPTH: usize = 8;

const RULE_KEYS: &[&str] = &[
    "target",
    "source",
    "value",
    "expr",
    "default",
    "required",
    "when",
    "steps",
    "type",
    "each",
    "where",
    "description",
];

/// Where a rule's value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path(Path),
    Paths(Vec<Path>),
    Value(Value),
    Expr(Expr),
}

/// Per-item mapping of an array.
#[derive(Debug, Clone)]
pub(crate) struct Each {
    pub rules: Vec<Rule>,
    pub filter: Option<Expr>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub path: Arc<str>,
    pub target: TargetPath,
    pub source: Source,
    pub default: Option<Value>,
    pub required: bool,
    pub when: Option<Expr>,
    pub steps: Vec<Func>,
    pub each: Option<Each>,
    pub declared_type: Option<&'static str>,
    /// The paths the rule reads (its source or its expression's paths).
    pub reads: Vec<Path>,
}

fn err(code: &'static str, path: String, msg: impl Into<String>) -> TransformError {
    TransformError::new(code, msg).at(Location {
        path: Some(path),
        ..Location::default()
    })
}

/// Compiles a rule set with the default [`Limits`] (on output size).
pub fn compile(rules: &Value) -> Result<Program, Vec<TransformError>> {
    compile_with(rules, Limits::default())
}

/// Compiles a rule set: `{"rules": [...]}` or a bare array of rules. Every
/// problem is reported, each with its path (`rules[3].source`).
pub fn compile_with(rules: &Value, limits: Limits) -> Result<Program, Vec<TransformError>> {
    let list = match rules {
        Value::Array(a) => a,
        Value::Object(m) => {
            let mut errors = Vec::new();
            for k in m
                .keys()
                .filter(|k| !matches!(k.as_str(), "rules" | "description" | "version"))
            {
                errors.push(err(
                    "invalid_rules",
                    k.clone(),
                    format!("unknown key `{k}`; expected rules, description, version"),
                ));
            }
            match m.get("rules") {
                Some(Value::Array(a)) if errors.is_empty() => a,
                _ if !errors.is_empty() => return Err(errors),
                _ => {
                    return Err(vec![err(
                        "invalid_rules",
                        "rules".into(),
                        "`rules` must be an array of rules",
                    )]);
                }
            }
        }
        _ => {
            return Err(vec![err(
                "invalid_rules",
                "$".into(),
                "mapping rules must be an object with a `rules` array",
            )]);
        }
    };
    let mut c = Compiler {
        errors: Vec::new(),
        count: 0,
    };
    let rules = c.rules(list, "rules", 0);
    if c.errors.is_empty() {
        Ok(Program { rules, limits })
    } else {
        Err(c.errors)
    }
}

struct Compiler {
    errors: Vec<TransformError>,
    count: usize,
}

impl Compiler {
    fn rules(&mut self, list: &[Value], at: &str, depth: usize) -> Vec<Rule> {
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let path = format!("{at}[{i}]");
            self.count += 1;
            if self.count > MAX_RULES {
                self.errors.push(err(
                    "too_many_rules",
                    path,
                    format!("more than {MAX_RULES} rules"),
                ));
                return out;
            }
            match r {
                Value::Object(m) => {
                    if let Some(rule) = self.rule(m, path, depth) {
                        out.push(rule);
                    }
                }
                _ => self
                    .errors
                    .push(err("invalid_rule", path, "a rule must be an object")),
            }
        }
        out
    }

    fn rule(&mut self, m: &Map<String, Value>, path: String, depth: usize) -> Option<Rule> {
        let before = self.errors.len();
        for k in m.keys().filter(|k| !RULE_KEYS.contains(&k.as_str())) {
            self.errors.push(err(
                "invalid_rule",
                format!("{path}.{k}"),
                format!(
                    "unknown key `{k}`; expected one of {}",
                    RULE_KEYS.join(", ")
                ),
            ));
        }
        let target = self.target(m.get("target"), &path);
        let source = self.source(m, &path);
        let when = self.expr_at(m.get("when"), &format!("{path}.when"));
        let filter = self.expr_at(m.get("where"), &format!("{path}.where"));
        let (steps, declared_type) = self.steps(m, &path);
        let required = match m.get("required") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.errors.push(err(
                    "invalid_rule",
                    format!("{path}.required"),
                    "`required` must be true or false",
                ));
                false
            }
        };
        let each = match m.get("each") {
            None => {
                if filter.is_some() {
                    self.errors.push(err(
                        "invalid_rule",
                        format!("{path}.where"),
                        "`where` only applies with `each`",
                    ));
                }
                None
            }
            Some(Value::Array(list)) if depth < MAX_EACH_DEPTH => {
                if matches!(source, Some(Source::Value(_))) {
                    self.errors.push(err(
                        "invalid_rule",
                        format!("{path}.each"),
                        "`each` needs a `source` or an `expr`",
                    ));
                }
                Some(Each {
                    rules: self.rules(list, &format!("{path}.each"), depth + 1),
                    filter,
                })
            }
            Some(Value::Array(_)) => {
                self.errors.push(err(
                    "too_deep",
                    format!("{path}.each"),
                    format!("`each` nested deeper than {MAX_EACH_DEPTH}"),
                ));
                None
            }
            Some(_) => {
                self.errors.push(err(
                    "invalid_rule",
                    format!("{path}.each"),
                    "`each` must be an array of rules",
                ));
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        let source = source?;
        let reads = match &source {
            Source::Path(p) => vec![p.clone()],
            Source::Paths(ps) => ps.clone(),
            Source::Value(_) => Vec::new(),
            Source::Expr(e) => {
                let mut v = Vec::new();
                expr::paths(e, &mut v);
                v.into_iter().cloned().collect()
            }
        };
        Some(Rule {
            path: Arc::from(path),
            target: target?,
            source,
            default: m.get("default").cloned(),
            required,
            when,
            steps,
            each,
            declared_type,
            reads,
        })
    }

    fn target(&mut self, t: Option<&Value>, path: &str) -> Option<TargetPath> {
        match t {
            Some(Value::String(s)) => match TargetPath::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.errors.push(err(
                        "invalid_path",
                        format!("{path}.target"),
                        format!("bad target path `{s}`: {e}"),
                    ));
                    None
                }
            },
            _ => {
                self.errors.push(err(
                    "invalid_rule",
                    format!("{path}.target"),
                    "every rule needs a `target` path (a string)",
                ));
                None
            }
        }
    }

    fn path_at(&mut self, s: &Value, at: String) -> Option<Path> {
        let Value::String(s) = s else {
            self.errors
                .push(err("invalid_path", at, "a source path must be a string"));
            return None;
        };
        match Path::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors.push(err(
                    "invalid_path",
                    at,
                    format!("bad source path `{s}`: {e}"),
                ));
                None
            }
        }
    }

    fn source(&mut self, m: &Map<String, Value>, path: &str) -> Option<Source> {
        let given: Vec<&str> = ["source", "value", "expr"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if given.len() != 1 {
            let msg = format!(
                "a rule needs exactly one of `source`, `value` or `expr` (got {})",
                if given.is_empty() {
                    "none".into()
                } else {
                    given.join(", ")
                }
            );
            self.errors.push(err("invalid_rule", path.to_string(), msg));
            return None;
        }
        if let Some(v) = m.get("value") {
            return Some(Source::Value(v.clone()));
        }
        if m.contains_key("expr") {
            return self
                .expr_at(m.get("expr"), &format!("{path}.expr"))
                .map(Source::Expr);
        }
        match m.get("source")? {
            Value::Array(list) => {
                let ps: Vec<Option<Path>> = list
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.path_at(s, format!("{path}.source[{i}]")))
                    .collect();
                ps.into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Source::Paths)
            }
            s => self.path_at(s, format!("{path}.source")).map(Source::Path),
        }
    }

    fn expr_at(&mut self, e: Option<&Value>, at: &str) -> Option<Expr> {
        match e? {
            Value::String(s) => match expr::parse(s) {
                Ok(e) => Some(e),
                Err((col, msg)) => {
                    let loc = Location {
                        path: Some(at.to_string()),
                        column: Some(col),
                        ..Location::default()
                    };
                    let code = if msg.starts_with("unknown function") {
                        "unknown_function"
                    } else {
                        "invalid_expression"
                    };
                    self.errors
                        .push(TransformError::new(code, format!("`{s}`: {msg}")).at(loc));
                    None
                }
            },
            _ => {
                self.errors.push(err(
                    "invalid_expression",
                    at.to_string(),
                    "an expression must be a string",
                ));
                None
            }
        }
    }

    fn steps(&mut self, m: &Map<String, Value>, path: &str) -> (Vec<Func>, Option<&'static str>) {
        let mut out = Vec::new();
        match m.get("steps") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, s) in list.iter().enumerate() {
                    let at = format!("{path}.steps[{i}]");
                    match step(s) {
                        Ok(f) => out.push(f),
                        Err((code, msg)) => self.errors.push(err(code, at, msg)),
                    }
                }
            }
            Some(_) => self.errors.push(err(
                "invalid_rule",
                format!("{path}.steps"),
                "`steps` must be an array",
            )),
        }
        let declared = match m.get("type") {
            None => None,
            Some(Value::String(t)) => match ["number", "integer", "boolean", "string"]
                .into_iter()
                .find(|x| x == t)
            {
                Some(name) => {
                    out.extend(Func::build(name, &[]).ok());
                    Some(name)
                }
                None => {
                    self.errors.push(err(
                        "invalid_rule",
                        format!("{path}.type"),
                        format!("unknown type `{t}`; use number, integer, boolean or string"),
                    ));
                    None
                }
            },
            Some(_) => {
                self.errors.push(err(
                    "invalid_rule",
                    format!("{path}.type"),
                    "`type` must be a string",
                ));
                None
            }
        };
        (out, declared)
    }
}

/// One step: `"trim"`, `{"pad_left": [10, "0"]}`, `{"split": ","}` or
/// `{"date": {"from": "xero", "to": "date"}}` (named arguments).
fn step(s: &Value) -> Result<Func, (&'static str, String)> {
    let bad = |m: String| ("invalid_step", m);
    let (name, args) = match s {
        Value::String(name) => (name.as_str(), Vec::new()),
        Value::Object(m) if m.len() == 1 => {
            let Some((name, a)) = m.iter().next() else {
                return Err(bad("empty step".into()));
            };
            let args = match a {
                Value::Array(list) => list.clone(),
                Value::Object(named) => {
                    let (params, _) = funcs::params(name).ok_or_else(|| {
                        (
                            "unknown_function",
                            format!("unknown function `{name}`; known: {}", funcs::names()),
                        )
                    })?;
                    if let Some(k) = named.keys().find(|k| !params.contains(&k.as_str())) {
                        return Err(bad(format!(
                            "`{name}` has no argument `{k}`; its arguments: {}",
                            params.join(", ")
                        )));
                    }
                    let last = params
                        .iter()
                        .rposition(|p| named.contains_key(*p))
                        .map_or(0, |i| i + 1);
                    params
                        .iter()
                        .take(last)
                        .map(|p| named.get(*p).cloned().unwrap_or(Value::Null))
                        .collect()
                }
                other => vec![other.clone()],
            };
            (name.as_str(), args)
        }
        _ => return Err(bad(
            "a step is a function name or an object with one key (the function) and its arguments"
                .into(),
        )),
    };
    Func::build(name, &args).map_err(|m| {
        if funcs::params(name).is_none() {
            ("unknown_function", m)
        } else {
            ("invalid_step", m)
        }
    })
}

fn join(prefix: &str, p: &str) -> String {
    if prefix.is_empty() || p.starts_with("$root") {
        p.to_string()
    } else if p == "$" {
        prefix.to_string()
    } else if let Some(rest) = p.strip_prefix('$') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{p}")
    }
}

pub(crate) fn source_paths(rules: &[Rule], prefix: &str, out: &mut Vec<String>) {
    let push = |s: String, out: &mut Vec<String>| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for r in rules {
        let mut when = Vec::new();
        if let Some(w) = &r.when {
            expr::paths(w, &mut when);
        }
        for p in when.into_iter().chain(r.reads.iter()) {
            push(join(prefix, &p.text), out);
        }
        if let (Some(each), Source::Path(p)) = (&r.each, &r.source) {
            let base = join(prefix, &p.text);
            let base = if p.has_wildcard {
                base
            } else {
                format!("{base}[*]")
            };
            source_paths(&each.rules, &base, out);
        }
    }
}

pub(crate) fn target_types(rules: &[Rule], prefix: &str, out: &mut Vec<(String, &'static str)>) {
    for r in rules {
        let t = if prefix.is_empty() {
            r.target.text.clone()
        } else if r.target.text == "$" {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", r.target.text)
        };
        if let Some(ty) = r.declared_type {
            out.push((t.clone(), ty));
        }
        if let Some(each) = &r.each {
            target_types(&each.rules, &format!("{t}[]"), out);
        }
    }
}

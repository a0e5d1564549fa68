//! Running a [`Program`] on an input tree.

use super::compile::{Each, Rule, Source};
use super::funcs::{FnError, empty_object, truthy};
use super::path::{Path, Scope};
use super::{Output, Program, SourceRead, TraceStep};
use crate::error::{Location, TransformError};
use serde_json::Value;
use std::borrow::Cow;

/// Most warnings kept from one run.
const MAX_WARNINGS: usize = 100;
/// A run stops after this many errors.
const MAX_ERRORS: usize = 100;
/// `check_sources` looks at most at this many array items per `each` level.
const MAX_SAMPLE_ITEMS: usize = 1000;

/// How to run a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Record a [`TraceStep`] per rule (the preview API wants it; bulk
    /// work does not, and runs faster without).
    pub trace: bool,
}

impl Default for RunOptions {
    /// With a trace.
    fn default() -> Self {
        Self { trace: true }
    }
}

/// Runs `program` on `input`, with a trace. An error in any rule fails the
/// run with every error found (at most 100); each names the rule and, where
/// it comes from an input value, has that value's path (`$.Line[2].Amount`).
pub fn run(program: &Program, input: &Value) -> Result<Output, Vec<TransformError>> {
    run_with(program, input, RunOptions::default())
}

/// Runs `program` on `input` with `options`.
pub fn run_with(
    program: &Program,
    input: &Value,
    options: RunOptions,
) -> Result<Output, Vec<TransformError>> {
    let (out, errors) = run_partial(program, input, options);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Runs `program` on `input` with `options` to the end even when rules
/// fail: the output holds what the rules that worked wrote (a failed rule
/// writes nothing) with their trace, and the errors say what failed (empty
/// when the run succeeded). The preview API shows both.
pub fn run_partial(
    program: &Program,
    input: &Value,
    options: RunOptions,
) -> (Output, Vec<TransformError>) {
    let mut r = Runner {
        trace: options.trace.then(Vec::new),
        warnings: Vec::new(),
        errors: Vec::new(),
        bytes: 0,
        max_bytes: program.limits.max_bytes,
        stopped: false,
    };
    let mut out = empty_object();
    let scope = Scope {
        root: input,
        item: input,
    };
    r.rules(&program.rules, scope, &Base::Root, "", &mut out);
    let output = Output {
        value: out,
        trace: r.trace.unwrap_or_default(),
        warnings: r.warnings,
    };
    (output, r.errors)
}

/// Where in the input the current item is, rendered only when needed.
enum Base<'b> {
    Root,
    Item {
        parent: &'b Base<'b>,
        rel: &'b str,
        index: usize,
    },
}

impl Base<'_> {
    fn render(&self) -> String {
        match self {
            Base::Root => "$".to_string(),
            Base::Item { parent, rel, index } => {
                format!("{}[{index}]", join_input(&parent.render(), rel))
            }
        }
    }
}

fn join_input(base: &str, rel: &str) -> String {
    if rel.starts_with("$root") {
        rel.to_string()
    } else if let Some(rest) = rel.strip_prefix('$') {
        format!("{base}{rest}")
    } else if rel.starts_with('[') {
        format!("{base}{rel}")
    } else {
        format!("{base}.{rel}")
    }
}

fn join_target(base: &str, t: &str) -> String {
    if base.is_empty() {
        t.to_string()
    } else if t == "$" {
        base.to_string()
    } else if t.starts_with('[') {
        format!("{base}{t}")
    } else {
        format!("{base}.{t}")
    }
}

/// Rough size of a value as JSON text, to bound the output.
fn approx_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(approx_size).sum::<usize>() + a.len() + 2,
        Value::Object(m) => {
            m.iter()
                .map(|(k, v)| k.len() + 4 + approx_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

struct Runner {
    trace: Option<Vec<TraceStep>>,
    warnings: Vec<TransformError>,
    errors: Vec<TransformError>,
    bytes: usize,
    max_bytes: usize,
    stopped: bool,
}

impl Runner {
    fn rules<'a>(
        &mut self,
        rules: &'a [Rule],
        scope: Scope<'a>,
        base: &Base,
        tbase: &str,
        out: &mut Value,
    ) {
        for r in rules {
            if self.stopped {
                return;
            }
            self.rule(r, scope, base, tbase, out);
        }
    }

    fn rule<'a>(
        &mut self,
        r: &'a Rule,
        scope: Scope<'a>,
        base: &Base,
        tbase: &str,
        out: &mut Value,
    ) {
        if let Some(w) = &r.when {
            match w.eval(scope) {
                Ok(v) if !truthy(&v) => {
                    return self.record(r, scope, base, tbase, None, Some("when is false"));
                }
                Ok(_) => {}
                Err(e) => return self.fail(r, base, None, e),
            }
        }
        let Some(mut value) = self.read(r, scope, base) else {
            return self.record(r, scope, base, tbase, None, Some("source absent"));
        };
        if let Some(each) = &r.each {
            let items = self.each(r, each, &value, scope, base, tbase);
            value = Cow::Owned(items);
        }
        for f in &r.steps {
            let applied = match value {
                Cow::Borrowed(v) => f.apply(v),
                Cow::Owned(v) => f.apply_owned(v),
            };
            match applied {
                Ok(v) => value = Cow::Owned(v),
                Err(e) => return self.fail(r, base, single_path(r), e),
            }
        }
        let value = value.into_owned();
        if r.each.is_none() {
            self.bytes = self.bytes.saturating_add(approx_size(&value));
        }
        if self.bytes > self.max_bytes {
            self.stopped = true;
            let msg = format!("the output would exceed {} bytes", self.max_bytes);
            return self.fail(r, base, None, ("output_too_large", msg));
        }
        if self.trace.is_some() {
            self.record(r, scope, base, tbase, Some(value.clone()), None);
        }
        if let Err(e) = r.target.write(out, value) {
            self.fail(r, base, None, ("target_conflict", e));
        }
    }

    /// The rule's value before its steps, or `None` (with a warning or an
    /// error) when there is none to write.
    fn read<'a>(&mut self, r: &'a Rule, scope: Scope<'a>, base: &Base) -> Option<Cow<'a, Value>> {
        let value = match &r.source {
            Source::Path(p) => p.get(scope),
            Source::Paths(ps) => Some(Cow::Owned(Value::Array(
                ps.iter()
                    .map(|p| p.get(scope).map_or(Value::Null, Cow::into_owned))
                    .collect(),
            ))),
            Source::Value(v) => Some(Cow::Borrowed(v)),
            Source::Expr(e) => match e.eval(scope) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.fail(r, base, None, e);
                    return None;
                }
            },
        };
        match (value, &r.default) {
            (Some(v), _) if !v.is_null() => Some(v),
            (_, Some(d)) => Some(Cow::Borrowed(d)),
            (Some(null), None) => Some(null),
            (None, None) => {
                let at = single_path(r).map_or_else(
                    || r.path.to_string(),
                    |p| join_input(&base.render(), &p.text),
                );
                let msg = format!(
                    "rule {} (target {}): source `{at}` is absent",
                    r.path, r.target.text
                );
                let e = TransformError::new("source_missing", msg).at(Location {
                    path: Some(at),
                    ..Location::default()
                });
                if r.required {
                    self.push_error(e);
                } else if self.warnings.len() < MAX_WARNINGS {
                    self.warnings.push(e);
                }
                None
            }
        }
    }

    fn each<'a>(
        &mut self,
        r: &'a Rule,
        each: &'a Each,
        value: &Value,
        scope: Scope<'a>,
        base: &Base,
        tbase: &str,
    ) -> Value {
        let items: &[Value] = match value {
            Value::Array(a) => a,
            Value::Null => &[],
            other => std::slice::from_ref(other),
        };
        let rel = match &r.source {
            Source::Path(p) => p.text.as_str(),
            _ => "$",
        };
        let target = join_target(tbase, &r.target.text);
        let mut outs = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if self.stopped {
                break;
            }
            let ib = Base::Item {
                parent: base,
                rel,
                index,
            };
            let s = Scope {
                root: scope.root,
                item,
            };
            if let Some(f) = &each.filter {
                match f.eval(s) {
                    Ok(v) if !truthy(&v) => continue,
                    Ok(_) => {}
                    Err(e) => {
                        self.fail(r, &ib, None, e);
                        continue;
                    }
                }
            }
            let tb = if self.trace.is_some() {
                format!("{target}[{}]", outs.len())
            } else {
                String::new()
            };
            let mut o = empty_object();
            self.rules(&each.rules, s, &ib, &tb, &mut o);
            outs.push(o);
        }
        Value::Array(outs)
    }

    fn record(
        &mut self,
        r: &Rule,
        scope: Scope,
        base: &Base,
        tbase: &str,
        wrote: Option<Value>,
        skipped: Option<&'static str>,
    ) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        let read = r
            .reads
            .iter()
            .map(|p| SourceRead {
                path: p.text.clone(),
                value: p.get(scope).map_or(Value::Null, Cow::into_owned),
            })
            .collect();
        trace.push(TraceStep {
            rule: r.path.clone(),
            item: matches!(base, Base::Item { .. }).then(|| base.render()),
            read,
            target: join_target(tbase, &r.target.text),
            wrote,
            skipped,
        });
    }

    fn fail(&mut self, r: &Rule, base: &Base, source: Option<&Path>, (code, msg): FnError) {
        let at = match source {
            Some(p) => join_input(&base.render(), &p.text),
            None if matches!(base, Base::Item { .. }) => format!("{} at {}", r.path, base.render()),
            None => r.path.to_string(),
        };
        let msg = format!("rule {} (target {}): {msg}", r.path, r.target.text);
        self.push_error(TransformError::new(code, msg).at(Location {
            path: Some(at),
            ..Location::default()
        }));
    }

    fn push_error(&mut self, e: TransformError) {
        self.errors.push(e);
        if self.errors.len() >= MAX_ERRORS {
            self.stopped = true;
        }
    }
}

fn single_path(r: &Rule) -> Option<&Path> {
    match &r.source {
        Source::Path(p) => Some(p),
        _ => None,
    }
}

/// Checks that every source path of `program` is present in `sample` (in at
/// least one item, inside `each`): one `source_not_found` error per path that
/// is not, at the rule's path (`rules[3].source`).
pub fn check_sources(program: &Program, sample: &Value) -> Vec<TransformError> {
    let mut out = Vec::new();
    let scopes = [Scope {
        root: sample,
        item: sample,
    }];
    check_rules(&program.rules, &scopes, &mut out);
    out
}

fn check_rules(rules: &[Rule], scopes: &[Scope], out: &mut Vec<TransformError>) {
    for r in rules {
        let field = match &r.source {
            Source::Expr(_) => "expr",
            _ => "source",
        };
        for p in &r.reads {
            if !scopes.iter().any(|s| p.get(*s).is_some()) {
                let msg = format!("source path `{}` is not in the sample", p.text);
                let loc = Location {
                    path: Some(format!("{}.{field}", r.path)),
                    ..Location::default()
                };
                out.push(TransformError::new("source_not_found", msg).at(loc));
            }
        }
        let (Some(each), Source::Path(p)) = (&r.each, &r.source) else {
            continue;
        };
        let values: Vec<Cow<Value>> = scopes.iter().filter_map(|s| p.get(*s)).collect();
        let mut items = Vec::new();
        for v in &values {
            match &**v {
                Value::Array(a) => items.extend(a.iter()),
                other => items.push(other),
            }
        }
        let root = scopes.first().map(|s| s.root);
        let inner: Vec<Scope> = items
            .into_iter()
            .take(MAX_SAMPLE_ITEMS)
            .filter_map(|item| root.map(|root| Scope { root, item }))
            .collect();
        if !inner.is_empty() {
            check_rules(&each.rules, &inner, out);
        }
    }
}

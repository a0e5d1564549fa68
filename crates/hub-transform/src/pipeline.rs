//! A whole transformation, as a template describes it: read the input in
//! its source format, check it against the input schema, map it, check the
//! output against the output schema and write it in the target format.
//!
//! [`compile`] checks a template's parts once (every problem at its field,
//! `mapping_rules.rules[3].source`); [`Compiled::apply`] runs it on any
//! number of inputs and reports every problem with its stage and location
//! (the preview API shows them all); [`Compiled::transform`] is the strict
//! form the services use (inbound webhooks, outbound payloads, sync), where
//! any problem fails the one input.

use crate::codec::{self, Format, FormatOptions};
use crate::error::{Limits, TransformError};
use crate::mapping::{self, Program, RunOptions, TraceStep};
use crate::validate::Schema;
use serde_json::Value;

/// The raw parts of a transformation, from a stored template or a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts<'a> {
    /// Input format name (`JSON`, `XML`, `CSV`, `X12`; any case).
    pub source_format: Option<&'a str>,
    /// Output format name.
    pub target_format: Option<&'a str>,
    /// Input options (null: the format's defaults).
    pub source_options: Option<&'a Value>,
    /// Output options.
    pub target_options: Option<&'a Value>,
    /// Mapping rules (`docs/transformations.md`).
    pub mapping_rules: Option<&'a Value>,
    /// JSON Schema of the output, or `{"input": …, "output": …}`.
    pub validation_rules: Option<&'a Value>,
}

/// A problem with one part of a transformation: the field it is in
/// (`source_options`, `mapping_rules.rules[3].source`,
/// `validation_rules`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartProblem {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A transformation ready to run: formats with their options, the compiled
/// mapping and the compiled schemas. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Input format.
    pub source_format: Format,
    /// Output format.
    pub target_format: Format,
    /// Input options.
    pub source_options: FormatOptions,
    /// Output options.
    pub target_options: FormatOptions,
    /// The mapping.
    pub program: Program,
    /// Schema the input tree must pass.
    pub input_schema: Option<Schema>,
    /// Schema the output tree must pass.
    pub output_schema: Option<Schema>,
    /// The output schema as written (for type checks of the rules).
    pub output_schema_value: Option<Value>,
}

/// The input of a run: text in the source format, or a tree already read
/// (an event's JSON), which skips the reading.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Text in the source format.
    Text(&'a str),
    /// A tree.
    Tree(&'a Value),
}

/// The stage a problem of a run arose in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading the input text.
    Read,
    /// The input schema.
    Input,
    /// The mapping rules.
    Mapping,
    /// The output schema, or writing the output.
    Output,
}

impl Stage {
    /// Its name (`read`, `input`, `mapping`, `output`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Input => "input",
            Stage::Mapping => "mapping",
            Stage::Output => "output",
        }
    }
}

/// What a run produced: as much output as could be made, and every problem.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The output tree (partial when rules failed: what the others wrote);
    /// `None` when the input could not be read.
    pub tree: Option<Value>,
    /// The output written in the target format; `None` when anything
    /// failed before or while writing it.
    pub text: Option<String>,
    /// One step per rule (with a trace only).
    pub trace: Vec<TraceStep>,
    /// What did not stop the run.
    pub warnings: Vec<TransformError>,
    /// Every problem, with its stage.
    pub errors: Vec<(Stage, TransformError)>,
}

/// The result of a strict run: the output tree and its text in the target
/// format.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    /// The output tree.
    pub tree: Value,
    /// The output in the target format.
    pub text: String,
}

/// Splits `validation_rules` into the input and output schemas: `{"input":
/// …, "output": …}` (either may be left out), or one schema for the output.
pub fn schemas(rules: Option<&Value>) -> (Option<&Value>, Option<&Value>) {
    match rules {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(m))
            if !m.is_empty() && m.keys().all(|k| k == "input" || k == "output") =>
        {
            (m.get("input"), m.get("output"))
        }
        Some(v) => (None, Some(v)),
    }
}

/// The field name of an error at `location.path` under `field`.
fn field_of(field: &str, e: &TransformError) -> String {
    match &e.location.path {
        Some(p) => format!("{field}.{p}"),
        None => field.to_owned(),
    }
}

/// An error's message with its column, if it has one.
fn message_of(e: &TransformError) -> String {
    match e.location.column {
        Some(c) => format!("{} (column {c})", e.message),
        None => e.message.clone(),
    }
}

/// Checks every part, collecting every problem; the compiled transformation
/// when there is none.
pub fn compile(parts: &Parts<'_>) -> Result<Compiled, Vec<PartProblem>> {
    let mut problems = Vec::new();
    let mut push = |field: String, message: String| problems.push(PartProblem { field, message });
    let format = |field: &str, name: Option<&str>, push: &mut dyn FnMut(String, String)| match name
    {
        None => {
            push(field.into(), "required: JSON, XML, CSV or X12".into());
            None
        }
        Some(n) => n
            .parse::<Format>()
            .map_err(|e| push(field.into(), e.message))
            .ok(),
    };
    let sf = format("source_format", parts.source_format, &mut push);
    let tf = format("target_format", parts.target_format, &mut push);
    let mut options = |field: &str, f: Option<Format>, v: Option<&Value>| {
        let f = f?;
        FormatOptions::from_value(f, v)
            .map_err(|e| push(field.into(), e.message))
            .ok()
    };
    let so = options("source_options", sf, parts.source_options);
    let to = options("target_options", tf, parts.target_options);
    let program = match parts.mapping_rules {
        None | Some(Value::Null) => {
            push(
                "mapping_rules".into(),
                "required: {\"rules\": [...]}".into(),
            );
            None
        }
        Some(rules) => match mapping::compile(rules) {
            Ok(p) => Some(p),
            Err(all) => {
                for e in &all {
                    push(field_of("mapping_rules", e), message_of(e));
                }
                None
            }
        },
    };
    let (input, output) = schemas(parts.validation_rules);
    let mut schema = |which: &str, v: Option<&Value>| match v.map(Schema::compile) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(e)) => {
            push(
                "validation_rules".into(),
                format!("{which} schema: {}", e.message),
            );
            Err(())
        }
    };
    let input_schema = schema("input", input);
    let output_schema = schema("output", output);
    match (sf, tf, so, to, program, input_schema, output_schema) {
        (Some(sf), Some(tf), Some(so), Some(to), Some(program), Ok(is), Ok(os))
            if problems.is_empty() =>
        {
            Ok(Compiled {
                source_format: sf,
                target_format: tf,
                source_options: so,
                target_options: to,
                program,
                input_schema: is,
                output_schema: os,
                output_schema_value: output.cloned(),
            })
        }
        _ => Err(problems),
    }
}

impl Compiled {
    /// Runs the whole transformation on `input`, to the end: every problem
    /// is reported with its stage, and the output goes as far as it could.
    /// `trace` records what each rule read and wrote.
    pub fn apply(&self, input: Input<'_>, limits: Limits, trace: bool) -> Applied {
        let mut applied = Applied::default();
        let read;
        let tree = match input {
            Input::Tree(t) => t,
            Input::Text(text) => {
                match codec::read(self.source_format, text, &self.source_options, limits) {
                    Ok(t) => {
                        read = t;
                        &read
                    }
                    Err(e) => {
                        applied.errors.push((Stage::Read, e));
                        return applied;
                    }
                }
            }
        };
        if let Some(s) = &self.input_schema {
            applied
                .errors
                .extend(s.check(tree).into_iter().map(|e| (Stage::Input, e)));
        }
        let (out, errors) = mapping::run_partial(&self.program, tree, RunOptions { trace });
        applied.trace = out.trace;
        applied.warnings = out.warnings;
        let mapped = errors.is_empty();
        applied
            .errors
            .extend(errors.into_iter().map(|e| (Stage::Mapping, e)));
        if let Some(s) = &self.output_schema {
            applied
                .errors
                .extend(s.check(&out.value).into_iter().map(|e| (Stage::Output, e)));
        }
        if mapped {
            match codec::write(self.target_format, &out.value, &self.target_options) {
                Ok(text) => applied.text = Some(text),
                Err(e) => applied.errors.push((Stage::Output, e)),
            }
        }
        applied.tree = Some(out.value);
        applied
    }

    /// Runs the transformation on `input` where any problem fails it: the
    /// output tree and text, or the first problem (its stage in the message)
    /// with the number of others.
    pub fn transform(
        &self,
        input: Input<'_>,
        limits: Limits,
    ) -> Result<Transformed, TransformError> {
        let applied = self.apply(input, limits, false);
        let mut errors = applied.errors.into_iter();
        if let Some((stage, first)) = errors.next() {
            let more = errors.len();
            let mut e = first;
            e.message = match (stage, more) {
                (Stage::Read, _) => format!(
                    "the input is not valid {}: {}",
                    self.source_format, e.message
                ),
                (s, 0) => format!("{} stage: {}", s.as_str(), e.message),
                (s, n) => format!(
                    "{} stage: {} (and {n} more problems)",
                    s.as_str(),
                    e.message
                ),
            };
            return Err(e);
        }
        match (applied.tree, applied.text) {
            (Some(tree), Some(text)) => Ok(Transformed { tree, text }),
            _ => Err(TransformError::new(
                "no_output",
                "the transformation made no output",
            )),
        }
    }

    /// The media type of the output (`application/json`,
    /// `application/xml`, `text/csv`, `application/edi-x12`).
    pub fn output_media_type(&self) -> &'static str {
        match self.target_format {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
            Format::Csv => "text/csv",
            Format::X12 => "application/edi-x12",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts<'a>(rules: &'a Value, validation: Option<&'a Value>) -> Parts<'a> {
        Parts {
            source_format: Some("json"),
            target_format: Some("XML"),
            source_options: None,
            target_options: None,
            mapping_rules: Some(rules),
            validation_rules: validation,
        }
    }

    #[test]
    fn every_bad_part_is_reported_at_its_field() {
        let rules = json!({"rules": [{"target": "a", "source": "x", "type": "nope"}]});
        let schema = json!({"output": {"type": 7}});
        let p = Parts {
            source_format: Some("YAML"),
            target_options: Some(&json!({"root": 5})),
            ..parts(&rules, Some(&schema))
        };
        let problems = compile(&p).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"source_format"), "{fields:?}");
        assert!(fields.contains(&"target_options"), "{fields:?}");
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("mapping_rules.rules[0]")),
            "{fields:?}"
        );
        assert!(fields.contains(&"validation_rules"), "{fields:?}");
    }

    #[test]
    fn apply_keeps_going_and_transform_stops_at_the_first_problem() {
        let rules = json!({"rules": [
            {"target": "id", "source": "id"},
            {"target": "n", "source": "n", "type": "number"},
        ]});
        let schema = json!({"output": {"type": "object", "required": ["id", "n"]}});
        let c = compile(&Parts {
            target_format: Some("JSON"),
            ..parts(&rules, Some(&schema))
        })
        .unwrap();
        let a = c.apply(
            Input::Text(r#"{"id": "L1", "n": "many"}"#),
            Limits::default(),
            true,
        );
        assert_eq!(
            a.tree,
            Some(json!({"id": "L1"})),
            "the rule that worked wrote"
        );
        assert!(a.text.is_none());
        let stages: Vec<Stage> = a.errors.iter().map(|(s, _)| *s).collect();
        assert_eq!(stages, vec![Stage::Mapping, Stage::Output]);
        let e = c
            .transform(
                Input::Tree(&json!({"id": "L1", "n": "many"})),
                Limits::default(),
            )
            .unwrap_err();
        assert!(e.message.starts_with("mapping stage:"), "{e}");
        assert!(e.message.ends_with("(and 1 more problems)"), "{e}");
        let ok = c
            .transform(
                Input::Tree(&json!({"id": "L1", "n": "2.5"})),
                Limits::default(),
            )
            .unwrap();
        assert_eq!(ok.tree, json!({"id": "L1", "n": 2.5}));
        assert_eq!(serde_json::from_str::<Value>(&ok.text).unwrap(), ok.tree);
    }

    #[test]
    fn unreadable_text_is_a_read_problem_with_its_location() {
        let rules = json!({"rules": [{"target": "a", "source": "a"}]});
        let c = compile(&parts(&rules, None)).unwrap();
        let a = c.apply(Input::Text("{\n  \"a\": }"), Limits::default(), false);
        assert!(a.tree.is_none());
        let (stage, e) = &a.errors[0];
        assert_eq!(*stage, Stage::Read);
        assert_eq!(e.location.line, Some(2));
        let e = c
            .transform(Input::Text("<x/>"), Limits::default())
            .unwrap_err();
        assert!(e.message.starts_with("the input is not valid JSON"), "{e}");
        assert_eq!(c.output_media_type(), "application/xml");
    }
}

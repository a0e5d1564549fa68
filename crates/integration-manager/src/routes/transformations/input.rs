//! Checks of a template body and of rules given to preview and validate:
//! formats known, options that fit their format, mapping rules that compile
//! (each error at its rule path) and validation rules that compile as JSON
//! Schema. Every problem is collected (one 422 listing them all).

use super::body::{InlineRules, TemplateInput};
use crate::routes::patch::FieldErrors;
use hub_storage::transformations::Template;
use hub_transform::TransformError;
use hub_transform::codec::{Format, FormatOptions};
use hub_transform::mapping::{Program, compile};
use serde_json::Value;

/// Longest code.
const MAX_CODE: usize = 50;
/// Longest name.
const MAX_NAME: usize = 200;
/// Longest category.
const MAX_CATEGORY: usize = 50;

/// Rules ready to run: formats with their options, the compiled program and
/// the JSON Schemas of input and output.
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
    pub input_schema: Option<Value>,
    /// Schema the output tree must pass.
    pub output_schema: Option<Value>,
}

/// The raw parts of a rule set, from a template or a request.
pub struct Parts<'a> {
    /// Input format name.
    pub source_format: Option<&'a str>,
    /// Output format name.
    pub target_format: Option<&'a str>,
    /// Input options.
    pub source_options: Option<&'a Value>,
    /// Output options.
    pub target_options: Option<&'a Value>,
    /// Mapping rules.
    pub mapping_rules: Option<&'a Value>,
    /// Validation rules.
    pub validation_rules: Option<&'a Value>,
}

impl<'a> Parts<'a> {
    /// The parts of a stored template.
    pub fn of(t: &'a Template) -> Self {
        Self {
            source_format: Some(&t.source_format),
            target_format: Some(&t.target_format),
            source_options: t.source_options.as_ref(),
            target_options: t.target_options.as_ref(),
            mapping_rules: Some(&t.mapping_rules),
            validation_rules: t.validation_rules.as_ref(),
        }
    }

    /// The parts given inline.
    pub fn inline(r: &'a InlineRules) -> Self {
        Self {
            source_format: r.source_format.as_deref(),
            target_format: r.target_format.as_deref(),
            source_options: r.source_options.as_ref(),
            target_options: r.target_options.as_ref(),
            mapping_rules: r.mapping_rules.as_ref(),
            validation_rules: r.validation_rules.as_ref(),
        }
    }
}

/// The field name of an error at `location.path` under `field`
/// (`mapping_rules.rules[3].source`).
pub fn field_of(field: &str, e: &TransformError) -> String {
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

/// The input and output schemas of `validation_rules`: `{"input": …,
/// "output": …}` (either may be left out), or one schema for the output.
pub fn schemas(rules: Option<&Value>) -> (Option<Value>, Option<Value>) {
    match rules {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(m))
            if !m.is_empty() && m.keys().all(|k| k == "input" || k == "output") =>
        {
            (m.get("input").cloned(), m.get("output").cloned())
        }
        Some(v) => (None, Some(v.clone())),
    }
}

fn format(errs: &mut FieldErrors, field: &str, name: Option<&str>) -> Option<Format> {
    match name {
        None => {
            errs.push(field, "required: JSON, XML, CSV or X12");
            None
        }
        Some(n) => errs.check(field, n.parse::<Format>().map_err(|e| e.message)),
    }
}

fn options(
    errs: &mut FieldErrors,
    field: &str,
    format: Option<Format>,
    v: Option<&Value>,
) -> Option<FormatOptions> {
    let format = format?;
    errs.check(
        field,
        FormatOptions::from_value(format, v).map_err(|e| e.message),
    )
}

/// Checks `parts`, recording every problem in `errs`; the compiled rules
/// when there is none.
pub fn compile_parts(parts: &Parts<'_>, errs: &mut FieldErrors) -> Option<Compiled> {
    let sf = format(errs, "source_format", parts.source_format);
    let tf = format(errs, "target_format", parts.target_format);
    let so = options(errs, "source_options", sf, parts.source_options);
    let to = options(errs, "target_options", tf, parts.target_options);
    let program = match parts.mapping_rules {
        None => {
            errs.push("mapping_rules", "required: {\"rules\": [...]}");
            None
        }
        Some(rules) => match compile(rules) {
            Ok(p) => Some(p),
            Err(all) => {
                for e in &all {
                    errs.push(field_of("mapping_rules", e), message_of(e));
                }
                None
            }
        },
    };
    let (input_schema, output_schema) = schemas(parts.validation_rules);
    for (which, schema) in [("input", &input_schema), ("output", &output_schema)] {
        let Some(schema) = schema else { continue };
        for e in hub_transform::validate::check(schema, &Value::Null) {
            if e.code == "invalid_schema" {
                errs.push("validation_rules", format!("{which} schema: {}", e.message));
            }
        }
    }
    Some(Compiled {
        source_format: sf?,
        target_format: tf?,
        source_options: so?,
        target_options: to?,
        program: program?,
        input_schema,
        output_schema,
    })
}

/// `text` of at most `max` characters, or an error for `field`.
fn bounded(errs: &mut FieldErrors, field: &str, text: &str, max: usize) {
    if text.trim().is_empty() {
        errs.push(field, "must not be empty");
    } else if text.chars().count() > max {
        errs.push(field, format!("at most {max} characters"));
    }
}

/// The template a create (`current` `None`) or a new version (`current`, the
/// latest version) would store, checked whole. The id, tenant, version and
/// bookkeeping are the caller's.
pub fn template(
    input: TemplateInput,
    current: Option<&Template>,
) -> Result<Template, super::ApiError> {
    let mut errs = FieldErrors::default();
    let mut t = match current {
        Some(c) => c.clone(),
        None => blank(),
    };
    if let Some(code) = input.code.value() {
        match current {
            Some(c) if c.code != code => errs.push("code", "cannot change; create a new template"),
            Some(_) => {}
            None => {
                let ok = code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !ok {
                    errs.push("code", "letters, digits, `_`, `-` and `.` only");
                }
                bounded(&mut errs, "code", &code, MAX_CODE);
                t.code = code;
            }
        }
    } else if current.is_none() {
        errs.push("code", "required");
    }
    if let Some(name) = input.name.value() {
        bounded(&mut errs, "name", &name, MAX_NAME);
        t.name = name;
    } else if current.is_none() {
        errs.push("name", "required");
    }
    if let Some(d) = input.description.value() {
        t.description = Some(d).filter(|d| !d.is_empty());
    }
    if let Some(c) = input.category.value() {
        if c.chars().count() > MAX_CATEGORY {
            errs.push("category", format!("at most {MAX_CATEGORY} characters"));
        }
        t.category = Some(c).filter(|c| !c.is_empty());
    }
    let source_format = input
        .source_format
        .value()
        .or(current.map(|c| c.source_format.clone()));
    let target_format = input
        .target_format
        .value()
        .or(current.map(|c| c.target_format.clone()));
    if let Some(v) = input.source_options.value() {
        t.source_options = Some(v);
    }
    if let Some(v) = input.target_options.value() {
        t.target_options = Some(v);
    }
    if let Some(v) = input.mapping_rules.value() {
        t.mapping_rules = v;
    }
    if let Some(v) = input.validation_rules.value() {
        t.validation_rules = Some(v);
    }
    let parts = Parts {
        source_format: source_format.as_deref(),
        target_format: target_format.as_deref(),
        source_options: t.source_options.as_ref(),
        target_options: t.target_options.as_ref(),
        mapping_rules: (current.is_some() || !t.mapping_rules.is_null())
            .then_some(&t.mapping_rules),
        validation_rules: t.validation_rules.as_ref(),
    };
    let compiled = compile_parts(&parts, &mut errs);
    if let Some(c) = compiled {
        t.source_format = c.source_format.as_str().to_owned();
        t.target_format = c.target_format.as_str().to_owned();
    }
    errs.or_invalid(t)
}

/// A template with nothing set.
fn blank() -> Template {
    let now = chrono::Utc::now();
    Template {
        id: uuid::Uuid::nil(),
        tenant_id: None,
        code: String::new(),
        name: String::new(),
        description: None,
        source_format: String::new(),
        target_format: String::new(),
        source_options: None,
        target_options: None,
        mapping_rules: Value::Null,
        validation_rules: None,
        is_system: false,
        category: None,
        version: 1,
        is_active: true,
        created_at: now,
        updated_at: now,
        created_by_key: None,
    }
}

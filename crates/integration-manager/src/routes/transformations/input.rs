//! Checks of a template body and of rules given to preview and validate:
//! formats known, options that fit their format, mapping rules that compile
//! (each error at its rule path) and validation rules that compile as JSON
//! Schema. Every problem is collected (one 422 listing them all).

use super::body::{InlineRules, TemplateInput};
use crate::routes::patch::FieldErrors;
use hub_storage::transformations::Template;
use hub_transform::pipeline::{self, Compiled, Parts};
use serde_json::Value;

/// Longest code.
const MAX_CODE: usize = 50;
/// Longest name.
const MAX_NAME: usize = 200;
/// Longest category.
const MAX_CATEGORY: usize = 50;

/// The parts of a stored template.
pub fn parts_of(t: &Template) -> Parts<'_> {
    Parts {
        source_format: Some(&t.source_format),
        target_format: Some(&t.target_format),
        source_options: t.source_options.as_ref(),
        target_options: t.target_options.as_ref(),
        mapping_rules: Some(&t.mapping_rules),
        validation_rules: t.validation_rules.as_ref(),
    }
}

/// The parts given inline.
pub fn parts_inline(r: &InlineRules) -> Parts<'_> {
    Parts {
        source_format: r.source_format.as_deref(),
        target_format: r.target_format.as_deref(),
        source_options: r.source_options.as_ref(),
        target_options: r.target_options.as_ref(),
        mapping_rules: r.mapping_rules.as_ref(),
        validation_rules: r.validation_rules.as_ref(),
    }
}

/// Checks `parts`, recording every problem in `errs`; the compiled rules
/// when there is none.
pub fn compile_parts(parts: &Parts<'_>, errs: &mut FieldErrors) -> Option<Compiled> {
    match pipeline::compile(parts) {
        Ok(c) => Some(c),
        Err(problems) => {
            for p in problems {
                errs.push(p.field, p.message);
            }
            None
        }
    }
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
    if let Some(c) = compile_parts(&parts, &mut errs) {
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

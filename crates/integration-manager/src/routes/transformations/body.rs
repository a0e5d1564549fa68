//! Request and response types of the transformation template routes.
//! Templates are shown as stored ([`Template`]).

use crate::routes::list::Listed;
use crate::routes::patch::Patch;
use hub_storage::transformations::Template;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

impl Listed for Template {
    fn id(&self) -> Uuid {
        self.id
    }
}

/// A template to create, or the changes of a new version (`PUT`: absent or
/// `null` fields keep the current version's value).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Stable code (letters, digits, `_`, `-`, `.`; at most 50), unique among
    /// the tenant's templates. Create only.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub code: Patch<String>,
    /// Display name (at most 200 characters). Required to create.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    /// Free text.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Patch<String>,
    /// `JSON`, `XML`, `CSV` or `X12` (any case). Required to create.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub source_format: Patch<String>,
    /// `JSON`, `XML`, `CSV` or `X12` (any case). Required to create.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub target_format: Patch<String>,
    /// Options of the input format (CSV: `delimiter`, `header`, `columns`, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source_options: Patch<Value>,
    /// Options of the output format (JSON: `pretty`; XML: `root`, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub target_options: Patch<Value>,
    /// Mapping rules (`docs/transformations.md`). Required to create.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub mapping_rules: Patch<Value>,
    /// JSON Schema of the output, or `{"input": schema, "output": schema}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub validation_rules: Patch<Value>,
    /// `LOAD`, `INVOICE`, `CRM`, … (at most 50 characters).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub category: Patch<String>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateFilter {
    /// Category (exact).
    pub category: Option<String>,
    /// Input format (any case).
    pub source_format: Option<String>,
    /// Output format (any case).
    pub target_format: Option<String>,
    /// Only system templates, or only the tenant's.
    pub is_system: Option<bool>,
}

/// Which version to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A version of the same template (default: the version `id` names).
    pub version: Option<i32>,
}

/// Rules and formats given inline, instead of a template.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct InlineRules {
    /// Input format.
    pub source_format: Option<String>,
    /// Output format.
    pub target_format: Option<String>,
    /// Options of the input format.
    #[schema(value_type = Option<Object>)]
    pub source_options: Option<Value>,
    /// Options of the output format.
    #[schema(value_type = Option<Object>)]
    pub target_options: Option<Value>,
    /// Mapping rules.
    #[schema(value_type = Option<Object>)]
    pub mapping_rules: Option<Value>,
    /// JSON Schema of the output, or `{"input": …, "output": …}`.
    #[schema(value_type = Option<Object>)]
    pub validation_rules: Option<Value>,
}

/// A preview request: a template (`template_id`, optionally `version`) or
/// inline rules, and a sample input.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewInput {
    /// A template the tenant sees (its own or a system one).
    pub template_id: Option<Uuid>,
    /// A version of that template (default: the one `template_id` names).
    pub version: Option<i32>,
    /// Inline rules, when no `template_id` is given.
    #[serde(flatten)]
    #[schema(inline)]
    pub inline: InlineRules,
    /// The sample input, as text in the source format.
    pub input: String,
}

/// A validate request: a template or inline rules, and an optional sample.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ValidateInput {
    /// A template the tenant sees.
    pub template_id: Option<Uuid>,
    /// A version of that template.
    pub version: Option<i32>,
    /// Inline rules, when no `template_id` is given.
    #[serde(flatten)]
    #[schema(inline)]
    pub inline: InlineRules,
    /// An optional sample input, as text in the source format.
    pub input: Option<String>,
}

/// One problem found by preview or validate.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issue {
    /// Stable code (`source_missing`, `schema_violation`, `source_not_found`, …).
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// Where: `line`, `column`, `segment`, `segment_id`, `element`, `path`.
    #[schema(value_type = Object)]
    pub location: Value,
    /// What it concerns: `input`, `mapping_rules`, `mapping`, `validation_rules`, `output`.
    pub stage: String,
}

/// What a preview produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResult {
    /// The output in the target format; `null` when a rule failed or the
    /// output could not be written.
    pub output: Option<String>,
    /// The output tree (JSON). When rules failed it is partial: what the
    /// rules that worked wrote.
    #[schema(value_type = Object)]
    pub output_tree: Option<Value>,
    /// One step per rule: what it read and wrote.
    #[schema(value_type = Vec<Object>)]
    pub trace: Value,
    /// What did not stop the run (an optional source absent, …).
    pub warnings: Vec<Issue>,
    /// Mapping and validation failures, each with its location.
    pub errors: Vec<Issue>,
}

/// What validate found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateResult {
    /// No problem found.
    pub valid: bool,
    /// Every problem, with its location.
    pub problems: Vec<Issue>,
}

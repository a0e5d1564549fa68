//! Transformation templates (issue 28): the tenant's templates and the
//! system ones every tenant sees (read-only, copyable), their versions
//! (`PUT` adds one and keeps the old), and preview and validate of rules
//! (a template's or inline) on a sample input, with the `hub-transform`
//! engine.

pub mod body;
pub mod input;

use super::list::{ListParams, ListQuery, upper};
use super::patch::FieldErrors;
use super::{Call, begin, commit, emit};
use actix_web::{HttpResponse, web};
use body::{
    Issue, PreviewInput, PreviewResult, TemplateFilter, TemplateInput, ValidateInput,
    ValidateResult, VersionQuery,
};
use hub_platform::auth::Tenant;
use hub_platform::error::{ApiError, ErrorCode, Problem};
use hub_platform::server::Context;
use hub_storage::StorageError;
use hub_storage::transformations::{self as store, Template};
use hub_transform::codec::{self, Format};
use hub_transform::error::Limits;
use hub_transform::pipeline::{Applied, Compiled, Input, Parts, Stage};
use hub_transform::{TransformError, mapping};
use input::{compile_parts, parts_inline, parts_of};
use serde_json::{Value, json};
use uuid::Uuid;

/// What a 404 calls a template.
const WHAT: &str = "transformation template";

/// A template the tenant sees (its own or a system one): version `id`, or
/// version `version` of the same template; a 404 otherwise.
async fn visible(
    ctx: &Context,
    t: &Tenant,
    id: Uuid,
    version: Option<i32>,
) -> Result<Template, ApiError> {
    let row = match version {
        Some(v) => store::get_version(&ctx.pool, t.id, id, v).await?,
        None => store::get(&ctx.pool, t.id, id).await?,
    };
    row.ok_or_else(|| ApiError::not_found(WHAT))
}

/// The 409 for a change to a system template.
fn read_only(id: Uuid) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "system templates are read-only; copy it with POST /api/v1/transformations/{id}/copy and change the copy"
        ),
    )
}

/// A clash on the tenant's template codes as a 409 naming the code.
fn code_taken(code: &str) -> impl Fn(StorageError) -> ApiError + '_ {
    move |e| match e {
        StorageError::Conflict { .. } => ApiError::new(
            ErrorCode::Conflict,
            format!("a template with code {code:?} exists; change it with PUT or use another code"),
        ),
        other => other.into(),
    }
}

/// Stores `row` as a new version 1 of the tenant's template and answers 201.
async fn insert_new(
    ctx: &Context,
    t: &Tenant,
    mut row: Template,
) -> Result<HttpResponse, ApiError> {
    row.id = Uuid::now_v7();
    row.tenant_id = Some(t.id.0);
    row.is_system = false;
    row.version = 1;
    row.is_active = true;
    row.created_by_key = Some(t.api_key_id.0);
    let mut tx = begin(ctx).await?;
    store::insert(&mut tx, &row)
        .await
        .map_err(code_taken(&row.code))?;
    let data =
        json!({"id": row.id, "code": row.code, "version": 1, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "transformation.created", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::Created().json(visible(ctx, t, row.id, None).await?))
}

/// Creates a template (version 1). Formats must be known, options must fit
/// their format, `mapping_rules` must compile (each error is a field error
/// at its rule path, `mapping_rules.rules[3].source`) and `validation_rules`
/// must compile as JSON Schema.
#[utoipa::path(post, path = "/api/v1/transformations", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    request_body = TemplateInput,
    responses((status = 201, body = Template), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    Call { t, ctx }: Call,
    input: web::Json<TemplateInput>,
) -> Result<HttpResponse, ApiError> {
    let row = input::template(input.into_inner(), None)?;
    insert_new(&ctx, &t, row).await
}

/// The active templates the tenant sees: its own and the system ones.
#[utoipa::path(get, path = "/api/v1/transformations", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    params(TemplateFilter, ListParams), responses((status = 200, description = "`{data: [Template], next_cursor}`")))]
pub async fn list(
    Call { t, ctx }: Call,
    ListQuery { filter: q, paging }: ListQuery<TemplateFilter>,
) -> Result<HttpResponse, ApiError> {
    let filter = store::Filter {
        category: q.category,
        source_format: upper(&q.source_format),
        target_format: upper(&q.target_format),
        is_system: q.is_system,
        after: paging.cursor,
    };
    let rows = store::list(&ctx.pool, t.id, &filter, paging.limit).await?;
    Ok(HttpResponse::Ok().json(paging.page::<_, Template>(rows)))
}

/// One version of a template: the one `id` names, or `?version=N` of the
/// same template.
#[utoipa::path(get, path = "/api/v1/transformations/{id}", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path), VersionQuery),
    responses((status = 200, body = Template), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    q: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible(&ctx, &t, *id, q.version).await?))
}

/// Makes a new version of a template (absent fields keep the latest
/// version's values); the new version is active, the previous ones are kept
/// inactive. System templates are read-only (409): copy them first.
#[utoipa::path(put, path = "/api/v1/transformations/{id}", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body = TemplateInput,
    responses((status = 200, body = Template), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    input: web::Json<TemplateInput>,
) -> Result<HttpResponse, ApiError> {
    let named = visible(&ctx, &t, *id, None).await?;
    if named.is_system {
        return Err(read_only(*id));
    }
    let mut tx = begin(&ctx).await?;
    let latest = store::latest_for_update(&mut tx, t.id, &named.code)
        .await?
        .ok_or_else(|| ApiError::not_found(WHAT))?;
    let mut row = input::template(input.into_inner(), Some(&latest))?;
    row.id = Uuid::now_v7();
    row.version = latest.version + 1;
    row.is_active = true;
    row.created_by_key = Some(t.api_key_id.0);
    store::deactivate(&mut tx, Some(t.id.0), &row.code).await?;
    store::insert(&mut tx, &row)
        .await
        .map_err(code_taken(&row.code))?;
    let data = json!({"id": row.id, "code": row.code, "version": row.version, "previous_id": latest.id, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "transformation.updated", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::Ok().json(visible(&ctx, &t, row.id, None).await?))
}

/// Deletes a template with all its versions. System templates are
/// read-only (409), and so is a template an inbound endpoint or a
/// subscription references (409 naming them in `used_by`).
#[utoipa::path(delete, path = "/api/v1/transformations/{id}", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(Call { t, ctx }: Call, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let named = visible(&ctx, &t, *id, None).await?;
    if named.is_system {
        return Err(read_only(*id));
    }
    let mut tx = begin(&ctx).await?;
    if !store::delete(&mut tx, t.id, *id).await? {
        return Err(ApiError::not_found(WHAT));
    }
    // Checked after the delete has locked the versions, so a reference
    // committed meanwhile is seen.
    let users = store::users(&mut tx, t.id, *id, 20).await?;
    if !users.is_empty() {
        let named: Vec<String> = users
            .iter()
            .map(|(kind, id)| format!("{kind} {id}"))
            .collect();
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the template is in use by {}; change their transform_template first",
                named.join(", ")
            ),
        )
        .with_extension(
            "used_by",
            json!(
                users
                    .iter()
                    .map(|(kind, id)| json!({"kind": kind, "id": id}))
                    .collect::<Vec<_>>()
            ),
        ));
    }
    let data = json!({"id": *id, "code": named.code, "actor_api_key_id": t.api_key_id});
    emit(&mut tx, "transformation.deleted", t.id, data).await?;
    commit(tx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Copies a template the tenant sees (a system one, or its own) into a new
/// template of the tenant, version 1. The body may set any field (`code`
/// defaults to the original's, which clashes when copying the tenant's own).
#[utoipa::path(post, path = "/api/v1/transformations/{id}/copy", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<TemplateInput>, description = "Optional: fields to change in the copy"),
    responses((status = 201, body = Template), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn copy(
    Call { t, ctx }: Call,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut input: TemplateInput = super::optional_json(&body)?;
    let source = visible(&ctx, &t, *id, None).await?;
    let code = input
        .code
        .get()
        .cloned()
        .unwrap_or_else(|| source.code.clone());
    input.code = super::patch::Patch::Absent;
    let mut row = input::template(input, Some(&source))?;
    row.code = code;
    insert_new(&ctx, &t, row).await
}

/// The template a preview or validate names, if it names one (else its
/// rules are inline).
async fn rules_of(
    ctx: &Context,
    t: &Tenant,
    template_id: Option<Uuid>,
    version: Option<i32>,
    inline: &body::InlineRules,
) -> Result<Option<Template>, ApiError> {
    let has_inline = inline.source_format.is_some()
        || inline.target_format.is_some()
        || inline.source_options.is_some()
        || inline.target_options.is_some()
        || inline.mapping_rules.is_some()
        || inline.validation_rules.is_some();
    if template_id.is_some() && has_inline {
        let mut errs = FieldErrors::default();
        errs.push(
            "template_id",
            "give either template_id (and version) or inline rules and formats, not both",
        );
        return errs.or_invalid(None);
    }
    match template_id {
        Some(id) => Ok(Some(visible(ctx, t, id, version).await?)),
        None => Ok(None),
    }
}

/// An engine error as an issue of `stage`.
fn issue(stage: &str, e: &TransformError) -> Issue {
    Issue {
        code: e.code.to_owned(),
        message: e.to_string(),
        location: serde_json::to_value(&e.location).unwrap_or(Value::Null),
        stage: stage.to_owned(),
    }
}

/// The 422 for an input that cannot be read, with its location.
fn unreadable(format: Format, e: &TransformError) -> ApiError {
    let mut errs = FieldErrors::default();
    errs.push("input", format!("not valid {format}: {e}"));
    let location = serde_json::to_value(&e.location).unwrap_or(Value::Null);
    match errs.or_invalid(()) {
        Err(api) => api.with_extension("location", location),
        Ok(()) => ApiError::internal("no error recorded"),
    }
}

/// What a run of the pipeline shows: the output (partial when rules
/// failed), the trace, warnings and errors with their stage and location.
fn shown(applied: Applied) -> PreviewResult {
    PreviewResult {
        output: applied.text,
        output_tree: applied.tree,
        trace: serde_json::to_value(&applied.trace).unwrap_or(Value::Null),
        warnings: applied
            .warnings
            .iter()
            .map(|e| issue("mapping", e))
            .collect(),
        errors: applied
            .errors
            .iter()
            .map(|(stage, e)| issue(stage.as_str(), e))
            .collect(),
    }
}

/// Runs rules (a template's, or inline) on a sample input: reads it with the
/// source format's codec, maps it with a per-rule trace, checks the input and
/// output schemas and writes the output in the target format.
///
/// Answers: **422** when the rules are not valid (field errors at their
/// rule path, as on create) or the input cannot be read in the source format
/// (field error `input`, its location — line and column, or X12 segment and
/// element, or CSV line — in the problem's `location` member); **200** with
/// `errors` (each with its location and stage: `input` schema, `mapping`,
/// `output` schema or writing) when the input was read but mapping or
/// validation failed. When rules fail, `output_tree` is what the other
/// rules wrote (with their trace) and `output` is `null`.
#[utoipa::path(post, path = "/api/v1/transformations/preview", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    request_body = PreviewInput,
    responses((status = 200, body = PreviewResult), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn preview(
    Call { t, ctx }: Call,
    body: web::Json<PreviewInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let stored = rules_of(&ctx, &t, body.template_id, body.version, &body.inline).await?;
    let parts = stored
        .as_ref()
        .map_or_else(|| parts_inline(&body.inline), parts_of);
    let mut errs = FieldErrors::default();
    let compiled = compile_parts(&parts, &mut errs);
    let c = errs
        .or_invalid(compiled)?
        .ok_or_else(|| ApiError::internal("rules without errors did not compile"))?;
    let applied = c.apply(Input::Text(&body.input), Limits::default(), true);
    if let Some((Stage::Read, e)) = applied.errors.first() {
        return Err(unreadable(c.source_format, e));
    }
    Ok(HttpResponse::Ok().json(shown(applied)))
}

/// Checks rules (a template's, or inline): well formed, and each rule's
/// declared `type` accepted by the output schema at its target; with a
/// sample `input`, also that the sample can be read, that every source path of the rules exists in it,
/// that the mapping runs and that the output passes the validation schema.
/// Always 200 with the problems found (404 for an unknown template).
#[utoipa::path(post, path = "/api/v1/transformations/validate", tag = "transformations", security(("api_key" = [], "tenant" = [])),
    request_body = ValidateInput,
    responses((status = 200, body = ValidateResult), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn validate(
    Call { t, ctx }: Call,
    body: web::Json<ValidateInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let stored = rules_of(&ctx, &t, body.template_id, body.version, &body.inline).await?;
    let parts = stored
        .as_ref()
        .map_or_else(|| parts_inline(&body.inline), parts_of);
    Ok(HttpResponse::Ok().json(check(&parts, body.input.as_deref())))
}

/// Every problem of `parts`, and of running them on `sample`.
fn check(parts: &Parts<'_>, sample: Option<&str>) -> ValidateResult {
    let mut errs = FieldErrors::default();
    let compiled = compile_parts(parts, &mut errs);
    let mut problems: Vec<Issue> = match errs.or_invalid(()) {
        Ok(()) => Vec::new(),
        Err(api) => api
            .errors
            .into_iter()
            .map(|f| Issue {
                code: "invalid_rules".into(),
                stage: f
                    .field
                    .split(['.', '['])
                    .next()
                    .unwrap_or("rules")
                    .to_owned(),
                location: json!({"path": f.field}),
                message: f.message,
            })
            .collect(),
    };
    if let Some(c) = &compiled {
        problems.extend(type_mismatches(c));
    }
    if let (Some(c), Some(text)) = (compiled, sample) {
        match codec::read(c.source_format, text, &c.source_options, Limits::default()) {
            Err(e) => problems.push(issue("input", &e)),
            Ok(tree) => {
                let missing = mapping::check_sources(&c.program, &tree);
                problems.extend(missing.iter().map(|e| issue("mapping_rules", e)));
                let applied = c.apply(Input::Tree(&tree), Limits::default(), false);
                problems.extend(shown(applied).errors);
            }
        }
    }
    ValidateResult {
        valid: problems.is_empty(),
        problems,
    }
}

/// A `type_mismatch` problem for each rule whose declared `type` the output
/// schema does not accept at its target.
fn type_mismatches(c: &Compiled) -> Vec<Issue> {
    let Some(schema) = &c.output_schema_value else {
        return Vec::new();
    };
    mapping::target_types(&c.program)
        .into_iter()
        .filter_map(|(target, ty)| {
            let allowed = schema_types(schema_at(schema, &target)?);
            let fits = allowed.is_empty()
                || allowed.contains(&ty)
                || (ty == "integer" && allowed.contains(&"number"));
            (!fits).then(|| Issue {
                code: "type_mismatch".into(),
                message: format!(
                    "the rules write {target} as {ty}, the output schema wants {}",
                    allowed.join(" or ")
                ),
                location: json!({"path": target}),
                stage: "validation_rules".into(),
            })
        })
        .collect()
}

/// The subschema of `schema` at a target path (`lines[].amount`,
/// `customer.name`), following `properties` and `items`.
fn schema_at<'a>(schema: &'a Value, target: &str) -> Option<&'a Value> {
    let mut at = schema;
    for seg in target.split('.') {
        let (name, indexed) = match seg.split_once('[') {
            Some((name, _)) => (name, true),
            None => (seg, false),
        };
        if !name.is_empty() {
            at = at.get("properties")?.get(name)?;
        }
        if indexed {
            at = at.get("items")?;
        }
    }
    Some(at)
}

/// The `type` names a schema allows (empty: any).
fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Which side of the hub runs a template an endpoint or a subscription
/// references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// An inbound endpoint: the template reads the received body (any
    /// format) and must write JSON (the typed event's data).
    Inbound,
    /// An outbound subscription: the template reads the event (JSON) and
    /// writes the delivery's body in any format.
    Outbound,
}

/// Checks a `transform_template` on save: when it references a template
/// (`{"template_id": …, "version": …}`), the template (and the pinned
/// version) exists for the tenant, compiles, and its formats fit `side`.
/// `Ok(Err(message))` is a field error; a field map passes (it has its own
/// check).
pub async fn check_reference(
    templates: &hub_platform::transforms::Templates,
    tenant: hub_domain::TenantId,
    v: &Value,
    side: Side,
) -> Result<Result<(), String>, ApiError> {
    use hub_platform::transforms::{Reference, ResolveError};
    let reference = match Reference::of(v) {
        None => return Ok(Ok(())),
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(r)) => r,
    };
    let t = match templates.get(tenant, reference).await {
        Ok(t) => t,
        Err(ResolveError::Storage(e)) => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let c = &t.compiled;
    Ok(match side {
        Side::Inbound if c.target_format != Format::Json => Err(format!(
            "template {} writes {}; an inbound endpoint's template must write JSON (the event's data)",
            t.code, c.target_format
        )),
        Side::Outbound if c.source_format != Format::Json => Err(format!(
            "template {} reads {}; a subscription's template reads the event, which is JSON",
            t.code, c.source_format
        )),
        _ => Ok(()),
    })
}

/// Stores the shipped system templates (`hub_transform::templates`), adding
/// a version to any whose content changed. Returns how many were written.
pub async fn load_system(pool: &sqlx::PgPool) -> Result<usize, String> {
    let shipped = hub_transform::templates::system().map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let rows: Vec<Template> = shipped
        .into_iter()
        .map(|s| Template {
            id: Uuid::now_v7(),
            tenant_id: None,
            code: s.code,
            name: s.name,
            description: Some(s.description),
            source_format: s.source_format.as_str().to_owned(),
            target_format: s.target_format.as_str().to_owned(),
            source_options: s.source_options,
            target_options: s.target_options,
            mapping_rules: s.mapping_rules,
            validation_rules: s.validation_rules,
            is_system: true,
            category: Some(s.category),
            version: 1,
            is_active: true,
            created_at: now,
            updated_at: now,
            created_by_key: None,
        })
        .collect();
    store::sync_system(pool, &rows)
        .await
        .map_err(|e| format!("storing the system transformation templates: {e}"))
}

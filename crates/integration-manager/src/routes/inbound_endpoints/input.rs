//! An inbound endpoint body, validated for the row it applies to:
//! [`ValidEndpointPatch::parse`] checks every field (all errors collected,
//! in field order) and [`ValidEndpointPatch::apply`] writes the result to
//! the row, recording what changed.

use super::body::EndpointInput;
use crate::inbound::{Inbound, secrets, verifier_of};
use crate::routes::list::status_of;
use crate::routes::patch::{Changes, FieldErrors, Patch};
use crate::routes::transformations::{Side, check_reference};
use hub_domain::TenantId;
use hub_domain::inbound::ip::Cidrs;
use hub_domain::inbound::{
    Encoding, EndpointPath, HandlerType, Scheme, check_filter_entry, transform,
};
use hub_domain::secret::{Keyring, last_four};
use hub_domain::status::EndpointStatus;
use hub_platform::error::ApiError;
use hub_platform::server::Context;
use hub_platform::transforms::Reference;
use hub_storage::webhook_endpoints::{self as store, Endpoint};
use serde_json::{Value, json};
use uuid::Uuid;

/// Whether an endpoint is being created (`endpoint_path` required, a secret
/// generated when none is sent) or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new endpoint.
    Create,
    /// Absent fields are kept.
    Update,
}

/// An endpoint body whose every field is valid for its row.
pub struct ValidEndpointPatch {
    mode: Mode,
    endpoint_path: Option<String>,
    integration_id: Option<Uuid>,
    signature: Signature,
    /// The new signing secret, in plain text (shown once in the answer).
    secret: Option<String>,
    event_types: Option<Value>,
    handler_type: Option<String>,
    transform_template: Option<Option<Value>>,
    target_service: Option<Option<String>>,
    ip_whitelist: Option<Option<Value>>,
    status: Option<EndpointStatus>,
    is_enabled: Option<bool>,
}

/// The verification settings sent.
struct Signature {
    /// A new scheme, and whether its preset header replaces the stored one.
    algorithm: Option<(Scheme, bool)>,
    header: Option<String>,
    encoding: Option<String>,
    prefix: Option<Option<String>>,
    tolerance: Option<i32>,
    /// The scheme once they apply.
    scheme: Scheme,
}

impl ValidEndpointPatch {
    /// Checks `input` against `row` (the stored endpoint, or the new one's
    /// defaults); a 422 lists every invalid field.
    pub async fn parse(
        mut input: EndpointInput,
        row: &Endpoint,
        mode: Mode,
        ctx: &Context,
        tenant: TenantId,
        st: &Inbound,
    ) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        if mode == Mode::Create && !input.endpoint_path.is_set() {
            errors.push("endpoint_path", "is required");
        }
        let endpoint_path = input.endpoint_path.get().and_then(|p| {
            EndpointPath::parse(p)
                .map_err(|e| errors.add(e))
                .ok()
                .map(|p| p.as_str().to_owned())
        });
        let integration_id = match input.integration_id.get().copied() {
            Some(id) if Some(id) != row.integration_id => {
                if store::integration_exists(&ctx.pool, tenant, id).await? {
                    Some(id)
                } else {
                    errors.push("integration_id", "no such integration");
                    None
                }
            }
            _ => None,
        };
        let template = std::mem::take(&mut input.transform_template);
        let transform_template = template.value().and_then(|tpl| {
            let tpl = (tpl != json!({})).then_some(tpl);
            let checked = match tpl.as_ref() {
                Some(t) if Reference::of(t).is_some() => Ok(()),
                Some(t) => transform::validate(t),
                None => Ok(()),
            };
            errors.check("transform_template", checked.map(|()| tpl))
        });
        if let Some(Some(t)) = &transform_template {
            let checked = check_reference(&st.templates, tenant, t, Side::Inbound).await?;
            errors.check("transform_template", checked);
        }
        let old_scheme = verifier_of(row).scheme;
        let signature = check_signature(&input, old_scheme, mode, &mut errors);
        let secret = check_secret(
            input.secret_key,
            signature.scheme,
            old_scheme,
            row,
            mode,
            &st.keyring,
            &mut errors,
        )?;
        let valid = Self {
            mode,
            endpoint_path,
            integration_id,
            signature,
            secret,
            event_types: check_event_types(input.event_types, &mut errors),
            handler_type: input.handler_type.value().and_then(|h| {
                let message = "must be LOAD_STATUS, TRACKING, INVOICE or CUSTOM";
                let parsed = HandlerType::parse(&h).map(|h| h.as_str().to_owned());
                errors.check("handler_type", parsed.ok_or(message))
            }),
            transform_template,
            target_service: input.target_service.value().and_then(|s| {
                let ok = s.len() <= 50
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                let message = "at most 50 characters of a-z, 0-9, '-', '_', '.'";
                let checked = if ok {
                    Ok((!s.is_empty()).then_some(s))
                } else {
                    Err(message)
                };
                errors.check("target_service", checked)
            }),
            ip_whitelist: check_ip_whitelist(input.ip_whitelist, &mut errors),
            status: input
                .status
                .value()
                .and_then(|s| errors.check("status", status_of(&s))),
            is_enabled: input.is_enabled.value(),
        };
        errors.or_invalid(valid)
    }

    /// The new signing secret, if any, in plain text.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// Writes the fields to `row`, sealing the secret with `keyring`;
    /// returns the names of those that changed.
    pub fn apply(self, row: &mut Endpoint, keyring: &Keyring) -> Changes {
        let mut c = Changes::default();
        c.set("endpoint_path", &mut row.endpoint_path, self.endpoint_path);
        c.set(
            "integration_id",
            &mut row.integration_id,
            self.integration_id.map(Some),
        );
        let s = self.signature;
        if let Some((scheme, preset_header)) = s.algorithm {
            row.signature_algorithm = Some(scheme.as_str().to_owned());
            if preset_header {
                row.signature_header = Some(scheme.default_header().to_owned());
            }
            c.push("signature_algorithm");
        }
        c.set(
            "signature_header",
            &mut row.signature_header,
            s.header.map(Some),
        );
        c.set(
            "signature_encoding",
            &mut row.signature_encoding,
            s.encoding,
        );
        c.set("signature_prefix", &mut row.signature_prefix, s.prefix);
        let tolerance = &mut row.timestamp_tolerance_seconds;
        c.set("timestamp_tolerance_seconds", tolerance, s.tolerance);
        if let Some(secret) = &self.secret {
            row.secret_sealed = secrets::seal_current(row.id, secret, keyring);
            row.secret_hint = last_four(secret);
            if self.mode == Mode::Update {
                c.push("secret_key");
            }
        }
        c.set("event_types", &mut row.event_types, self.event_types);
        c.set("handler_type", &mut row.handler_type, self.handler_type);
        c.set(
            "transform_template",
            &mut row.transform_template,
            self.transform_template,
        );
        c.set(
            "target_service",
            &mut row.target_service,
            self.target_service,
        );
        c.set("ip_whitelist", &mut row.ip_whitelist, self.ip_whitelist);
        c.set("status", &mut row.status, self.status);
        c.set("is_enabled", &mut row.is_enabled, self.is_enabled);
        c
    }
}

/// The verification settings: a scheme (on create, Standard Webhooks unless
/// another is sent), its header, and the encoding and prefix that only the
/// generic schemes take.
fn check_signature(
    input: &EndpointInput,
    old_scheme: Scheme,
    mode: Mode,
    errors: &mut FieldErrors,
) -> Signature {
    let default = (mode == Mode::Create).then_some(Scheme::StandardWebhooks.as_str());
    let parsed = match input.signature_algorithm.as_deref().or(default) {
        Some(a) => Scheme::parse(a).or_else(|| {
            let all: Vec<&str> = Scheme::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(
                "signature_algorithm",
                format!("must be one of {}", all.join(", ")),
            );
            None
        }),
        None => None,
    };
    let algorithm = parsed
        .filter(|s| mode == Mode::Create || *s != old_scheme)
        .map(|s| (s, !input.signature_header.is_set()));
    let scheme = parsed.unwrap_or(old_scheme);
    let header = input.signature_header.get().and_then(|h| {
        let ok = !h.is_empty()
            && h.len() <= 100
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let message = "must be a header name of 1 to 100 characters";
        errors.check("signature_header", ok.then(|| h.clone()).ok_or(message))
    });
    let encoding = input.signature_encoding.get().and_then(|e| {
        let parsed = Encoding::parse(e).map(|e| e.as_str().to_owned());
        errors.check("signature_encoding", parsed.ok_or("must be hex or base64"))
    });
    let prefix = input.signature_prefix.get().and_then(|p| {
        let ok = p.len() <= 50;
        let message = "must be at most 50 characters";
        errors.check(
            "signature_prefix",
            ok.then(|| (!p.is_empty()).then(|| p.clone()))
                .ok_or(message),
        )
    });
    if (input.signature_encoding.is_set()
        || input
            .signature_prefix
            .as_deref()
            .is_some_and(|p| !p.is_empty()))
        && !scheme.generic()
    {
        errors.push(
            "signature_encoding",
            "signature_encoding and signature_prefix apply only to hmac-sha256 and hmac-sha1",
        );
    }
    let tolerance = input.timestamp_tolerance_seconds.get().and_then(|v| {
        let ok = (1..=3600).contains(v);
        let message = "must be between 1 and 3600";
        errors.check(
            "timestamp_tolerance_seconds",
            ok.then_some(*v).ok_or(message),
        )
    });
    Signature {
        algorithm,
        header,
        encoding,
        prefix,
        tolerance,
        scheme,
    }
}

/// The signing secret: the one sent (it must fit the scheme), a new one on
/// create; on a change of scheme without one, the stored secret must fit
/// the new scheme.
fn check_secret(
    sent: Patch<String>,
    scheme: Scheme,
    old_scheme: Scheme,
    row: &Endpoint,
    mode: Mode,
    keyring: &Keyring,
    errors: &mut FieldErrors,
) -> Result<Option<String>, ApiError> {
    Ok(match sent.value() {
        Some(s) => errors.check("secret_key", scheme.check_secret(&s).map(|()| s)),
        None if mode == Mode::Create => Some(scheme.generate_secret()),
        None if scheme != old_scheme => {
            let current = secrets::open_current(row, keyring).map_err(ApiError::internal)?;
            if let Err(e) = scheme.check_secret(&current) {
                errors.push(
                    "secret_key",
                    format!(
                        "the current secret does not fit {scheme} ({e}); send a new secret_key too"
                    ),
                );
            }
            None
        }
        None => None,
    })
}

fn check_event_types(types: Patch<Vec<String>>, errors: &mut FieldErrors) -> Option<Value> {
    let types = types.value()?;
    if types.len() > 100 {
        errors.push("event_types", "at most 100 entries");
    }
    for t in &types {
        if let Err(e) = check_filter_entry(t) {
            errors.push("event_types", e);
        }
    }
    Some(json!(types))
}

fn check_ip_whitelist(list: Patch<Vec<String>>, errors: &mut FieldErrors) -> Option<Option<Value>> {
    let list = list.value()?;
    match Cidrs::parse(&list) {
        Ok(c) if list.len() <= 100 => Some((!c.is_empty()).then(|| json!(c.to_strings()))),
        Ok(_) => {
            errors.push("ip_whitelist", "at most 100 entries");
            None
        }
        Err(e) => {
            errors.push("ip_whitelist", e);
            None
        }
    }
}

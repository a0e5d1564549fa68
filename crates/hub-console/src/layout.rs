//! What every page shares: the layout with its navigation to the ten
//! screens, and the empty, loading, error and paging pieces.

use crate::api::Failure;
use crate::assets;
use crate::session::Session;
use actix_web::{HttpRequest, HttpResponse};
use maud::{DOCTYPE, Markup, html};

/// One of the ten screens of the spec.
pub struct Screen {
    /// Its path below `/console/`.
    pub slug: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Whether it is built (others say so plainly).
    pub built: bool,
}

/// The ten screens, in the navigation's order. The Setup Wizard and
/// Integration Details are reached from the Marketplace and the List.
pub static SCREENS: [Screen; 10] = [
    Screen {
        slug: "marketplace",
        title: "Integration Marketplace",
        built: true,
    },
    Screen {
        slug: "setup",
        title: "Integration Setup Wizard",
        built: true,
    },
    Screen {
        slug: "integrations",
        title: "Integration List",
        built: true,
    },
    Screen {
        slug: "integrations/details",
        title: "Integration Details",
        built: true,
    },
    Screen {
        slug: "webhooks",
        title: "Webhook Configuration",
        built: true,
    },
    Screen {
        slug: "deliveries",
        title: "Webhook Deliveries",
        built: true,
    },
    Screen {
        slug: "transformations",
        title: "Transformation Builder",
        built: true,
    },
    Screen {
        slug: "sync-jobs",
        title: "Sync Job History",
        built: true,
    },
    Screen {
        slug: "api-logs",
        title: "API Logs",
        built: true,
    },
    Screen {
        slug: "health",
        title: "Health Dashboard",
        built: true,
    },
];

/// Whether the request comes from htmx (it wants a fragment, not a page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// A whole page: header, navigation (`active` highlighted), `body`.
pub fn page(session: Option<&Session>, title: &str, active: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx's inline indicator styles would break the CSP.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · Integration Hub console" }
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("console.js")) defer {}
            }
            body hx-headers=[session.map(|s| format!(r#"{{"X-CSRF-Token": "{}"}}"#, s.csrf))] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Integration Hub" }
                    @if let Some(s) = session {
                        span.who { "Signed in as " strong { (s.label) } }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="_csrf" value=(s.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some(s) = session {
                    nav aria-label="Screens" {
                        ul {
                            @if s.is_operator() {
                                li { a href="/console/operator" aria-current=[(active == "operator").then_some("page")] { "Tenants and keys" } }
                            } @else {
                                @for sc in &SCREENS {
                                    li {
                                        a href={"/console/" (sc.slug)} aria-current=[(active == sc.slug).then_some("page")] {
                                            (sc.title)
                                            @if !sc.built { " " span.badge { "not built yet" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(markup)
}

/// An HTML answer with the console's security headers; pages are never
/// cached (they show the session's data).
pub fn html_response(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(markup.into_string())
}

/// A fragment for htmx to swap in.
pub fn fragment(markup: Markup) -> HttpResponse {
    html_response(markup)
}

/// The error state: what the API said, and what to do.
pub fn error(f: &Failure) -> Markup {
    html! {
        div.error role="alert" {
            p { strong { "Could not load this: " } (f.message) }
            @if let Some(s) = f.status { p.meta { "HTTP " (s) @if let Some(c) = &f.code { " · " code { (c) } } } }
            @if !f.fields.is_empty() {
                ul { @for (field, msg) in &f.fields { li { code { (field) } ": " (msg) } } }
            }
        }
    }
}

/// The empty state: a sentence and what to do next.
pub fn empty(message: &str, action: Option<(&str, &str)>) -> Markup {
    html! {
        div.empty {
            p { (message) }
            @if let Some((href, label)) = action { p { a.button href=(href) { (label) } } }
        }
    }
}

/// The loading state: a placeholder htmx replaces with `url`'s fragment
/// as soon as the page has loaded.
pub fn loading(url: &str) -> Markup {
    html! {
        div.loading hx-get=(url) hx-trigger="load" hx-swap="outerHTML" aria-busy="true" {
            p { "Loading…" }
        }
    }
}

/// The pager of a cursor-paged list: the first page and the next one.
/// `path` is the list's path and query without `cursor`.
pub fn pager(path: &str, cursor: Option<&str>, next: Option<&str>) -> Markup {
    pager_named(path, "cursor", cursor, next)
}

/// [`pager`] for a page with several lists: each pages with its own
/// query parameter `param`.
pub fn pager_named(path: &str, param: &str, cursor: Option<&str>, next: Option<&str>) -> Markup {
    let sep = if path.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label="Pages" {
            @if cursor.is_some() { a href=(path) { "First page" } }
            @if let Some(n) = next {
                a href={(path) (sep) (param) "=" (crate::api::enc(n))} rel="next" { "Next page" }
            }
        }
    }
}

/// A page only a tenant session can use, shown to the operator.
pub fn tenant_only(session: &Session, title: &str) -> HttpResponse {
    page(
        Some(session),
        title,
        "",
        html! { p { "This screen shows a tenant's data: sign out and sign in with the tenant's id and an API key." } },
    )
}

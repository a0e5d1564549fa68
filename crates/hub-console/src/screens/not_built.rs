//! The screens of the spec that are not built yet: each says so plainly.

use crate::layout::{SCREENS, page};
use crate::session::Session;
use actix_web::{HttpResponse, web};
use maud::html;

/// Registers a page for every screen that is not built.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for screen in SCREENS.iter().filter(|s| !s.built) {
        let slug = screen.slug;
        cfg.route(
            &format!("/console/{slug}"),
            web::get().to(move |s: Session| async move { not_built(s, slug) }),
        );
    }
}

fn not_built(session: Session, slug: &'static str) -> HttpResponse {
    let screen = SCREENS.iter().find(|s| s.slug == slug);
    let title = screen.map_or("Not built", |s| s.title);
    page(
        Some(&session),
        title,
        slug,
        html! {
            div.empty role="status" {
                p { strong { "Not built yet." } " This screen of the console does not exist yet." }
                p { "Its data is available through the API: see " a href="/docs" { "the API reference" } "." }
            }
        },
    )
}

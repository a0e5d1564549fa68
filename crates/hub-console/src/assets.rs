//! The console's static files, embedded in the binary: htmx (vendored from
//! the npm package `htmx.org`, see `assets/htmx-LICENSE`), the style sheet
//! and a small script. URLs carry a hash of the content, so answers are
//! cached for a year; the platform's `Compress` middleware gzips them.

use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// `(name, content type, bytes)` of every asset.
const FILES: [(&str, &str, &[u8]); 3] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/htmx-2.0.11.min.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console.js"),
    ),
];

/// A short hash of all assets, the `v` of their URLs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for (name, _, bytes) in FILES {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    hex::encode(&h.finalize()[..6])
});

/// The URL of asset `name`.
pub fn url(name: &str) -> String {
    format!("/console/assets/{name}?v={}", *VERSION)
}

/// `GET /console/assets/{name}`.
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .insert_header(("ETag", format!("\"{}\"", *VERSION)))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(*bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

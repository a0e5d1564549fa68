//! `/docs`: the browsable API reference, served with no request to any other
//! host. The page is Swagger UI, vendored from the npm package
//! `swagger-ui-dist` (5.36.0, Apache-2.0: `assets/docs/swagger-ui-LICENSE`
//! and `-NOTICE`), gzip-compressed and embedded in the binary; it reads the
//! service's own `/openapi.json`. A Content-Security-Policy forbids every
//! other host, so a future bundle that reaches out fails closed.
//!
//! Updating the bundle: `npm pack swagger-ui-dist@<version>`, then
//! `gzip -9 -n` its `swagger-ui-bundle.js` and `swagger-ui.css` into
//! `assets/docs/` under their versioned names, and change [`FILES`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::io::Read;
use std::sync::LazyLock;

/// The Content-Security-Policy of `/docs` and its assets: this origin only.
/// Swagger UI sets inline styles on elements (hence `'unsafe-inline'` for
/// styles, not scripts) and draws icons as `data:` images.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The page: the stylesheet, the bundle, and the script that starts it.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on the service's own document. `validatorUrl: null`
/// turns off the badge that would ask swagger.io to validate it.
const START: &str = r##"window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"##;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// The bytes as stored: gzip-compressed when `gzipped`.
    bytes: &'static [u8],
    gzipped: bool,
}

/// Every file the page references, by the name in its URL.
const FILES: [Asset; 3] = [
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/docs/swagger-ui-bundle-5.36.0.js.gz"),
        gzipped: true,
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/docs/swagger-ui-5.36.0.css.gz"),
        gzipped: true,
    },
    Asset {
        name: "docs.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: START.as_bytes(),
        gzipped: false,
    },
];

/// The gzipped assets decompressed, for the rare client that does not take
/// gzip (made on first such request, then kept).
static PLAIN: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| {
            if !a.gzipped {
                return a.bytes.to_vec();
            }
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(a.bytes)
                .read_to_end(&mut out)
                .expect("an embedded asset is valid gzip");
            out
        })
        .collect()
});

/// Registers `/docs` and `/docs/assets/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/docs", web::get().to(page))
        .route("/docs/", web::get().to(page))
        .route("/docs/assets/{name}", web::get().to(asset));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(i) = FILES.iter().position(|a| a.name == name.as_str()) else {
        return HttpResponse::NotFound()
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .finish();
    };
    let a = &FILES[i];
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(a.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The URLs carry no version: revalidate after an hour, so an
        // upgraded binary's page does not meet yesterday's bundle for long.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::VARY, "Accept-Encoding"));
    if a.gzipped && accepts_gzip(&req) {
        // Already compressed: the Compress middleware leaves an answer
        // with a Content-Encoding alone.
        answer
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(a.bytes)
    } else {
        answer.body(PLAIN[i].clone())
    }
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

//! The check every service's `/docs` passes: it works with no request to
//! any other host.

use std::io::Read;

/// The values of every `src="…"` and `href="…"` attribute of `html`.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='"] {
        let quote = &attr[attr.len() - 1..];
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find(quote).expect("an attribute value ends");
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// Whether `text` names an `http(s)://` URL (any host: the page must
/// reference its assets by path, on its own origin).
fn absolute_urls(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for scheme in ["http://", "https://", "//"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(scheme) {
            let start = from + at;
            // `//` alone counts only as a protocol-relative URL in an attribute.
            if scheme == "//" && !(start > 0 && matches!(&text[start - 1..start], "\"" | "'")) {
                from = start + 2;
                continue;
            }
            let end = text[start..]
                .find(['"', '\'', ' ', '>', ')', ';'])
                .map_or(text.len(), |e| start + e);
            out.push(&text[start..end]);
            from = end.max(start + scheme.len());
        }
    }
    out
}

/// Asserts that `<base>/docs` is an HTML page referencing no absolute URL,
/// with a Content-Security-Policy allowing no other host, and that every
/// asset it references is served 200 with the right content type, both
/// gzip-compressed (for clients that take gzip) and plain (the same bytes).
pub async fn check_docs_offline(http: &reqwest::Client, base: &str) {
    let r = http.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200, "/docs");
    let headers = r.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "/docs is HTML"
    );
    let csp = headers
        .get("content-security-policy")
        .expect("/docs has a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") || csp.contains("default-src 'self'"),
        "{csp}"
    );
    for directive in csp.split(';') {
        let mut words = directive.split_whitespace();
        let name = words.next().unwrap_or("");
        for source in words {
            assert!(
                matches!(source, "'self'" | "'none'" | "'unsafe-inline'" | "data:"),
                "{name} allows {source}: {csp}"
            );
        }
    }
    let html = r.text().await.unwrap();
    assert_eq!(
        absolute_urls(&html),
        Vec::<&str>::new(),
        "the page references another host"
    );
    let assets = references(&html);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "the page loads its script: {html}"
    );
    for path in assets {
        assert!(path.starts_with('/'), "{path} is a path on this origin");
        let want = if path.ends_with(".js") {
            "text/javascript"
        } else if path.ends_with(".css") {
            "text/css"
        } else {
            panic!("unexpected asset {path}")
        };
        let plain = http
            .get(format!("{base}{path}"))
            .header("accept-encoding", "identity")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert!(
            plain.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(want),
            "{path}: {:?}",
            plain.headers()["content-type"]
        );
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{path} is plain when gzip is not accepted"
        );
        let plain = plain.bytes().await.unwrap();
        assert!(!plain.is_empty(), "{path} has content");
        let gz = http
            .get(format!("{base}{path}"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gz.status(), 200, "{path}");
        let encoding = gz
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = gz.bytes().await.unwrap();
        let body = if encoding.as_deref() == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            body.to_vec()
        };
        assert!(body == plain, "{path}: gzip and plain answers differ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_and_absolute_urls() {
        let html = r#"<link href="/a.css"><script src='https://cdn.example/x.js'></script><img src="//cdn.example/i.png">"#;
        let mut refs = references(html);
        refs.sort();
        assert_eq!(
            refs,
            ["//cdn.example/i.png", "/a.css", "https://cdn.example/x.js"]
        );
        assert_eq!(
            absolute_urls(html),
            ["https://cdn.example/x.js", "//cdn.example/i.png"]
        );
        assert!(absolute_urls(r#"<script src="/docs/assets/x.js"></script>"#).is_empty());
    }
}

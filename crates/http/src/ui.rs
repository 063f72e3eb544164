//! The management web UI, served on the API's port at `/` (as RabbitMQ serves its UI at
//! `/` and the API under `/api`).
//!
//! The UI is plain HTML, CSS and JavaScript modules under `crates/http/ui/`, embedded in
//! the binary with `include_bytes!`: no build step, no third-party code, nothing fetched
//! at run time but the public `/api` endpoints, which the browser calls with the HTTP
//! Basic credentials its login form keeps in `sessionStorage` (RabbitMQ's UI does the
//! same). Nothing served here needs credentials: the files hold no data, and `/api`
//! keeps its own authentication.
//!
//! Caching: every file but the page itself is served under `/static/<version>/…`, where
//! `<version>` is a hash of all embedded files, as `immutable` for a year; the page (at
//! `/` and `/index.html`) names that version and is revalidated on every load (`no-cache`
//! with an `ETag`, so a reload costs a 304). A binary with changed files has a new
//! version, so a browser never mixes old and new files. Every answer has an `ETag` and
//! honours `If-None-Match`. The page links its files relatively, so the UI also works
//! behind a proxy that mounts the port under a path prefix.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        /// Every embedded file, by its path under `ui/`.
        const ASSETS: &[(&str, &[u8])] = &[$(($path, include_bytes!(concat!("../ui/", $path)))),*];
    };
}

assets![
    "index.html",
    "css/app.css",
    "img/logo.svg",
    "js/api.js",
    "js/app.js",
    "js/args.js",
    "js/chart.js",
    "js/dom.js",
    "js/fmt.js",
    "js/forms.js",
    "js/state.js",
    "js/table.js",
    "js/pages/admin.js",
    "js/pages/channels.js",
    "js/pages/connections.js",
    "js/pages/exchanges.js",
    "js/pages/login.js",
    "js/pages/overview.js",
    "js/pages/queues.js",
];

/// The placeholder in `index.html` replaced by the assets' version.
const VERSION_MARK: &str = "__VERSION__";

/// The page's policy: only this origin's files and API, no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Catalog {
    version: String,
    index: Vec<u8>,
    index_etag: String,
    /// (path, body, etag) of every file but the page.
    files: Vec<(&'static str, &'static [u8], String)>,
}

/// 64-bit FNV-1a: stable across builds and Rust releases (unlike `DefaultHasher`).
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", fnv1a(FNV_OFFSET, bytes))
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut h = FNV_OFFSET;
        for (path, body) in ASSETS {
            h = fnv1a(h, path.as_bytes());
            h = fnv1a(h, &[0]);
            h = fnv1a(h, body);
        }
        let version = format!("{h:016x}")[..12].to_string();
        let page = ASSETS
            .iter()
            .find(|(p, _)| *p == "index.html")
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let index = page.replace(VERSION_MARK, &version).into_bytes();
        let index_etag = etag_of(&index);
        let files = ASSETS
            .iter()
            .filter(|(p, _)| *p != "index.html")
            .map(|(p, b)| (*p, *b, etag_of(b)))
            .collect();
        Catalog {
            version,
            index,
            index_etag,
            files,
        }
    })
}

/// The Content-Type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `If-None-Match` names `etag` (a list, weak validators and `*` allowed).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn respond(
    headers: &HeaderMap,
    body: &'static [u8],
    etag: &str,
    content_type: &'static str,
    cache: &'static str,
    page: bool,
) -> Response {
    let status = if matches(headers, etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut r = if status == StatusCode::OK {
        body.into_response()
    } else {
        status.into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    r
}

async fn page(headers: HeaderMap) -> Response {
    let c = catalog();
    respond(
        &headers,
        &c.index,
        &c.index_etag,
        "text/html; charset=utf-8",
        "no-cache",
        true,
    )
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let c = catalog();
    let Some((p, body, etag)) = c.files.iter().find(|(p, _, _)| *p == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not Found",
        )
            .into_response();
    };
    // A page of an older (or newer) binary may still ask for its version: it gets
    // today's file, but not for keeps.
    let cache = if version == c.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(&headers, body, etag, content_type(p), cache, false)
}

/// The UI's routes (no state needed; merged into the API's router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/static/{version}/{*path}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `ui/` is embedded (so adding a file without listing it fails
    /// here rather than in a browser), except notes for developers.
    #[test]
    fn every_ui_file_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("ui dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().to_string_lossy();
                    out.push(rel.replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut files = Vec::new();
        walk(&base, &base, &mut files);
        for f in files.iter().filter(|f| !f.ends_with(".md")) {
            assert!(
                ASSETS.iter().any(|(p, _)| p == f),
                "ui/{f} is not embedded: add it to assets![] in ui.rs"
            );
        }
    }

    /// The page names only embedded files, under the current version.
    #[test]
    fn page_links_resolve() {
        let c = catalog();
        let page = String::from_utf8(c.index.clone()).unwrap();
        assert!(!page.contains(VERSION_MARK));
        let prefix = format!("static/{}/", c.version);
        let mut links = 0;
        for part in page.split(&prefix).skip(1) {
            let path = &part[..part.find('"').unwrap()];
            assert!(
                c.files.iter().any(|(p, _, _)| *p == path),
                "index.html links {path}, which is not embedded"
            );
            links += 1;
        }
        assert!(
            links >= 3,
            "index.html links its stylesheet, icon and script"
        );
    }

    /// Static imports between modules name embedded files.
    #[test]
    fn module_imports_resolve() {
        for (path, body) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(body).unwrap();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(from) = line.split(" from ").nth(1) else {
                    continue;
                };
                let target = from.trim().trim_end_matches(';').trim_matches('\'');
                let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in target.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    ASSETS.iter().any(|(p, _)| *p == resolved),
                    "{path} imports {target} ({resolved}), which is not embedded"
                );
            }
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("img/logo.svg"), "image/svg+xml");
    }

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(matches(&h, "\"b\""));
        assert!(matches(&h, "\"a\""));
        assert!(!matches(&h, "\"c\""));
    }
}

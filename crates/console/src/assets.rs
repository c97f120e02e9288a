//! The console's static files, embedded in the binary and served under
//! `/console/static/…` with a long cache lifetime. Pages link them with
//! `?v=<digest>`, so a new build's files are fetched again.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// htmx, vendored from its npm package (see `static/SOURCE.md`).
pub const HTMX: &[u8] = include_bytes!("../static/htmx.min.js");
/// The console's style sheet.
pub const CSS: &[u8] = include_bytes!("../static/console.css");
/// The console's small script (no inline scripts anywhere).
pub const JS: &[u8] = include_bytes!("../static/console.js");
/// Where htmx came from, with its SHA-256.
#[cfg(test)]
pub const SOURCE_NOTE: &str = include_str!("../static/SOURCE.md");

struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "htmx.min.js",
        bytes: HTMX,
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "console.css",
        bytes: CSS,
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "console.js",
        bytes: JS,
        content_type: "text/javascript; charset=utf-8",
    },
];

/// First 16 hex digits of each asset's SHA-256, for cache busting.
static VERSIONS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            (
                a.name,
                hex::encode(Sha256::digest(a.bytes))[..16].to_owned(),
            )
        })
        .collect()
});

/// `/console/static/<name>?v=<digest>`.
pub fn url(name: &str) -> String {
    let v = VERSIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, v)| v.as_str());
    format!("/console/static/{name}?v={v}")
}

/// `GET /console/static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Nicht gefunden\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htmx_matches_its_source_note() {
        let digest = hex::encode(Sha256::digest(HTMX));
        let noted = SOURCE_NOTE
            .lines()
            .find_map(|l| l.strip_prefix("- SHA-256: `"))
            .and_then(|rest| rest.strip_suffix('`'))
            .expect("SOURCE.md names the SHA-256");
        assert_eq!(digest, noted, "static/htmx.min.js differs from SOURCE.md");
        assert!(SOURCE_NOTE.contains("htmx.org-2."), "tarball URL noted");
        assert!(std::str::from_utf8(HTMX).unwrap().contains("htmx"));
    }

    #[test]
    fn urls_carry_a_content_digest() {
        let u = url("console.css");
        assert!(u.starts_with("/console/static/console.css?v="));
        assert_eq!(u.len(), "/console/static/console.css?v=".len() + 16);
    }
}

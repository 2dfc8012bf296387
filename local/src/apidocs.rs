//! The HTTP API's published contract on the gateway's port: `GET /openapi.json` is
//! api/openapi.json as committed, `GET /docs` a page that renders it (its own HTML and
//! script, nothing fetched from elsewhere).

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};

pub const SPEC_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

const SPEC: &str = include_str!("../../api/openapi.json");
const PAGE: &str = include_str!("apidocs/index.html");

/// The gateway's handler for [`SPEC_PATH`] and [`DOCS_PATH`].
pub fn handler() -> crate::gateway::MountHandler {
    Arc::new(|req, _peer| {
        let answer = respond(req.method(), req.uri().path());
        Box::pin(async move { answer })
    })
}

pub fn respond(method: &Method, path: &str) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = match path.trim_end_matches('/') {
        _ if method != Method::GET && method != Method::HEAD => {
            (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n")
        }
        SPEC_PATH => (StatusCode::OK, "application/json", SPEC),
        DOCS_PATH => (StatusCode::OK, "text/html; charset=utf-8", PAGE),
        _ => (StatusCode::NOT_FOUND, "text/plain", "no such page\n"),
    };
    let body = if method == Method::HEAD { "" } else { body };
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_spec_and_its_page() {
        let spec = respond(&Method::GET, SPEC_PATH);
        assert_eq!(spec.status(), StatusCode::OK);
        let parsed: serde_json::Value = serde_json::from_str(SPEC).unwrap();
        assert_eq!(parsed["openapi"], "3.1.0");
        assert_eq!(respond(&Method::GET, "/docs/").status(), StatusCode::OK);
        assert!(PAGE.contains(SPEC_PATH), "the page loads the spec");
        // Everything the page needs is in it.
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert_eq!(
            respond(&Method::GET, "/docs/x").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&Method::POST, SPEC_PATH).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

//! The service description, published beside the endpoint: `GET <path>?wsdl`
//! (and `GET <path>/XTA.wsdl`) answer the official WSDL
//! (`schemas/xta/XTA.wsdl`) with the three port addresses set to the
//! endpoint and its `schemaLocation`s made absolute; the XSDs are served
//! unchanged from `<path>/<file>.xsd`, where their relative imports resolve.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

use super::Inner;

macro_rules! schema {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../schemas/xta/",
                $name
            )),
        )
    };
}

/// The WSDL as shipped.
const WSDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../schemas/xta/XTA.wsdl"
));

/// The schema documents the WSDL imports (directly or indirectly).
const SCHEMAS: [(&str, &str); 14] = [
    schema!(".xsd"),
    schema!("OSCI2_02.xsd"),
    schema!("OSCI_MessageMetaData_V2.02.xsd"),
    schema!("XTA-Webservice-Datentypen.xsd"),
    schema!("XTA-Webservice-Exceptions.xsd"),
    schema!("XTA-Webservice-Globale-Elemente.xsd"),
    schema!("oasis-200401-wss-wssecurity-secext-1.0.xsd"),
    schema!("oasis-200401-wss-wssecurity-utility-1.0.xsd"),
    schema!("ws-addr.xsd"),
    schema!("ws-policy.xsd"),
    schema!("xenc-schema.xsd"),
    schema!("xml.xsd"),
    schema!("xmldsig-core-schema.xsd"),
    schema!("xoev-basisdatentypen.xsd"),
];

/// The endpoint URL as the client reached it (`X-Forwarded-Proto`/`Host`).
fn endpoint(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let proto = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{proto}://{host}{path}")
}

const XML: &str = "application/xml; charset=utf-8";

fn published_wsdl(inner: &Inner, headers: &HeaderMap) -> Response {
    let url = crate::model::esc(&endpoint(headers, &inner.settings.path)).into_owned();
    let body = WSDL
        .replace("REPLACE_WITH_ACTUAL_URL", &url)
        .replace("schemaLocation=\"", &format!("schemaLocation=\"{url}/"));
    ([(header::CONTENT_TYPE, XML)], body).into_response()
}

/// `GET <path>?wsdl`.
pub(crate) async fn query(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if q.contains_key("wsdl") || q.contains_key("WSDL") {
        published_wsdl(&inner, req.headers())
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "XTA-WS endpoint: POST SOAP 1.2 requests; GET ?wsdl for the service description",
        )
            .into_response()
    }
}

/// `GET <path>/XTA.wsdl` and `GET <path>/<schema>.xsd`.
pub(crate) async fn document(
    State(inner): State<Arc<Inner>>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    if file == "XTA.wsdl" {
        return published_wsdl(&inner, req.headers());
    }
    match SCHEMAS.iter().find(|(name, _)| *name == file) {
        Some((_, text)) => ([(header::CONTENT_TYPE, XML)], *text).into_response(),
        None => (StatusCode::NOT_FOUND, "no such schema document").into_response(),
    }
}

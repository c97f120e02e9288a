//! The OpenAPI document of the JSON API (`GET /api/v1/openapi.json`).
//!
//! The document is written by hand (`crates/server/api/openapi.json`) and
//! held to the code by tests: its paths and methods are exactly the
//! routes of the operations and configuration APIs, and its enumerations
//! are the model's.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../api/openapi.json");

/// `GET /api/v1/openapi.json` (no token needed: it describes, it holds
/// nothing).
pub fn openapi_router() -> Router {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response() }),
    )
}

/// Every (method, path) the API routes, in the document's spelling
/// (`{*path}` is written `{path}`).
pub fn routed() -> std::collections::BTreeSet<(String, String)> {
    let ops = crate::ops::routes().into_iter().map(|(p, m, _)| (p, m));
    let config = crate::config_api::routes()
        .into_iter()
        .map(|(p, m, _)| (p, m));
    let dry_run = crate::dry_run_api::routes()
        .into_iter()
        .map(|(p, m, _)| (p, m));
    let rules = crate::rules_api::routes()
        .into_iter()
        .map(|(p, m, _)| (p, m));
    ops.chain(config)
        .chain(dry_run)
        .chain(rules)
        .flat_map(|(p, ms)| {
            ms.iter()
                .map(move |m| ((*m).to_owned(), p.replace("{*", "{")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn document() -> serde_json::Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    #[test]
    fn the_document_lists_exactly_the_routed_operations() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let routed = routed();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routed but not documented: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented but not routed: {unrouted:?}"
        );
        assert!(routed.len() >= 18, "{routed:?}");
    }

    #[test]
    fn path_parameters_are_declared_and_every_operation_is_unique() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(ids.insert(id.clone()), "operationId {id} twice");
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let in_path: BTreeSet<&str> = path
                    .split('{')
                    .skip(1)
                    .filter_map(|s| s.split('}').next())
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
                assert!(op["responses"].is_object(), "{method} {path}");
            }
        }
    }

    #[test]
    fn the_message_states_are_the_models() {
        let doc = document();
        let listed: Vec<&str> = doc["components"]["schemas"]["MessageState"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let model: Vec<String> = drehscheibe_model::MessageState::ALL
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(listed, model);
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let text = DOCUMENT;
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
    }
}

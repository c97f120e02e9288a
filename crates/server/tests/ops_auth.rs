//! The operations API authenticates with the same bearer parser as the
//! inbox: the scheme name is case-insensitive (RFC 9110 §11.1).
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHub, OPERATOR};

#[tokio::test]
async fn the_ops_api_accepts_the_bearer_scheme_in_any_case() {
    let hub = TestHub::start().await;
    let client = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = client
            .get(hub.url("/api/v1/messages"))
            .header("authorization", format!("{scheme} {OPERATOR}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "scheme {scheme:?}");
    }
    for value in [
        format!("Basic {OPERATOR}"),
        format!("Bearer{OPERATOR}"),
        "Bearer wrong-token".to_owned(),
        "BEARER".to_owned(),
    ] {
        let r = client
            .get(hub.url("/api/v1/messages"))
            .header("authorization", value.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{value:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    hub.shutdown.cancel();
}

//! Protocol targets: XTA 2 (MTOM requests, SOAP envelopes) and
//! FIT-Connect's JOSE (JWE, JWS, JWK, security event tokens).

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey, RsaPublicJwk};
use drehscheibe_fit_connect::set;
use drehscheibe_xta::model::{PartyIdentifier, NS_SOAP12};
use drehscheibe_xta::server::{Account, XtaServer, XtaServerSettings};
use drehscheibe_xta::soap::{parse_envelope, parse_xml};
use tower::ServiceExt;

/// The SOAP 1.2 envelope parser (and the plain XML parser under it).
pub fn soap_envelope(data: &[u8]) {
    let _ = parse_xml(data);
    let _ = parse_envelope(data);
}

const XTA_TOKEN: &str = "fuzz-xta-token-0123456789";

struct Xta {
    router: axum::Router,
    _server: XtaServer,
    _dir: tempfile::TempDir,
}

fn xta() -> Option<&'static Xta> {
    static XTA: OnceLock<Option<Xta>> = OnceLock::new();
    XTA.get_or_init(|| {
        let dir = tempfile::tempdir().ok()?;
        let accounts = vec![Account {
            name: "kommune-a".into(),
            identifier: PartyIdentifier::new("dvdv:01001000", "xoev"),
            tokens: vec![XTA_TOKEN.into()],
            cert_fingerprints: vec![],
        }];
        let mut settings = XtaServerSettings::new("xta-in", dir.path().join("xta"), accounts);
        settings.max_message_bytes = 4 << 20;
        settings.max_soap_bytes = 1 << 20;
        let intake = crate::intake::shared_intake();
        let store: std::sync::Arc<dyn drehscheibe_store::Store> = std::sync::Arc::new(
            drehscheibe_store::SledStore::open(&dir.path().join("store")).ok()?,
        );
        let server = crate::runtime()
            .block_on(async { XtaServer::open(settings, intake, store) })
            .ok()?;
        let router = server.router();
        Some(Xta {
            router,
            _server: server,
            _dir: dir,
        })
    })
    .as_ref()
}

/// A request to the XTA 2 server with an account's valid bearer token:
/// the first input line (up to 300 bytes) is the `Content-Type` — so the
/// MTOM packaging parameters are fuzzed too — the rest is the body
/// (seeds: MTOM `multipart/related` packages of real operations). Every
/// answer but `200` must be a SOAP fault envelope.
pub fn xta_mtom(data: &[u8]) {
    let Some(xta) = xta() else {
        panic!("the XTA server for fuzzing did not open");
    };
    let split = data.iter().take(300).position(|b| *b == b'\n').unwrap_or(0);
    let (head, body) = data.split_at(split);
    let body = body.strip_prefix(b"\n").unwrap_or(body);
    let Ok(content_type) = std::str::from_utf8(head) else {
        return;
    };
    let Ok(request) = Request::post("/xta")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {XTA_TOKEN}"))
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let router = xta.router.clone();
    let (status, answer) = crate::runtime().block_on(async move {
        let response = match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let answer = axum::body::to_bytes(response.into_body(), 64 << 20).await;
        (status, answer)
    });
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => panic!("the XTA server's answer ({status}) broke off: {e}"),
    };
    if status != StatusCode::OK {
        let root = match parse_xml(&answer) {
            Ok(root) => root,
            Err(e) => panic!(
                "answer {status} is not XML ({e}): {}",
                String::from_utf8_lossy(&answer)
            ),
        };
        let fault = root
            .child(NS_SOAP12, "Body")
            .and_then(|body| body.child(NS_SOAP12, "Fault"));
        assert!(
            root.is(NS_SOAP12, "Envelope") && fault.is_some(),
            "answer {status} is not a SOAP fault: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

struct Keys {
    decryption: RsaPrivateKey,
    verification: Vec<RsaPublicJwk>,
}

fn keys() -> &'static Option<Keys> {
    static KEYS: OnceLock<Option<Keys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let decryption = RsaPrivateKey::from_pem(include_str!(
            "../../fit-connect/tests/fixtures/keys/dest-a.pem"
        ))
        .ok()?;
        let signing = RsaPrivateKey::from_pem(include_str!(
            "../../fit-connect/tests/fixtures/keys/signing.pem"
        ))
        .ok()?
        .with_kid("fuzz-signing");
        Some(Keys {
            decryption: decryption.with_kid("fuzz-encryption"),
            verification: vec![signing.verification_jwk()],
        })
    })
}

/// FIT-Connect's JOSE parsers. The first byte chooses: JWE decryption
/// (with a fixture key, 1 MiB plaintext limit), JWS PS512 verification,
/// security event token verification, or a JWK. The fixture keys are
/// 4096-bit RSA, so inputs that reach the RSA operation run at a few
/// hundred per second.
pub fn jose(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let Some(keys) = keys() else {
        panic!("the fixture keys did not load");
    };
    match selector % 4 {
        0 => {
            let _ = jose::peek_jwe_header(rest);
            let _ = jose::decrypt_compact_limited(rest, &[&keys.decryption], 1 << 20);
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = jose::peek_jws(text);
            let _ = jose::jwe_auth_tag(text);
            let _ = jose::verify_jws_ps512(text, &keys.verification);
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = set::verify_set(text, &keys.verification);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(jwk) = RsaPublicJwk::from_json(text) {
                let _ = jwk.thumbprint();
                let _ = jwk.to_public_key();
            }
            let _ = RsaPrivateKey::from_jwk_json(text);
        }
    }
}

//! Mutual TLS: the `xta` connector presents the tenant's certificate to
//! an XTA server (the double behind rustls) that requires one from a test
//! CA (`drehscheibe_testkit::pki`).
#![allow(clippy::unwrap_used)]

mod client_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use client_support::{request, Double, MemBlobs};
use drehscheibe_model::Connector;
use drehscheibe_testkit::pki::Pki;
use drehscheibe_xta::client::{XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::connector::{MetaDefaults, XtaConnector, XtaConnectorSettings};
use drehscheibe_xta::model::PartyIdentifier;

/// The XTA double behind HTTPS requiring client certificates from the
/// test CA.
async fn serve_mtls(double: &Double, pki: &Pki) -> String {
    let (addr, _refused) = drehscheibe_testkit::pki::serve_mtls(pki, double.router()).await;
    format!("https://{addr}/xta")
}

fn connector(url: &str, pki: &Pki, with_cert: bool) -> XtaConnector {
    XtaConnector::new(XtaConnectorSettings {
        client: XtaClientSettings {
            endpoints: XtaEndpoints::single(url),
            author: PartyIdentifier::new("dvdv:01001000", "xoev"),
            client_cert_pem: with_cert.then(|| {
                (
                    pki.client_cert_pem.clone().into_bytes(),
                    pki.client_key_pem.clone().into_bytes(),
                )
            }),
            ca_cert_pem: Some(pki.ca_pem.clone().into_bytes()),
            bearer_token: None,
            timeout: Duration::from_secs(10),
            max_answer_bytes: 1 << 20,
        },
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:02000000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::ZERO,
        report_poll_interval: Duration::from_millis(20),
        require_final_report: false,
    })
    .unwrap()
}

const DOC: &[u8] = b"<a xmlns=\"urn:a\"/>";

#[tokio::test]
async fn client_certificate_is_presented_and_required() {
    let pki = Pki::new("dvdv:01001000");
    let double = Double::new();
    let url = serve_mtls(&double, &pki).await;

    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let receipt = connector(&url, &pki, true).deliver(req).await.unwrap();
    assert!(receipt.detail.contains("double:1"), "{}", receipt.detail);
    assert_eq!(double.state.lock().unwrap().received.len(), 1);

    // Without the certificate the handshake fails: nothing arrives, the
    // attempt counts as a network failure (retryable).
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url, &pki, false).deliver(req).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(double.state.lock().unwrap().received.len(), 1);
}

#[test]
fn unusable_certificates_are_configuration_errors() {
    let pki = Pki::new("dvdv:01001000");
    let mut s = XtaClientSettings {
        endpoints: XtaEndpoints::single("https://127.0.0.1:1/xta"),
        author: PartyIdentifier::new("a", "xoev"),
        client_cert_pem: Some((b"not a cert".to_vec(), b"not a key".to_vec())),
        ca_cert_pem: None,
        bearer_token: None,
        timeout: Duration::from_secs(1),
        max_answer_bytes: 1024,
    };
    let e = drehscheibe_xta::client::XtaClient::new(s.clone()).unwrap_err();
    assert!(e.to_string().contains("client certificate"), "{e}");
    s.client_cert_pem = Some((
        pki.client_cert_pem.clone().into_bytes(),
        pki.client_key_pem.clone().into_bytes(),
    ));
    s.ca_cert_pem = Some(b"garbage".to_vec());
    assert!(drehscheibe_xta::client::XtaClient::new(s).is_err());
}

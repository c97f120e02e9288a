//! `fit-connect` connectors and `fit-connect-subscriber` channels in the
//! configuration: values, defaults, and errors with file, key and line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use drehscheibe_config::HubConfig;
use drehscheibe_fit_connect::connector_config::{FitConnectConnectorConfig, FitConnectDestination};

const PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nnot a real key, only the file check\n-----END PRIVATE KEY-----\n";

fn write(dir: &Path, main_extra: &str, connector: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    std::fs::write(dir.join("dec.pem"), PEM).unwrap();
    std::fs::write(dir.join("sig.pem"), PEM).unwrap();
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("tenant_dir = \"tenants\"\n\n[channels.portal]\ntype = \"http\"\n{main_extra}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("tenants/alpha.toml"),
        format!("id = \"alpha\"\nname = \"Alpha\"\nags = \"09162000\"\n\n{connector}"),
    )
    .unwrap();
    main
}

const SUBSCRIBER: &str = r#"
[channels.fit]
type = "fit-connect-subscriber"
token_url = "https://auth.example/token"
submission_api_url = "https://zd.example"
client_id = "sub"
client_secret = { value = "s3cret" }
callback_secret = { value = "cb" }
poll_interval = "10s"

[[channels.fit.destinations]]
destination_id = "2b1f0c3e-8d7a-4e6b-9c5d-1a2b3c4d5e6f"
decryption_keys = ["dec.pem"]
signing_key = "sig.pem"
signing_kid = "sig-1"
"#;

const CONNECTOR: &str = r#"
[connectors.fv]
type = "fit-connect"
timeout = "60s"
token_url = "https://auth.example/token"
submission_api_url = "https://zd.example/v1"
client_id = "sender"
client_secret = { value = "x" }
routing_api_url = "https://routing.example/v1/"
ars = "091620000000"
require_accept = true
max_attachment_bytes = "10 MiB"
"#;

#[test]
fn subscriber_channel_and_connector_load() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), SUBSCRIBER, CONNECTOR);
    let cfg = HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
        .unwrap_or_else(|e| panic!("{e}"));
    let ch = cfg.channel("fit").unwrap();
    let s = ch
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_fit_connect::channel_config::FitConnectSubscriberConfig>()
        .unwrap();
    assert_eq!(s.poll_interval, Duration::from_secs(10));
    assert_eq!(s.client_secret.expose(), "s3cret");
    assert_eq!(s.callback_secret.as_ref().unwrap().expose(), "cb");
    assert_eq!(s.destinations.len(), 1);
    assert_eq!(s.destinations[0].signing_kid, "sig-1");
    assert!(s.destinations[0].decryption_keys[0].is_absolute());

    let t = cfg.tenant("alpha").unwrap();
    let c = t.connector("fv").unwrap();
    assert_eq!(c.kind, "fit-connect");
    let f = c
        .factory
        .as_any()
        .downcast_ref::<FitConnectConnectorConfig>()
        .unwrap();
    assert_eq!(
        f.destination,
        FitConnectDestination::Routing {
            routing_api_url: "https://routing.example/v1/".into(),
            ars: Some("091620000000".into()),
            ags: None
        }
    );
    assert!(f.require_accept);
    assert_eq!(f.max_attachment_bytes, 10 << 20);
    assert_eq!(f.max_wait, Duration::from_secs(20));
    assert_eq!(f.poll_interval, Duration::from_secs(2));
}

fn errors(main_extra: &str, connector: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), main_extra, connector);
    HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
        .unwrap_err()
        .to_string()
}

#[test]
fn mistakes_are_reported_with_their_keys() {
    let e = errors(
        &SUBSCRIBER
            .replace(
                "decryption_keys = [\"dec.pem\"]",
                "decryption_keys = [\"missing.pem\"]",
            )
            .replace("https://zd.example", "ftp://zd.example"),
        "",
    );
    assert!(
        e.contains("channels.fit.destinations[0].decryption_keys[0]"),
        "{e}"
    );
    assert!(e.contains("channels.fit.submission_api_url"), "{e}");

    let e = errors(
        &SUBSCRIBER.replace("[[channels.fit.destinations]]\n", "[channels.fit.x]\n"),
        "",
    );
    assert!(
        e.contains("channels.fit.x")
            && e.contains("not a setting of fit-connect-subscriber channels"),
        "{e}"
    );

    let e = errors("\n[channels.web]\ntype = \"http\"\nclient_id = \"x\"\n", "");
    assert!(
        e.contains("channels.web.client_id") && e.contains("not a setting of http channels"),
        "{e}"
    );

    let e = errors(
        "",
        &CONNECTOR.replace(
            "ars = \"091620000000\"",
            "ars = \"0916\"\ndestination_id = \"d\"",
        ),
    );
    assert!(e.contains("not both"), "{e}");

    let e = errors(
        "",
        &CONNECTOR.replace("require_accept = true", "max_wait = \"90s\""),
    );
    assert!(e.contains("max_wait") && e.contains("shorter than"), "{e}");

    let e = errors(
        "",
        &CONNECTOR.replace("client_secret = { value = \"x\" }\n", ""),
    );
    assert!(e.contains("client_secret"), "{e}");

    let e = errors("", "[connectors.mail]\ntype = \"smtp\"\nhost = \"localhost\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\nclient_id = \"x\"\n");
    assert!(
        e.contains("`client_id` is not a setting of smtp connectors"),
        "{e}"
    );
}

/// Issue 10, defect 5: subscriber keys may be PEM files or private JWKs
/// (as the key loader reads them), not PEM only.
#[test]
fn subscriber_keys_may_be_private_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        &SUBSCRIBER
            .replace(
                "decryption_keys = [\"dec.pem\"]",
                "decryption_keys = [\"dec.jwk\"]",
            )
            .replace("signing_key = \"sig.pem\"", "signing_key = \"sig.json\""),
        "",
    );
    let jwk = r#"{"kty":"RSA","n":"x","e":"AQAB","d":"y","p":"z","q":"w"}"#;
    std::fs::write(dir.path().join("dec.jwk"), jwk).unwrap();
    std::fs::write(dir.path().join("sig.json"), format!("\n  {jwk}\n")).unwrap();
    let cfg = HubConfig::load(&main, &drehscheibe_cli::connectors::plugins()).unwrap();
    let s = cfg
        .channel("fit")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_fit_connect::channel_config::FitConnectSubscriberConfig>()
        .unwrap();
    assert!(s.destinations[0].decryption_keys[0].ends_with("dec.jwk"));
    // Neither PEM nor JWK: refused with the key.
    std::fs::write(dir.path().join("dec.jwk"), "not a key").unwrap();
    let e = HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("channels.fit.destinations[0].decryption_keys[0]")
            && e.contains("neither a PEM file nor a JWK"),
        "{e}"
    );
}

#[test]
fn an_unknown_connector_type_names_the_known_ones() {
    let e = errors("", "[connectors.fv]\ntype = \"carrier-pigeon\"\n");
    assert!(e.contains("connectors.fv.type"), "{e}");
    assert!(e.contains("unknown connector type `carrier-pigeon`"), "{e}");
    assert!(e.contains("http") && e.contains("xta-mailbox"), "{e}");
}

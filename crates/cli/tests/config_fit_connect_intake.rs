//! `type = "fit-connect"` channels (the hub as a FIT-Connect intake).
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// Load with no connector plugins: these tests configure channels and
/// the server only.
fn load_cfg(
    main: &std::path::Path,
) -> Result<drehscheibe_config::HubConfig, drehscheibe_config::ConfigErrors> {
    drehscheibe_config::HubConfig::load(main, &drehscheibe_cli::connectors::plugins())
}

const DEST: &str = "6f1e4f2b-2f7b-4a52-9d0e-4d2b9f6a1c11";

fn write(dir: &Path, channel: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(
        dir.join("keys/k.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[channels.fit]\ntype = \"fit-connect\"\n{channel}"),
    )
    .unwrap();
    main
}

const GOOD: &str = r#"public_base_url = "https://hub.example/fit-connect"
base_path = "/fit-connect/"
token_ttl = "10m"
signing_key = "keys/k.pem"
max_attachment_bytes = "100MB"

[[channels.fit.clients]]
client_id = "portal"
client_secret = { value = "s3cret" }
destinations = ["6F1E4F2B-2F7B-4A52-9D0E-4D2B9F6A1C11"]

[[channels.fit.hosted_destinations]]
destination_id = "6f1e4f2b-2f7b-4a52-9d0e-4d2b9f6a1c11"
tenant = "musterstadt"
decryption_keys = ["keys/k.pem", "keys/k.pem"]
services = [{ identifier = "urn:de:fim:leika:leistung:99108008252000", name = "Gewerbeanmeldung" }]
"#;

#[test]
fn a_fit_connect_channel_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_cfg(&write(dir.path(), GOOD)).unwrap();
    let f = config
        .channel("fit")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_fit_connect::channel_config::FitConnectIntakeConfig>()
        .unwrap();
    assert_eq!(f.base_path, "/fit-connect");
    assert_eq!(f.token_ttl.as_secs(), 600);
    assert_eq!(f.max_attachment_bytes, 100_000_000);
    assert_eq!(f.poll_interval.as_secs(), 1);
    assert_eq!(f.clients[0].client_secret.expose(), "s3cret");
    assert_eq!(f.clients[0].destinations, vec![DEST.to_owned()]);
    assert_eq!(f.destinations[0].decryption_keys.len(), 2);
    assert!(f.destinations[0].decryption_keys[0].is_absolute());
    assert_eq!(f.destinations[0].services[0].name, "Gewerbeanmeldung");
    assert_eq!(f.destinations[0].tenant.as_deref(), Some("musterstadt"));
}

#[test]
fn mistakes_are_reported_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("\"100MB\"", "\"600MB\"")
        .replace(r#"destinations = ["6F1E"#, r#"destinations = ["0000"#)
        .replace("destination_id = \"6f1e4f2b", "destination_id = \"xf1e4f2b")
        .replace("urn:de:fim:leika:leistung:", "leika:")
        .replace(
            "signing_key = \"keys/k.pem\"",
            "signing_key = \"keys/missing.pem\"",
        );
    let err = load_cfg(&write(dir.path(), &bad)).unwrap_err().to_string();
    for key in [
        "channels.fit.max_attachment_bytes",
        "channels.fit.clients[0].destinations[0]",
        "channels.fit.hosted_destinations[0].destination_id",
        "channels.fit.hosted_destinations[0].services[0].identifier",
        "channels.fit.signing_key",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    // intake keys on another channel type, and a missing client list
    let err = load_cfg(&write(
        dir.path(),
        "public_base_url = \"https://x\"\nsigning_key = \"keys/k.pem\"\n[channels.web]\ntype = \"http\"\ntoken_ttl = \"1m\"\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("channels.web.token_ttl"), "{err}");
    assert!(err.contains("channels.fit.clients"), "{err}");
    assert!(err.contains("channels.fit.hosted_destinations"), "{err}");
}

#[test]
fn two_intake_channels_need_distinct_base_paths() {
    let dir = tempfile::tempdir().unwrap();
    let second = GOOD.replace("channels.fit.", "channels.fit2.");
    let text = format!("{GOOD}\n[channels.fit2]\ntype = \"fit-connect\"\n{second}");
    let err = load_cfg(&write(dir.path(), &text)).unwrap_err().to_string();
    assert!(
        err.contains("channels.fit2")
            && err.contains("channel `fit` already serves `/fit-connect`"),
        "{err}"
    );
}

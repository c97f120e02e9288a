//! `type = "xta"` channels (the hub as XTA 2 server).
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// Load with no connector plugins: these tests configure channels and
/// the server only.
fn load_cfg(
    main: &std::path::Path,
) -> Result<drehscheibe_config::HubConfig, drehscheibe_config::ConfigErrors> {
    drehscheibe_config::HubConfig::load(main, &drehscheibe_cli::connectors::plugins())
}

fn write(dir: &Path, channel: &str) -> std::path::PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(&main, format!("[channels.xta]\ntype = \"xta\"\n{channel}")).unwrap();
    main
}

const GOOD: &str = r#"server_identity = "drehscheibe.example"
max_message_bytes = "20MB"

[[channels.xta.accounts]]
name = "kommune-nord"
identifier = "dvdv:01001000"
identifier_category = "Kommune"
tokens = [{ value = "t0ken-nord" }]

[[channels.xta.accounts]]
name = "bauamt"
identifier = "gad:010010000000"
identifier_type = "dvdv"
client_cert_sha256 = ["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"]
"#;

#[test]
fn an_xta_channel_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_cfg(&write(dir.path(), GOOD)).unwrap();
    let x = config
        .channel("xta")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_xta::channel_config::XtaChannelConfig>()
        .unwrap();
    assert_eq!(x.server_identity, "drehscheibe.example");
    assert_eq!(x.max_message_bytes, 20_000_000);
    assert_eq!(x.accounts.len(), 2);
    let a = &x.accounts[0];
    assert_eq!(a.identifier_type, "xoev");
    assert_eq!(a.identifier_category.as_deref(), Some("Kommune"));
    assert_eq!(a.tokens[0].expose(), "t0ken-nord");
    let b = &x.accounts[1];
    assert_eq!(b.identifier_type, "dvdv");
    assert_eq!(b.client_cert_sha256[0], "abcdef0123456789".repeat(4));
    // Defaults.
    let config = load_cfg(&write(
        dir.path(),
        "[[channels.xta.accounts]]\nname = \"a\"\nidentifier = \"dvdv:1\"\ntokens = [{ value = \"x\" }]\n",
    ))
    .unwrap();
    let x = config
        .channel("xta")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_xta::channel_config::XtaChannelConfig>()
        .unwrap();
    assert_eq!(x.server_identity, "drehscheibe");
    assert_eq!(x.max_message_bytes, 40_000_000);
}

#[test]
fn mistakes_are_reported_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("\"20MB\"", "\"41MB\"")
        .replace("drehscheibe.example", "drehscheibe example")
        .replace("AB:CD:EF:01", "XY:CD:EF:01")
        .replace("name = \"bauamt\"", "name = \"kommune-nord\"")
        .replace("tokens = [{ value = \"t0ken-nord\" }]", "");
    let err = load_cfg(&write(dir.path(), &bad)).unwrap_err().to_string();
    for key in [
        "channels.xta.max_message_bytes",
        "channels.xta.server_identity",
        "channels.xta.accounts[1].client_cert_sha256[0]",
        "channels.xta.accounts[1].name",
        "channels.xta.accounts[0]",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    // xta keys on another channel type; an xta channel without accounts.
    let err = load_cfg(&write(
        dir.path(),
        "[channels.web]\ntype = \"http\"\nserver_identity = \"x\"\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("channels.web.server_identity"), "{err}");
    assert!(err.contains("channels.xta.accounts"), "{err}");
}

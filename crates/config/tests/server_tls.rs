//! `[server] tls`: HTTPS listener settings.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use drehscheibe_config::ClientAuth;

/// Load with no connector plugins: these tests configure channels and
/// the server only.
fn load_cfg(
    main: &std::path::Path,
) -> Result<drehscheibe_config::HubConfig, drehscheibe_config::ConfigErrors> {
    drehscheibe_config::HubConfig::load(main, &drehscheibe_config::Plugins::new())
}

const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

fn write(dir: &Path, tls: &str) -> std::path::PathBuf {
    for f in ["server.pem", "server.key", "clients-ca.pem"] {
        std::fs::write(dir.join(f), PEM).unwrap();
    }
    std::fs::write(dir.join("plain.txt"), "not pem").unwrap();
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n{tls}\n"),
    )
    .unwrap();
    main
}

#[test]
fn tls_loads_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_cfg(&write(dir.path(), "")).unwrap();
    assert_eq!(config.server.tls, None);

    let config = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"server.pem\", key = \"server.key\" }",
    ))
    .unwrap();
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.cert, dir.path().join("server.pem"));
    assert_eq!(tls.key, dir.path().join("server.key"));
    assert_eq!(tls.client_ca, None);
    assert_eq!(tls.client_auth, ClientAuth::Optional);

    let config = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"server.pem\", key = \"server.key\", client_ca = \"clients-ca.pem\" }",
    ))
    .unwrap();
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.client_ca, Some(dir.path().join("clients-ca.pem")));
    assert_eq!(tls.client_auth, ClientAuth::Optional);

    let config = load_cfg(&write(
        dir.path(),
        "[server.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"clients-ca.pem\"\nclient_auth = \"required\"",
    ))
    .unwrap();
    assert_eq!(config.server.tls.unwrap().client_auth, ClientAuth::Required);
}

#[test]
fn tls_mistakes_are_reported_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"missing.pem\", key = \"plain.txt\", client_auth = \"required\" }",
    ))
    .unwrap_err()
    .to_string();
    for key in [
        "server.tls.cert",
        "server.tls.key",
        "server.tls.client_auth",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
    assert!(err.contains("missing.pem"), "{err}");
    assert!(err.contains("is not a PEM file"), "{err}");

    let err = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"server.pem\", key = \"server.key\", client_ca = \"nope.pem\", client_auth = \"sometimes\" }",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.tls.client_auth"), "{err}");

    let err = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"server.pem\", key = \"server.key\", client_ca = \"nope.pem\" }",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.tls.client_ca"), "{err}");

    let err = load_cfg(&write(
        dir.path(),
        "tls = { cert = \"server.pem\", key = \"server.key\", chain = \"x\" }",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("chain"), "{err}");
}

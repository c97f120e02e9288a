//! `[server]` connection limits: defaults, values, and zero refused.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

/// Load with no connector plugins: these tests configure channels and
/// the server only.
fn load_cfg(
    main: &std::path::Path,
) -> Result<drehscheibe_config::HubConfig, drehscheibe_config::ConfigErrors> {
    drehscheibe_config::HubConfig::load(main, &drehscheibe_config::Plugins::new())
}

fn write(dir: &Path, extra: &str) -> std::path::PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n"),
    )
    .unwrap();
    main
}

#[test]
fn connection_limits_have_defaults_and_can_be_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = load_cfg(&write(dir.path(), "")).unwrap().server;
    assert_eq!(server.max_connections, 512);
    assert_eq!(server.header_read_timeout, Duration::from_secs(15));
    assert_eq!(server.body_read_timeout, Duration::from_secs(30));
    assert_eq!(server.idle_timeout, Duration::from_secs(60));

    let server = load_cfg(&write(
        dir.path(),
        "max_connections = 100\nheader_read_timeout = \"5s\"\nbody_read_timeout = \"20s\"\nidle_timeout = \"2m\"",
    ))
    .unwrap()
    .server;
    assert_eq!(server.max_connections, 100);
    assert_eq!(server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(server.body_read_timeout, Duration::from_secs(20));
    assert_eq!(server.idle_timeout, Duration::from_secs(120));
}

#[test]
fn zero_limits_are_refused_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_cfg(&write(
        dir.path(),
        "max_connections = 0\nheader_read_timeout = \"0s\"\nbody_read_timeout = \"0s\"\nidle_timeout = \"0s\"",
    ))
    .unwrap_err()
    .to_string();
    for key in [
        "server.max_connections",
        "server.header_read_timeout",
        "server.body_read_timeout",
        "server.idle_timeout",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
}

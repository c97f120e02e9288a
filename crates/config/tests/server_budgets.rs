//! `[server]` budgets of the engine: the routing time budget and the
//! memory budget for documents in flight.
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

fn write(dir: &Path, server: &str) -> std::path::PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n{server}\n"),
    )
    .unwrap();
    main
}

#[test]
fn route_budget_defaults_to_30_s_and_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_cfg(&write(dir.path(), "")).unwrap();
    assert_eq!(config.server.route_budget, Duration::from_secs(30));
    let config = load_cfg(&write(dir.path(), "route_budget = \"5s\"")).unwrap();
    assert_eq!(config.server.route_budget, Duration::from_secs(5));
}

#[test]
fn route_budget_must_stay_well_below_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0s", "301s", "10m"] {
        let err = load_cfg(&write(dir.path(), &format!("route_budget = \"{bad}\"")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.route_budget"), "{bad}: {err}");
        assert!(err.contains("at most 300 s"), "{bad}: {err}");
    }
}

#[test]
fn document_memory_defaults_to_1_gib_and_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_cfg(&write(dir.path(), "")).unwrap();
    assert_eq!(config.server.document_memory, 1 << 30);
    let config = load_cfg(&write(dir.path(), "document_memory = \"4 GiB\"")).unwrap();
    assert_eq!(config.server.document_memory, 4 << 30);
    let err = load_cfg(&write(dir.path(), "document_memory = 0"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.document_memory"), "{err}");
}

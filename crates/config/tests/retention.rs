//! `[retention]` in the main file (hub defaults, sweeper pace) and in
//! tenant files (overrides).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use drehscheibe_config::{ConfigErrors, HubConfig, Plugins, RetentionSpans};

const DAY: u64 = 86_400;

fn load(main: &Path) -> Result<HubConfig, ConfigErrors> {
    HubConfig::load(main, &Plugins::new())
}

/// A main file with `main_extra` and one tenant file `kurz.toml` with
/// `tenant_extra`.
fn write(dir: &Path, main_extra: &str, tenant_extra: &str) -> PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("tenant_dir = \"tenants\"\n[server]\nlisten = \"127.0.0.1:0\"\n{main_extra}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    std::fs::write(
        dir.join("tenants/kurz.toml"),
        format!("id = \"kurz\"\nname = \"Stadt Kurz\"\n{tenant_extra}\n"),
    )
    .unwrap();
    main
}

#[test]
fn defaults_keep_failed_messages_until_handled() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write(dir.path(), "", "")).unwrap();
    let r = &config.retention;
    assert!(r.enabled);
    assert_eq!(r.interval, Duration::from_secs(60));
    assert_eq!(r.batch, 500);
    assert_eq!(
        r.default,
        RetentionSpans {
            payloads: Some(Duration::from_secs(30 * DAY)),
            records: Some(Duration::from_secs(365 * DAY)),
            failed: None,
        }
    );
    let tenant = config.tenant("kurz").unwrap();
    assert!(tenant.retention.is_empty());
    assert_eq!(tenant.retention.over(&r.default), r.default);
}

#[test]
fn hub_defaults_and_tenant_overrides_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "[retention]\npayloads = \"7d\"\nrecords = \"90 days\"\nfailed = \"180d\"\ninterval = \"30s\"\nbatch = 200\n",
        "[retention]\npayloads = \"12h\"\nfailed = \"off\"\n",
    );
    let config = load(&main).unwrap();
    let r = &config.retention;
    assert_eq!(r.interval, Duration::from_secs(30));
    assert_eq!(r.batch, 200);
    assert_eq!(r.default.payloads, Some(Duration::from_secs(7 * DAY)));
    assert_eq!(r.default.records, Some(Duration::from_secs(90 * DAY)));
    assert_eq!(r.default.failed, Some(Duration::from_secs(180 * DAY)));
    let spans = config.tenant("kurz").unwrap().retention.over(&r.default);
    assert_eq!(
        spans,
        RetentionSpans {
            payloads: Some(Duration::from_secs(12 * 3600)),
            records: Some(Duration::from_secs(90 * DAY)),
            failed: None,
        }
    );
}

#[test]
fn retention_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write(dir.path(), "[retention]\nenabled = false\n", "")).unwrap();
    assert!(!config.retention.enabled);
}

#[test]
fn bad_values_are_reported_with_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "[retention]\nbatch = 0\ninterval = \"0s\"\n",
        "\n[retention]\npayloads = \"30 fortnights\"\n",
    );
    let errors = load(&main).unwrap_err();
    let text = errors.to_string();
    let tenant_error = errors
        .iter()
        .find(|e| e.file.ends_with("tenants/kurz.toml"))
        .unwrap_or_else(|| panic!("no tenant error in:\n{text}"));
    assert_eq!(tenant_error.line, Some(5), "{text}");
    assert!(tenant_error.message.contains("30 fortnights"), "{text}");
    assert!(tenant_error.message.contains("\"off\""), "{text}");
    let batch = errors
        .iter()
        .find(|e| e.key == "retention.batch")
        .unwrap_or_else(|| panic!("no batch error in:\n{text}"));
    assert!(batch.file.ends_with("hub.toml"));
    assert_eq!(batch.line, Some(5), "{text}");
    assert!(
        errors.iter().any(|e| e.key == "retention.interval"),
        "{text}"
    );

    // A key the tenant may not set (the sweeper's pace is the hub's).
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "", "[retention]\ninterval = \"1s\"\n");
    let text = load(&main).unwrap_err().to_string();
    assert!(text.contains("kurz.toml:4"), "{text}");
    assert!(text.contains("interval"), "{text}");
}

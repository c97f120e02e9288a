//! `[scanner]` in the main file: absent means no scanning; clamd on a
//! Unix socket or TCP with defaults; clear errors by key.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use drehscheibe_config::{ConfigErrors, HubConfig, Plugins, ScannerConfig};

fn load(main: &Path) -> Result<HubConfig, ConfigErrors> {
    HubConfig::load(main, &Plugins::new())
}

fn write(dir: &Path, scanner: &str) -> PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n\n{scanner}\n"),
    )
    .unwrap();
    main
}

#[test]
fn no_section_no_scanner_and_clamd_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load(&write(dir.path(), "")).unwrap().scanner, None);
    let c = load(&write(
        dir.path(),
        "[scanner]\naddress = \"unix:/run/clamav/clamd.ctl\"",
    ))
    .unwrap();
    assert_eq!(
        c.scanner,
        Some(ScannerConfig {
            address: "unix:/run/clamav/clamd.ctl".into(),
            timeout: Duration::from_secs(60),
            retry: Duration::from_secs(30),
            base64_min: 1024,
        })
    );
    let c = load(&write(
        dir.path(),
        "[scanner]\ntype = \"clamd\"\naddress = \"tcp://clamav:3310\"\ntimeout = \"10s\"\nretry = \"2m\"",
    ))
    .unwrap();
    let s = c.scanner.unwrap();
    assert_eq!(
        (s.address.as_str(), s.timeout, s.retry),
        (
            "tcp://clamav:3310",
            Duration::from_secs(10),
            Duration::from_secs(120)
        )
    );
}

#[test]
fn mistakes_are_reported_by_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key, says) in [
        ("[scanner]", "scanner.address", "clamd's socket"),
        (
            "[scanner]\naddress = \"clamav\"",
            "scanner.address",
            "clamd's socket",
        ),
        (
            "[scanner]\ntype = \"sophos\"\naddress = \"unix:/x\"",
            "scanner.type",
            "unknown scanner type",
        ),
        (
            "[scanner]\naddress = \"unix:/x\"\ntimeout = \"0s\"",
            "scanner.timeout",
            "more than zero",
        ),
        (
            "[scanner]\naddress = \"unix:/x\"\nbase64_min = 3",
            "scanner.base64_min",
            "at least 16",
        ),
    ] {
        let errors = load(&write(dir.path(), text)).unwrap_err().to_string();
        assert!(
            errors.contains(key) && errors.contains(says),
            "{text}: {errors}"
        );
    }
}

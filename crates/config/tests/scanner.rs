//! `[scanner]` in the main file: absent means no scanning; clamd on a
//! Unix socket or TCP with defaults; clear errors by key.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use drehscheibe_config::plugin::ChannelFactory;
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

#[test]
fn channels_and_tenants_may_switch_scanning_off_and_required_needs_a_scanner() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    let tenant = |scan: &str| {
        std::fs::write(
            dir.path().join("tenants/alpha.toml"),
            format!("id = \"alpha\"\nname = \"Kommune alpha\"\nags = \"01001000\"\n{scan}\n"),
        )
        .unwrap();
    };
    let main = |scanner: &str, channel_scan: &str| {
        let main = dir.path().join("hub.toml");
        std::fs::write(
            &main,
            format!(
                "tenant_dir = \"tenants\"\n[server]\nlisten = \"127.0.0.1:0\"\n\n[channels.portal]\ntype = \"http\"\n{channel_scan}\n\n{scanner}\n"
            ),
        )
        .unwrap();
        main
    };
    let with_scanner = "[scanner]\naddress = \"unix:/run/clamav/clamd.ctl\"";
    let plugins = Plugins::new().channel(drehscheibe_config::plugin::ChannelPlugin {
        kind: "http",
        summary: "a channel without settings (test)",
        parse: |_, _| Some(std::sync::Arc::new(NoChannel) as std::sync::Arc<dyn ChannelFactory>),
    });
    tenant("scan = \"off\"");
    let c = HubConfig::load(&main(with_scanner, "scan = \"off\""), &plugins).unwrap();
    assert_eq!(c.channels[0].scan, Some(drehscheibe_config::ScanMode::Off));
    assert_eq!(c.tenants[0].scan, Some(drehscheibe_config::ScanMode::Off));
    tenant("");
    let c = HubConfig::load(&main(with_scanner, ""), &plugins).unwrap();
    assert_eq!((c.channels[0].scan, c.tenants[0].scan), (None, None));

    // `required` without a scanner, in the main file and in a tenant file.
    tenant("scan = \"required\"");
    let errors = HubConfig::load(&main("", "scan = \"required\""), &plugins)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("channels.portal.scan") && errors.contains("alpha.toml"),
        "{errors}"
    );
    assert_eq!(errors.matches("needs a [scanner]").count(), 2, "{errors}");
    tenant("scan = \"sometimes\"");
    let errors = HubConfig::load(&main(with_scanner, ""), &plugins)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("sometimes"), "{errors}");
}

/// A channel type without settings, for the test's own plugin list.
#[derive(Debug)]
struct NoChannel;

impl ChannelFactory for NoChannel {
    fn build(
        &self,
        _: &drehscheibe_config::plugin::ChannelContext<'_>,
    ) -> Result<drehscheibe_config::plugin::Adapter, drehscheibe_config::plugin::BuildError> {
        Err(drehscheibe_config::plugin::BuildError::new(
            "not built in this test",
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

//! `[console] editable`, a route's `sla`, and loading with overrides (the
//! console's check of a candidate change before anything is written).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use drehscheibe_config::plugin::{BuildContext, BuildError, ConnectorFactory, ConnectorPlugin};
use drehscheibe_config::{disk_digest, HubConfig, Overrides, Plugins, SlaTarget};

/// A connector type whose tables take no keys (only loading is tested).
#[derive(Debug)]
struct Nothing;

impl ConnectorFactory for Nothing {
    fn build(
        &self,
        _: &BuildContext<'_>,
    ) -> Result<Arc<dyn drehscheibe_model::Connector>, BuildError> {
        Err(BuildError::new("not built in this test"))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn plugins() -> Plugins {
    Plugins::new().connector(ConnectorPlugin {
        kind: "nothing",
        summary: "a test connector",
        parse: |_, _| Some(Arc::new(Nothing)),
    })
}

fn write(dir: &Path, main_extra: &str, tenant_route_extra: &str) -> std::path::PathBuf {
    let main = dir.join("hub.toml");
    std::fs::write(
        &main,
        format!("tenant_dir = \"tenants\"\n[server]\nlisten = \"127.0.0.1:0\"\n{main_extra}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    std::fs::write(
        dir.join("tenants/alpha.toml"),
        format!(
            "id = \"alpha\"\nname = \"Alpha\"\nags = \"01001000\"\n\n[connectors.fv]\ntype = \"nothing\"\n\n[[routes]]\nleistung = \"99050012104000\"\nrule = \"r@^1\"\ntargets = {{ fachverfahren = \"fv\" }}\n{tenant_route_extra}\n"
        ),
    )
    .unwrap();
    main
}

#[test]
fn console_is_editable_unless_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let c = HubConfig::load(&write(dir.path(), "", ""), &plugins()).unwrap();
    assert!(c.console.editable);
    let c = HubConfig::load(
        &write(dir.path(), "[console]\neditable = false", ""),
        &plugins(),
    )
    .unwrap();
    assert!(!c.console.editable);
    let e = HubConfig::load(
        &write(dir.path(), "[console]\neditable = \"ja\"", ""),
        &plugins(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("hub.toml") && e.contains("editable"), "{e}");
}

#[test]
fn a_route_sla_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "", "sla = { within = \"5m\", percent = 95 }");
    let c = HubConfig::load(&main, &plugins()).unwrap();
    assert_eq!(
        c.tenants[0].routes[0].sla,
        Some(SlaTarget {
            within: Duration::from_secs(300),
            percent: 95.0
        })
    );
    for (bad, key) in [
        ("sla = { within = \"5m\", percent = 0 }", "percent"),
        ("sla = { within = \"5m\", percent = 100.5 }", "percent"),
        ("sla = { within = \"0s\", percent = 95 }", "within"),
        ("sla = { within = \"5m\" }", "percent"),
        (
            "sla = { within = \"5m\", percent = 95, extra = 1 }",
            "extra",
        ),
    ] {
        let main = write(dir.path(), "", bad);
        let e = HubConfig::load(&main, &plugins()).unwrap_err().to_string();
        assert!(e.contains("alpha.toml") && e.contains(key), "{bad}: {e}");
    }
}

#[test]
fn overrides_stand_in_for_files_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "", "");
    let alpha = dir.path().join("tenants/alpha.toml");
    let on_disk = std::fs::read_to_string(&alpha).unwrap();
    let before = HubConfig::load(&main, &plugins()).unwrap();
    assert_eq!(before.sources.len(), 2);
    assert_eq!(before.sources[1].1, on_disk);

    // A changed tenant file and a new one.
    let mut o = Overrides::new();
    let changed = on_disk.replace("name = \"Alpha\"", "name = \"Gemeinde Alpha\"");
    o.insert(alpha.clone(), Some(changed.clone()));
    o.insert(
        dir.path().join("tenants/beta.toml"),
        Some("id = \"beta\"\nname = \"Beta\"\nags = \"02002000\"\n".into()),
    );
    let next = HubConfig::load_with(&main, &plugins(), &o).unwrap();
    assert_eq!(next.tenant("alpha").unwrap().name, "Gemeinde Alpha");
    assert_eq!(next.tenant("beta").unwrap().name, "Beta");
    assert_ne!(next.digest, before.digest);
    assert_eq!(
        std::fs::read_to_string(&alpha).unwrap(),
        on_disk,
        "nothing written"
    );
    assert!(!dir.path().join("tenants/beta.toml").exists());

    // An override that does not load reports the file and line.
    let mut o = Overrides::new();
    o.insert(alpha.clone(), Some("id = \"alpha\"\nname = \n".into()));
    let e = HubConfig::load_with(&main, &plugins(), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("alpha.toml:2"), "{e}");

    // Removing a file in the candidate.
    let mut o = Overrides::new();
    o.insert(alpha, None);
    let next = HubConfig::load_with(&main, &plugins(), &o).unwrap();
    assert!(next.tenants.is_empty());
    // Files outside the tenant directory are not tenant files.
    let mut o = Overrides::new();
    o.insert(
        dir.path().join("elsewhere.toml"),
        Some("id = \"x\"\nname = \"X\"\n".into()),
    );
    let next = HubConfig::load_with(&main, &plugins(), &o).unwrap();
    assert!(next.tenant("x").is_none());
}

#[test]
fn the_disk_digest_is_the_loaded_digest_without_loading() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "", "");
    let c = HubConfig::load(&main, &plugins()).unwrap();
    assert_eq!(disk_digest(&main, &c.tenant_dir).unwrap(), c.digest);
    // Ignored as loading ignores them: hidden files, other extensions.
    std::fs::write(dir.path().join("tenants/.alpha.toml.swp"), "x").unwrap();
    std::fs::write(dir.path().join("tenants/notes.txt"), "x").unwrap();
    assert_eq!(disk_digest(&main, &c.tenant_dir).unwrap(), c.digest);
    // A changed byte, a new tenant file: another digest, the one a load
    // would give.
    let alpha = dir.path().join("tenants/alpha.toml");
    let text = std::fs::read_to_string(&alpha).unwrap();
    std::fs::write(&alpha, text.replace("Alpha", "Alpha ")).unwrap();
    let changed = disk_digest(&main, &c.tenant_dir).unwrap();
    assert_ne!(changed, c.digest);
    assert_eq!(changed, HubConfig::load(&main, &plugins()).unwrap().digest);
    std::fs::write(
        dir.path().join("tenants/beta.toml"),
        "id = \"beta\"\nname = \"Beta\"\nags = \"02002000\"\n",
    )
    .unwrap();
    let added = disk_digest(&main, &c.tenant_dir).unwrap();
    assert_eq!(added, HubConfig::load(&main, &plugins()).unwrap().digest);
}

//! `xta-poller` channels and `xta` / `xta-mailbox` connectors in the
//! configuration: values, defaults, and errors with file, key and line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use drehscheibe_config::HubConfig;
use drehscheibe_xta::connector_config::{XtaConnectorConfig, XtaMailboxConnectorConfig, XtaParty};

const PEM: &str =
    "-----BEGIN CERTIFICATE-----\nnot a real certificate, only the file check\n-----END CERTIFICATE-----\n";

fn write(dir: &Path, main_extra: &str, connector: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    for f in ["tenant.crt", "tenant.key", "ca.pem"] {
        std::fs::write(dir.join(f), PEM).unwrap();
    }
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

const SERVER: &str = r#"
[channels.xta]
type = "xta"
[[channels.xta.accounts]]
name = "kommune"
identifier = "dvdv:01001000"
tokens = [{ value = "tok" }]
"#;

const POLLER: &str = r#"
[channels.land]
type = "xta-poller"
url = "https://broker.example/xta"
account = "dvdv:01001000"
client_cert = { cert = "tenant.crt", key = "tenant.key" }
ca_cert = "ca.pem"
poll_interval = "15s"
services = ["urn:xoev-de:xbau:standard:xbau_2.3"]
"#;

const CONNECTORS: &str = r#"
[connectors.land]
type = "xta"
timeout = "60s"
url = "https://broker.example/xta"
account = "dvdv:09162000"
account_type = "dvdv"
client_cert = { cert = "tenant.crt", key = "tenant.key" }
auth = { type = "bearer", token = { value = "t0k" } }
reader = "dvdv:09000000"
service = "urn:xoev-de:xbau:standard:xbau_2.3"
message_type = "baugenehmigung.antrag.0200"

[connectors.box]
type = "xta-mailbox"
mailbox = "kommune"
author = "dvdv:09162000"
reader = "dvdv:01001000"
service = "urn:xoev-de:xbau:standard:xbau_2.3"
"#;

#[test]
fn poller_and_connectors_load() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), &format!("{SERVER}{POLLER}"), CONNECTORS);
    let cfg = HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
        .unwrap_or_else(|e| panic!("{e}"));
    let p = cfg
        .channel("land")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<drehscheibe_xta::channel_config::XtaPollerConfig>()
        .unwrap();
    assert_eq!(p.poll_interval, Duration::from_secs(15));
    assert_eq!(p.max_list_items, 50);
    assert_eq!(
        p.remote.account,
        XtaParty {
            value: "dvdv:01001000".into(),
            kind: "xoev".into()
        }
    );
    assert!(p.remote.client_cert.as_ref().unwrap().cert.is_absolute());
    assert!(p.remote.ca_cert.is_some() && p.remote.token.is_none());
    assert_eq!(p.services, ["urn:xoev-de:xbau:standard:xbau_2.3"]);

    let t = cfg.tenant("alpha").unwrap();
    let c = t.connector("land").unwrap();
    assert_eq!(c.kind, "xta");
    let x = c
        .factory
        .as_any()
        .downcast_ref::<XtaConnectorConfig>()
        .unwrap();
    assert_eq!(x.remote.account.kind, "dvdv");
    assert_eq!(x.remote.token.as_ref().unwrap().expose(), "t0k");
    assert_eq!(x.meta.reader.as_ref().unwrap().value, "dvdv:09000000");
    assert_eq!(
        x.meta.message_type.as_deref(),
        Some("baugenehmigung.antrag.0200")
    );
    assert_eq!(x.report_wait, Duration::from_secs(10));
    assert_eq!(x.report_poll_interval, Duration::from_secs(1));
    let m = t
        .connector("box")
        .unwrap()
        .factory
        .as_any()
        .downcast_ref::<XtaMailboxConnectorConfig>()
        .unwrap();
    assert_eq!(m.mailbox, "kommune");
    assert_eq!(m.meta.author.as_ref().unwrap().value, "dvdv:09162000");
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
    // A poller without account, with a directory key.
    let e = errors(
        &POLLER
            .replace("account = \"dvdv:01001000\"\n", "")
            .replace("poll_interval = \"15s\"", "settle = \"1s\""),
        "",
    );
    assert!(e.contains("`account`") && e.contains("is required"), "{e}");
    assert!(e.contains("channels.land.settle"), "{e}");
    // Poller keys on an http channel.
    let e = errors("\n[channels.web]\ntype = \"http\"\naccount = \"x\"\n", "");
    assert!(
        e.contains("channels.web.account") && e.contains("not a setting of http channels"),
        "{e}"
    );
    // A missing certificate file, with the exact key.
    let e = errors(&POLLER.replace("tenant.key", "missing.key"), "");
    assert!(e.contains("channels.land.client_cert.key"), "{e}");
    // Bad URL.
    let e = errors(&POLLER.replace("https://broker.example/xta", "ftp://x"), "");
    assert!(e.contains("channels.land.url"), "{e}");
    // Connector: a smtp key on an xta connector, basic auth, max_wait too long.
    let e = errors(
        SERVER,
        &CONNECTORS
            .replace("message_type = ", "host = \"x\"\nmessage_type = ")
            .replace(
                "auth = { type = \"bearer\", token = { value = \"t0k\" } }",
                "auth = { type = \"basic\", username = \"u\", password = { value = \"p\" } }\nmax_wait = \"90s\"",
            ),
    );
    assert!(
        e.contains("`host` is not a setting of xta connectors"),
        "{e}"
    );
    assert!(e.contains("bearer"), "{e}");
    assert!(e.contains("max_wait") && e.contains("shorter than"), "{e}");
    // Mailbox connector naming an unknown account, and without mailbox.
    let e = errors(
        SERVER,
        &CONNECTORS.replace("mailbox = \"kommune\"", "mailbox = \"nobody\""),
    );
    assert!(
        e.contains("connectors.box.mailbox")
            && e.contains("no xta channel has an account `nobody`"),
        "{e}"
    );
    let e = errors(SERVER, &CONNECTORS.replace("mailbox = \"kommune\"\n", ""));
    assert!(e.contains("needs `mailbox`"), "{e}");
    // A type without its identifier.
    let e = errors(
        SERVER,
        &CONNECTORS.replace("reader = \"dvdv:09000000\"\n", "reader_type = \"x\"\n"),
    );
    assert!(e.contains("`reader_type` needs `reader`"), "{e}");
}

/// Issue 10, defect 14: an `xta` connector without `reader` or `service`
/// can only take them from the XTA metadata of a message an xta channel
/// took in; in a hub without an xta channel every delivery would go dead,
/// so `config check` refuses it — at the key, in the tenant file.
#[test]
fn xta_connector_without_reader_needs_an_xta_channel() {
    let bare = r#"
[connectors.land]
type = "xta"
url = "https://broker.example/xta"
account = "dvdv:09162000"
client_cert = { cert = "tenant.crt", key = "tenant.key" }
"#;
    let e = errors("", bare);
    assert!(e.contains("alpha.toml"), "{e}");
    assert!(
        e.contains("connectors.land.reader")
            && e.contains("`reader` is not set and no xta channel of this hub"),
        "{e}"
    );
    assert!(
        e.contains("connectors.land.service")
            && e.contains("`service` is not set and no xta channel of this hub"),
        "{e}"
    );
    // Given both, the connector stands on its own.
    let dir = tempfile::tempdir().unwrap();
    let given = format!("{bare}reader = \"dvdv:09000000\"\nservice = \"urn:test\"\n");
    let main = write(dir.path(), "", &given);
    HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
        .unwrap_or_else(|e| panic!("{e}"));
    // With an xta channel (server or poller) the metadata may name them.
    for channel in [SERVER, POLLER] {
        let dir = tempfile::tempdir().unwrap();
        let main = write(dir.path(), channel, bare);
        HubConfig::load(&main, &drehscheibe_cli::connectors::plugins())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

//! Interoperability of the hub's XTA-WS server with a SOAP client we did
//! not write: Python `zeep` (PyPI, installed into the venv
//! `target/xta-venv`; the test fails if pip cannot install it) loads the
//! official `schemas/xta/XTA.wsdl` as it is, with the service address
//! overridden to an in-process hub. Account `kommune-a` calls
//! `checkAccountActive`, `createMessageId`, `sendMessage` (message plus a
//! binary attachment, MessageMetaData header) and `getTransportReport`;
//! a rule matching on the XTA service and message type
//! (`tests/xta_zeep/rules/xtabau`) routes the message to tenant alpha, whose `xta-mailbox`
//! connector puts it into the mailbox of account `bauamt-b`, which lists it
//! (`getStatusList`, MessageMetaData form), fetches it (`getMessage`) and
//! closes it (`close`). Content and attachment must arrive byte-exact,
//! the meta data unchanged (except the mailbox's own message id).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use drehscheibe_suite::{free_port, order, repo_root, start, Api, TestConfig, OPERATOR};
use serde_json::Value;

const LEISTUNG: &str = "99050012104000";
const SENDER_TOKEN: &str = "xta-token-kommune-a-0001";
const READER_TOKEN: &str = "xta-token-bauamt-b-0002";

/// The venv with `zeep`; created and installed on first use.
fn venv_python() -> PathBuf {
    let venv = repo_root().join("target/xta-venv");
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import zeep, lxml, requests"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 must be installed");
        assert!(status.success(), "python3 -m venv failed");
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "zeep"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install zeep failed (PyPI must be reachable):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    python
}

fn channel_toml() -> String {
    format!(
        r#"
[channels.xta-in]
type = "xta"
server_identity = "drehscheibe.test"

[[channels.xta-in.accounts]]
name = "kommune-a"
identifier = "dvdv:01001000"
identifier_type = "xoev"
identifier_category = "Kommune"
tokens = [{{ value = "{SENDER_TOKEN}" }}]

[[channels.xta-in.accounts]]
name = "bauamt-b"
identifier = "dvdv:02000000"
identifier_type = "xoev"
identifier_category = "Fachverfahren"
tokens = [{{ value = "{READER_TOKEN}" }}]
"#
    )
}

fn tenant() -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha"
ags = "01001000"

[connectors.bauamt]
type = "xta-mailbox"
mailbox = "bauamt-b"

[[routes]]
leistung = "{LEISTUNG}"
rule = "xtabau@^1"
targets = {{ fachverfahren = "bauamt" }}
"#
    )
}

const METADATA: &str = r#"<oscimeta:MessageMetaData xmlns:oscimeta="http://www.osci.eu/ws/2014/10/transport" xmlns:wsa="http://www.w3.org/2005/08/addressing"><oscimeta:DeliveryAttributes><oscimeta:Origin>2026-11-30T10:15:00.000+01:00</oscimeta:Origin><oscimeta:InitialSend>2026-11-30T10:15:01.000+01:00</oscimeta:InitialSend></oscimeta:DeliveryAttributes><oscimeta:Originators><oscimeta:Author><oscimeta:Identifier type="xoev" category="Kommune" name="Gemeinde Nord">dvdv:01001000</oscimeta:Identifier></oscimeta:Author></oscimeta:Originators><oscimeta:Destinations><oscimeta:Reader><oscimeta:Identifier type="xoev" category="Fachverfahren">dvdv:02000000</oscimeta:Identifier></oscimeta:Reader></oscimeta:Destinations><oscimeta:MsgIdentification><wsa:MessageID>@MESSAGE_ID@</wsa:MessageID></oscimeta:MsgIdentification><oscimeta:Qualifier><oscimeta:Subject>Bauantrag Flurstück 12/3</oscimeta:Subject><oscimeta:Service>urn:xoev-de:xbau:standard:xbau_2.3</oscimeta:Service><oscimeta:BusinessScenario><oscimeta:Defined listURI="urn:de:dataport:codeliste:business.scenario" listVersionID="1"><code>XBAU_DATA</code></oscimeta:Defined></oscimeta:BusinessScenario><oscimeta:MessageType listURI="urn:de:payloadSchema:elementName" listVersionID="1.0" payloadSchema="urn:drehscheibe:test:order"><code>order</code></oscimeta:MessageType></oscimeta:Qualifier></oscimeta:MessageMetaData>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeep_drives_the_xta_server_from_the_official_wsdl() {
    let python = venv_python();
    let port = free_port();
    // A rule that matches on the XTA service and message type.
    let cfg = TestConfig::write_with_depot(
        &format!("127.0.0.1:{port}"),
        &channel_toml(),
        &repo_root().join("tests/xta_zeep/rules"),
        &[("alpha", tenant())],
    );
    let hub = start(&cfg.main).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/xta/xta-in");

    let message = order("01001000", LEISTUNG, 3000);
    let attachment: Vec<u8> = (0..120_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let md_file = cfg.path("metadata.xml");
    let msg_file = cfg.path("bauantrag.xml");
    let att_file = cfg.path("lageplan.pdf");
    std::fs::write(&md_file, METADATA).unwrap();
    std::fs::write(&msg_file, &message).unwrap();
    std::fs::write(&att_file, &attachment).unwrap();

    let python2 = python.clone();
    let args: Vec<String> = vec![
        repo_root()
            .join("tests/xta_zeep/client.py")
            .display()
            .to_string(),
        repo_root()
            .join("schemas/xta/XTA.wsdl")
            .display()
            .to_string(),
        url,
        SENDER_TOKEN.into(),
        READER_TOKEN.into(),
        md_file.display().to_string(),
        msg_file.display().to_string(),
        att_file.display().to_string(),
    ];
    let capture = cfg.path("responses");
    std::fs::create_dir_all(&capture).unwrap();
    let capture2 = capture.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python2)
            .args(&args)
            .env("XTA_CAPTURE_DIR", capture2)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    if !out.status.success() {
        // Show where the hub's messages stand, then fail.
        let api = Api::new(hub.addr);
        let (_, list) = api.get("/api/v1/messages", OPERATOR).await;
        panic!(
            "zeep client failed:\n{}{}\nhub messages: {list:#}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    if std::env::var_os("XTA_ZEEP_DUMP").is_some() {
        eprintln!("{v:#}");
    }

    // Every response zeep received validates against the official XSDs.
    let mut responses: Vec<_> = std::fs::read_dir(&capture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    responses.sort();
    assert!(responses.len() >= 10, "{responses:?}");
    for r in &responses {
        let out = Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(repo_root().join("crates/xta/tests/xsd/all.xsd"))
            .arg(r)
            .output()
            .expect("xmllint is required (apt-get install libxml2-utils)");
        assert!(
            out.status.success(),
            "{} does not validate: {}",
            r.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let id = v["message_id"].as_str().unwrap();
    assert!(
        id.starts_with("urn:de:xta:messageid:drehscheibe.test:"),
        "{id}"
    );
    assert_eq!(v["report_status_after_send"], 0, "{v}");

    // The status list carries the meta data the sender wrote.
    let listed = &v["status_list"][0];
    let q = &listed["Qualifier"];
    assert_eq!(
        q["Service"], "urn:xoev-de:xbau:standard:xbau_2.3",
        "{listed}"
    );
    assert_eq!(q["Subject"], "Bauantrag Flurstück 12/3");
    assert_eq!(q["BusinessScenario"]["Defined"]["code"], "XBAU_DATA");
    assert_eq!(q["MessageType"]["code"], "order");
    assert_eq!(
        q["MessageType"]["payloadSchema"],
        "urn:drehscheibe:test:order"
    );
    let author = &listed["Originators"]["Author"]["Identifier"];
    assert_eq!(author["_value_1"], "dvdv:01001000", "{listed}");
    assert_eq!(author["category"], "Kommune");
    assert_eq!(author["name"], "Gemeinde Nord");
    let reader = &listed["Destinations"]["Reader"]["Identifier"];
    assert_eq!(reader["_value_1"], "dvdv:02000000");
    assert_eq!(reader["category"], "Fachverfahren");

    // getMessage: byte-exact content and attachment with their attributes.
    let cc = &v["message"]["ContentContainer"];
    let b64 = |x: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(x["_value_1"]["base64"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(b64(&cc["Message"]), message);
    // The Message part is the rule's output document: its content type and
    // file name are the rule output's (`text/xml`, `bauantrag.xml`).
    assert_eq!(cc["Message"]["contentType"], "text/xml");
    assert_eq!(cc["Message"]["filename"], "bauantrag.xml");
    let att = &cc["Attachment"][0];
    assert_eq!(b64(att), attachment);
    assert_eq!(att["contentType"], "application/pdf");
    assert_eq!(att["filename"], "lageplan.pdf");
    let header_md = &v["message_header"]["MessageMetaData"];
    assert_eq!(header_md["Qualifier"], *q);
    assert_eq!(
        header_md["Originators"]["Author"]["Identifier"]["_value_1"],
        "dvdv:01001000"
    );

    // After close the box is empty, a second close names the unknown id.
    let after = v["after_close"].to_string();
    assert!(after.contains("NoMatch"), "{after}");
    let second = v["second_close"].as_str().unwrap();
    assert!(second.contains("InvalidMessageIDException"), "{second}");
    assert!(second.contains("9070"), "{second}");
    // zeep also loads the hub's published WSDL (with its XSDs) over HTTP.
    let url = format!("http://127.0.0.1:{port}/xta/xta-in");
    assert_eq!(v["published_addresses"], serde_json::json!([url, url, url]));
    // The sender's transport report: delivered (green).
    assert_eq!(v["report_status_final"], 1, "{v}");

    hub.shutdown().await.unwrap();
}

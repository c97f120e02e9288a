//! XSD validation in the running hub (issue 12): a rule package declares
//! the schema of its input and of each output; an invalid payload is
//! `rejected` with every error's line and column before the rule renders,
//! an output that breaks its schema is `dead` and never delivered.
//! libxml2 validates (crates/xsd); schemas resolve offline through the
//! hub's XML catalog (`[rules] catalog`).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{start, Api, TestConfig};

const LEISTUNG: &str = "99104005000000";
const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "urn:drehscheibe:test:antrag";

/// A rule whose input schema wants `<a:antrag>` with a numeric `<a:anzahl>`
/// and whose output schema wants `<import>` with an `<anzahl>`: the
/// stylesheet leaves `<anzahl>` out when the input says
/// `<a:anzahl>0</a:anzahl>` — the broken rule a Fachverfahren must not
/// see.
fn write_rule(depot: &Path) {
    let rule = depot.join("antrag/1.0.0");
    std::fs::create_dir_all(&rule).unwrap();
    std::fs::write(
        rule.join("rule.toml"),
        format!(
            r#"id = "antrag"
version = "1.0.0"
title = "Antrag with input and output schema (validation test)"

[namespaces]
a = "{NS}"

[match]
channels = ["*"]
content_types = ["application/xml"]
condition = "exists(/a:antrag)"

[input]
schema = "antrag.xsd"

[extract]
kommune = "string(/a:antrag/@kommune)"
leistung = "'{LEISTUNG}'"

[[outputs]]
target = "fachverfahren"
transform = "import.xsl"
content_type = "application/xml"
filename = "import-{{id}}.xml"
schema = "import.xsd"
"#
        ),
    )
    .unwrap();
    std::fs::write(
        rule.join("antrag.xsd"),
        format!(
            r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{NS}" elementFormDefault="qualified">
  <xs:element name="antrag">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="name" type="xs:string"/>
        <xs:element name="anzahl" type="xs:nonNegativeInteger"/>
      </xs:sequence>
      <xs:attribute name="kommune" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"#
        ),
    )
    .unwrap();
    std::fs::write(
        rule.join("import.xsd"),
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="import">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="name" type="xs:string"/>
        <xs:element name="anzahl" type="xs:positiveInteger"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"#,
    )
    .unwrap();
    std::fs::write(
        rule.join("import.xsl"),
        format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:a="{NS}">
  <xsl:template match="/a:antrag">
    <import>
      <name><xsl:value-of select="a:name"/></name>
      <xsl:if test="a:anzahl != 0"><anzahl><xsl:value-of select="a:anzahl"/></anzahl></xsl:if>
    </import>
  </xsl:template>
</xsl:stylesheet>
"#
        ),
    )
    .unwrap();
}

fn antrag(name: &str, anzahl: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<a:antrag xmlns:a=\"{NS}\" kommune=\"01001000\">\n  <a:name>{name}</a:name>\n  <a:anzahl>{anzahl}</a:anzahl>\n</a:antrag>\n"
    )
    .into_bytes()
}

fn tenant(rx: &Receiver) -> String {
    drehscheibe_suite::http_tenant_with_rule(
        "alpha",
        "01001000",
        LEISTUNG,
        "antrag@^1",
        &rx.url("/alpha"),
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_and_outputs_are_checked_against_the_rules_schemas() {
    let depot = tempfile::tempdir().unwrap();
    write_rule(depot.path());
    let rx = Receiver::start().await;
    let cfg =
        TestConfig::write_with_depot("127.0.0.1:0", "", depot.path(), &[("alpha", tenant(&rx))]);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    // Valid in, valid out: delivered.
    let id = api
        .submit("application/xml", antrag("Erika Mustermann", "2"))
        .await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["rule"]["version"], "1.0.0");
    let got = rx.accepted("/alpha");
    assert_eq!(got.len(), 1);
    let body = std::str::from_utf8(&got[0].body).unwrap();
    assert!(body.contains("<anzahl>2</anzahl>"), "{body}");

    // Two schema errors in the payload: rejected before the rule renders,
    // each error with its line and column, nothing delivered.
    let mut bad = String::from_utf8(antrag("Erika Mustermann", "zwei")).unwrap();
    bad = bad.replace(
        "kommune=\"01001000\">",
        "kommune=\"01001000\">\n  <a:extra/>",
    );
    let id = api.submit("application/xml", bad.into_bytes()).await;
    let view = api.wait_state(&id, "rejected", WAIT).await;
    let reason = view["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("not valid against schema antrag.xsd"),
        "{view:#}"
    );
    assert!(
        reason.contains("input schema of rule antrag@1.0.0"),
        "{reason}"
    );
    // `<a:extra/>` is on line 3, where `a:name` was expected.
    assert!(reason.contains("line 3, column"), "{reason}");
    assert!(reason.contains("extra"), "{reason}");
    assert!(rx.accepted("/alpha").len() == 1, "nothing more delivered");

    // Not even well-formed: rejected already at intake by the hub's own
    // parser (400), never reaching the schema.
    let r = api
        .post(
            "portal",
            drehscheibe_suite::SENDER,
            "application/xml",
            b"<a:antrag xmlns:a=\"urn:x\"><unclosed></a:antrag>".to_vec(),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);

    // The rule renders an output its own schema refuses: dead with the
    // validator's errors, and the Fachverfahren sees nothing.
    let id = api
        .submit("application/xml", antrag("Max Mustermann", "0"))
        .await;
    let view = api.wait_state(&id, "dead", WAIT).await;
    let reason = view["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("output fachverfahren: not valid against schema import.xsd"),
        "{view:#}"
    );
    assert!(reason.contains("anzahl"), "{reason}");
    assert_eq!(
        rx.accepted("/alpha").len(),
        1,
        "the broken output was not delivered"
    );
    assert!(
        view["deliveries"].as_array().is_none_or(|d| d.is_empty()),
        "no delivery was planned: {view:#}"
    );
}

/// The shipped catalog resolves the xdomea 3.1.0 schema set offline: the
/// shipped Gewerbeanmeldung rule (2.1.0) declares its DMS output's schema
/// by URI, and the package loads and validates with `[rules] catalog`
/// pointing at `schemas/catalog.xml`.
#[test]
fn the_shipped_rules_load_with_the_shipped_catalog_and_not_without() {
    let root = drehscheibe_suite::repo_root();
    let out = std::process::Command::new(drehscheibe_suite::drehscheibe_bin())
        .args(["rules", "list", "--depot"])
        .arg(root.join("rules"))
        .arg("--catalog")
        .arg(root.join("schemas/catalog.xml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("broken"), "{stdout}{stderr}");
    assert!(stdout.contains("2.1.0"), "{stdout}");

    // Without a catalog the xdomea URI cannot be resolved: that version is
    // reported broken, with the reason — it is never used unvalidated.
    let empty = tempfile::tempdir().unwrap();
    let catalog = empty.path().join("catalog.xml");
    std::fs::write(
        &catalog,
        "<catalog xmlns=\"urn:oasis:names:tc:entity:xmlns:xml:catalog\"/>",
    )
    .unwrap();
    let out = std::process::Command::new(drehscheibe_suite::drehscheibe_bin())
        .args(["rules", "list", "--depot"])
        .arg(root.join("rules"))
        .arg("--catalog")
        .arg(&catalog)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("2.1.0 (broken)"), "{stdout}");
    assert!(
        stderr.contains("urn:xoev-de:xdomea:schema:3.1.0"),
        "the warning names the schema: {stderr}"
    );
    assert!(stderr.contains("network"), "{stderr}");
}

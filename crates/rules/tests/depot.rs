//! Depot loading, recognition, extraction, parameters and rendering.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; fine in tests

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{manifest, simple_rule, write_rule, PASS_THROUGH, XGA21_NS, XGWA21};
use drehscheibe_model::{MessageId, RuleRef};
use drehscheibe_rules::{
    Depot, DepotError, Engines, InputDocument, RenderContext, RouteError, TransformError,
    TransformOutput, Transformer, TransformerFactory,
};
use semver::{Version, VersionReq};

const XML: &str = "application/xml";

fn doc(xml: &str) -> InputDocument {
    InputDocument::parse(xml.as_bytes(), XML).unwrap()
}

fn rr(id: &str, version: &str) -> RuleRef {
    RuleRef {
        id: id.into(),
        version: version.into(),
    }
}

/// The Gewerbeanmeldung-style rule for the XGewerbeanzeige 2.1 sample.
fn gewerbe_manifest(version: &str, outputs: &str) -> String {
    format!(
        r#"id = "gewerbeanmeldung"
version = "{version}"
title = "Gewerbemeldung (XGewerbeanzeige 2.1)"

[namespaces]
xga = "{XGA21_NS}"

[match]
channels = ["portal"]
content_types = ["application/xml"]
condition = "exists(/xga:sta.gewerbemeldung.0100)"

[extract]
kommune = "string((//xga:gemeindeSchluessel/code, /*/xga:nachrichtenkopf/xga:autor/xga:behoerdenkennung/xga:kennung[@listURI = 'urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:ags']/code)[1])"
leistung = "'99050012104000'"

[[params]]
name = "aktenplan_kennzeichen"
type = "string"
required = true

[[params]]
name = "max_anlagen"
type = "integer"
default = 10

[[params]]
name = "mit_dms"
type = "boolean"

{outputs}
"#
    )
}

const FV_TRANSFORM: &str = r#"[[outputs]]
target = "fachverfahren"
transform = "fv.xsl"
content_type = "application/xml"
filename = "gewerbe-{id}.xml"

[[outputs]]
target = "dms"
content_type = "application/xml"
filename = "original-{kommune}-{leistung}.xml"
"#;

#[test]
fn recognizes_and_extracts_the_xgewerbeanzeige_sample() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", PASS_THROUGH),
    );
    simple_rule(tmp.path(), "other", "1.0.0", 0, "other");
    let depot = Depot::load(tmp.path(), None).unwrap();
    let input = InputDocument::parse(XGWA21, XML).unwrap();

    let found = depot.recognize(&input, "portal", XML).unwrap();
    assert_eq!(found.rule.rule_ref(), rr("gewerbeanmeldung", "1.0.0"));
    assert_eq!(found.kommune_key, "12052000");
    assert_eq!(found.leistung, "99050012104000");
    // Channel filter.
    assert_eq!(
        depot.recognize(&input, "dropbox", XML).unwrap_err(),
        RouteError::NoMatchingRule {
            channel: "dropbox".into(),
            content_type: XML.into()
        }
    );
    // Content type filter (parameters ignored, case-insensitive).
    assert!(depot
        .recognize(&input, "portal", "Application/XML; charset=utf-8")
        .is_ok());
    assert!(depot.recognize(&input, "portal", "text/xml").is_err());
}

#[test]
fn extraction_falls_back_and_reports_empty_keys() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", PASS_THROUGH),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let rule = depot
        .get("gewerbeanmeldung", &Version::new(1, 0, 0))
        .unwrap();

    // Without gemeindeSchluessel the author's AGS is used.
    let text = std::str::from_utf8(XGWA21).unwrap();
    let start = text.find("<xga:gemeindeSchluessel").unwrap();
    let end = text.find("</xga:gemeindeSchluessel>").unwrap() + "</xga:gemeindeSchluessel>".len();
    let without = format!("{}{}", &text[..start], &text[end..]);
    let changed = without.replace(
        "<code>12052000</code>\n            </xga:kennung>\n         </xga:behoerdenkennung>\n         <xga:erreichbarkeit>\n            <xga:kanal listVersionID=\"3\" listURI=\"urn:de:xoev:codeliste:erreichbarkeit\">\n               <code>01</code>\n            </xga:kanal>\n            <xga:kennung>miriam.musterfrau@cottbus.de",
        "<code>12052999</code>\n            </xga:kennung>\n         </xga:behoerdenkennung>\n         <xga:erreichbarkeit>\n            <xga:kanal listVersionID=\"3\" listURI=\"urn:de:xoev:codeliste:erreichbarkeit\">\n               <code>01</code>\n            </xga:kanal>\n            <xga:kennung>miriam.musterfrau@cottbus.de",
    );
    assert_ne!(changed, without, "the fixture changed shape");
    let (kommune, leistung) = rule.extract(&doc(&changed), "portal", XML).unwrap();
    assert_eq!(
        (kommune.as_str(), leistung.as_str()),
        ("12052999", "99050012104000")
    );

    // No AGS at all: MissingKommune with the expression.
    let err = rule
        .extract(
            &doc(&format!(
                "<xga:sta.gewerbemeldung.0100 xmlns:xga='{XGA21_NS}'/>"
            )),
            "portal",
            XML,
        )
        .unwrap_err();
    match err {
        RouteError::MissingKommune { rule, expression } => {
            assert_eq!(rule, rr("gewerbeanmeldung", "1.0.0"));
            assert!(expression.contains("gemeindeSchluessel"), "{expression}");
        }
        other => panic!("expected MissingKommune, got {other:?}"),
    }
}

#[test]
fn recognition_by_condition_priority_and_ambiguity() {
    let tmp = tempfile::tempdir().unwrap();
    simple_rule(tmp.path(), "alpha", "1.0.0", 0, "antrag");
    simple_rule(tmp.path(), "beta", "1.0.0", 0, "antrag");
    simple_rule(tmp.path(), "gamma", "1.0.0", 5, "antrag");
    simple_rule(tmp.path(), "delta", "1.0.0", 0, "hund");
    let depot = Depot::load(tmp.path(), None).unwrap();

    // Condition decides.
    let found = depot
        .recognize(&doc("<hund ags='01001000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.id(), "delta");
    assert_eq!(found.kommune_key, "01001000");

    // Higher priority wins over two equal lower ones.
    let found = depot
        .recognize(&doc("<antrag ags='02000000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.id(), "gamma");

    // Without gamma, alpha and beta tie.
    std::fs::remove_dir_all(tmp.path().join("gamma")).unwrap();
    let depot = Depot::load(tmp.path(), None).unwrap();
    let err = depot
        .recognize(&doc("<antrag ags='02000000'/>"), "x", XML)
        .unwrap_err();
    assert_eq!(
        err,
        RouteError::Ambiguous {
            priority: 0,
            rules: vec![rr("alpha", "1.0.0"), rr("beta", "1.0.0")]
        }
    );
    assert!(err.to_string().contains("alpha@1.0.0, beta@1.0.0"), "{err}");

    // Nothing matches.
    assert!(matches!(
        depot.recognize(&doc("<katze/>"), "x", XML),
        Err(RouteError::NoMatchingRule { .. })
    ));
    // Matches, but the key is empty.
    assert!(matches!(
        depot.recognize(&doc("<hund/>"), "x", XML),
        Err(RouteError::MissingKommune { .. })
    ));
}

#[test]
fn channel_variable_and_evaluation_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "by-channel",
        "1.0.0",
        &manifest(
            "by-channel",
            "1.0.0",
            0,
            r#"["*"]"#,
            "$channel = 'postfach-7' and $content-type = 'application/xml'",
            "'09162000'",
            "'99000000000000'",
            PASS_THROUGH,
        ),
    );
    write_rule(
        tmp.path(),
        "broken",
        "1.0.0",
        &manifest(
            "broken",
            "1.0.0",
            0,
            r#"["broken-channel"]"#,
            "(1, 2)",
            "'x'",
            "'y'",
            PASS_THROUGH,
        ),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let found = depot.recognize(&doc("<a/>"), "postfach-7", XML).unwrap();
    assert_eq!(found.rule.id(), "by-channel");
    assert_eq!(found.kommune_key, "09162000");
    assert!(depot.recognize(&doc("<a/>"), "postfach-8", XML).is_err());

    // A condition without an effective boolean value is an error, not "no".
    match depot.recognize(&doc("<a/>"), "broken-channel", XML) {
        Err(RouteError::Evaluation {
            rule,
            key,
            expression,
            message,
        }) => {
            assert_eq!(rule, rr("broken", "1.0.0"));
            assert_eq!(
                (key.as_str(), expression.as_str()),
                ("match.condition", "(1, 2)")
            );
            assert!(message.contains("FORG0006"), "{message}");
        }
        other => panic!("expected Evaluation, got {other:?}"),
    }
}

#[test]
fn json_submissions_are_routed_by_xpath() {
    let tmp = tempfile::tempdir().unwrap();
    let outputs = PASS_THROUGH.replace("application/xml", "application/json");
    write_rule(
        tmp.path(),
        "hundesteuer",
        "1.0.0",
        &manifest(
            "hundesteuer",
            "1.0.0",
            0,
            r#"["portal"]"#,
            "/fn:map/fn:string[@key='antragsart'] = 'hundesteuer-anmeldung'",
            "/fn:map/fn:map[@key='halter']/fn:string[@key='ags']",
            "'99102013000000'",
            &outputs,
        ),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let json = br#"{"antragsart":"hundesteuer-anmeldung","halter":{"name":"Eva","ags":"03241001"},"hunde":[{"name":"Bello"}]}"#;
    let input = InputDocument::parse(json, "application/json").unwrap();
    let found = depot
        .recognize(&input, "portal", "application/json")
        .unwrap();
    assert_eq!(found.rule.id(), "hundesteuer");
    assert_eq!(found.kommune_key, "03241001");
    assert_eq!(found.leistung, "99102013000000");
}

#[test]
fn folder_names_must_match_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    // Version folder 1.0.1, manifest 1.0.0.
    write_rule(
        tmp.path(),
        "alpha",
        "1.0.1",
        &manifest(
            "alpha",
            "1.0.0",
            0,
            r#"["*"]"#,
            "true()",
            "'k'",
            "'l'",
            PASS_THROUGH,
        ),
    );
    match Depot::load(tmp.path(), None).unwrap_err() {
        DepotError::FolderMismatch {
            field,
            folder,
            manifest,
            ..
        } => assert_eq!(
            (field, folder.as_str(), manifest.as_str()),
            ("version", "1.0.1", "1.0.0")
        ),
        other => panic!("expected FolderMismatch, got {other:?}"),
    }

    // Id folder differs from manifest id.
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "alpha",
        "1.0.0",
        &manifest(
            "beta",
            "1.0.0",
            0,
            r#"["*"]"#,
            "true()",
            "'k'",
            "'l'",
            PASS_THROUGH,
        ),
    );
    let err = Depot::load(tmp.path(), None).unwrap_err();
    assert!(
        matches!(&err, DepotError::FolderMismatch { field: "id", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"beta\""), "{err}");

    // Folders that are not ids or versions; hidden folders and files ignored.
    let tmp = tempfile::tempdir().unwrap();
    simple_rule(tmp.path(), "alpha", "1.0.0", 0, "a");
    std::fs::create_dir_all(tmp.path().join("alpha/latest")).unwrap();
    std::fs::create_dir_all(tmp.path().join("Bad_Id/1.0.0")).unwrap();
    std::fs::create_dir_all(tmp.path().join(".git/objects")).unwrap();
    std::fs::write(tmp.path().join("README.md"), "depot").unwrap();
    match Depot::load(tmp.path(), None).unwrap_err() {
        DepotError::Several(errors) => {
            assert_eq!(errors.len(), 2, "{errors:?}");
            assert!(errors
                .iter()
                .all(|e| matches!(e, DepotError::Layout { .. })));
        }
        other => panic!("expected Several, got {other:?}"),
    }
    // Missing depot directory.
    assert!(matches!(
        Depot::load(&tmp.path().join("missing"), None),
        Err(DepotError::Io { .. })
    ));
}

#[test]
fn versions_resolve_and_recognition_uses_the_newest_matching() {
    let tmp = tempfile::tempdir().unwrap();
    simple_rule(tmp.path(), "alpha", "1.0.0", 0, "old");
    simple_rule(tmp.path(), "alpha", "1.2.0", 0, "old");
    simple_rule(tmp.path(), "alpha", "2.0.0", 0, "new");
    simple_rule(tmp.path(), "beta", "0.1.0", 0, "beta");
    let depot = Depot::load(tmp.path(), None).unwrap();

    let versions = |ps: Vec<Arc<drehscheibe_rules::RulePackage>>| {
        ps.iter()
            .map(|p| p.rule_ref().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(depot.packages()),
        ["alpha@1.0.0", "alpha@1.2.0", "alpha@2.0.0", "beta@0.1.0"]
    );
    assert_eq!(
        versions(depot.latest_per_id()),
        ["alpha@2.0.0", "beta@0.1.0"]
    );
    let req = |s: &str| VersionReq::parse(s).unwrap();
    assert_eq!(
        depot.resolve("alpha", &req("^1")).unwrap().version(),
        &Version::new(1, 2, 0)
    );
    assert_eq!(
        depot.resolve("alpha", &req("=1.0.0")).unwrap().version(),
        &Version::new(1, 0, 0)
    );
    assert_eq!(
        depot.resolve("alpha", &req("*")).unwrap().version(),
        &Version::new(2, 0, 0)
    );
    assert!(depot.resolve("alpha", &req("^3")).is_none());
    assert!(depot.resolve("gamma", &req("*")).is_none());
    assert!(depot.get("alpha", &Version::new(1, 1, 0)).is_none());

    // The newest version whose condition holds recognises: a format only
    // the 1.x versions know goes to the newest of them.
    let found = depot.recognize(&doc("<new ags='1'/>"), "x", XML).unwrap();
    assert_eq!(found.rule.rule_ref(), rr("alpha", "2.0.0"));
    let found = depot.recognize(&doc("<old ags='1'/>"), "x", XML).unwrap();
    assert_eq!(found.rule.rule_ref(), rr("alpha", "1.2.0"));
    assert!(matches!(
        depot.recognize(&doc("<none ags='1'/>"), "x", XML),
        Err(RouteError::NoMatchingRule { .. })
    ));
    // The engine re-runs extraction with a pinned older version.
    let pinned = depot.get("alpha", &Version::new(1, 0, 0)).unwrap();
    assert_eq!(
        pinned.extract(&doc("<new ags='07'/>"), "x", XML).unwrap(),
        ("07".to_string(), "99000000000000".to_string())
    );
}

/// Defect 11 of issue 10: the version named in the audit trail must be the
/// one that ran. When the newest version matches but cannot extract the
/// keys (its paths are for a newer format) or failed to load, an older
/// version of the same rule that matches recognises the message.
#[test]
fn recognition_falls_back_to_an_older_version_that_extracts() {
    let tmp = tempfile::tempdir().unwrap();
    // 1.0.0: Kommune in @ags; 2.0.0: the same documents, Kommune in @ars.
    for (version, kommune) in [("1.0.0", "string(/*/@ags)"), ("2.0.0", "string(/*/@ars)")] {
        write_rule(
            tmp.path(),
            "hund",
            version,
            &manifest(
                "hund",
                version,
                0,
                r#"["*"]"#,
                "local-name(/*) = 'hund'",
                kommune,
                "'99000000000000'",
                PASS_THROUGH,
            ),
        );
    }
    simple_rule(tmp.path(), "katze", "1.0.0", 0, "katze");
    let depot = Depot::load(tmp.path(), None).unwrap();

    let found = depot
        .recognize(&doc("<hund ars='010010000000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.rule_ref(), rr("hund", "2.0.0"));
    assert_eq!(found.kommune_key, "010010000000");
    // Old format: 2.0.0 finds no Kommune, 1.0.0 does and is named.
    let found = depot
        .recognize(&doc("<hund ags='01001000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.rule_ref(), rr("hund", "1.0.0"));
    assert_eq!(found.kommune_key, "01001000");
    // Neither finds one: the newest version's error.
    match depot.recognize(&doc("<hund/>"), "x", XML).unwrap_err() {
        RouteError::MissingKommune { rule, .. } => assert_eq!(rule, rr("hund", "2.0.0")),
        other => panic!("expected MissingKommune, got {other:?}"),
    }
    // Another id is never a fallback.
    assert_eq!(
        depot
            .recognize(&doc("<katze ags='1'/>"), "x", XML)
            .unwrap()
            .rule
            .rule_ref(),
        rr("katze", "1.0.0")
    );

    // A newest version that cannot run (its transform needs an engine this
    // depot has none of): the older ones still route.
    let dir = write_rule(
        tmp.path(),
        "hund",
        "3.0.0",
        &manifest(
            "hund",
            "3.0.0",
            0,
            r#"["*"]"#,
            "local-name(/*) = 'hund'",
            "string(/*/@ags)",
            "'99000000000000'",
            "[[outputs]]\ntarget = \"fv\"\ntransform = \"fv.xsl\"\ncontent_type = \"application/xml\"\nfilename = \"hund.xml\"\n",
        ),
    );
    std::fs::write(dir.join("fv.xsl"), "<xsl:stylesheet/>").unwrap();
    let depot = Depot::load_lenient(tmp.path(), None).unwrap();
    assert_eq!(depot.load_errors().len(), 1, "{:?}", depot.load_errors());
    let hund3 = depot.get("hund", &Version::new(3, 0, 0)).unwrap();
    assert!(hund3.unavailable().is_some());
    let found = depot
        .recognize(&doc("<hund ars='010010000000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.rule_ref(), rr("hund", "2.0.0"));
    let found = depot
        .recognize(&doc("<hund ags='01001000'/>"), "x", XML)
        .unwrap();
    assert_eq!(found.rule.rule_ref(), rr("hund", "1.0.0"));
    // When no older version extracts either, the newest version's reason
    // (unavailable) is what the message is refused with.
    assert!(matches!(
        depot.recognize(&doc("<hund/>"), "x", XML),
        Err(RouteError::RuleUnavailable { rule, .. }) if rule == rr("hund", "3.0.0")
    ));
}

#[test]
fn transform_without_engine_fails_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", FV_TRANSFORM),
    );
    std::fs::write(dir.join("fv.xsl"), "<xsl:stylesheet/>").unwrap();
    let err = Depot::load(tmp.path(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule gewerbeanmeldung@1.0.0 output fachverfahren names transform fv.xsl but no transform engine is available"
    );
}

#[test]
fn a_declared_schema_without_a_validator_makes_the_package_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let with_schema = PASS_THROUGH.replace(
        "filename = \"in-{id}-{kommune}.xml\"",
        "filename = \"in-{id}-{kommune}.xml\"\nschema = \"out.xsd\"",
    );
    write_rule(
        tmp.path(),
        "hund",
        "1.0.0",
        &manifest(
            "hund",
            "1.0.0",
            0,
            r#"["*"]"#,
            "local-name(/*) = 'hund'",
            "string(/*/@ags)",
            "'99000000000000'",
            &with_schema,
        ),
    );
    let err = Depot::load(tmp.path(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule hund@1.0.0 declares schema out.xsd but no schema validator is available"
    );
    // Leniently loaded, it still claims its messages and cannot render
    // them: never an unvalidated delivery.
    let depot = Depot::load_lenient(tmp.path(), None).unwrap();
    let hund = depot.get("hund", &Version::new(1, 0, 0)).unwrap();
    assert!(hund.unavailable().is_some());
    let err = hund
        .render(
            &doc("<hund ags='01001000'/>"),
            b"<hund ags='01001000'/>",
            &BTreeMap::new(),
            &ctx(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no schema validator"), "{err}");
}

#[test]
fn lenient_load_keeps_the_hub_running_and_rejects_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", FV_TRANSFORM),
    );
    simple_rule(tmp.path(), "hund", "1.0.0", 0, "hund");
    write_rule(tmp.path(), "kaputt", "1.0.0", "id = \"kaputt\"\n");

    let depot = Depot::load_lenient(tmp.path(), None).unwrap();
    let errors: Vec<String> = depot
        .load_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("kaputt")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("no transform engine")),
        "{errors:?}"
    );

    // The healthy rule works.
    assert_eq!(
        depot
            .recognize(&doc("<hund ags='1'/>"), "x", XML)
            .unwrap()
            .rule
            .id(),
        "hund"
    );
    // The unavailable rule still claims its messages, with the reason.
    let input = InputDocument::parse(XGWA21, XML).unwrap();
    match depot.recognize(&input, "portal", XML).unwrap_err() {
        RouteError::RuleUnavailable { rule, reason } => {
            assert_eq!(rule, rr("gewerbeanmeldung", "1.0.0"));
            assert!(
                reason.contains("no transform engine is available"),
                "{reason}"
            );
        }
        other => panic!("expected RuleUnavailable, got {other:?}"),
    }
    // And cannot render.
    let pkg = depot
        .get("gewerbeanmeldung", &Version::new(1, 0, 0))
        .unwrap();
    assert!(pkg.unavailable().is_some());
    let err = pkg
        .render(
            &input,
            XGWA21,
            &params(&[("aktenplan_kennzeichen", "1")]),
            &ctx(),
        )
        .unwrap_err();
    assert!(matches!(err, TransformError::Unavailable(_)), "{err:?}");
    // The strict load of the same depot fails with both errors.
    assert!(matches!(
        Depot::load(tmp.path(), None),
        Err(DepotError::Several(e)) if e.len() == 2
    ));
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ctx() -> RenderContext {
    RenderContext {
        message_id: MessageId::new(),
        leistung: "99050012104000".into(),
        kommune: "12052000".into(),
        channel: "portal".into(),
        tenant: "musterstadt".into(),
        received_at: "2026-12-03T10:00:00Z".into(),
        payload_file: "antrag.xml".into(),
        attachments: Vec::new(),
    }
}

#[test]
fn params_are_checked_and_defaults_applied() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", PASS_THROUGH),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let pkg = depot.latest_per_id().remove(0);

    assert_eq!(
        pkg.check_params(&params(&[("aktenplan_kennzeichen", "32.10")]))
            .unwrap(),
        params(&[("aktenplan_kennzeichen", "32.10"), ("max_anlagen", "10")])
    );
    assert_eq!(
        pkg.check_params(&params(&[
            ("aktenplan_kennzeichen", "x"),
            ("max_anlagen", " 25 "),
            ("mit_dms", "true")
        ]))
        .unwrap(),
        params(&[
            ("aktenplan_kennzeichen", "x"),
            ("max_anlagen", "25"),
            ("mit_dms", "true")
        ])
    );
    let err = pkg
        .check_params(&params(&[
            ("max_anlagen", "viele"),
            ("mit_dms", "ja"),
            ("farbe", "rot"),
        ]))
        .unwrap_err();
    assert!(err.contains("undeclared parameter \"farbe\""), "{err}");
    assert!(
        err.contains("missing required parameter \"aktenplan_kennzeichen\""),
        "{err}"
    );
    assert!(err.contains("\"viele\" is not an integer"), "{err}");
    assert!(err.contains("\"ja\" is not a boolean"), "{err}");

    // render validates first.
    let input = InputDocument::parse(XGWA21, XML).unwrap();
    let err = pkg
        .render(&input, XGWA21, &params(&[]), &ctx())
        .unwrap_err();
    assert!(
        matches!(&err, TransformError::InvalidParams { rule, .. } if rule == "gewerbeanmeldung@1.0.0"),
        "{err:?}"
    );
}

#[test]
fn pass_through_render_returns_the_payload_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", PASS_THROUGH),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let pkg = depot.latest_per_id().remove(0);
    // Payload with a BOM, CRLF and an entity: nothing may be normalised.
    let payload = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\r\n<a x='1'>&amp;</a>\r\n";
    let input = InputDocument::parse(payload, XML).unwrap();
    let context = ctx();
    let out = pkg
        .render(
            &input,
            payload,
            &params(&[("aktenplan_kennzeichen", "1")]),
            &context,
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, "fachverfahren");
    assert_eq!(out[0].content_type, "application/xml");
    assert_eq!(out[0].bytes, Bytes::from_static(payload));
    assert_eq!(
        out[0].filename,
        format!("in-{}-12052000.xml", context.message_id)
    );
}

/// A real (if tiny) transformer for the seam: reports the root element's
/// local name and the parameters it was given.
struct RootNameTransformer {
    stylesheet: PathBuf,
}

impl Transformer for RootNameTransformer {
    fn transform(
        &self,
        input: &InputDocument,
        params: &BTreeMap<String, String>,
    ) -> Result<TransformOutput, TransformError> {
        let root = input
            .evaluate_string("local-name(/*)", &[], "", "")
            .map_err(TransformError::Failed)?;
        let name = self.stylesheet.file_name().unwrap().to_string_lossy();
        // the rule's own parameters, then the hub's reserved ones apart
        let (reserved, own): (Vec<_>, Vec<_>) = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .partition(|kv| kv.starts_with("Q{urn:x-drehscheibe:rule}"));
        let channel = reserved
            .iter()
            .find_map(|kv| kv.strip_prefix("Q{urn:x-drehscheibe:rule}channel="))
            .unwrap_or("-");
        Ok(
            TransformOutput::new(format!("{name}:{root}:{}", own.join(","))).with_messages(vec![
                format!("{} reserved, channel {channel}", reserved.len()),
            ]),
        )
    }
}

#[derive(Default)]
struct Factory {
    loaded: Mutex<Vec<PathBuf>>,
}

impl TransformerFactory for Factory {
    fn load(&self, stylesheet: &Path) -> Result<Arc<dyn Transformer>, TransformError> {
        let text = std::fs::read_to_string(stylesheet).unwrap();
        if text.contains("broken") {
            return Err(TransformError::Stylesheet {
                path: stylesheet.to_path_buf(),
                message: "XTSE0010: broken on purpose".into(),
            });
        }
        self.loaded.lock().unwrap().push(stylesheet.to_path_buf());
        Ok(Arc::new(RootNameTransformer {
            stylesheet: stylesheet.to_path_buf(),
        }))
    }
}

#[test]
fn transforms_are_loaded_once_and_called_by_render() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", FV_TRANSFORM),
    );
    std::fs::write(dir.join("fv.xsl"), "<xsl:stylesheet/>").unwrap();
    let factory = Arc::new(Factory::default());
    let depot = Depot::load(tmp.path(), Engines::new(Some(factory.clone()), None)).unwrap();
    assert_eq!(*factory.loaded.lock().unwrap(), [dir.join("fv.xsl")]);

    let input = InputDocument::parse(XGWA21, XML).unwrap();
    let found = depot.recognize(&input, "portal", XML).unwrap();
    let context = RenderContext {
        message_id: MessageId::new(),
        leistung: found.leistung.clone(),
        kommune: "../../etc/x y".into(),
        channel: "portal".into(),
        tenant: String::new(),
        received_at: String::new(),
        ..ctx()
    };
    let out = found
        .rule
        .render(
            &input,
            XGWA21,
            &params(&[("aktenplan_kennzeichen", "32.10")]),
            &context,
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].target, "fachverfahren");
    assert_eq!(
        out[0].bytes,
        Bytes::from("fv.xsl:sta.gewerbemeldung.0100:aktenplan_kennzeichen=32.10,max_anlagen=10")
    );
    // every transform gets the ten reserved parameters, and its messages
    // come back with the output
    assert_eq!(out[0].messages, ["10 reserved, channel portal"]);
    assert_eq!(
        out[0].filename,
        format!("gewerbe-{}.xml", context.message_id)
    );
    assert_eq!(out[1].target, "dms");
    assert_eq!(out[1].bytes, Bytes::from_static(XGWA21));
    // Extracted values cannot escape the target directory.
    assert_eq!(out[1].filename, "original-______etc_x_y-99050012104000.xml");

    // Missing and broken stylesheets are load errors with an engine.
    std::fs::remove_file(dir.join("fv.xsl")).unwrap();
    let err = Depot::load(tmp.path(), Engines::new(Some(factory.clone()), None)).unwrap_err();
    assert!(
        matches!(err, DepotError::StylesheetMissing { .. }),
        "{err:?}"
    );
    std::fs::write(dir.join("fv.xsl"), "broken").unwrap();
    let err = Depot::load(tmp.path(), Engines::new(Some(factory), None)).unwrap_err();
    assert!(err.to_string().contains("XTSE0010"), "{err}");
}

#[test]
fn recognition_works_from_many_threads() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "gewerbeanmeldung",
        "1.0.0",
        &gewerbe_manifest("1.0.0", PASS_THROUGH),
    );
    simple_rule(tmp.path(), "hund", "1.0.0", 0, "hund");
    let depot = Arc::new(Depot::load(tmp.path(), None).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let depot = depot.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let input = InputDocument::parse(XGWA21, XML).unwrap();
                    let found = depot.recognize(&input, "portal", XML).unwrap();
                    assert_eq!(found.kommune_key, "12052000");
                    let hund = doc(&format!("<hund ags='{i}'/>"));
                    let found = depot.recognize(&hund, "portal", XML).unwrap();
                    assert_eq!(found.kommune_key, i.to_string());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn envelope_facts_are_visible_as_meta() {
    let tmp = tempfile::tempdir().unwrap();
    write_rule(
        tmp.path(),
        "xta-any",
        "1.0.0",
        &manifest(
            "xta-any",
            "1.0.0",
            0,
            r#"["*"]"#,
            "$meta/entry[@key='xta.service'] = 'urn:xoev-de:xgewerbe:2'",
            "string(/*/@ags)",
            "string($meta/entry[@key='leika'])",
            PASS_THROUGH,
        ),
    );
    let depot = Depot::load(tmp.path(), None).unwrap();
    let xml = br#"<antrag ags="01001000"/>"#;
    let plain = InputDocument::parse(xml, "application/xml").unwrap();
    assert!(
        depot.recognize(&plain, "xta", "application/xml").is_err(),
        "without envelope facts the condition is false"
    );
    let meta = [
        ("xta.service", "urn:xoev-de:xgewerbe:2"),
        ("leika", "99050012104000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let with_meta = InputDocument::parse(xml, "application/xml")
        .unwrap()
        .with_meta(meta);
    let found = depot
        .recognize(&with_meta, "xta", "application/xml")
        .unwrap();
    assert_eq!(found.rule.id(), "xta-any");
    assert_eq!(found.kommune_key, "01001000");
    assert_eq!(found.leistung, "99050012104000");
    // The document itself is unchanged: the facts live in their own tree.
    assert_eq!(
        with_meta
            .evaluate_string("count(//*)", &[], "xta", "application/xml")
            .unwrap(),
        "1"
    );
}

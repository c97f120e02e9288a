//! `rule.toml` parsing and validation errors.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; fine in tests

mod common;

use std::path::Path;

use drehscheibe_rules::{Manifest, ManifestError, ParamType};

const FILE: &str = "rules/gewerbeanmeldung/1.0.0/rule.toml";

const GOOD: &str = r#"id = "gewerbeanmeldung"
version = "1.0.0"
title = "Gewerbeanmeldung"
description = "XGewerbeanzeige → Fachverfahren"
priority = 3

[namespaces]
xga = "http://www.xgewerbeanzeige.de/spezifikation/2.1"

[match]
channels = ["portal", "dropbox"]
content_types = ["application/xml", "Text/XML; charset=utf-8"]
condition = "exists(/xga:sta.gewerbemeldung.0100)"

[extract]
kommune = "string(//xga:gemeindeSchluessel/code)"
leistung = "'99050012104000'"

[[params]]
name = "aktenplan_kennzeichen"
type = "string"
required = true

[[params]]
name = "max_anlagen"
type = "integer"
default = 10

[[outputs]]
target = "fachverfahren"
transform = "xsl/fachverfahren.xsl"
content_type = "application/xml"
filename = "gewerbe-{id}.xml"

[[outputs]]
target = "dms"
content_type = "application/xml"
filename = "original-{kommune}-{leistung}-{id}.xml"
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new(FILE))
}

#[test]
fn a_complete_manifest_parses() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.id, "gewerbeanmeldung");
    assert_eq!(m.version, semver::Version::new(1, 0, 0));
    assert_eq!(m.priority, 3);
    assert_eq!(m.channels, ["portal", "dropbox"]);
    assert_eq!(m.content_types, ["application/xml", "text/xml"]);
    assert_eq!(m.params.len(), 2);
    assert_eq!(m.params[1].kind, ParamType::Integer);
    assert_eq!(m.params[1].default.as_deref(), Some("10"));
    assert_eq!(
        m.outputs[0].transform.as_deref(),
        Some(Path::new("xsl/fachverfahren.xsl"))
    );
    assert_eq!(m.outputs[1].transform, None);
    assert!(m.accepts("portal", "application/xml; charset=UTF-8"));
    assert!(!m.accepts("fit-connect", "application/xml"));
    assert!(!m.accepts("portal", "application/json"));
}

fn replace(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn unknown_key_is_refused_with_file_line_and_key() {
    let err = parse(&replace("priority = 3", "priority = 3\nprioritty = 4")).unwrap_err();
    let ManifestError::Syntax {
        file,
        line,
        message,
        ..
    } = &err
    else {
        panic!("expected Syntax, got {err:?}");
    };
    assert_eq!(file, Path::new(FILE));
    assert_eq!(*line, 6);
    assert!(message.contains("prioritty"), "{message}");
    assert!(err.to_string().starts_with(&format!("{FILE}:6:")), "{err}");

    // Unknown keys inside tables too.
    let err = parse(&replace("channels =", "channel = [\"x\"]\nchannels =")).unwrap_err();
    assert!(
        matches!(&err, ManifestError::Syntax { message, line: 11, .. } if message.contains("channel")),
        "{err:?}"
    );
    // Missing key.
    let err = parse(&replace("leistung = \"'99050012104000'\"", "")).unwrap_err();
    assert!(err.to_string().contains("leistung"), "{err}");
}

#[test]
fn bad_semver_is_refused() {
    let err = parse(&replace("version = \"1.0.0\"", "version = \"1.0\"")).unwrap_err();
    match &err {
        ManifestError::Invalid {
            key, line, message, ..
        } => {
            assert_eq!((key.as_str(), *line), ("version", 2));
            assert!(message.contains("\"1.0\""), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(err.to_string().contains(FILE));
}

#[test]
fn xpath_syntax_error_names_file_key_and_expression() {
    let err = parse(&replace(
        "condition = \"exists(/xga:sta.gewerbemeldung.0100)\"",
        "condition = \"exists(/xga:sta.gewerbemeldung.0100\"",
    ))
    .unwrap_err();
    match &err {
        ManifestError::XPath {
            file,
            line,
            key,
            expression,
            message,
        } => {
            assert_eq!(file, Path::new(FILE));
            assert_eq!((*line, key.as_str()), (13, "match.condition"));
            assert_eq!(expression, "exists(/xga:sta.gewerbemeldung.0100");
            assert!(message.starts_with("XPST0003"), "{message}");
        }
        other => panic!("expected XPath, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("exists(/xga:sta.gewerbemeldung.0100`"),
        "{text}"
    );

    // Unknown function and unknown prefix are compile errors too.
    let err = parse(&replace(
        "kommune = \"string(//xga:gemeindeSchluessel/code)\"",
        "kommune = \"no-such-function(1, '0')\"",
    ))
    .unwrap_err();
    assert!(
        matches!(&err, ManifestError::XPath { key, message, .. } if key == "extract.kommune" && message.contains("XPST0017")),
        "{err:?}"
    );
    let err = parse(&replace(
        "leistung = \"'99050012104000'\"",
        "leistung = \"string(/foo:x)\"",
    ))
    .unwrap_err();
    assert!(
        matches!(&err, ManifestError::XPath { key, .. } if key == "extract.leistung"),
        "{err:?}"
    );
    // The external variables are known.
    parse(&replace(
        "condition = \"exists(/xga:sta.gewerbemeldung.0100)\"",
        "condition = \"$channel = 'portal' and starts-with($content-type, 'application/')\"",
    ))
    .unwrap();
    // Other variables are not.
    let err = parse(&replace(
        "condition = \"exists(/xga:sta.gewerbemeldung.0100)\"",
        "condition = \"$tenant = 'x'\"",
    ))
    .unwrap_err();
    assert!(matches!(err, ManifestError::XPath { .. }), "{err:?}");
}

#[test]
fn invalid_values_name_their_key() {
    let cases = [
        (
            "id = \"gewerbeanmeldung\"",
            "id = \"Gewerbe_Anmeldung\"",
            "id",
        ),
        (
            "channels = [\"portal\", \"dropbox\"]",
            "channels = []",
            "match.channels",
        ),
        (
            "content_types = [\"application/xml\", \"Text/XML; charset=utf-8\"]",
            "content_types = [\"application/pdf\"]",
            "match.content_types",
        ),
        (
            "filename = \"gewerbe-{id}.xml\"",
            "filename = \"gewerbe-{tenant}.xml\"",
            "outputs[0].filename",
        ),
        (
            "filename = \"gewerbe-{id}.xml\"",
            "filename = \"../gewerbe-{id}.xml\"",
            "outputs[0].filename",
        ),
        (
            "filename = \"gewerbe-{id}.xml\"",
            "filename = \"a/b.xml\"",
            "outputs[0].filename",
        ),
        (
            "transform = \"xsl/fachverfahren.xsl\"",
            "transform = \"../other/fv.xsl\"",
            "outputs[0].transform",
        ),
        (
            "target = \"dms\"",
            "target = \"fachverfahren\"",
            "outputs[1].target",
        ),
        ("default = 10", "default = \"zehn\"", "params[1].default"),
        (
            "name = \"max_anlagen\"",
            "name = \"aktenplan_kennzeichen\"",
            "params[1].name",
        ),
        (
            "condition = \"exists(/xga:sta.gewerbemeldung.0100)\"",
            "condition = \" \"",
            "match.condition",
        ),
    ];
    for (from, to, key) in cases {
        let err = parse(&replace(from, to)).unwrap_err();
        match &err {
            ManifestError::Invalid { key: k, .. } => assert_eq!(k, key, "{to}: {err}"),
            other => panic!("{to}: expected Invalid for {key}, got {other:?}"),
        }
        assert!(err.to_string().contains(key), "{err}");
    }
    // A rule without outputs delivers nothing: refused.
    let no_outputs = GOOD.split("[[outputs]]").next().unwrap().replacen(
        "priority = 3",
        "priority = 3\noutputs = []",
        1,
    );
    let err = parse(&no_outputs).unwrap_err();
    assert!(
        matches!(&err, ManifestError::Invalid { key, .. } if key == "outputs"),
        "{err:?}"
    );
}

#[test]
fn load_reads_the_file_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::write_rule(tmp.path(), "gewerbeanmeldung", "1.0.0", GOOD);
    let m = Manifest::load(&dir.join("rule.toml")).unwrap();
    assert_eq!(m.id, "gewerbeanmeldung");
    let missing = tmp.path().join("nope/rule.toml");
    let err = Manifest::load(&missing).unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn schemas_are_declared_for_the_input_and_per_output() {
    let text = replace(
        "[extract]",
        "[input]\nschema = \"xsd/antrag.xsd\"\n\n[extract]",
    )
    .replace(
        "filename = \"gewerbe-{id}.xml\"",
        "filename = \"gewerbe-{id}.xml\"\nschema = \"urn:xoev-de:xdomea:schema:3.1.0\"",
    );
    let m = parse(&text).unwrap();
    assert_eq!(m.input_schema.as_deref(), Some("xsd/antrag.xsd"));
    assert_eq!(
        m.outputs[0].schema.as_deref(),
        Some("urn:xoev-de:xdomea:schema:3.1.0")
    );
    assert_eq!(m.outputs[1].schema, None);
    assert_eq!(parse(GOOD).unwrap().input_schema, None);
}

#[test]
fn schema_declarations_are_checked() {
    let invalid = |text: String| match parse(&text).unwrap_err() {
        ManifestError::Invalid { key, message, .. } => (key, message),
        other => panic!("expected Invalid, got {other:?}"),
    };
    // A path may not leave the package.
    let (key, message) = invalid(replace(
        "[extract]",
        "[input]\nschema = \"../shared/antrag.xsd\"\n\n[extract]",
    ));
    assert_eq!(key, "input.schema");
    assert!(message.contains("relative to the package"), "{message}");
    let (key, _) = invalid(replace(
        "filename = \"gewerbe-{id}.xml\"",
        "filename = \"gewerbe-{id}.xml\"\nschema = \"/etc/x.xsd\"",
    ));
    assert_eq!(key, "outputs[0].schema");
    // An XML schema for a CSV output is a mistake.
    let (key, message) = invalid(
        replace(
            "filename = \"gewerbe-{id}.xml\"",
            "filename = \"gewerbe-{id}.xml\"\nschema = \"x.xsd\"",
        )
        .replace(
            "transform = \"xsl/fachverfahren.xsl\"\ncontent_type = \"application/xml\"",
            "transform = \"xsl/fachverfahren.xsl\"\ncontent_type = \"text/csv\"",
        ),
    );
    assert_eq!(key, "outputs[0].schema");
    assert!(message.contains("text/csv"), "{message}");
    // An input schema needs XML payloads only.
    let (key, message) = invalid(
        replace("[extract]", "[input]\nschema = \"antrag.xsd\"\n\n[extract]").replace(
            "content_types = [\"application/xml\", \"Text/XML; charset=utf-8\"]",
            "content_types = [\"application/xml\", \"application/json\"]",
        ),
    );
    assert_eq!(key, "match.content_types");
    assert!(message.contains("application/json"), "{message}");
    // An empty location.
    let (key, _) = invalid(replace("[extract]", "[input]\nschema = \" \"\n\n[extract]"));
    assert_eq!(key, "input.schema");
}

#[test]
fn schema_uris_are_told_from_paths() {
    use drehscheibe_rules::manifest::is_schema_uri;
    for uri in [
        "urn:xoev-de:xdomea:schema:3.1.0",
        "https://example.org/a.xsd",
        "file:///x.xsd",
    ] {
        assert!(is_schema_uri(uri), "{uri}");
    }
    for path in ["antrag.xsd", "xsd/antrag.xsd", "c:x.xsd", ":x", "1a:b"] {
        assert!(!is_schema_uri(path), "{path}");
    }
}

#[test]
fn container_outputs_are_checked() {
    let container = |extra: &str| {
        replace(
            "[[outputs]]\ntarget = \"dms\"\ncontent_type = \"application/xml\"\nfilename = \"original-{kommune}-{leistung}-{id}.xml\"",
            &format!("[[outputs]]\ntarget = \"dms\"\ntransform = \"dms.xsl\"\ncontent_type = \"application/zip\"\n{extra}"),
        )
    };
    let m = parse(&container(
        "container = \"xdomea\"\nschema = \"urn:xoev-de:xdomea:schema:3.1.0\"",
    ))
    .unwrap();
    assert_eq!(
        m.outputs[1].container,
        Some(drehscheibe_rules::container::ContainerFormat::Xdomea)
    );
    assert_eq!(m.outputs[1].filename, "", "the standard names it");
    let invalid = |text: String| match parse(&text).unwrap_err() {
        ManifestError::Invalid { key, message, .. } => (key, message),
        other => panic!("expected Invalid, got {other:?}"),
    };
    let (key, message) = invalid(container("container = \"tar\""));
    assert_eq!(key, "outputs[1].container");
    assert!(message.contains("xdomea"), "{message}");
    let (key, _) = invalid(container("container = \"xdomea\"\nfilename = \"x.zip\""));
    assert_eq!(key, "outputs[1].filename");
    let (key, message) = invalid(
        container("")
            .replace(
                "\ncontent_type = \"application/zip\"\n",
                "\ncontent_type = \"application/zip\"\ncontainer = \"xdomea\"\n",
            )
            .replace("transform = \"dms.xsl\"\n", ""),
    );
    assert_eq!(key, "outputs[1].container");
    assert!(message.contains("transform"), "{message}");
    let (key, _) =
        invalid(container("container = \"xdomea\"").replace("application/zip", "application/xml"));
    assert_eq!(key, "outputs[1].content_type");
    // Without a container, a filename is still required.
    let (key, message) = invalid(container(""));
    assert_eq!(key, "outputs[1].filename");
    assert!(message.contains("missing filename"), "{message}");
}

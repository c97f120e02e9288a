//! Rule tests: canonical XML comparison, the case runner, discovery, JUnit
//! reports, and publishing into the depot.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drehscheibe_rules::testing::canonical::{canonical_pretty, xml_equal};
use drehscheibe_rules::testing::{
    discover, junit_xml, package_cases, run_case, run_path, CaseRef, CaseResult, Outcome, Target,
    LOAD_CASE,
};
use drehscheibe_rules::{
    load_package, publish, Depot, InputDocument, PublishError, TransformError, TransformOutput,
    Transformer, TransformerFactory,
};
use drehscheibe_xpath::{Document, Node, NodeKind, ParseOptions};

// ---------------------------------------------------------------------------
// A stand-in transform engine, so these tests do not depend on the XSLT
// crate: the "stylesheet" is a template. `TERMINATE <text>` terminates the
// transform with that text; otherwise `{param:NAME}` is replaced by the
// parameter's value and `{root}` by the input's root element local name.

struct Template(String);

impl Transformer for Template {
    fn transform(
        &self,
        input: &InputDocument,
        params: &BTreeMap<String, String>,
    ) -> Result<TransformOutput, TransformError> {
        if let Some(reason) = self.0.strip_prefix("TERMINATE ") {
            return Err(TransformError::Terminated(reason.trim().to_owned()));
        }
        let element = input
            .document()
            .root()
            .children()
            .find(|n| n.kind() == NodeKind::Element)
            .unwrap();
        let root = element.name().unwrap().local.clone();
        let mut out = self.0.replace("{root}", &root);
        for (name, value) in params {
            out = out.replace(&format!("{{param:{name}}}"), value);
        }
        Ok(TransformOutput::new(out.into_bytes()))
    }
}

struct TemplateFactory;

impl TransformerFactory for TemplateFactory {
    fn load(&self, stylesheet: &Path) -> Result<Arc<dyn Transformer>, TransformError> {
        let text = std::fs::read_to_string(stylesheet).map_err(|e| TransformError::Stylesheet {
            path: stylesheet.to_path_buf(),
            message: e.to_string(),
        })?;
        if text.starts_with("BROKEN") {
            return Err(TransformError::Stylesheet {
                path: stylesheet.to_path_buf(),
                message: "line 1: unsupported construct xsl:broken".into(),
            });
        }
        Ok(Arc::new(Template(text)))
    }
}

fn factory() -> Option<Arc<dyn TransformerFactory>> {
    Some(Arc::new(TemplateFactory))
}

// ---------------------------------------------------------------------------
// Package builders

const FV_TEMPLATE: &str = r#"<?xml version="1.0"?>
<fv:import xmlns:fv="urn:example:fv" ablage="{param:ablage}"><fv:art>{root}</fv:art></fv:import>"#;

const DMS_TEMPLATE: &str = "id;art\r\n1;{root}\r\n";

fn manifest(id: &str, version: &str, with_dms: bool) -> String {
    let dms = if with_dms {
        r#"
[[outputs]]
target = "dms"
transform = "dms.tpl"
content_type = "text/csv"
filename = "dms-{id}.csv"
"#
    } else {
        ""
    };
    format!(
        r#"id = "{id}"
version = "{version}"
title = "Test rule {id}"

[match]
channels = ["portal"]
content_types = ["application/xml", "application/json"]
condition = "local-name(/*) = 'antrag' or exists(/*:map)"

[extract]
kommune = "string((/antrag/@ags, /*:map/*:string[@key='ags'])[1])"
leistung = "'99000000000000'"

[[params]]
name = "ablage"
type = "string"
required = true

[[outputs]]
target = "fachverfahren"
transform = "fv.tpl"
content_type = "application/xml"
filename = "fv-{{id}}.xml"
{dms}"#
    )
}

/// Writes a package folder with both outputs (or only `fachverfahren`).
fn write_package(dir: &Path, id: &str, version: &str, with_dms: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rule.toml"), manifest(id, version, with_dms)).unwrap();
    std::fs::write(dir.join("fv.tpl"), FV_TEMPLATE).unwrap();
    std::fs::write(dir.join("dms.tpl"), DMS_TEMPLATE).unwrap();
    dir.to_path_buf()
}

/// Writes `<package>/tests/<name>/` with `case.toml`, an input and
/// expected files.
fn write_case(
    package: &Path,
    name: &str,
    case_toml: &str,
    input: (&str, &str),
    expected: &[(&str, &str)],
) -> CaseRef {
    let dir = package.join("tests").join(name);
    std::fs::create_dir_all(dir.join("expected")).unwrap();
    std::fs::write(dir.join("case.toml"), case_toml).unwrap();
    std::fs::write(dir.join(input.0), input.1).unwrap();
    for (file, content) in expected {
        std::fs::write(dir.join(file), content).unwrap();
    }
    CaseRef {
        name: name.to_owned(),
        dir,
    }
}

const INPUT: &str = r#"<antrag ags="12052000"><name>A</name></antrag>"#;

/// Expected Fachverfahren output: canonically equal to what the template
/// renders, but with another prefix, indentation and no XML declaration.
const FV_EXPECTED: &str = r#"<import xmlns="urn:example:fv" ablage="32.10">
  <art>antrag</art>
</import>
"#;

/// Expected DMS output with LF line ends (the template writes CRLF).
const DMS_EXPECTED: &str = "id;art\n1;antrag\n";

const PASSING_CASE: &str = r#"
description = "both outputs"
input = "input.xml"
channel = "portal"
[params]
ablage = "32.10"
[expect]
kommune = "12052000"
leistung = "99000000000000"
[expect.outputs]
fachverfahren = "expected/fv.xml"
dms = "expected/dms.csv"
"#;

fn passing_case(package: &Path) -> CaseRef {
    write_case(
        package,
        "both-outputs",
        PASSING_CASE,
        ("input.xml", INPUT),
        &[
            ("expected/fv.xml", FV_EXPECTED),
            ("expected/dms.csv", DMS_EXPECTED),
        ],
    )
}

fn failure(result: &CaseResult) -> (String, Option<String>) {
    match &result.outcome {
        Outcome::Passed => panic!("case {} passed unexpectedly", result.name),
        Outcome::Failed { message, diff } => (message.clone(), diff.clone()),
    }
}

fn assert_passed(result: &CaseResult) {
    if let Outcome::Failed { message, diff } = &result.outcome {
        panic!(
            "case {} failed: {message}\n{}",
            result.name,
            diff.as_deref().unwrap_or("")
        );
    }
}

// ---------------------------------------------------------------------------
// Canonical comparison

#[test]
fn canonical_prefix_change_is_equal() {
    let a = br#"<a:doc xmlns:a="urn:x" xmlns:unused="urn:u"><a:item a:k="1">t</a:item></a:doc>"#;
    let b = br#"<doc xmlns="urn:x" xmlns:z="urn:x"><item z:k="1">t</item></doc>"#;
    assert!(xml_equal(a, b).unwrap());
    assert_eq!(canonical_pretty(a).unwrap(), canonical_pretty(b).unwrap());
}

#[test]
fn canonical_attribute_order_is_irrelevant() {
    let a = br#"<d><e x="1" y="2" z="3"/></d>"#;
    let b = br#"<d><e z="3" x="1" y="2"></e></d>"#;
    assert!(xml_equal(a, b).unwrap());
    assert_eq!(
        canonical_pretty(a).unwrap(),
        "<d>\n  <e x=\"1\" y=\"2\" z=\"3\"/>\n</d>\n"
    );
}

#[test]
fn canonical_ignores_whitespace_only_text_and_declaration() {
    let a = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<d>\n  <e>v</e>\n\t<f/>\n</d>\n";
    let b = b"<d><e>v</e><f/></d>";
    assert!(xml_equal(a, b).unwrap());
}

#[test]
fn canonical_decodes_declared_encoding() {
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><d>Stra\xdfe</d>";
    let utf8 = "<d>Straße</d>".as_bytes();
    let refs = b"<d>Stra&#223;e</d>";
    assert!(xml_equal(latin1, utf8).unwrap());
    assert!(xml_equal(refs, utf8).unwrap());
}

#[test]
fn canonical_detects_text_change() {
    assert!(!xml_equal(b"<d><e>Abc</e></d>", b"<d><e>Abd</e></d>").unwrap());
    // Surrounding whitespace of non-blank text is significant.
    assert!(!xml_equal(b"<d><e>Abc</e></d>", b"<d><e> Abc</e></d>").unwrap());
    assert_eq!(
        canonical_pretty(b"<d><e> Abc</e></d>").unwrap(),
        "<d>\n  <e>&#32;Abc</e>\n</d>\n"
    );
}

#[test]
fn canonical_detects_namespace_uri_change() {
    let a = br#"<p:d xmlns:p="urn:one"/>"#;
    let b = br#"<p:d xmlns:p="urn:two"/>"#;
    assert!(!xml_equal(a, b).unwrap());
    assert!(!xml_equal(br#"<d xmlns="urn:one"/>"#, b"<d/>").unwrap());
    // Attributes too.
    assert!(!xml_equal(br#"<d xmlns:p="urn:one" p:a="1"/>"#, br#"<d a="1"/>"#).unwrap());
    assert_eq!(canonical_pretty(a).unwrap(), "<{urn:one}d/>\n");
    // The pretty form leaves out a namespace inherited from the parent and
    // marks every switch, so a moved namespace is visible in a diff.
    assert_eq!(
        canonical_pretty(
            br#"<d xmlns="urn:one" xmlns:q="urn:q"><e q:a="1"/><f xmlns=""/><p:g xmlns:p="urn:two"/></d>"#
        )
        .unwrap(),
        "<{urn:one}d>\n  <e {urn:q}a=\"1\"/>\n  <{}f/>\n  <{urn:two}g/>\n</{urn:one}d>\n"
    );
}

#[test]
fn canonical_detects_attribute_comment_pi_and_structure_changes() {
    assert!(!xml_equal(br#"<d a="1"/>"#, br#"<d a="2"/>"#).unwrap());
    assert!(!xml_equal(br#"<d a="1"/>"#, br#"<d a="1" b="1"/>"#).unwrap());
    assert!(!xml_equal(b"<d><!--x--></d>", b"<d><!--y--></d>").unwrap());
    assert!(!xml_equal(b"<d><?p a?></d>", b"<d><?p b?></d>").unwrap());
    assert!(!xml_equal(b"<d><e/><f/></d>", b"<d><f/><e/></d>").unwrap());
    assert!(!xml_equal(b"<d><e/></d>", b"<d><e/><e/></d>").unwrap());
}

#[test]
fn canonical_refuses_malformed_xml() {
    let e = xml_equal(b"<d>", b"<d/>").unwrap_err();
    assert!(e.to_string().contains("not well-formed"), "{e}");
    assert!(canonical_pretty(b"<!DOCTYPE d><d/>").is_err());
}

// ---------------------------------------------------------------------------
// Case runner

#[test]
fn passing_case_with_xml_and_text_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = passing_case(&pkg);
    let package = load_package(&pkg, factory()).unwrap();
    let result = run_case(&package, &case);
    assert_passed(&result);
    assert_eq!(result.package, "antrag@1.0.0");
    assert_eq!(result.name, "both-outputs");
}

#[test]
fn changed_xml_output_fails_with_canonical_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = passing_case(&pkg);
    std::fs::write(
        case.dir.join("expected/fv.xml"),
        FV_EXPECTED.replace("<art>antrag</art>", "<art>antrag2</art>"),
    )
    .unwrap();
    let package = load_package(&pkg, factory()).unwrap();
    let (message, diff) = failure(&run_case(&package, &case));
    assert!(message.contains("output fachverfahren"), "{message}");
    let diff = diff.unwrap();
    assert!(diff.contains("-  <art>antrag2</art>"), "{diff}");
    assert!(diff.contains("+  <art>antrag</art>"), "{diff}");
}

#[test]
fn changed_text_output_fails_with_unified_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = passing_case(&pkg);
    std::fs::write(case.dir.join("expected/dms.csv"), "id;art\n1;anderes\n").unwrap();
    let package = load_package(&pkg, factory()).unwrap();
    let (message, diff) = failure(&run_case(&package, &case));
    assert!(message.contains("output dms"), "{message}");
    let diff = diff.unwrap();
    assert!(diff.contains("-1;anderes\n"), "{diff}");
    assert!(diff.contains("+1;antrag\n"), "{diff}");
    assert!(diff.contains("@@"), "{diff}");
}

#[test]
fn uncovered_output_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = write_case(
        &pkg,
        "only-fv",
        &PASSING_CASE.replace("dms = \"expected/dms.csv\"\n", ""),
        ("input.xml", INPUT),
        &[("expected/fv.xml", FV_EXPECTED)],
    );
    let package = load_package(&pkg, factory()).unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert_eq!(message, "output dms not covered by the case");
}

#[test]
fn expected_output_the_package_does_not_produce_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", false);
    let case = passing_case(&pkg);
    let package = load_package(&pkg, factory()).unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert!(message.contains("expects output dms"), "{message}");
}

#[test]
fn wrong_kommune_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = passing_case(&pkg);
    std::fs::write(
        case.dir.join("case.toml"),
        PASSING_CASE.replace("kommune = \"12052000\"", "kommune = \"09162000\""),
    )
    .unwrap();
    let package = load_package(&pkg, factory()).unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert_eq!(
        message,
        "kommune: expected \"09162000\", extracted \"12052000\""
    );
}

#[test]
fn params_are_checked_and_reach_the_transform() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let case = passing_case(&pkg);
    let package = load_package(&pkg, factory()).unwrap();

    // A different parameter value changes the output → mismatch.
    std::fs::write(
        case.dir.join("case.toml"),
        PASSING_CASE.replace("ablage = \"32.10\"", "ablage = 33"),
    )
    .unwrap();
    let (message, diff) = failure(&run_case(&package, &case));
    assert!(message.contains("output fachverfahren"), "{message}");
    assert!(diff.unwrap().contains("ablage=\"33\""));

    // A missing required parameter is reported as such.
    std::fs::write(
        case.dir.join("case.toml"),
        PASSING_CASE.replace("ablage = \"32.10\"", ""),
    )
    .unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert!(
        message.starts_with("params: missing required parameter \"ablage\""),
        "{message}"
    );
}

#[test]
fn terminated_case_passes_and_checks_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", false);
    std::fs::write(pkg.join("fv.tpl"), "TERMINATE Gewerbe ohne Betriebsstätte").unwrap();
    let toml = r#"
input = "input.xml"
channel = "portal"
params = { ablage = "x" }
[expect]
terminated = "ohne Betriebsstätte"
"#;
    let case = write_case(&pkg, "refused", toml, ("input.xml", INPUT), &[]);
    let package = load_package(&pkg, factory()).unwrap();
    assert_passed(&run_case(&package, &case));

    std::fs::write(
        case.dir.join("case.toml"),
        toml.replace("ohne Betriebsstätte", "ohne Namen"),
    )
    .unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert!(
        message.contains("terminated with \"Gewerbe ohne Betriebsstätte\""),
        "{message}"
    );

    // A rule that renders normally fails a `terminated` case.
    let other = write_package(&tmp.path().join("ok"), "antrag", "1.0.0", false);
    let case = write_case(&other, "refused", toml, ("input.xml", INPUT), &[]);
    let package = load_package(&other, factory()).unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert!(message.contains("rendered its outputs"), "{message}");
}

#[test]
fn not_recognised_case() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    let toml = r#"
input = "other.xml"
channel = "portal"
[expect]
not_recognised = true
"#;
    let case = write_case(&pkg, "foreign", toml, ("other.xml", "<rechnung/>"), &[]);
    let package = load_package(&pkg, factory()).unwrap();
    assert_passed(&run_case(&package, &case));

    // The right document on a channel the rule does not listen to is not
    // recognised either (the default channel is "test").
    std::fs::write(case.dir.join("other.xml"), INPUT).unwrap();
    std::fs::write(
        case.dir.join("case.toml"),
        toml.replace("channel = \"portal\"\n", ""),
    )
    .unwrap();
    assert_passed(&run_case(&package, &case));

    // On its channel it is recognised → the case fails.
    std::fs::write(case.dir.join("case.toml"), toml).unwrap();
    let (message, _) = failure(&run_case(&package, &case));
    assert!(
        message.contains("expected the input not to be recognised"),
        "{message}"
    );
}

#[test]
fn json_input_by_extension() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", false);
    let toml = r#"
input = "antrag.json"
channel = "portal"
params = { ablage = "32.10" }
[expect]
kommune = "12052000"
outputs = { fachverfahren = "expected/fv.xml" }
"#;
    let case = write_case(
        &pkg,
        "json",
        toml,
        ("antrag.json", r#"{"ags": "12052000"}"#),
        &[(
            "expected/fv.xml",
            r#"<import xmlns="urn:example:fv" ablage="32.10"><art>map</art></import>"#,
        )],
    );
    let package = load_package(&pkg, factory()).unwrap();
    assert_passed(&run_case(&package, &case));
}

#[test]
fn malformed_case_files_fail_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", false);
    let package = load_package(&pkg, factory()).unwrap();
    let cases = [
        (
            "unknown-key",
            "input = \"input.xml\"\nchanel = \"portal\"\n[expect]\nnot_recognised = true\n",
            "chanel",
        ),
        (
            "no-expectation",
            "input = \"input.xml\"\n[expect]\nkommune = \"1\"\n",
            "needs one of outputs, terminated, not_recognised = true or invalid_input",
        ),
        (
            "two-expectations",
            "input = \"input.xml\"\n[expect]\nterminated = \"x\"\nnot_recognised = true\n",
            "only one of",
        ),
        (
            "unknown-extension",
            "input = \"input.txt\"\n[expect]\nnot_recognised = true\n",
            "set content_type",
        ),
        (
            "missing-input",
            "input = \"nowhere.xml\"\n[expect]\nnot_recognised = true\n",
            "nowhere.xml: cannot read",
        ),
    ];
    for (name, toml, want) in cases {
        let case = write_case(&pkg, name, toml, ("input.xml", INPUT), &[]);
        let (message, _) = failure(&run_case(&package, &case));
        assert!(message.contains(want), "{name}: {message}");
    }
    // DOCTYPE input is refused like the hub refuses it.
    let case = write_case(
        &pkg,
        "doctype",
        "input = \"input.xml\"\n[expect]\nnot_recognised = true\n",
        ("input.xml", "<!DOCTYPE antrag><antrag/>"),
        &[],
    );
    let (message, _) = failure(&run_case(&package, &case));
    assert!(message.contains("DOCTYPE"), "{message}");
}

// ---------------------------------------------------------------------------
// Discovery and whole-depot runs

#[test]
fn discover_depot_package_tests_folder_and_case() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    let pkg = write_package(&depot.join("antrag/1.0.0"), "antrag", "1.0.0", true);
    passing_case(&pkg);
    write_case(&pkg, "a-first", PASSING_CASE, ("input.xml", INPUT), &[]);
    // Not cases: no case.toml, hidden, a plain file.
    std::fs::create_dir_all(pkg.join("tests/shared")).unwrap();
    std::fs::create_dir_all(pkg.join("tests/.hidden")).unwrap();
    std::fs::write(pkg.join("tests/.hidden/case.toml"), "").unwrap();
    std::fs::write(pkg.join("tests/README"), "").unwrap();

    assert_eq!(discover(&depot).unwrap(), Target::Depot(depot.clone()));
    let names = |t: Target| match t {
        Target::Package { dir, cases } => {
            assert_eq!(dir, pkg);
            cases.into_iter().map(|c| c.name).collect::<Vec<_>>()
        }
        Target::Depot(_) => panic!("not a package"),
    };
    assert_eq!(names(discover(&pkg).unwrap()), ["a-first", "both-outputs"]);
    assert_eq!(
        names(discover(&pkg.join("tests")).unwrap()),
        ["a-first", "both-outputs"]
    );
    assert_eq!(
        names(discover(&pkg.join("tests/both-outputs")).unwrap()),
        ["both-outputs"]
    );
    assert_eq!(package_cases(&pkg).unwrap().len(), 2);

    assert!(discover(&pkg.join("rule.toml")).is_err());
    let stray = tmp.path().join("stray/case");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("case.toml"), "").unwrap();
    let e = discover(&stray).unwrap_err();
    assert!(e.to_string().contains("<package>/tests/<case>"), "{e}");
}

#[test]
fn depot_run_reports_cases_and_broken_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    let good = write_package(&depot.join("antrag/1.0.0"), "antrag", "1.0.0", true);
    passing_case(&good);
    // A second version whose expected output is wrong.
    let v2 = write_package(&depot.join("antrag/1.1.0"), "antrag", "1.1.0", true);
    let case = passing_case(&v2);
    std::fs::write(case.dir.join("expected/dms.csv"), "x\n").unwrap();
    // A package whose stylesheet does not load.
    let broken = write_package(&depot.join("kaputt/1.0.0"), "kaputt", "1.0.0", false);
    std::fs::write(broken.join("fv.tpl"), "BROKEN").unwrap();
    passing_case(&broken);
    // A package whose manifest is invalid.
    std::fs::create_dir_all(depot.join("schief/1.0.0")).unwrap();
    std::fs::write(depot.join("schief/1.0.0/rule.toml"), "id = 1").unwrap();
    // Leftover of an interrupted publish: ignored.
    write_package(
        &depot.join(".publish-tmp-antrag-9.9.9-1-2"),
        "antrag",
        "9.9.9",
        true,
    );

    let mut seen = Vec::new();
    let results = run_path(&depot, factory(), |r| seen.push(r.name.clone())).unwrap();
    let summary: Vec<(String, String, bool)> = results
        .iter()
        .map(|r| (r.package.clone(), r.name.clone(), r.passed()))
        .collect();
    assert_eq!(
        summary,
        [
            ("depot".into(), LOAD_CASE.into(), false),
            ("antrag@1.0.0".into(), "both-outputs".into(), true),
            ("antrag@1.1.0".into(), "both-outputs".into(), false),
            ("kaputt@1.0.0".into(), LOAD_CASE.into(), false),
        ]
    );
    assert_eq!(seen.len(), 4, "report is called for every result");
    let (message, _) = failure(&results[0]);
    assert!(message.contains("schief"), "{message}");
    let (message, _) = failure(&results[3]);
    assert!(message.contains("xsl:broken"), "{message}");

    // The package folder alone: loaded strictly.
    let results = run_path(&broken, factory(), |_| {}).unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, LOAD_CASE);
    let results = run_path(&good, factory(), |_| {}).unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].passed());
}

#[test]
fn depot_load_ignores_hidden_folders_and_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    let pkg = write_package(&depot.join("antrag/1.0.0"), "antrag", "1.0.0", true);
    passing_case(&pkg);
    // A case folder holding something that looks like a package.
    std::fs::write(pkg.join("tests/both-outputs/rule.toml"), "not toml [").unwrap();
    write_package(&depot.join(".publish-tmp-x"), "antrag", "2.0.0", true);
    std::fs::create_dir_all(depot.join("antrag/.publish-tmp-y")).unwrap();
    let loaded = Depot::load(&depot, factory()).unwrap();
    let refs: Vec<String> = loaded
        .packages()
        .iter()
        .map(|p| p.rule_ref().to_string())
        .collect();
    assert_eq!(refs, ["antrag@1.0.0"]);
}

// ---------------------------------------------------------------------------
// JUnit

#[test]
fn junit_xml_is_well_formed_and_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    let good = write_package(&depot.join("antrag/1.0.0"), "antrag", "1.0.0", true);
    passing_case(&good);
    let case = write_case(&good, "zz-bad", PASSING_CASE, ("input.xml", INPUT), &[]);
    std::fs::write(case.dir.join("expected/fv.xml"), "<x a=\"&lt;&amp;\"/>").unwrap();
    std::fs::write(case.dir.join("expected/dms.csv"), "\u{1}ctrl & <tag>\n").unwrap();
    let other = write_package(&depot.join("other/2.0.0"), "other", "2.0.0", true);
    passing_case(&other);

    let results = run_path(&depot, factory(), |_| {}).unwrap();
    assert_eq!(results.len(), 3);
    let xml = junit_xml(&results);

    let doc = Document::parse_str(&xml, &ParseOptions::default()).unwrap();
    fn elements(n: Node<'_>) -> Vec<Node<'_>> {
        n.children()
            .filter(|c| c.kind() == NodeKind::Element)
            .collect()
    }
    let name = |n: Node<'_>| n.name().unwrap().local.clone();
    let attr = |n: Node<'_>, a: &str| n.attribute("", a).map(str::to_owned);
    let root = elements(doc.root())[0];
    assert_eq!(name(root), "testsuites");
    assert_eq!(attr(root, "tests").as_deref(), Some("3"));
    assert_eq!(attr(root, "failures").as_deref(), Some("1"));
    let suites = elements(root);
    assert_eq!(suites.len(), 2);
    assert_eq!(attr(suites[0], "name").as_deref(), Some("antrag@1.0.0"));
    assert_eq!(attr(suites[0], "tests").as_deref(), Some("2"));
    assert_eq!(attr(suites[0], "failures").as_deref(), Some("1"));
    assert_eq!(attr(suites[1], "name").as_deref(), Some("other@2.0.0"));
    let cases = elements(suites[0]);
    assert_eq!(attr(cases[0], "name").as_deref(), Some("both-outputs"));
    assert_eq!(attr(cases[1], "classname").as_deref(), Some("antrag@1.0.0"));
    assert_eq!(elements(cases[0]).len(), 0);
    let failure_el = elements(cases[1])[0];
    assert_eq!(name(failure_el), "failure");
    let message = attr(failure_el, "message").unwrap();
    assert!(message.contains("output fachverfahren"), "{message}");
    assert!(message.contains('\n'), "multi-line message kept: {message}");
    let body = failure_el.string_value().to_owned();
    assert!(body.contains("+++ actual output dms"), "{body}");
    assert!(body.contains("-\u{FFFD}ctrl & <tag>"), "{body}");
}

// ---------------------------------------------------------------------------
// Publishing

#[test]
fn publish_copies_and_refuses_the_same_version() {
    let tmp = tempfile::tempdir().unwrap();
    let src = write_package(&tmp.path().join("work"), "antrag", "1.2.0", true);
    passing_case(&src);
    std::fs::write(src.join(".editor-swap"), "x").unwrap();
    let depot = tmp.path().join("rules");

    let published = publish(&src, &depot, factory()).unwrap();
    assert_eq!(published.rule.to_string(), "antrag@1.2.0");
    assert_eq!(published.path, depot.join("antrag/1.2.0"));
    assert_eq!(published.results.len(), 1);
    for file in [
        "rule.toml",
        "fv.tpl",
        "dms.tpl",
        "tests/both-outputs/case.toml",
        "tests/both-outputs/expected/fv.xml",
    ] {
        assert_eq!(
            std::fs::read(src.join(file)).unwrap(),
            std::fs::read(published.path.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(!published.path.join(".editor-swap").exists());
    // No temporary folder left behind; the depot loads with the package.
    let leftovers: Vec<_> = std::fs::read_dir(&depot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["antrag"]);
    let loaded = Depot::load(&depot, factory()).unwrap();
    assert_eq!(loaded.packages().len(), 1);

    // Same version again: refused, the published copy is untouched.
    std::fs::write(src.join("dms.tpl"), "changed").unwrap();
    std::fs::write(src.join("tests/both-outputs/expected/dms.csv"), "changed").unwrap();
    let e = publish(&src, &depot, factory()).unwrap_err();
    assert!(matches!(e, PublishError::VersionExists { .. }), "{e}");
    assert!(e
        .to_string()
        .contains("versions are immutable; publish a new version"));
    assert_eq!(
        std::fs::read_to_string(published.path.join("dms.tpl")).unwrap(),
        DMS_TEMPLATE
    );
}

#[test]
fn publish_refuses_failing_tests_and_invalid_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");

    let src = write_package(&tmp.path().join("failing"), "antrag", "1.0.0", true);
    let case = passing_case(&src);
    std::fs::write(case.dir.join("expected/dms.csv"), "anders\n").unwrap();
    let e = publish(&src, &depot, factory()).unwrap_err();
    match &e {
        PublishError::TestsFailed { total, failed, .. } => {
            assert_eq!(*total, 1);
            assert_eq!(failed[0].name, "both-outputs");
        }
        other => panic!("unexpected: {other}"),
    }
    assert!(!depot.join("antrag/1.0.0").exists());

    let src = write_package(&tmp.path().join("broken"), "antrag", "1.0.0", false);
    std::fs::write(src.join("fv.tpl"), "BROKEN").unwrap();
    let e = publish(&src, &depot, factory()).unwrap_err();
    assert!(matches!(e, PublishError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("xsl:broken"), "{e}");

    let src = write_package(&tmp.path().join("xpath"), "antrag", "1.0.0", false);
    let text = std::fs::read_to_string(src.join("rule.toml"))
        .unwrap()
        .replace("local-name(/*) = 'antrag'", "local-name(/*) = = 'antrag'");
    std::fs::write(src.join("rule.toml"), text).unwrap();
    let e = publish(&src, &depot, factory()).unwrap_err();
    assert!(e.to_string().contains("does not compile"), "{e}");

    // Without a transform engine a package with stylesheets is invalid.
    let src = write_package(&tmp.path().join("ok"), "antrag", "1.0.0", false);
    assert!(matches!(
        publish(&src, &depot, None),
        Err(PublishError::Invalid { .. })
    ));
    assert!(!depot.join("antrag/1.0.0").exists());
}

#[cfg(unix)]
#[test]
fn publish_refuses_symlinks_and_leaves_no_temporary_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    let src = write_package(&tmp.path().join("work"), "antrag", "1.0.0", false);
    std::os::unix::fs::symlink(src.join("fv.tpl"), src.join("zz-link.tpl")).unwrap();
    let e = publish(&src, &depot, factory()).unwrap_err();
    assert!(matches!(e, PublishError::Unpublishable { .. }), "{e}");
    assert!(!depot.join("antrag/1.0.0").exists());
    let hidden: Vec<_> = std::fs::read_dir(&depot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn cases_can_supply_envelope_facts_for_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "antrag", "1.0.0", true);
    // The package's condition ignores $meta, so facts must not disturb it;
    // a condition that needs a fact fails without it (see tests/depot.rs).
    let with_meta = PASSING_CASE.replace(
        "[params]",
        "[meta]\n\"xta.service\" = \"urn:example\"\n[params]",
    );
    let case = write_case(
        &pkg,
        "with-meta",
        &with_meta,
        ("input.xml", INPUT),
        &[
            ("expected/fv.xml", FV_EXPECTED),
            ("expected/dms.csv", DMS_EXPECTED),
        ],
    );
    let package = load_package(&pkg, factory()).unwrap();
    assert_passed(&run_case(&package, &case));

    let bad = write_case(
        &pkg,
        "bad-meta",
        &PASSING_CASE.replace("[params]", "[meta]\nn = 1\n[params]"),
        ("input.xml", INPUT),
        &[],
    );
    let (message, _) = failure(&run_case(&package, &bad));
    assert!(message.contains("meta"), "{message}");
}

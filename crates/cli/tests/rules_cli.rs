//! The rule author's commands of the real binary: `rules test`,
//! `transform`, `rules publish` and `rules list`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn drehscheibe(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drehscheibe"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const STYLESHEET: &str = r#"<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:fv="urn:example:fv">
  <xsl:output method="xml" indent="yes"/>
  <xsl:param name="ablage" select="'none'"/>
  <xsl:template match="/antrag">
    <xsl:if test="not(name)">
      <xsl:message terminate="yes">Antrag ohne Namen</xsl:message>
    </xsl:if>
    <fv:import ablage="{$ablage}">
      <fv:name><xsl:value-of select="name"/></fv:name>
      <fv:ags><xsl:value-of select="@ags"/></fv:ags>
    </fv:import>
  </xsl:template>
</xsl:stylesheet>
"#;

const MANIFEST: &str = r#"id = "antrag"
version = "1.0.0"
title = "Antrag → Fachverfahren"

[match]
channels = ["portal"]
content_types = ["application/xml"]
condition = "local-name(/*) = 'antrag'"

[extract]
kommune = "string(/antrag/@ags)"
leistung = "'99000000000000'"

[[params]]
name = "ablage"
type = "string"
required = true

[[outputs]]
target = "fachverfahren"
transform = "fachverfahren.xsl"
content_type = "application/xml"
filename = "fv-{id}.xml"
"#;

const CASE: &str = r#"description = "a plain Antrag"
input = "input.xml"
channel = "portal"
[params]
ablage = "32.10"
[expect]
kommune = "12052000"
leistung = "99000000000000"
[expect.outputs]
fachverfahren = "expected/fachverfahren.xml"
"#;

const INPUT: &str = r#"<antrag ags="12052000"><name>Erika Muster</name></antrag>"#;

/// Canonically equal to the stylesheet's result, written differently
/// (default namespace, no declaration, other indentation).
const EXPECTED: &str = r#"<import xmlns="urn:example:fv" ablage="32.10"><name>Erika Muster</name>
<ags>12052000</ags></import>"#;

/// A package folder with one passing case, `<dir>/tests/plain/`.
fn write_package(dir: &Path, version: &str) -> PathBuf {
    let case = dir.join("tests/plain");
    std::fs::create_dir_all(case.join("expected")).unwrap();
    std::fs::write(
        dir.join("rule.toml"),
        MANIFEST.replace("version = \"1.0.0\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    std::fs::write(dir.join("fachverfahren.xsl"), STYLESHEET).unwrap();
    std::fs::write(case.join("case.toml"), CASE).unwrap();
    std::fs::write(case.join("input.xml"), INPUT).unwrap();
    std::fs::write(case.join("expected/fachverfahren.xml"), EXPECTED).unwrap();
    dir.to_path_buf()
}

#[test]
fn rules_test_passes_then_fails_with_diff_and_junit() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = write_package(&tmp.path().join("pkg"), "1.0.0");

    let out = drehscheibe(&["rules", "test", "pkg"], tmp.path());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("ok   antrag@1.0.0 plain\n"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 0 failed"));

    // Break the expected file: failure, diff, exit 1, JUnit report.
    std::fs::write(
        pkg.join("tests/plain/expected/fachverfahren.xml"),
        EXPECTED.replace("Erika Muster", "Max Muster"),
    )
    .unwrap();
    let out = drehscheibe(
        &["rules", "test", "pkg/tests/plain", "--junit", "report.xml"],
        tmp.path(),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL antrag@1.0.0 plain\n"), "{text}");
    assert!(text.contains("output fachverfahren"), "{text}");
    assert!(text.contains("-  <name>Max Muster</name>"), "{text}");
    assert!(text.contains("+  <name>Erika Muster</name>"), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 1 failed"));
    let junit = std::fs::read_to_string(tmp.path().join("report.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"antrag@1.0.0\" tests=\"1\" failures=\"1\""));
    assert!(junit.contains("<testcase name=\"plain\" classname=\"antrag@1.0.0\""));
    assert!(
        junit.contains("<failure message=\"output fachverfahren"),
        "{junit}"
    );
    assert!(junit.contains("+  &lt;name&gt;Erika Muster"), "{junit}");
}

#[test]
fn rules_test_on_a_depot_reports_broken_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let depot = tmp.path().join("rules");
    write_package(&depot.join("antrag/1.0.0"), "1.0.0");
    let broken = write_package(&depot.join("antrag/1.1.0"), "1.1.0");
    std::fs::write(
        broken.join("fachverfahren.xsl"),
        STYLESHEET.replace("<xsl:if ", "<xsl:evaluate xpath=\"'x'\"/><xsl:if "),
    )
    .unwrap();

    // Default PATH is `rules`.
    let out = drehscheibe(&["rules", "test"], tmp.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ok   antrag@1.0.0 plain"), "{text}");
    assert!(text.contains("FAIL antrag@1.1.0 (load)"), "{text}");
    assert!(text.contains("xsl:evaluate"), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"));

    let out = drehscheibe(&["rules", "test", "nowhere"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a folder"), "{}", stderr(&out));
}

#[test]
fn transform_writes_the_result_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.xsl"), STYLESHEET).unwrap();
    std::fs::write(tmp.path().join("in.xml"), INPUT).unwrap();
    let out = drehscheibe(
        &[
            "transform",
            "--stylesheet",
            "s.xsl",
            "--input",
            "in.xml",
            "--param",
            "ablage=99.1",
        ],
        tmp.path(),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("ablage=\"99.1\""), "{text}");
    assert!(text.contains(">Erika Muster</fv:name>"), "{text}");
    assert!(text.contains("xmlns:fv=\"urn:example:fv\""), "{text}");

    // JSON input is offered in its json-to-xml form.
    std::fs::write(
        tmp.path().join("j.xsl"),
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
            xmlns:j="http://www.w3.org/2005/xpath-functions">
          <xsl:output method="text"/>
          <xsl:template match="/">Hund: <xsl:value-of select="/j:map/j:string[@key='hund']"/></xsl:template>
        </xsl:stylesheet>"#,
    )
    .unwrap();
    std::fs::write(tmp.path().join("in.json"), r#"{"hund": "Bello"}"#).unwrap();
    let out = drehscheibe(
        &["transform", "--stylesheet", "j.xsl", "--input", "in.json"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hund: Bello");

    // xsl:message terminate="yes": non-zero exit, reason on stderr.
    std::fs::write(tmp.path().join("noname.xml"), "<antrag ags=\"1\"/>").unwrap();
    let out = drehscheibe(
        &[
            "transform",
            "--stylesheet",
            "s.xsl",
            "--input",
            "noname.xml",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("Antrag ohne Namen"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn transform_fails_on_a_broken_stylesheet_or_input() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("broken.xsl"),
        STYLESHEET.replace("</xsl:template>", ""),
    )
    .unwrap();
    std::fs::write(tmp.path().join("in.xml"), INPUT).unwrap();
    let out = drehscheibe(
        &[
            "transform",
            "--stylesheet",
            "broken.xsl",
            "--input",
            "in.xml",
        ],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("broken.xsl"), "{}", stderr(&out));

    std::fs::write(tmp.path().join("s.xsl"), STYLESHEET).unwrap();
    std::fs::write(tmp.path().join("dtd.xml"), "<!DOCTYPE a><antrag/>").unwrap();
    let out = drehscheibe(
        &["transform", "--stylesheet", "s.xsl", "--input", "dtd.xml"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("DOCTYPE"), "{}", stderr(&out));

    let out = drehscheibe(
        &[
            "transform",
            "--stylesheet",
            "s.xsl",
            "--input",
            "in.xml",
            "--param",
            "novalue",
        ],
        tmp.path(),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("name=value"), "{}", stderr(&out));
}

#[test]
fn publish_copies_refuses_the_same_version_and_failing_tests() {
    let tmp = tempfile::tempdir().unwrap();
    write_package(&tmp.path().join("work"), "1.0.0");

    let out = drehscheibe(&["rules", "publish", "work"], tmp.path());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("published antrag@1.0.0 to rules/antrag/1.0.0 (1 test cases passed)"),
        "{}",
        stdout(&out)
    );
    let published = tmp.path().join("rules/antrag/1.0.0");
    assert_eq!(
        std::fs::read_to_string(published.join("fachverfahren.xsl")).unwrap(),
        STYLESHEET
    );
    assert!(published
        .join("tests/plain/expected/fachverfahren.xml")
        .is_file());

    // The published package's tests run from the depot.
    let out = drehscheibe(&["rules", "test"], tmp.path());
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out).lines().last(), Some("1 passed, 0 failed"));

    // Same version again: refused, nothing changed.
    std::fs::write(tmp.path().join("work/fachverfahren.xsl"), "changed").unwrap();
    let out = drehscheibe(&["rules", "publish", "work"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("versions are immutable; publish a new version"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(published.join("fachverfahren.xsl")).unwrap(),
        STYLESHEET
    );

    // A new version whose test fails is refused with the failure shown.
    let next = write_package(&tmp.path().join("next"), "1.1.0");
    std::fs::write(
        next.join("tests/plain/expected/fachverfahren.xml"),
        EXPECTED.replace("32.10", "00.00"),
    )
    .unwrap();
    let out = drehscheibe(
        &["rules", "publish", "next", "--depot", "rules"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL antrag@1.1.0 plain"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("ablage=\"00.00\""),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("1 of 1 test cases failed"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("rules/antrag/1.1.0").exists());

    // Fixed, it publishes; the list shows both versions.
    std::fs::write(
        next.join("tests/plain/expected/fachverfahren.xml"),
        EXPECTED,
    )
    .unwrap();
    let out = drehscheibe(&["rules", "publish", "next"], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = drehscheibe(&["rules", "list"], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().find(|l| l.starts_with("antrag ")).unwrap();
    assert!(row.contains("1.0.0, 1.1.0"), "{text}");
    assert!(row.contains("Antrag → Fachverfahren"), "{text}");
    let hidden: Vec<_> = std::fs::read_dir(tmp.path().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// `drehscheibe` is a front (src/front.rs): it runs `transform` itself and
/// replaces itself with `drehscheibe-hub` beside it for everything else.
#[test]
fn the_front_runs_transform_itself_and_hands_every_other_command_to_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let front = bin.join("drehscheibe");
    std::fs::copy(env!("CARGO_BIN_EXE_drehscheibe"), &front).unwrap();
    std::fs::write(tmp.path().join("s.xsl"), STYLESHEET).unwrap();
    std::fs::write(tmp.path().join("in.xml"), INPUT).unwrap();
    let run = |args: &[&str]| {
        Command::new(&front)
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let transform = ["transform", "--stylesheet", "s.xsl", "--input", "in.xml"];

    // Without the hub executable: transform works, anything else says what
    // is missing.
    let out = run(&transform);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(">Erika Muster</fv:name>"));
    let out = run(&["--version"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("drehscheibe-hub"), "{}", stderr(&out));

    // With it: the hub answers, under the name the user typed, and its
    // exit code is the command's.
    std::fs::copy(
        env!("CARGO_BIN_EXE_drehscheibe-hub"),
        bin.join("drehscheibe-hub"),
    )
    .unwrap();
    let out = run(&["--version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("drehscheibe "), "{}", stdout(&out));
    let out = run(&["rules", "test", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a folder"), "{}", stderr(&out));
    let out = run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: drehscheibe"),
        "{}",
        stderr(&out)
    );
    // and transform still runs in the front, the same as in the hub
    let hub = run(&transform);
    let direct = Command::new(bin.join("drehscheibe-hub"))
        .args(transform)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(hub.stdout, direct.stdout);
}

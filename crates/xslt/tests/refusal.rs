//! Everything outside the supported subset is refused at compile time,
//! with file, line and the construct named.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use drehscheibe_xslt::{CompileError, Stylesheet};

const XSL: &str = "http://www.w3.org/1999/XSL/Transform";

/// Compiles a stylesheet whose line 3 holds `line3`, from a real file.
fn refuse(line3: &str) -> (CompileError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rule.xsl");
    let text = format!(
        "<xsl:stylesheet version=\"3.0\" xmlns:xsl=\"{XSL}\">\n<xsl:template match=\"/\">\n{line3}\n</xsl:template>\n</xsl:stylesheet>\n"
    );
    std::fs::write(&path, text).unwrap();
    let err = Stylesheet::compile_file(&path).unwrap_err();
    // keep the directory alive until the error was produced
    drop(dir);
    (err, path)
}

fn assert_refused(line3: &str, construct: &str) {
    let (err, path) = refuse(line3);
    assert_eq!(err.file, path, "{err}");
    assert_eq!(err.line, 3, "{err}");
    assert!(
        err.message.contains(construct),
        "message `{}` does not name `{construct}`",
        err.message
    );
    // the Display form carries all three
    let shown = err.to_string();
    assert!(shown.contains("rule.xsl:3:"), "{shown}");
}

#[test]
fn unsupported_instructions() {
    assert_refused(
        r#"<xsl:merge><xsl:merge-source select="//a"/></xsl:merge>"#,
        "xsl:merge",
    );
    assert_refused(r#"<xsl:evaluate xpath="'1'"/>"#, "xsl:evaluate");
    assert_refused(
        r#"<xsl:result-document href="x.xml"/>"#,
        "xsl:result-document",
    );
    assert_refused(r#"<xsl:apply-imports/>"#, "xsl:apply-imports");
    assert_refused(r#"<xsl:fork/>"#, "xsl:fork");
}

#[test]
fn unsupported_attributes_and_values() {
    assert_refused(
        r#"<xsl:value-of select="." disable-output-escaping="yes"/>"#,
        "disable-output-escaping",
    );
    assert_refused(
        r#"<xsl:copy-of select="." copy-namespaces="no"/>"#,
        "copy-namespaces",
    );
    assert_refused(
        r#"<xsl:copy inherit-namespaces="no"/>"#,
        "inherit-namespaces",
    );
    assert_refused(
        r#"<xsl:for-each select="//a"><xsl:sort select="." collation="urn:x"/></xsl:for-each>"#,
        "collation",
    );
    assert_refused(
        r#"<r xsl:use-attribute-sets="s"/>"#,
        "xsl:use-attribute-sets",
    );
}

#[test]
fn unsupported_functions() {
    assert_refused(
        r#"<xsl:value-of select="environment-variable('HOME')"/>"#,
        "environment-variable",
    );
    assert_refused(
        r#"<xsl:value-of select="count(collection())"/>"#,
        "collection",
    );
    assert_refused(
        r#"<xsl:value-of select="current-merge-group()"/>"#,
        "current-merge-group",
    );
    assert_refused(r#"<xsl:value-of select="key('nokey', 'a')"/>"#, "nokey");
    assert_refused(
        r#"<xsl:value-of select="no-such-function(1)"/>"#,
        "no-such-function",
    );
    assert_refused(r#"<xsl:value-of select="$undeclared"/>"#, "undeclared");
    assert_refused(r#"<xsl:value-of select="1 +"/>"#, "XPST0003");
}

/// `doc()`, `unparsed-text()` and friends compile, but like `document()`
/// they only read files relative to the stylesheet: anything else is
/// refused when called.
#[test]
fn resources_outside_the_stylesheet_directory_are_refused_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rule.xsl");
    std::fs::write(dir.path().join("a.txt"), "line 1\nline 2\n").unwrap();
    let run = |select: &str| {
        std::fs::write(
            &path,
            format!("<xsl:stylesheet version=\"3.0\" xmlns:xsl=\"{XSL}\">\n<xsl:template match=\"/\"><r><xsl:value-of select=\"{select}\"/></r></xsl:template>\n</xsl:stylesheet>\n"),
        )
        .unwrap();
        Stylesheet::compile_file(&path)
            .unwrap()
            .transform_bytes(b"<x/>", &Default::default())
            .map(|b| String::from_utf8(b).unwrap())
    };
    let err = run("doc('file:///etc/passwd')").unwrap_err().to_string();
    assert!(err.contains("FODC0002"), "{err}");
    let err = run("unparsed-text('/etc/passwd')").unwrap_err().to_string();
    assert!(err.contains("FOUT1170"), "{err}");
    assert!(run("unparsed-text-available('../x')")
        .unwrap()
        .contains("false"));
    assert!(run("count(unparsed-text-lines('a.txt'))")
        .unwrap()
        .contains("<r>2</r>"));
    assert!(run("doc-available('a.txt')").unwrap().contains("false"));
}

#[test]
fn unsupported_declarations_and_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("top.xsl");
    let cases = [
        (r#"<xsl:attribute-set name="s"/>"#, "xsl:attribute-set"),
        (
            r#"<xsl:accumulator name="a" initial-value="0"/>"#,
            "xsl:accumulator",
        ),
        (r#"<xsl:function name="f"/>"#, "XTSE0740"),
        (r#"<xsl:output method="json"/>"#, "json"),
        (
            r#"<xsl:output normalization-form="fully-normalized"/>"#,
            "normalization-form",
        ),
        (r#"<xsl:output encoding="UTF-32"/>"#, "UTF-32"),
        (
            r#"<xsl:output parameter-document="params.xml"/>"#,
            "parameter-document",
        ),
        (
            r#"<xsl:template match="a/following-sibling::b"/>"#,
            "XTSE0340",
        ),
        (
            r#"<xsl:template match="schema-element(a)"/>"#,
            "schema-element",
        ),
        (r#"<xsl:template match="a" as="xs:string"/>"#, "as"),
        (
            r#"<xsl:namespace-alias stylesheet-prefix="a" result-prefix="b"/>"#,
            "xsl:namespace-alias",
        ),
    ];
    for (decl, construct) in cases {
        std::fs::write(
            &path,
            format!("<xsl:stylesheet version=\"3.0\" xmlns:xsl=\"{XSL}\">\n\n{decl}\n</xsl:stylesheet>\n"),
        )
        .unwrap();
        let err = Stylesheet::compile_file(&path).unwrap_err();
        assert_eq!(err.file, path);
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains(construct), "{decl}: {err}");
    }
}

#[test]
fn errors_in_included_modules_name_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.xsl");
    let inc = dir.path().join("inc.xsl");
    std::fs::write(
        &main,
        format!("<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"{XSL}\">\n<xsl:include href=\"inc.xsl\"/>\n</xsl:stylesheet>"),
    )
    .unwrap();
    std::fs::write(
        &inc,
        format!("<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"{XSL}\">\n<xsl:template match=\"/\">\n\n<xsl:evaluate xpath=\"'1'\"/>\n</xsl:template>\n</xsl:stylesheet>"),
    )
    .unwrap();
    let err = Stylesheet::compile_file(&main).unwrap_err();
    assert_eq!(err.file, inc);
    assert_eq!(err.line, 4);
    assert!(err.message.contains("xsl:evaluate"), "{err}");
    // a missing module is named too
    std::fs::remove_file(&inc).unwrap();
    let err = Stylesheet::compile_file(&main).unwrap_err();
    assert_eq!(err.file, main);
    assert_eq!(err.line, 2);
    assert!(err.message.contains("inc.xsl"), "{err}");
}

#[test]
fn malformed_and_non_stylesheets() {
    let err = Stylesheet::compile_str("<xsl:stylesheet", Path::new("bad.xsl")).unwrap_err();
    assert_eq!(err.file, Path::new("bad.xsl"));
    assert!(err.message.contains("not well-formed"), "{err}");
    let err = Stylesheet::compile_str("<html/>", Path::new("page.xsl")).unwrap_err();
    assert!(err.message.contains("xsl:version"), "{err}");
}

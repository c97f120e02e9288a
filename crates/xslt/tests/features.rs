//! Feature tests with exact expected output, in particular for XSLT
//! 2.0/3.0 behaviour that `xsltproc` (XSLT 1.0) cannot serve as a
//! reference for.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drehscheibe_xslt::{OutputMethod, Stylesheet, TransformError, XsltFactory};

const XSL: &str = "http://www.w3.org/1999/XSL/Transform";

fn sheet(version: &str, body: &str) -> String {
    format!(
        r#"<xsl:stylesheet version="{version}" xmlns:xsl="{XSL}"><xsl:output omit-xml-declaration="yes"/>{body}</xsl:stylesheet>"#
    )
}

fn compile(text: &str) -> Stylesheet {
    Stylesheet::compile_str(text, Path::new("test.xsl")).unwrap()
}

fn run_with(text: &str, input: &str, params: &[(&str, &str)]) -> Result<String, TransformError> {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = compile(text).transform_bytes(input.as_bytes(), &params)?;
    Ok(String::from_utf8(out).unwrap().trim_end().to_string())
}

fn run(text: &str, input: &str) -> String {
    run_with(text, input, &[]).unwrap()
}

#[test]
fn value_of_separator_and_sequence_semantics_in_3_0() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><a><xsl:value-of select="//v" separator=", "/></a><b><xsl:value-of select="//v"/></b><c><xsl:value-of select="1 to 3"/></c></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><v>1</v><v>2</v><v>3</v></d>"),
        "<r><a>1, 2, 3</a><b>1 2 3</b><c>1 2 3</c></r>"
    );
}

#[test]
fn value_of_takes_first_node_in_1_0() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><xsl:value-of select="//v"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d><v>1</v><v>2</v></d>"), "<r>1</r>");
}

#[test]
fn xsl_sequence_and_atomic_values_become_text() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:sequence select="(1, 'a', //v)"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d><v>x</v></d>"), "<r>1 a<v>x</v></r>");
}

#[test]
fn xsl_namespace_and_computed_names() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><xsl:element name="p:root" namespace="urn:p"><xsl:namespace name="q" select="'urn:q'"/><xsl:attribute name="q:a" namespace="urn:q">1</xsl:attribute><xsl:element name="plain"/></xsl:element></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d/>"),
        r#"<p:root xmlns:p="urn:p" xmlns:q="urn:q" q:a="1"><plain/></p:root>"#
    );
}

#[test]
fn sort_case_order() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><r><xsl:for-each select="//w"><xsl:sort select="." case-order="upper-first"/><xsl:value-of select="."/>,</xsl:for-each>|<xsl:for-each select="//w"><xsl:sort select="." case-order="lower-first"/><xsl:value-of select="."/>,</xsl:for-each>|<xsl:for-each select="//w"><xsl:sort select="."/><xsl:value-of select="."/>,</xsl:for-each></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><w>b</w><w>B</w><w>a</w><w>A</w></d>"),
        "<r>A,a,B,b,|a,A,b,B,|A,B,a,b,</r>"
    );
}

#[test]
fn xml_space_preserve_in_source_beats_strip_space() {
    let s = sheet(
        "1.0",
        r#"<xsl:strip-space elements="*"/><xsl:template match="/"><r><xsl:value-of select="count(//c/node())"/>,<xsl:value-of select="count(//e/node())"/></r></xsl:template>"#,
    );
    assert_eq!(
        run(
            &s,
            r#"<d><c xml:space="preserve"> <x/> </c><e> <x/> </e></d>"#
        ),
        "<r>3,1</r>"
    );
}

#[test]
fn format_number_follows_xpath_3_rules() {
    let s = sheet(
        "2.0",
        r#"<xsl:decimal-format name="ch" grouping-separator="'"/><xsl:template match="/"><r><xsl:value-of select="format-number(0.75, '#.##'), format-number(2.5, '0'), format-number(1234567.891, '#''##0.00', 'ch'), format-number(-0.001, '0.00')" separator="|"/></r></xsl:template>"#,
    );
    // round-half-to-even, no forced leading zero (unlike libxslt)
    assert_eq!(run(&s, "<d/>"), "<r>.75|2|1'234'567.89|-0.00</r>");
}

#[test]
fn format_number_works_inside_predicates_and_with_computed_pictures() {
    let s = sheet(
        "2.0",
        r#"<xsl:param name="pic" select="'0.0'"/><xsl:template match="/"><r><xsl:value-of select="//v[format-number(., '0') = '2']"/>|<xsl:value-of select="string-join(//v/format-number(., '00'), ',')"/>|<xsl:value-of select="format-number(//v[1], $pic)"/></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><v>1.4</v><v>2.1</v></d>"),
        "<r>2.1|01,02|1.4</r>"
    );
}

#[test]
fn message_terminate_yes_is_a_distinct_error() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><xsl:if test="not(//id)"><xsl:message terminate="yes">missing id in <xsl:value-of select="name(/*)"/></xsl:message></xsl:if></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d><id/></d>"), "<r/>");
    let err = run_with(&s, "<d/>", &[]).unwrap_err();
    assert_eq!(
        err,
        TransformError::Terminated {
            message: "missing id in d".into()
        }
    );
}

#[test]
fn required_global_param() {
    let s = sheet(
        "2.0",
        r#"<xsl:param name="kommune" required="yes"/><xsl:template match="/"><r k="{$kommune}"/></xsl:template>"#,
    );
    let st = compile(&s);
    assert_eq!(st.global_params().len(), 1);
    assert_eq!(st.global_params()[0].name, "kommune");
    assert!(st.global_params()[0].required);
    assert_eq!(
        run_with(&s, "<d/>", &[]).unwrap_err(),
        TransformError::MissingParam {
            name: "kommune".into()
        }
    );
    assert_eq!(
        run_with(&s, "<d/>", &[("kommune", "Musterstadt")]).unwrap(),
        r#"<r k="Musterstadt"/>"#
    );
}

#[test]
fn supplied_params_are_untyped_and_compare_numerically() {
    let s = sheet(
        "2.0",
        r#"<xsl:param name="limit" select="1" as="xs:integer" xmlns:xs="http://www.w3.org/2001/XMLSchema"/><xsl:param name="text" select="'1'"/><xsl:template match="/"><r><xsl:value-of select="count(//v[. &gt; $limit]), count(//v[. &gt; $text])"/></r></xsl:template>"#,
    );
    let input = "<d><v>5</v><v>20</v><v>100</v></d>";
    assert_eq!(run(&s, input), "<r>3 3</r>");
    // `as` converts the supplied string; without `as` it stays untyped and
    // compares as a string with the untyped node values (XPath 2.0 rules)
    assert_eq!(
        run_with(&s, input, &[("limit", "10"), ("text", "10")]).unwrap(),
        "<r>2 3</r>"
    );
    let err = run_with(&s, input, &[("limit", "ten")]).unwrap_err();
    assert!(matches!(err, TransformError::Dynamic { .. }), "{err:?}");
}

#[test]
fn xpath_1_compatibility_in_1_0_stylesheets() {
    // relational comparison of two untyped values is numeric, arithmetic on
    // an empty node-set gives NaN, string functions take the first node
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><a><xsl:value-of select="//v[1] &lt; //v[2]"/></a><b><xsl:value-of select="//missing * 2"/></b><c><xsl:value-of select="concat(//v, '-')"/></c><e><xsl:value-of select="1000000 * 3"/></e></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><v>9</v><v>10</v></d>"),
        "<r><a>true</a><b>NaN</b><c>9-</c><e>3000000</e></r>"
    );
}

#[test]
fn text_output_method_and_encoding() {
    let s = format!(
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="{XSL}"><xsl:output method="text" encoding="ISO-8859-1"/><xsl:template match="/">Grüße <xsl:value-of select="/d"/></xsl:template></xsl:stylesheet>"#
    );
    let st = compile(&s);
    assert_eq!(st.output().method, OutputMethod::Text);
    assert_eq!(st.output().content_type(), "text/plain");
    let out = st
        .transform_bytes(b"<d>&lt;K&#246;ln&gt;</d>", &BTreeMap::new())
        .unwrap();
    assert_eq!(out, b"Gr\xfc\xdfe <K\xf6ln>".to_vec());
    // a character outside Latin-1 cannot be written in text output
    let err = st
        .transform_bytes("<d>€</d>".as_bytes(), &BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, TransformError::Serialize { .. }), "{err:?}");
}

#[test]
fn xml_declaration_and_indent() {
    let s = format!(
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="{XSL}"><xsl:output indent="yes" standalone="yes"/><xsl:template match="/"><r><a><b/></a><m>x<i/></m></r></xsl:template></xsl:stylesheet>"#
    );
    let out = compile(&s)
        .transform_bytes(b"<d/>", &BTreeMap::new())
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<r>\n  <a>\n    <b/>\n  </a>\n  <m>x<i/></m>\n</r>\n"
    );
}

#[test]
fn key_searches_the_tree_of_the_context_node() {
    let s = sheet(
        "2.0",
        r#"<xsl:key name="k" match="e" use="@n"/><xsl:variable name="t"><e n="1">one</e><e n="2">two</e></xsl:variable><xsl:template match="/"><r><xsl:for-each select="$t"><xsl:value-of select="key('k', '2')"/></xsl:for-each>|<xsl:value-of select="key('k', 'x')"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, r#"<d><e n="x">src</e></d>"#), "<r>two|src</r>");
}

#[test]
fn number_levels() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><xsl:for-each select="//s"><xsl:number level="multiple" count="c|s" format="1.1"/>;</xsl:for-each></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<b><c><s/><s><s/></s></c><c><s/></c></b>"),
        "<r>1.1;1.2;1.2.1;2.1;</r>"
    );
}

#[test]
fn tunnel_free_params_and_mode_current() {
    let s = sheet(
        "2.0",
        r##"<xsl:template match="/"><r><xsl:apply-templates select="*" mode="m"/></r></xsl:template><xsl:template match="*" mode="m"><e n="{name()}"><xsl:apply-templates select="*" mode="#current"/></e></xsl:template><xsl:template match="*"><wrong/></xsl:template>"##,
    );
    assert_eq!(run(&s, "<a><b/></a>"), r#"<r><e n="a"><e n="b"/></e></r>"#);
}

#[test]
fn deep_recursion_is_stopped_not_crashing() {
    let s = sheet(
        "1.0",
        r#"<xsl:template name="loop"><xsl:param name="n"/><xsl:call-template name="loop"><xsl:with-param name="n" select="$n + 1"/></xsl:call-template></xsl:template><xsl:template match="/"><xsl:call-template name="loop"><xsl:with-param name="n" select="0"/></xsl:call-template></xsl:template>"#,
    );
    let err = run_with(&s, "<d/>", &[]).unwrap_err();
    assert!(
        matches!(&err, TransformError::Dynamic { message, .. } if message.contains("recursion")),
        "{err:?}"
    );
}

#[test]
fn deep_but_finite_recursion_works() {
    let s = sheet(
        "1.0",
        r#"<xsl:template name="count"><xsl:param name="n"/><xsl:choose><xsl:when test="$n = 0">done</xsl:when><xsl:otherwise><xsl:call-template name="count"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:otherwise></xsl:choose></xsl:template><xsl:template match="/"><r><xsl:call-template name="count"><xsl:with-param name="n" select="3000"/></xsl:call-template></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d/>"), "<r>done</r>");
}

#[test]
fn dynamic_errors_name_file_and_line() {
    let s = format!(
        "<xsl:stylesheet version=\"2.0\" xmlns:xsl=\"{XSL}\">\n<xsl:template match=\"/\">\n<r>\n<xsl:value-of select=\"xs:integer('abc')\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"/>\n</r>\n</xsl:template>\n</xsl:stylesheet>"
    );
    let err = run_with(&s, "<d/>", &[]).unwrap_err();
    match err {
        TransformError::Dynamic {
            file,
            line,
            message,
        } => {
            assert_eq!(file, Path::new("test.xsl"));
            assert_eq!(line, 4);
            assert!(message.contains("FORG0001"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn latin1_input_is_decoded() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><xsl:value-of select="/d"/></r></xsl:template>"#,
    );
    let out = compile(&s)
        .transform_bytes(
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><d>K\xf6ln</d>",
            &BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        "<r>K\u{f6}ln</r>"
    );
}

#[test]
fn input_errors() {
    let s = sheet("1.0", r#"<xsl:template match="/"><r/></xsl:template>"#);
    let err = compile(&s)
        .transform_bytes(b"<d>", &BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, TransformError::Input { .. }), "{err:?}");
}

#[test]
fn transform_document_leaves_the_callers_tree_unchanged() {
    let s = sheet(
        "1.0",
        r#"<xsl:strip-space elements="*"/><xsl:variable name="v"><tmp/></xsl:variable><xsl:template match="/"><r n="{count(//node())}"><xsl:copy-of select="$v"/></r></xsl:template>"#,
    );
    let st = compile(&s);
    let doc = drehscheibe_xpath::Document::parse_str(
        "<d>\n  <e/>\n</d>",
        &drehscheibe_xpath::ParseOptions::default(),
    )
    .unwrap();
    let before = doc.len();
    let out = st.transform_document(&doc, &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        r#"<r n="2"><tmp/></r>"#
    );
    assert_eq!(doc.len(), before);
    // run again on the same tree: same result
    let out = st.transform_document(&doc, &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        r#"<r n="2"><tmp/></r>"#
    );
}

#[test]
fn compiled_once_shared_across_threads() {
    let s = sheet(
        "1.0",
        r#"<xsl:param name="p"/><xsl:template match="/"><r p="{$p}" n="{count(//i)}"/></xsl:template>"#,
    );
    let st = Arc::new(compile(&s));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let st = st.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let mut params = BTreeMap::new();
                    params.insert("p".to_string(), format!("{t}-{i}"));
                    let input = format!("<d>{}</d>", "<i/>".repeat(i));
                    let out = st.transform_bytes(input.as_bytes(), &params).unwrap();
                    assert_eq!(
                        String::from_utf8(out).unwrap().trim_end(),
                        format!(r#"<r p="{t}-{i}" n="{i}"/>"#)
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn include_and_import_from_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.xsl"),
        format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="{XSL}"><xsl:template match="e">base</xsl:template><xsl:template match="f">base-f</xsl:template></xsl:stylesheet>"#
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("lib/inc.xsl"),
        format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="{XSL}"><xsl:template name="hello">hello</xsl:template></xsl:stylesheet>"#
        ),
    )
    .unwrap();
    let main = dir.path().join("main.xsl");
    std::fs::write(
        &main,
        format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="{XSL}"><xsl:import href="base.xsl"/><xsl:include href="lib/inc.xsl"/><xsl:output omit-xml-declaration="yes"/><xsl:template match="/"><r><xsl:apply-templates select="//e|//f"/>,<xsl:call-template name="hello"/></r></xsl:template><xsl:template match="e">main</xsl:template></xsl:stylesheet>"#
        ),
    )
    .unwrap();
    let st = Stylesheet::compile_file(&main).unwrap();
    let out = st
        .transform_bytes(b"<d><e/><f/></d>", &BTreeMap::new())
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        "<r>mainbase-f,hello</r>"
    );
}

#[test]
fn factory_glue_for_the_rule_depot() {
    use drehscheibe_rules::{InputDocument, TransformerFactory};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rule.xsl");
    std::fs::write(
        &path,
        sheet(
            "1.0",
            r#"<xsl:param name="kommune"/><xsl:template match="/"><xsl:if test="not(//name)"><xsl:message terminate="yes">name fehlt</xsl:message></xsl:if><out k="{$kommune}"><xsl:value-of select="//name"/></out></xsl:template>"#,
        ),
    )
    .unwrap();
    let transformer = XsltFactory.load(&path).unwrap();
    let mut params = BTreeMap::new();
    params.insert("kommune".to_string(), "09162000".to_string());
    let input =
        InputDocument::parse(b"<antrag><name>Anna</name></antrag>", "application/xml").unwrap();
    let out = transformer.transform(&input, &params).unwrap();
    assert_eq!(
        String::from_utf8(out.bytes.to_vec()).unwrap().trim_end(),
        r#"<out k="09162000">Anna</out>"#
    );
    let bad = InputDocument::parse(b"<antrag/>", "application/xml").unwrap();
    assert_eq!(
        transformer.transform(&bad, &params).unwrap_err(),
        drehscheibe_rules::TransformError::Terminated("name fehlt".into())
    );
    // JSON input arrives in the json-to-xml form
    let json = InputDocument::parse(br#"{"name": "Bernd"}"#, "application/json").unwrap();
    let js = dir.path().join("json.xsl");
    std::fs::write(
        &js,
        sheet(
            "3.0",
            r#"<xsl:template match="/"><out xmlns:j="http://www.w3.org/2005/xpath-functions"><xsl:value-of select="//j:string[@key='name']"/></out></xsl:template>"#,
        ),
    )
    .unwrap();
    let out = XsltFactory
        .load(&js)
        .unwrap()
        .transform(&json, &params)
        .unwrap();
    assert!(
        String::from_utf8(out.bytes.to_vec())
            .unwrap()
            .contains(">Bernd</out>"),
        "{:?}",
        out.bytes
    );
    // a broken stylesheet is refused at load time with its path
    let broken = dir.path().join("broken.xsl");
    std::fs::write(
        &broken,
        sheet(
            "2.0",
            r#"<xsl:template match="/"><xsl:result-document/></xsl:template>"#,
        ),
    )
    .unwrap();
    match XsltFactory.load(&broken) {
        Err(drehscheibe_rules::TransformError::Stylesheet { path, message }) => {
            assert_eq!(path, broken);
            assert!(message.contains("xsl:result-document"), "{message}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("broken stylesheet loaded"),
    }
}

#[test]
fn format_number_inline_and_hoisted_paths_agree() {
    // `format-number($v, …)` on a variable bound inside the expression is
    // compiled to an XPath function; `format-number(., …)` in xsl:for-each
    // is computed in Rust. Both must give the same text.
    let values = "0, 1, -1, 0.5, 1234.5678, -0.001, 1e7, 123456789012, 0.125, 2.5, number('2.675'), number('NaN'), 1 div 0e0, -1 div 0e0, 99.995";
    for picture in [
        "#,##0.00",
        "0.###",
        "#%",
        "00.0",
        "#,##0",
        "0.00;(0.00)",
        "#.#",
        "\u{2030}0",
    ] {
        let s = sheet(
            "3.0",
            &format!(
                r#"<xsl:template match="/"><r><a><xsl:value-of select="string-join(for $v in ({values}) return format-number($v, '{picture}'), '|')"/></a><b><xsl:for-each select="{values}"><xsl:if test="position() &gt; 1">|</xsl:if><xsl:value-of select="format-number(., '{picture}')"/></xsl:for-each></b></r></xsl:template>"#
            ),
        );
        let out = run(&s, "<d/>");
        let a = out
            .split("<a>")
            .nth(1)
            .and_then(|x| x.split("</a>").next())
            .unwrap();
        let b = out
            .split("<b>")
            .nth(1)
            .and_then(|x| x.split("</b>").next())
            .unwrap();
        assert_eq!(a, b, "picture {picture}");
    }
}

#[test]
fn variables_with_as_hold_sequences() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/" xmlns:xs="http://www.w3.org/2001/XMLSchema"><xsl:variable name="codes" as="xs:string*"><xsl:sequence select="'a', 'b'"/><xsl:value-of select="'c'"/></xsl:variable><xsl:variable name="atts" as="attribute()*"><xsl:attribute name="x">1</xsl:attribute></xsl:variable><xsl:variable name="els" as="element()*"><a/><b/></xsl:variable><xsl:variable name="n" as="xs:integer"><xsl:value-of select="40 + 2"/></xsl:variable><r n="{count($codes)}" j="{string-join($codes, ',')}" e="{count($els)}" parent="{count($els/..)}" sum="{$n + 1}" exclude-result-prefixes="xs"><xsl:copy-of select="$atts"/></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d/>"),
        r#"<r xmlns:xs="http://www.w3.org/2001/XMLSchema" n="3" j="a,b,c" e="2" parent="0" sum="43" exclude-result-prefixes="xs" x="1"/>"#
    );
}

#[test]
fn reverse_axes_and_kind_test_patterns() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><r><xsl:for-each select="//c/ancestor-or-self::*"><xsl:value-of select="name()"/></xsl:for-each>|<xsl:value-of select="(//c/ancestor::*)[1]/name()"/>|<xsl:apply-templates select="//node()"/></r></xsl:template><xsl:template match="node()"/><xsl:template match="text()[normalize-space() = 'x']|comment()">T</xsl:template><xsl:template match="b/node()[1]">F</xsl:template>"#,
    );
    assert_eq!(run(&s, "<a><b><c/>x<!--k--></b></a>"), "<r>abc|a|FTT</r>");
}

#[test]
fn local_name_predicates_select_across_namespaces() {
    // `*[local-name() = 'x']` is compiled to the name test `*:x`: the
    // selected nodes, their order and positional predicates stay the same
    let input = r#"<r xmlns:a="urn:a" xmlns:b="urn:b"><a:x id="1"><b:y b:k="v" k="w"/></a:x><b:x id="2"/><x id="3"/><a:z id="4"/></r>"#;
    for version in ["1.0", "3.0"] {
        let s = sheet(
            version,
            r#"<xsl:template match="/">
                 <xsl:value-of select="count(/*/*[local-name() = 'x'])"/>
                 <xsl:text>|</xsl:text>
                 <xsl:for-each select="/*/*[local-name() = 'x']"><xsl:value-of select="@id"/></xsl:for-each>
                 <xsl:text>|</xsl:text>
                 <xsl:value-of select="/*/*[local-name() = 'x'][2]/@id"/>
                 <xsl:text>|</xsl:text>
                 <xsl:for-each select="//*['y' = local-name(.)]/@*[local-name() = 'k']"><xsl:value-of select="."/></xsl:for-each>
                 <xsl:text>|</xsl:text>
                 <xsl:value-of select="name(//*[local-name() = 'y']/ancestor::*[local-name() = 'x'][1])"/>
                 <xsl:text>|</xsl:text>
                 <xsl:value-of select="count(/*/*[local-name() = 'x'][@id &gt; 1])"/>
                 <xsl:text>|</xsl:text>
                 <xsl:value-of select="count(/*/*[local-name() = 'nothing'])"/>
               </xsl:template>"#,
        );
        assert_eq!(run(&s, input), "3|123|2|vw|a:x|2|0", "version {version}");
    }
}

#[test]
fn xsl_function_with_types_and_recursion() {
    let s = sheet(
        "3.0",
        r##"<xsl:function name="f:fact" as="xs:integer" xmlns:f="urn:f" xmlns:xs="http://www.w3.org/2001/XMLSchema"><xsl:param name="n" as="xs:integer"/><xsl:sequence select="if ($n le 1) then 1 else $n * f:fact($n - 1)"/></xsl:function><xsl:function name="f:wrap" xmlns:f="urn:f"><xsl:param name="s"/><w><xsl:value-of select="$s"/></w></xsl:function><xsl:template match="/" xmlns:f="urn:f"><r xsl:exclude-result-prefixes="#all" f="{f:fact(10)}" n="{f:fact(xs:integer(/d/@n))}" xmlns:xs="http://www.w3.org/2001/XMLSchema"><xsl:copy-of select="f:wrap(string(/d/@n))"/></r></xsl:template>"##,
    );
    assert_eq!(
        run(&s, r#"<d n="5"/>"#),
        r#"<r f="3628800" n="120"><w xmlns:f="urn:f">5</w></r>"#
    );
}

#[test]
fn runaway_recursion_in_a_named_template_is_an_error() {
    let s = sheet(
        "3.0",
        r#"<xsl:template name="again"><x><xsl:call-template name="again"/></x></xsl:template><xsl:template match="/"><xsl:call-template name="again"/></xsl:template>"#,
    );
    let err = run_with(&s, "<d/>", &[]).unwrap_err();
    assert!(
        matches!(&err, TransformError::Dynamic { message, .. } if message.contains("recursion")),
        "{err:?}"
    );
}

#[test]
fn runaway_recursion_in_a_function_is_an_error() {
    let s = sheet(
        "3.0",
        r#"<xsl:function name="f:f" xmlns:f="urn:f"><xsl:param name="n"/><xsl:sequence select="f:f($n + 1)"/></xsl:function><xsl:template match="/" xmlns:f="urn:f"><r><xsl:value-of select="f:f(0)"/></r></xsl:template>"#,
    );
    let err = run_with(&s, "<d/>", &[]).unwrap_err();
    assert!(
        matches!(&err, TransformError::Dynamic { message, .. } if message.contains("recursion")),
        "{err:?}"
    );
}

#[test]
fn document_empty_string_is_the_stylesheet() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r n="{count(document('')//xsl:template)}"/></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d/>"), r#"<r n="1"/>"#);
    // other documents: relative local files only
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r n="{count(document('/etc/passwd'))}"/></xsl:template>"#,
    );
    assert!(run_with(&s, "<d/>", &[]).is_err());
}

#[test]
fn document_reads_files_next_to_the_stylesheet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("codes.xml"),
        "<codes><c k='a'>Alpha</c></codes>",
    )
    .unwrap();
    let path = dir.path().join("s.xsl");
    std::fs::write(
        &path,
        sheet(
            "1.0",
            r#"<xsl:template match="/"><r><xsl:value-of select="document('codes.xml')/codes/c[@k = current()/d/@k]"/></r></xsl:template>"#,
        ),
    )
    .unwrap();
    let st = Stylesheet::compile_file(&path).unwrap();
    let out = st.transform_bytes(b"<d k='a'/>", &BTreeMap::new()).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().trim_end(), "<r>Alpha</r>");
}

#[test]
fn system_and_availability_functions() {
    let s = sheet(
        "3.0",
        r##"<xsl:function name="f:g" xmlns:f="urn:f"><xsl:param name="a"/><xsl:sequence select="$a"/></xsl:function><xsl:template match="/" xmlns:f="urn:f"><r xsl:exclude-result-prefixes="#all" v="{system-property('xsl:version')}" a="{function-available('concat')}" b="{function-available('f:g', 1)}" c="{function-available('f:g', 2)}" d="{element-available('xsl:value-of')}" e="{function-available('no-such')}"/></xsl:template>"##,
    );
    assert_eq!(
        run(&s, "<d/>"),
        r#"<r v="3.0" a="true" b="true" c="false" d="true" e="false"/>"#
    );
}

#[test]
fn key_with_a_third_argument_searches_that_tree() {
    let s = sheet(
        "3.0",
        r#"<xsl:key name="k" match="i" use="@id"/><xsl:variable name="t"><l><i id="1">one</i><i id="2">two</i></l></xsl:variable><xsl:template match="/"><r><xsl:value-of select="key('k', '2', $t)"/>/<xsl:value-of select="count(key('k', '2'))"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, r#"<d><i id="2"/></d>"#), "<r>two/1</r>");
}

#[test]
fn messages_are_collected() {
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><xsl:message>first <xsl:value-of select="name(*)"/></xsl:message><r/><xsl:message select="'second'"/></xsl:template>"#,
    );
    let doc =
        drehscheibe_xpath::Document::parse_str("<d/>", &drehscheibe_xpath::ParseOptions::default())
            .unwrap();
    let outcome = compile(&s)
        .transform_document_with_messages(&doc, &BTreeMap::new())
        .unwrap();
    assert_eq!(
        outcome.messages,
        vec!["first d".to_string(), "second".to_string()]
    );
    assert_eq!(String::from_utf8(outcome.bytes).unwrap().trim_end(), "<r/>");
}

#[test]
fn use_when_excludes_elements_at_compile_time() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r>
            <a xsl:use-when="false()"/>
            <b xsl:use-when="function-available('concat')"/>
            <xsl:value-of select="'c'" use-when="system-property('xsl:version') = '3.0'"/>
            <xsl:value-of select="'d'" use-when="element-available('xsl:no-such')"/>
          </r></xsl:template>
          <xsl:template match="/" use-when="1 = 2"><wrong/></xsl:template>"#,
    );
    assert_eq!(run(&s, "<x/>"), "<r><b/>c</r>");
    // a condition that needs a dynamic context is a static error
    let bad = sheet("3.0", r#"<xsl:template match="/" use-when=". = 1"/>"#);
    assert!(Stylesheet::compile_str(&bad, Path::new("t.xsl")).is_err());
}

#[test]
fn foreign_attributes_on_xsl_elements_are_ignored() {
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}" xmlns:f="urn:f" f:note="x" xml:base="http://example.org/"><xsl:output omit-xml-declaration="yes" method="xhtml" escape-uri-attributes="no"/><xsl:template match="/" f:a="1"><r/></xsl:template></xsl:stylesheet>"#
    );
    assert_eq!(run(&s, "<x/>"), r#"<r xmlns:f="urn:f"/>"#);
}

#[test]
fn mode_all_templates_apply_in_every_mode() {
    let s = sheet(
        "3.0",
        r##"<xsl:template match="b" mode="#all">[<xsl:value-of select="."/>]</xsl:template>
          <xsl:template match="/"><r><xsl:apply-templates select="x/b"/><xsl:apply-templates select="x/b" mode="later"/></r></xsl:template>"##,
    );
    assert_eq!(run(&s, "<x><b>1</b></x>"), "<r>[1][1]</r>");
}

#[test]
fn number_format_tokens_follow_xslt_3() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:number value="3" format="one"/>|<xsl:number value="3" format="w"/>|<xsl:number value="4" format="i"/></r></xsl:template>"#,
    );
    // an unknown alphanumeric token falls back to `1` (XSLT 3.0 §12.4)
    assert!(
        run(&s, "<a/>").contains("<r>3|three|iv</r>"),
        "{}",
        run(&s, "<a/>")
    );
}

#[test]
fn format_number_in_1_0_rounds_like_libxslt() {
    // libxslt rounds the scaled double half up: 811.34 × 75 / 100 is
    // 608.50499… as a double and prints as 608.51
    let s = sheet(
        "1.0",
        r#"<xsl:template match="/"><r><xsl:value-of select="format-number(811.34 * (100 - 25) div 100, '0.00')"/></r></xsl:template>"#,
    );
    assert!(
        run(&s, "<a/>").contains("<r>608.51</r>"),
        "{}",
        run(&s, "<a/>")
    );
}

#[test]
fn circular_imports_and_includes_are_static_errors_not_stack_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        std::fs::write(
            dir.path().join(name),
            format!(r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}">{body}</xsl:stylesheet>"#),
        )
        .unwrap();
    };
    // a imports b imports c imports a
    write(
        "a.xsl",
        r#"<xsl:import href="b.xsl"/><xsl:template match="/"><a/></xsl:template>"#,
    );
    write("b.xsl", r#"<xsl:import href="c.xsl"/>"#);
    write("c.xsl", r#"<xsl:import href="a.xsl"/>"#);
    let e = Stylesheet::compile_file(&dir.path().join("a.xsl")).unwrap_err();
    assert!(e.message.contains("XTSE0210"), "{e}");
    // x includes y includes x
    write("x.xsl", r#"<xsl:include href="y.xsl"/>"#);
    write("y.xsl", r#"<xsl:include href="x.xsl"/>"#);
    let e = Stylesheet::compile_file(&dir.path().join("x.xsl")).unwrap_err();
    assert!(e.message.contains("XTSE0180"), "{e}");
    // a diamond (p imports q and r, both import s) is not a cycle
    write(
        "p.xsl",
        r#"<xsl:import href="q.xsl"/><xsl:import href="r.xsl"/><xsl:template match="/"><p/></xsl:template>"#,
    );
    write("q.xsl", r#"<xsl:import href="s.xsl"/>"#);
    write("r.xsl", r#"<xsl:import href="s.xsl"/>"#);
    write("s.xsl", "");
    Stylesheet::compile_file(&dir.path().join("p.xsl")).unwrap();
}

#[test]
fn rooted_patterns_match_by_membership() {
    // key()-rooted, variable-rooted and id-like patterns (XSLT 3.0 §5.5)
    let s = sheet(
        "3.0",
        r#"<xsl:key name="k" match="sec" use="@t"/>
        <xsl:variable name="v" select="//b[@n='2']"/>
        <xsl:template match="/"><r><xsl:apply-templates select="//p | //b"/></r></xsl:template>
        <xsl:template match="key('k', 'intro')//p">[I:<xsl:value-of select="."/>]</xsl:template>
        <xsl:template match="$v">[V:<xsl:value-of select="@n"/>]</xsl:template>
        <xsl:template match="p | b">[-]</xsl:template>"#,
    );
    let out = run(
        &s,
        r#"<d><sec t="intro"><x><p>1</p></x></sec><sec t="body"><p>2</p></sec><b n="1"/><b n="2"/></d>"#,
    );
    assert!(out.contains("<r>[I:1][-][-][V:2]</r>"), "{out}");
}

#[test]
fn general_patterns_parenthesised_intersect_except_self_descendant() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:apply-templates select="//*"/></r></xsl:template>
        <xsl:template match="(a|c)[*]">P<xsl:value-of select="name()"/>;</xsl:template>
        <xsl:template match="* except (d|c|a)">E<xsl:value-of select="name()"/>;</xsl:template>
        <xsl:template match="d/descendant::e[1]" priority="2">D1;</xsl:template>
        <xsl:template match="self::c" priority="-2">S;</xsl:template>
        <xsl:template match="*" priority="-3">x;</xsl:template>"#,
    );
    let out = run(&s, r#"<a><c/><c><b/></c><d><f><e/></f><e/></d></a>"#);
    // a and the second c have element children; d is excluded by except;
    // the first e below d is D1, the second is E
    assert!(out.contains("<r>Pa;S;Pc;Eb;x;Ef;D1;Ee;</r>"), "{out}");
}

#[test]
fn parentless_attributes_match_attribute_patterns() {
    // `@x` and `attribute()` match parentless attributes
    // (attribute-or-top); `child::attribute()` matches nothing
    let s = sheet(
        "2.0",
        r#"<xsl:variable name="a" as="attribute()"><xsl:attribute name="x">1</xsl:attribute></xsl:variable>
        <xsl:template match="/"><r><xsl:apply-templates select="$a"/><xsl:apply-templates select="$a" mode="m"/></r></xsl:template>
        <xsl:template match="@x">[<xsl:value-of select="."/>]</xsl:template>
        <xsl:template match="child::attribute()" mode="m">wrong</xsl:template>"#,
    );
    assert!(
        run(&s, "<d/>").contains("<r>[1]1</r>"),
        "{}",
        run(&s, "<d/>")
    );
}

#[test]
fn predicate_patterns_match_atomic_values() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:apply-templates select="(1, 'two', 3, /d)"/></r></xsl:template>
        <xsl:template match=".[. instance of xs:integer]" xmlns:xs="http://www.w3.org/2001/XMLSchema">i<xsl:value-of select="."/>;</xsl:template>
        <xsl:template match=".[. = 'two']">t;</xsl:template>
        <xsl:template match="d">d;</xsl:template>"#,
    );
    assert!(
        run(&s, "<d/>").contains("<r>i1;t;i3;d;</r>"),
        "{}",
        run(&s, "<d/>")
    );
    // a parenthesised predicate pattern is not a pattern
    let bad = sheet("3.0", r#"<xsl:template match="(.[1])"/>"#);
    let e = Stylesheet::compile_str(&bad, Path::new("t.xsl")).unwrap_err();
    assert!(e.message.contains("XTSE0340"), "{e}");
}

#[test]
fn current_in_a_pattern_is_the_matched_node() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="*"><xsl:copy><xsl:apply-templates/></xsl:copy></xsl:template>
        <xsl:template match="*[name()=name(current())]/*"><hit/></xsl:template>"#,
    );
    // the inner `a` has a parent named like itself, `b` has not
    assert_eq!(run(&s, "<a><a/><b/></a>"), "<a><hit/><b/></a>");
}

#[test]
fn key_values_compare_as_typed_atomic_values() {
    let s = sheet(
        "2.0",
        r#"<xsl:key name="k" match="b" use="string-length(.)"/>
        <xsl:template match="/"><r><xsl:value-of select="count(key('k', 4))"/>,<xsl:value-of select="count(key('k', '4'))"/>,<xsl:value-of select="count(key('k', 4.0e0))"/></r></xsl:template>"#,
    );
    assert!(
        run(&s, "<d><b>John</b><b>Mary</b><b>Al</b></d>").contains("<r>2,0,2</r>"),
        "{}",
        run(&s, "<d><b>John</b><b>Mary</b><b>Al</b></d>")
    );
    // in a 1.0 stylesheet key values are strings
    let s1 = s.replace("version=\"2.0\"", "version=\"1.0\"");
    assert!(run(&s1, "<d><b>John</b><b>Mary</b><b>Al</b></d>").contains("<r>2,2,2</r>"));
    // a key whose pattern uses the key itself is an error, not a stack overflow
    let circ = sheet(
        "3.0",
        r#"<xsl:key name="k" match="key('k', 'a')" use="."/>
        <xsl:template match="/"><xsl:value-of select="count(key('k', 'a'))"/></xsl:template>"#,
    );
    assert!(run_with(&circ, "<d>a</d>", &[]).is_err());
}

#[test]
fn number_count_patterns_see_local_variables() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:for-each select="//i"><xsl:variable name="t" select="'y'"/><xsl:number count="i[@t = $t]" level="any"/>,</xsl:for-each></r></xsl:template>"#,
    );
    let out = run(&s, r#"<d><i t="y"/><i t="n"/><i t="y"/></d>"#);
    assert!(out.contains("<r>1,1,2,</r>"), "{out}");
}

#[test]
fn absolute_general_patterns_do_not_match_in_parentless_trees() {
    let s = sheet(
        "3.0",
        r#"<xsl:variable name="e" as="element()"><a/></xsl:variable>
        <xsl:template match="/"><r><xsl:apply-templates select="$e, //a"/></r></xsl:template>
        <xsl:template match="//(a|b)">D</xsl:template>
        <xsl:template match="a">P</xsl:template>"#,
    );
    assert!(run(&s, "<a/>").contains("<r>PD</r>"), "{}", run(&s, "<a/>"));
}

#[test]
fn parentless_namespace_nodes_match_namespace_patterns() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><xsl:variable name="x" as="node()"><xsl:namespace name="p">urn:p</xsl:namespace></xsl:variable><r><xsl:apply-templates select="$x"/></r></xsl:template>
        <xsl:template match="namespace::q">wrong</xsl:template>
        <xsl:template match="namespace::p">[<xsl:value-of select="."/>]</xsl:template>"#,
    );
    assert!(
        run(&s, "<a/>").contains("<r>[urn:p]</r>"),
        "{}",
        run(&s, "<a/>")
    );
}

/// Runs a stylesheet body with the given `xsl:output` attributes and
/// returns the exact serialization.
fn serialize_with(output: &str, body: &str) -> Result<String, TransformError> {
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}"><xsl:output {output}/><xsl:template match="/">{body}</xsl:template></xsl:stylesheet>"#
    );
    let out = compile(&s).transform_bytes(b"<d/>", &BTreeMap::new())?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn html_method_writes_html() {
    let out = serialize_with(
        r#"method="html" indent="no""#,
        r#"<HTML><head><meta http-equiv="content-type" content="old"/><script>if (a &lt; b &amp;&amp; c) x()</script></head><body><BR/><p/><option selected="SELECTED" value="a&lt;b">x</option><a href="/år?q=1&amp;{{x}}">l</a><xsl:processing-instruction name="pi">d</xsl:processing-instruction></body></HTML>"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "<!DOCTYPE html>\n<HTML><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"><script>if (a < b && c) x()</script></head><body><BR><p></p><option selected value=\"a<b\">x</option><a href=\"/%C3%A5r?q=1&{x}\">l</a><?pi d></body></HTML>"
    );
    // HTML 4.01: no DOCTYPE unless requested; doctype-public/system as given
    let out = serialize_with(
        r#"method="html" version="4.01" indent="no" doctype-public="-//W3C//DTD HTML 4.01//EN" include-content-type="no" escape-uri-attributes="no""#,
        r#"<html><body><img src="å"/></body></html>"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\">\n<html><body><img src=\"å\"></body></html>"
    );
    // '>' in a processing instruction cannot be written by the html method
    let err = serialize_with(
        r#"method="html""#,
        r#"<xsl:processing-instruction name="pi">a>b</xsl:processing-instruction>"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("SERE0015"), "{err}");
}

#[test]
fn html_method_indents_only_around_block_elements() {
    let out = serialize_with(
        r#"method="html" include-content-type="no""#,
        "<html><body><div><p>a <b>b</b></p><pre><i>x</i></pre></div><span><i>y</i></span></body></html>",
    )
    .unwrap();
    assert_eq!(
        out,
        "<!DOCTYPE html>\n<html>\n  <body><div>\n      <p>a <b>b</b></p>\n      <pre><i>x</i></pre>\n    </div><span><i>y</i></span></body>\n</html>"
    );
}

#[test]
fn xhtml_method_follows_the_compatibility_guidelines() {
    let out = serialize_with(
        r#"method="xhtml" indent="no" omit-xml-declaration="yes""#,
        r#"<h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:head/><h:body><h:br/><h:p/><h:a href="&#x96;" title="&#x96;&quot;"/><x/></h:body></h:html>"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" /></head><body><br /><p></p><a href=\"%C2%96\" title=\"&#150;&#34;\"></a><x xmlns=\"\"/></body></html>"
    );
    // XHTML 1.0: no DOCTYPE unless doctype-system is given
    let out = serialize_with(
        r#"method="xhtml" html-version="4.01" indent="no" doctype-system="x.dtd" doctype-public="-//X//EN""#,
        r#"<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>"#,
    )
    .unwrap();
    assert_eq!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html PUBLIC \"-//X//EN\" \"x.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><body></body></html>"
    );
}

#[test]
fn output_method_defaults_from_the_result_tree() {
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}"><xsl:template match="/"><html><body><br/></body></html></xsl:template></xsl:stylesheet>"#
    );
    let st = compile(&s);
    assert!(!st.output().method_declared);
    let out = st.transform_bytes(b"<d/>", &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<!DOCTYPE html>\n<html>\n  <body><br></body>\n</html>"
    );
    // an API may override the output definition
    let xml = drehscheibe_xslt::OutputSettings {
        method_declared: true,
        omit_xml_declaration: true,
        ..Default::default()
    };
    let out = st
        .with_output(xml)
        .transform_bytes(b"<d/>", &BTreeMap::new())
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<html><body><br/></body></html>"
    );
}

#[test]
fn xml_method_serialization_parameters() {
    let out = serialize_with(
        r#"doctype-system="a&quot;b.dtd" doctype-public="-//P//EN" standalone="true" cdata-section-elements="c""#,
        "<xsl:comment>first</xsl:comment><r><c>x]]&gt;y</c><d>&#x85;&#x1;</d></r>",
    )
    .unwrap();
    assert_eq!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<!--first--><!DOCTYPE r PUBLIC \"-//P//EN\" 'a\"b.dtd'>\n<r><c><![CDATA[x]]]]><![CDATA[>y]]></c><d>&#133;&#1;</d></r>"
    );
    // CDATA sections are split around characters the encoding lacks
    let out = serialize_with(
        r#"encoding="US-ASCII" omit-xml-declaration="yes" cdata-section-elements="c""#,
        "<c>a\u{e9}b</c>",
    )
    .unwrap();
    assert_eq!(out, "<c><![CDATA[a]]>&#233;<![CDATA[b]]></c>");
    // byte-order-mark and normalization-form
    let out = serialize_with(
        r#"byte-order-mark="yes" normalization-form="NFC" omit-xml-declaration="yes""#,
        "<r a=\"e\u{301}\">e\u{301}</r>",
    )
    .unwrap();
    assert_eq!(out, "\u{feff}<r a=\"\u{e9}\">\u{e9}</r>");
    // suppress-indentation keeps the content of the listed elements as it is
    let out = serialize_with(
        r#"indent="yes" omit-xml-declaration="yes" suppress-indentation="p""#,
        "<r><p><b>x</b><i>y</i></p><q><b/></q></r>",
    )
    .unwrap();
    assert_eq!(
        out,
        "<r>\n  <p><b>x</b><i>y</i></p>\n  <q>\n    <b/>\n  </q>\n</r>\n"
    );
}

#[test]
fn serialization_parameter_errors() {
    let err = |output: &str, body: &str| serialize_with(output, body).unwrap_err().to_string();
    assert!(err(r#"omit-xml-declaration="yes" standalone="no""#, "<r/>").contains("SEPM0009"));
    assert!(err(r#"standalone="yes""#, "<r/><r/>").contains("SEPM0004"));
    assert!(err(r#"undeclare-prefixes="yes""#, "<r/>").contains("SEPM0010"));
    let compile_err = |decls: &str| {
        let s = format!(
            r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}">{decls}<xsl:template match="/"/></xsl:stylesheet>"#
        );
        Stylesheet::compile_str(&s, Path::new("t.xsl"))
            .unwrap_err()
            .to_string()
    };
    assert!(compile_err(r#"<xsl:output byte-order-mark="TRUE"/>"#).contains("XTSE0020"));
    assert!(compile_err(r#"<xsl:output standalone="maybe"/>"#).contains("XTSE0020"));
    assert!(
        compile_err(r#"<xsl:output method="xml"/><xsl:output method="html"/>"#)
            .contains("XTSE1560")
    );
    assert!(compile_err(
        r#"<xsl:output name="a" indent="yes"/><xsl:output name="a" indent="no"/>"#
    )
    .contains("XTSE1560"));
    // named output definitions do not affect the principal result
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}"><xsl:output name="t" method="text"/><xsl:output omit-xml-declaration="yes"/><xsl:template match="/"><r/></xsl:template></xsl:stylesheet>"#
    );
    assert_eq!(run(&s, "<d/>"), "<r/>");
}

#[test]
fn utf16_output_has_a_byte_order_mark_by_default() {
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}"><xsl:output encoding="UTF-16" omit-xml-declaration="yes"/><xsl:template match="/"><r>é</r></xsl:template></xsl:stylesheet>"#
    );
    let out = compile(&s)
        .transform_bytes(b"<d/>", &BTreeMap::new())
        .unwrap();
    let expected: Vec<u8> = "\u{feff}<r>é</r>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert_eq!(out, expected);
}

fn run_err(text: &str, input: &str) -> String {
    match run_with(text, input, &[]) {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e.to_string(),
    }
}

fn compile_err(text: &str) -> String {
    match Stylesheet::compile_str(text, Path::new("test.xsl")) {
        Ok(_) => panic!("expected a static error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_computed_names_and_namespaces_are_dynamic_errors() {
    let cases = [
        // a colon without a prefix is no QName
        (r#"<xsl:element name="{':foo'}"/>"#, "XTDE0820"),
        (
            r#"<xsl:element name="a:foo" namespace="{'http://www.w3.org/2000/xmlns/'}"/>"#,
            "XTDE0835",
        ),
        (
            r#"<xsl:attribute name="a:foo" namespace="{'http://www.w3.org/2000/xmlns/'}"/>"#,
            "XTDE0865",
        ),
        (
            r#"<xsl:namespace name="{'xmlns'}">http://x/</xsl:namespace>"#,
            "XTDE0920",
        ),
        (r#"<xsl:namespace name="p" select="''"/>"#, "XTDE0930"),
        (
            r#"<xsl:namespace name="xml">http://x/</xsl:namespace>"#,
            "XTDE0925",
        ),
        (
            r#"<xsl:namespace name="p">http://www.w3.org/2000/xmlns/</xsl:namespace>"#,
            "XTDE0905",
        ),
        (
            r#"<xsl:namespace name="p">http://a/</xsl:namespace><xsl:namespace name="p">http://b/</xsl:namespace>"#,
            "XTDE0430",
        ),
        // a default namespace for an element in no namespace
        (
            r#"<xsl:namespace name="">http://a/</xsl:namespace>"#,
            "XTDE0440",
        ),
    ];
    for (body, code) in cases {
        let s = sheet(
            "3.0",
            &format!(r#"<xsl:template match="/"><out>{body}</out></xsl:template>"#),
        );
        let e = run_err(&s, "<a/>");
        assert!(e.contains(code), "{body}: {e}");
    }
    // the same namespace twice, and a namespace for the element's own
    // prefix (renamed by the serializer) are fine
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><p:out xmlns:p="http://p/" xsl:exclude-result-prefixes="p"><xsl:namespace name="q">http://q/</xsl:namespace><xsl:namespace name="q">http://q/</xsl:namespace></p:out></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<a/>"),
        r#"<p:out xmlns:p="http://p/" xmlns:q="http://q/"/>"#
    );
    // attributes of a document node copied inside an element: XTDE0420
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><out><xsl:copy><xsl:attribute name="x">1</xsl:attribute></xsl:copy></out></xsl:template>"#,
    );
    assert!(run_err(&s, "<a/>").contains("XTDE0420"));
}

#[test]
fn static_errors_of_declarations_are_reported_at_load() {
    let cases = [
        (r#"<xsl:template name="xsl:main"/>"#, "XTSE0080"),
        (
            r#"<xsl:variable name="fn:v" xmlns:fn="http://www.w3.org/2005/xpath-functions" select="1"/>"#,
            "XTSE0080",
        ),
        (
            r#"<xsl:strip-space elements="*">*</xsl:strip-space>"#,
            "XTSE0260",
        ),
        (
            r#"<xsl:strip-space elements="a"/><xsl:preserve-space elements="a"/>"#,
            "XTSE0270",
        ),
        (r#"<xsl:template name="n" priority="2"/>"#, "XTSE0500"),
        (r#"<xsl:template match="a" priority="2.0e2"/>"#, "XTSE0530"),
        (r#"<xsl:template match="a" mode=""/>"#, "XTSE0550"),
        (r#"<xsl:template match="a" mode="m n m"/>"#, "XTSE0550"),
        (r##"<xsl:template match="a" mode="#all m"/>"##, "XTSE0550"),
        (
            r#"<xsl:template match="/"><xsl:call-template name="t"><xsl:with-param name="p" select="1"/></xsl:call-template></xsl:template><xsl:template name="t"/>"#,
            "XTSE0680",
        ),
        (
            r#"<xsl:template match="/"><xsl:number value="1" level="any"/></xsl:template>"#,
            "XTSE0975",
        ),
        (
            r#"<xsl:template match="/"><xsl:for-each select="1"><xsl:sort/><xsl:sort stable="yes"/></xsl:for-each></xsl:template>"#,
            "XTSE1017",
        ),
    ];
    for (body, code) in cases {
        let e = compile_err(&sheet("3.0", body));
        assert!(e.contains(code), "{body}: {e}");
    }
    let e = compile_err(&format!(
        r#"<xsl:stylesheet version="2.0e3" xmlns:xsl="{XSL}"/>"#
    ));
    assert!(e.contains("XTSE0110"), "{e}");
    let e = compile_err(&format!(
        r#"<xsl:stylesheet version="2.0" exclude-result-prefixes="nope" xmlns:xsl="{XSL}"/>"#
    ));
    assert!(e.contains("XTSE0808"), "{e}");
    // xsl:initial-template is the one name in the XSLT namespace allowed
    compile(&sheet(
        "3.0",
        r#"<xsl:template name="xsl:initial-template"/>"#,
    ));
}

#[test]
fn typed_template_parameters_convert_supplied_values() {
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><xsl:apply-templates select="*"><xsl:with-param name="p" select="/a/@n"/></xsl:apply-templates></xsl:template>
           <xsl:template match="a"><xsl:param name="p" as="xs:double" xmlns:xs="http://www.w3.org/2001/XMLSchema"/><r><xsl:value-of select="$p instance of xs:double" xmlns:xs="http://www.w3.org/2001/XMLSchema"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, r#"<a n="3"/>"#), "<r>true</r>");
    let s = sheet(
        "2.0",
        r#"<xsl:template match="/"><xsl:apply-templates select="*"><xsl:with-param name="p" select="current-date()"/></xsl:apply-templates></xsl:template>
           <xsl:template match="a"><xsl:param name="p" as="xs:integer" xmlns:xs="http://www.w3.org/2001/XMLSchema"/><r/></xsl:template>"#,
    );
    assert!(run_err(&s, "<a/>").contains("XPTY0004"));
}

#[test]
fn data_elements_are_ignored_and_extension_instructions_fall_back() {
    let s = format!(
        r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}" xmlns:d="urn:data" xmlns:ext="urn:ext" extension-element-prefixes="ext">
             <xsl:output omit-xml-declaration="yes"/>
             <d:table><d:row>one</d:row></d:table>
             <xsl:template match="/"><r><ext:magic><xsl:fallback>fb</xsl:fallback></ext:magic><xsl:value-of select="document('')/*/d:table/d:row"/></r></xsl:template>
           </xsl:stylesheet>"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.xsl");
    std::fs::write(&path, &s).unwrap();
    let st = Stylesheet::compile_file(&path).unwrap();
    let out = st.transform_bytes(b"<a/>", &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        r#"<r xmlns:d="urn:data">fbone</r>"#
    );
    // no xsl:fallback: XTDE1450 when (and only when) it runs
    let s = format!(
        r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}" xmlns:ext="urn:ext" extension-element-prefixes="ext">
             <xsl:template match="/"><r><xsl:if test="/b"><ext:magic/></xsl:if></r></xsl:template>
           </xsl:stylesheet>"#
    );
    assert!(run(&s, "<a/>").contains("<r/>"));
    assert!(run_err(&s, "<b/>").contains("XTDE1450"));
}

#[test]
fn static_and_temporary_tree_base_uris() {
    let s = format!(
        r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}" xml:base="http://example.org/main/">
             <xsl:output omit-xml-declaration="yes"/>
             <xsl:template match="/">
               <xsl:variable name="t" xml:base="/tmp/"><e xml:base="sub/"/></xsl:variable>
               <r s="{{static-base-uri()}}" u="{{resolve-uri('x.xml')}}" t="{{base-uri($t/e)}}" d="{{document-uri($t)}}" i="{{base-uri(/*)}}"/>
             </xsl:template>
           </xsl:stylesheet>"#
    );
    assert_eq!(
        run(&s, "<a/>"),
        r#"<r s="http://example.org/main/" u="http://example.org/main/x.xml" t="http://example.org/tmp/sub/" d="" i=""/>"#
    );
    // a stylesheet file: its file URI; document() relative to it
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.xml"), "<d>data</d>").unwrap();
    let path = dir.path().join("s.xsl");
    std::fs::write(
        &path,
        format!(
            r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}"><xsl:output omit-xml-declaration="yes"/>
                 <xsl:template match="/"><r b="{{ends-with(static-base-uri(), '/s.xsl') and starts-with(static-base-uri(), 'file:///')}}"><xsl:value-of select="document('d.xml')"/></r></xsl:template>
               </xsl:stylesheet>"#
        ),
    )
    .unwrap();
    let st = Stylesheet::compile_file(&path).unwrap();
    let out = st.transform_bytes(b"<a/>", &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        r#"<r b="true">data</r>"#
    );
}

#[test]
fn message_terminate_is_an_attribute_value_template() {
    let s = sheet(
        "2.0",
        r#"<xsl:param name="t" select="'no'"/><xsl:template match="/"><r><xsl:message terminate="{$t}">m</xsl:message></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<a/>"), "<r/>");
    assert!(matches!(
        run_with(&s, "<a/>", &[("t", "yes")]),
        Err(TransformError::Terminated { .. })
    ));
    let e = run_with(&s, "<a/>", &[("t", "maybe")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("XTDE0030"), "{e}");
    // an invalid literal value is a static error
    assert!(compile_err(&sheet(
        "2.0",
        r#"<xsl:template match="/"><xsl:message terminate="maybe"/></xsl:template>"#
    ))
    .contains("terminate"));
}

#[test]
fn availability_functions_reject_invalid_names() {
    for (call, code) in [
        ("type-available('foo::bar')", "XTDE1428"),
        ("function-available('nope:f')", "XTDE1400"),
        ("element-available('a b')", "XTDE1440"),
    ] {
        let s = sheet(
            "3.0",
            &format!(
                r#"<xsl:param name="p" select="1"/><xsl:template match="/"><r><xsl:value-of select="if ($p) then {call} else ()"/></r></xsl:template>"#
            ),
        );
        let e = run_err(&s, "<a/>");
        assert!(e.contains(code), "{call}: {e}");
    }
}

#[test]
fn document_resolves_against_a_base_node() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    std::fs::write(dir.path().join("sub/base.xml"), "<b/>").unwrap();
    std::fs::write(dir.path().join("sub/deeper/t.xml"), "<t>found</t>").unwrap();
    let path = dir.path().join("s.xsl");
    std::fs::write(
        &path,
        format!(
            r#"<xsl:stylesheet version="2.0" xmlns:xsl="{XSL}"><xsl:output omit-xml-declaration="yes"/>
                 <xsl:template match="/"><r><xsl:value-of select="document('deeper/t.xml', document('sub/base.xml'))"/>|<xsl:value-of select="doc-available(resolve-uri('sub/base.xml', static-base-uri()))"/>|<xsl:value-of select="doc-available('file:///etc/hostname')"/></r></xsl:template>
               </xsl:stylesheet>"#
        ),
    )
    .unwrap();
    let st = Stylesheet::compile_file(&path).unwrap();
    let out = st.transform_bytes(b"<a/>", &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "<r>found|true|false</r>"
    );
}

#[test]
fn namespace_axis_and_static_qname_casts() {
    let s = format!(
        r#"<xsl:stylesheet version="3.0" xmlns:xsl="{XSL}" xmlns:my="urn:my" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="my xs"><xsl:output omit-xml-declaration="yes"/>
        <xsl:template match="/*">
          <out ns="{{string-join(sort(namespace::*/name()), ',')}}" p="{{namespace::p}}"
               q="{{namespace-uri-from-QName(xs:QName('my:x'))}}">
            <xsl:copy-of select="namespace::p"/>
          </out>
        </xsl:template></xsl:stylesheet>"#
    );
    assert_eq!(
        run(&s, r#"<r xmlns:p="urn:p" xmlns="urn:d"/>"#),
        r#"<out xmlns:p="urn:p" ns=",p,xml" p="urn:p" q="urn:my"/>"#
    );
}

#[test]
fn for_each_group_group_by_composite_and_multiple_keys() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:for-each-group select="//i" group-by="@k"><g k="{current-grouping-key()}" n="{count(current-group())}"/></xsl:for-each-group>|<xsl:for-each-group select="//i" group-by="tokenize(@t)"><t k="{current-grouping-key()}"><xsl:value-of select="current-group()/@id" separator=","/></t></xsl:for-each-group>|<xsl:for-each-group select="//i" group-by="@k, @c" composite="yes"><xsl:sort select="current-grouping-key()[2]" order="descending"/><c k="{current-grouping-key()}" n="{count(current-group())}"/></xsl:for-each-group></r></xsl:template>"#,
    );
    assert_eq!(
        run(
            &s,
            r#"<d><i id="1" k="b" c="1" t="x y"/><i id="2" k="a" c="1" t="y"/><i id="3" k="b" c="2" t="x x"/><i id="4" k="b" c="1" t="z"/></d>"#
        ),
        r#"<r><g k="b" n="3"/><g k="a" n="1"/>|<t k="x">1,3</t><t k="y">1,2</t><t k="z">4</t>|<c k="b 2" n="1"/><c k="b 1" n="2"/><c k="a 1" n="1"/></r>"#
    );
}

#[test]
fn for_each_group_adjacent_starting_and_ending_with() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:for-each-group select="d/*" group-adjacent="name()"><a n="{current-grouping-key()}" c="{count(current-group())}"/></xsl:for-each-group><xsl:for-each-group select="d/*" group-starting-with="h"><s><xsl:value-of select="current-group()/name()"/></s></xsl:for-each-group><xsl:for-each-group select="d/*" group-ending-with="p[@end]"><e><xsl:value-of select="current-group()/name()"/></e></xsl:for-each-group></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, r#"<d><p/><h/><p end="1"/><p/><h/><p end="1"/></d>"#),
        r#"<r><a n="p" c="1"/><a n="h" c="1"/><a n="p" c="2"/><a n="h" c="1"/><a n="p" c="1"/><s>p</s><s>h p p</s><s>h p</s><e>p h p</e><e>p h p</e></r>"#
    );
}

#[test]
fn sort_without_data_type_compares_typed_values_in_2_0_but_strings_in_1_0() {
    let body = r#"<xsl:template match="/"><r><xsl:for-each select="//v"><xsl:sort select="if (system-property('xsl:version') = '1.0') then string(.) else number(.)"/><xsl:value-of select="."/>,</xsl:for-each></r></xsl:template>"#;
    assert_eq!(
        run(&sheet("3.0", body), "<d><v>19</v><v>7</v><v>100</v></d>"),
        "<r>7,19,100,</r>"
    );
    let body1 = r#"<xsl:template match="/"><r><xsl:for-each select="//v"><xsl:sort select="number(.)"/><xsl:value-of select="."/>,</xsl:for-each></r></xsl:template>"#;
    assert_eq!(
        run(&sheet("1.0", body1), "<d><v>19</v><v>7</v><v>100</v></d>"),
        "<r>100,19,7,</r>"
    );
    // mixing types in one typed sort key is XTDE1030
    let mixed = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:for-each select="(1, 'a')"><xsl:sort select="."/><xsl:value-of select="."/></xsl:for-each></r></xsl:template>"#,
    );
    let e = run_with(&mixed, "<d/>", &[]).unwrap_err();
    assert!(e.to_string().contains("XTDE1030"), "{e}");
}

#[test]
fn next_match_tunnel_params_and_mode_on_no_match() {
    let s = sheet(
        "3.0",
        r#"<xsl:mode on-no-match="shallow-copy"/>
        <xsl:template match="secret">
          <xsl:param name="mask" tunnel="yes" select="'?'"/>
          <secret><xsl:value-of select="$mask"/></secret>
        </xsl:template>
        <xsl:template match="item[@v]" priority="2"><wrap><xsl:next-match><xsl:with-param name="p" select="'P'"/></xsl:next-match></wrap></xsl:template>
        <xsl:template match="item"><xsl:param name="p" select="'-'"/><i p="{$p}"/></xsl:template>
        <xsl:template match="/"><xsl:apply-templates><xsl:with-param name="mask" tunnel="yes" select="'***'"/></xsl:apply-templates></xsl:template>"#,
    );
    assert_eq!(
        run(
            &s,
            r#"<d a="1"><x><secret>pin</secret></x><item v="1"/><item/><!--c--></d>"#
        ),
        r#"<d a="1"><x><secret>***</secret></x><wrap><i p="P"/></wrap><i p="-"/><!--c--></d>"#
    );
    let fail = sheet(
        "3.0",
        r#"<xsl:mode on-no-match="fail"/><xsl:template match="/"><xsl:apply-templates select="*"/></xsl:template>"#,
    );
    let e = run_with(&fail, "<d/>", &[]).unwrap_err();
    assert!(e.to_string().contains("XTDE0555"), "{e}");
}

#[test]
fn analyze_string_with_regex_groups() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:analyze-string select="string(d)" regex="([0-9]+)-([a-z]+)" flags="i"><xsl:matching-substring><m n="{regex-group(1)}" w="{regex-group(2)}" all="{regex-group(0)}" none="{regex-group(7)}"/></xsl:matching-substring><xsl:non-matching-substring><t><xsl:value-of select="."/></t></xsl:non-matching-substring></xsl:analyze-string></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d>a 12-AB, 3-c.</d>"),
        r#"<r><t>a </t><m n="12" w="AB" all="12-AB" none=""/><t>, </t><m n="3" w="c" all="3-c" none=""/><t>.</t></r>"#
    );
}

#[test]
fn try_catch_and_iterate() {
    let s = sheet(
        "3.0",
        r##"<xsl:template match="/" xmlns:err="http://www.w3.org/2005/xqt-errors" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all"><r>
          <xsl:for-each select="//v"><xsl:try><ok><xsl:value-of select="xs:integer(.)"/></ok><xsl:catch errors="err:FORG0001"><bad c="{local-name-from-QName($err:code)}"/></xsl:catch></xsl:try></xsl:for-each>
          <xsl:iterate select="//v[. castable as xs:integer]">
            <xsl:param name="sum" select="0"/>
            <xsl:on-completion><total><xsl:value-of select="$sum"/></total></xsl:on-completion>
            <xsl:if test=". = 99"><xsl:break><stop at="{$sum}"/></xsl:break></xsl:if>
            <xsl:next-iteration><xsl:with-param name="sum" select="$sum + ."/></xsl:next-iteration>
          </xsl:iterate></r></xsl:template>"##,
    );
    assert_eq!(
        run(&s, "<d><v>1</v><v>x</v><v>2</v></d>"),
        r#"<r><ok>1</ok><bad c="FORG0001"/><ok>2</ok><total>3</total></r>"#
    );
    assert_eq!(
        run(&s, "<d><v>1</v><v>99</v><v>2</v></d>"),
        r#"<r><ok>1</ok><ok>99</ok><ok>2</ok><stop at="1"/></r>"#
    );
}

#[test]
fn iterate_over_many_items_stays_flat() {
    // xsl:iterate is a loop, not recursion: no depth budget is used
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><xsl:iterate select="1 to 50000"><xsl:param name="n" select="0"/><xsl:on-completion><xsl:value-of select="$n"/></xsl:on-completion><xsl:next-iteration><xsl:with-param name="n" select="$n + 1"/></xsl:next-iteration></xsl:iterate></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d/>"), "<r>50000</r>");
}

#[test]
fn perform_sort_and_xsl_map() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><xsl:variable name="m" as="map(*)"><xsl:map><xsl:map-entry key="'a'" select="1"/><xsl:map-entry key="'b'"><x/></xsl:map-entry></xsl:map></xsl:variable><r><xsl:perform-sort select="(3, 1, 2)"><xsl:sort select="." order="descending"/></xsl:perform-sort>|<xsl:value-of select="$m?a, count($m?b), map:size($m)" xmlns:map="http://www.w3.org/2005/xpath-functions/map"/></r></xsl:template>"#,
    );
    assert_eq!(run(&s, "<d/>"), "<r>3 2 1|1 1 2</r>");
}

#[test]
fn text_value_templates_and_conditional_content() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/" expand-text="yes"><r>n={count(//v)} {{x}}<xsl:text expand-text="no">{y}</xsl:text><xsl:where-populated><w>{//none}</w></xsl:where-populated><xsl:where-populated><w>{//v[1]}</w></xsl:where-populated><s><xsl:on-non-empty><h/></xsl:on-non-empty><xsl:sequence select="//none"/><xsl:on-empty><e/></xsl:on-empty></s><t><xsl:on-non-empty><h/></xsl:on-non-empty><xsl:value-of select="//v"/><xsl:on-empty><e/></xsl:on-empty></t></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><v>1</v><v>2</v></d>"),
        "<r>n=2 {x}{y}<w>1</w><s><e/></s><t><h/>1 2</t></r>"
    );
}

#[test]
fn number_select_and_sequence_construction_spacing() {
    let s = sheet(
        "3.0",
        r#"<xsl:template match="/"><r><n><xsl:number select="//v[2]"/></n><a><xsl:sequence select="1, 2"/><xsl:sequence select="3"/>x<xsl:sequence select="'y'"/></a><b><xsl:for-each select="1 to 3"><xsl:sequence select="."/></xsl:for-each></b><c><xsl:value-of><xsl:sequence select="1, 2"/><xsl:text>t</xsl:text><xsl:sequence select="3"/></xsl:value-of></c><d><xsl:value-of separator="/"><xsl:text>a</xsl:text><xsl:text>b</xsl:text><xsl:sequence select="'x', 'y'"/></xsl:value-of></d></r></xsl:template>"#,
    );
    assert_eq!(
        run(&s, "<d><v/><v/></d>"),
        "<r><n>2</n><a>1 2 3xy</a><b>1 2 3</b><c>12t3</c><d>ab/x/y</d></r>"
    );
}

#[test]
fn mode_on_multiple_match_fail() {
    let body = |decl: &str| {
        sheet(
            "3.0",
            &format!(
                r#"{decl}<xsl:template match="a"><x/></xsl:template><xsl:template match="*"><y/></xsl:template><xsl:template match="d/a" priority="0"><z/></xsl:template><xsl:template match="/"><r><xsl:apply-templates select="d/*"/></r></xsl:template>"#
            ),
        )
    };
    // without the declaration the last rule wins
    assert_eq!(run(&body(""), "<d><a/><b/></d>"), "<r><z/><y/></r>");
    let e = run_with(
        &body(r#"<xsl:mode on-multiple-match="fail"/>"#),
        "<d><a/><b/></d>",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("XTDE0540"), "{e}");
}

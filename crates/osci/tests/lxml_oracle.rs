//! The canonicaliser against an independent one: lxml (libxml2's
//! `xmlC14NDocSaveTo`, inclusive C14N 1.0 without comments, over the
//! document subset of one element and its descendants) on a corpus of
//! tricky cases — default namespace undeclared, prefixes rebound and
//! redeclared, `xml:` attributes inherited, attribute order by namespace
//! URI, white space and line ends, references, CDATA, comments and
//! processing instructions.
//!
//! lxml comes from PyPI into a venv under the target directory, made once
//! (`python3 -m venv`, `pip install lxml==LXML_VERSION`); `.ci/run` has
//! python3-venv installed for the Saxon oracle already. Missing tools fail
//! the test, they never skip it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use drehscheibe_osci::c14n;
use drehscheibe_testkit::python::run_checked;

const LXML_VERSION: &str = "6.0.2";

/// (name, document, Id of the apex)
const CASES: &[(&str, &str, &str)] = &[
    (
        "inherited namespaces, unused ones too",
        r#"<r xmlns="urn:d" xmlns:b="urn:b" xmlns:a="urn:a"><a:x Id="x" b:z="1" y="2" a:w="3"><a:c/></a:x></r>"#,
        "x",
    ),
    (
        "default namespace undeclared below the apex",
        r#"<r xmlns="urn:d"><e Id="e"><f xmlns=""><g xmlns="urn:d"/></f></e></r>"#,
        "e",
    ),
    (
        "empty default namespace at the apex",
        r#"<r><e Id="e" xmlns=""><f/></e></r>"#,
        "e",
    ),
    (
        "prefix redeclared with the same and another URI",
        r#"<r xmlns:p="urn:1"><e Id="e" xmlns:p="urn:1"><f xmlns:p="urn:1"><g xmlns:p="urn:2"><h xmlns:p="urn:1"/></g></f></e></r>"#,
        "e",
    ),
    (
        "xml attributes on the apex and below",
        r#"<r><s><e Id="e" xml:lang="fr" xml:space="preserve"><f xml:lang="en"/></e></s></r>"#,
        "e",
    ),
    (
        "attributes sorted by namespace URI, not prefix",
        r#"<r xmlns:z="urn:a" xmlns:a="urn:z"><e Id="e" a:k="1" z:k="2" k="3" b="4" a:a="5"/></r>"#,
        "e",
    ),
    (
        "white space, line ends and references",
        "<r>\r\n<e Id=\"e\" a=\"  x\ty\r\nz &#9;&#10;&#13;\">\r\n  t\rx &#13; &amp; &lt; &gt; &quot; &apos; &#x20AC;\n</e>\r\n</r>",
        "e",
    ),
    (
        "CDATA, comments and processing instructions",
        "<r><e Id=\"e\"><![CDATA[a < b && c > d]]><!-- away --><?target some data?><f><!--x--></f></e></r>",
        "e",
    ),
    (
        "non-ASCII text and names",
        "<r xmlns:ä=\"urn:ae\"><ä:ë Id=\"e\" ü=\"ö\">Grüße – «ok»</ä:ë></r>",
        "e",
    ),
    (
        "an OSCI-like header block with redundant declarations",
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:osci="http://www.osci.de/2002/04/osci" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><soap:Header><osci:ControlBlock xmlns:osci="http://www.osci.de/2002/04/osci" Id="controlblock" soap:mustUnderstand="1" ConversationId="7"><osci:Response>a</osci:Response><osci:SequenceNumber>1</osci:SequenceNumber></osci:ControlBlock></soap:Header></soap:Envelope>"#,
        "controlblock",
    ),
];

fn lxml_python() -> PathBuf {
    drehscheibe_testkit::python::venv(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "lxml",
        LXML_VERSION,
        "lxml.etree",
    )
}

/// lxml's inclusive C14N 1.0 (no comments) of the element with Id `id`.
fn lxml_c14n(python: &Path, xml: &str, id: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).unwrap();
    let script = r#"
import sys
from lxml import etree
doc = etree.parse(sys.argv[1])
el = doc.xpath('//*[@Id=$id]', id=sys.argv[2])[0]
sys.stdout.buffer.write(etree.tostring(el, method='c14n', exclusive=False, with_comments=False))
"#;
    run_checked(
        Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(&file)
            .arg(id),
        "lxml c14n",
    )
}

/// Where lxml is not the oracle: C14N 1.0 §2.4 includes in the apex the
/// `xml:` attributes of its nearest ancestors (XML-DSig implementations
/// such as Apache Santuario, which the OSCI reference library uses, do);
/// lxml's `tostring(element, method="c14n")` leaves them out. Our output
/// is held to the specification's text here.
#[test]
fn xml_attributes_of_ancestors_are_inherited_as_the_specification_says() {
    let xml = r#"<r xml:lang="de" xml:space="preserve"><s xml:lang="fr"><e Id="e"><f xml:lang="en"/></e></s></r>"#;
    assert_eq!(
        String::from_utf8(c14n::canonicalize_id(xml.as_bytes(), "e").unwrap()).unwrap(),
        r#"<e Id="e" xml:lang="fr" xml:space="preserve"><f xml:lang="en"></f></e>"#
    );
}

#[test]
fn the_canonical_form_is_lxmls_on_every_tricky_case() {
    let python = lxml_python();
    let mut differ = Vec::new();
    for (name, xml, id) in CASES {
        let ours =
            c14n::canonicalize_id(xml.as_bytes(), id).unwrap_or_else(|e| panic!("{name}: {e}"));
        let theirs = lxml_c14n(&python, xml, id);
        if ours != theirs {
            differ.push(format!(
                "{name}:\n  ours:  {}\n  lxml:  {}",
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

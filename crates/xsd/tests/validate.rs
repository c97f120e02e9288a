//! Validating documents: verdicts, positions, bounds, hostile input,
//! threads and size.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{factory, violation, write, ITEMS_XSD};
use drehscheibe_xsd::{
    cached_on_this_thread, SchemaIssue, SchemaValidator, XsdSchema, DOCTYPE_REFUSED,
    MAX_CACHED_PER_THREAD, MAX_ISSUE_CHARS, MAX_REPORTED_ISSUES,
};

fn items_schema() -> (tempfile::TempDir, Arc<XsdSchema>) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "items.xsd", ITEMS_XSD);
    let schema = factory()
        .load_schema(dir.path(), "items.xsd")
        .expect("schema compiles");
    (dir, schema)
}

const VALID: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:t" n="2">
  <item>1</item>
  <item>2</item>
</root>
"#;

const INVALID: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:t">
  <item>1</item>
    <item>x</item>
  <other/>
</root>
"#;

const NOT_WELL_FORMED: &str = "<root xmlns=\"urn:t\">\n <item>1</item>\n  <item>2</itm>\n</root>\n";

#[test]
fn valid_document_passes() {
    let (_dir, schema) = items_schema();
    assert_eq!(schema.location(), "items.xsd");
    schema.validate(VALID.as_bytes()).expect("valid");
    // With a prefix and an empty root as well.
    schema
        .validate(b"<t:root xmlns:t='urn:t'/>")
        .expect("valid with prefix");
}

#[test]
fn invalid_document_lists_issues_with_line_and_column() {
    let (_dir, schema) = items_schema();
    let v = violation(schema.validate(INVALID.as_bytes()));
    assert_eq!(v.schema, "items.xsd");
    assert_eq!(v.more, 0);
    // Line numbers as `xmllint --stream --schema` reports them; columns
    // are those of the element's start tag.
    assert_eq!(
        v.issues,
        vec![
            SchemaIssue {
                line: Some(4),
                column: Some(5),
                message: "Element '{urn:t}item': 'x' is not a valid value of the atomic type 'xs:int'."
                    .to_string(),
            },
            SchemaIssue {
                line: Some(5),
                column: Some(3),
                message: "Element '{urn:t}other': This element is not expected. Expected is ( {urn:t}item )."
                    .to_string(),
            },
        ]
    );
    let text = v.to_string();
    assert!(text.starts_with("not valid against schema items.xsd (2 errors): line 4, column 5: "));
}

#[test]
fn columns_of_several_elements_on_one_line_and_attributes() {
    let (_dir, schema) = items_schema();
    let doc = "<t:root xmlns:t='urn:t' n='zz'>\n\t<t:item>x</t:item><t:item>y</t:item> <t:item>3</t:item>\n</t:root>";
    let v = violation(schema.validate(doc.as_bytes()));
    let positions: Vec<_> = v.issues.iter().map(|i| (i.line, i.column)).collect();
    assert_eq!(
        positions,
        vec![(Some(1), Some(1)), (Some(2), Some(2)), (Some(2), Some(20))]
    );
    assert!(v.issues[0].message.contains("attribute 'n': 'zz'"), "{v}");
    assert!(v.issues[2].message.contains("'y'"), "{v}");
}

#[test]
fn missing_child_is_reported_at_the_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "s.xsd",
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="a">
    <xs:complexType><xs:sequence><xs:element name="b" type="xs:string"/></xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>"#,
    );
    let schema = factory()
        .load_schema(dir.path(), "s.xsd")
        .expect("compiles");
    // libxml2 finds a missing child at the end tag and reports its line
    // (as xmllint does); the column is that of the end tag, or of the
    // start tag when both are on that line.
    let v = violation(schema.validate(b"<?xml version='1.0'?>\n\n   <a>\n</a>\n"));
    assert_eq!(v.issues.len(), 1, "{v}");
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(4), Some(1)));
    assert!(v.issues[0].message.contains("Missing child element"), "{v}");
    let v = violation(schema.validate(b"\n  <a> </a>"));
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(2), Some(3)));
    let v = violation(schema.validate(b"<a\n/>"));
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(2), None));
    // An undeclared root.
    let v = violation(schema.validate(b"<b/>"));
    assert!(
        v.issues[0]
            .message
            .contains("No matching global declaration"),
        "{v}"
    );
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(1), Some(1)));
}

#[test]
fn issues_are_bounded_and_the_rest_counted() {
    let (_dir, schema) = items_schema();
    let mut doc = String::from("<root xmlns=\"urn:t\">\n");
    for _ in 0..200 {
        doc.push_str("<item>x</item>\n");
    }
    doc.push_str("</root>\n");
    let v = violation(schema.validate(doc.as_bytes()));
    assert_eq!(v.issues.len(), MAX_REPORTED_ISSUES);
    assert_eq!(v.more, 150);
    for (i, issue) in v.issues.iter().enumerate() {
        assert_eq!(issue.line, Some(i as u32 + 2));
        assert_eq!(issue.column, Some(1));
    }
    assert!(v.to_string().contains("(200 errors)"));
    assert!(v.to_string().ends_with("; and 150 more"));
}

#[test]
fn long_messages_are_clipped() {
    let (_dir, schema) = items_schema();
    let value = "9".repeat(2000);
    let doc = format!("<root xmlns='urn:t'><item>{value}</item></root>");
    let v = violation(schema.validate(doc.as_bytes()));
    let message = &v.issues[0].message;
    assert_eq!(message.chars().count(), MAX_ISSUE_CHARS, "{message}");
    assert!(message.ends_with('…'));
}

#[test]
fn not_well_formed_document_is_invalid_with_the_parser_error() {
    let (_dir, schema) = items_schema();
    let v = violation(schema.validate(NOT_WELL_FORMED.as_bytes()));
    // Parsing stops at the first fatal error; nothing after it is kept.
    assert_eq!(v.issues.len(), 1, "{v}");
    assert_eq!(v.more, 0);
    assert_eq!(v.issues[0].line, Some(3));
    assert!(v.issues[0].column.is_some());
    assert!(
        v.issues[0]
            .message
            .contains("Opening and ending tag mismatch: item line 3 and itm"),
        "{v}"
    );

    let v = violation(schema.validate(b""));
    assert!(!v.issues.is_empty());
    let v = violation(schema.validate(b"<root xmlns='urn:t'>"));
    assert!(!v.issues.is_empty(), "{v}");
    let v = violation(schema.validate(b"\n\nno xml at all"));
    assert_eq!(v.issues[0].line, Some(3), "{v}");
}

#[test]
fn external_entity_is_refused_and_the_secret_never_shown() {
    let (dir, schema) = items_schema();
    let secret = "TOP-SECRET-4711";
    let secret_file = write(dir.path(), "secret.txt", secret);
    let url = format!("file://{}", secret_file.display());
    let dtd = write(
        dir.path(),
        "secret.dtd",
        &format!("<!ENTITY leak SYSTEM \"{url}\">"),
    );
    let documents = [
        // External general entity (classic XXE).
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE root [ <!ENTITY xxe SYSTEM \"{url}\"> ]>\n<root xmlns=\"urn:t\"><item>&xxe;</item></root>\n"
        ),
        // Plain path instead of a URL.
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE root [ <!ENTITY xxe SYSTEM \"{}\"> ]>\n<root xmlns=\"urn:t\"><item>&xxe;</item></root>\n",
            secret_file.display()
        ),
        // External DTD defining the entity.
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE root SYSTEM \"{}\">\n<root xmlns=\"urn:t\"><item>&leak;</item></root>\n",
            dtd.display()
        ),
        // Parameter entity pulling in the file.
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE root [ <!ENTITY % p SYSTEM \"{url}\"> %p; ]>\n<root xmlns=\"urn:t\"/>\n"
        ),
    ];
    for doc in documents {
        let result = schema.validate(doc.as_bytes());
        let report = format!("{result:?}");
        let v = violation(result);
        assert!(!report.contains(secret), "secret leaked: {report}");
        assert!(!v.to_string().contains(secret), "secret leaked: {v}");
        assert_eq!(
            v.issues,
            vec![SchemaIssue {
                line: Some(2),
                column: Some(1),
                message: DOCTYPE_REFUSED.to_string()
            }],
            "{doc}"
        );
    }
}

/// `text` as UTF-16LE with a byte order mark.
fn utf16(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

#[test]
fn doctype_is_refused_by_the_reader_as_well() {
    // In UTF-16 the byte scan of the prolog does not see the DOCTYPE; the
    // reader reports the node and validation stops there.
    let (dir, schema) = items_schema();
    let secret = "TOP-SECRET-0815";
    let secret_file = write(dir.path(), "secret.txt", secret);
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<!DOCTYPE root [ <!ENTITY xxe SYSTEM \"file://{}\"> ]>\n<root xmlns=\"urn:t\"><item>&xxe;</item></root>\n",
        secret_file.display()
    );
    let result = schema.validate(&utf16(&doc));
    assert!(!format!("{result:?}").contains(secret));
    let v = violation(result);
    assert_eq!(v.issues.len(), 1, "{v}");
    assert_eq!(v.issues[0].message, DOCTYPE_REFUSED);
    // And a valid UTF-16 document passes.
    schema
        .validate(&utf16("<root xmlns=\"urn:t\"><item>1</item></root>"))
        .expect("valid UTF-16");
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let (_dir, schema) = items_schema();
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE root [\n <!ENTITY lol \"lol\">\n");
    doc.push_str(" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for i in 2..=9 {
        let prev = format!("&lol{};", i - 1);
        doc.push_str(&format!(" <!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    doc.push_str("]>\n<root xmlns=\"urn:t\"><item>&lol9;</item></root>\n");
    let start = Instant::now();
    let v = violation(schema.validate(doc.as_bytes()));
    // A generous bound: expanding 10^9 "lol"s would take minutes and
    // gigabytes; refusing takes microseconds.
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(v.issues.len(), 1, "{v}");
    assert_eq!(v.issues[0].message, DOCTYPE_REFUSED);
    assert!(!v.to_string().contains("lollol"));
    assert_eq!((v.issues[0].line, v.issues[0].column), (Some(2), Some(1)));

    // In UTF-16 libxml2 parses the subset first; it is refused all the
    // same (by libxml2's entity loop detection or by the DOCTYPE check).
    let start = Instant::now();
    let v = violation(schema.validate(&utf16(&doc.replace("?>", " encoding=\"UTF-16\"?>"))));
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(v.issues.len(), 1, "{v}");
    assert!(
        v.issues[0].message == DOCTYPE_REFUSED
            || v.issues[0].message.contains("entity reference loop"),
        "{v}"
    );
}

#[test]
fn one_schema_from_eight_threads() {
    let (_dir, schema) = items_schema();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let schema = Arc::clone(&schema);
            scope.spawn(move || {
                for i in 0..50 {
                    match (t + i) % 3 {
                        0 => schema.validate(VALID.as_bytes()).expect("valid"),
                        1 => {
                            let v = violation(schema.validate(INVALID.as_bytes()));
                            let lines: Vec<_> =
                                v.issues.iter().map(|i| (i.line, i.column)).collect();
                            assert_eq!(lines, vec![(Some(4), Some(5)), (Some(5), Some(3))]);
                        }
                        _ => {
                            let v = violation(schema.validate(NOT_WELL_FORMED.as_bytes()));
                            assert_eq!(v.issues.len(), 1);
                            assert_eq!(v.issues[0].line, Some(3));
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn thread_cache_is_bounded_and_evicted_schemas_recompile() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "items.xsd", ITEMS_XSD);
    let f = factory();
    // A fresh thread, so that other tests' schemas do not count.
    std::thread::spawn(move || {
        let schemas: Vec<_> = (0..MAX_CACHED_PER_THREAD + 8)
            .map(|_| f.load_schema(dir.path(), "items.xsd").expect("compiles"))
            .collect();
        assert_eq!(cached_on_this_thread(), MAX_CACHED_PER_THREAD);
        for schema in &schemas {
            schema.validate(VALID.as_bytes()).expect("valid");
            violation(schema.validate(INVALID.as_bytes()));
        }
        assert_eq!(cached_on_this_thread(), MAX_CACHED_PER_THREAD);
        let ids: std::collections::HashSet<_> = schemas.iter().map(|s| s.cache_id()).collect();
        assert_eq!(ids.len(), schemas.len());
    })
    .join()
    .expect("thread");
}

#[test]
fn twenty_megabytes_validate() {
    let (_dir, schema) = items_schema();
    let line = "  <item>1234567</item>\n";
    let count = 20 * 1024 * 1024 / line.len();
    let mut doc = String::with_capacity(20 * 1024 * 1024 + 100);
    doc.push_str("<root xmlns=\"urn:t\">\n");
    for _ in 0..count {
        doc.push_str(line);
    }
    let valid = format!("{doc}</root>\n");
    assert!(valid.len() >= 20 * 1000 * 1000);
    schema.validate(valid.as_bytes()).expect("valid");

    // The same with one bad item at the very end: found, at the right place.
    let invalid = format!("{doc}  <item>bad</item>\n</root>\n");
    let v = violation(schema.validate(invalid.as_bytes()));
    assert_eq!(v.issues.len(), 1, "{v}");
    assert_eq!(v.issues[0].line, Some(count as u32 + 2));
    assert_eq!(v.issues[0].column, Some(3));
}

/// An XÖV-style attachment: one `xs:base64Binary` element of 12 MB (more
/// than libxml2's default cap of 10 MB per text node) and nesting deeper
/// than libxml2's default 256 levels both validate.
#[test]
fn a_text_node_over_ten_megabytes_and_deep_nesting_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "anlage.xsd",
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:a" xmlns:a="urn:a" elementFormDefault="qualified">
  <xs:element name="anlage" type="xs:base64Binary"/>
  <xs:element name="n">
    <xs:complexType><xs:sequence><xs:element ref="a:n" minOccurs="0"/></xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>"#,
    );
    let schema = factory()
        .load_schema(dir.path(), "anlage.xsd")
        .expect("schema compiles");
    let base64 = "QUJD".repeat(3 * 1024 * 1024);
    let doc = format!("<anlage xmlns=\"urn:a\">{base64}</anlage>");
    assert!(doc.len() > 12_000_000);
    schema
        .validate(doc.as_bytes())
        .expect("a 12 MB base64 element is valid");
    let deep = format!(
        "{}{}",
        "<n xmlns=\"urn:a\">".repeat(400),
        "</n>".repeat(400)
    );
    schema
        .validate(deep.as_bytes())
        .expect("400 levels are valid");
}

//! Safe input parsing: XML refusals, JSON → `fn:json-to-xml`, content types.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; fine in tests

mod common;

use std::time::{Duration, Instant};

use drehscheibe_rules::{validate, InputDocument, InputError, InputKind, MAX_XML_ATTRIBUTES};

const XML: &str = "application/xml";
const JSON: &str = "application/json";

fn parse_err(bytes: &[u8], ct: &str) -> InputError {
    let parsed = InputDocument::parse(bytes, ct).map(|_| ());
    let validated = validate(bytes, ct);
    assert_eq!(parsed, validated, "parse and validate must agree");
    parsed.unwrap_err()
}

#[test]
fn input_document_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<InputDocument>();
    // And it really moves: parse here, query on another thread.
    let doc = InputDocument::parse(b"<a><b>x</b></a>", XML).unwrap();
    let value = std::thread::spawn(move || doc.evaluate_string("/a/b", &[], "", "").unwrap())
        .join()
        .unwrap();
    assert_eq!(value, "x");
}

#[test]
fn external_entity_is_refused() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"#;
    match parse_err(xxe, XML) {
        InputError::Doctype { line, column } => assert_eq!((line, column), (2, 1)),
        other => panic!("expected Doctype, got {other:?}"),
    }
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    bomb.push_str("]>\n<lolz>&lol9;</lolz>");
    let started = Instant::now();
    let err = parse_err(bomb.as_bytes(), XML);
    // Expansion would be 10^9 "lol"s; refusing happens before any tree.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, InputError::Doctype { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("DOCTYPE"));
}

#[test]
fn undeclared_entity_without_doctype_is_refused() {
    let err = parse_err(b"<a>\n  &xxe;</a>", XML);
    match err {
        InputError::MalformedXml { line, column, .. } => assert_eq!((line, column), (2, 3)),
        other => panic!("expected MalformedXml, got {other:?}"),
    }
    // Predefined entities and character references are fine.
    let doc = InputDocument::parse(b"<a>&lt;&amp;&#x41;&#66;</a>", XML).unwrap();
    assert_eq!(doc.evaluate_string("/a", &[], "", "").unwrap(), "<&AB");
}

fn nested(depth: usize) -> String {
    format!("{}{}", "<e>".repeat(depth), "</e>".repeat(depth))
}

#[test]
fn nesting_limit_is_enforced() {
    InputDocument::parse(nested(512).as_bytes(), XML).unwrap();
    match parse_err(nested(513).as_bytes(), XML) {
        InputError::TooDeep {
            format,
            limit,
            line,
            column,
        } => {
            assert_eq!((format, limit, line), ("XML", 512, 1));
            assert_eq!(column, 512 * 3 + 1, "points at the 513th start tag");
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }
    // A very deep document is refused without a stack overflow.
    assert!(matches!(
        parse_err(nested(100_000).as_bytes(), XML),
        InputError::TooDeep { .. }
    ));
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let err = parse_err(b"<a>\n  <b>text</b>\n  <c>\n</a>", XML);
    let InputError::MalformedXml { line, message, .. } = &err else {
        panic!("expected MalformedXml, got {err:?}");
    };
    assert_eq!(*line, 4, "{message}");
    assert!(err.to_string().contains("line 4"), "{err}");

    for (bad, what) in [
        (&b"<a>"[..], "unclosed"),
        (b"<a/><b/>", "two roots"),
        (b"text<a/>", "text at top"),
        (b"", "empty"),
        (b"<x:a/>", "unbound prefix"),
        (b"<a x='1' x='2'/>", "duplicate attribute"),
        (b"<a><!-- a -- b --></a>", "bad comment"),
    ] {
        assert!(
            matches!(parse_err(bad, XML), InputError::MalformedXml { .. }),
            "{what} must be refused"
        );
    }
}

#[test]
fn encodings_are_honoured() {
    // ISO-8859-1 declared in the XML declaration: 0xFC is 'ü'.
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>Gr\xFCn</a>";
    let doc = InputDocument::parse(latin1, XML).unwrap();
    assert_eq!(doc.evaluate_string("/a", &[], "", "").unwrap(), "Grün");
    // The same bytes without declaration are invalid UTF-8.
    assert!(matches!(
        parse_err(b"<a>Gr\xFCn</a>", XML),
        InputError::Encoding(_)
    ));
    // charset parameter of the content type.
    let doc = InputDocument::parse(b"<a>Gr\xFCn</a>", "text/xml; charset=iso-8859-1").unwrap();
    assert_eq!(doc.evaluate_string("/a", &[], "", "").unwrap(), "Grün");
    // UTF-8 BOM, UTF-16LE with BOM.
    let doc = InputDocument::parse(b"\xEF\xBB\xBF<a>ok</a>", XML).unwrap();
    assert_eq!(doc.evaluate_string("/a", &[], "", "").unwrap(), "ok");
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("<a>ü</a>".encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let doc = InputDocument::parse(&utf16, XML).unwrap();
    assert_eq!(doc.evaluate_string("/a", &[], "", "").unwrap(), "ü");
    // Unknown encoding label.
    assert!(matches!(
        parse_err(b"<?xml version=\"1.0\" encoding=\"x-klingon\"?><a/>", XML),
        InputError::Encoding(_)
    ));
}

#[test]
fn content_type_selects_the_parser() {
    for ct in [
        "application/xml",
        "text/xml",
        "Application/XML; charset=utf-8",
        "application/vnd.xgewerbeanzeige+xml",
    ] {
        assert_eq!(
            InputKind::from_content_type(ct).unwrap(),
            InputKind::Xml,
            "{ct}"
        );
    }
    for ct in [
        "application/json",
        "application/problem+json; charset=utf-8",
    ] {
        assert_eq!(
            InputKind::from_content_type(ct).unwrap(),
            InputKind::Json,
            "{ct}"
        );
    }
    for ct in ["text/plain", "application/pdf", "xml", "", "/xml"] {
        assert!(
            matches!(
                parse_err(b"<a/>", ct),
                InputError::UnsupportedContentType(_)
            ),
            "{ct}"
        );
    }
    // JSON bytes under an XML content type are malformed XML, not guessed.
    assert!(matches!(
        parse_err(b"{}", XML),
        InputError::MalformedXml { .. }
    ));
}

#[test]
fn xgewerbeanzeige_sample_parses() {
    let doc = InputDocument::parse(common::XGWA21, XML).unwrap();
    assert_eq!(doc.kind(), InputKind::Xml);
    let ags = doc
        .evaluate_string(
            "string(//xga:gemeindeSchluessel/code)",
            &[("xga", common::XGA21_NS)],
            "",
            "",
        )
        .unwrap();
    assert_eq!(ags, "12052000");
}

const NESTED_JSON: &str = r#"{
  "name": "Bello",
  "ags": "12052000",
  "count": 2,
  "weight": 12.5,
  "big": 1E3,
  "neg": -7,
  "chip": true,
  "gefaehrlich": false,
  "note": null,
  "owner": {"first": "Eva", "address": {"plz": "03044"}},
  "tags": ["a", 1, [true, null], {"k": "v"}],
  "empty": {},
  "none": [],
  "dup": 1,
  "dup": 2,
  "ctl": "a\u0001b"
}"#;

#[test]
fn json_becomes_json_to_xml_form() {
    let doc = InputDocument::parse(NESTED_JSON.as_bytes(), JSON).unwrap();
    assert_eq!(doc.kind(), InputKind::Json);
    let q = |e: &str| doc.evaluate_string(e, &[], "", "").unwrap();
    let b = |e: &str| doc.evaluate_boolean(e, &[], "", "").unwrap();

    // Root element and namespace.
    assert_eq!(
        q("namespace-uri(/*)"),
        "http://www.w3.org/2005/xpath-functions"
    );
    assert_eq!(q("local-name(/*)"), "map");
    assert!(b("not(/*/@key)"), "the root has no key");
    assert_eq!(q("count(/*/*)"), "16");

    // Scalars.
    assert_eq!(q("/fn:map/fn:string[@key='name']"), "Bello");
    assert_eq!(q("/fn:map/fn:number[@key='count']"), "2");
    assert_eq!(q("/fn:map/fn:number[@key='weight']"), "12.5");
    assert_eq!(q("/fn:map/fn:number[@key='big']"), "1000");
    assert_eq!(q("/fn:map/fn:number[@key='neg']"), "-7");
    assert_eq!(q("/fn:map/fn:number[@key='weight'] * 2"), "25");
    assert_eq!(q("/fn:map/fn:boolean[@key='chip']"), "true");
    assert_eq!(q("/fn:map/fn:boolean[@key='gefaehrlich']"), "false");
    assert!(b(
        "exists(/fn:map/fn:null[@key='note']) and empty(/fn:map/fn:null[@key='note']/node())"
    ));

    // Nested objects and arrays, order kept.
    assert_eq!(
        q("/fn:map/fn:map[@key='owner']/fn:map[@key='address']/fn:string[@key='plz']"),
        "03044"
    );
    assert_eq!(
        q("string-join(/fn:map/fn:array[@key='tags']/*/local-name(), ',')"),
        "string,number,array,map"
    );
    assert!(b(
        "/fn:map/fn:array[@key='tags']/*[2] instance of element(fn:number)"
    ));
    assert!(
        b("empty(/fn:map/fn:array[@key='tags']/*/@key)"),
        "array members carry no key"
    );
    assert_eq!(
        q("string-join(/fn:map/fn:array[@key='tags']/fn:array/*/local-name(), ',')"),
        "boolean,null"
    );
    assert_eq!(
        q("/fn:map/fn:array[@key='tags']/fn:map/fn:string[@key='k']"),
        "v"
    );
    assert_eq!(q("count(/fn:map/fn:map[@key='empty']/node())"), "0");
    assert_eq!(q("count(/fn:map/fn:array[@key='none']/node())"), "0");
    assert_eq!(
        q("string-join(/fn:map/*/@key, ',')"),
        "name,ags,count,weight,big,neg,chip,gefaehrlich,note,owner,tags,empty,none,dup,dup,ctl"
    );
    // Duplicates retained, in order.
    assert_eq!(q("string-join(/fn:map/fn:number[@key='dup'], ',')"), "1,2");
    // Characters XML cannot carry become U+FFFD.
    assert_eq!(q("/fn:map/fn:string[@key='ctl']"), "a\u{FFFD}b");
}

#[test]
fn json_serializes_exactly_like_json_to_xml() {
    let doc = InputDocument::parse(br#"{"x": 1, "y": [3,4,5], "s": "a<b"}"#, JSON).unwrap();
    assert_eq!(
        doc.to_xml_string(),
        r#"<map xmlns="http://www.w3.org/2005/xpath-functions"><number key="x">1</number><array key="y"><number>3</number><number>4</number><number>5</number></array><string key="s">a&lt;b</string></map>"#
    );
    let doc = InputDocument::parse(br#""abcd""#, JSON).unwrap();
    assert_eq!(
        doc.to_xml_string(),
        r#"<string xmlns="http://www.w3.org/2005/xpath-functions">abcd</string>"#
    );
}

#[test]
fn bad_json_is_refused() {
    match parse_err(b"{\n  \"a\": 1,\n  \"b\": \n}", JSON) {
        InputError::MalformedJson { line, .. } => assert_eq!(line, 4),
        other => panic!("expected MalformedJson, got {other:?}"),
    }
    assert!(matches!(
        parse_err(b"{} {}", JSON),
        InputError::MalformedJson { .. }
    ));
    assert!(matches!(
        parse_err(b"", JSON),
        InputError::MalformedJson { .. }
    ));
    let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
    assert!(matches!(
        parse_err(deep.as_bytes(), JSON),
        InputError::TooDeep {
            format: "JSON",
            limit: 100,
            line: 1,
            column: 101
        }
    ));
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    InputDocument::parse(ok.as_bytes(), JSON).unwrap();
    // Brackets inside strings do not count.
    let in_string = format!("[\"{}\"]", "[".repeat(500));
    InputDocument::parse(in_string.as_bytes(), JSON).unwrap();
    assert!(matches!(
        parse_err(b"\xFF{}", JSON),
        InputError::Encoding(_)
    ));
}

/// Issue 9, item 6: intake and routing read JSON with one parser and one
/// set of limits. A number beyond the `xs:double` range and a lone
/// surrogate escape are refused by both, with the same error (ADR 0009).
#[test]
fn out_of_range_numbers_and_lone_surrogates_are_refused_by_intake_and_routing() {
    for bad in [
        &br#"{"n":1e999999999}"#[..],
        br#"{"n":-1e400}"#,
        br#"{"s":"\ud800"}"#,
        br#"{"\udfff":1}"#,
        br#"["x\ud800\u0041"]"#,
    ] {
        match parse_err(bad, JSON) {
            InputError::MalformedJson { message, .. } => assert!(
                message.contains("out of range") || message.contains("escape"),
                "{}: {message}",
                String::from_utf8_lossy(bad)
            ),
            other => panic!("expected MalformedJson, got {other:?}"),
        }
    }
    // A proper surrogate pair and a large but finite number pass both.
    let good = br#"{"s":"\ud83d\ude00","n":1.7e308}"#;
    validate(good, JSON).unwrap();
    let doc = InputDocument::parse(good, JSON).unwrap();
    assert_eq!(
        doc.evaluate_string("string(/*/*[1])", &[], "", "").unwrap(),
        "\u{1F600}"
    );
}

/// Memory bound of the tree: a 1 MB JSON array of zeros (about 500,000
/// `<number>0</number>` elements, the worst case of many tiny values)
/// costs at most [`JSON_MEMORY_FACTOR`] times the payload in the tree
/// (measured: 28.5×, i.e. two 28-byte node records per two input bytes).
const JSON_MEMORY_FACTOR: usize = 32;

#[test]
fn json_tree_memory_is_a_small_factor_of_the_payload() {
    let mut payload = String::with_capacity(1 << 20);
    payload.push('[');
    while payload.len() < (1 << 20) - 2 {
        if payload.len() > 1 {
            payload.push(',');
        }
        payload.push('0');
    }
    payload.push(']');
    let doc = InputDocument::parse(payload.as_bytes(), JSON).unwrap();
    let heap = doc.document().heap_size();
    let factor = heap as f64 / payload.len() as f64;
    eprintln!(
        "1 MB JSON array of zeros: payload {} bytes, tree {heap} bytes ({factor:.1}×)",
        payload.len()
    );
    assert!(
        heap <= JSON_MEMORY_FACTOR * payload.len(),
        "tree holds {heap} bytes for a {}-byte payload ({factor:.1}×, limit {JSON_MEMORY_FACTOR}×)",
        payload.len()
    );
    assert_eq!(
        doc.evaluate_string("count(/*/*)", &[], "", "").unwrap(),
        ((payload.len() - 1) / 2).to_string()
    );
}

fn many_attributes(n: usize) -> String {
    let mut s = String::from(r#"<p xmlns="urn:x""#);
    for i in 0..n {
        s.push_str(&format!(r#" a{i}="x""#));
    }
    s.push_str("/>");
    s
}

/// Issue 9, item 1: the reproduction with 100k attributes is checked and
/// parsed (both linear; a quadratic step would take minutes here, but
/// nothing is timed) and refused by both with the same error, since both
/// allow at most `MAX_XML_ATTRIBUTES` per element. At the limit, both
/// accept it.
#[test]
fn a_hundred_thousand_attributes_are_refused_alike_by_intake_and_routing() {
    let big = many_attributes(100_000);
    match parse_err(big.as_bytes(), XML) {
        InputError::MalformedXml {
            line: 1,
            column: 1,
            message,
        } => assert_eq!(
            message,
            format!("more than {MAX_XML_ATTRIBUTES} attributes on one element")
        ),
        other => panic!("expected MalformedXml, got {other:?}"),
    }
    // At the limit: the namespace declaration counts as one attribute.
    let at_limit = many_attributes(MAX_XML_ATTRIBUTES - 1);
    validate(at_limit.as_bytes(), XML).unwrap();
    let doc = InputDocument::parse(at_limit.as_bytes(), XML).unwrap();
    assert_eq!(
        doc.evaluate_string("count(/*/@*)", &[], "", "").unwrap(),
        (MAX_XML_ATTRIBUTES - 1).to_string()
    );
    let over = many_attributes(MAX_XML_ATTRIBUTES);
    assert!(matches!(
        parse_err(over.as_bytes(), XML),
        InputError::MalformedXml { .. }
    ));
    // A duplicate far beyond the short list is found.
    let mut s = String::from("<p");
    for i in 0..5_000 {
        s.push_str(&format!(r#" a{i}="x""#));
    }
    s.push_str(r#" a4000="y"/>"#);
    match parse_err(s.as_bytes(), XML) {
        InputError::MalformedXml { message, .. } => {
            assert!(message.contains("duplicate attribute"), "{message}")
        }
        other => panic!("expected MalformedXml, got {other:?}"),
    }
}

/// Many namespace declarations and many prefixed attributes on one
/// element (each prefix used once, declared in order — the worst case
/// for a resolver that scans its bindings): accepted by both, and an
/// undeclared prefix among them refused by both.
#[test]
fn many_namespace_declarations_are_resolved_alike_by_intake_and_routing() {
    let n = 4_000;
    let mut s = String::from("<p");
    for i in 0..n {
        s.push_str(&format!(r#" xmlns:p{i}="urn:{i}""#));
    }
    for i in 0..n {
        s.push_str(&format!(r#" p{i}:a="x""#));
    }
    s.push_str("><p0:c p1:b='1'/></p>");
    validate(s.as_bytes(), XML).unwrap();
    let doc = InputDocument::parse(s.as_bytes(), XML).unwrap();
    assert_eq!(
        doc.evaluate_string("count(/*/@*)", &[], "", "").unwrap(),
        n.to_string()
    );
    // Declarations end with their element.
    let outside = s.replace("><p0:c p1:b='1'/></p>", "><c/></p>");
    validate(outside.as_bytes(), XML).unwrap();
    let leaked = "<r><p xmlns:q='urn:q'/><q:c/></r>";
    match parse_err(leaked.as_bytes(), XML) {
        InputError::MalformedXml { message, .. } => {
            assert!(message.contains("undeclared namespace prefix"), "{message}")
        }
        other => panic!("expected MalformedXml, got {other:?}"),
    }
    let undeclared = s.replace(" p7:a=", " px:a=");
    match parse_err(undeclared.as_bytes(), XML) {
        InputError::MalformedXml { message, .. } => {
            assert!(message.contains("undeclared namespace prefix"), "{message}")
        }
        other => panic!("expected MalformedXml, got {other:?}"),
    }
}

/// `parse` trusts the engine's parser and only runs the intake scan when
/// the parser refuses; both must agree on what is acceptable.
#[test]
fn parse_and_validate_agree_on_edge_cases() {
    let cases: &[&str] = &[
        "<a/>",
        "<a/><b/>",
        "<a/>text",
        "text<a/>",
        "<a/><![CDATA[x]]>",
        "<p:a/>",
        "<a p:x='1'/>",
        "<a xmlns:p='urn:p' p:x='1' p:x='2'/>",
        "<a x='1' x='2'/>",
        "<a xmlns:p=''/>",
        "<a>&#0;</a>",
        "<a>&#x1;</a>",
        "<a>&unknown;</a>",
        "<a>]]></a>",
        "<a><!-- a -- b --></a>",
        "<a></b>",
        "<a>",
        "",
        "   ",
        "<?xml version='1.0'?><a/>",
        "<?pi data?><a/><!--c-->",
        "<a b=\"<\"/>",
        "<1a/>",
        "<a\u{0}/>",
        "<a>x\u{1}y</a>",
        "<xml:a/>",
        "<a xmlns:xml='urn:wrong'/>",
        "<a xmlns:xmlns='urn:x'/>",
        "<xmlns:a/>",
        "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
        "<a xmlns='http://www.w3.org/2000/xmlns/'/>",
        "<a xmlns:p='urn:1' xmlns:p='urn:2'/>",
        "<a xmlns='urn:1' xmlns='urn:2'/>",
        "<a><b xmlns:p='urn:p'/><p:c/></a>",
        "<a xmlns:p='urn:p'><b xmlns:p='urn:q'/><p:c/></a>",
    ];
    let mut disagree = Vec::new();
    for case in cases {
        let parsed = InputDocument::parse(case.as_bytes(), XML).map(|_| ());
        let validated = validate(case.as_bytes(), XML);
        if parsed.is_ok() != validated.is_ok() {
            disagree.push(format!(
                "{case:?}: parse {parsed:?}, validate {validated:?}"
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

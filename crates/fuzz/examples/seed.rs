//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/`
//! (files named `seed-*`; what the fuzzers add is named by content hash).
//! Seeds come from the repository's own samples — shipped rules and their
//! test inputs, the differential XSLT corpus, the shared XGewerbeanzeige
//! examples — and from our own encoders (JWE, JWS, SET, SOAP, MTOM), so a
//! fuzzer starts from valid messages and mutates them.
//!
//! Run from the workspace root: `cargo run -p drehscheibe-fuzz --example seed`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
use drehscheibe_fit_connect::set;
use drehscheibe_xta::soap::request_envelope;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root.join("fuzz/corpus");
    let mut seeds = Seeds::new(&corpus);

    // XML and JSON payloads: shipped rules' test inputs, the differential
    // corpus' inputs, the shared XGewerbeanzeige samples.
    let mut xml_files = find(&root.join("rules"), "xml");
    xml_files.extend(find(&root.join("crates/xslt/tests/diff"), "xml"));
    xml_files.extend(find(&root.join("../shared/samples/xgewerbeanzeige"), "xml"));
    for (i, path) in xml_files.iter().enumerate() {
        let bytes = fs::read(path)?;
        if bytes.len() > 64 * 1024 {
            continue;
        }
        seeds.add("intake_xml", &format!("file-{i}"), &[&[i as u8], &bytes]);
    }
    let latin1: &[u8] = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><antrag><name>M\xfcller</name><ort>G\xf6ttingen</ort></antrag>";
    seeds.add("intake_xml", "latin1", &[&[1], latin1]);
    let utf16: Vec<u8> = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-16\"?><a b=\"ä\"/>"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    seeds.add("intake_xml", "utf16", &[&[2], &utf16]);
    seeds.add(
        "intake_xml",
        "namespaces",
        &[&[0], b"<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\" p:x=\"1\"><b xml:lang=\"de\">&amp;&#228;<![CDATA[<]]></b><!-- c --><?pi x?></p:a>"],
    );

    let mut json_files = find(&root.join("rules"), "json");
    json_files.extend(find(&root.join("config/demo"), "json"));
    for (i, path) in json_files.iter().enumerate() {
        seeds.add(
            "intake_json",
            &format!("file-{i}"),
            &[&[i as u8], &fs::read(path)?],
        );
    }
    for (i, text) in [
        r#"{"n":1e308,"s":"\u00e4\ud83d\ude00","a":[true,false,null,-0.5,[],{}]}"#,
        r#"[0,0,0,0,0]"#,
        r#""just a string""#,
        r#"{"deep":[[[[[[[[{"x":1}]]]]]]]]}"#,
    ]
    .iter()
    .enumerate()
    {
        seeds.add(
            "intake_json",
            &format!("inline-{i}"),
            &[&[0], text.as_bytes()],
        );
    }

    // HTTP inbox multipart bodies (boundary `fuzz-boundary`).
    let xml = b"<?xml version=\"1.0\"?><antrag><name>Anna</name></antrag>";
    let b = "--fuzz-boundary";
    let part = |headers: &str, body: &[u8]| -> Vec<u8> {
        let mut p = format!("{b}\r\n{headers}\r\n\r\n").into_bytes();
        p.extend_from_slice(body);
        p.extend_from_slice(b"\r\n");
        p
    };
    let close = format!("{b}--\r\n").into_bytes();
    let payload = part(
        "Content-Disposition: form-data; name=\"payload\"\r\nContent-Type: application/xml",
        xml,
    );
    let pdf = part(
        "Content-Disposition: form-data; name=\"plan\"; filename=\"plan.pdf\"\r\nContent-Type: application/pdf",
        b"%PDF-1.4 fuzz",
    );
    let untyped = part(
        "Content-Disposition: form-data; name=\"note\"",
        b"plain text note",
    );
    let json = part(
        "Content-Disposition: form-data; name=\"payload\"\r\nContent-Type: application/json",
        br#"{"hund":{"name":"Bello"}}"#,
    );
    seeds.add("http_multipart", "payload-only", &[&payload, &close]);
    seeds.add(
        "http_multipart",
        "two-attachments",
        &[&payload, &pdf, &untyped, &close],
    );
    seeds.add("http_multipart", "json", &[&json, &pdf, &close]);
    seeds.add(
        "http_multipart",
        "bad-first-part",
        &[&untyped, &pdf, &pdf, &close],
    );
    seeds.add("http_multipart", "unterminated", &[&payload, &pdf]);

    // XTA 2: content type line, then the body.
    let url = "http://localhost/xta";
    let mtom_type = "multipart/related; type=\"application/xop+xml\"; boundary=\"MIMEBoundary_fuzz\"; start=\"<root@fuzz>\"; start-info=\"application/soap+xml\"";
    let mtom = |envelope: &str, parts: &[(&str, &[u8])]| -> Vec<u8> {
        let b = "MIMEBoundary_fuzz";
        let mut out = format!("{mtom_type}\n--{b}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root@fuzz>\r\n\r\n{envelope}").into_bytes();
        for (cid, data) in parts {
            out.extend_from_slice(format!("\r\n--{b}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n").as_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        out
    };
    let author = format!(
        "<oscimeta:Author xmlns:oscimeta=\"{}\"><oscimeta:Identifier type=\"xoev\">dvdv:01001000</oscimeta:Identifier></oscimeta:Author>",
        drehscheibe_xta::model::NS_OSCIMETA
    );
    let check = request_envelope(
        "http://www.xta.de/XTA/CheckAccountActive",
        "urn:uuid:check-1",
        url,
        &author,
        "",
    );
    let create = request_envelope(
        "http://www.xta.de/XTA/CreateMessageID",
        "urn:uuid:create-1",
        url,
        &author,
        "",
    );
    let send = request_envelope(
        "http://www.xta.de/XTA/SendMessage",
        "urn:uuid:send-1",
        url,
        &format!("{author}{}", message_metadata()),
        &format!(
            "<xta:GenericContentContainer xmlns:xta=\"{}\"><xta:ContentContainer><xta:Message contentType=\"text/xml\" filename=\"antrag.xml\" encoding=\"UTF-8\"><xop:Include xmlns:xop=\"{}\" href=\"cid:msg@fuzz\"/></xta:Message><xta:Attachment contentType=\"application/pdf\" filename=\"plan.pdf\" id=\"att@fuzz\"><xop:Include xmlns:xop=\"{1}\" href=\"cid:att@fuzz\"/></xta:Attachment></xta:ContentContainer></xta:GenericContentContainer>",
            drehscheibe_xta::model::NS_XTA,
            drehscheibe_xta::model::NS_XOP
        ),
    );
    let status_list = request_envelope(
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest",
        "urn:uuid:list-1",
        url,
        &author,
        &format!(
            "<osci:MsgBoxStatusListRequest xmlns:osci=\"{}\" maxListItems=\"10\"/>",
            drehscheibe_xta::model::NS_OSCI
        ),
    );
    seeds.add("xta_mtom", "check", &[&mtom(&check, &[])]);
    seeds.add("xta_mtom", "create", &[&mtom(&create, &[])]);
    seeds.add(
        "xta_mtom",
        "send",
        &[&mtom(
            &send,
            &[("msg@fuzz", xml), ("att@fuzz", b"%PDF-1.4 fuzz")],
        )],
    );
    seeds.add("xta_mtom", "status-list", &[&mtom(&status_list, &[])]);
    seeds.add(
        "xta_mtom",
        "plain-soap",
        &[b"application/soap+xml; charset=utf-8\n", create.as_bytes()],
    );
    for (name, env) in [("check", &check), ("send", &send), ("list", &status_list)] {
        seeds.add("soap_envelope", name, &[env.as_bytes()]);
    }
    seeds.add(
        "soap_envelope",
        "fault",
        &[drehscheibe_xta::soap::response_envelope(
            "http://www.w3.org/2005/08/addressing/soap/fault",
            Some("urn:uuid:x"),
            "",
            "<env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code><env:Reason><env:Text xml:lang=\"en\">no</env:Text></env:Reason></env:Fault>",
        )
        .as_bytes()],
    );
    seeds.add("soap_envelope", "xop", &[b"<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><x:Include xmlns:x=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:a%40b\"/></e:Body></e:Envelope>"]);

    // FIT-Connect JOSE with the fixture keys the target uses.
    let encryption = RsaPrivateKey::from_pem(include_str!(
        "../../fit-connect/tests/fixtures/keys/dest-a.pem"
    ))?
    .with_kid("fuzz-encryption");
    let signing = RsaPrivateKey::from_pem(include_str!(
        "../../fit-connect/tests/fixtures/keys/signing.pem"
    ))?
    .with_kid("fuzz-signing");
    let jwk = encryption.encryption_jwk();
    let jwe = jose::encrypt_compact(br#"{"data":"<antrag/>"}"#, &jwk, false)?;
    let jwe_zip = jose::encrypt_compact(&[b'x'; 4096], &jwk, true)?;
    seeds.add("jose", "jwe", &[&[0], jwe.as_bytes()]);
    seeds.add("jose", "jwe-zip", &[&[0], jwe_zip.as_bytes()]);
    let jws = jose::sign_jws_ps512(
        serde_json::Value::Null,
        &serde_json::json!({"sub": "submission:1", "n": 1}),
        &signing,
    )?;
    seeds.add("jose", "jws", &[&[1], jws.as_bytes()]);
    let token = set::create_set(
        "https://zustelldienst.example",
        uuid::Uuid::nil(),
        uuid::Uuid::nil(),
        "https://schema.fitko.de/fit-connect/events/accept-submission",
        serde_json::json!({"authenticationTags": {"data": "x", "metadata": "y"}}),
        &signing,
    )?;
    seeds.add("jose", "set", &[&[2], token.as_bytes()]);
    let public = serde_json::to_string(&signing.verification_jwk())?;
    seeds.add("jose", "jwk", &[&[3], public.as_bytes()]);
    seeds.add(
        "jose",
        "jwk-enc",
        &[&[3], serde_json::to_string(&jwk)?.as_bytes()],
    );

    // XPath expressions of the kinds rules use (byte 1: XPath 1.0 mode).
    for (i, expr) in [
        "(number('108') * 50) div 100",
        "round(number(betrag) * 50 div 100)",
        "format-number(sum(posten) * 1.19, '#,##0.00')",
        "//posten[@n = 2]/text()",
        "count(//*) + string-length(name)",
        "for $p in posten return xs:decimal($p) * 2",
        "string-join(tokenize('a,b,c', ','), '|')",
        "replace(name, '(A)(n+)', '$2$1')",
        "if (matches(g:ort, '^M')) then 'm' else 'x'",
        "let $x := map { 'a': 1, 'b': [1, 2] } return $x?b?2",
        "some $p in posten satisfies $p > 10",
        "format-date(xs:date('2026-12-04'), '[D01].[M01].[Y0001]')",
        "sum(posten) div count(posten) idiv 1",
        "substring-before(substring-after(concat(name, '/x/'), '/'), '/')",
        "distinct-values((1, 2, 2, '2', 3.0))",
        "array:size([1, 2, 3]) + map:size(map{})",
        "(((((1 + 2) + 3) + 4) + 5) + 6)",
        "/antrag/@id || '-' || generate-id(.)",
        "translate(name, 'abc', 'ABC') = 'ANNA'",
        "-xs:double('INF') lt 0 and not(boolean(()))",
    ]
    .iter()
    .enumerate()
    {
        seeds.add(
            "xpath",
            &format!("expr-{i}"),
            &[&[(i % 2) as u8], expr.as_bytes()],
        );
    }

    // Stylesheets: the shipped rules and the differential corpus.
    let mut sheets = find(&root.join("rules"), "xsl");
    sheets.extend(find(&root.join("crates/xslt/tests/diff"), "xsl"));
    sheets.extend(find(&root.join("crates/xslt/tests/diff3"), "xsl"));
    for (i, path) in sheets.iter().enumerate() {
        seeds.add("xslt", &format!("sheet-{i}"), &[&fs::read(path)?]);
    }

    println!("wrote {} seeds under {}", seeds.count, corpus.display());
    Ok(())
}

fn message_metadata() -> String {
    use drehscheibe_xta::model::*;
    let md = MessageMetaData {
        delivery_attributes: DeliveryAttributes {
            origin: Some("2026-12-04T10:00:00.000+01:00".into()),
            ..Default::default()
        },
        author: PartyIdentifier::new("dvdv:01001000", "xoev"),
        sender: None,
        reply_to: None,
        reader: PartyIdentifier::new("dvdv:02002000", "xoev"),
        message_id: "urn:de:xta:messageid:fuzz-1".into(),
        in_reply_to: vec![],
        qualifier: Qualifier {
            subject: Some("Bauantrag".into()),
            service: "urn:xoev-de:xbau:standard:xbau_2.3".into(),
            business_scenario: BusinessScenario::Defined(KeyCode {
                code: "XBAU_DATA".into(),
                name: None,
                list_uri: "urn:de:dataport:codeliste:business.scenario".into(),
                list_version_id: "1".into(),
            }),
            message_type: MessageType {
                code: KeyCode {
                    code: "baugenehmigung.antrag.0200".into(),
                    name: None,
                    list_uri: "urn:de:payloadSchema:elementName".into(),
                    list_version_id: "1.0".into(),
                },
                payload_schema: "http://www.xleitstelle.de/xbau/2/3".into(),
            },
        },
        msg_size: None,
        test_msg: None,
    };
    let mut out = String::new();
    md.write_xml(&mut out);
    out
}

/// Files with extension `ext` under `dir`, recursively, sorted.
fn find(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            count: 0,
        }
    }

    fn add(&mut self, target: &str, name: &str, pieces: &[&[u8]]) {
        let dir = self.dir.join(target);
        let path = dir.join(format!("seed-{name}"));
        let result = fs::create_dir_all(&dir)
            .and_then(|()| fs::write(&path, pieces.concat()))
            .with_context(|| format!("writing {}", path.display()));
        if let Err(e) = result {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
        self.count += 1;
    }
}

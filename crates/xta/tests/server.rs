//! The XTA-WS server on a real loopback socket with an in-memory intake:
//! all operations, the mailbox round trip, transport reports and hostile
//! requests. Every response is validated with `xmllint --schema` against
//! the official XSDs (`tests/xsd/all.xsd` drives them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use drehscheibe_model::{
    Accepted, BlobError, BlobReader, BlobRef, BlobStore, Intake, IntakeError, MessageId,
    MessageState, MessageStatus, Submission,
};
use drehscheibe_xta::mailbox::{MailboxMessage, StoredContent};
use drehscheibe_xta::model::*;
use drehscheibe_xta::server::{Account, XtaServer, XtaServerSettings};
use drehscheibe_xta::soap::{parse_xml, request_envelope, XmlElement};
use tokio::io::AsyncReadExt;

// ------------------------------------------------------------------ fakes

#[derive(Default)]
struct MemBlobs(Mutex<HashMap<String, Vec<u8>>>);

#[async_trait]
impl BlobStore for MemBlobs {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let mut v = Vec::new();
        reader.read_to_end(&mut v).await?;
        if v.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        let sha = drehscheibe_model::sha256_hex(&v);
        let r = BlobRef {
            sha256: sha.clone(),
            size: v.len() as u64,
        };
        self.0.lock().unwrap().insert(sha, v);
        Ok(r)
    }
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let v = self
            .0
            .lock()
            .unwrap()
            .get(&blob.sha256)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        Ok(Box::pin(std::io::Cursor::new(v)))
    }
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(self.0.lock().unwrap().contains_key(&blob.sha256))
    }
}

struct FakeIntake {
    blobs: Arc<MemBlobs>,
    submitted: Mutex<Vec<(MessageId, Submission)>>,
    states: Mutex<HashMap<String, (MessageState, Option<String>)>>,
    max_attachment: u64,
}

#[async_trait]
impl Intake for FakeIntake {
    async fn submit(&self, s: Submission) -> Result<Accepted, IntakeError> {
        let mut subs = self.submitted.lock().unwrap();
        if let Some((id, prev)) = subs
            .iter()
            .find(|(_, p)| p.idempotency_key == s.idempotency_key)
        {
            if prev.payload != s.payload {
                return Err(IntakeError::IdempotencyConflict(
                    s.idempotency_key.clone().unwrap_or_default(),
                ));
            }
            return Ok(Accepted {
                id: *id,
                duplicate: true,
            });
        }
        let id = MessageId::new();
        subs.push((id, s));
        Ok(Accepted {
            id,
            duplicate: false,
        })
    }
    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        self.blobs
            .put(reader, self.max_attachment)
            .await
            .map_err(|_| IntakeError::TooLarge {
                limit: self.max_attachment,
            })
    }
    fn max_payload_bytes(&self) -> u64 {
        1 << 20
    }
    fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment
    }
    fn channel_exists(&self, c: &str) -> bool {
        c == "xta-in"
    }
    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
    async fn status(&self, id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        let (state, reason) = self
            .states
            .lock()
            .unwrap()
            .get(&id.to_string())
            .cloned()
            .unwrap_or((MessageState::Routed, None));
        Ok(Some(MessageStatus {
            id,
            state,
            reason,
            rule: None,
            deliveries: vec![],
        }))
    }
}

// ------------------------------------------------------------------ harness

struct Hub {
    url: String,
    intake: Arc<FakeIntake>,
    server: XtaServer,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

const TOKEN_A: &str = "token-a-0123456789";
const TOKEN_B: &str = "token-b-0123456789";
const PARTY_A: &str = "dvdv:01001000";
const PARTY_B: &str = "dvdv:02000000";
const XSD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xsd");

async fn hub() -> Hub {
    hub_with(None).await
}

/// A hub whose listener marks requests carrying `x-test-client-cert` as
/// authenticated with that client-certificate fingerprint (what a TLS
/// listener with client authentication does).
async fn hub_with(cert_account: Option<&str>) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let intake = Arc::new(FakeIntake {
        blobs: Arc::new(MemBlobs::default()),
        submitted: Mutex::new(vec![]),
        states: Mutex::new(HashMap::new()),
        max_attachment: 1024 * 1024,
    });
    let accounts = vec![
        Account {
            name: "kommune-a".into(),
            identifier: PartyIdentifier::new(PARTY_A, "xoev"),
            tokens: vec![TOKEN_A.into()],
            cert_fingerprints: vec![],
        },
        Account {
            name: "fachverfahren-b".into(),
            identifier: PartyIdentifier {
                value: PARTY_B.into(),
                kind: "xoev".into(),
                category: Some("Fachverfahren".into()),
                name: None,
            },
            tokens: vec![TOKEN_B.into()],
            cert_fingerprints: vec![],
        },
    ];
    let mut accounts = accounts;
    if let Some(fp) = cert_account {
        accounts[1].cert_fingerprints.push(fp.to_string());
    }
    let settings = XtaServerSettings::new("xta-in", dir.path().join("xta"), accounts);
    let store: Arc<dyn drehscheibe_store::Store> =
        Arc::new(drehscheibe_store::SledStore::open(&dir.path().join("store")).unwrap());
    let server = XtaServer::open(settings, intake.clone(), store).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server.router().layer(axum::middleware::from_fn(
        |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
            if let Some(fp) = req
                .headers()
                .get("x-test-client-cert")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
            {
                req.extensions_mut()
                    .insert(drehscheibe_xta::server::ClientCertFingerprint(fp));
            }
            next.run(req).await
        },
    ));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Hub {
        url: format!("http://{addr}/xta"),
        intake,
        server,
        _dir: dir,
        http: reqwest::Client::new(),
    }
}

struct Resp {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Resp {
    /// The SOAP part (MTOM responses: root part with XOP includes resolved
    /// to base64, the XOP-infoset the schemas describe).
    fn soap(&self) -> (String, HashMap<String, Vec<u8>>) {
        if !self.content_type.starts_with("multipart/related") {
            return (
                String::from_utf8(self.body.clone()).unwrap(),
                HashMap::new(),
            );
        }
        let boundary = drehscheibe_xta::mtom::mime_param(&self.content_type, "boundary").unwrap();
        let delim = format!("--{boundary}");
        let body = &self.body;
        let mut parts: Vec<(HashMap<String, String>, Vec<u8>)> = vec![];
        let positions: Vec<usize> = find_all(body, delim.as_bytes());
        for w in positions.windows(2) {
            let seg = &body[w[0] + delim.len()..w[1]];
            let seg = seg.strip_prefix(b"\r\n").unwrap();
            let seg = seg.strip_suffix(b"\r\n").unwrap();
            let split = find_all(seg, b"\r\n\r\n")[0];
            let head = std::str::from_utf8(&seg[..split]).unwrap();
            let mut h = HashMap::new();
            for l in head.split("\r\n") {
                let (k, v) = l.split_once(':').unwrap();
                h.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            parts.push((h, seg[split + 4..].to_vec()));
        }
        let mut root = String::from_utf8(parts[0].1.clone()).unwrap();
        let mut map = HashMap::new();
        for (h, data) in &parts[1..] {
            let cid = drehscheibe_xta::mtom::strip_cid(&h["content-id"]);
            let inc = format!(
                "<xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:{cid}\"/>"
            );
            assert!(root.contains(&inc), "part {cid} not referenced");
            root = root.replace(
                &inc,
                &base64::engine::general_purpose::STANDARD.encode(data),
            );
            map.insert(cid, data.clone());
        }
        assert!(!root.contains("xop:Include"), "dangling include");
        (root, map)
    }

    fn envelope(&self) -> XmlElement {
        let (xml, _) = self.soap();
        validate(&xml);
        parse_xml(xml.as_bytes()).unwrap()
    }

    /// The fault's XTA exception (element name, code) or SOAP code values.
    fn fault(&self) -> (String, String) {
        let env = self.envelope();
        let fault = env
            .child(NS_SOAP12, "Body")
            .unwrap()
            .child(NS_SOAP12, "Fault")
            .unwrap_or_else(|| panic!("no fault: {}", self.soap().0));
        if let Some(detail) = fault.child(NS_SOAP12, "Detail") {
            let ex = detail.elements().next().unwrap();
            if ex.ns.as_deref() == Some(NS_XTA) {
                let code = ex
                    .child(NS_XTA, "errorCode")
                    .unwrap()
                    .child_local("code")
                    .unwrap()
                    .text();
                return (ex.local.clone(), code);
            }
        }
        let code = fault.child(NS_SOAP12, "Code").unwrap();
        let value = code.child(NS_SOAP12, "Value").unwrap().text();
        let sub = code
            .child(NS_SOAP12, "Subcode")
            .map(|s| s.child(NS_SOAP12, "Value").unwrap().text())
            .unwrap_or_default();
        (value, sub)
    }
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..hay.len().saturating_sub(needle.len() - 1))
        .filter(|i| &hay[*i..*i + needle.len()] == needle)
        .collect()
}

/// `xmllint --schema` over a whole response envelope: the SOAP 1.2
/// envelope schema plus (lax wildcard) every XTA/OSCI/WSA element in
/// header and body.
fn validate(xml: &str) {
    if Command::new("xmllint").arg("--version").output().is_err() {
        panic!("xmllint is required (apt-get install libxml2-utils)");
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(PathBuf::from(XSD_DIR).join("all.xsd"))
        .arg(f.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "response does not validate:\n{xml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The body's payload element must be one the schemas declare (so the
    // lax wildcard really validated it).
    let env = parse_xml(xml.as_bytes()).unwrap();
    let first = env
        .child(NS_SOAP12, "Body")
        .unwrap()
        .elements()
        .next()
        .cloned();
    if let Some(p) = first {
        let known = [
            (NS_SOAP12, "Fault"),
            (NS_WSA, "MessageID"),
            (NS_XTA, "LookupServiceResponse"),
            (NS_XTA, "TransportReport"),
            (NS_XTA, "GenericContentContainer"),
            (NS_OSCI, "MsgStatusList"),
        ];
        assert!(
            known.iter().any(|(n, l)| p.is(n, l)),
            "unexpected body element {}",
            p.local
        );
    }
}

impl Hub {
    async fn post(&self, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Resp {
        let mut rb = self
            .http
            .post(&self.url)
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = r.bytes().await.unwrap().to_vec();
        let resp = Resp {
            status,
            content_type,
            body,
        };
        // Every response the server emits is checked against the XSDs.
        validate(&resp.soap().0);
        resp
    }

    async fn soap(&self, token: &str, action: &str, headers: &str, body: &str) -> Resp {
        let env = request_envelope(
            action,
            &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            &self.url,
            headers,
            body,
        );
        self.post(
            Some(token),
            "application/soap+xml; charset=utf-8",
            env.into_bytes(),
        )
        .await
    }

    async fn create_id(&self, token: &str) -> String {
        let r = self
            .soap(token, "http://www.xta.de/XTA/CreateMessageID", "", "")
            .await;
        assert_eq!(r.status, 200, "{}", r.soap().0);
        let env = r.envelope();
        env.child(NS_SOAP12, "Body")
            .unwrap()
            .child(NS_WSA, "MessageID")
            .unwrap()
            .text()
    }
}

fn metadata(id: &str, author: &str, reader: &str) -> MessageMetaData {
    MessageMetaData {
        delivery_attributes: DeliveryAttributes {
            origin: Some("2026-11-30T10:00:00.000+01:00".into()),
            ..Default::default()
        },
        author: PartyIdentifier::new(author, "xoev"),
        sender: None,
        reply_to: None,
        reader: PartyIdentifier {
            value: reader.into(),
            kind: "xoev".into(),
            category: Some("Fachverfahren".into()),
            name: Some("Bauamt".into()),
        },
        message_id: id.into(),
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
    }
}

const MESSAGE: &[u8] =
    b"<?xml version=\"1.0\"?><antrag xmlns=\"urn:test\">Bauantrag \xc3\xa4</antrag>";

/// A sendMessage MTOM request; `parts` are (cid, bytes) appended after the
/// root, `include` the cids referenced by Message and Attachment.
fn mtom_send(
    url: &str,
    md: &MessageMetaData,
    message_cid: &str,
    attachment_cids: &[&str],
    parts: &[(&str, &[u8])],
) -> (String, Vec<u8>) {
    let mut headers = String::new();
    md.write_xml(&mut headers);
    let mut body = format!(
        "<xta:GenericContentContainer xmlns:xta=\"{NS_XTA}\"><xta:ContentContainer><xta:Message contentType=\"text/xml\" filename=\"antrag.xml\" encoding=\"UTF-8\"><xop:Include xmlns:xop=\"{NS_XOP}\" href=\"cid:{message_cid}\"/></xta:Message>"
    );
    for c in attachment_cids {
        body.push_str(&format!(
            "<xta:Attachment contentType=\"application/pdf\" filename=\"plan.pdf\" id=\"{c}\"><xop:Include xmlns:xop=\"{NS_XOP}\" href=\"cid:{c}\"/></xta:Attachment>"
        ));
    }
    body.push_str("</xta:ContentContainer></xta:GenericContentContainer>");
    let env = request_envelope(
        "http://www.xta.de/XTA/SendMessage",
        "urn:uuid:send-1",
        url,
        &headers,
        &body,
    );
    let b = "MIMEBoundary_test";
    let mut out = Vec::new();
    out.extend_from_slice(format!("--{b}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root@test>\r\n\r\n{env}").as_bytes());
    for (cid, data) in parts {
        out.extend_from_slice(format!("\r\n--{b}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n").as_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (
        format!("multipart/related; type=\"application/xop+xml\"; boundary=\"{b}\"; start=\"<root@test>\"; start-info=\"application/soap+xml\""),
        out,
    )
}

fn pdf() -> Vec<u8> {
    // Larger than the 64 KiB streaming chunks, not a multiple of 3.
    (0..300_001u32).map(|i| (i % 251) as u8).collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn send_report_mailbox_round_trip() {
    let h = hub().await;
    // checkAccountActive
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/CheckAccountActive", "", "")
        .await;
    assert_eq!(r.status, 200);
    r.envelope();

    let id = h.create_id(TOKEN_A).await;
    assert!(id.starts_with("urn:de:xta:messageid:drehscheibe:"), "{id}");
    let md = metadata(&id, PARTY_A, PARTY_B);
    let pdf = pdf();
    let (ct, body) = mtom_send(
        &h.url,
        &md,
        "msg@test",
        &["att1@test"],
        &[("msg@test", MESSAGE), ("att1@test", &pdf)],
    );
    let r = h.post(Some(TOKEN_A), &ct, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.soap().0);
    r.envelope();

    // What the hub got.
    let (hub_id, sub) = h.intake.submitted.lock().unwrap()[0].clone();
    assert_eq!(sub.channel, "xta-in");
    assert_eq!(sub.payload.as_ref(), MESSAGE);
    assert_eq!(sub.content_type, "text/xml");
    assert_eq!(sub.idempotency_key.as_deref(), Some(id.as_str()));
    assert_eq!(sub.sender.principal, "kommune-a");
    assert_eq!(sub.correlation_ids[keys::MESSAGE_ID], id);
    assert_eq!(
        sub.correlation_ids[keys::SERVICE],
        "urn:xoev-de:xbau:standard:xbau_2.3"
    );
    assert_eq!(
        sub.correlation_ids[keys::MESSAGE_TYPE],
        "baugenehmigung.antrag.0200"
    );
    assert_eq!(sub.correlation_ids[keys::BUSINESS_SCENARIO], "XBAU_DATA");
    assert_eq!(sub.correlation_ids[keys::AUTHOR], PARTY_A);
    assert_eq!(sub.correlation_ids[keys::READER], PARTY_B);
    let info = TransportInfo::from_correlation_ids(&sub.correlation_ids).unwrap();
    assert_eq!(info.metadata, md);
    assert_eq!(info.attachments[0].filename.as_deref(), Some("plan.pdf"));
    assert_eq!(sub.attachments.len(), 1);
    let mut stored = Vec::new();
    h.intake
        .blobs
        .open(&sub.attachments[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut stored)
        .await
        .unwrap();
    assert_eq!(stored, pdf);

    // A retry of the same message is accepted once (idempotent).
    let r = h.post(Some(TOKEN_A), &ct, body).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.intake.submitted.lock().unwrap().len(), 1);

    // Transport report: open, then delivered, then failed with reason.
    let report = |r: &Resp| {
        let env = r.envelope();
        let tr = env
            .child(NS_SOAP12, "Body")
            .unwrap()
            .child(NS_XTA, "TransportReport")
            .unwrap()
            .clone();
        tr
    };
    let report_body = format!("<wsa:MessageID>{id}</wsa:MessageID>");
    let get_report = || {
        h.soap(
            TOKEN_A,
            "http://www.xta.de/XTA/GetTransportReport",
            "",
            &report_body,
        )
    };
    let tr = report(&get_report().await);
    let status = |tr: &XmlElement| {
        tr.child(NS_XTA, "MessageStatus")
            .unwrap()
            .child(NS_XTA, "Status")
            .unwrap()
            .text()
    };
    assert_eq!(status(&tr), "0");
    assert_eq!(
        MessageMetaData::from_element(tr.child(NS_OSCIMETA, "MessageMetaData").unwrap()).unwrap(),
        md
    );
    h.intake
        .states
        .lock()
        .unwrap()
        .insert(hub_id.to_string(), (MessageState::Delivered, None));
    assert_eq!(status(&report(&get_report().await)), "1");
    h.intake.states.lock().unwrap().insert(
        hub_id.to_string(),
        (
            MessageState::Dead,
            Some("Fachverfahren refused: HTTP 422".into()),
        ),
    );
    let tr = report(&get_report().await);
    assert_eq!(status(&tr), "3");
    let reason = tr
        .child(NS_XTA, "MessageStatus")
        .unwrap()
        .child(NS_XTA, "ErrorList")
        .unwrap()
        .child(NS_XTA, "Error")
        .unwrap()
        .child(NS_XTA, "Reason")
        .unwrap()
        .text();
    assert_eq!(reason, "Fachverfahren refused: HTTP 422");
    // B may not see A's report.
    let r = h
        .soap(
            TOKEN_B,
            "http://www.xta.de/XTA/GetTransportReport",
            "",
            &format!("<wsa:MessageID>{id}</wsa:MessageID>"),
        )
        .await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );

    // The xta-mailbox connector's part: put the routed message into B's mailbox.
    let mb = h.server.mailboxes();
    let msg_blob = h
        .intake
        .blobs
        .put(Box::pin(std::io::Cursor::new(MESSAGE.to_vec())), 1 << 20)
        .await
        .unwrap();
    let mm = MailboxMessage {
        metadata: md.clone(),
        message: StoredContent {
            description: info.message.clone(),
            blob: msg_blob,
        },
        attachments: vec![StoredContent {
            description: info.attachments[0].clone(),
            blob: sub.attachments[0].blob.clone(),
        }],
        delivered_at: drehscheibe_xta::mailbox::timestamp_now(),
        first_fetched_at: None,
    };
    mb.put("fachverfahren-b", mm.clone()).await.unwrap();
    mb.put("fachverfahren-b", mm).await.unwrap();

    // A sees nothing in its own mailbox.
    let list_req = format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\" maxListItems=\"10\" ListForm=\"MessageMetaData\"/>");
    let list_action =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest";
    let r = h.soap(TOKEN_A, list_action, "", &list_req).await;
    let env = r.envelope();
    let resp = env
        .child(NS_SOAP12, "Header")
        .unwrap()
        .child(NS_OSCI, "MsgBoxResponse")
        .unwrap();
    assert!(resp.child(NS_OSCI, "NoMessageAvailable").is_some());

    // B lists it with its meta data.
    let r = h.soap(TOKEN_B, list_action, "", &list_req).await;
    let env = r.envelope();
    let list = env
        .child(NS_SOAP12, "Body")
        .unwrap()
        .child(NS_OSCI, "MsgStatusList")
        .unwrap();
    let listed: Vec<_> = list
        .children_named(NS_OSCIMETA, "MessageMetaData")
        .collect();
    assert_eq!(listed.len(), 1);
    let lm = MessageMetaData::from_element(listed[0]).unwrap();
    assert_eq!(lm.message_id, id);
    assert_eq!(lm.qualifier, md.qualifier);
    // Attribute form too.
    let r = h
        .soap(
            TOKEN_B,
            list_action,
            "",
            &format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\"/>"),
        )
        .await;
    r.envelope();

    // A cannot fetch B's message (foreign mailbox).
    let fetch_action =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxFetchRequest";
    let fetch = format!("<osci:MsgBoxFetchRequest xmlns:osci=\"{NS_OSCI}\"><osci:MsgSelector><wsa:MessageID>{id}</wsa:MessageID></osci:MsgSelector></osci:MsgBoxFetchRequest>");
    let r = h.soap(TOKEN_A, fetch_action, "", &fetch).await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );

    // B fetches inline (plain SOAP request → base64 in the envelope)…
    let r = h.soap(TOKEN_B, fetch_action, "", &fetch).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/soap+xml"));
    let env = r.envelope();
    let (content, att) = contents(&env);
    assert_eq!(content, MESSAGE);
    assert_eq!(att, pdf);
    let header = env.child(NS_SOAP12, "Header").unwrap();
    let got = MessageMetaData::from_element(header.child(NS_OSCIMETA, "MessageMetaData").unwrap())
        .unwrap();
    assert_eq!(got.qualifier, md.qualifier);
    assert_eq!(got.reader, md.reader);
    let rid = header
        .child(NS_OSCI, "MsgBoxResponse")
        .unwrap()
        .attr("MsgBoxRequestID")
        .unwrap()
        .to_string();

    // …and as MTOM (MTOM request → MTOM response with raw parts).
    let env_xml = request_envelope(fetch_action, "urn:uuid:f2", &h.url, "", &fetch);
    let body = format!("--bb\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\nContent-ID: <r@t>\r\n\r\n{env_xml}\r\n--bb--\r\n");
    let r = h
        .post(Some(TOKEN_B), "multipart/related; type=\"application/xop+xml\"; boundary=bb; start=\"<r@t>\"; start-info=\"application/soap+xml\"", body.into_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.content_type.starts_with("multipart/related"));
    let (_, parts) = r.soap();
    assert_eq!(parts.len(), 2);
    let env = r.envelope();
    let (content, att) = contents(&env);
    assert_eq!(content, MESSAGE);
    assert_eq!(att, pdf);

    // close with an unknown id closes nothing.
    let close_action =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxCloseRequest";
    let bad_close = format!("<osci:MsgBoxCloseRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:LastMsgReceived>{id}</osci:LastMsgReceived><osci:LastMsgReceived>urn:de:xta:messageid:x:unknown</osci:LastMsgReceived></osci:MsgBoxCloseRequest>");
    let r = h.soap(TOKEN_B, close_action, "", &bad_close).await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    assert_eq!(mb.list("fachverfahren-b").await.unwrap().len(), 1);
    // A cannot close B's message.
    let close = format!("<osci:MsgBoxCloseRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:LastMsgReceived>{id}</osci:LastMsgReceived></osci:MsgBoxCloseRequest>");
    let r = h.soap(TOKEN_A, close_action, "", &close).await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    // B closes it; a second close is an unknown id.
    let r = h.soap(TOKEN_B, close_action, "", &close).await;
    assert_eq!(r.status, 200);
    r.envelope();
    assert!(mb.list("fachverfahren-b").await.unwrap().is_empty());
    let r = h.soap(TOKEN_B, close_action, "", &close).await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    // A late connector retry does not re-open it.
    assert_eq!(
        mb.put("fachverfahren-b", mb_message(&md)).await.unwrap(),
        drehscheibe_xta::mailbox::PutOutcome::AlreadyPresent
    );
}

fn mb_message(md: &MessageMetaData) -> MailboxMessage {
    MailboxMessage {
        metadata: md.clone(),
        message: StoredContent {
            description: ContentDescription {
                content_type: "text/xml".into(),
                ..Default::default()
            },
            blob: BlobRef {
                sha256: drehscheibe_model::sha256_hex(MESSAGE),
                size: MESSAGE.len() as u64,
            },
        },
        attachments: vec![],
        delivered_at: drehscheibe_xta::mailbox::timestamp_now(),
        first_fetched_at: None,
    }
}

fn contents(env: &XmlElement) -> (Vec<u8>, Vec<u8>) {
    let cc = env
        .child(NS_SOAP12, "Body")
        .unwrap()
        .child(NS_XTA, "GenericContentContainer")
        .unwrap()
        .child(NS_XTA, "ContentContainer")
        .unwrap();
    let dec = |e: &XmlElement| {
        base64::engine::general_purpose::STANDARD
            .decode(e.text().trim())
            .unwrap()
    };
    let m = cc.child(NS_XTA, "Message").unwrap();
    assert_eq!(m.attr("filename"), Some("antrag.xml"));
    let a = cc.child(NS_XTA, "Attachment").unwrap();
    assert_eq!(a.attr("contentType"), Some("application/pdf"));
    (dec(m), dec(a))
}

#[tokio::test]
async fn management_operations() {
    let h = hub().await;
    let lookup = format!("<xta:LookupServiceRequest xmlns:xta=\"{NS_XTA}\" xmlns:oscimeta=\"{NS_OSCIMETA}\"><xta:LookupServiceRequestList><xta:LookupService><oscimeta:Reader><oscimeta:Identifier type=\"xoev\">{PARTY_B}</oscimeta:Identifier></oscimeta:Reader><xta:ServiceType>urn:xoev-de:xbau</xta:ServiceType></xta:LookupService></xta:LookupServiceRequestList><xta:LookupServiceRequestList><xta:LookupService><oscimeta:Reader><oscimeta:Identifier type=\"xoev\">dvdv:09999999</oscimeta:Identifier></oscimeta:Reader><xta:ServiceType>urn:x</xta:ServiceType></xta:LookupService></xta:LookupServiceRequestList></xta:LookupServiceRequest>");
    let r = h
        .soap(
            TOKEN_A,
            "http://www.xta.de/XTA/IsServiceAvailable",
            "",
            &lookup,
        )
        .await;
    assert_eq!(r.status, 200);
    let env = r.envelope();
    let results: Vec<_> = env
        .child(NS_SOAP12, "Body")
        .unwrap()
        .child(NS_XTA, "LookupServiceResponse")
        .unwrap()
        .child(NS_XTA, "LookupServiceResultList")
        .unwrap()
        .children_named(NS_XTA, "LookupServiceResult")
        .cloned()
        .collect();
    assert_eq!(results.len(), 2);
    let v = |e: &XmlElement| {
        e.child(NS_XTA, "IsServiceAvailableValue")
            .unwrap()
            .elements()
            .next()
            .unwrap()
            .local
            .clone()
    };
    assert_eq!(v(&results[0]), "ServiceIsAvailable");
    assert_eq!(v(&results[1]), "ServiceIsAvailableUnknown");

    // sendMessageSync: asynchronous only.
    let id = h.create_id(TOKEN_A).await;
    let mut hdr = String::new();
    metadata(&id, PARTY_A, PARTY_B).write_xml(&mut hdr);
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/SendMessageSync", &hdr, "")
        .await;
    assert_eq!(r.fault(), ("SyncAsyncException".into(), "9080".into()));

    // cancelMessage of an unknown id, then of a sent one.
    let cancel = |id: &str| format!("<wsa:MessageID>{id}</wsa:MessageID>");
    let r = h
        .soap(
            TOKEN_A,
            "http://www.xta.de/XTA/CancelMessage",
            "",
            &cancel(&id),
        )
        .await;
    assert_eq!(
        r.fault(),
        ("ParameterIsNotValidException".into(), "9022".into())
    );
    let md = metadata(&id, PARTY_A, PARTY_B);
    let (ct, body) = mtom_send(&h.url, &md, "m", &[], &[("m", MESSAGE)]);
    assert_eq!(h.post(Some(TOKEN_A), &ct, body).await.status, 200);
    let r = h
        .soap(
            TOKEN_A,
            "http://www.xta.de/XTA/CancelMessage",
            "",
            &cancel(&id),
        )
        .await;
    assert_eq!(r.fault(), ("CancelDeniedException".into(), "9101".into()));

    // Inline base64 sendMessage (as generic SOAP clients send it).
    let id2 = h.create_id(TOKEN_A).await;
    let mut hdr = String::new();
    metadata(&id2, PARTY_A, PARTY_B).write_xml(&mut hdr);
    let b64 = base64::engine::general_purpose::STANDARD.encode(MESSAGE);
    let body = format!("<xta:GenericContentContainer xmlns:xta=\"{NS_XTA}\"><xta:ContentContainer><xta:Message contentType=\"text/xml\">{b64}</xta:Message></xta:ContentContainer></xta:GenericContentContainer>");
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/SendMessage", &hdr, &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.soap().0);
    let subs = h.intake.submitted.lock().unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[1].1.payload.as_ref(), MESSAGE);
}

#[tokio::test]
async fn hostile_requests_get_the_right_fault_and_store_nothing() {
    let h = hub().await;
    let soap12 = "application/soap+xml; charset=utf-8";
    // Not SOAP at all.
    let r = h
        .post(Some(TOKEN_A), soap12, b"hello, this is not XML".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.fault().0, "env:Sender");
    let r = h
        .post(Some(TOKEN_A), soap12, b"<html><body/></html>".to_vec())
        .await;
    assert_eq!(r.fault().0, "env:Sender");
    let r = h
        .post(Some(TOKEN_A), "application/json", b"{}".to_vec())
        .await;
    assert_eq!(r.fault().0, "env:Sender");
    // A DTD (entity expansion) is refused.
    let r = h
        .post(
            Some(TOKEN_A),
            soap12,
            b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>".to_vec(),
        )
        .await;
    assert_eq!(r.fault().0, "env:Sender");
    // An envelope of an unknown SOAP version: a SOAP 1.2 VersionMismatch
    // fault naming the supported envelope (SOAP 1.1 requests: see
    // `a_soap11_request_gets_a_soap11_version_mismatch_fault`).
    let other = "<s:Envelope xmlns:s=\"urn:example:soap-3\"><s:Body/></s:Envelope>";
    let r = h.post(Some(TOKEN_A), soap12, other.into()).await;
    assert_eq!(r.fault().0, "env:VersionMismatch");
    assert_eq!(r.status, 500, "SOAP 1.2 HTTP binding");
    let upgrade = r
        .envelope()
        .child(NS_SOAP12, "Header")
        .and_then(|h| h.child(NS_SOAP12, "Upgrade"))
        .cloned()
        .expect("an Upgrade header block");
    assert_eq!(
        upgrade
            .child(NS_SOAP12, "SupportedEnvelope")
            .and_then(|e| e.attr("qname")),
        Some("ns1:Envelope")
    );
    // Missing WS-Addressing Action.
    let no_wsa = format!("<env:Envelope xmlns:env=\"{NS_SOAP12}\"><env:Body/></env:Envelope>");
    let r = h.post(Some(TOKEN_A), soap12, no_wsa.into_bytes()).await;
    assert_eq!(
        r.fault(),
        (
            "env:Sender".into(),
            "wsa:MessageAddressingHeaderRequired".into()
        )
    );
    // A mustUnderstand header block the server does not process.
    let mu = format!("<sec:Security xmlns:sec=\"urn:example:security\" xmlns:env=\"{NS_SOAP12}\" env:mustUnderstand=\"true\"/>");
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/CheckAccountActive", &mu, "")
        .await;
    assert_eq!(r.fault().0, "env:MustUnderstand");
    let (xml, _) = r.soap();
    assert!(
        xml.contains(
            "<env:NotUnderstood xmlns:nu=\"urn:example:security\" qname=\"nu:Security\"/>"
        ),
        "{xml}"
    );
    // Unknown action.
    let r = h.soap(TOKEN_A, "urn:not-an-xta-action", "", "").await;
    assert_eq!(
        r.fault(),
        ("env:Sender".into(), "wsa:ActionNotSupported".into())
    );
    // No / wrong token.
    let env = request_envelope(
        "http://www.xta.de/XTA/CheckAccountActive",
        "urn:uuid:1",
        &h.url,
        "",
        "",
    );
    let r = h.post(None, soap12, env.clone().into_bytes()).await;
    assert_eq!(
        r.fault(),
        ("PermissionDeniedException".into(), "9012".into())
    );
    let r = h.post(Some("wrong"), soap12, env.into_bytes()).await;
    assert_eq!(
        r.fault(),
        ("PermissionDeniedException".into(), "9012".into())
    );
    // AuthorIdentifier header naming another party (foreign mailbox).
    let author = format!("<oscimeta:Author xmlns:oscimeta=\"{NS_OSCIMETA}\"><oscimeta:Identifier type=\"xoev\">{PARTY_B}</oscimeta:Identifier></oscimeta:Author>");
    let r = h
        .soap(
            TOKEN_A,
            "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest",
            &author,
            &format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\"/>"),
        )
        .await;
    assert_eq!(
        r.fault(),
        ("PermissionDeniedException".into(), "9014".into())
    );

    let id = h.create_id(TOKEN_A).await;
    let md = metadata(&id, PARTY_A, PARTY_B);
    // Sending as somebody else.
    let (ct, body) = mtom_send(
        &h.url,
        &metadata(&id, PARTY_B, PARTY_A),
        "m",
        &[],
        &[("m", MESSAGE)],
    );
    let r = h.post(Some(TOKEN_A), &ct, body).await;
    assert_eq!(
        r.fault(),
        ("PermissionDeniedException".into(), "9014".into())
    );
    // Broken MTOM boundary: the package is cut off inside a part.
    let (ct, body) = mtom_send(&h.url, &md, "m", &["a"], &[("m", MESSAGE), ("a", &pdf())]);
    let cut = body[..body.len() - 5000].to_vec();
    let r = h.post(Some(TOKEN_A), &ct, cut).await;
    assert_eq!(r.fault().0, "env:Sender");
    // A boundary that never occurs.
    let r = h
        .post(
            Some(TOKEN_A),
            &ct.replace("MIMEBoundary_test", "other"),
            body.clone(),
        )
        .await;
    assert_eq!(r.fault().0, "env:Sender");
    // XOP include to a missing part.
    let (ct, body) = mtom_send(&h.url, &md, "m", &["missing"], &[("m", MESSAGE)]);
    let r = h.post(Some(TOKEN_A), &ct, body).await;
    assert_eq!(
        r.fault(),
        ("ParameterIsNotValidException".into(), "9022".into())
    );
    // Oversize attachment part (limit 1 MiB in this hub).
    let big = vec![7u8; 1024 * 1024 + 1];
    let (ct, body) = mtom_send(&h.url, &md, "m", &["a"], &[("m", MESSAGE), ("a", &big)]);
    let r = h.post(Some(TOKEN_A), &ct, body).await;
    assert_eq!(
        r.fault(),
        ("ParameterIsNotValidException".into(), "9023".into())
    );
    // Missing MessageMetaData.
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/SendMessage", "", "<x/>")
        .await;
    assert_eq!(
        r.fault(),
        ("ParameterIsNotValidException".into(), "9020".into())
    );
    // Bad base64 inline.
    let mut hdr = String::new();
    md.write_xml(&mut hdr);
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/SendMessage", &hdr, &format!("<xta:GenericContentContainer xmlns:xta=\"{NS_XTA}\"><xta:ContentContainer><xta:Message contentType=\"text/xml\">!!notbase64!!</xta:Message></xta:ContentContainer></xta:GenericContentContainer>"))
        .await;
    assert_eq!(
        r.fault(),
        ("MessageSchemaViolationException".into(), "9051".into())
    );
    // Nothing of all that reached the hub.
    assert!(h.intake.submitted.lock().unwrap().is_empty());
    // A message id used by A cannot be reused by B.
    let (ct, body) = mtom_send(&h.url, &md, "m", &[], &[("m", MESSAGE)]);
    assert_eq!(h.post(Some(TOKEN_A), &ct, body).await.status, 200);
    let (ct, body) = mtom_send(
        &h.url,
        &metadata(&id, PARTY_B, PARTY_A),
        "m",
        &[],
        &[("m", MESSAGE)],
    );
    let r = h.post(Some(TOKEN_B), &ct, body).await;
    assert_eq!(
        r.fault(),
        ("ParameterIsNotValidException".into(), "9024".into())
    );
    assert_eq!(h.intake.submitted.lock().unwrap().len(), 1);
    h.intake.submitted.lock().unwrap().clear();
    assert!(h.intake.submitted.lock().unwrap().is_empty());
    assert!(
        h.intake.blobs.0.lock().unwrap().is_empty(),
        "no staged blobs"
    );
    // Unknown message id on close / getMessage.
    let close = format!("<osci:MsgBoxCloseRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"urn:uuid:x\"><osci:LastMsgReceived>urn:de:xta:messageid:x:nope</osci:LastMsgReceived></osci:MsgBoxCloseRequest>");
    let r = h
        .soap(
            TOKEN_B,
            "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxCloseRequest",
            "",
            &close,
        )
        .await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    let r = h
        .soap(
            TOKEN_B,
            "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxFetchRequest",
            "",
            &format!("<osci:MsgBoxFetchRequest xmlns:osci=\"{NS_OSCI}\"/>"),
        )
        .await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    // A malformed request to an operation that declares no
    // ParameterIsNotValidException gets a plain env:Sender fault.
    let r = h
        .soap(
            TOKEN_B,
            "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest",
            "",
            &format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\" maxListItems=\"0\"/>"),
        )
        .await;
    assert_eq!(r.fault(), ("env:Sender".into(), String::new()));
    // The server still works.
    let r = h
        .soap(TOKEN_A, "http://www.xta.de/XTA/CheckAccountActive", "", "")
        .await;
    assert_eq!(r.status, 200);
}

/// Regression: a SOAP 1.1 request was answered with a SOAP 1.2 fault its
/// client cannot read. SOAP 1.2 part 1, appendix A: a SOAP 1.1 fault
/// (envelope in the SOAP 1.1 namespace, `faultcode` `VersionMismatch`,
/// HTTP 500, `text/xml`) with an `Upgrade` header block naming the SOAP 1.2
/// envelope.
#[tokio::test]
async fn a_soap11_request_gets_a_soap11_version_mismatch_fault() {
    let h = hub().await;
    // What a SOAP 1.1 stack (e.g. an old Axis or .NET client) sends.
    let request = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"{NS_SOAP11}\" xmlns:wsa=\"{NS_WSA}\">\
         <soapenv:Header>\
         <wsa:Action>http://www.xta.de/XTA/CheckAccountActive</wsa:Action>\
         <wsa:MessageID>urn:uuid:6f1c1a34-1d5e-4bd3-9a59-0b0f4a8c7d21</wsa:MessageID>\
         <wsa:To>{}</wsa:To>\
         </soapenv:Header>\
         <soapenv:Body/>\
         </soapenv:Envelope>",
        h.url
    );
    // By its binding (text/xml) and by its envelope namespace alone.
    for content_type in ["text/xml; charset=utf-8", "application/soap+xml"] {
        let r = h
            .http
            .post(&h.url)
            .bearer_auth(TOKEN_A)
            .header("content-type", content_type)
            .header("SOAPAction", "\"http://www.xta.de/XTA/CheckAccountActive\"")
            .body(request.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500, "{content_type}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/xml"), "{content_type}: {ct}");
        let xml = r.text().await.unwrap();
        let env = parse_xml(xml.as_bytes()).unwrap();
        assert!(env.is(NS_SOAP11, "Envelope"), "{xml}");
        assert!(
            env.child(NS_SOAP12, "Body").is_none() && env.child(NS_SOAP12, "Header").is_none(),
            "nothing of SOAP 1.2 but the Upgrade block: {xml}"
        );
        let fault = env
            .child(NS_SOAP11, "Body")
            .and_then(|b| b.child(NS_SOAP11, "Fault"))
            .unwrap_or_else(|| panic!("no SOAP 1.1 fault: {xml}"));
        // faultcode is a QName in the SOAP 1.1 namespace.
        let code = fault.child_local("faultcode").unwrap().text();
        let (prefix, local) = code.split_once(':').unwrap();
        assert_eq!(local, "VersionMismatch");
        assert!(
            xml.contains(&format!("xmlns:{prefix}=\"{NS_SOAP11}\"")),
            "{prefix} is the SOAP 1.1 namespace: {xml}"
        );
        assert!(!fault.child_local("faultstring").unwrap().text().is_empty());
        // The Upgrade header block lists the SOAP 1.2 envelope.
        let upgrade = env
            .child(NS_SOAP11, "Header")
            .and_then(|hd| hd.child(NS_SOAP12, "Upgrade"))
            .unwrap_or_else(|| panic!("no Upgrade header block: {xml}"));
        let supported: Vec<&XmlElement> = upgrade
            .children_named(NS_SOAP12, "SupportedEnvelope")
            .collect();
        assert_eq!(supported.len(), 1, "{xml}");
        assert_eq!(supported[0].attr("qname"), Some("ns1:Envelope"));
        assert!(
            xml.contains(&format!("qname=\"ns1:Envelope\" xmlns:ns1=\"{NS_SOAP12}\"")),
            "ns1 is the SOAP 1.2 namespace: {xml}"
        );
    }
    assert!(h.intake.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mailboxes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let md = metadata("urn:de:xta:messageid:t:1", PARTY_A, PARTY_B);
    let open = || -> Arc<dyn drehscheibe_store::Store> {
        Arc::new(drehscheibe_store::SledStore::open(&dir.path().join("store")).unwrap())
    };
    {
        let store = open();
        let mb = drehscheibe_xta::mailbox::Mailboxes::new(store.clone()).unwrap();
        mb.put("b", mb_message(&md)).await.unwrap();
        // A second handle on the same store sees the same mailboxes.
        let other = drehscheibe_xta::mailbox::Mailboxes::new(store).unwrap();
        assert_eq!(other.list("b").await.unwrap().len(), 1);
        assert_eq!(other.open_count("b").await.unwrap(), 1);
    }
    let mb = drehscheibe_xta::mailbox::Mailboxes::new(open()).unwrap();
    assert_eq!(mb.list("b").await.unwrap().len(), 1);
    assert!(mb.get("a", &md.message_id).await.unwrap().is_none());
    assert!(mb.close("b", &md.message_id).await.unwrap());
    assert!(!mb.close("b", &md.message_id).await.unwrap());
    let _ = Bytes::new();
}

#[tokio::test]
async fn client_certificate_fingerprints_authenticate_when_the_listener_provides_them() {
    let fp = "ab".repeat(32);
    let h = hub_with(Some(&fp)).await;
    let env = request_envelope(
        "http://www.xta.de/XTA/CheckAccountActive",
        "urn:uuid:1",
        &h.url,
        "",
        "",
    );
    let send = |cert: &'static str| {
        h.http
            .post(&h.url)
            .header("content-type", "application/soap+xml")
            .header("x-test-client-cert", cert)
            .body(env.clone())
            .send()
    };
    let r = send("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = send("cd").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().await.unwrap();
    validate(&text);
    assert!(text.contains("PermissionDeniedException"), "{text}");
    // The account is fachverfahren-b: its (empty) mailbox, not A's.
    let list = format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\"/>");
    let env = request_envelope(
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest",
        "urn:uuid:2",
        &h.url,
        &format!("<oscimeta:Author xmlns:oscimeta=\"{NS_OSCIMETA}\"><oscimeta:Identifier type=\"xoev\">{PARTY_A}</oscimeta:Identifier></oscimeta:Author>"),
        &list,
    );
    let r = h
        .http
        .post(&h.url)
        .header("content-type", "application/soap+xml")
        .header("x-test-client-cert", "ab".repeat(32))
        .body(env)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    validate(&text);
    assert!(text.contains("PermissionDeniedException"), "{text}");
    assert!(text.contains("<code>9014</code>"), "{text}");
}

#[tokio::test]
async fn the_service_description_is_published_with_the_endpoint_address() {
    let h = hub().await;
    let r = h.http.get(format!("{}?wsdl", h.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let wsdl = r.text().await.unwrap();
    assert_eq!(
        wsdl.matches(&format!("<soap:address location=\"{}\"/>", h.url))
            .count(),
        3
    );
    assert!(!wsdl.contains("REPLACE_WITH_ACTUAL_URL"));
    // Every schemaLocation, transitively, resolves beside the WSDL.
    let mut todo: Vec<String> = vec![wsdl];
    let mut seen = std::collections::HashSet::new();
    while let Some(doc) = todo.pop() {
        for part in doc.split("schemaLocation=\"").skip(1) {
            let loc = part.split('"').next().unwrap().to_string();
            // The WSDL's locations are absolute (beside the endpoint), the
            // XSDs' relative; other absolute URLs only occur in
            // commented-out imports.
            let loc = loc
                .strip_prefix(&format!("{}/", h.url))
                .unwrap_or(&loc)
                .to_string();
            if loc.contains("://") || !seen.insert(loc.clone()) {
                continue;
            }
            let r = h.http.get(format!("{}/{loc}", h.url)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{loc}");
            let text = r.text().await.unwrap();
            assert!(text.contains("schema "), "{loc}");
            assert!(text.contains("http://www.w3.org/2001/XMLSchema"), "{loc}");
            todo.push(text);
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
    let r = h
        .http
        .get(format!("{}/../Cargo.toml", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = h
        .http
        .get(format!("{}/nope.xsd", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn paging_and_iterating_a_mailbox() {
    let h = hub().await;
    let mb = h.server.mailboxes();
    let blob = h
        .intake
        .blobs
        .put(Box::pin(std::io::Cursor::new(MESSAGE.to_vec())), 1 << 20)
        .await
        .unwrap();
    let ids: Vec<String> = (1..=3)
        .map(|i| format!("urn:de:xta:messageid:test:{i}"))
        .collect();
    for id in &ids {
        let mut m = mb_message(&metadata(id, PARTY_A, PARTY_B));
        m.message.blob = blob.clone();
        mb.put("fachverfahren-b", m).await.unwrap();
    }
    let base = "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/";
    let header = |r: &Resp| {
        r.envelope()
            .child(NS_SOAP12, "Header")
            .unwrap()
            .child(NS_OSCI, "MsgBoxResponse")
            .unwrap()
            .clone()
    };
    let listed = |r: &Resp| -> Vec<String> {
        r.envelope()
            .child(NS_SOAP12, "Body")
            .unwrap()
            .child(NS_OSCI, "MsgStatusList")
            .unwrap()
            .children_named(NS_OSCI, "MsgAttributes")
            .map(|a| a.child(NS_WSA, "MessageID").unwrap().text())
            .collect()
    };
    // Page 1 of 2.
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxStatusListRequest"),
            "",
            &format!("<osci:MsgBoxStatusListRequest xmlns:osci=\"{NS_OSCI}\" maxListItems=\"2\"/>"),
        )
        .await;
    assert_eq!(listed(&r), ids[..2].to_vec());
    let hd = header(&r);
    assert_eq!(hd.child(NS_OSCI, "ItemsPending").unwrap().text(), "1");
    let rid = hd.attr("MsgBoxRequestID").unwrap().to_string();
    let next =
        format!("<osci:MsgBoxGetNextRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"/>");
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxGetNextListRequest"),
            "",
            &next,
        )
        .await;
    assert_eq!(listed(&r), ids[2..].to_vec());
    assert_eq!(
        header(&r).child(NS_OSCI, "ItemsPending").unwrap().text(),
        "0"
    );
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxGetNextListRequest"),
            "",
            &next,
        )
        .await;
    assert!(listed(&r).is_empty());
    // Another account cannot continue B's listing; unknown ids are invalid.
    let r = h
        .soap(
            TOKEN_A,
            &format!("{base}MsgBoxGetNextListRequest"),
            "",
            &next,
        )
        .await;
    let reason = header(&r)
        .child(NS_OSCI, "NoMessageAvailable")
        .unwrap()
        .attr("reason")
        .unwrap()
        .to_string();
    assert!(reason.ends_with("/RequestIdInvalid"), "{reason}");
    assert!(listed(&r).is_empty());

    // getMessage, then getNextMessage through the mailbox.
    let fetched_id = |r: &Resp| {
        MessageMetaData::from_element(
            r.envelope()
                .child(NS_SOAP12, "Header")
                .unwrap()
                .child(NS_OSCIMETA, "MessageMetaData")
                .unwrap(),
        )
        .unwrap()
        .message_id
    };
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxFetchRequest"),
            "",
            &format!("<osci:MsgBoxFetchRequest xmlns:osci=\"{NS_OSCI}\"/>"),
        )
        .await;
    assert_eq!(fetched_id(&r), ids[0]);
    let rid = header(&r).attr("MsgBoxRequestID").unwrap().to_string();
    let next =
        format!("<osci:MsgBoxGetNextRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"/>");
    for want in &ids[1..] {
        let r = h
            .soap(
                TOKEN_B,
                &format!("{base}MsgBoxGetNextMsgRequest"),
                "",
                &next,
            )
            .await;
        assert_eq!(&fetched_id(&r), want);
    }
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxGetNextMsgRequest"),
            "",
            &next,
        )
        .await;
    assert_eq!(
        r.fault(),
        ("InvalidMessageIDException".into(), "9070".into())
    );
    // A's attempt to iterate B's request id is refused.
    let r = h
        .soap(
            TOKEN_A,
            &format!("{base}MsgBoxGetNextMsgRequest"),
            "",
            &next,
        )
        .await;
    assert_eq!(r.fault().0, "env:Sender");
    let open_before = mb.list("fachverfahren-b").await.unwrap().len();
    assert!(open_before > 0);
    let close_only = |rid: &str| {
        format!("<osci:MsgBoxCloseRequest xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"/>")
    };
    // Issue 10, defect 2: another account cannot end B's fetch session
    // with B's request id, and a made-up id is a fault, not a success.
    for (token, id) in [(TOKEN_A, rid.as_str()), (TOKEN_B, "urn:uuid:made-up")] {
        let r = h
            .soap(
                token,
                &format!("{base}MsgBoxCloseRequest"),
                "",
                &close_only(id),
            )
            .await;
        assert_eq!(r.fault().0, "env:Sender", "close with {id}");
        assert_eq!(
            mb.list("fachverfahren-b").await.unwrap().len(),
            open_before,
            "a refused close closes nothing"
        );
    }
    // close without LastMsgReceived closes what this iterator handed out.
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxCloseRequest"),
            "",
            &close_only(&rid),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(mb.list("fachverfahren-b").await.unwrap().is_empty());
    // The request id ended with the close.
    let r = h
        .soap(
            TOKEN_B,
            &format!("{base}MsgBoxCloseRequest"),
            "",
            &close_only(&rid),
        )
        .await;
    assert_eq!(r.fault().0, "env:Sender");
}

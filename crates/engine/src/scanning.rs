//! Malware scanning in the pipeline (ADR 0017).
//!
//! With a [`Scanning`] in the hub's settings, nothing reaches a connector
//! unscanned:
//!
//! * **at intake** ([`Hub::submit`](crate::Hub)): payload and attachments
//!   are scanned while the sender waits. Malware → the message is stored
//!   `quarantined` and the sender gets [`IntakeError::Infected`] (HTTP 422,
//!   XTA fault 9060, FIT-Connect `reject-submission`). Clean → the record
//!   notes it (`scan.input_clean`), so routing does not scan again. No
//!   verdict (scanner down, slow, over its size limit) → the message is
//!   accepted as usual and routing scans it;
//! * **before routing**, unless the intake found the input clean: the
//!   same scan;
//! * **after routing, before anything is delivered**: every output
//!   document. Malware → `quarantined` instead of `routed`.
//!
//! Base64 inside XML (`xs:base64Binary` elements: XÖV attachments) is
//! not seen by a scanner as it is: text of at least
//! [`Scanning::base64_min`] characters that is nothing but base64 is
//! decoded and scanned as well (`part`: `payload, base64 in <element>`).
//!
//! Fail closed: a scan without a verdict leaves the message `received`
//! with the scanner's error as its reason, and the routing job runs again
//! after [`Scanning::retry`] — it is never routed or delivered unscanned.
//! Only an operator's [`Hub::release`] (with a reason, audited) moves a
//! quarantined message on; from then on no verdict holds it back.
//!
//! [`IntakeError::Infected`]: drehscheibe_model::IntakeError::Infected

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    AuditEvent, Envelope, MessageId, MessageRecord, MessageState, ScanError, ScanFinding,
    ScanRelease, ScanState, Scanner, Verdict,
};
use drehscheibe_rules::InputKind;
use drehscheibe_store::{Effects, Job, StoreError};

use crate::hub::chrono_dur;
use crate::{Hub, RoutePlan};

/// Actor of the scanner's audit events.
const ACTOR: &str = "scanner";

/// The hub's malware scanner and how it is used.
#[derive(Clone)]
pub struct Scanning {
    pub scanner: Arc<dyn Scanner>,
    /// Pause before a message whose scan gave no verdict is scanned again.
    pub retry: Duration,
    /// Base64 text in XML of at least this many characters is decoded
    /// and scanned too.
    pub base64_min: usize,
    /// Channels whose input is not scanned (`scan = "off"`).
    pub channels_off: std::collections::HashSet<String>,
    /// Tenants whose outputs are not scanned (`scan = "off"`).
    pub tenants_off: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Scanning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanning")
            .field("scanner", &self.scanner.describe())
            .field("retry", &self.retry)
            .field("base64_min", &self.base64_min)
            .field("channels_off", &self.channels_off)
            .field("tenants_off", &self.tenants_off)
            .finish()
    }
}

impl Scanning {
    /// `scanner`, scanning again 30 s after a scan without a verdict,
    /// base64 blocks from 1 KiB on.
    pub fn new(scanner: Arc<dyn Scanner>) -> Self {
        Self {
            scanner,
            retry: Duration::from_secs(30),
            base64_min: DEFAULT_BASE64_MIN,
            channels_off: Default::default(),
            tenants_off: Default::default(),
        }
    }

    /// Whether the input of `channel` is scanned.
    pub(crate) fn scans_channel(&self, channel: &str) -> bool {
        !self.channels_off.contains(channel)
    }

    async fn scan_bytes(&self, bytes: &Bytes) -> Result<Verdict, ScanError> {
        self.scanner
            .scan(Box::pin(std::io::Cursor::new(bytes.clone())))
            .await
    }

    /// Scan `bytes` (the document called `part`), and when it is XML or
    /// JSON, the base64 blocks inside it (element text, JSON strings), one
    /// at a time: a blocking thread finds and decodes them and hands them
    /// over one by one, so the document is not parsed on the async runtime
    /// and at most three decoded blocks are in memory (being scanned, in
    /// the channel, being decoded).
    pub(crate) async fn scan_document(
        &self,
        part: &str,
        bytes: &Bytes,
        content_type: &str,
    ) -> Result<Option<ScanFinding>, ScanError> {
        if let Verdict::Infected { signature } = self.scan_bytes(bytes).await? {
            return Ok(Some(self.finding(part.to_owned(), signature)));
        }
        let kind = if is_xml(content_type) {
            Embedded::Xml
        } else if is_json(content_type) {
            Embedded::Json
        } else {
            return Ok(None);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(1);
        let document = bytes.clone();
        let min = self.base64_min;
        let producer = tokio::task::spawn_blocking(move || {
            let mut next: Box<dyn FnMut() -> Option<(String, Vec<u8>)>> = match kind {
                Embedded::Xml => {
                    let mut blocks = Base64Blocks::new(&document, min);
                    Box::new(move || {
                        blocks
                            .next_block()
                            .map(|(element, decoded)| (format!("<{element}>"), decoded))
                    })
                }
                Embedded::Json => {
                    let mut strings = Base64JsonStrings::new(&document, min);
                    Box::new(move || {
                        strings
                            .next_block()
                            .map(|(key, decoded)| (format!("\"{key}\""), decoded))
                    })
                }
            };
            while let Some(block) = next() {
                if tx.blocking_send(block).is_err() {
                    break; // the scan ended early (a finding, an error)
                }
            }
        });
        let mut found = None;
        while let Some((place, decoded)) = rx.recv().await {
            let reader = Box::pin(std::io::Cursor::new(decoded));
            if let Verdict::Infected { signature } = self.scanner.scan(reader).await? {
                found = Some(self.finding(format!("{part}, base64 in {place}"), signature));
                break;
            }
        }
        drop(rx);
        // A panic in the finder only ends the search; the document itself
        // was scanned above.
        let _ = producer.await;
        Ok(found)
    }

    fn finding(&self, part: String, signature: String) -> ScanFinding {
        ScanFinding {
            part,
            signature,
            scanner: self.scanner.describe(),
            at: Utc::now(),
        }
    }
}

/// Default of [`Scanning::base64_min`].
pub const DEFAULT_BASE64_MIN: usize = 1024;

/// Which embedded base64 a document may carry.
#[derive(Clone, Copy)]
enum Embedded {
    Xml,
    Json,
}

/// XML or JSON as the rule processor tells them apart
/// ([`InputKind::from_content_type`]).
fn is_json(content_type: &str) -> bool {
    matches!(
        InputKind::from_content_type(content_type),
        Ok(InputKind::Json)
    )
}

fn is_xml(content_type: &str) -> bool {
    matches!(
        InputKind::from_content_type(content_type),
        Ok(InputKind::Xml)
    )
}

/// The base64 blocks of an XML document: element text (or CDATA) of at
/// least `min` characters made of the base64 alphabet and white space
/// only, decoded — one at a time, so at most one decoded block is in
/// memory besides the document. A document that is not well-formed
/// yields what came before the fault (the intake refuses such payloads
/// anyway).
struct Base64Blocks<'a> {
    reader: quick_xml::Reader<&'a [u8]>,
    min: usize,
    element: Vec<u8>,
    done: bool,
}

impl<'a> Base64Blocks<'a> {
    fn new(xml: &'a [u8], min: usize) -> Self {
        Self {
            reader: quick_xml::Reader::from_reader(xml),
            min: min.max(4),
            element: Vec::new(),
            done: false,
        }
    }

    /// The next block: the name of its element and the decoded bytes.
    fn next_block(&mut self) -> Option<(String, Vec<u8>)> {
        use quick_xml::events::Event;
        while !self.done {
            let decoded = match self.reader.read_event() {
                Ok(Event::Start(e)) => {
                    self.element = e.name().as_ref().to_vec();
                    continue;
                }
                Ok(Event::Text(t)) => decode_block(&t.into_inner(), self.min),
                Ok(Event::CData(c)) => decode_block(&c.into_inner(), self.min),
                Ok(Event::Eof) | Err(_) => {
                    self.done = true;
                    continue;
                }
                Ok(_) => continue,
            };
            if let Some(decoded) = decoded {
                return Some((String::from_utf8_lossy(&self.element).into_owned(), decoded));
            }
        }
        None
    }
}

/// The base64 strings of a JSON text: string values of at least `min`
/// characters that are base64 once their JSON escapes are resolved (so
/// MIME-wrapped base64 with `\r\n`, or `\/`, or any `\uXXXX`), decoded,
/// with the last member name seen before them (for a value in an array:
/// the array's) — one at a time.
/// A byte-level scan: no tree is built, broken JSON yields what came
/// before the fault.
struct Base64JsonStrings<'a> {
    json: &'a [u8],
    pos: usize,
    min: usize,
    /// The last string literal followed by `:`.
    key: String,
}

impl<'a> Base64JsonStrings<'a> {
    fn new(json: &'a [u8], min: usize) -> Self {
        Self {
            json,
            pos: 0,
            min: min.max(4),
            key: String::new(),
        }
    }

    /// The raw content of the string literal starting after the quote at
    /// `self.pos`, leaving `pos` after its closing quote.
    fn literal(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let mut i = start;
        while let Some(&b) = self.json.get(i) {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return self.json.get(start..i);
                }
                _ => i += 1,
            }
        }
        self.pos = self.json.len();
        None
    }

    fn next_block(&mut self) -> Option<(String, Vec<u8>)> {
        while let Some(&b) = self.json.get(self.pos) {
            self.pos += 1;
            if b != b'"' {
                continue;
            }
            let raw = self.literal()?;
            // A member name: the next non-blank byte is ':'.
            let rest = self.json.get(self.pos..).unwrap_or_default();
            if rest.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b':') {
                self.key = String::from_utf8_lossy(raw).chars().take(100).collect();
                continue;
            }
            if raw.len() < self.min {
                continue;
            }
            // Every JSON escape resolved as a JSON reader would (a `\u002B`
            // must not hide a block): the literal with its quotes.
            let text: std::borrow::Cow<'_, [u8]> = if raw.contains(&b'\\') {
                let quoted = self
                    .pos
                    .checked_sub(raw.len() + 2)
                    .and_then(|start| self.json.get(start..self.pos));
                match quoted.and_then(|q| serde_json::from_slice::<String>(q).ok()) {
                    Some(unescaped) => std::borrow::Cow::Owned(unescaped.into_bytes()),
                    None => continue,
                }
            } else {
                std::borrow::Cow::Borrowed(raw)
            };
            if let Some(decoded) = decode_block(&text, self.min) {
                return Some((self.key.clone(), decoded));
            }
        }
        None
    }
}

/// `text` decoded, if it is a base64 block of at least `min` characters.
fn decode_block(text: &[u8], min: usize) -> Option<Vec<u8>> {
    if text.len() < min {
        return None;
    }
    let mut compact = Vec::with_capacity(text.len());
    for &b in text {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => compact.push(b),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => return None,
        }
    }
    if compact.len() < min {
        return None;
    }
    use base64::Engine;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(&compact).ok()
}

/// Why a release was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("message {0} not found")]
    NotFound(MessageId),
    #[error("message is {0}; only quarantined messages are released")]
    NotQuarantined(MessageState),
    #[error("a release needs a reason")]
    NoReason,
    #[error("the payload was deleted by retention at {0}")]
    PayloadPurged(chrono::DateTime<Utc>),
    #[error("the sender was already told: {0} (release with force to deliver anyway)")]
    SenderAnswered(String),
    #[error(transparent)]
    Store(StoreError),
}

impl Hub {
    /// Whether the scanner answers now, for `/readyz` (`None` without a
    /// scanner): a line for operators when it does not. The hub stays
    /// ready — it accepts and keeps messages — but delivers nothing
    /// unscanned meanwhile.
    pub async fn scanner_attention(&self) -> Option<String> {
        let scanning = self.settings.scanning.as_ref()?;
        let answer = tokio::time::timeout(Duration::from_secs(2), scanning.scanner.ping()).await;
        let problem = match answer {
            Ok(Ok(())) => {
                self.metrics.scanner_up(true);
                return None;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer to a ping within 2 s".to_owned(),
        };
        self.metrics.scanner_up(false);
        Some(format!(
            "scanner {}: {problem}; messages wait, nothing is delivered unscanned",
            scanning.scanner.describe()
        ))
    }

    /// Scan a message's payload and attachments: the first finding, or
    /// `None` when everything is clean.
    pub(crate) async fn scan_input(
        &self,
        scanning: &Scanning,
        envelope: &Envelope,
        payload: &Bytes,
    ) -> Result<Option<ScanFinding>, ScanError> {
        let result = self.scan_input_parts(scanning, envelope, payload).await;
        self.metrics.scanner_up(result.is_ok());
        result
    }

    async fn scan_input_parts(
        &self,
        scanning: &Scanning,
        envelope: &Envelope,
        payload: &Bytes,
    ) -> Result<Option<ScanFinding>, ScanError> {
        if let Some(f) = scanning
            .scan_document("payload", payload, &envelope.content_type)
            .await?
        {
            return Ok(Some(f));
        }
        for a in &envelope.attachments {
            let reader = self
                .blobs
                .open(&a.blob)
                .await
                .map_err(|e| ScanError::Source(format!("attachment {:?}: {e}", a.name)))?;
            if let Verdict::Infected { signature } = scanning.scanner.scan(reader).await? {
                return Ok(Some(
                    scanning.finding(format!("attachment {:?}", a.name), signature),
                ));
            }
        }
        Ok(None)
    }

    /// Scan the output documents of a routing decision — except those
    /// byte for byte equal to the input (pass-through), whose content the
    /// input's clean verdict already covers.
    pub(crate) async fn scan_outputs(
        &self,
        scanning: &Scanning,
        plan: &RoutePlan,
        input: &Bytes,
    ) -> Result<Option<ScanFinding>, ScanError> {
        let result = self.scan_output_parts(scanning, plan, input).await;
        self.metrics.scanner_up(result.is_ok());
        result
    }

    async fn scan_output_parts(
        &self,
        scanning: &Scanning,
        plan: &RoutePlan,
        input: &Bytes,
    ) -> Result<Option<ScanFinding>, ScanError> {
        let tenants_off = self.scan_tenants_off.load();
        for o in &plan.outputs {
            if tenants_off.contains(&o.tenant) || o.bytes == *input {
                continue;
            }
            let part = format!("output {:?} for {}/{}", o.target, o.tenant, o.connector);
            if let Some(f) = scanning
                .scan_document(&part, &o.bytes, &o.content_type)
                .await?
            {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }

    /// Put a `received` message into quarantine with `finding`, completing
    /// `job`.
    ///
    /// `answered`: what the sender was told, when the intake refused the
    /// message while the sender waited (HTTP 422, the XTA virus fault, a
    /// FIT-Connect rejection) — recorded as the message's
    /// [`MessageRecord::sender_answer`], so a release that contradicts it
    /// must be forced.
    pub(crate) async fn quarantine(
        &self,
        id: MessageId,
        job: Option<Job>,
        finding: &ScanFinding,
        answered: Option<&str>,
    ) -> Result<MessageRecord, StoreError> {
        let reason = format!(
            "malware found in the {}: {} ({})",
            finding.part, finding.signature, finding.scanner
        );
        let mut changed = false;
        let stored = self
            .store
            .update(id, &mut |r: &mut MessageRecord| {
                let mut effects = Effects {
                    complete: job.into_iter().collect(),
                    ..Effects::default()
                };
                // What the sender was told is a fact whoever quarantines
                // first: a routing worker can claim the route job between
                // the intake's accept and this update, scan the input
                // itself and quarantine the message without it.
                if let (Some(answer), None) = (answered, &r.sender_answer) {
                    r.sender_answer = Some(answer.to_owned());
                }
                changed = r.state == MessageState::Received;
                if !changed {
                    // Another worker (or the intake) got there first.
                    return Ok(effects);
                }
                let from = r.state;
                r.state = MessageState::Quarantined;
                r.reason = Some(reason.clone());
                r.scan.get_or_insert_with(ScanState::default).finding = Some(finding.clone());
                effects.audit.push(
                    AuditEvent::new(
                        r.envelope.id,
                        ACTOR,
                        "quarantined",
                        Some(from),
                        MessageState::Quarantined,
                    )
                    .with_detail(reason.clone()),
                );
                Ok(effects)
            })
            .await?;
        if changed {
            tracing::warn!(message = %id, part = %finding.part, signature = %finding.signature, "malware found; message quarantined");
            self.metrics.quarantined(&stored.envelope.channel);
        }
        Ok(stored)
    }

    /// A scan gave no verdict: the message stays `received` with the
    /// error as its reason, and `job` runs again after the pause.
    pub(crate) async fn scan_later(
        &self,
        id: MessageId,
        job: Job,
        scanning: &Scanning,
        error: &ScanError,
    ) -> Result<(), StoreError> {
        let reason = format!(
            "waiting for the malware scanner ({}): {error}",
            scanning.scanner.describe()
        );
        let due = Utc::now() + chrono_dur(scanning.retry);
        self.store
            .update(id, &mut |r: &mut MessageRecord| {
                if r.state == MessageState::Received {
                    r.reason = Some(reason.clone());
                }
                Ok(Effects {
                    schedule: vec![(job, due)],
                    ..Effects::default()
                })
            })
            .await?;
        tracing::warn!(message = %id, error = %error, retry_in = ?scanning.retry, "no verdict from the malware scanner; the message waits");
        self.metrics.scan_unavailable();
        Ok(())
    }

    /// An operator releases a quarantined message with `reason`: it goes
    /// back to `received` and is routed and delivered without scanning
    /// (the finding stays on the record, the release is audited).
    ///
    /// As for a replay, a message whose payload retention deleted cannot
    /// go on, and one whose sender was given a final answer (a FIT-Connect
    /// `reject-submission`) needs `force`, recorded in the audit event.
    ///
    /// # Errors
    ///
    /// The message is unknown or not quarantined, the reason is empty, the
    /// payload is gone, the sender was answered (without `force`), or the
    /// store failed.
    pub async fn release(
        &self,
        id: MessageId,
        actor: &str,
        reason: &str,
        force: bool,
    ) -> Result<MessageRecord, ReleaseError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReleaseError::NoReason);
        }
        let now = Utc::now();
        let mut refused = None;
        let result = self
            .store
            .update(id, &mut |r: &mut MessageRecord| {
                if r.state != MessageState::Quarantined {
                    refused = Some(ReleaseError::NotQuarantined(r.state));
                    return Err(StoreError::Aborted(format!("message is {}", r.state)));
                }
                if let Some(at) = r.payload_purged_at {
                    refused = Some(ReleaseError::PayloadPurged(at));
                    return Err(StoreError::Aborted("payload purged".into()));
                }
                if let (Some(answer), false) = (&r.sender_answer, force) {
                    refused = Some(ReleaseError::SenderAnswered(answer.clone()));
                    return Err(StoreError::Aborted("sender answered".into()));
                }
                let signature = r
                    .scan
                    .as_ref()
                    .and_then(|s| s.finding.as_ref())
                    .map(|f| f.signature.clone())
                    .unwrap_or_default();
                r.scan.get_or_insert_with(ScanState::default).released = Some(ScanRelease {
                    by: actor.to_owned(),
                    reason: reason.to_owned(),
                    at: now,
                });
                r.state = MessageState::Received;
                r.reason = None;
                Ok(Effects {
                    audit: vec![AuditEvent::new(
                        r.envelope.id,
                        actor,
                        "released",
                        Some(MessageState::Quarantined),
                        MessageState::Received,
                    )
                    .with_detail(match &r.sender_answer {
                        None => format!("released from quarantine ({signature}): {reason}"),
                        Some(answer) => format!(
                            "released from quarantine ({signature}): {reason}; forced although the sender was told: {answer}"
                        ),
                    })],
                    schedule: vec![(
                        Job::Route {
                            message: r.envelope.id,
                        },
                        now,
                    )],
                    ..Effects::default()
                })
            })
            .await;
        match result {
            Ok(rec) => {
                tracing::warn!(message = %id, actor, reason, "quarantined message released by an operator");
                self.wake();
                Ok(rec)
            }
            Err(StoreError::NotFound(_)) => Err(ReleaseError::NotFound(id)),
            Err(e) => Err(refused.take().unwrap_or(ReleaseError::Store(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unrouted;

    impl crate::RoutingPolicy for Unrouted {
        fn route(
            &self,
            _: &drehscheibe_model::Envelope,
            _: &Bytes,
        ) -> Result<RoutePlan, crate::RouteFailure> {
            Err(crate::RouteFailure::rejected("not routed in this test"))
        }
    }

    /// A routing worker can claim the route job of a message the intake
    /// found infected between the intake's accept and its quarantine, and
    /// quarantine the message first: what the intake told the sender is
    /// still recorded, so a release has to be forced.
    #[tokio::test]
    async fn the_senders_answer_is_kept_when_a_worker_quarantined_first() {
        use drehscheibe_model::Intake as _;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(drehscheibe_store::SledStore::open(&dir.path().join("s")).unwrap());
        let blobs = Arc::new(drehscheibe_store::FsBlobStore::open(&dir.path().join("b")).unwrap());
        let mut settings = crate::HubSettings::default();
        settings.channels.insert("in".to_owned());
        let hub = Hub::new(
            store,
            blobs,
            Arc::new(Unrouted),
            crate::ConnectorRegistry::new(),
            settings,
        );
        let id = hub
            .submit(drehscheibe_model::Submission {
                channel: "in".into(),
                sender: drehscheibe_model::SenderIdentity {
                    adapter: "test".into(),
                    principal: "p".into(),
                    remote_addr: None,
                },
                content_type: "application/xml".into(),
                payload: Bytes::from_static(b"<a/>"),
                attachments: Vec::new(),
                idempotency_key: None,
                correlation_ids: std::collections::BTreeMap::new(),
            })
            .await
            .unwrap()
            .id;
        let finding = ScanFinding {
            part: "payload".into(),
            signature: "Test.EICAR".into(),
            scanner: "clamd test".into(),
            at: Utc::now(),
        };
        // The worker first, then the intake.
        hub.quarantine(id, None, &finding, None).await.unwrap();
        let told = "refused as malware at intake, while the sender waited";
        let record = hub
            .quarantine(id, None, &finding, Some(told))
            .await
            .unwrap();
        assert_eq!(record.state, MessageState::Quarantined);
        assert_eq!(record.sender_answer.as_deref(), Some(told));
        match hub.release(id, "operator:o", "checked", false).await {
            Err(ReleaseError::SenderAnswered(answer)) => assert_eq!(answer, told),
            other => panic!("{other:?}"),
        }
        assert!(hub.release(id, "operator:o", "checked", true).await.is_ok());
    }

    #[test]
    fn base64_blocks_are_found_decoded_and_named_by_element() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let big = vec![7u8; 3000];
        let wrapped: String = b64(&big)
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let xml = format!(
            "<a><name>Erika Mustermann</name><anlage><inhalt>{wrapped}</inhalt></anlage>\
             <short>{}</short><cdata><![CDATA[{}]]></cdata><text>{}</text></a>",
            b64(b"too short"),
            b64(&[1u8; 2000]),
            "Dies ist kein Base64, obwohl es lang ist. ".repeat(100),
        );
        let mut blocks = Base64Blocks::new(xml.as_bytes(), 1024);
        let (element, decoded) = blocks.next_block().unwrap();
        assert_eq!((element.as_str(), decoded), ("inhalt", big));
        let (element, decoded) = blocks.next_block().unwrap();
        assert_eq!((element.as_str(), decoded), ("cdata", vec![1u8; 2000]));
        assert!(blocks.next_block().is_none());
        // Broken XML: what came before the fault, then the end.
        let broken = format!("<a><b>{}</b><c></a>", b64(&[2u8; 2000]));
        let mut blocks = Base64Blocks::new(broken.as_bytes(), 1024);
        assert_eq!(blocks.next_block().unwrap().1, vec![2u8; 2000]);
        assert!(blocks.next_block().is_none());
        assert!(is_xml("application/xml; charset=utf-8") && is_xml("application/vnd.xoev+xml"));
        assert!(!is_xml("application/json"));
    }

    #[test]
    fn base64_strings_in_json_are_found_decoded_and_named_by_member() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let pdf = vec![9u8; 3000];
        // MIME-wrapped with JSON escapes, and '/' escaped as "\/".
        let wrapped = b64(&pdf)
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().replace('/', "\\/"))
            .collect::<Vec<_>>()
            .join("\\r\\n");
        let json = format!(
            r#"{{"name": "Erika \"Mustermann\"", "anlagen": [{{"datei": "plan.pdf", "inhalt": "{wrapped}"}}],
               "kurz": "{}", "text": "{}", "liste": ["{}"]}}"#,
            b64(b"too short"),
            "Dies ist kein Base64, obwohl es lang ist. ".repeat(100),
            b64(&[3u8; 2000]),
        );
        let mut strings = Base64JsonStrings::new(json.as_bytes(), 1024);
        let (key, decoded) = strings.next_block().unwrap();
        assert_eq!((key.as_str(), decoded), ("inhalt", pdf));
        let (key, decoded) = strings.next_block().unwrap();
        assert_eq!(decoded, vec![3u8; 2000], "in an array after {key:?}");
        assert!(strings.next_block().is_none());
        // A \u escape does not hide a block.
        let plus = b64(&[0xfbu8; 1500]); // '+' and '/' in the alphabet
        assert!(plus.contains('+'));
        let escaped = format!("{{\"inhalt\": \"{}\"}}", plus.replace('+', "\\u002B"));
        let (_, decoded) = Base64JsonStrings::new(escaped.as_bytes(), 1024)
            .next_block()
            .unwrap();
        assert_eq!(decoded, vec![0xfbu8; 1500]);
        // Broken JSON (an unterminated string): no block, no panic.
        let broken = format!("{{\"a\": \"{}", b64(&[4u8; 2000]));
        assert!(Base64JsonStrings::new(broken.as_bytes(), 1024)
            .next_block()
            .is_none());
        assert!(is_json("application/json; charset=utf-8") && is_json("application/fhir+json"));
    }
}

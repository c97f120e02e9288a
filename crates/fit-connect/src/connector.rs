//! The FIT-Connect sender connector (`type = "fit-connect"`): delivers a
//! routed document to a Fachverfahren that is reachable as a FIT-Connect
//! destination.
//!
//! One delivery attempt:
//!
//! 1. access token (cached until shortly before it expires);
//! 2. destination id: configured, or looked up in the Routing API by
//!    Leistung (LeiKa key) and area (configured ARS/AGS, else the
//!    message's Kommune key), cached;
//! 3. destination + public encryption key (`encryptionKid`), cached for
//!    `key_cache_ttl`; a destination not `active` is a permanent failure;
//! 4. announce (`POST /v1/submissions`, one fresh UUIDv4 per attachment);
//! 5. every attachment: read from the blob store, SHA-512, encrypt, upload;
//! 6. metadata 1.0.0 (`contentStructure.data` with the SHA-512 of the
//!    document and its `submissionSchema` (schema URI configured or taken
//!    from the destination's service list; mime type from the document),
//!    `attachments[]` with hashes, `publicServiceType` with the LeiKa URN),
//!    encrypted like the document itself; then submit
//!    (`PUT /v1/submissions/{id}`);
//! 7. follow `GET /v1/cases/{caseId}/events` every `poll_interval` for at
//!    most `max_wait`: a verified `accept-submission` (signature checked
//!    with the destination's key named by the SET's `kid`, authentication
//!    tags compared with what was sent) ends the delivery with a receipt
//!    naming case and submission; a verified `reject-submission` is a
//!    permanent failure carrying the receiver's problems. Without a
//!    decision in time the delivery counts as done ("submitted, awaiting
//!    acceptance"), unless `require_accept` is set: then the attempt fails
//!    retryably and the next attempt only looks at the event log again.
//!
//! **Errors.** Network failures, timeouts, `408`, `429` and `5xx` are
//! retryable; other `4xx` answers (problem details are quoted), a missing
//! Leistung, an unsupported document type and a rejected submission are
//! permanent.
//!
//! **Idempotency.** Retries of one delivery generation must not create a
//! second submission, not even after a crash. Before the submit request
//! the connector saves a durable [`Checkpoint`] (submission, case,
//! destination, the authentication tags sent) on the delivery's record; a
//! later attempt — after a timeout or a restart — reads it and first looks
//! at that case's event log (`submit-submission` present → only follow the
//! events), and starts over only when the earlier submit never arrived.
//! An announced submission whose uploads failed is left to the
//! Zustelldienst, which deletes incomplete submissions after a day.
//!
//! **Memory.** JWE compact serialization needs the whole ciphertext, so
//! each attachment is read completely (at most `max_attachment_bytes`) and
//! encrypted in memory, one at a time: peak use is about 2.4 × the largest
//! attachment (plaintext, ciphertext, base64url).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use drehscheibe_model::{Checkpoint, Connector, DeliveryError, DeliveryReceipt, DeliveryRequest};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::client::{
    AnnounceRequest, Area, ClientError, Destination, RoutingClient, ServiceType, SubmissionClient,
    TokenClient, TokenSettings,
};
use crate::jose::{self, RsaPublicJwk};
use crate::set::{self, EVENT_BASE as EVENT_PREFIX};

/// Further looks at the case log before a resumed delivery takes an
/// earlier submit for lost (see `deliver`).
const RESUME_LOOKS: u32 = 3;
/// Pause between those looks.
const RESUME_PAUSE: Duration = Duration::from_millis(700);

/// `$schema` of the metadata the connector writes.
pub const METADATA_SCHEMA: &str =
    "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json";
/// Prefix of LeiKa service identifiers.
pub const LEIKA_URN_PREFIX: &str = "urn:de:fim:leika:leistung:";

/// Where the destination id comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationSource {
    /// A fixed destination id.
    Fixed(String),
    /// Looked up in the Routing API.
    Routing {
        /// Base URL of the Routing API (e.g. `…/v1/`).
        routing_api_url: String,
        /// The area; `None` takes the message's Kommune key (12 digits →
        /// ARS, 8 → AGS).
        area: Option<Area>,
        /// How long answers are cached.
        cache_ttl: Duration,
    },
}

/// Settings of a [`FitConnectConnector`].
#[derive(Clone)]
pub struct FitConnectConnectorSettings {
    /// OAuth client of the sender.
    pub token: TokenSettings,
    /// Root URL of the Zustelldienst (Submission API).
    pub submission_api_url: String,
    /// The destination.
    pub destination: DestinationSource,
    /// Service identifier: a 14-digit LeiKa key or a full URN; `None`
    /// takes the message's Leistung.
    pub leika: Option<String>,
    /// `serviceType.name` / `publicServiceType.name` (default: the
    /// identifier).
    pub service_name: Option<String>,
    /// `submissionSchema.schemaUri` of the data; `None` takes the first
    /// schema the destination lists for the service and mime type.
    pub data_schema_uri: Option<String>,
    /// Time between event-log polls.
    pub poll_interval: Duration,
    /// How long one attempt waits for accept/reject after submitting.
    pub max_wait: Duration,
    /// Keep the delivery retryable until `accept-submission` arrives.
    pub require_accept: bool,
    /// Budget of one whole attempt (the connector's configured timeout);
    /// waiting stops early enough to stay inside it.
    pub attempt_timeout: Duration,
    /// Timeout of one HTTP request.
    pub http_timeout: Duration,
    /// How long destination info and keys are cached.
    pub key_cache_ttl: Duration,
    /// Largest attachment sent (each is encrypted in memory).
    pub max_attachment_bytes: u64,
    /// Extra trusted CA certificate (PEM).
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl fmt::Debug for FitConnectConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitConnectConnectorSettings")
            .field("token", &self.token)
            .field("submission_api_url", &self.submission_api_url)
            .field("destination", &self.destination)
            .field("leika", &self.leika)
            .field("poll_interval", &self.poll_interval)
            .field("max_wait", &self.max_wait)
            .field("require_accept", &self.require_accept)
            .finish_non_exhaustive()
    }
}

/// Why the connector could not be built.
#[derive(Debug, thiserror::Error)]
#[error("fit-connect connector: {0}")]
pub struct ConnectorError(pub String);

impl From<ClientError> for ConnectorError {
    fn from(e: ClientError) -> Self {
        Self(e.to_string())
    }
}

#[derive(Clone)]
struct DestinationInfo {
    fetched: Instant,
    destination: Destination,
    key: RsaPublicJwk,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum SentState {
    /// The submit request was sent; its outcome is not known.
    SubmitSent,
    /// The Zustelldienst confirmed the submit.
    Submitted,
}

/// What a delivery sent, kept as its checkpoint (JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Sent {
    destination_id: String,
    submission_id: String,
    case_id: String,
    state: SentState,
    /// Authentication tags sent (metadata, data, attachments by id).
    tags: Value,
}

/// The sender connector; see the module docs.
pub struct FitConnectConnector {
    settings: FitConnectConnectorSettings,
    client: SubmissionClient,
    routing: Option<RoutingClient>,
    destinations: Mutex<HashMap<String, DestinationInfo>>,
    verify_keys: Mutex<HashMap<(String, String), (Instant, RsaPublicJwk)>>,
    /// The OAuth client (health checks fetch a token).
    tokens: Arc<TokenClient>,
}

impl fmt::Debug for FitConnectConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitConnectConnector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn delivery_error(e: ClientError) -> DeliveryError {
    if e.is_retryable() {
        DeliveryError::retryable(e.to_string())
    } else {
        DeliveryError::permanent(e.to_string())
    }
}

/// `application/xml` or `application/json` for a document's media type.
fn data_mime_type(content_type: &str) -> Option<&'static str> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if base == "application/xml" || base == "text/xml" || base.ends_with("+xml") {
        Some("application/xml")
    } else if base == "application/json" || base.ends_with("+json") {
        Some("application/json")
    } else {
        None
    }
}

impl FitConnectConnector {
    /// Check the settings and build the HTTP clients.
    pub fn new(settings: FitConnectConnectorSettings) -> Result<Self, ConnectorError> {
        if settings.poll_interval.is_zero() {
            return Err(ConnectorError(
                "poll_interval must be greater than 0".into(),
            ));
        }
        if let Some(l) = &settings.leika {
            service_identifier(l).map_err(ConnectorError)?;
        }
        let http =
            crate::client::http_client(settings.http_timeout, settings.ca_cert_pem.as_deref())?;
        let tokens = Arc::new(TokenClient::new(http.clone(), settings.token.clone())?);
        let client =
            SubmissionClient::new(http.clone(), &settings.submission_api_url, tokens.clone())?;
        let routing = match &settings.destination {
            DestinationSource::Fixed(id) => {
                if id.trim().is_empty() {
                    return Err(ConnectorError("destination_id must not be empty".into()));
                }
                None
            }
            DestinationSource::Routing {
                routing_api_url,
                area,
                cache_ttl,
            } => {
                if let Some(a) = area {
                    a.validate()?;
                }
                Some(RoutingClient::new(http, routing_api_url, *cache_ttl)?)
            }
        };
        Ok(Self {
            settings,
            client,
            routing,
            destinations: Mutex::new(HashMap::new()),
            verify_keys: Mutex::new(HashMap::new()),
            tokens,
        })
    }

    async fn destination_id(
        &self,
        request: &DeliveryRequest,
        leika: &str,
    ) -> Result<String, DeliveryError> {
        match (&self.settings.destination, &self.routing) {
            (DestinationSource::Fixed(id), _) => Ok(id.clone()),
            (DestinationSource::Routing { area, .. }, Some(routing)) => {
                let area = match area {
                    Some(a) => a.clone(),
                    None => request
                        .envelope
                        .kommune_key
                        .as_deref()
                        .and_then(Area::from_kommune_key)
                        .ok_or_else(|| {
                            DeliveryError::permanent(
                                "routing needs an area: configure ars/ags or route messages with a Kommune key (AGS/ARS)",
                            )
                        })?,
                };
                let key = leika.strip_prefix(LEIKA_URN_PREFIX).unwrap_or(leika);
                routing
                    .destination_id(key, &area)
                    .await
                    .map_err(delivery_error)
            }
            (DestinationSource::Routing { .. }, None) => {
                Err(DeliveryError::permanent("routing client missing"))
            }
        }
    }

    /// Destination and its encryption key, from the cache while fresh.
    async fn destination_info(&self, id: &str) -> Result<DestinationInfo, DeliveryError> {
        if let Some(info) = self.destinations.lock().await.get(id) {
            if info.fetched.elapsed() < self.settings.key_cache_ttl {
                return Ok(info.clone());
            }
        }
        let destination = self.client.destination(id).await.map_err(delivery_error)?;
        if let Some(status) = &destination.status {
            if status != "active" {
                return Err(DeliveryError::permanent(format!(
                    "destination {id} is {status:?}, not active"
                )));
            }
        }
        let kid = destination.encryption_kid.clone().ok_or_else(|| {
            DeliveryError::permanent(format!("destination {id} names no encryptionKid"))
        })?;
        let jwk = self
            .client
            .destination_key(id, &kid)
            .await
            .map_err(delivery_error)?;
        let key = RsaPublicJwk::from_value(&jwk).map_err(|e| {
            DeliveryError::permanent(format!("encryption key {kid} of destination {id}: {e}"))
        })?;
        if !key.key_ops.is_empty() && !key.key_ops.iter().any(|o| o == "wrapKey") {
            return Err(DeliveryError::permanent(format!(
                "key {kid} of destination {id} is not for wrapKey (key_ops {:?})",
                key.key_ops
            )));
        }
        let info = DestinationInfo {
            fetched: Instant::now(),
            destination,
            key,
        };
        self.destinations
            .lock()
            .await
            .insert(id.to_string(), info.clone());
        Ok(info)
    }

    /// A destination's signature verification key named `kid`, cached.
    async fn verify_key(
        &self,
        destination_id: &str,
        kid: &str,
    ) -> Result<RsaPublicJwk, ClientError> {
        let k = (destination_id.to_string(), kid.to_string());
        if let Some((at, key)) = self.verify_keys.lock().await.get(&k) {
            if at.elapsed() < self.settings.key_cache_ttl {
                return Ok(key.clone());
            }
        }
        let jwk = self.client.destination_key(destination_id, kid).await?;
        let key = RsaPublicJwk::from_value(&jwk)
            .map_err(|e| ClientError::invalid("verification key", e.to_string()))?;
        self.verify_keys
            .lock()
            .await
            .insert(k, (Instant::now(), key.clone()));
        Ok(key)
    }

    async fn read_attachment(
        &self,
        request: &DeliveryRequest,
        index: usize,
    ) -> Result<Vec<u8>, DeliveryError> {
        let a = request
            .envelope
            .attachments
            .get(index)
            .ok_or_else(|| DeliveryError::permanent("attachment index out of range"))?;
        let limit = self.settings.max_attachment_bytes;
        if a.blob.size > limit {
            return Err(DeliveryError::permanent(format!(
                "attachment {} has {} bytes; the fit-connect connector sends at most {limit}",
                a.name, a.blob.size
            )));
        }
        let reader = request
            .blobs
            .open(&a.blob)
            .await
            .map_err(|e| DeliveryError::retryable(format!("attachment {}: {e}", a.name)))?;
        let mut buf = Vec::with_capacity(usize::try_from(a.blob.size).unwrap_or(0));
        reader
            .take(limit + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| DeliveryError::retryable(format!("attachment {}: {e}", a.name)))?;
        if buf.len() as u64 > limit {
            return Err(DeliveryError::permanent(format!(
                "attachment {} is larger than {limit} bytes",
                a.name
            )));
        }
        Ok(buf)
    }

    /// Announce, upload, submit. Returns the record of what was sent.
    async fn send_new(
        &self,
        request: &DeliveryRequest,
        checkpoint: &mut Checkpoint,
    ) -> Result<Sent, DeliveryError> {
        let leika = match &self.settings.leika {
            Some(l) => l.clone(),
            None => request.envelope.leistung.clone().ok_or_else(|| {
                DeliveryError::permanent(
                    "the message has no Leistung (LeiKa key) and the connector configures none",
                )
            })?,
        };
        let identifier = service_identifier(&leika).map_err(DeliveryError::permanent)?;
        let name = self
            .settings
            .service_name
            .clone()
            .unwrap_or_else(|| identifier.clone());
        let mime = data_mime_type(&request.content_type).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "FIT-Connect carries XML or JSON data sets, not {:?}",
                request.content_type
            ))
        })?;
        let destination_id = self.destination_id(request, &identifier).await?;
        let info = self.destination_info(&destination_id).await?;
        let schema_uri = match &self.settings.data_schema_uri {
            Some(u) => u.clone(),
            None => info
                .destination
                .submission_schemas(&identifier)
                .into_iter()
                .find(|(_, m)| m == mime)
                .map(|(u, _)| u)
                .ok_or_else(|| {
                    DeliveryError::permanent(format!(
                        "destination {destination_id} lists no {mime} submission schema for {identifier}; configure data_schema_uri"
                    ))
                })?,
        };

        let attachment_ids: Vec<String> = request
            .envelope
            .attachments
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let announced = self
            .client
            .announce(&AnnounceRequest {
                destination_id: destination_id.clone(),
                announced_attachments: attachment_ids.clone(),
                service_type: ServiceType {
                    name: name.clone(),
                    identifier: identifier.clone(),
                },
            })
            .await
            .map_err(delivery_error)?;

        let mut attachment_meta = Vec::new();
        let mut attachment_tags = serde_json::Map::new();
        for (i, id) in attachment_ids.iter().enumerate() {
            let plain = self.read_attachment(request, i).await?;
            let hash = hex::encode(Sha512::digest(&plain));
            let Some(a) = request.envelope.attachments.get(i) else {
                return Err(DeliveryError::permanent("attachment index out of range"));
            };
            // Off the async threads: AES-GCM over megabytes takes a while.
            let jwk = info.key.clone();
            let jwe =
                tokio::task::spawn_blocking(move || jose::encrypt_compact(&plain, &jwk, false))
                    .await
                    .map_err(|e| DeliveryError::retryable(format!("encrypting attachment: {e}")))?
                    .map_err(|e| DeliveryError::permanent(format!("encrypting attachment: {e}")))?;
            if let Some(tag) = jose::jwe_auth_tag(&jwe) {
                attachment_tags.insert(id.clone(), Value::String(tag.to_string()));
            }
            self.client
                .upload_attachment(&announced.submission_id, id, Bytes::from(jwe))
                .await
                .map_err(delivery_error)?;
            let mut m = json!({
                "attachmentId": id,
                "hash": { "type": "sha512", "content": hash },
                "purpose": "attachment",
                "mimeType": a.content_type,
            });
            if let Some(f) = a.filename.as_ref().or(Some(&a.name)) {
                m["filename"] = Value::String(f.clone());
            }
            attachment_meta.push(m);
        }

        let metadata = json!({
            "$schema": METADATA_SCHEMA,
            "contentStructure": {
                "data": {
                    "hash": { "type": "sha512", "content": hex::encode(Sha512::digest(&request.document)) },
                    "submissionSchema": { "schemaUri": schema_uri, "mimeType": mime },
                },
                "attachments": attachment_meta,
            },
            "publicServiceType": { "identifier": identifier, "name": name },
            "additionalReferenceInfo": { "senderReference": request.envelope.id.to_string() },
        });
        let metadata_bytes = serde_json::to_vec(&metadata)
            .map_err(|e| DeliveryError::permanent(format!("metadata: {e}")))?;
        let enc_meta = jose::encrypt_compact_with(
            &metadata_bytes,
            &info.key,
            false,
            json!({ "cty": "application/json" }),
        )
        .map_err(|e| DeliveryError::permanent(format!("encrypting metadata: {e}")))?;
        let enc_data =
            jose::encrypt_compact_with(&request.document, &info.key, false, json!({ "cty": mime }))
                .map_err(|e| DeliveryError::permanent(format!("encrypting data: {e}")))?;
        let tags = json!({
            "metadata": jose::jwe_auth_tag(&enc_meta),
            "data": jose::jwe_auth_tag(&enc_data),
            "attachments": attachment_tags,
        });

        let mut sent = Sent {
            destination_id,
            submission_id: announced.submission_id.clone(),
            case_id: announced.case_id.clone(),
            state: SentState::SubmitSent,
            tags,
        };
        // Durable before the submit: a crash after it must not lead to a
        // second submission (see the module docs).
        checkpoint.save(encode_sent(&sent)?).await?;
        self.client
            .submit(&announced.submission_id, &enc_meta, Some(&enc_data))
            .await
            .map_err(delivery_error)?;
        sent.state = SentState::Submitted;
        tracing::info!(submission = %sent.submission_id, case = %sent.case_id, destination = %sent.destination_id, "FIT-Connect submission submitted");
        Ok(sent)
    }

    /// Look for a verified accept/reject in the case's event log.
    async fn decision(&self, sent: &Sent) -> Result<Option<Decision>, DeliveryError> {
        let log = self
            .client
            .events(&sent.case_id)
            .await
            .map_err(delivery_error)?;
        for token in log {
            let Ok((header, payload)) = jose::peek_jws(&token) else {
                continue;
            };
            let Some(events) = payload.get("events").and_then(Value::as_object) else {
                continue;
            };
            let Some(uri) = events.keys().next() else {
                continue;
            };
            if uri != set::ACCEPT_SUBMISSION && uri != set::REJECT_SUBMISSION {
                continue;
            }
            if payload.get("sub").and_then(Value::as_str)
                != Some(format!("submission:{}", sent.submission_id).as_str())
            {
                continue;
            }
            // Subscriber events are issued by the destination and signed
            // with one of its verification keys.
            let iss = payload.get("iss").and_then(Value::as_str).unwrap_or("");
            let kid = header.get("kid").and_then(Value::as_str).unwrap_or("");
            if iss != sent.destination_id || kid.is_empty() {
                tracing::warn!(case = %sent.case_id, event = %uri, "ignoring event not issued by the destination");
                continue;
            }
            let key = match self.verify_key(iss, kid).await {
                Ok(k) => k,
                Err(e) => {
                    if e.is_retryable() {
                        return Err(delivery_error(e));
                    }
                    tracing::warn!(error = %e, "ignoring event: verification key unavailable");
                    continue;
                }
            };
            let verified = match set::verify_set(&token, std::slice::from_ref(&key)) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, case = %sent.case_id, "ignoring event that does not verify");
                    continue;
                }
            };
            let body = &verified.payload;
            if verified.event == set::ACCEPT_SUBMISSION {
                if let Some(got) = body.get("authenticationTags") {
                    if !tags_match(got, &sent.tags) {
                        return Ok(Some(Decision::Reject(
                            "accept-submission names authentication tags that differ from what was sent".into(),
                        )));
                    }
                }
                return Ok(Some(Decision::Accept));
            }
            let problems = body
                .get("problems")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
                            let ty = ty.rsplit('/').next().unwrap_or(ty);
                            let detail = p
                                .get("detail")
                                .or_else(|| p.get("title"))
                                .and_then(Value::as_str)
                                .unwrap_or("");
                            format!("{ty}: {detail}")
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Ok(Some(Decision::Reject(problems)));
        }
        Ok(None)
    }

    /// Whether the case's log shows that the submit arrived.
    async fn submit_arrived(&self, sent: &Sent) -> Result<bool, DeliveryError> {
        let log = self
            .client
            .events(&sent.case_id)
            .await
            .map_err(delivery_error)?;
        Ok(log.iter().any(|set| {
            jose::peek_jws(set).is_ok_and(|(_, p)| {
                p.get("events")
                    .and_then(Value::as_object)
                    .is_some_and(|ev| {
                        ev.keys().any(|k| {
                            let n = k.strip_prefix(EVENT_PREFIX).unwrap_or(k);
                            matches!(
                                n,
                                "submit-submission"
                                    | "notify-submission"
                                    | "forward-submission"
                                    | "accept-submission"
                                    | "reject-submission"
                            )
                        })
                    })
            })
        }))
    }

    async fn follow(
        &self,
        sent: &Sent,
        attempt_deadline: Instant,
    ) -> Result<DeliveryReceipt, DeliveryError> {
        let wait_until = (Instant::now() + self.settings.max_wait).min(attempt_deadline);
        let what = format!(
            "case {} submission {} destination {}",
            sent.case_id, sent.submission_id, sent.destination_id
        );
        loop {
            match self.decision(sent).await? {
                Some(Decision::Accept) => {
                    return Ok(DeliveryReceipt {
                        detail: format!("FIT-Connect accept-submission: {what}"),
                    });
                }
                Some(Decision::Reject(problems)) => {
                    return Err(DeliveryError::permanent(format!(
                        "FIT-Connect reject-submission ({what}): {problems}"
                    )));
                }
                None => {}
            }
            if Instant::now() + self.settings.poll_interval > wait_until {
                break;
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
        if self.settings.require_accept {
            Err(DeliveryError::retryable(format!(
                "FIT-Connect submitted, awaiting accept-submission: {what}"
            )))
        } else {
            Ok(DeliveryReceipt {
                detail: format!("FIT-Connect submitted, awaiting acceptance: {what}"),
            })
        }
    }
}

enum Decision {
    Accept,
    Reject(String),
}

fn encode_sent(sent: &Sent) -> Result<String, DeliveryError> {
    serde_json::to_string(sent)
        .map_err(|e| DeliveryError::permanent(format!("encoding the checkpoint: {e}")))
}

/// Compare the tags of an `accept-submission` with those sent.
fn tags_match(got: &Value, sent: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    if field(got, "metadata") != field(sent, "metadata") {
        return false;
    }
    if got.get("data").is_some() && field(got, "data") != field(sent, "data") {
        return false;
    }
    let empty = serde_json::Map::new();
    let ga = got
        .get("attachments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let sa = sent
        .get("attachments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    ga == sa
}

/// A service identifier from a configured or routed Leistung: a 14-digit
/// LeiKa key becomes `urn:de:fim:leika:leistung:<key>`; a URN is kept.
pub fn service_identifier(leika: &str) -> Result<String, String> {
    let l = leika.trim();
    if l.len() == 14 && l.bytes().all(|b| b.is_ascii_digit()) {
        Ok(format!("{LEIKA_URN_PREFIX}{l}"))
    } else if l.starts_with("urn:") && !l.chars().any(char::is_whitespace) {
        Ok(l.to_string())
    } else {
        Err(format!(
            "service identifier {leika:?} is neither a 14-digit LeiKa key nor a URN"
        ))
    }
}

#[async_trait]
impl Connector for FitConnectConnector {
    fn kind(&self) -> &'static str {
        "fit-connect"
    }

    /// An access token from the OAuth endpoint: the service answers and
    /// accepts the client's credentials.
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        match self.tokens.token().await {
            Ok(_) => drehscheibe_model::Health::up("FIT-Connect: access token issued"),
            Err(e) => drehscheibe_model::Health::down(format!("FIT-Connect token endpoint: {e}")),
        }
    }

    async fn deliver(
        &self,
        mut request: DeliveryRequest,
    ) -> Result<DeliveryReceipt, DeliveryError> {
        let budget = self
            .settings
            .attempt_timeout
            .saturating_sub(Duration::from_secs(2));
        let deadline = Instant::now() + budget;
        let mut checkpoint = std::mem::replace(&mut request.checkpoint, Checkpoint::in_memory());
        let earlier = checkpoint
            .value()
            .map(|v| {
                serde_json::from_str::<Sent>(v).map_err(|e| {
                    DeliveryError::permanent(format!(
                        "the delivery's checkpoint cannot be read ({e}); replay the message to start over"
                    ))
                })
            })
            .transpose()?;
        if let Some(sent) = earlier {
            // A submit the Zustelldienst is still working on (it has the
            // request, its case log does not show it yet) must not be
            // taken for a lost one: look again a few times before
            // submitting anew.
            let mut arrived = self.submit_arrived(&sent).await?;
            for _ in 0..RESUME_LOOKS {
                if arrived {
                    break;
                }
                tokio::time::sleep(RESUME_PAUSE).await;
                arrived = self.submit_arrived(&sent).await?;
            }
            if arrived {
                tracing::info!(submission = %sent.submission_id, case = %sent.case_id, "resuming: the earlier submit arrived; following its case");
                return self.follow(&sent, deadline).await;
            }
            tracing::warn!(submission = %sent.submission_id, "earlier submit did not arrive; submitting anew");
        }
        let sent = self.send_new(&request, &mut checkpoint).await?;
        self.follow(&sent, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_mime_types() {
        assert_eq!(
            service_identifier("99050012104000").unwrap(),
            "urn:de:fim:leika:leistung:99050012104000"
        );
        assert_eq!(service_identifier("urn:x:y").unwrap(), "urn:x:y");
        assert!(service_identifier("9905").is_err());
        assert_eq!(
            data_mime_type("application/xml; charset=utf-8"),
            Some("application/xml")
        );
        assert_eq!(data_mime_type("text/xml"), Some("application/xml"));
        assert_eq!(
            data_mime_type("application/vnd.x+json"),
            Some("application/json")
        );
        assert_eq!(data_mime_type("application/pdf"), None);
    }

    #[test]
    fn tags_must_match_exactly() {
        let sent = json!({"metadata": "m", "data": "d", "attachments": {"a": "t"}});
        assert!(tags_match(&sent, &sent));
        assert!(!tags_match(
            &json!({"metadata": "x", "data": "d", "attachments": {"a": "t"}}),
            &sent
        ));
        assert!(!tags_match(
            &json!({"metadata": "m", "data": "d", "attachments": {}}),
            &sent
        ));
    }
}

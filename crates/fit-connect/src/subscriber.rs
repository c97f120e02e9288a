//! The subscriber adapter: fetches submissions for the hub's own
//! destinations from a remote Zustelldienst (the federal FIT-Connect
//! service) and hands them to the hub like any other intake.
//!
//! Loop (every `poll_interval`, or at once when a verified callback
//! arrives):
//!
//! 1. `GET /v1/submissions?destinationId=…` for every configured
//!    destination;
//! 2. for every submission not yet handed in: `GET /v1/submissions/{id}`,
//!    decrypt metadata and data with the destination's keys (by `kid`,
//!    thumbprint, then every key), validate the metadata against its
//!    `$schema` (shipped 1.x schemas), check the SHA-512 hashes, download every attachment to a temporary file and
//!    decrypt it **streamed** into another (memory stays bounded), stage
//!    it in the blob store, then [`Intake::submit`] with the idempotency
//!    key `fitconnect:<submissionId>` (a submission fetched twice is routed
//!    once: the second submit is a duplicate with the same message id);
//! 3. follow every handed-in message with [`Intake::status`]: once
//!    `delivered`, post an `accept-submission` SET (with the JWE
//!    authentication tags) to `POST /v1/cases/{caseId}/events`; once
//!    `rejected` or `dead`, a `reject-submission` SET with a fixed detail
//!    per outcome and the hub message id as a reference (the hub's reason
//!    describes the hub and stays with it; see [`set::NotDelivered`]). A
//!    submission that cannot be decrypted or verified is rejected at once.
//!
//! Durability: "already handed in" is the hub's idempotency key (a
//! re-fetch after a crash yields the same message). The SETs still to
//! post (and the recently finished submissions, so a remote that still
//! lists them does not cause another fetch) live in the hub store (state
//! space `fit-connect/subscriber/<channel>`), one key per submission, so
//! they survive restarts and every change writes one entry.
//!
//! Refused SETs: a Zustelldienst that answers a SET with `404`, `409` or
//! `410` has decided the submission already (or forgotten it): the SET is
//! done. Any other `4xx` (`422` for a SET it does not accept, say) is a
//! refusal that posting the same SET again will not change, so the
//! subscriber backs off instead of posting it on every poll: it waits
//! [`SetRetryPolicy::first_delay`] after the first refusal and twice as
//! long after each further one (up to [`SetRetryPolicy::max_delay`]),
//! keeping the count and the time of the next try in the pending entry so
//! a restart continues the schedule. After
//! [`SetRetryPolicy::max_attempts`] refusals, or
//! [`SetRetryPolicy::give_up_after`] after the first, it gives up: an
//! `error` is logged, the entry moves to the given-up list with the last
//! error ([`FitConnectSubscriber::given_up_sets`]) where an operator finds
//! it, and [`SubscriberCounters::sets_given_up`] counts it. A `5xx` or a
//! network failure is the Zustelldienst's trouble, not the SET's: the SET
//! is posted again at the next poll, without limit.
//!
//! Callbacks: [`FitConnectSubscriber::callback_router`] serves
//! `POST /api/v1/fit-connect/callbacks/{channel}`; a callback is accepted
//! only with a valid `callback-authentication` header (hex HMAC-SHA-512
//! over `"<callback-timestamp>.<body>"` with the configured secret,
//! compared in constant time) and a `callback-timestamp` at most five
//! minutes off; everything else is answered `401` and ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use drehscheibe_model::{
    AdapterError, InputAdapter, Intake, IntakeError, MessageId, MessageState, SenderIdentity,
    StagedAttachment, Submission,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, SubmissionClient, SubmissionItem, TokenClient, TokenSettings};
use crate::jose::{self, RsaPrivateKey};
use crate::schema::{MetadataValidator, SchemaError};
use crate::set;

/// Header carrying the hex HMAC-SHA-512 of a callback.
pub const CALLBACK_AUTH_HEADER: &str = "callback-authentication";
/// Header carrying the callback's UNIX timestamp (seconds).
pub const CALLBACK_TIMESTAMP_HEADER: &str = "callback-timestamp";
/// Oldest (and furthest in the future) callback timestamp accepted.
pub const CALLBACK_MAX_AGE: Duration = Duration::from_secs(300);

/// Adapter kind in [`SenderIdentity::adapter`].
pub const ADAPTER_KIND: &str = "fit-connect-subscriber";

/// Page size for `GET /v1/submissions`.
const LIST_PAGE: u64 = 100;
/// How long a finished submission id is remembered (so a Zustelldienst
/// that still lists it does not cause another fetch).
const DONE_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// Most pending SETs handled in one round.
const MAX_PENDING: usize = 1000;
/// Largest decrypted metadata document.
const METADATA_LIMIT: u64 = 4 << 20;

// ---------------------------------------------------------------------------
// Callback verification
// ---------------------------------------------------------------------------

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// A required header is missing or not text.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not a UNIX time in seconds.
    #[error("callback-timestamp is not a UNIX time")]
    BadTimestamp,
    /// The timestamp is more than five minutes old (or ahead).
    #[error("callback-timestamp is {0} s away from now (limit 300 s)")]
    Stale(i64),
    /// The HMAC does not match.
    #[error("callback-authentication does not match")]
    BadSignature,
}

/// The `callback-authentication` value for `body` sent at `timestamp`:
/// hex HMAC-SHA-512 over `"<timestamp>.<body>"`.
pub fn callback_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha512>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verify a callback: timestamp within [`CALLBACK_MAX_AGE`] of `now_unix`
/// and the HMAC equal to [`callback_signature`] (constant-time).
pub fn verify_callback(
    secret: &[u8],
    timestamp: &str,
    signature_hex: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), CallbackError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| CallbackError::BadTimestamp)?;
    let skew = now_unix.saturating_sub(ts);
    let max = CALLBACK_MAX_AGE.as_secs() as i64;
    if skew > max || skew < -max {
        return Err(CallbackError::Stale(skew));
    }
    let given = hex::decode(signature_hex.trim()).map_err(|_| CallbackError::BadSignature)?;
    let mut mac =
        Hmac::<Sha512>::new_from_slice(secret).map_err(|_| CallbackError::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| CallbackError::BadSignature)
}

/// Verify the headers of an HTTP callback request.
pub fn verify_callback_headers(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), CallbackError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(CallbackError::MissingHeader(name))
    };
    let ts = get(CALLBACK_TIMESTAMP_HEADER)?;
    let sig = get(CALLBACK_AUTH_HEADER)?;
    verify_callback(secret, ts, sig, body, now_unix)
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// One of the hub's destinations at the remote Zustelldienst.
#[derive(Clone)]
pub struct SubscriberDestination {
    /// The destination id (UUID).
    pub destination_id: String,
    /// Private decryption keys (several during a key rotation).
    pub decryption_keys: Vec<RsaPrivateKey>,
    /// Key that signs the SETs (its `kid` must be registered at the
    /// destination as a verification key).
    pub signing_key: RsaPrivateKey,
}

impl fmt::Debug for SubscriberDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberDestination")
            .field("destination_id", &self.destination_id)
            .field("decryption_keys", &self.decryption_keys.len())
            .field("signing_kid", &self.signing_key.kid())
            .finish()
    }
}

/// Settings of a [`FitConnectSubscriber`].
#[derive(Clone)]
pub struct SubscriberSettings {
    /// Hub channel the submissions are submitted to.
    pub channel: String,
    /// OAuth client of the subscriber.
    pub token: TokenSettings,
    /// Root URL of the Zustelldienst (Submission API).
    pub submission_api_url: String,
    /// The destinations to fetch for.
    pub destinations: Vec<SubscriberDestination>,
    /// Time between polls (a verified callback polls at once).
    pub poll_interval: Duration,
    /// Shared secret of the callbacks; `None` disables the callback route.
    pub callback_secret: Option<String>,
    /// Directory for temporary files (attachments being decrypted).
    pub state_dir: PathBuf,
    /// Timeout of one HTTP request.
    pub http_timeout: Duration,
    /// Extra trusted CA certificate (PEM).
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SubscriberSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberSettings")
            .field("channel", &self.channel)
            .field("token", &self.token)
            .field("submission_api_url", &self.submission_api_url)
            .field("destinations", &self.destinations)
            .field("poll_interval", &self.poll_interval)
            .field(
                "callback_secret",
                &self.callback_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// Why the subscriber could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// A setting cannot be used.
    #[error("fit-connect subscriber: {0}")]
    Config(String),
    /// The adapter's state in the hub store cannot be read or written.
    #[error("fit-connect subscriber state: {0}")]
    State(String),
}

impl From<ClientError> for SubscriberError {
    fn from(e: ClientError) -> Self {
        Self::Config(e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Durable state
// ---------------------------------------------------------------------------

/// JWE authentication tags of one submission (for `accept-submission`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthenticationTags {
    /// Tag of the metadata JWE.
    pub metadata: String,
    /// Tag of the data JWE (absent without data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Tags of the attachment JWEs by attachment id.
    #[serde(default)]
    pub attachments: BTreeMap<String, String>,
}

/// A problem reported in a `reject-submission` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProblem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where (`metadata`, `data`, `attachment:<id>`, `submission`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl EventProblem {
    fn new(name: &str, title: &str, detail: impl Into<String>, instance: &str) -> Self {
        Self {
            kind: format!("{}{name}", set::EVENT_PROBLEM_BASE),
            title: title.to_string(),
            detail: Some(detail.into()),
            instance: Some(instance.to_string()),
        }
    }
}

/// A submission whose SET is still to be posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSet {
    /// The submission.
    pub submission_id: String,
    /// Its case.
    pub case_id: String,
    /// The destination (issuer of the SET).
    pub destination_id: String,
    /// The hub message, once handed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Tags for `accept-submission`.
    #[serde(default)]
    pub tags: AuthenticationTags,
    /// Set when the submission is to be rejected with these problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<Vec<EventProblem>>,
    /// When it was handed in.
    pub since: DateTime<Utc>,
    /// Posts of the SET the Zustelldienst refused (a `4xx` other than
    /// `404`, `409`, `410`); see [`SetRetryPolicy`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refusals: u32,
    /// When the first post was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_refused: Option<DateTime<Utc>>,
    /// Not to be posted before this time (backing off after a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// The last refusal, as the Zustelldienst answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A SET the Zustelldienst refused until the subscriber gave up (see the
/// module docs); kept for an operator, who finds the submission, the SET
/// that was to be posted and the last error here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenUpSet {
    /// The pending entry at the last refusal (`refusals`, `last_error`).
    pub set: PendingSet,
    /// The event URI of the refused SET.
    pub event: String,
    /// When the subscriber gave up.
    pub given_up_at: DateTime<Utc>,
}

/// How the subscriber retries a SET the Zustelldienst refuses (see the
/// module docs). The default waits 5 minutes after the first refusal,
/// doubles the wait up to 4 hours and gives up after 10 refusals (about 17
/// hours) or 24 hours, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetRetryPolicy {
    /// Wait after the first refusal; doubled after each further one.
    pub first_delay: Duration,
    /// Longest wait between two tries.
    pub max_delay: Duration,
    /// Refusals after which the SET is given up (at least 1).
    pub max_attempts: u32,
    /// Time since the first refusal after which a further refusal gives
    /// the SET up.
    pub give_up_after: Duration,
}

impl Default for SetRetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5 * 60),
            max_delay: Duration::from_secs(4 * 60 * 60),
            max_attempts: 10,
            give_up_after: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl SetRetryPolicy {
    /// The wait after the `refusals`-th refusal:
    /// `first_delay * 2^(refusals - 1)`, at most `max_delay`.
    pub fn delay(&self, refusals: u32) -> Duration {
        let doublings = refusals.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// Whether the SET is given up after `refusals` refusals, the first
    /// `since_first` ago.
    pub fn gives_up(&self, refusals: u32, since_first: Duration) -> bool {
        refusals >= self.max_attempts.max(1) || since_first >= self.give_up_after
    }
}

/// Counters of a running subscriber (since its start), readable while it
/// runs: [`FitConnectSubscriber::counters`] hands out a handle before
/// [`InputAdapter::run`] takes the subscriber.
#[derive(Debug, Clone, Default)]
pub struct SubscriberCounters {
    cells: Arc<CounterCells>,
}

#[derive(Debug, Default)]
struct CounterCells {
    sets_refused: AtomicU64,
    sets_given_up: AtomicU64,
}

impl SubscriberCounters {
    /// Posts of SETs the Zustelldienst refused (each try counts).
    pub fn sets_refused(&self) -> u64 {
        self.cells.sets_refused.load(Ordering::Relaxed)
    }

    /// SETs given up after repeated refusals.
    pub fn sets_given_up(&self) -> u64 {
        self.cells.sets_given_up.load(Ordering::Relaxed)
    }
}

/// `/metrics`: `set_refused` and `set_given_up` events; `/readyz`: a line
/// while any SET was given up since the start.
impl drehscheibe_model::health::ChannelStatus for SubscriberCounters {
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("set_refused", self.sets_refused()),
            ("set_given_up", self.sets_given_up()),
        ]
    }

    fn attention(&self) -> Vec<String> {
        match self.sets_given_up() {
            0 => Vec::new(),
            n => vec![format!(
                "{n} security event token(s) given up after repeated refusals by the Zustelldienst since the start; the submissions stay unanswered there (list: the subscriber's given-up SETs)"
            )],
        }
    }
}

/// The adapter's durable state: state space
/// `fit-connect/subscriber/<channel>` of the hub store.
///
/// | key | value |
/// |---|---|
/// | `p` + submission id | JSON [`PendingSet`]: SET still to post |
/// | `g` + submission id | JSON [`GivenUpSet`]: SET refused until given up (kept for operators; the submission is not fetched again) |
/// | `d` + submission id | finished (SET posted) at, ms (8 bytes BE) |
/// | `t` + ms (8 bytes BE) + submission id | empty: finished ones, oldest first |
struct StateStore {
    space: drehscheibe_store::StateSpace,
}

fn state_error(e: drehscheibe_store::StoreError) -> SubscriberError {
    SubscriberError::State(e.to_string())
}

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

impl StateStore {
    fn open(
        store: Arc<dyn drehscheibe_store::Store>,
        channel: &str,
    ) -> Result<Self, SubscriberError> {
        Ok(Self {
            space: drehscheibe_store::StateSpace::new(
                store,
                &format!("fit-connect/subscriber/{channel}"),
            )
            .map_err(state_error)?,
        })
    }

    /// Pending, given up or finished (and so not to be fetched again).
    async fn is_known(&self, submission_id: &str) -> Result<bool, SubscriberError> {
        for tag in [b'p', b'g', b'd'] {
            if self
                .space
                .get(&key(tag, &[submission_id.as_bytes()]))
                .await
                .map_err(state_error)?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// SETs still to post (at most [`MAX_PENDING`]; the rest wait for a
    /// later round).
    async fn pending(&self) -> Result<Vec<PendingSet>, SubscriberError> {
        self.entries(b"p").await
    }

    /// The JSON values under key prefix `tag` (at most [`MAX_PENDING`]).
    async fn entries<T: serde::de::DeserializeOwned>(
        &self,
        tag: &[u8],
    ) -> Result<Vec<T>, SubscriberError> {
        let page = self
            .space
            .scan(tag, None, MAX_PENDING)
            .await
            .map_err(state_error)?;
        page.iter()
            .map(|(_, v)| {
                serde_json::from_slice(v).map_err(|e| SubscriberError::State(e.to_string()))
            })
            .collect()
    }

    async fn add_pending(&self, p: PendingSet) -> Result<(), SubscriberError> {
        let value = serde_json::to_vec(&p).map_err(|e| SubscriberError::State(e.to_string()))?;
        let mut tx = self.space.begin();
        tx.put(&key(b'p', &[p.submission_id.as_bytes()]), value);
        tx.commit().await.map_err(state_error)?;
        Ok(())
    }

    /// Move a pending SET to the given-up list.
    async fn give_up(&self, g: &GivenUpSet) -> Result<(), SubscriberError> {
        let value = serde_json::to_vec(g).map_err(|e| SubscriberError::State(e.to_string()))?;
        let mut tx = self.space.begin();
        tx.delete(&key(b'p', &[g.set.submission_id.as_bytes()]));
        tx.put(&key(b'g', &[g.set.submission_id.as_bytes()]), value);
        tx.commit().await.map_err(state_error)?;
        Ok(())
    }

    /// Given-up SETs (at most [`MAX_PENDING`], by submission id).
    async fn given_up(&self) -> Result<Vec<GivenUpSet>, SubscriberError> {
        self.entries(b"g").await
    }

    /// Mark a submission finished, and forget finished ones older than
    /// [`DONE_RETENTION`] (a few per call, oldest first).
    async fn finish(&self, submission_id: &str) -> Result<(), SubscriberError> {
        let now = Utc::now();
        let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let cutoff = u64::try_from((now - DONE_RETENTION).timestamp_millis()).unwrap_or(0);
        let expired = self.space.scan(b"t", None, 16).await.map_err(state_error)?;
        let mut tx = self.space.begin();
        for (k, _) in expired {
            let (Some(at), Some(sid)) = (k.get(1..9), k.get(9..)) else {
                continue;
            };
            let at = u64::from_be_bytes(at.try_into().unwrap_or([0; 8]));
            if at >= cutoff || sid == submission_id.as_bytes() {
                break;
            }
            tx.delete(&k);
            tx.delete(&key(b'd', &[sid]));
        }
        tx.delete(&key(b'p', &[submission_id.as_bytes()]));
        tx.put(
            &key(b'd', &[submission_id.as_bytes()]),
            ms.to_be_bytes().to_vec(),
        );
        tx.put(
            &key(b't', &[&ms.to_be_bytes(), submission_id.as_bytes()]),
            Vec::new(),
        );
        tx.commit().await.map_err(state_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

/// The subscriber input adapter; see the module docs.
pub struct FitConnectSubscriber {
    settings: SubscriberSettings,
    client: SubmissionClient,
    validator: Arc<MetadataValidator>,
    wake: Arc<Notify>,
    state: StateStore,
    retry: SetRetryPolicy,
    counters: SubscriberCounters,
}

impl fmt::Debug for FitConnectSubscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitConnectSubscriber")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct CallbackState {
    secret: Arc<Vec<u8>>,
    wake: Arc<Notify>,
}

/// Path of the callback route of a channel.
pub fn callback_path(channel: &str) -> String {
    format!("/api/v1/fit-connect/callbacks/{channel}")
}

async fn callback_handler(
    State(st): State<CallbackState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = Utc::now().timestamp();
    match verify_callback_headers(&st.secret, &headers, &body, now) {
        Ok(()) => {
            tracing::debug!("verified FIT-Connect callback; polling now");
            st.wake.notify_one();
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            tracing::warn!(error = %e, "FIT-Connect callback refused");
            StatusCode::UNAUTHORIZED
        }
    }
}

/// What went wrong with one submission.
enum Outcome {
    /// Bad submission: reject it with these problems.
    Reject(Vec<EventProblem>),
    /// Try again at the next poll (remote or hub unavailable).
    Later(String),
}

impl From<ClientError> for Outcome {
    fn from(e: ClientError) -> Self {
        Outcome::Later(e.to_string())
    }
}

impl FitConnectSubscriber {
    /// Check the settings and build the HTTP clients; the adapter's state
    /// lives in `store` (state space `fit-connect/subscriber/<channel>`).
    pub fn new(
        settings: SubscriberSettings,
        store: Arc<dyn drehscheibe_store::Store>,
    ) -> Result<Self, SubscriberError> {
        if settings.destinations.is_empty() {
            return Err(SubscriberError::Config(
                "at least one destination is needed".into(),
            ));
        }
        for d in &settings.destinations {
            if d.decryption_keys.is_empty() {
                return Err(SubscriberError::Config(format!(
                    "destination {} has no decryption key",
                    d.destination_id
                )));
            }
        }
        if settings.poll_interval.is_zero() {
            return Err(SubscriberError::Config(
                "poll_interval must be greater than 0".into(),
            ));
        }
        if settings.callback_secret.as_deref() == Some("") {
            return Err(SubscriberError::Config(
                "callback secret must not be empty".into(),
            ));
        }
        let http =
            crate::client::http_client(settings.http_timeout, settings.ca_cert_pem.as_deref())?;
        let tokens = Arc::new(TokenClient::new(http.clone(), settings.token.clone())?);
        let client = SubmissionClient::new(http, &settings.submission_api_url, tokens)?;
        let validator =
            MetadataValidator::new().map_err(|e| SubscriberError::Config(e.to_string()))?;
        let state = StateStore::open(store, &settings.channel)?;
        Ok(Self {
            settings,
            client,
            validator: Arc::new(validator),
            wake: Arc::new(Notify::new()),
            state,
            retry: SetRetryPolicy::default(),
            counters: SubscriberCounters::default(),
        })
    }

    /// Retry refused SETs by `policy` instead of [`SetRetryPolicy::default`].
    pub fn with_set_retry(mut self, policy: SetRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A handle on the counters, readable while the subscriber runs.
    pub fn counters(&self) -> SubscriberCounters {
        self.counters.clone()
    }

    /// SETs given up since this subscriber started
    /// ([`SubscriberCounters::sets_given_up`]).
    pub fn given_up(&self) -> u64 {
        self.counters.sets_given_up()
    }

    /// The SETs given up after repeated refusals, from the hub store (all
    /// runs, at most 1000): the submission, the refused event and the last
    /// error. Such a submission is not fetched again; an operator settles
    /// it with the sender or the Zustelldienst.
    pub async fn given_up_sets(&self) -> Result<Vec<GivenUpSet>, SubscriberError> {
        self.state.given_up().await
    }

    /// The callback route (`POST /api/v1/fit-connect/callbacks/{channel}`),
    /// to be merged into the hub's HTTP router; `None` without a callback
    /// secret.
    pub fn callback_router(&self) -> Option<Router> {
        let secret = self.settings.callback_secret.as_ref()?;
        let state = CallbackState {
            secret: Arc::new(secret.as_bytes().to_vec()),
            wake: self.wake.clone(),
        };
        Some(
            Router::new()
                .route(
                    &callback_path(&self.settings.channel),
                    post(callback_handler),
                )
                .with_state(state),
        )
    }

    fn destination(&self, id: &str) -> Option<&SubscriberDestination> {
        self.settings
            .destinations
            .iter()
            .find(|d| d.destination_id == id)
    }

    /// One round: fetch new submissions, then post due SETs.
    async fn poll_once(&self, intake: &Arc<dyn Intake>) {
        let state = &self.state;
        for d in &self.settings.destinations {
            let items = match self.list(&d.destination_id).await {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(destination = %d.destination_id, error = %e, "listing FIT-Connect submissions failed");
                    continue;
                }
            };
            for item in items {
                if item.destination_id != d.destination_id {
                    continue;
                }
                match state.is_known(&item.submission_id).await {
                    Ok(false) => {}
                    Ok(true) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the subscriber state; skipping this round");
                        return;
                    }
                }
                self.take(intake, state, d, &item).await;
            }
        }
        self.post_due_sets(intake).await;
    }

    async fn list(&self, destination_id: &str) -> Result<Vec<SubmissionItem>, ClientError> {
        let mut all = Vec::new();
        loop {
            let page = self
                .client
                .list_submissions(Some(destination_id), all.len() as u64, LIST_PAGE)
                .await?;
            let got = page.submissions.len() as u64;
            all.extend(page.submissions);
            let total = page.total_count.unwrap_or(0);
            if got < LIST_PAGE || all.len() as u64 >= total || all.len() >= 100 * LIST_PAGE as usize
            {
                return Ok(all);
            }
        }
    }

    /// Fetch, verify and hand in one submission; remember what to post.
    async fn take(
        &self,
        intake: &Arc<dyn Intake>,
        state: &StateStore,
        dest: &SubscriberDestination,
        item: &SubmissionItem,
    ) {
        let sid = &item.submission_id;
        match self.hand_in(intake, dest, item).await {
            Ok((message, tags, duplicate)) => {
                tracing::info!(submission = %sid, message = %message, duplicate, "FIT-Connect submission handed in");
                let p = PendingSet {
                    submission_id: sid.clone(),
                    case_id: item.case_id.clone(),
                    destination_id: dest.destination_id.clone(),
                    message_id: Some(message.to_string()),
                    tags,
                    reject: None,
                    since: Utc::now(),
                    refusals: 0,
                    first_refused: None,
                    retry_at: None,
                    last_error: None,
                };
                if let Err(e) = state.add_pending(p).await {
                    tracing::error!(error = %e, "cannot record handed-in submission (will be fetched again)");
                }
            }
            Err(Outcome::Reject(problems)) => {
                tracing::warn!(submission = %sid, problems = ?problems, "rejecting FIT-Connect submission");
                let p = PendingSet {
                    submission_id: sid.clone(),
                    case_id: item.case_id.clone(),
                    destination_id: dest.destination_id.clone(),
                    message_id: None,
                    tags: AuthenticationTags::default(),
                    reject: Some(problems),
                    since: Utc::now(),
                    refusals: 0,
                    first_refused: None,
                    retry_at: None,
                    last_error: None,
                };
                if let Err(e) = state.add_pending(p).await {
                    tracing::error!(error = %e, "cannot record rejection");
                }
            }
            Err(Outcome::Later(why)) => {
                tracing::warn!(submission = %sid, reason = %why, "FIT-Connect submission not taken; retrying later");
            }
        }
    }

    async fn hand_in(
        &self,
        intake: &Arc<dyn Intake>,
        dest: &SubscriberDestination,
        item: &SubmissionItem,
    ) -> Result<(MessageId, AuthenticationTags, bool), Outcome> {
        let sub = self.client.submission(&item.submission_id).await?;
        let keys: Vec<&RsaPrivateKey> = dest.decryption_keys.iter().collect();
        let reject1 = |name: &str, title: &str, detail: String, instance: &str| {
            Outcome::Reject(vec![EventProblem::new(name, title, detail, instance)])
        };

        // Metadata.
        let Some(enc_meta) = sub.encrypted_metadata.as_deref() else {
            return Err(reject1(
                "missing-metadata",
                "Metadata missing",
                "the submission has no encryptedMetadata".into(),
                "metadata",
            ));
        };
        let meta = jose::decrypt_compact_limited(enc_meta.as_bytes(), &keys, METADATA_LIMIT)
            .map_err(|e| {
                reject1(
                    "encryption-issue",
                    "Metadata cannot be decrypted",
                    e.to_string(),
                    "metadata",
                )
            })?;
        let metadata: Value = serde_json::from_slice(&meta.plaintext).map_err(|e| {
            reject1(
                "syntax-violation",
                "Metadata is not JSON",
                e.to_string(),
                "metadata",
            )
        })?;
        match self.validator.validate(&metadata) {
            Ok(_) => {}
            Err(e @ SchemaError::UnsupportedSchema(_)) => {
                return Err(reject1(
                    "unsupported-schema",
                    "Metadata schema not supported",
                    e.to_string(),
                    "metadata",
                ))
            }
            Err(e) => {
                return Err(reject1(
                    "schema-violation",
                    "Metadata does not match the schema",
                    e.to_string(),
                    "metadata",
                ))
            }
        }
        let facts = MetadataFacts::read(&metadata).map_err(|d| {
            reject1(
                "schema-violation",
                "Metadata does not match the schema",
                d,
                "metadata",
            )
        })?;
        let mut tags = AuthenticationTags {
            metadata: meta.auth_tag,
            ..AuthenticationTags::default()
        };

        // Data.
        let enc_data = sub.encrypted_data.as_deref().filter(|s| !s.is_empty());
        let (payload, content_type) = match (enc_data, &facts.data) {
            (Some(jwe), Some(d)) => {
                // Off the async threads: AES-GCM over megabytes takes a while.
                let (jwe, owned_keys, limit) = (
                    jwe.to_string(),
                    dest.decryption_keys.clone(),
                    intake.max_payload_bytes(),
                );
                let dec = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&RsaPrivateKey> = owned_keys.iter().collect();
                    jose::decrypt_compact_limited(jwe.as_bytes(), &refs, limit)
                })
                .await
                .map_err(|e| Outcome::Later(e.to_string()))?
                .map_err(|e| {
                    reject1(
                        "encryption-issue",
                        "Data cannot be decrypted",
                        e.to_string(),
                        "data",
                    )
                })?;
                let hash = hex::encode(Sha512::digest(&dec.plaintext));
                if !hash.eq_ignore_ascii_case(&d.hash) {
                    return Err(reject1(
                        "hash-mismatch",
                        "Data hash mismatch",
                        "SHA-512 of the data differs from the metadata".into(),
                        "data",
                    ));
                }
                tags.data = Some(dec.auth_tag);
                (dec.plaintext, d.mime_type.clone())
            }
            (None, None) => {
                return Err(reject1(
                    "missing-data",
                    "No data set",
                    "the hub routes submissions by their data set; this one has none".into(),
                    "data",
                ))
            }
            (Some(_), None) => {
                return Err(reject1(
                    "schema-violation",
                    "Data not described",
                    "encryptedData is present but contentStructure.data is missing".into(),
                    "metadata",
                ))
            }
            (None, Some(_)) => {
                return Err(reject1(
                    "missing-data",
                    "Data missing",
                    "contentStructure.data is present but encryptedData is not".into(),
                    "data",
                ))
            }
        };

        // Attachments: the metadata's list must equal the uploaded list.
        let listed: BTreeSet<&str> = facts.attachments.iter().map(|a| a.id.as_str()).collect();
        let uploaded: BTreeSet<&str> = sub.attachments.iter().map(String::as_str).collect();
        if listed != uploaded {
            return Err(reject1(
                "attachments-mismatch",
                "Attachments differ from the metadata",
                format!("metadata lists {listed:?}, the submission has {uploaded:?}"),
                "submission",
            ));
        }
        let mut staged = Vec::new();
        for a in &facts.attachments {
            let (att, tag) = self
                .fetch_attachment(intake, &keys, &sub.submission_id, a)
                .await?;
            tags.attachments.insert(a.id.clone(), tag);
            staged.push(att);
        }

        let mut correlation_ids = BTreeMap::new();
        correlation_ids.insert("fitconnect.submission_id".into(), sub.submission_id.clone());
        correlation_ids.insert("fitconnect.case_id".into(), sub.case_id.clone());
        correlation_ids.insert(
            "fitconnect.destination_id".into(),
            dest.destination_id.clone(),
        );
        let leika = facts
            .service_identifier
            .clone()
            .or_else(|| sub.service_type.as_ref().map(|s| s.identifier.clone()));
        if let Some(l) = leika {
            correlation_ids.insert("fitconnect.leika".into(), l);
        }
        let submission = Submission {
            channel: self.settings.channel.clone(),
            sender: SenderIdentity {
                adapter: ADAPTER_KIND.into(),
                principal: dest.destination_id.clone(),
                remote_addr: None,
            },
            content_type,
            payload: payload.into(),
            attachments: staged,
            idempotency_key: Some(format!("fitconnect:{}", sub.submission_id)),
            correlation_ids,
        };
        match intake.submit(submission).await {
            Ok(a) => Ok((a.id, tags, a.duplicate)),
            Err(e @ (IntakeError::ShuttingDown | IntakeError::Unavailable(_))) => {
                Err(Outcome::Later(e.to_string()))
            }
            Err(e @ IntakeError::UnknownChannel(_)) => Err(Outcome::Later(e.to_string())),
            Err(e) => Err(reject1(
                "technical-error",
                "Refused by the receiving hub",
                e.to_string(),
                "data",
            )),
        }
    }

    /// Download one attachment to a temporary file, decrypt it streamed
    /// into another, check its hash and stage it.
    async fn fetch_attachment(
        &self,
        intake: &Arc<dyn Intake>,
        keys: &[&RsaPrivateKey],
        submission_id: &str,
        a: &AttachmentFacts,
    ) -> Result<(StagedAttachment, String), Outcome> {
        let instance = format!("attachment:{}", a.id);
        let limit = intake.max_attachment_bytes();
        // Base64url grows by 4/3, plus header and key.
        let jwe_limit = limit.saturating_mul(4) / 3 + 64 * 1024;
        let jwe = self
            .client
            .attachment(submission_id, &a.id, jwe_limit)
            .await?;
        let tmp_dir = self.settings.state_dir.join("tmp");
        let keys: Vec<RsaPrivateKey> = keys.iter().map(|k| (*k).clone()).collect();
        let decrypted = tokio::task::spawn_blocking(move || -> Result<_, String> {
            std::fs::create_dir_all(&tmp_dir).map_err(|e| e.to_string())?;
            let out = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| e.to_string())?;
            let key_refs: Vec<&RsaPrivateKey> = keys.iter().collect();
            let file = out.reopen().map_err(|e| e.to_string())?;
            let writer = std::io::BufWriter::new(file);
            let r =
                jose::decrypt_compact_stream_in(jwe.as_slice(), &key_refs, writer, limit, &tmp_dir)
                    .map_err(|e| format!("jose:{e}"))?;
            Ok((out, r))
        })
        .await
        .map_err(|e| Outcome::Later(e.to_string()))?;
        let (file, info) = decrypted.map_err(|e| match e.strip_prefix("jose:") {
            Some(j) => Outcome::Reject(vec![EventProblem::new(
                "encryption-issue",
                "Attachment cannot be decrypted",
                j.to_string(),
                &instance,
            )]),
            None => Outcome::Later(e),
        })?;
        if !info.sha512_hex.eq_ignore_ascii_case(&a.hash) {
            return Err(Outcome::Reject(vec![EventProblem::new(
                "hash-mismatch",
                "Attachment hash mismatch",
                "SHA-512 of the attachment differs from the metadata".to_string(),
                &instance,
            )]));
        }
        let reader = tokio::fs::File::open(file.path())
            .await
            .map_err(|e| Outcome::Later(e.to_string()))?;
        let blob = intake
            .stage_attachment(Box::pin(reader))
            .await
            .map_err(|e| match e {
                IntakeError::TooLarge { .. } => Outcome::Reject(vec![EventProblem::new(
                    "technical-error",
                    "Attachment too large",
                    e.to_string(),
                    &instance,
                )]),
                other => Outcome::Later(other.to_string()),
            })?;
        drop(file);
        Ok((
            StagedAttachment {
                name: a.id.clone(),
                filename: a.filename.clone(),
                content_type: a.mime_type.clone(),
                blob,
            },
            info.auth_tag,
        ))
    }

    /// Post the SETs whose decision is known.
    async fn post_due_sets(&self, intake: &Arc<dyn Intake>) {
        let state = &self.state;
        let pending = match state.pending().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the subscriber state");
                return;
            }
        };
        let now = Utc::now();
        for p in pending {
            if p.retry_at.is_some_and(|at| at > now) {
                // backing off after a refusal
                continue;
            }
            let Some(dest) = self.destination(&p.destination_id) else {
                continue;
            };
            let event = match (&p.reject, &p.message_id) {
                (Some(problems), _) => {
                    Some((set::REJECT_SUBMISSION, json!({ "problems": problems })))
                }
                (None, Some(mid)) => {
                    let Ok(id) = mid.parse::<MessageId>() else {
                        continue;
                    };
                    match intake.status(id).await {
                        Ok(Some(st)) => match st.state {
                            MessageState::Delivered => Some((
                                set::ACCEPT_SUBMISSION,
                                json!({ "authenticationTags": p.tags }),
                            )),
                            MessageState::Rejected
                            | MessageState::Dead
                            | MessageState::Quarantined => {
                                // The sender learns the outcome and a
                                // reference; the hub's reason stays in its
                                // message record and this log line.
                                let reason = st.reason.unwrap_or_else(|| st.state.to_string());
                                let outcome = match st.state {
                                    MessageState::Rejected => set::NotDelivered::Rejected,
                                    MessageState::Quarantined => set::NotDelivered::Quarantined,
                                    _ => set::NotDelivered::Dead,
                                };
                                tracing::warn!(submission = %p.submission_id, message = %id, state = %st.state, reason = %reason, "FIT-Connect submission not delivered; rejecting it without the reason");
                                let problem = EventProblem::new(
                                    "technical-error",
                                    "Not processed by the receiving hub",
                                    outcome.sender_detail(&id.to_string()),
                                    "submission",
                                );
                                Some((set::REJECT_SUBMISSION, json!({ "problems": [problem] })))
                            }
                            _ => None,
                        },
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read message status");
                            None
                        }
                    }
                }
                (None, None) => None,
            };
            let Some((name, payload)) = event else {
                continue;
            };
            let token = match make_set(dest, &p.submission_id, &p.case_id, name, payload) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sign SET");
                    continue;
                }
            };
            match self.client.post_event(&p.case_id, &token).await {
                Ok(()) => {
                    tracing::info!(submission = %p.submission_id, event = name, "FIT-Connect event posted");
                    if let Err(e) = state.finish(&p.submission_id).await {
                        tracing::error!(error = %e, "cannot record posted event");
                    }
                    // A posted rejection is the sender's final answer: a
                    // replay at the hub must not contradict it unforced.
                    if let (true, Some(id)) = (
                        name == set::REJECT_SUBMISSION,
                        p.message_id
                            .as_deref()
                            .and_then(|m| m.parse::<MessageId>().ok()),
                    ) {
                        let answer = format!(
                            "FIT-Connect reject-submission (case {}, submission {})",
                            p.case_id, p.submission_id
                        );
                        let actor = format!("{ADAPTER_KIND}:{}", self.settings.channel);
                        if let Err(e) = intake.note_sender_answer(id, &actor, &answer).await {
                            tracing::warn!(submission = %p.submission_id, error = %e, "could not record the rejection on the hub message");
                        }
                    }
                }
                Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => {
                    // Already decided (posted before a crash, or rejected by
                    // the service after its 14-day limit) or gone.
                    tracing::warn!(submission = %p.submission_id, error = %e, "FIT-Connect event not accepted; submission already decided or gone");
                    let _ = state.finish(&p.submission_id).await;
                }
                Err(e) if matches!(e.status(), Some(400..=499)) => {
                    // Refused: the same SET again will not fare better.
                    self.refused(p, name, &e).await;
                }
                Err(e) => {
                    tracing::warn!(submission = %p.submission_id, error = %e, "posting FIT-Connect event failed; will retry");
                }
            }
        }
    }
}

impl FitConnectSubscriber {
    /// Record a refusal of `p`'s SET: back off, or give up after the
    /// policy's bound (see the module docs).
    async fn refused(&self, mut p: PendingSet, event: &str, error: &ClientError) {
        let now = Utc::now();
        self.counters
            .cells
            .sets_refused
            .fetch_add(1, Ordering::Relaxed);
        p.refusals = p.refusals.saturating_add(1);
        let first = *p.first_refused.get_or_insert(now);
        p.last_error = Some(error.to_string());
        let since_first = (now - first).to_std().unwrap_or_default();
        if self.retry.gives_up(p.refusals, since_first) {
            tracing::error!(
                submission = %p.submission_id,
                case = %p.case_id,
                event,
                refusals = p.refusals,
                error = %error,
                "the Zustelldienst keeps refusing a FIT-Connect SET; given up (kept in the subscriber state as given up, the submission stays undecided at the Zustelldienst)"
            );
            p.retry_at = None;
            let given_up = GivenUpSet {
                set: p,
                event: event.to_string(),
                given_up_at: now,
            };
            match self.state.give_up(&given_up).await {
                Ok(()) => {
                    self.counters
                        .cells
                        .sets_given_up
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(error = %e, "cannot record a given-up SET"),
            }
        } else {
            let delay = self.retry.delay(p.refusals);
            p.retry_at = Some(
                chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            );
            tracing::warn!(
                submission = %p.submission_id,
                event,
                refusals = p.refusals,
                retry_in = ?delay,
                error = %error,
                "the Zustelldienst refused a FIT-Connect SET; backing off"
            );
            if let Err(e) = self.state.add_pending(p).await {
                tracing::error!(error = %e, "cannot record a refused SET");
            }
        }
    }
}

/// Build a SET (RFC 8417, `typ: secevent+jwt`, PS512) for a subscriber
/// event on a submission, issued by the destination and signed with its
/// signing key. `event` is the full event URI (e.g.
/// [`set::ACCEPT_SUBMISSION`]).
pub fn make_set(
    dest: &SubscriberDestination,
    submission_id: &str,
    case_id: &str,
    event: &str,
    event_payload: Value,
) -> Result<String, set::SetError> {
    let uuid = |what: &str, s: &str| {
        uuid::Uuid::parse_str(s)
            .map_err(|_| set::SetError::Invalid(format!("{what} {s:?} is not a UUID")))
    };
    set::create_set(
        &dest.destination_id,
        uuid("submission id", submission_id)?,
        uuid("case id", case_id)?,
        event,
        event_payload,
        &dest.signing_key,
    )
}

#[async_trait]
impl InputAdapter for FitConnectSubscriber {
    fn name(&self) -> &str {
        &self.settings.channel
    }

    async fn run(
        self: Box<Self>,
        intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        tracing::info!(channel = %self.settings.channel, destinations = self.settings.destinations.len(), "FIT-Connect subscriber started");
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // A poll cycle runs to its end even when shutdown is asked for
            // meanwhile (its requests have timeouts), so a SET posted is
            // also recorded as posted.
            self.poll_once(&intake).await;
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------

struct DataFacts {
    hash: String,
    mime_type: String,
}

struct AttachmentFacts {
    id: String,
    hash: String,
    mime_type: String,
    filename: Option<String>,
}

/// What the adapter needs from the metadata (checked against the shapes
/// of metadata 1.x: `contentStructure` with `data.hash` (sha512),
/// `data.submissionSchema.mimeType` and `attachments[]`).
struct MetadataFacts {
    data: Option<DataFacts>,
    attachments: Vec<AttachmentFacts>,
    service_identifier: Option<String>,
}

fn sha512_hash(v: &Value, at: &str) -> Result<String, String> {
    let ty = v.pointer("/type").and_then(Value::as_str);
    if ty != Some("sha512") {
        return Err(format!("{at}.hash.type must be \"sha512\""));
    }
    let content = v
        .pointer("/content")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.hash.content is missing"))?;
    if content.len() != 128 || !content.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{at}.hash.content is not a hex SHA-512"));
    }
    Ok(content.to_string())
}

impl MetadataFacts {
    fn read(m: &Value) -> Result<Self, String> {
        let cs = m
            .get("contentStructure")
            .filter(|v| v.is_object())
            .ok_or("contentStructure is missing")?;
        let data = match cs.get("data") {
            None | Some(Value::Null) => None,
            Some(d) => {
                let hash = sha512_hash(
                    d.get("hash")
                        .ok_or("contentStructure.data.hash is missing")?,
                    "contentStructure.data",
                )?;
                let mime = d
                    .pointer("/submissionSchema/mimeType")
                    .and_then(Value::as_str)
                    .ok_or("contentStructure.data.submissionSchema.mimeType is missing")?;
                if mime != "application/json" && mime != "application/xml" {
                    return Err(format!(
                        "contentStructure.data.submissionSchema.mimeType {mime:?} is not application/json or application/xml"
                    ));
                }
                Some(DataFacts {
                    hash,
                    mime_type: mime.to_string(),
                })
            }
        };
        let list = cs
            .get("attachments")
            .and_then(Value::as_array)
            .ok_or("contentStructure.attachments is missing")?;
        let mut attachments = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let at = format!("contentStructure.attachments[{i}]");
            let id = a
                .get("attachmentId")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.attachmentId is missing"))?;
            let hash = sha512_hash(a.get("hash").ok_or(format!("{at}.hash is missing"))?, &at)?;
            let mime = a
                .get("mimeType")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.mimeType is missing"))?;
            if attachments.iter().any(|x: &AttachmentFacts| x.id == id) {
                return Err(format!("{at}.attachmentId {id:?} is listed twice"));
            }
            attachments.push(AttachmentFacts {
                id: id.to_string(),
                hash,
                mime_type: mime.to_string(),
                filename: a.get("filename").and_then(Value::as_str).map(String::from),
            });
        }
        let service_identifier = m
            .pointer("/publicServiceType/identifier")
            .and_then(Value::as_str)
            .map(String::from);
        Ok(Self {
            data,
            attachments,
            service_identifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_hmac_round_trip_and_refusals() {
        let secret = b"callback-secret";
        let body = br#"{"type":"https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions"}"#;
        let now = 1_700_000_000;
        let ts = now.to_string();
        let sig = callback_signature(secret, &ts, body);
        assert_eq!(sig.len(), 128);
        assert_eq!(verify_callback(secret, &ts, &sig, body, now), Ok(()));
        assert_eq!(verify_callback(secret, &ts, &sig, body, now + 299), Ok(()));
        assert_eq!(
            verify_callback(secret, &ts, &sig, body, now + 301),
            Err(CallbackError::Stale(301))
        );
        assert_eq!(
            verify_callback(secret, &ts, &sig, body, now - 301),
            Err(CallbackError::Stale(-301))
        );
        assert_eq!(
            verify_callback(b"other", &ts, &sig, body, now),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            verify_callback(secret, &ts, &sig, b"{}", now),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            verify_callback(secret, "yesterday", &sig, body, now),
            Err(CallbackError::BadTimestamp)
        );
        assert_eq!(
            verify_callback(secret, &ts, "zz", body, now),
            Err(CallbackError::BadSignature)
        );
        // Upper-case hex is the same MAC.
        assert_eq!(
            verify_callback(secret, &ts, &sig.to_uppercase(), body, now),
            Ok(())
        );
    }

    #[test]
    fn set_retry_policy_doubles_up_to_its_bounds() {
        let p = SetRetryPolicy::default();
        let mins = |n: u32| p.delay(n).as_secs() / 60;
        assert_eq!(
            (1..=10).map(mins).collect::<Vec<_>>(),
            vec![5, 10, 20, 40, 80, 160, 240, 240, 240, 240]
        );
        assert_eq!(p.delay(u32::MAX), p.max_delay);
        assert!(!p.gives_up(9, Duration::from_secs(3600)));
        assert!(p.gives_up(10, Duration::ZERO));
        assert!(p.gives_up(2, Duration::from_secs(24 * 3600)));
        let never_zero = SetRetryPolicy {
            max_attempts: 0,
            ..p
        };
        assert!(never_zero.gives_up(1, Duration::ZERO));
        // an old pending entry without the new fields still reads
        let old = r#"{"submission_id":"s","case_id":"c","destination_id":"d","since":"2026-01-01T00:00:00Z"}"#;
        let entry: PendingSet = serde_json::from_str(old).unwrap();
        assert_eq!((entry.refusals, entry.retry_at), (0, None));
    }

    #[test]
    fn metadata_facts_are_checked() {
        let h = "a".repeat(128);
        let ok = json!({
            "contentStructure": {
                "data": {"hash": {"type": "sha512", "content": h},
                         "submissionSchema": {"schemaUri": "urn:x", "mimeType": "application/xml"}},
                "attachments": [{"attachmentId": "a1", "hash": {"type": "sha512", "content": h},
                                 "purpose": "attachment", "mimeType": "application/pdf", "filename": "x.pdf"}]
            },
            "publicServiceType": {"identifier": "urn:de:fim:leika:leistung:99050012104000"}
        });
        let f = MetadataFacts::read(&ok).unwrap();
        assert_eq!(f.attachments.len(), 1);
        assert_eq!(f.data.unwrap().mime_type, "application/xml");
        let mut bad = ok.clone();
        bad["contentStructure"]["data"]["hash"]["type"] = json!("md5");
        assert!(MetadataFacts::read(&bad).is_err());
        let mut bad = ok.clone();
        bad["contentStructure"]["data"]["submissionSchema"]["mimeType"] = json!("text/plain");
        assert!(MetadataFacts::read(&bad).is_err());
        assert!(MetadataFacts::read(&json!({})).is_err());
    }
}

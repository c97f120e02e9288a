//! The hub as a FIT-Connect-compatible Zustelldienst (Submission API v1).
//!
//! Online services point an unmodified FIT-Connect sender at the hub:
//!
//! | method | path (below `base_path`) | auth |
//! |---|---|---|
//! | POST | `/token` (form `grant_type=client_credentials&client_id&client_secret`) | client credentials |
//! | GET | `/.well-known/jwks.json` (SET verification keys) | none |
//! | GET | `/v1/destinations/{id}` | bearer, client allowed for the destination |
//! | GET | `/v1/destinations/{id}/keys/{kid}` | none (public keys) |
//! | POST | `/v1/submissions` → 201 `{destinationId, submissionId, caseId}` | bearer |
//! | PUT | `/v1/submissions/{id}/attachments/{aid}` (`application/jose`) → 204 | bearer |
//! | PUT | `/v1/submissions/{id}` (`encryptedMetadata`, `encryptedData`) → 200 | bearer |
//! | GET | `/v1/submissions/{id}` (status) | bearer |
//! | GET | `/v1/cases/{caseId}/events?offset&limit` → `{eventLog}` | bearer |
//!
//! On submit the hub decrypts metadata, data and attachments with the
//! destination's keys, validates the metadata against its `$schema`,
//! checks the SHA-512 hashes, and hands the Fachdaten (payload) and the
//! attachments to [`Intake::submit`] with the FIT-Connect ids as
//! correlation ids (`fitconnect.submission_id`, `fitconnect.case_id`,
//! `fitconnect.destination_id`, `fitconnect.leika`, `fitconnect.tenant`)
//! and the submission id as idempotency key. A failed check answers a
//! problem (4xx) *and* rejects the submission for good: its case gets a
//! `reject-submission` event. A transient failure (hub unavailable) answers
//! 503 and leaves the submission announced, so the sender can retry.
//!
//! The status follower ([`FitConnectIntake::run_status_follower`]) watches
//! every submitted case via [`Intake::status`] and writes
//! `accept-submission` (with the JWE authentication tags) once the message
//! is delivered, `reject-submission` once it is rejected or dead. The
//! sender learns the outcome and the hub message id, not the hub's reason
//! (see [`crate::set::NotDelivered`]).
//!
//! Submissions announced but not submitted within [`INCOMPLETE_TTL`] (24 h)
//! are rejected (`submission-expired`) and their uploads released.
//!
//! Nothing lives in one instance of the hub only, so a sender's requests
//! may each reach another instance behind a load balancer: access tokens
//! are self-contained (`token`: signed JWTs, valid on every instance and
//! across restarts), uploads are in the hub's blob store, and
//! submissions, cases and events are durable in the hub store (see
//! [`state`]).

mod follower;
mod http;
pub mod problem;
pub mod state;
mod submit;
mod token;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use drehscheibe_model::Intake;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::jose::RsaPrivateKey;
use crate::schema::MetadataValidator;
pub use follower::{FollowError, INCOMPLETE_TTL};
pub use problem::FitProblem;
pub use state::{State, StateError, SubmissionRecord, SubmissionState};

/// Largest attachment FIT-Connect allows (500 MB, encrypted).
pub const MAX_ATTACHMENT_BYTES: u64 = 500 * 1000 * 1000;
/// Most attachments per submission FIT-Connect allows.
pub const MAX_ATTACHMENTS: usize = 100;
/// Largest encrypted metadata accepted.
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;

/// Configuration of one FIT-Connect intake channel.
#[derive(Debug, Clone)]
pub struct FitConnectIntakeSettings {
    /// Hub channel the submissions arrive on.
    pub channel: String,
    /// Path prefix (e.g. `/fit-connect`); `None` or empty mounts at `/`.
    pub base_path: Option<String>,
    /// OAuth clients (senders).
    pub clients: Vec<IntakeClient>,
    /// Destinations (Zustellpunkte) the hub receives for.
    pub destinations: Vec<IntakeDestination>,
    /// Key that signs the SETs (published at `/.well-known/jwks.json`).
    pub signing_key: RsaPrivateKey,
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// External base URL of the Submission API (the `iss` of the hub's
    /// own SETs), e.g. `https://hub.example/fit-connect`.
    pub public_base_url: String,
    /// Largest encrypted attachment (≤ [`MAX_ATTACHMENT_BYTES`]).
    pub max_attachment_bytes: u64,
    /// Scratch directory of this instance (`<data_dir>/fit-connect/<channel>`):
    /// attachments while a submit decrypts them.
    pub state_dir: PathBuf,
    /// How often the status follower looks at open cases.
    pub poll_interval: Duration,
}

/// An OAuth client allowed to send.
#[derive(Clone)]
pub struct IntakeClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// Destinations it may send to.
    pub destinations: Vec<Uuid>,
}

impl std::fmt::Debug for IntakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("destinations", &self.destinations)
            .finish()
    }
}

/// A destination (Zustellpunkt) the hub receives for.
#[derive(Debug, Clone)]
pub struct IntakeDestination {
    /// Destination id.
    pub id: Uuid,
    /// Tenant hint (correlation id `fitconnect.tenant`).
    pub tenant: Option<String>,
    /// Offered services (empty: any).
    pub services: Vec<IntakeService>,
    /// Private decryption keys: the first is the published encryption
    /// key; the others still decrypt (rotation).
    pub keys: Vec<RsaPrivateKey>,
    /// Metadata schema versions announced (default: every shipped one).
    pub metadata_versions: Vec<String>,
}

/// A service (Leistung) offered by a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeService {
    /// LeiKa URN (`urn:de:fim:leika:leistung:…`).
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Accepted Fachdaten schemas as (schema URI, media type), published
    /// as the service's `submissionSchemas` (senders such as the hub's own
    /// `fit-connect` connector take the schema URI from there).
    pub submission_schemas: Vec<(String, String)>,
}

/// Setup errors.
#[derive(Debug, thiserror::Error)]
pub enum IntakeSetupError {
    /// The settings are inconsistent.
    #[error("fit-connect intake {channel}: {reason}")]
    Invalid {
        /// Channel.
        channel: String,
        /// What is wrong.
        reason: String,
    },
    /// The state store cannot be opened.
    #[error("fit-connect intake: {0}")]
    State(#[from] StateError),
    /// The shipped metadata schemas do not compile.
    #[error("fit-connect intake: {0}")]
    Schema(#[from] crate::schema::SchemaError),
}

pub(crate) struct Shared {
    pub(crate) settings: FitConnectIntakeSettings,
    pub(crate) intake: Arc<dyn Intake>,
    pub(crate) state: State,
    pub(crate) validator: MetadataValidator,
    tokens: token::TokenKey,
    busy: Mutex<HashSet<Uuid>>,
}

/// A FIT-Connect intake channel: the router and the status follower.
#[derive(Clone)]
pub struct FitConnectIntake {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for FitConnectIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitConnectIntake")
            .field("channel", &self.shared.settings.channel)
            .finish()
    }
}

impl FitConnectIntake {
    /// Check the settings; the intake's state lives in `store` (state
    /// space `fit-connect/intake/<channel>`), uploads in the blob store of
    /// `intake`, an attachment being decrypted under `settings.state_dir`.
    pub fn open(
        settings: FitConnectIntakeSettings,
        intake: Arc<dyn Intake>,
        store: Arc<dyn drehscheibe_store::Store>,
    ) -> Result<Self, IntakeSetupError> {
        let invalid = |reason: String| IntakeSetupError::Invalid {
            channel: settings.channel.clone(),
            reason,
        };
        if settings.max_attachment_bytes > MAX_ATTACHMENT_BYTES {
            return Err(invalid(format!(
                "max_attachment_bytes must not exceed {MAX_ATTACHMENT_BYTES}"
            )));
        }
        if !intake.channel_exists(&settings.channel) {
            return Err(invalid("the hub does not know this channel".into()));
        }
        for d in &settings.destinations {
            if d.keys.is_empty() {
                return Err(invalid(format!("destination {} has no key", d.id)));
            }
        }
        for c in &settings.clients {
            for d in &c.destinations {
                if !settings.destinations.iter().any(|x| x.id == *d) {
                    return Err(invalid(format!(
                        "client {} names unknown destination {d}",
                        c.client_id
                    )));
                }
            }
        }
        let state = State::open(store, &settings.channel, &settings.state_dir)?;
        let tokens = token::TokenKey::derive(&settings.channel, &settings.signing_key);
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                intake,
                state,
                validator: MetadataValidator::new()?,
                tokens,
                busy: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The axum router of the Submission API (mount it on the hub server).
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// The durable state (read access for tests and tools).
    pub fn state(&self) -> &State {
        &self.shared.state
    }

    /// The verification keys of the hub's SETs (as served at
    /// `/.well-known/jwks.json`).
    pub fn jwks(&self) -> crate::api::JwkSet {
        crate::api::JwkSet {
            keys: vec![self.shared.settings.signing_key.verification_jwk()],
        }
    }
}

impl Shared {
    pub(crate) fn destination(&self, id: Uuid) -> Option<&IntakeDestination> {
        self.settings.destinations.iter().find(|d| d.id == id)
    }

    fn client(&self, client_id: &str) -> Option<&IntakeClient> {
        self.settings
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    /// Check client credentials (constant-time secret comparison) and issue
    /// a token.
    pub(crate) fn issue_token(&self, client_id: &str, secret: &str) -> Option<(String, String)> {
        let client = self.client(client_id)?;
        let ok: bool = client
            .client_secret
            .as_bytes()
            .ct_eq(secret.as_bytes())
            .into();
        if !ok {
            return None;
        }
        let ttl = i64::try_from(self.settings.token_ttl.as_secs()).unwrap_or(i64::MAX);
        let token = self.tokens.issue(
            &client.client_id,
            chrono::Utc::now().timestamp().saturating_add(ttl),
        );
        let scope = client
            .destinations
            .iter()
            .map(|d| format!("send:destination:{d}"))
            .collect::<Vec<_>>()
            .join(" ");
        Some((token, scope))
    }

    /// The client behind the request's bearer token.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<String, FitProblem> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FitProblem::unauthorized("bearer token required"))?;
        let token = drehscheibe_model::auth::bearer_token(value)
            .ok_or_else(|| FitProblem::unauthorized("bearer token required"))?;
        match self.tokens.check(token, chrono::Utc::now().timestamp()) {
            // A client removed from the configuration since loses access.
            Ok(client) if self.client(&client).is_some() => Ok(client),
            Ok(_) => Err(FitProblem::unauthorized("unknown access token")),
            Err(token::Refused::Expired) => Err(FitProblem::unauthorized("access token expired")),
            Err(token::Refused::Unknown) => Err(FitProblem::unauthorized("unknown access token")),
        }
    }

    /// The client may send to `destination` (which exists).
    pub(crate) fn authorize(
        &self,
        client_id: &str,
        destination: Uuid,
    ) -> Result<&IntakeDestination, FitProblem> {
        let dest = self.destination(destination).ok_or_else(|| {
            FitProblem::new(
                404,
                "destination-not-found",
                format!("destination {destination} does not exist"),
            )
        })?;
        let allowed = self
            .client(client_id)
            .is_some_and(|c| c.destinations.contains(&destination));
        if allowed {
            Ok(dest)
        } else {
            Err(FitProblem::forbidden(format!(
                "client {client_id} may not send to destination {destination}"
            )))
        }
    }

    /// Mark a submission busy for the guard's lifetime; `409` when it
    /// already is.
    pub(crate) fn busy(self: &Arc<Self>, id: Uuid) -> Result<BusyGuard, FitProblem> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id) {
            return Err(FitProblem::new(
                409,
                "submission-state-invalid",
                format!("submission {id} is being processed by another request"),
            ));
        }
        Ok(BusyGuard {
            shared: self.clone(),
            id,
        })
    }

    /// Largest accepted upload: the channel's limit, and no more than the
    /// hub's attachment limit allows after decryption (base64url adds a
    /// third, plus the JWE header and key).
    pub(crate) fn max_encrypted_attachment(&self) -> u64 {
        let hub = self
            .intake
            .max_attachment_bytes()
            .saturating_div(3)
            .saturating_mul(4)
            .saturating_add(16 * 1024);
        self.settings.max_attachment_bytes.min(hub)
    }

    /// `iss` of the hub's own (Zustelldienst) SETs.
    pub(crate) fn issuer(&self) -> &str {
        &self.settings.public_base_url
    }
}

/// Releases a busy submission.
pub(crate) struct BusyGuard {
    shared: Arc<Shared>,
    id: Uuid,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut busy = self.shared.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.id);
    }
}

//! The HTTP inbox: `POST /api/v1/inbox/{channel}`.
//!
//! Online services hand applications to the hub here. The request is
//! authenticated with a bearer token, its body is streamed with hard size
//! limits, attachments are streamed straight into the blob store, and the
//! message is handed to the [`Intake`]. The answer is `202 Accepted` with
//! the message id, or an RFC 7807 [`Problem`].
//!
//! # Request bodies
//!
//! * `application/xml`, `text/xml`, `*/*+xml`, `application/json`,
//!   `*/*+json`: the body is the primary payload.
//! * `multipart/form-data` or `multipart/mixed`: the **first** part is the
//!   primary payload (its `Content-Type` must be one of the above); every
//!   further part is an attachment, streamed into
//!   [`Intake::stage_attachment`] and never held whole in memory.
//! * anything else: `415 Unsupported Media Type`.
//!
//! # Limits
//!
//! * primary payload: [`Intake::max_payload_bytes`]; a larger
//!   `Content-Length` is refused before the body is read, and a streamed
//!   body is cut off as soon as it passes the limit (`413`);
//! * each attachment: [`Intake::max_attachment_bytes`] (`413`);
//! * all attachments of one request together:
//!   [`ATTACHMENT_TOTAL_FACTOR`] × [`Intake::max_attachment_bytes`] (`413`);
//! * at most [`MAX_ATTACHMENTS`] attachments (`413`);
//! * a multipart body as a whole: payload limit + attachment total +
//!   [`MULTIPART_OVERHEAD_BYTES`] for boundaries and part headers (`413`).
//!
//! # Staged attachments of refused requests
//!
//! Attachments are staged before the hub has seen the payload. A request
//! that does not end in `202` (any refusal, a read error, a client that
//! goes away mid-body and so drops the handler) hands everything it staged
//! to [`Intake::discard_staged`], which removes the blobs nothing else
//! uses. A crash in between leaves them to the start-up sweep (see
//! `drehscheibe_store::FsBlobStore::sweep_staged`).
//!
//! # Headers
//!
//! * `Authorization: Bearer <token>`: required; see [`TokenTable`];
//! * `Idempotency-Key`: 1 to 200 visible ASCII characters; a retry with the
//!   same key from the same sender (token principal) on the same channel is
//!   answered with the first message's id and `"duplicate": true`; other
//!   senders' keys are never matched;
//! * `X-Correlation-Id`, `X-Request-Id`: same syntax; stored in the
//!   envelope's correlation ids under their lower-case header names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use drehscheibe_model::auth::{bearer_token, Principal, TokenTable};
use drehscheibe_model::{
    BlobRef, Intake, IntakeError, SenderIdentity, StagedAttachment, Submission,
};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_util::io::StreamReader;

use crate::problem::{method_not_allowed, Problem};

/// Route of the inbox (axum 0.8 path syntax).
pub const INBOX_PATH: &str = "/api/v1/inbox/{channel}";

/// Adapter kind recorded in [`SenderIdentity::adapter`].
pub const ADAPTER_KIND: &str = "http";

/// Most attachments one request may carry.
pub const MAX_ATTACHMENTS: usize = 256;

/// All attachments of one request together may be this many times
/// [`Intake::max_attachment_bytes`].
pub const ATTACHMENT_TOTAL_FACTOR: u64 = 4;

/// Allowance for multipart framing (boundaries, part headers, preamble) on
/// top of the payload and attachment limits.
pub const MULTIPART_OVERHEAD_BYTES: u64 = 1 << 20;

/// Longest accepted `Idempotency-Key`, `X-Correlation-Id` or `X-Request-Id`.
pub const MAX_KEY_LEN: usize = 200;

/// Headers copied into [`Submission::correlation_ids`] (lower-case names).
pub const CORRELATION_HEADERS: [&str; 2] = ["x-correlation-id", "x-request-id"];

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// After refusing a body as too large, the inbox reads and discards at
/// most this many further bytes of it before answering. A client that is
/// still sending when the answer comes would otherwise see its connection
/// closed under it and report a broken pipe instead of the `413`; an
/// attacker costs the hub no more than this per refused request.
pub const DRAIN_AFTER_REFUSAL_BYTES: u64 = 1 << 20;

/// ... and spends at most this long doing so.
pub const DRAIN_AFTER_REFUSAL_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Body of a `202 Accepted` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedBody {
    /// Message id.
    pub id: String,
    /// Where the message's state can be read: `/api/v1/messages/<id>`.
    pub status_url: String,
    /// True when an earlier submission with the same idempotency key was
    /// found; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Clone)]
struct InboxState {
    intake: Arc<dyn Intake>,
    tokens: Arc<TokenTable>,
    mount: Mount,
}

/// Where a request's channel comes from.
#[derive(Clone)]
enum Mount {
    /// The `{channel}` path segment ([`inbox_router`]).
    AnyChannel,
    /// This channel's own route ([`channel_router`]).
    Channel(String),
    /// A path no channel claimed ([`unclaimed_router`]): after
    /// authentication, `404 unknown-channel`.
    Unclaimed,
}

/// The inbox router, serving `POST /api/v1/inbox/{channel}`.
///
/// The router has no fallback of its own, so it can be merged into a
/// bigger router; other methods on the inbox path get a `405` problem.
/// The peer address is recorded when the server is run with
/// `into_make_service_with_connect_info::<SocketAddr>()`; it is optional.
///
/// ```no_run
/// # async fn run(intake: std::sync::Arc<dyn drehscheibe_model::Intake>,
/// #              tokens: std::sync::Arc<drehscheibe_model::auth::TokenTable>) {
/// let app = drehscheibe_http::inbox::inbox_router(intake, tokens);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
/// )
/// .await
/// .unwrap();
/// # }
/// ```
pub fn inbox_router(intake: Arc<dyn Intake>, tokens: Arc<TokenTable>) -> Router {
    router(INBOX_PATH, intake, tokens, Mount::AnyChannel)
}

/// The inbox of one `http` channel, `POST /api/v1/inbox/<channel>`: what
/// the `http` channel plugin contributes to the hub's shared server (one
/// route per channel; the hub adds [`unclaimed_router`] for the rest).
pub fn channel_router(channel: &str, intake: Arc<dyn Intake>, tokens: Arc<TokenTable>) -> Router {
    router(
        &format!("/api/v1/inbox/{channel}"),
        intake,
        tokens,
        Mount::Channel(channel.to_owned()),
    )
}

/// `POST /api/v1/inbox/{channel}` for every channel no `http` channel
/// claimed: authenticated callers get `404 unknown-channel` (also for the
/// id of a channel of another type, which takes no HTTP submissions),
/// others `401`. The more specific routes of [`channel_router`] win.
pub fn unclaimed_router(intake: Arc<dyn Intake>, tokens: Arc<TokenTable>) -> Router {
    router(INBOX_PATH, intake, tokens, Mount::Unclaimed)
}

fn router(path: &str, intake: Arc<dyn Intake>, tokens: Arc<TokenTable>, mount: Mount) -> Router {
    Router::new()
        .route(
            path,
            post(submit).fallback(|uri: axum::http::Uri| async move {
                method_not_allowed("POST", uri.path())
            }),
        )
        .with_state(InboxState {
            intake,
            tokens,
            mount,
        })
}

/// A refusal: a problem, plus a `WWW-Authenticate` challenge for `401`.
#[derive(Debug)]
struct Refused {
    problem: Box<Problem>,
    challenge: Option<&'static str>,
}

impl From<Problem> for Refused {
    fn from(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            challenge: None,
        }
    }
}

impl From<IntakeError> for Refused {
    fn from(error: IntakeError) -> Self {
        Problem::from_intake(&error).into()
    }
}

async fn submit(
    State(state): State<InboxState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let instance = request.uri().path().to_owned();
    match handle(&state, path, request).await {
        Ok(response) => response,
        Err(refused) => {
            tracing::debug!(
                path = %instance,
                status = refused.problem.status,
                detail = %refused.problem.detail,
                "inbox request refused"
            );
            let mut response = refused.problem.with_instance(instance).into_response();
            if let Some(challenge) = refused.challenge {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            response
        }
    }
}

async fn handle(
    state: &InboxState,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, Refused> {
    let mut staged = StagedGuard::new(state.intake.clone());
    let result = receive(state, path, request, &mut staged).await;
    if result.is_err() {
        staged.discard().await;
    }
    result
}

/// Authenticate, read and submit one request; what it stages is recorded
/// in `staged`.
async fn receive(
    state: &InboxState,
    path: Result<Path<String>, PathRejection>,
    request: Request,
    staged: &mut StagedGuard,
) -> Result<Response, Refused> {
    let (parts, body) = request.into_parts();
    let principal = authenticate(&state.tokens, &parts.headers)?;

    let channel = match &state.mount {
        Mount::Channel(c) => c.clone(),
        Mount::AnyChannel | Mount::Unclaimed => {
            let Path(channel) =
                path.map_err(|e| Problem::bad_request(format!("invalid channel in path: {e}")))?;
            channel
        }
    };
    // An authenticated caller learns that a channel does not exist (404)
    // before being told it may not use it (403): the more useful answer
    // for a misconfigured sender, and it reveals nothing to strangers.
    if matches!(state.mount, Mount::Unclaimed) || !state.intake.channel_exists(&channel) {
        return Err(IntakeError::UnknownChannel(channel).into());
    }
    if !principal.may_submit(&channel) {
        return Err(IntakeError::Forbidden(channel).into());
    }

    let idempotency_key = single_key_header(&parts.headers, IDEMPOTENCY_KEY)?;
    let mut correlation_ids = BTreeMap::new();
    for name in CORRELATION_HEADERS {
        if let Some(value) = single_key_header(&parts.headers, name)? {
            correlation_ids.insert(name.to_owned(), value);
        }
    }

    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| unsupported("request has no Content-Type"))?
        .to_str()
        .map_err(|_| unsupported("Content-Type is not visible ASCII"))?;
    let declared_length = declared_length(&parts.headers)?;

    let max_payload = state.intake.max_payload_bytes();
    let (content_type, payload, attachments) = match BodyKind::of(content_type)? {
        BodyKind::Payload(content_type) => {
            let mut stream = body.into_data_stream();
            if declared_length.is_some_and(|len| len > max_payload) {
                if declared_length.is_some_and(|len| len <= DRAIN_AFTER_REFUSAL_BYTES) {
                    drain_bounded(&mut stream).await;
                }
                return Err(IntakeError::TooLarge { limit: max_payload }.into());
            }
            let payload = read_payload(&mut stream, max_payload).await?;
            (content_type, payload, Vec::new())
        }
        BodyKind::Multipart(boundary) => {
            let limits = Limits::of(state.intake.as_ref());
            if declared_length.is_some_and(|len| len > limits.whole_body) {
                return Err(Problem::from_intake(&IntakeError::TooLarge {
                    limit: limits.whole_body,
                })
                .into());
            }
            read_multipart(staged, body, boundary, &limits).await?
        }
    };
    if payload.is_empty() {
        return Err(IntakeError::Malformed("the primary payload is empty".into()).into());
    }

    let remote_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string());
    let submission = Submission {
        channel: channel.clone(),
        sender: SenderIdentity {
            adapter: ADAPTER_KIND.to_owned(),
            principal: principal.name.clone(),
            remote_addr,
        },
        content_type,
        payload,
        attachments,
        idempotency_key,
        correlation_ids,
    };
    let submitted = state.intake.submit(submission).await;
    if matches!(submitted, Ok(_) | Err(IntakeError::Infected { .. })) {
        // The hub has ended the stagings (kept; discarded for a duplicate;
        // kept for a message stored as quarantined).
        staged.disarm();
    }
    let accepted = submitted?;
    tracing::info!(
        id = %accepted.id,
        channel = %channel,
        principal = %principal.name,
        duplicate = accepted.duplicate,
        "inbox accepted message"
    );

    let id = accepted.id.to_string();
    let status_url = format!("/api/v1/messages/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(AcceptedBody {
            id,
            status_url: status_url.clone(),
            duplicate: accepted.duplicate,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn authenticate(tokens: &TokenTable, headers: &HeaderMap) -> Result<Principal, Refused> {
    let refuse = |detail: &str, challenge| Refused {
        problem: Box::new(Problem::unauthorized(detail)),
        challenge: Some(challenge),
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refuse("a bearer token is required", "Bearer"));
    };
    let token = value.to_str().ok().and_then(bearer_token);
    let Some(token) = token else {
        return Err(refuse(
            "the Authorization header must carry a bearer token",
            "Bearer",
        ));
    };
    tokens.authenticate(token).cloned().ok_or_else(|| {
        refuse(
            "the bearer token is not known",
            "Bearer error=\"invalid_token\"",
        )
    })
}

/// A header that may appear at most once and must be 1 to [`MAX_KEY_LEN`]
/// visible ASCII characters.
fn single_key_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, Refused> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |why: &str| Problem::new(400, "invalid-header", format!("{name}: {why}"));
    if values.next().is_some() {
        return Err(invalid("given more than once").into());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(invalid(&format!("must be 1 to {MAX_KEY_LEN} characters long")).into());
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("only visible ASCII characters are allowed").into());
    }
    // All bytes are ASCII, so this cannot fail.
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| invalid("only visible ASCII characters are allowed").into())
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Refused> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Problem::bad_request("Content-Length is not a number").into()),
    }
}

fn unsupported(detail: &str) -> Problem {
    Problem::from_intake(&IntakeError::UnsupportedMediaType(detail.to_owned()))
}

enum BodyKind {
    /// A plain payload with its normalized content type.
    Payload(String),
    /// A multipart body with its boundary.
    Multipart(String),
}

impl BodyKind {
    fn of(content_type: &str) -> Result<Self, Refused> {
        let (essence, params) = split_media_type(content_type);
        if essence == "multipart/form-data" || essence == "multipart/mixed" {
            let boundary = boundary_of(params).ok_or_else(|| {
                Problem::new(
                    400,
                    "malformed-multipart",
                    "multipart Content-Type without a valid boundary",
                )
            })?;
            return Ok(Self::Multipart(boundary));
        }
        payload_content_type(content_type).map(Self::Payload)
    }
}

/// The `boundary` parameter (RFC 2046 §5.1.1: 1 to 70 characters, maybe
/// quoted).
fn boundary_of(params: &str) -> Option<String> {
    let value = params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then_some(value.trim())
    })?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => value,
    };
    let valid = (1..=70).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !value.ends_with(' ');
    valid.then(|| value.to_owned())
}

/// Lower-case media type and the parameters after it.
fn split_media_type(value: &str) -> (String, &str) {
    let (essence, params) = value.split_once(';').unwrap_or((value, ""));
    (essence.trim().to_ascii_lowercase(), params.trim())
}

/// Check that `value` is an XML or JSON media type; return it with the
/// media type lower-cased and the parameters kept.
fn payload_content_type(value: &str) -> Result<String, Refused> {
    let (essence, params) = split_media_type(value);
    if !is_payload_media_type(&essence) {
        return Err(unsupported(&essence).into());
    }
    Ok(if params.is_empty() {
        essence
    } else {
        format!("{essence}; {params}")
    })
}

fn is_payload_media_type(essence: &str) -> bool {
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) || !token(subtype) {
        return false;
    }
    matches!(essence, "application/xml" | "text/xml" | "application/json")
        || (subtype.ends_with("+xml") && subtype.len() > 4)
        || (subtype.ends_with("+json") && subtype.len() > 5)
}

/// Read a plain body into memory, refusing more than `limit` bytes.
async fn read_payload<S, E>(stream: &mut S, limit: u64) -> Result<Bytes, Refused>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| Problem::bad_request(format!("reading the request body failed: {e}")))?;
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > limit {
            drain_bounded(stream).await;
            return Err(IntakeError::TooLarge { limit }.into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Read and discard what is left of a refused body, bounded by
/// [`DRAIN_AFTER_REFUSAL_BYTES`] and [`DRAIN_AFTER_REFUSAL_TIME`], so that
/// a client still sending reads the refusal instead of a reset connection.
/// If the bound is reached, the answer goes out anyway and the server
/// closes the connection.
async fn drain_bounded<S, E>(stream: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut budget = DRAIN_AFTER_REFUSAL_BYTES;
    within_drain_time(discard(stream, &mut budget)).await;
}

/// Read and discard chunks of `stream` until it ends (`true`) or `budget`
/// bytes are spent (`false`).
async fn discard<S, E>(stream: &mut S, budget: &mut u64) -> bool
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    while let Some(Ok(chunk)) = stream.next().await {
        match budget.checked_sub(chunk.len() as u64) {
            Some(left) => *budget = left,
            None => return false,
        }
    }
    true
}

/// Run a drain for at most [`DRAIN_AFTER_REFUSAL_TIME`].
async fn within_drain_time(drain: impl std::future::Future<Output = impl Sized>) {
    // Elapsing is the expected end for a slow sender; nothing to report.
    let _ = tokio::time::timeout(DRAIN_AFTER_REFUSAL_TIME, drain).await;
}

struct Limits {
    payload: u64,
    attachment: u64,
    attachments_total: u64,
    whole_body: u64,
}

impl Limits {
    fn of(intake: &dyn Intake) -> Self {
        let payload = intake.max_payload_bytes();
        let attachment = intake.max_attachment_bytes();
        let attachments_total = attachment.saturating_mul(ATTACHMENT_TOTAL_FACTOR);
        Self {
            payload,
            attachment,
            attachments_total,
            whole_body: payload
                .saturating_add(attachments_total)
                .saturating_add(MULTIPART_OVERHEAD_BYTES),
        }
    }
}

/// The blobs a request has staged; dropped while armed (the request was
/// refused, failed, or its handler was dropped), it hands them to
/// [`Intake::discard_staged`] on a spawned task, so cancellation cannot
/// skip the clean-up.
struct StagedGuard {
    intake: Arc<dyn Intake>,
    blobs: Vec<BlobRef>,
}

impl StagedGuard {
    fn new(intake: Arc<dyn Intake>) -> Self {
        Self {
            intake,
            blobs: Vec::new(),
        }
    }

    /// The submission was accepted: the hub owns the blobs now.
    fn disarm(&mut self) {
        self.blobs.clear();
    }

    /// The request is refused: discard now, before the answer goes out.
    async fn discard(mut self) {
        let blobs = std::mem::take(&mut self.blobs);
        if !blobs.is_empty() {
            self.intake.discard_staged(&blobs).await;
        }
    }
}

impl Drop for StagedGuard {
    fn drop(&mut self) {
        if self.blobs.is_empty() {
            return;
        }
        let blobs = std::mem::take(&mut self.blobs);
        let intake = self.intake.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { intake.discard_staged(&blobs).await });
            }
            Err(_) => tracing::warn!(
                blobs = blobs.len(),
                "no runtime to discard staged attachments; the next start sweeps them"
            ),
        }
    }
}

/// Read a multipart body: the first part is the payload, the others are
/// staged as attachments (and recorded in `staged` as soon as they are).
async fn read_multipart(
    staged: &mut StagedGuard,
    body: Body,
    boundary: String,
    limits: &Limits,
) -> Result<(String, Bytes, Vec<StagedAttachment>), Refused> {
    let body_too_large = Arc::new(AtomicBool::new(false));
    let stream = limit_stream(
        body.into_data_stream(),
        limits.whole_body,
        body_too_large.clone(),
    );
    let mut multipart = multer::Multipart::new(stream, boundary);
    let result = read_parts(staged, &mut multipart, limits, body_too_large).await;
    if result.is_err() {
        drain_multipart(&mut multipart).await;
    }
    result
}

/// Read and discard the rest of a refused multipart body, within the same
/// bounds as [`drain_bounded`] (a body cut off for its whole size has been
/// drained by [`limit_stream`] already; a malformed one ends here at once).
async fn drain_multipart(multipart: &mut multer::Multipart<'static>) {
    within_drain_time(async {
        let mut budget = DRAIN_AFTER_REFUSAL_BYTES;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            if !discard(&mut field, &mut budget).await {
                return;
            }
        }
    })
    .await;
}

/// The parts of a multipart body (see [`read_multipart`]).
async fn read_parts(
    staged: &mut StagedGuard,
    multipart: &mut multer::Multipart<'static>,
    limits: &Limits,
    body_too_large: Arc<AtomicBool>,
) -> Result<(String, Bytes, Vec<StagedAttachment>), Refused> {
    let whole_body_limit = limits.whole_body;
    let multipart_error = move |e: multer::Error| -> Refused {
        if body_too_large.load(Ordering::SeqCst) {
            IntakeError::TooLarge {
                limit: whole_body_limit,
            }
            .into()
        } else {
            Problem::new(400, "malformed-multipart", format!("multipart body: {e}")).into()
        }
    };

    let Some(mut first) = multipart.next_field().await.map_err(&multipart_error)? else {
        return Err(Problem::new(
            400,
            "malformed-multipart",
            "the multipart body has no parts",
        )
        .into());
    };
    let declared = first
        .headers()
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| unsupported("the first part has no Content-Type"))?
        .to_str()
        .map_err(|_| unsupported("the first part's Content-Type is not visible ASCII"))?;
    let content_type = payload_content_type(declared)?;
    let mut payload = BytesMut::new();
    while let Some(chunk) = first.chunk().await.map_err(&multipart_error)? {
        if (payload.len() as u64).saturating_add(chunk.len() as u64) > limits.payload {
            return Err(IntakeError::TooLarge {
                limit: limits.payload,
            }
            .into());
        }
        payload.extend_from_slice(&chunk);
    }
    drop(first);

    let mut attachments = Vec::new();
    let mut total: u64 = 0;
    while let Some(field) = multipart.next_field().await.map_err(&multipart_error)? {
        if attachments.len() >= MAX_ATTACHMENTS {
            return Err(Problem::new(
                413,
                "too-many-attachments",
                format!("at most {MAX_ATTACHMENTS} attachments are accepted"),
            )
            .into());
        }
        let position = attachments.len() + 1;
        let filename = field.file_name().map(str::to_owned);
        let name = field
            .name()
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| filename.clone())
            .unwrap_or_else(|| format!("attachment-{position}"));
        // RFC 7578 §4.4: text/plain unless declared; a file without a
        // declared type is taken as application/octet-stream.
        let content_type = field
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(if filename.is_some() {
                "application/octet-stream"
            } else {
                "text/plain"
            })
            .to_owned();

        let remaining_total = limits.attachments_total.saturating_sub(total);
        let limit = limits.attachment.min(remaining_total);
        let meter = Arc::new(Meter::default());
        let reader = StreamReader::new(metered(field, limit, meter.clone()));
        let intake = staged.intake.clone();
        let blob = intake.stage_attachment(Box::pin(reader)).await;
        if let Ok(blob) = &blob {
            staged.blobs.push(blob.clone());
        }

        if meter.exceeded.load(Ordering::SeqCst) {
            let detail = if limit < limits.attachment {
                format!(
                    "attachment {name:?}: all attachments together are limited to {} bytes",
                    limits.attachments_total
                )
            } else {
                format!(
                    "attachment {name:?} is larger than the limit of {} bytes",
                    limits.attachment
                )
            };
            return Err(Problem::new(413, "attachment-too-large", detail).into());
        }
        if let Some(e) = meter.take_source_error() {
            return Err(multipart_error(e));
        }
        let blob = blob?;
        total = total.saturating_add(meter.bytes.load(Ordering::SeqCst));
        attachments.push(StagedAttachment {
            name,
            filename,
            content_type,
            blob,
        });
    }
    Ok((content_type, payload.freeze(), attachments))
}

/// Cut a body stream off with an error once it passes `limit` bytes —
/// after reading and discarding what is left of it within the drain
/// bounds (see [`drain_bounded`]), so the sender reads the refusal.
fn limit_stream<S, E>(
    stream: S,
    limit: u64,
    exceeded: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    futures::stream::unfold((stream, 0u64, false), move |(mut stream, seen, done)| {
        let exceeded = exceeded.clone();
        async move {
            if done {
                return None;
            }
            let chunk = match stream.next().await? {
                Ok(chunk) => chunk,
                Err(e) => {
                    let e = std::io::Error::other(e.to_string());
                    return Some((Err(e), (stream, seen, true)));
                }
            };
            let seen = seen.saturating_add(chunk.len() as u64);
            if seen > limit {
                exceeded.store(true, Ordering::SeqCst);
                drain_bounded(&mut stream).await;
                let e = std::io::Error::other("request body too large");
                Some((Err(e), (stream, seen, true)))
            } else {
                Some((Ok(chunk), (stream, seen, false)))
            }
        }
    })
}

/// What happened while an attachment was streamed out of a part.
#[derive(Default)]
struct Meter {
    bytes: AtomicU64,
    exceeded: AtomicBool,
    source_error: Mutex<Option<multer::Error>>,
}

impl Meter {
    fn take_source_error(&self) -> Option<multer::Error> {
        match self.source_error.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn set_source_error(&self, error: multer::Error) {
        let mut guard = match self.source_error.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.get_or_insert(error);
    }
}

/// Stream a part, counting its bytes and failing past `limit`.
fn metered(
    field: multer::Field<'static>,
    limit: u64,
    meter: Arc<Meter>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    field.map(move |item| match item {
        Ok(chunk) => {
            let before = meter.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            if before.saturating_add(chunk.len() as u64) > limit {
                meter.exceeded.store(true, Ordering::SeqCst);
                Err(std::io::Error::other("attachment too large"))
            } else {
                Ok(chunk)
            }
        }
        Err(e) => {
            let message = e.to_string();
            meter.set_source_error(e);
            Err(std::io::Error::other(message))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_media_types() {
        for ok in [
            "application/xml",
            "text/xml",
            "Application/JSON",
            "application/soap+xml",
            "application/problem+json",
            "application/vnd.xoev+xml",
        ] {
            assert!(is_payload_media_type(&split_media_type(ok).0), "{ok}");
        }
        for bad in [
            "",
            "+xml",
            "application/+xml",
            "text/plain",
            "application/octet-stream",
            "application/xml-dtd",
            "/json",
            "application/json x",
        ] {
            assert!(!is_payload_media_type(&split_media_type(bad).0), "{bad}");
        }
    }

    #[test]
    fn boundary_parameter() {
        let b = |ct: &str| boundary_of(split_media_type(ct).1);
        assert_eq!(b("multipart/mixed; boundary=xyz").as_deref(), Some("xyz"));
        assert_eq!(
            b("multipart/form-data; charset=utf-8; BOUNDARY=\"a b:c\"").as_deref(),
            Some("a b:c")
        );
        assert_eq!(b("multipart/mixed"), None);
        assert_eq!(b("multipart/mixed; boundary="), None);
        assert_eq!(b("multipart/mixed; boundary=\"open"), None);
        assert_eq!(
            b(&format!("multipart/mixed; boundary={}", "x".repeat(71))),
            None
        );
    }

    #[test]
    fn content_type_is_normalized_with_parameters() {
        assert_eq!(
            payload_content_type("Text/XML ;  charset=ISO-8859-15").unwrap(),
            "text/xml; charset=ISO-8859-15"
        );
        assert_eq!(
            payload_content_type("application/json").unwrap(),
            "application/json"
        );
        assert_eq!(
            payload_content_type("text/html")
                .err()
                .map(|r| r.problem.status),
            Some(415)
        );
    }
}

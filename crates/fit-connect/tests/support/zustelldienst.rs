//! A test Zustelldienst: the public FIT-Connect v1 Submission API, in
//! memory, on a loopback port.
//!
//! Sender endpoints: `POST /token`, `GET /v1/destinations/{id}`,
//! `GET /v1/destinations/{id}/keys/{kid}`, `POST /v1/submissions`,
//! `PUT /v1/submissions/{id}/attachments/{aid}`, `PUT /v1/submissions/{id}`,
//! `GET /v1/cases/{caseId}/events`. Subscriber endpoints:
//! `GET /v1/submissions`, `GET /v1/submissions/{id}`,
//! `GET /v1/submissions/{id}/attachments/{aid}`,
//! `POST /v1/cases/{caseId}/events` (SETs verified against the
//! destination's verification keys). On submit it writes a
//! `submit-submission` SET (signed with its own service key) and sends a
//! `new-submissions` callback (HMAC-SHA-512) to the configured URL.
//!
//! Failures can be injected per operation ([`Zustelldienst::fail_next`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use drehscheibe_fit_connect::jose::{RsaPrivateKey, RsaPublicJwk};
use drehscheibe_fit_connect::set;
use drehscheibe_fit_connect::subscriber::{
    callback_signature, CALLBACK_AUTH_HEADER, CALLBACK_TIMESTAMP_HEADER,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// A destination hosted by the double.
#[derive(Clone)]
pub struct DestinationSetup {
    pub id: String,
    pub encryption_key: RsaPublicJwk,
    pub verification_keys: Vec<RsaPublicJwk>,
    /// (service identifier, schema URI, mime type)
    pub services: Vec<(String, String, String)>,
    pub status: String,
}

/// A stored submission.
#[derive(Debug, Clone)]
pub struct StoredSubmission {
    pub submission_id: String,
    pub case_id: String,
    pub destination_id: String,
    pub service_type: Value,
    pub announced: Vec<String>,
    pub attachments: BTreeMap<String, String>,
    pub encrypted_metadata: Option<String>,
    pub encrypted_data: Option<String>,
    /// `incomplete`, `submitted`, `accepted`, `rejected`.
    pub status: String,
}

#[derive(Default)]
pub struct DoubleState {
    pub tokens: HashSet<String>,
    pub token_requests: usize,
    pub submissions: BTreeMap<String, StoredSubmission>,
    pub events: HashMap<String, Vec<String>>,
    /// operation name → statuses to answer next (front first).
    pub failures: HashMap<String, Vec<u16>>,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
    /// When each of [`DoubleState::requests`] arrived.
    pub request_times: Vec<std::time::Instant>,
    pub callback: Option<(String, String)>,
}

struct Inner {
    client_id: String,
    client_secret: String,
    destinations: Vec<DestinationSetup>,
    service_key: RsaPrivateKey,
    base_url: Mutex<String>,
    state: Mutex<DoubleState>,
}

type Shared = Arc<Inner>;

/// The running double.
pub struct Zustelldienst {
    pub addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Zustelldienst {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn problem(status: u16, name: &str, detail: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [("content-type", "application/problem+json")],
        Json(json!({
            "type": format!("https://schema.fitko.de/fit-connect/submission-api/problems/{name}"),
            "title": name,
            "status": status,
            "detail": detail,
        })),
    )
        .into_response()
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, DoubleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Log the request, check the bearer token, apply injected failures.
    fn enter(&self, op: &str, line: String, headers: Option<&HeaderMap>) -> Option<Response> {
        let mut st = self.lock();
        st.requests.push(line);
        st.request_times.push(std::time::Instant::now());
        if let Some(list) = st.failures.get_mut(op) {
            if !list.is_empty() {
                let status = list.remove(0);
                return Some(problem(status, "injected", op));
            }
        }
        if let Some(h) = headers {
            let token = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !st.tokens.contains(token) {
                return Some(problem(401, "unauthorized", "bad token"));
            }
        }
        None
    }

    fn destination(&self, id: &str) -> Option<&DestinationSetup> {
        self.destinations.iter().find(|d| d.id == id)
    }
}

async fn token(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    if let Some(r) = s.enter("token", "POST /token".into(), None) {
        return r;
    }
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id") == Some(&s.client_id)
        && form.get("client_secret") == Some(&s.client_secret);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let t = Uuid::new_v4().to_string();
    let mut st = s.lock();
    st.tokens.insert(t.clone());
    st.token_requests += 1;
    Json(json!({"access_token": t, "token_type": "Bearer", "expires_in": 1800})).into_response()
}

async fn get_destination(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = s.enter(
        "destination",
        format!("GET /v1/destinations/{id}"),
        Some(&headers),
    ) {
        return r;
    }
    let Some(d) = s.destination(&id) else {
        return problem(404, "destination-not-found", &id);
    };
    let services: Vec<Value> = d
        .services
        .iter()
        .map(|(ident, uri, mime)| {
            json!({"identifier": ident, "name": "Test", "submissionSchemas": [{"schemaUri": uri, "mimeType": mime}], "regions": []})
        })
        .collect();
    Json(json!({
        "destinationId": d.id,
        "status": d.status,
        "encryptionKid": d.encryption_key.kid,
        "services": services,
        "metadataVersions": ["1.0.0"],
    }))
    .into_response()
}

async fn get_key(
    State(s): State<Shared>,
    Path((id, kid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = s.enter(
        "key",
        format!("GET /v1/destinations/{id}/keys/{kid}"),
        Some(&headers),
    ) {
        return r;
    }
    let Some(d) = s.destination(&id) else {
        return problem(404, "destination-not-found", &id);
    };
    let all = std::iter::once(&d.encryption_key).chain(d.verification_keys.iter());
    match all
        .into_iter()
        .find(|k| k.kid.as_deref() == Some(kid.as_str()))
    {
        Some(k) => Json(serde_json::to_value(k).unwrap()).into_response(),
        None => problem(404, "key-not-found", &kid),
    }
}

async fn create_submission(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = s.enter("announce", "POST /v1/submissions".into(), Some(&headers)) {
        return r;
    }
    let dest = body["destinationId"].as_str().unwrap_or("").to_string();
    let Some(d) = s.destination(&dest) else {
        return problem(404, "destination-not-found", &dest);
    };
    if d.status != "active" {
        return problem(422, "destination-state-invalid", &d.status);
    }
    let announced: Vec<String> = body["announcedAttachments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let unique: HashSet<&String> = announced.iter().collect();
    if unique.len() != announced.len() {
        return problem(
            422,
            "duplicate-attachment-id",
            "announcedAttachments repeat an id",
        );
    }
    let Some(service_type) = body
        .get("serviceType")
        .filter(|v| v["identifier"].is_string())
    else {
        return problem(
            422,
            "invalid-service-type",
            "serviceType.identifier missing",
        );
    };
    let sub = StoredSubmission {
        submission_id: Uuid::new_v4().to_string(),
        case_id: Uuid::new_v4().to_string(),
        destination_id: dest.clone(),
        service_type: service_type.clone(),
        announced,
        attachments: BTreeMap::new(),
        encrypted_metadata: None,
        encrypted_data: None,
        status: "incomplete".into(),
    };
    let answer =
        json!({"destinationId": dest, "submissionId": sub.submission_id, "caseId": sub.case_id});
    s.lock().submissions.insert(sub.submission_id.clone(), sub);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn put_attachment(
    State(s): State<Shared>,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let line = format!("PUT /v1/submissions/{id}/attachments/{aid}");
    if let Some(r) = s.enter("upload", line, Some(&headers)) {
        return r;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/jose") {
        return problem(415, "unsupported-media-type", "expected application/jose");
    }
    let mut st = s.lock();
    let Some(sub) = st.submissions.get_mut(&id) else {
        return problem(404, "submission-not-found", &id);
    };
    if !sub.announced.contains(&aid) {
        return problem(404, "attachment-not-announced", &aid);
    }
    sub.attachments
        .insert(aid, String::from_utf8_lossy(&body).into_owned());
    StatusCode::NO_CONTENT.into_response()
}

async fn submit(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = s.enter(
        "submit",
        format!("PUT /v1/submissions/{id}"),
        Some(&headers),
    ) {
        return r;
    }
    let (answer, case_id, dest, callback) = {
        let mut st = s.lock();
        let callback = st.callback.clone();
        let Some(sub) = st.submissions.get_mut(&id) else {
            return problem(404, "submission-not-found", &id);
        };
        if sub.status != "incomplete" {
            return problem(409, "submission-state-invalid", &sub.status);
        }
        if sub
            .announced
            .iter()
            .any(|a| !sub.attachments.contains_key(a))
        {
            return problem(
                422,
                "missing-attachments",
                "not every announced attachment is uploaded",
            );
        }
        let Some(meta) = body["encryptedMetadata"].as_str() else {
            return problem(422, "missing-metadata", "encryptedMetadata missing");
        };
        sub.encrypted_metadata = Some(meta.to_string());
        sub.encrypted_data = body["encryptedData"].as_str().map(String::from);
        sub.status = "submitted".into();
        let answer = json!({"destinationId": sub.destination_id, "submissionId": sub.submission_id, "caseId": sub.case_id});
        (
            answer,
            sub.case_id.clone(),
            sub.destination_id.clone(),
            callback,
        )
    };
    let set_token = set::create_set(
        &s.base_url.lock().unwrap().clone(),
        Uuid::parse_str(&id).unwrap(),
        Uuid::parse_str(&case_id).unwrap(),
        set::SUBMIT_SUBMISSION,
        Value::Null,
        &s.service_key,
    )
    .unwrap();
    s.lock()
        .events
        .entry(case_id.clone())
        .or_default()
        .push(set_token);
    if let Some((url, secret)) = callback {
        let body = json!({
            "type": "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions",
            "submissionIds": [id],
            "submissions": [{"destinationId": dest, "submissionId": id, "caseId": case_id}],
        })
        .to_string();
        tokio::spawn(send_callback(url, secret, body, None));
    }
    Json(answer).into_response()
}

/// Send a callback; `timestamp` overrides the current time.
pub async fn send_callback(
    url: String,
    secret: String,
    body: String,
    timestamp: Option<i64>,
) -> Option<u16> {
    let ts = timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
        .to_string();
    let sig = callback_signature(secret.as_bytes(), &ts, body.as_bytes());
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(CALLBACK_TIMESTAMP_HEADER, ts)
        .header(CALLBACK_AUTH_HEADER, sig)
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn list_submissions(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = s.enter("list", "GET /v1/submissions".into(), Some(&headers)) {
        return r;
    }
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let st = s.lock();
    let all: Vec<Value> = st
        .submissions
        .values()
        .filter(|x| x.status == "submitted")
        .filter(|x| q.get("destinationId").is_none_or(|d| *d == x.destination_id))
        .map(|x| json!({"destinationId": x.destination_id, "submissionId": x.submission_id, "caseId": x.case_id}))
        .collect();
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    Json(json!({"count": page.len(), "offset": offset, "totalCount": all.len(), "submissions": page}))
        .into_response()
}

async fn get_submission(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = s.enter("get", format!("GET /v1/submissions/{id}"), Some(&headers)) {
        return r;
    }
    let st = s.lock();
    let Some(x) = st.submissions.get(&id).filter(|x| x.status != "incomplete") else {
        return problem(404, "submission-not-found", &id);
    };
    Json(json!({
        "destinationId": x.destination_id,
        "submissionId": x.submission_id,
        "caseId": x.case_id,
        "serviceType": x.service_type,
        "attachments": x.announced,
        "encryptedMetadata": x.encrypted_metadata,
        "encryptedData": x.encrypted_data,
    }))
    .into_response()
}

async fn get_attachment(
    State(s): State<Shared>,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let line = format!("GET /v1/submissions/{id}/attachments/{aid}");
    if let Some(r) = s.enter("attachment", line, Some(&headers)) {
        return r;
    }
    let st = s.lock();
    match st
        .submissions
        .get(&id)
        .and_then(|x| x.attachments.get(&aid))
    {
        Some(jwe) => ([("content-type", "application/jose")], jwe.clone()).into_response(),
        None => problem(404, "attachment-not-found", &aid),
    }
}

async fn get_events(
    State(s): State<Shared>,
    Path(case): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = s.enter(
        "events",
        format!("GET /v1/cases/{case}/events"),
        Some(&headers),
    ) {
        return r;
    }
    let log = s.lock().events.get(&case).cloned().unwrap_or_default();
    Json(json!({"eventLog": log, "totalCount": log.len()})).into_response()
}

async fn post_event(
    State(s): State<Shared>,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = s.enter(
        "post-event",
        format!("POST /v1/cases/{case}/events"),
        Some(&headers),
    ) {
        return r;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/jose") {
        return problem(415, "unsupported-media-type", "expected application/jose");
    }
    match s.accept_event(&case, &body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err((status, why)) => problem(status, "invalid-event", &why),
    }
}

impl Inner {
    fn accept_event(&self, case: &str, token: &str) -> Result<(), (u16, String)> {
        let (_, claims) =
            drehscheibe_fit_connect::jose::peek_jws(token).map_err(|e| (422, e.to_string()))?;
        let iss = claims["iss"].as_str().unwrap_or("").to_string();
        let dest = self
            .destination(&iss)
            .ok_or((422, format!("issuer {iss} is no destination")))?;
        let verified =
            set::verify_set(token, &dest.verification_keys).map_err(|e| (422, e.to_string()))?;
        if verified.case_id.to_string() != case {
            return Err((422, "txn does not name this case".into()));
        }
        let mut st = self.lock();
        let sid = verified.submission_id.to_string();
        let sub = st
            .submissions
            .get_mut(&sid)
            .ok_or((404, "submission-not-found".to_string()))?;
        if sub.status != "submitted" {
            return Err((409, format!("submission is {}", sub.status)));
        }
        sub.status = match verified.event_name() {
            "accept-submission" => "accepted",
            "reject-submission" => "rejected",
            other => return Err((422, format!("unexpected event {other}"))),
        }
        .into();
        st.events
            .entry(case.to_string())
            .or_default()
            .push(token.to_string());
        Ok(())
    }
}

impl Zustelldienst {
    /// Start on a free loopback port.
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        destinations: Vec<DestinationSetup>,
        service_key: RsaPrivateKey,
    ) -> Self {
        let inner = Arc::new(Inner {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            destinations,
            service_key,
            base_url: Mutex::new(String::new()),
            state: Mutex::new(DoubleState::default()),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/destinations/{id}", get(get_destination))
            .route("/v1/destinations/{id}/keys/{kid}", get(get_key))
            .route(
                "/v1/submissions",
                post(create_submission).get(list_submissions),
            )
            .route("/v1/submissions/{id}", put(submit).get(get_submission))
            .route(
                "/v1/submissions/{id}/attachments/{aid}",
                put(put_attachment).get(get_attachment),
            )
            .route("/v1/cases/{case}/events", get(get_events).post(post_event))
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *inner.base_url.lock().unwrap() = format!("http://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url())
    }

    /// Inspect or change the state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, DoubleState> {
        self.inner.lock()
    }

    /// Answer the next `count` calls of `op` with `status` (ops: token,
    /// destination, key, announce, upload, submit, events, list, get,
    /// attachment, post-event).
    pub fn fail_next(&self, op: &str, status: u16, count: usize) {
        self.state()
            .failures
            .entry(op.to_string())
            .or_default()
            .extend(std::iter::repeat_n(status, count));
    }

    /// Send `new-submissions` callbacks to `url` with `secret`.
    pub fn set_callback(&self, url: String, secret: String) {
        self.state().callback = Some((url, secret));
    }

    /// Submissions with this status.
    pub fn submissions(&self, status: &str) -> Vec<StoredSubmission> {
        self.state()
            .submissions
            .values()
            .filter(|s| s.status == status)
            .cloned()
            .collect()
    }

    /// All submissions.
    pub fn all_submissions(&self) -> Vec<StoredSubmission> {
        self.state().submissions.values().cloned().collect()
    }

    /// Post an event as a subscriber would (verified like the HTTP route).
    pub fn post_event(&self, case: &str, token: &str) -> Result<(), (u16, String)> {
        self.inner.accept_event(case, token)
    }

    /// Arrival times of the requests whose `METHOD path` starts with
    /// `prefix`, in order.
    pub fn request_times(&self, prefix: &str) -> Vec<std::time::Instant> {
        let st = self.state();
        st.requests
            .iter()
            .zip(&st.request_times)
            .filter(|(r, _)| r.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    }

    /// The event log of a case.
    pub fn events(&self, case: &str) -> Vec<String> {
        self.state().events.get(case).cloned().unwrap_or_default()
    }
}

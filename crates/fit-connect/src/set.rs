//! Security Event Tokens (RFC 8417) as FIT-Connect uses them: JWS PS512,
//! header `typ: secevent+jwt` and `kid`; claims `iss`, `iat`, `jti`,
//! `sub: submission:<id>`, `txn: case:<caseId>` and exactly one event in
//! `events`.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::jose::{self, JoseError, RsaPrivateKey, RsaPublicJwk};

/// Prefix of the FIT-Connect event URIs.
pub const EVENT_BASE: &str = "https://schema.fitko.de/fit-connect/events/";
/// `submit-submission` (written by the Zustelldienst on submit).
pub const SUBMIT_SUBMISSION: &str = "https://schema.fitko.de/fit-connect/events/submit-submission";
/// `accept-submission` (receiver accepted; carries authentication tags).
pub const ACCEPT_SUBMISSION: &str = "https://schema.fitko.de/fit-connect/events/accept-submission";
/// `reject-submission` (receiver or service rejected; carries problems).
pub const REJECT_SUBMISSION: &str = "https://schema.fitko.de/fit-connect/events/reject-submission";
/// `forward-submission`.
pub const FORWARD_SUBMISSION: &str =
    "https://schema.fitko.de/fit-connect/events/forward-submission";
/// Schema URI of SET payloads, set as `$schema` when an event has a
/// payload (the delivery service itself uses 1.2.2).
pub const SET_PAYLOAD_SCHEMA: &str =
    "https://schema.fitko.de/fit-connect/set-payload/1.2.2/set-payload.schema.json";
/// Prefix the hub uses for problem types inside `reject-submission`.
pub const EVENT_PROBLEM_BASE: &str = "https://schema.fitko.de/fit-connect/events/problems/";
/// Media type of a SET.
pub const SET_TYP: &str = "secevent+jwt";

/// Errors of SET handling.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// Signature or JOSE structure.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// A claim is missing or malformed.
    #[error("invalid SET: {0}")]
    Invalid(String),
}

/// A verified SET, its claims taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSet {
    /// `iss`.
    pub issuer: String,
    /// `iat` (UNIX seconds).
    pub issued_at: i64,
    /// `jti`.
    pub jti: String,
    /// Submission id from `sub` (`submission:<id>`).
    pub submission_id: Uuid,
    /// Case id from `txn` (`case:<id>`).
    pub case_id: Uuid,
    /// The one event URI.
    pub event: String,
    /// The event payload (`{}` when empty).
    pub payload: Value,
    /// The JWS header.
    pub header: Value,
}

impl VerifiedSet {
    /// The event name without [`EVENT_BASE`] (`accept-submission`).
    pub fn event_name(&self) -> &str {
        self.event.strip_prefix(EVENT_BASE).unwrap_or(&self.event)
    }
}

/// Create a SET for a submission event, signed with `key` (PS512).
/// `payload` is the event payload (an object; `{}`/null for none). `$schema`
/// is added to the claims when the payload is not empty.
pub fn create_set(
    issuer: &str,
    submission_id: Uuid,
    case_id: Uuid,
    event: &str,
    payload: Value,
    key: &RsaPrivateKey,
) -> Result<String, SetError> {
    let payload = match payload {
        Value::Null => Value::Object(Map::new()),
        Value::Object(m) => Value::Object(m),
        _ => return Err(SetError::Invalid("event payload must be an object".into())),
    };
    let empty = payload.as_object().is_some_and(Map::is_empty);
    let mut claims = json!({
        "iss": issuer,
        "iat": chrono::Utc::now().timestamp(),
        "jti": Uuid::new_v4().to_string(),
        "sub": format!("submission:{submission_id}"),
        "txn": format!("case:{case_id}"),
        "events": { event: payload },
    });
    if !empty {
        claims["$schema"] = Value::String(SET_PAYLOAD_SCHEMA.into());
    }
    Ok(jose::sign_jws_ps512(
        json!({ "typ": SET_TYP }),
        &claims,
        key,
    )?)
}

/// Verify a SET against `keys` and check its shape: `typ secevent+jwt`,
/// `alg PS512` (enforced by [`jose::verify_jws_ps512`]), `iss`, `iat`,
/// `jti`, `sub`, `txn` present, exactly one event.
pub fn verify_set(token: &str, keys: &[RsaPublicJwk]) -> Result<VerifiedSet, SetError> {
    let (header, claims) = jose::verify_jws_ps512(token, keys)?;
    if header.get("typ").and_then(Value::as_str) != Some(SET_TYP) {
        return Err(SetError::Invalid(format!("typ must be {SET_TYP}")));
    }
    let text = |name: &str| -> Result<String, SetError> {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SetError::Invalid(format!("claim {name:?} missing")))
    };
    let issuer = text("iss")?;
    let jti = text("jti")?;
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| SetError::Invalid("claim \"iat\" missing".into()))?;
    let submission_id = text("sub")?
        .strip_prefix("submission:")
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| SetError::Invalid("sub must be submission:<uuid>".into()))?;
    let case_id = text("txn")?
        .strip_prefix("case:")
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| SetError::Invalid("txn must be case:<uuid>".into()))?;
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or_else(|| SetError::Invalid("claim \"events\" missing".into()))?;
    if events.len() != 1 {
        return Err(SetError::Invalid("a SET carries exactly one event".into()));
    }
    let (event, payload) = events
        .iter()
        .next()
        .ok_or_else(|| SetError::Invalid("no event".into()))?;
    Ok(VerifiedSet {
        issuer,
        issued_at,
        jti,
        submission_id,
        case_id,
        event: event.clone(),
        payload: payload.clone(),
        header,
    })
}

/// The `authenticationTags` payload of `accept-submission` (and of the
/// hub's `submit-submission`): the fifth JWE segments.
pub fn authentication_tags(
    metadata: &str,
    data: Option<&str>,
    attachments: &[(String, String)],
) -> Value {
    let mut tags = json!({ "metadata": metadata });
    if let Some(d) = data {
        tags["data"] = Value::String(d.to_owned());
    }
    let map: Map<String, Value> = attachments
        .iter()
        .map(|(id, tag)| (id.clone(), Value::String(tag.clone())))
        .collect();
    tags["attachments"] = Value::Object(map);
    json!({ "authenticationTags": tags })
}

/// Why the hub did not deliver a submission, as its sender is told.
///
/// A `reject-submission` goes to the sender, outside the administration.
/// The hub's own reason for a rejection or a dead message describes the
/// hub — its rules and configuration ("no Kommune is configured for key
/// …"), internal URLs, connect errors, a downstream hub's routing — and
/// stays in the hub's message record, its audit trail and logs. The sender
/// gets a fixed detail per outcome and the hub message id, which an
/// operator looks up when the sender asks:
///
/// | outcome | detail |
/// |---|---|
/// | [`NotDelivered::Rejected`] (by the rules) | the submission was not accepted by the receiving administration's rules |
/// | [`NotDelivered::Dead`] (delivery attempts exhausted) | the submission could not be delivered to the responsible authority |
/// | [`NotDelivered::Unknown`] (the hub has no such message) | the receiving hub has no record of the submission |
///
/// followed by ` (hub reference: message <message id>)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDelivered {
    /// The hub's rules rejected the message.
    Rejected,
    /// Every delivery attempt failed; the message is dead.
    Dead,
    /// The hub does not know the message (any more).
    Unknown,
    /// The malware scanner found something; the message is quarantined.
    Quarantined,
}

impl NotDelivered {
    /// The fixed detail of the outcome.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Rejected => {
                "the submission was not accepted by the receiving administration's rules"
            }
            Self::Dead => "the submission could not be delivered to the responsible authority",
            Self::Unknown => "the receiving hub has no record of the submission",
            Self::Quarantined => {
                "the submission was held back: the receiving hub's malware scanner found something in it"
            }
        }
    }

    /// The problem detail the sender gets: the fixed detail and the hub
    /// message id as a reference.
    pub fn sender_detail(self, message_id: &str) -> String {
        format!("{} (hub reference: message {message_id})", self.detail())
    }
}

/// The `reject-submission` payload: `{"problems": [{type, title, detail}]}`
/// with `type` = [`EVENT_PROBLEM_BASE`] + `kind`.
pub fn rejection(kind: &str, title: &str, detail: &str) -> Value {
    json!({
        "problems": [{
            "type": format!("{EVENT_PROBLEM_BASE}{kind}"),
            "title": title,
            "detail": detail,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> RsaPrivateKey {
        RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/signing.pem")).unwrap()
    }

    #[test]
    fn accept_set_round_trip() {
        let key = signer();
        let (sub, case) = (Uuid::new_v4(), Uuid::new_v4());
        let payload = authentication_tags("m", Some("d"), &[("a1".into(), "t1".into())]);
        let token = create_set("https://hub", sub, case, ACCEPT_SUBMISSION, payload, &key).unwrap();
        let set = verify_set(&token, &[key.verification_jwk()]).unwrap();
        assert_eq!(set.event_name(), "accept-submission");
        assert_eq!(set.submission_id, sub);
        assert_eq!(set.case_id, case);
        assert_eq!(set.issuer, "https://hub");
        assert_eq!(set.payload["authenticationTags"]["attachments"]["a1"], "t1");
        assert_eq!(set.header["typ"], "secevent+jwt");
        assert_eq!(set.header["kid"], key.kid());
        let (_, claims) = jose::peek_jws(&token).unwrap();
        assert_eq!(claims["$schema"], SET_PAYLOAD_SCHEMA);
        assert_eq!(claims["sub"], format!("submission:{sub}"));
    }

    #[test]
    fn empty_payload_omits_schema_and_bad_sets_fail() {
        let key = signer();
        let token = create_set(
            "i",
            Uuid::new_v4(),
            Uuid::new_v4(),
            SUBMIT_SUBMISSION,
            Value::Null,
            &key,
        )
        .unwrap();
        let (_, claims) = jose::peek_jws(&token).unwrap();
        assert!(claims.get("$schema").is_none());
        // a JWS that is not a SET (wrong typ)
        let jws = jose::sign_jws_ps512(json!({"typ": "JWT"}), &claims, &key).unwrap();
        assert!(matches!(
            verify_set(&jws, &[key.verification_jwk()]),
            Err(SetError::Invalid(_))
        ));
        // two events
        let mut two = claims.clone();
        two["events"]["x"] = json!({});
        let jws = jose::sign_jws_ps512(json!({"typ": SET_TYP}), &two, &key).unwrap();
        assert!(verify_set(&jws, &[key.verification_jwk()]).is_err());
        // wrong key
        let other =
            RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/dest-a.pem")).unwrap();
        assert!(matches!(
            verify_set(&token, &[other.verification_jwk()]),
            Err(SetError::Jose(JoseError::Signature))
        ));
    }
}

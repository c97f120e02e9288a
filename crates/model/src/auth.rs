//! Bearer-token principals and their roles.
//!
//! Roles: `sender` may submit to its channels; `operator` sees and replays
//! everything; `tenant` sees only its own Kommune's messages.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    Sender { channels: Vec<String> },
    Operator,
    Tenant { tenant: String },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn may_submit(&self, channel: &str) -> bool {
        match &self.role {
            Role::Sender { channels } => channels.iter().any(|c| c == channel || c == "*"),
            Role::Operator => true,
            Role::Tenant { .. } => false,
        }
    }

    /// May this principal see a message of `tenant` (None = not yet routed)?
    pub fn may_read(&self, tenant: Option<&str>) -> bool {
        match &self.role {
            Role::Operator => true,
            Role::Tenant { tenant: own } => tenant == Some(own.as_str()),
            Role::Sender { .. } => false,
        }
    }

    /// May this principal see this message: [`Principal::may_read`] of its
    /// tenant, or — read-only — the tenant that delegated it.
    pub fn may_read_record(&self, rec: &crate::MessageRecord) -> bool {
        self.may_read(rec.envelope.tenant.as_deref())
            || matches!(&self.role, Role::Tenant { tenant: own }
                if rec.requested_by.as_deref() == Some(own.as_str()))
    }

    pub fn may_replay(&self) -> bool {
        matches!(self.role, Role::Operator)
    }

    /// Tenant filter forced on listings, if any.
    pub fn tenant_scope(&self) -> Option<&str> {
        match &self.role {
            Role::Tenant { tenant } => Some(tenant),
            _ => None,
        }
    }
}

/// The TLS client certificate a caller presented and the hub's TLS
/// listener verified. The listener puts it into the request extensions of
/// every request on that connection; services that bind accounts to
/// certificates (XTA) read it from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 over the DER encoding of the end-entity certificate, lower
    /// case hex without separators.
    pub sha256_hex: String,
    /// The certificate's subject (e.g. `CN=bauamt, O=Kommune Nord`) when it
    /// could be read.
    pub subject: Option<String>,
}

impl ClientCertificate {
    /// Fingerprint of the DER-encoded certificate `der`, with `subject`.
    pub fn from_der(der: &[u8], subject: Option<String>) -> Self {
        Self {
            sha256_hex: hex::encode(Sha256::digest(der)),
            subject,
        }
    }

    /// Does this certificate have the fingerprint `hex` (any case, `:`
    /// separators allowed)?
    pub fn matches(&self, hex: &str) -> bool {
        let want: String = hex
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        want == self.sha256_hex
    }
}

/// The token of an `Authorization: Bearer <token>` header value, or `None`
/// when the value is not a bearer credential.
///
/// This is the one parser every HTTP interface of the hub uses, so they
/// all agree. RFC 9110 §11.1 makes the scheme name case-insensitive
/// (`Bearer`, `bearer` and `BEARER` are the same scheme); the scheme is
/// separated from its credentials by one or more spaces (RFC 9110 §11.4),
/// surrounding white space is ignored, and an empty token or a token with
/// inner white space (RFC 6750 `b64token` has none) is no bearer token.
///
/// ```
/// use drehscheibe_model::auth::bearer_token;
/// assert_eq!(bearer_token("BEARER abc"), Some("abc"));
/// assert_eq!(bearer_token("  bearer   abc "), Some("abc"));
/// assert_eq!(bearer_token("Basic abc"), None);
/// assert_eq!(bearer_token("Bearer"), None);
/// ```
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let valid = !token.is_empty() && !token.contains(|c: char| c.is_ascii_whitespace());
    valid.then_some(token)
}

/// Token table. Tokens are kept only as SHA-256 digests and compared in
/// constant time, so a memory dump or a log line never shows one.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    entries: Vec<([u8; 32], Principal)>,
}

impl TokenTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, token: &str, principal: Principal) {
        self.entries
            .push((Sha256::digest(token.as_bytes()).into(), principal));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Find the principal for a presented bearer token.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (d, p) in &self.entries {
            // constant-time compare; visit every entry
            let diff = d
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(p);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER t0k",
            "bEaReR  t0k ",
            "Bearer\tt0k",
        ] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value:?}");
        }
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Basic t0k",
            "Bearert0k",
            "Bearer a b",
            "t0k",
        ] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn client_certificate_fingerprint_matches_any_spelling() {
        let c = ClientCertificate::from_der(b"abc", None);
        assert_eq!(
            c.sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(c.matches("BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"));
        assert!(!c.matches("ba7816bf"));
    }

    #[test]
    fn tenant_sees_only_its_own_messages() {
        let p = Principal {
            name: "ms".into(),
            role: Role::Tenant {
                tenant: "musterstadt".into(),
            },
        };
        assert!(p.may_read(Some("musterstadt")));
        assert!(!p.may_read(Some("nachbarstadt")));
        assert!(!p.may_read(None));
        assert!(!p.may_replay());
        assert!(!p.may_submit("portal"));
    }

    #[test]
    fn tokens_authenticate_by_digest() {
        let mut t = TokenTable::new();
        t.insert(
            "s3cret",
            Principal {
                name: "op".into(),
                role: Role::Operator,
            },
        );
        assert_eq!(
            t.authenticate("s3cret").map(|p| p.name.as_str()),
            Some("op")
        );
        assert!(t.authenticate("s3cre").is_none());
        assert!(t.authenticate("").is_none());
    }
}

//! Access tokens of the intake's OAuth token endpoint: self-contained
//! JWTs (`HS256`), so every instance of the hub accepts a token any
//! instance issued — a sender's `POST /token` and its next request may
//! reach different instances behind a load balancer.
//!
//! The MAC key is derived from the channel's SET signing key (its private
//! exponent, through SHA-256 with a label and the channel name): every
//! instance has it from the same configuration, nobody else has it, and a
//! new signing key invalidates the tokens issued with the old one. The
//! claims are the client (`sub`), the expiry (`exp`, seconds since the
//! epoch; instances must keep their clocks in step, as for TLS) and a
//! random `jti`. A token names a client that must still be configured
//! when it is used.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jose::RsaPrivateKey;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest token accepted (a bound before any decoding).
const MAX_TOKEN_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    jti: String,
}

/// Why a token is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a token of this channel (malformed, wrong MAC).
    Unknown,
    /// Was one, and expired.
    Expired,
}

/// Issues and checks the tokens of one channel.
pub(crate) struct TokenKey {
    key: [u8; 32],
}

impl TokenKey {
    /// The key of `channel`, derived from its signing key.
    pub(crate) fn derive(channel: &str, signing_key: &RsaPrivateKey) -> Self {
        let mut h = Sha256::new();
        h.update(b"drehscheibe fit-connect access token v1\0");
        h.update(channel.as_bytes());
        h.update([0]);
        h.update(signing_key.secret_exponent());
        Self {
            key: h.finalize().into(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
    }

    /// A token for `client` that expires at `exp` (seconds since the
    /// epoch).
    pub(crate) fn issue(&self, client: &str, exp: i64) -> String {
        let mut jti = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
        let header = B64.encode(br#"{"alg":"HS256","typ":"at+jwt"}"#);
        let claims = Claims {
            sub: client.to_owned(),
            exp,
            jti: B64.encode(jti),
        };
        // Serialising three plain fields cannot fail.
        let claims = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{header}.{claims}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{tag}")
    }

    /// The client of `token` if its MAC holds and it has not expired at
    /// `now` (seconds since the epoch).
    pub(crate) fn check(&self, token: &str, now: i64) -> Result<String, Refused> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refused::Unknown);
        }
        let (signing_input, tag) = token.rsplit_once('.').ok_or(Refused::Unknown)?;
        let tag = B64.decode(tag).map_err(|_| Refused::Unknown)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&tag).map_err(|_| Refused::Unknown)?;
        let (_, claims) = signing_input.split_once('.').ok_or(Refused::Unknown)?;
        let claims = B64.decode(claims).map_err(|_| Refused::Unknown)?;
        let claims: Claims = serde_json::from_slice(&claims).map_err(|_| Refused::Unknown)?;
        if claims.exp <= now {
            return Err(Refused::Expired);
        }
        Ok(claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(file: &str) -> RsaPrivateKey {
        let path = format!("{}/tests/fixtures/keys/{file}", env!("CARGO_MANIFEST_DIR"));
        RsaPrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn tokens_hold_across_instances_and_nowhere_else() {
        let signing = key("signing.pem");
        let a = TokenKey::derive("fit", &signing);
        let b = TokenKey::derive("fit", &key("signing.pem"));
        let t = a.issue("portal", 1_000);
        assert_eq!(b.check(&t, 999).as_deref(), Ok("portal"));
        assert_eq!(b.check(&t, 1_000), Err(Refused::Expired));
        assert_ne!(a.issue("portal", 1_000), t, "a fresh jti every time");
        // Another channel, another signing key, a changed claim, garbage.
        let other_channel = TokenKey::derive("fit2", &signing);
        assert_eq!(other_channel.check(&t, 0), Err(Refused::Unknown));
        let other_key = TokenKey::derive("fit", &key("dest-a.pem"));
        assert_eq!(other_key.check(&t, 0), Err(Refused::Unknown));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(br#"{"sub":"neighbour","exp":99999,"jti":"x"}"#);
        let forged = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(a.check(&forged, 0), Err(Refused::Unknown));
        for junk in ["", ".", "a.b", "a.b.c", &"x".repeat(5000)] {
            assert_eq!(a.check(junk, 0), Err(Refused::Unknown), "{junk:.20}");
        }
    }
}

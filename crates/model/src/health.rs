//! Connector health: what [`Connector::healthcheck`](crate::Connector::healthcheck)
//! reports, and the certificate helper the connectors share.
//!
//! A health check is cheap and read-only: it asks whether the far side
//! answers at all (any HTTP answer counts — a 404 or 405 still proves the
//! host is there; a refused or timed-out connection does not) and when the
//! client certificate the connector presents stops being valid. The
//! engine runs the checks periodically and exposes them as metrics and in
//! `/readyz`; they never take the hub out of service (a Fachverfahren being
//! down is a delivery problem, not the hub's).

use chrono::{DateTime, Utc};

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The far side answers (or the target can be written).
    pub reachable: bool,
    /// What was checked and, when unreachable, why.
    pub detail: String,
    /// End of validity of the client certificate the connector presents.
    pub cert_not_after: Option<DateTime<Utc>>,
    /// What an operator should look at although the far side answers
    /// (e.g. a CRL due for renewal); shown in `/readyz` like an
    /// unreachable endpoint.
    pub notes: Vec<String>,
}

impl Health {
    /// Reachable, with what was checked.
    pub fn up(detail: impl Into<String>) -> Self {
        Self {
            reachable: true,
            detail: detail.into(),
            cert_not_after: None,
            notes: Vec::new(),
        }
    }

    /// Not reachable, with the reason.
    pub fn down(detail: impl Into<String>) -> Self {
        Self {
            reachable: false,
            detail: detail.into(),
            cert_not_after: None,
            notes: Vec::new(),
        }
    }

    /// The same, with the expiry of the certificate chain in `pem` (the
    /// first certificate's `notAfter`); unparsable PEM is noted in the
    /// detail.
    #[must_use]
    pub fn with_cert(mut self, pem: Option<&[u8]>) -> Self {
        if let Some(pem) = pem {
            match cert_not_after(pem) {
                Some(t) => self.cert_not_after = Some(t),
                None => self.detail.push_str("; client certificate unreadable"),
            }
        }
        self
    }
}

/// What a running input adapter reports besides messages: counters for
/// `/metrics` (`drehscheibe_channel_events_total{channel, event}`) and
/// lines for `/readyz` when something needs an operator — e.g. receipts
/// the far side keeps refusing. Like connector health, none of it makes
/// the hub unready. A channel hands one out with its adapter
/// (`Adapter::status` in the config crate's plugin module).
pub trait ChannelStatus: Send + Sync {
    /// Monotonic counts since the adapter started, by event name
    /// (`snake_case`).
    fn counters(&self) -> Vec<(&'static str, u64)>;
    /// What an operator should look at now (empty: nothing).
    fn attention(&self) -> Vec<String>;
}

/// `notAfter` of the first certificate in a PEM file.
pub fn cert_not_after(pem: &[u8]) -> Option<DateTime<Utc>> {
    use x509_cert::der::DecodePem;
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = text[start..].find(end_marker)? + start + end_marker.len();
    let cert = x509_cert::Certificate::from_pem(&text[start..end]).ok()?;
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(cert_not_after(b"not a pem"), None);
        assert_eq!(
            cert_not_after(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            None
        );
        let h = Health::up("x").with_cert(Some(b"garbage"));
        assert!(h.detail.contains("unreadable"));
    }
}

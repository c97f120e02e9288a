use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifier of a message. A UUIDv7: time-ordered, so ids sort by arrival
/// and make good keys for ordered stores.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(uuid::Uuid);

/// A string that is not a message id.
#[derive(Debug, thiserror::Error)]
#[error("not a message id: {0:?}")]
pub struct IdError(pub String);

impl MessageId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The 16 raw bytes, big-endian; byte order equals time order.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Rebuild from the 16 raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0.hyphenated())
    }
}

impl FromStr for MessageId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b, "v7 ids must be time ordered");
        assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
        assert_eq!(MessageId::from_bytes(*a.as_bytes()), a);
        assert!("not-an-id".parse::<MessageId>().is_err());
    }
}

use std::fmt;

use serde::{Deserialize, Serialize};

/// Life cycle of a message.
///
/// ```text
/// received ──► routed ──► delivering ──► delivered
///    │  ▲         │            │  ▲
///    │  │         ▼            ▼  │ (retry due)
///    │  │       dead ◄──── failed
///    ▼  │ (release)
/// rejected, quarantined
/// ```
///
/// `failed` means "will retry"; `dead` means "gave up, needs a person";
/// `rejected` means "bad input, reason recorded"; `quarantined` means
/// "the malware scanner found something: kept, never delivered" (ADR
/// 0017). `replay` moves `dead`, `delivered` and `rejected` messages back
/// into the pipeline; only an operator's *release* (with a reason) moves a
/// quarantined one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Received,
    Routed,
    Delivering,
    Delivered,
    Failed,
    Dead,
    Rejected,
    Quarantined,
}

/// A state change the machine does not allow.
#[derive(Debug, thiserror::Error)]
#[error("invalid state transition {from} → {to}")]
pub struct InvalidTransition {
    pub from: MessageState,
    pub to: MessageState,
}

impl MessageState {
    pub const ALL: [MessageState; 8] = [
        Self::Received,
        Self::Routed,
        Self::Delivering,
        Self::Delivered,
        Self::Failed,
        Self::Dead,
        Self::Rejected,
        Self::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Routed => "routed",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
        }
    }

    /// Terminal states need a person (or a replay) to move again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Dead | Self::Rejected | Self::Quarantined
        )
    }

    /// May a message in this state be replayed? (A quarantined one is
    /// released, not replayed.)
    pub fn is_replayable(self) -> bool {
        self.is_terminal() && self != Self::Quarantined
    }

    /// Check a transition against the machine. Staying in the same state is
    /// allowed (e.g. another delivery attempt while `delivering`).
    pub fn check(self, to: MessageState) -> Result<(), InvalidTransition> {
        use MessageState::*;
        let ok = self == to
            || matches!(
                (self, to),
                (Received, Routed | Rejected | Dead | Failed | Quarantined)
                    | (Routed, Delivering | Delivered | Failed | Dead | Rejected)
                    | (Delivering, Delivered | Failed | Dead)
                    | (Failed, Delivering | Delivered | Dead | Failed | Routed | Rejected)
                    // replay
                    | (Dead | Delivered, Delivering | Received)
                    | (Rejected, Received)
                    // an operator's release
                    | (Quarantined, Received)
            );
        if ok {
            Ok(())
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::MessageState::*;
    use super::*;

    #[test]
    fn happy_path_is_allowed() {
        assert!(Received.check(Routed).is_ok());
        assert!(Routed.check(Delivering).is_ok());
        assert!(Delivering.check(Delivered).is_ok());
    }

    #[test]
    fn terminal_states_only_move_by_replay() {
        assert!(Delivered.check(Routed).is_err());
        assert!(Rejected.check(Delivering).is_err());
        assert!(Dead.check(Delivering).is_ok());
        assert!(Rejected.check(Received).is_ok());
        assert!(Received.check(Delivered).is_err());
        assert!(Received.check(Quarantined).is_ok());
        assert!(Quarantined.check(Received).is_ok());
        assert!(Quarantined.check(Delivering).is_err());
        assert!(Quarantined.is_terminal() && !Quarantined.is_replayable());
    }

    #[test]
    fn states_parse_from_their_names() {
        for s in MessageState::ALL {
            assert_eq!(s.as_str().parse::<MessageState>().unwrap(), s);
        }
        assert!("lost".parse::<MessageState>().is_err());
    }
}

//! Errors of the XTA client and how they map to "retry" or "dead".

use std::fmt;

/// The XTA web-service exceptions (elements of
/// `XTA-Webservice-Exceptions.xsd`) a fault detail may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `XTAWSTechnicalProblemException` (9030–9032): the server has a
    /// technical problem; trying again later can help.
    TechnicalProblem,
    /// `PermissionDeniedException` (9000, 9010–9014).
    PermissionDenied,
    /// `ParameterIsNotValidException` (9020–9024).
    ParameterIsNotValid,
    /// `InvalidMessageIDException` (9070).
    InvalidMessageId,
    /// `MessageSchemaViolationException` (9050–9052).
    MessageSchemaViolation,
    /// `MessageVirusDetectionException` (9060).
    MessageVirusDetection,
    /// `SyncAsyncException` (9080/9081).
    SyncAsync,
    /// `CancelDeniedException` (9100/9101).
    CancelDenied,
    /// A SOAP fault without one of the XTA exceptions in its detail;
    /// `receiver` is true for `soap:Receiver` (server side) faults.
    Generic {
        /// `soap:Receiver` (true) or `soap:Sender`/other (false).
        receiver: bool,
    },
}

impl FaultKind {
    /// The classification table: only technical problems (and generic
    /// `soap:Receiver` faults) are worth another attempt; permission,
    /// parameter, schema, virus, message-id, sync/async and cancel faults
    /// will answer the same way next time.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::TechnicalProblem => true,
            Self::Generic { receiver } => receiver,
            Self::PermissionDenied
            | Self::ParameterIsNotValid
            | Self::InvalidMessageId
            | Self::MessageSchemaViolation
            | Self::MessageVirusDetection
            | Self::SyncAsync
            | Self::CancelDenied => false,
        }
    }

    /// Kind named by an exception element's local name.
    pub fn from_element(local: &str) -> Option<Self> {
        Some(match local {
            "XTAWSTechnicalProblemException" => Self::TechnicalProblem,
            "PermissionDeniedException" => Self::PermissionDenied,
            "ParameterIsNotValidException" => Self::ParameterIsNotValid,
            "InvalidMessageIDException" => Self::InvalidMessageId,
            "MessageSchemaViolationException" => Self::MessageSchemaViolation,
            "MessageVirusDetectionException" => Self::MessageVirusDetection,
            "SyncAsyncException" => Self::SyncAsync,
            "CancelDeniedException" => Self::CancelDenied,
            _ => return None,
        })
    }

    /// The exception element's local name (`SoapFault` for generic faults).
    pub fn element(self) -> &'static str {
        match self {
            Self::TechnicalProblem => "XTAWSTechnicalProblemException",
            Self::PermissionDenied => "PermissionDeniedException",
            Self::ParameterIsNotValid => "ParameterIsNotValidException",
            Self::InvalidMessageId => "InvalidMessageIDException",
            Self::MessageSchemaViolation => "MessageSchemaViolationException",
            Self::MessageVirusDetection => "MessageVirusDetectionException",
            Self::SyncAsync => "SyncAsyncException",
            Self::CancelDenied => "CancelDeniedException",
            Self::Generic { .. } => "SoapFault",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.element())
    }
}

/// A SOAP fault as the XTA server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which exception.
    pub kind: FaultKind,
    /// `errorCode/code` (e.g. `9024`), when present.
    pub code: Option<String>,
    /// `errorCode/name`, else the fault's `Reason/Text`.
    pub reason: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Failure of one call to a remote XTA server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    #[error("{operation}: {reason}")]
    Network {
        /// The XTA operation, e.g. `sendMessage`.
        operation: &'static str,
        /// The transport error.
        reason: String,
    },
    /// The server answered with a SOAP fault.
    #[error("{operation}: {fault}")]
    Fault {
        /// The XTA operation.
        operation: &'static str,
        /// The fault.
        fault: Fault,
    },
    /// The server answered with an HTTP error status and no SOAP fault.
    #[error("{operation}: HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The XTA operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The answer is not what the WSDL describes.
    #[error("{operation}: unexpected answer: {reason}")]
    Invalid {
        /// The XTA operation.
        operation: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Local content could not be read or stored (blob store).
    #[error("{operation}: {reason}")]
    Local {
        /// The XTA operation.
        operation: &'static str,
        /// What failed.
        reason: String,
        /// Whether it may work later (I/O) or not (missing blob).
        retryable: bool,
    },
    /// A setting cannot be used (bad URL, unreadable certificate).
    #[error("xta client: {0}")]
    Config(String),
}

impl ClientError {
    /// Whether trying again later can help: network failures,
    /// `XTAWSTechnicalProblemException`, generic `soap:Receiver` faults,
    /// HTTP `408`, `429`, `5xx` without fault, local I/O problems.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::Fault { fault, .. } => fault.kind.is_retryable(),
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Local { retryable, .. } => *retryable,
            Self::Invalid { .. } | Self::Config(_) => false,
        }
    }

    /// The fault, for [`ClientError::Fault`].
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }

    pub(crate) fn network(operation: &'static str, e: &reqwest::Error) -> Self {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        Self::Network { operation, reason }
    }

    pub(crate) fn invalid(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            operation,
            reason: reason.into(),
        }
    }
}

impl From<ClientError> for drehscheibe_model::DeliveryError {
    fn from(e: ClientError) -> Self {
        if e.is_retryable() {
            Self::retryable(e.to_string())
        } else {
            Self::permanent(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind) -> ClientError {
        ClientError::Fault {
            operation: "sendMessage",
            fault: Fault {
                kind,
                code: None,
                reason: String::new(),
            },
        }
    }

    #[test]
    fn classification_table() {
        assert!(fault(FaultKind::TechnicalProblem).is_retryable());
        assert!(fault(FaultKind::Generic { receiver: true }).is_retryable());
        for dead in [
            FaultKind::PermissionDenied,
            FaultKind::ParameterIsNotValid,
            FaultKind::InvalidMessageId,
            FaultKind::MessageSchemaViolation,
            FaultKind::MessageVirusDetection,
            FaultKind::SyncAsync,
            FaultKind::CancelDenied,
            FaultKind::Generic { receiver: false },
        ] {
            assert!(!fault(dead).is_retryable(), "{dead}");
        }
        let st = |status| ClientError::Status {
            operation: "x",
            status,
            body: String::new(),
        };
        assert!(st(500).is_retryable() && st(503).is_retryable() && st(429).is_retryable());
        assert!(!st(400).is_retryable() && !st(404).is_retryable());
        assert!(ClientError::Network {
            operation: "x",
            reason: "refused".into()
        }
        .is_retryable());
        assert!(!ClientError::invalid("x", "garbage").is_retryable());
    }

    #[test]
    fn element_names_round_trip() {
        for k in [
            FaultKind::TechnicalProblem,
            FaultKind::PermissionDenied,
            FaultKind::ParameterIsNotValid,
            FaultKind::InvalidMessageId,
            FaultKind::MessageSchemaViolation,
            FaultKind::MessageVirusDetection,
            FaultKind::SyncAsync,
            FaultKind::CancelDenied,
        ] {
            assert_eq!(FaultKind::from_element(k.element()), Some(k));
        }
        assert_eq!(FaultKind::from_element("Other"), None);
    }

    #[test]
    fn display_names_exception_and_code() {
        let e = ClientError::Fault {
            operation: "sendMessage",
            fault: Fault {
                kind: FaultKind::ParameterIsNotValid,
                code: Some("9024".into()),
                reason: "MessageID already used".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "sendMessage: ParameterIsNotValidException 9024: MessageID already used"
        );
    }
}

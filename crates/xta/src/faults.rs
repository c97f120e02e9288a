//! SOAP 1.2 faults: the eight XTA exception types (with their
//! `errorCode` from the code list `urn:de:xta:webservice:codeliste:fehlernummer`)
//! and the protocol-level faults (SOAP `VersionMismatch`, `Sender`,
//! WS-Addressing `MessageAddressingHeaderRequired`/`ActionNotSupported`).
//!
//! # Version mismatch
//!
//! A client speaking the wrong SOAP version cannot read a SOAP 1.2 fault,
//! so the answer depends on what it sent (SOAP 1.2 part 1, section 5.4.7
//! and appendix A):
//!
//! * a SOAP 1.1 request (`text/xml`, or an envelope in the SOAP 1.1
//!   namespace) gets a **SOAP 1.1** fault ([`Fault::Soap11VersionMismatch`]):
//!   envelope in the SOAP 1.1 namespace, `faultcode` `VersionMismatch`,
//!   HTTP 500, `Content-Type: text/xml`;
//! * an envelope in any other unknown namespace gets a SOAP 1.2
//!   `env:VersionMismatch` fault.
//!
//! Both carry an `Upgrade` header block (in the SOAP 1.2 namespace) that
//! lists the one envelope the server supports, so the client learns what
//! to send instead:
//!
//! ```xml
//! <upg:Upgrade xmlns:upg="http://www.w3.org/2003/05/soap-envelope">
//!   <upg:SupportedEnvelope qname="ns1:Envelope"
//!       xmlns:ns1="http://www.w3.org/2003/05/soap-envelope"/>
//! </upg:Upgrade>
//! ```

use std::fmt::Write as _;

use crate::model::{esc, NS_SOAP11, NS_SOAP12, NS_XTA};
use crate::soap::XmlElement;

/// Media type of SOAP 1.2 messages (the server's normal answers).
pub const SOAP12_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
/// Media type of SOAP 1.1 messages (only the SOAP 1.1 version mismatch
/// fault).
pub const SOAP11_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The `Upgrade` header block (SOAP 1.2 part 1, section 5.4.7) naming the
/// SOAP 1.2 envelope as the only one supported, with `prefix` bound to the
/// SOAP 1.2 namespace on the element itself (so it can stand in a SOAP 1.1
/// envelope as well).
pub fn upgrade_header(prefix: &str) -> String {
    format!(
        "<{prefix}:Upgrade xmlns:{prefix}=\"{NS_SOAP12}\"><{prefix}:SupportedEnvelope qname=\"ns1:Envelope\" xmlns:ns1=\"{NS_SOAP12}\"/></{prefix}:Upgrade>"
    )
}

/// Code list URI of the XTA error codes.
pub const ERROR_CODE_LIST: &str = "urn:de:xta:webservice:codeliste:fehlernummer";
/// WS-Addressing action of protocol-level faults.
pub const WSA_FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

/// The XTA exception element carried in a fault's `Detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XtaFaultKind {
    /// `XTAWSTechnicalProblemException` (90xx technical, retry later).
    TechnicalProblem,
    /// `PermissionDeniedException`.
    PermissionDenied,
    /// `ParameterIsNotValidException`.
    ParameterIsNotValid,
    /// `InvalidMessageIDException`.
    InvalidMessageId,
    /// `MessageSchemaViolationException`.
    MessageSchemaViolation,
    /// `MessageVirusDetectionException`.
    MessageVirusDetection,
    /// `SyncAsyncException`.
    SyncAsync,
    /// `CancelDeniedException`.
    CancelDenied,
}

impl XtaFaultKind {
    /// All kinds.
    pub const ALL: [XtaFaultKind; 8] = [
        Self::TechnicalProblem,
        Self::PermissionDenied,
        Self::ParameterIsNotValid,
        Self::InvalidMessageId,
        Self::MessageSchemaViolation,
        Self::MessageVirusDetection,
        Self::SyncAsync,
        Self::CancelDenied,
    ];

    /// Local name of the exception element.
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
        }
    }

    /// Whether the sender is at fault (SOAP `env:Sender`, HTTP 400) or the
    /// server (`env:Receiver`, HTTP 500).
    pub fn is_sender_fault(self) -> bool {
        !matches!(self, Self::TechnicalProblem)
    }

    /// Kind from an exception element's local name.
    pub fn from_element(local: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.element() == local)
    }
}

/// Name of an XTA error code from the code list (German, as published).
pub fn error_code_name(code: u16) -> &'static str {
    match code {
        9010 => "Authentisierung/Zertifikat ist abgelaufen.",
        9011 => "Account ist gesperrt.",
        9012 => "Account nicht vorhanden.",
        9013 => "Dienst ist nicht gebucht.",
        9014 => "Authentisierung/Zertifikat passt nicht zur Absenderkennung.",
        9020 => "Keine Parameter vorhanden",
        9021 => "Keine gültige URI",
        9022 => "Ungültige Parameterkombination",
        9023 => "Die Nachricht überschreitet die Größenbeschränkung.",
        9024 => "MessageID ist bereits vergeben.",
        9030 => "Interner Fehler beim XTA-Server bzw. XTA-Dienstleister",
        9031 => "Fehler beim externen Verzeichnisdienst",
        9032 => "Fehler bei der Zustellung",
        9050 => "Fachnachricht ist nicht schemakonform",
        9051 => "Fachnachricht trägt ein falsches Encoding.",
        9052 => "Nachricht verletzt das entsprechende Service Profil.",
        9060 => "Es wurde schadhafter Code ermittelt.",
        9070 => "MessageID für den Account nicht bekannt.",
        9080 => "Der Dienst wird nur asynchron angeboten.",
        9081 => "Der Dienst wird nur synchron angeboten.",
        9100 => "Der durch den Schalter NotBefore gesetzte Termin ist verstrichen.",
        9101 => "Der Schalter NotBefore wurde nicht gesetzt.",
        _ => "Unspezifizierter Fehler, als Freitext beschrieben",
    }
}

/// An XTA exception: kind, error code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {code}: {reason}", kind.element())]
pub struct XtaFault {
    /// Exception element.
    pub kind: XtaFaultKind,
    /// Error code (9000…9101).
    pub code: u16,
    /// Reason text (SOAP `Reason`).
    pub reason: String,
}

impl XtaFault {
    /// A new fault.
    pub fn new(kind: XtaFaultKind, code: u16, reason: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            reason: reason.into(),
        }
    }
    /// 9030 internal error.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(XtaFaultKind::TechnicalProblem, 9030, reason)
    }
    /// 9012 account unknown / not authenticated.
    pub fn unknown_account(reason: impl Into<String>) -> Self {
        Self::new(XtaFaultKind::PermissionDenied, 9012, reason)
    }
    /// 9014 identity does not match the party in the request.
    pub fn foreign_party(reason: impl Into<String>) -> Self {
        Self::new(XtaFaultKind::PermissionDenied, 9014, reason)
    }
    /// 9022 invalid parameters.
    pub fn invalid_parameter(reason: impl Into<String>) -> Self {
        Self::new(XtaFaultKind::ParameterIsNotValid, 9022, reason)
    }
    /// 9070 message id unknown for the account.
    pub fn unknown_message(reason: impl Into<String>) -> Self {
        Self::new(XtaFaultKind::InvalidMessageId, 9070, reason)
    }

    /// Read a fault's `Detail` child (an XTA exception element).
    pub fn from_detail(detail_child: &XmlElement, reason: &str) -> Option<Self> {
        if detail_child.ns.as_deref() != Some(NS_XTA) {
            return None;
        }
        let kind = XtaFaultKind::from_element(&detail_child.local)?;
        let code = detail_child
            .child(NS_XTA, "errorCode")
            .and_then(|e| e.child_local("code"))
            .and_then(|c| c.text().trim().parse::<u16>().ok())
            .unwrap_or(9000);
        Some(Self::new(kind, code, reason))
    }
}

/// A SOAP 1.2 fault code value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapCode {
    /// `env:VersionMismatch`.
    VersionMismatch,
    /// `env:Sender`.
    Sender,
    /// `env:Receiver`.
    Receiver,
    /// `env:MustUnderstand`.
    MustUnderstand,
}

impl SoapCode {
    fn value(self) -> &'static str {
        match self {
            Self::VersionMismatch => "env:VersionMismatch",
            Self::Sender => "env:Sender",
            Self::Receiver => "env:Receiver",
            Self::MustUnderstand => "env:MustUnderstand",
        }
    }
}

/// Any fault the server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// An XTA exception (application level).
    #[error(transparent)]
    Xta(#[from] XtaFault),
    /// The answer to a SOAP 1.1 request: a SOAP 1.1 `VersionMismatch`
    /// fault with an `Upgrade` header block (see the module docs).
    #[error("{reason}")]
    Soap11VersionMismatch {
        /// `faultstring`.
        reason: String,
    },
    /// A protocol-level SOAP fault.
    #[error("{reason}")]
    Soap {
        /// Code value.
        code: SoapCode,
        /// WS-Addressing subcode (`wsa:` local name), if any.
        wsa_subcode: Option<&'static str>,
        /// Reason text.
        reason: String,
        /// Problem header QName for WS-Addressing faults.
        problem_header: Option<&'static str>,
        /// The header block not understood (`env:MustUnderstand` faults):
        /// namespace and local name, echoed in an `env:NotUnderstood`
        /// header.
        not_understood: Option<(String, String)>,
    },
}

impl Fault {
    /// `env:Sender` without subcode.
    pub fn sender(reason: impl Into<String>) -> Self {
        Self::Soap {
            code: SoapCode::Sender,
            wsa_subcode: None,
            reason: reason.into(),
            problem_header: None,
            not_understood: None,
        }
    }

    /// HTTP status for the SOAP 1.2 HTTP binding (400 for `env:Sender`,
    /// 500 otherwise).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Xta(x) if x.kind.is_sender_fault() => 400,
            Self::Xta(_) => 500,
            Self::Soap {
                code: SoapCode::Sender,
                ..
            } => 400,
            // Receiver, VersionMismatch, MustUnderstand (SOAP 1.2 part 2,
            // table 20).
            Self::Soap { .. } => 500,
            // SOAP 1.1 HTTP binding: every fault is a 500.
            Self::Soap11VersionMismatch { .. } => 500,
        }
    }

    /// `Content-Type` of the fault message: `text/xml` for the SOAP 1.1
    /// fault, `application/soap+xml` for every other.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Soap11VersionMismatch { .. } => SOAP11_CONTENT_TYPE,
            _ => SOAP12_CONTENT_TYPE,
        }
    }

    /// The SOAP 1.1 fault of SOAP 1.2 part 1, appendix A (example 10 there).
    fn soap11_envelope(reason: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{NS_SOAP11}\"><env:Header>{}</env:Header><env:Body><env:Fault><faultcode>env:VersionMismatch</faultcode><faultstring>{}</faultstring></env:Fault></env:Body></env:Envelope>",
            upgrade_header("upg"),
            esc(reason)
        )
    }

    /// The fault as a complete SOAP 1.2 envelope. XTA faults carry the
    /// operation's action (as the WSDL's `wsam:Action` on each fault);
    /// protocol faults carry the WS-Addressing SOAP fault action.
    ///
    /// [`Fault::Soap11VersionMismatch`] is the exception: a SOAP 1.1
    /// envelope without WS-Addressing headers (the client speaks neither
    /// SOAP 1.2 nor, necessarily, WS-Addressing).
    pub fn to_envelope(&self, action: Option<&str>, relates_to: Option<&str>) -> String {
        let mut body = String::new();
        let (code, subcode, reason) = match self {
            Self::Soap11VersionMismatch { reason } => return Self::soap11_envelope(reason),
            Self::Xta(x) => (
                if x.kind.is_sender_fault() {
                    SoapCode::Sender
                } else {
                    SoapCode::Receiver
                },
                None,
                x.reason.as_str(),
            ),
            Self::Soap {
                code,
                wsa_subcode,
                reason,
                ..
            } => (*code, *wsa_subcode, reason.as_str()),
        };
        let _ = write!(
            body,
            "<env:Fault><env:Code><env:Value>{}</env:Value>",
            code.value()
        );
        if let Some(s) = subcode {
            let _ = write!(
                body,
                "<env:Subcode><env:Value>wsa:{s}</env:Value></env:Subcode>"
            );
        }
        let _ = write!(
            body,
            "</env:Code><env:Reason><env:Text xml:lang=\"en\">{}</env:Text></env:Reason>",
            esc(reason)
        );
        match self {
            Self::Xta(x) => {
                let _ = write!(
                    body,
                    "<env:Detail><xta:{el} xmlns:xta=\"{NS_XTA}\"><xta:errorCode listURI=\"{ERROR_CODE_LIST}\" listVersionID=\"1.0\"><code>{code}</code><name>{name}</name></xta:errorCode></xta:{el}></env:Detail>",
                    el = x.kind.element(),
                    code = x.code,
                    name = esc(error_code_name(x.code)),
                );
            }
            Self::Soap {
                problem_header: Some(h),
                ..
            } => {
                let _ = write!(
                    body,
                    "<env:Detail><wsa:ProblemHeaderQName>{h}</wsa:ProblemHeaderQName></env:Detail>"
                );
            }
            Self::Soap { .. } | Self::Soap11VersionMismatch { .. } => {}
        }
        body.push_str("</env:Fault>");
        let action = match self {
            Self::Xta(_) => action.unwrap_or(WSA_FAULT_ACTION),
            Self::Soap { .. } | Self::Soap11VersionMismatch { .. } => WSA_FAULT_ACTION,
        };
        let mut headers = String::new();
        if let Self::Soap {
            not_understood: Some((ns, local)),
            ..
        } = self
        {
            let _ = write!(
                headers,
                "<env:NotUnderstood xmlns:nu=\"{}\" qname=\"nu:{}\"/>",
                esc(ns),
                esc(local)
            );
        }
        if let Self::Soap {
            code: SoapCode::VersionMismatch,
            ..
        } = self
        {
            // Section 5.4.7: a VersionMismatch fault SHOULD name the
            // supported envelopes.
            headers.push_str(&upgrade_header("env"));
        }
        crate::soap::response_envelope(action, relates_to, &headers, &body)
    }
}

impl From<crate::soap::SoapError> for Fault {
    fn from(e: crate::soap::SoapError) -> Self {
        use crate::soap::SoapError as E;
        match e {
            E::Soap11Envelope => Fault::Soap11VersionMismatch {
                reason: e.to_string(),
            },
            E::VersionMismatch => Fault::Soap {
                code: SoapCode::VersionMismatch,
                wsa_subcode: None,
                reason: e.to_string(),
                problem_header: None,
                not_understood: None,
            },
            E::AddressingHeaderRequired(h) => Fault::Soap {
                code: SoapCode::Sender,
                wsa_subcode: Some("MessageAddressingHeaderRequired"),
                reason: e.to_string(),
                problem_header: Some(h),
                not_understood: None,
            },
            E::InvalidAddressingHeader(h) => Fault::Soap {
                code: SoapCode::Sender,
                wsa_subcode: Some("InvalidAddressingHeader"),
                reason: e.to_string(),
                problem_header: Some(if h == "Action" {
                    "wsa:Action"
                } else if h == "MessageID" {
                    "wsa:MessageID"
                } else {
                    "wsa:To"
                }),
                not_understood: None,
            },
            E::MustUnderstand(ref q) => Fault::Soap {
                code: SoapCode::MustUnderstand,
                wsa_subcode: None,
                reason: e.to_string(),
                problem_header: None,
                not_understood: Some(q.clone()),
            },
            E::Xml(_) | E::NotSoap(_) => Fault::sender(e.to_string()),
        }
    }
}

/// A fault for an action this service does not offer.
pub fn action_not_supported(action: &str) -> Fault {
    Fault::Soap {
        code: SoapCode::Sender,
        wsa_subcode: Some("ActionNotSupported"),
        reason: format!("action {action:?} is not supported by this endpoint"),
        problem_header: None,
        not_understood: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xta_fault_envelope_round_trips() {
        let f = Fault::from(XtaFault::unknown_message("no such message"));
        assert_eq!(f.http_status(), 400);
        let xml = f.to_envelope(Some("urn:act"), Some("urn:uuid:1"));
        let env = crate::soap::parse_xml(xml.as_bytes()).unwrap();
        let body = env.child(NS_SOAP12, "Body").unwrap();
        let fault = body.child(NS_SOAP12, "Fault").unwrap();
        let detail = fault.child(NS_SOAP12, "Detail").unwrap();
        let x = XtaFault::from_detail(detail.elements().next().unwrap(), "r").unwrap();
        assert_eq!(x.kind, XtaFaultKind::InvalidMessageId);
        assert_eq!(x.code, 9070);
    }
}

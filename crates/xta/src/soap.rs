//! SOAP 1.2 envelopes with WS-Addressing 1.0 headers.
//!
//! Only SOAP 1.2 is served. An envelope in the SOAP 1.1 namespace is
//! recognised as such ([`SoapError::Soap11Envelope`]) so the server can
//! answer it the way SOAP 1.2 part 1, appendix A asks: with a fault a
//! SOAP 1.1 client understands (see [`crate::faults`]).
//!
//! Parsing uses quick-xml's namespace-aware streaming reader and builds a
//! small element tree of the (size-limited) SOAP part only; message content
//! travels in MTOM parts and never enters this tree. DTDs are refused
//! (no entity expansion), nesting depth is bounded.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::model::{esc, NS_SOAP11, NS_SOAP12, NS_WSA};

/// Deepest element nesting accepted in a SOAP part.
pub const MAX_DEPTH: usize = 64;

/// An XML element of a parsed SOAP part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlElement {
    /// Namespace URI, if any.
    pub ns: Option<String>,
    /// Local name.
    pub local: String,
    /// Attributes: (namespace, local name, value). Namespace declarations
    /// are not included.
    pub attrs: Vec<(Option<String>, String, String)>,
    /// Child nodes in document order.
    pub children: Vec<XmlNode>,
}

/// A child node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlNode {
    /// An element.
    Element(XmlElement),
    /// Character data (unescaped).
    Text(String),
}

impl XmlElement {
    /// Whether the element has this namespace and local name.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    /// Concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            if let XmlNode::Text(t) = c {
                s.push_str(t);
            }
        }
        s
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|c| match c {
            XmlNode::Element(e) => Some(e),
            XmlNode::Text(_) => None,
        })
    }

    /// First child element with this namespace and local name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&XmlElement> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// First child element with this local name and no namespace.
    pub fn child_local(&self, local: &str) -> Option<&XmlElement> {
        self.elements().find(|e| e.ns.is_none() && e.local == local)
    }

    /// All child elements with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a XmlElement> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// Value of an attribute without namespace.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, l, _)| ns.is_none() && l == local)
            .map(|(_, _, v)| v.as_str())
    }
}

/// Why a SOAP request could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// Not well-formed XML (or a DTD, or too deep).
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not a SOAP envelope.
    #[error("not a SOAP envelope: {0}")]
    NotSoap(String),
    /// A SOAP 1.1 envelope (namespace [`NS_SOAP11`]). SOAP 1.2 part 1,
    /// appendix A: answered with a SOAP 1.1 `VersionMismatch` fault that
    /// names the supported envelope in an `Upgrade` header block.
    #[error("SOAP version mismatch: a SOAP 1.1 envelope; only SOAP 1.2 ({NS_SOAP12}) is served")]
    Soap11Envelope,
    /// An envelope of an unknown SOAP version (neither 1.1 nor 1.2).
    #[error("SOAP version mismatch: only SOAP 1.2 ({NS_SOAP12}) is served")]
    VersionMismatch,
    /// A required WS-Addressing header is missing.
    #[error("WS-Addressing header {0} is required")]
    AddressingHeaderRequired(&'static str),
    /// A WS-Addressing header is invalid (e.g. duplicated).
    #[error("invalid WS-Addressing header {0}")]
    InvalidAddressingHeader(&'static str),
    /// A header block marked `mustUnderstand` that this server does not
    /// process: (namespace, local name).
    #[error("header block {{{}}}{} is not understood", .0.0, .0.1)]
    MustUnderstand((String, String)),
}

/// Header blocks the server processes (others may be present but must not
/// be marked `mustUnderstand`).
fn understood(h: &XmlElement) -> bool {
    h.ns.as_deref() == Some(NS_WSA)
        || h.is(crate::model::NS_OSCIMETA, "MessageMetaData")
        || h.is(crate::model::NS_OSCIMETA, "Author")
}

fn resolve(r: ResolveResult<'_>) -> Result<Option<String>, SoapError> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(SoapError::Xml(format!(
            "unknown namespace prefix {:?}",
            String::from_utf8_lossy(&p)
        ))),
    }
}

fn start_element(
    reader: &NsReader<&[u8]>,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<XmlElement, SoapError> {
    let (ns, _) = reader.resolve_element(e.name());
    let ns = resolve(ns)?;
    let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| SoapError::Xml(e.to_string()))?;
        let key = a.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ans, alocal) = reader.resolve_attribute(key);
        let ans = resolve(ans)?;
        let value = a
            .unescape_value()
            .map_err(|e| SoapError::Xml(e.to_string()))?
            .into_owned();
        attrs.push((
            ans,
            String::from_utf8_lossy(alocal.as_ref()).into_owned(),
            value,
        ));
    }
    Ok(XmlElement {
        ns,
        local,
        attrs,
        children: Vec::new(),
    })
}

/// Parse a whole XML document into its root element.
pub fn parse_xml(bytes: &[u8]) -> Result<XmlElement, SoapError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut root: Option<XmlElement> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| SoapError::Xml(e.to_string()))?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(SoapError::Xml("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(SoapError::Xml(format!("nesting deeper than {MAX_DEPTH}")));
                }
                let el = start_element(&reader, &e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(SoapError::Xml("content after the root element".into()));
                }
                let el = start_element(&reader, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(XmlNode::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| SoapError::Xml("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(XmlNode::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| SoapError::Xml(e.to_string()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(XmlNode::Text(s.into_owned())),
                    None => {
                        if !s.trim().is_empty() {
                            return Err(SoapError::Xml("text outside the root element".into()));
                        }
                    }
                }
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(&t.into_inner()).into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(XmlNode::Text(s)),
                    None => return Err(SoapError::Xml("CDATA outside the root element".into())),
                }
            }
            Event::DocType(_) => {
                return Err(SoapError::Xml("DTDs are not accepted".into()));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(SoapError::Xml("document ends inside an element".into()));
    }
    root.ok_or_else(|| SoapError::Xml("no root element".into()))
}

/// The WS-Addressing headers of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    /// `wsa:Action`.
    pub action: String,
    /// `wsa:MessageID` (echoed as `wsa:RelatesTo`).
    pub message_id: Option<String>,
    /// `wsa:To`.
    pub to: Option<String>,
}

/// A parsed SOAP 1.2 request envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// WS-Addressing headers.
    pub addressing: Addressing,
    /// Header blocks (all of them, WS-Addressing included).
    pub headers: Vec<XmlElement>,
    /// The first child element of `Body` (document/literal: the request
    /// element), or `None` for an empty body.
    pub body: Option<XmlElement>,
}

impl Envelope {
    /// First header block with this name.
    pub fn header(&self, ns: &str, local: &str) -> Option<&XmlElement> {
        self.headers.iter().find(|h| h.is(ns, local))
    }
}

/// Parse and check a SOAP 1.2 envelope; WS-Addressing `Action` is required.
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, SoapError> {
    let root = parse_xml(bytes)?;
    if root.local != "Envelope" {
        return Err(SoapError::NotSoap(format!(
            "root element is {:?}, not Envelope",
            root.local
        )));
    }
    match root.ns.as_deref() {
        Some(NS_SOAP12) => {}
        Some(NS_SOAP11) => return Err(SoapError::Soap11Envelope),
        _ => return Err(SoapError::VersionMismatch),
    }
    let mut headers = Vec::new();
    let mut body = None;
    let mut seen_body = false;
    for e in root.elements() {
        if e.is(NS_SOAP12, "Header") && !seen_body && headers.is_empty() {
            headers = e.elements().cloned().collect();
        } else if e.is(NS_SOAP12, "Body") && !seen_body {
            seen_body = true;
            body = e.elements().next().cloned();
        } else {
            return Err(SoapError::NotSoap(format!(
                "unexpected element {:?} in Envelope",
                e.local
            )));
        }
    }
    if !seen_body {
        return Err(SoapError::NotSoap("Envelope has no Body".into()));
    }
    for h in &headers {
        let must = h.attrs.iter().any(|(ns, l, v)| {
            ns.as_deref() == Some(NS_SOAP12)
                && l == "mustUnderstand"
                && matches!(v.trim(), "true" | "1")
        });
        if must && !understood(h) {
            return Err(SoapError::MustUnderstand((
                h.ns.clone().unwrap_or_default(),
                h.local.clone(),
            )));
        }
    }
    let single = |name: &'static str| -> Result<Option<String>, SoapError> {
        let mut it = headers.iter().filter(|h| h.is(NS_WSA, name));
        let first = it.next().map(|h| h.text().trim().to_string());
        if it.next().is_some() {
            return Err(SoapError::InvalidAddressingHeader(name));
        }
        Ok(first)
    };
    let action = single("Action")?
        .filter(|a| !a.is_empty())
        .ok_or(SoapError::AddressingHeaderRequired("wsa:Action"))?;
    let message_id = single("MessageID")?;
    let to = single("To")?;
    Ok(Envelope {
        addressing: Addressing {
            action,
            message_id,
            to,
        },
        headers,
        body,
    })
}

/// Build a response envelope: WS-Addressing headers (`Action`, a fresh
/// `MessageID`, `RelatesTo` the request's id, anonymous `To`), the given
/// extra header blocks and body content (already serialised XML).
pub fn response_envelope(
    action: &str,
    relates_to: Option<&str>,
    extra_headers: &str,
    body: &str,
) -> String {
    let mut s = String::with_capacity(512 + extra_headers.len() + body.len());
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\"><env:Header><wsa:Action>{}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID>",
        esc(action),
        uuid::Uuid::new_v4()
    );
    if let Some(r) = relates_to {
        let _ = write!(s, "<wsa:RelatesTo>{}</wsa:RelatesTo>", esc(r));
    }
    s.push_str("<wsa:To>http://www.w3.org/2005/08/addressing/anonymous</wsa:To>");
    s.push_str(extra_headers);
    s.push_str("</env:Header><env:Body>");
    s.push_str(body);
    s.push_str("</env:Body></env:Envelope>");
    s
}

/// Build a request envelope (used by clients and tests): `Action`,
/// `MessageID`, `To`, extra header blocks and body content.
pub fn request_envelope(
    action: &str,
    message_id: &str,
    to: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    let mut s = String::with_capacity(512 + extra_headers.len() + body.len());
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\"><env:Header><wsa:Action>{}</wsa:Action><wsa:MessageID>{}</wsa:MessageID><wsa:To>{}</wsa:To>",
        esc(action),
        esc(message_id),
        esc(to)
    );
    s.push_str(extra_headers);
    s.push_str("</env:Header><env:Body>");
    s.push_str(body);
    s.push_str("</env:Body></env:Envelope>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope_with_addressing() {
        let xml = request_envelope(
            "urn:a",
            "urn:uuid:1",
            "http://x",
            "",
            "<b xmlns=\"urn:b\">t&amp;</b>",
        );
        let env = parse_envelope(xml.as_bytes()).unwrap();
        assert_eq!(env.addressing.action, "urn:a");
        assert_eq!(env.addressing.message_id.as_deref(), Some("urn:uuid:1"));
        let b = env.body.unwrap();
        assert!(b.is("urn:b", "b"));
        assert_eq!(b.text(), "t&");
    }

    #[test]
    fn refuses_soap11_dtd_and_missing_action() {
        let s11 = format!("<e:Envelope xmlns:e=\"{NS_SOAP11}\"><e:Body/></e:Envelope>");
        assert_eq!(
            parse_envelope(s11.as_bytes()).unwrap_err(),
            SoapError::Soap11Envelope
        );
        let unknown = "<e:Envelope xmlns:e=\"urn:example:soap-3\"><e:Body/></e:Envelope>";
        assert_eq!(
            parse_envelope(unknown.as_bytes()).unwrap_err(),
            SoapError::VersionMismatch
        );
        let dtd = "<!DOCTYPE x [<!ENTITY a \"b\">]><x/>";
        assert!(matches!(
            parse_envelope(dtd.as_bytes()),
            Err(SoapError::Xml(_))
        ));
        let no_action = format!("<e:Envelope xmlns:e=\"{NS_SOAP12}\"><e:Body/></e:Envelope>");
        assert_eq!(
            parse_envelope(no_action.as_bytes()).unwrap_err(),
            SoapError::AddressingHeaderRequired("wsa:Action")
        );
        assert!(matches!(
            parse_envelope(b"hello"),
            Err(SoapError::Xml(_)) | Err(SoapError::NotSoap(_))
        ));
    }
}

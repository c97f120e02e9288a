//! XTA message meta data (`oscimeta:MessageMetaData`, OSCI 2.02) and
//! content descriptions (`xta:ContentType` attributes), shared by the
//! server and the client, with their XML form and their mapping to the
//! hub envelope's correlation ids.
//!
//! Date-time values are kept as the lexical strings the sender wrote so
//! that meta data round-trips byte for byte. Parts of the meta data the
//! hub does not use (`ReceiptRequests`, `ProcessRef`, `OtherDestinations`,
//! `MessageProperties`, security tokens in parties) are not modelled and
//! therefore not forwarded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::soap::XmlElement;

/// XTA 2 Version 3 namespace.
pub const NS_XTA: &str = "http://xoev.de/transport/xta/211";
/// OSCI 2 message meta data namespace.
pub const NS_OSCIMETA: &str = "http://www.osci.eu/ws/2014/10/transport";
/// OSCI 2 transport namespace (MsgBox requests and responses).
pub const NS_OSCI: &str = "http://www.osci.eu/ws/2008/05/transport";
/// WS-Addressing 1.0 namespace.
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";
/// SOAP 1.2 envelope namespace.
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace (refused with a SOAP 1.1 `VersionMismatch`
/// fault).
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// XOP namespace (`xop:Include`).
pub const NS_XOP: &str = "http://www.w3.org/2004/08/xop/include";

/// Correlation-id keys the XTA server puts on every submission.
pub mod keys {
    /// XTA message id (`urn:de:xta:messageid:…`), also the idempotency key.
    pub const MESSAGE_ID: &str = "xta.message_id";
    /// `Qualifier/Service`.
    pub const SERVICE: &str = "xta.service";
    /// `Qualifier/BusinessScenario` (`Defined/code` or `Undefined`).
    pub const BUSINESS_SCENARIO: &str = "xta.business_scenario";
    /// `Qualifier/MessageType/code`.
    pub const MESSAGE_TYPE: &str = "xta.message_type";
    /// `Qualifier/MessageType/@payloadSchema`.
    pub const PAYLOAD_SCHEMA: &str = "xta.payload_schema";
    /// Author identifier value.
    pub const AUTHOR: &str = "xta.author";
    /// Reader identifier value.
    pub const READER: &str = "xta.reader";
    /// The account that submitted the message.
    pub const ACCOUNT: &str = "xta.account";
    /// JSON of [`super::TransportInfo`]: full meta data and content
    /// descriptions, so a connector can rebuild the XTA message.
    pub const TRANSPORT: &str = "xta.transport";
}

/// `oscimeta:PartyIdentifierType`: a value with `type`, optional
/// `category` and `name` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyIdentifier {
    /// Identifier value, e.g. `dvdv:01001000` or `gad:010010000000`.
    pub value: String,
    /// `type` attribute (required), e.g. `xoev`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `category` attribute, e.g. `Generischer Antragsempfänger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `name` attribute (display name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl PartyIdentifier {
    /// An identifier with value and type only.
    pub fn new(value: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            kind: kind.into(),
            category: None,
            name: None,
        }
    }
}

/// `oscimeta:KeyCodeType` (a code from a code list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCode {
    /// `code` child.
    pub code: String,
    /// `name` child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `listURI` attribute.
    pub list_uri: String,
    /// `listVersionID` attribute.
    pub list_version_id: String,
}

/// `Qualifier/BusinessScenario`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusinessScenario {
    /// A scenario from a code list.
    Defined(KeyCode),
    /// A free-text scenario.
    Undefined(String),
}

impl BusinessScenario {
    /// The code (defined) or the text (undefined).
    pub fn key(&self) -> &str {
        match self {
            Self::Defined(k) => &k.code,
            Self::Undefined(s) => s,
        }
    }
}

/// `Qualifier/MessageType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageType {
    /// Code, list URI and version.
    pub code: KeyCode,
    /// `payloadSchema` attribute (required).
    pub payload_schema: String,
}

/// `oscimeta:Qualifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualifier {
    /// `Subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `Service` (URI).
    pub service: String,
    /// `BusinessScenario`.
    pub business_scenario: BusinessScenario,
    /// `MessageType`.
    pub message_type: MessageType,
}

/// `oscimeta:DeliveryAttributes` (lexical date/date-time strings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttributes {
    /// `Origin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `InitialSend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_send: Option<String>,
    /// `NotBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// `ObsoleteAfter` (xs:date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obsolete_after: Option<String>,
    /// `Delivery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// `InitialFetch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_fetch: Option<String>,
    /// `Reception`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reception: Option<String>,
    /// `ServiceQuality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_quality: Option<String>,
}

/// `oscimeta:MessageMetaData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMetaData {
    /// `DeliveryAttributes`.
    #[serde(default)]
    pub delivery_attributes: DeliveryAttributes,
    /// `Originators/Author/Identifier`.
    pub author: PartyIdentifier,
    /// `Originators/Sender/Identifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<PartyIdentifier>,
    /// `Originators/ReplyTo/Identifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<PartyIdentifier>,
    /// `Destinations/Reader/Identifier`.
    pub reader: PartyIdentifier,
    /// `MsgIdentification/wsa:MessageID`.
    pub message_id: String,
    /// `MsgIdentification/In-Reply-To`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_reply_to: Vec<String>,
    /// `Qualifier`.
    pub qualifier: Qualifier,
    /// `MsgSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_size: Option<u64>,
    /// `@TestMsg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_msg: Option<bool>,
}

/// Attributes of one `xta:ContentType` (a `Message` or `Attachment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDescription {
    /// `contentType` (required), e.g. `text/xml`.
    pub content_type: String,
    /// `encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `filename`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `contentDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_description: Option<String>,
    /// `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `lang`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `size` (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Everything about an XTA message except its bytes: what the server puts
/// into `xta.transport` and what a connector needs to re-send the message
/// or put it into a hosted mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportInfo {
    /// The message meta data.
    pub metadata: MessageMetaData,
    /// Description of the `Message` part (the envelope payload).
    pub message: ContentDescription,
    /// Descriptions of the `Attachment` parts, in order (the envelope's
    /// attachments, same order).
    #[serde(default)]
    pub attachments: Vec<ContentDescription>,
}

/// Meta data that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MessageMetaData: {0}")]
pub struct MetaDataError(pub String);

fn err(s: impl Into<String>) -> MetaDataError {
    MetaDataError(s.into())
}

/// Escape text or attribute content.
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn write_party_id(out: &mut String, tag: &str, p: &PartyIdentifier) {
    let _ = write!(out, "<oscimeta:{tag} type=\"{}\"", esc(&p.kind));
    if let Some(c) = &p.category {
        let _ = write!(out, " category=\"{}\"", esc(c));
    }
    if let Some(n) = &p.name {
        let _ = write!(out, " name=\"{}\"", esc(n));
    }
    let _ = write!(out, ">{}</oscimeta:{tag}>", esc(&p.value));
}

fn write_party(out: &mut String, tag: &str, p: &PartyIdentifier) {
    let _ = write!(out, "<oscimeta:{tag}>");
    write_party_id(out, "Identifier", p);
    let _ = write!(out, "</oscimeta:{tag}>");
}

fn write_key_code_body(out: &mut String, k: &KeyCode) {
    let _ = write!(out, "<code>{}</code>", esc(&k.code));
    if let Some(n) = &k.name {
        let _ = write!(out, "<name>{}</name>", esc(n));
    }
}

fn write_opt(out: &mut String, tag: &str, v: &Option<String>) {
    if let Some(v) = v {
        let _ = write!(out, "<oscimeta:{tag}>{}</oscimeta:{tag}>", esc(v));
    }
}

impl MessageMetaData {
    /// Write the element `oscimeta:MessageMetaData` with its own namespace
    /// declarations (usable as a SOAP header block or inside any parent).
    pub fn write_xml(&self, out: &mut String) {
        let _ = write!(
            out,
            "<oscimeta:MessageMetaData xmlns:oscimeta=\"{NS_OSCIMETA}\" xmlns:wsa=\"{NS_WSA}\""
        );
        if let Some(t) = self.test_msg {
            let _ = write!(out, " TestMsg=\"{t}\"");
        }
        out.push('>');
        let d = &self.delivery_attributes;
        out.push_str("<oscimeta:DeliveryAttributes>");
        write_opt(out, "Origin", &d.origin);
        write_opt(out, "InitialSend", &d.initial_send);
        write_opt(out, "NotBefore", &d.not_before);
        write_opt(out, "ObsoleteAfter", &d.obsolete_after);
        write_opt(out, "Delivery", &d.delivery);
        write_opt(out, "InitialFetch", &d.initial_fetch);
        write_opt(out, "Reception", &d.reception);
        write_opt(out, "ServiceQuality", &d.service_quality);
        out.push_str("</oscimeta:DeliveryAttributes><oscimeta:Originators>");
        write_party(out, "Author", &self.author);
        if let Some(s) = &self.sender {
            write_party(out, "Sender", s);
        }
        if let Some(r) = &self.reply_to {
            write_party(out, "ReplyTo", r);
        }
        out.push_str("</oscimeta:Originators><oscimeta:Destinations>");
        write_party(out, "Reader", &self.reader);
        out.push_str("</oscimeta:Destinations><oscimeta:MsgIdentification>");
        let _ = write!(
            out,
            "<wsa:MessageID>{}</wsa:MessageID>",
            esc(&self.message_id)
        );
        for r in &self.in_reply_to {
            let _ = write!(
                out,
                "<oscimeta:In-Reply-To>{}</oscimeta:In-Reply-To>",
                esc(r)
            );
        }
        out.push_str("</oscimeta:MsgIdentification><oscimeta:Qualifier>");
        let q = &self.qualifier;
        write_opt(out, "Subject", &q.subject);
        let _ = write!(
            out,
            "<oscimeta:Service>{}</oscimeta:Service>",
            esc(&q.service)
        );
        out.push_str("<oscimeta:BusinessScenario>");
        match &q.business_scenario {
            BusinessScenario::Defined(k) => {
                let _ = write!(
                    out,
                    "<oscimeta:Defined listURI=\"{}\" listVersionID=\"{}\">",
                    esc(&k.list_uri),
                    esc(&k.list_version_id)
                );
                write_key_code_body(out, k);
                out.push_str("</oscimeta:Defined>");
            }
            BusinessScenario::Undefined(s) => {
                let _ = write!(out, "<oscimeta:Undefined>{}</oscimeta:Undefined>", esc(s));
            }
        }
        out.push_str("</oscimeta:BusinessScenario>");
        let m = &q.message_type;
        let _ = write!(
            out,
            "<oscimeta:MessageType listURI=\"{}\" listVersionID=\"{}\" payloadSchema=\"{}\">",
            esc(&m.code.list_uri),
            esc(&m.code.list_version_id),
            esc(&m.payload_schema)
        );
        write_key_code_body(out, &m.code);
        out.push_str("</oscimeta:MessageType></oscimeta:Qualifier>");
        if let Some(s) = self.msg_size {
            let _ = write!(out, "<oscimeta:MsgSize>{s}</oscimeta:MsgSize>");
        }
        out.push_str("</oscimeta:MessageMetaData>");
    }

    /// The element as a string.
    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        self.write_xml(&mut s);
        s
    }

    /// Read a parsed `oscimeta:MessageMetaData` element.
    pub fn from_element(e: &XmlElement) -> Result<Self, MetaDataError> {
        if !e.is(NS_OSCIMETA, "MessageMetaData") {
            return Err(err(format!("expected MessageMetaData, found {}", e.local)));
        }
        let test_msg = match e.attr("TestMsg") {
            None => None,
            Some("true") | Some("1") => Some(true),
            Some("false") | Some("0") => Some(false),
            Some(v) => return Err(err(format!("TestMsg {v:?} is not a boolean"))),
        };
        let req = |parent: &XmlElement, name: &str| -> Result<XmlElement, MetaDataError> {
            parent
                .child(NS_OSCIMETA, name)
                .cloned()
                .ok_or_else(|| err(format!("{} lacks {name}", parent.local)))
        };
        let opt_text = |parent: &XmlElement, name: &str| -> Option<String> {
            parent.child(NS_OSCIMETA, name).map(|c| c.text())
        };
        let da = req(e, "DeliveryAttributes")?;
        let delivery_attributes = DeliveryAttributes {
            origin: opt_text(&da, "Origin"),
            initial_send: opt_text(&da, "InitialSend"),
            not_before: opt_text(&da, "NotBefore"),
            obsolete_after: opt_text(&da, "ObsoleteAfter"),
            delivery: opt_text(&da, "Delivery"),
            initial_fetch: opt_text(&da, "InitialFetch"),
            reception: opt_text(&da, "Reception"),
            service_quality: opt_text(&da, "ServiceQuality"),
        };
        let originators = req(e, "Originators")?;
        let author = party(&req(&originators, "Author")?)?;
        let sender = originators
            .child(NS_OSCIMETA, "Sender")
            .map(party)
            .transpose()?;
        let reply_to = originators
            .child(NS_OSCIMETA, "ReplyTo")
            .map(party)
            .transpose()?;
        let destinations = req(e, "Destinations")?;
        let reader = party(&req(&destinations, "Reader")?)?;
        let ident = req(e, "MsgIdentification")?;
        let message_id = ident
            .child(NS_WSA, "MessageID")
            .map(|m| m.text().trim().to_string())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| err("MsgIdentification lacks wsa:MessageID"))?;
        let in_reply_to = ident
            .children_named(NS_OSCIMETA, "In-Reply-To")
            .map(|c| c.text().trim().to_string())
            .collect();
        let q = req(e, "Qualifier")?;
        let service = opt_text(&q, "Service")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("Qualifier lacks Service"))?;
        let bs = req(&q, "BusinessScenario")?;
        let business_scenario = if let Some(d) = bs.child(NS_OSCIMETA, "Defined") {
            BusinessScenario::Defined(key_code(d)?)
        } else if let Some(u) = bs.child(NS_OSCIMETA, "Undefined") {
            BusinessScenario::Undefined(u.text())
        } else {
            return Err(err("BusinessScenario needs Defined or Undefined"));
        };
        let mt = req(&q, "MessageType")?;
        let message_type = MessageType {
            code: key_code(&mt)?,
            payload_schema: mt
                .attr("payloadSchema")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| err("MessageType lacks payloadSchema"))?
                .to_string(),
        };
        let msg_size = match opt_text(e, "MsgSize") {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| err(format!("MsgSize {s:?} is not a number")))?,
            ),
        };
        Ok(Self {
            delivery_attributes,
            author,
            sender,
            reply_to,
            reader,
            message_id,
            in_reply_to,
            qualifier: Qualifier {
                subject: opt_text(&q, "Subject"),
                service,
                business_scenario,
                message_type,
            },
            msg_size,
            test_msg,
        })
    }

    /// The correlation ids the hub envelope carries for this message
    /// (without [`keys::TRANSPORT`] and [`keys::ACCOUNT`]).
    pub fn correlation_ids(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(keys::MESSAGE_ID.into(), self.message_id.clone());
        m.insert(keys::SERVICE.into(), self.qualifier.service.clone());
        m.insert(
            keys::BUSINESS_SCENARIO.into(),
            self.qualifier.business_scenario.key().to_string(),
        );
        m.insert(
            keys::MESSAGE_TYPE.into(),
            self.qualifier.message_type.code.code.clone(),
        );
        m.insert(
            keys::PAYLOAD_SCHEMA.into(),
            self.qualifier.message_type.payload_schema.clone(),
        );
        m.insert(keys::AUTHOR.into(), self.author.value.clone());
        m.insert(keys::READER.into(), self.reader.value.clone());
        m
    }
}

impl TransportInfo {
    /// JSON for [`keys::TRANSPORT`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Read [`keys::TRANSPORT`] from an envelope's correlation ids.
    pub fn from_correlation_ids(ids: &BTreeMap<String, String>) -> Result<Self, MetaDataError> {
        let raw = ids
            .get(keys::TRANSPORT)
            .ok_or_else(|| err(format!("correlation id {} missing", keys::TRANSPORT)))?;
        serde_json::from_str(raw).map_err(|e| err(format!("{}: {e}", keys::TRANSPORT)))
    }
}

impl ContentDescription {
    /// Write the attributes (leading space included) of an
    /// `xta:ContentType` element.
    pub fn write_attrs(&self, out: &mut String) {
        let _ = write!(out, " contentType=\"{}\"", esc(&self.content_type));
        for (name, v) in [
            ("encoding", &self.encoding),
            ("filename", &self.filename),
            ("contentDescription", &self.content_description),
            ("id", &self.id),
            ("lang", &self.lang),
        ] {
            if let Some(v) = v {
                let _ = write!(out, " {name}=\"{}\"", esc(v));
            }
        }
        if let Some(s) = self.size.filter(|s| *s > 0) {
            let _ = write!(out, " size=\"{s}\"");
        }
    }

    /// Read the attributes of a `Message`/`Attachment` element.
    pub fn from_element(e: &XmlElement) -> Result<Self, MetaDataError> {
        let content_type = e
            .attr("contentType")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("{} lacks contentType", e.local)))?
            .to_string();
        let size = match e.attr("size") {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| err(format!("size {s:?} is not a number")))?,
            ),
        };
        let o = |n: &str| e.attr(n).map(str::to_string);
        Ok(Self {
            content_type,
            encoding: o("encoding"),
            filename: o("filename"),
            content_description: o("contentDescription"),
            id: o("id"),
            lang: o("lang"),
            size,
        })
    }
}

fn party(e: &XmlElement) -> Result<PartyIdentifier, MetaDataError> {
    let id = e
        .child(NS_OSCIMETA, "Identifier")
        .ok_or_else(|| err(format!("{} lacks Identifier", e.local)))?;
    party_identifier(id)
}

/// Read a `oscimeta:PartyIdentifierType` element.
pub fn party_identifier(id: &XmlElement) -> Result<PartyIdentifier, MetaDataError> {
    let value = id.text().trim().to_string();
    if value.is_empty() {
        return Err(err(format!("{} is empty", id.local)));
    }
    Ok(PartyIdentifier {
        value,
        kind: id
            .attr("type")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("{} lacks the type attribute", id.local)))?
            .to_string(),
        category: id.attr("category").map(str::to_string),
        name: id.attr("name").map(str::to_string),
    })
}

fn key_code(e: &XmlElement) -> Result<KeyCode, MetaDataError> {
    let code = e
        .child_local("code")
        .map(|c| c.text().trim().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| err(format!("{} lacks code", e.local)))?;
    Ok(KeyCode {
        code,
        name: e.child_local("name").map(|c| c.text()),
        list_uri: e
            .attr("listURI")
            .ok_or_else(|| err(format!("{} lacks listURI", e.local)))?
            .to_string(),
        list_version_id: e
            .attr("listVersionID")
            .ok_or_else(|| err(format!("{} lacks listVersionID", e.local)))?
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete sample used by tests of this crate.
    pub(crate) fn sample() -> MessageMetaData {
        MessageMetaData {
            delivery_attributes: DeliveryAttributes {
                origin: Some("2026-11-30T10:00:00Z".into()),
                ..Default::default()
            },
            author: PartyIdentifier {
                value: "dvdv:01001000".into(),
                kind: "xoev".into(),
                category: Some("Kommune <Nord>".into()),
                name: None,
            },
            sender: None,
            reply_to: None,
            reader: PartyIdentifier::new("dvdv:02000000", "xoev"),
            message_id: "urn:de:xta:messageid:hub:1".into(),
            in_reply_to: vec![],
            qualifier: Qualifier {
                subject: Some("Bauantrag & mehr".into()),
                service: "urn:xoev-de:xbau:standard:xbau_2.3".into(),
                business_scenario: BusinessScenario::Undefined("XBAU".into()),
                message_type: MessageType {
                    code: KeyCode {
                        code: "baugenehmigung.antrag.0200".into(),
                        name: None,
                        list_uri: "urn:de:payloadSchema:elementName".into(),
                        list_version_id: "1.0".into(),
                    },
                    payload_schema: "http://www.xleitstelle.de/xbau/2/3".into(),
                },
            },
            msg_size: Some(42),
            test_msg: Some(false),
        }
    }

    #[test]
    fn xml_round_trip() {
        let m = sample();
        let xml = m.to_xml();
        let e = crate::soap::parse_xml(xml.as_bytes()).unwrap();
        assert_eq!(MessageMetaData::from_element(&e).unwrap(), m);
        let ids = m.correlation_ids();
        assert_eq!(ids[keys::MESSAGE_TYPE], "baugenehmigung.antrag.0200");
        assert_eq!(ids[keys::READER], "dvdv:02000000");
    }

    #[test]
    fn missing_reader_is_an_error() {
        let xml = sample()
            .to_xml()
            .replace("<oscimeta:Destinations><oscimeta:Reader><oscimeta:Identifier type=\"xoev\">dvdv:02000000</oscimeta:Identifier></oscimeta:Reader></oscimeta:Destinations>", "");
        let e = crate::soap::parse_xml(xml.as_bytes()).unwrap();
        let r = MessageMetaData::from_element(&e);
        assert!(r.unwrap_err().0.contains("Destinations"));
    }
}

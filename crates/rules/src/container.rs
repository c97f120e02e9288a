//! Container outputs: a rendered message plus the documents it refers to,
//! delivered as one file.
//!
//! An output with `container = "xdomea"` is an xdomea transfer container
//! (xdomea 3.1.0, "Übergabe als ZIP-Container"): the stylesheet renders the
//! xdomea message; every `Primaerdokument/Dateiname` in it names a file that
//! goes into the container next to the message. Which content a name
//! stands for is decided by the hub's names, offered to the stylesheet as
//! reserved parameters ([`crate::transform::RESERVED_PARAM_NS`]):
//!
//! * `ds:payload-file` — the submitted document itself
//!   (`<uuid>_antrag.xml`, …; see [`payload_file`]);
//! * `ds:attachment-files` / `ds:attachment-types` / `ds:attachment-ids`
//!   — the attachments' file names inside the container, their media
//!   types and a UUID for each (xdomea wants a UUID per Dokument; derived
//!   from the message id and the attachment's position, so a replay
//!   renders the same ids — [`attachment_id`]), one per line, each line
//!   ended by a newline (XSLT 1.0 walks such a list with
//!   `substring-before($list, '&#10;')`); names are the attachment's UUID
//!   and the sender's file name made safe ([`attachment_files`]).
//!
//! A rule chooses what goes into each output by referring to it: an
//! attachment no `Dateiname` names stays out of that container. A
//! `Dateiname` that is neither the payload file nor an attachment is the
//! rule's error (the message goes `dead`, nothing is delivered).
//!
//! The container is named as the standard requires,
//! `<ProzessID>_<Nachrichtentyp>.zip` (ProzessID from the message's `Kopf`,
//! Nachrichtentyp the root element's name, e.g.
//! `FVDaten.SGOAblegen.0605`), and holds the message as
//! `<ProzessID>_<Nachrichtentyp>.xml` first, then the documents. This crate
//! only plans the container ([`Container`]); the engine packs it, reading
//! the attachments from the blob store.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The container formats an output can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerFormat {
    /// xdomea transfer container (zip: message + Primärdokumente).
    Xdomea,
}

impl ContainerFormat {
    /// Parses the manifest value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "xdomea" => Some(Self::Xdomea),
            _ => None,
        }
    }

    /// The media type of the packed container.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Xdomea => "application/zip",
        }
    }
}

/// Where the content of a container entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySource {
    /// The submitted document, as received.
    Payload,
    /// The attachment at this index of the message's envelope.
    Attachment(usize),
}

/// One file in a container besides the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEntry {
    /// File name inside the container.
    pub name: String,
    /// Its content.
    pub source: EntrySource,
}

/// A planned container: the rendered message (the output's bytes) plus
/// the files it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The format.
    pub format: ContainerFormat,
    /// File name of the message inside the container.
    pub message_file: String,
    /// The referenced files, in the order of their first reference.
    pub entries: Vec<ContainerEntry>,
}

/// Name of the payload inside a container: `<uuid>_antrag.<ext>` (xdomea
/// wants every Primärdokument's name to begin with a UUID), the UUID
/// derived from the message id, the extension from the media type.
pub fn payload_file(message_id: &str, content_type: &str) -> String {
    let essence = crate::input::media_type_essence(content_type);
    let ext = match crate::input::InputKind::from_content_type(&essence) {
        Ok(crate::input::InputKind::Xml) => "xml",
        Ok(crate::input::InputKind::Json) => "json",
        Err(_) => "bin",
    };
    format!("{}_antrag.{ext}", derived_uuid(message_id, "payload"))
}

/// Makes a sender's file name safe for a container and for file systems:
/// the last path component, characters outside `[A-Za-z0-9._-]` (and
/// umlauts) replaced by `_`, no leading dot, at most 100 characters.
fn safe_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || "äöüÄÖÜß".contains(c)
            {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "anlage".to_owned()
    } else {
        cleaned
    }
}

/// The attachments' file names inside a container, in envelope order:
/// `<attachment id>_<name>` — the UUID of [`attachment_id`] (which makes
/// the names unique, and is what xdomea wants them to begin with) and the
/// sender's file name (else the part name) made safe. `attachments` are
/// `(file name, part name)` pairs.
pub fn attachment_files(message_id: &str, attachments: &[(Option<&str>, &str)]) -> Vec<String> {
    attachments
        .iter()
        .enumerate()
        .map(|(i, (file, part))| {
            format!(
                "{}_{}",
                attachment_id(message_id, i),
                safe_name(file.unwrap_or(part))
            )
        })
        .collect()
}

/// The attachments of a message as a rule sees them
/// ([`crate::RenderContext::attachments`]): file name in a container, media
/// type and id. `attachments` are `(file name, part name, media type)`.
pub fn render_attachments(
    message_id: &str,
    attachments: &[(Option<&str>, &str, &str)],
) -> Vec<crate::RenderAttachment> {
    let names: Vec<(Option<&str>, &str)> = attachments.iter().map(|(f, p, _)| (*f, *p)).collect();
    attachment_files(message_id, &names)
        .into_iter()
        .zip(attachments)
        .enumerate()
        .map(
            |(i, (file, (_, _, content_type)))| crate::RenderAttachment {
                file,
                content_type: (*content_type).to_owned(),
                id: attachment_id(message_id, i),
            },
        )
        .collect()
}

/// A stable UUID for the attachment at `index` of message `message_id`
/// (SHA-256 of both, shaped as a version-8 UUID): the same message renders
/// the same ids, different messages and attachments different ones.
pub fn attachment_id(message_id: &str, index: usize) -> String {
    derived_uuid(message_id, &format!("attachment {index}"))
}

/// SHA-256 of the message id and `what`, shaped as a version-8 UUID.
fn derived_uuid(message_id: &str, what: &str) -> String {
    let hex = drehscheibe_model::sha256_hex(format!("drehscheibe {message_id} {what}").as_bytes());
    let h = hex.as_bytes();
    let part = |range: std::ops::Range<usize>| String::from_utf8_lossy(&h[range]).into_owned();
    // version 8 (custom), RFC 4122 variant (8, 9, a or b)
    let variant = match h[16] {
        b'0'..=b'3' => '8',
        b'4'..=b'7' => '9',
        b'8' | b'9' | b'a' | b'b' => 'a',
        _ => 'b',
    };
    format!(
        "{}-{}-8{}-{variant}{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        part(17..20),
        part(20..32)
    )
}

/// Plans an xdomea container for a rendered message: its name
/// (`<ProzessID>_<Nachrichtentyp>.zip`) and the [`Container`].
///
/// # Errors
///
/// The message has no `Kopf/ProzessID`, is not well-formed, or names a
/// `Primaerdokument/Dateiname` that is neither `payload_file` nor one of
/// `attachment_files`.
pub fn plan_xdomea(
    message: &[u8],
    payload_file: &str,
    attachment_files: &[String],
) -> Result<(String, Container), String> {
    let mut reader = Reader::from_reader(message);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut root: Option<String> = None;
    let mut prozess_id: Option<String> = None;
    let mut text = String::new();
    let mut names: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("the xdomea message is not well-formed: {e}"))?;
        match event {
            Event::Start(e) => {
                let local = e.local_name().as_ref().to_vec();
                if root.is_none() {
                    root = Some(String::from_utf8_lossy(&local).into_owned());
                }
                path.push(local);
                text.clear();
            }
            Event::Empty(e) if root.is_none() => {
                root = Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Event::Text(t) => {
                let unescaped = t
                    .unescape()
                    .map_err(|e| format!("the xdomea message is not well-formed: {e}"))?;
                text.push_str(&unescaped);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let n = path.len();
                let is = |parent: &[u8], child: &[u8]| {
                    n >= 2 && path[n - 2] == parent && path[n - 1] == child
                };
                if n == 3 && is(b"Kopf", b"ProzessID") && prozess_id.is_none() {
                    prozess_id = Some(text.trim().to_owned());
                } else if is(b"Primaerdokument", b"Dateiname") {
                    let name = text.trim().to_owned();
                    if seen.insert(name.clone()) {
                        names.push(name);
                    }
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let root = root.ok_or("the xdomea message is empty")?;
    let prozess_id = prozess_id
        .filter(|p| !p.is_empty())
        .ok_or("the xdomea message has no Kopf/ProzessID")?;
    let stem = format!("{}_{}", safe_name(&prozess_id), safe_name(&root));
    let message_file = format!("{stem}.xml");
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        let source = if name == payload_file {
            EntrySource::Payload
        } else if let Some(i) = attachment_files.iter().position(|a| *a == name) {
            EntrySource::Attachment(i)
        } else {
            return Err(format!(
                "Primaerdokument {name:?} is neither the application ({payload_file:?}) nor one of its attachments ({})",
                if attachment_files.is_empty() {
                    "it has none".to_owned()
                } else {
                    attachment_files.join(", ")
                }
            ));
        };
        if name == message_file {
            return Err(format!(
                "Primaerdokument {name:?} has the name of the container's message file"
            ));
        }
        entries.push(ContainerEntry { name, source });
    }
    Ok((
        format!("{stem}.zip"),
        Container {
            format: ContainerFormat::Xdomea,
            message_file,
            entries,
        },
    ))
}

/// The reserved parameter values for a container's lists: one entry per
/// line, each line ended by `\n`.
pub(crate) fn line_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(item);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = r#"<?xml version="1.0"?>
<x:FVDaten.SGOAblegen.0605 xmlns:x="urn:xoev-de:xdomea:schema:3.1.0">
  <x:Kopf><x:ProzessID>5a7e-1</x:ProzessID></x:Kopf>
  <x:Dokument><x:Version><x:Format><x:Primaerdokument><x:Dateiname>antrag.xml</x:Dateiname></x:Primaerdokument></x:Format></x:Version></x:Dokument>
  <x:Dokument><x:Version><x:Format><x:Primaerdokument><x:Dateiname>plan.pdf</x:Dateiname></x:Primaerdokument></x:Format></x:Version></x:Dokument>
  <x:Dokument><x:Version><x:Format><x:Primaerdokument><x:Dateiname>antrag.xml</x:Dateiname></x:Primaerdokument></x:Format></x:Version></x:Dokument>
</x:FVDaten.SGOAblegen.0605>"#;

    #[test]
    fn the_message_names_the_container_and_its_entries() {
        let files = vec!["foto.jpg".to_owned(), "plan.pdf".to_owned()];
        let (zip, c) = plan_xdomea(MSG.as_bytes(), "antrag.xml", &files).unwrap();
        assert_eq!(zip, "5a7e-1_FVDaten.SGOAblegen.0605.zip");
        assert_eq!(c.message_file, "5a7e-1_FVDaten.SGOAblegen.0605.xml");
        assert_eq!(
            c.entries,
            [
                ContainerEntry {
                    name: "antrag.xml".into(),
                    source: EntrySource::Payload
                },
                ContainerEntry {
                    name: "plan.pdf".into(),
                    source: EntrySource::Attachment(1)
                },
            ],
            "named twice, packed once; the unreferenced foto.jpg stays out"
        );
    }

    #[test]
    fn a_reference_to_nothing_and_a_missing_prozess_id_are_errors() {
        let err = plan_xdomea(MSG.as_bytes(), "antrag.xml", &[]).unwrap_err();
        assert!(err.contains("\"plan.pdf\" is neither"), "{err}");
        let err = plan_xdomea(
            MSG.replace("<x:ProzessID>5a7e-1</x:ProzessID>", "")
                .as_bytes(),
            "antrag.xml",
            &["plan.pdf".into()],
        )
        .unwrap_err();
        assert!(err.contains("ProzessID"), "{err}");
        assert!(plan_xdomea(b"<a><b></a>", "antrag.xml", &[]).is_err());
    }

    #[test]
    fn names_begin_with_stable_uuids_and_are_safe() {
        let id = "01a24411-c603-763d-b723-3d92df9cc92f";
        let names = attachment_files(
            id,
            &[
                (Some("../../etc/Plan 1.pdf"), "a"),
                (Some("Plan 1.pdf"), "b"),
                (None, "nachweis"),
                (Some(".hidden"), "d"),
                (Some("Grüße.txt"), "f"),
            ],
        );
        let uuid = |i| attachment_id(id, i);
        assert_eq!(
            names,
            [
                format!("{}_Plan_1.pdf", uuid(0)),
                format!("{}_Plan_1.pdf", uuid(1)),
                format!("{}_nachweis", uuid(2)),
                format!("{}_hidden", uuid(3)),
                format!("{}_Grüße.txt", uuid(4)),
            ]
        );
        assert_ne!(uuid(0), uuid(1));
        assert_eq!(uuid(0), attachment_id(id, 0), "stable");
        assert_ne!(uuid(0), attachment_id("another", 0));
        let u = uuid(0);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8", "version 8: {u}");
        assert!("89ab".contains(&u[19..20]), "RFC 4122 variant: {u}");
        let p = payload_file(id, "application/xml; charset=utf-8");
        assert!(p.ends_with("_antrag.xml") && p.len() == 36 + 11, "{p}");
        assert!(payload_file(id, "application/json").ends_with("_antrag.json"));
        assert_eq!(line_list(["a", "b"].into_iter()), "a\nb\n");
    }
}

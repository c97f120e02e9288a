//! The drop connector: delivers documents into a folder.

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use drehscheibe_model::{
    AttachmentRef, BlobError, BlobStore, Connector, DeliveryError, DeliveryReceipt,
    DeliveryRequest, MessageId,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fsutil::{blocking, exists, read_small, sha256_file, sync_dir, temp_name, write_atomic};
use crate::sanitize::{sanitize_component, sanitize_filename, with_suffix};
use crate::DirectoryError;

/// Name of the folder (inside the drop folder) that holds files being written.
const TMP_DIR: &str = ".tmp";
/// Suffix of the companion metadata file: `<document name>.meta.json`.
const META_SUFFIX: &str = ".meta.json";
/// Suffix of the attachments folder: `<document name>.attachments/`.
const ATTACHMENTS_SUFFIX: &str = ".attachments";
/// Largest metadata file read back when checking who owns a name.
const MAX_META_BYTES: u64 = 1024 * 1024;
/// Longest target name used inside a file name.
const MAX_TARGET_BYTES: usize = 40;

/// Settings of one drop folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySettings {
    /// The drop folder. Created (with `.tmp/`) on the first delivery if missing.
    pub path: PathBuf,
    /// Also write a companion `<name>.meta.json` ([`DropMetadata`]).
    pub metadata: bool,
}

/// Content of the companion `<name>.meta.json` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropMetadata {
    pub message_id: MessageId,
    pub channel: String,
    pub tenant: Option<String>,
    pub leistung: Option<String>,
    pub kommune_key: Option<String>,
    /// Output role the document was delivered for.
    pub target: String,
    pub generation: u32,
    /// `<message id>/<target>/<generation>`; tells replays from foreign files.
    pub idempotency_key: String,
    /// File name of the document in the drop folder.
    pub document: String,
    pub content_type: String,
    /// Size of the document in bytes.
    pub size: u64,
    /// Hex SHA-256 of the document.
    pub sha256: String,
    pub received_at: DateTime<Utc>,
    pub written_at: DateTime<Utc>,
    pub attachments: Vec<DropAttachment>,
}

/// One attachment as listed in [`DropMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropAttachment {
    pub name: String,
    pub filename: Option<String>,
    /// Path relative to the drop folder: `<document>.attachments/<file>`.
    pub file: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

/// The part of a metadata file needed to tell who wrote a name.
#[derive(Deserialize)]
struct OwnerProbe {
    message_id: String,
    target: String,
}

/// Who a document name in the drop folder belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Nothing of that name exists.
    Free,
    /// An earlier delivery of the same message and target (retry or replay).
    Ours,
    /// Another message, or a file the hub did not write.
    Foreign,
}

/// A [`Connector`] that drops documents into a folder.
///
/// Layout of one delivery named `antrag.xml`:
///
/// ```text
/// <path>/antrag.xml.meta.json          (optional, first)
/// <path>/antrag.xml.attachments/<file> (streamed, second)
/// <path>/antrag.xml                    (last: its appearance means "complete")
/// <path>/.tmp/                         (files being written)
/// ```
///
/// Every file is written to `.tmp/`, fsynced and renamed into place; the
/// folders are fsynced after the renames, so no partially written file
/// ever carries a final name.
///
/// Names: `request.filename` is cleaned with [`sanitize_filename`]; when
/// nothing usable is left the name is `<message id>-<target>.xml|.json|.bin`.
/// A name already used by an earlier delivery of the same message and
/// target (a retry, or a replay with a higher generation) is overwritten
/// atomically — delivery is at-least-once. A name held by anything else
/// is never overwritten: the document is written as
/// `<stem>-<message id>-<target><ext>` instead. Ownership is read from the
/// companion metadata file; without one, an existing document counts as
/// ours only if its content is byte-identical.
///
/// Errors: I/O errors (permission denied, share unreachable, disk full)
/// are retryable, since a network share or its permissions can come back;
/// only a configured path that is not a folder, a missing or corrupt
/// attachment blob are permanent. Concurrent deliveries within one
/// process never pick the same name; two hub instances must not share one
/// drop folder.
pub struct DirectoryConnector {
    root: PathBuf,
    tmp: PathBuf,
    metadata: bool,
    /// Names being written right now, with their owner (`<id>/<target>`).
    in_flight: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for DirectoryConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConnector")
            .field("path", &self.root)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl DirectoryConnector {
    /// Checks the settings. The folder itself is created on first use, so
    /// a share that is not mounted yet does not stop the hub from starting.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::InvalidSettings`] if the path is empty or exists
    /// and is not a folder.
    pub fn new(settings: DirectorySettings) -> Result<Self, DirectoryError> {
        let root = settings.path;
        if root.as_os_str().is_empty() {
            return Err(DirectoryError::InvalidSettings(
                "drop folder path is empty".into(),
            ));
        }
        if root.exists() && !root.is_dir() {
            return Err(DirectoryError::InvalidSettings(format!(
                "drop folder {} is not a folder",
                root.display()
            )));
        }
        Ok(Self {
            tmp: root.join(TMP_DIR),
            root,
            metadata: settings.metadata,
            in_flight: Arc::default(),
        })
    }

    /// The drop folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Chooses and reserves the document name for `request`.
    async fn reserve(
        &self,
        request: &DeliveryRequest,
        doc_sha: &str,
    ) -> Result<Reservation, DeliveryError> {
        let id = request.envelope.id.to_string();
        let owner = format!("{id}/{}", request.target);
        let qualifier = format!(
            "{id}-{}",
            sanitize_component(&request.target, MAX_TARGET_BYTES, "target")
        );
        let candidates = match sanitize_filename(&request.filename) {
            Some(name) => {
                let qualified = with_suffix(&name, &qualifier);
                vec![(name, true), (qualified, false)]
            }
            None => vec![(
                format!("{qualifier}.{}", extension_for(&request.content_type)),
                false,
            )],
        };
        for (name, check_owner) in candidates {
            if check_owner {
                let root = self.root.clone();
                let (n, i, t, s) = (
                    name.clone(),
                    id.clone(),
                    request.target.clone(),
                    doc_sha.to_owned(),
                );
                let ownership = blocking(move || ownership(&root, &n, &i, &t, &s))
                    .await
                    .map_err(|e| io_error(&format!("cannot inspect {name}"), &e))?;
                if ownership == Ownership::Foreign {
                    tracing::debug!(name = ?name, "name taken by another message, qualifying it");
                    continue;
                }
            }
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&name) {
                None => {
                    in_flight.insert(name.clone(), owner);
                    return Ok(Reservation {
                        in_flight: Arc::clone(&self.in_flight),
                        name,
                    });
                }
                Some(holder) if *holder == owner => {
                    return Err(DeliveryError::retryable(format!(
                        "a delivery of {owner} to {name} is already in progress"
                    )));
                }
                Some(_) => continue,
            }
        }
        Err(DeliveryError::retryable(format!(
            "no free file name for {owner} in {}",
            self.root.display()
        )))
    }

    /// Streams one attachment blob to `dir/file` via `.tmp/`.
    async fn write_attachment(
        &self,
        blobs: &dyn BlobStore,
        attachment: &AttachmentRef,
        target: PathBuf,
    ) -> Result<(), DeliveryError> {
        let mut reader = blobs
            .open(&attachment.blob)
            .await
            .map_err(|e| blob_error(&attachment.name, e))?;
        let tmp_path = self.tmp.join(temp_name());
        let result = async {
            let mut out = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_path)
                .await
                .map_err(|e| io_error("cannot create temporary file", &e))?;
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).await.map_err(|e| {
                    DeliveryError::retryable(format!(
                        "cannot read attachment {}: {e}",
                        attachment.name
                    ))
                })?;
                if n == 0 {
                    break;
                }
                total = total.saturating_add(n as u64);
                if total > attachment.blob.size {
                    break;
                }
                let chunk = buf.get(..n).unwrap_or_default();
                hasher.update(chunk);
                out.write_all(chunk)
                    .await
                    .map_err(|e| io_error("cannot write attachment", &e))?;
            }
            if total != attachment.blob.size
                || hex::encode(hasher.finalize()) != attachment.blob.sha256
            {
                return Err(DeliveryError::permanent(format!(
                    "attachment {}: blob content does not match its reference {} ({} bytes)",
                    attachment.name, attachment.blob.sha256, attachment.blob.size
                )));
            }
            out.flush()
                .await
                .map_err(|e| io_error("cannot write attachment", &e))?;
            out.sync_all()
                .await
                .map_err(|e| io_error("cannot fsync attachment", &e))?;
            drop(out);
            tokio::fs::rename(&tmp_path, &target)
                .await
                .map_err(|e| io_error("cannot move attachment into place", &e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp_path).await;
        }
        result
    }
}

#[async_trait]
impl Connector for DirectoryConnector {
    fn kind(&self) -> &'static str {
        "directory"
    }

    /// The target folder (and its `.tmp/`) exist and are writable.
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        let tmp = self.tmp.clone();
        let root = self.root.clone();
        let probe = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let path = tmp.join(format!(".health-{}", std::process::id()));
            std::fs::write(&path, b"")?;
            std::fs::remove_file(&path)
        })
        .await;
        match probe {
            Ok(Ok(())) => drehscheibe_model::Health::up(format!("{} is writable", root.display())),
            Ok(Err(e)) => drehscheibe_model::Health::down(format!("{}: {e}", root.display())),
            Err(e) => drehscheibe_model::Health::down(format!("health probe failed: {e}")),
        }
    }

    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
        let (root, tmp) = (self.root.clone(), self.tmp.clone());
        blocking(move || prepare(&root, &tmp))
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotADirectory => DeliveryError::permanent(format!(
                    "drop folder {} is not a folder: {e}",
                    self.root.display()
                )),
                _ => io_error(
                    &format!("cannot prepare drop folder {}", self.root.display()),
                    &e,
                ),
            })?;

        let doc_sha = drehscheibe_model::sha256_hex(&request.document);
        let reservation = self.reserve(&request, &doc_sha).await?;
        let name = reservation.name.clone();
        let envelope = &request.envelope;

        let attachment_dir_name = format!("{name}{ATTACHMENTS_SUFFIX}");
        let files = attachment_files(&envelope.attachments);
        let listed: Vec<DropAttachment> = envelope
            .attachments
            .iter()
            .zip(&files)
            .map(|(a, file)| DropAttachment {
                name: a.name.clone(),
                filename: a.filename.clone(),
                file: format!("{attachment_dir_name}/{file}"),
                content_type: a.content_type.clone(),
                size: a.blob.size,
                sha256: a.blob.sha256.clone(),
            })
            .collect();

        if self.metadata {
            let meta = DropMetadata {
                message_id: envelope.id,
                channel: envelope.channel.clone(),
                tenant: envelope.tenant.clone(),
                leistung: envelope.leistung.clone(),
                kommune_key: envelope.kommune_key.clone(),
                target: request.target.clone(),
                generation: request.generation,
                idempotency_key: request.idempotency_key(),
                document: name.clone(),
                content_type: request.content_type.clone(),
                size: request.document.len() as u64,
                sha256: doc_sha.clone(),
                received_at: envelope.received_at,
                written_at: Utc::now(),
                attachments: listed,
            };
            let json = serde_json::to_vec_pretty(&meta)
                .map_err(|e| DeliveryError::permanent(format!("cannot encode metadata: {e}")))?;
            let (tmp, target) = (
                self.tmp.clone(),
                self.root.join(format!("{name}{META_SUFFIX}")),
            );
            blocking(move || write_atomic(&tmp, &target, &json))
                .await
                .map_err(|e| io_error("cannot write metadata", &e))?;
        }

        if !envelope.attachments.is_empty() {
            let dir = self.root.join(&attachment_dir_name);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| io_error("cannot create attachments folder", &e))?;
            for (attachment, file) in envelope.attachments.iter().zip(&files) {
                self.write_attachment(request.blobs.as_ref(), attachment, dir.join(file))
                    .await?;
            }
            blocking(move || sync_dir(&dir))
                .await
                .map_err(|e| io_error("cannot fsync attachments folder", &e))?;
        }

        // Make the metadata and attachment folder entries durable before
        // the document announces the delivery.
        let root = self.root.clone();
        blocking(move || sync_dir(&root))
            .await
            .map_err(|e| io_error("cannot fsync drop folder", &e))?;

        let (tmp, root, target) = (self.tmp.clone(), self.root.clone(), self.root.join(&name));
        let document = request.document.clone();
        blocking(move || {
            write_atomic(&tmp, &target, &document)?;
            sync_dir(&root)
        })
        .await
        .map_err(|e| io_error("cannot write document", &e))?;

        tracing::debug!(
            message_id = %envelope.id,
            target = %request.target,
            file = ?name,
            attachments = envelope.attachments.len(),
            "document dropped"
        );
        drop(reservation);
        Ok(DeliveryReceipt {
            detail: self.root.join(&name).display().to_string(),
        })
    }
}

/// Releases a reserved name when the delivery ends (success or not).
struct Reservation {
    in_flight: Arc<Mutex<HashMap<String, String>>>,
    name: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

/// Creates the drop folder and its `.tmp/`; a path that exists as a file
/// is reported as [`ErrorKind::NotADirectory`].
fn prepare(root: &Path, tmp: &Path) -> io::Result<()> {
    if root.exists() && !root.is_dir() {
        return Err(io::Error::new(
            ErrorKind::NotADirectory,
            "path exists and is not a folder",
        ));
    }
    std::fs::create_dir_all(tmp)
}

/// Who owns the document name `name` in `root`.
fn ownership(
    root: &Path,
    name: &str,
    message_id: &str,
    target: &str,
    doc_sha: &str,
) -> io::Result<Ownership> {
    let meta = root.join(format!("{name}{META_SUFFIX}"));
    if exists(&meta)? {
        let probe = read_small(&meta, MAX_META_BYTES)?
            .and_then(|bytes| serde_json::from_slice::<OwnerProbe>(&bytes).ok());
        return Ok(match probe {
            Some(p) if p.message_id == message_id && p.target == target => Ownership::Ours,
            _ => Ownership::Foreign,
        });
    }
    let doc = root.join(name);
    if exists(&doc)? {
        return Ok(if sha256_file(&doc)? == doc_sha {
            Ownership::Ours
        } else {
            Ownership::Foreign
        });
    }
    if exists(&root.join(format!("{name}{ATTACHMENTS_SUFFIX}")))? {
        return Ok(Ownership::Foreign);
    }
    Ok(Ownership::Free)
}

/// File names for the attachments within their folder: the sanitized
/// file name (or part name), made unique case-insensitively.
fn attachment_files(attachments: &[AttachmentRef]) -> Vec<String> {
    let mut used = HashSet::new();
    attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let number = i + 1;
            let base = a
                .filename
                .as_deref()
                .and_then(sanitize_filename)
                .or_else(|| sanitize_filename(&a.name))
                .unwrap_or_else(|| format!("attachment-{number}"));
            let mut name = base.clone();
            let mut n = number;
            while !used.insert(name.to_ascii_lowercase()) {
                name = sanitize_filename(&format!("{n}-{base}")).unwrap_or_else(|| n.to_string());
                n += attachments.len();
            }
            name
        })
        .collect()
}

/// File extension for the fallback name.
fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml") {
        "xml"
    } else if essence == "application/json" || essence.ends_with("+json") {
        "json"
    } else {
        "bin"
    }
}

fn io_error(context: &str, e: &io::Error) -> DeliveryError {
    DeliveryError::retryable(format!("{context}: {e}"))
}

fn blob_error(attachment: &str, e: BlobError) -> DeliveryError {
    match e {
        BlobError::Io(e) => {
            DeliveryError::retryable(format!("cannot open attachment {attachment}: {e}"))
        }
        e @ (BlobError::NotFound(_) | BlobError::Corrupt { .. } | BlobError::TooLarge { .. }) => {
            DeliveryError::permanent(format!("attachment {attachment}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drehscheibe_model::BlobRef;

    fn att(name: &str, filename: Option<&str>) -> AttachmentRef {
        AttachmentRef {
            name: name.into(),
            filename: filename.map(Into::into),
            content_type: "application/pdf".into(),
            blob: BlobRef {
                sha256: "00".into(),
                size: 0,
            },
        }
    }

    #[test]
    fn attachment_names_are_sanitized_and_unique() {
        let files = attachment_files(&[
            att("scan", Some("../Scan.pdf")),
            att("scan2", Some("scan.pdf")),
            att("€", None),
            att("anlage", None),
        ]);
        assert_eq!(
            files,
            vec!["Scan.pdf", "2-scan.pdf", "attachment-3", "anlage"]
        );
    }

    #[test]
    fn fallback_extensions_follow_the_media_type() {
        assert_eq!(extension_for("application/xml; charset=utf-8"), "xml");
        assert_eq!(extension_for("application/vnd.foo+xml"), "xml");
        assert_eq!(extension_for("Application/JSON"), "json");
        assert_eq!(extension_for("application/pdf"), "bin");
    }
}

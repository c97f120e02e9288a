//! Packing container outputs after routing.
//!
//! A rule output with `container = "xdomea"` comes out of the rule
//! processor as the rendered message plus a plan of the files it names
//! (`drehscheibe_rules::container`). Before the plan is stored, the worker
//! packs each such output into one zip: the message first, then the
//! payload and the attachments it names, read from the blob store. The
//! packed container then is an output like any other — stored with the
//! route plan, scanned, and delivered by whatever connector the route
//! names (a directory drop writes it atomically, HTTP sends it as one
//! body).
//!
//! Memory: the parts and the zip made of them are held while packing,
//! and the zip until the route plan is stored, within the hub's document
//! memory budget (`[server] document_memory`). The room for all of a
//! plan's containers is reserved in one step before the first is packed
//! (no routing worker holds part of the budget while it waits for more, so
//! none can wait for another forever); containers that need more than the
//! whole budget go `dead` with a reason that names the setting.
//! XML and JSON entries are deflated, other files (PDF, images: already
//! compressed) stored.

use std::io::{Cursor, Write};

use bytes::Bytes;
use drehscheibe_model::Envelope;
use drehscheibe_rules::container::{Container, EntrySource};
use drehscheibe_store::StoreError;
use tokio::io::AsyncReadExt;
use tokio::sync::OwnedSemaphorePermit;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::hub::{memory_units, Hub};
use crate::{RouteFailure, RoutePlan};

/// Most bytes of zip bookkeeping assumed per entry on top of its content
/// (local header, central directory record, name twice).
const ENTRY_OVERHEAD: u64 = 1024;

fn compression(name: &str) -> CompressionMethod {
    let lower = name.to_ascii_lowercase();
    if [".xml", ".json", ".txt", ".csv"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    }
}

impl Hub {
    /// Packs every container output of `plan` in place (see the module
    /// documentation) and returns the memory reservation of the packed
    /// containers: the caller holds it until the plan is stored.
    /// `Ok(Err(failure))`: the message cannot be packed and goes `dead`
    /// with the reason; `Err`: a store or blob failure, the route job runs
    /// again later.
    ///
    /// The memory for all of a plan's containers is reserved at once,
    /// before the first is packed: one reservation per container, taken
    /// one after the other while the earlier ones are held, would let two
    /// containers that each fit the budget wait for each other forever
    /// (and two routing workers likewise). Packing one container needs its
    /// parts and its zip; the zips packed before it are held. So the peak
    /// is the sum of all containers plus the largest once more, and after
    /// packing only the zips stay reserved.
    pub(crate) async fn pack_containers(
        &self,
        plan: &mut RoutePlan,
        envelope: &Envelope,
        payload: &Bytes,
    ) -> Result<Result<Option<OwnedSemaphorePermit>, RouteFailure>, StoreError> {
        // What each container will hold, before anything is read.
        let mut sizes = Vec::new();
        for (i, output) in plan.outputs.iter().enumerate() {
            let Some(container) = &output.container else {
                continue;
            };
            let mut size = output.bytes.len() as u64 + ENTRY_OVERHEAD;
            for entry in &container.entries {
                size += ENTRY_OVERHEAD
                    + match entry.source {
                        EntrySource::Payload => payload.len() as u64,
                        EntrySource::Attachment(i) => match envelope.attachments.get(i) {
                            Some(a) => a.blob.size,
                            None => {
                                return Ok(Err(dead(
                                    plan,
                                    &output.target,
                                    format!("attachment {i} is not on the message"),
                                )))
                            }
                        },
                    };
            }
            sizes.push((i, size));
        }
        let Some(largest) = sizes.iter().map(|(_, s)| *s).max() else {
            return Ok(Ok(None));
        };
        let held = sizes
            .iter()
            .fold(0u64, |sum, (_, s)| sum.saturating_add(*s));
        let need = memory_units(held.saturating_add(largest));
        let keep = memory_units(held);
        let total = memory_units(self.settings.document_memory);
        if need > total {
            let targets = sizes
                .iter()
                .filter_map(|(i, _)| plan.outputs.get(*i))
                .map(|o| o.target.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(Err(dead(
                plan,
                &targets,
                format!(
                    "packing needs about {need} MiB, more than the hub's memory budget for documents in flight ({total} MiB, [server] document_memory)"
                ),
            )));
        }
        let Some((mut memory, _)) = crate::worker::acquire(
            &self.memory_permits,
            u32::try_from(need).unwrap_or(u32::MAX),
        )
        .await
        else {
            // Only while shutting down: the route job runs again later.
            return Err(StoreError::Backend(
                "the hub's memory budget is closed (shutting down)".into(),
            ));
        };
        let mut packed = Vec::new();
        for &(i, size) in &sizes {
            let Some((output, Some(container))) = plan.outputs.get(i).map(|o| (o, &o.container))
            else {
                continue;
            };
            match self
                .pack(container, &output.bytes, envelope, payload, size)
                .await
            {
                Ok(zip) => packed.push((i, zip)),
                Err(PackError::Dead(reason)) => return Ok(Err(dead(plan, &output.target, reason))),
                Err(PackError::Retry(e)) => return Err(e),
            }
        }
        for (i, zip) in packed {
            if let Some(output) = plan.outputs.get_mut(i) {
                output.container = None;
                output.bytes = zip;
                output.packed = true;
            }
        }
        // The parts are gone; the zips stay reserved.
        drop(memory.split(need.saturating_sub(keep)));
        Ok(Ok(Some(memory)))
    }

    /// Reads what the container holds (the attachments from the blob
    /// store), then writes the zip on a blocking thread (deflating is CPU
    /// work).
    async fn pack(
        &self,
        container: &Container,
        message: &Bytes,
        envelope: &Envelope,
        payload: &Bytes,
        size: u64,
    ) -> Result<Bytes, PackError> {
        let mut parts: Vec<(String, Bytes)> = Vec::with_capacity(container.entries.len() + 1);
        parts.push((container.message_file.clone(), message.clone()));
        for entry in &container.entries {
            let bytes = match entry.source {
                EntrySource::Payload => payload.clone(),
                EntrySource::Attachment(i) => {
                    let Some(a) = envelope.attachments.get(i) else {
                        return Err(PackError::Dead(format!(
                            "attachment {i} is not on the message"
                        )));
                    };
                    self.read_attachment(a).await?
                }
            };
            parts.push((entry.name.clone(), bytes));
        }
        let capacity = usize::try_from(size).unwrap_or(usize::MAX);
        tokio::task::spawn_blocking(move || write_zip(&parts, capacity))
            .await
            .map_err(|e| PackError::Dead(format!("packing failed: {e}")))?
    }

    async fn read_attachment(
        &self,
        a: &drehscheibe_model::AttachmentRef,
    ) -> Result<Bytes, PackError> {
        let retry = |e: &dyn std::fmt::Display| {
            PackError::Retry(StoreError::Backend(format!(
                "reading attachment {:?}: {e}",
                a.name
            )))
        };
        let mut reader = self.blobs.open(&a.blob).await.map_err(|e| match e {
            drehscheibe_model::BlobError::NotFound(_) => PackError::Dead(format!(
                "attachment {:?} is gone from the blob store ({e})",
                a.name
            )),
            e => retry(&e),
        })?;
        let mut bytes = Vec::with_capacity(usize::try_from(a.blob.size).unwrap_or(0));
        // The blob's recorded size bounds the read.
        (&mut reader)
            .take(a.blob.size.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| retry(&e))?;
        // Hashing up to an attachment's size limit is CPU work: off the
        // async runtime, like the packing itself.
        let (size, sha256) = (a.blob.size, a.blob.sha256.clone());
        let (bytes, intact) = tokio::task::spawn_blocking(move || {
            let intact =
                bytes.len() as u64 == size && drehscheibe_model::sha256_hex(&bytes) == sha256;
            (bytes, intact)
        })
        .await
        .map_err(|e| retry(&e))?;
        if !intact {
            return Err(PackError::Dead(format!(
                "attachment {:?} in the blob store is not what was received (size or SHA-256 differs): corrupt",
                a.name
            )));
        }
        Ok(Bytes::from(bytes))
    }
}

/// The failure of a plan whose container output `target` cannot be packed.
fn dead(plan: &RoutePlan, target: &str, reason: String) -> RouteFailure {
    RouteFailure::Dead {
        reason: format!("output {target}: container: {reason}"),
        rule: Some(plan.rule.clone()),
    }
}

fn write_zip(parts: &[(String, Bytes)], capacity: usize) -> Result<Bytes, PackError> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(capacity)));
    for (name, bytes) in parts {
        let options = SimpleFileOptions::default()
            .compression_method(compression(name))
            .unix_permissions(0o644)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(bytes).map_err(zip::result::ZipError::Io))
            .map_err(|e| PackError::Dead(format!("writing {name}: {e}")))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| PackError::Dead(format!("finishing the zip: {e}")))?;
    Ok(Bytes::from(cursor.into_inner()))
}

enum PackError {
    /// The container cannot be made: the message goes dead.
    Dead(String),
    /// The store failed: try again later.
    Retry(StoreError),
}

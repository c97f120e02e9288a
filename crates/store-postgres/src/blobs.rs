//! [`PgBlobStore`]: content-addressed attachments in PostgreSQL, as
//! chunked `bytea` rows (ADR 0016 has the measurements against large
//! objects).
//!
//! # Layout
//!
//! ```text
//! drehscheibe_blob_uploads (upload_id, instance, started_at)   one per put/stage
//! drehscheibe_blob_chunks  (upload_id, seq, data)             ≤ 1 MiB each
//! drehscheibe_blobs        (sha256, size, chunks, upload_id)  a finished blob
//! drehscheibe_blob_holds   (sha256, holders, kept)            stagings in flight
//! ```
//!
//! `put` streams the reader into chunk rows of a fresh upload, one
//! autocommitted `INSERT` per [`CHUNK_BYTES`] (no connection is held
//! while the client is slow, no blob is ever whole in memory), hashing as
//! it goes. Then one short transaction, under a transaction advisory lock
//! on the content hash, either adopts the upload as the blob (a row in
//! `drehscheibe_blobs` naming it) or — the content is stored already —
//! deletes the upload. The blob is durable when `put` returns (every
//! commit is). Reading fetches one chunk per query, so a reader holds one
//! chunk in memory and a pooled connection only per chunk.
//!
//! # Staging
//!
//! The same rules as [`FsBlobStore`](drehscheibe_store::FsBlobStore),
//! but the holds live in `drehscheibe_blob_holds`, so every instance
//! sees every staging in flight: a `stage` that creates the blob opens a
//! hold (`kept = false`), a `stage` of stored content joins or opens a
//! `kept` hold, a plain `put` of held content marks it kept, and the last
//! `keep_staged`/`discard_staged` ends the hold and removes the blob
//! unless it was kept. [`BlobStore::remove_unreferenced`] takes the same
//! advisory lock, so no staging can end or begin on that content while it
//! asks the store's reference count.
//!
//! A crash leaves uploads that never finished and holds that never end;
//! [`PgBlobStore::sweep`] removes those older than a cut-off (pass a time
//! before which no live request can have started, e.g. an hour ago).

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use drehscheibe_model::{BlobError, BlobReader, BlobRef, BlobStore, UnreferencedCheck};
use drehscheibe_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::store::{retrying, Oops, PgStore, Res};

/// Size of one chunk row.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Blob store in the hub's PostgreSQL database (see the module docs).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgBlobStore {
    store: PgStore,
}

fn io(e: StoreError) -> BlobError {
    BlobError::Io(std::io::Error::other(e.to_string()))
}

/// 64 lowercase hex digits.
fn valid(sha256: &str) -> bool {
    sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('drehscheibe-blob:' || $1, 0))";

/// Deletes an unfinished upload unless disarmed (error, limit,
/// cancellation of the caller).
struct UploadGuard {
    store: Option<PgStore>,
    upload: Uuid,
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let upload = self.upload;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = delete_upload(&store, upload).await {
                    tracing::warn!(error = %e, %upload, "could not delete an unfinished blob upload; the sweep will");
                }
            });
        }
    }
}

async fn delete_upload(store: &PgStore, upload: Uuid) -> Result<(), StoreError> {
    retrying!(store, "delete blob upload", async {
        let client = store.client().await?;
        client
            .execute(
                "DELETE FROM drehscheibe_blob_uploads WHERE upload_id = $1",
                &[&upload],
            )
            .await?;
        Ok(())
    })
}

/// Delete the blob row and its chunks (inside a transaction holding the
/// content's lock).
async fn delete_blob(tx: &deadpool_postgres::Transaction<'_>, sha256: &str) -> Res<bool> {
    let gone = tx
        .query_opt(
            "DELETE FROM drehscheibe_blobs WHERE sha256 = $1 RETURNING upload_id",
            &[&sha256],
        )
        .await?;
    if let Some(row) = &gone {
        let upload: Uuid = row.get(0);
        tx.execute(
            "DELETE FROM drehscheibe_blob_uploads WHERE upload_id = $1",
            &[&upload],
        )
        .await?;
    }
    Ok(gone.is_some())
}

impl PgBlobStore {
    /// The blob store in `store`'s database (same pool).
    pub fn new(store: &PgStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Stream `reader` into a new upload; returns the upload, the blob
    /// reference and the number of chunks.
    async fn upload(
        &self,
        mut reader: BlobReader,
        limit: u64,
    ) -> Result<(UploadGuard, BlobRef, i32), BlobError> {
        let store = &self.store;
        let upload = Uuid::now_v7();
        let me = store.instance_id().to_owned();
        retrying!(store, "start blob upload", async {
            let client = store.client().await?;
            let st = client
                .prepare_cached(
                    "INSERT INTO drehscheibe_blob_uploads (upload_id, instance) VALUES ($1, $2)",
                )
                .await?;
            client.execute(&st, &[&upload, &me]).await?;
            Ok(())
        })
        .map_err(io)?;
        let guard = UploadGuard {
            store: Some(store.clone()),
            upload,
        };
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut seq: i32 = 0;
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let mut filled = 0;
            while filled < CHUNK_BYTES {
                let n = reader.read(&mut buf[filled..]).await?;
                if n == 0 {
                    break;
                }
                filled += n;
                size = size.saturating_add(n as u64);
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
            }
            if filled == 0 {
                break;
            }
            let chunk = &buf[..filled];
            hasher.update(chunk);
            retrying!(store, "write blob chunk", async {
                let client = store.client().await?;
                let st = client
                    .prepare_cached(
                        "INSERT INTO drehscheibe_blob_chunks (upload_id, seq, data) VALUES ($1, $2, $3)",
                    )
                    .await?;
                client.execute(&st, &[&upload, &seq, &chunk]).await?;
                Ok(())
            })
            .map_err(io)?;
            seq += 1;
            if filled < CHUNK_BYTES {
                break;
            }
        }
        let blob = BlobRef {
            sha256: hex::encode(hasher.finalize()),
            size,
        };
        Ok((guard, blob, seq))
    }

    /// `put` (`stage` false) or `stage`: upload, then adopt or drop the
    /// upload under the content's lock (see the module docs).
    async fn store_blob(
        &self,
        reader: BlobReader,
        limit: u64,
        stage: bool,
    ) -> Result<BlobRef, BlobError> {
        let (mut guard, blob, chunks) = self.upload(reader, limit).await?;
        let store = &self.store;
        let upload = guard.upload;
        let size = i64::try_from(blob.size).unwrap_or(i64::MAX);
        retrying!(store, "finish blob upload", async {
            let mut client = store.client().await?;
            let tx = client.transaction().await?;
            tx.execute(LOCK, &[&blob.sha256]).await?;
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM drehscheibe_blobs WHERE sha256 = $1",
                    &[&blob.sha256],
                )
                .await?
                .is_some();
            if exists {
                tx.execute(
                    "DELETE FROM drehscheibe_blob_uploads WHERE upload_id = $1",
                    &[&upload],
                )
                .await?;
                let hold = tx
                    .query_opt(
                        "SELECT holders FROM drehscheibe_blob_holds WHERE sha256 = $1",
                        &[&blob.sha256],
                    )
                    .await?;
                match (hold, stage) {
                    (Some(_), true) => {
                        tx.execute(
                            "UPDATE drehscheibe_blob_holds SET holders = holders + 1, \
                             updated_at = now() WHERE sha256 = $1",
                            &[&blob.sha256],
                        )
                        .await?;
                    }
                    (Some(_), false) => {
                        tx.execute(
                            "UPDATE drehscheibe_blob_holds SET kept = true WHERE sha256 = $1",
                            &[&blob.sha256],
                        )
                        .await?;
                    }
                    // Stored earlier: the hold keeps the collector away,
                    // `kept` keeps the discard from removing it.
                    (None, true) => {
                        tx.execute(
                            "INSERT INTO drehscheibe_blob_holds (sha256, holders, kept) \
                             VALUES ($1, 1, true)",
                            &[&blob.sha256],
                        )
                        .await?;
                    }
                    (None, false) => {}
                }
            } else {
                tx.execute(
                    "INSERT INTO drehscheibe_blobs (sha256, size, chunks, upload_id) \
                     VALUES ($1, $2, $3, $4)",
                    &[&blob.sha256, &size, &chunks, &upload],
                )
                .await?;
                if stage {
                    tx.execute(
                        "INSERT INTO drehscheibe_blob_holds (sha256, holders, kept) \
                         VALUES ($1, 1, false) ON CONFLICT (sha256) DO UPDATE \
                         SET holders = drehscheibe_blob_holds.holders + 1, updated_at = now()",
                        &[&blob.sha256],
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(exists)
        })
        .map_err(io)?;
        // Adopted as the blob, or deleted above: nothing left to clean.
        guard.store = None;
        Ok(blob)
    }

    /// End one staging of `blob` (see the module docs).
    async fn end_staging(&self, blob: &BlobRef, keep: bool) -> Result<(), BlobError> {
        if !valid(&blob.sha256) {
            return Ok(());
        }
        let store = &self.store;
        retrying!(store, "end blob staging", async {
            let mut client = store.client().await?;
            let tx = client.transaction().await?;
            tx.execute(LOCK, &[&blob.sha256]).await?;
            let Some(hold) = tx
                .query_opt(
                    "SELECT holders, kept FROM drehscheibe_blob_holds WHERE sha256 = $1",
                    &[&blob.sha256],
                )
                .await?
            else {
                // Not staged as new content: never ours to remove.
                return Ok(());
            };
            let holders: i32 = hold.get(0);
            let kept = hold.get::<_, bool>(1) || keep;
            if holders > 1 {
                tx.execute(
                    "UPDATE drehscheibe_blob_holds SET holders = $2, kept = $3, updated_at = now() \
                     WHERE sha256 = $1",
                    &[&blob.sha256, &(holders - 1), &kept],
                )
                .await?;
            } else {
                tx.execute(
                    "DELETE FROM drehscheibe_blob_holds WHERE sha256 = $1",
                    &[&blob.sha256],
                )
                .await?;
                if !kept && delete_blob(&tx, &blob.sha256).await? {
                    tracing::debug!(sha256 = %blob.sha256, "removed a staged attachment nobody accepted");
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .map_err(io)
    }

    /// Clean up after crashed instances: delete uploads started before
    /// `older_than` that never became a blob, and end holds last touched
    /// before it — removing their blob unless it was kept or `store`
    /// references it. Returns the blobs removed.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn sweep(
        &self,
        store: &dyn Store,
        older_than: DateTime<Utc>,
    ) -> Result<u64, BlobError> {
        let pg = &self.store;
        let (uploads, holds): (u64, Vec<(String, bool)>) = retrying!(pg, "sweep blobs", async {
            let client = pg.client().await?;
            let uploads = client
                .execute(
                    "DELETE FROM drehscheibe_blob_uploads u WHERE started_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM drehscheibe_blobs b WHERE b.upload_id = u.upload_id)",
                    &[&older_than],
                )
                .await?;
            let holds = client
                .query(
                    "SELECT sha256, kept FROM drehscheibe_blob_holds WHERE updated_at < $1",
                    &[&older_than],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok((uploads, holds))
        })
        .map_err(io)?;
        if holds.is_empty() {
            if uploads > 0 {
                tracing::info!(uploads, "removed blob uploads that never finished");
            }
            return Ok(0);
        }
        let referenced = store
            .referenced_blobs(holds.iter().map(|(s, _)| s.clone()).collect())
            .await
            .map_err(io)?;
        let mut removed = 0;
        for (sha, kept) in holds {
            let gone = retrying!(pg, "sweep blob hold", async {
                let mut client = pg.client().await?;
                let tx = client.transaction().await?;
                tx.execute(LOCK, &[&sha]).await?;
                let stale = tx
                    .execute(
                        "DELETE FROM drehscheibe_blob_holds WHERE sha256 = $1 AND updated_at < $2",
                        &[&sha, &older_than],
                    )
                    .await?
                    == 1;
                let gone =
                    stale && !kept && !referenced.contains(&sha) && delete_blob(&tx, &sha).await?;
                tx.commit().await?;
                Ok(gone)
            })
            .map_err(io)?;
            removed += u64::from(gone);
        }
        tracing::info!(uploads, removed, "swept blob stagings a crash interrupted");
        Ok(removed)
    }
}

#[async_trait]
impl BlobStore for PgBlobStore {
    async fn put(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.store_blob(reader, limit, false).await
    }

    async fn stage(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.store_blob(reader, limit, true).await
    }

    async fn keep_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        self.end_staging(blob, true).await
    }

    async fn discard_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        self.end_staging(blob, false).await
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        if !valid(&blob.sha256) {
            return Err(BlobError::NotFound(blob.sha256.clone()));
        }
        let store = &self.store;
        let row: Option<(i64, i32, Uuid)> = retrying!(store, "open blob", async {
            let client = store.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT size, chunks, upload_id FROM drehscheibe_blobs WHERE sha256 = $1",
                )
                .await?;
            Ok(client
                .query_opt(&st, &[&blob.sha256])
                .await?
                .map(|r| (r.get(0), r.get(1), r.get(2))))
        })
        .map_err(io)?;
        let Some((size, chunks, upload)) = row else {
            return Err(BlobError::NotFound(blob.sha256.clone()));
        };
        if u64::try_from(size).ok() != Some(blob.size) {
            return Err(BlobError::Corrupt {
                sha256: blob.sha256.clone(),
            });
        }
        let store = store.clone();
        let stream = futures::stream::unfold(0i32, move |seq| {
            let store = store.clone();
            async move {
                if seq >= chunks {
                    return None;
                }
                let chunk = read_chunk(&store, upload, seq).await;
                Some((chunk, seq + 1))
            }
        });
        let reader = tokio_util::io::StreamReader::new(Box::pin(stream));
        Ok(Box::pin(reader) as Pin<Box<dyn tokio::io::AsyncRead + Send>>)
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        if !valid(&blob.sha256) {
            return Ok(false);
        }
        let store = &self.store;
        let size: Option<i64> = retrying!(store, "blob contains", async {
            let client = store.client().await?;
            let st = client
                .prepare_cached("SELECT size FROM drehscheibe_blobs WHERE sha256 = $1")
                .await?;
            Ok(client
                .query_opt(&st, &[&blob.sha256])
                .await?
                .map(|r| r.get(0)))
        })
        .map_err(io)?;
        Ok(size.and_then(|s| u64::try_from(s).ok()) == Some(blob.size))
    }

    /// The advisory lock on the content hash is held while `unreferenced`
    /// is asked, so the pool needs a second connection for it (a pool of
    /// one answers `false`: the blob stays).
    async fn remove_unreferenced(
        &self,
        sha256: &str,
        unreferenced: UnreferencedCheck<'_>,
    ) -> Result<bool, BlobError> {
        if !valid(sha256) {
            return Ok(true);
        }
        let store = &self.store;
        let mut client = store.client().await.map_err(|e| io(e.into_store()))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| io(Oops::from(e).into_store()))?;
        let result: Res<bool> = async {
            tx.execute(LOCK, &[&sha256]).await?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM drehscheibe_blob_holds WHERE sha256 = $1",
                    &[&sha256],
                )
                .await?
                .is_some();
            if held || !unreferenced().await {
                return Ok(false);
            }
            if delete_blob(&tx, sha256).await? {
                tracing::debug!(sha256, "removed an attachment no stored message references");
            }
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => {
                tx.commit()
                    .await
                    .map_err(|e| io(Oops::from(e).into_store()))?;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(io(e.into_store())),
        }
    }
}

/// One chunk of an upload.
async fn read_chunk(store: &PgStore, upload: Uuid, seq: i32) -> std::io::Result<Bytes> {
    let data: Option<Vec<u8>> = retrying!(store, "read blob chunk", async {
        let client = store.client().await?;
        let st = client
            .prepare_cached(
                "SELECT data FROM drehscheibe_blob_chunks WHERE upload_id = $1 AND seq = $2",
            )
            .await?;
        Ok(client
            .query_opt(&st, &[&upload, &seq])
            .await?
            .map(|r| r.get(0)))
    })
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    data.map(Bytes::from).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("blob chunk {seq} of upload {upload} is missing (the blob was removed?)"),
        )
    })
}

//! Behaviour of `FsBlobStore` on a real directory.

#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use drehscheibe_model::{BlobError, BlobRef, BlobStore};
use drehscheibe_store::FsBlobStore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Deterministic pseudo-random bytes, produced on demand (never whole in
/// memory), in reads of at most 10 000 bytes.
struct Generated {
    state: u64,
    left: u64,
}

impl Generated {
    fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed | 1,
            left: len,
        }
    }

    fn next_byte(&mut self) -> u8 {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 24) as u8
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(10_000) as usize;
        for _ in 0..n {
            let b = self.next_byte();
            buf.put_slice(&[b]);
        }
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// SHA-256 of a generated stream, computed independently of the store.
async fn sha_of(seed: u64, len: u64) -> String {
    let mut g = Generated::new(seed, len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = g.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const MB: u64 = 1024 * 1024;

#[tokio::test]
async fn put_and_open_stream_a_few_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let len = 3 * MB + 17;
    let blob = blobs
        .put(Box::pin(Generated::new(7, len)), 4 * MB)
        .await
        .unwrap();
    let expected = sha_of(7, len).await;
    assert_eq!(
        blob,
        BlobRef {
            sha256: expected.clone(),
            size: len
        }
    );

    let path = dir.path().join(&expected[..2]).join(&expected);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(blobs.contains(&blob).await.unwrap());

    // Read back in chunks and hash.
    let mut reader = blobs.open(&blob).await.unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 50_000];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    assert_eq!(total, len);
    assert_eq!(hex::encode(h.finalize()), expected);
}

#[tokio::test]
async fn limit_is_enforced_and_temp_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let err = blobs
        .put(Box::pin(Generated::new(1, MB + 1)), MB)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { limit } if limit == MB),
        "{err}"
    );
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert_eq!(files_in(dir.path()), ["staged", "tmp"], "nothing stored");

    // Exactly at the limit is fine.
    let blob = blobs
        .put(Box::pin(Generated::new(1, MB)), MB)
        .await
        .unwrap();
    assert_eq!(blob.size, MB);
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let a = blobs
        .put(Box::pin(Generated::new(3, 100_000)), MB)
        .await
        .unwrap();
    let b = blobs
        .put(Box::pin(Generated::new(3, 100_000)), MB)
        .await
        .unwrap();
    let c = blobs
        .put(Box::pin(Generated::new(4, 100_000)), MB)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a.sha256, c.sha256);
    assert_eq!(
        files_in(&dir.path().join(&a.sha256[..2])),
        vec![a.sha256.clone()]
    );
    assert!(files_in(&dir.path().join("tmp")).is_empty());

    let empty = blobs.put(Box::pin(tokio::io::empty()), MB).await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(
        empty.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[tokio::test]
async fn missing_foreign_and_damaged_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let missing = BlobRef {
        sha256: "ab".repeat(32),
        size: 1,
    };
    assert!(!blobs.contains(&missing).await.unwrap());
    assert!(matches!(
        blobs.open(&missing).await.err().unwrap(),
        BlobError::NotFound(_)
    ));

    // A reference that is not a hash never becomes a path.
    std::fs::write(dir.path().join("secret"), b"x").unwrap();
    for bad in ["../secret", "secret", &"AB".repeat(32), ""] {
        let r = BlobRef {
            sha256: bad.to_string(),
            size: 1,
        };
        assert!(!blobs.contains(&r).await.unwrap(), "{bad}");
        assert!(
            matches!(blobs.open(&r).await.err().unwrap(), BlobError::NotFound(_)),
            "{bad}"
        );
    }

    // A stored file whose size differs from the reference is corrupt.
    let blob = blobs
        .put(Box::pin(Generated::new(9, 1000)), MB)
        .await
        .unwrap();
    let path = dir.path().join(&blob.sha256[..2]).join(&blob.sha256);
    std::fs::write(&path, b"truncated").unwrap();
    assert!(!blobs.contains(&blob).await.unwrap());
    assert!(matches!(
        blobs.open(&blob).await.err().unwrap(),
        BlobError::Corrupt { .. }
    ));
}

#[tokio::test]
async fn stale_temp_files_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(dir.path().join("tmp").join("0190.part"), b"half a blob").unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    // Finished blobs are kept across reopen.
    let blob = blobs
        .put(Box::pin(Generated::new(5, 4096)), MB)
        .await
        .unwrap();
    drop(blobs);
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    assert!(blobs.contains(&blob).await.unwrap());
}

/// A reader that fails midway: the temp file is removed, nothing stored.
#[tokio::test]
async fn reader_error_leaves_nothing_behind() {
    struct Failing(u32);
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.0 == 0 {
                return Poll::Ready(Err(io::Error::other("connection reset")));
            }
            self.0 -= 1;
            buf.put_slice(&[0u8; 1000]);
            Poll::Ready(Ok(()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let err = blobs.put(Box::pin(Failing(5)), MB).await.unwrap_err();
    assert!(matches!(err, BlobError::Io(_)), "{err}");
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert_eq!(files_in(dir.path()), ["staged", "tmp"]);
}

fn staged_markers(dir: &Path) -> Vec<String> {
    files_in(&dir.join("staged"))
}

fn blob_path(dir: &Path, sha: &str) -> std::path::PathBuf {
    dir.join(&sha[..2]).join(sha)
}

#[tokio::test]
async fn a_discarded_staging_removes_the_blob_and_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let blob = store
        .stage(Box::pin(Generated::new(1, 70_000)), MB)
        .await
        .unwrap();
    assert!(blob_path(dir.path(), &blob.sha256).is_file());
    assert_eq!(
        staged_markers(dir.path()),
        std::slice::from_ref(&blob.sha256)
    );
    store.discard_staged(&blob).await.unwrap();
    assert!(!blob_path(dir.path(), &blob.sha256).exists());
    assert!(staged_markers(dir.path()).is_empty());
    assert!(!store.contains(&blob).await.unwrap());
}

#[tokio::test]
async fn a_kept_staging_stays_and_loses_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let blob = store
        .stage(Box::pin(Generated::new(2, 1000)), MB)
        .await
        .unwrap();
    store.keep_staged(&blob).await.unwrap();
    assert!(store.contains(&blob).await.unwrap());
    assert!(staged_markers(dir.path()).is_empty());
    // A later staging of the same content that is discarded leaves the
    // stored blob alone: the content existed before it.
    let again = store
        .stage(Box::pin(Generated::new(2, 1000)), MB)
        .await
        .unwrap();
    assert_eq!(again, blob);
    store.discard_staged(&again).await.unwrap();
    assert!(store.contains(&blob).await.unwrap());
}

#[tokio::test]
async fn shared_content_stays_until_the_last_staging_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let stage = || store.stage(Box::pin(Generated::new(3, 5000)), MB);
    let first = stage().await.unwrap();
    let second = stage().await.unwrap();
    assert_eq!(first, second);
    // One request gives up; the other is still in flight.
    store.discard_staged(&first).await.unwrap();
    assert!(store.contains(&second).await.unwrap());
    // The other is accepted: the content stays for good.
    store.keep_staged(&second).await.unwrap();
    assert!(store.contains(&second).await.unwrap());
    assert!(staged_markers(dir.path()).is_empty());

    // Two stagings, both discarded: gone.
    let a = store
        .stage(Box::pin(Generated::new(4, 5000)), MB)
        .await
        .unwrap();
    let b = store
        .stage(Box::pin(Generated::new(4, 5000)), MB)
        .await
        .unwrap();
    store.discard_staged(&a).await.unwrap();
    assert!(store.contains(&b).await.unwrap());
    store.discard_staged(&b).await.unwrap();
    assert!(!store.contains(&b).await.unwrap());

    // A plain put of staged content makes it stay.
    let staged = store
        .stage(Box::pin(Generated::new(5, 5000)), MB)
        .await
        .unwrap();
    let put = store
        .put(Box::pin(Generated::new(5, 5000)), MB)
        .await
        .unwrap();
    assert_eq!(staged, put);
    store.discard_staged(&staged).await.unwrap();
    assert!(store.contains(&put).await.unwrap());
}

//! What only the file-system blob store has: files, its temporary
//! directory and the markers of staged blobs. The behaviour every
//! `BlobStore` shares (streaming, limits, identical content, staging) is
//! in the store contract (`drehscheibe_store::contract`, run on
//! `FsBlobStore` by `tests/contract.rs`).

#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use drehscheibe_model::{BlobError, BlobStore};
use drehscheibe_store::contract::Generated;
use drehscheibe_store::FsBlobStore;
use tokio::io::{AsyncRead, ReadBuf};

const MB: u64 = 1024 * 1024;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn blob_path(dir: &Path, sha: &str) -> std::path::PathBuf {
    dir.join(&sha[..2]).join(sha)
}

#[tokio::test]
async fn a_blob_is_one_file_named_by_its_hash_and_no_temp_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let len = 3 * MB + 17;
    let blob = blobs
        .put(Box::pin(Generated::new(7, len)), 4 * MB)
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(blob_path(dir.path(), &blob.sha256))
            .unwrap()
            .len(),
        len
    );
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    // The same content again: still one file.
    let again = blobs
        .put(Box::pin(Generated::new(7, len)), 4 * MB)
        .await
        .unwrap();
    assert_eq!(again, blob);
    assert_eq!(
        files_in(&dir.path().join(&blob.sha256[..2])),
        vec![blob.sha256.clone()]
    );
}

#[tokio::test]
async fn a_blob_over_the_limit_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    let err = blobs
        .put(Box::pin(Generated::new(1, MB + 1)), MB)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { .. }), "{err}");
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert_eq!(files_in(dir.path()), ["staged", "tmp"], "nothing stored");
}

#[tokio::test]
async fn a_damaged_file_and_a_name_that_is_not_a_hash_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path()).unwrap();
    // A reference that is not a hash never becomes a path.
    std::fs::write(dir.path().join("secret"), b"x").unwrap();
    let r = drehscheibe_model::BlobRef {
        sha256: "../secret".into(),
        size: 1,
    };
    assert!(matches!(
        blobs.open(&r).await.err().unwrap(),
        BlobError::NotFound(_)
    ));
    // A stored file whose size differs from the reference is corrupt.
    let blob = blobs
        .put(Box::pin(Generated::new(9, 1000)), MB)
        .await
        .unwrap();
    std::fs::write(blob_path(dir.path(), &blob.sha256), b"truncated").unwrap();
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
async fn a_reader_error_leaves_no_file() {
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
    assert_eq!(files_in(dir.path()), ["staged", "tmp"]);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn a_staging_has_a_marker_until_it_is_kept_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let staged = || files_in(&dir.path().join("staged"));
    let discarded = store
        .stage(Box::pin(Generated::new(1, 70_000)), MB)
        .await
        .unwrap();
    assert!(blob_path(dir.path(), &discarded.sha256).is_file());
    assert_eq!(staged(), std::slice::from_ref(&discarded.sha256));
    store.discard_staged(&discarded).await.unwrap();
    assert!(!blob_path(dir.path(), &discarded.sha256).exists());
    assert!(staged().is_empty());

    let kept = store
        .stage(Box::pin(Generated::new(2, 1000)), MB)
        .await
        .unwrap();
    store.keep_staged(&kept).await.unwrap();
    assert!(blob_path(dir.path(), &kept.sha256).is_file());
    assert!(staged().is_empty());
}

//! Adapter state spaces (`drehscheibe_store::state`) on a real sled store.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_store::state::MAX_STATE_PAGE;
use drehscheibe_store::{SledStore, StateSpace, Store};

fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).unwrap())
}

#[tokio::test]
async fn put_get_delete_and_spaces_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = StateSpace::new(store.clone(), "a").unwrap();
    // "ab" + "c" must not meet "a" + "bc": names are length-prefixed.
    let ab = StateSpace::new(store.clone(), "ab").unwrap();

    let mut tx = a.begin();
    assert_eq!(tx.get(b"bc").await.unwrap(), None);
    tx.put(b"bc", Bytes::from_static(b"one"));
    tx.put(b"x", Bytes::from_static(b"two"));
    assert_eq!(tx.get(b"bc").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(tx.commit().await.unwrap());

    assert_eq!(a.get(b"bc").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(ab.get(b"c").await.unwrap(), None);
    assert!(ab.scan(b"", None, 10).await.unwrap().is_empty());

    let mut tx = a.begin();
    tx.delete(b"bc");
    assert_eq!(tx.get(b"bc").await.unwrap(), None, "own delete is seen");
    assert!(tx.commit().await.unwrap());
    assert_eq!(a.get(b"bc").await.unwrap(), None);
    assert_eq!(a.get(b"x").await.unwrap().as_deref(), Some(&b"two"[..]));
}

#[tokio::test]
async fn scans_page_by_prefix_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = StateSpace::new(store.clone(), "mailboxes").unwrap();
    let mut tx = s.begin();
    for i in (0..25u32).rev() {
        tx.put(
            format!("alice\0{i:04}").as_bytes(),
            i.to_be_bytes().to_vec(),
        );
    }
    tx.put(b"alicf", Bytes::from_static(b"outside"));
    tx.put(b"alic", Bytes::from_static(b"outside"));
    assert!(tx.commit().await.unwrap());

    let first = s.scan(b"alice\0", None, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].0, b"alice\x000000");
    let next = s.scan(b"alice\0", Some(&first[9].0), 100).await.unwrap();
    assert_eq!(next.len(), 15);
    assert_eq!(next[0].0, b"alice\x000010");
    assert_eq!(next[14].0, b"alice\x000024");
    assert_eq!(next[14].1.as_ref(), 24u32.to_be_bytes());

    assert_eq!(s.scan_up_to(b"alice\0", 25).await.unwrap().len(), 25);
    assert_eq!(s.scan_up_to(b"alice\0", 100).await.unwrap().len(), 25);
    let first = s.scan_up_to(b"alice\0", 24).await.unwrap();
    assert_eq!(first.len(), 24, "the bound cuts the list");
    assert_eq!(first[23].0, b"alice\x000023");
    // The page is capped whatever the caller asks for; scan_up_to pages on.
    assert!(s.scan(b"", None, usize::MAX).await.unwrap().len() <= MAX_STATE_PAGE);
    let mut tx = s.begin();
    for i in 0..(MAX_STATE_PAGE as u32 + 500) {
        tx.put(format!("bob\0{i:06}").as_bytes(), Bytes::new());
    }
    assert!(tx.commit().await.unwrap());
    assert_eq!(
        s.scan_up_to(b"bob\0", 10_000).await.unwrap().len(),
        MAX_STATE_PAGE + 500
    );
    let some = s.scan_up_to(b"bob\0", MAX_STATE_PAGE + 200).await.unwrap();
    assert_eq!(some.len(), MAX_STATE_PAGE + 200);
    assert_eq!(
        some.last().unwrap().0,
        format!("bob\0{:06}", MAX_STATE_PAGE + 199).into_bytes()
    );
}

#[tokio::test]
async fn a_commit_over_a_changed_read_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = StateSpace::new(store.clone(), "s").unwrap();

    // Two transactions both find the key absent and create it: one wins.
    let mut t1 = s.begin();
    let mut t2 = s.begin();
    assert_eq!(t1.get(b"k").await.unwrap(), None);
    assert_eq!(t2.get(b"k").await.unwrap(), None);
    t1.put(b"k", Bytes::from_static(b"1"));
    t1.put(b"other", Bytes::from_static(b"1"));
    t2.put(b"k", Bytes::from_static(b"2"));
    t2.put(b"other", Bytes::from_static(b"2"));
    assert!(t2.commit().await.unwrap());
    assert!(!t1.commit().await.unwrap(), "t1 read a key t2 changed");
    assert_eq!(s.get(b"k").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.get(b"other").await.unwrap().as_deref(), Some(&b"2"[..]));

    // A deleted key read as present conflicts too.
    let mut t3 = s.begin();
    assert!(t3.get(b"k").await.unwrap().is_some());
    let mut t4 = s.begin();
    t4.delete(b"k");
    assert!(t4.commit().await.unwrap());
    t3.put(b"k", Bytes::from_static(b"3"));
    assert!(!t3.commit().await.unwrap());
    assert_eq!(s.get(b"k").await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_increments_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = StateSpace::new(store.clone(), "counter").unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    s.update(|mut tx| async move {
                        let n = tx
                            .get(b"n")
                            .await?
                            .map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
                        tx.put(b"n", (n + 1).to_be_bytes().to_vec());
                        Ok((tx, ()))
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = s.get(b"n").await.unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(n.as_ref().try_into().unwrap()), 320);
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let s = StateSpace::new(store.clone(), "durable").unwrap();
        let mut tx = s.begin();
        tx.put(b"k", Bytes::from_static(b"v"));
        assert!(tx.commit().await.unwrap());
    }
    let store = open(dir.path());
    let s = StateSpace::new(store, "durable").unwrap();
    assert_eq!(s.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn bad_space_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for name in ["", "a\0b", &"x".repeat(201)] {
        assert!(StateSpace::new(store.clone(), name).is_err(), "{name:?}");
        assert!(store.state_get(name, b"k").await.is_err(), "{name:?}");
    }
}

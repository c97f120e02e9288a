//! The Intermediär's state on a real sled store: a delivery's way through
//! the postbox and its Laufzettel, and the sweep that keeps the state
//! space from growing for ever.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use drehscheibe_model::BlobRef;
use drehscheibe_osci::state::{
    Advanced, Dialog, IntermediaryState, IssuedId, PostboxEntry, ProcessCard, StoreOutcome,
    SweepCursor, SweepPolicy, Swept,
};

fn state() -> (tempfile::TempDir, IntermediaryState) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn drehscheibe_store::Store> =
        Arc::new(drehscheibe_store::SledStore::open(&dir.path().join("store")).unwrap());
    (dir, IntermediaryState::new(store, "osci").unwrap())
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const POLICY: SweepPolicy = SweepPolicy {
    keep_process_cards: Duration::from_secs(1000),
    keep_unused_ids: Duration::from_secs(100),
};

async fn issue(s: &IntermediaryState, id: &str, client: &str, when: u64) {
    s.issue_id(id, &issued_to(client, when), 1000)
        .await
        .unwrap();
}

/// An unused message id of `client`, issued at `when` (Unix seconds).
fn issued_to(client: &str, when: u64) -> IssuedId {
    IssuedId {
        client: client.into(),
        issued: String::new(),
        issued_unix: when,
        used: false,
        delivery: None,
    }
}

/// A fresh dialog of `client` that ends at `expires` (Unix seconds).
fn dialog(client: &str, expires: u64) -> Dialog {
    Dialog {
        client: client.into(),
        client_cipher: String::new(),
        challenge: "x".into(),
        next_sequence: 0,
        expires,
        pending_receipt: None,
    }
}

fn entry(id: &str) -> (PostboxEntry, ProcessCard) {
    (
        PostboxEntry {
            message_id: id.into(),
            content: BlobRef {
                sha256: "ab".repeat(32),
                size: 3,
            },
            subject: None,
            stored: String::new(),
            stored_unix_ms: 0,
        },
        ProcessCard {
            message_id: id.into(),
            originator: "alice".into(),
            addressee: "bob".into(),
            subject: None,
            creation: at(10),
            forwarding: None,
            reception: None,
        },
    )
}

#[tokio::test]
async fn a_delivery_goes_through_the_postbox_once() {
    let (_d, s) = state();
    let (e, c) = entry("m1");
    // Not issued: refused, nothing stored.
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::NotIssued
    );
    assert!(s.process_card("m1").await.unwrap().is_none());
    // Issued to someone else: refused.
    issue(&s, "m1", "mallory", 10).await;
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::NotIssued
    );
    issue(&s, "m1", "alice", 10).await;
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::AlreadyStored
    );
    assert_eq!(s.open_deliveries("bob", 10).await.unwrap().len(), 1);
    assert!(s.open_deliveries("carol", 10).await.unwrap().is_empty());
    s.mark_forwarded("m1", at(20)).await.unwrap();
    assert!(s.confirm_reception("bob", "m1", at(30)).await.unwrap());
    assert!(!s.confirm_reception("bob", "m1", at(31)).await.unwrap());
    assert!(s.open_deliveries("bob", 10).await.unwrap().is_empty());
    let card = s.process_card("m1").await.unwrap().unwrap();
    assert_eq!(card.forwarding, Some(at(20)));
    assert_eq!(card.reception, Some(at(30)));
    // A retry of the StoreDelivery after reception stores nothing again;
    // the id used for something else is a conflict.
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::AlreadyStored
    );
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "other", 10)
            .await
            .unwrap(),
        StoreOutcome::Conflict
    );
    assert!(s.open_deliveries("bob", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sweep_removes_what_is_over_and_keeps_the_rest() {
    let (_d, s) = state();
    // Two dialogs: one past its timeout.
    let dialog = |expires| dialog("c", expires);
    let old = s.open_dialog(&dialog(50), 100).await.unwrap().unwrap();
    let live = s.open_dialog(&dialog(5000), 100).await.unwrap().unwrap();
    // An unused id, old; an unused id, fresh; a received delivery, old;
    // an open delivery, old.
    issue(&s, "unused-old", "alice", 10).await;
    issue(&s, "unused-new", "alice", 1900).await;
    for id in ["received", "open"] {
        issue(&s, id, "alice", 10).await;
        let (e, c) = entry(id);
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap();
    }
    s.confirm_reception("bob", "received", at(20))
        .await
        .unwrap();
    let mut cursor = SweepCursor::default();
    // Small pages: the cursor carries the sweep on.
    let mut total = Swept::default();
    for _ in 0..6 {
        let n = s.sweep(at(2000), POLICY, &mut cursor, 1).await.unwrap();
        total.dialogs += n.dialogs;
        total.ids += n.ids;
        total.cards += n.cards;
    }
    assert_eq!(
        total,
        Swept {
            dialogs: 1,
            ids: 2,
            cards: 1
        }
    );
    assert!(s.dialog(&old).await.unwrap().is_none());
    assert!(s.dialog(&live).await.unwrap().is_some());
    assert!(s.process_card("received").await.unwrap().is_none());
    // The open delivery and its card stay, whatever their age.
    assert!(s.process_card("open").await.unwrap().is_some());
    assert_eq!(s.open_deliveries("bob", 10).await.unwrap().len(), 1);
    // The fresh unused id can still be used.
    let (e, c) = entry("unused-new");
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    // The old one cannot.
    let (e, c) = entry("unused-old");
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::NotIssued
    );
}

#[tokio::test]
async fn a_full_postbox_refuses_and_takes_again_once_emptied() {
    let (_d, s) = state();
    for id in ["a", "b", "c"] {
        issue(&s, id, "alice", 10).await;
    }
    for id in ["a", "b"] {
        let (e, c) = entry(id);
        assert_eq!(
            s.store_delivery("alice", "bob", &e, &c, id, 2)
                .await
                .unwrap(),
            StoreOutcome::Stored
        );
    }
    let (e, c) = entry("c");
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "c", 2)
            .await
            .unwrap(),
        StoreOutcome::Full
    );
    // Another postbox is not affected.
    issue(&s, "d", "alice", 10).await;
    let (e2, c2) = entry("d");
    assert_eq!(
        s.store_delivery("alice", "carol", &e2, &c2, "d", 2)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    assert!(s.confirm_reception("bob", "a", at(20)).await.unwrap());
    assert_eq!(
        s.store_delivery("alice", "bob", &e, &c, "c", 2)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
}

/// A client holds at most so many open dialogs and unused message ids;
/// what ends a dialog (ExitDialog, the sweep after its timeout) or uses or
/// sweeps an id gives its place back, and nothing is counted for ever.
#[tokio::test]
async fn a_client_holds_at_most_its_quota_of_dialogs_and_unused_ids() {
    let (_d, s) = state();
    // Dialogs: two at most.
    let first = s.open_dialog(&dialog("c", 50), 2).await.unwrap().unwrap();
    let second = s.open_dialog(&dialog("c", 5000), 2).await.unwrap().unwrap();
    assert_eq!(s.open_dialog(&dialog("c", 5000), 2).await.unwrap(), None);
    // Another client is not affected.
    assert!(s
        .open_dialog(&dialog("d", 5000), 2)
        .await
        .unwrap()
        .is_some());
    assert_eq!(s.quota_used("c").await.unwrap(), (2, 0));
    // ExitDialog gives a place back …
    let seen = s.dialog(&second).await.unwrap().unwrap();
    assert_eq!(
        s.advance_dialog(&second, &seen, None, None).await.unwrap(),
        Advanced::Moved
    );
    // … a replay of it does not give a second one back.
    assert_eq!(
        s.advance_dialog(&second, &seen, None, None).await.unwrap(),
        Advanced::Replayed
    );
    assert_eq!(s.quota_used("c").await.unwrap(), (1, 0));
    let third = s.open_dialog(&dialog("c", 5000), 2).await.unwrap().unwrap();
    assert_eq!(s.open_dialog(&dialog("c", 5000), 2).await.unwrap(), None);
    // An advance inside a dialog keeps its place.
    let seen = s.dialog(&third).await.unwrap().unwrap();
    let mut next = seen.clone();
    next.next_sequence = 1;
    assert_eq!(
        s.advance_dialog(&third, &seen, Some(&next), None)
            .await
            .unwrap(),
        Advanced::Moved
    );
    assert_eq!(s.quota_used("c").await.unwrap(), (2, 0));

    // Unused ids: two at most.
    let issue = |id: &'static str, when| {
        let s = s.clone();
        async move { s.issue_id(id, &issued_to("c", when), 2).await.unwrap() }
    };
    assert!(issue("old", 10).await);
    assert!(issue("used", 1900).await);
    assert!(!issue("refused", 1900).await);
    assert!(s.issued("refused").await.unwrap().is_none());
    // A StoreDelivery uses one: a place for another.
    let (e, c) = entry("used");
    assert_eq!(
        s.store_delivery("c", "bob", &e, &c, "d1", 10)
            .await
            .unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(s.quota_used("c").await.unwrap(), (2, 1));
    assert!(issue("fresh", 1900).await);
    assert!(!issue("refused", 1900).await);

    // The sweep: the first dialog timed out, the old id expired.
    let mut cursor = SweepCursor::default();
    let swept = s.sweep(at(2000), POLICY, &mut cursor, 100).await.unwrap();
    assert_eq!((swept.dialogs, swept.ids), (1, 1));
    assert!(s.dialog(&first).await.unwrap().is_none());
    assert_eq!(s.quota_used("c").await.unwrap(), (1, 1));
    assert!(issue("after-sweep", 1900).await);
    assert!(s
        .open_dialog(&dialog("c", 5000), 2)
        .await
        .unwrap()
        .is_some());
    assert_eq!(s.quota_used("c").await.unwrap(), (2, 2));

    // Everything ended: nothing is counted any more.
    let later = at(1_000_000);
    let mut cursor = SweepCursor::default();
    s.sweep(later, POLICY, &mut cursor, 100).await.unwrap();
    assert_eq!(s.quota_used("c").await.unwrap(), (0, 0));
    assert_eq!(s.quota_used("d").await.unwrap(), (0, 0));
}

/// A delivery the hub takes in itself uses its id like a postbox delivery
/// (a place back), and clients that do not sign share one quota: their
/// cipher certificates are public, so none can use up a signing client's.
#[tokio::test]
async fn hub_deliveries_give_ids_back_and_unsigned_clients_share_a_quota() {
    let (_d, s) = state();
    let issue = |id: &'static str, client: &'static str| {
        let s = s.clone();
        async move { s.issue_id(id, &issued_to(client, 10), 1).await.unwrap() }
    };
    assert!(issue("h1", "alice").await);
    assert!(!issue("h2", "alice").await);
    let (_, card) = entry("h1");
    assert_eq!(
        s.record_hub_delivery("alice", &card, "d").await.unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(s.quota_used("alice").await.unwrap(), (0, 0));
    assert!(issue("h2", "alice").await);

    let unsigned = |cipher: &str| format!("{}{cipher}", drehscheibe_osci::state::UNSIGNED);
    assert!(s
        .open_dialog(&dialog(&unsigned("aa"), 5000), 1)
        .await
        .unwrap()
        .is_some());
    // Another unsigned client: the shared quota is used up …
    assert_eq!(
        s.open_dialog(&dialog(&unsigned("bb"), 5000), 1)
            .await
            .unwrap(),
        None
    );
    // … a signing client is not affected.
    assert!(s
        .open_dialog(&dialog("bob", 5000), 1)
        .await
        .unwrap()
        .is_some());
}

/// GetMessageId inside a dialog: the id is issued in the transaction that
/// moves the dialog on. At the quota neither happens (the client keeps its
/// challenge); a request checked against a dialog that moved on since
/// issues nothing; otherwise both happen.
#[tokio::test]
async fn an_id_issued_in_a_dialog_moves_it_on_or_changes_nothing() {
    let (_d, s) = state();
    let conv = s
        .open_dialog(&dialog("c", 5000), 10)
        .await
        .unwrap()
        .unwrap();
    let seen = s.dialog(&conv).await.unwrap().unwrap();
    let mut next = seen.clone();
    next.challenge = "y".into();
    next.next_sequence = 1;
    let record = issued_to("c", 10);
    let advance = |id: &'static str, seen: Dialog, next: Dialog, max: u64| {
        let (s, conv, record) = (s.clone(), conv.clone(), record.clone());
        async move {
            s.advance_dialog(&conv, &seen, Some(&next), Some((id, &record, max)))
                .await
                .unwrap()
        }
    };
    // One unused id already held: at a quota of 1, refused, nothing moved.
    issue(&s, "held", "c", 10).await;
    assert_eq!(
        advance("refused", seen.clone(), next.clone(), 1).await,
        Advanced::QuotaFull
    );
    assert_eq!(s.dialog(&conv).await.unwrap(), Some(seen.clone()));
    assert!(s.issued("refused").await.unwrap().is_none());
    assert_eq!(s.quota_used("c").await.unwrap(), (1, 1));
    // With room: both.
    assert_eq!(
        advance("served", seen.clone(), next.clone(), 2).await,
        Advanced::Moved
    );
    assert_eq!(s.dialog(&conv).await.unwrap(), Some(next.clone()));
    assert_eq!(s.issued("served").await.unwrap().unwrap().client, "c");
    assert_eq!(s.quota_used("c").await.unwrap(), (1, 2));
    // The same request again (checked against the old dialog): nothing.
    assert_eq!(
        advance("replayed", seen, next.clone(), 10).await,
        Advanced::Replayed
    );
    assert!(s.issued("replayed").await.unwrap().is_none());
    assert_eq!(s.dialog(&conv).await.unwrap(), Some(next));
    assert_eq!(s.quota_used("c").await.unwrap(), (1, 2));
}

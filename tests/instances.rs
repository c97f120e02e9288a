//! Several `drehscheibe serve` processes on one PostgreSQL database are
//! one hub (`[store] type = "postgres"`, ADR 0016):
//!
//! - any instance accepts, routes and delivers any message; one instance
//!   is `SIGKILL`ed ten times under load while the other keeps running,
//!   and every acknowledged message is delivered (duplicates counted and
//!   bounded by what the killed instance had in flight);
//! - a channel's tasks (here the directory intake) run in one instance at
//!   a time and move to the other when their instance dies;
//! - a database restart under load: the hub answers `503` while the
//!   database is away — never `202` for something it did not store — and
//!   recovers on its own.
//!
//! These tests always use PostgreSQL (the machine's server, and a server
//! of the test's own for the restart), so they run in the suite's default
//! pass; the `DREHSCHEIBE_TEST_STORE=postgres` pass says so and does not
//! repeat them.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drehscheibe_suite::pg_cluster::PgCluster;
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    fixture_rules, free_port, http_tenant, order, test_pg_url, Api, HubProcess, StoreKind,
    TestConfig, OPERATOR, SENDER,
};

const LEISTUNG: &str = "99050012104000";
const KILLS: usize = 10;

/// `true` (after saying so) in the suite's postgres pass.
fn already_covered() -> bool {
    if StoreKind::from_env() == StoreKind::Postgres {
        eprintln!("note: this test always uses PostgreSQL and ran in the default pass");
        return true;
    }
    false
}

fn tenant(url: &str) -> String {
    http_tenant(
        "alpha",
        "01001000",
        LEISTUNG,
        url,
        "retry = { max_attempts = 100, initial_backoff = \"50ms\", max_backoff = \"500ms\" }",
    )
}

fn addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// What a sender saw.
#[derive(Default)]
struct Sent {
    /// Idempotency key → message id, for every `2xx`.
    acked: Mutex<BTreeMap<String, String>>,
    /// `503` answers.
    unavailable: AtomicU64,
    /// Other failures (connection refused while an instance restarts…).
    failed: AtomicU64,
}

/// Post messages with idempotency keys `<name>-<seq>` to `first`; a post
/// that fails is retried with the same key at `second` (as a load
/// balancer would send it to the other instance).
fn sender(
    name: &'static str,
    first: Api,
    second: Api,
    sent: Arc<Sent>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seq = 0u64;
        let mut target = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let api = if target == 0 { &first } else { &second };
            let key = format!("{name}-{seq}");
            let r = api
                .http
                .post(format!("{}/api/v1/inbox/portal", api.base))
                .bearer_auth(SENDER)
                .header("content-type", "application/xml")
                .header("idempotency-key", &key)
                .timeout(Duration::from_secs(10))
                .body(order("01001000", LEISTUNG, 200 + (seq as usize % 50)))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let v: serde_json::Value = r.json().await.unwrap();
                    sent.acked
                        .lock()
                        .unwrap()
                        .insert(key, v["id"].as_str().unwrap().to_owned());
                    seq += 1;
                    target = 0;
                }
                Ok(r) => {
                    if r.status() == 503 {
                        sent.unavailable.fetch_add(1, Ordering::SeqCst);
                    } else {
                        sent.failed.fetch_add(1, Ordering::SeqCst);
                    }
                    target ^= 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    sent.failed.fetch_add(1, Ordering::SeqCst);
                    target ^= 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
}

/// Wait until the receiver got every id in `ids`; returns (missing,
/// deliveries per id).
async fn wait_delivered(
    rx: &Receiver,
    ids: &BTreeSet<String>,
    timeout: Duration,
) -> (usize, BTreeMap<String, usize>) {
    let end = Instant::now() + timeout;
    loop {
        let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
        for r in rx.accepted("/fv") {
            *per_id
                .entry(r.header("x-drehscheibe-message-id"))
                .or_default() += 1;
        }
        let missing = ids.iter().filter(|id| !per_id.contains_key(*id)).count();
        if missing == 0 || Instant::now() > end {
            return (missing, per_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_stay_one_hub_through_ten_sigkills_of_one() {
    if already_covered() {
        return;
    }
    let rx = Receiver::start().await;
    let (a, b) = (addr(), addr());
    let cfg = TestConfig::write_full(
        &a.to_string(),
        "workers = 4",
        &fixture_rules(),
        &[("alpha", tenant(&rx.url("/fv")))],
        StoreKind::Postgres,
    );
    let (log_a, log_b) = (cfg.path("a.log"), cfg.path("b.log"));
    let mut hub_a = HubProcess::spawn(&cfg.main, a, &log_a).await;
    let hub_b = HubProcess::spawn_instance(&cfg.main, b, &log_b).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Sent::default());
    let senders = [
        sender("to-a", Api::new(a), Api::new(b), sent.clone(), stop.clone()),
        sender("to-b", Api::new(b), Api::new(a), sent.clone(), stop.clone()),
    ];
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + 60 * round as u64)).await;
        hub_a.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub_a = HubProcess::spawn(&cfg.main, a, &log_a).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.unwrap();
    }

    let acked: Vec<String> = sent.acked.lock().unwrap().values().cloned().collect();
    let ids: BTreeSet<String> = acked.iter().cloned().collect();
    assert!(
        acked.len() >= 40,
        "too few messages got in: {}",
        acked.len()
    );
    // Distinct keys, distinct messages — whichever instance answered.
    assert_eq!(ids.len(), acked.len(), "two keys got one message id");
    let (missing, deliveries) = wait_delivered(&rx, &ids, Duration::from_secs(120)).await;
    let duplicates: usize = deliveries.values().map(|n| n - 1).sum();
    println!(
        "two instances: {} acknowledged, {} delivered, {missing} missing, {duplicates} duplicate deliveries, {} failed posts, during {KILLS} SIGKILLs of one instance",
        ids.len(),
        deliveries.len(),
        sent.failed.load(Ordering::SeqCst)
    );
    assert_eq!(
        missing,
        0,
        "acknowledged messages were lost; logs: {} {}",
        log_a.display(),
        log_b.display()
    );
    // A duplicate needs a delivery in flight in the killed instance: at
    // most its in-flight limit (workers × 32) per kill.
    assert!(
        duplicates <= KILLS * 4 * 32,
        "{duplicates} duplicates for {KILLS} kills"
    );

    // Either instance answers for any message.
    let (api_a, api_b) = (Api::new(a), Api::new(b));
    for (i, id) in ids.iter().enumerate().take(40) {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        api.wait_state(id, "delivered", Duration::from_secs(30))
            .await;
    }
    // A replay asked of one instance is the hub's: a message that came
    // in through a is replayed through b (and the other way round), as a
    // new generation, delivered again.
    let to_a: Vec<String> = sent
        .acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("to-a-"))
        .map(|(_, id)| id.clone())
        .take(3)
        .collect();
    let generation = |view: &serde_json::Value| {
        view["deliveries"][0]["generation"]
            .as_u64()
            .unwrap_or_else(|| panic!("no delivery generation in {view:#}"))
    };
    let mut first = Vec::new();
    for id in &to_a {
        first.push(generation(&api_a.message(id).await));
    }
    let before = rx.accepted("/fv").len();
    for id in &to_a {
        let (s, v) = api_b
            .post_empty(&format!("/api/v1/messages/{id}/replay"), OPERATOR)
            .await;
        assert_eq!(s, 202, "{v}");
    }
    rx.wait_accepted("/fv", before + to_a.len(), Duration::from_secs(30))
        .await;
    for (id, first) in to_a.iter().zip(first) {
        let view = api_a
            .wait_state(id, "delivered", Duration::from_secs(30))
            .await;
        assert_eq!(
            generation(&view),
            first + 1,
            "replayed through b, seen from a as a new generation"
        );
    }
    assert!(hub_a.terminate(), "graceful shutdown of a");
    assert!(hub_b.terminate(), "graceful shutdown of b");
}

/// The instance (`host:port`) holding the lease of `channel`.
async fn lease_holder(schema: &str, channel: &str) -> Option<String> {
    let store = drehscheibe_store_postgres::PgStore::connect(
        &test_pg_url(),
        drehscheibe_store_postgres::PgOptions::new("probe").with_schema(schema),
    )
    .await
    .unwrap();
    store
        .singleton_holder(&format!("channel:{channel}"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channels_tasks_run_in_one_instance_and_move_when_it_dies() {
    if already_covered() {
        return;
    }
    let rx = Receiver::start().await;
    let (a, b) = (addr(), addr());
    let cfg = TestConfig::write_full(
        &a.to_string(),
        "",
        &fixture_rules(),
        &[("alpha", tenant(&rx.url("/fv")))],
        StoreKind::Postgres,
    );
    let schema = cfg.pg_schema.clone().unwrap();
    let hub_a = HubProcess::spawn(&cfg.main, a, &cfg.path("a.log")).await;
    let hub_b = HubProcess::spawn_instance(&cfg.main, b, &cfg.path("b.log")).await;
    // Both instances watch the same folder (one configuration).
    let inbox = cfg.path("inbox");
    let drop_files = |from: usize, n: usize| {
        for i in from..from + n {
            let tmp = cfg.path(&format!("file-{i}.tmp"));
            std::fs::write(&tmp, order("01001000", LEISTUNG, 100 + i)).unwrap();
            std::fs::rename(&tmp, inbox.join(format!("antrag-{i}.xml"))).unwrap();
        }
    };

    drop_files(0, 10);
    rx.wait_accepted("/fv", 10, Duration::from_secs(60)).await;
    let holder = lease_holder(&schema, "dropbox")
        .await
        .expect("one instance holds the directory channel's lease");
    let (holder_port, other) = if holder.ends_with(&format!(":{}", a.port())) {
        (a.port(), (hub_b, hub_a))
    } else {
        assert!(
            holder.ends_with(&format!(":{}", b.port())),
            "holder {holder}"
        );
        (b.port(), (hub_a, hub_b))
    };
    let (survivor, holder_hub) = other;
    holder_hub.kill();
    let killed = Instant::now();

    // The survivor takes the channel over once the dead holder's lease
    // expires (15 s) and ingests what arrives meanwhile.
    drop_files(10, 10);
    rx.wait_accepted("/fv", 20, Duration::from_secs(60)).await;
    let took = killed.elapsed();
    let new_holder = lease_holder(&schema, "dropbox").await.unwrap();
    assert!(
        !new_holder.ends_with(&format!(":{holder_port}")),
        "the lease stayed with the dead instance: {new_holder}"
    );
    // Exactly once: each file is one message, delivered once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = rx.accepted("/fv");
    let ids: BTreeSet<String> = delivered
        .iter()
        .map(|r| r.header("x-drehscheibe-message-id"))
        .collect();
    println!(
        "channel lease: held by {holder}, taken over by {new_holder} {:.1} s after the kill; {} deliveries of {} messages",
        took.as_secs_f64(),
        delivered.len(),
        ids.len()
    );
    assert_eq!(ids.len(), 20, "each dropped file is one message");
    assert_eq!(
        delivered.len(),
        20,
        "no file was taken in by both instances"
    );
    assert!(
        std::fs::read_dir(&inbox)
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().ends_with(".xml")),
        "every file was taken out of the inbox"
    );
    assert!(survivor.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_503_never_202_and_the_hub_recovers_by_itself() {
    if already_covered() {
        return;
    }
    let db = PgCluster::start();
    let rx = Receiver::start().await;
    let a = addr();
    let cfg = TestConfig::write_postgres(
        &a.to_string(),
        "",
        &[("alpha", tenant(&rx.url("/fv")))],
        &db.url(),
        "connect_timeout = \"1s\"\nstatement_timeout = \"5s\"",
    );
    let hub = HubProcess::spawn(&cfg.main, a, &cfg.path("hub.log")).await;
    let api = Api::new(a);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Sent::default());
    let s = sender(
        "restart",
        Api::new(a),
        Api::new(a),
        sent.clone(),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = sent.acked.lock().unwrap().len();
    assert!(before > 0, "nothing accepted before the restart");

    let at_down = sent.acked.lock().unwrap().len();
    db.down();
    let down_at = Instant::now();
    // While the database is away: /readyz says so.
    let mut readyz_down = None;
    while down_at.elapsed() < Duration::from_secs(4) {
        let (status, text) = api.readyz().await;
        if status == 503 {
            readyz_down = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_up = sent.acked.lock().unwrap().len();
    let unavailable = sent.unavailable.load(Ordering::SeqCst);
    db.up();
    let up_at = Instant::now();

    // The hub recovers by itself: readiness and intake come back.
    loop {
        let (status, text) = api.readyz().await;
        if status == 200 {
            break;
        }
        assert!(
            up_at.elapsed() < Duration::from_secs(30),
            "/readyz stayed {status}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = up_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    s.await.unwrap();
    let acked: BTreeSet<String> = sent.acked.lock().unwrap().values().cloned().collect();
    assert!(acked.len() > at_up, "no message accepted after the restart");

    let (missing, deliveries) = wait_delivered(&rx, &acked, Duration::from_secs(60)).await;
    println!(
        "database restart: {} acknowledged ({at_down} before the stop, {} while the database was away: requests in flight at the stop), {unavailable} answered 503, {} other failures, ready again {:.1} s after the database, {missing} missing, {} duplicates",
        acked.len(),
        at_up - at_down,
        sent.failed.load(Ordering::SeqCst),
        recovered.as_secs_f64(),
        deliveries.values().map(|n| n - 1).sum::<usize>()
    );
    let readyz_down = readyz_down.expect("/readyz answered 503 while the database was away");
    assert!(
        readyz_down.contains("store"),
        "/readyz names the store: {readyz_down}"
    );
    assert!(unavailable > 0, "no 503 while the database was away");
    assert_eq!(
        missing, 0,
        "a 202 was given for a message that was not stored"
    );
    for id in acked.iter().take(20) {
        api.wait_state(id, "delivered", Duration::from_secs(30))
            .await;
    }
    assert!(hub.terminate());
}

/// A FIT-Connect sender behind a load balancer: its token, announcement,
/// uploads and submit each reach another instance. Tokens hold on every
/// instance, the encrypted uploads live in the database (no instance's
/// disk holds them), and the case's event log reads the same everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fit_connect_submission_may_take_each_step_through_another_instance() {
    use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
    use drehscheibe_fit_connect::set;
    use drehscheibe_suite::fit::{self, Sender, DEST};

    if already_covered() {
        return;
    }
    let rx = Receiver::start().await;
    let (a, b) = (addr(), addr());
    let cfg = TestConfig::write_full(
        &a.to_string(),
        &fit::channel_toml(a.port()),
        &fixture_rules(),
        &[("alpha", fit::tenant(&rx.url("/alpha")))],
        StoreKind::Postgres,
    );
    let hub_a = HubProcess::spawn(&cfg.main, a, &cfg.path("a.log")).await;
    let hub_b = HubProcess::spawn_instance(&cfg.main, b, &cfg.path("b.log")).await;
    let at = |addr: SocketAddr| Sender {
        http: reqwest::Client::new(),
        base: format!("http://{addr}/fit-connect"),
    };
    let (via_a, via_b) = (at(a), at(b));

    let token = via_a.bearer().await;
    let key =
        RsaPrivateKey::from_pem(&std::fs::read_to_string(fit::key_file("dest-a.pem")).unwrap())
            .unwrap()
            .encryption_jwk();
    let enc = |bytes: &[u8]| jose::encrypt_compact(bytes, &key, true).unwrap();
    let (att1, att2) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let r = via_b.announce(&token, DEST, &[att1, att2]).await;
    assert_eq!(r.status(), 201, "a token of instance a holds at b");
    let created: serde_json::Value = r.json().await.unwrap();
    let sid = created["submissionId"].as_str().unwrap().to_owned();
    let case = created["caseId"].as_str().unwrap().to_owned();
    let pdf1 = b"%PDF-1.7 Gewerbeanmeldung Anlage 1".to_vec();
    let pdf2: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    for (via, id, bytes) in [(&via_a, att1, &pdf1), (&via_b, att2, &pdf2)] {
        let r = via
            .http
            .put(format!(
                "{}/v1/submissions/{sid}/attachments/{id}",
                via.base
            ))
            .bearer_auth(&token)
            .header("content-type", "application/jose")
            .body(enc(bytes))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let uploads = cfg.path("data").join("fit-connect/fit/uploads").join(&sid);
    assert!(
        !uploads.exists(),
        "no instance keeps an upload on its own disk: {}",
        uploads.display()
    );

    let data = br#"{"kommune":"09162000","leistung":"99108008252000"}"#;
    let meta = fit::metadata(data, &[(att1, &pdf1), (att2, &pdf2)]);
    let (status, body) = via_a.submit(&token, &sid, &enc(&meta), &enc(data)).await;
    assert_eq!(status, 200, "{body}");
    // A second submit through the other instance is the same submission.
    let (status, body) = via_b.submit(&token, &sid, &enc(&meta), &enc(data)).await;
    assert_eq!(status, 409, "{body}");

    let got = rx.wait_accepted("/alpha", 1, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 1);
    let body = String::from_utf8_lossy(&got[0].body).into_owned();
    assert!(
        body.contains("Gewerbeanmeldung Anlage 1"),
        "first attachment delivered"
    );
    assert!(
        got[0].body.len() > pdf2.len(),
        "second attachment delivered"
    );

    // The case log, read through either instance: submit, then accept
    // (written by whichever instance follows the channel's cases).
    let end = Instant::now() + Duration::from_secs(60);
    let jwks = via_b.jwks().await;
    loop {
        // Read a, then b: the log only grows, so what a showed is where
        // b's begins (the follower may append between the two reads).
        let from_a = via_a.events(&token, &case).await;
        let from_b = via_b.events(&token, &case).await;
        assert!(
            from_b.starts_with(&from_a),
            "one case log: {from_a:?} / {from_b:?}"
        );
        let kinds: Vec<String> = from_a
            .iter()
            .map(|e| set::verify_set(e, &jwks).unwrap().event)
            .collect();
        if kinds.len() == 2 {
            assert_eq!(kinds, [set::SUBMIT_SUBMISSION, set::ACCEPT_SUBMISSION]);
            assert_eq!(from_b, from_a, "one case log");
            break;
        }
        assert!(Instant::now() < end, "no accept-submission: {kinds:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(hub_a.terminate());
    assert!(hub_b.terminate());
}

//! Crash safety: the hub runs as a child process (`drehscheibe serve`), a
//! sender streams messages at it, and the hub is `SIGKILL`ed mid-flight
//! several times and restarted on the same data directory. Every message
//! the hub acknowledged with `202` must be delivered at least once; the
//! number of duplicate deliveries is reported.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{free_port, http_tenant, order, Api, HubProcess, TestConfig, SENDER};

const LEISTUNG: &str = "99050012104000";
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_repeated_sigkill() {
    let rx = Receiver::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        "workers = 4",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &rx.url("/fv"),
                "retry = { max_attempts = 100, initial_backoff = \"50ms\", max_backoff = \"500ms\" }",
            ),
        )],
    );
    let log = cfg.path("hub.log");
    let mut hub = HubProcess::spawn(&cfg.main, addr, &log).await;

    // The sender: a sequence of messages, each with its own idempotency
    // key; a failed post (hub down) is retried with the same key, as a
    // real online service would.
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let acked = acked.clone();
        let stop = stop.clone();
        let api = Api::new(addr);
        tokio::spawn(async move {
            let mut seq = 0u64;
            let mut refused_attempts = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("crash-{seq}");
                let body = order("01001000", LEISTUNG, 200 + (seq as usize % 50));
                let r = api
                    .http
                    .post(format!("{}/api/v1/inbox/portal", api.base))
                    .bearer_auth(SENDER)
                    .header("content-type", "application/xml")
                    .header("idempotency-key", &key)
                    .timeout(Duration::from_secs(5))
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .insert(seq, v["id"].as_str().unwrap().to_owned());
                        seq += 1;
                    }
                    _ => {
                        refused_attempts += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            refused_attempts
        })
    };

    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(400 + 150 * round as u64)).await;
        hub.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub = HubProcess::spawn(&cfg.main, addr, &log).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let failed_posts = sender.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "the sender got too few messages in: {}",
        acked.len()
    );
    let ids: BTreeSet<String> = acked.values().cloned().collect();
    assert_eq!(ids.len(), acked.len(), "distinct keys got distinct ids");

    // Wait until every acknowledged message arrived at the receiver.
    let end = Instant::now() + Duration::from_secs(90);
    let (missing, deliveries) = loop {
        let got = rx.accepted("/fv");
        let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
        for r in &got {
            *per_id
                .entry(r.header("x-drehscheibe-message-id"))
                .or_default() += 1;
        }
        let missing: Vec<&String> = ids.iter().filter(|id| !per_id.contains_key(*id)).collect();
        if missing.is_empty() || Instant::now() > end {
            break (missing.len(), per_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let duplicates: usize = deliveries.values().map(|n| n - 1).sum();
    println!(
        "crash test: {} acknowledged, {} delivered, {missing} missing, {duplicates} duplicate deliveries, {failed_posts} refused/failed posts during {KILLS} SIGKILLs",
        acked.len(),
        deliveries.len()
    );
    assert_eq!(
        missing,
        0,
        "acknowledged messages were lost; hub log: {}",
        log.display()
    );

    // And the hub's own view agrees after the last restart.
    let api = Api::new(addr);
    for id in ids.iter().take(50) {
        api.wait_state(id, "delivered", Duration::from_secs(30))
            .await;
    }
    assert!(hub.terminate(), "graceful shutdown after SIGTERM");
}

//! What a configuration change costs as the number of Kommunen grows
//! (ADR 0021): a change is checked by loading the whole configuration, so
//! its cost should grow linearly with the tenant files, and the 30 s look
//! for hand edits should cost a read of the files, not a load.
//!
//! Run with `cargo bench --bench config_change` (see `docs/benchmarks.md`,
//! "Configuration changes"). For each size in `BENCH_TENANTS` (default
//! `10,100,1000,3000`) it writes a configuration with that many tenant
//! files (each one HTTP connector and one route), then measures, each
//! `BENCH_ROUNDS` times (default 9), in one process:
//!
//! * `load`: `HubConfig::load` of the whole set (the peer: what start-up
//!   and `config check` do, and the floor of a change's check);
//! * `look`: `disk_digest`, the first look of a reload (read and hash);
//! * `reload`: `POST /api/v1/config/reload` with nothing changed (what
//!   the 30 s poll costs through the service);
//! * `change`: `PUT /api/v1/config/files/tenants/t00000.toml` (check,
//!   atomic write, revision in the store, swap-in) of a real hub on the
//!   embedded store, over loopback HTTP.
//!
//! Medians (and the slowest round) are printed per size, with each
//! figure's ratio to `load` of the same size. Without `--bench` (as under
//! `cargo test --benches`) a smoke run with 10 tenants and 2 rounds runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use drehscheibe_config::HubConfig;
use drehscheibe_suite::bench::{counting_receiver, env_usize, ms};
use drehscheibe_suite::{http_tenant, start, Api, TestConfig, OPERATOR};

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

fn tenant(i: usize, url: &str) -> (String, String) {
    let id = format!("t{i:05}");
    let ags = format!("{:08}", 1_000_000 + i);
    let text = http_tenant(&id, &ags, "99050012104000", url, "");
    (id, text)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if is_bench {
        std::env::var("BENCH_TENANTS")
            .unwrap_or_else(|_| "10,100,1000,3000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    } else {
        vec![10]
    };
    let rounds = env_usize("BENCH_ROUNDS", if is_bench { 9 } else { 2 }).max(1);
    let (rx, _, _) = counting_receiver().await;
    let url = format!("http://{rx}/fv");
    let plugins = drehscheibe_cli::connectors::plugins();

    println!(
        "configuration changes{}: {rounds} rounds per figure, median (slowest)",
        if is_bench { "" } else { " (smoke run)" }
    );
    println!(
        "{:>8} | {:>17} | {:>17} {:>7} | {:>17} {:>7} | {:>17} {:>7}",
        "tenants", "load ms", "look ms", "×load", "reload ms", "×load", "change ms", "×load"
    );
    for &n in &sizes {
        let files: Vec<(String, String)> = (0..n).map(|i| tenant(i, &url)).collect();
        let named: Vec<(&str, String)> = files
            .iter()
            .map(|(id, t)| (id.as_str(), t.clone()))
            .collect();
        let cfg = TestConfig::write("127.0.0.1:0", "", &named);
        let main = cfg.main.clone();

        let mut load = Vec::new();
        let mut dir = None;
        for _ in 0..rounds {
            let t = Instant::now();
            let c = HubConfig::load(&main, &plugins).unwrap();
            load.push(t.elapsed());
            dir = Some(c.tenant_dir);
        }
        let dir = dir.unwrap();
        let mut look = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            drehscheibe_config::disk_digest(&main, &dir).unwrap();
            look.push(t.elapsed());
        }

        let hub = start(&main).await.unwrap();
        let api = Api::new(hub.addr);
        let mut reload = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let (s, o) = api.post_empty("/api/v1/config/reload", OPERATOR).await;
            reload.push(t.elapsed());
            assert_eq!((s, &o["changed"]), (200, &serde_json::json!(false)), "{o}");
        }
        let path = "tenants/t00000.toml";
        let original = files[0].1.clone();
        let mut change = Vec::new();
        for r in 0..rounds {
            let text = original.replace(
                "name = \"Kommune t00000\"",
                &format!("name = \"Kommune t00000 ({r})\""),
            );
            let t = Instant::now();
            let resp = api
                .http
                .put(format!("{}/api/v1/config/files/{path}", api.base))
                .bearer_auth(OPERATOR)
                .json(&serde_json::json!({ "text": text }))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            change.push(t.elapsed());
            assert_eq!(status, 200, "{body}");
        }
        hub.shutdown().await.unwrap();

        let (l, lmax) = median(load);
        let (k, kmax) = median(look);
        let (rl, rlmax) = median(reload);
        let (c, cmax) = median(change);
        let ratio = |d: Duration| d.as_secs_f64() / l.as_secs_f64();
        println!(
            "{n:>8} | {:>7.2} ({:>7.2}) | {:>7.2} ({:>7.2}) {:>6.2}× | {:>7.2} ({:>7.2}) {:>6.2}× | {:>7.2} ({:>7.2}) {:>6.2}×",
            ms(l), ms(lmax), ms(k), ms(kmax), ratio(k), ms(rl), ms(rlmax), ratio(rl), ms(c), ms(cmax), ratio(c)
        );
    }
}

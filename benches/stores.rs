//! The stores compared end to end: the embedded sled store against
//! PostgreSQL with one hub instance and with two instances sharing the
//! database, on the same machine in the same run.
//!
//! Run with `cargo bench --bench stores` (see `docs/benchmarks.md`).
//! Hubs run as child processes (`drehscheibe serve`, release build);
//! the load generator and a counting loopback receiver run in this
//! process. With two instances the senders are split between them (as a
//! load balancer would), and each message counts once, whichever instance
//! delivers it.
//!
//! Peers measured in the same run:
//! - the disk's `write` + `fdatasync` rate of 1 KiB blocks (one thread):
//!   the physical reference of durable acknowledgements;
//! - `pgbench -b simple-update` on its own database of the same server
//!   (32 clients, 2 threads): what the database does with small
//!   durable transactions on this machine;
//! - loopback HTTP alone (the same POSTs straight to the receiver).
//!
//! Where the time goes: the database's committed transactions
//! (`pg_stat_database.xact_commit`) per message delivered.
//!
//! Cases: 1 KiB and 30 KB pass-through messages (the `testorder` rule:
//! recognition, one HTTP delivery) and the shipped `gewerbeanmeldung`
//! rule (two XSLT 2.0 transforms, two deliveries per message).
//!
//! Environment: `BENCH_MESSAGES` (default 5000 per case),
//! `BENCH_CONCURRENCY` (default 32), `BENCH_STORES` (comma list of
//! `sled`, `pg1`, `pg2`), `BENCH_CASES` (comma list of `1k`, `30k`,
//! `gewerbe`), `BENCH_PGBENCH_SECONDS` (default 10). The database is
//! `DREHSCHEIBE_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use drehscheibe_suite::bench::{
    counting_receiver, env_usize, load, ms, peak_rss_mib, percentile, wait_for,
};
use drehscheibe_suite::{
    fixture_rules, free_port, gewerbe_tenant, http_tenant, order, repo_root, test_pg_url,
    HubProcess, StoreKind, TestConfig, SENDER,
};

const LEISTUNG: &str = "99050012104000";

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// psql against the bench database server; returns stdout.
fn psql(db: &str, sql: &str) -> String {
    let base = test_pg_url();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{db}"),
        None => base.clone(),
    };
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-d", &url, "-c", sql])
        .output()
        .expect("psql (postgresql-client) is needed for the stores bench");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test database's name (from its URL).
fn test_db() -> String {
    test_pg_url()
        .rsplit('/')
        .next()
        .unwrap_or("test")
        .split('?')
        .next()
        .unwrap_or("test")
        .to_owned()
}

fn commits() -> u64 {
    psql(
        "postgres",
        &format!(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '{}'",
            test_db()
        ),
    )
    .parse()
    .unwrap_or(0)
}

/// pgbench's simple-update rate (transactions/s) on a database of its own.
fn pgbench(seconds: usize, clients: usize) -> f64 {
    let db = "drehscheibe_pgbench";
    psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    psql("postgres", &format!("CREATE DATABASE {db}"));
    let server = test_pg_url();
    let url = match server.rsplit_once('/') {
        Some((s, _)) => format!("{s}/{db}"),
        None => server,
    };
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &url])
        .output()
        .expect("pgbench is needed for the stores bench");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = Command::new("pgbench")
        .args([
            "-n",
            "-b",
            "simple-update",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout).to_string();
    psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The disk's durable small-write rate: 1 KiB appended and `fdatasync`ed
/// in a loop for `span` (the physical bound of a store that commits each
/// write alone; group commit shares one sync among many).
fn fsync_rate(span: Duration) -> f64 {
    use std::io::Write as _;
    let dir = tempfile::tempdir_in(repo_root().join("target")).unwrap();
    let mut f = std::fs::File::create(dir.path().join("probe")).unwrap();
    let block = [0x5au8; 1024];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < span {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// Deliveries per message.
    outputs: u64,
    depot: std::path::PathBuf,
    tenant: String,
}

fn cases(receiver: SocketAddr) -> Vec<Case> {
    let pass = |name, size: usize| Case {
        name,
        body: order("01001000", LEISTUNG, size.saturating_sub(300)),
        outputs: 1,
        depot: fixture_rules(),
        tenant: http_tenant(
            "alpha",
            "01001000",
            LEISTUNG,
            &format!("http://{receiver}/fv"),
            "max_concurrency = 16",
        ),
    };
    let gewerbe = Case {
        name: "gewerbe",
        body: std::fs::read(
            repo_root().join("rules/gewerbeanmeldung/2.0.0/tests/v2.2-anmeldung/input.xml"),
        )
        .unwrap(),
        outputs: 2,
        depot: repo_root().join("rules"),
        tenant: gewerbe_tenant(receiver),
    };
    let wanted = list("BENCH_CASES", "1k,30k,gewerbe");
    [pass("1k", 1024), pass("30k", 30 * 1024), gewerbe]
        .into_iter()
        .filter(|c| wanted.iter().any(|w| w == c.name))
        .collect()
}

#[tokio::main]
async fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let n = if is_bench {
        env_usize("BENCH_MESSAGES", 5000)
    } else {
        40
    };
    let concurrency = env_usize("BENCH_CONCURRENCY", 32);
    let stores = list("BENCH_STORES", "sled,pg1,pg2");
    println!(
        "stores bench: {n} messages per case, {concurrency} concurrent senders, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    if is_bench && stores.iter().any(|s| s.starts_with("pg")) {
        let secs = env_usize("BENCH_PGBENCH_SECONDS", 10);
        let tps = pgbench(secs, concurrency);
        println!(
            "pgbench  : {tps:>8.0} tps simple-update ({concurrency} clients, {secs} s, scale 10)"
        );
    }
    if is_bench {
        let rate = fsync_rate(Duration::from_secs(3));
        println!("fsync    : {rate:>8.0} write+fdatasync/s of 1 KiB (this disk, one thread)");
    }
    let (raddr, delivered, _) = counting_receiver().await;
    {
        let direct = load(
            format!("http://{raddr}/direct"),
            None,
            order("01001000", LEISTUNG, 30 * 1024 - 300),
            n,
            concurrency,
        )
        .await;
        println!(
            "direct   : {:>8.0} req/s loopback HTTP (30 KB)",
            n as f64 / direct.elapsed.as_secs_f64()
        );
    }
    println!(
        "{:<8} {:<8} {:>10} {:>12} {:>9} {:>9} {:>10} {:>12}",
        "store", "case", "intake/s", "delivered/s", "p50 ms", "p99 ms", "xact/msg", "peak RSS MiB"
    );
    for case in cases(raddr) {
        for store in &stores {
            let instances = match store.as_str() {
                "sled" => 1,
                "pg1" => 1,
                "pg2" => 2,
                other => panic!("BENCH_STORES: unknown store {other:?} (sled, pg1, pg2)"),
            };
            let kind = if store == "sled" {
                StoreKind::Sled
            } else {
                StoreKind::Postgres
            };
            let addrs: Vec<SocketAddr> = (0..instances)
                .map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap())
                .collect();
            let cfg = TestConfig::write_full(
                &addrs[0].to_string(),
                "",
                &case.depot,
                &[("alpha", case.tenant.clone())],
                kind,
            );
            let mut hubs = Vec::new();
            for (i, addr) in addrs.iter().enumerate() {
                let log = cfg.path(&format!("hub-{i}.log"));
                hubs.push(if i == 0 {
                    HubProcess::spawn(&cfg.main, *addr, &log).await
                } else {
                    HubProcess::spawn_instance(&cfg.main, *addr, &log).await
                });
            }
            let xact_before = if kind == StoreKind::Postgres {
                commits()
            } else {
                0
            };
            let before = delivered.load(std::sync::atomic::Ordering::SeqCst);
            let t0 = Instant::now();
            let per = n / instances;
            let mut runs = Vec::new();
            for addr in &addrs {
                runs.push(tokio::spawn(load(
                    format!("http://{addr}/api/v1/inbox/portal"),
                    Some(SENDER),
                    case.body.clone(),
                    per,
                    concurrency / instances,
                )));
            }
            let mut latencies = Vec::new();
            let mut intake_elapsed = Duration::ZERO;
            for r in runs {
                let l = r.await.unwrap();
                intake_elapsed = intake_elapsed.max(l.elapsed);
                latencies.extend(l.latencies);
            }
            latencies.sort();
            let total = (per * instances) as u64;
            wait_for(
                &delivered,
                before + total * case.outputs,
                Duration::from_secs(900),
            )
            .await;
            let e2e = t0.elapsed();
            let xact = if kind == StoreKind::Postgres {
                // Backends report their counters at most once a second.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                format!("{:.1}", (commits() - xact_before) as f64 / total as f64)
            } else {
                "-".to_owned()
            };
            let rss = hubs
                .iter()
                .map(|h| peak_rss_mib(h.child.id()))
                .fold(0.0_f64, f64::max);
            println!(
                "{:<8} {:<8} {:>10.0} {:>12.0} {:>9.2} {:>9.2} {:>10} {:>12.0}",
                store,
                case.name,
                total as f64 / intake_elapsed.as_secs_f64(),
                total as f64 / e2e.as_secs_f64(),
                ms(percentile(&latencies, 0.50)),
                ms(percentile(&latencies, 0.99)),
                xact,
                rss
            );
            for h in hubs {
                assert!(h.terminate(), "graceful shutdown");
            }
        }
    }
}

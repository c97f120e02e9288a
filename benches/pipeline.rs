//! End-to-end load generator: intake → route → HTTP delivery.
//!
//! Run with `cargo bench --bench pipeline` (see `docs/benchmarks.md`).
//! The hub runs as a child process (`drehscheibe serve`, release build,
//! sled store on disk with durable acknowledgements); the load generator
//! and the loopback receivers run in this process.
//!
//! Scenarios:
//! 1. `direct`: the same 30 KB POSTs straight to the receiver (the peer:
//!    what loopback HTTP alone costs on this machine);
//! 2. `hub`: 30 KB XML messages through the hub; messages/s at intake and
//!    end-to-end, p50/p99 intake latency, peak RSS of the hub;
//! 3. `attachment`: one message with a 200 MB attachment (multipart,
//!    streamed from a generator, delivered as multipart to a counting
//!    receiver); peak RSS of the hub;
//! 4. `gewerbe`: the shipped `gewerbeanmeldung` rule (two XSLT 2.0
//!    transforms, two HTTP deliveries per message) end to end;
//! 5. `retention` (only with `BENCH_ONLY=retention`): the hub with a
//!    compressed retention (`payloads = "2s"`, `records = "4s"`, a sweep
//!    every 250 ms) against the same hub with retention off, each taking
//!    `BENCH_RETENTION_MESSAGES` (default 100,000) 30 KB messages; the
//!    data directory's size on disk is printed every tenth of the load.
//!
//! Environment: `BENCH_MESSAGES` (default 5000), `BENCH_CONCURRENCY`
//! (default 32), `BENCH_ATTACHMENT_MB` (default 200), `BENCH_ONLY=gewerbe`
//! (only the peer and the `gewerbe` scenario), `BENCH_ONLY=retention`
//! (only the peer and the `retention` scenario).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use drehscheibe_suite::bench::{
    counting_receiver, disk_bytes, env_usize, load, ms, peak_rss_mib, percentile, wait_for,
};
use drehscheibe_suite::{
    free_port, gewerbe_tenant, http_tenant, order, repo_root, Api, HubProcess, TestConfig, SENDER,
};

const LEISTUNG: &str = "99050012104000";

/// Scenario 2c: the shipped Gewerbemeldung rule end to end.
async fn gewerbe(n: usize, concurrency: usize) {
    let case = repo_root().join("rules/gewerbeanmeldung/2.0.0/tests/v2.2-anmeldung/input.xml");
    let body = std::fs::read(&case).unwrap();
    let (raddr, delivered, _) = counting_receiver().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tenant = gewerbe_tenant(raddr);
    let cfg = TestConfig::write_with_depot(
        &addr.to_string(),
        "",
        &repo_root().join("rules"),
        &[("alpha", tenant)],
    );
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let pid = hub.child.id();
    let t0 = Instant::now();
    let through = load(
        format!("http://{addr}/api/v1/inbox/portal"),
        Some(SENDER),
        body.clone(),
        n,
        concurrency,
    )
    .await;
    wait_for(&delivered, 2 * n as u64, Duration::from_secs(600)).await;
    let end_to_end = t0.elapsed();
    println!(
        "gewerbe  : {:>8.0} msg/s intake, {:>6.0} msg/s delivered end-to-end ({} bytes in, 2 outputs each)   p50 {:>7.2} ms   p99 {:>7.2} ms   peak RSS {:.0} MiB",
        n as f64 / through.elapsed.as_secs_f64(),
        n as f64 / end_to_end.as_secs_f64(),
        body.len(),
        ms(percentile(&through.latencies, 0.50)),
        ms(percentile(&through.latencies, 0.99)),
        peak_rss_mib(pid)
    );
    assert!(hub.terminate());
}

/// Scenario 5: the data directory's size with a short retention and
/// without, over the same load through the whole hub.
async fn retention(n: usize, concurrency: usize, body: &[u8]) {
    let steps = 10;
    let mut columns = Vec::new();
    for (label, section) in [
        (
            "retention on",
            "[retention]\npayloads = \"2s\"\nrecords = \"4s\"\ninterval = \"250ms\"\nbatch = 2000",
        ),
        ("retention off", "[retention]\nenabled = false"),
    ] {
        let (raddr, delivered, _) = counting_receiver().await;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        // The section goes after the [server] keys: it starts its own table.
        let cfg = TestConfig::write(
            &addr.to_string(),
            &format!("\n{section}\n"),
            &[(
                "alpha",
                http_tenant(
                    "alpha",
                    "01001000",
                    LEISTUNG,
                    &format!("http://{raddr}/fv"),
                    "max_concurrency = 16",
                ),
            )],
        );
        let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
        let data = cfg.path("data");
        let t0 = Instant::now();
        let mut samples = vec![(0usize, disk_bytes(&data))];
        for step in 1..=steps {
            let chunk = n / steps;
            load(
                format!("http://{addr}/api/v1/inbox/portal"),
                Some(SENDER),
                body.to_vec(),
                chunk,
                concurrency,
            )
            .await;
            wait_for(&delivered, (chunk * step) as u64, Duration::from_secs(600)).await;
            samples.push((chunk * step, disk_bytes(&data)));
        }
        let rate = (n / steps * steps) as f64 / t0.elapsed().as_secs_f64();
        println!(
            "{label:<14}: {rate:>6.0} msg/s delivered, data directory {:.0} MiB at the end",
            samples.last().map_or(0, |s| s.1) as f64 / 1048576.0
        );
        assert!(hub.terminate());
        columns.push(samples);
    }
    println!("messages  retention on (MiB)  retention off (MiB)");
    for (i, (count, on)) in columns[0].iter().enumerate() {
        let off = columns[1].get(i).map_or(0, |s| s.1);
        println!(
            "{count:>8}  {:>19.0}  {:>19.0}",
            *on as f64 / 1048576.0,
            off as f64 / 1048576.0
        );
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special: run a tiny smoke version then.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let n = if is_bench {
        env_usize("BENCH_MESSAGES", 5000)
    } else {
        50
    };
    let concurrency = env_usize("BENCH_CONCURRENCY", 32);
    let attachment_mb = if is_bench {
        env_usize("BENCH_ATTACHMENT_MB", 200)
    } else {
        2
    };
    let body = order("01001000", LEISTUNG, 30 * 1024 - 300);
    println!(
        "pipeline bench: {n} messages of {} bytes, {concurrency} concurrent senders, {} cores",
        body.len(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // 1. Peer: loopback HTTP alone.
    let (raddr, _, _) = counting_receiver().await;
    let direct = load(
        format!("http://{raddr}/direct"),
        None,
        body.clone(),
        n,
        concurrency,
    )
    .await;
    let direct_rate = n as f64 / direct.elapsed.as_secs_f64();
    println!(
        "direct   : {direct_rate:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        ms(percentile(&direct.latencies, 0.50)),
        ms(percentile(&direct.latencies, 0.99))
    );
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "gewerbe") {
        gewerbe(n, concurrency).await;
        return;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "retention") {
        let n = if is_bench {
            env_usize("BENCH_RETENTION_MESSAGES", 100_000)
        } else {
            200
        };
        retention(n, concurrency, &body).await;
        return;
    }

    // 2. Through the hub.
    let (raddr, delivered, _) = counting_receiver().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        "max_attachment_bytes = \"1 GiB\"",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &format!("http://{raddr}/fv"),
                "max_concurrency = 16\nsend_attachments = true\ntimeout = \"300s\"",
            ),
        )],
    );
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let pid = hub.child.id();
    let t0 = Instant::now();
    let through = load(
        format!("http://{addr}/api/v1/inbox/portal"),
        Some(SENDER),
        body.clone(),
        n,
        concurrency,
    )
    .await;
    wait_for(&delivered, n as u64, Duration::from_secs(600)).await;
    let end_to_end = t0.elapsed();
    let intake_rate = n as f64 / through.elapsed.as_secs_f64();
    let e2e_rate = n as f64 / end_to_end.as_secs_f64();
    let rss_small = peak_rss_mib(pid);
    println!(
        "hub      : {intake_rate:>8.0} msg/s intake, {e2e_rate:>6.0} msg/s delivered end-to-end   p50 {:>7.2} ms   p99 {:>7.2} ms   peak RSS {rss_small:.0} MiB",
        ms(percentile(&through.latencies, 0.50)),
        ms(percentile(&through.latencies, 0.99))
    );
    println!(
        "ratio    : hub intake / direct = {:.2}, hub end-to-end / direct = {:.2}",
        intake_rate / direct_rate,
        e2e_rate / direct_rate
    );

    // 2b. The same hub at a lighter load: latency when not saturated.
    let light_c = (concurrency / 4).max(1);
    let before = delivered.load(Ordering::SeqCst);
    let light = load(
        format!("http://{addr}/api/v1/inbox/portal"),
        Some(SENDER),
        body.clone(),
        n / 2,
        light_c,
    )
    .await;
    wait_for(
        &delivered,
        before + (n / 2) as u64,
        Duration::from_secs(600),
    )
    .await;
    println!(
        "hub/light: {:>8.0} msg/s intake with {light_c} senders   p50 {:>7.2} ms   p99 {:>7.2} ms",
        (n / 2) as f64 / light.elapsed.as_secs_f64(),
        ms(percentile(&light.latencies, 0.50)),
        ms(percentile(&light.latencies, 0.99))
    );
    assert!(hub.terminate());

    // 2c. The shipped `gewerbeanmeldung` rule (rules/, XGewerbeanzeige 2.2
    // KoSIT example, 10 KB): recognition, extraction, two XSLT 2.0
    // transforms (Fachverfahren import XML and xdomea 0605), two HTTP
    // deliveries per message. A message counts as delivered when both of
    // its outputs have been accepted by the receiver.
    gewerbe(n, concurrency).await;

    // 3. One big attachment, streamed in and out, on a fresh hub process
    // (so its peak RSS is this scenario's alone).
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        "max_attachment_bytes = \"1 GiB\"",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &format!("http://{raddr}/fv"),
                "send_attachments = true\ntimeout = \"300s\"",
            ),
        )],
    );
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let pid = hub.child.id();
    let rss_idle = peak_rss_mib(pid);
    let size = attachment_mb as u64 * 1024 * 1024;
    let boundary = "bench-boundary-7d1f";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"document\"\r\nContent-Type: application/xml\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"scan\"; filename=\"scan.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        String::from_utf8(order("01001000", LEISTUNG, 100)).unwrap()
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let chunk = bytes::Bytes::from(vec![0x5au8; 1 << 20]);
    let chunks = (size / (1 << 20)) as usize;
    let stream = futures::stream::iter(
        std::iter::once(bytes::Bytes::from(head))
            .chain(std::iter::repeat_n(chunk, chunks))
            .chain(std::iter::once(bytes::Bytes::from(tail)))
            .map(Ok::<_, std::io::Error>),
    );
    let before = delivered.load(Ordering::SeqCst);
    let t = Instant::now();
    let api = Api::new(addr);
    let r = api
        .http
        .post(format!("http://{addr}/api/v1/inbox/portal"))
        .bearer_auth(SENDER)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .timeout(Duration::from_secs(600))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let intake_time = t.elapsed();
    wait_for(&delivered, before + 1, Duration::from_secs(600)).await;
    let total = t.elapsed();
    let rss_big = peak_rss_mib(pid);
    println!(
        "attachment: {attachment_mb} MB in {:.2} s (intake {:.2} s, {:.0} MB/s end-to-end), hub peak RSS {rss_big:.0} MiB (idle {rss_idle:.0} MiB; {:.2} of the attachment size)",
        total.as_secs_f64(),
        intake_time.as_secs_f64(),
        attachment_mb as f64 / total.as_secs_f64(),
        rss_big / attachment_mb as f64
    );
    assert!(hub.terminate());
}

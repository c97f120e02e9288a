//! What malware scanning costs (issue 12, ADR 0017), in one run:
//!
//! - the scanner alone (peer): `clamd` (started by the bench, with the
//!   test signature database of `drehscheibe_testkit::clamd`) asked over
//!   `INSTREAM` by our client — 30 KB documents, 8 at a time, and one
//!   200 MB stream (MB/s, clamd's peak RSS);
//! - the hub without and with `[scanner]`: 30 KB pass-through messages
//!   (32 concurrent senders; intake and delivered rates, intake p50/p99,
//!   the hub's peak RSS), then one application with a 200 MB attachment
//!   (multipart, streamed through the blob store; time until it is
//!   delivered, hub and clamd peak RSS).
//!
//! Run with `cargo bench --bench scan` (knobs: `BENCH_MESSAGES`, default
//! 3000; `BENCH_ATTACHMENT_MB`, default 200). A real signature database
//! would make clamd's per-byte work larger than with our one signature;
//! the client's and the hub's share stays what is measured here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use drehscheibe_clamd::{Clamd, ClamdAddress, ClamdSettings};
use drehscheibe_model::{Scanner, Verdict};
use drehscheibe_suite::bench::{
    counting_receiver, env_usize, load, ms, peak_rss_mib, percentile, wait_for,
};
use drehscheibe_suite::{
    free_port, http_tenant, multipart_body, order, HubProcess, TestConfig, SENDER,
};
use drehscheibe_testkit::clamd::ClamdProcess;
use tokio::io::{AsyncRead, ReadBuf};

const LEISTUNG: &str = "99050012104000";

/// `len` bytes generated while read (nothing held in memory).
struct Generated {
    len: u64,
    pos: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.len - self.pos).min(buf.remaining() as u64).min(65536) as usize;
        let start = self.pos;
        let chunk: Vec<u8> = (0..n as u64).map(|i| ((start + i) % 251) as u8).collect();
        buf.put_slice(&chunk);
        self.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[tokio::main]
async fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let n = if is_bench {
        env_usize("BENCH_MESSAGES", 3000)
    } else {
        30
    };
    let mb = if is_bench {
        env_usize("BENCH_ATTACHMENT_MB", 200)
    } else {
        5
    };
    let clamd = ClamdProcess::start();
    let scanner = Arc::new(Clamd::new(ClamdSettings::new(ClamdAddress::Unix(
        clamd.socket.clone(),
    ))));
    println!(
        "scan bench: {n} messages of 30 KB, one {mb} MB attachment, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // The scanner alone.
    let doc = order("01001000", LEISTUNG, 30 * 1024 - 300);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (scanner, doc) = (scanner.clone(), doc.clone());
        tasks.push(tokio::spawn(async move {
            for _ in (w..n).step_by(8) {
                let v = scanner
                    .scan(Box::pin(std::io::Cursor::new(doc.clone())))
                    .await
                    .unwrap();
                assert_eq!(v, Verdict::Clean);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_doc = t0.elapsed().as_secs_f64() / n as f64;
    println!(
        "clamd    : {:>8.0} scans/s of 30 KB (8 at a time), {:.2} ms each",
        1.0 / per_doc,
        per_doc * 1e3 * 8.0
    );
    // clamd's first big stream is much slower than the next ones (it
    // spools INSTREAM data to a temporary file): both are reported.
    for round in ["cold", "warm"] {
        let t0 = Instant::now();
        let big = Generated {
            len: mb as u64 * 1_000_000,
            pos: 0,
        };
        assert_eq!(scanner.scan(Box::pin(big)).await.unwrap(), Verdict::Clean);
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "clamd    : {mb} MB stream ({round}) in {secs:.2} s = {:.0} MB/s; clamd peak RSS {:.0} MiB",
            mb as f64 / secs,
            clamd.pid().map_or(f64::NAN, peak_rss_mib)
        );
    }

    // The hub without and with the scanner.
    let (raddr, delivered, _) = counting_receiver().await;
    println!(
        "{:<9} {:>9} {:>12} {:>8} {:>8} {:>13} | {:>14} {:>13} {:>15}",
        "hub",
        "intake/s",
        "delivered/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "big delivered s",
        "big RSS MiB",
        "clamd RSS MiB"
    );
    for with_scanner in [false, true] {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let scanner_toml = if with_scanner {
            format!(
                "max_attachment_bytes = {}\n\n[scanner]\naddress = \"unix:{}\"\n",
                (mb as u64 + 10) * 1_000_000,
                clamd.socket.display()
            )
        } else {
            format!("max_attachment_bytes = {}\n", (mb as u64 + 10) * 1_000_000)
        };
        let cfg = TestConfig::write(
            &addr.to_string(),
            &scanner_toml,
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
        let before = delivered.load(std::sync::atomic::Ordering::SeqCst);
        let t0 = Instant::now();
        let run = load(
            format!("http://{addr}/api/v1/inbox/portal"),
            Some(SENDER),
            doc.clone(),
            n,
            32,
        )
        .await;
        wait_for(&delivered, before + n as u64, Duration::from_secs(600)).await;
        let e2e = t0.elapsed();
        let rss = peak_rss_mib(hub.child.id());

        // One application with a big attachment.
        let boundary = "scan-bench-boundary";
        let attachment: Vec<u8> = (0..mb * 1_000_000).map(|i| (i % 251) as u8).collect();
        let body = multipart_body(boundary, &order("01001000", LEISTUNG, 100), &attachment);
        drop(attachment);
        let before = delivered.load(std::sync::atomic::Ordering::SeqCst);
        let t1 = Instant::now();
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/api/v1/inbox/portal"))
            .bearer_auth(SENDER)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            202,
            "{}",
            r.text().await.unwrap_or_default()
        );
        wait_for(&delivered, before + 1, Duration::from_secs(600)).await;
        let big = t1.elapsed();
        println!(
            "{:<9} {:>9.0} {:>12.0} {:>8.1} {:>8.1} {:>13.0} | {:>14.2} {:>13.0} {:>15.0}",
            if with_scanner { "scanning" } else { "plain" },
            n as f64 / run.elapsed.as_secs_f64(),
            n as f64 / e2e.as_secs_f64(),
            ms(percentile(&run.latencies, 0.5)),
            ms(percentile(&run.latencies, 0.99)),
            rss,
            big.as_secs_f64(),
            peak_rss_mib(hub.child.id()),
            clamd.pid().map_or(f64::NAN, peak_rss_mib),
        );
        assert!(hub.terminate());
    }
}

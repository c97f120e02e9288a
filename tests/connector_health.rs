//! Connector health checks (issue 10): the hub checks every endpoint at
//! start and then periodically; `/readyz` lists what needs attention (an
//! unreachable Fachverfahren, a client certificate ending within 30 days)
//! without making the hub unready, and `/metrics` carries
//! `drehscheibe_connector_up` and the certificate's end of validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::{dead_url, Receiver};
use drehscheibe_suite::{metric, start, Api, TestConfig};

const LEISTUNG: &str = "99050012104000";

/// A self-signed client certificate valid for `days` more days.
fn client_cert(dir: &std::path::Path, days: i64) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["drehscheibe-client".into()]).unwrap();
    use chrono::Datelike;
    let ymd = |d: chrono::DateTime<chrono::Utc>| {
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let now = chrono::Utc::now();
    params.not_before = ymd(now - chrono::TimeDelta::days(1));
    params.not_after = ymd(now + chrono::TimeDelta::days(days));
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_and_ending_certificates_show_in_readyz_and_metrics() {
    let rx = Receiver::start().await;
    let down = dead_url("/fv").await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = client_cert(certs.path(), 10);
    let tenant = |id: &str, ags: &str, url: &str, extra: &str| {
        drehscheibe_suite::http_tenant(id, ags, LEISTUNG, url, extra)
    };
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            ("up", tenant("up", "01001000", &rx.url("/fv"), "")),
            ("downx", tenant("downx", "01001001", &down, "")),
            (
                "certxx",
                tenant(
                    "certxx",
                    "01001002",
                    &rx.url("/fv"),
                    &format!(
                        "client_cert = {{ cert = \"{}\", key = \"{}\" }}",
                        cert.display(),
                        key.display()
                    ),
                ),
            ),
        ],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    // The first round of checks runs at start.
    let end = Instant::now() + Duration::from_secs(30);
    let (status, body) = loop {
        let (status, body) = api.readyz().await;
        if body.contains("downx/fv") || Instant::now() > end {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        status, 200,
        "a Fachverfahren being down leaves the hub ready: {body}"
    );
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(
        body.contains("connector downx/fv (http): unreachable"),
        "{body}"
    );
    assert!(
        body.contains("connector certxx/fv (http): client certificate expires in 9 days")
            || body.contains("connector certxx/fv (http): client certificate expires in 10 days"),
        "{body}"
    );
    assert!(
        !body.contains("up/fv"),
        "a healthy endpoint needs no attention: {body}"
    );

    let m = api.metrics().await;
    let up = |tenant: &str| {
        metric(
            &m,
            &format!(
                "drehscheibe_connector_up{{tenant=\"{tenant}\",connector=\"fv\",kind=\"http\"}}"
            ),
        )
    };
    assert_eq!(up("up"), 1.0, "{m}");
    assert_eq!(up("downx"), 0.0, "{m}");
    assert_eq!(up("certxx"), 1.0, "{m}");
    let expiry = metric(
        &m,
        "drehscheibe_connector_cert_expiry_timestamp_seconds{tenant=\"certxx\",connector=\"fv\",kind=\"http\"}",
    );
    let in_days = (expiry - chrono::Utc::now().timestamp() as f64) / 86_400.0;
    assert!(
        (9.0..=10.01).contains(&in_days),
        "expiry in {in_days} days: {m}"
    );
    hub.shutdown().await.unwrap();
}

//! Throughput of the intake's cryptography (release build):
//! `cargo run --release -p drehscheibe-fit-connect --example intake_crypto`.
//!
//! * a 50 KB JSON data set: JWE decrypt (RSA-OAEP-256 unwrap with 4096-bit
//!   key, A256GCM, zip DEF) + SHA-512, per submission;
//! * a 20 MB attachment: streamed decrypt from file to file + SHA-512, MB/s,
//!   and the process' peak RSS (VmHWM) afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let key = RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/dest-a.pem")).unwrap();
    let jwk = key.encryption_jwk();

    // 50 KB data set
    let data: Vec<u8> = format!(
        "{{\"kommune\":\"09162000\",\"felder\":[{}]}}",
        (0..3900)
            .map(|i| format!("\"wert-{i:05}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes();
    let jwe = jose::encrypt_compact(&data, &jwk, true).unwrap();
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        let out = jose::decrypt_compact(jwe.as_bytes(), &[&key]).unwrap();
        assert_eq!(out.plaintext.len(), data.len());
        let _ = <sha2::Sha512 as sha2::Digest>::digest(&out.plaintext);
    }
    let per = t.elapsed().as_secs_f64() / f64::from(n);
    println!(
        "data set {} bytes (JWE {} bytes, zip DEF): decrypt + SHA-512 {:.2} ms each ({:.0} per second)",
        data.len(),
        jwe.len(),
        per * 1000.0,
        1.0 / per
    );

    // 20 MB attachment, streamed file → file
    let dir = tempfile::tempdir().unwrap();
    let size = 20 * 1024 * 1024;
    let pdf: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let jwe = jose::encrypt_compact(&pdf, &jwk, false).unwrap();
    let enc_s = t.elapsed().as_secs_f64();
    let enc_path = dir.path().join("a.jwe");
    std::fs::write(&enc_path, &jwe).unwrap();
    drop(jwe);
    drop(pdf);
    // reset the peak-RSS mark (Linux: "5" > clear_refs), so the figure
    // below is the peak *during* the streamed decryption
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = peak_rss_kib();
    let t = Instant::now();
    let input = std::fs::File::open(&enc_path).unwrap();
    let output =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("a.plain")).unwrap());
    let info = jose::decrypt_compact_stream(input, &[&key], output, u64::MAX).unwrap();
    let dec_s = t.elapsed().as_secs_f64();
    assert_eq!(info.size, size as u64);
    println!(
        "attachment {} MiB: encrypt (in memory) {:.0} MB/s; streamed decrypt + SHA-512 file→file {:.0} MB/s ({:.2} s); peak RSS {} MiB at the start, {} MiB during the decryption",
        size >> 20,
        size as f64 / enc_s / 1e6,
        size as f64 / dec_s / 1e6,
        dec_s,
        rss_before / 1024,
        peak_rss_kib() / 1024
    );
}

//! The scanner against a real `clamd` (started by the test, see
//! `drehscheibe_testkit::clamd`), over its Unix socket and TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use drehscheibe_clamd::{Clamd, ClamdAddress, ClamdSettings};
use drehscheibe_model::{BlobReader, ScanError, Scanner, Verdict};
use drehscheibe_testkit::clamd::{ClamdProcess, EICAR, SIGNATURE};
use tokio::io::{AsyncRead, ReadBuf};

fn reader(bytes: Vec<u8>) -> BlobReader {
    Box::pin(std::io::Cursor::new(bytes))
}

fn scanner(address: ClamdAddress, chunk_bytes: usize) -> Clamd {
    Clamd::new(ClamdSettings {
        chunk_bytes,
        timeout: Duration::from_secs(30),
        ..ClamdSettings::new(address)
    })
}

fn infected() -> Verdict {
    Verdict::Infected {
        signature: SIGNATURE.into(),
    }
}

/// `len` bytes of a repeating pattern with `insert` at `at` (generated
/// while read: nothing of it is held in memory).
struct Generated {
    len: u64,
    pos: u64,
    insert: Option<(u64, &'static [u8])>,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.len - self.pos).min(buf.remaining() as u64).min(8192) as usize;
        let mut out = vec![0u8; n];
        for (i, b) in out.iter_mut().enumerate() {
            let p = self.pos + i as u64;
            *b = match self.insert {
                Some((at, bytes)) if p >= at && p < at + bytes.len() as u64 => {
                    bytes[(p - at) as usize]
                }
                _ => b"Antrag auf Gewerbeanmeldung, Anlage. "[(p % 37) as usize],
            };
        }
        self.pos += n as u64;
        buf.put_slice(&out);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn clean_and_infected_content_over_both_sockets() {
    let clamd = ClamdProcess::start();
    for address in [
        ClamdAddress::Unix(clamd.socket.clone()),
        ClamdAddress::Tcp(clamd.tcp.clone()),
    ] {
        let s = scanner(address.clone(), 64 * 1024);
        s.ping().await.unwrap();
        assert_eq!(
            s.scan(reader(b"<antrag/>".to_vec())).await.unwrap(),
            Verdict::Clean
        );
        assert_eq!(
            s.scan(reader(EICAR.to_vec())).await.unwrap(),
            infected(),
            "{address}"
        );
        assert_eq!(s.scan(reader(Vec::new())).await.unwrap(), Verdict::Clean);
        assert!(s.describe().contains(&address.to_string()));
    }
}

#[tokio::test]
async fn the_signature_is_found_across_chunk_boundaries_deep_in_a_large_stream() {
    let clamd = ClamdProcess::start();
    // 1,000-byte chunks, the test string starting 10 bytes before the end
    // of the 20,000th: it spans two chunks.
    let s = scanner(ClamdAddress::Unix(clamd.socket.clone()), 1000);
    let at = 20_000 * 1000 - 10;
    let dirty = Generated {
        len: 30_000_000,
        pos: 0,
        insert: Some((at, EICAR)),
    };
    assert_eq!(s.scan(Box::pin(dirty)).await.unwrap(), infected());
    let clean = Generated {
        len: 30_000_000,
        pos: 0,
        insert: None,
    };
    let s = scanner(ClamdAddress::Unix(clamd.socket.clone()), 64 * 1024);
    assert_eq!(s.scan(Box::pin(clean)).await.unwrap(), Verdict::Clean);
}

#[tokio::test]
async fn a_stream_over_clamds_limit_is_no_verdict() {
    let clamd = ClamdProcess::start_with("1M");
    let s = scanner(ClamdAddress::Unix(clamd.socket.clone()), 64 * 1024);
    let big = Generated {
        len: 4_000_000,
        pos: 0,
        insert: None,
    };
    let e = s.scan(Box::pin(big)).await.unwrap_err();
    assert!(matches!(e, ScanError::TooLarge(_)), "{e}");
    // Below the limit it still scans.
    assert_eq!(s.scan(reader(EICAR.to_vec())).await.unwrap(), infected());
}

#[tokio::test]
async fn a_scanner_that_is_down_or_silent_is_no_verdict() {
    let mut clamd = ClamdProcess::start();
    let s = scanner(ClamdAddress::Unix(clamd.socket.clone()), 64 * 1024);
    clamd.stop();
    let e = s.scan(reader(EICAR.to_vec())).await.unwrap_err();
    assert!(matches!(e, ScanError::Unavailable(_)), "{e}");
    assert!(matches!(s.ping().await, Err(ScanError::Unavailable(_))));

    // A peer that accepts and never answers: the step limit ends it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (c, _) = listener.accept().await.unwrap();
            held.push(c);
        }
    });
    let silent = Clamd::new(ClamdSettings {
        timeout: Duration::from_millis(300),
        ..ClamdSettings::new(ClamdAddress::Tcp(addr.to_string()))
    });
    let e = silent.scan(reader(b"<a/>".to_vec())).await.unwrap_err();
    assert!(matches!(e, ScanError::Timeout(_)), "{e}");
    hold.abort();
}

#[tokio::test]
async fn content_that_cannot_be_read_is_no_verdict() {
    struct Broken;
    impl AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Err(std::io::Error::other("disk gone")))
        }
    }
    let clamd = ClamdProcess::start();
    let s = scanner(ClamdAddress::Unix(clamd.socket.clone()), 64 * 1024);
    let e = s.scan(Box::pin(Broken)).await.unwrap_err();
    assert!(matches!(e, ScanError::Source(_)), "{e}");
}

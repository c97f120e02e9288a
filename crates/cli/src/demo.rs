//! `drehscheibe demo`: local stand-ins for Fachverfahren endpoints so a
//! newcomer sees deliveries happen without any other software.
//!
//! * an HTTP receiver (default `127.0.0.1:9101`) that accepts any POST/PUT,
//!   stores the body under `<dir>/<path>/<n>.<ext>` and answers `201`;
//! * an SMTP sink (default `127.0.0.1:2525`) speaking the minimal RFC 5321
//!   dialogue and storing each mail as `<dir>/mail/<n>.eml`.
//!
//! Both continue the numbering of earlier runs: at start they look for the
//! highest `<n>` already stored below their folder, so a restarted demo
//! never overwrites what the previous run received.
//!
//! The samples the demo posts carry an `Idempotency-Key` derived from file
//! name and content ([`sample_key`]): restarting the demo finds the message
//! of the previous run instead of creating a duplicate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Receiver {
    dir: PathBuf,
    count: Arc<AtomicU64>,
}

/// The highest `<n>` of the files named `<n>.<ext>` in `dir` and, down to
/// `depth` levels, its subfolders; 0 when there are none (or `dir` does
/// not exist yet). Other files are ignored.
fn highest_number(dir: &Path, depth: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut highest = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let n = match entry.file_type() {
            Ok(t) if t.is_dir() && depth > 1 => highest_number(&path, depth - 1),
            Ok(t) if t.is_file() => path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0),
            _ => 0,
        };
        highest = highest.max(n);
    }
    highest
}

/// The `Idempotency-Key` the demo posts a sample with: its file name and a
/// 64-bit FNV-1a hash of its content (stable across runs and Rust
/// versions, unlike `std`'s hasher), e.g. `demo-01-gewerbeanmeldung.xml-3f…`.
pub fn sample_key(file: &Path, content: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in content {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // The key must be visible ASCII: anything else in the name becomes `_`.
    let name: String = file
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .take(120)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!("demo-{name}-{hash:016x}")
}

/// How to call the command line in the hints the demo prints: the front
/// executable beside this one (this is `drehscheibe-hub`, see
/// [`crate::front`]), relative to the working directory when it lies below
/// it (`target/release/drehscheibe` after a release build), else
/// `drehscheibe`.
pub fn invocation_name() -> String {
    let exe = std::env::current_exe()
        .ok()
        .map(|exe| crate::front::front_path(&exe).unwrap_or(exe));
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(exe), Some(cwd)) => match exe.strip_prefix(&cwd) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => "drehscheibe".into(),
        },
        _ => "drehscheibe".into(),
    }
}

fn ext_for(headers: &HeaderMap) -> &'static str {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.contains("xml") {
        "xml"
    } else if ct.contains("json") {
        "json"
    } else if ct.contains("multipart") {
        "multipart"
    } else if ct.starts_with("text/") {
        "txt"
    } else {
        "bin"
    }
}

fn safe_segment(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "root".into()
    } else {
        cleaned
    }
}

async fn receive(
    State(r): State<Receiver>,
    method: axum::http::Method,
    path: Option<UrlPath<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    // The hub's connector health check asks with HEAD: nothing to store.
    if method == axum::http::Method::HEAD {
        return (StatusCode::OK, String::new());
    }
    let sub = path
        .map(|UrlPath(p)| safe_segment(&p))
        .unwrap_or_else(|| "root".into());
    let n = r.count.fetch_add(1, Ordering::SeqCst) + 1;
    let dir = r.dir.join(&sub);
    let file = dir.join(format!("{n:05}.{}", ext_for(&headers)));
    let msg = headers
        .get("x-drehscheibe-message-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let write = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&file, &body).await
    };
    match write.await {
        Ok(()) => {
            println!(
                "  ✔ demo Fachverfahren /{sub} received {} bytes (message {msg}) → {}",
                body.len(),
                file.display()
            );
            (
                StatusCode::CREATED,
                format!("stored as {}\n", file.display()),
            )
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// Start the demo HTTP receiver; returns its address.
pub async fn http_receiver(
    addr: SocketAddr,
    dir: &Path,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let state = Receiver {
        dir: dir.to_owned(),
        count: Arc::new(AtomicU64::new(highest_number(dir, 2))),
    };
    let app = Router::new()
        .route("/{*path}", any(receive))
        .route("/", any(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("demo receiver cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(local)
}

/// Start the demo SMTP sink; returns its address.
pub async fn smtp_sink(
    addr: SocketAddr,
    dir: &Path,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("demo SMTP sink cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let dir = dir.join("mail");
    let count = Arc::new(AtomicU64::new(highest_number(&dir, 1)));
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.cancelled() => break,
            };
            let Ok((stream, _)) = conn else { continue };
            let (dir, count) = (dir.clone(), count.clone());
            tokio::spawn(async move {
                if let Err(e) = smtp_session(stream, &dir, &count).await {
                    eprintln!("  demo SMTP sink: {e}");
                }
            });
        }
    });
    Ok(local)
}

async fn smtp_session(stream: tokio::net::TcpStream, dir: &Path, count: &AtomicU64) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 drehscheibe-demo ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.trim_end().to_ascii_uppercase();
        if verb.starts_with("EHLO") {
            write
                .write_all(b"250-drehscheibe-demo\r\n250 SIZE 52428800\r\n")
                .await?;
        } else if verb.starts_with("HELO")
            || verb.starts_with("MAIL")
            || verb.starts_with("RCPT")
            || verb.starts_with("RSET")
            || verb.starts_with("NOOP")
        {
            write.write_all(b"250 OK\r\n").await?;
        } else if verb == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.extend_from_slice(l.as_bytes());
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::fs::create_dir_all(dir).await?;
            let file = dir.join(format!("{n:05}.eml"));
            tokio::fs::write(&file, &data).await?;
            println!(
                "  ✉ demo mailbox received {} bytes → {}",
                data.len(),
                file.display()
            );
            write.write_all(b"250 OK queued\r\n").await?;
        } else if verb == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 command not implemented\r\n").await?;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn post(addr: SocketAddr, path: &str, body: &str) -> String {
        let resp = reqwest::Client::new()
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.text().await.unwrap()
    }

    async fn mail(addr: SocketAddr, body: &str) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let mut line = String::new();
        lines.read_line(&mut line).await.unwrap();
        for cmd in [
            "HELO t\r\n".to_owned(),
            "MAIL FROM:<a@b>\r\n".to_owned(),
            "RCPT TO:<c@d>\r\n".to_owned(),
            "DATA\r\n".to_owned(),
            format!("{body}\r\n.\r\n"),
            "QUIT\r\n".to_owned(),
        ] {
            write.write_all(cmd.as_bytes()).await.unwrap();
            line.clear();
            lines.read_line(&mut line).await.unwrap();
            assert!(!line.starts_with('5'), "{cmd:?} → {line}");
        }
    }

    #[tokio::test]
    async fn health_checks_are_answered_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let http = http_receiver("127.0.0.1:0".parse().unwrap(), dir.path(), stop.clone())
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .head(format!("http://{http}/fv"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        post(http, "/fv", "<a/>").await;
        let stored: Vec<_> = std::fs::read_dir(dir.path().join("fv"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            stored,
            ["00001.xml"],
            "the HEAD left no file, the POST is number 1"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_restarted_receiver_continues_the_numbering_of_the_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();

        // First run: two documents, one mail.
        let stop = CancellationToken::new();
        let http = http_receiver(any, dir.path(), stop.clone()).await.unwrap();
        let smtp = smtp_sink(any, dir.path(), stop.clone()).await.unwrap();
        post(http, "/fv", "<a/>").await;
        post(http, "/other", "<b/>").await;
        mail(smtp, "first mail").await;
        stop.cancel();

        // Second run on the same folder: new numbers, old files untouched.
        let stop = CancellationToken::new();
        let http = http_receiver(any, dir.path(), stop.clone()).await.unwrap();
        let smtp = smtp_sink(any, dir.path(), stop.clone()).await.unwrap();
        let answer = post(http, "/fv", "<c/>").await;
        assert!(answer.contains("00003.xml"), "{answer}");
        mail(smtp, "second mail").await;
        stop.cancel();

        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("fv/00001.xml"), "<a/>");
        assert_eq!(read("other/00002.xml"), "<b/>");
        assert_eq!(read("fv/00003.xml"), "<c/>");
        assert!(read("mail/00001.eml").contains("first mail"));
        assert!(read("mail/00002.eml").contains("second mail"));
    }

    #[test]
    fn sample_keys_are_stable_and_follow_the_content() {
        let f = Path::new("config/demo/01 gewerbe.xml");
        let k = sample_key(f, b"<a/>");
        assert_eq!(k, sample_key(f, b"<a/>"));
        assert_ne!(k, sample_key(f, b"<b/>"));
        assert_ne!(k, sample_key(Path::new("02.xml"), b"<a/>"));
        assert!(k.starts_with("demo-01_gewerbe.xml-"), "{k}");
        assert!(k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()));
    }
}

//! `drehscheibe demo`: local stand-ins for Fachverfahren endpoints so a
//! newcomer sees deliveries happen without any other software.
//!
//! * an HTTP receiver (default `127.0.0.1:9101`) that accepts any POST/PUT,
//!   stores the body under `<dir>/<path>/<n>.<ext>` and answers `201`;
//! * an SMTP sink (default `127.0.0.1:2525`) speaking the minimal RFC 5321
//!   dialogue and storing each mail as `<dir>/mail/<n>.eml`.

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
    path: Option<UrlPath<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
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
        count: Arc::new(AtomicU64::new(0)),
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
    let count = Arc::new(AtomicU64::new(0));
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

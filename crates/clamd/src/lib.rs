//! [`Clamd`]: the hub's malware scanner, ClamAV's daemon over its socket
//! protocol (`clamd(8)`), on a Unix socket or TCP.
//!
//! One connection per scan:
//!
//! ```text
//! → zINSTREAM\0
//! → <len u32 BE><len bytes> … (chunks of at most `chunk_bytes`)
//! → 0u32                                  end of stream
//! ← stream: OK\0  |  stream: <signature> FOUND\0  |  <text> ERROR\0
//! ```
//!
//! The content is read from a [`BlobReader`] one chunk at a time, so an
//! attachment of 200 MB costs one chunk of memory. clamd refuses a stream
//! longer than its `StreamMaxLength`: it answers `INSTREAM size limit
//! exceeded. ERROR` and closes the connection, possibly while we are still
//! writing, so a failed write is followed by an attempt to read that
//! answer. Every step (connect, each write, the answer) has a time limit.
//!
//! Every outcome that is not a verdict is a [`ScanError`]; the engine
//! fails closed on all of them (ADR 0017).
//!
//! Why our own client: the protocol is the few lines above, and the
//! published crates (`clamav-client`, `clamav-stream`) have no time
//! limits and report clamd's early close on an oversized stream as a
//! broken pipe instead of reading its answer — the two behaviours the
//! hub's fail-closed rules depend on.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_model::{BlobReader, ScanError, Scanner, Verdict};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest answer read from clamd.
const MAX_REPLY: usize = 4096;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// A Unix socket (`LocalSocket` in `clamd.conf`).
    Unix(PathBuf),
    /// A TCP address `host:port` (`TCPSocket`/`TCPAddr`).
    Tcp(String),
}

impl ClamdAddress {
    /// `unix:/path`, `tcp://host:port`, or `host:port`; a bare path
    /// starting with `/` is a Unix socket too.
    ///
    /// # Errors
    ///
    /// A text that is none of these.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(text)));
        }
        let hostport = text.strip_prefix("tcp://").unwrap_or(text);
        match hostport.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Self::Tcp(hostport.to_owned()))
            }
            _ => Err(format!(
                "{text:?} is no clamd address (unix:/path/to/clamd.ctl or tcp://host:port)"
            )),
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Settings of a [`Clamd`] scanner.
#[derive(Debug, Clone)]
pub struct ClamdSettings {
    pub address: ClamdAddress,
    /// Limit of each step: connecting, writing one chunk, waiting for the
    /// answer after the last chunk (clamd scans while it receives, so the
    /// answer comes soon after the end of the stream).
    pub timeout: Duration,
    /// Bytes per `INSTREAM` chunk.
    pub chunk_bytes: usize,
}

impl ClamdSettings {
    /// `address` with a 60 s step limit and 64 KiB chunks.
    pub fn new(address: ClamdAddress) -> Self {
        Self {
            address,
            timeout: Duration::from_secs(60),
            chunk_bytes: 64 * 1024,
        }
    }
}

/// ClamAV's daemon as the hub's [`Scanner`].
#[derive(Debug, Clone)]
pub struct Clamd {
    settings: ClamdSettings,
}

trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

impl Clamd {
    pub fn new(settings: ClamdSettings) -> Self {
        Self { settings }
    }

    /// `f` under the step limit; an I/O error means clamd is unavailable.
    async fn step<T>(
        &self,
        f: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> Result<T, ScanError> {
        self.step_raw(f)
            .await?
            .map_err(|e| ScanError::Unavailable(format!("clamd at {}: {e}", self.settings.address)))
    }

    async fn connect(&self) -> Result<Box<dyn Conn>, ScanError> {
        match &self.settings.address {
            ClamdAddress::Unix(path) => {
                let s = self.step(tokio::net::UnixStream::connect(path)).await?;
                Ok(Box::new(s))
            }
            ClamdAddress::Tcp(addr) => {
                let s = self.step(tokio::net::TcpStream::connect(addr)).await?;
                Ok(Box::new(s))
            }
        }
    }

    /// clamd's answer up to its NUL (or the end of the connection).
    async fn reply(&self, conn: &mut Box<dyn Conn>) -> Result<String, ScanError> {
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = self.step(conn.read(&mut buf)).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.contains(&0) || reply.len() > MAX_REPLY {
                break;
            }
        }
        let end = reply.iter().position(|b| *b == 0).unwrap_or(reply.len());
        reply.truncate(end.min(MAX_REPLY));
        Ok(String::from_utf8_lossy(&reply).trim().to_owned())
    }

    /// Stream `reader` to clamd; `Ok(None)` when a write failed (clamd may
    /// have closed with an answer: the caller reads it).
    async fn send(
        &self,
        conn: &mut Box<dyn Conn>,
        mut reader: BlobReader,
    ) -> Result<Option<std::io::Error>, ScanError> {
        let io = |e: std::io::Error| ScanError::Source(e.to_string());
        if let Err(e) = self.step_raw(conn.write_all(b"zINSTREAM\0")).await? {
            return Ok(Some(e));
        }
        let mut chunk = vec![0u8; self.settings.chunk_bytes.clamp(1, u32::MAX as usize)];
        loop {
            // Fill a whole chunk (readers may hand out less at a time).
            let mut filled = 0;
            while filled < chunk.len() {
                let n = reader.read(&mut chunk[filled..]).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            let len = u32::try_from(filled).unwrap_or(u32::MAX);
            if let Err(e) = self.step_raw(conn.write_all(&len.to_be_bytes())).await? {
                return Ok(Some(e));
            }
            if filled == 0 {
                break;
            }
            if let Err(e) = self.step_raw(conn.write_all(&chunk[..filled])).await? {
                return Ok(Some(e));
            }
        }
        if let Err(e) = self.step_raw(conn.flush()).await? {
            return Ok(Some(e));
        }
        Ok(None)
    }

    /// A step whose I/O error the caller handles (a timeout is an error).
    async fn step_raw<T>(
        &self,
        f: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> Result<std::io::Result<T>, ScanError> {
        tokio::time::timeout(self.settings.timeout, f)
            .await
            .map_err(|_| ScanError::Timeout(self.settings.timeout))
    }
}

/// The verdict in clamd's answer to `INSTREAM`.
fn parse_reply(reply: &str) -> Result<Verdict, ScanError> {
    let body = reply
        .strip_prefix("stream:")
        .map(str::trim)
        .unwrap_or(reply);
    if body == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(signature) = body.strip_suffix(" FOUND") {
        return Ok(Verdict::Infected {
            signature: signature.trim().to_owned(),
        });
    }
    if body.contains("size limit exceeded") {
        return Err(ScanError::TooLarge(format!("clamd: {body}")));
    }
    if body.is_empty() {
        return Err(ScanError::Unavailable(
            "clamd closed the connection without an answer".into(),
        ));
    }
    Err(ScanError::Scanner(format!("clamd answered {body:?}")))
}

#[async_trait]
impl Scanner for Clamd {
    async fn scan(&self, reader: BlobReader) -> Result<Verdict, ScanError> {
        let mut conn = self.connect().await?;
        let write_error = self.send(&mut conn, reader).await?;
        let reply = match (self.reply(&mut conn).await, write_error) {
            (Ok(reply), _) if !reply.is_empty() => reply,
            (_, Some(e)) => {
                return Err(ScanError::Unavailable(format!(
                    "clamd at {} closed the stream: {e}",
                    self.settings.address
                )))
            }
            (Ok(reply), None) => reply,
            (Err(e), None) => return Err(e),
        };
        let verdict = parse_reply(&reply);
        if let Ok(Verdict::Infected { signature }) = &verdict {
            tracing::warn!(scanner = %self.settings.address, signature = %signature, "malware found");
        }
        verdict
    }

    async fn ping(&self) -> Result<(), ScanError> {
        let mut conn = self.connect().await?;
        self.step(conn.write_all(b"zPING\0")).await?;
        match self.reply(&mut conn).await?.as_str() {
            "PONG" => Ok(()),
            other => Err(ScanError::Scanner(format!(
                "clamd answered {other:?} to PING"
            ))),
        }
    }

    fn describe(&self) -> String {
        format!("clamd {}", self.settings.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            ClamdAddress::parse("unix:/run/clamav/clamd.ctl").unwrap(),
            ClamdAddress::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            ClamdAddress::parse("/tmp/c.sock").unwrap(),
            ClamdAddress::Unix("/tmp/c.sock".into())
        );
        assert_eq!(
            ClamdAddress::parse("tcp://127.0.0.1:3310").unwrap(),
            ClamdAddress::Tcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            ClamdAddress::parse("clamav:3310").unwrap(),
            ClamdAddress::Tcp("clamav:3310".into())
        );
        for bad in ["", "unix:", "clamav", "tcp://x:port", ":3310"] {
            assert!(ClamdAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply("stream: OK").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply("stream: Eicar-Signature FOUND").unwrap(),
            Verdict::Infected {
                signature: "Eicar-Signature".into()
            }
        );
        assert!(matches!(
            parse_reply("INSTREAM size limit exceeded. ERROR"),
            Err(ScanError::TooLarge(_))
        ));
        assert!(matches!(
            parse_reply("stream: Can't allocate memory ERROR"),
            Err(ScanError::Scanner(_))
        ));
        assert!(matches!(parse_reply(""), Err(ScanError::Unavailable(_))));
    }
}

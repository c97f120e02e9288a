//! Queue wake-ups: `LISTEN drehscheibe_queue` on a connection of its own.
//!
//! Transactions that queue a job due now send `pg_notify('drehscheibe_queue',
//! <schema>)`; PostgreSQL delivers it at commit to every listening
//! session, whichever instance it belongs to. The listener here counts the
//! notifications of its schema into a `watch` channel, which any number of
//! [`QueueWakeups`] wait on. A lost connection is made again (with a pause
//! growing to 5 s); every (re)connect counts as a wake-up too, since
//! notifications sent while nobody listened are lost. A connection that
//! stops answering is found by a `SELECT 1` every 30 s (and TCP
//! keepalives).

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// The notification channel.
pub const NOTIFY_CHANNEL: &str = "drehscheibe_queue";

/// Pause between health checks of the listening connection.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A subscription to queue wake-ups (see
/// [`PgStore::subscribe_queue`](crate::PgStore::subscribe_queue)).
#[derive(Debug, Clone)]
pub struct QueueWakeups {
    rx: watch::Receiver<u64>,
}

impl QueueWakeups {
    pub(crate) fn new(rx: watch::Receiver<u64>) -> Self {
        Self { rx }
    }

    /// Wait for the next wake-up after the last one this subscription
    /// saw (one that happened since returns at once). `false` once the
    /// store is gone (no more wake-ups will come).
    pub async fn wait(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// Wake-ups counted so far (for tests and metrics).
    pub fn count(&self) -> u64 {
        *self.rx.borrow()
    }
}

/// Start the listener task; it runs until `cancel`.
pub(crate) fn start(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    scope: String,
    cancel: CancellationToken,
) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = tokio::select! {
                _ = cancel.cancelled() => return,
                r = session(&config, tls.clone(), &scope, &tx, &cancel) => r,
            };
            match connected {
                Ok(()) => return,
                Err((was_up, e)) => {
                    if was_up {
                        backoff = Duration::from_millis(100);
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "queue listener lost its connection");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    rx
}

/// One listening connection, until it fails (`Err((listened, why))`) or
/// the store is dropped (`Ok`).
async fn session(
    config: &tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    scope: &str,
    tx: &watch::Sender<u64>,
    cancel: &CancellationToken,
) -> Result<(), (bool, String)> {
    let (client, mut connection) = config
        .connect(tls)
        .await
        .map_err(|e| (false, crate::pg_error(&e)))?;
    let (note_tx, mut notes) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if note_tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return crate::pg_error(&e),
            }
        }
        "connection closed".to_owned()
    });
    let listen = format!("LISTEN {NOTIFY_CHANNEL}");
    if let Err(e) = client.batch_execute(&listen).await {
        driver.abort();
        return Err((false, crate::pg_error(&e)));
    }
    // Listening now: whatever was queued before is worth a look.
    tx.send_modify(|n| *n += 1);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let result = loop {
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            note = notes.recv() => match note {
                Some(payload) => {
                    if payload == scope {
                        tx.send_modify(|n| *n += 1);
                    }
                }
                None => break Err((true, "connection ended".to_owned())),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => break Err((true, crate::pg_error(&e))),
                    Err(_) => break Err((true, "no answer to a health check".to_owned())),
                }
            }
        }
    };
    driver.abort();
    if result.is_err() {
        // Lost: wake the workers, jobs may have come meanwhile.
        tx.send_modify(|n| *n += 1);
    }
    result
}

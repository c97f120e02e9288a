//! Small client for a running hub (used by `send` and `messages`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Client settings: base URL and bearer token.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Media type from a file name.
pub fn content_type_for(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .build()
                .context("building HTTP client")?,
        })
    }

    async fn check(resp: reqwest::Response) -> Result<Value> {
        let status = resp.status();
        let text = resp.text().await.context("reading response")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = body
                .get("detail")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            bail!("hub answered {status}: {detail}");
        }
        Ok(body)
    }

    /// Post a file (plus attachments as multipart) to a channel.
    pub async fn send(
        &self,
        channel: &str,
        file: &Path,
        attachments: &[std::path::PathBuf],
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let url = format!("{}/api/v1/inbox/{}", self.base, channel);
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let mut req = self.http.post(&url).bearer_auth(&self.token);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let req = if attachments.is_empty() {
            req.header("Content-Type", content_type_for(file))
                .body(bytes)
        } else {
            let mut form = reqwest::multipart::Form::new().part(
                "document",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(file_name(file))
                    .mime_str(content_type_for(file))?,
            );
            for a in attachments {
                let f = tokio::fs::File::open(a)
                    .await
                    .with_context(|| format!("opening {}", a.display()))?;
                let len = f.metadata().await?.len();
                let part = reqwest::multipart::Part::stream_with_length(f, len)
                    .file_name(file_name(a))
                    .mime_str(content_type_for(a))?;
                form = form.part(file_name(a), part);
            }
            req.multipart(form)
        };
        Self::check(req.send().await.with_context(|| format!("POST {url}"))?).await
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Value> {
        let url = format!("{}{}", self.base, path_and_query);
        Self::check(
            self.http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?,
        )
        .await
    }

    pub async fn post(&self, path: &str) -> Result<Value> {
        let url = format!("{}{}", self.base, path);
        Self::check(
            self.http
                .post(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?,
        )
        .await
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file")
        .to_owned()
}

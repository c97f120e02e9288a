//! OAuth 2.0 client-credentials tokens for the FIT-Connect APIs.
//!
//! `POST {token_url}` with the form-encoded body
//! `grant_type=client_credentials&client_id=…&client_secret=…` (the
//! `client_secret_post` method every FIT-Connect client uses; an optional
//! `scope` is only sent when configured, as FITKO advises against
//! requesting scopes). The answer's `access_token` is cached until
//! shortly before `expires_in` runs out (FIT-Connect tokens live 30
//! minutes); concurrent callers share one refresh.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::{parse_base_url, read_limited, status_error, ClientError};

/// Lifetime assumed when the token answer has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Settings of a [`TokenClient`].
#[derive(Clone)]
pub struct TokenSettings {
    /// Token endpoint, e.g. `https://auth-testing.fit-connect.fitko.dev/token`.
    pub token_url: String,
    /// API client id from the Self-Service-Portal.
    pub client_id: String,
    /// API client secret.
    pub client_secret: String,
    /// Scope to request; `None` (recommended) requests none.
    pub scope: Option<String>,
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

struct Cached {
    token: String,
    /// When to fetch a new one (some margin before the real expiry).
    refresh_at: Instant,
}

/// Fetches and caches access tokens; see the module docs.
pub struct TokenClient {
    http: reqwest::Client,
    url: url::Url,
    settings: TokenSettings,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenClient {
    /// A client for one token endpoint and one API client.
    pub fn new(http: reqwest::Client, settings: TokenSettings) -> Result<Self, ClientError> {
        let url = parse_base_url("token_url", &settings.token_url)?;
        if settings.client_id.is_empty() {
            return Err(ClientError::Config("client_id must not be empty".into()));
        }
        Ok(Self {
            http,
            url,
            settings,
            cache: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a fresh one.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = self.fetch().await?;
        // Refresh 10 % (at most one minute) before the token expires.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(token)
    }

    /// Forget the cached token (after a `401` with it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self) -> Result<(String, Duration), ClientError> {
        const OP: &str = "POST token";
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.as_str()),
        ];
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope.as_str()));
        }
        let resp = self
            .http
            .post(self.url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| ClientError::network(OP, &e))?;
        if !resp.status().is_success() {
            return Err(status_error(OP, resp).await);
        }
        let body = read_limited(resp, 64 * 1024)
            .await
            .map_err(|e| ClientError::invalid(OP, e))?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| ClientError::invalid(OP, format!("not a token answer: {e}")))?;
        if answer.access_token.is_empty() {
            return Err(ClientError::invalid(OP, "empty access_token"));
        }
        if let Some(t) = &answer.token_type {
            if !t.eq_ignore_ascii_case("bearer") {
                return Err(ClientError::invalid(
                    OP,
                    format!("token_type {t:?} is not Bearer"),
                ));
            }
        }
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok((answer.access_token, lifetime))
    }
}

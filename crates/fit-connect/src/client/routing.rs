//! The public FIT-Connect Routing API 2.0.0: which destination serves a
//! Leistung (LeiKa key) in an area (ARS, AGS or area id).
//!
//! `GET {routing_api_url}/routes?leikaKey=…&ars=…` (exactly one area
//! parameter; `offset`/`limit` pagination, `limit` ≤ 500). The API is
//! public (no token); answers are cached per (Leistung, area) for a
//! configured time. `429` (rate limit) is retryable; the time in
//! `RateLimit-Reset` is reported in the error.
//!
//! The routes' `destinationSignature` (a PS512 JWS by the SSP) is kept but
//! **not verified**: that needs the SSP's signing keys, which are not
//! published through this API.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{parse_base_url, read_limited, status_error, ClientError};

/// Most pages fetched for one lookup (500 routes each).
const MAX_PAGES: usize = 10;

/// The area of a routing query: exactly one of the three keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Area {
    /// Amtlicher Regionalschlüssel: 2, 3, 5, 9 or 12 digits.
    Ars(String),
    /// Amtlicher Gemeindeschlüssel: 2, 3, 5 or 8 digits.
    Ags(String),
    /// An area id from `GET /areas`.
    AreaId(String),
}

impl Area {
    /// Derive the area from a Kommune key: 12 digits → ARS, 8 digits →
    /// AGS; anything else is not an area key.
    pub fn from_kommune_key(key: &str) -> Option<Self> {
        let digits = key.bytes().all(|b| b.is_ascii_digit());
        match key.len() {
            12 if digits => Some(Self::Ars(key.to_string())),
            8 if digits => Some(Self::Ags(key.to_string())),
            _ => None,
        }
    }

    /// Query parameter name and value.
    fn param(&self) -> (&'static str, &str) {
        match self {
            Self::Ars(v) => ("ars", v),
            Self::Ags(v) => ("ags", v),
            Self::AreaId(v) => ("areaId", v),
        }
    }

    /// Check the key's format against the Routing API's patterns.
    pub fn validate(&self) -> Result<(), ClientError> {
        let (name, v) = self.param();
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let ok = match self {
            Self::Ars(_) => digits && [2, 3, 5, 9, 12].contains(&v.len()),
            Self::Ags(_) => digits && [2, 3, 5, 8].contains(&v.len()),
            Self::AreaId(_) => digits,
        };
        if ok {
            Ok(())
        } else {
            Err(ClientError::Config(format!(
                "{name} {v:?} is not a valid area key for the Routing API"
            )))
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, v) = self.param();
        write!(f, "{n}={v}")
    }
}

/// One routing result: a FIT-Connect destination (Zustellpunkt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The destination id (UUID).
    pub destination_id: String,
    /// The SSP's signature of the addressing information (JWS, PS512);
    /// not verified here.
    pub destination_signature: String,
    /// Name of the responsible authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_name: Option<String>,
    /// Where the route comes from (`PVOG`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteResult {
    #[serde(default)]
    total_count: Option<u64>,
    routes: Vec<Route>,
}

/// Client of the Routing API with a result cache; see the module docs.
pub struct RoutingClient {
    http: reqwest::Client,
    routes_url: url::Url,
    ttl: Duration,
    cache: Mutex<RouteCache>,
}

/// (Leistung, area) → (fetched at, routes).
type RouteCache = HashMap<(String, Area), (Instant, Vec<Route>)>;

impl fmt::Debug for RoutingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingClient")
            .field("routes_url", &self.routes_url.as_str())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RoutingClient {
    /// A client for the Routing API at `base_url` (e.g.
    /// `https://routing-api-prod.fit-connect.fitko.net/v1/`), caching
    /// answers for `ttl`.
    pub fn new(http: reqwest::Client, base_url: &str, ttl: Duration) -> Result<Self, ClientError> {
        let mut base = parse_base_url("routing_api_url", base_url)?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let routes_url = base
            .join("routes")
            .map_err(|e| ClientError::Config(format!("routing_api_url: {e}")))?;
        Ok(Self {
            http,
            routes_url,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// All routes for a Leistung (14-digit LeiKa key) in an area, from the
    /// cache while fresh.
    pub async fn routes(&self, leika: &str, area: &Area) -> Result<Vec<Route>, ClientError> {
        if leika.len() != 14 || !leika.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ClientError::Config(format!(
                "LeiKa key {leika:?} must be 14 digits"
            )));
        }
        area.validate()?;
        let key = (leika.to_string(), area.clone());
        if let Some((at, routes)) = self.cache.lock().await.get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(routes.clone());
            }
        }
        let routes = self.fetch(leika, area).await?;
        let mut cache = self.cache.lock().await;
        cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
        cache.insert(key, (Instant::now(), routes.clone()));
        Ok(routes)
    }

    /// The one destination serving `leika` in `area`. No route, or routes
    /// naming different destinations, is an error that retrying does not
    /// fix ([`ClientError::Invalid`]).
    pub async fn destination_id(&self, leika: &str, area: &Area) -> Result<String, ClientError> {
        let routes = self.routes(leika, area).await?;
        let op = format!("routing {leika} {area}");
        let Some(first) = routes.first() else {
            return Err(ClientError::invalid(&op, "no route found"));
        };
        if routes
            .iter()
            .any(|r| r.destination_id != first.destination_id)
        {
            let ids: Vec<&str> = routes.iter().map(|r| r.destination_id.as_str()).collect();
            return Err(ClientError::invalid(
                &op,
                format!("ambiguous: several destinations ({})", ids.join(", ")),
            ));
        }
        Ok(first.destination_id.clone())
    }

    async fn fetch(&self, leika: &str, area: &Area) -> Result<Vec<Route>, ClientError> {
        const OP: &str = "GET /routes";
        let (name, value) = area.param();
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let offset = all.len().to_string();
            let resp = self
                .http
                .get(self.routes_url.clone())
                .query(&[
                    ("leikaKey", leika),
                    (name, value),
                    ("offset", offset.as_str()),
                    ("limit", "500"),
                ])
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| ClientError::network(OP, &e))?;
            if resp.status().as_u16() == 429 {
                let reset = resp
                    .headers()
                    .get("RateLimit-Reset")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?")
                    .to_string();
                return Err(ClientError::Status {
                    operation: OP.into(),
                    status: 429,
                    problem: None,
                    body: format!("rate limited; reset in {reset} s"),
                });
            }
            if !resp.status().is_success() {
                return Err(status_error(OP, resp).await);
            }
            let body = read_limited(resp, 16 << 20)
                .await
                .map_err(|e| ClientError::invalid(OP, e))?;
            let result: RouteResult = serde_json::from_slice(&body)
                .map_err(|e| ClientError::invalid(OP, format!("not a route result: {e}")))?;
            let got = result.routes.len();
            all.extend(result.routes);
            let total = result.total_count.unwrap_or(all.len() as u64);
            if got == 0 || all.len() as u64 >= total || page + 1 == MAX_PAGES {
                break;
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_from_kommune_keys_and_patterns() {
        assert_eq!(
            Area::from_kommune_key("091620000000"),
            Some(Area::Ars("091620000000".into()))
        );
        assert_eq!(
            Area::from_kommune_key("09162000"),
            Some(Area::Ags("09162000".into()))
        );
        assert_eq!(Area::from_kommune_key("abc"), None);
        assert!(Area::Ars("09162".into()).validate().is_ok());
        assert!(Area::Ars("0916".into()).validate().is_err());
        assert!(Area::Ags("09162000".into()).validate().is_ok());
        assert!(Area::Ags("091620000".into()).validate().is_err());
        assert!(Area::Ags("0916200x".into()).validate().is_err());
    }
}

//! Serde shapes of the TOML files, exactly as written (no defaults applied,
//! no validation). Unknown keys are rejected by serde.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::{ClientAuth, LogFormat};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMain {
    pub tenant_dir: Option<PathBuf>,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub rules: RawRules,
    #[serde(default)]
    pub channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    pub tokens: BTreeMap<String, RawToken>,
    pub retention: Option<RawRetention>,
    pub store: Option<RawStore>,
    pub scanner: Option<RawScanner>,
    #[serde(default)]
    pub console: RawConsole,
}

/// `[console]` of the main file: the web console (ADR 0021).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsole {
    pub editable: Option<bool>,
}

/// `[scanner]` of the main file: the malware scanner.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScanner {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub address: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub retry: Option<Duration>,
    pub base64_min: Option<usize>,
}

/// `[store]` of the main file: which store holds the hub's state.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<RawSecret>,
    pub pool_size: Option<usize>,
    pub schema: Option<String>,
    pub instance: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub statement_timeout: Option<Duration>,
}

/// `[retention]` of the main file: the hub's defaults and the sweeper.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    pub enabled: Option<bool>,
    pub payloads: Option<RetentionSpan>,
    pub records: Option<RetentionSpan>,
    pub failed: Option<RetentionSpan>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    pub batch: Option<usize>,
}

/// `[retention]` of a tenant file: overrides of the hub's durations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantRetention {
    pub payloads: Option<RetentionSpan>,
    pub records: Option<RetentionSpan>,
    pub failed: Option<RetentionSpan>,
}

/// A retention duration: `"off"` (keep forever) or a duration in the
/// syntax of every other duration key (`"30d"`, `"12h"`, `"90 days"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetentionSpan(pub Option<Duration>);

impl<'de> Deserialize<'de> for RetentionSpan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RetentionSpan;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"30d\" or \"off\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RetentionSpan, E> {
                if v.trim().eq_ignore_ascii_case("off") {
                    return Ok(RetentionSpan(None));
                }
                humantime_serde::re::humantime::parse_duration(v)
                    .map(|d| RetentionSpan(Some(d)))
                    .map_err(|e| {
                        E::custom(format!(
                            "invalid duration `{v}`: {e} (write e.g. \"30d\", \"12h\" or \"off\")"
                        ))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub max_payload_bytes: Option<ByteSize>,
    pub max_attachment_bytes: Option<ByteSize>,
    pub workers: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub route_budget: Option<Duration>,
    pub document_memory: Option<ByteSize>,
    pub log_format: Option<LogFormat>,
    pub max_connections: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub body_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub tls: Option<RawServerTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRules {
    pub depot: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
}

/// A `[channels.<id>]` table: `type`, `description`, and the rest, which
/// the plugin of its `type` reads (see `plugin.rs`).
#[derive(Debug, Deserialize)]
pub(crate) struct RawChannel {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub scan: Option<crate::ScanMode>,
    #[serde(flatten)]
    pub rest: toml::Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoleName {
    Sender,
    Operator,
    Tenant,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub secret: RawSecret,
    pub role: RoleName,
    pub channels: Option<Vec<String>>,
    pub tenant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub id: String,
    pub name: String,
    pub ags: Option<String>,
    pub ars: Option<String>,
    #[serde(default)]
    pub org_ids: Vec<String>,
    #[serde(default)]
    pub stellen: BTreeMap<String, RawStelle>,
    #[serde(default)]
    pub connectors: BTreeMap<String, RawConnector>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    pub retention: Option<RawTenantRetention>,
    pub scan: Option<crate::ScanMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStelle {
    pub name: String,
    pub email: Option<String>,
}

/// A `[connectors.<id>]` table: the keys every connector has, and the
/// rest, which the plugin of its `type` reads (see `plugin.rs`).
#[derive(Debug, Deserialize)]
pub(crate) struct RawConnector {
    #[serde(rename = "type")]
    pub kind: String,
    pub fachverfahren: Option<String>,
    pub retry: Option<RawRetry>,
    pub max_concurrency: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(flatten)]
    pub rest: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub max_attempts: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub initial_backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_backoff: Option<Duration>,
    pub multiplier: Option<f64>,
    pub jitter: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    Bearer,
    Basic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    pub token: Option<RawSecret>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub leistung: String,
    pub description: Option<String>,
    pub rule: Option<String>,
    pub stelle: Option<String>,
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    pub delegate_to: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    pub sla: Option<RawSla>,
}

/// A route's `sla = { within = "5m", percent = 95 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSla {
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    pub percent: f64,
}

/// A byte count: an integer, or a string with a unit (`"16 MiB"`,
/// `"20MB"`, `"512 KiB"`, `"100 B"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte count (integer) or a size such as \"16 MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a byte count cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse `"16 MiB"`-style sizes. Units: B, KB, MB, GB (powers of 1000),
/// KiB, MiB, GiB (powers of 1024), case-insensitive.
pub(crate) fn parse_byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size `{s}`: expected e.g. \"16 MiB\""))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_byte_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_byte_size("512kib"), Ok(512 * 1024));
        assert_eq!(parse_byte_size("7"), Ok(7));
        assert_eq!(parse_byte_size("1 GiB"), Ok(1 << 30));
        assert!(parse_byte_size("1.5 MiB").is_err());
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("3 parsecs").is_err());
        assert!(parse_byte_size("99999999999999999 GiB").is_err());
    }
}

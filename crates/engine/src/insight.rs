//! Read-only views for operators, shared by the JSON API and the console
//! (one code path): the rule depot with the routes that pin each version
//! ([`depot_overview`]), the diff between two versions of a rule
//! ([`rule_diff`]), and the service levels per tenant and Leistung against
//! what was measured ([`sla_report`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drehscheibe_config::HubConfig;
use drehscheibe_model::MessageState;
use drehscheibe_rules::Depot;
use drehscheibe_store::{MessageFilter, Store, StoreError, MAX_PAGE_SIZE};
use serde::Serialize;

/// A route that uses a rule version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pin {
    pub tenant: String,
    pub leistung: String,
    /// The requirement as written (`gewerbeanmeldung@^2`).
    pub requirement: String,
}

/// One version of a rule in the depot.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVersionView {
    pub id: String,
    pub version: String,
    pub title: String,
    pub priority: i32,
    /// Output targets the rule renders.
    pub outputs: Vec<String>,
    /// Why the package cannot run (its stylesheets or schemas did not
    /// load), if so.
    pub unavailable: Option<String>,
    /// The routes whose pin resolves to this version now.
    pub pinned_by: Vec<Pin>,
    /// Files of the package, relative to its folder, sorted.
    pub files: Vec<String>,
}

/// Every rule version of `depot`, by id and version, with the routes of
/// `config` that resolve to it; only routes of `tenant` when given.
pub fn depot_overview(
    depot: &Depot,
    config: &HubConfig,
    tenant: Option<&str>,
) -> Vec<RuleVersionView> {
    let mut pins: BTreeMap<(String, String), Vec<Pin>> = BTreeMap::new();
    for t in &config.tenants {
        if tenant.is_some_and(|own| own != t.id) {
            continue;
        }
        for r in &t.routes {
            let Some(sel) = &r.rule else { continue };
            if let Some(p) = depot.resolve(&sel.id, &sel.version) {
                pins.entry((p.id().to_owned(), p.version().to_string()))
                    .or_default()
                    .push(Pin {
                        tenant: t.id.clone(),
                        leistung: r.leistung.clone(),
                        requirement: sel.to_string(),
                    });
            }
        }
    }
    depot
        .packages()
        .into_iter()
        .map(|p| {
            let key = (p.id().to_owned(), p.version().to_string());
            RuleVersionView {
                pinned_by: pins.remove(&key).unwrap_or_default(),
                id: key.0,
                version: key.1,
                title: p.title().to_owned(),
                priority: p.priority(),
                outputs: p.outputs().iter().map(|o| o.target.clone()).collect(),
                unavailable: p.unavailable().map(str::to_owned),
                files: package_files(p.dir()),
            }
        })
        .collect()
}

/// Most files of one package listed or diffed.
const MAX_PACKAGE_FILES: usize = 500;
/// Most bytes one [`rule_diff`] compares over all files (beyond it, files
/// are listed with their kind of change only).
pub const MAX_RULE_DIFF_BYTES: usize = 16 * 1024 * 1024;
/// Largest file diffed (larger ones are compared by size and digest).
const MAX_DIFF_FILE: u64 = 1024 * 1024;

fn package_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(rel) = path.strip_prefix(dir) {
                        out.push(
                            rel.components()
                                .map(|c| c.as_os_str().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join("/"),
                        );
                    }
                }
                _ => {}
            }
            if out.len() >= MAX_PACKAGE_FILES {
                out.sort();
                return out;
            }
        }
    }
    out.sort();
    out
}

/// The difference of one file between two rule versions.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `added`, `removed`, `changed`, `unchanged`.
    pub change: &'static str,
    /// Unified diff (text files up to 1 MiB), else empty.
    pub diff: String,
}

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("rule {0} has no version {1}")]
    NoVersion(String, String),
}

/// The file-by-file diff of rule `id` from version `a` to `b`.
///
/// # Errors
///
/// A version that is not in the depot.
pub fn rule_diff(
    depot: &Depot,
    id: &str,
    a: &semver::Version,
    b: &semver::Version,
) -> Result<Vec<FileDiff>, DiffError> {
    let pa = depot
        .get(id, a)
        .ok_or_else(|| DiffError::NoVersion(id.to_owned(), a.to_string()))?;
    let pb = depot
        .get(id, b)
        .ok_or_else(|| DiffError::NoVersion(id.to_owned(), b.to_string()))?;
    let (fa, fb) = (package_files(pa.dir()), package_files(pb.dir()));
    let mut all: Vec<&String> = fa.iter().chain(fb.iter()).collect();
    all.sort();
    all.dedup();
    let read = |dir: &Path, rel: &str| -> Option<Vec<u8>> {
        let path = dir.join(rel);
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_DIFF_FILE {
            return Some(format!("({} bytes, not shown)", meta.len()).into_bytes());
        }
        std::fs::read(path).ok()
    };
    let mut budget = MAX_RULE_DIFF_BYTES;
    Ok(all
        .into_iter()
        .map(|rel| {
            let (x, y) = (read(pa.dir(), rel), read(pb.dir(), rel));
            let change = match (&x, &y) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x == y => "unchanged",
                _ => "changed",
            };
            let text = |v: &Option<Vec<u8>>| {
                v.as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            let diff = if change == "unchanged" {
                String::new()
            } else {
                let (old, new) = (text(&x), text(&y));
                budget = budget.saturating_sub(old.len() + new.len());
                if budget == 0 {
                    format!("(not compared: the versions' files exceed {MAX_RULE_DIFF_BYTES} bytes together)\n")
                } else {
                    crate::admin::unified_diff(
                        &old,
                        &new,
                        &format!("{id}@{a}/{rel}"),
                        &format!("{id}@{b}/{rel}"),
                    )
                }
            };
            FileDiff {
                path: rel.clone(),
                change,
                diff,
            }
        })
        .collect())
}

/// Most messages of one route an SLA report reads per window.
pub const MAX_SLA_MESSAGES: usize = 50_000;

/// Measured throughput times of one route over one window.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SlaWindow {
    /// `Tag` (last 24 h) or `Woche` (last 7 days).
    pub window: String,
    /// Messages received in the window.
    pub received: usize,
    /// Of those, delivered.
    pub delivered: usize,
    /// Median and 95th percentile of receipt → last delivery, seconds.
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    /// Share (percent) of the received messages delivered within the
    /// target (messages still open past the target count against it).
    pub within_target_percent: Option<f64>,
    /// Whether the agreed share was met.
    pub met: Option<bool>,
    /// The report read at most [`MAX_SLA_MESSAGES`]: more were received.
    pub truncated: bool,
}

/// One breach: a message delivered later than the target, or still not
/// delivered past it.
#[derive(Debug, Clone, Serialize)]
pub struct SlaBreach {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub state: MessageState,
    /// Receipt → last delivery, or → now when still open.
    pub seconds: f64,
}

/// A route's service level and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct SlaRow {
    pub tenant: String,
    pub leistung: String,
    pub description: Option<String>,
    pub within_seconds: f64,
    pub percent: f64,
    pub day: SlaWindow,
    pub week: SlaWindow,
    /// The week's breaches, newest first, at most 50.
    pub breaches: Vec<SlaBreach>,
}

/// The service level of every route with an `sla` in `config` (only
/// `tenant`'s when given), measured over the last day and week before
/// `now`.
///
/// # Errors
///
/// The store's.
pub async fn sla_report(
    store: &dyn Store,
    config: &HubConfig,
    tenant: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<SlaRow>, StoreError> {
    let mut rows = Vec::new();
    for t in &config.tenants {
        if tenant.is_some_and(|own| own != t.id) {
            continue;
        }
        for r in &t.routes {
            let Some(sla) = r.sla else { continue };
            let week_start = now - chrono::Duration::days(7);
            let day_start = now - chrono::Duration::days(1);
            let (week, week_truncated) =
                samples_since(store, &t.id, &r.leistung, week_start, now).await?;
            // A week beyond the bound was read oldest first and cut: the
            // day is then read on its own, so it is complete (up to the
            // bound) and its breaches are the newest.
            let (day, day_truncated) = if week_truncated {
                samples_since(store, &t.id, &r.leistung, day_start, now).await?
            } else {
                (
                    week.iter().filter(|s| s.0 >= day_start).cloned().collect(),
                    false,
                )
            };
            let target = sla.within.as_secs_f64();
            let window = |name: &str, samples: &[Sample], truncated: bool| {
                let mut times: Vec<f64> = Vec::new();
                let (mut received, mut within) = (0usize, 0usize);
                for (at, secs, _, _) in samples {
                    received += 1;
                    match secs {
                        Some(s) => {
                            times.push(*s);
                            if *s <= target {
                                within += 1;
                            }
                        }
                        // Still open: within target only while younger.
                        None => {
                            if (now - *at).num_milliseconds() as f64 / 1000.0 <= target {
                                within += 1;
                            }
                        }
                    }
                }
                times.sort_by(f64::total_cmp);
                let pct = |p: f64| -> Option<f64> {
                    if times.is_empty() {
                        return None;
                    }
                    let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
                    times.get(rank.clamp(1, times.len()) - 1).copied()
                };
                let share = (received > 0).then(|| within as f64 * 100.0 / received as f64);
                SlaWindow {
                    window: name.to_owned(),
                    received,
                    delivered: times.len(),
                    p50_seconds: pct(50.0),
                    p95_seconds: pct(95.0),
                    within_target_percent: share,
                    met: share.map(|s| s >= sla.percent),
                    truncated,
                }
            };
            let newest = if week_truncated { &day } else { &week };
            let mut breaches: Vec<SlaBreach> = newest
                .iter()
                .filter_map(|(at, secs, state, id)| {
                    let took =
                        secs.unwrap_or_else(|| (now - *at).num_milliseconds() as f64 / 1000.0);
                    (took > target).then(|| SlaBreach {
                        id: id.clone(),
                        received_at: *at,
                        state: *state,
                        seconds: took,
                    })
                })
                .collect();
            breaches.reverse();
            breaches.truncate(50);
            rows.push(SlaRow {
                tenant: t.id.clone(),
                leistung: r.leistung.clone(),
                description: r.description.clone(),
                within_seconds: target,
                percent: sla.percent,
                day: window("Tag", &day, day_truncated),
                week: window("Woche", &week, week_truncated),
                breaches,
            });
        }
    }
    Ok(rows)
}

/// One message of an SLA window: received, receipt → last delivery in
/// seconds (`None`: not delivered), state, id.
type Sample = (DateTime<Utc>, Option<f64>, MessageState, String);

/// The messages of `tenant` and `leistung` received in `[since, until)`,
/// oldest first, at most [`MAX_SLA_MESSAGES`]; and whether there were
/// more.
async fn samples_since(
    store: &dyn Store,
    tenant: &str,
    leistung: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Vec<Sample>, bool), StoreError> {
    let mut samples = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&MessageFilter {
                tenant: Some(tenant.to_owned()),
                leistung: Some(leistung.to_owned()),
                since: Some(since),
                until: Some(until),
                after,
                limit: MAX_PAGE_SIZE,
                ..MessageFilter::default()
            })
            .await?;
        for rec in &page.items {
            let done = (rec.state == MessageState::Delivered)
                .then(|| rec.deliveries.iter().filter_map(|d| d.delivered_at).max())
                .flatten();
            let secs =
                done.map(|d| (d - rec.envelope.received_at).num_milliseconds() as f64 / 1000.0);
            samples.push((
                rec.envelope.received_at,
                secs,
                rec.state,
                rec.id().to_string(),
            ));
        }
        if samples.len() >= MAX_SLA_MESSAGES {
            return Ok((samples, page.next.is_some()));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok((samples, false)),
        }
    }
}

/// `d` in words for operators (`4 min 12 s`).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

//! Router-level tests: the console over a real hub (sled store in a temp
//! dir, not running its workers) and an in-memory `ConfigAdmin` over a
//! real `HubConfig`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use chrono::Utc;
use drehscheibe_config::plugin::{
    BuildContext, BuildError, Checker, ConnectorFactory, ConnectorPlugin,
};
use drehscheibe_config::{HubConfig, Plugins};
use drehscheibe_engine::admin::{
    AdminError, Change, ConfigAdmin, ConfigFile, FileKind, ReloadOutcome, ReloadStatus, Revision,
    RevisionSummary, MAX_HISTORY_PAGE,
};
use drehscheibe_engine::{ConnectorRegistry, DepotRouter, Hub, HubSettings};
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use drehscheibe_model::{
    Connector, Intake, MessageId, MessageRecord, MessageState, SenderIdentity, Submission,
};
use drehscheibe_store::{Effects, FsBlobStore, SledStore};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::session::SessionStore;
use crate::{console_router, router_with, ConsoleSettings};

const OP: &str = "op-token";
const MS: &str = "musterstadt-token";
const SENDER: &str = "portal-token";
const HOST: &str = "hub.example:8080";
const ORIGIN: &str = "http://hub.example:8080";

const MUSTERSTADT: &str = "id = \"musterstadt\"\nname = \"Stadt Musterstadt\"\nags = \"12052000\"\nars = \"120520000000\"\n\n[stellen.gewerbeamt]\nname = \"Gewerbeamt\"\n\n[connectors.steuer]\ntype = \"dummy\"\nurl = \"https://steuer.example/import\"\n\n[[routes]]\nleistung = \"99104005000000\"\ndelegate_to = \"nachbarstadt\"\nsla = { within = \"5m\", percent = 95 }\n\n[[routes]]\nleistung = \"99021001000000\"\nrule = \"hundesteuer@^1\"\ntargets = { fachverfahren = \"steuer\" }\n";
const NACHBARSTADT: &str = "id = \"nachbarstadt\"\nname = \"Gemeinde Nachbarstadt\"\nags = \"12052001\"\n\n[connectors.umwelt]\ntype = \"dummy\"\nfachverfahren = \"Umwelt-FV\"\nurl = \"https://hub:geheim@umwelt.example/import\"\n\n[[routes]]\nleistung = \"99104005000000\"\nrule = \"baumfaellung@^2\"\ntargets = { fachverfahren = \"umwelt\" }\nparams = { amt = \"Umweltamt\" }\nsla = { within = \"2m 30s\", percent = 99.5 }\n";

/// A rule package manifest of the test depot: a pass-through of a
/// Baumfällantrag (no stylesheet, so no transform engine needed).
fn baumfaellung(version: &str, title: &str) -> String {
    format!(
        "id = \"baumfaellung\"\nversion = \"{version}\"\ntitle = \"{title}\"\npriority = 10\n\n[namespaces]\nbf = \"urn:example:drehscheibe:formulare:baumfaellung:1\"\n\n[match]\nchannels = [\"*\"]\ncontent_types = [\"application/xml\"]\ncondition = \"exists(/bf:baumfaellantrag)\"\n\n[extract]\nkommune = \"string(/bf:baumfaellantrag/bf:grundstueck/bf:ags)\"\nleistung = \"'99104005000000'\"\n\n[[params]]\nname = \"amt\"\ntype = \"string\"\nrequired = false\n\n[[outputs]]\ntarget = \"fachverfahren\"\ncontent_type = \"application/xml\"\nfilename = \"baumfaellung-{{kommune}}-{{id}}.xml\"\n"
    )
}

/// A package that needs a stylesheet engine the tests do not have: it
/// loads unavailable.
const HUNDESTEUER: &str = "id = \"hundesteuer\"\nversion = \"1.0.0\"\ntitle = \"Hundesteuer\"\n\n[namespaces]\nh = \"urn:example:hund\"\n\n[match]\nchannels = [\"*\"]\ncontent_types = [\"application/xml\"]\ncondition = \"exists(/h:anmeldung)\"\n\n[extract]\nkommune = \"string(/h:anmeldung/h:ags)\"\nleistung = \"'99021001000000'\"\n\n[[outputs]]\ntarget = \"fachverfahren\"\ntransform = \"steuer.xsl\"\ncontent_type = \"application/xml\"\nfilename = \"hund-{id}.xml\"\n";

/// A Baumfällantrag for a Grundstück in Musterstadt (which delegates
/// Baumfällungen to Nachbarstadt).
const ANTRAG: &str = "<bf:baumfaellantrag xmlns:bf=\"urn:example:drehscheibe:formulare:baumfaellung:1\"><bf:grundstueck><bf:ags>12052000</bf:ags></bf:grundstueck><bf:baum>Linde &amp; <![CDATA[<Eiche>]]></bf:baum></bf:baumfaellantrag>";

/// The test depot: baumfaellung 2.0.0 and 2.1.0 (another title and a
/// README), hundesteuer 1.0.0 (unavailable).
fn write_depot(dir: &Path) -> Arc<drehscheibe_rules::Depot> {
    let v20 = dir.join("baumfaellung/2.0.0");
    let v21 = dir.join("baumfaellung/2.1.0");
    let hund = dir.join("hundesteuer/1.0.0");
    for d in [&v20, &v21, &hund] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(v20.join("rule.toml"), baumfaellung("2.0.0", "Baumfällung")).unwrap();
    std::fs::write(
        v21.join("rule.toml"),
        baumfaellung("2.1.0", "Baumfällung <neu>"),
    )
    .unwrap();
    std::fs::write(v21.join("README.md"), "Neu in 2.1.0.\n").unwrap();
    std::fs::write(hund.join("rule.toml"), HUNDESTEUER).unwrap();
    std::fs::write(hund.join("steuer.xsl"), "<xsl:stylesheet/>").unwrap();
    let depot =
        drehscheibe_rules::Depot::load_lenient(dir, drehscheibe_rules::Engines::default()).unwrap();
    // hundesteuer is kept, unavailable (its error is also recorded).
    assert_eq!(depot.packages().len(), 3, "{:?}", depot.load_errors());
    Arc::new(depot)
}

/// A connector type for the tests: its settings are its `url`.
#[derive(Debug)]
struct DummyFactory {
    #[allow(dead_code)] // shown through Debug
    url: String,
}

impl ConnectorFactory for DummyFactory {
    fn build(&self, _cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        Err(BuildError::new("not in these tests"))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn parse_dummy(_c: &mut Checker<'_>, t: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let url = t.get("url").and_then(|v| v.as_str()).unwrap_or_default();
    Some(Arc::new(DummyFactory {
        url: url.to_owned(),
    }))
}

fn plugins() -> Plugins {
    Plugins::new().connector(ConnectorPlugin {
        kind: "dummy",
        summary: "test connector",
        parse: parse_dummy,
    })
}

fn sha(text: &str) -> String {
    drehscheibe_model::sha256_hex(text.as_bytes())
}

/// `ConfigAdmin` over real files in a temp dir, recording revisions in
/// memory; a text containing `kaputt` does not load.
struct FakeAdmin {
    main: std::path::PathBuf,
    config: Mutex<Arc<HubConfig>>,
    files: Mutex<BTreeMap<String, String>>,
    revisions: Mutex<Vec<Revision>>,
    editable: bool,
    depot: Arc<drehscheibe_rules::Depot>,
    /// What [`ConfigAdmin::status`] reports as the files' load error.
    disk_error: Mutex<Option<String>>,
}

impl FakeAdmin {
    fn new(dir: &Path, editable: bool) -> Self {
        let depot = write_depot(&dir.join("rules"));
        std::fs::create_dir_all(dir.join("tenants")).unwrap();
        let main = dir.join("hub.toml");
        std::fs::write(
            &main,
            "tenant_dir = \"tenants\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("tenants/musterstadt.toml"), MUSTERSTADT).unwrap();
        std::fs::write(dir.join("tenants/nachbarstadt.toml"), NACHBARSTADT).unwrap();
        let config = HubConfig::load(&main, &plugins()).expect("test config loads");
        let mut files = BTreeMap::new();
        files.insert(
            "tenants/musterstadt.toml".to_owned(),
            MUSTERSTADT.to_owned(),
        );
        files.insert(
            "tenants/nachbarstadt.toml".to_owned(),
            NACHBARSTADT.to_owned(),
        );
        Self {
            main,
            config: Mutex::new(Arc::new(config)),
            files: Mutex::new(files),
            revisions: Mutex::new(Vec::new()),
            editable,
            depot,
            disk_error: Mutex::new(None),
        }
    }

    fn record(&self, path: String, author: &str, comment: String, text: String) -> Revision {
        let mut revs = self.revisions.lock().unwrap();
        let rev = Revision {
            id: revs.len() as u64 + 1,
            path,
            author: author.to_owned(),
            at: Utc::now(),
            comment,
            old_sha256: None,
            old_text: None,
            new_sha256: Some(sha(&text)),
            new_text: Some(text),
            config_digest: self.current().digest.clone(),
        };
        revs.push(rev.clone());
        rev
    }

    fn write(&self, change: &Change, author: &str, comment: &str) -> Result<Revision, AdminError> {
        let mut files = self.files.lock().unwrap();
        let old = files
            .get(&change.path)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(change.path.clone()))?;
        if let Some(expect) = &change.expect_sha256 {
            if *expect != sha(&old) {
                return Err(AdminError::Conflict {
                    path: change.path.clone(),
                    current: sha(&old),
                });
            }
        }
        if change.text.contains("kaputt") {
            return Err(AdminError::Invalid(vec![format!(
                "{}: line 1: unknown key `kaputt`",
                change.path
            )]));
        }
        files.insert(change.path.clone(), change.text.clone());
        let dir = self.main.parent().unwrap();
        std::fs::write(dir.join(&change.path), &change.text).unwrap();
        let config = HubConfig::load(&self.main, &plugins())
            .map_err(|e| AdminError::Invalid(vec![e.to_string()]))?;
        let digest = config.digest.clone();
        *self.config.lock().unwrap() = Arc::new(config);
        let mut revs = self.revisions.lock().unwrap();
        let rev = Revision {
            id: revs.len() as u64 + 1,
            path: change.path.clone(),
            author: author.to_owned(),
            at: Utc::now(),
            comment: comment.to_owned(),
            old_sha256: Some(sha(&old)),
            old_text: Some(old),
            new_sha256: Some(sha(&change.text)),
            new_text: Some(change.text.clone()),
            config_digest: digest,
        };
        revs.push(rev.clone());
        Ok(rev)
    }
}

#[async_trait]
impl ConfigAdmin for FakeAdmin {
    fn current(&self) -> Arc<HubConfig> {
        self.config.lock().unwrap().clone()
    }

    fn depot(&self) -> Arc<drehscheibe_rules::Depot> {
        self.depot.clone()
    }

    /// Refuses what is not a ZIP (by its magic number) as the real one
    /// does; `failing` in the archive: failed test cases; `exists`: the
    /// version exists; else publishes `neu@1.0.0`.
    async fn publish_rule(
        &self,
        archive: Bytes,
        author: &str,
    ) -> Result<drehscheibe_engine::admin::PublishedRule, AdminError> {
        if !self.editable {
            return Err(AdminError::ReadOnly("read-only".into()));
        }
        if !archive.starts_with(b"PK\x03\x04") {
            return Err(AdminError::Invalid(vec![
                "rule package archive: invalid Zip archive: Could not find EOCD".into(),
            ]));
        }
        let has = |w: &[u8]| archive.windows(w.len()).any(|x| x == w);
        if has(b"failing") {
            return Err(AdminError::Invalid(vec![
                "rule neu@1.0.0: 1 of 2 test cases failed; nothing was published".into(),
                "ohne-baum: expected rejected, got routed".into(),
            ]));
        }
        if has(b"exists") {
            return Err(AdminError::Conflict {
                path: "rules/baumfaellung/2.1.0".into(),
                current: "published (versions are immutable: publish a new version)".into(),
            });
        }
        let revision = self.record(
            "rules/neu/1.0.0".into(),
            author,
            "Regelversion veröffentlicht (2 Testfälle bestanden)".into(),
            "id = \"neu\"\nversion = \"1.0.0\"\n".into(),
        );
        Ok(drehscheibe_engine::admin::PublishedRule {
            id: "neu".into(),
            version: "1.0.0".into(),
            tests_passed: 2,
            revision,
        })
    }

    fn status(&self) -> ReloadStatus {
        ReloadStatus {
            config_digest: self.current().digest.clone(),
            applied_at: Some(Utc::now()),
            disk_error: self.disk_error.lock().unwrap().clone(),
            disk_error_since: None,
            restart_needed: true,
        }
    }

    async fn files(&self) -> Result<Vec<ConfigFile>, AdminError> {
        Ok(self
            .files
            .lock()
            .unwrap()
            .iter()
            .map(|(path, text)| ConfigFile {
                path: path.clone(),
                kind: FileKind::Tenant,
                tenant: path
                    .strip_prefix("tenants/")
                    .and_then(|p| p.strip_suffix(".toml"))
                    .map(str::to_owned),
                editable: self.editable,
                text: text.clone(),
                sha256: sha(text),
            })
            .collect())
    }

    async fn check(&self, change: &Change) -> Result<(), AdminError> {
        if change.text.contains("kaputt") {
            return Err(AdminError::Invalid(vec![
                "tenants/musterstadt.toml: line 1: unknown key `kaputt`".into(),
                "second problem".into(),
            ]));
        }
        Ok(())
    }

    async fn change(&self, change: &Change, author: &str) -> Result<Revision, AdminError> {
        if !self.editable {
            return Err(AdminError::ReadOnly("read-only".into()));
        }
        self.write(change, author, &change.comment)
    }

    async fn history(
        &self,
        path: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionSummary>, AdminError> {
        Ok(self
            .revisions
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter(|r| path.is_none_or(|p| p == r.path))
            .filter(|r| before.is_none_or(|b| r.id < b))
            .take(limit.min(MAX_HISTORY_PAGE))
            .map(RevisionSummary::from)
            .collect())
    }

    async fn revision(&self, id: u64) -> Result<Revision, AdminError> {
        self.revisions
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or(AdminError::NoRevision(id))
    }

    async fn rollback(&self, id: u64, author: &str, comment: &str) -> Result<Revision, AdminError> {
        let rev = self.revision(id).await?;
        let comment = if comment.is_empty() {
            format!("Rücknahme von Revision {id}")
        } else {
            comment.to_owned()
        };
        let change = Change {
            path: rev.path.clone(),
            text: rev.old_text.clone().unwrap_or_default(),
            expect_sha256: None,
            comment: comment.clone(),
        };
        self.write(&change, author, &comment)
    }

    async fn reload(&self, _author: &str) -> Result<ReloadOutcome, AdminError> {
        Err(AdminError::Io("not in this test".into()))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    hub: Arc<Hub>,
    admin: Arc<FakeAdmin>,
    router: Router,
}

fn tokens() -> TokenTable {
    let mut t = TokenTable::new();
    t.insert(
        OP,
        Principal {
            name: "betrieb".into(),
            role: Role::Operator,
        },
    );
    t.insert(
        MS,
        Principal {
            name: "ms-sachbearbeitung".into(),
            role: Role::Tenant {
                tenant: "musterstadt".into(),
            },
        },
    );
    t.insert(
        SENDER,
        Principal {
            name: "portal".into(),
            role: Role::Sender {
                channels: vec!["in".into()],
            },
        },
    );
    t
}

fn fixture_with(settings: ConsoleSettings, editable: bool) -> Fixture {
    fixture_bounded(
        settings,
        editable,
        crate::session::MAX_SESSIONS,
        crate::overview::TENANT_COUNT_MAX,
    )
}

/// A fixture whose session store holds at most `sessions` and whose
/// Übersicht examines at most `tenant_count_max` of a tenant's messages.
fn fixture_bounded(
    settings: ConsoleSettings,
    editable: bool,
    sessions: usize,
    tenant_count_max: usize,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let blobs = Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap());
    let mut hs = HubSettings {
        channels: HashSet::new(),
        ..HubSettings::default()
    };
    hs.channels.insert("in".into());
    let admin = Arc::new(FakeAdmin::new(&dir.path().join("config"), editable));
    let hub = Hub::new(
        store,
        blobs,
        Arc::new(DepotRouter::new(admin.depot(), admin.current())),
        ConnectorRegistry::new(),
        hs,
    );
    let store = SessionStore::with_capacity(settings.session_idle, settings.session_max, sessions);
    let router = if sessions == crate::session::MAX_SESSIONS
        && tenant_count_max == crate::overview::TENANT_COUNT_MAX
    {
        console_router(hub.clone(), Arc::new(tokens()), admin.clone(), settings)
    } else {
        router_with(
            hub.clone(),
            Arc::new(tokens()),
            admin.clone(),
            settings,
            store,
            tenant_count_max,
        )
    };
    Fixture {
        _dir: dir,
        hub,
        admin,
        router,
    }
}

fn fixture() -> Fixture {
    fixture_with(ConsoleSettings::default(), true)
}

/// A message of `tenant` in `state`.
async fn message(hub: &Hub, tenant: &str, state: MessageState) -> MessageId {
    let accepted = hub
        .submit(Submission {
            channel: "in".into(),
            sender: SenderIdentity {
                adapter: "test".into(),
                principal: "p".into(),
                remote_addr: None,
            },
            content_type: "application/xml".into(),
            payload: Bytes::from_static(b"<antrag>Hallo</antrag>"),
            attachments: Vec::new(),
            idempotency_key: None,
            correlation_ids: BTreeMap::new(),
        })
        .await
        .unwrap();
    let id = accepted.id;
    let tenant = tenant.to_owned();
    hub.store()
        .update(id, &mut |r: &mut MessageRecord| {
            r.envelope.tenant = Some(tenant.clone());
            r.envelope.leistung = Some("99104005000000".into());
            r.state = state;
            r.reason = Some("kein Empfänger".into());
            Ok(Effects::default())
        })
        .await
        .unwrap();
    id
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn send(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::HOST, HOST);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post(path: &str, cookie: Option<&str>, origin: Option<&str>, form: &str) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(form.to_owned())).unwrap()
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sign in with `token`: the cookie (`name=value`) and the CSRF token.
async fn sign_in(router: &Router, token: &str) -> (String, String) {
    let a = send(
        router,
        post(
            "/console/anmelden",
            None,
            Some(ORIGIN),
            &format!("token={}", enc(token)),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let cookie = a
        .header(header::SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = send(router, get("/console", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    (cookie, csrf_of(&page.body))
}

fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let i = body.find(marker).expect("page has a CSRF field") + marker.len();
    body[i..i + 64].to_owned()
}

/// No inline script, style or event handler attribute in a page.
fn assert_no_inline_code(body: &str) {
    assert!(!body.contains(" style="), "inline style");
    assert!(!body.contains("<style"), "style element");
    assert_eq!(
        body.matches("<script").count(),
        body.matches("<script src=\"/console/static/").count(),
        "inline script"
    );
    let lower = body.to_ascii_lowercase();
    for (i, _) in lower.match_indices(" on") {
        let rest = &lower[i + 3..];
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        let is_attr = !name.is_empty() && rest[name.len()..].starts_with('=');
        assert!(!is_attr, "event handler attribute on{name}=");
    }
}

fn assert_security_headers(a: &Answer, page: bool) {
    assert_eq!(
        a.header(header::CONTENT_SECURITY_POLICY),
        crate::security::CSP
    );
    assert_eq!(a.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(a.header(header::REFERRER_POLICY), "same-origin");
    assert_eq!(a.header(header::X_FRAME_OPTIONS), "DENY");
    if page {
        assert_eq!(a.header(header::CACHE_CONTROL), "no-store");
    }
}

#[tokio::test]
async fn pages_need_a_session_and_carry_security_headers() {
    let f = fixture();
    for path in [
        "/console",
        "/console/nachrichten",
        "/console/kommunen/musterstadt",
        "/console/verlauf",
        "/console/gibt-es-nicht",
    ] {
        let a = send(&f.router, get(path, None)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.header(header::LOCATION), "/console/anmelden");
        assert_security_headers(&a, true);
    }
    let a = send(&f.router, get("/console", Some("ds-session=erfunden"))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    let a = send(&f.router, get("/console/anmelden", None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_security_headers(&a, true);
    assert!(a.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(a.body.contains("<label for=\"token\">API-Token</label>"));
    assert!(a
        .body
        .contains("id=\"token\" type=\"password\" name=\"token\""));
    assert!(a.body.contains("<html lang=\"de\">"));
    assert_no_inline_code(&a.body);
}

#[tokio::test]
async fn static_assets_are_served_with_long_cache() {
    let f = fixture();
    let a = send(&f.router, get("/console/static/htmx.min.js?v=1", None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header(header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(a.header(header::CACHE_CONTROL).contains("max-age=31536000"));
    assert_security_headers(&a, false);
    assert_eq!(a.body.len(), crate::assets::HTMX.len());
    let a = send(&f.router, get("/console/static/console.css", None)).await;
    assert_eq!(a.header(header::CONTENT_TYPE), "text/css; charset=utf-8");
    let a = send(&f.router, get("/console/static/../../etc/passwd", None)).await;
    assert_ne!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_in_checks_origin_token_and_role() {
    let f = fixture();
    // No Origin, or another site's: refused before the token is looked at.
    let a = send(
        &f.router,
        post("/console/anmelden", None, None, &format!("token={OP}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("Herkunft"));
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            None,
            Some("http://evil.example"),
            &format!("token={OP}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.header(header::SET_COOKIE).is_empty());
    // Unknown token, sender token.
    let a = send(
        &f.router,
        post("/console/anmelden", None, Some(ORIGIN), "token=falsch"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("nicht bekannt"));
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            None,
            Some(ORIGIN),
            &format!("token={SENDER}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("Absender-Token"));
    assert!(a.header(header::SET_COOKIE).is_empty());
    // An operator.
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            None,
            Some(ORIGIN),
            &format!("token={OP}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header(header::LOCATION), "/console");
    let cookie = a.header(header::SET_COOKIE);
    assert!(cookie.starts_with("ds-session="), "{cookie}");
    assert!(cookie.contains("; Path=/; HttpOnly; SameSite=Strict"));
    assert!(!cookie.contains("Secure"));
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ds-session=");
    assert_eq!(id.len(), 64);
}

#[tokio::test]
async fn over_tls_the_cookie_is_host_bound_and_secure() {
    let f = fixture_with(
        ConsoleSettings {
            secure_cookie: true,
            ..ConsoleSettings::default()
        },
        true,
    );
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            None,
            Some("https://hub.example:8080"),
            &format!("token={OP}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let cookie = a.header(header::SET_COOKIE);
    assert!(cookie.starts_with("__Host-ds-session="), "{cookie}");
    assert!(cookie.ends_with("; Secure"));
    // An http origin is another origin on a TLS listener.
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            None,
            Some(ORIGIN),
            &format!("token={OP}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_post_needs_the_csrf_token_and_same_origin() {
    let f = fixture();
    let (cookie, csrf) = sign_in(&f.router, OP).await;
    let form = format!("csrf={csrf}");
    // Missing token, wrong token, cross origin, no origin at all.
    let cases = [
        (Some(ORIGIN), String::new()),
        (Some(ORIGIN), format!("csrf={}", "0".repeat(64))),
        (Some("http://evil.example:8080"), form.clone()),
        (None, form.clone()),
    ];
    for (origin, body) in &cases {
        let a = send(
            &f.router,
            post("/console/abmelden", Some(&cookie), *origin, body),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{origin:?} {body}");
        assert!(a.body.contains("Anfrage abgelehnt"));
        assert_security_headers(&a, true);
    }
    // Still signed in.
    assert_eq!(
        send(&f.router, get("/console", Some(&cookie))).await.status,
        StatusCode::OK
    );
    // Referer stands in for Origin; the header form of the token works.
    let req = Request::post("/console/abmelden")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &cookie)
        .header(header::REFERER, format!("{ORIGIN}/console"))
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    let a = send(&f.router, req).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header(header::LOCATION), "/console/anmelden");
    assert!(a.header(header::SET_COOKIE).contains("Max-Age=0"));
    // Signed out: the session is gone.
    let a = send(&f.router, get("/console", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    // A POST without a session is refused too.
    let a = send(
        &f.router,
        post("/console/abmelden", Some(&cookie), Some(ORIGIN), &form),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_overview_shows_states_attention_and_configuration() {
    let f = fixture();
    let dead = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let other = message(&f.hub, "nachbarstadt", MessageState::Quarantined).await;
    let (cookie, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_security_headers(&a, true);
    assert_no_inline_code(&a.body);
    for text in [
        "<h1>Übersicht</h1>",
        "Nachrichten nach Status",
        "Unzustellbar",
        "Neustart nötig",
        "Warteschlange",
        &f.admin.current().digest,
        &format!("/console/nachrichten/{dead}"),
        &format!("/console/nachrichten/{other}"),
        "<a href=\"/console/nachrichten\">Nachrichten</a>",
        "<a href=\"/console/kommunen\">Kommunen</a>",
        "<a href=\"/console/verlauf\">Verlauf</a>",
        "Abmelden",
        "betrieb",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    // A tenant sees only its own messages needing attention.
    let (cookie, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console", Some(&cookie))).await;
    assert!(a.body.contains(&format!("/console/nachrichten/{dead}")));
    assert!(!a.body.contains(&other.to_string()));
    assert!(!a.body.contains("Warteschlange"));
}

#[tokio::test]
async fn tenants_see_their_own_messages_only() {
    let f = fixture();
    let own = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let foreign = message(&f.hub, "nachbarstadt", MessageState::Dead).await;
    let (cookie, csrf) = sign_in(&f.router, MS).await;

    let a = send(&f.router, get("/console/nachrichten", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains(&own.to_string()));
    assert!(!a.body.contains(&foreign.to_string()));
    assert!(!a.body.contains("Ausgewählte erneut einspielen"));
    // Asking for another tenant changes nothing.
    let a = send(
        &f.router,
        get("/console/nachrichten?tenant=nachbarstadt", Some(&cookie)),
    )
    .await;
    assert!(!a.body.contains(&foreign.to_string()));

    let a = send(
        &f.router,
        get(&format!("/console/nachrichten/{own}"), Some(&cookie)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Protokoll"));
    assert!(!a.body.contains("/erneut\""));
    for path in [
        format!("/console/nachrichten/{foreign}"),
        format!("/console/nachrichten/{foreign}/nutzdaten"),
        "/console/nachrichten/keine-id".to_owned(),
        format!("/console/nachrichten/{}", MessageId::new()),
    ] {
        let a = send(&f.router, get(&path, Some(&cookie))).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Replay: forbidden on its own message, not found on another's.
    let form = format!("csrf={csrf}");
    let a = send(
        &f.router,
        post(
            &format!("/console/nachrichten/{own}/erneut"),
            Some(&cookie),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &f.router,
        post(
            &format!("/console/nachrichten/{foreign}/erneut"),
            Some(&cookie),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(
        &f.router,
        post(
            "/console/nachrichten/erneut",
            Some(&cookie),
            Some(ORIGIN),
            &format!("{form}&id={own}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.hub.store().get(own).await.unwrap().unwrap().state,
        MessageState::Dead
    );
}

#[tokio::test]
async fn operators_replay_one_or_many_and_it_is_audited() {
    let f = fixture();
    let a1 = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let a2 = message(&f.hub, "nachbarstadt", MessageState::Rejected).await;
    let busy = message(&f.hub, "musterstadt", MessageState::Delivering).await;
    let (cookie, csrf) = sign_in(&f.router, OP).await;

    let a = send(&f.router, get("/console/nachrichten", Some(&cookie))).await;
    assert!(a.body.contains("Ausgewählte erneut einspielen"));
    assert!(a.body.contains("data-select-all=\"id\""));
    assert_no_inline_code(&a.body);

    // Many, as htmx sends it: a fragment with counts and per-id results.
    let req = Request::post("/console/nachrichten/erneut")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("hx-request", "true")
        .body(Body::from(format!(
            "csrf={csrf}&id={a1}&id={busy}&id=unsinn"
        )))
        .unwrap();
    let a = send(&f.router, req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("<html"), "a fragment for htmx");
    assert!(
        a.body.contains("1 erneut eingespielt, 2 fehlgeschlagen"),
        "{}",
        a.body
    );
    assert!(a.body.contains("Ungültige Nachrichtenkennung"));
    assert!(a.body.contains("In Zustellung"));
    assert_eq!(
        f.hub.store().get(a1).await.unwrap().unwrap().state,
        MessageState::Received
    );
    let audit = f.hub.store().audit(a1).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "replay" && e.actor == "operator:betrieb"));

    // One, from the detail page.
    let a = send(
        &f.router,
        post(
            &format!("/console/nachrichten/{a2}/erneut"),
            Some(&cookie),
            Some(ORIGIN),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        a.header(header::LOCATION),
        format!("/console/nachrichten/{a2}?erneut=1")
    );
    let a = send(
        &f.router,
        get(
            &format!("/console/nachrichten/{a2}?erneut=1"),
            Some(&cookie),
        ),
    )
    .await;
    assert!(a.body.contains("erneut eingespielt"));
    assert!(a.body.contains("operator:betrieb"));
    // Refused replays say why, in German with the engine's text.
    let a = send(
        &f.router,
        post(
            &format!("/console/nachrichten/{busy}/erneut"),
            Some(&cookie),
            Some(ORIGIN),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("erneut einspielen lassen sich nur"));
    assert!(a.body.contains("Fehlertext: message is delivering"));
}

#[tokio::test]
async fn the_payload_is_always_a_download() {
    let f = fixture();
    let id = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let (cookie, _) = sign_in(&f.router, OP).await;
    let a = send(
        &f.router,
        get(
            &format!("/console/nachrichten/{id}/nutzdaten"),
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header(header::CONTENT_TYPE), "application/xml");
    assert_eq!(
        a.header(header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"nachricht-{id}.xml\"")
    );
    assert_eq!(a.body, "<antrag>Hallo</antrag>");
    assert_security_headers(&a, true);
}

#[tokio::test]
async fn kommunen_are_shown_per_role() {
    let f = fixture();
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/kommunen", Some(&op))).await;
    assert!(a.body.contains("Stadt Musterstadt") && a.body.contains("Gemeinde Nachbarstadt"));
    assert!(a.body.contains("<th scope=\"col\">AGS</th>"));
    let a = send(&f.router, get("/console/kommunen/musterstadt", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_no_inline_code(&a.body);
    for text in [
        "12052000",
        "120520000000",
        "Gewerbeamt",
        "99104005000000",
        "nachbarstadt",
        "<textarea id=\"text\" name=\"text\"",
        "name=\"expect_sha256\"",
        "Kommentar",
        "Prüfen",
        "/console/kommunen/musterstadt/export",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    assert!(a.body.contains(&sha(MUSTERSTADT)));

    let a = send(&f.router, get("/console/kommunen/nachbarstadt", Some(&op))).await;
    for text in [
        "umwelt",
        "dummy",
        "Umwelt-FV",
        "baumfaellung@^2",
        "fachverfahren → <code>umwelt</code>",
        "Umweltamt",
        "https://***@umwelt.example/import",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    // The connector summary hides URL credentials (the file itself is
    // the operator's to edit).
    let summary_start = a.body.find("Einstellungen").unwrap();
    let summary_end = a.body.find("id=\"routen\"").unwrap();
    assert!(!a.body[summary_start..summary_end].contains("geheim"));

    let (ms, csrf) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/kommunen", Some(&ms))).await;
    assert!(a.body.contains("Stadt Musterstadt"));
    assert!(!a.body.contains("Nachbarstadt</td>"));
    let a = send(&f.router, get("/console/kommunen/musterstadt", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("readonly"));
    assert!(!a.body.contains("/speichern"));
    for path in [
        "/console/kommunen/nachbarstadt",
        "/console/kommunen/nachbarstadt/export",
        "/console/kommunen/gibtsnicht",
    ] {
        assert_eq!(
            send(&f.router, get(path, Some(&ms))).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let form = format!("csrf={csrf}&text=x&expect_sha256=");
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&ms),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &f.router,
        post(
            "/console/kommunen/nachbarstadt/speichern",
            Some(&ms),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(f.admin.revisions.lock().unwrap().is_empty());
}

#[tokio::test]
async fn editing_checks_saves_and_keeps_the_text_on_errors() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let expect = sha(MUSTERSTADT);
    let edited = MUSTERSTADT.replace("Stadt Musterstadt", "Hansestadt Musterstadt");
    // Browsers send CRLF; the file keeps LF.
    let sent = edited.replace('\n', "\r\n");
    let form = |text: &str, expect: &str| {
        format!(
            "csrf={csrf}&text={}&expect_sha256={expect}&comment={}",
            enc(text),
            enc("Name geändert")
        )
    };

    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/pruefen",
            Some(&op),
            Some(ORIGIN),
            &form(&sent, &expect),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Gültig."));
    assert!(a.body.contains("Hansestadt Musterstadt"));

    let broken = format!("kaputt = 1\n{edited}");
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/pruefen",
            Some(&op),
            Some(ORIGIN),
            &form(&broken, &expect),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("unknown key `kaputt`") && a.body.contains("second problem"));
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form(&broken, &expect),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("kaputt = 1"), "the submitted text is kept");
    assert!(a.body.contains("Name geändert"), "the comment is kept");

    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form(&sent, &expect),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.header(header::LOCATION),
        "/console/kommunen/musterstadt?gespeichert=1"
    );
    {
        let revs = f.admin.revisions.lock().unwrap();
        assert_eq!(revs.len(), 1);
        assert_eq!(revs[0].author, "betrieb");
        assert_eq!(revs[0].comment, "Name geändert");
        assert_eq!(revs[0].new_text.as_deref(), Some(edited.as_str()));
    }
    let a = send(
        &f.router,
        get("/console/kommunen/musterstadt?gespeichert=1", Some(&op)),
    )
    .await;
    assert!(a.body.contains("Gespeichert und angewendet"));
    assert!(a.body.contains("<h1>Hansestadt Musterstadt</h1>"));
    assert!(a.body.contains("/console/verlauf/1"));

    // Saving again on the old digest: the file changed meanwhile.
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form(&MUSTERSTADT.replace("Stadt", "Dorf"), &expect),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("inzwischen geändert"));
    assert!(a.body.contains("diff-add"));

    // Export.
    let a = send(
        &f.router,
        get("/console/kommunen/musterstadt/export", Some(&op)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"musterstadt.toml\""
    );
    assert!(a
        .header(header::CONTENT_TYPE)
        .starts_with("application/toml"));
    assert_eq!(a.body, edited);
}

#[tokio::test]
async fn read_only_configuration_shows_no_editor() {
    let f = fixture_with(ConsoleSettings::default(), false);
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/kommunen/musterstadt", Some(&op))).await;
    assert!(a.body.contains("Bearbeiten ist abgeschaltet"));
    assert!(!a.body.contains("/speichern"));
}

#[tokio::test]
async fn history_shows_diffs_and_rolls_back() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let edited = MUSTERSTADT.replace("Gewerbeamt", "Ordnungsamt");
    let form = format!(
        "csrf={csrf}&text={}&expect_sha256={}&comment=",
        enc(&edited),
        sha(MUSTERSTADT)
    );
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    // A change of the other tenant's file.
    let nb = NACHBARSTADT.replace("Gemeinde", "Stadt");
    let form = format!("csrf={csrf}&text={}&expect_sha256=", enc(&nb));
    let a = send(
        &f.router,
        post(
            "/console/kommunen/nachbarstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    let a = send(&f.router, get("/console/verlauf", Some(&op))).await;
    assert!(a.body.contains("Revision 1") && a.body.contains("Revision 2"));
    assert_no_inline_code(&a.body);
    let a = send(&f.router, get("/console/verlauf/1", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body
            .contains("<span class=\"diff-del\">-name = &quot;Gewerbeamt&quot;</span>")
            || a.body
                .contains("<span class=\"diff-del\">-name = \"Gewerbeamt\"</span>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("diff-add"));
    assert!(a.body.contains("Diese Änderung zurücknehmen"));

    let a = send(
        &f.router,
        post(
            "/console/verlauf/1/zuruecksetzen",
            Some(&op),
            Some(ORIGIN),
            &format!("csrf={csrf}&comment="),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        a.header(header::LOCATION),
        "/console/verlauf/3?zurueckgesetzt=1"
    );
    assert_eq!(f.admin.revisions.lock().unwrap()[2].author, "betrieb");
    let a = send(&f.router, get("/console/verlauf/99", Some(&op))).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // A tenant sees its own file's revisions only, and cannot roll back.
    let (ms, ms_csrf) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/verlauf", Some(&ms))).await;
    assert!(a.body.contains("/console/verlauf/1\""));
    assert!(!a.body.contains("/console/verlauf/2\""));
    assert_eq!(
        send(&f.router, get("/console/verlauf/2", Some(&ms)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let a = send(&f.router, get("/console/verlauf/1", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("zuruecksetzen"));
    let a = send(
        &f.router,
        post(
            "/console/verlauf/1/zuruecksetzen",
            Some(&ms),
            Some(ORIGIN),
            &format!("csrf={ms_csrf}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &f.router,
        post(
            "/console/verlauf/2/zuruecksetzen",
            Some(&ms),
            Some(ORIGIN),
            &format!("csrf={ms_csrf}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(f.admin.revisions.lock().unwrap().len(), 3);
}

/// A `multipart/form-data` POST as a browser sends the upload forms:
/// `(name, file name, content)` in order.
fn multipart(path: &str, cookie: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Request<Body> {
    let boundary = "----drehscheibe-test-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, value) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let head = match file {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, ORIGIN)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

/// The Probelauf form's parts (the CSRF token first, as the page has it).
fn dry_run_parts<'a>(
    csrf: &'a str,
    text: &'a str,
    version: &'a str,
    compare: &'a str,
) -> Vec<(&'a str, Option<&'a str>, &'a [u8])> {
    vec![
        ("csrf", None, csrf.as_bytes()),
        ("channel", None, b"in"),
        ("content_type", None, b"application/xml"),
        ("text", None, text.as_bytes()),
        ("datei", Some(""), b""),
        ("version", None, version.as_bytes()),
        ("vergleich", None, compare.as_bytes()),
    ]
}

#[tokio::test]
async fn the_new_pages_render_for_operators_without_inline_code() {
    let f = fixture();
    let (op, _) = sign_in(&f.router, OP).await;
    for (path, h1) in [
        ("/console/probelauf", "<h1>Probelauf</h1>"),
        ("/console/regeldepot", "<h1>Regeldepot</h1>"),
        (
            "/console/regeldepot/baumfaellung",
            "<h1>Regel baumfaellung: Baumfällung &lt;neu&gt;</h1>",
        ),
        (
            "/console/regeldepot/baumfaellung/vergleich?a=2.0.0&b=2.1.0",
            "<h1>baumfaellung: 2.0.0 → 2.1.0</h1>",
        ),
        ("/console/sla", "<h1>Servicelevel (SLA)</h1>"),
    ] {
        let a = send(&f.router, get(path, Some(&op))).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_security_headers(&a, true);
        assert_no_inline_code(&a.body);
        assert!(a.body.contains(h1), "{path}: {}", a.body);
        // The navigation in its order, Probelauf included for operators.
        let order = [
            "\">Übersicht</a>",
            "\">Nachrichten</a>",
            "\">Kommunen</a>",
            "\">Regeldepot</a>",
            "\">Probelauf</a>",
            "\">SLA</a>",
            "\">Verlauf</a>",
        ];
        let at: Vec<usize> = order
            .iter()
            .map(|l| a.body.find(l).unwrap_or_else(|| panic!("{path}: no {l}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{path}: nav order");
    }
    let a = send(&f.router, get("/console/probelauf", Some(&op))).await;
    for text in [
        "enctype=\"multipart/form-data\"",
        "<label for=\"text\">Nachricht</label>",
        "<textarea id=\"text\" name=\"text\"",
        "<label for=\"datei\">",
        "type=\"file\" name=\"datei\"",
        "<option value=\"in\" selected>in</option>",
        "<option value=\"application/json\">application/json</option>",
        "<label for=\"version\">Regelversion (optional)</label>",
        "<label for=\"vergleich\">Vergleichen mit Version (optional)</label>",
        "Nichts wird gespeichert oder zugestellt.",
        "Höchstens 16 MiB",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    // The CSRF field comes before the upload (the guard reads it first).
    assert!(
        a.body.find("name=\"csrf\" value=\"").unwrap() < a.body.find("name=\"datei\"").unwrap()
    );
}

#[tokio::test]
async fn a_dry_run_routes_renders_and_keeps_nothing() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &op,
            &dry_run_parts(&csrf, ANTRAG, "", ""),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_no_inline_code(&a.body);
    for text in [
        "Würde zugestellt werden",
        "Nichts wurde gespeichert oder zugestellt.",
        "<code>baumfaellung@2.1.0</code>",
        "href=\"/console/regeldepot/baumfaellung\"",
        "99104005000000",
        "12052000",
        "<a href=\"/console/kommunen/nachbarstadt\">nachbarstadt</a>",
        "<a href=\"/console/kommunen/musterstadt\">musterstadt</a>",
        "Virenprüfung",
        "nicht geprüft (abgeschaltet)",
        "Ziel <code>fachverfahren</code>",
        "<code>umwelt</code>",
        "baumfaellung-12052000-",
        &sha(ANTRAG),
        // The output in a <pre>, escaped.
        "&lt;bf:baumfaellantrag",
        "&lt;![CDATA[&lt;Eiche&gt;]]&gt;",
    ] {
        assert!(a.body.contains(text), "missing {text}: {}", a.body);
    }
    assert!(!a.body.contains("<Eiche>"));
    assert!(!a.body.contains("<bf:"));
    // The form keeps what was sent.
    assert!(a.body.contains("&lt;bf:grundstueck&gt;"));
    // Nothing was stored.
    let page = f
        .hub
        .store()
        .list(&drehscheibe_store::MessageFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.items.is_empty());

    // A file instead of the textarea; a message no rule knows is refused.
    let mut parts = dry_run_parts(&csrf, "", "", "");
    parts[4] = ("datei", Some("antrag.xml"), b"<andere/>");
    let a = send(&f.router, multipart("/console/probelauf", &op, &parts)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Würde abgewiesen werden"), "{}", a.body);
    assert!(a.body.contains("Grund"));

    // A version that does not exist: the engine says so (dead).
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &op,
            &dry_run_parts(&csrf, ANTRAG, "9.9.9", ""),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Würde unzustellbar (tot)"));
    assert!(a.body.contains("rule baumfaellung has no version 9.9.9"));

    // Form errors, in German, with the form kept.
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &op,
            &dry_run_parts(&csrf, "", "zwei", "1.0.0"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Bitte geben Sie eine Nachricht ein"));
    assert!(a.body.contains("„zwei“ ist keine Regelversion"));
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &op,
            &dry_run_parts(&csrf, ANTRAG, "", "2.0.0"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("geben Sie bitte auch die Regelversion an"));
}

#[tokio::test]
async fn a_dry_run_compares_two_versions_side_by_side() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &op,
            &dry_run_parts(&csrf, ANTRAG, "2.0.0", "2.1.0"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_no_inline_code(&a.body);
    for text in [
        "<div class=\"compare\">",
        "Version A: <code>baumfaellung@2.0.0</code>",
        "Version B: <code>baumfaellung@2.1.0</code>",
        "Unterschiede der Ausgaben",
        // Pass-through in both versions: the same document.
        "Gleich in beiden Versionen.",
        "Nichts wurde gespeichert oder zugestellt.",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    assert_eq!(a.body.matches("Würde zugestellt werden").count(), 2);
}

#[tokio::test]
async fn the_dry_run_is_for_operators_and_needs_the_csrf_token() {
    let f = fixture();
    let (op, _) = sign_in(&f.router, OP).await;
    // Without the token, or with another: refused before anything runs.
    for token in ["", &"0".repeat(64)] {
        let a = send(
            &f.router,
            multipart(
                "/console/probelauf",
                &op,
                &dry_run_parts(token, ANTRAG, "", ""),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert!(a.body.contains("Anfrage abgelehnt"));
        assert!(!a.body.contains("Würde zugestellt"));
    }

    let (ms, ms_csrf) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/probelauf", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("nur Betriebs-Tokens"));
    assert!(
        !a.body.contains("\">Probelauf</a>"),
        "not in a tenant's nav"
    );
    assert!(a.body.contains("\">Regeldepot</a>") && a.body.contains("\">SLA</a>"));
    let a = send(
        &f.router,
        multipart(
            "/console/probelauf",
            &ms,
            &dry_run_parts(&ms_csrf, ANTRAG, "", ""),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!a.body.contains("Würde zugestellt"));
}

#[tokio::test]
async fn the_csrf_part_may_come_anywhere_in_the_upload() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let mut parts = dry_run_parts(&csrf, ANTRAG, "", "");
    parts.rotate_left(1);
    let a = send(&f.router, multipart("/console/probelauf", &op, &parts)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("Würde zugestellt werden"));
}

#[tokio::test]
async fn the_depot_shows_versions_pins_and_what_does_not_load() {
    let f = fixture();
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/regeldepot", Some(&op))).await;
    for text in [
        "<a href=\"/console/regeldepot/baumfaellung\">baumfaellung</a>",
        "<a href=\"/console/regeldepot/hundesteuer\">hundesteuer</a>",
        "<code>2.0.0</code>",
        "<code>2.1.0</code>",
        "Baumfällung &lt;neu&gt;",
        "<code>fachverfahren</code>",
        "nicht ladbar:",
        "steuer.xsl",
        // Both tenants' pins.
        "<code>baumfaellung@^2</code>",
        "<code>hundesteuer@^1</code>",
        "<a href=\"/console/kommunen/nachbarstadt\">nachbarstadt</a>",
        "Neue Regelversion veröffentlichen",
        "enctype=\"multipart/form-data\"",
        "<label for=\"archiv\">Regelpaket (ZIP-Archiv)</label>",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    // 2.1.0 is pinned (the newest matching ^2), 2.0.0 not.
    let row = |v: &str| {
        let i = a
            .body
            .find(&format!("<th scope=\"row\"><code>{v}</code>"))
            .unwrap();
        let end = a.body[i..].find("</tr>").unwrap();
        a.body[i..i + end].to_owned()
    };
    assert!(row("2.1.0").contains("baumfaellung@^2"));
    assert!(!row("2.0.0").contains("baumfaellung@^2"));

    // A tenant sees every package, but only its own pins, and no form.
    let (ms, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/regeldepot", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("/console/regeldepot/baumfaellung"));
    assert!(a.body.contains("<code>hundesteuer@^1</code>"));
    assert!(!a.body.contains("baumfaellung@^2"));
    assert!(!a.body.contains("/console/kommunen/nachbarstadt"));
    assert!(!a.body.contains("veroeffentlichen"));
    assert_no_inline_code(&a.body);
    let a = send(
        &f.router,
        get("/console/regeldepot/baumfaellung", Some(&ms)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("baumfaellung@^2"));
}

#[tokio::test]
async fn two_rule_versions_are_compared_file_by_file() {
    let f = fixture();
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(
        &f.router,
        get("/console/regeldepot/baumfaellung", Some(&op)),
    )
    .await;
    for text in [
        "action=\"/console/regeldepot/baumfaellung/vergleich\"",
        "<label for=\"a\">Von Version</label>",
        "<option value=\"2.0.0\" selected>2.0.0</option>",
        "<option value=\"2.1.0\" selected>2.1.0</option>",
        "README.md",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    let a = send(
        &f.router,
        get(
            "/console/regeldepot/baumfaellung/vergleich?a=2.0.0&b=2.1.0",
            Some(&op),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    for text in [
        "<code>README.md</code> – hinzugefügt",
        "<code>rule.toml</code> – geändert",
        "<span class=\"diff-del\">-version = &quot;2.0.0&quot;</span>",
        "<span class=\"diff-add\">+version = &quot;2.1.0&quot;</span>",
        "<span class=\"diff-add\">+title = &quot;Baumfällung &lt;neu&gt;&quot;</span>",
        "<span class=\"diff-meta\">--- baumfaellung@2.0.0/rule.toml</span>",
        "<span class=\"diff-add\">+Neu in 2.1.0.</span>",
    ] {
        assert!(a.body.contains(text), "missing {text}: {}", a.body);
    }
    for path in [
        "/console/regeldepot/gibtsnicht",
        "/console/regeldepot/gibtsnicht/vergleich?a=1.0.0&b=1.0.0",
        "/console/regeldepot/baumfaellung/vergleich?a=2.0.0&b=3.0.0",
        "/console/regeldepot/baumfaellung/vergleich?a=unsinn&b=2.1.0",
        "/console/regeldepot/baumfaellung/vergleich",
        "/console/regeldepot/hundesteuer/vergleich?a=2.0.0&b=2.1.0",
    ] {
        let a = send(&f.router, get(path, Some(&op))).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn publishing_a_rule_version_checks_the_archive() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let publish = |cookie: &str, csrf: &str, zip: &'static [u8]| {
        multipart(
            "/console/regeldepot/veroeffentlichen",
            cookie,
            &[
                ("csrf", None, csrf.as_bytes()),
                ("archiv", Some("regel.zip"), zip),
            ],
        )
    };
    // Not a ZIP: the admin's reasons, 422.
    let a = send(&f.router, publish(&op, &csrf, b"kein zip")).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Das Regelpaket wurde nicht veröffentlicht"));
    assert!(a.body.contains("invalid Zip archive"));
    assert_no_inline_code(&a.body);
    // Failed test cases are listed.
    let a = send(&f.router, publish(&op, &csrf, b"PK\x03\x04failing")).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a
        .body
        .contains("<li><code>ohne-baum: expected rejected, got routed</code></li>"));
    // The version exists.
    let a = send(&f.router, publish(&op, &csrf, b"PK\x03\x04exists")).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("Diese Version gibt es schon"));
    assert!(a
        .body
        .contains("rules/baumfaellung/2.1.0 ist bereits veröffentlicht"));
    // Nothing chosen.
    let a = send(&f.router, publish(&op, &csrf, b"")).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Bitte wählen Sie ein ZIP-Archiv"));
    assert!(f.admin.revisions.lock().unwrap().is_empty());
    // Published.
    let a = send(&f.router, publish(&op, &csrf, b"PK\x03\x04ok")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("Veröffentlicht: <code>neu@1.0.0</code>"));
    assert!(a.body.contains("2 Testfälle bestanden"));
    assert!(a
        .body
        .contains("<a href=\"/console/verlauf/1\">Revision 1</a>"));
    assert_eq!(f.admin.revisions.lock().unwrap()[0].author, "betrieb");
    // Without the CSRF part: refused.
    let a = send(&f.router, publish(&op, "", b"PK\x03\x04ok")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Tenants may not publish.
    let (ms, ms_csrf) = sign_in(&f.router, MS).await;
    let a = send(&f.router, publish(&ms, &ms_csrf, b"PK\x03\x04ok")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("nur der Betrieb"));
    assert_eq!(f.admin.revisions.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn publishing_is_off_when_the_configuration_is_read_only() {
    let f = fixture_with(ConsoleSettings::default(), false);
    let (op, csrf) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/regeldepot", Some(&op))).await;
    assert!(a.body.contains("Veröffentlichen ist abgeschaltet"));
    assert!(!a.body.contains("name=\"archiv\""));
    let a = send(
        &f.router,
        multipart(
            "/console/regeldepot/veroeffentlichen",
            &op,
            &[
                ("csrf", None, csrf.as_bytes()),
                ("archiv", Some("regel.zip"), b"PK\x03\x04ok"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_sla_page_measures_per_route_and_tenant() {
    let f = fixture();
    let own = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/sla", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_no_inline_code(&a.body);
    for text in [
        "<code>sla = { within = &quot;5m&quot;, percent = 95 }</code>",
        "Kommune <a href=\"/console/kommunen/musterstadt\">musterstadt</a>",
        "Kommune <a href=\"/console/kommunen/nachbarstadt\">nachbarstadt</a>",
        "95 % in 5 min 0 s",
        "99,5 % in 2 min 30 s",
        "Letzte 24 Stunden",
        "Letzte 7 Tage",
        "Median (p50)",
        "Anteil im Ziel",
    ] {
        assert!(a.body.contains(text), "missing {text}: {}", a.body);
    }
    // The fresh dead message is still within its 5 minutes: 100 %.
    assert!(a.body.contains("<td class=\"num\">100 %</td>"));
    assert!(a.body.contains("Eingehalten"));
    assert!(a.body.contains("Keine Verletzungen"));

    // Received 10 minutes ago and still not delivered: a breach.
    f.hub
        .store()
        .update(own, &mut |r: &mut MessageRecord| {
            r.envelope.received_at = Utc::now() - chrono::Duration::minutes(10);
            Ok(Effects::default())
        })
        .await
        .unwrap();
    let a = send(&f.router, get("/console/sla", Some(&op))).await;
    for text in [
        "<td class=\"num\">0 %</td>",
        "<span class=\"no\">Verfehlt</span>",
        "Verletzungen der letzten 7 Tage (1)",
        &format!("href=\"/console/nachrichten/{own}\""),
        " (offen)",
        "Unzustellbar",
    ] {
        assert!(a.body.contains(text), "missing {text}: {}", a.body);
    }

    let (ms, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/sla", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("/console/kommunen/musterstadt"));
    assert!(!a.body.contains("nachbarstadt"));
    assert!(!a.body.contains("99,5 %"));
}

#[tokio::test]
async fn large_messages_pass_the_guard_and_long_outputs_are_cut() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    // 3 MiB: more than an ordinary form may have, less than a message.
    let padding = "x".repeat(3 * 1024 * 1024);
    let big = ANTRAG.replace(
        "</bf:baumfaellantrag>",
        &format!("<!-- {padding} --></bf:baumfaellantrag>"),
    );
    let mut parts = dry_run_parts(&csrf, "", "", "");
    parts[4] = ("datei", Some("gross.xml"), big.as_bytes());
    let a = send(&f.router, multipart("/console/probelauf", &op, &parts)).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        &a.body[..a.body.len().min(2000)]
    );
    assert!(a.body.contains("Würde zugestellt werden"));
    assert!(a
        .body
        .contains("Gekürzt: gezeigt werden die ersten 200 KiB"));
    assert!(a.body.len() < 1024 * 1024, "the page stays small");
    // An ordinary form is still limited to 2 MiB.
    let a = send(
        &f.router,
        post(
            "/console/abmelden",
            Some(&op),
            Some(ORIGIN),
            &format!("csrf={csrf}&x={padding}"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.body.contains("höchstens 2 MiB"));
}

/// The number on the Übersicht's card for `state`.
fn card(body: &str, state: &str) -> String {
    let link = format!("<a href=\"/console/nachrichten?state={state}\">");
    let at = body
        .find(&link)
        .unwrap_or_else(|| panic!("no card {state}"));
    let open = "<span class=\"count\">";
    let start = body[..at].rfind(open).unwrap() + open.len();
    let end = start + body[start..].find("</span>").unwrap();
    body[start..end].to_owned()
}

#[tokio::test]
async fn a_tenant_counts_its_own_messages_in_one_bounded_pass() {
    let f = fixture();
    for _ in 0..2 {
        message(&f.hub, "musterstadt", MessageState::Dead).await;
    }
    message(&f.hub, "musterstadt", MessageState::Quarantined).await;
    message(&f.hub, "nachbarstadt", MessageState::Dead).await;
    for _ in 0..3 {
        message(&f.hub, "nachbarstadt", MessageState::Rejected).await;
    }
    let (ms, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(card(&a.body, "dead"), "2");
    assert_eq!(card(&a.body, "quarantined"), "1");
    assert_eq!(card(&a.body, "rejected"), "0");
    assert!(!a.body.contains("mindestens"));
    // The operator's counts are the store's, of everyone.
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console", Some(&op))).await;
    assert_eq!(card(&a.body, "dead"), "3");
    assert_eq!(card(&a.body, "rejected"), "3");

    // Beyond the bound: lower bounds, said as such.
    let f = fixture_bounded(
        ConsoleSettings::default(),
        true,
        crate::session::MAX_SESSIONS,
        3,
    );
    for _ in 0..5 {
        message(&f.hub, "musterstadt", MessageState::Dead).await;
    }
    message(&f.hub, "nachbarstadt", MessageState::Dead).await;
    let (ms, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(card(&a.body, "dead"), "mindestens 3");
    assert_eq!(card(&a.body, "failed"), "mindestens 0");
    assert!(a.body.contains("Gezählt wurden die ersten 3 Nachrichten"));
}

#[tokio::test]
async fn a_tenant_sees_that_the_files_do_not_load_but_not_the_error() {
    let f = fixture();
    *f.admin.disk_error.lock().unwrap() = Some(
        "tenants/nachbarstadt.toml: line 7: unknown key `geheim` in [connectors.umwelt]".into(),
    );
    let (ms, _) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Die Dateien auf der Platte laden nicht"));
    assert!(a.body.contains("fehlerhaft"));
    assert!(a.body.contains("Die Einzelheiten sieht der Betrieb."));
    assert!(!a.body.contains("nachbarstadt"), "{}", a.body);
    assert!(!a.body.contains("geheim"));
    assert!(!a.body.contains("details for operators"));
    assert!(!a.body.contains("Neustart nötig"));
    // Operators see the error in full, and the restart.
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console", Some(&op))).await;
    assert!(a.body.contains("tenants/nachbarstadt.toml: line 7"));
    assert!(a.body.contains("Neustart nötig"));
}

#[tokio::test]
async fn the_sign_in_reads_small_bodies_only() {
    let f = fixture();
    let big = format!("token={OP}&x={}", "a".repeat(10 * 1024));
    let a = send(
        &f.router,
        post("/console/anmelden", None, Some(ORIGIN), &big),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.body.contains("höchstens 4 KiB"));
    assert!(a.header(header::SET_COOKIE).is_empty());
    assert_security_headers(&a, true);
    // Without a session no other POST is read at all.
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            None,
            Some(ORIGIN),
            &big,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // An ordinary sign-in still works.
    sign_in(&f.router, OP).await;
}

#[tokio::test]
async fn paths_under_static_that_are_no_asset_are_not_found() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    for cookie in [None, Some(op.as_str())] {
        for path in ["/console/static/a/b", "/console/static/gibtsnicht.js"] {
            let a = send(&f.router, get(path, cookie)).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "GET {path} {cookie:?}");
            assert_security_headers(&a, true);
        }
        let body = format!("csrf={csrf}&x={}", "a".repeat(64 * 1024));
        let a = send(
            &f.router,
            post("/console/static/a/b", cookie, Some(ORIGIN), &body),
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "POST {cookie:?}");
        assert!(a.body.contains("Nicht gefunden"));
    }
}

#[tokio::test]
async fn too_many_selected_messages_are_refused_and_none_replayed() {
    let f = fixture();
    let dead = message(&f.hub, "musterstadt", MessageState::Dead).await;
    let (op, csrf) = sign_in(&f.router, OP).await;
    let mut form = format!("csrf={csrf}&id={dead}");
    for _ in 0..599 {
        form.push_str(&format!("&id={}", MessageId::new()));
    }
    let a = send(
        &f.router,
        post(
            "/console/nachrichten/erneut",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("Zu viele Nachrichten ausgewählt"));
    assert!(a.body.contains("höchstens 500"));
    assert!(a.body.contains("Es wurde nichts erneut eingespielt"));
    // As htmx sends it: the same notice as a fragment htmx swaps in.
    let req = Request::post("/console/nachrichten/erneut")
        .header(header::HOST, HOST)
        .header(header::COOKIE, &op)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("hx-request", "true")
        .body(Body::from(form))
        .unwrap();
    let a = send(&f.router, req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("<html"));
    assert!(a.body.contains("Zu viele Nachrichten ausgewählt"));
    assert_eq!(
        f.hub.store().get(dead).await.unwrap().unwrap().state,
        MessageState::Dead
    );
    let audit = f.hub.store().audit(dead).await.unwrap();
    assert!(!audit.iter().any(|e| e.action == "replay"));
    // 500 distinct ids (repeated ones counted once) are handled.
    let mut form = format!("csrf={csrf}&id={dead}&id={dead}");
    for _ in 0..499 {
        form.push_str(&format!("&id={}", MessageId::new()));
    }
    let a = send(
        &f.router,
        post(
            "/console/nachrichten/erneut",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains("1 erneut eingespielt, 499 fehlgeschlagen"),
        "{}",
        &a.body[..2000.min(a.body.len())]
    );
}

#[tokio::test]
async fn one_token_signing_in_again_and_again_evicts_only_its_own_sessions() {
    // Room for 21 sessions in all, 20 per token.
    let per = crate::session::MAX_SESSIONS_PER_PRINCIPAL;
    let f = fixture_bounded(
        ConsoleSettings::default(),
        true,
        per + 1,
        crate::overview::TENANT_COUNT_MAX,
    );
    let (op, _) = sign_in(&f.router, OP).await;
    let mut ms = Vec::new();
    for _ in 0..=per {
        ms.push(sign_in(&f.router, MS).await.0);
    }
    let alive = |a: &Answer| a.status == StatusCode::OK;
    assert!(
        alive(&send(&f.router, get("/console", Some(&op))).await),
        "the operator stays"
    );
    assert!(
        !alive(&send(&f.router, get("/console", Some(&ms[0]))).await),
        "the first goes"
    );
    for c in &ms[1..] {
        assert!(alive(&send(&f.router, get("/console", Some(c))).await));
    }
}

#[tokio::test]
async fn a_sign_in_ends_the_session_the_browser_had() {
    let f = fixture();
    let (before, _) = sign_in(&f.router, OP).await;
    let a = send(
        &f.router,
        post(
            "/console/anmelden",
            Some(&before),
            Some(ORIGIN),
            &format!("token={}", enc(MS)),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let after = a
        .header(header::SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(after, before);
    let a = send(&f.router, get("/console", Some(&before))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "the old session is gone");
    let a = send(&f.router, get("/console", Some(&after))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("ms-sachbearbeitung"));
}

#[tokio::test]
async fn revision_lists_show_digests_to_operators_only() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let edited = MUSTERSTADT.replace("Gewerbeamt", "Ordnungsamt");
    let form = format!(
        "csrf={csrf}&text={}&expect_sha256={}&comment=",
        enc(&edited),
        sha(MUSTERSTADT)
    );
    let a = send(
        &f.router,
        post(
            "/console/kommunen/musterstadt/speichern",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let a = send(&f.router, get("/console/verlauf", Some(&op))).await;
    assert!(a.body.contains("SHA-256 nachher"));
    assert!(a.body.contains("<td>geändert</td>"));
    assert!(a.body.contains(&sha(&edited)[..12]));

    let (ms, _) = sign_in(&f.router, MS).await;
    for path in ["/console/verlauf", "/console/kommunen/musterstadt"] {
        let a = send(&f.router, get(path, Some(&ms))).await;
        assert!(a.body.contains("/console/verlauf/1\""), "{path}");
        assert!(!a.body.contains("SHA-256 nachher"), "{path}");
        assert!(
            !a.body.contains("<td>neu</td>") && !a.body.contains("gelöscht"),
            "{path}"
        );
    }
    // The revision page: digests of the texts as shown, nothing "neu".
    let a = send(&f.router, get("/console/verlauf/1", Some(&ms))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("neue Datei") && !a.body.contains("Datei gelöscht"));
    assert!(a.body.contains("diff-add"));

    // A revision that made something new: said from its texts.
    let published = multipart(
        "/console/regeldepot/veroeffentlichen",
        &op,
        &[
            ("csrf", None, csrf.as_bytes()),
            ("archiv", Some("regel.zip"), b"PK\x03\x04ok"),
        ],
    );
    assert_eq!(send(&f.router, published).await.status, StatusCode::OK);
    let a = send(&f.router, get("/console/verlauf/2", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("neue Datei"));
    assert!(a
        .body
        .contains("<span class=\"diff-meta\">--- /dev/null</span>"));
    assert_eq!(
        send(&f.router, get("/console/verlauf/2", Some(&ms)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// The route form's body: `rule`, the targets, the digest and a comment.
fn route_form(
    csrf: &str,
    leistung: &str,
    rule: &str,
    targets: &[(&str, &str)],
    expect: &str,
) -> String {
    let mut form = format!(
        "csrf={csrf}&leistung={leistung}&rule={}&expect_sha256={expect}&comment={}",
        enc(rule),
        enc("Pin auf 2.1.0")
    );
    for (role, conn) in targets {
        form.push_str(&format!(
            "&{}={}",
            enc(&format!("target.{role}")),
            enc(conn)
        ));
    }
    form
}

const BAUM: &str = "99104005000000";
const HUND: &str = "99021001000000";

#[tokio::test]
async fn an_operator_changes_a_route_pin_in_its_line_only() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/kommunen/nachbarstadt", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_no_inline_code(&a.body);
    for text in [
        "<details class=\"route-edit\" id=\"route-99104005000000\">",
        "action=\"/console/kommunen/nachbarstadt/route\"",
        "<input type=\"hidden\" name=\"leistung\" value=\"99104005000000\">",
        "<label for=\"route-99104005000000-regel\">Regelversion</label>",
        "<select id=\"route-99104005000000-regel\" name=\"rule\"",
        "<option value=\"baumfaellung@^2\" selected>^2 – jetzt 2.1.0 (aktuell)</option>",
        "<option value=\"baumfaellung@=2.1.0\">=2.1.0</option>",
        "<option value=\"baumfaellung@=2.0.0\">=2.0.0</option>",
        "<label for=\"route-99104005000000-ziel-0\">Ziel fachverfahren</label>",
        "<select id=\"route-99104005000000-ziel-0\" name=\"target.fachverfahren\">",
        "<option value=\"umwelt\" selected>umwelt – Umwelt-FV</option>",
        "Route speichern und anwenden",
    ] {
        assert!(a.body.contains(text), "missing {text}");
    }
    // Every version produces the role: no "none" to choose.
    assert!(!a.body.contains("keine Verbindung"));
    assert!(a.body.contains(&format!(
        "name=\"expect_sha256\" value=\"{}\"",
        sha(NACHBARSTADT)
    )));
    // A delegating route has no form; the other route of the file has one.
    let a = send(&f.router, get("/console/kommunen/musterstadt", Some(&op))).await;
    assert!(!a.body.contains(&format!("id=\"route-{BAUM}\"")));
    assert!(a.body.contains(&format!("id=\"route-{HUND}\"")));
    assert!(a
        .body
        .contains("<option value=\"hundesteuer@^1\" selected>"));
    assert!(a.body.contains("=1.0.0 – lädt nicht"));

    let form = route_form(
        &csrf,
        BAUM,
        "baumfaellung@=2.1.0",
        &[("fachverfahren", "umwelt")],
        &sha(NACHBARSTADT),
    );
    let a = send(
        &f.router,
        post(
            "/console/kommunen/nachbarstadt/route",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.header(header::LOCATION),
        "/console/kommunen/nachbarstadt?gespeichert=1"
    );
    {
        let revs = f.admin.revisions.lock().unwrap();
        assert_eq!(revs.len(), 1);
        let rev = &revs[0];
        assert_eq!(rev.path, "tenants/nachbarstadt.toml");
        assert_eq!(rev.author, "betrieb");
        assert_eq!(rev.comment, "Pin auf 2.1.0");
        let new = rev.new_text.as_deref().unwrap();
        assert_eq!(
            new,
            NACHBARSTADT.replace("\"baumfaellung@^2\"", "\"baumfaellung@=2.1.0\"")
        );
        let changed: Vec<(&str, &str)> = NACHBARSTADT
            .lines()
            .zip(new.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(NACHBARSTADT.lines().count(), new.lines().count());
        assert_eq!(
            changed,
            [(
                "rule = \"baumfaellung@^2\"",
                "rule = \"baumfaellung@=2.1.0\""
            )]
        );
    }
    let a = send(
        &f.router,
        get("/console/kommunen/nachbarstadt?gespeichert=1", Some(&op)),
    )
    .await;
    assert!(a.body.contains("Gespeichert und angewendet"));
    assert!(
        a.body.contains("<code>baumfaellung@=2.1.0</code>"),
        "the table shows the new pin"
    );
    assert!(a
        .body
        .contains("<option value=\"baumfaellung@=2.1.0\" selected>=2.1.0 (aktuell)</option>"));

    // The same form again, on the old digest: the file changed meanwhile.
    let form = route_form(
        &csrf,
        BAUM,
        "baumfaellung@=2.0.0",
        &[("fachverfahren", "umwelt")],
        &sha(NACHBARSTADT),
    );
    let a = send(
        &f.router,
        post(
            "/console/kommunen/nachbarstadt/route",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("inzwischen geändert"));
    assert!(a.body.contains("wurde nicht geändert"));
    assert!(a.body.contains("diff-add"));
    assert_no_inline_code(&a.body);

    // A candidate that does not load: 422, the text kept in the editor.
    let now = f.admin.files.lock().unwrap()["tenants/nachbarstadt.toml"].clone();
    let form = route_form(
        &csrf,
        BAUM,
        "baumfaellung@^2",
        &[("fachverfahren", "kaputt")],
        &sha(&now),
    );
    let a = send(
        &f.router,
        post(
            "/console/kommunen/nachbarstadt/route",
            Some(&op),
            Some(ORIGIN),
            &form,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("unknown key `kaputt`"));
    assert!(
        a.body.contains("fachverfahren = &quot;kaputt&quot;"),
        "the candidate is in the editor"
    );
    assert_eq!(f.admin.revisions.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn route_changes_need_an_operator_a_route_and_the_csrf_token() {
    let f = fixture();
    let (op, csrf) = sign_in(&f.router, OP).await;
    let expect = sha(MUSTERSTADT);
    let send_form = |cookie: String, tenant: &'static str, form: String| {
        let router = f.router.clone();
        async move {
            send(
                &router,
                post(
                    &format!("/console/kommunen/{tenant}/route"),
                    Some(&cookie),
                    Some(ORIGIN),
                    &form,
                ),
            )
            .await
        }
    };

    // No such route: not found. A delegating one: refused.
    let a = send_form(
        op.clone(),
        "musterstadt",
        route_form(
            &csrf,
            "99000000000000",
            "hundesteuer@^1",
            &[("fachverfahren", "steuer")],
            &expect,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("Nicht gefunden"));
    let a = send_form(
        op.clone(),
        "musterstadt",
        route_form(&csrf, BAUM, "baumfaellung@^2", &[], &expect),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("lenkt an nachbarstadt um"));
    // No CSRF token.
    let no_csrf = route_form(
        &csrf,
        HUND,
        "hundesteuer@=1.0.0",
        &[("fachverfahren", "steuer")],
        &expect,
    )
    .replacen(&format!("csrf={csrf}&"), "", 1);
    let a = send_form(op.clone(), "musterstadt", no_csrf).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("Anfrage abgelehnt"));

    // A tenant sees no form and may not change its routes.
    let (ms, ms_csrf) = sign_in(&f.router, MS).await;
    let a = send(&f.router, get("/console/kommunen/musterstadt", Some(&ms))).await;
    assert!(!a.body.contains("route-edit") && !a.body.contains("/route\""));
    assert!(!a.body.contains("Regelversion"));
    let form = route_form(
        &ms_csrf,
        HUND,
        "hundesteuer@=1.0.0",
        &[("fachverfahren", "steuer")],
        &expect,
    );
    let a = send_form(ms.clone(), "musterstadt", form.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send_form(ms, "nachbarstadt", form).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(f.admin.revisions.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_read_only_configuration_shows_no_route_form() {
    let f = fixture_with(ConsoleSettings::default(), false);
    let (op, _) = sign_in(&f.router, OP).await;
    let a = send(&f.router, get("/console/kommunen/nachbarstadt", Some(&op))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("baumfaellung@^2"));
    assert!(!a.body.contains("route-edit") && !a.body.contains("Regelversion"));
}

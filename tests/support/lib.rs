//! Shared support for the end-to-end tests in `tests/` and the benchmarks
//! in `benches/`: scriptable receivers, configuration writers, a hub run
//! in-process or as a child process, and a small API client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod bench;
pub mod browser;
pub mod fit;
pub mod osci;
pub mod pg_cluster;
pub mod receiver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use drehscheibe_cli::runtime::{start, start_with, Runtime};
use serde_json::Value;

// Tests and benchmarks that run the hub in-process use the hub's
// allocator (the child-process hub, `hub_bin.rs`, declares its own).
drehscheibe_cli::hub_allocator!();

/// Token of the `sender` role for channels `portal`.
pub const SENDER: &str = "test-sender-token";
/// Token of the `operator` role.
pub const OPERATOR: &str = "test-operator-token";
/// Token of the `tenant` role for tenant `alpha` (configured when a
/// tenant file `alpha` is written).
pub const TENANT_ALPHA: &str = "test-alpha-token";
/// Token of the `tenant` role for tenant `beta`.
pub const TENANT_BETA: &str = "test-beta-token";

/// Namespace of the test order documents the fixture rules recognise.
pub const ORDER_NS: &str = "urn:drehscheibe:test:order";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test rule depot (`tests/fixtures/rules`).
pub fn fixture_rules() -> PathBuf {
    repo_root().join("tests/fixtures/rules")
}

/// A test order document routed by the `testorder` fixture rule to the
/// Kommune `kommune` for Leistung `leistung`, padded with `pad` bytes of
/// text so sizes can be chosen.
pub fn order(kommune: &str, leistung: &str, pad: usize) -> Vec<u8> {
    let filler = "x".repeat(pad);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<o:order xmlns:o=\"{ORDER_NS}\" kommune=\"{kommune}\" leistung=\"{leistung}\">\n  <o:item n=\"1\">Grüße aus der Drehscheibe</o:item>\n  <o:pad>{filler}</o:pad>\n</o:order>\n"
    )
    .into_bytes()
}

/// A `multipart/form-data` body: `doc` as the document part (XML), then
/// `attachment` as a PDF part `nachweis`.
pub fn multipart_body(boundary: &str, doc: &[u8], attachment: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"antrag.xml\"\r\nContent-Type: application/xml\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(doc);
    b.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"nachweis\"; filename=\"nachweis.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(attachment);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

/// A tenant `alpha` (AGS 09162000) whose Fachverfahren is reached over
/// XTA 2: the `testorder` Leistung goes through an `xta` connector to the
/// XTA server of the hub at `b_port` (account `dvdv:09000000`, token
/// `tok-land`, reader `dvdv:09162000`, service `service`).
pub fn xta_sending_tenant(b_port: u16, service: &str) -> String {
    const AGS: &str = "09162000";
    const LEISTUNG: &str = "99050012104000";
    format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.xta]
type = "xta"
timeout = "60s"
retry = {{ max_attempts = 3, initial_backoff = "200ms" }}
url = "http://127.0.0.1:{b_port}/xta/xta"
account = "dvdv:09000000"
auth = {{ type = "bearer", token = {{ value = "tok-land" }} }}
reader = "dvdv:09162000"
service = "{service}"
poll_interval = "100ms"
max_wait = "30s"

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "xta" }}
"#
    )
}

/// The store the suite runs against: `DREHSCHEIBE_TEST_STORE` = `sled`
/// (the default) or `postgres` (then `DREHSCHEIBE_TEST_PG_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`, names the database; every
/// [`TestConfig`] gets a schema of its own there, dropped with it). The
/// README's test command runs the suite once with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sled,
    Postgres,
}

impl StoreKind {
    /// The store chosen for this run (panics on an unknown value: a typo
    /// must not quietly test sled twice).
    pub fn from_env() -> Self {
        match std::env::var("DREHSCHEIBE_TEST_STORE").as_deref() {
            Err(_) | Ok("") | Ok("sled") => StoreKind::Sled,
            Ok("postgres") => StoreKind::Postgres,
            Ok(other) => {
                panic!("DREHSCHEIBE_TEST_STORE={other:?}: expected \"sled\" or \"postgres\"")
            }
        }
    }
}

/// The PostgreSQL database of a `postgres` run.
pub fn test_pg_url() -> String {
    std::env::var("DREHSCHEIBE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema name for one test configuration.
fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("suite_{}_{n}_{nanos}", std::process::id())
}

/// The `[store]` section for `kind` (empty for sled, the default) and the
/// schema it uses.
fn store_section(kind: StoreKind) -> (String, Option<String>) {
    match kind {
        StoreKind::Sled => (String::new(), None),
        StoreKind::Postgres => {
            let schema = fresh_schema();
            (
                format!(
                    "[store]\ntype = \"postgres\"\nurl = {{ value = \"{}\" }}\nschema = \"{schema}\"\npool_size = 8\n",
                    test_pg_url()
                ),
                Some(schema),
            )
        }
    }
}

/// A hub configuration in a temporary directory: main file, tenant files,
/// data directory, drop and inbox folders.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub main: PathBuf,
    /// The store this configuration uses.
    pub store: StoreKind,
    /// Its PostgreSQL schema (dropped when the configuration is).
    pub pg_schema: Option<String>,
}

impl Drop for TestConfig {
    fn drop(&mut self) {
        if let Some(schema) = self.pg_schema.take() {
            let url = test_pg_url();
            // Own thread and runtime: drop may run inside a test's runtime.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(drehscheibe_store_postgres::drop_schema(&url, &schema))
                    .ok()
            })
            .join();
            if !matches!(done, Ok(Some(()))) {
                eprintln!("note: could not drop a test schema (left in the test database)");
            }
        }
    }
}

impl TestConfig {
    /// Write a configuration. `listen` is the hub address (`127.0.0.1:0`
    /// for in-process hubs); `tenants` are `(file stem, TOML text)`.
    /// The main file defines channels `portal` (HTTP) and `dropbox`
    /// (directory `<dir>/inbox`), and the four test tokens.
    pub fn write(listen: &str, server_extra: &str, tenants: &[(&str, String)]) -> Self {
        Self::write_with_depot(listen, server_extra, &fixture_rules(), tenants)
    }

    /// As [`TestConfig::write`] with another rule depot.
    pub fn write_with_depot(
        listen: &str,
        server_extra: &str,
        depot: &Path,
        tenants: &[(&str, String)],
    ) -> Self {
        Self::write_full(listen, server_extra, depot, tenants, StoreKind::from_env())
    }

    /// As [`TestConfig::write_with_depot`] on a given store (for the few
    /// tests about one store's own behaviour, like a full data volume
    /// under the embedded store).
    pub fn write_full(
        listen: &str,
        server_extra: &str,
        depot: &Path,
        tenants: &[(&str, String)],
        store: StoreKind,
    ) -> Self {
        Self::write_on(listen, server_extra, depot, tenants, store_section(store))
    }

    /// As [`TestConfig::write_full`] on the PostgreSQL database at `url`
    /// (e.g. a test's own server), with `store_extra` lines in `[store]`.
    pub fn write_postgres(
        listen: &str,
        server_extra: &str,
        tenants: &[(&str, String)],
        url: &str,
        store_extra: &str,
    ) -> Self {
        let schema = fresh_schema();
        let text = format!(
            "[store]\ntype = \"postgres\"\nurl = {{ value = \"{url}\" }}\nschema = \"{schema}\"\npool_size = 8\n{store_extra}\n"
        );
        let mut cfg = Self::write_on(
            listen,
            server_extra,
            &fixture_rules(),
            tenants,
            (text, None),
        );
        // The schema lives in the test's own database server: dropped with it.
        cfg.pg_schema = None;
        cfg
    }

    fn write_on(
        listen: &str,
        server_extra: &str,
        depot: &Path,
        tenants: &[(&str, String)],
        (store_text, pg_schema): (String, Option<String>),
    ) -> Self {
        let store = if store_text.is_empty() {
            StoreKind::Sled
        } else {
            StoreKind::Postgres
        };
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("hub.toml");
        std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        let text = format!(
            r#"tenant_dir = "tenants"

[server]
listen = "{listen}"
data_dir = "data"
shutdown_grace = "5s"
{server_extra}

[rules]
depot = "{depot}"
catalog = "{catalog}"

[channels.portal]
type = "http"

[channels.other]
type = "http"

[channels.dropbox]
type = "directory"
path = "inbox"
poll_interval = "100ms"
settle = "100ms"

[tokens.sender]
secret = {{ value = "{SENDER}" }}
role = "sender"
channels = ["portal"]

[tokens.operator]
secret = {{ value = "{OPERATOR}" }}
role = "operator"

{store_text}
"#,
            depot = depot.display(),
            catalog = repo_root().join("schemas/catalog.xml").display()
        );
        let mut text = text;
        for (tenant, token) in [("alpha", TENANT_ALPHA), ("beta", TENANT_BETA)] {
            if tenants.iter().any(|(stem, _)| *stem == tenant) {
                text.push_str(&format!(
                    "\n[tokens.{tenant}]\nsecret = {{ value = \"{token}\" }}\nrole = \"tenant\"\ntenant = \"{tenant}\"\n"
                ));
            }
        }
        std::fs::write(&main, text).unwrap();
        for (stem, t) in tenants {
            std::fs::write(dir.path().join("tenants").join(format!("{stem}.toml")), t).unwrap();
        }
        Self {
            dir,
            main,
            store,
            pg_schema,
        }
    }

    /// A path inside the configuration directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// A tenant with one HTTP connector `fv` to `url` and a route for
/// Leistung `leistung` through rule `testorder@^1`.
pub fn http_tenant(
    id: &str,
    ags: &str,
    leistung: &str,
    url: &str,
    connector_extra: &str,
) -> String {
    http_tenant_with_rule(id, ags, leistung, "testorder@^1", url, connector_extra)
}

/// [`http_tenant`] routing through `rule` (`id@requirement`), for tests
/// with a depot of their own.
pub fn http_tenant_with_rule(
    id: &str,
    ags: &str,
    leistung: &str,
    rule: &str,
    url: &str,
    connector_extra: &str,
) -> String {
    format!(
        r#"id = "{id}"
name = "Kommune {id}"
ags = "{ags}"

[connectors.fv]
type = "http"
url = "{url}"
{connector_extra}

[[routes]]
leistung = "{leistung}"
rule = "{rule}"
targets = {{ fachverfahren = "fv" }}
"#
    )
}

/// Tenant `alpha` (Stadt Musterstadt, AGS 12052000) with the shipped
/// `gewerbeanmeldung@^2` rule for Leistung 99050012104000, its two
/// outputs going to HTTP connectors at `http://{receiver}/gewerbe` and
/// `/dms` (16 concurrent deliveries each). For the benchmarks' shipped-
/// rule scenarios (the depot is `rules/`).
pub fn gewerbe_tenant(receiver: SocketAddr) -> String {
    format!(
        r#"id = "alpha"
name = "Stadt Musterstadt"
ags = "12052000"

[connectors.fv]
type = "http"
url = "http://{receiver}/gewerbe"
max_concurrency = 16

[connectors.dms]
type = "http"
url = "http://{receiver}/dms"
max_concurrency = 16

[[routes]]
leistung = "99050012104000"
rule = "gewerbeanmeldung@^2"
targets = {{ fachverfahren = "fv", dms = "dms" }}
params = {{ aktenplan_kennzeichen = "32.10", behoerde_kennung = "12052000", behoerde_name = "Stadt Musterstadt", dms_empfaenger = "Zentrale E-Akte" }}
"#
    )
}

/// The usual one-tenant hub: tenant `alpha` (AGS 01001000) with one HTTP
/// connector to `url` for Leistung 99050012104000, the hub listening on
/// `listen`.
pub fn alpha_config(listen: &str, url: &str) -> TestConfig {
    TestConfig::write(
        listen,
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", "99050012104000", url, ""),
        )],
    )
}

/// Minimal client for the hub's HTTP API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    /// Token used by [`Api::message`] and [`Api::wait_state`].
    pub operator: String,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            operator: OPERATOR.to_owned(),
        }
    }

    /// Use another operator token for [`Api::message`].
    pub fn with_operator(mut self, token: &str) -> Self {
        self.operator = token.to_owned();
        self
    }

    /// `POST /api/v1/inbox/{channel}` with a raw body.
    pub async fn post(
        &self,
        channel: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .post(format!("{}/api/v1/inbox/{channel}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = idempotency_key {
            r = r.header("idempotency-key", k);
        }
        r.send().await.unwrap()
    }

    /// Post and expect `202`; returns the message id.
    pub async fn submit(&self, content_type: &str, body: Vec<u8>) -> String {
        let r = self.post("portal", SENDER, content_type, body, None).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 202, "intake answered {status}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// `GET path` with a token; returns status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// `POST path` without body; returns status and JSON body.
    pub async fn post_empty(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// The message as the operator sees it.
    pub async fn message(&self, id: &str) -> Value {
        let (s, v) = self
            .get(&format!("/api/v1/messages/{id}"), &self.operator)
            .await;
        assert_eq!(s, 200, "GET message {id}: {v}");
        v
    }

    /// Poll the message until its state is `state` (panics after `timeout`
    /// with the last view).
    pub async fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let v = self.message(id).await;
            if v["state"] == state {
                return v;
            }
            if Instant::now() > end {
                panic!("message {id} not {state} within {timeout:?}: {v:#}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `/readyz`: status and text.
    pub async fn readyz(&self) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The audit actions of a message view, in order.
pub fn audit_actions(view: &Value) -> Vec<String> {
    view["audit"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The value of one sample line of a Prometheus text (`name{labels}`),
/// 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Path of the `drehscheibe` command of this build profile: the suite's
/// own `drehscheibe-under-test` bin target (the front, which hands every
/// command but `transform` to `drehscheibe-under-test-hub` beside it, see
/// `tests/support/front_bin.rs`), which cargo builds before it runs this
/// package's tests and benchmarks, in the same invocation and with the same
/// features. (`CARGO_BIN_EXE_*` is not set for this library, so the path
/// is derived from the running test executable.)
pub fn drehscheibe_bin() -> PathBuf {
    // target/<profile>/deps/<test-exe> → target/<profile>/drehscheibe-under-test
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join(format!(
        "drehscheibe-under-test{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests and benchmarks through cargo (cargo test / cargo bench), which builds it",
        bin.display()
    );
    bin
}

/// A hub running as a child process (`drehscheibe serve`).
pub struct HubProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl HubProcess {
    /// Start `drehscheibe serve --config main` listening on `addr` and wait
    /// until `/readyz` answers 200. Logs go to `log` (appended).
    pub async fn spawn(main: &Path, addr: SocketAddr, log: &Path) -> Self {
        Self::spawn_with(main, addr, log, false).await
    }

    /// As [`HubProcess::spawn`], listening on `addr` whatever the
    /// configuration says (`--listen`): a second instance of the same hub
    /// configuration.
    pub async fn spawn_instance(main: &Path, addr: SocketAddr, log: &Path) -> Self {
        Self::spawn_with(main, addr, log, true).await
    }

    async fn spawn_with(main: &Path, addr: SocketAddr, log: &Path, listen: bool) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(drehscheibe_bin());
        cmd.args(["serve", "--config"]).arg(main);
        if listen {
            cmd.arg("--listen").arg(addr.to_string());
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut p = Self {
            child,
            addr,
            log: log.to_path_buf(),
        };
        p.wait_ready(Duration::from_secs(60)).await;
        p
    }

    async fn wait_ready(&mut self, timeout: Duration) {
        let http = reqwest::Client::new();
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("hub exited with {status} before it was ready:\n{log}");
            }
            if let Ok(r) = http
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < end, "hub not ready within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `SIGKILL`: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `SIGTERM` and wait for a graceful exit; returns the exit success.
    pub fn terminate(mut self) -> bool {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copy the folder `from` (recursively) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A ZIP of the rule package folder `dir` under the top folder `top`,
/// with `edit(relative path, text)` applied to each file's text (for
/// publishing through the API and the console).
pub fn zip_package(dir: &Path, top: &str, edit: &dyn Fn(&str, String) -> String) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            w.start_file(
                format!("{top}/{rel}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            w.write_all(edit(&rel, text).as_bytes()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The real hub's intake, but the process "dies" right after `submit`
/// returned: a poller (XTA, OSCI) sees an error after the message is
/// stored durably and must not confirm it at the far side.
pub struct CrashAfterSubmit(pub std::sync::Arc<dyn drehscheibe_model::Intake>);

#[async_trait::async_trait]
impl drehscheibe_model::Intake for CrashAfterSubmit {
    async fn submit(
        &self,
        s: drehscheibe_model::Submission,
    ) -> Result<drehscheibe_model::Accepted, drehscheibe_model::IntakeError> {
        self.0.submit(s).await?;
        Err(drehscheibe_model::IntakeError::Unavailable(
            "simulated crash after the durable submit".into(),
        ))
    }
    async fn stage_attachment(
        &self,
        r: drehscheibe_model::BlobReader,
    ) -> Result<drehscheibe_model::BlobRef, drehscheibe_model::IntakeError> {
        self.0.stage_attachment(r).await
    }
    fn max_payload_bytes(&self) -> u64 {
        self.0.max_payload_bytes()
    }
    fn max_attachment_bytes(&self) -> u64 {
        self.0.max_attachment_bytes()
    }
    fn channel_exists(&self, c: &str) -> bool {
        self.0.channel_exists(c)
    }
    fn blobs(&self) -> std::sync::Arc<dyn drehscheibe_model::BlobStore> {
        self.0.blobs()
    }
    async fn status(
        &self,
        id: drehscheibe_model::MessageId,
    ) -> Result<Option<drehscheibe_model::MessageStatus>, drehscheibe_model::IntakeError> {
        self.0.status(id).await
    }
}

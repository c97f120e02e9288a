//! Build and run a hub from a [`HubConfig`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use drehscheibe_config::plugin::ChannelContext;
use drehscheibe_config::{HubConfig, PostgresConfig, StoreConfig};
use drehscheibe_engine::{ConnectorRegistry, DepotRouter, Hub, HubSettings};
use drehscheibe_model::{BlobStore, InputAdapter, Intake};
use drehscheibe_rules::Depot;
use drehscheibe_store::{FsBlobStore, SledStore, Store};
use drehscheibe_store_postgres::{PgBlobStore, PgOptions, PgStore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Load the configuration and cross-check it against the rule depot:
/// every route's rule exists in a matching version and gets its required
/// parameters. Returns the configuration, the depot, and the per-package
/// load problems (rules that failed to load are reported, not fatal, so the
/// hub still serves the other rules; messages for a broken rule go `dead`).
pub fn load(config_file: &Path) -> Result<(HubConfig, Arc<Depot>, Vec<String>)> {
    let config = HubConfig::load(config_file, &crate::connectors::plugins())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (depot, problems) =
        crate::runtime::load_depot(&config.rules.depot, config.rules.catalog.as_deref())?;
    check_against_depot(&config, &depot)?;
    Ok((config, depot, problems))
}

/// The checks of `config check` beyond loading: every route's rule exists
/// in a matching version, gets its required parameters, and has every
/// output mapped to a connector (and no mapping without an output).
pub fn check_against_depot(config: &HubConfig, depot: &Depot) -> Result<()> {
    config
        .check_rule_refs(|sel, params| {
            let pkg = depot.resolve(&sel.id, &sel.version).ok_or_else(|| {
                let known: Vec<String> = depot
                    .packages()
                    .into_iter()
                    .filter(|p| p.id() == sel.id)
                    .map(|p| p.version().to_string())
                    .collect();
                if known.is_empty() {
                    format!("rule {:?} is not in the depot", sel.id)
                } else {
                    format!(
                        "no version of rule {:?} matches {} (depot has {})",
                        sel.id,
                        sel.version,
                        known.join(", ")
                    )
                }
            })?;
            pkg.check_params(params).map(|_| ())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    check_targets(config, depot)
}

/// Every output role of a route's rule must be mapped to a connector, and
/// every mapped role must be produced by the rule (a typo would otherwise
/// silently drop a delivery).
fn check_targets(config: &HubConfig, depot: &Depot) -> Result<()> {
    let mut problems = Vec::new();
    for t in &config.tenants {
        for (i, r) in t.routes.iter().enumerate() {
            let Some(sel) = &r.rule else { continue };
            let Some(pkg) = depot.resolve(&sel.id, &sel.version) else {
                continue;
            };
            let line = r.source_line.map(|l| format!(":{l}")).unwrap_or_default();
            let at = format!(
                "{}{line}: tenants[{}].routes[{i}].targets",
                t.source.display(),
                t.id
            );
            for o in pkg.outputs() {
                if !r.targets.contains_key(&o.target) {
                    problems.push(format!(
                        "{at}: rule {} produces output {:?} but the route maps no connector to it",
                        pkg.rule_ref(),
                        o.target
                    ));
                }
            }
            for role in r.targets.keys() {
                if !pkg.outputs().iter().any(|o| &o.target == role) {
                    problems.push(format!(
                        "{at}.{role}: rule {} has no output {role:?}",
                        pkg.rule_ref()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

fn load_depot(dir: &Path, catalog: Option<&Path>) -> Result<(Arc<Depot>, Vec<String>)> {
    // Rule transforms run on the XSLT-subset interpreter, schemas on
    // libxml2; a stylesheet outside the subset or a schema that does not
    // compile fails its package's load, loudly (the package is reported
    // and messages for it go `dead` with that reason).
    let engines = crate::ruletools::engines(catalog)?;
    let depot = Depot::load_lenient(dir, engines)
        .with_context(|| format!("loading rule depot {}", dir.display()))?;
    let problems = depot.load_errors().iter().map(|e| e.to_string()).collect();
    Ok((Arc::new(depot), problems))
}

/// A running hub: HTTP listener, engine and input adapters.
pub struct Runtime {
    pub addr: SocketAddr,
    /// `https` when `[server] tls` is configured, else `http`.
    pub scheme: &'static str,
    pub hub: Arc<Hub>,
    shutdown: CancellationToken,
    tasks: JoinSet<Result<()>>,
}

/// Start a hub. Binds the configured listen address (port 0 picks a free
/// port; see [`Runtime::addr`]).
pub async fn start(config_file: &Path) -> Result<Runtime> {
    start_with(config_file, None).await
}

/// [`start`] with the listen address overridden.
pub async fn start_with(config_file: &Path, listen: Option<SocketAddr>) -> Result<Runtime> {
    let (mut config, depot, problems) = load(config_file)?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    for p in &problems {
        tracing::error!(problem = %p, "rule package not loaded");
    }
    // Staged attachments older than this are no request's of this process.
    let started = std::time::SystemTime::now();
    let data = &config.server.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let (store, blobs) = open_store(&config, started).await?;
    let snapshot = crate::admin::snapshot_text(&config);
    store
        .put_config_snapshot(&config.digest, &snapshot)
        .await
        .context("storing configuration snapshot")?;

    let mut connectors = ConnectorRegistry::new();
    let resources = config.channel_resources();
    for tenant in &config.tenants {
        for c in &tenant.connectors {
            connectors.insert(
                crate::connectors::slot(&tenant.id, c, &store, data, &resources)
                    .with_context(|| format!("tenant {}: connector {}", tenant.id, c.id))?,
            );
        }
    }
    let config = Arc::new(config);
    let router = Arc::new(DepotRouter::new(depot, config.clone()));
    let settings = HubSettings {
        channels: config.channels.iter().map(|c| c.id.clone()).collect(),
        max_payload_bytes: config.server.max_payload_bytes,
        max_attachment_bytes: config.server.max_attachment_bytes,
        max_in_flight: config.server.workers.max(1) * 32,
        route_workers: config.server.workers.max(1),
        shutdown_grace: config.server.shutdown_grace,
        route_budget: config.server.route_budget,
        document_memory: config.server.document_memory,
        retention: drehscheibe_engine::RetentionSettings::from_config(&config),
        scanning: scanning(&config)?,
        ..HubSettings::default()
    };
    // On a shared store a claim can be committed while its answer is lost
    // (the database restarts mid-call): the job then waits for its lease
    // to expire. Short leases, renewed while the work runs, bound that.
    let settings = if store.is_shared() {
        HubSettings {
            lease: SHARED_STORE_LEASE,
            ..settings
        }
    } else {
        settings
    };
    let hub = Hub::new(store, blobs, router.clone(), connectors, settings);
    // Configuration changes from the console, the API and hand edits
    // (ADR 0021).
    let admin = Arc::new(crate::admin::FileConfigAdmin::new(
        &config,
        router,
        hub.clone(),
        config.console.editable,
    )?);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let bound = match &config.server.tls {
        None => drehscheibe_server::Bound::bind(config.server.listen).await?,
        Some(tls) => {
            let clients = match (&tls.client_ca, tls.client_auth) {
                (None, _) => drehscheibe_server::ClientCerts::None,
                (Some(ca), drehscheibe_config::ClientAuth::Optional) => {
                    drehscheibe_server::ClientCerts::Optional(ca.clone())
                }
                (Some(ca), drehscheibe_config::ClientAuth::Required) => {
                    drehscheibe_server::ClientCerts::Required(ca.clone())
                }
            };
            let settings =
                drehscheibe_server::TlsSettings::from_files(&tls.cert, &tls.key, &clients)
                    .context("loading [server] tls")?;
            drehscheibe_server::Bound::bind_tls(config.server.listen, settings).await?
        }
    }
    .with_shutdown_grace(config.server.shutdown_grace)
    .with_limits(drehscheibe_server::ConnectionLimits {
        max_connections: config.server.max_connections,
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        idle_timeout: config.server.idle_timeout,
    })
    .with_metrics(hub.metrics().clone());
    let addr = bound.local_addr()?;
    let scheme = bound.scheme();
    // Every channel contributes routes to the shared server and/or tasks
    // (ADR 0013); nothing here knows a protocol.
    let intake: Arc<dyn Intake> = hub.clone();
    let tokens = Arc::new(config.token_table());
    let mut app = drehscheibe_server::app(hub.clone(), tokens.clone())
        .merge(drehscheibe_server::config_router(
            admin.clone(),
            tokens.clone(),
        ))
        .merge(drehscheibe_server::dry_run_router(
            hub.clone(),
            tokens.clone(),
        ))
        .merge(drehscheibe_server::rules_router(
            hub.clone(),
            admin.clone(),
            tokens.clone(),
        ))
        .merge(drehscheibe_server::openapi_router())
        .merge(drehscheibe_console::console_router(
            hub.clone(),
            tokens.clone(),
            admin.clone(),
            drehscheibe_console::ConsoleSettings {
                secure_cookie: config.server.tls.is_some(),
                ..drehscheibe_console::ConsoleSettings::default()
            },
        ));
    let mut channel_tasks: Vec<Box<dyn InputAdapter>> = Vec::new();
    for ch in &config.channels {
        let adapter = ch
            .factory
            .build(&ChannelContext {
                id: &ch.id,
                intake: intake.clone(),
                store: hub.store().clone(),
                data_dir: &config.server.data_dir,
                tokens: tokens.clone(),
            })
            .with_context(|| format!("channel {} ({})", ch.id, ch.kind))?;
        if let Some(routes) = adapter.routes {
            app = app.merge(routes);
        }
        if let Some(status) = adapter.status {
            hub.add_channel_status(ch.id.clone(), status);
        }
        if hub.store().is_shared() && !adapter.tasks.is_empty() {
            // Several instances share the store: the channel's tasks run
            // in one of them at a time (see `singleton`).
            let leased = crate::singleton::LeasedChannel {
                id: ch.id.clone(),
                factory: ch.factory.clone(),
                intake: intake.clone(),
                store: hub.store().clone(),
                data_dir: config.server.data_dir.clone(),
                tokens: tokens.clone(),
            };
            let (first, s) = (adapter.tasks, shutdown.clone());
            tasks.spawn(async move { leased.run(first, s).await });
        } else {
            channel_tasks.extend(adapter.tasks);
        }
    }
    let s = shutdown.clone();
    tasks.spawn(async move { bound.serve(app, s).await.map_err(anyhow::Error::from) });
    for task in channel_tasks {
        let (i, s) = (intake.clone(), shutdown.clone());
        tasks.spawn(async move { task.run(i, s).await.map_err(anyhow::Error::from) });
    }

    // Edits made while no hub watched the files get their revision now.
    match admin.record_offline_edits().await {
        Ok(found) if !found.is_empty() => {
            tracing::info!(
                revisions = found.len(),
                "configuration changes found at start recorded"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "recording configuration changes found at start failed")
        }
    }
    let (watcher, s) = (admin.clone(), shutdown.clone());
    tasks.spawn(async move {
        watcher.watch(s).await;
        Ok(())
    });
    let engine = hub.clone();
    let s = shutdown.clone();
    tasks.spawn(async move { engine.run(s).await.map_err(anyhow::Error::from) });
    tracing::info!(%addr, url = %format!("{scheme}://{addr}"), tenants = config.tenants.len(), routes = route_count(&config), config = %config.digest, "hub started");
    Ok(Runtime {
        addr,
        scheme,
        hub,
        shutdown,
        tasks,
    })
}

/// Job lease on a store several instances share (see `start_with`).
const SHARED_STORE_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Open the configured store and its blob store (`[store]`).
async fn open_store(
    config: &HubConfig,
    started: std::time::SystemTime,
) -> Result<(Arc<dyn Store>, Arc<dyn BlobStore>)> {
    let data = &config.server.data_dir;
    match &config.store {
        StoreConfig::Sled => {
            let store: Arc<dyn Store> = Arc::new(
                SledStore::open(&data.join("store"))
                    .with_context(|| format!("opening store in {}", data.display()))?,
            );
            let fs_blobs = FsBlobStore::open(&data.join("blobs"))
                .with_context(|| format!("opening blob store in {}", data.display()))?;
            // Attachments staged for requests a crash interrupted: not
            // fatal, the next start tries again.
            if let Err(e) = fs_blobs.sweep_staged(store.as_ref(), started).await {
                tracing::error!(error = %e, "sweeping staged attachments failed");
            }
            Ok((store, Arc::new(fs_blobs)))
        }
        StoreConfig::Postgres(pg) => {
            let options = pg_options(config, pg);
            let instance = options.instance_id.clone();
            let store = PgStore::connect(pg.url.expose(), options)
                .await
                .with_context(|| {
                    format!("connecting to the PostgreSQL store (schema {})", pg.schema)
                })?;
            tracing::info!(instance = %instance, schema = %pg.schema, "PostgreSQL store connected");
            let blobs = PgBlobStore::new(&store);
            let store: Arc<dyn Store> = Arc::new(store);
            // Other instances may be streaming attachments in right now:
            // only uploads and holds untouched for an hour are leftovers
            // of a crash (far beyond any request's body read timeout).
            let horizon = chrono::Utc::now() - chrono::Duration::hours(1);
            if let Err(e) = blobs.sweep(store.as_ref(), horizon).await {
                tracing::error!(error = %e, "sweeping staged attachments failed");
            }
            Ok((store, Arc::new(blobs)))
        }
    }
}

/// The PostgreSQL store's options from `[store]`: the instance name is
/// the configured one, else this host's name and the listen port (stable
/// across restarts, so a restarted instance takes its own leftover job
/// leases back at once; port 0 gets a random name).
fn pg_options(config: &HubConfig, pg: &PostgresConfig) -> PgOptions {
    let instance = pg.instance.clone().unwrap_or_else(|| {
        let port = config.server.listen.port();
        if port == 0 {
            format!("hub-{}", uuid::Uuid::new_v4().simple())
        } else {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "hub".to_owned());
            format!("{host}:{port}")
        }
    });
    let mut options = PgOptions::new(instance).with_schema(pg.schema.clone());
    options.pool_size = pg.pool_size;
    options.connect_timeout = pg.connect_timeout;
    options.pool_wait_timeout = pg.connect_timeout;
    options.statement_timeout = pg.statement_timeout;
    options
}

/// `drehscheibe store migrate`: apply the configured store's pending
/// schema migrations; returns their versions. The embedded store has no
/// migrations.
pub async fn migrate(config: &HubConfig) -> Result<Vec<i32>> {
    match &config.store {
        StoreConfig::Sled => {
            bail!("the configured store is the embedded sled store, which has no schema migrations ([store] type = \"postgres\" has)")
        }
        StoreConfig::Postgres(pg) => {
            let options = pg_options(config, pg);
            drehscheibe_store_postgres::migrate_with(pg.url.expose(), &options)
                .await
                .context("migrating the PostgreSQL store")
        }
    }
}

fn route_count(config: &HubConfig) -> usize {
    config.tenants.iter().map(|t| t.routes.len()).sum()
}

impl Runtime {
    /// A token that stops the hub when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stop: no new intake, finish or release in-flight work, flush.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shutdown.cancel();
        self.join().await
    }

    /// Wait until every part has stopped (after a shutdown, or a failure
    /// of one part, which stops the others).
    pub async fn join(&mut self) -> Result<()> {
        let mut first_err = None;
        while let Some(r) = self.tasks.join_next().await {
            let r = match r {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("task panicked: {e}")),
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "hub component failed; shutting down");
                self.shutdown.cancel();
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Run until SIGINT/SIGTERM, then shut down gracefully.
    pub async fn run_until_signal(mut self) -> Result<()> {
        let token = self.shutdown.clone();
        tokio::select! {
            r = self.join() => return r,
            _ = wait_for_signal() => {}
        }
        tracing::info!("signal received, shutting down");
        token.cancel();
        self.join().await
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Refuse to start on a configuration without any tenant or channel.
pub fn sanity(config: &HubConfig) -> Result<()> {
    if config.channels.is_empty() {
        bail!("{}: no channels configured", config.main_file.display());
    }
    Ok(())
}

/// The malware scanner of `[scanner]`, or `None` (said in the log: content
/// is then not scanned).
fn scanning(config: &HubConfig) -> anyhow::Result<Option<drehscheibe_engine::Scanning>> {
    let Some(sc) = &config.scanner else {
        tracing::warn!("no [scanner] configured: payloads, attachments and outputs are not scanned for malware");
        return Ok(None);
    };
    let address = drehscheibe_clamd::ClamdAddress::parse(&sc.address)
        .map_err(|e| anyhow::anyhow!("[scanner] address: {e}"))?;
    let clamd = drehscheibe_clamd::Clamd::new(drehscheibe_clamd::ClamdSettings {
        timeout: sc.timeout,
        ..drehscheibe_clamd::ClamdSettings::new(address)
    });
    tracing::info!(scanner = %drehscheibe_model::Scanner::describe(&clamd), "malware scanning on: nothing is delivered without a clean verdict");
    let off = Some(drehscheibe_config::ScanMode::Off);
    let channels_off: std::collections::HashSet<String> = config
        .channels
        .iter()
        .filter(|c| c.scan == off)
        .map(|c| c.id.clone())
        .collect();
    let tenants_off = config.tenants_scan_off();
    if !channels_off.is_empty() || !tenants_off.is_empty() {
        tracing::warn!(channels = ?channels_off, tenants = ?tenants_off, "scanning switched off (scan = \"off\") for these channels' input and these tenants' outputs");
    }
    Ok(Some(drehscheibe_engine::Scanning {
        retry: sc.retry,
        base64_min: sc.base64_min,
        channels_off,
        tenants_off,
        ..drehscheibe_engine::Scanning::new(Arc::new(clamd))
    }))
}

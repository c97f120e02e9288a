//! Build and run a hub from a [`HubConfig`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use drehscheibe_config::{ChannelKind, HubConfig};
use drehscheibe_engine::{ConnectorRegistry, ConnectorSlot, DepotRouter, Hub, HubSettings};
use drehscheibe_model::{BlobStore, InputAdapter, Intake};
use drehscheibe_rules::Depot;
use drehscheibe_store::{FsBlobStore, SledStore, Store};
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
    let (depot, problems) = crate::runtime::load_depot(&config.rules.depot)?;
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
    check_targets(&config, &depot)?;
    Ok((config, depot, problems))
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

fn load_depot(dir: &Path) -> Result<(Arc<Depot>, Vec<String>)> {
    // Rule transforms run on the XSLT-subset interpreter; a stylesheet
    // outside the subset fails its package's load, loudly (the package is
    // reported and messages for it go `dead` with that reason).
    let factory: Option<Arc<dyn drehscheibe_rules::TransformerFactory>> =
        Some(Arc::new(drehscheibe_xslt::XsltFactory));
    let depot = Depot::load_lenient(dir, factory)
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
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(&data.join("store"))
            .with_context(|| format!("opening store in {}", data.display()))?,
    );
    let fs_blobs = FsBlobStore::open(&data.join("blobs"))
        .with_context(|| format!("opening blob store in {}", data.display()))?;
    // Attachments staged for requests a crash interrupted: not fatal, the
    // next start tries again.
    if let Err(e) = fs_blobs.sweep_staged(store.as_ref(), started).await {
        tracing::error!(error = %e, "sweeping staged attachments failed");
    }
    let blobs: Arc<dyn BlobStore> = Arc::new(fs_blobs);
    let config_text = std::fs::read_to_string(&config.main_file).unwrap_or_default();
    store
        .put_config_snapshot(&config.digest, &config_text)
        .await
        .context("storing configuration snapshot")?;

    let mut connectors = ConnectorRegistry::new();
    for tenant in &config.tenants {
        for c in &tenant.connectors {
            let connector = crate::connectors::build(&tenant.id, c, &store, data)
                .with_context(|| format!("tenant {}: connector {}", tenant.id, c.id))?;
            connectors.insert(ConnectorSlot::new(
                tenant.id.clone(),
                c.id.clone(),
                connector,
                c.retry.clone(),
                c.max_concurrency,
                c.timeout,
            ));
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
        ..HubSettings::default()
    };
    let hub = Hub::new(store, blobs, router, connectors, settings);
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
    let fit_subscribers = fit_subscribers(&config, hub.store())?;
    let mut app = drehscheibe_server::app(hub.clone(), Arc::new(config.token_table()));
    for (_, adapter) in &fit_subscribers {
        if let Some(callbacks) = adapter.callback_router() {
            app = app.merge(callbacks);
        }
    }
    let fit_intakes = fit_intakes(&config, hub.clone(), hub.store())?;
    for fit in &fit_intakes {
        app = app.merge(fit.router());
    }
    for xta in xta_servers(&config, hub.clone(), hub.store().clone())? {
        app = app.merge(xta.router());
    }
    let s = shutdown.clone();
    tasks.spawn(async move { bound.serve(app, s).await.map_err(anyhow::Error::from) });
    for fit in fit_intakes {
        let s = shutdown.clone();
        tasks.spawn(async move {
            fit.run_status_follower(s).await;
            Ok(())
        });
    }

    let intake: Arc<dyn Intake> = hub.clone();
    for ch in &config.channels {
        if let ChannelKind::Directory {
            path,
            poll_interval,
            settle,
            content_type,
        } = &ch.kind
        {
            let adapter = drehscheibe_directory::DirectoryIntake::new(
                drehscheibe_directory::DirectoryIntakeSettings {
                    channel: ch.id.clone(),
                    path: path.clone(),
                    poll_interval: *poll_interval,
                    settle: *settle,
                    content_type: content_type.clone(),
                },
            )
            .with_context(|| format!("channel {}", ch.id))?;
            let adapter: Box<dyn InputAdapter> = Box::new(adapter);
            let (i, s) = (intake.clone(), shutdown.clone());
            tasks.spawn(async move { adapter.run(i, s).await.map_err(anyhow::Error::from) });
        }
    }

    for (_, adapter) in fit_subscribers {
        let adapter: Box<dyn InputAdapter> = Box::new(adapter);
        let (i, s) = (intake.clone(), shutdown.clone());
        tasks.spawn(async move { adapter.run(i, s).await.map_err(anyhow::Error::from) });
    }

    for adapter in xta_pollers(&config)? {
        let adapter: Box<dyn InputAdapter> = Box::new(adapter);
        let (i, s) = (intake.clone(), shutdown.clone());
        tasks.spawn(async move { adapter.run(i, s).await.map_err(anyhow::Error::from) });
    }

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

/// Build the FIT-Connect subscriber adapters of `fit-connect-subscriber`
/// channels (keys read now, so a bad key stops the start).
fn fit_subscribers(
    config: &HubConfig,
    store: &Arc<dyn Store>,
) -> Result<
    Vec<(
        String,
        drehscheibe_fit_connect::subscriber::FitConnectSubscriber,
    )>,
> {
    use drehscheibe_fit_connect::keys::load_private_key;
    use drehscheibe_fit_connect::subscriber::{
        FitConnectSubscriber, SubscriberDestination, SubscriberSettings,
    };
    let mut out = Vec::new();
    for ch in &config.channels {
        let ChannelKind::FitConnectSubscriber(f) = &ch.kind else {
            continue;
        };
        let mut destinations = Vec::new();
        for d in &f.destinations {
            let decryption_keys = d
                .decryption_keys
                .iter()
                .map(|p| load_private_key(p, None))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("channel {}: destination {}", ch.id, d.destination_id))?;
            let signing_key = load_private_key(&d.signing_key, Some(&d.signing_kid))
                .with_context(|| format!("channel {}: destination {}", ch.id, d.destination_id))?;
            destinations.push(SubscriberDestination {
                destination_id: d.destination_id.clone(),
                decryption_keys,
                signing_key,
            });
        }
        let ca_cert_pem = f
            .ca_cert
            .as_deref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()?;
        let adapter = FitConnectSubscriber::new(
            SubscriberSettings {
                channel: ch.id.clone(),
                token: drehscheibe_fit_connect::client::TokenSettings {
                    token_url: f.token_url.clone(),
                    client_id: f.client_id.clone(),
                    client_secret: f.client_secret.expose().to_owned(),
                    scope: None,
                },
                submission_api_url: f.submission_api_url.clone(),
                destinations,
                poll_interval: f.poll_interval,
                callback_secret: f.callback_secret.as_ref().map(|s| s.expose().to_owned()),
                state_dir: config
                    .server
                    .data_dir
                    .join("fit-connect-subscriber")
                    .join(&ch.id),
                http_timeout: std::time::Duration::from_secs(30),
                ca_cert_pem,
            },
            store.clone(),
        )
        .with_context(|| format!("channel {}", ch.id))?;
        out.push((ch.id.clone(), adapter));
    }
    Ok(out)
}

/// Build the intakes of `fit-connect` channels (the hub as a FIT-Connect
/// Zustelldienst). Keys are read now, so a bad key stops the start.
fn fit_intakes(
    config: &HubConfig,
    intake: Arc<dyn Intake>,
    store: &Arc<dyn Store>,
) -> Result<Vec<drehscheibe_fit_connect::intake::FitConnectIntake>> {
    use drehscheibe_fit_connect::intake::{
        FitConnectIntake, FitConnectIntakeSettings, IntakeClient, IntakeDestination, IntakeService,
    };
    use drehscheibe_fit_connect::keys::load_private_key;
    let mut out = Vec::new();
    for ch in &config.channels {
        let ChannelKind::FitConnect(f) = &ch.kind else {
            continue;
        };
        let ctx = || format!("channel {}", ch.id);
        let uuid = |s: &str| {
            s.parse::<uuid::Uuid>()
                .with_context(|| format!("channel {}: destination id {s}", ch.id))
        };
        let mut destinations = Vec::new();
        for d in &f.destinations {
            let keys = d
                .decryption_keys
                .iter()
                .map(|p| load_private_key(p, None))
                .collect::<Result<Vec<_>, _>>()
                .with_context(ctx)?;
            destinations.push(IntakeDestination {
                id: uuid(&d.destination_id)?,
                tenant: d.tenant.clone(),
                services: d
                    .services
                    .iter()
                    .map(|(identifier, name)| IntakeService {
                        identifier: identifier.clone(),
                        name: name.clone(),
                    })
                    .collect(),
                keys,
                metadata_versions: d.metadata_versions.clone(),
            });
        }
        let mut clients = Vec::new();
        for c in &f.clients {
            clients.push(IntakeClient {
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.expose().to_owned(),
                destinations: c
                    .destinations
                    .iter()
                    .map(|d| uuid(d))
                    .collect::<Result<_>>()?,
            });
        }
        let signing_key =
            load_private_key(&f.signing_key, f.signing_kid.as_deref()).with_context(ctx)?;
        let fit = FitConnectIntake::open(
            FitConnectIntakeSettings {
                channel: ch.id.clone(),
                base_path: Some(f.base_path.clone()),
                clients,
                destinations,
                signing_key,
                token_ttl: f.token_ttl,
                public_base_url: f.public_base_url.clone(),
                max_attachment_bytes: f.max_attachment_bytes,
                state_dir: config.server.data_dir.join("fit-connect").join(&ch.id),
                poll_interval: f.poll_interval,
            },
            intake.clone(),
            store.clone(),
        )
        .with_context(ctx)?;
        out.push(fit);
    }
    Ok(out)
}

/// Build the XTA-WS servers of `xta` channels, mounted at `/xta/<id>`;
/// their mailboxes and state live in the hub store, large incoming
/// messages are spooled under `<data_dir>/xta`.
fn xta_servers(
    config: &HubConfig,
    intake: Arc<dyn Intake>,
    store: Arc<dyn Store>,
) -> Result<Vec<drehscheibe_xta::server::XtaServer>> {
    use drehscheibe_xta::model::PartyIdentifier;
    use drehscheibe_xta::server::{Account, XtaServer, XtaServerSettings};
    let mut out = Vec::new();
    for ch in &config.channels {
        let ChannelKind::Xta(x) = &ch.kind else {
            continue;
        };
        let accounts = x
            .accounts
            .iter()
            .map(|a| Account {
                name: a.name.clone(),
                identifier: PartyIdentifier {
                    value: a.identifier.clone(),
                    kind: a.identifier_type.clone(),
                    category: a.identifier_category.clone(),
                    name: a.identifier_name.clone(),
                },
                tokens: a.tokens.iter().map(|t| t.expose().to_owned()).collect(),
                cert_fingerprints: a.client_cert_sha256.clone(),
            })
            .collect();
        let mut settings =
            XtaServerSettings::new(&ch.id, config.server.data_dir.join("xta"), accounts);
        settings.path = format!("/xta/{}", ch.id);
        settings.server_identity = x.server_identity.clone();
        settings.max_message_bytes = x.max_message_bytes;
        out.push(
            XtaServer::open(settings, intake.clone(), store.clone())
                .with_context(|| format!("channel {}", ch.id))?,
        );
    }
    Ok(out)
}

/// Build the mailbox pollers of `xta-poller` channels (certificates read
/// now, so a bad file stops the start).
fn xta_pollers(config: &HubConfig) -> Result<Vec<drehscheibe_xta::poller::XtaPoller>> {
    use drehscheibe_xta::poller::{XtaPoller, XtaPollerSettings};
    let mut out = Vec::new();
    for ch in &config.channels {
        let ChannelKind::XtaPoller(p) = &ch.kind else {
            continue;
        };
        let client = drehscheibe_xta::connector_config::client_settings(
            &p.remote,
            std::time::Duration::from_secs(120),
        )
        .with_context(|| format!("channel {}", ch.id))?;
        out.push(
            XtaPoller::new(XtaPollerSettings {
                channel: ch.id.clone(),
                client,
                poll_interval: p.poll_interval,
                max_list_items: p.max_list_items,
                services: p.services.clone(),
                message_types: p.message_types.clone(),
            })
            .with_context(|| format!("channel {}", ch.id))?,
        );
    }
    Ok(out)
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

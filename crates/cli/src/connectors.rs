//! The composition root's list of protocol plugins (channel and connector
//! types), and connector construction from tenant configuration.
//!
//! This is the one place that knows every protocol crate: a new protocol
//! adds one line to [`plugins`] (and its crate to `Cargo.toml`).

use std::sync::Arc;

use anyhow::{Context, Result};
use drehscheibe_config::plugin::BuildContext;
use drehscheibe_config::{ConnectorConfig, Plugins};
use drehscheibe_model::Connector;

/// Every channel and connector type this hub offers.
pub fn plugins() -> Plugins {
    Plugins::new()
        .channel(drehscheibe_http::config::CHANNEL)
        .channel(drehscheibe_directory::config::CHANNEL)
        .channel(drehscheibe_fit_connect::channel_config::INTAKE_CHANNEL)
        .channel(drehscheibe_fit_connect::channel_config::SUBSCRIBER_CHANNEL)
        .channel(drehscheibe_xta::channel_config::SERVER_CHANNEL)
        .channel(drehscheibe_xta::channel_config::POLLER_CHANNEL)
        .channel(drehscheibe_osci::channel_config::INTERMEDIARY_CHANNEL)
        .channel(drehscheibe_osci::remote::POLLER_CHANNEL)
        .connector(drehscheibe_http::config::CONNECTOR)
        .connector(drehscheibe_directory::config::CONNECTOR)
        .connector(drehscheibe_smtp::config::CONNECTOR)
        .connector(drehscheibe_fit_connect::connector_config::CONNECTOR)
        .connector(drehscheibe_xta::connector_config::CONNECTOR)
        .connector(drehscheibe_xta::connector_config::MAILBOX_CONNECTOR)
        .connector(drehscheibe_osci::remote::CONNECTOR)
}

/// Build the connector of one configured endpoint of `tenant`.
pub fn build(
    tenant: &str,
    cfg: &ConnectorConfig,
    store: &Arc<dyn drehscheibe_store::Store>,
    data_dir: &std::path::Path,
    resources: &std::collections::BTreeMap<String, String>,
) -> Result<Arc<dyn Connector>> {
    cfg.factory
        .build(&BuildContext {
            tenant,
            id: &cfg.id,
            timeout: cfg.timeout,
            store: store.clone(),
            data_dir,
            resources,
        })
        .with_context(|| format!("connector {} ({})", cfg.id, cfg.kind))
}

/// [`build`] wrapped in its slot: the endpoint's retry policy,
/// concurrency cap and attempt timeout (start-up and configuration reload
/// make slots the same way).
pub fn slot(
    tenant: &str,
    cfg: &ConnectorConfig,
    store: &Arc<dyn drehscheibe_store::Store>,
    data_dir: &std::path::Path,
    resources: &std::collections::BTreeMap<String, String>,
) -> Result<drehscheibe_engine::ConnectorSlot> {
    let connector = build(tenant, cfg, store, data_dir, resources)?;
    Ok(drehscheibe_engine::ConnectorSlot::new(
        tenant,
        cfg.id.clone(),
        connector,
        cfg.retry.clone(),
        cfg.max_concurrency,
        cfg.timeout,
    ))
}

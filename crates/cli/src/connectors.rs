//! Build connectors from tenant configuration. This is the one place that
//! knows every protocol crate: a new protocol adds one arm here.

use std::sync::Arc;

use anyhow::{Context, Result};
use drehscheibe_config::{ConnectorConfig, ConnectorKind, HttpAuth, HttpMethod, SmtpTls};
use drehscheibe_model::Connector;

/// Build the connector for one configured endpoint (`store`: the hub
/// store, where hosted XTA mailboxes live).
pub fn build(
    cfg: &ConnectorConfig,
    store: &Arc<dyn drehscheibe_store::Store>,
) -> Result<Arc<dyn Connector>> {
    Ok(match &cfg.kind {
        ConnectorKind::Http(h) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))
            };
            let client_cert_pem = match &h.client_cert {
                Some(c) => Some((read(&c.cert)?, read(&c.key)?)),
                None => None,
            };
            let ca_cert_pem = h.ca_cert.as_deref().map(read).transpose()?;
            let settings = drehscheibe_http::HttpConnectorSettings {
                url: h.url.clone(),
                method: match h.method {
                    HttpMethod::Post => reqwest::Method::POST,
                    HttpMethod::Put => reqwest::Method::PUT,
                },
                headers: h
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                auth: h.auth.as_ref().map(|a| match a {
                    HttpAuth::Bearer { token } => {
                        drehscheibe_http::HttpAuth::Bearer(token.expose().to_owned())
                    }
                    HttpAuth::Basic { username, password } => drehscheibe_http::HttpAuth::Basic {
                        username: username.clone(),
                        password: password.expose().to_owned(),
                    },
                }),
                success_status: h.success_status.clone(),
                client_cert_pem,
                ca_cert_pem,
                timeout: cfg.timeout,
                send_attachments: h.send_attachments,
            };
            Arc::new(
                drehscheibe_http::HttpConnector::new(settings)
                    .with_context(|| format!("connector {}", cfg.id))?,
            )
        }
        ConnectorKind::Directory(d) => Arc::new(
            drehscheibe_directory::DirectoryConnector::new(
                drehscheibe_directory::DirectorySettings {
                    path: d.path.clone(),
                    metadata: d.metadata,
                },
            )
            .with_context(|| format!("connector {}", cfg.id))?,
        ),
        ConnectorKind::Smtp(s) => Arc::new(
            drehscheibe_smtp::SmtpConnector::new(drehscheibe_smtp::SmtpSettings {
                host: s.host.clone(),
                port: s.port,
                tls: match s.tls {
                    SmtpTls::Starttls => drehscheibe_smtp::SmtpTls::Starttls,
                    SmtpTls::Tls => drehscheibe_smtp::SmtpTls::Tls,
                    SmtpTls::None => drehscheibe_smtp::SmtpTls::None,
                },
                username: s.username.clone(),
                password: s.password.as_ref().map(|p| p.expose().to_owned()),
                from: s.from.clone(),
                to: s.to.clone(),
                subject_template: s.subject.clone(),
                max_total_bytes: s.max_total_bytes,
                timeout: cfg.timeout,
                ca_cert_pem: None,
            })
            .with_context(|| format!("connector {}", cfg.id))?,
        ),
        ConnectorKind::FitConnect(f) => Arc::new(fit_connect(cfg, f)?),
        ConnectorKind::Xta(x) => Arc::new(
            drehscheibe_xta::connector::XtaConnector::new(
                drehscheibe_xta::connector::XtaConnectorSettings {
                    client: xta_client_settings(&x.remote, cfg.timeout)?,
                    meta: xta_meta(&x.meta),
                    report_wait: x.report_wait,
                    report_poll_interval: x.report_poll_interval,
                },
            )
            .with_context(|| format!("connector {}", cfg.id))?,
        ),
        ConnectorKind::XtaMailbox(m) => {
            let mailboxes = drehscheibe_xta::mailbox::Mailboxes::new(store.clone())
                .with_context(|| format!("connector {}: opening the XTA mailboxes", cfg.id))?;
            Arc::new(
                drehscheibe_xta::mailbox_connector::XtaMailboxConnector::new(
                    mailboxes,
                    drehscheibe_xta::mailbox_connector::XtaMailboxConnectorSettings {
                        account: m.mailbox.clone(),
                        meta: xta_meta(&m.meta),
                    },
                ),
            )
        }
    })
}

/// Client settings for a remote XTA account (certificate files read now).
pub(crate) fn xta_client_settings(
    r: &drehscheibe_config::XtaRemoteAccount,
    timeout: std::time::Duration,
) -> Result<drehscheibe_xta::client::XtaClientSettings> {
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    Ok(drehscheibe_xta::client::XtaClientSettings {
        endpoints: drehscheibe_xta::client::XtaEndpoints::single(r.url.clone()),
        author: drehscheibe_xta::model::PartyIdentifier::new(
            r.account.value.clone(),
            r.account.kind.clone(),
        ),
        client_cert_pem: match &r.client_cert {
            Some(c) => Some((read(&c.cert)?, read(&c.key)?)),
            None => None,
        },
        ca_cert_pem: r.ca_cert.as_deref().map(read).transpose()?,
        bearer_token: r.token.as_ref().map(|t| t.expose().to_owned()),
        timeout,
        max_answer_bytes: 16 << 20,
    })
}

fn xta_meta(m: &drehscheibe_config::XtaMetaConfig) -> drehscheibe_xta::connector::MetaDefaults {
    let party = |p: &Option<drehscheibe_config::XtaParty>| {
        p.as_ref()
            .map(|p| drehscheibe_xta::model::PartyIdentifier::new(p.value.clone(), p.kind.clone()))
    };
    drehscheibe_xta::connector::MetaDefaults {
        author: party(&m.author),
        reader: party(&m.reader),
        sender: None,
        service: m.service.clone(),
        business_scenario: m
            .business_scenario
            .clone()
            .map(drehscheibe_xta::model::BusinessScenario::Undefined),
        message_type: m.message_type.clone(),
        message_type_list_uri: m.message_type_list_uri.clone(),
        message_type_list_version: m.message_type_list_version.clone(),
        payload_schema: m.payload_schema.clone(),
        subject: None,
    }
}

fn fit_connect(
    cfg: &ConnectorConfig,
    f: &drehscheibe_config::FitConnectConnectorConfig,
) -> Result<drehscheibe_fit_connect::connector::FitConnectConnector> {
    use drehscheibe_config::FitConnectDestination;
    use drehscheibe_fit_connect::client::{Area, TokenSettings};
    use drehscheibe_fit_connect::connector::{DestinationSource, FitConnectConnectorSettings};
    let ca_cert_pem = f
        .ca_cert
        .as_deref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let destination = match &f.destination {
        FitConnectDestination::Fixed(id) => DestinationSource::Fixed(id.clone()),
        FitConnectDestination::Routing {
            routing_api_url,
            ars,
            ags,
        } => DestinationSource::Routing {
            routing_api_url: routing_api_url.clone(),
            area: ars
                .clone()
                .map(Area::Ars)
                .or_else(|| ags.clone().map(Area::Ags)),
            cache_ttl: f.cache_ttl,
        },
    };
    drehscheibe_fit_connect::connector::FitConnectConnector::new(FitConnectConnectorSettings {
        token: TokenSettings {
            token_url: f.token_url.clone(),
            client_id: f.client_id.clone(),
            client_secret: f.client_secret.expose().to_owned(),
            scope: None,
        },
        submission_api_url: f.submission_api_url.clone(),
        destination,
        leika: f.leika.clone(),
        service_name: f.service_name.clone(),
        data_schema_uri: f.data_schema_uri.clone(),
        poll_interval: f.poll_interval,
        max_wait: f.max_wait,
        require_accept: f.require_accept,
        attempt_timeout: cfg.timeout,
        http_timeout: cfg.timeout.min(std::time::Duration::from_secs(30)),
        key_cache_ttl: f.cache_ttl,
        max_attachment_bytes: f.max_attachment_bytes,
        ca_cert_pem,
    })
    .with_context(|| format!("connector {}", cfg.id))
}

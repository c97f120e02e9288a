//! Build connectors from tenant configuration. This is the one place that
//! knows every protocol crate: a new protocol adds one arm here.

use std::sync::Arc;

use anyhow::{Context, Result};
use drehscheibe_config::{ConnectorConfig, ConnectorKind, HttpAuth, HttpMethod, SmtpTls};
use drehscheibe_model::Connector;

/// Build the connector for one configured endpoint.
pub fn build(cfg: &ConnectorConfig) -> Result<Arc<dyn Connector>> {
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
    })
}

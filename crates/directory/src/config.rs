//! The `directory` connector's configuration
//! (`[connectors.<id>] type = "directory"`) and its plugin, and the
//! `directory` channel type ([`CHANNEL`]).
//!
//! ```toml
//! [connectors.ablage]
//! type = "directory"
//! path = "/srv/fachverfahren/eingang"
//! metadata = true        # write <name>.meta.json beside each document
//!
//! [channels.eingang]
//! type = "directory"
//! path = "/srv/drehscheibe/eingang"
//! poll_interval = "1s"
//! settle = "500ms"        # unchanged this long before pickup
//! content_type = "application/xml"   # default: from the file name
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::plugin::{
    Adapter, BuildContext, BuildError, ChannelContext, ChannelFactory, ChannelPlugin, Checker,
    ConnectorFactory, ConnectorPlugin,
};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::{DirectoryConnector, DirectoryIntake, DirectoryIntakeSettings, DirectorySettings};

/// The plugin the composition root registers.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "directory",
    summary: "drop the document (and attachments, metadata) into a folder, atomically",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    path: Option<PathBuf>,
    metadata: Option<bool>,
}

/// Checked settings of a `directory` connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConnectorConfig {
    /// Target directory.
    pub path: PathBuf,
    /// Write `<name>.meta.json` beside each document (default true).
    pub metadata: bool,
}

fn parse(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let raw: Raw = chk.deserialize(table)?;
    let Some(path) = &raw.path else {
        chk.error("", "a directory connector needs `path`");
        return None;
    };
    let path = chk.path("path", path);
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(DirectoryConnectorConfig {
        path,
        metadata: raw.metadata.unwrap_or(true),
    }))
}

impl ConnectorFactory for DirectoryConnectorConfig {
    fn build(&self, _cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        Ok(Arc::new(
            DirectoryConnector::new(DirectorySettings {
                path: self.path.clone(),
                metadata: self.metadata,
            })
            .map_err(BuildError::new)?,
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The `directory` channel plugin.
pub const CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "directory",
    summary: "pick up files dropped into a folder",
    parse: parse_channel,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    path: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    settle: Option<Duration>,
    content_type: Option<String>,
}

/// Checked settings of a `directory` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryChannelConfig {
    /// Watched directory.
    pub path: PathBuf,
    /// How often the directory is scanned (default 1 s).
    pub poll_interval: Duration,
    /// A file must be unchanged this long before pickup (default 500 ms).
    pub settle: Duration,
    /// Content type assumed for picked-up files (default: from the file
    /// name).
    pub content_type: Option<String>,
}

fn parse_channel(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawChannel = chk.deserialize(table)?;
    let Some(path) = &raw.path else {
        chk.error("", "a directory channel needs `path`");
        return None;
    };
    let path = chk.path("path", path);
    let poll_interval = raw.poll_interval.unwrap_or(Duration::from_secs(1));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    if let Some(ct) = &raw.content_type {
        if !ct.contains('/') || ct.chars().any(char::is_whitespace) {
            chk.error(
                "content_type",
                format!("`{ct}` is not a media type like `application/xml`"),
            );
        }
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(DirectoryChannelConfig {
        path,
        poll_interval,
        settle: raw.settle.unwrap_or(Duration::from_millis(500)),
        content_type: raw.content_type,
    }))
}

impl ChannelFactory for DirectoryChannelConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let intake = DirectoryIntake::new(DirectoryIntakeSettings {
            channel: cx.id.to_owned(),
            path: self.path.clone(),
            poll_interval: self.poll_interval,
            settle: self.settle,
            content_type: self.content_type.clone(),
        })
        .map_err(BuildError::new)?;
        Ok(Adapter {
            routes: None,
            tasks: vec![Box::new(intake)],
            status: None,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

//! The `directory` connector's configuration
//! (`[connectors.<id>] type = "directory"`) and its plugin.
//!
//! ```toml
//! [connectors.ablage]
//! type = "directory"
//! path = "/srv/fachverfahren/eingang"
//! metadata = true        # write <name>.meta.json beside each document
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use drehscheibe_config::plugin::{
    BuildContext, BuildError, Checker, ConnectorFactory, ConnectorPlugin,
};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::{DirectoryConnector, DirectorySettings};

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

//! Helpers shared by the integration tests: build rule depots in tempdirs.
#![allow(dead_code, clippy::unwrap_used, clippy::too_many_arguments)]

use std::path::{Path, PathBuf};

/// The XGewerbeanzeige 2.1 sample (see fixtures/SOURCE.md).
pub const XGWA21: &[u8] = include_bytes!("../fixtures/xgwa2.1-valid.xml");

/// Namespace of XGewerbeanzeige 2.1.
pub const XGA21_NS: &str = "http://www.xgewerbeanzeige.de/spezifikation/2.1";

/// Writes `<root>/<id>/<version>/rule.toml` and returns the package folder.
pub fn write_rule(root: &Path, id: &str, version: &str, manifest: &str) -> PathBuf {
    let dir = root.join(id).join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rule.toml"), manifest).unwrap();
    dir
}

/// A complete manifest; `extra` is appended verbatim (more tables).
pub fn manifest(
    id: &str,
    version: &str,
    priority: i32,
    channels: &str,
    condition: &str,
    kommune: &str,
    leistung: &str,
    outputs: &str,
) -> String {
    format!(
        r#"id = "{id}"
version = "{version}"
title = "Test rule {id}"
priority = {priority}

[match]
channels = {channels}
content_types = ["application/xml", "application/json"]
condition = "{condition}"

[extract]
kommune = "{kommune}"
leistung = "{leistung}"

{outputs}
"#
    )
}

/// One pass-through output.
pub const PASS_THROUGH: &str = r#"[[outputs]]
target = "fachverfahren"
content_type = "application/xml"
filename = "in-{id}-{kommune}.xml"
"#;

/// A simple rule keyed on the root element's local name.
pub fn simple_rule(
    root: &Path,
    id: &str,
    version: &str,
    priority: i32,
    root_name: &str,
) -> PathBuf {
    write_rule(
        root,
        id,
        version,
        &manifest(
            id,
            version,
            priority,
            r#"["*"]"#,
            &format!("local-name(/*) = '{root_name}'"),
            "string(/*/@ags)",
            "'99000000000000'",
            PASS_THROUGH,
        ),
    )
}

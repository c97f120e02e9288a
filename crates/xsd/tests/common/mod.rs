//! Helpers shared by the integration tests (real libxml2, no mocks).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drehscheibe_xsd::{Catalog, SchemaError, SchemaViolation, XsdFactory};

/// `root` (namespace `urn:t`) holds any number of `item`s of type
/// `xs:int` and an optional attribute `n` of type `xs:int`.
pub const ITEMS_XSD: &str = r#"<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="urn:t" xmlns="urn:t" elementFormDefault="qualified">
  <xs:element name="root">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="item" type="xs:int" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="n" type="xs:int"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"#;

/// Writes `contents` to `dir/name` (creating parent folders).
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(&path, contents).expect("write file");
    path
}

/// A factory without catalog entries.
pub fn factory() -> XsdFactory {
    XsdFactory::new(Arc::new(Catalog::empty()))
}

/// The violation of an `Invalid` result (panics otherwise).
pub fn violation(result: Result<(), SchemaError>) -> SchemaViolation {
    match result {
        Err(SchemaError::Invalid(v)) => v,
        other => panic!("expected SchemaError::Invalid, got {other:?}"),
    }
}

/// The message of a `Schema` error (panics otherwise).
pub fn schema_message<T: std::fmt::Debug>(result: Result<T, SchemaError>) -> String {
    match result {
        Err(SchemaError::Schema { message, .. }) => message,
        other => panic!("expected SchemaError::Schema, got {other:?}"),
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

//! Validation of FIT-Connect submission metadata against the schema named
//! by its `$schema` (shipped under `schemas/fit-connect/`, embedded at
//! compile time). Metadata without `$schema` is checked against 1.0.0, as
//! the public clients do. Format assertions (`uri`, `uuid`, `date`, …) are
//! enforced.

use serde_json::Value;

use crate::api::METADATA_SCHEMA_BASE;

/// Errors of metadata validation.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// `$schema` names a version the hub does not ship.
    #[error("unsupported metadata schema {0:?}")]
    UnsupportedSchema(String),
    /// The metadata violates its schema; the messages name the locations.
    #[error("metadata violates {schema}: {}", .errors.join("; "))]
    Violation {
        /// The schema URI used.
        schema: String,
        /// One message per violation (at most 20).
        errors: Vec<String>,
    },
    /// A shipped schema failed to compile (a build defect).
    #[error("metadata schema {0} cannot be compiled: {1}")]
    Broken(String, String),
}

/// Shipped metadata schemas: (version, schema text).
const SHIPPED: &[(&str, &str)] = &[(
    "1.0.0",
    include_str!("../../../schemas/fit-connect/metadata.schema.v1.0.0.json"),
)];

/// The metadata schema versions the hub validates.
pub fn supported_versions() -> Vec<String> {
    SHIPPED.iter().map(|(v, _)| (*v).to_owned()).collect()
}

/// Schema URI of a metadata version.
pub fn schema_uri(version: &str) -> String {
    format!("{METADATA_SCHEMA_BASE}{version}/metadata.schema.json")
}

/// Compiled metadata schemas, keyed by their `$schema` URI.
pub struct MetadataValidator {
    validators: Vec<(String, jsonschema::Validator)>,
}

impl std::fmt::Debug for MetadataValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataValidator")
            .field(
                "schemas",
                &self.validators.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MetadataValidator {
    /// Compile every shipped schema.
    pub fn new() -> Result<Self, SchemaError> {
        let mut validators = Vec::new();
        for (version, text) in SHIPPED {
            let uri = schema_uri(version);
            let schema: Value = serde_json::from_str(text)
                .map_err(|e| SchemaError::Broken(uri.clone(), e.to_string()))?;
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| SchemaError::Broken(uri.clone(), e.to_string()))?;
            validators.push((uri, validator));
        }
        Ok(Self { validators })
    }

    /// Validate `metadata` against the schema its `$schema` names (1.0.0
    /// when absent). Returns the schema URI used.
    pub fn validate(&self, metadata: &Value) -> Result<String, SchemaError> {
        let uri = match metadata.get("$schema") {
            None => schema_uri("1.0.0"),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(SchemaError::UnsupportedSchema(other.to_string())),
        };
        let (uri, validator) = self
            .validators
            .iter()
            .find(|(u, _)| *u == uri)
            .ok_or(SchemaError::UnsupportedSchema(uri))?;
        let errors: Vec<String> = validator
            .iter_errors(metadata)
            .take(20)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect();
        if errors.is_empty() {
            Ok(uri.clone())
        } else {
            Err(SchemaError::Violation {
                schema: uri.clone(),
                errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "$schema": schema_uri("1.0.0"),
            "contentStructure": {
                "data": {
                    "hash": {"type": "sha512", "content": "a".repeat(128)},
                    "submissionSchema": {"schemaUri": "https://example.org/schema.json", "mimeType": "application/json"}
                },
                "attachments": [{
                    "attachmentId": "0c1d7f0e-2b36-4b79-9f6a-3c8a1f3e9d10",
                    "hash": {"type": "sha512", "content": "b".repeat(128)},
                    "purpose": "attachment",
                    "mimeType": "application/pdf"
                }]
            },
            "publicServiceType": {"identifier": "urn:de:fim:leika:leistung:99108008252000"},
            "additionalReferenceInfo": {"submissionDate": "2026-11-30 10:00:00"}
        })
    }

    #[test]
    fn valid_metadata_passes_and_extra_members_are_allowed() {
        let v = MetadataValidator::new().unwrap();
        assert_eq!(v.validate(&valid()).unwrap(), schema_uri("1.0.0"));
        let mut no_schema = valid();
        no_schema.as_object_mut().unwrap().remove("$schema");
        assert!(v.validate(&no_schema).is_ok());
        assert_eq!(supported_versions(), vec!["1.0.0"]);
    }

    #[test]
    fn violations_are_reported_with_locations() {
        let v = MetadataValidator::new().unwrap();
        // the fitconnect-client 0.1.3 defect: data without hash
        let mut m = valid();
        m["contentStructure"]["data"]
            .as_object_mut()
            .unwrap()
            .remove("hash");
        let err = v.validate(&m).unwrap_err().to_string();
        assert!(
            err.contains("/contentStructure/data") && err.contains("hash"),
            "{err}"
        );
        let mut m = valid();
        m["contentStructure"]["attachments"][0]["hash"]["content"] = json!("XYZ");
        assert!(matches!(v.validate(&m), Err(SchemaError::Violation { .. })));
        let mut m = valid();
        m["contentStructure"]["attachments"][0]["attachmentId"] =
            json!("not a uuid at all, no no no");
        assert!(v.validate(&m).is_err(), "format uuid is asserted");
        assert!(v.validate(&json!({})).is_err());
        let mut m = valid();
        m["$schema"] =
            json!("https://schema.fitko.de/fit-connect/metadata/9.9.9/metadata.schema.json");
        assert!(matches!(
            v.validate(&m),
            Err(SchemaError::UnsupportedSchema(_))
        ));
    }
}

//! JSON shapes of the FIT-Connect Submission API v1 and of the submission
//! metadata (schema 1.x), as far as the hub reads or writes them.
//!
//! Field names follow the public API (camelCase). Unknown members are
//! ignored when reading, so newer clients do not break the hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Prefix of the FIT-Connect Submission API problem types.
pub const PROBLEM_BASE: &str = "https://schema.fitko.de/fit-connect/submission-api/problems/";
/// Prefix of the metadata schema URIs.
pub const METADATA_SCHEMA_BASE: &str = "https://schema.fitko.de/fit-connect/metadata/";

/// The OAuth token answer (`POST /token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Space-separated scopes granted (`send:destination:<id>` …).
    #[serde(default)]
    pub scope: String,
}

/// A Verwaltungsleistung as named in a submission (`serviceType`, v2
/// `publicService`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceType {
    /// Name (clients often send an empty string).
    #[serde(default)]
    pub name: String,
    /// LeiKa URN (`urn:de:fim:leika:leistung:<14 digits>`) or another URN.
    pub identifier: String,
}

/// `POST /v1/submissions` body: announce a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubmission {
    /// Target destination.
    pub destination_id: Uuid,
    /// Attachment ids chosen by the sender (UUIDv4, unique).
    #[serde(default)]
    pub announced_attachments: Vec<Uuid>,
    /// The Leistung (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
    /// The Leistung (v2 name, accepted as an alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_service: Option<ServiceType>,
}

/// Answer of `POST /v1/submissions` (201) and `PUT /v1/submissions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionCreated {
    /// Target destination.
    pub destination_id: Uuid,
    /// The new submission.
    pub submission_id: Uuid,
    /// The case (handle of the event log).
    pub case_id: Uuid,
}

/// `PUT /v1/submissions/{id}` body: submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitSubmission {
    /// JWE compact serialization of the metadata.
    pub encrypted_metadata: String,
    /// JWE compact serialization of the Fachdaten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_data: Option<String>,
}

/// `GET /v1/submissions/{id}` answer of the hub's intake: where the
/// submission stands (the hub never hands out the encrypted content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionStatusView {
    /// Target destination.
    pub destination_id: Uuid,
    /// The submission.
    pub submission_id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// `announced`, `submitted`, `accepted` or `rejected`.
    pub status: String,
    /// The Leistung named at announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
    /// Announced attachment ids.
    #[serde(default)]
    pub announced_attachments: Vec<Uuid>,
    /// Attachment ids uploaded so far.
    #[serde(default)]
    pub uploaded_attachments: Vec<Uuid>,
    /// Why the submission was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `GET /v1/cases/{caseId}/events` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLog {
    /// Security Event Tokens (JWS compact), oldest first.
    pub event_log: Vec<String>,
    /// Offset of the first entry.
    #[serde(default)]
    pub offset: u64,
    /// Entries in this page.
    #[serde(default)]
    pub count: u64,
    /// Entries in the whole log.
    #[serde(default)]
    pub total_count: u64,
}

/// A service a destination offers (`GET /v1/destinations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationService {
    /// LeiKa URN.
    pub identifier: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Accepted Fachdaten schemas (empty: any).
    #[serde(default)]
    pub submission_schemas: Vec<Value>,
    /// Regions (empty: not restricted).
    #[serde(default)]
    pub regions: Vec<String>,
}

/// Public view of a destination (`GET /v1/destinations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationView {
    /// The destination.
    pub destination_id: Uuid,
    /// `active`.
    pub status: String,
    /// Offered services.
    #[serde(default)]
    pub services: Vec<DestinationService>,
    /// Key id of the current encryption key.
    pub encryption_kid: String,
    /// Supported metadata schema versions.
    #[serde(default)]
    pub metadata_versions: Vec<String>,
    /// Reply channels (none offered by the hub).
    #[serde(default)]
    pub reply_channels: Value,
}

/// A JWK set (`/.well-known/jwks.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<crate::jose::RsaPublicJwk>,
}

/// SHA-512 hash in metadata (`{"type": "sha512", "content": hex}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hash {
    /// `sha512`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lower-case hex.
    pub content: String,
}

/// `contentStructure.data.submissionSchema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionSchema {
    /// URI of the Fachdaten schema.
    pub schema_uri: String,
    /// `application/json` or `application/xml`.
    pub mime_type: String,
}

/// `contentStructure.data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataStructure {
    /// Hash of the plaintext Fachdaten.
    pub hash: Hash,
    /// Schema of the Fachdaten.
    pub submission_schema: SubmissionSchema,
}

/// One entry of `contentStructure.attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentMetadata {
    /// The attachment id (as announced).
    pub attachment_id: String,
    /// Hash of the plaintext attachment.
    pub hash: Hash,
    /// `form`, `attachment`, `report` (later versions: `data`).
    pub purpose: String,
    /// Media type.
    pub mime_type: String,
    /// Original file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `contentStructure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentStructure {
    /// The Fachdaten description, if the submission has Fachdaten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataStructure>,
    /// The attachments.
    #[serde(default)]
    pub attachments: Vec<AttachmentMetadata>,
}

/// `publicServiceType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicServiceType {
    /// LeiKa URN.
    pub identifier: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Submission metadata (schema 1.x). Read after schema validation; other
/// members are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Schema URI (`…/metadata/1.0.0/metadata.schema.json`).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Structure of Fachdaten and attachments.
    pub content_structure: ContentStructure,
    /// The Leistung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_service_type: Option<PublicServiceType>,
    /// Everything else (payment, authentication, reply channel, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pypi_client_shapes() {
        let create: CreateSubmission = serde_json::from_str(
            r#"{"destinationId":"6f1e4f2b-2f7b-4a52-9d0e-4d2b9f6a1c11","announcedAttachments":["0c1d7f0e-2b36-4b79-9f6a-3c8a1f3e9d10"],"serviceType":{"name":"","identifier":"urn:de:fim:leika:leistung:99108008252000"}}"#,
        )
        .unwrap();
        assert_eq!(create.announced_attachments.len(), 1);
        assert_eq!(
            create.service_type.unwrap().identifier,
            "urn:de:fim:leika:leistung:99108008252000"
        );
        let meta: Metadata = serde_json::from_str(
            r#"{"$schema":"https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json","contentStructure":{"attachments":[{"attachmentId":"0c1d7f0e-2b36-4b79-9f6a-3c8a1f3e9d10","hash":{"type":"sha512","content":"ab"},"mimeType":"application/pdf","purpose":"attachment"}],"data":{"hash":{"type":"sha512","content":"cd"},"submissionSchema":{"schemaUri":"urn:x","mimeType":"application/json"}}},"additionalReferenceInfo":{"submissionDate":"2026"}}"#,
        )
        .unwrap();
        assert_eq!(
            meta.content_structure.attachments[0].mime_type,
            "application/pdf"
        );
        assert!(meta.extra.contains_key("additionalReferenceInfo"));
        let submit: SubmitSubmission =
            serde_json::from_str(r#"{"encryptedMetadata":"a.b.c.d.e","encryptedData":null}"#)
                .unwrap();
        assert!(submit.encrypted_data.is_none());
    }
}

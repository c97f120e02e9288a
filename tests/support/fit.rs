//! A FIT-Connect sender in Rust and the hub configuration it talks to:
//! the `fit` channel hosting two destinations and the tenant `alpha`
//! routing its Leistung through the `testjson` rule (tests of the intake
//! with one instance and with several).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use drehscheibe_fit_connect::jose::RsaPublicJwk;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use uuid::Uuid;

use crate::repo_root;

pub const DEST: &str = "6f1e4f2b-2f7b-4a52-9d0e-4d2b9f6a1c11";
pub const FOREIGN_DEST: &str = "0b6c1a52-3a5e-4b61-8f3e-7d3c2e9a4f20";
pub const LEIKA: &str = "urn:de:fim:leika:leistung:99108008252000";

/// A key of the fit-connect crate's test fixtures.
pub fn key_file(name: &str) -> PathBuf {
    repo_root()
        .join("crates/fit-connect/tests/fixtures/keys")
        .join(name)
}

/// The `fit` channel, public at `port`.
pub fn channel_toml(port: u16) -> String {
    format!(
        r#"
[channels.fit]
type = "fit-connect"
public_base_url = "http://127.0.0.1:{port}/fit-connect"
base_path = "/fit-connect"
token_ttl = "5m"
signing_key = "{signing}"
signing_kid = "hub-set-1"
poll_interval = "50ms"

[[channels.fit.clients]]
client_id = "antragsportal"
client_secret = {{ value = "portal-secret" }}
destinations = ["{DEST}"]

[[channels.fit.clients]]
client_id = "nachbarportal"
client_secret = {{ value = "other-secret" }}
destinations = ["{FOREIGN_DEST}"]

[[channels.fit.hosted_destinations]]
destination_id = "{DEST}"
tenant = "alpha"
decryption_keys = ["{a}", "{b}"]
services = [{{ identifier = "{LEIKA}", name = "Gewerbeanmeldung" }}]

[[channels.fit.hosted_destinations]]
destination_id = "{FOREIGN_DEST}"
decryption_keys = ["{b}"]
"#,
        signing = key_file("signing.pem").display(),
        a = key_file("dest-a.pem").display(),
        b = key_file("dest-b.pem").display(),
    )
}

/// Tenant `alpha`: the Leistung via `testjson@^1` to the Fachverfahren at `url`.
pub fn tenant(url: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha"
ags = "09162000"

[connectors.fv]
type = "http"
url = "{url}"

[[routes]]
leistung = "99108008252000"
rule = "testjson@^1"
targets = {{ fachverfahren = "fv" }}
"#
    )
}

/// A sender at `base` (the channel's public URL).
pub struct Sender {
    pub http: reqwest::Client,
    pub base: String,
}

impl Sender {
    pub async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn bearer(&self) -> String {
        let v: Value = self
            .token("antragsportal", "portal-secret")
            .await
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn events(&self, token: &str, case: &str) -> Vec<String> {
        let v: Value = self
            .http
            .get(format!("{}/v1/cases/{case}/events", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["eventLog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn jwks(&self) -> Vec<RsaPublicJwk> {
        let v: Value = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| RsaPublicJwk::from_value(k).unwrap())
            .collect()
    }

    pub async fn announce(
        &self,
        token: &str,
        dest: &str,
        attachments: &[Uuid],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/submissions", self.base))
            .bearer_auth(token)
            .json(&json!({"destinationId": dest, "announcedAttachments": attachments, "serviceType": {"name": "", "identifier": LEIKA}}))
            .send()
            .await
            .unwrap()
    }

    pub async fn submit(&self, token: &str, sid: &str, meta: &str, data: &str) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/v1/submissions/{sid}", self.base))
            .bearer_auth(token)
            .json(&json!({"encryptedMetadata": meta, "encryptedData": data}))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

/// Metadata describing `data` (JSON) and `attachments`.
pub fn metadata(data: &[u8], attachments: &[(Uuid, &[u8])]) -> Vec<u8> {
    json!({
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(data))},
                "submissionSchema": {"schemaUri": "https://example.org/antrag.schema.json", "mimeType": "application/json"}
            },
            "attachments": attachments.iter().map(|(id, b)| json!({
                "attachmentId": id, "purpose": "attachment", "mimeType": "application/pdf",
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(b))}
            })).collect::<Vec<_>>()
        }
    })
    .to_string()
    .into_bytes()
}

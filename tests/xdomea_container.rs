//! xdomea transfer containers for the DMS (issue 12): the shipped
//! `gewerbeanmeldung@3.0.0` renders its `dms` output as
//! `<ProzessID>_FVDaten.SGOAblegen.0605.zip` holding the xdomea message, the
//! original XGewerbeanzeige message and the application's attachments,
//! each named by a `Primaerdokument/Dateiname` of the message; the message
//! is valid against the shipped xdomea 3.1.0 schema set. A directory drop
//! writes the container atomically; HTTP sends it as one body.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_rules::{SchemaFactory, SchemaValidator};
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{multipart_body, repo_root, start, Api, Runtime, TestConfig, SENDER};
use drehscheibe_xsd::{Catalog, XsdFactory};

const WAIT: Duration = Duration::from_secs(30);
const PROZESS_ID: &str = "fa451600-bc31-4f5e-af13-82dff1c104ac";
const CONTAINER: &str = "fa451600-bc31-4f5e-af13-82dff1c104ac_FVDaten.SGOAblegen.0605.zip";

fn tenant(dms: &str, fv_url: &str) -> String {
    format!(
        r#"id = "musterstadt"
name = "Stadt Musterstadt"
ags = "12052000"

[connectors.fv]
type = "http"
url = "{fv_url}"

{dms}

[[routes]]
leistung = "99050012104000"
rule = "gewerbeanmeldung@^3"
targets = {{ fachverfahren = "fv", dms = "dms" }}
params = {{ aktenplan_kennzeichen = "32.10", behoerde_kennung = "12052000", behoerde_name = "Stadt Musterstadt", dms_empfaenger = "Zentrale E-Akte" }}
"#
    )
}

fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// The `Primaerdokument/Dateiname` values of an xdomea message.
fn referenced(message: &str) -> Vec<String> {
    message
        .split("<xdomea:Dateiname>")
        .skip(1)
        .filter_map(|s| s.split("</xdomea:Dateiname>").next())
        .map(str::to_owned)
        .collect()
}

fn xdomea_schema() -> Arc<dyn SchemaValidator> {
    let catalog = Catalog::load(repo_root().join("schemas/catalog.xml")).unwrap();
    XsdFactory::new(Arc::new(catalog))
        .load(Path::new("."), "urn:xoev-de:xdomea:schema:3.1.0")
        .unwrap()
}

/// Checks a container against what was submitted; returns its entries.
fn check_container(zip: &[u8], doc: &[u8], pdf: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let list = entries(zip);
    let (first, message) = &list[0];
    assert_eq!(
        first,
        &format!("{PROZESS_ID}_FVDaten.SGOAblegen.0605.xml"),
        "the message comes first, named <ProzessID>_<Nachrichtentyp>.xml"
    );
    xdomea_schema().validate(message).unwrap();
    let message = std::str::from_utf8(message).unwrap();
    let refs = referenced(message);
    let files: BTreeMap<String, Vec<u8>> = list.iter().skip(1).cloned().collect();
    assert_eq!(
        refs.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        files.keys().cloned().collect(),
        "every Dateiname is in the container and nothing else is: {message}"
    );
    let original = files
        .iter()
        .find(|(name, _)| name.ends_with("_antrag.xml"))
        .unwrap();
    assert_eq!(original.1, doc, "the original message, byte for byte");
    let attachment = files
        .iter()
        .find(|(name, _)| name.ends_with("_nachweis.pdf"))
        .unwrap();
    assert_eq!(attachment.1, pdf, "the attachment, byte for byte");
    assert!(message.contains("<xdomea:Betreff>Anlage 1: "), "{message}");
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dms_gets_an_xdomea_container_with_the_application_and_its_attachments() {
    let doc = std::fs::read(repo_root().join("config/demo/01-gewerbeanmeldung.xml")).unwrap();
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..200_000u32).map(|i| (i % 251) as u8));
    let boundary = "container-boundary";
    let body = multipart_body(boundary, &doc, &pdf);
    let ct = format!("multipart/form-data; boundary={boundary}");

    // Directory drop: the container appears whole, under the standard's name.
    let rx = Receiver::start().await;
    let drop_dir = tempfile::tempdir().unwrap();
    let dms = format!(
        "[connectors.dms]\ntype = \"directory\"\npath = \"{}\"\n",
        drop_dir.path().display()
    );
    let (hub, view, _cfg) = submit_to_hub(&dms, &rx, &ct, body.clone()).await;
    assert_eq!(view["rule"]["version"], "3.0.0");
    let dms = view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == "dms")
        .unwrap()
        .clone();
    assert_eq!(dms["content_type"], "application/zip", "{dms}");
    let path = drop_dir.path().join(CONTAINER);
    let zip = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; drop folder: {:?}",
            path.display(),
            std::fs::read_dir(drop_dir.path())
                .unwrap()
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(zip.len() as u64, dms["size"].as_u64().unwrap());
    let files = check_container(&zip, &doc, &pdf);
    assert_eq!(files.len(), 2, "the original and the one attachment");
    // The Fachverfahren import is unchanged: plain XML.
    assert_eq!(rx.accepted("/fv").len(), 1);
    hub.shutdown().await.unwrap();

    // Over HTTP: the container is one request body.
    let rx = Receiver::start().await;
    let dms = format!(
        "[connectors.dms]\ntype = \"http\"\nurl = \"{}\"\n",
        rx.url("/dms")
    );
    let (hub, _, _cfg) = submit_to_hub(&dms, &rx, &ct, body).await;
    let got = rx.accepted("/dms");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("content-type"), "application/zip");
    check_container(&got[0].body, &doc, &pdf);
    hub.shutdown().await.unwrap();
}

/// Starts a hub whose Musterstadt routes Gewerbemeldungen to `@^3` with
/// the `dms` connector `dms` (a TOML table), posts `body` and waits until
/// it is delivered.
async fn submit_to_hub(
    dms: &str,
    rx: &Receiver,
    content_type: &str,
    body: Vec<u8>,
) -> (Runtime, serde_json::Value, TestConfig) {
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        "",
        &repo_root().join("rules"),
        &[("musterstadt", tenant(dms, &rx.url("/fv")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let r = api.post("portal", SENDER, content_type, body, None).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = api.wait_state(&id, "delivered", WAIT).await;
    // The configuration's temporary folder lives as long as the hub.
    (hub, view, cfg)
}

/// A container larger than the hub's document memory budget is not packed:
/// the message goes dead with a reason naming the setting, and nothing is
/// delivered. A replay of a delivered container message renders and packs
/// the same bytes again (names and ids derive from the message id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_stay_within_the_memory_budget_and_replay_to_the_same_bytes() {
    let doc = std::fs::read(repo_root().join("config/demo/01-gewerbeanmeldung.xml")).unwrap();
    let boundary = "budget-boundary";
    let ct = format!("multipart/form-data; boundary={boundary}");
    let rx = Receiver::start().await;
    let dms = format!(
        "[connectors.dms]\ntype = \"http\"\nurl = \"{}\"\n",
        rx.url("/dms")
    );
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        "document_memory = \"2 MiB\"",
        &repo_root().join("rules"),
        &[("musterstadt", tenant(&dms, &rx.url("/fv")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let submit = |pdf: Vec<u8>| {
        let api = api.clone();
        let body = multipart_body(boundary, &doc, &pdf);
        let ct = ct.clone();
        async move {
            let r = api.post("portal", SENDER, &ct, body, None).await;
            assert_eq!(r.status(), 202);
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // 1.5 MiB of attachment: packing needs about twice the container.
    let id = submit(vec![b'x'; 1536 * 1024]).await;
    let view = api.wait_state(&id, "dead", WAIT).await;
    let reason = view["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("output dms: container") && reason.contains("document_memory"),
        "{view:#}"
    );
    assert!(rx.accepted("/dms").is_empty());
    assert!(
        rx.accepted("/fv").is_empty(),
        "nothing of the message is delivered"
    );

    // A small one is delivered; its replay delivers the same container.
    let id = submit(b"%PDF-1.7\n%small\n".to_vec()).await;
    api.wait_state(&id, "delivered", WAIT).await;
    let (status, v) = api
        .post_empty(
            &format!("/api/v1/messages/{id}/replay"),
            drehscheibe_suite::OPERATOR,
        )
        .await;
    assert!((200..300).contains(&status), "{v}");
    let deadline = std::time::Instant::now() + WAIT;
    while rx.accepted("/dms").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.accepted("/dms");
    assert_eq!(
        got[0].body, got[1].body,
        "the same container, byte for byte"
    );
    hub.shutdown().await.unwrap();
}

/// A rule with two container outputs, each within the memory budget but
/// not both reserved one after the other: the memory for all of a plan's
/// containers is taken at once, so two such messages routed side by side
/// are both packed and delivered instead of waiting for each other (or
/// for themselves) forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_that_fit_the_budget_together_are_packed() {
    // The shipped 3.0.0 with a second container output, `archiv`.
    let depot = tempfile::tempdir().unwrap();
    let src = repo_root().join("rules/gewerbeanmeldung/3.0.0");
    let dst = depot.path().join("gewerbeanmeldung/3.0.0");
    std::fs::create_dir_all(&dst).unwrap();
    for f in [
        "dms.xsl",
        "fachverfahren.xsl",
        "gemeinsam.xsl",
        "gewerbe-import.xsd",
    ] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(src.join("rule.toml")).unwrap();
    std::fs::write(
        dst.join("rule.toml"),
        format!(
            "{manifest}\n[[outputs]]\ntarget = \"archiv\"\ntransform = \"dms.xsl\"\ncontainer = \"xdomea\"\ncontent_type = \"application/zip\"\n"
        ),
    )
    .unwrap();

    let rx = Receiver::start().await;
    let dms = format!(
        "[connectors.dms]\ntype = \"http\"\nurl = \"{}\"\n\n[connectors.archiv]\ntype = \"http\"\nurl = \"{}\"\n",
        rx.url("/dms"),
        rx.url("/archiv")
    );
    let tenant = tenant(&dms, &rx.url("/fv"))
        .replace("dms = \"dms\" }", "dms = \"dms\", archiv = \"archiv\" }");
    assert!(tenant.contains("archiv = \"archiv\""));
    // Each container holds 1.2 MiB of attachment: about 2.5 MiB to pack
    // one, 3.7 MiB for both (the parts of one and two zips); 5 MiB in all.
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        "document_memory = \"5 MiB\"",
        depot.path(),
        &[("musterstadt", tenant)],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let doc = std::fs::read(repo_root().join("config/demo/01-gewerbeanmeldung.xml")).unwrap();
    let boundary = "two-containers";
    let ct = format!("multipart/form-data; boundary={boundary}");
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..1_258_000u32).map(|i| (i % 251) as u8));
    let body = multipart_body(boundary, &doc, &pdf);
    let (a, b) = tokio::join!(
        api.post("portal", SENDER, &ct, body.clone(), None),
        api.post("portal", SENDER, &ct, body, None)
    );
    let mut ids = Vec::new();
    for r in [a, b] {
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        let view = api.wait_state(id, "delivered", WAIT).await;
        assert_eq!(view["deliveries"].as_array().unwrap().len(), 3, "{view:#}");
    }
    for path in ["/dms", "/archiv"] {
        let got = rx.accepted(path);
        assert_eq!(got.len(), 2, "{path}");
        for g in &got {
            check_container(&g.body, &doc, &pdf);
        }
    }
    hub.shutdown().await.unwrap();
}

//! The shipped example: `config/` with the rule depot `rules/` and the
//! demo messages `config/demo/`, run on free ports with the demo
//! receivers. Guards the README walkthrough: Gewerbeanmeldung → import XML
//! to the HTTP Fachverfahren and xdomea 0605 into the DMS drop folder,
//! Hundesteuer (JSON) → CSV import file by e-mail, Baumfällgenehmigung of
//! Musterstadt → delegated to Nachbarstadt's drop folder as Umwelt import.
//!
//! The demo messages are also inputs of the shipped rules' own test cases
//! (`rules/<id>/2.0.0/tests/`), with the same parameters as the example
//! configuration, so what the hub delivers must equal those cases'
//! expected files byte for byte.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drehscheibe_cli::demo;
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{repo_root, start, Api};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn copy_config(dst: &Path, receiver: &str, smtp_port: u16) {
    let root = repo_root();
    let data = dst.join("data");
    std::fs::create_dir_all(dst.join("tenants")).unwrap();
    let main = std::fs::read_to_string(root.join("config/drehscheibe.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace(
            "\"../data/inbox\"",
            &format!("\"{}\"", data.join("inbox").display()),
        )
        .replace("\"../data\"", &format!("\"{}\"", data.display()))
        .replace(
            "\"../rules\"",
            &format!("\"{}\"", root.join("rules").display()),
        )
        .replace(
            "\"../schemas/catalog.xml\"",
            &format!("\"{}\"", root.join("schemas/catalog.xml").display()),
        );
    std::fs::write(dst.join("drehscheibe.toml"), main).unwrap();
    for t in ["musterstadt", "nachbarstadt"] {
        let text = std::fs::read_to_string(root.join(format!("config/tenants/{t}.toml")))
            .unwrap()
            .replace("http://127.0.0.1:9101", receiver)
            .replace("port = 2525", &format!("port = {smtp_port}"))
            .replace(
                "\"../data/drop/nachbarstadt-umwelt\"",
                &format!("\"{}\"", data.join("drop/nachbarstadt-umwelt").display()),
            )
            .replace(
                "\"../data/drop/musterstadt-dms\"",
                &format!("\"{}\"", data.join("drop/musterstadt-dms").display()),
            );
        assert!(
            !text.contains("\"../data"),
            "a relative data path of {t}.toml is not redirected into the temporary folder"
        );
        std::fs::write(dst.join(format!("tenants/{t}.toml")), text).unwrap();
    }
}

fn files_in(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let end = Instant::now() + WAIT;
    loop {
        let f = files_in(dir, suffix);
        if !f.is_empty() {
            return f;
        }
        assert!(
            Instant::now() < end,
            "nothing *{suffix} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_configuration_routes_the_demo_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let stop = CancellationToken::new();
    let mail_dir = tmp.path().join("mailsink");
    let smtp = demo::smtp_sink("127.0.0.1:0".parse().unwrap(), &mail_dir, stop.clone())
        .await
        .unwrap();
    copy_config(tmp.path(), &format!("http://{}", rx.addr), smtp.port());
    let hub = start(&tmp.path().join("drehscheibe.toml")).await.unwrap();
    let api = Api::new(hub.addr).with_operator("demo-operator-token");
    let demo_dir = repo_root().join("config/demo");
    let post = |file: &str, ct: &'static str| {
        let api = api.clone();
        let body = std::fs::read(demo_dir.join(file)).unwrap();
        async move {
            let r = api
                .post("portal", "demo-portal-token", ct, body, None)
                .await;
            assert_eq!(r.status(), 202);
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // Gewerbeanmeldung → the import XML to Musterstadt's Gewerbe
    // Fachverfahren over HTTP, the xdomea 0605 message into the DMS folder.
    let id = post("01-gewerbeanmeldung.xml", "application/xml").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(v["envelope"]["tenant"], "musterstadt");
    assert_eq!(v["envelope"]["leistung"], "99050012104000");
    assert_eq!(v["rule"]["id"], "gewerbeanmeldung");
    assert_eq!(v["rule"]["version"], "3.0.0", "the route pins ^3");
    let case = rule_case("gewerbeanmeldung", "v2.1-abmeldung");
    let got = rx.accepted("/musterstadt/gewerbe");
    assert_eq!(got.len(), 1);
    let import = std::str::from_utf8(&got[0].body).unwrap();
    assert!(
        import.contains("<gewerbeImport xmlns=\"urn:drehscheibe:import:gewerbe:1\""),
        "{import}"
    );
    assert!(import.contains("<uuid>fa451600-bc31-4f5e-af13-82dff1c104ac</uuid>"));
    assert!(import.contains("<name>DJ Rei Z</name>"));
    assert_eq!(
        import,
        read_text(&case.join("expected/fachverfahren.xml")),
        "the delivered import XML is the rule test's expected output"
    );
    assert_eq!(got[0].header("content-type"), "application/xml");
    assert_eq!(got[0].header("x-mandant"), "musterstadt");
    assert_eq!(delivery(&v, "fachverfahren")["connector"], "gewerbe-fv");
    assert_eq!(delivery(&v, "dms")["connector"], "musterstadt-dms");
    // The DMS gets an xdomea transfer container: the 0605 message (the
    // rule test's expected output, with this message's file name for the
    // original) and the original message.
    let dms_dir = tmp.path().join("data/drop/musterstadt-dms");
    let filed = wait_files(&dms_dir, "_FVDaten.SGOAblegen.0605.zip").await;
    assert_eq!(filed.len(), 1);
    assert_eq!(
        filed[0].file_name().unwrap().to_string_lossy(),
        "fa451600-bc31-4f5e-af13-82dff1c104ac_FVDaten.SGOAblegen.0605.zip",
        "named <ProzessID>_<Nachrichtentyp>.zip as xdomea requires"
    );
    let zip = std::fs::read(&filed[0]).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut read = |i: usize| {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).unwrap();
        (name, text)
    };
    let (name, xdomea) = read(0);
    assert_eq!(
        name,
        "fa451600-bc31-4f5e-af13-82dff1c104ac_FVDaten.SGOAblegen.0605.xml"
    );
    assert!(xdomea.contains(
        "<xdomea:FVDaten.SGOAblegen.0605 xmlns:xdomea=\"urn:xoev-de:xdomea:schema:3.1.0\">"
    ));
    assert!(
        xdomea.contains("<xdomea:Kennzeichen>32.10</xdomea:Kennzeichen>"),
        "tenant parameter aktenplan_kennzeichen"
    );
    let nil = "00000000-0000-0000-0000-000000000000";
    let original = drehscheibe_rules::container::payload_file(&id, "application/xml");
    assert_eq!(
        xdomea,
        read_text(&case.join("expected/dms.xml")).replace(
            &drehscheibe_rules::container::payload_file(nil, "application/xml"),
            &original
        )
    );
    let (name, text) = read(1);
    assert_eq!(name, original);
    assert_eq!(text, read_text(&demo_dir.join("01-gewerbeanmeldung.xml")));
    assert!(
        dms_dir
            .join("fa451600-bc31-4f5e-af13-82dff1c104ac_FVDaten.SGOAblegen.0605.zip.meta.json")
            .is_file(),
        "the directory connector writes the metadata file next to it"
    );

    // Hundesteuer (JSON) → the CSV import file by e-mail to the Steueramt.
    let id = post("02-hundesteuer.json", "application/json").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(v["rule"]["id"], "hundesteuer");
    assert_eq!(v["rule"]["version"], "2.0.0");
    assert_eq!(v["deliveries"][0]["connector"], "steueramt-mail");
    let mails = wait_files(&mail_dir.join("mail"), ".eml").await;
    let mail = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(mail.contains(&id), "the mail names the message id");
    assert!(mail.contains("steueramt@musterstadt.example"));
    let filename = format!("hundesteuer-12052000-{id}.csv");
    let csv = mail_attachment(&mail, &filename);
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("eingereicht;halter_name;halter_anschrift;halter_ags;hund_nr;anzahl_hunde;hund_name;rasse;geboren;chip;zahlweise\n"),
        "{csv}"
    );
    assert_eq!(
        csv,
        read_text(&rule_case("hundesteuer", "ein-hund").join("expected/fachverfahren.csv"))
    );

    // Baumfällgenehmigung for Musterstadt → handled by Nachbarstadt: the
    // Umwelt import in Nachbarstadt's drop folder names Musterstadt's AGS.
    let id = post("03-baumfaellung.xml", "application/xml").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(
        v["envelope"]["tenant"], "nachbarstadt",
        "delegated by configuration"
    );
    assert_eq!(v["rule"]["version"], "2.1.0");
    assert_eq!(v["deliveries"][0]["connector"], "umwelt-drop");
    let dropped = wait_files(&tmp.path().join("data/drop/nachbarstadt-umwelt"), ".xml").await;
    assert_eq!(
        dropped[0].file_name().unwrap().to_string_lossy(),
        format!("baumfaellung-12052000-{id}.xml")
    );
    let import = read_text(&dropped[0]);
    assert!(
        import.contains("<antragstellendeKommune ags=\"12052000\"/>"),
        "{import}"
    );
    assert!(
        import.contains("mandant=\"UNB-12053000\""),
        "Nachbarstadt's route parameter"
    );
    assert_eq!(
        import,
        read_text(&rule_case("baumfaellung", "demo-linde").join("expected/fachverfahren.xml"))
    );
    assert!(
        v["audit"].to_string().contains("delegated"),
        "{}",
        v["audit"]
    );

    // The musterstadt tenant token lists its own messages, not Nachbarstadt's…
    let (s, own) = api.get("/api/v1/messages", "demo-musterstadt-token").await;
    assert_eq!(s, 200);
    assert_eq!(own["items"].as_array().unwrap().len(), 2, "{own}");
    // …but may read the one it delegated (read-only: no replay).
    let path = format!("/api/v1/messages/{id}");
    let (s, seen) = api.get(&path, "demo-musterstadt-token").await;
    assert_eq!(s, 200, "{seen}");
    assert_eq!(seen["envelope"]["tenant"], "nachbarstadt");
    assert_eq!(seen["requested_by"], "musterstadt");
    let (s, _) = api
        .post_empty(&format!("{path}/replay"), "demo-musterstadt-token")
        .await;
    assert_eq!(s, 403, "a delegating tenant may not replay");

    hub.shutdown().await.unwrap();
    stop.cancel();
}

async fn api_wait(api: &Api, id: &str) -> serde_json::Value {
    api.wait_state(id, "delivered", WAIT).await
}

/// A test case of the rule version the example configuration's routes
/// resolve to.
fn rule_case(rule: &str, case: &str) -> PathBuf {
    let version = match rule {
        "hundesteuer" => "2.0.0",
        "gewerbeanmeldung" => "3.0.0",
        _ => "2.1.0",
    };
    repo_root().join(format!("rules/{rule}/{version}/tests/{case}"))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The delivery of a message view for one rule output.
fn delivery<'a>(view: &'a serde_json::Value, target: &str) -> &'a serde_json::Value {
    view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == target)
        .unwrap_or_else(|| panic!("no delivery for target {target}: {view}"))
}

/// The decoded body of the base64 MIME part whose file name is `filename`
/// (CRLF or LF line ends; the name may be split into RFC 2231
/// `filename*0=…; filename*1=…` sections, as lettre does for long names).
fn mail_attachment(mail: &str, filename: &str) -> Vec<u8> {
    let mail = mail.replace("\r\n", "\n");
    let part = mail
        .split("\n--")
        .find(|part| {
            let headers = part.split("\n\n").next().unwrap_or_default();
            attachment_name(headers).as_deref() == Some(filename)
        })
        .unwrap_or_else(|| panic!("no attachment {filename} in\n{mail}"));
    let (headers, body) = part.split_once("\n\n").unwrap();
    let headers = headers.to_ascii_lowercase();
    assert!(
        headers.contains("content-transfer-encoding: base64"),
        "{headers}"
    );
    assert!(headers.contains("content-type: text/csv"), "{headers}");
    base64_decode(body)
}

/// The `filename` parameter of a part's headers: `filename="…"` or the
/// concatenated `filename*N="…"` sections in order.
fn attachment_name(headers: &str) -> Option<String> {
    let mut sections = Vec::new();
    for param in headers.split([';', '\n']).map(str::trim) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim_matches('"').to_owned();
        if key == "filename" {
            return Some(value);
        }
        if let Some(n) = key.strip_prefix("filename*") {
            sections.push((n.parse::<u32>().ok()?, value));
        }
    }
    sections.sort();
    (!sections.is_empty()).then(|| sections.into_iter().map(|(_, v)| v).collect())
}

/// Standard base64 (RFC 4648), line breaks ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

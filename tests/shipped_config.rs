//! The shipped example: `config/` with the rule depot `rules/` and the
//! demo messages `config/demo/`, run on free ports with the demo
//! receivers. Guards the README walkthrough: Gewerbeanmeldung → HTTP
//! Fachverfahren, Hundesteuer (JSON) → e-mail, Baumfällgenehmigung of
//! Musterstadt → delegated to Nachbarstadt's drop folder.
#![allow(clippy::unwrap_used)]

use std::path::Path;
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
        );
    std::fs::write(dst.join("drehscheibe.toml"), main).unwrap();
    for t in ["musterstadt", "nachbarstadt"] {
        let text = std::fs::read_to_string(root.join(format!("config/tenants/{t}.toml")))
            .unwrap()
            .replace("http://127.0.0.1:9101", receiver)
            .replace("port = 2525", &format!("port = {smtp_port}"))
            .replace(
                "\"../data/drop/nachbarstadt-umwelt\"",
                &format!("\"{}\"", data.join("drop").display()),
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

    // Gewerbeanmeldung → Musterstadt's Gewerbe Fachverfahren over HTTP.
    let gewerbe = std::fs::read(demo_dir.join("01-gewerbeanmeldung.xml")).unwrap();
    let id = post("01-gewerbeanmeldung.xml", "application/xml").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(v["envelope"]["tenant"], "musterstadt");
    assert_eq!(v["envelope"]["leistung"], "99050012104000");
    assert_eq!(v["rule"]["id"], "gewerbeanmeldung");
    let got = rx.accepted("/musterstadt/gewerbe");
    assert_eq!(got[0].body.as_ref(), gewerbe.as_slice());
    assert_eq!(got[0].header("x-mandant"), "musterstadt");

    // Hundesteuer (JSON) → Musterstadt's Steueramt by e-mail.
    let id = post("02-hundesteuer.json", "application/json").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(v["rule"]["id"], "hundesteuer");
    assert_eq!(v["deliveries"][0]["connector"], "steueramt-mail");
    let mails = wait_files(&mail_dir.join("mail"), ".eml").await;
    let mail = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(mail.contains(&id), "the mail names the message id");
    assert!(mail.contains("steueramt@musterstadt.example"));

    // Baumfällgenehmigung for Musterstadt → handled by Nachbarstadt.
    let baum = std::fs::read(demo_dir.join("03-baumfaellung.xml")).unwrap();
    let id = post("03-baumfaellung.xml", "application/xml").await;
    let v = api_wait(&api, &id).await;
    assert_eq!(
        v["envelope"]["tenant"], "nachbarstadt",
        "delegated by configuration"
    );
    assert_eq!(v["deliveries"][0]["connector"], "umwelt-drop");
    let dropped = wait_files(&tmp.path().join("data/drop"), ".xml").await;
    assert_eq!(std::fs::read(&dropped[0]).unwrap(), baum);
    assert!(
        v["audit"].to_string().contains("delegated"),
        "{}",
        v["audit"]
    );

    // The musterstadt tenant token sees its own message, not Nachbarstadt's.
    let (s, own) = api.get("/api/v1/messages", "demo-musterstadt-token").await;
    assert_eq!(s, 200);
    assert_eq!(own["items"].as_array().unwrap().len(), 2, "{own}");

    hub.shutdown().await.unwrap();
    stop.cancel();
}

async fn api_wait(api: &Api, id: &str) -> serde_json::Value {
    api.wait_state(id, "delivered", WAIT).await
}

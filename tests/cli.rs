//! The `drehscheibe` binary: `config check`, and `send` / `messages`
//! against a hub child process.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    alpha_config, drehscheibe_bin, free_port, http_tenant, order, repo_root, Api, HubProcess,
    TestConfig, OPERATOR, SENDER,
};

#[test]
fn config_check_accepts_the_example_and_pinpoints_errors() {
    let out = Command::new(drehscheibe_bin())
        .args(["config", "check"])
        .arg(repo_root().join("config/drehscheibe.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("tenant musterstadt"), "{stdout}");

    // A tenant file with a route to a rule version the depot lacks and a
    // connector of an unknown type: both reported, with file and line.
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                "99050012104000",
                "http://127.0.0.1:1/x",
                "",
            )
            .replace("testorder@^1", "testorder@^7")
                + "\n[connectors.bad]\ntype = \"carrier-pigeon\"\n",
        )],
    );
    let out = Command::new(drehscheibe_bin())
        .args(["config", "check"])
        .arg(&cfg.main)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("alpha.toml"), "{stderr}");
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
    // Secrets never appear in diagnostics.
    assert!(
        !stderr.contains(SENDER) && !stderr.contains(OPERATOR),
        "{stderr}"
    );
}

/// `config types` lists every registered channel and connector type with
/// its summary (the plugin list of `cli/src/connectors.rs`).
#[test]
fn config_types_lists_the_protocol_plugins() {
    let out = drehscheibe(&["config", "types"]);
    for kind in [
        "http",
        "directory",
        "fit-connect",
        "fit-connect-subscriber",
        "xta",
        "xta-poller",
        "smtp",
        "xta-mailbox",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{kind} "))),
            "{kind} missing:\n{out}"
        );
    }
    let connectors = out.split("connector types").nth(1).unwrap();
    assert!(
        connectors.contains("smtp") && !connectors.contains("xta-poller"),
        "{out}"
    );
    assert!(
        out.contains("CheckAccountActive") || out.contains("XTA 2 server"),
        "{out}"
    );
}

/// Run `drehscheibe ARGS`, expect success; returns its standard output.
fn drehscheibe(args: &[&str]) -> String {
    let out = Command::new(drehscheibe_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `drehscheibe send` a file to the hub at `url`; returns the message id.
fn send(url: &str, file: &std::path::Path) -> String {
    let file = file.to_str().unwrap();
    let out = drehscheibe(&["send", "--url", url, "--token", SENDER, file]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// `drehscheibe messages ARGS` with the operator token against the hub at
/// `url`; returns its standard output.
fn messages(url: &str, args: &[&str]) -> String {
    let mut all = vec!["messages", "--url", url, "--token", OPERATOR];
    all.extend_from_slice(args);
    drehscheibe(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_messages_commands_talk_to_a_running_hub() {
    let rx = Receiver::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = alpha_config(&addr.to_string(), &rx.url("/fv"));
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let file = cfg.path("antrag.xml");
    std::fs::write(&file, order("01001000", "99050012104000", 10)).unwrap();
    let url = format!("http://{addr}");
    let id = send(&url, &file);
    Api::new(addr)
        .wait_state(&id, "delivered", Duration::from_secs(20))
        .await;

    let run = |args: &[&str]| messages(&url, args);
    let list = run(&["list"]);
    assert!(list.contains(&id) && list.contains("delivered"), "{list}");
    let show = run(&["show", &id]);
    assert!(
        show.contains("\"audit\"") && show.contains("testorder"),
        "{show}"
    );
    let replay = run(&["replay", &id]);
    assert!(replay.contains(&id), "{replay}");
    rx.wait_accepted("/fv", 2, Duration::from_secs(20)).await;
    assert!(hub.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_list_pages_with_the_after_it_prints() {
    let rx = Receiver::start().await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = alpha_config(&addr.to_string(), &rx.url("/fv"));
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let url = format!("http://{addr}");
    let mut ids = Vec::new();
    for n in 0..3 {
        let file = cfg.path(&format!("antrag-{n}.xml"));
        std::fs::write(&file, order("01001000", "99050012104000", n)).unwrap();
        ids.push(send(&url, &file));
    }
    let first = messages(&url, &["list", "--limit", "2"]);
    assert!(
        first.contains(&ids[0]) && first.contains(&ids[1]),
        "{first}"
    );
    assert!(!first.contains(&ids[2]), "{first}");
    let after = first
        .lines()
        .find_map(|l| l.strip_prefix("(more: --after "))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no continuation in {first}"))
        .to_owned();
    let second = messages(&url, &["list", "--limit", "2", "--after", &after]);
    assert!(second.contains(&ids[2]), "{second}");
    assert!(
        !second.contains(&ids[0]) && !second.contains(&ids[1]),
        "{second}"
    );
    assert!(!second.contains("(more:"), "{second}");
    assert!(hub.terminate());
}

#[test]
fn the_shipped_rule_depot_passes_its_own_tests() {
    let out = Command::new(drehscheibe_bin())
        .args(["rules", "test"])
        .arg(repo_root().join("rules"))
        .arg("--catalog")
        .arg(repo_root().join("schemas/catalog.xml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(
        passed >= 20,
        "the shipped packages carry their cases: {stdout}"
    );
}

#[test]
fn store_migrate_applies_the_postgres_schema_once_and_refuses_sled() {
    let cfg = drehscheibe_suite::TestConfig::write_full(
        "127.0.0.1:0",
        "",
        &drehscheibe_suite::fixture_rules(),
        &[],
        drehscheibe_suite::StoreKind::Postgres,
    );
    let run = || {
        let out = Command::new(drehscheibe_bin())
            .args(["store", "migrate", "--config"])
            .arg(&cfg.main)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, first, err) = run();
    assert!(ok, "{first}{err}");
    let applied: Vec<&str> = first.lines().collect();
    assert_eq!(
        applied,
        drehscheibe_store_postgres::MIGRATIONS
            .iter()
            .map(|(v, _, _)| format!("applied migration {v}"))
            .collect::<Vec<_>>(),
        "{first}"
    );
    let (ok, again, err) = run();
    assert!(ok, "{again}{err}");
    assert_eq!(again.trim(), "store schema is current; nothing to apply");

    let sled = drehscheibe_suite::TestConfig::write_full(
        "127.0.0.1:0",
        "",
        &drehscheibe_suite::fixture_rules(),
        &[],
        drehscheibe_suite::StoreKind::Sled,
    );
    let out = Command::new(drehscheibe_bin())
        .args(["store", "migrate", "--config"])
        .arg(&sled.main)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no schema migrations"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_checks_files_against_a_schema_offline() {
    let root = repo_root();
    let expected = root.join("rules/gewerbeanmeldung/2.1.0/tests/v2.0-anmeldung/expected/dms.xml");
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.xml");
    let text = std::fs::read_to_string(&expected).unwrap();
    // Drop the Kopf's Nachrichtentyp: a required element.
    let start = text.find("<xdomea:Nachrichtentyp ").unwrap();
    let end = text.find("</xdomea:Nachrichtentyp>").unwrap() + "</xdomea:Nachrichtentyp>".len();
    std::fs::write(&broken, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let run = |files: &[&Path], schema: &str| {
        let out = Command::new(drehscheibe_bin())
            .args(["validate", "--schema", schema, "--catalog"])
            .arg(root.join("schemas/catalog.xml"))
            .args(files)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // By catalog URI: valid.
    let (code, stdout, stderr) = run(&[&expected], "urn:xoev-de:xdomea:schema:3.1.0");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.trim_end().ends_with(": valid"), "{stdout}");
    // One invalid file among two: exit 1, its error as FILE:LINE:COLUMN.
    let (code, stdout, stderr) = run(&[&expected, &broken], "urn:xoev-de:xdomea:schema:3.1.0");
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{}:", broken.display())) && l.contains("Element"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let mut parts = line
        .strip_prefix(&format!("{}:", broken.display()))
        .unwrap()
        .splitn(3, ':');
    let (l, c) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(
        l.parse::<u32>().unwrap() > 1 && c.parse::<u32>().is_ok(),
        "{line}"
    );
    assert!(stdout.contains("INVALID"), "{stdout}");
    // By file path, with the package's own schema.
    let (code, stdout, _) = run(
        &[&root
            .join("rules/gewerbeanmeldung/2.1.0/tests/v2.0-anmeldung/expected/fachverfahren.xml")],
        root.join("rules/gewerbeanmeldung/2.1.0/gewerbe-import.xsd")
            .to_str()
            .unwrap(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    // A URI the catalog does not know: exit 2, and no network access.
    let (code, _, stderr) = run(&[&expected], "https://example.invalid/schema.xsd");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not in the XML catalog"), "{stderr}");
}

//! The web console in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver; see tests/support/browser.rs)
//! against a real hub: sign in, fix a route so the next message follows
//! it, replay a dead letter, roll the change back, a dry run, the rule
//! depot and SLA pages; tenants confined to their Kommune (also by typed
//! URLs); POSTs without the CSRF token or from another origin refused;
//! every page checked by axe-core and usable at 1280 and 390 px, with the
//! screenshots the README links.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use drehscheibe_suite::browser::Browser;
use drehscheibe_suite::receiver::{dead_url, Receiver};
use drehscheibe_suite::{
    copy_dir, gewerbe_tenant, http_tenant, order, repo_root, start, zip_package, Api, TestConfig,
    OPERATOR, TENANT_ALPHA,
};
use fantoccini::Locator;

const LEISTUNG: &str = "99050012104000";
const WAIT: Duration = Duration::from_secs(20);

fn fast_retry(max_attempts: u32) -> String {
    format!(
        "retry = {{ max_attempts = {max_attempts}, initial_backoff = \"100ms\", max_backoff = \"1s\", multiplier = 2.0, jitter = 0.0 }}"
    )
}

async fn sign_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/console")).await;
    assert_eq!(
        b.path().await,
        "/console/anmelden",
        "signed out: the sign-in page"
    );
    b.fill("#token", token).await;
    b.click("form[action='/console/anmelden'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/console");
}

async fn h1(b: &Browser) -> String {
    b.client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Check the page: no serious accessibility violation, no sideways
/// scrolling; then a screenshot `name`.
async fn check_page(b: &Browser, name: &str) {
    let violations = b.accessibility_violations().await;
    assert!(violations.is_empty(), "{name}: axe-core: {violations:#?}");
    assert!(
        !b.scrolls_sideways().await,
        "{name}: the page scrolls sideways"
    );
    b.screenshot(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_fixes_a_route_replays_the_dead_letter_and_rolls_back() {
    let rx = Receiver::start().await;
    let dead = dead_url("/nobody").await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            (
                "alpha",
                http_tenant("alpha", "01001000", LEISTUNG, &dead, &fast_retry(1)),
            ),
            (
                "beta",
                http_tenant("beta", "02002000", LEISTUNG, &rx.url("/beta"), ""),
            ),
        ],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let base = api.base.clone();
    let first = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    api.wait_state(&first, "dead", WAIT).await;

    let b = Browser::start(1280, 900).await;
    b.goto(&format!("{base}/console")).await;
    check_page(&b, "anmelden").await;
    sign_in(&b, &base, OPERATOR).await;
    assert_eq!(h1(&b).await, "Übersicht");
    check_page(&b, "uebersicht").await;
    // Keyboard: the first Tab reaches the skip link, Enter moves the focus
    // to the page's content; the next Tabs walk the navigation.
    let active = |b: &Browser| {
        let client = b.client.clone();
        async move {
            client
                .execute(
                    "const a = document.activeElement; return [a.tagName, a.textContent.trim(), a.id];",
                    vec![],
                )
                .await
                .unwrap()
        }
    };
    let body = b.client.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{E004}").await.unwrap();
    assert_eq!(active(&b).await[1], "Zum Inhalt springen");
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    assert_eq!(
        active(&b).await[2],
        "inhalt",
        "Enter on the skip link focuses the content"
    );
    b.goto(&format!("{base}/console")).await;
    let mut reached = Vec::new();
    for _ in 0..6 {
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        reached.push(active(&b).await[1].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        reached[..6],
        [
            "Zum Inhalt springen",
            "Drehscheibe",
            "Übersicht",
            "Nachrichten",
            "Kommunen",
            "Regeldepot"
        ],
        "Tab walks the navigation in order"
    );

    // The dead letter is listed and shown.
    b.goto(&format!("{base}/console/nachrichten?state=dead"))
        .await;
    assert!(b.text().await.contains(&first), "dead letter listed");
    check_page(&b, "nachrichten").await;

    // Fix the route's connector in the Kommune's file.
    b.goto(&format!("{base}/console/kommunen/alpha")).await;
    check_page(&b, "kommune").await;
    let file = cfg.path("tenants/alpha.toml");
    let old_text = std::fs::read_to_string(&file).unwrap();
    let fixed = old_text.replace(&dead, &rx.url("/one"));
    b.set_value("#text", &fixed).await;
    b.fill("#comment", "Fachverfahren wieder erreichbar").await;
    b.click("form[action='/console/kommunen/alpha/speichern'] button:not(.secondary)")
        .await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        fixed,
        "written as typed"
    );
    assert!(
        b.text().await.contains("gespeichert") || b.text().await.contains("Gespeichert"),
        "a notice says so: {}",
        b.text().await
    );

    // The next message follows the route at once.
    let second = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/one", 1, WAIT).await;
    assert_eq!(got[0].header("x-drehscheibe-message-id"), second);

    // Replay the dead letter from its page: it reaches the fixed endpoint.
    b.goto(&format!("{base}/console/nachrichten/{first}")).await;
    check_page(&b, "nachricht").await;
    b.click("form[action$='/erneut'] button[type=submit]").await;
    let got = rx.wait_accepted("/one", 2, WAIT).await;
    assert_eq!(got[1].header("x-drehscheibe-message-id"), first);
    let view = api.wait_state(&first, "delivered", WAIT).await;
    assert!(
        view["audit"].to_string().contains("operator:operator"),
        "the replay is audited with who did it: {view:#}"
    );

    // The history shows the change with author and diff; roll it back.
    let (_, revs) = api.get("/api/v1/config/revisions", OPERATOR).await;
    let rev = revs[0]["id"].as_u64().unwrap();
    assert_eq!(revs[0]["comment"], "Fachverfahren wieder erreichbar");
    b.goto(&format!("{base}/console/verlauf")).await;
    assert!(b.text().await.contains("Fachverfahren wieder erreichbar"));
    check_page(&b, "verlauf").await;
    b.goto(&format!("{base}/console/verlauf/{rev}")).await;
    let text = b.text().await;
    assert!(
        text.contains(&format!("+url = \"{}\"", rx.url("/one"))),
        "{text}"
    );
    check_page(&b, "revision").await;
    b.click("form[action$='/zuruecksetzen'] button[type=submit]")
        .await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        old_text,
        "rolled back"
    );
    let third = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    api.wait_state(&third, "dead", WAIT).await;
    assert_eq!(
        rx.accepted("/one").len(),
        2,
        "the rolled-back route is in force"
    );

    // A POST without the session's CSRF token, or from another origin, is
    // refused even with the session cookie.
    let cookie = b
        .client
        .get_named_cookie("ds-session")
        .await
        .unwrap()
        .value()
        .to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let replay = format!("{base}/console/nachrichten/{third}/erneut");
    let r = http
        .post(&replay)
        .header("cookie", format!("ds-session={cookie}"))
        .header("origin", &base)
        .form(&[("force", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let csrf = b
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let r = http
        .post(&replay)
        .header("cookie", format!("ds-session={cookie}"))
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another origin");
    assert_eq!(
        api.message(&third).await["state"],
        "dead",
        "nothing was replayed"
    );
    // With both, the same request goes through (the refusals above were
    // about the token and the origin, nothing else).
    let r = http
        .post(&replay)
        .header("cookie", format!("ds-session={cookie}"))
        .header("origin", &base)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );

    // Narrow screens: every page readable at 390 px without sideways
    // scrolling.
    b.resize(390, 844).await;
    for (page, name) in [
        ("/console", "uebersicht-390"),
        ("/console/nachrichten", "nachrichten-390"),
        (
            &format!("/console/nachrichten/{first}") as &str,
            "nachricht-390",
        ),
        ("/console/kommunen/alpha", "kommune-390"),
        ("/console/verlauf", "verlauf-390"),
        (&format!("/console/verlauf/{rev}") as &str, "revision-390"),
    ] {
        b.goto(&format!("{base}{page}")).await;
        check_page(&b, name).await;
    }

    // Signing out ends the session.
    b.goto(&format!("{base}/console")).await;
    b.click("form[action='/console/abmelden'] button[type=submit]")
        .await;
    b.goto(&format!("{base}/console/nachrichten")).await;
    assert_eq!(b.path().await, "/console/anmelden");
    check_page(&b, "anmelden-390").await;

    b.close().await;
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_only_its_own_kommune_also_by_typed_urls() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            (
                "alpha",
                http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/a"), ""),
            ),
            (
                "beta",
                http_tenant("beta", "02002000", LEISTUNG, &rx.url("/b"), ""),
            ),
        ],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let base = api.base.clone();
    let own = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let other = api
        .submit("application/xml", order("02002000", LEISTUNG, 10))
        .await;
    api.wait_state(&own, "delivered", WAIT).await;
    api.wait_state(&other, "delivered", WAIT).await;

    let b = Browser::start(1280, 900).await;
    sign_in(&b, &base, TENANT_ALPHA).await;
    let text = b.text().await;
    assert!(
        !text.contains("beta"),
        "Übersicht mentions no other Kommune: {text}"
    );

    b.goto(&format!("{base}/console/nachrichten")).await;
    let text = b.text().await;
    assert!(text.contains(&own) && !text.contains(&other), "{text}");
    // Asking for beta's messages by URL is answered with alpha's scope.
    b.goto(&format!("{base}/console/nachrichten?tenant=beta"))
        .await;
    assert!(!b.text().await.contains(&other));

    b.goto(&format!("{base}/console/kommunen")).await;
    let text = b.text().await;
    assert!(
        text.contains("alpha") && !text.contains("Kommune beta"),
        "{text}"
    );

    // Typed URLs of the other Kommune do not exist for this tenant.
    for url in [
        format!("/console/nachrichten/{other}"),
        "/console/kommunen/beta".to_owned(),
        "/console/kommunen/beta/export".to_owned(),
    ] {
        let r = reqwest::Client::new()
            .get(format!("{base}{url}"))
            .header(
                "cookie",
                format!(
                    "ds-session={}",
                    b.client
                        .get_named_cookie("ds-session")
                        .await
                        .unwrap()
                        .value()
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{url}");
        b.goto(&format!("{base}{url}")).await;
        assert!(
            !b.text().await.contains("02002000"),
            "{url} shows nothing of beta"
        );
    }
    // Its own Kommune is read-only for a tenant: no editor form.
    b.goto(&format!("{base}/console/kommunen/alpha")).await;
    assert!(b
        .client
        .find(Locator::Css("form[action$='/speichern']"))
        .await
        .is_err());
    check_page(&b, "kommune-mandant").await;

    b.close().await;
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_rule_depot_publication_and_service_levels_in_the_browser() {
    let rx = Receiver::start().await;
    let depot = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("rules"), depot.path());
    let tenant = gewerbe_tenant(rx.addr).replace(
        "dms_empfaenger = \"Zentrale E-Akte\" }",
        "dms_empfaenger = \"Zentrale E-Akte\" }\nsla = { within = \"5m\", percent = 95 }",
    );
    assert!(tenant.contains("sla = "));
    let cfg = TestConfig::write_with_depot("127.0.0.1:0", "", depot.path(), &[("alpha", tenant)]);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let base = api.base.clone();
    let sample_path =
        repo_root().join("rules/gewerbeanmeldung/2.1.0/tests/v2.2-anmeldung/input.xml");
    let sample = std::fs::read_to_string(&sample_path).unwrap();
    for _ in 0..3 {
        let id = api
            .submit("application/xml", sample.clone().into_bytes())
            .await;
        api.wait_state(&id, "delivered", WAIT).await;
    }

    let b = Browser::start(1280, 900).await;
    sign_in(&b, &base, OPERATOR).await;

    // Probelauf: the sample pasted, recognised, routed and rendered.
    b.goto(&format!("{base}/console/probelauf")).await;
    b.set_value("#text", &sample).await;
    b.click("form[action='/console/probelauf'] button[type=submit]")
        .await;
    let text = b.text().await;
    assert!(text.contains("Würde zugestellt werden"), "{text}");
    assert!(
        text.contains("gewerbeanmeldung@2.1.0") || text.contains("gewerbeanmeldung 2.1.0"),
        "{text}"
    );
    assert!(text.contains("Nichts wurde gespeichert oder zugestellt."));
    assert!(text.contains("99050012104000") && text.contains("12052000"));
    check_page(&b, "probelauf").await;
    let (_, page) = api.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        3,
        "the dry run stored nothing"
    );
    // Two versions side by side.
    b.set_value("#text", &sample).await;
    b.fill("#version", "2.1.0").await;
    b.fill("#vergleich", "3.0.0").await;
    b.click("form[action='/console/probelauf'] button[type=submit]")
        .await;
    let text = b.text().await;
    assert!(text.contains("gewerbeanmeldung 3.0.0"), "{text}");
    check_page(&b, "probelauf-vergleich").await;

    // Edit the route in its form: pin 2.0.0; the next message is routed
    // by it.
    b.goto(&format!("{base}/console/kommunen/alpha")).await;
    b.click_in_page("details#route-99050012104000 > summary")
        .await;
    b.click_in_page("#route-99050012104000-regel option[value='gewerbeanmeldung@=2.0.0']")
        .await;
    b.fill("#route-99050012104000-kommentar", "auf 2.0.0 festgelegt")
        .await;
    b.click("details#route-99050012104000 button[type=submit]")
        .await;
    assert!(
        b.path().await.contains("gespeichert="),
        "{}",
        b.path().await
    );
    assert!(b.text().await.contains("gewerbeanmeldung@=2.0.0"));
    let pinned = api
        .submit("application/xml", sample.clone().into_bytes())
        .await;
    let view = api.wait_state(&pinned, "delivered", WAIT).await;
    assert_eq!(view["rule"]["version"], "2.0.0", "{view:#}");
    let file = std::fs::read_to_string(cfg.path("tenants/alpha.toml")).unwrap();
    assert!(
        file.contains("rule = \"gewerbeanmeldung@=2.0.0\""),
        "{file}"
    );
    // Back to ^2 the same way.
    b.click_in_page("details#route-99050012104000 > summary")
        .await;
    b.click_in_page("#route-99050012104000-regel option[value='gewerbeanmeldung@^2']")
        .await;
    b.click("details#route-99050012104000 button[type=submit]")
        .await;
    assert!(std::fs::read_to_string(cfg.path("tenants/alpha.toml"))
        .unwrap()
        .contains("rule = \"gewerbeanmeldung@^2\""));

    // Regeldepot: pins and a version diff.
    b.goto(&format!("{base}/console/regeldepot")).await;
    let text = b.text().await;
    assert!(
        text.contains("gewerbeanmeldung@^2"),
        "the pin is shown: {text}"
    );
    check_page(&b, "regeldepot").await;
    b.goto(&format!(
        "{base}/console/regeldepot/gewerbeanmeldung/vergleich?a=2.1.0&b=3.0.0"
    ))
    .await;
    assert!(b.text().await.contains("dms.xsl"));
    check_page(&b, "regelvergleich").await;

    // Publish 2.2.0 as a ZIP through the upload form: its tests pass, the
    // pin ^2 takes it for the next message.
    let src = repo_root().join("rules/gewerbeanmeldung/2.1.0");
    let zip = zip_package(&src, "gewerbeanmeldung-2.2.0", &|rel, text| {
        if rel == "rule.toml" {
            text.replace("version = \"2.1.0\"", "version = \"2.2.0\"")
        } else {
            text
        }
    });
    let upload = depot.path().join("upload.zip");
    std::fs::write(&upload, zip).unwrap();
    b.goto(&format!("{base}/console/regeldepot")).await;
    b.client
        .find(Locator::Css(
            "form[action='/console/regeldepot/veroeffentlichen'] input[type=file]",
        ))
        .await
        .unwrap()
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    b.click("form[action='/console/regeldepot/veroeffentlichen'] button[type=submit]")
        .await;
    let text = b.text().await;
    assert!(text.contains("2.2.0"), "{text}");
    assert!(depot
        .path()
        .join("gewerbeanmeldung/2.2.0/rule.toml")
        .exists());
    let id = api
        .submit("application/xml", sample.clone().into_bytes())
        .await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["rule"]["version"], "2.2.0");

    // SLA: the route's target and what was measured.
    b.goto(&format!("{base}/console/sla")).await;
    let text = b.text().await;
    assert!(
        text.contains("99050012104000") && text.contains("Eingehalten"),
        "{text}"
    );
    check_page(&b, "sla").await;

    b.resize(390, 844).await;
    for (page, name) in [
        ("/console/probelauf", "probelauf-390"),
        ("/console/regeldepot", "regeldepot-390"),
        ("/console/sla", "sla-390"),
        (
            "/console/regeldepot/gewerbeanmeldung/vergleich?a=2.1.0&b=3.0.0",
            "regelvergleich-390",
        ),
    ] {
        b.goto(&format!("{base}{page}")).await;
        check_page(&b, name).await;
    }

    b.close().await;
    hub.shutdown().await.unwrap();
}

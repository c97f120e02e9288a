//! A real headless Chromium for the console's browser tests, driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`, installed by
//! `.ci/run`): [`Browser::start`] runs `chromedriver` on a free loopback
//! port and opens a session; dropping the browser ends both.
//!
//! Screenshots go to `target/screenshots/`, or to the folder named by
//! `DREHSCHEIBE_SCREENSHOTS` (`docs/screenshots` refreshes the ones the
//! README links).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A WebDriver session on a headless Chromium of its own.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// Start chromedriver and a headless Chromium window `width` × `height`
    /// CSS pixels. Panics, naming the package, when either is missing: the
    /// console's tests do not skip.
    pub async fn start(width: u32, height: u32) -> Self {
        let driver_bin = which("chromedriver")
            .expect("chromedriver not found: install Debian's chromium-driver (.ci/run does)");
        let chromium = which("chromium")
            .expect("chromium not found: install Debian's chromium (.ci/run does)");
        let port = crate::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        // The console asks before replays and rollbacks (`confirm()`): the
        // tests answer yes.
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        let url = format!("http://127.0.0.1:{port}");
        let end = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let http = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(http)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session on {url}: {e}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Resize the viewport (CSS pixels) for the narrow-screen checks.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resizing the window");
    }

    /// Open `url` and wait until the document is complete.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
        self.wait_ready().await;
    }

    pub async fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .unwrap_or(Value::Null);
            if state == "complete" {
                return;
            }
            assert!(Instant::now() < end, "page did not finish loading");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("body text")
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("current url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Type `value` into the field `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        e.clear().await.expect("clearing");
        e.send_keys(value).await.expect("typing");
    }

    /// Set a (large) textarea's value directly (typing 2 KB key by key is
    /// slow and gains nothing).
    pub async fn set_value(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        let arg = serde_json::to_value(&e).unwrap();
        self.client
            .execute(
                "arguments[0].value = arguments[1];",
                vec![arg, json!(value)],
            )
            .await
            .expect("setting the value");
    }

    /// Click `css` where no new page follows (open a `<details>`, choose
    /// an `<option>`).
    pub async fn click_in_page(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .expect("clicking");
    }

    /// Click `css` (a submit button or link) and wait until the next page
    /// has replaced this one and finished loading. Right after the click
    /// the old document still says `complete`: a marker set on it tells
    /// the two apart.
    pub async fn click(&self, css: &str) {
        self.client
            .execute("window.__dsOldPage = true; return true;", vec![])
            .await
            .expect("marking the page");
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .expect("clicking");
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self
                .client
                .execute(
                    "return window.__dsOldPage === true ? 'old' : document.readyState",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            if state == "complete" {
                return;
            }
            assert!(
                Instant::now() < end,
                "no new page within 30 s after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Save a PNG of the viewport as `<name>.png` (see the module docs).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("DREHSCHEIBE_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::repo_root().join("target/screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        // The whole page, not only the viewport: the window grows to the
        // document's height (at most 6,000 px) for the picture.
        let (w, h) = self.client.get_window_size().await.expect("window size");
        let full = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(h)
            .clamp(h, 6_000);
        if full > h {
            self.client
                .set_window_size(w as u32, full as u32)
                .await
                .expect("growing the window");
        }
        let png = self.client.screenshot().await.expect("screenshot");
        if full > h {
            self.client
                .set_window_size(w as u32, h as u32)
                .await
                .expect("restoring the window");
        }
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Run axe-core (tests/fixtures/axe) on the page; returns the
    /// violations of impact `serious` or `critical` as `rule: targets`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let dir = crate::repo_root().join("tests/fixtures/axe");
        let source = std::fs::read_to_string(dir.join("axe.min.js")).unwrap();
        let note = std::fs::read_to_string(dir.join("SOURCE.md")).unwrap();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(source.as_bytes()))
        };
        assert!(
            note.contains(&sha),
            "axe.min.js is not the file SOURCE.md names"
        );
        // WebDriver scripts run outside the page's CSP.
        self.client
            .execute(&format!("{source}\nreturn true;"), vec![])
            .await
            .expect("loading axe-core");
        let result = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   axe.run(document, { resultTypes: ['violations'] })
                      .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' ')) }))))
                      .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), targets: [] }]));"#,
                vec![],
            )
            .await
            .expect("running axe-core");
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .map(|v| format!("{} ({}): {}", v["id"], v["help"], v["targets"]))
            .collect()
    }

    /// Whether the page scrolls sideways at its current width (it must
    /// not, except inside table wrappers).
    pub async fn scrolls_sideways(&self) -> bool {
        self.client
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1",
                vec![],
            )
            .await
            .unwrap_or(Value::Bool(true))
            == Value::Bool(true)
    }

    /// End the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

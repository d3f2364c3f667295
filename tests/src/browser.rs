//! A user's browser: real headless Chromium driven over WebDriver (fantoccini),
//! pointed at one server. Elements are named by CSS selectors; the finding
//! methods wait for the element to appear (fantoccini's default patience), so a
//! test reads like what the user does: go to a page, fill a field, click.

use std::path::PathBuf;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;

use crate::fixtures::workspace_root;
use crate::services::ChromeDriver;

/// A headless Chromium session with a fresh profile, for the server at a base URL.
/// Ends with [`Browser::close`]; dropped, ChromeDriver is killed with it.
pub struct Browser {
    client: Client,
    base: String,
    // Dropped after the session: the profile directory, then the driver.
    _profile: tempfile::TempDir,
    _driver: ChromeDriver,
}

impl Browser {
    /// Starts ChromeDriver and a session in headless Chromium for the server at
    /// `base` (`http://127.0.0.1:<port>`).
    pub async fn start(base: &str) -> Browser {
        let driver = tokio::task::spawn_blocking(ChromeDriver::start)
            .await
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut caps = driver.capabilities();
        caps["goog:chromeOptions"]["args"]
            .as_array_mut()
            .unwrap()
            .push(Value::String(format!(
                "--user-data-dir={}",
                profile.path().display()
            )));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .expect("a headless Chromium session");
        Browser {
            client,
            base: base.to_owned(),
            _profile: profile,
            _driver: driver,
        }
    }

    /// The WebDriver session itself, for what this wrapper does not do.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `path` (with its query) on the server.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The path of the page the browser shows.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits (up to 20 s) until the page the browser shows has `part` in its
    /// query string: after a form's submit button is clicked, the elements
    /// found are then those of the page the form led to, not the one it was on.
    pub async fn wait_for_query(&self, part: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.query().is_some_and(|q| q.contains(part)) {
                // The new document, once it has loaded.
                self.find("body").await;
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no page with {part:?} in its query: still on {url}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The element `css` selects, once it is there.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} on {}: {e}", self.base))
    }

    /// Every element `css` selects on the page as it is now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Whether `css` selects an element on the page as it is now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The text of the element `css` selects, once it is there.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Types `text` into the field `css` selects.
    pub async fn fill(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Signs in with `token` on the sign-in page the browser shows, and waits
    /// for the signed-in page it leads to (its sign-out form): a page asked for
    /// before the session's cookie is set would be the sign-in page again.
    pub async fn sign_in(&self, token: &str) {
        self.fill("#token", token).await;
        self.click("#sign-in").await;
        self.find(r#"header form[action="/logout"]"#).await;
    }

    /// Signs out with the header's button and waits for the sign-in page.
    pub async fn sign_out(&self) {
        self.click("header form button").await;
        self.find("#token").await;
    }

    /// Saves a screenshot of the page as `tests/artifacts/<name>`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(artifacts().join(name), png).unwrap();
    }

    /// Ends the session (and its browser), then the driver.
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// `tests/artifacts`, where screenshots go (ignored by git).
fn artifacts() -> PathBuf {
    let dir = workspace_root().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! [`ClientBuilder`]: collects the settings, then builds a [`Client`] or starts
//! crash monitoring.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{self, CrashGuard};
use crate::client::Client;
use crate::config::{Config, RetryPolicy};
use crate::consent::{ConsentPolicy, ConsentPrompt, TerminalPrompt};
use crate::error::{Error, Result};

impl Client {
    /// Starts a [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }
}

/// Builds a [`Client`]: `Client::builder().product(..).version(..).endpoint(..)
/// .data_dir(..)`, then [`install`](ClientBuilder::install) to monitor crashes or
/// [`build`](ClientBuilder::build) to only send and manage reports.
///
/// One setter an option, each alike (set, return `self`): a builder's shape.
#[derive(Clone)]
pub struct ClientBuilder {
    config: Config,
    endpoint_error: Option<String>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// A builder with the defaults: consent [`ConsentPolicy::Ask`] through the
    /// terminal prompt, client-side scrubbing on, at most 10 pending reports of at
    /// most 30 days.
    pub fn new() -> Self {
        ClientBuilder {
            config: Config {
                product: String::new(),
                version: String::new(),
                endpoint: None,
                data_dir: PathBuf::new(),
                consent: ConsentPolicy::Ask,
                consent_text_version: 1,
                annotations: BTreeMap::new(),
                client_scrub: true,
                max_pending: 10,
                max_age: Duration::from_secs(30 * 24 * 3600),
                retry: RetryPolicy::default(),
                timeout: Duration::from_secs(60),
                connect_timeout: Duration::from_secs(10),
                prompt: Arc::new(TerminalPrompt::new()),
            },
            endpoint_error: None,
        }
    }

    /// The product name, sent as `ProductName`. Required.
    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.config.product = product.into();
        self
    }

    /// The product version, sent as `Version`. Required.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.config.version = version.into();
        self
    }

    /// The Mayday server's base URL, e.g. `https://crash.example.org`. Reports go to
    /// `<endpoint>/submit`, deletion requests to `<endpoint>/api/v1/reports/<id>`. A
    /// URL that already ends in `/submit` or `/api/v1/submit` is accepted too.
    /// Without an endpoint, reports are captured and kept pending but never sent.
    pub fn endpoint(mut self, endpoint: impl AsRef<str>) -> Self {
        let mut e = endpoint.as_ref().trim().trim_end_matches('/').to_owned();
        for suffix in ["/api/v1/submit", "/submit"] {
            if let Some(stripped) = e.strip_suffix(suffix) {
                e = stripped.to_owned();
                break;
            }
        }
        if e.starts_with("http://") || e.starts_with("https://") {
            self.config.endpoint = Some(e);
            self.endpoint_error = None;
        } else {
            self.endpoint_error = Some(format!("endpoint {e:?} is not an http(s) URL"));
        }
        self
    }

    /// Where pending reports, receipts and the consent file live. Required; use a
    /// directory of the application's own (e.g. under the XDG data dir).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = dir.into();
        self
    }

    /// The consent policy until the user chooses one (a choice is remembered in
    /// `<data_dir>/consent.json` and wins over this). Default [`ConsentPolicy::Ask`].
    pub fn consent(mut self, policy: ConsentPolicy) -> Self {
        self.config.consent = policy;
        self
    }

    /// The version of the consent text the application shows. A remembered
    /// `Always` made under an older version is not used (the application's default
    /// applies, so the user is asked again under `Ask`); a remembered `Never`
    /// always stands. Default 1.
    pub fn consent_text_version(mut self, version: u32) -> Self {
        self.config.consent_text_version = version;
        self
    }

    /// How the user is asked under [`ConsentPolicy::Ask`]. Default: the terminal
    /// prompt ([`TerminalPrompt`]), which asks only when stdin and stdout are a
    /// terminal. GUI applications pass a closure through [`crate::FnPrompt`].
    pub fn prompt(mut self, prompt: impl ConsentPrompt + 'static) -> Self {
        self.config.prompt = Arc::new(prompt);
        self
    }

    /// An annotation sent with every report (a multipart text part). The user sees
    /// each one before sending.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }

    /// Client-side scrubbing of the dump before it is shown or sent (default on):
    /// environment, command line and other system-detail streams blanked, the user's
    /// name and home directory in paths replaced.
    pub fn client_scrub(mut self, on: bool) -> Self {
        self.config.client_scrub = on;
        self
    }

    /// At most this many reports wait in the pending queue; the oldest go first.
    /// Default 10.
    pub fn max_pending(mut self, count: usize) -> Self {
        self.config.max_pending = count;
        self
    }

    /// Pending reports older than this are deleted. Default 30 days.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.config.max_age = age;
        self
    }

    /// How uploads are retried. Default: 4 attempts, 0.5 s doubling up to 30 s.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.config.retry = retry;
        self
    }

    /// The time limit of one HTTP request (default 60 s) and of connecting
    /// (default 10 s).
    pub fn timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.config.timeout = request;
        self.config.connect_timeout = connect;
        self
    }

    fn validate(self) -> Result<Config> {
        if let Some(e) = self.endpoint_error {
            return Err(Error::Config(e));
        }
        let c = self.config;
        if c.product.trim().is_empty() {
            return Err(Error::Config("product is required".into()));
        }
        if c.version.trim().is_empty() {
            return Err(Error::Config("version is required".into()));
        }
        if c.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("data_dir is required".into()));
        }
        if c.max_pending == 0 {
            return Err(Error::Config("max_pending must be at least 1".into()));
        }
        Ok(c)
    }

    /// A client that sends and manages reports but does not monitor crashes (for a
    /// separate "send reports" step, or a tool).
    pub fn build(self) -> Result<Client> {
        Client::new(self.validate()?)
    }

    /// Starts crash monitoring and returns the guard that keeps it running.
    ///
    /// Call this first thing in `main`, before the application has side effects:
    /// the monitor is this same executable, started again with the same arguments
    /// and an environment variable that makes this call run the monitor and exit
    /// the process instead of returning. So an application ships no extra binary.
    pub fn install(self) -> Result<CrashGuard> {
        let config = self.validate()?;
        capture::install(config)
    }
}

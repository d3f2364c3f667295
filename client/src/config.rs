//! The client's settings: what a [`crate::ClientBuilder`] collects and a
//! [`crate::Client`] runs with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mayday_report::crash_site::CRASH_SITES_PATH;

use crate::consent::{ConsentPolicy, ConsentPrompt};

/// How uploads are retried on network errors and `5xx` answers: exponential backoff
/// with full jitter, `base_delay * 2^attempt` capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per report and per [`crate::Client::send_pending`] call, the first included.
    pub attempts: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Upper bound of one delay, also of a `Retry-After` the client waits for
    /// within a call; a longer `Retry-After` stops sending until that time.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Everything the client was configured with. Built by [`crate::ClientBuilder`].
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) product: String,
    pub(crate) version: String,
    /// The server's base URL, without a trailing slash.
    pub(crate) endpoint: Option<String>,
    pub(crate) data_dir: PathBuf,
    pub(crate) consent: ConsentPolicy,
    pub(crate) consent_text_version: u32,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) client_scrub: bool,
    pub(crate) max_pending: usize,
    pub(crate) max_age: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) prompt: Arc<dyn ConsentPrompt>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("product", &self.product)
            .field("version", &self.version)
            .field("endpoint", &self.endpoint)
            .field("data_dir", &self.data_dir)
            .field("consent", &self.consent)
            .field("client_scrub", &self.client_scrub)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub(crate) fn submit_url(&self) -> Option<String> {
        self.endpoint.as_ref().map(|e| format!("{e}/submit"))
    }

    /// Where crash-site summaries go ([`CRASH_SITES_PATH`]).
    pub(crate) fn crash_sites_url(&self) -> Option<String> {
        self.endpoint
            .as_ref()
            .map(|e| format!("{e}{CRASH_SITES_PATH}"))
    }

    pub(crate) fn report_url(&self, crash_id: &str) -> Option<String> {
        self.endpoint
            .as_ref()
            .map(|e| format!("{e}/api/v1/reports/{crash_id}"))
    }

    /// The server's `/forget` page, filled in from the fragment (which no browser
    /// sends to the server, so the token stays out of its logs).
    pub(crate) fn forget_url(&self, crash_id: &str, deletion_token: &str) -> Option<String> {
        self.endpoint
            .as_ref()
            .filter(|_| !deletion_token.is_empty())
            .map(|e| format!("{e}/forget#{crash_id}.{deletion_token}"))
    }
}

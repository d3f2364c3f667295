//! Server configuration: built-in defaults, then an optional TOML file, then
//! `MAYDAY_*` environment variables.
//!
//! Every setting at key path `section.key` of the file is also the variable
//! `MAYDAY_SECTION__KEY` (a top-level `key` is `MAYDAY_KEY`), its value read as
//! a TOML value, else as text. Those apply over the file; the older named
//! variables ([`NAMED_VARIABLES`], such as `MAYDAY_WORKERS`) apply last.
//! [`settings`] lists every setting with its variable and default, for
//! `serve --help`.
//!
//! With nothing set, the server runs on its embedded defaults: listening on
//! `127.0.0.1:8080`, an SQLite index and a local-filesystem object store under
//! `./mayday-data`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },
    /// An environment variable has a value that does not parse, or names no
    /// setting.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value (`<redacted>` for a secret).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file's settings and the variables', each fine alone, do not go
    /// together.
    #[error("the config file's settings with the MAYDAY_* variables': {reason}")]
    Layers {
        /// What is wrong.
        reason: String,
    },
}

/// What every variable this configuration reads begins with.
const PREFIX: &str = "MAYDAY_";

/// The variables that set one setting each under a name of their own, with the
/// key path they set. They apply after everything else, with the meaning they
/// always had (`MAYDAY_CRASH_SITES` is `crash_sites.enabled`, not the section).
pub const NAMED_VARIABLES: &[(&str, &str)] = &[
    ("MAYDAY_LISTEN", "listen"),
    ("MAYDAY_DATA_DIR", "data_dir"),
    ("MAYDAY_STORE_URL", "store_url"),
    ("MAYDAY_STORE_ENDPOINT", "store_options.endpoint"),
    ("MAYDAY_DATABASE_URL", "database_url"),
    ("MAYDAY_MASTER_KEY", "master_key"),
    ("MAYDAY_RETENTION_DAYS", "retention_days"),
    ("MAYDAY_SECURE_COOKIES", "http.secure_cookies"),
    ("MAYDAY_CRASH_SITES", "crash_sites.enabled"),
    ("MAYDAY_CRASH_SITE_SAMPLES", "crash_sites.samples"),
    ("MAYDAY_PUBLIC_URL", "public_url"),
    ("MAYDAY_SIGNATURE_RULES_DIR", "signatures.rules_dir"),
    ("MAYDAY_WORKERS", "pipeline.workers"),
    ("MAYDAY_RATE_LIMIT_ENABLED", "rate_limit.enabled"),
    ("MAYDAY_RATE_LIMIT_PER_MINUTE", "rate_limit.per_minute"),
    ("MAYDAY_RATE_LIMIT_BURST", "rate_limit.burst"),
    (
        "MAYDAY_RATE_LIMIT_TRUSTED_PROXIES",
        "rate_limit.trusted_proxies",
    ),
    ("MAYDAY_RATE_LIMIT_MAX_SENDERS", "rate_limit.max_senders"),
];

/// The server's variables that are no settings of this configuration.
const OTHER_VARIABLES: &[&str] = &[
    "MAYDAY_CONFIG",
    "MAYDAY_LOG",
    "MAYDAY_LOG_FORMAT",
    "MAYDAY_NEW_MASTER_KEY",
];

/// Settings (and everything under them) whose values are never shown: in
/// [`settings`] they read `(secret)` once set, in errors `<redacted>`.
const SECRET_SETTINGS: &[&str] = &[
    "master_key",
    "database_url",
    "store_options",
    "webhooks",
    "scrub.annotations.hash_salt",
];

fn is_secret(path: &str) -> bool {
    SECRET_SETTINGS.iter().any(|secret| {
        path.strip_prefix(secret)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// The error for variable `name`, its value left out if it sets a secret.
fn env_error(name: &str, path: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::Env {
        name: name.to_owned(),
        value: if is_secret(path) {
            REDACTED.to_owned()
        } else {
            value.to_owned()
        },
        reason,
    }
}

/// The default configuration as a tree of values (secrets redacted).
fn tree(config: &Config) -> serde_json::Value {
    // Every key is a string and every number fits: this cannot fail.
    serde_json::to_value(config).unwrap_or_default()
}

/// The key path the generic variable `name` sets (`MAYDAY_A__B` is `a.b`, and
/// `MAYDAY_K` is `k` when `k` is a top-level key), or `None` when `name` is no
/// such variable: not `MAYDAY_*`, a named or other variable, or a name without
/// `__` that is no top-level key.
fn generic_path(name: &str, defaults: &serde_json::Value) -> Option<Vec<String>> {
    let rest = name.strip_prefix(PREFIX)?;
    if NAMED_VARIABLES.iter().any(|(named, _)| *named == name) || OTHER_VARIABLES.contains(&name) {
        return None;
    }
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if path.len() == 1 && defaults.get(&path[0]).is_none() {
        return None;
    }
    Some(path)
}

/// Whether `path` names a setting of `defaults`, or a key of a setting that is
/// a free-form table (`store_options.region`, `crash_sites.product_samples.X`).
fn names_a_setting(defaults: &serde_json::Value, path: &[String]) -> bool {
    let mut node = defaults;
    for key in path {
        match node {
            serde_json::Value::Object(map) if map.is_empty() => return !key.is_empty(),
            serde_json::Value::Object(map) => match map.get(key) {
                Some(next) => node = next,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// A TOML error message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` read as one TOML value, if it is one.
fn toml_value(text: &str) -> Option<toml::Value> {
    let mut table: toml::Table = toml::from_str(&format!("value = {text}")).ok()?;
    let value = table.remove("value")?;
    table.is_empty().then_some(value)
}

/// Sets `path` in `table` to `value`, making the tables on the way.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, sections)) = path.split_last() else {
        return Ok(());
    };
    let mut table = table;
    for (depth, key) in sections.iter().enumerate() {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{} is not a table", path[..=depth].join("."))),
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// The value generic variable `name` gives setting `path`: its text as a TOML
/// value if that is one the setting takes, else as text; checked on its own.
fn generic_value(
    name: &str,
    path: &[String],
    text: &str,
    defaults: &serde_json::Value,
) -> Result<toml::Value, ConfigError> {
    let dotted = path.join(".");
    if !names_a_setting(defaults, path) {
        return Err(env_error(
            name,
            &dotted,
            text,
            format!(
                "names no setting (there is no {dotted}; `mayday-server serve --help` lists \
                 them all)"
            ),
        ));
    }
    let mut first_error = None;
    let text_value = toml::Value::String(text.to_owned());
    for candidate in toml_value(text).into_iter().chain([text_value]) {
        let mut alone = toml::Table::new();
        set_path(&mut alone, path, candidate.clone())
            .map_err(|reason| env_error(name, &dotted, text, reason))?;
        match toml::Value::Table(alone).try_into::<Config>() {
            Ok(_) => return Ok(candidate),
            Err(error) => {
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    let reason = first_error.unwrap_or_default();
    Err(env_error(
        name,
        &dotted,
        text,
        format!("not a value for {dotted}: {}", one_line(&reason)),
    ))
}

/// The whole server configuration.
///
/// It serializes (for [`settings`], the listing of `serve --help`) with every
/// secret left out: the webhooks' URLs and secrets show as `<redacted>`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`MAYDAY_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for local state: the SQLite index and the default file store
    /// (`MAYDAY_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Object store URL: `file:///abs/path`, `s3://bucket[/prefix]`, `memory://`
    /// (`MAYDAY_STORE_URL`). Default: `file://<data_dir>/store`.
    pub store_url: Option<String>,
    /// Extra object store options, e.g. `endpoint`, `region`, `allow_http` for S3
    /// (`MAYDAY_STORE_ENDPOINT` sets `endpoint`). The usual `AWS_*` environment
    /// variables are read as well.
    #[serde(serialize_with = "serialize_redacted_values")]
    pub store_options: BTreeMap<String, String>,
    /// Index database URL: `sqlite://…` or `postgres://…` (`MAYDAY_DATABASE_URL`).
    /// Default: `sqlite://<data_dir>/index.sqlite`.
    #[serde(serialize_with = "serialize_redacted")]
    pub database_url: Option<String>,
    /// Upload limits.
    pub limits: Limits,
    /// Processing workers.
    pub pipeline: PipelineConfig,
    /// What is scrubbed from dumps, annotations and processed reports before
    /// anything is stored (the `[scrub]` section; everything on by default).
    pub scrub: mayday_report::scrub::ScrubConfig,
    /// The master key wrapping the reports' data keys, 64 hex digits
    /// (`MAYDAY_MASTER_KEY`). Without it, `<data_dir>/master.key` is used, and
    /// generated on first start. Servers sharing an index must share it.
    #[serde(serialize_with = "serialize_redacted")]
    pub master_key: Option<String>,
    /// Reports older than this many days are deleted (`MAYDAY_RETENTION_DAYS`);
    /// 0 keeps them until deleted otherwise.
    pub retention_days: u32,
    /// The symbol caches shared by all processing workers (the `[symbols]` section:
    /// `memory_bytes`, `max_open_files`, `disk_dir`, `disk_bytes`, `negative_ttl`, `max_concurrent_loads`).
    pub symbols: mayday_symbols::CacheConfig,
    /// Limits on symbol uploads (`POST /api/v1/symbols`).
    pub symbol_uploads: SymbolUploadLimits,
    /// Connection timeouts and cap, and the session cookie's `Secure` flag.
    pub http: HttpConfig,
    /// Rate limiting per sender on the upload routes (the `[rate_limit]` section).
    pub rate_limit: RateLimitConfig,
    /// Throttle rules for uploads (`[[throttle]]` tables), first match wins; a
    /// report no rule matches is accepted.
    pub throttle: Vec<ThrottleRule>,
    /// Crash-site summaries: whether the server answers them, and how many
    /// dumps of each issue it wants before it only counts (`[crash_sites]`).
    pub crash_sites: CrashSitesConfig,
    /// The address people reach this server at, for links sent out (the issue
    /// link in a webhook body), e.g. `https://crashes.example.com`
    /// (`MAYDAY_PUBLIC_URL`). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Webhooks told of new issues, regressions and spikes (`[[webhooks]]`
    /// tables); none by default.
    pub webhooks: Vec<WebhookConfig>,
    /// The deployment's own signature rules (the `[signatures]` section).
    pub signatures: SignaturesConfig,
    /// Which Sentry DSNs may send to the Sentry endpoints (`[[sentry.projects]]`).
    pub sentry: SentryConfig,
}

/// Serializes a secret that may be unset: `<redacted>` when set.
fn serialize_redacted<S: serde::Serializer>(
    value: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|_| REDACTED).serialize(s)
}

/// Serializes a map whose values may be secrets: its keys, every value `<redacted>`.
fn serialize_redacted_values<S: serde::Serializer>(
    map: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.keys().map(|key| (key, REDACTED)))
}

/// The deployment's own signature rules, added to the built-in lists
/// (`server/signature/*.txt`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignaturesConfig {
    /// A directory holding any of the five list files, named as the built-in
    /// ones (`irrelevant_signature_re.txt`, `prefix_signature_re.txt`,
    /// `trim_module_signature_re.txt`, `signatures_with_line_numbers_re.txt`,
    /// `signature_sentinels.txt`): each file's entries, one a line with `#`
    /// comments, are added to the built-in list of its name
    /// (`MAYDAY_SIGNATURE_RULES_DIR`; default: none, the built-in lists alone).
    /// Any other file in it, or a bad regular expression, stops the start.
    pub rules_dir: Option<PathBuf>,
}

/// One webhook, a `[[webhooks]]` table: where events are POSTed, the key they
/// are signed with, and which events of which product it wants.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WebhookToml")]
pub struct WebhookConfig {
    /// Where events are POSTed (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Mayday-Signature` header. Never logged.
    pub secret: String,
    /// Only this product's issues (`None`: every product).
    pub product: Option<String>,
    /// The events it wants.
    pub events: Vec<WebhookEvent>,
    /// The spike threshold: a `spike` event when an issue has more reports than
    /// this in the last hour (required with `spike`).
    pub spike_per_hour: Option<u64>,
    /// Delivery attempts before an event is marked failed (default 12: the
    /// last some 17 to 34 minutes after the first).
    pub max_attempts: u32,
}

/// An event a webhook is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A report created a new issue.
    NewIssue,
    /// A report reopened a resolved issue.
    Regression,
    /// An issue had more reports in the last hour than `spike_per_hour`.
    Spike,
}

impl WebhookEvent {
    /// The name in the body, the `X-Mayday-Event` header and the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::NewIssue => "new_issue",
            WebhookEvent::Regression => "regression",
            WebhookEvent::Spike => "spike",
        }
    }

    /// Parses a name [`as_str`](WebhookEvent::as_str) gave.
    pub fn parse(name: &str) -> Option<WebhookEvent> {
        [
            WebhookEvent::NewIssue,
            WebhookEvent::Regression,
            WebhookEvent::Spike,
        ]
        .into_iter()
        .find(|event| event.as_str() == name)
    }
}

impl WebhookConfig {
    /// The webhook's identity in the outbox: the hex SHA-256 of its URL and
    /// product (a URL may carry a secret token, so the outbox does not hold it;
    /// two tables may share a URL for two products, each with its own secret).
    pub fn id(&self) -> String {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(self.url.as_bytes());
        hash.update([0]);
        hash.update(self.product.as_deref().unwrap_or_default().as_bytes());
        hex::encode(hash.finalize())
    }

    /// Whether it wants `event` of an issue of `product`.
    pub fn wants(&self, event: WebhookEvent, product: Option<&str>) -> bool {
        self.events.contains(&event)
            && self
                .product
                .as_deref()
                .is_none_or(|wanted| product == Some(wanted))
    }
}

/// A `[[webhooks]]` table as written, checked into a [`WebhookConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookToml {
    url: String,
    secret: String,
    product: Option<String>,
    events: Option<Vec<WebhookEvent>>,
    spike_per_hour: Option<u64>,
    max_attempts: Option<u32>,
}

impl TryFrom<WebhookToml> for WebhookConfig {
    type Error = String;

    fn try_from(t: WebhookToml) -> Result<WebhookConfig, String> {
        let scheme = url::Url::parse(&t.url)
            .map_err(|e| format!("webhook url: {e}"))?
            .scheme()
            .to_owned();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "webhook url: {scheme}:// is not http:// or https://"
            ));
        }
        if t.secret.is_empty() {
            return Err("webhook secret is empty".to_owned());
        }
        let events = t
            .events
            .unwrap_or_else(|| vec![WebhookEvent::NewIssue, WebhookEvent::Regression]);
        if events.contains(&WebhookEvent::Spike) && t.spike_per_hour.is_none() {
            return Err("webhook events has spike but no spike_per_hour".to_owned());
        }
        Ok(WebhookConfig {
            url: t.url,
            secret: t.secret,
            product: t.product,
            events,
            spike_per_hour: t.spike_per_hour,
            max_attempts: t.max_attempts.unwrap_or(12).max(1),
        })
    }
}

/// Serialized without its secrets: the URL (which may hold a token) and the
/// secret are written `<redacted>`.
impl Serialize for WebhookConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut table = s.serialize_struct("WebhookConfig", 6)?;
        table.serialize_field("url", REDACTED)?;
        table.serialize_field("secret", REDACTED)?;
        table.serialize_field("product", &self.product)?;
        table.serialize_field("events", &self.events)?;
        table.serialize_field("spike_per_hour", &self.spike_per_hour)?;
        table.serialize_field("max_attempts", &self.max_attempts)?;
        table.end()
    }
}

/// What stands for a secret in serialized and debug output.
const REDACTED: &str = "<redacted>";

/// The secret stays out of debug output, and of the URL only its host shows
/// (its path may hold a token).
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("WebhookConfig")
            .field("host", &host)
            .field("secret", &"<redacted>")
            .field("product", &self.product)
            .field("events", &self.events)
            .field("spike_per_hour", &self.spike_per_hour)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// The Sentry endpoints (`/api/{project}/minidump/`, `/api/{project}/envelope/`):
/// which DSNs may send. A Sentry DSN (`https://<key>@<host>/<project>`) names a
/// project and its public key; SDKs send the key as `?sentry_key=` or in the
/// `X-Sentry-Auth` header. With no project listed (the default) any key is
/// accepted, as `/submit` accepts any upload; once one is, only a listed key
/// sent to its own project is (`401` for a missing or unknown key, `403` for a
/// key of another project). The key and project are never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentryConfig {
    /// The projects whose DSNs may send (`[[sentry.projects]]` tables).
    pub projects: Vec<SentryProject>,
}

/// One Sentry project, a `[[sentry.projects]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SentryProject {
    /// The project id of its DSNs (the DSN's path), e.g. `"42"`.
    pub id: String,
    /// Its DSNs' public keys (the DSN's user name).
    pub keys: Vec<String>,
    /// The product its reports are filed under when the event's `release` names
    /// none (`release = "1.2.3"` rather than `"app@1.2.3"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// Why the Sentry project configuration refuses a DSN key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnRefusal {
    /// No key was sent.
    Missing,
    /// No project lists the key.
    Unknown,
    /// The key is another project's.
    OtherProject,
}

impl DsnRefusal {
    /// A stable name for logs, metrics and the answer.
    pub fn name(self) -> &'static str {
        match self {
            DsnRefusal::Missing => "dsn_key_missing",
            DsnRefusal::Unknown => "dsn_key_unknown",
            DsnRefusal::OtherProject => "dsn_key_other_project",
        }
    }
}

impl SentryConfig {
    /// Whether `key` (as the request sent it, if at all) may send to `project`:
    /// the project it is a key of, `None` when no project is configured (any
    /// key is accepted then).
    pub fn check(
        &self,
        project: &str,
        key: Option<&str>,
    ) -> Result<Option<&SentryProject>, DsnRefusal> {
        if self.projects.is_empty() {
            return Ok(None);
        }
        let key = key.filter(|k| !k.is_empty()).ok_or(DsnRefusal::Missing)?;
        let mut known = false;
        for p in &self.projects {
            if p.keys.iter().any(|k| k == key) {
                if p.id == project {
                    return Ok(Some(p));
                }
                known = true;
            }
        }
        Err(if known {
            DsnRefusal::OtherProject
        } else {
            DsnRefusal::Unknown
        })
    }
}

/// Crash-site summaries (`POST /api/v1/crash-sites`): a client asks with a
/// summary whether its dump is wanted; the server wants dumps until an issue has
/// `samples` stored reports, then only counts its crashes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrashSitesConfig {
    /// Whether the route answers at all (`MAYDAY_CRASH_SITES`, default `true`).
    /// Off, it answers `404` as a server without it does, and clients send every
    /// dump.
    pub enabled: bool,
    /// Stored reports wanted of an issue before further crashes of its crash
    /// sites are only counted (`MAYDAY_CRASH_SITE_SAMPLES`, default 10).
    pub samples: u32,
    /// The same, per product (`[crash_sites.product_samples]`, `Name = n`).
    pub product_samples: BTreeMap<String, u32>,
    /// Once an issue's crashes are only counted, every this-many-th of them is
    /// asked for its dump all the same (default 20; 0: never): a new crash that
    /// shares a crash site with a known one is found out.
    pub recheck_every: u32,
}

impl Default for CrashSitesConfig {
    fn default() -> Self {
        CrashSitesConfig {
            enabled: true,
            samples: 10,
            product_samples: BTreeMap::new(),
            recheck_every: 20,
        }
    }
}

impl CrashSitesConfig {
    /// The stored reports wanted of an issue of `product`.
    pub fn samples_for(&self, product: &str) -> u32 {
        self.product_samples
            .get(product)
            .copied()
            .unwrap_or(self.samples)
    }
}

/// Rate limiting per sender: token buckets keyed by a hash of the sender's address
/// under a key that lives only in memory and changes daily. The defaults are far
/// above what a real client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether uploads are rate-limited at all (`MAYDAY_RATE_LIMIT_ENABLED`,
    /// default `true`).
    pub enabled: bool,
    /// Uploads one sender may make per minute, sustained
    /// (`MAYDAY_RATE_LIMIT_PER_MINUTE`, default 60).
    pub per_minute: NonZeroU32,
    /// Uploads one sender may make at once before the sustained rate applies
    /// (`MAYDAY_RATE_LIMIT_BURST`, default 30).
    pub burst: NonZeroU32,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded` /
    /// `X-Forwarded-For` headers are believed; the sender is the right-most hop
    /// that is not one of them (`MAYDAY_RATE_LIMIT_TRUSTED_PROXIES`, comma
    /// separated). Empty by default: the headers are ignored.
    #[serde(
        deserialize_with = "trusted_proxies",
        serialize_with = "serialize_trusted_proxies"
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// Most senders whose buckets are kept at once (`MAYDAY_RATE_LIMIT_MAX_SENDERS`,
    /// default 100 000, about 100 bytes each); past it the idle ones are pruned,
    /// and if that is not enough every bucket is dropped and the key renewed.
    pub max_senders: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_minute: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            trusted_proxies: Vec::new(),
            max_senders: 100_000,
        }
    }
}

/// Reads a comma-separated list of addresses and CIDR networks (`10.0.0.0/8,
/// 127.0.0.1, ::1`); an address alone is a network of one.
pub fn parse_trusted_proxies(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_proxy)
        .collect()
}

fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    IpNet::from_str(text)
        .map(|net| net.trunc())
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR network"))
}

fn serialize_trusted_proxies<S: serde::Serializer>(
    proxies: &[IpNet],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(proxies.iter().map(ToString::to_string))
}

fn trusted_proxies<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_proxy(s).map_err(serde::de::Error::custom))
        .collect()
}

/// One throttle rule, a `[[throttle]]` table: which uploads it matches (every
/// condition given must hold) and what becomes of them.
///
/// ```toml
/// [[throttle]]
/// name = "old_versions"             # answered as Discarded=rule_old_versions
/// product = "crashy"                # the product annotation, exactly
/// version_older_than = "2.0"        # or version = "1.2.3", exactly
/// annotations = { channel = "beta" }  # each named annotation has this value
/// action = "stop_sending"           # accept | reject | sample | stop_sending
/// hours = 24                        # with stop_sending; percent = 10 with sample
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "RawThrottleRule", into = "RawThrottleRule")]
pub struct ThrottleRule {
    /// The rule's name: letters, digits, `_` and `-`.
    pub name: String,
    /// The product the upload names, exactly.
    pub product: Option<String>,
    /// The version the upload names, exactly.
    pub version: Option<String>,
    /// Matches versions older than this one (semver, else dotted numbers); an
    /// upload without a comparable version does not match.
    pub version_older_than: Option<String>,
    /// Annotations that must have exactly these values.
    pub annotations: BTreeMap<String, String>,
    /// What becomes of a matching upload.
    pub action: ThrottleAction,
}

/// What becomes of an upload a throttle rule matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThrottleAction {
    /// Stored as usual.
    Accept,
    /// Not stored; answered `200 Discarded=rule_<name>`, so the sender drops it.
    Reject,
    /// This share of matching uploads (0–100 %) is stored, the others rejected.
    Sample {
        /// Percent stored.
        percent: f64,
    },
    /// Not stored; answered `429` with `StopSendingReportsFor=<hours>` and a
    /// matching `Retry-After`: the sender keeps the report and sends nothing for
    /// that long.
    StopSending {
        /// For how long, in hours (at most a year).
        hours: f64,
    },
}

/// A throttle rule as written in TOML, before its action is checked.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawThrottleRule {
    name: String,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    version_older_than: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    action: ActionName,
    #[serde(default)]
    percent: Option<f64>,
    #[serde(default)]
    hours: Option<f64>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Accept,
    Reject,
    Sample,
    StopSending,
}

impl From<ThrottleRule> for RawThrottleRule {
    fn from(rule: ThrottleRule) -> RawThrottleRule {
        let (action, percent, hours) = match rule.action {
            ThrottleAction::Accept => (ActionName::Accept, None, None),
            ThrottleAction::Reject => (ActionName::Reject, None, None),
            ThrottleAction::Sample { percent } => (ActionName::Sample, Some(percent), None),
            ThrottleAction::StopSending { hours } => (ActionName::StopSending, None, Some(hours)),
        };
        RawThrottleRule {
            name: rule.name,
            product: rule.product,
            version: rule.version,
            version_older_than: rule.version_older_than,
            annotations: rule.annotations,
            action,
            percent,
            hours,
        }
    }
}

impl TryFrom<RawThrottleRule> for ThrottleRule {
    type Error = String;

    fn try_from(raw: RawThrottleRule) -> Result<Self, String> {
        let name = raw.name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "throttle rule name {name:?}: use letters, digits, _ and -"
            ));
        }
        let action = match (raw.action, raw.percent, raw.hours) {
            (ActionName::Accept, None, None) => ThrottleAction::Accept,
            (ActionName::Reject, None, None) => ThrottleAction::Reject,
            (ActionName::Sample, Some(percent), None) if (0.0..=100.0).contains(&percent) => {
                ThrottleAction::Sample { percent }
            }
            (ActionName::StopSending, None, Some(hours))
                if hours > 0.0 && hours <= 24.0 * 366.0 =>
            {
                ThrottleAction::StopSending { hours }
            }
            _ => {
                return Err(format!(
                    "throttle rule {name:?}: sample takes percent (0 to 100), stop_sending \
                     takes hours (more than 0, at most a year), accept and reject take neither"
                ));
            }
        };
        Ok(ThrottleRule {
            name,
            product: raw.product,
            version: raw.version,
            version_older_than: raw.version_older_than,
            annotations: raw.annotations,
            action,
        })
    }
}

/// Limits on symbol uploads. The body is held in memory while it is checked, so
/// `max_wire_bytes` bounds the memory one upload takes before decompression.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolUploadLimits {
    /// Largest request body on the wire, in bytes (default 512 MiB).
    pub max_wire_bytes: u64,
    /// Largest single `.sym` after decompression, in bytes (default 1 GiB).
    pub max_file_bytes: u64,
    /// Largest sum of the `.sym` files of one zip (or one gzip body) after
    /// decompression, in bytes (default 2 GiB).
    pub max_total_bytes: u64,
    /// Most entries in one zip (default 10 000).
    pub max_entries: usize,
}

impl Default for SymbolUploadLimits {
    fn default() -> Self {
        let checks = mayday_symbols::UploadLimits::default();
        SymbolUploadLimits {
            max_wire_bytes: 512 * 1024 * 1024,
            max_file_bytes: checks.max_file_bytes,
            max_total_bytes: checks.max_total_bytes,
            max_entries: checks.max_entries,
        }
    }
}

impl SymbolUploadLimits {
    /// The limits the upload checks of `mayday-symbols` apply after decompression.
    pub fn checks(&self) -> mayday_symbols::UploadLimits {
        mayday_symbols::UploadLimits {
            max_file_bytes: self.max_file_bytes,
            max_total_bytes: self.max_total_bytes,
            max_entries: self.max_entries,
        }
    }
}

/// Limits on uploads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body on the wire, in bytes (default 25 MiB).
    pub max_wire_bytes: u64,
    /// Largest body after decompression, in bytes (default 200 MiB).
    pub max_decompressed_bytes: u64,
    /// Largest total size of all annotations, in bytes (default 64 KiB).
    pub max_annotation_bytes: u64,
    /// Most annotations in one upload: text parts, `extra` JSON entries and
    /// query-string fields together (default 512).
    pub max_annotations: usize,
    /// Most parts in one multipart body, the minidump and dropped attachments
    /// included (default 64).
    pub max_parts: usize,
    /// Longest run of part headers (and, before the first part, of preamble)
    /// read while looking for the end of a part's headers, in bytes (default
    /// 16 KiB): a body without its boundary or a header that never ends is
    /// refused after this much, not buffered.
    pub max_part_header_bytes: u64,
    /// Largest ratio of decompressed to wire bytes, applied once more than 1 MiB
    /// was decompressed (default 100): a small gzip body of zeros is refused long
    /// before the decompressed limit. Real minidumps compress about 3-20:1.
    pub max_compression_ratio: u64,
    /// Uploads up to this size are held in memory while they are received;
    /// larger ones are spooled, encrypted under a key held only in memory, to
    /// `<data_dir>/spool/` (default 8 MiB).
    pub spool_memory_bytes: u64,
    /// All uploads of this process together hold at most this much in memory
    /// while received (default 64 MiB); beyond it they are spooled as above.
    pub spool_memory_total_bytes: u64,
    /// Dumps being scrubbed and sealed take at most this many bytes of memory
    /// together (default 512 MiB): a dump up to `stream_dump_bytes` its size, a
    /// larger one what scrubbing it in windows holds at most (48 MiB); further
    /// uploads wait their turn. A dump larger than this still goes through,
    /// alone.
    pub scrub_memory_bytes: u64,
    /// Dumps up to this size are scrubbed and sealed whole in memory; larger
    /// ones a window at a time, stored as they are scrubbed (default 16 MiB).
    pub stream_dump_bytes: u64,
    /// Below this much free space on the local file store's disk, uploads are
    /// answered `503` with `Retry-After` (default 1 GiB; 0 turns the check off).
    pub min_free_bytes: u64,
}

/// How connections are served: timeouts, the connection cap and the session
/// cookie's `Secure` flag (the `[http]` section).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's headers must arrive within this time of the connection
    /// opening or the previous response (default 10 s).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// An upload body that sends no byte for this long is answered `408`
    /// (default 30 s).
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// A connection with no request under way and no byte read or written for
    /// this long is closed (default 60 s).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections served at once; more wait in the listen backlog until one
    /// closes. 0 (the default) derives it from the open-file limit: half of it,
    /// at most 1024.
    pub max_connections: usize,
    /// Whether the browser session cookie is marked `Secure`, so browsers send it
    /// over HTTPS only (`MAYDAY_SECURE_COOKIES`, `true` or `false`). Unset, it is
    /// on unless `listen` is a loopback address: a server reached from other
    /// machines is served over HTTPS (through a TLS-terminating proxy); one on
    /// loopback is a developer's, or sits behind a proxy on the same machine —
    /// which is served over HTTPS and sets this to `true`.
    pub secure_cookies: Option<bool>,
}

/// Processing workers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Number of concurrent processing workers in this process (0: ingest only;
    /// default: four per core, [`default_workers`]).
    pub workers: usize,
    /// How much the workers of this process may hold of dumps at once (default
    /// 512 MiB): a job holds three times its stored object's size from before
    /// it reads it until it ends, and once the dump is read about 2.3 KB more
    /// for each frame its stacks could unwind into; further jobs wait their
    /// turn. A dump larger than this still goes through, alone.
    pub memory_bytes: u64,
    /// How long a claimed job may run before another worker may claim it again
    /// (covers a worker that died mid-job).
    #[serde(with = "humantime_serde")]
    pub job_lease: Duration,
    /// How often idle workers look for work they were not told about.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Longest time one minidump may take to process before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub process_timeout: Duration,
    /// How many times a job is tried on transient errors before the report fails
    /// (a claim a stopping worker gave back unrun is not a try).
    pub max_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("mayday-data"),
            store_url: None,
            store_options: BTreeMap::new(),
            database_url: None,
            limits: Limits::default(),
            pipeline: PipelineConfig::default(),
            scrub: mayday_report::scrub::ScrubConfig::default(),
            master_key: None,
            retention_days: 90,
            symbols: mayday_symbols::CacheConfig::default(),
            symbol_uploads: SymbolUploadLimits::default(),
            http: HttpConfig::default(),
            rate_limit: RateLimitConfig::default(),
            throttle: Vec::new(),
            crash_sites: CrashSitesConfig::default(),
            public_url: None,
            webhooks: Vec::new(),
            signatures: SignaturesConfig::default(),
            sentry: SentryConfig::default(),
        }
    }
}

/// Secrets stay out of debug output: the master key, S3 credentials in the store
/// options, a password in the database URL and the webhooks' secrets are shown as
/// `<redacted>`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| if set { "<redacted>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("store_url", &self.store_url)
            .field(
                "store_options",
                &self.store_options.keys().collect::<Vec<_>>(),
            )
            .field("database_url", &redacted(self.database_url.is_some()))
            .field("limits", &self.limits)
            .field("pipeline", &self.pipeline)
            .field("scrub", &self.scrub)
            .field("master_key", &redacted(self.master_key.is_some()))
            .field("retention_days", &self.retention_days)
            .field("symbols", &self.symbols)
            .field("symbol_uploads", &self.symbol_uploads)
            .field("http", &self.http)
            .field("rate_limit", &self.rate_limit)
            .field("throttle", &self.throttle)
            .field("crash_sites", &self.crash_sites)
            .field("public_url", &self.public_url)
            .field("webhooks", &self.webhooks)
            .field("signatures", &self.signatures)
            .field("sentry", &self.sentry)
            .finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_wire_bytes: 25 * 1024 * 1024,
            max_decompressed_bytes: 200 * 1024 * 1024,
            max_annotation_bytes: 64 * 1024,
            max_annotations: 512,
            max_parts: 64,
            max_part_header_bytes: 16 * 1024,
            max_compression_ratio: 100,
            spool_memory_bytes: 8 * 1024 * 1024,
            spool_memory_total_bytes: 64 * 1024 * 1024,
            scrub_memory_bytes: 512 * 1024 * 1024,
            stream_dump_bytes: 16 * 1024 * 1024,
            min_free_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 0,
            secure_cookies: None,
        }
    }
}

/// The default number of processing workers: four per core the machine offers
/// this process. A worker loads, walks and finishes one report at a time and
/// spends about half of it waiting (on the index's one writer, on the store);
/// with two per core the cores were 1.6 of 2 busy while a queue drained, with
/// four 1.8, and the drain 10–30% faster (README, "The writer's own thread").
/// What the workers hold of dumps is bounded by [`PipelineConfig::memory_bytes`].
pub fn default_workers() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: default_workers(),
            memory_bytes: 512 * 1024 * 1024,
            job_lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            process_timeout: Duration::from_secs(120),
            max_attempts: 5,
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` if given, then the
    /// process's `MAYDAY_*` variables (see [`Config::load_with`]).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let defaults = tree(&Config::default());
        let mut variables = BTreeMap::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|name| name.starts_with(PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    variables.insert(name.to_owned(), value);
                }
                Err(value) => {
                    let named = NAMED_VARIABLES.iter().find(|(n, _)| *n == name);
                    let path = match (named, generic_path(name, &defaults)) {
                        (Some((_, path)), _) => path.to_string(),
                        (None, Some(path)) => path.join("."),
                        (None, None) => continue,
                    };
                    let value = value.to_string_lossy();
                    return Err(env_error(name, &path, &value, "not UTF-8".to_owned()));
                }
            }
        }
        Config::load_with(file, &variables)
    }

    /// Loads the configuration from defaults, then `file` if given, then the
    /// generic variables among `variables` (`MAYDAY_SECTION__KEY` for key
    /// `key` of `[section]`, deeper sections joined by `__` as well; a
    /// top-level key `key` is `MAYDAY_KEY`), then the [`NAMED_VARIABLES`].
    ///
    /// A generic variable's value is read as a TOML value (`5`, `true`,
    /// `"10s"`, `[{ name = "x", action = "reject" }]`) if the setting takes
    /// that, else as text (`10s`, `/srv/rules`); it replaces the setting's
    /// value in the file, a whole table as well. A `MAYDAY_…__…` variable
    /// that names no setting is an error; other `MAYDAY_*` variables that are
    /// no setting (`MAYDAY_LOG`, `MAYDAY_TOKEN`) are left alone.
    pub fn load_with(
        file: Option<&Path>,
        variables: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => Config::read_table(path)?,
            None => toml::Table::new(),
        };
        let defaults = tree(&Config::default());
        let mut generic: Vec<(Vec<String>, &str, &str)> = variables
            .iter()
            .filter_map(|(name, value)| {
                generic_path(name, &defaults).map(|path| (path, name.as_str(), value.as_str()))
            })
            .collect();
        // A section's variable before its keys' (`MAYDAY_LIMITS`, then
        // `MAYDAY_LIMITS__MAX_PARTS`), so the keys apply over it.
        generic.sort_by_key(|(path, name, _)| (path.len(), *name));
        for (path, name, text) in generic {
            let value = generic_value(name, &path, text, &defaults)?;
            set_path(&mut table, &path, value)
                .map_err(|reason| env_error(name, &path.join("."), text, reason))?;
        }
        let mut config = toml::Value::Table(table)
            .try_into::<Config>()
            .map_err(|error| ConfigError::Layers {
                reason: one_line(&error.to_string()),
            })?;
        config.apply_env(|name| variables.get(name).cloned())?;
        Ok(config)
    }

    /// Reads a TOML file as a table, after checking it holds a configuration
    /// (so that a mistake in it is reported with its line).
    fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parse = |source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        };
        Config::from_toml(&text).map_err(parse)?;
        toml::from_str(&text).map_err(parse)
    }

    /// Reads a TOML file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies `MAYDAY_*` overrides read through `var`.
    pub fn apply_env(
        &mut self,
        var: impl Fn(&'static str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(value) = var("MAYDAY_LISTEN") {
            self.listen = env_value("MAYDAY_LISTEN", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = var("MAYDAY_STORE_URL") {
            self.store_url = Some(value);
        }
        if let Some(value) = var("MAYDAY_STORE_ENDPOINT") {
            self.store_options.insert("endpoint".to_owned(), value);
        }
        if let Some(value) = var("MAYDAY_DATABASE_URL") {
            self.database_url = Some(value);
        }
        if let Some(value) = var("MAYDAY_MASTER_KEY") {
            self.master_key = Some(value);
        }
        if let Some(value) = var("MAYDAY_RETENTION_DAYS") {
            self.retention_days = env_value("MAYDAY_RETENTION_DAYS", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_SECURE_COOKIES") {
            let secure = env_value("MAYDAY_SECURE_COOKIES", value, |v| {
                v.parse::<bool>()
                    .map_err(|e| format!("{e}: write true or false"))
            })?;
            self.http.secure_cookies = Some(secure);
        }
        if let Some(value) = var("MAYDAY_CRASH_SITES") {
            self.crash_sites.enabled = env_value("MAYDAY_CRASH_SITES", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_CRASH_SITE_SAMPLES") {
            self.crash_sites.samples =
                env_value("MAYDAY_CRASH_SITE_SAMPLES", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_PUBLIC_URL") {
            self.public_url = Some(value);
        }
        if let Some(value) = var("MAYDAY_SIGNATURE_RULES_DIR") {
            self.signatures.rules_dir = Some(PathBuf::from(value));
        }
        if let Some(value) = var("MAYDAY_WORKERS") {
            self.pipeline.workers = env_value("MAYDAY_WORKERS", value, |v| v.parse())?;
        }
        let rate = &mut self.rate_limit;
        if let Some(value) = var("MAYDAY_RATE_LIMIT_ENABLED") {
            rate.enabled = env_value("MAYDAY_RATE_LIMIT_ENABLED", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_RATE_LIMIT_PER_MINUTE") {
            rate.per_minute = env_value("MAYDAY_RATE_LIMIT_PER_MINUTE", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_RATE_LIMIT_BURST") {
            rate.burst = env_value("MAYDAY_RATE_LIMIT_BURST", value, |v| v.parse())?;
        }
        if let Some(value) = var("MAYDAY_RATE_LIMIT_TRUSTED_PROXIES") {
            rate.trusted_proxies = env_value(
                "MAYDAY_RATE_LIMIT_TRUSTED_PROXIES",
                value,
                parse_trusted_proxies,
            )?;
        }
        if let Some(value) = var("MAYDAY_RATE_LIMIT_MAX_SENDERS") {
            rate.max_senders = env_value("MAYDAY_RATE_LIMIT_MAX_SENDERS", value, |v| v.parse())?;
        }
        Ok(())
    }

    /// Whether the session cookie is marked `Secure` (see
    /// [`HttpConfig::secure_cookies`]).
    pub fn secure_cookies(&self) -> bool {
        self.http
            .secure_cookies
            .unwrap_or(!self.listen.ip().is_loopback())
    }

    /// The object store URL in effect.
    pub fn store_url(&self) -> String {
        match &self.store_url {
            Some(url) => url.clone(),
            None => format!(
                "file://{}",
                absolute(&self.data_dir.join("store")).display()
            ),
        }
    }

    /// The public base URL in effect, without a trailing `/` (see
    /// [`Config::public_url`]).
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                absolute(&self.data_dir.join("index.sqlite")).display()
            ),
        }
    }
}

/// Parses the value of environment variable `name`, or says why it does not parse.
fn env_value<T, E: std::fmt::Display>(
    name: &'static str,
    value: String,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ConfigError> {
    parse(&value).map_err(|e| ConfigError::Env {
        name: name.to_owned(),
        reason: e.to_string(),
        value,
    })
}

/// One setting, as `serve --help` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Its key path in the TOML file: `section.key`, or `key` at the top.
    pub path: String,
    /// The variable that sets it: `MAYDAY_SECTION__KEY`, or `MAYDAY_KEY`.
    pub variable: String,
    /// Named variables that set it too, or one key of it (with that key's
    /// path): `MAYDAY_WORKERS`, `MAYDAY_STORE_ENDPOINT (store_options.endpoint)`.
    pub aliases: Vec<String>,
    /// Its default as the file writes it (`25`, `"10s"`, `[]`); `(unset)` when
    /// it has none, `(secret)` for a secret that has one.
    pub default: String,
}

/// Every setting of [`Config`], with its variable and default, in key order.
pub fn settings() -> Vec<Setting> {
    describe(&Config::default())
}

/// The settings of `config`, its values as the defaults.
fn describe(config: &Config) -> Vec<Setting> {
    let mut settings = Vec::new();
    walk(&tree(config), &mut Vec::new(), &mut settings);
    settings
}

/// Adds the settings under `node` at `path`: a table with keys is a section,
/// anything else (an empty table too: a free-form map) one setting.
fn walk(node: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Setting>) {
    if let serde_json::Value::Object(map) = node
        && !map.is_empty()
    {
        for (key, value) in map {
            path.push(key.clone());
            walk(value, path, out);
            path.pop();
        }
        return;
    }
    let dotted = path.join(".");
    let variable = format!("{PREFIX}{}", path.join("__").to_ascii_uppercase());
    let aliases = NAMED_VARIABLES
        .iter()
        .filter(|(name, _)| *name != variable)
        .filter_map(|(name, named)| {
            if *named == dotted {
                Some((*name).to_owned())
            } else {
                named
                    .strip_prefix(&dotted)
                    .filter(|rest| rest.starts_with('.'))
                    .map(|_| format!("{name} ({named})"))
            }
        })
        .collect();
    let empty = match node {
        serde_json::Value::String(text) => text.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        serde_json::Value::Object(map) => map.is_empty(),
        _ => false,
    };
    let default = if node.is_null() {
        "(unset)".to_owned()
    } else if is_secret(&dotted) && !empty {
        "(secret)".to_owned()
    } else {
        toml::Value::try_from(node).map_or_else(|_| node.to_string(), |v| v.to_string())
    };
    out.push(Setting {
        path: dotted,
        variable,
        aliases,
        default,
    });
}

/// The listing of every setting that `serve --help` shows.
pub fn settings_help() -> String {
    let mut text = String::from(
        "Every setting: its key path in the config file = its default, then the\n\
         environment variables that set it. A MAYDAY_SECTION__KEY value is read as\n\
         TOML if the setting takes that (5, true, \"10s\", [\"a\"], { k = \"v\" }),\n\
         else as text (10s, /srv/dir); the named ones (MAYDAY_LISTEN, those after\n\
         \"or\") take text, and win.\n",
    );
    for setting in settings() {
        text.push_str(&format!(
            "\n  {} = {}\n      {}",
            setting.path, setting.default, setting.variable
        ));
        for alias in &setting.aliases {
            text.push_str(&format!(", or {alias}"));
        }
    }
    text
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config = Config::from_toml(
            r#"
            listen = "0.0.0.0:9000"
            [limits]
            max_wire_bytes = 1000
            [pipeline]
            job_lease = "10s"
            "#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_wire_bytes, 1000);
        assert_eq!(config.limits.max_decompressed_bytes, 200 * 1024 * 1024);
        assert_eq!(config.pipeline.job_lease, Duration::from_secs(10));
        assert_eq!(config.pipeline.workers, default_workers());
        assert!(config.pipeline.workers >= 1);
        assert_eq!(config.data_dir, PathBuf::from("mayday-data"));
    }

    /// Applies one environment variable, `name=value`, to `config`.
    fn set_env(config: &mut Config, name: &str, value: &str) -> Result<(), ConfigError> {
        config.apply_env(|n| (n == name).then(|| value.into()))
    }

    #[test]
    fn env_overrides_file() {
        let mut config = Config::from_toml("listen = \"0.0.0.0:9000\"").unwrap();
        config
            .apply_env(|name| match name {
                "MAYDAY_LISTEN" => Some("127.0.0.1:7000".into()),
                "MAYDAY_STORE_URL" => Some("memory://".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.store_url(), "memory://");
        assert!(config.database_url().starts_with("sqlite://"));
        assert!(set_env(&mut config, "MAYDAY_LISTEN", "nope").is_err());
    }

    #[test]
    fn signature_rules_dir_from_the_file_and_the_environment() {
        assert_eq!(Config::default().signatures.rules_dir, None);
        let mut config = Config::from_toml(
            r#"
            [signatures]
            rules_dir = "/etc/mayday/signature"
            "#,
        )
        .unwrap();
        let dir = config.signatures.rules_dir.clone();
        assert_eq!(dir, Some(PathBuf::from("/etc/mayday/signature")));
        set_env(&mut config, "MAYDAY_SIGNATURE_RULES_DIR", "/srv/rules").unwrap();
        let dir = config.signatures.rules_dir.clone();
        assert_eq!(dir, Some(PathBuf::from("/srv/rules")));
        assert!(Config::from_toml("[signatures]\nrules = \"x\"").is_err());
    }

    #[test]
    fn symbols_section_keeps_other_defaults() {
        let config = Config::from_toml(
            r#"
            [symbols]
            memory_bytes = 1000
            negative_ttl = "5m"
            [symbol_uploads]
            max_entries = 3
            "#,
        )
        .unwrap();
        assert_eq!(config.symbols.memory_bytes, 1000);
        assert_eq!(config.symbols.negative_ttl, Duration::from_secs(300));
        assert_eq!(
            config.symbols.max_open_files,
            mayday_symbols::CacheConfig::default().max_open_files
        );
        assert_eq!(config.symbol_uploads.max_entries, 3);
        assert_eq!(config.symbol_uploads.max_wire_bytes, 512 * 1024 * 1024);
        assert_eq!(config.symbol_uploads.checks().max_entries, 3);
    }

    /// The secrets [`with_secrets`] sets (but the one its `more` may add).
    const SECRETS: [&str; 5] = [
        "abababab",
        "hunter2",
        "s3cr3t-value",
        "whsec-value",
        "hook-token",
    ];

    /// A config read from a webhook with a secret and a secret URL, and `more`
    /// (TOML), with a master key, a database password and a store secret.
    fn with_secrets(more: &str) -> Config {
        let mut config = Config::from_toml(&format!(
            "[[webhooks]]\nurl = \"https://hooks.example/T0/hook-token\"\n\
             secret = \"whsec-value\"\n{more}"
        ))
        .unwrap();
        config.master_key = Some("ab".repeat(32));
        config.database_url = Some("postgres://u:hunter2@db/x".into());
        config
            .store_options
            .insert("secret_access_key".into(), "s3cr3t-value".into());
        config
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let config = with_secrets("");
        let text = format!("{config:?}");
        assert!(text.contains("hooks.example"), "{text}");
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn webhooks_are_checked_when_read() {
        let config = Config::from_toml(
            "public_url = \"https://crashes.example/\"\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"k\"\n\
             product = \"Alpha\"\nevents = [\"new_issue\", \"spike\"]\nspike_per_hour = 50\n",
        )
        .unwrap();
        assert_eq!(config.public_base_url(), "https://crashes.example");
        let hook = &config.webhooks[0];
        assert_eq!(hook.events, [WebhookEvent::NewIssue, WebhookEvent::Spike]);
        assert_eq!(hook.max_attempts, 12);
        assert!(hook.wants(WebhookEvent::NewIssue, Some("Alpha")));
        assert!(!hook.wants(WebhookEvent::NewIssue, Some("Beta")));
        assert!(!hook.wants(WebhookEvent::Regression, Some("Alpha")));
        assert_eq!(WebhookEvent::parse("spike"), Some(WebhookEvent::Spike));
        for bad in [
            "url = \"ftp://x/\"\nsecret = \"k\"",
            "url = \"http://x/\"\nsecret = \"\"",
            "url = \"http://x/\"\nsecret = \"k\"\nevents = [\"spike\"]",
            "url = \"http://x/\"\nsecret = \"k\"\nevents = [\"everything\"]",
            "url = \"http://x/\"\nsecret = \"k\"\ncolour = 1",
        ] {
            assert!(
                Config::from_toml(&format!("[[webhooks]]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
        assert_eq!(Config::default().public_base_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn secure_cookies_are_on_off_loopback_unless_configured() {
        let mut config = Config::default();
        assert!(!config.secure_cookies());
        config.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(config.secure_cookies());
        let mut config = Config::from_toml("[http]\nsecure_cookies = true\n").unwrap();
        assert!(config.secure_cookies());
        set_env(&mut config, "MAYDAY_SECURE_COOKIES", "false").unwrap();
        assert!(!config.secure_cookies());
        assert!(set_env(&mut config, "MAYDAY_SECURE_COOKIES", "yes").is_err());
    }

    #[test]
    fn rate_limit_is_on_by_default_and_set_by_file_and_env() {
        let config = Config::default();
        assert!(config.rate_limit.enabled);
        assert_eq!(config.rate_limit.per_minute.get(), 60);
        assert_eq!(config.rate_limit.burst.get(), 30);
        assert!(config.rate_limit.trusted_proxies.is_empty());

        let mut config = Config::from_toml(
            r#"
            [rate_limit]
            burst = 5
            trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
            "#,
        )
        .unwrap();
        assert_eq!(config.rate_limit.burst.get(), 5);
        assert_eq!(config.rate_limit.per_minute.get(), 60);
        let proxies: Vec<String> = config
            .rate_limit
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);

        config
            .apply_env(|name| match name {
                "MAYDAY_RATE_LIMIT_ENABLED" => Some("false".into()),
                "MAYDAY_RATE_LIMIT_PER_MINUTE" => Some("6".into()),
                "MAYDAY_RATE_LIMIT_TRUSTED_PROXIES" => Some("192.168.1.0/24, ::1".into()),
                _ => None,
            })
            .unwrap();
        assert!(!config.rate_limit.enabled);
        assert_eq!(config.rate_limit.per_minute.get(), 6);
        assert_eq!(config.rate_limit.trusted_proxies.len(), 2);

        for (name, value) in [
            ("MAYDAY_RATE_LIMIT_BURST", "0"),
            ("MAYDAY_RATE_LIMIT_ENABLED", "yes please"),
            ("MAYDAY_RATE_LIMIT_TRUSTED_PROXIES", "proxy.example"),
        ] {
            let error = set_env(&mut config, name, value).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        assert!(Config::from_toml("[rate_limit]\nper_minute = 0").is_err());
        assert!(Config::from_toml("[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]").is_err());
    }

    #[test]
    fn throttle_rules_are_read_in_order_and_checked() {
        let config = Config::from_toml(
            r#"
            [[throttle]]
            name = "old"
            product = "crashy"
            version_older_than = "1.0"
            action = "stop_sending"
            hours = 24

            [[throttle]]
            name = "beta-sample"
            annotations = { channel = "beta" }
            action = "sample"
            percent = 12.5

            [[throttle]]
            name = "everything_else"
            action = "accept"
            "#,
        )
        .unwrap();
        let names: Vec<&str> = config.throttle.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["old", "beta-sample", "everything_else"]);
        assert_eq!(
            config.throttle[0].action,
            ThrottleAction::StopSending { hours: 24.0 }
        );
        assert_eq!(
            config.throttle[0].version_older_than.as_deref(),
            Some("1.0")
        );
        assert_eq!(
            config.throttle[1].action,
            ThrottleAction::Sample { percent: 12.5 }
        );
        assert_eq!(config.throttle[1].annotations["channel"], "beta");
        assert_eq!(config.throttle[2].action, ThrottleAction::Accept);

        for bad in [
            "name = \"x\"\naction = \"sample\"",
            "name = \"x\"\naction = \"sample\"\npercent = 101",
            "name = \"x\"\naction = \"stop_sending\"\nhours = 0",
            "name = \"x\"\naction = \"stop_sending\"\nhours = 1e300",
            "name = \"x\"\naction = \"reject\"\nhours = 1",
            "name = \"x y\"\naction = \"reject\"",
            "name = \"x\"\naction = \"drop\"",
            "name = \"x\"\naction = \"reject\"\nversoin = \"1\"",
        ] {
            let text = format!("[[throttle]]\n{bad}");
            assert!(Config::from_toml(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("lisen = \"x\"").is_err());
        for section in ["scrub", "scrub.annotations", "symbols"] {
            let text = format!("[{section}]\ncolour = 1\n");
            assert!(Config::from_toml(&text).is_err(), "{text}");
        }
    }

    /// Loads the configuration from `file` (TOML text, if any) and `variables`.
    fn load(file: Option<&str>, variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mayday.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let variables = variables
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Config::load_with(file.map(|_| path.as_path()), &variables)
    }

    #[test]
    fn every_setting_is_a_variable_over_the_file() {
        let file = "[limits]\nmax_wire_bytes = 5\nmax_parts = 7\n[pipeline]\njob_lease = \"1s\"\n";
        let config = load(
            Some(file),
            &[
                // Nested, a number: over the file's, the file's other keys kept.
                ("MAYDAY_LIMITS__MAX_WIRE_BYTES", "1000"),
                // Durations as text, or as the file writes them.
                ("MAYDAY_PIPELINE__JOB_LEASE", "10m"),
                ("MAYDAY_HTTP__IDLE_TIMEOUT", "\"5s\""),
                // Deeper sections, a boolean, an enum, a path.
                ("MAYDAY_SCRUB__HEAP_MEMORY", "false"),
                ("MAYDAY_SCRUB__ANNOTATIONS__KEY_ACTION", "hash"),
                ("MAYDAY_SYMBOLS__DISK_DIR", "/var/cache/sym"),
                // An array of tables at the top level.
                (
                    "MAYDAY_THROTTLE",
                    "[{ name = \"old\", product = \"crashy\", action = \"reject\" }, \
                     { name = \"rest\", action = \"sample\", percent = 50 }]",
                ),
                // A key of a free-form table: `true` taken as the text it must be.
                ("MAYDAY_STORE_OPTIONS__ALLOW_HTTP", "true"),
                ("MAYDAY_CRASH_SITES__PRODUCT_SAMPLES", "{ Crashy = 3 }"),
                // Not settings: left alone.
                ("MAYDAY_LOG", "debug"),
                ("MAYDAY_TOKEN", "tok"),
                ("PATH__ELSEWHERE", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.limits.max_wire_bytes, 1000);
        assert_eq!(config.limits.max_parts, 7);
        assert_eq!(config.pipeline.job_lease, Duration::from_secs(600));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(5));
        assert!(!config.scrub.heap_memory && config.scrub.user_names);
        assert_eq!(
            config.scrub.annotations.key_action,
            mayday_report::scrub::Action::Hash
        );
        assert_eq!(
            config.symbols.disk_dir,
            Some(PathBuf::from("/var/cache/sym"))
        );
        let names: Vec<&str> = config.throttle.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["old", "rest"]);
        assert_eq!(
            config.throttle[1].action,
            ThrottleAction::Sample { percent: 50.0 }
        );
        assert_eq!(config.store_options["allow_http"], "true");
        assert_eq!(config.crash_sites.samples_for("Crashy"), 3);

        // A section's variable, then its keys' over it.
        let config = load(
            None,
            &[
                ("MAYDAY_LIMITS", "{ max_parts = 3, max_wire_bytes = 4 }"),
                ("MAYDAY_LIMITS__MAX_WIRE_BYTES", "9"),
            ],
        )
        .unwrap();
        assert_eq!(
            (config.limits.max_parts, config.limits.max_wire_bytes),
            (3, 9)
        );
    }

    #[test]
    fn named_variables_win_over_generic_ones() {
        let config = load(
            None,
            &[
                ("MAYDAY_PIPELINE__WORKERS", "3"),
                ("MAYDAY_WORKERS", "5"),
                // The section's name is the named variable of `enabled`.
                ("MAYDAY_CRASH_SITES__ENABLED", "true"),
                ("MAYDAY_CRASH_SITES", "false"),
                (
                    "MAYDAY_STORE_OPTIONS",
                    "{ endpoint = \"http://a\", region = \"r\" }",
                ),
                ("MAYDAY_STORE_ENDPOINT", "http://b"),
                ("MAYDAY_LISTEN", "127.0.0.1:7000"),
            ],
        )
        .unwrap();
        assert_eq!(config.pipeline.workers, 5);
        assert!(!config.crash_sites.enabled);
        assert_eq!(config.store_options["endpoint"], "http://b");
        assert_eq!(config.store_options["region"], "r");
        assert_eq!(config.listen.port(), 7000);

        // apply_env reads exactly the named variables, and each names a setting.
        let asked = std::cell::RefCell::new(Vec::new());
        Config::default()
            .apply_env(|name| {
                asked.borrow_mut().push(name);
                None
            })
            .unwrap();
        let named: Vec<&str> = NAMED_VARIABLES.iter().map(|(name, _)| *name).collect();
        assert_eq!(asked.into_inner(), named);
        let defaults = tree(&Config::default());
        for (name, path) in NAMED_VARIABLES {
            let path: Vec<String> = path.split('.').map(str::to_owned).collect();
            assert!(names_a_setting(&defaults, &path), "{name}");
        }
    }

    #[test]
    fn a_variable_naming_no_setting_is_refused() {
        for (name, value, says) in [
            ("MAYDAY_LIMITS__MAX_WIRE_BYTE", "5", "names no setting"),
            ("MAYDAY_LIMIT__MAX_WIRE_BYTES", "5", "names no setting"),
            ("MAYDAY_SCRUB__ANNOTATIONS__KEYZ", "[]", "names no setting"),
            ("MAYDAY_LISTEN__PORT", "80", "names no setting"),
            ("MAYDAY_THROTTLE__NAME", "x", "names no setting"),
            ("MAYDAY_STORE_OPTIONS__", "x", "names no setting"),
            (
                "MAYDAY_LIMITS__MAX_PARTS",
                "lots",
                "not a value for limits.max_parts",
            ),
            (
                "MAYDAY_PIPELINE__JOB_LEASE",
                "soon",
                "not a value for pipeline.job_lease",
            ),
            (
                "MAYDAY_THROTTLE",
                "[{ name = \"x\" }]",
                "not a value for throttle",
            ),
        ] {
            let error = load(None, &[(name, value)]).unwrap_err().to_string();
            assert!(error.contains(name) && error.contains(says), "{error}");
        }
        // A mistake in a secret's variable does not show its value.
        let error = load(
            None,
            &[(
                "MAYDAY_WEBHOOKS",
                "[{ url = \"ftp://hooks.example/hook-token\", secret = \"whsec-value\" }]",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("MAYDAY_WEBHOOKS"), "{error}");
        assert!(
            !error.contains("hook-token") && !error.contains("whsec-value"),
            "{error}"
        );
        // A mistake in the file is the file's, with its line.
        let error = load(Some("[limits]\nmax_parts = \"x\"\n"), &[]).unwrap_err();
        assert!(matches!(error, ConfigError::Parse { .. }), "{error}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn sentry_projects_decide_which_dsn_keys_are_accepted() {
        let config = load(
            Some(
                "[[sentry.projects]]\nid = \"42\"\nkeys = [\"k1\", \"k2\"]\nproduct = \"App\"\n\
                 [[sentry.projects]]\nid = \"43\"\nkeys = [\"k3\"]\n",
            ),
            &[],
        )
        .unwrap();
        let sentry = &config.sentry;
        let product = |project, key| {
            sentry
                .check(project, key)
                .map(|p| p.map(|p| p.product.clone()))
        };
        assert_eq!(product("42", Some("k2")), Ok(Some(Some("App".to_owned()))));
        assert_eq!(product("43", Some("k3")), Ok(Some(None)));
        assert_eq!(product("42", None), Err(DsnRefusal::Missing));
        assert_eq!(product("42", Some("")), Err(DsnRefusal::Missing));
        assert_eq!(product("42", Some("k9")), Err(DsnRefusal::Unknown));
        assert_eq!(product("43", Some("k1")), Err(DsnRefusal::OtherProject));
        assert_eq!(product("44", Some("k1")), Err(DsnRefusal::OtherProject));
        // None listed: open, as `/submit` is.
        assert_eq!(SentryConfig::default().check("1", None), Ok(None));
        // A misspelt field is an error, not a silently open endpoint.
        assert!(
            load(
                Some("[[sentry.projects]]\nid = \"1\"\nkey = [\"k\"]\n"),
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn the_listing_holds_every_setting_and_no_secret() {
        let listed = settings();
        let paths: Vec<&str> = listed.iter().map(|s| s.path.as_str()).collect();
        for path in [
            "listen",
            "master_key",
            "limits.max_wire_bytes",
            "pipeline.job_lease",
            "scrub.annotations.hash_salt",
            "symbols.negative_ttl",
            "crash_sites.product_samples",
            "signatures.rules_dir",
            "throttle",
            "webhooks",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        let setting = |path: &str| listed.iter().find(|s| s.path == path).unwrap();
        let wire = setting("limits.max_wire_bytes");
        assert_eq!(wire.variable, "MAYDAY_LIMITS__MAX_WIRE_BYTES");
        assert_eq!(wire.default, (25 * 1024 * 1024).to_string());
        assert_eq!(setting("master_key").default, "(unset)");
        assert_eq!(setting("pipeline.job_lease").default, "\"5m\"");
        assert_eq!(setting("pipeline.workers").aliases, ["MAYDAY_WORKERS"]);
        assert!(setting("listen").aliases.is_empty());

        // Every listed variable, set to the listed default, gives the defaults:
        // each names its setting and the defaults read back (as text for the
        // named variables among them, `MAYDAY_LISTEN`).
        let variables: Vec<(&str, &str)> = listed
            .iter()
            .filter(|s| s.default != "(unset)")
            .map(|s| {
                let named = NAMED_VARIABLES.iter().any(|(n, _)| *n == s.variable);
                let value = s.default.as_str();
                (
                    s.variable.as_str(),
                    if named {
                        value.trim_matches('"')
                    } else {
                        value
                    },
                )
            })
            .collect();
        let config = load(None, &variables).unwrap();
        assert_eq!(tree(&config), tree(&Config::default()));
        assert!(settings_help().contains("\n  symbols.negative_ttl = \"1h\"\n"));

        // Set secrets are never listed.
        let config = with_secrets("[scrub.annotations]\nhash_salt = \"salt-value\"\n");
        let listed = describe(&config);
        let text = format!("{listed:?}");
        for secret in SECRETS.into_iter().chain(["salt-value"]) {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for path in [
            "master_key",
            "database_url",
            "store_options.secret_access_key",
            "webhooks",
            "scrub.annotations.hash_salt",
        ] {
            let default = &listed.iter().find(|s| s.path == path).unwrap().default;
            assert_eq!(default, "(secret)", "{path}");
        }
    }
}

//! What Sentry SDKs send, so an app using sentry-native's crashpad/breakpad
//! backend or a Sentry SDK reports to Mayday by pointing its DSN here:
//!
//! - `POST /api/{project}/minidump/` (sentry-native): the Breakpad form, with the
//!   minidump in `upload_file_minidump` and the event as the `sentry` JSON field,
//!   `sentry[...]` fields, or the MessagePack file `__sentry-event` that its
//!   Crashpad handler attaches (its breadcrumb files are dropped unread).
//! - `POST /api/{project}/envelope/`: an envelope whose `attachment` item of type
//!   `event.minidump` is the dump. Envelopes without one (sessions, plain events,
//!   transactions) are answered and dropped: Mayday keeps crash dumps only.
//!
//! The DSN's key (`?sentry_key=` or the `X-Sentry-Auth` header) is checked
//! against the configured projects (`[[sentry.projects]]`,
//! [`SentryConfig`](crate::config::SentryConfig)) before the body is read. Of
//! the event, `release` (`name@version`) becomes the report's product and
//! version (a project's configured `product` when the release names none) and
//! `tags` become annotations, scrubbed by the annotation rules like the app's
//! own; user, contexts, extra, breadcrumbs and the project and key of the DSN
//! are skipped as the event is parsed, never stored. The answer is Sentry's
//! `{"id": <event id>}`, with Mayday's `crash_id` and `deletion_token` beside
//! it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mayday_report::upload::SubmitReceipt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{self, decompressed};
use super::spool::{Spool, Spooler};
use super::upload::{KeptFile, upload_from_spool};
use super::{Accepted, IngestError, IngestState, Upload, accept, check_free_space};
use crate::config::Limits;
use mayday_report::scrub::{TextAttachmentRule, attachment_text};

/// The annotation keys a release sets, as the Breakpad form names them.
const PRODUCT: &str = "ProductName";
const VERSION: &str = "Version";
/// The most items an envelope may hold.
const MAX_ITEMS: usize = 100;
/// The event sentry-native's Crashpad handler attaches to the minidump form,
/// MessagePack-encoded; as large as an envelope's event may be.
const EVENT_FILE: KeptFile = KeptFile {
    name: "__sentry-event",
    max_bytes: MAX_LINE,
    what: "sentry_event",
};

/// How deep an event's MessagePack may nest: serde_json's limit for the JSON
/// forms. rmp-serde's own (1024) let a 1 KB event overflow a debug server's
/// thread stack, which aborts the process.
const MAX_EVENT_DEPTH: usize = 128;

/// What Mayday reads of a Sentry event. Every other field (user, contexts,
/// extra, breadcrumbs, the SDK's) is skipped while the event is parsed.
#[derive(Debug, Default, Deserialize)]
struct Event {
    #[serde(default)]
    event_id: Value,
    #[serde(default)]
    release: Value,
    #[serde(default)]
    tags: Value,
}

impl Event {
    /// An event as JSON (the `sentry` form field, an envelope's event item);
    /// `None` when it is not one.
    fn from_json(bytes: &[u8]) -> Option<Event> {
        serde_json::from_slice(bytes).ok()
    }

    /// An event as MessagePack (the `__sentry-event` file); `None` when it is
    /// not one, or nests deeper than [`MAX_EVENT_DEPTH`].
    fn from_msgpack(bytes: &[u8]) -> Option<Event> {
        let mut reader = rmp_serde::Deserializer::from_read_ref(bytes);
        reader.set_max_depth(MAX_EVENT_DEPTH);
        Event::deserialize(&mut reader).ok()
    }

    fn event_id(&self) -> Option<&str> {
        self.event_id.as_str()
    }

    fn release(&self) -> Option<&str> {
        self.release.as_str()
    }

    /// Its `tags`, when it has any.
    fn tags(&self) -> Option<&Value> {
        (!self.tags.is_null()).then_some(&self.tags)
    }
}

/// `name@version` → (name, version); a release without `@` is a version.
fn split_release(release: &str) -> (Option<&str>, &str) {
    match release.split_once('@') {
        Some((name, version)) if !name.is_empty() => (Some(name), version),
        _ => (None, release),
    }
}

/// The longest release Sentry takes, in characters.
const MAX_RELEASE_CHARS: usize = 200;

/// Whether Sentry takes `release` (trimmed): at most [`MAX_RELEASE_CHARS`]
/// characters, no control characters (newlines, tabs) and no slashes, and not
/// `.`, `..` or empty. Sentry drops any other, and so does Mayday: the
/// release becomes the report's product and version, which the index keeps
/// and searches by.
fn release_taken(release: &str) -> bool {
    !matches!(release, "" | "." | "..")
        && release.chars().count() <= MAX_RELEASE_CHARS
        && !release
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
}

/// Sets product and version from a Sentry `release`, the app's own fields first.
fn set_release(annotations: &mut BTreeMap<String, String>, release: Option<&str>) {
    let Some(release) = release.map(str::trim).filter(|r| release_taken(r)) else {
        return;
    };
    let (name, version) = split_release(release);
    if let Some(name) = name {
        annotations
            .entry(PRODUCT.to_owned())
            .or_insert_with(|| name.to_owned());
    }
    if !version.is_empty() {
        annotations
            .entry(VERSION.to_owned())
            .or_insert_with(|| version.to_owned());
    }
}

/// The DSN key a request carries: `?sentry_key=`, else the `X-Sentry-Auth`
/// header's `sentry_key` (`Sentry sentry_key=…, sentry_version=7, …`).
fn dsn_key(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let from_query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "sentry_key")
            .map(|(_, v)| v.into_owned())
    });
    from_query.or_else(|| {
        let auth = headers.get("x-sentry-auth")?.to_str().ok()?.trim();
        let fields = auth
            .strip_prefix("Sentry ")
            .or_else(|| auth.strip_prefix("sentry "))?;
        fields.split(',').find_map(|field| {
            let (name, value) = field.trim().split_once('=')?;
            (name.trim() == "sentry_key").then(|| value.trim().to_owned())
        })
    })
}

/// What both Sentry endpoints check before the body is read: the request's DSN
/// key against the configured projects, then the free disk space. Answers the
/// product of the project when it names one; a refusal is counted.
fn admit(
    state: &IngestState,
    project: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<String>, IngestError> {
    state
        .sentry
        .check(project, dsn_key(query, headers).as_deref())
        .map(|p| p.and_then(|p| p.product.clone()))
        .map_err(IngestError::DsnKey)
        .and_then(|product| check_free_space(state).map(|()| product))
        .inspect_err(|e| state.metrics.rejected(e.name()))
}

/// The event's `tags` (an object, or a list of `[key, value]` pairs) as
/// annotations beside the app's own (which win), within the upload limits on
/// annotations (`max_annotations` in all, `max_annotation_bytes` of keys and
/// values in all). A tag Sentry would not take is dropped as Relay drops it: a
/// key over 32 characters or of others than ASCII letters, digits, `_`, `.`,
/// `:` and `-` (Sentry's tag rules), a value over 200 characters or with a
/// newline.
fn add_tags(annotations: &mut BTreeMap<String, String>, tags: Option<&Value>, limits: &Limits) {
    let pairs: Vec<(String, String)> = match tags {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), tag_text(v))).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|pair| Some((pair.get(0)?.as_str()?.to_owned(), tag_text(pair.get(1)?))))
            .collect(),
        _ => return,
    };
    let mut bytes: u64 = annotations
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    for (key, value) in pairs {
        if annotations.len() >= limits.max_annotations {
            break;
        }
        let valid = !key.is_empty()
            && key.len() <= MAX_TAG_KEY_CHARS
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
            && value.chars().count() <= MAX_TAG_VALUE_CHARS
            && !value.contains('\n');
        let size = (key.len() + value.len()) as u64;
        if !valid || annotations.contains_key(&key) || bytes + size > limits.max_annotation_bytes {
            continue;
        }
        bytes += size;
        annotations.insert(key, value);
    }
}

/// The longest tag key Sentry takes, in characters.
const MAX_TAG_KEY_CHARS: usize = 32;
/// The longest tag value Sentry takes, in characters.
const MAX_TAG_VALUE_CHARS: usize = 200;

fn tag_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Product and version from the event's release (else the project's product),
/// and its tags as annotations.
fn apply_event(
    annotations: &mut BTreeMap<String, String>,
    release: Option<&str>,
    tags: Option<&Value>,
    project_product: Option<String>,
    limits: &Limits,
) {
    set_release(annotations, release);
    if let Some(product) = project_product {
        annotations.entry(PRODUCT.to_owned()).or_insert(product);
    }
    add_tags(annotations, tags, limits);
}

/// Sentry's answer, with Mayday's receipt beside it.
fn answer(event_id: String, receipt: Option<&SubmitReceipt>) -> Response {
    let mut body = json!({ "id": event_id });
    if let Some(receipt) = receipt {
        body["crash_id"] = json!(receipt.crash_id);
        body["deletion_token"] = json!(receipt.deletion_token);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A Sentry event id: 32 hex digits.
fn new_event_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Stores `upload` (throttle rules first) and answers as Sentry does.
async fn store(
    state: &IngestState,
    upload: Upload,
    event_id: String,
) -> Result<Response, IngestError> {
    match accept(state, upload).await? {
        Accepted::Stored(receipt) => Ok(answer(event_id, Some(&receipt))),
        Accepted::Refused(refusal) => Ok(refusal),
    }
}

/// `POST /api/{project}/minidump/`: sentry-native's minidump upload.
pub(super) async fn minidump(
    State(state): State<IngestState>,
    Extension(wire): Extension<Arc<body::WireStats>>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_product = admit(&state, &project, query.as_deref(), &headers)?;
    let mut upload = state
        .read(&headers, body, wire, &[EVENT_FILE])
        .await
        .inspect_err(|e| state.metrics.rejected(e.name()))?;
    let event_file = upload.kept_files.remove(EVENT_FILE.name);
    upload.kept_files.clear();
    let event_id = apply_form_event(
        &mut upload.annotations,
        event_file.as_deref(),
        project_product,
        &state.limits,
    );
    store(&state, upload, event_id).await
}

/// What a minidump upload's form says of its Sentry event, applied to its
/// `annotations` (the form's fields): the event is the `sentry` field (JSON),
/// else `event_file` (the Crashpad handler's `__sentry-event`, MessagePack),
/// else the `sentry[release]` and `sentry[tags][key]` fields. Its release and
/// tags become annotations ([`apply_event`]); every `sentry` and `sentry[…]`
/// field goes; nothing else of the event is kept. Answers the event id to
/// answer with: the event's when it is one ([`event_id_or_new`]), else a new one.
pub fn apply_form_event(
    annotations: &mut BTreeMap<String, String>,
    event_file: Option<&[u8]>,
    project_product: Option<String>,
    limits: &Limits,
) -> String {
    let event = annotations
        .get("sentry")
        .and_then(|text| Event::from_json(text.as_bytes()))
        .or_else(|| Event::from_msgpack(event_file?));
    let release = event
        .as_ref()
        .and_then(|e| e.release().map(str::to_owned))
        .or_else(|| annotations.get("sentry[release]").cloned());
    let event_id = event_id_or_new(event.as_ref().and_then(Event::event_id));
    // Its tags: `tags` of the JSON event, or `sentry[tags][key]` fields.
    let form_tags: serde_json::Map<String, Value> = annotations
        .iter()
        .filter_map(|(key, value)| {
            let tag = key.strip_prefix("sentry[tags][")?.strip_suffix(']')?;
            Some((tag.to_owned(), Value::String(value.clone())))
        })
        .collect();
    let tags = event
        .as_ref()
        .and_then(|e| e.tags().cloned())
        .unwrap_or(Value::Object(form_tags));
    annotations.retain(|key, _| key != "sentry" && !key.starts_with("sentry["));
    apply_event(
        annotations,
        release.as_deref(),
        Some(&tags),
        project_product,
        limits,
    );
    event_id
}

/// The event id a client sent, when it is one — 32 hex digits, or a UUID with
/// its hyphens — written as Sentry writes it (32 lowercase hex digits); else a
/// new one. What else a client sends there is not echoed back.
fn event_id_or_new(sent: Option<&str>) -> String {
    let id = sent
        .filter(|id| id.len() <= 36)
        .map(|id| id.replace('-', "").to_ascii_lowercase())
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    id.unwrap_or_else(new_event_id)
}

/// The longest envelope header, item header or line payload read (an event is
/// a line or a few KiB; a minidump comes with its length and is spooled).
const MAX_LINE: usize = 1024 * 1024;

/// An envelope read as it arrives: lines and length-framed payloads from the
/// (decompressed, size-limited) body stream, holding at most one line or chunk.
///
/// Linear in the body whatever its shape: what is taken is only passed over
/// (`start`), and the buffer is moved down once per chunk that comes; a line's
/// end is looked for only in what was not looked at yet (`scanned`). (Taking
/// each line off the front of the buffer moved the rest of the chunk each
/// time: a body of 8 MiB of empty lines cost 43 s of a core.)
struct EnvelopeReader<S> {
    stream: S,
    /// What came and is not taken yet: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// How many bytes from `start` are known to hold no `\n`.
    scanned: usize,
}

impl<S: futures::Stream<Item = Result<bytes::Bytes, IngestError>> + Unpin> EnvelopeReader<S> {
    fn new(stream: S) -> Self {
        EnvelopeReader {
            stream,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
        }
    }

    /// What came and is not taken yet.
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Takes the next `n` pending bytes.
    fn take(&mut self, n: usize) {
        self.start += n;
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// Reads the next chunk after what is pending; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, IngestError> {
        match self.stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                if self.start > 0 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Passes over white space (empty lines between items among it).
    async fn skip_white_space(&mut self) -> Result<(), IngestError> {
        loop {
            let pending = self.pending();
            match pending.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(n) => {
                    self.take(n);
                    return Ok(());
                }
                None => {
                    self.take(pending.len());
                    if !self.fill().await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The next line without its `\n`; `None` at the end.
    async fn line(&mut self) -> Result<Option<Vec<u8>>, IngestError> {
        loop {
            let pending = self.pending();
            if let Some(at) = pending[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                let line = pending[..end].to_vec();
                self.take(end + 1);
                return Ok(Some(line));
            }
            let len = pending.len();
            self.scanned = len;
            if len > MAX_LINE {
                return Err(IngestError::TooLarge("envelope_line"));
            }
            if !self.fill().await? {
                let rest = self.pending().to_vec();
                self.take(rest.len());
                return Ok((!rest.is_empty()).then_some(rest));
            }
        }
    }

    /// Hands the next `len` bytes to `sink` as they come, then drops the `\n`
    /// that may follow.
    async fn payload(&mut self, mut len: u64, mut sink: impl AsyncSink) -> Result<(), IngestError> {
        let malformed = || IngestError::Malformed("envelope");
        while len > 0 {
            if self.pending().is_empty() && !self.fill().await? {
                return Err(malformed());
            }
            let pending = self.pending();
            let take = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(pending.len());
            sink.write(&pending[..take]).await?;
            self.take(take);
            len -= take as u64;
        }
        if self.pending().is_empty() {
            self.fill().await?;
        }
        if self.pending().first() == Some(&b'\n') {
            self.take(1);
        }
        Ok(())
    }
}

/// Where a payload goes: kept in memory (bounded), spooled, or skipped.
trait AsyncSink {
    /// Takes the next bytes of the payload.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError>;
}

/// A payload skipped.
struct Skip;

impl AsyncSink for Skip {
    async fn write(&mut self, _: &[u8]) -> Result<(), IngestError> {
        Ok(())
    }
}

/// A small payload (an event) kept in memory, up to [`MAX_LINE`].
struct Small<'a>(&'a mut Vec<u8>);

impl AsyncSink for Small<'_> {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        if self.0.len() + bytes.len() > MAX_LINE {
            return Err(IngestError::TooLarge("envelope_event"));
        }
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// An attachment a text attachment rule lists, kept in memory up to the rule's
/// size; past it, nothing more is kept and the attachment is dropped.
struct Bounded {
    bytes: Option<Vec<u8>>,
    max: u64,
    size: u64,
}

impl AsyncSink for &mut Bounded {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        self.size += bytes.len() as u64;
        if self.size > self.max {
            self.bytes = None;
        } else if let Some(kept) = self.bytes.as_mut() {
            kept.extend_from_slice(bytes);
        }
        Ok(())
    }
}

impl AsyncSink for &mut Spool {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        Spool::write(self, bytes).await
    }
}

/// What an envelope brought: its header, the event (if any), the dump (if
/// an `event.minidump` attachment came), and the text attachments a rule keeps.
struct Envelope {
    header: Value,
    event: Option<Event>,
    dump: Option<Spool>,
    /// (file name, text), not scrubbed yet.
    texts: Vec<(String, String)>,
    /// Other attachments, read past: (file name, size).
    dropped: Vec<(String, u64)>,
}

/// Reads an envelope: its header, then items (a header line, then `length`
/// bytes, or one line when no length is given). The first `event.minidump`
/// attachment is spooled (memory-bounded, encrypted on disk past its bound);
/// the event is kept if it is small; an attachment whose file name a text
/// attachment rule of `keep` lists is kept if it is text within the rule's size
/// (the first of each name); everything else is read past.
async fn read_envelope(
    stream: impl futures::Stream<Item = Result<bytes::Bytes, IngestError>> + Unpin,
    spooler: &Arc<Spooler>,
    keep: &[TextAttachmentRule],
) -> Result<Envelope, IngestError> {
    let malformed = || IngestError::Malformed("envelope");
    let mut reader = EnvelopeReader::new(stream);
    let header = reader.line().await?.ok_or_else(malformed)?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| malformed())?;
    let (mut event, mut dump) = (None, None);
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut dropped: Vec<(String, u64)> = Vec::new();
    let mut items = 0;
    loop {
        // Empty lines between items are passed over in one go, not a line at a time.
        reader.skip_white_space().await?;
        let Some(item) = reader.line().await? else {
            break;
        };
        items += 1;
        if items > MAX_ITEMS {
            return Err(IngestError::TooLarge("envelope_items"));
        }
        let item: Value = serde_json::from_slice(&item).map_err(|_| malformed())?;
        let is_event = item["type"] == "event";
        let is_dump = item["type"] == "attachment"
            && item["attachment_type"] == "event.minidump"
            && dump.is_none();
        let attachment = (item["type"] == "attachment" && !is_dump)
            .then(|| item["filename"].as_str().unwrap_or_default().to_owned());
        if let Some(name) = attachment {
            let rule = keep
                .iter()
                .find(|rule| rule.field == name && !texts.iter().any(|(n, _)| *n == name));
            let mut sink = Bounded {
                bytes: rule.map(|_| Vec::new()),
                max: rule.map_or(u64::MAX, |rule| rule.max_bytes),
                size: 0,
            };
            match item["length"].as_u64() {
                Some(len) => reader.payload(len, &mut sink).await?,
                None => {
                    let payload = reader.line().await?.unwrap_or_default();
                    (&mut sink).write(&payload).await?;
                }
            }
            match sink.bytes.as_deref().map(attachment_text) {
                Some(Ok(text)) => texts.push((name, text.to_owned())),
                _ => dropped.push((name, sink.size)),
            }
            continue;
        }
        match item["length"].as_u64() {
            Some(len) if is_dump => {
                let mut spool = Spool::new(Arc::clone(spooler));
                reader.payload(len, &mut spool).await?;
                dump = Some(spool);
            }
            Some(len) if is_event => {
                let mut bytes = Vec::new();
                reader.payload(len, Small(&mut bytes)).await?;
                event = Event::from_json(&bytes);
            }
            Some(len) => reader.payload(len, Skip).await?,
            None => {
                let payload = reader.line().await?.unwrap_or_default();
                if is_event {
                    event = Event::from_json(&payload);
                } else if is_dump {
                    let mut spool = Spool::new(Arc::clone(spooler));
                    spool.write(&payload).await?;
                    dump = Some(spool);
                }
            }
        }
    }
    Ok(Envelope {
        header,
        event,
        dump,
        texts,
        dropped,
    })
}

/// `POST /api/{project}/envelope/`: an envelope; its `event.minidump`
/// attachment becomes a report.
// Its extractors are `minidump`'s: axum handlers name theirs one by one; what the
// two share beyond them is `admit`.
pub(super) async fn envelope(
    State(state): State<IngestState>,
    Extension(wire): Extension<Arc<body::WireStats>>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_product = admit(&state, &project, query.as_deref(), &headers)?;
    let stream = decompressed(
        body,
        wire,
        state.limits.max_decompressed_bytes,
        state.limits.max_compression_ratio,
    );
    let (event_id, upload) = envelope_upload(
        stream,
        &state.spooler,
        &state.scrub.text_attachments,
        project_product,
        &state.limits,
    )
    .await
    .inspect_err(|e| state.metrics.rejected(e.name()))?;
    match upload {
        Some(upload) => store(&state, upload, event_id).await,
        // Not a crash with a dump: answered, nothing kept.
        None => Ok(answer(event_id, None)),
    }
}

/// An envelope read from its (decompressed, size-limited) body: its event id
/// (the header's, else a new one) and the upload its `event.minidump`
/// attachment makes, with the event's release and tags as annotations, its
/// kept text attachments and the others it dropped; `None` without a dump.
pub(super) async fn envelope_upload(
    stream: impl futures::Stream<Item = Result<bytes::Bytes, IngestError>> + Unpin,
    spooler: &Arc<Spooler>,
    keep: &[TextAttachmentRule],
    project_product: Option<String>,
    limits: &Limits,
) -> Result<(String, Option<Upload>), IngestError> {
    let envelope = read_envelope(stream, spooler, keep).await?;
    let event_id = event_id_or_new(envelope.header["event_id"].as_str());
    let Some(dump) = envelope.dump else {
        return Ok((event_id, None));
    };
    let mut annotations = BTreeMap::new();
    let event = envelope.event.as_ref();
    apply_event(
        &mut annotations,
        event.and_then(Event::release),
        event.and_then(Event::tags),
        project_product,
        limits,
    );
    let mut upload = upload_from_spool(dump, annotations)?;
    upload.text_attachments = envelope.texts;
    upload.dropped_attachments = envelope.dropped;
    Ok((event_id, Some(upload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(body: &'static [u8]) -> Result<Envelope, IngestError> {
        read_keeping(body, &[]).await
    }

    async fn read_keeping(
        body: &'static [u8],
        keep: &[TextAttachmentRule],
    ) -> Result<Envelope, IngestError> {
        read_in_pieces(body, 3, keep).await
    }

    /// Reads `body` arriving in pieces of `piece` bytes.
    async fn read_in_pieces(
        body: &[u8],
        piece: usize,
        keep: &[TextAttachmentRule],
    ) -> Result<Envelope, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let spooler = Arc::new(Spooler::new(dir.path(), &crate::config::Limits::default()));
        let chunks: Vec<Result<bytes::Bytes, IngestError>> = body
            .chunks(piece)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        read_envelope(futures::stream::iter(chunks), &spooler, keep).await
    }

    #[tokio::test]
    async fn listed_text_attachments_are_kept_and_the_rest_dropped() {
        let keep = [
            TextAttachmentRule {
                field: "app.log".to_owned(),
                max_bytes: 8,
            },
            TextAttachmentRule {
                field: "big.log".to_owned(),
                max_bytes: 2,
            },
        ];
        let body = b"{}\n\
            {\"type\":\"attachment\",\"length\":5,\"filename\":\"app.log\"}\nline1\n\
            {\"type\":\"attachment\",\"filename\":\"app.log\"}\nagain\n\
            {\"type\":\"attachment\",\"length\":3,\"filename\":\"big.log\"}\nabc\n\
            {\"type\":\"attachment\",\"length\":2,\"filename\":\"s.png\"}\n\x89P\n\
            {\"type\":\"attachment\",\"length\":2,\"attachment_type\":\"event.minidump\"}\nMD\n";
        let envelope = read_keeping(body, &keep).await.unwrap();
        assert_eq!(envelope.texts, [("app.log".to_owned(), "line1".to_owned())]);
        assert_eq!(
            envelope.dropped,
            [
                ("app.log".to_owned(), 5),
                ("big.log".to_owned(), 3),
                ("s.png".to_owned(), 2)
            ]
        );
        assert!(envelope.dump.is_some());
    }

    #[tokio::test]
    async fn envelopes_with_and_without_lengths() {
        let body = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\"}\n{\"release\":\"app@1.2\"}\n{\"type\":\"attachment\",\"length\":6,\"attachment_type\":\"event.minidump\"}\nMD\nMP\n{\"type\":\"session\",\"length\":2}\n{}";
        let envelope = read(body).await.unwrap();
        assert_eq!(envelope.header["event_id"], "abc");
        assert_eq!(envelope.event.unwrap().release(), Some("app@1.2"));
        assert_eq!(
            envelope
                .dump
                .unwrap()
                .into_reader()
                .await
                .unwrap()
                .into_vec(0)
                .unwrap(),
            b"MD\nMP\n"
        );
        for bad in [
            &b""[..],
            b"not json\n",
            b"{}\n{\"type\":\"attachment\",\"attachment_type\":\"event.minidump\",\"length\":99}\nshort",
        ] {
            assert!(read(bad).await.is_err(), "{bad:?}");
        }
    }

    /// What an envelope read gave, to compare: header, release, texts, dropped
    /// attachments and the dump's bytes.
    async fn summary(
        envelope: Envelope,
    ) -> (
        Value,
        Option<String>,
        Vec<(String, String)>,
        Vec<(String, u64)>,
        Option<Vec<u8>>,
    ) {
        let dump = match envelope.dump {
            Some(spool) => Some(spool.into_reader().await.unwrap().into_vec(0).unwrap()),
            None => None,
        };
        (
            envelope.header,
            envelope
                .event
                .as_ref()
                .and_then(Event::release)
                .map(str::to_owned),
            envelope.texts,
            envelope.dropped,
            dump,
        )
    }

    #[tokio::test]
    async fn white_space_between_items_is_passed_over_in_pieces_of_any_size() {
        let keep = [TextAttachmentRule {
            field: "app.log".to_owned(),
            max_bytes: 64,
        }];
        let mut body = b"{\"event_id\":\"abc\"}\n\n \r\n\t{\"type\":\"event\",\"length\":22}\n{\"release\":\"app@1.2\"}\n".to_vec();
        // Many empty lines: passed over in one go, as cheap as any other bytes.
        body.extend(std::iter::repeat_n(b'\n', 100_000));
        body.extend_from_slice(
            b"{\"type\":\"attachment\",\"filename\":\"app.log\"}\n  log line\n\n\n",
        );
        body.extend_from_slice(b"{\"type\":\"attachment\",\"length\":4,\"attachment_type\":\"event.minidump\"}\n\nMD\n\n\n  \n");
        let whole = summary(read_in_pieces(&body, body.len(), &keep).await.unwrap()).await;
        assert_eq!(whole.0["event_id"], "abc");
        assert_eq!(whole.1.as_deref(), Some("app@1.2"));
        assert_eq!(whole.2, [("app.log".to_owned(), "  log line".to_owned())]);
        assert_eq!(whole.4.as_deref(), Some(&b"\nMD\n"[..]));
        for piece in [1, 2, 3, 7, 4096] {
            let read = summary(read_in_pieces(&body, piece, &keep).await.unwrap()).await;
            assert_eq!(read, whole, "pieces of {piece}");
        }
        // Nothing but white space after the header: no items.
        let read = summary(read_in_pieces(b"{}\n\n\n \n", 1, &[]).await.unwrap()).await;
        assert_eq!(read, (json!({}), None, vec![], vec![], None));
        // A line longer than any an envelope holds, in pieces: refused.
        let mut long = b"{}\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE + 2));
        for piece in [4096, MAX_LINE + 8] {
            let read = read_in_pieces(&long, piece, &[]).await;
            assert!(
                matches!(read, Err(IngestError::TooLarge("envelope_line"))),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn the_dsn_key_comes_from_the_query_or_the_auth_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(dsn_key(None, &headers), None);
        assert_eq!(
            dsn_key(Some("sentry_version=7&sentry_key=abc"), &headers).as_deref(),
            Some("abc")
        );
        headers.insert(
            "x-sentry-auth",
            "Sentry sentry_version=7, sentry_key=def ,sentry_client=x/1"
                .parse()
                .unwrap(),
        );
        assert_eq!(dsn_key(None, &headers).as_deref(), Some("def"));
        // The query wins, as Sentry reads it first.
        assert_eq!(
            dsn_key(Some("sentry_key=abc"), &headers).as_deref(),
            Some("abc")
        );
        headers.insert("x-sentry-auth", "Bearer def".parse().unwrap());
        assert_eq!(dsn_key(None, &headers), None);
    }

    #[test]
    fn tags_become_annotations_after_the_apps_own_and_within_the_limit() {
        let limits = |max_annotations| Limits {
            max_annotations,
            ..Limits::default()
        };
        let mut annotations = BTreeMap::from([("env".to_owned(), "app's".to_owned())]);
        add_tags(
            &mut annotations,
            Some(&json!({"env": "tag's", "level": 3, "": "x"})),
            &limits(10),
        );
        assert_eq!(annotations["env"], "app's");
        assert_eq!(annotations["level"], "3");
        assert!(!annotations.contains_key(""));
        add_tags(
            &mut annotations,
            Some(&json!([["a", "1"], ["b"], [2, "x"]])),
            &limits(10),
        );
        assert_eq!(annotations["a"], "1");
        assert_eq!(annotations.len(), 3);
        add_tags(
            &mut annotations,
            Some(&json!({"c": "1", "d": "2"})),
            &limits(4),
        );
        assert_eq!(annotations.len(), 4);
        add_tags(&mut annotations, Some(&json!("not tags")), &limits(10));
        assert_eq!(annotations.len(), 4);
    }

    #[test]
    fn tags_sentry_would_not_take_are_dropped_and_the_rest_kept_within_the_bytes() {
        let long_key = "k".repeat(33);
        let mut annotations = BTreeMap::new();
        add_tags(
            &mut annotations,
            Some(&json!({
                "ok": "v",
                long_key.as_str(): "v",
                "long": "v".repeat(201),
                "k".repeat(32): "ü".repeat(200),
                "lines": "a\nb",
                "é": "v",
                "a b": "v",
                "sentry[release]": "v",
            })),
            &Limits::default(),
        );
        let kept: Vec<&str> = annotations.keys().map(String::as_str).collect();
        assert_eq!(kept, ["k".repeat(32), "ok".to_owned()]);
        // Keys and values within max_annotation_bytes in all: 1,000 tags of
        // 100 bytes against 64 KiB.
        let many: serde_json::Map<String, Value> = (0..1000)
            .map(|i| (format!("tag{i:04}"), json!("x".repeat(93))))
            .collect();
        let limits = Limits {
            max_annotations: 10_000,
            ..Limits::default()
        };
        let mut annotations = BTreeMap::from([("app".to_owned(), "y".repeat(1000))]);
        add_tags(&mut annotations, Some(&Value::Object(many)), &limits);
        let bytes: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes as u64 <= limits.max_annotation_bytes, "{bytes}");
        assert_eq!(annotations.len(), 1 + (64 * 1024 - 1003) / 100);
    }

    #[test]
    fn the_crashpad_handlers_event_file_is_read_as_messagepack() {
        // As sentry-native 0.4.9 writes `__sentry-event` (these bytes, from its
        // example program), with a binary `extra` (a type JSON lacks) beside.
        let bytes = b"\x84\xa7release\xb4test-example-release\
            \xa4user\x82\xa2id*\xa8username\xa9some_name\
            \xa4tags\x81\xacexpected-tag\xaasome value\
            \xa5extra\xc4\x02ab";
        let event = Event::from_msgpack(bytes).unwrap();
        assert_eq!(event.release(), Some("test-example-release"));
        assert_eq!(event.tags(), Some(&json!({"expected-tag": "some value"})));
        assert_eq!(event.event_id(), None);
        // What serializers other than sentry-native's write reads the same.
        let written = rmp_serde::to_vec_named(&json!({
            "event_id": "00112233445566778899aabbccddeeff",
            "release": "app@2.1",
            "breadcrumbs": [{"message": "clicked"}],
        }))
        .unwrap();
        let event = Event::from_msgpack(&written).unwrap();
        assert_eq!(event.event_id(), Some("00112233445566778899aabbccddeeff"));
        assert_eq!(event.release(), Some("app@2.1"));
        assert_eq!(event.tags(), None);
        // JSON is not MessagePack, nor is a cut event.
        assert!(Event::from_msgpack(br#"{"release":"app@1"}"#).is_none());
        assert!(Event::from_msgpack(&bytes[..20]).is_none());
        assert!(Event::from_json(br#"{"release":"app@1"}"#).is_some());
    }

    /// An event nested 1,000 deep (a 1 KB `__sentry-event`) is not one; nested
    /// as deep as its JSON may be, it is. Read with rmp-serde's own limit, the
    /// first overflowed this test's stack (2 MiB, a debug build) and aborted.
    #[test]
    fn an_event_nested_deeper_than_json_may_be_is_refused() {
        let msgpack = |depth: usize| {
            let mut bytes = b"\x82\xa7release\xa5app@1\xa4tags".to_vec();
            bytes.extend(std::iter::repeat_n(0x91, depth));
            bytes.push(0xc0);
            Event::from_msgpack(&bytes)
        };
        let json = |depth: usize| {
            let text = format!(
                r#"{{"release":"app@1","tags":{}null{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            Event::from_json(text.as_bytes())
        };
        let deepest = (1..1000).take_while(|&d| json(d).is_some()).last();
        let deepest = deepest.expect("JSON nests");
        assert!(deepest < 1000 && json(deepest + 1).is_none());
        assert_eq!(msgpack(deepest).unwrap().release(), Some("app@1"));
        assert!(msgpack(1000).is_none());
    }

    #[test]
    fn releases_name_product_and_version() {
        assert_eq!(split_release("app@1.2.3+4"), (Some("app"), "1.2.3+4"));
        assert_eq!(split_release("1.2.3"), (None, "1.2.3"));
        let mut annotations = BTreeMap::from([(PRODUCT.to_owned(), "Own".to_owned())]);
        set_release(&mut annotations, Some("app@2.0"));
        assert_eq!(annotations[PRODUCT], "Own");
        assert_eq!(annotations[VERSION], "2.0");
    }

    /// Releases Sentry would drop are not read: none of a client's text of any
    /// length becomes a product or version.
    #[test]
    fn releases_sentry_drops_name_nothing() {
        let longest = format!("app@{}", "9".repeat(MAX_RELEASE_CHARS - 4));
        for release in [
            "app@1\n2",
            "app@1\t2",
            "app/1.0",
            "app\\1.0",
            ".",
            "..",
            "  ",
            &format!("{longest}9"),
        ] {
            let mut annotations = BTreeMap::new();
            set_release(&mut annotations, Some(release));
            assert!(annotations.is_empty(), "{release:?}: {annotations:?}");
        }
        let mut annotations = BTreeMap::new();
        set_release(&mut annotations, Some(&longest));
        assert_eq!(annotations[VERSION].len(), MAX_RELEASE_CHARS - 4);
    }

    /// An event id is answered as Sentry writes one, or a new one is: never
    /// other text the client sent.
    #[test]
    fn event_ids_are_answered_as_sentry_writes_them() {
        let id = "00112233445566778899aabbccddeeff";
        assert_eq!(event_id_or_new(Some(id)), id);
        assert_eq!(
            event_id_or_new(Some("00112233-4455-6677-8899-AABBCCDDEEFF")),
            id
        );
        for sent in [
            None,
            Some(""),
            Some("abc"),
            Some(&"0".repeat(33)),
            Some(&"x".repeat(32)),
            Some(&"a".repeat(1 << 20)),
        ] {
            let new = event_id_or_new(sent);
            assert!(
                new.len() == 32 && new.bytes().all(|b| b.is_ascii_hexdigit()),
                "{new}"
            );
            assert_ne!(Some(new.as_str()), sent);
        }
    }

    /// The form's event fields go, whichever form the event took; its release
    /// and tags stay as annotations.
    #[test]
    fn a_form_event_leaves_its_release_and_tags_and_no_sentry_field() {
        let limits = Limits::default();
        let msgpack = rmp_serde::to_vec_named(&json!({
            "event_id": "00112233445566778899aabbccddeeff",
            "release": "app@1.0",
            "tags": {"channel": "beta"},
            "user": {"email": "alice@example.org"},
        }))
        .unwrap();
        let mut annotations = BTreeMap::from([("sentry[extra]".to_owned(), "x".to_owned())]);
        let id = apply_form_event(&mut annotations, Some(&msgpack), None, &limits);
        assert_eq!(id, "00112233445566778899aabbccddeeff");
        assert_eq!(
            annotations,
            BTreeMap::from([
                (PRODUCT.to_owned(), "app".to_owned()),
                (VERSION.to_owned(), "1.0".to_owned()),
                ("channel".to_owned(), "beta".to_owned()),
            ])
        );
        let mut annotations = BTreeMap::from([
            ("sentry[release]".to_owned(), "app@2.0".to_owned()),
            ("sentry[tags][os]".to_owned(), "linux".to_owned()),
        ]);
        let id = apply_form_event(&mut annotations, None, Some("Product".to_owned()), &limits);
        assert_eq!(id.len(), 32);
        assert_eq!(annotations[VERSION], "2.0");
        assert_eq!(annotations[PRODUCT], "app");
        assert_eq!(annotations["os"], "linux");
        assert!(!annotations.keys().any(|k| k.starts_with("sentry")));
    }
}

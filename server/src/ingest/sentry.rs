//! What Sentry SDKs send, so an app using sentry-native's crashpad/breakpad
//! backend or a Sentry SDK reports to Mayday by pointing its DSN here:
//!
//! - `POST /api/{project}/minidump/` (sentry-native): the Breakpad form, with the
//!   minidump in `upload_file_minidump` and the event as the `sentry` JSON field
//!   or `sentry[...]` fields.
//! - `POST /api/{project}/envelope/`: an envelope whose `attachment` item of type
//!   `event.minidump` is the dump. Envelopes without one (sessions, plain events,
//!   transactions) are answered and dropped: Mayday keeps crash dumps only.
//!
//! Of the event, only `release` (`name@version`) is kept, as the report's
//! product and version; user, contexts, tags, breadcrumbs and the project and
//! key of the DSN are never stored. The answer is Sentry's `{"id": <event id>}`,
//! with Mayday's `crash_id` and `deletion_token` beside it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mayday_report::upload::SubmitReceipt;
use serde_json::{Value, json};

use super::body::{self, decompressed};
use super::spool::{Spool, Spooler};
use super::upload::upload_from_spool;
use super::{Accepted, IngestError, IngestState, Upload, accept, check_free_space, read_request};

/// The annotation keys a release sets, as the Breakpad form names them.
const PRODUCT: &str = "ProductName";
const VERSION: &str = "Version";
/// The most items an envelope may hold.
const MAX_ITEMS: usize = 100;

/// `name@version` → (name, version); a release without `@` is a version.
fn split_release(release: &str) -> (Option<&str>, &str) {
    match release.split_once('@') {
        Some((name, version)) if !name.is_empty() => (Some(name), version),
        _ => (None, release),
    }
}

/// Sets product and version from a Sentry `release`, the app's own fields first.
fn set_release(annotations: &mut BTreeMap<String, String>, release: Option<&str>) {
    let Some(release) = release.map(str::trim).filter(|r| !r.is_empty()) else {
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
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    check_free_space(&state).inspect_err(|e| state.metrics.rejected(e.name()))?;
    let mut upload = read_request(&headers, body, wire, &state.limits, &state.spooler)
        .await
        .inspect_err(|e| state.metrics.rejected(e.name()))?;
    // The event: the `sentry` JSON field, or `sentry[release]` and the like.
    let event = upload
        .annotations
        .get("sentry")
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let release = event
        .as_ref()
        .and_then(|e| e["release"].as_str().map(str::to_owned))
        .or_else(|| upload.annotations.get("sentry[release]").cloned());
    let event_id = event
        .as_ref()
        .and_then(|e| e["event_id"].as_str().map(str::to_owned))
        .unwrap_or_else(new_event_id);
    // Nothing else of the event is kept.
    upload
        .annotations
        .retain(|key, _| key != "sentry" && !key.starts_with("sentry["));
    set_release(&mut upload.annotations, release.as_deref());
    store(&state, upload, event_id).await
}

/// The longest envelope header, item header or line payload read (an event is
/// a line or a few KiB; a minidump comes with its length and is spooled).
const MAX_LINE: usize = 1024 * 1024;

/// An envelope read as it arrives: lines and length-framed payloads from the
/// (decompressed, size-limited) body stream, holding at most one line or chunk.
struct EnvelopeReader<S> {
    stream: S,
    pending: Vec<u8>,
}

impl<S: futures::Stream<Item = Result<bytes::Bytes, IngestError>> + Unpin> EnvelopeReader<S> {
    /// Reads the next chunk into `pending`; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, IngestError> {
        match self.stream.next().await {
            Some(chunk) => {
                self.pending.extend_from_slice(&chunk?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The next line without its `\n`; `None` at the end.
    async fn line(&mut self) -> Result<Option<Vec<u8>>, IngestError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line = self.pending[..end].to_vec();
                self.pending.drain(..=end);
                return Ok(Some(line));
            }
            if self.pending.len() > MAX_LINE {
                return Err(IngestError::TooLarge("envelope_line"));
            }
            if !self.fill().await? {
                return Ok((!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending)));
            }
        }
    }

    /// Hands the next `len` bytes to `sink` as they come, then drops the `\n`
    /// that may follow.
    async fn payload(&mut self, mut len: u64, mut sink: impl AsyncSink) -> Result<(), IngestError> {
        let malformed = || IngestError::Malformed("envelope");
        while len > 0 {
            if self.pending.is_empty() && !self.fill().await? {
                return Err(malformed());
            }
            let take = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(self.pending.len());
            sink.write(&self.pending[..take]).await?;
            self.pending.drain(..take);
            len -= take as u64;
        }
        if self.pending.is_empty() {
            self.fill().await?;
        }
        if self.pending.first() == Some(&b'\n') {
            self.pending.remove(0);
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

impl AsyncSink for &mut Spool {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        Spool::write(self, bytes).await
    }
}

/// What an envelope brought: its header, the event (if any) and the dump (if
/// an `event.minidump` attachment came).
struct Envelope {
    header: Value,
    event: Option<Value>,
    dump: Option<Spool>,
}

/// Reads an envelope: its header, then items (a header line, then `length`
/// bytes, or one line when no length is given). The first `event.minidump`
/// attachment is spooled (memory-bounded, encrypted on disk past its bound);
/// the event is kept if it is small; everything else is read past.
async fn read_envelope(
    stream: impl futures::Stream<Item = Result<bytes::Bytes, IngestError>> + Unpin,
    spooler: &Arc<Spooler>,
) -> Result<Envelope, IngestError> {
    let malformed = || IngestError::Malformed("envelope");
    let mut reader = EnvelopeReader {
        stream,
        pending: Vec::new(),
    };
    let header = reader.line().await?.ok_or_else(malformed)?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| malformed())?;
    let (mut event, mut dump) = (None, None);
    let mut items = 0;
    while let Some(item) = reader.line().await? {
        if item.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        items += 1;
        if items > MAX_ITEMS {
            return Err(IngestError::TooLarge("envelope_items"));
        }
        let item: Value = serde_json::from_slice(&item).map_err(|_| malformed())?;
        let is_event = item["type"] == "event";
        let is_dump = item["type"] == "attachment"
            && item["attachment_type"] == "event.minidump"
            && dump.is_none();
        match item["length"].as_u64() {
            Some(len) if is_dump => {
                let mut spool = Spool::new(Arc::clone(spooler));
                reader.payload(len, &mut spool).await?;
                dump = Some(spool);
            }
            Some(len) if is_event => {
                let mut bytes = Vec::new();
                reader.payload(len, Small(&mut bytes)).await?;
                event = serde_json::from_slice(&bytes).ok();
            }
            Some(len) => reader.payload(len, Skip).await?,
            None => {
                let payload = reader.line().await?.unwrap_or_default();
                if is_event {
                    event = serde_json::from_slice(&payload).ok();
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
    })
}

/// `POST /api/{project}/envelope/`: an envelope; its `event.minidump`
/// attachment becomes a report.
pub(super) async fn envelope(
    State(state): State<IngestState>,
    Extension(wire): Extension<Arc<body::WireStats>>,
    body: Body,
) -> Result<Response, IngestError> {
    check_free_space(&state).inspect_err(|e| state.metrics.rejected(e.name()))?;
    let stream = decompressed(
        body,
        wire,
        state.limits.max_decompressed_bytes,
        state.limits.max_compression_ratio,
    );
    let envelope = read_envelope(stream, &state.spooler)
        .await
        .inspect_err(|e| state.metrics.rejected(e.name()))?;
    let event_id = envelope.header["event_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(new_event_id);
    let Some(dump) = envelope.dump else {
        // Not a crash with a dump: answered, nothing kept.
        return Ok(answer(event_id, None));
    };
    let mut annotations = BTreeMap::new();
    set_release(
        &mut annotations,
        envelope.event.as_ref().and_then(|e| e["release"].as_str()),
    );
    let upload =
        upload_from_spool(dump, annotations).inspect_err(|e| state.metrics.rejected(e.name()))?;
    store(&state, upload, event_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(body: &'static [u8]) -> Result<Envelope, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let spooler = Arc::new(Spooler::new(dir.path(), &crate::config::Limits::default()));
        let chunks: Vec<Result<bytes::Bytes, IngestError>> = body
            .chunks(3)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        read_envelope(futures::stream::iter(chunks), &spooler).await
    }

    #[tokio::test]
    async fn envelopes_with_and_without_lengths() {
        let body = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\"}\n{\"release\":\"app@1.2\"}\n{\"type\":\"attachment\",\"length\":6,\"attachment_type\":\"event.minidump\"}\nMD\nMP\n{\"type\":\"session\",\"length\":2}\n{}";
        let envelope = read(body).await.unwrap();
        assert_eq!(envelope.header["event_id"], "abc");
        assert_eq!(envelope.event.unwrap()["release"], "app@1.2");
        assert_eq!(
            envelope.dump.unwrap().into_vec(0).await.unwrap(),
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

    #[test]
    fn releases_name_product_and_version() {
        assert_eq!(split_release("app@1.2.3+4"), (Some("app"), "1.2.3+4"));
        assert_eq!(split_release("1.2.3"), (None, "1.2.3"));
        let mut annotations = BTreeMap::from([(PRODUCT.to_owned(), "Own".to_owned())]);
        set_release(&mut annotations, Some("app@2.0"));
        assert_eq!(annotations[PRODUCT], "Own");
        assert_eq!(annotations[VERSION], "2.0");
    }
}

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
use super::upload::upload_from_bytes;
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

/// One item of an envelope: its header and payload.
struct Item<'a> {
    header: Value,
    payload: &'a [u8],
}

/// Splits off one line (without its `\n`).
fn line(rest: &mut &[u8]) -> Option<Vec<u8>> {
    if rest.is_empty() {
        return None;
    }
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = rest[..end].to_vec();
    *rest = rest.get(end + 1..).unwrap_or_default();
    Some(line)
}

/// Parses an envelope: its header, then items (a header line, then `length`
/// bytes, or one line when no length is given).
fn parse_envelope(body: &[u8]) -> Result<(Value, Vec<Item<'_>>), IngestError> {
    let bad = || IngestError::Malformed("envelope");
    let mut rest = body;
    let header: Value =
        serde_json::from_slice(&line(&mut rest).ok_or_else(bad)?).map_err(|_| bad())?;
    let mut items = Vec::new();
    while !rest.is_empty() {
        let Some(item_header) = line(&mut rest) else {
            break;
        };
        if item_header.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item_header: Value = serde_json::from_slice(&item_header).map_err(|_| bad())?;
        let payload = match item_header["length"].as_u64() {
            Some(len) => {
                let len = usize::try_from(len).map_err(|_| bad())?;
                let payload = rest.get(..len).ok_or_else(bad)?;
                rest = &rest[len..];
                if rest.first() == Some(&b'\n') {
                    rest = &rest[1..];
                }
                payload
            }
            None => {
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let payload = &rest[..end];
                rest = rest.get(end + 1..).unwrap_or_default();
                payload
            }
        };
        items.push(Item {
            header: item_header,
            payload,
        });
        if items.len() > MAX_ITEMS {
            return Err(IngestError::TooLarge("envelope_items"));
        }
    }
    Ok((header, items))
}

/// `POST /api/{project}/envelope/`: an envelope; its `event.minidump`
/// attachment becomes a report.
pub(super) async fn envelope(
    State(state): State<IngestState>,
    Extension(wire): Extension<Arc<body::WireStats>>,
    body: Body,
) -> Result<Response, IngestError> {
    check_free_space(&state).inspect_err(|e| state.metrics.rejected(e.name()))?;
    let mut stream = decompressed(
        body,
        wire,
        state.limits.max_decompressed_bytes,
        state.limits.max_compression_ratio,
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.inspect_err(|e| state.metrics.rejected(e.name()))?;
        bytes.extend_from_slice(&chunk);
    }
    let (header, items) =
        parse_envelope(&bytes).inspect_err(|e| state.metrics.rejected(e.name()))?;
    let event = items
        .iter()
        .find(|i| i.header["type"] == "event")
        .and_then(|i| serde_json::from_slice::<Value>(i.payload).ok());
    let event_id = header["event_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(new_event_id);
    let Some(dump) = items.iter().find(|i| {
        i.header["type"] == "attachment" && i.header["attachment_type"] == "event.minidump"
    }) else {
        // Not a crash with a dump: answered, nothing kept.
        return Ok(answer(event_id, None));
    };
    let mut annotations = BTreeMap::new();
    set_release(
        &mut annotations,
        event.as_ref().and_then(|e| e["release"].as_str()),
    );
    let upload = upload_from_bytes(dump.payload, annotations, &state.spooler)
        .await
        .inspect_err(|e| state.metrics.rejected(e.name()))?;
    drop(bytes);
    store(&state, upload, event_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_with_and_without_lengths() {
        let body = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\"}\n{\"release\":\"app@1.2\"}\n{\"type\":\"attachment\",\"length\":6,\"attachment_type\":\"event.minidump\"}\nMD\nMP\n";
        let (header, items) = parse_envelope(body).unwrap();
        assert_eq!(header["event_id"], "abc");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].payload, b"{\"release\":\"app@1.2\"}");
        assert_eq!(items[1].payload, b"MD\nMP\n");
        for bad in [
            &b""[..],
            b"not json\n",
            b"{}\n{\"type\":\"attachment\",\"length\":99}\nshort",
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad:?}");
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

//! Symbol upload and download: `POST /api/v1/symbols` for release engineers, and
//! the Breakpad symbol-server layout `/symbols/<debug_file>/<DEBUG_ID>/<file>.sym`
//! for `minidump-stackwalk --symbols-url` and the `mayday-symbols upload` CLI.
//!
//! An upload is a `.sym` (plain or gzip, by `Content-Encoding: gzip` or its magic
//! bytes; the debug file from `?debug_file=` or else the MODULE line), or a zip of
//! `<debug_file>/<debug_id>/<file>.sym` entries as Mozilla's Tecken takes it
//! (`Content-Type: application/zip` or the zip magic); either may also come as the
//! file of a `multipart/form-data` form (Tecken's `curl --form`). Everything is checked before
//! anything is written: one bad entry refuses the whole upload with a 400 (413 for
//! a size limit) and a JSON `{"error", "reason"}`. Stored symbols are invalidated in
//! this process's caches, and every report that lacked them is queued for
//! reprocessing (the worker moves it to the issue of its new signature).

use std::collections::BTreeSet;
use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mayday_symbols::{SymbolId, UploadError, symbol_key};
use object_store::ObjectStoreExt as _;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::{ApiError, SymbolsError};
use super::query::ApiQuery;
use crate::index::{Role, now_ms};
use crate::triage::TriageState;

/// Roles that may upload symbols.
pub const UPLOADERS: &[Role] = &[Role::Admin, Role::Uploader];

/// Query of `POST /api/v1/symbols`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The debug file the `.sym` is for, as the minidump records it (`libc.so.6`,
    /// `xul.pdb`); without it, the MODULE line's name. Ignored for zips, whose
    /// paths name it.
    pub debug_file: Option<String>,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZIP_MAGIC: &[&[u8]] = &[b"PK\x03\x04", b"PK\x05\x06"];

/// Reads the body, refusing more than `max` bytes.
async fn read_body(headers: &HeaderMap, body: Body, max: u64) -> Result<Vec<u8>, SymbolsError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(SymbolsError::BodyTooLarge(max));
    }
    // A declared length is only a hint: never reserve more than 16 MiB on its word.
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(max).min(16 << 20) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SymbolsError::Body(format!("reading the body: {e}")))?;
        if (out.len() + chunk.len()) as u64 > max {
            return Err(SymbolsError::BodyTooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The first file part of a `multipart/form-data` body held in memory, and its
/// file name.
async fn file_part(content_type: &str, body: Vec<u8>) -> Result<(Vec<u8>, String), SymbolsError> {
    let bad = |e: multer::Error| SymbolsError::Body(format!("bad multipart body: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let body = bytes::Bytes::from(body);
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let Some(name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let bytes = field.bytes().await.map_err(bad)?;
        return Ok((bytes.to_vec(), name));
    }
    Err(SymbolsError::Body(
        "the form has no file part: send the .sym or .zip as a file".to_owned(),
    ))
}

/// What an upload holds once decoded and checked.
fn check_upload(
    body: Vec<u8>,
    declared_gzip: bool,
    declared_zip: bool,
    debug_file: Option<&str>,
    limits: &mayday_symbols::UploadLimits,
) -> Result<Vec<(SymbolId, bytes::Bytes)>, SymbolsError> {
    let body = if body.starts_with(GZIP_MAGIC) {
        // Either kind may come gzipped; the decompressed size is bounded.
        let limit = limits.max_file_bytes.max(limits.max_total_bytes);
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(UploadError::Gzip)?;
        if out.len() as u64 > limit {
            return Err(UploadError::TooLarge {
                what: "decompressed body".to_owned(),
                limit,
            }
            .into());
        }
        out
    } else if declared_gzip {
        return Err(UploadError::Gzip(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "Content-Encoding says gzip but the body is not",
        ))
        .into());
    } else {
        body
    };
    let body = bytes::Bytes::from(body);
    if declared_zip || ZIP_MAGIC.iter().any(|m| body.starts_with(m)) {
        Ok(mayday_symbols::read_symbol_zip_with(body, limits)?)
    } else {
        let (id, sym) = mayday_symbols::parse_sym_upload_with(body, debug_file, limits)?;
        Ok(vec![(id, sym)])
    }
}

/// `POST /api/v1/symbols` (role uploader or admin): stores a `.sym` or a zip of
/// them and queues the reprocessing of every report that lacked them. Answers
/// `{"stored": [{"debug_file", "debug_id", "file", "bytes"}], "reprocessing": n}`.
#[utoipa::path(post, path = "/api/v1/symbols", params(UploadQuery),
    request_body(content = Vec<u8>, description = "A `.sym` file or a zip of them (optionally gzip-encoded), or a form with one.",
        content_type = "application/octet-stream"), responses(
    (status = 200, description = "Stored.", body = super::schemas::SymbolUpload),
    (status = 400, description = "Not a symbol file (`reason` says why).", body = super::error::ErrorBody),
    (status = 413, description = "Over a size limit.", body = super::error::ErrorBody),
))]
pub async fn upload(
    State(state): State<TriageState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SymbolsError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let declared_gzip = match encoding.as_deref() {
        None | Some("identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(SymbolsError::Body(format!(
                "unsupported Content-Encoding {other:?}: send gzip or nothing"
            )));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let mut declared_zip = mime.eq_ignore_ascii_case("application/zip")
        || mime.eq_ignore_ascii_case("application/x-zip-compressed");
    let limits = state.symbol_uploads().clone();
    let mut raw = read_body(&headers, body, limits.max_wire_bytes).await?;
    if mime.eq_ignore_ascii_case("multipart/form-data") {
        // Tecken's form upload (`curl --form file.zip=@file.zip`): the first file part.
        if declared_gzip {
            return Err(SymbolsError::Body(
                "a gzip-encoded form is not supported: gzip the file instead".to_owned(),
            ));
        }
        let (file, name) = file_part(&content_type, raw).await?;
        declared_zip = name.to_ascii_lowercase().ends_with(".zip");
        raw = file;
    }
    let debug_file = query.debug_file.filter(|f| !f.is_empty());
    let checked = tokio::task::spawn_blocking(move || {
        check_upload(
            raw,
            declared_gzip,
            declared_zip,
            debug_file.as_deref(),
            &limits.checks(),
        )
    })
    .await
    .map_err(|e| SymbolsError::Internal(format!("checking the upload: {e}")))??;

    // Everything is checked: now store it all.
    let symbols = state.symbols();
    let mut stored = Vec::new();
    for (id, sym) in &checked {
        symbols.store().put(id, sym.clone()).await?;
        stored.push(json!({
            "debug_file": id.debug_file,
            "debug_id": id.debug_id,
            "file": id.sym_name(),
            "key": symbol_key(id).to_string(),
            "bytes": sym.len(),
        }));
    }
    // Counted before the reports lacking them are looked up: a worker that starts
    // on one of those reports after this sees the new count and forgets what it
    // remembers as missing; one that started before queues the report again.
    state.index().count_symbol_upload().await?;
    let mut reports = BTreeSet::new();
    for (id, _) in &checked {
        symbols.invalidate(id);
        let lacking = state
            .index()
            .reports_missing_symbols(&id.debug_file, &id.debug_id)
            .await?;
        reports.extend(lacking);
    }
    let now = now_ms();
    for report in &reports {
        state.index().enqueue_job(report, now).await?;
    }
    if !reports.is_empty() {
        state.wake_workers();
    }
    let paths: Vec<String> = checked.iter().map(|(id, _)| id.rel_path()).collect();
    let shown: Vec<&str> = paths.iter().take(20).map(String::as_str).collect();
    let more = paths.len().saturating_sub(shown.len());
    let detail = format!(
        "stored {} file(s), {} report(s) queued for reprocessing: {}{}",
        paths.len(),
        reports.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    state
        .index()
        .audit(
            &caller.token_id,
            "symbols.upload",
            paths.first().map_or("", String::as_str),
            Some(&detail),
        )
        .await?;
    tracing::info!(
        files = paths.len(),
        reprocessing = reports.len(),
        "symbols uploaded"
    );
    Ok(Json(json!({ "stored": stored, "reprocessing": reports.len() })).into_response())
}

/// The symbol file a download path names, or the answer when it names none: 400
/// for parts that cannot be a symbol id, 404 for a file name that is not the id's
/// `.sym`.
fn download_id(debug_file: &str, debug_id: &str, file: &str) -> Result<SymbolId, ApiError> {
    let id =
        SymbolId::new(debug_file, debug_id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if file != id.sym_name() {
        return Err(ApiError::NotFound);
    }
    Ok(id)
}

fn sym_headers(len: u64) -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(len)),
    ]
}

/// A 503 for a store failure (logged by [`ApiError`]).
fn store_unavailable(e: object_store::Error) -> ApiError {
    ApiError::from(crate::storage::StorageError::from(e))
}

/// `HEAD /symbols/{debug_file}/{debug_id}/{file}`: 200 with the length when the
/// symbol file is stored, 404 otherwise (public, as a symbol server is).
#[utoipa::path(head, path = "/symbols/{debug_file}/{debug_id}/{file}", responses(
    (status = 200, description = "Stored: its length."),
    (status = 404, description = "Not stored."),
))]
pub async fn head(
    State(state): State<TriageState>,
    Path((debug_file, debug_id, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let id = download_id(&debug_file, &debug_id, &file)?;
    match state.storage().object_store().head(&symbol_key(&id)).await {
        Ok(meta) => Ok((StatusCode::OK, sym_headers(meta.size)).into_response()),
        Err(object_store::Error::NotFound { .. }) => Ok(StatusCode::NOT_FOUND.into_response()),
        Err(e) => Err(store_unavailable(e)),
    }
}

/// `GET /symbols/{debug_file}/{debug_id}/{file}`: the `.sym`, streamed from the
/// store; 404 when absent (public, as a symbol server is).
#[utoipa::path(get, path = "/symbols/{debug_file}/{debug_id}/{file}", responses(
    (status = 200, description = "The `.sym` file.", content_type = "text/plain", body = String),
    (status = 400, description = "Not a symbol id.", body = super::error::ErrorBody),
    (status = 404, description = "Not stored.", body = super::error::ErrorBody),
))]
pub async fn download(
    State(state): State<TriageState>,
    Path((debug_file, debug_id, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let id = download_id(&debug_file, &debug_id, &file)?;
    match state.storage().object_store().get(&symbol_key(&id)).await {
        Ok(result) => {
            // The route is public, as symbol servers are: audited as `public`.
            state
                .index()
                .audit("public", "symbols.download", &id.rel_path(), None)
                .await?;
            let len = result.meta.size;
            let stream = result.into_stream();
            Ok((StatusCode::OK, sym_headers(len), Body::from_stream(stream)).into_response())
        }
        Err(object_store::Error::NotFound { .. }) => Err(ApiError::NotFound),
        Err(e) => Err(store_unavailable(e)),
    }
}

//! Fuzzes the upload body parsers behind `POST /submit` and a Sentry envelope's
//! route: a body of any shape — raw, gzip-wrapped, multipart/form-data or
//! multipart/mixed, a Sentry envelope, arriving in chunks of any size — goes
//! through the ingest routes' body layers (the wire limit, the wire watch, gzip
//! decompression) into the parser (`ingest::parser_router`), with small limits. It must never panic, and what it accepts keeps to the limits: a
//! dump within the decompressed limit, annotations within their size and count,
//! parts within their count. A body read in one piece and the same body read in
//! chunks give the same upload.
//!
//! Input: a mode byte (bits 0-2 the `Content-Type`, bits 3-4 the encoding, bit 5
//! the envelope route), a chunk-size byte (0: one chunk), then the body; with `Content-Type` choice 7 the
//! body starts with the `Content-Type` value, up to a newline.

#![no_main]

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, header};
use libfuzzer_sys::fuzz_target;
use mayday_server::config::Limits;
use mayday_server::ingest::{IngestError, Spooler, Upload, clear_spool, parser_router};
use tower::ServiceExt;

/// Small limits: every input is cheap and reaches them often. Dumps over 4 KiB
/// go to the encrypted spool file.
static LIMITS: LazyLock<Limits> = LazyLock::new(|| Limits {
    max_wire_bytes: 32 << 10,
    max_decompressed_bytes: 16 << 10,
    max_annotation_bytes: 1 << 10,
    max_annotations: 16,
    max_parts: 8,
    max_part_header_bytes: 1 << 10,
    spool_memory_bytes: 4 << 10,
    spool_memory_total_bytes: 8 << 10,
    ..Limits::default()
});

/// The data dir the spool lives in, for the whole run.
static DATA_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    clear_spool(dir.path()).unwrap();
    dir
});

static SPOOLER: LazyLock<Arc<Spooler>> =
    LazyLock::new(|| Arc::new(Spooler::new(DATA_DIR.path(), &LIMITS)));

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
});

/// The `Content-Type` choices; the seeds' multipart bodies use this boundary.
const CONTENT_TYPES: [Option<&str>; 7] = [
    None,
    Some("application/octet-stream"),
    Some("multipart/form-data; boundary=mayday-fuzz"),
    Some("multipart/mixed; boundary=mayday-fuzz"),
    Some("application/x-minidump"),
    Some("multipart/form-data; boundary=\"mayday-fuzz\""),
    Some("Multipart/Form-Data; charset=utf-8; boundary=mayday-fuzz"),
];

/// How the body travels.
#[derive(Clone, Copy)]
enum Encoding {
    /// As is, without a `Content-Length`.
    Plain,
    /// Gzip-compressed here, sent with `Content-Encoding: gzip`.
    Gzipped,
    /// As is, but declared `Content-Encoding: gzip` (bad streams, bombs).
    DeclaredGzip,
    /// As is, with `Content-Encoding: identity` and a `Content-Length`.
    Sized,
}

/// One request through the body layers into the parser; `None` when a layer
/// answered before the parser ran.
fn read(
    path: &str,
    content_type: Option<&str>,
    encoding: Encoding,
    body: &[u8],
    chunk: usize,
) -> Option<Result<Upload, IngestError>> {
    let wire = match encoding {
        Encoding::Gzipped => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body).unwrap();
            gz.finish().unwrap()
        }
        _ => body.to_vec(),
    };
    let chunks: Vec<Result<Bytes, Infallible>> = if chunk == 0 {
        vec![Ok(Bytes::from(wire))]
    } else {
        wire.chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    };
    let mut request = Request::post(path);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request = match encoding {
        Encoding::Plain => request,
        Encoding::Gzipped | Encoding::DeclaredGzip => {
            request.header(header::CONTENT_ENCODING, "gzip")
        }
        Encoding::Sized => request
            .header(header::CONTENT_ENCODING, "identity")
            .header(header::CONTENT_LENGTH, body.len()),
    };
    let request = request
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();

    let slot = Arc::new(Mutex::new(None));
    let parser = parser_router(LIMITS.clone(), Duration::from_secs(60), SPOOLER.clone(), {
        let slot = Arc::clone(&slot);
        move |upload| *slot.lock().unwrap() = Some(upload)
    });
    let response = RUNTIME.block_on(parser.oneshot(request)).unwrap();
    let upload = slot.lock().unwrap().take();
    if let Some(upload) = &upload {
        let expected = upload
            .as_ref()
            .map_or_else(IngestError::status, |_| http::StatusCode::NO_CONTENT);
        assert_eq!(response.status(), expected);
    }
    upload
}

/// Checks an accepted upload against the limits.
fn check_limits(upload: &Upload) {
    assert!((4..=LIMITS.max_decompressed_bytes).contains(&upload.dump.len()));
    let annotation_bytes: usize = upload
        .annotations
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    assert!(
        annotation_bytes as u64 <= LIMITS.max_annotation_bytes,
        "{annotation_bytes} bytes of annotations"
    );
    assert!(upload.annotations.len() <= LIMITS.max_annotations);
    assert!(upload.dropped_attachments.len() < LIMITS.max_parts);
    let dropped: u64 = upload.dropped_attachments.iter().map(|a| a.1).sum();
    assert!(dropped <= LIMITS.max_decompressed_bytes);
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, rest @ ..] = data else {
        return;
    };
    let (content_type, body) = match CONTENT_TYPES.get(usize::from(mode & 7)) {
        Some(content_type) => (content_type.map(str::to_owned), rest),
        None => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let value = String::from_utf8_lossy(&rest[..end]).into_owned();
            (Some(value), rest.get(end + 1..).unwrap_or_default())
        }
    };
    // A value the header map refuses never reaches the server.
    if content_type
        .as_deref()
        .is_some_and(|v| http::HeaderValue::from_str(v).is_err())
    {
        return;
    }
    let encoding = match (mode >> 3) & 3 {
        0 => Encoding::Plain,
        1 => Encoding::Gzipped,
        2 => Encoding::DeclaredGzip,
        _ => Encoding::Sized,
    };
    let path = if mode & 32 == 0 {
        "/submit"
    } else {
        "/envelope"
    };
    let content_type = content_type.as_deref();
    let chunked = read(path, content_type, encoding, body, usize::from(*chunk));
    if let Some(Ok(chunked)) = &chunked {
        check_limits(chunked);
        if *chunk != 0
            && let Some(Ok(whole)) = read(path, content_type, encoding, body, 0)
        {
            check_limits(&whole);
            assert_eq!(
                chunked.dump.len(),
                whole.dump.len(),
                "dump size by chunking"
            );
            assert_eq!(chunked.annotations, whole.annotations);
            assert_eq!(chunked.dropped_attachments, whole.dropped_attachments);
            assert_eq!(chunked.text_attachments, whole.text_attachments);
        }
    }
});

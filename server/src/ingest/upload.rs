//! Reading an upload: multipart (form-data or mixed) or a raw minidump body, after
//! whole-body decompression, streamed with limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use mayday_report::scrub::{TextAttachmentRule, attachment_text};
use mayday_report::upload::{EXTRA_FIELD, MINIDUMP_FIELD};

use super::body::{Gate, HeaderBudget, WireStats, decompressed};
use super::error::IngestError;
use super::spool::{Spool, Spooler};
use crate::config::Limits;

/// A parsed upload: the minidump, spooled, and annotations.
#[derive(Debug)]
pub struct Upload {
    /// The minidump bytes, in memory or encrypted in the data dir.
    pub dump: Spool,
    /// Text parts and the entries of the `extra` JSON (a text or a file part);
    /// the handler adds the query-string fields.
    pub annotations: BTreeMap<String, String>,
    /// Other file parts that were received and dropped: (field name, size).
    pub dropped_attachments: Vec<(String, u64)>,
    /// Text attachments a rule keeps (field name, text), not scrubbed yet: held in
    /// memory only, each within its rule's size.
    pub text_attachments: Vec<(String, String)>,
    /// The file parts the route asked to keep (a Sentry event), by field name: read
    /// into memory for the route to take what it needs from, never stored.
    pub kept_files: BTreeMap<&'static str, Vec<u8>>,
}

/// A file part a route reads into memory instead of dropping it unread (the
/// event that sentry-native's Crashpad handler attaches as `__sentry-event`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptFile {
    /// The part's field name; the first part of that name is kept, any later
    /// one is dropped as other attachments are.
    pub name: &'static str,
    /// The most bytes it may have: a larger part refuses the upload as too large.
    pub max_bytes: usize,
    /// What the refusal names (`Discarded=too_large_<what>`).
    pub what: &'static str,
}

/// What an upload's reader keeps of the file parts other than the dump; every
/// other file part is dropped unread.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keep<'a> {
    /// File parts the route reads into memory for itself (a Sentry event).
    pub files: &'a [KeptFile],
    /// Text attachments the deployment keeps (`[[scrub.text_attachments]]`).
    pub texts: &'a [TextAttachmentRule],
}

/// The `MDMP` magic, little-endian as minidumps start.
const MDMP_MAGIC: &[u8; 4] = b"MDMP";

/// What kind of body this is, from its `Content-Type`.
enum BodyKind {
    Multipart { boundary: String },
    Raw,
}

fn body_kind(content_type: Option<&str>) -> Result<BodyKind, IngestError> {
    let Some(content_type) = content_type else {
        return Ok(BodyKind::Raw);
    };
    let mut parts = content_type.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" | "multipart/mixed" => {
            let boundary = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty())
                .ok_or(IngestError::Malformed("multipart_boundary"))?;
            Ok(BodyKind::Multipart { boundary })
        }
        "application/octet-stream" | "application/x-dmp" | "application/x-minidump" | "" => {
            Ok(BodyKind::Raw)
        }
        _ => Err(IngestError::Malformed("content_type")),
    }
}

/// Reads an upload from `body` (already decompressed by the layer in front;
/// `wire` counts what came over the wire; `expected` is its length as the
/// request gave it, the room the dump's spool makes at once), keeping the file
/// parts `keep` names (text attachments only if they are text within their
/// rule's size).
pub(crate) async fn read_upload(
    content_type: Option<&str>,
    expected: Option<u64>,
    body: Body,
    wire: Arc<WireStats>,
    limits: &Limits,
    spooler: &Arc<Spooler>,
    keep: Keep<'_>,
) -> Result<Upload, IngestError> {
    let kind = body_kind(content_type)?;
    let stream = decompressed(
        body,
        wire,
        limits.max_decompressed_bytes,
        limits.max_compression_ratio,
    );
    match kind {
        BodyKind::Raw => {
            let dump = spool(stream, spooler, expected).await?;
            check_magic(&dump)?;
            Ok(Upload {
                dump,
                annotations: BTreeMap::new(),
                dropped_attachments: Vec::new(),
                text_attachments: Vec::new(),
                kept_files: BTreeMap::new(),
            })
        }
        BodyKind::Multipart { boundary } => {
            read_multipart(stream, boundary, expected, limits, spooler, keep).await
        }
    }
}

async fn read_multipart(
    stream: impl Stream<Item = Result<Bytes, IngestError>> + Send + Unpin + 'static,
    boundary: String,
    expected: Option<u64>,
    limits: &Limits,
    spooler: &Arc<Spooler>,
    keep: Keep<'_>,
) -> Result<Upload, IngestError> {
    let budget = HeaderBudget::new(limits.max_part_header_bytes);
    // multer wants an error type it can box; keep ours to recover it afterwards.
    let stream = Gate::new(stream, Arc::clone(&budget)).map_err(BoxedIngest);
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.max_decompressed_bytes)
            .per_field(limits.max_decompressed_bytes),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut dump = None;
    let mut annotations = BTreeMap::new();
    let mut annotation_bytes = 0u64;
    let mut dropped_attachments = Vec::new();
    let mut text_attachments: Vec<(String, String)> = Vec::new();
    let mut kept_files = BTreeMap::new();
    let mut parts = 0usize;

    loop {
        budget.start();
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multer_error(e)),
        };
        budget.stop();
        parts += 1;
        if parts > limits.max_parts {
            return Err(IngestError::TooLarge("parts"));
        }
        let name = field.name().unwrap_or("").to_owned();
        let is_file = field.file_name().is_some();
        if name == MINIDUMP_FIELD {
            if dump.is_some() {
                return Err(IngestError::Malformed("duplicate_minidump"));
            }
            let spooled = spool(field.map_err(multer_error), spooler, expected).await?;
            dump = Some(spooled);
        } else if let Some(kept) = keep
            .files
            .iter()
            .find(|k| is_file && k.name == name && !kept_files.contains_key(k.name))
        {
            let mut bytes = Vec::new();
            let mut field = field;
            while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                if bytes.len() + chunk.len() > kept.max_bytes {
                    return Err(IngestError::TooLarge(kept.what));
                }
                bytes.extend_from_slice(&chunk);
            }
            kept_files.insert(kept.name, bytes);
        } else if is_file && name != EXTRA_FIELD {
            // Attachments are not kept — opaque bytes we cannot scrub — unless a
            // rule names this one (once) and it is text within the rule's size.
            let rule = keep.texts.iter().find(|rule| rule.field == name);
            let wanted = rule.filter(|_| !text_attachments.iter().any(|(n, _)| *n == name));
            let mut size = 0u64;
            let mut kept = wanted.map(|_| Vec::new());
            let mut field = field;
            while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                size += chunk.len() as u64;
                if let (Some(bytes), Some(rule)) = (kept.as_mut(), wanted) {
                    if size > rule.max_bytes {
                        kept = None;
                    } else {
                        bytes.extend_from_slice(&chunk);
                    }
                }
            }
            match kept.as_deref().map(attachment_text) {
                Some(Ok(text)) => text_attachments.push((name, text.to_owned())),
                _ => dropped_attachments.push((name, size)),
            }
        } else {
            // A text part, or Firefox's `extra` JSON, which it sends as a file.
            let max_left = limits.max_annotation_bytes.saturating_sub(annotation_bytes);
            let mut value = Vec::new();
            let mut field = field;
            while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                if (value.len() + chunk.len()) as u64 > max_left {
                    return Err(IngestError::TooLarge("annotations"));
                }
                value.extend_from_slice(&chunk);
            }
            annotation_bytes += (name.len() + value.len()) as u64;
            if annotation_bytes > limits.max_annotation_bytes {
                return Err(IngestError::TooLarge("annotations"));
            }
            let value = String::from_utf8(value)
                .map_err(|_| IngestError::Malformed("annotation_not_utf8"))?;
            if name == EXTRA_FIELD {
                merge_extra(&mut annotations, &value)?;
                // Non-string values are kept as their JSON text, which can be
                // longer than sent (`9E15` is kept as `9000000000000000.0`): the
                // limit is on what is kept.
                let kept: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
                if kept as u64 > limits.max_annotation_bytes {
                    return Err(IngestError::TooLarge("annotations"));
                }
            } else if !name.is_empty() {
                annotations.insert(name, value);
            }
            if annotations.len() > limits.max_annotations {
                return Err(IngestError::TooLarge("annotations"));
            }
        }
    }
    let dump = dump.ok_or(IngestError::Malformed("no_minidump"))?;
    check_magic(&dump)?;
    Ok(Upload {
        dump,
        annotations,
        dropped_attachments,
        text_attachments,
        kept_files,
    })
}

/// Merges Firefox's `extra` part — a JSON object of annotations — into `out`.
/// Non-string values are kept as their JSON text.
fn merge_extra(out: &mut BTreeMap<String, String>, text: &str) -> Result<(), IngestError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| IngestError::Malformed("extra_json"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(IngestError::Malformed("extra_json"));
    };
    for (key, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        out.insert(key, text);
    }
    Ok(())
}

#[derive(Debug)]
struct BoxedIngest(IngestError);

impl std::fmt::Display for BoxedIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BoxedIngest {}

fn multer_error(error: multer::Error) -> IngestError {
    match error {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<BoxedIngest>() {
            Ok(ours) => ours.0,
            Err(_) => IngestError::Malformed("body_encoding"),
        },
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            IngestError::TooLarge("decompressed")
        }
        _ => IngestError::Malformed("multipart"),
    }
}

/// Spools a stream of about `expected` bytes (its size is bounded by the
/// decompressed limit upstream).
async fn spool(
    mut stream: impl Stream<Item = Result<Bytes, IngestError>> + Unpin,
    spooler: &Arc<Spooler>,
    expected: Option<u64>,
) -> Result<Spool, IngestError> {
    let mut spool = Spool::with_expected(Arc::clone(spooler), expected);
    while let Some(chunk) = stream.next().await {
        spool.write(&chunk?).await?;
    }
    Ok(spool)
}

/// An upload from a dump already spooled (a Sentry envelope's attachment) and
/// its annotations.
pub(crate) fn upload_from_spool(
    dump: Spool,
    annotations: BTreeMap<String, String>,
) -> Result<Upload, IngestError> {
    check_magic(&dump)?;
    Ok(Upload {
        dump,
        annotations,
        dropped_attachments: Vec::new(),
        text_attachments: Vec::new(),
        kept_files: BTreeMap::new(),
    })
}

fn check_magic(dump: &Spool) -> Result<(), IngestError> {
    if dump.is_empty() {
        Err(IngestError::Malformed("empty_minidump"))
    } else if dump.len() < 4 || &dump.head() != MDMP_MAGIC {
        Err(IngestError::Malformed("not_a_minidump"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(matches!(
            body_kind(Some("multipart/form-data; boundary=abc")),
            Ok(BodyKind::Multipart { boundary }) if boundary == "abc"
        ));
        assert!(matches!(
            body_kind(Some("multipart/mixed; boundary=\"x y\"")),
            Ok(BodyKind::Multipart { boundary }) if boundary == "x y"
        ));
        assert!(matches!(body_kind(None), Ok(BodyKind::Raw)));
        assert!(matches!(
            body_kind(Some("multipart/form-data")),
            Err(IngestError::Malformed("multipart_boundary"))
        ));
        assert!(matches!(
            body_kind(Some("text/html")),
            Err(IngestError::Malformed("content_type"))
        ));
    }

    /// Reads `body`, a `multipart/form-data` body with boundary `b`, with `limits`.
    async fn read_form(body: String, limits: &Limits) -> Result<Upload, IngestError> {
        read_form_keeping(body, limits, Keep::default()).await
    }

    /// [`read_form`], keeping what `keep` names.
    async fn read_form_keeping(
        body: String,
        limits: &Limits,
        keep: Keep<'_>,
    ) -> Result<Upload, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let spooler = Arc::new(Spooler::new(dir.path(), limits));
        let content_type = Some("multipart/form-data; boundary=b");
        let expected = Some(body.len() as u64);
        read_upload(
            content_type,
            expected,
            Body::from(body),
            Arc::default(),
            limits,
            &spooler,
            keep,
        )
        .await
    }

    #[tokio::test]
    async fn a_rule_keeps_a_text_attachment_within_its_size_and_drops_the_rest() {
        let keep = [
            TextAttachmentRule {
                field: "log".to_owned(),
                max_bytes: 16,
            },
            TextAttachmentRule {
                field: "binary".to_owned(),
                max_bytes: 16,
            },
            TextAttachmentRule {
                field: "big".to_owned(),
                max_bytes: 4,
            },
        ];
        let part = |name: &str, body: &str| {
            format!(
                "--b\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.txt\"\r\n\r\n{body}\r\n"
            )
        };
        let body = [
            part("log", "line one\nline 2"),
            part("log", "again"),
            part("binary", "MZ\0\0"),
            part("big", "too long"),
            part("screenshot", "png"),
            "--b\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; \
             filename=\"d\"\r\n\r\nMDMP\r\n--b--\r\n"
                .to_owned(),
        ]
        .concat();
        let keep = Keep {
            texts: &keep,
            ..Keep::default()
        };
        let upload = read_form_keeping(body, &Limits::default(), keep)
            .await
            .unwrap();
        assert_eq!(
            upload.text_attachments,
            [("log".to_owned(), "line one\nline 2".to_owned())]
        );
        assert_eq!(
            upload.dropped_attachments,
            [
                ("log".to_owned(), 5),
                ("binary".to_owned(), 4),
                ("big".to_owned(), 8),
                ("screenshot".to_owned(), 3)
            ]
        );
    }

    /// Reads a form of an `extra` part with `entries` numbers and a minidump.
    async fn read_extra_numbers(
        entries: usize,
        max_annotation_bytes: u64,
    ) -> Result<Upload, IngestError> {
        let limits = Limits {
            max_annotation_bytes,
            ..Limits::default()
        };
        let extra: Vec<String> = (0..entries).map(|i| format!("\"{i:02x}\":9E15")).collect();
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"extra\"\r\n\r\n{{{}}}\r\n\
             --b\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; \
             filename=\"d\"\r\n\r\nMDMP\r\n--b--\r\n",
            extra.join(",")
        );
        read_form(body, &limits).await
    }

    #[tokio::test]
    async fn the_annotation_limit_counts_extra_values_as_kept() {
        // 80 entries: 800 bytes sent, 1600 kept (each `9E15` as `9000000000000000.0`).
        let read = read_extra_numbers(80, 1024).await;
        assert!(
            matches!(read, Err(IngestError::TooLarge("annotations"))),
            "{read:?}"
        );
        let upload = read_extra_numbers(80, 2048).await.unwrap();
        assert_eq!(upload.annotations["4f"], "9000000000000000.0");
    }

    /// Reads `body` (lines ending `\n`, sent as `\r\n`) with the default limits.
    async fn read(body: &str) -> Result<Upload, IngestError> {
        read_form(body.replace('\n', "\r\n"), &Limits::default()).await
    }

    #[tokio::test]
    async fn firefox_sends_extra_as_a_file_and_it_is_read() {
        // The shape of Firefox's crash reporter: `extra` a file part, the
        // memory report an attachment.
        let upload = read(concat!(
            "--b\n",
            "Content-Disposition: form-data; name=\"extra\"; filename=\"extra.json\"\n",
            "Content-Type: application/json\n\n",
            r#"{"ProductName":"Firefox","Version":"128.0","StartupCrash":"0"}"#,
            "\n--b\n",
            "Content-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"a.dmp\"\n",
            "Content-Type: application/octet-stream\n\n",
            "MDMP\0\0\0\0",
            "\n--b\n",
            "Content-Disposition: form-data; name=\"memory_report\"; filename=\"m.json.gz\"\n\n",
            "gz",
            "\n--b--\n",
        ))
        .await
        .unwrap();
        assert_eq!(upload.annotations["ProductName"], "Firefox");
        assert_eq!(upload.annotations["Version"], "128.0");
        assert_eq!(upload.annotations["StartupCrash"], "0");
        assert!(!upload.annotations.contains_key("extra"));
        assert_eq!(
            upload.dropped_attachments,
            vec![("memory_report".to_owned(), 2)]
        );
        // A file part that is not JSON is refused, as a text part is.
        let bad = read(concat!(
            "--b\n",
            "Content-Disposition: form-data; name=\"extra\"; filename=\"extra.json\"\n\n",
            "not json",
            "\n--b--\n",
        ))
        .await;
        assert!(matches!(bad, Err(IngestError::Malformed("extra_json"))));
    }

    /// A form like sentry-native's Crashpad handler sends: the event and two
    /// breadcrumb files beside the dump.
    /// Keeps the file parts `files` name.
    fn files(files: &[KeptFile]) -> Keep<'_> {
        Keep {
            files,
            ..Keep::default()
        }
    }

    fn sentry_form(event: &str) -> String {
        concat!(
            "--b\n",
            "Content-Disposition: form-data; name=\"__sentry-breadcrumb1\"; filename=\"__sentry-breadcrumb1\"\n\n",
            "crumbs",
            "\n--b\n",
            "Content-Disposition: form-data; name=\"__sentry-event\"; filename=\"__sentry-event\"\n\n",
            "EVENT",
            "\n--b\n",
            "Content-Disposition: form-data; name=\"__sentry-event\"; filename=\"__sentry-event\"\n\n",
            "second",
            "\n--b\n",
            "Content-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"a.dmp\"\n\n",
            "MDMP\0\0\0\0",
            "\n--b--\n",
        )
        .replace("EVENT", event)
        .replace('\n', "\r\n")
    }

    #[tokio::test]
    async fn file_parts_a_route_names_are_kept_in_memory_within_their_bound() {
        let event = KeptFile {
            name: "__sentry-event",
            max_bytes: 8,
            what: "sentry_event",
        };
        let limits = Limits::default();
        let upload = read_form_keeping(sentry_form("\u{85}12345"), &limits, files(&[event]))
            .await
            .unwrap();
        // The bytes as sent, of the first part of that name only.
        assert_eq!(
            upload.kept_files["__sentry-event"],
            "\u{85}12345".as_bytes()
        );
        assert_eq!(
            upload.dropped_attachments,
            vec![
                ("__sentry-breadcrumb1".to_owned(), 6),
                ("__sentry-event".to_owned(), 6)
            ]
        );
        assert!(upload.annotations.is_empty());
        // Past its bound the upload is refused, naming it.
        let big = read_form_keeping(sentry_form("123456789"), &limits, files(&[event])).await;
        assert!(
            matches!(big, Err(IngestError::TooLarge("sentry_event"))),
            "{big:?}"
        );
        // A route that keeps nothing drops it as any attachment.
        let upload = read_form(sentry_form("123456789"), &limits).await.unwrap();
        assert!(upload.kept_files.is_empty());
        assert_eq!(upload.dropped_attachments.len(), 3);
    }

    #[test]
    fn extra_json_merges_and_rejects_non_objects() {
        let mut out = BTreeMap::new();
        merge_extra(&mut out, r#"{"ProductName":"Firefox","Uptime":3}"#).unwrap();
        assert_eq!(out["ProductName"], "Firefox");
        assert_eq!(out["Uptime"], "3");
        assert!(merge_extra(&mut out, "[1]").is_err());
        assert!(merge_extra(&mut out, "{").is_err());
    }
}

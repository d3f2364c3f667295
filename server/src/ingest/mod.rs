//! The upload endpoint, Breakpad/Crashpad compatible: `POST /submit` and
//! `POST /api/v1/submit`.
//!
//! The reply `200` goes out only after the dump and its metadata are durably in the
//! object store and the processing job is in the index; anything short of that
//! answers an error and leaves nothing behind.

mod body;
mod crash_sites;
mod error;
mod sentry;
mod spool;
mod stream;
mod upload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mayday_report::crash_site::CRASH_SITES_PATH;
use mayday_report::scrub::{
    CutStacks, ScrubConfig, ScrubSummary, TextAttachment, TextAttachmentRule,
    scrub_and_cut_stack_memory, scrub_annotations, scrub_attachment,
};
use mayday_report::upload::{PRODUCT_KEYS, SubmitReceipt, VERSION_KEYS};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use error::IngestError;
pub use sentry::apply_form_event;
pub use spool::{Spool, Spooler, clear_spool};
use stream::{NotStreamed, Streamed};
pub use upload::Upload;
use upload::{Keep, KeptFile, read_upload};

use crate::config::{CrashSitesConfig, Limits, SentryConfig};
use crate::index::{Index, Intake, NewReport, now_ms};
use crate::metrics::{Metrics, Stage};
use crate::pipeline::Wake;
use crate::report_id::ReportId;
use crate::throttle::{self, Throttle};
use crate::tokens;
use crate::vault::{self, RAW_HEADROOM, RawMeta, Vault};

/// What the upload endpoint needs; cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    /// Where the scrubbed dump and its metadata are sealed.
    pub vault: Vault,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Upload size limits.
    pub limits: Limits,
    /// What is scrubbed before anything is stored.
    pub scrub: Arc<ScrubConfig>,
    /// Wakes the workers of this process once a report is queued.
    pub wake: Wake,
    /// An upload body that sends nothing for this long is answered `408`.
    pub body_idle_timeout: Duration,
    /// Where uploads wait for the scrubber, and the memory they may take.
    pub spooler: Arc<Spooler>,
    /// The per-sender rate limit and the throttle rules.
    pub throttle: Throttle,
    /// Records received reports, many uploads to one index commit.
    pub intake: Intake,
    /// The index, for crash-site summaries.
    pub index: Index,
    /// Whether crash-site summaries are answered, and how many dumps are wanted.
    pub crash_sites: Arc<CrashSitesConfig>,
    /// Which Sentry DSN keys the Sentry endpoints accept.
    pub sentry: Arc<SentryConfig>,
}

/// The ingest routes, with their own body limits: the wire limit applies to the
/// body as sent, the decompressed limit to what it inflates to. The per-sender
/// rate limit comes first, before any of the body is read.
pub fn router<S: Clone + Send + Sync + 'static>(state: IngestState) -> Router<S> {
    let routes = Router::new()
        .route("/submit", post(submit))
        .route("/api/v1/submit", post(submit))
        // What Sentry SDKs send (sentry-native's minidump upload, envelopes
        // with a minidump attachment): ingest/sentry.rs.
        .route("/api/{project}/minidump/", post(sentry::minidump))
        .route("/api/{project}/envelope/", post(sentry::envelope))
        // A crash-site summary before the dump: ingest/crash_sites.rs.
        .route(CRASH_SITES_PATH, post(crash_sites::answer));
    body_layers(routes, &state.limits, state.body_idle_timeout)
        .layer(axum::middleware::from_fn_with_state(
            state.throttle.clone(),
            throttle::limit_senders,
        ))
        .with_state(state)
}

/// The upload parsers alone, behind the same body layers as [`router`]: `POST
/// /submit` reads the upload as the ingest routes do, `POST /envelope` a Sentry
/// envelope as its route does (keeping the text attachment `log` up to 64
/// bytes); each hands the outcome to `parsed` (an envelope without a dump: not
/// at all), storing nothing, then answers `204` (an envelope without a dump:
/// `200`) or the refusal's status. For fuzzing the parsers with their real limits
/// and the layers in front of them.
pub fn parser_router(
    limits: Limits,
    body_idle_timeout: Duration,
    spooler: Arc<Spooler>,
    parsed: impl Fn(Result<Upload, IngestError>) + Clone + Send + Sync + 'static,
) -> Router {
    let routes = Router::new()
        .route(
            "/submit",
            post({
                let (limits, spooler, parsed) =
                    (limits.clone(), Arc::clone(&spooler), parsed.clone());
                move |Extension(wire): Extension<Arc<body::WireStats>>,
                      headers: HeaderMap,
                      body: Body| async move {
                    let upload =
                        read_request(&headers, body, wire, &limits, &spooler, Keep::default())
                            .await;
                    let status = upload
                        .as_ref()
                        .map_or_else(IngestError::status, |_| StatusCode::NO_CONTENT);
                    parsed(upload);
                    status
                }
            }),
        )
        .route(
            "/envelope",
            post({
                let limits = limits.clone();
                move |Extension(wire): Extension<Arc<body::WireStats>>, body: Body| async move {
                    let stream = body::decompressed(
                        body,
                        wire,
                        limits.max_decompressed_bytes,
                        limits.max_compression_ratio,
                    );
                    let keep = [TextAttachmentRule {
                        field: "log".to_owned(),
                        max_bytes: 64,
                    }];
                    let read =
                        sentry::envelope_upload(stream, &spooler, &keep, None, &limits).await;
                    match read {
                        Ok((_, None)) => StatusCode::OK,
                        Ok((_, Some(upload))) => {
                            parsed(Ok(upload));
                            StatusCode::NO_CONTENT
                        }
                        Err(e) => {
                            let status = e.status();
                            parsed(Err(e));
                            status
                        }
                    }
                }
            }),
        );
    body_layers(routes, &limits, body_idle_timeout)
}

/// The layers every upload body passes before the parser, innermost first: gzip
/// decompression; the wire watch, between the size limit and decompression
/// (counts wire bytes for the compression ratio, times out an idle body); the
/// wire size limit.
fn body_layers<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    limits: &Limits,
    idle: Duration,
) -> Router<S> {
    let max_wire_bytes = usize::try_from(limits.max_wire_bytes).unwrap_or(usize::MAX);
    routes
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(idle, body::watch_wire))
        .layer(RequestBodyLimitLayer::new(max_wire_bytes))
        .layer(DefaultBodyLimit::disable())
}

/// Reads the upload of a request with these headers, keeping the file parts
/// `keep` names in memory (other attachments are dropped).
async fn read_request(
    headers: &HeaderMap,
    body: Body,
    wire: Arc<body::WireStats>,
    limits: &Limits,
    spooler: &Arc<Spooler>,
    keep: Keep<'_>,
) -> Result<Upload, IngestError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // The body's length on the wire: about the dump's, or less when compressed.
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    read_upload(content_type, expected, body, wire, limits, spooler, keep).await
}

impl IngestState {
    /// Reads the upload of a request with these headers, with this server's
    /// limits, spool and text attachment rules, keeping the file parts `files`
    /// names in memory for the route.
    async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        wire: Arc<body::WireStats>,
        files: &[KeptFile],
    ) -> Result<Upload, IngestError> {
        let keep = Keep {
            files,
            texts: &self.scrub.text_attachments,
        };
        read_request(headers, body, wire, &self.limits, &self.spooler, keep).await
    }
}

/// What became of an upload that was read whole.
enum Accepted {
    /// Stored durably: the receipt.
    Stored(SubmitReceipt),
    /// Turned away by a throttle rule, with its answer; nothing stored.
    Refused(Response),
}

/// The throttle rules, then durable storage, for an upload read whole (from any
/// of the upload routes).
async fn accept(state: &IngestState, upload: Upload) -> Result<Accepted, IngestError> {
    // The throttle rules decide before anything of the upload is stored.
    let (product, version) = (
        first_of(&upload.annotations, PRODUCT_KEYS),
        first_of(&upload.annotations, VERSION_KEYS),
    );
    if let Some(refusal) =
        state
            .throttle
            .check_upload(product.as_deref(), version.as_deref(), &upload.annotations)
    {
        return Ok(Accepted::Refused(refusal.into_response()));
    }
    let receipt = store_upload(state, upload).await.inspect_err(|e| {
        state.metrics.rejected(e.name());
    })?;
    state.metrics.ingested();
    state.wake.wake();
    Ok(Accepted::Stored(receipt))
}

async fn submit(
    State(state): State<IngestState>,
    Extension(wire): Extension<Arc<body::WireStats>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    if let Err(e) = check_free_space(&state) {
        state.metrics.rejected(e.name());
        return Err(e);
    }
    let mut timer = state.metrics.timer();
    let upload = state.read(&headers, body, wire, &[]).await;
    timer.done(Stage::Receive);
    let mut upload = match upload {
        Ok(upload) => upload,
        Err(e) => {
            state.metrics.rejected(e.name());
            return Err(e);
        }
    };
    // Crashpad's handler URL carries product, version (and guid) in the query.
    if let Some(query) = query {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            upload
                .annotations
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        if upload.annotations.len() > state.limits.max_annotations {
            let e = IngestError::TooLarge("annotations");
            state.metrics.rejected(e.name());
            return Err(e);
        }
    }
    let receipt = match accept(&state, upload).await? {
        Accepted::Stored(receipt) => receipt,
        Accepted::Refused(refusal) => return Ok(refusal),
    };

    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    Ok(if wants_json {
        (StatusCode::OK, axum::Json(receipt)).into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            receipt.to_text(),
        )
            .into_response()
    })
}

/// Refuses uploads while the local file store's disk is below its free-space
/// floor: a full disk would fail them half-way, and starve the index.
fn check_free_space(state: &IngestState) -> Result<(), IngestError> {
    let floor = state.limits.min_free_bytes;
    let Some(root) = state.vault.storage().local_root() else {
        return Ok(());
    };
    if floor == 0 {
        return Ok(());
    }
    match nix::sys::statvfs::statvfs(root) {
        Ok(stat) => {
            let free = stat.blocks_available().saturating_mul(stat.fragment_size());
            if free < floor {
                Err(IngestError::LowDiskSpace { free })
            } else {
                Ok(())
            }
        }
        // Cannot tell: the write itself will say.
        Err(_) => Ok(()),
    }
}

/// Seals and stores the dump with its metadata, then records the report with its
/// data key and its job in one index commit (shared with concurrent uploads). Until that commit the data key is
/// only in memory: a crash before it leaves ciphertext nothing can open. On any
/// failure, removes what it wrote.
async fn store_upload(state: &IngestState, upload: Upload) -> Result<SubmitReceipt, IngestError> {
    let id = ReportId::new();
    let received = time::OffsetDateTime::now_utc();
    let received_at = now_ms();
    let mut timer = state.metrics.timer();
    let Upload {
        dump,
        annotations,
        dropped_attachments,
        text_attachments,
        ..
    } = upload;
    // A dump up to the threshold in memory whole (uploads in memory together
    // are bounded), else a window at a time (stream.rs).
    let streamed = dump.len() > state.limits.stream_dump_bytes;
    let dump_len = dump.len();
    let mut memory = Some(
        state
            .spooler
            .scrub_permit(if streamed {
                stream::STREAMED_MEMORY
            } else {
                dump_len
            })
            .await,
    );
    let dump = dump.into_reader().await?;

    // Scrub before the first write: no unscrubbed byte is ever stored.
    let scrub_config = Arc::clone(&state.scrub);
    let (annotations, text_attachments, summary) =
        scrub_texts(annotations, text_attachments, &scrub_config);
    let product = first_of(&annotations, PRODUCT_KEYS);
    let version = first_of(&annotations, VERSION_KEYS);
    let meta = RawMeta {
        id: id.to_string(),
        received_at,
        annotations,
        dropped_attachments,
        text_attachments,
        scrub: summary,
    };

    let (token, token_hash) = tokens::new_secret();
    // The dump and its metadata in one object (`RawUpload`): one durable put.
    let raw_key = vault::raw_dump_key(received.date(), &id);
    let vault = &state.vault;
    let (data_key, wrapped_key) = vault.new_key(&id);
    let (stack_key, wrapped_stack_key) = vault.new_stack_key(&id);
    let report = NewReport {
        id,
        received_at,
        product,
        version,
        deletion_token_hash: token_hash,
        raw_key: raw_key.to_string(),
        meta_key: raw_key.to_string(),
        data_key: wrapped_key,
        stack_key: Some(wrapped_stack_key),
    };

    let mut summary = ScrubSummary::default();
    let stored = async {
        let mut whole = Streamed {
            reader: dump,
            meta,
            data_key,
            stack_key,
        };
        if streamed {
            match stream::store_streamed(vault, &raw_key, Arc::clone(&scrub_config), whole).await {
                Ok(scrubbed) => {
                    summary = scrubbed;
                    timer.done(Stage::Scrub);
                    timer.done(Stage::Store);
                    return record(state, &mut timer, report).await;
                }
                Err(NotStreamed::Whole(back)) => {
                    // Scrubbed whole after all: the memory of the whole dump,
                    // waited for with the window's permit given back first.
                    drop(memory.take());
                    memory = Some(state.spooler.scrub_permit(dump_len).await);
                    whole = *back;
                }
                Err(NotStreamed::Failed(e)) => return Err(e),
            }
        }
        let scrubbed = scrub_whole(whole, scrub_config).await?;
        timer.done(Stage::Scrub);
        let sealed = Vault::seal_raw_in_place(
            &raw_key,
            &scrubbed.data_key,
            &scrubbed.stack_key,
            scrubbed.dump,
            &scrubbed.meta_json,
            &scrubbed.stacks,
        )?;
        summary = scrubbed.summary;
        timer.done(Stage::Seal);
        vault.put_sealed(sealed).await?;
        timer.done(Stage::Store);
        record(state, &mut timer, report).await
    }
    .await;
    if let Err(e) = stored {
        // A commit whose answer was lost may still have happened: then the
        // report is recorded, durably, and its blobs are its own.
        if matches!(e, IngestError::Index(_))
            && matches!(vault.index().report(&id).await, Ok(Some(_)))
        {
            tracing::warn!(report = %id, error = %e, "report recorded despite the error");
        } else {
            // Leave nothing half-written behind (the key never reached the
            // index, so what is left could not be read either).
            let _ = vault.delete(&raw_key).await;
            return Err(e);
        }
    }
    drop(memory);
    tracing::info!(report = %id, "report received");
    Ok(SubmitReceipt {
        crash_id: id.to_string(),
        deletion_token: token,
        view_url: None,
        scrubbed: summary,
    })
}

/// Records a report whose blobs are durable: the key, the row and the job,
/// together, in a commit shared with the uploads that arrived meanwhile.
async fn record(
    state: &IngestState,
    timer: &mut crate::metrics::StageTimer<'_>,
    report: NewReport,
) -> Result<(), IngestError> {
    let recorded = state.intake.record(report).await;
    timer.done(Stage::Index);
    recorded.map_err(IngestError::from)
}

/// The annotations and text attachments of an upload scrubbed by their rules,
/// and what was removed.
fn scrub_texts(
    mut annotations: BTreeMap<String, String>,
    texts: Vec<(String, String)>,
    config: &ScrubConfig,
) -> (BTreeMap<String, String>, Vec<TextAttachment>, ScrubSummary) {
    let mut summary = ScrubSummary::default();
    scrub_annotations(&mut annotations, &config.annotations, &mut summary);
    let attachments = texts
        .into_iter()
        .map(|(field, text)| TextAttachment {
            text: scrub_attachment(&text, &config.annotations, &mut summary),
            field,
        })
        .collect();
    (annotations, attachments, summary)
}

/// A dump scrubbed whole, to be sealed.
struct ScrubbedWhole {
    /// The dump (after [`RAW_HEADROOM`]), its stack memory cut out.
    dump: Vec<u8>,
    stacks: CutStacks,
    /// The upload's metadata, as JSON.
    meta_json: Vec<u8>,
    /// The upload's whole summary.
    summary: ScrubSummary,
    data_key: crate::crypto::DataKey,
    stack_key: crate::crypto::DataKey,
}

/// Scrubs the whole dump in memory and cuts its stack memory out, for the
/// report's raw object in the `MDR2` form.
async fn scrub_whole(
    upload: Streamed,
    config: Arc<ScrubConfig>,
) -> Result<ScrubbedWhole, IngestError> {
    tokio::task::spawn_blocking(move || {
        let mut dump = upload.reader.into_vec(RAW_HEADROOM)?;
        let (summary, stacks) = scrub_dump(&mut dump, &config);
        let mut meta = upload.meta;
        meta.scrub.merge(&summary);
        let meta_json = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
        Ok(ScrubbedWhole {
            dump,
            stacks,
            meta_json,
            summary: meta.scrub,
            data_key: upload.data_key,
            stack_key: upload.stack_key,
        })
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Scrubs the dump in `buf` (after [`RAW_HEADROOM`]) in place and cuts its stack
/// memory out, to be sealed under its own key. A dump the scrubber cannot read
/// (an `MDMP` header with nothing usable behind it) cannot be processed either;
/// it is kept only as its magic and zeros, with no stacks, so the report ends
/// `failed` without storing anything of it.
fn scrub_dump(
    buf: &mut Vec<u8>,
    config: &mayday_report::scrub::ScrubConfig,
) -> (ScrubSummary, CutStacks) {
    match scrub_and_cut_stack_memory(buf, RAW_HEADROOM, config) {
        Ok(scrubbed) => scrubbed,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable minidump zeroed");
            let mut summary = ScrubSummary::default();
            if let Some(rest) = buf.get_mut(RAW_HEADROOM + 4..) {
                rest.fill(0);
                summary.add("unreadable_dump_bytes", rest.len() as u64);
            }
            (summary, CutStacks::default())
        }
    }
}

fn first_of(annotations: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| annotations.get(*k))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

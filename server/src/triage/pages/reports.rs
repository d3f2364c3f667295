//! The report page (developers), the dump download, and the CrashID lookup
//! (support: metadata only, never contents).

use axum::extract::{Path, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageResult, fmt_time, layout};
use crate::index::{ReportRow, ReportState};
use crate::pipeline::report::{Frame, ProcessedReport};
use crate::pipeline::stored::{self, Stored};
use crate::report_id::ReportId;
use crate::triage::auth::Caller;
use crate::triage::error::PageError;
use crate::triage::query::PageQuery;
use crate::triage::{TriageState, api};

/// The processed report of `row`, if it is processed and stored; `None` too
/// while one lost to a power cut is made again ([`stored::read_processed`]
/// queues that; the workers are woken here).
pub async fn load_processed(
    state: &TriageState,
    row: &ReportRow,
) -> Result<Option<ProcessedReport>, PageError> {
    if row.state != ReportState::Processed {
        return Ok(None);
    }
    match stored::read_processed(state.vault(), state.index(), &row.id).await? {
        Stored::Report(bytes) => Ok(Some(stored::decode(&bytes)?)),
        Stored::Reprocessing { queued } => {
            if queued {
                state.wake_workers();
            }
            Ok(None)
        }
        Stored::Missing => Ok(None),
    }
}

async fn load_row(state: &TriageState, id: &str) -> Result<(ReportId, ReportRow), PageError> {
    Ok(api::load_row(state, id).await?)
}

/// A stack as a table: frame, module, function, file:line; inlined calls first.
pub fn stack_table(frames: &[Frame]) -> Markup {
    html! {
        table.stack {
            thead { tr { th.num { "#" } th { "Module" } th { "Function" } th { "Source" } th { "Trust" } } }
            tbody {
                @for frame in frames {
                    @for inline in &frame.inlines {
                        tr {
                            td.num.muted { (frame.frame) }
                            td.mono { (frame.module.as_deref().unwrap_or("")) }
                            td.mono.function { (inline.function) " " span.muted { "(inlined)" } }
                            td.mono { (source(inline.file.as_deref(), inline.line)) }
                            td.muted { "inline" }
                        }
                    }
                    tr {
                        td.num { (frame.frame) }
                        td.mono { (frame.module.as_deref().unwrap_or("")) }
                        td.mono.function {
                            @match &frame.function {
                                Some(f) => (f),
                                None => span.muted {
                                    @match &frame.module_offset { Some(o) => { "+" (o.to_string()) }, None => (frame.offset.to_string()) }
                                },
                            }
                        }
                        td.mono { (source(frame.file.as_deref(), frame.line)) }
                        td.muted { (frame.trust) }
                    }
                }
            }
        }
    }
}

fn source(file: Option<&str>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.to_owned(),
        _ => String::new(),
    }
}

/// `GET /reports/{id}`: the whole processed report (audited).
pub async fn show(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    // This server as the browser reached it, for the upload command.
    let scheme = if state.secure_cookies() {
        "https"
    } else {
        "http"
    };
    let server = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || "<this server>".to_owned(),
            |host| format!("{scheme}://{host}"),
        );
    let (_, row) = load_row(&state, &id).await?;
    let processed = load_processed(&state, &row).await?;
    state
        .index()
        .audit(&caller.token_id, "report.read", &row.id.to_string(), None)
        .await?;
    let issue = match row.issue_id {
        Some(issue_id) => state.index().issue(issue_id).await?,
        None => None,
    };
    let body = html! {
        @if let Some(issue) = &issue {
            p { a href=(format!("/issues/{}", issue.id)) { "← " (issue.title) } }
        }
        h1.mono { (row.id) }
        div.card {
            dl.meta {
                dt { "State" } dd { (row.state.as_str()) @if let Some(f) = &row.failure { " — " (f) } }
                dt { "Crash reason" } dd.mono id="crash-reason" { (row.facts.crash_reason.as_deref().unwrap_or("")) }
                dt { "Crash address" } dd.mono { (row.facts.crash_address.as_deref().unwrap_or("")) }
                dt { "Product" } dd { (row.facts.product.as_deref().unwrap_or("")) " " (row.facts.version.as_deref().unwrap_or("")) }
                dt { "OS" } dd { (row.facts.os.as_deref().unwrap_or("")) " " (row.facts.os_version.as_deref().unwrap_or("")) " " (row.facts.cpu_arch.as_deref().unwrap_or("")) }
                dt { "Received" } dd { (fmt_time(row.received_at)) }
                @if let Some(at) = row.processed_at { dt { "Processed" } dd { (fmt_time(at)) } }
                dt { "Dump" } dd { a href=(format!("/reports/{}/minidump", row.id)) id="download" { "Download the scrubbed minidump" } }
            }
        }
        @match &processed {
            None => p.muted { "This report has no processed data (yet)." },
            Some(report) => {
                h2 { "Crashing thread" }
                @match &report.crashing_thread {
                    Some(thread) => {
                        p.muted { "Thread " (thread.thread_id) @if let Some(n) = &thread.name { " (" (n) ")" } }
                        (stack_table(&thread.frames))
                    }
                    None => p.muted { "No crashing thread." },
                }
                // What to act on comes first: the symbols that would name more frames.
                @if !report.missing_symbols.is_empty() {
                    h2 id="missing-symbols" { "Missing symbols" }
                    p { "Frames in these modules have no function names. Upload their symbols "
                        "from the build that shipped (the binaries with debug info, or their "
                        "debug files), with an uploader token:" }
                    pre.mono id="upload-command" {
                        "mayday-symbols upload <folder with "
                        (report.missing_symbols.iter().map(|m| m.debug_file.as_str()).collect::<Vec<_>>().join(", "))
                        "> --server " (server) " --token $MAYDAY_TOKEN"
                    }
                    ul { @for m in &report.missing_symbols { li.mono { (m.debug_file) " " (m.debug_id) } } }
                }
                @let others = report.threads.len().saturating_sub(usize::from(report.crashing_thread_index.is_some()));
                details id="other-threads" {
                    summary { h2 { "Other threads (" (others) ")" } }
                    @for (i, thread) in report.threads.iter().enumerate() {
                        @if Some(i) != report.crashing_thread_index {
                            details {
                                summary { "Thread " (thread.thread_id) @if let Some(n) = &thread.name { " (" (n) ")" } " · " (thread.frames.len()) " frames" }
                                (stack_table(&thread.frames))
                            }
                        }
                    }
                }
                h2 { "Modules" }
                table {
                    thead { tr { th { "Module" } th { "Version" } th { "Debug file" } th { "Debug id" } th { "Base" } th { "Symbols" } } }
                    tbody {
                        @for m in &report.modules {
                            tr {
                                td.mono title=(m.code_file) { (m.filename) }
                                td { (m.version.as_deref().unwrap_or("")) }
                                td.mono { (m.debug_file.as_deref().unwrap_or("")) }
                                td.mono { (m.debug_id.as_deref().unwrap_or("")) }
                                td.mono { (m.base_address) }
                                td { @if m.loaded_symbols { "loaded" } @else if m.missing_symbols { span.error { "missing" } } @else { "—" } }
                            }
                        }
                    }
                }
                h2 { "Scrubbed before storage" }
                @if report.scrub.removed.is_empty() { p.muted { "Nothing needed scrubbing." } } @else {
                    table id="scrub" {
                        thead { tr { th { "What" } th.num { "Count" } } }
                        tbody { @for (kind, n) in &report.scrub.removed { tr { td.mono { (kind) } td.num { (n) } } } }
                    }
                }
                h2 { "Annotations (scrubbed)" }
                @if report.annotations.is_empty() { p.muted { "None." } } @else {
                    table {
                        tbody { @for (k, v) in &report.annotations { tr { td.mono { (k) } td.mono { (v) } } } }
                    }
                }
                @for attachment in &report.text_attachments {
                    h2 { "Attachment " code { (attachment.field) } " (scrubbed)" }
                    pre.mono { (attachment.text) }
                }
            }
        }
    };
    super::ok(layout(&row.id.to_string(), Some(&caller), body))
}

/// `GET /reports/{id}/minidump`: the stored (scrubbed) dump (audited).
pub async fn minidump(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<String>,
) -> PageResult {
    Ok(api::minidump_download(&state, &caller, &id).await?)
}

/// Query of the lookup page.
#[derive(Debug, Default, Deserialize)]
pub struct LookupQuery {
    /// The CrashID (`bp-…`) a user quoted.
    pub id: Option<String>,
}

/// `GET /lookup?id=bp-…`: a report's state, product, version, date and issue
/// title — for support staff, so never frames, modules, annotations or the dump.
pub async fn lookup(
    State(state): State<TriageState>,
    caller: Caller,
    PageQuery(query): PageQuery<LookupQuery>,
) -> PageResult {
    let wanted = query.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let found = match wanted {
        Some(text) => match text.trim_start_matches("CrashID=").parse::<ReportId>() {
            Ok(id) => state.index().report(&id).await?,
            Err(_) => None,
        },
        None => None,
    };
    let issue_title = match found.as_ref().and_then(|r| r.issue_id) {
        Some(issue_id) => state.index().issue(issue_id).await?.map(|i| i.title),
        None => None,
    };
    if let Some(row) = &found {
        state
            .index()
            .audit(&caller.token_id, "report.lookup", &row.id.to_string(), None)
            .await?;
    }
    let body = html! {
        h1 { "Find a report" }
        form.filters method="get" action="/lookup" {
            label { "CrashID" input name="id" id="crash-id" size="48" value=(wanted.unwrap_or("")) placeholder="bp-…"; }
            button type="submit" { "Find" }
        }
        @if let Some(text) = wanted {
            @match &found {
                None => p.error id="not-found" { "No report " code { (text) } " is stored. It may have been deleted (resolved issue, retention, or the user's request)." },
                Some(row) => div.card id="report" {
                    dl.meta {
                        dt { "CrashID" } dd.mono { (row.id) }
                        dt { "State" } dd { (row.state.as_str()) }
                        dt { "Product" } dd { (row.facts.product.as_deref().unwrap_or("")) }
                        dt { "Version" } dd { (row.facts.version.as_deref().unwrap_or("")) }
                        dt { "Received" } dd { (fmt_time(row.received_at)) }
                        dt { "Issue" } dd { (issue_title.as_deref().unwrap_or("—")) }
                    }
                },
            }
        }
    };
    super::ok(layout("Find a report", Some(&caller), body))
}

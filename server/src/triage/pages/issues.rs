//! The issues list and the issue page.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart::{self, Size, Stacks};
use super::reports::{load_processed, stack_table};
use super::session::{CheckedForm, CsrfForm, WithCsrf};
use super::{PageResult, bars, csrf_field, fmt_time, layout};
use crate::index::{IssueStatus, ProductDay};
use crate::lifecycle::{self, Emptying};
use crate::triage::TriageState;
use crate::triage::api::{IssueQuery, IssueSelection};
use crate::triage::auth::Caller;
use crate::triage::error::{ApiError, PageError};
use crate::triage::query::{self, PageQuery};
use crate::triage::search::ReportSelection;
use crate::triage::trends::{self, Window};

const PAGE_SIZE: i64 = 25;

/// The report filters of the issues list's form: query key, label, field size.
const REPORT_FILTERS: [(&str, &str, u8); 10] = [
    ("product", "Product", 12),
    ("version", "Version", 8),
    ("min_version", "Version ≥", 8),
    ("os", "OS", 8),
    ("os_version", "OS version", 10),
    ("crash_reason", "Crash reason", 14),
    ("module", "Module", 12),
    ("annotation", "Annotation key=value", 14),
    ("since", "From (day)", 10),
    ("until", "To (day)", 10),
];

/// The value the form shows for filter `name`.
fn filter_value(selection: &ReportSelection, name: &str) -> String {
    selection
        .pairs()
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Days of the charts on the issues list (each issue's, and each product's).
const LIST_DAYS: i64 = 30;

/// Days of the chart on an issue's page.
const ISSUE_DAYS: i64 = 90;

/// The most products the issues list draws a chart of (the busiest).
const PRODUCT_CHARTS: usize = 4;

/// Each product's crashes per day in `window` (the busiest [`PRODUCT_CHARTS`]):
/// what the issues list, where a developer starts, opens with.
fn product_trends(window: Window, rows: &[ProductDay]) -> Markup {
    let mut products: Vec<(&str, Stacks)> = Vec::new();
    for row in rows {
        let at = match products.iter().position(|(p, _)| *p == row.product) {
            Some(at) => at,
            None => {
                products.push((&row.product, Stacks::reports_and_counted(window)));
                products.len() - 1
            }
        };
        products[at].1.add(row.day, 0, row.reports);
        products[at].1.add(row.day, 1, row.counted);
    }
    products.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(b.0)));
    let shown = products.len().min(PRODUCT_CHARTS);
    html! {
        section id="product-trends" {
            @if products.is_empty() {
                p.muted { "No crashes in the last " (window.days) " days." }
            } @else {
                (chart::legend("product-legend", &products[0].1))
                div.trends {
                    @for (at, (product, stacks)) in products[..shown].iter().enumerate() {
                        @let name = if product.is_empty() { "(unknown product)" } else { product };
                        div.card {
                            h2 { (name) span.muted { " · crashes per day, last " (window.days) " days" } }
                            (chart::chart(&format!("product-chart-{at}"), stacks, Size::Large, &format!("{name}: crashes per day")))
                        }
                    }
                }
                @if products.len() > shown {
                    p.muted { (products.len() - shown) " more products; filter by product to see one." }
                }
            }
        }
    }
}

/// Query of the issues list: the API's selection, plus a page number.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Which issues, in which order, as the API takes them.
    #[serde(flatten)]
    pub selection: IssueSelection,
    /// 1-based page.
    pub page: Option<i64>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `selection` with its values trimmed, and empty ones left out.
fn trimmed(selection: &IssueSelection) -> IssueSelection {
    IssueSelection {
        status: non_empty(&selection.status),
        sort: non_empty(&selection.sort),
        q: non_empty(&selection.q),
        reports: selection.reports.clone(),
    }
}

impl ListQuery {
    /// This query with other values for some keys, as a URL.
    fn url(&self, status: Option<&str>, sort: Option<&str>, page: Option<i64>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let selection = trimmed(&self.selection);
        let status = status.map(str::to_owned).or(selection.status);
        let sort = sort.map(str::to_owned).or(selection.sort);
        for (k, v) in [("status", status), ("sort", sort), ("q", selection.q)] {
            if let Some(v) = v {
                out.append_pair(k, &v);
            }
        }
        for (k, v) in selection.reports.pairs() {
            out.append_pair(k, &v);
        }
        if let Some(page) = page.filter(|p| *p > 1) {
            out.append_pair("page", &page.to_string());
        }
        format!("/issues?{}", out.finish())
    }
}

/// `GET /issues`: tabs by status, sort, filters, signature search, pages.
pub async fn list(
    State(state): State<TriageState>,
    caller: Caller,
    PageQuery(query): PageQuery<ListQuery>,
) -> PageResult {
    let mut selection = trimmed(&query.selection);
    let status = selection
        .status
        .get_or_insert_with(|| "open".to_owned())
        .clone();
    let sort = selection
        .sort
        .get_or_insert_with(|| "count".to_owned())
        .clone();
    let (page, skipped) = query::page(query.page, PAGE_SIZE)?;
    let api_query = IssueQuery {
        selection,
        limit: Some(PAGE_SIZE + 1),
        offset: Some(skipped),
    };
    let mut filter = api_query.filter(&state.vault().keyring().current().search_key())?;
    filter.limit = PAGE_SIZE + 1;
    let mut issues = state.index().list_issues(&filter).await?;
    state
        .index()
        .audit(&caller.token_id, "issues.list", "issues", None)
        .await?;
    let more = issues.len() as i64 > PAGE_SIZE;
    issues.truncate(PAGE_SIZE as usize);
    let window = Window::last(LIST_DAYS)?;
    let ids: Vec<i64> = issues.iter().map(|issue| issue.id).collect();
    let mut trends: Vec<Stacks> = issues
        .iter()
        .map(|_| Stacks::reports_and_counted(window))
        .collect();
    for day in state.index().issues_daily(&ids, window.first_day).await? {
        if let Some(at) = ids.iter().position(|id| *id == day.issue_id) {
            trends[at].add(day.day, 0, day.reports);
            trends[at].add(day.day, 1, day.counted);
        }
    }
    let products =
        trends::product_days(&state, &caller, filter.reports.product.as_deref(), window).await?;
    let tab = |name: &str, label: &str| -> Markup {
        html! {
            a class=@if status == name { "on" } href=(query.url(Some(name), None, None)) { (label) }
        }
    };
    let sort_link = |name: &str, label: &str| -> Markup {
        html! {
            @if sort == name { strong { (label) } }
            @else { a href=(query.url(None, Some(name), None)) { (label) } }
        }
    };
    let body = html! {
        h1 { "Issues" }
        nav.tabs {
            (tab("open", "Open")) (tab("regressed", "Regressed")) (tab("resolved", "Resolved"))
        }
        form.filters method="get" action="/issues" {
            input type="hidden" name="status" value=(status);
            input type="hidden" name="sort" value=(sort);
            label { "Signature" input type="search" name="q" value=(query.selection.q.as_deref().unwrap_or("")) placeholder="search"; }
            @for (name, label, size) in REPORT_FILTERS {
                label { (label) input name=(name) id=(format!("filter-{name}")) size=(size) value=(filter_value(&query.selection.reports, name)); }
            }
            button type="submit" { "Filter" }
            span.muted { "Sort: " (sort_link("count", "count")) " · " (sort_link("last_seen", "last seen")) " · " (sort_link("first_seen", "first seen")) }
        }
        (product_trends(window, &products))
        @if issues.is_empty() {
            p.muted id="no-issues" { "No " (status) " issues." }
        } @else {
            table id="issues" {
                thead { tr { th { "Issue" } th.num { "Reports" } th { "Last " (LIST_DAYS) " days" } th { "First seen" } th { "Last seen" } th { "Status" } } }
                tbody {
                    @for (issue, trend) in issues.iter().zip(&trends) {
                        tr {
                            td {
                                a.issue href=(format!("/issues/{}", issue.id)) { (issue.title) }
                                div.mono.muted { (issue.signature) }
                            }
                            td.num { (issue.count) }
                            td { (chart::chart(&format!("trend-{}", issue.id), trend, Size::Small, "Crashes per day")) }
                            td { (fmt_time(issue.first_seen)) }
                            td { (fmt_time(issue.last_seen)) }
                            td { span class=(format!("status {}", issue.status.as_str())) { (issue.status.as_str()) } }
                        }
                    }
                }
            }
        }
        div.pager {
            @if page > 1 { a href=(query.url(None, None, Some(page - 1))) { "← Newer page" } }
            span.muted { "Page " (page) }
            @if more { a href=(query.url(None, None, Some(page + 1))) { "Next page →" } }
        }
    };
    super::ok(layout("Issues", Some(&caller), body))
}

/// Query of the issue page.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// 1-based page of its reports.
    pub page: Option<i64>,
    /// A notice to show (after an action).
    pub done: Option<String>,
}

/// `GET /issues/{id}`: signature, counts, a sample stack, reports, actions.
pub async fn show(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
    PageQuery(query): PageQuery<ShowQuery>,
) -> PageResult {
    let (page, skipped) = query::page(query.page, PAGE_SIZE)?;
    let issue = state
        .index()
        .issue(id)
        .await?
        .ok_or(PageError(ApiError::NotFound))?;
    state
        .index()
        .audit(&caller.token_id, "issue.read", &id.to_string(), None)
        .await?;
    let breakdown = state.index().issue_breakdown(id).await?;
    let mut reports = state
        .index()
        .reports_of_issue(id, PAGE_SIZE + 1, skipped)
        .await?;
    let more = reports.len() as i64 > PAGE_SIZE;
    reports.truncate(PAGE_SIZE as usize);
    let sample_row = state.index().reports_of_issue(id, 1, 0).await?;
    let sample = match sample_row.first() {
        Some(row) => load_processed(&state, row)
            .await?
            .map(|processed| (row.id, processed)),
        None => None,
    };
    if let Some((report_id, _)) = &sample {
        state
            .index()
            .audit(
                &caller.token_id,
                "report.read",
                &report_id.to_string(),
                Some("issue sample"),
            )
            .await?;
    }
    let window = Window::last(ISSUE_DAYS)?;
    let daily = state.index().issue_daily(id, window.first_day).await?;
    let by_version = Stacks::by_version(window, &daily);
    let versions = chart::versions_by_total(window, &daily);
    let stored = state.index().count_reports_of_issue(id).await?;
    let reports_word = if stored == 1 { "report" } else { "reports" };
    let body = html! {
        p { a href="/issues" { "← Issues" } }
        @if let Some(done) = &query.done { p.notice { (done) } }
        h1 id="issue-title" { (issue.title) }
        p {
            span id="issue-status" class=(format!("status {}", issue.status.as_str())) { (issue.status.as_str()) }
            @if let Some(v) = &issue.resolved_in_version { " in version " code { (v) } }
        }
        div.card {
            dl.meta {
                dt { "Signature" } dd.mono id="signature" { (issue.signature) }
                dt { "Reports" } dd { (issue.count) " received" }
                dt { "Counted" } dd id="counted-without-dump" {
                    (issue.counted_without_dump) " more crashes counted from a summary, without a dump"
                }
                dt { "First seen" } dd { (fmt_time(issue.first_seen)) }
                dt { "Last seen" } dd { (fmt_time(issue.last_seen)) }
                @if let Some(at) = issue.resolved_at { dt { "Resolved" } dd { (fmt_time(at)) } }
            }
        }
        div.actions {
            @if issue.status == IssueStatus::Resolved {
                form method="post" action=(format!("/issues/{id}/reopen")) {
                    (csrf_field(&caller))
                    button type="submit" id="reopen" { "Reopen" }
                }
            } @else {
                // Resolving deletes the stored reports: it says so, and asks first.
                details.confirm {
                    summary id="resolve-open" { "Resolve…" }
                    p {
                        "Resolving deletes the " (stored) " stored " (reports_word)
                        " of this issue: dumps, processed data and keys. The issue keeps its "
                        "signature, counts and first and last seen; a later crash reopens it "
                        "as a regression."
                    }
                    form method="post" action=(format!("/issues/{id}/resolve")) {
                        (csrf_field(&caller))
                        button.danger type="submit" id="resolve" {
                            "Resolve and delete " (stored) " stored " (reports_word)
                        }
                    }
                    form method="post" action=(format!("/issues/{id}/resolve")) {
                        (csrf_field(&caller))
                        label { "Fixed in version" input name="in_version" size="10" required; }
                        button.danger type="submit" id="resolve-in-version" {
                            "Resolve in this version and delete " (stored) " stored " (reports_word)
                        }
                    }
                }
            }
            details.confirm {
                summary { "Delete issue…" }
                form method="post" action=(format!("/issues/{id}/delete")) {
                    (csrf_field(&caller))
                    button.danger type="submit" id="delete" { "Delete this issue and all its reports" }
                }
            }
        }
        div.card id="issue-trend" {
            h2 { "Crashes per day, last " (window.days) " days, by version" }
            (chart::chart("issue-chart", &by_version, Size::Large, "Crashes per day by version"))
            (chart::legend("issue-legend", &by_version))
            @if versions.is_empty() {
                p.muted { "No crashes in the last " (window.days) " days." }
            } @else {
                table id="issue-versions" {
                    thead { tr { th { "Version" } th.num { "Reports" } th.num { "Counted without a dump" } } }
                    tbody {
                        @for (version, reports, counted) in &versions {
                            tr {
                                td.mono { @if version.is_empty() { "(unknown)" } @else { (version) } }
                                td.num { (reports) }
                                td.num { (counted) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Stored reports" }
        div.grid {
            div.card { h2 { "By version" } (bars(&breakdown.by_version)) }
            div.card { h2 { "By OS" } (bars(&breakdown.by_os)) }
            div.card { h2 { "By product" } (bars(&breakdown.by_product)) }
        }
        h2 { "Sample stack" }
        @match &sample {
            Some((report_id, processed)) => {
                p.muted { "From report " a href=(format!("/reports/{report_id}")) { (report_id) } }
                @match &processed.crashing_thread {
                    Some(thread) => (stack_table(&thread.frames)),
                    None => p.muted { "No crashing thread." },
                }
            }
            None => p.muted { "No processed report is stored for this issue." },
        }
        h2 { "Reports" }
        @if reports.is_empty() { p.muted { "No stored reports." } } @else {
            table id="reports" {
                thead { tr { th { "Report" } th { "Received" } th { "Product" } th { "Version" } th { "OS" } th { "State" } } }
                tbody {
                    @for r in &reports {
                        tr {
                            td.mono { a href=(format!("/reports/{}", r.id)) { (r.id) } }
                            td { (fmt_time(r.received_at)) }
                            td { (r.facts.product.as_deref().unwrap_or("")) }
                            td { (r.facts.version.as_deref().unwrap_or("")) }
                            td { (r.facts.os.as_deref().unwrap_or("")) " " span.muted { (r.facts.os_version.as_deref().unwrap_or("")) } }
                            td { (r.state.as_str()) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if page > 1 { a href=(format!("/issues/{id}?page={}", page - 1)) { "← Newer reports" } }
            @if more { a href=(format!("/issues/{id}?page={}", page + 1)) { "Older reports →" } }
        }
    };
    super::ok(layout(&issue.title, Some(&caller), body))
}

/// The resolve form.
#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// Resolved in this version: older versions' crashes are dropped.
    pub in_version: Option<String>,
}

impl WithCsrf for ResolveForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn back_to_issue(id: i64, notice: &str) -> PageResult {
    let notice: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Ok(Redirect::to(&format!("/issues/{id}?done={notice}")).into_response())
}

/// `POST /issues/{id}/resolve`: resolves the issue (in a version, when given),
/// deleting its stored reports.
pub async fn resolve(
    State(state): State<TriageState>,
    Path(id): Path<i64>,
    CheckedForm { caller, form }: CheckedForm<ResolveForm>,
) -> PageResult {
    let in_version = non_empty(&form.in_version);
    let deleted = lifecycle::resolve_issue(
        state.vault(),
        state.metrics(),
        id,
        in_version.as_deref(),
        &caller.token_id,
    )
    .await?;
    let reports = if deleted == 1 { "report" } else { "reports" };
    let notice = match in_version {
        Some(v) => format!("Resolved in version {v}; {deleted} stored {reports} deleted."),
        None => format!("Resolved; {deleted} stored {reports} deleted."),
    };
    back_to_issue(id, &notice)
}

/// `POST /issues/{id}/reopen`: reopens a resolved issue.
pub async fn reopen(
    State(state): State<TriageState>,
    Path(id): Path<i64>,
    CheckedForm { caller, .. }: CheckedForm<CsrfForm>,
) -> PageResult {
    lifecycle::reopen_issue(state.index(), id, &caller.token_id).await?;
    back_to_issue(id, "Reopened.")
}

/// `POST /issues/{id}/delete`: deletes the issue and every report of it.
pub async fn delete(
    State(state): State<TriageState>,
    Path(id): Path<i64>,
    CheckedForm { caller, .. }: CheckedForm<CsrfForm>,
) -> PageResult {
    let (vault, metrics) = (state.vault(), state.metrics());
    lifecycle::empty_issue(vault, metrics, id, &caller.token_id, Emptying::DeleteIssue).await?;
    Ok(Redirect::to("/issues").into_response())
}

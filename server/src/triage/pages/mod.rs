//! Server-rendered HTML pages (maud): no JavaScript, no build step. Every page
//! and form is in the route table with the roles that may use it; forms that
//! change something carry the session's CSRF token.

pub mod admin;
pub mod chart;
pub mod issues;
pub mod reports;
pub mod session;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::auth::{Caller, READ_CONTENTS, READ_METADATA, SYMBOLS, authenticate};
use super::error::{ErrorPage, PageError, Surface};
use super::frame::frame;
use crate::index::Role;
use crate::triage::TriageState;

/// What a page handler returns.
pub type PageResult = Result<Response, PageError>;

/// Draws an error page again with the navigation of the signed-in caller who
/// got it (a session cookie or a bearer token), so a 404 keeps the links and
/// does not offer "Sign in" to someone signed in. A layer around every triage
/// route, and the answer to paths no route has.
pub async fn with_caller_navigation(
    State(state): State<TriageState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers().clone();
    let response = next.run(request).await;
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    match authenticate(state.index(), &headers, Surface::Page).await {
        Ok(Some(caller)) => {
            let body = layout(page.title(), Some(&caller), page.body(true));
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(body.into_string()))
        }
        _ => response,
    }
}

/// A path no route has: under `/api/` the API's JSON 404, else a 404 page (with
/// the caller's navigation, by [`with_caller_navigation`]).
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let error = super::error::ApiError::NotFound;
    if uri.path().starts_with("/api/") {
        error.into_response()
    } else {
        PageError(error).into_response()
    }
}

/// The page frame with the links the caller's role may use.
pub fn layout(title: &str, caller: Option<&Caller>, body: Markup) -> Markup {
    let header = html! {
        @if let Some(caller) = caller {
            @if READ_CONTENTS.contains(&caller.role) { a href="/issues" { "Issues" } }
            @if READ_METADATA.contains(&caller.role) { a href="/lookup" { "Find a report" } }
            @if SYMBOLS.contains(&caller.role) { a href="/symbols" { "Symbols" } }
            @if caller.role == Role::Admin { a href="/tokens" { "Tokens" } a href="/audit" { "Audit" } }
            span.who {
                span { (caller.role.as_str()) " · " (caller.token_id) }
                @if let Some(csrf) = &caller.csrf {
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Sign out" }
                    }
                }
            }
        }
    };
    frame(title, header, body)
}

/// The hidden CSRF field of a form (empty for bearer-token callers, who need none).
pub fn csrf_field(caller: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(caller.csrf.as_deref().unwrap_or("")); }
}

/// A Unix-ms time as `YYYY-MM-DD HH:MM UTC`.
pub fn fmt_time(ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&format).unwrap_or_else(|_| ms.to_string())
}

/// A list of `(label, count)` as small CSS bars.
pub fn bars(rows: &[(String, i64)]) -> Markup {
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    html! {
        @if rows.is_empty() { p.muted { "No stored reports." } }
        @for (label, n) in rows {
            div.bar {
                span.mono title=(label) { @if label.is_empty() { "(unknown)" } @else { (label) } }
                svg.track { rect.fill width=(format!("{}%", n * 100 / max)) height="10" {} }
                span.num { (n) }
            }
        }
    }
}

/// `GET /`: where a caller starts, by role; the sign-in page without a session.
pub async fn home(State(state): State<TriageState>, headers: axum::http::HeaderMap) -> PageResult {
    let caller = authenticate(state.index(), &headers, Surface::Page).await?;
    let target = match caller.map(|c| c.role) {
        None => "/login",
        Some(Role::Admin | Role::Developer) => "/issues",
        Some(Role::Support) => "/lookup",
        Some(Role::Uploader) => "/symbols",
    };
    Ok(Redirect::to(target).into_response())
}

/// A 200 HTML response.
pub fn ok(markup: Markup) -> PageResult {
    Ok((StatusCode::OK, markup).into_response())
}

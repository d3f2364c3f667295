//! Deleting a report over HTTP: `DELETE /api/v1/reports/{id}` (staff, or the
//! person who sent it with its deletion token), and `/forget` — the page where a
//! person deletes their own report with its CrashID and deletion token. Both call
//! the same functions as the CLI ([`crate::deletion`]).

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::auth::{Caller, deletion_token};
use super::error::ApiError;
use super::pages::layout;
use crate::deletion::{self, DELETION_TOKEN_ACTOR, DeleteError};
use crate::report_id::ReportId;
use crate::tokens::{hash_secret, hashes_equal};
use crate::triage::TriageState;

/// `DELETE /api/v1/reports/{id}`: with `Authorization: Deletion <token>` (the
/// person who sent it) or a developer/admin bearer token (checked by the route
/// table, which lets a deletion token through to here). Idempotent: 204 whether
/// or not it was still there; a wrong deletion token gets 404 and deletes nothing.
pub async fn delete_report(
    State(state): State<TriageState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id: ReportId = id.parse().map_err(|_| ApiError::NotFound)?;
    let (actor, why) = match caller {
        Some(caller) => (caller.token_id, "staff request"),
        None => {
            let secret = deletion_token(&headers)
                .filter(|s| !s.is_empty())
                .ok_or(ApiError::Unauthorized)?;
            if let Some(row) = state.index().report(&id).await?
                && !hashes_equal(&row.deletion_token_hash, &hash_secret(secret))
            {
                return Err(ApiError::NotFound);
            }
            (DELETION_TOKEN_ACTOR.to_owned(), "user request")
        }
    };
    if deletion::delete_report_by_id(state.vault(), state.metrics(), &id, &actor, why).await? {
        state.index().checkpoint().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The `/forget` form.
#[derive(Debug, Deserialize)]
pub struct ForgetForm {
    /// The CrashID (`bp-…`).
    #[serde(default)]
    pub crash_id: String,
    /// The deletion token from the receipt.
    #[serde(default)]
    pub token: String,
}

fn forget_page(status: StatusCode, crash_id: &str, message: maud::Markup) -> Response {
    let body = html! {
        h1 { "Delete a crash report" }
        (message)
        p {
            "Paste the CrashID and the deletion token your application showed when it "
            "sent the report. The report — dump, processed data and key — is deleted at once."
        }
        form method="post" action="/forget" id="forget" {
            div.actions {
                label { "CrashID" input type="text" name="crash_id" id="crash_id" size="44"
                    placeholder="bp-…" value=(crash_id) autocomplete="off" required; }
                label { "Deletion token" input type="password" name="token" id="token" size="70"
                    autocomplete="off" required; }
                button.danger type="submit" id="delete" { "Delete report" }
            }
        }
    };
    let mut response = (status, layout("Delete a crash report", None, body)).into_response();
    // The page holds a secret while it is filled in: nobody caches it (nor frames
    // it, nor is sent its address: the headers of every triage response).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /forget`: the form.
pub async fn forget_form() -> Response {
    forget_page(StatusCode::OK, "", html! {})
}

/// `POST /forget`: deletes the report when the token matches. Idempotent: a
/// report that is not stored (any more) answers that nothing is stored; a wrong
/// token deletes nothing and answers 404. The token is never shown back.
pub async fn forget(State(state): State<TriageState>, Form(form): Form<ForgetForm>) -> Response {
    let crash_id = form.crash_id.trim();
    let token = form.token.trim();
    let shown: String = crash_id.chars().take(64).collect();
    let Ok(id) = crash_id.parse::<ReportId>() else {
        return forget_page(
            StatusCode::BAD_REQUEST,
            &shown,
            html! { p.error id="result" data-result="invalid" { "That is not a CrashID: it looks like bp-0a1b2c3d-…" } },
        );
    };
    let outcome = async {
        let Some(row) = state.index().report(&id).await? else {
            return Ok::<_, DeleteError>(None);
        };
        if token.is_empty() || !hashes_equal(&row.deletion_token_hash, &hash_secret(token)) {
            return Ok(Some(false));
        }
        deletion::delete_report_by_id(
            state.vault(),
            state.metrics(),
            &id,
            DELETION_TOKEN_ACTOR,
            "user request (web form)",
        )
        .await?;
        state.index().checkpoint().await?;
        Ok(Some(true))
    }
    .await;
    match outcome {
        Ok(Some(true)) => forget_page(
            StatusCode::OK,
            "",
            html! { p.notice id="result" data-result="deleted" { "Report " code { (id) } " is deleted." } },
        ),
        Ok(None) => forget_page(
            StatusCode::OK,
            "",
            html! { p.notice id="result" data-result="absent" { "No report " code { (id) } " is stored: there is nothing to delete (it may have been deleted already)." } },
        ),
        Ok(Some(false)) => forget_page(
            StatusCode::NOT_FOUND,
            &shown,
            html! { p.error id="result" data-result="mismatch" { "This token does not belong to that CrashID. Nothing was deleted." } },
        ),
        Err(e) => {
            tracing::error!(error = %e, "deletion request failed");
            forget_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &shown,
                html! { p.error id="result" data-result="error" { "The server could not delete it right now. Please try again later." } },
            )
        }
    }
}

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
use super::frame::content_security_policy_with_script;
use super::pages::layout;
use crate::deletion::{self, DELETION_TOKEN_ACTOR, DeleteError};
use crate::report_id::ReportId;
use crate::tokens::{hash_secret, hashes_equal};
use crate::triage::TriageState;

/// `DELETE /api/v1/reports/{id}`: with `Authorization: Deletion <token>` (the
/// person who sent it) or a developer/admin bearer token (checked by the route
/// table, which lets a deletion token through to here). Idempotent: 204 whether
/// or not it was still there; a wrong deletion token gets 404 and deletes nothing.
#[utoipa::path(delete, path = "/api/v1/reports/{id}", params(("id" = String, Path, description = "CrashID, `bp-<uuid>`")), responses(
    (status = 204, description = "Deleted, or not stored."),
    (status = 404, description = "Not a CrashID, or not this deletion token's report.", body = super::error::ErrorBody),
))]
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

/// The script of the `/forget` page: a forget link
/// (`<endpoint>/forget#<CrashID>.<token>`, as the client's receipts give it) fills
/// in the form from the fragment, which no browser sends to a server, and takes the
/// fragment out of the address bar and the history.
const FORGET_SCRIPT: &str = "const f=decodeURIComponent(location.hash.slice(1));\
const i=f.indexOf('.');\
if(i>0){document.getElementById('crash_id').value=f.slice(0,i);\
document.getElementById('token').value=f.slice(i+1);\
history.replaceState(null,'',location.pathname);}";

fn forget_page(status: StatusCode, crash_id: &str, message: maud::Markup) -> Response {
    let body = html! {
        h1 { "Delete a crash report" }
        (message)
        p {
            "Open the forget link your application showed when it sent the report, or "
            "paste its CrashID and deletion token. The report — dump, processed data and "
            "key — is deleted at once."
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
        script { (maud::PreEscaped(FORGET_SCRIPT)) }
    };
    let mut response = (status, layout("Delete a crash report", None, body)).into_response();
    // The page holds a secret while it is filled in: nobody caches it (nor frames
    // it, nor is sent its address: the headers of every triage response).
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        content_security_policy_with_script(FORGET_SCRIPT),
    );
    response
}

/// `GET /forget`: the form.
pub async fn forget_form() -> Response {
    forget_page(StatusCode::OK, "", html! {})
}

/// `POST /forget`: deletes the report when the token matches. A report that is
/// not stored (any more) and a token that is not the report's get the same 404
/// answer, so the page tells no one without the token whether a CrashID exists.
/// The token is never shown back.
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
        let owned = state
            .index()
            .report(&id)
            .await?
            .is_some_and(|row| hashes_equal(&row.deletion_token_hash, &hash_secret(token)));
        if token.is_empty() || !owned {
            return Ok::<_, DeleteError>(false);
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
        Ok(true)
    }
    .await;
    match outcome {
        Ok(true) => forget_page(
            StatusCode::OK,
            "",
            html! { p.notice id="result" data-result="deleted" { "Report " code { (id) } " is deleted." } },
        ),
        Ok(false) => forget_page(
            StatusCode::NOT_FOUND,
            &shown,
            html! { p.error id="result" data-result="not-found" { "No report with this CrashID and deletion token is stored: nothing was deleted. If you deleted it before, it is gone; otherwise check that both were copied whole." } },
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

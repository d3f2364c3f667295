//! The symbols page and the tokens page (admins).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;

use super::session::{CheckedForm, CsrfForm, WithCsrf};
use super::{PageResult, csrf_field, fmt_time, layout};
use crate::index::Role;
use crate::triage::TriageState;
use crate::triage::api::{NewToken, create_token_audited};
use crate::triage::auth::{Caller, api_tokens};

/// How many present symbol files the page lists.
const MAX_LISTED: usize = 500;

/// `GET /symbols`: symbol files in the store, and the missing ones ranked by how
/// many stored reports need them.
pub async fn symbols(State(state): State<TriageState>, caller: Caller) -> PageResult {
    let missing = state.index().missing_symbols_ranked(200).await?;
    let prefix = object_store::path::Path::from("symbols");
    let mut present: Vec<Vec<String>> = state
        .storage()
        .list(Some(&prefix))
        .await?
        .iter()
        .map(|p| p.parts().skip(1).map(|s| s.as_ref().to_owned()).collect())
        .filter(|parts: &Vec<String>| parts.len() == 3)
        .collect();
    present.sort();
    let total = present.len();
    present.truncate(MAX_LISTED);
    let body = html! {
        h1 { "Symbols" }
        h2 { "Missing, most needed first" }
        @if missing.is_empty() { p.muted id="no-missing" { "No stored report lacks symbols." } } @else {
            table id="missing" {
                thead { tr { th { "Debug file" } th { "Debug id" } th.num { "Reports" } } }
                tbody {
                    @for (file, id, n) in &missing {
                        tr { td.mono { (file) } td.mono { (id) } td.num { (n) } }
                    }
                }
            }
        }
        h2 { "Present (" (total) ")" }
        @if present.is_empty() { p.muted { "The symbol store is empty." } } @else {
            table id="present" {
                thead { tr { th { "Debug file" } th { "Debug id" } th { "File" } } }
                tbody {
                    @for parts in &present {
                        tr { td.mono { (parts[0]) } td.mono { (parts[1]) } td.mono { (parts[2]) } }
                    }
                }
            }
            @if total > MAX_LISTED { p.muted { "The first " (MAX_LISTED) " are listed." } }
        }
    };
    super::ok(layout("Symbols", Some(&caller), body))
}

async fn tokens_page(
    state: &TriageState,
    caller: &Caller,
    created: Option<(String, String)>,
) -> PageResult {
    let tokens = api_tokens(state.index()).await?;
    let body = html! {
        h1 { "API tokens" }
        @if let Some((id, secret)) = &created {
            div.notice id="created" {
                "Token " code { (id) } " created. Copy it now, it is not shown again: "
                code id="secret" { (secret) }
            }
        }
        form.filters method="post" action="/tokens" {
            (csrf_field(caller))
            label { "Role"
                select name="role" {
                    @for role in Role::ALL {
                        option value=(role.as_str()) selected[role == Role::Developer] { (role.as_str()) }
                    }
                }
            }
            label { "Name" input name="name" placeholder="who or what uses it"; }
            button type="submit" { "Create token" }
        }
        table id="tokens" {
            thead { tr { th { "Id" } th { "Role" } th { "Name" } th { "Created" } th { "State" } th {} } }
            tbody {
                @for t in &tokens {
                    tr {
                        td.mono { (t.id) }
                        td { (t.role.as_str()) }
                        td { (t.name) }
                        td { (fmt_time(t.created_at)) }
                        td { @match t.revoked_at { Some(at) => { "revoked " (fmt_time(at)) }, None => "active" } }
                        td {
                            @if t.revoked_at.is_none() {
                                form method="post" action=(format!("/tokens/{}/revoke", t.id)) {
                                    (csrf_field(caller))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    super::ok(layout("Tokens", Some(caller), body))
}

/// `GET /tokens`: the token list with create and revoke forms.
pub async fn tokens(State(state): State<TriageState>, caller: Caller) -> PageResult {
    tokens_page(&state, &caller, None).await
}

/// The create-token form: the API's body and the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// Role and name of the new token.
    #[serde(flatten)]
    pub token: NewToken,
}

impl WithCsrf for CreateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /tokens`: creates a token and shows its secret once.
pub async fn create_token(
    State(state): State<TriageState>,
    CheckedForm { caller, form }: CheckedForm<CreateForm>,
) -> PageResult {
    let (id, secret) =
        create_token_audited(&state, &caller, form.token.role, form.token.name.trim()).await?;
    let response = tokens_page(&state, &caller, Some((id, secret))).await?;
    // The secret is on this page only: never cache it.
    Ok((
        StatusCode::OK,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        response,
    )
        .into_response())
}

/// `POST /tokens/{id}/revoke`: revokes a token (its browser sessions end with it).
pub async fn revoke_token(
    State(state): State<TriageState>,
    Path(id): Path<String>,
    CheckedForm { caller, .. }: CheckedForm<CsrfForm>,
) -> PageResult {
    if state
        .index()
        .revoke_token(&id, crate::index::now_ms())
        .await?
    {
        state
            .index()
            .audit(&caller.token_id, "token.revoke", &id, None)
            .await?;
    }
    Ok(Redirect::to("/tokens").into_response())
}

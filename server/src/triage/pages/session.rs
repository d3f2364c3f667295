//! Signing in and out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;

use super::{PageResult, layout};
use crate::triage::TriageState;
use crate::triage::auth::{self, Caller, clear_session_cookie, session_cookie, session_set_cookie};

/// Query of the sign-in page: where to go afterwards.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    /// A local path.
    pub next: Option<String>,
}

/// Only local paths: never an open redirect.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/",
    }
}

fn login_page(next: &str, error: Option<&str>) -> maud::Markup {
    layout(
        "Sign in",
        None,
        html! {
            div.card style="max-width:420px;margin:48px auto" {
                h1 { "Sign in to Mayday" }
                @if let Some(error) = error { p.error { (error) } }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "API token"
                        input type="password" name="token" id="token" autocomplete="off" required;
                    }
                    p { button type="submit" id="sign-in" { "Sign in" } }
                }
                p.muted { "Ask an admin for a token (" code { "mayday-server token create" } ")." }
            }
        },
    )
}

/// `GET /login`: the sign-in form.
pub async fn login_form(Query(next): Query<Next>) -> PageResult {
    super::ok(login_page(local_path(next.next.as_deref()), None))
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// An API token.
    pub token: String,
    /// Where to go afterwards.
    pub next: Option<String>,
}

/// `POST /login`: makes a session for a valid token and sets its cookie.
pub async fn login(State(state): State<TriageState>, Form(form): Form<LoginForm>) -> PageResult {
    let next = local_path(form.next.as_deref()).to_owned();
    match auth::start_session(state.index(), form.token.trim()).await? {
        Some(secret) => {
            tracing::info!("session started");
            Ok((
                [(header::SET_COOKIE, session_set_cookie(&secret))],
                Redirect::to(&next),
            )
                .into_response())
        }
        None => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(&next, Some("That token is not valid.")),
        )
            .into_response()),
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<TriageState>,
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    caller.check_csrf(&form.csrf)?;
    if let Some(secret) = session_cookie(&headers) {
        auth::end_session(state.index(), secret).await?;
    }
    Ok((
        [(header::SET_COOKIE, clear_session_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

//! Signing in and out.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{PageResult, layout};
use crate::triage::TriageState;
use crate::triage::auth::{self, Caller, clear_session_cookie, session_cookie, session_set_cookie};
use crate::triage::error::PageError;
use crate::triage::query::PageQuery;

/// Query of the sign-in page: where to go afterwards.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    /// A local path.
    pub next: Option<String>,
}

/// Where to go after signing in: `next` when it is a path on this server, else
/// `/` — never an open redirect. Browsers drop tabs and line breaks from an
/// address and read `\\` as `/`, so `/\t/evil.example` and `/\\evil.example` lead
/// off-site as `//evil.example` and `https://evil.example` do; a path whose
/// escapes spell one of those (`/%2F/evil.example`) is refused too, and so is
/// anything but visible ASCII (a `Location` header holds nothing else).
fn local_path(next: Option<&str>) -> &str {
    let rooted = |path: &[u8]| {
        path.first() == Some(&b'/')
            && !matches!(path.get(1), Some(b'/' | b'\\' | b'\t' | b'\n' | b'\r'))
    };
    match next {
        Some(p)
            if rooted(p.as_bytes())
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && rooted(&percent_decoded(p)) =>
        {
            p
        }
        _ => "/",
    }
}

/// `text` with its `%XX` escapes decoded (a malformed escape stays as it is).
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn login_page(next: &str, error: Option<&str>) -> maud::Markup {
    layout(
        "Sign in",
        None,
        html! {
            div.card.narrow {
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
pub async fn login_form(PageQuery(next): PageQuery<Next>) -> PageResult {
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
                [(
                    header::SET_COOKIE,
                    session_set_cookie(&secret, state.secure_cookies()),
                )],
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

/// A form with nothing but the session's CSRF token (sign out, reopen, revoke…).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// A page form that carries the session's CSRF token.
pub trait WithCsrf {
    /// The CSRF token the form sent.
    fn csrf(&self) -> &str;
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A page form whose CSRF token is the session's, and the caller who sent it: a
/// form that changes something cannot reach its handler unchecked (403).
#[derive(Debug)]
pub struct CheckedForm<T> {
    /// Who sent the form.
    pub caller: Caller,
    /// The form.
    pub form: T,
}

impl<T, S> FromRequest<S> for CheckedForm<T>
where
    T: DeserializeOwned + WithCsrf + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        caller
            .check_csrf(form.csrf())
            .map_err(|e| PageError(e).into_response())?;
        Ok(CheckedForm { caller, form })
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<TriageState>,
    headers: HeaderMap,
    _: CheckedForm<CsrfForm>,
) -> PageResult {
    if let Some(secret) = session_cookie(&headers) {
        auth::end_session(state.index(), secret).await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            clear_session_cookie(state.secure_cookies()),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_on_this_server_are_followed_after_sign_in() {
        for local in [
            "/",
            "/tokens",
            "/issues?status=open&q=a%20b%5C",
            "/issues/7?page=2",
        ] {
            assert_eq!(local_path(Some(local)), local);
        }
        for off_site in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/ /evil.example",
            "/é",
            "",
        ] {
            assert_eq!(local_path(Some(off_site)), "/", "{off_site:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}

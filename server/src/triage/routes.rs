//! The route table: every route of the server, who may use it, and the handler.
//!
//! To add a route, add one line to [`routes`]:
//!
//! ```text
//! api!(POST "/api/v1/issues/{id}/resolve", roles(READ_CONTENTS), lifecycle::resolve),
//! page!(GET "/audit", roles(ADMIN), audit::page),
//! ```
//!
//! `api!` routes answer 401/403 as JSON and take `Authorization: Bearer`; `page!`
//! routes also take the session cookie and send a signed-out browser to `/login`.
//! The check in front of each route ([`build`]) is the only role check: handlers
//! take the [`Caller`](super::auth::Caller) it lets through. `public` routes get
//! no check; the user deletion route lets a deletion token through to its handler.
//! `listed!` names a route served by another router (ingest, with its own body
//! limits) so the role matrix covers it too.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::auth::{
    ADMIN, ALL_ROLES, READ_CONTENTS, READ_METADATA, SYMBOLS, authenticate, deletion_token,
};
use super::error::{ApiError, Refusal, Surface};
use super::{api, audit, deletion, lifecycle, pages, search, symbols, trends};
use crate::index::Role;
use crate::triage::TriageState;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: uploads, health, metrics, user deletion, symbol
    /// downloads, sign-in.
    Public,
    /// Callers whose token has one of these roles.
    Roles(&'static [Role]),
    /// The report's deletion token (`Authorization: Deletion …`, the person who
    /// sent it), or a bearer token with one of these roles. The route's check lets
    /// a deletion token through; the handler checks it against the report.
    DeletionTokenOr(&'static [Role]),
}

impl Access {
    /// Whether a caller with `role` (or none) may use the route.
    pub fn allows(self, role: Option<Role>) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) | Access::DeletionTokenOr(roles) => {
                role.is_some_and(|r| roles.contains(&r))
            }
        }
    }
}

/// Shorthand for [`Access::Roles`] in the table.
pub const fn roles(roles: &'static [Role]) -> Access {
    Access::Roles(roles)
}

/// Shorthand for [`Access::Public`] in the table.
pub const PUBLIC: Access = Access::Public;

/// One route.
#[derive(Clone, Debug)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path pattern, axum syntax (`/api/v1/issues/{id}`).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
    /// How refusals look.
    pub surface: Surface,
    /// Builds the handler; `None` for routes another router serves (ingest).
    pub handler: Option<fn() -> MethodRouter<TriageState>>,
}

/// A route of `surface` whose handler is built by `handler` (`None`: another
/// router serves it).
macro_rules! route {
    ($surface:ident, $method:ident $path:literal, $access:expr, $handler:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            surface: Surface::$surface,
            handler: $handler,
        }
    };
}

/// The handler builder of a route served here.
macro_rules! handler {
    ($method:ident, $handler:path) => {
        Some(|| axum::routing::on(axum::routing::MethodFilter::$method, $handler))
    };
}

/// A JSON API route.
macro_rules! api {
    ($method:ident $path:literal, $access:expr, $handler:path) => {
        route!(Api, $method $path, $access, handler!($method, $handler))
    };
}

/// An HTML page route.
macro_rules! page {
    ($method:ident $path:literal, $access:expr, $handler:path) => {
        route!(Page, $method $path, $access, handler!($method, $handler))
    };
}

/// A route served by another router, listed for the role matrix.
macro_rules! listed {
    ($method:ident $path:literal, $access:expr) => {
        route!(Api, $method $path, $access, None)
    };
}

/// Every route of the server. A table, one line a route: its lines are alike by
/// design (the router and the role-matrix test both read it).
pub fn routes() -> Vec<Route> {
    vec![
        // Ingest (crate::ingest::router, with its own body limits).
        listed!(POST "/submit", PUBLIC),
        listed!(POST "/api/v1/submit", PUBLIC),
        listed!(POST "/api/{project}/minidump/", PUBLIC),
        listed!(POST "/api/{project}/envelope/", PUBLIC),
        listed!(POST "/api/v1/crash-sites", PUBLIC),
        // Operations.
        api!(GET "/healthz", PUBLIC, api::healthz),
        api!(GET "/metrics", PUBLIC, api::metrics),
        // The API's description (triage/openapi.rs).
        api!(GET "/api/v1/openapi.json", PUBLIC, api::openapi_json),
        // JSON API.
        api!(GET "/api/v1/issues", roles(READ_CONTENTS), api::list_issues),
        api!(GET "/api/v1/issues/{id}", roles(READ_CONTENTS), api::get_issue),
        api!(GET "/api/v1/reports", roles(READ_CONTENTS), search::search_reports),
        api!(GET "/api/v1/issues/{id}/daily", roles(READ_CONTENTS), trends::issue_daily),
        api!(GET "/api/v1/daily", roles(READ_CONTENTS), trends::product_daily),
        api!(GET "/api/v1/reports/{id}", roles(READ_METADATA), api::get_report),
        api!(DELETE "/api/v1/reports/{id}", Access::DeletionTokenOr(READ_CONTENTS), deletion::delete_report),
        api!(GET "/api/v1/reports/{id}/minidump", roles(READ_CONTENTS), api::get_minidump),
        api!(GET "/api/v1/token", roles(ALL_ROLES), api::current_token),
        api!(GET "/api/v1/tokens", roles(ADMIN), api::list_tokens),
        api!(POST "/api/v1/tokens", roles(ADMIN), api::create_token),
        api!(DELETE "/api/v1/tokens/{id}", roles(ADMIN), api::revoke_token),
        api!(GET "/api/v1/symbols/missing", roles(SYMBOLS), api::missing_symbols),
        // Symbols (triage/symbols.rs): upload; download in the Breakpad layout.
        api!(POST "/api/v1/symbols", roles(symbols::UPLOADERS), symbols::upload),
        api!(HEAD "/symbols/{debug_file}/{debug_id}/{file}", PUBLIC, symbols::head),
        api!(GET "/symbols/{debug_file}/{debug_id}/{file}", PUBLIC, symbols::download),
        // Issue lifecycle (triage/lifecycle.rs): resolve, reopen, delete.
        api!(POST "/api/v1/issues/{id}/resolve", roles(READ_CONTENTS), lifecycle::resolve),
        api!(POST "/api/v1/issues/{id}/reopen", roles(READ_CONTENTS), lifecycle::reopen),
        api!(DELETE "/api/v1/issues/{id}/reports", roles(READ_CONTENTS), lifecycle::delete_issue_reports),
        api!(DELETE "/api/v1/issues/{id}", roles(READ_CONTENTS), lifecycle::delete_issue),
        // The audit log (triage/audit.rs).
        api!(GET "/api/v1/audit", roles(ADMIN), audit::api),
        page!(GET "/audit", roles(ADMIN), audit::page),
        // A person deletes their own report (triage/deletion.rs).
        page!(GET "/forget", PUBLIC, deletion::forget_form),
        page!(POST "/forget", PUBLIC, deletion::forget),
        // HTML pages.
        page!(GET "/", PUBLIC, pages::home),
        page!(GET "/login", PUBLIC, pages::session::login_form),
        page!(POST "/login", PUBLIC, pages::session::login),
        page!(POST "/logout", roles(ALL_ROLES), pages::session::logout),
        page!(GET "/issues", roles(READ_CONTENTS), pages::issues::list),
        page!(GET "/issues/{id}", roles(READ_CONTENTS), pages::issues::show),
        page!(POST "/issues/{id}/resolve", roles(READ_CONTENTS), pages::issues::resolve),
        page!(POST "/issues/{id}/reopen", roles(READ_CONTENTS), pages::issues::reopen),
        page!(POST "/issues/{id}/delete", roles(READ_CONTENTS), pages::issues::delete),
        page!(GET "/reports/{id}", roles(READ_CONTENTS), pages::reports::show),
        page!(GET "/reports/{id}/minidump", roles(READ_CONTENTS), pages::reports::minidump),
        page!(GET "/lookup", roles(READ_METADATA), pages::reports::lookup),
        page!(GET "/symbols", roles(SYMBOLS), pages::admin::symbols),
        page!(GET "/tokens", roles(ADMIN), pages::admin::tokens),
        page!(POST "/tokens", roles(ADMIN), pages::admin::create_token),
        page!(POST "/tokens/{id}/revoke", roles(ADMIN), pages::admin::revoke_token),
    ]
}

/// The largest body a public route reads (the sign-in and deletion forms:
/// a token or a receipt). Anyone may send one, in pieces as small as a byte
/// that cost the server about 2 µs each: axum's default of 2 MB cost 2.5 s of
/// a core.
const PUBLIC_BODY_BYTES: usize = 16 * 1024;

/// Builds the router for `table`, with the role check of each entry in front of
/// its handler (and [`PUBLIC_BODY_BYTES`] for the public ones). Entries without
/// a handler are skipped (another router serves them).
pub fn build(state: &TriageState, table: Vec<Route>) -> Router<TriageState> {
    let mut router = Router::new();
    for route in table {
        let Some(handler) = route.handler else {
            continue;
        };
        let mut method_router = handler();
        if route.access == Access::Public {
            method_router = method_router.layer(DefaultBodyLimit::max(PUBLIC_BODY_BYTES));
        } else {
            let (access, surface) = (route.access, route.surface);
            method_router = method_router.route_layer(middleware::from_fn_with_state(
                state.clone(),
                move |state: State<TriageState>, request: Request, next: Next| {
                    check(access, surface, state, request, next)
                },
            ));
        }
        router = router.route(route.path, method_router);
    }
    router
}

/// The role check in front of every route that is not public: lets the request
/// through with its [`Caller`](super::auth::Caller) in the request extensions, or
/// refuses it ([`Refusal`]: 401/403 for the API; a redirect to the sign-in page
/// or 403 for pages). A [`Access::DeletionTokenOr`] route lets a request with a
/// deletion token through to its handler, which checks it against the report.
async fn check(
    access: Access,
    surface: Surface,
    State(state): State<TriageState>,
    mut request: Request,
    next: Next,
) -> Response {
    if matches!(access, Access::DeletionTokenOr(_)) && deletion_token(request.headers()).is_some() {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let refuse = |error| {
        Refusal {
            surface,
            error,
            wanted,
        }
        .into_response()
    };
    let caller = match authenticate(state.index(), request.headers(), surface).await {
        Ok(caller) => caller,
        Err(e) => return refuse(ApiError::Index(e)),
    };
    match caller {
        Some(caller) if access.allows(Some(caller.role)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Some(caller) => {
            tracing::debug!(token = %caller.token_id, role = caller.role.as_str(), path = %request.uri().path(), "forbidden");
            refuse(ApiError::Forbidden)
        }
        None => refuse(ApiError::Unauthorized),
    }
}

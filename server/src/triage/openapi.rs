//! The API's OpenAPI 3.1 description, served at `GET /api/v1/openapi.json`.
//!
//! The route table ([`super::routes()`]) stays the one list of routes: [`document`]
//! describes each route of the table it is given — its path parameters from the
//! path, who may call it from its [`Access`], its error answers from its
//! [`Surface`] — and takes the rest of a JSON route's operation (query, body,
//! answers, with schemas derived from the types) from the `#[utoipa::path]`
//! annotation on its handler. Pages are described as HTML and the uploads (served
//! by `crate::ingest`) as text, as Breakpad clients expect. A JSON route whose
//! handler has no annotation is left out, which the route-table test catches.
//!
//! The JSON answers' schemas come from the types in [`super::schemas`]; the
//! end-to-end test checks live answers against them.

use axum::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::AdditionalProperties;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response, ResponseBuilder, Schema};

use mayday_report::crash_site::CRASH_SITES_PATH;

use super::auth::SESSION_COOKIE;
use super::error::{ErrorBody, Surface};
use super::routes::{Access, Route};
use super::{api, audit, deletion, lifecycle, search, symbols, trends};
use crate::index::Role;

/// The operations described by their handlers' annotations, and the schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mayday",
        description = "The Mayday crash report server's HTTP API. Every error under `/api/` \
            (but the uploads', which answer text as Breakpad clients expect) is JSON of one \
            shape, `ErrorBody`."
    ),
    paths(
        api::healthz,
        api::metrics,
        api::openapi_json,
        api::list_issues,
        api::get_issue,
        search::search_reports,
        trends::issue_daily,
        trends::product_daily,
        api::get_report,
        api::get_minidump,
        api::current_token,
        api::list_tokens,
        api::create_token,
        api::revoke_token,
        api::missing_symbols,
        deletion::delete_report,
        symbols::upload,
        symbols::head,
        symbols::download,
        lifecycle::resolve,
        lifecycle::reopen,
        lifecycle::delete_issue_reports,
        lifecycle::delete_issue,
        audit::api,
    ),
    components(schemas(ErrorBody))
)]
struct Annotated;

/// The security scheme of a bearer token.
const BEARER: &str = "bearer";
/// The security scheme of a report's deletion token.
const DELETION: &str = "deletion_token";
/// The security scheme of a browser session.
const SESSION: &str = "session";

/// The description of the routes of `table`: what each one takes and answers,
/// and who may call it.
pub fn document(table: &[Route]) -> utoipa::openapi::OpenApi {
    let mut doc = Annotated::openapi();
    let annotated = std::mem::take(&mut doc.paths);
    for route in table {
        let method = http_method(&route.method);
        let described = annotated
            .get_path_operation(route.path, method.clone())
            .cloned();
        let mut operation = match (described, route.surface, route.handler) {
            (Some(operation), _, _) => operation,
            (None, Surface::Page, _) => page_operation(route),
            (None, Surface::Api, None) if route.path == CRASH_SITES_PATH => crash_site_operation(),
            (None, Surface::Api, None) => upload_operation(),
            // A JSON route without its annotation: left out (the test says which).
            (None, Surface::Api, Some(_)) => continue,
        };
        add_path_parameters(&mut operation, route.path);
        add_access(&mut operation, route);
        doc.paths
            .add_path_operation(route.path, vec![method], operation);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    // The processed report's own fields are not described one by one.
    if let Some(RefOr::T(Schema::Object(contents))) = components.schemas.get_mut("ReportContents") {
        contents.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
    }
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        DELETION,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`Deletion <token>`: the deletion token the upload's receipt gave.",
        ))),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "A browser session, from `POST /login`.",
        ))),
    );
    doc
}

/// The description's method for `method`.
fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::PATCH => HttpMethod::Patch,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        _ => HttpMethod::Get,
    }
}

/// A response of `description` whose body is `content_type`.
fn response(description: &str, content_type: &str, schema: Option<Ref>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(content_type, Content::new(schema))
        .build()
}

/// An error response: an [`ErrorBody`].
fn error_response(description: &str) -> Response {
    response(
        description,
        "application/json",
        Some(Ref::from_schema_name("ErrorBody")),
    )
}

/// A page: HTML, errors included.
fn page_operation(route: &Route) -> Operation {
    let mut operation = Operation::new();
    operation.summary = Some(format!("The `{}` page (HTML).", route.path));
    operation.responses.responses.insert(
        "default".to_owned(),
        response("An HTML page (errors too).", "text/html", None).into(),
    );
    operation
}

/// An upload, served by `crate::ingest` (`/submit` and the Sentry endpoints):
/// a Breakpad/Crashpad form (or a Sentry request), answered in text.
fn upload_operation() -> Operation {
    let mut operation = Operation::new();
    operation.summary = Some("A crash report upload.".to_owned());
    operation.description = Some(
        "A Breakpad/Crashpad upload (`multipart/form-data` with `upload_file_minidump`, \
         optionally gzip-encoded) or a Sentry SDK's minidump or envelope. Answers \
         `CrashID=bp-… DeletionToken=…` as text (JSON when asked with \
         `Accept: application/json`, and for the Sentry endpoints); a refusal is \
         text such as `Discarded=malformed_<reason>` or `Error=try_again_later`."
            .to_owned(),
    );
    let responses = &mut operation.responses.responses;
    responses.insert(
        "200".to_owned(),
        ResponseBuilder::new()
            .description("Stored: the receipt.")
            .content("text/plain", Content::new(None::<Ref>))
            .content("application/json", Content::new(None::<Ref>))
            .build()
            .into(),
    );
    for (status, what) in [
        ("400", "A malformed upload; not to be sent again."),
        ("413", "Over a size limit; not to be sent again."),
        ("429", "Too many uploads from this sender: `Retry-After`."),
        ("503", "Not stored: try again later (`Retry-After`)."),
    ] {
        responses.insert(status.to_owned(), response(what, "text/plain", None).into());
    }
    operation
}

/// `POST /api/v1/crash-sites`, served by `crate::ingest`: a crash summary in,
/// whether its dump is wanted out (`mayday_report::crash_site`, whose types are
/// the wire format; described here by hand, that crate knows nothing of OpenAPI).
fn crash_site_operation() -> Operation {
    let described = serde_json::json!({
        "summary": "Is this crash's dump wanted?",
        "description": "A crash summary — product, version, OS family and the crash-site key, \
            nothing else — asks whether the dump is wanted. `send`: upload it; `counted`: the \
            crash was added to its issue's counts, keep nothing; `fixed`: as counted, and the \
            issue was resolved in `fixed_in`. A 404 (a server without the route, or with it \
            turned off) means: upload the dump.",
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object",
                "additionalProperties": false,
                "required": ["product", "os", "crash_site"],
                "properties": {
                    "product": {"type": "string"},
                    "version": {"type": ["string", "null"]},
                    "os": {"type": "string"},
                    "crash_site": {"type": "string", "description": "`v1:` and 64 hex digits."}
                }
            }}}
        },
        "responses": {
            "200": {
                "description": "The decision.",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {"type": "string", "enum": ["send", "counted", "fixed"]},
                        "status": {"type": "string", "description": "`counted`: the issue's status."},
                        "fixed_in": {"type": "string", "description": "`fixed`: the version it was fixed in."}
                    }
                }}}
            },
            "400": {"description": "Not a summary: `Discarded=malformed_summary`.", "content": {"text/plain": {}}},
            "404": {"description": "Crash summaries are turned off: upload the dump."},
            "413": {"description": "Over 4 KiB: `Discarded=too_large_summary`.", "content": {"text/plain": {}}},
            "429": {"description": "Too many requests from this sender, or throttled: `Retry-After`.", "content": {"text/plain": {}}},
            "503": {"description": "Not answered: try again later (`Retry-After`).", "content": {"text/plain": {}}}
        }
    });
    serde_json::from_value(described).unwrap_or_else(|_| upload_operation())
}

/// Declares the `{name}` parameters of `path` that the operation does not.
fn add_path_parameters(operation: &mut Operation, path: &str) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    for name in path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let declared = parameters
            .iter()
            .any(|p: &Parameter| p.name == name && p.parameter_in == ParameterIn::Path);
        if !declared {
            parameters.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::String),
                    ))
                    .build(),
            );
        }
    }
    if parameters.is_empty() {
        operation.parameters = None;
    }
}

/// Who may call the route, and how it refuses others; every JSON route under
/// `/api/` answers any other error as an [`ErrorBody`].
fn add_access(operation: &mut Operation, route: &Route) {
    let bearer = SecurityRequirement::new(BEARER, Vec::<String>::new());
    let roles = |roles: &[Role]| {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let responses = &mut operation.responses.responses;
    match (route.access, route.surface) {
        (Access::Public, _) => {}
        (Access::Roles(allowed), Surface::Api) => {
            operation.security = Some(vec![bearer]);
            responses.insert("401".to_owned(), error_response("No valid token.").into());
            responses.insert(
                "403".to_owned(),
                error_response(&format!(
                    "The token's role is not one of: {}.",
                    roles(allowed)
                ))
                .into(),
            );
        }
        (Access::Roles(allowed), Surface::Page) => {
            operation.security = Some(vec![
                bearer,
                SecurityRequirement::new(SESSION, Vec::<String>::new()),
            ]);
            responses.insert(
                "303".to_owned(),
                ResponseBuilder::new()
                    .description("Not signed in: to `/login`.")
                    .build()
                    .into(),
            );
            responses.insert(
                "403".to_owned(),
                response(
                    &format!("The role is not one of: {}.", roles(allowed)),
                    "text/html",
                    None,
                )
                .into(),
            );
        }
        (Access::DeletionTokenOr(allowed), _) => {
            operation.security = Some(vec![
                bearer,
                SecurityRequirement::new(DELETION, Vec::<String>::new()),
            ]);
            responses.insert(
                "401".to_owned(),
                error_response(&format!(
                    "Neither a deletion token nor a token with a role of: {}.",
                    roles(allowed)
                ))
                .into(),
            );
        }
    }
    if route.surface == Surface::Api && route.handler.is_some() && route.path.starts_with("/api/") {
        responses
            .entry("default".to_owned())
            .or_insert_with(|| error_response("Any other error.").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::routes::routes;

    /// The crash-site route is described as the JSON it takes and answers, not
    /// as an upload.
    #[test]
    fn the_crash_site_route_is_described_as_json() {
        let doc = document(&routes());
        let operation = doc
            .paths
            .get_path_operation(CRASH_SITES_PATH, HttpMethod::Post)
            .unwrap();
        assert!(operation.request_body.is_some());
        assert!(operation.responses.responses.contains_key("200"));
        assert!(operation.responses.responses.contains_key("404"));
    }

    /// Every route of the table is described with its method, and every
    /// described operation is a route of the table.
    #[test]
    fn the_description_covers_the_route_table() {
        let table = routes();
        let doc = document(&table);
        for route in &table {
            assert!(
                doc.paths
                    .get_path_operation(route.path, http_method(&route.method))
                    .is_some(),
                "{} {} is not described: annotate its handler with #[utoipa::path] \
                 and name it in `Annotated`",
                route.method,
                route.path
            );
        }
        let annotated = Annotated::openapi();
        for (path, item) in &annotated.paths.paths {
            let value = serde_json::to_value(item).unwrap();
            let methods = value.as_object().unwrap().keys().filter(|k| {
                [
                    "get", "post", "put", "delete", "head", "patch", "options", "trace",
                ]
                .contains(&k.as_str())
            });
            for method in methods {
                let method: Method = method.to_uppercase().parse().unwrap();
                assert!(
                    table.iter().any(|r| r.path == path && r.method == method),
                    "{method} {path} is annotated but not in the route table"
                );
            }
        }
    }
}

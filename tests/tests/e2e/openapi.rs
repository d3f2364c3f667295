//! The API's OpenAPI description (`GET /api/v1/openapi.json`) against the real
//! server: it validates as OpenAPI 3.1, it describes every route of the route
//! table, and live answers — issues, an issue, a report as developer and as
//! support, a report search, daily counts, and errors (401, 403, 404, 400 for a bad query, path or body, 405, 422)
//! — match its schemas, with no field it does not name. The checking is
//! `tests/openapi/check.py` with openapi-spec-validator and jsonschema from the
//! test virtualenv.

use std::io::Write;
use std::process::{Command, Stdio};

use mayday_server::index::Role;
use mayday_tests::api::header_or_empty;
use mayday_tests::fixtures::{test_venv_python, workspace_root};
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A small dump the test data has symbols for.
const DUMP: &str = "breakpad-win-x86-minidump2/minidump2.dmp";

/// The route table's path that `path` (query left out) is, or `path` when no
/// route has it.
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    mayday_server::triage::routes()
        .iter()
        .map(|r| r.path)
        .find(|pattern| {
            let pattern: Vec<&str> = pattern.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || p.starts_with('{'))
        })
        .unwrap_or(path)
        .to_owned()
}

/// One live answer: the request, the route it is (the table's path), the status
/// and the JSON body.
async fn answer(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Value {
    let mut request = server.request(method.clone(), path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = header_or_empty(&response, "content-type");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{method} {path} ({status}, {content_type}): not JSON ({e}): {text}")
    });
    if !status.is_success() {
        // Every API error: JSON of one shape.
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        assert!(body["reason"].is_string(), "{method} {path}: {body}");
    }
    json!({
        "method": method.as_str(),
        "path": path,
        "route": route_of(path),
        "status": status.as_u16(),
        "body": body,
    })
}

#[tokio::test]
async fn the_description_validates_covers_every_route_and_matches_live_answers() {
    let case = testdata::case(DUMP);
    let server = TestServer::with_symbols_of([&case]).await;
    let [developer, support, admin] = server
        .tokens([Role::Developer, Role::Support, Role::Admin])
        .await;
    let (id, processed) = server
        .submit_processed(
            &developer,
            &case.bytes(),
            &[("prod", "DescribedApp"), ("ver", "1.0")],
        )
        .await;
    assert_eq!(processed["state"], "processed", "{processed}");
    let issue_id = processed["issue_id"].as_i64().unwrap();

    // The description, public.
    let response = server.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0", "{document}");

    let issue = format!("/api/v1/issues/{issue_id}");
    let report = format!("/api/v1/reports/{id}");
    let missing = "/api/v1/reports/bp-00000000-0000-4000-8000-000000000000";
    let (dev, sup, adm) = (
        Some(developer.as_str()),
        Some(support.as_str()),
        Some(admin.as_str()),
    );
    let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
    let missing_symbols = "/api/v1/symbols/missing";
    let daily = format!("/api/v1/issues/{issue_id}/daily?days=30");
    let os = processed["os"].as_str().unwrap();
    let issues_on_os = format!("/api/v1/issues?product=DescribedApp&os={os}");
    let bad_limit = "/api/v1/issues?limit=abc";
    let bad_role = Some(r#"{"role":"owner"}"#);
    // (method, path, token, JSON body, status).
    let asked = [
        (&get, "/api/v1/issues", dev, None, 200),
        (&get, &issue, dev, None, 200),
        (&get, &report, dev, None, 200),
        (&get, &report, sup, None, 200),
        (&get, "/api/v1/tokens", adm, None, 200),
        (&get, "/api/v1/token", sup, None, 200),
        (&get, "/api/v1/audit", adm, None, 200),
        (&get, missing_symbols, dev, None, 200),
        (&get, "/healthz", None, None, 200),
        (
            &get,
            "/api/v1/reports?product=DescribedApp&min_version=1.0",
            dev,
            None,
            200,
        ),
        (&get, &issues_on_os, dev, None, 200),
        (&get, &daily, dev, None, 200),
        (
            &get,
            "/api/v1/daily?product=DescribedApp&days=7",
            dev,
            None,
            200,
        ),
        (&get, "/api/v1/daily", dev, None, 200),
        // Errors.
        (
            &get,
            "/api/v1/reports?min_version=not-a-version",
            dev,
            None,
            400,
        ),
        (&get, "/api/v1/daily?days=0", dev, None, 400),
        (&get, "/api/v1/issues", None, None, 401),
        (&get, "/api/v1/issues", sup, None, 403),
        (&get, missing, dev, None, 404),
        (&get, bad_limit, dev, None, 400),
        (&get, "/api/v1/issues/abc", dev, None, 400),
        (&post, "/api/v1/tokens", adm, Some("{not json"), 400),
        (&post, "/api/v1/tokens", adm, bad_role, 422),
        (&put, "/api/v1/issues", dev, None, 405),
        // A path no route has.
        (&get, "/api/v1/nowhere", dev, None, 404),
    ];
    let mut answers = Vec::new();
    for (method, path, token, body, status) in asked {
        let answer = answer(&server, method.clone(), path, token, body).await;
        assert_eq!(answer["status"], status, "{answer:#}");
        answers.push(answer);
    }
    // The two views of a report differ as the roles do.
    assert!(answers[2]["body"]["threads"].is_array(), "{}", answers[2]);
    assert!(
        answers[3]["body"].get("threads").is_none(),
        "{}",
        answers[3]
    );
    // The search and the daily counts found the report.
    assert_eq!(
        answers[9]["body"]["reports"][0]["id"],
        id.as_str(),
        "{}",
        answers[9]
    );
    assert_eq!(
        answers[10]["body"]["issues"][0]["id"], issue_id,
        "{}",
        answers[10]
    );
    assert_eq!(
        answers[11]["body"]["counts"][0]["reports"], 1,
        "{}",
        answers[11]
    );
    assert_eq!(answers[12]["body"]["counts"][0]["product"], "DescribedApp");
    assert_eq!(answers.last().unwrap()["body"]["reason"], "not_found");
    server.stop().await;

    let routes: Vec<Value> = mayday_server::triage::routes()
        .iter()
        .map(|r| json!([r.method.as_str(), r.path]))
        .collect();
    let input = json!({ "document": document, "routes": routes, "answers": answers });
    let mut child = Command::new(test_venv_python())
        .arg(workspace_root().join("tests/openapi/check.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the description or an answer does not check:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

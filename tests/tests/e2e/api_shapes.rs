//! The JSON shapes of the API, in one place: a real dump goes through a real
//! server, and what each route answers is compared with a committed snapshot
//! (`snapshots/`), so that a change to a field is a visible diff. What varies from
//! run to run (ids, times, tokens) is redacted; lists whose order may vary are
//! sorted first.
//!
//! A changed shape fails the test. Review the `.snap.new` files insta writes next
//! to the snapshots (outside CI) and accept them with `cargo insta review`, or by
//! renaming them.

use insta::internals::{Content, ContentPath, Redaction};
use insta::{Settings, assert_json_snapshot, dynamic_redaction};
use mayday_server::index::Role;
use mayday_tests::api;
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use mayday_tests::upload::Multipart;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A small dump the test data has symbols for.
const DUMP: &str = "breakpad-win-x86-minidump2/minidump2.dmp";

/// Every answer a snapshot is taken of, with its status where that is the point.
struct Answers {
    submit: Value,
    issues: Value,
    issue: Value,
    report_developer: Value,
    report_support: Value,
    not_found: Value,
    unauthorized: Value,
    tokens: Value,
}

/// Submits the dump with a JSON reply, waits for it to be processed, and reads
/// every route the snapshots cover.
async fn answers() -> Answers {
    let case = testdata::case(DUMP);
    let server = TestServer::with_symbols_of([&case]).await;
    let [developer, support, admin] = server
        .tokens([Role::Developer, Role::Support, Role::Admin])
        .await;

    let (content_type, body) = Multipart::new()
        .text("prod", "ShapeApp")
        .text("ver", "1.2.3")
        .dump(&case.bytes())
        .finish();
    let response = server
        .request(Method::POST, "/submit")
        .header("Content-Type", content_type)
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (submit, id) = api::json_receipt(response).await;
    let processed = server.wait_processed(&developer, &id).await;
    assert_eq!(processed["state"], "processed", "{processed}");
    let issue_id = processed["issue_id"].as_i64().unwrap();

    let ok = |(status, json): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    };
    let report = format!("/api/v1/reports/{id}");
    let issues = ok(server.get_json("/api/v1/issues", &developer).await);
    let issue = ok(server
        .get_json(&format!("/api/v1/issues/{issue_id}"), &developer)
        .await);
    let report_developer = ok(server.get_json(&report, &developer).await);
    let report_support = ok(server.get_json(&report, &support).await);
    let mut tokens = ok(server.get_json("/api/v1/tokens", &admin).await);
    // Tokens made in the same millisecond have no order of their own.
    tokens["tokens"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|t| t["role"].as_str().unwrap_or_default().to_owned());

    let (status, body) = server
        .get_json(
            "/api/v1/reports/bp-00000000-0000-4000-8000-000000000000",
            &developer,
        )
        .await;
    let not_found = json!({ "status": status.as_u16(), "body": body });
    let response = server.get("/api/v1/issues").await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let unauthorized = json!({ "status": status, "body": body });

    server.stop().await;
    Answers {
        submit,
        issues,
        issue,
        report_developer,
        report_support,
        not_found,
        unauthorized,
        tokens,
    }
}

/// Replaces a value with `label`, unless it is null (whether a field is set is
/// part of the shape).
fn unless_null(label: &'static str) -> Redaction {
    dynamic_redaction(
        move |value: Content, _: ContentPath<'_>| {
            if value.is_nil() { value } else { label.into() }
        },
    )
}

/// The redactions of everything that differs between runs.
fn settings() -> Settings {
    let mut settings = Settings::clone_current();
    settings.set_sort_maps(true);
    for (selector, label) in [
        (".crash_id", "[crash id]"),
        (".deletion_token", "[deletion token]"),
        (".sample_report_id", "[crash id]"),
        (".**.id", "[id]"),
        (".**.issue_id", "[issue id]"),
        (".**.received_at", "[time]"),
        (".**.processed_at", "[time]"),
        (".**.first_seen", "[time]"),
        (".**.last_seen", "[time]"),
        (".**.resolved_at", "[time]"),
        (".**.created_at", "[time]"),
        (".**.last_used_at", "[time]"),
        (".**.revoked_at", "[time]"),
    ] {
        settings.add_redaction(selector, unless_null(label));
    }
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_in_the_shapes_of_the_snapshots() {
    let answers = answers().await;
    settings().bind(|| {
        assert_json_snapshot!("submit_reply", answers.submit);
        assert_json_snapshot!("issues_list", answers.issues);
        assert_json_snapshot!("issue", answers.issue);
        assert_json_snapshot!("report_as_developer", answers.report_developer);
        assert_json_snapshot!("report_as_support", answers.report_support);
        assert_json_snapshot!("error_not_found", answers.not_found);
        assert_json_snapshot!("error_unauthorized", answers.unauthorized);
        assert_json_snapshot!("tokens_list", answers.tokens);
    });
}

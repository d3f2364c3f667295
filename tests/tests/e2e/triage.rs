//! Triage: the web UI in real headless Chromium, the role matrix over every route
//! of the route table, support never seeing crash contents, and the `issues` CLI.

use std::process::Command;

use mayday_server::index::Role;
use mayday_server::triage::{Access, Route, Surface, routes};
use mayday_tests::api::{header_or_empty, texts};
use mayday_tests::browser::Browser;
use mayday_tests::fixtures::{bin, read_json};
use mayday_tests::server::TestServer;
use mayday_tests::testdata::{self, Case};
use mayday_tests::upload::Multipart;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The dumps these tests submit: small, symbolicated, different platforms.
const CASES: &[&str] = &[
    "breakpad-win-x86-minidump2/minidump2.dmp",
    "symbolic-linux-x64-crash/linux-mini.dmp",
    "rust-minidump-macos-x64-inlines/pipeline-inlines-macos-segv.dmp",
];

/// An annotation value only the submitted reports carry.
const SECRET_ANNOTATION: &str = "triage-test-note-7f3a9c";

/// A report the tests submitted, with what the developer API says about it.
struct Submitted {
    case: Case,
    id: String,
    dump: Vec<u8>,
    processed: Value,
}

/// A server with the symbols of [`CASES`] and one report of each, processed.
async fn server_with_reports() -> (TestServer, String, Vec<Submitted>) {
    let cases: Vec<Case> = CASES.iter().map(|path| testdata::case(path)).collect();
    let server = TestServer::with_symbols_of(&cases).await;
    let developer = server.token(Role::Developer).await;
    let mut submitted = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let bytes = case.bytes();
        let version = format!("1.{i}.0");
        let fields = [
            ("prod", "TriageApp"),
            ("ver", version.as_str()),
            ("Notes", SECRET_ANNOTATION),
        ];
        let (id, processed) = server.submit_processed(&developer, &bytes, &fields).await;
        assert_eq!(processed["state"], "processed", "{processed}");
        submitted.push(Submitted {
            case,
            id,
            dump: bytes,
            processed,
        });
    }
    (server, developer, submitted)
}

/// Function names of the reference tool's crashing thread for `case`.
fn reference_functions(case: &Case) -> Vec<String> {
    read_json(&case.reference)["crashing_thread"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_triages_in_headless_chromium() {
    let (server, _developer, submitted) = server_with_reports().await;
    let token = server.token(Role::Developer).await;
    let browser = Browser::start(&server.url).await;

    // Signed out: the issues page sends the browser to sign in.
    browser.goto("/issues").await;
    assert_eq!(browser.path().await, "/login");
    browser.sign_in(&token).await;

    // The open issues: one per submitted dump.
    browser.find("#issues").await;
    assert_eq!(browser.path().await, "/issues");
    let links = browser.find_all("#issues a.issue").await;
    assert_eq!(links.len(), CASES.len(), "{}", browser.source().await);
    // The session cookie is HttpOnly: page scripts cannot read it.
    let visible = browser
        .client()
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(visible, Value::String(String::new()));
    // The Content-Security-Policy lets the pages' own style sheet apply.
    let header_colour = browser
        .client()
        .execute(
            "return getComputedStyle(document.querySelector('header')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(header_colour, Value::String("rgb(29, 35, 48)".to_owned()));
    browser.screenshot("issues.png").await;

    // The Windows dump's issue: its stack shows the reference tool's functions.
    let win = &submitted[0];
    let issue_id = win.processed["issue_id"].as_i64().unwrap();
    browser
        .click(&format!("a.issue[href='/issues/{issue_id}']"))
        .await;
    browser.find("#signature").await;
    let source = browser.source().await;
    // The count bars are drawn without style attributes, which the policy forbids.
    let bar_width = browser
        .client()
        .execute(
            "return document.querySelector('.bar rect').getBoundingClientRect().width",
            vec![],
        )
        .await
        .unwrap();
    assert!(bar_width.as_f64().is_some_and(|w| w > 0.0), "{bar_width}");
    let functions = reference_functions(&win.case);
    assert!(functions.iter().any(|f| f.contains("CrashFunction")));
    for function in &functions {
        let escaped = function.replace('&', "&amp;").replace('<', "&lt;");
        assert!(
            source.contains(&escaped),
            "the sample stack shows {function}"
        );
    }
    let stack_text = browser.text("table.stack").await;
    assert!(stack_text.contains("CrashFunction"), "{stack_text}");
    assert!(stack_text.contains("test_app.exe"), "{stack_text}");
    browser.screenshot("issue.png").await;

    // The report page: crash reason and the crashing thread.
    browser
        .click(&format!("a[href='/reports/{}']", win.id))
        .await;
    let reason = browser.text("#crash-reason").await;
    assert_eq!(reason, "EXCEPTION_ACCESS_VIOLATION_WRITE");
    let page = browser.source().await;
    assert!(page.contains("CrashFunction"));
    assert!(page.contains(SECRET_ANNOTATION), "annotations are shown");
    assert!(page.contains("<details>"), "other threads are folded");
    assert!(page.contains("id=\"other-threads\""), "behind one fold");
    browser.screenshot("report.png").await;

    // Resolve it from its page: it says what it deletes and asks first.
    browser.goto(&format!("/issues/{issue_id}")).await;
    browser.click("#resolve-open").await;
    assert_eq!(
        browser.text("#resolve").await,
        "Resolve and delete 1 stored report"
    );
    browser.click("#resolve").await;
    // The notice is only on the page the form redirects to.
    let notice = browser.find("p.notice").await;
    let status = browser.text("#issue-status").await;
    assert_eq!(status, "resolved");
    assert_eq!(
        notice.text().await.unwrap(),
        "Resolved; 1 stored report deleted."
    );
    browser.screenshot("resolved.png").await;

    // It left the open list, and is in the resolved one.
    browser.goto("/issues").await;
    let open = browser.source().await;
    assert!(!open.contains(&format!("href=\"/issues/{issue_id}\"")));
    assert_eq!(browser.find_all("a.issue").await.len(), CASES.len() - 1);
    browser.goto("/issues?status=resolved").await;
    let resolved = browser.source().await;
    assert!(resolved.contains(&format!("href=\"/issues/{issue_id}\"")));

    // Support: sign out, sign in with a support token, find a report by CrashID.
    browser.sign_out().await;
    let support = server.token(Role::Support).await;
    browser.sign_in(&support).await;
    let linux = &submitted[1];
    browser.fill("#crash-id", &format!("{}\n", linux.id)).await;
    let card = browser.text("#report").await;
    assert!(
        card.contains(&linux.id) && card.contains("processed"),
        "{card}"
    );
    assert!(
        card.contains("TriageApp") && card.contains("1.1.0"),
        "{card}"
    );
    let page = browser.source().await;
    assert!(!page.contains("WriteProcFile"), "no frames for support");
    assert!(
        !page.contains(SECRET_ANNOTATION),
        "no annotations for support"
    );
    browser.screenshot("lookup.png").await;
    // Support has no issues page.
    browser.goto("/issues").await;
    assert!(browser.source().await.contains("403"));

    // An admin: the tokens and symbols pages.
    browser.goto("/lookup").await;
    browser.sign_out().await;
    let admin = server.token(Role::Admin).await;
    browser.sign_in(&admin).await;
    browser.find("#issues").await;
    browser.goto("/tokens").await;
    let tokens = browser.text("#tokens").await;
    assert!(
        tokens.contains("support") && tokens.contains("admin"),
        "{tokens}"
    );
    browser.screenshot("tokens.png").await;
    browser.goto("/symbols").await;
    let present = browser.text("#present").await;
    assert!(present.contains("test_app.pdb"), "{present}");
    browser.screenshot("symbols.png").await;

    // The audit log names tokens and fits a 1280 px window.
    browser
        .client()
        .set_window_rect(0, 0, 1280, 900)
        .await
        .unwrap();
    browser.goto("/audit").await;
    let audit = browser.text("#audit").await;
    assert!(audit.contains("test (developer)"), "{audit}");
    let width = browser
        .client()
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap();
    let inner = browser
        .client()
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(
        width.as_u64().unwrap() <= inner.as_u64().unwrap(),
        "the audit page is {width} px wide in a {inner} px window"
    );
    browser.screenshot("audit.png").await;

    browser.close().await;
    server.stop().await;
}

/// Values for the path parameters of `route`: real ids for reads, ids that do not
/// exist for anything that changes state (so the matrix deletes nothing).
fn concrete_path(route: &Route, issue_id: i64, report_id: &str) -> String {
    let reads = route.method == reqwest::Method::GET;
    let mut path = route.path.to_owned();
    while let Some(start) = path.find('{') {
        let end = start + path[start..].find('}').unwrap();
        let value = if route.path.starts_with("/issues") || route.path.starts_with("/api/v1/issues")
        {
            if reads {
                issue_id.to_string()
            } else {
                "999999".to_owned()
            }
        } else if route.path.contains("reports") {
            if reads {
                report_id.to_owned()
            } else {
                "bp-00000000-0000-4000-8000-000000000000".to_owned()
            }
        } else {
            "no-such-thing".to_owned()
        };
        path.replace_range(start..=end, &value);
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_exactly_the_roles_of_the_route_table() {
    let (server, _developer, submitted) = server_with_reports().await;
    let report_id = &submitted[0].id;
    let issue_id = submitted[0].processed["issue_id"].as_i64().unwrap();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((Some(role), server.token(role).await));
    }
    let table = routes();
    assert!(table.len() > 20, "the table has every route");
    let mut keys: Vec<(String, &str)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "no route is listed twice");
    let mut checked = 0;
    for route in &table {
        let path = concrete_path(route, issue_id, report_id);
        for (role, token) in std::iter::once((None, None)).chain(
            tokens
                .iter()
                .map(|(role, token)| (*role, Some(token.as_str()))),
        ) {
            let mut request = server.request(route.method.clone(), &path);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if route.method == reqwest::Method::POST {
                request = match route.surface {
                    Surface::Api => request.json(&serde_json::json!({})),
                    Surface::Page => request
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(""),
                };
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let location = header_or_empty(&response, "location");
            let to_login = status == StatusCode::SEE_OTHER && location.starts_with("/login?next=");
            let who = role.map_or("no token", Role::as_str);
            let what = format!(
                "{} {} as {who}: {status} {location}",
                route.method, route.path
            );
            // The router really serves the route: axum's own "no such route" is an
            // empty 404, and a method it does not route is a 405.
            let body = response.bytes().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
            if route.method != reqwest::Method::HEAD {
                assert!(
                    !(status == StatusCode::NOT_FOUND && body.is_empty()),
                    "not routed: {what}"
                );
            }
            match (route.access, role) {
                (Access::Public, _) => {
                    assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !to_login,
                        "public: {what}"
                    );
                }
                (_, None) if route.surface == Surface::Page => {
                    assert!(to_login, "signed out, to the sign-in page: {what}");
                }
                (_, None) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                (access, Some(role)) if access.allows(Some(role)) => {
                    assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !to_login,
                        "allowed: {what}"
                    );
                }
                (_, Some(_)) => assert_eq!(status, StatusCode::FORBIDDEN, "denied: {what}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.len() * 5);
    // The matrix left the reports alone (every change went to ids that do not exist).
    let developer = server.token(Role::Developer).await;
    let still = server.wait_processed(&developer, report_id).await;
    assert_eq!(still["state"], "processed");
    server.stop().await;
}

/// Strings a support caller must never receive: frame function names (except
/// those in the issue title, which support may see), module paths, annotation
/// values other than product and version.
fn contents_of(report: &Value, issue_titles: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for thread in report["threads"].as_array().unwrap() {
        for frame in thread["frames"].as_array().unwrap() {
            if let Some(f) = frame["function"].as_str() {
                out.push(f.to_owned());
            }
            for inline in frame["inlines"].as_array().into_iter().flatten() {
                out.push(inline["function"].as_str().unwrap().to_owned());
            }
        }
    }
    for module in report["modules"].as_array().unwrap() {
        out.push(module["code_file"].as_str().unwrap().to_owned());
        if let Some(id) = module["debug_id"].as_str() {
            out.push(id.to_owned());
        }
    }
    for (key, value) in report["annotations"].as_object().unwrap() {
        if !["prod", "ver", "ProductName", "Version"].contains(&key.as_str()) {
            out.push(value.as_str().unwrap().to_owned());
        }
    }
    out.retain(|s| s.len() >= 6 && !issue_titles.iter().any(|t| t.contains(s.as_str())));
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_never_sees_crash_contents() {
    let (server, developer, submitted) = server_with_reports().await;
    let support = server.token(Role::Support).await;
    let mut titles = Vec::new();
    for s in &submitted {
        let path = format!("/api/v1/issues/{}", s.processed["issue_id"]);
        let (_, issue) = server.get_json(&path, &developer).await;
        titles.push(issue["issue"]["title"].as_str().unwrap().to_owned());
    }
    let mut forbidden = Vec::new();
    for s in &submitted {
        forbidden.extend(contents_of(&s.processed, &titles));
    }
    assert!(forbidden.iter().any(|f| f == SECRET_ANNOTATION));
    assert!(
        forbidden.iter().any(|f| f.contains("BaseProcessStart")),
        "{forbidden:?}"
    );
    assert!(forbidden.len() > 20, "{forbidden:?}");

    // Everything support may GET, from the route table, for every report; plus
    // the lookup page for each CrashID.
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    for s in &submitted {
        let issue_id = s.processed["issue_id"].as_i64().unwrap();
        let mut paths: Vec<String> = routes()
            .iter()
            .filter(|r| r.method == reqwest::Method::GET && r.access.allows(Some(Role::Support)))
            .map(|r| concrete_path(r, issue_id, &s.id))
            .collect();
        paths.push(format!("/lookup?id={}", s.id));
        paths.push(format!("/lookup?id=CrashID={}", s.id));
        for path in paths {
            let (status, body) = server.get_bytes(&path, &support).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{path}: {status}"
            );
            bodies.push((path, body));
        }
        // And what support may not use answers 403 without a byte of contents.
        for path in [
            format!("/api/v1/reports/{}/minidump", s.id),
            format!("/reports/{}", s.id),
            format!("/reports/{}/minidump", s.id),
            format!("/issues/{issue_id}"),
            format!("/api/v1/issues/{issue_id}"),
        ] {
            let (status, body) = server.get_bytes(&path, &support).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            bodies.push((path, body));
        }
    }
    // The lookup shows what support needs.
    let (_, lookup) = bodies
        .iter()
        .find(|(p, _)| p.starts_with("/lookup?id=bp-"))
        .unwrap();
    let lookup = String::from_utf8_lossy(lookup);
    assert!(lookup.contains("processed") && lookup.contains("TriageApp"));
    assert!(
        lookup.contains(&titles[0].replace('<', "&lt;").replace('>', "&gt;"))
            || lookup.contains(&titles[0])
    );

    for (path, body) in &bodies {
        let text = String::from_utf8_lossy(body);
        for s in &forbidden {
            let escaped = s
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            assert!(
                !text.contains(s.as_str()) && !text.contains(&escaped),
                "support got {s:?} from {path}"
            );
        }
        assert!(!body.windows(4).any(|w| w == b"MDMP"), "a dump in {path}");
        for s in &submitted {
            // Any 32 bytes of the dump past its header.
            for chunk in s.dump[64..].chunks(4096).map(|c| &c[..c.len().min(32)]) {
                if chunk.len() == 32 && chunk.iter().any(|b| *b != 0) {
                    assert!(
                        !body.windows(32).any(|w| w == chunk),
                        "dump bytes in {path}"
                    );
                }
            }
        }
    }
    server.stop().await;
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(bin("mayday-server"))
        .args(args)
        .env_remove("MAYDAY_SERVER")
        .env_remove("MAYDAY_TOKEN")
        .output()
        .expect("mayday-server runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issues_cli_lists_shows_resolves_and_reopens_over_the_api() {
    let (server, developer, submitted) = server_with_reports().await;
    let url = server.url.clone();
    let issue_id = submitted[0].processed["issue_id"].as_i64().unwrap();
    let (list, show, denied, unknown) = tokio::task::spawn_blocking(move || {
        let list = run_cli(&["issues", "--server", &url, "--token", &developer, "list"]);
        let show = run_cli(&[
            "issues",
            "--server",
            &url,
            "--token",
            &developer,
            "show",
            &issue_id.to_string(),
        ]);
        let denied = run_cli(&["issues", "--server", &url, "--token", "mdy_wrong", "list"]);
        let unknown = run_cli(&[
            "issues", "--server", &url, "--token", &developer, "show", "999999",
        ]);
        (list, show, denied, unknown)
    })
    .await
    .unwrap();

    assert!(list.status.success(), "{list:?}");
    let text = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("TITLE"),
        "{text}"
    );
    assert_eq!(lines.len(), 1 + CASES.len(), "{text}");
    assert!(text.contains("CrashFunction"), "{text}");
    assert!(lines.iter().skip(1).all(|l| l.contains("open")), "{text}");

    assert!(show.status.success(), "{show:?}");
    let text = String::from_utf8(show.stdout).unwrap();
    assert!(text.starts_with(&format!("issue {issue_id}: ")), "{text}");
    assert!(
        text.contains("signature") && text.contains("CrashFunction"),
        "{text}"
    );
    assert!(text.contains(&submitted[0].id), "{text}");
    assert!(text.contains("1.0.0"), "counts by version: {text}");

    assert!(!denied.status.success());
    let err = String::from_utf8(denied.stderr).unwrap();
    assert!(err.contains("401"), "{err}");
    assert!(!unknown.status.success());
    let err = String::from_utf8(unknown.stderr).unwrap();
    assert!(err.contains("404"), "{err}");

    // Resolve in a version, see it among the resolved, reopen it.
    let url = server.url.clone();
    let developer = server.token(Role::Developer).await;
    let other = submitted[1].processed["issue_id"].as_i64().unwrap();
    let outputs = tokio::task::spawn_blocking(move || {
        let id = other.to_string();
        let remote = ["issues", "--server", &url, "--token", &developer];
        let run = |args: &[&str]| run_cli(&[&remote[..], args].concat());
        vec![
            run(&["resolve", &id, "--in-version", "2.0"]),
            run(&["list", "--status", "resolved"]),
            run(&["reopen", &id]),
            run(&["list", "--status", "open"]),
        ]
    })
    .await
    .unwrap();
    let texts: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{o:?}");
            String::from_utf8(o.stdout.clone()).unwrap()
        })
        .collect();
    assert_eq!(texts[0], format!("issue {other} resolved in version 2.0\n"));
    assert_eq!(texts[1].lines().count(), 2, "{}", texts[1]);
    assert!(
        texts[1]
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{other} "))
    );
    assert_eq!(texts[2], format!("issue {other} reopened\n"));
    assert!(
        texts[3]
            .lines()
            .any(|l| l.starts_with(&format!("{other} "))),
        "{}",
        texts[3]
    );
    server.stop().await;
}

/// The value of `response`'s header `name`.
fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

/// The CSRF token in a page's first form.
fn csrf_in(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_http_only_csrf_checked_and_end_with_their_token() {
    let server = TestServer::start().await;
    let (admin_id, admin) = server.named_token(Role::Admin, "admin").await;
    let get = |path: &str| server.request(Method::GET, path);
    // What a browser with the session `cookie` sends: a page load, a form.
    let page = |path: &str, cookie: &str| get(path).header("Cookie", cookie).send();
    let form = |path: &str, cookie: &str, fields: &[(&str, &str)]| {
        let request = server.request(Method::POST, path);
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("Cookie", cookie)
        };
        request.form(fields).send()
    };
    let sign_in = || async {
        let fields = [("token", admin.as_str()), ("next", "/tokens")];
        let response = form("/login", "", &fields).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/tokens");
        let set_cookie = header(&response, "set-cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        set_cookie.split(';').next().unwrap().to_owned()
    };

    // A wrong token signs nobody in; an open redirect is not followed.
    let response = form("/login", "", &[("token", "mdy_wrong")]).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    for off_site in [
        "//evil.example/",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%2F/evil.example",
    ] {
        let fields = [("token", admin.as_str()), ("next", off_site)];
        let response = form("/login", "", &fields).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{off_site:?}");
        assert_eq!(response.headers()["location"], "/", "{off_site:?}");
    }

    let cookie = sign_in().await;
    let tokens_page = page("/tokens", &cookie).await.unwrap();
    assert_eq!(tokens_page.status(), StatusCode::OK);
    let csrf = csrf_in(&tokens_page.text().await.unwrap());
    assert_eq!(csrf.len(), 64);

    // State changes need the session's CSRF token.
    for bad in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let fields = [("role", "support"), ("name", "x"), ("csrf", bad)];
        let response = form("/tokens", &cookie, &fields).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "csrf {bad:?}");
    }
    let fields = [("role", "support"), ("name", "helpdesk"), ("csrf", &csrf)];
    let created = form("/tokens", &cookie, &fields).await.unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let created = created.text().await.unwrap();
    assert!(created.contains("id=\"secret\">mdy_"), "{created}");

    // The session is not an API token, and the API ignores cookies.
    let secret = cookie.split_once('=').unwrap().1;
    for request in [
        get("/api/v1/tokens").bearer_auth(secret),
        get("/api/v1/tokens").header("Cookie", &cookie),
    ] {
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Sessions are not listed as tokens.
    let (_, tokens) = server.get_json("/api/v1/tokens", &admin).await;
    let names = texts(&tokens["tokens"], "name");
    assert_eq!(names, ["admin", "helpdesk"]);

    // Signing out ends the session.
    let response = form("/logout", &cookie, &[("csrf", &csrf)]).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(header(&response, "set-cookie").contains("Max-Age=0"));
    let response = page("/tokens", &cookie).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?next=%2Ftokens");

    // Revoking the token ends its sessions too.
    let cookie = sign_in().await;
    let ok = page("/audit", &cookie).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let audit = ok.text().await.unwrap();
    assert!(audit.contains("token.create"), "{audit}");
    assert!(
        server
            .state
            .index()
            .revoke_token(&admin_id, mayday_server::index::now_ms())
            .await
            .unwrap()
    );
    let response = page("/tokens", &cookie).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_ingest_rejections_and_processing() {
    let (server, developer, submitted) = server_with_reports().await;
    // Resolving an issue deletes its report.
    let path = format!(
        "/api/v1/issues/{}/resolve",
        submitted[0].processed["issue_id"]
    );
    let (status, _) = server
        .post_json(&path, &developer, Some(serde_json::json!({})))
        .await;
    assert!(status.is_success(), "{status}");
    // One upload that is not a minidump.
    let (content_type, body) = Multipart::new().dump(b"not a dump").finish();
    let response = server.submit_body(&content_type, body, false).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("mayday_reports_ingested_total"), CASES.len() as f64);
    assert!(value("mayday_jobs_run_total") >= CASES.len() as f64);
    assert_eq!(
        value("mayday_processing_seconds_count"),
        value("mayday_jobs_run_total")
    );
    assert!(value("mayday_processing_seconds_sum") > 0.0);
    assert_eq!(value("mayday_queue_depth"), 0.0);
    // Every job's finish took the SQLite index's writer, for some time, and
    // the uploads were recorded with it: each counted for its user.
    let jobs = "mayday_index_writer_uses_total{by=\"jobs\"}";
    assert!(value(jobs) >= CASES.len() as f64);
    assert!(value("mayday_index_writer_uses_total{by=\"intake\"}") >= 1.0);
    assert!(value("mayday_index_writer_held_seconds_total{by=\"jobs\"}") > 0.0);
    let rejected: f64 = text
        .lines()
        .filter(|l| l.starts_with("mayday_uploads_rejected_total{reason="))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(rejected, 1.0, "{text}");
    assert!(text.contains("# TYPE mayday_reports_deleted_total counter"));
    assert_eq!(
        value("mayday_reports_deleted_total{reason=\"resolved\"}"),
        1.0
    );
    // The reports' symbol files came from the store; each is fetched once.
    let fetches = value("mayday_symbol_store_fetches_total");
    assert!(fetches >= 3.0, "{text}");
    assert!(value("mayday_symbol_cache_hits_total{cache=\"memory\"}") >= 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_symbols_page_ranks_missing_symbols_and_lists_present_ones() {
    let (server, _developer, submitted) = server_with_reports().await;
    let uploader = server.token(Role::Uploader).await;
    let (_, missing) = server.get_json("/api/v1/symbols/missing", &uploader).await;
    let missing = missing["missing"].as_array().unwrap().clone();
    let module = |m: &Value| {
        (
            m["debug_file"].as_str().unwrap().to_owned(),
            m["debug_id"].as_str().unwrap().to_owned(),
        )
    };
    // Every module the reports said lacked symbols is ranked, most needed first.
    let mut expected: Vec<(String, String)> = submitted
        .iter()
        .flat_map(|s| s.processed["missing_symbols"].as_array().unwrap().clone())
        .map(|m| module(&m))
        .collect();
    expected.sort();
    expected.dedup();
    assert!(!expected.is_empty(), "the test data lacks some symbols");
    let mut ranked: Vec<(String, String)> = missing.iter().map(module).collect();
    let counts: Vec<i64> = missing
        .iter()
        .map(|m| m["reports"].as_i64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    ranked.sort();
    assert_eq!(ranked, expected);

    let (status, html) = server.get_bytes("/symbols", &uploader).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(html).unwrap();
    for (file, id) in &expected {
        assert!(
            html.contains(file.as_str()) && html.contains(id.as_str()),
            "{file} {id}"
        );
    }
    // Present: the symbol files the tests added.
    assert!(html.contains("test_app.pdb") && html.contains("5A9832E5287241C1838ED98914E9B7FF1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issues_list_filters_searches_and_sorts() {
    let (server, developer, submitted) = server_with_reports().await;
    let issue = |i: usize| submitted[i].processed["issue_id"].as_i64().unwrap();
    let listed = |query: &'static str| {
        let (server, developer) = (&server, &developer);
        async move {
            let (_, html) = server
                .get_bytes(&format!("/issues?{query}"), developer)
                .await;
            let html = String::from_utf8(html).unwrap();
            let mut ids = Vec::new();
            let mut rest = html.as_str();
            let needle = "class=\"issue\" href=\"/issues/";
            while let Some(at) = rest.find(needle) {
                rest = &rest[at + needle.len()..];
                let end = rest.find('"').unwrap();
                ids.push(rest[..end].parse::<i64>().unwrap());
            }
            ids
        }
    };
    let mut all = listed("").await;
    all.sort();
    let mut expected: Vec<i64> = (0..CASES.len()).map(issue).collect();
    expected.sort();
    assert_eq!(all, expected, "open issues by default");
    assert_eq!(listed("q=CrashFunction").await, [issue(0)]);
    assert_eq!(
        listed("q=crashfunction").await,
        [issue(0)],
        "case-insensitive"
    );
    assert_eq!(listed("version=1.1.0").await, [issue(1)]);
    assert_eq!(listed("os=Windows+NT").await, [issue(0)]);
    assert_eq!(listed("product=TriageApp&os=Linux").await, [issue(1)]);
    assert_eq!(listed("product=Other").await, Vec::<i64>::new());
    assert_eq!(listed("status=resolved").await, Vec::<i64>::new());
    assert_eq!(listed("status=regressed").await, Vec::<i64>::new());
    // Submitted one after another: newest first by first seen.
    let by_first_seen = listed("sort=first_seen").await;
    assert_eq!(by_first_seen, [issue(2), issue(1), issue(0)]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_parameters_out_of_bounds_are_a_clear_400() {
    let (server, admin) = TestServer::with_token(Role::Admin).await;
    let get = |path: String| {
        let request = server.request(Method::GET, &path).bearer_auth(&admin);
        async move { request.send().await.unwrap() }
    };
    let huge = i64::MAX.to_string();
    for api in ["/api/v1/issues", "/api/v1/audit"] {
        for query in [
            format!("offset={huge}"),
            "offset=1000001".to_owned(),
            "limit=99999999999999999999".to_owned(),
            "offset=abc".to_owned(),
        ] {
            let response = get(format!("{api}?{query}")).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{api}?{query}");
            let body: Value = response.json().await.unwrap();
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
        }
        // Within bounds, out-of-range values are clamped as documented.
        let response = get(format!("{api}?limit={huge}&offset=-5")).await;
        assert_eq!(response.status(), StatusCode::OK, "{api}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["offset"], 0);
        assert!(body["limit"].as_i64().unwrap() <= 1000, "{body}");
    }
    for page in ["/issues", "/issues/1", "/audit"] {
        for query in [
            format!("page={huge}"),
            "page=99999999999999999999".to_owned(),
        ] {
            let response = get(format!("{page}?{query}")).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{page}?{query}");
            assert!(response.text().await.unwrap().contains("400 Bad Request"));
        }
        let response = get(format!("{page}?page=-{huge}")).await;
        assert_ne!(response.status(), StatusCode::BAD_REQUEST, "{page}");
        assert!(!response.status().is_server_error(), "{page}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_triage_response_carries_the_security_headers() {
    let (server, admin) = TestServer::with_token(Role::Admin).await;
    let get = |path: &str| server.request(Method::GET, path);
    let requests = [
        get("/healthz"),
        get("/login"),
        get("/forget"),
        // Refusals: signed out, to sign in; a JSON 401; an error page.
        get("/issues"),
        get("/api/v1/issues"),
        get("/issues/999999").bearer_auth(&admin),
        get("/api/v1/audit").bearer_auth(&admin),
        get("/symbols/a.pdb/0000/a.sym"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let what = format!("{} {}", response.url().path(), response.status());
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        // No page runs a script but /forget, which runs its one inline script
        // (filling the form from a forget link), allowed by its hash.
        let script = if response.url().path() == "/forget" {
            "script-src 'sha256-"
        } else {
            "script-src 'none'"
        };
        for directive in [
            "default-src 'self'",
            script,
            "style-src 'sha256-",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["x-frame-options"], "DENY", "{what}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_secure_when_served_over_https() {
    for secure in [None, Some(true)] {
        let server = TestServer::with_config(|c| c.http.secure_cookies = secure).await;
        let admin = server.token(Role::Admin).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (cookie, set_cookie) = server.sign_in(&admin).await;
        // On loopback without the setting: a developer's plain-HTTP server.
        let marked = set_cookie.split("; ").any(|a| a == "Secure");
        assert_eq!(marked, secure == Some(true), "{set_cookie}");
        let page = client
            .get(format!("{}/tokens", server.url))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        let csrf = csrf_in(&page.text().await.unwrap());
        let signed_out = client
            .post(format!("{}/logout", server.url))
            .header("Cookie", &cookie)
            .form(&[("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        let cleared = signed_out.headers()["set-cookie"].to_str().unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(
            cleared.split("; ").any(|a| a == "Secure"),
            secure == Some(true),
            "{cleared}"
        );
        server.stop().await;
    }
}

/// The CLIs' rough edges: `--server`/`--token` also after the subcommand, `--json`
/// output, closed value lists for `--status`/`--sort`, a clear error for a
/// missing or scheme-less server; `token list` has a header; `serve` says where
/// it listens and how to make the first token, and a start that cannot listen
/// creates no data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_take_options_anywhere_refuse_bad_values_and_say_what_they_do() {
    let (server, developer, _) = server_with_reports().await;
    let url = server.url.clone();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        let json = run_cli(&[
            "issues", "list", "--server", &url, "--token", &developer, "--json",
        ]);
        assert!(json.status.success(), "{}", text(&json));
        let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(answer["issues"].as_array().unwrap().len(), CASES.len());

        let bad = run_cli(&[
            "issues", "list", "--server", &url, "--token", &developer, "--status", "opne",
        ]);
        assert!(!bad.status.success());
        assert!(text(&bad).contains("possible values"), "{}", text(&bad));
        let bad = run_cli(&[
            "issues", "list", "--server", &url, "--token", &developer, "--sort", "size",
        ]);
        assert!(!bad.status.success());
        assert!(text(&bad).contains("last_seen"), "{}", text(&bad));
        let missing = run_cli(&["issues", "list", "--token", &developer]);
        assert!(!missing.status.success());
        assert!(text(&missing).contains("--server"), "{}", text(&missing));
        let schemeless = run_cli(&["issues", "list", "--server", "127.0.0.1:1", "--token", "t"]);
        assert!(!schemeless.status.success());
        assert!(
            text(&schemeless).contains("not an http"),
            "{}",
            text(&schemeless)
        );

        let tokens = Command::new(bin("mayday-server"))
            .args(["token", "list"])
            .env("MAYDAY_DATA_DIR", &data_dir)
            .output()
            .unwrap();
        assert!(tokens.status.success(), "{}", text(&tokens));
        assert!(
            String::from_utf8_lossy(&tokens.stdout).starts_with("ID\tROLE\tSTATE\tNAME\n"),
            "{}",
            text(&tokens)
        );

        // A port already taken: the start fails and leaves no data dir behind.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fresh = data_dir.join("fresh");
        let failed = Command::new(bin("mayday-server"))
            .arg("serve")
            .env("MAYDAY_DATA_DIR", &fresh)
            .env("MAYDAY_LISTEN", taken.local_addr().unwrap().to_string())
            .output()
            .unwrap();
        assert!(!failed.status.success());
        assert!(text(&failed).contains("while binding"), "{}", text(&failed));
        assert!(!fresh.exists(), "{}", text(&failed));
        let help = Command::new(bin("mayday-server"))
            .args(["serve", "--help"])
            .output()
            .unwrap();
        let help = text(&help);
        assert!(help.contains("MAYDAY_LOG"), "{help}");
        // Every setting, with its variables and default.
        for listed in [
            "\n  limits.max_wire_bytes = 26214400\n      MAYDAY_LIMITS__MAX_WIRE_BYTES\n",
            "\n  pipeline.job_lease = \"5m\"\n      MAYDAY_PIPELINE__JOB_LEASE\n",
            "\n  scrub.annotations.key_action = \"remove\"\n      \
             MAYDAY_SCRUB__ANNOTATIONS__KEY_ACTION\n",
            "\n  pipeline.workers = ",
            "      MAYDAY_PIPELINE__WORKERS, or MAYDAY_WORKERS\n",
            "\n  master_key = (unset)\n",
            "\n  throttle = []\n      MAYDAY_THROTTLE\n",
        ] {
            assert!(help.contains(listed), "{listed} in {help}");
        }
        // A variable naming no setting stops the start, naming it.
        let typo = Command::new(bin("mayday-server"))
            .arg("serve")
            .env("MAYDAY_DATA_DIR", data_dir.join("typo"))
            .env("MAYDAY_LISTEN", "127.0.0.1:0")
            .env("MAYDAY_LIMITS__MAX_WIRE_BYTE", "1000")
            .output()
            .unwrap();
        assert!(!typo.status.success());
        assert!(
            text(&typo).contains("MAYDAY_LIMITS__MAX_WIRE_BYTE=\"1000\": names no setting"),
            "{}",
            text(&typo)
        );
    })
    .await
    .unwrap();
    server.stop().await;

    // A server with one setting from its generic variable: uploads over a
    // kilobyte on the wire are refused.
    let data = tempfile::tempdir().unwrap();
    let process = mayday_tests::server::ServerProcess::start(
        data.path(),
        &[("MAYDAY_LIMITS__MAX_WIRE_BYTES", "1024")],
    );
    // The words follow the "listening" log line the start waits for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut said = String::new();
    while std::time::Instant::now() < deadline && !said.contains("token create") {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        said = process.log.lock().unwrap().join("\n");
    }
    assert!(
        said.contains(&format!("Mayday is listening on {}", process.url))
            && said.contains("token create --role admin"),
        "{said}"
    );
    let (content_type, body) = Multipart::new().dump(&[7; 2048]).finish();
    let answer = reqwest::Client::new()
        .post(format!("{}/submit", process.url))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(process);
}

/// Every read of issue data is audited, by API and page, under the token that
/// read it; symbol downloads (a public route, as symbol servers are) as `public`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_issues_and_symbol_downloads_are_audited() {
    let (server, _, submitted) = server_with_reports().await;
    let (reader, developer) = server.named_token(Role::Developer, "reader").await;
    let issue = submitted[0].processed["issue_id"].as_i64().unwrap();
    let (status, _) = server.get_json("/api/v1/issues", &developer).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    for page in ["/issues".to_owned(), format!("/issues/{issue}")] {
        let response = server.get_as(&page, &developer).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
    }
    let sym = "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym";
    let response = server.get(&format!("/symbols/{sym}")).await;
    assert_eq!(response.status(), StatusCode::OK);

    let admin = server.token(Role::Admin).await;
    let (_, audit) = server.get_json("/api/v1/audit?limit=1000", &admin).await;
    let entries = audit["entries"].as_array().unwrap();
    let count = |actor: &str, action: &str, target: &str| {
        entries
            .iter()
            .filter(|e| e["actor"] == actor && e["action"] == action && e["target"] == target)
            .count()
    };
    assert_eq!(count(&reader, "issues.list", "issues"), 2, "{audit}");
    assert_eq!(
        count(&reader, "issue.read", &issue.to_string()),
        2,
        "{audit}"
    );
    assert_eq!(count("public", "symbols.download", sym), 1, "{audit}");
    server.stop().await;
}

/// A report whose modules lack symbols lists them first, with the exact
/// `mayday-symbols upload` command for this server, and folds the other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_puts_missing_symbols_and_their_upload_command_first() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let case = testdata::case(CASES[0]);
    let sent = server.submit(&case.bytes(), &[]).await;
    server.settle(&developer, &sent.id).await.unwrap();
    let response = server
        .get_as(&format!("/reports/{}", sent.id), &developer)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let missing = page
        .find("id=\"missing-symbols\"")
        .expect("missing symbols listed");
    let others = page
        .find("id=\"other-threads\"")
        .expect("other threads folded");
    let crashing = page.find("Crashing thread").unwrap();
    assert!(crashing < missing && missing < others, "{page}");
    let host = server.url.trim_start_matches("http://");
    assert!(
        page.contains(&format!(
            "&gt; --server http://{host} --token $MAYDAY_TOKEN"
        )) && page.contains("mayday-symbols upload &lt;folder with kernel32.pdb, test_app.pdb"),
        "{page}"
    );
    server.stop().await;
}

/// A 404 keeps the signed-in navigation and offers no "Sign in" to someone
/// signed in; signed out, it offers it. An unknown API path answers JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_keep_the_signed_in_navigation() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    for path in ["/issues/999999", "/no-such-page"] {
        let signed_in = server.get_as(path, &developer).await;
        assert_eq!(signed_in.status(), StatusCode::NOT_FOUND, "{path}");
        let page = signed_in.text().await.unwrap();
        assert!(page.contains("href=\"/issues\""), "{path}: {page}");
        assert!(!page.contains("Sign in"), "{path}: {page}");
    }
    // Signed out, a page that does not exist offers to sign in (a page that
    // needs a role redirects to the sign-in page instead).
    let signed_out = server.get("/no-such-page").await;
    assert_eq!(signed_out.status(), StatusCode::NOT_FOUND);
    let page = signed_out.text().await.unwrap();
    assert!(page.contains("Sign in"), "{page}");
    assert!(!page.contains("href=\"/issues\""), "{page}");
    let (status, body) = server.get_json("/api/v1/no-such-route", &developer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string(), "{body}");
    server.stop().await;
}

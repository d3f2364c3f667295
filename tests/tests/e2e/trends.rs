//! Trends: crashes per day on the issues list, the issue page and over the API,
//! in real headless Chromium against a real server. Reports are real dumps sent
//! over HTTP (today's bars); earlier days are crashes counted from a summary
//! through the index's own counting path, as a crash-site summary counts them.
//! The charts' bars are compared with the API's daily counts, before and after
//! resolving the issue in the UI deletes its reports.

use std::collections::BTreeMap;

use mayday_server::index::{Role, day_of, now_ms};
use mayday_tests::browser::Browser;
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A small dump the test data has symbols for.
const DUMP: &str = "breakpad-win-x86-minidump2/minidump2.dmp";

/// Another, for a second issue.
const OTHER_DUMP: &str = "symbolic-linux-x64-crash/linux-mini.dmp";

const PRODUCT: &str = "TrendApp";

const DAY_MS: i64 = 86_400_000;

/// Crashes per date (`YYYY-MM-DD`): reports plus counted, from a daily route's
/// `counts`.
fn totals(daily: &Value) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for count in daily["counts"].as_array().unwrap() {
        let n = count["reports"].as_i64().unwrap() + count["counted"].as_i64().unwrap();
        *totals
            .entry(count["date"].as_str().unwrap().to_owned())
            .or_default() += n;
    }
    totals.retain(|_, n| *n > 0);
    totals
}

/// The bars of the chart `svg` (a CSS selector) on the browser's page: their
/// number, and the date, total and title of each non-zero one.
async fn bars(browser: &Browser, svg: &str) -> (usize, BTreeMap<String, (i64, String)>) {
    browser.find(svg).await;
    let script = format!(
        "return Array.from(document.querySelectorAll({:?})).map(g => \
         [g.dataset.date, Number(g.dataset.total), g.querySelector('title').textContent, \
          g.querySelectorAll('rect.part').length])",
        format!("{svg} g.day")
    );
    let found = browser.client().execute(&script, vec![]).await.unwrap();
    let found = found.as_array().unwrap();
    let mut non_zero = BTreeMap::new();
    for bar in found {
        let total = bar[1].as_i64().unwrap();
        let parts = bar[3].as_u64().unwrap();
        assert_eq!(total > 0, parts > 0, "a bar is drawn when it counts: {bar}");
        if total > 0 {
            non_zero.insert(
                bar[0].as_str().unwrap().to_owned(),
                (total, bar[2].as_str().unwrap().to_owned()),
            );
        }
    }
    (found.len(), non_zero)
}

/// Just the totals of `bars`.
fn bar_totals(bars: &BTreeMap<String, (i64, String)>) -> BTreeMap<String, i64> {
    bars.iter()
        .map(|(date, (n, _))| (date.clone(), *n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_show_daily_counts_and_outlive_the_reports() {
    let case = testdata::case(DUMP);
    let other = testdata::case(OTHER_DUMP);
    let server = TestServer::with_symbols_of([&case, &other]).await;
    let developer = server.token(Role::Developer).await;

    // Today: three reports of one issue in two versions, one of another issue.
    let mut issue = 0;
    for version in ["1.0.0", "1.0.0", "2.0.0"] {
        let fields = [("prod", PRODUCT), ("ver", version)];
        let (_, report) = server
            .submit_processed(&developer, &case.bytes(), &fields)
            .await;
        assert_eq!(report["state"], "processed", "{report}");
        issue = report["issue_id"].as_i64().unwrap();
    }
    let fields = [("prod", PRODUCT), ("ver", "2.0.0")];
    let (_, report) = server
        .submit_processed(&developer, &other.bytes(), &fields)
        .await;
    let other_issue = report["issue_id"].as_i64().unwrap();
    assert_ne!(issue, other_issue);
    // Earlier days: crashes of the first issue counted from a summary, without a
    // dump — two three days ago, one ten days ago in an older version, one 60
    // days ago (on the issue page's 90 days, not on the list's 30).
    let now = now_ms();
    for (days_ago, version) in [(3, "1.0.0"), (3, "1.0.0"), (10, "0.9.0"), (60, "0.9.0")] {
        server
            .state
            .index()
            .count_occurrence(issue, Some(PRODUCT), Some(version), now - days_ago * DAY_MS)
            .await
            .unwrap();
    }
    let today = mayday_server::index::date_of(day_of(now));
    let three_days_ago = mayday_server::index::date_of(day_of(now - 3 * DAY_MS));

    let daily = |path: String| {
        let (server, developer) = (&server, &developer);
        async move {
            let (status, json) = server.get_json(&path, developer).await;
            assert_eq!(status, StatusCode::OK, "{path}: {json}");
            json
        }
    };
    let issue_30 = daily(format!("/api/v1/issues/{issue}/daily?days=30")).await;
    let issue_90 = daily(format!("/api/v1/issues/{issue}/daily?days=90")).await;
    let product_30 = daily(format!("/api/v1/daily?product={PRODUCT}&days=30")).await;
    assert_eq!(totals(&issue_30).len(), 3, "{issue_30}");
    assert_eq!(totals(&issue_30)[&today], 3);
    assert_eq!(totals(&issue_30)[&three_days_ago], 2);
    assert_eq!(totals(&issue_90).len(), 4, "{issue_90}");
    assert_eq!(totals(&product_30)[&today], 4, "{product_30}");

    let browser = Browser::start(&server.url).await;
    browser.goto("/login").await;
    browser.sign_in(&developer).await;

    // The issues list: a 30-day chart per issue, its bars the API's counts, and
    // the product's chart above the list.
    browser.find("#issues").await;
    let (count, list_bars) = bars(&browser, &format!("svg#trend-{issue}")).await;
    assert_eq!(count, 30);
    assert_eq!(bar_totals(&list_bars), totals(&issue_30));
    assert_eq!(
        list_bars[&today].1,
        format!("{today}: 3 crashes — 3 with a dump")
    );
    assert_eq!(
        list_bars[&three_days_ago].1,
        format!("{three_days_ago}: 2 crashes — 2 counted without a dump")
    );
    let (_, other_bars) = bars(&browser, &format!("svg#trend-{other_issue}")).await;
    assert_eq!(other_bars.len(), 1);
    let (count, product_bars) = bars(&browser, "#product-trends svg.chart").await;
    assert_eq!(count, 30);
    assert_eq!(bar_totals(&product_bars), totals(&product_30));
    // Told apart without colour: a text legend for the solid and hatched parts.
    let legend = browser.text("#product-legend").await;
    assert!(
        legend.contains("Reports with a dump") && legend.contains("Counted without a dump"),
        "{legend}"
    );
    let label = browser
        .find(&format!("svg#trend-{issue}"))
        .await
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap();
    assert!(
        label.contains("6 in all — 3 with a dump, 3 counted without a dump"),
        "{label}"
    );
    browser.screenshot("trends-issues.png").await;

    // The issue page: 90 days by version, the same counts, a table per version.
    browser.goto(&format!("/issues/{issue}")).await;
    let (count, page_bars) = bars(&browser, "svg#issue-chart").await;
    assert_eq!(count, 90);
    assert_eq!(bar_totals(&page_bars), totals(&issue_90));
    assert_eq!(
        page_bars[&today].1,
        format!("{today}: 3 crashes — 2 in 1.0.0, 1 in 2.0.0")
    );
    let versions = browser.text("#issue-versions tbody").await;
    let rows: Vec<&str> = versions.lines().collect();
    assert_eq!(rows, ["1.0.0 2 2", "0.9.0 0 2", "2.0.0 1 0"], "{versions}");
    let legend = browser.text("#issue-legend").await;
    assert!(
        legend.contains("Version 1.0.0") && legend.contains("Version 0.9.0"),
        "{legend}"
    );
    browser.screenshot("trends-issue.png").await;

    // The stack the issue will keep: its latest report's crashing thread.
    let (_, detail) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    let (_, sample) = server
        .get_json(
            &format!(
                "/api/v1/reports/{}",
                detail["sample_report_id"].as_str().unwrap()
            ),
            &developer,
        )
        .await;
    let top = &sample["crashing_thread"]["frames"][0];
    let top_line = format!(
        " 0  {}!{}",
        top["module"].as_str().unwrap(),
        top["function"].as_str().unwrap()
    );
    let kept = detail["sample_stack"].as_str().unwrap().to_owned();
    assert!(kept.starts_with(&top_line), "{top_line:?} in {kept}");

    // Resolve it in the UI: it asks first and says what it deletes; afterwards
    // the reports are gone and the chart is as it was, and the stack kept.
    browser.click("#resolve-open").await;
    assert_eq!(
        browser.text("#resolve").await,
        "Resolve and delete 3 stored reports"
    );
    browser.click("#resolve").await;
    browser.find("p.notice").await;
    assert_eq!(browser.text("#issue-status").await, "resolved");
    let (status, stored) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["reports"], json!([]), "{stored}");
    let (count, tombstone) = bars(&browser, "svg#issue-chart").await;
    assert_eq!(count, 90);
    assert_eq!(tombstone, page_bars);
    assert_eq!(
        browser.text("#issue-versions tbody").await,
        versions,
        "the counts per version stay"
    );
    assert_eq!(
        daily(format!("/api/v1/issues/{issue}/daily?days=90")).await,
        issue_90
    );
    assert_eq!(
        browser.text("#kept-stack").await.trim_end(),
        kept.trim_end()
    );
    assert_eq!(stored["sample_stack"], kept.as_str());
    browser.screenshot("trends-tombstone.png").await;

    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_routes_answer_their_shapes_and_refuse_bad_days() {
    let case = testdata::case(DUMP);
    let server = TestServer::with_symbols_of([&case]).await;
    let developer = server.token(Role::Developer).await;
    let fields = [("prod", PRODUCT), ("ver", "1.0.0")];
    let (_, report) = server
        .submit_processed(&developer, &case.bytes(), &fields)
        .await;
    let issue = report["issue_id"].as_i64().unwrap();
    let today = day_of(now_ms());

    let (status, json) = server
        .get_json(&format!("/api/v1/issues/{issue}/daily?days=7"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let date = mayday_server::index::date_of(today);
    let from = mayday_server::index::date_of(today - 6);
    assert_eq!(
        json,
        json!({
            "issue_id": issue,
            "days": 7,
            "first_day": today - 6,
            "last_day": today,
            "from": from,
            "to": date,
            "counts": [{
                "day": today, "date": date, "product": PRODUCT, "version": "1.0.0",
                "reports": 1, "counted": 0,
            }],
        })
    );
    let (status, json) = server.get_json("/api/v1/daily", &developer).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["days"], 30, "30 days unless asked");
    assert_eq!(json["product"], Value::Null);
    assert_eq!(
        json["counts"],
        json!([{ "day": today, "date": date, "product": PRODUCT, "reports": 1, "counted": 0 }])
    );
    let (_, json) = server
        .get_json("/api/v1/daily?product=NoSuchApp&days=365", &developer)
        .await;
    assert_eq!(
        (&json["product"], &json["counts"]),
        (&json!("NoSuchApp"), &json!([]))
    );

    // Bad values: the API's JSON error, as for any other route's bad query.
    let (status, other_error) = server
        .get_json("/api/v1/issues?limit=abc", &developer)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for query in [
        "days=0",
        "days=366",
        "days=-1",
        "days=abc",
        "days=99999999999999999999",
    ] {
        for path in [
            format!("/api/v1/issues/{issue}/daily"),
            "/api/v1/daily".to_owned(),
        ] {
            let (status, json) = server
                .get_json(&format!("{path}?{query}"), &developer)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}: {json}");
            assert_eq!(keys(&json), keys(&other_error), "{path}?{query}: {json}");
        }
    }
    let (status, json) = server
        .get_json("/api/v1/issues/999999/daily", &developer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");

    // Read as the issue routes are: by developers and admins, audited; not by support.
    let support = server.token(Role::Support).await;
    let (status, _) = server.get_json("/api/v1/daily", &support).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = server.token(Role::Admin).await;
    let (_, audit) = server.get_json("/api/v1/audit?limit=1000", &admin).await;
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert!(
        actions.contains(&("issue.daily", issue.to_string().as_str())),
        "{audit}"
    );
    assert!(actions.contains(&("daily.read", "all products")), "{audit}");
    assert!(actions.contains(&("daily.read", "NoSuchApp")), "{audit}");
    server.stop().await;
}

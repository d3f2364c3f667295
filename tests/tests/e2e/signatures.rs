//! A deployment's own signature rules: `mayday-server signatures reprocess`
//! regroups the stored reports under them (a dry run changes nothing), and a
//! server started with them groups new reports the same way; a bad rule stops
//! the start.

use std::path::Path;
use std::process::Command;

use mayday_server::index::{Index, Role};
use mayday_server::pipeline::report::Thread;
use mayday_server::pipeline::signature::SignatureRules;
use mayday_server::report_id::ReportId;
use mayday_tests::api;
use mayday_tests::command::{run, stdout, text};
use mayday_tests::fixtures::bin;
use mayday_tests::server::{ServerProcess, TestServer, cli_token};
use mayday_tests::testdata;
use reqwest::StatusCode;
use serde_json::Value;

/// The crash whose signature the deployment's rules change.
fn dump_a() -> Vec<u8> {
    testdata::read("breakpad-win-x86-minidump2/minidump2.dmp")
}

/// Another crash, which they leave as it is.
fn dump_b() -> Vec<u8> {
    testdata::read("symbolic-linux-x64-crash/linux-mini.dmp")
}

/// `text` as a regular expression matching exactly it.
fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `mayday-server signatures reprocess` with `args` on `data_dir` and the rules
/// in `rules`; it must succeed: what it printed.
async fn reprocess(data_dir: &Path, rules: &Path, args: &[&str]) -> String {
    let mut command = Command::new(bin("mayday-server"));
    command
        .args(["signatures", "reprocess"])
        .args(args)
        .env("MAYDAY_DATA_DIR", data_dir)
        .env("MAYDAY_SIGNATURE_RULES_DIR", rules)
        .env("MAYDAY_LOG", "warn");
    let output = run(command).await;
    assert!(output.status.success(), "{}", text(&output));
    stdout(&output)
}

/// The issue id and signature of report `id` as the index holds them.
async fn issue_of(index: &Index, id: &str) -> (i64, String) {
    let id: ReportId = id.parse().unwrap();
    let row = index.report(&id).await.unwrap().expect("the report");
    let issue_id = row.issue_id.expect("grouped");
    let issue = index.issue(issue_id).await.unwrap().expect("its issue");
    (issue_id, issue.signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocess_regroups_stored_reports_under_the_deployments_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();

    // Three reports under the built-in rules: two of crash A, one of crash B.
    let server = TestServer::with_config(|c| c.data_dir = data_dir.clone()).await;
    let developer = server.token(Role::Developer).await;
    let a1 = server
        .submit(&dump_a(), &[("prod", "App"), ("ver", "1.0")])
        .await;
    let a2 = server
        .submit(&dump_a(), &[("prod", "App"), ("ver", "1.1")])
        .await;
    let b = server
        .submit(&dump_b(), &[("prod", "App"), ("ver", "1.0")])
        .await;
    let report_a = server.settle(&developer, &a1.id).await.expect("processed");
    server.settle(&developer, &a2.id).await.expect("processed");
    server.settle(&developer, &b.id).await.expect("processed");
    let index = server.state.index().clone();
    let (issue_a, old_signature) = issue_of(&index, &a1.id).await;
    assert_eq!(issue_of(&index, &a2.id).await.0, issue_a);
    let (issue_b, signature_b) = issue_of(&index, &b.id).await;
    assert_ne!(issue_a, issue_b);
    server.stop().await;
    index.close().await;

    // The deployment's rule: crash A's top frame is irrelevant (its crash
    // reporter's, say). What the signature becomes, computed here from the
    // stored crashing thread with the same rules.
    let top = old_signature.split(" | ").next().unwrap();
    std::fs::write(
        rules.join("irrelevant_signature_re.txt"),
        format!("# our own frames\n{}$\n", literal(top)),
    )
    .unwrap();
    let thread: Thread = serde_json::from_value(report_a["crashing_thread"].clone()).unwrap();
    let rules_now = SignatureRules::load(Some(&rules)).unwrap();
    let new_signature = rules_now.report_signature(Some(&thread)).text;
    assert_ne!(new_signature, old_signature);
    assert_ne!(new_signature, signature_b);

    // A dry run shows the move and changes nothing.
    let out = reprocess(&data_dir, &rules, &["--dry-run"]).await;
    let moved = format!(
        "issue {issue_a}, \"{old_signature}\" -> \"{new_signature}\" (new issue): 2 reports"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], moved, "{out}");
    assert_eq!(
        lines[1],
        "total: 2 reports would move in 1 move (3 processed reports examined); dry run: nothing changed"
    );
    let out = reprocess(&data_dir, &rules, &["--dry-run", "--json"]).await;
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["applied"], false);
    assert_eq!(json["examined"], 3);
    assert_eq!(json["moves"].as_array().unwrap().len(), 1, "{json:#}");
    let planned = &json["moves"][0];
    assert_eq!(planned["from_issue"], issue_a);
    assert_eq!(planned["from_signature"], old_signature.as_str());
    assert_eq!(planned["to_signature"], new_signature.as_str());
    assert_eq!(planned["to_issue"], Value::Null);
    assert_eq!(planned["new_issue"], true);
    assert_eq!(planned["reports"], 2);
    let url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("index.sqlite").display()
    );
    let index = Index::connect(&url).await.unwrap();
    assert_eq!(
        issue_of(&index, &a1.id).await,
        (issue_a, old_signature.clone())
    );
    assert_eq!(issue_of(&index, &a2.id).await.0, issue_a);
    assert_eq!(index.issue(issue_a).await.unwrap().unwrap().count, 2);
    let hash = mayday_server::pipeline::signature::Signature::from_text(&new_signature).hash();
    assert!(index.issue_of_signature(&hash).await.unwrap().is_none());
    index.close().await;

    // Applied: the reports are in the new signature's issue, counted there and
    // out of the old one (which, left empty and open, is gone); B stays.
    let out = reprocess(&data_dir, &rules, &[]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let new_issue: i64 = lines[0]
        .split("(new issue ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a new issue in {out}"));
    assert_eq!(
        lines[0],
        format!(
            "issue {issue_a}, \"{old_signature}\" -> \"{new_signature}\" (new issue {new_issue}): 2 reports"
        )
    );
    assert_eq!(
        lines[1],
        "total: 2 reports moved in 1 move (3 processed reports examined)"
    );
    // Nothing is left to move.
    let out = reprocess(&data_dir, &rules, &[]).await;
    assert_eq!(
        out.trim(),
        "total: 0 reports moved in 0 moves (3 processed reports examined)"
    );

    // A server started with the rules (the real binary, by the environment)
    // shows the regrouped reports and groups a new one of crash A with them.
    let admin = cli_token(&data_dir, "admin");
    let rules_env = rules.display().to_string();
    let process = ServerProcess::start(&data_dir, &[("MAYDAY_SIGNATURE_RULES_DIR", &rules_env)]);
    let base = process.url.clone();
    for sent in [&a1, &a2] {
        let (status, report) =
            api::get_json(&base, &format!("/api/v1/reports/{}", sent.id), &admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report["issue_id"], new_issue, "{report:#}");
        assert_eq!(
            report["signature"],
            new_signature.as_str(),
            "the stored report too"
        );
        assert_eq!(report["product"], "App", "other facts stay");
    }
    let (status, _) = api::get_json(&base, &format!("/api/v1/issues/{issue_a}"), &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the emptied issue is gone");
    let (_, issue) = api::get_json(&base, &format!("/api/v1/issues/{new_issue}"), &admin).await;
    assert_eq!(issue["issue"]["signature"], new_signature.as_str());
    assert_eq!(issue["issue"]["count"], 2);
    // The new issue has a sample stack to keep, as one processing made has.
    assert!(
        issue["sample_stack"]
            .as_str()
            .is_some_and(|s| s.starts_with(" 0  ")),
        "{issue:#}"
    );
    assert!(
        issue["issue"]["title"]
            .as_str()
            .unwrap()
            .ends_with(&new_signature),
        "{issue:#}"
    );
    let (_, issue) = api::get_json(&base, &format!("/api/v1/issues/{issue_b}"), &admin).await;
    assert_eq!(issue["issue"]["signature"], signature_b.as_str());
    assert_eq!(issue["issue"]["count"], 1);

    let a3 = api::submit(&base, &dump_a(), &[("prod", "App"), ("ver", "1.2")]).await;
    let report = api::settle(&base, &admin, &a3.id).await.expect("processed");
    assert_eq!(report["issue_id"], new_issue, "{report:#}");
    assert_eq!(report["signature"], new_signature.as_str());
    let (_, issue) = api::get_json(&base, &format!("/api/v1/issues/{new_issue}"), &admin).await;
    assert_eq!(issue["issue"]["count"], 3);

    // The move is in the audit log, as the command line's.
    let (_, audit) = api::get_json(&base, "/api/v1/audit", &admin).await;
    let entries = audit["entries"].as_array().unwrap();
    let entry = entries
        .iter()
        .find(|e| e["action"] == "signatures.reprocess")
        .unwrap_or_else(|| panic!("{audit:#}"));
    assert_eq!(entry["actor"], "cli");
    assert_eq!(entry["target"], issue_a.to_string());
    assert_eq!(
        entry["detail"],
        format!("to_issue={new_issue} new_issue=true moved=2 dropped=0 skipped=0")
    );
    process.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_rule_stops_the_start_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let file = rules.join("prefix_signature_re.txt");
    std::fs::write(&file, "# ours\nMyApp::check$\nMyApp::(unclosed\n").unwrap();
    let start = || {
        let mut command = Command::new(bin("mayday-server"));
        command
            .arg("serve")
            .env("MAYDAY_DATA_DIR", dir.path().join("data"))
            .env("MAYDAY_LISTEN", "127.0.0.1:0")
            .env("MAYDAY_SIGNATURE_RULES_DIR", &rules);
        command
    };
    let output = run(start()).await;
    assert!(!output.status.success());
    let said = text(&output);
    let expected = format!("signature rules {}, line 3 (list `prefix`)", file.display());
    assert!(said.contains(&expected), "{said}");
    assert!(!dir.path().join("data").exists(), "nothing was created");

    // A file that is none of the lists.
    std::fs::remove_file(&file).unwrap();
    let stray = rules.join("irrelevant.txt");
    std::fs::write(&stray, "MyApp::\n").unwrap();
    let output = run(start()).await;
    assert!(!output.status.success());
    let said = text(&output);
    assert!(said.contains(&stray.display().to_string()), "{said}");
    assert!(said.contains("is not a rule list"), "{said}");
}

//! `mayday-server issues list|search|show|resolve|reopen`: triage from a terminal,
//! over a running server's JSON API (the same routes, filters and roles as the web
//! UI).

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use mayday_server::triage::search::ReportSelection;
use serde_json::Value;

/// Where the server is and who is asking; given before or after the subcommand.
#[derive(Args, Debug)]
pub struct Remote {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (required).
    #[arg(long, global = true, env = "MAYDAY_SERVER")]
    pub server: Option<String>,
    /// An API token (developer or admin; required).
    #[arg(long, global = true, env = "MAYDAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON answer instead of a table or text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Report filters, as the API takes them (`triage::search`): `issues search`
/// lists the reports that match, `issues list` the issues with such a report.
#[derive(Args, Debug, Default)]
pub struct ReportFilters {
    /// Product name.
    #[arg(long)]
    pub product: Option<String>,
    /// Product version, exactly.
    #[arg(long)]
    pub version: Option<String>,
    /// This version or a later one (as versions compare: 1.10 after 1.9).
    #[arg(long)]
    pub min_version: Option<String>,
    /// OS family (`Linux`, `Windows NT`, `Mac OS X`, …).
    #[arg(long)]
    pub os: Option<String>,
    /// OS version, exactly.
    #[arg(long)]
    pub os_version: Option<String>,
    /// Crash reason, exactly (`SIGSEGV / SEGV_MAPERR`, …).
    #[arg(long)]
    pub crash_reason: Option<String>,
    /// The crashing module's file name.
    #[arg(long)]
    pub module: Option<String>,
    /// An annotation, `key=value`, exactly.
    #[arg(long)]
    pub annotation: Option<String>,
    /// Received on or after this day (`2026-11-30`) or RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Received on or before this day, or before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
}

impl From<ReportFilters> for ReportSelection {
    /// The same filters as the API reads them, whose [`ReportSelection::pairs`]
    /// are the one list of their query keys.
    fn from(f: ReportFilters) -> ReportSelection {
        ReportSelection {
            since: f.since,
            until: f.until,
            product: f.product,
            version: f.version,
            min_version: f.min_version,
            os: f.os,
            os_version: f.os_version,
            crash_reason: f.crash_reason,
            module: f.module,
            annotation: f.annotation,
        }
    }
}

/// Which issues `issues list` shows.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Status {
    /// Open issues.
    Open,
    /// Issues that crashed again after they were resolved.
    Regressed,
    /// Resolved issues.
    Resolved,
}

/// How `issues list` orders issues.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Sort {
    /// Most reports first.
    Count,
    /// Most recently seen first.
    #[value(name = "last_seen")]
    LastSeen,
    /// Most recently first seen first.
    #[value(name = "first_seen")]
    FirstSeen,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Regressed => "regressed",
            Status::Resolved => "resolved",
        }
    }
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Sort::Count => "count",
            Sort::LastSeen => "last_seen",
            Sort::FirstSeen => "first_seen",
        }
    }
}

/// The `issues` subcommands.
#[derive(Subcommand, Debug)]
pub enum IssuesCommand {
    /// List issues as a table.
    List {
        /// Only issues with this status (all when not given).
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// The order.
        #[arg(long, value_enum, default_value_t = Sort::Count)]
        sort: Sort,
        /// Only issues with a report that matches these.
        #[command(flatten)]
        filters: ReportFilters,
        /// Only issues whose signature contains this text.
        #[arg(long)]
        search: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Search reports: those that match every filter given, newest first.
    Search {
        /// What they must match.
        #[command(flatten)]
        filters: ReportFilters,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one issue: signature, counts, newest reports.
    Show {
        /// The issue id.
        id: i64,
    },
    /// Resolve an issue (its stored reports are deleted).
    Resolve {
        /// The issue id.
        id: i64,
        /// The version the fix ships in: older versions' crashes are dropped.
        #[arg(long)]
        in_version: Option<String>,
    },
    /// Reopen a resolved issue.
    Reopen {
        /// The issue id.
        id: i64,
    },
}

/// Runs one `issues` subcommand, printing to stdout. Any HTTP error is an error
/// with the server's status and message.
pub async fn run(remote: Remote, command: IssuesCommand) -> anyhow::Result<()> {
    let json = remote.json;
    let client = Client::new(remote)?;
    match command {
        IssuesCommand::List {
            status,
            sort,
            filters,
            search,
            limit,
        } => {
            let mut query: Vec<(&str, String)> = vec![
                ("sort", sort.as_str().to_owned()),
                ("limit", limit.to_string()),
            ];
            for (k, v) in [
                ("status", status.map(|s| s.as_str().to_owned())),
                ("q", search),
            ] {
                if let Some(v) = v {
                    query.push((k, v));
                }
            }
            query.extend(ReportSelection::from(filters).pairs());
            let answer = client.get("/api/v1/issues", &query).await?;
            print_answer(json, &answer, issues_table);
        }
        IssuesCommand::Search { filters, limit } => {
            let mut query = ReportSelection::from(filters).pairs();
            query.push(("limit", limit.to_string()));
            let answer = client.get("/api/v1/reports", &query).await?;
            print_answer(json, &answer, reports_table);
        }
        IssuesCommand::Show { id } => {
            let answer = client.get(&format!("/api/v1/issues/{id}"), &[]).await?;
            print_answer(json, &answer, issue_text);
        }
        IssuesCommand::Resolve { id, in_version } => {
            let body = match &in_version {
                Some(v) => serde_json::json!({ "in_version": v }),
                None => serde_json::json!({}),
            };
            client
                .post(&format!("/api/v1/issues/{id}/resolve"), body)
                .await?;
            match in_version {
                Some(v) => println!("issue {id} resolved in version {v}"),
                None => println!("issue {id} resolved"),
            }
        }
        IssuesCommand::Reopen { id } => {
            client
                .post(
                    &format!("/api/v1/issues/{id}/reopen"),
                    serde_json::json!({}),
                )
                .await?;
            println!("issue {id} reopened");
        }
    }
    Ok(())
}

/// Prints `answer` as JSON (`--json`) or as `text` words it.
fn print_answer(json: bool, answer: &Value, text: fn(&Value) -> String) {
    if json {
        println!("{answer:#}");
    } else {
        print!("{}", text(answer));
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(remote: Remote) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("while creating the HTTP client")?;
        let server = remote
            .server
            .context("--server (or MAYDAY_SERVER) is required: the server's base URL")?;
        let token = remote
            .token
            .context("--token (or MAYDAY_TOKEN) is required: an API token")?;
        anyhow::ensure!(
            server.starts_with("http://") || server.starts_with("https://"),
            "--server {server:?} is not an http:// or https:// URL"
        );
        Ok(Client {
            http,
            base: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(&self.token);
        self.send(request, path).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .bearer_auth(&self.token);
        self.send(request, path).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("while connecting to {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("while reading the answer to {path}"))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().chars().take(200).collect());
            let message = terminal_safe(&message);
            anyhow::bail!("{path}: the server answered {status}: {message}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("while parsing the answer to {path}"))
    }
}

fn time_text(value: &Value) -> String {
    value
        .as_i64()
        .and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A value from the server as terminal text (see [`terminal_safe`]).
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => terminal_safe(s),
        other => terminal_safe(&other.to_string()),
    }
}

/// `text` with every character that could steer the terminal written as a visible
/// escape (`\u{1b}`, `\r`, …): C0 controls, DEL and C1 controls (so no escape or
/// control sequence reaches the terminal, whether it starts with ESC or with a
/// one-character C1 introducer such as CSI U+009B), and the bidirectional
/// formatting characters that reorder what is shown. Signatures, module names,
/// versions and titles come from crash dumps: whoever crafted one must not be
/// able to rewrite the screen of the developer reading it.
pub fn terminal_safe(text: &str) -> String {
    let steers = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if steers(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines of cells as a left-aligned table (the last column is not padded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The issue list as a table.
fn issues_table(json: &Value) -> String {
    let issues = json["issues"].as_array().cloned().unwrap_or_default();
    if issues.is_empty() {
        return "no issues\n".to_owned();
    }
    let mut rows = vec![
        ["ID", "STATUS", "REPORTS", "LAST SEEN", "TITLE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for issue in &issues {
        rows.push(vec![
            text(&issue["id"]),
            text(&issue["status"]),
            text(&issue["count"]),
            time_text(&issue["last_seen"]),
            text(&issue["title"]),
        ]);
    }
    table(&rows)
}

/// Found reports as a table.
fn reports_table(json: &Value) -> String {
    let reports = json["reports"].as_array().cloned().unwrap_or_default();
    if reports.is_empty() {
        return "no reports\n".to_owned();
    }
    let mut rows = vec![
        ["ID", "RECEIVED", "PRODUCT", "VERSION", "OS", "ISSUE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for report in &reports {
        rows.push(vec![
            text(&report["id"]),
            time_text(&report["received_at"]),
            text(&report["product"]),
            text(&report["version"]),
            text(&report["os"]),
            text(&report["issue_id"]),
        ]);
    }
    table(&rows)
}

/// One issue as text.
fn issue_text(json: &Value) -> String {
    let issue = &json["issue"];
    let mut out = String::new();
    out.push_str(&format!(
        "issue {}: {}\n",
        text(&issue["id"]),
        text(&issue["title"])
    ));
    let mut facts = vec![
        vec!["status".to_owned(), text(&issue["status"])],
        vec!["signature".to_owned(), text(&issue["signature"])],
        vec!["reports".to_owned(), text(&issue["count"])],
        vec!["first seen".to_owned(), time_text(&issue["first_seen"])],
        vec!["last seen".to_owned(), time_text(&issue["last_seen"])],
    ];
    if !issue["resolved_in_version"].is_null() {
        facts.push(vec![
            "resolved in".to_owned(),
            text(&issue["resolved_in_version"]),
        ]);
    }
    out.push_str(&table(&facts));
    for (label, key) in [("by version", "by_version"), ("by OS", "by_os")] {
        let counts = json["counts"][key].as_array().cloned().unwrap_or_default();
        if counts.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{label}:\n"));
        let rows: Vec<Vec<String>> = counts
            .iter()
            .map(|c| {
                let value = text(&c["value"]);
                vec![
                    format!(
                        "  {}",
                        if value.is_empty() {
                            "(unknown)"
                        } else {
                            &value
                        }
                    ),
                    text(&c["count"]),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }
    let reports = json["reports"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!("\nreports ({} newest):\n", reports.len()));
    if !reports.is_empty() {
        let mut rows = vec![
            ["  REPORT", "RECEIVED", "PRODUCT", "VERSION", "OS", "STATE"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for r in &reports {
            rows.push(vec![
                format!("  {}", text(&r["id"])),
                time_text(&r["received_at"]),
                text(&r["product"]),
                text(&r["version"]),
                text(&r["os"]),
                text(&r["state"]),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_an_aligned_table() {
        let json = serde_json::json!({ "issues": [
            { "id": 1, "status": "open", "count": 12, "last_seen": 0, "title": "crash in foo" },
            { "id": 23, "status": "regressed", "count": 3, "last_seen": 0, "title": "bar" },
        ]});
        let out = issues_table(&json);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ID  STATUS     REPORTS  LAST SEEN         TITLE"));
        assert!(lines[1].starts_with("1   open       12       1970-01-01 00:00  crash in foo"));
        assert!(lines[2].ends_with("bar"));
        assert_eq!(
            issues_table(&serde_json::json!({ "issues": [] })),
            "no issues\n"
        );
    }

    #[test]
    fn control_characters_from_the_server_are_escaped() {
        let hostile = "evil.so\u{1b}[31m@0x1\r| \u{9b}2J\u{7f}\u{0}\u{202e}cba";
        let escaped = r"evil.so\u{1b}[31m@0x1\r| \u{9b}2J\u{7f}\u{0}\u{202e}cba";
        assert_eq!(terminal_safe(hostile), escaped);
        assert_eq!(
            terminal_safe("Foo::bar | C:\\Windows\\ntdll.dll"),
            "Foo::bar | C:\\Windows\\ntdll.dll"
        );

        let list = issues_table(&serde_json::json!({ "issues": [
            { "id": 1, "status": "open\u{1b}]0;x\u{7}", "count": 1, "last_seen": 0, "title": hostile },
        ]}));
        let issue = issue_text(&serde_json::json!({
            "issue": { "id": 1, "title": hostile, "signature": hostile, "status": "open",
                       "count": 1, "resolved_in_version": hostile },
            "counts": { "by_version": [{ "value": hostile, "count": 1 }],
                        "by_os": [{ "value": hostile, "count": 1 }] },
            "reports": [{ "id": hostile, "received_at": 0, "product": hostile,
                          "version": hostile, "os": hostile, "state": hostile }],
        }));
        for out in [&list, &issue] {
            assert!(out.contains(escaped), "{out}");
            // Only the line breaks the layout itself writes remain.
            assert!(
                out.chars()
                    .all(|c| (c == '\n' || !c.is_control()) && c != '\u{202e}'),
                "{out:?}"
            );
        }
        assert!(list.contains(r"open\u{1b}]0;x\u{7}"), "{list}");
        assert_eq!(issue.matches(escaped).count(), 10, "{issue}");
    }
}

//! `mayday-server signatures reprocess [--dry-run] [--json]`: regroups the stored
//! reports under the signature rules in effect (the built-in lists plus the
//! deployment's `[signatures] rules_dir`), directly in the store and index, as
//! `reports delete` does. Best run while the servers are stopped, or at a quiet
//! time: a report processed meanwhile is left as processing put it.

use anyhow::Context;
use clap::Subcommand;
use mayday_server::pipeline::regroup::{self, Move, Regroup};
use mayday_server::{App, Config};

use super::issues::terminal_safe;

/// The `signatures` subcommands.
#[derive(Subcommand, Debug)]
pub enum SignaturesCommand {
    /// Compute every processed report's signature again with the rules in
    /// effect, and move the reports whose signature changed into the issue of
    /// the new one (created when there is none; a resolved one regresses, or
    /// drops reports that are no news to it, as processing does). Prints one
    /// line per move and a total. Audited as `cli`.
    Reprocess {
        /// Show what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the moves as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `signatures` subcommand, printing to stdout.
pub async fn run(config: Config, command: SignaturesCommand) -> anyhow::Result<()> {
    let SignaturesCommand::Reprocess { dry_run, json } = command;
    let app = App::build(config)
        .await
        .context("while starting (signature rules, storage, index)")?;
    let state = &app.state;
    let plan = regroup::plan(state.vault(), state.signatures())
        .await
        .context("while reading the processed reports")?;
    let done = if dry_run {
        plan
    } else {
        regroup::apply(state.vault(), plan, "cli")
            .await
            .context("while moving reports (run it again to finish)")?
    };
    if json {
        println!("{:#}", serde_json::to_value(&done)?);
    } else {
        print!("{}", text(&done));
    }
    state.index().close().await;
    Ok(())
}

/// The moves and the total as lines of text.
fn text(done: &Regroup) -> String {
    let mut out = String::new();
    for planned in &done.moves {
        out.push_str(&move_line(planned, done.applied));
        out.push('\n');
    }
    let verb = if done.applied { "moved" } else { "would move" };
    out.push_str(&format!(
        "total: {} {verb} in {} ({} examined",
        count(done.reports(), "report"),
        count(done.moves.len() as u64, "move"),
        count(done.examined, "processed report"),
    ));
    if done.unreadable > 0 {
        out.push_str(&format!(", {} unreadable", done.unreadable));
    }
    if done.stale > 0 {
        let rewritten = if done.applied {
            "rewritten"
        } else {
            "to rewrite"
        };
        out.push_str(&format!(", {} stored signatures {rewritten}", done.stale));
    }
    out.push(')');
    if !done.applied {
        out.push_str("; dry run: nothing changed");
    }
    out.push('\n');
    out
}

/// `issue 3, "old" -> "new" (issue 7): 2 reports`, with what became of them.
fn move_line(planned: &Move, applied: bool) -> String {
    let target = match (planned.to_issue, planned.new_issue, planned.to_status) {
        (None, _, _) => "new issue".to_owned(),
        (Some(id), true, _) => format!("new issue {id}"),
        // What it is before the move (a resolved one may regress).
        (Some(id), false, Some(status)) if !applied => format!("issue {id}, {}", status.as_str()),
        (Some(id), false, _) => format!("issue {id}"),
    };
    let mut line = format!(
        "issue {}, \"{}\" -> \"{}\" ({target}): {}",
        planned.from_issue,
        terminal_safe(&planned.from_signature),
        terminal_safe(&planned.to_signature),
        count(planned.reports, "report"),
    );
    if planned.dropped > 0 {
        let dropped = if applied { "dropped" } else { "to drop" };
        line.push_str(&format!(
            ", {} {dropped} (received before its resolution, or older than its fix)",
            planned.dropped
        ));
    }
    if planned.skipped > 0 {
        line.push_str(&format!(", {} changed meanwhile, left", planned.skipped));
    }
    line
}

/// `1 report`, `2 reports`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use mayday_server::index::IssueStatus;

    use super::*;

    fn planned(to_issue: Option<i64>, new_issue: bool) -> Move {
        Move {
            from_issue: 3,
            from_signature: "abort | Foo::bar".to_owned(),
            to_signature: "Foo::bar".to_owned(),
            to_issue,
            new_issue,
            to_status: None,
            reports: 2,
            dropped: 0,
            skipped: 0,
            report_ids: Vec::new(),
            title: String::new(),
        }
    }

    #[test]
    fn a_dry_run_says_where_reports_would_go_and_what_would_be_dropped() {
        let mut done = Regroup::default();
        done.examined = 9;
        done.moves.push(planned(None, true));
        let mut resolved = planned(Some(7), false);
        resolved.to_status = Some(IssueStatus::Resolved);
        resolved.reports = 1;
        resolved.dropped = 1;
        done.moves.push(resolved);
        assert_eq!(
            text(&done),
            "issue 3, \"abort | Foo::bar\" -> \"Foo::bar\" (new issue): 2 reports\n\
             issue 3, \"abort | Foo::bar\" -> \"Foo::bar\" (issue 7, resolved): 1 report, \
             1 to drop (received before its resolution, or older than its fix)\n\
             total: 3 reports would move in 2 moves (9 processed reports examined); \
             dry run: nothing changed\n"
        );
    }

    #[test]
    fn applied_moves_name_the_issues_they_went_to() {
        let mut done = Regroup::default();
        done.applied = true;
        done.examined = 1;
        done.unreadable = 1;
        done.stale = 2;
        let mut skipped = planned(Some(12), true);
        skipped.skipped = 1;
        done.moves.push(skipped);
        assert_eq!(
            text(&done),
            "issue 3, \"abort | Foo::bar\" -> \"Foo::bar\" (new issue 12): 2 reports, \
             1 changed meanwhile, left\n\
             total: 2 reports moved in 1 move (1 processed report examined, 1 unreadable, \
             2 stored signatures rewritten)\n"
        );
    }

    #[test]
    fn signatures_cannot_steer_the_terminal() {
        let mut hostile = planned(Some(4), false);
        hostile.to_signature = "evil\u{1b}[2J@0x1".to_owned();
        let line = move_line(&hostile, true);
        assert_eq!(
            line,
            "issue 3, \"abort | Foo::bar\" -> \"evil\\u{1b}[2J@0x1\" (issue 4): 2 reports"
        );
    }
}

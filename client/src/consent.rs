//! Consent: the policy, the remembered choice in `<data_dir>/consent.json`, and the
//! prompts that ask the user.
//!
//! Consent has three states: not decided ([`ConsentPolicy::Ask`]: reports wait on
//! disk until the user answers), given ([`ConsentPolicy::Always`]) and revoked
//! ([`ConsentPolicy::Never`]: nothing is sent and nothing is kept).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;
use crate::summary::ReportSummary;

/// Whether reports are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentPolicy {
    /// Ask the user about each report through the [`ConsentPrompt`]. The default.
    Ask,
    /// Send every report without asking.
    Always,
    /// Send nothing; pending reports are deleted and new ones are not kept.
    Never,
}

impl std::str::FromStr for ConsentPolicy {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ask" => Ok(ConsentPolicy::Ask),
            "always" => Ok(ConsentPolicy::Always),
            "never" => Ok(ConsentPolicy::Never),
            other => Err(crate::Error::Config(format!(
                "consent policy {other:?} is not ask, always or never"
            ))),
        }
    }
}

/// The contents of `<data_dir>/consent.json`: the user's choice, when it was made,
/// and which version of the consent text they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConsent {
    /// The choice.
    pub policy: ConsentPolicy,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: time::OffsetDateTime,
    /// The version of the consent text shown when it was made.
    pub consent_text_version: u32,
}

pub(crate) fn consent_path(data_dir: &Path) -> PathBuf {
    data_dir.join("consent.json")
}

/// Reads the remembered choice, if any.
pub(crate) fn load(data_dir: &Path) -> Result<Option<StoredConsent>> {
    fsutil::read_json(&consent_path(data_dir))
}

/// The policy in force: the remembered choice if it was made under the current
/// consent text version (or a newer one), else the application's default. A
/// refusal (`Never`) stands whatever the text version: a new consent text can ask
/// again for consent, never override a "no".
pub(crate) fn effective(
    data_dir: &Path,
    default: ConsentPolicy,
    text_version: u32,
) -> Result<ConsentPolicy> {
    Ok(match load(data_dir)? {
        Some(stored) if stored.policy == ConsentPolicy::Never => ConsentPolicy::Never,
        Some(stored) if stored.consent_text_version >= text_version => stored.policy,
        _ => default,
    })
}

/// Remembers a choice.
pub(crate) fn store(data_dir: &Path, policy: ConsentPolicy, text_version: u32) -> Result<()> {
    fsutil::write_json(
        &consent_path(data_dir),
        &StoredConsent {
            policy,
            decided_at: fsutil::now(),
            consent_text_version: text_version,
        },
    )
}

/// What the user decided about one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send this report; ask again next time.
    Send,
    /// Send this report and every later one without asking.
    Always,
    /// Do not send this report; it is deleted at once.
    DontSend,
    /// Send nothing, now or later; every pending report is deleted.
    Never,
}

/// The user's answer to a [`ConsentPrompt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentAnswer {
    /// The decision.
    pub decision: Decision,
    /// An optional comment from the user, sent as the `Comments` annotation.
    pub comment: Option<String>,
}

impl ConsentAnswer {
    /// An answer without a comment.
    pub fn new(decision: Decision) -> Self {
        ConsentAnswer {
            decision,
            comment: None,
        }
    }
}

/// Asks the user whether to send a report, showing them what it contains.
pub trait ConsentPrompt: Send + Sync {
    /// Shows `summary` and returns the user's answer, or `None` when the user could
    /// not be asked (no terminal, window closed): the report then stays pending.
    fn ask(&self, summary: &ReportSummary) -> Option<ConsentAnswer>;
}

/// A prompt from a closure, for GUI applications:
/// `FnPrompt(|summary: &ReportSummary| show_dialog(summary))`.
pub struct FnPrompt<F>(pub F);

impl<F> ConsentPrompt for FnPrompt<F>
where
    F: Fn(&ReportSummary) -> Option<ConsentAnswer> + Send + Sync,
{
    fn ask(&self, summary: &ReportSummary) -> Option<ConsentAnswer> {
        (self.0)(summary)
    }
}

/// The built-in terminal prompt. It asks only when stdin and stdout are both a
/// terminal; otherwise it answers `None` and the report stays pending.
#[derive(Debug, Clone, Default)]
pub struct TerminalPrompt {
    _private: (),
}

impl TerminalPrompt {
    /// The terminal prompt.
    pub fn new() -> Self {
        TerminalPrompt { _private: () }
    }
}

impl ConsentPrompt for TerminalPrompt {
    fn ask(&self, summary: &ReportSummary) -> Option<ConsentAnswer> {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            return None;
        }
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut out = std::io::stdout().lock();
        ask_on(&mut input, &mut out, summary)
    }
}

/// The choices the terminal prompt offers, each with what it does. "never" is
/// the only one without a letter: it deletes every pending report, so it takes the
/// whole word and a confirmation, and no habitual `n` can choose it.
const CHOICES: &str = "  s  send        send this report
  a  always      send this report and every later one without asking
  d  don't send  delete this report (n and no also mean this)
     never       send nothing, ever: deletes every pending report, keeps none";

/// What an answer to the question asks for (`Never` still needs confirming).
fn parse_answer(line: &str) -> Option<Decision> {
    match line.trim().to_ascii_lowercase().as_str() {
        "s" | "send" | "y" | "yes" => Some(Decision::Send),
        "a" | "always" => Some(Decision::Always),
        "d" | "don't" | "dont" | "don't send" | "dont send" | "n" | "no" => {
            Some(Decision::DontSend)
        }
        "never" => Some(Decision::Never),
        _ => None,
    }
}

/// The terminal dialogue on any reader and writer: the summary, the choices with
/// their effects, the question (asked again after an unknown answer), the
/// confirmation "never" needs, and an optional comment when the answer is to send.
/// `None` when the input ends before a decision.
pub(crate) fn ask_on(
    input: &mut impl BufRead,
    out: &mut impl Write,
    summary: &ReportSummary,
) -> Option<ConsentAnswer> {
    let _ = writeln!(out, "{summary}");
    let _ = writeln!(out, "{CHOICES}");
    let decision = loop {
        let _ = write!(out, "Send this report? [s/a/d/never]: ");
        let _ = out.flush();
        match parse_answer(&read_line(input)?) {
            Some(Decision::Never) => {
                let _ = write!(
                    out,
                    "Never send reports? Every pending report will be deleted and no \
                     new one kept. [y/N]: "
                );
                let _ = out.flush();
                let confirm = read_line(input)?;
                if matches!(confirm.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                    break Decision::Never;
                }
                let _ = writeln!(out, "Not changed; choose again.");
            }
            Some(decision) => break decision,
            None => {
                let _ = writeln!(out, "Please answer s, a, d or never.");
            }
        }
    };
    let mut comment = None;
    if matches!(decision, Decision::Send | Decision::Always) {
        let _ = write!(out, "Comment (optional, Enter to skip): ");
        let _ = out.flush();
        comment = read_line(input)
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
    }
    let _ = writeln!(
        out,
        "{}",
        match decision {
            Decision::Send => "Sending this report.",
            Decision::Always => "Sending this and future reports.",
            Decision::DontSend => "Not sent; the report was deleted.",
            Decision::Never => "Nothing will be sent; pending reports were deleted.",
        }
    );
    let _ = out.flush();
    Some(ConsentAnswer { decision, comment })
}

/// One line, `None` at end of input or on an error.
fn read_line(input: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> ReportSummary {
        ReportSummary::for_tests()
    }

    #[test]
    fn terminal_dialogue_reads_each_answer() {
        for (input, want, comment) in [
            ("s\nit broke\n", Decision::Send, Some("it broke")),
            ("always\n\n", Decision::Always, None),
            ("d\n", Decision::DontSend, None),
            ("never\ny\n", Decision::Never, None),
            ("what\nno\n", Decision::DontSend, None),
            ("n\n", Decision::DontSend, None),
            ("never\n\nhuh\nnever\nyes\n", Decision::Never, None),
            ("never\nn\ns\n\n", Decision::Send, None),
            ("x\nq\nz\nw\nd\n", Decision::DontSend, None),
        ] {
            let mut out = Vec::new();
            let answer = ask_on(&mut input.as_bytes(), &mut out, &summary()).unwrap();
            assert_eq!(answer.decision, want, "{input:?}");
            assert_eq!(answer.comment.as_deref(), comment, "{input:?}");
            let shown = String::from_utf8(out).unwrap();
            assert!(shown.contains("crashy"), "{shown}");
        }
    }

    #[test]
    fn end_of_input_is_no_answer() {
        let mut out = Vec::new();
        assert_eq!(ask_on(&mut "".as_bytes(), &mut out, &summary()), None);
        assert_eq!(
            ask_on(&mut "x\nq\nz\n".as_bytes(), &mut out, &summary()),
            None
        );
    }

    #[test]
    fn never_takes_the_whole_word_and_a_confirmation_that_says_what_it_deletes() {
        let mut out = Vec::new();
        // Input ends at the confirmation: nothing decided.
        assert_eq!(
            ask_on(&mut "never\n".as_bytes(), &mut out, &summary()),
            None
        );
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.contains("Every pending report will be deleted"),
            "{shown}"
        );
        for choice in [
            "send this report",
            "every later one",
            "delete this report",
            "never",
        ] {
            assert!(shown.contains(choice), "{choice} in {shown}");
        }
        for letter in ["n", "N", "v", "e"] {
            let mut out = Vec::new();
            let input = format!("{letter}\n");
            let answer = ask_on(&mut input.as_bytes(), &mut out, &summary());
            assert_ne!(
                answer.map(|a| a.decision),
                Some(Decision::Never),
                "{letter}"
            );
        }
    }

    #[test]
    fn remembered_choice_needs_current_text_version() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            effective(dir.path(), ConsentPolicy::Ask, 1).unwrap(),
            ConsentPolicy::Ask
        );
        store(dir.path(), ConsentPolicy::Always, 1).unwrap();
        assert_eq!(
            effective(dir.path(), ConsentPolicy::Ask, 1).unwrap(),
            ConsentPolicy::Always
        );
        assert_eq!(
            effective(dir.path(), ConsentPolicy::Ask, 2).unwrap(),
            ConsentPolicy::Ask
        );
        let stored = load(dir.path()).unwrap().unwrap();
        assert_eq!(stored.consent_text_version, 1);
        // A refusal outlives a new consent text, even if the app defaults to Always.
        store(dir.path(), ConsentPolicy::Never, 1).unwrap();
        assert_eq!(
            effective(dir.path(), ConsentPolicy::Always, 2).unwrap(),
            ConsentPolicy::Never
        );
    }
}

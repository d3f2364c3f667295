//! Grouping policy: where a processed report goes once its signature's issue is
//! known. The one place that decides whether the report joins its issue, reopens
//! it as regressed, or is dropped because the issue was resolved without it; and
//! whether it leaves the issue it was in before (reprocessing changed its
//! signature).
//!
//! A leaf: plain data in, a [`Grouping`] out. The index transaction that records a
//! processed report reads the rows, calls [`group`], and writes what it says.
//!
//! The same policy answers a crash-site summary ([`judge_summary`]): a dump that
//! would be dropped is not wanted (`fixed`), one that would regress the issue is.

use crate::version::version_is_older;

/// The report being grouped, as the index holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPlace<'a> {
    /// The issue the report is in now (processed before), if any.
    pub previous_issue: Option<i64>,
    /// When the report was received, Unix ms.
    pub received_at: i64,
    /// Its product name: what processing found, else what ingest recorded.
    pub product: Option<&'a str>,
    /// Its product version: what processing found, else what ingest recorded.
    pub version: Option<&'a str>,
}

/// The issue of the report's signature (created for it if it was new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuePlace<'a> {
    /// The issue's id.
    pub id: i64,
    /// How it was resolved, when it is resolved now; `None` when open or regressed.
    pub resolved: Option<Resolution<'a>>,
}

/// How an issue was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution<'a> {
    /// When, Unix ms (older rows may lack it).
    pub at: Option<i64>,
    /// The version it was fixed in: reports of older versions are expected.
    pub in_version: Option<&'a str>,
    /// The product that version is of; `None`: any product.
    pub product: Option<&'a str>,
}

/// What to do with the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping {
    /// Whether the issue counts the report as a new one of its reports (it was
    /// not in it before). A dropped report is counted too: the issue saw it.
    pub count: bool,
    /// The issue the report leaves (its signature changed), to be counted down.
    pub leaves: Option<i64>,
    /// Whether it is kept, reopens the issue, or is dropped.
    pub verdict: Verdict,
}

/// The decision for a report of a given issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The report joins its issue, whose status stays as it is.
    Join,
    /// The issue was resolved and this report shows the crash again: it joins
    /// and the issue becomes `regressed`.
    Regress,
    /// The issue was resolved and this report is no news: it is dropped (its rows
    /// and blobs deleted), and the issue counts it as dropped.
    Drop(DropReason),
}

/// Why a report of a resolved issue is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It was received before the resolution (it was in the pipeline then).
    ReceivedBeforeResolution,
    /// Its version is older than the version the issue was resolved in.
    OlderVersion,
}

impl DropReason {
    /// Words for logs.
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::ReceivedBeforeResolution => "received before the resolution",
            DropReason::OlderVersion => "older version",
        }
    }
}

/// Decides where `report` goes, given the issue of its signature.
pub fn group(report: &ReportPlace<'_>, issue: &IssuePlace<'_>) -> Grouping {
    let moved = report.previous_issue != Some(issue.id);
    let verdict = match &issue.resolved {
        None => Verdict::Join,
        Some(resolution) => match drop_reason(report, resolution) {
            Some(reason) => Verdict::Drop(reason),
            None => Verdict::Regress,
        },
    };
    Grouping {
        count: moved,
        leaves: report.previous_issue.filter(|_| moved),
        verdict,
    }
}

fn drop_reason(report: &ReportPlace<'_>, resolution: &Resolution<'_>) -> Option<DropReason> {
    if resolution.at.is_some_and(|at| report.received_at <= at) {
        return Some(DropReason::ReceivedBeforeResolution);
    }
    let (Some(fixed), Some(version)) = (resolution.in_version, report.version) else {
        return None;
    };
    let same_product = match (resolution.product, report.product) {
        (None, _) => true,
        (Some(p), Some(q)) => p == q,
        (Some(_), None) => false,
    };
    (same_product && version_is_older(version, fixed)).then_some(DropReason::OlderVersion)
}

/// A known crash site's issue, as a summary finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryPlace<'a> {
    /// How the issue was resolved, when it is resolved now.
    pub resolved: Option<Resolution<'a>>,
    /// Whether it is regressed (was resolved, crashed again).
    pub regressed: bool,
    /// How many of its reports are stored.
    pub stored_reports: i64,
    /// How many of its crashes were counted from summaries so far.
    pub counted: i64,
    /// Whether the crash site's reports went to more than one issue.
    pub ambiguous: bool,
}

/// How many dumps of an issue's crashes are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Stored reports wanted before crashes are only counted.
    pub samples: u32,
    /// Once counting, every this-many-th crash is asked for its dump all the
    /// same (0: never): a crash site shared by a crash not yet seen is found out.
    pub recheck_every: u32,
}

/// What a summary of a known crash site gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryVerdict {
    /// The dump is wanted: too few stored samples, regressed, or it would
    /// regress the issue.
    Send,
    /// Counted; the dump is not wanted.
    Count,
    /// Counted; the reporter's version is older than the one that fixes it.
    Fixed,
}

/// Decides what a summary of a crash in `product` `version`, at `now` (Unix ms),
/// gets from the issue of its crash site.
pub fn judge_summary(
    product: Option<&str>,
    version: Option<&str>,
    now: i64,
    issue: &SummaryPlace<'_>,
    wanted: Wanted,
) -> SummaryVerdict {
    // The key stands for more than one crash: which one this is, only its dump
    // tells.
    if issue.ambiguous {
        return SummaryVerdict::Send;
    }
    if let Some(resolution) = &issue.resolved {
        let report = ReportPlace {
            previous_issue: None,
            received_at: now,
            product,
            version,
        };
        return match drop_reason(&report, resolution) {
            // Its dump would be dropped as no news.
            Some(DropReason::OlderVersion) => SummaryVerdict::Fixed,
            // Its dump would regress the issue (or clocks disagree): wanted.
            _ => SummaryVerdict::Send,
        };
    }
    let recheck =
        wanted.recheck_every > 0 && (issue.counted + 1) % i64::from(wanted.recheck_every) == 0;
    if issue.regressed || issue.stored_reports < i64::from(wanted.samples) || recheck {
        SummaryVerdict::Send
    } else {
        SummaryVerdict::Count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOLVED_AT: i64 = 1_000;

    fn report(previous_issue: Option<i64>, received_at: i64) -> ReportPlace<'static> {
        ReportPlace {
            previous_issue,
            received_at,
            product: Some("App"),
            version: Some("1.4.0"),
        }
    }

    fn resolved(
        in_version: Option<&'static str>,
        product: Option<&'static str>,
    ) -> IssuePlace<'static> {
        IssuePlace {
            id: 7,
            resolved: Some(Resolution {
                at: Some(RESOLVED_AT),
                in_version,
                product,
            }),
        }
    }

    const OPEN: IssuePlace<'static> = IssuePlace {
        id: 7,
        resolved: None,
    };

    #[test]
    fn a_first_report_joins_and_is_counted() {
        let grouping = group(&report(None, 5), &OPEN);
        assert_eq!(
            grouping,
            Grouping {
                count: true,
                leaves: None,
                verdict: Verdict::Join
            }
        );
    }

    #[test]
    fn a_report_processed_again_into_its_issue_is_not_counted_twice() {
        let grouping = group(&report(Some(7), 5), &OPEN);
        assert!(!grouping.count);
        assert_eq!(grouping.leaves, None);
        assert_eq!(grouping.verdict, Verdict::Join);
    }

    #[test]
    fn a_report_whose_signature_changed_leaves_its_old_issue() {
        let grouping = group(&report(Some(3), 5), &OPEN);
        assert!(grouping.count);
        assert_eq!(grouping.leaves, Some(3));
    }

    #[test]
    fn a_report_after_the_resolution_regresses_the_issue() {
        let grouping = group(&report(None, RESOLVED_AT + 1), &resolved(None, None));
        assert_eq!(grouping.verdict, Verdict::Regress);
        assert!(grouping.count);
    }

    #[test]
    fn a_report_received_before_the_resolution_is_dropped() {
        for received in [RESOLVED_AT - 1, RESOLVED_AT] {
            let grouping = group(&report(Some(3), received), &resolved(None, None));
            assert_eq!(
                grouping.verdict,
                Verdict::Drop(DropReason::ReceivedBeforeResolution)
            );
            assert_eq!(grouping.leaves, Some(3));
        }
    }

    #[test]
    fn resolved_in_a_version_drops_older_versions_and_regresses_on_newer_ones() {
        let later = RESOLVED_AT + 1;
        let place = |version| ReportPlace {
            version: Some(version),
            ..report(None, later)
        };
        let issue = resolved(Some("1.5.0"), Some("App"));
        assert_eq!(
            group(&place("1.4.9"), &issue).verdict,
            Verdict::Drop(DropReason::OlderVersion)
        );
        assert_eq!(group(&place("1.5.0"), &issue).verdict, Verdict::Regress);
        assert_eq!(group(&place("1.10"), &issue).verdict, Verdict::Regress);
        // A version that does not compare is news.
        assert_eq!(group(&place("nightly"), &issue).verdict, Verdict::Regress);
    }

    #[test]
    fn the_resolved_in_version_is_of_one_product() {
        let later = RESOLVED_AT + 1;
        let old = |product| ReportPlace {
            product,
            version: Some("1.0"),
            ..report(None, later)
        };
        let of_app = resolved(Some("2.0"), Some("App"));
        assert_eq!(
            group(&old(Some("App")), &of_app).verdict,
            Verdict::Drop(DropReason::OlderVersion)
        );
        assert_eq!(
            group(&old(Some("Other")), &of_app).verdict,
            Verdict::Regress
        );
        assert_eq!(group(&old(None), &of_app).verdict, Verdict::Regress);
        // Resolved for any product: the version alone decides.
        let of_any = resolved(Some("2.0"), None);
        assert_eq!(
            group(&old(Some("Other")), &of_any).verdict,
            Verdict::Drop(DropReason::OlderVersion)
        );
        // A report without a version is news.
        let unversioned = ReportPlace {
            version: None,
            ..old(Some("App"))
        };
        assert_eq!(group(&unversioned, &of_app).verdict, Verdict::Regress);
    }

    fn place(
        resolved: Option<Resolution<'static>>,
        regressed: bool,
        stored: i64,
    ) -> SummaryPlace<'static> {
        SummaryPlace {
            resolved,
            regressed,
            stored_reports: stored,
            counted: 0,
            ambiguous: false,
        }
    }

    const TEN: Wanted = Wanted {
        samples: 10,
        recheck_every: 0,
    };

    #[test]
    fn a_summary_is_counted_once_the_issue_has_enough_samples() {
        let judge = |issue| judge_summary(Some("App"), Some("1.4.0"), 2_000, &issue, TEN);
        assert_eq!(judge(place(None, false, 9)), SummaryVerdict::Send);
        assert_eq!(judge(place(None, false, 10)), SummaryVerdict::Count);
        assert_eq!(
            judge(place(None, true, 50)),
            SummaryVerdict::Send,
            "regressed"
        );
        let none = Wanted {
            samples: 0,
            recheck_every: 0,
        };
        assert_eq!(
            judge_summary(Some("App"), None, 2_000, &place(None, false, 0), none),
            SummaryVerdict::Count,
            "a product that wants no samples"
        );
    }

    #[test]
    fn an_ambiguous_site_always_sends_and_a_counted_one_is_rechecked() {
        let ambiguous = SummaryPlace {
            ambiguous: true,
            ..place(None, false, 50)
        };
        let judge = |issue: &SummaryPlace<'_>, wanted| {
            judge_summary(Some("App"), Some("1.4.0"), 2_000, issue, wanted)
        };
        assert_eq!(judge(&ambiguous, TEN), SummaryVerdict::Send);
        let fixed = Resolution {
            at: Some(RESOLVED_AT),
            in_version: Some("2.0"),
            product: None,
        };
        let ambiguous_fixed = SummaryPlace {
            resolved: Some(fixed),
            ..ambiguous
        };
        assert_eq!(
            judge(&ambiguous_fixed, TEN),
            SummaryVerdict::Send,
            "not every crash of the site is the fixed one"
        );
        // Every 20th crash counted is asked for its dump.
        let every_20 = Wanted {
            samples: 10,
            recheck_every: 20,
        };
        let verdicts: Vec<SummaryVerdict> = (0..40)
            .map(|counted| {
                let issue = SummaryPlace {
                    counted,
                    ..place(None, false, 10)
                };
                judge(&issue, every_20)
            })
            .collect();
        let sent: Vec<usize> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == SummaryVerdict::Send)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(sent, [19, 39]);
    }

    #[test]
    fn a_summary_of_a_resolved_issue_is_fixed_only_for_older_versions() {
        let resolution = |in_version, product| Resolution {
            at: Some(RESOLVED_AT),
            in_version,
            product,
        };
        let judge = |version, resolution| {
            judge_summary(
                Some("App"),
                version,
                2_000,
                &place(Some(resolution), false, 0),
                TEN,
            )
        };
        assert_eq!(
            judge(Some("1.4.0"), resolution(Some("2.0"), None)),
            SummaryVerdict::Fixed
        );
        assert_eq!(
            judge(Some("1.4.0"), resolution(Some("2.0"), Some("App"))),
            SummaryVerdict::Fixed
        );
        // Another product's fix, a version not older, no version, no fix version:
        // the dump would regress the issue, so it is wanted.
        assert_eq!(
            judge(Some("1.4.0"), resolution(Some("2.0"), Some("Other"))),
            SummaryVerdict::Send
        );
        assert_eq!(
            judge(Some("2.0"), resolution(Some("2.0"), None)),
            SummaryVerdict::Send
        );
        assert_eq!(
            judge(None, resolution(Some("2.0"), None)),
            SummaryVerdict::Send
        );
        assert_eq!(
            judge(Some("1.4.0"), resolution(None, None)),
            SummaryVerdict::Send
        );
    }
}

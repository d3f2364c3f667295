//! Throttle rules as data: the first `[[throttle]]` rule whose conditions all
//! hold for an upload decides what becomes of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{ThrottleAction, ThrottleRule};
use crate::version::version_is_older;

/// What the rules see of an upload: its product, version and annotations.
#[derive(Debug, Clone, Copy)]
pub struct UploadFacts<'a> {
    /// The product the upload names.
    pub product: Option<&'a str>,
    /// The version the upload names.
    pub version: Option<&'a str>,
    /// Every annotation, as sent.
    pub annotations: &'a BTreeMap<String, String>,
}

/// What a rule decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Store it (an `accept` rule).
    Accept,
    /// Store it: inside a `sample` rule's share.
    SampledIn,
    /// Drop it (a `reject` rule).
    Reject,
    /// Drop it: outside a `sample` rule's share.
    SampledOut,
    /// Drop it and ask the sender to send nothing for this many hours.
    StopSending {
        /// For how long.
        hours: f64,
    },
}

/// The configured rules, with a count per rule for sampling.
pub struct Rules {
    rules: Vec<(ThrottleRule, AtomicU64)>,
}

impl Rules {
    /// The rules, in the order they are tried.
    pub fn new(rules: &[ThrottleRule]) -> Rules {
        Rules {
            rules: rules
                .iter()
                .map(|r| (r.clone(), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// The first matching rule and its decision; `None` when no rule matches.
    ///
    /// Sampling is by count, not chance: of the uploads a `sample` rule matches,
    /// the n-th is kept when `n × percent / 100` passes a whole number, so exactly
    /// that share is kept over any run of them.
    pub fn decide(&self, upload: &UploadFacts<'_>) -> Option<(&ThrottleRule, Decision)> {
        let (rule, seen) = self.rules.iter().find(|(rule, _)| matches(rule, upload))?;
        let decision = match rule.action {
            ThrottleAction::Accept => Decision::Accept,
            ThrottleAction::Reject => Decision::Reject,
            ThrottleAction::StopSending { hours } => Decision::StopSending { hours },
            ThrottleAction::Sample { percent } => {
                let n = seen.fetch_add(1, Ordering::Relaxed) as f64;
                let share = |n: f64| (n * percent / 100.0).floor();
                if share(n + 1.0) > share(n) {
                    Decision::SampledIn
                } else {
                    Decision::SampledOut
                }
            }
        };
        Some((rule, decision))
    }

    /// The first matching rule, not counted for sampling.
    pub fn first_match(&self, upload: &UploadFacts<'_>) -> Option<&ThrottleRule> {
        self.rules
            .iter()
            .map(|(rule, _)| rule)
            .find(|rule| matches(rule, upload))
    }
}

fn matches(rule: &ThrottleRule, upload: &UploadFacts<'_>) -> bool {
    let equals = |want: &Option<String>, have: Option<&str>| {
        want.as_deref().is_none_or(|want| have == Some(want))
    };
    equals(&rule.product, upload.product)
        && equals(&rule.version, upload.version)
        && rule
            .version_older_than
            .as_deref()
            .is_none_or(|than| upload.version.is_some_and(|v| version_is_older(v, than)))
        && rule
            .annotations
            .iter()
            .all(|(name, value)| upload.annotations.get(name) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, action: ThrottleAction) -> ThrottleRule {
        ThrottleRule {
            name: name.into(),
            product: None,
            version: None,
            version_older_than: None,
            annotations: BTreeMap::new(),
            action,
        }
    }

    fn decide<'r>(
        rules: &'r Rules,
        product: Option<&str>,
        version: Option<&str>,
        annotations: &[(&str, &str)],
    ) -> Option<(&'r str, Decision)> {
        let annotations: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        rules
            .decide(&UploadFacts {
                product,
                version,
                annotations: &annotations,
            })
            .map(|(rule, decision)| (rule.name.as_str(), decision))
    }

    #[test]
    fn the_first_matching_rule_decides_and_every_condition_must_hold() {
        let rules = Rules::new(&[
            ThrottleRule {
                product: Some("crashy".into()),
                version_older_than: Some("2.0".into()),
                ..rule("old_crashy", ThrottleAction::StopSending { hours: 24.0 })
            },
            ThrottleRule {
                product: Some("crashy".into()),
                version: Some("2.1.0".into()),
                annotations: BTreeMap::from([("channel".into(), "beta".into())]),
                ..rule("bad_beta", ThrottleAction::Reject)
            },
            ThrottleRule {
                product: Some("crashy".into()),
                ..rule("crashy", ThrottleAction::Accept)
            },
        ]);
        let stop = Decision::StopSending { hours: 24.0 };
        let beta: &[(&str, &str)] = &[("channel", "beta")];
        let accept = Some(("crashy", Decision::Accept));
        for (version, annotations, decided) in [
            (Some("1.9.3"), &[][..], Some(("old_crashy", stop))),
            (Some("v1.10"), beta, Some(("old_crashy", stop))),
            (Some("2.1.0"), beta, Some(("bad_beta", Decision::Reject))),
            // One condition short: the next rule.
            (Some("2.1.0"), &[("channel", "release")], accept),
            (Some("2.1.1"), beta, accept),
            // No version, or one that does not compare, is not older.
            (None, &[], accept),
            (Some("nightly"), &[], accept),
        ] {
            assert_eq!(
                decide(&rules, Some("crashy"), version, annotations),
                decided,
                "{version:?} {annotations:?}"
            );
        }
        assert_eq!(decide(&rules, Some("other"), Some("1.0"), &[]), None);
        assert_eq!(decide(&rules, None, Some("1.0"), &[]), None);
    }

    #[test]
    fn sampling_keeps_exactly_its_share() {
        // How many of `n` matching uploads a `sample` rule keeps.
        let kept = |percent: f64, n: usize| {
            let rules = Rules::new(&[rule("s", ThrottleAction::Sample { percent })]);
            (0..n)
                .filter(|_| match decide(&rules, None, None, &[]).unwrap().1 {
                    Decision::SampledIn => true,
                    Decision::SampledOut => false,
                    other => panic!("{other:?}"),
                })
                .count()
        };
        assert_eq!(kept(0.0, 100), 0);
        assert_eq!(kept(100.0, 100), 100);
        assert_eq!(kept(10.0, 1000), 100);
        assert_eq!(kept(50.0, 2), 1);
        assert_eq!(kept(12.5, 80), 10);
    }

    #[test]
    fn the_share_holds_over_any_run() {
        let rules = Rules::new(&[rule("s", ThrottleAction::Sample { percent: 25.0 })]);
        let kept: Vec<bool> = (0..16)
            .map(|_| decide(&rules, None, None, &[]).unwrap().1 == Decision::SampledIn)
            .collect();
        for window in kept.chunks(4) {
            assert_eq!(window.iter().filter(|k| **k).count(), 1, "{kept:?}");
        }
    }
}

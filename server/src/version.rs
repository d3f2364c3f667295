//! Product version comparison: is a crash's version older than the version an
//! issue was resolved in? A leaf: plain strings in, an ordering out.

use std::cmp::Ordering;

/// Whether `version` is older than `than`: semver precedence when both parse as
/// semver (a leading `v` allowed), else dotted numbers compared numerically
/// (`1.10` > `1.9`; missing parts count as 0). Versions that compare neither way
/// are not older.
pub fn version_is_older(version: &str, than: &str) -> bool {
    compare_versions(version, than) == Some(Ordering::Less)
}

/// Whether `version` can be compared with other versions at all (semver, or
/// dotted numbers): an issue can be resolved only in such a version.
pub fn is_comparable(version: &str) -> bool {
    compare_versions(version, version).is_some()
}

/// Compares two product versions as [`version_is_older`] describes; `None` when
/// they cannot be compared.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let clean = |s: &str| -> String {
        let s = s.trim();
        s.strip_prefix(['v', 'V']).unwrap_or(s).to_owned()
    };
    let (a, b) = (clean(a), clean(b));
    if let (Ok(x), Ok(y)) = (semver::Version::parse(&a), semver::Version::parse(&b)) {
        return Some(x.cmp_precedence(&y));
    }
    let numbers = |s: &str| -> Option<Vec<u64>> {
        s.split(['.', '-', '+', '_', ' '])
            .take_while(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
            .map(|part| part.parse().ok())
            .collect::<Option<Vec<u64>>>()
            .filter(|parts| !parts.is_empty())
    };
    let (mut x, mut y) = (numbers(&a)?, numbers(&b)?);
    let len = x.len().max(y.len());
    x.resize(len, 0);
    y.resize(len, 0);
    Some(x.cmp(&y))
}

/// How many dotted parts a [`sort_key`] keeps.
const KEY_PARTS: usize = 6;

/// A text that sorts as the version does among other keys ([`compare_versions`]'s
/// order, for the dotted numbers: `1.9` < `1.10` < `2`), for `version ≥ x` in
/// SQL: each of the first six numbers zero-padded to 20 digits, then `~` for a
/// release or `-` and the pre-release for a pre-release (which so sorts before
/// its release; pre-releases among themselves by text). `None` when the version
/// does not compare.
pub fn sort_key(version: &str) -> Option<String> {
    if !is_comparable(version) {
        return None;
    }
    let v = version.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let (pre, numbers) = match semver::Version::parse(v) {
        Ok(semver) => (
            (!semver.pre.is_empty()).then(|| semver.pre.to_string()),
            vec![semver.major, semver.minor, semver.patch],
        ),
        Err(_) => (
            None,
            v.split(['.', '-', '+', '_', ' '])
                .take_while(|part| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
                .map(|part| part.parse().unwrap_or(u64::MAX))
                .collect(),
        ),
    };
    let mut parts: Vec<String> = numbers
        .iter()
        .take(KEY_PARTS)
        .map(|n| format!("{n:020}"))
        .collect();
    parts.resize(KEY_PARTS, format!("{:020}", 0));
    let mut key = parts.join(".");
    match pre {
        Some(pre) => {
            key.push('-');
            key.push_str(&pre);
        }
        None => key.push('~'),
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versions_that_compare_can_be_resolved_in() {
        for v in ["2.3.0", "v1.10", "115.0.2", "1.0.0-beta.1", "7"] {
            assert!(is_comparable(v), "{v}");
        }
        for v in ["not a version!!", "", "beta", ".1"] {
            assert!(!is_comparable(v), "{v}");
        }
    }

    #[test]
    fn versions_compare_semver_first_then_dotted_numbers() {
        assert!(version_is_older("2.2.9", "2.3.0"));
        assert!(version_is_older("v2.3.0-beta.1", "2.3.0"));
        assert!(!version_is_older("2.3.0", "2.3.0"));
        assert!(!version_is_older("2.10.0", "2.9.0"));
        assert!(version_is_older("1.9", "1.10"));
        assert!(!version_is_older("1.10", "1.9"));
        assert!(!version_is_older("2", "2.0.0"));
        assert!(version_is_older("115.0", "116.0.1"));
        assert!(version_is_older("1.2.3.4", "1.2.3.5"));
        assert!(!version_is_older("nightly", "1.0"));
        assert_eq!(compare_versions("beta", "1.0"), None);
    }

    #[test]
    fn semver_prereleases_sort_before_their_release() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(version_is_older(pair[0], pair[1]), "{pair:?}");
            assert!(!version_is_older(pair[1], pair[0]), "{pair:?}");
        }
    }

    #[test]
    fn build_metadata_prefix_and_whitespace_do_not_count() {
        assert_eq!(
            compare_versions("1.0.0+build.1", "1.0.0+build.2"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_versions(" V1.2.3 ", "v1.2.3"),
            Some(Ordering::Equal)
        );
        assert!(version_is_older("v1.2.3", "1.2.4"));
    }

    #[test]
    fn semver_against_dotted_numbers_compares_the_numbers() {
        // `1.2.3.1` is not semver, so both sides are read as dotted numbers.
        assert!(version_is_older("1.2.3", "1.2.3.1"));
        assert!(!version_is_older("1.2.3.1", "1.2.3"));
        // Leading zeros are not semver either; numerically they are the same.
        assert_eq!(compare_versions("1.02.0", "1.2.0"), Some(Ordering::Equal));
        // A suffix after the numbers of a non-semver version is not read.
        assert_eq!(compare_versions("1.2-beta", "1.2"), Some(Ordering::Equal));
        assert!(version_is_older("1.2-beta", "1.3"));
    }

    #[test]
    fn garbage_compares_neither_way() {
        for garbage in [
            "",
            "   ",
            "v",
            "nightly",
            ".1",
            "-1",
            "18446744073709551616",
            "\u{1b}[31m1.0",
        ] {
            for other in ["1.0", "1.0.0", garbage] {
                assert_eq!(
                    compare_versions(garbage, other),
                    None,
                    "{garbage:?} {other:?}"
                );
                assert_eq!(
                    compare_versions(other, garbage),
                    None,
                    "{other:?} {garbage:?}"
                );
                assert!(!version_is_older(garbage, other));
                assert!(!version_is_older(other, garbage));
            }
        }
    }

    #[test]
    fn comparison_is_antisymmetric() {
        let versions = ["1", "1.0.1", "v1.0.1-rc.1", "2.0", "10.0.0", "10.0.0.1"];
        for a in versions {
            for b in versions {
                assert_eq!(
                    compare_versions(a, b),
                    compare_versions(b, a).map(Ordering::reverse),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn sort_keys_order_as_versions_do() {
        let ordered = [
            "1.0.0-beta",
            "1.0",
            "1.0.1",
            "1.9",
            "1.10",
            "2.0.0-rc.1",
            "2",
            "2.0.1",
            "115.0.2",
        ];
        let keys: Vec<String> = ordered.iter().map(|v| sort_key(v).unwrap()).collect();
        for (pair, versions) in keys.windows(2).zip(ordered.windows(2)) {
            assert!(pair[0] < pair[1], "{} < {}", versions[0], versions[1]);
        }
        assert_eq!(sort_key("2.0"), sort_key("v2.0.0"));
        assert_eq!(sort_key("not a version!!"), None);
    }
}

//! String rules shared by every scrubber: user names in paths, e-mail and IP
//! addresses, secrets, and rewriting found text in place without changing its
//! length. Where text lies inside binary buffers is `runs.rs`.

use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

/// What a value rule found. `name()` is the stable kind used in [`super::ScrubSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Email,
    Ip,
    CreditCard,
    BearerToken,
    PemKey,
    UrlCredentials,
    UserPath,
    KnownValue,
    Environment,
    /// A whole run of text, masked without being searched: the dump held more
    /// findings than it may ([`crate::scrub::minidump`]'s crowding bound).
    Crowded,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Email => "email_address",
            Kind::Ip => "ip_address",
            Kind::CreditCard => "credit_card_number",
            Kind::BearerToken => "bearer_token",
            Kind::PemKey => "pem_private_key",
            Kind::UrlCredentials => "url_credentials",
            Kind::UserPath => "user_name_in_path",
            Kind::KnownValue => "user_or_host_name",
            Kind::Environment => "environment_variable",
            Kind::Crowded => "crowded_text_run",
        }
    }
}

/// One finding: a byte range of the searched `&str` and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) range: Range<usize>,
    pub(crate) kind: Kind,
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}").expect("valid regex")
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")
        .expect("valid regex")
});
static IPV6_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[0-9a-f:]*:[0-9a-f:]*:[0-9a-f:.]*").expect("valid regex"));
static CREDIT_CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[3-6][0-9](?:[ -]?[0-9]){11,17}").expect("valid regex"));
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)bearer\s+([a-z0-9._~+/-]+=*)").expect("valid regex"));
static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)")
        .expect("valid regex")
});
static URL_CREDENTIALS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[a-z][a-z0-9+.-]*://([^/\s@]+)@").expect("valid regex"));
/// A home directory root followed by the user name: `/home/<u>`, `/Users/<u>`,
/// `C:\Users\<u>`, `\Documents and Settings\<u>`, `/usr/local/google/home/<u>`,
/// `/mnt/c/Users/<u>` … Group 1 is the separator before the name, group 2 the name.
/// Names stop at a separator, a quote or other punctuation paths don't use; a name
/// after a backslash may contain spaces (Windows profiles do).
static HOME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)[\\/](?:home|users|documents and settings)([\\/])([^\\/\x00-\x1f"'<>|:;*?,=]+)"#,
    )
    .expect("valid regex")
});

/// Profile directories that name no person.
const NOT_PERSONAL: &[&str] = &[
    "public",
    "default",
    "default user",
    "all users",
    "shared",
    "guest",
    "root",
    "user",
    "admin",
    "administrator",
    "nobody",
    "system",
    "localhost",
    "android",
    "shell",
];

/// Whether a user or host name is a word so general that masking it would hide
/// nothing personal (and damage everything else that uses the word).
pub(crate) fn is_generic_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    NOT_PERSONAL.contains(&lower.as_str())
        || lower.starts_with('%')
        || lower.starts_with('$')
        || lower.starts_with('<')
        || lower.starts_with('{')
        || lower.starts_with('*')
}

/// Whether `byte` may begin a home directory root of [`HOME`] (`home`,
/// `users`, `documents and settings`), in any ASCII case.
fn may_begin_home_root(byte: Option<&u8>) -> bool {
    byte.is_some_and(|&c| matches!(c | 0x20, b'h' | b'u' | b'd'))
}

/// Whether a home directory root of [`HOME`] and a separator stand at `at` of
/// `b` (in any ASCII case).
fn home_root_at(b: &[u8], at: usize) -> bool {
    let root: &[u8] = match b.get(at).map(|c| c | 0x20) {
        Some(b'h') => b"home",
        Some(b'u') => b"users",
        Some(b'd') => b"documents and settings",
        _ => return false,
    };
    b.get(at..at + root.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(root))
        && matches!(b.get(at + root.len()), Some(b'/' | b'\\'))
}

/// Whether `text` may hold a match of [`HOME`]: a separator, a root and a
/// separator (in any ASCII case). Text with letters beyond ASCII falls back to
/// a looser test (a separator and one of the roots' first letters): the
/// pattern's Unicode case folding lets `ſ` (U+017F) stand for `s`.
fn may_hold_home_root(text: &str) -> bool {
    let b = text.as_bytes();
    let ascii = text.is_ascii();
    memchr::memchr2_iter(b'/', b'\\', b).any(|i| {
        if ascii {
            home_root_at(b, i + 1)
        } else {
            may_begin_home_root(b.get(i + 1))
        }
    })
}

/// The user-name parts of home directories in `text`: byte ranges of the names,
/// the first `limit` of them.
pub(crate) fn user_names_in_paths(text: &str, limit: usize) -> Vec<Range<usize>> {
    if !may_hold_home_root(text) {
        return Vec::new();
    }
    user_names_in_home_paths(text, limit)
}

/// [`user_names_in_paths`] once `text` is known to may hold a home root.
fn user_names_in_home_paths(text: &str, limit: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for caps in HOME.captures_iter(text) {
        if out.len() >= limit {
            break;
        }
        let (Some(sep), Some(name)) = (caps.get(1), caps.get(2)) else {
            continue;
        };
        let mut end = name.end();
        // After a forward slash a name ends at whitespace (command lines).
        if sep.as_str() == "/"
            && let Some(ws) = name.as_str().find(char::is_whitespace)
        {
            end = name.start() + ws;
        }
        let raw = &text[name.start()..end];
        let trimmed = raw.trim_end();
        let end = name.start() + trimmed.len();
        if trimmed.is_empty() || trimmed.chars().all(|c| c == '*') || is_generic_name(trimmed) {
            continue;
        }
        out.push(name.start()..end);
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether `range` of `text` is not glued to letters or digits on either side.
fn bounded(text: &str, range: &Range<usize>, extra: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let before = range.start.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(range.end).copied();
    let ok = |b: Option<u8>| match b {
        None => true,
        Some(b) => !is_word_byte(b) && !extra.contains(&b),
    };
    ok(before) && ok(after)
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether `text` may hold an IPv6 finding: each lies in a stretch of hex
/// digits, colons and dots holding two colons and a decimal digit.
#[cfg(test)]
fn may_hold_ipv6(text: &str) -> bool {
    Shape::of(text).ipv6
}

/// What one pass over a text tells of the value patterns that may match it:
/// a flag is false only where its pattern cannot match (the patterns decide
/// the rest). Most texts found in memory match none, and this pass is all
/// they cost.
#[derive(Debug, Default, Clone, Copy)]
struct Shape {
    /// An `@` ([`EMAIL`]; [`URL_CREDENTIALS`] with `://`).
    at: bool,
    /// A stretch of digits and dots with three dots between digits ([`IPV4`]).
    ipv4: bool,
    /// A stretch of hex digits, colons and dots holding two colons and a
    /// decimal digit ([`IPV6_CANDIDATE`] with a digit).
    ipv6: bool,
    /// Thirteen decimal digits or more ([`CREDIT_CARD`]).
    card: bool,
    /// `bearer` in any ASCII case ([`BEARER`]; its `(?i)` folds no other
    /// character into these letters).
    bearer: bool,
    /// Five dashes in a row ([`PEM`]'s `-----BEGIN `).
    dashes: bool,
    /// A colon ([`URL_CREDENTIALS`]'s `://`).
    colon: bool,
    /// What [`may_hold_home_root`] tells ([`HOME`]).
    home: bool,
}

impl Shape {
    fn of(text: &str) -> Shape {
        let b = text.as_bytes();
        let mut shape = Shape::default();
        let mut digits = 0usize;
        // Dots between digits in the current stretch of digits and dots.
        let mut v4_dots = 0u32;
        // Colons, and whether a decimal digit was seen, in the current stretch
        // of hex digits, colons and dots.
        let (mut v6_colons, mut v6_digit) = (0u32, false);
        let mut dashes = 0u32;
        // A separator followed by a home root's first letter (the test for
        // text beyond ASCII), and whether all of it is ASCII.
        let (mut home_letter, mut ascii) = (false, true);
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'0'..=b'9' => {
                    digits += 1;
                    v6_digit = true;
                    dashes = 0;
                }
                b'.' => {
                    let digit_at = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
                    if i > 0 && digit_at(i - 1) && digit_at(i + 1) {
                        v4_dots += 1;
                        shape.ipv4 |= v4_dots >= 3;
                    }
                    dashes = 0;
                }
                b':' => {
                    shape.colon = true;
                    v6_colons += 1;
                    v4_dots = 0;
                    dashes = 0;
                }
                b'a'..=b'f' | b'A'..=b'F' => {
                    if c | 0x20 == b'b'
                        && b.get(i + 1..i + 6)
                            .is_some_and(|w| w.eq_ignore_ascii_case(b"earer"))
                    {
                        shape.bearer = true;
                    }
                    v4_dots = 0;
                    dashes = 0;
                }
                _ => {
                    match c {
                        b'@' => shape.at = true,
                        b'-' => {
                            dashes += 1;
                            shape.dashes |= dashes >= 5;
                        }
                        b'/' | b'\\' if may_begin_home_root(b.get(i + 1)) => {
                            home_letter = true;
                            shape.home |= home_root_at(b, i + 1);
                        }
                        0x80.. => ascii = false,
                        _ => {}
                    }
                    if c != b'-' {
                        dashes = 0;
                    }
                    v4_dots = 0;
                    (v6_colons, v6_digit) = (0, false);
                    continue;
                }
            }
            shape.ipv6 |= v6_colons >= 2 && v6_digit;
        }
        shape.card = digits >= 13;
        shape.home |= home_letter && !ascii;
        shape
    }
}

/// Every value-rule finding in `text` (not environment assignments, not known
/// names): e-mail, IPv4/IPv6, credit-card numbers, bearer tokens, PEM keys, URL
/// credentials and user names in paths. Findings may overlap.
pub(crate) fn find_values(text: &str, out: &mut Vec<Finding>) {
    find_values_shaped(text, Shape::of(text), out, usize::MAX);
}

/// [`find_values`] until `out` holds `limit` findings: `false` when it stopped
/// there (some may be left unfound).
pub(crate) fn find_values_up_to(text: &str, out: &mut Vec<Finding>, limit: usize) -> bool {
    out.len() < limit && find_values_shaped(text, Shape::of(text), out, limit)
}

/// [`find_values`] with the patterns `shape` lets through, until `out` holds
/// `limit` findings: `false` when it stopped there (some may be left unfound).
fn find_values_shaped(text: &str, shape: Shape, out: &mut Vec<Finding>, limit: usize) -> bool {
    if shape.at {
        let b = text.as_bytes();
        for m in EMAIL.find_iter(text) {
            // Not a path component (`/data/app/base.apk@classes.dex`,
            // `system@framework@boot.art` on Android).
            let before = m.start().checked_sub(1).map(|i| b[i]);
            let after = b.get(m.end()).copied();
            if matches!(before, Some(b'/' | b'\\' | b'@'))
                || matches!(after, Some(b'@' | b'/' | b'\\'))
            {
                continue;
            }
            out.push(Finding {
                range: m.range(),
                kind: Kind::Email,
            });
            if out.len() >= limit {
                return false;
            }
        }
    }
    if shape.ipv4 {
        for m in IPV4.find_iter(text) {
            let r = m.range();
            // Not part of a longer dotted number (a version such as 1.2.3.4.5).
            let b = text.as_bytes();
            let glued_before =
                r.start >= 2 && b[r.start - 1] == b'.' && b[r.start - 2].is_ascii_digit();
            let glued_after =
                b.get(r.end) == Some(&b'.') && b.get(r.end + 1).is_some_and(u8::is_ascii_digit);
            if bounded(text, &r, b"") && !glued_before && !glued_after && m.as_str() != "0.0.0.0" {
                out.push(Finding {
                    range: r,
                    kind: Kind::Ip,
                });
                if out.len() >= limit {
                    return false;
                }
            }
        }
    }
    if shape.ipv6 {
        for m in IPV6_CANDIDATE.find_iter(text) {
            let s = m.as_str().trim_end_matches('.');
            // A colon after an address ends a clause (`fe80::1: refused`); one
            // of two ends it (`fe80::`).
            let s = match s.strip_suffix(':') {
                Some(address) if !address.ends_with(':') => address,
                _ => s,
            };
            let r = m.start()..m.start() + s.len();
            if s.len() >= 3
                && s.bytes().any(|b| b.is_ascii_digit())
                && s.parse::<Ipv6Addr>().is_ok_and(|ip| !ip.is_unspecified())
                && bounded(text, &r, b"")
            {
                out.push(Finding {
                    range: r,
                    kind: Kind::Ip,
                });
                if out.len() >= limit {
                    return false;
                }
            }
        }
    }
    if shape.card {
        for m in CREDIT_CARD.find_iter(text) {
            let digits: Vec<u8> = m.as_str().bytes().filter(u8::is_ascii_digit).collect();
            if (13..=19).contains(&digits.len()) && luhn(&digits) && bounded(text, &m.range(), b"")
            {
                out.push(Finding {
                    range: m.range(),
                    kind: Kind::CreditCard,
                });
                if out.len() >= limit {
                    return false;
                }
            }
        }
    }
    if shape.bearer && text.len() >= 8 {
        for caps in BEARER.captures_iter(text) {
            if let Some(token) = caps.get(1) {
                out.push(Finding {
                    range: token.range(),
                    kind: Kind::BearerToken,
                });
                if out.len() >= limit {
                    return false;
                }
            }
        }
    }
    if shape.dashes && text.contains("-----BEGIN ") {
        for m in PEM.find_iter(text) {
            out.push(Finding {
                range: m.range(),
                kind: Kind::PemKey,
            });
            if out.len() >= limit {
                return false;
            }
        }
    }
    if shape.at && shape.colon && text.contains("://") {
        for caps in URL_CREDENTIALS.captures_iter(text) {
            if let Some(cred) = caps.get(1) {
                out.push(Finding {
                    range: cred.range(),
                    kind: Kind::UrlCredentials,
                });
                if out.len() >= limit {
                    return false;
                }
            }
        }
    }
    if shape.home {
        for r in user_names_in_home_paths(text, limit.saturating_sub(out.len())) {
            out.push(Finding {
                range: r,
                kind: Kind::UserPath,
            });
            if out.len() >= limit {
                return false;
            }
        }
    }
    true
}

/// [`Shape`]'s promise, checked: `text` has the same findings with the
/// patterns one pass over it lets through as with every pattern run; panics
/// (naming the text) where it has not. Returns the findings. For the tests and
/// the fuzz target `scrub_text`.
#[cfg(any(test, fuzzing))]
pub(crate) fn assert_one_pass_keeps_every_finding(text: &str) -> Vec<Finding> {
    let everything = Shape {
        at: true,
        ipv4: true,
        ipv6: true,
        card: true,
        bearer: true,
        dashes: true,
        colon: true,
        home: true,
    };
    let (mut shaped, mut all) = (Vec::new(), Vec::new());
    find_values(text, &mut shaped);
    find_values_shaped(text, everything, &mut all, usize::MAX);
    assert_eq!(shaped, all, "{text:?}");
    all
}

/// Where an environment-style `KEY=value` assignment starts in `text`, if the text
/// (one NUL-delimited string found in memory) holds one: the key's start, at the
/// first `=` that has a key before it (not at the first `=` alone: a string split
/// where a value in it was zeroed would otherwise show an assignment the whole
/// string hid). Windows' per-drive entries (`=C:=C:\dir`) count too.
pub(crate) fn env_assignment_start(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    memchr::memchr_iter(b'=', b).find_map(|eq| {
        if eq == 0 {
            // `=C:=C:\…`
            return (b.len() >= 4 && b[1].is_ascii_alphabetic() && b[2] == b':' && b[3] == b'=')
                .then_some(0);
        }
        let mut start = eq;
        while start > 0 {
            let c = b[start - 1];
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'(' | b')' | b'.' | b'-') {
                start -= 1;
            } else {
                break;
            }
        }
        // Keys start with a letter or an underscore.
        while start < eq && !(b[start].is_ascii_alphabetic() || b[start] == b'_') {
            start += 1;
        }
        (start < eq).then_some(start)
    })
}

/// Case-insensitive finder for literal values (user and host names) learned from
/// the data or configured. Matches must not be glued to letters or digits.
///
/// One is built for every dump scrubbed, so building must be cheap (and values
/// learned from a dump can be kilobytes long). What it finds is what
/// `(?i)(?:v1|v2|…)` (values longest first) finds: [`AsciiValues`] finds that
/// ignoring ASCII case; where that could differ — a value beyond ASCII, or
/// text holding `ſ` (U+017F) or `K` (U+212A), which Unicode simple case
/// folding lets stand for `s` and `k` — the regex is compiled (once, on first
/// need) and searched instead.
///
/// Where values share their first bytes, each place text begins like them is
/// compared with each of them: a dump can make that its length times the
/// values' (256 learned secrets of 4 KiB alike but for their ends, and a run
/// of text repeating their start: 11 s for 300 KB). So the comparisons a
/// finder makes are counted, over all the text it searches, up to
/// [`COMPARE_BUDGET`]; past that, it finds each text whole (all of it is
/// masked: kept less, never searched less).
#[derive(Debug, Default)]
pub(crate) struct KnownValues {
    /// `None` when some value is not ASCII (or there are none).
    ascii: Option<AsciiValues>,
    /// `(?i)(?:v1|v2|…)`, empty when there are no values.
    pattern: String,
    /// [`Self::pattern`] compiled, on first need (`None`: it did not compile;
    /// the texts that need it are then found whole).
    regex: OnceLock<Option<Regex>>,
    min_len: usize,
    /// What comparing cost so far ([`AsciiValues::find_iter`]).
    compared: AtomicU64,
    /// [`COMPARE_BUDGET`] (smaller in tests).
    budget: u64,
}

/// What one [`KnownValues`] may spend comparing text with its values, over
/// all the text it searches, before it finds each text whole: a comparison
/// costs [`COMPARE_COST`] plus the bytes compared (about 0.4 ns each here:
/// some 0.1 s in all). An ordinary dump spends a few hundred thousand.
const COMPARE_BUDGET: u64 = 1 << 28;

/// What a comparison costs besides its bytes (the call, finding the value):
/// about as much as 64 bytes compared.
const COMPARE_COST: u64 = 64;

impl KnownValues {
    /// Builds a finder for `values`; values shorter than 3 characters are skipped
    /// (too likely to occur by chance).
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let vals = known_values(values);
        if vals.is_empty() {
            return Self::default();
        }
        let min_len = vals.iter().map(|v| v.len()).min().unwrap_or(3);
        let pattern = known_values_pattern(&vals);
        Self {
            ascii: AsciiValues::new(&vals),
            pattern,
            regex: OnceLock::new(),
            min_len,
            compared: AtomicU64::new(0),
            budget: COMPARE_BUDGET,
        }
    }

    /// Pushes every occurrence of a value in `text` (leftmost first, not
    /// overlapping) that is not glued to letters or digits; all of `text`, as
    /// one finding, once the finder is over its budget ([`COMPARE_BUDGET`]).
    pub(crate) fn find(&self, text: &str, out: &mut Vec<Finding>) {
        self.find_up_to(text, out, usize::MAX);
    }

    /// [`Self::find`] until `out` holds `limit` findings: `false` when it
    /// stopped there (some may be left unfound).
    pub(crate) fn find_up_to(&self, text: &str, out: &mut Vec<Finding>, limit: usize) -> bool {
        if out.len() >= limit {
            return false;
        }
        if self.pattern.is_empty() || text.len() < self.min_len {
            return true;
        }
        let had = out.len();
        let mut push = |range: Range<usize>| {
            if bounded(text, &range, b"") {
                out.push(Finding {
                    range,
                    kind: Kind::KnownValue,
                });
            }
            out.len() < limit
        };
        match &self.ascii {
            Some(ascii) if !may_fold_into_ascii(text) => {
                let before = self.compared.load(Ordering::Relaxed);
                let (complete, within) = if before > self.budget {
                    (true, false)
                } else {
                    let (spent, complete) =
                        ascii.find_iter(text.as_bytes(), self.budget - before, &mut push);
                    let total = self.compared.fetch_add(spent, Ordering::Relaxed) + spent;
                    (complete, total <= self.budget)
                };
                if !within {
                    // Over budget (in this text or before): all of it.
                    out.truncate(had);
                    out.push(Finding {
                        range: 0..text.len(),
                        kind: Kind::KnownValue,
                    });
                    return true;
                }
                complete
            }
            _ => match self.regex.get_or_init(|| Regex::new(&self.pattern).ok()) {
                Some(regex) => {
                    for m in regex.find_iter(text) {
                        if !push(m.range()) {
                            return false;
                        }
                    }
                    true
                }
                // Values too many or too long to compile into one regex: the
                // text cannot be searched for them, so all of it.
                None => {
                    out.truncate(had);
                    out.push(Finding {
                        range: 0..text.len(),
                        kind: Kind::KnownValue,
                    });
                    true
                }
            },
        }
    }
}

/// The values a [`KnownValues`] looks for, in the order it tries them: trimmed,
/// at least 3 characters, not generic, longest first, one of those equal but
/// for ASCII case.
fn known_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut vals: Vec<&str> = values
        .into_iter()
        .map(str::trim)
        .filter(|v| v.chars().count() >= 3 && !is_generic_name(v))
        .collect();
    vals.sort_by_key(|v| std::cmp::Reverse(v.len()));
    vals.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    vals
}

/// `(?i)(?:v1|v2|…)` for `vals` in their order.
fn known_values_pattern(vals: &[&str]) -> String {
    let escaped: Vec<String> = vals.iter().map(|v| regex::escape(v)).collect();
    format!("(?i)(?:{})", escaped.join("|"))
}

/// ASCII values (each at least 3 bytes) found ignoring ASCII case, leftmost
/// first: at the leftmost place any value occurs, the first value in order that
/// does. An Aho-Corasick automaton over the values' first three bytes only
/// (cheap to build however long the values) finds the places to try.
#[derive(Debug)]
struct AsciiValues {
    /// The values, in order.
    values: Vec<Box<[u8]>>,
    /// The distinct first three bytes of the values, ASCII case ignored.
    starts: AhoCorasick,
    /// For each pattern of [`Self::starts`], the values (indices, in order)
    /// that begin with it.
    by_start: Vec<Vec<usize>>,
}

impl AsciiValues {
    /// `None` when a value is not ASCII or shorter than 3 bytes.
    fn new(values: &[&str]) -> Option<Self> {
        if !values.iter().all(|v| v.is_ascii() && v.len() >= 3) {
            return None;
        }
        let mut starts: Vec<[u8; 3]> = Vec::new();
        let mut by_start: Vec<Vec<usize>> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let b = v.as_bytes();
            let start = [b[0], b[1], b[2]].map(|c| c.to_ascii_lowercase());
            match starts.iter().position(|s| *s == start) {
                Some(at) => by_start[at].push(i),
                None => {
                    starts.push(start);
                    by_start.push(vec![i]);
                }
            }
        }
        // Standard semantics: every place a start occurs, overlapping ones too.
        let starts = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(&starts)
            .ok()?;
        Some(Self {
            values: values.iter().map(|v| v.as_bytes().into()).collect(),
            starts,
            by_start,
        })
    }

    /// Calls `found` with each occurrence in `text`, left to right, not
    /// overlapping: what `find_iter` of `(?i)(?:v1|v2|…)` yields on text
    /// without `ſ` or `K`, until `found` says stop (`false`). Returns what
    /// comparing cost ([`COMPARE_BUDGET`]), and `false` when `found` said stop;
    /// stops too once the cost is over `budget` (what it found by then is not
    /// all there is).
    fn find_iter(
        &self,
        text: &[u8],
        budget: u64,
        mut found: impl FnMut(Range<usize>) -> bool,
    ) -> (u64, bool) {
        let mut compared = 0u64;
        let mut next = 0;
        // All starts are 3 bytes long: they are reported in the order of
        // where they begin, and at most one begins at any place.
        for m in self.starts.find_overlapping_iter(text) {
            let at = m.start();
            if at < next {
                continue;
            }
            let rest = &text[at..];
            let mut value = None;
            for &i in &self.by_start[m.pattern().as_usize()] {
                if compared > budget {
                    return (compared, true);
                }
                let v = &self.values[i];
                if let Some(r) = rest.get(..v.len()) {
                    compared += COMPARE_COST + r.len() as u64;
                    if r.eq_ignore_ascii_case(v) {
                        value = Some(v);
                        break;
                    }
                }
            }
            if let Some(v) = value {
                next = at + v.len();
                if !found(at..next) {
                    return (compared, false);
                }
            }
        }
        (compared, true)
    }
}

/// Whether `text` holds a character beyond ASCII that Unicode simple case
/// folding (as `(?i)` applies it) makes equal to an ASCII letter: `ſ` (U+017F,
/// UTF-8 `C5 BF`, folds with `s`) or `K` (U+212A, `E2 84 AA`, folds with `k`).
/// No other character does (regex-syntax's `CASE_FOLDING_SIMPLE`, Unicode 16).
fn may_fold_into_ascii(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr2_iter(0xC5, 0xE2, b).any(|i| match b[i] {
        0xC5 => b.get(i + 1) == Some(&0xBF),
        _ => b.get(i + 1..i + 3) == Some(&[0x84, 0xAA][..]),
    })
}

/// Merges overlapping findings; the earlier kind wins for the merged range.
pub(crate) fn merge_findings(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by_key(|f| (f.range.start, std::cmp::Reverse(f.range.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        if let Some(last) = out.last_mut()
            && f.range.start < last.range.end
        {
            last.range.end = last.range.end.max(f.range.end);
            continue;
        }
        out.push(f);
    }
    out
}

/// Most passes [`settle_findings`] makes over a text with its findings masked.
const SETTLE_PASSES: usize = 8;

/// Adds to `findings` (of `text`) what `find` finds in the text once what they
/// cover is masked, pass after pass until a pass finds nothing more: a value
/// glued to a finding is no value in the text as it is (`fe80::` in
/// `fe80::root@example.org` is followed by a letter), but stands alone once the
/// finding is masked, and a second scrub would find it. `find` runs the rules in
/// force over the masked text, keeps what they act on, and stops at the limit
/// it is given (what is left of `limit`), returning `false` where it stopped;
/// that ends the passes. Returns whether every pass ran to its end.
pub(crate) fn settle_findings(
    text: &str,
    findings: &mut Vec<Finding>,
    limit: usize,
    mut find: impl FnMut(&str, &mut Vec<Finding>, usize) -> bool,
) -> bool {
    let mut masked = Vec::new();
    let mut from = 0;
    for _ in 0..SETTLE_PASSES {
        if from == findings.len() {
            break;
        }
        if masked.is_empty() {
            masked = text.as_bytes().to_vec();
        }
        for f in &findings[from..] {
            masked[f.range.clone()].fill(b'*');
        }
        from = findings.len();
        // Findings begin and end at character boundaries: still UTF-8.
        let Ok(view) = std::str::from_utf8(&masked) else {
            debug_assert!(false, "a finding splits a character");
            break;
        };
        let mut more = Vec::new();
        let complete = find(view, &mut more, limit.saturating_sub(findings.len()));
        // What lies wholly in masked text is masked already.
        more.retain(|f| masked[f.range.clone()].iter().any(|&b| b != b'*'));
        findings.extend(more);
        if !complete {
            return false;
        }
    }
    true
}

/// How text found in a buffer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf16Le,
}

/// How a found range is overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// NUL bytes: the text is gone.
    Zero,
    /// `*` characters: the string keeps its shape.
    Mask,
}

/// Overwrites the buffer bytes `r` (text found in `encoding`) with `fill`; true
/// when anything changed.
pub(crate) fn overwrite(buf: &mut [u8], r: Range<usize>, fill: Fill, encoding: Encoding) -> bool {
    let Some(bytes) = buf.get_mut(r) else {
        return false;
    };
    let before = bytes.to_vec();
    match (encoding, fill) {
        (_, Fill::Zero) => bytes.fill(0),
        (Encoding::Utf8, Fill::Mask) => bytes.fill(b'*'),
        (Encoding::Utf16Le, Fill::Mask) => {
            for pair in bytes.chunks_exact_mut(2) {
                pair[0] = b'*';
                pair[1] = 0;
            }
        }
    }
    before != *bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        find_values(text, &mut out);
        out.into_iter()
            .map(|f| (text[f.range].to_owned(), f.kind))
            .collect()
    }

    /// Asserts that each text holds exactly the value it names (of that kind), or
    /// nothing.
    fn assert_finds(cases: &[(&str, Option<(&str, Kind)>)]) {
        for (text, found) in cases {
            let expected: Vec<(String, Kind)> =
                found.iter().map(|(v, k)| ((*v).to_owned(), *k)).collect();
            assert_eq!(kinds(text), expected, "{text}");
        }
    }

    #[test]
    fn finds_user_names_in_home_paths() {
        let user = |name| Some((name, Kind::UserPath));
        assert_finds(&[
            ("/home/kevin/Downloads/x", user("kevin")),
            (r"C:\Users\John Smith\AppData", user("John Smith")),
            ("/usr/local/google/home/zequanwu/src", user("zequanwu")),
            ("/home/kevin --type=x", user("kevin")),
            (r"C:\Users\Public\Desktop", None),
            ("/usr/lib/libc.so.6", None),
        ]);
    }

    #[test]
    fn finds_addresses_and_secrets() {
        assert_finds(&[
            (
                "mail me: a.b@example.org",
                Some(("a.b@example.org", Kind::Email)),
            ),
            (
                "from 192.168.1.20 port 22",
                Some(("192.168.1.20", Kind::Ip)),
            ),
            ("version 1.2.3.4.5", None),
            (
                "fe80::1ff:fe23:4567:890a%eth0",
                Some(("fe80::1ff:fe23:4567:890a", Kind::Ip)),
            ),
            ("std::vector::push", None),
            ("/data/app/base.apk@classes.dex", None),
            ("/arm64/system@framework@boot.art", None),
            ("12:34:56", None),
            (
                "card 4111 1111 1111 1111",
                Some(("4111 1111 1111 1111", Kind::CreditCard)),
            ),
            ("card 4111 1111 1111 1112", None),
            (
                "Authorization: Bearer abc.def-ghi",
                Some(("abc.def-ghi", Kind::BearerToken)),
            ),
        ]);
        assert!(
            kinds("https://bob:hunter2@example.org/x")
                .contains(&("bob:hunter2".into(), Kind::UrlCredentials))
        );
    }

    #[test]
    fn the_prefilters_pass_every_text_their_pattern_matches() {
        // Random texts over the letters the patterns care about (and `ſ`, which
        // `(?i)` lets stand for `s`): whenever a pattern matches, its prefilter
        // lets the text through.
        let pieces: Vec<&str> =
            "/|\\|home|HoMe|hom|users|uſers|USERſ|user|usr|documents and settings|\
                                 Documents and ſettings|d|h|u|bob|:|::|.|0|19|a|fe|x| |ë|="
                .split('|')
                .collect();
        let mut next = crate::scrub::test_support::xorshift(0x2545_f491_4f6c_dd1d);
        let (mut homes, mut ipv6s) = (0, 0);
        for _ in 0..200_000 {
            let len = 1 + next() % 8;
            let text: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            if HOME.is_match(&text) {
                homes += 1;
                assert!(may_hold_home_root(&text), "{text}");
            }
            if IPV6_CANDIDATE.find_iter(&text).any(|m| {
                let s = m.as_str().trim_end_matches('.');
                s.len() >= 3 && s.bytes().any(|b| b.is_ascii_digit())
            }) {
                ipv6s += 1;
                assert!(may_hold_ipv6(&text), "{text}");
            }
        }
        assert!(homes > 10 && ipv6s > 100, "{homes} {ipv6s}");
        for text in [
            "/home/kevin",
            "\\HOME\\kevin",
            "x/Users/bob",
            "C:\\Documents and Settings\\Zoë",
            "/uſers/bob",
        ] {
            assert!(HOME.is_match(text) && may_hold_home_root(text), "{text}");
        }
        for text in ["/usr/lib/x", "/homes/x", "/home", "users/x"] {
            assert!(!may_hold_home_root(text), "{text}");
        }
        assert_eq!(user_names_in_paths("/uſers/bob/x", usize::MAX), vec![8..11]);
    }

    /// Every pattern's prefilter in [`Shape`] lets through every text the
    /// pattern finds something in: random texts over the characters the
    /// patterns care about give the same findings with every pattern run.
    #[test]
    fn one_pass_over_a_text_keeps_every_finding_of_the_patterns() {
        let pieces: Vec<&str> = "0|1|7|25|192|255|4111|4111111111111111|378282246310005|.|..|:|::|@|-|-----|-----BEGIN |\
             RSA PRIVATE KEY-----|bearer|BeArEr|earer|b| |\t|a|f|x|com|/|\\|home|users|\
             bob|://|http|=|ë|ſ"
            .split('|')
            .collect();
        let mut next = crate::scrub::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut found = [0usize; 9];
        for _ in 0..200_000 {
            let len = 1 + next() % 12;
            let text: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            for f in &assert_one_pass_keeps_every_finding(&text) {
                found[f.kind as usize] += 1;
            }
        }
        // Each pattern was put to the test.
        for kind in [
            Kind::Email,
            Kind::Ip,
            Kind::CreditCard,
            Kind::BearerToken,
            Kind::PemKey,
            Kind::UrlCredentials,
            Kind::UserPath,
        ] {
            assert!(found[kind as usize] > 20, "{kind:?}: {found:?}");
        }
    }

    #[test]
    fn env_assignments() {
        assert_eq!(env_assignment_start("HOME=/root"), Some(0));
        assert_eq!(env_assignment_start("\u{1}xUSER=bob"), Some(1));
        assert_eq!(env_assignment_start("=C:=C:\\x"), Some(0));
        assert_eq!(env_assignment_start("no assignment"), None);
        assert_eq!(env_assignment_start("42=x"), None);
        // The first `=` with a key, wherever it stands.
        assert_eq!(env_assignment_start("=01;35:*.mov=01"), Some(9));
        assert_eq!(env_assignment_start("1=2 TOKEN=abc"), Some(4));
        assert_eq!(env_assignment_start("a == b"), None);
    }

    #[test]
    fn known_values_are_bounded() {
        let known = KnownValues::new(["kevin", "ab"]);
        let mut out = Vec::new();
        known.find("KEVIN@host kevinx xkevin kevin", &mut out);
        let found: Vec<_> = out.iter().map(|f| f.range.clone()).collect();
        assert_eq!(found, vec![0..5, 25..30]);
    }

    /// The finder [`KnownValues`] replaced: `(?i)(?:v1|v2|…)` compiled for every
    /// value set, matches kept when bounded. [`KnownValues::find`] must find
    /// exactly what this finds.
    fn reference_known_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
        text: &str,
    ) -> Vec<Finding> {
        let vals = known_values(values);
        if vals.is_empty() {
            return Vec::new();
        }
        let min_len = vals.iter().map(|v| v.len()).min().unwrap_or(3);
        let Ok(re) = Regex::new(&known_values_pattern(&vals)) else {
            return Vec::new();
        };
        if text.len() < min_len {
            return Vec::new();
        }
        re.find_iter(text)
            .filter(|m| bounded(text, &m.range(), b""))
            .map(|m| Finding {
                range: m.range(),
                kind: Kind::KnownValue,
            })
            .collect()
    }

    fn new_find(known: &KnownValues, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        known.find(text, &mut out);
        out
    }

    #[test]
    fn known_values_fold_case_as_the_regex_did() {
        let cases: &[(&[&str], &str, &[&str])] = &[
            // `ſ` and `K` stand for `s` and `k` under `(?i)`.
            (
                &["sam", "kevin"],
                "ſAM x \u{212a}EVIN",
                &["ſAM", "\u{212a}EVIN"],
            ),
            // Values beyond ASCII fold by Unicode rules.
            (&["zoë"], "ZOË zoë zoËx", &["ZOË", "zoë"]),
            // Longest value first; a match glued to a letter is dropped and the
            // search goes on after it.
            (&["bob", "bobby"], "bobbyx bob bobby", &["bob", "bobby"]),
            (&["abc", "ABC", "bcd"], "abcd bcd", &["bcd"]),
            // Not overlapping: the search goes on after a match, not inside it.
            (&["ab-ab"], "ab-AB-ab.ab-ab", &["ab-AB", "ab-ab"]),
            (&["x.x.x", "x.xyz"], "x.x.xyz", &[]),
            (&["root", " ab ", "%USER%"], "root ab %user%", &[]),
        ];
        for (values, text, expected) in cases {
            let known = KnownValues::new(values.iter().copied());
            let found: Vec<&str> = new_find(&known, text)
                .into_iter()
                .map(|f| &text[f.range])
                .collect();
            assert_eq!(found, *expected, "{values:?} in {text:?}");
            assert_eq!(
                new_find(&known, text),
                reference_known_values(values.iter().copied(), text)
            );
        }
        assert!(may_fold_into_ascii("xſ") && may_fold_into_ascii("\u{212a}"));
        // Same first bytes, other characters: `Ş` (C5 9E), `€` (E2 82 AC), `℩` (E2 84 A9).
        assert!(!may_fold_into_ascii("Ş € ℩ Å s k"));
    }

    #[test]
    fn known_values_find_what_the_regex_found() {
        let mut next = crate::scrub::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut pick = |n: usize| (next() % n as u64) as usize;
        // Letters (few, so values overlap and recur), the two characters that
        // fold into ASCII, Latin-1 and Latin Extended-A letters, digits and
        // separators.
        let letters: Vec<char> = "abkseABKSEſ\u{212a}éÉëßÿāĀſŀx".chars().collect();
        let others: Vec<char> = "0123456789 /\\._-@:\u{0}".chars().collect();
        let vary = |c: char, r: usize| -> String {
            match (c, r % 6) {
                ('s' | 'S', 0) => "ſ".into(),
                ('k' | 'K', 0) => "\u{212a}".into(),
                (_, 1 | 2) => c.to_uppercase().collect(),
                (_, 3 | 4) => c.to_lowercase().collect(),
                _ => c.to_string(),
            }
        };
        let (mut found, mut unfolded, mut runs) = (0usize, 0usize, 0usize);
        for round in 0..2_000 {
            // A value set: random words, some prefixes of others, some equal to
            // others ignoring case, padded, generic, short; now and then with a
            // letter beyond ASCII.
            let ascii_only = round % 3 != 0;
            let mut values: Vec<String> = Vec::new();
            for _ in 0..1 + pick(6) {
                let v: String = match (pick(6), values.is_empty()) {
                    (0, false) => {
                        let v = &values[pick(values.len())];
                        let cut = v.char_indices().map(|(i, _)| i).nth(pick(4) + 1);
                        v[..cut.unwrap_or(v.len())].to_owned()
                    }
                    (1, false) => values[pick(values.len())]
                        .chars()
                        .map(|c| vary(c, pick(6)))
                        .collect(),
                    (2, _) => ["root", " ab ", "Guest", "$HOME"][pick(4)].to_owned(),
                    _ => (0..2 + pick(5))
                        .map(|_| {
                            let c = letters[pick(if ascii_only { 10 } else { letters.len() })];
                            if pick(8) == 0 { others[pick(10)] } else { c }
                        })
                        .collect(),
                };
                values.push(if pick(5) == 0 { format!(" {v}\t") } else { v });
            }
            let known = KnownValues::new(values.iter().map(String::as_str));
            for _ in 0..20 {
                // A text: pieces of the values (case varied, `ſ` and `K` for
                // `s` and `k` now and then), letters, digits and separators;
                // half of them ASCII but for the values' own letters.
                let wide = pick(2) == 0;
                let mut text = String::new();
                for _ in 0..pick(12) {
                    match pick(4) {
                        0 | 1 => {
                            let v = values[pick(values.len())].trim();
                            let folds = pick(3) == 0;
                            for c in v.chars() {
                                if folds {
                                    let r = if wide { pick(6) } else { 1 + pick(5) };
                                    text.push_str(&vary(c, r));
                                } else {
                                    text.push(c);
                                }
                            }
                        }
                        2 => text.push(letters[pick(if wide { letters.len() } else { 10 })]),
                        _ => text.push(others[pick(others.len())]),
                    }
                }
                let expected = reference_known_values(values.iter().map(String::as_str), &text);
                assert_eq!(new_find(&known, &text), expected, "{values:?} in {text:?}");
                found += expected.len();
                runs += 1;
                if known.ascii.is_some() && !may_fold_into_ascii(&text) {
                    unfolded += expected.len();
                }
            }
        }
        // Both paths found plenty.
        assert!(
            found > 8_000 && unfolded > 2_500 && found - unfolded > 2_500,
            "{found} {unfolded} of {runs}"
        );
    }

    /// Values alike but for their ends, and text repeating their start: the
    /// finder stops comparing at its budget and finds the text whole, then
    /// every later text whole too; ordinary values and text never reach it.
    #[test]
    fn values_alike_but_for_their_ends_cost_a_bounded_search_then_mask_whole_texts() {
        let values: Vec<String> = (0..=255u8)
            .map(|i| {
                let mut v: String = "abc".chars().cycle().take(4094).collect();
                v.push(char::from(b'D' + i % 16));
                v.push(char::from(b'D' + i / 16));
                v
            })
            .collect();
        let mut known = KnownValues::new(values.iter().map(String::as_str));
        // A smaller budget than a server's, the same way to it: 64 places.
        known.budget = 64 * 256 * (COMPARE_COST + 4096);
        let text: String = "abc".chars().cycle().take(300_000).collect();
        let mut out = vec![Finding {
            range: 0..3,
            kind: Kind::Email,
        }];
        known.find(&text, &mut out);
        let whole = |len: usize| Finding {
            range: 0..len,
            kind: Kind::KnownValue,
        };
        // What was found before stays; this finder's part is the whole text.
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].kind, out[1].range.clone()),
            (Kind::Email, whole(text.len()).range)
        );
        let compared = known.compared.load(Ordering::Relaxed);
        assert!(
            compared > known.budget && compared < 2 * known.budget,
            "{compared}"
        );
        // From then on every text is found whole, with a value in it or not.
        let mut later = Vec::new();
        known.find(&"x".repeat(5000), &mut later);
        assert_eq!(
            later
                .iter()
                .map(|f| (f.range.clone(), f.kind))
                .collect::<Vec<_>>(),
            [(0..5000, Kind::KnownValue)]
        );

        let ordinary = KnownValues::new(["kevin", "kevin-laptop"]);
        let text = "kevin@kevin-laptop:/home/kevin ".repeat(10_000);
        let mut out = Vec::new();
        ordinary.find(&text, &mut out);
        assert_eq!(out.len(), 30_000);
        // Each place compared with the two values at most.
        assert!(ordinary.compared.load(Ordering::Relaxed) <= 30_000 * (2 * COMPARE_COST + 17));
    }

    /// Values that would not compile into one regex leave the texts that need it
    /// (here: one holding `ſ`) found whole, not unsearched.
    #[test]
    fn texts_the_values_regex_cannot_search_are_found_whole() {
        let known = KnownValues::new(["kevin", "jörg"]);
        known.regex.set(None).unwrap();
        let text = "for ſome jörg and kevin";
        let mut out = Vec::new();
        assert!(known.find_up_to(text, &mut out, usize::MAX));
        assert_eq!(
            out.iter()
                .map(|f| (f.range.clone(), f.kind))
                .collect::<Vec<_>>(),
            [(0..text.len(), Kind::KnownValue)]
        );
        // Compiled, the same text gives the values themselves.
        let known = KnownValues::new(["kevin", "jörg"]);
        let mut out = Vec::new();
        known.find(text, &mut out);
        assert_eq!(out.len(), 2);
    }
}

//! Report ids: `bp-<uuid>`, as Socorro and Breakpad clients know them.

use std::fmt;
use std::str::FromStr;

use mayday_report::upload::CRASH_ID_PREFIX;
use uuid::Uuid;

/// A report id. Only ever built from a fresh UUID or by parsing, so it is always safe
/// to use in a storage key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(Uuid);

/// A string that is not a report id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a report id: {0:?}")]
pub struct BadReportId(String);

impl ReportId {
    /// A fresh random id.
    pub fn new() -> ReportId {
        ReportId(Uuid::new_v4())
    }
}

impl Default for ReportId {
    fn default() -> Self {
        ReportId::new()
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CRASH_ID_PREFIX}{}", self.0.hyphenated())
    }
}

/// Serialized as its text, `bp-<uuid>`.
impl serde::Serialize for ReportId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for ReportId {
    type Err = BadReportId;

    /// Accepts `bp-<uuid>` and, as Socorro does, the bare uuid.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix(CRASH_ID_PREFIX).unwrap_or(s);
        if bare.len() != 36 {
            return Err(BadReportId(s.to_owned()));
        }
        Uuid::parse_str(bare)
            .map(ReportId)
            .map_err(|_| BadReportId(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let id = ReportId::new();
        let text = id.to_string();
        assert!(text.starts_with("bp-"));
        assert_eq!(text.parse::<ReportId>(), Ok(id));
        assert!("bp-../../etc/passwd".parse::<ReportId>().is_err());
        assert!("".parse::<ReportId>().is_err());
    }
}

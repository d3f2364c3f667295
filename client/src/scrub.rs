//! Client-side scrubbing and inspection of a dump: the one place the client calls
//! into `mayday_report::scrub`, the code the server runs too.

use std::collections::BTreeMap;

use mayday_report::scrub::{self, AnnotationRules, ScrubConfig};

use crate::error::{Error, Result};

/// What the user is shown about a dump (see [`crate::ReportSummary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DumpFacts {
    pub(crate) crash_reason: Option<String>,
    pub(crate) crashing_module: Option<String>,
    pub(crate) os: Option<String>,
    pub(crate) threads: usize,
    pub(crate) modules: usize,
    pub(crate) stack_bytes: u64,
    pub(crate) has_environment: bool,
    pub(crate) has_command_line: bool,
    pub(crate) has_heap: bool,
}

/// Who the local user is, as far as scrubbing needs to know: values to mask
/// wherever they occur (home directory, user name, host name, real name). Read
/// from the process that scrubs (the monitor has the crashed application's
/// environment). Never stored or sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LocalUser {
    pub(crate) home: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) real_name: Option<String>,
}

impl LocalUser {
    pub(crate) fn from_env() -> Self {
        let home = std::env::var("HOME")
            .ok()
            .map(|h| h.trim_end_matches('/').to_owned())
            .filter(|h| h.len() > 1);
        let name = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .or_else(|| {
                home.as_deref()
                    .and_then(|h| h.rsplit('/').next())
                    .map(str::to_owned)
            });
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h != "localhost");
        let real_name = name.as_deref().and_then(real_name_of);
        LocalUser {
            home,
            name,
            host,
            real_name,
        }
    }

    /// The values to mask, longest first, short ones left out (a two-letter
    /// name would match everywhere; the shared scrubber's path rules still
    /// mask it in `/home/<name>/`).
    fn known_values(&self) -> Vec<String> {
        let mut values: Vec<String> = [&self.home, &self.name, &self.host, &self.real_name]
            .into_iter()
            .flatten()
            .filter(|v| v.len() >= 3)
            .cloned()
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        values
    }
}

/// The GECOS real name of `user` from `/etc/passwd`, if any.
fn real_name_of(user: &str) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then_some(())?;
        let gecos = fields.nth(3)?.split(',').next()?.trim();
        (!gecos.is_empty() && gecos != user).then(|| gecos.to_owned())
    })
}

/// The shared scrubber's configuration on the client: everything on, plus the
/// local values to mask.
fn config(user: &LocalUser) -> ScrubConfig {
    ScrubConfig {
        known_values: user.known_values(),
        ..ScrubConfig::default()
    }
}

/// Scrubs a dump in place before it is shown or sent, with the server's code.
pub(crate) fn scrub_dump(dump: &mut [u8], user: &LocalUser) -> Result<()> {
    scrub::scrub_minidump(dump, &config(user))
        .map(|summary| tracing::debug!(removed = ?summary.removed, "dump scrubbed"))
        .map_err(|e| Error::Scrub(e.to_string()))
}

/// Scrubs a text (an annotation value, a comment): the shared rules for paths,
/// addresses and secrets, then the local values.
pub(crate) fn scrub_text(value: &str, user: &LocalUser) -> String {
    let mut out = scrub::scrub_text(value, &AnnotationRules::default()).into_owned();
    if let Some(home) = &user.home {
        out = out.replace(home.as_str(), "~");
    }
    for v in user.known_values() {
        out = out.replace(v.as_str(), &"*".repeat(v.chars().count()));
    }
    out
}

/// Annotations scrubbed with the shared rules (identity fields dropped, secrets
/// masked), then each value as in [`scrub_text`].
pub(crate) fn scrub_annotations(
    annotations: &BTreeMap<String, String>,
    user: &LocalUser,
) -> BTreeMap<String, String> {
    let mut out = annotations.clone();
    let mut summary = scrub::ScrubSummary::default();
    scrub::scrub_annotations(&mut out, &AnnotationRules::default(), &mut summary);
    out.into_iter()
        .map(|(k, v)| {
            let v = scrub_text(&v, user);
            (k, v)
        })
        .collect()
}

/// What the dump holds, for the consent summary.
pub(crate) fn inspect(dump: &[u8]) -> Result<DumpFacts> {
    let inv = scrub::inventory(dump).map_err(|e| Error::Scrub(e.to_string()))?;
    Ok(DumpFacts {
        crash_reason: inv.crash_reason,
        crashing_module: inv.crashing_module,
        os: Some(format!("{} {}", inv.os, inv.os_version).trim().to_owned()),
        threads: inv.thread_count,
        modules: inv.module_count,
        stack_bytes: inv.stack_memory_bytes,
        has_environment: inv.environment,
        has_command_line: inv.command_line,
        has_heap: inv.heap_memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zebulon() -> LocalUser {
        LocalUser {
            home: Some("/home/zebulon".into()),
            name: Some("zebulon".into()),
            host: Some("zeb-laptop".into()),
            real_name: None,
        }
    }

    #[test]
    fn texts_lose_the_local_user() {
        let s = scrub_text(
            "cannot open /home/zebulon/a.txt on zeb-laptop, /srv/zebulon/b",
            &zebulon(),
        );
        assert!(!s.contains("zebulon"), "{s}");
        assert!(!s.contains("zeb-laptop"), "{s}");
        assert!(s.contains("a.txt"), "{s}");
    }

    #[test]
    fn annotations_are_scrubbed_with_the_shared_rules() {
        let a = BTreeMap::from([
            ("Email".to_owned(), "zebulon@example.org".to_owned()),
            (
                "PanicMessage".to_owned(),
                "at /home/zebulon/src/main.rs:3".to_owned(),
            ),
        ]);
        let out = scrub_annotations(&a, &zebulon());
        assert!(!out.contains_key("Email"));
        assert!(!out["PanicMessage"].contains("zebulon"), "{out:?}");
    }

    #[test]
    fn short_values_are_not_masked_everywhere() {
        let user = LocalUser {
            name: Some("al".into()),
            ..zebulon()
        };
        assert!(!user.known_values().contains(&"al".to_owned()));
    }
}

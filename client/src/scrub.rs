//! Client-side scrubbing and inspection of a dump: the one place the client calls
//! into `mayday_report::scrub`, the code the server runs too.

use std::collections::BTreeMap;

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

/// Who the local user is, as far as scrubbing needs to know: the home directory and
/// user name to replace. Read from the environment of the process that scrubs (the
/// monitor has the crashed application's environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LocalUser {
    pub(crate) home: Option<String>,
    pub(crate) name: Option<String>,
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
        LocalUser { home, name }
    }
}

/// Scrubs a dump in place before it is shown or sent.
pub(crate) fn scrub_dump(dump: &mut [u8], user: &LocalUser) -> Result<()> {
    interim::blank_system_streams(dump)?;
    replace_user_bytes(dump, user);
    Ok(())
}

/// Replaces the home directory and the user name (in path positions) with filler of
/// the same length, everywhere in the dump: in module paths, but also in stack
/// memory, where the environment often survives. Same length keeps every offset.
pub(crate) fn replace_user_bytes(dump: &mut [u8], user: &LocalUser) {
    if let Some(home) = &user.home {
        replace_all(dump, home.as_bytes(), |_| true);
    }
    if let Some(name) = user.name.as_deref().filter(|n| n.len() >= 3) {
        // A short or common name could be part of anything; in a path it is itself.
        let n = name.len();
        let snapshot = dump.to_vec();
        replace_all(dump, name.as_bytes(), |at| {
            let before = at.checked_sub(1).map(|i| snapshot[i]);
            let after = snapshot.get(at + n).copied();
            matches!(before, Some(b'/') | Some(b'\\') | Some(b'='))
                && matches!(
                    after,
                    None | Some(b'/') | Some(b'\\') | Some(0) | Some(b'\n')
                )
        });
    }
}

fn replace_all(hay: &mut [u8], needle: &[u8], accept: impl Fn(usize) -> bool) {
    if needle.is_empty() || hay.len() < needle.len() {
        return;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle && accept(i) {
            for b in &mut hay[i..i + needle.len()] {
                *b = b'x';
            }
            i += needle.len();
        } else {
            i += 1;
        }
    }
}

/// Replaces the home directory and user name in an annotation value (a panic
/// message often holds a path).
pub(crate) fn scrub_text(value: &str, user: &LocalUser) -> String {
    let mut out = value.to_owned();
    if let Some(home) = &user.home {
        out = out.replace(home.as_str(), "~");
    }
    if let Some(name) = user.name.as_deref().filter(|n| n.len() >= 3) {
        for sep in ['/', '\\'] {
            out = out.replace(&format!("{sep}{name}{sep}"), &format!("{sep}<user>{sep}"));
        }
    }
    out
}

/// What the dump holds, for the consent summary.
pub(crate) fn inspect(dump: &[u8]) -> Result<DumpFacts> {
    interim::inspect(dump)
}

/// Annotations scrubbed like the dump's paths.
pub(crate) fn scrub_annotations(
    annotations: &BTreeMap<String, String>,
    user: &LocalUser,
) -> BTreeMap<String, String> {
    annotations
        .iter()
        .map(|(k, v)| (k.clone(), scrub_text(v, user)))
        .collect()
}

/// Stand-ins until `mayday_report::scrub` lands; replaced by one edit each.
mod interim {
    use super::*;
    use minidump::format::MINIDUMP_STREAM_TYPE as S;
    use minidump::{
        Minidump, MinidumpException, MinidumpMemoryList, MinidumpModuleList, MinidumpSystemInfo,
        MinidumpThreadList, Module,
    };

    const BLANKED: [S; 5] = [
        S::LinuxEnviron,
        S::LinuxCmdLine,
        S::LinuxProcStatus,
        S::LinuxCpuInfo,
        S::LinuxAuxv,
    ];

    pub(super) fn blank_system_streams(dump: &mut [u8]) -> Result<()> {
        let ranges: Vec<(usize, usize)> = {
            let md = Minidump::read(&*dump).map_err(|e| Error::Scrub(e.to_string()))?;
            let base = dump.as_ptr() as usize;
            BLANKED
                .iter()
                .filter_map(|s| md.get_raw_stream(*s as u32).ok())
                .map(|raw| (raw.as_ptr() as usize - base, raw.len()))
                .collect()
        };
        for (start, len) in ranges {
            dump[start..start + len].fill(0);
        }
        Ok(())
    }

    fn stream_present(md: &Minidump<'_, &[u8]>, s: S) -> bool {
        md.get_raw_stream(s as u32)
            .map(|raw| raw.iter().any(|b| *b != 0))
            .unwrap_or(false)
    }

    pub(super) fn inspect(dump: &[u8]) -> Result<DumpFacts> {
        let md = Minidump::read(dump).map_err(|e| Error::Scrub(e.to_string()))?;
        let mut facts = DumpFacts::default();
        let system = md.get_stream::<MinidumpSystemInfo>().ok();
        let modules = md.get_stream::<MinidumpModuleList>().ok();
        if let Ok(threads) = md.get_stream::<MinidumpThreadList<'_>>() {
            facts.threads = threads.threads.len();
            facts.stack_bytes = threads
                .threads
                .iter()
                .map(|t| t.raw.stack.memory.data_size as u64)
                .sum();
        }
        facts.modules = modules.as_ref().map(|m| m.iter().count()).unwrap_or(0);
        if let Some(system) = &system {
            let (version, _build) = system.os_parts();
            facts.os = Some(
                format!("{} {version}", system.os.long_name())
                    .trim()
                    .to_owned(),
            );
        }
        if let (Ok(exc), Some(system)) = (md.get_stream::<MinidumpException<'_>>(), &system) {
            facts.crash_reason = Some(exc.get_crash_reason(system.os, system.cpu).to_string());
            let ip = exc
                .context(system, None)
                .map(|c| c.get_instruction_pointer());
            facts.crashing_module = ip
                .and_then(|ip| modules.as_ref()?.module_at_address(ip))
                .map(|m| {
                    let name = m.code_file();
                    name.rsplit(['/', '\\']).next().unwrap_or(&name).to_owned()
                });
        }
        facts.has_environment = stream_present(&md, S::LinuxEnviron);
        facts.has_command_line = stream_present(&md, S::LinuxCmdLine);
        if let Ok(memory) = md.get_stream::<MinidumpMemoryList<'_>>() {
            let total: u64 = memory.iter().map(|m| m.size).sum();
            facts.has_heap = total > facts.stack_bytes + 64 * 1024;
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_bytes_are_replaced_in_paths_only() {
        let user = LocalUser {
            home: Some("/home/zebulon".into()),
            name: Some("zebulon".into()),
        };
        let mut bytes =
            b"x/home/zebulon/lib.so\0/data/zebulon/a zebulonic HOME=/home/zebulon\0".to_vec();
        replace_user_bytes(&mut bytes, &user);
        let s = String::from_utf8(bytes).unwrap();
        assert_eq!(
            s,
            "xxxxxxxxxxxxxx/lib.so\0/data/xxxxxxx/a zebulonic HOME=xxxxxxxxxxxxx\0"
        );
    }

    #[test]
    fn annotation_paths_lose_the_user() {
        let user = LocalUser {
            home: Some("/home/zebulon".into()),
            name: Some("zebulon".into()),
        };
        assert_eq!(
            scrub_text("cannot open /home/zebulon/a.txt or /srv/zebulon/b", &user),
            "cannot open ~/a.txt or /srv/<user>/b"
        );
    }
}

//! What a dump holds, for the client's consent prompt.

use minidump::{
    Minidump, MinidumpException, MinidumpModuleList, MinidumpSystemInfo, MinidumpThreadList, Module,
};
use minidump_common::format::MINIDUMP_STREAM_TYPE as St;
use serde::{Deserialize, Serialize};

use super::error::ScrubError;
use super::minidump::{Layout, RegionKind};
use super::runs::for_each_run;
use super::text::env_assignment_start;

/// What a minidump holds: shown to the person deciding whether to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpInventory {
    /// Size of the dump in bytes.
    pub size_bytes: u64,
    /// OS family (`Linux`, `Windows NT`, `Mac OS X`, `Android` …).
    pub os: String,
    /// OS version and build as the dump records them (`10.0.19041`, `5.9.15 …`).
    pub os_version: String,
    /// CPU architecture (`amd64`, `arm64`, `x86` …).
    pub cpu: String,
    /// Number of threads.
    pub thread_count: usize,
    /// Number of loaded modules.
    pub module_count: usize,
    /// Bytes of captured stack memory (non-zero stacks only).
    pub stack_memory_bytes: u64,
    /// Bytes of captured memory that is neither stack nor module image (heap),
    /// non-zero regions only.
    pub heap_memory_bytes: u64,
    /// Whether environment variables remain: a non-empty Linux environment
    /// stream, or `KEY=value` strings in captured memory.
    pub environment: bool,
    /// Whether a non-empty Linux command line stream remains.
    pub command_line: bool,
    /// Whether non-zero heap memory remains.
    pub heap_memory: bool,
    /// Why it crashed (`SIGSEGV / SEGV_MAPERR`, `EXCEPTION_ACCESS_VIOLATION_WRITE` …).
    pub crash_reason: Option<String>,
    /// The crashing address.
    pub crash_address: Option<u64>,
    /// File name (no directory) of the module the crashing instruction is in.
    pub crashing_module: Option<String>,
}

fn nonzero(buf: &[u8], r: std::ops::Range<usize>) -> bool {
    buf.get(r).is_some_and(|b| b.iter().any(|&x| x != 0))
}

/// The last path component, for `/` and `\` separated paths.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Describes what `dump` holds (see [`DumpInventory`]).
///
/// # Errors
/// [`ScrubError::Unreadable`] when `dump` is not a readable minidump,
/// [`ScrubError::NoSystemInfo`] when it has no system info stream.
pub fn inventory(dump: &[u8]) -> Result<DumpInventory, ScrubError> {
    let layout = Layout::read(dump)?;
    let md = Minidump::read(dump)?;
    let system = md
        .get_stream::<MinidumpSystemInfo>()
        .map_err(|_| ScrubError::NoSystemInfo)?;
    let (version, build) = system.os_parts();
    let os_version = match build {
        Some(b) if !b.is_empty() => format!("{version} {b}"),
        _ => version,
    };
    let thread_count = md
        .get_stream::<MinidumpThreadList<'_>>()
        .map(|t| t.threads.len())
        .unwrap_or(0);
    let modules = md.get_stream::<MinidumpModuleList>().ok();
    let module_count = modules.as_ref().map(|m| m.iter().count()).unwrap_or(0);

    let mut stack_memory_bytes = 0u64;
    for r in layout.ranges_of(RegionKind::Stack) {
        if nonzero(dump, r.clone()) {
            stack_memory_bytes += r.len() as u64;
        }
    }
    let mut heap_memory_bytes = 0u64;
    let mut heap_memory = false;
    for r in layout.ranges_of(RegionKind::Heap) {
        if nonzero(dump, r.clone()) {
            heap_memory_bytes += r.len() as u64;
            heap_memory = true;
        }
    }
    let stream_nonzero = |ty: St| {
        layout
            .streams
            .iter()
            .any(|s| s.ty == ty as u32 && nonzero(dump, s.data.clone()))
    };
    let mut environment = stream_nonzero(St::LinuxEnviron);
    if !environment {
        for r in layout
            .ranges_of(RegionKind::Stack)
            .into_iter()
            .chain(layout.ranges_of(RegionKind::Heap))
        {
            if let Some(bytes) = dump.get(r) {
                for_each_run(bytes, |run| {
                    let t = run.text;
                    // A NAME=value with a conventional upper-case name.
                    if let Some(start) = env_assignment_start(t) {
                        let key = t[start..].split('=').next().unwrap_or("");
                        if key.len() >= 3
                            && key
                                .bytes()
                                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                        {
                            environment = true;
                        }
                    }
                });
            }
            if environment {
                break;
            }
        }
    }
    let command_line = stream_nonzero(St::LinuxCmdLine);

    let (mut crash_reason, mut crash_address, mut crashing_module) = (None, None, None);
    if let Ok(exc) = md.get_stream::<MinidumpException<'_>>() {
        crash_reason = Some(exc.get_crash_reason(system.os, system.cpu).to_string());
        let misc = md.get_stream::<minidump::MinidumpMiscInfo>().ok();
        let address = exc.get_crash_address(system.os, system.cpu);
        crash_address = Some(address);
        let ip = exc
            .context(&system, misc.as_ref())
            .map(|c| c.get_instruction_pointer())
            .unwrap_or(address);
        crashing_module = modules
            .as_ref()
            .and_then(|m| m.module_at_address(ip))
            .map(|m| file_name(&m.code_file()).to_owned());
    }

    Ok(DumpInventory {
        size_bytes: dump.len() as u64,
        os: system.os.long_name().into_owned(),
        os_version,
        cpu: system.cpu.to_string(),
        thread_count,
        module_count,
        stack_memory_bytes,
        heap_memory_bytes,
        environment,
        command_line,
        heap_memory,
        crash_reason,
        crash_address,
        crashing_module,
    })
}

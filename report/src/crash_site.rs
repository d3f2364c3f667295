//! The crash-site key: where a crash happened, read from the minidump alone
//! (no symbols), so that a client and the server compute the same key for the
//! same crash — the client before it sends anything, the server from the dumps
//! it processes. It holds nothing about a person or a machine: the crash reason,
//! the crashing module's debug file and debug id (a build's identity) and the
//! crashing instruction's offset in that module (an address in the build, the
//! same wherever it was loaded).
//!
//! The key is versioned (`v1:`); a later way to compute it gets a new version,
//! and the two never compare equal.

use minidump::{Minidump, MinidumpException, MinidumpModuleList, MinidumpSystemInfo, Module};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How the key is computed now.
pub const CRASH_SITE_VERSION: u32 = 1;

/// Why a dump has no crash site.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrashSiteError {
    /// The bytes are not a minidump that can be read.
    #[error("not a readable minidump")]
    NotAMinidump,
    /// The dump records no exception (a dump taken without a crash).
    #[error("the dump records no crash")]
    NoCrash,
}

/// Where a crash happened, as a dump tells it without symbols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashSite {
    /// The crash reason, e.g. `SIGSEGV / SEGV_MAPERR`.
    pub reason: String,
    /// The crashing module's debug file name (no directory), when the
    /// instruction is in a module.
    pub debug_file: Option<String>,
    /// The crashing module's debug id.
    pub debug_id: Option<String>,
    /// The crashing instruction's offset in the module.
    pub offset: Option<u64>,
}

impl CrashSite {
    /// Reads the crash site of `dump`.
    pub fn of_minidump(dump: &[u8]) -> Result<CrashSite, CrashSiteError> {
        let md = Minidump::read(dump).map_err(|_| CrashSiteError::NotAMinidump)?;
        let exception = md
            .get_stream::<MinidumpException<'_>>()
            .map_err(|_| CrashSiteError::NoCrash)?;
        let system = md
            .get_stream::<MinidumpSystemInfo>()
            .map_err(|_| CrashSiteError::NotAMinidump)?;
        let reason = exception
            .get_crash_reason(system.os, system.cpu)
            .to_string();
        let misc = md.get_stream::<minidump::MinidumpMiscInfo>().ok();
        let address = exception.get_crash_address(system.os, system.cpu);
        let ip = exception
            .context(&system, misc.as_ref())
            .map(|c| c.get_instruction_pointer())
            .unwrap_or(address);
        let modules = md.get_stream::<MinidumpModuleList>().ok();
        let module = modules.as_ref().and_then(|m| m.module_at_address(ip));
        Ok(CrashSite {
            reason,
            // The file name only: a path may name a person (`/home/alice/…`),
            // and the scrubber masks it.
            debug_file: module
                .and_then(|m| m.debug_file())
                .map(|f| file_name(&f).to_owned()),
            debug_id: module
                .and_then(|m| m.debug_identifier())
                .map(|id| id.breakpad().to_string()),
            offset: module.map(|m| ip - m.base_address()),
        })
    }

    /// The key: `v1:` and the hex SHA-256 of the site's fields.
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        for field in [
            self.reason.as_str(),
            self.debug_file.as_deref().unwrap_or(""),
            self.debug_id.as_deref().unwrap_or(""),
            &self.offset.map(|o| format!("{o:x}")).unwrap_or_default(),
        ] {
            hash.update(field.as_bytes());
            hash.update([0]);
        }
        format!("v{CRASH_SITE_VERSION}:{}", hex::encode(hash.finalize()))
    }
}

/// The last component of a Unix or Windows path.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

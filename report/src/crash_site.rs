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
//!
//! It travels in a [`CrashSiteSummary`], which a client sends to
//! [`CRASH_SITES_PATH`] before its dump; the server's [`CrashSiteAnswer`] says
//! whether it wants the dump (`send`) or only counted the crash (`counted`,
//! `fixed`).

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
        let modules = md.get_stream::<MinidumpModuleList>().ok();
        CrashSite::of_parsed(&md, modules.as_ref())
    }

    /// [`CrashSite::of_minidump`] of a dump already read, given its module list
    /// as read before (minidump-processor's, say), so that a large list is not
    /// parsed again; `None` when the dump has none.
    pub fn of_parsed<'a, T>(
        md: &Minidump<'a, T>,
        modules: Option<&MinidumpModuleList>,
    ) -> Result<CrashSite, CrashSiteError>
    where
        T: std::ops::Deref<Target = [u8]> + 'a,
    {
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
        let module = modules.and_then(|m| m.module_at_address(ip));
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

/// Where a client sends its summary, from the server's root (next to the
/// upload endpoint `/api/v1/submit`).
pub const CRASH_SITES_PATH: &str = "/api/v1/crash-sites";

/// The longest product, version or OS name a summary may carry.
pub const MAX_SUMMARY_FIELD: usize = 128;

/// What a client sends before its dump: enough to count the crash, nothing
/// about the person or the machine — no annotation, no module path, no
/// address beyond the crash site's key, no identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSiteSummary {
    /// The product, as the upload would name it.
    pub product: String,
    /// The product's version, as the upload would name it.
    pub version: Option<String>,
    /// The OS family the dump records (`Linux`, `Windows NT`, `Mac OS X`, …).
    pub os: Option<String>,
    /// The crash-site key ([`CrashSite::key`]).
    pub crash_site: String,
}

/// Why a summary is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SummaryError {
    /// The key is not `v<version>:` and 64 hex digits.
    #[error("crash_site is not a crash-site key")]
    Key,
    /// A name is empty, too long or holds control characters.
    #[error("{0} is empty, longer than 128 bytes or holds control characters")]
    Field(&'static str),
}

impl CrashSiteSummary {
    /// The summary of `dump` for this product and version.
    pub fn of_minidump(
        dump: &[u8],
        product: &str,
        version: Option<&str>,
    ) -> Result<CrashSiteSummary, CrashSiteError> {
        let site = CrashSite::of_minidump(dump)?;
        let md = Minidump::read(dump).map_err(|_| CrashSiteError::NotAMinidump)?;
        let os = md
            .get_stream::<MinidumpSystemInfo>()
            .ok()
            .map(|s| s.os.long_name().into_owned());
        Ok(CrashSiteSummary {
            product: product.to_owned(),
            version: version.map(str::to_owned),
            os,
            crash_site: site.key(),
        })
    }

    /// Checks the shape of every field (a server takes nothing else).
    pub fn validate(&self) -> Result<(), SummaryError> {
        let key_ok = self.crash_site.split_once(':').is_some_and(|(v, hash)| {
            v.strip_prefix('v').is_some_and(|n| {
                !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit())
            }) && hash.len() == 64
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !key_ok {
            return Err(SummaryError::Key);
        }
        let fine = |s: &str| {
            !s.is_empty() && s.len() <= MAX_SUMMARY_FIELD && !s.chars().any(char::is_control)
        };
        if !fine(&self.product) {
            return Err(SummaryError::Field("product"));
        }
        if self.version.as_deref().is_some_and(|v| !fine(v)) {
            return Err(SummaryError::Field("version"));
        }
        if self.os.as_deref().is_some_and(|v| !fine(v)) {
            return Err(SummaryError::Field("os"));
        }
        Ok(())
    }
}

/// The server's answer to a [`CrashSiteSummary`] (JSON, tagged by `decision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CrashSiteAnswer {
    /// The dump is wanted: the crash site is new, its issue has fewer stored
    /// reports than the deployment wants, or it is regressed (or would regress).
    Send,
    /// The crash was counted; the dump is not wanted.
    Counted {
        /// The status (`open`, `regressed`, `resolved`).
        status: String,
    },
    /// The crash was counted, and it is fixed in a newer version than the
    /// reporter's: the app may tell its user to update.
    Fixed {
        /// The version that fixes it.
        fixed_in: String,
    },
}

/// The last component of a Unix or Windows path.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

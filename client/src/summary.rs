//! What the user is shown before a report is sent.

use std::collections::BTreeMap;
use std::fmt;

use mayday_report::crash_site::CrashSiteSummary;

/// Everything a report contains, as it would leave the machine (after client-side
/// scrubbing): shown by the [`crate::ConsentPrompt`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportSummary {
    /// The local id of the pending report.
    pub id: String,
    /// Product name.
    pub product: String,
    /// Product version.
    pub version: String,
    /// When the crash happened (RFC 3339, UTC).
    pub crashed_at: String,
    /// Why it crashed, e.g. `SIGSEGV / SEGV_MAPERR` or `Rust panic`.
    pub crash_reason: Option<String>,
    /// The module (file name) of the crashing instruction.
    pub crashing_module: Option<String>,
    /// OS family and version, e.g. `Linux 6.8.0`.
    pub os: Option<String>,
    /// Number of threads whose registers and stacks the dump holds.
    pub threads: usize,
    /// Number of loaded modules listed (names, versions, build ids).
    pub modules: usize,
    /// Bytes of captured stack memory.
    pub stack_bytes: u64,
    /// Whether the process environment is still in the dump.
    pub has_environment: bool,
    /// Whether the command line is still in the dump.
    pub has_command_line: bool,
    /// Whether memory other than thread stacks is in the dump.
    pub has_heap: bool,
    /// Whether the dump was scrubbed on this machine.
    pub client_scrubbed: bool,
    /// Size of the dump that would be sent, in bytes (before gzip).
    pub size_bytes: u64,
    /// Every annotation, exactly as it would be sent.
    pub annotations: BTreeMap<String, String>,
    /// Where the report would be sent (the server's base URL).
    pub endpoint: Option<String>,
    /// What is sent first, alone: the crash-site summary (product, version, OS
    /// family and the crash-site key — no annotation, no memory, no module list).
    /// The dump follows only if the server asks for it; a server that already
    /// has enough reports of this crash only counts it.
    pub summary_first: Option<CrashSiteSummary>,
}

impl ReportSummary {
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        ReportSummary {
            id: "r1".into(),
            product: "crashy".into(),
            version: "1.0".into(),
            crashed_at: "2026-11-21T00:00:00Z".into(),
            crash_reason: Some("SIGSEGV / SEGV_MAPERR".into()),
            crashing_module: Some("crashy".into()),
            os: Some("Linux 6.8.0".into()),
            threads: 2,
            modules: 10,
            stack_bytes: 40960,
            has_environment: false,
            has_command_line: false,
            has_heap: false,
            client_scrubbed: true,
            size_bytes: 123456,
            annotations: BTreeMap::from([("ProductName".into(), "crashy".into())]),
            endpoint: Some("http://127.0.0.1:1".into()),
            summary_first: None,
        }
    }
}

fn yes_no(present: bool) -> &'static str {
    if present { "included" } else { "not included" }
}

impl fmt::Display for ReportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {} crashed at {}.",
            self.product, self.version, self.crashed_at
        )?;
        writeln!(
            f,
            "  reason:          {}",
            self.crash_reason.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "  in module:       {}",
            self.crashing_module.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "  system:          {}",
            self.os.as_deref().unwrap_or("unknown")
        )?;
        writeln!(
            f,
            "The report ({} bytes{}) contains:",
            self.size_bytes,
            if self.client_scrubbed {
                ", scrubbed on this machine"
            } else {
                ", NOT scrubbed on this machine"
            }
        )?;
        writeln!(
            f,
            "  {} threads with their registers and {} bytes of stack memory",
            self.threads, self.stack_bytes
        )?;
        writeln!(
            f,
            "  {} loaded modules (names, versions, build ids)",
            self.modules
        )?;
        writeln!(
            f,
            "  environment variables: {}",
            yes_no(self.has_environment)
        )?;
        writeln!(
            f,
            "  command line:          {}",
            yes_no(self.has_command_line)
        )?;
        writeln!(f, "  heap memory:           {}", yes_no(self.has_heap))?;
        writeln!(f, "  annotations:")?;
        for (k, v) in &self.annotations {
            writeln!(f, "    {k} = {v}")?;
        }
        write!(
            f,
            "It would be sent to {}. No user name, host name or machine id is sent.",
            self.endpoint.as_deref().unwrap_or("(no server configured)")
        )?;
        if let Some(first) = &self.summary_first {
            write!(
                f,
                "\nFirst only a summary is sent: {} {}, {}, crash site {}. The report \
                 above follows only if the developers ask for it; if they already have \
                 enough reports of this crash, it is only counted and deleted here.",
                first.product,
                first.version.as_deref().unwrap_or("(no version)"),
                first.os.as_deref().unwrap_or("unknown system"),
                first.crash_site
            )?;
        }
        Ok(())
    }
}

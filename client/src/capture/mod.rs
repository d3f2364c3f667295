//! Crash capture: the crash handler in the application and the monitor process
//! that writes the minidump.
//!
//! The monitor is the application itself, started again by [`install`] with the
//! same arguments and [`MONITOR_ENV`] set; in that process `install` runs the
//! monitor loop and exits instead of returning. An application therefore ships no
//! second binary, but must call `install()` before it has side effects.
//!
//! At crash time the crashed process does as little as possible: the signal handler
//! asks the monitor for a dump over a socket and waits for the answer. The monitor
//! writes the dump from outside (so a corrupted heap cannot stop it), scrubs it,
//! and commits it to the pending queue. Consent and upload happen later, in a
//! healthy process. The OS module is chosen once here; each exports the same names.

use crate::client::Client;
use crate::config::Config;
use crate::error::Result;

mod protocol;

pub use protocol::MONITOR_ENV;
use protocol::{MSG_ANNOTATION, MSG_REMOVE_ANNOTATION};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as os;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use unsupported as os;

/// Keeps crash monitoring running; dropping it stops the monitor.
pub struct CrashGuard {
    client: Client,
    monitor: os::Monitor,
}

impl std::fmt::Debug for CrashGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashGuard")
            .field("client", &self.client)
            .field("monitor_pid", &self.monitor.pid())
            .finish()
    }
}

impl CrashGuard {
    /// The client, to send pending reports and manage consent and receipts.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The process id of the monitor.
    pub fn monitor_pid(&self) -> u32 {
        self.monitor.pid()
    }

    /// Sets an annotation for a crash that happens from now on (in addition to the
    /// builder's). The user sees it before sending.
    pub fn set_annotation(&self, key: &str, value: &str) -> Result<()> {
        self.monitor
            .send(MSG_ANNOTATION, format!("{key}\0{value}").as_bytes())
    }

    /// Removes an annotation (one the builder set, or [`CrashGuard::set_annotation`])
    /// from a crash that happens from now on.
    pub fn remove_annotation(&self, key: &str) -> Result<()> {
        self.monitor.send(MSG_REMOVE_ANNOTATION, key.as_bytes())
    }
}

/// Starts monitoring, or, in the monitor process, runs the monitor and exits.
pub(crate) fn install(config: Config) -> Result<CrashGuard> {
    if let Some(socket) = std::env::var_os(MONITOR_ENV) {
        let client = Client::new(config);
        let result = client.and_then(|c| os::run_monitor(&c, &socket.to_string_lossy()));
        let code = match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mayday monitor: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let client = Client::new(config)?;
    let monitor = os::Monitor::start()?;
    Ok(CrashGuard { client, monitor })
}

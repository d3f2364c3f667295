//! Operating systems without crash capture yet (Windows and macOS follow Linux).
//! Reports can still be sent and managed; `install()` returns an error.

use crate::client::Client;
use crate::error::{Error, Result};

pub(crate) struct Monitor;

impl Monitor {
    pub(crate) fn start() -> Result<Monitor> {
        Err(Error::Install(
            "crash capture is not implemented on this OS yet".into(),
        ))
    }

    pub(crate) fn pid(&self) -> u32 {
        0
    }

    pub(crate) fn send(&self, _kind: u32, _buf: &[u8]) -> Result<()> {
        Ok(())
    }
}

pub(crate) fn run_monitor(_client: &Client, _socket: &str) -> Result<()> {
    Err(Error::Install(
        "crash capture is not implemented on this OS yet".into(),
    ))
}

//! What the application and its monitor process agree on: how a process knows it
//! is the monitor, and the kinds of messages the application sends it.

/// The environment variable that makes a process the monitor; its value is the
/// name of the socket to listen on.
pub const MONITOR_ENV: &str = "MAYDAY_MONITOR_SOCKET";

/// Message kinds from the application to the monitor.
pub(crate) const MSG_ANNOTATION: u32 = 1;
pub(crate) const MSG_PANIC: u32 = 2;
pub(crate) const MSG_REMOVE_ANNOTATION: u32 = 3;

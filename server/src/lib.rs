//! The Mayday crash report server.

pub mod pipeline;

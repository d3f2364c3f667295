//! Support for Mayday's end-to-end tests: fixture paths, a server started on
//! `127.0.0.1:0` that stops when dropped, and the real services tests run against
//! (an S3-compatible server, PostgreSQL).

pub mod fixtures;
pub mod server;
pub mod services;
pub mod upload;

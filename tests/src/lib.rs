//! Support for Mayday's end-to-end tests: the shared test data, a server started on
//! `127.0.0.1:0` that stops when dropped, talking to it over HTTP as its users do,
//! the client's `crashy` example, Crashpad annotations planted in a real dump, a
//! browser, and the real services tests run against (an S3-compatible server,
//! PostgreSQL, ChromeDriver).

pub mod api;
pub mod browser;
pub mod command;
pub mod crashpad;
pub mod crashy;
pub mod fixtures;
pub mod raw;
pub mod report;
pub mod scan;
pub mod server;
pub mod services;
pub mod testdata;
pub mod upload;

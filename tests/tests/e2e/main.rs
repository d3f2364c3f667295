//! End-to-end tests of Mayday with real parts: real processes, real HTTP, real
//! object storage and databases. One binary, a module per area.
//!
//! Each test starts and stops its own server (`TestServer::with_token` and the
//! like), so tests begin and end alike; the steps they share are in `tests/src`.

mod abuse;
mod api_shapes;
mod client;
mod cluster;
mod crash_sites;
mod crashpad;
mod deletion;
mod derived;
mod ffi;
mod index;
mod openapi;
mod privacy;
mod ratelimit;
mod search;
mod sentry_native;
mod signatures;
mod spine;
mod storage;
mod symbols;
mod trends;
mod triage;
mod webhooks;

//! Integration tests of mayday-symbols: real minidumps and symbol files from
//! `../shared/testdata`, real object stores, real files, real HTTP.

mod cache;
mod keys;
mod processing;
mod store;
mod support;
mod upload;

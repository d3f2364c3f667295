//! The Mayday symbol store.
//!
//! Breakpad `.sym` files live in object storage under
//! `symbols/<debug_file>/<DEBUG_ID>/<debug_file sans .pdb>.sym` (see [`symbol_key`]).
//!
//! - [`Symbols`] is the symbol provider the server shares across its workers: it
//!   implements minidump-processor's `SymbolProvider` over a [`SymbolStore`] with a
//!   bounded in-memory cache of indexed symbol files (the text stays on disk; only
//!   the records a lookup needs are parsed), an optional bounded disk cache and a
//!   negative cache for missing files ([`CacheConfig`]). Use one
//!   [`Symbols::session`] per report (or [`Symbols::process`]) so the report's
//!   `symbol_stats` and [`Symbols::missing`] describe that report only.
//! - [`parse_sym_upload`] and [`read_symbol_zip`] check uploads (a `.sym`, gzip or
//!   not, or a Tecken-style zip) before anything is stored.
//!
//! The `mayday-symbols` CLI (`dump` and `upload`) is its own package,
//! `mayday-symbols-cli` in `symbols/cli`, so that servers do not link dump_syms.
//! - [`StoreSymbolSupplier`] is a plain `SymbolSupplier` over the store, for a
//!   `breakpad_symbols::Symbolizer` (no caching beyond one Symbolizer's life).
//!
//! Symbol files are looked up by the debug file name the minidump records
//! (`libc.so.6`), which can differ from the name on the `.sym`'s MODULE line
//! (`libc-2.32.so`): uploads say which debug file they are for.

mod cache;
mod indexed;
mod key;
mod provider;
#[cfg(test)]
mod recorder;
mod store;
mod supplier;
mod upload;

pub use cache::CacheConfig;
pub use key::{KeyError, SymbolId, symbol_key};
pub use provider::{CacheStats, Lookup, Symbols};
pub use store::{StoreError, SymbolStore};
pub use supplier::{StoreSymbolSupplier, parse_sym};
pub use upload::{
    ModuleLine, UploadError, UploadLimits, check_sym, parse_sym_upload, parse_sym_upload_with,
    read_symbol_zip, read_symbol_zip_with,
};

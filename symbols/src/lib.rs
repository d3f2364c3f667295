//! The Mayday symbol store.
//!
//! Breakpad `.sym` files live in object storage under
//! `symbols/<debug_file>/<DEBUG_ID>/<debug_file sans .pdb>.sym` (see [`symbol_key`]).
//! [`StoreSymbolSupplier`] implements the processor's `SymbolSupplier` on top of that
//! store, so a `breakpad_symbols::Symbolizer` built from it symbolicates minidumps with
//! whatever symbols have been uploaded.

mod key;
mod store;
mod supplier;

pub use key::{KeyError, SymbolId, symbol_key};
pub use store::{StoreError, SymbolStore};
pub use supplier::{StoreSymbolSupplier, parse_sym};

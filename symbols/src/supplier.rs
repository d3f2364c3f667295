//! The processor's `SymbolSupplier` over the symbol store.

use std::path::PathBuf;

use breakpad_symbols::{
    FileError, FileKind, LocateSymbolsResult, Module, SymbolError, SymbolFile, SymbolSupplier,
};

use crate::key::SymbolId;
use crate::store::SymbolStore;

/// Supplies parsed symbol files from a [`SymbolStore`], looked up by the debug file
/// name and debug id the minidump records for each module.
#[derive(Clone, Debug)]
pub struct StoreSymbolSupplier {
    store: SymbolStore,
}

impl StoreSymbolSupplier {
    /// A supplier reading from `store`.
    pub fn new(store: SymbolStore) -> Self {
        StoreSymbolSupplier { store }
    }
}

/// The store id of a module: the basename of its debug file (its code file where the
/// debug file is empty, as Breakpad does) and its Breakpad debug id.
pub(crate) fn module_symbol_id(module: &(dyn Module + Sync)) -> Option<SymbolId> {
    let lookup = breakpad_symbols::breakpad_sym_lookup(module)?;
    let debug_file = lookup.cache_rel.split('/').next()?.to_owned();
    SymbolId::new(&debug_file, &lookup.debug_id).ok()
}

/// Parses a `.sym` file. A file without a final newline is accepted: real ones exist
/// (`breakpad-linux-x64-inline` in the shared test data) and the Breakpad parser
/// otherwise rejects the whole file.
pub fn parse_sym(bytes: &[u8]) -> Result<SymbolFile, SymbolError> {
    if bytes.last().is_some_and(|&b| b != b'\n') {
        let mut owned = Vec::with_capacity(bytes.len() + 1);
        owned.extend_from_slice(bytes);
        owned.push(b'\n');
        SymbolFile::from_bytes(&owned)
    } else {
        SymbolFile::from_bytes(bytes)
    }
}

#[async_trait::async_trait]
impl SymbolSupplier for StoreSymbolSupplier {
    async fn locate_symbols(
        &self,
        module: &(dyn Module + Sync),
    ) -> Result<LocateSymbolsResult, SymbolError> {
        let id = module_symbol_id(module).ok_or(SymbolError::MissingDebugFileOrId)?;
        let bytes = self
            .store
            .get(&id)
            .await
            .map_err(|e| SymbolError::LoadError(std::io::Error::other(e)))?
            .ok_or(SymbolError::NotFound)?;
        let symbols = parse_sym(&bytes)?;
        Ok(LocateSymbolsResult {
            symbols,
            extra_debug_info: None,
        })
    }

    async fn locate_file(
        &self,
        _module: &(dyn Module + Sync),
        _file_kind: FileKind,
    ) -> Result<PathBuf, FileError> {
        // Only Breakpad text symbols are stored; binaries are never kept.
        Err(FileError::NotFound)
    }
}

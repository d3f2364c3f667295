//! The one place that owns the symbol store's key layout.

use object_store::path::Path;

/// Why a symbol file's name parts cannot become a store key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The debug file name is empty, a dot name, too long, or has a path separator
    /// or control character in it.
    #[error("invalid debug file name {0:?}")]
    DebugFile(String),
    /// The debug id is not 33 (or 32..=40) hexadecimal digits.
    #[error("invalid debug id {0:?}")]
    DebugId(String),
}

/// The identity of one symbol file: the module's debug file name as the minidump
/// records it (`libc.so.6`, `xul.pdb`) and its Breakpad debug id (upper-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymbolId {
    /// Basename of the debug file, as recorded in the minidump's module list.
    pub debug_file: String,
    /// Breakpad debug identifier, upper-case hex.
    pub debug_id: String,
}

impl SymbolId {
    /// Validates both parts and normalizes the debug id to upper case.
    pub fn new(debug_file: &str, debug_id: &str) -> Result<Self, KeyError> {
        validate_file_name(debug_file)?;
        let id_ok =
            (32..=40).contains(&debug_id.len()) && debug_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok {
            return Err(KeyError::DebugId(debug_id.to_owned()));
        }
        Ok(SymbolId {
            debug_file: debug_file.to_owned(),
            debug_id: debug_id.to_ascii_uppercase(),
        })
    }

    /// The `.sym` file's own name: the debug file with a `.pdb` extension replaced by
    /// `.sym`, otherwise `.sym` appended (Breakpad's rule).
    pub fn sym_name(&self) -> String {
        match self.debug_file.strip_suffix(".pdb") {
            Some(stem) => format!("{stem}.sym"),
            None => format!("{}.sym", self.debug_file),
        }
    }

    /// The path relative to a symbol root: `<debug_file>/<DEBUG_ID>/<name>.sym`.
    pub fn rel_path(&self) -> String {
        format!("{}/{}/{}", self.debug_file, self.debug_id, self.sym_name())
    }
}

fn validate_file_name(name: &str) -> Result<(), KeyError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        Err(KeyError::DebugFile(name.to_owned()))
    } else {
        Ok(())
    }
}

/// The object store key of a symbol file:
/// `symbols/<debug_file>/<DEBUG_ID>/<debug_file sans .pdb>.sym`.
pub fn symbol_key(id: &SymbolId) -> Path {
    Path::from_iter(["symbols", &id.debug_file, &id.debug_id, &id.sym_name()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdb_extension_is_replaced() {
        let id = SymbolId::new("test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1").unwrap();
        assert_eq!(
            symbol_key(&id).as_ref(),
            "symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"
        );
        let id = SymbolId::new("libc.so.6", "734106315d6cbe5258f3e9efa35903480").unwrap();
        assert_eq!(
            symbol_key(&id).as_ref(),
            "symbols/libc.so.6/734106315D6CBE5258F3E9EFA35903480/libc.so.6.sym"
        );
    }

    #[test]
    fn traversal_and_bad_ids_are_refused() {
        for bad in ["..", "a/b", "a\\b", "", "x\n"] {
            assert!(SymbolId::new(bad, "5A9832E5287241C1838ED98914E9B7FF1").is_err());
        }
        assert!(SymbolId::new("a", "not-hex").is_err());
        assert!(SymbolId::new("a", "5A98").is_err());
    }
}

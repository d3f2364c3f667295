//! Fuzzes the checks a symbol upload goes through before anything is stored
//! (`POST /api/v1/symbols`), with small limits: the bytes as a Tecken-style zip of
//! `.sym` files and as one `.sym` (plain or gzip). Neither check may panic, and what
//! they accept keeps to the limits, is a `.sym` whose MODULE line has the debug id
//! it is filed under, and has a store key of exactly
//! `symbols/<debug_file>/<debug_id>/<name>.sym`.
//!
//! Input: the uploaded body.

#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mayday_symbols::{
    SymbolId, UploadLimits, check_sym, parse_sym_upload_with, read_symbol_zip_with, symbol_key,
};

static LIMITS: LazyLock<UploadLimits> = LazyLock::new(|| UploadLimits {
    max_file_bytes: 16 << 10,
    max_total_bytes: 24 << 10,
    max_entries: 8,
});

/// One accepted `.sym`: checked again, its id its MODULE line's, its key in place.
fn accepted(id: &SymbolId, sym: &[u8]) -> u64 {
    assert!(sym.len() as u64 <= LIMITS.max_file_bytes);
    let module = check_sym(sym).unwrap();
    assert!(module.debug_id.eq_ignore_ascii_case(&id.debug_id));
    let key = symbol_key(id);
    let parts: Vec<_> = key.parts().collect();
    assert_eq!(parts.len(), 4, "{key}");
    assert_eq!(parts[0].as_ref(), "symbols");
    sym.len() as u64
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(files) = read_symbol_zip_with(bytes.clone(), &LIMITS) {
        assert!(!files.is_empty() && files.len() <= LIMITS.max_entries);
        let total: u64 = files.iter().map(|(id, sym)| accepted(id, sym)).sum();
        assert!(total <= LIMITS.max_total_bytes);
    }
    if let Ok((id, sym)) = parse_sym_upload_with(bytes, None, &LIMITS) {
        accepted(&id, &sym);
    }
});

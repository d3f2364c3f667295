//! The key layout: one function, every component validated.

use mayday_symbols::{KeyError, SymbolId, symbol_key};

#[test]
fn keys_follow_the_breakpad_layout_under_symbols() {
    let id = SymbolId::new("xul.pdb", "44e4ec8c2f41492b9369d6b9a059577c2").unwrap();
    assert_eq!(id.debug_id, "44E4EC8C2F41492B9369D6B9A059577C2");
    assert_eq!(
        symbol_key(&id).as_ref(),
        "symbols/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"
    );
    let id = SymbolId::new("libc.so.6", "734106315D6CBE5258F3E9EFA35903480").unwrap();
    assert_eq!(
        id.rel_path(),
        "libc.so.6/734106315D6CBE5258F3E9EFA35903480/libc.so.6.sym"
    );
}

#[test]
fn unsafe_names_and_ids_are_refused() {
    let good_id = "5A9832E5287241C1838ED98914E9B7FF1";
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "nul\0",
        "tab\t",
        &"x".repeat(256),
    ] {
        assert_eq!(
            SymbolId::new(bad, good_id),
            Err(KeyError::DebugFile(bad.to_owned())),
            "{bad:?}"
        );
    }
    for bad in [
        "",
        "xyz",
        "5A98",
        "5A9832E5287241C1838ED98914E9B7FG1",
        "../5A9832E5287241C1838ED98914E9B7FF1",
        &"A".repeat(41),
    ] {
        assert_eq!(
            SymbolId::new("a.pdb", bad),
            Err(KeyError::DebugId(bad.to_owned())),
            "{bad:?}"
        );
    }
}

//! `include/mayday.h` is what cbindgen writes from `src/lib.rs` with
//! `cbindgen.toml`: regenerating it changes nothing. `MAYDAY_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn the_header_matches_the_rust() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut written = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut written);
    let written = String::from_utf8(written).unwrap();
    let header = crate_dir.join("include").join("mayday.h");
    if std::env::var_os("MAYDAY_BLESS").is_some() {
        std::fs::write(&header, &written).unwrap();
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == written,
        "include/mayday.h is out of date; regenerate it with \
         `MAYDAY_BLESS=1 cargo test --workspace --test header`"
    );
}

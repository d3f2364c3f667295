//! Upload parsing: everything bad is refused with a typed error.

use std::io::Write;

use bytes::Bytes;
use mayday_symbols::{
    KeyError, UploadError, UploadLimits, parse_sym_upload, parse_sym_upload_with, read_symbol_zip,
    read_symbol_zip_with,
};
use zip::write::SimpleFileOptions;

use crate::support;

const LIBC_ID: &str = "734106315D6CBE5258F3E9EFA35903480";

fn libc_sym() -> Bytes {
    let path = support::case_dir("mozilla-firefox-linux-x64")
        .join(format!("symbols/libc.so.6/{LIBC_ID}/libc.so.6.sym"));
    Bytes::from(std::fs::read(path).unwrap())
}

fn gzip(bytes: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    Bytes::from(enc.finish().unwrap())
}

fn zip_of(entries: &[(&str, &[u8])]) -> Bytes {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    Bytes::from(w.finish().unwrap().into_inner())
}

#[test]
fn a_sym_is_filed_under_the_hinted_debug_file_or_its_module_name() {
    let sym = libc_sym();
    let (id, body) = parse_sym_upload(sym.clone(), Some("libc.so.6")).unwrap();
    assert_eq!(id.rel_path(), format!("libc.so.6/{LIBC_ID}/libc.so.6.sym"));
    assert_eq!(body, sym);
    // Without a hint: the MODULE line's name (which here is not what dumps record).
    let (id, _) = parse_sym_upload(sym.clone(), None).unwrap();
    assert_eq!(id.debug_file, "libc-2.32.so");
    // gzip is accepted and decompressed.
    let (id, body) = parse_sym_upload(gzip(&sym), Some("libc.so.6")).unwrap();
    assert_eq!(id.debug_id, LIBC_ID);
    assert_eq!(body, sym);
}

#[test]
fn a_sym_without_final_newline_is_accepted() {
    let case = support::case_dir("breakpad-linux-x64-inline");
    let (_, _, path) = support::tree_files(&case).remove(0);
    let sym = std::fs::read(path).unwrap();
    assert_ne!(sym.last(), Some(&b'\n'));
    let (id, _) = parse_sym_upload(Bytes::from(sym), None).unwrap();
    assert_eq!(id.debug_file, "linux_inline");
}

#[test]
fn bad_uploads_are_refused() {
    let sym = libc_sym();
    for hint in ["../etc/passwd", "a/b", "..", ""] {
        let err = parse_sym_upload(sym.clone(), Some(hint)).unwrap_err();
        assert!(
            matches!(err, UploadError::Key(KeyError::DebugFile(_))),
            "{hint}: {err}"
        );
        assert_eq!(err.name(), "bad_debug_file");
    }
    let non_hex =
        b"MODULE Linux x86_64 NOTHEXNOTHEXNOTHEXNOTHEXNOTHEXNOT libc.so.6\nFUNC 1 2 0 f\n";
    let err = parse_sym_upload(Bytes::from_static(non_hex), None).unwrap_err();
    assert!(
        matches!(err, UploadError::Key(KeyError::DebugId(_))),
        "{err}"
    );

    let dump = std::fs::read(support::case_dir("breakpad-win-x86-minidump2").join("minidump2.dmp"))
        .unwrap();
    let err = parse_sym_upload(Bytes::from(dump), Some("x")).unwrap_err();
    assert!(matches!(err, UploadError::NotSym(_)), "{err}");
    let err = parse_sym_upload(
        Bytes::from_static(b"MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 a\n<html>\n"),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, UploadError::NotSym(_)), "{err}");
    let err = parse_sym_upload(Bytes::new(), None).unwrap_err();
    assert!(matches!(err, UploadError::NotSym(_)), "{err}");

    let err = parse_sym_upload(Bytes::from_static(&[0x1f, 0x8b, 1, 2, 3]), None).unwrap_err();
    assert!(matches!(err, UploadError::Gzip(_)), "{err}");
}

#[test]
fn a_gzip_bomb_is_refused() {
    let mut bomb = b"MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 a\n".to_vec();
    bomb.resize(64 << 20, b'\n');
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 1 << 20);
    let limits = UploadLimits {
        max_file_bytes: 8 << 20,
        ..UploadLimits::default()
    };
    let err = parse_sym_upload_with(compressed, None, &limits).unwrap_err();
    assert!(err.is_too_large(), "{err}");
}

#[test]
fn a_tecken_zip_of_a_symbol_tree_is_read() {
    let case = support::case_dir("breakpad-win-x86-minidump2");
    let files: Vec<(String, Vec<u8>)> = support::tree_files(&case)
        .into_iter()
        .map(|(f, id, path)| {
            let name = format!("{f}/{id}/{}", path.file_name().unwrap().to_string_lossy());
            (name, std::fs::read(path).unwrap())
        })
        .collect();
    let mut entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    entries.push(("README.txt", b"not a symbol file, skipped"));
    let got = read_symbol_zip(zip_of(&entries)).unwrap();
    let mut paths: Vec<String> = got.iter().map(|(id, _)| id.rel_path()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "kernel32.pdb/BCE8785C57B44245A669896B6A19B9542/kernel32.sym",
            "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"
        ]
    );
    for (id, bytes) in &got {
        let original = &files
            .iter()
            .find(|(n, _)| n.starts_with(&id.debug_file))
            .unwrap()
            .1;
        assert_eq!(&bytes[..], &original[..]);
    }
}

#[test]
fn bad_zips_are_refused() {
    let sym =
        b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\nPUBLIC 1000 0 f\n";
    let good = "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym";
    type Entries<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Entries<'_>, &str)> = vec![
        (
            vec![("../../etc/5A9832E5287241C1838ED98914E9B7FF1/x.sym", sym)],
            "bad_path",
        ),
        (
            vec![("/abs/5A9832E5287241C1838ED98914E9B7FF1/x.sym", sym)],
            "bad_path",
        ),
        (
            vec![(
                "test_app.pdb/../5A9832E5287241C1838ED98914E9B7FF1/x.sym",
                sym,
            )],
            "bad_path",
        ),
        (
            vec![("a\\..\\b/5A9832E5287241C1838ED98914E9B7FF1/x.sym", sym)],
            "bad_path",
        ),
        (
            vec![(
                "extra/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/x.sym",
                sym,
            )],
            "bad_path",
        ),
        (
            vec![("test_app.pdb/not-hex/test_app.sym", sym)],
            "bad_debug_id",
        ),
        (vec![(good, b"hello world\n")], "not_a_sym"),
        (
            vec![(
                "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF2/test_app.sym",
                sym,
            )],
            "id_mismatch",
        ),
        (vec![("README", b"x")], "empty_zip"),
        // One bad entry refuses the whole zip, even after a good one.
        (
            vec![
                (good, sym),
                ("../x/5A9832E5287241C1838ED98914E9B7FF1/x.sym", sym),
            ],
            "bad_path",
        ),
    ];
    for (entries, expected) in cases {
        let err = read_symbol_zip(zip_of(&entries)).unwrap_err();
        assert_eq!(err.name(), expected, "{:?}: {err}", entries[0].0);
    }
    let err = read_symbol_zip(Bytes::from_static(b"PK\x03\x04 not really")).unwrap_err();
    assert_eq!(err.name(), "bad_zip");
}

#[test]
fn zip_bombs_and_entry_floods_are_refused() {
    let mut big = b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\n".to_vec();
    big.resize(32 << 20, b'\n');
    let limits = UploadLimits {
        max_file_bytes: 16 << 20,
        max_total_bytes: 40 << 20,
        max_entries: 5,
    };
    let one = zip_of(&[(
        "test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym",
        &big,
    )]);
    assert!(one.len() < 1 << 20, "compressed {} bytes", one.len());
    let err = read_symbol_zip_with(one, &limits).unwrap_err();
    assert!(err.is_too_large(), "{err}");

    // Each entry within the per-file limit, the sum over the total.
    let mut small = big.clone();
    small.truncate(15 << 20);
    let names: Vec<String> = (1..=3)
        .map(|i| format!("f{i}.pdb/5A9832E5287241C1838ED98914E9B7FF1/f{i}.sym"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), small.as_slice()))
        .collect();
    let err = read_symbol_zip_with(zip_of(&entries), &limits).unwrap_err();
    assert!(
        matches!(&err, UploadError::TooLarge { what, .. } if what == "zip contents"),
        "{err}"
    );

    let names: Vec<String> = (0..6).map(|i| format!("f/{i}")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let err = read_symbol_zip_with(zip_of(&entries), &limits).unwrap_err();
    assert_eq!(err.name(), "too_many_entries");
}

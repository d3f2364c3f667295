//! `mayday-symbols dump` on other platforms' binaries (`tests/fixtures`, see its
//! README): a Windows PE with its PDB, a Mach-O with its dSYM and a universal (fat)
//! Mach-O, compared with the `.sym` files the reference tools made of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mayday_symbols_cli::{DumpError, dump_mach_o, dump_pe_pdb, dump_sym};

const CLI: &str = env!("CARGO_BIN_EXE_mayday-symbols");

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap()
}

/// `mayday-symbols dump <args>`: success, stdout, stderr.
fn dump(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let output = Command::new(CLI).arg("dump").args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A line record with its file resolved: address, size, line, file name.
type Line = (u64, u64, u64, String);

/// The parts of a `.sym` the comparisons look at.
struct Sym {
    /// The first line.
    module: String,
    info: Vec<String>,
    /// FUNC records by address: size, name and line records.
    funcs: BTreeMap<u64, (u64, String, Vec<Line>)>,
    cfi: usize,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap()
}

fn parse(text: &str) -> Sym {
    let mut lines = text.lines();
    let module = lines.next().unwrap().to_owned();
    let (mut info, mut files, mut funcs, mut cfi) =
        (Vec::new(), BTreeMap::new(), BTreeMap::new(), 0);
    let mut current = None;
    let mut raw: Vec<(u64, u64, u64, u64)> = Vec::new();
    let mut flush = |current: &mut Option<(u64, u64, String)>,
                     raw: &mut Vec<(u64, u64, u64, u64)>| {
        if let Some((addr, size, name)) = current.take() {
            funcs.insert(addr, (size, name, std::mem::take(raw)));
        }
    };
    for line in lines {
        if let Some(rest) = line.strip_prefix("INFO ") {
            info.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("FILE ") {
            let (n, name) = rest.split_once(' ').unwrap();
            files.insert(n.parse::<u64>().unwrap(), name.to_owned());
        } else if let Some(rest) = line.strip_prefix("FUNC ") {
            let rest = rest.strip_prefix("m ").unwrap_or(rest);
            let mut parts = rest.splitn(4, ' ');
            let (addr, size) = (hex(parts.next().unwrap()), hex(parts.next().unwrap()));
            parts.next();
            flush(&mut current, &mut raw);
            current = Some((addr, size, parts.next().unwrap_or_default().to_owned()));
        } else if line.starts_with("STACK CFI INIT ") {
            cfi += 1;
        } else if line.starts_with(|c: char| c.is_ascii_hexdigit()) && current.is_some() {
            let p: Vec<&str> = line.split(' ').collect();
            raw.push((
                hex(p[0]),
                hex(p[1]),
                p[2].parse().unwrap(),
                p[3].parse().unwrap(),
            ));
        } else if !line.starts_with("INLINE") {
            flush(&mut current, &mut raw);
        }
    }
    flush(&mut current, &mut raw);
    let funcs = funcs
        .into_iter()
        .map(|(addr, (size, name, raw))| {
            let lines = raw
                .into_iter()
                .map(|(a, s, l, f)| (a, s, l, files[&f].clone()))
                .collect();
            (addr, (size, name, lines))
        })
        .collect();
    Sym {
        module,
        info,
        funcs,
        cfi,
    }
}

/// The line and file of every byte of a function, whatever the records' split.
fn line_table(lines: &[Line]) -> BTreeMap<u64, (u64, String)> {
    let mut at = BTreeMap::new();
    for (addr, size, line, file) in lines {
        for a in *addr..addr + size {
            at.insert(a, (*line, file.clone()));
        }
    }
    at
}

/// The FUNC record at `addr` in both: same size and name, the same line and
/// file at every address.
fn assert_same_function(ours: &Sym, reference: &Sym, addr: u64, name: &str) {
    let (size, got_name, lines) = &ours.funcs[&addr];
    let (ref_size, ref_name, ref_lines) = &reference.funcs[&addr];
    assert_eq!((size, got_name.as_str()), (ref_size, name));
    assert_eq!(ref_name, name);
    assert!(!lines.is_empty(), "{name} has line records");
    assert_eq!(line_table(lines), line_table(ref_lines), "{name}'s lines");
}

/// Dumps the fixture `file` with the CLI and reads the fixture `reference` .sym:
/// both have the MODULE line `module`. Returns ours, the reference and our text.
fn dump_with_reference(file: &str, reference: &str, module: &str) -> (Sym, Sym, String) {
    let reference = parse(&String::from_utf8(read(reference)).unwrap());
    let (ok, text, stderr) = dump(&[fixture(file).as_ref()]);
    assert!(ok, "{stderr}");
    let ours = parse(&text);
    assert_eq!(ours.module, module);
    assert_eq!(reference.module, module);
    (ours, reference, text)
}

#[test]
fn a_pe_and_its_pdb_dump_as_the_reference_dump_syms_does() {
    // The PDB, with the PE of the same build beside it.
    let (ours, reference, text) = dump_with_reference(
        "windows/dump_syms_regtest64.pdb",
        "windows/dump_syms_regtest64.sym",
        "MODULE windows x86_64 72E103A85CB249078B76B2E7C06257B13 dump_syms_regtest64.pdb",
    );
    let pdb = fixture("windows/dump_syms_regtest64.pdb");
    assert_eq!(ours.info, ["CODE_ID 589DFD111A000 dump_syms_regtest64.exe"]);
    assert_eq!(ours.info, reference.info);
    // Every function, by address, size and name.
    let heads = |s: &Sym| -> Vec<(u64, u64, String)> {
        s.funcs
            .iter()
            .map(|(a, (sz, n, _))| (*a, *sz, n.clone()))
            .collect()
    };
    assert_eq!(heads(&ours), heads(&reference));
    assert!(ours.funcs.len() > 200, "{} FUNC records", ours.funcs.len());
    assert_same_function(&ours, &reference, 0x1010, "main(int, char**)");
    assert_same_function(&ours, &reference, 0x1110, "google_breakpad::C::f()");
    // The call frame information is the PE's unwind data.
    assert_eq!(ours.cfi, reference.cfi);
    assert!(ours.cfi > 100);

    // The PE finds its PDB beside it by the name in its debug directory; or is told.
    let exe = fixture("windows/dump_syms_regtest64.exe");
    let (ok, from_exe, stderr) = dump(&[exe.as_ref()]);
    assert!(ok, "{stderr}");
    assert_eq!(from_exe, text);
    let (ok, told, stderr) = dump(&[exe.as_ref(), "--debug-file".as_ref(), pdb.as_ref()]);
    assert!(ok, "{stderr}");
    assert_eq!(told, text);

    // Filed under the PDB's name, which is what minidumps record.
    let dumped = dump_pe_pdb(
        &read("windows/dump_syms_regtest64.exe"),
        "dump_syms_regtest64.exe",
        &read("windows/dump_syms_regtest64.pdb"),
        "dump_syms_regtest64.pdb",
    )
    .unwrap();
    assert_eq!(
        dumped.id.rel_path(),
        "dump_syms_regtest64.pdb/72E103A85CB249078B76B2E7C06257B13/dump_syms_regtest64.sym"
    );
    assert_eq!(dumped.sym, text.as_bytes());

    // A PE without its PDB is refused: dumped alone it would be filed under the
    // wrong name with no functions.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("dump_syms_regtest64.exe");
    std::fs::copy(&exe, &alone).unwrap();
    let (ok, out, stderr) = dump(&[alone.as_ref()]);
    assert!(!ok && out.is_empty());
    assert!(stderr.contains("a PE file without its .pdb"), "{stderr}");
    // A PDB without its PE still dumps, without call frame information.
    let pdb_alone = dir.path().join("dump_syms_regtest64.pdb");
    std::fs::copy(&pdb, &pdb_alone).unwrap();
    std::fs::remove_file(&alone).unwrap();
    let (ok, text, stderr) = dump(&[pdb_alone.as_ref()]);
    assert!(ok, "{stderr}");
    let alone = parse(&text);
    assert_eq!(alone.module, reference.module);
    assert_eq!(heads(&alone), heads(&reference));
    assert_eq!(alone.cfi, 0);
}

#[test]
fn a_mach_o_with_its_dsym_dumps_as_the_reference_does() {
    // The binary, with its dSYM bundle beside it.
    let (ours, reference, _) = dump_with_reference(
        "macos/crash",
        "macos/crash.sym",
        "MODULE mac x86_64 67E9247C814E392BA027DBDE6748FCBF0 crash",
    );
    let bin = fixture("macos/crash");
    // The same functions at the same addresses and sizes.
    let ranges = |s: &Sym| -> Vec<(u64, u64)> { s.funcs.iter().map(|(a, f)| (*a, f.0)).collect() };
    assert_eq!(ranges(&ours), ranges(&reference));
    assert!(ours.funcs.len() > 150, "{} FUNC records", ours.funcs.len());
    assert_same_function(
        &ours,
        &reference,
        0xe20,
        "google_breakpad::MinidumpFileWriter::Open(char const*)",
    );
    assert_same_function(
        &ours,
        &reference,
        0x17d0,
        "google_breakpad::UntypedMDRVA::Allocate(unsigned long)",
    );
    // Call frame information from the binary (the dSYM has none).
    assert!(ours.cfi >= reference.cfi, "{} CFI records", ours.cfi);

    // The dSYM's DWARF file alone: the functions, no call frame information.
    let dwarf = fixture("macos/crash.dSYM/Contents/Resources/DWARF/crash");
    let (ok, text, stderr) = dump(&[dwarf.as_ref()]);
    assert!(ok, "{stderr}");
    let debug_only = parse(&text);
    assert_eq!(debug_only.module, reference.module);
    assert_eq!(ranges(&debug_only), ranges(&reference));
    assert_eq!(debug_only.cfi, 0);

    // The binary moved away from its dSYM: exported symbols only, until told.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("crash");
    std::fs::copy(&bin, &alone).unwrap();
    let (ok, text, stderr) = dump(&[alone.as_ref()]);
    assert!(ok, "{stderr}");
    assert!(parse(&text).funcs.is_empty());
    let (ok, told, stderr) = dump(&[alone.as_ref(), "--debug-file".as_ref(), dwarf.as_ref()]);
    assert!(ok, "{stderr}");
    assert_eq!(parse(&told).funcs.len(), ours.funcs.len());
    let whole = dump_mach_o(
        &read("macos/crash"),
        Some(&read("macos/crash.dSYM/Contents/Resources/DWARF/crash")),
        "crash",
        None,
    )
    .unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(
        whole[0].id.rel_path(),
        "crash/67E9247C814E392BA027DBDE6748FCBF0/crash.sym"
    );
    // Another build's debug file is refused, naming both debug ids.
    let other = fixture("universal/Example");
    let (ok, _, stderr) = dump(&[alone.as_ref(), "--debug-file".as_ref(), other.as_ref()]);
    assert!(!ok);
    assert!(
        stderr.contains("the debug file is for another build")
            && stderr.contains("67E9247C814E392BA027DBDE6748FCBF0"),
        "{stderr}"
    );
}

#[test]
fn a_universal_mach_o_dumps_one_architecture_at_a_time() {
    let fat = fixture("universal/Example");
    // Which one is for the user to say.
    let (ok, out, stderr) = dump(&[fat.as_ref()]);
    assert!(!ok && out.is_empty());
    assert!(
        stderr.contains("a universal (fat) Mach-O with x86_64, arm64: choose one with --arch"),
        "{stderr}"
    );
    // Each architecture under its own debug id (the UUIDs `dwarfdump --uuid` shows).
    for (arch, id) in [
        ("x86_64", "3B4566E4491B3DCF94F5AE51F624DD870"),
        ("arm64", "2556F1515A403847BE6CE2C1B5BE4DF80"),
    ] {
        let (ok, text, stderr) = dump(&[fat.as_ref(), "--arch".as_ref(), arch.as_ref()]);
        assert!(ok, "{stderr}");
        assert_eq!(
            text.lines().next().unwrap(),
            format!("MODULE mac {arch} {id} Example")
        );
    }
    let (ok, _, stderr) = dump(&[fat.as_ref(), "--arch".as_ref(), "ppc".as_ref()]);
    assert!(!ok);
    assert!(
        stderr.contains("no ppc in this Mach-O (it holds x86_64, arm64)"),
        "{stderr}"
    );
    let pdb = fixture("windows/dump_syms_regtest64.pdb");
    let (ok, _, stderr) = dump(&[pdb.as_ref(), "--arch".as_ref(), "x86_64".as_ref()]);
    assert!(!ok);
    assert!(stderr.contains("--arch is for Mach-O files"), "{stderr}");

    // The library gives one per architecture, each at its own store key.
    let bytes = read("universal/Example");
    let all = dump_mach_o(&bytes, None, "Example", None).unwrap();
    let keys: Vec<String> = all.iter().map(|d| d.id.rel_path()).collect();
    assert_eq!(
        keys,
        [
            "Example/3B4566E4491B3DCF94F5AE51F624DD870/Example.sym",
            "Example/2556F1515A403847BE6CE2C1B5BE4DF80/Example.sym",
        ]
    );
    assert_eq!(
        all.iter().map(|d| d.arch.as_str()).collect::<Vec<_>>(),
        ["x86_64", "arm64"]
    );
    // A Java class file starts with the same magic, then its version, not a count.
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("Main.class");
    std::fs::write(&class, b"\xca\xfe\xba\xbe\x00\x00\x00\x34 and the rest").unwrap();
    let (ok, _, stderr) = dump(&[class.as_ref()]);
    assert!(!ok);
    assert!(
        stderr.contains("not an ELF, Mach-O, PE or PDB file"),
        "{stderr}"
    );

    let err = dump_sym(&bytes, "Example").unwrap_err();
    assert!(
        matches!(err, DumpError::Universal { ref archs } if archs == &["x86_64", "arm64"]),
        "{err}"
    );
}

//! Signature generation against reference outputs and hand-made frames.

use std::path::{Path, PathBuf};

use super::super::report::{Frame, Hex, InlineFrame};
use super::*;

// ---- helpers -------------------------------------------------------------------

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

/// The crashing thread of a minidump-stackwalk `--json` reference output.
fn reference_frames(path: &str) -> Vec<Frame> {
    let text = std::fs::read_to_string(testdata().join(path)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["crashing_thread"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|frame| {
            let mut frame = frame.clone();
            // minidump-stackwalk writes `"inlines": null` where there are none.
            if frame["inlines"].is_null() {
                frame["inlines"] = serde_json::json!([]);
            }
            serde_json::from_value(frame).unwrap()
        })
        .collect()
}

/// Every reference output under the shared test data, with its signature text.
const REFERENCES: &[(&str, &str)] = &[
    (
        "breakpad-win-x86-minidump2/reference/minidump2.minidump-stackwalk-0.27.0.json",
        "(anonymous namespace)::CrashFunction",
    ),
    (
        "mozilla-firefox-linux-x64/reference/firefox-linux-x86_64.minidump-stackwalk-0.27.0.json",
        "libxul.so@0x34464e8",
    ),
    (
        "mozilla-firefox-win-x64/reference/firefox-windows-x86_64.minidump-stackwalk-0.27.0.json",
        "xul.dll@0x38ab264",
    ),
    (
        "mozilla-firefox-android-arm64/reference/firefox-android-aarch64.minidump-stackwalk-0.27.0.json",
        "libxul.so@0x2d4da90",
    ),
    (
        "rust-minidump-macos-x64-inlines/reference/pipeline-inlines-macos-segv.minidump-stackwalk-0.27.0.json",
        "core::ptr::write_volatile::<T> | sadness_generator::raise_segfault",
    ),
    (
        "symbolic-linux-x64-crash/reference/linux-mini.minidump-stackwalk-0.27.0.json",
        "main",
    ),
    (
        "symbolic-win-x86-crash/reference/windows-mini.minidump-stackwalk-0.27.0.json",
        "main",
    ),
    (
        "breakpad-linux-x64-inline/reference/linux_inline.minidump-stackwalk-0.27.0.json",
        "linux_inline@0x161b6",
    ),
    (
        "crashpad-iossim-x64-annotations/reference/minidump_crashpad_annotation.minidump-stackwalk-0.27.0.json",
        "ios_crash_xcuitests@0x6bc34",
    ),
    (
        "electron-nosyms/reference/electron-linux.minidump-stackwalk-0.27.0.json",
        "electron@0x30785f0",
    ),
    (
        "electron-nosyms/reference/electron-mac.minidump-stackwalk-0.27.0.json",
        "Electron Framework@0xf34e4",
    ),
    (
        "electron-nosyms/reference/electron-windows.minidump-stackwalk-0.27.0.json",
        "electron.exe@0xe8da4",
    ),
];

/// An address or offset as the tests write it (`0x` and its digits).
fn hex(text: &str) -> Hex {
    Hex::parse(text).unwrap_or_else(|| panic!("{text}: not 0x and hex digits"))
}

fn frame(module: Option<&str>, module_offset: Option<&str>, offset: &str) -> Frame {
    Frame {
        module: module.map(str::to_owned),
        module_offset: module_offset.map(hex),
        offset: hex(offset),
        trust: "cfi".into(),
        ..Frame::default()
    }
}

/// A symbolicated frame in module `app`.
fn func(function: &str) -> Frame {
    Frame {
        function: Some(function.to_owned()),
        ..frame(Some("app"), Some("0x10"), "0x1010")
    }
}

/// A frame without symbols.
fn nosym(module: &str, module_offset: &str) -> Frame {
    Frame {
        missing_symbols: true,
        ..frame(Some(module), Some(module_offset), "0x7f0000001000")
    }
}

/// The signature of `frames` under the built-in lists.
fn signature(frames: &[Frame]) -> Signature {
    static BUILT_IN: std::sync::LazyLock<SignatureRules> =
        std::sync::LazyLock::new(SignatureRules::default);
    BUILT_IN.signature(frames)
}

fn text(frames: &[Frame]) -> String {
    signature(frames).text
}

/// The grouping key computed independently of [`Signature::hash`].
fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The normalized form of one symbolicated frame.
fn normalized(function: &str) -> String {
    SignatureRules::default().normalize_frames(&[func(function)])[0].clone()
}

// ---- real test data ------------------------------------------------------------

#[test]
fn reference_outputs_give_the_expected_signatures() {
    for (path, expected) in REFERENCES {
        let frames = reference_frames(path);
        assert!(!frames.is_empty(), "{path}");
        let sig = signature(&frames);
        assert_eq!(sig.text, *expected, "{path}");
        assert_eq!(sig.hash(), hex_sha256(expected), "{path}");
    }
}

#[test]
fn reference_dumps_of_different_crashes_get_different_issues() {
    let mut seen = std::collections::BTreeMap::new();
    for (path, _) in REFERENCES {
        let sig = signature(&reference_frames(path));
        if let Some(other) = seen.insert(sig.hash(), *path) {
            // The two symbolic dumps with the same crash in a `main` both say `main`.
            assert_eq!(sig.text, "main", "{path} and {other} share {}", sig.text);
        }
    }
    assert_eq!(seen.len(), REFERENCES.len() - 1);
}

#[test]
fn the_same_dump_in_two_variants_gets_the_same_signature() {
    // The same crash written by Breakpad and re-written by rust-minidump's tools.
    let a = reference_frames(
        "symbolic-linux-x64-crash/reference/linux-mini.minidump-stackwalk-0.27.0.json",
    );
    let b = reference_frames(
        "symbolic-linux-x64-crash/reference/linux-mini.rust-minidump-variant.minidump-stackwalk-0.27.0.json",
    );
    assert_eq!(signature(&a), signature(&b));
}

#[test]
fn signatures_are_deterministic() {
    // A fresh rule set, and the frames read again, give the same result.
    let fresh = SignatureRules::new(&RuleLists::EMBEDDED).unwrap();
    for (path, _) in REFERENCES {
        let frames = reference_frames(path);
        let first = signature(&frames);
        assert_eq!(fresh.signature(&reference_frames(path)), first, "{path}");
        assert_eq!(fresh.signature(&frames), signature(&frames), "{path}");
    }
}

#[test]
fn reference_frames_normalize_like_socorro() {
    let frames = reference_frames(REFERENCES[0].0);
    assert_eq!(
        SignatureRules::default().normalize_frames(&frames),
        [
            "(anonymous namespace)::CrashFunction",
            "main",
            "__tmainCRTStartup",
            "BaseProcessStart",
        ]
    );
    // Inlined calls come first, innermost first, then the physical frame's own.
    let frames = reference_frames(REFERENCES[4].0);
    let normalized = SignatureRules::default().normalize_frames(&frames);
    assert_eq!(
        normalized[..5],
        [
            "core::ptr::write_volatile::<T>",
            "sadness_generator::raise_segfault",
            "crash_client::real_main::{closure#1}",
            "crash_client::real_main",
            "crash_client::main",
        ]
    );
    assert!(normalized.len() <= MAX_FRAMES);
}

// ---- rule lists ----------------------------------------------------------------

#[test]
fn embedded_lists_compile_and_are_not_empty() {
    let rules = SignatureRules::new(&RuleLists::EMBEDDED).unwrap();
    assert!(rules.irrelevant.is_some());
    assert!(rules.prefix.is_some());
    assert!(rules.trim_module.is_some());
    assert!(rules.sentinels.iter().any(|s| s == "rust_begin_unwind"));
    // Comment lines are not entries.
    assert!(rules.sentinels.iter().all(|s| !s.starts_with('#')));
}

#[test]
fn a_bad_regex_is_reported_with_its_file_list_and_line() {
    let lists = RuleLists {
        prefix: "# comment\n\nmemcpy\nfoo(\n",
        ..RuleLists::EMBEDDED
    };
    let err = SignatureRules::new(&lists).unwrap_err();
    assert_eq!(err.name(), "bad_regex");
    assert!(
        matches!(
            err,
            RulesError::BadRegex {
                list: "prefix",
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "signature rules prefix_signature_re.txt, line 4 (list `prefix`): invalid regular expression"
    );
}

#[test]
fn rules_are_data() {
    // The same stack under other lists gives another signature.
    let frames = [func("memcpy"), func("Parser::parse"), func("main")];
    assert_eq!(text(&frames), "memcpy | Parser::parse");
    let lists = RuleLists {
        prefix: "",
        irrelevant: "memcpy\nParser::",
        ..RuleLists::EMBEDDED
    };
    let rules = SignatureRules::new(&lists).unwrap();
    assert_eq!(rules.signature(&frames).text, "main");
    // Entries match at the start of a frame, like Python's `re.match`.
    let lists = RuleLists {
        irrelevant: "parse",
        ..RuleLists::EMBEDDED
    };
    let rules = SignatureRules::new(&lists).unwrap();
    assert_eq!(rules.signature(&frames).text, "memcpy | Parser::parse");
}

#[test]
fn a_rules_dir_adds_to_the_built_in_lists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("irrelevant_signature_re.txt"),
        "# ours: our crash reporter's own frames\n\nMyApp::Reporter::\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prefix_signature_re.txt"),
        "MyApp::check$\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("signature_sentinels.txt"),
        "MyApp::on_fatal\n",
    )
    .unwrap();
    let rules = SignatureRules::load(Some(dir.path())).unwrap();

    // Their entries apply...
    let frames = [
        func("MyApp::Reporter::capture"),
        func("MyApp::check"),
        func("Parser::parse"),
        func("main"),
    ];
    assert_eq!(text(&frames), "MyApp::Reporter::capture");
    assert_eq!(
        rules.signature(&frames).text,
        "MyApp::check | Parser::parse"
    );
    // The signature starts at the sentinel: what is above it is the handler's.
    let frames = [
        func("MyApp::log"),
        func("MyApp::on_fatal"),
        func("Parser::parse"),
    ];
    assert_eq!(text(&frames), "MyApp::log");
    assert_eq!(rules.signature(&frames).text, "MyApp::on_fatal");
    assert!(rules.sentinels.iter().any(|s| s == "MyApp::on_fatal"));
    // ...and the built-in ones still do.
    assert!(rules.sentinels.iter().any(|s| s == "rust_begin_unwind"));
    let frames = [func("abort"), func("memcpy"), func("Parser::parse")];
    assert_eq!(rules.signature(&frames), signature(&frames));
    assert_eq!(rules.signature(&frames).text, "memcpy | Parser::parse");

    // An empty directory, or none: the built-in lists alone.
    let empty = tempfile::tempdir().unwrap();
    for rules in [
        SignatureRules::load(Some(empty.path())).unwrap(),
        SignatureRules::load(None).unwrap(),
    ] {
        let frames = [func("MyApp::Reporter::capture"), func("main")];
        assert_eq!(rules.signature(&frames), signature(&frames));
    }
}

#[test]
fn a_bad_regex_in_a_rules_file_is_refused_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trim_module_signature_re.txt");
    std::fs::write(&file, "# ours\nlibfoo\\.so\n[unclosed\n").unwrap();
    let err = SignatureRules::load(Some(dir.path())).unwrap_err();
    assert_eq!(err.name(), "bad_regex");
    assert!(
        matches!(
            &err,
            RulesError::BadRegex { file: f, list: "trim_module", line: 3, .. }
                if *f == file.display().to_string()
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "signature rules {}, line 3 (list `trim_module`): invalid regular expression",
            file.display()
        )
    );
}

#[test]
fn an_unknown_file_in_the_rules_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prefix_signature_re.txt"), "ok\n").unwrap();
    // A misspelt name would otherwise be silently ignored.
    let file = dir.path().join("prefix_signatures_re.txt");
    std::fs::write(&file, "MyApp::check\n").unwrap();
    let err = SignatureRules::load(Some(dir.path())).unwrap_err();
    assert_eq!(err.name(), "unknown_file");
    assert!(
        matches!(&err, RulesError::UnknownFile { file: f } if *f == file),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("prefix_signature_re.txt"), "{message}");

    // A directory that is not there is an error too, not the built-in lists.
    let gone = dir.path().join("gone");
    let err = SignatureRules::load(Some(&gone)).unwrap_err();
    assert_eq!(err.name(), "read");
    assert!(err.to_string().contains("gone"), "{err}");
}

// ---- the walk ------------------------------------------------------------------

#[test]
fn irrelevant_frames_are_skipped_and_prefix_frames_combined() {
    let frames = [
        func("__GI_raise"),
        func("__GI_abort"),
        func("__libc_message"),
        func("malloc_printerr"),
        func("_int_free"),
        func("free"),
        func("Buffer::~Buffer()"),
        func("Document::close()"),
        func("main"),
    ];
    assert_eq!(
        text(&frames),
        "__libc_message | malloc_printerr | _int_free | free | Buffer::~Buffer"
    );
    // Windows: exception dispatch skipped, the throwing function named.
    let frames = [
        func("KiUserExceptionDispatcher"),
        func("RaiseException"),
        func("_CxxThrowException"),
        func("Config::load(std::string const &)"),
        func("wmain"),
    ];
    assert_eq!(text(&frames), "Config::load");
}

#[test]
fn when_every_frame_is_irrelevant_the_first_is_used() {
    let frames = [func("abort"), func("raise")];
    assert_eq!(text(&frames), "abort");
}

#[test]
fn sentinels_cut_the_frames_above_them() {
    let frames = [
        func("write"),
        func("myapp::crash_hook::{{closure}}"),
        func("_sigtramp"),
        func("Renderer::draw()"),
        func("main"),
    ];
    assert_eq!(text(&frames), "Renderer::draw");
}

#[test]
fn only_the_first_frames_are_read() {
    let mut frames: Vec<Frame> = (0..MAX_FRAMES).map(|_| func("memcpy")).collect();
    frames.push(func("too_deep"));
    let sig = text(&frames);
    assert!(!sig.contains("too_deep"), "{sig}");
    assert_eq!(
        SignatureRules::default().normalize_frames(&frames).len(),
        MAX_FRAMES
    );
}

#[test]
fn long_signatures_are_truncated() {
    let name = format!("memcpy_{}", "x".repeat(100));
    let frames: Vec<Frame> = (0..5).map(|_| func(&name)).collect();
    let sig = text(&frames);
    assert_eq!(sig.chars().count(), MAX_SIGNATURE_LENGTH);
    assert!(sig.ends_with("..."));
    assert!(sig.starts_with(&name));
}

#[test]
fn no_frames_give_a_stable_empty_signature() {
    let sig = signature(&[]);
    assert_eq!(sig.text, EMPTY_NO_FRAMES);
    assert_eq!(sig, signature(&[]));
    assert_eq!(sig.hash().len(), 64);
    assert_eq!(
        Signature::no_crashing_thread().text,
        "EMPTY: no crashing thread identified"
    );
    assert_ne!(Signature::no_crashing_thread().hash(), sig.hash());
}

#[test]
fn hash_is_hex_sha256_of_the_text() {
    assert_eq!(
        Signature::from_text("abc").hash(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let sig = signature(&[func("Parser::parse")]);
    assert_eq!(sig, Signature::from_text("Parser::parse"));
}

// ---- inlined calls -------------------------------------------------------------

#[test]
fn inlined_calls_come_before_their_physical_frame() {
    let mut outer = func("Engine::run()");
    outer.inlines = vec![
        InlineFrame {
            function: "Vec::index".to_owned(),
            file: Some("/src/vec.cc".to_owned()),
            line: Some(12),
        },
        InlineFrame {
            function: "Engine::step()".to_owned(),
            file: Some("/src/engine.cc".to_owned()),
            line: Some(40),
        },
    ];
    let frames = [func("memset"), outer, func("main")];
    assert_eq!(
        SignatureRules::default().normalize_frames(&frames),
        [
            "memset",
            "Vec::index",
            "Engine::step",
            "Engine::run",
            "main"
        ]
    );
    assert_eq!(text(&frames), "memset | Vec::index");
}

// ---- Rust ----------------------------------------------------------------------

/// A Rust frame with a `.rs` file, as dump_syms writes it.
fn rust(function: &str) -> Frame {
    Frame {
        file: Some("/rustc/abc/library/std/src/panicking.rs".to_owned()),
        line: Some(1),
        ..func(function)
    }
}

#[test]
fn rust_panics_are_named_by_the_panicking_call() {
    let frames = [
        func("__pthread_kill_implementation"),
        func("raise"),
        func("abort"),
        rust("std::sys::pal::unix::abort_internal"),
        rust("std::process::abort"),
        // A panic hook that writes the minidump: above the sentinel, ignored.
        rust("myapp::report::install::{{closure}}"),
        rust("std::panicking::rust_panic_with_hook"),
        rust("std::panicking::begin_panic_handler::{{closure}}"),
        rust(
            "std::sys::backtrace::__rust_end_short_backtrace<std::panicking::begin_panic_handler::{{closure}}, !>",
        ),
        rust("__rustc::rust_begin_unwind"),
        rust("core::panicking::panic_fmt"),
        rust("core::panicking::panic"),
        rust("core::option::unwrap_failed"),
        rust("crashy::parse_config::h0123456789abcdef"),
        rust("crashy::main"),
    ];
    assert_eq!(
        text(&frames),
        "core::option::unwrap_failed | crashy::parse_config"
    );
}

#[test]
fn rust_panics_without_a_sentinel_still_skip_the_machinery() {
    let frames = [
        func("abort"),
        rust("std::sys::unix::abort_internal"),
        rust("std::process::abort"),
        rust("rust_panic"),
        rust("__rust_start_panic"),
        rust("panic_abort::__rust_start_panic::abort"),
        rust("<usize as core::slice::index::SliceIndex<[T]>>::index"),
        rust("crashy::lookup"),
    ];
    // Index panics name the caller too.
    assert_eq!(
        text(&frames),
        "<usize as core::slice::index::SliceIndex<[T]>>::index | crashy::lookup"
    );
    let frames = [
        rust("__rust_alloc"),
        rust("alloc::alloc::handle_alloc_error"),
        rust("alloc::raw_vec::handle_error"),
        rust("alloc::raw_vec::RawVec<T,A>::grow_one"),
        rust("crashy::fill"),
    ];
    assert_eq!(text(&frames), "alloc::raw_vec::RawVec<T>::grow_one");
}

#[test]
fn rust_names_are_normalized() {
    // Hash suffix, with or without a `.rs` file.
    assert_eq!(
        normalized("crashy::main::h0123456789abcdef"),
        "crashy::main"
    );
    assert_eq!(
        SignatureRules::default().normalize_frames(&[rust("crashy::main::h0123456789abcdef")]),
        ["crashy::main"]
    );
    // Not a hash: fewer than 16 hex digits.
    assert_eq!(normalized("crashy::hadd"), "crashy::hadd");
    // Generic arguments collapse to <T>; trait impls keep their `as`.
    assert_eq!(
        SignatureRules::default()
            .normalize_frames(&[rust("alloc::vec::Vec<u8, alloc::alloc::Global>::push")]),
        ["alloc::vec::Vec<T>::push"]
    );
    assert_eq!(
        normalized("<crashy::Config as core::fmt::Debug>::fmt"),
        "<crashy::Config as core::fmt::Debug>::fmt"
    );
    assert_eq!(
        normalized("crashy::worker::{{closure}}::h00112233445566ff"),
        "crashy::worker::{{closure}}"
    );
}

// ---- C and C++ names -----------------------------------------------------------

#[test]
fn cpp_names_are_normalized_like_socorro() {
    let cases = [
        // Parameter lists and return types go.
        ("Parser::parse(char const*, int)", "Parser::parse"),
        (
            "static void * Allocator<MozJemallocBase>::malloc(unsigned __int64)",
            "Allocator<T>::malloc",
        ),
        // cv/ref qualifiers go; an `operator&` keeps its name.
        ("Foo::get() const", "Foo::get"),
        ("Foo::take() &&", "Foo::take"),
        ("Foo::operator&(Foo const&)", "Foo::operator&"),
        ("Foo::operator()(int) const", "Foo::operator()"),
        // Anonymous namespaces, both spellings, end up the same.
        (
            "`anonymous namespace'::CrashFunction",
            "(anonymous namespace)::CrashFunction",
        ),
        (
            "(anonymous namespace)::CrashFunction()",
            "(anonymous namespace)::CrashFunction",
        ),
        // Templates collapse, except `<name omitted>` and `<unknown in foo.dll>`.
        (
            "std::vector<int, std::allocator<int> >::push_back(int const&)",
            "std::vector<T>::push_back",
        ),
        ("<name omitted>", "<name omitted>"),
        ("<unknown in foo.dll>", "<unknown in foo.dll>"),
        // Lambda numbers and compiler clone suffixes go.
        (
            "Runner::Run()::$_12::operator()() const",
            "Runner::Run::$::operator()",
        ),
        (
            "(anonymous namespace)::MinidumpWriter::WriteProcFile(MDLocationDescriptor*, int, char const*) [clone .constprop.119]",
            "(anonymous namespace)::MinidumpWriter::WriteProcFile",
        ),
        ("Decoder::decode(int) [clone .cold.222]", "Decoder::decode"),
        // Whitespace is tidied.
        ("  Foo::bar\t ", "Foo::bar"),
    ];
    for (function, expected) in cases {
        assert_eq!(normalized(function), expected, "{function}");
    }
}

#[test]
fn names_that_normalize_to_nothing_fall_back_to_the_location() {
    let blank = Frame {
        function: Some("  ".to_owned()),
        ..nosym("libapp.so", "0x40")
    };
    let params_only = Frame {
        function: Some("(int)".to_owned()),
        ..nosym("libapp.so", "0x40")
    };
    assert_eq!(text(&[blank]), "libapp.so@0x40");
    assert_eq!(text(&[params_only]), "libapp.so@0x40");
}

#[test]
fn line_numbers_are_appended_where_listed() {
    let lists = RuleLists {
        line_numbers: "Interpreter::run$",
        ..RuleLists::EMBEDDED
    };
    let rules = SignatureRules::new(&lists).unwrap();
    let frame = Frame {
        line: Some(1234),
        ..func("Interpreter::run(Frame*)")
    };
    assert_eq!(rules.signature(&[frame]).text, "Interpreter::run:1234");
}

// ---- frames without symbols ----------------------------------------------------

#[test]
fn without_a_function_file_and_line_are_used() {
    let plain = Frame {
        file: Some("c:\\build\\src\\engine.cc".to_owned()),
        line: Some(58),
        ..frame(Some("app.exe"), Some("0x429e"), "0x40429e")
    };
    assert_eq!(text(&[plain]), "engine.cc#58");
    let vcs = Frame {
        file: Some(
            "hg:hg.mozilla.org/mozilla-central:memory/mozalloc/mozalloc.cpp:958d142c".to_owned(),
        ),
        line: Some(7),
        ..frame(Some("app"), Some("0x1"), "0x1")
    };
    assert_eq!(text(&[vcs]), "mozalloc.cpp#7");
}

#[test]
fn without_symbols_frames_are_module_and_offset() {
    // Different crashes in one module without symbols: different issues.
    let a = signature(&[
        nosym("libapp.so", "0x0000000000012a40"),
        nosym("libapp.so", "0x500"),
    ]);
    let b = signature(&[
        nosym("libapp.so", "0x0000000000013b00"),
        nosym("libapp.so", "0x500"),
    ]);
    assert_eq!(a.text, "libapp.so@0x12a40");
    assert_eq!(b.text, "libapp.so@0x13b00");
    assert_ne!(a.hash(), b.hash());
    // The same crash again (another process, another load address): the same issue.
    let mut again = [nosym("libapp.so", "0x12a40"), nosym("libapp.so", "0x500")];
    again[0].offset = Hex(0x55d0c0012a40);
    assert_eq!(signature(&again), a);
}

#[test]
fn system_libraries_without_symbols_are_trimmed_and_passed() {
    let frames = [
        nosym("ntdll.dll", "0x9f1c4"),
        nosym("NTDLL.DLL", "0x9f000"),
        nosym("KERNELBASE.dll", "0x3a9fc"),
        nosym("App.exe", "0x0001f00"),
        nosym("App.exe", "0x0002000"),
    ];
    assert_eq!(text(&frames), "ntdll.dll | kernelbase.dll | app.exe@0x1f00");
    let frames = [
        nosym("libc.so.6", "0x1c4507"),
        nosym("libpthread.so.0", "0x12000"),
        nosym("libapp.so", "0x289d"),
    ];
    assert_eq!(
        text(&frames),
        "libc.so.6 | libpthread.so.0 | libapp.so@0x289d"
    );
    let frames = [nosym("nvwgf2um.dll", "0x1234"), func("Renderer::draw()")];
    assert_eq!(text(&frames), "nvwgf2um.dll | Renderer::draw");
}

#[test]
fn frames_without_a_module_use_the_address() {
    // The address alone is the frame.
    let only = [frame(None, None, "0x00007f1234567890")];
    assert_eq!(text(&only), "@0x7f1234567890");
    // A random address (JIT code, a wild jump) differs in every process, so a
    // frame below it names the crash; a null call says so and names the caller.
    let frames = [frame(None, None, "0x7f1234567890"), func("Jit::enter()")];
    assert_eq!(text(&frames), "Jit::enter");
    let frames = [frame(None, None, "0x0"), func("Callbacks::fire()")];
    assert_eq!(text(&frames), "@0x0 | Callbacks::fire");
}

//! The `mayday-symbols` binary: `dump` on a real ELF with debug info, `upload` to a
//! real HTTP server speaking the symbols API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{head, post};
use bytes::Bytes;
use mayday_symbols::{SymbolId, SymbolStore, parse_sym_upload};
use mayday_symbols_cli::{DumpError, dump_sym, separate_debug_file};
use object_store::memory::InMemory;

const CLI: &str = env!("CARGO_BIN_EXE_mayday-symbols");

/// A case of the shared real-world test data (`../shared` beside the checkout).
fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(name)
}

/// Compiles a small Rust program with debug info into `dir`; returns its path.
fn tiny_binary(dir: &Path) -> PathBuf {
    let src = dir.join("tiny.rs");
    std::fs::write(
        &src,
        "#[inline(never)] fn mayday_tiny_function(x: u32) -> u32 { x.wrapping_mul(31) }\n\
         fn main() { println!(\"{}\", mayday_tiny_function(std::env::args().count() as u32)); }\n",
    )
    .unwrap();
    let out = dir.join("tiny");
    let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["-g", "-C", "opt-level=1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn dump_writes_module_and_func_records_for_an_elf_with_debug_info() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tiny_binary(dir.path());
    let bytes = std::fs::read(&bin).unwrap();

    let dumped = dump_sym(&bytes, &bin.to_string_lossy()).unwrap();
    assert_eq!(dumped.id.debug_file, "tiny");
    assert!(dumped.functions > 10, "{} FUNC records", dumped.functions);
    let text = String::from_utf8(dumped.sym.clone()).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!("MODULE Linux x86_64 {} tiny", dumped.id.debug_id)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FUNC ") && l.contains("mayday_tiny_function")),
        "no FUNC for the program's own function"
    );
    assert!(text.contains("tiny.rs"), "no FILE record for the source");

    // The CLI writes the same file.
    let out = dir.path().join("tiny.sym");
    let status = Command::new(CLI)
        .arg("dump")
        .arg(&bin)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), dumped.sym);

    // To stdout as well.
    let output = Command::new(CLI).arg("dump").arg(&bin).output().unwrap();
    assert!(output.status.success());
    assert!(output.stdout.starts_with(b"MODULE Linux x86_64 "));
}

/// A binary split the way distributions ship them (objcopy: the DWARF in
/// `.build-id/ab/cdef….debug`, the binary stripped of it): `dump` finds the debug
/// file by build id and writes the same functions as from the unstripped binary,
/// with the stripped binary's call frame information.
#[test]
fn dump_finds_a_separate_debug_file_by_build_id() {
    let dir = tempfile::tempdir().unwrap();
    let bin = tiny_binary(dir.path());
    let full = dump_sym(&std::fs::read(&bin).unwrap(), "tiny").unwrap();
    let objcopy = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("objcopy").args(args).status().unwrap();
        assert!(status.success(), "objcopy {args:?}");
    };
    let debug = dir.path().join("tiny.debug");
    objcopy(&["--only-keep-debug".as_ref(), bin.as_ref(), debug.as_ref()]);
    objcopy(&["--strip-debug".as_ref(), bin.as_ref()]);
    let stripped = dump_sym(&std::fs::read(&bin).unwrap(), "tiny").unwrap();
    assert_eq!(stripped.functions, 0, "stripped of its debug info");
    assert_eq!(stripped.id, full.id);
    let debug_dir = dir.path().join("debug");
    let at = separate_debug_file(&stripped, &debug_dir).expect("tiny has a build id");
    assert!(
        at.starts_with(debug_dir.join(".build-id")),
        "{}",
        at.display()
    );
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::rename(&debug, &at).unwrap();

    let dump = |extra: &[&std::ffi::OsStr]| {
        let output = Command::new(CLI)
            .arg("dump")
            .arg(&bin)
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, text, stderr) = dump(&["--debug-dir".as_ref(), debug_dir.as_ref()]);
    assert!(ok, "{stderr}");
    let full_text = String::from_utf8(full.sym.clone()).unwrap();
    assert_eq!(text.lines().next(), full_text.lines().next(), "MODULE line");
    let funcs = |t: &str| t.lines().filter(|l| l.starts_with("FUNC ")).count();
    assert_eq!(funcs(&text), full.functions);
    assert!(text.contains("mayday_tiny_function"));
    assert!(
        text.contains("\nSTACK CFI INIT "),
        "call frame information kept"
    );

    // The same file given by name.
    let (ok, by_name, stderr) = dump(&["--debug-file".as_ref(), at.as_ref()]);
    assert!(ok, "{stderr}");
    assert_eq!(by_name, text);

    // No debug file where it is looked for: exported symbols and CFI only.
    let (ok, text, _) = dump(&["--debug-dir".as_ref(), dir.path().join("none").as_ref()]);
    assert!(ok);
    assert_eq!(funcs(&text), 0);
    assert!(text.contains("\nSTACK CFI INIT "));

    // The debug file of another build is refused, naming both debug ids.
    let (ok, _, stderr) = dump(&["--debug-file".as_ref(), CLI.as_ref()]);
    assert!(!ok);
    assert!(
        stderr.contains("the debug file is for another build")
            && stderr.contains(&full.id.debug_id),
        "{stderr}"
    );
}

#[test]
fn dump_refuses_what_is_not_a_binary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let output = Command::new(CLI).arg("dump").arg(&file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not an ELF, Mach-O, PE or PDB file"),
        "{stderr}"
    );
    // A PE alone would be filed under the wrong name: its .pdb is what dumps name.
    let exe = dir.path().join("app.exe");
    std::fs::write(&exe, b"MZ\x90\x00 not much of a PE").unwrap();
    let output = Command::new(CLI).arg("dump").arg(&exe).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dump its .pdb instead"), "{stderr}");
    // A minidump is not a binary either.
    let dmp = case_dir("breakpad-win-x86-minidump2").join("minidump2.dmp");
    let err = dump_sym(&std::fs::read(dmp).unwrap(), "minidump2.dmp").unwrap_err();
    assert!(matches!(err, DumpError::UnknownFormat), "{err}");
    let output = Command::new(CLI)
        .arg("dump")
        .arg(dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(!output.status.success());
}

/// A stand-in for the server's symbols routes, with the same contract.
#[derive(Clone)]
struct FakeServer {
    store: SymbolStore,
    token: &'static str,
    posts: Arc<Mutex<Vec<String>>>,
}

async fn head_symbol(
    State(s): State<FakeServer>,
    axum::extract::Path((file, id, _name)): axum::extract::Path<(String, String, String)>,
) -> StatusCode {
    let Ok(id) = SymbolId::new(&file, &id) else {
        return StatusCode::BAD_REQUEST;
    };
    if s.store.contains(&id).await.unwrap() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn post_symbol(
    State(s): State<FakeServer>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", s.token)) {
        return (StatusCode::FORBIDDEN, "bad token".into());
    }
    assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
    match parse_sym_upload(body, q.get("debug_file").map(String::as_str)) {
        Ok((id, sym)) => {
            s.store.put(&id, sym).await.unwrap();
            s.posts.lock().unwrap().push(id.rel_path());
            (StatusCode::CREATED, id.rel_path())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn current_token(State(s): State<FakeServer>, headers: HeaderMap) -> (StatusCode, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", s.token)) {
        return (StatusCode::UNAUTHORIZED, "bad token".into());
    }
    (StatusCode::OK, r#"{"id":"tok_1","role":"uploader"}"#.into())
}

/// Starts the fake server on 127.0.0.1:0 in a background runtime.
fn start_server(server: FakeServer) -> String {
    let app = Router::new()
        .route("/symbols/{file}/{id}/{name}", head(head_symbol))
        .route("/api/v1/symbols", post(post_symbol))
        .route("/api/v1/token", axum::routing::get(current_token))
        .with_state(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

#[test]
fn upload_sends_what_the_server_lacks_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("build");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let bin = tiny_binary(&bin_dir);
    std::fs::remove_file(bin_dir.join("tiny.rs")).unwrap();
    std::fs::write(bin_dir.join("notes.txt"), "not a binary").unwrap();
    // A Breakpad tree whose MODULE names differ from the debug file names.
    let tree = case_dir("mozilla-firefox-linux-x64");

    let store = SymbolStore::new(Arc::new(InMemory::new()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The server already has libc.so.6.
    let libc = SymbolId::new("libc.so.6", "734106315D6CBE5258F3E9EFA35903480").unwrap();
    rt.block_on(store.put(
        &libc,
        Bytes::from_static(b"MODULE Linux x86_64 734106315D6CBE5258F3E9EFA35903480 libc-2.32.so\n"),
    ))
    .unwrap();
    let posts = Arc::new(Mutex::new(Vec::new()));
    let url = start_server(FakeServer {
        store: store.clone(),
        token: "s3cret",
        posts: posts.clone(),
    });

    let output = Command::new(CLI)
        .args(["upload", "--server", &url, "--token", "s3cret"])
        .arg(&bin_dir)
        .arg(tree.join("symbols"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("11 uploaded, 1 already present, 0 failed"),
        "{stdout}"
    );

    let tiny = dump_sym(&std::fs::read(&bin).unwrap(), "tiny").unwrap().id;
    let posted = posts.lock().unwrap().clone();
    assert!(posted.contains(&tiny.rel_path()), "{posted:?}");
    assert!(
        !posted.contains(&libc.rel_path()),
        "libc was already there: {posted:?}"
    );
    // Filed under the tree's debug file names, not the MODULE names.
    let glib = SymbolId::new("libglib-2.0.so.0", "B665F9B5488499AAFF530F67A2FD2FC30").unwrap();
    assert!(rt.block_on(store.contains(&glib)).unwrap());
    let stored = rt.block_on(store.get(&tiny)).unwrap().unwrap();
    assert!(stored.starts_with(b"MODULE Linux x86_64 "));

    // Everything is there now: a second run uploads nothing and succeeds.
    let output = Command::new(CLI)
        .args(["upload", "--server", &url, "--token", "s3cret"])
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 uploaded, 1 already present"));

    // A wrong token fails once, before any upload, with a clear message and a
    // non-zero exit.
    let output = Command::new(CLI)
        .args(["upload", "--force", "--server", &url, "--token", "wrong"])
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("refused the token").count(), 1, "{stderr}");

    // Nothing to upload is an error too (a CI script pointed at the wrong place).
    let output = Command::new(CLI)
        .args(["upload", "--server", &url, "--token", "s3cret"])
        .arg(dir.path().join("build/notes.txt"))
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn upload_fails_clearly_when_the_server_is_down() {
    let tree = case_dir("breakpad-linux-x64-inline").join("symbols");
    let output = Command::new(CLI)
        .args([
            "upload",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--timeout",
            "5",
        ])
        .arg(&tree)
        .output()
        .unwrap();
    // One error, from the check before any upload.
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("while connecting to http://127.0.0.1:9")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("uploaded"));
}

//! `mayday-symbols`: dump Breakpad symbols from binaries and upload them to Mayday.
//!
//! ```text
//! mayday-symbols dump target/debug/myapp -o myapp.sym
//! mayday-symbols upload target/release/ --server https://mayday.example --token $MAYDAY_TOKEN
//! ```
//!
//! An ELF binary without debug info of its own (a system library, a stripped
//! release build) is dumped with its separate debug file when one is found by build
//! id under `/usr/lib/debug/.build-id/` (`--debug-dir`), as Debian's `-dbg` packages
//! install them, or named with `dump --debug-file`. A Mach-O is dumped with the
//! dSYM bundle beside it (`<binary>.dSYM`), a universal one once per architecture
//! (`dump --arch` picks one). A Windows PE is dumped with its PDB (the name in its
//! debug directory, beside it) and a PDB with the PE beside it of the same debug id.
//!
//! Exit status: 0 when every symbol file found is on the server afterwards
//! (uploaded now or already there), 1 otherwise, with a message on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use mayday_symbols::{SymbolId, parse_sym_upload};
use mayday_symbols_cli::{
    DumpError, Dumped, ObjectKind, dsym_debug_file, dump_mach_o, dump_pe_pdb, dump_sym,
    dump_sym_split, pe_debug_file, separate_debug_file,
};

#[derive(Parser)]
#[command(
    name = "mayday-symbols",
    version,
    about = "Dump and upload Breakpad symbols for Mayday"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a Breakpad .sym for a binary or debug file (ELF/DWARF, Mach-O, PE/PDB).
    Dump {
        /// The binary or debug file.
        file: PathBuf,
        /// Write the .sym here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The binary's separate debug file: an ELF's `.debug` file, a Mach-O's dSYM
        /// DWARF file, a PE's PDB. Without it, an ELF binary without debug info has
        /// it looked up by build id under --debug-dir, a Mach-O in the dSYM beside
        /// it, a PE's PDB beside it.
        #[arg(long)]
        debug_file: Option<PathBuf>,
        /// The architecture to dump from a universal (fat) Mach-O, e.g. `x86_64`,
        /// `arm64`.
        #[arg(long)]
        arch: Option<String>,
        /// Where separate debug files are found by build id
        /// (`<dir>/.build-id/ab/cdef….debug`, as Debian's -dbg packages install them).
        #[arg(long, default_value = DEBUG_DIR)]
        debug_dir: PathBuf,
    },
    /// Find debug files and .sym files, and upload what the server lacks.
    Upload {
        /// Files or directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The Mayday server's base URL, e.g. `https://mayday.example`.
        #[arg(long, env = "MAYDAY_SERVER")]
        server: String,
        /// An API token with the `uploader` (or `admin`) role.
        #[arg(long, env = "MAYDAY_TOKEN", hide_env_values = true)]
        token: String,
        /// Upload even what the server says it already has.
        #[arg(long)]
        force: bool,
        /// Seconds to wait for each HTTP request.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Where separate debug files of binaries without debug info are found by
        /// build id.
        #[arg(long, default_value = DEBUG_DIR)]
        debug_dir: PathBuf,
    },
}

/// Where GDB and Linux distributions keep separate debug files.
const DEBUG_DIR: &str = "/usr/lib/debug";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dump {
            file,
            output,
            debug_file,
            arch,
            debug_dir,
        } => dump(
            &file,
            output.as_deref(),
            debug_file.as_deref(),
            &debug_dir,
            arch.as_deref(),
        ),
        Command::Upload {
            paths,
            server,
            token,
            force,
            timeout,
            debug_dir,
        } => upload(
            &paths,
            &server,
            &token,
            force,
            Duration::from_secs(timeout),
            &debug_dir,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mayday-symbols: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `path`, naming it in the error.
fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("while reading {}", path.display()))
}

/// Dumps `file` (whose content is `bytes`) with its separate debug file: `debug_file`
/// if given, else the one found where its format's tools put it (by build id under
/// `debug_dir` for an ELF without debug info, the dSYM beside a Mach-O, the PDB beside
/// a PE or the PE beside a PDB). One `.sym` per architecture of a universal Mach-O,
/// or the one of `arch`.
fn dump_with_debug(
    file: &Path,
    bytes: &[u8],
    debug_file: Option<&Path>,
    debug_dir: &Path,
    arch: Option<&str>,
) -> anyhow::Result<Vec<Dumped>> {
    let name = file.to_string_lossy();
    let kind = ObjectKind::detect(bytes);
    let while_dumping = || format!("while dumping {}", file.display());
    if arch.is_some() && !matches!(kind, Some(ObjectKind::MachO | ObjectKind::FatMachO)) {
        bail!("{}: --arch is for Mach-O files", file.display());
    }
    match kind {
        Some(ObjectKind::MachO | ObjectKind::FatMachO) => {
            let dsym = match debug_file {
                Some(path) => Some(read(path)?),
                None => match dsym_debug_file(file).filter(|p| p.is_file()) {
                    Some(path) => Some(read(&path)?),
                    None => None,
                },
            };
            return dump_mach_o(bytes, dsym.as_deref(), &name, arch).with_context(while_dumping);
        }
        Some(ObjectKind::Pe) => {
            // Filed under the PDB name the PE records, which is what minidumps name.
            let recorded = pe_debug_file(bytes);
            let pdb = match (debug_file, &recorded) {
                (Some(path), _) => path.to_owned(),
                (None, Some(recorded)) if file.with_file_name(recorded).is_file() => {
                    file.with_file_name(recorded)
                }
                (None, _) => return Err(DumpError::PeWithoutPdb).with_context(while_dumping),
            };
            let pdb_name = recorded.unwrap_or_else(|| pdb.to_string_lossy().into_owned());
            let dumped = dump_pe_pdb(bytes, &name, &read(&pdb)?, &pdb_name).with_context(|| {
                format!("while dumping {} with {}", file.display(), pdb.display())
            })?;
            return Ok(vec![dumped]);
        }
        Some(ObjectKind::Pdb) => {
            if let Some(pe) = debug_file {
                let dumped = dump_pe_pdb(&read(pe)?, &pe.to_string_lossy(), bytes, &name)
                    .with_context(|| {
                        format!("while dumping {} with {}", file.display(), pe.display())
                    })?;
                return Ok(vec![dumped]);
            }
            // The PE of the same build beside it, as the reference dump_syms finds it.
            for pe in ["dll", "exe"].map(|ext| file.with_extension(ext)) {
                if pe.is_file()
                    && let Ok(paired) =
                        dump_pe_pdb(&read(&pe)?, &pe.to_string_lossy(), bytes, &name)
                {
                    return Ok(vec![paired]);
                }
            }
            return Ok(vec![dump_sym(bytes, &name).with_context(while_dumping)?]);
        }
        Some(ObjectKind::Elf) | None => {}
    }
    let split = |debug: &Path| -> anyhow::Result<Dumped> {
        dump_sym_split(bytes, &read(debug)?, &name)
            .with_context(|| format!("while dumping {} with {}", file.display(), debug.display()))
    };
    if let Some(debug) = debug_file {
        return split(debug).map(|d| vec![d]);
    }
    let dumped = dump_sym(bytes, &name).with_context(while_dumping)?;
    if dumped.functions == 0
        && let Some(debug) = separate_debug_file(&dumped, debug_dir).filter(|p| p.is_file())
    {
        return split(&debug).map(|d| vec![d]);
    }
    Ok(vec![dumped])
}

fn dump(
    file: &Path,
    output: Option<&Path>,
    debug_file: Option<&Path>,
    debug_dir: &Path,
    arch: Option<&str>,
) -> anyhow::Result<()> {
    let bytes = read(file)?;
    let mut dumped = dump_with_debug(file, &bytes, debug_file, debug_dir, arch)?;
    if dumped.len() > 1 {
        let archs = dumped.iter().map(|d| d.arch.clone()).collect();
        return Err(DumpError::Universal { archs })
            .with_context(|| format!("while dumping {}", file.display()));
    }
    let Some(dumped) = dumped.pop() else {
        bail!("{}: no object to dump", file.display());
    };
    match output {
        Some(path) => std::fs::write(path, &dumped.sym)
            .with_context(|| format!("while writing {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(&dumped.sym)
            .context("while writing to stdout")?,
    }
    Ok(())
}

/// One symbol file ready to upload.
struct Candidate {
    source: PathBuf,
    id: SymbolId,
    sym: Bytes,
}

/// What the search found.
#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    /// Binaries without debug info and files of other kinds.
    skipped: Vec<(PathBuf, String)>,
    /// Files that look like symbols or binaries but could not be read.
    failed: Vec<(PathBuf, String)>,
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("while reading {}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("while listing {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            // Symlinked directories are not followed (cycles); symlinked files are.
            if entry.is_symlink() && entry.is_dir() {
                continue;
            }
            walk(&entry, out)?;
        }
    } else if meta.is_file() {
        out.push(path.to_owned());
    }
    Ok(())
}

/// The debug file name a `.sym` in a Breakpad tree is filed under:
/// `<debug_file>/<DEBUG_ID>/<name>.sym` gives `debug_file` when the directory
/// above is the debug id on its MODULE line. (The MODULE line's name can differ
/// from what the minidump records, e.g. `libc-2.32.so` vs `libc.so.6`.)
fn tree_debug_file(path: &Path, module_debug_id: &str) -> Option<String> {
    let id_dir = path.parent()?;
    let file_dir = id_dir.parent()?;
    let id_name = id_dir.file_name()?.to_str()?;
    if id_name.eq_ignore_ascii_case(module_debug_id) {
        Some(file_dir.file_name()?.to_str()?.to_owned())
    } else {
        None
    }
}

fn classify(path: &Path, found: &mut Found, debug_dir: &Path) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            found.failed.push((path.to_owned(), e.to_string()));
            return;
        }
    };
    if path.extension().is_some_and(|e| e == "sym") || bytes.starts_with(b"MODULE ") {
        let module = match mayday_symbols::check_sym(&bytes) {
            Ok(m) => m,
            Err(e) => {
                found.failed.push((path.to_owned(), e.to_string()));
                return;
            }
        };
        let hint = tree_debug_file(path, &module.debug_id);
        match parse_sym_upload(Bytes::from(bytes), hint.as_deref()) {
            Ok((id, sym)) => found.candidates.push(Candidate {
                source: path.to_owned(),
                id,
                sym,
            }),
            Err(e) => found.failed.push((path.to_owned(), e.to_string())),
        }
        return;
    }
    if ObjectKind::detect(&bytes).is_none() {
        found
            .skipped
            .push((path.to_owned(), "not a binary or .sym".into()));
        return;
    }
    match dump_with_debug(path, &bytes, None, debug_dir, None) {
        // One per architecture of a universal Mach-O.
        Ok(dumped) => {
            for d in dumped {
                if d.functions == 0 {
                    found
                        .skipped
                        .push((path.to_owned(), format!("no debug info ({})", d.arch)));
                } else {
                    found.candidates.push(Candidate {
                        source: path.to_owned(),
                        id: d.id,
                        sym: Bytes::from(d.sym),
                    });
                }
            }
        }
        // Object files the library cannot read (e.g. a resource DLL, a PE without its PDB).
        Err(e) => found.skipped.push((path.to_owned(), format!("{e:#}"))),
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Whether the server already has `id`: HEAD on the Breakpad layout route.
fn server_has(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    id: &SymbolId,
) -> anyhow::Result<bool> {
    let url = format!("{base}/symbols/{}", id.rel_path());
    let resp = client
        .head(&url)
        .bearer_auth(token)
        .send()
        .with_context(|| format!("while asking {url}"))?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        reqwest::StatusCode::NOT_FOUND => Ok(false),
        s => bail!("HEAD {url}: server answered {s}"),
    }
}

/// Checks once, before any upload, that the server answers and takes `token`
/// for uploading (`GET /api/v1/token`): one clear error instead of one a file.
fn check_token(client: &reqwest::blocking::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let url = format!("{base}/api/v1/token");
    let resp = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .with_context(|| format!("while connecting to {base}"))?;
    let status = resp.status();
    match status {
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            bail!("the server refused the token ({status})")
        }
        s if !s.is_success() => bail!("{url}: the server answered {status}"),
        _ => {}
    }
    let text = resp
        .text()
        .with_context(|| format!("while reading the answer of {url}"))?;
    let answer: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("while reading the answer of {url}"))?;
    match answer["role"].as_str() {
        Some("uploader" | "admin") => Ok(()),
        Some(role) => {
            bail!("the token's role is {role:?}: uploading symbols needs uploader or admin")
        }
        None => bail!("{url}: the answer names no role"),
    }
}

fn upload_one(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    c: &Candidate,
) -> anyhow::Result<()> {
    let body = gzip(&c.sym).context("while compressing")?;
    let url = format!("{base}/api/v1/symbols");
    let resp = client
        .post(&url)
        .query(&[("debug_file", c.id.debug_file.as_str())])
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .send()
        .with_context(|| format!("while posting to {url}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().unwrap_or_default();
    let text = text.trim();
    match status {
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            bail!("server refused the token ({status}): it needs the uploader or admin role")
        }
        _ => bail!("server answered {status}: {text}"),
    }
}

fn upload(
    paths: &[PathBuf],
    server: &str,
    token: &str,
    force: bool,
    timeout: Duration,
    debug_dir: &Path,
) -> anyhow::Result<()> {
    let base = server.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--server {server:?} is not an http:// or https:// URL");
    }
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files)?;
    }
    let mut found = Found::default();
    let pb = indicatif::ProgressBar::new(files.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.set_message("scanning");
    for file in &files {
        pb.set_prefix(file.display().to_string());
        classify(file, &mut found, debug_dir);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // The same symbol file may be found twice (a binary and its .sym, a PE and its
    // PDB, a Mach-O and its dSYM): once is enough, the fullest (e.g. the binary merged
    // with its debug file rather than the debug file alone).
    found
        .candidates
        .sort_by(|a, b| a.id.cmp(&b.id).then(b.sym.len().cmp(&a.sym.len())));
    found.candidates.dedup_by(|a, b| a.id == b.id);

    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("mayday-symbols/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("while building the HTTP client")?;
    if !found.candidates.is_empty() {
        check_token(&client, base, token)?;
    }
    let pb = indicatif::ProgressBar::new(found.candidates.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.set_message("uploading");
    let (mut uploaded, mut present, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for c in &found.candidates {
        let result = if force {
            Ok(false)
        } else {
            server_has(&client, base, token, &c.id)
        };
        match result.and_then(|has| {
            if has {
                Ok(false)
            } else {
                upload_one(&client, base, token, c).map(|()| true)
            }
        }) {
            Ok(true) => uploaded.push(c),
            Ok(false) => present.push(c),
            Err(e) => {
                pb.println(format!("failed: {}: {e:#}", c.source.display()));
                failed.push((c, e));
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();

    for c in &uploaded {
        println!("uploaded  {}  ({})", c.id.rel_path(), c.source.display());
    }
    for c in &present {
        println!("present   {}  ({})", c.id.rel_path(), c.source.display());
    }
    for (path, why) in &found.skipped {
        println!("skipped   {}: {why}", path.display());
    }
    for (path, why) in &found.failed {
        println!("unreadable {}: {why}", path.display());
    }
    for (c, e) in &failed {
        println!(
            "failed    {}  ({}): {e:#}",
            c.id.rel_path(),
            c.source.display()
        );
    }
    println!(
        "{} uploaded, {} already present, {} failed, {} unreadable, {} skipped",
        uploaded.len(),
        present.len(),
        failed.len(),
        found.failed.len(),
        found.skipped.len()
    );
    if !failed.is_empty() {
        bail!("{} symbol file(s) could not be uploaded", failed.len());
    }
    if !found.failed.is_empty() {
        bail!(
            "{} file(s) could not be read as symbols",
            found.failed.len()
        );
    }
    if found.candidates.is_empty() {
        bail!("no debug files or .sym files found in the given paths");
    }
    Ok(())
}

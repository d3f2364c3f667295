//! Checking symbol uploads before anything is written: a single `.sym` (plain or
//! gzip) or a Tecken-style zip of `<debug_file>/<debug_id>/<file>.sym`.

use std::io::Read;

use bytes::Bytes;
use serde::Deserialize;

use crate::key::{KeyError, SymbolId};

/// Why an upload was refused. Every variant is the uploader's fault (HTTP 400 or,
/// for the size limits, 413); nothing is stored when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body says gzip but does not decompress.
    #[error("gzip body does not decompress: {0}")]
    Gzip(#[source] std::io::Error),
    /// A decompressed file or the whole zip is larger than allowed.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large (`"symbol file"`, `"zip entry <name>"`, `"zip contents"`).
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not a Breakpad `.sym` file.
    #[error("not a Breakpad symbol file: {0}")]
    NotSym(String),
    /// The debug file name or debug id cannot be a store key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The zip archive is unreadable.
    #[error("not a readable zip archive: {0}")]
    Zip(String),
    /// The zip has more entries than allowed.
    #[error("zip has {count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries in the archive.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A zip entry's path is not `<debug_file>/<debug_id>/<file>.sym` or tries to
    /// leave its directory (`..`, absolute, backslashes).
    #[error("zip entry path {0:?} is not <debug_file>/<debug_id>/<file>.sym")]
    BadPath(String),
    /// The debug id in the zip path differs from the one on the MODULE line.
    #[error("zip entry {path:?} has debug id {module_id} on its MODULE line")]
    IdMismatch {
        /// The entry's path.
        path: String,
        /// The debug id on the MODULE line.
        module_id: String,
    },
    /// The zip holds no `.sym` file.
    #[error("zip holds no .sym file")]
    EmptyZip,
}

impl UploadError {
    /// A stable short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            UploadError::Gzip(_) => "bad_gzip",
            UploadError::TooLarge { .. } => "too_large",
            UploadError::NotSym(_) => "not_a_sym",
            UploadError::Key(KeyError::DebugFile(_)) => "bad_debug_file",
            UploadError::Key(KeyError::DebugId(_)) => "bad_debug_id",
            UploadError::Zip(_) => "bad_zip",
            UploadError::TooManyEntries { .. } => "too_many_entries",
            UploadError::BadPath(_) => "bad_path",
            UploadError::IdMismatch { .. } => "id_mismatch",
            UploadError::EmptyZip => "empty_zip",
        }
    }

    /// Whether this is a size limit (HTTP 413) rather than malformed input (400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            UploadError::TooLarge { .. } | UploadError::TooManyEntries { .. }
        )
    }
}

/// Limits on what an upload may decompress to. A section of the server's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UploadLimits {
    /// Largest single `.sym` file after decompression. Default: 1 GiB.
    pub max_file_bytes: u64,
    /// Largest sum of all `.sym` files in one zip after decompression. Default: 2 GiB.
    pub max_total_bytes: u64,
    /// Most entries in one zip. Default: 10 000.
    pub max_entries: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_file_bytes: 1 << 30,
            max_total_bytes: 2 << 30,
            max_entries: 10_000,
        }
    }
}

/// The parsed `MODULE <os> <arch> <debug_id> <name>` line of a `.sym` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLine {
    /// Operating system (`Linux`, `windows`, `mac`, ...).
    pub os: String,
    /// CPU architecture (`x86_64`, `x86`, `arm64`, ...).
    pub arch: String,
    /// Debug id as written.
    pub debug_id: String,
    /// The module name on the line (may differ from the minidump's debug file name).
    pub name: String,
}

/// Checks `sym` is a Breakpad text symbol file and returns its MODULE line: the
/// first line is `MODULE os arch id name`, and every other line is a known record
/// (`FILE`, `FUNC`, `PUBLIC`, `STACK`, `INFO`, `INLINE`, `INLINE_ORIGIN`) or a line
/// record (hex address first). Cheap: one pass, no allocation per line.
pub fn check_sym(sym: &[u8]) -> Result<ModuleLine, UploadError> {
    let mut lines = sym.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let first = std::str::from_utf8(first.strip_suffix(b"\r").unwrap_or(first))
        .map_err(|_| UploadError::NotSym("MODULE line is not UTF-8".into()))?;
    let mut parts = first.splitn(5, ' ');
    let (Some("MODULE"), Some(os), Some(arch), Some(debug_id), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(UploadError::NotSym(
            "first line is not `MODULE <os> <arch> <debug_id> <name>`".into(),
        ));
    };
    const RECORDS: [&[u8]; 7] = [
        b"FILE ",
        b"FUNC ",
        b"PUBLIC ",
        b"STACK ",
        b"INFO ",
        b"INLINE ",
        b"INLINE_ORIGIN ",
    ];
    for (n, line) in lines.enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let ok = line.is_empty()
            || line[0].is_ascii_hexdigit()
            || RECORDS.iter().any(|r| line.starts_with(r));
        if !ok {
            let shown = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
            return Err(UploadError::NotSym(format!(
                "line {} is not a symbol record: {shown:?}",
                n + 2
            )));
        }
    }
    Ok(ModuleLine {
        os: os.to_owned(),
        arch: arch.to_owned(),
        debug_id: debug_id.to_owned(),
        name: name.trim().to_owned(),
    })
}

/// Reads at most `limit` bytes of `reader`, refusing more.
fn read_limited(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            what.to_owned(),
        ));
    }
    Ok(out)
}

fn too_large(what: &str, limit: u64) -> UploadError {
    UploadError::TooLarge {
        what: what.to_owned(),
        limit,
    }
}

/// Checks one uploaded `.sym` (plain or gzip, detected by its magic bytes) with the
/// default [`UploadLimits`]; see [`parse_sym_upload_with`].
pub fn parse_sym_upload(
    bytes: Bytes,
    debug_file_hint: Option<&str>,
) -> Result<(SymbolId, Bytes), UploadError> {
    parse_sym_upload_with(bytes, debug_file_hint, &UploadLimits::default())
}

/// Checks one uploaded `.sym` (plain or gzip) and says where it goes: the debug id
/// from its MODULE line, the debug file from `debug_file_hint` (the name the
/// minidump records, e.g. `libc.so.6`) or else the MODULE line's name. Returns the
/// decompressed file.
pub fn parse_sym_upload_with(
    bytes: Bytes,
    debug_file_hint: Option<&str>,
    limits: &UploadLimits,
) -> Result<(SymbolId, Bytes), UploadError> {
    let sym = if bytes.starts_with(&[0x1f, 0x8b]) {
        let decoded = read_limited(
            flate2::read::MultiGzDecoder::new(&bytes[..]),
            limits.max_file_bytes,
            "symbol file",
        );
        match decoded {
            Ok(sym) => Bytes::from(sym),
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(too_large("symbol file", limits.max_file_bytes));
            }
            Err(e) => return Err(UploadError::Gzip(e)),
        }
    } else {
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(too_large("symbol file", limits.max_file_bytes));
        }
        bytes
    };
    let module = check_sym(&sym)?;
    let debug_file = debug_file_hint.unwrap_or(&module.name);
    let id = SymbolId::new(debug_file, &module.debug_id)?;
    Ok((id, sym))
}

/// Checks a Tecken-style zip of `<debug_file>/<debug_id>/<file>.sym` entries with
/// the default [`UploadLimits`]; see [`read_symbol_zip_with`].
pub fn read_symbol_zip(bytes: Bytes) -> Result<Vec<(SymbolId, Bytes)>, UploadError> {
    read_symbol_zip_with(bytes, &UploadLimits::default())
}

/// Checks a zip of `<debug_file>/<debug_id>/<file>.sym` entries (Tecken's upload
/// format) and returns every symbol file in it, or refuses the whole zip: a path
/// that is not exactly three safe components, a debug id that is not hex or differs
/// from the MODULE line, an entry that is not a `.sym`, more entries or more
/// decompressed bytes than `limits` allow. Entries not ending in `.sym` (Tecken
/// also accepts binaries) are skipped; directories are ignored.
pub fn read_symbol_zip_with(
    bytes: Bytes,
    limits: &UploadLimits,
) -> Result<Vec<(SymbolId, Bytes)>, UploadError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| UploadError::Zip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(UploadError::TooManyEntries {
            count: archive.len(),
            limit: limits.max_entries,
        });
    }
    let mut total: u64 = 0;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| UploadError::Zip(e.to_string()))?;
        let path = entry.name().to_owned();
        let parts: Vec<&str> = path.split('/').collect();
        let traversal = path.starts_with('/')
            || path.contains('\\')
            || path.contains('\0')
            || parts.iter().any(|p| *p == ".." || *p == ".")
            || entry.enclosed_name().is_none();
        if traversal {
            return Err(UploadError::BadPath(path));
        }
        if entry.is_dir() {
            continue;
        }
        if !path.ends_with(".sym") {
            continue;
        }
        let [debug_file, debug_id, file] = parts[..] else {
            return Err(UploadError::BadPath(path));
        };
        let id = SymbolId::new(debug_file, debug_id)?;
        if file.is_empty() {
            return Err(UploadError::BadPath(path));
        }
        let what = format!("zip entry {path}");
        // The declared size may lie; the read below enforces the limits for real.
        if entry.size() > limits.max_file_bytes {
            return Err(too_large(&what, limits.max_file_bytes));
        }
        let room = limits.max_total_bytes.saturating_sub(total);
        let limit = limits.max_file_bytes.min(room);
        let sym = match read_limited(entry, limit, &what) {
            Ok(sym) => sym,
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(if limit < limits.max_file_bytes {
                    too_large("zip contents", limits.max_total_bytes)
                } else {
                    too_large(&what, limits.max_file_bytes)
                });
            }
            Err(e) => return Err(UploadError::Zip(format!("{path}: {e}"))),
        };
        total += sym.len() as u64;
        let module = check_sym(&sym)?;
        if !module.debug_id.eq_ignore_ascii_case(&id.debug_id) {
            return Err(UploadError::IdMismatch {
                path,
                module_id: module.debug_id,
            });
        }
        out.push((id, Bytes::from(sym)));
    }
    if out.is_empty() {
        return Err(UploadError::EmptyZip);
    }
    Ok(out)
}

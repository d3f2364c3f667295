//! Writing Breakpad `.sym` files from binaries and debug files, with dump_syms.

use std::path::{Path, PathBuf};

use dump_syms::object_info::ObjectInfo;
use dump_syms::platform::Platform;

use mayday_symbols::{KeyError, SymbolId};

/// Why a file could not be turned into a `.sym`.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Not an ELF, Mach-O, PE or PDB file.
    #[error("not an ELF, Mach-O, PE or PDB file")]
    UnknownFormat,
    /// A Windows executable or DLL: its symbols are in the matching `.pdb`, which is
    /// what minidumps name (dumping the PE alone would file it under the wrong name).
    #[error("a PE file: dump its .pdb instead")]
    PeWithoutPdb,
    /// dump_syms could not read the file.
    #[error("dump_syms: {0}")]
    Dump(String),
    /// The module's name or debug id cannot be a store key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A separate debug file that belongs to another build.
    #[error("the debug file is for another build (debug id {debug}, the binary's is {binary})")]
    DebugFileMismatch {
        /// The binary's debug id.
        binary: String,
        /// The debug file's.
        debug: String,
    },
}

/// The object formats [`dump_sym`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// ELF (Linux, Android), with DWARF when built with debug info.
    Elf,
    /// Mach-O (macOS, iOS), a single architecture.
    MachO,
    /// Windows executable or DLL.
    Pe,
    /// Windows program database.
    Pdb,
}

impl ObjectKind {
    /// The kind of object `bytes` holds, by magic bytes.
    pub fn detect(bytes: &[u8]) -> Option<ObjectKind> {
        const MACHO: [[u8; 4]; 4] = [
            [0xfe, 0xed, 0xfa, 0xce],
            [0xfe, 0xed, 0xfa, 0xcf],
            [0xce, 0xfa, 0xed, 0xfe],
            [0xcf, 0xfa, 0xed, 0xfe],
        ];
        if bytes.starts_with(b"\x7fELF") {
            Some(ObjectKind::Elf)
        } else if MACHO.iter().any(|m| bytes.starts_with(m)) {
            Some(ObjectKind::MachO)
        } else if bytes.starts_with(b"Microsoft C/C++ MSF 7.00\r\n\x1aDS") {
            Some(ObjectKind::Pdb)
        } else if bytes.starts_with(b"MZ") {
            Some(ObjectKind::Pe)
        } else {
            None
        }
    }
}

/// A `.sym` file made by [`dump_sym`].
#[derive(Debug, Clone)]
pub struct Dumped {
    /// Where it goes in the store: the debug file name and the debug id.
    pub id: SymbolId,
    /// The `.sym` text.
    pub sym: Vec<u8>,
    /// Number of FUNC records (0 means no debug info, only exported symbols).
    pub functions: usize,
}

/// Dumps `bytes` (an ELF, single-architecture Mach-O or PDB file named `file_name`)
/// to a Breakpad `.sym` with inline records. PE files are refused
/// ([`DumpError::PeWithoutPdb`]). The store id uses
/// `file_name`'s base name, which is the name a minidump records for an ELF or
/// Mach-O module; for PDBs it is the PDB's name.
pub fn dump_sym(bytes: &[u8], file_name: &str) -> Result<Dumped, DumpError> {
    let name = base_name(file_name);
    finish(object_info(bytes, name)?, name)
}

/// Dumps an ELF binary whose debug information is in a separate file (`debug`, as
/// distributions ship it in `-dbg` packages, see [`separate_debug_file`]): function
/// and line records from the debug file, call frame information and exported
/// symbols from the binary, filed under the binary's name.
pub fn dump_sym_split(bytes: &[u8], debug: &[u8], file_name: &str) -> Result<Dumped, DumpError> {
    let name = base_name(file_name);
    let binary = object_info(bytes, name)?;
    let debug = object_info(debug, name)?;
    if binary.get_debug_id() != debug.get_debug_id() {
        return Err(DumpError::DebugFileMismatch {
            binary: binary.get_debug_id().to_owned(),
            debug: debug.get_debug_id().to_owned(),
        });
    }
    let merged = ObjectInfo::merge(binary, debug).map_err(|e| DumpError::Dump(format!("{e:#}")))?;
    finish(merged, name)
}

/// Where GDB's convention puts the separate debug file of the ELF binary `dumped` was
/// made from, under `debug_dir` (usually `/usr/lib/debug`):
/// `.build-id/<first two hex digits of the build id>/<the rest>.debug`. `None` when
/// the binary has no build id.
pub fn separate_debug_file(dumped: &Dumped, debug_dir: &Path) -> Option<PathBuf> {
    let text = std::str::from_utf8(&dumped.sym).ok()?;
    let code_id = text
        .lines()
        .take_while(|l| l.starts_with("MODULE ") || l.starts_with("INFO "))
        .find_map(|l| l.strip_prefix("INFO CODE_ID "))?
        .split_whitespace()
        .next()?
        .to_ascii_lowercase();
    if code_id.len() < 3 || !code_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (dir, rest) = code_id.split_at(2);
    Some(
        debug_dir
            .join(".build-id")
            .join(dir)
            .join(format!("{rest}.debug")),
    )
}

/// The last component of a Unix or Windows path.
fn base_name(file_name: &str) -> &str {
    file_name.rsplit(['/', '\\']).next().unwrap_or(file_name)
}

fn object_info(bytes: &[u8], name: &str) -> Result<ObjectInfo, DumpError> {
    let kind = ObjectKind::detect(bytes).ok_or(DumpError::UnknownFormat)?;
    if kind == ObjectKind::Pe {
        return Err(DumpError::PeWithoutPdb);
    }
    let platform = match kind {
        ObjectKind::Elf => Platform::Linux,
        ObjectKind::MachO => Platform::Mac,
        ObjectKind::Pe | ObjectKind::Pdb => Platform::Win,
    };
    // `from_elf` parses any single object (symbolic's Object::parse), not only ELF;
    // the platform decides how source paths are canonicalized.
    ObjectInfo::from_elf(bytes, name, platform, None, true)
        .map_err(|e| DumpError::Dump(format!("{e:#}")))
}

fn finish(info: ObjectInfo, name: &str) -> Result<Dumped, DumpError> {
    let mut sym = Vec::new();
    info.dump(&mut sym)
        .map_err(|e| DumpError::Dump(format!("{e:#}")))?;
    // ELF and Mach-O minidump modules are named by their file name; a PDB by its own.
    let id = SymbolId::new(name, info.get_debug_id())?;
    let functions = sym
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"FUNC "))
        .count();
    Ok(Dumped { id, sym, functions })
}

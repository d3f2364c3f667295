//! Writing Breakpad `.sym` files from binaries and debug files, with dump_syms.

use std::path::{Path, PathBuf};

use dump_syms::object_info::ObjectInfo;
use dump_syms::platform::Platform;
use symbolic::debuginfo::{Archive, FileFormat, Object};

use mayday_symbols::{KeyError, SymbolId};

/// Why a file could not be turned into a `.sym`.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Not an ELF, Mach-O, PE or PDB file.
    #[error("not an ELF, Mach-O, PE or PDB file")]
    UnknownFormat,
    /// A Windows executable or DLL without its `.pdb`: the symbols are in the PDB, which
    /// is what minidumps name (dumping the PE alone would file it under the wrong name).
    #[error("a PE file without its .pdb: dump its .pdb instead, or name it with --debug-file")]
    PeWithoutPdb,
    /// A universal (fat) Mach-O holds one object per architecture; one `.sym` holds one.
    #[error("a universal (fat) Mach-O with {}: choose one with --arch", .archs.join(", "))]
    Universal {
        /// The architectures it holds, e.g. `x86_64`, `arm64`.
        archs: Vec<String>,
    },
    /// The architecture asked for is not in the Mach-O.
    #[error("no {arch} in this Mach-O (it holds {})", .archs.join(", "))]
    NoSuchArch {
        /// The architecture asked for.
        arch: String,
        /// The ones it holds.
        archs: Vec<String>,
    },
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
    /// Mach-O (macOS, iOS), a single architecture: a binary or its dSYM's DWARF file.
    MachO,
    /// A universal (fat) Mach-O: one Mach-O per architecture.
    FatMachO,
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
        // A fat header is big-endian: the magic, then the number of architectures.
        // Java class files share the magic but have their version (45 and up) there.
        let fat = (bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
            || bytes.starts_with(&[0xca, 0xfe, 0xba, 0xbf]))
            && bytes
                .get(4..8)
                .is_some_and(|n| (1..45).contains(&u32::from_be_bytes([n[0], n[1], n[2], n[3]])));
        if bytes.starts_with(b"\x7fELF") {
            Some(ObjectKind::Elf)
        } else if MACHO.iter().any(|m| bytes.starts_with(m)) {
            Some(ObjectKind::MachO)
        } else if fat {
            Some(ObjectKind::FatMachO)
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
    /// The CPU architecture on the MODULE line, e.g. `x86_64`, `arm64`.
    pub arch: String,
    /// The `.sym` text.
    pub sym: Vec<u8>,
    /// Number of FUNC records (0 means no debug info, only exported symbols).
    pub functions: usize,
}

/// Dumps `bytes` (an ELF, single-architecture Mach-O or PDB file named `file_name`)
/// to a Breakpad `.sym` with inline records. PE files are refused
/// ([`DumpError::PeWithoutPdb`], see [`dump_pe_pdb`]), universal Mach-Os too
/// ([`DumpError::Universal`], see [`dump_mach_o`]). The store id uses
/// `file_name`'s base name, which is the name a minidump records for an ELF or
/// Mach-O module; for PDBs it is the PDB's name.
pub fn dump_sym(bytes: &[u8], file_name: &str) -> Result<Dumped, DumpError> {
    let name = base_name(file_name);
    finish(object_info(bytes, name)?, name)
}

/// Dumps a binary whose debug information is in a separate file (`debug`): an ELF
/// binary with its `.debug` file, as distributions ship them in `-dbg` packages (see
/// [`separate_debug_file`]), or a single-architecture Mach-O with its dSYM's DWARF
/// file (see [`dsym_debug_file`]). Function and line records come from the debug
/// file, call frame information and exported symbols from the binary; the `.sym`
/// is filed under the binary's name.
pub fn dump_sym_split(bytes: &[u8], debug: &[u8], file_name: &str) -> Result<Dumped, DumpError> {
    let name = base_name(file_name);
    let binary = object_info(bytes, name)?;
    let debug = object_info(debug, name)?;
    finish(merge(binary, debug)?, name)
}

/// Dumps every architecture of a Mach-O (one for a single-architecture file, one per
/// architecture for a universal one), or only `arch` (an architecture name as on the
/// MODULE line, e.g. `x86_64`, `arm64`) when given. With `debug`, the DWARF file of
/// the binary's dSYM bundle (itself universal when the binary is), each
/// architecture's functions and lines come from the dSYM's object with the same
/// debug id. Each `.sym` is filed under `file_name`'s base name and that
/// architecture's debug id.
pub fn dump_mach_o(
    bytes: &[u8],
    debug: Option<&[u8]>,
    file_name: &str,
    arch: Option<&str>,
) -> Result<Vec<Dumped>, DumpError> {
    let name = base_name(file_name);
    let archive = mach_o_archive(bytes)?;
    let all = objects(&archive)?;
    if let Some(arch) = arch
        && !all.iter().any(|o| o.arch().name() == arch)
    {
        return Err(DumpError::NoSuchArch {
            arch: arch.to_owned(),
            archs: all.iter().map(|o| o.arch().name().to_owned()).collect(),
        });
    }
    let debug_archive = debug.map(mach_o_archive).transpose()?;
    let debug_objects = match &debug_archive {
        Some(archive) => objects(archive)?,
        None => Vec::new(),
    };
    let mut dumped = Vec::new();
    for object in all
        .iter()
        .filter(|o| arch.is_none_or(|a| o.arch().name() == a))
    {
        let mut info = info_of(object, name, None)?;
        if debug.is_some() {
            let Some(debug) = debug_objects
                .iter()
                .find(|d| d.debug_id() == object.debug_id())
            else {
                return Err(DumpError::DebugFileMismatch {
                    binary: object.debug_id().breakpad().to_string(),
                    debug: debug_objects
                        .iter()
                        .map(|d| d.debug_id().breakpad().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            info = merge(info, info_of(debug, name, None)?)?;
        }
        dumped.push(finish(info, name)?);
    }
    Ok(dumped)
}

/// Dumps a Windows PE (`pe`, named `pe_name`) with its program database (`pdb`,
/// named `pdb_name`), as the reference dump_syms does: functions and lines from the
/// PDB, call frame information from the PE's unwind data and the PE's name and code
/// id on an `INFO CODE_ID` line. Filed under the PDB's name, which is what
/// minidumps record.
pub fn dump_pe_pdb(
    pe: &[u8],
    pe_name: &str,
    pdb: &[u8],
    pdb_name: &str,
) -> Result<Dumped, DumpError> {
    let (pe_name, pdb_name) = (base_name(pe_name), base_name(pdb_name));
    if ObjectKind::detect(pe) != Some(ObjectKind::Pe) {
        return Err(DumpError::Dump(format!("{pe_name} is not a PE file")));
    }
    if ObjectKind::detect(pdb) != Some(ObjectKind::Pdb) {
        return Err(DumpError::Dump(format!("{pdb_name} is not a PDB file")));
    }
    let pe = Object::parse(pe).map_err(dump_error)?;
    let pdb = Object::parse(pdb).map_err(dump_error)?;
    if pe.debug_id() != pdb.debug_id() {
        return Err(DumpError::DebugFileMismatch {
            binary: pe.debug_id().breakpad().to_string(),
            debug: pdb.debug_id().breakpad().to_string(),
        });
    }
    finish(info_of(&pdb, pdb_name, Some((&pe, pe_name)))?, pdb_name)
}

/// The file name of the PDB a PE names in its debug directory (its base name), where
/// [`dump_pe_pdb`] expects it. `None` when `pe` is not a PE or names none.
pub fn pe_debug_file(pe: &[u8]) -> Option<String> {
    if ObjectKind::detect(pe) != Some(ObjectKind::Pe) {
        return None;
    }
    let Ok(Object::Pe(pe)) = Object::parse(pe) else {
        return None;
    };
    let name = pe.debug_file_name()?;
    Some(base_name(&name).to_owned()).filter(|n| !n.is_empty())
}

/// Where Xcode puts the DWARF file of the Mach-O `binary`: in the dSYM bundle beside
/// it, `<binary>.dSYM/Contents/Resources/DWARF/<binary's name>`.
pub fn dsym_debug_file(binary: &Path) -> Option<PathBuf> {
    let name = binary.file_name()?;
    let mut bundle = name.to_owned();
    bundle.push(".dSYM");
    Some(
        binary
            .with_file_name(bundle)
            .join("Contents/Resources/DWARF")
            .join(name),
    )
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

fn dump_error(e: impl std::fmt::Display) -> DumpError {
    DumpError::Dump(format!("{e:#}"))
}

/// A Mach-O, universal or not, as an archive of one object per architecture.
fn mach_o_archive(bytes: &[u8]) -> Result<Archive<'_>, DumpError> {
    match ObjectKind::detect(bytes) {
        Some(ObjectKind::MachO | ObjectKind::FatMachO) => Archive::parse(bytes).map_err(dump_error),
        Some(_) => Err(DumpError::Dump("not a Mach-O file".into())),
        None => Err(DumpError::UnknownFormat),
    }
}

fn objects<'d>(archive: &Archive<'d>) -> Result<Vec<Object<'d>>, DumpError> {
    archive.objects().map(|o| o.map_err(dump_error)).collect()
}

/// One object's symbols; `pe` is the PE (and its name) a PDB object belongs to.
fn info_of(
    object: &Object<'_>,
    name: &str,
    pe: Option<(&Object<'_>, &str)>,
) -> Result<ObjectInfo, DumpError> {
    // The platform decides how source paths are canonicalized.
    let platform = match object.file_format() {
        FileFormat::MachO => Platform::Mac,
        FileFormat::Pe | FileFormat::Pdb => Platform::Win,
        _ => Platform::Linux,
    };
    ObjectInfo::from_object(
        object,
        name,
        pe.map(|(o, _)| o),
        pe.map(|(_, n)| n),
        platform,
        None,
        true,
    )
    .map_err(dump_error)
}

fn object_info(bytes: &[u8], name: &str) -> Result<ObjectInfo, DumpError> {
    match ObjectKind::detect(bytes).ok_or(DumpError::UnknownFormat)? {
        ObjectKind::Pe => Err(DumpError::PeWithoutPdb),
        ObjectKind::FatMachO => {
            let archive = mach_o_archive(bytes)?;
            Err(DumpError::Universal {
                archs: objects(&archive)?
                    .iter()
                    .map(|o| o.arch().name().to_owned())
                    .collect(),
            })
        }
        ObjectKind::Elf | ObjectKind::MachO | ObjectKind::Pdb => {
            info_of(&Object::parse(bytes).map_err(dump_error)?, name, None)
        }
    }
}

/// A binary's symbols merged with those of its separate debug file.
fn merge(binary: ObjectInfo, debug: ObjectInfo) -> Result<ObjectInfo, DumpError> {
    if binary.get_debug_id() != debug.get_debug_id() {
        return Err(DumpError::DebugFileMismatch {
            binary: binary.get_debug_id().to_owned(),
            debug: debug.get_debug_id().to_owned(),
        });
    }
    ObjectInfo::merge(binary, debug).map_err(dump_error)
}

fn finish(info: ObjectInfo, name: &str) -> Result<Dumped, DumpError> {
    let mut sym = Vec::new();
    info.dump(&mut sym).map_err(dump_error)?;
    // Breakpad names the OS `mac` (dump_syms writes `Mac`); consumers take either.
    if sym.starts_with(b"MODULE Mac ") {
        sym[7] = b'm';
    }
    // ELF and Mach-O minidump modules are named by their file name; a PDB by its own.
    let id = SymbolId::new(name, info.get_debug_id())?;
    let arch = std::str::from_utf8(&sym)
        .ok()
        .and_then(|t| t.split(' ').nth(2))
        .unwrap_or_default()
        .to_owned();
    let functions = sym
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"FUNC "))
        .count();
    Ok(Dumped {
        id,
        arch,
        sym,
        functions,
    })
}

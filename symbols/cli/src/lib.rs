//! The library side of the `mayday-symbols` command: [`dump_sym`] makes a Breakpad
//! `.sym` from an ELF/DWARF, Mach-O or PDB file with dump_syms, and
//! [`dump_sym_split`] from an ELF binary and its separate debug file. The symbol store,
//! upload checks and the symbol provider are in the `mayday-symbols` library.

mod dump;

pub use dump::{DumpError, Dumped, ObjectKind, dump_sym, dump_sym_split, separate_debug_file};

//! The library side of the `mayday-symbols` command: [`dump_sym`] makes a Breakpad
//! `.sym` from an ELF/DWARF, Mach-O or PDB file with dump_syms. The symbol store,
//! upload checks and the symbol provider are in the `mayday-symbols` library.

mod dump;

pub use dump::{DumpError, Dumped, ObjectKind, dump_sym};

//! The library side of the `mayday-symbols` command: [`dump_sym`] makes a Breakpad
//! `.sym` from an ELF/DWARF, Mach-O or PDB file with dump_syms, [`dump_sym_split`]
//! from an ELF binary and its separate debug file, [`dump_mach_o`] one per
//! architecture of a (universal) Mach-O with its dSYM, and [`dump_pe_pdb`] from a
//! Windows PE and its PDB. The symbol store,
//! upload checks and the symbol provider are in the `mayday-symbols` library.

mod dump;

pub use dump::{
    DumpError, Dumped, ObjectKind, dsym_debug_file, dump_mach_o, dump_pe_pdb, dump_sym,
    dump_sym_split, pe_debug_file, separate_debug_file,
};

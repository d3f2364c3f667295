//! A symbolizer and frame walker that records every call a lookup makes: what the
//! index's tests compare between the index and the fully parsed file, and what the
//! `sym_index` fuzz target compares (it includes this file by path).

use breakpad_symbols::{FrameSymbolizer, FrameWalker};

/// Records every call a lookup makes, in order, as text.
#[derive(Debug, PartialEq)]
pub(crate) struct Recorder {
    /// The instruction address the lookup is for.
    pub(crate) instruction: u64,
    /// The calls made.
    pub(crate) calls: Vec<String>,
}

impl Recorder {
    /// A recorder for a lookup at `instruction`.
    pub(crate) fn at(instruction: u64) -> Recorder {
        Recorder {
            instruction,
            calls: Vec::new(),
        }
    }
}

impl FrameSymbolizer for Recorder {
    fn get_instruction(&self) -> u64 {
        self.instruction
    }
    fn set_function(&mut self, name: &str, base: u64, parameter_size: u32) {
        self.calls
            .push(format!("function {name} {base:x} {parameter_size}"));
    }
    fn set_source_file(&mut self, file: &str, line: u32, base: u64) {
        self.calls.push(format!("file {file} {line} {base:x}"));
    }
    fn add_inline_frame(&mut self, name: &str, file: Option<&str>, line: Option<u32>) {
        self.calls.push(format!("inline {name} {file:?} {line:?}"));
    }
}

impl FrameWalker for Recorder {
    fn get_instruction(&self) -> u64 {
        self.instruction
    }
    fn has_grand_callee(&self) -> bool {
        true
    }
    fn get_grand_callee_parameter_size(&self) -> u32 {
        8
    }
    fn get_register_at_address(&self, address: u64) -> Option<u64> {
        Some(address.wrapping_mul(31).wrapping_add(7))
    }
    fn get_callee_register(&self, name: &str) -> Option<u64> {
        Some(0x7fff_0000_0000 + name.len() as u64 * 0x100)
    }
    fn set_caller_register(&mut self, name: &str, val: u64) -> Option<()> {
        self.calls.push(format!("reg {name} {val:x}"));
        Some(())
    }
    fn clear_caller_register(&mut self, name: &str) {
        self.calls.push(format!("clear {name}"));
    }
    fn set_cfa(&mut self, val: u64) -> Option<()> {
        self.calls.push(format!("cfa {val:x}"));
        Some(())
    }
    fn set_ra(&mut self, val: u64) -> Option<()> {
        self.calls.push(format!("ra {val:x}"));
        Some(())
    }
    fn set_cfi_rules_start_address(&mut self, addr: Option<u64>) {
        self.calls.push(format!("cfi_start {addr:x?}"));
    }
}

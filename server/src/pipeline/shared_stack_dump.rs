//! A hostile minidump for tests: threads that all walk one stack full of
//! return addresses (see `unwind_bound.rs`). Included by the server's unit tests
//! and by the e2e tests (`#[path]`), so it depends on nothing but std.

/// An x86-64 Windows dump whose `threads` threads all walk one 64 KiB stack
/// of return addresses into its one module: 8,193 frames each.
pub fn shared_stack_dump(threads: u32) -> Vec<u8> {
    shared_stack_dump_below(threads, 0)
}

/// [`shared_stack_dump`] with each thread's stack pointer `below` bytes under
/// its stack.
#[allow(dead_code)] // Not every user needs it.
pub fn shared_stack_dump_below(threads: u32, below: u64) -> Vec<u8> {
    const STACK: u64 = 0x7000_0000;
    const STACK_LEN: u32 = 64 * 1024;
    let mut data: Vec<u8> = Vec::new();
    // Header (32) and a directory of three streams (36) come first.
    let base = 32 + 36;
    let mut put = |bytes: &[u8]| -> u32 {
        let at = base + data.len() as u32;
        data.extend_from_slice(bytes);
        while !data.len().is_multiple_of(8) {
            data.push(0);
        }
        at
    };
    let name: Vec<u8> = "C:\\a.exe"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let name_at = put(&[&(name.len() as u32).to_le_bytes()[..], &name, &[0, 0]].concat());
    let csd_at = put(&[0; 6]);
    let mut context = vec![0u8; 1232];
    // AMD64, control and integer registers; rsp at the stack, rip in the module.
    context[48..52].copy_from_slice(&0x0010_0003u32.to_le_bytes());
    context[152..160].copy_from_slice(&(STACK - below).to_le_bytes());
    context[248..256].copy_from_slice(&0x40_1000u64.to_le_bytes());
    let context_at = put(&context);
    let stack: Vec<u8> = (0..STACK_LEN / 8)
        .flat_map(|_| 0x40_1010u64.to_le_bytes())
        .collect();
    let stack_at = put(&stack);
    // AMD64, Windows NT 10.
    let mut system = Vec::new();
    for v in [9u16, 6, 0] {
        system.extend_from_slice(&v.to_le_bytes());
    }
    system.extend_from_slice(&[4, 1]);
    for v in [10u32, 0, 19041, 2, csd_at] {
        system.extend_from_slice(&v.to_le_bytes());
    }
    system.extend_from_slice(&[0; 28]);
    let system_at = put(&system);
    let mut module = 0x40_0000u64.to_le_bytes().to_vec();
    for v in [0x10_0000u32, 0, 0, name_at] {
        module.extend_from_slice(&v.to_le_bytes());
    }
    module.resize(108, 0);
    let modules_at = put(&[&1u32.to_le_bytes()[..], &module].concat());
    let mut list = threads.to_le_bytes().to_vec();
    for id in 1..=threads {
        for v in [id, 0, 0, 0, 0, 0] {
            list.extend_from_slice(&v.to_le_bytes());
        }
        list.extend_from_slice(&STACK.to_le_bytes());
        for v in [STACK_LEN, stack_at, 1232, context_at] {
            list.extend_from_slice(&v.to_le_bytes());
        }
    }
    let threads_at = put(&list);
    let mut dump = b"MDMP".to_vec();
    for v in [0xa793u32, 3, 32, 0, 0, 0, 0] {
        dump.extend_from_slice(&v.to_le_bytes());
    }
    let streams = [
        (7u32, system.len() as u32, system_at),
        (4, 4 + 108, modules_at),
        (3, list.len() as u32, threads_at),
    ];
    for (kind, len, at) in streams {
        for v in [kind, len, at] {
            dump.extend_from_slice(&v.to_le_bytes());
        }
    }
    dump.extend_from_slice(&data);
    dump
}

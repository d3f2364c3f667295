//! Synthetic dumps (minidump-synth) for what the testdata lacks: every Linux
//! system stream at once, thread names, handle data, Crashpad ids and
//! annotations, heap next to stack, damaged and hostile dumps.

use mayday_report::scrub::{ScrubConfig, ScrubError, drop_stack_memory, inventory, scrub_minidump};
use minidump::{
    Minidump, MinidumpCrashpadInfo, MinidumpHandleDataStream, MinidumpLinuxCpuInfo,
    MinidumpLinuxLsbRelease, MinidumpMemoryList, MinidumpModuleList, MinidumpThreadNames,
    Module as _,
};
use minidump_common::format::{GUID, MINIDUMP_STREAM_TYPE as St};
use minidump_synth::{
    AnnotationValue, CrashpadInfo, DumpString, HandleDescriptor, Memory, Module,
    ModuleCrashpadInfo, SimpleStream, SynthMinidump, SystemInfo, Thread, ThreadName, amd64_context,
};
use test_assembler::{Endian, Section};

use crate::support::{amd64_linux_dump, contains_text, utf16};

const LE: Endian = Endian::Little;
const STACK_BASE: u64 = 0x7fff_0000;
const HEAP_BASE: u64 = 0x5555_0000;
const MODULE_BASE: u64 = 0x40_0000;
/// Where the module's code (and the crashing instruction) is.
const CODE_BASE: u64 = MODULE_BASE + 0x1000;
/// A saved return address on the stack: must survive scrubbing untouched.
const RETURN_ADDRESS: u64 = MODULE_BASE + 0x1234;

fn simple(ty: St, bytes: &[u8]) -> SimpleStream {
    SimpleStream {
        stream_type: ty as u32,
        section: Section::with_endian(LE).append_bytes(bytes),
    }
}

/// A Linux amd64 dump full of personal details: user `alice` on host
/// `wonderland`.
fn personal_dump() -> Vec<u8> {
    let mut stack = Section::with_endian(LE)
        .D64(RETURN_ADDRESS)
        .append_bytes(b"\0SECRET_TOKEN=abc123xyz\0")
        .append_bytes(b"\0write to alice.liddell@example.org now\0")
        .append_bytes(b"\0peer 10.20.30.40 port 22\0\x01\x02");
    stack = stack
        .append_bytes(&utf16("USERPROFILE=C:\\Users\\alice"))
        .D16(0)
        .D16(0);
    stack = stack
        .append_bytes(b"\0\0prefix wonderland suffix\0")
        // The value of a secret environment variable, copied out of its block.
        .append_bytes(b"\0using s3cr3tValue42 now\0")
        .append_repeated(0, 64);
    let stack = Memory::with_section(stack, STACK_BASE);
    let heap = Memory::with_section(
        Section::with_endian(LE).append_bytes(b"heap holds a letter to the queen"),
        HEAP_BASE,
    );
    let code = Memory::with_section(
        Section::with_endian(LE).append_bytes(&[0x55, 0x48, 0x89, 0xe5, 0x90, 0x90, 0xc3]),
        CODE_BASE,
    );
    let module_name = DumpString::new("/home/alice/bin/app", LE);
    let module = Module::new(LE, MODULE_BASE, 0x10000, &module_name, 0, 0, None);
    let worker_name = DumpString::new("/home/alice/bin/worker", LE);
    let main_name = DumpString::new("main", LE);
    let handle_type = DumpString::new("File", LE);
    let handle_name = DumpString::new("\\Device\\HarddiskVolume2\\Users\\alice\\diary.txt", LE);
    let handle = HandleDescriptor::new(LE, 4, Some(&handle_type), Some(&handle_name), 0, 0, 1, 1);
    let crashpad = CrashpadInfo::new(LE)
        .report_id(GUID {
            data1: 1,
            data2: 2,
            data3: 3,
            data4: [4; 8],
        })
        .client_id(GUID {
            data1: 5,
            data2: 6,
            data3: 7,
            data4: [8; 8],
        })
        .add_simple_annotation("prod", "Demo")
        .add_simple_annotation("Email", "alice@example.org")
        .add_simple_annotation("ver", "1.2.3.4")
        .add_module(
            ModuleCrashpadInfo::new(0, LE)
                .add_list_annotation("contact bob@example.org")
                .add_simple_annotation("auth_token", "t0p-s3cr3t")
                .add_annotation_object(
                    "api_token",
                    AnnotationValue::String("obj-t0ken-value".into()),
                )
                .add_annotation_object(
                    "exceptionReason",
                    AnnotationValue::String("index 42 out of bounds".into()),
                )
                .add_annotation_object(
                    "session_token",
                    // A MINIDUMP_BYTE_ARRAY, as Crashpad writes user-defined values.
                    AnnotationValue::Custom(
                        0x8001,
                        [&11u32.to_le_bytes(), &b"raw-s3ss10n"[..]].concat(),
                    ),
                ),
        );

    amd64_linux_dump(stack, CODE_BASE)
        .add_memory(heap)
        .add_memory(code)
        .add_module(module)
        .add(module_name)
        .add_thread_name(ThreadName::new(LE, 1, Some(&worker_name)))
        .add_thread_name(ThreadName::new(LE, 2, Some(&main_name)))
        .add(worker_name)
        .add(main_name)
        .add_handle_descriptor(handle)
        .add(handle_type)
        .add(handle_name)
        .add_crashpad_info(crashpad)
        .set_linux_environ(b"USER=alice\0HOSTNAME=wonderland\0HOME=/home/alice\0API_TOKEN=s3cr3tValue42\0")
        .set_linux_proc_status(b"Name:\tapp\nPid:\t42\nUid:\t1000\n")
        .set_linux_lsb_release(
            b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nBUILD_HOST=wonderland\n",
        )
        .set_linux_cpu_info(b"processor\t: 0\nmodel name\t: Foo CPU\nSerial\t\t: 00000000deadbeef\n")
        .set_linux_maps(b"00400000-00410000 r-xp 00000000 08:01 1234 /home/alice/bin/app\n")
        .add_stream(simple(St::LinuxCmdLine, b"/home/alice/bin/app\0--password\0hunter2\0"))
        .add_stream(simple(St::LinuxAuxv, &[7u8; 32]))
        .finish()
        .expect("synth dump")
}

/// The file range of the (last) directory entry of type `ty`, read from the
/// directory itself.
fn raw_stream_range(dump: &[u8], ty: St) -> Option<std::ops::Range<usize>> {
    let u32_at = |at: usize| u32::from_le_bytes(dump[at..at + 4].try_into().unwrap()) as usize;
    let (count, dir) = (u32_at(8), u32_at(12));
    (0..count)
        .map(|i| dir + 12 * i)
        .filter(|&entry| u32_at(entry) == ty as usize)
        .map(|entry| u32_at(entry + 8)..u32_at(entry + 8) + u32_at(entry + 4))
        .next_back()
}

fn stream_bytes(dump: &[u8], ty: St) -> Vec<u8> {
    let md = Minidump::read(dump).expect("parses");
    md.get_raw_stream(ty as u32).expect("stream").to_vec()
}

#[test]
fn personal_details_are_scrubbed_from_a_synthetic_linux_dump() {
    let raw = personal_dump();
    for s in ["alice", "wonderland", "abc123xyz", "10.20.30.40", "hunter2"] {
        assert!(contains_text(&raw, s), "fixture lacks {s}");
    }
    let mut dump = raw.clone();
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(dump.len(), raw.len());

    // Learned from USER= and HOSTNAME=, gone everywhere, ASCII and UTF-16.
    for s in [
        "alice",
        "wonderland",
        "abc123xyz",
        "10.20.30.40",
        "hunter2",
        "example.org",
        "t0p-s3cr3t",
        "s3cr3tValue42",
        "queen",
    ] {
        assert!(!contains_text(&dump, s), "{s} survived");
    }
    // System streams.
    for ty in [
        St::LinuxEnviron,
        St::LinuxCmdLine,
        St::LinuxProcStatus,
        St::LinuxAuxv,
    ] {
        assert!(
            stream_bytes(&dump, ty).iter().all(|&b| b == 0),
            "{ty:?} not zeroed"
        );
    }
    // The memory maps: out of the directory (an unused entry of the same size
    // in its place), their bytes zero.
    let maps = raw_stream_range(&raw, St::LinuxMaps).expect("fixture has memory maps");
    let md = Minidump::read(&dump[..]).expect("parses");
    assert!(md.get_raw_stream(St::LinuxMaps as u32).is_err());
    assert_eq!(
        raw_stream_range(&dump, St::UnusedStream),
        Some(maps.clone())
    );
    assert!(dump[maps].iter().all(|&b| b == 0));
    let lsb = md.get_stream::<MinidumpLinuxLsbRelease<'_>>().expect("lsb");
    let keys: Vec<String> = lsb
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, vec!["DISTRIB_ID", "DISTRIB_RELEASE"]);
    let cpu = md
        .get_stream::<MinidumpLinuxCpuInfo<'_>>()
        .expect("cpuinfo");
    let cpu: Vec<(String, String)> = cpu
        .iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    assert!(cpu.contains(&("model name".into(), "Foo CPU".into())));
    assert!(cpu.contains(&("Serial".into(), String::new())));

    // Module path keeps its shape, the user name becomes stars.
    let modules = md.get_stream::<MinidumpModuleList>().expect("modules");
    assert_eq!(
        modules.iter().next().expect("module").code_file(),
        "/home/*****/bin/app"
    );

    // Thread names with paths are masked, others kept.
    let names = md.get_stream::<MinidumpThreadNames>().expect("names");
    assert_eq!(names.get_name(1).as_deref(), Some("**********************"));
    assert_eq!(names.get_name(2).as_deref(), Some("main"));

    // Handle object names masked, type names kept.
    let handles = md
        .get_stream::<MinidumpHandleDataStream>()
        .expect("handles");
    let h = &handles.handles[0];
    assert_eq!(h.type_name.as_deref(), Some("File"));
    assert!(
        h.object_name
            .as_deref()
            .is_some_and(|n| n.chars().all(|c| c == '*'))
    );

    // Crashpad: ids zeroed, annotations through the rules.
    let crashpad = md.get_stream::<MinidumpCrashpadInfo>().expect("crashpad");
    assert_eq!(
        crashpad.raw.report_id,
        GUID {
            data1: 0,
            data2: 0,
            data3: 0,
            data4: [0; 8]
        }
    );
    assert_eq!(
        crashpad.raw.client_id,
        GUID {
            data1: 0,
            data2: 0,
            data3: 0,
            data4: [0; 8]
        }
    );
    // Dropped keys are removed from their lists, the others kept in order.
    let simple: Vec<(&str, &str)> = crashpad
        .simple_annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(simple, vec![("prod", "Demo"), ("ver", "1.2.3.4")]);
    let module_info = &crashpad.module_list[0];
    assert!(module_info.simple_annotations.is_empty());
    let objects: Vec<&str> = module_info
        .annotation_objects
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(objects, vec!["exceptionReason"]);
    assert_eq!(module_info.list_annotations[0], "contact ***************");
    for s in [
        "Email",
        "auth_token",
        "api_token",
        "obj-t0ken-value",
        "session_token",
        "raw-s3ss10n",
    ] {
        assert!(contains_text(&raw, s), "fixture lacks {s}");
        assert!(!contains_text(&dump, s), "{s} survived");
    }
    // Removed entries stay removed: scrubbing again finds nothing.
    let mut again = dump.clone();
    let second = scrub_minidump(&mut again, &ScrubConfig::default()).expect("scrubs again");
    assert!(second.is_empty(), "second scrub removed {second:?}");
    assert_eq!(again, dump);

    // Memory: heap zeroed, code and the stack's return address kept.
    let memory = md.get_stream::<MinidumpMemoryList<'_>>().expect("memory");
    let heap = memory.memory_at_address(HEAP_BASE).expect("heap region");
    assert!(heap.bytes.iter().all(|&b| b == 0));
    let code = memory.memory_at_address(CODE_BASE).expect("code region");
    assert_eq!(code.bytes, &[0x55, 0x48, 0x89, 0xe5, 0x90, 0x90, 0xc3]);
    let stack = memory.memory_at_address(STACK_BASE).expect("stack region");
    assert_eq!(
        stack.get_memory_at_address::<u64>(STACK_BASE),
        Some(RETURN_ADDRESS)
    );

    for kind in [
        "linux_environ_stream",
        "linux_cmdline_stream",
        "linux_proc_status_stream",
        "linux_auxv_stream",
        "linux_maps_stream",
        "lsb_release_field",
        "cpuinfo_serial",
        "thread_name_path",
        "handle_object_name",
        "crashpad_report_id",
        "crashpad_client_id",
        "identity_annotation",
        "secret_annotation",
        "environment_variable",
        "email_address",
        "ip_address",
        "user_name_in_path",
        "user_or_host_name",
        "heap_memory_regions",
    ] {
        assert!(
            summary.count(kind) > 0,
            "nothing counted for {kind}: {summary:?}"
        );
    }
    insta::assert_json_snapshot!("synthetic_linux_summary", summary);
}

#[test]
fn switches_leave_what_they_disable() {
    let raw = personal_dump();
    let mut dump = raw.clone();
    let config = ScrubConfig {
        system_streams: false,
        heap_memory: false,
        user_names: false,
        memory_text: false,
        process_details: false,
        ..ScrubConfig::default()
    };
    scrub_minidump(&mut dump, &config).expect("scrubs");
    assert_eq!(
        stream_bytes(&dump, St::LinuxEnviron),
        stream_bytes(&raw, St::LinuxEnviron)
    );
    assert!(contains_text(&dump, "letter to the queen"));
    assert!(contains_text(&dump, "/home/alice/bin/app"));
    // Annotation rules still apply.
    assert!(!contains_text(&dump, "t0p-s3cr3t"));

    let mut dump = raw.clone();
    let config = ScrubConfig {
        known_values: vec!["liddell".into()],
        ..ScrubConfig::default()
    };
    scrub_minidump(&mut dump, &config).expect("scrubs");
    assert!(!contains_text(&dump, "liddell"));
}

/// A saved return address whose bytes spell text — `0x563d783f0570` holds
/// `?x=V`, an environment assignment to the memory text rules — is a word the
/// unwinder reads: it survives scrubbing, and so does a frame pointer, while the
/// real assignment beside them is zeroed. (Before, such an address was zeroed in
/// part once in a while, as ASLR placed the binary, and the walk lost its frames.)
#[test]
fn return_addresses_that_spell_text_survive_scrubbing() {
    const PIE_BASE: u64 = 0x563d_7800_0000;
    const RETURN: u64 = 0x563d_783f_0570;
    // A frame pointer into this stack whose low bytes spell `k=V` as well.
    const FRAME: u64 = STACK_BASE + 0x3d6b;
    let stack = Section::with_endian(LE)
        .D64(0)
        .D64(RETURN)
        .D64(FRAME)
        // 24 bytes: the next word is aligned.
        .append_bytes(b"\0API_KEY=k3y-v4lue-0042\0")
        .D64(RETURN)
        .append_repeated(0, 0x4000);
    let stack = Memory::with_section(stack, STACK_BASE);
    let name = DumpString::new("/usr/bin/app", LE);
    let module = Module::new(LE, PIE_BASE, 0x100_0000, &name, 0, 0, None);
    let mut dump = amd64_linux_dump(stack, PIE_BASE + 0x1000)
        .add_module(module)
        .add(name)
        .finish()
        .expect("synthetic dump");
    assert!(contains_text(&dump, "?x=V"));
    scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    let md = Minidump::read(&dump[..]).expect("parses");
    let memory = md.get_stream::<MinidumpMemoryList<'_>>().expect("memory");
    let stack = memory.memory_at_address(STACK_BASE).expect("stack region");
    let word = |i: usize| u64::from_le_bytes(stack.bytes[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(1), RETURN);
    assert_eq!(word(2), FRAME);
    assert!(!contains_text(&dump, "k3y-v4lue-0042"));
    assert_eq!(word(6), RETURN);
}

#[test]
fn stack_memory_is_dropped_on_request() {
    let mut dump = personal_dump();
    scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    let before = inventory(&dump).expect("inventory");
    assert!(before.stack_memory_bytes > 0);
    let len = dump.len();
    let zeroed = drop_stack_memory(&mut dump).expect("drops");
    assert_eq!(zeroed, before.stack_memory_bytes);
    assert_eq!(dump.len(), len);
    let md = Minidump::read(&dump[..]).expect("parses");
    let memory = md.get_stream::<MinidumpMemoryList<'_>>().expect("memory");
    let stack = memory.memory_at_address(STACK_BASE).expect("stack region");
    assert!(stack.bytes.iter().all(|&b| b == 0));
    // Code stays.
    let code = memory.memory_at_address(CODE_BASE).expect("code region");
    assert_eq!(code.bytes[0], 0x55);
    assert_eq!(inventory(&dump).expect("inventory").stack_memory_bytes, 0);
}

#[test]
fn inventory_describes_the_synthetic_dump() {
    let raw = personal_dump();
    let inv = inventory(&raw).expect("inventory");
    assert_eq!(inv.os, "Linux");
    assert_eq!(inv.cpu, "amd64");
    assert_eq!(inv.thread_count, 1);
    assert_eq!(inv.module_count, 1);
    assert!(inv.environment && inv.command_line && inv.heap_memory);
    assert_eq!(inv.size_bytes, raw.len() as u64);
    assert_eq!(inv.crash_reason, None);
    let mut dump = raw;
    scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    let inv = inventory(&dump).expect("inventory");
    assert!(!inv.environment && !inv.command_line && !inv.heap_memory);
}

#[test]
fn not_a_minidump_is_a_typed_error_and_stays_unchanged() {
    for bytes in [
        Vec::new(),
        b"MDMP".to_vec(),
        b"PK\x03\x04 zip file, not a dump".to_vec(),
        vec![0xff; 64],
    ] {
        let mut dump = bytes.clone();
        let err = scrub_minidump(&mut dump, &ScrubConfig::default()).expect_err("not a dump");
        assert!(matches!(err, ScrubError::Unreadable(_)));
        assert_eq!(err.name(), "unreadable_minidump");
        assert_eq!(dump, bytes);
        assert!(drop_stack_memory(&mut dump).is_err());
        assert!(inventory(&dump).is_err());
    }
}

#[test]
fn a_dump_without_system_info_has_no_inventory_but_scrubs() {
    let mut dump = SynthMinidump::with_endian(LE)
        .set_linux_environ(b"USER=bob\0")
        .finish()
        .expect("synth dump");
    assert!(matches!(inventory(&dump), Err(ScrubError::NoSystemInfo)));
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(summary.count("linux_environ_stream"), 1);
}

/// A stream laid over the header and the stream directory (only a hostile dump
/// has one) is scrubbed around the header: the scrubbed dump still reads (its
/// directory entries zeroed, unused streams), and a second scrub leaves it as
/// it is.
#[test]
fn a_stream_over_the_header_leaves_the_dump_readable() {
    let mut dump = personal_dump();
    let u32_at = |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    let (count, dir) = (u32_at(&dump, 8) as usize, u32_at(&dump, 12) as usize);
    let entry = (0..count)
        .map(|i| dir + 12 * i)
        .find(|&e| u32_at(&dump, e) == St::LinuxAuxv as u32)
        .expect("an auxv stream");
    // From the start of the file over the whole directory (at its end).
    let size = u32::try_from(dir + 12 * count + 16).unwrap();
    dump[entry + 4..entry + 8].copy_from_slice(&size.to_le_bytes());
    dump[entry + 8..entry + 12].copy_from_slice(&0u32.to_le_bytes());
    let header = dump[..32].to_vec();

    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(summary.count("linux_auxv_stream"), 1);
    assert_eq!(dump[..32], header[..]);
    Minidump::read(&dump[..]).expect("still reads");
    let mut again = dump.clone();
    scrub_minidump(&mut again, &ScrubConfig::default()).expect("scrubs again");
    assert!(again == dump);
}

#[test]
fn hostile_locations_do_not_panic_or_resize() {
    // Streams and memory descriptors pointing past the end, into the header, or
    // overlapping each other.
    let base = personal_dump();
    let md = Minidump::read(&base[..]).expect("parses");
    let dir_rva = md.header.stream_directory_rva as usize;
    let count = md.header.stream_count as usize;
    drop(md);
    for entry in 0..count {
        for (field, value) in [
            (4, u32::MAX),
            (8, u32::MAX),
            (8, 0),
            (4, 0),
            (8, 4),
            (4, 1 << 20),
        ] {
            let mut dump = base.clone();
            let off = dir_rva + entry * 12 + field;
            dump[off..off + 4].copy_from_slice(&value.to_le_bytes());
            let _ = scrub_minidump(&mut dump, &ScrubConfig::default());
            let _ = inventory(&dump);
            let _ = drop_stack_memory(&mut dump);
            assert_eq!(dump.len(), base.len());
        }
    }
}

#[test]
fn big_endian_dumps_are_scrubbed_too() {
    let mut dump = SynthMinidump::with_endian(Endian::Big)
        .set_linux_environ(b"USER=carol\0HOSTNAME=castle\0")
        .set_linux_maps(b"00400000-00410000 r-xp 00000000 08:01 1234 /home/carol/app\n")
        .add_crashpad_info(
            CrashpadInfo::new(Endian::Big)
                .add_simple_annotation("Email", "carol@example.org")
                .add_simple_annotation("prod", "Demo"),
        )
        .finish()
        .expect("synth dump");
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(summary.count("linux_environ_stream"), 1);
    assert!(!contains_text(&dump, "carol"));
    assert!(!contains_text(&dump, "castle"));
    // The dropped annotation is removed with the count in the dump's byte order.
    let md = Minidump::read(&dump[..]).expect("parses");
    let crashpad = md.get_stream::<MinidumpCrashpadInfo>().expect("crashpad");
    let keys: Vec<&str> = crashpad
        .simple_annotations
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, vec!["prod"]);
    assert!(!contains_text(&dump, "Email"));
}

#[test]
fn full_memory_dumps_lose_their_heap_and_keep_their_stacks() {
    let stack_bytes = || {
        Section::with_endian(LE)
            .D64(RETURN_ADDRESS)
            .append_bytes(b"\0MAIL=eve@example.net\0")
    };
    // The thread cites its own copy (synth can't cite into the memory64 block);
    // the memory64 list holds the same addresses.
    let thread_stack = Memory::with_section(stack_bytes(), STACK_BASE);
    let stack = Memory::with_section(stack_bytes(), STACK_BASE);
    let heap = Memory::with_section(
        Section::with_endian(LE).append_bytes(b"the heap remembers eve"),
        HEAP_BASE,
    );
    let context = amd64_context(LE, MODULE_BASE + 0x10, STACK_BASE);
    let thread = Thread::new(LE, 1, &thread_stack, &context);
    let mut system_info = SystemInfo::new(LE);
    system_info.processor_architecture = 9;
    system_info.platform_id = 0x8201;
    let mut dump = SynthMinidump::with_endian(LE)
        .add_system_info(system_info)
        .add_thread(thread)
        .add(context)
        .add(thread_stack)
        .add_memory64(stack)
        .add_memory64(heap)
        .finish()
        .expect("synth dump");
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(summary.count("heap_memory_regions"), 1);
    assert_eq!(summary.count("environment_variable"), 2);
    assert!(!contains_text(&dump, "the heap remembers"));
    assert!(!contains_text(&dump, "eve@example.net"));
    let md = Minidump::read(&dump[..]).expect("parses");
    let memory = md.get_memory().expect("memory");
    let stack = memory.memory_at_address(STACK_BASE).expect("stack");
    assert_eq!(
        stack.get_memory_at_address::<u64>(STACK_BASE),
        Some(RETURN_ADDRESS)
    );
}

/// An address glued to an e-mail address or to an assignment's key in memory
/// is found once that is gone, and an assignment is found wherever it stands in
/// a string: scrubbing the scrubbed dump again finds nothing more.
#[test]
fn a_value_glued_to_a_finding_in_memory_is_scrubbed_with_it() {
    let stack = Section::with_endian(LE)
        .D64(RETURN_ADDRESS)
        .append_bytes(b"\0peer fe80::7:bob@example.org\0")
        // An assignment's key glued to an address (found by fuzz target
        // scrub_minidump).
        .append_bytes(b"\0x 100.117.216.3li=01;35\0")
        // A string whose first `=` has no key, split where an address in it is
        // zeroed (the same fuzz target).
        .append_bytes(b"\0=01;35:*.midi=0 10.1.2.3 22;36:*.ogg=00\0")
        .append_repeated(0, 16);
    let raw = amd64_linux_dump(Memory::with_section(stack, STACK_BASE), CODE_BASE)
        .finish()
        .expect("synth dump");
    assert!(contains_text(&raw, "fe80::7"));
    let mut dump = raw.clone();
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert!(!contains_text(&dump, "bob@example.org"));
    assert!(!contains_text(&dump, "fe80::7"), "{summary:?}");
    assert!(!contains_text(&dump, "100.117.216.3"), "{summary:?}");
    let mut again = dump.clone();
    scrub_minidump(&mut again, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(again, dump);
}

/// A hand-built dump with `n` memory descriptors and `n` threads, all pointing
/// into one small blob.
fn crowded_dump(n: u32) -> Vec<u8> {
    let dir = 32u32;
    let mem_list = dir + 2 * 12;
    let mem_size = 4 + 16 * n;
    let thread_list = mem_list + mem_size;
    let thread_size = 4 + 48 * n;
    let blob = thread_list + thread_size;
    let mut d = Vec::new();
    let u32s =
        |d: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| d.extend_from_slice(&x.to_le_bytes()));
    // Header: MDMP, version, 2 streams, directory, checksum, time, flags.
    u32s(&mut d, &[0x504d_444d, 0xa793, 2, dir, 0, 0, 0, 0]);
    u32s(&mut d, &[St::MemoryListStream as u32, mem_size, mem_list]);
    u32s(
        &mut d,
        &[St::ThreadListStream as u32, thread_size, thread_list],
    );
    u32s(&mut d, &[n]);
    for i in 0..n {
        d.extend_from_slice(&(u64::from(i) * 0x1000).to_le_bytes());
        u32s(&mut d, &[16, blob + (i % 4) * 16]);
    }
    u32s(&mut d, &[n]);
    for i in 0..n {
        u32s(&mut d, &[i, 0, 0, 0, 0, 0]);
        d.extend_from_slice(&(u64::from(i) * 0x1000 + 0x800).to_le_bytes());
        u32s(&mut d, &[16, blob, 0, 0]);
    }
    d.extend_from_slice(
        b"USER=crowd\0\0\0\0\0\0heap heap heap heap heap heap heap heap heap heap heap ",
    );
    d
}

#[test]
fn crowded_dumps_scrub_in_reasonable_time() {
    let mut dump = crowded_dump(50_000);
    let len = dump.len();
    let started = std::time::Instant::now();
    let summary = scrub_minidump(&mut dump, &ScrubConfig::default()).expect("scrubs");
    assert_eq!(dump.len(), len);
    assert!(summary.count("heap_memory_regions") > 0);
    assert!(!contains_text(&dump, "crowd"));
    let _ = inventory(&dump);
    let _ = drop_stack_memory(&mut dump);
    // Quadratic classification would take minutes here.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

//! From a minidump to a [`ProcessedReport`]: minidump-processor does the walking;
//! this module picks what triage needs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use minidump::{Minidump, MinidumpCrashpadInfo, MinidumpModuleList, Module as _};
use minidump_processor::{ProcessState, ProcessorOptions};
use minidump_unwind::{CallStack, StackFrame, SymbolProvider};

use mayday_report::crash_site::CrashSite;
use mayday_report::scrub::{AnnotationRules, drop_annotations};
use mayday_report::upload::{PRODUCT_KEYS, VERSION_KEYS};

use super::report::{
    Frame, Hex, InlineFrame, MissingSymbols, Module, ProcessedReport, Thread, file_name,
};
use super::signature::SignatureRules;
use super::unwind_bound;
use crate::index::CrashFacts;

/// Why a dump could not be processed. Each of these is final for the report.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The dump does not parse as a minidump.
    #[error("malformed minidump: {0}")]
    Malformed(String),
    /// minidump-processor gave up on it.
    #[error("processing failed: {0}")]
    Processor(String),
    /// Its threads could unwind into more frames than are processed
    /// ([`unwind_bound`]): not walked.
    #[error(
        "the dump's stacks could unwind into more than {} frames",
        unwind_bound::MAX_FRAMES
    )]
    TooManyFrames,
}

impl ProcessError {
    /// A stable name for logs, metrics and the report's `failure`.
    pub fn name(&self) -> &'static str {
        match self {
            ProcessError::Malformed(_) => "malformed",
            ProcessError::Processor(_) => "processor",
            ProcessError::TooManyFrames => "too_many_frames",
        }
    }
}

/// A dump parsed, and the frames its walk can make bounded: ready to be
/// processed.
pub struct OpenedDump<'a> {
    dump: Minidump<'a, &'a [u8]>,
    /// The most frames its threads can unwind into.
    frames: u64,
}

impl<'a> OpenedDump<'a> {
    /// Parses `bytes` and bounds the frames of its walk ([`unwind_bound`]); a
    /// dump that could unwind into too many is refused unwalked.
    pub fn open(bytes: &'a [u8]) -> Result<OpenedDump<'a>, ProcessError> {
        let dump = Minidump::read(bytes).map_err(|e| ProcessError::Malformed(e.to_string()))?;
        let words = unwind_bound::count(&dump, unwind_bound::MAX_FRAMES);
        if words > unwind_bound::MAX_FRAMES {
            return Err(ProcessError::TooManyFrames);
        }
        // A thread makes at most one frame more than twice its words.
        Ok(OpenedDump {
            dump,
            frames: 2 * words,
        })
    }

    /// The most frames processing it can make: what it holds grows with them.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// Processes `bytes` with `symbols` and builds the report `id`, merging the
/// upload's `annotations` with the Crashpad annotations found in the dump, and
/// signing it with `signatures`. A key `rules` drop is never merged back, even
/// from a dump stored before its Crashpad annotations were removed rather than
/// emptied.
pub async fn process_dump(
    id: &str,
    bytes: &[u8],
    annotations: BTreeMap<String, String>,
    rules: &AnnotationRules,
    signatures: &SignatureRules,
    symbols: &(dyn SymbolProvider + Send + Sync),
) -> Result<ProcessedReport, ProcessError> {
    let opened = OpenedDump::open(bytes)?;
    process_opened(id, &opened, annotations, rules, signatures, symbols).await
}

/// [`process_dump`] of a dump already opened.
pub async fn process_opened(
    id: &str,
    opened: &OpenedDump<'_>,
    annotations: BTreeMap<String, String>,
    rules: &AnnotationRules,
    signatures: &SignatureRules,
    symbols: &(dyn SymbolProvider + Send + Sync),
) -> Result<ProcessedReport, ProcessError> {
    let dump = &opened.dump;
    let provider: &(dyn SymbolProvider + Sync) = symbols;
    let mut options = ProcessorOptions::default();
    options.recover_function_args = false;
    let state = minidump_processor::process_minidump_with_options(dump, &provider, options)
        .await
        .map_err(|e| ProcessError::Processor(e.to_string()))?;
    let mut annotations = annotations;
    for (key, value) in crashpad_annotations(dump) {
        annotations.entry(key).or_insert(value);
    }
    // Counted when the upload was scrubbed.
    drop_annotations(&mut annotations, rules);
    let mut report = build_report(id, &state, annotations, signatures);
    // The key a client computes from the same dump before it sends it (with the
    // module list the processor read: the same stream, not parsed again).
    report.facts.crash_site = CrashSite::of_parsed(dump, Some(&state.modules))
        .ok()
        .map(|site| site.key());
    Ok(report)
}

/// Crashpad annotations from the dump's CrashpadInfo stream: the process-wide simple
/// annotations, then each module's simple annotations and string annotation
/// objects. Crashpad sends these inside the dump, not as form fields.
pub fn crashpad_annotations<'a, T>(dump: &Minidump<'a, T>) -> BTreeMap<String, String>
where
    T: std::ops::Deref<Target = [u8]> + 'a,
{
    let mut out = BTreeMap::new();
    let Ok(info) = dump.get_stream::<MinidumpCrashpadInfo>() else {
        return out;
    };
    out.extend(info.simple_annotations.clone());
    for module in &info.module_list {
        for (key, value) in &module.simple_annotations {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        for (key, value) in &module.annotation_objects {
            if let minidump::MinidumpAnnotation::String(text) = value {
                out.entry(key.clone()).or_insert_with(|| text.clone());
            }
        }
    }
    out
}

/// `value` as minidump-stackwalk writes an address ([`Hex`]), as text of its
/// own: for the few addresses a report has outside its frames.
fn hex(value: u64) -> String {
    Hex(value).to_string()
}

fn frame(index: usize, frame: &StackFrame) -> Frame {
    Frame {
        frame: index,
        module: frame.module.as_ref().map(|m| file_name(&m.name).to_owned()),
        function: frame.function_name.clone(),
        function_offset: frame
            .function_base
            .map(|base| Hex(frame.instruction.wrapping_sub(base))),
        file: frame.source_file_name.clone(),
        line: frame.source_line,
        module_offset: frame
            .module
            .as_ref()
            .map(|m| Hex(frame.instruction.wrapping_sub(m.raw.base_of_image))),
        offset: Hex(frame.instruction),
        missing_symbols: frame.function_name.is_none(),
        trust: Cow::Borrowed(frame.trust.as_str()),
        inlines: frame
            .inlines
            .iter()
            .map(|inline| InlineFrame {
                function: inline.function_name.clone(),
                file: inline.source_file_name.clone(),
                line: inline.source_line,
            })
            .collect(),
    }
}

fn thread(stack: &CallStack) -> Thread {
    Thread {
        thread_id: stack.thread_id,
        name: stack.thread_name.clone(),
        frames: stack
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| frame(i, f))
            .collect(),
    }
}

fn modules(list: &MinidumpModuleList, state: &ProcessState) -> Vec<Module> {
    list.by_addr()
        .map(|module| {
            // Symbol providers key their statistics by the code file's base name.
            let stats = state.symbol_stats.get(file_name(&module.code_file()));
            let loaded = stats.is_some_and(|s| s.loaded_symbols);
            Module {
                filename: file_name(&module.code_file()).to_owned(),
                code_file: module.code_file().into_owned(),
                version: module.version().map(|v| v.into_owned()),
                debug_file: module.debug_file().map(|f| file_name(&f).to_owned()),
                debug_id: module
                    .debug_identifier()
                    .map(|id| id.breakpad().to_string()),
                base_address: hex(module.base_address()),
                end_address: hex(module.base_address().saturating_add(module.size())),
                loaded_symbols: loaded,
                missing_symbols: stats.is_some() && !loaded,
            }
        })
        .collect()
}

/// Builds the processed report from minidump-processor's state, signed with
/// `signatures`.
pub fn build_report(
    id: &str,
    state: &ProcessState,
    annotations: BTreeMap<String, String>,
    signatures: &SignatureRules,
) -> ProcessedReport {
    let threads: Vec<Thread> = state.threads.iter().map(thread).collect();
    let crashing_thread_index = state.requesting_thread;
    let crashing_thread = crashing_thread_index.and_then(|i| threads.get(i).cloned());
    let modules = modules(&state.modules, state);
    let mut missing_symbols: Vec<MissingSymbols> = modules
        .iter()
        .filter(|m| m.missing_symbols)
        .filter_map(|m| {
            Some(MissingSymbols {
                debug_file: m.debug_file.clone()?,
                debug_id: m.debug_id.clone()?,
            })
        })
        .collect();
    missing_symbols.sort();
    missing_symbols.dedup();
    let signature = signatures.report_signature(crashing_thread.as_ref()).text;
    let first_of = |keys: &[&str]| keys.iter().find_map(|k| annotations.get(*k).cloned());
    let info = state.exception_info.as_ref();
    ProcessedReport {
        id: id.to_owned(),
        facts: CrashFacts {
            product: first_of(PRODUCT_KEYS),
            version: first_of(VERSION_KEYS),
            os: Some(state.system_info.os.long_name().into_owned()),
            os_version: state
                .system_info
                .format_os_version()
                .map(|v| v.into_owned()),
            cpu_arch: Some(state.system_info.cpu.to_string()),
            crash_reason: info.map(|i| i.reason.to_string()),
            crash_address: info.map(|i| hex(*i.address)),
            crash_site: None,
            crash_module: crashing_thread
                .as_ref()
                .and_then(|t| t.frames.first())
                .and_then(|f| f.module.clone()),
        },
        crashing_thread_index,
        crashing_thread,
        threads,
        modules,
        annotations,
        signature,
        missing_symbols,
        scrub: Default::default(),
        text_attachments: Vec::new(),
    }
}

/// Applies the text rules to every string the report took from the dump (paths,
/// file names, thread names, annotations), counting what changed into
/// `report.scrub`.
pub fn scrub_report(report: &mut ProcessedReport, rules: &mayday_report::scrub::AnnotationRules) {
    let mut changed = 0u64;
    // Each distinct string scrubbed once: a module's name and a source file
    // stand in frame after frame, the rules' scan costs far more than a lookup.
    // (foldhash, seeded per map: the strings come from the dump.)
    let mut scrubbed: foldhash::HashMap<String, Option<String>> = Default::default();
    let mut fix = |text: &mut String| {
        let new = match scrubbed.get(text.as_str()) {
            Some(new) => new.clone(),
            None => {
                let new = match mayday_report::scrub::scrub_text(text, rules) {
                    Cow::Owned(new) => Some(new),
                    Cow::Borrowed(_) => None,
                };
                scrubbed.insert(text.clone(), new.clone());
                new
            }
        };
        if let Some(new) = new {
            *text = new;
            changed += 1;
        }
    };
    for module in &mut report.modules {
        fix(&mut module.code_file);
        fix(&mut module.filename);
        if let Some(file) = &mut module.debug_file {
            fix(file);
        }
    }
    let threads = report
        .threads
        .iter_mut()
        .chain(report.crashing_thread.as_mut());
    for thread in threads {
        if let Some(name) = &mut thread.name {
            fix(name);
        }
        for frame in &mut thread.frames {
            for text in [&mut frame.module, &mut frame.file].into_iter().flatten() {
                fix(text);
            }
            for inline in &mut frame.inlines {
                if let Some(file) = &mut inline.file {
                    fix(file);
                }
            }
        }
    }
    for value in report.annotations.values_mut() {
        fix(value);
    }
    report.scrub.add("report_strings", changed);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use minidump_synth::{
        CrashpadInfo, Memory, ModuleCrashpadInfo, SynthMinidump, SystemInfo, Thread, amd64_context,
    };
    use object_store::memory::InMemory;
    use test_assembler::{Endian, Section};

    use super::*;

    /// A small valid amd64 Linux dump: one thread, its stack, and `crashpad` when
    /// given.
    pub(crate) fn small_dump(crashpad: Option<CrashpadInfo>) -> Vec<u8> {
        const LE: Endian = Endian::Little;
        let stack =
            Memory::with_section(Section::with_endian(LE).append_repeated(0, 64), 0x7fff_0000);
        let context = amd64_context(LE, 0x40_1000, 0x7fff_0000);
        let mut system_info = SystemInfo::new(LE);
        system_info.processor_architecture = 9; // AMD64
        system_info.platform_id = 0x8201; // Linux
        let dump = SynthMinidump::with_endian(LE)
            .add_system_info(system_info)
            .add_thread(Thread::new(LE, 1, &stack, &context))
            .add(context)
            .add_memory(stack);
        match crashpad {
            Some(crashpad) => dump.add_crashpad_info(crashpad),
            None => dump,
        }
        .finish()
        .unwrap()
    }

    #[test]
    fn addresses_are_written_as_minidump_processor_writes_them() {
        for value in [0, 1, 0x40_1000, 0x7fff_0000_1234, u64::MAX] {
            assert_eq!(hex(value), minidump_processor::Address(value).to_string());
        }
    }

    /// A dump whose threads all walk one stack full of return addresses (69 KB
    /// for 20 threads: 164,000 frames, 280 MB) is not walked; one such thread
    /// is, to its 8,193 frames.
    #[tokio::test]
    async fn a_dump_that_would_unwind_into_too_many_frames_is_not_processed() {
        use crate::pipeline::shared_stack_dump::shared_stack_dump;
        let symbols = mayday_symbols::Symbols::new(
            mayday_symbols::SymbolStore::new(Arc::new(InMemory::new())),
            Default::default(),
        );
        let process = |dump: Vec<u8>| {
            let session = symbols.session();
            async move {
                let rules = (AnnotationRules::default(), SignatureRules::default());
                process_dump("bp-1", &dump, BTreeMap::new(), &rules.0, &rules.1, &session).await
            }
        };
        let refused = process(shared_stack_dump(20)).await;
        assert!(
            matches!(refused, Err(ProcessError::TooManyFrames)),
            "{refused:?}"
        );
        let one = process(shared_stack_dump(1)).await.unwrap();
        assert_eq!(one.threads.len(), 1);
        assert_eq!(one.threads[0].frames.len(), 8193);
    }

    /// A path that stands in many frames is scrubbed in each, and each counts.
    #[tokio::test]
    async fn every_occurrence_of_a_string_is_scrubbed_and_counted() {
        let symbols = mayday_symbols::Symbols::new(
            mayday_symbols::SymbolStore::new(Arc::new(InMemory::new())),
            Default::default(),
        );
        let rules = AnnotationRules::default();
        let mut report = process_dump(
            "bp-1",
            &small_dump(None),
            BTreeMap::new(),
            &rules,
            &SignatureRules::default(),
            &symbols.session(),
        )
        .await
        .unwrap();
        let frame = |file: &str| Frame {
            module: Some("/home/alice/app/libdemo.so".to_owned()),
            file: Some(file.to_owned()),
            ..Default::default()
        };
        let frames = vec![
            frame("/home/alice/src/main.c"),
            frame("/home/alice/src/main.c"),
            frame("src/util.c"),
        ];
        report.threads = vec![super::Thread {
            thread_id: 1,
            name: None,
            frames,
        }];
        report.crashing_thread = None;
        report.modules.clear();
        report.annotations.clear();
        scrub_report(&mut report, &rules);
        let frames = &report.threads[0].frames;
        for frame in frames {
            assert!(
                !frame.module.as_ref().unwrap().contains("alice"),
                "{frame:?}"
            );
            assert!(!frame.file.as_ref().unwrap().contains("alice"), "{frame:?}");
        }
        assert_eq!(frames[0], frames[1]);
        assert_eq!(frames[2].file.as_deref(), Some("src/util.c"));
        // Three modules and two files.
        assert_eq!(report.scrub.count("report_strings"), 5);
    }

    #[tokio::test]
    async fn dropped_keys_in_the_dump_are_not_merged_into_the_report() {
        // A dump stored before dropped Crashpad annotations were removed from
        // it: they are still there, emptied.
        let crashpad = CrashpadInfo::new(Endian::Little)
            .add_simple_annotation("Email", "")
            .add_simple_annotation("prod", "Demo")
            .add_module(
                ModuleCrashpadInfo::new(0, Endian::Little).add_simple_annotation("api_token", ""),
            );
        let dump = small_dump(Some(crashpad));
        let read = Minidump::read(&dump[..]).unwrap();
        assert!(crashpad_annotations(&read).contains_key("Email"));
        let symbols = mayday_symbols::Symbols::new(
            mayday_symbols::SymbolStore::new(Arc::new(InMemory::new())),
            Default::default(),
        );
        let upload = BTreeMap::from([("ver".to_owned(), "1.0".to_owned())]);
        let rules = AnnotationRules::default();
        let signatures = SignatureRules::default();
        let report = process_dump(
            "bp-1",
            &dump,
            upload,
            &rules,
            &signatures,
            &symbols.session(),
        )
        .await
        .unwrap();
        let keys: Vec<&str> = report.annotations.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["prod", "ver"]);
        assert_eq!(report.facts.product.as_deref(), Some("Demo"));
    }

    /// The crash-site key taken with the processor's module list is the one a
    /// client computes from the dump alone, on every dump of the shared test
    /// data (most of them crashes, so most have one).
    #[tokio::test]
    async fn the_crash_site_key_is_the_one_read_from_the_dump_alone() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
        let symbols = mayday_symbols::Symbols::new(
            mayday_symbols::SymbolStore::new(Arc::new(InMemory::new())),
            Default::default(),
        );
        let (rules, signatures) = (AnnotationRules::default(), SignatureRules::default());
        let mut keyed = 0;
        for case in std::fs::read_dir(&root).unwrap() {
            for file in std::fs::read_dir(case.unwrap().path())
                .into_iter()
                .flatten()
            {
                let path = file.unwrap().path();
                if path.extension().is_none_or(|e| e != "dmp") {
                    continue;
                }
                let dump = std::fs::read(&path).unwrap();
                let report = process_dump(
                    "bp-1",
                    &dump,
                    BTreeMap::new(),
                    &rules,
                    &signatures,
                    &symbols.session(),
                )
                .await
                .unwrap();
                let alone = CrashSite::of_minidump(&dump).ok().map(|site| site.key());
                assert_eq!(report.facts.crash_site, alone, "{}", path.display());
                keyed += usize::from(alone.is_some());
            }
        }
        assert!(keyed >= 10, "{keyed} dumps with a crash site");
    }
}

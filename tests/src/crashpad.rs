//! Crashpad annotations added to a real Crashpad dump, where the app would have set
//! them: the process-wide simple annotations, and the first module's simple
//! annotations and annotation objects of its CrashpadInfo stream.
//!
//! The lists are copied to the end of the file with the new entries after the old
//! ones, and their location descriptors pointed there, so everything else in the
//! dump stays where it was.

/// `MINIDUMP_STREAM_TYPE::CrashpadInfoStream`.
const CRASHPAD_INFO_STREAM: u32 = 0x4350_0001;
/// `MINIDUMP_ANNOTATION::TYPE_STRING`.
const ANNOTATION_STRING: u16 = 1;

/// Annotations to add, each list as `(key, value)` pairs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Annotations<'a> {
    /// Process-wide simple annotations.
    pub simple: &'a [(&'a str, &'a str)],
    /// The first module's simple annotations.
    pub module_simple: &'a [(&'a str, &'a str)],
    /// The first module's string annotation objects.
    pub module_objects: &'a [(&'a str, &'a str)],
}

fn u32_at(dump: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(dump[off..off + 4].try_into().unwrap())
}

fn put_u32(dump: &mut [u8], off: usize, value: u32) {
    dump[off..off + 4].copy_from_slice(&value.to_le_bytes());
}

fn rva_of_end(dump: &mut Vec<u8>) -> u32 {
    while !dump.len().is_multiple_of(4) {
        dump.push(0);
    }
    u32::try_from(dump.len()).unwrap()
}

/// Appends a `MINIDUMP_UTF8_STRING`; returns its RVA.
fn push_string(dump: &mut Vec<u8>, text: &str) -> u32 {
    let rva = rva_of_end(dump);
    dump.extend_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
    dump.extend_from_slice(text.as_bytes());
    dump.push(0);
    rva
}

/// Copies the list the location descriptor at `descriptor` points to (a count,
/// then entries of `entry_size` bytes; none when the descriptor is empty) to the
/// end with `entries` after its own, and points the descriptor there.
fn extend_list(dump: &mut Vec<u8>, descriptor: usize, entry_size: usize, entries: &[Vec<u8>]) {
    let (size, rva) = (
        u32_at(dump, descriptor) as usize,
        u32_at(dump, descriptor + 4) as usize,
    );
    let count = if size >= 4 { u32_at(dump, rva) } else { 0 };
    let old = dump[rva + 4..rva + 4 + count as usize * entry_size].to_vec();
    let new_rva = rva_of_end(dump);
    let new_count = count + u32::try_from(entries.len()).unwrap();
    dump.extend_from_slice(&new_count.to_le_bytes());
    dump.extend_from_slice(&old);
    for entry in entries {
        assert_eq!(entry.len(), entry_size);
        dump.extend_from_slice(entry);
    }
    let new_size = u32::try_from(dump.len()).unwrap() - new_rva;
    put_u32(dump, descriptor, new_size);
    put_u32(dump, descriptor + 4, new_rva);
}

/// Appends the strings of `pairs`; returns their dictionary entries.
fn dictionary(dump: &mut Vec<u8>, pairs: &[(&str, &str)]) -> Vec<Vec<u8>> {
    pairs
        .iter()
        .map(|(key, value)| {
            let key = push_string(dump, key);
            let value = push_string(dump, value);
            [key.to_le_bytes(), value.to_le_bytes()].concat()
        })
        .collect()
}

/// `dump` (a little-endian Crashpad dump with a CrashpadInfo stream and at least
/// one module entry in it) with `add` added to its annotations.
pub fn with_annotations(dump: &[u8], add: Annotations<'_>) -> Vec<u8> {
    let mut dump = dump.to_vec();
    let (count, directory) = (u32_at(&dump, 8) as usize, u32_at(&dump, 12) as usize);
    let info = (0..count)
        .map(|i| directory + i * 12)
        .find(|&entry| u32_at(&dump, entry) == CRASHPAD_INFO_STREAM)
        .map(|entry| u32_at(&dump, entry + 8) as usize)
        .expect("a CrashpadInfo stream");
    // MINIDUMP_CRASHPAD_INFO: simple annotations at 36, the module list at 44;
    // each module link: its module index, then the location of its info, whose
    // simple annotations are at 12 and annotation objects at 20.
    let modules = u32_at(&dump, info + 48) as usize;
    assert!(u32_at(&dump, modules) > 0, "a module entry");
    let module = u32_at(&dump, modules + 4 + 8) as usize;

    let simple = dictionary(&mut dump, add.simple);
    extend_list(&mut dump, info + 36, 8, &simple);
    let module_simple = dictionary(&mut dump, add.module_simple);
    extend_list(&mut dump, module + 12, 8, &module_simple);
    let objects: Vec<Vec<u8>> = add
        .module_objects
        .iter()
        .map(|(key, value)| {
            let name = push_string(&mut dump, key);
            let value = push_string(&mut dump, value);
            [
                &name.to_le_bytes()[..],
                &ANNOTATION_STRING.to_le_bytes(),
                &0u16.to_le_bytes(),
                &value.to_le_bytes(),
            ]
            .concat()
        })
        .collect();
    extend_list(&mut dump, module + 20, 12, &objects);
    dump
}

//! The report vault: every blob of a report, sealed with that report's own data key.
//!
//! It owns
//! - the per-report data keys: made when a report is received
//!   ([`Vault::new_key`]; the key is stored with the report's row, after its
//!   blobs, so a blob of a report never recorded has no key anywhere), looked up
//!   to read or write its blobs
//!   ([`Vault::data_key`]), and destroyed when it is deleted
//!   ([`Vault::destroy_key`]) — crypto-shredding: from then on every copy of its
//!   blobs, anywhere, is unreadable;
//! - the per-report stack keys: the stack memory of a received dump is sealed
//!   under a key of its own ([`Vault::new_stack_key`], stored with the data
//!   key), in the same raw object; dropping the stack memory once the report is
//!   fully symbolicated destroys that key (in the index transaction that
//!   records the report: [`ProcessedOutcome::drop_stack_key`]), so no copy of
//!   the object yields it any more, and the object is never rewritten;
//! - sealed put and get of report blobs ([`Vault::put`], [`Vault::get`],
//!   [`Vault::read`]; [`Vault::put_sealed_lazy`] for a processed report that
//!   can be made again);
//! - the key layout of report blobs in the store:
//!   - `raw/<yyyy-mm-dd>/<report-id>.dmp` — the (scrubbed) minidump as received,
//!     followed by the upload's metadata, its stack memory sealed apart
//!     ([`RawUpload`]);
//!   - `raw/<yyyy-mm-dd>/<report-id>.json` — the upload's metadata ([`RawMeta`]),
//!     on its own, of reports stored before the two went into one object;
//!   - `reports/<report-id>.json` — the processed report
//!
//!   (`symbols/<debug_file>/<DEBUG_ID>/<name>.sym` is owned by `mayday_symbols`;
//!   symbols stay plain);
//! - master-key rotation ([`rotate`]), which rewraps every stored data key and
//!   stack key.
//!
//! The vault stands on [`Storage`] (bytes, durably), the [`Index`] (where the
//! wrapped data keys are kept) and the [`Keyring`] (the master keys).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mayday_report::scrub::{
    CutStacks, ScrubSummary, StackHoles, TextAttachment, restore_stack_memory,
};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::config::Config;
use crate::crypto::{
    self, ChunkSealer, Cipher, CryptoError, DataKey, Keyring, MasterKey, WrappedKey,
};
#[cfg(doc)]
use crate::index::ProcessedOutcome;
use crate::index::{Index, IndexError, KeyKind, now_ms};
use crate::report_id::ReportId;
use crate::storage::{AfterRead, Storage, StorageError, StreamingPut};

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The blob store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A report's raw object does not hold a dump and its metadata.
    #[error("raw object {0} is malformed")]
    MalformedRaw(String),
    /// A sealed blob could not be opened, or its data key unwrapped.
    #[error("blob encryption: {0}")]
    Crypto(#[from] CryptoError),
    /// The index holding the data keys failed.
    #[error("data keys: {0}")]
    Keys(#[from] IndexError),
}

impl VaultError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            VaultError::Storage(e) => e.name(),
            VaultError::MalformedRaw(_) => "malformed_raw",
            VaultError::Crypto(e) => e.name(),
            VaultError::Keys(_) => "keys",
        }
    }
}

/// What is stored with each raw dump ([`RawUpload`]; apart, at
/// `raw/<date>/<id>.json`, for reports stored before): enough to rebuild
/// the index from object storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawMeta {
    /// `bp-<uuid>`.
    pub id: String,
    /// Unix ms.
    pub received_at: i64,
    /// Annotations as received (after scrubbing).
    pub annotations: BTreeMap<String, String>,
    /// File parts other than the minidump, dropped unread: (field, size).
    pub dropped_attachments: Vec<(String, u64)>,
    /// Text attachments a rule keeps (`[[scrub.text_attachments]]`), scrubbed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_attachments: Vec<TextAttachment>,
    /// What scrubbing removed from the dump and the annotations before they were
    /// stored: kinds and counts, never values.
    #[serde(default)]
    pub scrub: ScrubSummary,
}

/// A report's upload as stored: the scrubbed dump, its stack memory and the
/// upload's metadata, in one object at the raw key:
///
/// ```text
/// MDR2 ‖ main length (u64 LE) ‖ main ‖ stack
/// main  = sealed under the data key, bound to the raw key:
///         the dump with its stack memory cut out ‖ metadata JSON ‖ its length (u32 LE)
///         ‖ where the stack memory was (mayday_report's StackHoles) ‖ its length (u32 LE)
/// stack = sealed under the stack key, bound to the raw key + "#stack":
///         the stack memory, hole after hole
/// ```
///
/// The report's row names the raw key as its metadata key too. Loading puts
/// the stack memory back while the stack key exists; once it is destroyed,
/// zeros — the dump `drop_stack_memory` would have left. The object is as large
/// as the dump and its metadata, as before (the stack memory is not stored
/// twice, nor zeros in its place).
///
/// A dump too large to hold whole (scrubbed a window at a time) is stored as
/// it is scrubbed, in the chunked form `MDR4` ([`RawWriter`]):
///
/// ```text
/// MDR4 ‖ chunk size (u32 LE) ‖ nonce prefix (19 bytes)
///   ‖ dump ‖ main ‖ stack ‖ dump's length (u64 LE) ‖ main's length (u64 LE) ‖ MDR4
/// dump  = the dump with its stack memory cut out, in chunks of the chunk size
///         sealed under the data key, bound to the raw key, one after the
///         other (crypto's ChunkSealer: each chunk's place and the last one are
///         in its nonce); the last chunk is shorter, empty when it must be
/// main  = sealed under the data key, bound to the raw key + "#main":
///         metadata JSON ‖ its length (u32 LE) ‖ where the stack memory was
///         ‖ its length (u32 LE) ‖ 1 when the stack memory was left in the dump
///         (too much of it to hold apart: no holes then), else 0
/// stack = as above
/// ```
///
/// Reports stored before keep earlier forms, still read: one object sealed
/// under the data key, the dump (stack memory inline) ‖ metadata ‖ its length;
/// before that, two, the dump alone at the raw key and the metadata at its own
/// key. Their stack memory is dropped the old way, by rewriting the dump.
#[derive(Debug, Clone)]
pub struct RawUpload {
    /// The minidump, with its stack memory where the stack key still opens it.
    pub dump: Bytes,
    /// The metadata's JSON ([`RawMeta`]); `None` when it is gone.
    pub meta: Option<Bytes>,
    /// Where the dump's stack memory is kept.
    pub stack: RawStack,
}

/// Where a raw object keeps its dump's stack memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawStack {
    /// In the dump itself (a report stored before stack keys): as received, or
    /// zeros once dropped by rewriting the dump.
    InDump,
    /// Sealed apart, and put back into the dump: this many bytes.
    Restored {
        /// Bytes of stack memory put back.
        bytes: u64,
    },
    /// Sealed apart, and its stack key destroyed: the dump's stacks are zeros.
    Destroyed,
}

/// Bytes after a section of a raw object (the metadata, the stack holes): its
/// length.
const META_LEN: usize = 4;
/// Magic at the start of a raw object with its stack memory sealed apart.
const RAW_MAGIC: &[u8; 4] = b"MDR2";
/// Bytes in front of a raw object's main part: the magic and the part's length.
const RAW_HEADER: usize = RAW_MAGIC.len() + 8;
/// Bytes [`Vault::seal_raw_in_place`] needs free in front of the dump.
pub const RAW_HEADROOM: usize = RAW_HEADER + crypto::SEAL_HEADROOM;
/// Magic at the start and at the end of a raw object in chunks, by the cipher
/// of its chunks: `MDR4` XAES-256-GCM, `MDR3` (stored before) XChaCha20-Poly1305.
fn chunked_magic(cipher: Cipher) -> &'static [u8; CHUNKED_MAGIC_LEN] {
    match cipher {
        Cipher::XAes256Gcm => b"MDR4",
        Cipher::XChaCha20Poly1305 => b"MDR3",
    }
}
/// Bytes of a chunked raw object's magic.
const CHUNKED_MAGIC_LEN: usize = 4;

/// The cipher of a raw object in chunks, by its magic; `None` for another form.
fn chunked_cipher(object: &[u8]) -> Option<Cipher> {
    Cipher::ALL
        .into_iter()
        .find(|cipher| object.starts_with(chunked_magic(*cipher)))
}
/// Plaintext bytes per chunk of the dump a [`RawWriter`] writes.
const DUMP_CHUNK: usize = 1 << 20;
/// The chunk sizes a chunked raw object may have.
const DUMP_CHUNKS: std::ops::RangeInclusive<usize> = 4096..=16 << 20;
/// Bytes of a chunked raw object's header: magic, chunk size, nonce prefix.
const CHUNKED_HEADER: usize = CHUNKED_MAGIC_LEN + 4 + crypto::CHUNK_NONCE_PREFIX;
/// Bytes of a chunked raw object's footer: the dump's and main's lengths, magic.
const CHUNKED_FOOTER: usize = 8 + 8 + CHUNKED_MAGIC_LEN;

/// Splits an opened dump ‖ metadata ‖ length into the dump and the metadata.
fn split_meta(key: &Path, mut object: Bytes) -> Result<(Bytes, Bytes), VaultError> {
    let at = section_start(key, &object)?;
    object.truncate(object.len() - META_LEN);
    let meta = object.split_off(at);
    Ok((object, meta))
}

/// Where the last section starts in opened bytes ending with a section and its
/// length (`u32` LE): the length of what comes before it.
fn section_start(key: &Path, object: &[u8]) -> Result<usize, VaultError> {
    let malformed = || VaultError::MalformedRaw(key.to_string());
    let at = object.len().checked_sub(META_LEN).ok_or_else(malformed)?;
    let len = u32::from_le_bytes(object[at..].try_into().map_err(|_| malformed())?);
    usize::try_from(len)
        .ok()
        .and_then(|len| at.checked_sub(len))
        .ok_or_else(malformed)
}

/// What a chunked raw object's main part is bound to.
fn main_aad(raw_key: &Path) -> String {
    format!("{raw_key}#main")
}

/// What a raw object's stack part is bound to.
fn stack_aad(raw_key: &Path) -> String {
    format!("{raw_key}#stack")
}

/// What a report's wrapped stack key is bound to (its data key: the report id).
fn stack_key_aad(id: &ReportId) -> String {
    format!("{id}#stack")
}

/// The keys of a report, unwrapped: its data key, and its stack key while it
/// has one.
#[derive(Debug)]
pub struct ReportKeys {
    /// Opens every blob of the report.
    pub data: DataKey,
    /// Opens the stack memory of its raw object; `None` once destroyed (or for
    /// a report stored before stack keys).
    pub stack: Option<DataKey>,
}

/// Opens the raw object `object` stored at `raw_key` with the report's `keys`,
/// in any of its forms ([`RawUpload`]); `with_meta` says whether the metadata is
/// in it (a report's metadata key is its raw key), else `meta` is `None`.
pub fn open_raw(
    raw_key: &Path,
    object: Bytes,
    keys: &ReportKeys,
    with_meta: bool,
) -> Result<RawUpload, VaultError> {
    if object.starts_with(RAW_MAGIC) {
        return open_split_raw(raw_key, object, keys);
    }
    if let Some(cipher) = chunked_cipher(&object) {
        return open_chunked_raw(raw_key, &object, keys, cipher);
    }
    let object = Bytes::from(keys.data.open(raw_key.as_ref(), &object)?);
    let (dump, meta) = if with_meta {
        let (dump, meta) = split_meta(raw_key, object)?;
        (dump, Some(meta))
    } else {
        (object, None)
    };
    Ok(RawUpload {
        dump,
        meta,
        stack: RawStack::InDump,
    })
}

/// Opens a raw object of the `MDR2` form ([`RawUpload`]): its main part where
/// it lies when `object` is the only handle on its bytes (as the store reads
/// it), else in a copy.
fn open_split_raw(key: &Path, object: Bytes, keys: &ReportKeys) -> Result<RawUpload, VaultError> {
    let malformed = || VaultError::MalformedRaw(key.to_string());
    let len: [u8; 8] = object
        .get(RAW_MAGIC.len()..RAW_HEADER)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    let main_end = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|len| len.checked_add(RAW_HEADER))
        .filter(|end| *end <= object.len())
        .ok_or_else(malformed)?;
    let mut object = BytesMut::from(object);
    let (head, stack) = object.split_at_mut(main_end);
    let main = keys
        .data
        .open_in_place(key.as_ref(), &mut head[RAW_HEADER..])?;
    // cut dump ‖ meta ‖ its length ‖ holes ‖ their length
    let (meta_at, meta, holes) = main_sections(key, main)?;
    restore(key, &main[..meta_at], meta, &holes, stack, keys)
}

/// The sections of an opened main part ending with metadata ‖ its length ‖
/// stack holes ‖ their length: where the metadata starts, it, the holes.
fn main_sections(key: &Path, main: &[u8]) -> Result<(usize, Bytes, StackHoles), VaultError> {
    let malformed = || VaultError::MalformedRaw(key.to_string());
    let holes_at = section_start(key, main)?;
    let holes =
        StackHoles::from_bytes(&main[holes_at..main.len() - META_LEN]).map_err(|_| malformed())?;
    let meta_at = section_start(key, &main[..holes_at])?;
    let meta = Bytes::copy_from_slice(&main[meta_at..holes_at - META_LEN]);
    Ok((meta_at, meta, holes))
}

/// The upload of a raw object whose dump `cut` had its stack memory cut out at
/// `holes`, sealed apart as `stack`: put back while the stack key opens it.
fn restore(
    key: &Path,
    cut: &[u8],
    meta: Bytes,
    holes: &StackHoles,
    stack: &mut [u8],
    keys: &ReportKeys,
) -> Result<RawUpload, VaultError> {
    let (stack, kept) = match &keys.stack {
        // Opened where it lies: no copy of stack memory the dump gets one of.
        Some(stack_key) => {
            let stack = stack_key.open_in_place(&stack_aad(key), stack)?;
            let bytes = holes.len();
            (Some(&*stack), RawStack::Restored { bytes })
        }
        None => (None, RawStack::Destroyed),
    };
    let dump = restore_stack_memory(cut, holes, stack)
        .map_err(|_| VaultError::MalformedRaw(key.to_string()))?;
    Ok(RawUpload {
        dump: dump.into(),
        meta: Some(meta),
        stack: kept,
    })
}

/// Opens a raw object of the chunked form ([`RawUpload`]) whose chunks are
/// sealed with `cipher`.
fn open_chunked_raw(
    key: &Path,
    object: &[u8],
    keys: &ReportKeys,
    cipher: Cipher,
) -> Result<RawUpload, VaultError> {
    let malformed = || VaultError::MalformedRaw(key.to_string());
    let u64_at = |at: usize| -> Option<usize> {
        let b: [u8; 8] = object.get(at..at + 8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(b)).ok()
    };
    let footer = object
        .len()
        .checked_sub(CHUNKED_FOOTER)
        .filter(|at| *at >= CHUNKED_HEADER && object[*at + 16..] == *chunked_magic(cipher))
        .ok_or_else(malformed)?;
    let (dump_len, main_len) = (
        u64_at(footer).ok_or_else(malformed)?,
        u64_at(footer + 8).ok_or_else(malformed)?,
    );
    let main_at = CHUNKED_HEADER
        .checked_add(dump_len)
        .filter(|at| *at <= footer)
        .ok_or_else(malformed)?;
    let stack_at = main_at
        .checked_add(main_len)
        .filter(|at| *at <= footer)
        .ok_or_else(malformed)?;
    let chunk = u32::from_le_bytes(object[4..8].try_into().map_err(|_| malformed())?) as usize;
    if !DUMP_CHUNKS.contains(&chunk) {
        return Err(malformed());
    }
    let prefix: [u8; crypto::CHUNK_NONCE_PREFIX] = object[8..CHUNKED_HEADER]
        .try_into()
        .map_err(|_| malformed())?;

    // Every chunk but the last is whole; the last is shorter (empty at least).
    let sealed = chunk + crypto::SEAL_TAG;
    let (whole, rest) = (dump_len / sealed, dump_len % sealed);
    if rest < crypto::SEAL_TAG {
        return Err(malformed());
    }
    let mut opener = keys.data.chunk_opener(cipher, prefix);
    let mut cut = Vec::new();
    cut.try_reserve_exact(whole * chunk + rest)
        .map_err(|_| malformed())?;
    let aad = key.to_string();
    let mut piece = Vec::with_capacity(sealed);
    for i in 0..=whole {
        let at = CHUNKED_HEADER + i * sealed;
        let end = (at + sealed).min(main_at);
        piece.clear();
        piece.extend_from_slice(&object[at..end]);
        opener.open(&aad, &mut piece, i == whole)?;
        cut.extend_from_slice(&piece);
    }

    let main = keys.data.open(&main_aad(key), &object[main_at..stack_at])?;
    let (flag, main) = main.split_last().ok_or_else(malformed)?;
    let (meta_at, meta, holes) = main_sections(key, main)?;
    if meta_at != 0 {
        return Err(malformed());
    }
    match flag {
        0 => {
            // A copy to open in place, only while there is a key to open it.
            let mut stack = match keys.stack {
                Some(_) => object[stack_at..footer].to_vec(),
                None => Vec::new(),
            };
            restore(key, &cut, meta, &holes, &mut stack, keys)
        }
        1 if holes.is_empty() => Ok(RawUpload {
            dump: cut.into(),
            meta: Some(meta),
            stack: RawStack::InDump,
        }),
        _ => Err(malformed()),
    }
}

/// Writes a report's raw object in the chunked form (`MDR4`, [`RawUpload`]) a
/// piece of its dump at a time, sealing as it goes, then its metadata and
/// stack memory ([`RawWriter::finish`]). Blocking (a [`StreamingPut`]).
/// Dropped unfinished, it leaves nothing at the key.
#[derive(Debug)]
pub struct RawWriter {
    key: Path,
    put: StreamingPut,
    /// The header, until the first chunk is written (writes block: not in
    /// [`RawWriter::start`]).
    header: Option<Vec<u8>>,
    sealer: ChunkSealer,
    /// The form's magic, for the footer.
    magic: &'static [u8; CHUNKED_MAGIC_LEN],
    /// Plaintext bytes per chunk.
    chunk_size: usize,
    /// The plaintext of the chunk being filled (then sealed where it lies).
    chunk: Vec<u8>,
    /// Bytes of sealed dump written.
    written: u64,
}

impl RawWriter {
    /// Starts the raw object at `key` in `storage`, its dump in chunks of
    /// `chunk` bytes sealed with `data_key` and `cipher` ([`Cipher::CURRENT`]
    /// but in tests).
    async fn start(
        storage: &Storage,
        key: &Path,
        data_key: &DataKey,
        chunk: usize,
        cipher: Cipher,
    ) -> Result<RawWriter, VaultError> {
        let put = storage.start_put(key).await?;
        let sealer = data_key.chunk_sealer(cipher);
        let magic = chunked_magic(cipher);
        let mut header = Vec::with_capacity(CHUNKED_HEADER);
        header.extend_from_slice(magic);
        header.extend_from_slice(&(chunk as u32).to_le_bytes());
        header.extend_from_slice(&sealer.prefix());
        Ok(RawWriter {
            key: key.clone(),
            put,
            header: Some(header),
            sealer,
            magic,
            chunk_size: chunk,
            chunk: Vec::with_capacity(chunk + crypto::SEAL_TAG),
            written: 0,
        })
    }

    /// Appends `bytes` to the dump.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), VaultError> {
        while !bytes.is_empty() {
            let take = (self.chunk_size - self.chunk.len()).min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.chunk.len() == self.chunk_size {
                self.seal_chunk(false)?;
            }
        }
        Ok(())
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), VaultError> {
        self.sealer
            .seal(self.key.as_ref(), &mut self.chunk, last)
            .map_err(VaultError::from)?;
        if let Some(header) = self.header.take() {
            self.put.write(&header)?;
        }
        self.put.write(&self.chunk)?;
        self.written += self.chunk.len() as u64;
        self.chunk.clear();
        Ok(())
    }

    /// Ends the dump and writes the rest: `meta` and where the stack memory
    /// was under `data_key`, the stack memory (`stacks`; `None` when it was left
    /// in the dump) under `stack_key`; then stores the object durably.
    pub fn finish(
        mut self,
        data_key: &DataKey,
        stack_key: &DataKey,
        meta: &[u8],
        stacks: Option<&CutStacks>,
    ) -> Result<(), VaultError> {
        self.seal_chunk(true)?;
        let malformed = || VaultError::MalformedRaw(self.key.to_string());
        let empty = CutStacks::default();
        let (in_dump, stacks) = match stacks {
            Some(stacks) => (false, stacks),
            None => (true, &empty),
        };
        let holes = stacks.holes.to_bytes();
        let mut main = Vec::with_capacity(meta.len() + holes.len() + 2 * META_LEN + 1);
        main.extend_from_slice(meta);
        main.extend_from_slice(
            &u32::try_from(meta.len())
                .map_err(|_| malformed())?
                .to_le_bytes(),
        );
        main.extend_from_slice(&holes);
        main.extend_from_slice(
            &u32::try_from(holes.len())
                .map_err(|_| malformed())?
                .to_le_bytes(),
        );
        main.push(u8::from(in_dump));
        let main = data_key.seal(&main_aad(&self.key), &main);
        let stack = stack_key.seal(&stack_aad(&self.key), &stacks.bytes);
        self.put.write(&main)?;
        self.put.write(&stack)?;
        let mut footer = Vec::with_capacity(CHUNKED_FOOTER);
        footer.extend_from_slice(&self.written.to_le_bytes());
        footer.extend_from_slice(&(main.len() as u64).to_le_bytes());
        footer.extend_from_slice(self.magic);
        self.put.write(&footer)?;
        Ok(self.put.finish()?)
    }
}

/// A blob sealed for its store key, not stored yet.
#[derive(Debug)]
pub struct Sealed {
    key: Path,
    bytes: Vec<u8>,
}

/// The report vault, cheap to clone.
#[derive(Clone, Debug)]
pub struct Vault {
    storage: Storage,
    index: Index,
    keyring: Arc<Keyring>,
}

impl Vault {
    /// A vault over `storage`, keeping data keys in `index`, wrapped by `keyring`.
    pub fn new(storage: Storage, index: Index, keyring: Keyring) -> Vault {
        Vault {
            storage,
            index,
            keyring: Arc::new(keyring),
        }
    }

    /// The blob store underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The index the data keys are kept in.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The master keys that wrap the data keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Makes a new data key for report `id`, and the same key wrapped by the
    /// master key to be stored with the report's row
    /// ([`NewReport::data_key`](crate::index::NewReport::data_key)). Until
    /// then the key is only in memory.
    pub fn new_key(&self, id: &ReportId) -> (DataKey, WrappedKey) {
        let key = DataKey::generate();
        let wrapped = self.keyring.wrap(&key, &id.to_string());
        (key, wrapped)
    }

    /// Makes a new stack key for report `id`, and the same key wrapped by the
    /// master key to be stored with the report's row
    /// ([`NewReport::stack_key`](crate::index::NewReport::stack_key)).
    pub fn new_stack_key(&self, id: &ReportId) -> (DataKey, WrappedKey) {
        let key = DataKey::generate();
        let wrapped = self.keyring.wrap(&key, &stack_key_aad(id));
        (key, wrapped)
    }

    /// The keys of report `id`, in one index read; `None` once its data key was
    /// destroyed (the report is deleted).
    pub async fn keys(&self, id: &ReportId) -> Result<Option<ReportKeys>, VaultError> {
        let Some((data, stack)) = self.index.report_keys(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.unwrap_keys(id, &data, stack.as_ref())?))
    }

    /// The keys of report `id` as the index keeps them (`data`, and `stack`
    /// while it has one), unwrapped: for a caller that read them with other
    /// rows in one read (a job: `Index::job_report`).
    pub fn unwrap_keys(
        &self,
        id: &ReportId,
        data: &WrappedKey,
        stack: Option<&WrappedKey>,
    ) -> Result<ReportKeys, VaultError> {
        let stack = match stack {
            Some(wrapped) => Some(self.keyring.unwrap(wrapped, &stack_key_aad(id))?),
            None => None,
        };
        Ok(ReportKeys {
            data: self.keyring.unwrap(data, &id.to_string())?,
            stack,
        })
    }

    /// Makes, wraps and stores a new data key for report `id` on its own, without
    /// a report row.
    pub async fn create_key(&self, id: &ReportId) -> Result<DataKey, VaultError> {
        let (key, wrapped) = self.new_key(id);
        self.index.insert_report_key(id, &wrapped, now_ms()).await?;
        Ok(key)
    }

    /// The data key of report `id`; `None` once it was destroyed (the report is
    /// deleted: its blobs count as gone even where a copy remains).
    pub async fn data_key(&self, id: &ReportId) -> Result<Option<DataKey>, VaultError> {
        match self.index.report_key(id).await? {
            Some(wrapped) => Ok(Some(self.keyring.unwrap(&wrapped, &id.to_string())?)),
            None => Ok(None),
        }
    }

    /// Destroys the data key (and the stack key) of report `id`: every copy of
    /// its blobs becomes unreadable. Returns whether there was one.
    pub async fn destroy_key(&self, id: &ReportId) -> Result<bool, VaultError> {
        Ok(self.index.delete_report_key(id).await?)
    }

    /// Seals `plain` with `data_key` (bound to `key`) and stores it durably.
    pub async fn put(
        &self,
        key: &Path,
        data_key: &DataKey,
        plain: &[u8],
    ) -> Result<(), VaultError> {
        put_sealed(&self.storage, key, data_key, plain).await
    }

    /// Stores a blob sealed by [`Vault::seal_in_place`] at the key it was
    /// sealed for without waiting for the disk ([`Storage::put_lazy`]): for a
    /// derived blob (a processed report whose report keeps its stack key) that
    /// a power cut may cost, never half-written to a reader, and that is made
    /// again when lost (`crate::pipeline::stored`).
    pub async fn put_sealed_lazy(&self, sealed: Sealed) -> Result<(), VaultError> {
        Ok(self
            .storage
            .put_lazy(&sealed.key, sealed.bytes.into())
            .await?)
    }

    /// Seals `buf[crypto::SEAL_HEADROOM..]` with `data_key` (bound to `key`)
    /// where it lies, for [`Vault::put_sealed`]: a large blob is never held twice.
    pub fn seal_in_place(key: &Path, data_key: &DataKey, mut buf: Vec<u8>) -> Sealed {
        data_key.seal_in_place(key.as_ref(), &mut buf);
        Sealed {
            key: key.clone(),
            bytes: buf,
        }
    }

    /// Seals a report's dump (`buf[RAW_HEADROOM..]`, its stack memory cut out
    /// into `stacks` by `mayday_report::scrub::cut_stack_memory`) and its
    /// metadata into its one raw object ([`RawUpload`]): the dump, the metadata
    /// and where the stacks were with `data_key`, the stack memory with
    /// `stack_key`; for [`Vault::put_sealed`]. The dump is not copied: the rest
    /// is appended to it.
    pub fn seal_raw_in_place(
        key: &Path,
        data_key: &DataKey,
        stack_key: &DataKey,
        mut buf: Vec<u8>,
        meta: &[u8],
        stacks: &CutStacks,
    ) -> Result<Sealed, VaultError> {
        let malformed = || VaultError::MalformedRaw(key.to_string());
        let meta_len = u32::try_from(meta.len()).map_err(|_| malformed())?;
        let holes = stacks.holes.to_bytes();
        let holes_len = u32::try_from(holes.len()).map_err(|_| malformed())?;
        let stack = stack_key.seal(&stack_aad(key), &stacks.bytes);
        buf.reserve_exact(meta.len() + holes.len() + 2 * META_LEN + crypto::SEAL_TAG + stack.len());
        buf.extend_from_slice(meta);
        buf.extend_from_slice(&meta_len.to_le_bytes());
        buf.extend_from_slice(&holes);
        buf.extend_from_slice(&holes_len.to_le_bytes());
        data_key.seal_in_place_at(key.as_ref(), &mut buf, RAW_HEADER);
        let main_len = (buf.len() - RAW_HEADER) as u64;
        buf[..RAW_MAGIC.len()].copy_from_slice(RAW_MAGIC);
        buf[RAW_MAGIC.len()..RAW_HEADER].copy_from_slice(&main_len.to_le_bytes());
        buf.extend_from_slice(&stack);
        Ok(Sealed {
            key: key.clone(),
            bytes: buf,
        })
    }

    /// Starts the raw object of a report at `key` whose dump is written a
    /// piece at a time, sealed with `data_key` ([`RawWriter`]).
    pub async fn start_raw(&self, key: &Path, data_key: &DataKey) -> Result<RawWriter, VaultError> {
        RawWriter::start(&self.storage, key, data_key, DUMP_CHUNK, Cipher::CURRENT).await
    }

    /// Stores report `id`'s dump in a form stored before stack keys (the stack
    /// memory in the dump: [`RawStack::InDump`]), in place of the one at
    /// `raw_key`, keeping its metadata (`meta`, as read) where the report keeps
    /// it: with the dump when `meta_key` is `raw_key` ([`RawUpload`]).
    pub async fn put_raw_dump(
        &self,
        raw_key: &Path,
        meta_key: &Path,
        data_key: &DataKey,
        dump: &[u8],
        meta: Option<&[u8]>,
    ) -> Result<(), VaultError> {
        match meta {
            Some(meta) if meta_key == raw_key => {
                let mut buf = Vec::with_capacity(
                    crypto::SEAL_HEADROOM + dump.len() + meta.len() + META_LEN + crypto::SEAL_TAG,
                );
                buf.resize(crypto::SEAL_HEADROOM, 0);
                buf.extend_from_slice(dump);
                let len = u32::try_from(meta.len())
                    .map_err(|_| VaultError::MalformedRaw(raw_key.to_string()))?;
                buf.extend_from_slice(meta);
                buf.extend_from_slice(&len.to_le_bytes());
                self.put_sealed(Vault::seal_in_place(raw_key, data_key, buf))
                    .await
            }
            _ => self.put(raw_key, data_key, dump).await,
        }
    }

    /// Report's upload, opened with its `keys`, from the raw object at
    /// `raw_key` and, where the report keeps it apart, the metadata at
    /// `meta_key`; `None` when the dump is gone. The stack memory is put back
    /// into the dump while the stack key opens it ([`RawStack`]). A raw object
    /// is read about once (by the job that processes it; again only to process it
    /// again or to download it), so its pages leave a local store's page cache
    /// once it is read ([`AfterRead::Release`]).
    pub async fn get_raw(
        &self,
        raw_key: &Path,
        meta_key: &Path,
        keys: &ReportKeys,
    ) -> Result<Option<RawUpload>, VaultError> {
        let raw = self
            .get_raw_admitted(raw_key, meta_key, keys, |_| async {})
            .await?;
        Ok(raw.map(|(raw, ())| raw))
    }

    /// [`Vault::get_raw`], the raw object read once `admit` — told the
    /// object's size as stored, before it is read — is done; with what `admit`
    /// gave.
    pub async fn get_raw_admitted<T>(
        &self,
        raw_key: &Path,
        meta_key: &Path,
        keys: &ReportKeys,
        admit: impl AsyncFnOnce(u64) -> T,
    ) -> Result<Option<(RawUpload, T)>, VaultError> {
        let read = self
            .storage
            .get_admitted(raw_key, admit, AfterRead::Release)
            .await?;
        let Some((object, admitted)) = read else {
            return Ok(None);
        };
        let mut raw = open_raw(raw_key, object, keys, meta_key == raw_key)?;
        if meta_key != raw_key {
            raw.meta = self.get(meta_key, &keys.data).await?;
        }
        Ok(Some((raw, admitted)))
    }

    /// Report `id`'s dump, opened (its stack memory in it while it is kept);
    /// `None` when it or the report's data key is gone. (`raw_key` and
    /// `meta_key` as in [`Vault::get_raw`].)
    pub async fn read_dump(
        &self,
        id: &ReportId,
        raw_key: &Path,
        meta_key: &Path,
    ) -> Result<Option<Bytes>, VaultError> {
        let Some(keys) = self.keys(id).await? else {
            return Ok(None);
        };
        Ok(self
            .get_raw(raw_key, meta_key, &keys)
            .await?
            .map(|raw| raw.dump))
    }

    /// Stores a blob sealed by [`Vault::seal_in_place`] durably, at the key it
    /// was sealed for.
    pub async fn put_sealed(&self, sealed: Sealed) -> Result<(), VaultError> {
        Ok(self.storage.put(&sealed.key, sealed.bytes.into()).await?)
    }

    /// The blob at `key`, opened with `data_key`; `None` when there is none.
    pub async fn get(&self, key: &Path, data_key: &DataKey) -> Result<Option<Bytes>, VaultError> {
        get_sealed(&self.storage, key, data_key).await
    }

    /// Report `id`'s blob at `key`, opened; `None` when the blob or the report's
    /// data key is gone.
    pub async fn read(&self, id: &ReportId, key: &Path) -> Result<Option<Bytes>, VaultError> {
        match self.data_key(id).await? {
            Some(data_key) => self.get(key, &data_key).await,
            None => Ok(None),
        }
    }

    /// Deletes the blob at `key`; a missing blob counts as deleted.
    pub async fn delete(&self, key: &Path) -> Result<(), VaultError> {
        Ok(self.storage.delete(key).await?)
    }

    /// Every report blob in the store (under `raw/` and `reports/`), with the
    /// report its key names and when it was last written (Unix ms). Keys there
    /// that name no report are left out.
    pub async fn report_blobs(&self) -> Result<Vec<(Path, ReportId, i64)>, VaultError> {
        let mut blobs = Vec::new();
        for prefix in ["raw", "reports"] {
            let prefix = Path::from(prefix);
            for (key, modified) in self.storage.list_with_times(Some(&prefix)).await? {
                if let Some(id) = report_id_of_key(&key) {
                    blobs.push((key, id, modified));
                }
            }
        }
        Ok(blobs)
    }
}

/// Seals `plain` with `data_key` (bound to `key`) and stores it in `storage`
/// durably.
pub async fn put_sealed(
    storage: &Storage,
    key: &Path,
    data_key: &DataKey,
    plain: &[u8],
) -> Result<(), VaultError> {
    let sealed = data_key.seal(key.as_ref(), plain);
    Ok(storage.put(key, sealed.into()).await?)
}

/// The blob at `key` in `storage`, opened with `data_key`; `None` when there is
/// none.
pub async fn get_sealed(
    storage: &Storage,
    key: &Path,
    data_key: &DataKey,
) -> Result<Option<Bytes>, VaultError> {
    match storage.get(key).await? {
        Some(sealed) => Ok(Some(data_key.open(key.as_ref(), &sealed)?.into())),
        None => Ok(None),
    }
}

/// Key of a raw dump: `raw/<yyyy-mm-dd>/<id>.dmp`.
pub fn raw_dump_key(received: Date, id: &ReportId) -> Path {
    Path::from_iter(["raw", &date_component(received), &format!("{id}.dmp")])
}

/// Key of a raw upload's metadata stored apart from its dump, as reports stored
/// before [`RawUpload`] have it: `raw/<yyyy-mm-dd>/<id>.json`.
pub fn raw_meta_key(received: Date, id: &ReportId) -> Path {
    Path::from_iter(["raw", &date_component(received), &format!("{id}.json")])
}

/// Key of a processed report: `reports/<id>.json`.
pub fn processed_key(id: &ReportId) -> Path {
    Path::from_iter(["reports", &format!("{id}.json")])
}

/// The report id a report blob's key names (`raw/<date>/<id>.dmp|json`,
/// `reports/<id>.json`); `None` for any other key.
pub fn report_id_of_key(key: &Path) -> Option<ReportId> {
    let mut parts: Vec<&str> = key.as_ref().split('/').collect();
    let file = parts.pop()?;
    let ok = matches!(parts.as_slice(), ["raw", _] | ["reports"]);
    let stem = file
        .strip_suffix(".dmp")
        .or_else(|| file.strip_suffix(".json"))?;
    if ok { stem.parse().ok() } else { None }
}

fn date_component(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    /// Data keys rewrapped.
    pub rewrapped: u64,
    /// Stack keys rewrapped.
    pub stack_keys_rewrapped: u64,
    /// The new master key, when it is not kept in the data dir (config or
    /// environment): the operator must put it there before the next start.
    pub new_key_to_configure: Option<MasterKey>,
}

/// Why a rotation stopped; running it again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A key could not be read, unwrapped or written.
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The master key is configured (not a file) and no new key was given: a
    /// generated one could be lost if the rotation were interrupted.
    #[error(
        "the master key is configured, so give the new one (--new-key or MAYDAY_NEW_MASTER_KEY; \
         `mayday-server keys generate` makes one)"
    )]
    NewKeyRequired,
}

/// Rewraps every data key and stack key under a new master key.
///
/// With the master key in `<data_dir>/master.key`: the new key is first written to
/// `master.key.next` (so an interrupted rotation is resumed by running it again,
/// and servers started meanwhile hold both keys), every data key is rewrapped,
/// then `master.key.next` replaces `master.key` and the old key is gone. With the
/// master key from config or environment, `new_key` must be given (so it cannot
/// be lost half-way); it is returned for the operator to configure, and running
/// the rotation again with the same keys resumes it.
pub async fn rotate(
    config: &Config,
    index: &Index,
    new_key: Option<MasterKey>,
) -> Result<Rotation, RotateError> {
    let keyring = MasterKey::load(config)?;
    let in_file = config.master_key.is_none();
    let next_path = config.data_dir.join(crypto::NEXT_MASTER_KEY_FILE);
    let new_key = match (in_file, keyring.next(), new_key) {
        // Resume an interrupted rotation with the key it started with.
        (true, Some(next), _) => next.clone(),
        (true, None, given) => {
            let key = given.unwrap_or_else(MasterKey::generate);
            crypto::write_key_file(&next_path, &key)?;
            key
        }
        (false, _, given) => given.ok_or(RotateError::NewKeyRequired)?,
    };
    let all = keyring.with_other(new_key.clone());
    let rewrapped = rewrap_all(index, &all, &new_key, KeyKind::Data).await?;
    let stack_keys_rewrapped = rewrap_all(index, &all, &new_key, KeyKind::Stack).await?;
    if in_file {
        let current = config.data_dir.join(crypto::MASTER_KEY_FILE);
        std::fs::rename(&next_path, &current).map_err(|source| CryptoError::KeyFile {
            path: current.clone(),
            source,
        })?;
        if let Ok(dir) = std::fs::File::open(&config.data_dir) {
            let _ = dir.sync_all();
        }
        Ok(Rotation {
            rewrapped,
            stack_keys_rewrapped,
            new_key_to_configure: None,
        })
    } else {
        Ok(Rotation {
            rewrapped,
            stack_keys_rewrapped,
            new_key_to_configure: Some(new_key),
        })
    }
}

/// Rewraps every stored key of `kind` that `new_key` did not wrap (unwrapping
/// with `all`) under `new_key`. Returns how many.
async fn rewrap_all(
    index: &Index,
    all: &Keyring,
    new_key: &MasterKey,
    kind: KeyKind,
) -> Result<u64, RotateError> {
    let mut rewrapped = 0;
    let mut after = None;
    loop {
        let batch = index.report_keys_after(kind, after.as_ref(), 500).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.0);
        for (id, wrapped) in &batch {
            if wrapped.master_key_id == new_key.id() {
                continue;
            }
            let aad = match kind {
                KeyKind::Data => id.to_string(),
                KeyKind::Stack => stack_key_aad(id),
            };
            let key = all.unwrap(wrapped, &aad)?;
            let rewrapped_key = new_key.wrap(&key, &aad);
            // Only if the key is still the one we read: a destroyed key stays
            // destroyed (a deleted report, dropped stack memory).
            if index
                .replace_report_key(kind, id, wrapped, &rewrapped_key)
                .await?
            {
                rewrapped += 1;
            }
        }
    }
    Ok(rewrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_blob_keys_name_their_report() {
        let id = ReportId::new();
        let day = Date::from_calendar_date(2026, time::Month::November, 22).unwrap();
        for key in [
            raw_dump_key(day, &id),
            raw_meta_key(day, &id),
            processed_key(&id),
        ] {
            assert_eq!(report_id_of_key(&key), Some(id), "{key}");
        }
        assert_eq!(
            raw_dump_key(day, &id).to_string(),
            format!("raw/2026-11-22/{id}.dmp")
        );
        assert_eq!(report_id_of_key(&Path::from("symbols/a/b/c.sym")), None);
    }

    /// A small dump whose stack memory is a pattern, the same dump with its
    /// stack memory zeroed, and a buffer to seal: the dump cut, with its stack
    /// memory apart.
    fn dump_with_stack() -> (Vec<u8>, Vec<u8>, Vec<u8>, CutStacks) {
        let mut dump = crate::pipeline::process::tests::small_dump(None);
        let mut scratch = dump.clone();
        let holes = mayday_report::scrub::cut_stack_memory(&mut scratch, 0)
            .unwrap()
            .holes;
        assert!(!holes.is_empty());
        for r in holes.ranges() {
            for (i, b) in dump[r.clone()].iter_mut().enumerate() {
                *b = 0x80 | i as u8;
            }
        }
        let mut stripped = dump.clone();
        mayday_report::scrub::drop_stack_memory(&mut stripped).unwrap();
        assert!(stripped != dump);
        let mut buf = vec![0; RAW_HEADROOM];
        buf.extend_from_slice(&dump);
        let stacks = mayday_report::scrub::cut_stack_memory(&mut buf, RAW_HEADROOM).unwrap();
        (dump, stripped, buf, stacks)
    }

    /// Asserts that `object` at `key` opens with `keys` to `dump` with its
    /// `stacks` put back and `meta`, and not at another key (bound to its
    /// place); then, without the stack key, to `stripped` (its stacks zero).
    /// Returns the data key.
    fn assert_opens_with_and_without_stacks(
        key: &Path,
        object: &[u8],
        keys: ReportKeys,
        (dump, stripped): (&[u8], &[u8]),
        meta: &[u8],
        stacks: &CutStacks,
    ) -> DataKey {
        let raw = open_raw(key, Bytes::copy_from_slice(object), &keys, true).unwrap();
        let bytes = stacks.bytes.len() as u64;
        assert_eq!(raw.stack, RawStack::Restored { bytes });
        assert_eq!(raw.dump, dump);
        assert_eq!(raw.meta.as_deref(), Some(meta));
        let elsewhere = Path::from("raw/2026-12-01/y.dmp");
        assert!(open_raw(&elsewhere, Bytes::copy_from_slice(object), &keys, true).is_err());

        let keys = ReportKeys {
            data: keys.data,
            stack: None,
        };
        let raw = open_raw(key, Bytes::copy_from_slice(object), &keys, true).unwrap();
        assert_eq!(raw.stack, RawStack::Destroyed);
        assert_eq!(raw.dump, stripped);
        assert_eq!(raw.meta.as_deref(), Some(meta));
        keys.data
    }

    #[test]
    fn a_raw_object_opens_with_its_stacks_while_the_stack_key_exists() {
        let key = Path::from("raw/2026-12-01/x.dmp");
        let (dump, stripped, buf, stacks) = dump_with_stack();
        let (data, stack_key) = (DataKey::generate(), DataKey::generate());
        let meta = b"{\"id\":\"x\"}";
        let sealed = Vault::seal_raw_in_place(&key, &data, &stack_key, buf, meta, &stacks).unwrap();
        let object = sealed.bytes;
        assert!(object.starts_with(RAW_MAGIC));
        // As large as the dump and its metadata, but for the headers, the tags
        // and where the stacks were: nothing stored twice.
        let overhead = RAW_HEADER + 2 * (crypto::SEAL_HEADROOM + crypto::SEAL_TAG);
        let holes = stacks.holes.to_bytes().len() + 2 * META_LEN;
        assert_eq!(object.len(), dump.len() + meta.len() + overhead + holes);

        let keys = ReportKeys {
            data,
            stack: Some(stack_key),
        };
        let data = assert_opens_with_and_without_stacks(
            &key,
            &object,
            keys,
            (&dump, &stripped),
            meta,
            &stacks,
        );
        let keys = ReportKeys { data, stack: None };
        // The data key does not open the stack part.
        let keys = ReportKeys {
            stack: Some(DataKey::generate()),
            ..keys
        };
        assert!(open_raw(&key, Bytes::copy_from_slice(&object), &keys, true).is_err());
    }

    #[test]
    fn a_raw_object_with_a_broken_header_is_refused() {
        let key = Path::from("raw/2026-12-01/x.dmp");
        let (_, _, buf, stacks) = dump_with_stack();
        let data = DataKey::generate();
        let object = Vault::seal_raw_in_place(&key, &data, &data, buf, b"{}", &stacks)
            .unwrap()
            .bytes;
        let keys = ReportKeys { data, stack: None };
        assert!(open_raw(&key, Bytes::copy_from_slice(&object), &keys, true).is_ok());
        // Opened where it lies only when nothing else holds its bytes.
        let shared = Bytes::from(object.clone());
        let held = shared.clone();
        let opened = open_raw(&key, shared, &keys, true).unwrap();
        assert_eq!(held, object);
        let alone = open_raw(&key, Bytes::from(object.clone()), &keys, true).unwrap();
        assert_eq!((alone.dump, alone.meta), (opened.dump, opened.meta));
        let mut longer = object.clone();
        longer[RAW_MAGIC.len()..RAW_HEADER].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut shorter = object.clone();
        shorter[RAW_MAGIC.len()..RAW_HEADER].copy_from_slice(&10u64.to_le_bytes());
        for broken in [
            &object[..6],
            &longer[..],
            &shorter[..],
            &object[..object.len() / 2],
        ] {
            assert!(open_raw(&key, Bytes::copy_from_slice(broken), &keys, true).is_err());
        }
    }

    #[test]
    fn a_raw_object_splits_into_its_dump_and_metadata_or_is_refused() {
        let key = Path::from("raw/2026-11-22/x.dmp");
        let (dump, meta) =
            split_meta(&key, Bytes::from_static(b"MDMP..{\"a\":1}\x07\0\0\0")).unwrap();
        assert_eq!(dump, Bytes::from_static(b"MDMP.."));
        assert_eq!(meta, Bytes::from_static(b"{\"a\":1}"));
        for malformed in [&b""[..], b"\x01\0\0", b"ab\x03\0\0\0", b"\xff\xff\xff\xff"] {
            assert!(split_meta(&key, Bytes::copy_from_slice(malformed)).is_err());
        }
    }

    /// `dump` cut (stacks as `stacks`, or left in it when `None`) written as a
    /// chunked raw object in chunks of 4 KiB sealed with `cipher`, through a
    /// memory store.
    async fn chunked(
        key: &Path,
        keys: (DataKey, DataKey),
        cut: Vec<u8>,
        meta: &'static [u8],
        stacks: Option<CutStacks>,
        cipher: Cipher,
    ) -> (Vec<u8>, (DataKey, DataKey)) {
        let storage = Storage::open("memory://", &BTreeMap::new()).unwrap();
        let mut writer = RawWriter::start(&storage, key, &keys.0, 4096, cipher)
            .await
            .unwrap();
        let keys = tokio::task::spawn_blocking(move || {
            for piece in cut.chunks(1000) {
                writer.write(piece).unwrap();
            }
            writer
                .finish(&keys.0, &keys.1, meta, stacks.as_ref())
                .unwrap();
            keys
        })
        .await
        .unwrap();
        (storage.get(key).await.unwrap().unwrap().to_vec(), keys)
    }

    /// In its form of now (XAES-256-GCM, `MDR4`) and of before (`MDR3`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunked_raw_object_opens_as_the_whole_one_does() {
        for (cipher, magic) in [
            (Cipher::CURRENT, b"MDR4"),
            (Cipher::XChaCha20Poly1305, b"MDR3"),
        ] {
            a_chunked_raw_object_of(cipher, magic).await;
        }
    }

    async fn a_chunked_raw_object_of(cipher: Cipher, magic: &[u8; CHUNKED_MAGIC_LEN]) {
        let key = Path::from("raw/2026-12-01/x.dmp");
        let (mut dump, mut stripped, buf, stacks) = dump_with_stack();
        // Several chunks: bytes after the dump's own.
        let mut cut = buf[RAW_HEADROOM..].to_vec();
        for whole in [&mut dump, &mut stripped, &mut cut] {
            whole.extend((0..20_000u32).map(|i| i as u8));
        }
        let meta = b"{\"id\":\"x\"}";
        let keys = (DataKey::generate(), DataKey::generate());
        let (object, (data, stack_key)) =
            chunked(&key, keys, cut.clone(), meta, Some(stacks.clone()), cipher).await;
        assert!(object.starts_with(magic) && object.ends_with(magic));

        let keys = ReportKeys {
            data,
            stack: Some(stack_key),
        };

        // Chunks swapped, one dropped (the lengths made to fit), the end cut off.
        let sealed = 4096 + crypto::SEAL_TAG;
        let first = CHUNKED_HEADER..CHUNKED_HEADER + sealed;
        let second = first.end..first.end + sealed;
        let mut swapped = object.clone();
        swapped[first.clone()].copy_from_slice(&object[second.clone()]);
        swapped[second.clone()].copy_from_slice(&object[first.clone()]);
        let mut dropped = object.clone();
        dropped.drain(second.clone());
        let footer = dropped.len() - CHUNKED_FOOTER;
        let dump_len = u64::from_le_bytes(dropped[footer..footer + 8].try_into().unwrap());
        dropped[footer..footer + 8].copy_from_slice(&(dump_len - sealed as u64).to_le_bytes());
        for broken in [
            &swapped[..],
            &dropped[..],
            &object[..object.len() - 1],
            &object[..40],
        ] {
            assert!(open_raw(&key, Bytes::copy_from_slice(broken), &keys, true).is_err());
        }

        let data = assert_opens_with_and_without_stacks(
            &key,
            &object,
            keys,
            (&dump, &stripped),
            meta,
            &stacks,
        );

        // Its stack memory left in it: the dump as it was, stacks in it.
        let (object, (data, _)) = chunked(
            &key,
            (data, DataKey::generate()),
            dump.clone(),
            meta,
            None,
            cipher,
        )
        .await;
        let keys = ReportKeys { data, stack: None };
        let raw = open_raw(&key, Bytes::copy_from_slice(&object), &keys, true).unwrap();
        assert_eq!(raw.stack, RawStack::InDump);
        assert_eq!(raw.dump, dump);
        assert_eq!(raw.meta.as_deref(), Some(&meta[..]));
    }
}

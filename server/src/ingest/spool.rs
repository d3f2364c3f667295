//! Where an upload's dump waits between the wire and the scrubber. It is never
//! plaintext on disk:
//! - up to `spool_memory_bytes` (and while all uploads together hold less than
//!   `spool_memory_total_bytes`) it stays in memory;
//! - beyond that it goes to an unnamed file in `<data_dir>/spool/` (`O_TMPFILE`:
//!   it has no name, so nothing is left of it when the process dies), encrypted
//!   in 64 KiB chunks with XChaCha20-Poly1305 under a random key that lives only
//!   in this process's memory. The directory is emptied at start in case the
//!   platform made named files.
//!
//! A dump up to `stream_dump_bytes` is decrypted into memory whole for
//! scrubbing and sealed there ([`crate::crypto::DataKey::seal_in_place`]): peak
//! memory per upload is about one copy of it. A larger one is read back a range
//! at a time ([`SpoolReader::read_at`] decrypts only the chunks a range needs)
//! into an anonymous mapping, a window at a time
//! (`mayday_report::scrub::scrub_minidump_windowed`), and sealed and stored as
//! it is scrubbed. Memory-mapping a plaintext file was not an option: its
//! unscrubbed bytes would be on disk. Uploads being scrubbed together are
//! bounded by `scrub_memory_bytes` ([`Spooler::scrub_permit`]: a whole dump,
//! or the windows of one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::IngestError;
use crate::config::Limits;

/// Plaintext bytes per encrypted chunk.
const CHUNK: usize = 64 * 1024;
/// Authentication tag per chunk.
const TAG: usize = 16;
/// Units of the scrub memory semaphore.
const MIB: u64 = 1024 * 1024;
/// Zero bytes an in-memory spool keeps in front of its dump: what sealing the
/// dump where it lies needs ([`Vault::seal_raw_in_place`]), so that
/// [`SpoolReader::into_vec`] hands the buffer over without a copy.
///
/// [`Vault::seal_raw_in_place`]: crate::vault::Vault::seal_raw_in_place
const HEADROOM: usize = crate::vault::RAW_HEADROOM;
/// Room [`SpoolReader::into_vec`] keeps after a dump for what sealing appends
/// (the metadata, the stack holes, lengths and tags, the sealed stack memory,
/// which takes the place of what was cut out of the dump): with ordinary
/// metadata the buffer is sealed without being moved.
const TAILROOM: usize = 64 * 1024;

/// Spools of one process: where they go and the memory they may take together.
#[derive(Debug)]
pub struct Spooler {
    dir: PathBuf,
    memory_bytes: u64,
    total_memory_bytes: u64,
    in_memory: AtomicU64,
    scrub_memory: Arc<Semaphore>,
    scrub_units: u32,
}

impl Spooler {
    /// Spools into `<data_dir>/spool` with `limits`.
    pub fn new(data_dir: &Path, limits: &Limits) -> Spooler {
        let scrub_units = u32::try_from(limits.scrub_memory_bytes / MIB)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        Spooler {
            dir: spool_dir(data_dir),
            memory_bytes: limits.spool_memory_bytes,
            total_memory_bytes: limits.spool_memory_total_bytes,
            in_memory: AtomicU64::new(0),
            scrub_memory: Arc::new(Semaphore::new(scrub_units as usize)),
            scrub_units,
        }
    }

    /// Waits until `len` bytes of dumps may be taken into memory to be scrubbed
    /// (a whole dump, or what scrubbing one in windows holds at most).
    pub(crate) async fn scrub_permit(&self, len: u64) -> OwnedSemaphorePermit {
        let units = u32::try_from(len.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, self.scrub_units);
        // The semaphore is never closed.
        Arc::clone(&self.scrub_memory)
            .acquire_many_owned(units)
            .await
            .expect("scrub memory semaphore is never closed")
    }
}

/// `<data_dir>/spool`.
fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("spool")
}

/// Empties `<data_dir>/spool` (what a crashed process may have left, all of it
/// encrypted under keys that died with it) and makes it anew, readable only by
/// this user.
pub fn clear_spool(data_dir: &Path) -> std::io::Result<()> {
    let dir = spool_dir(data_dir);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// One upload's dump on its way in.
pub struct Spool {
    spooler: Arc<Spooler>,
    /// The bytes while in memory, after [`HEADROOM`] zero bytes (none while
    /// nothing was written).
    memory: Vec<u8>,
    /// Bytes of `memory` counted in the spooler's total.
    counted: u64,
    file: Option<Encrypted>,
    len: u64,
    head: [u8; 4],
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.len)
            .field("on_disk", &self.file.is_some())
            .finish_non_exhaustive()
    }
}

/// The encrypted file a spool went to.
struct Encrypted {
    file: tokio::fs::File,
    cipher: XChaCha20Poly1305,
    /// Plaintext not yet making a whole chunk.
    pending: Vec<u8>,
    chunks: u64,
}

fn nonce(index: u64) -> XNonce {
    let mut nonce = [0u8; 24];
    nonce[16..].copy_from_slice(&index.to_be_bytes());
    XNonce::from(nonce)
}

/// Binds a chunk to its place: whether it is the last one (so a cut-off file
/// does not read as whole).
fn aad(last: bool) -> [u8; 1] {
    [u8::from(last)]
}

impl Encrypted {
    async fn create(dir: &Path) -> std::io::Result<Encrypted> {
        let dir = dir.to_owned();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Ok(Encrypted {
            file: tokio::fs::File::from_std(file),
            cipher: XChaCha20Poly1305::new(&key.into()),
            pending: Vec::with_capacity(CHUNK + TAG),
            chunks: 0,
        })
    }

    async fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let take = (CHUNK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                self.seal_pending(false).await?;
            }
        }
        Ok(())
    }

    async fn seal_pending(&mut self, last: bool) -> std::io::Result<()> {
        let mut chunk = std::mem::take(&mut self.pending);
        self.cipher
            .encrypt_in_place(&nonce(self.chunks), &aad(last), &mut chunk)
            .map_err(|_| std::io::Error::other("spool encryption failed"))?;
        self.chunks += 1;
        self.file.write_all(&chunk).await?;
        chunk.clear();
        self.pending = chunk;
        Ok(())
    }
}

/// A spooled dump read back at any offset. Blocking: used off the async
/// threads.
pub(crate) struct SpoolReader {
    len: u64,
    source: Source,
}

enum Source {
    /// The dump is `buf[HEADROOM..]` (or all of an empty `buf`).
    Memory(Vec<u8>),
    File {
        file: std::fs::File,
        cipher: XChaCha20Poly1305,
        chunks: u64,
        /// Bytes of the file.
        size: u64,
        /// The chunk decrypted last: its index and plaintext.
        cached: Option<(u64, Vec<u8>)>,
    },
}

impl std::fmt::Debug for SpoolReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolReader")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SpoolReader {
    /// Bytes of the dump.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fills `out` with the dump's bytes from `offset`, decrypting only the
    /// chunks they are in.
    pub(crate) fn read_at(&mut self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|end| *end <= self.len)
            .ok_or_else(|| std::io::Error::other("read beyond the spooled dump"))?;
        let (file, cipher, chunks, size, cached) = match &mut self.source {
            Source::Memory(bytes) => {
                // Within `len`, which is the length of the dump in `bytes`.
                let dump = bytes.get(HEADROOM..).unwrap_or_default();
                out.copy_from_slice(&dump[offset as usize..end as usize]);
                return Ok(());
            }
            Source::File {
                file,
                cipher,
                chunks,
                size,
                cached,
            } => (file, cipher, *chunks, *size, cached),
        };
        let mut pos = offset;
        while pos < end {
            let index = pos / CHUNK as u64;
            if cached.as_ref().is_none_or(|(at, _)| *at != index) {
                *cached = Some((index, read_chunk(file, cipher, index, chunks, size)?));
            }
            let plain = cached
                .as_ref()
                .map(|(_, p)| p.as_slice())
                .unwrap_or_default();
            let from = (pos - index * CHUNK as u64) as usize;
            let take = ((end - pos) as usize).min(plain.len().saturating_sub(from));
            if take == 0 {
                return Err(std::io::Error::other("spool file cut short"));
            }
            let done = (pos - offset) as usize;
            out[done..done + take].copy_from_slice(&plain[from..from + take]);
            pos += take as u64;
        }
        Ok(())
    }

    /// The whole dump in memory, after `headroom` zero bytes, with room after
    /// it for what sealing appends. A dump spooled in memory is handed over
    /// where it lies when `headroom` is the room it was spooled with.
    pub(crate) fn into_vec(self, headroom: usize) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(std::io::Error::other)?;
        let mut out = Vec::new();
        match self.source {
            Source::Memory(mut bytes) if headroom == HEADROOM && bytes.len() == HEADROOM + len => {
                bytes
                    .try_reserve_exact(TAILROOM)
                    .map_err(std::io::Error::other)?;
                Ok(bytes)
            }
            Source::Memory(bytes) => {
                out.try_reserve_exact(headroom + len + TAILROOM)
                    .map_err(std::io::Error::other)?;
                out.resize(headroom, 0);
                out.extend_from_slice(bytes.get(HEADROOM..).unwrap_or_default());
                Ok(out)
            }
            source @ Source::File { .. } => {
                out.try_reserve_exact(headroom + len + TAILROOM)
                    .map_err(std::io::Error::other)?;
                out.resize(headroom + len, 0);
                let mut reader = SpoolReader {
                    len: self.len,
                    source,
                };
                reader.read_at(0, &mut out[headroom..])?;
                Ok(out)
            }
        }
    }
}

/// Reads and decrypts chunk `index` of a spool file of `chunks` chunks and
/// `size` bytes.
fn read_chunk(
    file: &std::fs::File,
    cipher: &XChaCha20Poly1305,
    index: u64,
    chunks: u64,
    size: u64,
) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let last = index + 1 == chunks;
    let at = index * (CHUNK + TAG) as u64;
    let want = if last {
        size.saturating_sub(at)
    } else {
        (CHUNK + TAG) as u64
    };
    if index >= chunks || want < TAG as u64 || want > (CHUNK + TAG) as u64 {
        return Err(std::io::Error::other("spool file cut short"));
    }
    let mut chunk = vec![0u8; want as usize];
    file.read_exact_at(&mut chunk, at)?;
    cipher
        .decrypt_in_place(&nonce(index), &aad(last), &mut chunk)
        .map_err(|_| std::io::Error::other("spool file does not decrypt"))?;
    Ok(chunk)
}

impl Spool {
    /// An empty spool.
    pub(crate) fn new(spooler: Arc<Spooler>) -> Spool {
        Spool {
            spooler,
            memory: Vec::new(),
            counted: 0,
            file: None,
            len: 0,
            head: [0; 4],
        }
    }

    /// An empty spool for about `expected` bytes (the request's length, when it
    /// said one): room for them is made before the first byte comes, where one
    /// spool may keep that much in memory and all together have room for it now,
    /// so that a dump arriving in pieces is not copied each time its buffer
    /// grows. Only what is written counts against the bounds: room not yet
    /// written holds no memory of its own until it is written.
    pub(crate) fn with_expected(spooler: Arc<Spooler>, expected: Option<u64>) -> Spool {
        let mut spool = Spool::new(spooler);
        let fits = |len: u64| {
            len <= spool.spooler.memory_bytes
                && spool.spooler.in_memory.load(Ordering::Relaxed) + len
                    <= spool.spooler.total_memory_bytes
        };
        if let Some(len) = expected.filter(|len| *len > 0 && fits(*len)) {
            // Within the per-spool bound: a `usize` on every target we build for.
            let room = HEADROOM + len as usize + TAILROOM;
            // Not worth failing the upload for: it grows as it comes instead.
            let _ = spool.memory.try_reserve_exact(room);
        }
        spool
    }

    /// Bytes spooled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was spooled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first four bytes (zeros where there are fewer).
    pub(crate) fn head(&self) -> [u8; 4] {
        self.head
    }

    /// Appends `bytes`: in memory while this spool and all together stay under
    /// their bounds, else (from then on) to the encrypted file.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        for (i, b) in bytes.iter().take(4).enumerate() {
            if let Some(slot) = usize::try_from(self.len)
                .ok()
                .and_then(|start| self.head.get_mut(start + i))
            {
                *slot = *b;
            }
        }
        self.len += bytes.len() as u64;
        if let Some(file) = &mut self.file {
            return Ok(file.write(bytes).await?);
        }
        let add = bytes.len() as u64;
        let total = self.spooler.in_memory.fetch_add(add, Ordering::Relaxed) + add;
        self.counted += add;
        if self.len <= self.spooler.memory_bytes && total <= self.spooler.total_memory_bytes {
            if self.memory.is_empty() {
                self.memory.resize(HEADROOM, 0);
            }
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        // Over a bound: everything so far goes to the encrypted file.
        let mut file = Encrypted::create(&self.spooler.dir).await?;
        file.write(self.memory.get(HEADROOM..).unwrap_or_default())
            .await?;
        file.write(bytes).await?;
        self.memory = Vec::new();
        self.release();
        self.file = Some(file);
        Ok(())
    }

    fn release(&mut self) {
        self.spooler
            .in_memory
            .fetch_sub(self.counted, Ordering::Relaxed);
        self.counted = 0;
    }

    /// The dump, to be read back a range at a time ([`SpoolReader`]).
    pub(crate) async fn into_reader(mut self) -> Result<SpoolReader, IngestError> {
        let len = self.len;
        let source = match self.file.take() {
            None => Source::Memory(std::mem::take(&mut self.memory)),
            Some(mut encrypted) => {
                encrypted.seal_pending(true).await?;
                encrypted.file.flush().await?;
                let file = encrypted.file.into_std().await;
                let size = file.metadata()?.len();
                Source::File {
                    file,
                    cipher: encrypted.cipher,
                    chunks: encrypted.chunks,
                    size,
                    cached: None,
                }
            }
        };
        Ok(SpoolReader { len, source })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spooler(dir: &Path, memory: u64) -> Arc<Spooler> {
        let limits = Limits {
            spool_memory_bytes: memory,
            ..Limits::default()
        };
        Arc::new(Spooler::new(dir, &limits))
    }

    #[tokio::test]
    async fn a_large_spool_is_encrypted_on_disk_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spooler = spooler(dir.path(), 1000);
        let mut spool = Spool::new(Arc::clone(&spooler));
        let plain: Vec<u8> = (0..300_000u32)
            .map(|i| b"SECRET-PLAIN"[i as usize % 12])
            .collect();
        for piece in plain.chunks(7000) {
            spool.write(piece).await.unwrap();
        }
        assert!(spool.file.is_some());
        assert_eq!(spool.head(), *b"SECR");
        assert_eq!(spooler.in_memory.load(Ordering::Relaxed), 0);
        // The unnamed file leaves nothing findable, and nothing plain anywhere.
        for entry in std::fs::read_dir(spool_dir(dir.path())).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(12).any(|w| w == b"SECRET-PLAIN"));
        }
        let back = spool.into_reader().await.unwrap().into_vec(3).unwrap();
        assert_eq!(&back[..3], &[0, 0, 0]);
        assert_eq!(&back[3..], &plain[..]);
    }

    #[tokio::test]
    async fn any_range_reads_back_from_a_spool_in_memory_or_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        // On disk: the last chunk partial, and whole (then an empty one follows);
        // in memory.
        for (len, memory) in [(300_001usize, 1000), (4 * CHUNK, 1000), (5000, 1 << 20)] {
            let spooler = spooler(dir.path(), memory);
            let mut spool = Spool::new(Arc::clone(&spooler));
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            for piece in plain.chunks(3000) {
                spool.write(piece).await.unwrap();
            }
            let mut reader = spool.into_reader().await.unwrap();
            assert_eq!(reader.len(), len as u64);
            let edges = [
                0,
                1,
                CHUNK - 1,
                CHUNK,
                CHUNK + 1,
                2 * CHUNK + 17,
                len - 1,
                len,
            ];
            for &from in &edges {
                for &to in &edges {
                    if from > to || to > len {
                        continue;
                    }
                    let mut out = vec![0u8; to - from];
                    reader.read_at(from as u64, &mut out).unwrap();
                    assert!(out == plain[from..to], "{len}: {from}..{to}");
                }
            }
            let mut beyond = [0u8; 2];
            assert!(reader.read_at(len as u64 - 1, &mut beyond).is_err());
        }
    }

    #[tokio::test]
    async fn a_small_spool_stays_in_memory_and_is_counted_while_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let spooler = spooler(dir.path(), 1000);
        let mut spool = Spool::new(Arc::clone(&spooler));
        spool.write(b"MDMP1234").await.unwrap();
        assert!(spool.file.is_none());
        assert_eq!(spooler.in_memory.load(Ordering::Relaxed), 8);
        assert_eq!(
            spool.into_reader().await.unwrap().into_vec(0).unwrap(),
            b"MDMP1234"
        );
        assert_eq!(spooler.in_memory.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_spool_told_its_length_is_never_moved_and_one_too_long_is_not_told() {
        let dir = tempfile::tempdir().unwrap();
        let spooler = spooler(dir.path(), 1 << 20);
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut spool = Spool::with_expected(Arc::clone(&spooler), Some(plain.len() as u64));
        // Room is made, but only what is written counts.
        assert!(spool.memory.capacity() >= HEADROOM + plain.len() + TAILROOM);
        assert_eq!(spooler.in_memory.load(Ordering::Relaxed), 0);
        spool.write(&plain[..1000]).await.unwrap();
        let at = spool.memory.as_ptr();
        for piece in plain[1000..].chunks(7000) {
            spool.write(piece).await.unwrap();
        }
        assert_eq!(spooler.in_memory.load(Ordering::Relaxed), 300_000);
        let back = spool
            .into_reader()
            .await
            .unwrap()
            .into_vec(HEADROOM)
            .unwrap();
        assert_eq!(
            back.as_ptr(),
            at,
            "copied while it came in or when handed over"
        );
        assert_eq!(&back[HEADROOM..], &plain[..]);
        // Beyond what one spool may keep in memory, or than all may together now:
        // no room is made up front.
        for expected in [(1 << 20) + 1, u64::MAX] {
            let spool = Spool::with_expected(Arc::clone(&spooler), Some(expected));
            assert_eq!(spool.memory.capacity(), 0);
        }
        let busy = spooler
            .in_memory
            .fetch_add(64 * 1024 * 1024, Ordering::Relaxed);
        let spool = Spool::with_expected(Arc::clone(&spooler), Some(1000));
        assert_eq!(spool.memory.capacity(), 0);
        spooler.in_memory.store(busy, Ordering::Relaxed);
    }

    #[tokio::test]
    async fn a_dump_in_memory_is_handed_over_where_it_lies_with_room_to_seal() {
        let dir = tempfile::tempdir().unwrap();
        let spooler = spooler(dir.path(), 1 << 20);
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut spool = Spool::new(Arc::clone(&spooler));
        for piece in plain.chunks(3000) {
            spool.write(piece).await.unwrap();
        }
        let reader = spool.into_reader().await.unwrap();
        let Source::Memory(spooled) = &reader.source else {
            panic!("spooled on disk")
        };
        let at = spooled.as_ptr();
        let buf = reader.into_vec(HEADROOM).unwrap();
        assert_eq!(buf.as_ptr(), at, "the spooled buffer itself, not a copy");
        assert_eq!(&buf[..HEADROOM], &[0; HEADROOM]);
        assert_eq!(&buf[HEADROOM..], &plain[..]);
        assert!(buf.capacity() >= buf.len() + TAILROOM);

        // Another headroom, and nothing spooled: copies as asked.
        for (headroom, plain) in [(3, &plain[..]), (HEADROOM, &[][..])] {
            let mut spool = Spool::new(Arc::clone(&spooler));
            spool.write(plain).await.unwrap();
            let buf = spool
                .into_reader()
                .await
                .unwrap()
                .into_vec(headroom)
                .unwrap();
            assert_eq!(&buf[..headroom], &vec![0; headroom][..]);
            assert_eq!(&buf[headroom..], plain);
        }
    }

    #[test]
    fn clearing_removes_what_a_crash_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(spool_dir(dir.path())).unwrap();
        std::fs::write(spool_dir(dir.path()).join("left"), b"x").unwrap();
        clear_spool(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(spool_dir(dir.path())).unwrap().count(), 0);
    }
}

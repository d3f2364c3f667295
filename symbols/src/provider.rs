//! [`Symbols`]: the symbol provider a server shares across all its workers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use breakpad_symbols::{
    FileError, FileKind, FillSymbolError, FrameSymbolizer, FrameWalker, Module, PendingSymbolStats,
    SymbolError, SymbolStats,
};
use minidump_unwind::SymbolProvider;

use crate::cache::{CacheConfig, Counters, DiskCache, LruBytes, NegativeCache};
use crate::indexed::{IndexedSym, Parsed};
use crate::key::SymbolId;
use crate::store::{StoreError, SymbolStore};
use crate::supplier::module_symbol_id;

/// What became of one module's symbols in one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Symbols found and indexed.
    Loaded,
    /// No symbol file in the store (or it is remembered as missing).
    Missing,
    /// A symbol file exists but does not parse.
    Corrupt,
    /// The store could not be read; the report should be retried, not filed as
    /// missing symbols.
    StoreError,
    /// The module has no debug file or debug id, so no symbols can exist for it.
    NoId,
}

/// Figures of the shared caches, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Indexed symbol files held ready.
    pub memory_entries: usize,
    /// Their estimated heap size in bytes (bounded by `CacheConfig::memory_bytes`).
    pub memory_bytes: u64,
    /// Bytes of `.sym` files in the disk cache.
    pub disk_bytes: u64,
    /// Symbol files remembered as missing.
    pub negative_entries: usize,
    /// Lookups answered from memory (first lookup of a module in a report).
    pub memory_hits: u64,
    /// Loads answered from the disk cache.
    pub disk_hits: u64,
    /// Fetches from the object store.
    pub store_fetches: u64,
    /// Lookups answered by the negative cache.
    pub negative_hits: u64,
    /// `.sym` files indexed (each read once from the store or disk cache).
    pub parses: u64,
    /// Indexed files evicted from memory.
    pub evictions: u64,
}

/// State shared by every handle: the store and the three caches.
struct Shared {
    store: SymbolStore,
    config: CacheConfig,
    memory: Mutex<LruBytes<SymbolId, Parsed>>,
    negative: Mutex<NegativeCache>,
    disk: Option<DiskCache>,
    /// One lock per symbol file being loaded, so concurrent workers asking for the
    /// same file wait for one load instead of each fetching and parsing it.
    loading: Mutex<HashMap<SymbolId, Arc<tokio::sync::Mutex<()>>>>,
    /// Bounds the loads in flight ([`CacheConfig::max_concurrent_loads`]).
    loads: tokio::sync::Semaphore,
    /// The upload count of the last [`Symbols::sync_uploads`] (`u64::MAX`: none yet).
    uploads_seen: std::sync::atomic::AtomicU64,
    counters: Counters,
}

/// What one report (one session) looked up: per module, by the key the processor
/// uses for `ProcessState::symbol_stats` (the code file's base name).
#[derive(Default)]
struct Session {
    /// Whether this is a per-report session (the shared root handle keeps no
    /// per-report memo or outcome list, which would grow without bound).
    per_report: bool,
    /// Indexed files by (module base address, debug id uuid, age): the hot path of a
    /// walk asks for the same few modules thousands of times.
    resolved: foldhash::HashMap<(u64, u128, u32), Option<Parsed>>,
    stats: HashMap<String, SymbolStats>,
    outcomes: Vec<(SymbolId, Lookup)>,
    requested: u64,
    processed: u64,
}

/// The symbol provider a server shares across all its workers: symbol files come
/// from a [`SymbolStore`] through a bounded disk cache and a bounded in-memory cache,
/// and missing files are remembered for [`CacheConfig::negative_ttl`].
///
/// A symbol file is read once (streamed to the disk cache, or to an anonymous
/// temporary file) and indexed: memory holds where each FUNC, PUBLIC and STACK
/// record is, not the parsed file. A lookup parses just the records that answer it
/// with Breakpad's own parser and keeps them in a small per-file cache, so results
/// are the same as with fully parsed files, at a fraction of the memory (the
/// Firefox Windows test dump: 14 MiB of `.sym` files, ~2 MiB of index).
///
/// Cheap to clone; clones share caches *and* per-report statistics. For correct
/// [`ProcessState::symbol_stats`](minidump_processor::ProcessState::symbol_stats)
/// (which modules lacked symbols) use one [`session`](Symbols::session) per report,
/// or call [`process`](Symbols::process), which does that.
///
/// ```no_run
/// # async fn f(store: std::sync::Arc<dyn object_store::ObjectStore>, dump: minidump::Minidump<'static, Vec<u8>>) {
/// use mayday_symbols::{CacheConfig, Symbols, SymbolStore};
/// let symbols = Symbols::new(SymbolStore::new(store), CacheConfig::default());
/// let (state, missing) = symbols.process(&dump).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Symbols {
    shared: Arc<Shared>,
    session: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols")
            .field("config", &self.shared.config)
            .field("cache", &self.cache_stats())
            .finish()
    }
}

impl Symbols {
    /// A provider over `store` with caches sized by `config`. If the disk cache
    /// directory cannot be created or read, it runs without a disk cache (logged).
    pub fn new(store: SymbolStore, config: CacheConfig) -> Symbols {
        let disk = config.disk_dir.as_ref().and_then(|dir| {
            DiskCache::open(dir, config.disk_bytes)
                .inspect_err(|e| {
                    tracing::warn!(dir = %dir.display(), error = %e, "symbol disk cache disabled")
                })
                .ok()
        });
        Symbols {
            shared: Arc::new(Shared {
                store,
                memory: Mutex::new(
                    LruBytes::new(config.memory_bytes).with_max_entries(config.max_open_files),
                ),
                negative: Mutex::new(NegativeCache::default()),
                disk,
                loading: Mutex::new(HashMap::new()),
                loads: tokio::sync::Semaphore::new(config.max_concurrent_loads.max(1)),
                uploads_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
                counters: Counters::default(),
                config,
            }),
            session: Arc::default(),
        }
    }

    /// A handle for one report: shares the caches, has its own statistics. Pass it
    /// to `process_minidump`; afterwards `ProcessState::symbol_stats` and
    /// [`missing`](Symbols::missing) describe that report only.
    pub fn session(&self) -> Symbols {
        Symbols {
            shared: Arc::clone(&self.shared),
            session: Arc::new(Mutex::new(Session {
                per_report: true,
                ..Session::default()
            })),
        }
    }

    /// Processes `dump` in a fresh session; returns the processed state and the
    /// symbol files this report lacked (what to watch for to reprocess it).
    pub async fn process<'a, T>(
        &self,
        dump: &minidump::Minidump<'a, T>,
    ) -> Result<(minidump_processor::ProcessState, Vec<SymbolId>), minidump_processor::ProcessError>
    where
        T: std::ops::Deref<Target = [u8]> + 'a,
    {
        let session = self.session();
        let state = minidump_processor::process_minidump(dump, &session).await?;
        Ok((state, session.missing()))
    }

    /// [`process`](Symbols::process) with processor options (e.g. to recover
    /// function arguments or read Mozilla's "evil json").
    pub async fn process_with_options<'a, T>(
        &self,
        dump: &minidump::Minidump<'a, T>,
        options: minidump_processor::ProcessorOptions<'_>,
    ) -> Result<(minidump_processor::ProcessState, Vec<SymbolId>), minidump_processor::ProcessError>
    where
        T: std::ops::Deref<Target = [u8]> + 'a,
    {
        let session = self.session();
        let state =
            minidump_processor::process_minidump_with_options(dump, &session, options).await?;
        Ok((state, session.missing()))
    }

    /// The store this provider reads (for the upload and download routes).
    pub fn store(&self) -> &SymbolStore {
        &self.shared.store
    }

    /// The cache configuration in effect.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    /// Forgets everything cached about `id` (indexed, on disk, known missing), so the
    /// next lookup reads the store again. Call it when symbols for `id` are uploaded.
    /// Sessions already running keep what they resolved. Only this process's caches
    /// are affected: other processes learn of uploads through
    /// [`sync_uploads`](Symbols::sync_uploads).
    pub fn invalidate(&self, id: &SymbolId) {
        self.shared.memory.lock().unwrap().remove(id);
        self.shared.negative.lock().unwrap().remove(id);
        if let Some(disk) = &self.shared.disk {
            disk.remove(id);
        }
    }

    /// Tells the provider how many symbol uploads there have been, by a count every
    /// process of a deployment shares (the server keeps it in its index). When it
    /// moved since the last call, every symbol file remembered as missing is
    /// forgotten: an upload through another process cannot invalidate this one's
    /// caches. Returns whether it moved (the first call always does).
    pub fn sync_uploads(&self, uploads: u64) -> bool {
        use std::sync::atomic::Ordering;
        let moved = self.shared.uploads_seen.swap(uploads, Ordering::AcqRel) != uploads;
        if moved {
            self.shared.negative.lock().unwrap().clear();
        }
        moved
    }

    /// The symbol files this session looked up and did not find (missing or
    /// corrupt), sorted, without duplicates.
    pub fn missing(&self) -> Vec<SymbolId> {
        let session = self.session.lock().unwrap();
        let mut ids: Vec<SymbolId> = session
            .outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Lookup::Missing | Lookup::Corrupt))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Every symbol file this session looked up and what became of it.
    pub fn lookups(&self) -> Vec<(SymbolId, Lookup)> {
        self.session.lock().unwrap().outcomes.clone()
    }

    /// Whether any lookup of this session failed because the store could not be
    /// read (the report should then be retried rather than stored as is).
    pub fn had_store_errors(&self) -> bool {
        self.session
            .lock()
            .unwrap()
            .outcomes
            .iter()
            .any(|(_, o)| *o == Lookup::StoreError)
    }

    /// Figures of the shared caches.
    pub fn cache_stats(&self) -> CacheStats {
        use std::sync::atomic::Ordering::Relaxed;
        let (memory_entries, memory_bytes) = {
            let memory = self.shared.memory.lock().unwrap();
            (memory.len(), memory.total())
        };
        let c = &self.shared.counters;
        CacheStats {
            memory_entries,
            memory_bytes,
            disk_bytes: self.shared.disk.as_ref().map_or(0, DiskCache::total),
            negative_entries: self.shared.negative.lock().unwrap().len(),
            memory_hits: c.memory_hits.load(Relaxed),
            disk_hits: c.disk_hits.load(Relaxed),
            store_fetches: c.store_fetches.load(Relaxed),
            negative_hits: c.negative_hits.load(Relaxed),
            parses: c.parses.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
        }
    }

    /// Looks `id` up through the caches (loading it if needed) and says what
    /// happened: what a processing run would find for that symbol file now.
    pub async fn lookup(&self, id: &SymbolId) -> Lookup {
        self.get(id).await.1
    }

    /// The indexed symbol file for `id` through the caches, and what happened.
    async fn get(&self, id: &SymbolId) -> (Option<Parsed>, Lookup) {
        let shared = &self.shared;
        if let Some(hit) = self.cached(id) {
            return hit;
        }
        // One loader per file: the others wait here, then find it cached.
        let gate = {
            let mut loading = shared.loading.lock().unwrap();
            Arc::clone(loading.entry(id.clone()).or_default())
        };
        let result = {
            let _guard = gate.lock().await;
            match self.cached(id) {
                Some(hit) => hit,
                None => self.load(id).await,
            }
        };
        {
            let mut loading = shared.loading.lock().unwrap();
            // Drop the gate once nobody else holds it (2 = the map's + ours).
            if Arc::strong_count(&gate) <= 2 {
                loading.remove(id);
            }
        }
        result
    }

    /// A memory or negative cache answer, without loading.
    fn cached(&self, id: &SymbolId) -> Option<(Option<Parsed>, Lookup)> {
        let shared = &self.shared;
        if let Some(file) = shared.memory.lock().unwrap().get(id) {
            Counters::bump(&shared.counters.memory_hits);
            return Some((Some(file), Lookup::Loaded));
        }
        if shared.negative.lock().unwrap().contains(id) {
            Counters::bump(&shared.counters.negative_hits);
            return Some((None, Lookup::Missing));
        }
        None
    }

    /// `id` as a local file: streamed into the disk cache's (committed into
    /// place) when there is one, else the store's own file on a local store or
    /// an anonymous temporary file ([`SymbolStore::get_file`]). `None` when the
    /// store has none.
    async fn fetch(&self, id: &SymbolId) -> Result<Option<std::fs::File>, StoreError> {
        let shared = &self.shared;
        // The writes go to the page cache in small chunks; a blocking task per chunk
        // would cost more than it saves.
        match &shared.disk {
            Some(disk) => {
                let (tmp, mut file) = disk.temp_file()?;
                match shared.store.get_into(id, &mut file).await {
                    Ok(Some(len)) => {
                        disk.commit(id, &tmp, len)?;
                        Ok(Some(file))
                    }
                    other => {
                        let _ = std::fs::remove_file(&tmp);
                        other.map(|_| None)
                    }
                }
            }
            None => shared.store.get_file(id).await,
        }
    }

    /// Disk cache, else store; index; fill the caches.
    async fn load(&self, id: &SymbolId) -> (Option<Parsed>, Lookup) {
        let shared = &self.shared;
        // Never closed, so acquiring cannot fail.
        let _permit = shared.loads.acquire().await.ok();
        let cached = shared.disk.as_ref().and_then(|disk| disk.open_file(id));
        let file = match cached {
            Some(file) => {
                Counters::bump(&shared.counters.disk_hits);
                file
            }
            None => {
                Counters::bump(&shared.counters.store_fetches);
                match self.fetch(id).await {
                    Ok(Some(file)) => file,
                    Ok(None) => {
                        shared
                            .negative
                            .lock()
                            .unwrap()
                            .insert(id.clone(), shared.config.negative_ttl);
                        return (None, Lookup::Missing);
                    }
                    Err(e) => {
                        tracing::warn!(symbol = %id.rel_path(), error = %e, "symbol store read failed");
                        return (None, Lookup::StoreError);
                    }
                }
            }
        };
        Counters::bump(&shared.counters.parses);
        let parsed = run_blocking(move || {
            let len = file.metadata().map_err(SymbolError::LoadError)?.len();
            // Small files barely need a cache of records; big ones get up to 4 MiB.
            let mini_budget = (len / 8).clamp(64 << 10, 4 << 20);
            let indexed = IndexedSym::build(file, mini_budget)?;
            let size = indexed.index_size() + mini_budget;
            Ok::<_, SymbolError>((Arc::new(indexed), size))
        })
        .await;
        match parsed {
            Ok((file, size)) => {
                let evicted =
                    shared
                        .memory
                        .lock()
                        .unwrap()
                        .insert(id.clone(), Arc::clone(&file), size);
                for _ in &evicted {
                    Counters::bump(&shared.counters.evictions);
                }
                (Some(file), Lookup::Loaded)
            }
            Err(e) => {
                tracing::warn!(symbol = %id.rel_path(), error = %e, "symbol file does not parse");
                shared
                    .negative
                    .lock()
                    .unwrap()
                    .insert(id.clone(), shared.config.negative_ttl);
                (None, Lookup::Corrupt)
            }
        }
    }

    /// The indexed symbols of `module` for this session, recording the outcome once
    /// per module in the session's statistics.
    async fn for_module(&self, module: &(dyn Module + Sync)) -> Option<Parsed> {
        let debug_id = module.debug_identifier().unwrap_or_default();
        let memo_key = (
            module.base_address(),
            debug_id.uuid().as_u128(),
            debug_id.appendix(),
        );
        {
            let session = self.session.lock().unwrap();
            if let Some(resolved) = session.resolved.get(&memo_key) {
                return resolved.clone();
            }
        }
        self.session.lock().unwrap().requested += 1;
        let (file, outcome, id) = match module_symbol_id(module) {
            Some(id) => {
                let (file, outcome) = self.get(&id).await;
                (file, outcome, Some(id))
            }
            None => (None, Lookup::NoId, None),
        };
        let stats = SymbolStats {
            symbol_url: None,
            loaded_symbols: matches!(outcome, Lookup::Loaded | Lookup::Corrupt),
            corrupt_symbols: outcome == Lookup::Corrupt,
            extra_debug_info: None,
        };
        let mut session = self.session.lock().unwrap();
        session.processed += 1;
        session.stats.insert(
            breakpad_symbols::basename(&module.code_file()).to_owned(),
            stats,
        );
        if session.per_report {
            if let Some(id) = id {
                session.outcomes.push((id, outcome));
            }
            session.resolved.insert(memo_key, file.clone());
        }
        file
    }
}

/// Runs CPU-heavy or blocking work off the async workers when inside a Tokio
/// runtime, inline otherwise.
async fn run_blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread => {
            match tokio::task::spawn_blocking(f).await {
                Ok(r) => r,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        _ => f(),
    }
}

#[async_trait::async_trait]
impl SymbolProvider for Symbols {
    async fn fill_symbol(
        &self,
        module: &(dyn Module + Sync),
        frame: &mut (dyn FrameSymbolizer + Send),
    ) -> Result<(), FillSymbolError> {
        let file = self.for_module(module).await.ok_or(FillSymbolError {})?;
        file.fill_symbol(module, frame);
        Ok(())
    }

    async fn walk_frame(
        &self,
        module: &(dyn Module + Sync),
        walker: &mut (dyn FrameWalker + Send),
    ) -> Option<()> {
        self.for_module(module).await?.walk_frame(module, walker)
    }

    async fn get_file_path(
        &self,
        _module: &(dyn Module + Sync),
        _file_kind: FileKind,
    ) -> Result<PathBuf, FileError> {
        // Only Breakpad text symbols are stored; binaries are never kept. (The
        // same answer as `StoreSymbolSupplier::locate_file`: two traits ask it.)
        Err(FileError::NotFound)
    }

    fn stats(&self) -> HashMap<String, SymbolStats> {
        self.session.lock().unwrap().stats.clone()
    }

    fn pending_stats(&self) -> PendingSymbolStats {
        let session = self.session.lock().unwrap();
        PendingSymbolStats {
            symbols_processed: session.processed,
            symbols_requested: session.requested,
        }
    }
}

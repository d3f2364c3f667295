//! The caches behind [`Symbols`](crate::Symbols): indexed symbol files in memory
//! (bounded by bytes and by count, least recently used first out), `.sym` files on
//! local disk (bounded by bytes), and missing symbol files (expiring after a TTL).

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hashlink::LinkedHashMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::key::SymbolId;

/// How much [`Symbols`](crate::Symbols) may keep, and for how long it remembers a miss.
///
/// A section of the server's TOML config; every field has a default, and an
/// unknown key is refused:
///
/// ```toml
/// [symbols]
/// memory_bytes = 536870912     # symbol file indexes and parsed records in memory
/// max_open_files = 512         # symbol files held open (one descriptor each)
/// max_concurrent_loads = 2     # symbol files fetched and indexed at once
/// disk_dir = "/var/cache/mayday/symbols"  # optional local copy of fetched .sym files
/// disk_bytes = 4294967296
/// negative_ttl = "1h"          # how long a missing symbol file is not asked for again
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Budget for symbol files in memory, in (estimated) bytes of heap: each file's
    /// index of records (a few percent of its text) plus a cache of the records
    /// lookups parsed (an eighth of its text, at most 4 MiB). A single file bigger
    /// than the budget is used for the report that needs it but not kept.
    /// Default: 512 MiB.
    pub memory_bytes: u64,
    /// Most symbol files kept ready at once; each holds one open file descriptor
    /// (its text stays on disk: in the disk cache, the local store itself, or an
    /// anonymous temporary file).
    /// Default: 512.
    pub max_open_files: usize,
    /// Directory for a local copy of `.sym` files fetched from the store, so a restart
    /// or an eviction from memory does not go back to object storage. `None` (the
    /// default): no disk cache.
    pub disk_dir: Option<PathBuf>,
    /// Budget of the disk cache in bytes; least recently used files are deleted
    /// beyond it. Default: 4 GiB.
    pub disk_bytes: u64,
    /// How long a symbol file that was not in the store (or did not parse) is
    /// remembered as missing. Uploads call [`Symbols::invalidate`](crate::Symbols::invalidate)
    /// so they take effect at once in this process, and other processes forget
    /// every missing file when [`Symbols::sync_uploads`](crate::Symbols::sync_uploads)
    /// sees the shared upload count move. Default: 1 hour.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Most symbol files fetched and indexed at the same time, across all workers
    /// (at least 1). A dump asks for all its modules at once; indexing is CPU work
    /// whose buffers are freed right after, and each concurrent fetch from a local
    /// store is a blocking thread with its own allocator arena, so more loads in
    /// flight cost memory without finishing sooner on a small machine. Default: 2.
    pub max_concurrent_loads: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_bytes: 512 * 1024 * 1024,
            max_open_files: 512,
            disk_dir: None,
            disk_bytes: 4 * 1024 * 1024 * 1024,
            negative_ttl: Duration::from_secs(3600),
            max_concurrent_loads: 2,
        }
    }
}

/// A least-recently-used map bounded by the sum of its entries' costs (and
/// optionally by its number of entries): a [`LinkedHashMap`] in recency order,
/// least recently used first, so that a use and an eviction are O(1).
#[derive(Debug)]
pub(crate) struct LruBytes<K, V> {
    /// Each entry with its cost, least recently used first.
    entries: LinkedHashMap<K, (V, u64)>,
    total: u64,
    budget: u64,
    max_entries: usize,
}

impl<K: Eq + Hash, V: Clone> LruBytes<K, V> {
    pub(crate) fn new(budget: u64) -> Self {
        LruBytes {
            entries: LinkedHashMap::new(),
            total: 0,
            budget,
            max_entries: usize::MAX,
        }
    }

    /// Also bounds the number of entries.
    pub(crate) fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The value for `key`, marking it most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.entries.to_back(key).map(|(value, _)| value.clone())
    }

    /// Inserts `value` with `cost`, evicting least recently used entries until the
    /// total fits the budget; returns the evicted keys. An entry costing more than
    /// the whole budget is not kept (and returned as evicted).
    pub(crate) fn insert(&mut self, key: K, value: V, cost: u64) -> Vec<K> {
        self.remove(&key);
        if cost > self.budget {
            return vec![key];
        }
        self.entries.insert(key, (value, cost));
        self.total += cost;
        let mut evicted = Vec::new();
        while self.total > self.budget || self.entries.len() > self.max_entries {
            let Some((oldest, (_, cost))) = self.entries.pop_front() else {
                break;
            };
            self.total -= cost;
            evicted.push(oldest);
        }
        evicted
    }

    /// Removes `key`; true when it was there.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        match self.entries.remove(key) {
            Some((_, cost)) => {
                self.total -= cost;
                true
            }
            None => false,
        }
    }

    /// Sum of the costs of the entries held.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Symbol files known to be missing (or corrupt) until an instant.
#[derive(Debug, Default)]
pub(crate) struct NegativeCache {
    until: HashMap<SymbolId, Instant>,
}

impl NegativeCache {
    /// Whether `id` is known missing now; forgets an expired entry.
    pub(crate) fn contains(&mut self, id: &SymbolId) -> bool {
        match self.until.get(id) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                self.until.remove(id);
                false
            }
            None => false,
        }
    }

    pub(crate) fn insert(&mut self, id: SymbolId, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        // Drop expired entries now and then so the map stays small.
        if self.until.len() >= 4096 {
            let now = Instant::now();
            self.until.retain(|_, until| *until > now);
        }
        self.until.insert(id, Instant::now() + ttl);
    }

    pub(crate) fn remove(&mut self, id: &SymbolId) -> bool {
        self.until.remove(id).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }

    pub(crate) fn clear(&mut self) {
        self.until.clear();
    }
}

/// `.sym` files on local disk under `<dir>/<debug_file>/<DEBUG_ID>/<name>.sym`,
/// bounded by bytes. Files are written to a temporary name and renamed into place,
/// so a reader never sees half a file.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    lru: std::sync::Mutex<LruBytes<SymbolId, ()>>,
    tmp_counter: AtomicU64,
}

impl DiskCache {
    /// Opens (creating) the cache directory and registers the files already there,
    /// oldest first, deleting any beyond the budget and stray temporary files.
    pub(crate) fn open(dir: &Path, budget: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for file_dir in std::fs::read_dir(dir)? {
            let file_dir = file_dir?;
            let name = file_dir.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_file(file_dir.path());
                continue;
            }
            if !file_dir.file_type()?.is_dir() {
                continue;
            }
            for id_dir in std::fs::read_dir(file_dir.path())? {
                let id_dir = id_dir?;
                let Ok(id) = SymbolId::new(&name, &id_dir.file_name().to_string_lossy()) else {
                    continue;
                };
                let path = id_dir.path().join(id.sym_name());
                if let Ok(meta) = std::fs::metadata(&path) {
                    let used = meta.modified().ok();
                    found.push((used, id, meta.len()));
                }
            }
        }
        found.sort_by_key(|(used, _, _)| *used);
        let mut lru = LruBytes::new(budget);
        for (_, id, len) in found {
            for evicted in lru.insert(id, (), len) {
                let _ = std::fs::remove_file(dir.join(evicted.rel_path()));
            }
        }
        Ok(DiskCache {
            dir: dir.to_owned(),
            lru: std::sync::Mutex::new(lru),
            tmp_counter: AtomicU64::new(0),
        })
    }

    /// Where `id` is (or would be) cached.
    pub(crate) fn path(&self, id: &SymbolId) -> PathBuf {
        self.dir.join(id.rel_path())
    }

    /// An open handle on the cached file of `id` (marking it used), if any.
    pub(crate) fn open_file(&self, id: &SymbolId) -> Option<std::fs::File> {
        self.lru.lock().unwrap().get(id)?;
        match std::fs::File::open(self.path(id)) {
            Ok(file) => Some(file),
            Err(_) => {
                // Deleted behind our back: forget it.
                self.lru.lock().unwrap().remove(id);
                None
            }
        }
    }

    /// A new temporary file in the cache directory, open for reading and writing.
    pub(crate) fn temp_file(&self) -> std::io::Result<(PathBuf, std::fs::File)> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!(".tmp-{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    /// Moves the filled temporary file `tmp` (`len` bytes) into place for `id`,
    /// evicting least recently used files beyond the budget. Open handles stay
    /// valid: they keep a renamed-over or deleted file readable.
    pub(crate) fn commit(&self, id: &SymbolId, tmp: &Path, len: u64) -> std::io::Result<()> {
        let path = self.path(id);
        let moved = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::rename(tmp, &path));
        if let Err(e) = moved {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
        let evicted = self.lru.lock().unwrap().insert(id.clone(), (), len);
        for evicted in evicted {
            let _ = std::fs::remove_file(self.path(&evicted));
        }
        Ok(())
    }

    /// Deletes the cached file of `id`.
    pub(crate) fn remove(&self, id: &SymbolId) {
        self.lru.lock().unwrap().remove(id);
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Bytes held on disk.
    pub(crate) fn total(&self) -> u64 {
        self.lru.lock().unwrap().total()
    }
}

/// Cheap counters of what the caches did, for logs and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) memory_hits: AtomicU64,
    pub(crate) disk_hits: AtomicU64,
    pub(crate) store_fetches: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) parses: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::LruBytes;

    /// The keys held, least recently used first.
    fn keys(lru: &LruBytes<&'static str, u32>) -> Vec<&'static str> {
        lru.entries.keys().copied().collect()
    }

    #[test]
    fn the_least_recently_used_entries_go_first_when_over_budget() {
        let mut lru = LruBytes::new(10);
        assert!(lru.insert("a", 1, 4).is_empty());
        assert!(lru.insert("b", 2, 4).is_empty());
        // A use makes `a` the most recent: `b` is the one evicted.
        assert_eq!(lru.get(&"a"), Some(1));
        assert_eq!(lru.insert("c", 3, 4), vec!["b"]);
        assert_eq!(keys(&lru), ["a", "c"]);
        assert_eq!(lru.total(), 8);
        assert_eq!(lru.get(&"b"), None);
        // Two go to make room for one large entry.
        assert_eq!(lru.insert("d", 4, 9), vec!["a", "c"]);
        assert_eq!((lru.total(), lru.len()), (9, 1));
    }

    #[test]
    fn an_entry_over_the_whole_budget_is_not_kept() {
        let mut lru = LruBytes::new(10);
        lru.insert("a", 1, 5);
        assert_eq!(lru.insert("huge", 2, 11), vec!["huge"]);
        assert_eq!(keys(&lru), ["a"]);
        assert_eq!(lru.total(), 5);
    }

    #[test]
    fn inserting_a_key_again_replaces_its_value_and_cost() {
        let mut lru = LruBytes::new(10);
        lru.insert("a", 1, 5);
        lru.insert("b", 2, 2);
        assert!(lru.insert("a", 3, 7).is_empty());
        assert_eq!(keys(&lru), ["b", "a"]);
        assert_eq!((lru.total(), lru.get(&"a")), (9, Some(3)));
        assert!(lru.remove(&"a"));
        assert!(!lru.remove(&"a"));
        assert_eq!((lru.total(), lru.len()), (2, 1));
    }

    #[test]
    fn the_number_of_entries_is_bounded_too() {
        let mut lru = LruBytes::new(u64::MAX).with_max_entries(2);
        lru.insert("a", 1, 0);
        lru.insert("b", 2, 0);
        lru.get(&"a");
        assert_eq!(lru.insert("c", 3, 0), vec!["b"]);
        assert_eq!(keys(&lru), ["a", "c"]);
    }
}

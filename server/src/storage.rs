//! Blob storage: one `object_store` for everything, and durability. What the
//! bytes are and where they go is decided above: report blobs by the report vault
//! (`vault.rs`, which seals them), symbol files by `mayday_symbols`.
//!
//! A put on the local file store is fsynced (file and directory) before it returns,
//! so "stored" means "survives a crash of the machine", as it does on S3.
//! [`Storage::put_lazy`] is the one exception, for derived blobs that can be
//! made again: written and renamed into place (never half-written: a reader sees
//! the old blob or the new one), not waited for on the disk.
//!
//! A blob too large to hold is written a piece at a time ([`Storage::start_put`],
//! [`StreamingPut`]): on the local store into a staging file beside its key
//! (named as object_store names its own, so [`Storage::remove_partial_writes`]
//! removes one a crash left), fsynced and renamed into place, its directory
//! fsynced; elsewhere as a multipart upload. Either way the blob appears whole
//! or not at all, and is as durable as after [`Storage::put`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store URL is not one we can open.
    #[error("invalid store url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file operation (creating the root, fsync) failed.
    #[error("local store: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            StorageError::InvalidUrl { .. } => "invalid_url",
            StorageError::Store(_) => "store",
            StorageError::Io(_) => "io",
        }
    }
}

/// The blob store, cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Root directory when the store is the local file system, for fsync.
    local_root: Option<PathBuf>,
}

impl Storage {
    /// Opens the store named by `url` (`file:///abs/dir`, `s3://bucket[/prefix]`,
    /// `memory://`). For S3 the usual `AWS_*` environment variables are read, then
    /// `options` (keys as object_store names them: `endpoint`, `region`,
    /// `allow_http`, `access_key_id`, `secret_access_key`, …).
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Storage, StorageError> {
        let invalid = |reason: String| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.scheme() {
            "memory" => Ok(Storage::from_store(Arc::new(InMemory::new()))),
            "file" => {
                let root = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute file path".into()))?;
                std::fs::create_dir_all(&root)?;
                let store = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
                Ok(Storage {
                    store: Arc::new(store),
                    local_root: Some(root),
                })
            }
            "s3" | "s3a" => {
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid("no bucket".into()))?;
                // An upload waits for the store: a store that is down answers
                // within seconds (the upload gets 503 and is sent again), not
                // after object_store's default three minutes of retries.
                let retry = object_store::RetryConfig {
                    max_retries: 3,
                    retry_timeout: std::time::Duration::from_secs(10),
                    ..Default::default()
                };
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry);
                for (key, value) in options {
                    let key = AmazonS3ConfigKey::from_str(key)
                        .map_err(|e| invalid(format!("option {key:?}: {e}")))?;
                    builder = builder.with_config(key, value.clone());
                }
                let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
                let prefix = parsed.path().trim_matches('/');
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    s3
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                };
                Ok(Storage::from_store(store))
            }
            other => Err(invalid(format!("unsupported scheme {other:?}"))),
        }
    }

    /// Wraps an already built store (tests, embedding).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Storage {
        Storage {
            store,
            local_root: None,
        }
    }

    /// The root directory when the store is the local file system (for checks of
    /// its disk), else `None`.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// Removes the staging files of writes a crash cut short below `prefix` in a
    /// local store (object_store writes `<key>#<n>` and renames it into place;
    /// listings never show them). Only safe when no write can be under way.
    /// Returns how many were removed; a store that is not local has none.
    pub fn remove_partial_writes(&self, prefix: &str) -> std::io::Result<u64> {
        let Some(root) = &self.local_root else {
            return Ok(0);
        };
        let mut removed = 0;
        let mut dirs = vec![root.join(prefix)];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    dirs.push(entry.path());
                } else if entry.file_name().to_string_lossy().contains('#') {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The underlying object store, for parts that key their own blobs (symbols).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Stores `bytes` at `key`, durably: when this returns `Ok`, the blob survives a
    /// crash of this process or machine.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(key, PutPayload::from_bytes(bytes)).await?;
        if let Some(root) = &self.local_root {
            let file = root.join(key.as_ref());
            tokio::task::spawn_blocking(move || sync_file_and_parent(&file))
                .await
                .map_err(std::io::Error::other)??;
        }
        Ok(())
    }

    /// Stores `bytes` at `key` without waiting for the disk: on the local file
    /// store the blob is written to a staging file and renamed into place (a
    /// process dying meanwhile leaves the old blob or the new one) but neither
    /// is fsynced, so a power cut may lose it, or leave it empty or truncated.
    /// Only for blobs that can be made again from durable ones. Elsewhere (S3,
    /// memory) the same as [`Storage::put`].
    pub async fn put_lazy(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        self.store.put(key, PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// The blob at `key`, or `None` when there is none.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>, StorageError> {
        let blob = self
            .get_admitted(key, async |_| (), AfterRead::Keep)
            .await?;
        Ok(blob.map(|(bytes, ())| bytes))
    }

    /// The blob at `key`, read once `admit` — told its size, before it is
    /// read — is done, with what `admit` gave; `None` when there is none.
    /// `after` says whether the local store's page cache keeps the blob's pages.
    pub async fn get_admitted<T>(
        &self,
        key: &Path,
        admit: impl AsyncFnOnce(u64) -> T,
        after: AfterRead,
    ) -> Result<Option<(Bytes, T)>, StorageError> {
        match self.store.get(key).await {
            Ok(result) => {
                let admitted = admit(result.meta.size).await;
                let range = result.range.clone();
                let bytes = match result.payload {
                    GetResultPayload::File(file, _) => {
                        tokio::task::spawn_blocking(move || read_file_range(&file, range, after))
                            .await
                            .map_err(std::io::Error::other)??
                    }
                    GetResultPayload::Stream(_) => result.bytes().await?,
                };
                Ok(Some((bytes, admitted)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the blob at `key`; a missing blob counts as deleted.
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: Option<&Path>) -> Result<Vec<Path>, StorageError> {
        let metas: Vec<_> = self.store.list(prefix).try_collect().await?;
        Ok(metas.into_iter().map(|m| m.location).collect())
    }

    /// Every key under `prefix` with its last modification time (Unix ms).
    pub async fn list_with_times(
        &self,
        prefix: Option<&Path>,
    ) -> Result<Vec<(Path, i64)>, StorageError> {
        let metas: Vec<_> = self.store.list(prefix).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location, m.last_modified.timestamp_millis()))
            .collect())
    }

    /// Starts a durable put of a blob at `key` written a piece at a time
    /// ([`StreamingPut`]). On a store that is not local it runs on the current
    /// Tokio runtime, which must be a multi-threaded one.
    pub async fn start_put(&self, key: &Path) -> Result<StreamingPut, StorageError> {
        if let Some(root) = &self.local_root {
            let target = root.join(key.as_ref());
            let staging = {
                let mut name = target.as_os_str().to_owned();
                // `<key>#<digits>`, as object_store names its own: never listed.
                name.push(format!("#{}", rand::random::<u64>() | 1 << 63));
                PathBuf::from(name)
            };
            let file = tokio::task::spawn_blocking({
                let staging = staging.clone();
                move || {
                    if let Some(parent) = staging.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&staging)
                }
            })
            .await
            .map_err(std::io::Error::other)??;
            return Ok(StreamingPut {
                to: Destination::Local {
                    file: std::io::BufWriter::with_capacity(1 << 20, file),
                    staging,
                    target,
                },
            });
        }
        let upload = self.store.put_multipart(key).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(2);
        let task = tokio::spawn(async move {
            let mut upload = WriteMultipart::new(upload);
            while let Some(piece) = rx.recv().await {
                match piece {
                    Piece::Bytes(bytes) => {
                        if let Err(e) = upload.wait_for_capacity(2).await {
                            let _ = upload.abort().await;
                            return Err(e.into());
                        }
                        upload.put(bytes);
                    }
                    Piece::End => {
                        upload.finish().await?;
                        return Ok(());
                    }
                }
            }
            // Dropped unfinished: nothing is left.
            let _ = upload.abort().await;
            Err(StorageError::Io(std::io::Error::other("put given up")))
        });
        Ok(StreamingPut {
            to: Destination::Remote {
                tx,
                task,
                runtime: tokio::runtime::Handle::current(),
            },
        })
    }

    /// Checks that the store answers (health checks).
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = Path::from("health/probe");
        self.store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await?;
        Ok(())
    }
}

/// A durable put written a piece at a time ([`Storage::start_put`]). Its
/// methods block: call them off the async threads. Dropped before
/// [`StreamingPut::finish`], it leaves nothing behind.
#[derive(Debug)]
pub struct StreamingPut {
    to: Destination,
}

#[derive(Debug)]
enum Destination {
    /// A staging file beside the key, renamed into place when finished.
    Local {
        file: std::io::BufWriter<std::fs::File>,
        staging: PathBuf,
        target: PathBuf,
    },
    /// A multipart upload, run by a task fed by a channel.
    Remote {
        tx: tokio::sync::mpsc::Sender<Piece>,
        task: tokio::task::JoinHandle<Result<(), StorageError>>,
        runtime: tokio::runtime::Handle,
    },
    /// Finished, or given up.
    Done,
}

/// What the task of a multipart upload is sent.
#[derive(Debug)]
enum Piece {
    Bytes(Bytes),
    /// Complete the upload.
    End,
}

impl StreamingPut {
    /// Appends `bytes` to the blob.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        match &mut self.to {
            Destination::Local { file, .. } => Ok(std::io::Write::write_all(file, bytes)?),
            Destination::Remote { tx, .. } => {
                if tx
                    .blocking_send(Piece::Bytes(Bytes::copy_from_slice(bytes)))
                    .is_ok()
                {
                    return Ok(());
                }
                // The task ended early: its error.
                match std::mem::replace(&mut self.to, Destination::Done) {
                    Destination::Remote { task, runtime, .. } => Err(task_error(&runtime, task)),
                    _ => Err(ended()),
                }
            }
            Destination::Done => Err(ended()),
        }
    }

    /// Completes the blob, durably: when this returns `Ok` it is at its key and
    /// survives a crash of this process or machine. On an error nothing is at
    /// the key (unless the error came after it was there: fsync of its
    /// directory).
    pub fn finish(mut self) -> Result<(), StorageError> {
        match std::mem::replace(&mut self.to, Destination::Done) {
            Destination::Local {
                file,
                staging,
                target,
            } => {
                let finished = (|| {
                    let file = file.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    std::fs::rename(&staging, &target)
                })();
                if let Err(e) = finished {
                    let _ = std::fs::remove_file(&staging);
                    return Err(e.into());
                }
                if let Some(parent) = target.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
                Ok(())
            }
            Destination::Remote { tx, task, runtime } => {
                if tx.blocking_send(Piece::End).is_err() {
                    return Err(task_error(&runtime, task));
                }
                drop(tx);
                runtime
                    .block_on(task)
                    .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
            }
            Destination::Done => Err(ended()),
        }
    }
}

/// The error of a multipart upload's task that ended early.
fn task_error(
    runtime: &tokio::runtime::Handle,
    task: tokio::task::JoinHandle<Result<(), StorageError>>,
) -> StorageError {
    match runtime.block_on(task) {
        Ok(Err(e)) => e,
        Ok(Ok(())) => ended(),
        Err(e) => StorageError::Io(std::io::Error::other(e)),
    }
}

fn ended() -> StorageError {
    StorageError::Io(std::io::Error::other("the streaming put ended early"))
}

impl Drop for StreamingPut {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.to, Destination::Done) {
            Destination::Local { staging, .. } => {
                let _ = std::fs::remove_file(staging);
            }
            // The task sees the channel closed and aborts the upload.
            Destination::Remote { .. } | Destination::Done => {}
        }
    }
}

/// What a read from the local file store leaves in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRead {
    /// The blob's pages stay cached: it may well be read again soon.
    Keep,
    /// The blob is read once (a raw upload by the job that processes it): its
    /// pages, clean since its durable put, leave the page cache, so the pages the
    /// next uploads are written into are ones just freed rather than fresh ones
    /// (on a VM whose balloon reports free memory to the host, several times
    /// slower to write the first time), and what is read again stays cached.
    Release,
}

/// Reads `range` of a local store's file into a buffer that is not zeroed first
/// (object_store's own read fills it with zeros, then reads over them), then
/// drops the file's pages from the page cache when `after` says so.
fn read_file_range(
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    after: AfterRead,
) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    let len = usize::try_from(range.end - range.start).map_err(std::io::Error::other)?;
    let mut buf = Vec::with_capacity(len);
    let mut reader = file;
    reader.seek(SeekFrom::Start(range.start))?;
    reader.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("blob shorter than its listed {len} bytes"),
        ));
    }
    if after == AfterRead::Release {
        // A hint: a failure changes nothing the caller could act on.
        let _ = nix::fcntl::posix_fadvise(
            file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
    Ok(Bytes::from(buf))
}

fn sync_file_and_parent(file: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(parent) = file.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lazy_put_replaces_the_blob_whole_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let storage = Storage::open(url.as_str(), &BTreeMap::new()).unwrap();
        let key = Path::from("reports/a.json");
        storage.put(&key, Bytes::from_static(b"old")).await.unwrap();
        storage
            .put_lazy(&key, Bytes::from_static(b"new report"))
            .await
            .unwrap();
        assert_eq!(
            storage.get(&key).await.unwrap().as_deref(),
            Some(&b"new report"[..])
        );
        assert_eq!(
            std::fs::read(dir.path().join("reports/a.json")).unwrap(),
            b"new report"
        );
        // Written and renamed into place: nothing staged is left beside it.
        assert_eq!(storage.remove_partial_writes("reports").unwrap(), 0);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    /// A local store in a fresh directory (kept while the first part lives),
    /// and an in-memory one.
    fn local_and_memory() -> (tempfile::TempDir, Storage, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let local = Storage::open(url.as_str(), &BTreeMap::new()).unwrap();
        let memory = Storage::open("memory://", &BTreeMap::new()).unwrap();
        (dir, local, memory)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blob_read_once_is_read_whole_and_can_be_read_again() {
        let (_dir, local, memory) = local_and_memory();
        let blob: Vec<u8> = (0..(3 << 20) + 5).map(|i: usize| (i % 251) as u8).collect();
        let key = Path::from("raw/2026-12-04/a.dmp");
        for storage in [&local, &memory] {
            storage.put(&key, blob.clone().into()).await.unwrap();
            for after in [AfterRead::Release, AfterRead::Release, AfterRead::Keep] {
                let (read, size) = storage
                    .get_admitted(&key, async |size| size, after)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(size, blob.len() as u64);
                assert!(read == blob, "{after:?}: the blob as it was put");
            }
            let missing = Path::from("raw/2026-12-04/b.dmp");
            let none = storage
                .get_admitted(&missing, async |_| (), AfterRead::Release)
                .await
                .unwrap();
            assert!(none.is_none());
        }
    }

    /// Writes `pieces` through a streaming put at `key`, finishing it when
    /// `finish`, else dropping it; off the async threads, as uploads do.
    async fn stream(storage: &Storage, key: &Path, pieces: Vec<Vec<u8>>, finish: bool) {
        let mut put = storage.start_put(key).await.unwrap();
        tokio::task::spawn_blocking(move || {
            for piece in pieces {
                put.write(&piece).unwrap();
            }
            if finish {
                put.finish().unwrap();
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_put_is_at_its_key_whole_once_finished_and_nowhere_when_dropped() {
        let (dir, local, memory) = local_and_memory();
        // Over object_store's 5 MiB multipart part, in pieces of all sizes.
        let blob: Vec<u8> = (0..(11 << 20) + 3)
            .map(|i: usize| (i % 253) as u8)
            .collect();
        let pieces: Vec<Vec<u8>> = blob.chunks(777_777).map(<[u8]>::to_vec).collect();
        for storage in [&local, &memory] {
            let key = Path::from("raw/2026-12-01/a.dmp");
            stream(storage, &key, pieces.clone(), true).await;
            assert!(storage.get(&key).await.unwrap().unwrap() == blob);
            let dropped = Path::from("raw/2026-12-01/b.dmp");
            stream(storage, &dropped, pieces.clone(), false).await;
            assert!(storage.get(&dropped).await.unwrap().is_none());
            assert_eq!(storage.list(None).await.unwrap(), vec![key]);
        }
        // Nothing staged is left beside it on the local store.
        assert_eq!(local.remove_partial_writes("raw").unwrap(), 0);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("raw/2026-12-01"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.dmp"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_put_a_crash_cut_short_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let local = Storage::open(url.as_str(), &BTreeMap::new()).unwrap();
        let key = Path::from("raw/2026-12-01/a.dmp");
        let mut put = local.start_put(&key).await.unwrap();
        tokio::task::spawn_blocking(move || {
            put.write(b"half").unwrap();
            // A crash: no drop, no finish.
            std::mem::forget(put);
        })
        .await
        .unwrap();
        assert!(local.list(None).await.unwrap().is_empty());
        assert_eq!(local.remove_partial_writes("raw").unwrap(), 1);
    }
}

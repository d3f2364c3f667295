//! Blob storage: one `object_store` for everything, and durability. What the
//! bytes are and where they go is decided above: report blobs by the report vault
//! (`vault.rs`, which seals them), symbol files by `mayday_symbols`.
//!
//! A put on the local file store is fsynced (file and directory) before it returns,
//! so "stored" means "survives a crash of the machine", as it does on S3.
//! [`Storage::put_lazy`] is the one exception, for derived blobs that can be
//! made again: written and renamed into place (never half-written: a reader sees
//! the old blob or the new one), not waited for on the disk.

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
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

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
        match self.store.get(key).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
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

    /// Checks that the store answers (health checks).
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = Path::from("health/probe");
        self.store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await?;
        Ok(())
    }
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
}

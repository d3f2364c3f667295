//! Blob storage: one `object_store` for everything, and the one place that owns the
//! key layout.
//!
//! Keys:
//! - `raw/<yyyy-mm-dd>/<report-id>.dmp` — the (scrubbed) minidump as received
//! - `raw/<yyyy-mm-dd>/<report-id>.json` — the upload's metadata (annotations, time)
//! - `reports/<report-id>.json` — the processed report
//! - `symbols/<debug_file>/<DEBUG_ID>/<name>.sym` — owned by `mayday_symbols`
//!
//! Report blobs (everything under `raw/` and `reports/`) are sealed with their
//! report's data key ([`Storage::put_sealed`], [`Storage::get_sealed`], and
//! [`read_report_blob`] which looks the key up); symbols stay plain.
//!
//! A put on the local file store is fsynced (file and directory) before it returns,
//! so "stored" means "survives a crash of the machine", as it does on S3.

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
use time::Date;

use crate::AppState;
use crate::crypto::{CryptoError, DataKey};
use crate::index::IndexError;
use crate::report_id::ReportId;

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
    /// A sealed blob could not be opened, or its data key unwrapped.
    #[error("blob encryption: {0}")]
    Crypto(#[from] CryptoError),
    /// The index holding the data keys failed.
    #[error("data keys: {0}")]
    Keys(#[from] IndexError),
}

impl StorageError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            StorageError::InvalidUrl { .. } => "invalid_url",
            StorageError::Store(_) => "store",
            StorageError::Io(_) => "io",
            StorageError::Crypto(e) => e.name(),
            StorageError::Keys(_) => "keys",
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
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
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

    /// The underlying object store, for parts that key their own blobs (symbols).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Key of a raw dump: `raw/<yyyy-mm-dd>/<id>.dmp`.
    pub fn raw_dump_key(received: Date, id: &ReportId) -> Path {
        Path::from_iter(["raw", &date_component(received), &format!("{id}.dmp")])
    }

    /// Key of a raw upload's metadata: `raw/<yyyy-mm-dd>/<id>.json`.
    pub fn raw_meta_key(received: Date, id: &ReportId) -> Path {
        Path::from_iter(["raw", &date_component(received), &format!("{id}.json")])
    }

    /// Key of a processed report: `reports/<id>.json`.
    pub fn processed_key(id: &ReportId) -> Path {
        Path::from_iter(["reports", &format!("{id}.json")])
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

    /// Seals `plain` with `data_key` (bound to `key`) and stores it durably.
    pub async fn put_sealed(
        &self,
        key: &Path,
        data_key: &DataKey,
        plain: &[u8],
    ) -> Result<(), StorageError> {
        let sealed = data_key.seal(key.as_ref(), plain);
        self.put(key, sealed.into()).await
    }

    /// The blob at `key`, opened with `data_key`; `None` when there is none.
    pub async fn get_sealed(
        &self,
        key: &Path,
        data_key: &DataKey,
    ) -> Result<Option<Bytes>, StorageError> {
        match self.get(key).await? {
            Some(sealed) => Ok(Some(data_key.open(key.as_ref(), &sealed)?.into())),
            None => Ok(None),
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

    /// Checks that the store answers (health checks).
    pub async fn check(&self) -> Result<(), StorageError> {
        let probe = Path::from("health/probe");
        self.store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await?;
        Ok(())
    }
}

/// Makes, wraps and stores a new data key for report `report_id` (before any of
/// its blobs is written).
pub async fn new_report_key(
    state: &AppState,
    report_id: &ReportId,
) -> Result<DataKey, StorageError> {
    let key = DataKey::generate();
    let wrapped = state.keyring().wrap(&key, &report_id.to_string());
    state
        .index()
        .insert_report_key(report_id, &wrapped, crate::index::now_ms())
        .await?;
    Ok(key)
}

/// The data key of report `report_id`; `None` once it was destroyed (the report
/// is deleted: its blobs count as gone even where a copy remains).
pub async fn report_key(
    state: &AppState,
    report_id: &ReportId,
) -> Result<Option<DataKey>, StorageError> {
    match state.index().report_key(report_id).await? {
        Some(wrapped) => Ok(Some(
            state.keyring().unwrap(&wrapped, &report_id.to_string())?,
        )),
        None => Ok(None),
    }
}

/// A report's blob at `key`, decrypted; `None` when the blob or the report's key
/// is gone.
pub async fn read_report_blob(
    state: &AppState,
    report_id: &ReportId,
    key: &Path,
) -> Result<Option<Bytes>, StorageError> {
    match report_key(state, report_id).await? {
        Some(data_key) => state.storage().get_sealed(key, &data_key).await,
        None => Ok(None),
    }
}

fn date_component(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn sync_file_and_parent(file: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(parent) = file.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

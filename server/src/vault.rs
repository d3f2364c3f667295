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
//! - sealed put and get of report blobs ([`Vault::put`], [`Vault::get`],
//!   [`Vault::read`]);
//! - the key layout of report blobs in the store:
//!   - `raw/<yyyy-mm-dd>/<report-id>.dmp` — the (scrubbed) minidump as received,
//!     followed by the upload's metadata ([`RawUpload`]);
//!   - `raw/<yyyy-mm-dd>/<report-id>.json` — the upload's metadata ([`RawMeta`]),
//!     on its own, of reports stored before the two went into one object;
//!   - `reports/<report-id>.json` — the processed report
//!
//!   (`symbols/<debug_file>/<DEBUG_ID>/<name>.sym` is owned by `mayday_symbols`;
//!   symbols stay plain);
//! - master-key rotation ([`rotate`]), which rewraps every stored data key.
//!
//! The vault stands on [`Storage`] (bytes, durably), the [`Index`] (where the
//! wrapped data keys are kept) and the [`Keyring`] (the master keys).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use mayday_report::scrub::{ScrubSummary, TextAttachment};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::config::Config;
use crate::crypto::{self, CryptoError, DataKey, Keyring, MasterKey, WrappedKey};
use crate::index::{Index, IndexError, now_ms};
use crate::report_id::ReportId;
use crate::storage::{Storage, StorageError};

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

/// A report's upload as stored: the scrubbed dump and the upload's metadata.
///
/// Both are sealed in one object at the raw key, the dump first, then the
/// metadata's JSON, then its length (`u32`, little-endian); the report's row names
/// the raw key as its metadata key too. A report stored before keeps them in two
/// objects, the dump alone at the raw key and the metadata at its own key.
#[derive(Debug, Clone)]
pub struct RawUpload {
    /// The minidump.
    pub dump: Bytes,
    /// The metadata's JSON ([`RawMeta`]); `None` when it is gone.
    pub meta: Option<Bytes>,
}

/// Bytes after a raw object's metadata: its length.
const META_LEN: usize = 4;

impl RawUpload {
    /// Splits an opened raw object into its dump and its metadata.
    fn split(key: &Path, mut object: Bytes) -> Result<RawUpload, VaultError> {
        let malformed = || VaultError::MalformedRaw(key.to_string());
        let at = object.len().checked_sub(META_LEN).ok_or_else(malformed)?;
        let len = u32::from_le_bytes(object[at..].try_into().map_err(|_| malformed())?);
        let start = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_sub(len))
            .ok_or_else(malformed)?;
        object.truncate(at);
        let meta = object.split_off(start);
        Ok(RawUpload {
            dump: object,
            meta: Some(meta),
        })
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

    /// Destroys the data key of report `id`: every copy of its blobs becomes
    /// unreadable. Returns whether there was one.
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

    /// Seals `buf[crypto::SEAL_HEADROOM..]` with `data_key` (bound to `key`)
    /// where it lies, for [`Vault::put_sealed`]: a large blob is never held twice.
    pub fn seal_in_place(key: &Path, data_key: &DataKey, mut buf: Vec<u8>) -> Sealed {
        data_key.seal_in_place(key.as_ref(), &mut buf);
        Sealed {
            key: key.clone(),
            bytes: buf,
        }
    }

    /// Seals a report's dump (`buf[crypto::SEAL_HEADROOM..]`) and its metadata
    /// into its one raw object ([`RawUpload`]) with `data_key` (bound to `key`),
    /// for [`Vault::put_sealed`]. The dump is not copied: the metadata is
    /// appended to it.
    pub fn seal_raw_in_place(
        key: &Path,
        data_key: &DataKey,
        mut buf: Vec<u8>,
        meta: &[u8],
    ) -> Result<Sealed, VaultError> {
        let len =
            u32::try_from(meta.len()).map_err(|_| VaultError::MalformedRaw(key.to_string()))?;
        buf.reserve_exact(meta.len() + META_LEN + crypto::SEAL_TAG);
        buf.extend_from_slice(meta);
        buf.extend_from_slice(&len.to_le_bytes());
        Ok(Vault::seal_in_place(key, data_key, buf))
    }

    /// Stores report `id`'s dump, in place of the one at `raw_key`, keeping its
    /// metadata (`meta`, as read) where the report keeps it: with the dump when
    /// `meta_key` is `raw_key` ([`RawUpload`]).
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
                self.put_sealed(Vault::seal_raw_in_place(raw_key, data_key, buf, meta)?)
                    .await
            }
            _ => self.put(raw_key, data_key, dump).await,
        }
    }

    /// Report's upload, opened with `data_key`, from the raw object at `raw_key`
    /// and, where the report keeps it apart, the metadata at `meta_key`; `None`
    /// when the dump is gone.
    pub async fn get_raw(
        &self,
        raw_key: &Path,
        meta_key: &Path,
        data_key: &DataKey,
    ) -> Result<Option<RawUpload>, VaultError> {
        let Some(object) = self.get(raw_key, data_key).await? else {
            return Ok(None);
        };
        if meta_key == raw_key {
            return RawUpload::split(raw_key, object).map(Some);
        }
        Ok(Some(RawUpload {
            dump: object,
            meta: self.get(meta_key, data_key).await?,
        }))
    }

    /// Report `id`'s dump, opened; `None` when it or the report's data key is
    /// gone. (`raw_key` and `meta_key` as in [`Vault::get_raw`].)
    pub async fn read_dump(
        &self,
        id: &ReportId,
        raw_key: &Path,
        meta_key: &Path,
    ) -> Result<Option<Bytes>, VaultError> {
        let Some(data_key) = self.data_key(id).await? else {
            return Ok(None);
        };
        Ok(self
            .get_raw(raw_key, meta_key, &data_key)
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

/// Rewraps every data key under a new master key.
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
    let mut rewrapped = 0;
    let mut after = None;
    loop {
        let batch = index.report_keys_after(after.as_ref(), 500).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.0);
        for (id, wrapped) in &batch {
            if wrapped.master_key_id == new_key.id() {
                continue;
            }
            let report_id = &id.to_string();
            let data = all.unwrap(wrapped, report_id)?;
            let rewrapped_key = new_key.wrap(&data, report_id);
            // Only if the key is still the one we read: a deleted report stays deleted.
            if index
                .replace_report_key(id, wrapped, &rewrapped_key)
                .await?
            {
                rewrapped += 1;
            }
        }
    }
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
            new_key_to_configure: None,
        })
    } else {
        Ok(Rotation {
            rewrapped,
            new_key_to_configure: Some(new_key),
        })
    }
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

    #[test]
    fn a_raw_object_splits_into_its_dump_and_metadata_or_is_refused() {
        let key = Path::from("raw/2026-11-22/x.dmp");
        let raw = RawUpload::split(&key, Bytes::from_static(b"MDMP..{\"a\":1}\x07\0\0\0")).unwrap();
        assert_eq!(raw.dump, Bytes::from_static(b"MDMP.."));
        assert_eq!(raw.meta, Some(Bytes::from_static(b"{\"a\":1}")));
        for malformed in [&b""[..], b"\x01\0\0", b"ab\x03\0\0\0", b"\xff\xff\xff\xff"] {
            assert!(RawUpload::split(&key, Bytes::copy_from_slice(malformed)).is_err());
        }
    }
}

//! Reading and writing symbol files in object storage.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::key::{SymbolId, symbol_key};

/// Errors of the symbol store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object store failed (not a missing file: that is `Ok(None)`).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
}

/// Symbol files in object storage, keyed by [`symbol_key`].
#[derive(Clone, Debug)]
pub struct SymbolStore {
    store: Arc<dyn ObjectStore>,
}

impl SymbolStore {
    /// A symbol store on `store` (the same store the server keeps everything in).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        SymbolStore { store }
    }

    /// The `.sym` bytes for `id`, or `None` when there are none.
    pub async fn get(&self, id: &SymbolId) -> Result<Option<Bytes>, StoreError> {
        match self.store.get(&symbol_key(id)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a symbol file for `id` is stored.
    pub async fn contains(&self, id: &SymbolId) -> Result<bool, StoreError> {
        match self.store.head(&symbol_key(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores `sym` for `id`, replacing what was there.
    pub async fn put(&self, id: &SymbolId, sym: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&symbol_key(id), PutPayload::from_bytes(sym))
            .await?;
        Ok(())
    }
}

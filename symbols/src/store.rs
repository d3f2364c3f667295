//! Reading and writing symbol files in object storage.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload};

use crate::key::{SymbolId, symbol_key};

/// Errors of the symbol store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object store failed (not a missing file: that is `Ok(None)`).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Writing a fetched file locally failed.
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
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

    /// Streams the `.sym` for `id` into `out` (appending) without holding it in
    /// memory; returns its length, or `None` when there is none.
    ///
    /// One GET: a local store hands over its file, copied on a blocking thread by
    /// the kernel (no buffer in this process); other stores stream the response
    /// body, a chunk at a time.
    pub async fn get_into(
        &self,
        id: &SymbolId,
        out: &mut std::fs::File,
    ) -> Result<Option<u64>, StoreError> {
        let Some(payload) = self.get_payload(id).await? else {
            return Ok(None);
        };
        match payload {
            GetResultPayload::File(mut file, _) => {
                // A second handle on `out` (same file offset) for the blocking task.
                let mut out = out.try_clone()?;
                let copied =
                    tokio::task::spawn_blocking(move || std::io::copy(&mut file, &mut out))
                        .await
                        .map_err(std::io::Error::other)??;
                Ok(Some(copied))
            }
            GetResultPayload::Stream(stream) => Ok(Some(stream_into(stream, out).await?)),
        }
    }

    /// The `.sym` for `id` as a file to read from, or `None` when there is none.
    ///
    /// A local store hands over its own file, opened: nothing is copied (a later
    /// upload for `id` is renamed into place and leaves this handle's text as it
    /// was). Other stores stream the response body into an anonymous temporary
    /// file, a chunk at a time.
    pub async fn get_file(&self, id: &SymbolId) -> Result<Option<std::fs::File>, StoreError> {
        let Some(payload) = self.get_payload(id).await? else {
            return Ok(None);
        };
        match payload {
            GetResultPayload::File(file, _) => Ok(Some(file)),
            GetResultPayload::Stream(stream) => {
                let mut out = tempfile::tempfile()?;
                stream_into(stream, &mut out).await?;
                Ok(Some(out))
            }
        }
    }

    /// One GET of the `.sym` for `id`: its payload, or `None` when there is none.
    async fn get_payload(&self, id: &SymbolId) -> Result<Option<GetResultPayload>, StoreError> {
        match self.store.get(&symbol_key(id)).await {
            Ok(result) => Ok(Some(result.payload)),
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

/// Appends a GET's response body to `out`, a chunk at a time; returns its length.
async fn stream_into(
    mut stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    out: &mut std::fs::File,
) -> Result<u64, StoreError> {
    use futures::StreamExt;
    use std::io::Write;
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk)?;
        len += chunk.len() as u64;
    }
    Ok(len)
}

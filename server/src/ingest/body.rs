//! The upload body on its way in: bytes counted on the wire (before
//! decompression) and after it, an idle timeout on the wire, the pieces it
//! arrives in bounded, and the compression ratio bounded.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::error::IngestError;

/// Decompressed bytes that pass before the compression ratio is checked: small
/// bodies compress as they like.
const RATIO_FREE_BYTES: u64 = 1024 * 1024;

/// Pieces (HTTP chunks, or reads of the socket) a body may arrive in before
/// their mean size is checked: Crashpad sends each short multipart field as a
/// chunk of its own, a few hundred for a report with many annotations.
const FREE_PIECES: u64 = 4096;

/// The least mean size of a body's pieces past [`FREE_PIECES`]. Each piece costs
/// the server about 2 µs however small (hyper hands each one from the
/// connection's task to the handler's): a body of 25 MiB in chunks of one byte
/// cost 10 s of a core, in pieces of this size 0.2 s. Clients send chunks of
/// kilobytes (Crashpad 32 KiB, curl 64 KiB), and a socket read holds a packet
/// or more.
const MIN_MEAN_PIECE_BYTES: u64 = 256;

/// What happened to one request body on the wire, shared between the layer in
/// front of decompression and the handler behind it.
#[derive(Debug, Default)]
pub(crate) struct WireStats {
    bytes: AtomicU64,
    timed_out: AtomicBool,
    over_limit: AtomicBool,
    small_pieces: AtomicBool,
}

impl WireStats {
    /// Bytes received on the wire so far.
    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Why the body stream failed, if the wire says: idle too long, over the
    /// wire limit, or in too many small pieces.
    pub(crate) fn failure(&self) -> Option<IngestError> {
        if self.timed_out.load(Ordering::Relaxed) {
            Some(IngestError::BodyTimeout)
        } else if self.over_limit.load(Ordering::Relaxed) {
            Some(IngestError::TooLarge("body"))
        } else if self.small_pieces.load(Ordering::Relaxed) {
            Some(IngestError::Malformed("body_pieces"))
        } else {
            None
        }
    }
}

/// The body stopped arriving: no byte for the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("no body bytes for {0:?}")]
struct BodyIdle(Duration);

/// The body arrives in pieces too small for their number (see [`Pieces`]).
#[derive(Debug, thiserror::Error)]
#[error("{pieces} body pieces for {bytes} bytes")]
struct SmallPieces {
    pieces: u64,
    bytes: u64,
}

/// The pieces a body arrived in so far, and their bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Pieces {
    pieces: u64,
    bytes: u64,
}

impl Pieces {
    /// Counts one more piece of `len` bytes; an error once the pieces past
    /// [`FREE_PIECES`] are more than the bytes pay for at
    /// [`MIN_MEAN_PIECE_BYTES`] each. A body then comes in at most
    /// `FREE_PIECES + bytes / MIN_MEAN_PIECE_BYTES` pieces.
    fn add(&mut self, len: usize) -> Result<(), SmallPieces> {
        self.pieces += 1;
        self.bytes += len as u64;
        let paid = self.bytes / MIN_MEAN_PIECE_BYTES;
        if self.pieces > FREE_PIECES.saturating_add(paid) {
            return Err(SmallPieces {
                pieces: self.pieces,
                bytes: self.bytes,
            });
        }
        Ok(())
    }
}

/// Middleware in front of decompression: counts the body's wire bytes and fails it
/// once no byte arrived for `idle` (the handler answers `408`) or once it came in
/// too many small pieces (`400`, see [`Pieces`]). The counts go into the
/// request's extensions as an `Arc<WireStats>`.
pub(crate) async fn watch_wire(
    State(idle): State<Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let stats = Arc::new(WireStats::default());
    request.extensions_mut().insert(Arc::clone(&stats));
    let request = request.map(|body| {
        let stream = futures::stream::unfold(
            (body.into_data_stream(), stats, Pieces::default(), false),
            move |(mut stream, stats, mut pieces, done)| async move {
                if done {
                    return None;
                }
                match tokio::time::timeout(idle, stream.next()).await {
                    Ok(Some(Ok(bytes))) => {
                        stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        if let Err(e) = pieces.add(bytes.len()) {
                            stats.small_pieces.store(true, Ordering::Relaxed);
                            let e: axum::BoxError = Box::new(e);
                            return Some((Err(e), (stream, stats, pieces, true)));
                        }
                        Some((Ok(bytes), (stream, stats, pieces, false)))
                    }
                    Ok(Some(Err(e))) => {
                        if is_length_limit(&e) {
                            stats.over_limit.store(true, Ordering::Relaxed);
                        }
                        let e: axum::BoxError = Box::new(e);
                        Some((Err(e), (stream, stats, pieces, true)))
                    }
                    Ok(None) => None,
                    Err(_) => {
                        stats.timed_out.store(true, Ordering::Relaxed);
                        let e: axum::BoxError = Box::new(BodyIdle(idle));
                        Some((Err(e), (stream, stats, pieces, true)))
                    }
                }
            },
        );
        // The decoder behind may poll again after the end.
        Body::from_stream(stream.fuse())
    });
    next.run(request).await
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// The decompressed body as a stream of chunks: fails once more than `max` bytes
/// passed, or once more than [`RATIO_FREE_BYTES`] passed at more than `ratio`
/// times the wire bytes.
pub(crate) fn decompressed(
    body: Body,
    stats: Arc<WireStats>,
    max: u64,
    ratio: u64,
) -> impl Stream<Item = Result<Bytes, IngestError>> + Send + Unpin + 'static {
    let mut seen = 0u64;
    body.into_data_stream().map(move |chunk| match chunk {
        Ok(bytes) => {
            seen += bytes.len() as u64;
            if seen > max {
                Err(IngestError::TooLarge("decompressed"))
            } else if seen > RATIO_FREE_BYTES && seen / ratio.max(1) > stats.bytes() {
                Err(IngestError::TooLarge("compression_ratio"))
            } else {
                Ok(bytes)
            }
        }
        Err(_) => Err(stats
            .failure()
            .unwrap_or(IngestError::Malformed("body_encoding"))),
    })
}

/// Sits between the body and the multipart parser, which buffers whatever it is
/// given while it looks for a boundary or the end of a part's headers:
/// - it hands over one chunk per poll, so the parser works through its buffer
///   before it asks for more;
/// - while the parser looks for the next part ([`HeaderBudget::start`]), it fails
///   the body once more than the budget was asked for: a body without its
///   boundary, or a header that never ends, costs a few KiB, not the whole body.
pub(crate) struct Gate<S> {
    inner: S,
    budget: Arc<HeaderBudget>,
    yield_next: bool,
}

/// Bytes the multipart parser may read while looking for a part.
#[derive(Debug)]
pub(crate) struct HeaderBudget {
    max: u64,
    /// Bytes read since looking started; `u64::MAX` while reading a part's data.
    read: AtomicU64,
}

impl HeaderBudget {
    /// A budget of `max` bytes per search.
    pub(crate) fn new(max: u64) -> Arc<HeaderBudget> {
        Arc::new(HeaderBudget {
            max,
            read: AtomicU64::new(u64::MAX),
        })
    }

    /// The parser starts looking for the next part.
    pub(crate) fn start(&self) {
        self.read.store(0, Ordering::Relaxed);
    }

    /// The parser found a part and reads its data.
    pub(crate) fn stop(&self) {
        self.read.store(u64::MAX, Ordering::Relaxed);
    }

    /// Counts `len` bytes read; false when the budget was already spent before.
    fn take(&self, len: u64) -> bool {
        let before = self.read.load(Ordering::Relaxed);
        if before == u64::MAX {
            return true;
        }
        self.read.store(
            before.saturating_add(len).min(u64::MAX - 1),
            Ordering::Relaxed,
        );
        before < self.max
    }
}

impl<S> Gate<S> {
    /// Gates `inner` with `budget`.
    pub(crate) fn new(inner: S, budget: Arc<HeaderBudget>) -> Gate<S> {
        Gate {
            inner,
            budget,
            yield_next: false,
        }
    }
}

impl<S> Stream for Gate<S>
where
    S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
{
    type Item = Result<Bytes, IngestError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.yield_next {
            this.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if !this.budget.take(bytes.len() as u64) {
                    return Poll::Ready(Some(Err(IngestError::Malformed("multipart_header"))));
                }
                this.yield_next = true;
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_refuses_a_search_past_its_budget() {
        let chunks = (0..10).map(|_| Ok(Bytes::from(vec![b'x'; 1000])));
        let budget = HeaderBudget::new(3000);
        budget.start();
        let mut gate = Gate::new(futures::stream::iter(chunks), Arc::clone(&budget));
        let mut passed = 0;
        while let Some(chunk) = gate.next().await {
            match chunk {
                Ok(bytes) => passed += bytes.len(),
                Err(e) => {
                    assert!(matches!(e, IngestError::Malformed("multipart_header")));
                    break;
                }
            }
        }
        assert_eq!(passed, 3000);
    }

    #[tokio::test]
    async fn the_gate_passes_part_data_unbounded() {
        let chunks = (0..10).map(|_| Ok(Bytes::from(vec![b'x'; 1000])));
        let budget = HeaderBudget::new(10);
        budget.stop();
        let gate = Gate::new(futures::stream::iter(chunks), budget);
        let all: Vec<_> = gate.collect().await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(all.len(), 10);
    }

    #[tokio::test]
    async fn a_high_compression_ratio_is_refused_after_the_free_bytes() {
        let stats = Arc::new(WireStats::default());
        stats.bytes.store(10_000, Ordering::Relaxed);
        let body = Body::from(vec![0u8; 4 * 1024 * 1024]);
        let results: Vec<_> = decompressed(body, Arc::clone(&stats), u64::MAX, 100)
            .collect()
            .await;
        assert!(matches!(
            results.last(),
            Some(Err(IngestError::TooLarge("compression_ratio")))
        ));
        let body = Body::from(vec![0u8; 4 * 1024 * 1024]);
        stats.bytes.store(4 * 1024 * 1024, Ordering::Relaxed);
        let results: Vec<_> = decompressed(body, stats, u64::MAX, 100).collect().await;
        assert!(results.iter().all(Result::is_ok));
    }

    #[test]
    fn a_body_in_too_many_small_pieces_is_refused_after_the_free_pieces() {
        // Many short pieces, then ordinary ones: a Crashpad upload.
        let mut pieces = Pieces::default();
        for _ in 0..FREE_PIECES {
            pieces.add(1).unwrap();
        }
        for _ in 0..64 {
            pieces.add(32 * 1024).unwrap();
        }
        // One byte at a time: refused soon past the free pieces.
        let mut pieces = Pieces::default();
        let refused = (0..2 * FREE_PIECES).position(|_| pieces.add(1).is_err());
        let refused = refused.expect("refused") as u64;
        assert!(
            (FREE_PIECES..FREE_PIECES + 32).contains(&refused),
            "{refused}"
        );
        // Pieces of the least mean size pass however many; of half of it, twice
        // the free pieces do.
        let mut pieces = Pieces::default();
        for _ in 0..4 * FREE_PIECES {
            pieces.add(MIN_MEAN_PIECE_BYTES as usize).unwrap();
        }
        let mut pieces = Pieces::default();
        let half = MIN_MEAN_PIECE_BYTES as usize / 2;
        let refused = (0..4 * FREE_PIECES).position(|_| pieces.add(half).is_err());
        assert_eq!(refused, Some(2 * FREE_PIECES as usize));
    }
}

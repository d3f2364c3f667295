//! HTTP/1.0 requests with a chunked body, as Crashpad's own HTTP transport sends
//! its uploads (sentry-native's `crashpad_handler` on Linux posts
//! `POST /api/<project>/minidump/ HTTP/1.0` with `Transfer-Encoding: chunked`).
//! hyper refuses such a request before any route sees it (HTTP/1.0 has no
//! transfer codings, RFC 9112 §6.1), so the first request head of each
//! connection is looked at before hyper reads it: when it is one of these, it is
//! handed on as `HTTP/1.1` with `Connection: close` — the framing its sender
//! used, and the connection closed after the answer as HTTP/1.0 does. Every other
//! connection passes unchanged: it is let through as soon as its request line
//! does not end in `HTTP/1.0`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest first request head looked at (hyper's own default limit on a
/// head's size); a longer one is handed on unchanged, for hyper to refuse.
const MAX_HEAD: usize = 400 * 1024;

/// A connection's socket whose first request head, when it is an HTTP/1.0
/// request with a transfer coding, is rewritten as an HTTP/1.1 one that closes
/// the connection.
pub struct FirstHead<IO> {
    inner: IO,
    state: State,
}

enum State {
    /// The first head is being read: what came so far, and where its first
    /// line ends once a `\n` came.
    Reading {
        seen: Vec<u8>,
        line_end: Option<usize>,
    },
    /// These bytes (from `at`) are handed on before the socket is read again.
    Handing { bytes: Vec<u8>, at: usize },
    /// Everything passes unchanged.
    Through,
}

impl<IO> FirstHead<IO> {
    /// `inner`, its first request head not looked at yet.
    pub fn new(inner: IO) -> FirstHead<IO> {
        FirstHead {
            inner,
            state: State::Reading {
                seen: Vec::new(),
                line_end: None,
            },
        }
    }
}

/// Whether `seen`, the start of a connection whose first `\n` is at `line_end`
/// (`None`: none came yet), may still be an HTTP/1.0 request worth waiting for
/// the rest of its head: its request line is not complete yet (and short
/// enough), or it ends in `HTTP/1.0`.
fn may_be_http10(seen: &[u8], line_end: Option<usize>) -> bool {
    if seen.len() > MAX_HEAD {
        return false;
    }
    line_end.is_none_or(|end| ends_in_http10(&seen[..end]))
}

/// Whether a request line (without its `\n`) ends in `HTTP/1.0`.
fn ends_in_http10(line: &[u8]) -> bool {
    line.strip_suffix(b"\r")
        .unwrap_or(line)
        .ends_with(b" HTTP/1.0")
}

/// The most headers a request may have, as hyper's HTTP/1 server counts them
/// (its default `max_headers`): a head with more is handed on unchanged, for
/// hyper to refuse.
const MAX_HEADERS: usize = 100;

/// Whether `seen`, a connection's start of which the bytes from `new_at` just
/// came, may now hold the blank line that ends a head: a `\n` after `\n` or
/// `\n\r`, among them (hyper takes a bare `\n` as a line's
/// end, as it takes `\r\n`). The head is parsed only then, so a head that
/// trickles in a few bytes at a time costs linear time, not its length squared.
fn may_end_a_head(seen: &[u8], new_at: usize) -> bool {
    (new_at..seen.len())
        .any(|at| seen[at] == b'\n' && matches!(seen[..at], [.., b'\n'] | [.., b'\n', b'\r']))
}

/// What a connection's first request head, read so far, asks to hand on.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Not complete yet.
    Partial,
    /// Not an HTTP/1.0 request with a transfer coding, or not a head hyper
    /// would take (hyper refuses it): the connection passes unchanged.
    Unchanged,
    /// These bytes in place of those seen.
    Rewritten(Vec<u8>),
}

/// The first request head of a connection that began with `seen`, read as
/// hyper reads one (httparse): an HTTP/1.0 request with a `Transfer-Encoding`
/// header becomes the head as HTTP/1.1 with `Connection: close` in place of
/// any `Connection` header it had (unless that makes more headers than hyper
/// takes), and what followed it as it came. Read only once the first line
/// ended in `HTTP/1.0`: a connection whose first line is blank (httparse
/// skips such lines) or another request was let through at that line.
fn read_head(seen: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(seen) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Unchanged,
    };
    let (Some(method), Some(path), Some(0)) = (request.method, request.path, request.version)
    else {
        return Head::Unchanged;
    };
    let named = |header: &httparse::Header<'_>, name: &str| header.name.eq_ignore_ascii_case(name);
    if !request
        .headers
        .iter()
        .any(|header| named(header, "transfer-encoding"))
    {
        return Head::Unchanged;
    }
    let kept = request.headers.iter().filter(|h| !named(h, "connection"));
    // With `Connection: close`, one more than hyper takes: refused either way.
    if kept.clone().count() >= MAX_HEADERS {
        return Head::Unchanged;
    }
    let mut out = Vec::with_capacity(seen.len() + 32);
    for part in [method.as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1\r\n"] {
        out.extend_from_slice(part);
    }
    for header in kept {
        for part in [header.name.as_bytes(), b": ", header.value, b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    // Whatever of the body came with the head.
    out.extend_from_slice(&seen[head_len..]);
    Head::Rewritten(out)
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstHead<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Through => return Pin::new(&mut this.inner).poll_read(cx, buf),
                State::Handing { bytes, at } => {
                    let n = buf.remaining().min(bytes.len() - *at);
                    buf.put_slice(&bytes[*at..*at + n]);
                    *at += n;
                    if *at == bytes.len() {
                        this.state = State::Through;
                    }
                    return Poll::Ready(Ok(()));
                }
                State::Reading { seen, line_end } => {
                    let mut chunk = [0u8; 8192];
                    let mut read = ReadBuf::new(&mut chunk);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                    let came = read.filled();
                    let new_at = seen.len();
                    seen.extend_from_slice(came);
                    if line_end.is_none() {
                        *line_end = seen[new_at..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map(|at| new_at + at);
                    }
                    let first_line = line_end.map(|end| &seen[..end]);
                    let head = if first_line.is_some_and(|line| !ends_in_http10(line)) {
                        Head::Unchanged
                    } else if may_end_a_head(seen, new_at) {
                        read_head(seen)
                    } else {
                        Head::Partial
                    };
                    let bytes = match head {
                        Head::Rewritten(bytes) => bytes,
                        Head::Unchanged => std::mem::take(seen),
                        Head::Partial if came.is_empty() || !may_be_http10(seen, *line_end) => {
                            std::mem::take(seen)
                        }
                        Head::Partial => continue,
                    };
                    this.state = if bytes.is_empty() {
                        State::Through
                    } else {
                        State::Handing { bytes, at: 0 }
                    };
                }
            }
        }
    }
}

// Not shared with app.rs's `Tracked`: each forwards the writes of its own socket
// wrapper to the socket it wraps, and the forwarding is all the two have alike.
impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstHead<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What hyper reads of a connection on which `sent` arrives in pieces of
    /// `piece` bytes.
    async fn handed_on(sent: &[u8], piece: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(piece);
        let sent = sent.to_vec();
        let writer = tokio::spawn(async move {
            for part in sent.chunks(piece) {
                client.write_all(part).await.unwrap();
            }
        });
        let mut out = Vec::new();
        FirstHead::new(server).read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    /// What Crashpad's socket transport sends (headers as it writes them).
    const CRASHPAD: &[u8] = b"POST /api/42/minidump/?sentry_key=k HTTP/1.0\r\n\
        Host: 127.0.0.1\r\n\
        Content-Encoding: gzip\r\n\
        Content-Type: multipart/form-data; boundary=b\r\n\
        Transfer-Encoding: chunked\r\n\
        \r\n\
        4\r\nbody\r\n0\r\n\r\n";

    #[tokio::test]
    async fn an_http10_request_with_a_chunked_body_goes_on_as_http11_closing() {
        let expected: &[u8] = b"POST /api/42/minidump/?sentry_key=k HTTP/1.1\r\n\
            Host: 127.0.0.1\r\n\
            Content-Encoding: gzip\r\n\
            Content-Type: multipart/form-data; boundary=b\r\n\
            Transfer-Encoding: chunked\r\n\
            Connection: close\r\n\
            \r\n\
            4\r\nbody\r\n0\r\n\r\n";
        for piece in [1, 7, 64, 4096] {
            assert_eq!(
                handed_on(CRASHPAD, piece).await,
                expected,
                "pieces of {piece}"
            );
        }
        // A `Connection` header of its own gives way to `close`.
        let keep_alive = std::str::from_utf8(CRASHPAD).unwrap().replace(
            "Host: 127.0.0.1\r\n",
            "Host: 127.0.0.1\r\nconnection: keep-alive\r\n",
        );
        assert_eq!(handed_on(keep_alive.as_bytes(), 16).await, expected);
    }

    /// A head ended by bare line feeds (which hyper reads as it reads CRLF) is
    /// found where hyper finds it: the body after it is handed on as it came,
    /// even where it holds a `\r\n\r\n` or lines that look like headers.
    #[tokio::test]
    async fn a_head_of_bare_line_feeds_ends_where_hyper_ends_it() {
        let body: &[u8] = b"b\r\nconnection:x\r\n0\r\n\r\n";
        let mut sent =
            b"POST /api/42/minidump/ HTTP/1.0\nHost: h\nTransfer-Encoding: chunked\n\n".to_vec();
        sent.extend_from_slice(body);
        let mut expected = b"POST /api/42/minidump/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        expected.extend_from_slice(body);
        for piece in [1, 3, 4096] {
            assert_eq!(
                String::from_utf8_lossy(&handed_on(&sent, piece).await),
                String::from_utf8_lossy(&expected),
                "pieces of {piece}"
            );
        }
    }

    #[tokio::test]
    async fn every_other_connection_passes_unchanged() {
        let unchanged: [&[u8]; 6] = [
            // HTTP/1.1, chunked or not; HTTP/1.0 without a transfer coding.
            b"POST /submit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",
            b"POST /submit HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody",
            // A blank line first: let through at once, however it arrives.
            b"\r\nPOST /submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            // A head cut short, and not HTTP at all.
            b"POST /submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for sent in unchanged {
            for piece in [1, 5, 4096] {
                assert_eq!(
                    handed_on(sent, piece).await,
                    sent,
                    "{sent:?} in pieces of {piece}"
                );
            }
        }
        assert_eq!(handed_on(b"", 8).await, b"");
    }

    /// A head whose rewrite would carry more headers than hyper takes is
    /// handed on unchanged (hyper refuses it either way); one header fewer and
    /// it is rewritten. (Found by the `http10_head` fuzz target.)
    #[tokio::test]
    async fn a_rewrite_never_makes_more_headers_than_hyper_takes() {
        let with = |others: usize| {
            let mut head = b"POST /submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\n".to_vec();
            for i in 0..others {
                head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n0\r\n\r\n");
            head
        };
        let full = with(MAX_HEADERS - 1);
        assert_eq!(handed_on(&full, 4096).await, full);
        let fits = with(MAX_HEADERS - 2);
        let out = handed_on(&fits, 4096).await;
        assert!(out.starts_with(b"POST /submit HTTP/1.1\r\n"), "{out:?}");
        assert!(
            out.ends_with(b"Connection: close\r\n\r\n0\r\n\r\n"),
            "{out:?}"
        );
    }

    #[test]
    fn only_a_request_line_ending_in_http10_is_waited_for() {
        let line_end = |seen: &[u8]| seen.iter().position(|&b| b == b'\n');
        for (seen, wait) in [
            (&b"POST /api/42/minid"[..], true),
            (b"POST / HTTP/1.0\r\nHost", true),
            (b"POST / HTTP/1.1\r\nHost", false),
            (b"PRI * HTTP/2.0\r\n", false),
            (&vec![b'a'; MAX_HEAD + 1], false),
        ] {
            assert_eq!(may_be_http10(seen, line_end(seen)), wait, "{seen:?}");
        }
    }
}

//! Fuzzes how the server reads a connection's first request head before hyper
//! does (`http10::FirstHead`: Crashpad's HTTP/1.0 uploads with a chunked body
//! go on as HTTP/1.1 that closes the connection). It must never panic, and:
//! - what it hands on does not depend on how the bytes arrive (all at once, or
//!   in pieces of the size the input's first byte sets);
//! - the bytes go on as they came, unless they begin with a complete HTTP/1.0
//!   request head (as hyper's parser, httparse, reads it) that has a
//!   `Transfer-Encoding` header (and not so many headers that one more is more
//!   than hyper takes), and then always: as a complete HTTP/1.1 head with the
//!   same method, target and headers (but `Connection`), then
//!   `Connection: close`, and everything after the head exactly as it came.
//!
//! Input: the piece size (1 to 256), then the bytes of the connection.

#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use mayday_server::http10::FirstHead;
use tokio::io::{AsyncRead, ReadBuf};

/// hyper's default limit on a request's headers.
const MAX_HEADERS: usize = 100;

/// A socket on which `bytes` arrive `piece` at a time, then the end.
struct Pieces<'a> {
    bytes: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.piece.min(buf.remaining()).min(self.bytes.len());
        let (now, rest) = self.bytes.split_at(n);
        buf.put_slice(now);
        self.bytes = rest;
        Poll::Ready(Ok(()))
    }
}

/// What hyper reads of a connection on which `bytes` arrive `piece` at a time
/// (in reads of 8 KiB, as hyper makes them).
fn handed_on(bytes: &[u8], piece: usize) -> Vec<u8> {
    let mut head = FirstHead::new(Pieces { bytes, piece });
    let mut context = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut read = ReadBuf::new(&mut chunk);
        match Pin::new(&mut head).poll_read(&mut context, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return out,
            Poll::Ready(Ok(())) => out.extend_from_slice(read.filled()),
            other => panic!("a socket that is always ready gave {other:?}"),
        }
    }
}

/// A complete request head of `bytes`: method, target, version, headers, length.
type Parsed = (String, String, u8, Vec<(String, Vec<u8>)>, usize);

fn parse(bytes: &[u8]) -> Option<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = request.parse(bytes) else {
        return None;
    };
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    Some((
        request.method?.to_owned(),
        request.path?.to_owned(),
        request.version?,
        headers,
        len,
    ))
}

fuzz_target!(|data: &[u8]| {
    let [piece, sent @ ..] = data else {
        return;
    };
    let whole = handed_on(sent, sent.len().max(1));
    assert_eq!(
        whole,
        handed_on(sent, usize::from(*piece).max(1)),
        "the same bytes in pieces of {piece} went on otherwise"
    );
    let to_rewrite = !sent.starts_with(b"\n")
        && !sent.starts_with(b"\r\n")
        && parse(sent).is_some_and(|(_, _, version, headers, _)| {
            let kept = headers.iter().filter(|(name, _)| name != "connection");
            version == 0
                && headers.iter().any(|(name, _)| name == "transfer-encoding")
                && kept.count() < MAX_HEADERS
        });
    if !to_rewrite {
        assert_eq!(whole, sent, "went on changed");
        return;
    }
    let (method, path, _, headers, len) = parse(sent).expect("parsed above");
    let Some((out_method, out_path, out_version, out_headers, out_len)) = parse(&whole) else {
        panic!("the rewritten head does not parse: {whole:?}");
    };
    assert_eq!((out_method, out_path, out_version), (method, path, 1));
    let mut expected: Vec<_> = headers
        .into_iter()
        .filter(|(name, _)| name != "connection")
        .collect();
    expected.push(("connection".to_owned(), b"close".to_vec()));
    assert_eq!(out_headers, expected);
    assert_eq!(whole[out_len..], sent[len..], "the body went on changed");
});

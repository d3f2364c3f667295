//! Raw HTTP/1.1 over TCP, for clients no library would be: bodies cut off, sent a
//! byte at a time, or refused half-way. The answer is read while the body is
//! still being written, so a server that answers early (and then closes) is seen
//! answering.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server's answer: status, header block and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header lines, as sent.
    pub headers: String,
    /// The body, as text (lossy).
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// One write of a request: wait `after`, then send `bytes`.
#[derive(Debug, Clone)]
pub struct Write {
    /// The pause before this write.
    pub after: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The writes of `head` and then `body` in 64 KiB pieces, without pauses.
pub fn at_once(head: &[u8], body: &[u8]) -> Vec<Write> {
    std::iter::once(head)
        .chain(body.chunks(64 * 1024))
        .map(|piece| Write {
            after: Duration::ZERO,
            bytes: piece.to_vec(),
        })
        .collect()
}

/// A request head: `POST <path>` with `headers` (each `Name: value`) and a
/// `Content-Length`.
pub fn post_head(path: &str, headers: &[&str], content_length: u64) -> Vec<u8> {
    head_framed(path, headers, &format!("Content-Length: {content_length}"))
}

/// A request head: `POST <path>` with `headers` (each `Name: value`), its body
/// in chunks ([`chunked`]).
pub fn post_head_chunked(path: &str, headers: &[&str]) -> Vec<u8> {
    head_framed(path, headers, "Transfer-Encoding: chunked")
}

/// A `POST` head with `headers` and then the header that frames its body.
fn head_framed(path: &str, headers: &[&str], framing: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for header in headers.iter().chain([&framing]) {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// `body` in the chunked transfer coding, the `i`-th chunk `size(i)` bytes long
/// (the last one what is left), then the last chunk.
pub fn chunked(body: &[u8], mut size: impl FnMut(usize) -> usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 2);
    let mut rest = body;
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(size(i).clamp(1, rest.len()));
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = after;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Connects to `addr` (`127.0.0.1:<port>`), makes `writes` (ignoring write
/// errors: the server may close first) and keeps the connection open, while
/// reading the answer. `None` when no whole answer came within `timeout`, or the
/// connection closed without one.
pub async fn exchange(addr: &str, writes: Vec<Write>, timeout: Duration) -> Option<Answer> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        for write in writes {
            tokio::time::sleep(write.after).await;
            if writer.write_all(&write.bytes).await.is_err() {
                break;
            }
        }
        // Hold the connection open: the server decides when it ends.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let answer = tokio::time::timeout(timeout, read_answer(&mut reader))
        .await
        .ok()
        .flatten();
    sending.abort();
    answer
}

async fn read_answer(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = reader.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut answer = Answer {
        status,
        headers: headers.replace("\r\n", "\n"),
        body: String::new(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Some(answer)
}

//! Hostile uploads against a real server on 127.0.0.1: each is refused with the
//! right status and reason within a bounded time, costs bounded memory, and leaves
//! nothing stored. Bounded in count and size; nothing here leaves the loopback.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use mayday_server::index::{Index, ReportState};
use mayday_server::report_id::ReportId;
use mayday_tests::fixtures::testdata;
use mayday_tests::raw::{Answer, Write, at_once, chunked, exchange, post_head, post_head_chunked};
use mayday_tests::scan::{contains, walk};
use mayday_tests::server::{ServerProcess, TestServer};
use mayday_tests::services::S3Server;
use mayday_tests::upload::{Multipart, gzip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Memory a hostile upload may cost the server over idle.
const MAX_EXTRA_MEMORY: u64 = 128 * 1024 * 1024;
/// How long any refusal here may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

fn dump() -> Vec<u8> {
    std::fs::read(testdata().join("breakpad-win-x86-minidump2/minidump2.dmp")).unwrap()
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Sends a request all at once and reads the answer (also when the server answers
/// before the body is through).
async fn send_raw(url: &str, headers: &[&str], body: &[u8]) -> Answer {
    let head = post_head("/submit", headers, body.len() as u64);
    exchange(&host_port(url), at_once(&head, body), ANSWER_WITHIN)
        .await
        .expect("an answer")
}

/// Sends a request to `path` with `chunks` (a body in the chunked coding) all
/// at once and reads the answer.
async fn send_chunked(url: &str, path: &str, headers: &[&str], chunks: &[u8]) -> Answer {
    let head = post_head_chunked(path, headers);
    exchange(&host_port(url), at_once(&head, chunks), ANSWER_WITHIN)
        .await
        .expect("an answer")
}

/// Sends a multipart body all at once.
async fn send_form(url: &str, content_type: &str, body: &[u8]) -> Answer {
    send_raw(url, &[&format!("Content-Type: {content_type}")], body).await
}

fn assert_refused(answer: Answer, status: u16, reason: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(answer.body.contains(reason), "{answer:?}");
}

/// Gzip of `MDMP` and then zeros up to `len`, compressed as it is made.
fn zeros_bomb(prefix: &[u8], len: usize, suffix: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(prefix).unwrap();
    encoder.write_all(b"MDMP").unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n]).unwrap();
        left -= n;
    }
    encoder.write_all(suffix).unwrap();
    encoder.finish().unwrap()
}

/// Files under the file store of `data_dir` (the store's health probe aside).
fn stored_files(data_dir: &Path) -> Vec<String> {
    let store = data_dir.join("store");
    if !store.exists() {
        return Vec::new();
    }
    walk(&store)
        .into_iter()
        .map(|f| f.strip_prefix(&store).unwrap().display().to_string())
        .filter(|f| !f.starts_with("health"))
        .collect()
}

/// Reports (by their data keys, stored with their rows) and jobs in the index.
async fn indexed(index: &Index) -> (usize, i64) {
    let keys = index.report_key_ids().await.unwrap().len();
    (keys, index.queue_depth().await.unwrap())
}

async fn index_of(data_dir: &Path) -> Index {
    let url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("index.sqlite").display()
    );
    Index::connect(&url).await.unwrap()
}

/// Checks that every answer (`None`: none came before the body ended) refused
/// with `status` and `reason`, that the server's peak memory stayed within
/// [`MAX_EXTRA_MEMORY`] of `idle`, and, after killing it, that nothing is stored.
async fn refused_within_memory(
    server: ServerProcess,
    data_dir: &Path,
    idle: u64,
    answers: Vec<Option<Answer>>,
    status: u16,
    reason: &str,
) {
    for answer in answers {
        assert_refused(
            answer.expect("answered before the body ended"),
            status,
            reason,
        );
    }
    let peak = server.memory().peak;
    assert!(
        peak < idle + MAX_EXTRA_MEMORY,
        "peak RSS {peak} vs idle {idle}"
    );
    server.kill();
    assert_eq!(stored_files(data_dir), Vec::<String>::new());
    assert_eq!(indexed(&index_of(data_dir).await).await, (0, 0));
}

/// A 200 MiB minidump of zeros gzipped to about 200 KB, raw and as a multipart
/// part, two of each at once: refused as too compressed, quickly, while the
/// server's memory stays within 128 MB of idle, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_refused_with_bounded_memory_and_nothing_stored() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), &[("MAYDAY_WORKERS", "0")]);
    let idle = server.memory().peak;

    let boundary = "bombboundary";
    let (raw_bomb, part_bomb) = tokio::task::spawn_blocking(move || {
        let raw = zeros_bomb(b"", 200 * 1024 * 1024, b"");
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; \
             filename=\"a.dmp\"\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let part = zeros_bomb(head.as_bytes(), 200 * 1024 * 1024, tail.as_bytes());
        (raw, part)
    })
    .await
    .unwrap();
    assert!(raw_bomb.len() < 300 * 1024, "{}", raw_bomb.len());

    let multipart = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let mut sends = Vec::new();
    for _ in 0..2 {
        for (headers, body) in [
            (
                vec![
                    "Content-Type: application/octet-stream".to_owned(),
                    "Content-Encoding: gzip".to_owned(),
                ],
                raw_bomb.clone(),
            ),
            (
                vec![multipart.clone(), "Content-Encoding: gzip".to_owned()],
                part_bomb.clone(),
            ),
        ] {
            let url = server.url.clone();
            sends.push(tokio::spawn(async move {
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                send_raw(&url, &headers, &body).await
            }));
        }
    }
    let answers = futures::future::join_all(sends).await;
    let answers = answers.into_iter().map(|a| Some(a.unwrap())).collect();
    refused_within_memory(
        server,
        data.path(),
        idle,
        answers,
        413,
        "Discarded=too_large_compression_ratio",
    )
    .await;
}

/// A multipart body that never shows its boundary, and one whose part header never
/// ends, eight of each at once, each declaring 24 MiB and sending 2 MiB: refused
/// after a few KiB (the answer comes although the body is not through), with
/// bounded memory and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_without_boundary_or_header_end_is_refused_early() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), &[("MAYDAY_WORKERS", "0")]);
    let idle = server.memory().peak;
    let declared = 24 * 1024 * 1024;
    let sent = 2 * 1024 * 1024;

    let no_boundary = vec![b'x'; sent];
    let mut endless_header =
        b"--b0und\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: ".to_vec();
    endless_header.resize(sent, b'y');
    let mut sends = Vec::new();
    for body in [no_boundary, endless_header] {
        for _ in 0..8 {
            let addr = host_port(&server.url);
            let body = body.clone();
            sends.push(tokio::spawn(async move {
                let head = post_head(
                    "/submit",
                    &["Content-Type: multipart/form-data; boundary=b0und"],
                    declared,
                );
                exchange(&addr, at_once(&head, &body), ANSWER_WITHIN).await
            }));
        }
    }
    let answers = futures::future::join_all(sends).await;
    let answers = answers.into_iter().map(Result::unwrap).collect();
    refused_within_memory(
        server,
        data.path(),
        idle,
        answers,
        400,
        "Discarded=malformed_multipart_header",
    )
    .await;
}

/// 200,000 empty file parts in a gzip body of a few hundred KB; 65 parts sent plainly; 600
/// annotations in an `extra` JSON part: each refused, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_parts_or_annotations_are_refused_and_nothing_stored() {
    let server = TestServer::start().await;
    let dump = dump();

    let mut many = Multipart::new();
    for _ in 0..200_000 {
        many = many.file("f", "f", b"");
    }
    let (content_type, body) = many.dump(&dump).finish();
    let compressed = gzip(&body);
    assert!(compressed.len() < 512 * 1024, "{}", compressed.len());
    let answer = send_raw(
        &server.url,
        &[
            &format!("Content-Type: {content_type}"),
            "Content-Encoding: gzip",
        ],
        &compressed,
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(
        answer.body.contains("Discarded=too_large_parts"),
        "{answer:?}"
    );

    let mut parts = Multipart::new();
    for i in 0..64 {
        parts = parts.file(&format!("attachment{i}"), "a.txt", b"a");
    }
    let (content_type, body) = parts.dump(&dump).finish();
    assert_refused(
        send_form(&server.url, &content_type, &body).await,
        413,
        "Discarded=too_large_parts",
    );

    let extra: serde_json::Map<String, serde_json::Value> = (0..600)
        .map(|i| (format!("k{i}"), serde_json::Value::from("v")))
        .collect();
    let (content_type, body) = Multipart::new()
        .text("extra", &serde_json::Value::Object(extra).to_string())
        .dump(&dump)
        .finish();
    assert_refused(
        send_form(&server.url, &content_type, &body).await,
        413,
        "Discarded=too_large_annotations",
    );

    // The limits leave a normal upload alone.
    let (content_type, body) = Multipart::new()
        .text("ProductName", "Fine")
        .file("attachment", "log.txt", b"log")
        .dump(&dump)
        .finish();
    let answer = send_form(&server.url, &content_type, &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(indexed(server.state.index()).await.0, 1);
    server.stop().await;
}

/// Sentry envelopes of 16 MiB of empty lines between their header and the end,
/// two at once: answered like any envelope without a dump (200, nothing stored),
/// for about what reading their bytes costs — the server's CPU time for both
/// stays within [`MAX_ENVELOPE_CPU`] (taking each line off the front of the
/// buffer cost 43 s of a core for 8 MiB in a release build) — and `/healthz`
/// is answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_of_empty_lines_cost_what_their_bytes_do() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("mayday.toml");
    std::fs::write(
        &config,
        "[[sentry.projects]]\nid = \"42\"\nkeys = [\"k1\"]\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let server = ServerProcess::start(
        data.path(),
        &[("MAYDAY_WORKERS", "0"), ("MAYDAY_CONFIG", &config)],
    );
    let before = server.cpu_time();

    let mut body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n".to_vec();
    body.resize(body.len() + 16 * 1024 * 1024, b'\n');
    let sends: Vec<_> = (0..2)
        .map(|_| {
            let (url, body) = (server.url.clone(), body.clone());
            tokio::spawn(async move {
                let head = post_head(
                    "/api/42/envelope/?sentry_key=k1",
                    &["Content-Type: application/x-sentry-envelope"],
                    body.len() as u64,
                );
                exchange(&host_port(&url), at_once(&head, &body), ANSWER_WITHIN).await
            })
        })
        .collect();
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", server.url))
        .timeout(ANSWER_WITHIN)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for answer in futures::future::join_all(sends).await {
        let answer = answer.unwrap().expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.body.contains("9ec79c33ec9942ab8353589fcb2e04dc"),
            "{answer:?}"
        );
    }
    let spent = server.cpu_time() - before;
    eprintln!("two envelopes of 16 MiB of empty lines: {spent:?} of server CPU");
    assert!(spent < MAX_ENVELOPE_CPU, "{spent:?}");
    server.kill();
    assert_eq!(stored_files(data.path()), Vec::<String>::new());
    assert_eq!(indexed(&index_of(data.path()).await).await, (0, 0));
}

/// What two envelopes of 16 MiB may cost the server (a debug build reads them in
/// a few seconds).
const MAX_ENVELOPE_CPU: Duration = Duration::from_secs(30);

/// An upload in chunks of one byte — cheap to send, about 2 µs of the server's
/// CPU each (a 25 MiB body cost 10 s of a core in a release build) — is refused
/// `400` soon after the free pieces, two at once, and nothing of them is stored;
/// the same upload in Crashpad's chunks (each short field a chunk of its own,
/// then 32 KiB chunks) is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_one_byte_chunks_are_refused_and_crashpads_chunks_are_not() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), &[("MAYDAY_WORKERS", "0")]);
    let form = (0..40).fold(Multipart::new(), |form, i| {
        form.text(&format!("key{i}"), "value")
    });
    let dump = std::fs::read(testdata().join("mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp"));
    let (content_type, body) = form.dump(&dump.unwrap()).finish();
    let content_type = format!("Content-Type: {content_type}");
    let headers = [content_type.as_str()];
    let send = |chunks| send_chunked(&server.url, "/submit", &headers, chunks);
    let before = server.cpu_time();
    let in_bytes = chunked(&body, |_| 1);
    let sends = [send(&in_bytes), send(&in_bytes)];
    for answer in futures::future::join_all(sends).await {
        assert_refused(answer, 400, "malformed_body_pieces");
    }
    let spent = server.cpu_time() - before;
    eprintln!(
        "two bodies of {} bytes in one-byte chunks: {spent:?} of server CPU",
        body.len()
    );
    assert!(spent < MAX_PIECES_CPU, "{spent:?}");
    assert_eq!(stored_files(data.path()), Vec::<String>::new());

    // 300 short chunks (Crashpad sends each field's head, value and end apart).
    let crashpad = chunked(&body, |i| if i < 300 { 8 } else { 32 * 1024 });
    let answer = send(&crashpad).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("CrashID="), "{answer:?}");
    server.kill();
    assert_eq!(indexed(&index_of(data.path()).await).await.0, 1);
}

/// What two bodies of 1.8 MB in one-byte chunks may cost the server refusing
/// them (a debug build): unbounded, they took several seconds of a release build.
const MAX_PIECES_CPU: Duration = Duration::from_secs(10);

/// The public forms (sign-in, deletion) read small bodies: 1 MB sent to them in
/// one-byte chunks is refused 413 (read whole, it cost a release build 1 s of a
/// core each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_forms_refuse_large_bodies() {
    let server = TestServer::start().await;
    let mut body = b"token=".to_vec();
    body.resize(1024 * 1024, b'x');
    let in_bytes = chunked(&body, |_| 1);
    let form = "Content-Type: application/x-www-form-urlencoded";
    for path in ["/login", "/forget"] {
        let answer = send_chunked(&server.url, path, &[form], &in_bytes).await;
        assert_eq!(answer.status, 413, "{path}: {answer:?}");
    }
    server.stop().await;
}

// The server's unit tests build the same dump: one file, two users.
#[path = "../../../server/src/pipeline/shared_stack_dump.rs"]
mod shared_stack_dump;

/// 200 threads walking one 64 KiB stack of return addresses — a 72 KB upload
/// that took the release server to 3.57 GB and 14 s of CPU before its frames
/// were counted — end `failed` unwalked, two at once, the server's peak memory
/// within 128 MB of idle; the stack in one thread is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumps_whose_threads_share_a_stack_fail_unwalked() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), &[]);
    let idle = server.memory().rss;
    let sends = [200, 200, 1].map(|threads| {
        let (content_type, body) = Multipart::new()
            .dump(&shared_stack_dump::shared_stack_dump(threads))
            .finish();
        let url = server.url.clone();
        async move { send_form(&url, &content_type, &body).await }
    });
    let mut ids = Vec::new();
    for answer in futures::future::join_all(sends).await {
        assert_eq!(answer.status, 200, "{answer:?}");
        let id = answer.body.lines().find_map(|l| l.strip_prefix("CrashID="));
        ids.push(id.expect("a receipt").parse::<ReportId>().unwrap());
    }
    let index = index_of(data.path()).await;
    let started = std::time::Instant::now();
    while index.queue_depth().await.unwrap() > 0 {
        assert!(started.elapsed() < ANSWER_WITHIN, "still queued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = server.memory().peak;
    assert!(
        peak < idle + MAX_EXTRA_MEMORY,
        "peak RSS {peak} vs idle {idle}"
    );
    server.kill();
    for (id, refused) in ids.iter().zip([true, true, false]) {
        let row = index.report(id).await.unwrap().expect("a report");
        if refused {
            assert_eq!(row.state, ReportState::Failed, "{row:?}");
            assert!(
                row.failure.as_deref().unwrap().contains("frames"),
                "{row:?}"
            );
        } else {
            assert_eq!(row.state, ReportState::Processed, "{row:?}");
        }
    }
}

/// Below the free-space floor of the store's disk, uploads are answered 503 with
/// Retry-After and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_uploads_are_told_to_come_back() {
    let server = TestServer::with_config(|c| c.limits.min_free_bytes = u64::MAX).await;
    let (content_type, body) = Multipart::new().dump(&dump()).finish();
    let answer = send_form(&server.url, &content_type, &body).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");
    assert_eq!(stored_files(&server.data_dir), Vec::<String>::new());
    assert_eq!(indexed(server.state.index()).await, (0, 0));
    server.stop().await;
}

/// 300 connections opened and left silent (and 21 that stop half-way through
/// their headers, HTTP/1.1 and 1.0, or their request line) do not keep others out: `/healthz` and an upload are served
/// meanwhile, and the silent ones are closed once idle for the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_neither_starve_others_nor_stay_open() {
    let server = TestServer::with_config(|c| {
        c.http.idle_timeout = Duration::from_secs(2);
        c.http.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = host_port(&server.url);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Half-way through the headers; an HTTP/1.0 head (which the server reads
    // itself before hyper does, for Crashpad's chunked HTTP/1.0 uploads); half a
    // request line.
    let halves: [&[u8]; 3] = [
        b"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        b"POST /submit HTTP/1.0\r\nTransfer-Encoding: chunked\r\nX-Slow: ",
        b"POST /submit HTT",
    ];
    for i in 0..21 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(halves[i % 3]).await.unwrap();
        idle.push(stream);
    }

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Accepted (200) with a receipt.
    server.submit(&dump(), &[]).await;

    // Every silent connection is closed by the server (read sees the end).
    let closed = idle.into_iter().map(|mut stream| async move {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(ANSWER_WITHIN, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    });
    let closed = futures::future::join_all(closed).await;
    assert!(closed.iter().all(|c| *c), "every idle connection closed");
    server.stop().await;
}

/// An HTTP/1.0 upload with a chunked body (as Crashpad sends one) whose head
/// ends its lines in bare line feeds, which hyper reads as it reads CRLF: the
/// server finds the head's end where hyper does, not at the first `\r\n\r\n`
/// of the body (a form part's headers end in one), and leaves the body as it
/// came. Accepted whole, and the connection closed after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_chunked_upload_with_bare_line_feeds_is_accepted_whole() {
    let server = TestServer::start().await;
    let (content_type, body) = Multipart::new().dump(&dump()).finish();
    let head = format!(
        "POST /submit HTTP/1.0\nHost: 127.0.0.1\nContent-Type: {content_type}\n\
         Transfer-Encoding: chunked\n\n"
    );
    let chunks = chunked(&body, |_| 4096);
    let answer = exchange(
        &host_port(&server.url),
        at_once(head.as_bytes(), &chunks),
        ANSWER_WITHIN,
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("CrashID="), "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert_eq!(indexed(server.state.index()).await.0, 1);
    server.stop().await;
}

/// HTTP/2 in clear text is not served: a connection opening with its preface
/// and settings gets no HTTP/2 frame back and is closed, and HTTP/1.1 is served
/// next to it. (Served, one connection could carry hundreds of uploads past the
/// connection cap, with no header timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_in_clear_text_is_not_served() {
    let server = TestServer::start().await;
    let mut stream = tokio::net::TcpStream::connect(host_port(&server.url))
        .await
        .unwrap();
    // The client preface, then an empty SETTINGS frame.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    stream.write_all(preface).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection stays open: {got:?}");
    // An HTTP/2 server's first frame is its SETTINGS (type 4).
    assert!(got.len() < 9 || got[3] != 4, "an HTTP/2 frame: {got:?}");

    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// An upload body that trickles in and then stops is answered 408 once idle for
/// the body timeout, and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_answered_408() {
    let server = TestServer::with_config(|c| {
        c.http.body_idle_timeout = Duration::from_secs(2);
    })
    .await;
    let (content_type, body) = Multipart::new().dump(&dump()).finish();
    let head = post_head(
        "/submit",
        &[&format!("Content-Type: {content_type}")],
        body.len() as u64,
    );
    let mut writes = vec![Write {
        after: Duration::ZERO,
        bytes: head,
    }];
    // A few bytes at a time, then nothing more.
    writes.extend(body[..2000].chunks(200).map(|piece| Write {
        after: Duration::from_millis(300),
        bytes: piece.to_vec(),
    }));
    let answer = exchange(&host_port(&server.url), writes, ANSWER_WITHIN)
        .await
        .expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.body.contains("body_timeout"), "{answer:?}");
    assert_eq!(stored_files(&server.data_dir), Vec::<String>::new());
    assert_eq!(indexed(server.state.index()).await, (0, 0));
    server.stop().await;
}

/// Files under `dir` that hold `needle`.
fn holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter(|f| std::fs::read(f).is_ok_and(|bytes| contains(&bytes, needle)))
        .map(|f| f.display().to_string())
        .collect()
}

/// A SIGKILL while 64 uploads (3 MiB each, so many are spooled to disk) are under
/// way: after a restart every acknowledged report is there, the spool is empty,
/// and the planted text of the dumps is in no file under the data dir or the
/// server's `$TMPDIR`. Unacknowledged uploads left no trace anyone can read: every
/// data key belongs to a recorded report, every recorded report has its blobs and
/// its job, and a blob of no recorded report has no key anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_64_uploads_keeps_every_acknowledged_report_and_no_plain_spool() {
    const PLANTED: &[u8] = b"planted-unscrubbed-marker@example.org 9f2c71e0";
    let data = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tmp_dir = tmp.path().to_str().unwrap().to_owned();
    let env = [("MAYDAY_WORKERS", "0"), ("TMPDIR", tmp_dir.as_str())];
    let token = mayday_tests::server::cli_token(data.path(), "developer");
    let server = ServerProcess::start(data.path(), &env);

    let mut planted = dump();
    let len = planted.len();
    planted.resize(3 * 1024 * 1024, 0);
    for at in (len..planted.len() - PLANTED.len()).step_by(256 * 1024) {
        planted[at..at + PLANTED.len()].copy_from_slice(PLANTED);
    }
    let (content_type, body) = Multipart::new().dump(&planted).finish();
    let (results, mut received) = tokio::sync::mpsc::unbounded_channel();
    let client = reqwest::Client::new();
    for _ in 0..64 {
        let request = client
            .post(format!("{}/submit", server.url))
            .header("Content-Type", content_type.clone())
            .body(body.clone());
        let results = results.clone();
        tokio::spawn(async move {
            let receipt = match request.send().await {
                Ok(response) if response.status() == 200 => response
                    .text()
                    .await
                    .ok()
                    .and_then(|t| mayday_report::upload::SubmitReceipt::parse_text(&t).ok()),
                _ => None,
            };
            let _ = results.send(receipt.map(|r| r.crash_id));
        });
    }
    drop(results);
    let mut acknowledged = Vec::new();
    let mut answered = 0;
    while acknowledged.len() < 8 {
        let Some(result) = received.recv().await else {
            break;
        };
        answered += 1;
        acknowledged.extend(result);
    }
    server.kill();
    while let Some(result) = received.recv().await {
        answered += 1;
        acknowledged.extend(result);
    }
    assert_eq!(answered, 64);
    assert!(acknowledged.len() >= 8, "{}", acknowledged.len());

    let server = ServerProcess::start(data.path(), &env);
    let client = reqwest::Client::new();
    for id in &acknowledged {
        let response = client
            .get(format!("{}/api/v1/reports/{id}", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged {id} is there");
    }
    let spool = data.path().join("spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert_eq!(holding(data.path(), PLANTED), Vec::<String>::new());
    assert_eq!(holding(tmp.path(), PLANTED), Vec::<String>::new());
    drop(server);

    let index = index_of(data.path()).await;
    let reports = index
        .report_ids_received_before(i64::MAX, 1000)
        .await
        .unwrap();
    let recorded: BTreeSet<String> = reports.iter().map(ToString::to_string).collect();
    let keyed: BTreeSet<String> = index
        .report_key_ids()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // A data key only beside its report's row: whatever unacknowledged uploads
    // stored (sealed blobs, a store's temporary file of one) has no key
    // anywhere, and nothing can open it.
    assert_eq!(keyed, recorded, "a data key for every report, and no other");
    for id in &acknowledged {
        assert!(recorded.contains(id), "acknowledged {id} is recorded");
    }
    // No worker ran: every recorded report still has its one job.
    assert_eq!(index.queue_depth().await.unwrap(), reports.len() as i64);
    let store = data.path().join("store");
    let mut blobs = BTreeSet::new();
    for id in &reports {
        let row = index.report(id).await.unwrap().unwrap();
        for key in [&row.raw_key, &row.meta_key] {
            assert!(store.join(key).is_file(), "{id} has its blob {key}");
            blobs.insert(store.join(key).display().to_string());
        }
    }
    // And the restart, the only server on its data dir, removed what the
    // unacknowledged uploads had stored: every file in the store is a recorded
    // report's.
    let files: BTreeSet<String> = walk(&store)
        .into_iter()
        .map(|f| f.display().to_string())
        .collect();
    assert_eq!(
        files.difference(&blobs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "no trace of unacknowledged uploads"
    );
    index.close().await;
}

/// The object store stops answering mid-run: uploads get 503 with Retry-After and
/// nothing of them is recorded; the Mayday client keeps its reports while the
/// store is down and, once it is back, each of them arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_object_store_is_down_uploads_wait_and_arrive_once_it_is_back() {
    let mut s3 = S3Server::start().await;
    let server = TestServer::with_config(|c| {
        c.store_url = Some(s3.store_url());
        c.store_options = s3.store_options();
        c.pipeline.workers = 0;
    })
    .await;
    let (content_type, body) = Multipart::new().dump(&dump()).finish();
    let before = send_form(&server.url, &content_type, &body).await;
    assert_eq!(before.status, 200, "{before:?}");

    s3.stop().await;
    let down = send_form(&server.url, &content_type, &body).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(down.header("retry-after").is_some(), "{down:?}");
    assert_eq!(indexed(server.state.index()).await, (1, 1));

    let client_dir = tempfile::tempdir().unwrap();
    let crashy = |arg: &str| {
        let mut command = std::process::Command::new(mayday_tests::fixtures::example("crashy"));
        command
            .arg(arg)
            .env("MAYDAY_DATA_DIR", client_dir.path())
            .env("MAYDAY_ENDPOINT", &server.url)
            .env("MAYDAY_CONSENT", "always")
            .env("RUST_BACKTRACE", "0")
            .stdin(std::process::Stdio::null());
        async move {
            let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap();
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    crashy("segv").await;
    crashy("abort").await;
    let while_down = crashy("send").await;
    assert!(!while_down.contains("sent "), "{while_down}");
    assert!(while_down.contains("pending 2"), "{while_down}");
    assert_eq!(indexed(server.state.index()).await, (1, 1));

    s3.resume().await;
    let back = crashy("send").await;
    let sent: Vec<&str> = back
        .lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .collect();
    assert_eq!(sent.len(), 2, "{back}");
    let again = crashy("send").await;
    assert!(!again.contains("sent "), "{again}");
    for id in sent {
        let id: mayday_server::report_id::ReportId = id.parse().unwrap();
        assert!(server.state.index().report(&id).await.unwrap().is_some());
    }
    assert_eq!(indexed(server.state.index()).await, (3, 3));
    server.stop().await;
}

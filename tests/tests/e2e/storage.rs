//! One storage conformance suite, run against every kind of store Mayday opens:
//! `memory://`, `file://<dir>` and a real S3 server (s3s-fs, SigV4 checked). For S3
//! an independent client (rust-s3) checks that what the store says is really in the
//! bucket, and that deleted blobs are really gone.

use std::collections::BTreeMap;

use bytes::Bytes;
use mayday_server::crypto::DataKey;
use mayday_server::index::Role;
use mayday_server::report_id::ReportId;
use mayday_server::storage::Storage;
use mayday_server::vault::{self, get_sealed, put_sealed};
use mayday_tests::scan::walk;
use mayday_tests::server::TestServer;
use mayday_tests::services::{Postgres, S3Server};
use mayday_tests::testdata;
use object_store::path::Path;
use time::macros::date;

/// Keys of every blob in the store, as strings, sorted.
async fn keys(storage: &Storage, prefix: Option<&str>) -> Vec<String> {
    let prefix = prefix.map(Path::from);
    let mut keys: Vec<String> = storage
        .list(prefix.as_ref())
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.to_string())
        .collect();
    keys.sort();
    keys
}

/// A blob of `len` bytes that differs at every position from a shifted copy.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

/// Puts `bytes` at `key` and reads back the same bytes.
async fn put_and_read_back(storage: &Storage, key: &Path, bytes: &'static [u8]) {
    storage
        .put(key, Bytes::from_static(bytes))
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
    let read = storage.get(key).await.expect("get");
    assert_eq!(read.as_deref(), Some(bytes), "{key}");
}

/// What every store must do. Starts from an empty store; leaves behind only the
/// keys it returns (so a caller can check them through another client).
async fn conformance(storage: Storage) -> Leftovers {
    assert_eq!(
        keys(&storage, None).await,
        Vec::<String>::new(),
        "fresh store"
    );

    // Round trip.
    let key = Path::from("conformance/hello.txt");
    put_and_read_back(&storage, &key, b"hello, store").await;

    // A missing key is None, not an error.
    for missing in ["conformance/missing", "nowhere/at/all.json"] {
        let got = storage.get(&Path::from(missing)).await;
        assert_eq!(got.expect("get missing"), None, "{missing}");
    }

    // Overwrite: the second put wins, whole (a shorter blob leaves no tail behind).
    put_and_read_back(&storage, &key, b"bye").await;

    // An empty blob is a blob.
    let empty = Path::from("conformance/empty");
    put_and_read_back(&storage, &empty, b"").await;

    // Delete, then delete again, then delete something that never was: all fine.
    storage.delete(&key).await.expect("delete");
    assert_eq!(storage.get(&key).await.expect("get deleted"), None);
    storage.delete(&key).await.expect("delete again");
    storage
        .delete(&Path::from("never/was/here.dmp"))
        .await
        .expect("delete of a key that never existed");
    storage.delete(&empty).await.expect("delete empty");
    assert_eq!(keys(&storage, None).await, Vec::<String>::new());

    // The layout helpers' keys, for one report received on one day.
    let id = ReportId::new();
    let received = date!(2026 - 11 - 22);
    let dump_key = vault::raw_dump_key(received, &id);
    let meta_key = vault::raw_meta_key(received, &id);
    let processed_key = vault::processed_key(&id);
    assert_eq!(dump_key.to_string(), format!("raw/2026-11-22/{id}.dmp"));
    assert_eq!(meta_key.to_string(), format!("raw/2026-11-22/{id}.json"));
    assert_eq!(processed_key.to_string(), format!("reports/{id}.json"));
    assert!(id.to_string().starts_with("bp-"), "{id}");

    // A large blob (several MiB), byte for byte.
    let dump = pattern(6 * 1024 * 1024 + 123, 0x5a);
    storage
        .put(&dump_key, dump.clone())
        .await
        .expect("put dump");
    let meta = Bytes::from(format!(
        r#"{{"id":"{id}","annotations":{{"prod":"crashy"}}}}"#
    ));
    storage
        .put(&meta_key, meta.clone())
        .await
        .expect("put meta");
    let report = Bytes::from_static(br#"{"state":"processed"}"#);
    storage
        .put(&processed_key, report.clone())
        .await
        .expect("put report");
    let got = storage
        .get(&dump_key)
        .await
        .expect("get dump")
        .expect("dump stored");
    assert_eq!(got.len(), dump.len());
    assert!(got == dump, "the large blob came back different");
    assert_eq!(storage.get(&meta_key).await.expect("get meta"), Some(meta));

    // Listing by prefix is by whole path segments: `raw` does not list `rawx/…`.
    let other_day = ReportId::new();
    let other_day_key = vault::raw_dump_key(date!(2026 - 11 - 21), &other_day);
    storage
        .put(&other_day_key, Bytes::from_static(b"MDMP"))
        .await
        .expect("put other day");
    storage
        .put(&Path::from("rawx/decoy"), Bytes::from_static(b"x"))
        .await
        .expect("put decoy");
    assert_eq!(
        keys(&storage, Some("raw")).await,
        vec![
            other_day_key.to_string(),
            dump_key.to_string(),
            meta_key.to_string()
        ]
    );
    assert_eq!(
        keys(&storage, Some("raw/2026-11-22")).await,
        vec![dump_key.to_string(), meta_key.to_string()]
    );
    assert_eq!(
        keys(&storage, Some("reports")).await,
        vec![processed_key.to_string()]
    );
    assert_eq!(keys(&storage, Some("symbols")).await, Vec::<String>::new());
    assert_eq!(keys(&storage, None).await.len(), 5);

    // Delete one report's blobs: the other day's dump and the decoy stay.
    for key in [&dump_key, &meta_key, &processed_key] {
        storage.delete(key).await.expect("delete report blob");
        assert_eq!(storage.get(key).await.expect("get deleted"), None, "{key}");
    }
    assert_eq!(
        keys(&storage, None).await,
        vec![other_day_key.to_string(), "rawx/decoy".to_owned()]
    );

    // Sealed blobs: what is stored is ciphertext bound to its key; only the right
    // data key opens it, and only at the key it was sealed for.
    let secret = b"USER=alice HOME=/home/alice token=ghp_0123456789abcdef";
    let sealed_key = vault::raw_meta_key(date!(2026 - 11 - 20), &ReportId::new());
    let data_key = DataKey::generate();
    put_sealed(&storage, &sealed_key, &data_key, secret)
        .await
        .expect("put sealed");
    assert_eq!(
        get_sealed(&storage, &sealed_key, &data_key)
            .await
            .expect("get sealed")
            .as_deref(),
        Some(&secret[..])
    );
    let sealed = storage
        .get(&sealed_key)
        .await
        .expect("get raw")
        .expect("sealed blob stored");
    assert!(
        !sealed.windows(5).any(|w| w == b"alice"),
        "the stored blob holds plain text"
    );
    let wrong_key = get_sealed(&storage, &sealed_key, &DataKey::generate())
        .await
        .expect_err("another data key must not open the blob");
    assert_ne!(wrong_key.name(), "store", "{wrong_key}");
    let moved = Path::from("raw/2026-11-20/moved.json");
    storage
        .put(&moved, sealed.clone())
        .await
        .expect("put moved");
    get_sealed(&storage, &moved, &data_key)
        .await
        .expect_err("a sealed blob copied to another key must not open");
    storage.delete(&moved).await.expect("delete moved");
    assert_eq!(
        get_sealed(&storage, &Path::from("raw/2026-11-20/none.json"), &data_key)
            .await
            .expect("get sealed missing"),
        None
    );

    // A blob written a piece at a time (a large upload's dump, as it is
    // scrubbed; a multipart upload on S3): at its key whole once finished,
    // nowhere when given up. Off the async threads, as uploads write it.
    let streamed_key = Path::from("raw/2026-11-21/streamed.dmp");
    let given_up_key = Path::from("raw/2026-11-21/given-up.dmp");
    let streamed = pattern((11 << 20) + 5, 9);
    for (key, finish) in [(&streamed_key, true), (&given_up_key, false)] {
        let mut put = storage.start_put(key).await.expect("start streamed put");
        let bytes = streamed.clone();
        tokio::task::spawn_blocking(move || {
            for piece in bytes.chunks(1 << 20) {
                put.write(piece).expect("write streamed put");
            }
            if finish {
                put.finish().expect("finish streamed put");
            }
        })
        .await
        .unwrap();
    }
    let read = storage.get(&streamed_key).await.expect("get streamed");
    assert!(
        read.is_some_and(|b| b == streamed),
        "streamed blob read back"
    );
    assert_eq!(
        storage.get(&given_up_key).await.expect("get given up"),
        None
    );
    storage
        .delete(&streamed_key)
        .await
        .expect("delete streamed");

    // The health probe writes and the store still answers afterwards.
    storage.check().await.expect("health check");
    storage
        .delete(&Path::from("health/probe"))
        .await
        .expect("delete probe");

    Leftovers {
        deleted: vec![
            dump_key.to_string(),
            meta_key.to_string(),
            processed_key.to_string(),
            "conformance/hello.txt".to_owned(),
            streamed_key.to_string(),
        ],
        kept: vec![
            (sealed_key.to_string(), sealed),
            (other_day_key.to_string(), Bytes::from_static(b"MDMP")),
            ("rawx/decoy".to_owned(), Bytes::from_static(b"x")),
        ],
    }
}

/// What the suite left in the store, for checks through another client.
struct Leftovers {
    /// Keys that were stored and then deleted.
    deleted: Vec<String>,
    /// Keys that are still stored, with their contents.
    kept: Vec<(String, Bytes)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    let storage = Storage::open("memory://", &BTreeMap::new()).expect("open memory://");
    conformance(storage).await;
}

#[tokio::test]
async fn file_store_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("store");
    let url = format!("file://{}", root.display());
    let storage = Storage::open(&url, &BTreeMap::new()).expect("open file://");
    let left = conformance(storage).await;

    // The files themselves, looked at without object_store.
    for key in &left.deleted {
        assert!(!root.join(key).exists(), "{key} is still on disk");
    }
    for (key, bytes) in &left.kept {
        assert_eq!(
            std::fs::read(root.join(key)).expect("kept file on disk"),
            bytes.as_ref()
        );
    }
}

#[tokio::test]
async fn file_store_reopened_sees_the_same_blobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", dir.path().join("store").display());
    let key = vault::processed_key(&ReportId::new());
    let first = Storage::open(&url, &BTreeMap::new()).expect("open");
    first
        .put(&key, Bytes::from_static(b"{}"))
        .await
        .expect("put");
    drop(first);
    let second = Storage::open(&url, &BTreeMap::new()).expect("reopen");
    assert_eq!(
        second.get(&key).await.expect("get").as_deref(),
        Some(&b"{}"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_conforms() {
    let s3 = S3Server::start().await;
    let storage = Storage::open(&s3.store_url(), &s3.store_options()).expect("open s3://");
    let left = conformance(storage).await;

    // An independent client (rust-s3) sees exactly what the store says is there.
    let bucket = s3.independent_client();
    for key in &left.deleted {
        let response = bucket.get_object(key).await.expect("rust-s3 get");
        assert_eq!(
            response.status_code(),
            404,
            "{key} is still in the bucket after delete"
        );
        assert!(
            !s3.root().join(s3.bucket()).join(key).exists(),
            "{key} is still on the S3 server's disk"
        );
    }
    for (key, bytes) in &left.kept {
        let response = bucket.get_object(key).await.expect("rust-s3 get");
        assert_eq!(response.status_code(), 200, "{key}");
        assert_eq!(response.as_slice(), bytes.as_ref(), "{key}");
    }
    let listed = s3.keys("").await;
    let mut expected: Vec<String> = left.kept.iter().map(|(k, _)| k.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_under_a_prefix_conforms_and_stays_under_it() {
    let s3 = S3Server::start().await;
    let url = format!("{}/tenant-a/mayday", s3.store_url());
    let storage = Storage::open(&url, &s3.store_options()).expect("open s3://bucket/prefix");
    let left = conformance(storage).await;

    // In the bucket, everything is below the prefix.
    let listed = s3.keys("").await;
    let mut expected: Vec<String> = left
        .kept
        .iter()
        .map(|(k, _)| format!("tenant-a/mayday/{k}"))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_writes_are_visible_to_another_client_and_back() {
    let s3 = S3Server::start().await;
    let storage = Storage::open(&s3.store_url(), &s3.store_options()).expect("open s3://");
    let bucket = s3.independent_client();

    // Written by Mayday, read by rust-s3.
    let key = vault::processed_key(&ReportId::new());
    storage
        .put(&key, Bytes::from_static(b"{\"a\":1}"))
        .await
        .expect("put");
    let response = bucket.get_object(key.as_ref()).await.expect("rust-s3 get");
    assert_eq!(response.status_code(), 200);
    assert_eq!(response.as_slice(), b"{\"a\":1}");

    // Written by rust-s3 (as another Mayday process would), read and deleted by Mayday.
    let other = vault::raw_dump_key(date!(2026 - 01 - 02), &ReportId::new());
    let response = bucket
        .put_object(other.as_ref(), b"MDMP other writer")
        .await
        .expect("rust-s3 put");
    assert_eq!(response.status_code(), 200);
    assert_eq!(
        storage.get(&other).await.expect("get").as_deref(),
        Some(&b"MDMP other writer"[..])
    );
    storage.delete(&other).await.expect("delete");
    let response = bucket
        .get_object(other.as_ref())
        .await
        .expect("rust-s3 get");
    assert_eq!(response.status_code(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_checks_signatures() {
    let s3 = S3Server::start().await;
    let mut options = s3.store_options();
    options.insert("secret_access_key".into(), "not-the-secret".into());
    let storage = Storage::open(&s3.store_url(), &options).expect("open s3://");
    let key = Path::from("forged/put");
    let error = storage
        .put(&key, Bytes::from_static(b"forged"))
        .await
        .expect_err("a put signed with the wrong secret must fail");
    assert_eq!(error.name(), "store", "{error}");
    assert!(
        !s3.root().join(s3.bucket()).join("forged/put").exists(),
        "the forged put reached the disk"
    );

    // The right key still works against the same server.
    let storage = Storage::open(&s3.store_url(), &s3.store_options()).expect("open s3://");
    storage
        .put(&key, Bytes::from_static(b"signed"))
        .await
        .expect("put with the right key");
    assert!(s3.root().join(s3.bucket()).join("forged/put").exists());
}

#[tokio::test]
async fn unknown_store_urls_are_refused() {
    for url in ["ftp://example/x", "s3://", "not a url"] {
        let error = Storage::open(url, &BTreeMap::new()).expect_err(url);
        assert_eq!(error.name(), "invalid_url", "{url}: {error}");
    }
}

/// The whole server on the production setup: blobs in a real S3 bucket, the index
/// in a real PostgreSQL. A report goes in over HTTP, is processed, and is then in
/// the bucket (seen by an independent client) and in the database — and nothing of
/// it is in the local data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_on_s3_and_postgres_keeps_reports_in_the_bucket() {
    let s3 = S3Server::start().await;
    let postgres = Postgres::shared();
    let database_url = postgres.database("server_on_s3");
    let server = TestServer::with_config(|config| {
        config.store_url = Some(s3.store_url());
        config.store_options = s3.store_options();
        config.database_url = Some(database_url.clone());
    })
    .await;
    let token = server.token(Role::Developer).await;

    let dump = testdata::read("electron-nosyms/electron-linux.dmp");
    let fields = [("prod", "OnS3"), ("ver", "1.0")];
    let (id, report) = server.submit_processed(&token, &dump, &fields).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["id"], id.as_str());

    // In the bucket, through rust-s3: the raw dump, its metadata, the report.
    let keys = s3.keys("").await;
    let ends = |suffix: &str| keys.iter().any(|k| k.ends_with(&format!("{id}{suffix}")));
    assert!(
        keys.iter()
            .any(|k| k.starts_with("raw/") && k.ends_with(&format!("{id}.dmp"))),
        "{keys:?}"
    );
    assert!(ends(".json"), "{keys:?}");
    assert!(keys.contains(&format!("reports/{id}.json")), "{keys:?}");

    // The minidump reads back through the API from S3.
    let (status, minidump) = server
        .get_bytes(&format!("/api/v1/reports/{id}/minidump"), &token)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(&minidump[..4], b"MDMP");

    // In PostgreSQL, through psql: one report row.
    assert_eq!(
        postgres.psql(&database_url, "SELECT count(*) FROM reports"),
        "1"
    );

    // Nothing of the report in the local data directory.
    let bare = id.trim_start_matches("bp-");
    for file in walk(&server.data_dir) {
        assert!(
            !file.to_string_lossy().contains(bare),
            "{} is a local copy",
            file.display()
        );
    }
    server.stop().await;
}

/// An upload is stored as one raw object, the dump with its metadata; a report
/// stored before as two (the metadata apart at `raw/<date>/<id>.json`) is still
/// processed with its annotations, and both dumps download whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_stored_as_one_raw_object_or_as_two_are_both_read() {
    use mayday_server::index::{NewReport, now_ms};
    use mayday_server::vault::RawMeta;

    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
    let dump = testdata::read("symbolic-win-x86-crash/windows-mini.dmp");
    let vault = server.state.vault();

    let id = ReportId::new();
    let day = time::OffsetDateTime::now_utc().date();
    let (raw_key, meta_key) = (vault::raw_dump_key(day, &id), vault::raw_meta_key(day, &id));
    let (data_key, wrapped) = vault.new_key(&id);
    let received_at = now_ms();
    let meta = RawMeta {
        id: id.to_string(),
        received_at,
        annotations: BTreeMap::from([("prod".to_owned(), "Earlier".to_owned())]),
        dropped_attachments: Vec::new(),
        text_attachments: Vec::new(),
        scrub: Default::default(),
    };
    vault.put(&raw_key, &data_key, &dump).await.unwrap();
    let meta_json = serde_json::to_vec(&meta).unwrap();
    vault.put(&meta_key, &data_key, &meta_json).await.unwrap();
    // Not shared with `queue` in pipeline/worker.rs: a server unit test storing one blob.
    server
        .state
        .index()
        .insert_report_with_job(&NewReport {
            id,
            received_at,
            product: None,
            version: None,
            deletion_token_hash: "ab".repeat(32),
            raw_key: raw_key.to_string(),
            meta_key: meta_key.to_string(),
            data_key: wrapped,
            stack_key: None,
        })
        .await
        .unwrap();
    server.state.wake_workers();
    let earlier = server.wait_processed(&token, &id.to_string()).await;
    assert_eq!(earlier["state"], "processed", "{earlier}");
    assert_eq!(earlier["annotations"]["prod"], "Earlier", "{earlier}");

    let (now, report) = server
        .submit_processed(&token, &dump, &[("prod", "Now")])
        .await;
    assert_eq!(report["annotations"]["prod"], "Now", "{report}");
    let mut stored = server.report_keys(&now).await;
    stored.sort();
    assert_eq!(
        stored.len(),
        2,
        "one raw object, one processed report: {stored:?}"
    );
    assert!(stored[0].starts_with("raw/") && stored[0].ends_with(&format!("{now}.dmp")));
    assert_eq!(stored[1], format!("reports/{now}.json"));
    assert!(
        server
            .report_keys(&id.to_string())
            .await
            .contains(&meta_key.to_string())
    );

    for id in [id.to_string(), now] {
        let (status, bytes) = server
            .get_bytes(&format!("/api/v1/reports/{id}/minidump"), &token)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{id}");
        assert_eq!(&bytes[..4], b"MDMP", "{id}");
        assert_eq!(bytes.len(), dump.len(), "{id}");
    }
    server.stop().await;
}

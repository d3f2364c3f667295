//! Nothing that identifies a person or machine is stored or logged: planted secrets
//! sent raw by a real crashing process, and the personal details in the shared test
//! dumps, are gone from every byte the server keeps.

use std::path::Path;
use std::process::{Command, Stdio};

use mayday_report::scrub::TextAttachmentRule;
use mayday_server::index::Role;
use mayday_tests::api::{receipt, submit, wait_processed};
use mayday_tests::crashpad::{Annotations, with_annotations};
use mayday_tests::crashy::{PLANTED_HOST, PLANTED_SECRET, PLANTED_USER, plant};
use mayday_tests::fixtures::{example, read_json};
use mayday_tests::scan::{contains, traces, walk};
use mayday_tests::server::{ServerProcess, TestServer, cli_token};
use mayday_tests::testdata::{self, cases};
use mayday_tests::upload::Multipart;
use serde_json::Value;

/// Every (file, needle) pair where a needle, in ASCII or in UTF-16LE, occurs in the
/// name or the contents of a file under `dir` (the object store and the index,
/// SQLite's WAL and shared memory included).
fn leaks(dir: &Path, needles: &[String]) -> Vec<(String, String)> {
    let encoded: Vec<Vec<u8>> = needles
        .iter()
        .flat_map(|needle| {
            let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
            [needle.as_bytes().to_vec(), utf16]
        })
        .collect();
    traces(dir, &encoded)
}

/// A real process with a secret in its environment, a made-up user name in `HOME`
/// and a made-up host name crashes; its dump is sent raw (client scrubbing off, as a
/// Crashpad client would) with an e-mail address, a token and an IP address in the
/// annotations. After processing, none of them is in any byte under the data dir or
/// in the server's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_never_reach_storage_or_logs() {
    const SECRET: &str = PLANTED_SECRET;
    const USER: &str = PLANTED_USER;
    const HOST: &str = PLANTED_HOST;
    const EMAIL: &str = "zorblax.q@example.org";
    const TOKEN: &str = "ghp_PlantedToken0123456789abcdef";
    const IP: &str = "203.0.113.77";

    let client_dir = tempfile::tempdir().unwrap();
    let crashed = tokio::task::spawn_blocking({
        let dir = client_dir.path().to_owned();
        move || {
            let mut command = Command::new(example("crashy"));
            command
                .arg("segv")
                .env("MAYDAY_DATA_DIR", dir.join("data"))
                // No TTY and `ask`: the report stays pending for us to send raw.
                .env("MAYDAY_CONSENT", "ask")
                .stdin(Stdio::null());
            plant(&mut command, &dir);
            command.output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!crashed.status.success());
    let pending = client_dir.path().join("data/pending");
    let dump_path = walk(&pending)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dmp"))
        .expect("a pending dump");
    let dump = std::fs::read(&dump_path).unwrap();
    // The raw dump really carries what we planted, so the test can fail.
    for planted in [SECRET, USER, HOST] {
        assert!(
            contains(&dump, planted.as_bytes()),
            "{planted} in the raw dump"
        );
    }

    let data = tempfile::tempdir().unwrap();
    let token = cli_token(data.path(), "developer");
    let server = ServerProcess::start(data.path(), &[]);
    let id = submit(
        &server.url,
        &dump,
        &[
            ("prod", "Crashy"),
            ("ver", "1.0"),
            ("Email", EMAIL),
            ("contact", &format!("write to {EMAIL}")),
            ("auth_token", TOKEN),
            ("note", &format!("Authorization: Bearer {TOKEN}")),
            ("peer", IP),
            ("guid", "6c9a3b1e-0b8f-4a55-9d3e-2f1c0a7b5e21"),
        ],
    )
    .await
    .id;
    let report = wait_processed(&server.url, &token, &id).await;
    assert_eq!(report["state"], "processed", "{report}");
    // Reading it back through the API shows no secret either.
    let text = report.to_string();
    for needle in [SECRET, USER, HOST, EMAIL, TOKEN, IP] {
        assert!(!text.contains(needle), "{needle} in the API's report");
    }
    assert!(
        report["scrub"]["removed"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    );
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains(&id), "the log is captured");
    drop(server);
    for needle in [SECRET, USER, HOST, EMAIL, TOKEN, IP, "127.0.0.1:"] {
        let in_log = log.lines().any(|l| {
            // The server's own address, where it listens, is no one's.
            l.contains(needle)
                && !l.contains("\"listening\"")
                && !l.starts_with("Mayday is listening on")
        });
        assert!(!in_log, "{needle} in the server's log");
    }

    let needles: Vec<String> = [SECRET, USER, HOST, EMAIL, TOKEN, IP, "6c9a3b1e-0b8f-4a55"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = leaks(data.path(), &needles);
    assert!(found.is_empty(), "leaked into storage: {found:?}");
}

/// The user names, host names and SSH values in the shared test dumps
/// (system-details.json) are gone from storage once they went through the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_details_of_the_shared_dumps_are_gone_from_storage() {
    let details = read_json(&testdata::dir().join("system-details.json"));
    let data = tempfile::tempdir().unwrap();
    let token = cli_token(data.path(), "developer");
    let server = ServerProcess::start(data.path(), &[]);
    let mut needles = std::collections::BTreeSet::new();
    let mut ids = Vec::new();
    for case in cases() {
        let facts = &details["dumps"][case.path()];
        assert!(facts.is_object(), "{} has its system details", case.path());
        let dump = case.bytes();
        for dir in facts["user_dirs_in_module_paths"].as_array().unwrap() {
            let dir = dir.as_str().unwrap();
            // /home/<u>, /Users/<u>, C:\Users\<u>, /usr/local/google/home/<u>; app
            // data directories (/data/data/<package>) name no person.
            if !dir.starts_with("/data/") {
                needles.insert(dir.rsplit(['/', '\\']).next().unwrap().to_owned());
            }
        }
        let env = facts["env_var_strings_anywhere_in_dump"]
            .as_object()
            .unwrap();
        for key in ["USER", "LOGNAME", "USERNAME", "COMPUTERNAME", "HOSTNAME"] {
            for value in env.get(key).and_then(Value::as_array).into_iter().flatten() {
                needles.insert(value.as_str().unwrap().to_owned());
            }
        }
        // SSH values are not reproduced in system-details.json: read them from the
        // raw dump.
        for key in [
            "SSH_CLIENT=",
            "SSH_CONNECTION=",
            "SSH_AUTH_SOCK=",
            "SSH_TTY=",
        ] {
            for start in dump
                .windows(key.len())
                .enumerate()
                .filter(|(_, w)| *w == key.as_bytes())
                .map(|(i, _)| i + key.len())
            {
                let value: Vec<u8> = dump[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_graphic() || **b == b' ')
                    .copied()
                    .collect();
                if value.len() >= 8 {
                    needles.insert(String::from_utf8(value).unwrap());
                }
            }
        }
        ids.push(submit(&server.url, &dump, &[]).await.id);
    }
    assert_eq!(
        ids.len(),
        details["dumps"].as_object().unwrap().len(),
        "every dump with system details is sent"
    );
    for id in &ids {
        let report = wait_processed(&server.url, &token, id).await;
        assert_eq!(report["state"], "processed", "{report}");
    }
    drop(server);
    needles.remove("root");
    assert!(
        needles.contains("gsvelto") && needles.contains("zequanwu") && needles.contains("cobalt")
    );
    assert!(
        needles.iter().any(|n| n.contains(' ')),
        "SSH values were found: {needles:?}"
    );
    let needles: Vec<String> = needles.into_iter().collect();
    let found = leaks(data.path(), &needles);
    assert!(found.is_empty(), "leaked into storage: {found:?}");
}

/// The Linux memory maps (the path of every file the process mapped) are dropped
/// when a dump is scrubbed: each shared test dump that has them is stored without
/// them — not listed in its directory, no line of them in any of its blobs,
/// opened — and processed all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_maps_of_linux_dumps_are_not_stored() {
    const LINUX_MAPS: u32 = minidump::format::MINIDUMP_STREAM_TYPE::LinuxMaps as u32;
    // In each of these dumps once: a line of its maps.
    const MAPS_LINE: &[u8] = b"[vdso]";
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let mut sent = 0;
    for case in cases() {
        let dump = case.bytes();
        let has_maps = minidump::Minidump::read(&dump[..])
            .is_ok_and(|md| md.get_raw_stream(LINUX_MAPS).is_ok());
        if !has_maps {
            continue;
        }
        assert!(contains(&dump, MAPS_LINE), "{}", case.path());
        let id = server.submit(&dump, &[]).await.id;
        let report = server.wait_processed(&token, &id).await;
        assert_eq!(report["state"], "processed", "{report}");
        let removed = &report["scrub"]["removed"];
        assert_eq!(
            removed["linux_maps_stream"],
            1,
            "{}: {removed}",
            case.path()
        );
        let blobs = server.opened_report_blobs(&id).await;
        assert!(blobs.iter().any(|(key, _)| key.ends_with(".dmp")));
        for (key, plain) in blobs {
            assert!(
                !contains(&plain, MAPS_LINE),
                "{} maps in {key}",
                case.path()
            );
            if key.ends_with(".dmp") {
                let stored = minidump::Minidump::read(&plain[..]).expect("the stored dump reads");
                assert!(
                    stored.get_raw_stream(LINUX_MAPS).is_err(),
                    "{key} lists maps"
                );
            }
        }
        sent += 1;
    }
    // Firefox on Linux and Android, Electron on Linux, the two linux-mini dumps.
    assert_eq!(sent, 5, "the shared dumps with memory maps");
}

/// Keys the rules drop — a secret-looking `api_token`, the identity field `Email` —
/// set by the app as Crashpad annotations in a real Crashpad dump (process-wide,
/// a module's simple annotations, a module's annotation object) and sent as form
/// fields too, as Crashpad's handler sends them: neither key nor value is in the
/// processed report, the stored metadata or the stored dump, and the other
/// annotations are still read from the dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_annotation_keys_are_gone_from_the_report_the_metadata_and_the_dump() {
    const TOKEN: &str = "tok-4f1e9b27c3d8a605";
    const EMAIL: &str = "planted.person@example.org";
    const OBJECT_TOKEN: &str = "obj-88a1c0e4d7f2b913";
    let original =
        testdata::read("crashpad-iossim-x64-annotations/minidump_crashpad_annotation.dmp");
    let dump = with_annotations(
        &original,
        Annotations {
            simple: &[("api_token", TOKEN), ("Email", EMAIL)],
            module_simple: &[("Email", EMAIL)],
            module_objects: &[("api_token", OBJECT_TOKEN)],
        },
    );
    let needles = ["api_token", "Email", TOKEN, EMAIL, OBJECT_TOKEN];
    for needle in needles {
        assert!(!contains(&original, needle.as_bytes()), "{needle} before");
        assert!(contains(&dump, needle.as_bytes()), "{needle} planted");
    }

    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
    let (id, report) = server
        .submit_processed(
            &token,
            &dump,
            &[("prod", "xcuitest"), ("api_token", TOKEN), ("Email", EMAIL)],
        )
        .await;
    assert_eq!(report["state"], "processed", "{report}");
    let annotations = report["annotations"].as_object().unwrap();
    assert_eq!(annotations["plat"], "iOS");
    assert_eq!(annotations["exceptionName"], "NSRangeException");
    assert!(!annotations.contains_key("api_token") && !annotations.contains_key("Email"));
    let text = report.to_string();
    for needle in needles {
        assert!(!text.contains(needle), "{needle} in the API's report");
    }

    // Every blob the report has in the store, opened: the dump with its
    // metadata, and the processed report.
    server.assert_blobs_free_of(&id, &needles).await;
    server.stop().await;
}

/// A text attachment a rule lists (`[[scrub.text_attachments]]`) is kept scrubbed:
/// the app's log sent beside the dump loses its e-mail address, token, user name
/// and IP address before anything is stored; the processed report shows it to
/// developers (support sees metadata only); an attachment no rule lists, or a
/// listed one that is not text, is dropped unread; deleting the report with its
/// deletion token deletes it with every other blob of the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_text_attachment_is_kept_scrubbed_and_deleted_with_the_report() {
    const EMAIL: &str = "log.person@example.org";
    const TOKEN: &str = "tok-9c3e7a10f45b2d86";
    const SCREENSHOT: &str = "screenshot-bytes-3f8a2c71";
    const CORE: &str = "core-bytes-5e0d91b4";
    let server = TestServer::with_config(|config| {
        config.scrub.text_attachments = ["log", "core"]
            .map(|field| TextAttachmentRule {
                field: field.to_owned(),
                max_bytes: 4096,
            })
            .to_vec();
    })
    .await;
    let [developer, support] = server.tokens([Role::Developer, Role::Support]).await;
    let log = format!(
        "12:00:01 start build=4711\n\
         12:00:02 signed in as {EMAIL} api_token={TOKEN}\n\
         12:00:03 open /home/kevin/notes.txt from 10.20.30.40\n\
         12:00:04 crash\n"
    );
    let dump = testdata::read("symbolic-linux-x64-crash/linux-mini.dmp");
    let (content_type, body) = Multipart::new()
        .text("prod", "Logged")
        .file("log", "app.log", log.as_bytes())
        .file("screenshot", "s.png", SCREENSHOT.as_bytes())
        .file("core", "core.bin", format!("{CORE}\0\0\0").as_bytes())
        .dump(&dump)
        .finish();
    let sent = receipt(server.submit_body(&content_type, body, false).await).await;
    let report = server.wait_processed(&developer, &sent.id).await;
    assert_eq!(report["state"], "processed", "{report}");
    let kept = report["text_attachments"]
        .as_array()
        .expect("kept attachments");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["field"], "log");
    let text = kept[0]["text"].as_str().unwrap();
    assert!(text.contains("12:00:01 start build=4711"), "{text}");
    assert!(text.contains("12:00:04 crash"), "{text}");
    let needles = [EMAIL, TOKEN, "kevin", "10.20.30.40", SCREENSHOT, CORE];
    for needle in needles {
        assert!(!report.to_string().contains(needle), "{needle} in {report}");
    }
    let (_, seen) = server
        .get_json(&format!("/api/v1/reports/{}", sent.id), &support)
        .await;
    assert!(seen.get("text_attachments").is_none(), "{seen}");
    // The report page shows it to developers, HTML-escaped.
    let (cookie, _) = server.sign_in(&developer).await;
    let page = server
        .request(reqwest::Method::GET, &format!("/reports/{}", sent.id))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("12:00:04 crash"), "{page}");
    assert!(!page.contains(EMAIL));
    server.assert_blobs_free_of(&sent.id, &needles).await;
    // Nor anywhere under the data dir in the clear (spool, index, temp files).
    let leaked = leaks(&server.data_dir, &[EMAIL.to_owned(), TOKEN.to_owned()]);
    assert!(leaked.is_empty(), "{leaked:?}");
    // The kept text is in the report's blobs (so deleting them deletes it).
    let opened = server.opened_report_blobs(&sent.id).await;
    assert!(
        opened
            .iter()
            .any(|(_, bytes)| contains(bytes, b"12:00:04 crash")),
        "the kept log in a blob of the report"
    );

    let (status, _) = server
        .delete(
            &format!("/api/v1/reports/{}", sent.id),
            &format!("Deletion {}", sent.deletion_token),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert!(server.report_keys(&sent.id).await.is_empty());
    server.stop().await;
}

/// `dump` (a Linux one, with a memory list) grown to `total` bytes: `gap` bytes
/// of zeros after it, then a captured memory region of pseudo-random bytes at
/// the address of its first module (so it is kept, and its text scrubbed, as
/// code and static data are), listed by a copy of its memory list moved to the
/// end. Returns it and where the region is.
fn with_large_region(dump: &[u8], gap: usize, total: usize) -> (Vec<u8>, std::ops::Range<usize>) {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let (count, dir) = (u32_at(dump, 8) as usize, u32_at(dump, 12) as usize);
    let entry = |ty: u32| {
        (0..count)
            .map(|i| dir + 12 * i)
            .find(|&at| u32_at(dump, at) == ty)
            .unwrap()
    };
    let (memory_entry, modules_entry) = (entry(5), entry(4));
    let modules = u32_at(dump, modules_entry + 8) as usize;
    let base = u64::from_le_bytes(dump[modules + 4..modules + 12].try_into().unwrap());
    let list = u32_at(dump, memory_entry + 8) as usize;
    let listed = u32_at(dump, list) as usize;

    let region_start = dump.len() + gap;
    let list_bytes = 4 + 16 * (listed + 1);
    let region = region_start..total - list_bytes;
    let mut out = dump.to_vec();
    out.resize(region.start, 0);
    // Bytes that are not text: a multiplicative hash, no printable run long
    // enough to matter.
    out.extend(
        (0..region.len() as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80),
    );
    let new_list = out.len();
    out.extend_from_slice(&(listed as u32 + 1).to_le_bytes());
    out.extend_from_slice(&dump[list + 4..list + 4 + 16 * listed]);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&(region.len() as u32).to_le_bytes());
    out.extend_from_slice(&(region.start as u32).to_le_bytes());
    assert_eq!(out.len(), total);
    out[memory_entry + 4..memory_entry + 8].copy_from_slice(&(list_bytes as u32).to_le_bytes());
    out[memory_entry + 8..memory_entry + 12].copy_from_slice(&(new_list as u32).to_le_bytes());
    (out, region)
}

/// `text` written into `dump` at `at`, in UTF-16LE when `wide`.
fn plant_text(dump: &mut [u8], at: usize, text: &str, wide: bool) {
    let bytes: Vec<u8> = if wide {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    } else {
        text.as_bytes().to_vec()
    };
    dump[at..at + bytes.len()].copy_from_slice(&bytes);
}

/// A dump over the threshold (here 4 MiB) is scrubbed a window at a time and
/// stored as it is scrubbed. A real dump grown to 48 MB, with secrets planted
/// in a large memory region (every few hundred KiB, so some straddle the 4 MiB
/// windows) and in the bytes between, goes through real HTTP; it processes as
/// the dump as it was does, its raw object is in the chunked form, and none of
/// the secrets is in any blob (opened) or any byte under the data dir. One with
/// more to hold than the windows allow is scrubbed whole, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_dump_is_scrubbed_in_windows_and_processes_as_it_was() {
    const EMAIL: &str = "zorblax.q@example.org";
    const SECRET: &str = "s3cr3t-v4lue-0123456789";
    const USER: &str = "zorblaxuser";
    const WIDE_USER: &str = "zorblaxwide";
    let case = testdata::case("mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp");
    let small = case.bytes();
    let (mut large, region) = with_large_region(&small, 2 << 20, 48 << 20);
    let planted = [
        (format!("\0write to {EMAIL} now\0"), false),
        (format!("\0MAYDAY_PLANTED_TOKEN={SECRET}\0"), false),
        (format!("\0/home/{USER}/projects/app/main.rs\0"), false),
        (
            format!("\0C:\\Users\\{WIDE_USER}\\AppData\\Local\\app\0"),
            true,
        ),
        (format!("\0mail {EMAIL}\0"), true),
    ];
    let mut at = region.start + 1000;
    let mut n = 0;
    while at + 200 < region.end {
        let (text, wide) = &planted[n % planted.len()];
        plant_text(&mut large, at, text, *wide);
        n += 1;
        // Some land across the 4 MiB windows' ends.
        at += 300_007 + (n % 7) * 4099;
    }
    // Between the dump and the region: text of the structure.
    plant_text(
        &mut large,
        small.len() + 4096,
        &format!("\0{EMAIL}\0{USER}\0"),
        false,
    );
    plant_text(
        &mut large,
        small.len() + (4 << 20) - 7,
        &format!("\0{EMAIL}\0"),
        false,
    );

    let server = TestServer::with_config(|c| {
        c.limits.stream_dump_bytes = 4 << 20;
        c.limits.max_wire_bytes = 128 << 20;
        c.limits.max_decompressed_bytes = 128 << 20;
    })
    .await;
    server.add_symbols(&case.symbols().unwrap()).await;
    let token = server.token(Role::Developer).await;
    // Over the threshold too, but with more to hold than a windowed scrub
    // holds (20 MB after the dump that are not zeros): scrubbed whole.
    let mut junk = small.clone();
    junk.extend((0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80));
    plant_text(
        &mut junk,
        small.len() + (9 << 20),
        &format!("\0{EMAIL}\0"),
        false,
    );

    let fields = [("prod", "Large"), ("ver", "1.0")];
    let as_it_was = server.submit(&small, &fields).await.id;
    let grown = server.submit(&large, &fields).await.id;
    let whole = server.submit(&junk, &fields).await.id;
    let as_it_was = server.wait_processed(&token, &as_it_was).await;
    let frames = |r: &Value| {
        r["crashing_thread"]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["module"].clone(),
                    f["function"].clone(),
                    f["module_offset"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(frames(&as_it_was).len() > 3);
    for id in [&grown, &whole] {
        let report = server.wait_processed(&token, id).await;
        assert_eq!(report["state"], "processed", "{report}");
        for field in ["crash_reason", "crash_address", "signature"] {
            assert_eq!(report[field], as_it_was[field], "{field}");
        }
        assert_eq!(frames(&report), frames(&as_it_was));
    }
    let report = server.wait_processed(&token, &grown).await;
    let removed = &report["scrub"]["removed"];
    for kind in ["email_address", "environment_variable", "user_name_in_path"] {
        assert!(removed[kind].as_u64().unwrap_or(0) > 0, "{kind}: {removed}");
    }

    let (_, object) = server.stored_raw(&grown).await;
    assert!(object.starts_with(b"MDR4"), "stored as it was scrubbed");
    let (_, object) = server.stored_raw(&whole).await;
    assert!(object.starts_with(b"MDR2"), "scrubbed whole");
    let needles = [EMAIL, SECRET, USER, WIDE_USER];
    let mut blobs = server.opened_report_blobs(&grown).await;
    blobs.extend(server.opened_report_blobs(&whole).await);
    for (key, plain) in blobs {
        for needle in needles {
            let wide: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert!(!contains(&plain, needle.as_bytes()), "{needle} in {key}");
            assert!(!contains(&plain, &wide), "{needle} (UTF-16) in {key}");
        }
    }
    let needles: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
    let found = leaks(&server.data_dir, &needles);
    assert!(found.is_empty(), "leaked into storage: {found:?}");
    server.stop().await;
}

/// A dump over the windowed scrub's threshold that has no minidump behind its
/// magic cannot be processed: it is stored as what the whole-dump scrub keeps of
/// such a dump (its magic and zeros, as long as it was, counted as
/// `unreadable_dump_bytes`), the report ends `failed`, and its text is nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_unreadable_dump_is_stored_as_its_magic_and_zeros() {
    // Over the windowed scrub's threshold, `MDMP` and then no minidump behind
    // it: text (a run far longer than a window) and bytes that are not text.
    const EMAIL: &str = "zorblax.q@example.org";
    let mut dump = b"MDMP".to_vec();
    while dump.len() < 5 << 20 {
        dump.extend_from_slice(format!("write to {EMAIL} now; ").as_bytes());
    }
    dump.extend((0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80));
    plant_text(&mut dump, (5 << 20) + 4096, &format!("\0{EMAIL}\0"), true);

    let server = TestServer::with_config(|c| {
        c.limits.stream_dump_bytes = 4 << 20;
        c.limits.max_wire_bytes = 32 << 20;
        c.limits.max_decompressed_bytes = 32 << 20;
    })
    .await;
    let token = server.token(Role::Developer).await;
    let id = server.submit(&dump, &[("prod", "Large")]).await.id;
    let report = server.wait_processed(&token, &id).await;
    assert_eq!(report["state"], "failed", "{report}");

    let (path, object) = server.stored_raw(&id).await;
    assert!(object.starts_with(b"MDR4"), "stored as it was read");
    let keys = server
        .state
        .vault()
        .keys(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let raw = mayday_server::vault::open_raw(&path, object.clone(), &keys, true).unwrap();
    assert_eq!(raw.dump.len(), dump.len());
    assert_eq!(&raw.dump[..4], b"MDMP");
    assert!(
        raw.dump[4..].iter().all(|&b| b == 0),
        "only zeros after the magic"
    );
    let meta: Value = serde_json::from_slice(&raw.meta.unwrap()).unwrap();
    assert_eq!(
        meta["scrub"]["removed"]["unreadable_dump_bytes"],
        (dump.len() - 4) as u64,
        "{meta}"
    );
    let found = leaks(&server.data_dir, &[EMAIL.to_owned()]);
    assert!(found.is_empty(), "leaked into storage: {found:?}");
    server.stop().await;
}

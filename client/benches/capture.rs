//! Benchmark of crash capture: how long `install()` takes (start the monitor,
//! connect, attach the handler) and how long a crash takes from the faulting
//! instruction to a dump committed in the pending queue (written by the monitor,
//! scrubbed, fsynced, renamed).
//!
//! Run: `cargo bench -p mayday-client --bench capture` (add `--profile dev` for a
//! quick run). The crash figures use the `crashy` example of the same profile;
//! build it first: `cargo build -p mayday-client --example crashy` (plus the same
//! `--release`/`--profile`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mayday_client::{Client, ConsentPolicy};

const INSTALLS: usize = 30;
const CRASHES: usize = 20;

fn main() {
    let data_dir = std::env::temp_dir().join(format!("mayday-bench-{}", std::process::id()));
    // In the monitor process (this executable started again by install()), the
    // first install() call runs the monitor and exits.
    let builder = Client::builder()
        .product("bench")
        .version("1")
        .data_dir(&data_dir)
        .consent(ConsentPolicy::Ask);

    let mut installs = Vec::with_capacity(INSTALLS);
    for _ in 0..INSTALLS {
        let started = Instant::now();
        let guard = match builder.clone().install() {
            Ok(g) => g,
            Err(e) => {
                eprintln!("install failed: {e}");
                std::process::exit(1);
            }
        };
        installs.push(started.elapsed());
        drop(guard);
    }
    report("install() (spawn monitor, connect, attach)", &mut installs);

    match crashy() {
        Some(crashy) => {
            for scrub in ["off", "on"] {
                let (mut times, size) = crashes(&crashy, &data_dir.join(scrub), scrub);
                report(
                    &format!("crash -> dump committed in pending/, client scrub {scrub}"),
                    &mut times,
                );
                println!("  dump size: {size} bytes");
            }
        }
        None => println!(
            "crash timing skipped: build the example first \
             (cargo build -p mayday-client --example crashy, same profile)"
        ),
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// `crashy` of this bench's profile: `<target>/<profile>/examples/crashy`.
fn crashy() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("crashy");
    path.is_file().then_some(path)
}

/// Runs `crashy segv` repeatedly; each time measures from the line it prints just
/// before faulting to the appearance of the committed metadata file.
fn crashes(crashy: &Path, data_dir: &Path, scrub: &str) -> (Vec<Duration>, u64) {
    let mut times = Vec::with_capacity(CRASHES);
    let mut size = 0;
    for i in 0..CRASHES {
        let dir = data_dir.join(format!("crash-{i}"));
        let mut child = match Command::new(crashy)
            .arg("segv")
            .env("MAYDAY_DATA_DIR", &dir)
            .env("MAYDAY_CONSENT", "ask")
            .env("MAYDAY_CLIENT_SCRUB", scrub)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot run {}: {e}", crashy.display());
                break;
            }
        };
        let Some(stdout) = child.stdout.take() else {
            break;
        };
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let started = Instant::now();
        let pending = dir.join("pending");
        let deadline = started + Duration::from_secs(10);
        let committed = loop {
            let found = std::fs::read_dir(&pending).ok().and_then(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "json"))
            });
            if let Some(meta) = found {
                break Some((started.elapsed(), meta));
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        let _ = child.wait();
        match committed {
            Some((t, meta)) => {
                times.push(t);
                size = std::fs::metadata(meta.with_extension("dmp"))
                    .map(|m| m.len())
                    .unwrap_or(0);
            }
            None => eprintln!("crash {i}: no dump within 10 s"),
        }
    }
    (times, size)
}

fn report(what: &str, times: &mut [Duration]) {
    if times.is_empty() {
        println!("{what}: no samples");
        return;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    println!(
        "{what}: n={} min {:.2} ms, median {:.2} ms, mean {:.2} ms, max {:.2} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        mean,
        ms(times[times.len() - 1]),
    );
}

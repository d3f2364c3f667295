//! `crashy`: an application that crashes on command, with Mayday's client installed.
//!
//! ```text
//! crashy segv|abort|panic|bus|fpe|ill   crash in the named way; the dump is queued
//! crashy panic-abort                    a panic as under `panic = "abort"`: hook, then abort()
//! crashy send                           ask about (terminal prompt) and send what is pending
//! crashy list                           pending reports and sent reports (with their CrashIDs)
//! crashy forget <CrashID>               ask the server to delete a sent report
//! crashy forget-all                     ask the server to delete every sent report
//! ```
//!
//! Environment:
//! - `MAYDAY_ENDPOINT`: the server's base URL (e.g. `http://127.0.0.1:8080`); without
//!   it reports stay pending.
//! - `MAYDAY_DATA_DIR`: the data dir (default `$XDG_DATA_HOME/crashy` or
//!   `~/.local/share/crashy`).
//! - `MAYDAY_CONSENT=ask|always|never`: the consent policy until the user chooses
//!   (default `ask`).
//! - `MAYDAY_CLIENT_SCRUB=on|off`: client-side scrubbing (default `on`).
//! - `CRASHY_VERSION`: the version crashy reports (default: the package's).
//!
//! Each crash happens in a function of its own (`crashy::crash_segv`, …), never
//! inlined, so the crashing thread's stack names it.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;

use mayday_client::{Client, ClientBuilder, ConsentPolicy, CrashSiteAnswer, Waiting};

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let builder = match builder_from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("crashy: {e}");
            return ExitCode::from(2);
        }
    };
    match command.as_str() {
        "segv" | "abort" | "panic" | "bus" | "fpe" | "ill" | "panic-abort" => {
            // First thing: in the monitor process this call never returns.
            let guard = match builder.install() {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("crashy: {e}");
                    return ExitCode::from(1);
                }
            };
            if command == "panic-abort" {
                // What `panic = "abort"` does: the panic hooks run, then abort().
                let hooks = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    hooks(info);
                    std::process::abort();
                }));
            }
            println!("crashy: crashing ({command})");
            crash(&command);
            drop(guard);
            eprintln!("crashy: did not crash");
            ExitCode::from(1)
        }
        "send" => match builder.build().and_then(|c| c.send_pending()) {
            Ok(summary) => {
                for counted in &summary.counted {
                    // Only the summary left the machine; the dump is deleted.
                    match &counted.answer {
                        CrashSiteAnswer::Fixed { fixed_in } => println!(
                            "fixed {}: already fixed in version {fixed_in}; please update",
                            counted.local_id
                        ),
                        _ => println!(
                            "counted {}: the developers have enough reports of this crash; \
                             only its summary was sent",
                            counted.local_id
                        ),
                    }
                }
                for sent in &summary.sent {
                    println!("sent {}", sent.crash_id);
                    if !sent.scrubbed.is_empty() {
                        println!(
                            "  before storing it, the server removed {}",
                            sent.scrubbed.describe()
                        );
                    }
                    if let Some(link) = &sent.forget_url {
                        println!("  to have it deleted, open {link}");
                    }
                }
                println!(
                    "declined {}, deleted by policy {}, discarded by server {}, pending {}",
                    summary.declined,
                    summary.deleted_by_policy,
                    summary.discarded,
                    summary.still_pending
                );
                if let Some(e) = &summary.last_error {
                    println!("not sent: {e}");
                }
                if let Some(waiting) = summary.waiting {
                    println!("{} pending: {waiting}", summary.still_pending);
                    if waiting == Waiting::NoOneToAsk {
                        println!(
                            "  to send them, run `crashy send` in a terminal and answer, \
                             or set MAYDAY_CONSENT=always"
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crashy: {e}");
                ExitCode::from(1)
            }
        },
        "list" => match builder
            .build()
            .and_then(|c| Ok((c.pending()?, c.sent_reports()?)))
        {
            Ok((pending, sent)) => {
                for p in pending {
                    println!("pending {} {}", p.meta.id, p.meta.created_at);
                }
                for s in sent {
                    println!("sent {} {}", s.crash_id, s.sent_at);
                    if let Some(link) = &s.forget_url {
                        println!("  to have it deleted, open {link}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crashy: {e}");
                ExitCode::from(1)
            }
        },
        "forget" => {
            let Some(id) = std::env::args().nth(2) else {
                eprintln!("usage: crashy forget <CrashID>");
                return ExitCode::from(2);
            };
            match builder.build().and_then(|c| c.forget(&id)) {
                Ok(outcome) => {
                    println!("forgot {id}: {outcome:?}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("crashy: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "forget-all" => match builder.build().and_then(|c| c.forget_all()) {
            Ok(n) => {
                println!("forgot {n} reports");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crashy: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!(
                "usage: crashy segv|abort|panic|bus|fpe|ill|panic-abort|send|list|forget <CrashID>|forget-all"
            );
            ExitCode::from(2)
        }
    }
}

fn builder_from_env() -> Result<ClientBuilder, mayday_client::Error> {
    let data_dir = match std::env::var_os("MAYDAY_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir)
            .join("crashy"),
    };
    let consent: ConsentPolicy = std::env::var("MAYDAY_CONSENT")
        .unwrap_or_else(|_| "ask".into())
        .parse()?;
    let scrub = match std::env::var("MAYDAY_CLIENT_SCRUB").as_deref() {
        Ok("off") => false,
        Ok("on") | Err(_) => true,
        Ok(other) => {
            return Err(mayday_client::Error::Config(format!(
                "MAYDAY_CLIENT_SCRUB={other:?} is not on or off"
            )));
        }
    };
    let mut builder = Client::builder()
        .product("crashy")
        .version(
            std::env::var("CRASHY_VERSION").unwrap_or_else(|_| env!("CARGO_PKG_VERSION").into()),
        )
        .data_dir(data_dir)
        .consent(consent)
        .client_scrub(scrub)
        .annotation("channel", "example");
    if let Ok(endpoint) = std::env::var("MAYDAY_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    Ok(builder)
}

fn crash(kind: &str) {
    match kind {
        "segv" => crash_segv(),
        "abort" => crash_abort(),
        "panic" | "panic-abort" => crash_panic(),
        "bus" => crash_bus(),
        "fpe" => crash_fpe(),
        "ill" => crash_ill(),
        _ => {}
    }
}

/// Writes through a pointer into the unmapped first page: SIGSEGV (SEGV_MAPERR).
#[inline(never)]
#[allow(unsafe_code)] // The point of this function is an invalid write.
pub fn crash_segv() {
    let p = std::ptr::without_provenance_mut::<u64>(black_box(8));
    // SAFETY: not safe at all; it crashes, which is what this example is for.
    unsafe { std::ptr::write_volatile(p, 0xdead) };
}

/// `abort()`: SIGABRT.
#[inline(never)]
pub fn crash_abort() {
    black_box(());
    std::process::abort();
}

/// A Rust panic that unwinds; the panic hook captures it.
#[inline(never)]
pub fn crash_panic() {
    let reason = black_box("crashy panicked on purpose");
    panic!("{reason}");
}

/// Reads a mapping of an empty file: SIGBUS (BUS_ADRERR).
#[inline(never)]
#[allow(unsafe_code)] // mmap and a read beyond the end of the mapped file.
pub fn crash_bus() {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap};
    let path = std::env::temp_dir().join(format!("crashy-bus-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crashy: {e}");
            return;
        }
    };
    let _ = std::fs::remove_file(&path);
    let Some(len) = std::num::NonZeroUsize::new(4096) else {
        return;
    };
    // SAFETY: mapping a file is sound; reading past its end is the crash we want.
    let mapped = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ,
            MapFlags::MAP_SHARED,
            &file,
            0,
        )
    };
    match mapped {
        Ok(ptr) => {
            // SAFETY: see above.
            let byte = unsafe { std::ptr::read_volatile(ptr.as_ptr().cast::<u8>()) };
            black_box(byte);
        }
        Err(e) => eprintln!("crashy: mmap: {e}"),
    }
}

/// Integer division by zero in machine code (Rust's `/` would panic first): SIGFPE.
#[inline(never)]
#[allow(unsafe_code)] // Inline assembly for a real hardware fault.
pub fn crash_fpe() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `div` by a zero register faults (SIGFPE, FPE_INTDIV); nothing else.
    unsafe {
        std::arch::asm!(
            "div {0:e}",
            in(reg) black_box(0u32),
            inout("eax") 1u32 => _,
            inout("edx") 0u32 => _,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // AArch64 does not trap on integer division by zero.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGFPE);
    }
}

/// An undefined instruction: SIGILL.
#[inline(never)]
#[allow(unsafe_code)] // Inline assembly for a real illegal instruction.
pub fn crash_ill() {
    black_box(());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `ud2` raises SIGILL (ILL_ILLOPN); nothing else.
    unsafe {
        std::arch::asm!("ud2");
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `udf` raises SIGILL; nothing else.
    unsafe {
        std::arch::asm!("udf #0");
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGILL);
    }
}

//! Linux: crash-handler catches SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL (and
//! SIGTRAP) on an alternate stack; minidumper's monitor writes the dump with
//! minidump-writer over ptrace. A Rust panic is captured from a panic hook.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crash_handler::{CrashContext, CrashEventResult, CrashHandler, Signal};
use minidumper::{LoopAction, MinidumpBinary, ServerHandler, SocketName};

use super::protocol::{MONITOR_ENV, MSG_ANNOTATION, MSG_PANIC, MSG_REMOVE_ANNOTATION};
use crate::client::{Client, PANIC_ANNOTATION};
use crate::consent::ConsentPolicy;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::queue::ReportMeta;
use crate::scrub::{self, LocalUser};

/// How long `install()` waits for the monitor to listen.
const MONITOR_START_TIMEOUT: Duration = Duration::from_secs(5);

/// What the crash handler and the panic hook share with the guard.
struct Shared {
    handler: CrashHandler,
    ipc: Arc<minidumper::Client>,
}

/// The running monitor, seen from the application.
pub(crate) struct Monitor {
    shared: Option<Arc<Shared>>,
    child: Child,
}

/// The monitoring state the panic hook reads; `None` once the guard is dropped.
static ACTIVE: Mutex<Option<Arc<Shared>>> = Mutex::new(None);
static PANIC_HOOK: Once = Once::new();

thread_local! {
    /// Set on a thread whose panic was just dumped, so the SIGABRT that follows
    /// under `panic = "abort"` does not produce a second dump. Const-initialized:
    /// reading it in a signal handler allocates nothing. Covered by
    /// `crash::panic_under_abort_is_dumped_once`.
    static PANIC_DUMPED: Cell<bool> = const { Cell::new(false) };
}

impl Monitor {
    pub(crate) fn start() -> Result<Monitor> {
        let socket = format!(
            "mayday-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let exe = std::env::current_exe()
            .map_err(|e| Error::Install(format!("cannot find this executable: {e}")))?;
        let mut child = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(MONITOR_ENV, &socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::Install(format!("cannot start the monitor {}: {e}", exe.display()))
            })?;
        let ipc = match connect(&socket, &mut child) {
            Ok(ipc) => Arc::new(ipc),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let on_crash = Arc::clone(&ipc);
        // SAFETY: `make_crash_event` is unsafe because the closure runs inside a
        // signal handler. It only reads a const-initialized thread-local and sends
        // the crash context over an already connected socket (no allocation, no
        // locks), which is what minidumper's client is written for.
        #[allow(unsafe_code)]
        let event = unsafe {
            crash_handler::make_crash_event(move |cc: &CrashContext| {
                if cc.siginfo.ssi_signo == Signal::Abort as u32 && PANIC_DUMPED.with(Cell::get) {
                    return CrashEventResult::Handled(true);
                }
                CrashEventResult::Handled(on_crash.request_dump(cc).is_ok())
            })
        };
        let handler = match CrashHandler::attach(event) {
            Ok(h) => h,
            Err(e) => {
                drop(ipc);
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Install(format!(
                    "cannot attach the crash handler: {e}"
                )));
            }
        };
        // Under Yama ptrace_scope=1 (Ubuntu's default) a process may only ptrace
        // its descendants, and the monitor is our child: name it as our tracer
        // (PR_SET_PTRACER). Every test in `tests/client/crash.rs` depends on the
        // monitor being allowed to read us.
        handler.set_ptracer(Some(child.id()));
        let shared = Arc::new(Shared { handler, ipc });
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(Arc::clone(&shared));
        }
        install_panic_hook();
        Ok(Monitor {
            shared: Some(shared),
            child,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn send(&self, kind: u32, buf: &[u8]) -> Result<()> {
        match &self.shared {
            Some(s) => s
                .ipc
                .send_message(kind, buf)
                .map_err(|e| Error::Install(format!("monitor unreachable: {e}"))),
            None => Ok(()),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        // Detaches the handler and closes the socket; the monitor then exits.
        drop(self.shared.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(socket: &str, child: &mut Child) -> Result<minidumper::Client> {
    let deadline = Instant::now() + MONITOR_START_TIMEOUT;
    loop {
        match minidumper::Client::with_name(SocketName::abstract_namespace(socket)) {
            Ok(c) => return Ok(c),
            Err(e) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Install(format!(
                        "the monitor exited early ({status}); is install() called first in main?"
                    )));
                }
                if Instant::now() > deadline {
                    return Err(Error::Install(format!("the monitor did not start: {e}")));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Chains a hook before the existing one: a panic is dumped (the crashing thread is
/// the panicking one, inside the hook), then the previous hook runs as before.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let active = ACTIVE.lock().ok().and_then(|a| a.clone());
            if let Some(active) = active {
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "Box<dyn Any>".to_owned());
                let text = match info.location() {
                    Some(l) => format!("{payload} at {}:{}", l.file(), l.line()),
                    None => payload,
                };
                let _ = active.ipc.send_message(MSG_PANIC, text.as_bytes());
                let _ = active.handler.simulate_signal(Signal::Abort as u32);
                PANIC_DUMPED.with(|d| d.set(true));
            }
            previous(info);
        }));
    });
}

/// Runs the monitor loop until the application disconnects or crashed.
pub(crate) fn run_monitor(client: &Client, socket: &str) -> Result<()> {
    let mut server = minidumper::Server::with_name(SocketName::abstract_namespace(socket))
        .map_err(|e| Error::Install(format!("monitor cannot listen: {e}")))?;
    let handler = MonitorHandler {
        client: client.clone(),
        state: Mutex::new(State::default()),
    };
    let shutdown = AtomicBool::new(false);
    server
        .run(Box::new(handler), &shutdown, None)
        .map_err(|e| Error::Install(format!("monitor failed: {e}")))
}

#[derive(Default)]
struct State {
    current_id: Option<String>,
    /// Annotations changed at run time over the builder's: set, or removed (`None`).
    annotations: BTreeMap<String, Option<String>>,
}

struct MonitorHandler {
    client: Client,
    state: Mutex<State>,
}

impl MonitorHandler {
    fn commit(&self, id: String, bin: &MinidumpBinary) -> Result<()> {
        let config = self.client.config();
        if self.client.consent()? == ConsentPolicy::Never {
            tracing::info!("consent is Never: the dump is not kept");
            fsutil::remove_if_exists(&bin.path)?;
            return Ok(());
        }
        let user = LocalUser::from_env();
        let mut annotations = config.annotations.clone();
        if let Ok(state) = self.state.lock() {
            for (key, value) in &state.annotations {
                match value {
                    Some(value) => annotations.insert(key.clone(), value.clone()),
                    None => annotations.remove(key),
                };
            }
        }
        let mut client_scrubbed = false;
        if config.client_scrub {
            annotations = scrub::scrub_annotations(&annotations, &user);
            let mut bytes = fs::read(&bin.path).map_err(|e| Error::io(&bin.path, e))?;
            match scrub::scrub_dump(&mut bytes, &user) {
                Ok(()) => {
                    fs::write(&bin.path, &bytes).map_err(|e| Error::io(&bin.path, e))?;
                    client_scrubbed = true;
                }
                // Kept unscrubbed on this machine; scrubbing is tried again before
                // it is shown or sent, and it is not sent unless that succeeds.
                Err(e) => tracing::warn!(error = %e, "scrubbing at capture failed"),
            }
        }
        let meta = ReportMeta {
            id,
            created_at: fsutil::now(),
            product: config.product.clone(),
            version: config.version.clone(),
            annotations,
            client_scrubbed,
        };
        self.client.queue().commit(&bin.path, &bin.file, &meta)
    }
}

impl ServerHandler for MonitorHandler {
    fn create_minidump_file(&self) -> std::io::Result<(fs::File, std::path::PathBuf)> {
        let (id, file, path) = self.client.queue().create_dump_file()?;
        if let Ok(mut state) = self.state.lock() {
            state.current_id = Some(id);
        }
        Ok((file, path))
    }

    fn on_minidump_created(
        &self,
        result: std::result::Result<MinidumpBinary, minidumper::Error>,
    ) -> LoopAction {
        let id = self.state.lock().ok().and_then(|mut s| s.current_id.take());
        match (result, id) {
            (Ok(bin), Some(id)) => {
                if let Err(e) = self.commit(id, &bin) {
                    tracing::error!(error = %e, "could not queue the dump");
                    let _ = fs::remove_file(&bin.path);
                }
            }
            (Ok(bin), None) => {
                let _ = fs::remove_file(&bin.path);
            }
            (Err(e), _) => tracing::error!(error = %e, "the dump could not be written"),
        }
        // After a crash request minidumper drops the connection; the application
        // is dying (or, after a caught panic, runs on unmonitored). Exiting here
        // is what leaves no monitor behind after a crash.
        LoopAction::Exit
    }

    fn on_message(&self, kind: u32, buffer: Vec<u8>) {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match kind {
            MSG_ANNOTATION => {
                if let Some((k, v)) = text.split_once('\0') {
                    state.annotations.insert(k.to_owned(), Some(v.to_owned()));
                }
            }
            MSG_PANIC => {
                state
                    .annotations
                    .insert(PANIC_ANNOTATION.to_owned(), Some(text));
            }
            MSG_REMOVE_ANNOTATION => {
                state.annotations.insert(text, None);
            }
            _ => {}
        }
    }

    fn on_client_disconnected(&self, num_clients: usize) -> LoopAction {
        if num_clients == 0 {
            LoopAction::Exit
        } else {
            LoopAction::Continue
        }
    }
}

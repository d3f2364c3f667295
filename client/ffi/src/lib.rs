//! Mayday's crash handler for C and C++ applications: a C ABI over
//! [`mayday_client`], described by `include/mayday.h` (written from this file by
//! cbindgen; a test keeps the two in step).
//!
//! The model is the Rust client's: build with product, version, endpoint, data dir,
//! consent policy and annotations, then [`mayday_install`] first thing in `main`
//! (the monitor is the same executable started again: in that process the call
//! never returns). Later, or in a separate step, [`mayday_send_pending`] asks for
//! consent (through a C callback, or on the terminal) and uploads.
//!
//! Every function returns a [`MaydayStatus`] (or a pointer that is `NULL` on
//! failure) and keeps a message for [`mayday_last_error`] on the calling thread. No
//! Rust panic crosses the boundary: one is caught and answered
//! [`MaydayStatus::Panic`]. Strings in are NUL-terminated UTF-8 and are copied;
//! strings out live until the callback they are passed to returns.
//!
//! Threads: a [`MaydayClient`] may be used from several threads at once by every
//! function but [`mayday_shutdown`]; a [`MaydayBuilder`] by one thread at a time.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mayday_client::{
    Client, ClientBuilder, ConsentAnswer, ConsentPolicy, CrashGuard, CrashSiteAnswer, Decision,
    Error, FnPrompt, ReportSummary, SendSummary, SentReport, Waiting,
};

/// Consent policy: ask about each report (the default).
pub const MAYDAY_CONSENT_ASK: c_int = 0;
/// Consent policy: send every report without asking.
pub const MAYDAY_CONSENT_ALWAYS: c_int = 1;
/// Consent policy: send nothing; pending reports are deleted, new ones not kept.
pub const MAYDAY_CONSENT_NEVER: c_int = 2;

/// A consent callback's answer: send this report.
pub const MAYDAY_DECISION_SEND: c_int = 0;
/// A consent callback's answer: send this report and every later one.
pub const MAYDAY_DECISION_ALWAYS: c_int = 1;
/// A consent callback's answer: delete this report unsent.
pub const MAYDAY_DECISION_DONT_SEND: c_int = 2;
/// A consent callback's answer: send nothing ever; deletes every pending report.
pub const MAYDAY_DECISION_NEVER: c_int = 3;
/// A consent callback's answer: no answer now; the report stays pending.
pub const MAYDAY_DECISION_NO_ANSWER: c_int = 4;

/// What a call achieved.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaydayStatus {
    /// Done.
    Ok = 0,
    /// A required pointer was `NULL`, a string not UTF-8, or a number out of range.
    InvalidArgument = 1,
    /// The configuration is missing a setting or has an invalid one, or the call
    /// needs [`mayday_install`] first.
    Config = 2,
    /// A file in the data dir could not be read or written.
    Io = 3,
    /// Crash monitoring could not be started or reached.
    Install = 4,
    /// No report with this id is pending or sent.
    UnknownReport = 5,
    /// The server could not be reached.
    Network = 6,
    /// The server refused the request or answered something unreadable.
    Server = 7,
    /// A bug: a panic inside the library, caught at the boundary.
    Panic = 8,
    /// Any other error (see [`mayday_last_error`]).
    Other = 9,
}

/// Why pending reports still wait after [`mayday_send_pending`]. (Its variants
/// are the Rust client's `Waiting` for C: alike by design, as are the statuses.)
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaydayWaiting {
    /// Nothing waits.
    None = 0,
    /// Another process of the application is sending them.
    OtherSender = 1,
    /// No endpoint is configured.
    NoEndpoint = 2,
    /// Consent is "ask" and no one could be asked (no callback answer, no terminal).
    NoOneToAsk = 3,
    /// The server asked to wait (`throttled_until_unix` says until when).
    Throttled = 4,
    /// Sending failed; they are tried again next time.
    SendFailed = 5,
}

/// Settings for a client, collected before [`mayday_install`] or [`mayday_open`].
pub struct MaydayBuilder {
    builder: ClientBuilder,
}

/// A client: sends, lists and forgets reports; monitors crashes when installed.
pub struct MaydayClient {
    client: Client,
    guard: Option<CrashGuard>,
}

/// One annotation, as it would be sent.
#[repr(C)]
pub struct MaydayAnnotation {
    /// The key.
    pub key: *const c_char,
    /// The value.
    pub value: *const c_char,
}

/// Everything a pending report contains, as it would leave the machine: what the
/// consent callback shows the user. `NULL` strings are facts the dump does not
/// hold. (Field by field the Rust client's `ReportSummary`, for C: alike by
/// design; a test checks that the two agree.)
#[repr(C)]
pub struct MaydayReportSummary {
    /// The local id of the pending report.
    pub id: *const c_char,
    /// Product name.
    pub product: *const c_char,
    /// Product version.
    pub version: *const c_char,
    /// When the crash happened (RFC 3339, UTC).
    pub crashed_at: *const c_char,
    /// Why it crashed, e.g. `SIGSEGV / SEGV_MAPERR`.
    pub crash_reason: *const c_char,
    /// The module (file name) of the crashing instruction.
    pub crashing_module: *const c_char,
    /// OS family and version.
    pub os: *const c_char,
    /// Where the report would be sent.
    pub endpoint: *const c_char,
    /// Threads whose registers and stacks the dump holds.
    pub threads: size_t,
    /// Loaded modules listed (names, versions, build ids).
    pub modules: size_t,
    /// Bytes of captured stack memory.
    pub stack_bytes: u64,
    /// Whether the process environment is in the dump.
    pub has_environment: bool,
    /// Whether the command line is in the dump.
    pub has_command_line: bool,
    /// Whether memory other than thread stacks is in the dump.
    pub has_heap: bool,
    /// Whether the dump was scrubbed on this machine.
    pub client_scrubbed: bool,
    /// Size of the dump that would be sent, in bytes.
    pub size_bytes: u64,
    /// Every annotation, exactly as it would be sent.
    pub annotations: *const MaydayAnnotation,
    /// How many `annotations` there are.
    pub annotation_count: size_t,
    /// All of the above as the terminal prompt words it.
    pub text: *const c_char,
}

/// The consent callback: shown `summary` (valid until it returns), answers one of
/// the `MAYDAY_DECISION_*` values. Called on the thread that called
/// [`mayday_send_pending`], once per pending report while consent is "ask".
pub type MaydayConsentFn = Option<
    unsafe extern "C" fn(summary: *const MaydayReportSummary, user_data: *mut c_void) -> c_int,
>;

/// What one [`mayday_send_pending`] call did.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MaydaySendSummary {
    /// Reports the server acknowledged.
    pub sent: size_t,
    /// Reports the user declined (deleted).
    pub declined: size_t,
    /// Reports deleted because consent is "never".
    pub deleted_by_policy: size_t,
    /// Reports the server refused for good (deleted).
    pub discarded: size_t,
    /// Reports still pending.
    pub still_pending: size_t,
    /// Why they wait.
    pub waiting: MaydayWaiting,
    /// With [`MaydayWaiting::Throttled`]: until when (Unix seconds), else 0.
    pub throttled_until_unix: i64,
    /// Crashes of which only the summary was sent: the server counted them and
    /// did not want their dumps, which were deleted.
    pub counted: size_t,
    /// Of those, crashes the server says are fixed in a newer version than the
    /// app's: tell the user to update.
    pub fixed: size_t,
}

/// A report the server acknowledged: what the user needs to have it deleted.
#[repr(C)]
pub struct MaydaySentReport {
    /// The server's report id, `bp-<uuid>`.
    pub crash_id: *const c_char,
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: *const c_char,
    /// Product name.
    pub product: *const c_char,
    /// Product version.
    pub version: *const c_char,
    /// The page where the user deletes it in a browser, or `NULL`.
    pub forget_url: *const c_char,
    /// What the server's scrubbing removed, in words ("nothing" when nothing).
    pub scrubbed: *const c_char,
}

/// Called once per sent report by [`mayday_sent_reports`]; `report` is valid
/// until it returns.
pub type MaydaySentReportFn =
    Option<unsafe extern "C" fn(report: *const MaydaySentReport, user_data: *mut c_void)>;

/// `size_t` (cbindgen writes `usize` so).
#[allow(non_camel_case_types)]
type size_t = usize;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// A failure of one call: its status and message.
struct Failure(MaydayStatus, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Config(_) => MaydayStatus::Config,
            Error::Io { .. } | Error::Json { .. } => MaydayStatus::Io,
            Error::Install(_) => MaydayStatus::Install,
            Error::UnknownReport(_) => MaydayStatus::UnknownReport,
            Error::Network(_) => MaydayStatus::Network,
            Error::Server { .. } | Error::BadReceipt => MaydayStatus::Server,
            _ => MaydayStatus::Other,
        };
        Failure(status, e.to_string())
    }
}

fn invalid(what: &str) -> Failure {
    Failure(MaydayStatus::InvalidArgument, what.to_owned())
}

/// Runs `f`, catching a panic; records the error message of a failure.
fn guarded(f: impl FnOnce() -> Result<(), Failure>) -> MaydayStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_last_error("");
            MaydayStatus::Ok
        }
        Ok(Err(Failure(status, message))) => {
            set_last_error(&message);
            status
        }
        Err(_) => {
            set_last_error("internal error (a panic in the Mayday library)");
            MaydayStatus::Panic
        }
    }
}

/// A string argument: `Err` for `NULL` or non-UTF-8.
///
/// # Safety
/// `ptr` is `NULL` or a NUL-terminated string.
unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

/// The builder behind a pointer.
///
/// # Safety
/// `ptr` is `NULL` or from [`mayday_builder_new`], not yet consumed.
unsafe fn builder_mut<'a>(ptr: *mut MaydayBuilder) -> Result<&'a mut MaydayBuilder, Failure> {
    // SAFETY: the caller promises a live builder or NULL.
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid("builder is NULL"))
}

/// The client behind a pointer.
///
/// # Safety
/// `ptr` is `NULL` or from [`mayday_install`] / [`mayday_open`], not shut down.
unsafe fn client_ref<'a>(ptr: *const MaydayClient) -> Result<&'a MaydayClient, Failure> {
    // SAFETY: the caller promises a live client or NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| invalid("client is NULL"))
}

fn policy(value: c_int) -> Result<ConsentPolicy, Failure> {
    match value {
        MAYDAY_CONSENT_ASK => Ok(ConsentPolicy::Ask),
        MAYDAY_CONSENT_ALWAYS => Ok(ConsentPolicy::Always),
        MAYDAY_CONSENT_NEVER => Ok(ConsentPolicy::Never),
        other => Err(invalid(&format!("{other} is not a MAYDAY_CONSENT_* value"))),
    }
}

/// Applies `f` to the builder behind `builder`.
///
/// # Safety
/// As [`builder_mut`].
unsafe fn with_builder(
    builder: *mut MaydayBuilder,
    f: impl FnOnce(ClientBuilder) -> Result<ClientBuilder, Failure>,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let b = unsafe { builder_mut(builder) }?;
        let taken = std::mem::replace(&mut b.builder, ClientBuilder::new());
        b.builder = f(taken)?;
        Ok(())
    })
}

/// The message of the last failed call on this thread ("" after a success). Valid
/// until the next call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn mayday_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// A new builder with the client's defaults (consent "ask"). Free it with
/// [`mayday_builder_free`] unless it is passed to [`mayday_install`] or
/// [`mayday_open`].
#[unsafe(no_mangle)]
pub extern "C" fn mayday_builder_new() -> *mut MaydayBuilder {
    catch_unwind(|| {
        Box::into_raw(Box::new(MaydayBuilder {
            builder: Client::builder(),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a builder that was not used.
///
/// # Safety
/// `builder` is `NULL` or from [`mayday_builder_new`], not yet consumed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_free(builder: *mut MaydayBuilder) {
    if !builder.is_null() {
        // SAFETY: the caller gives up a builder from mayday_builder_new.
        drop(unsafe { Box::from_raw(builder) });
    }
}

/// Sets the product name (required).
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; `product` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_product(
    builder: *mut MaydayBuilder,
    product: *const c_char,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.product(text(product, "product")?))) }
}

/// Sets the product version (required).
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; `version` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_version(
    builder: *mut MaydayBuilder,
    version: *const c_char,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.version(text(version, "version")?))) }
}

/// Sets the server's base URL (reports go to `<endpoint>/submit`).
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; `endpoint` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_endpoint(
    builder: *mut MaydayBuilder,
    endpoint: *const c_char,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.endpoint(text(endpoint, "endpoint")?))) }
}

/// Sets the directory for pending reports, receipts and the consent choice.
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; `dir` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_data_dir(
    builder: *mut MaydayBuilder,
    dir: *const c_char,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.data_dir(text(dir, "data dir")?))) }
}

/// Sets the consent policy until the user chooses (`MAYDAY_CONSENT_*`).
///
/// # Safety
/// `builder` as for [`mayday_builder_free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_consent(
    builder: *mut MaydayBuilder,
    consent: c_int,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.consent(policy(consent)?))) }
}

/// Adds an annotation sent with every report (the user sees it first).
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; `key` and `value` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_annotation(
    builder: *mut MaydayBuilder,
    key: *const c_char,
    value: *const c_char,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe {
        with_builder(builder, |b| {
            Ok(b.annotation(text(key, "key")?, text(value, "value")?))
        })
    }
}

/// Turns scrubbing on this machine before sending on (the default) or off.
///
/// # Safety
/// `builder` as for [`mayday_builder_free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_builder_client_scrub(
    builder: *mut MaydayBuilder,
    on: bool,
) -> MaydayStatus {
    // SAFETY: passed on from the caller.
    unsafe { with_builder(builder, |b| Ok(b.client_scrub(on))) }
}

/// Takes the builder (freed, whatever the outcome) and makes a client with `make`.
///
/// # Safety
/// As [`mayday_builder_free`].
unsafe fn consume(
    builder: *mut MaydayBuilder,
    make: impl FnOnce(ClientBuilder) -> Result<MaydayClient, Error>,
) -> *mut MaydayClient {
    let mut made = std::ptr::null_mut();
    let _ = guarded(|| {
        if builder.is_null() {
            return Err(invalid("builder is NULL"));
        }
        // SAFETY: the caller gives up a builder from mayday_builder_new.
        let builder = unsafe { Box::from_raw(builder) }.builder;
        made = Box::into_raw(Box::new(make(builder)?));
        Ok(())
    });
    made
}

/// Starts crash monitoring and returns the client (`NULL` on failure: see
/// [`mayday_last_error`]). Call it first thing in `main`: the monitor is this
/// executable started again with the same arguments, and in that process this
/// call runs the monitor and exits instead of returning. Takes `builder`.
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; it is consumed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_install(builder: *mut MaydayBuilder) -> *mut MaydayClient {
    // SAFETY: passed on from the caller.
    unsafe {
        consume(builder, |b| {
            let guard = b.install()?;
            Ok(MaydayClient {
                client: guard.client().clone(),
                guard: Some(guard),
            })
        })
    }
}

/// A client that sends and manages reports but does not monitor crashes (`NULL`
/// on failure). Takes `builder`.
///
/// # Safety
/// `builder` as for [`mayday_builder_free`]; it is consumed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_open(builder: *mut MaydayBuilder) -> *mut MaydayClient {
    // SAFETY: passed on from the caller.
    unsafe {
        consume(builder, |b| {
            Ok(MaydayClient {
                client: b.build()?,
                guard: None,
            })
        })
    }
}

/// Stops crash monitoring (if installed) and frees the client.
///
/// # Safety
/// `client` is `NULL` or from [`mayday_install`] / [`mayday_open`]; no other
/// thread uses it now or later.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_shutdown(client: *mut MaydayClient) {
    if !client.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller gives the client up.
            drop(unsafe { Box::from_raw(client) });
        }));
    }
}

fn installed(client: &MaydayClient) -> Result<&CrashGuard, Failure> {
    client.guard.as_ref().ok_or_else(|| {
        Failure(
            MaydayStatus::Config,
            "crash monitoring is not installed (mayday_install)".into(),
        )
    })
}

/// Sets an annotation for a crash from now on (installed clients only).
///
/// # Safety
/// `client` a live client; `key` and `value` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_set_annotation(
    client: *const MaydayClient,
    key: *const c_char,
    value: *const c_char,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let (client, key, value) = unsafe {
            (
                client_ref(client)?,
                text(key, "key")?,
                text(value, "value")?,
            )
        };
        Ok(installed(client)?.set_annotation(key, value)?)
    })
}

/// Removes an annotation from a crash from now on (installed clients only).
///
/// # Safety
/// `client` a live client; `key` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_remove_annotation(
    client: *const MaydayClient,
    key: *const c_char,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let (client, key) = unsafe { (client_ref(client)?, text(key, "key")?) };
        Ok(installed(client)?.remove_annotation(key)?)
    })
}

/// Sets the consent policy and remembers it (`MAYDAY_CONSENT_NEVER` deletes every
/// pending report).
///
/// # Safety
/// `client` a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_set_consent(
    client: *const MaydayClient,
    consent: c_int,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let client = unsafe { client_ref(client) }?;
        Ok(client.client.set_consent(policy(consent)?)?)
    })
}

/// C strings that live as long as this value.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn add(&mut self, s: &str) -> *const c_char {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        // A CString's buffer stays where it is when the Vec grows.
        let ptr = c.as_ptr();
        self.0.push(c);
        ptr
    }

    fn add_opt(&mut self, s: Option<&str>) -> *const c_char {
        s.map_or(std::ptr::null(), |s| self.add(s))
    }
}

/// Asks the C callback about one report.
fn ask_c(
    callback: unsafe extern "C" fn(*const MaydayReportSummary, *mut c_void) -> c_int,
    user_data: *mut c_void,
    summary: &ReportSummary,
) -> Option<ConsentAnswer> {
    let mut strings = Strings::default();
    let annotations: Vec<MaydayAnnotation> = summary
        .annotations
        .iter()
        .map(|(k, v)| MaydayAnnotation {
            key: strings.add(k),
            value: strings.add(v),
        })
        .collect();
    let c_summary = MaydayReportSummary {
        id: strings.add(&summary.id),
        product: strings.add(&summary.product),
        version: strings.add(&summary.version),
        crashed_at: strings.add(&summary.crashed_at),
        crash_reason: strings.add_opt(summary.crash_reason.as_deref()),
        crashing_module: strings.add_opt(summary.crashing_module.as_deref()),
        os: strings.add_opt(summary.os.as_deref()),
        endpoint: strings.add_opt(summary.endpoint.as_deref()),
        threads: summary.threads,
        modules: summary.modules,
        stack_bytes: summary.stack_bytes,
        has_environment: summary.has_environment,
        has_command_line: summary.has_command_line,
        has_heap: summary.has_heap,
        client_scrubbed: summary.client_scrubbed,
        size_bytes: summary.size_bytes,
        annotations: annotations.as_ptr(),
        annotation_count: annotations.len(),
        text: strings.add(&summary.to_string()),
    };
    // SAFETY: the callback is the caller's, given with its user data; the summary
    // and every string it points to live until it returns.
    let answer = unsafe { callback(&c_summary, user_data) };
    let decision = match answer {
        MAYDAY_DECISION_SEND => Decision::Send,
        MAYDAY_DECISION_ALWAYS => Decision::Always,
        MAYDAY_DECISION_DONT_SEND => Decision::DontSend,
        MAYDAY_DECISION_NEVER => Decision::Never,
        _ => return None,
    };
    Some(ConsentAnswer::new(decision))
}

/// The callback and its user data, carried into the client's prompt. The client
/// calls the prompt on the thread that called `mayday_send_pending`, while that
/// call runs: the pointer is never used from another thread or later.
#[derive(Clone, Copy)]
struct CCallback {
    callback: unsafe extern "C" fn(*const MaydayReportSummary, *mut c_void) -> c_int,
    user_data: *mut c_void,
}

// SAFETY: see the type's comment: used only on the calling thread, during the call.
unsafe impl Send for CCallback {}
// SAFETY: as above.
unsafe impl Sync for CCallback {}

fn send_summary(summary: &SendSummary) -> MaydaySendSummary {
    let (waiting, until) = match summary.waiting {
        None => (MaydayWaiting::None, 0),
        Some(Waiting::OtherSender) => (MaydayWaiting::OtherSender, 0),
        Some(Waiting::NoEndpoint) => (MaydayWaiting::NoEndpoint, 0),
        Some(Waiting::NoOneToAsk) => (MaydayWaiting::NoOneToAsk, 0),
        Some(Waiting::Throttled(until)) => (MaydayWaiting::Throttled, until.unix_timestamp()),
        Some(_) => (MaydayWaiting::SendFailed, 0),
    };
    MaydaySendSummary {
        sent: summary.sent.len(),
        declined: summary.declined,
        deleted_by_policy: summary.deleted_by_policy,
        discarded: summary.discarded,
        still_pending: summary.still_pending,
        waiting,
        throttled_until_unix: until,
        counted: summary.counted.len(),
        fixed: summary
            .counted
            .iter()
            .filter(|c| matches!(c.answer, CrashSiteAnswer::Fixed { .. }))
            .count(),
    }
}

/// Asks about (per the consent policy) and sends every pending report. With
/// consent "ask", `consent` is called for each report (`NULL`: the built-in
/// terminal prompt, which asks only on a terminal). `out` (may be `NULL`) gets
/// what was done. Blocks until done.
///
/// # Safety
/// `client` a live client; `consent` `NULL` or a function that may be called with
/// `user_data` during this call; `out` `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_send_pending(
    client: *const MaydayClient,
    consent: MaydayConsentFn,
    user_data: *mut c_void,
    out: *mut MaydaySendSummary,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let client = unsafe { client_ref(client) }?;
        let summary = match consent {
            None => client.client.send_pending()?,
            Some(callback) => {
                let c = CCallback {
                    callback,
                    user_data,
                };
                let prompt = FnPrompt(move |s: &ReportSummary| {
                    let c = c;
                    ask_c(c.callback, c.user_data, s)
                });
                client.client.send_pending_with(&prompt)?
            }
        };
        // SAFETY: the caller promises NULL or a writable summary.
        if let Some(out) = unsafe { out.as_mut() } {
            *out = send_summary(&summary);
        }
        Ok(())
    })
}

/// Calls `each` once per sent report (receipt), oldest first.
///
/// # Safety
/// `client` a live client; `each` a function that may be called with `user_data`
/// during this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_sent_reports(
    client: *const MaydayClient,
    each: MaydaySentReportFn,
    user_data: *mut c_void,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let client = unsafe { client_ref(client) }?;
        let each = each.ok_or_else(|| invalid("callback is NULL"))?;
        let mut reports: Vec<SentReport> = client.client.sent_reports()?;
        reports.sort_by_key(|r| r.sent_at);
        for report in reports {
            let mut strings = Strings::default();
            let c_report = MaydaySentReport {
                crash_id: strings.add(&report.crash_id),
                sent_at: strings.add(
                    &report
                        .sent_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                ),
                product: strings.add(&report.product),
                version: strings.add(&report.version),
                forget_url: strings.add_opt(report.forget_url.as_deref()),
                scrubbed: strings.add(&report.scrubbed.describe()),
            };
            // SAFETY: the caller's callback with its user data; the report lives
            // until it returns.
            unsafe { each(&c_report, user_data) };
        }
        Ok(())
    })
}

/// Asks the server to delete one sent report and removes its receipt.
/// `MAYDAY_STATUS_UNKNOWN_REPORT` when no receipt has this id.
///
/// # Safety
/// `client` a live client; `crash_id` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_forget(
    client: *const MaydayClient,
    crash_id: *const c_char,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let (client, crash_id) = unsafe { (client_ref(client)?, text(crash_id, "crash id")?) };
        client.client.forget(crash_id)?;
        Ok(())
    })
}

/// Asks the server to delete every sent report; `forgotten` (may be `NULL`) gets
/// how many were.
///
/// # Safety
/// `client` a live client; `forgotten` `NULL` or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mayday_forget_all(
    client: *const MaydayClient,
    forgotten: *mut size_t,
) -> MaydayStatus {
    guarded(|| {
        // SAFETY: passed on from the caller.
        let client = unsafe { client_ref(client) }?;
        let n = client.client.forget_all()?;
        // SAFETY: the caller promises NULL or a writable size_t.
        if let Some(out) = unsafe { forgotten.as_mut() } {
            *out = n;
        }
        Ok(())
    })
}

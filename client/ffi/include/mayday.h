#ifndef MAYDAY_H
#define MAYDAY_H

/* Written from client/ffi/src/lib.rs by cbindgen; do not edit. Regenerate: MAYDAY_BLESS=1 cargo test --workspace --test header */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Consent policy: ask about each report (the default).
#define MAYDAY_CONSENT_ASK 0

// Consent policy: send every report without asking.
#define MAYDAY_CONSENT_ALWAYS 1

// Consent policy: send nothing; pending reports are deleted, new ones not kept.
#define MAYDAY_CONSENT_NEVER 2

// A consent callback's answer: send this report.
#define MAYDAY_DECISION_SEND 0

// A consent callback's answer: send this report and every later one.
#define MAYDAY_DECISION_ALWAYS 1

// A consent callback's answer: delete this report unsent.
#define MAYDAY_DECISION_DONT_SEND 2

// A consent callback's answer: send nothing ever; deletes every pending report.
#define MAYDAY_DECISION_NEVER 3

// A consent callback's answer: no answer now; the report stays pending.
#define MAYDAY_DECISION_NO_ANSWER 4

// What a call achieved.
typedef enum MaydayStatus {
  // Done.
  MAYDAY_STATUS_OK = 0,
  // A required pointer was `NULL`, a string not UTF-8, or a number out of range.
  MAYDAY_STATUS_INVALID_ARGUMENT = 1,
  // The configuration is missing a setting or has an invalid one, or the call
  // needs [`mayday_install`] first.
  MAYDAY_STATUS_CONFIG = 2,
  // A file in the data dir could not be read or written.
  MAYDAY_STATUS_IO = 3,
  // Crash monitoring could not be started or reached.
  MAYDAY_STATUS_INSTALL = 4,
  // No report with this id is pending or sent.
  MAYDAY_STATUS_UNKNOWN_REPORT = 5,
  // The server could not be reached.
  MAYDAY_STATUS_NETWORK = 6,
  // The server refused the request or answered something unreadable.
  MAYDAY_STATUS_SERVER = 7,
  // A bug: a panic inside the library, caught at the boundary.
  MAYDAY_STATUS_PANIC = 8,
  // Any other error (see [`mayday_last_error`]).
  MAYDAY_STATUS_OTHER = 9,
} MaydayStatus;

// Why pending reports still wait after [`mayday_send_pending`]. (Its variants
// are the Rust client's `Waiting` for C: alike by design, as are the statuses.)
typedef enum MaydayWaiting {
  // Nothing waits.
  MAYDAY_WAITING_NONE = 0,
  // Another process of the application is sending them.
  MAYDAY_WAITING_OTHER_SENDER = 1,
  // No endpoint is configured.
  MAYDAY_WAITING_NO_ENDPOINT = 2,
  // Consent is "ask" and no one could be asked (no callback answer, no terminal).
  MAYDAY_WAITING_NO_ONE_TO_ASK = 3,
  // The server asked to wait (`throttled_until_unix` says until when).
  MAYDAY_WAITING_THROTTLED = 4,
  // Sending failed; they are tried again next time.
  MAYDAY_WAITING_SEND_FAILED = 5,
} MaydayWaiting;

// Settings for a client, collected before [`mayday_install`] or [`mayday_open`].
typedef struct MaydayBuilder MaydayBuilder;

// A client: sends, lists and forgets reports; monitors crashes when installed.
typedef struct MaydayClient MaydayClient;

// One annotation, as it would be sent.
typedef struct MaydayAnnotation {
  // The key.
  const char *key;
  // The value.
  const char *value;
} MaydayAnnotation;

// Everything a pending report contains, as it would leave the machine: what the
// consent callback shows the user. `NULL` strings are facts the dump does not
// hold. (Field by field the Rust client's `ReportSummary`, for C: alike by
// design; a test checks that the two agree.)
typedef struct MaydayReportSummary {
  // The local id of the pending report.
  const char *id;
  // Product name.
  const char *product;
  // Product version.
  const char *version;
  // When the crash happened (RFC 3339, UTC).
  const char *crashed_at;
  // Why it crashed, e.g. `SIGSEGV / SEGV_MAPERR`.
  const char *crash_reason;
  // The module (file name) of the crashing instruction.
  const char *crashing_module;
  // OS family and version.
  const char *os;
  // Where the report would be sent.
  const char *endpoint;
  // Threads whose registers and stacks the dump holds.
  size_t threads;
  // Loaded modules listed (names, versions, build ids).
  size_t modules;
  // Bytes of captured stack memory.
  uint64_t stack_bytes;
  // Whether the process environment is in the dump.
  bool has_environment;
  // Whether the command line is in the dump.
  bool has_command_line;
  // Whether memory other than thread stacks is in the dump.
  bool has_heap;
  // Whether the dump was scrubbed on this machine.
  bool client_scrubbed;
  // Size of the dump that would be sent, in bytes.
  uint64_t size_bytes;
  // Every annotation, exactly as it would be sent.
  const struct MaydayAnnotation *annotations;
  // How many `annotations` there are.
  size_t annotation_count;
  // All of the above as the terminal prompt words it.
  const char *text;
} MaydayReportSummary;

// The consent callback: shown `summary` (valid until it returns), answers one of
// the `MAYDAY_DECISION_*` values. Called on the thread that called
// [`mayday_send_pending`], once per pending report while consent is "ask".
typedef int (*MaydayConsentFn)(const struct MaydayReportSummary *summary, void *user_data);

// What one [`mayday_send_pending`] call did.
typedef struct MaydaySendSummary {
  // Reports the server acknowledged.
  size_t sent;
  // Reports the user declined (deleted).
  size_t declined;
  // Reports deleted because consent is "never".
  size_t deleted_by_policy;
  // Reports the server refused for good (deleted).
  size_t discarded;
  // Reports still pending.
  size_t still_pending;
  // Why they wait.
  enum MaydayWaiting waiting;
  // With [`MaydayWaiting::Throttled`]: until when (Unix seconds), else 0.
  int64_t throttled_until_unix;
  // Crashes of which only the summary was sent: the server counted them and
  // did not want their dumps, which were deleted.
  size_t counted;
  // Of those, crashes the server says are fixed in a newer version than the
  // app's: tell the user to update.
  size_t fixed;
} MaydaySendSummary;

// A report the server acknowledged: what the user needs to have it deleted.
typedef struct MaydaySentReport {
  // The server's report id, `bp-<uuid>`.
  const char *crash_id;
  // When it was sent (RFC 3339, UTC).
  const char *sent_at;
  // Product name.
  const char *product;
  // Product version.
  const char *version;
  // The page where the user deletes it in a browser, or `NULL`.
  const char *forget_url;
  // What the server's scrubbing removed, in words ("nothing" when nothing).
  const char *scrubbed;
} MaydaySentReport;

// Called once per sent report by [`mayday_sent_reports`]; `report` is valid
// until it returns.
typedef void (*MaydaySentReportFn)(const struct MaydaySentReport *report, void *user_data);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The message of the last failed call on this thread ("" after a success). Valid
// until the next call on this thread.
const char *mayday_last_error(void);

// A new builder with the client's defaults (consent "ask"). Free it with
// [`mayday_builder_free`] unless it is passed to [`mayday_install`] or
// [`mayday_open`].
struct MaydayBuilder *mayday_builder_new(void);

// Frees a builder that was not used.
//
// # Safety
// `builder` is `NULL` or from [`mayday_builder_new`], not yet consumed.
void mayday_builder_free(struct MaydayBuilder *builder);

// Sets the product name (required).
//
// # Safety
// `builder` as for [`mayday_builder_free`]; `product` a NUL-terminated string.
enum MaydayStatus mayday_builder_product(struct MaydayBuilder *builder, const char *product);

// Sets the product version (required).
//
// # Safety
// `builder` as for [`mayday_builder_free`]; `version` a NUL-terminated string.
enum MaydayStatus mayday_builder_version(struct MaydayBuilder *builder, const char *version);

// Sets the server's base URL (reports go to `<endpoint>/submit`).
//
// # Safety
// `builder` as for [`mayday_builder_free`]; `endpoint` a NUL-terminated string.
enum MaydayStatus mayday_builder_endpoint(struct MaydayBuilder *builder, const char *endpoint);

// Sets the directory for pending reports, receipts and the consent choice.
//
// # Safety
// `builder` as for [`mayday_builder_free`]; `dir` a NUL-terminated string.
enum MaydayStatus mayday_builder_data_dir(struct MaydayBuilder *builder, const char *dir);

// Sets the consent policy until the user chooses (`MAYDAY_CONSENT_*`).
//
// # Safety
// `builder` as for [`mayday_builder_free`].
enum MaydayStatus mayday_builder_consent(struct MaydayBuilder *builder, int consent);

// Adds an annotation sent with every report (the user sees it first).
//
// # Safety
// `builder` as for [`mayday_builder_free`]; `key` and `value` NUL-terminated.
enum MaydayStatus mayday_builder_annotation(struct MaydayBuilder *builder,
                                            const char *key,
                                            const char *value);

// Turns scrubbing on this machine before sending on (the default) or off.
//
// # Safety
// `builder` as for [`mayday_builder_free`].
enum MaydayStatus mayday_builder_client_scrub(struct MaydayBuilder *builder, bool on);

// Starts crash monitoring and returns the client (`NULL` on failure: see
// [`mayday_last_error`]). Call it first thing in `main`: the monitor is this
// executable started again with the same arguments, and in that process this
// call runs the monitor and exits instead of returning. Takes `builder`.
//
// # Safety
// `builder` as for [`mayday_builder_free`]; it is consumed.
struct MaydayClient *mayday_install(struct MaydayBuilder *builder);

// A client that sends and manages reports but does not monitor crashes (`NULL`
// on failure). Takes `builder`.
//
// # Safety
// `builder` as for [`mayday_builder_free`]; it is consumed.
struct MaydayClient *mayday_open(struct MaydayBuilder *builder);

// Stops crash monitoring (if installed) and frees the client.
//
// # Safety
// `client` is `NULL` or from [`mayday_install`] / [`mayday_open`]; no other
// thread uses it now or later.
void mayday_shutdown(struct MaydayClient *client);

// Sets an annotation for a crash from now on (installed clients only).
//
// # Safety
// `client` a live client; `key` and `value` NUL-terminated strings.
enum MaydayStatus mayday_set_annotation(const struct MaydayClient *client,
                                        const char *key,
                                        const char *value);

// Removes an annotation from a crash from now on (installed clients only).
//
// # Safety
// `client` a live client; `key` a NUL-terminated string.
enum MaydayStatus mayday_remove_annotation(const struct MaydayClient *client, const char *key);

// Sets the consent policy and remembers it (`MAYDAY_CONSENT_NEVER` deletes every
// pending report).
//
// # Safety
// `client` a live client.
enum MaydayStatus mayday_set_consent(const struct MaydayClient *client, int consent);

// Asks about (per the consent policy) and sends every pending report. With
// consent "ask", `consent` is called for each report (`NULL`: the built-in
// terminal prompt, which asks only on a terminal). `out` (may be `NULL`) gets
// what was done. Blocks until done.
//
// # Safety
// `client` a live client; `consent` `NULL` or a function that may be called with
// `user_data` during this call; `out` `NULL` or writable.
enum MaydayStatus mayday_send_pending(const struct MaydayClient *client,
                                      MaydayConsentFn consent,
                                      void *user_data,
                                      struct MaydaySendSummary *out);

// Calls `each` once per sent report (receipt), oldest first.
//
// # Safety
// `client` a live client; `each` a function that may be called with `user_data`
// during this call.
enum MaydayStatus mayday_sent_reports(const struct MaydayClient *client,
                                      MaydaySentReportFn each,
                                      void *user_data);

// Asks the server to delete one sent report and removes its receipt.
// `MAYDAY_STATUS_UNKNOWN_REPORT` when no receipt has this id.
//
// # Safety
// `client` a live client; `crash_id` a NUL-terminated string.
enum MaydayStatus mayday_forget(const struct MaydayClient *client, const char *crash_id);

// Asks the server to delete every sent report; `forgotten` (may be `NULL`) gets
// how many were.
//
// # Safety
// `client` a live client; `forgotten` `NULL` or writable.
enum MaydayStatus mayday_forget_all(const struct MaydayClient *client, size_t *forgotten);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* MAYDAY_H */

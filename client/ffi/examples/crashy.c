/* crashy, in C: a small application that crashes on purpose, with Mayday's
 * crash handler, as the Rust example `crashy` does.
 *
 *   crashy-c segv|abort|fpe|ill|bus   crash in that way (the report is queued)
 *   crashy-c send                      ask about (consent) and send what is pending
 *   crashy-c list                      list sent reports with their forget links
 *   crashy-c forget <CrashID>          have one sent report deleted
 *   crashy-c forget-all                have every sent report deleted
 *
 * Environment: MAYDAY_DATA_DIR (default ./crashy-c-data), MAYDAY_ENDPOINT,
 * MAYDAY_CONSENT=ask|always|never (default ask), MAYDAY_CLIENT_SCRUB=on|off;
 * CRASHY_ANSWER=send|always|dont-send|never|none makes `send` answer through a
 * consent callback (printing the summary it is shown) instead of the terminal.
 *
 * Build: cc -g crashy.c -I<include> -L<lib> -lmayday (pkg-config mayday).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mayday.h"

static int fail(const char *what) {
    fprintf(stderr, "crashy-c: %s: %s\n", what, mayday_last_error());
    return 1;
}

static MaydayBuilder *builder_from_env(void) {
    const char *dir = getenv("MAYDAY_DATA_DIR");
    const char *endpoint = getenv("MAYDAY_ENDPOINT");
    const char *consent = getenv("MAYDAY_CONSENT");
    const char *scrub = getenv("MAYDAY_CLIENT_SCRUB");
    int policy = MAYDAY_CONSENT_ASK;
    if (consent && strcmp(consent, "always") == 0) policy = MAYDAY_CONSENT_ALWAYS;
    if (consent && strcmp(consent, "never") == 0) policy = MAYDAY_CONSENT_NEVER;

    MaydayBuilder *b = mayday_builder_new();
    if (!b) return NULL;
    if (mayday_builder_product(b, "crashy-c") != MAYDAY_STATUS_OK ||
        mayday_builder_version(b, "1.0.0") != MAYDAY_STATUS_OK ||
        mayday_builder_data_dir(b, dir ? dir : "crashy-c-data") != MAYDAY_STATUS_OK ||
        mayday_builder_consent(b, policy) != MAYDAY_STATUS_OK ||
        mayday_builder_annotation(b, "channel", "example") != MAYDAY_STATUS_OK ||
        mayday_builder_annotation(b, "removed_later", "yes") != MAYDAY_STATUS_OK ||
        (endpoint && mayday_builder_endpoint(b, endpoint) != MAYDAY_STATUS_OK) ||
        (scrub && strcmp(scrub, "off") == 0 &&
         mayday_builder_client_scrub(b, false) != MAYDAY_STATUS_OK)) {
        mayday_builder_free(b);
        return NULL;
    }
    return b;
}

/* The crashes: functions of their own, so the crashing frame names them. */
__attribute__((noinline)) static void crash_segv(void) {
    volatile int *nowhere = (volatile int *)(uintptr_t)0x10;
    *nowhere = 42;
}

__attribute__((noinline)) static void crash_abort(void) { abort(); }

__attribute__((noinline)) static void crash_fpe(void) {
    volatile int zero = 0;
    volatile int n = 42 / zero;
    (void)n;
}

__attribute__((noinline)) static void crash_ill(void) { __builtin_trap(); }

__attribute__((noinline)) static void crash_bus(void) {
    char path[] = "/tmp/crashy-c-bus-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return;
    volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    unlink(path);
    if (page == MAP_FAILED || ftruncate(fd, 0) != 0) return;
    (void)page[0]; /* past the end of the file: SIGBUS */
}

/* The consent callback: prints what it is shown, answers CRASHY_ANSWER. */
static int answer_from_env(const MaydayReportSummary *s, void *user_data) {
    const char *answer = (const char *)user_data;
    printf("summary id=%s\n", s->id);
    printf("summary product=%s\n", s->product);
    printf("summary version=%s\n", s->version);
    printf("summary crashed_at=%s\n", s->crashed_at);
    printf("summary crash_reason=%s\n", s->crash_reason ? s->crash_reason : "(none)");
    printf("summary crashing_module=%s\n", s->crashing_module ? s->crashing_module : "(none)");
    printf("summary os=%s\n", s->os ? s->os : "(none)");
    printf("summary endpoint=%s\n", s->endpoint ? s->endpoint : "(none)");
    printf("summary threads=%zu\n", s->threads);
    printf("summary modules=%zu\n", s->modules);
    printf("summary stack_bytes=%llu\n", (unsigned long long)s->stack_bytes);
    printf("summary has_environment=%d\n", s->has_environment);
    printf("summary has_command_line=%d\n", s->has_command_line);
    printf("summary has_heap=%d\n", s->has_heap);
    printf("summary client_scrubbed=%d\n", s->client_scrubbed);
    printf("summary size_bytes=%llu\n", (unsigned long long)s->size_bytes);
    for (size_t i = 0; i < s->annotation_count; i++)
        printf("summary annotation %s=%s\n", s->annotations[i].key, s->annotations[i].value);
    if (strcmp(answer, "send") == 0) return MAYDAY_DECISION_SEND;
    if (strcmp(answer, "always") == 0) return MAYDAY_DECISION_ALWAYS;
    if (strcmp(answer, "dont-send") == 0) return MAYDAY_DECISION_DONT_SEND;
    if (strcmp(answer, "never") == 0) return MAYDAY_DECISION_NEVER;
    return MAYDAY_DECISION_NO_ANSWER;
}

static void print_sent(const MaydaySentReport *r, void *user_data) {
    (void)user_data;
    printf("sent %s %s\n", r->crash_id, r->sent_at);
    if (r->forget_url) printf("  to have it deleted, open %s\n", r->forget_url);
}

int main(int argc, char **argv) {
    const char *command = argc > 1 ? argv[1] : "";
    MaydayBuilder *b = builder_from_env();
    if (!b) return fail("configuration");

    if (strcmp(command, "segv") == 0 || strcmp(command, "abort") == 0 ||
        strcmp(command, "fpe") == 0 || strcmp(command, "ill") == 0 ||
        strcmp(command, "bus") == 0) {
        /* First thing: in the monitor process this call never returns. */
        MaydayClient *client = mayday_install(b);
        if (!client) return fail("install");
        if (mayday_set_annotation(client, "phase", "crashing") != MAYDAY_STATUS_OK ||
            mayday_remove_annotation(client, "removed_later") != MAYDAY_STATUS_OK)
            return fail("annotation");
        printf("crashy-c: crashing (%s)\n", command);
        fflush(stdout);
        if (strcmp(command, "segv") == 0) crash_segv();
        if (strcmp(command, "abort") == 0) crash_abort();
        if (strcmp(command, "fpe") == 0) crash_fpe();
        if (strcmp(command, "ill") == 0) crash_ill();
        if (strcmp(command, "bus") == 0) crash_bus();
        fprintf(stderr, "crashy-c: did not crash\n");
        mayday_shutdown(client);
        return 1;
    }

    MaydayClient *client = mayday_open(b);
    if (!client) return fail("open");
    int status = 0;
    if (strcmp(command, "send") == 0) {
        const char *answer = getenv("CRASHY_ANSWER");
        MaydaySendSummary summary;
        if (mayday_send_pending(client, answer ? answer_from_env : NULL, (void *)answer,
                                &summary) != MAYDAY_STATUS_OK) {
            status = fail("send");
        } else {
            mayday_sent_reports(client, print_sent, NULL);
            printf("sent %zu, declined %zu, deleted by policy %zu, discarded by server %zu, "
                   "pending %zu, waiting %d, counted without a dump %zu (fixed %zu)\n",
                   summary.sent, summary.declined, summary.deleted_by_policy, summary.discarded,
                   summary.still_pending, (int)summary.waiting, summary.counted, summary.fixed);
        }
    } else if (strcmp(command, "list") == 0) {
        if (mayday_sent_reports(client, print_sent, NULL) != MAYDAY_STATUS_OK)
            status = fail("list");
    } else if (strcmp(command, "forget") == 0 && argc > 2) {
        if (mayday_forget(client, argv[2]) != MAYDAY_STATUS_OK) status = fail("forget");
        else printf("forgotten %s\n", argv[2]);
    } else if (strcmp(command, "forget-all") == 0) {
        size_t n = 0;
        if (mayday_forget_all(client, &n) != MAYDAY_STATUS_OK) status = fail("forget-all");
        else printf("forgotten %zu\n", n);
    } else {
        fprintf(stderr, "usage: crashy-c segv|abort|fpe|ill|bus|send|list|forget <id>|forget-all\n");
        status = 2;
    }
    mayday_shutdown(client);
    return status;
}

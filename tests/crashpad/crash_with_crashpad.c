/*
 * A C program that crashes and has a real, unmodified Crashpad handler dump and
 * upload it, the way Crashpad's own Linux client does it when asked to start the
 * handler at crash time (CrashpadClient::StartHandlerAtCrash):
 *
 *   - before the crash, as Settings::SetUploadsEnabled(true) would, it writes
 *     <database>/settings.dat with uploads enabled, and it builds the handler's
 *     command line, ending with --trace-parent-with-exception=<address of an
 *     ExceptionInformation in this process>;
 *   - in its SIGSEGV handler it fills that ExceptionInformation (the siginfo and
 *     the ucontext the kernel passed, the crashing thread's id), lets its
 *     descendants ptrace it (PR_SET_PTRACER), forks and execs the handler, and
 *     waits for it; the handler reads this process through ptrace, writes the
 *     minidump into the database and uploads it;
 *   - then it restores the default action and returns, so the fault happens
 *     again and the process dies of SIGSEGV.
 *
 * Usage: crash_with_crashpad HANDLER DATABASE URL [KEY=VALUE | --FLAG ...]
 * Each KEY=VALUE becomes an --annotation of the handler; an argument starting
 * with "--" is one of the handler's own flags, passed as it is. The crash is a null
 * write in crash_with_crashpad_null_write(), called from main() through
 * crash_with_crashpad_caller(), so the crashing thread's stack is recognisable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* crashpad::ExceptionInformation (util/linux/exception_information.h): packed,
 * two LinuxVMAddress (64-bit) and a pid_t. */
struct __attribute__((packed)) exception_information {
    uint64_t siginfo_address;
    uint64_t context_address;
    pid_t thread_id;
};

/* crashpad::SettingsReader::Data (client/settings.cc), as written by
 * Settings::SetUploadsEnabled(true) on a new database. */
struct settings_data {
    uint32_t magic;   /* 'CPds' */
    uint32_t version; /* 1 */
    uint32_t options; /* bit 0: uploads enabled */
    uint32_t padding_0;
    int64_t last_upload_attempt_time;
    uint8_t client_id[16]; /* crashpad::UUID */
};

#define SETTINGS_MAGIC 0x43506473u /* 'CPds' as a multi-character constant */
#define SETTINGS_VERSION 1u
#define UPLOADS_ENABLED 1u

#define MAX_ARGS 64

static struct exception_information exception_info;
static char *handler_argv[MAX_ARGS + 1];

static void die(const char *what) {
    fprintf(stderr, "crash_with_crashpad: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* A random client id, as crashpad::UUID::InitializeWithNew makes it. */
static void new_client_id(uint8_t id[16]) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, id, 16) != 16) {
        die("/dev/urandom");
    }
    close(fd);
    /* data_3 is the little-endian uint16 at bytes 6..7: version 4. */
    id[7] = (uint8_t)(0x40 | (id[7] & 0x0f));
    /* data_4[0]: the RFC 4122 variant. */
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
}

/* <database>/settings.dat with uploads enabled, as the client library leaves it. */
static void enable_uploads(const char *database) {
    if (mkdir(database, 0700) != 0 && errno != EEXIST) {
        die(database);
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/settings.dat", database) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        die(database);
    }
    struct settings_data settings;
    memset(&settings, 0, sizeof settings);
    settings.magic = SETTINGS_MAGIC;
    settings.version = SETTINGS_VERSION;
    settings.options = UPLOADS_ENABLED;
    new_client_id(settings.client_id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        die(path);
    }
    if (write(fd, &settings, sizeof settings) != (ssize_t)sizeof settings) {
        die(path);
    }
    close(fd);
}

static char *format(const char *fmt, const char *value) {
    char *out = NULL;
    if (asprintf(&out, fmt, value) < 0) {
        die("asprintf");
    }
    return out;
}

/* The signal handler: only async-signal-safe calls from here on. */
static void on_crash(int signo, siginfo_t *info, void *context) {
    exception_info.siginfo_address = (uint64_t)(uintptr_t)info;
    exception_info.context_address = (uint64_t)(uintptr_t)context;
    exception_info.thread_id = (pid_t)syscall(SYS_gettid);

    /* This process and its descendants (the handler) may ptrace it. */
    prctl(PR_SET_PTRACER, getpid(), 0, 0, 0);
    pid_t child = fork();
    if (child == 0) {
        execv(handler_argv[0], handler_argv);
        _exit(127);
    }
    if (child > 0) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
    }
    prctl(PR_SET_PTRACER, 0, 0, 0, 0);

    /* Returning re-runs the faulting write with the default action: the
     * process dies of the signal, as it would have without a handler. */
    signal(signo, SIG_DFL);
}

__attribute__((noinline)) void crash_with_crashpad_null_write(void) {
    volatile int *nowhere = NULL;
    *nowhere = 42;
}

__attribute__((noinline)) void crash_with_crashpad_caller(void) {
    crash_with_crashpad_null_write();
    /* Not a tail call, so this frame stays on the stack. */
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    if (argc < 4 || argc - 4 > MAX_ARGS - 6) {
        fprintf(stderr, "usage: %s HANDLER DATABASE URL [KEY=VALUE | --FLAG ...]\n", argv[0]);
        return 2;
    }
    const char *handler = argv[1];
    const char *database = argv[2];
    const char *url = argv[3];
    enable_uploads(database);

    int n = 0;
    handler_argv[n++] = (char *)handler;
    handler_argv[n++] = format("--database=%s", database);
    handler_argv[n++] = format("--url=%s", url);
    handler_argv[n++] = "--no-rate-limit";
    for (int i = 4; i < argc; i++) {
        handler_argv[n++] =
            strncmp(argv[i], "--", 2) == 0 ? argv[i] : format("--annotation=%s", argv[i]);
    }
    char address[64];
    snprintf(address, sizeof address, "--trace-parent-with-exception=%p", (void *)&exception_info);
    handler_argv[n++] = address;
    handler_argv[n] = NULL;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_crash;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0) {
        die("sigaction");
    }

    crash_with_crashpad_caller();
    return 0;
}

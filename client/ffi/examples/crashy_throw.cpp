// A C++ application that dies of an uncaught exception (std::terminate, then
// abort()), with Mayday's crash handler installed first thing in main.
//
//   crashy-throw          throw and crash (the report is queued)
//
// Environment as for crashy.c (MAYDAY_DATA_DIR, MAYDAY_ENDPOINT, MAYDAY_CONSENT).
// Build: c++ -g crashy_throw.cpp -I<include> -L<lib> -lmayday (pkg-config mayday).
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "mayday.h"

[[noreturn]] __attribute__((noinline)) static void load_level(const char *name) {
    throw std::runtime_error(std::string("level not found: ") + name);
}

int main() {
    MaydayBuilder *b = mayday_builder_new();
    const char *dir = std::getenv("MAYDAY_DATA_DIR");
    const char *endpoint = std::getenv("MAYDAY_ENDPOINT");
    if (!b || mayday_builder_product(b, "crashy-throw") != MAYDAY_STATUS_OK ||
        mayday_builder_version(b, "1.0.0") != MAYDAY_STATUS_OK ||
        mayday_builder_data_dir(b, dir ? dir : "crashy-throw-data") != MAYDAY_STATUS_OK ||
        (endpoint && mayday_builder_endpoint(b, endpoint) != MAYDAY_STATUS_OK)) {
        std::fprintf(stderr, "crashy-throw: %s\n", mayday_last_error());
        return 1;
    }
    // First thing: in the monitor process this call never returns.
    MaydayClient *client = mayday_install(b);
    if (!client) {
        std::fprintf(stderr, "crashy-throw: %s\n", mayday_last_error());
        return 1;
    }
    std::printf("crashy-throw: throwing\n");
    std::fflush(stdout);
    load_level("intro");
}

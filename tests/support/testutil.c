/*
 * testutil.c -- see testutil.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *tu_scratch_dir(const char *name)
{
    static char path[1024];
    const char *base = getenv("JET_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0700);
    snprintf(path, sizeof path, "%s/%s.%d", base, name, (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not clear %s\n", path);
    if (mkdir(path, 0700) != 0) {
        perror(path);
        abort();
    }
    return path;
}

uint64_t tu_seed(const char *test)
{
    const char *s = getenv("SEED");
    uint64_t seed;
    if (s && *s) seed = strtoull(s, NULL, 0);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    if (seed == 0) seed = 1;
    fprintf(stderr, "%s: SEED=%llu\n", test, (unsigned long long)seed);
    return seed;
}

uint64_t tu_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

long tu_count(const char *name, long ci, long lng)
{
    const char *v = getenv(name);
    if (v && *v) return atol(v);
    const char *l = getenv("JET_LONG");
    if (l && *l == '1') return lng;
    return ci;
}

int tu_run(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

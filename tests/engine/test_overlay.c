/*
 * test_overlay.c -- engine/overlay.c: a mapped file behaves as a real file
 * would (random writes, truncations and reads compared with a real copy,
 * across chunk edges, past the end, in memory and spilled), while its
 * original never changes; renames and unlinks of mapped names; paths
 * outside the scratch directory pass through; the scratch directory is
 * gone after ovl_destroy and the VFS in force is the one before.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"
#include "overlay.h"
#include "testutil.h"

static char dir[1024];

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Random writes, truncations and reads on an overlay file and on a real
 * copy, with the memory limit small enough that most chunks spill. */
static void random_ops(uint64_t mem_limit, const char *tag)
{
    uint64_t seed = tu_seed(tag), st = seed;
    char orig[1200], real[1200], mapped[1400];
    size_t n0 = 50000 + (size_t)(tu_rand(&st) % 30000);
    uint8_t *b = malloc(n0);
    for (size_t i = 0; i < n0; i++) b[i] = (uint8_t)tu_rand(&st);
    snprintf(orig, sizeof orig, "%s/orig-%s", dir, tag);
    snprintf(real, sizeof real, "%s/real-%s", dir, tag);
    write_file(orig, b, n0);
    write_file(real, b, n0);
    uint64_t before = tu_file_hash(orig, 0, NULL);
    struct ovl *o;
    CU_ASSERT_FATAL(ovl_create(dir, mem_limit, &o) >= 0);
    snprintf(mapped, sizeof mapped, "%s/f.db", ovl_dir(o));
    CU_ASSERT_FATAL(ovl_map(o, mapped, orig) >= 0);
    CU_ASSERT(os_exists(mapped));
    int fo, fr;
    CU_ASSERT_FATAL(os_open(mapped, OS_OPEN_READ | OS_OPEN_WRITE, &fo) >= 0);
    CU_ASSERT_FATAL(os_open(real, OS_OPEN_READ | OS_OPEN_WRITE, &fr) >= 0);
    uint8_t *w = malloc(40000), *ra = malloc(40000), *rb = malloc(40000);
    long ops = tu_count("OVERLAY_OPS", 3000, 30000);
    int mismatches = 0;
    uint64_t max_spilled = 0; /* a truncation may drop every spilled chunk by the end */
    for (long i = 0; i < ops && !mismatches; i++) {
        uint64_t r = tu_rand(&st) % 100, off = tu_rand(&st) % 100000;
        size_t n = 1 + (size_t)(tu_rand(&st) % 20000);
        if (r < 45) {
            for (size_t k = 0; k < n; k++) w[k] = (uint8_t)tu_rand(&st);
            CU_ASSERT_FATAL(os_pwrite(fo, w, n, off) >= 0 && os_pwrite(fr, w, n, off) >= 0);
        } else if (r < 50) {
            uint64_t size = tu_rand(&st) % 90000;
            CU_ASSERT_FATAL(os_ftruncate(fo, size) >= 0 && os_ftruncate(fr, size) >= 0);
        } else {
            size_t ga = 0, gb = 0;
            CU_ASSERT_FATAL(os_pread(fo, ra, n, off, &ga) >= 0 && os_pread(fr, rb, n, off, &gb) >= 0);
            if (ga != gb || memcmp(ra, rb, ga) != 0) {
                fprintf(stderr, "%s: op %ld read %zu at %llu: got %zu bytes, a real file %zu (seed %llu)\n", tag, i, n,
                        (unsigned long long)off, ga, gb, (unsigned long long)seed);
                mismatches++;
            }
        }
        uint64_t sa = 0, sb = 0;
        CU_ASSERT_FATAL(os_fsize(fo, &sa) >= 0 && os_fsize(fr, &sb) >= 0);
        uint64_t ub, us;
        ovl_usage(o, &ub, &us);
        if (us > max_spilled) max_spilled = us;
        if (sa != sb) {
            fprintf(stderr, "%s: op %ld: size %llu, a real file's %llu (seed %llu)\n", tag, i, (unsigned long long)sa,
                    (unsigned long long)sb, (unsigned long long)seed);
            mismatches++;
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    uint64_t bytes, spilled;
    ovl_usage(o, &bytes, &spilled);
    CU_ASSERT(bytes > 0);
    if (mem_limit && mem_limit < 65536) CU_ASSERT(max_spilled > 0);
    if (!mem_limit) CU_ASSERT_EQUAL(spilled, 0);
    CU_ASSERT(os_fsync(fo) >= 0);
    os_close(fo);
    os_close(fr);
    CU_ASSERT_EQUAL(tu_file_hash(orig, 0, NULL), before); /* the original is never written */
    char scratch[1024];
    snprintf(scratch, sizeof scratch, "%s", ovl_dir(o));
    ovl_destroy(o);
    struct stat sb;
    CU_ASSERT(stat(scratch, &sb) != 0);
    CU_ASSERT(os_vfs() == os_vfs_default());
    free(b);
    free(w);
    free(ra);
    free(rb);
}

static void test_overlay_matches_a_real_file(void) { random_ops(0, "mem"); }
static void test_overlay_matches_a_real_file_spilled(void) { random_ops(16384, "spill"); }

static void test_overlay_names(void)
{
    char orig[1200], a[1400], b2[1400], outside[1200];
    uint8_t bytes[10000];
    memset(bytes, 'o', sizeof bytes);
    snprintf(orig, sizeof orig, "%s/names-orig", dir);
    write_file(orig, bytes, sizeof bytes);
    struct ovl *o;
    CU_ASSERT_FATAL(ovl_create(dir, 0, &o) >= 0);
    snprintf(a, sizeof a, "%s/a.log", ovl_dir(o));
    snprintf(b2, sizeof b2, "%s/b.log", ovl_dir(o));
    CU_ASSERT_FATAL(ovl_map(o, a, orig) >= 0);
    CU_ASSERT(ovl_map(o, orig, orig) == JET_errInvalidPath); /* outside the scratch directory */
    int fd;
    /* Exclusive creation of a mapped name fails as for an existing file. */
    CU_ASSERT(os_open(a, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE | OS_OPEN_EXCL, &fd) < 0);
    CU_ASSERT_FATAL(os_open(a, OS_OPEN_READ | OS_OPEN_WRITE, &fd) >= 0);
    CU_ASSERT(os_pwrite(fd, "XY", 2, 100) >= 0);
    struct os_identity id;
    CU_ASSERT(os_identity(fd, a, &id) >= 0 && id.size == sizeof bytes && !id.path_missing && !id.path_other);
    /* Renamed: the new name reads the same file; the old one is gone. */
    CU_ASSERT(os_rename(a, b2) >= 0);
    CU_ASSERT(!os_exists(a) && os_exists(b2));
    CU_ASSERT(os_identity(fd, b2, &id) >= 0 && !id.path_missing && !id.path_other);
    os_close(fd);
    CU_ASSERT_FATAL(os_open(b2, OS_OPEN_READ, &fd) >= 0);
    char got[4] = {0};
    CU_ASSERT(os_pread_full(fd, got, 3, 99) >= 0 && !memcmp(got, "oXY", 3));
    os_close(fd);
    CU_ASSERT(os_open(a, OS_OPEN_READ, &fd) == JET_errFileNotFound);
    /* Unlinked: no longer there. */
    CU_ASSERT(os_unlink(b2) >= 0);
    CU_ASSERT(!os_exists(b2));
    CU_ASSERT(os_open(b2, OS_OPEN_READ, &fd) == JET_errFileNotFound);
    /* A file the engine creates in the scratch directory is an ordinary one;
     * a path elsewhere passes through (written for real). */
    snprintf(outside, sizeof outside, "%s/outside", dir);
    CU_ASSERT_FATAL(os_open(outside, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd) >= 0);
    CU_ASSERT(os_pwrite(fd, "real", 4, 0) >= 0);
    os_close(fd);
    size_t n = 0;
    char *text = tu_slurp(outside, &n);
    CU_ASSERT(text && n == 4 && !memcmp(text, "real", 4));
    free(text);
    char scratch[1024];
    snprintf(scratch, sizeof scratch, "%s", ovl_dir(o));
    ovl_destroy(o);
    struct stat sb;
    CU_ASSERT(stat(scratch, &sb) != 0);
    text = tu_slurp(orig, &n);
    CU_ASSERT(text && n == sizeof bytes && !memcmp(text, bytes, n));
    free(text);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("overlay"));
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("overlay", NULL, NULL);
    CU_add_test(su, "a mapped file reads as a real file would", test_overlay_matches_a_real_file);
    CU_add_test(su, "the same, spilled", test_overlay_matches_a_real_file_spilled);
    CU_add_test(su, "mapped names: exclusive create, rename, unlink, pass-through", test_overlay_names);
    return tu_run();
}

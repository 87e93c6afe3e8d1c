/*
 * test_delta.c -- engine/delta.c: the byte-range deltas the log carries.
 * Random page versions round-trip; unchanged pages cost a 4-byte delta; the
 * checksum and stamp never travel; malformed deltas are refused whole.
 */
#include <stdlib.h>
#include <string.h>

#include "delta.h"
#include "page.h"
#include "testutil.h"

#define PS 8192u

static uint8_t a[PS], b[PS], c[PS], enc[PS + 64];

static void check_roundtrip(const uint8_t *before, const uint8_t *after)
{
    size_t n = delta_encode(before, after, PS, enc);
    CU_ASSERT_FATAL(n <= delta_max_size(PS));
    if (before) memcpy(c, before, PS);
    else memset(c, 0, PS);
    CU_ASSERT_FATAL(delta_apply(c, PS, enc, n, NULL, NULL) == JET_errSuccess);
    /* Equal everywhere but the checksum and the stamp, which are not part
     * of a version (pages are sealed when written; redo stamps). */
    CU_ASSERT(memcmp(c + DELTA_FIRST_BYTE, after + DELTA_FIRST_BYTE, DELTA_STAMP_OFF - DELTA_FIRST_BYTE) == 0);
    CU_ASSERT(memcmp(c + DELTA_STAMP_END, after + DELTA_STAMP_END, PS - DELTA_STAMP_END) == 0);
}

static void test_random_versions_round_trip(void)
{
    uint64_t st = tu_seed("delta_roundtrip");
    for (int trial = 0; trial < 2000; trial++) {
        for (unsigned i = 0; i < PS; i++) a[i] = (uint8_t)tu_rand(&st);
        memcpy(b, a, PS);
        /* A few edits of random lengths, as B+tree changes are. */
        int edits = (int)(tu_rand(&st) % 8);
        for (int e = 0; e < edits; e++) {
            unsigned off = (unsigned)(tu_rand(&st) % PS), len = (unsigned)(tu_rand(&st) % 300);
            if (off + len > PS) len = PS - off;
            for (unsigned i = 0; i < len; i++) b[off + i] = (uint8_t)tu_rand(&st);
        }
        check_roundtrip(a, b);
        check_roundtrip(NULL, b);
    }
}

static void test_small_change_small_delta(void)
{
    memset(a, 7, PS);
    memcpy(b, a, PS);
    size_t n = delta_encode(a, b, PS, enc);
    CU_ASSERT_EQUAL(n, DELTA_RANGES_HDR); /* unchanged: no range */
    /* The checksum and the stamp are never carried. */
    memset(b, 0xEE, 8);
    memset(b + DELTA_STAMP_OFF, 0xEE, 8);
    CU_ASSERT_EQUAL(delta_encode(a, b, PS, enc), DELTA_RANGES_HDR);
    /* A 200-byte value and a 2-byte slot change: two ranges, ~210 bytes. */
    memcpy(b, a, PS);
    memset(b + 5000, 1, 200);
    b[40] = 9;
    b[41] = 9;
    n = delta_encode(a, b, PS, enc);
    CU_ASSERT_EQUAL(n, DELTA_RANGES_HDR + 2 * DELTA_RANGE_HDR + 202);
    /* Changes a few bytes apart share a range: cheaper than a header. */
    memcpy(b, a, PS);
    b[100] = 1;
    b[104] = 1;
    CU_ASSERT_EQUAL(delta_encode(a, b, PS, enc), DELTA_RANGES_HDR + DELTA_RANGE_HDR + 5);
    /* The worst case (a change every gap) stays within the bound. */
    for (unsigned i = DELTA_STAMP_END; i < PS; i += DELTA_MERGE_GAP + 1) b[i] ^= 0xFF;
    check_roundtrip(a, b);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static size_t one_range(uint8_t *d, unsigned off, unsigned len)
{
    put16(d, 1);
    put16(d + 2, 0);
    put16(d + 4, off);
    put16(d + 6, len);
    memset(d + 8, 0x42, len);
    return 8 + len;
}

static void test_malformed_deltas_are_refused_whole(void)
{
    uint8_t d[PS + 64];
    memset(a, 1, PS);
    memcpy(c, a, PS);
    struct { unsigned off, len; } bad[] = {{0, 4}, {4, 8}, {12, 8}, {16, 1}, {20, 8}, {PS - 2, 4}, {PS, 1}, {100, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = one_range(d, bad[i].off, bad[i].len);
        TU_CHECK_ERR(delta_apply(c, PS, d, n, NULL, NULL), JET_errLogFileCorrupt);
    }
    size_t n = one_range(d, 100, 10);
    TU_CHECK_ERR(delta_apply(c, PS, d, n - 1, NULL, NULL), JET_errLogFileCorrupt); /* cut short */
    TU_CHECK_ERR(delta_apply(c, PS, d, n + 1, NULL, NULL), JET_errLogFileCorrupt); /* bytes left over */
    TU_CHECK_ERR(delta_apply(c, PS, d, 2, NULL, NULL), JET_errLogFileCorrupt);
    /* Out of order: the second range starts before the first ends, and the
     * first range (valid on its own) is not applied either. */
    put16(d, 2);
    put16(d + 2, 0);
    put16(d + 4, 200), put16(d + 6, 10), memset(d + 8, 0x55, 10);
    put16(d + 18, 205), put16(d + 20, 4), memset(d + 22, 0x55, 4);
    TU_CHECK_ERR(delta_apply(c, PS, d, 26, NULL, NULL), JET_errLogFileCorrupt);
    CU_ASSERT(memcmp(c, a, PS) == 0);
    /* A good one applies, and says what it carried. */
    n = one_range(d, 300, 20);
    unsigned nr = 0;
    size_t bytes = 0;
    TU_CHECK_ERR(delta_apply(c, PS, d, n, &nr, &bytes), JET_errSuccess);
    CU_ASSERT_EQUAL(nr, 1);
    CU_ASSERT_EQUAL(bytes, 20);
    CU_ASSERT_EQUAL(c[300], 0x42);
    CU_ASSERT_EQUAL(c[299], 1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("delta", NULL, NULL);
    CU_add_test(su, "test_random_versions_round_trip", test_random_versions_round_trip);
    CU_add_test(su, "test_small_change_small_delta", test_small_change_small_delta);
    CU_add_test(su, "test_malformed_deltas_are_refused_whole", test_malformed_deltas_are_refused_whole);
    return tu_run();
}

/*
 * test_chain.c -- engine/chain.c's chain_order: the backups that the sets
 * given to a restore hold, whatever their layout, ordered into the chain
 * from the first set's full to the newest backup by predecessor id.  Given
 * in any order; an aborted session (a fork: the next session follows the
 * same predecessor) and a superseded differential are left off; a missing
 * link is refused saying between which two backups (generations, begin
 * times, ids); no full in the first set, a full only in a later set, a
 * chain to another full, a cycle, each refused.  Also the names a set's
 * manifest goes under (manifest_session_name, manifest_is_name).
 */
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "testutil.h"

/* One backup as its manifest says: id, predecessor, type, generations,
 * begin (seconds), and the set it was read from. */
struct b {
    uint64_t id, pred;
    const char *type;
    uint32_t lo, hi;
    uint64_t begin_s;
    int set;
};

static void make(struct chain_manifest *ms, const struct b *bs, size_t n)
{
    static char names[32][32];
    memset(ms, 0, n * sizeof *ms);
    for (size_t i = 0; i < n; i++) {
        struct manifest *m = &ms[i].mf;
        m->backup_id = bs[i].id;
        m->predecessor_id = bs[i].pred;
        snprintf(m->type, sizeof m->type, "%s", bs[i].type);
        m->gen_low = bs[i].lo;
        m->gen_high = bs[i].hi;
        m->begin_us = bs[i].begin_s * 1000000u;
        snprintf(m->begin_time, sizeof m->begin_time, "T+%llus", (unsigned long long)bs[i].begin_s);
        snprintf(names[i], sizeof names[i], "set%d/m%llx", bs[i].set, (unsigned long long)bs[i].id);
        ms[i].path = names[i];
        ms[i].set = bs[i].set;
    }
}

/* chain_order over bs; the ids of the chain into ids (0-terminated). */
static JET_ERR order_of(const struct b *bs, size_t n, uint64_t *ids, struct chain_manifest *ms)
{
    size_t order[32], norder = 0;
    make(ms, bs, n);
    JET_ERR err = chain_order(ms, n, order, &norder);
    for (size_t i = 0; i < norder; i++) ids[i] = ms[order[i]].mf.backup_id;
    ids[norder] = 0;
    return err;
}

static bool ids_are(const uint64_t *got, const uint64_t *want)
{
    size_t i = 0;
    for (; want[i]; i++)
        if (got[i] != want[i]) return false;
    return got[i] == 0;
}

static void test_chain_in_any_order_is_ordered_by_predecessor(void)
{
    /* Merged into one directory (set 1), listed by name, not in order. */
    const struct b bs[] = {
        {0x30, 0x20, "incremental", 4, 4, 400, 1}, {0x10, 0, "full", 1, 1, 100, 0},
        {0x40, 0x30, "incremental", 5, 6, 500, 1}, {0x20, 0x10, "incremental", 2, 3, 200, 1},
    };
    struct chain_manifest ms[4];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 4, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0x20, 0x30, 0x40, 0}));
    for (int i = 0; i < 4; i++) CU_ASSERT(ms[i].on_chain);
    /* Each in its own directory, given in the wrong order: the same. */
    const struct b sep[] = {
        {0x10, 0, "full", 1, 1, 100, 0}, {0x40, 0x30, "incremental", 5, 6, 500, 1},
        {0x30, 0x20, "incremental", 4, 4, 400, 2}, {0x20, 0x10, "incremental", 2, 3, 200, 3},
    };
    TU_CHECK_ERR(order_of(sep, 4, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0x20, 0x30, 0x40, 0}));
}

static void test_aborted_session_is_left_off_the_chain(void)
{
    /* 0x30 was aborted: 0x31 follows 0x20 too, and holds its generations again. */
    const struct b bs[] = {
        {0x10, 0, "full", 1, 1, 100, 0},           {0x20, 0x10, "incremental", 2, 2, 200, 1},
        {0x30, 0x20, "incremental", 3, 3, 300, 1}, {0x31, 0x20, "incremental", 3, 4, 400, 1},
        {0x40, 0x31, "incremental", 5, 5, 500, 1},
    };
    struct chain_manifest ms[5];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 5, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0x20, 0x31, 0x40, 0}));
    CU_ASSERT(!ms[2].on_chain);
    CU_ASSERT(ms[3].on_chain && ms[4].on_chain);
    /* The newest aborted: it is the newest backup, and it chains. */
    const struct b last[] = {
        {0x10, 0, "full", 1, 1, 100, 0}, {0x20, 0x10, "incremental", 2, 2, 200, 1},
        {0x30, 0x20, "incremental", 3, 3, 300, 1},
    };
    TU_CHECK_ERR(order_of(last, 3, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0x20, 0x30, 0}));
}

static void test_newest_differential_follows_the_full(void)
{
    const struct b bs[] = {
        {0x10, 0, "full", 1, 1, 100, 0},
        {0x20, 0x10, "differential", 2, 3, 200, 1},
        {0x21, 0x10, "differential", 2, 5, 300, 1},
    };
    struct chain_manifest ms[3];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 3, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0x21, 0}));
    CU_ASSERT(!ms[1].on_chain);
    /* A full alone is its own chain. */
    TU_CHECK_ERR(order_of(bs, 1, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x10, 0}));
}

static void test_two_fulls_in_the_first_set_the_newest_chain_wins(void)
{
    const struct b bs[] = {
        {0x10, 0, "full", 1, 1, 100, 0},           {0x11, 0x10, "incremental", 2, 2, 200, 1},
        {0x50, 0, "full", 3, 3, 300, 0},           {0x51, 0x50, "incremental", 4, 4, 400, 1},
    };
    struct chain_manifest ms[4];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 4, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x50, 0x51, 0}));
    CU_ASSERT(!ms[0].on_chain && !ms[1].on_chain);
}

static void test_missing_link_names_the_two_around_it(void)
{
    const struct b bs[] = {
        {0x10, 0, "full", 1, 1, 100, 0},
        {0x20, 0x10, "incremental", 2, 3, 200, 1},
        {0x40, 0x30, "incremental", 6, 7, 400, 1},
    };
    struct chain_manifest ms[3];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 3, ids, ms), JET_errInvalidBackupSequence);
    const char *d = JetGetLastErrorDetail();
    const char *needles[] = {"set1/m40", "a set is missing from the chain", "backup 0000000000000030",
                             "generations 4-5", "after incremental backup 0000000000000020 (generations 2-3, begun T+200s)",
                             "before incremental backup 0000000000000040 (generations 6-7, begun T+400s)", "predecessor"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(d, needles[i]));
        if (!strstr(d, needles[i])) fprintf(stderr, "missing \"%s\" in: %s\n", needles[i], d);
    }
    CU_ASSERT(!ms[0].on_chain && !ms[1].on_chain && !ms[2].on_chain);
    /* An incremental of a later full than the one given: no gap in the
     * generations to name, the missing backup still named. */
    const struct b other[] = {
        {0x10, 0, "full", 1, 1, 100, 0},
        {0x60, 0x50, "incremental", 2, 2, 300, 1},
    };
    TU_CHECK_ERR(order_of(other, 2, ids, ms), JET_errInvalidBackupSequence);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "backup 0000000000000050,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "after full backup 0000000000000010"));
}

static void test_the_full_must_be_in_the_first_set(void)
{
    struct chain_manifest ms[3];
    uint64_t ids[8];
    /* The first set an incremental. */
    const struct b inc_first[] = {
        {0x20, 0x10, "incremental", 2, 3, 200, 0},
        {0x10, 0, "full", 1, 1, 100, 1},
    };
    TU_CHECK_ERR(order_of(inc_first, 2, ids, ms), JET_errMissingFullBackup);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "an incremental backup, not a full"));
    /* A full of a later set starts no chain: the incremental that follows
     * it does not follow the first set's full. */
    const struct b later_full[] = {
        {0x10, 0, "full", 1, 1, 100, 0},
        {0x50, 0, "full", 3, 3, 300, 1},
        {0x51, 0x50, "incremental", 4, 4, 400, 1},
    };
    TU_CHECK_ERR(order_of(later_full, 3, ids, ms), JET_errInvalidBackupSequence);
    /* A copy starts one. */
    const struct b copy[] = {
        {0x70, 0, "copy", 1, 2, 100, 0},
    };
    TU_CHECK_ERR(order_of(copy, 1, ids, ms), JET_errSuccess);
    CU_ASSERT(ids_are(ids, (const uint64_t[]){0x70, 0}));
}

static void test_a_cycle_of_predecessors_is_refused(void)
{
    const struct b bs[] = {
        {0x10, 0, "full", 1, 1, 100, 0},
        {0x20, 0x30, "incremental", 2, 2, 200, 1},
        {0x30, 0x20, "incremental", 3, 3, 300, 1},
    };
    struct chain_manifest ms[3];
    uint64_t ids[8];
    TU_CHECK_ERR(order_of(bs, 3, ids, ms), JET_errInvalidBackup);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "circle"));
}

static void test_a_sets_manifest_names(void)
{
    char n[MANIFEST_SESSION_NAME_MAX + 1];
    /* 2026-12-08T02:49:37.620926Z */
    manifest_session_name(n, sizeof n, 1796698177620926ull, 0xe58116e88bf5e51bull);
    CU_ASSERT_STRING_EQUAL(n, "backup.20261208T024937.620926Z-e58116e88bf5e51b.manifest");
    CU_ASSERT(manifest_is_name(n));
    CU_ASSERT(manifest_is_name("backup.manifest"));
    CU_ASSERT(!manifest_is_name("edb00000001.log"));
    CU_ASSERT(!manifest_is_name("backup.manifest.tmp"));
    CU_ASSERT(!manifest_is_name("jetfs.manifest"));
    /* Later begins sort later. */
    char m[MANIFEST_SESSION_NAME_MAX + 1];
    manifest_session_name(m, sizeof m, 1796698177620927ull, 0x1ull);
    CU_ASSERT(strcmp(n, m) < 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("chain", NULL, NULL);
    CU_add_test(su, "test_chain_in_any_order_is_ordered_by_predecessor", test_chain_in_any_order_is_ordered_by_predecessor);
    CU_add_test(su, "test_aborted_session_is_left_off_the_chain", test_aborted_session_is_left_off_the_chain);
    CU_add_test(su, "test_newest_differential_follows_the_full", test_newest_differential_follows_the_full);
    CU_add_test(su, "test_two_fulls_in_the_first_set_the_newest_chain_wins",
                test_two_fulls_in_the_first_set_the_newest_chain_wins);
    CU_add_test(su, "test_missing_link_names_the_two_around_it", test_missing_link_names_the_two_around_it);
    CU_add_test(su, "test_the_full_must_be_in_the_first_set", test_the_full_must_be_in_the_first_set);
    CU_add_test(su, "test_a_cycle_of_predecessors_is_refused", test_a_cycle_of_predecessors_is_refused);
    CU_add_test(su, "test_a_sets_manifest_names", test_a_sets_manifest_names);
    return tu_run();
}

/*
 * test_browse.c -- browsing backup sets (engine/browse.c over overlay.c):
 * JetBrowseSets of each prefix of a chain, and of each stop generation in
 * it, holds exactly what JetRestoreSets of the same sets and stop gives;
 * the sets are never written (not a byte, and not even opened for
 * writing); updates are refused; a small overlay spills to its file and
 * still reads the same; a damaged set is refused with restore's error and
 * leaves no scratch directory; two browses of one set run side by side;
 * threads read one browse at once.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jet.h"
#include "testutil.h"
#include "os.h"
#include "testvfs.h"

static char dir[1024], dbpath[1100], sets[3][1200], tmp[1200];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

/* Every key and value of table "t" of the database opened by ses, as
 * "key=value-hash;" in key order (malloc'ed). */
static char *contents(JET_SESID ses, const char *db)
{
    JET_DBID dbid;
    JET_TABLEID tt;
    size_t cap = 1 << 20, used = 0;
    char *out = calloc(1, cap);
    CU_ASSERT_FATAL(JetOpenDatabase(ses, db, NULL, &dbid, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(ses, dbid, "t", NULL, 0, 0, &tt) >= 0);
    uint8_t *k = malloc(JET_cbKeyMost), *v = malloc(1 << 16);
    for (JET_ERR e = JetMove(ses, tt, JET_MoveFirst, 0); e >= 0; e = JetMove(ses, tt, JET_MoveNext, 0)) {
        unsigned long kn = 0, vn = 0;
        CU_ASSERT_FATAL(JetRetrieveCurrentKV(ses, tt, k, JET_cbKeyMost, &kn, v, 1 << 16, &vn) >= 0);
        unsigned long long h = 1469598103934665603ull;
        for (unsigned long i = 0; i < vn; i++) h = (h ^ v[i]) * 1099511628211ull;
        if (used + kn + 64 > cap) out = realloc(out, cap *= 2);
        memcpy(out + used, k, kn);
        used += kn;
        used += (size_t)snprintf(out + used, cap - used, "=%lu:%016llx;", vn, h);
    }
    JetCloseTable(ses, tt);
    JetCloseDatabase(ses, dbid, 0);
    free(k);
    free(v);
    return out;
}

static char *restored(const char *const *sv, int n, unsigned long stop_gen)
{
    char rdir[1300], db[1400];
    snprintf(rdir, sizeof rdir, "%s/restored", tmp);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_ERR err = JetRestoreSets(sv, n, rdir, stop_gen, 0);
    if (err < 0) {
        fprintf(stderr, "restore refused: %s\n", JetGetLastErrorDetail());
        return NULL;
    }
    snprintf(db, sizeof db, "%s/r.db", rdir);
    JET_INSTANCE ri = tu_instance("restored", rdir, (struct tu_params){.log_kb = 128});
    JET_SESID rs;
    CU_ASSERT_FATAL(JetBeginSession(ri, &rs, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetAttachDatabase(rs, db, 0) >= 0);
    char *c = contents(rs, db);
    JetEndSession(rs, 0);
    CU_ASSERT(JetTerm(ri) >= 0);
    return c;
}

static char *browsed(const char *const *sv, int n, unsigned long stop_gen, unsigned long long mem,
                     JET_BROWSEINFO *pinfo)
{
    JET_BROWSEOPTS o = {sizeof o, mem, tmp, NULL};
    JET_BROWSE *b = NULL;
    JET_ERR err = JetBrowseSets(sv, n, stop_gen, 0, &o, &b);
    if (err < 0) {
        fprintf(stderr, "browse refused: %s\n", JetGetLastErrorDetail());
        return NULL;
    }
    JET_BROWSEINFO info = {.cbStruct = sizeof info};
    CU_ASSERT_FATAL(JetBrowseGetInfo(b, &info) >= 0);
    JET_SESID bs;
    CU_ASSERT_FATAL(JetBeginSession(JetBrowseInstance(b), &bs, NULL, NULL) >= 0);
    char *c = contents(bs, info.szDatabase);
    JetEndSession(bs, 0);
    if (pinfo) *pinfo = info;
    CU_ASSERT(JetBrowseClose(b) >= 0);
    return c;
}

static void put(int i, int fill)
{
    char k[32], v[700];
    snprintf(k, sizeof k, "k%06d", i);
    memset(v, 'a' + fill % 26, sizeof v);
    CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, 100 + (unsigned long)(i * 7 % 600), 0) >= 0);
}

/* A full and two incrementals, with updates and deletes between, and
 * several generations in each incremental. */
static void make_chain(void)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("browse"));
    snprintf(dbpath, sizeof dbpath, "%s/r.db", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    mkdir(tmp, 0700);
    inst = tu_instance("br", dir, (struct tu_params){.log_kb = 128});
    tu_table(inst, dbpath, 1, &s, &t);
    for (int i = 0; i < 2000; i++) put(i, 0);
    for (int k = 0; k < 3; k++) snprintf(sets[k], sizeof sets[k], "%s/set%d", dir, k);
    tu_backup(inst, sets[0], "full", NULL);
    for (int i = 0; i < 3000; i += 2) put(i, 1);
    for (int i = 1; i < 400; i += 3) {
        char k[32];
        snprintf(k, sizeof k, "k%06d", i);
        CU_ASSERT_FATAL(JetDeleteKV(s, t, k, strlen(k)) >= 0);
    }
    tu_backup(inst, sets[1], "incremental", NULL);
    for (int i = 500; i < 4000; i += 3) put(i, 2);
    tu_backup(inst, sets[2], "incremental", NULL);
}

static void generations_of(const char *set, unsigned long *lo, unsigned long *hi)
{
    DIR *d = opendir(set);
    struct dirent *e;
    *lo = *hi = 0;
    while (d && (e = readdir(d))) {
        unsigned g;
        if (sscanf(e->d_name, "edb%8x.log", &g) != 1) continue;
        if (!*lo || g < *lo) *lo = g;
        if (g > *hi) *hi = g;
    }
    if (d) closedir(d);
}

/* Browse scratch directories in the temporary directory (none once every
 * browse is closed). */
static int scratch_dirs_left(void)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    int left = 0;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "jetfs-browse.", 13) == 0) left++;
    if (d) closedir(d);
    return left;
}

/* No call may write to, create in, or open for writing anything in the sets. */
static int set_writes;
static JET_ERR no_set_writes(void *arg, const struct testvfs_call *c)
{
    (void)arg;
    if (c->after || !c->path || !strstr(c->path, "/set")) return JET_errSuccess;
    bool writes = c->kind == TV_PWRITE || c->kind == TV_FTRUNCATE || c->kind == TV_UNLINK || c->kind == TV_RENAME ||
                  c->kind == TV_FSYNC || (c->kind == TV_OPEN && (c->n & (OS_OPEN_WRITE | OS_OPEN_CREATE)));
    if (writes) {
        fprintf(stderr, "a write-type call (%d) on %s\n", (int)c->kind, c->path);
        set_writes++;
    }
    return JET_errSuccess;
}

static void test_browse_equals_restore_for_every_prefix_and_stop(void)
{
    make_chain();
    struct tu_dir_snap before[3];
    for (int k = 0; k < 3; k++) tu_snap_dir(sets[k], &before[k]);
    const char *sv[3] = {sets[0], sets[1], sets[2]};
    testvfs_install(no_set_writes, NULL);
    int compared = 0, ndistinct = 0;
    unsigned long long distinct[32];
    for (int n = 1; n <= 3; n++) {
        /* No stop, and the last generations of the prefix as stops (the
         * ones before the full backup's end are refused, by both). */
        unsigned long lo, hi, stops[8] = {0};
        int nstops = 1;
        generations_of(sets[n - 1], &lo, &hi);
        for (unsigned long g = hi > lo + 5 ? hi - 5 : lo; g <= hi && nstops < 8; g++) stops[nstops++] = g;
        for (int si = 0; si < nstops; si++) {
            char *r = restored(sv, n, stops[si]);
            JET_BROWSEINFO info;
            char *b = browsed(sv, n, stops[si], 0, &info);
            CU_ASSERT((r == NULL) == (b == NULL));
            if (r && b) {
                compared++;
                /* The comparison means something only if the stops give
                 * different states. */
                unsigned long long h = 1469598103934665603ull;
                for (const char *p = r; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
                bool seen = false;
                for (int i = 0; i < ndistinct; i++) seen |= distinct[i] == h;
                if (!seen && ndistinct < 32) distinct[ndistinct++] = h;
                if (strcmp(r, b) != 0)
                    fprintf(stderr, "prefix %d stop %lu: browse differs from restore (%zu vs %zu bytes)\n", n,
                            stops[si], strlen(b), strlen(r));
                CU_ASSERT_STRING_EQUAL(b, r);
                CU_ASSERT(info.usPoint > 0);
                CU_ASSERT(info.genHigh >= info.genLow);
                if (stops[si]) CU_ASSERT(info.genHigh <= stops[si]);
            }
            free(r);
            free(b);
        }
    }
    /* A stop past the sets' last generation is refused by both, saying where the logs end. */
    unsigned long lo, hi;
    generations_of(sets[2], &lo, &hi);
    JET_BROWSEOPTS o = {sizeof o, 0, tmp, NULL};
    JET_BROWSE *b = NULL;
    char rdir[1300];
    snprintf(rdir, sizeof rdir, "%s/past-end", tmp);
    TU_CHECK_ERR(JetRestoreSets(sv, 3, rdir, hi + 3, 0), JET_errInvalidParameter);
    TU_CHECK_ERR(JetBrowseSets(sv, 3, hi + 3, 0, &o, &b), JET_errInvalidParameter);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "end at generation"));
    testvfs_uninstall();
    fprintf(stderr, "%d browses compared with their restores\n", compared);
    fprintf(stderr, "%d distinct states\n", ndistinct);
    CU_ASSERT(compared >= 8);
    CU_ASSERT(ndistinct >= 4);
    CU_ASSERT_EQUAL(set_writes, 0);
    for (int k = 0; k < 3; k++) tu_assert_dir_unchanged(sets[k], &before[k], NULL);
    /* Nothing left in the temporary directory: the overlays are gone. */
    CU_ASSERT_EQUAL(scratch_dirs_left(), 0);
}

static void test_browse_spills_and_reads_the_same(void)
{
    const char *sv[3] = {sets[0], sets[1], sets[2]};
    JET_BROWSEINFO big, small;
    char *a = browsed(sv, 3, 0, 0, &big);
    char *b = browsed(sv, 3, 0, 16384, &small);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(big.cbOverlay > 0);
    CU_ASSERT_EQUAL(big.cbOverlaySpilled, 0);
    CU_ASSERT(small.cbOverlaySpilled > 0);
    CU_ASSERT(small.cbOverlay >= small.cbOverlaySpilled);
    free(a);
    free(b);
}

static void test_browse_refuses_updates_and_runs_twice(void)
{
    const char *sv[2] = {sets[0], sets[1]};
    JET_BROWSEOPTS o = {sizeof o, 0, tmp, NULL};
    JET_BROWSE *b1 = NULL, *b2 = NULL;
    /* What a killed browse left is removed by the next; a live one's stays. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[1400], live[1400], cmd[6000];
    snprintf(stale, sizeof stale, "%s/jetfs-browse.%d.AbCdEf", tmp, (int)dead);
    snprintf(live, sizeof live, "%s/jetfs-browse.%d.AbCdEf", tmp, (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' && touch '%s/edb00000001.log' '%s/edb00000001.log'", stale, live, stale,
             live);
    CU_ASSERT_FATAL(system(cmd) == 0);
    CU_ASSERT_FATAL(JetBrowseSets(sv, 2, 0, 0, &o, &b1) >= 0);
    CU_ASSERT_FATAL(JetBrowseSets(sv, 1, 0, 0, &o, &b2) >= 0);
    struct stat st;
    CU_ASSERT(stat(stale, &st) != 0);
    CU_ASSERT(stat(live, &st) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", live);
    CU_ASSERT(system(cmd) == 0);
    JET_BROWSEINFO i1 = {.cbStruct = sizeof i1}, i2 = {.cbStruct = sizeof i2};
    CU_ASSERT_FATAL(JetBrowseGetInfo(b1, &i1) >= 0 && JetBrowseGetInfo(b2, &i2) >= 0);
    CU_ASSERT(i1.genHigh > i2.genHigh);
    CU_ASSERT(i1.usPoint >= i2.usPoint);
    JET_SESID bs;
    JET_DBID dbid;
    JET_TABLEID bt;
    CU_ASSERT_FATAL(JetBeginSession(JetBrowseInstance(b1), &bs, NULL, NULL) >= 0);
    CU_ASSERT_FATAL(JetOpenDatabase(bs, i1.szDatabase, NULL, &dbid, JET_bitDbReadOnly) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(bs, dbid, "t", NULL, 0, 0, &bt) >= 0);
    TU_CHECK_ERR(JetPutKV(bs, bt, "new", 3, "v", 1, 0), JET_errPermissionDenied);
    TU_CHECK_ERR(JetDeleteKV(bs, bt, "k000000", 7), JET_errPermissionDenied);
    char v[1024];
    unsigned long n = 0;
    CU_ASSERT(JetRetrieveKV(bs, bt, "k000000", 7, v, sizeof v, &n, 0) >= 0);
    TU_CHECK_ERR(JetRetrieveKV(bs, bt, "k000001", 7, v, sizeof v, &n, 0), JET_errRecordNotFound); /* deleted in set 2 */
    JetCloseTable(bs, bt);
    JetEndSession(bs, 0);
    CU_ASSERT(JetBrowseClose(b1) >= 0);
    CU_ASSERT(JetBrowseClose(b2) >= 0);
}

struct reader {
    JET_INSTANCE inst;
    const char *db;
    char *got;
};

static void *read_all(void *arg)
{
    struct reader *r = arg;
    JET_SESID rs;
    if (JetBeginSession(r->inst, &rs, NULL, NULL) < 0) return NULL;
    r->got = contents(rs, r->db);
    JetEndSession(rs, 0);
    return NULL;
}

/* FUSE and RESP read a browse from many threads at once: through the
 * overlay's shared lock, with a tiny memory limit so reads meet the spill
 * file too. */
static void test_browse_reads_from_many_threads(void)
{
    const char *sv[3] = {sets[0], sets[1], sets[2]};
    char *want = browsed(sv, 3, 0, 0, NULL);
    JET_BROWSEOPTS o = {sizeof o, 8192, tmp, NULL};
    JET_BROWSE *b = NULL;
    CU_ASSERT_FATAL(want && JetBrowseSets(sv, 3, 0, 0, &o, &b) >= 0);
    JET_BROWSEINFO info = {.cbStruct = sizeof info};
    CU_ASSERT_FATAL(JetBrowseGetInfo(b, &info) >= 0);
    pthread_t th[4];
    struct reader r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct reader){JetBrowseInstance(b), info.szDatabase, NULL};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, read_all, &r[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_FATAL(r[i].got != NULL);
        CU_ASSERT_STRING_EQUAL(r[i].got, want);
        free(r[i].got);
    }
    CU_ASSERT(JetBrowseClose(b) >= 0);
    free(want);
}

static void test_browse_refuses_a_damaged_set(void)
{
    /* A copy of the chain with one byte of an incremental's log changed. */
    char cmd[8000], bad[1300];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s' '%s' '%s' '%s/'", bad, bad, sets[0], sets[1],
             sets[2], bad);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char s0[1400], s1[1400], s2[1400], log[1600];
    snprintf(s0, sizeof s0, "%s/set0", bad);
    snprintf(s1, sizeof s1, "%s/set1", bad);
    snprintf(s2, sizeof s2, "%s/set2", bad);
    unsigned long lo, hi;
    generations_of(s1, &lo, &hi);
    snprintf(log, sizeof log, "%s/edb%08lX.log", s1, hi);
    FILE *f = fopen(log, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 5000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 5000, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    const char *sv[3] = {s0, s1, s2};
    JET_BROWSEOPTS o = {sizeof o, 0, tmp, NULL};
    JET_BROWSE *b = NULL;
    char rdir[1400];
    snprintf(rdir, sizeof rdir, "%s/rbad", dir);
    JET_ERR want = JetRestoreSets(sv, 3, rdir, 0, 0);
    char want_msg[1024];
    snprintf(want_msg, sizeof want_msg, "%s", JetGetLastErrorDetail());
    CU_ASSERT(want < 0);
    JET_ERR got = JetBrowseSets(sv, 3, 0, 0, &o, &b);
    CU_ASSERT_EQUAL(got, want);
    CU_ASSERT(b == NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "edb"));
    fprintf(stderr, "restore: %s\nbrowse: %s\n", want_msg, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(scratch_dirs_left(), 0);
}

static void test_browse_done(void)
{
    JetEndSession(s, 0);
    CU_ASSERT(JetTerm(inst) >= 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("browse", NULL, NULL);
    CU_add_test(su, "browse equals restore for every prefix and stop", test_browse_equals_restore_for_every_prefix_and_stop);
    CU_add_test(su, "a small overlay spills and reads the same", test_browse_spills_and_reads_the_same);
    CU_add_test(su, "updates are refused; two browses at once", test_browse_refuses_updates_and_runs_twice);
    CU_add_test(su, "many threads read one browse", test_browse_reads_from_many_threads);
    CU_add_test(su, "a damaged set is refused as restore refuses it", test_browse_refuses_a_damaged_set);
    CU_add_test(su, "done", test_browse_done);
    return tu_run();
}

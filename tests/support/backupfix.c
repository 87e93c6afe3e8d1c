/*
 * backupfix.c -- the fixture of the streaming backup suites: the scratch
 * database and its instance, the list of log generation files, and a
 * backup client's reads and restores (see backupfix.h).
 */
#include "backupfix.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

void bf_scratch(struct bf_db *fx, const char *name)
{
    snprintf(fx->dir, sizeof fx->dir, "%s", tu_scratch_dir(name));
    snprintf(fx->dbpath, sizeof fx->dbpath, "%s/b.db", fx->dir);
}

/* Instance "bk" on dir with table t of dbpath in session s (created if create). */
static void open_bk(struct bf_db *fx, int create, int circular)
{
    fx->inst = tu_instance("bk", fx->dir,
                           (struct tu_params){.log_kb = 256, .ckpt_ms = (long)fx->ckpt_ms, .cache_pages = 128,
                                              .circular = circular, .snap_kb = (long)fx->snap_kb});
    tu_table(fx->inst, fx->dbpath, create, &fx->s, &fx->t);
}

void bf_start(struct bf_db *fx, int circular) { open_bk(fx, 1, circular); }

void bf_reopen(struct bf_db *fx)
{
    CU_ASSERT_FATAL(JetTerm(fx->inst) >= 0);
    open_bk(fx, 0, 0);
}

/* ---- the log directory as a user sees it ---- */

/* The generation a name "edbXXXXXXXX.log" (upper-case hex) stands for, 0 if none. */
static uint32_t gen_of_name(const char *name)
{
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    if (strlen(b) != 15 || strncmp(b, "edb", 3) != 0 || strcmp(b + 11, ".log") != 0 ||
        strspn(b + 3, "0123456789ABCDEF") != 8)
        return 0;
    return (uint32_t)strtoul(b + 3, NULL, 16);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Every log generation file in d (not edbtmp.log), ascending. */
void bf_list_gens(const char *d, struct bf_gens *out, int with_hash)
{
    memset(out, 0, sizeof *out);
    DIR *dd = opendir(d);
    CU_ASSERT_FATAL(dd != NULL);
    struct dirent *e;
    while ((e = readdir(dd)) != NULL) {
        uint32_t g = gen_of_name(e->d_name);
        if (g && out->n < BF_MAX_GENS) out->g[out->n++] = g;
    }
    closedir(dd);
    qsort(out->g, (size_t)out->n, sizeof out->g[0], cmp_u32);
    for (int i = 0; with_hash && i < out->n; i++) {
        char p[1300];
        snprintf(p, sizeof p, "%s/edb%08X.log", d, out->g[i]);
        out->h[i] = tu_file_hash(p, 0, NULL);
    }
}

int bf_gens_find(const struct bf_gens *l, uint32_t g)
{
    for (int i = 0; i < l->n; i++)
        if (l->g[i] == g) return i;
    return -1;
}

void bf_print_gens(const char *what, const struct bf_gens *l)
{
    fprintf(stderr, "%s:", what);
    for (int i = 0; i < l->n; i++) fprintf(stderr, " %u", l->g[i]);
    fprintf(stderr, "\n");
}

/* Same generations, and (with hashes) the same bytes in each. */
int bf_gens_equal(const struct bf_gens *a, const struct bf_gens *b, int with_hash)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->g[i] != b->g[i] || (with_hash && a->h[i] != b->h[i])) return 0;
    return 1;
}

/* The checkpoint's generation, from the file (what recovery starts from). */
uint32_t bf_ckpt_gen(const struct bf_db *fx)
{
    char ck[1200];
    JET_INSPECT_CHECKPOINT c;
    snprintf(ck, sizeof ck, "%s/edb.chk", fx->dir);
    CU_ASSERT_FATAL(JetInspectCheckpoint(ck, &c) >= 0);
    return (uint32_t)(c.lsn >> 32);
}

/* The live database's header (its backup history). */
JET_INSPECT_DBHEADER bf_live_hdr(const struct bf_db *fx)
{
    JET_INSPECT_DBHEADER h = {0};
    TU_CHECK_ERR(JetInspectDatabaseHeader(fx->dbpath, &h), JET_errSuccess);
    return h;
}

/* The generations a multi-string of log paths names. */
void bf_gens_of_multistring(const char *szz, struct bf_gens *out)
{
    memset(out, 0, sizeof *out);
    for (const char *p = szz; *p && out->n < BF_MAX_GENS; p += strlen(p) + 1) {
        uint32_t g = gen_of_name(p);
        CU_ASSERT(g != 0);
        out->g[out->n++] = g;
    }
    qsort(out->g, (size_t)out->n, sizeof out->g[0], cmp_u32);
}

void bf_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads a whole file of the set through the API, in random-sized pieces
 * at random offsets, then fills any gap sequentially. */
unsigned char *bf_read_through_backup(const struct bf_db *fx, const char *path, size_t *pn, uint64_t *rng)
{
    JET_HANDLE h;
    unsigned long lo = 0, hi = 0, got = 0;
    CU_ASSERT_FATAL(JetOpenFileInstance(fx->inst, path, &h, &lo, &hi) >= 0);
    size_t n = (size_t)lo | ((size_t)hi << 32);
    unsigned char *b = calloc(1, n + 1);
    for (int i = 0; i < 50 && n; i++) {
        uint64_t off = tu_rand(rng) % n, len = 1 + tu_rand(rng) % 70000;
        JET_ERR err = JetReadFileAtInstance(fx->inst, h, off, b + off, (unsigned long)(len < n - off ? len : n - off), &got);
        CU_ASSERT_EQUAL(err, JET_errSuccess);
    }
    size_t pos = 0;
    while (pos < n) {
        JET_ERR err = JetReadFileInstance(fx->inst, h, b + pos, 65536, &got);
        CU_ASSERT_FATAL(err == JET_errSuccess);
        if (!got) break;
        pos += got;
    }
    CU_ASSERT_EQUAL(pos, n);
    CU_ASSERT(JetReadFileInstance(fx->inst, h, b, 4096, &got) == JET_errSuccess && got == 0);
    JetCloseFileInstance(fx->inst, h);
    *pn = n;
    return b;
}

/* The generations JetGetTruncateLogInfoInstance names now. */
void bf_truncate_info(const struct bf_db *fx, struct bf_gens *out)
{
    static char names[65536];
    unsigned long cb = 0;
    TU_CHECK_ERR(JetGetTruncateLogInfoInstance(fx->inst, names, sizeof names, &cb), JET_errSuccess);
    bf_gens_of_multistring(names, out);
}

int bf_value_is(JET_SESID ss, JET_TABLEID tt, int k, char fill)
{
    char key[16], v[600];
    unsigned long n = 0;
    snprintf(key, sizeof key, "k%06d", k);
    if (JetRetrieveKV(ss, tt, key, strlen(key), v, sizeof v, &n, 0) < 0) return fill == 0;
    return n == 500 && v[0] == fill && v[499] == fill;
}

int bf_restore_into(const struct bf_db *fx, const char *rdir, const char *const *sets, int nsets,
                    unsigned long stop_gen)
{
    char cmd[8000];
    int off = snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' '%s/'", rdir, rdir, sets[0], rdir);
    for (int i = 0; i < nsets; i++) off += snprintf(cmd + off, sizeof cmd - (size_t)off, " && cp %s/edb*.log '%s/'", sets[i], rdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char db[1200];
    snprintf(db, sizeof db, "%s/b.db", rdir);
    JET_RSTMAP map = {(char *)fx->dbpath, db};
    return (int)JetExternalRestore3((char *)rdir, (char *)rdir, &map, 1, (char *)rdir, NULL, stop_gen, 0, NULL);
}

JET_INSTANCE bf_open_restored(const char *rdir, JET_SESID *ps, JET_TABLEID *pt)
{
    char db[1400];
    snprintf(db, sizeof db, "%s/b.db", rdir);
    JET_INSTANCE ri = tu_instance("restored", rdir, (struct tu_params){.log_kb = 256});
    tu_table(ri, db, 0, ps, pt);
    return ri;
}

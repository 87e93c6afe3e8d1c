/*
 * test_view.c -- the backup tree of one mount session (fs/view.h), driven
 * without mounting, against a live instance in a scratch directory.
 *
 * What a user of the mount relies on, one behaviour per test:
 *  - listing /, /backup and stat-ing the kind directories begins nothing;
 *    opening a kind directory (or looking up a name in it) begins that
 *    backup, whose set (database, log generations, backup.manifest) keeps
 *    its inode numbers, sizes and mtimes while writers commit;
 *  - one kind per session (EBUSY, and status says why), incremental and
 *    differential need a full backup first (EPERM naming the JET error);
 *  - reads at any offset equal a sequential read, and the database bytes
 *    are those at begin however much is committed afterwards;
 *  - unmount ends normally (truncating per kind, recording the history)
 *    only when every byte of every file, the manifest included, was read;
 *    otherwise it aborts, deleting nothing and recording nothing;
 *  - the watchdog (idle timeout, snapshot space limit) aborts cleanly;
 *  - a corrupt page is EIO, and status lists every corrupt page met;
 *  - handles outlive the backup's end without crashing or leaking.
 *
 * The instance is loaded, then terminated and opened again before each
 * backup, so that nothing is dirty at begin: the engine writes no
 * database page after begin unless a test commits on purpose.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* The database file name jetfs serve uses (src/instance_dir.h). */
#define DB_NAME "jetfs.db"

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"
#include "view.h"

#define LOG_KB 128u
#define PAGE 8192u
#define MAXSET 256

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;
/* Each test's instance has its own name, so that one a failed test left
 * running does not keep the next from starting. */
static char inst_name[32];
static int ninstances;

/* ---- the instance ---- */

static JET_ERR open_instance(int create)
{
    JET_ERR err;
    JET_DBID db;
    inst = 0;
    if ((err = JetCreateInstance(&inst, inst_name)) < 0) return err;
    JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir);
    JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, LOG_KB, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCheckpointPeriodMs, 20, NULL);
    JetSetSystemParameter(&inst, 0, JET_paramCacheSizeMax, 128, NULL);
    if ((err = JetInit(&inst)) < 0) return err;
    if ((err = JetBeginSession(inst, &s, NULL, NULL)) < 0) return err;
    if (create) {
        if ((err = JetCreateDatabase(s, dbpath, NULL, &db, 0)) < 0) return err;
        return JetCreateTable(s, db, "t", 0, 0, &t);
    }
    if ((err = JetAttachDatabase(s, dbpath, 0)) < 0) return err;
    if ((err = JetOpenDatabase(s, dbpath, NULL, &db, 0)) < 0) return err;
    return JetOpenTable(s, db, "t", NULL, 0, 0, &t);
}

/* Terminates the instance cleanly and opens it again: nothing dirty. */
static void restart(void)
{
    CU_ASSERT_FATAL(JetTerm(inst) >= 0);
    CU_ASSERT_FATAL(open_instance(0) >= 0);
}

/* A fresh instance in a scratch directory holding nkeys keys, several
 * log generations, and nothing dirty. */
static void start(const char *name, int nkeys)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/%s", dir, DB_NAME);
    snprintf(inst_name, sizeof inst_name, "view%d", ++ninstances);
    CU_ASSERT_FATAL(open_instance(1) >= 0);
    tu_load(s, t, 0, nkeys, 'a');
    restart();
}

static void stop(void) { CU_ASSERT(JetTerm(inst) >= 0); }

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int engine_backup_running(void)
{
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &st) == JET_errSuccess);
    return st.fInProgress;
}

static unsigned long long preserved_bytes(void)
{
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &st) == JET_errSuccess);
    return st.cbPreservedMemory + st.cbPreservedSpill;
}

/* Polls until the engine has preserved more than `bytes` of snapshot
 * (pages overwritten on disk since begin); false at the deadline. */
static bool wait_preserved(unsigned long long bytes)
{
    for (double end = mono_now() + 20; mono_now() < end; sleep_ms(10))
        if (preserved_bytes() > bytes) return true;
    return false;
}

/* ---- the log directory ---- */

static unsigned gen_of_name(const char *name)
{
    unsigned g = 0;
    char tail[8];
    if (sscanf(name, "edb%8X%7s", &g, tail) != 2 || strcmp(tail, ".log") || strlen(name) != 15) return 0;
    return g;
}

/* The generations present in the log directory, as a bitmap over 1..4095. */
struct gens {
    unsigned char present[4096];
    unsigned n, low, high;
};

static void log_gens(struct gens *g)
{
    memset(g, 0, sizeof *g);
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    for (struct dirent *e; (e = readdir(d));) {
        unsigned gen = gen_of_name(e->d_name);
        if (!gen || gen >= 4096) continue;
        g->present[gen] = 1;
        g->n++;
        if (!g->low || gen < g->low) g->low = gen;
        if (gen > g->high) g->high = gen;
    }
    closedir(d);
}

/* Every generation of `before` is still present in `after`. */
static bool none_deleted(const struct gens *before, const struct gens *after)
{
    for (unsigned i = 0; i < 4096; i++)
        if (before->present[i] && !after->present[i]) {
            fprintf(stderr, "generation %u was deleted\n", i);
            return false;
        }
    return true;
}

static JET_INSPECT_DBHEADER header(void)
{
    JET_INSPECT_DBHEADER h;
    memset(&h, 0, sizeof h);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(dbpath, &h) == JET_errSuccess);
    return h;
}

/* After an abort: every generation of `before` is still there and the
 * backup history is as it was in h0. */
static void check_untouched(const struct gens *before, const JET_INSPECT_DBHEADER *h0)
{
    struct gens after;
    log_gens(&after);
    CU_ASSERT(none_deleted(before, &after));
    JET_INSPECT_DBHEADER h1 = header();
    CU_ASSERT(memcmp(h0->backup, h1.backup, sizeof h0->backup) == 0);
}

/* After a normal end of a full backup: the oldest generation of `before`
 * was truncated and a full is recorded. */
static void check_full_truncated(const struct gens *before)
{
    struct gens after;
    log_gens(&after);
    CU_ASSERT(!after.present[before->low]);
    CU_ASSERT(header().backup[0].backup_id != 0);
}

/* ---- the view ---- */

static struct jv_options options(void)
{
    struct jv_options o = {.uid = getuid(), .gid = getgid(), .instance_name = "view"};
    return o;
}

static struct jv_view *new_view(const struct jv_options *o)
{
    struct jv_view *v = NULL;
    struct jv_options def = options();
    CU_ASSERT_FATAL(jv_create(inst, o ? o : &def, &v) == 0 && v);
    const char *paths[] = {dbpath};
    CU_ASSERT_FATAL(jv_set_db_paths(v, paths, 1) == 0);
    return v;
}

/* The text of top-level status field key (or of "outcome"), up to the
 * next top-level key; malloc'd, "" if absent. */
static char *status_field(struct jv_view *v, const char *key)
{
    size_t n = 0;
    char *json = jv_status_json(v, &n);
    CU_ASSERT_FATAL(json != NULL);
    CU_ASSERT_EQUAL(strlen(json), n);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    char *out;
    if (!p) out = strdup("");
    else {
        p += strlen(pat);
        const char *e = strstr(p, "\n  \"");
        out = strndup(p, e ? (size_t)(e - p) : strlen(p));
    }
    free(json);
    return out;
}

/* Whether status field key contains every needle (NULL-terminated);
 * prints the field when it does not. */
static bool status_says(struct jv_view *v, const char *key, ...)
{
    char *f = status_field(v, key);
    bool ok = true;
    va_list ap;
    va_start(ap, key);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(f, needle)) {
            fprintf(stderr, "status %s lacks \"%s\": %s\n", key, needle, f);
            ok = false;
        }
    va_end(ap);
    free(f);
    return ok;
}

static bool status_has(struct jv_view *v, const char *needle)
{
    char *json = jv_status_json(v, NULL);
    CU_ASSERT_FATAL(json != NULL);
    bool ok = strstr(json, needle) != NULL;
    if (!ok) fprintf(stderr, "status lacks %s:\n%s", needle, json);
    free(json);
    return ok;
}

struct set {
    struct jv_entry e[MAXSET];
    int n;
};

static int list_kind(struct jv_view *v, enum jv_kind kind, struct set *out)
{
    out->n = jv_readdir(v, JV_INO_KIND + kind, 0, out->e, MAXSET);
    return out->n;
}

static const struct jv_entry *find(const struct set *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->e[i].name, name)) return &set->e[i];
    return NULL;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_size == b->st_size && a->st_mtime == b->st_mtime &&
           a->st_mode == b->st_mode;
}

/* Reads [from, to) of a file through the view, in `piece`-sized reads. */
static void read_range(struct jv_view *v, int64_t fh, uint64_t from, uint64_t to, unsigned char *buf, size_t piece)
{
    for (uint64_t pos = from; pos < to;) {
        size_t want = to - pos < piece ? (size_t)(to - pos) : piece;
        ssize_t got = jv_read(v, fh, pos, buf + pos, want);
        CU_ASSERT_FATAL(got > 0);
        pos += (uint64_t)got;
    }
}

/* Reads the first `upto` bytes of ino (all of it if upto is -1), checking
 * that a read at the end returns 0; returns the bytes (malloc'd). */
static unsigned char *read_file(struct jv_view *v, uint64_t ino, long long upto, size_t *pn)
{
    struct stat st;
    CU_ASSERT_FATAL(jv_getattr(v, ino, &st) == 0);
    size_t n = (size_t)st.st_size;
    if (upto >= 0 && (size_t)upto < n) n = (size_t)upto;
    int64_t fh = jv_open(v, ino);
    CU_ASSERT_FATAL(fh > 0);
    unsigned char *b = malloc(n + 1);
    CU_ASSERT_FATAL(b != NULL);
    read_range(v, fh, 0, n, b, 65536);
    if (n == (size_t)st.st_size) {
        unsigned char tail[16];
        CU_ASSERT_EQUAL(jv_read(v, fh, n, tail, sizeof tail), 0);
    }
    jv_release(v, fh);
    if (pn) *pn = n;
    return b;
}

/* Reads every file of the set whole, except `skip` (not at all) and
 * `half` (its first half only); either may be NULL. */
static void read_set(struct jv_view *v, const struct set *set, const char *skip, const char *half)
{
    for (int i = 0; i < set->n; i++) {
        const struct jv_entry *e = &set->e[i];
        if (skip && !strcmp(e->name, skip)) continue;
        long long upto = half && !strcmp(e->name, half) ? (long long)e->st.st_size / 2 : -1;
        free(read_file(v, e->ino, upto, NULL));
    }
}

/* Begins kind by listing its directory; the set must not be empty. */
static void begin_listing(struct jv_view *v, enum jv_kind kind, struct set *set)
{
    int n = list_kind(v, kind, set);
    if (n <= 0) fprintf(stderr, "listing %s: %d\n", jv_kind_name(kind), n);
    CU_ASSERT_FATAL(n > 0);
}

/* ---- 1. listing the tree begins nothing ---- */

static void test_view_listing_root_and_backup_begins_nothing(void)
{
    start("view_listing", 500);
    struct jv_view *v = new_view(NULL);
    struct jv_entry e[8];
    int n = jv_readdir(v, JV_INO_ROOT, 0, e, 8);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(e[0].name, "status");
    CU_ASSERT_EQUAL(e[0].ino, JV_INO_STATUS);
    CU_ASSERT(S_ISREG(e[0].st.st_mode));
    CU_ASSERT_STRING_EQUAL(e[1].name, "backup");
    CU_ASSERT_EQUAL(e[1].ino, JV_INO_BACKUP);
    CU_ASSERT(S_ISDIR(e[1].st.st_mode));
    /* Paging: from index 1 gives the second entry only. */
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_ROOT, 1, e, 8), 1);
    CU_ASSERT_STRING_EQUAL(e[0].name, "backup");

    n = jv_readdir(v, JV_INO_BACKUP, 0, e, 8);
    CU_ASSERT_EQUAL_FATAL(n, JV_NKINDS);
    for (int k = 0; k < JV_NKINDS; k++) {
        CU_ASSERT_STRING_EQUAL(e[k].name, jv_kind_name((enum jv_kind)k));
        CU_ASSERT_EQUAL(e[k].ino, JV_INO_KIND + (uint64_t)k);
        CU_ASSERT(S_ISDIR(e[k].st.st_mode));
        CU_ASSERT_EQUAL(e[k].st.st_mode & 0777, 0500);
        CU_ASSERT_EQUAL(e[k].st.st_uid, getuid());
        struct stat st;
        CU_ASSERT_EQUAL(jv_getattr(v, JV_INO_KIND + (uint64_t)k, &st), 0);
        CU_ASSERT(S_ISDIR(st.st_mode));
        struct jv_entry le;
        CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_BACKUP, jv_kind_name((enum jv_kind)k), &le), 0);
        CU_ASSERT_EQUAL(le.ino, JV_INO_KIND + (uint64_t)k);
    }
    struct jv_entry le;
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_ROOT, "backup", &le), 0);
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_ROOT, "status", &le), 0);
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_BACKUP, "weekly", &le), -ENOENT);
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_ROOT, "nothing", &le), -ENOENT);
    struct stat st;
    CU_ASSERT_EQUAL(jv_getattr(v, JV_INO_STATUS, &st), 0);
    CU_ASSERT(st.st_size > 0);
    CU_ASSERT_EQUAL(jv_getattr(v, JV_INO_MANIFEST, &st), -ENOENT);

    /* Nothing began. */
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT(status_has(v, "\"state\": \"none\""));
    CU_ASSERT(status_says(v, "last_error", "null", (char *)NULL));
    CU_ASSERT(status_says(v, "instance", "\"view\"", (char *)NULL));
    /* With no backup, there is nothing to end. */
    char why[256];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), -ENOENT);
    jv_destroy(v);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    stop();
}

/* status: each open is a snapshot of the document as of that open; reads
 * at any offset come from it; a released handle answers EBADF and a second
 * release does nothing; snapshots left open are freed with the view. */
static void test_view_status_opens_are_snapshots(void)
{
    start("view_status_snap", 50);
    struct jv_view *v = new_view(NULL);
    uint64_t a = 0, b = 0, leaked = 0;
    CU_ASSERT_EQUAL(jv_status_opened(v), 0);
    CU_ASSERT_FATAL(jv_status_open(v, &a) == 0);
    CU_ASSERT_EQUAL(jv_status_opened(v), 1);
    size_t n = 0;
    char *want = jv_status_json(v, &n);
    CU_ASSERT_FATAL(want != NULL);
    static char buf[1 << 16];
    CU_ASSERT_FATAL(n > 20 && n < sizeof buf);
    CU_ASSERT_EQUAL(jv_status_read(v, a, 0, buf, 10), 10);
    CU_ASSERT_EQUAL(jv_status_read(v, a, 10, buf + 10, sizeof buf - 10), (ssize_t)(n - 10));
    CU_ASSERT(memcmp(buf, want, n) == 0);
    CU_ASSERT_EQUAL(jv_status_read(v, a, n + 5, buf, 10), 0);
    /* A backup begins: a new open sees it, the old one keeps its text. */
    struct jv_entry e[8];
    CU_ASSERT(jv_readdir(v, JV_INO_KIND + JV_FULL, 0, e, 8) > 0);
    CU_ASSERT_FATAL(jv_status_open(v, &b) == 0);
    CU_ASSERT_EQUAL(jv_status_opened(v), 2);
    CU_ASSERT(jv_status_read(v, b, 0, buf, sizeof buf) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"full\""));
    CU_ASSERT_EQUAL(jv_status_read(v, a, 0, buf, sizeof buf), (ssize_t)n);
    CU_ASSERT(memcmp(buf, want, n) == 0);
    jv_status_release(v, a);
    CU_ASSERT_EQUAL(jv_status_read(v, a, 0, buf, 10), -EBADF);
    jv_status_release(v, a);
    /* The session's unmount after an explicit end waits for this count. */
    CU_ASSERT_EQUAL(jv_status_opened(v), 1);
    CU_ASSERT(jv_status_read(v, b, 0, buf, 10) == 10);
    jv_status_release(v, b);
    CU_ASSERT_EQUAL(jv_status_opened(v), 0);
    CU_ASSERT_FATAL(jv_status_open(v, &leaked) == 0); /* freed by jv_destroy (ASan checks) */
    CU_ASSERT_PTR_NOT_NULL(strstr(want, "\"remount\": false"));
    free(want);
    jv_destroy(v);
    /* A host that mounts again after each unmount says so, for jetfs end. */
    struct jv_options o = options();
    o.mounts_again = true;
    v = new_view(&o);
    want = jv_status_json(v, &n);
    CU_ASSERT_FATAL(want != NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(want, "\"remount\": true"));
    free(want);
    jv_destroy(v);
    stop();
}

/* ---- 2. opening a kind begins it; the set is stable ---- */

static void test_view_opening_kind_dir_begins_and_set_stays_stable(void)
{
    start("view_stable", 1500);
    struct jv_view *v = new_view(NULL);
    time_t before = time(NULL);
    struct set set, again;
    begin_listing(v, JV_FULL, &set);
    time_t after = time(NULL);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    CU_ASSERT(status_has(v, "\"state\": \"running\""));
    CU_ASSERT(status_has(v, "\"type\": \"full\""));

    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &bst) == JET_errSuccess);
    CU_ASSERT_FATAL(bst.ulGenHigh >= bst.ulGenLow && bst.ulGenLow >= 1);
    unsigned long ngens = bst.ulGenHigh - bst.ulGenLow + 1;
    /* The database, every generation of the set, the manifest under its
     * backup's own name, then as backup.manifest, last. */
    CU_ASSERT_EQUAL_FATAL(set.n, (int)(1 + ngens + 2));
    char own[80];
    CU_ASSERT_STRING_EQUAL(set.e[set.n - 2].name + strlen(set.e[set.n - 2].name) - 9, ".manifest");
    CU_ASSERT_EQUAL(strncmp(set.e[set.n - 2].name, "backup.20", 9), 0);
    CU_ASSERT_EQUAL(set.e[set.n - 2].ino, JV_INO_SESSION_MANIFEST);
    CU_ASSERT_EQUAL(set.e[set.n - 2].st.st_size, set.e[set.n - 1].st.st_size);
    const struct jv_entry *db = find(&set, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL(db->ino, JV_INO_DB);
    CU_ASSERT(S_ISREG(db->st.st_mode));
    CU_ASSERT_EQUAL(db->st.st_mode & 0777, 0400);
    CU_ASSERT(db->st.st_size >= 20 * (off_t)PAGE && db->st.st_size % PAGE == 0);
    CU_ASSERT(db->st.st_mtime >= before && db->st.st_mtime <= after);
    for (unsigned long g = bst.ulGenLow; g <= bst.ulGenHigh; g++) {
        char name[32], path[1200];
        snprintf(name, sizeof name, "edb%08lX.log", g);
        const struct jv_entry *le = find(&set, name);
        CU_ASSERT_FATAL(le != NULL);
        CU_ASSERT_EQUAL(le->ino, JV_INO_LOG + g);
        CU_ASSERT_EQUAL(le->st.st_size, (off_t)LOG_KB * 1024);
        /* A closed generation's mtime: when it was last written. */
        struct stat ls;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        CU_ASSERT_FATAL(stat(path, &ls) == 0);
        CU_ASSERT_EQUAL(le->st.st_mtime, ls.st_mtime);
    }
    const struct jv_entry *m = &set.e[set.n - 1];
    CU_ASSERT_STRING_EQUAL(m->name, JV_MANIFEST_NAME);
    CU_ASSERT_EQUAL(m->ino, JV_INO_MANIFEST);
    size_t mlen = 0;
    char *mtext = (char *)read_file(v, m->ino, -1, &mlen);
    CU_ASSERT_EQUAL((off_t)mlen, m->st.st_size);
    mtext[mlen] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(mtext, "\"type\": \"full\""));
    /* The name of its own is the backup's: the manifest's begin and id. */
    CU_ASSERT_EQUAL(JetBackupManifestName(mtext, own, sizeof own), JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(own, set.e[set.n - 2].name);
    CU_ASSERT_PTR_NOT_NULL(strstr(mtext, "manifest_checksum"));
    free(mtext);

    /* Repeated listing, lookup and getattr: identical. */
    CU_ASSERT_EQUAL_FATAL(list_kind(v, JV_FULL, &again), set.n);
    for (int i = 0; i < set.n; i++) {
        CU_ASSERT_STRING_EQUAL(again.e[i].name, set.e[i].name);
        CU_ASSERT(same_stat(&again.e[i].st, &set.e[i].st));
    }
    /* Paging through the kind directory gives the same entries. */
    struct jv_entry one;
    for (int i = 0; i < set.n; i++) {
        CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_FULL, (size_t)i, &one, 1), 1);
        CU_ASSERT_STRING_EQUAL(one.name, set.e[i].name);
    }
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_FULL, (size_t)set.n, &one, 1), 0);

    /* Writers commit a lot meanwhile: the live files move on... */
    tu_load(s, t, 1500, 4000, 'b');
    tu_load(s, t, 0, 1500, 'c');
    CU_ASSERT(wait_preserved(2 * PAGE));
    struct stat live = {0};
    for (double end = mono_now() + 20; mono_now() < end; sleep_ms(10))
        if (stat(dbpath, &live) == 0 && live.st_size > db->st.st_size) break;
    CU_ASSERT(live.st_size > db->st.st_size);
    struct gens g;
    log_gens(&g);
    CU_ASSERT(g.high > bst.ulGenHigh + 1);
    /* ...but the set stays as it was at begin. */
    CU_ASSERT_EQUAL_FATAL(list_kind(v, JV_FULL, &again), set.n);
    for (int i = 0; i < set.n; i++) {
        const struct jv_entry *e = &set.e[i];
        CU_ASSERT_STRING_EQUAL(again.e[i].name, e->name);
        CU_ASSERT(same_stat(&again.e[i].st, &e->st));
        struct stat st;
        CU_ASSERT_EQUAL(jv_getattr(v, e->ino, &st), 0);
        CU_ASSERT(same_stat(&st, &e->st));
        struct jv_entry le;
        CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_FULL, e->name, &le), 0);
        CU_ASSERT_EQUAL(le.ino, e->ino);
        CU_ASSERT(same_stat(&le.st, &e->st));
    }
    struct jv_entry le;
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_FULL, "edbFFFFFFFF.log", &le), -ENOENT);
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_MANIFEST, "x", &le), -ENOTDIR);
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_DB, 0, &le, 1), -ENOTDIR);
    jv_destroy(v);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    stop();
}

static void test_view_lookup_in_kind_dir_begins_that_backup(void)
{
    start("view_lookup", 500);
    struct jv_view *v = new_view(NULL);
    struct jv_entry e;
    /* `cat MOUNT/backup/copy/jetfs.db` starts with this lookup. */
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_COPY, DB_NAME, &e), 0);
    CU_ASSERT_EQUAL(e.ino, JV_INO_DB_OF(JV_COPY, 0));
    CU_ASSERT_EQUAL(e.st.st_ino, JV_INO_DB_OF(JV_COPY, 0));
    CU_ASSERT(e.st.st_size > 0);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    CU_ASSERT(status_has(v, "\"type\": \"copy\""));
    /* A name not in the set is ENOENT; the backup keeps running. */
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_COPY, "nosuch", &e), -ENOENT);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_COPY, JV_MANIFEST_NAME, &e), 0);
    CU_ASSERT_EQUAL(e.ino, JV_INO_MANIFEST_OF(JV_COPY));
    jv_destroy(v);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);

    /* Same file, new session: same inode number. */
    v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    CU_ASSERT_EQUAL(find(&set, DB_NAME) ? find(&set, DB_NAME)->ino : 0, JV_INO_DB);
    jv_destroy(v);
    stop();
}

/* ---- 3. one kind per session ---- */

static void test_view_second_kind_while_running_is_ebusy(void)
{
    start("view_busy", 500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    /* The same kind again is the same backup. */
    CU_ASSERT_EQUAL(jv_begin(v, JV_FULL), 0);
    CU_ASSERT_EQUAL(list_kind(v, JV_FULL, &set), set.n);
    /* Opening a file of the set commits the session to it. */
    int64_t fh = jv_open(v, JV_INO_MANIFEST);
    CU_ASSERT_FATAL(fh > 0);
    jv_release(v, fh);

    struct jv_entry e;
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_COPY, 0, &e, 1), -EBUSY);
    CU_ASSERT(status_says(v, "last_error", "copy", "full", "EBUSY", (char *)NULL));
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_INCREMENTAL, "x", &e), -EBUSY);
    CU_ASSERT(status_says(v, "last_error", "incremental", "full", (char *)NULL));
    CU_ASSERT_EQUAL(jv_begin(v, JV_DIFFERENTIAL), -EBUSY);
    CU_ASSERT(status_says(v, "last_error", "differential", "full", (char *)NULL));
    /* The running one is untouched. */
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    CU_ASSERT(status_has(v, "\"type\": \"full\""));

    /* Another session while this one runs: the engine has one backup. */
    struct jv_view *other = new_view(NULL);
    CU_ASSERT_EQUAL(jv_begin(other, JV_COPY), -EBUSY);
    char *le = status_field(other, "last_error");
    CU_ASSERT(strcmp(le, "null") != 0);
    free(le);
    jv_destroy(other);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);

    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, why, sizeof why), 1);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    /* Ended: any begin in this session is EBUSY, the same kind too. */
    CU_ASSERT_EQUAL(jv_begin(v, JV_FULL), -EBUSY);
    CU_ASSERT_EQUAL(jv_begin(v, JV_COPY), -EBUSY);
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_COPY, 0, &e, 1), -EBUSY);
    CU_ASSERT(status_says(v, "last_error", "copy", "full", (char *)NULL));
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT(status_has(v, "\"state\": \"ended\""));
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), -ENOENT);
    jv_destroy(v);
    stop();
}

/* A tree walk (du, find, ls -R) lists every kind: a set no file of which
 * was opened gives way to the next kind listed, recording nothing; the
 * kind begun again gets new node ids (no page cached of the old set can
 * be served) with the same inode numbers. */
static void test_view_a_set_only_listed_gives_way_to_another_kind(void)
{
    start("view_giveway", 500);
    JET_INSPECT_DBHEADER h0 = header();
    struct jv_view *v = new_view(NULL);
    struct set full, copy, again;
    begin_listing(v, JV_FULL, &full);
    const struct jv_entry *db = find(&full, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL(db->ino, JV_INO_DB_OF(JV_FULL, 0));
    uint64_t old_db = db->ino;
    begin_listing(v, JV_COPY, &copy);
    CU_ASSERT(status_has(v, "\"type\": \"copy\""));
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    struct stat st;
    CU_ASSERT_EQUAL(jv_getattr(v, old_db, &st), -ENOENT);
    CU_ASSERT_EQUAL(jv_open(v, old_db), -ENOENT);
    /* An incremental with no full is refused; the copy already gave way. */
    struct jv_entry e;
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_INCREMENTAL, 0, &e, 1), -EPERM);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    begin_listing(v, JV_FULL, &again);
    db = find(&again, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_NOT_EQUAL(db->ino, old_db);
    CU_ASSERT_EQUAL(db->st.st_ino, JV_INO_DB_OF(JV_FULL, 0));
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_FULL, DB_NAME, &e), 0);
    CU_ASSERT_EQUAL(e.ino, db->ino);
    /* Nothing was recorded by the sets that gave way. */
    JET_INSPECT_DBHEADER h1 = header();
    CU_ASSERT(memcmp(h0.backup, h1.backup, sizeof h0.backup) == 0);
    /* Opening a file commits the session: no other kind now. */
    int64_t fh = jv_open(v, db->ino);
    CU_ASSERT_FATAL(fh > 0);
    CU_ASSERT_EQUAL(jv_begin(v, JV_COPY), -EBUSY);
    CU_ASSERT(status_says(v, "last_error", "copy", "full", "opened", (char *)NULL));
    jv_release(v, fh);
    /* Read whole, it ends normally. */
    read_set(v, &again, NULL, NULL);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    jv_destroy(v);
    /* A set only listed, then unmounted: aborted, saying so. */
    v = new_view(NULL);
    begin_listing(v, JV_COPY, &copy);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 1);
    CU_ASSERT(strstr(why, "no file of the set was opened") != NULL);
    jv_destroy(v);
    stop();
}

/* Backup software that skips files it already holds: a log generation
 * read whole in an earlier session (here one that was aborted) is
 * "delivered_before" in status and need not be read again; the database
 * and the manifest always must.  Their mtimes are the begin's, to the
 * microsecond, and differ between sessions. */
static void test_view_a_generation_delivered_before_need_not_be_read_again(void)
{
    start("view_delivered", 500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    read_set(v, &set, NULL, NULL);
    struct timespec full_mtime = find(&set, JV_MANIFEST_NAME)->st.st_mtim;
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, NULL, 0), 0);
    jv_destroy(v);
    /* Session 2: an incremental read whole, then aborted. */
    tu_load(s, t, 500, 1300, 'b');
    v = new_view(NULL);
    begin_listing(v, JV_INCREMENTAL, &set);
    read_set(v, &set, NULL, NULL);
    struct timespec inc_mtime = find(&set, JV_MANIFEST_NAME)->st.st_mtim;
    CU_ASSERT(inc_mtime.tv_sec != full_mtime.tv_sec || inc_mtime.tv_nsec != full_mtime.tv_nsec);
    CU_ASSERT(inc_mtime.tv_nsec % 1000 == 0 && (inc_mtime.tv_nsec != 0 || full_mtime.tv_nsec != 0));
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, NULL, 0), 1);
    struct set first = set;
    jv_destroy(v);
    /* Session 3: the same generations again, and newer ones. */
    tu_load(s, t, 1300, 1400, 'c');
    v = new_view(NULL);
    begin_listing(v, JV_INCREMENTAL, &set);
    int delivered = 0;
    for (int i = 0; i < set.n; i++) {
        const struct jv_entry *old = find(&first, set.e[i].name);
        if (!old || !strcmp(set.e[i].name, JV_MANIFEST_NAME)) continue;
        /* The same file: same inode number, size and mtime (nanoseconds). */
        CU_ASSERT(same_stat(&old->st, &set.e[i].st));
        CU_ASSERT_EQUAL(old->st.st_mtim.tv_nsec, set.e[i].st.st_mtim.tv_nsec);
        CU_ASSERT_EQUAL(old->st.st_ctim.tv_nsec, set.e[i].st.st_ctim.tv_nsec);
        delivered++;
    }
    CU_ASSERT_FATAL(delivered > 0);
    char pat[300];
    CU_ASSERT(status_has(v, "\"state\": \"delivered_before\""));
    CU_ASSERT(status_has(v, "\"state\": \"unread\""));
    /* Read only what the earlier session did not deliver. */
    for (int i = 0; i < set.n; i++)
        if (!find(&first, set.e[i].name) || !strcmp(set.e[i].name, JV_MANIFEST_NAME))
            free(read_file(v, set.e[i].ino, -1, NULL));
    snprintf(pat, sizeof pat, "{\"name\": \"%s\", \"size\": %lld, \"bytes_read\": %lld, \"state\": \"read\"}",
             JV_MANIFEST_NAME, (long long)find(&set, JV_MANIFEST_NAME)->st.st_size,
             (long long)find(&set, JV_MANIFEST_NAME)->st.st_size);
    CU_ASSERT(status_has(v, pat));
    CU_ASSERT(!status_has(v, "\"state\": \"unread\""));
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    CU_ASSERT(strstr(why, "ended normally") && strstr(why, "by an earlier backup"));
    jv_destroy(v);
    CU_ASSERT(header().backup[1].backup_id != 0);
    stop();
}

/* ---- 4. incremental and differential need a full backup ---- */

static void test_view_incremental_without_full_is_eperm(void)
{
    start("view_nofull", 800);
    struct jv_view *v = new_view(NULL);
    struct jv_entry e;
    CU_ASSERT_EQUAL(jv_begin(v, JV_INCREMENTAL), -EPERM);
    /* The JET error, by its number and its message. */
    CU_ASSERT(status_says(v, "last_error", "incremental", "EPERM", "-560", JetErrorString(JET_errMissingFullBackup),
                          (char *)NULL));
    CU_ASSERT_EQUAL(jv_readdir(v, JV_INO_KIND + JV_DIFFERENTIAL, 0, &e, 1), -EPERM);
    CU_ASSERT(status_says(v, "last_error", "differential", "-560", JetErrorString(JET_errMissingFullBackup),
                          (char *)NULL));
    CU_ASSERT_EQUAL(jv_lookup(v, JV_INO_KIND + JV_INCREMENTAL, JV_MANIFEST_NAME, &e), -EPERM);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT(status_has(v, "\"state\": \"none\""));

    /* A refused begin leaves the session idle: a full may still begin. */
    struct set set;
    begin_listing(v, JV_FULL, &set);
    CU_ASSERT(status_says(v, "last_error", "null", (char *)NULL));
    /* Aborted: no history, so the next session still cannot go on. */
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, NULL, 0), 1);
    jv_destroy(v);
    v = new_view(NULL);
    CU_ASSERT_EQUAL(jv_begin(v, JV_INCREMENTAL), -EPERM);
    jv_destroy(v);

    /* A full backup read whole and unmounted... */
    v = new_view(NULL);
    begin_listing(v, JV_FULL, &set);
    read_set(v, &set, NULL, NULL);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, NULL, 0), 0);
    /* ...the same session cannot go on with another kind... */
    CU_ASSERT_EQUAL(jv_begin(v, JV_INCREMENTAL), -EBUSY);
    jv_destroy(v);
    JET_INSPECT_DBHEADER h0 = header();
    CU_ASSERT_FATAL(h0.backup[0].backup_id != 0);

    /* ...a new one can: only log generations and the manifest. */
    tu_load(s, t, 800, 1200, 'i');
    v = new_view(NULL);
    begin_listing(v, JV_INCREMENTAL, &set);
    CU_ASSERT_PTR_NULL(find(&set, DB_NAME));
    CU_ASSERT(set.n >= 2);
    for (int i = 0; i < set.n - 2; i++) CU_ASSERT(gen_of_name(set.e[i].name) != 0);
    CU_ASSERT_STRING_EQUAL(set.e[set.n - 1].name, JV_MANIFEST_NAME);
    char *mtext = (char *)read_file(v, JV_INO_MANIFEST_OF(JV_INCREMENTAL), -1, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mtext, "\"type\": \"incremental\""));
    free(mtext);
    read_set(v, &set, NULL, NULL);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "ended normally"));
    jv_destroy(v);
    JET_INSPECT_DBHEADER h1 = header();
    CU_ASSERT(h1.backup[1].backup_id != 0);
    CU_ASSERT_EQUAL(h1.backup[1].predecessor_id, h0.backup[0].backup_id);
    CU_ASSERT_EQUAL(h1.backup[0].backup_id, h0.backup[0].backup_id);
    stop();
}

/* ---- 5. reads ---- */

static void test_view_random_reads_equal_sequential_and_the_snapshot_at_begin(void)
{
    uint64_t rng = tu_seed("test_view_random_reads_equal_sequential_and_the_snapshot_at_begin");
    start("view_reads", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    /* The reference: each file read sequentially right at begin. */
    unsigned char *ref[MAXSET];
    size_t refn[MAXSET];
    for (int i = 0; i < set.n; i++) {
        ref[i] = read_file(v, set.e[i].ino, -1, &refn[i]);
        CU_ASSERT_EQUAL((off_t)refn[i], set.e[i].st.st_size);
    }
    /* Overwrite every page of the table and grow the file; wait until the
     * engine has written pages of the database over their images at begin. */
    tu_load(s, t, 0, 1500, 'z');
    tu_load(s, t, 1500, 3000, 'y');
    CU_ASSERT(wait_preserved(8 * PAGE));
    const struct jv_entry *db = find(&set, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    int dbi = (int)(db - set.e);
    {
        /* The live file did change under the snapshot. */
        size_t changed = 0;
        unsigned char page[PAGE];
        int fd = open(dbpath, O_RDONLY);
        CU_ASSERT_FATAL(fd >= 0);
        for (size_t p = 2; p < refn[dbi] / PAGE; p++)
            if (pread(fd, page, PAGE, (off_t)(p * PAGE)) == PAGE && memcmp(page, ref[dbi] + p * PAGE, PAGE)) changed++;
        close(fd);
        fprintf(stderr, "reads: %zu of %zu pages rewritten since begin\n", changed, refn[dbi] / PAGE);
        CU_ASSERT(changed > 0);
    }
    for (int i = 0; i < set.n; i++) {
        size_t n = refn[i];
        unsigned char *buf = malloc(n + 70000);
        CU_ASSERT_FATAL(buf != NULL);
        int64_t fh = jv_open(v, set.e[i].ino);
        CU_ASSERT_FATAL(fh > 0);
        int bad = 0;
        for (int r = 0; r < 150; r++) {
            uint64_t off = n ? tu_rand(&rng) % (n + 4096) : 0;
            size_t len = 1 + (size_t)(tu_rand(&rng) % 65536);
            ssize_t got = jv_read(v, fh, off, buf, len);
            size_t expect = off >= n ? 0 : (n - off < len ? n - off : len);
            if (got != (ssize_t)expect || (expect && memcmp(buf, ref[i] + off, expect))) {
                if (!bad++)
                    fprintf(stderr, "%s: read %zu at %llu gave %zd (expected %zu)\n", set.e[i].name, len,
                            (unsigned long long)off, got, expect);
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        /* At and past the end: 0; the last byte alone: 1. */
        CU_ASSERT_EQUAL(jv_read(v, fh, n, buf, 100), 0);
        CU_ASSERT_EQUAL(jv_read(v, fh, n + 12345, buf, 100), 0);
        CU_ASSERT_EQUAL(jv_read(v, fh, n - 1, buf, 100), 1);
        CU_ASSERT_EQUAL(buf[0], ref[i][n - 1]);
        /* Whole again, in odd sizes: the same bytes. */
        read_range(v, fh, 0, n, buf, 12289);
        CU_ASSERT(memcmp(buf, ref[i], n) == 0);
        jv_release(v, fh);
        /* A closed generation is served as it is on disk. */
        if (gen_of_name(set.e[i].name)) {
            char path[sizeof dir + sizeof set.e[i].name + 1];
            snprintf(path, sizeof path, "%s/%s", dir, set.e[i].name);
            int fd = open(path, O_RDONLY);
            CU_ASSERT_FATAL(fd >= 0);
            CU_ASSERT_EQUAL(pread(fd, buf, n, 0), (ssize_t)n);
            close(fd);
            CU_ASSERT(memcmp(buf, ref[i], n) == 0);
        }
        free(buf);
    }
    for (int i = 0; i < set.n; i++) free(ref[i]);
    /* Every byte was read: unmount ends it normally. */
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, NULL, 0), 0);
    jv_destroy(v);
    stop();
}

/* What a reader passed, as the view hands it back: each drop of the
 * database's node, contiguous with the one before, and never within
 * JV_DROP_BEHIND of the furthest byte read.  Returns the bytes dropped. */
struct drops {
    uint64_t ino, next, total;
    int bad;
};
static void take_drop(struct drops *d, const struct jv_drop *dr, uint64_t furthest, bool at_release)
{
    if (!dr->len) return;
    if (dr->ino != d->ino || dr->off != d->next || (!at_release && dr->off + dr->len + JV_DROP_BEHIND > furthest)) {
        if (!d->bad++)
            fprintf(stderr, "drop [%llu, +%llu) of %llu: expected from %llu, before %llu\n", (unsigned long long)dr->off,
                    (unsigned long long)dr->len, (unsigned long long)dr->ino, (unsigned long long)d->next,
                    (unsigned long long)(furthest - JV_DROP_BEHIND));
    }
    d->next = dr->off + dr->len;
    d->total += dr->len;
}

static void test_view_a_sequential_reader_is_dropped_behind_and_a_random_one_is_not(void)
{
    uint64_t rng = tu_seed("test_view_a_sequential_reader_is_dropped_behind_and_a_random_one_is_not");
    start("view_drops", 60000);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    const struct jv_entry *db = find(&set, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    uint64_t n = (uint64_t)db->st.st_size;
    CU_ASSERT_FATAL(n >= JV_DROP_BEHIND + 2 * JV_DROP_STEP);
    const size_t piece = 1u << 20;
    unsigned char *buf = malloc(piece);
    CU_ASSERT_FATAL(buf != NULL);
    struct jv_drop dr;

    /* A sequential reader, its requests completing two by two in the
     * wrong order (the kernel's readahead has several in flight): dropped
     * behind as it goes, the rest at release, the whole file in all. */
    int64_t fh = jv_open(v, db->ino);
    CU_ASSERT_FATAL(fh > 0);
    struct drops d = {.ino = db->ino};
    uint64_t furthest = 0;
    for (uint64_t off = 0; off < n; off += 2 * piece) {
        uint64_t order[2] = {off + piece, off};
        for (int k = 0; k < 2; k++) {
            if (order[k] >= n) continue;
            ssize_t got = jv_read_drop(v, fh, order[k], buf, piece, &dr);
            CU_ASSERT(got > 0);
            if (order[k] + (uint64_t)got > furthest) furthest = order[k] + (uint64_t)got;
            take_drop(&d, &dr, furthest, false);
        }
        if (off + 2 * piece == 24 * piece) CU_ASSERT(d.total > 0); /* dropping began on the way */
    }
    CU_ASSERT(d.total + JV_DROP_BEHIND + JV_DROP_STEP + 2 * piece >= n);
    jv_release_drop(v, fh, &dr);
    take_drop(&d, &dr, furthest, true);
    CU_ASSERT_EQUAL(d.total, n);
    CU_ASSERT_EQUAL(d.bad, 0);

    /* A random reader: nothing dropped, reading or at release. */
    fh = jv_open(v, db->ino);
    CU_ASSERT_FATAL(fh > 0);
    uint64_t dropped = 0;
    for (int r = 0; r < 300; r++) {
        uint64_t off = tu_rand(&rng) % n;
        CU_ASSERT(jv_read_drop(v, fh, off, buf, 65536, &dr) > 0);
        dropped += dr.len;
    }
    jv_release_drop(v, fh, &dr);
    dropped += dr.len;
    CU_ASSERT_EQUAL(dropped, 0);

    /* A small file read whole (a log generation) is dropped whole at
     * release; one read in part keeps what it read. */
    for (int i = 0; i < set.n; i++) {
        if (!gen_of_name(set.e[i].name)) continue;
        uint64_t size = (uint64_t)set.e[i].st.st_size;
        fh = jv_open(v, set.e[i].ino);
        CU_ASSERT_FATAL(fh > 0);
        CU_ASSERT_EQUAL(jv_read_drop(v, fh, 0, buf, 4096, &dr), 4096);
        jv_release_drop(v, fh, &dr);
        CU_ASSERT_EQUAL(dr.len, 0);
        fh = jv_open(v, set.e[i].ino);
        CU_ASSERT_FATAL(fh > 0);
        for (uint64_t off = 0; off < size; off += 65536) CU_ASSERT(jv_read_drop(v, fh, off, buf, 65536, &dr) > 0);
        jv_release_drop(v, fh, &dr);
        CU_ASSERT_EQUAL(dr.ino, set.e[i].ino);
        CU_ASSERT_EQUAL(dr.off, 0);
        CU_ASSERT_EQUAL(dr.len, size);
        break;
    }
    free(buf);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, NULL, 0), 1);
    jv_destroy(v);
    stop();
}

/* ---- 6, 7. ending ---- */

static void test_view_unmount_after_reading_all_ends_full_normally_and_truncates(void)
{
    start("view_end_full", 1500);
    JET_INSPECT_DBHEADER h0 = header();
    CU_ASSERT_EQUAL(h0.backup[0].backup_id, 0);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &bst) == JET_errSuccess);
    struct gens before, after;
    log_gens(&before);
    /* Generations older than the set's (below the checkpoint) exist. */
    CU_ASSERT_FATAL(before.low < bst.ulGenLow);
    read_set(v, &set, NULL, NULL);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "ended normally"));
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT(status_has(v, "\"state\": \"ended\""));
    CU_ASSERT(status_says(v, "outcome", "full backup ended normally", (char *)NULL));
    log_gens(&after);
    for (unsigned g = before.low; g < bst.ulGenLow; g++) {
        CU_ASSERT(!after.present[g]);
        if (after.present[g]) fprintf(stderr, "generation %u below the checkpoint was kept\n", g);
    }
    /* The generation being written is never truncated. */
    CU_ASSERT(after.present[before.high]);
    JET_INSPECT_DBHEADER h1 = header();
    CU_ASSERT(h1.backup[0].backup_id != 0);
    CU_ASSERT_EQUAL(h1.backup[0].gen_low, bst.ulGenLow);
    CU_ASSERT_EQUAL(h1.backup[0].gen_high, bst.ulGenHigh);
    /* status reports it among the last completed backups. */
    char id[32];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)h1.backup[0].backup_id);
    CU_ASSERT(status_says(v, "last_completed", id, (char *)NULL));
    jv_destroy(v);
    stop();
}

static void test_view_unmount_after_half_the_database_aborts_and_changes_nothing(void)
{
    start("view_end_half", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_INSPECT_DBHEADER h0 = header();
    struct gens before;
    log_gens(&before);
    read_set(v, &set, NULL, DB_NAME);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "aborted"));
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT(status_says(v, "outcome", "aborted", "jetfs.db read 50%", (char *)NULL));
    check_untouched(&before, &h0);
    jv_destroy(v);
    stop();
}

static void test_view_explicit_normal_end_is_refused_until_read_whole(void)
{
    start("view_end_normal", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &bst) == JET_errSuccess);
    JET_INSPECT_DBHEADER h0 = header();
    struct gens before;
    log_gens(&before);
    CU_ASSERT_FATAL(before.low < bst.ulGenLow);
    read_set(v, &set, NULL, DB_NAME);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_NORMAL, why, sizeof why), -EAGAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, DB_NAME));
    /* Nothing changed: still running, nothing deleted or recorded. */
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    CU_ASSERT(status_has(v, "\"state\": \"running\""));
    CU_ASSERT(status_says(v, "last_error", DB_NAME, (char *)NULL));
    check_untouched(&before, &h0);
    /* Reading the rest makes the same request succeed. */
    const struct jv_entry *db = find(&set, DB_NAME);
    CU_ASSERT_FATAL(db != NULL);
    int64_t fh = jv_open(v, db->ino);
    CU_ASSERT_FATAL(fh > 0);
    unsigned char *buf = malloc((size_t)db->st.st_size);
    read_range(v, fh, (uint64_t)db->st.st_size / 2, (uint64_t)db->st.st_size, buf, 65536);
    free(buf);
    jv_release(v, fh);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_NORMAL, why, sizeof why), 0);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    /* The refusal no longer stands: status does not keep it.  Each file's
     * state and bytes read stay, as the backup ended. */
    CU_ASSERT(status_says(v, "last_error", "null", (char *)NULL));
    CU_ASSERT(status_has(v, "\"state\": \"ended\""));
    CU_ASSERT(status_has(v, "\"state\": \"read\""));
    CU_ASSERT(!status_has(v, "\"state\": \"unread\""));
    check_full_truncated(&before);
    jv_destroy(v);
    stop();
}

static void test_view_explicit_abort_truncates_nothing(void)
{
    start("view_end_abort", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_INSPECT_DBHEADER h0 = header();
    struct gens before;
    log_gens(&before);
    read_set(v, &set, NULL, NULL);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, why, sizeof why), 1);
    CU_ASSERT(status_says(v, "outcome", "aborted", (char *)NULL));
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    check_untouched(&before, &h0);
    jv_destroy(v);
    stop();
}

static void test_view_copy_and_differential_normal_end_truncate_nothing(void)
{
    start("view_end_copy", 1500);
    struct gens before, after;
    struct set set;
    char why[1024];
    /* Copy: recorded as a copy, the full history untouched. */
    struct jv_view *v = new_view(NULL);
    begin_listing(v, JV_COPY, &set);
    CU_ASSERT_PTR_NOT_NULL(find(&set, DB_NAME));
    log_gens(&before);
    read_set(v, &set, NULL, NULL);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "ended normally"));
    log_gens(&after);
    CU_ASSERT(none_deleted(&before, &after));
    JET_INSPECT_DBHEADER h = header();
    CU_ASSERT(h.backup[3].backup_id != 0);
    CU_ASSERT_EQUAL(h.backup[0].backup_id, 0);
    jv_destroy(v);
    /* A copy is not a full: incremental still refused. */
    v = new_view(NULL);
    CU_ASSERT_EQUAL(jv_begin(v, JV_INCREMENTAL), -EPERM);
    jv_destroy(v);

    v = new_view(NULL);
    begin_listing(v, JV_FULL, &set);
    read_set(v, &set, NULL, NULL);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, NULL, 0), 0);
    jv_destroy(v);
    tu_load(s, t, 0, 800, 'd');
    /* Differential: recorded, nothing truncated, even with every log read. */
    v = new_view(NULL);
    begin_listing(v, JV_DIFFERENTIAL, &set);
    CU_ASSERT_PTR_NULL(find(&set, DB_NAME));
    log_gens(&before);
    read_set(v, &set, NULL, NULL);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 0);
    log_gens(&after);
    CU_ASSERT(none_deleted(&before, &after));
    JET_INSPECT_DBHEADER h2 = header();
    CU_ASSERT(h2.backup[2].backup_id != 0);
    CU_ASSERT_EQUAL(h2.backup[1].backup_id, 0);
    jv_destroy(v);
    stop();
}

static void test_view_truncate_manual_unmount_aborts_explicit_end_truncates(void)
{
    start("view_manual", 1500);
    struct jv_options o = options();
    o.truncate_manual = true;
    struct jv_view *v = new_view(&o);
    CU_ASSERT(status_has(v, "\"truncate\": \"manual\""));
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_INSPECT_DBHEADER h0 = header();
    struct gens before;
    log_gens(&before);
    read_set(v, &set, NULL, NULL);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 1);
    CU_ASSERT(status_says(v, "outcome", "aborted", "manual", (char *)NULL));
    check_untouched(&before, &h0);
    jv_destroy(v);

    /* The explicit normal end truncates. */
    v = new_view(&o);
    begin_listing(v, JV_FULL, &set);
    JET_BACKUPSTATUS bst = {.cbStruct = sizeof bst};
    CU_ASSERT_FATAL(JetGetBackupStatusInstance(inst, &bst) == JET_errSuccess);
    log_gens(&before);
    CU_ASSERT_FATAL(before.low < bst.ulGenLow);
    read_set(v, &set, NULL, NULL);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_NORMAL, why, sizeof why), 0);
    check_full_truncated(&before);
    jv_destroy(v);
    stop();
}

static void test_view_unread_manifest_alone_aborts_at_unmount(void)
{
    start("view_manifest", 1000);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    JET_INSPECT_DBHEADER h0 = header();
    struct gens before;
    log_gens(&before);
    read_set(v, &set, JV_MANIFEST_NAME, NULL);
    /* One byte short of the manifest is still not read. */
    int64_t fh = jv_open(v, JV_INO_MANIFEST);
    CU_ASSERT_FATAL(fh > 0);
    const struct jv_entry *m = find(&set, JV_MANIFEST_NAME);
    CU_ASSERT_FATAL(m != NULL);
    char *buf = malloc((size_t)m->st.st_size);
    CU_ASSERT_EQUAL(jv_read(v, fh, 0, buf, (size_t)m->st.st_size - 1), m->st.st_size - 1);
    free(buf);
    jv_release(v, fh);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 1);
    CU_ASSERT(status_says(v, "outcome", "aborted", JV_MANIFEST_NAME, (char *)NULL));
    check_untouched(&before, &h0);
    jv_destroy(v);
    stop();
}

/* ---- 8. watchdog ---- */

static void test_view_idle_timeout_aborts_and_reads_fail(void)
{
    start("view_idle", 800);
    struct jv_options o = options();
    o.idle_timeout_s = 1;
    struct jv_view *v = new_view(&o);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    struct gens before, after;
    log_gens(&before);
    int64_t db = jv_open(v, JV_INO_DB), mf = jv_open(v, JV_INO_MANIFEST);
    CU_ASSERT_FATAL(db > 0 && mf > 0);
    unsigned char buf[4096];
    CU_ASSERT_EQUAL(jv_read(v, db, 0, buf, sizeof buf), (ssize_t)sizeof buf);
    /* Not idle yet. */
    CU_ASSERT_EQUAL(jv_tick(v, mono_now()), 0);
    /* Past the timeout since the database read, but the manifest was just
     * read: that is activity too. */
    usleep(1200 * 1000);
    CU_ASSERT(jv_read(v, mf, 0, buf, 16) > 0);
    CU_ASSERT_EQUAL(jv_tick(v, mono_now()), 0);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    /* A reader that holds a file open may be reading from the kernel's
     * page cache, which the daemon never sees: not idle, however long. */
    CU_ASSERT_EQUAL(jv_tick(v, mono_now() + 1e6), 0);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    jv_release(v, mf);
    CU_ASSERT_EQUAL(jv_tick(v, mono_now() + 1e6), 0);
    jv_release(v, db);
    /* Every file closed, and long after: idle, aborted. */
    CU_ASSERT_EQUAL(jv_tick(v, mono_now() + 2e6), 1);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    CU_ASSERT_EQUAL(jv_open(v, JV_INO_DB), -EIO);
    CU_ASSERT(status_says(v, "outcome", "aborted", "idle", (char *)NULL));
    CU_ASSERT_EQUAL(jv_tick(v, mono_now() + 3e6), 0);
    log_gens(&after);
    CU_ASSERT(none_deleted(&before, &after));
    jv_destroy(v);
    stop();
}

static void test_view_space_limit_aborts_at_next_tick(void)
{
    start("view_space", 1500);
    struct jv_options o = options();
    /* Begin preserves the two header pages; a few more are allowed. */
    o.space_limit = 6 * PAGE;
    struct jv_view *v = new_view(&o);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    int64_t db = jv_open(v, JV_INO_DB);
    CU_ASSERT_FATAL(db > 0);
    CU_ASSERT(preserved_bytes() <= o.space_limit);
    CU_ASSERT_EQUAL(jv_tick(v, mono_now()), 0);
    CU_ASSERT_EQUAL(engine_backup_running(), 1);
    /* Commits overwrite pages: the snapshot grows past the limit. */
    tu_load(s, t, 0, 1500, 'w');
    CU_ASSERT(wait_preserved(o.space_limit));
    CU_ASSERT_EQUAL(jv_tick(v, mono_now()), 1);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    unsigned char buf[512];
    CU_ASSERT_EQUAL(jv_read(v, db, 0, buf, sizeof buf), -EIO);
    CU_ASSERT(status_says(v, "outcome", "aborted", "space", (char *)NULL));
    jv_release(v, db);
    jv_destroy(v);
    stop();
}

/* ---- 9. corruption ---- */

static void flip_byte(off_t at, unsigned char *old)
{
    int fd = open(dbpath, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    unsigned char b;
    CU_ASSERT_FATAL(pread(fd, &b, 1, at) == 1);
    if (old) *old = b;
    b ^= 0x5a;
    CU_ASSERT_FATAL(pwrite(fd, &b, 1, at) == 1);
    fsync(fd);
    close(fd);
}

static void put_byte(off_t at, unsigned char b)
{
    int fd = open(dbpath, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pwrite(fd, &b, 1, at) == 1);
    close(fd);
}

static void test_view_corrupt_pages_are_eio_and_all_listed_in_status(void)
{
    start("view_corrupt", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    const struct jv_entry *db = find(&set, DB_NAME);
    CU_ASSERT_FATAL(db != NULL && db->st.st_size >= 40 * (off_t)PAGE);
    /* Nothing is committed after begin: pages 10 and 20 are served from
     * the file itself. */
    int64_t fh = jv_open(v, db->ino);
    CU_ASSERT_FATAL(fh > 0);
    unsigned char *buf = malloc(3 * PAGE);
    CU_ASSERT_EQUAL(jv_read(v, fh, 10 * PAGE, buf, PAGE), (ssize_t)PAGE);
    off_t at10 = 10 * (off_t)PAGE + 1234, at20 = 20 * (off_t)PAGE + 4321;
    unsigned char old10, old20;
    flip_byte(at10, &old10);
    flip_byte(at20, &old20);
    CU_ASSERT_EQUAL(jv_read(v, fh, 10 * PAGE, buf, PAGE), -EIO);
    CU_ASSERT_EQUAL(jv_read(v, fh, 10 * PAGE + 100, buf, 10), -EIO);
    /* A range reaching into the damaged page fails whole. */
    CU_ASSERT_EQUAL(jv_read(v, fh, 9 * PAGE, buf, 2 * PAGE), -EIO);
    CU_ASSERT_EQUAL(jv_read(v, fh, 20 * PAGE, buf, PAGE), -EIO);
    /* Other ranges still read. */
    CU_ASSERT_EQUAL(jv_read(v, fh, 11 * PAGE, buf, 3 * PAGE), (ssize_t)(3 * PAGE));
    CU_ASSERT_EQUAL(jv_read(v, fh, 30 * PAGE, buf, PAGE), (ssize_t)PAGE);
    CU_ASSERT_EQUAL(jv_read(v, fh, 0, buf, PAGE), (ssize_t)PAGE);
    /* Every damaged page is listed, each once, naming the page. */
    CU_ASSERT(status_says(v, "corrupt_pages", "page 10 ", "page 20 ", DB_NAME, (char *)NULL));
    char *cp = status_field(v, "corrupt_pages");
    int entries = 0;
    for (const char *p = cp; (p = strstr(p, "\n    \"")); p++) entries++;
    CU_ASSERT_EQUAL(entries, 2);
    if (entries != 2) fprintf(stderr, "corrupt_pages: %s\n", cp);
    free(cp);
    /* The backup can no longer end normally: everything else read whole. */
    struct gens before, after;
    log_gens(&before);
    read_set(v, &set, DB_NAME, NULL);
    unsigned char *all = malloc((size_t)db->st.st_size);
    CU_ASSERT_FATAL(all != NULL);
    read_range(v, fh, 0, 10 * PAGE, all, 65536);
    read_range(v, fh, 11 * PAGE, 20 * PAGE, all, 65536);
    read_range(v, fh, 21 * PAGE, (uint64_t)db->st.st_size, all, 65536);
    free(all);
    jv_release(v, fh);
    char why[1024];
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, why, sizeof why), 1);
    CU_ASSERT(status_says(v, "outcome", "aborted", DB_NAME, (char *)NULL));
    log_gens(&after);
    CU_ASSERT(none_deleted(&before, &after));
    free(buf);
    put_byte(at10, old10);
    put_byte(at20, old20);
    jv_destroy(v);
    stop();
}

/* ---- 10. handles ---- */

static void test_view_handles_outlive_the_end_and_fail_with_eio(void)
{
    start("view_handles", 800);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    uint64_t log_ino = 0;
    for (int i = 0; i < set.n; i++)
        if (set.e[i].ino >= JV_INO_LOG) log_ino = set.e[i].ino;
    CU_ASSERT_FATAL(log_ino != 0);
    int64_t db = jv_open(v, JV_INO_DB), lg = jv_open(v, log_ino), mf = jv_open(v, JV_INO_MANIFEST);
    int64_t kept = jv_open(v, JV_INO_DB); /* never released: jv_destroy frees it */
    CU_ASSERT_FATAL(db > 0 && lg > 0 && mf > 0 && kept > 0);
    CU_ASSERT_EQUAL(jv_open(v, JV_INO_STATUS), -EINVAL);
    CU_ASSERT_EQUAL(jv_open(v, JV_INO_LOG + 0xFFFFFu), -ENOENT);
    unsigned char buf[4096];
    CU_ASSERT_EQUAL(jv_read(v, db, 0, buf, sizeof buf), (ssize_t)sizeof buf);
    CU_ASSERT_EQUAL(jv_read(v, lg, 0, buf, sizeof buf), (ssize_t)sizeof buf);
    CU_ASSERT(jv_read(v, mf, 0, buf, sizeof buf) > 0);
    /* The backup ends while the handles are open (explicit end, files
     * still open: as `jetfs end` while tar runs). */
    CU_ASSERT_EQUAL(jv_end(v, JV_END_UNMOUNT, NULL, 0), 1);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(jv_read(v, db, 0, buf, sizeof buf), -EIO);
        CU_ASSERT_EQUAL(jv_read(v, lg, 8192, buf, sizeof buf), -EIO);
        CU_ASSERT_EQUAL(jv_read(v, mf, 0, buf, sizeof buf), -EIO);
        CU_ASSERT_EQUAL(jv_read(v, kept, 0, buf, sizeof buf), -EIO);
    }
    CU_ASSERT_EQUAL(jv_open(v, JV_INO_DB), -EIO);
    /* Attributes of the set stay answerable after the end. */
    struct stat st;
    CU_ASSERT_EQUAL(jv_getattr(v, JV_INO_DB, &st), 0);
    jv_release(v, db);
    jv_release(v, lg);
    jv_release(v, mf);
    jv_destroy(v);
    /* The engine is free for the next session. */
    v = new_view(NULL);
    CU_ASSERT(list_kind(v, JV_COPY, &set) > 0);
    /* destroy while running, with a handle open: ends it (aborted). */
    int64_t open_at_destroy = jv_open(v, JV_INO_DB_OF(JV_COPY, 0));
    CU_ASSERT(open_at_destroy > 0);
    jv_destroy(v);
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    stop();
}

/* ---- many readers, and an end while they read ---- */

struct reader {
    struct jv_view *v;
    uint64_t ino;
    const unsigned char *ref;
    size_t n;
    uint64_t rng;
    int wrong, after_eio_ok, reads_ok;
    bool saw_eio;
};

static volatile int readers_stop;

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    int64_t fh = jv_open(r->v, r->ino);
    if (fh <= 0) {
        r->wrong++;
        return NULL;
    }
    unsigned char *buf = malloc(65536);
    while (!__atomic_load_n(&readers_stop, __ATOMIC_ACQUIRE)) {
        uint64_t off = tu_rand(&r->rng) % r->n;
        size_t len = 1 + (size_t)(tu_rand(&r->rng) % 65536);
        ssize_t got = jv_read(r->v, fh, off, buf, len);
        size_t expect = r->n - off < len ? r->n - off : len;
        if (got == -EIO) {
            __atomic_store_n(&r->saw_eio, true, __ATOMIC_RELEASE);
            continue;
        }
        /* Bytes are never wrong, and once failed a handle stays failed. */
        if (got != (ssize_t)expect || memcmp(buf, r->ref + off, expect)) r->wrong++;
        else if (r->saw_eio) r->after_eio_ok++;
        else __atomic_fetch_add(&r->reads_ok, 1, __ATOMIC_RELAXED);
    }
    free(buf);
    jv_release(r->v, fh);
    return NULL;
}

static void test_view_concurrent_readers_see_the_snapshot_and_survive_the_end(void)
{
    uint64_t seed = tu_seed("test_view_concurrent_readers_see_the_snapshot_and_survive_the_end");
    start("view_threads", 1500);
    struct jv_view *v = new_view(NULL);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    enum { NREADERS = 4 };
    struct reader r[NREADERS];
    unsigned char *ref[NREADERS];
    pthread_t th[NREADERS];
    for (int i = 0; i < NREADERS; i++) {
        /* Two on the database, the others on log generations. */
        const struct jv_entry *e = i < 2 ? find(&set, DB_NAME) : &set.e[1 + (i - 2) % (set.n - 3)];
        CU_ASSERT_FATAL(e != NULL && e->ino != JV_INO_MANIFEST);
        size_t n = 0;
        ref[i] = read_file(v, e->ino, -1, &n);
        r[i] = (struct reader){.v = v, .ino = e->ino, .ref = ref[i], .n = n, .rng = seed + (uint64_t)i * 7919};
    }
    readers_stop = 0;
    for (int i = 0; i < NREADERS; i++) CU_ASSERT_FATAL(pthread_create(&th[i], NULL, reader_main, &r[i]) == 0);
    /* Commits meanwhile, then the end while they read. */
    tu_load(s, t, 0, 1500, 'x');
    CU_ASSERT(wait_preserved(4 * PAGE));
    for (double end = mono_now() + 10; mono_now() < end; sleep_ms(5)) {
        int slow = 0;
        for (int i = 0; i < NREADERS; i++) slow += __atomic_load_n(&r[i].reads_ok, __ATOMIC_RELAXED) < 20;
        if (!slow) break;
    }
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, NULL, 0), 1);
    /* Every reader then meets EIO. */
    for (double end = mono_now() + 10; mono_now() < end; sleep_ms(5)) {
        int failed = 0;
        for (int i = 0; i < NREADERS; i++) failed += __atomic_load_n(&r[i].saw_eio, __ATOMIC_ACQUIRE);
        if (failed == NREADERS) break;
    }
    __atomic_store_n(&readers_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NREADERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NREADERS; i++) {
        if (r[i].wrong || r[i].after_eio_ok)
            fprintf(stderr, "reader %d: %d wrong, %d ok after EIO, %d ok\n", i, r[i].wrong, r[i].after_eio_ok,
                    r[i].reads_ok);
        CU_ASSERT_EQUAL(r[i].wrong, 0);
        CU_ASSERT_EQUAL(r[i].after_eio_ok, 0);
        CU_ASSERT(r[i].reads_ok >= 20);
        CU_ASSERT(r[i].saw_eio);
        free(ref[i]);
    }
    CU_ASSERT_EQUAL(engine_backup_running(), 0);
    jv_destroy(v);
    stop();
}

/* ---- status is JSON, whatever the names in it hold ---- */

static void test_view_status_is_json_whatever_the_names_hold(void)
{
    start("view_status_json", 300);
    struct jv_options o = options();
    o.instance_name = "odd \"name\" \\ tab\t line\n bad\xff end";
    struct jv_view *v = new_view(&o);
    struct set set;
    begin_listing(v, JV_FULL, &set);
    char *text = jv_status_json(v, NULL);
    CU_ASSERT_FATAL(text != NULL);
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root) fprintf(stderr, "status is not JSON: line %d: %s\n%s", je.line, je.text, text);
    CU_ASSERT_FATAL(root != NULL);
    /* The name as given, but for the byte that is not UTF-8. */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(root, "instance")), "odd \"name\" \\ tab\t line\n bad? end");
    json_t *bk = json_object_get(root, "backup"), *files = json_object_get(bk, "files");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bk, "state")), "running");
    CU_ASSERT(json_is_integer(json_object_get(bk, "idle_seconds")));
    CU_ASSERT_EQUAL(json_array_size(files), (size_t)set.n);
    CU_ASSERT(json_is_integer(json_object_get(json_array_get(files, 0), "size")));
    CU_ASSERT(json_is_array(json_object_get(root, "last_completed")));
    CU_ASSERT(json_is_null(json_object_get(root, "last_error")));
    json_decref(root);
    free(text);
    CU_ASSERT_EQUAL(jv_end(v, JV_END_ABORT, NULL, 0), 1);
    jv_destroy(v);
    stop();
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("view", NULL, NULL);
    CU_add_test(suite, "listing root and backup begins nothing", test_view_listing_root_and_backup_begins_nothing);
    CU_add_test(suite, "status opens are snapshots", test_view_status_opens_are_snapshots);
    CU_add_test(suite, "opening a kind dir begins it; the set stays stable",
                test_view_opening_kind_dir_begins_and_set_stays_stable);
    CU_add_test(suite, "lookup in a kind dir begins that backup", test_view_lookup_in_kind_dir_begins_that_backup);
    CU_add_test(suite, "a second kind while running is EBUSY", test_view_second_kind_while_running_is_ebusy);
    CU_add_test(suite, "a set only listed gives way to another kind", test_view_a_set_only_listed_gives_way_to_another_kind);
    CU_add_test(suite, "a generation delivered before need not be read again",
                test_view_a_generation_delivered_before_need_not_be_read_again);
    CU_add_test(suite, "incremental without a full is EPERM", test_view_incremental_without_full_is_eperm);
    CU_add_test(suite, "random reads equal sequential and the snapshot at begin",
                test_view_random_reads_equal_sequential_and_the_snapshot_at_begin);
    CU_add_test(suite, "a sequential reader is dropped behind, a random one is not",
                test_view_a_sequential_reader_is_dropped_behind_and_a_random_one_is_not);
    CU_add_test(suite, "unmount after reading all ends a full normally and truncates",
                test_view_unmount_after_reading_all_ends_full_normally_and_truncates);
    CU_add_test(suite, "unmount after half the database aborts, changing nothing",
                test_view_unmount_after_half_the_database_aborts_and_changes_nothing);
    CU_add_test(suite, "explicit normal end refused until read whole",
                test_view_explicit_normal_end_is_refused_until_read_whole);
    CU_add_test(suite, "explicit abort truncates nothing", test_view_explicit_abort_truncates_nothing);
    CU_add_test(suite, "copy and differential truncate nothing",
                test_view_copy_and_differential_normal_end_truncate_nothing);
    CU_add_test(suite, "truncate manual: unmount aborts, explicit end truncates",
                test_view_truncate_manual_unmount_aborts_explicit_end_truncates);
    CU_add_test(suite, "an unread manifest alone aborts at unmount", test_view_unread_manifest_alone_aborts_at_unmount);
    CU_add_test(suite, "idle timeout aborts; reads fail", test_view_idle_timeout_aborts_and_reads_fail);
    CU_add_test(suite, "status is JSON whatever the names hold", test_view_status_is_json_whatever_the_names_hold);
    CU_add_test(suite, "space limit aborts at the next tick", test_view_space_limit_aborts_at_next_tick);
    CU_add_test(suite, "corrupt pages are EIO and all listed in status",
                test_view_corrupt_pages_are_eio_and_all_listed_in_status);
    CU_add_test(suite, "handles outlive the end and fail with EIO", test_view_handles_outlive_the_end_and_fail_with_eio);
    CU_add_test(suite, "concurrent readers see the snapshot and survive the end",
                test_view_concurrent_readers_see_the_snapshot_and_survive_the_end);
    return tu_run();
}

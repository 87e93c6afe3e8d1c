/*
 * test_restore.c -- restore (engine/restore.c with recovery.c): a
 * point-in-time restore by commit time gives exactly the commits up to that
 * time, stays so when the restored instance is opened again, and refuses a
 * time before the backup's consistent point instead of returning a database
 * from some other moment.  Also: every refusal (a broken chain of backup
 * ids, a set that differs from its manifest, a corrupt page, damaged or
 * foreign logs) names the piece and leaves the target as it was; the
 * manifest describes its set; JetExternalRestore2's success path.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

static char dir[1024], dbpath[1100];
static JET_INSTANCE inst;
static JET_SESID s;
static JET_TABLEID t;

static uint64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start(const char *name)
{
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir(name));
    snprintf(dbpath, sizeof dbpath, "%s/r.db", dir);
    inst = tu_instance("rs", dir, (struct tu_params){.log_kb = 256});
    tu_table(inst, dbpath, 1, &s, &t);
}

static void put(const char *k, const char *v)
{
    CU_ASSERT_FATAL(JetPutKV(s, t, k, strlen(k), v, strlen(v), 0) >= 0);
}

/* Takes a whole backup (incremental or full) into setdir and ends it normally. */
static void take_backup(const char *setdir, int incremental)
{
    tu_backup(inst, setdir, incremental ? "incremental" : "full", NULL);
}

/* The keys of table t in the restored instance at rdir, "k=v;" each, in order. */
static void restored_contents(const char *rdir, char *out, size_t cb)
{
    JET_SESID rs;
    JET_TABLEID rt;
    char db[1200];
    snprintf(db, sizeof db, "%s/r.db", rdir);
    JET_INSTANCE ri = tu_instance("restored", rdir, (struct tu_params){.log_kb = 256});
    tu_table(ri, db, 0, &rs, &rt);
    size_t used = 0;
    out[0] = '\0';
    static const char *keys[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[64];
        unsigned long n = 0;
        if (JetRetrieveKV(rs, rt, keys[i], 1, v, sizeof v - 1, &n, 0) < 0) continue;
        v[n] = '\0';
        used += (size_t)snprintf(out + used, cb - used, "%s=%s;", keys[i], v);
    }
    CU_ASSERT(JetTerm(ri) >= 0);
}

static void test_restore_stops_at_a_commit_time(void)
{
    char full[1200], inc[1200], r[1200], got[256], again[256], cmd[2600];
    start("rs_time");
    put("a", "1");
    snprintf(full, sizeof full, "%s/set-full", dir);
    snprintf(inc, sizeof inc, "%s/set-inc", dir);
    take_backup(full, 0);
    uint64_t before_full_end = now_us();
    sleep_ms(30);
    put("b", "2");
    sleep_ms(30);
    uint64_t between = now_us();
    sleep_ms(30);
    put("c", "3");
    /* Enough to fill the generation: the ones after the stop point must be
     * set aside by the restore, not left for a later recovery to replay. */
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 4; i++) put(i % 2 ? "x1" : "x0", big);
    free(big);
    put("a", "changed");
    take_backup(inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
    const char *chain[] = {full, inc};

    /* Up to `between`: b, not c nor the later change of a. */
    snprintf(r, sizeof r, "%s/restored-between", dir);
    JET_ERR err = JetRestoreSets(chain, 2, r, 0, between);
    if (err < 0) fprintf(stderr, "restore: %s\n", JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    /* Opening it again (recovery runs again) must not bring the later
     * commits back from the generations that held them. */
    restored_contents(r, again, sizeof again);
    CU_ASSERT_STRING_EQUAL(again, "a=1;b=2;");
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q after-restore-point", r);
    CU_ASSERT(system(cmd) == 0);

    /* No stop: everything. */
    snprintf(r, sizeof r, "%s/restored-all", dir);
    CU_ASSERT_EQUAL_FATAL(JetRestoreSets(chain, 2, r, 0, 0), JET_errSuccess);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=changed;b=2;c=3;");

    /* A time before the full backup's consistent point is refused, naming
     * both times; nothing is left that looks like a restored database. */
    snprintf(r, sizeof r, "%s/restored-early", dir);
    err = JetRestoreSets(chain, 2, r, 0, before_full_end - 60u * 1000000u);
    CU_ASSERT_EQUAL(err, JET_errInvalidParameter);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "consistent point") != NULL);
    snprintf(cmd, sizeof cmd, "test -e '%s/r.db'", r);
    CU_ASSERT(system(cmd) != 0);
}

/* ESE's directory form: a set restored for a created, not yet initialised
 * instance, which then finds it at JetInit. */
static void test_restore_instance_directory_form(void)
{
    char full[1200], target[1200], got[256];
    start("rs_instance");
    put("a", "1");
    put("b", "2");
    snprintf(full, sizeof full, "%s/set-full", dir);
    take_backup(full, 0);
    put("c", "after the backup");
    /* Refused once initialised: restore comes before JetInit. */
    TU_CHECK_ERR(JetRestoreInstance(inst, full, NULL, NULL), JET_errAlreadyInitialized);
    CU_ASSERT(JetTerm(inst) >= 0);

    snprintf(target, sizeof target, "%s/instance2", dir);
    JET_INSTANCE ri = 0;
    CU_ASSERT_FATAL(JetCreateInstance(&ri, "dirform") >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&ri, 0, JET_paramSystemPath, 0, target) >= 0);
    CU_ASSERT_FATAL(JetSetSystemParameter(&ri, 0, JET_paramLogFilePath, 0, target) >= 0);
    TU_CHECK_ERR(JetRestoreInstance(ri, NULL, NULL, NULL), JET_errInvalidParameter);
    TU_CHECK_ERR(JetRestoreInstance(ri, full, target, NULL), JET_errSuccess);
    /* The target is not empty any more: a second restore over it is refused. */
    TU_CHECK_ERR(JetRestoreInstance(ri, full, target, NULL), JET_errInvalidPath);
    /* Without a destination the database goes back to its original path,
     * where the live file still is: refused (test_ese_restore.c restores
     * there once it is gone). */
    TU_CHECK_ERR(JetRestoreInstance(ri, full, NULL, NULL), JET_errDatabaseDuplicate);
    CU_ASSERT(JetTerm(ri) >= 0);
    restored_contents(target, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    TU_CHECK_ERR(JetExternalRestore(target, target, NULL, 0, target, 5, 3, NULL), JET_errInvalidParameter);

    /* ESE's external form: the files already in place, the range found in
     * the directory (bounds 0) or given. */
    char ext[1300], cmd[6000], db[1400];
    for (int given = 0; given < 2; given++) {
        snprintf(ext, sizeof ext, "%s/external%d", dir, given);
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm '%s/backup.manifest'", ext, full, ext, ext);
        CU_ASSERT_FATAL(system(cmd) == 0);
        snprintf(db, sizeof db, "%s/r.db", ext);
        JET_RSTMAP map = {dbpath, db};
        long lo = 0, hi = 0;
        if (given) {
            FILE *p;
            snprintf(cmd, sizeof cmd, "ls '%s' | grep '^edb[0-9A-F]*\\.log$' | sort | sed -n '1p;$p' | cut -c4-11", ext);
            CU_ASSERT_FATAL((p = popen(cmd, "r")) != NULL);
            char a[16] = "", b[16] = "";
            CU_ASSERT_FATAL(fscanf(p, "%15s %15s", a, b) >= 1);
            pclose(p);
            lo = strtol(a, NULL, 16);
            hi = b[0] ? strtol(b, NULL, 16) : lo;
        }
        JET_ERR err = JetExternalRestore(ext, ext, &map, 1, ext, lo, hi, NULL);
        if (err < 0) fprintf(stderr, "external restore: %s\n", JetGetLastErrorDetail());
        CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
        restored_contents(ext, got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");
    }
}

/* What the status callback saw, and when to refuse. */
static int st_begin, st_progress, st_complete, st_order_ok = 1, st_fail_at = -1;
static unsigned long st_last_done, st_total;

static JET_ERR record_status(JET_SESID sesid, unsigned long snp, unsigned long snt, void *pv)
{
    const JET_SNPROG *p = pv;
    (void)sesid;
    if (snp != JET_snpRestore || !p || p->cbStruct != sizeof *p) st_order_ok = 0;
    else if (snt == JET_sntBegin) {
        st_begin++;
        st_total = p->cunitTotal;
        if (p->cunitDone != 0 || st_progress || st_complete) st_order_ok = 0;
    } else if (snt == JET_sntProgress) {
        if (!st_begin || st_complete || p->cunitDone < st_last_done || p->cunitDone > p->cunitTotal) st_order_ok = 0;
        st_last_done = p->cunitDone;
        if (st_progress++ == st_fail_at) return JET_errOutOfMemory;
    } else if (snt == JET_sntComplete) {
        st_complete++;
        if (p->cunitDone != p->cunitTotal) st_order_ok = 0;
    } else st_order_ok = 0;
    return JET_errSuccess;
}

static void test_restore_reports_progress_and_can_be_stopped(void)
{
    char full[1200], inc[1200], r[1200], got[256], cmd[1400];
    start("rs_progress");
    put("a", "1");
    snprintf(full, sizeof full, "%s/set-full", dir);
    snprintf(inc, sizeof inc, "%s/set-inc", dir);
    take_backup(full, 0);
    char *big = malloc(100001);
    memset(big, 'y', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 8; i++) put("x", big); /* several generations */
    free(big);
    put("b", "2");
    take_backup(inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
    const char *chain[] = {full, inc};

    snprintf(r, sizeof r, "%s/restored", dir);
    CU_ASSERT_EQUAL_FATAL(JetRestoreSets2(chain, 2, r, 0, 0, record_status), JET_errSuccess);
    CU_ASSERT(st_order_ok);
    CU_ASSERT_EQUAL(st_begin, 1);
    CU_ASSERT_EQUAL(st_complete, 1);
    CU_ASSERT(st_total >= 3);            /* the generations the 800 KB crossed */
    CU_ASSERT(st_progress >= 3);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;");

    /* A callback that refuses stops the restore with its error, and the
     * target this call created is removed. */
    st_begin = st_progress = st_complete = 0;
    st_last_done = 0;
    st_fail_at = 1;
    snprintf(r, sizeof r, "%s/restored-stopped", dir);
    CU_ASSERT_EQUAL(JetRestoreSets2(chain, 2, r, 0, 0, record_status), JET_errOutOfMemory);
    CU_ASSERT(strstr(JetGetLastErrorDetail(), "status callback") != NULL);
    snprintf(cmd, sizeof cmd, "test -e '%s'", r);
    CU_ASSERT(system(cmd) != 0);
    st_fail_at = -1;
}

/* ---- refusals: each names the piece, and leaves no target behind ---- */

static char rf_full[1200], rf_inc[1200];

/* A full set and an incremental one holding at least three generations. */
static void make_chain(const char *name)
{
    start(name);
    put("a", "1");
    snprintf(rf_full, sizeof rf_full, "%s/set-full", dir);
    snprintf(rf_inc, sizeof rf_inc, "%s/set-inc", dir);
    take_backup(rf_full, 0);
    char *big = malloc(100001);
    memset(big, 'z', 100000);
    big[100000] = '\0';
    for (int i = 0; i < 8; i++) put("x", big);
    free(big);
    take_backup(rf_inc, 1);
    CU_ASSERT(JetTerm(inst) >= 0);
}

/* The n-th (0-based) generation file of a set, by name order. */
static void nth_log(const char *set, int n, char *out, size_t cb)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep '^edb[0-9A-F]*\\.log$' | sort | sed -n '%dp'", set, n + 1);
    FILE *p = popen(cmd, "r");
    char name[64] = "";
    CU_ASSERT_FATAL(p && fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    snprintf(out, cb, "%s/%s", set, name);
}

static void drop_manifest(const char *set)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/backup.manifest", set);
    CU_ASSERT_FATAL(unlink(p) == 0);
}

/* ---- chain of ids, manifest, corrupt pages, JetExternalRestore2 ---- */

/* The value of "key": "..." or "key": N in text from `from` on, into out;
 * a pointer just past it, or NULL if absent. */
static const char *mf_field(const char *from, const char *key, char *out, size_t cb)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = from ? strstr(from, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    int quoted = *p == '"';
    if (quoted) p++;
    size_t n = 0;
    while (p[n] && (quoted ? p[n] != '"' : (p[n] != ',' && p[n] != '}' && p[n] != '\n'))) n++;
    if (n >= cb) n = cb - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

/* What a set's backup.manifest says about the set as a whole. */
struct manifest {
    char *text;
    uint64_t backup_id, predecessor_id, log_signature;
    char type[32];
    unsigned low, high;
};

static void manifest_load(const char *set, struct manifest *m)
{
    char path[1300], v[128];
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/backup.manifest", set);
    m->text = tu_slurp(path, NULL);
    CU_ASSERT_FATAL(m->text != NULL);
    CU_ASSERT_FATAL(mf_field(m->text, "backup_id", v, sizeof v) != NULL);
    m->backup_id = strtoull(v, NULL, 16);
    CU_ASSERT_FATAL(mf_field(m->text, "predecessor_id", v, sizeof v) != NULL);
    m->predecessor_id = strtoull(v, NULL, 16);
    CU_ASSERT_FATAL(mf_field(m->text, "log_signature", v, sizeof v) != NULL);
    m->log_signature = strtoull(v, NULL, 16);
    CU_ASSERT_FATAL(mf_field(m->text, "type", m->type, sizeof m->type) != NULL);
    const char *g = strstr(m->text, "\"generations\": {");
    CU_ASSERT_FATAL(g != NULL && sscanf(g, "\"generations\": {\"low\": %u, \"high\": %u}", &m->low, &m->high) == 2);
}

static int dir_is_empty(const char *d)
{
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "test -d '%s' && test -z \"$(ls -A '%s')\"", d, d);
    return system(cmd) == 0;
}

/* Copies set to a new set directory dst (replaced if present). */
static void copy_set(const char *set, const char *dst)
{
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, set, dst);
    CU_ASSERT_FATAL(system(cmd) == 0);
}

/*
 * Restores sets into a target that does not exist, then into one that
 * exists and is empty: each must be refused with want, with a detail
 * holding every string of needles (NULL-terminated), and leave the target
 * as it was (still missing; still there and empty) -- restore refuses
 * before writing anything.
 */
static void expect_sets_refused(const char *const *sets, int nsets, JET_ERR want, const char *const *needles,
                                const char *what)
{
    char r[1200];
    for (int existing = 0; existing < 2; existing++) {
        snprintf(r, sizeof r, "%s/restored-%s%s", dir, what, existing ? "-existing" : "");
        if (existing) CU_ASSERT_FATAL(mkdir(r, 0700) == 0);
        JET_ERR err = JetRestoreSets(sets, nsets, r, 0, 0);
        const char *detail = JetGetLastErrorDetail();
        int all = 1;
        for (int i = 0; needles[i]; i++) {
            CU_ASSERT_PTR_NOT_NULL(strstr(detail, needles[i]));
            if (!strstr(detail, needles[i])) all = 0;
        }
        if (err != want || !all) {
            fprintf(stderr, "%s: got %ld (want %ld): %s\n  expected to find:", what, err, want, detail);
            for (int i = 0; needles[i]; i++) fprintf(stderr, " [%s]", needles[i]);
            fprintf(stderr, "\n");
        }
        CU_ASSERT_EQUAL(err, want);
        if (existing) {
            CU_ASSERT(dir_is_empty(r));
            rmdir(r);
        } else CU_ASSERT(access(r, F_OK) != 0);
    }
}

static void test_restore_refuses_an_incremental_outside_the_chain(void)
{
    char f1[1200], i1[1200], c[1200], i1c[1200], f2[1200], i2[1200];
    start("rs_pred");
    snprintf(f1, sizeof f1, "%s/set-f1", dir);
    snprintf(i1, sizeof i1, "%s/set-i1", dir);
    snprintf(c, sizeof c, "%s/set-copy", dir);
    snprintf(i1c, sizeof i1c, "%s/set-i1c", dir);
    snprintf(f2, sizeof f2, "%s/set-f2", dir);
    snprintf(i2, sizeof i2, "%s/set-i2", dir);
    /* F1 <- I1 <- I1c is one chain, with a copy backup C between I1 and
     * I1c (a copy is outside the incremental chain); F2 <- I2 another. */
    put("a", "1");
    tu_backup(inst, f1, "full", NULL);
    put("b", "2");
    tu_backup(inst, i1, "incremental", NULL);
    put("c", "3");
    tu_backup(inst, c, "copy", NULL);
    put("d", "4");
    tu_backup(inst, i1c, "incremental", NULL);
    put("a", "5");
    tu_backup(inst, f2, "full", NULL);
    put("b", "6");
    tu_backup(inst, i2, "incremental", NULL);
    CU_ASSERT(JetTerm(inst) >= 0);

    struct manifest mf1, mi1, mc, mi1c, mf2, mi2;
    manifest_load(f1, &mf1);
    manifest_load(i1, &mi1);
    manifest_load(c, &mc);
    manifest_load(i1c, &mi1c);
    manifest_load(f2, &mf2);
    manifest_load(i2, &mi2);
    /* The chains as the engine recorded them. */
    CU_ASSERT_EQUAL(mi1.predecessor_id, mf1.backup_id);
    CU_ASSERT_EQUAL(mi1c.predecessor_id, mi1.backup_id);
    CU_ASSERT_EQUAL(mi2.predecessor_id, mf2.backup_id);
    CU_ASSERT_STRING_EQUAL(mc.type, "copy");

    char hf1[17], hi1[17], hc[17], hf2[17];
    snprintf(hf1, sizeof hf1, "%016llx", (unsigned long long)mf1.backup_id);
    snprintf(hi1, sizeof hi1, "%016llx", (unsigned long long)mi1.backup_id);
    snprintf(hc, sizeof hc, "%016llx", (unsigned long long)mc.backup_id);
    snprintf(hf2, sizeof hf2, "%016llx", (unsigned long long)mf2.backup_id);

    /* F1 + I2: I2 follows F2, not F1.  Named: I2's set, the predecessor it
     * holds (F2) and the one the chain needs (F1). */
    const char *a[] = {f1, i2};
    const char *na[] = {i2, "predecessor", hf2, hf1, NULL};
    expect_sets_refused(a, 2, JET_errInvalidBackupSequence, na, "f1-i2");
    /* F1 + I1 + I2: I2's predecessor is F2, not I1. */
    const char *b[] = {f1, i1, i2};
    const char *nb[] = {i2, "predecessor", hf2, hi1, NULL};
    expect_sets_refused(b, 3, JET_errInvalidBackupSequence, nb, "f1-i1-i2");
    /* F2 + I1: an older incremental after a newer full. */
    const char *cc[] = {f2, i1};
    const char *nc[] = {i1, "predecessor", hf1, hf2, NULL};
    expect_sets_refused(cc, 2, JET_errInvalidBackupSequence, nc, "f2-i1");
    /* C + I1c: the generations are contiguous (I1c holds every generation
     * since I1's truncation, so C's and more), only the ids tell that I1c
     * follows I1, not the copy. */
    CU_ASSERT(mi1c.low <= mc.high + 1 && mi1c.high > mc.high);
    const char *d[] = {c, i1c};
    const char *nd[] = {i1c, "predecessor", hi1, hc, NULL};
    expect_sets_refused(d, 2, JET_errInvalidBackupSequence, nd, "copy-i1c");
    /* ... which the same sets without their manifests restore: the refusal
     * above came from the ids alone. */
    char c2[1200], i1c2[1200], r[1300];
    snprintf(c2, sizeof c2, "%s/nomf-copy", dir);
    snprintf(i1c2, sizeof i1c2, "%s/nomf-i1c", dir);
    copy_set(c, c2);
    copy_set(i1c, i1c2);
    drop_manifest(c2);
    drop_manifest(i1c2);
    const char *d2[] = {c2, i1c2};
    snprintf(r, sizeof r, "%s/restored-nomf", dir);
    JET_ERR err = JetRestoreSets(d2, 2, r, 0, 0);
    if (err < 0) fprintf(stderr, "copy + i1c without manifests: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(err, JET_errSuccess);
    /* The real chain, copy or not in between, is accepted. */
    const char *e[] = {f1, i1, i1c};
    snprintf(r, sizeof r, "%s/restored-chain", dir);
    err = JetRestoreSets(e, 3, r, 0, 0);
    if (err < 0) fprintf(stderr, "f1 + i1 + i1c: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL(err, JET_errSuccess);
    char got[256];
    if (err >= 0) {
        restored_contents(r, got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "a=1;b=2;c=3;d=4;");
    }
    free(mf1.text), free(mi1.text), free(mc.text), free(mi1c.text), free(mf2.text), free(mi2.text);
}

struct unlisted_seen {
    char paths[8][1300];
    int n;
};

static void note_unlisted(void *arg, const char *path)
{
    struct unlisted_seen *u = arg;
    if (u->n < 8) snprintf(u->paths[u->n], sizeof u->paths[0], "%s", path);
    u->n++;
}

static bool unlisted_has(const struct unlisted_seen *u, const char *path)
{
    for (int i = 0; i < u->n && i < 8; i++)
        if (!strcmp(u->paths[i], path)) return true;
    return false;
}

static void test_restore_ignores_files_its_manifest_does_not_list(void)
{
    char bad_full[1200], bad_inc[1200], log[1300];
    make_chain("rs_unlisted");
    snprintf(bad_full, sizeof bad_full, "%s/bad-full", dir);
    snprintf(bad_inc, sizeof bad_inc, "%s/bad-inc", dir);
    const char *chain[] = {bad_full, bad_inc};

    /* Files the manifest does not list (what rsync into one destination
     * without --delete leaves: an older generation, a database from a full
     * copied into the same place; a stray note) are ignored, never copied
     * or replayed, and JetInspectSetUnlisted names each of them. */
    copy_set(rf_full, bad_full);
    copy_set(rf_inc, bad_inc);
    char extra[1300], stale_db[1300], note[1300], cmd[8000];
    nth_log(bad_inc, 0, log, sizeof log);
    snprintf(extra, sizeof extra, "%s/edb000000FF.log", bad_inc);
    snprintf(stale_db, sizeof stale_db, "%s/r.db", bad_inc);
    snprintf(note, sizeof note, "%s/notes.txt", bad_inc);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s/r.db' '%s' && echo hi > '%s'", log, extra, rf_full, stale_db, note);
    CU_ASSERT_FATAL(system(cmd) == 0);
    struct unlisted_seen seen = {0};
    TU_CHECK_ERR(JetInspectSetUnlisted(bad_inc, note_unlisted, &seen), JET_errSuccess);
    CU_ASSERT_EQUAL(seen.n, 3);
    CU_ASSERT(unlisted_has(&seen, extra) && unlisted_has(&seen, stale_db) && unlisted_has(&seen, note));
    seen.n = 0;
    TU_CHECK_ERR(JetInspectSetUnlisted(bad_full, note_unlisted, &seen), JET_errSuccess);
    CU_ASSERT_EQUAL(seen.n, 0);
    char good[256] = "", got[256] = "", r[1300];
    snprintf(r, sizeof r, "%s/restored-clean", dir);
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r, 0, 0), JET_errSuccess);
    restored_contents(r, good, sizeof good);
    const char *stale_chain[] = {bad_full, bad_inc};
    snprintf(r, sizeof r, "%s/restored-stale", dir);
    TU_CHECK_ERR(JetRestoreSets(stale_chain, 2, r, 0, 0), JET_errSuccess);
    restored_contents(r, got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, good);
    snprintf(cmd, sizeof cmd, "test ! -e '%s/edb000000FF.log' && test ! -e '%s/notes.txt'", r, r);
    CU_ASSERT(system(cmd) == 0);
    /* ...while a listed file that is missing from every set given is still
     * refused, named (one the full also holds would be taken from there:
     * test_chain). */
    nth_log(bad_inc, 1, log, sizeof log);
    CU_ASSERT_FATAL(unlink(log) == 0);
    const char *missing[] = {log, "missing", NULL};
    expect_sets_refused(stale_chain, 2, JET_errMissingRestoreLogFiles, missing, "stale-missing");
}

/*
 * Every way a chain can be damaged that restore must refuse, as one table
 * (as PostgreSQL's t/003_corruption.pl): each row damages fresh copies of
 * one full + incremental chain, and restore must refuse with the row's
 * error, name what its damage says (the file, and for a changed log the
 * sizes or hashes the manifest and the file disagree on), and leave no
 * target behind -- whether the target was missing or an empty directory.
 */
#define NEEDLES 3
typedef void (*damage_fn)(const char *full, const char *inc, char needles[NEEDLES][1400]);
static char other_inc[1200]; /* an incremental set of another instance */

static void dmg_hash_chain(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    char log[1300];
    /* The second generation's link to its predecessor rewritten, with a
     * valid header checksum: only the chain check can see it (no manifest,
     * or its hash of the file would refuse it first). */
    drop_manifest(inc);
    nth_log(inc, 1, log, sizeof log);
    FILE *f = fopen(log, "r+b");
    unsigned char h[4096];
    CU_ASSERT_FATAL(f && fread(h, 1, sizeof h, f) == sizeof h);
    h[48] ^= 0x5a;
    uint64_t sum = XXH3_64bits(h + 8, sizeof h - 8);
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)(sum >> (8 * i));
    CU_ASSERT_FATAL(fseek(f, 0, SEEK_SET) == 0 && fwrite(h, 1, sizeof h, f) == sizeof h);
    fclose(f);
    snprintf(n[0], 1400, "%s", strrchr(log, '/') + 1);
}

static void dmg_other_instance(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    char log[1300], cmd[4000];
    drop_manifest(inc);
    nth_log(inc, 1, log, sizeof log);
    snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s'", other_inc, strrchr(log, '/') + 1, log);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(n[0], 1400, "%s", strrchr(log, '/') + 1);
}

static void dmg_listed_generation_missing(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    char log[1300];
    nth_log(inc, 1, log, sizeof log);
    CU_ASSERT_FATAL(unlink(log) == 0);
    snprintf(n[0], 1400, "%s", strrchr(log, '/') + 1);
    snprintf(n[1], 1400, "missing");
}

static void dmg_generation_gap(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    char log[1300];
    nth_log(inc, 1, log, sizeof log);
    CU_ASSERT_FATAL(unlink(log) == 0);
    drop_manifest(inc);
    snprintf(n[0], 1400, "generation");
}

static void dmg_database_short(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)inc;
    char db[1300];
    struct stat st;
    snprintf(db, sizeof db, "%s/r.db", full);
    CU_ASSERT_FATAL(stat(db, &st) == 0 && truncate(db, st.st_size - 8192) == 0);
    snprintf(n[0], 1400, "r.db");
}

/* A log's size changed by delta bytes (grown with 'G's, or cut). */
static void resize_log(const char *set, int which, long long delta, char n[NEEDLES][1400])
{
    char log[1300];
    long long size = 0;
    nth_log(set, which, log, sizeof log);
    tu_file_hash(log, 0, &size);
    CU_ASSERT_FATAL(size > 8192);
    if (delta > 0) {
        FILE *f = fopen(log, "ab");
        CU_ASSERT_FATAL(f != NULL);
        for (long long i = 0; i < delta; i++) fputc('G', f);
        fclose(f);
    } else {
        CU_ASSERT_FATAL(truncate(log, size + delta) == 0);
    }
    snprintf(n[0], 1400, "%s", log);
    snprintf(n[1], 1400, "%lld bytes", size + delta);
    snprintf(n[2], 1400, "manifest says %lld", size);
}
static void dmg_log_grown(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    resize_log(inc, 1, 100, n);
}
static void dmg_log_cut(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)inc;
    resize_log(full, 0, -4096, n);
}

/* One byte of a log's body changed, its size the same. */
static void flip_log_byte(const char *set, char n[NEEDLES][1400])
{
    char log[1300];
    long long size = 0, after_size = 0;
    nth_log(set, 0, log, sizeof log);
    uint64_t before = tu_file_hash(log, 0, &size);
    FILE *f = fopen(log, "r+b");
    CU_ASSERT_FATAL(f != NULL && fseek(f, 4096 + 777, SEEK_SET) == 0);
    int ch = fgetc(f);
    CU_ASSERT_FATAL(ch != EOF && fseek(f, 4096 + 777, SEEK_SET) == 0);
    fputc(ch ^ 0x01, f);
    fclose(f);
    uint64_t after = tu_file_hash(log, 0, &after_size);
    CU_ASSERT_FATAL(after_size == size && after != before);
    snprintf(n[0], 1400, "%s", log);
    snprintf(n[1], 1400, "%016llx", (unsigned long long)after);
    snprintf(n[2], 1400, "manifest says %016llx", (unsigned long long)before);
}
static void dmg_log_byte_inc(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)full;
    flip_log_byte(inc, n);
}
static void dmg_log_byte_full(const char *full, const char *inc, char n[NEEDLES][1400])
{
    (void)inc;
    flip_log_byte(full, n);
}

static const struct {
    const char *name;
    damage_fn damage;
    JET_ERR want;
} refusals[] = {
    {"a log's link to its predecessor rewritten", dmg_hash_chain, JET_errGivenLogFileIsNotContiguous},
    {"a log of another instance", dmg_other_instance, JET_errGivenLogFileHasBadSignature},
    {"a listed generation missing", dmg_listed_generation_missing, JET_errMissingRestoreLogFiles},
    {"a generation missing, no manifest", dmg_generation_gap, JET_errMissingRestoreLogFiles},
    {"the database a page short", dmg_database_short, JET_errBadBackupDatabaseSize},
    {"an incremental's log grown by 100 bytes", dmg_log_grown, JET_errLogFileCorrupt},
    {"a full set's log cut by a page", dmg_log_cut, JET_errLogFileCorrupt},
    {"a byte of an incremental's log changed", dmg_log_byte_inc, JET_errLogFileCorrupt},
    {"a byte of a full set's log changed", dmg_log_byte_full, JET_errLogFileCorrupt},
};

static void test_restore_refuses_every_damage_in_the_table(void)
{
    char bad_full[1200], bad_inc[1200], what[32];
    /* Another instance with as many generations, its own log signature. */
    make_chain("rs_other");
    snprintf(other_inc, sizeof other_inc, "%s", rf_inc);
    make_chain("rs_refusals");
    snprintf(bad_full, sizeof bad_full, "%s/bad-full", dir);
    snprintf(bad_inc, sizeof bad_inc, "%s/bad-inc", dir);
    const char *chain[] = {bad_full, bad_inc};
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        char needles[NEEDLES][1400] = {{0}};
        const char *want[NEEDLES + 1] = {0};
        copy_set(rf_full, bad_full);
        copy_set(rf_inc, bad_inc);
        refusals[i].damage(bad_full, bad_inc, needles);
        int k = 0;
        for (int j = 0; j < NEEDLES; j++)
            if (needles[j][0]) want[k++] = needles[j];
        fprintf(stderr, "refusal %zu: %s\n", i, refusals[i].name);
        snprintf(what, sizeof what, "table-%zu", i);
        expect_sets_refused(chain, 2, refusals[i].want, want, what);
    }
}

static void test_restore_refuses_a_corrupt_data_page(void)
{
    char full[1200], sdb[1300], r[1200];
    start("rs_page");
    tu_load(s, t, 0, 400, 'q');
    /* A clean shutdown and a new start: the checkpoint the full backup
     * starts from is past every write of the rows, so the set's logs do
     * not touch their pages and replay cannot rewrite the damage. */
    CU_ASSERT(JetTerm(inst) >= 0);
    inst = tu_instance("rs", dir, (struct tu_params){.log_kb = 256});
    tu_table(inst, dbpath, 0, &s, &t);
    snprintf(full, sizeof full, "%s/set-full", dir);
    JET_LOGINFO li;
    tu_backup(inst, full, "full", &li);
    CU_ASSERT(JetTerm(inst) >= 0);
    /* Undamaged, the set restores: what is refused below is the damage. */
    const char *set[] = {full};
    snprintf(r, sizeof r, "%s/restored-undamaged", dir);
    TU_CHECK_ERR(JetRestoreSets(set, 1, r, 0, 0), JET_errSuccess);

    /* A leaf page holding values: a whole 500-byte run of 'q' inside one
     * page, past the header copies and the meta page. */
    snprintf(sdb, sizeof sdb, "%s/r.db", full);
    JET_INSPECT_DBHEADER h;
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(sdb, &h) >= 0);
    uint32_t ps = h.page_size;
    CU_ASSERT_FATAL(ps >= 4096);
    long long size = 0;
    char *img = NULL;
    FILE *f = fopen(sdb, "rb");
    CU_ASSERT_FATAL(f != NULL);
    tu_file_hash(sdb, 0, &size);
    img = malloc((size_t)size);
    CU_ASSERT_FATAL(img && fread(img, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    char run[500];
    memset(run, 'q', sizeof run);
    long long at = -1;
    for (long long pg = 3; at < 0 && (pg + 1) * ps <= size; pg++)
        for (long long off = pg * ps; off + (long long)sizeof run <= (pg + 1) * ps; off++)
            if (!memcmp(img + off, run, sizeof run)) {
                at = off + 250;
                break;
            }
    free(img);
    CU_ASSERT_FATAL(at > 0);
    unsigned pgno = (unsigned)(at / ps);
    f = fopen(sdb, "r+b");
    CU_ASSERT_FATAL(f != NULL && fseek(f, at, SEEK_SET) == 0);
    fputc('Q', f);
    fclose(f);

    /* The manifest lists no hash for a database file (each page carries a
     * checksum), so it passes; the check of the restored file must refuse,
     * naming the set's file and the page, and leave no target. */
    char pg[32];
    snprintf(pg, sizeof pg, "page %u ", pgno);
    const char *needles[] = {sdb, pg, NULL};
    expect_sets_refused(set, 1, JET_errReadVerifyFailure, needles, "page");

    /* ESE's in-place form over the same damaged files refuses too, naming
     * the file it was given and the page. */
    char cmd[6000], rdb[1300];
    snprintf(r, sizeof r, "%s/restored-in-place", dir);
    snprintf(rdb, sizeof rdb, "%s/r.db", r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s'/* '%s/'", r, r, full, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_RSTMAP map = {dbpath, rdb};
    TU_CHECK_ERR(JetExternalRestore2(r, r, &map, 1, r, &li, NULL, NULL, NULL, NULL), JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), rdb));
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), pg));
}

static void test_manifest_describes_the_set(void)
{
    char full[1200], inc[1200];
    JET_LOGINFO lf, li;
    JET_INSPECT_DBHEADER after_full, after_inc;
    start("rs_mfdesc");
    tu_load(s, t, 0, 300, 'm');
    snprintf(full, sizeof full, "%s/set-full", dir);
    snprintf(inc, sizeof inc, "%s/set-inc", dir);
    tu_backup(inst, full, "full", &lf);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(dbpath, &after_full) >= 0);
    tu_load(s, t, 300, 1200, 'n'); /* ~450 KB: past a generation */
    tu_backup(inst, inc, "incremental", &li);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(dbpath, &after_inc) >= 0);
    CU_ASSERT(JetTerm(inst) >= 0);

    struct manifest mf, mi;
    manifest_load(full, &mf);
    manifest_load(inc, &mi);
    /* Types and ids, against the history the normal end wrote in the
     * database header. */
    CU_ASSERT_STRING_EQUAL(mf.type, "full");
    CU_ASSERT_STRING_EQUAL(mi.type, "incremental");
    CU_ASSERT(mf.backup_id != 0);
    CU_ASSERT_EQUAL(mf.backup_id, after_full.backup[0].backup_id);
    CU_ASSERT_EQUAL(mf.predecessor_id, 0);
    CU_ASSERT_EQUAL(mi.backup_id, after_inc.backup[1].backup_id);
    CU_ASSERT(mi.backup_id != mf.backup_id);
    CU_ASSERT_EQUAL(mi.predecessor_id, mf.backup_id);
    CU_ASSERT_EQUAL(after_inc.backup[1].predecessor_id, mf.backup_id);
    CU_ASSERT_EQUAL(after_inc.backup[0].backup_id, mf.backup_id); /* the incremental leaves the full's record */
    /* Generations: JetGetLogInfoInstance2's range, and the header's. */
    CU_ASSERT_EQUAL(mf.low, lf.ulGenLow);
    CU_ASSERT_EQUAL(mf.high, lf.ulGenHigh);
    CU_ASSERT_EQUAL(mi.low, li.ulGenLow);
    CU_ASSERT_EQUAL(mi.high, li.ulGenHigh);
    CU_ASSERT_EQUAL(mf.low, after_full.backup[0].gen_low);
    CU_ASSERT_EQUAL(mf.high, after_full.backup[0].gen_high);
    CU_ASSERT_EQUAL(mi.low, after_inc.backup[1].gen_low);
    CU_ASSERT_EQUAL(mi.high, after_inc.backup[1].gen_high);
    CU_ASSERT(mi.high > mi.low);
    CU_ASSERT(mi.low <= mf.high + 1);
    CU_ASSERT_STRING_EQUAL(lf.szBaseName, "edb");

    const char *sets[] = {full, inc};
    struct manifest *ms[] = {&mf, &mi};
    for (int si = 0; si < 2; si++) {
        const struct manifest *m = ms[si];
        char path[1400], v[128], want[64];
        /* Its own checksum: XXH3 of the text before the checksum line. */
        const char *ck = strstr(m->text, "  \"manifest_checksum\": ");
        CU_ASSERT_FATAL(ck != NULL && mf_field(ck, "manifest_checksum", v, sizeof v) != NULL);
        CU_ASSERT_EQUAL(strtoull(v, NULL, 16), XXH3_64bits(m->text, (size_t)(ck - m->text)));
        /* Every file listed: present, of its size; logs of its XXH3-64 over
         * the whole file, databases without a hash. */
        const char *files = strstr(m->text, "\"files\": [");
        CU_ASSERT_FATAL(files != NULL);
        int nlogs = 0, ndbs = 0, nlisted = 0;
        unsigned seen_lo = ~0u, seen_hi = 0;
        for (const char *e = strstr(files, "{\"name\": "); e; e = strstr(e + 1, "{\"name\": ")) {
            char name[256];
            const char *end = strchr(e, '}');
            CU_ASSERT_FATAL(end && mf_field(e, "name", name, sizeof name) && mf_field(e, "size", v, sizeof v));
            nlisted++;
            snprintf(path, sizeof path, "%s/%s", sets[si], name);
            long long actual = -1;
            uint64_t hash = tu_file_hash(path, 0, &actual);
            CU_ASSERT_EQUAL(actual, strtoll(v, NULL, 10));
            const char *hx = strstr(e, "\"xxh3\": ");
            unsigned g = 0;
            if (sscanf(name, "edb%8X.log", &g) == 1) {
                nlogs++;
                CU_ASSERT_FATAL(hx && hx < end && mf_field(hx, "xxh3", v, sizeof v));
                CU_ASSERT_EQUAL(strtoull(v, NULL, 16), hash);
                if (strtoull(v, NULL, 16) != hash) fprintf(stderr, "%s: hash %016llx, manifest %s\n", path, (unsigned long long)hash, v);
                JET_INSPECT_LOGHEADER lh;
                CU_ASSERT_FATAL(JetInspectLogHeader(path, &lh) >= 0);
                CU_ASSERT_EQUAL(lh.generation, g);
                CU_ASSERT_EQUAL(lh.signature, m->log_signature);
                if (g < seen_lo) seen_lo = g;
                if (g > seen_hi) seen_hi = g;
            } else {
                ndbs++;
                CU_ASSERT_STRING_EQUAL(name, "r.db");
                CU_ASSERT(hx == NULL || hx > end);
                JET_INSPECT_DBHEADER dh;
                CU_ASSERT_FATAL(JetInspectDatabaseHeader(path, &dh) >= 0);
                CU_ASSERT_EQUAL(dh.log_signature, m->log_signature);
                /* and in "databases", with its signature */
                snprintf(want, sizeof want, "\"signature\": \"%016llx\"", (unsigned long long)dh.db_signature);
                CU_ASSERT(strstr(m->text, want) != NULL);
            }
        }
        /* Exactly the generations of the range, the database in the full
         * only, and nothing in the directory that the manifest leaves out. */
        CU_ASSERT_EQUAL(nlogs, (int)(m->high - m->low + 1));
        CU_ASSERT_EQUAL(seen_lo, m->low);
        CU_ASSERT_EQUAL(seen_hi, m->high);
        CU_ASSERT_EQUAL(ndbs, si == 0 ? 1 : 0);
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -v '^backup.manifest$' | wc -l", sets[si]);
        FILE *p = popen(cmd, "r");
        int ondisk = -1;
        CU_ASSERT_FATAL(p && fscanf(p, "%d", &ondisk) == 1);
        pclose(p);
        CU_ASSERT_EQUAL(ondisk, nlisted);
    }
    free(mf.text);
    free(mi.text);
}

/* The rows a restored instance at rdir holds: k000000..k000299 of 'a',
 * except k000007 of 'b'; nothing loaded after the backup. */
static void check_external_restored(const char *rdir)
{
    char rdb[1300];
    snprintf(rdb, sizeof rdb, "%s/r.db", rdir);
    JET_INSPECT_DBHEADER h;
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(rdb, &h) >= 0);
    CU_ASSERT_EQUAL(h.state, 3);
    CU_ASSERT_STRING_EQUAL(h.state_name, "clean shutdown");
    JET_INSPECT_CHECK st;
    CU_ASSERT_EQUAL(JetInspectCheckDatabase(rdb, NULL, NULL, &st), JET_errSuccess);
    CU_ASSERT_EQUAL(st.problems, 0);
    CU_ASSERT_EQUAL(st.entries, 300);
    /* No longer a backup copy: a second restore of it is refused. */
    JET_RSTMAP again = {rdb, rdb};
    TU_CHECK_ERR(JetExternalRestore((char *)rdir, (char *)rdir, &again, 1, (char *)rdir, 0, 0, NULL),
                 JET_errRestoreOfNonBackupDatabase);

    JET_INSTANCE ri = tu_instance("ext2", rdir, (struct tu_params){.log_kb = 256});
    JET_SESID rs;
    JET_DBID rd;
    JET_TABLEID rt;
    CU_ASSERT_FATAL(JetBeginSession(ri, &rs, NULL, NULL) >= 0);
    JET_ERR err = JetAttachDatabase(rs, rdb, 0);
    if (err != JET_errSuccess) fprintf(stderr, "attach %s: %ld %s\n", rdb, err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    CU_ASSERT_FATAL(JetOpenDatabase(rs, rdb, NULL, &rd, 0) >= 0);
    CU_ASSERT_FATAL(JetOpenTable(rs, rd, "t", NULL, 0, 0, &rt) >= 0);
    int bad = 0;
    char v[600], k[16];
    for (int i = 0; i < 400; i++) {
        unsigned long n = 0;
        snprintf(k, sizeof k, "k%06d", i);
        err = JetRetrieveKV(rs, rt, k, strlen(k), v, sizeof v, &n, 0);
        if (i >= 300) {
            bad += err != JET_errRecordNotFound;
            continue;
        }
        char want = i == 7 ? 'b' : 'a';
        if (err != JET_errSuccess || n != 500) bad++;
        else
            for (int j = 0; j < 500; j++)
                if (v[j] != want) {
                    bad++;
                    break;
                }
    }
    CU_ASSERT_EQUAL(bad, 0);
    unsigned long n = 0;
    TU_CHECK_ERR(JetRetrieveKV(rs, rt, "after", 5, v, sizeof v, &n, 0), JET_errRecordNotFound);
    CU_ASSERT(JetTerm(ri) >= 0);
}

static void test_external_restore2_restores_a_full_set(void)
{
    char full[1200], r[1200], cmd[8000], rdb[1300];
    JET_LOGINFO li;
    start("rs_ext2");
    tu_load(s, t, 0, 300, 'a');
    char vb[500];
    memset(vb, 'b', sizeof vb);
    CU_ASSERT_FATAL(JetPutKV(s, t, "k000007", 7, vb, sizeof vb, 0) >= 0);
    snprintf(full, sizeof full, "%s/set-full", dir);
    tu_backup(inst, full, "full", &li);
    /* After the backup: not in the restore. */
    tu_load(s, t, 300, 400, 'c');
    put("after", "x");
    CU_ASSERT(JetTerm(inst) >= 0);
    CU_ASSERT_FATAL(li.ulGenLow > 0 && li.ulGenHigh >= li.ulGenLow);

    /* The logs read from the set directory and copied to the target, the
     * range given as JetGetLogInfoInstance2 gave it; the set unchanged. */
    snprintf(cmd, sizeof cmd, "cd '%s' && cat * | md5sum", full);
    char before[64] = "", after[64] = "";
    FILE *p = popen(cmd, "r");
    CU_ASSERT_FATAL(p && fgets(before, sizeof before, p));
    pclose(p);
    snprintf(r, sizeof r, "%s/restored", dir);
    snprintf(rdb, sizeof rdb, "%s/r.db", r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/r.db' '%s/'", r, r, full, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_RSTMAP map = {dbpath, rdb};
    JET_ERR err = JetExternalRestore2(r, r, &map, 1, full, &li, NULL, NULL, NULL, NULL);
    if (err != JET_errSuccess) fprintf(stderr, "JetExternalRestore2: %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    snprintf(cmd, sizeof cmd, "cd '%s' && cat * | md5sum", full);
    p = popen(cmd, "r");
    CU_ASSERT_FATAL(p && fgets(after, sizeof after, p));
    pclose(p);
    CU_ASSERT_STRING_EQUAL(before, after);
    for (unsigned long g = li.ulGenLow; g <= li.ulGenHigh; g++) {
        snprintf(cmd, sizeof cmd, "%s/edb%08lX.log", r, g);
        CU_ASSERT(access(cmd, F_OK) == 0);
    }
    check_external_restored(r);

    /* Everything in one directory, the range found there (pLogInfo NULL). */
    snprintf(r, sizeof r, "%s/restored-here", dir);
    snprintf(rdb, sizeof rdb, "%s/r.db", r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/r.db' %s/edb*.log '%s/'", r, r, full, full, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    JET_RSTMAP map2 = {dbpath, rdb};
    /* JetExternalRestore2 needs the range (ESE); JetExternalRestore's 0
     * bounds mean "what the directory holds". */
    TU_CHECK_ERR(JetExternalRestore2(r, r, &map2, 1, r, NULL, NULL, NULL, NULL, NULL), JET_errInvalidParameter);
    err = JetExternalRestore(r, r, &map2, 1, r, 0, 0, NULL);
    if (err != JET_errSuccess) fprintf(stderr, "JetExternalRestore (one dir): %ld %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    check_external_restored(r);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("restore", NULL, NULL);
    if (!su) return 2;
    CU_add_test(su, "test_restore_stops_at_a_commit_time", test_restore_stops_at_a_commit_time);
    CU_add_test(su, "test_restore_instance_directory_form", test_restore_instance_directory_form);
    CU_add_test(su, "test_restore_reports_progress_and_can_be_stopped", test_restore_reports_progress_and_can_be_stopped);
    CU_add_test(su, "test_restore_refuses_an_incremental_outside_the_chain",
                test_restore_refuses_an_incremental_outside_the_chain);
    CU_add_test(su, "test_restore_refuses_every_damage_in_the_table", test_restore_refuses_every_damage_in_the_table);
    CU_add_test(su, "test_restore_ignores_files_its_manifest_does_not_list",
                test_restore_ignores_files_its_manifest_does_not_list);
    CU_add_test(su, "test_restore_refuses_a_corrupt_data_page", test_restore_refuses_a_corrupt_data_page);
    CU_add_test(su, "test_manifest_describes_the_set", test_manifest_describes_the_set);
    CU_add_test(su, "test_external_restore2_restores_a_full_set", test_external_restore2_restores_a_full_set);
    return tu_run();
}

/*
 * test_backup_chain.c -- backup sets saved as a backup client would and
 * restored: a full and an incremental restored alone, together, through
 * JetRestoreSets and to a point in time, and the refusals (an edited
 * manifest, a broken chain of ids, a damaged log, a corrupt page, a
 * missing generation, a log of another instance).  A backup killed with
 * kill -9 loses no log and no acknowledged commit.  A chain of full,
 * copy, incremental and differential backups is taken under writers and
 * each restored to its begin; every end keeps what recovery needs, and
 * the instance recovers from a crash after the truncations.  The API's
 * misuse, the snapshot and truncation rules are in test_backup.c.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backupfix.h"
#include "jet.h"
#include "jet_inspect.h"
#include "testutil.h"

/* The test database of this suite (ckpt_ms: see BF_CKPT_HELD_MS). */
static struct bf_db bk = {.ckpt_ms = 20};

static void write_file(const char *d, const char *name, const void *b, size_t n)
{
    char out[2200];
    snprintf(out, sizeof out, "%s/%s", d, name);
    FILE *f = fopen(out, "wb");
    CU_ASSERT_FATAL(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Begins a backup whose set is fixed at once, as the mount's: AnyOrder, then
 * GetLogInfo before any read, so a restore gives "the state at begin". */
static void begin_fixed(JET_GRBIT grbit)
{
    unsigned long cb = 0;
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, grbit | JET_bitBackupAnyOrder), JET_errSuccess);
    TU_CHECK_ERR(JetGetLogInfoInstance(bk.inst, NULL, 0, &cb), JET_errSuccess);
}

/* Writes every file of the running backup set into setdir (logs always;
 * the database too for a full backup), read through the API. */
static void save_set(const char *setdir, int with_db, uint64_t *rng, const char *type)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", setdir, setdir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char names[65536];
    unsigned long cb = 0;
    char all[70000];
    size_t used = 0;
    if (with_db) {
        CU_ASSERT_FATAL(JetGetAttachInfoInstance(bk.inst, names, sizeof names, &cb) >= 0);
        memcpy(all, names, cb - 1);
        used = cb - 1;
    }
    CU_ASSERT_FATAL(JetGetLogInfoInstance(bk.inst, names, sizeof names, &cb) >= 0);
    memcpy(all + used, names, cb);
    for (char *p = all; *p; p += strlen(p) + 1) {
        size_t n = 0;
        unsigned char *b = bf_read_through_backup(&bk, p, &n, rng);
        write_file(setdir, strrchr(p, '/') + 1, b, n);
        free(b);
    }
    if (type) {
        unsigned long need = 0;
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(bk.inst, type, NULL, 0, &need) >= 0);
        char *m = malloc(need);
        CU_ASSERT_FATAL(JetGetBackupManifestInstance(bk.inst, type, m, need, &need) == JET_errSuccess);
        write_file(setdir, "backup.manifest", m, strlen(m));
        free(m);
    }
}

/* Mismatches in the restored rdir with k000000..k<na> 'a' (a full's
 * begin), and with inc, test_full_and_incremental_restore's incremental. */
static int restored_bad(const char *rdir, int na, int inc)
{
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = bf_open_restored(rdir, &rs, &rt);
    int bad = 0;
    for (int k = 0; k < 2600; k++)
        bad += !bf_value_is(rs, rt, k, inc && k < 1000 ? 'b' : k < na ? 'a' : inc && k < 2500 ? 'c' : 0);
    JetTerm(ri);
    return bad;
}

static void test_full_and_incremental_restore(void)
{
    bf_scratch(&bk, "bk_restore");
    uint64_t rng = tu_seed("test_full_and_incremental_restore");
    char s1[1100], s2[1100], r[1100];
    snprintf(s1, sizeof s1, "%s/set1", bk.dir);
    snprintf(s2, sizeof s2, "%s/set2", bk.dir);
    snprintf(r, sizeof r, "%s/restored", bk.dir);
    bf_start(&bk, 0);
    tu_load(bk.s, bk.t, 0, 2000, 'a');
    begin_fixed(0);
    tu_load(bk.s, bk.t, 0, 1000, 'b'); /* after the set was fixed: not in the full backup */
    save_set(s1, 1, &rng, "full");
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    tu_load(bk.s, bk.t, 2000, 2500, 'c');
    begin_fixed(JET_bitBackupIncremental);
    tu_load(bk.s, bk.t, 2500, 2600, 'd'); /* after the incremental's set was fixed */
    save_set(s2, 0, &rng, "incremental");
    TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    JetTerm(bk.inst);

    /* Full alone: the state at the full's begin. */
    const char *only_full[] = {s1};
    int err = bf_restore_into(&bk, r, only_full, 1, 0);
    if (err < 0) fprintf(stderr, "restore full: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(restored_bad(r, 2000, 0), 0);
    /* Full + incremental: the state at the incremental's begin. */
    const char *both[] = {s1, s2};
    err = bf_restore_into(&bk, r, both, 2, 0);
    if (err < 0) fprintf(stderr, "restore chain: %d %s\n", err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    CU_ASSERT_EQUAL(restored_bad(r, 2000, 1), 0);

    /* The same through JetRestoreSets (what jetutil restore runs). */
    char r2[1200];
    snprintf(r2, sizeof r2, "%s/restored2", bk.dir);
    const char *chain[] = {s1, s2};
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(restored_bad(r2, 2000, 1), 0);
    /* A target that is not empty is refused and left alone. */
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r2, 0, 0), JET_errInvalidPath);
    /* Point in time: stop at the full backup's last generation. */
    char r3[1200], fdb[1200];
    JET_INSPECT_DBHEADER fh;
    snprintf(r3, sizeof r3, "%s/restored3", bk.dir);
    snprintf(fdb, sizeof fdb, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(fdb, &fh) >= 0);
    JET_INSPECT_DBHEADER livehdr = bf_live_hdr(&bk);
    TU_CHECK_ERR(JetRestoreSets(chain, 2, r3, livehdr.backup[0].gen_high, 0), JET_errSuccess);
    CU_ASSERT_EQUAL(restored_bad(r3, 2000, 0), 0);
    /* Manifests: an edited one, a broken chain of ids, a damaged log. */
    char r5[1200], cmd5[8000];
    snprintf(r5, sizeof r5, "%s/restored5", bk.dir);
    const char *twice[] = {s1, s2, s2};
    TU_CHECK_ERR(JetRestoreSets(twice, 3, r5, 0, 0), JET_errInvalidBackupSequence);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "given twice"));
    char s2b[1200];
    snprintf(s2b, sizeof s2b, "%s/set2b", bk.dir);
    snprintf(cmd5, sizeof cmd5, "rm -rf '%s' && cp -r '%s' '%s' && sed -i 's/\"size\": /\"size\": 1/' '%s/backup.manifest'", s2b,
             s2, s2b, s2b);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    const char *edited[] = {s1, s2b};
    TU_CHECK_ERR(JetRestoreSets(edited, 2, r5, 0, 0), JET_errInvalidBackup);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "edited"));
    snprintf(cmd5, sizeof cmd5,
             "rm -rf '%s' && cp -r '%s' '%s' && f=$(ls %s/edb*.log | head -1) && printf 'Z' | dd of=$f bs=1 seek=70000 conv=notrunc 2>/dev/null",
             s2b, s2, s2b, s2b);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    TU_CHECK_ERR(JetRestoreSets(edited, 2, r5, 0, 0), JET_errLogFileCorrupt);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "damaged"));
    CU_ASSERT(access(r5, F_OK) != 0);
    /* A corrupt page in the full set's database that replay does not
     * rewrite: restore refuses, naming the page, and leaves nothing. */
    char s1c[1200];
    snprintf(s1c, sizeof s1c, "%s/set1c", bk.dir);
    snprintf(cmd5, sizeof cmd5, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/backup.manifest' && "
             "printf 'Q' | dd of='%s/b.db' bs=1 seek=$((8192 * 3 + 5000)) conv=notrunc 2>/dev/null",
             s1c, s1, s1c, s1c, s1c);
    CU_ASSERT_FATAL(system(cmd5) == 0);
    const char *corrupt[] = {s1c};
    err = (int)JetRestoreSets(corrupt, 1, r5, 0, 0);
    if (err != JET_errReadVerifyFailure) fprintf(stderr, "corrupt page restore: %d %s\n", err, JetGetLastErrorDetail());
    /* Page 3 is the catalog root, written once when the table was made,
     * long before the checkpoint the full backup starts from. */
    CU_ASSERT_EQUAL(err, JET_errReadVerifyFailure);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "page 3"));
    CU_ASSERT(access(r5, F_OK) != 0);
    /* An incremental set holding a database file is not a valid chain. */
    const char *wrong[] = {s1, s1};
    char r4[1200];
    snprintf(r4, sizeof r4, "%s/restored4", bk.dir);
    TU_CHECK_ERR(JetRestoreSets(wrong, 2, r4, 0, 0), JET_errInvalidBackupSequence);
    CU_ASSERT(access(r4, F_OK) != 0);

    /* Refusals, each naming the piece. */
    char cmd[16000], db[1200];
    JET_RSTMAP live = {bk.dbpath, bk.dbpath};
    TU_CHECK_ERR(JetExternalRestore(r, r, &live, 1, r, 0, 0, NULL), JET_errRestoreOfNonBackupDatabase);
    /* A generation missing from the middle of the chain. */
    JET_INSPECT_DBHEADER hd;
    snprintf(db, sizeof db, "%s/b.db", s1);
    CU_ASSERT_FATAL(JetInspectDatabaseHeader(db, &hd) >= 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' %s/edb*.log %s/edb*.log '%s/'", r, r, s1, s1,
             s2, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    /* The caller names the range it holds (as the manifest will): a hole
     * in it is refused, naming the generation. */
    static struct bf_gens rg;
    bf_list_gens(r, &rg, 0);
    unsigned lo_gen = rg.g[0], hi_gen = rg.n ? rg.g[rg.n - 1] : 0;
    CU_ASSERT_FATAL(hi_gen >= lo_gen + 1);
    snprintf(cmd, sizeof cmd, "rm -f %s/edb%08X.log", r, hi_gen - 1 > lo_gen ? hi_gen - 1 : hi_gen);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(db, sizeof db, "%s/b.db", r);
    JET_RSTMAP m = {bk.dbpath, db};
    JET_LOGINFO range = {sizeof range, lo_gen, hi_gen, "edb"};
    err = (int)JetExternalRestore2(r, r, &m, 1, r, &range, NULL, NULL, NULL, NULL);
    CU_ASSERT(err == JET_errFileNotFound); /* ESE: a generation of the given range not on disk */
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "missing"));
    /* A log of another instance in the chain. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/b.db' %s/edb*.log '%s/'", r, r, s1, s1, r);
    CU_ASSERT_FATAL(system(cmd) == 0);
    char other[900];
    snprintf(other, sizeof other, "%.800s/other", bk.dir);
    snprintf(bk.dir, sizeof bk.dir, "%s", other);
    snprintf(bk.dbpath, sizeof bk.dbpath, "%.900s/b.db", other);
    mkdir(other, 0700);
    bf_start(&bk, 0);
    tu_load(bk.s, bk.t, 0, 300, 'x');
    JetTerm(bk.inst);
    JET_INSPECT_LOGHEADER lh;
    char victim[1300];
    bf_list_gens(r, &rg, 0);
    CU_ASSERT_FATAL(rg.n >= 1);
    snprintf(victim, sizeof victim, "%s/edb%08X.log", r, rg.g[rg.n - 1]);
    CU_ASSERT_FATAL(JetInspectLogHeader(victim, &lh) >= 0);
    char foreign[1300];
    snprintf(foreign, sizeof foreign, "%s/edb%08X.log", other, lh.generation);
    if (access(foreign, F_OK) != 0) snprintf(foreign, sizeof foreign, "%s/edb00000001.log", other);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", foreign, victim);
    CU_ASSERT_FATAL(system(cmd) == 0);
    err = (int)JetExternalRestore(r, r, &m, 1, r, 0, 0, NULL);
    CU_ASSERT(err == JET_errGivenLogFileHasBadSignature || err == JET_errGivenLogFileIsNotContiguous);
}

static void test_kill9_during_backup_loses_nothing(void)
{
    bf_scratch(&bk, "bk_kill");
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        bf_start(&bk, 0);
        tu_load(bk.s, bk.t, 0, 1000, 'a');
        if (JetBeginExternalBackupInstance(bk.inst, 0) < 0) _exit(3);
        JET_HANDLE h;
        char buf[65536];
        unsigned long got;
        if (JetOpenFileInstance(bk.inst, bk.dbpath, &h, NULL, NULL) < 0) _exit(4);
        if (JetReadFileInstance(bk.inst, h, buf, sizeof buf, &got) < 0) _exit(5);
        tu_load(bk.s, bk.t, 1000, 2000, 'b'); /* durable commits while the snapshot lives */
        bf_sleep_ms(100);         /* and checkpoints preserving pages */
        if (write(fds[1], "x", 1) != 1) _exit(6);
        for (;;) bf_sleep_ms(1000);
    }
    close(fds[1]);
    char c;
    CU_ASSERT_FATAL(read(fds[0], &c, 1) == 1);
    close(fds[0]);
    /* The child is idle now (its checkpointer deletes nothing: circular
     * logging is off), so this is the log directory at the kill. */
    static struct bf_gens before, after;
    bf_list_gens(bk.dir, &before, 1);
    CU_ASSERT(before.n >= 2);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    /* Recovery after the kill: every acknowledged commit, no log lost. */
    bk.inst = tu_instance("bkkill", bk.dir, (struct tu_params){.log_kb = 256});
    /* Every generation there at the kill is still there, and every closed
     * one (all but the last, which recovery may complete) byte for byte. */
    bf_list_gens(bk.dir, &after, 1);
    int lost = 0, changed = 0;
    for (int i = 0; i < before.n; i++) {
        int j = bf_gens_find(&after, before.g[i]);
        if (j < 0) lost++;
        else if (i < before.n - 1 && after.h[j] != before.h[i]) changed++;
    }
    if (lost || changed) {
        bf_print_gens("kill: before", &before);
        bf_print_gens("kill: after recovery", &after);
    }
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(changed, 0);
    for (int i = 1; i < after.n; i++) CU_ASSERT_EQUAL(after.g[i], after.g[i - 1] + 1);
    tu_table(bk.inst, bk.dbpath, 0, &bk.s, &bk.t);
    int bad = 0;
    for (int k = 0; k < 2000; k++) bad += !bf_value_is(bk.s, bk.t, k, k < 1000 ? 'a' : 'b');
    CU_ASSERT_EQUAL(bad, 0);
    /* The killed backup recorded nothing; a new one runs to completion. */
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, JET_bitBackupIncremental), JET_errMissingFullBackup);
    TU_CHECK_ERR(JetBeginExternalBackupInstance(bk.inst, 0), JET_errSuccess);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    JetTerm(bk.inst);
}

/* Model of the chain test: version per key, 0 = absent. */
static uint32_t cmodel[400];

static void chain_update(uint64_t *rng, int n)
{
    char v[300];
    for (int i = 0; i < n; i++) {
        int k = (int)(tu_rand(rng) % 400);
        uint32_t ver = (uint32_t)(tu_rand(rng) % 1000000) + 1;
        char key[16];
        snprintf(key, sizeof key, "c%05d", k);
        if (ver % 7 == 0) {
            JET_ERR e = JetDeleteKV(bk.s, bk.t, key, strlen(key));
            CU_ASSERT(e == JET_errSuccess || e == JET_errRecordNotFound);
            cmodel[k] = 0;
        } else {
            snprintf(v, sizeof v, "%u-%0*u", ver, (int)(ver % 250), 0u);
            CU_ASSERT_FATAL(JetPutKV(bk.s, bk.t, key, strlen(key), v, strlen(v), 0) >= 0);
            cmodel[k] = ver;
        }
    }
}

/* The writers of the chain test (the bounds of tests/fs/test_mount.c):
 * writer w's transaction v sets its keys w<w>:o0..o2 and one of
 * w<w>:r00..r49 (its pick kept in touched[v]) to v, committed durably.
 * With every writer's acked counter read just before a backup's Begin
 * (low) and its started counter just after Begin returned (high), the
 * backup restores, per writer, one v with low <= v <= high on all its own
 * keys (no transaction in part) and on the others exactly what
 * transactions 1..v left: nothing started after Begin returned. */
#define WRITERS 2
#define WOWN 3
#define WRAND 50
#define WHIST 200000
static struct cwriter {
    pthread_t th;
    unsigned long started, acked;
    uint64_t rng;
    uint8_t touched[WHIST];
} cw[WRITERS];
static int wstop, wfailures;

static void wvalue(char *v, size_t cb, int w, unsigned long ver)
{
    snprintf(v, cb, "w%d-%lu-%0*u", w, ver, (int)(ver % 200), 0u);
}

/* Writer w's key k: its own keys first, then the random ones. */
static void wkey(char *key, size_t cb, int w, int k)
{
    if (k < WOWN) snprintf(key, cb, "w%d:o%d", w, k);
    else snprintf(key, cb, "w%d:r%02d", w, k - WOWN);
}

static void *chain_writer(void *arg)
{
    struct cwriter *w = arg;
    int id = (int)(w - cw);
    JET_SESID ws = 0;
    JET_DBID wd;
    JET_TABLEID wt;
    JET_ERR err = JetBeginSession(bk.inst, &ws, NULL, NULL);
    if (err >= 0) err = JetOpenDatabase(ws, bk.dbpath, NULL, &wd, 0);
    if (err >= 0) err = JetOpenTable(ws, wd, "t", NULL, 0, 0, &wt);
    while (err >= 0 && !__atomic_load_n(&wstop, __ATOMIC_SEQ_CST)) {
        unsigned long ver = w->acked + 1;
        char key[16], v[300];
        if (ver >= WHIST) err = JET_errOutOfMemory; /* history full: never in a run of seconds */
        if (err < 0) break;
        int r = (int)(tu_rand(&w->rng) % WRAND);
        w->touched[ver] = (uint8_t)r;
        __atomic_store_n(&w->started, ver, __ATOMIC_SEQ_CST);
        wvalue(v, sizeof v, id, ver);
        err = JetBeginTransaction(ws);
        for (int k = 0; k <= WOWN && err >= 0; k++) {
            wkey(key, sizeof key, id, k < WOWN ? k : WOWN + r);
            err = JetPutKV(ws, wt, key, strlen(key), v, strlen(v), 0);
        }
        if (err >= 0) err = JetCommitTransaction(ws, 0);
        else JetRollback(ws, 0);
        if (err >= 0) __atomic_store_n(&w->acked, ver, __ATOMIC_SEQ_CST);
        bf_sleep_ms(1);
    }
    if (err < 0) fprintf(stderr, "chain writer %d: %ld %s\n", id, err, JetGetLastErrorDetail());
    if (err < 0) __atomic_add_fetch(&wfailures, 1, __ATOMIC_SEQ_CST);
    JetEndSession(ws, 0);
    return NULL;
}

/* Starts the writers and returns once each has committed a few more. */
static void writers_start(void)
{
    unsigned long base[WRITERS];
    __atomic_store_n(&wstop, 0, __ATOMIC_SEQ_CST);
    for (int w = 0; w < WRITERS; w++) {
        base[w] = cw[w].acked;
        CU_ASSERT_FATAL(pthread_create(&cw[w].th, NULL, chain_writer, &cw[w]) == 0);
    }
    for (int w = 0; w < WRITERS; w++)
        while (__atomic_load_n(&cw[w].acked, __ATOMIC_SEQ_CST) < base[w] + 5 &&
               !__atomic_load_n(&wfailures, __ATOMIC_SEQ_CST))
            bf_sleep_ms(1);
}

static void writers_stop(void)
{
    __atomic_store_n(&wstop, 1, __ATOMIC_SEQ_CST);
    for (int w = 0; w < WRITERS; w++) pthread_join(cw[w].th, NULL);
    CU_ASSERT_EQUAL(wfailures, 0);
}

/* The state at a backup's begin: the main thread's model, the writers' bounds. */
struct at_begin {
    uint32_t c[400];
    unsigned long low[WRITERS], high[WRITERS];
};

/* key holds exactly want (NULL: absent). */
static int key_is(JET_SESID rs, JET_TABLEID rt, const char *key, const char *want)
{
    char v[300];
    unsigned long n = 0;
    JET_ERR e = JetRetrieveKV(rs, rt, key, strlen(key), v, sizeof v - 1, &n, 0);
    if (!want) return e == JET_errRecordNotFound;
    return e >= 0 && n == strlen(want) && memcmp(v, want, n) == 0;
}

/* Mismatches between the table in (rs, rt) and the state ab. */
static int models_mismatch(JET_SESID rs, JET_TABLEID rt, const struct at_begin *ab)
{
    char key[16], want[300];
    int bad = 0;
    for (int k = 0; k < 400; k++) {
        snprintf(key, sizeof key, "c%05d", k);
        snprintf(want, sizeof want, "%u-%0*u", ab->c[k], (int)(ab->c[k] % 250), 0u);
        bad += !key_is(rs, rt, key, ab->c[k] ? want : NULL);
    }
    for (int w = 0; w < WRITERS; w++) {
        char v[300] = {0};
        unsigned long n = 0, ver = 0, last[WRAND] = {0};
        wkey(key, sizeof key, w, 0);
        if (JetRetrieveKV(rs, rt, key, strlen(key), v, sizeof v - 1, &n, 0) >= 0) sscanf(v, "w%*d-%lu", &ver);
        if (ver < ab->low[w] || ver > ab->high[w]) {
            fprintf(stderr, "writer %d restored at %lu, outside [%lu, %lu] (acked before Begin, started by its return)\n",
                    w, ver, ab->low[w], ab->high[w]);
            bad++;
            continue;
        }
        for (unsigned long i = 1; i <= ver; i++) last[cw[w].touched[i]] = i;
        for (int k = 0; k < WOWN + WRAND; k++) {
            unsigned long x = k < WOWN ? ver : last[k - WOWN];
            wkey(key, sizeof key, w, k);
            wvalue(want, sizeof want, w, x);
            if (!key_is(rs, rt, key, x ? want : NULL)) {
                fprintf(stderr, "writer %d at %lu: %s is not %.16s\n", w, ver, key, x ? want : "absent");
                bad++;
            }
        }
    }
    return bad;
}

/* The database in rdir (recovered when opened) holds the state ab. */
static void check_state(const char *rdir, const struct at_begin *ab)
{
    JET_SESID rs;
    JET_TABLEID rt;
    JET_INSTANCE ri = bf_open_restored(rdir, &rs, &rt);
    int bad = models_mismatch(rs, rt, ab);
    if (bad) fprintf(stderr, "%s: %d mismatches with the state expected\n", rdir, bad);
    CU_ASSERT_EQUAL(bad, 0);
    JetTerm(ri);
}

/* Restores sets[0..n) (into <last set>.r) and checks it against ab. */
static void restore_and_check(const char *const *sets, int n, const struct at_begin *ab)
{
    char r[1300];
    snprintf(r, sizeof r, "%.1200s.r", sets[n - 1]);
    JET_ERR err = JetRestoreSets(sets, n, r, 0, 0);
    if (err < 0) fprintf(stderr, "restore up to %s: %ld %s\n", sets[n - 1], err, JetGetLastErrorDetail());
    CU_ASSERT_FATAL(err >= 0);
    check_state(r, ab);
}

/* Copies setdir's files into dir (made if missing), its manifest also
 * under its backup's own name, as a copy of the mount's set would be. */
static void merge_set(const char *setdir, const char *dir)
{
    char p[1300], own[80], cmd[8000];
    size_t n = 0;
    snprintf(p, sizeof p, "%.1200s/backup.manifest", setdir);
    char *m = tu_slurp(p, &n);
    CU_ASSERT_FATAL(m != NULL);
    m[n] = '\0';
    CU_ASSERT_FATAL(JetBackupManifestName(m, own, sizeof own) == JET_errSuccess);
    free(m);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/* '%s/' && cp '%s' '%s/%s'", dir, setdir, dir, p, dir, own);
    CU_ASSERT_FATAL(system(cmd) == 0);
}

static void count_unused(void *arg, const char *path, const char *why)
{
    fprintf(stderr, "unused: %s: %s\n", path, why);
    (*(int *)arg)++;
}

/* The backup id and predecessor id a saved set's manifest names. */
static void manifest_ids(const char *setdir, uint64_t ids[2])
{
    char p[1300];
    size_t n = 0;
    snprintf(p, sizeof p, "%.1200s/backup.manifest", setdir);
    char *m = tu_slurp(p, &n), *a, *b;
    CU_ASSERT_FATAL(m != NULL);
    m[n] = '\0';
    CU_ASSERT_FATAL((a = strstr(m, "\"backup_id\": \"")) && (b = strstr(m, "\"predecessor_id\": \"")));
    ids[0] = strtoull(a + 14, NULL, 16);
    ids[1] = strtoull(b + 19, NULL, 16);
    free(m);
}

/* How often a truncating end ran with the checkpoint held inside its set. */
static int held_ends;

/*
 * After every end, against the log directory just before it (before) and
 * the checkpoint generation then (ck_before): a generation is gone only if
 * the end truncated, it is within the set (<= held_high) and below the
 * checkpoint; every generation the truncation was allowed to delete before
 * the end is gone; what is left is contiguous and holds the checkpoint's
 * generation, where recovery starts.
 */
static void check_truncation_safe(const struct bf_gens *before, uint32_t ck_before, uint32_t held_high, int truncated)
{
    static struct bf_gens after;
    bf_list_gens(bk.dir, &after, 0);
    uint32_t ck = bf_ckpt_gen(&bk);
    CU_ASSERT(ck >= ck_before);
    int wrong = 0, kept = 0;
    for (int i = 0; i < before->n; i++) {
        uint32_t g = before->g[i];
        int gone = bf_gens_find(&after, g) < 0;
        if (gone && (!truncated || g > held_high || g >= ck)) wrong++;
        if (!gone && truncated && g <= held_high && g < ck_before) kept++;
    }
    CU_ASSERT(after.n >= 1);
    for (int i = 1; i < after.n; i++) CU_ASSERT_EQUAL(after.g[i], after.g[i - 1] + 1);
    CU_ASSERT(bf_gens_find(&after, ck) >= 0);
    if (wrong || kept || bf_gens_find(&after, ck) < 0) {
        fprintf(stderr, "truncation (%s, set to %u, checkpoint %u..%u): %d wrongly deleted, %d not deleted\n",
                truncated ? "truncated" : "not truncated", held_high, ck_before, ck, wrong, kept);
        bf_print_gens("  before end", before);
        bf_print_gens("  after end", &after);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(kept, 0);
    /* The checkpoint held inside the set: a truncation that ignored it
     * would have deleted ck_before..held_high, which recovery needs. */
    if (truncated && ck_before <= held_high) {
        held_ends++;
        for (uint32_t g = ck_before; g <= held_high; g++) CU_ASSERT(bf_gens_find(&after, g) >= 0);
    }
}

/* Asks for truncation (if truncate) and ends the running backup normally,
 * checking what the end deleted; li is this backup's range. */
static void end_and_check(int truncate, const JET_LOGINFO *li)
{
    static struct bf_gens before;
    if (truncate) TU_CHECK_ERR(JetTruncateLogInstance(bk.inst), JET_errSuccess);
    bf_list_gens(bk.dir, &before, 0);
    uint32_t ck = bf_ckpt_gen(&bk);
    TU_CHECK_ERR(JetEndExternalBackupInstance(bk.inst), JET_errSuccess);
    check_truncation_safe(&before, ck, li->ulGenHigh, truncate);
}

/*
 * One backup of the chain, under load: the writers run from before its
 * Begin to after its End, ab gets the state at Begin.  type is the
 * manifest's ("full" and "copy" begin full, "incremental" and
 * "differential" incremental; full and incremental end truncated).  The
 * set is saved to setdir; ids (from its manifest) are the ones the end
 * recorded in the header slot of its kind; del gets what a truncating end
 * would delete (JetGetTruncateLogInfo after GetLogInfo).
 */
static void chain_backup(const char *setdir, const char *type, struct at_begin *ab, uint64_t *rng, uint64_t ids[2],
                         struct bf_gens *del)
{
    static const char *kinds[] = {"full", "incremental", "differential", "copy"};
    static char names[65536];
    int kind = 0;
    while (strcmp(kinds[kind], type)) kind++;
    JET_LOGINFO li = {.cbSize = sizeof li};
    unsigned long cb = 0;
    writers_start();
    for (int w = 0; w < WRITERS; w++) ab->low[w] = __atomic_load_n(&cw[w].acked, __ATOMIC_SEQ_CST);
    begin_fixed(kind == 1 || kind == 2 ? JET_bitBackupIncremental : 0);
    for (int w = 0; w < WRITERS; w++) ab->high[w] = __atomic_load_n(&cw[w].started, __ATOMIC_SEQ_CST);
    memcpy(ab->c, cmodel, sizeof cmodel);
    chain_update(rng, 50); /* after begin: not in this set */
    save_set(setdir, kind == 0 || kind == 3, rng, type);
    TU_CHECK_ERR(JetGetLogInfoInstance2(bk.inst, names, sizeof names, &cb, &li), JET_errSuccess);
    bf_truncate_info(&bk, del);
    end_and_check(kind < 2, &li);
    writers_stop();
    manifest_ids(setdir, ids);
    JET_INSPECT_DBHEADER hd = bf_live_hdr(&bk);
    CU_ASSERT(ids[0] != 0);
    CU_ASSERT_EQUAL(hd.backup[kind].backup_id, ids[0]);
    CU_ASSERT_EQUAL(hd.backup[kind].predecessor_id, ids[1]);
    CU_ASSERT_EQUAL(hd.backup[kind].gen_high, li.ulGenHigh);
}

/*
 * full, incremental, copy, four more incrementals; full, two
 * differentials: each taken while two writers commit (and the main
 * session changes its own keys after Begin), each restored (with the sets
 * before it in its chain) to the state at its Begin.  Every end keeps what
 * recovery needs (check_truncation_safe).  The copy changes no history:
 * the full/incremental/differential slots of the header are the same
 * before its Begin and after its End, no generation is deleted although a
 * truncation would have had some to delete, and the next incremental
 * chains to the incremental before the copy.
 */
static void test_chains_full_copy_incrementals_differential(void)
{
    bf_scratch(&bk, "bk_chain");
    uint64_t rng = tu_seed("test_chains_full_copy_incrementals_differential");
    memset(cmodel, 0, sizeof cmodel);
    memset(cw, 0, sizeof cw);
    for (int w = 0; w < WRITERS; w++) cw[w].rng = tu_rand(&rng) | 1;
    wfailures = held_ends = 0;
    /* The checkpoint stays where it is unless reopen() moves it: every
     * truncating end below runs with it behind the set's last generation,
     * so an end that ignored it would delete generations recovery needs. */
    bk.ckpt_ms = BF_CKPT_HELD_MS;
    bf_start(&bk, 0);
    /* 0 full, 1..5 incrementals, 6 copy, 7 second full, 8 and 9 differentials */
    static char sets[10][1200];
    static struct at_begin ab[10];
    static struct bf_gens del, g0, g1;
    const char *names[10] = {"full", "inc1", "inc2", "inc3", "inc4", "inc5", "copy", "full2", "diff0", "diff1"};
    uint64_t ids[10][2];
    for (int i = 0; i < 10; i++) snprintf(sets[i], sizeof sets[i], "%.1000s/%s", bk.dir, names[i]);
    chain_update(&rng, 300);
    bf_reopen(&bk); /* the checkpoint moves: the full's truncation deletes the older generations */
    chain_backup(sets[0], "full", &ab[0], &rng, ids[0], &del);
    CU_ASSERT_EQUAL(ids[0][1], 0);
    for (int i = 1; i <= 5; i++) {
        /* The checkpoint moves to here and is held while this round's
         * generations are written: the end truncates below it and keeps
         * the set's generations from it on. */
        bf_reopen(&bk);
        chain_update(&rng, 150);
        if (i == 2) {
            JET_INSPECT_DBHEADER h0 = bf_live_hdr(&bk), h1;
            CU_ASSERT(h0.backup[0].backup_id != 0 && h0.backup[1].backup_id != 0);
            bf_list_gens(bk.dir, &g0, 0);
            chain_backup(sets[6], "copy", &ab[6], &rng, ids[6], &del);
            bf_list_gens(bk.dir, &g1, 0);
            h1 = bf_live_hdr(&bk);
            CU_ASSERT(memcmp(h1.backup, h0.backup, 3 * sizeof h0.backup[0]) == 0);
            CU_ASSERT(ids[6][1] == 0 && ids[6][0] != ids[0][0] && ids[6][0] != ids[1][0]);
            CU_ASSERT(del.n >= 1); /* a truncation would have deleted these; nothing is gone */
            for (int j = 0; j < g0.n; j++) CU_ASSERT(bf_gens_find(&g1, g0.g[j]) >= 0);
            chain_update(&rng, 50);
        }
        chain_backup(sets[i], "incremental", &ab[i], &rng, ids[i], &del);
        CU_ASSERT_EQUAL(ids[i][1], ids[i - 1][0]); /* inc2: to inc1, past the copy */
    }
    const char *chain[6] = {sets[0], sets[1], sets[2], sets[3], sets[4], sets[5]};
    for (int i = 0; i <= 5; i++) restore_and_check(chain, i + 1, &ab[i]);
    /* The five incrementals copied one after another into one directory,
     * each session's manifest kept under its own name as the mount gives
     * it (rsync, cp, tar extracted in order): the same chain, the same
     * state, nothing in it unused. */
    char merged[1200];
    snprintf(merged, sizeof merged, "%.1000s/merged", bk.dir);
    for (int i = 1; i <= 5; i++) merge_set(sets[i], merged);
    const char *full_merged[2] = {sets[0], merged};
    restore_and_check(full_merged, 2, &ab[5]);
    int unused = 0;
    TU_CHECK_ERR(JetInspectSetsUnused(full_merged, 2, count_unused, &unused), JET_errSuccess);
    CU_ASSERT_EQUAL(unused, 0);
    /* Skipping a link is refused by the chain of ids. */
    char r[1200];
    const char *gap[3] = {sets[0], sets[1], sets[3]};
    snprintf(r, sizeof r, "%.1000s/r_gap", bk.dir);
    TU_CHECK_ERR(JetRestoreSets(gap, 3, r, 0, 0), JET_errInvalidBackupSequence);
    /* The copy backup restores on its own to its own begin. */
    const char *copy_only[1] = {sets[6]};
    restore_and_check(copy_only, 1, &ab[6]);
    /* full + differential: a new full, then two differentials (not truncated). */
    bf_reopen(&bk);
    chain_update(&rng, 100);
    chain_backup(sets[7], "full", &ab[7], &rng, ids[7], &del);
    for (int i = 8; i <= 9; i++) {
        chain_update(&rng, 150);
        chain_backup(sets[i], "differential", &ab[i], &rng, ids[i], &del);
        CU_ASSERT_EQUAL(ids[i][1], ids[7][0]);
    }
    for (int i = 7; i <= 9; i++) {
        const char *fd[2] = {sets[7], sets[i]};
        restore_and_check(fd, i == 7 ? 1 : 2, &ab[i]);
    }
    /* The checkpoint was held inside the set at the truncating ends (the
     * incrementals and the second full, at least). */
    CU_ASSERT(held_ends >= 6);
    fprintf(stderr, "chain: the writers committed %lu and %lu transactions through 10 backups\n", cw[0].acked, cw[1].acked);
    /* Crash now (nothing flushed since the checkpoint, which is still
     * behind the truncated sets): recovery replays from the checkpoint
     * through every generation the truncations kept, to the live model. */
    JET_INSPECT_DBHEADER hd = bf_live_hdr(&bk);
    CU_ASSERT(bf_ckpt_gen(&bk) < hd.backup[2].gen_high);
    TU_CHECK_ERR(JetTerm2(bk.inst, JET_bitTermAbrupt), JET_errSuccess);
    struct at_begin now;
    memcpy(now.c, cmodel, sizeof cmodel);
    for (int w = 0; w < WRITERS; w++) now.low[w] = now.high[w] = cw[w].acked;
    check_state(bk.dir, &now);
    bk.ckpt_ms = 20;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("backup_chain", NULL, NULL);
#define ADD(fn) CU_add_test(su, #fn, fn)
    ADD(test_full_and_incremental_restore);
    ADD(test_kill9_during_backup_loses_nothing);
    ADD(test_chains_full_copy_incrementals_differential);
    return tu_run();
}

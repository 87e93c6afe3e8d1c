/*
 * embed_client.c -- the programs a C developer embedding libjet writes from
 * jet.h alone, built by tests/e2e/test_embed.sh against the library that
 * `cmake --install` puts down from a build with the default build type.
 * Each scenario is a sequence jet.h allows; the library must answer it
 * (success or a documented error), never abort the process and never
 * return another table's data.
 *
 *   embed_client DIR
 *
 * Prints one "ok: ..." line per scenario; exits 1 at the first wrong answer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jet.h>

static const char *dir;
static char dbpath[4096];

#define CHECK(expr, want)                                                                                         \
    do {                                                                                                          \
        JET_ERR e_ = (expr);                                                                                      \
        if (e_ != (want)) {                                                                                       \
            fprintf(stderr, "FAIL line %d: %s returned %ld, expected %ld (%s)\n", __LINE__, #expr, (long)e_,     \
                    (long)(want), JetGetLastErrorDetail());                                                       \
            exit(1);                                                                                              \
        }                                                                                                         \
    } while (0)

static JET_INSTANCE start(const char *name)
{
    JET_INSTANCE inst;
    CHECK(JetCreateInstance(&inst, name), JET_errSuccess);
    CHECK(JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, dir), JET_errSuccess);
    CHECK(JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, dir), JET_errSuccess);
    CHECK(JetInit(&inst), JET_errSuccess);
    return inst;
}

static void open_db(JET_INSTANCE inst, JET_SESID *ps, JET_DBID *pdb)
{
    CHECK(JetBeginSession(inst, ps, NULL, NULL), JET_errSuccess);
    JET_ERR err = JetAttachDatabase(*ps, dbpath, 0);
    if (err == JET_errFileNotFound) {
        CHECK(JetCreateDatabase(*ps, dbpath, NULL, pdb, 0), JET_errSuccess);
        return;
    }
    if (err != JET_errSuccess && err != JET_wrnDatabaseAttached) CHECK(err, JET_errSuccess);
    CHECK(JetOpenDatabase(*ps, dbpath, NULL, pdb, 0), JET_errSuccess);
}

/* ---- a transaction handed from one thread to another ---- */

struct handoff {
    JET_SESID s;
    JET_TABLEID t;
};

static void *commit_there(void *arg)
{
    struct handoff *h = arg;
    CHECK(JetPutKV(h->s, h->t, "b", 1, "2", 1, 0), JET_errSuccess);
    CHECK(JetCommitTransaction(h->s, 0), JET_errSuccess);
    return NULL;
}

static void handoff(JET_INSTANCE inst)
{
    struct handoff h;
    JET_DBID db;
    open_db(inst, &h.s, &db);
    CHECK(JetCreateTable(h.s, db, "handoff", 0, 0, &h.t), JET_errSuccess);
    CHECK(JetBeginTransaction(h.s), JET_errSuccess);
    CHECK(JetPutKV(h.s, h.t, "a", 1, "1", 1, 0), JET_errSuccess);
    pthread_t th;
    pthread_create(&th, NULL, commit_there, &h);
    pthread_join(th, NULL);
    char v[4];
    unsigned long n = 0;
    CHECK(JetRetrieveKV(h.s, h.t, "a", 1, v, sizeof v, &n, 0), JET_errSuccess);
    CHECK(JetRetrieveKV(h.s, h.t, "b", 1, v, sizeof v, &n, 0), JET_errSuccess);
    CHECK(JetEndSession(h.s, 0), JET_errSuccess);
    printf("ok: a transaction begun on one thread commits on another\n");
}

/* ---- calls made with a transaction open ---- */

static void calls_in_transaction(JET_INSTANCE inst)
{
    JET_SESID s, s2;
    JET_DBID db, db2;
    JET_TABLEID t;
    open_db(inst, &s, &db);
    open_db(inst, &s2, &db2);
    CHECK(JetOpenTable(s, db, "handoff", NULL, 0, 0, &t), JET_errSuccess);
    CHECK(JetBeginTransaction(s), JET_errSuccess);
    char v[4];
    unsigned long n = 0;
    CHECK(JetRetrieveKV(s, t, "a", 1, v, sizeof v, &n, 0), JET_errSuccess);
    /* A backup may begin and end while this thread's transaction is open. */
    CHECK(JetBeginExternalBackupInstance(inst, 0), JET_errSuccess);
    JET_BACKUPSTATUS bs;
    memset(&bs, 0, sizeof bs);
    bs.cbStruct = sizeof bs;
    CHECK(JetGetBackupStatusInstance(inst, &bs), JET_errSuccess);
    CHECK(JetEndExternalBackupInstance2(inst, JET_bitBackupEndAbort), JET_errSuccess);
    /* DDL in another session of this same thread would wait for this
     * thread's own transaction: refused at once, not after a timeout. */
    time_t t0 = time(NULL);
    JET_TABLEID t2;
    CHECK(JetCreateTable(s2, db2, "other", 0, 0, &t2), JET_errWriteConflict);
    if (time(NULL) - t0 > 5) {
        fprintf(stderr, "FAIL: the refusal took %ld s\n", (long)(time(NULL) - t0));
        exit(1);
    }
    /* And so is a second transaction begun by this thread. */
    CHECK(JetBeginTransaction(s2), JET_errWriteConflict);
    CHECK(JetRollback(s, 0), JET_errSuccess);
    CHECK(JetCreateTable(s2, db2, "other", 0, 0, &t2), JET_errSuccess);
    CHECK(JetEndSession(s2, 0), JET_errSuccess);
    CHECK(JetEndSession(s, 0), JET_errSuccess);
    printf("ok: backup calls inside a transaction; a thread's second writer is refused at once\n");
}

/* ---- a table created in a rolled-back transaction ---- */

static void ddl_rolled_back(JET_INSTANCE inst)
{
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID u, w;
    open_db(inst, &s, &db);
    CHECK(JetBeginTransaction(s), JET_errSuccess);
    CHECK(JetCreateTable(s, db, "u", 0, 0, &u), JET_errSuccess);
    CHECK(JetRollback(s, 0), JET_errSuccess);
    CHECK(JetPutKV(s, u, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    CHECK(JetCreateTable(s, db, "w", 0, 0, &w), JET_errSuccess);
    CHECK(JetPutKV(s, u, "k", 1, "v", 1, 0), JET_errInvalidTableId);
    char v[4];
    unsigned long n = 0;
    CHECK(JetRetrieveKV(s, w, "k", 1, v, sizeof v, &n, 0), JET_errRecordNotFound);
    CHECK(JetCloseTable(s, u), JET_errInvalidTableId);
    CHECK(JetEndSession(s, 0), JET_errSuccess);
    printf("ok: a rolled-back table's id is dead and never reaches another table\n");
}

/* ---- a scan while another session deletes ---- */

static void scan_under_deletes(JET_INSTANCE inst)
{
    JET_SESID s, d;
    JET_DBID db, db2;
    JET_TABLEID t, td;
    open_db(inst, &s, &db);
    open_db(inst, &d, &db2);
    CHECK(JetCreateTable(s, db, "scan", 0, 0, &t), JET_errSuccess);
    CHECK(JetOpenTable(d, db2, "scan", NULL, 0, 0, &td), JET_errSuccess);
    for (char c = '1'; c <= '9'; c++) CHECK(JetPutKV(s, t, &c, 1, "v", 1, 0), JET_errSuccess);
    int seen = 0, deleted = 0;
    JET_ERR err = JetMove(s, t, JET_MoveFirst, 0);
    while (err == JET_errSuccess) {
        char k[8];
        unsigned long kl = 0, vl = 0;
        if (seen == 4 && !deleted++) { /* another session deletes the key the cursor is on */
            char cur = '5';
            CHECK(JetDeleteKV(d, td, &cur, 1), JET_errSuccess);
        }
        err = JetRetrieveCurrentKV(s, t, k, sizeof k, &kl, NULL, 0, &vl);
        if (err >= 0) seen++; /* (JET_wrnBufferTruncated: the value was not asked for) */
        else CHECK(err, JET_errRecordDeleted);
        err = JetMove(s, t, JET_MoveNext, 0);
    }
    CHECK(err, JET_errNoCurrentRecord);
    if (seen != 8) {
        fprintf(stderr, "FAIL: the scan saw %d of the 8 keys that existed throughout\n", seen);
        exit(1);
    }
    CHECK(JetEndSession(d, 0), JET_errSuccess);
    CHECK(JetEndSession(s, 0), JET_errSuccess);
    printf("ok: a scan goes on past a key another session deleted\n");
}

/* ---- JetTerm while another thread's session is in a transaction ---- */

struct open_txn {
    JET_INSTANCE inst;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* 1: in the transaction; 2: may leave */
};

static void *hold_transaction(void *arg)
{
    struct open_txn *o = arg;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    open_db(o->inst, &s, &db);
    CHECK(JetOpenTable(s, db, "handoff", NULL, 0, 0, &t), JET_errSuccess);
    CHECK(JetBeginTransaction(s), JET_errSuccess);
    CHECK(JetPutKV(s, t, "uncommitted", 11, "x", 1, 0), JET_errSuccess);
    pthread_mutex_lock(&o->mu);
    o->state = 1;
    pthread_cond_broadcast(&o->cv);
    while (o->state != 2) pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
    return NULL; /* never commits: JetTerm ended the session */
}

static void term_during_transaction(JET_INSTANCE inst)
{
    struct open_txn o = {.inst = inst, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    pthread_create(&th, NULL, hold_transaction, &o);
    pthread_mutex_lock(&o.mu);
    while (o.state != 1) pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    CHECK(JetTerm(inst), JET_errSuccess);
    pthread_mutex_lock(&o.mu);
    o.state = 2;
    pthread_cond_broadcast(&o.cv);
    pthread_mutex_unlock(&o.mu);
    pthread_join(th, NULL);
    printf("ok: JetTerm while another thread's session is in a transaction\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed_client DIR\n");
        return 2;
    }
    dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dbpath, sizeof dbpath, "%s/embed.db", dir);
    JET_INSTANCE inst = start("embed");
    handoff(inst);
    calls_in_transaction(inst);
    ddl_rolled_back(inst);
    scan_under_deletes(inst);
    term_during_transaction(inst);
    /* The instance comes back: the committed keys are there, the
     * uncommitted one is not. */
    inst = start("embed2");
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    open_db(inst, &s, &db);
    CHECK(JetOpenTable(s, db, "handoff", NULL, 0, 0, &t), JET_errSuccess);
    char v[4];
    unsigned long n = 0;
    CHECK(JetRetrieveKV(s, t, "b", 1, v, sizeof v, &n, 0), JET_errSuccess);
    CHECK(JetRetrieveKV(s, t, "uncommitted", 11, v, sizeof v, &n, 0), JET_errRecordNotFound);
    CHECK(JetTerm(inst), JET_errSuccess);
    printf("ok: after JetTerm the committed keys are there and the uncommitted one is not\n");
    return 0;
}

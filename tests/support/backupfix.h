/*
 * backupfix.h -- the fixture of the streaming backup suites
 * (tests/engine/test_backup.c and test_backup_chain.c): one scratch
 * database with its instance, the log directory as a user sees it (the
 * list of generation files), and the pieces of a backup client: reading a
 * file of the running backup through the API, restoring saved sets into a
 * directory and opening what was restored.
 *
 * One struct bf_db per suite, used from the main thread; writer threads of
 * a test may read inst and dbpath while it runs.  Failures are CUnit
 * asserts (fatal where a test cannot go on), as in testutil.
 */
#ifndef JET_BACKUPFIX_H
#define JET_BACKUPFIX_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"
#include "jet_inspect.h"

/* Checkpoint period for bf_start()/bf_reopen() that keeps the checkpoint
 * where it is (the cache is far from a quarter dirty in the tests that use
 * it), so it stays behind the generations a backup holds until bf_reopen()
 * moves it (a clean JetTerm flushes and writes the checkpoint at the log
 * end). */
#define BF_CKPT_HELD_MS 3600000ul

/* The test database: dir/b.db (dbpath), instance "bk" on dir, table "t"
 * in session s.  snap_kb and ckpt_ms are the parameters the next
 * bf_start()/bf_reopen() uses (snap_kb 0: the engine's default). */
struct bf_db {
    char dir[1024], dbpath[1100];
    JET_INSTANCE inst;
    JET_SESID s;
    JET_TABLEID t;
    unsigned long snap_kb, ckpt_ms;
};

/* A fresh scratch directory for the database of the next test. */
void bf_scratch(struct bf_db *fx, const char *name);
/* Opens the instance and creates the table (circular: circular logging). */
void bf_start(struct bf_db *fx, int circular);
/* Clean JetTerm and JetInit again on the same directory: the checkpoint
 * moves to the end of the log (the only way to move it on demand with a
 * held checkpoint period). */
void bf_reopen(struct bf_db *fx);
/* The checkpoint's generation, from the file (what recovery starts from). */
uint32_t bf_ckpt_gen(const struct bf_db *fx);
/* The live database's header (its backup history). */
JET_INSPECT_DBHEADER bf_live_hdr(const struct bf_db *fx);

/* ---- the log directory as a user sees it ---- */

#define BF_MAX_GENS 1024
struct bf_gens {
    int n;
    uint32_t g[BF_MAX_GENS];  /* ascending */
    uint64_t h[BF_MAX_GENS];  /* XXH3 of the file's bytes (with_hash) */
};

/* Every log generation file in d (not edbtmp.log), ascending. */
void bf_list_gens(const char *d, struct bf_gens *out, int with_hash);
/* The index of generation g in l, -1 if absent. */
int bf_gens_find(const struct bf_gens *l, uint32_t g);
void bf_print_gens(const char *what, const struct bf_gens *l);
/* Same generations, and (with hashes) the same bytes in each. */
int bf_gens_equal(const struct bf_gens *a, const struct bf_gens *b, int with_hash);
/* The generations a multi-string of log paths names. */
void bf_gens_of_multistring(const char *szz, struct bf_gens *out);
/* The generations JetGetTruncateLogInfoInstance names now. */
void bf_truncate_info(const struct bf_db *fx, struct bf_gens *out);

void bf_sleep_ms(int ms);

/* ---- a backup client ---- */

/* Reads a whole file of the running backup's set through the API, in
 * random-sized pieces at random offsets, then fills any gap sequentially;
 * *pn gets its size.  free() it. */
unsigned char *bf_read_through_backup(const struct bf_db *fx, const char *path, size_t *pn, uint64_t *rng);
/* Key k ("k%06d", as tu_load) holds a 500-byte value of fill (0: absent). */
int bf_value_is(JET_SESID ss, JET_TABLEID tt, int k, char fill);
/* Copies the database of sets[0] and the logs of sets[0..nsets) into rdir
 * (emptied first) and restores there with JetExternalRestore3 up to
 * stop_gen (0: all), b's database mapped to rdir/b.db; its result. */
int bf_restore_into(const struct bf_db *fx, const char *rdir, const char *const *sets, int nsets,
                    unsigned long stop_gen);
/* Opens the database restored in rdir (recovered when opened): table "t"
 * in session *ps; JetTerm the instance returned. */
JET_INSTANCE bf_open_restored(const char *rdir, JET_SESID *ps, JET_TABLEID *pt);

#endif

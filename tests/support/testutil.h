/*
 * testutil.h -- helpers shared by the CUnit tests: scratch directories,
 * seeds that are printed and can be given back (SEED=...), and a runner.
 */
#ifndef JET_TESTUTIL_H
#define JET_TESTUTIL_H

#include <CUnit/Basic.h>
#include <stdint.h>

#include "jet.h"

/* A fresh empty directory under $JET_TEST_TMP (or /tmp); static buffer. */
const char *tu_scratch_dir(const char *name);
/* The seed for a randomized test: $SEED if set, else time-based; printed. */
uint64_t tu_seed(const char *test);
/* xorshift64* */
uint64_t tu_rand(uint64_t *state);
/* Runs the registered suites; returns the process exit code. */
int tu_run(void);
/* Iteration count: $name if set in the environment, else ci (or lng with JET_LONG=1). */
long tu_count(const char *name, long ci, long lng);

/* Instance parameters for tu_open and tu_instance; 0 (NULL) keeps the
 * engine's default. */
struct tu_params {
    long log_kb, cache_pages, ckpt_ms;
    long circular;        /* JET_paramCircularLog */
    long snap_kb;         /* JET_paramSnapshotMemoryMax */
    const char *log_dir;  /* the log path; NULL: the system path */
};
/*
 * The per-suite instance setup, once: creates instance name with system
 * path dir and the parameters p, and initialises it (recovering).  With a
 * dbpath, then begins a session (*ps) and opens table "t" of that
 * database (*pdb may be NULL), created (overwriting) when create, else
 * attached and opened.  Returns the first error, for tests whose start may
 * be refused; *pinst is set as soon as the instance exists, so a failed
 * start can still be JetTerm'ed.
 */
JET_ERR tu_open(const char *name, const char *dir, struct tu_params p, const char *dbpath, int create,
                JET_INSTANCE *pinst, JET_SESID *ps, JET_DBID *pdb, JET_TABLEID *pt);
/* tu_open without a database, failing the test fatally if it cannot. */
JET_INSTANCE tu_instance(const char *name, const char *dir, struct tu_params p);
/* Begins a session on inst and opens table "t" of the database at path:
 * created (overwriting) when create, else attached and opened. */
void tu_table(JET_INSTANCE inst, const char *path, int create, JET_SESID *ps, JET_TABLEID *pt);

/* XXH3 of a file's bytes from offset skip on; *psize (may be NULL) gets
 * its size.  0 and a size of -1 if it cannot be read. */
uint64_t tu_file_hash(const char *path, uint64_t skip, long long *psize);
/* A whole file in memory, NUL-terminated (so text can be searched);
 * *pn (may be NULL) gets its size.  NULL if it cannot be read.  free() it. */
char *tu_slurp(const char *path, size_t *pn);
/* Puts keys "k%06d" for [from, to) with 500-byte values of `fill`, 100
 * per durable transaction. */
void tu_load(JET_SESID s, JET_TABLEID t, int from, int to, char fill);

/* What a directory holds: every regular file's name, size and XXH3 hash. */
#define TU_SNAP_MAX 4096
struct tu_dir_snap {
    int n;
    struct {
        char name[64];
        long long size;
        uint64_t hash;
    } f[TU_SNAP_MAX];
};
void tu_snap_dir(const char *dir, struct tu_dir_snap *sn);
/* Asserts dir still holds exactly what *before recorded, saying what
 * differs; the file named except (NULL: none) need only still be there. */
void tu_assert_dir_unchanged(const char *dir, const struct tu_dir_snap *before, const char *except);

/* Reads one file of inst's running backup whole into setdir. */
void tu_backup_file(JET_INSTANCE inst, const char *path, const char *setdir);
/* Takes a whole backup of inst, of kind type ("full", "incremental",
 * "copy" or "differential"), into setdir (emptied first) with its
 * manifest, and ends it normally, truncating for a full or incremental
 * one; *li (may be NULL) gets the set's range from JetGetLogInfoInstance2. */
void tu_backup(JET_INSTANCE inst, const char *setdir, const char *type, JET_LOGINFO *li);

#define TU_CHECK_ERR(call, expected) do { CU_ASSERT_EQUAL((long)(call), (long)(expected)); } while (0)

#endif

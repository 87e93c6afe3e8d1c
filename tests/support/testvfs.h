/*
 * testvfs.h -- the one test wrapper of the engine's I/O seam (os.h): counts
 * calls, fails the Nth call of a kind (optionally only on files whose name
 * ends with a suffix) with a chosen JET_ERR, and lets a test watch every
 * call through one observer.
 *
 * It wraps whatever table is in force when installed, so it stacks on
 * crashvfs (crashvfs.h) for power loss: crashvfs_install(), then
 * testvfs_install(); take them down in the other order.  Faults injected
 * here are transient and performed nothing; crashvfs's tear, drop and
 * scramble happen below, on the writes that got through.
 *
 * Every fd-based call knows the path its descriptor was opened by (while
 * testvfs was installed; "?" for descriptors opened before), so rules and
 * observers can tell the log from the database from a spill file.
 *
 * Thread-safe: the engine's checkpointer, log preparer and committers call
 * it from their own threads.  The observer runs on the calling thread with
 * no lock of testvfs held, so it may sleep or block (to widen a race, or
 * to hold a thread at a chosen point).
 */
#ifndef JET_TESTVFS_H
#define JET_TESTVFS_H

#include <stddef.h>
#include <stdint.h>

#include "jet.h"

enum testvfs_kind {
    TV_OPEN, TV_CLOSE, TV_PREAD, TV_PWRITE, TV_FSYNC, TV_FTRUNCATE, TV_FSIZE,
    TV_UNLINK, TV_RENAME, TV_SYNC_DIR, TV_LOCK, TV_IDENTITY,
    TV_KINDS
};

/* One call at the seam, as the observer sees it. */
struct testvfs_call {
    enum testvfs_kind kind;
    int after;          /* 0: about to be made; 1: made (or failed), result set */
    int fd;             /* the descriptor (open: the new one, after); -1 if none */
    const char *path;   /* the path argument, or the name fd was opened by ("?") */
    const char *to;     /* rename: the new name */
    const void *buf;    /* pwrite: the bytes; pread: the buffer (filled, after) */
    size_t n;           /* pread/pwrite: bytes asked; open: the OS_OPEN_* flags */
    uint64_t off;       /* pread/pwrite: offset; ftruncate: the size */
    size_t got;         /* pread, after: bytes read */
    JET_ERR result;     /* after: what the call returns */
    int injected;       /* after: result is a fault injected by a rule or the observer */
};

/*
 * Called twice per call, before and after.  Before, a negative return
 * fails the call with that error without making it (rules are not
 * consulted); after, the return is ignored.
 */
typedef JET_ERR (*testvfs_observer)(void *arg, const struct testvfs_call *c);

/* Installs over the table in force, with counts at zero, no rules and obs
 * (NULL: none) as the observer.  Install only while no instance runs, or
 * while the calls the test cares about have not started. */
void testvfs_install(testvfs_observer obs, void *arg);
/* Puts back the table testvfs was installed over, forgets its rules. */
void testvfs_uninstall(void);

/*
 * The nth call of kind from now on (nth >= 1) whose path ends with suffix
 * (NULL: any file) fails with err, and nothing is done; with testvfs_fail_from
 * every matching call from the nth on fails too.  One rule per kind: a new
 * one replaces the old.  testvfs_clear(kind) removes it.
 */
void testvfs_fail(enum testvfs_kind kind, long nth, const char *suffix, JET_ERR err);
void testvfs_fail_from(enum testvfs_kind kind, long nth, const char *suffix, JET_ERR err);
void testvfs_clear(enum testvfs_kind kind);

/* Calls of kind since install (or testvfs_reset_counts), failed ones included. */
long testvfs_count(enum testvfs_kind kind);
/* Calls failed by a rule or by the observer since install. */
long testvfs_injected(void);
void testvfs_reset_counts(void);
/* The name fd was opened by, into buf ("?" if unknown); returns buf. */
const char *testvfs_path_of(int fd, char *buf, size_t cb);
/* Does s end with suffix? (A NULL suffix matches everything.) */
int testvfs_ends_with(const char *s, const char *suffix);

#endif

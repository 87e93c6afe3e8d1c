/*
 * jetfs.h -- libjetfs: mount a live jetfs instance's backups as files.
 *
 * A program that hosts an engine instance (jet.h) mounts its backup tree
 * with jetfs_mount() and ends the session with jetfs_unmount() (or the
 * operator runs `fusermount3 -u MOUNT`); jetfs_wait() returns when the
 * session is over and says how its backup ended.  One mount = one session
 * = at most one backup:
 *
 *   MOUNT/status                  JSON: the session, the backup, history
 *   MOUNT/backup/{full,incremental,differential,copy}/
 *                                 opening one begins that backup; inside:
 *                                 database file(s), log generations and
 *                                 backup.manifest, fixed at begin
 *
 * Listing a kind directory begins that backup; opening a file of its set
 * commits the session to it (until then another kind listed takes its
 * place, so tree walks see every kind).  Unmount ends the backup normally
 * (truncating, for full and incremental) when every file of the set was
 * read whole, in this session or, for a log generation, by an earlier
 * backup of the instance; otherwise it aborts it (nothing truncated,
 * history unchanged).  An explicit end is an ioctl on MOUNT/status
 * (JETFS_IOC_END_NORMAL / JETFS_IOC_END_ABORT: 0 ended normally, 1
 * aborted): `jetfs end`.  An explicit end that ended the backup, and a
 * watchdog abort (space limit, idle timeout), then end the session as an
 * unmount does: jetfs_wait returns, and the host mounts again for the
 * next backup, so whoever may end a backup (any reader of status, such
 * as a member of the backup group) can also begin the next one, without
 * the right to unmount.  After an explicit end the session unmounts once
 * no status file is open (the ender reads the outcome there first), or
 * after JETFS_END_UNMOUNT_GRACE seconds.
 *
 * Threading: jetfs_mount starts the FUSE loop (many threads) and a
 * watchdog thread; jetfs_unmount may be called from any thread, once;
 * jetfs_wait from one thread; jetfs_free after jetfs_wait returned.
 *
 * Priority: the live instance comes first.  A loop thread that serves a
 * read of a set file runs at SCHED_IDLE from then on, so a client thread
 * that wakes (a commit whose fsync landed) takes the CPU at once instead
 * of waiting behind a backup streaming at memory speed.  The cost: while
 * the host's CPUs are saturated by other work, the backup advances only
 * with the CPU left over.  normal_priority keeps the loop at the caller's
 * priority.  Beginning, ending and status stay at normal priority.
 */
#ifndef JETFS_H
#define JETFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "jet.h"

#define JETFS_IOC_END_NORMAL _IO('J', 1) /* fails EAGAIN unless the set was read whole */
#define JETFS_IOC_END_ABORT _IO('J', 2)

#define JETFS_DEFAULT_SPACE_LIMIT (8ull << 30)   /* snapshot bytes */
#define JETFS_DEFAULT_IDLE_TIMEOUT 1800u         /* seconds without a read */
#define JETFS_END_UNMOUNT_GRACE 10                /* seconds an open status delays the unmount */

struct jetfs_options {
    const char *mountpoint;
    const char *instance_name;   /* shown in status */
    const char *const *db_paths; /* databases whose backup history status shows */
    size_t ndb_paths;
    bool truncate_manual;        /* only an explicit normal end truncates */
    bool group_access;           /* open the tree to group gid (allow_other) */
    gid_t gid;
    uint64_t space_limit;        /* 0: JETFS_DEFAULT_SPACE_LIMIT */
    unsigned idle_timeout_s;     /* 0: JETFS_DEFAULT_IDLE_TIMEOUT */
    bool normal_priority;        /* serve backup reads at normal priority, not SCHED_IDLE */
    bool debug;                  /* libfuse request tracing */
    bool mounts_again;           /* the host mounts again after each unmount: status says so ("remount") */
    void (*log)(void *arg, const char *line);  /* events; NULL: stderr */
    void *log_arg;
};

struct jetfs;

/*
 * Mounts the tree of inst at opt->mountpoint and starts serving it.  On
 * failure returns -errno and a one-line reason in why: no /dev/fuse, a
 * mount point that is missing, not a directory, or already mounted (a
 * stale jetfs mount left by a killed process is cleaned up first).
 */
int jetfs_mount(JET_INSTANCE inst, const struct jetfs_options *opt, struct jetfs **out, char *why, size_t cbwhy);
/* Asks the session to end: the backup ends as on unmount, then unmounts. */
void jetfs_unmount(struct jetfs *fs);
/* Waits until the session is over; outcome gets how its backup ended. */
int jetfs_wait(struct jetfs *fs, char *outcome, size_t cboutcome);
void jetfs_free(struct jetfs *fs);

/*
 * Browsing a backup set by its content (browse.c; `jetfs browse`): a
 * read-only tree over an instance that is only read -- what JetBrowseSets
 * opened, or any instance whose database nobody changes meanwhile:
 *
 *   MOUNT/status                JSON: the sets, the point in time (UTC
 *                               text and microseconds), the generations
 *                               replayed, the stop asked, the overlay bytes
 *   MOUNT/tables/<table>/<key>  one file per key; its content is the value,
 *                               byte for byte
 *
 * Table and key names are keyname.h's encoding of their bytes (a key too
 * long for a name: a prefix, "%~" and a hash).  Every time in the tree is
 * us_point; files are 0444 and directories 0555, owned by the mounting
 * user; sizes are exact; any change is EROFS.  A table lists in key order,
 * streamed (never held in memory), with stable offsets.  An engine read
 * error is EIO for that request, logged with the engine's detail.
 *
 * Threading: as jetfs_mount's session: browse_mount starts the loop
 * threads, each request takes a JET session of its own from a pool;
 * browse_unmount may be called from any thread, once or more;
 * browse_wait from one thread; browse_free after it (it ends the pool's
 * sessions: call it before JetBrowseClose or JetTerm).
 */
struct jetfs_browse_options {
    const char *mountpoint;
    const char *database;         /* JetOpenDatabase(JET_bitDbReadOnly) path */
    unsigned long long us_point;  /* the state's point in time: every mtime */
    const char *const *sets;      /* shown in status (may be NULL) */
    int nsets;
    /* status: the browse's numbers (JetBrowseGetInfo); NULL: not shown. */
    JET_ERR (*info)(void *arg, JET_BROWSEINFO *info);
    void *info_arg;
    bool debug;                   /* libfuse request tracing */
    void (*log)(void *arg, const char *line);  /* events and errors; NULL: stderr */
    void *log_arg;
};

struct jetfs_browse;

/* Mounts the tree; -errno and a one-line reason in why on failure (as
 * jetfs_mount, plus a database or table list the engine cannot read). */
int jetfs_browse_mount(JET_INSTANCE inst, const struct jetfs_browse_options *opt, struct jetfs_browse **out,
                       char *why, size_t cbwhy);
void jetfs_browse_unmount(struct jetfs_browse *b);
/* Returns when the tree is unmounted (jetfs_browse_unmount or fusermount3 -u). */
void jetfs_browse_wait(struct jetfs_browse *b);
void jetfs_browse_free(struct jetfs_browse *b);

#endif

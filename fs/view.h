/*
 * view.h -- the backup tree of one mount session, without FUSE.
 *
 * The view maps a live instance's backup (the engine's external backup
 * API, jet.h) onto names, attributes and reads.  fuse_glue.c is a thin
 * layer over it; tests drive it directly, without mounting.
 *
 *   /                      JV_INO_ROOT
 *   /status                JV_INO_STATUS       JSON, regenerated per open
 *   /backup                JV_INO_BACKUP
 *   /backup/<kind>         JV_INO_KIND + kind  opening it begins that kind
 *   /backup/<kind>/<file>  the set, once begun: database file(s), log
 *                          generations, backup.manifest and the same text
 *                          as backup.<begin>-<id>.manifest (a name of its
 *                          backup's own, so that sets copied one after
 *                          another into one directory keep every
 *                          session's manifest: JetBackupManifestName)
 *
 * One session = one mount.  States of a session:
 *
 *   IDLE --jv_begin(kind)--> RUNNING --jv_end--> ENDED
 *     |        ^                |  (unmount, explicit end, idle timeout,
 *     |        |                |   space limit: each ends it, normally or
 *     |        +----------------+   aborted, and says why)
 *     |   another kind, while no file of the set was opened (the set was
 *     |   only listed or stat'ed: a tree walk): that backup is aborted,
 *     |   nothing recorded, and the other kind begins
 *     +-- jv_begin refused (missing full, ...) stays IDLE, reason kept
 *
 * What begins a backup: opening a kind directory or looking up a name in
 * it.  What commits the session to it: opening a file of its set.  So
 * du, find and ls -R see every kind, and the backup that is read is the
 * one whose files were opened.  Another kind once a file was opened, or
 * after the backup ended, is EBUSY.  Inode numbers, sizes and mtimes
 * (nanoseconds) are fixed when the set is built at begin and never change
 * while it runs; inode numbers are derived from what the file is (above),
 * so they are also the same across sessions for the same file.
 *
 * Locking: view->mu guards the session state, the set list and the
 * counters; reads run outside it (the engine's positional read is safe from
 * many threads), taking it only to account.  A handle returned by jv_open
 * stays valid until jv_release, even if the backup ends meanwhile (reads
 * then fail with EIO).
 */
#ifndef JETFS_VIEW_H
#define JETFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "jet.h"

enum jv_kind { JV_FULL, JV_INCREMENTAL, JV_DIFFERENTIAL, JV_COPY, JV_NKINDS };

#define JV_INO_ROOT 1u
#define JV_INO_STATUS 2u
#define JV_INO_BACKUP 3u
#define JV_INO_KIND 4u          /* 4..7: full, incremental, differential, copy */
/*
 * A set file's inode number (st_ino) says what it is: its kind, and the
 * database index or log generation, so it is the same in every session.
 * The FUSE node id the kernel caches is that number, plus, when a kind is
 * begun again in one session (after a listing gave way to another kind),
 * an epoch in bits 48.. so no page the kernel cached of the earlier set is
 * ever served for the new one.  For the first begin of a kind the two are
 * equal.
 */
#define JV_INO_MANIFEST 16u                       /* + kind */
#define JV_INO_SESSION_MANIFEST 20u               /* + kind: backup.<begin>-<id>.manifest */
#define JV_INO_DB 0x1000u                         /* + kind * 0x100 + database index */
#define JV_INO_LOG (1ull << 32)                   /* + kind << 36 + generation */
#define JV_INO_MANIFEST_OF(kind) (JV_INO_MANIFEST + (uint64_t)(kind))
#define JV_INO_SESSION_MANIFEST_OF(kind) (JV_INO_SESSION_MANIFEST + (uint64_t)(kind))
#define JV_INO_DB_OF(kind, i) (JV_INO_DB + (uint64_t)(kind) * 0x100u + (uint64_t)(i))
#define JV_INO_LOG_OF(kind, gen) (JV_INO_LOG + ((uint64_t)(kind) << 36) + (uint64_t)(gen))
#define JV_EPOCH_SHIFT 48

#define JV_MANIFEST_NAME "backup.manifest"

struct jv_options {
    bool truncate_manual;        /* unmount never truncates; only an explicit end */
    uid_t uid;
    gid_t gid;
    bool group_access;           /* files 0440 / dirs 0550 for gid, else 0400 / 0500 */
    uint64_t space_limit;        /* snapshot bytes (memory + spill) before aborting */
    unsigned idle_timeout_s;     /* seconds without a read before aborting */
    const char *instance_name;   /* shown in status */
    bool mounts_again;           /* status: "remount", a new session follows this one's unmount */
    void (*log)(void *arg, const char *line);  /* one line per event; may be NULL */
    void *log_arg;
};

struct jv_view;

/* One directory entry or lookup result. */
struct jv_entry {
    uint64_t ino;
    char name[256];
    struct stat st;
};

int jv_create(JET_INSTANCE inst, const struct jv_options *opt, struct jv_view **out);
/* The database files whose headers status reads for "last_completed". */
int jv_set_db_paths(struct jv_view *v, const char *const *paths, size_t n);
/* Ends a running backup as jv_end(JV_END_UNMOUNT) would, then frees. */
void jv_destroy(struct jv_view *v);

const char *jv_kind_name(enum jv_kind kind);

/*
 * jv_begin starts a backup of kind (idempotent for the kind already
 * running).  -EBUSY for another kind or after the session's backup ended;
 * -EPERM (incremental or differential with no full backup), -EIO otherwise;
 * the reason goes to status and the log.
 */
int jv_begin(struct jv_view *v, enum jv_kind kind);

/* Attributes of an inode: 0 or -ENOENT (a node id of a set that gave way). */
int jv_getattr(struct jv_view *v, uint64_t ino, struct stat *st);
/*
 * Looks name up in directory parent.  A lookup inside a kind directory
 * begins that backup (it is how `cat MOUNT/backup/full/x` starts one).
 */
int jv_lookup(struct jv_view *v, uint64_t parent, const char *name, struct jv_entry *e);
/*
 * Entries of directory ino (without "." and ".."), from index `from`, into
 * e[0..max): returns how many, or -errno.  Listing a kind directory needs
 * jv_begin first (opendir does it).
 */
int jv_readdir(struct jv_view *v, uint64_t ino, size_t from, struct jv_entry *e, size_t max);

/* Files.  jv_open returns an opaque handle (>0) or -errno. */
int64_t jv_open(struct jv_view *v, uint64_t ino);
/* Reads up to size bytes at off: bytes read (0 at or past the end) or -errno. */
ssize_t jv_read(struct jv_view *v, int64_t fh, uint64_t off, void *buf, size_t size);
void jv_release(struct jv_view *v, int64_t fh);

/*
 * A sequential reader and the kernel's page cache.  The mount keeps what
 * it read in the page cache across opens (keep_cache), so a re-read or an
 * mmap is served from memory.  But a sequential reader (tar, cat, cp,
 * rsync, dd, restic, borg) passes each byte once, and kept behind it a
 * full read of a set would leave a set-sized copy in memory.  So each
 * open follows its reader: reads that continue where the earlier ones
 * ended (up to JV_SEQ_GAP ahead, for pages the kernel had cached, or
 * JV_SEQ_SLACK behind, for the readahead requests the kernel has in flight
 * at once, which complete in any order) make a stream, as long as they
 * read most of the bytes it spans;
 * once a stream is JV_DROP_BEHIND + JV_DROP_STEP past what was dropped,
 * the range it passed more than JV_DROP_BEHIND ago is handed back to drop
 * (a jv_drop), and at release the rest of a stream that read the file
 * whole or at least JV_STREAM_MIN.  A read that jumps starts a new stream
 * and drops nothing: a random reader builds no stream, and what it read
 * stays cached.
 *
 * So a full read of a set keeps at most about JV_DROP_BEHIND +
 * JV_DROP_STEP (plus the readahead window) per file open at once, however
 * large the set.  Dropping is advice: a dropped page read again is read
 * again from the engine, the same bytes.
 */
#define JV_SEQ_SLACK (16ull << 20)
#define JV_SEQ_GAP (2ull << 20)
#define JV_DROP_BEHIND (16ull << 20)
#define JV_DROP_STEP (4ull << 20)
#define JV_STREAM_MIN (4ull << 20)

/* A range of node ino's page cache to drop: len 0 means none. */
struct jv_drop {
    uint64_t ino, off, len;
};
/* jv_read and jv_release, with the range the reader passed (if any) into
 * *drop (drop may be NULL). */
ssize_t jv_read_drop(struct jv_view *v, int64_t fh, uint64_t off, void *buf, size_t size, struct jv_drop *drop);
void jv_release_drop(struct jv_view *v, int64_t fh, struct jv_drop *drop);

/* The status document (malloc'd JSON, NUL-terminated). */
char *jv_status_json(struct jv_view *v, size_t *plen);
/* The status file: each open reads the document as of that open, so a
 * reader sees one consistent JSON text however it reads it.  open: 0 and
 * a handle, or -ENOMEM; read: bytes (0 past the end) or -EBADF for a
 * released handle; release frees it (a second release does nothing). */
int jv_status_open(struct jv_view *v, uint64_t *pfh);
ssize_t jv_status_read(struct jv_view *v, uint64_t fh, uint64_t off, void *buf, size_t size);
void jv_status_release(struct jv_view *v, uint64_t fh);
/* How many status handles are open (not yet released). */
size_t jv_status_opened(struct jv_view *v);

enum jv_end_how {
    JV_END_UNMOUNT,   /* normal when every file was read whole or (a log) delivered before, else abort */
    JV_END_NORMAL,    /* explicit: normal (truncating per kind), or refused if not read whole */
    JV_END_ABORT,     /* explicit abort */
};
/*
 * Ends the session's backup.  Returns 0 when it ended normally, 1 when it
 * was aborted (nothing truncated), -ENOENT when no backup is running,
 * -EAGAIN for JV_END_NORMAL when the set was not read whole (nothing
 * changes then), -EIO when the engine failed.  why (may be NULL) gets the
 * one-line outcome.
 */
int jv_end(struct jv_view *v, enum jv_end_how how, char *why, size_t cbwhy);
/* How the session's backup ended (explicitly, by the watchdog or at
 * unmount), or why its begin was refused; "" if nothing happened yet. */
void jv_outcome(struct jv_view *v, char *out, size_t cb);

/*
 * Watchdog: aborts a running backup past the space limit or the idle
 * timeout (now_s is a monotonic clock in seconds).  Idle means no request
 * reached the view and no file of the set was held open for the timeout:
 * a reader with a file open may be served from the kernel's page cache,
 * which the view never sees.  Returns 1 if it aborted one.
 */
int jv_tick(struct jv_view *v, double now_s);

#endif

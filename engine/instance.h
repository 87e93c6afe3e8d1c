/*
 * instance.h -- the engine's internal structures, shared by its modules.
 *
 * Objects and what protects them:
 *   g_state (instance.c)    global mutex: mode, instance list, handle table
 *   jet_instance.mu         instance state, attached databases, sessions
 *   jet_instance.write_lock one writer transaction at a time (held from
 *                           JetBeginTransaction, or an implicit one, until
 *                           commit/rollback has installed its pages)
 *   jet_instance.commit_lock rwlock: readers hold it shared for one
 *                           operation so they see a consistent set of pages;
 *                           commit holds it exclusive while it appends its
 *                           records and installs its pages (so a checkpoint
 *                           never sees a transaction half installed)
 *   cache.mu                frames, hash, LRU, dirty state
 *   jet_instance.backup_mu  the backup in progress (backup.c)
 * The lock order, with every nesting the code makes, is one table in
 * engine/README.md ("Lock order").
 *
 * Instance states: CREATED --JetInit--> RUNNING --JetTerm--> (freed);
 * RUNNING --fatal log error--> unavailable flag set (every call
 * JET_errInstanceUnavailable until JetTerm; recovery at the next JetInit).
 */
#ifndef JET_INSTANCE_H
#define JET_INSTANCE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "btree.h"
#include "dbfile.h"
#include "discard.h"
#include "jet.h"
#include "log.h"

#define JET_MAX_DBS 8
#define JET_PATH_MAX 1024

/* ---- page buffers and the cache (cache.c) ---- */

struct pgbuf {
    atomic_int refs;
    uint8_t data[];
};

struct frame {
    uint32_t dbidx, pgno;
    struct pgbuf *buf;
    int pins;
    bool loading;
    bool dirty;
    lsn_t rec_lsn;  /* first change not yet on disk (valid when dirty) */
    lsn_t lsn;      /* end of the commit that installed the current version */
    bool fresh;     /* (valid when dirty) the first change since the last write started it from zeroes */
    struct frame *hnext;
    struct frame *prev, *next;  /* LRU, most recent at head */
};

struct jet_instance;
struct dwb;

struct cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t page_size;
    size_t capacity;
    size_t nframes;
    size_t ndirty;
    struct frame **hash;
    size_t nbuckets;
    struct frame *head, *tail;
    struct jet_instance *inst;
    uint64_t hits, misses, evictions;
};

struct pgbuf *pgbuf_new(uint32_t page_size);
void pgbuf_ref(struct pgbuf *b);
void pgbuf_unref(struct pgbuf *b);

JET_ERR cache_init(struct cache *c, struct jet_instance *inst, uint32_t page_size, size_t capacity);
void cache_destroy(struct cache *c);
/* Pins the committed version of a page, reading it from disk if needed. */
JET_ERR cache_get(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf **pbuf);
void cache_put(struct cache *c, uint32_t dbidx, uint32_t pgno);
/* Installs a committed version (takes over the reference). Context: commit_lock exclusive. */
JET_ERR cache_install(struct cache *c, uint32_t dbidx, uint32_t pgno, struct pgbuf *buf, lsn_t first_lsn,
                      lsn_t lsn, bool fresh);
/* Drops every frame of a database (after it was flushed), for detach. */
void cache_forget_db(struct cache *c, uint32_t dbidx);

/*
 * Writes every dirty page (WAL rule respected), fsyncs the database files,
 * and returns the checkpoint position: every change before it is on disk.
 * Context: takes commit_lock exclusive briefly to capture a consistent set.
 */
JET_ERR cache_flush_all(struct cache *c, lsn_t *pckpt);
/* After a commit: wakes or runs write-back when too much of the cache is dirty. */
JET_ERR cache_throttle(struct cache *c);

/* ---- databases ---- */

/*
 * A copy-on-write snapshot of a database file, for a backup: the file as it
 * stood at begin.  Before the engine overwrites a page below npages, the
 * old contents are preserved here (snap_preserve_locked); readers take the
 * preserved copy if there is one, else the file.  Protected by the
 * database's snap_lock (readers shared, page writers exclusive).
 */
struct snapshot {
    uint64_t size;            /* file size at begin */
    uint32_t npages;
    uint32_t *keys;           /* open addressing: pgno + 1, 0 = empty */
    uint8_t **pages;          /* in memory, or NULL when spilled */
    uint64_t *spill_off;      /* where a spilled page lives in the spill file */
    size_t cap, n;
    uint64_t bytes;           /* memory held by preserved pages */
    uint64_t mem_max;         /* past this, pages spill to the file */
    int spill_fd;             /* -1 until the first spill */
    char spill_path[JET_PATH_MAX];
    uint64_t spill_bytes;
    /* Preserving a page failed (the spill file's disk is full, say): the
     * engine's writes go on unpreserved, the backup can no longer be
     * served and fails with this reason. */
    bool failed;
    char failure[512];
};

struct db {
    uint32_t dbidx;
    pthread_rwlock_t snap_lock;
    struct snapshot *snap;
    char path[JET_PATH_MAX];
    int fd;
    struct db_header hdr;
    int opens;               /* JetOpenDatabase count over all sessions */
    int table_cursors;       /* open cursors, for JetDetach / TableInUse */
    bool attached;
};

/* ---- parameters ---- */

struct jet_params {
    char system_path[JET_PATH_MAX];
    char log_path[JET_PATH_MAX];
    char base[JET_BASE_NAME_LENGTH + 1];
    uint32_t log_file_size;  /* bytes */
    int circular;
    uint32_t cache_pages;
    uint32_t page_size;
    int recovery;            /* 0 = logging disabled */
    uint32_t ckpt_period_ms;
    uint64_t snapshot_mem_max;  /* bytes */
};

/* ---- the instance ---- */

enum inst_state { INST_CREATED, INST_RUNNING, INST_TERMINATING };

struct session;

struct jet_instance {
    JET_INSTANCE handle;
    char name[64];
    pthread_mutex_t mu;
    enum inst_state state;
    struct jet_params p;
    struct jet_log *log;
    struct dwb *dwb;           /* the double-write file (NULL with logging off) */
    uint64_t log_signature;
    struct cache cache;
    struct db *dbs[JET_MAX_DBS];
    pthread_mutex_t write_lock;
    pthread_rwlock_t commit_lock;
    atomic_int unavailable;
    char failure[640];         /* why it became unavailable (set once, before unavailable) */
    atomic_uint_fast64_t txn_seq;
    /* checkpointer */
    pthread_t ckpt_thread;
    bool ckpt_running;
    bool ckpt_stop;
    pthread_cond_t ckpt_cv;
    pthread_mutex_t ckpt_mu;   /* serialises checkpoint cycles */
    bool ckpt_kicked;          /* under mu: run a cycle now (ckpt_kick) */
    atomic_bool ckpt_note_gen; /* a generation closed: record the new one (set without mu) */
    lsn_t checkpoint_lsn;
    int nsessions;
    int lock_fd;               /* the instance lock file in system_path */
    /* the backup in progress, if any (backup.c), under backup_mu */
    pthread_mutex_t backup_mu;
    pthread_cond_t backup_cv;  /* signalled when a backup's readers drop to 0 */
    struct backup *backup;
    uint32_t backup_pin_gen;   /* circular logging keeps generations >= this (0 = none) */
    bool init_done;            /* JetInit finished: backups allowed */
    struct restore_map *restore;  /* recovery in restore mode (restore.c) */
    /* A discard after damage (discard.c) recovery found noted: logged as
     * LR_DISCARD once the new generation is open, then the note removed. */
    bool discard_pending;
    struct discard_note discard;
    /* table names with open cursors: name -> count, per db (tables.c) */
    struct open_table *open_tables;
};

struct open_table {
    uint32_t dbidx;
    char name[JET_cbNameMost + 1];
    int count;
    struct open_table *next;
};

/* ---- transactions (txn.c) ---- */

struct txn_page {
    uint64_t key;  /* dbidx << 32 | pgno */
    struct pgbuf *buf;
    struct pgbuf *base;  /* the committed version buf was copied from (NULL: starts from zeroes) */
};

struct txn {
    struct txn_page *pages;   /* open-addressing table */
    size_t cap, n;
    uint64_t *order;          /* keys in first-touch order */
    size_t limit;             /* most private pages allowed */
    bool failed;              /* an update failed midway: rollback required */
    uint8_t *scratch;         /* commit's encoded records, kept between commits */
    size_t scratch_cap;
};

struct session {
    JET_SESID handle;
    struct jet_instance *inst;
    int level;                /* 0 or 1 */
    bool readonly;
    bool implicit;            /* an auto-commit transaction around one update */
    bool holds_write_lock;
    struct txn txn;
    lsn_t last_commit_end;    /* end of this session's last commit (JET_bitWaitLastLevel0Commit) */
    int opened[JET_MAX_DBS];
};

struct cursor {
    JET_TABLEID handle;
    struct session *s;
    uint32_t dbidx;
    char name[JET_cbNameMost + 1];
    uint32_t root;
    uint8_t key[JET_cbKeyMost];
    size_t klen;
    bool has_current;
};

/* Pager for B+trees: reads see the session's transaction, then the cache. */
struct pager_ctx {
    struct session *s;   /* never NULL: its transaction's pages are seen first */
    uint32_t dbidx;
    JET_ERR sticky;      /* first error the pager itself saw */
};
void pager_make(struct bt_pager *pg, struct pager_ctx *ctx, struct session *s, uint32_t dbidx);

JET_ERR txn_begin(struct session *s, bool readonly, bool implicit);
JET_ERR txn_commit(struct session *s, bool lazy);
/* Waits until the session's last commit is durable (lazy commits included). */
JET_ERR txn_wait_durable(struct session *s);
/* Waits until every commit appended so far, by any session, is durable. */
JET_ERR txn_wait_all_durable(struct session *s);
void txn_rollback(struct session *s);
/* Meta page fields, read through the pager. */
JET_ERR meta_catalog_root(const struct bt_pager *pg, uint32_t *proot);

/* ---- checkpoint (checkpoint.c) ---- */

struct ckpt_file {
    uint64_t log_signature;
    lsn_t lsn;
    uint32_t gen_seen;        /* the log's current generation when written (0: not recorded) */
    uint32_t ndbs;
    struct {
        uint32_t dbidx;
        uint64_t db_signature;
        char path[JET_PATH_MAX];
    } dbs[JET_MAX_DBS];
};
JET_ERR ckpt_path(const struct jet_instance *inst, char *buf, size_t cb);
JET_ERR ckpt_read(const char *path, struct ckpt_file *ck);
JET_ERR ckpt_write(const char *path, const struct ckpt_file *ck);
/* Rewrites the checkpoint file at its position with the databases attached
 * now, so a recovery that finds no log still knows which files need one.
 * Context: no instance lock held (takes ckpt_mu, then inst.mu). */
JET_ERR ckpt_note_attached(struct jet_instance *inst);
/* One checkpoint cycle: flush, write the checkpoint file, circular cleanup. */
JET_ERR ckpt_run(struct jet_instance *inst);
JET_ERR ckpt_start_thread(struct jet_instance *inst);
void ckpt_stop_thread(struct jet_instance *inst);
/* Wakes the checkpointer before its period ends. */
void ckpt_kick(struct jet_instance *inst);
/* The log's on_close: has the checkpointer record the new generation.
 * Takes no lock (it may run inside an append made under inst->mu). */
void ckpt_generation_closed(void *inst, uint32_t generation, uint64_t hash, uint64_t close_us);

/* ---- backup (backup.c) ---- */
struct backup;
/* Writes one page of a database file, preserving it first for a backup's
 * snapshot.  Every engine write of a data page goes through here; the header
 * pages (dbfile.c, not part of the snapshot's page copies) and the pages a
 * new file is created with (database.c, before any backup can see it) are
 * written directly. */
JET_ERR db_write_page(struct db *db, uint32_t pgno, const uint8_t *page, uint32_t page_size);
/* Ends a backup in progress as aborted (JetTerm). */
void backup_abort(struct jet_instance *inst);
/* The instance a backup call names (0 = the legacy instance, as ESE). */
JET_ERR inst_lookup_for_backup(JET_INSTANCE h, struct jet_instance **pinst);
/* Whether an instance of that (non-empty) name exists (restore's target). */
bool inst_name_exists(const char *name);
struct db *db_alloc(void);
void db_release(struct db *db);

/* ---- restore (restore.c) ---- */
/* Set on a temporary instance by JetExternalRestore2 before JetInit:
 * recovery then starts at lsn_start, opens these files for these
 * databases, ignores every other database the log names, and stops at
 * stop_gen / stop_us when set. */
struct restore_map {
    uint64_t log_signature;
    lsn_t lsn_start;
    uint32_t gen_high;         /* every generation up to here is required */
    uint32_t stop_gen;         /* 0: to the end */
    uint64_t stop_us;          /* 0: no time limit */
    uint64_t consistent_us;    /* the copies' consistent point in time (0: unknown) */
    uint32_t n;
    struct {
        uint32_t dbidx;
        uint64_t db_signature;
        char path[JET_PATH_MAX];
    } dbs[JET_MAX_DBS];
};

/* ---- recovery (recovery.c) ---- */
/* JetInit3's status callback, for the recovery JetInit runs on this thread. */
extern _Thread_local JET_PFNSTATUS jet_init_status;
/* JetInit3's restore map, for the recovery JetInit runs on this thread:
 * a database logged (or checkpointed) at from[i] is recovered in to[i]. */
struct init_rstmap {
    uint32_t n;
    struct {
        char from[JET_PATH_MAX];
        char to[JET_PATH_MAX];
    } m[JET_MAX_DBS];
};
extern _Thread_local const struct init_rstmap *jet_init_rstmap;
JET_ERR recovery_run(struct jet_instance *inst, uint32_t *pnext_gen);

/* ---- instance helpers (instance.c) ---- */
/* Marks the instance unavailable after a fatal log failure. */
JET_ERR inst_fatal(struct jet_instance *inst, JET_ERR err);
JET_ERR inst_check(struct jet_instance *inst);
JET_ERR session_get(JET_SESID sesid, struct session **ps);
JET_ERR cursor_get(JET_SESID sesid, JET_TABLEID tableid, struct session **ps, struct cursor **pc);
JET_API_PTR handle_new(int kind, void *obj);
void handle_free(JET_API_PTR h);
JET_ERR db_close_file(struct jet_instance *inst, struct db *db, bool clean);
JET_ERR db_open_file(struct jet_instance *inst, const char *path, uint32_t dbidx, struct db **pdb);
void tables_close_session(struct session *s);
void txn_free(struct txn *t);
void db_close_session(struct session *s);
JET_ERR db_detach_all(struct jet_instance *inst, bool clean);
void handle_close_cursors(struct session *s);
void cursor_close_for_session(struct cursor *c);
enum handle_kind { HK_NONE, HK_INSTANCE, HK_SESSION, HK_CURSOR };

#endif /* JET_INSTANCE_H */

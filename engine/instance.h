/*
 * instance.h -- the instance: its parameters, state, handles and the
 * objects it holds.  Each module's own structures and functions are in its
 * header, in the manner of SQLite's pager.h and btreeInt.h: cache.h,
 * database.h (files and backup snapshots), txn.h (sessions, transactions,
 * the pager), tables.h (cursors), checkpoint.h, backup.h, restore.h,
 * recovery.h; and log.h, dwb.h, dbfile.h, page.h, btree.h below them.
 *
 * Objects and what protects them:
 *   g_state (instance.c)    global mutex: mode, instance list, handle table
 *   jet_instance.mu         instance state, attached databases, sessions
 *   jet_instance.writer     the writer token (txn.c): the one session whose
 *                           transaction may update, from its begin (or an
 *                           implicit one's) until commit/rollback.  A session owns it, not
 *                           a thread (a transaction may change threads);
 *                           writer_mu guards it and is held only to look
 *                           at or change it, never across a call
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

#include "cache.h"
#include "discard.h"
#include "jet.h"
#include "log.h"

#define JET_MAX_DBS 8
#define JET_PATH_MAX 1024

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
    int create_paths;        /* JET_paramCreatePathIfNotExist */
};

/* ---- the instance ---- */

enum inst_state { INST_CREATED, INST_RUNNING, INST_TERMINATING };

struct session;
struct cursor;
struct db;
struct backup;
struct restore_map;

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
    pthread_mutex_t writer_mu;
    pthread_cond_t writer_cv;  /* signalled when the writer token is released */
    struct session *writer;    /* under writer_mu: the token's owner, or NULL */
    pthread_t writer_thread;   /* under writer_mu: the thread of its latest update */
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

/* ---- instance helpers (instance.c) ---- */
/* Marks the instance unavailable after a fatal log failure. */
JET_ERR inst_fatal(struct jet_instance *inst, JET_ERR err);
JET_ERR inst_check(struct jet_instance *inst);
JET_ERR session_get(JET_SESID sesid, struct session **ps);
JET_ERR cursor_get(JET_SESID sesid, JET_TABLEID tableid, struct session **ps, struct cursor **pc);
JET_API_PTR handle_new(int kind, void *obj);
void handle_free(JET_API_PTR h);
/* Closes s's cursors (only those opened in its transaction, if only_txn). */
void handle_close_cursors(struct session *s, bool only_txn);
/* The transaction committed: its cursors are ordinary ones now. */
void handle_cursors_committed(struct session *s);
enum handle_kind { HK_NONE, HK_INSTANCE, HK_SESSION, HK_CURSOR };
/* The instance a backup call names (0 = the legacy instance, as ESE). */
JET_ERR inst_lookup_for_backup(JET_INSTANCE h, struct jet_instance **pinst);
/* Whether an instance of that (non-empty) name exists (restore's target). */
bool inst_name_exists(const char *name);

#endif /* JET_INSTANCE_H */

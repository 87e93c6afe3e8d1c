/*
 * txn.h -- sessions' transactions and the pager the B+trees read through
 * (txn.c).
 *
 * A writer transaction holds the instance's writer token from its begin
 * (txn_writer_acquire) to its commit or rollback, so it reads one state
 * and its updates are serialisable.  The token belongs to the session, not
 * to a thread, so a transaction may be handed from one thread to another.
 * The first change to a page copies the page into the transaction
 * (copy-on-write), and nothing uncommitted ever reaches the cache, the log
 * or a file (no-steal: no undo).  Commit appends the deltas and the commit
 * record under commit_lock exclusive (LK_COMMIT) and installs the new
 * versions in the cache (engine/README.md).
 */
#ifndef JET_TXN_H
#define JET_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "btree.h"
#include "cache.h"
#include "instance.h"

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
    bool holds_writer;        /* owns the instance's writer token */
    struct txn txn;
    lsn_t last_commit_end;    /* end of this session's last commit (JET_bitWaitLastLevel0Commit) */
    int opened[JET_MAX_DBS];
};

/* Pager for B+trees: reads see the session's transaction, then the cache. */
struct pager_ctx {
    struct session *s;   /* never NULL: its transaction's pages are seen first */
    uint32_t dbidx;
    JET_ERR sticky;      /* first error the pager itself saw */
};
void pager_make(struct bt_pager *pg, struct pager_ctx *ctx, struct session *s, uint32_t dbidx);

/* A transaction that may update (every one but JET_bitTransactionReadOnly)
 * takes the writer token at its begin. */
JET_ERR txn_begin(struct session *s, bool readonly, bool implicit);
/*
 * Takes the writer token for s (no-op if s holds it), waiting for another
 * session's transaction to end.  JET_errWriteConflict at once when the
 * token's owner is a session this very thread last used to begin or
 * update (it would wait for itself), and after WRITE_WAIT_S of waiting.
 * Called with no engine lock held.
 */
JET_ERR txn_writer_acquire(struct session *s);
JET_ERR txn_commit(struct session *s, bool lazy);
/* Waits until the session's last commit is durable (lazy commits included). */
JET_ERR txn_wait_durable(struct session *s);
/* Waits until every commit appended so far, by any session, is durable. */
JET_ERR txn_wait_all_durable(struct session *s);
/* Ends a transaction after its commit (or with nothing to commit): drops
 * its private pages and the writer token.  txn_rollback discards it instead. */
void txn_release(struct session *s);
void txn_rollback(struct session *s);
/* Meta page fields, read through the pager. */
JET_ERR meta_catalog_root(const struct bt_pager *pg, uint32_t *proot);
void txn_free(struct txn *t);

#endif /* JET_TXN_H */

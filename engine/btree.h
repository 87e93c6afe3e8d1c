/*
 * btree.h -- ordered key/value B+trees over pages.
 *
 * A table is a B+tree whose root page number never changes (a root split
 * moves the root's contents into two new children and turns the root into
 * a branch), so the catalog never has to be updated when a tree grows.
 * Keys are 1..JET_cbKeyMost bytes compared with memcmp, the shorter first on
 * a tie.  Values are 0..JET_cbValueMost bytes; a value too large to sit in a
 * leaf goes to a chain of PAGE_T_OVERFLOW pages and the leaf keeps its size
 * and first page.
 *
 * The B+tree knows nothing of caching, logging or transactions: it reaches
 * pages only through struct bt_pager, supplied by the caller (txn.c's pager,
 * over the cache and the transaction's pages, in the engine; inspect.c's
 * read-only one for offline checks; an in-memory array in unit tests).  Rules for using the pager:
 *   - get() gives read access; every get() is paired with put() once the
 *     pointer is no longer used (put lets the pager unpin the page).
 *   - get_mut() gives write access to a private, writable copy; the pointer
 *     stays valid until the end of the B+tree call and needs no put().  After
 *     get_mut(p), pointers obtained earlier from get(p) must not be used.
 *   - alloc() returns a new page (body zeroed, header pgno/type set) with
 *     write access like get_mut(); free() returns a page to the free list.
 *   - The B+tree edits the page body and the type/flags/nslots/aux fields of
 *     page.h only; it never touches checksum, pgno or lsn.
 * Any pager error is returned unchanged and leaves the tree as the pager
 * will roll it back (the caller rolls back the transaction).
 *
 * Corruption (a page of the wrong type, offsets outside the page, keys out
 * of order) is never an assert: it returns JET_errDatabaseCorrupted through
 * jet_report() naming the page.
 *
 * Locking: none here.  The caller serialises writers and guarantees that
 * pages do not change under a reader between get() and put().
 */
#ifndef JET_BTREE_H
#define JET_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jet.h"

struct bt_pager {
    void *ctx;
    uint32_t page_size;
    JET_ERR (*get)(void *ctx, uint32_t pgno, const uint8_t **ppage);
    void (*put)(void *ctx, uint32_t pgno);
    JET_ERR (*get_mut)(void *ctx, uint32_t pgno, uint8_t **ppage);
    JET_ERR (*alloc)(void *ctx, uint8_t type, uint32_t *ppgno, uint8_t **ppage);
    JET_ERR (*free)(void *ctx, uint32_t pgno);
};

enum bt_put_mode {
    BT_UPSERT = 0,  /* insert or replace */
    BT_INSERT = 1,  /* JET_errKeyDuplicate if present */
    BT_REPLACE = 2, /* JET_errRecordNotFound if absent */
};

enum bt_seek_op { BT_GE, BT_GT, BT_LE, BT_LT, BT_EQ, BT_FIRST, BT_LAST };

/* Allocates an empty tree (a leaf root). */
JET_ERR bt_create(const struct bt_pager *pg, uint32_t *proot);
/*
 * Copies min(cbmax, size) bytes of the value of key into buf (buf may be
 * NULL when cbmax is 0); *pactual gets the full size.  JET_errRecordNotFound
 * if absent.  Returns JET_wrnBufferTruncated when the value did not fit.
 */
JET_ERR bt_get(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen,
               void *buf, size_t cbmax, size_t *pactual);
JET_ERR bt_put(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen,
               const void *val, size_t vlen, enum bt_put_mode mode);
/*
 * Read-modify-write of one key in one descent: fn gets the old value
 * (exists false: none) and gives the new one (*pnew, valid until bt_update
 * returns), returning JET_errSuccess to write it, a positive value to write
 * nothing (bt_update then returns that value), or an error (returned,
 * nothing written).
 */
typedef JET_ERR (*bt_update_fn)(void *ctx, const uint8_t *old, size_t oldlen, bool exists, const uint8_t **pnew,
                                size_t *pnewlen);
JET_ERR bt_update(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen, bt_update_fn fn,
                  void *ctx);
/* JET_errRecordNotFound if absent.  Frees the value's overflow pages. */
JET_ERR bt_delete(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen);
/*
 * Finds the key that op selects relative to key (key ignored for FIRST and
 * LAST) and copies it to kout (JET_cbKeyMost bytes), its length to *pklen.
 * JET_errRecordNotFound when there is none.
 */
JET_ERR bt_seek(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen,
                enum bt_seek_op op, uint8_t *kout, size_t *pklen);
/* Frees every page of the tree, the root included. */
JET_ERR bt_drop(const struct bt_pager *pg, uint32_t root);

struct bt_stats {
    uint64_t entries;
    uint64_t leaf_pages;
    uint64_t branch_pages;
    uint64_t overflow_pages;
    uint32_t depth;
    uint64_t value_bytes;
    /* Bytes the slots and cells of the leaves (branches) take, out of
     * pages * bt_page_room(page_size): the fill, what a repack would keep. */
    uint64_t leaf_used, branch_used;
};
/*
 * Walks the whole tree checking every invariant: page types, slot offsets
 * within the page, keys strictly increasing within and across pages,
 * separator keys bounding their children, equal depth of all leaves,
 * overflow chains of the recorded length.  JET_errDatabaseCorrupted naming
 * the page and the broken invariant on failure.  stats may be NULL.
 */
JET_ERR bt_check(const struct bt_pager *pg, uint32_t root, struct bt_stats *stats);

/* Room for slots and cells in a leaf or branch page. */
size_t bt_page_room(uint32_t page_size);
/* Bytes the slots and cells of a leaf or branch page take (0 if it does
 * not decode; bt_check says why). */
size_t bt_page_used(const uint8_t *page, uint32_t page_size);

/* Longest value stored inline in a leaf for this page size. */
size_t bt_inline_max(uint32_t page_size);

#endif /* JET_BTREE_H */

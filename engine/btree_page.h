/*
 * btree_page.h -- the page format of the B+tree (internal to btree.c and
 * btree_check.c): the layout of a leaf or branch page and the decoding of
 * its cells, which both the code that edits pages and the code that
 * verifies them must read the same way.
 *
 * Page body (after the 32-byte page header of page.h), leaves and branches:
 *
 *   offset size  field
 *   32     2     cell_lo: start of the cell heap (cells grow down from the end)
 *   34     2     insert hint: the slot of the last insert and its run (see
 *                hint_after in btree.c; 0, as in pages written before
 *                it, is none)
 *   36     2*n   slots: u16 offsets of the cells, in key order (n = nslots)
 *   ...          free space
 *   cell_lo..    cells
 *
 * Leaf cell:   u16 klen, u8 flags, u32 vlen, key, then the value inline, or
 *              (flags & CELL_OVERFLOW) u32 first overflow page
 * Branch cell: u16 klen, u8 0, u32 child, key.  A branch's aux2 is its
 *              leftmost child (keys below its first key); the child in cell
 *              i holds keys >= key i and < key i+1.  A separator need not
 *              be a key of the tree: a descending run's split gives its
 *              right page the least key above its left page's last (that
 *              key with a 0 byte appended, btree.c's split_point).
 * Overflow:    PAGE_T_OVERFLOW, aux1 next page (0 at the end), aux2 bytes
 *              used, data from offset 32.
 *
 * A page's fill is the part of its room (page_size - 36) that its slots and
 * cells take: what a repack would leave in use.
 *
 * Every decoder checks what it reads against the page size before anything
 * trusts it, and reports damage as JET_errDatabaseCorrupted naming the page.
 */
#ifndef JET_BTREE_PAGE_H
#define JET_BTREE_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "diag.h"
#include "jet.h"
#include "page.h"

#define BODY 32u
#define SLOTS 36u
#define CELL_HDR 7u
#define CELL_OVERFLOW 0x1
#define MAX_DEPTH 32

static inline uint16_t cell_lo(const uint8_t *pg) { return get_le16(pg + BODY); }
static inline uint16_t slot(const uint8_t *pg, unsigned i) { return get_le16(pg + SLOTS + 2 * i); }

static inline int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

struct cell {
    const uint8_t *key;
    uint16_t klen;
    uint8_t flags;
    uint32_t v32;          /* leaf: value length; branch: child */
    const uint8_t *val;    /* leaf inline value, or 4-byte overflow pgno */
    uint16_t size;         /* bytes the cell occupies */
};

static inline JET_ERR corrupt(uint32_t pgno, const char *what, unsigned a)
{
    return jet_report(JET_errDatabaseCorrupted, "btree: page %u: %s (%u)", pgno, what, a);
}

/* Checks the page's shape before anything trusts it. */
static inline JET_ERR page_check(const uint8_t *pg, uint32_t ps, uint32_t pgno)
{
    uint8_t t = page_type(pg);
    if (t != PAGE_T_LEAF && t != PAGE_T_BRANCH) return corrupt(pgno, "not a B+tree page: type", t);
    unsigned n = page_nslots(pg);
    unsigned lo = cell_lo(pg);
    if (SLOTS + 2 * n > lo || lo > ps) return corrupt(pgno, "slot array overlaps the cells: slots", n);
    return JET_errSuccess;
}

static inline JET_ERR cell_at(const uint8_t *pg, uint32_t ps, uint32_t pgno, unsigned i, struct cell *c)
{
    unsigned off = slot(pg, i);
    if (off < cell_lo(pg) || off + CELL_HDR > ps) return corrupt(pgno, "cell offset outside the heap: slot", i);
    const uint8_t *p = pg + off;
    c->klen = get_le16(p);
    c->flags = p[2];
    c->v32 = get_le32(p + 3);
    if (c->klen == 0 || c->klen > JET_cbKeyMost) return corrupt(pgno, "bad key length in slot", i);
    c->key = p + CELL_HDR;
    c->val = c->key + c->klen;
    unsigned vbytes = 0;
    if (page_type(pg) == PAGE_T_LEAF) vbytes = (c->flags & CELL_OVERFLOW) ? 4 : c->v32;
    c->size = (uint16_t)(CELL_HDR + c->klen + vbytes);
    if (off + c->size > ps) return corrupt(pgno, "cell runs past the page end: slot", i);
    return JET_errSuccess;
}

static inline JET_ERR child_at(const uint8_t *pg, uint32_t ps, uint32_t pgno, int pos, uint32_t *child)
{
    if (pos < 0) {
        *child = page_aux2(pg);
    } else {
        struct cell c = {0};
        JET_ERR err = cell_at(pg, ps, pgno, (unsigned)pos, &c);
        if (err < 0) return err;
        *child = c.v32;
    }
    if (*child < 2) return corrupt(pgno, "child pointer to reserved page", *child);
    return JET_errSuccess;
}

/* Room for slots and cells in a page. */
static inline size_t page_capacity(uint32_t ps) { return ps - SLOTS; }

#endif /* JET_BTREE_PAGE_H */

/*
 * btree.c -- ordered key/value B+trees over pages (interface in btree.h).
 *
 * The page format and the decoding of cells are in btree_page.h; the
 * invariant checks and statistics (bt_check) in btree_check.c.
 *
 * Invariants (checked by bt_check): keys strictly increase within a page
 * and across the tree; every key of a child lies within its separators;
 * all leaves are at one depth; only the root may be an empty leaf; a value
 * is inline exactly when it is at most bt_inline_max(page_size) bytes.
 *
 * Cells are edited in place where they fit (a replace no larger than the
 * cell, a removal of its slot), leaving holes in the heap; a new cell goes
 * to the heap's edge or into a hole, and only when no run is large enough
 * is the page repacked (page_store).  A split leaves the cells that stay
 * where they were.  So a small change stays a small change to the page,
 * and so a small delta in the log.
 *
 * Splits fit the insert pattern.  Each page remembers where its last insert
 * went (the insert hint, hint_after); a split under a run of inserts side
 * by side cuts at the new entry, so a sequential load leaves every page but
 * the last full and moves only the new entry (a split at the right edge
 * changes the page it leaves in no cell), while scattered inserts split in
 * the middle by bytes (about 70% full on average).  split_point has the
 * cases, ascending and descending, at a page's edge or in a range's middle.
 *
 * Deletion frees pages that become empty and unlinks them from their
 * parent, merges a page fallen under a quarter full with a neighbour when
 * both fit in three quarters of one (merge_child), and a root branch left
 * with a single child absorbs that child, so the tree shrinks back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "btree_page.h"
#include "diag.h"
#include "page.h"

size_t bt_inline_max(uint32_t page_size) { return (page_size - SLOTS) / 4 - (2 + CELL_HDR + JET_cbKeyMost) - 4; }

/* Index of the first slot whose key >= key; *eq set when equal. */
static JET_ERR search(const uint8_t *pg, uint32_t ps, uint32_t pgno, const uint8_t *key, size_t klen, unsigned *pidx,
                      bool *eq)
{
    unsigned lo = 0, hi = page_nslots(pg);
    *eq = false;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        struct cell c = {0};
        JET_ERR err = cell_at(pg, ps, pgno, mid, &c);
        if (err < 0) return err;
        int r = key_cmp(c.key, c.klen, key, klen);
        if (r < 0) lo = mid + 1;
        else {
            if (r == 0) *eq = true;
            hi = mid;
        }
    }
    if (*eq && lo < page_nslots(pg)) {
        struct cell c = {0};
        JET_ERR err = cell_at(pg, ps, pgno, lo, &c);
        if (err < 0) return err;
        *eq = key_cmp(c.key, c.klen, key, klen) == 0;
    }
    *pidx = lo;
    return JET_errSuccess;
}

/* The child of a branch that covers key, and its position (-1 = leftmost). */
static JET_ERR branch_child(const uint8_t *pg, uint32_t ps, uint32_t pgno, const uint8_t *key, size_t klen,
                            int *pos, uint32_t *child)
{
    unsigned idx;
    bool eq;
    JET_ERR err = search(pg, ps, pgno, key, klen, &idx, &eq);
    if (err < 0) return err;
    int p = eq ? (int)idx : (int)idx - 1;
    *pos = p;
    if (p < 0) *child = page_aux2(pg);
    else {
        struct cell c = {0};
        if ((err = cell_at(pg, ps, pgno, (unsigned)p, &c)) < 0) return err;
        *child = c.v32;
    }
    if (*child < 2) return corrupt(pgno, "child pointer to reserved page", *child);
    return JET_errSuccess;
}

/* ---- cell lists: decode a page, edit, encode ---- */

struct ent {
    uint8_t *bytes;  /* the encoded cell */
    uint16_t size;
    uint16_t orig;   /* where the page being edited holds it (0: it does not) */
};

struct ents {
    struct ent *v;
    unsigned n;
    uint8_t *arena;  /* owns copies of the cells */
};

static JET_ERR ents_load(const uint8_t *pg, uint32_t ps, uint32_t pgno, struct ents *e, unsigned extra)
{
    unsigned n = page_nslots(pg);
    e->v = malloc((n + extra + 1) * sizeof *e->v);
    e->arena = malloc(ps);
    e->n = 0;
    if (!e->v || !e->arena) {
        free(e->v);
        free(e->arena);
        return JET_errOutOfMemory;
    }
    unsigned used = 0;
    for (unsigned i = 0; i < n; i++) {
        struct cell c = {0};
        JET_ERR err = cell_at(pg, ps, pgno, i, &c);
        if (err < 0) {
            free(e->v);
            free(e->arena);
            return err;
        }
        if (used + c.size > ps) {
            free(e->v);
            free(e->arena);
            return corrupt(pgno, "cells larger than the page", n);
        }
        memcpy(e->arena + used, pg + slot(pg, i), c.size);
        e->v[e->n++] = (struct ent){e->arena + used, c.size, slot(pg, i)};
        used += c.size;
    }
    return JET_errSuccess;
}

static void ents_free(struct ents *e)
{
    free(e->v);
    free(e->arena);
}

static size_t ents_bytes(const struct ent *v, unsigned n)
{
    size_t b = 0;
    for (unsigned i = 0; i < n; i++) b += v[i].size + 2u;
    return b;
}

/* Writes cells v[0..n) as the page's content (header fields kept). */
static void page_store(uint8_t *pg, uint32_t ps, const struct ent *v, unsigned n)
{
    /* Cells may point into this very page (fast paths) only via copies:
     * callers pass arena copies, so clearing the body is safe. */
    memset(pg + BODY, 0, ps - BODY);
    unsigned lo = ps;
    for (unsigned i = 0; i < n; i++) {
        lo -= v[i].size;
        memcpy(pg + lo, v[i].bytes, v[i].size);
        put_le16(pg + SLOTS + 2 * i, (uint16_t)lo);
    }
    put_le16(pg + BODY, (uint16_t)lo);
    page_set_nslots(pg, (uint16_t)n);
}

/* Where a cell lies in a page's heap. */
struct span {
    unsigned off, size;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * The start of a free run of need bytes inside the heap [lo, ps) that none
 * of the kept cells occupies (a hole left by a cell that moved, shrank or
 * went), or 0 if there is none.  Sorts kept.
 */
static unsigned heap_hole(uint32_t ps, unsigned lo, struct span *kept, unsigned nk, unsigned need)
{
    qsort(kept, nk, sizeof *kept, span_cmp);
    unsigned at = lo;
    for (unsigned i = 0; i < nk; i++) {
        if (kept[i].off >= at + need) return at;
        if (kept[i].off + kept[i].size > at) at = kept[i].off + kept[i].size;
    }
    return ps >= at + need ? at : 0;
}

/* The spans of the page's cells, but slot skip's (n: none skipped).  NULL
 * when out of memory or a cell does not decode (the caller repacks, which
 * checks the page properly). */
static struct span *page_spans(const uint8_t *pg, uint32_t ps, uint32_t pgno, unsigned skip, unsigned extra,
                               unsigned *pnk)
{
    unsigned n = page_nslots(pg), nk = 0;
    struct span *sp = malloc((n + extra + 1) * sizeof *sp);
    if (!sp) return NULL;
    for (unsigned i = 0; i < n; i++) {
        struct cell c = {0};
        if (i == skip) continue;
        if (cell_at(pg, ps, pgno, i, &c) < 0) {
            free(sp);
            return NULL;
        }
        sp[nk++] = (struct span){slot(pg, i), c.size};
    }
    *pnk = nk;
    return sp;
}

/*
 * Makes cells v[0..n) the page's content without moving the ones it holds
 * already (orig): only the slots change, cells that left become holes, and
 * new cells go to the heap's edge or into a hole.  So a split leaves its
 * left page's bytes where they were, and the log's delta of it is a few
 * slots and the one new cell, not a page.  False, changing nothing, when
 * the new cells do not fit that way; the caller repacks (page_store).
 */
static bool page_store_in_place(uint8_t *pg, uint32_t ps, const struct ent *v, unsigned n)
{
    unsigned lo = cell_lo(pg), nk = 0, nnew = 0;
    if (SLOTS + 2 * n > lo) return false;
    struct span *kept = malloc((n + 1) * sizeof *kept);
    unsigned *at = malloc((n + 1) * sizeof *at);
    bool ok = kept && at;
    for (unsigned i = 0; ok && i < n; i++) {
        at[i] = v[i].orig;
        if (!v[i].orig) nnew++;
        else if (v[i].orig < lo || v[i].orig + v[i].size > ps) ok = false;
        else kept[nk++] = (struct span){v[i].orig, v[i].size};
    }
    /* Place the new cells first, writing nothing until all have a place. */
    for (unsigned i = 0; ok && nnew && i < n; i++) {
        if (v[i].orig) continue;
        unsigned off;
        if (SLOTS + 2 * n + v[i].size <= lo) off = lo -= v[i].size;
        else if (!(off = heap_hole(ps, lo, kept, nk, v[i].size))) ok = false;
        at[i] = off;
        kept[nk++] = (struct span){off, v[i].size};
    }
    if (ok) {
        for (unsigned i = 0; i < n; i++) {
            if (!v[i].orig) memcpy(pg + at[i], v[i].bytes, v[i].size);
            put_le16(pg + SLOTS + 2 * i, (uint16_t)at[i]);
        }
        put_le16(pg + BODY, (uint16_t)lo);
        page_set_nslots(pg, (uint16_t)n);
    }
    free(kept);
    free(at);
    return ok;
}

/* ---- overflow chains ---- */

static JET_ERR ovf_write(const struct bt_pager *pg, const uint8_t *val, size_t vlen, uint32_t *pfirst)
{
    size_t cap = pg->page_size - BODY;
    uint32_t first = 0;
    uint8_t *prev = NULL;
    for (size_t off = 0; off < vlen || (vlen == 0 && !first); off += cap) {
        uint32_t pgno;
        uint8_t *p;
        JET_ERR err = pg->alloc(pg->ctx, PAGE_T_OVERFLOW, &pgno, &p);
        if (err < 0) return err;
        size_t n = vlen - off < cap ? vlen - off : cap;
        memcpy(p + BODY, val + off, n);
        page_set_aux2(p, (uint32_t)n);
        page_set_aux1(p, 0);
        if (prev) page_set_aux1(prev, pgno);
        else first = pgno;
        prev = p;
        if (vlen == 0) break;
    }
    *pfirst = first;
    return JET_errSuccess;
}

static JET_ERR ovf_free(const struct bt_pager *pg, uint32_t first, uint32_t vlen)
{
    size_t cap = pg->page_size - BODY, pages = vlen ? (vlen + cap - 1) / cap : 1;
    uint32_t p = first;
    for (size_t i = 0; i < pages && p; i++) {
        const uint8_t *d;
        JET_ERR err = pg->get(pg->ctx, p, &d);
        if (err < 0) return err;
        if (page_type(d) != PAGE_T_OVERFLOW) {
            pg->put(pg->ctx, p);
            return corrupt(p, "overflow chain reaches a page of type", page_type(d));
        }
        uint32_t next = page_aux1(d);
        pg->put(pg->ctx, p);
        if ((err = pg->free(pg->ctx, p)) < 0) return err;
        p = next;
    }
    return JET_errSuccess;
}

static JET_ERR ovf_read(const struct bt_pager *pg, uint32_t first, uint32_t vlen, uint8_t *buf, size_t cbmax)
{
    size_t done = 0, want = vlen < cbmax ? vlen : cbmax;
    uint32_t p = first;
    while (done < want) {
        if (!p) return corrupt(first, "overflow chain ends early at byte", (unsigned)done);
        const uint8_t *d;
        JET_ERR err = pg->get(pg->ctx, p, &d);
        if (err < 0) return err;
        if (page_type(d) != PAGE_T_OVERFLOW || page_aux2(d) > pg->page_size - BODY) {
            pg->put(pg->ctx, p);
            return corrupt(p, "bad overflow page, type", page_type(d));
        }
        size_t n = page_aux2(d);
        if (n > want - done) n = want - done;
        memcpy(buf + done, d + BODY, n);
        done += n;
        uint32_t next = page_aux1(d);
        pg->put(pg->ctx, p);
        p = next;
    }
    return JET_errSuccess;
}

/* Frees the value of a leaf cell if it lives in overflow pages. */
static JET_ERR cell_free_value(const struct bt_pager *pg, const uint8_t *cellbytes)
{
    if (!(cellbytes[2] & CELL_OVERFLOW)) return JET_errSuccess;
    return ovf_free(pg, get_le32(cellbytes + CELL_HDR + get_le16(cellbytes)), get_le32(cellbytes + 3));
}

/* ---- lookups ---- */

static JET_ERR check_key(const void *key, size_t klen)
{
    if (!key || klen == 0 || klen > JET_cbKeyMost) return JET_errInvalidParameter;
    return JET_errSuccess;
}

/* Descends to the leaf for key; returns it held (caller puts it). */
static JET_ERR find_leaf(const struct bt_pager *pg, uint32_t root, const uint8_t *key, size_t klen, uint32_t *pleaf,
                         const uint8_t **ppage)
{
    uint32_t p = root;
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        const uint8_t *d;
        JET_ERR err = pg->get(pg->ctx, p, &d);
        if (err < 0) return err;
        if ((err = page_check(d, pg->page_size, p)) < 0) {
            pg->put(pg->ctx, p);
            return err;
        }
        if (page_type(d) == PAGE_T_LEAF) {
            *pleaf = p;
            *ppage = d;
            return JET_errSuccess;
        }
        int pos;
        uint32_t child;
        err = branch_child(d, pg->page_size, p, key, klen, &pos, &child);
        pg->put(pg->ctx, p);
        if (err < 0) return err;
        p = child;
    }
    return corrupt(root, "tree deeper than", MAX_DEPTH);
}

JET_ERR bt_get(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen, void *buf, size_t cbmax,
               size_t *pactual)
{
    JET_ERR err = check_key(key, klen);
    if (err < 0) return err;
    uint32_t leaf = 0;
    const uint8_t *d = NULL;
    if ((err = find_leaf(pg, root, key, klen, &leaf, &d)) < 0) return err;
    unsigned idx;
    bool eq;
    struct cell c = {0};
    if ((err = search(d, pg->page_size, leaf, key, klen, &idx, &eq)) < 0) goto out;
    if (!eq) {
        err = JET_errRecordNotFound;
        goto out;
    }
    if ((err = cell_at(d, pg->page_size, leaf, idx, &c)) < 0) goto out;
    *pactual = c.v32;
    if (c.flags & CELL_OVERFLOW) {
        uint32_t first = get_le32(c.val), vlen = c.v32;
        pg->put(pg->ctx, leaf);
        err = ovf_read(pg, first, vlen, buf, cbmax);
        if (err < 0) return err;
        return vlen > cbmax ? JET_wrnBufferTruncated : JET_errSuccess;
    }
    if (buf) memcpy(buf, c.val, c.v32 < cbmax ? c.v32 : cbmax);
    err = c.v32 > cbmax ? JET_wrnBufferTruncated : JET_errSuccess;
out:
    pg->put(pg->ctx, leaf);
    return err;
}

/* ---- insertion ---- */

struct split {
    bool happened;
    uint8_t key[JET_cbKeyMost];
    uint16_t klen;
    uint32_t right;
};

/*
 * The insert hint (body offset 34) remembers where the page's last insert
 * went, so that a split can tell a sequential run from scattered inserts:
 *   bits 0..12   slot of the last insert + 1 (0: none)
 *   bit  13      the run's direction: 0 ascending, 1 descending
 *   bits 14..15  how many inserts in a row, up to the last, each went next
 *                to the one before in that direction (saturating at 3)
 * An insert goes next to the last one when it takes the slot after it (an
 * ascending run) or its slot, pushing it up (a descending run).  A split
 * follows a run of four inserts side by side: with seven cells to a page,
 * scattered inserts do that about once in a hundred splits.  The hint is
 * only a hint: deletes and replaces leave it stale, repacks clear it, and
 * nothing but the choice of a split point depends on it.
 */
#define HINT 34u
#define HINT_SLOT 0x1fffu
#define HINT_DOWN 0x2000u

enum run { RUN_NONE, RUN_UP, RUN_DOWN };

/* The hint after an insert at slot idx, and whether it continues a run
 * long enough to split for. */
static uint16_t hint_after(const uint8_t *pg, unsigned idx, enum run *dir)
{
    unsigned h = get_le16(pg + HINT), last = h & HINT_SLOT, run = h >> 14;
    *dir = !last ? RUN_NONE : idx + 1 == last + 1 ? RUN_UP : idx + 1 == last ? RUN_DOWN : RUN_NONE;
    if (*dir == RUN_NONE) run = 0;
    else if (run && (*dir == RUN_DOWN) != !!(h & HINT_DOWN)) run = 1; /* it turned */
    else run = run < 3 ? run + 1 : 3;
    uint16_t next = (uint16_t)(run << 14 | (*dir == RUN_DOWN ? HINT_DOWN : 0) | (idx + 1));
    if (run < 3) *dir = RUN_NONE;
    return next;
}

static void hint_set(uint8_t *pg, uint16_t hint, unsigned slot_now)
{
    if (hint) put_le16(pg + HINT, (uint16_t)((hint & ~HINT_SLOT) | (slot_now + 1)));
}

/*
 * Where entries v[0..n) split: the first entry of the right page (for a
 * branch, the one that moves up), given the new entry at idx and its run.
 * A run splits at the new entry so that the run goes on in a page of its
 * own and leaves full pages behind it:
 *   - ascending at the page's end: the new entry alone starts the right
 *     page (a leaf; a branch moves the entry before it up);
 *   - ascending with keys after it (a run in the middle of a range): those
 *     keys alone go right, once; the run then reaches the left page's end;
 *   - descending at the page's start: the new entry alone stays left;
 *   - descending with keys before it (leaves only): those keys alone stay
 *     left and the right page's separator is the successor of their last
 *     key (*low), so the run's next keys route right, to its start.
 * Scattered inserts, or a cut that would not fit, split in the middle by
 * bytes: the page it leaves and the new one half full each.
 */
static unsigned split_point(uint32_t ps, uint8_t t, const struct ent *v, unsigned n, unsigned idx, enum run dir,
                            bool *low)
{
    unsigned cut = 0, up = t == PAGE_T_BRANCH;
    *low = false;
    if (dir == RUN_UP) cut = idx + 1 == n ? idx - up : idx + 1 + up < n ? idx + 1 : idx - up;
    else if (dir == RUN_DOWN && idx == 0) cut = 1;
    else if (dir == RUN_DOWN && !up && get_le16(v[idx - 1].bytes) < JET_cbKeyMost) cut = idx, *low = true;
    /* Each side keeps a cell (a branch's left page one besides the cut). */
    if (cut >= 1 && cut + up < n && ents_bytes(v, cut) <= page_capacity(ps) &&
        ents_bytes(v + cut + up, n - cut - up) <= page_capacity(ps))
        return cut;
    *low = false;
    size_t total = ents_bytes(v, n), acc = 0;
    cut = 0;
    while (cut < n && acc + v[cut].size + 2u <= total / 2) acc += v[cut++].size + 2u;
    if (cut == 0) cut = 1;
    if (cut >= n) cut = n - 1;
    return cut;
}

/* Splits entries v[0..n) of page pgno (type t) into it and a new right
 * page; the new entry is v[idx] (idx n: none, as for a replace) and its
 * hint goes with it. */
static JET_ERR split_store(const struct bt_pager *pg, uint32_t pgno, uint8_t *page, uint8_t t, struct ent *v,
                           unsigned n, unsigned idx, uint16_t hint, enum run dir, struct split *sp)
{
    uint32_t ps = pg->page_size;
    bool low;
    unsigned cut = split_point(ps, t, v, n, idx, dir, &low), up = t == PAGE_T_BRANCH;
    uint32_t rpg;
    uint8_t *right;
    JET_ERR err = pg->alloc(pg->ctx, t, &rpg, &right);
    if (err < 0) return err;
    const uint8_t *mid = v[cut].bytes, *sep = low ? v[cut - 1].bytes : mid;
    sp->klen = get_le16(sep);
    memcpy(sp->key, sep + CELL_HDR, sp->klen);
    if (low) sp->key[sp->klen++] = 0; /* the least key above the left page's last */
    sp->right = rpg;
    sp->happened = true;
    /* A branch's middle key moves up; its child becomes the right page's
     * leftmost child. */
    if (up) page_set_aux2(right, get_le32(mid + 3));
    page_store(right, ps, v + cut + up, n - cut - up);
    if (!page_store_in_place(page, ps, v, cut)) page_store(page, ps, v, cut);
    if (idx < cut) hint_set(page, hint, idx);
    else if (idx >= cut + up && idx < n) hint_set(right, hint, idx - cut - up);
    if (ents_bytes(v, cut) > page_capacity(ps) || ents_bytes(v + cut + up, n - cut - up) > page_capacity(ps))
        return corrupt(pgno, "split could not balance the page", n);
    return JET_errSuccess;
}

/* Inserts cell (already encoded) at position idx, replacing it if replace. */
static JET_ERR page_insert(const struct bt_pager *pg, uint32_t pgno, uint8_t *page, unsigned idx, bool replace,
                           const uint8_t *cell, uint16_t csize, struct split *sp)
{
    uint32_t ps = pg->page_size;
    unsigned n = page_nslots(page);
    unsigned lo = cell_lo(page);
    unsigned slots_end = SLOTS + 2 * n;
    enum run dir = RUN_NONE;
    uint16_t hint = replace ? 0 : hint_after(page, idx, &dir);
    if (replace) {
        /* In place when the new cell fits where the old one was, else at
         * the heap's edge if there is room: the page changes only where
         * the cell does, which keeps the commit's log delta small.  The
         * bytes given up become a hole, reclaimed when the page is next
         * repacked. */
        struct cell old = {0};
        JET_ERR err = cell_at(page, ps, pgno, idx, &old);
        if (err < 0) return err;
        if (csize <= old.size) {
            memmove(page + slot(page, idx), cell, csize);
            return JET_errSuccess;
        }
        if (slots_end + csize <= lo) {
            lo -= csize;
            memcpy(page + lo, cell, csize);
            put_le16(page + SLOTS + 2 * idx, (uint16_t)lo);
            put_le16(page + BODY, (uint16_t)lo);
            return JET_errSuccess;
        }
        /* Into a hole, the old cell's bytes counting as free. */
        unsigned nk, off = 0;
        struct span *kept = page_spans(page, ps, pgno, idx, 0, &nk);
        if (kept) off = heap_hole(ps, lo, kept, nk, csize);
        free(kept);
        if (off) {
            memcpy(page + off, cell, csize);
            put_le16(page + SLOTS + 2 * idx, (uint16_t)off);
            return JET_errSuccess;
        }
    } else if (slots_end + 2 <= lo) {
        /* Fast path: room between the slots and the heap, or a hole. */
        unsigned off = 0;
        if (slots_end + 2 + csize <= lo) {
            off = lo -= csize;
        } else {
            unsigned nk;
            struct span *kept = page_spans(page, ps, pgno, n, 0, &nk);
            if (kept) off = heap_hole(ps, lo, kept, nk, csize);
            free(kept);
        }
        if (off) {
            memcpy(page + off, cell, csize);
            memmove(page + SLOTS + 2 * (idx + 1), page + SLOTS + 2 * idx, 2 * (n - idx));
            put_le16(page + SLOTS + 2 * idx, (uint16_t)off);
            put_le16(page + BODY, (uint16_t)lo);
            page_set_nslots(page, (uint16_t)(n + 1));
            hint_set(page, hint, idx);
            return JET_errSuccess;
        }
    }
    struct ents e;
    JET_ERR err = ents_load(page, ps, pgno, &e, 1);
    if (err < 0) return err;
    uint8_t *copy = malloc(csize);
    if (!copy) {
        ents_free(&e);
        return JET_errOutOfMemory;
    }
    memcpy(copy, cell, csize);
    if (replace) {
        e.v[idx] = (struct ent){copy, csize, 0};
    } else {
        memmove(e.v + idx + 1, e.v + idx, (e.n - idx) * sizeof *e.v);
        e.v[idx] = (struct ent){copy, csize, 0};
        e.n++;
    }
    if (ents_bytes(e.v, e.n) <= page_capacity(ps)) {
        page_store(page, ps, e.v, e.n);
        hint_set(page, hint, idx);
    } else {
        err = split_store(pg, pgno, page, page_type(page), e.v, e.n, replace ? e.n : idx, hint, dir, sp);
    }
    free(copy);
    ents_free(&e);
    return err;
}

static JET_ERR encode_leaf_cell(const struct bt_pager *pg, const uint8_t *key, size_t klen, const uint8_t *val,
                                size_t vlen, uint8_t *out, uint16_t *psize)
{
    out[2] = 0;
    put_le16(out, (uint16_t)klen);
    put_le32(out + 3, (uint32_t)vlen);
    memcpy(out + CELL_HDR, key, klen);
    if (vlen <= bt_inline_max(pg->page_size)) {
        if (vlen) memcpy(out + CELL_HDR + klen, val, vlen);
        *psize = (uint16_t)(CELL_HDR + klen + vlen);
        return JET_errSuccess;
    }
    uint32_t first;
    JET_ERR err = ovf_write(pg, val, vlen, &first);
    if (err < 0) return err;
    out[2] = CELL_OVERFLOW;
    put_le32(out + CELL_HDR + klen, first);
    *psize = (uint16_t)(CELL_HDR + klen + 4);
    return JET_errSuccess;
}

struct put_args {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
    enum bt_put_mode mode;
    bt_update_fn fn;      /* bt_update: computes the value from the old one */
    void *ctx;
    JET_ERR *fn_result;   /* fn's answer when it is positive: nothing written */
};

/* bt_update at the leaf: the old value (read while the page is pinned)
 * goes to fn, which gives the new one or says not to write. */
static JET_ERR update_value(const struct bt_pager *pg, const uint8_t *d, uint32_t pgno, unsigned idx, bool eq,
                            struct put_args *a)
{
    struct cell c = {0};
    uint8_t *heap = NULL;
    const uint8_t *old = NULL;
    size_t oldlen = 0;
    JET_ERR err;
    if (eq) {
        if ((err = cell_at(d, pg->page_size, pgno, idx, &c)) < 0) return err;
        oldlen = c.v32;
        old = c.val;
        if (c.flags & CELL_OVERFLOW) {
            if (!(heap = malloc(oldlen ? oldlen : 1))) return JET_errOutOfMemory;
            if ((err = ovf_read(pg, get_le32(c.val), c.v32, heap, oldlen)) < 0) {
                free(heap);
                return err;
            }
            old = heap;
        }
    }
    const uint8_t *nv = NULL;
    size_t nlen = 0;
    err = a->fn(a->ctx, old, oldlen, eq, &nv, &nlen);
    free(heap);
    if (err != JET_errSuccess) return err;
    if (nlen > JET_cbValueMost) return JET_errRecordTooBig;
    a->val = nlen ? nv : (const uint8_t *)"";
    a->vlen = nlen;
    return JET_errSuccess;
}

static JET_ERR put_rec(const struct bt_pager *pg, uint32_t pgno, struct put_args *a, int depth, struct split *sp)
{
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    if (depth >= MAX_DEPTH) return corrupt(pgno, "tree deeper than", MAX_DEPTH);
    JET_ERR err = pg->get(pg->ctx, pgno, &d);
    if (err < 0) return err;
    if ((err = page_check(d, ps, pgno)) < 0) {
        pg->put(pg->ctx, pgno);
        return err;
    }
    if (page_type(d) == PAGE_T_LEAF) {
        unsigned idx;
        bool eq;
        err = search(d, ps, pgno, a->key, a->klen, &idx, &eq);
        if (err >= 0 && a->fn) err = update_value(pg, d, pgno, idx, eq, a);
        pg->put(pg->ctx, pgno);
        if (err > 0) {
            *a->fn_result = err; /* fn said: leave it */
            return JET_errSuccess;
        }
        if (err < 0) return err;
        if (eq && a->mode == BT_INSERT) return JET_errKeyDuplicate;
        if (!eq && a->mode == BT_REPLACE) return JET_errRecordNotFound;
        uint8_t *page;
        if ((err = pg->get_mut(pg->ctx, pgno, &page)) < 0) return err;
        if (eq) {
            struct cell old = {0};
            if ((err = cell_at(page, ps, pgno, idx, &old)) < 0) return err;
            if ((err = cell_free_value(pg, page + slot(page, idx))) < 0) return err;
        }
        uint8_t cell[CELL_HDR + JET_cbKeyMost + PAGE_SIZE_MAX / 4];
        uint16_t csize;
        if ((err = encode_leaf_cell(pg, a->key, a->klen, a->val, a->vlen, cell, &csize)) < 0) return err;
        return page_insert(pg, pgno, page, idx, eq, cell, csize, sp);
    }
    int pos;
    uint32_t child;
    err = branch_child(d, ps, pgno, a->key, a->klen, &pos, &child);
    pg->put(pg->ctx, pgno);
    if (err < 0) return err;
    struct split csp = {0};
    if ((err = put_rec(pg, child, a, depth + 1, &csp)) < 0) return err;
    if (!csp.happened) return JET_errSuccess;
    uint8_t *page;
    if ((err = pg->get_mut(pg->ctx, pgno, &page)) < 0) return err;
    uint8_t cell[CELL_HDR + JET_cbKeyMost];
    put_le16(cell, csp.klen);
    cell[2] = 0;
    put_le32(cell + 3, csp.right);
    memcpy(cell + CELL_HDR, csp.key, csp.klen);
    return page_insert(pg, pgno, page, (unsigned)(pos + 1), false, cell, (uint16_t)(CELL_HDR + csp.klen), sp);
}

static JET_ERR put_root(const struct bt_pager *pg, uint32_t root, struct put_args *a);

JET_ERR bt_put(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen, const void *val, size_t vlen,
               enum bt_put_mode mode)
{
    JET_ERR err = check_key(key, klen);
    if (err < 0) return err;
    if (vlen > JET_cbValueMost) return JET_errRecordTooBig;
    if (vlen && !val) return JET_errInvalidParameter;
    JET_ERR fn_result = JET_errSuccess;
    struct put_args a = {key, klen, val, vlen, mode, NULL, NULL, &fn_result};
    return put_root(pg, root, &a);
}

JET_ERR bt_update(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen, bt_update_fn fn, void *ctx)
{
    JET_ERR err = check_key(key, klen);
    if (err < 0) return err;
    JET_ERR fn_result = JET_errSuccess;
    struct put_args a = {key, klen, NULL, 0, BT_UPSERT, fn, ctx, &fn_result};
    if ((err = put_root(pg, root, &a)) < 0) return err;
    return fn_result;
}

/* bt_put and bt_update: the descent, and a split of the root. */
static JET_ERR put_root(const struct bt_pager *pg, uint32_t root, struct put_args *a)
{
    JET_ERR err;
    struct split sp = {0};
    if ((err = put_rec(pg, root, a, 0, &sp)) < 0) return err;
    if (!sp.happened) return JET_errSuccess;
    /* The root split: its (left) contents move to a new page so the root
     * keeps its number and becomes a branch over the two halves. */
    uint8_t *rootp, *left;
    uint32_t lpg;
    if ((err = pg->get_mut(pg->ctx, root, &rootp)) < 0) return err;
    if ((err = pg->alloc(pg->ctx, page_type(rootp), &lpg, &left)) < 0) return err;
    if ((err = pg->get_mut(pg->ctx, root, &rootp)) < 0) return err;
    memcpy(left + 12, rootp + 12, pg->page_size - 12);
    memset(rootp + BODY, 0, pg->page_size - BODY);
    page_set_type(rootp, PAGE_T_BRANCH);
    page_set_flags(rootp, 0);
    page_set_aux1(rootp, 0);
    page_set_aux2(rootp, lpg);
    uint8_t cell[CELL_HDR + JET_cbKeyMost];
    put_le16(cell, sp.klen);
    cell[2] = 0;
    put_le32(cell + 3, sp.right);
    memcpy(cell + CELL_HDR, sp.key, sp.klen);
    struct ent one = {cell, (uint16_t)(CELL_HDR + sp.klen), 0};
    page_store(rootp, pg->page_size, &one, 1);
    return JET_errSuccess;
}

JET_ERR bt_create(const struct bt_pager *pg, uint32_t *proot)
{
    uint8_t *p;
    uint32_t pgno;
    JET_ERR err = pg->alloc(pg->ctx, PAGE_T_LEAF, &pgno, &p);
    if (err < 0) return err;
    put_le16(p + BODY, (uint16_t)pg->page_size);
    page_set_nslots(p, 0);
    *proot = pgno;
    return JET_errSuccess;
}

/* ---- deletion ---- */

/* Removes slot idx from a page (writable). */
static JET_ERR page_remove(const struct bt_pager *pg, uint32_t pgno, uint8_t *page, unsigned idx)
{
    /* Only the slot goes; the cell becomes a hole in the heap (see
     * page_insert), so the page changes in a few bytes, not all of them. */
    unsigned n = page_nslots(page);
    if (idx >= n) return corrupt(pgno, "removal of a slot past the end", idx);
    (void)pg;
    memmove(page + SLOTS + 2 * idx, page + SLOTS + 2 * (idx + 1), 2 * (n - idx - 1));
    put_le16(page + SLOTS + 2 * (n - 1), 0);
    page_set_nslots(page, (uint16_t)(n - 1));
    return JET_errSuccess;
}

/*
 * Merging after a delete.  A child fallen under a quarter full and a
 * neighbour under the same parent (the right one, else the left) become one
 * page when their cells fit in three quarters of one: the room deletes
 * free comes back, and the page made is not one the next insert splits.
 * The left page of the pair keeps its cells where they are and takes the
 * right one's after them (in a branch, the separator comes down between
 * them, over the right page's leftmost child); the right page and its
 * separator go.
 */
static JET_ERR merge_child(const struct bt_pager *pg, uint32_t pgno, int pos, uint32_t child)
{
    uint32_t ps = pg->page_size, lp = 0, rp = 0, raux = 0;
    const uint8_t *d;
    JET_ERR err = pg->get(pg->ctx, child, &d);
    if (err < 0) return err;
    size_t used = bt_page_used(d, ps);
    pg->put(pg->ctx, child);
    if (used >= page_capacity(ps) / 4) return JET_errSuccess;
    if ((err = pg->get(pg->ctx, pgno, &d)) < 0) return err;
    unsigned n = page_nslots(d);
    int lpos = pos + 1 < (int)n ? pos : pos - 1;
    struct cell sep = {0};
    uint8_t mid[CELL_HDR + JET_cbKeyMost];
    if (n > 0 && (err = child_at(d, ps, pgno, lpos, &lp)) >= 0 && (err = child_at(d, ps, pgno, lpos + 1, &rp)) >= 0 &&
        (err = cell_at(d, ps, pgno, (unsigned)(lpos + 1), &sep)) >= 0) {
        put_le16(mid, sep.klen);
        mid[2] = 0;
        memcpy(mid + CELL_HDR, sep.key, sep.klen);
    }
    pg->put(pg->ctx, pgno);
    if (err < 0 || n == 0) return err;
    struct ents l = {0}, r = {0};
    uint8_t t = 0;
    if ((err = pg->get(pg->ctx, lp, &d)) < 0) return err;
    if ((err = page_check(d, ps, lp)) >= 0) {
        t = page_type(d);
        err = ents_load(d, ps, lp, &l, 0);
    }
    pg->put(pg->ctx, lp);
    if (err < 0) return err;
    if ((err = pg->get(pg->ctx, rp, &d)) >= 0) {
        if ((err = page_check(d, ps, rp)) >= 0 && page_type(d) != t)
            err = corrupt(rp, "a sibling of another page type, type", page_type(d));
        raux = page_aux2(d);
        if (err >= 0) err = ents_load(d, ps, rp, &r, 0);
        pg->put(pg->ctx, rp);
    }
    struct ent *v = err < 0 ? NULL : malloc((l.n + r.n + 1) * sizeof *v);
    if (err >= 0 && !v) err = JET_errOutOfMemory;
    if (err >= 0) {
        unsigned k = l.n;
        memcpy(v, l.v, l.n * sizeof *v);
        put_le32(mid + 3, raux);
        if (t == PAGE_T_BRANCH) v[k++] = (struct ent){mid, (uint16_t)(CELL_HDR + sep.klen), 0};
        for (unsigned i = 0; i < r.n; i++) v[k++] = (struct ent){r.v[i].bytes, r.v[i].size, 0};
        uint8_t *page;
        if (ents_bytes(v, k) <= page_capacity(ps) * 3 / 4 && (err = pg->get_mut(pg->ctx, lp, &page)) >= 0) {
            if (!page_store_in_place(page, ps, v, k)) page_store(page, ps, v, k);
            put_le16(page + HINT, 0);
            if ((err = pg->free(pg->ctx, rp)) >= 0 && (err = pg->get_mut(pg->ctx, pgno, &page)) >= 0)
                err = page_remove(pg, pgno, page, (unsigned)(lpos + 1));
        }
    }
    free(v);
    ents_free(&l);
    ents_free(&r);
    return err;
}

/* A root branch left with a single child absorbs it: the tree loses a level. */
static JET_ERR root_absorb(const struct bt_pager *pg, uint32_t root)
{
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    JET_ERR err = pg->get(pg->ctx, root, &d);
    if (err < 0) return err;
    bool single = page_type(d) == PAGE_T_BRANCH && page_nslots(d) == 0;
    uint32_t only = page_aux2(d);
    pg->put(pg->ctx, root);
    if (!single) return JET_errSuccess;
    if ((err = pg->get(pg->ctx, only, &d)) < 0) return err;
    uint8_t *tmp = malloc(ps), *page;
    if (!tmp) {
        pg->put(pg->ctx, only);
        return JET_errOutOfMemory;
    }
    memcpy(tmp, d, ps);
    pg->put(pg->ctx, only);
    if ((err = pg->get_mut(pg->ctx, root, &page)) == 0) {
        memcpy(page + 12, tmp + 12, ps - 12);
        err = pg->free(pg->ctx, only);
    }
    free(tmp);
    return err;
}

/* *pempty set when the page at pgno has become empty and was freed. */
static JET_ERR del_rec(const struct bt_pager *pg, uint32_t pgno, bool is_root, const uint8_t *key, size_t klen,
                       int depth, bool *pempty)
{
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    *pempty = false;
    if (depth >= MAX_DEPTH) return corrupt(pgno, "tree deeper than", MAX_DEPTH);
    JET_ERR err = pg->get(pg->ctx, pgno, &d);
    if (err < 0) return err;
    if ((err = page_check(d, ps, pgno)) < 0) {
        pg->put(pg->ctx, pgno);
        return err;
    }
    uint8_t *page;
    if (page_type(d) == PAGE_T_LEAF) {
        unsigned idx;
        bool eq;
        err = search(d, ps, pgno, key, klen, &idx, &eq);
        pg->put(pg->ctx, pgno);
        if (err < 0) return err;
        if (!eq) return JET_errRecordNotFound;
        if ((err = pg->get_mut(pg->ctx, pgno, &page)) < 0) return err;
        if ((err = cell_free_value(pg, page + slot(page, idx))) < 0) return err;
        if ((err = page_remove(pg, pgno, page, idx)) < 0) return err;
        if (page_nslots(page) == 0 && !is_root) {
            if ((err = pg->free(pg->ctx, pgno)) < 0) return err;
            *pempty = true;
        }
        return JET_errSuccess;
    }
    int pos;
    uint32_t child;
    err = branch_child(d, ps, pgno, key, klen, &pos, &child);
    pg->put(pg->ctx, pgno);
    if (err < 0) return err;
    bool child_empty;
    if ((err = del_rec(pg, child, false, key, klen, depth + 1, &child_empty)) < 0) return err;
    if (!child_empty) {
        if ((err = merge_child(pg, pgno, pos, child)) < 0) return err;
        return is_root ? root_absorb(pg, pgno) : JET_errSuccess;
    }
    if ((err = pg->get_mut(pg->ctx, pgno, &page)) < 0) return err;
    unsigned n = page_nslots(page);
    if (pos >= 0) {
        if ((err = page_remove(pg, pgno, page, (unsigned)pos)) < 0) return err;
    } else if (n > 0) {
        /* The leftmost child went: the first cell's child takes its place. */
        struct cell c = {0};
        if ((err = cell_at(page, ps, pgno, 0, &c)) < 0) return err;
        page_set_aux2(page, c.v32);
        if ((err = page_remove(pg, pgno, page, 0)) < 0) return err;
    } else {
        /* Last child of this branch: the branch itself is now empty. */
        if (is_root) {
            memset(page + BODY, 0, ps - BODY);
            page_set_type(page, PAGE_T_LEAF);
            page_set_aux2(page, 0);
            page_set_nslots(page, 0);
            put_le16(page + BODY, (uint16_t)ps);
            return JET_errSuccess;
        }
        if ((err = pg->free(pg->ctx, pgno)) < 0) return err;
        *pempty = true;
        return JET_errSuccess;
    }
    return is_root ? root_absorb(pg, pgno) : JET_errSuccess;
}

JET_ERR bt_delete(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen)
{
    JET_ERR err = check_key(key, klen);
    if (err < 0) return err;
    bool empty;
    return del_rec(pg, root, true, key, klen, 0, &empty);
}

/* ---- seeking ---- */

/*
 * Finds the smallest key > (or >=) key in the subtree (forward), or the
 * largest key < (or <=) key (backward).  key NULL means unbounded.
 * Returns JET_errRecordNotFound when the subtree has none.
 */
static JET_ERR seek_rec(const struct bt_pager *pg, uint32_t pgno, const uint8_t *key, size_t klen, bool forward,
                        bool inclusive, int depth, uint8_t *kout, size_t *pklen)
{
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    if (depth >= MAX_DEPTH) return corrupt(pgno, "tree deeper than", MAX_DEPTH);
    JET_ERR err = pg->get(pg->ctx, pgno, &d);
    if (err < 0) return err;
    if ((err = page_check(d, ps, pgno)) < 0) goto out;
    unsigned n = page_nslots(d);
    if (page_type(d) == PAGE_T_LEAF) {
        int i;
        if (!key) i = forward ? 0 : (int)n - 1;
        else {
            unsigned idx;
            bool eq;
            if ((err = search(d, ps, pgno, key, klen, &idx, &eq)) < 0) goto out;
            if (forward) i = (eq && !inclusive) ? (int)idx + 1 : (int)idx;
            else i = (eq && inclusive) ? (int)idx : (int)idx - 1;
        }
        if (i < 0 || i >= (int)n) {
            err = JET_errRecordNotFound;
            goto out;
        }
        struct cell c = {0};
        if ((err = cell_at(d, ps, pgno, (unsigned)i, &c)) < 0) goto out;
        memcpy(kout, c.key, c.klen);
        *pklen = c.klen;
        goto out;
    }
    int pos;
    if (!key) pos = forward ? -1 : (int)n - 1;
    else {
        uint32_t ch;
        if ((err = branch_child(d, ps, pgno, key, klen, &pos, &ch)) < 0) goto out;
    }
    for (;;) {
        uint32_t child;
        if ((err = child_at(d, ps, pgno, pos, &child)) < 0) goto out;
        err = seek_rec(pg, child, key, klen, forward, inclusive, depth + 1, kout, pklen);
        if (err != JET_errRecordNotFound) goto out;
        /* Nothing on that side of the child: the neighbour's extreme key
         * is the answer (children are never empty). */
        pos += forward ? 1 : -1;
        if (pos < -1 || pos >= (int)n) {
            err = JET_errRecordNotFound;
            goto out;
        }
        key = NULL;
    }
out:
    pg->put(pg->ctx, pgno);
    return err;
}

JET_ERR bt_seek(const struct bt_pager *pg, uint32_t root, const void *key, size_t klen, enum bt_seek_op op,
                uint8_t *kout, size_t *pklen)
{
    JET_ERR err;
    if (op != BT_FIRST && op != BT_LAST && (err = check_key(key, klen)) < 0) return err;
    switch (op) {
    case BT_FIRST: return seek_rec(pg, root, NULL, 0, true, true, 0, kout, pklen);
    case BT_LAST: return seek_rec(pg, root, NULL, 0, false, true, 0, kout, pklen);
    case BT_GE: return seek_rec(pg, root, key, klen, true, true, 0, kout, pklen);
    case BT_GT: return seek_rec(pg, root, key, klen, true, false, 0, kout, pklen);
    case BT_LE: return seek_rec(pg, root, key, klen, false, true, 0, kout, pklen);
    case BT_LT: return seek_rec(pg, root, key, klen, false, false, 0, kout, pklen);
    case BT_EQ:
        err = seek_rec(pg, root, key, klen, true, true, 0, kout, pklen);
        if (err >= 0 && key_cmp(kout, *pklen, key, klen) != 0) err = JET_errRecordNotFound;
        return err;
    }
    return JET_errInvalidParameter;
}

/* ---- drop ---- */

static JET_ERR drop_rec(const struct bt_pager *pg, uint32_t pgno, int depth)
{
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    if (depth >= MAX_DEPTH) return corrupt(pgno, "tree deeper than", MAX_DEPTH);
    JET_ERR err = pg->get(pg->ctx, pgno, &d);
    if (err < 0) return err;
    if ((err = page_check(d, ps, pgno)) < 0) {
        pg->put(pg->ctx, pgno);
        return err;
    }
    unsigned n = page_nslots(d);
    bool leaf = page_type(d) == PAGE_T_LEAF;
    /* Collect what to free first: freeing rewrites pages. */
    uint32_t *kids = malloc((n + 1) * 2 * sizeof *kids);
    uint32_t *lens = kids ? kids + n + 1 : NULL;
    unsigned nk = 0;
    if (!kids) err = JET_errOutOfMemory;
    if (err >= 0 && !leaf) kids[nk++] = page_aux2(d);
    for (unsigned i = 0; err >= 0 && i < n; i++) {
        struct cell c = {0};
        if ((err = cell_at(d, ps, pgno, i, &c)) < 0) break;
        if (!leaf) kids[nk++] = c.v32;
        else if (c.flags & CELL_OVERFLOW) {
            lens[nk] = c.v32;
            kids[nk++] = get_le32(c.val);
        }
    }
    pg->put(pg->ctx, pgno);
    for (unsigned i = 0; err >= 0 && i < nk; i++)
        err = leaf ? ovf_free(pg, kids[i], lens[i]) : drop_rec(pg, kids[i], depth + 1);
    free(kids);
    if (err < 0) return err;
    return pg->free(pg->ctx, pgno);
}

JET_ERR bt_drop(const struct bt_pager *pg, uint32_t root) { return drop_rec(pg, root, 0); }

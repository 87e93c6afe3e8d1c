/*
 * btree_check.c -- bt_check: the walk that verifies every invariant of a
 * B+tree (listed in btree.c's header comment) and counts what it holds,
 * entries, pages by kind and how full they are.  It reads pages through
 * the pager only (get/put), never writes, and copies each page before
 * looking at it, so a pager that reuses buffers cannot change a page under
 * the walk.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "btree_page.h"

size_t bt_page_room(uint32_t page_size) { return page_capacity(page_size); }

size_t bt_page_used(const uint8_t *page, uint32_t page_size)
{
    uint32_t pgno = page_pgno(page);
    if (page_check(page, page_size, pgno) < 0) return 0;
    size_t used = 0;
    for (unsigned i = 0; i < page_nslots(page); i++) {
        struct cell c = {0};
        if (cell_at(page, page_size, pgno, i, &c) < 0) return 0;
        used += c.size + 2u;
    }
    return used;
}

struct check_ctx {
    const struct bt_pager *pg;
    struct bt_stats st;
    int leaf_depth;
    uint8_t *ovbuf;
};

static JET_ERR check_rec(struct check_ctx *cc, uint32_t pgno, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                         size_t hilen, int depth, bool is_root)
{
    const struct bt_pager *pg = cc->pg;
    uint32_t ps = pg->page_size;
    const uint8_t *d;
    if (depth >= MAX_DEPTH) return corrupt(pgno, "tree deeper than", MAX_DEPTH);
    JET_ERR err = pg->get(pg->ctx, pgno, &d);
    if (err < 0) return err;
    uint8_t *copy = malloc(ps);
    if (!copy) {
        pg->put(pg->ctx, pgno);
        return JET_errOutOfMemory;
    }
    memcpy(copy, d, ps);
    pg->put(pg->ctx, pgno);
    d = copy;
    if ((err = page_check(d, ps, pgno)) < 0) goto out;
    unsigned n = page_nslots(d);
    bool leaf = page_type(d) == PAGE_T_LEAF;
    if (n == 0 && !is_root && leaf) {
        err = corrupt(pgno, "empty non-root leaf, slots", n);
        goto out;
    }
    size_t used = 0;
    struct cell prev = {0};
    for (unsigned i = 0; i < n; i++) {
        struct cell c = {0};
        if ((err = cell_at(d, ps, pgno, i, &c)) < 0) goto out;
        used += c.size + 2u;
        if (i > 0 && key_cmp(prev.key, prev.klen, c.key, c.klen) >= 0) {
            err = corrupt(pgno, "keys out of order at slot", i);
            goto out;
        }
        if (lo && key_cmp(c.key, c.klen, lo, lolen) < 0) {
            err = corrupt(pgno, "key below its separator at slot", i);
            goto out;
        }
        if (hi && key_cmp(c.key, c.klen, hi, hilen) >= 0) {
            err = corrupt(pgno, "key not below the next separator at slot", i);
            goto out;
        }
        if (leaf) {
            cc->st.entries++;
            cc->st.value_bytes += c.v32;
            bool ov = c.flags & CELL_OVERFLOW;
            if (ov != (c.v32 > bt_inline_max(ps))) {
                err = corrupt(pgno, "value stored inline/overflow against the rule at slot", i);
                goto out;
            }
            if (ov) {
                size_t cap = ps - BODY, pages = (c.v32 + cap - 1) / cap, sum = 0;
                uint32_t p = get_le32(c.val);
                for (size_t k = 0; k < pages; k++) {
                    const uint8_t *od;
                    if (!p) {
                        err = corrupt(pgno, "overflow chain too short at slot", i);
                        goto out;
                    }
                    if ((err = pg->get(pg->ctx, p, &od)) < 0) goto out;
                    uint8_t t = page_type(od);
                    uint32_t used_b = page_aux2(od), next = page_aux1(od);
                    pg->put(pg->ctx, p);
                    if (t != PAGE_T_OVERFLOW || used_b > cap) {
                        err = corrupt(p, "bad overflow page in chain, type", t);
                        goto out;
                    }
                    sum += used_b;
                    cc->st.overflow_pages++;
                    p = next;
                }
                if (sum != c.v32 || p != 0) {
                    err = corrupt(pgno, "overflow chain length differs from the value size at slot", i);
                    goto out;
                }
            }
        }
        prev = c;
    }
    if (used > page_capacity(ps)) {
        err = corrupt(pgno, "cells overflow the page, bytes", (unsigned)used);
        goto out;
    }
    if (leaf) {
        cc->st.leaf_pages++;
        cc->st.leaf_used += used;
        if (cc->leaf_depth < 0) cc->leaf_depth = depth;
        else if (cc->leaf_depth != depth) {
            err = corrupt(pgno, "leaf at a different depth", (unsigned)depth);
            goto out;
        }
        goto out;
    }
    cc->st.branch_pages++;
    cc->st.branch_used += used;
    for (int i = -1; i < (int)n; i++) {
        uint32_t child;
        struct cell c = {0}, nx = {0};
        if ((err = child_at(d, ps, pgno, i, &child)) < 0) goto out;
        const uint8_t *clo = lo, *chi = hi;
        size_t clolen = lolen, chilen = hilen;
        if (i >= 0) {
            if ((err = cell_at(d, ps, pgno, (unsigned)i, &c)) < 0) goto out;
            clo = c.key;
            clolen = c.klen;
        }
        if (i + 1 < (int)n) {
            if ((err = cell_at(d, ps, pgno, (unsigned)(i + 1), &nx)) < 0) goto out;
            chi = nx.key;
            chilen = nx.klen;
        }
        if ((err = check_rec(cc, child, clo, clolen, chi, chilen, depth + 1, false)) < 0) goto out;
    }
out:
    free(copy);
    return err;
}

JET_ERR bt_check(const struct bt_pager *pg, uint32_t root, struct bt_stats *stats)
{
    struct check_ctx cc = {.pg = pg, .leaf_depth = -1};
    JET_ERR err = check_rec(&cc, root, NULL, 0, NULL, 0, 0, true);
    cc.st.depth = (uint32_t)(cc.leaf_depth + 1);
    if (stats) *stats = cc.st;
    return err;
}

/*
 * test_btree.c -- engine/btree.c against an in-memory pager and a model.
 *
 * The pager keeps pages in an array, checks that every get() is put()
 * back and that freed pages are never touched again, and counts pages in
 * use so leaks show.  The randomized test runs thousands of inserts,
 * replaces, deletes and seeks against a sorted model, checking bt_check
 * along the way, for several seeds and page sizes (SEED=... reproduces).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "page.h"
#include "testutil.h"

struct mpager {
    uint32_t ps;
    uint8_t **pages;
    uint8_t *freed;
    uint32_t npages, cap;
    uint32_t *freelist;
    uint32_t nfree;
    long outstanding;  /* get() not yet put() */
    long bad;          /* touches of freed pages */
};

static JET_ERR m_get(void *ctx, uint32_t pgno, const uint8_t **pp)
{
    struct mpager *m = ctx;
    if (pgno >= m->npages || !m->pages[pgno]) return JET_errReadVerifyFailure;
    if (m->freed[pgno]) m->bad++;
    m->outstanding++;
    *pp = m->pages[pgno];
    return JET_errSuccess;
}
static void m_put(void *ctx, uint32_t pgno)
{
    struct mpager *m = ctx;
    (void)pgno;
    m->outstanding--;
}
static JET_ERR m_get_mut(void *ctx, uint32_t pgno, uint8_t **pp)
{
    struct mpager *m = ctx;
    if (pgno >= m->npages || !m->pages[pgno]) return JET_errReadVerifyFailure;
    if (m->freed[pgno]) m->bad++;
    *pp = m->pages[pgno];
    return JET_errSuccess;
}
static JET_ERR m_alloc(void *ctx, uint8_t type, uint32_t *ppgno, uint8_t **pp)
{
    struct mpager *m = ctx;
    uint32_t p;
    if (m->nfree) p = m->freelist[--m->nfree];
    else {
        if (m->npages == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->pages = realloc(m->pages, m->cap * sizeof *m->pages);
            m->freed = realloc(m->freed, m->cap);
            m->freelist = realloc(m->freelist, m->cap * sizeof *m->freelist);
        }
        p = m->npages++;
        m->pages[p] = malloc(m->ps);
    }
    m->freed[p] = 0;
    page_init(m->pages[p], m->ps, p, type);
    *ppgno = p;
    *pp = m->pages[p];
    return JET_errSuccess;
}
static JET_ERR m_free(void *ctx, uint32_t pgno)
{
    struct mpager *m = ctx;
    if (m->freed[pgno]) m->bad++;
    m->freed[pgno] = 1;
    memset(m->pages[pgno], 0xEE, m->ps); /* poison: later reads would be caught */
    m->freelist[m->nfree++] = pgno;
    return JET_errSuccess;
}

static void m_init(struct mpager *m, struct bt_pager *pg, uint32_t ps)
{
    memset(m, 0, sizeof *m);
    m->ps = ps;
    /* Pages 0 and 1 are reserved in a database file; mirror that. */
    uint8_t *dummy;
    uint32_t p;
    m_alloc(m, PAGE_T_META, &p, &dummy);
    m_alloc(m, PAGE_T_META, &p, &dummy);
    *pg = (struct bt_pager){m, ps, m_get, m_put, m_get_mut, m_alloc, m_free};
}

static void m_destroy(struct mpager *m)
{
    for (uint32_t i = 0; i < m->npages; i++) free(m->pages[i]);
    free(m->pages);
    free(m->freed);
    free(m->freelist);
}

static uint32_t m_in_use(const struct mpager *m) { return m->npages - m->nfree; }

/* Bytes a leaf cell and its slot take (btree_page.h): header, key, value. */
#define CELL_MAX(klen, vlen) (7u + (klen) + (vlen) + 2u)

static void test_basics(void)
{
    struct mpager m;
    struct bt_pager pg;
    m_init(&m, &pg, 4096);
    uint32_t root;
    TU_CHECK_ERR(bt_create(&pg, &root), JET_errSuccess);
    uint8_t k[JET_cbKeyMost];
    size_t kl = 0, n = 0;
    char buf[64];
    TU_CHECK_ERR(bt_get(&pg, root, "a", 1, buf, sizeof buf, &n), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_seek(&pg, root, NULL, 0, BT_FIRST, k, &kl), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_put(&pg, root, "b", 1, "B", 1, BT_INSERT), JET_errSuccess);
    TU_CHECK_ERR(bt_put(&pg, root, "b", 1, "X", 1, BT_INSERT), JET_errKeyDuplicate);
    TU_CHECK_ERR(bt_put(&pg, root, "c", 1, "C", 1, BT_REPLACE), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_put(&pg, root, "b", 1, "BB", 2, BT_REPLACE), JET_errSuccess);
    TU_CHECK_ERR(bt_put(&pg, root, "", 0, "x", 1, BT_UPSERT), JET_errInvalidParameter);
    char longkey[300];
    memset(longkey, 'k', sizeof longkey);
    TU_CHECK_ERR(bt_put(&pg, root, longkey, 256, "x", 1, BT_UPSERT), JET_errInvalidParameter);
    TU_CHECK_ERR(bt_put(&pg, root, longkey, 255, "x", 1, BT_UPSERT), JET_errSuccess);
    TU_CHECK_ERR(bt_put(&pg, root, "e", 1, NULL, 0, BT_UPSERT), JET_errSuccess);
    TU_CHECK_ERR(bt_get(&pg, root, "e", 1, buf, sizeof buf, &n), JET_errSuccess);
    CU_ASSERT_EQUAL(n, 0);
    TU_CHECK_ERR(bt_get(&pg, root, "b", 1, buf, 1, &n), JET_wrnBufferTruncated);
    CU_ASSERT(n == 2 && buf[0] == 'B');
    TU_CHECK_ERR(bt_seek(&pg, root, "c", 1, BT_GE, k, &kl), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'e');
    TU_CHECK_ERR(bt_seek(&pg, root, "c", 1, BT_LE, k, &kl), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'b');
    TU_CHECK_ERR(bt_seek(&pg, root, "b", 1, BT_GT, k, &kl), JET_errSuccess);
    CU_ASSERT(kl == 1 && k[0] == 'e');
    TU_CHECK_ERR(bt_seek(&pg, root, "b", 1, BT_LT, k, &kl), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_seek(&pg, root, "b", 1, BT_EQ, k, &kl), JET_errSuccess);
    TU_CHECK_ERR(bt_seek(&pg, root, "bb", 2, BT_EQ, k, &kl), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_seek(&pg, root, NULL, 0, BT_LAST, k, &kl), JET_errSuccess);
    CU_ASSERT(kl == 255 && k[0] == 'k');
    TU_CHECK_ERR(bt_delete(&pg, root, "zz", 2), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_delete(&pg, root, "b", 1), JET_errSuccess);
    TU_CHECK_ERR(bt_get(&pg, root, "b", 1, buf, sizeof buf, &n), JET_errRecordNotFound);
    TU_CHECK_ERR(bt_check(&pg, root, NULL), JET_errSuccess);
    CU_ASSERT_EQUAL(m.outstanding, 0);
    CU_ASSERT_EQUAL(m.bad, 0);
    m_destroy(&m);
}

static void test_values_across_the_inline_limit(void)
{
    uint32_t sizes[] = {4096, 8192, 32768};
    for (int si = 0; si < 3; si++) {
        struct mpager m;
        struct bt_pager pg;
        m_init(&m, &pg, sizes[si]);
        uint32_t root;
        bt_create(&pg, &root);
        uint32_t base = m_in_use(&m);
        size_t im = bt_inline_max(sizes[si]);
        size_t lens[] = {0, 1, im, im + 1, 3 * sizes[si], 1u << 20, 5u << 20};
        uint8_t *v = malloc(5u << 20), *back = malloc(5u << 20);
        for (size_t i = 0; i < (5u << 20); i++) v[i] = (uint8_t)(i * 2654435761u >> 13);
        for (int i = 0; i < 7; i++) {
            char key[16];
            snprintf(key, sizeof key, "v%02d", i);
            TU_CHECK_ERR(bt_put(&pg, root, key, strlen(key), v, lens[i], BT_UPSERT), JET_errSuccess);
        }
        struct bt_stats st;
        TU_CHECK_ERR(bt_check(&pg, root, &st), JET_errSuccess);
        CU_ASSERT_EQUAL(st.entries, 7);
        CU_ASSERT(st.overflow_pages > 0);
        for (int i = 0; i < 7; i++) {
            char key[16];
            size_t n = 0;
            snprintf(key, sizeof key, "v%02d", i);
            TU_CHECK_ERR(bt_get(&pg, root, key, strlen(key), back, 5u << 20, &n), JET_errSuccess);
            CU_ASSERT(n == lens[i] && memcmp(back, v, n) == 0);
        }
        /* Replacing big values with small ones and deleting frees every
         * overflow page. */
        for (int i = 0; i < 7; i++) {
            char key[16];
            snprintf(key, sizeof key, "v%02d", i);
            TU_CHECK_ERR(bt_put(&pg, root, key, strlen(key), "s", 1, BT_REPLACE), JET_errSuccess);
        }
        TU_CHECK_ERR(bt_check(&pg, root, &st), JET_errSuccess);
        CU_ASSERT_EQUAL(st.overflow_pages, 0);
        for (int i = 0; i < 7; i++) {
            char key[16];
            snprintf(key, sizeof key, "v%02d", i);
            TU_CHECK_ERR(bt_delete(&pg, root, key, strlen(key)), JET_errSuccess);
        }
        CU_ASSERT_EQUAL(m_in_use(&m), base);
        CU_ASSERT_EQUAL(m.outstanding, 0);
        CU_ASSERT_EQUAL(m.bad, 0);
        free(v);
        free(back);
        m_destroy(&m);
    }
}

/* ---- randomized model test ---- */

struct mentry {
    uint8_t key[JET_cbKeyMost];
    uint16_t klen;
    uint32_t vlen;
    uint32_t tag;
};

static int mcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    return c ? c : (al < bl ? -1 : al > bl);
}

/* Index of the first model entry >= key. */
static size_t mlower(struct mentry *v, size_t n, const uint8_t *k, size_t kl)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mcmp(v[mid].key, v[mid].klen, k, kl) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void mkval(uint8_t *buf, uint32_t len, uint32_t tag)
{
    uint64_t st = tag * 0x9E3779B97F4A7C15ull + 7;
    for (uint32_t i = 0; i < len; i++) buf[i] = (uint8_t)(tu_rand(&st) >> 56);
}

/*
 * One randomized run against the model; returns the deepest the tree got.
 * long_keys: keys of 100..255 bytes, so branch pages hold few separators
 * and the tree grows a third level (branch splits and merges).
 */
static uint32_t random_run(uint32_t ps, uint64_t seed, long ops, int long_keys)
{
    uint32_t max_depth = 0;
    struct mpager m;
    struct bt_pager pg;
    m_init(&m, &pg, ps);
    uint32_t root;
    bt_create(&pg, &root);
    uint32_t base = m_in_use(&m);
    size_t cap = 4096, n = 0;
    struct mentry *v = malloc(cap * sizeof *v);
    uint8_t *val = malloc(200000), *got = malloc(200000);
    uint64_t rng = seed;
    for (long op = 0; op < ops; op++) {
        uint64_t r = tu_rand(&rng) % 100;
        uint8_t key[JET_cbKeyMost];
        size_t kl;
        /* Keys from a small alphabet so collisions and neighbours are common. */
        if (n && r < 50 && tu_rand(&rng) % 2) {
            struct mentry *e = &v[tu_rand(&rng) % n];
            kl = e->klen;
            memcpy(key, e->key, kl);
        } else if (long_keys) {
            kl = 100 + tu_rand(&rng) % (JET_cbKeyMost - 99);
            for (size_t i = 0; i < kl; i++) key[i] = (uint8_t)('a' + tu_rand(&rng) % 4);
        } else {
            kl = 1 + tu_rand(&rng) % (tu_rand(&rng) % 8 == 0 ? JET_cbKeyMost : 12);
            for (size_t i = 0; i < kl; i++) key[i] = (uint8_t)('a' + tu_rand(&rng) % 4);
        }
        size_t pos = mlower(v, n, key, kl);
        bool present = pos < n && mcmp(v[pos].key, v[pos].klen, key, kl) == 0;
        if (r < 55) {
            uint32_t vl = (uint32_t)(tu_rand(&rng) % 100 < 90 ? tu_rand(&rng) % 200 : tu_rand(&rng) % 150000);
            uint32_t tag = (uint32_t)tu_rand(&rng);
            mkval(val, vl, tag);
            enum bt_put_mode mode = (enum bt_put_mode)(tu_rand(&rng) % 3);
            JET_ERR err = bt_put(&pg, root, key, kl, val, vl, mode);
            if (mode == BT_INSERT && present) TU_CHECK_ERR(err, JET_errKeyDuplicate);
            else if (mode == BT_REPLACE && !present) TU_CHECK_ERR(err, JET_errRecordNotFound);
            else {
                TU_CHECK_ERR(err, JET_errSuccess);
                if (!present) {
                    if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
                    memmove(v + pos + 1, v + pos, (n - pos) * sizeof *v);
                    n++;
                    memcpy(v[pos].key, key, kl);
                    v[pos].klen = (uint16_t)kl;
                }
                v[pos].vlen = vl;
                v[pos].tag = tag;
            }
        } else if (r < 80) {
            JET_ERR err = bt_delete(&pg, root, key, kl);
            TU_CHECK_ERR(err, present ? JET_errSuccess : JET_errRecordNotFound);
            if (present) {
                memmove(v + pos, v + pos + 1, (n - pos - 1) * sizeof *v);
                n--;
            }
        } else if (r < 90) {
            size_t gl = 0;
            JET_ERR err = bt_get(&pg, root, key, kl, got, 200000, &gl);
            if (!present) TU_CHECK_ERR(err, JET_errRecordNotFound);
            else {
                TU_CHECK_ERR(err, JET_errSuccess);
                mkval(val, v[pos].vlen, v[pos].tag);
                CU_ASSERT(gl == v[pos].vlen && memcmp(got, val, gl) == 0);
            }
        } else {
            static const enum bt_seek_op opsv[] = {BT_GE, BT_GT, BT_LE, BT_LT, BT_EQ};
            enum bt_seek_op so = opsv[tu_rand(&rng) % 5];
            uint8_t out[JET_cbKeyMost];
            size_t ol = 0;
            JET_ERR err = bt_seek(&pg, root, key, kl, so, out, &ol);
            long want;
            switch (so) {
            case BT_GE: want = pos < n ? (long)pos : -1; break;
            case BT_GT: want = (long)(present ? pos + 1 : pos); if (want >= (long)n) want = -1; break;
            case BT_LE: want = present ? (long)pos : (long)pos - 1; break;
            case BT_LT: want = (long)pos - 1; break;
            default: want = present ? (long)pos : -1; break;
            }
            if (want < 0) TU_CHECK_ERR(err, JET_errRecordNotFound);
            else {
                TU_CHECK_ERR(err, JET_errSuccess);
                CU_ASSERT(ol == v[want].klen && memcmp(out, v[want].key, ol) == 0);
            }
        }
        if (op % 500 == 0) {
            struct bt_stats st;
            TU_CHECK_ERR(bt_check(&pg, root, &st), JET_errSuccess);
            CU_ASSERT_EQUAL(st.entries, n);
            if (st.depth > max_depth) max_depth = st.depth;
        }
        if (m.outstanding != 0 || m.bad != 0) {
            fprintf(stderr, "seed %llu op %ld: outstanding %ld bad %ld\n", (unsigned long long)seed, op,
                    m.outstanding, m.bad);
            CU_FAIL_FATAL("pager rules broken");
        }
    }
    /* A full scan in order matches the model. */
    uint8_t k[JET_cbKeyMost];
    size_t kl = 0, i = 0;
    JET_ERR err = bt_seek(&pg, root, NULL, 0, BT_FIRST, k, &kl);
    while (err == JET_errSuccess) {
        CU_ASSERT_FATAL(i < n);
        CU_ASSERT(kl == v[i].klen && memcmp(k, v[i].key, kl) == 0);
        i++;
        err = bt_seek(&pg, root, k, kl, BT_GT, k, &kl);
    }
    CU_ASSERT_EQUAL(i, n);
    struct bt_stats st;
    TU_CHECK_ERR(bt_check(&pg, root, &st), JET_errSuccess);
    if (st.depth > max_depth) max_depth = st.depth;
    /* Deleting everything gives all pages back but the root. */
    while (n) {
        TU_CHECK_ERR(bt_delete(&pg, root, v[n - 1].key, v[n - 1].klen), JET_errSuccess);
        n--;
    }
    CU_ASSERT_EQUAL(m_in_use(&m), base);
    TU_CHECK_ERR(bt_check(&pg, root, &st), JET_errSuccess);
    CU_ASSERT_EQUAL(st.entries, 0);
    free(v);
    free(val);
    free(got);
    m_destroy(&m);
    return max_depth;
}

static void test_random_operations_match_the_model(void)
{
    uint64_t seed = tu_seed("test_random_operations_match_the_model");
    long ops = tu_count("BTREE_OPS", 6000, 60000);
    for (int i = 0; i < 6; i++) random_run(i % 2 ? 8192 : 4096, seed + (uint64_t)i, ops, 0);
    /* Deep trees: branch pages split and merge too. */
    uint32_t deepest = 0;
    for (int i = 0; i < 2; i++) {
        uint32_t d = random_run(4096, seed + 100 + (uint64_t)i, ops, 1);
        if (d > deepest) deepest = d;
    }
    fprintf(stderr, "btree: long-key runs reached depth %u\n", deepest);
    CU_ASSERT(deepest >= 3);
}

/* ---- how full splits leave pages ---- */

/* Key number i as klen bytes that sort as i does ("k000000042xxx..."). */
static size_t fill_key(uint8_t *key, uint32_t i, size_t klen)
{
    char num[16];
    snprintf(num, sizeof num, "k%09u", i);
    memset(key, 'x', klen);
    memcpy(key, num, klen < 10 ? klen : 10);
    return klen;
}

/* The pages of a tree (every page in use of the type), how many are below
 * min_fill, and their average fill. */
struct fill {
    unsigned pages, under;
    double avg;
};

static struct fill fill_of(const struct mpager *m, uint8_t type, double min_fill)
{
    struct fill f = {0};
    double sum = 0;
    for (uint32_t p = 2; p < m->npages; p++) {
        if (m->freed[p] || page_type(m->pages[p]) != type) continue;
        double x = (double)bt_page_used(m->pages[p], m->ps) / (double)bt_page_room(m->ps);
        f.pages++;
        sum += x;
        if (x < min_fill) f.under++;
    }
    f.avg = f.pages ? sum / f.pages : 0;
    return f;
}

/* Inserts keys order[0..n) (key numbers) with vlen-byte values, checking
 * the tree every so often and every key at the end. */
static void fill_load(struct mpager *m, struct bt_pager *pg, uint32_t root, const uint32_t *order, uint32_t n,
                      size_t klen, size_t vlen)
{
    uint8_t key[JET_cbKeyMost], val[2048], got[2048];
    for (uint32_t i = 0; i < n; i++) {
        mkval(val, (uint32_t)vlen, order[i]);
        TU_CHECK_ERR(bt_put(pg, root, key, fill_key(key, order[i], klen), val, vlen, BT_INSERT), JET_errSuccess);
        if (i % 997 == 0) TU_CHECK_ERR(bt_check(pg, root, NULL), JET_errSuccess);
    }
    struct bt_stats st;
    TU_CHECK_ERR(bt_check(pg, root, &st), JET_errSuccess);
    CU_ASSERT_EQUAL(st.entries, n);
    for (uint32_t i = 0; i < n; i++) {
        size_t got_len = 0;
        mkval(val, (uint32_t)vlen, order[i]);
        TU_CHECK_ERR(bt_get(pg, root, key, fill_key(key, order[i], klen), got, sizeof got, &got_len),
                     JET_errSuccess);
        CU_ASSERT(got_len == vlen && memcmp(got, val, vlen) == 0);
    }
    CU_ASSERT_EQUAL(m->outstanding, 0);
    CU_ASSERT_EQUAL(m->bad, 0);
}

/* Ascending, then descending, loads: every leaf but the one at the edge of
 * the run is at least 90% full (as full as its cells allow), and so is
 * every branch but one per level.  Long keys make branches split too. */
static void sequential_fill(bool descending)
{
    static const struct {
        uint32_t ps, n;
        size_t klen, vlen;
    } cases[] = {{8192, 3000, 14, 1000}, {8192, 20000, 14, 100}, {4096, 6000, 200, 10}, {4096, 2000, 40, 1000}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct mpager m;
        struct bt_pager pg;
        m_init(&m, &pg, cases[c].ps);
        uint32_t root, n = cases[c].n;
        bt_create(&pg, &root);
        uint32_t *order = malloc(n * sizeof *order);
        for (uint32_t i = 0; i < n; i++) order[i] = descending ? n - 1 - i : i;
        fill_load(&m, &pg, root, order, n, cases[c].klen, cases[c].vlen);
        /* One cell more would not fit: that is as full as a page gets. */
        double most = 1.0 - (double)(CELL_MAX(cases[c].klen, cases[c].vlen)) / (double)bt_page_room(cases[c].ps);
        double want = most < 0.9 ? most : 0.9;
        struct fill lf = fill_of(&m, PAGE_T_LEAF, want), br = fill_of(&m, PAGE_T_BRANCH, 0.85);
        struct bt_stats st;
        bt_check(&pg, root, &st);
        fprintf(stderr, "btree: %s %u x %zu+%zu B in %u B pages: %u leaves (%.0f%%), %u branches (%.0f%%), depth %u\n",
                descending ? "descending" : "ascending", n, cases[c].klen, cases[c].vlen, cases[c].ps, lf.pages,
                lf.avg * 100, br.pages, br.avg * 100, st.depth);
        CU_ASSERT(lf.under <= 1);
        CU_ASSERT(br.under <= st.depth);
        if (c == 2) CU_ASSERT(st.depth >= 3); /* the long keys did split branches */
        free(order);
        m_destroy(&m);
    }
}

static void test_ascending_inserts_leave_full_pages(void) { sequential_fill(false); }
static void test_descending_inserts_leave_full_pages(void) { sequential_fill(true); }

/* Random inserts split in the middle: about 70% full, never near half. */
static void test_random_inserts_keep_the_usual_fill(void)
{
    uint64_t rng = tu_seed("test_random_inserts_keep_the_usual_fill");
    for (int c = 0; c < 2; c++) {
        struct mpager m;
        struct bt_pager pg;
        m_init(&m, &pg, 8192);
        uint32_t root, n = c ? 4000 : 20000;
        size_t vlen = c ? 1000 : 100;
        bt_create(&pg, &root);
        uint32_t *order = malloc(n * sizeof *order);
        for (uint32_t i = 0; i < n; i++) order[i] = i;
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(tu_rand(&rng) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        fill_load(&m, &pg, root, order, n, 14, vlen);
        struct fill lf = fill_of(&m, PAGE_T_LEAF, 0);
        fprintf(stderr, "btree: random %u x 14+%zu B: %u leaves, %.0f%% full\n", n, vlen, lf.pages, lf.avg * 100);
        /* 1000-byte values: seven cells fit a page, so fill moves in steps
         * of an eighth and five cells (62%) is the usual page. */
        CU_ASSERT(lf.avg >= (c ? 0.6 : 0.65));
        free(order);
        m_destroy(&m);
    }
}

/*
 * Runs into the middle of a key range, several at once and interleaved (one
 * key of each run in turn), ascending and descending: each run fills pages
 * of its own, so only the pages where a run starts or ends may be partly
 * full.  With keys of the longest length a descending run cannot have a
 * separator of its own (btree.c's split_point) and splits in the middle:
 * the tree stays sound, half full.
 */
static void test_interleaved_runs_in_the_middle_fill_pages(void)
{
    for (int c = 0; c < 3; c++) {
        bool descending = c > 0;
        size_t klen = c == 2 ? JET_cbKeyMost : 14;
        struct mpager m;
        struct bt_pager pg;
        m_init(&m, &pg, 8192);
        uint32_t root;
        bt_create(&pg, &root);
        enum { GAP = 2000, KEYS = 60, RUNS = 4 };
        static const uint32_t starts[RUNS] = {3, 17, 31, 45};
        uint32_t n = KEYS + RUNS * (GAP - 1), k = 0;
        uint32_t *order = malloc(n * sizeof *order);
        for (uint32_t i = 0; i < KEYS; i++) order[k++] = i * GAP; /* the range, sparse */
        for (uint32_t j = 1; j < GAP; j++)
            for (int r = 0; r < RUNS; r++) order[k++] = starts[r] * GAP + (descending ? GAP - j : j);
        fill_load(&m, &pg, root, order, n, klen, 300);
        struct fill lf = fill_of(&m, PAGE_T_LEAF, 0.9);
        fprintf(stderr, "btree: %d interleaved %s runs, %zu-byte keys: %u leaves, %.0f%% full, %u below 90%%\n", RUNS,
                descending ? "descending" : "ascending", klen, lf.pages, lf.avg * 100, lf.under);
        if (c < 2) {
            CU_ASSERT(lf.under <= 3 * RUNS + 2);
            CU_ASSERT(lf.avg >= 0.85);
        } else {
            CU_ASSERT(lf.avg >= 0.45);
        }
        free(order);
        m_destroy(&m);
    }
}

/*
 * Deletes that leave pages nearly empty merge them with a neighbour: after
 * nine keys in ten go (scattered), the pages left are at least a quarter
 * full on average, branches merge too, every remaining key is there and
 * the invariants hold.
 */
static void test_deletes_merge_underfull_pages(void)
{
    static const struct {
        uint32_t ps, n;
        size_t klen, vlen;
    } cases[] = {{8192, 20000, 14, 100}, {4096, 6000, 200, 10}, {8192, 3000, 14, 1000}};
    uint64_t rng = tu_seed("test_deletes_merge_underfull_pages");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct mpager m;
        struct bt_pager pg;
        m_init(&m, &pg, cases[c].ps);
        uint32_t root, n = cases[c].n, kept = 0;
        size_t klen = cases[c].klen;
        bt_create(&pg, &root);
        uint32_t *order = malloc(n * sizeof *order);
        for (uint32_t i = 0; i < n; i++) order[i] = i;
        fill_load(&m, &pg, root, order, n, klen, cases[c].vlen);
        struct bt_stats before, after;
        bt_check(&pg, root, &before);
        /* Nine keys in ten go, in a random order. */
        for (uint32_t i = n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(tu_rand(&rng) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        uint8_t key[JET_cbKeyMost];
        for (uint32_t i = 0; i < n; i++) {
            if (order[i] % 10 == 0) {
                order[kept++] = order[i];
                continue;
            }
            TU_CHECK_ERR(bt_delete(&pg, root, key, fill_key(key, order[i], klen)), JET_errSuccess);
            if (i % 499 == 0) TU_CHECK_ERR(bt_check(&pg, root, NULL), JET_errSuccess);
        }
        TU_CHECK_ERR(bt_check(&pg, root, &after), JET_errSuccess);
        CU_ASSERT_EQUAL(after.entries, kept);
        for (uint32_t i = 0; i < kept; i++) {
            size_t got = 0;
            TU_CHECK_ERR(bt_get(&pg, root, key, fill_key(key, order[i], klen), NULL, 0, &got),
                         cases[c].vlen ? JET_wrnBufferTruncated : JET_errSuccess);
        }
        struct fill lf = fill_of(&m, PAGE_T_LEAF, 0);
        fprintf(stderr,
                "btree: %u of %u keys deleted: %" PRIu64 " -> %" PRIu64 " leaves (%.0f%% full), %" PRIu64 " -> %" PRIu64
                " branches, depth %u -> %u\n",
                n - kept, n, before.leaf_pages, after.leaf_pages, lf.avg * 100, before.branch_pages, after.branch_pages,
                before.depth, after.depth);
        CU_ASSERT(lf.avg >= 0.25);
        CU_ASSERT(after.leaf_pages * 3 <= before.leaf_pages);
        CU_ASSERT(before.branch_pages <= 1 || after.branch_pages * 3 <= before.branch_pages * 2);
        CU_ASSERT(after.depth <= before.depth);
        CU_ASSERT_EQUAL(m.outstanding, 0);
        CU_ASSERT_EQUAL(m.bad, 0);
        free(order);
        m_destroy(&m);
    }
}

static void test_corruption_is_reported_not_asserted(void)
{
    struct mpager m;
    struct bt_pager pg;
    m_init(&m, &pg, 4096);
    uint32_t root;
    bt_create(&pg, &root);
    for (int i = 0; i < 500; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%05d", i);
        bt_put(&pg, root, key, strlen(key), "valuevaluevalue", 15, BT_UPSERT);
    }
    TU_CHECK_ERR(bt_check(&pg, root, NULL), JET_errSuccess);
    /* A leaf's slot pointing outside the page. */
    uint8_t *rootp = m.pages[root];
    uint32_t child = page_aux2(rootp);
    uint8_t *leaf = m.pages[child];
    put_le16(leaf + 36, 60000);
    size_t n;
    char buf[32];
    TU_CHECK_ERR(bt_check(&pg, root, NULL), JET_errDatabaseCorrupted);
    TU_CHECK_ERR(bt_get(&pg, root, "key00000", 8, buf, sizeof buf, &n), JET_errDatabaseCorrupted);
    /* A page of the wrong type. */
    page_set_type(leaf, PAGE_T_OVERFLOW);
    TU_CHECK_ERR(bt_get(&pg, root, "key00000", 8, buf, sizeof buf, &n), JET_errDatabaseCorrupted);
    CU_ASSERT_EQUAL(m.outstanding, 0);
    m_destroy(&m);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("btree", NULL, NULL);
    CU_add_test(su, "test_basics", test_basics);
    CU_add_test(su, "test_values_across_the_inline_limit", test_values_across_the_inline_limit);
    CU_add_test(su, "test_random_operations_match_the_model", test_random_operations_match_the_model);
    CU_add_test(su, "test_corruption_is_reported_not_asserted", test_corruption_is_reported_not_asserted);
    CU_add_test(su, "test_ascending_inserts_leave_full_pages", test_ascending_inserts_leave_full_pages);
    CU_add_test(su, "test_descending_inserts_leave_full_pages", test_descending_inserts_leave_full_pages);
    CU_add_test(su, "test_random_inserts_keep_the_usual_fill", test_random_inserts_keep_the_usual_fill);
    CU_add_test(su, "test_interleaved_runs_in_the_middle_fill_pages", test_interleaved_runs_in_the_middle_fill_pages);
    CU_add_test(su, "test_deletes_merge_underfull_pages", test_deletes_merge_underfull_pages);
    return tu_run();
}

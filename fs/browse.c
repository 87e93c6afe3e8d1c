/*
 * browse.c -- the browse mount: a backup set's content as files (jetfs.h,
 * "Browsing a backup set by its content"), over libfuse3's low-level API.
 *
 *   /                     BR_INO_ROOT
 *   /status               BR_INO_STATUS   JSON, built at each open
 *   /tables               BR_INO_TABLES
 *   /tables/<t>           BR_INO_TABLE0 + index in the table list
 *   /tables/<t>/<key>     a key node: bit 63 set (below)
 *
 * Owns: the mount and its loop thread, the table list (read once at mount:
 * the data is immutable), a pool of JET sessions, the node map of the key
 * files the kernel holds, and the open file and directory handles.
 *
 * Immutable data is what makes this simple and correct:
 *  - Every attribute, entry (a missing name too) and page is cached by the
 *    kernel for a day, keep_cache on every open, cache_readdir on every
 *    directory: nothing can change under the cache while the mount lasts,
 *    and each mount is a new connection, so nothing outlives it.
 *  - So a listing can hand the kernel each key's entry and attributes
 *    (readdirplus, always: the cursor that walks the keys has each value's
 *    size for nothing), and `find | xargs cat` sends no LOOKUP; and the
 *    first open of a key can push its value into the page cache
 *    (fuse_lowlevel_notify_store) before it returns, so the read that
 *    follows sends no READ.  A key read by cat then costs one synchronous
 *    round trip (OPEN; RELEASE is asynchronous) instead of four (LOOKUP,
 *    OPEN, READ, RELEASE).  bench/browsebench.sh, cat of every key vs
 *    export of a restored copy: 400 MB set (52,000 keys of 4,000 bytes)
 *    9.2 s -> 6.1 s, 0.42x -> 0.69x; 2 GB set 44.5 s -> 28.8 s, 0.44x ->
 *    0.75x (medians of 3, one 2-core machine).
 *  - A table's listing has stable offsets for free: entry i (0 ".", 1
 *    "..", then the keys in key order) has offset i + 1.  A directory
 *    handle keeps the keys of its last reply (struct br_dir), so a
 *    sequential readdir resumes with one seek, whether the reader took
 *    the whole reply or part of it; only an offset before that reply
 *    walks again from the first key.  The listing is never held in
 *    memory: one reply's keys at most.
 *
 * Inode numbers of key files: XXH64 of the key, seeded with the table's
 * index, with bit 63 set (so never a fixed inode).  The node map holds
 * only the keys the kernel holds -- lookup counts, from lookup and from
 * each readdirplus entry, dropped at forget -- so it is bounded by the
 * kernel's inode cache, not by the table; its buckets double as it grows.
 * A node keeps its value's size, learnt with the entry, so getattr needs
 * no descent and open reads the value in one.  The price of readdirplus:
 * every listed key becomes a kernel inode and a node until the kernel
 * forgets it under memory pressure.  A find over 1,000,000 keys (100-byte
 * values) leaves jetfs browse at 145 MB RSS (94 MB with plain readdir: the
 * rest is the engine's page cache), the kernel with about 1.1 KB a key
 * (fuse_inode and dentry slabs, reclaimable), and takes 12.8 s instead of
 * 3.9 s -- paid back as soon as the keys are opened or stat'ed (a LOOKUP
 * round trip each otherwise).  Two held keys whose hashes collide: the later one
 * takes the next free number (a probe), so a node id always names one key
 * while it is held.  A plain readdir's d_ino (a kernel without
 * readdirplus) is the unprobed hash: it creates no node.
 *
 * Sessions: JET sessions are not for concurrent use, so a request takes
 * one from the pool (created on demand, up to one per loop thread that
 * runs at once), with the database opened read-only and tables opened as
 * needed, and gives it back when it replies.  A directory handle holds
 * keys (its window), not a session, between requests.
 *
 * Files: an open reads the whole value once (JetRetrieveKV has no offset,
 * and the value cannot change), reads are served from that copy, and the
 * release frees it -- after the last reply written from it (br_file).
 * The first open of a node also stores a value of up to BR_STORE_MAX in
 * the page cache (see op_open for why only the first: a store waits on
 * locked pages, so it must never wait for a READ of the same file).
 * status is built at open and served with direct I/O (its size is 0 to
 * stat: it is known only once built).
 *
 * Errors: a missing table or key is ENOENT; any other engine error -- a
 * damaged page is JET_errReadVerifyFailure -- is EIO for that request,
 * logged with JetGetLastErrorDetail (file, page, expected vs found; at
 * most ERR_LOG_PER_SECOND lines a second, then a count), counted in
 * status with the last one; no byte of a value that failed to read is
 * replied.  Any change is EROFS (the mount is also "ro", so the kernel
 * refuses most first).
 *
 * Locking: b->mu guards the lifecycle flags; pool_mu the idle sessions;
 * nodes_mu the node map; open_mu the lists of open files and directories;
 * err_mu the error counters; a directory handle's mu its window.  No lock
 * is held across an engine call except a directory handle's (one reader
 * of that handle at a time).
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "jetfs.h"
#include "keyname.h"
#include "erofs.h"
#include "session.h"

#define BR_INO_ROOT 1u
#define BR_INO_STATUS 2u
#define BR_INO_TABLES 3u
#define BR_INO_TABLE0 16u
#define BR_INO_KEY (1ull << 63)
#define BR_CACHE 86400.0
#define BR_STORE_MAX (128u * 1024) /* values pushed to the page cache at open, at most */
#define BR_NODE_BUCKETS0 (1u << 12) /* the node map's first size; it doubles */
#define ERR_LOG_PER_SECOND 10
#define WHAT_MAX (2 * JK_NAME_MAX + 64) /* "reading <table>/<key>" */

struct br_node {
    struct br_node *next;
    uint64_t ino;
    uint64_t nlookup;
    uint64_t size;   /* the value's, learnt with the entry: open reads it in one descent */
    uint32_t table;
    uint8_t cb;
    bool stored;     /* its value was pushed into the kernel's page cache (op_open) */
    uint8_t key[]; /* cb bytes: a held node costs its key, not JET_cbKeyMost */
};

struct br_table {
    char *raw;                    /* the engine's name */
    char name[JK_NAME_MAX + 1];   /* its file name */
};

/* One JET session of the pool, with the database and its tables open. */
struct br_sess {
    struct br_sess *next;
    JET_SESID ses;
    JET_DBID db;
    JET_TABLEID *tab;             /* per table; JET_tableidNil until opened */
};

/* An open file: the whole value (or status text), read once at open. */
struct br_file {
    struct br_file *prev, *next;  /* the open list (open_mu) */
    size_t size;
    char *data;
    /* The open handle's reference, plus one per reply being written from
     * data: the kernel may finish a read, and the reader close the file
     * (release), while writev is still returning in the thread that
     * replied -- whoever drops the last reference frees. */
    atomic_int refs;
};

static void file_put(struct jetfs_browse *b, struct br_file *f);

/*
 * An open table directory: the keys of its last reply, entries wfirst ..
 * wfirst + wn - 1, packed in wbytes (key i at wstart[i]..wstart[i + 1]).
 * A reader's getdents buffer often takes only part of a reply, and the
 * kernel then asks again from the first entry it could not place: from
 * inside the window, which is one seek to that key.  Asking from the end
 * of the window is one seek past its last key.  Only an offset before it
 * walks from the first key.  The window is at most one reply's keys.
 */
struct br_dir {
    struct br_dir *prev, *next;   /* the open list (open_mu) */
    pthread_mutex_t mu;
    uint32_t table;
    off_t wfirst;
    size_t wn, wncap;
    uint32_t *wstart;             /* wn + 1 offsets */
    uint8_t *wbytes;
    size_t wbcap;
};
static void dir_free(struct jetfs_browse *b, struct br_dir *d);

struct jetfs_browse {
    JET_INSTANCE inst;
    char *database;
    unsigned long long us_point;
    struct timespec when;
    char **sets;
    int nsets;
    JET_ERR (*info)(void *arg, JET_BROWSEINFO *info);
    void *info_arg;
    void (*log)(void *arg, const char *line);
    void *log_arg;
    uid_t uid;
    gid_t gid;

    struct br_table *tables;
    uint32_t ntables;

    pthread_mutex_t pool_mu;
    struct br_sess *idle;         /* under pool_mu */

    pthread_mutex_t nodes_mu;
    struct br_node **nodes;       /* nbuckets chains, under nodes_mu */
    size_t nbuckets;              /* a power of two, >= nnodes or as near as memory let it */
    size_t nnodes;                /* under nodes_mu */

    /* Open files and directories: a release the kernel had not sent when
     * the connection went (an unmount right after a close) never comes,
     * so what is left is freed with the mount. */
    pthread_mutex_t open_mu;
    struct br_file *files;
    struct br_dir *dirs;

    /* Engine errors answered EIO (jet_errno), under err_mu. */
    pthread_mutex_t err_mu;
    unsigned long eio_answers, err_unlogged;
    time_t err_second;
    unsigned err_logged;
    char last_error[1024];

    struct fuse_session *se;
    char mountpoint[PATH_MAX];
    pthread_t loop_thread;
    bool loop_started, mounted;
    pthread_mutex_t mu;
    bool stopping;                /* under mu */
};

static void br_log(struct jetfs_browse *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void br_log(struct jetfs_browse *b, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    b->log(b->log_arg, line);
}

/*
 * An engine error as an errno, at the FUSE boundary.  Call it right after
 * the failing call: the detail is the calling thread's last error.
 */
static int jet_errno(struct jetfs_browse *b, JET_ERR err, const char *what)
{
    if (err == JET_errRecordNotFound || err == JET_errObjectNotFound || err == JET_errNoCurrentRecord) return ENOENT;
    if (err == JET_errOutOfMemory) return ENOMEM;
    const char *d = JetGetLastErrorDetail();
    char line[sizeof b->last_error];
    snprintf(line, sizeof line, "%s: %s (%ld)%s%s", what, JetErrorString(err), err, *d ? ": " : "", d);
    /* A walk over a damaged table meets the page once per key: the log
     * gets the first ERR_LOG_PER_SECOND answers of each second and a count
     * of the rest; status keeps the count and the last one. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&b->err_mu);
    b->eio_answers++;
    memcpy(b->last_error, line, sizeof line);
    if (now.tv_sec != b->err_second) {
        b->err_second = now.tv_sec;
        b->err_logged = 0;
    }
    bool say = b->err_logged < ERR_LOG_PER_SECOND;
    unsigned long quiet = 0;
    if (say) {
        b->err_logged++;
        quiet = b->err_unlogged;
        b->err_unlogged = 0;
    } else {
        b->err_unlogged++;
    }
    pthread_mutex_unlock(&b->err_mu);
    if (quiet) br_log(b, "(%lu more EIO answers were not logged)", quiet);
    if (say) br_log(b, "%s: answered EIO", line);
    return EIO;
}

/* ---- open handles ---- */

#define LIST_ADD(head, x)                  \
    do {                                   \
        (x)->prev = NULL;                  \
        (x)->next = (head);                \
        if (head) (head)->prev = (x);      \
        (head) = (x);                      \
    } while (0)
#define LIST_DEL(head, x)                          \
    do {                                           \
        if ((x)->prev) (x)->prev->next = (x)->next; \
        else (head) = (x)->next;                   \
        if ((x)->next) (x)->next->prev = (x)->prev; \
    } while (0)

static void file_track(struct jetfs_browse *b, struct br_file *f)
{
    pthread_mutex_lock(&b->open_mu);
    LIST_ADD(b->files, f);
    pthread_mutex_unlock(&b->open_mu);
}

static void file_put(struct jetfs_browse *b, struct br_file *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1) return;
    pthread_mutex_lock(&b->open_mu);
    LIST_DEL(b->files, f);
    pthread_mutex_unlock(&b->open_mu);
    free(f->data);
    free(f);
}

/* ---- the session pool ---- */

static void sess_end(struct jetfs_browse *b, struct br_sess *s)
{
    if (!s) return;
    if (s->ses != JET_sesidNil) {
        JET_ERR err = JetEndSession(s->ses, 0);
        if (err < 0) (void)jet_errno(b, err, "ending a session");
    }
    free(s->tab);
    free(s);
}

static int pool_get(struct jetfs_browse *b, struct br_sess **out)
{
    pthread_mutex_lock(&b->pool_mu);
    struct br_sess *s = b->idle;
    if (s) b->idle = s->next;
    pthread_mutex_unlock(&b->pool_mu);
    if (s) {
        *out = s;
        return 0;
    }
    s = calloc(1, sizeof *s);
    if (!s) return ENOMEM;
    s->ses = JET_sesidNil;
    s->tab = malloc((b->ntables ? b->ntables : 1) * sizeof *s->tab);
    if (!s->tab) {
        free(s);
        return ENOMEM;
    }
    for (uint32_t i = 0; i < b->ntables; i++) s->tab[i] = JET_tableidNil;
    JET_ERR err = JetBeginSession(b->inst, &s->ses, NULL, NULL);
    if (err < 0) {
        s->ses = JET_sesidNil;
    } else {
        err = JetOpenDatabase(s->ses, b->database, NULL, &s->db, JET_bitDbReadOnly);
    }
    if (err < 0) {
        int e = jet_errno(b, err, "opening a session on the database");
        sess_end(b, s);
        return e == ENOENT ? EIO : e;
    }
    *out = s;
    return 0;
}

static void pool_put(struct jetfs_browse *b, struct br_sess *s)
{
    pthread_mutex_lock(&b->pool_mu);
    s->next = b->idle;
    b->idle = s;
    pthread_mutex_unlock(&b->pool_mu);
}

static int sess_table(struct jetfs_browse *b, struct br_sess *s, uint32_t t, JET_TABLEID *pt)
{
    if (s->tab[t] == JET_tableidNil) {
        JET_ERR err = JetOpenTable(s->ses, s->db, b->tables[t].raw, NULL, 0, 0, &s->tab[t]);
        if (err < 0) {
            s->tab[t] = JET_tableidNil;
            char what[WHAT_MAX];
            snprintf(what, sizeof what, "opening table %s", b->tables[t].name);
            int e = jet_errno(b, err, what);
            return e == ENOENT ? EIO : e; /* it was listed at mount */
        }
    }
    *pt = s->tab[t];
    return 0;
}

/* ---- the node map ---- */

static uint64_t key_ino(uint32_t table, const uint8_t *key, size_t cb)
{
    return XXH64(key, cb, table) | BR_INO_KEY;
}

static struct br_node **bucket(struct jetfs_browse *b, uint64_t ino)
{
    return &b->nodes[(ino ^ (ino >> 29)) & (b->nbuckets - 1)];
}

/* Doubles the buckets once the map holds as many nodes as buckets, so a
 * chain stays about one node long whether the kernel holds a thousand
 * keys or millions (readdirplus gives it every listed one).  Out of
 * memory, the map keeps its size: longer chains, still correct.
 * Context: nodes_mu. */
static void nodes_grow_locked(struct jetfs_browse *b)
{
    if (b->nnodes < b->nbuckets) return;
    size_t old = b->nbuckets;
    struct br_node **was = b->nodes;
    struct br_node **now = calloc(2 * old, sizeof *now);
    if (!now) return;
    b->nodes = now;
    b->nbuckets = 2 * old;
    for (size_t i = 0; i < old; i++)
        while (was[i]) {
            struct br_node *n = was[i];
            was[i] = n->next;
            struct br_node **head = bucket(b, n->ino);
            n->next = *head;
            *head = n;
        }
    free(was);
}

static struct br_node *node_find_locked(struct jetfs_browse *b, uint64_t ino)
{
    for (struct br_node *n = *bucket(b, ino); n; n = n->next)
        if (n->ino == ino) return n;
    return NULL;
}

/* The key's node id, with one more lookup held; 0 if out of memory. */
static uint64_t node_ref(struct jetfs_browse *b, uint32_t table, const uint8_t *key, size_t cb, uint64_t size)
{
    uint64_t ino = key_ino(table, key, cb);
    pthread_mutex_lock(&b->nodes_mu);
    for (;;) {
        struct br_node *n = node_find_locked(b, ino);
        if (!n) break;
        if (n->table == table && n->cb == cb && memcmp(n->key, key, cb) == 0) {
            n->nlookup++;
            pthread_mutex_unlock(&b->nodes_mu);
            return ino;
        }
        ino = (ino + 1) | BR_INO_KEY; /* a collision among held keys: probe */
    }
    struct br_node *n = malloc(sizeof *n + cb);
    if (n) {
        n->ino = ino;
        n->nlookup = 1;
        n->size = size;
        n->stored = false;
        n->table = table;
        n->cb = (uint8_t)cb;
        memcpy(n->key, key, cb);
        struct br_node **head = bucket(b, ino);
        n->next = *head;
        *head = n;
        b->nnodes++;
        nodes_grow_locked(b);
    }
    pthread_mutex_unlock(&b->nodes_mu);
    return n ? ino : 0;
}

/* Copies out the key a node id names, and its value's size; false if the
 * kernel holds no such node. */
static bool node_get(struct jetfs_browse *b, uint64_t ino, uint32_t *ptable, uint8_t *key, size_t *pcb,
                     uint64_t *psize)
{
    pthread_mutex_lock(&b->nodes_mu);
    struct br_node *n = node_find_locked(b, ino);
    if (n) {
        *ptable = n->table;
        *pcb = n->cb;
        *psize = n->size;
        memcpy(key, n->key, n->cb);
    }
    pthread_mutex_unlock(&b->nodes_mu);
    return n != NULL;
}

/* True for the first caller only, per node held: who pushes its value. */
static bool node_claim_store(struct jetfs_browse *b, uint64_t ino)
{
    pthread_mutex_lock(&b->nodes_mu);
    struct br_node *n = node_find_locked(b, ino);
    bool first = n && !n->stored;
    if (first) n->stored = true;
    pthread_mutex_unlock(&b->nodes_mu);
    return first;
}

static void node_forget(struct jetfs_browse *b, uint64_t ino, uint64_t nlookup)
{
    if (!(ino & BR_INO_KEY)) return;
    pthread_mutex_lock(&b->nodes_mu);
    for (struct br_node **p = bucket(b, ino); *p; p = &(*p)->next) {
        struct br_node *n = *p;
        if (n->ino != ino) continue;
        n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
        if (!n->nlookup) {
            *p = n->next;
            free(n);
            b->nnodes--;
        }
        break;
    }
    pthread_mutex_unlock(&b->nodes_mu);
}

/* ---- attributes ---- */

static void fill_attr(struct jetfs_browse *b, uint64_t ino, bool dir, uint64_t size, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    st->st_nlink = dir ? 2 : 1;
    st->st_uid = b->uid;
    st->st_gid = b->gid;
    st->st_size = (off_t)size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
    st->st_atim = st->st_mtim = st->st_ctim = b->when;
}

/* The size of a value: 0 and *psize, ENOENT, or EIO (logged). */
static int value_size(struct jetfs_browse *b, struct br_sess *s, uint32_t t, const uint8_t *key, size_t cb,
                      uint64_t *psize)
{
    JET_TABLEID tid;
    int e = sess_table(b, s, t, &tid);
    if (e) return e;
    unsigned long actual = 0;
    JET_ERR err = JetRetrieveKV(s->ses, tid, key, (unsigned long)cb, NULL, 0, &actual, 0);
    if (err < 0) {
        char what[WHAT_MAX];
        char name[JK_NAME_MAX + 1];
        jk_encode(key, cb, name);
        snprintf(what, sizeof what, "the size of %s/%s", b->tables[t].name, name);
        return jet_errno(b, err, what);
    }
    *psize = actual;
    return 0;
}

static bool is_table_dir(struct jetfs_browse *b, uint64_t ino)
{
    return ino >= BR_INO_TABLE0 && ino < BR_INO_TABLE0 + (uint64_t)b->ntables;
}

static int getattr_of(struct jetfs_browse *b, uint64_t ino, struct stat *st)
{
    if (ino == BR_INO_ROOT || ino == BR_INO_TABLES || is_table_dir(b, ino)) {
        fill_attr(b, ino, true, 0, st);
        return 0;
    }
    if (ino == BR_INO_STATUS) {
        fill_attr(b, ino, false, 0, st); /* direct I/O: read to the end */
        return 0;
    }
    uint8_t key[JET_cbKeyMost];
    size_t cb;
    uint32_t t;
    uint64_t size = 0;
    /* The size was learnt with the entry (lookup or readdirplus), and a
     * value never changes: no descent. */
    if (!(ino & BR_INO_KEY) || !node_get(b, ino, &t, key, &cb, &size)) return ENOENT;
    fill_attr(b, ino, false, size, st);
    return 0;
}

/* ---- requests ---- */

static struct jetfs_browse *br_of(fuse_req_t req) { return fuse_req_userdata(req); }

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    erofs_conn_init(conn, MAX_REQUEST);
    /* readdirplus on every listing (not the kernel's "auto" guess, which
     * falls back to plain readdir once it sees no lookups between two
     * replies): find | xargs cat then costs no LOOKUP per key, and the
     * size comes from the cursor the listing walks anyway. */
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

/* Finds the key a name in table t names: exact, or a prefix and a hash to
 * scan for.  0 with the key, ENOENT, or EIO. */
static int find_key(struct jetfs_browse *b, struct br_sess *s, uint32_t t, const char *name, uint8_t *key,
                    size_t *pcb, uint64_t *psize)
{
    uint64_t hash;
    enum jk_decoded d = jk_decode(name, key, pcb, &hash);
    if (d == JK_INVALID) return ENOENT;
    if (d == JK_EXACT) return value_size(b, s, t, key, *pcb, psize);
    JET_TABLEID tid;
    int e = sess_table(b, s, t, &tid);
    if (e) return e;
    size_t cbprefix = *pcb;
    uint8_t prefix[JET_cbKeyMost];
    memcpy(prefix, key, cbprefix);
    char what[WHAT_MAX];
    snprintf(what, sizeof what, "looking up %s/%s", b->tables[t].name, name);
    JET_ERR err = JetSeekKV(s->ses, tid, prefix, (unsigned long)cbprefix, JET_bitSeekGE);
    while (err >= 0) {
        unsigned long cb = 0, size = 0;
        err = JetRetrieveCurrentKV(s->ses, tid, key, JET_cbKeyMost, &cb, NULL, 0, &size);
        if (err < 0) break;
        if (cb < cbprefix || memcmp(key, prefix, cbprefix) != 0) return ENOENT; /* past the prefix */
        if (jk_name_is(name, key, cb)) {
            *pcb = cb;
            *psize = size;
            return 0;
        }
        err = JetMove(s->ses, tid, JET_MoveNext, 0);
    }
    return jet_errno(b, err, what);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct jetfs_browse *b = br_of(req);
    struct fuse_entry_param p = {.attr_timeout = BR_CACHE, .entry_timeout = BR_CACHE};
    int e = 0;
    if (parent == BR_INO_ROOT) {
        if (!strcmp(name, "status")) {
            p.ino = BR_INO_STATUS;
            fill_attr(b, p.ino, false, 0, &p.attr);
            p.attr_timeout = p.entry_timeout = 0; /* its size is not known before it is read */
        } else if (!strcmp(name, "tables")) {
            p.ino = BR_INO_TABLES;
            fill_attr(b, p.ino, true, 0, &p.attr);
        }
    } else if (parent == BR_INO_TABLES) {
        for (uint32_t i = 0; i < b->ntables; i++)
            if (!strcmp(b->tables[i].name, name)) {
                p.ino = BR_INO_TABLE0 + i;
                fill_attr(b, p.ino, true, 0, &p.attr);
                break;
            }
    } else if (is_table_dir(b, parent)) {
        uint32_t t = (uint32_t)(parent - BR_INO_TABLE0);
        struct br_sess *s;
        uint8_t key[JET_cbKeyMost];
        size_t cb = 0;
        uint64_t size = 0;
        if ((e = pool_get(b, &s)) != 0) goto out;
        e = find_key(b, s, t, name, key, &cb, &size);
        pool_put(b, s);
        if (e == ENOENT) {
            e = 0; /* a negative entry: cached, since nothing appears later */
        } else if (e == 0) {
            if (!(p.ino = node_ref(b, t, key, cb, size))) e = ENOMEM;
            else fill_attr(b, p.ino, false, size, &p.attr);
        }
    } else {
        e = (parent & BR_INO_KEY) || parent == BR_INO_STATUS ? ENOTDIR : ENOENT;
    }
out:
    if (e) fuse_reply_err(req, e);
    else if (fuse_reply_entry(req, &p) != 0 && p.ino & BR_INO_KEY) node_forget(b, p.ino, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    node_forget(br_of(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++) node_forget(br_of(req), forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct jetfs_browse *b = br_of(req);
    struct stat st;
    int e = getattr_of(b, ino, &st);
    if (e) fuse_reply_err(req, e);
    else fuse_reply_attr(req, &st, ino == BR_INO_STATUS ? 0.0 : BR_CACHE);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct jetfs_browse *b = br_of(req);
    if (ino != BR_INO_ROOT && ino != BR_INO_TABLES && !is_table_dir(b, ino)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fi->fh = 0;
    if (is_table_dir(b, ino)) {
        struct br_dir *d = calloc(1, sizeof *d);
        if (!d) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        pthread_mutex_init(&d->mu, NULL);
        d->table = (uint32_t)(ino - BR_INO_TABLE0);
        pthread_mutex_lock(&b->open_mu);
        LIST_ADD(b->dirs, d);
        pthread_mutex_unlock(&b->open_mu);
        fi->fh = (uint64_t)(uintptr_t)d;
    }
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0 && fi->fh) dir_free(b, (struct br_dir *)(uintptr_t)fi->fh);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct br_dir *d = (struct br_dir *)(uintptr_t)fi->fh;
    if (d) dir_free(br_of(req), d);
    fuse_reply_err(req, 0);
}

/*
 * One reply of a listing being built: readdir's, or readdirplus's, whose
 * key entries each hold one more lookup of their node (the kernel links
 * every entry of a reply it gets, even those past the reader's buffer).
 * The node ids referenced are kept until the reply is sent, to be
 * forgotten if it is not.
 */
struct br_reply {
    fuse_req_t req;
    char *buf;
    size_t size, used;
    bool plus;
    uint64_t *refs;
    size_t nrefs, refcap;
};

/* Adds one entry at offset index `at` (its next offset is at + 1); false
 * when the buffer is full.  Under plus, an entry with attributes only for
 * a key (ino then is its node id, referenced): the fixed inodes are left
 * for lookup (entry ino 0: the kernel takes the name, not the node). */
static bool add_entry(struct br_reply *r, const char *name, uint64_t ino, bool dir, off_t at, const struct stat *st)
{
    size_t need;
    if (r->plus) {
        struct fuse_entry_param p = {.attr = {.st_ino = ino, .st_mode = dir ? S_IFDIR : S_IFREG}};
        if (st) {
            p.ino = ino;
            p.attr = *st;
            p.attr_timeout = p.entry_timeout = BR_CACHE;
        }
        need = fuse_add_direntry_plus(r->req, r->buf + r->used, r->size - r->used, name, &p, at + 1);
    } else {
        struct stat ds = {.st_ino = ino, .st_mode = dir ? S_IFDIR : S_IFREG};
        need = fuse_add_direntry(r->req, r->buf + r->used, r->size - r->used, name, &ds, at + 1);
    }
    if (need > r->size - r->used) return false;
    r->used += need;
    return true;
}

static void dir_free(struct jetfs_browse *b, struct br_dir *d)
{
    pthread_mutex_lock(&b->open_mu);
    LIST_DEL(b->dirs, d);
    pthread_mutex_unlock(&b->open_mu);
    pthread_mutex_destroy(&d->mu);
    free(d->wstart);
    free(d->wbytes);
    free(d);
}

/* Appends a key to the window (emptied first when fresh); ENOMEM. */
static int window_push(struct br_dir *d, bool fresh, off_t at, const uint8_t *key, size_t cb)
{
    if (fresh) {
        d->wn = 0;
        d->wfirst = at;
    }
    size_t used = d->wn ? d->wstart[d->wn] : 0;
    if (d->wn + 2 > d->wncap) {
        size_t cap = d->wncap ? 2 * d->wncap : 64;
        uint32_t *p = realloc(d->wstart, cap * sizeof *p);
        if (!p) return ENOMEM;
        d->wstart = p;
        d->wncap = cap;
    }
    if (used + cb > d->wbcap) {
        size_t cap = d->wbcap ? 2 * d->wbcap : 8192;
        while (cap < used + cb) cap *= 2;
        uint8_t *p = realloc(d->wbytes, cap);
        if (!p) return ENOMEM;
        d->wbytes = p;
        d->wbcap = cap;
    }
    d->wstart[d->wn] = (uint32_t)used;
    memcpy(d->wbytes + used, key, cb);
    d->wstart[++d->wn] = (uint32_t)(used + cb);
    return 0;
}

/* The keys of a table dir from entry index `at` (>= 2) on, from the handle's window. */
static int readdir_table(struct jetfs_browse *b, struct br_dir *d, struct br_reply *r, off_t at)
{
    struct br_sess *s;
    JET_TABLEID tid;
    int e = pool_get(b, &s);
    if (e) return e;
    if ((e = sess_table(b, s, d->table, &tid)) != 0) goto out;
    JET_ERR err;
    off_t pos; /* the entry index the cursor is on once err >= 0 */
    off_t wend = d->wfirst + (off_t)d->wn;
    if (d->wn && at >= d->wfirst && at < wend) {
        size_t i = (size_t)(at - d->wfirst);
        err = JetSeekKV(s->ses, tid, d->wbytes + d->wstart[i], d->wstart[i + 1] - d->wstart[i], JET_bitSeekGE);
        pos = at;
    } else if (d->wn && at >= wend) {
        size_t i = d->wn - 1;
        err = JetSeekKV(s->ses, tid, d->wbytes + d->wstart[i], d->wstart[i + 1] - d->wstart[i], JET_bitSeekGT);
        pos = wend;
    } else {
        /* The first request, or an offset before the window: walk again. */
        err = JetMove(s->ses, tid, JET_MoveFirst, 0);
        pos = 2;
    }
    for (; err >= 0 && pos < at; pos++) err = JetMove(s->ses, tid, JET_MoveNext, 0);
    char what[WHAT_MAX];
    snprintf(what, sizeof what, "listing table %s", b->tables[d->table].name);
    bool fresh = true;
    while (err >= 0) {
        uint8_t key[JET_cbKeyMost];
        unsigned long cb = 0, vsize = 0;
        char name[JK_NAME_MAX + 1];
        err = JetRetrieveCurrentKV(s->ses, tid, key, sizeof key, &cb, NULL, 0, r->plus ? &vsize : NULL);
        if (err < 0) break;
        jk_encode(key, cb, name);
        if ((e = window_push(d, fresh, pos, key, cb)) != 0) goto out;
        uint64_t ino = key_ino(d->table, key, cb);
        struct stat st, *pst = NULL;
        if (r->plus) {
            if (r->nrefs == r->refcap) {
                size_t cap = r->refcap ? 2 * r->refcap : 256;
                uint64_t *p = realloc(r->refs, cap * sizeof *p);
                if (!p) {
                    d->wn--;
                    e = ENOMEM;
                    goto out;
                }
                r->refs = p;
                r->refcap = cap;
            }
            if (!(ino = node_ref(b, d->table, key, cb, vsize))) {
                d->wn--;
                e = ENOMEM;
                goto out;
            }
            fill_attr(b, ino, false, vsize, &st);
            pst = &st;
        }
        if (!add_entry(r, name, ino, false, pos, pst)) {
            d->wn--; /* not sent */
            if (r->plus) node_forget(b, ino, 1);
            goto out;
        }
        if (r->plus) r->refs[r->nrefs++] = ino;
        fresh = false;
        pos++;
        err = JetMove(s->ses, tid, JET_MoveNext, 0);
    }
    /* The end of the table, or an error. */
    if (err != JET_errNoCurrentRecord && err != JET_errRecordNotFound) e = jet_errno(b, err, what);
out:
    pool_put(b, s);
    return e;
}

static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
                        bool plus)
{
    struct jetfs_browse *b = br_of(req);
    if (size > MAX_REQUEST) size = MAX_REQUEST;
    struct br_reply r = {.req = req, .buf = malloc(size), .size = size, .plus = plus};
    int e = 0;
    if (!r.buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    uint64_t parent = ino == BR_INO_ROOT ? BR_INO_ROOT : ino == BR_INO_TABLES ? BR_INO_ROOT : BR_INO_TABLES;
    off_t at = off;
    if (at == 0 && !add_entry(&r, ".", ino, true, at++, NULL)) goto out;
    if (at == 1 && !add_entry(&r, "..", parent, true, at++, NULL)) goto out;
    if (ino == BR_INO_ROOT) {
        if (at == 2 && !add_entry(&r, "status", BR_INO_STATUS, false, at++, NULL)) goto out;
        if (at == 3 && !add_entry(&r, "tables", BR_INO_TABLES, true, at++, NULL)) goto out;
    } else if (ino == BR_INO_TABLES) {
        for (; at >= 2 && (uint64_t)(at - 2) < b->ntables; at++)
            if (!add_entry(&r, b->tables[at - 2].name, BR_INO_TABLE0 + (uint64_t)(at - 2), true, at, NULL)) break;
    } else {
        struct br_dir *d = (struct br_dir *)(uintptr_t)fi->fh;
        if (!d) {
            e = EBADF;
            goto out;
        }
        pthread_mutex_lock(&d->mu);
        e = readdir_table(b, d, &r, at);
        pthread_mutex_unlock(&d->mu);
    }
out:
    if (e && r.used == 0) {
        fuse_reply_err(req, e);
    } else if (fuse_reply_buf(req, r.buf, r.used) != 0) {
        /* what fitted before an error; the next request meets it again.
         * Not sent (an interrupt): the kernel linked none of its entries. */
        for (size_t i = 0; i < r.nrefs; i++) node_forget(b, r.refs[i], 1);
    }
    free(r.refs);
    free(r.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    readdir_any(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    readdir_any(req, ino, size, off, fi, true);
}

static char *status_text(struct jetfs_browse *b, size_t *plen);

/* The value of a key node, whole: 0 and the file, or an errno. */
static int load_value(struct jetfs_browse *b, uint64_t ino, struct br_file *f)
{
    uint8_t key[JET_cbKeyMost];
    size_t cb;
    uint32_t t;
    uint64_t known = 0;
    if (!node_get(b, ino, &t, key, &cb, &known)) return ENOENT;
    struct br_sess *s;
    JET_TABLEID tid;
    int e = pool_get(b, &s);
    if (e) return e;
    if ((e = sess_table(b, s, t, &tid)) != 0) goto out;
    char name[JK_NAME_MAX + 1], what[WHAT_MAX];
    jk_encode(key, cb, name);
    snprintf(what, sizeof what, "reading %s/%s", b->tables[t].name, name);
    /* The size came with the entry, so one descent reads the value.  A
     * value larger than that cannot happen on a browse (nothing writes),
     * but an instance read live may: then read again at the size found. */
    unsigned long size = (unsigned long)known, got = 0;
    JET_ERR err;
    for (int tries = 0; tries < 8; tries++) {
        f->data = malloc(size ? size : 1);
        if (!f->data) {
            e = ENOMEM;
            goto out;
        }
        err = JetRetrieveKV(s->ses, tid, key, (unsigned long)cb, f->data, size, &got, 0);
        if (err < 0) {
            e = jet_errno(b, err, what);
            break;
        }
        if (err != JET_wrnBufferTruncated && got <= size) {
            f->size = got;
            goto out;
        }
        free(f->data);
        f->data = NULL;
        size = got;
    }
    if (!e) e = EIO;
out:
    if (e) {
        free(f->data);
        f->data = NULL;
    }
    pool_put(b, s);
    return e;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct jetfs_browse *b = br_of(req);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (ino == BR_INO_ROOT || ino == BR_INO_TABLES || is_table_dir(b, ino)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    struct br_file *f = calloc(1, sizeof *f);
    int e = 0;
    if (!f) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    atomic_init(&f->refs, 1);
    if (ino == BR_INO_STATUS) {
        if (!(f->data = status_text(b, &f->size))) e = ENOMEM;
        fi->direct_io = 1; /* its size is known only now */
    } else if (ino & BR_INO_KEY) {
        e = load_value(b, ino, f);
        fi->keep_cache = 1;
        /* Push the value into the page cache before the open returns, so
         * the reader's read is answered by the kernel, with no READ round
         * trip.  Only at the node's first open, and keep_cache keeps the
         * pages for later opens.  A store waits on a page locked for a
         * READ: at the first open none of this file can be pending, save
         * one from a second open that raced past this one and answered
         * first -- that READ needs no lock of ours, and another loop
         * thread answers it (the loop starts one if none is idle).  A
         * failed store costs nothing but the READ: answered from f. */
        if (!e && f->size && f->size <= BR_STORE_MAX && node_claim_store(b, ino)) {
            struct fuse_bufvec bv = FUSE_BUFVEC_INIT(f->size);
            bv.buf[0].mem = f->data;
            int rc = fuse_lowlevel_notify_store(b->se, ino, 0, &bv, 0);
            if (rc < 0 && rc != -ENOSYS) br_log(b, "storing a value in the page cache: %s", strerror(-rc));
        }
    } else {
        e = ENOENT;
    }
    if (e) {
        free(f);
        fuse_reply_err(req, e);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)f;
    file_track(b, f);
    if (fuse_reply_open(req, fi) != 0) file_put(b, f);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct jetfs_browse *b = br_of(req); /* req is gone once replied */
    struct br_file *f = (struct br_file *)(uintptr_t)fi->fh;
    if (!f || off < 0) {
        fuse_reply_err(req, EBADF);
        return;
    }
    atomic_fetch_add(&f->refs, 1);
    if ((uint64_t)off >= f->size) fuse_reply_buf(req, NULL, 0);
    else fuse_reply_buf(req, f->data + off, size < f->size - (size_t)off ? size : f->size - (size_t)off);
    file_put(b, f);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct br_file *f = (struct br_file *)(uintptr_t)fi->fh;
    if (f) file_put(br_of(req), f);
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = JK_NAME_MAX, .f_flag = ST_RDONLY};
    fuse_reply_statfs(req, &sv);
}

/* No extended attributes: an empty list, ENODATA for any name. */
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    (void)ino;
    if (size == 0) fuse_reply_xattr(req, 0);
    else fuse_reply_buf(req, NULL, 0);
}
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    (void)ino, (void)name, (void)size;
    fuse_reply_err(req, ENODATA);
}


static const struct fuse_lowlevel_ops browse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
    JETFS_EROFS_OPS,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
};

/* ---- status ---- */

static const char *utc(unsigned long long us, char *when, size_t cb)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(when, cb, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, cb - n, ".%06lluZ", us % 1000000);
    return when;
}

static json_t *utc_text(unsigned long long us)
{
    char when[64];
    return json_string(utc(us, when, sizeof when));
}

/* The status document (malloc'd, NUL-terminated), or NULL. */
static char *status_text(struct jetfs_browse *b, size_t *plen)
{
    json_t *doc = json_object(), *sets = json_array(), *tables = json_array();
    char *text = NULL;
    if (!doc || !sets || !tables) goto out;
    for (int i = 0; i < b->nsets; i++) json_array_append_new(sets, json_string(b->sets[i]));
    for (uint32_t i = 0; i < b->ntables; i++) json_array_append_new(tables, json_string(b->tables[i].name));
    json_object_set(doc, "sets", sets);
    json_object_set_new(doc, "database", json_string(b->database));
    json_object_set_new(doc, "point_in_time", utc_text(b->us_point));
    json_object_set_new(doc, "point_in_time_us", json_integer((json_int_t)b->us_point));
    if (b->info) {
        JET_BROWSEINFO in = {.cbStruct = sizeof in};
        JET_ERR err = b->info(b->info_arg, &in);
        if (err < 0) {
            const char *d = JetGetLastErrorDetail();
            char msg[1024];
            snprintf(msg, sizeof msg, "%s (%ld)%s%s", JetErrorString(err), err, *d ? ": " : "", d);
            json_object_set_new(doc, "error", json_string(msg));
        } else {
            json_t *gens = json_object(), *stop = json_object();
            json_object_set_new(gens, "low", json_integer((json_int_t)in.genLow));
            json_object_set_new(gens, "high", json_integer((json_int_t)in.genHigh));
            json_object_set_new(doc, "generations_replayed", gens);
            json_object_set_new(stop, "generation", in.genStop ? json_integer((json_int_t)in.genStop) : json_null());
            json_object_set_new(stop, "time", in.usStop ? utc_text(in.usStop) : json_null());
            json_object_set_new(stop, "time_us", in.usStop ? json_integer((json_int_t)in.usStop) : json_null());
            json_object_set_new(doc, "stop_asked", stop);
            json_object_set_new(doc, "overlay_bytes", json_integer((json_int_t)in.cbOverlay));
            json_object_set_new(doc, "overlay_spilled_bytes", json_integer((json_int_t)in.cbOverlaySpilled));
        }
    }
    json_object_set(doc, "tables", tables);
    pthread_mutex_lock(&b->nodes_mu);
    size_t held = b->nnodes;
    pthread_mutex_unlock(&b->nodes_mu);
    /* Key files the kernel holds (looked up, not yet forgotten): what the
     * node map costs, bounded by the kernel's caches. */
    json_object_set_new(doc, "key_nodes_held", json_integer((json_int_t)held));
    pthread_mutex_lock(&b->err_mu);
    json_object_set_new(doc, "eio_answers", json_integer((json_int_t)b->eio_answers));
    json_object_set_new(doc, "last_error", b->last_error[0] ? json_string(b->last_error) : json_null());
    pthread_mutex_unlock(&b->err_mu);
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text) {
        /* A text file ends with a newline (cat, jq, diff). */
        size_t n = strlen(text);
        char *t = realloc(text, n + 2);
        if (!t) {
            free(text);
            text = NULL;
            goto out;
        }
        text = t;
        memcpy(text + n, "\n", 2);
        *plen = n + 1;
    }
out:
    json_decref(sets);
    json_decref(tables);
    json_decref(doc);
    return text;
}

/* ---- lifecycle ---- */

/* The table list, read once: a browse's tables never change. */
static int load_tables(struct jetfs_browse *b, char *why, size_t cbwhy)
{
    struct br_sess *s = NULL;
    char *szz = NULL;
    int rc = pool_get(b, &s);
    if (rc) {
        const char *d = JetGetLastErrorDetail();
        snprintf(why, cbwhy, "cannot open %s read-only%s%s", b->database, *d ? ": " : "", d);
        return -rc;
    }
    unsigned long need = 0;
    JET_ERR err = JetGetTableNames(s->ses, s->db, NULL, 0, &need);
    if (err >= 0) {
        if (!(szz = calloc(1, need + 2))) err = JET_errOutOfMemory;
        else err = JetGetTableNames(s->ses, s->db, szz, need + 1, &need);
    }
    if (err < 0) {
        const char *d = JetGetLastErrorDetail();
        snprintf(why, cbwhy, "cannot list the tables of %s: %s (%ld)%s%s", b->database, JetErrorString(err), err,
                 *d ? ": " : "", d);
        rc = -EIO;
        goto out;
    }
    uint32_t n = 0;
    for (const char *p = szz; *p; p += strlen(p) + 1) n++;
    if (!(b->tables = calloc(n ? n : 1, sizeof *b->tables))) {
        rc = -ENOMEM;
        snprintf(why, cbwhy, "out of memory");
        goto out;
    }
    for (const char *p = szz; *p; p += strlen(p) + 1) {
        struct br_table *t = &b->tables[b->ntables];
        if (!(t->raw = strdup(p))) {
            rc = -ENOMEM;
            snprintf(why, cbwhy, "out of memory");
            goto out;
        }
        jk_encode(p, strlen(p), t->name);
        b->ntables++;
    }
out:
    free(szz);
    /* The pool's sessions were made for no table: start over with the list. */
    sess_end(b, s);
    return rc;
}

static void *loop_main(void *arg)
{
    struct jetfs_browse *b = arg;
    (void)pthread_setname_np(pthread_self(), "jetfs-browse");
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    int rc;
    if (cfg) {
        fuse_loop_cfg_set_idle_threads(cfg, 4);
        fuse_loop_cfg_set_max_threads(cfg, 16);
        rc = fuse_session_loop_mt(b->se, cfg);
        fuse_loop_cfg_destroy(cfg);
    } else {
        rc = fuse_session_loop(b->se);
    }
    if (rc < 0) br_log(b, "the FUSE loop ended with an error: %s", strerror(-rc));
    fuse_session_unmount(b->se);
    return NULL;
}

int jetfs_browse_mount(JET_INSTANCE inst, const struct jetfs_browse_options *opt, struct jetfs_browse **out,
                       char *why, size_t cbwhy)
{
    int rc;
    struct jetfs_browse *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(why, cbwhy, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->pool_mu, NULL);
    pthread_mutex_init(&b->nodes_mu, NULL);
    pthread_mutex_init(&b->open_mu, NULL);
    pthread_mutex_init(&b->err_mu, NULL);
    b->inst = inst;
    b->us_point = opt->us_point;
    b->when.tv_sec = (time_t)(opt->us_point / 1000000);
    b->when.tv_nsec = (long)(opt->us_point % 1000000) * 1000;
    b->info = opt->info;
    b->info_arg = opt->info_arg;
    b->log = opt->log ? opt->log : session_log_stderr;
    b->log_arg = opt->log_arg;
    b->uid = getuid();
    b->gid = getgid();
    b->nbuckets = BR_NODE_BUCKETS0;
    b->nodes = calloc(b->nbuckets, sizeof *b->nodes);
    b->database = strdup(opt->database ? opt->database : "");
    b->sets = calloc(opt->nsets > 0 ? (size_t)opt->nsets : 1, sizeof *b->sets);
    if (!b->nodes || !b->database || !b->sets) goto oom;
    for (int i = 0; i < opt->nsets; i++) {
        if (!(b->sets[i] = strdup(opt->sets[i]))) goto oom;
        b->nsets++;
    }
    if (!realpath(opt->mountpoint, b->mountpoint)) {
        if (errno == ENOTCONN) snprintf(b->mountpoint, sizeof b->mountpoint, "%s", opt->mountpoint);
        else {
            rc = -errno;
            snprintf(why, cbwhy, "mount point %s: %s", opt->mountpoint, strerror(errno));
            goto fail;
        }
    }
    if ((rc = session_check_mountpoint(b->log, b->log_arg, b->mountpoint, why, cbwhy)) < 0) goto fail;
    if ((rc = load_tables(b, why, cbwhy)) < 0) goto fail;

    char mopts[] = "fsname=jetfs-browse,subtype=jetfs,ro,default_permissions";
    char *argv[] = {"jetfs", "-o", mopts, opt->debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(opt->debug ? 4 : 3, argv);
    b->se = fuse_session_new(&args, &browse_ops, sizeof browse_ops, b);
    fuse_opt_free_args(&args);
    if (!b->se) {
        rc = -EINVAL;
        snprintf(why, cbwhy, "cannot create the FUSE session (options %s)", mopts);
        goto fail;
    }
    if (fuse_session_mount(b->se, b->mountpoint) != 0) {
        rc = -EIO;
        snprintf(why, cbwhy, "cannot mount on %s (see the message above)", b->mountpoint);
        goto fail;
    }
    b->mounted = true;
    if ((rc = -pthread_create(&b->loop_thread, NULL, loop_main, b)) < 0) {
        snprintf(why, cbwhy, "cannot start the FUSE loop: %s", strerror(-rc));
        fuse_session_unmount(b->se);
        goto fail;
    }
    b->loop_started = true;
    char when[64];
    br_log(b, "browsing %s on %s: %u table(s), as of %s", b->database, b->mountpoint, b->ntables,
           utc(b->us_point, when, sizeof when));
    *out = b;
    return 0;
oom:
    rc = -ENOMEM;
    snprintf(why, cbwhy, "out of memory");
fail:
    jetfs_browse_free(b);
    return rc;
}

void jetfs_browse_unmount(struct jetfs_browse *b)
{
    pthread_mutex_lock(&b->mu);
    bool first = !b->stopping;
    b->stopping = true;
    pthread_mutex_unlock(&b->mu);
    if (!first || !b->se || !b->loop_started) return;
    /* Unmounting aborts the connection, which wakes every loop thread. */
    fuse_session_exit(b->se);
    session_detach_mount(b->mountpoint);
}

void jetfs_browse_wait(struct jetfs_browse *b)
{
    if (b->loop_started) {
        pthread_join(b->loop_thread, NULL);
        b->loop_started = false;
    }
}

void jetfs_browse_free(struct jetfs_browse *b)
{
    if (!b) return;
    jetfs_browse_wait(b);
    if (b->se) fuse_session_destroy(b->se);
    if (b->err_unlogged) br_log(b, "(%lu more EIO answers were not logged)", b->err_unlogged);
    if (b->eio_answers) br_log(b, "%lu request(s) answered EIO in this mount; the last: %s", b->eio_answers,
                               b->last_error);
    /* No request runs any more: what was never released goes now. */
    while (b->files) {
        struct br_file *f = b->files;
        b->files = f->next;
        free(f->data);
        free(f);
    }
    while (b->dirs) {
        struct br_dir *d = b->dirs;
        b->dirs = d->next;
        pthread_mutex_destroy(&d->mu);
        free(d->wstart);
        free(d->wbytes);
        free(d);
    }
    while (b->idle) {
        struct br_sess *s = b->idle;
        b->idle = s->next;
        sess_end(b, s);
    }
    if (b->nodes) {
        for (size_t i = 0; i < b->nbuckets; i++)
            while (b->nodes[i]) {
                struct br_node *n = b->nodes[i];
                b->nodes[i] = n->next;
                free(n);
            }
        free(b->nodes);
    }
    for (uint32_t i = 0; i < b->ntables; i++) free(b->tables[i].raw);
    free(b->tables);
    for (int i = 0; i < b->nsets; i++) free(b->sets[i]);
    free(b->sets);
    free(b->database);
    pthread_mutex_destroy(&b->err_mu);
    pthread_mutex_destroy(&b->open_mu);
    pthread_mutex_destroy(&b->nodes_mu);
    pthread_mutex_destroy(&b->pool_mu);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

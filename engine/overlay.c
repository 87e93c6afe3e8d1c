/*
 * overlay.c -- copy-on-write files over read-only originals (overlay.h).
 *
 * Each mapped file is its original plus a table of 4 KiB chunks that were
 * written: a read takes each chunk from the table when it is there and from
 * the original otherwise; a write first copies the chunk's current bytes
 * into the table.  Truncation hides the original past the new size
 * (base_limit), so a file cut and grown again reads zeros there, as a real
 * file does.  Chunks live in memory until the overlay's limit, then in the
 * spill file; nothing is ever written to an original.
 *
 * Invariants: a file's chunk table and size change only under its overlay's
 * lock held exclusively; a descriptor in the fd table names a live file of
 * a live overlay (ovl_destroy requires every one closed).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "lockrank.h"
#include "os.h"
#include "overlay.h"

#define CHUNK 4096u
#define EMPTY UINT64_MAX

struct chunk {
    uint64_t idx;      /* chunk number in the file, EMPTY for a free slot */
    uint8_t *mem;      /* its bytes in memory, or NULL: at spill in the spill file */
    uint64_t spill;
};

struct ofile {
    struct ofile *next;
    char path[PATH_MAX];      /* where it is mapped (inside the scratch directory) */
    char original[PATH_MAX];
    uint64_t size;            /* its size as the engine sees it */
    uint64_t base_limit;      /* bytes of the original that still show through */
    bool unlinked;            /* removed or renamed over: no path names it */
    struct chunk *tab;        /* open addressing, cap a power of two, at most half full */
    size_t cap, n;
};

struct ovl {
    struct ovl *next;
    char dir[PATH_MAX];
    size_t dirlen;
    pthread_rwlock_t lock;
    struct ofile *files;
    uint64_t mem_limit, mem_used, nspilled;
    int spill_fd;
    uint64_t spill_next;
    /* Chunk memory comes from 1 MiB blocks (a replay adds tens of
     * thousands of chunks; one malloc each showed in profiles); a chunk
     * dropped by truncation goes on a free list. */
    struct block { struct block *next; } *blocks;
    uint8_t *carve;           /* the rest of the newest block */
    size_t carve_left;
    void *free_chunks;
};

/* The process's overlays and their open descriptors. */
static struct {
    pthread_mutex_t mu;
    struct ovl *list;
    /* The VFS in force when the first overlay was created: atomic, since
     * a thread that loaded the overlay's table just before the last
     * overlay went may still pass a call down through it. */
    _Atomic(const struct os_vfs *) below;
    struct ofd {
        struct ovl *o;
        struct ofile *f;
    } *byfd;                     /* indexed by descriptor */
    size_t nbyfd;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const struct os_vfs overlay_vfs;

#define BELOW() atomic_load(&G.below)

/* ---- chunk table ---- */

static size_t slot_of(const struct ofile *f, uint64_t idx)
{
    return (size_t)((idx * 0x9E3779B97F4A7C15ull) >> 17) & (f->cap - 1);
}

static struct chunk *chunk_find(const struct ofile *f, uint64_t idx)
{
    if (!f->n) return NULL;
    for (size_t i = slot_of(f, idx);; i = (i + 1) & (f->cap - 1)) {
        if (f->tab[i].idx == idx) return &f->tab[i];
        if (f->tab[i].idx == EMPTY) return NULL;
    }
}

static JET_ERR table_resize(struct ofile *f, size_t cap)
{
    struct chunk *nt = malloc(cap * sizeof *nt), *old = f->tab;
    if (!nt) return JET_errOutOfMemory;
    for (size_t i = 0; i < cap; i++) nt[i].idx = EMPTY;
    size_t oldcap = f->cap;
    f->tab = nt;
    f->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].idx == EMPTY) continue;
        size_t j = slot_of(f, old[i].idx);
        while (nt[j].idx != EMPTY) j = (j + 1) & (cap - 1);
        nt[j] = old[i];
    }
    free(old);
    return JET_errSuccess;
}

/* ---- reading and writing a mapped file (under the overlay's lock) ---- */

static JET_ERR read_original(struct ovl *o, int base_fd, const struct ofile *f, uint8_t *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    if (off < f->base_limit) {
        size_t want = f->base_limit - off < n ? (size_t)(f->base_limit - off) : n;
        JET_ERR err = BELOW()->pread(base_fd, buf, want, off, &got);
        if (err < 0) return jet_report(err, "%s: reading the backup set's file at offset %llu failed", f->original,
                                       (unsigned long long)off);
        (void)o;
    }
    memset(buf + got, 0, n - got);
    return JET_errSuccess;
}

static JET_ERR read_chunk(struct ovl *o, const struct chunk *c, uint8_t *buf, size_t n, size_t in)
{
    if (c->mem) {
        memcpy(buf, c->mem + in, n);
        return JET_errSuccess;
    }
    size_t got = 0;
    JET_ERR err = BELOW()->pread(o->spill_fd, buf, n, c->spill + in, &got);
    if (err >= 0 && got != n) err = JET_errDiskIO;
    if (err < 0) return jet_report(err, "%s: reading the browse overlay's spill file failed", o->dir);
    return JET_errSuccess;
}

static JET_ERR file_read(struct ovl *o, struct ofile *f, int base_fd, uint8_t *buf, size_t n, uint64_t off,
                         size_t *pgot)
{
    size_t got = off >= f->size ? 0 : (f->size - off < n ? (size_t)(f->size - off) : n);
    JET_ERR err = JET_errSuccess;
    for (size_t done = 0; err >= 0 && done < got;) {
        uint64_t pos = off + done;
        size_t in = (size_t)(pos % CHUNK), take = CHUNK - in < got - done ? CHUNK - in : got - done;
        const struct chunk *c = chunk_find(f, pos / CHUNK);
        if (c) {
            err = read_chunk(o, c, buf + done, take, in);
        } else {
            /* One read of the original for the whole run of chunks the
             * overlay does not hold. */
            size_t run = take;
            while (done + run < got && !chunk_find(f, (pos + run) / CHUNK))
                run += CHUNK < got - done - run ? CHUNK : got - done - run;
            err = read_original(o, base_fd, f, buf + done, run, pos);
            take = run;
        }
        done += take;
    }
    *pgot = got;
    return err;
}

#define BLOCK_BYTES ((size_t)1 << 20)

static uint8_t *chunk_alloc(struct ovl *o)
{
    if (o->free_chunks) {
        uint8_t *c = o->free_chunks;
        memcpy(&o->free_chunks, c, sizeof(void *));
        return c;
    }
    if (o->carve_left < CHUNK) {
        struct block *b = malloc(BLOCK_BYTES);
        if (!b) return NULL;
        b->next = o->blocks;
        o->blocks = b;
        o->carve = (uint8_t *)b + CHUNK; /* the first chunk's room holds the link */
        o->carve_left = BLOCK_BYTES - CHUNK;
    }
    uint8_t *c = o->carve;
    o->carve += CHUNK;
    o->carve_left -= CHUNK;
    return c;
}

static void chunk_free(struct ovl *o, uint8_t *c)
{
    memcpy(c, &o->free_chunks, sizeof(void *));
    o->free_chunks = c;
}

/* The chunk idx of f, created from the file's current bytes if absent
 * (unless the caller overwrites it whole). */
static JET_ERR chunk_get(struct ovl *o, struct ofile *f, int base_fd, uint64_t idx, bool whole, struct chunk **pc)
{
    struct chunk *c = chunk_find(f, idx);
    if (c) {
        *pc = c;
        return JET_errSuccess;
    }
    JET_ERR err = JET_errSuccess;
    if ((f->n + 1) * 2 > f->cap && (err = table_resize(f, f->cap ? f->cap * 2 : 64)) < 0) return err;
    bool spill = o->mem_used + CHUNK > o->mem_limit;
    uint8_t *bytes = spill ? malloc(CHUNK) : chunk_alloc(o);
    if (!bytes) return JET_errOutOfMemory;
    size_t got = 0;
    if (!whole) {
        if ((err = file_read(o, f, base_fd, bytes, CHUNK, idx * CHUNK, &got)) < 0) goto out;
        memset(bytes + got, 0, CHUNK - got);
    }
    struct chunk nc = {idx, bytes, 0};
    if (spill) {
        if (o->spill_fd < 0) {
            char sp[PATH_MAX + 32];
            snprintf(sp, sizeof sp, "%s/.overlay-spill", o->dir);
            if ((err = BELOW()->open(sp, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE | OS_OPEN_EXCL, &o->spill_fd)) < 0) {
                o->spill_fd = -1;
                err = jet_report(err, "%s: cannot create the browse overlay's spill file", sp);
                goto out;
            }
            (void)BELOW()->unlink(sp); /* nothing but this descriptor needs it */
        }
        if ((err = BELOW()->pwrite(o->spill_fd, bytes, CHUNK, o->spill_next)) < 0) {
            err = jet_report(err, "%s: writing the browse overlay's spill file failed (the temporary directory full?)",
                             o->dir);
            goto out;
        }
        nc.mem = NULL;
        nc.spill = o->spill_next;
        o->spill_next += CHUNK;
        o->nspilled++;
        free(bytes);
    } else {
        o->mem_used += CHUNK;
    }
    bytes = NULL;
    spill = false;
    size_t i = slot_of(f, idx);
    while (f->tab[i].idx != EMPTY) i = (i + 1) & (f->cap - 1);
    f->tab[i] = nc;
    f->n++;
    *pc = &f->tab[i];
out:
    if (bytes && spill) free(bytes);
    else if (bytes) chunk_free(o, bytes);
    return err;
}

static JET_ERR file_write(struct ovl *o, struct ofile *f, int base_fd, const uint8_t *buf, size_t n, uint64_t off)
{
    JET_ERR err = JET_errSuccess;
    for (size_t done = 0; err >= 0 && done < n;) {
        uint64_t pos = off + done;
        size_t in = (size_t)(pos % CHUNK), take = CHUNK - in < n - done ? CHUNK - in : n - done;
        struct chunk *c;
        if ((err = chunk_get(o, f, base_fd, pos / CHUNK, take == CHUNK, &c)) < 0) break;
        if (c->mem) memcpy(c->mem + in, buf + done, take);
        else if ((err = BELOW()->pwrite(o->spill_fd, buf + done, take, c->spill + in)) < 0)
            err = jet_report(err, "%s: writing the browse overlay's spill file failed", o->dir);
        done += take;
    }
    if (err >= 0 && off + n > f->size) f->size = off + n;
    return err;
}

static JET_ERR file_truncate(struct ovl *o, struct ofile *f, int base_fd, uint64_t size)
{
    JET_ERR err = JET_errSuccess;
    if (size < f->size) {
        if (size % CHUNK) {
            /* The bytes past the end in the last chunk must read as zeros if
             * the file grows again. */
            struct chunk *c;
            if ((err = chunk_get(o, f, base_fd, size / CHUNK, false, &c)) < 0) return err;
            size_t in = (size_t)(size % CHUNK);
            if (c->mem) memset(c->mem + in, 0, CHUNK - in);
            else {
                uint8_t z[CHUNK] = {0};
                if ((err = BELOW()->pwrite(o->spill_fd, z, CHUNK - in, c->spill + in)) < 0) return err;
            }
        }
        uint64_t first_gone = (size + CHUNK - 1) / CHUNK;
        for (size_t i = 0; i < f->cap; i++) {
            struct chunk *c = &f->tab[i];
            if (c->idx == EMPTY || c->idx < first_gone) continue;
            if (c->mem) {
                chunk_free(o, c->mem);
                o->mem_used -= CHUNK;
            } else {
                o->nspilled--; /* its spill slot stays unused: truncation is rare */
            }
            c->idx = EMPTY;
            f->n--;
        }
        if (f->cap && (err = table_resize(f, f->cap)) < 0) return err; /* rehash past the holes */
        if (size < f->base_limit) f->base_limit = size;
    }
    f->size = size;
    return err;
}

/* ---- finding what a path or a descriptor names ---- */

/* The overlay whose scratch directory holds path, and the mapped file at
 * path if any (G.mu held).  Paths are compared as given and, failing that,
 * with their directory resolved (a relative or symlinked spelling). */
static struct ovl *owner_of(const char *path, char *canon, size_t cb)
{
    snprintf(canon, cb, "%s", path);
    for (int pass = 0; pass < 2; pass++) {
        for (struct ovl *o = G.list; o; o = o->next)
            if (!strncmp(canon, o->dir, o->dirlen) && canon[o->dirlen] == '/') return o;
        if (pass) break;
        char dir[PATH_MAX], real[PATH_MAX];
        os_dirname(dir, sizeof dir, path);
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (!realpath(dir, real) || (size_t)snprintf(canon, cb, "%s/%s", real, base) >= cb) return NULL;
    }
    return NULL;
}

static struct ofile *file_at(struct ovl *o, const char *canon)
{
    for (struct ofile *f = o->files; f; f = f->next)
        if (!f->unlinked && !strcmp(f->path, canon)) return f;
    return NULL;
}

static bool fd_lookup(int fd, struct ovl **po, struct ofile **pf)
{
    bool found = false;
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    if (fd >= 0 && (size_t)fd < G.nbyfd && G.byfd[fd].o) {
        *po = G.byfd[fd].o;
        *pf = G.byfd[fd].f;
        found = true;
    }
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    return found;
}

/* ---- the VFS ---- */

static JET_ERR ovl_open(const char *path, int flags, int *pfd)
{
    char canon[PATH_MAX];
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    struct ovl *o = owner_of(path, canon, sizeof canon);
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    if (!o) return BELOW()->open(path, flags, pfd);
    lk_wrlock(&o->lock, LK_OVERLAY);
    JET_ERR err;
    struct ofile *f = file_at(o, canon);
    if (!f) {
        err = BELOW()->open(path, flags, pfd);
        goto out;
    }
    if ((flags & OS_OPEN_CREATE) && (flags & OS_OPEN_EXCL)) {
        err = JET_errFileAccessDenied;
        goto out;
    }
    if ((err = BELOW()->open(f->original, OS_OPEN_READ, pfd)) < 0) goto out;
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    if ((size_t)*pfd >= G.nbyfd) {
        size_t n = (size_t)*pfd + 64;
        struct ofd *nb = realloc(G.byfd, n * sizeof *nb);
        if (nb) {
            memset(nb + G.nbyfd, 0, (n - G.nbyfd) * sizeof *nb);
            G.byfd = nb;
            G.nbyfd = n;
        }
    }
    if ((size_t)*pfd < G.nbyfd) G.byfd[*pfd] = (struct ofd){o, f};
    else err = JET_errOutOfMemory;
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    if (err < 0) BELOW()->close(*pfd);
out:
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return err;
}

static JET_ERR ovl_close(int fd)
{
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    if (fd >= 0 && (size_t)fd < G.nbyfd) G.byfd[fd] = (struct ofd){0};
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    return BELOW()->close(fd);
}

static JET_ERR ovl_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot)
{
    struct ovl *o;
    struct ofile *f;
    if (!fd_lookup(fd, &o, &f)) return BELOW()->pread(fd, buf, n, off, pgot);
    lk_rdlock(&o->lock, LK_OVERLAY);
    JET_ERR err = file_read(o, f, fd, buf, n, off, pgot);
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return err;
}

static JET_ERR ovl_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    struct ovl *o;
    struct ofile *f;
    if (!fd_lookup(fd, &o, &f)) return BELOW()->pwrite(fd, buf, n, off);
    lk_wrlock(&o->lock, LK_OVERLAY);
    JET_ERR err = file_write(o, f, fd, buf, n, off);
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return err;
}

static JET_ERR ovl_fsync(int fd)
{
    struct ovl *o;
    struct ofile *f;
    /* The overlay lives as long as the process: there is nothing to make durable. */
    if (fd_lookup(fd, &o, &f)) return JET_errSuccess;
    return BELOW()->fsync(fd);
}

static JET_ERR ovl_ftruncate(int fd, uint64_t size)
{
    struct ovl *o;
    struct ofile *f;
    if (!fd_lookup(fd, &o, &f)) return BELOW()->ftruncate(fd, size);
    lk_wrlock(&o->lock, LK_OVERLAY);
    JET_ERR err = file_truncate(o, f, fd, size);
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return err;
}

static JET_ERR ovl_fsize(int fd, uint64_t *psize)
{
    struct ovl *o;
    struct ofile *f;
    if (!fd_lookup(fd, &o, &f)) return BELOW()->fsize(fd, psize);
    lk_rdlock(&o->lock, LK_OVERLAY);
    *psize = f->size;
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return JET_errSuccess;
}

static JET_ERR ovl_unlink(const char *path)
{
    char canon[PATH_MAX];
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    struct ovl *o = owner_of(path, canon, sizeof canon);
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    if (o) {
        lk_wrlock(&o->lock, LK_OVERLAY);
        struct ofile *f = file_at(o, canon);
        if (f) f->unlinked = true;
        lk_rwunlock(&o->lock, LK_OVERLAY);
    }
    return BELOW()->unlink(path); /* the placeholder, or a file of the scratch directory */
}

static JET_ERR ovl_rename(const char *from, const char *to)
{
    char cfrom[PATH_MAX], cto[PATH_MAX];
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    struct ovl *o = owner_of(from, cfrom, sizeof cfrom), *o2 = owner_of(to, cto, sizeof cto);
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    if (!o && !o2) return BELOW()->rename(from, to);
    if (o != o2) return jet_report(JET_errInvalidPath, "rename of %s to %s: across a browse overlay's edge", from, to);
    lk_wrlock(&o->lock, LK_OVERLAY);
    struct ofile *f = file_at(o, cfrom), *over = file_at(o, cto);
    JET_ERR err = BELOW()->rename(from, to);
    if (err >= 0) {
        if (over && over != f) over->unlinked = true;
        if (f) snprintf(f->path, sizeof f->path, "%s", cto);
    }
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return err;
}

static JET_ERR ovl_sync_dir(const char *dirpath) { return BELOW()->sync_dir(dirpath); }

static JET_ERR ovl_lock(int fd)
{
    struct ovl *o;
    struct ofile *f;
    /* The descriptor is the set's own file: locking it would keep a second
     * browse of the same set out, and the overlay is this process's alone. */
    if (fd_lookup(fd, &o, &f)) return JET_errSuccess;
    return BELOW()->lock(fd);
}

static JET_ERR ovl_identity(int fd, const char *path, struct os_identity *id)
{
    struct ovl *o;
    struct ofile *f;
    if (!fd_lookup(fd, &o, &f)) return BELOW()->identity(fd, path, id);
    char canon[PATH_MAX];
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    (void)owner_of(path, canon, sizeof canon);
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    lk_rdlock(&o->lock, LK_OVERLAY);
    memset(id, 0, sizeof *id);
    id->size = f->size;
    id->nlink = f->unlinked ? 0 : 1;
    id->path_missing = f->unlinked;
    id->path_other = !f->unlinked && strcmp(canon, f->path) != 0;
    lk_rwunlock(&o->lock, LK_OVERLAY);
    return JET_errSuccess;
}

static const struct os_vfs overlay_vfs = {
    ovl_open, ovl_close, ovl_pread, ovl_pwrite, ovl_fsync, ovl_ftruncate,
    ovl_fsize, ovl_unlink, ovl_rename, ovl_sync_dir, ovl_lock, ovl_identity,
};

/* ---- overlays ---- */

static void remove_dir_files(const char *dir);

/* A browse killed (kill -9, a crash) leaves its scratch directory: the
 * next one in the same parent removes those whose process is gone, so
 * they do not pile up in /tmp.  The pid is in the name for that. */
static void remove_stale(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = 0, n = 0;
        if (sscanf(e->d_name, "jetfs-browse.%d.%n", &pid, &n) != 1 || n == 0 || pid <= 0) continue;
        if (kill(pid, 0) == 0 || errno != ESRCH) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        remove_dir_files(p);
        if (rmdir(p) == 0) fprintf(stderr, "jet: removed %s, left by a browse that did not end (process %d)\n", p, pid);
    }
    closedir(d);
}

JET_ERR ovl_create(const char *parent, uint64_t mem_limit, struct ovl **po)
{
    struct ovl *o = calloc(1, sizeof *o);
    if (!o) return JET_errOutOfMemory;
    char tmpl[PATH_MAX];
    if (!parent || !*parent) parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    remove_stale(parent);
    if ((size_t)snprintf(tmpl, sizeof tmpl, "%s/jetfs-browse.%d.XXXXXX", parent, (int)getpid()) >= sizeof tmpl) {
        free(o);
        return jet_report(JET_errInvalidPath, "%s: the temporary directory's path is too long", parent);
    }
    if (!mkdtemp(tmpl) || !realpath(tmpl, o->dir)) {
        int e = errno;
        free(o);
        return jet_report(os_errno_to_jet(e), "%s: cannot create a scratch directory for the browse overlay: %s",
                          parent, strerror(e));
    }
    o->dirlen = strlen(o->dir);
    o->mem_limit = mem_limit ? mem_limit : (uint64_t)256 << 20;
    o->spill_fd = -1;
    pthread_rwlock_init(&o->lock, NULL);
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    if (!G.list) {
        atomic_store(&G.below, os_vfs());
        os_set_vfs(&overlay_vfs);
    }
    o->next = G.list;
    G.list = o;
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    *po = o;
    return JET_errSuccess;
}

const char *ovl_dir(const struct ovl *o) { return o->dir; }

JET_ERR ovl_map(struct ovl *o, const char *path, const char *original)
{
    struct ofile *f = calloc(1, sizeof *f);
    JET_ERR err = f ? JET_errSuccess : JET_errOutOfMemory;
    int fd = -1;
    if (err < 0) return err;
    if (strncmp(path, o->dir, o->dirlen) || path[o->dirlen] != '/' || strlen(path) >= sizeof f->path ||
        strlen(original) >= sizeof f->original) {
        err = jet_report(JET_errInvalidPath, "%s: not a name inside the browse overlay %s", path, o->dir);
        goto out;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->original, sizeof f->original, "%s", original);
    if ((err = BELOW()->open(original, OS_OPEN_READ, &fd)) < 0 || (err = BELOW()->fsize(fd, &f->size)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot read the backup set's file: %s", original, os_reason(err, eb, sizeof eb));
        goto out;
    }
    f->base_limit = f->size;
    /* The placeholder that listings and existence tests see. */
    int pfd;
    if ((err = BELOW()->open(path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE | OS_OPEN_EXCL, &pfd)) < 0) {
        err = jet_report(err, "%s: cannot create the browse overlay's name for %s", path, original);
        goto out;
    }
    BELOW()->close(pfd);
    lk_wrlock(&o->lock, LK_OVERLAY);
    f->next = o->files;
    o->files = f;
    lk_rwunlock(&o->lock, LK_OVERLAY);
    f = NULL;
out:
    if (fd >= 0) BELOW()->close(fd);
    free(f);
    return err;
}

void ovl_usage(struct ovl *o, uint64_t *pbytes, uint64_t *pspilled)
{
    lk_rdlock(&o->lock, LK_OVERLAY);
    *pbytes = o->mem_used + o->nspilled * CHUNK;
    *pspilled = o->nspilled * CHUNK;
    lk_rwunlock(&o->lock, LK_OVERLAY);
}

static void remove_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno == EISDIR) {
            remove_dir_files(p);
            rmdir(p);
        }
    }
    closedir(d);
}

void ovl_destroy(struct ovl *o)
{
    if (!o) return;
    lk_mutex_lock(&G.mu, LK_OVERLAY_FDS);
    for (struct ovl **pp = &G.list; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    for (size_t i = 0; i < G.nbyfd; i++)
        if (G.byfd[i].o == o) {
            fprintf(stderr, "jet: browse overlay %s destroyed with descriptor %zu still open\n", o->dir, i);
            G.byfd[i] = (struct ofd){0};
        }
    if (!G.list) {
        os_set_vfs(BELOW());
        free(G.byfd);
        G.byfd = NULL;
        G.nbyfd = 0;
    }
    lk_mutex_unlock(&G.mu, LK_OVERLAY_FDS);
    while (o->files) {
        struct ofile *f = o->files;
        o->files = f->next;
        free(f->tab);
        free(f);
    }
    while (o->blocks) {
        struct block *b = o->blocks;
        o->blocks = b->next;
        free(b);
    }
    if (o->spill_fd >= 0) BELOW()->close(o->spill_fd);
    remove_dir_files(o->dir);
    rmdir(o->dir);
    pthread_rwlock_destroy(&o->lock);
    free(o);
}

/*
 * dwb.c -- the double-write file (protocol and layout in dwb.h).
 *
 * Owns: the file descriptor, the staging buffer (header then images, one
 * pwrite per stage) and the mutex that makes a stage and the in-place
 * writes after it one unit.  Lock order: dwb mutex -> a database's
 * snap_lock (db_write_page); no other engine lock is taken under it, and
 * the WAL rule's log flush happens before the stage, outside it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "dbfile.h"
#include "diag.h"
#include "dwb.h"
#include "lockrank.h"
#include "os.h"
#include "page.h"

#define DWB_MAGIC 0x4257444Au /* "JDWB" */
#define DWB_VERSION 1u
#define DWB_FIXED 32u
#define DWB_MAX_DBS 8u
#define DWB_PATH_MAX 1024u

struct dwb {
    pthread_mutex_t mu;
    int fd;
    uint32_t page_size;
    uint32_t hdr_cap;       /* room for the header at most */
    uint32_t hdr_len;       /* this stage's */
    uint8_t *buf;           /* hdr_cap + DWB_MAX_PAGES * page_size */
    char path[1100];
};

JET_ERR dwb_path(char *buf, size_t cb, const char *system_path, const char *base)
{
    char name[16];
    snprintf(name, sizeof name, "%s.dwb", base);
    return os_join(buf, cb, system_path, name);
}

static uint32_t round_up(uint32_t n, uint32_t to) { return (n + to - 1) / to * to; }

JET_ERR dwb_open(const char *path, uint32_t page_size, struct dwb **pd)
{
    struct dwb *d = calloc(1, sizeof *d);
    if (!d) return JET_errOutOfMemory;
    d->page_size = page_size;
    d->hdr_cap = round_up(DWB_FIXED + DWB_MAX_DBS * (10 + DWB_PATH_MAX) + DWB_MAX_PAGES * 8, page_size);
    d->buf = malloc((size_t)d->hdr_cap + (size_t)DWB_MAX_PAGES * page_size);
    if (!d->buf) {
        free(d);
        return JET_errOutOfMemory;
    }
    JET_ERR err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &d->fd);
    if (err >= 0 && (err = os_ftruncate(d->fd, 0)) < 0) os_close(d->fd);
    if (err < 0) {
        free(d->buf);
        free(d);
        return jet_report(err, "%s: cannot create the double-write file: %s", path, JetErrorString(err));
    }
    pthread_mutex_init(&d->mu, NULL);
    snprintf(d->path, sizeof d->path, "%s", path);
    *pd = d;
    return JET_errSuccess;
}

JET_ERR dwb_close(struct dwb *d, bool remove)
{
    if (!d) return JET_errSuccess;
    JET_ERR err = JET_errSuccess;
    /* Emptied rather than unlinked: the name stays ours, and an empty
     * file says "nothing to repair" as surely as a missing one. */
    if (remove) err = os_ftruncate(d->fd, 0);
    os_close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d->buf);
    free(d);
    return err;
}

void dwb_lock(struct dwb *d) { lk_mutex_lock(&d->mu, LK_DWB); }
void dwb_unlock(struct dwb *d) { lk_mutex_unlock(&d->mu, LK_DWB); }

const uint8_t *dwb_image(const struct dwb *d, size_t i) { return d->buf + d->hdr_len + i * d->page_size; }

JET_ERR dwb_stage(struct dwb *d, const struct dwb_page *pages, size_t n)
{
    uint32_t ps = d->page_size;
    uint64_t sigs[DWB_MAX_DBS];
    uint32_t ndbs = 0;
    if (n == 0 || n > DWB_MAX_PAGES) return jet_report(JET_errInvalidParameter, "dwb: %zu pages in one stage", n);
    uint8_t *h = d->buf;
    size_t off = DWB_FIXED;
    uint32_t which[DWB_MAX_PAGES];
    for (size_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < ndbs && sigs[k] != pages[i].db_signature) k++;
        if (k == ndbs) {
            size_t len = strlen(pages[i].db_path);
            if (ndbs == DWB_MAX_DBS || len >= DWB_PATH_MAX)
                return jet_report(JET_errInvalidParameter, "dwb: too many databases or path too long");
            sigs[ndbs++] = pages[i].db_signature;
            put_le64(h + off, pages[i].db_signature);
            put_le16(h + off + 8, (uint16_t)len);
            memcpy(h + off + 10, pages[i].db_path, len);
            off += 10 + len;
        }
        which[i] = k;
    }
    for (size_t i = 0; i < n; i++) {
        put_le32(h + off, which[i]);
        put_le32(h + off + 4, pages[i].pgno);
        off += 8;
    }
    d->hdr_len = round_up((uint32_t)off, ps);
    memset(h + off, 0, d->hdr_len - off);
    put_le32(h + 8, DWB_MAGIC);
    put_le32(h + 12, DWB_VERSION);
    put_le32(h + 16, ps);
    put_le32(h + 20, (uint32_t)n);
    put_le32(h + 24, ndbs);
    put_le32(h + 28, d->hdr_len);
    put_le64(h, XXH3_64bits(h + 8, d->hdr_len - 8));
    for (size_t i = 0; i < n; i++) {
        uint8_t *img = d->buf + d->hdr_len + i * ps;
        memcpy(img, pages[i].image, ps);
        page_seal(img, ps);
    }
    const char *what = "write";
    JET_ERR err = os_pwrite(d->fd, d->buf, d->hdr_len + n * ps, 0);
    if (err >= 0) {
        what = "fsync";
        err = os_fsync(d->fd);
    }
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: double-write file: %s failed: %s", d->path, what, os_reason(err, eb, sizeof eb));
    }
    return JET_errSuccess;
}

/* ---- repair ---- */

struct repair_db {
    uint64_t sig;
    char path[DWB_PATH_MAX];
    int fd;            /* -1: not opened (yet, or could not be) */
    bool tried, wrote;
};

static bool image_ok(const uint8_t *img, uint32_t ps, uint32_t pgno)
{
    return !page_is_zero(img, ps) && page_pgno(img) == pgno && get_le64(img) == page_checksum(img, ps);
}

static JET_ERR repair_open(struct repair_db *r, uint32_t ps)
{
    r->tried = true;
    if (!os_exists(r->path)) {
        fprintf(stderr, "jet: recovery: the double-write file names %s, which does not exist; nothing repaired there\n",
                r->path);
        return JET_errSuccess;
    }
    JET_ERR err = os_open(r->path, OS_OPEN_READ | OS_OPEN_WRITE, &r->fd);
    if (err < 0) {
        r->fd = -1;
        return jet_report(err, "recovery: %s (named by the double-write file) cannot be opened: %s", r->path,
                          JetErrorString(err));
    }
    struct db_header hdr;
    err = db_header_read(r->fd, r->path, &hdr);
    if (err < 0 || hdr.db_signature != r->sig || hdr.page_size != ps) {
        /* Another file now has the name: its pages are not ours to touch. */
        os_close(r->fd);
        r->fd = -1;
        return err < 0 ? err : JET_errSuccess;
    }
    return JET_errSuccess;
}

/*
 * Calls fn for every staged page of the file at path whose copy verifies,
 * with its database's signature and path.  A missing, empty or torn file
 * calls nothing (a stage cut short by the crash: no in-place write began
 * after it).  fn's error stops the walk and is returned.
 */
static JET_ERR dwb_walk(const char *path, uint32_t page_size,
                        JET_ERR (*fn)(void *arg, uint64_t sig, const char *db_path, uint32_t pgno, const uint8_t *img),
                        void *arg)
{
    JET_ERR err = JET_errSuccess;
    uint8_t *buf = NULL, *img = NULL;
    uint64_t sigs[DWB_MAX_DBS];
    char(*paths)[DWB_PATH_MAX] = NULL;
    uint32_t ndbs = 0, npages = 0, hdr_len = 0;
    uint64_t size = 0;
    int fd = -1;

    if (!os_exists(path)) return JET_errSuccess;
    if ((err = os_open(path, OS_OPEN_READ, &fd)) < 0)
        return jet_report(err, "%s: cannot open the double-write file: %s", path, JetErrorString(err));
    if ((err = os_fsize(fd, &size)) < 0) goto out;
    if (size < DWB_FIXED) goto out; /* empty: nothing was being written */
    uint8_t fixed[DWB_FIXED];
    if ((err = os_pread_full(fd, fixed, sizeof fixed, 0)) < 0) goto out;
    npages = get_le32(fixed + 20);
    ndbs = get_le32(fixed + 24);
    hdr_len = get_le32(fixed + 28);
    if (get_le32(fixed + 8) != DWB_MAGIC || get_le32(fixed + 12) != DWB_VERSION || get_le32(fixed + 16) != page_size ||
        npages == 0 || npages > DWB_MAX_PAGES || ndbs == 0 || ndbs > DWB_MAX_DBS || hdr_len % page_size ||
        hdr_len < DWB_FIXED || hdr_len > size || (size - hdr_len) / page_size < npages)
        goto out;
    if (!(buf = malloc(hdr_len)) || !(img = malloc(page_size)) || !(paths = malloc(DWB_MAX_DBS * sizeof *paths))) {
        err = JET_errOutOfMemory;
        goto out;
    }
    if ((err = os_pread_full(fd, buf, hdr_len, 0)) < 0) goto out;
    if (get_le64(buf) != XXH3_64bits(buf + 8, hdr_len - 8)) goto out;
    size_t off = DWB_FIXED;
    for (uint32_t k = 0; k < ndbs; k++) {
        uint32_t len = off + 10 <= hdr_len ? get_le16(buf + off + 8) : DWB_PATH_MAX;
        if (len >= DWB_PATH_MAX || off + 10 + len > hdr_len) goto out;
        sigs[k] = get_le64(buf + off);
        memcpy(paths[k], buf + off + 10, len);
        paths[k][len] = '\0';
        off += 10 + len;
    }
    if (off + (size_t)npages * 8 > hdr_len) goto out;
    for (uint32_t i = 0; i < npages; i++) {
        uint32_t k = get_le32(buf + off + 8 * i), pgno = get_le32(buf + off + 8 * i + 4);
        if (k >= ndbs) continue;
        if ((err = os_pread_full(fd, img, page_size, hdr_len + (uint64_t)i * page_size)) < 0) goto out;
        /* A copy that does not verify was being staged when the crash came:
         * the in-place write after it never began. */
        if (!image_ok(img, page_size, pgno)) continue;
        if ((err = fn(arg, sigs[k], paths[k], pgno, img)) < 0) goto out;
    }
out:
    free(buf);
    free(img);
    free(paths);
    if (fd >= 0) os_close(fd);
    return err;
}

struct repair_ctx {
    uint32_t ps;
    struct repair_db dbs[DWB_MAX_DBS];
    uint32_t ndbs;
    uint8_t *cur;
    unsigned repaired;
};

static JET_ERR repair_one(void *arg, uint64_t sig, const char *db_path, uint32_t pgno, const uint8_t *img)
{
    struct repair_ctx *x = arg;
    uint32_t ps = x->ps;
    JET_ERR err;
    struct repair_db *r = NULL;
    for (uint32_t k = 0; k < x->ndbs && !r; k++)
        if (x->dbs[k].sig == sig && strcmp(x->dbs[k].path, db_path) == 0) r = &x->dbs[k];
    if (!r) {
        if (x->ndbs == DWB_MAX_DBS) return JET_errSuccess;
        r = &x->dbs[x->ndbs++];
        r->sig = sig;
        snprintf(r->path, sizeof r->path, "%s", db_path);
        r->fd = -1;
        r->tried = r->wrote = false;
    }
    if (!r->tried && (err = repair_open(r, ps)) < 0) return err;
    if (r->fd < 0) return JET_errSuccess;
    if ((err = os_pread_full(r->fd, x->cur, ps, (uint64_t)pgno * ps)) < 0) return err;
    if (image_ok(x->cur, ps, pgno)) return JET_errSuccess;
    if ((err = os_pwrite(r->fd, img, ps, (uint64_t)pgno * ps)) < 0)
        return jet_report(err, "recovery: %s: putting back page %u failed: %s", r->path, pgno, JetErrorString(err));
    fprintf(stderr, "jet: recovery: %s: page %u was torn by the crash; put back whole from the double-write file\n",
            r->path, pgno);
    r->wrote = true;
    x->repaired++;
    return JET_errSuccess;
}

JET_ERR dwb_repair(const char *path, uint32_t page_size, unsigned *prepaired)
{
    struct repair_ctx x = {.ps = page_size};
    *prepaired = 0;
    if (!(x.cur = malloc(page_size))) return JET_errOutOfMemory;
    JET_ERR err = dwb_walk(path, page_size, repair_one, &x);
    for (uint32_t k = 0; k < x.ndbs; k++) {
        if (x.dbs[k].fd < 0) continue;
        if (err >= 0 && x.dbs[k].wrote) err = os_fsync(x.dbs[k].fd);
        os_close(x.dbs[k].fd);
    }
    free(x.cur);
    if (err >= 0) *prepaired = x.repaired;
    return err;
}

struct load_ctx {
    uint32_t ps;
    struct dwb_copy *v;
    size_t n;
};

static JET_ERR load_one(void *arg, uint64_t sig, const char *db_path, uint32_t pgno, const uint8_t *img)
{
    struct load_ctx *x = arg;
    (void)db_path;
    struct dwb_copy *nv = realloc(x->v, (x->n + 1) * sizeof *nv);
    if (!nv) return JET_errOutOfMemory;
    x->v = nv;
    if (!(nv[x->n].image = malloc(x->ps))) return JET_errOutOfMemory;
    memcpy(nv[x->n].image, img, x->ps);
    nv[x->n].db_signature = sig;
    nv[x->n].pgno = pgno;
    x->n++;
    return JET_errSuccess;
}

JET_ERR dwb_load(const char *path, uint32_t page_size, struct dwb_copy **pv, size_t *pn)
{
    struct load_ctx x = {page_size, NULL, 0};
    JET_ERR err = dwb_walk(path, page_size, load_one, &x);
    if (err < 0) {
        dwb_free_copies(x.v, x.n);
        return err;
    }
    *pv = x.v;
    *pn = x.n;
    return JET_errSuccess;
}

void dwb_free_copies(struct dwb_copy *v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i].image);
    free(v);
}

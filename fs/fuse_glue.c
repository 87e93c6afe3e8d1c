/*
 * fuse_glue.c -- libfuse3 low-level requests mapped onto the view.
 *
 * Owns: every caching decision and the per-thread read buffers.  The
 * session's lifecycle (mount, loop threads, watchdog, unmount) is
 * session.c's; everything a backup means is view.c's; this file only
 * translates requests into view calls and their answers into replies.
 *
 * Caching, and why it is correct:
 *  - A set file's node never changes (the engine serves the snapshot fixed
 *    at begin), so its attributes are cached for a day and its pages kept
 *    across opens (keep_cache).  A set that was only listed may give way to
 *    another kind, and a kind begun again gets new node ids (view.h), so a
 *    name inside a kind directory is never cached: each path walk asks the
 *    view which node the name is now.  Each mount is a new FUSE connection
 *    with its own inodes and page cache, so nothing cached outlives it.
 *  - What a sequential reader has passed is dropped from the mount's page
 *    cache behind it (view.h, "A sequential reader and the kernel's page
 *    cache"): the view says which range, and the dropper thread below asks
 *    the kernel to drop it (fuse_lowlevel_notify_inval_inode).  Not on the
 *    loop thread that served the read: an invalidation waits for every
 *    locked page of its range, and a page locked for a read that no loop
 *    thread is left to serve would wait forever.  Random readers and mmap
 *    keep the cache (the view starts no stream for them); a dropped page
 *    read again is served again, the same bytes.  With the engine's reads
 *    past the page cache (engine/backup.c, read_db), a full read of a set
 *    leaves neither copy of it in memory.
 *  - status changes all the time: direct I/O, attributes never cached.
 *  - A failed lookup is never cached (a refused begin may succeed later).
 *
 * Speed: reads are served by a pool of loop threads, each with its own
 * buffer; requests are up to 1 MiB (max_pages) and the mount's readahead
 * is raised to 1 MiB where the kernel lets us (root), so a sequential
 * reader sees few, large requests and then reads from the page cache.
 *
 * Priority (jetfs.h): a loop thread switches itself to SCHED_IDLE at its
 * first read of a set file, not when it starts, so that the begin (a
 * lookup or opendir, before any read of the session) runs at normal
 * priority: it holds the log's roll, which commits wait for, and a thread
 * the scheduler sets aside must never hold what commits wait for.  Reads
 * hold no engine lock a commit takes.  The switch is one-way for an
 * unprivileged process, and threads the loop starts inherit it.  The end
 * at unmount runs on the loop's own thread, which never reads; an explicit
 * end (the ioctl) is handed to the watchdog thread, which never reads
 * either; the watchdog's own aborts (space, idle) run there too.
 *
 * Locking: none of its own; the view locks what it shares (the open status
 * snapshots too); an explicit end is handed to session.c.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "jetfs.h"
#include "erofs.h"
#include "session.h"
#include "view.h"

#define CACHE_FOREVER 86400.0

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_key_init(void) { pthread_key_create(&buf_key, free); }

/*
 * A per-thread read buffer: no allocation per request.  It is one 2 MiB
 * aligned region the kernel may back with a huge page: the reply's copy
 * into the page cache pins the buffer 4 KiB at a time, and pinning pages
 * of one huge folio is much cheaper than pinning 256 small ones.
 */
#define BUF_ALIGN (2u << 20)
static void *thread_buffer(void)
{
    pthread_once(&buf_once, buf_key_init);
    void *b = pthread_getspecific(buf_key);
    if (b) return b;
    b = aligned_alloc(BUF_ALIGN, BUF_ALIGN > MAX_REQUEST ? BUF_ALIGN : MAX_REQUEST);
    if (!b) return NULL;
    /* Advice only: without huge pages the buffer works the same. */
    (void)madvise(b, BUF_ALIGN, MADV_HUGEPAGE);
    pthread_setspecific(buf_key, b);
    return b;
}

static struct jv_view *view_of(fuse_req_t req) { return ((struct jetfs *)fuse_req_userdata(req))->view; }

/* Once per thread: from here on this thread serves backup bytes only with
 * CPU time the live instance does not want (see the header comment). */
static _Thread_local bool thread_is_idle;
static void yield_to_instance(struct jetfs *fs)
{
    if (thread_is_idle || fs->normal_priority) return;
    struct sched_param sp = {.sched_priority = 0};
    int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    thread_is_idle = true; /* tried: a refusal is not retried on every read */
    if (rc != 0 && !atomic_exchange(&fs->priority_warned, true))
        fs_log(fs, "cannot serve backup reads at idle priority (%s): they compete with clients for the CPU",
               strerror(rc));
}

/* ---- the dropper: page-cache ranges passed by sequential readers ---- */

/* Queues d for the dropper.  A full queue merges d into an entry of the
 * same node it continues, else gives it up: dropping is advice. */
static void drop_later(struct jetfs *fs, const struct jv_drop *d)
{
    if (!d->len) return;
    pthread_mutex_lock(&fs->drop_mu);
    if (fs->dropper_started && !fs->drop_stop) {
        unsigned cap = sizeof fs->drops / sizeof fs->drops[0];
        if (fs->ndrops < cap) {
            fs->drops[fs->ndrops++] = *d;
        } else {
            for (unsigned i = 0; i < fs->ndrops; i++) {
                struct jv_drop *q = &fs->drops[i];
                if (q->ino == d->ino && q->off + q->len == d->off) {
                    q->len += d->len;
                    break;
                }
            }
        }
        pthread_cond_signal(&fs->drop_cv);
    }
    pthread_mutex_unlock(&fs->drop_mu);
}

static void *dropper_main(void *arg)
{
    struct jetfs *fs = arg;
    (void)pthread_setname_np(pthread_self(), "jetfs-drop");
    pthread_mutex_lock(&fs->drop_mu);
    for (;;) {
        while (!fs->ndrops && !fs->drop_stop) pthread_cond_wait(&fs->drop_cv, &fs->drop_mu);
        if (fs->drop_stop) break;
        struct jv_drop d = fs->drops[0];
        memmove(&fs->drops[0], &fs->drops[1], --fs->ndrops * sizeof fs->drops[0]);
        pthread_mutex_unlock(&fs->drop_mu);
        /* A node the kernel forgot meanwhile (-ENOENT) has nothing cached. */
        (void)fuse_lowlevel_notify_inval_inode(fs->se, d.ino, (off_t)d.off, (off_t)d.len);
        pthread_mutex_lock(&fs->drop_mu);
    }
    pthread_mutex_unlock(&fs->drop_mu);
    return NULL;
}

int glue_dropper_start(struct jetfs *fs)
{
    pthread_mutex_lock(&fs->drop_mu);
    int rc = -pthread_create(&fs->dropper_thread, NULL, dropper_main, fs);
    fs->dropper_started = rc == 0;
    pthread_mutex_unlock(&fs->drop_mu);
    return rc;
}

void glue_dropper_stop(struct jetfs *fs)
{
    pthread_mutex_lock(&fs->drop_mu);
    bool started = fs->dropper_started;
    fs->drop_stop = true;
    fs->ndrops = 0;
    pthread_cond_broadcast(&fs->drop_cv);
    pthread_mutex_unlock(&fs->drop_mu);
    if (!started) return;
    pthread_join(fs->dropper_thread, NULL);
    pthread_mutex_lock(&fs->drop_mu);
    fs->dropper_started = false;
    pthread_mutex_unlock(&fs->drop_mu);
}

static double attr_timeout(uint64_t ino) { return ino == JV_INO_STATUS ? 0.0 : CACHE_FOREVER; }

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    erofs_conn_init(conn, MAX_REQUEST);
}

static bool is_kind_dir(fuse_ino_t ino) { return ino >= JV_INO_KIND && ino < JV_INO_KIND + JV_NKINDS; }

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct jv_entry e;
    int rc = jv_lookup(view_of(req), parent, name, &e);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param p = {
        .ino = e.ino, .generation = 1, .attr = e.st,
        .attr_timeout = attr_timeout(e.ino), .entry_timeout = is_kind_dir(parent) ? 0.0 : CACHE_FOREVER,
    };
    fuse_reply_entry(req, &p);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    int rc = jv_getattr(view_of(req), ino, &st);
    if (rc < 0) fuse_reply_err(req, -rc);
    else fuse_reply_attr(req, &st, attr_timeout(ino));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int rc = is_kind_dir(ino) ? jv_begin(view_of(req), (enum jv_kind)(ino - JV_INO_KIND)) : 0;
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->cache_readdir = 1;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    struct jv_view *v = view_of(req);
    if (size > MAX_REQUEST) size = MAX_REQUEST;
    char *buf = malloc(size);
    struct jv_entry *ents = calloc(64, sizeof *ents);
    size_t used = 0;
    int err = 0;
    if (!buf || !ents) {
        err = ENOMEM;
        goto out;
    }
    for (off_t i = off;; i++) {
        struct jv_entry *e = &ents[0];
        if (i == 0 || i == 1) {
            memset(e, 0, sizeof *e);
            e->st.st_ino = ino;
            e->st.st_mode = S_IFDIR;
            snprintf(e->name, sizeof e->name, "%s", i == 0 ? "." : "..");
        } else {
            int n = jv_readdir(v, ino, (size_t)(i - 2), ents, 1);
            if (n < 0) {
                err = -n;
                goto out;
            }
            if (n == 0) break;
        }
        size_t need = fuse_add_direntry(req, buf + used, size - used, e->name, &e->st, i + 1);
        if (need > size - used) break;
        used += need;
    }
out:
    if (err) fuse_reply_err(req, err);
    else fuse_reply_buf(req, buf, used);
    free(buf);
    free(ents);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct jv_view *v = view_of(req);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (ino == JV_INO_STATUS) {
        uint64_t fh = 0;
        int rc = jv_status_open(v, &fh);
        if (rc < 0) {
            fuse_reply_err(req, -rc);
            return;
        }
        fi->fh = fh;
        fi->direct_io = 1;
        fuse_reply_open(req, fi);
        return;
    }
    int64_t h = jv_open(v, ino);
    if (h < 0) {
        fuse_reply_err(req, (int)-h);
        return;
    }
    fi->fh = (uint64_t)h;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    void *buf = size <= MAX_REQUEST ? thread_buffer() : NULL;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (ino == JV_INO_STATUS) {
        ssize_t n = jv_status_read(view_of(req), fi->fh, (uint64_t)off, buf, size);
        if (n < 0) fuse_reply_err(req, (int)-n);
        else fuse_reply_buf(req, buf, (size_t)n);
        return;
    }
    struct jetfs *fs = fuse_req_userdata(req);
    yield_to_instance(fs);
    struct jv_drop drop;
    ssize_t n = jv_read_drop(fs->view, (int64_t)fi->fh, (uint64_t)off, buf, size, &drop);
    if (n < 0) fuse_reply_err(req, (int)-n);
    else fuse_reply_buf(req, buf, (size_t)n);
    drop_later(fs, &drop);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct jetfs *fs = fuse_req_userdata(req);
    struct jv_drop drop = {0};
    if (ino == JV_INO_STATUS) jv_status_release(fs->view, fi->fh);
    else jv_release_drop(fs->view, (int64_t)fi->fh, &drop);
    fuse_reply_err(req, 0);
    drop_later(fs, &drop);
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
                     unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
    (void)arg, (void)fi, (void)in_buf, (void)in_bufsz, (void)out_bufsz;
    if (ino != JV_INO_STATUS || (flags & FUSE_IOCTL_DIR) ||
        (cmd != JETFS_IOC_END_NORMAL && cmd != JETFS_IOC_END_ABORT)) {
        fuse_reply_err(req, ENOTTY);
        return;
    }
    char why[1024];
    int rc = session_end_on_watchdog(fuse_req_userdata(req), cmd == JETFS_IOC_END_NORMAL ? JV_END_NORMAL : JV_END_ABORT, why,
                             sizeof why);
    if (rc < 0) fuse_reply_err(req, -rc);
    else fuse_reply_ioctl(req, rc, NULL, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255};
    fuse_reply_statfs(req, &sv);
}

/* No file carries extended attributes: an empty list, and ENODATA for any
 * name, so tar --xattrs, rsync -X and getfattr -d copy nothing quietly. */
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct stat st;
    int rc = jv_getattr(view_of(req), ino, &st);
    if (rc < 0) fuse_reply_err(req, -rc);
    else if (size == 0) fuse_reply_xattr(req, 0);
    else fuse_reply_buf(req, NULL, 0);
}
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    (void)name, (void)size;
    struct stat st;
    int rc = jv_getattr(view_of(req), ino, &st);
    fuse_reply_err(req, rc < 0 ? -rc : ENODATA);
}

const struct fuse_lowlevel_ops jetfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .ioctl = op_ioctl,
    .statfs = op_statfs,
    JETFS_EROFS_OPS,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
};

/*
 * crashvfs.c -- see crashvfs.h.
 *
 * Each inode written through the VFS gets a struct cv_file with its own
 * read/write descriptor (opened through /proc/self/fd, so it is a new open
 * file description: it shares no flock with the engine's and outlives the
 * engine's close) and the list of its unsynced operations.  An operation
 * keeps the bytes it replaced and the size before it, so undoing the list
 * newest first puts the file back exactly as its last fsync left it; the
 * kept bytes let a tear or a scramble then redo part of it.
 */
#include "crashvfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"
#include "testutil.h"

#define SECTOR 512u

struct cv_op {
    int trunc;              /* ftruncate to off; else pwrite of n bytes at off */
    uint64_t off;
    size_t n;
    uint8_t *data;          /* pwrite: the bytes written */
    uint64_t old_size;      /* the file's size before */
    uint64_t old_off;       /* old bytes: [old_off, old_off + old_n) */
    size_t old_n;
    uint8_t *old;
};

struct cv_file {
    dev_t dev;
    ino_t ino;
    char path[1024];
    int fd;                 /* ours; -1 until the first write */
    int refs;               /* the engine's descriptors open on it */
    struct cv_op *ops;
    size_t nops, cap;
    /* Operations taken off the front of ops so far (made durable, or
     * settled by a crash): ops[i] is operation dropped + i for good, so an
     * fsync that drops the lock can still find the ones it covers. */
    uint64_t dropped;
    struct cv_file *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct os_vfs vfs;
static struct cv_file *files;
static struct cv_file **by_fd;   /* the engine's descriptor -> its file */
static size_t nby_fd;
static int open_fds;
/* Written under mu; read without it by the calls that only fail after. */
static atomic_int crashed;
static long calls, at;
static enum crashvfs_mode mode;
static uint64_t rng;
static crashvfs_filter filter;
static void *filter_arg;
static struct crashvfs_report rep;
static long fail_nth, fail_seen;
static JET_ERR fail_err;
static crashvfs_filter fail_filter;
static void *fail_arg;
static char tear_suffix[256];
static uint64_t tear_off;

static const struct os_vfs *real(void) { return os_vfs_default(); }

static void die(const char *what)
{
    perror(what);
    abort();
}

static void op_free(struct cv_op *o)
{
    free(o->data);
    free(o->old);
}

static struct cv_file *file_of(int fd) { return fd >= 0 && (size_t)fd < nby_fd ? by_fd[fd] : NULL; }

static void file_release(struct cv_file *f)
{
    if (f->refs > 0 || f->nops > 0) return;
    for (struct cv_file **pp = &files; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    if (f->fd >= 0) close(f->fd);
    free(f->ops);
    free(f);
}

/* Context: mu.  The file fd names, remembered from its open. */
static struct cv_file *track(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0) die("crashvfs: fstat");
    struct cv_file *f = files;
    while (f && !(f->dev == st.st_dev && f->ino == st.st_ino)) f = f->next;
    if (!f) {
        if (!(f = calloc(1, sizeof *f))) die("crashvfs: calloc");
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->fd = -1;
        f->next = files;
        files = f;
    }
    if (path) snprintf(f->path, sizeof f->path, "%s", path);
    if ((size_t)fd >= nby_fd) {
        size_t n = (size_t)fd * 2 + 16;
        struct cv_file **nb = realloc(by_fd, n * sizeof *nb);
        if (!nb) die("crashvfs: realloc");
        memset(nb + nby_fd, 0, (n - nby_fd) * sizeof *nb);
        by_fd = nb;
        nby_fd = n;
    }
    by_fd[fd] = f;
    f->refs++;
    open_fds++;
    return f;
}

/* Context: mu.  The file behind the engine's fd, with our descriptor open. */
static struct cv_file *writable(int fd)
{
    struct cv_file *f = file_of(fd);
    if (!f) f = track(fd, NULL); /* opened before install: still tracked */
    if (f->fd < 0) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        if ((f->fd = open(p, O_RDWR | O_CLOEXEC)) < 0) die("crashvfs: reopen");
    }
    return f;
}

static uint64_t size_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) die("crashvfs: fstat");
    return (uint64_t)st.st_size;
}

static void read_exact(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("crashvfs: pread");
        done += (size_t)r;
    }
}

static void write_exact(int fd, const uint8_t *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("crashvfs: pwrite");
        done += (size_t)r;
    }
}

/* Context: mu.  Remembers what [off, off + n) held before an operation. */
static struct cv_op *op_add(struct cv_file *f, uint64_t off, uint64_t end)
{
    if (f->nops == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        struct cv_op *no = realloc(f->ops, nc * sizeof *no);
        if (!no) die("crashvfs: realloc");
        f->ops = no;
        f->cap = nc;
    }
    struct cv_op *o = &f->ops[f->nops++];
    memset(o, 0, sizeof *o);
    o->old_size = size_of(f->fd);
    if (end > o->old_size) end = o->old_size;
    if (off < end) {
        o->old_off = off;
        o->old_n = (size_t)(end - off);
        if (!(o->old = malloc(o->old_n))) die("crashvfs: malloc");
        read_exact(f->fd, o->old, o->old_n, off);
    }
    return o;
}

/* Where a tear of write o may cut (its prefix length), so that the prefix
 * misses at least one changed byte; 0 when no sector boundary allows it. */
static size_t tear_cut(const struct cv_op *o, uint64_t *r)
{
    if (o->trunc || o->n == 0) return 0;
    size_t last = o->n; /* index of the last byte that changes, o->n: none */
    for (size_t i = o->n; i-- > 0;) {
        uint64_t at_ = o->off + i;
        int changes = at_ >= o->old_off + o->old_n || at_ < o->old_off || o->old[at_ - o->old_off] != o->data[i];
        if (changes) {
            last = i;
            break;
        }
    }
    if (last == o->n) return 0;
    /* Boundaries b with off < b and b - off <= last. */
    uint64_t first = (o->off / SECTOR + 1) * SECTOR, lim = o->off + last;
    if (first > lim) return 0;
    uint64_t count = (lim - first) / SECTOR + 1;
    return (size_t)(first + (tu_rand(r) % count) * SECTOR - o->off);
}

static void undo(struct cv_file *f, const struct cv_op *o)
{
    if (ftruncate(f->fd, (off_t)o->old_size) != 0) die("crashvfs: ftruncate");
    if (o->old_n) write_exact(f->fd, o->old, o->old_n, o->old_off);
}

/* Context: mu.  Undoes f's unsynced operations, newest first. */
static void undo_all(struct cv_file *f)
{
    for (size_t i = f->nops; i-- > 0;) undo(f, &f->ops[i]);
}

static void redo(struct cv_file *f, const struct cv_op *o, size_t n)
{
    if (o->trunc) {
        if (ftruncate(f->fd, (off_t)o->off) != 0) die("crashvfs: ftruncate");
    } else if (n) {
        write_exact(f->fd, o->data, n, o->off);
    }
}

/* Context: mu.  The power cut; tf->ops[ti] is the write that armed it (tf NULL: none). */
static void crash_locked(struct cv_file *tf, size_t ti)
{
    uint64_t r = rng;
    struct cv_file *torn_f = NULL;
    size_t torn_i = 0, torn_n = 0;
    memset(&rep, 0, sizeof rep);
    rep.at_call = calls;
    rep.mode = (int)mode;
    /* TEAR tears the write asked for (crashvfs_tear_at), else the one
     * that armed the crash if it can, else one unsynced write at random
     * among those that can; SCRAMBLE tears one at random half the time. */
    if (mode == CRASHVFS_TEAR && tear_suffix[0]) {
        size_t sl = strlen(tear_suffix);
        for (struct cv_file *f = files; f && !torn_f; f = f->next) {
            size_t l = strlen(f->path);
            if (l < sl || strcmp(f->path + l - sl, tear_suffix) != 0) continue;
            for (size_t i = f->nops; i-- > 0 && !torn_f;)
                if (!f->ops[i].trunc && f->ops[i].off == tear_off && (torn_n = tear_cut(&f->ops[i], &r)) > 0) {
                    torn_f = f;
                    torn_i = i;
                }
        }
    }
    if (!torn_f && mode == CRASHVFS_TEAR && tf && (torn_n = tear_cut(&tf->ops[ti], &r)) > 0) {
        torn_f = tf;
        torn_i = ti;
    } else if (!torn_f && (mode == CRASHVFS_TEAR || (mode == CRASHVFS_SCRAMBLE && tu_rand(&r) % 2))) {
        size_t candidates = 0;
        for (struct cv_file *f = files; f; f = f->next)
            for (size_t i = 0; i < f->nops; i++) {
                uint64_t probe = r;
                if (tear_cut(&f->ops[i], &probe) == 0) continue;
                if (tu_rand(&r) % ++candidates == 0) {
                    torn_f = f;
                    torn_i = i;
                }
            }
        if (torn_f) torn_n = tear_cut(&torn_f->ops[torn_i], &r);
    }
    for (struct cv_file *f = files; f; f = f->next) {
        if (!f->nops) continue;
        rep.files++;
        undo_all(f);
        for (size_t i = 0; i < f->nops; i++) {
            const struct cv_op *o = &f->ops[i];
            if (f == torn_f && i == torn_i) {
                redo(f, o, torn_n);
                rep.torn = 1;
                snprintf(rep.torn_path, sizeof rep.torn_path, "%s", f->path);
                rep.torn_off = o->off;
                rep.torn_len = o->n;
                rep.torn_kept = torn_n;
            } else if (mode == CRASHVFS_SCRAMBLE && tu_rand(&r) % 2) {
                redo(f, o, o->n);
                rep.kept++;
            } else {
                rep.lost++;
            }
        }
        for (size_t i = 0; i < f->nops; i++) op_free(&f->ops[i]);
        f->dropped += f->nops;
        f->nops = 0;
    }
    crashed = 1;
    /* Files no descriptor of the engine holds any more are done with. */
    for (struct cv_file *f = files, *n; f; f = n) {
        n = f->next;
        file_release(f);
    }
}

/* Context: mu.  Counts a call; crashes when it is the armed one. */
static void count(int counted, struct cv_file *f, size_t opi)
{
    if (!counted) return;
    if (++calls == at && at > 0) crash_locked(f, opi);
}

static JET_ERR cv_open(const char *path, int flags, int *pfd)
{
    pthread_mutex_lock(&mu);
    JET_ERR err = crashed ? JET_errDiskIO : real()->open(path, flags, pfd);
    if (err >= 0) track(*pfd, path);
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_close(int fd)
{
    pthread_mutex_lock(&mu);
    struct cv_file *f = file_of(fd);
    if (f) {
        by_fd[fd] = NULL;
        f->refs--;
        open_fds--;
        file_release(f);
    }
    JET_ERR err = real()->close(fd);
    if (crashed) err = JET_errDiskIO;
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->pread(fd, buf, n, off, pgot);
}

static JET_ERR cv_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    pthread_mutex_lock(&mu);
    if (crashed) {
        pthread_mutex_unlock(&mu);
        return JET_errDiskIO;
    }
    struct cv_file *f = writable(fd);
    if (fail_nth > 0 && (!fail_filter || fail_filter(fail_arg, f->path, off, n)) && ++fail_seen == fail_nth) {
        fail_nth = 0;
        pthread_mutex_unlock(&mu);
        return fail_err;
    }
    struct cv_op *o = op_add(f, off, off + n);
    size_t opi = f->nops - 1;
    JET_ERR err = real()->pwrite(fd, buf, n, off);
    if (err < 0) {
        /* Nothing (or an unknown part) was written: put it back. */
        undo(f, o);
        op_free(o);
        f->nops--;
        pthread_mutex_unlock(&mu);
        return err;
    }
    o->off = off;
    o->n = n;
    if (n && !(o->data = malloc(n))) die("crashvfs: malloc");
    memcpy(o->data, buf, n);
    count(filter ? filter(filter_arg, f->path, off, n) : 1, f, opi);
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_ftruncate(int fd, uint64_t size)
{
    pthread_mutex_lock(&mu);
    if (crashed) {
        pthread_mutex_unlock(&mu);
        return JET_errDiskIO;
    }
    struct cv_file *f = writable(fd);
    struct cv_op *o = op_add(f, size, UINT64_MAX);
    o->trunc = 1;
    o->off = size;
    JET_ERR err = real()->ftruncate(fd, size);
    if (err < 0) {
        op_free(o);
        f->nops--;
    } else {
        count(!filter, NULL, 0);
    }
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_fsync(int fd)
{
    pthread_mutex_lock(&mu);
    if (crashed) {
        pthread_mutex_unlock(&mu);
        return JET_errDiskIO;
    }
    struct cv_file *f = file_of(fd);
    /* Counted from the file's first operation, not an index into ops:
     * another thread's fsync of the same file (the checkpointer's and an
     * evicting session's of the database) may land while the lock is
     * dropped and take ops off the front; an index taken now would then
     * free them a second time, or free writes this fsync never covered. */
    uint64_t upto = f ? f->dropped + f->nops : 0;
    /* Keeps f alive while the lock is dropped (close cannot free it). */
    if (f) f->refs++;
    pthread_mutex_unlock(&mu);
    JET_ERR err = real()->fsync(fd);
    pthread_mutex_lock(&mu);
    if (f) f->refs--;
    if (crashed) {
        /* The power went while the flush was on its way: it never landed. */
        err = JET_errDiskIO;
    } else if (err >= 0 && f && upto > f->dropped) {
        /* What was written before the call is durable; what came during
         * it (other threads) is not. */
        size_t k = (size_t)(upto - f->dropped);
        for (size_t i = 0; i < k; i++) op_free(&f->ops[i]);
        memmove(f->ops, f->ops + k, (f->nops - k) * sizeof *f->ops);
        f->nops -= k;
        f->dropped += k;
    }
    if (err >= 0) count(!filter, NULL, 0);
    if (f) file_release(f);
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_fsize(int fd, uint64_t *psize)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->fsize(fd, psize);
}

static JET_ERR cv_unlink(const char *path)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->unlink(path);
}

static JET_ERR cv_rename(const char *from, const char *to)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->rename(from, to);
}

static JET_ERR cv_sync_dir(const char *dirpath)
{
    pthread_mutex_lock(&mu);
    JET_ERR err = crashed ? JET_errDiskIO : real()->sync_dir(dirpath);
    if (err >= 0) count(!filter, NULL, 0);
    pthread_mutex_unlock(&mu);
    return err;
}

static JET_ERR cv_lock(int fd)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->lock(fd);
}

static JET_ERR cv_identity(int fd, const char *path, struct os_identity *id)
{
    if (crashvfs_crashed()) return JET_errDiskIO;
    return real()->identity(fd, path, id);
}

static void forget_all(void)
{
    while (files) {
        struct cv_file *f = files;
        files = f->next;
        for (size_t i = 0; i < f->nops; i++) op_free(&f->ops[i]);
        if (f->fd >= 0) close(f->fd);
        free(f->ops);
        free(f);
    }
    free(by_fd);
    by_fd = NULL;
    nby_fd = 0;
    open_fds = 0;
}

void crashvfs_install(void)
{
    pthread_mutex_lock(&mu);
    forget_all();
    crashed = 0;
    calls = at = 0;
    mode = CRASHVFS_DROP;
    rng = 1;
    filter = NULL;
    filter_arg = NULL;
    fail_nth = 0;
    tear_suffix[0] = '\0';
    memset(&rep, 0, sizeof rep);
    vfs = (struct os_vfs){.open = cv_open,       .close = cv_close,         .pread = cv_pread,
                          .pwrite = cv_pwrite,   .fsync = cv_fsync,         .ftruncate = cv_ftruncate,
                          .fsize = cv_fsize,     .unlink = cv_unlink,       .rename = cv_rename,
                          .sync_dir = cv_sync_dir, .lock = cv_lock,         .identity = cv_identity};
    pthread_mutex_unlock(&mu);
    os_set_vfs(&vfs);
}

void crashvfs_arm(long at_call, enum crashvfs_mode m, uint64_t seed, crashvfs_filter f, void *arg)
{
    pthread_mutex_lock(&mu);
    calls = 0;
    at = at_call;
    mode = m;
    rng = seed ? seed : 1;
    filter = f;
    filter_arg = arg;
    pthread_mutex_unlock(&mu);
}

void crashvfs_fail_write(long nth, JET_ERR err, crashvfs_filter f, void *arg)
{
    pthread_mutex_lock(&mu);
    fail_nth = nth;
    fail_seen = 0;
    fail_err = err;
    fail_filter = f;
    fail_arg = arg;
    pthread_mutex_unlock(&mu);
}

void crashvfs_tear_at(const char *suffix, uint64_t off)
{
    pthread_mutex_lock(&mu);
    snprintf(tear_suffix, sizeof tear_suffix, "%s", suffix ? suffix : "");
    tear_off = off;
    pthread_mutex_unlock(&mu);
}

int crashvfs_crash_now(void)
{
    pthread_mutex_lock(&mu);
    int was = crashed;
    if (!crashed) crash_locked(NULL, 0);
    pthread_mutex_unlock(&mu);
    return !was;
}

int crashvfs_crashed(void) { return atomic_load(&crashed); }

long crashvfs_calls(void)
{
    pthread_mutex_lock(&mu);
    long c = calls;
    pthread_mutex_unlock(&mu);
    return c;
}

int crashvfs_open_fds(void)
{
    pthread_mutex_lock(&mu);
    int n = open_fds;
    pthread_mutex_unlock(&mu);
    return n;
}

void crashvfs_report(struct crashvfs_report *r)
{
    pthread_mutex_lock(&mu);
    *r = rep;
    pthread_mutex_unlock(&mu);
}

void crashvfs_uninstall(void)
{
    os_set_vfs(NULL);
    pthread_mutex_lock(&mu);
    forget_all();
    pthread_mutex_unlock(&mu);
}

/*
 * testvfs.c -- see testvfs.h.
 *
 * Each wrapper fills a struct testvfs_call, asks the observer and the
 * kind's rule whether to fail it, makes the call on the table below, then
 * shows the observer the result.  The descriptor -> path map is freed
 * only of its names, never of its array, so a call racing an uninstall
 * reads an empty slot, not freed memory.
 */
#include "testvfs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

struct rule {
    long nth, seen;
    int sticky;
    char suffix[256];
    int any_file;
    JET_ERR err;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct os_vfs table;
static const struct os_vfs *below;
static testvfs_observer observer;
static void *observer_arg;
static struct rule rules[TV_KINDS];
static atomic_long counts[TV_KINDS];
static atomic_long injected;
static char **fd_path;   /* under mu */
static size_t nfd_path;

int testvfs_ends_with(const char *s, const char *suffix)
{
    if (!suffix) return 1;
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

const char *testvfs_path_of(int fd, char *buf, size_t cb)
{
    pthread_mutex_lock(&mu);
    const char *p = fd >= 0 && (size_t)fd < nfd_path && fd_path[fd] ? fd_path[fd] : "?";
    snprintf(buf, cb, "%s", p);
    pthread_mutex_unlock(&mu);
    return buf;
}

static void remember(int fd, const char *path)
{
    char *copy = strdup(path);
    if (!copy) {
        perror("testvfs: strdup");
        abort();
    }
    pthread_mutex_lock(&mu);
    if ((size_t)fd >= nfd_path) {
        size_t n = (size_t)fd * 2 + 64;
        char **np = realloc(fd_path, n * sizeof *np);
        if (!np) {
            perror("testvfs: realloc");
            abort();
        }
        memset(np + nfd_path, 0, (n - nfd_path) * sizeof *np);
        fd_path = np;
        nfd_path = n;
    }
    free(fd_path[fd]);
    fd_path[fd] = copy;
    pthread_mutex_unlock(&mu);
}

static void forget(int fd)
{
    pthread_mutex_lock(&mu);
    if (fd >= 0 && (size_t)fd < nfd_path) {
        free(fd_path[fd]);
        fd_path[fd] = NULL;
    }
    pthread_mutex_unlock(&mu);
}

/* The fault to inject into c, if any: the observer's, else its kind's rule's. */
static JET_ERR before(struct testvfs_call *c)
{
    atomic_fetch_add(&counts[c->kind], 1);
    c->after = 0;
    JET_ERR err = JET_errSuccess;
    if (observer) err = observer(observer_arg, c);
    if (err >= 0) {
        pthread_mutex_lock(&mu);
        struct rule *r = &rules[c->kind];
        if (r->nth > 0 && (r->any_file || testvfs_ends_with(c->path, r->suffix)) &&
            (++r->seen == r->nth || (r->sticky && r->seen > r->nth))) {
            err = r->err;
            if (!r->sticky) r->nth = 0;
        }
        pthread_mutex_unlock(&mu);
    }
    if (err < 0) atomic_fetch_add(&injected, 1);
    return err;
}

static JET_ERR after(struct testvfs_call *c, JET_ERR result, int inj)
{
    c->after = 1;
    c->result = result;
    c->injected = inj;
    if (observer) (void)observer(observer_arg, c);
    return result;
}

/* Makes call (an expression over below) unless before() injects a fault. */
#define DO(c, call)                                         \
    do {                                                    \
        JET_ERR inj_ = before(&(c));                        \
        if (inj_ < 0) return after(&(c), inj_, 1);          \
        return after(&(c), (call), 0);                      \
    } while (0)

static JET_ERR tv_open(const char *path, int flags, int *pfd)
{
    struct testvfs_call c = {.kind = TV_OPEN, .fd = -1, .path = path, .n = (size_t)flags};
    JET_ERR err = before(&c);
    if (err < 0) return after(&c, err, 1);
    err = below->open(path, flags, pfd);
    if (err >= 0) {
        remember(*pfd, path);
        c.fd = *pfd;
    }
    return after(&c, err, 0);
}

static JET_ERR tv_close(int fd)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_CLOSE, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p)};
    JET_ERR err = before(&c);
    if (err < 0) return after(&c, err, 1);
    /* Forgotten first: once closed, the number may be reused at once. */
    forget(fd);
    return after(&c, below->close(fd), 0);
}

static JET_ERR tv_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot)
{
    char p[1024];
    size_t got = 0;
    struct testvfs_call c = {.kind = TV_PREAD, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p), .buf = buf, .n = n, .off = off};
    JET_ERR err = before(&c);
    if (err < 0) return after(&c, err, 1);
    err = below->pread(fd, buf, n, off, &got);
    if (pgot) *pgot = got;
    c.got = got;
    return after(&c, err, 0);
}

static JET_ERR tv_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_PWRITE, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p), .buf = buf, .n = n, .off = off};
    DO(c, below->pwrite(fd, buf, n, off));
}

static JET_ERR tv_fsync(int fd)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_FSYNC, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p)};
    DO(c, below->fsync(fd));
}

static JET_ERR tv_ftruncate(int fd, uint64_t size)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_FTRUNCATE, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p), .off = size};
    DO(c, below->ftruncate(fd, size));
}

static JET_ERR tv_fsize(int fd, uint64_t *psize)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_FSIZE, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p)};
    DO(c, below->fsize(fd, psize));
}

static JET_ERR tv_unlink(const char *path)
{
    struct testvfs_call c = {.kind = TV_UNLINK, .fd = -1, .path = path};
    DO(c, below->unlink(path));
}

static JET_ERR tv_rename(const char *from, const char *to)
{
    struct testvfs_call c = {.kind = TV_RENAME, .fd = -1, .path = from, .to = to};
    DO(c, below->rename(from, to));
}

static JET_ERR tv_sync_dir(const char *dirpath)
{
    struct testvfs_call c = {.kind = TV_SYNC_DIR, .fd = -1, .path = dirpath};
    DO(c, below->sync_dir(dirpath));
}

static JET_ERR tv_lock(int fd)
{
    char p[1024];
    struct testvfs_call c = {.kind = TV_LOCK, .fd = fd, .path = testvfs_path_of(fd, p, sizeof p)};
    DO(c, below->lock(fd));
}

static JET_ERR tv_identity(int fd, const char *path, struct os_identity *id)
{
    struct testvfs_call c = {.kind = TV_IDENTITY, .fd = fd, .path = path};
    DO(c, below->identity(fd, path, id));
}

static void forget_all_locked(void)
{
    for (size_t i = 0; i < nfd_path; i++) {
        free(fd_path[i]);
        fd_path[i] = NULL;
    }
    memset(rules, 0, sizeof rules);
}

void testvfs_reset_counts(void)
{
    for (int k = 0; k < TV_KINDS; k++) atomic_store(&counts[k], 0);
    atomic_store(&injected, 0);
}

void testvfs_install(testvfs_observer obs, void *arg)
{
    pthread_mutex_lock(&mu);
    forget_all_locked();
    /* Installed twice: still over what was below, never over itself. */
    if (os_vfs() != &table) below = os_vfs();
    observer = obs;
    observer_arg = arg;
    table = (struct os_vfs){.open = tv_open,         .close = tv_close,   .pread = tv_pread,
                            .pwrite = tv_pwrite,     .fsync = tv_fsync,   .ftruncate = tv_ftruncate,
                            .fsize = tv_fsize,       .unlink = tv_unlink, .rename = tv_rename,
                            .sync_dir = tv_sync_dir, .lock = tv_lock,     .identity = tv_identity};
    pthread_mutex_unlock(&mu);
    testvfs_reset_counts();
    os_set_vfs(&table);
}

void testvfs_uninstall(void)
{
    os_set_vfs(below);
    pthread_mutex_lock(&mu);
    forget_all_locked();
    pthread_mutex_unlock(&mu);
}

static void set_rule(enum testvfs_kind kind, long nth, const char *suffix, JET_ERR err, int sticky)
{
    pthread_mutex_lock(&mu);
    struct rule *r = &rules[kind];
    memset(r, 0, sizeof *r);
    r->nth = nth;
    r->sticky = sticky;
    r->any_file = suffix == NULL;
    snprintf(r->suffix, sizeof r->suffix, "%s", suffix ? suffix : "");
    r->err = err;
    pthread_mutex_unlock(&mu);
}

void testvfs_fail(enum testvfs_kind kind, long nth, const char *suffix, JET_ERR err) { set_rule(kind, nth, suffix, err, 0); }
void testvfs_fail_from(enum testvfs_kind kind, long nth, const char *suffix, JET_ERR err) { set_rule(kind, nth, suffix, err, 1); }
void testvfs_clear(enum testvfs_kind kind) { set_rule(kind, 0, NULL, JET_errSuccess, 0); }

long testvfs_count(enum testvfs_kind kind) { return atomic_load(&counts[kind]); }
long testvfs_injected(void) { return atomic_load(&injected); }

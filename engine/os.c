/*
 * os.c -- the default I/O seam over POSIX, and the errno translation.
 *
 * Owns: the process-wide pointer to the VFS in force.  Swapping it is for
 * tests and is not synchronised with I/O in flight: swap only while no
 * instance is running.
 */

#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local int last_errno;

JET_ERR os_errno_to_jet(int e)
{
    last_errno = e;
    switch (e) {
    case 0: return JET_errSuccess;
    case ENOENT: return JET_errFileNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
    case EEXIST: return JET_errFileAccessDenied;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return JET_errDiskFull;
    case ENOMEM: return JET_errOutOfMemory;
    case ENAMETOOLONG:
    case ENOTDIR: return JET_errInvalidPath;
    default: return JET_errDiskIO;
    }
}

int os_last_errno(void) { return last_errno; }

static JET_ERR posix_open(const char *path, int flags, int *pfd)
{
    int of = O_CLOEXEC;
    if ((flags & OS_OPEN_WRITE) && (flags & OS_OPEN_READ)) of |= O_RDWR;
    else if (flags & OS_OPEN_WRITE) of |= O_WRONLY;
    else of |= O_RDONLY;
    if (flags & OS_OPEN_CREATE) of |= O_CREAT;
    if (flags & OS_OPEN_EXCL) of |= O_EXCL;
    if (flags & OS_OPEN_DIRECT) of |= O_DIRECT;
    int fd = open(path, of, 0600);
    if (fd < 0) return os_errno_to_jet(errno);
    *pfd = fd;
    return JET_errSuccess;
}

static JET_ERR posix_close(int fd)
{
    /* close() errors after a successful fsync carry no durability news. */
    if (close(fd) != 0 && errno != EINTR) return os_errno_to_jet(errno);
    return JET_errSuccess;
}

static JET_ERR posix_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return os_errno_to_jet(errno);
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *pgot = done;
    return JET_errSuccess;
}

static JET_ERR posix_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return os_errno_to_jet(errno);
        }
        if (r == 0) return os_errno_to_jet(ENOSPC);
        done += (size_t)r;
    }
    return JET_errSuccess;
}

static JET_ERR posix_fsync(int fd)
{
    /* Never retried by callers: after a failed fsync the kernel may have
     * dropped the dirty pages, so a second success would lie. */
    if (fdatasync(fd) != 0) return os_errno_to_jet(errno);
    return JET_errSuccess;
}

static JET_ERR posix_ftruncate(int fd, uint64_t size)
{
    if (ftruncate(fd, (off_t)size) != 0) return os_errno_to_jet(errno);
    return JET_errSuccess;
}

/* lseek rather than fstat: the engine does only positional I/O, so the
 * offset it moves is never used, and on ext4 an fstat next to an
 * fdatasync costs ~45 us where lseek costs nothing (the log checks its
 * live file's size on every flush). */
static JET_ERR posix_fsize(int fd, uint64_t *psize)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) return os_errno_to_jet(errno);
    *psize = (uint64_t)end;
    return JET_errSuccess;
}

static JET_ERR posix_unlink(const char *path)
{
    if (unlink(path) != 0) return os_errno_to_jet(errno);
    return JET_errSuccess;
}

static JET_ERR posix_rename(const char *from, const char *to)
{
    if (rename(from, to) != 0) return os_errno_to_jet(errno);
    return JET_errSuccess;
}

static JET_ERR posix_sync_dir(const char *dirpath)
{
    int fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_errno_to_jet(errno);
    JET_ERR err = JET_errSuccess;
    if (fsync(fd) != 0 && errno != EINVAL) err = os_errno_to_jet(errno);
    close(fd);
    return err;
}

static JET_ERR posix_lock(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) { last_errno = errno; return JET_errDatabaseLocked; }
        return os_errno_to_jet(errno);
    }
    return JET_errSuccess;
}

static JET_ERR posix_identity(int fd, const char *path, struct os_identity *id)
{
    struct stat fs, ps;
    memset(id, 0, sizeof *id);
    if (fstat(fd, &fs) != 0) return os_errno_to_jet(errno);
    id->size = (uint64_t)fs.st_size;
    id->nlink = (uint64_t)fs.st_nlink;
    if (stat(path, &ps) != 0) {
        if (errno != ENOENT) return os_errno_to_jet(errno);
        id->path_missing = 1;
    } else {
        id->path_other = ps.st_dev != fs.st_dev || ps.st_ino != fs.st_ino;
    }
    return JET_errSuccess;
}

static const struct os_vfs posix_vfs = {
    posix_open, posix_close, posix_pread, posix_pwrite, posix_fsync,
    posix_ftruncate, posix_fsize, posix_unlink, posix_rename, posix_sync_dir,
    posix_lock, posix_identity,
};

static _Atomic(const struct os_vfs *) vfs_in_force = &posix_vfs;

const struct os_vfs *os_vfs(void) { return atomic_load(&vfs_in_force); }
const struct os_vfs *os_vfs_default(void) { return &posix_vfs; }
void os_set_vfs(const struct os_vfs *vfs) { atomic_store(&vfs_in_force, vfs ? vfs : &posix_vfs); }

JET_ERR os_open(const char *path, int flags, int *pfd) { return os_vfs()->open(path, flags, pfd); }
JET_ERR os_close(int fd) { return os_vfs()->close(fd); }
JET_ERR os_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot) { return os_vfs()->pread(fd, buf, n, off, pgot); }
JET_ERR os_pwrite(int fd, const void *buf, size_t n, uint64_t off) { return os_vfs()->pwrite(fd, buf, n, off); }
JET_ERR os_fsync(int fd) { return os_vfs()->fsync(fd); }
JET_ERR os_ftruncate(int fd, uint64_t size) { return os_vfs()->ftruncate(fd, size); }
JET_ERR os_fsize(int fd, uint64_t *psize) { return os_vfs()->fsize(fd, psize); }
JET_ERR os_unlink(const char *path) { return os_vfs()->unlink(path); }
JET_ERR os_rename(const char *from, const char *to) { return os_vfs()->rename(from, to); }
JET_ERR os_sync_dir(const char *dirpath) { return os_vfs()->sync_dir(dirpath); }
JET_ERR os_identity(int fd, const char *path, struct os_identity *id) { return os_vfs()->identity(fd, path, id); }

JET_ERR os_replace_file(const char *path, const void *buf, size_t n)
{
    char tmp[4104], dir[4096];
    int fd = -1;
    JET_ERR err = JET_errSuccess;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return JET_errInvalidPath;
    if ((err = os_open(tmp, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd)) < 0) goto out;
    if ((err = os_ftruncate(fd, 0)) < 0) goto out;
    if ((err = os_pwrite(fd, buf, n, 0)) < 0) goto out;
    if ((err = os_fsync(fd)) < 0) goto out;
    err = os_close(fd);
    fd = -1;
    if (err < 0) goto out;
    if ((err = os_rename(tmp, path)) < 0) goto out;
    os_dirname(dir, sizeof dir, path);
    err = os_sync_dir(dir);
    return err;
out:
    if (fd >= 0) os_close(fd);
    /* A temporary that never became the file is of no use to anyone. */
    (void)os_unlink(tmp);
    return err;
}
JET_ERR os_lock(int fd) { return os_vfs()->lock(fd); }

JET_ERR os_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    JET_ERR err = os_pread(fd, buf, n, off, &got);
    if (err < 0) return err;
    if (got < n) memset((char *)buf + got, 0, n - got);
    return JET_errSuccess;
}

JET_ERR os_pread_direct(int fd, void *buf, size_t n, uint64_t off)
{
    const uint64_t a = OS_DIRECT_ALIGN;
    if ((uintptr_t)buf % a == 0 && n % a == 0 && off % a == 0) return os_pread_full(fd, buf, n, off);
    uint64_t lo = off / a * a, hi = (off + n + a - 1) / a * a;
    void *bounce = aligned_alloc(a, (size_t)(hi - lo));
    if (!bounce) return JET_errOutOfMemory;
    JET_ERR err = os_pread_full(fd, bounce, (size_t)(hi - lo), lo);
    if (err >= 0) memcpy(buf, (char *)bounce + (off - lo), n);
    free(bounce);
    return err;
}

int os_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

JET_ERR os_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0) return JET_errSuccess;
    if (n >= sizeof buf) return JET_errInvalidPath;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (stat(buf, &st) != 0) {
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) return os_errno_to_jet(errno);
        } else if (!S_ISDIR(st.st_mode)) {
            return JET_errInvalidPath;
        }
        buf[i] = c;
    }
    return JET_errSuccess;
}

JET_ERR os_join(char *buf, size_t cb, const char *dir, const char *name)
{
    int n;
    if (!dir || !*dir || name[0] == '/') n = snprintf(buf, cb, "%s", name);
    else n = snprintf(buf, cb, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    if (n < 0 || (size_t)n >= cb) return JET_errInvalidPath;
    return JET_errSuccess;
}

void os_dirname(char *buf, size_t cb, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(buf, cb, "."); return; }
    if (slash == path) { snprintf(buf, cb, "/"); return; }
    snprintf(buf, cb, "%.*s", (int)(slash - path), path);
}

uint64_t os_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *os_utc(uint64_t us, int micro, char *buf, size_t cb)
{
    time_t secs = (time_t)(us / 1000000u);
    struct tm tm;
    char day[32];
    if (!gmtime_r(&secs, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm)) snprintf(day, sizeof day, "?");
    if (micro) snprintf(buf, cb, "%s.%06uZ", day, (unsigned)(us % 1000000u));
    else snprintf(buf, cb, "%sZ", day);
    return buf;
}

uint64_t os_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t os_random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v && v != 0) return v;
    v = os_now_us() ^ ((uint64_t)getpid() << 32) ^ os_mono_us() * 0x9E3779B97F4A7C15ull;
    return v ? v : 1;
}

const char *os_reason(JET_ERR err, char *buf, size_t cb)
{
    int e = os_last_errno();
    if (e != 0 && os_errno_to_jet(e) == err) return strerror_r(e, buf, cb); /* GNU variant: _GNU_SOURCE */
    snprintf(buf, cb, "%s", JetErrorString(err));
    return buf;
}

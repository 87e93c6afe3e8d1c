/*
 * os.h -- the one I/O seam of the engine.
 *
 * Every byte the engine reads from or writes to a file goes through the
 * function table below, as SQLite's VFS does.  Tests swap the table
 * (os_set_vfs) to inject EIO, ENOSPC, short and torn writes, and "power
 * loss" (unsynced writes dropped), so every cleanup path can be exercised.
 *
 * errno is translated to a JET_ERR here and nowhere else:
 *   ENOENT -> JET_errFileNotFound     EACCES/EPERM -> JET_errFileAccessDenied
 *   ENOSPC/EDQUOT -> JET_errDiskFull  anything else -> JET_errDiskIO
 * os_last_errno() keeps the raw errno of the last failure on this thread so
 * messages can quote the OS reason.
 *
 * Files are plain descriptors (int).  Reads and writes are positional and
 * complete: a short read at end of file zero-fills and reports the count; a
 * short write is retried until done or failed.
 */
#ifndef JET_OS_H
#define JET_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jet.h"

#define OS_OPEN_READ 0x1
#define OS_OPEN_WRITE 0x2
#define OS_OPEN_CREATE 0x4   /* create if missing */
#define OS_OPEN_EXCL 0x8     /* with CREATE: fail if it exists (JET_errFileAccessDenied) */
/* Reads bypass the page cache (O_DIRECT): each read's buffer address,
 * offset and length must be multiples of OS_DIRECT_ALIGN (os_pread_direct
 * takes any).  A filesystem that refuses it (tmpfs) fails the open: the
 * caller opens the file without it.  For a backup's reads, so a file read
 * once is not also left in memory (engine/README.md, "A backup's reads"). */
#define OS_OPEN_DIRECT 0x10
#define OS_DIRECT_ALIGN 4096u

/* What an open file is, and whether its path still names it. */
struct os_identity {
    uint64_t size, nlink;
    int path_missing;   /* nothing at the path */
    int path_other;     /* the path names another file */
};

struct os_vfs {
    JET_ERR (*open)(const char *path, int flags, int *pfd);
    JET_ERR (*close)(int fd);
    /* Reads up to n bytes at off; *pgot gets the count (short only at EOF). */
    JET_ERR (*pread)(int fd, void *buf, size_t n, uint64_t off, size_t *pgot);
    JET_ERR (*pwrite)(int fd, const void *buf, size_t n, uint64_t off);
    JET_ERR (*fsync)(int fd);
    JET_ERR (*ftruncate)(int fd, uint64_t size);
    JET_ERR (*fsize)(int fd, uint64_t *psize);
    JET_ERR (*unlink)(const char *path);
    JET_ERR (*rename)(const char *from, const char *to);
    JET_ERR (*sync_dir)(const char *dirpath);
    /* Exclusive advisory lock on an open file; JET_errDatabaseLocked if held. */
    JET_ERR (*lock)(int fd);
    /* Metadata of open file fd and of path (fstat, stat). */
    JET_ERR (*identity)(int fd, const char *path, struct os_identity *id);
};

/* The table in force (never NULL) and the real one. */
const struct os_vfs *os_vfs(void);
const struct os_vfs *os_vfs_default(void);
/* Installs a replacement (tests only); NULL restores the default. */
void os_set_vfs(const struct os_vfs *vfs);

/* Convenience wrappers over os_vfs(). */
JET_ERR os_open(const char *path, int flags, int *pfd);
JET_ERR os_close(int fd);
JET_ERR os_pread(int fd, void *buf, size_t n, uint64_t off, size_t *pgot);
/* Reads exactly n bytes at off, zero-filling past end of file. */
JET_ERR os_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* os_pread_full on a descriptor opened with OS_OPEN_DIRECT, for any buf,
 * n and off: an unaligned read goes through an aligned bounce buffer. */
JET_ERR os_pread_direct(int fd, void *buf, size_t n, uint64_t off);
JET_ERR os_pwrite(int fd, const void *buf, size_t n, uint64_t off);
JET_ERR os_fsync(int fd);
JET_ERR os_ftruncate(int fd, uint64_t size);
JET_ERR os_fsize(int fd, uint64_t *psize);
JET_ERR os_unlink(const char *path);
JET_ERR os_rename(const char *from, const char *to);
JET_ERR os_sync_dir(const char *dirpath);
JET_ERR os_lock(int fd);
JET_ERR os_identity(int fd, const char *path, struct os_identity *id);
/* Replaces the file at path with buf atomically: "<path>.tmp", fsync,
 * rename, directory fsync.  A failure leaves the old file (and no
 * temporary); the error is returned unreported. */
JET_ERR os_replace_file(const char *path, const void *buf, size_t n);

/* Does the path exist (any type)?  Not routed through the VFS: metadata only. */
int os_exists(const char *path);
/* mkdir -p; JET_errInvalidPath if a component is not a directory. */
JET_ERR os_mkdirs(const char *path);
/* Writes path = dir + "/" + name into buf (cb bytes); JET_errInvalidPath if too long. */
JET_ERR os_join(char *buf, size_t cb, const char *dir, const char *name);
/* The directory part of path into buf ("." when none). */
void os_dirname(char *buf, size_t cb, const char *path);

JET_ERR os_errno_to_jet(int e);
int os_last_errno(void);
/* Why err happened, for messages: the OS text ("Read-only file system")
 * when this thread's last errno is the one err was translated from (a
 * failure injected through the VFS, or an older errno, is not quoted),
 * else the JET error's own text. */
const char *os_reason(JET_ERR err, char *buf, size_t cb);

/* Monotonic and wall clocks in microseconds. */
uint64_t os_now_us(void);
uint64_t os_mono_us(void);
/* Wall-clock us as UTC "YYYY-MM-DDTHH:MM:SSZ", or with micro
 * "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", into buf; returns buf. */
const char *os_utc(uint64_t us, int micro, char *buf, size_t cb);
/* 64 random bits from getrandom (falls back to time+pid mixing). */
uint64_t os_random64(void);

#endif /* JET_OS_H */

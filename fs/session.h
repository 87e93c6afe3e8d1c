/*
 * session.h -- what fuse_glue.c (the request handlers) and session.c (the
 * session's lifecycle) share inside libjetfs: the session object and the
 * request table.  Not a public header: programs use jetfs.h.
 */
#ifndef JETFS_SESSION_H
#define JETFS_SESSION_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "jetfs.h"
#include "view.h"

/* The largest read request (and the readahead asked for). */
#define MAX_REQUEST (1u << 20)

struct jetfs {
    struct jv_view *view;
    struct fuse_session *se;
    char mountpoint[PATH_MAX];
    pthread_t loop_thread, watchdog_thread;
    bool loop_started, watchdog_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping, loop_done;
    char outcome[1024];
    void (*log)(void *arg, const char *line);
    void *log_arg;
    bool normal_priority;
    atomic_bool priority_warned;
    /* An explicit end handed to the watchdog (end_on_watchdog), under mu. */
    bool watchdog_running, end_pending, end_done;
    enum jv_end_how end_how;
    int end_rc;
    char end_why[1024];
    /* After an explicit end that ended the backup: the monotonic time by
     * which the watchdog unmounts even if a status file is still open
     * (0: no unmount pending), under mu. */
    double unmount_by;
    /* Page-cache ranges a sequential reader passed (jv_drop), queued for
     * fuse_glue.c's dropper thread, under drop_mu. */
    pthread_mutex_t drop_mu;
    pthread_cond_t drop_cv;
    struct jv_drop drops[64];
    unsigned ndrops;
    bool drop_stop, dropper_started;
    pthread_t dropper_thread;
};

/* fuse_glue.c's request table. */
extern const struct fuse_lowlevel_ops jetfs_ops;
/* fuse_glue.c's dropper thread: started once fs->se is mounted, stopped
 * (idempotent) once no request runs any more, before fs->se is unmounted
 * (which closes the device the dropper writes to). */
int glue_dropper_start(struct jetfs *fs);
void glue_dropper_stop(struct jetfs *fs);

/* One line to the host's log (jetfs_options.log, or stderr with a time). */
void fs_log(struct jetfs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * What the backup mount and the browse mount (browse.c) share: the checks
 * of a mount point before mounting (/dev/fuse present, a stale mount of a
 * dead process cleared, a directory, nothing mounted there), -errno and a
 * one-line reason; a lazy unmount (umount2, else fusermount3 -uz); a log
 * line to stderr with the time.
 */
int session_check_mountpoint(void (*log)(void *, const char *), void *log_arg, const char *mp, char *why,
                             size_t cbwhy);
void session_detach_mount(const char *mp);
void session_log_stderr(void *arg, const char *line);

/* Ends the backup as `jetfs end` asks, on the watchdog thread (session.c). */
int session_end_on_watchdog(struct jetfs *fs, enum jv_end_how how, char *why, size_t cbwhy);

#endif

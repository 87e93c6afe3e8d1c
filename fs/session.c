/*
 * session.c -- the lifecycle of one mount: checking and clearing the mount
 * point, mounting, the FUSE loop threads, the watchdog thread, unmounting.
 *
 * Owns: struct jetfs (session.h) and its threads.  The loop thread runs
 * fuse_glue.c's handlers; when it returns (unmount), it ends the backup as
 * an unmount does, on its own thread, which never serves reads.  The
 * watchdog ticks the view once a second (space and idle limits: an abort
 * unmounts, and the host mounts again) and serves explicit ends
 * (`jetfs end`), which must not run on a loop thread that may be at
 * SCHED_IDLE (fuse_glue.c's header says why).
 *
 * An ended backup leaves nothing for its session to do, and one session
 * holds at most one backup, so an explicit end that ended it unmounts the
 * session too, as the watchdog's own aborts do: whoever may end a backup
 * (a member of the backup group, who may not unmount a mount of root's)
 * then finds a new session for the next one.  The unmount waits until no
 * status file is open, so that `jetfs end`, which holds status open across
 * its ioctl, reads the outcome in the ended session, but no longer than
 * JETFS_END_UNMOUNT_GRACE seconds (a reader that keeps status open).  A
 * file of the ended set still open fails its reads (EIO, then ENOTCONN
 * once unmounted) and delays the new mount until it is closed: the
 * detached mount lives until then.
 *
 * Locking: fs->mu guards the lifecycle flags and the one pending explicit
 * end; the view locks what it shares; no engine lock is held under fs->mu.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

void session_log_stderr(void *arg, const char *line)
{
    (void)arg;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s jetfs: %s\n", when, line);
}

void fs_log(struct jetfs *fs, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fs->log(fs->log_arg, line);
}

/*
 * An explicit end (`jetfs end`) runs on the watchdog thread, which never
 * serves reads: the loop thread that gets the ioctl may be at SCHED_IDLE,
 * and the end takes locks the instance's clients wait for.  Ends queue one
 * at a time; once the watchdog has exited (the session is stopping) the
 * caller ends it itself.
 */
int session_end_on_watchdog(struct jetfs *fs, enum jv_end_how how, char *why, size_t cbwhy)
{
    int rc;
    pthread_mutex_lock(&fs->mu);
    while (fs->end_pending && fs->watchdog_running) pthread_cond_wait(&fs->cv, &fs->mu);
    if (!fs->watchdog_running) {
        pthread_mutex_unlock(&fs->mu);
        rc = jv_end(fs->view, how, why, cbwhy);
        pthread_mutex_lock(&fs->mu);
    } else {
        fs->end_pending = true;
        fs->end_done = false;
        fs->end_how = how;
        pthread_cond_broadcast(&fs->cv);
        while (!fs->end_done) pthread_cond_wait(&fs->cv, &fs->mu); /* the watchdog serves it before it exits */
        rc = fs->end_rc;
        snprintf(why, cbwhy, "%s", fs->end_why);
        fs->end_pending = false;
        pthread_cond_broadcast(&fs->cv);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *watchdog_main(void *arg)
{
    struct jetfs *fs = arg;
    (void)pthread_setname_np(pthread_self(), "jetfs-watchdog");
    pthread_mutex_lock(&fs->mu);
    fs->watchdog_running = true;
    double next_tick = mono_now() + 1;
    for (;;) {
        /* A pending end is always served, even when stopping: its caller waits. */
        if (fs->end_pending && !fs->end_done) {
            enum jv_end_how how = fs->end_how;
            char why[sizeof fs->end_why] = "";
            pthread_mutex_unlock(&fs->mu);
            int rc = jv_end(fs->view, how, why, sizeof why);
            pthread_mutex_lock(&fs->mu);
            fs->end_rc = rc;
            snprintf(fs->end_why, sizeof fs->end_why, "%s", why);
            fs->end_done = true;
            if (rc >= 0) fs->unmount_by = mono_now() + JETFS_END_UNMOUNT_GRACE;
            pthread_cond_broadcast(&fs->cv);
            continue;
        }
        if (fs->stopping || fs->loop_done) break;
        if (fs->unmount_by > 0) {
            /* The ioctl's own status handle is released only after its
             * reply: polled, not signalled, a few times a second. */
            bool grace_over = mono_now() >= fs->unmount_by;
            pthread_mutex_unlock(&fs->mu);
            if (grace_over || jv_status_opened(fs->view) == 0) {
                fs_log(fs, "unmounting %s after the explicit end; the next session begins at the next mount%s",
                       fs->mountpoint, grace_over ? " (status was still open)" : "");
                jetfs_unmount(fs);
                pthread_mutex_lock(&fs->mu);
                fs->unmount_by = 0;
                continue;
            }
            pthread_mutex_lock(&fs->mu);
        }
        if (mono_now() >= next_tick) {
            pthread_mutex_unlock(&fs->mu);
            /* An abort by the watchdog ends the session as an unmount
             * would: the tree would otherwise answer EBUSY to every
             * backup until someone unmounted it, and the host (jetfs
             * serve) mounts again for the next one. */
            if (jv_tick(fs->view, mono_now()) == 1) {
                fs_log(fs, "unmounting %s after the abort; the next session begins at the next mount",
                       fs->mountpoint);
                jetfs_unmount(fs);
            }
            pthread_mutex_lock(&fs->mu);
            next_tick = mono_now() + 1;
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        if (fs->unmount_by > 0) {
            until.tv_nsec += 20 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
        } else {
            until.tv_sec += 1;
        }
        pthread_cond_timedwait(&fs->cv, &fs->mu, &until);
    }
    fs->watchdog_running = false;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

static void *loop_main(void *arg)
{
    struct jetfs *fs = arg;
    /* The threads the loop starts inherit the name: ps and top show them. */
    (void)pthread_setname_np(pthread_self(), "jetfs-fuse");
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    int rc;
    if (cfg) {
        fuse_loop_cfg_set_idle_threads(cfg, 8);
        fuse_loop_cfg_set_max_threads(cfg, 32);
        rc = fuse_session_loop_mt(fs->se, cfg);
        fuse_loop_cfg_destroy(cfg);
    } else {
        rc = fuse_session_loop(fs->se);
    }
    if (rc < 0) fs_log(fs, "the FUSE loop ended with an error: %s", strerror(-rc));
    /* The dropper writes to the session's device: it ends before the
     * unmount below closes it. */
    glue_dropper_stop(fs);
    /* No request runs any more: end the backup as an unmount does. */
    char why[1024];
    int end = jv_end(fs->view, JV_END_UNMOUNT, why, sizeof why);
    fuse_session_unmount(fs->se);
    pthread_mutex_lock(&fs->mu);
    if (end == -ENOENT) jv_outcome(fs->view, why, sizeof why); /* ended before (jetfs end, the watchdog) */
    if (why[0]) snprintf(fs->outcome, sizeof fs->outcome, "%s", why);
    else snprintf(fs->outcome, sizeof fs->outcome, "no backup was taken in this session");
    fs->loop_done = true;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

/*
 * A mount left by a killed jetfs answers ENOTCONN -- though not always to
 * stat, which the kernel may answer from its attribute cache, so a mount
 * point is also probed with an open that must reach the filesystem.
 */
static bool is_stale_mount(const char *mp)
{
    struct stat st;
    if (stat(mp, &st) != 0) return errno == ENOTCONN;
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/.", mp);
    int fd = open(probe, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        /* Listing needs the daemon; an open may be answered without it. */
        char buf[4096];
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        int e = errno;
        close(fd);
        return n < 0 && e == ENOTCONN;
    }
    return errno == ENOTCONN;
}

static int clear_stale_mount(void (*log)(void *, const char *), void *log_arg, const char *mp)
{
    if (!is_stale_mount(mp)) return 0;
    char line[PATH_MAX + 80];
    snprintf(line, sizeof line, "%s: a stale mount from a process that died; unmounting it", mp);
    log(log_arg, line);
    if (umount2(mp, MNT_DETACH) == 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", "--", mp, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) return -EBUSY;
    return 0;
}

int session_check_mountpoint(void (*log)(void *, const char *), void *log_arg, const char *mp, char *why,
                             size_t cbwhy)
{
    struct stat st, parent;
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(why, cbwhy, "cannot open /dev/fuse: %s (is the fuse module loaded? in a container, pass the device)",
                 strerror(e));
        return -e;
    }
    close(fd);
    if (clear_stale_mount(log, log_arg, mp) < 0) {
        snprintf(why, cbwhy, "%s: a stale mount is left there and cannot be removed; run fusermount3 -uz %s", mp, mp);
        return -EBUSY;
    }
    if (stat(mp, &st) != 0) {
        int e = errno;
        snprintf(why, cbwhy, "mount point %s: %s", mp, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, cbwhy, "mount point %s is not a directory", mp);
        return -ENOTDIR;
    }
    char up[PATH_MAX + 4];
    snprintf(up, sizeof up, "%s/..", mp);
    if (stat(up, &parent) == 0 && (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino)) {
        /* Unmounting a live jetfs serve's tree only ends its session: it
         * mounts again at once.  Say so rather than advise it. */
        char status[PATH_MAX + 16];
        snprintf(status, sizeof status, "%s/status", mp);
        if (access(status, F_OK) == 0 && access(up, F_OK) == 0)
            snprintf(why, cbwhy,
                     "mount point %s is busy: a jetfs is serving there (it has %s/status); stop that jetfs serve "
                     "(SIGTERM) or choose another mount point -- fusermount3 -u would only end its backup session, and it "
                     "mounts again",
                     mp, mp);
        else
            snprintf(why, cbwhy, "mount point %s is busy: something is already mounted there (fusermount3 -u %s)", mp,
                     mp);
        return -EBUSY;
    }
    return 0;
}

/* Larger readahead: fewer, larger requests for sequential readers. */
static void raise_readahead(struct jetfs *fs)
{
    struct stat st;
    if (stat(fs->mountpoint, &st) != 0) return;
    char path[128];
    snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%u\n", MAX_REQUEST / 1024);
    if (fclose(f) != 0) fs_log(fs, "could not raise the readahead of the mount (%s)", path);
}

int jetfs_mount(JET_INSTANCE inst, const struct jetfs_options *opt, struct jetfs **out, char *why, size_t cbwhy)
{
    int rc;
    struct jetfs *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(why, cbwhy, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->cv, NULL);
    pthread_mutex_init(&fs->drop_mu, NULL);
    pthread_cond_init(&fs->drop_cv, NULL);
    fs->log = opt->log ? opt->log : session_log_stderr;
    fs->log_arg = opt->log_arg;
    fs->normal_priority = opt->normal_priority;
    if (!realpath(opt->mountpoint, fs->mountpoint)) {
        if (errno == ENOTCONN) snprintf(fs->mountpoint, sizeof fs->mountpoint, "%s", opt->mountpoint);
        else {
            rc = -errno;
            snprintf(why, cbwhy, "mount point %s: %s", opt->mountpoint, strerror(errno));
            goto fail;
        }
    }
    if ((rc = session_check_mountpoint(fs->log, fs->log_arg, fs->mountpoint, why, cbwhy)) < 0) goto fail;

    struct jv_options vo = {
        .truncate_manual = opt->truncate_manual,
        .uid = getuid(),
        .gid = opt->group_access ? opt->gid : getgid(),
        .group_access = opt->group_access,
        .space_limit = opt->space_limit ? opt->space_limit : JETFS_DEFAULT_SPACE_LIMIT,
        .idle_timeout_s = opt->idle_timeout_s ? opt->idle_timeout_s : JETFS_DEFAULT_IDLE_TIMEOUT,
        .instance_name = opt->instance_name,
        .mounts_again = opt->mounts_again,
        .log = fs->log,
        .log_arg = fs->log_arg,
    };
    if ((rc = jv_create(inst, &vo, &fs->view)) < 0 ||
        (rc = jv_set_db_paths(fs->view, opt->db_paths, opt->ndb_paths)) < 0) {
        snprintf(why, cbwhy, "out of memory");
        goto fail;
    }

    char mopts[256];
    snprintf(mopts, sizeof mopts, "fsname=jetfs,subtype=jetfs,ro,default_permissions%s",
             opt->group_access ? ",allow_other" : "");
    char *argv[] = {"jetfs", "-o", mopts, opt->debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(opt->debug ? 4 : 3, argv);
    fs->se = fuse_session_new(&args, &jetfs_ops, sizeof jetfs_ops, fs);
    fuse_opt_free_args(&args);
    if (!fs->se) {
        rc = -EINVAL;
        snprintf(why, cbwhy, "cannot create the FUSE session (options %s)", mopts);
        goto fail;
    }
    if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
        rc = -EIO;
        snprintf(why, cbwhy, "cannot mount on %s (see the message above)", fs->mountpoint);
        goto fail;
    }
    if (glue_dropper_start(fs) < 0)
        fs_log(fs, "cannot start the dropper thread: a sequential reader's pages stay in the page cache");
    if ((rc = -pthread_create(&fs->loop_thread, NULL, loop_main, fs)) < 0) {
        snprintf(why, cbwhy, "cannot start the FUSE loop: %s", strerror(-rc));
        fuse_session_unmount(fs->se);
        goto fail;
    }
    fs->loop_started = true;
    if (pthread_create(&fs->watchdog_thread, NULL, watchdog_main, fs) == 0) fs->watchdog_started = true;
    else fs_log(fs, "cannot start the watchdog: space and idle limits are not enforced");
    raise_readahead(fs);
    fs_log(fs, "mounted on %s", fs->mountpoint);
    *out = fs;
    return 0;
fail:
    jetfs_free(fs);
    return rc;
}

void jetfs_unmount(struct jetfs *fs)
{
    pthread_mutex_lock(&fs->mu);
    bool first = !fs->stopping;
    fs->stopping = true;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    if (!first || !fs->se) return;
    /* Unmounting aborts the connection, which wakes every loop thread. */
    fuse_session_exit(fs->se);
    session_detach_mount(fs->mountpoint);
}

void session_detach_mount(const char *mp)
{
    if (umount2(mp, MNT_DETACH) == 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", "--", mp, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

int jetfs_wait(struct jetfs *fs, char *outcome, size_t cboutcome)
{
    if (fs->loop_started) {
        pthread_join(fs->loop_thread, NULL);
        fs->loop_started = false;
    }
    pthread_mutex_lock(&fs->mu);
    fs->stopping = true;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    if (fs->watchdog_started) {
        pthread_join(fs->watchdog_thread, NULL);
        fs->watchdog_started = false;
    }
    glue_dropper_stop(fs);
    if (outcome) snprintf(outcome, cboutcome, "%s", fs->outcome);
    return 0;
}

void jetfs_free(struct jetfs *fs)
{
    if (!fs) return;
    jetfs_wait(fs, NULL, 0);
    if (fs->se) fuse_session_destroy(fs->se);
    jv_destroy(fs->view);
    pthread_cond_destroy(&fs->drop_cv);
    pthread_mutex_destroy(&fs->drop_mu);
    pthread_cond_destroy(&fs->cv);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

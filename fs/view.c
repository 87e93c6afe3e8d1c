/*
 * view.c -- the backup tree of one mount session (see view.h).
 *
 * Owns: the session state (IDLE, RUNNING, ENDED), the set as files with
 * fixed names, inode numbers, sizes and mtimes, the manifest text and its
 * read coverage, the open handles, and what status reports (bytes served,
 * corrupt pages met, why the backup ended).  The engine owns everything
 * else: the snapshot, the coverage of database and log files, truncation
 * and the backup history.
 *
 * Invariants:
 *  - files[] is built at begin and changes only when a backup no file of
 *    which was ever opened gives way to another kind (so no handle points
 *    into it then); a handle can point into it without a lock.
 *  - A backup ends normally only when every file of the set was read
 *    whole at least once in this session, or is a log generation an
 *    earlier backup read whole (the engine keeps that record, with the
 *    instance); the database and the manifest change with every begin and
 *    are always read.  Otherwise it is aborted and the engine truncates
 *    nothing and records no history.
 *  - Every error the engine reports on a read reaches the caller as -EIO;
 *    bytes are only ever passed on from a successful, verified read.
 *
 * Locking: v->mu guards everything below it in struct jv_view; it is never
 * held across a read of file contents.  Lock order: v->mu, then the
 * engine's own locks (a call into the engine under v->mu is allowed, the
 * engine never calls back).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "jet_inspect.h"
#include "view.h"

#define MAX_CORRUPT 64

enum jv_state { JV_IDLE, JV_RUNNING, JV_ENDED };

struct jv_file {
    uint64_t ino;             /* FUSE node id: st_ino plus the kind's epoch */
    uint64_t st_ino;          /* what the file is: the same in every session */
    char name[256];
    char path[4096];          /* engine path ("" for the manifest) */
    uint64_t size;
    struct timespec mtime;
    bool is_manifest, is_db;
    int manifest_copy;        /* 0: backup.manifest, 1: its backup's own name */
    unsigned long engine_index;
    /* As the backup ended (the engine forgets them then): what status
     * shows of an ended session. */
    uint64_t final_covered;
    int final_state;          /* enum file_state */
};

struct jv_handle {
    struct jv_handle *next;
    const struct jv_file *f;
    JET_HANDLE jh;            /* 0 once the backup ended: reads are -EIO */
    /* The reader's current stream (view.h), under v->mu: [stream_start,
     * stream_end) read, [stream_start, dropped) handed back to drop. */
    bool streamed;            /* a read succeeded: the fields below mean something */
    uint64_t stream_start, stream_end, dropped;
    uint64_t stream_bytes;    /* bytes the stream's reads returned */
};

/* The contents of status as of one open. */
struct status_snap {
    struct status_snap *next;
    char *text;
    size_t len;
};

struct jv_view {
    JET_INSTANCE inst;
    struct jv_options opt;
    struct timespec mount_time;
    char **db_paths;          /* for "last completed backups" in status */
    size_t ndb_paths;

    pthread_mutex_t mu;
    /* The open status snapshots, under mu.  The kernel can send RELEASE
     * while a READ of the same open is still being answered (a reader
     * killed mid-read abandons its request), so a read must not trust its
     * handle: it looks the snapshot up here and copies its bytes out under
     * the lock that release frees under. */
    struct status_snap *status_live;
    enum jv_state state;
    enum jv_kind kind;
    bool opened;              /* a file of the running set was opened: no other kind now */
    time_t set_second;        /* the mtime second of the set's database and manifest */
    unsigned epoch[JV_NKINDS];/* begins of each kind in this session, less one */
    bool begun[JV_NKINDS];
    uint64_t begin_us;
    unsigned long gen_low, gen_high;
    struct jv_file *files;
    size_t nfiles;
    char *manifest;
    size_t manifest_len;
    uint8_t *manifest_read;   /* per name (manifest_copy), one byte per manifest byte: read at least once */
    size_t manifest_covered[2];
    struct jv_handle *handles;
    uint64_t bytes_served, reads;
    double last_activity;     /* monotonic seconds */
    char outcome[1024];       /* how the backup ended, or why begin was refused */
    char refused[1024];       /* the last refused request */
    char *corrupt[MAX_CORRUPT];
    size_t ncorrupt;
};

static const char *const kind_names[JV_NKINDS] = {"full", "incremental", "differential", "copy"};

const char *jv_kind_name(enum jv_kind kind) { return kind < JV_NKINDS ? kind_names[kind] : "?"; }

/* snprintf for messages: truncating a long name or reason is intended. */
/*
 * The one map from the engine's errors to the errno a FUSE request
 * answers.  Everything a reader cannot act on is EIO; status says the
 * JET error and its message.
 */
static int jv_errno(JET_ERR err)
{
    switch (err) {
    case JET_errMissingFullBackup: return EPERM; /* an incremental with no full backup */
    case JET_errBackupInProgress: return EBUSY;
    case JET_errOutOfMemory: return ENOMEM;
    default: return EIO;
    }
}

static const char *errno_name(int e) { return e == EPERM ? "EPERM" : e == EBUSY ? "EBUSY" : e == ENOMEM ? "ENOMEM" : "EIO"; }

static int put(char *buf, size_t cb, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(char *buf, size_t cb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cb, fmt, ap);
    va_end(ap);
    return n;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void vlog(struct jv_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vlog(struct jv_view *v, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (v->opt.log) v->opt.log(v->opt.log_arg, line);
}

/* "message (JET error -n): detail" for the last engine error on this thread. */
static void jet_reason(char *buf, size_t cb, JET_ERR err)
{
    const char *d = JetGetLastErrorDetail();
    put(buf, cb, "%s (JET error %ld)%s%s", JetErrorString(err), err, *d ? ": " : "", d);
}

int jv_create(JET_INSTANCE inst, const struct jv_options *opt, struct jv_view **out)
{
    struct jv_view *v = calloc(1, sizeof *v);
    if (!v) return -ENOMEM;
    v->inst = inst;
    v->opt = *opt;
    clock_gettime(CLOCK_REALTIME, &v->mount_time);
    v->last_activity = mono_now();
    pthread_mutex_init(&v->mu, NULL);
    *out = v;
    return 0;
}

int jv_set_db_paths(struct jv_view *v, const char *const *paths, size_t n)
{
    char **p = calloc(n ? n : 1, sizeof *p);
    if (!p) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(p[i] = strdup(paths[i]))) {
            while (i--) free(p[i]);
            free(p);
            return -ENOMEM;
        }
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < v->ndb_paths; i++) free(v->db_paths[i]);
    free(v->db_paths);
    v->db_paths = p;
    v->ndb_paths = n;
    pthread_mutex_unlock(&v->mu);
    return 0;
}

void jv_destroy(struct jv_view *v)
{
    if (!v) return;
    jv_end(v, JV_END_UNMOUNT, NULL, 0);
    while (v->handles) {
        struct jv_handle *h = v->handles;
        v->handles = h->next;
        free(h);
    }
    while (v->status_live) {
        struct status_snap *st = v->status_live;
        v->status_live = st->next;
        free(st->text);
        free(st);
    }
    for (size_t i = 0; i < v->ncorrupt; i++) free(v->corrupt[i]);
    for (size_t i = 0; i < v->ndb_paths; i++) free(v->db_paths[i]);
    free(v->db_paths);
    free(v->files);
    free(v->manifest);
    free(v->manifest_read);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

/* ---- begin: build the set ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool name_taken(const struct jv_file *files, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(files[i].name, name)) return true;
    return false;
}

/* The mtime second of the last set read in this process (any mount). */
static pthread_mutex_t last_second_mu = PTHREAD_MUTEX_INITIALIZER;
static time_t last_second;

/* Lists the engine's set into v->files (databases, logs, manifest last). */
static int build_set(struct jv_view *v)
{
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    JET_BACKUPFILEINFO fi = {.cbStruct = sizeof fi};
    JET_ERR err = JetGetBackupStatusInstance(v->inst, &st);
    if (err < 0) return (int)err;
    v->begin_us = st.begin_us;
    v->gen_low = st.ulGenLow;
    v->gen_high = st.ulGenHigh;
    /* The database and the manifest change with every begin: their mtime
     * is the begin, to the microsecond, so change detection never takes
     * two sessions' files for one.  rsync, tar -g and duplicity compare
     * whole seconds by default, so the second also moves on from one
     * session that was read to the next (one ahead of the clock when two
     * begin in the same second; sets only listed do not count). */
    struct timespec begin_ts = {(time_t)(st.begin_us / 1000000u), (long)(st.begin_us % 1000000u) * 1000};
    pthread_mutex_lock(&last_second_mu);
    if (begin_ts.tv_sec <= last_second) begin_ts.tv_sec = last_second + 1;
    pthread_mutex_unlock(&last_second_mu);
    v->set_second = begin_ts.tv_sec;
    uint64_t epoch = (uint64_t)v->epoch[v->kind] << JV_EPOCH_SHIFT;
    struct jv_file *files = calloc(st.cFiles + 2, sizeof *files);
    if (!files) return JET_errOutOfMemory;
    size_t n = 0;
    for (unsigned long i = 0; i < st.cFiles; i++) {
        if ((err = JetGetBackupFileInfoInstance(v->inst, i, &fi)) < 0) goto fail;
        struct jv_file *f = &files[n];
        f->engine_index = i;
        f->is_db = fi.fDatabase;
        f->size = fi.cbSize;
        put(f->path, sizeof f->path, "%s", fi.szPath);
        put(f->name, sizeof f->name, "%s", base_name(fi.szPath));
        if (f->is_db) {
            /* Two databases of one name in different directories. */
            if (name_taken(files, n, f->name)) put(f->name, sizeof f->name, "%lu-%s", i, base_name(fi.szPath));
            f->st_ino = JV_INO_DB_OF(v->kind, i);
            f->mtime = begin_ts;
        } else {
            struct stat ls;
            f->st_ino = JV_INO_LOG_OF(v->kind, fi.ulGeneration);
            /* A generation of the set is closed: its mtime no longer moves. */
            f->mtime = stat(f->path, &ls) == 0 ? ls.st_mtim : begin_ts;
        }
        f->ino = f->st_ino | epoch;
        n++;
    }
    /* The manifest under its backup's own name, then as backup.manifest,
     * last: a later session copied into the same directory leaves this
     * one's in place, and a tool copying in listing order writes
     * backup.manifest after everything it describes. */
    struct jv_file *sm = &files[n++], *m = &files[n++];
    sm->st_ino = JV_INO_SESSION_MANIFEST_OF(v->kind);
    sm->ino = sm->st_ino | epoch;
    if ((err = JetBackupManifestName(v->manifest, sm->name, sizeof sm->name)) < 0) goto fail;
    sm->is_manifest = true;
    sm->manifest_copy = 1;
    sm->size = v->manifest_len;
    sm->mtime = begin_ts;
    m->st_ino = JV_INO_MANIFEST_OF(v->kind);
    m->ino = m->st_ino | epoch;
    put(m->name, sizeof m->name, "%s", JV_MANIFEST_NAME);
    m->is_manifest = true;
    m->size = v->manifest_len;
    m->mtime = begin_ts;
    v->files = files;
    v->nfiles = n;
    return 0;
fail:
    free(files);
    return (int)err;
}

static JET_ERR fetch_manifest(struct jv_view *v)
{
    unsigned long cb = 0;
    JET_ERR err = JetGetBackupManifestInstance(v->inst, kind_names[v->kind], NULL, 0, &cb);
    if (err < 0) return err;
    char *text = malloc(cb);
    if (!text) return JET_errOutOfMemory;
    if ((err = JetGetBackupManifestInstance(v->inst, kind_names[v->kind], text, cb, &cb)) < 0) {
        free(text);
        return err;
    }
    v->manifest = text;
    v->manifest_len = strlen(text);
    if (!(v->manifest_read = calloc(2 * (v->manifest_len + 1), 1))) return JET_errOutOfMemory;
    return JET_errSuccess;
}

static void close_handles(struct jv_view *v);

/* Frees the set of a backup that was only listed.  Context: v->mu held. */
static void drop_set(struct jv_view *v)
{
    free(v->files);
    free(v->manifest);
    free(v->manifest_read);
    v->files = NULL;
    v->nfiles = 0;
    v->manifest = NULL;
    v->manifest_read = NULL;
    v->manifest_len = v->manifest_covered[0] = v->manifest_covered[1] = 0;
    v->bytes_served = v->reads = 0;
}

/*
 * A backup no file of which was opened (a tree walk listed it) gives way to
 * another kind: it is aborted, which records nothing and truncates
 * nothing, and the session is idle again.  Context: v->mu held.
 */
static void give_way(struct jv_view *v, enum jv_kind next)
{
    close_handles(v); /* none can be open; this keeps the engine's count honest */
    JET_ERR err = JetEndExternalBackupInstance2(v->inst, JET_bitBackupEndAbort);
    if (err < 0) {
        char why[512];
        jet_reason(why, sizeof why, err);
        vlog(v, "%s backup that was only listed: the engine failed to end it: %s", kind_names[v->kind], why);
        return; /* stays RUNNING: the new kind is refused, and says why */
    }
    vlog(v, "%s backup aborted, nothing truncated, history unchanged: no file of its set was opened; "
            "a %s backup begins instead", kind_names[v->kind], kind_names[next]);
    drop_set(v);
    v->state = JV_IDLE;
}

int jv_begin(struct jv_view *v, enum jv_kind kind)
{
    int rc = 0;
    char why[1024];
    if (kind >= JV_NKINDS) return -EINVAL;
    pthread_mutex_lock(&v->mu);
    v->last_activity = mono_now();
    if (v->state == JV_RUNNING && v->kind == kind) goto out;
    if (v->state == JV_RUNNING && !v->opened) give_way(v, kind);
    if (v->state != JV_IDLE) {
        put(v->refused, sizeof v->refused,
            "%s backup refused (EBUSY): this mount session %s a %s backup%s; unmount to start another",
            kind_names[kind], v->state == JV_RUNNING ? "is already reading" : "already ran", kind_names[v->kind],
            v->state == JV_RUNNING ? " (a file of its set was opened)" : "");
        rc = -EBUSY;
        goto out;
    }
    if (v->begun[kind] && v->epoch[kind] + 1 >= (1u << (63 - JV_EPOCH_SHIFT))) {
        put(v->refused, sizeof v->refused, "%s backup refused (EBUSY): begun too often in one session; unmount",
            kind_names[kind]);
        rc = -EBUSY;
        goto out;
    }
    bool log_only = kind == JV_INCREMENTAL || kind == JV_DIFFERENTIAL;
    /* AnyOrder: the set is fixed below, when the set directory is opened,
     * and the readers open the databases afterwards, in any order. */
    JET_GRBIT bits = (log_only ? JET_bitBackupIncremental : 0) | JET_bitBackupAnyOrder;
    JET_ERR err = JetBeginExternalBackupInstance(v->inst, bits);
    if (err < 0) {
        jet_reason(why, sizeof why, err);
        rc = -jv_errno(err);
        put(v->refused, sizeof v->refused, "%s backup refused (%s): %s", kind_names[kind], errno_name(-rc), why);
        goto out;
    }
    v->kind = kind;
    if (v->begun[kind]) v->epoch[kind]++;
    v->begun[kind] = true;
    /* GetLogInfo fixes the log range now, when the set directory is
     * opened (it rolls the log), with no file open, so that truncation can
     * be asked for at the end whatever is open then. */
    JET_LOGINFO li = {.cbSize = sizeof li};
    unsigned long cb = 0;
    if ((err = JetGetLogInfoInstance2(v->inst, NULL, 0, &cb, &li)) < 0 || (err = fetch_manifest(v)) < 0 ||
        (err = build_set(v)) < 0) {
        jet_reason(why, sizeof why, err);
        put(v->refused, sizeof v->refused, "%s backup failed to start: %s", kind_names[kind], why);
        JetEndExternalBackupInstance2(v->inst, JET_bitBackupEndAbort);
        drop_set(v);
        rc = -EIO;
        goto out;
    }
    v->state = JV_RUNNING;
    v->opened = false;
    v->refused[0] = '\0';
    vlog(v, "%s backup begun: generations %lu..%lu, %zu files", kind_names[kind], v->gen_low, v->gen_high,
         v->nfiles);
out:
    if (rc < 0) vlog(v, "%s", v->refused);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

/* ---- names and attributes ---- */

static void dir_stat(const struct jv_view *v, uint64_t ino, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = S_IFDIR | (v->opt.group_access ? 0550 : 0500);
    st->st_nlink = ino == JV_INO_ROOT || ino == JV_INO_BACKUP ? 3 + (ino == JV_INO_BACKUP ? 3 : 0) : 2;
    st->st_uid = v->opt.uid;
    st->st_gid = v->opt.gid;
    st->st_mtim = st->st_ctim = st->st_atim = v->mount_time;
    st->st_size = 4096;
}

/* ctime matches mtime: tools that also compare ctime (restic, borg) see a
 * file change exactly when its content did. */
static void file_stat(const struct jv_view *v, uint64_t st_ino, uint64_t size, struct timespec mtime, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = st_ino;
    st->st_mode = S_IFREG | (v->opt.group_access ? 0440 : 0400);
    st->st_nlink = 1;
    st->st_uid = v->opt.uid;
    st->st_gid = v->opt.gid;
    st->st_size = (off_t)size;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
    /* Readers size their buffers from this: large reads, fewer requests. */
    st->st_blksize = 1 << 20;
    st->st_mtim = st->st_ctim = st->st_atim = mtime;
}

static const struct jv_file *file_of(const struct jv_view *v, uint64_t ino)
{
    for (size_t i = 0; i < v->nfiles; i++)
        if (v->files[i].ino == ino) return &v->files[i];
    return NULL;
}

static size_t status_len(struct jv_view *v);

int jv_getattr(struct jv_view *v, uint64_t ino, struct stat *st)
{
    int rc = 0;
    if (ino == JV_INO_ROOT || ino == JV_INO_BACKUP || (ino >= JV_INO_KIND && ino < JV_INO_KIND + JV_NKINDS)) {
        dir_stat(v, ino, st);
        return 0;
    }
    if (ino == JV_INO_STATUS) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        file_stat(v, ino, status_len(v), now, st);
        return 0;
    }
    pthread_mutex_lock(&v->mu);
    const struct jv_file *f = file_of(v, ino);
    if (f) file_stat(v, f->st_ino, f->size, f->mtime, st);
    else rc = -ENOENT;
    pthread_mutex_unlock(&v->mu);
    return rc;
}

static void entry_of(struct jv_view *v, uint64_t ino, const char *name, struct jv_entry *e)
{
    e->ino = ino;
    put(e->name, sizeof e->name, "%s", name);
    jv_getattr(v, ino, &e->st);
}

int jv_lookup(struct jv_view *v, uint64_t parent, const char *name, struct jv_entry *e)
{
    if (parent == JV_INO_ROOT) {
        if (!strcmp(name, "status")) entry_of(v, JV_INO_STATUS, name, e);
        else if (!strcmp(name, "backup")) entry_of(v, JV_INO_BACKUP, name, e);
        else return -ENOENT;
        return 0;
    }
    if (parent == JV_INO_BACKUP) {
        for (int k = 0; k < JV_NKINDS; k++)
            if (!strcmp(name, kind_names[k])) {
                entry_of(v, JV_INO_KIND + (uint64_t)k, name, e);
                return 0;
            }
        return -ENOENT;
    }
    if (parent >= JV_INO_KIND && parent < JV_INO_KIND + JV_NKINDS) {
        int rc = jv_begin(v, (enum jv_kind)(parent - JV_INO_KIND));
        if (rc < 0) return rc;
        pthread_mutex_lock(&v->mu);
        rc = -ENOENT;
        for (size_t i = 0; i < v->nfiles; i++)
            if (!strcmp(v->files[i].name, name)) {
                e->ino = v->files[i].ino;
                put(e->name, sizeof e->name, "%s", name);
                file_stat(v, v->files[i].st_ino, v->files[i].size, v->files[i].mtime, &e->st);
                rc = 0;
            }
        pthread_mutex_unlock(&v->mu);
        return rc;
    }
    if (parent == JV_INO_STATUS || file_of(v, parent)) return -ENOTDIR;
    return -ENOENT;
}

int jv_readdir(struct jv_view *v, uint64_t ino, size_t from, struct jv_entry *e, size_t max)
{
    size_t n = 0, i = 0;
#define EMIT(INO, NAME)                                                                                 \
    do {                                                                                                \
        if (i++ >= from && n < max) entry_of(v, (INO), (NAME), &e[n++]);                                \
    } while (0)
    if (ino == JV_INO_ROOT) {
        EMIT(JV_INO_STATUS, "status");
        EMIT(JV_INO_BACKUP, "backup");
        return (int)n;
    }
    if (ino == JV_INO_BACKUP) {
        for (int k = 0; k < JV_NKINDS; k++) EMIT(JV_INO_KIND + (uint64_t)k, kind_names[k]);
        return (int)n;
    }
#undef EMIT
    if (ino >= JV_INO_KIND && ino < JV_INO_KIND + JV_NKINDS) {
        int rc = jv_begin(v, (enum jv_kind)(ino - JV_INO_KIND));
        if (rc < 0) return rc;
        pthread_mutex_lock(&v->mu);
        for (i = from; i < v->nfiles && n < max; i++, n++) {
            const struct jv_file *f = &v->files[i];
            e[n].ino = f->ino;
            put(e[n].name, sizeof e[n].name, "%s", f->name);
            file_stat(v, f->st_ino, f->size, f->mtime, &e[n].st);
        }
        pthread_mutex_unlock(&v->mu);
        return (int)n;
    }
    return file_of(v, ino) || ino == JV_INO_STATUS ? -ENOTDIR : -ENOENT;
}

/* ---- reads ---- */

int64_t jv_open(struct jv_view *v, uint64_t ino)
{
    int64_t rc;
    struct jv_handle *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    pthread_mutex_lock(&v->mu);
    v->last_activity = mono_now();
    const struct jv_file *f = file_of(v, ino);
    if (!f) {
        rc = ino == JV_INO_STATUS ? -EINVAL : -ENOENT;
        goto fail;
    }
    if (v->state != JV_RUNNING) {
        rc = -EIO;
        goto fail;
    }
    h->f = f;
    if (!f->is_manifest) {
        unsigned long lo = 0, hi = 0;
        JET_ERR err = JetOpenFileInstance(v->inst, f->path, &h->jh, &lo, &hi);
        if (err < 0) {
            char why[1024];
            jet_reason(why, sizeof why, err);
            vlog(v, "open %s refused: %s", f->name, why);
            put(v->refused, sizeof v->refused, "open %s refused: %s", f->name, why);
            /* The engine's handle table full is its OutOfMemory: to the
             * reader, too many open files. */
            rc = err == JET_errOutOfMemory ? -EMFILE : -jv_errno(err);
            goto fail;
        }
    }
    h->next = v->handles;
    v->handles = h;
    if (!v->opened) {
        pthread_mutex_lock(&last_second_mu);
        if (v->set_second > last_second) last_second = v->set_second;
        pthread_mutex_unlock(&last_second_mu);
    }
    v->opened = true;
    pthread_mutex_unlock(&v->mu);
    return (int64_t)(intptr_t)h;
fail:
    pthread_mutex_unlock(&v->mu);
    free(h);
    return rc;
}

static void note_corrupt(struct jv_view *v, const char *what)
{
    for (size_t i = 0; i < v->ncorrupt; i++)
        if (!strcmp(v->corrupt[i], what)) return;
    if (v->ncorrupt < MAX_CORRUPT) {
        char *c = strdup(what);
        if (c) v->corrupt[v->ncorrupt++] = c;
    }
    vlog(v, "corrupt data refused: %s", what);
}

/* Whether h's stream read most of the bytes it spans: a sequential reader
 * reads them all (a few twice), a reader skipping forward through the
 * file a small part.  Context: v->mu held. */
static bool dense(const struct jv_handle *h) { return h->stream_bytes * 2 >= h->stream_end - h->stream_start; }

/* Follows the reader of h after it read [off, off + n) (view.h), and says
 * which range it passed, if any.  Context: v->mu held. */
static void follow_reader(struct jv_handle *h, uint64_t off, uint64_t n, struct jv_drop *drop)
{
    uint64_t end = off + n;
    bool continues = h->streamed && off + JV_SEQ_SLACK >= h->stream_end && off <= h->stream_end + JV_SEQ_GAP &&
                     off + JV_SEQ_SLACK >= h->dropped;
    if (!continues) {
        h->stream_start = h->dropped = off;
        h->stream_end = end;
        h->stream_bytes = n;
        h->streamed = true;
        return;
    }
    /* A request behind the stream's start that completed late: the stream
     * starts there, if nothing was dropped yet. */
    if (off < h->stream_start && h->dropped == h->stream_start) h->stream_start = h->dropped = off;
    if (end > h->stream_end) h->stream_end = end;
    h->stream_bytes += n;
    if (h->stream_end < h->dropped + JV_DROP_BEHIND + JV_DROP_STEP || !dense(h)) return;
    uint64_t to = h->stream_end - JV_DROP_BEHIND;
    if (drop) *drop = (struct jv_drop){h->f->ino, h->dropped, to - h->dropped};
    h->dropped = to;
}

ssize_t jv_read(struct jv_view *v, int64_t fh, uint64_t off, void *buf, size_t size)
{
    return jv_read_drop(v, fh, off, buf, size, NULL);
}

ssize_t jv_read_drop(struct jv_view *v, int64_t fh, uint64_t off, void *buf, size_t size, struct jv_drop *drop)
{
    if (drop) drop->len = 0;
    struct jv_handle *want = (struct jv_handle *)(intptr_t)fh, *h;
    /* A release can overtake a read of the same open (the kernel abandons
     * a killed reader's request): look the handle up among the live ones
     * instead of trusting fh, and take what the read needs under mu. */
    pthread_mutex_lock(&v->mu);
    for (h = v->handles; h && h != want; h = h->next) {}
    if (!h) {
        pthread_mutex_unlock(&v->mu);
        return -EBADF;
    }
    const struct jv_file *f = h->f;
    JET_HANDLE jh = h->jh;
    if (f->is_manifest) {
        size_t n = 0;
        if (v->state == JV_RUNNING && off < v->manifest_len) {
            n = v->manifest_len - off < size ? v->manifest_len - (size_t)off : size;
            memcpy(buf, v->manifest + off, n);
            uint8_t *seen = v->manifest_read + (size_t)f->manifest_copy * (v->manifest_len + 1);
            for (size_t i = 0; i < n; i++)
                if (!seen[off + i]) {
                    seen[off + i] = 1;
                    v->manifest_covered[f->manifest_copy]++;
                }
        }
        ssize_t rc = v->state == JV_RUNNING ? (ssize_t)n : -EIO;
        if (rc > 0) v->bytes_served += n;
        if (rc > 0) follow_reader(h, off, n, drop);
        v->last_activity = mono_now(); /* reading the manifest is activity too */
        pthread_mutex_unlock(&v->mu);
        return rc;
    }
    pthread_mutex_unlock(&v->mu);
    if (!jh) return -EIO;
    if (size > 0x7fffffffu) size = 0x7fffffffu;
    unsigned long got = 0;
    JET_ERR err = JetReadFileAtInstance(v->inst, jh, off, buf, (unsigned long)size, &got);
    pthread_mutex_lock(&v->mu);
    /* h may have been released meanwhile: only a live one is followed. */
    for (h = v->handles; h && h != want; h = h->next) {}
    if (h && err >= 0 && got) follow_reader(h, off, got, drop);
    v->last_activity = mono_now();
    v->reads++;
    if (err < 0) {
        char why[1024];
        jet_reason(why, sizeof why, err);
        if (err == JET_errReadVerifyFailure || err == JET_errLogReadVerifyFailure) note_corrupt(v, why);
        else vlog(v, "read %s at %" PRIu64 " failed: %s", f->name, off, why);
    } else {
        v->bytes_served += got;
    }
    pthread_mutex_unlock(&v->mu);
    return err < 0 ? -jv_errno(err) : (ssize_t)got;
}

void jv_release(struct jv_view *v, int64_t fh) { jv_release_drop(v, fh, NULL); }

void jv_release_drop(struct jv_view *v, int64_t fh, struct jv_drop *drop)
{
    struct jv_handle *h = (struct jv_handle *)(intptr_t)fh;
    if (drop) drop->len = 0;
    pthread_mutex_lock(&v->mu);
    for (struct jv_handle **p = &v->handles; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    /* The rest of a stream that read the file whole, or long enough not
     * to be a random reader's: nobody is left to read it from memory. */
    uint64_t len = h->stream_end - h->stream_start;
    if (drop && h->streamed && h->stream_end > h->dropped &&
        ((len >= JV_STREAM_MIN && dense(h)) || (h->stream_start == 0 && h->stream_end >= h->f->size)))
        *drop = (struct jv_drop){h->f->ino, h->dropped, h->stream_end - h->dropped};
    if (h->jh) JetCloseFileInstance(v->inst, h->jh);
    pthread_mutex_unlock(&v->mu);
    free(h);
}

/* ---- ending ---- */

enum file_state { FS_UNREAD, FS_READ, FS_DELIVERED };
static const char *const file_state_names[] = {"unread", "read", "delivered_before"};

/* How far file f was read in this session, and whether it needs reading.
 * Context: v->mu held, the backup running. */
static enum file_state file_state(struct jv_view *v, const struct jv_file *f, uint64_t *pcovered)
{
    JET_BACKUPFILEINFO fi = {.cbStruct = sizeof fi};
    if (f->is_manifest) fi.cbCovered = v->manifest_covered[f->manifest_copy];
    else if (JetGetBackupFileInfoInstance(v->inst, f->engine_index, &fi) < 0) fi.cbCovered = 0, fi.fDeliveredBefore = 0;
    *pcovered = fi.cbCovered;
    return fi.cbCovered >= f->size ? FS_READ : fi.fDeliveredBefore ? FS_DELIVERED : FS_UNREAD;
}

/* Whether every file of the set was read whole, or delivered before; else
 * why not, into why. */
static bool read_whole(struct jv_view *v, char *why, size_t cbwhy)
{
    size_t used = 0, missing = 0;
    why[0] = '\0';
    if (!v->opened) {
        put(why, cbwhy, "no file of the set was opened (it was only listed)");
        return false;
    }
    for (size_t i = 0; i < v->nfiles; i++) {
        const struct jv_file *f = &v->files[i];
        uint64_t covered;
        if (file_state(v, f, &covered) != FS_UNREAD) continue;
        if (missing++ < 4 && used < cbwhy)
            used += (size_t)put(why + used, cbwhy - used, "%s%s read %" PRIu64 "%% (%" PRIu64 " of %" PRIu64 " bytes)",
                                     missing > 1 ? ", " : "", f->name, f->size ? covered * 100 / f->size : 0, covered,
                                     f->size);
    }
    if (missing > 4 && used < cbwhy) put(why + used, cbwhy - used, " and %zu more files", missing - 4);
    return missing == 0;
}

/* The generations a truncating end will delete, as "a..b" (or "none"). */
static void truncate_range(struct jv_view *v, char *out, size_t cb)
{
    unsigned long n = 0, low = 0, high = 0;
    unsigned long cap = 4096, got = 0;
    char *szz = NULL;
    put(out, cb, "none");
    /* A short buffer gets the list's first cbMax bytes, cut anywhere, and
     * the whole size: grow to it, and never read past what was written. */
    for (;;) {
        char *nb = realloc(szz, cap + 2);
        if (!nb) goto out;
        szz = nb;
        if (JetGetTruncateLogInfoInstance(v->inst, szz, cap, &got) < 0) goto out;
        if (got <= cap) break;
        cap = got;
    }
    szz[got] = szz[got + 1] = '\0';
    for (size_t off = 0; off < got && szz[off]; off += strlen(szz + off) + 1) {
        JET_INSPECT_LOGHEADER lh;
        unsigned long g = JetInspectLogHeader(szz + off, &lh) >= 0 ? lh.generation : 0;
        if (!g) continue;
        if (!n++ || g < low) low = g;
        if (g > high) high = g;
    }
out:
    free(szz);
    if (n) put(out, cb, "%lu..%lu (%lu generation%s)", low, high, n, n == 1 ? "" : "s");
}

/* Closes every engine handle so the engine can end; reads then fail. */
static void close_handles(struct jv_view *v)
{
    for (struct jv_handle *h = v->handles; h; h = h->next) {
        JET_HANDLE jh = h->jh;
        __atomic_store_n(&h->jh, 0, __ATOMIC_RELEASE);
        if (jh) JetCloseFileInstance(v->inst, jh);
    }
}

/* abort_reason: why an abort was asked for (JV_END_ABORT).
 * Context: v->mu held. */
static int end_locked(struct jv_view *v, enum jv_end_how how, const char *abort_reason, char *why, size_t cbwhy)
{
    char detail[768], trunc[64] = "";
    const char *kind = kind_names[v->kind];
    bool truncating = v->kind == JV_FULL || v->kind == JV_INCREMENTAL;
    bool whole = read_whole(v, detail, sizeof detail);
    bool normal;
    int rc;
    if (how == JV_END_NORMAL && !whole) {
        put(v->refused, sizeof v->refused, "normal end refused: not every byte of the set was read: %s", detail);
        vlog(v, "%s", v->refused);
        put(why, cbwhy, "%s", v->refused);
        return -EAGAIN;
    }
    if (how == JV_END_ABORT) {
        normal = false;
        put(detail, sizeof detail, "%s", abort_reason ? abort_reason : "aborted on request");
    } else if (!whole) {
        normal = false;
        char d[900];
        put(d, sizeof d, "%s%s", v->opened ? "not every byte of the set was read: " : "", detail);
        put(detail, sizeof detail, "%s", d);
    } else {
        normal = true;
    }
    char read_how[96] = "every byte of the set was read";
    size_t ndelivered = 0;
    for (size_t i = 0; i < v->nfiles; i++) {
        uint64_t covered;
        if (file_state(v, &v->files[i], &covered) == FS_DELIVERED) ndelivered++;
    }
    if (ndelivered)
        put(read_how, sizeof read_how, "every file of the set was read whole, %zu log generation%s by an earlier backup",
            ndelivered, ndelivered == 1 ? "" : "s");
    /* With manual truncation only an explicit normal end truncates: an
     * unmount of a truncating kind then aborts, recording nothing. */
    if (normal && truncating && how == JV_END_UNMOUNT && v->opt.truncate_manual) {
        normal = false;
        put(detail, sizeof detail, "truncation is manual and no explicit end was given (jetfs end MOUNT)");
    }
    for (size_t i = 0; i < v->nfiles; i++)
        v->files[i].final_state = (int)file_state(v, &v->files[i], &v->files[i].final_covered);
    close_handles(v);
    JET_ERR err = JET_errSuccess;
    if (normal && truncating) {
        truncate_range(v, trunc, sizeof trunc);
        if ((err = JetTruncateLogInstance(v->inst)) < 0) {
            char r[512];
            jet_reason(r, sizeof r, err);
            put(detail, sizeof detail, "truncation refused by the engine: %s", r);
            normal = false;
        }
    }
    err = JetEndExternalBackupInstance2(v->inst, normal ? JET_bitBackupEndNormal : JET_bitBackupEndAbort);
    if (err < 0) {
        char r[512];
        jet_reason(r, sizeof r, err);
        put(v->outcome, sizeof v->outcome, "%s backup: the engine failed to end it: %s", kind, r);
        rc = -EIO;
    } else if (normal) {
        if (truncating)
            put(v->outcome, sizeof v->outcome, "%s backup ended normally: %s; truncated generations %s", kind,
                read_how, trunc);
        else
            put(v->outcome, sizeof v->outcome, "%s backup ended normally: %s; a %s truncates nothing", kind, read_how,
                kind);
        rc = 0;
    } else {
        put(v->outcome, sizeof v->outcome, "%s backup aborted, nothing truncated, history unchanged: %s", kind,
                 detail);
        rc = 1;
    }
    v->state = JV_ENDED;
    /* An earlier refused end no longer says anything true once the backup
     * ended: status's last_error is for what still stands. */
    if (rc >= 0 && !strncmp(v->refused, "normal end refused", 18)) v->refused[0] = '\0';
    vlog(v, "%s", v->outcome);
    put(why, cbwhy, "%s", v->outcome);
    return rc;
}

int jv_end(struct jv_view *v, enum jv_end_how how, char *why, size_t cbwhy)
{
    char scratch[1];
    if (!why) {
        why = scratch;
        cbwhy = sizeof scratch;
    }
    pthread_mutex_lock(&v->mu);
    int rc = -ENOENT;
    if (v->state == JV_RUNNING) rc = end_locked(v, how, NULL, why, cbwhy);
    else put(why, cbwhy, "no backup is running in this session");
    pthread_mutex_unlock(&v->mu);
    return rc;
}

void jv_outcome(struct jv_view *v, char *out, size_t cb)
{
    pthread_mutex_lock(&v->mu);
    put(out, cb, "%s", v->outcome);
    pthread_mutex_unlock(&v->mu);
}

static void abort_with(struct jv_view *v, const char *reason)
{
    char why[8];
    /* Stop first: reads in flight fail promptly instead of finishing. */
    JetStopBackupInstance(v->inst);
    end_locked(v, JV_END_ABORT, reason, why, sizeof why);
}

int jv_tick(struct jv_view *v, double now_s)
{
    int rc = 0;
    pthread_mutex_lock(&v->mu);
    if (v->state != JV_RUNNING) goto out;
    JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
    bool have = JetGetBackupStatusInstance(v->inst, &st) >= 0;
    if (have && st.szFailure[0]) {
        abort_with(v, st.szFailure);
        rc = 1;
    } else if (have && v->opt.space_limit &&
        st.cbPreservedMemory + st.cbPreservedSpill > v->opt.space_limit) {
        char r[256];
        put(r, sizeof r, "snapshot space %llu bytes passed the limit of %llu bytes (--space-limit)",
                 st.cbPreservedMemory + st.cbPreservedSpill, (unsigned long long)v->opt.space_limit);
        abort_with(v, r);
        rc = 1;
    } else if (v->handles) {
        /* A file held open may be read from the kernel's page cache, which
         * the daemon never sees: that reader is not idle.  (One that hangs
         * with a file open is bounded by the space limit.) */
        v->last_activity = now_s;
    } else if (v->opt.idle_timeout_s && now_s - v->last_activity > v->opt.idle_timeout_s) {
        char r[256];
        put(r, sizeof r, "no read for %u seconds and no file held open (--idle-timeout)", v->opt.idle_timeout_s);
        abort_with(v, r);
        rc = 1;
    }
out:
    pthread_mutex_unlock(&v->mu);
    return rc;
}

/* ---- status ----
 *
 * Built as a jansson tree (values and escaping by the library), then laid
 * out for a person reading it with cat and for grep: each top-level member
 * on its line; an array member's elements one per line; inside an object,
 * a member holding objects (the backup's files) on a line of its own;
 * everything else on one line, as jansson writes it with ", " and ": ".
 */

struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = (b->n + n + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_indent(struct sbuf *b, const char *before, int indent)
{
    sb_put(b, before, strlen(before));
    for (int i = 0; i < indent; i++) sb_put(b, " ", 1);
}

static void sb_json(struct sbuf *b, json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    if (!s) {
        b->oom = true;
        return;
    }
    sb_put(b, s, strlen(s));
    free(s);
}

static void sb_key(struct sbuf *b, const char *key)
{
    json_t *k = json_string(key);
    if (!k) b->oom = true;
    else sb_json(b, k);
    json_decref(k);
    sb_put(b, ": ", 2);
}

static void lay_array(struct sbuf *b, json_t *a, int indent)
{
    size_t n = json_array_size(a);
    sb_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        sb_indent(b, i ? ",\n" : "\n", indent + 2);
        sb_json(b, json_array_get(a, i));
    }
    if (n) sb_indent(b, "\n", indent);
    sb_put(b, "]", 1);
}

static void lay_object(struct sbuf *b, json_t *o, int indent)
{
    const char *k;
    json_t *v;
    bool first = true;
    sb_put(b, "{", 1);
    json_object_foreach(o, k, v)
    {
        bool own_line = json_is_array(v) && json_is_object(json_array_get(v, 0));
        if (own_line) sb_indent(b, first ? "\n" : ",\n", indent + 2);
        else if (!first) sb_put(b, ", ", 2);
        sb_key(b, k);
        if (own_line) lay_array(b, v, indent + 2);
        else sb_json(b, v);
        first = false;
    }
    sb_put(b, "}", 1);
}

static void lay_status(struct sbuf *b, json_t *root)
{
    const char *k;
    json_t *v;
    bool first = true;
    sb_put(b, "{", 1);
    json_object_foreach(root, k, v)
    {
        sb_indent(b, first ? "\n" : ",\n", 2);
        sb_key(b, k);
        if (json_is_array(v)) lay_array(b, v, 2);
        else if (json_is_object(v)) lay_object(b, v, 2);
        else sb_json(b, v);
        first = false;
    }
    sb_put(b, "\n}\n", 3);
}

/* A JSON string of s; a path can hold any byte, and one that is not UTF-8
 * has its bytes past ASCII shown as '?' rather than making status invalid. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j || !s) return j;
    char *c = strdup(s);
    if (!c) return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    j = json_string(c);
    free(c);
    return j;
}

static json_t *jtime(uint64_t us)
{
    char when[32];
    time_t secs = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(when);
}

static json_t *jint(uint64_t x) { return json_integer(x > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)x); }

/* Adds v (taken, NULL for out of memory) to o as key; false if it failed. */
static bool put_j(json_t *o, const char *key, json_t *v) { return json_object_set_new(o, key, v) == 0; }

static json_t *status_history(struct jv_view *v)
{
    json_t *all = json_array();
    for (size_t d = 0; all && d < v->ndb_paths; d++) {
        JET_INSPECT_DBHEADER h;
        if (JetInspectDatabaseHeader(v->db_paths[d], &h) < 0) continue;
        json_t *e = json_object();
        bool ok = e && put_j(e, "database", jstr(base_name(v->db_paths[d])));
        for (int k = 0; ok && k < 4; k++) {
            const JET_INSPECT_BACKUP *bk = &h.backup[k];
            char id[17];
            snprintf(id, sizeof id, "%016" PRIx64, bk->backup_id);
            json_t *one = !bk->backup_id ? json_null()
                                         : json_pack("{s:s, s:o, s:{s:I, s:I}}", "backup_id", id, "time",
                                                     jtime(bk->time_us), "generations", "low", (json_int_t)bk->gen_low,
                                                     "high", (json_int_t)bk->gen_high);
            ok = put_j(e, kind_names[k == 0 ? JV_FULL : k == 1 ? JV_INCREMENTAL : k == 2 ? JV_DIFFERENTIAL : JV_COPY],
                       one);
        }
        if (json_array_append_new(all, e) != 0 || !ok) {
            json_decref(all);
            all = NULL;
        }
    }
    return all;
}

static json_t *status_files(struct jv_view *v)
{
    json_t *files = json_array();
    for (size_t i = 0; files && i < v->nfiles; i++) {
        const struct jv_file *f = &v->files[i];
        uint64_t covered = f->final_covered;
        enum file_state fs = (enum file_state)f->final_state;
        if (v->state == JV_RUNNING) fs = file_state(v, f, &covered);
        json_t *e = json_object();
        bool ok = e && put_j(e, "name", jstr(f->name)) && put_j(e, "size", jint(f->size)) &&
                  put_j(e, "bytes_read", jint(covered)) && put_j(e, "state", json_string(file_state_names[fs]));
        if (json_array_append_new(files, e) != 0 || !ok) {
            json_decref(files);
            files = NULL;
        }
    }
    return files;
}

/* Context: v->mu held. */
static json_t *status_backup(struct jv_view *v)
{
    static const char *const state_names[] = {"none", "running", "ended"};
    json_t *bk = json_object();
    bool ok = bk && put_j(bk, "state", json_string(state_names[v->state]));
    if (ok && v->state != JV_IDLE) {
        double idle = mono_now() - v->last_activity;
        ok = put_j(bk, "type", json_string(kind_names[v->kind])) && put_j(bk, "begin_time", jtime(v->begin_us)) &&
             put_j(bk, "generations", json_pack("{s:I, s:I}", "low", (json_int_t)v->gen_low, "high", (json_int_t)v->gen_high)) &&
             put_j(bk, "bytes_served", jint(v->bytes_served)) && put_j(bk, "reads", jint(v->reads)) &&
             put_j(bk, "idle_seconds", jint(idle > 0 ? (uint64_t)(idle + 0.5) : 0));
    }
    if (ok && v->state == JV_RUNNING) {
        JET_BACKUPSTATUS st = {.cbStruct = sizeof st};
        if (JetGetBackupStatusInstance(v->inst, &st) >= 0)
            ok = put_j(bk, "snapshot_bytes",
                       json_pack("{s:o, s:o, s:o}", "memory", jint(st.cbPreservedMemory), "spill",
                                 jint(st.cbPreservedSpill), "limit", jint(v->opt.space_limit)));
        ok = ok && put_j(bk, "log_generations_held",
                         jint(v->gen_high >= v->gen_low ? v->gen_high - v->gen_low + 1 : 0));
    }
    if (ok && v->state != JV_IDLE) ok = put_j(bk, "files", status_files(v));
    if (ok && v->state == JV_ENDED) ok = put_j(bk, "outcome", jstr(v->outcome));
    if (!ok) {
        json_decref(bk);
        bk = NULL;
    }
    return bk;
}

char *jv_status_json(struct jv_view *v, size_t *plen)
{
    struct sbuf b = {0};
    char when[32], failure[700];
    struct tm tm;
    gmtime_r(&v->mount_time.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *root = json_object();
    pthread_mutex_lock(&v->mu);
    bool failed = JetGetInstanceFailure(v->inst, failure, sizeof failure) < 0;
    bool ok = root && put_j(root, "instance", jstr(v->opt.instance_name ? v->opt.instance_name : "")) &&
              put_j(root, "mounted_at", json_string(when)) &&
              put_j(root, "truncate", json_string(v->opt.truncate_manual ? "manual" : "on-unmount")) &&
              put_j(root, "remount", json_boolean(v->opt.mounts_again)) &&
              put_j(root, "instance_state", json_string(failed ? "failed" : "running")) &&
              put_j(root, "instance_failure", failed ? jstr(failure) : json_null()) &&
              put_j(root, "backup", status_backup(v)) && put_j(root, "last_completed", status_history(v));
    json_t *corrupt = ok ? json_array() : NULL;
    for (size_t i = 0; corrupt && i < v->ncorrupt; i++)
        if (json_array_append_new(corrupt, jstr(v->corrupt[i])) != 0) {
            json_decref(corrupt);
            corrupt = NULL;
        }
    ok = ok && put_j(root, "corrupt_pages", corrupt) &&
         put_j(root, "last_error", v->refused[0] ? jstr(v->refused) : json_null());
    pthread_mutex_unlock(&v->mu);
    if (ok) lay_status(&b, root);
    json_decref(root);
    if (!ok || b.oom) {
        free(b.p);
        return NULL;
    }
    if (plen) *plen = b.n;
    return b.p;
}

static size_t status_len(struct jv_view *v)
{
    size_t n = 0;
    free(jv_status_json(v, &n));
    return n;
}

/* ---- status, one snapshot per open ---- */

int jv_status_open(struct jv_view *v, uint64_t *pfh)
{
    struct status_snap *st = calloc(1, sizeof *st);
    if (!st || !(st->text = jv_status_json(v, &st->len))) {
        free(st);
        return -ENOMEM;
    }
    pthread_mutex_lock(&v->mu);
    st->next = v->status_live;
    v->status_live = st;
    pthread_mutex_unlock(&v->mu);
    *pfh = (uint64_t)(uintptr_t)st;
    return 0;
}

ssize_t jv_status_read(struct jv_view *v, uint64_t fh, uint64_t off, void *buf, size_t size)
{
    const struct status_snap *want = (const struct status_snap *)(uintptr_t)fh, *st;
    size_t n = 0;
    pthread_mutex_lock(&v->mu);
    for (st = v->status_live; st && st != want; st = st->next) {}
    if (st && off < st->len) {
        n = st->len - off < size ? st->len - (size_t)off : size;
        memcpy(buf, st->text + off, n);
    }
    pthread_mutex_unlock(&v->mu);
    return st ? (ssize_t)n : -EBADF;
}

void jv_status_release(struct jv_view *v, uint64_t fh)
{
    struct status_snap *st = (struct status_snap *)(uintptr_t)fh, **p;
    pthread_mutex_lock(&v->mu);
    for (p = &v->status_live; *p && *p != st; p = &(*p)->next) {}
    if (*p) *p = st->next;
    else st = NULL; /* not ours (or released already): nothing to free */
    pthread_mutex_unlock(&v->mu);
    if (st) {
        free(st->text);
        free(st);
    }
}

size_t jv_status_opened(struct jv_view *v)
{
    size_t n = 0;
    pthread_mutex_lock(&v->mu);
    for (const struct status_snap *st = v->status_live; st; st = st->next) n++;
    pthread_mutex_unlock(&v->mu);
    return n;
}

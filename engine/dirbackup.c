/*
 * dirbackup.c -- ESE's directory backup (JetBackupInstance / JetBackup).
 *
 * Built only from the public streaming calls (begin, GetAttachInfo,
 * OpenFile/ReadFile/CloseFile, GetLogInfo, the manifest, TruncateLog, End),
 * as ESE's ErrBKBackup is built from its own; it owns nothing between calls.
 * What it writes is an ordinary backup set (the files under their own names
 * and the manifest, as backup.manifest and under its backup's own name), so
 * JetRestoreSets, `jetutil restore` and `jetutil
 * verify` take it as they take the mount's sets.
 *
 * Layout of a backup directory D (ESE's, with one change):
 *   full              D itself holds the full set (D must be empty).
 *   incremental       D/inc-GGGGGGGG holds it (GGGGGGGG: its first
 *                     generation, hex).  ESE adds the logs to D itself; a
 *                     set here is exactly what its manifest lists, so each
 *                     incremental keeps its own manifest in its own place.
 *   atomic full       written to D/temp; then D/new (if any) becomes D/old
 *                     before the copy, D/temp becomes D/new after it, and
 *                     D/old is deleted last (ESE's ErrBKIPrepareDirectory and
 *                     ErrBKIPromoteDirectory): a complete set exists at
 *                     every moment.
 *   atomic incremental  D/new (if any) becomes D/old, and the incremental
 *                     is added to D/old.
 *
 * Order (ErrBKBackup): check the directory, begin, copy each database, get
 * the log list and copy each log, write the manifest, fsync, promote (atomic
 * full), truncate, end.  Any failure ends the backup as aborted (nothing
 * truncated or recorded in the headers) and removes what this call wrote.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "instance.h"
#include "os.h"

#define COPY_CHUNK (1u << 20)

struct dir_backup {
    JET_INSTANCE inst;
    JET_PFNSTATUS pfn;
    JET_SNPROG prog;
    unsigned long long total, done;   /* bytes of the set, and copied */
    char setdir[JET_PATH_MAX];        /* where this call writes */
    bool created_setdir;              /* this call made setdir (remove it on failure) */
};

/* Removes the regular files of dir, then dir itself (one level: a set has
 * no subdirectories but its inc-* sets, handled by the caller's order). */
static void remove_tree(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd))) {
        char p[JET_PATH_MAX];
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || os_join(p, sizeof p, dir, e->d_name) < 0) continue;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    if (dd) closedir(dd);
    rmdir(dir);
}

/* Whether dir has any entry (a missing one has none). */
static bool dir_has_entries(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    bool any = false;
    while (dd && !any && (e = readdir(dd))) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (dd) closedir(dd);
    return any;
}

static JET_ERR status(struct dir_backup *b, unsigned long snt)
{
    if (!b->pfn) return JET_errSuccess;
    /* The total is an estimate until the log list is known: progress
     * never goes back. */
    unsigned long done = b->total ? (unsigned long)(b->done * 100 / b->total) : 0;
    if (snt == JET_sntComplete || done > 100) done = 100;
    if (done > b->prog.cunitDone) b->prog.cunitDone = done;
    JET_ERR err = b->pfn(0, JET_snpBackup, snt, &b->prog);
    if (err < 0) return jet_report(err, "backup: stopped by the status callback (%s)", JetErrorString(err));
    return JET_errSuccess;
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Copies one file of the running backup into the set directory, under its
 * own name, through the streaming read calls. */
static JET_ERR copy_one(struct dir_backup *b, const char *path, uint8_t *buf)
{
    char to[JET_PATH_MAX];
    JET_HANDLE h = 0;
    unsigned long lo = 0, hi = 0, got = 0;
    int fd = -1;
    bool opened = false;
    JET_ERR err = os_join(to, sizeof to, b->setdir, base_of(path));
    if (err < 0) return jet_report(JET_errInvalidPath, "backup: %s/%s: path too long", b->setdir, base_of(path));
    if (os_exists(to)) return jet_report(JET_errDatabaseDuplicate, "backup: %s: two files of the set have this name", to);
    if ((err = JetOpenFileInstance(b->inst, path, &h, &lo, &hi)) < 0) goto out;
    opened = true;
    unsigned long long size = lo | ((unsigned long long)hi << 32), off = 0;
    if ((err = os_open(to, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd)) < 0) {
        char eb[128];
        err = jet_report(err, "backup: cannot create %s: %s", to, os_reason(err, eb, sizeof eb));
        goto out;
    }
    while (off < size) {
        if ((err = JetReadFileInstance(b->inst, h, buf, COPY_CHUNK, &got)) < 0) goto out;
        if (!got) {
            err = jet_report(JET_errDiskIO, "backup: %s ended at %llu bytes, its size is %llu", path, off, size);
            goto out;
        }
        if ((err = os_pwrite(fd, buf, got, off)) < 0) {
            char eb[128];
            err = jet_report(err, "backup: writing %s failed: %s", to, os_reason(err, eb, sizeof eb));
            goto out;
        }
        off += got;
        b->done += got;
    }
    if ((err = os_fsync(fd)) < 0) err = jet_report(err, "backup: fsync of %s failed", to);
out:
    if (fd >= 0) os_close(fd);
    if (opened) {
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        JET_ERR e2 = JetCloseFileInstance(b->inst, h);
        if (err >= 0) err = e2;
        else jet_report(err, "%s", why);
    }
    return err;
}

/* Writes the running backup's manifest into the set directory: under its
 * backup's own name (JetBackupManifestName), then as backup.manifest. */
static JET_ERR write_manifest(struct dir_backup *b, const char *type)
{
    char to[JET_PATH_MAX], own[80];
    unsigned long cb = 0;
    char *text = NULL;
    JET_ERR err = JetGetBackupManifestInstance(b->inst, type, NULL, 0, &cb);
    if (err >= 0 && !(text = malloc(cb))) err = JET_errOutOfMemory;
    if (err >= 0) err = JetGetBackupManifestInstance(b->inst, type, text, cb, &cb);
    if (err >= 0) err = JetBackupManifestName(text, own, sizeof own);
    for (int i = 0; i < 2 && err >= 0; i++) {
        int fd = -1;
        if (err >= 0) err = os_join(to, sizeof to, b->setdir, i ? "backup.manifest" : own);
        if (err >= 0) err = os_open(to, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &fd);
        if (err >= 0) err = os_pwrite(fd, text, strlen(text), 0);
        if (err >= 0) err = os_fsync(fd);
        if (fd >= 0) os_close(fd);
    }
    free(text);
    if (err < 0 && err != JET_errOutOfMemory) {
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        err = jet_report(err, "backup: writing %s/backup.manifest failed: %s", b->setdir, why[0] ? why : JetErrorString(err));
    }
    return err;
}

/* The names in a multi-string the engine returns (malloc'd; free it).  A
 * short buffer gets the list's first bytes and its whole size (backup.c's
 * list_out): one more call with that size. */
static JET_ERR name_list(JET_INSTANCE inst, bool logs, char **pszz, JET_LOGINFO *li)
{
    unsigned long cap = 4096, cb = 0;
    for (;;) {
        char *szz = calloc(1, cap);
        if (!szz) return JET_errOutOfMemory;
        JET_ERR err = logs ? JetGetLogInfoInstance2(inst, szz, cap, &cb, li) : JetGetAttachInfoInstance(inst, szz, cap, &cb);
        if (err < 0) {
            free(szz);
            return err;
        }
        if (cb <= cap) {
            *pszz = szz;
            return JET_errSuccess;
        }
        free(szz);
        if (cb > (64u << 20)) return jet_report(JET_errOutOfMemory, "backup: the file list does not fit in 64 MiB");
        cap = cb;
    }
}

static JET_ERR file_size(const char *path, unsigned long long *psize)
{
    struct stat st;
    if (stat(path, &st) != 0) return JET_errSuccess; /* the engine's own open names it */
    *psize += (unsigned long long)st.st_size;
    return JET_errSuccess;
}

/* The newest log generation in a full set's directory and its inc-* sets. */
static JET_ERR highest_generation(const char *dir, const char *base, uint32_t *phigh)
{
    uint32_t *gens = NULL;
    size_t n = 0;
    JET_ERR err = log_list(dir, base, &gens, &n);
    if (err < 0) return err;
    if (n && gens[n - 1] > *phigh) *phigh = gens[n - 1];
    free(gens);
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && err >= 0 && (e = readdir(dd))) {
        char p[JET_PATH_MAX];
        if (strncmp(e->d_name, "inc-", 4) || os_join(p, sizeof p, dir, e->d_name) < 0) continue;
        if ((err = log_list(p, base, &gens, &n)) < 0) break;
        if (n && gens[n - 1] > *phigh) *phigh = gens[n - 1];
        free(gens);
    }
    if (dd) closedir(dd);
    return err;
}

/* Makes the set directory ready, as ESE's ErrBKIPrepareDirectory; for an
 * incremental also checks the full set it adds to. */
static JET_ERR prepare_directory(struct dir_backup *b, const char *root, bool incremental, bool atomic)
{
    char temp[JET_PATH_MAX], nw[JET_PATH_MAX], old[JET_PATH_MAX], base[JET_PATH_MAX];
    JET_ERR err;
    if (os_join(temp, sizeof temp, root, "temp") < 0 || os_join(nw, sizeof nw, root, "new") < 0 ||
        os_join(old, sizeof old, root, "old") < 0)
        return jet_report(JET_errInvalidPath, "backup: %s: path too long", root);
    if (!atomic) {
        if (!incremental) {
            if (dir_has_entries(root))
                return jet_report(JET_errBackupDirectoryNotEmpty,
                                  "backup: %s is not empty (a full backup needs an empty or missing directory)", root);
            bool existed = os_exists(root);
            if ((err = os_mkdirs(root)) < 0) {
                char eb[128];
                return jet_report(err, "backup: cannot create %s: %s", root, os_reason(err, eb, sizeof eb));
            }
            snprintf(b->setdir, sizeof b->setdir, "%s", root);
            b->created_setdir = !existed;
            return JET_errSuccess;
        }
        if (os_exists(nw) || os_exists(old))
            return jet_report(JET_errBackupDirectoryNotEmpty,
                              "backup: %s holds an atomic backup (new/old): give JET_bitBackupAtomic", root);
        snprintf(base, sizeof base, "%s", root);
    } else {
        /* 1) a temp left by a failed atomic backup goes; 2) new becomes
         * old (the previous old goes first). */
        if (os_exists(temp)) remove_tree(temp);
        if (os_exists(nw)) {
            if (os_exists(old)) remove_tree(old);
            if ((err = os_rename(nw, old)) < 0) return jet_report(err, "backup: cannot move %s to %s", nw, old);
        }
        if (!incremental) {
            if ((err = os_mkdirs(temp)) < 0) {
                char eb[128];
                return jet_report(err, "backup: cannot create %s: %s", temp, os_reason(err, eb, sizeof eb));
            }
            snprintf(b->setdir, sizeof b->setdir, "%s", temp);
            b->created_setdir = true;
            return JET_errSuccess;
        }
        snprintf(base, sizeof base, "%s", old);
    }
    /* An incremental adds to a full set written here before. */
    char mp[JET_PATH_MAX];
    if (os_join(mp, sizeof mp, base, "backup.manifest") < 0 || !os_exists(mp))
        return jet_report(JET_errMissingFullBackup, "backup: %s holds no full backup set to add an incremental to", base);
    snprintf(b->setdir, sizeof b->setdir, "%s", base); /* the inc-* name comes with the log range */
    return JET_errSuccess;
}

JET_ERR JetBackupInstance(JET_INSTANCE instance, const char *szBackupPath, JET_GRBIT grbit, JET_PFNSTATUS pfnStatus)
{
    struct dir_backup b;
    char root[JET_PATH_MAX], *names = NULL;
    uint8_t *buf = NULL;
    bool begun = false;
    JET_ERR err;
    memset(&b, 0, sizeof b);
    b.inst = instance;
    b.pfn = pfnStatus;
    b.prog.cbStruct = sizeof b.prog;
    b.prog.cunitTotal = 100;
    if (!szBackupPath || !*szBackupPath)
        return jet_report(JET_errInvalidParameter, "backup: a backup directory is required");
    if (grbit & ~(JET_GRBIT)(JET_bitBackupIncremental | JET_bitBackupAtomic)) return JET_errInvalidGrbit;
    /* Room for "/inc-GGGGGGGG/" and a file name. */
    if (strlen(szBackupPath) + 300 >= JET_PATH_MAX) return jet_report(JET_errInvalidPath, "backup: %s: path too long", szBackupPath);
    bool incremental = grbit & JET_bitBackupIncremental, atomic = grbit & JET_bitBackupAtomic;
    snprintf(root, sizeof root, "%s", szBackupPath);
    while (strlen(root) > 1 && root[strlen(root) - 1] == '/') root[strlen(root) - 1] = '\0';
    bool keep = false;          /* the set holds logs the instance no longer has */
    /* The instance first: the legacy form outside legacy mode, or a bad
     * handle, answers before any directory is looked at. */
    struct jet_instance *ji;
    if ((err = inst_lookup_for_backup(instance, &ji)) < 0) return err;
    /* The directory is checked before the backup begins, so a wrong one
     * changes nothing (an atomic backup's new -> old move is ESE's too). */
    if ((err = prepare_directory(&b, root, incremental, atomic)) < 0) goto out;
    if ((err = JetBeginExternalBackupInstance(instance, incremental ? JET_bitBackupIncremental : 0)) < 0) goto out;
    begun = true;
    if (!(buf = malloc(COPY_CHUNK))) {
        err = JET_errOutOfMemory;
        goto out;
    }
    if ((err = status(&b, JET_sntBegin)) < 0) goto out;
    /* Sizes first, so progress runs by bytes over the whole set. */
    char *dbs = NULL, *logs = NULL;
    JET_LOGINFO li = {sizeof li, 0, 0, ""};
    if (!incremental && (err = name_list(instance, false, &dbs, NULL)) < 0) goto out;
    for (const char *p = dbs; p && *p; p += strlen(p) + 1) file_size(p, &b.total);
    /* The logs as the set stands now (the list itself comes after the
     * databases), so the databases' share of the progress is about right. */
    unsigned long long logs_estimate = 0;
    JET_BACKUPFILEINFO fi;
    memset(&fi, 0, sizeof fi);
    fi.cbStruct = sizeof fi;
    for (unsigned long i = 0; JetGetBackupFileInfoInstance(instance, i, &fi) >= 0; i++)
        if (!fi.fDatabase) logs_estimate += fi.cbSize;
    b.total += logs_estimate;
    /* Each database before the log list: GetLogInfo ends the database
     * phase (ESE). */
    for (const char *p = dbs; err >= 0 && p && *p; p += strlen(p) + 1) {
        if ((err = copy_one(&b, p, buf)) >= 0) err = status(&b, JET_sntProgress);
    }
    free(dbs);
    if (err < 0) goto out;
    if ((err = name_list(instance, true, &logs, &li)) < 0) goto out;
    names = logs;
    if (incremental) {
        /* As ESE's JetBackup: the incremental must continue what the
         * directory holds (a backup elsewhere may have truncated the logs
         * in between). */
        uint32_t high = 0;
        if ((err = highest_generation(b.setdir, li.szBaseName, &high)) < 0) goto out;
        if (li.ulGenLow > (unsigned long)high + 1) {
            err = jet_report(JET_errInvalidLogSequence,
                             "backup: %s ends at generation %u, but the oldest log left is %lu (generations in "
                             "between were truncated by another backup): take a full backup",
                             b.setdir, high, li.ulGenLow);
            goto out;
        }
        char inc[32];
        snprintf(inc, sizeof inc, "inc-%08lX", li.ulGenLow);
        char dir[JET_PATH_MAX];
        if (os_join(dir, sizeof dir, b.setdir, inc) < 0) {
            err = JET_errInvalidPath;
            goto out;
        }
        if (os_exists(dir)) {
            err = jet_report(JET_errBackupDirectoryNotEmpty, "backup: %s already exists", dir);
            goto out;
        }
        if ((err = os_mkdirs(dir)) < 0) {
            char eb[128];
            err = jet_report(err, "backup: cannot create %s: %s", dir, os_reason(err, eb, sizeof eb));
            goto out;
        }
        snprintf(b.setdir, sizeof b.setdir, "%s", dir);
        b.created_setdir = true;
    }
    b.total -= logs_estimate;
    for (const char *p = logs; p && *p; p += strlen(p) + 1) file_size(p, &b.total);
    for (const char *p = logs; err >= 0 && p && *p; p += strlen(p) + 1) {
        if ((err = copy_one(&b, p, buf)) >= 0) err = status(&b, JET_sntProgress);
    }
    if (err < 0) goto out;
    if ((err = write_manifest(&b, incremental ? "incremental" : "full")) < 0) goto out;
    if ((err = os_sync_dir(b.setdir)) < 0) goto out;
    if (atomic && !incremental) {
        /* Promote: temp becomes new, then the previous set (old) goes. */
        char nw[JET_PATH_MAX], old[JET_PATH_MAX];
        if ((err = os_join(nw, sizeof nw, root, "new")) < 0 || (err = os_join(old, sizeof old, root, "old")) < 0) goto out;
        if ((err = os_rename(b.setdir, nw)) < 0) {
            err = jet_report(err, "backup: cannot move %s to %s", b.setdir, nw);
            goto out;
        }
        b.created_setdir = false;
        snprintf(b.setdir, sizeof b.setdir, "%s", nw);
        if ((err = os_sync_dir(root)) < 0) goto out;
        if (os_exists(old)) remove_tree(old);
    } else {
        char parent[JET_PATH_MAX];
        os_dirname(parent, sizeof parent, b.setdir);
        if ((err = os_sync_dir(parent)) < 0) goto out;
    }
    /* The set is whole on disk: now the logs it holds may go (JetBackup
     * always truncates, so it records a full or incremental backup).  From
     * here the set is kept whatever happens: it may be the only copy. */
    if ((err = JetTruncateLogInstance(instance)) < 0) goto out;
    keep = true;
    err = JetEndExternalBackupInstance2(instance, JET_bitBackupEndNormal);
    begun = false;
    /* Complete is news, not a question: nothing is left to stop. */
    if (err >= 0) (void)status(&b, JET_sntComplete);
out:
    if (err < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        if (begun) JetEndExternalBackupInstance2(instance, JET_bitBackupEndAbort);
        if (keep) {
            /* nothing to undo */
        } else if (b.created_setdir && b.setdir[0]) {
            remove_tree(b.setdir);
        } else if (b.setdir[0] && !incremental && !atomic) {
            /* The directory was there and empty: empty it again. */
            DIR *dd = opendir(b.setdir);
            struct dirent *e;
            while (dd && (e = readdir(dd))) {
                char p[JET_PATH_MAX];
                if (e->d_name[0] != '.' && os_join(p, sizeof p, b.setdir, e->d_name) >= 0) unlink(p);
            }
            if (dd) closedir(dd);
        }
        jet_report(err, "%s", why[0] ? why : JetErrorString(err));
    }
    free(buf);
    free(names);
    return err;
}

JET_ERR JetBackup(const char *szBackupPath, JET_GRBIT grbit, JET_PFNSTATUS pfnStatus)
{
    return JetBackupInstance(0, szBackupPath, grbit, pfnStatus);
}

JET_ERR JetGetTruncateLogInfo(char *szzLogs, unsigned long cbMax, unsigned long *pcbActual)
{
    return JetGetTruncateLogInfoInstance(0, szzLogs, cbMax, pcbActual);
}

/*
 * restore.c -- JetExternalRestore2/3: bring restored database copies
 * forward with a backup's logs.
 *
 * Owns nothing between calls.  Order: check every input first (each copy's
 * header says it is a backup copy and from which log stream; the log
 * generations are present, of that stream, and chained), copy the logs into
 * the target log directory, then run recovery in a temporary instance in
 * restore mode (recovery.c: start at the copy's checkpoint, use these files
 * for these databases, ignore every other database).  A refusal changes
 * nothing in the target.
 *
 * JetRestoreSets2 (restore_sets) first reads the sets given as chain.c
 * does: every manifest in every directory, the chain from the newest
 * backup back to the first set's full, and each file from wherever a
 * manifest of the chain vouches for it; sets of which one has no manifest
 * at all are taken as given, in order (place_sets_as_given).
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "chain.h"
#include "checkpoint.h"
#include "database.h"
#include "diag.h"
#include "instance.h"
#include "jet_inspect.h"
#include "logrec.h"
#include "manifest.h"
#include "os.h"
#include "page.h"
#include "restore.h"

static JET_ERR copy_file(const char *from, const char *to)
{
    int in = -1, out = -1;
    uint8_t *buf = malloc(1u << 20);
    uint64_t size = 0;
    JET_ERR err = buf ? JET_errSuccess : JET_errOutOfMemory;
    if (err >= 0) err = os_open(from, OS_OPEN_READ, &in);
    if (err >= 0) err = os_fsize(in, &size);
    if (err >= 0) err = os_open(to, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &out);
    if (err >= 0) err = os_ftruncate(out, 0);
    for (uint64_t off = 0; err >= 0 && off < size; off += 1u << 20) {
        size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        if ((err = os_pread_full(in, buf, n, off)) >= 0) err = os_pwrite(out, buf, n, off);
    }
    if (err >= 0) err = os_fsync(out);
    if (in >= 0) os_close(in);
    if (out >= 0) os_close(out);
    free(buf);
    if (err < 0) return jet_report(err, "copying %s to %s failed: %s", from, to, JetErrorString(err));
    return err;
}

/* Checks the generations [low, high] in dir: present, one stream, chained. */
static JET_ERR check_logs(const char *dir, const char *base, uint32_t low, uint32_t high, uint64_t signature)
{
    struct log_reader *rd = NULL;
    for (uint32_t g = low; g <= high; g++) {
        char p[JET_PATH_MAX];
        JET_ERR err = log_file_name(p, sizeof p, dir, base, g);
        if (err < 0) return err;
        /* As ESE's ErrLGIRSTCheckSignaturesLogSequence: a generation of the
         * range that is not on disk is JET_errFileNotFound, naming it. */
        if (!os_exists(p))
            return jet_report(JET_errFileNotFound, "%s: generation %u of the backup is missing", p, g);
        struct log_header h;
        if ((err = log_read_header(p, &h)) < 0) return err;
        if (h.signature != signature)
            return jet_report(JET_errGivenLogFileHasBadSignature,
                              "%s: log signature %016llx, the backup's databases expect %016llx", p,
                              (unsigned long long)h.signature, (unsigned long long)signature);
        if (h.generation != g)
            return jet_report(JET_errGivenLogFileIsNotContiguous, "%s: header says generation %u", p, h.generation);
    }
    JET_ERR err = log_reader_open(dir, base, LSN_MAKE(low, LOG_HEADER_SIZE), signature, high, &rd);
    while (err >= 0) {
        struct log_record rec;
        err = log_reader_next(rd, &rec);
        if (err == 1) {
            err = JET_errSuccess;
            break;
        }
    }
    log_reader_close(rd);
    if (err == JET_errBadLogSignature) return jet_report(JET_errGivenLogFileHasBadSignature, "%s", JetGetLastErrorDetail());
    if (err == JET_errInvalidLogSequence) return jet_report(JET_errGivenLogFileIsNotContiguous, "%s", JetGetLastErrorDetail());
    if (err == JET_errMissingLogFile) return jet_report(JET_errMissingRestoreLogFiles, "%s", JetGetLastErrorDetail());
    return err;
}

/* The generation after `after` in dir that holds the LR_BACKUP mark of one
 * of the backups ids (logrec.h: where that backup's set ends), or 0 when
 * none of the generations present there holds one (a set written before
 * the mark existed).  A generation that cannot be read ends the search:
 * check_logs judges the ones the restore uses. */
static uint32_t mark_after(const char *dir, const char *base, uint64_t signature, uint32_t after,
                           const uint64_t *ids, uint32_t nids)
{
    struct log_reader *rd = NULL;
    struct log_record rec;
    uint32_t found = 0;
    if (log_reader_open(dir, base, LSN_MAKE(after + 1, LOG_HEADER_SIZE), signature, 0, &rd) < 0) return 0;
    while (!found && log_reader_next(rd, &rec) == JET_errSuccess) {
        if (rec.type != LR_BACKUP || rec.len < LR_BACKUP_SIZE) continue;
        for (uint32_t i = 0; i < nids; i++)
            if (get_le64(rec.payload) == ids[i]) found = LSN_GEN(rec.lsn);
    }
    log_reader_close(rd);
    return found;
}

/*
 * ESE's ErrLGCheckDBFiles on a range the caller gave (a zero bound is
 * "from the copy and the directory", jet.h): it must start at or before
 * the copies' first generation (low) and end at or after their last, the
 * later of the copy's own (ESE's trailer genHigh; here the generation
 * current at begin) and the one its backup's set ends at (the LR_BACKUP
 * mark, when dir holds it past the range).  A range that ends before it
 * starts is JET_errStartingRestoreLogTooHigh, as jet.h says.
 */
static JET_ERR check_range(const JET_LOGINFO *li, uint32_t low, const struct restore_map *rm, const uint64_t *ids,
                           const char *dir, const char *base)
{
    uint32_t *gens = NULL;
    size_t n = 0;
    if (li->ulGenLow && li->ulGenHigh && li->ulGenLow > li->ulGenHigh)
        return jet_report(JET_errStartingRestoreLogTooHigh,
                          "restore: the logs given start at generation %lu, after their own end (%lu)", li->ulGenLow,
                          li->ulGenHigh);
    if (li->ulGenLow > low)
        return jet_report(JET_errStartingRestoreLogTooHigh,
                          "restore: the logs given start at generation %lu, after the backup's first (%u)",
                          li->ulGenLow, low);
    if (!li->ulGenHigh) return JET_errSuccess;
    if (li->ulGenHigh < rm->gen_high)
        return jet_report(JET_errEndingRestoreLogTooLow,
                          "restore: the logs given end at generation %lu, before the backup's last (%u)",
                          li->ulGenHigh, rm->gen_high);
    /* Only a directory holding generations past the range can show that
     * the set went further. */
    if (log_list(dir, base, &gens, &n) < 0) return JET_errSuccess;
    uint32_t newest = n ? gens[n - 1] : 0;
    free(gens);
    if (newest <= li->ulGenHigh) return JET_errSuccess;
    uint32_t mark = mark_after(dir, base, rm->log_signature, (uint32_t)li->ulGenHigh, ids, rm->n);
    if (mark)
        return jet_report(JET_errEndingRestoreLogTooLow,
                          "restore: the logs given end at generation %lu, before the backup's last (%u, where "
                          "its JetGetLogInfo ended the set)",
                          li->ulGenHigh, mark);
    return JET_errSuccess;
}

static void restore_problem(void *arg, const char *msg)
{
    char *first = arg;
    if (!first[0]) snprintf(first, 512, "%s", msg);
}

/* Corrupt data is never restored silently: after the replay every page of
 * a restored database must verify and its trees must hold. */
static JET_ERR check_restored(const char *path)
{
    JET_INSPECT_CHECK st;
    char first_problem[512] = "";
    JET_ERR err = JetInspectCheckDatabase(path, restore_problem, first_problem, &st);
    if (err == JET_errDatabaseCorrupted)
        err = jet_report(JET_errReadVerifyFailure, "%s (restore: found in the check after the replay)", first_problem);
    return err;
}

static JET_ERR external_restore(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                                char *szBackupLogPath, JET_LOGINFO *pLogInfo, unsigned long stop_gen,
                                unsigned long long stop_us, JET_PFNSTATUS pfn, const struct restore_how *how);

JET_ERR JetExternalRestore3(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                            char *szBackupLogPath, JET_LOGINFO *pLogInfo, unsigned long stop_gen,
                            unsigned long long stop_us, JET_PFNSTATUS pfn)
{
    jet_report_clear();
    const struct restore_how copy = {.verify_pages = true};
    return external_restore(szCheckpointFilePath, szLogPath, rgrstmap, crstfilemap, szBackupLogPath, pLogInfo,
                            stop_gen, stop_us, pfn, &copy);
}

static JET_ERR external_restore(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                                char *szBackupLogPath, JET_LOGINFO *pLogInfo, unsigned long stop_gen,
                                unsigned long long stop_us, JET_PFNSTATUS pfn, const struct restore_how *how)
{
    struct restore_map *rm = NULL;
    JET_INSTANCE inst = 0;
    JET_ERR err;
    const char *base = pLogInfo && pLogInfo->szBaseName[0] ? pLogInfo->szBaseName : "edb";
    if (!szCheckpointFilePath || !szLogPath || !szBackupLogPath || !rgrstmap || crstfilemap <= 0 ||
        crstfilemap > JET_MAX_DBS || (pLogInfo && pLogInfo->cbSize != sizeof *pLogInfo))
        return JET_errInvalidParameter;
    rm = calloc(1, sizeof *rm);
    if (!rm) return JET_errOutOfMemory;
    /* 1. Every file given is a backup copy, all of one log stream. */
    uint32_t low = 0, high = 0;
    uint64_t ids[JET_MAX_DBS];
    for (long i = 0; i < crstfilemap; i++) {
        const char *path = rgrstmap[i].szNewDatabaseName;
        int fd;
        struct db_header h;
        if (!path) {
            err = JET_errInvalidParameter;
            goto out;
        }
        if ((err = os_open(path, OS_OPEN_READ, &fd)) < 0) {
            char eb[128];
            err = jet_report(err, "%s: cannot open the restored database: %s", path, os_reason(err, eb, sizeof eb));
            goto out;
        }
        err = db_header_read(fd, path, &h);
        os_close(fd);
        if (err < 0) goto out;
        if (!h.copy.backup_id) {
            err = jet_report(JET_errRestoreOfNonBackupDatabase,
                             "%s: not a backup copy (a live or already restored database file)", path);
            goto out;
        }
        if (rm->n && h.log_signature != rm->log_signature) {
            err = jet_report(JET_errBadDbSignature, "%s: from log stream %016llx, the others from %016llx", path,
                             (unsigned long long)h.log_signature, (unsigned long long)rm->log_signature);
            goto out;
        }
        rm->log_signature = h.log_signature;
        if (!rm->n || h.copy.lsn_start < rm->lsn_start) rm->lsn_start = h.copy.lsn_start;
        if (h.copy.gen_high > rm->gen_high) rm->gen_high = h.copy.gen_high;
        if (h.copy.consistent_us > rm->consistent_us) rm->consistent_us = h.copy.consistent_us;
        if (!low || h.copy.gen_low < low) low = h.copy.gen_low;
        ids[rm->n] = h.copy.backup_id;
        rm->dbs[rm->n].dbidx = h.copy.dbidx;
        rm->dbs[rm->n].db_signature = h.db_signature;
        snprintf(rm->dbs[rm->n].path, sizeof rm->dbs[rm->n].path, "%s", path);
        rm->n++;
    }
    if (LSN_GEN(rm->lsn_start) > low) low = LSN_GEN(rm->lsn_start);
    high = rm->gen_high;
    if (pLogInfo && (err = check_range(pLogInfo, low, rm, ids, szBackupLogPath, base)) < 0) goto out;
    if (pLogInfo && pLogInfo->ulGenHigh) {
        high = (uint32_t)pLogInfo->ulGenHigh;
    } else {
        uint32_t *gens = NULL;
        size_t n = 0;
        if ((err = log_list(szBackupLogPath, base, &gens, &n)) < 0) goto out;
        for (size_t i = 0; i < n; i++)
            if (gens[i] > high && gens[i] == high + 1) high = gens[i];
        free(gens);
    }
    if (stop_us && rm->consistent_us && stop_us < rm->consistent_us) {
        char at[40], from[40];
        err = jet_report(JET_errInvalidParameter,
                         "restore: cannot stop at %s, before the backup's consistent point %s (its begin): the "
                         "database copy already holds what was committed until then",
                         os_utc(stop_us, 1, at, sizeof at), os_utc(rm->consistent_us, 1, from, sizeof from));
        goto out;
    }
    if (stop_gen && stop_gen < rm->gen_high) {
        err = jet_report(JET_errInvalidParameter, "restore: cannot stop at generation %lu, before the backup's end (%u)",
                         stop_gen, rm->gen_high);
        goto out;
    }
    if (stop_gen && stop_gen > high) {
        err = jet_report(JET_errInvalidParameter,
                         "restore: cannot stop at generation %lu: the logs given end at generation %u", stop_gen, high);
        goto out;
    }
    /* 2. The logs: present, one stream, chained (checked where they are). */
    if ((err = check_logs(szBackupLogPath, base, low, high, rm->log_signature)) < 0) goto out;
    /* 3. Into the target log directory. */
    if ((err = os_mkdirs(szLogPath)) < 0 || (err = os_mkdirs(szCheckpointFilePath)) < 0) goto out;
    char rb[JET_PATH_MAX], rl[JET_PATH_MAX];
    if (!realpath(szBackupLogPath, rb) || !realpath(szLogPath, rl)) {
        err = jet_report(JET_errInvalidPath, "restore: cannot resolve %s or %s", szBackupLogPath, szLogPath);
        goto out;
    }
    if (strcmp(rb, rl) != 0) {
        for (uint32_t g = low; g <= high; g++) {
            char from[JET_PATH_MAX], to[JET_PATH_MAX];
            if ((err = log_file_name(from, sizeof from, szBackupLogPath, base, g)) < 0) goto out;
            if ((err = log_file_name(to, sizeof to, szLogPath, base, g)) < 0) goto out;
            if ((err = copy_file(from, to)) < 0) goto out;
        }
    }
    rm->stop_gen = (uint32_t)stop_gen;
    rm->stop_us = stop_us;
    rm->res = how->res;
    rm->scratch_target = how->scratch_target;
    if (how->res) {
        how->res->consistent_us = rm->consistent_us;
        snprintf(how->res->db_path, sizeof how->res->db_path, "%s", rm->dbs[0].path);
    }
    /* 4. Replay in a temporary instance. */
    char name[64];
    static atomic_uint seq;
    snprintf(name, sizeof name, "Restore%04u", atomic_fetch_add(&seq, 1) + 1);
    if ((err = JetCreateInstance(&inst, name)) < 0) goto out;
    if ((err = JetSetSystemParameter(&inst, 0, JET_paramSystemPath, 0, szCheckpointFilePath)) < 0) goto out;
    if ((err = JetSetSystemParameter(&inst, 0, JET_paramLogFilePath, 0, szLogPath)) < 0) goto out;
    if ((err = JetSetSystemParameter(&inst, 0, JET_paramBaseName, 0, base)) < 0) goto out;
    {
        struct jet_instance *ji;
        if ((err = inst_lookup_for_backup(inst, &ji)) < 0) goto out;
        uint32_t ps = 0;
        int fd;
        struct db_header h;
        if (os_open(rm->dbs[0].path, OS_OPEN_READ, &fd) >= 0) {
            if (db_header_read(fd, rm->dbs[0].path, &h) >= 0) ps = h.page_size;
            os_close(fd);
        }
        if (ps) JetSetSystemParameter(&inst, 0, JET_paramDatabasePageSize, ps, NULL);
        struct log_header lh;
        char lp[JET_PATH_MAX];
        if (log_file_name(lp, sizeof lp, szLogPath, base, low) >= 0 && log_read_header(lp, &lh) >= 0)
            JetSetSystemParameter(&inst, 0, JET_paramLogFileSize, lh.file_size / 1024, NULL);
        ji->restore = rm;
    }
    JET_RSTINFO ri = {.cbStruct = sizeof ri, .pfnStatus = pfn};
    err = JetInit3(&inst, &ri, 0);
    if (err >= 0) {
        err = JetTerm(inst);
    } else {
        char why[512]; /* the replay's detail, across the instance's end */
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        JetTerm(inst);
        jet_report(err, "%s", why);
    }
    inst = 0;
    /* 5. Every page of the result verifies. */
    for (long i = 0; err >= 0 && how->verify_pages && i < rm->n; i++) err = check_restored(rm->dbs[i].path);
out:
    if (inst) {
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        JetTerm(inst);
        if (err < 0) jet_report(err, "%s", why);
    }
    free(rm);
    return err;
}

JET_ERR JetExternalRestore2(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                            char *szBackupLogPath, JET_LOGINFO *pLogInfo, char *szTargetInstanceName,
                            char *szTargetInstanceLogPath, char *szTargetInstanceCheckpointPath, JET_PFNSTATUS pfn)
{
    /* As ESE's JetExternalRestoreEx: the range is required here (NULL is
     * JetExternalRestore's "what the directory holds"), and a target
     * instance must be one that exists. */
    if (!pLogInfo)
        return jet_report(JET_errInvalidParameter, "JetExternalRestore2: pLogInfo is required (the backup's log range)");
    if (szTargetInstanceName && !inst_name_exists(szTargetInstanceName))
        return jet_report(JET_errBadRestoreTargetInstance, "restore: no instance named '%s' to roll forward onto",
                          szTargetInstanceName);
    if (szTargetInstanceName || szTargetInstanceLogPath || szTargetInstanceCheckpointPath)
        return jet_report(JET_errInvalidParameter, "restore onto a running target instance is not offered");
    return JetExternalRestore3(szCheckpointFilePath, szLogPath, rgrstmap, crstfilemap, szBackupLogPath, pLogInfo, 0, 0,
                               pfn);
}

/* ---- restore from set directories ---- */

static bool dir_empty_or_missing(const char *d, bool *pexists)
{
    DIR *dd = opendir(d);
    *pexists = dd != NULL;
    if (!dd) return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(dd);
    return empty;
}

static void remove_tree_files(const char *d, bool rmdir_too)
{
    DIR *dd = opendir(d);
    struct dirent *e;
    char p[JET_PATH_MAX];
    while (dd && (e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && os_join(p, sizeof p, d, e->d_name) >= 0) unlink(p);
    if (dd) closedir(dd);
    if (rmdir_too) rmdir(d);
}

/* "an" before a backup type that starts with a vowel (an incremental). */
static const char *article(const char *type) { return type[0] && strchr("aeiou", type[0]) ? "an" : "a"; }

struct set_manifest {
    bool present;
    uint64_t backup_id, predecessor_id;
    char type[16];
    struct manifest mf; /* the manifest, checked */
};

/* Whether a set with a manifest lists name (a set without one is what its
 * directory holds). */
static bool listed(const struct set_manifest *m, const char *name)
{
    if (!m->present) return true;
    if (manifest_is_name(name)) return false;
    return manifest_find(&m->mf, name) != NULL;
}

/*
 * A set with a manifest is exactly what it lists.  A file beside them (an
 * older generation left by rsync into the same destination without
 * --delete, a log dropped in by hand) is never copied or replayed: it is
 * ignored, and report (if any) is told its path.
 */
static JET_ERR each_unlisted(const char *setdir, const struct set_manifest *m,
                             void (*report)(void *arg, const char *path), void *arg)
{
    DIR *dd = opendir(setdir);
    struct dirent *e;
    if (!dd) return jet_report(JET_errFileNotFound, "%s: backup set not found", setdir);
    while ((e = readdir(dd))) {
        char p[JET_PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.' || manifest_is_name(e->d_name) || listed(m, e->d_name)) continue;
        if (os_join(p, sizeof p, setdir, e->d_name) < 0 || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (report) report(arg, p);
    }
    closedir(dd);
    return JET_errSuccess;
}

static void set_manifest_free(struct set_manifest *m) { manifest_free(&m->mf); }

/* Checks a set's backup.manifest (when there is one): its own checksum,
 * then every file it lists: present, of that size, of that hash.  m keeps
 * what it says (set_manifest_free). */
static JET_ERR check_manifest(const char *setdir, struct set_manifest *m)
{
    char path[JET_PATH_MAX];
    memset(m, 0, sizeof *m);
    if (os_join(path, sizeof path, setdir, "backup.manifest") < 0 || !os_exists(path)) return JET_errSuccess;
    JET_ERR err = manifest_read(path, &m->mf);
    if (err < 0) goto out;
    m->present = true;
    m->backup_id = m->mf.backup_id;
    m->predecessor_id = m->mf.predecessor_id;
    snprintf(m->type, sizeof m->type, "%s", m->mf.type);
    for (uint32_t i = 0; i < m->mf.nfiles; i++) {
        const char *name = m->mf.files[i].name;
        char fp[JET_PATH_MAX];
        uint64_t fsz = m->mf.files[i].size, actual = 0;
        if ((err = os_join(fp, sizeof fp, setdir, name)) < 0) goto out;
        int f2;
        if (os_open(fp, OS_OPEN_READ, &f2) < 0) {
            err = jet_report(JET_errMissingRestoreLogFiles, "%s: listed in the manifest but missing from the set", fp);
            goto out;
        }
        os_fsize(f2, &actual);
        os_close(f2);
        if (actual != fsz) {
            size_t nl = strlen(name);
            bool is_log = nl > 4 && !strcmp(name + nl - 4, ".log");
            err = jet_report(is_log ? JET_errLogFileCorrupt : JET_errBadBackupDatabaseSize,
                             "%s: %llu bytes, the manifest says %llu", fp, (unsigned long long)actual,
                             (unsigned long long)fsz);
            goto out;
        }
        if (m->mf.files[i].has_xxh3) {
            uint64_t hw = m->mf.files[i].xxh3, hg = 0;
            if ((err = log_hash_file(fp, &hg)) < 0) goto out;
            if (hw != hg) {
                err = jet_report(JET_errLogFileCorrupt, "%s: xxh3 %016llx, the manifest says %016llx: damaged", fp,
                                 (unsigned long long)hg, (unsigned long long)hw);
                goto out;
            }
        }
    }
out:
    if (err < 0) set_manifest_free(m);
    return err;
}

JET_ERR JetInspectSetUnlisted(const char *setdir, void (*report)(void *arg, const char *path), void *arg)
{
    struct set_manifest m;
    if (!setdir || !*setdir) return JET_errInvalidParameter;
    JET_ERR err = check_manifest(setdir, &m);
    if (err >= 0) err = each_unlisted(setdir, &m, report, arg);
    set_manifest_free(&m);
    return err;
}

JET_ERR JetRestoreSets(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                       unsigned long long stop_us)
{
    return JetRestoreSets2(sets, nsets, target_dir, stop_gen, stop_us, NULL);
}

JET_ERR JetRestoreSets2(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                        unsigned long long stop_us, JET_PFNSTATUS pfn)
{
    jet_report_clear();
    const struct restore_how copy = {.verify_pages = true};
    return restore_sets(sets, nsets, target_dir, stop_gen, stop_us, pfn, &copy);
}

static JET_ERR place_file(const struct restore_how *how, const char *from, const char *to)
{
    return how->put ? how->put(how->arg, from, to) : copy_file(from, to);
}

/* What restore_sets has placed at the target so far. */
struct placed {
    const struct restore_how *how;
    const char *target_dir;
    JET_RSTMAP map[JET_MAX_DBS];
    char *news[JET_MAX_DBS], *olds[JET_MAX_DBS];
    long nmap;
    uint32_t lo, hi;
    /* Every file placed, database and logs: an error found in a target's
     * copy is said of the set's file it came from (the copy is removed). */
    struct {
        char *to, *from;
    } *files;
    size_t nfiles, capfiles;
};

static void placed_note(struct placed *pl, const char *to, const char *from)
{
    if (pl->nfiles == pl->capfiles) {
        size_t cap = pl->capfiles ? 2 * pl->capfiles : 16;
        void *nf = realloc(pl->files, cap * sizeof *pl->files);
        if (!nf) return; /* only the naming of a later error suffers */
        pl->files = nf;
        pl->capfiles = cap;
    }
    pl->files[pl->nfiles].to = strdup(to);
    pl->files[pl->nfiles].from = strdup(from);
    if (pl->files[pl->nfiles].to && pl->files[pl->nfiles].from) pl->nfiles++;
    else {
        free(pl->files[pl->nfiles].to);
        free(pl->files[pl->nfiles].from);
    }
}

/* err's detail, with every target copy it names replaced by the set's own
 * file. */
static JET_ERR placed_rename_in_detail(const struct placed *pl, JET_ERR err)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
    for (size_t i = 0; i < pl->nfiles; i++) {
        const char *to = pl->files[i].to, *from = pl->files[i].from;
        char *at, *past = why;
        /* (searched on past what was put in: from may contain to) */
        while ((at = strstr(past, to))) {
            char rest[1024];
            snprintf(rest, sizeof rest, "%s", at + strlen(to));
            snprintf(at, sizeof why - (size_t)(at - why), "%s%s", from, rest);
            past = at + strlen(from) < why + strlen(why) ? at + strlen(from) : why + strlen(why);
        }
    }
    return jet_report(err, "%s", why);
}

/* Places the file from (of set si) at the target by what its first bytes
 * say it is: a database (only the first set holds one) or a log
 * generation (once: a copy of it in a later set must be the same).  Any
 * other file is left. */
static JET_ERR place_set_file(struct placed *pl, const char *from, int si)
{
    char to[JET_PATH_MAX];
    uint8_t b[16];
    int fd;
    JET_ERR err;
    if (os_open(from, OS_OPEN_READ, &fd) < 0) return JET_errSuccess;
    JET_ERR re = os_pread_full(fd, b, sizeof b, 0);
    os_close(fd);
    if (re < 0) return JET_errSuccess;
    uint32_t magic = get_le32(b + 8);
    if (magic == DB_MAGIC) {
        if (si != 0)
            return jet_report(JET_errInvalidBackupSequence,
                              "%s: a database file in set %d; only the first set (the full backup) holds one", from,
                              si + 1);
        if (pl->nmap == JET_MAX_DBS) return JET_errTooManyAttachedDatabases;
        if ((err = os_join(to, sizeof to, pl->target_dir, strrchr(from, '/') ? strrchr(from, '/') + 1 : from)) < 0 ||
            (err = place_file(pl->how, from, to)) < 0)
            return err;
        placed_note(pl, to, from);
        pl->news[pl->nmap] = strdup(to);
        pl->olds[pl->nmap] = strdup(from);
        pl->map[pl->nmap] = (JET_RSTMAP){pl->news[pl->nmap], pl->news[pl->nmap]};
        pl->nmap++;
    } else if (magic == LOG_MAGIC) {
        struct log_header h;
        if ((err = log_read_header(from, &h)) < 0) return err;
        if ((err = log_file_name(to, sizeof to, pl->target_dir, h.base, h.generation)) < 0) return err;
        if (os_exists(to)) {
            uint64_t h1 = 0, h2 = 0;
            if ((err = log_hash_file(from, &h1)) < 0 || (err = log_hash_file(to, &h2)) < 0) return err;
            if (h1 != h2)
                return jet_report(JET_errGivenLogFileIsNotContiguous,
                                  "%s: generation %u differs from the copy in an earlier set", from, h.generation);
            return JET_errSuccess;
        }
        if ((err = place_file(pl->how, from, to)) < 0) return err;
        placed_note(pl, to, from);
        if (!pl->lo || h.generation < pl->lo) pl->lo = h.generation;
        if (h.generation > pl->hi) pl->hi = h.generation;
    }
    return JET_errSuccess;
}

/* Sets of which one holds no manifest, taken as given: each set's manifest
 * (when it has one) checked, the chain of ids in the order given, and what
 * each set lists (or holds, without one) placed. */
static JET_ERR place_sets_as_given(const char *const *sets, int nsets, struct placed *pl)
{
    JET_ERR err = JET_errSuccess;
    struct set_manifest *ms = calloc((size_t)nsets, sizeof *ms);
    if (!ms) return JET_errOutOfMemory;
    int first = -1, prev = -1;
    for (int si = 0; si < nsets && err >= 0; si++) {
        struct set_manifest *m = &ms[si];
        if ((err = check_manifest(sets[si], m)) < 0) break;
        if (!m->present) continue;
        if (si == 0 && strcmp(m->type, "full") && strcmp(m->type, "copy")) {
            err = jet_report(JET_errMissingFullBackup, "%s: the first set is %s %s backup, not a full (or copy) one",
                             sets[si], article(m->type), m->type);
            break;
        }
        if (si > 0 && prev >= 0) {
            uint64_t want = !strcmp(m->type, "differential") && first >= 0 ? ms[first].backup_id : ms[prev].backup_id;
            if (m->predecessor_id != want) {
                err = jet_report(JET_errInvalidBackupSequence,
                                 "%s: %s %s backup whose predecessor is %016llx, but the set before it is %016llx",
                                 sets[si], article(m->type), m->type, (unsigned long long)m->predecessor_id,
                                 (unsigned long long)want);
                break;
            }
        }
        if (si == 0) first = si;
        prev = si;
    }
    if (err >= 0 && (err = os_mkdirs(pl->target_dir)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot create the restore target: %s", pl->target_dir, os_reason(err, eb, sizeof eb));
    }
    for (int si = 0; si < nsets && err >= 0; si++) {
        DIR *dd = opendir(sets[si]);
        if (!dd) {
            err = jet_report(JET_errFileNotFound, "%s: backup set not found", sets[si]);
            break;
        }
        struct dirent *e;
        while (err >= 0 && (e = readdir(dd))) {
            char from[JET_PATH_MAX];
            if (e->d_name[0] == '.' || !listed(&ms[si], e->d_name) || os_join(from, sizeof from, sets[si], e->d_name) < 0)
                continue;
            err = place_set_file(pl, from, si);
        }
        closedir(dd);
    }
    for (int si = 0; si < nsets; si++) set_manifest_free(&ms[si]);
    free(ms);
    return err;
}

JET_ERR restore_sets(const char *const *sets, int nsets, const char *target_dir, unsigned long stop_gen,
                     unsigned long long stop_us, JET_PFNSTATUS pfn, const struct restore_how *how)
{
    JET_ERR err = JET_errSuccess;
    bool existed = false;
    struct chain_plan plan;
    if (!sets || nsets < 1 || !target_dir || !*target_dir) return JET_errInvalidParameter;
    if (!dir_empty_or_missing(target_dir, &existed))
        return jet_report(JET_errInvalidPath, "%s: the restore target exists and is not empty", target_dir);
    struct placed *pl = calloc(1, sizeof *pl);
    if (!pl) return JET_errOutOfMemory;
    pl->how = how;
    pl->target_dir = target_dir;
    /* Every manifest in every set, the chain and every file it uses,
     * checked before anything is written (chain.c). */
    if ((err = chain_plan(sets, nsets, true, &plan)) < 0) goto out;
    if (plan.legacy) err = place_sets_as_given(sets, nsets, pl);
    else if ((err = os_mkdirs(target_dir)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot create the restore target: %s", target_dir, os_reason(err, eb, sizeof eb));
    }
    for (size_t i = 0; err >= 0 && i < plan.nfiles; i++) err = place_set_file(pl, plan.files[i].from, plan.files[i].set);
    chain_plan_free(&plan);
    if (err >= 0 && !pl->nmap)
        err = jet_report(JET_errRestoreOfNonBackupDatabase, "%s: no database file in the first set (a full backup)",
                         sets[0]);
    if (err >= 0 && !pl->lo) err = jet_report(JET_errMissingRestoreLogFiles, "no log generation in the given sets");
    if (err >= 0) {
        JET_LOGINFO li = {sizeof li, pl->lo, pl->hi, "edb"};
        char td[JET_PATH_MAX];
        snprintf(td, sizeof td, "%s", target_dir);
        err = external_restore(td, td, pl->map, pl->nmap, td, &li, stop_gen, stop_us, pfn, how);
        /* The range is the sets' own: a generation missing from it is a
         * gap in the sets, not a caller's wrong range. */
        if (err == JET_errFileNotFound) err = jet_report(JET_errMissingRestoreLogFiles, "%s", JetGetLastErrorDetail());
    }
    /* The target's copies are removed below: name the set's own file. */
    if (err < 0) err = placed_rename_in_detail(pl, err);
out:
    for (long i = 0; i < pl->nmap; i++) {
        free(pl->news[i]);
        free(pl->olds[i]);
    }
    for (size_t i = 0; i < pl->nfiles; i++) {
        free(pl->files[i].to);
        free(pl->files[i].from);
    }
    free(pl->files);
    free(pl);
    if (err < 0) {
        /* Keep the operator's detail across the cleanup. */
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        remove_tree_files(target_dir, !existed);
        jet_report(err, "%s", why);
    }
    return err;
}

/* ---- ESE's other entry points ---- */

JET_ERR JetExternalRestore(char *szCheckpointFilePath, char *szLogPath, JET_RSTMAP *rgrstmap, long crstfilemap,
                           char *szBackupLogPath, long genLow, long genHigh, JET_PFNSTATUS pfn)
{
    JET_LOGINFO li;
    if (genLow < 0 || genHigh < 0) return JET_errInvalidParameter;
    memset(&li, 0, sizeof li);
    li.cbSize = sizeof li;
    li.ulGenLow = (unsigned long)genLow;
    li.ulGenHigh = (unsigned long)genHigh;
    snprintf(li.szBaseName, sizeof li.szBaseName, "edb");
    /* A zero bound means "from the copy and the directory" (jet.h); a
     * range that ends before it starts is JET_errStartingRestoreLogTooHigh
     * (check_range), as ESE's ErrLGCheckDBFiles answers it. */
    return JetExternalRestore3(szCheckpointFilePath, szLogPath, rgrstmap, crstfilemap, szBackupLogPath,
                               genLow || genHigh ? &li : NULL, 0, 0, pfn);
}

/* ---- JetRestoreInstance: a directory JetBackupInstance wrote ---- */

/* Whether dir holds a backup set: its manifest, or any regular file. */
static bool holds_set(const char *dir)
{
    char p[JET_PATH_MAX];
    if (os_join(p, sizeof p, dir, "backup.manifest") >= 0 && os_exists(p)) return true;
    DIR *dd = opendir(dir);
    struct dirent *e;
    bool any = false;
    while (dd && !any && (e = readdir(dd))) {
        struct stat st;
        any = e->d_name[0] != '.' && os_join(p, sizeof p, dir, e->d_name) >= 0 && stat(p, &st) == 0 &&
              S_ISREG(st.st_mode);
    }
    if (dd) closedir(dd);
    return any;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * The sets of a JetBackupInstance directory, in restore order: the full set
 * (sz itself, else an atomic backup's new, else old, as ESE's ErrLGRestore
 * looks), then its incremental sets (inc-GGGGGGGG, by first generation).
 * sets[i] are malloc'd; free_sets frees them.
 */
static JET_ERR directory_sets(const char *sz, char ***psets, int *pn)
{
    char full[JET_PATH_MAX];
    const char *tries[] = {"", "new", "old"};
    int t;
    for (t = 0; t < 3; t++) {
        if (!*tries[t]) snprintf(full, sizeof full, "%s", sz);
        else if (os_join(full, sizeof full, sz, tries[t]) < 0) return JET_errInvalidPath;
        if (holds_set(full)) break;
    }
    if (t == 3) return jet_report(JET_errFileNotFound, "%s: no backup set there (nor in its new or old subdirectory)", sz);
    char **sets = calloc(1, sizeof *sets);
    int n = 0;
    JET_ERR err = JET_errSuccess;
    if (!sets || !(sets[n++] = strdup(full))) {
        err = JET_errOutOfMemory;
        goto out;
    }
    DIR *dd = opendir(full);
    struct dirent *e;
    while (dd && err >= 0 && (e = readdir(dd))) {
        char p[JET_PATH_MAX];
        struct stat st;
        if (strncmp(e->d_name, "inc-", 4) || os_join(p, sizeof p, full, e->d_name) < 0 || stat(p, &st) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        char **ns = realloc(sets, (size_t)(n + 1) * sizeof *ns);
        if (!ns || !(ns[n] = strdup(p))) {
            if (ns) sets = ns;
            err = JET_errOutOfMemory;
            break;
        }
        sets = ns;
        n++;
    }
    if (dd) closedir(dd);
    if (err >= 0) qsort(sets + 1, (size_t)(n - 1), sizeof *sets, cmp_names);
out:
    if (err < 0) {
        for (int i = 0; sets && i < n; i++) free(sets[i]);
        free(sets);
        return err;
    }
    *psets = sets;
    *pn = n;
    return JET_errSuccess;
}

static void free_sets(char **sets, int n)
{
    for (int i = 0; i < n; i++) free(sets[i]);
    free(sets);
}

struct orig_db {
    char name[MANIFEST_NAME_MAX + 1];
    char path[JET_PATH_MAX];
};

/*
 * The databases of a set with their original paths, from its manifest's
 * "databases" entries (each its file name and "path").  A set without them
 * (no manifest, or one written before the manifest recorded paths) cannot
 * be put back where it came from: the caller must name a destination.
 */
/* A set without a manifest (a client copied it through the streaming API):
 * its database files' headers say where each was attached (dbfile.h). */
static JET_ERR set_original_paths_from_headers(const char *setdir, struct orig_db *dbs, int *pn)
{
    DIR *dd = opendir(setdir);
    if (!dd) return jet_report(JET_errFileNotFound, "%s: backup set not found", setdir);
    JET_ERR err = JET_errSuccess;
    int n = 0;
    struct dirent *e;
    while (err >= 0 && (e = readdir(dd))) {
        char p[JET_PATH_MAX];
        uint8_t b[16];
        int fd;
        if (e->d_name[0] == '.' || os_join(p, sizeof p, setdir, e->d_name) < 0 || os_open(p, OS_OPEN_READ, &fd) < 0)
            continue;
        struct db_header h;
        if (os_pread_full(fd, b, sizeof b, 0) >= 0 && get_le32(b + 8) == DB_MAGIC) {
            err = db_header_read(fd, p, &h);
            if (err >= 0 && !h.attach_path[0])
                err = jet_report(JET_errInvalidBackup,
                                 "%s: the set has no manifest, and this database's header does not record where it "
                                 "was attached (a file from an older jetfs, or a path over %u bytes): give a "
                                 "destination",
                                 p, DB_ATTACH_PATH_MAX);
            for (int i = 0; err >= 0 && i < n; i++)
                if (!strcmp(dbs[i].path, h.attach_path))
                    err = jet_report(JET_errInvalidBackup,
                                     "%s and %s/%s were both attached at %s: which goes back there is ambiguous; give a "
                                     "destination",
                                     p, setdir, dbs[i].name, h.attach_path);
            if (err >= 0 && n == JET_MAX_DBS) err = JET_errTooManyAttachedDatabases;
            if (err >= 0) {
                snprintf(dbs[n].name, sizeof dbs[n].name, "%s", e->d_name);
                snprintf(dbs[n].path, sizeof dbs[n].path, "%s", h.attach_path);
                n++;
            }
        }
        os_close(fd);
    }
    closedir(dd);
    if (err >= 0 && !n)
        err = jet_report(JET_errInvalidBackup, "%s: the set has no manifest and no database file: nothing to restore",
                         setdir);
    if (err >= 0) *pn = n;
    return err;
}

static JET_ERR set_original_paths(const char *setdir, struct orig_db *dbs, int *pn)
{
    char mp[JET_PATH_MAX];
    struct manifest m = {0};
    JET_ERR err = os_join(mp, sizeof mp, setdir, "backup.manifest");
    if (err < 0) return err;
    if (!os_exists(mp)) return set_original_paths_from_headers(setdir, dbs, pn);
    if ((err = manifest_read(mp, &m)) < 0) goto out;
    if (m.ndbs > JET_MAX_DBS) {
        err = JET_errTooManyAttachedDatabases;
        goto out;
    }
    for (uint32_t i = 0; i < m.ndbs; i++) {
        if (!m.dbs[i].path) {
            err = jet_report(JET_errInvalidBackup,
                             "%s: the manifest does not record the original path of %s (a set from an older jetfs, "
                             "or a path that is not UTF-8): give a destination",
                             mp, m.dbs[i].name);
            goto out;
        }
        snprintf(dbs[i].name, sizeof dbs[i].name, "%s", m.dbs[i].name);
        if (snprintf(dbs[i].path, sizeof dbs[i].path, "%s", m.dbs[i].path) >= (int)sizeof dbs[i].path) {
            err = jet_report(JET_errInvalidPath, "%s: the original path of %s is too long", mp, m.dbs[i].name);
            goto out;
        }
    }
    if (!m.ndbs) err = jet_report(JET_errInvalidBackup, "%s: the manifest names no database", mp);
    *pn = (int)m.ndbs;
out:
    manifest_free(&m);
    return err;
}

/* Moves a restored file into place: rename, or copy and remove across
 * file systems. */
static JET_ERR move_file(const char *from, const char *to)
{
    char dir[JET_PATH_MAX];
    os_dirname(dir, sizeof dir, to);
    JET_ERR err = os_mkdirs(dir);
    if (err >= 0 && rename(from, to) != 0) {
        if (errno != EXDEV) {
            char eb[128];
            return jet_report(JET_errDiskIO, "restore: moving %s to %s failed: %s", from, to,
                              os_reason(JET_errDiskIO, eb, sizeof eb));
        }
        if ((err = copy_file(from, to)) >= 0) err = os_unlink(from);
    }
    if (err >= 0) err = os_sync_dir(dir);
    return err;
}

/*
 * Restore without a destination, as ESE's restore map: each database goes
 * back to its original path, the logs to the instance's log path and the
 * checkpoint to its system path, where JetInit finds them.  Nothing already
 * there is overwritten: a file at an original path, a log generation of the
 * instance's base in its log path or a checkpoint in its system path is
 * refused before anything is written.  The sets restore first into a
 * scratch directory inside the log path, then each file moves into place.
 */
static JET_ERR restore_to_original_paths(struct jet_instance *inst, char **sets, int nsets, JET_PFNSTATUS pfn)
{
    struct orig_db *dbs = calloc(JET_MAX_DBS, sizeof *dbs); /* too big for the stack */
    char staging[JET_PATH_MAX], ck[JET_PATH_MAX];
    uint32_t *gens = NULL;
    size_t ng = 0;
    int n = 0;
    bool made = false;
    JET_ERR err = dbs ? set_original_paths(sets[0], dbs, &n) : JET_errOutOfMemory;
    for (int i = 0; err >= 0 && i < n; i++)
        if (os_exists(dbs[i].path))
            err = jet_report(JET_errDatabaseDuplicate,
                             "%s: a file is already at the database's original path: move it away, or give a "
                             "destination",
                             dbs[i].path);
    if (err >= 0 && os_exists(inst->p.log_path) && (err = log_list(inst->p.log_path, inst->p.base, &gens, &ng)) >= 0 &&
        ng)
        err = jet_report(JET_errInvalidPath,
                         "%s holds log generations of base '%s' (%u..%u): a restore there would mix two logs; move "
                         "them away, or give a destination",
                         inst->p.log_path, inst->p.base, gens[0], gens[ng - 1]);
    if (err >= 0 && (err = ckpt_path(inst, ck, sizeof ck)) >= 0 && os_exists(ck))
        err = jet_report(JET_errInvalidPath, "%s: a checkpoint is already there: move it away, or give a destination", ck);
    if (err >= 0 && (err = os_mkdirs(inst->p.log_path)) < 0) {
        char eb[128];
        err = jet_report(err, "%s: cannot create the log path: %s", inst->p.log_path, os_reason(err, eb, sizeof eb));
    }
    if (err >= 0 && (err = os_join(staging, sizeof staging, inst->p.log_path, ".jet-restore-XXXXXX")) >= 0) {
        if (!mkdtemp(staging)) err = jet_report(JET_errDiskIO, "%s: cannot make a scratch directory", staging);
        else made = true;
    }
    if (err >= 0) err = JetRestoreSets2((const char *const *)sets, nsets, staging, 0, 0, pfn);
    /* Into place: databases, then the logs, then the checkpoint last, so
     * a JetInit never finds a checkpoint without what it names. */
    DIR *dd = err >= 0 ? opendir(staging) : NULL;
    struct dirent *e;
    char later[JET_PATH_MAX] = "";
    while (dd && err >= 0 && (e = readdir(dd))) {
        char from[JET_PATH_MAX], to[JET_PATH_MAX];
        const char *dest = NULL;
        if (e->d_name[0] == '.' || os_join(from, sizeof from, staging, e->d_name) < 0) continue;
        for (int i = 0; i < n && !dest; i++)
            if (!strcmp(e->d_name, dbs[i].name)) dest = dbs[i].path;
        size_t nl = strlen(e->d_name);
        bool is_log = nl > 4 && !strcmp(e->d_name + nl - 4, ".log");
        if (!dest && !strcmp(e->d_name, strrchr(ck, '/') + 1)) {
            snprintf(later, sizeof later, "%s", from);
            continue;
        }
        if (!dest) {
            if ((err = os_join(to, sizeof to, is_log ? inst->p.log_path : inst->p.system_path, e->d_name)) < 0) break;
            dest = to;
        }
        err = move_file(from, dest);
    }
    if (dd) closedir(dd);
    if (err >= 0 && later[0]) err = move_file(later, ck);
    if (made && rmdir(staging) != 0) {
        /* A move failed half way: what is not in place yet stays here. */
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        if (err >= 0) err = JET_errDiskIO;
        err = jet_report(err, "%s (the restored files not yet in place are in %s)", why, staging);
    }
    free(dbs);
    free(gens);
    return err;
}

JET_ERR JetRestoreInstance(JET_INSTANCE instance, const char *sz, const char *szDest, JET_PFNSTATUS pfn)
{
    struct jet_instance *inst;
    JET_INSTANCE temp = 0;
    char **sets = NULL;
    int nsets = 0;
    JET_ERR err;
    if (!sz || !*sz) return JET_errInvalidParameter;
    /* As ESE: JET_instanceNil restores with a temporary instance of the
     * global parameters. */
    if (instance == JET_instanceNil) {
        if ((err = JetCreateInstance(&temp, NULL)) < 0) return err;
        instance = temp;
    }
    if ((err = inst_lookup_for_backup(instance, &inst)) < 0) goto out;
    if (inst->init_done) {
        err = jet_report(JET_errAlreadyInitialized, "restore: the instance is initialised; restore runs before JetInit");
        goto out;
    }
    if ((err = directory_sets(sz, &sets, &nsets)) < 0) goto out;
    if (szDest && *szDest) err = JetRestoreSets2((const char *const *)sets, nsets, szDest, 0, 0, pfn);
    else err = restore_to_original_paths(inst, sets, nsets, pfn);
out:
    free_sets(sets, nsets);
    if (temp) {
        /* Keep the restore's detail across the instance's end. */
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        JetTerm(temp);
        if (err < 0) jet_report(err, "%s", why);
    }
    return err;
}

JET_ERR JetRestore(const char *szSource, JET_PFNSTATUS pfn) { return JetRestoreInstance(0, szSource, NULL, pfn); }
JET_ERR JetRestore2(const char *sz, const char *szDest, JET_PFNSTATUS pfn) { return JetRestoreInstance(0, sz, szDest, pfn); }

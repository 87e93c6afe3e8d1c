/*
 * browse.c -- JetBrowseSets: a backup set's content as of a stop point,
 * read-only, without a restore (jet.h "Browsing backup sets").
 *
 * A browse is a restore whose target is an overlay (overlay.h): the set's
 * database and log files are mapped into a scratch directory instead of
 * copied, restore.c runs its checks and its replay exactly as for
 * `jetutil restore` (so the state is the one a restore of the same sets and
 * stop point gives), and every page the replay writes stays in the
 * overlay.  Restore's last step, reading every page back, is left to each
 * read: the engine verifies every page it reads, so a damaged page is an
 * error, never data, and the time to a first answer is the replay's, not
 * the size of the database.  Then an instance is opened over the scratch
 * directory with the database attached read-only; it lives until
 * JetBrowseClose, which terminates it and deletes the overlay.
 *
 * Owns: the overlay, the instance, the info.  A JET_BROWSE is used by one
 * thread at a time for open/info/close; the instance it gives is an
 * ordinary instance, with the ordinary rules.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbfile.h"
#include "diag.h"
#include "log.h"
#include "os.h"
#include "overlay.h"
#include "restore.h"

struct jet_browse {
    struct ovl *ovl;
    JET_INSTANCE inst;
    JET_SESID ses;
    struct restore_result res;
    JET_BROWSEINFO info;
};

static JET_ERR map_into_overlay(void *arg, const char *from, const char *to)
{
    return ovl_map(arg, to, from);
}

/* The page and log file sizes the restore left, for the instance over it. */
static void sizes_of(const struct restore_result *res, const char *dir, uint32_t *ppage, uint32_t *plog_kb)
{
    int fd;
    struct db_header h;
    uint32_t *gens = NULL;
    size_t n = 0;
    *ppage = *plog_kb = 0;
    if (os_open(res->db_path, OS_OPEN_READ, &fd) >= 0) {
        if (db_header_read(fd, res->db_path, &h) >= 0) *ppage = h.page_size;
        os_close(fd);
    }
    if (log_list(dir, "edb", &gens, &n) >= 0 && n) {
        char p[JET_PATH_MAX];
        struct log_header lh;
        if (log_file_name(p, sizeof p, dir, "edb", gens[n - 1]) >= 0 && log_read_header(p, &lh) >= 0)
            *plog_kb = lh.file_size / 1024;
    }
    free(gens);
}

static JET_ERR open_instance(struct jet_browse *b)
{
    static atomic_uint seq;
    char name[64];
    const char *dir = ovl_dir(b->ovl);
    uint32_t page = 0, log_kb = 0;
    JET_ERR err;
    snprintf(name, sizeof name, "Browse%04u", atomic_fetch_add(&seq, 1) + 1);
    sizes_of(&b->res, dir, &page, &log_kb);
    if ((err = JetCreateInstance(&b->inst, name)) < 0) return err;
    if ((err = JetSetSystemParameter(&b->inst, 0, JET_paramSystemPath, 0, dir)) < 0) return err;
    if ((err = JetSetSystemParameter(&b->inst, 0, JET_paramLogFilePath, 0, dir)) < 0) return err;
    if ((err = JetSetSystemParameter(&b->inst, 0, JET_paramBaseName, 0, "edb")) < 0) return err;
    if (page && (err = JetSetSystemParameter(&b->inst, 0, JET_paramDatabasePageSize, page, NULL)) < 0) return err;
    if (log_kb && (err = JetSetSystemParameter(&b->inst, 0, JET_paramLogFileSize, log_kb, NULL)) < 0) return err;
    if ((err = JetInit(&b->inst)) < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        return jet_report(err, "browse: opening the replayed state failed: %s", why);
    }
    if ((err = JetBeginSession(b->inst, &b->ses, NULL, NULL)) < 0) return err;
    return JetAttachDatabase(b->ses, b->res.db_path, JET_bitDbReadOnly);
}

JET_ERR JetBrowseSets(const char *const *sets, int nsets, unsigned long stop_gen, unsigned long long stop_us,
                      const JET_BROWSEOPTS *opts, JET_BROWSE **pbrowse)
{
    jet_report_clear();
    if (!sets || nsets < 1 || !pbrowse || (opts && opts->cbStruct != sizeof *opts)) return JET_errInvalidParameter;
    *pbrowse = NULL;
    struct jet_browse *b = calloc(1, sizeof *b);
    if (!b) return JET_errOutOfMemory;
    JET_ERR err = ovl_create(opts ? opts->szTempPath : NULL, opts ? opts->cbOverlayMemory : 0, &b->ovl);
    if (err < 0) goto out;
    const struct restore_how how = {.put = map_into_overlay, .arg = b->ovl, .verify_pages = false, .scratch_target = true, .res = &b->res};
    if ((err = restore_sets(sets, nsets, ovl_dir(b->ovl), stop_gen, stop_us, opts ? opts->pfnStatus : NULL, &how)) < 0)
        goto out;
    if ((err = open_instance(b)) < 0) goto out;
    b->info = (JET_BROWSEINFO){
        .cbStruct = sizeof b->info,
        .csets = nsets,
        .genLow = b->res.gen_first,
        .genHigh = b->res.gen_end,
        .genStop = stop_gen,
        .usStop = stop_us,
        .usPoint = b->res.last_commit_us ? b->res.last_commit_us : b->res.consistent_us,
        .szDatabase = b->res.db_path,
    };
    *pbrowse = b;
    b = NULL;
out:
    if (b) {
        char why[1024];
        snprintf(why, sizeof why, "%s", JetGetLastErrorDetail());
        JetBrowseClose(b);
        jet_report(err, "%s", why);
    }
    return err;
}

JET_INSTANCE JetBrowseInstance(JET_BROWSE *b) { return b ? b->inst : 0; }

JET_ERR JetBrowseGetInfo(JET_BROWSE *b, JET_BROWSEINFO *info)
{
    jet_report_clear();
    if (!b || !info || info->cbStruct != sizeof *info) return JET_errInvalidParameter;
    *info = b->info;
    uint64_t bytes, spilled;
    ovl_usage(b->ovl, &bytes, &spilled);
    info->cbOverlay = bytes;
    info->cbOverlaySpilled = spilled;
    return JET_errSuccess;
}

JET_ERR JetBrowseClose(JET_BROWSE *b)
{
    if (!b) return JET_errInvalidParameter;
    JET_ERR err = JET_errSuccess;
    if (b->ses) JetEndSession(b->ses, 0);
    if (b->inst) err = JetTerm(b->inst);
    ovl_destroy(b->ovl);
    free(b);
    return err;
}

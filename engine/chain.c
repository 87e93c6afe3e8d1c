/*
 * chain.c -- which backups the directories given to a restore hold, in
 * what order, and where each file they list is (chain.h).
 *
 * A set directory as the mount presents it holds one backup: its files and
 * its manifest twice, as backup.manifest and as
 * backup.<begin>-<id>.manifest (manifest.h).  Copied session after session
 * into one directory (rsync, rclone copy, cp -a, tar archives extracted in
 * order), a directory holds many backups: every session's generations and
 * every session's manifest under its own name, with backup.manifest the
 * last one's.  Kept one per directory (restic, borg, a snapshot per
 * session, tar --listed-incremental archives each extracted alone), a
 * backup's generations may be in an earlier directory than its manifest
 * (the tool skipped what an earlier session, even an aborted one, held).
 * So the directories are read as one pool:
 *
 *   1. every manifest in every directory, checked (its own checksum), each
 *      backup once (by id; backup.manifest is its session's twin);
 *   2. the chain: from the newest backup back by predecessor id to a full
 *      (or copy) of the first directory (chain_order).  Backups off it (an
 *      aborted session, whose generations the next session held again; a
 *      differential superseded) are left out;
 *   3. each file a link lists is taken from its manifest's directory, or
 *      when that has no copy from whichever other holds one, and only if
 *      its size (and xxh3) match that listing:
 *      every file used is vouched for by a manifest of the chain, and a
 *      file no copy of which matches is refused, naming it and the
 *      manifest.  Files no link lists are not used (chain_each_unused
 *      names them for a warning).
 *
 * Directories of earlier builds hold backup.manifest only: one backup each,
 * the same rules.  A directory with no manifest at all makes the plan
 * "legacy": restore.c then takes the sets as given, in order, as before
 * manifests.
 *
 * Invariants: every plan file's from names a regular file whose size is the
 * listing's (and whose xxh3 is, when verified); order[0] is a full or copy
 * read from set 0; order[k + 1]'s predecessor is order[k]'s backup id.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain.h"
#include "diag.h"
#include "jet_inspect.h"
#include "log.h"
#include "os.h"

/* ---- the order (pure) ---- */

static bool is_base(const struct manifest *m) { return !strcmp(m->type, "full") || !strcmp(m->type, "copy"); }
static bool is_root(const struct chain_manifest *c) { return c->set == 0 && is_base(&c->mf); }
/* A full or copy in a later directory starts no chain and follows none. */
static bool usable(const struct chain_manifest *c) { return is_root(c) || !is_base(&c->mf); }

static long find_id(const struct chain_manifest *ms, size_t n, uint64_t id)
{
    for (size_t i = 0; id && i < n; i++)
        if (usable(&ms[i]) && ms[i].mf.backup_id == id) return (long)i;
    return -1;
}

/* Where the walk back from i stops: a root, or the first backup whose
 * predecessor is not there (*broken), or a cycle (*cycle). */
static size_t walk_back(const struct chain_manifest *ms, size_t n, size_t i, bool *broken, bool *cycle)
{
    *broken = *cycle = false;
    for (size_t steps = 0; !is_root(&ms[i]); steps++) {
        long j = find_id(ms, n, ms[i].mf.predecessor_id);
        if (j < 0) {
            *broken = true;
            return i;
        }
        if (steps > n) {
            *cycle = true;
            return i;
        }
        i = (size_t)j;
    }
    return i;
}

static bool newer(const struct chain_manifest *a, const struct chain_manifest *b)
{
    if (a->mf.begin_us != b->mf.begin_us) return a->mf.begin_us > b->mf.begin_us;
    return a->mf.gen_high > b->mf.gen_high;
}

/* "incremental backup 0123456789abcdef (generations 5-9, begun 2026-...)" */
static void describe(char *buf, size_t n, const struct chain_manifest *c)
{
    snprintf(buf, n, "%s backup %016llx (generations %u-%u, begun %s)", c->mf.type, (unsigned long long)c->mf.backup_id,
             c->mf.gen_low, c->mf.gen_high, c->mf.begin_time);
}

JET_ERR chain_order(struct chain_manifest *ms, size_t n, size_t *order, size_t *norder)
{
    long tip = -1, root_tip = -1, first0 = -1;
    *norder = 0;
    for (size_t i = 0; i < n; i++) {
        ms[i].on_chain = false;
        if (ms[i].set == 0 && first0 < 0) first0 = (long)i;
        if (!usable(&ms[i])) continue;
        long *t = is_root(&ms[i]) ? &root_tip : &tip;
        if (*t < 0 || newer(&ms[i], &ms[*t])) *t = (long)i;
    }
    if (root_tip < 0) {
        if (first0 >= 0)
            return jet_report(JET_errMissingFullBackup, "%s: the first set is %s %s backup, not a full (or copy) one",
                              ms[first0].path, strchr("aeiou", ms[first0].mf.type[0]) ? "an" : "a", ms[first0].mf.type);
        return jet_report(JET_errMissingFullBackup, "the first set holds no manifest of a full (or copy) backup");
    }
    if (tip < 0) tip = root_tip;
    bool broken, cycle;
    size_t end = walk_back(ms, n, (size_t)tip, &broken, &cycle);
    if (cycle)
        return jet_report(JET_errInvalidBackup, "%s: the predecessors of backup %016llx go round in a circle",
                          ms[end].path, (unsigned long long)ms[end].mf.backup_id);
    if (broken) {
        /* The newest backup that does lead back to the full: the missing
         * set lies between it and the one whose predecessor is missing. */
        long good = -1;
        for (size_t i = 0; i < n; i++) {
            bool b, c;
            if (!usable(&ms[i]) || (walk_back(ms, n, i, &b, &c), b || c)) continue;
            if (newer(&ms[i], &ms[end])) continue;
            if (good < 0 || newer(&ms[i], &ms[good])) good = (long)i;
        }
        if (good < 0) good = root_tip;
        char x[160], y[160], gap[96];
        describe(x, sizeof x, &ms[end]);
        describe(y, sizeof y, &ms[good]);
        const struct manifest *a = &ms[good].mf, *b = &ms[end].mf;
        if (b->gen_low > a->gen_high + 1)
            snprintf(gap, sizeof gap, "backup %016llx, generations %u-%u,", (unsigned long long)b->predecessor_id,
                     a->gen_high + 1, b->gen_low - 1);
        else snprintf(gap, sizeof gap, "backup %016llx,", (unsigned long long)b->predecessor_id);
        return jet_report(JET_errInvalidBackupSequence,
                          "%s: a set is missing from the chain: %s after %s and before %s, whose predecessor it is",
                          ms[end].path, gap, y, x);
    }
    /* From the tip back to the root, then reversed. */
    size_t k = 0;
    for (long i = tip; k < n; i = find_id(ms, n, ms[i].mf.predecessor_id)) {
        order[k++] = (size_t)i;
        ms[i].on_chain = true;
        if (is_root(&ms[i])) break;
    }
    for (size_t a = 0, b = k - 1; a < b; a++, b--) {
        size_t t = order[a];
        order[a] = order[b];
        order[b] = t;
    }
    *norder = k;
    return JET_errSuccess;
}

/* ---- reading the manifests ---- */

static bool regular(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (size) *size = (uint64_t)st.st_size;
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The manifest names in dir, sorted (*pnames malloc'd, each strdup'd). */
static JET_ERR manifest_names(const char *dir, char ***pnames, size_t *pn)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    *pnames = NULL;
    *pn = 0;
    if (!dd) return jet_report(JET_errFileNotFound, "%s: backup set not found", dir);
    while ((e = readdir(dd))) {
        char p[JET_PATH_MAX];
        if (!manifest_is_name(e->d_name) || os_join(p, sizeof p, dir, e->d_name) < 0 || !regular(p, NULL)) continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(e->d_name))) {
            if (nn) names = nn;
            for (size_t i = 0; i < n; i++) free(names[i]);
            free(names);
            closedir(dd);
            return JET_errOutOfMemory;
        }
        names = nn;
        n++;
    }
    closedir(dd);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    *pnames = names;
    *pn = n;
    return JET_errSuccess;
}

static bool same_backup(const struct manifest *a, const struct manifest *b)
{
    return a->predecessor_id == b->predecessor_id && !strcmp(a->type, b->type) && a->gen_low == b->gen_low &&
           a->gen_high == b->gen_high && a->nfiles == b->nfiles && a->begin_us == b->begin_us;
}

/* Adds the manifest at path (of set si) to p, once per backup. */
static JET_ERR add_manifest(struct chain_plan *p, int si, const char *path)
{
    struct manifest m;
    JET_ERR err = manifest_read(path, &m);
    if (err < 0) return err;
    size_t of = p->nms;
    for (size_t i = 0; i < p->nms; i++)
        if (p->ms[i].mf.backup_id == m.backup_id) {
            if (!same_backup(&p->ms[i].mf, &m)) {
                err = jet_report(JET_errInvalidBackup, "%s and %s: two manifests of backup %016llx that differ", path,
                                 p->ms[i].path, (unsigned long long)m.backup_id);
                manifest_free(&m);
                return err;
            }
            of = i;
            break;
        }
    char **np = realloc(p->mpaths, (p->nmpaths + 1) * sizeof *np);
    size_t *nof = np ? realloc(p->mof, (p->nmpaths + 1) * sizeof *nof) : NULL;
    if (np) p->mpaths = np;
    if (nof) p->mof = nof;
    if (!np || !nof || !(p->mpaths[p->nmpaths] = strdup(path))) {
        manifest_free(&m);
        return JET_errOutOfMemory;
    }
    p->mof[p->nmpaths++] = of;
    if (of < p->nms) {
        manifest_free(&m);
        return JET_errSuccess;
    }
    struct chain_manifest *nm = realloc(p->ms, (p->nms + 1) * sizeof *nm);
    if (!nm) {
        manifest_free(&m);
        return JET_errOutOfMemory;
    }
    p->ms = nm;
    p->ms[p->nms] = (struct chain_manifest){.mf = m, .set = si, .path = strdup(path)};
    if (!p->ms[p->nms].path) {
        manifest_free(&m);
        return JET_errOutOfMemory;
    }
    p->nms++;
    return JET_errSuccess;
}

static JET_ERR read_all(const char *const *sets, int nsets, struct chain_plan *p)
{
    JET_ERR err = JET_errSuccess;
    for (int si = 0; si < nsets && err >= 0; si++) {
        char a[PATH_MAX], b[PATH_MAX];
        for (int sj = 0; sj < si; sj++)
            if (realpath(sets[si], a) && realpath(sets[sj], b) && !strcmp(a, b))
                return jet_report(JET_errInvalidBackupSequence, "%s: given twice (as set %d and set %d)", sets[si],
                                  sj + 1, si + 1);
        char **names;
        size_t n;
        if ((err = manifest_names(sets[si], &names, &n)) < 0) return err;
        if (!n) p->legacy = true;
        for (size_t i = 0; i < n; i++) {
            char path[JET_PATH_MAX];
            if (err >= 0 && (err = os_join(path, sizeof path, sets[si], names[i])) >= 0) err = add_manifest(p, si, path);
            free(names[i]);
        }
        free(names);
    }
    return err;
}

/* ---- where each file is ---- */

static bool lists_db(const struct manifest *m, const char *name)
{
    for (uint32_t i = 0; i < m->ndbs; i++)
        if (!strcmp(m->dbs[i].name, name)) return true;
    return false;
}

static bool is_log_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".log");
}

/* Whether the copy at path matches the listing f of manifest c; if not,
 * *why holds the first refusal (code in *code) when it is still empty. */
static JET_ERR matches(const char *path, const struct manifest_file *f, const struct chain_manifest *c, bool verify,
                       bool is_db, bool *ok, JET_ERR *code, char *why, size_t cbwhy)
{
    uint64_t size = 0, h = 0;
    *ok = false;
    if (!regular(path, &size)) return JET_errSuccess;
    if (size != f->size) {
        if (!why[0]) {
            *code = is_db ? JET_errBadBackupDatabaseSize : JET_errLogFileCorrupt;
            snprintf(why, cbwhy, "%s: %llu bytes, the manifest %s says %llu", path, (unsigned long long)size, c->path,
                     (unsigned long long)f->size);
        }
        return JET_errSuccess;
    }
    if (verify && f->has_xxh3) {
        JET_ERR err = log_hash_file(path, &h);
        if (err < 0) return err;
        if (h != f->xxh3) {
            if (!why[0]) {
                *code = JET_errLogFileCorrupt;
                snprintf(why, cbwhy, "%s: xxh3 %016llx, the manifest %s says %016llx: damaged", path,
                         (unsigned long long)h, c->path, (unsigned long long)f->xxh3);
            }
            return JET_errSuccess;
        }
    }
    *ok = true;
    return JET_errSuccess;
}

/* Finds listing f of link li in the sets: in its own directory, where a
 * copy must match; when that has none, in the first other that holds a
 * copy that matches (tar --listed-incremental left it in an earlier
 * session's archive). */
static JET_ERR locate(struct chain_plan *p, const char *const *sets, int nsets, size_t li, const struct manifest_file *f,
                      bool verify, bool is_db)
{
    const struct chain_manifest *c = &p->ms[li];
    char why[1400] = "", path[JET_PATH_MAX];
    JET_ERR code = JET_errSuccess, err;
    for (int k = -1; k < nsets; k++) {
        int si = k < 0 ? c->set : k;
        bool ok;
        if (k == c->set || (is_db && si != 0)) continue;
        if ((err = os_join(path, sizeof path, sets[si], f->name)) < 0) return err;
        if ((err = matches(path, f, c, verify, is_db, &ok, &code, why, sizeof why)) < 0) return err;
        /* A damaged copy where its manifest is is refused, whatever other
         * sets hold: damage is never passed over in silence. */
        if (!ok && k < 0 && why[0]) break;
        if (!ok) continue;
        struct chain_file *cf = &p->files[p->nfiles];
        *cf = (struct chain_file){strdup(path), f->name, si, is_db, f->size, f->xxh3, f->has_xxh3, li};
        if (!cf->from) return JET_errOutOfMemory;
        p->nfiles++;
        return JET_errSuccess;
    }
    if (why[0]) return jet_report(code, "%s", why);
    if ((err = os_join(path, sizeof path, sets[c->set], f->name)) < 0) return err;
    return jet_report(JET_errMissingRestoreLogFiles, "%s: listed in the manifest %s but missing from every set given",
                      path, c->path);
}

/* A listing taken from an earlier link: the copy beside this link's
 * manifest, if there is one, must match it too. */
static JET_ERR check_own_copy(const struct chain_plan *p, const char *const *sets, size_t li,
                              const struct manifest_file *f, bool verify)
{
    char path[JET_PATH_MAX], why[1400] = "";
    JET_ERR code = JET_errSuccess, err = os_join(path, sizeof path, sets[p->ms[li].set], f->name);
    bool ok;
    for (size_t j = 0; err >= 0 && j < p->nfiles; j++)
        if (!strcmp(p->files[j].from, path)) return JET_errSuccess;
    if (err >= 0) err = matches(path, f, &p->ms[li], verify, false, &ok, &code, why, sizeof why);
    if (err >= 0 && !ok && why[0]) err = jet_report(code, "%s", why);
    return err;
}

static JET_ERR resolve(struct chain_plan *p, const char *const *sets, int nsets, bool verify)
{
    size_t total = 0;
    for (size_t k = 0; k < p->norder; k++) total += p->ms[p->order[k]].mf.nfiles;
    if (!(p->files = calloc(total ? total : 1, sizeof *p->files))) return JET_errOutOfMemory;
    for (size_t k = 0; k < p->norder; k++) {
        size_t li = p->order[k];
        const struct manifest *m = &p->ms[li].mf;
        for (uint32_t i = 0; i < m->nfiles; i++) {
            const struct manifest_file *f = &m->files[i];
            bool is_db = lists_db(m, f->name), seen = false;
            JET_ERR err;
            if (is_db && k)
                return jet_report(JET_errInvalidBackupSequence,
                                  "%s: lists the database %s; only the full (or copy) backup holds one", p->ms[li].path,
                                  f->name);
            /* A generation two links list (an earlier build's sets repeated
             * the last one) is taken once, and must be the same. */
            for (size_t j = 0; j < p->nfiles && !seen; j++) {
                const struct chain_file *o = &p->files[j];
                if (strcmp(o->name, f->name)) continue;
                seen = true;
                if (o->size != f->size || (o->has_xxh3 && f->has_xxh3 && o->xxh3 != f->xxh3))
                    return jet_report(is_log_name(f->name) ? JET_errGivenLogFileIsNotContiguous : JET_errInvalidBackup,
                                      "%s: listed by %s and by %s with different contents", f->name,
                                      p->ms[o->link].path, p->ms[li].path);
            }
            if (!seen) err = locate(p, sets, nsets, li, f, verify, is_db);
            else err = check_own_copy(p, sets, li, f, verify);
            if (err < 0) return err;
        }
    }
    return JET_errSuccess;
}

JET_ERR chain_plan(const char *const *sets, int nsets, bool verify, struct chain_plan *p)
{
    memset(p, 0, sizeof *p);
    if (!sets || nsets < 1) return JET_errInvalidParameter;
    JET_ERR err = read_all(sets, nsets, p);
    if (err < 0 || p->legacy) goto out;
    if (!(p->order = calloc(p->nms ? p->nms : 1, sizeof *p->order))) {
        err = JET_errOutOfMemory;
        goto out;
    }
    if ((err = chain_order(p->ms, p->nms, p->order, &p->norder)) < 0) goto out;
    err = resolve(p, sets, nsets, verify);
out:
    if (err < 0 || p->legacy) {
        bool legacy = p->legacy;
        chain_plan_free(p);
        p->legacy = err >= 0 && legacy;
    }
    return err;
}

void chain_plan_free(struct chain_plan *p)
{
    for (size_t i = 0; i < p->nms; i++) {
        manifest_free(&p->ms[i].mf);
        free(p->ms[i].path);
    }
    for (size_t i = 0; i < p->nmpaths; i++) free(p->mpaths[i]);
    for (size_t i = 0; i < p->nfiles; i++) free(p->files[i].from);
    free(p->ms);
    free(p->mpaths);
    free(p->mof);
    free(p->order);
    free(p->files);
    memset(p, 0, sizeof *p);
}

/* ---- what is not used ---- */

void chain_each_unused(const struct chain_plan *p, const char *const *sets, int nsets,
                       void (*report)(void *arg, const char *path, const char *why), void *arg)
{
    for (int si = 0; si < nsets; si++) {
        DIR *dd = opendir(sets[si]);
        struct dirent *e;
        while (dd && (e = readdir(dd))) {
            char path[JET_PATH_MAX], why[300];
            bool used = false;
            if (e->d_name[0] == '.' || os_join(path, sizeof path, sets[si], e->d_name) < 0 || !regular(path, NULL))
                continue;
            if (manifest_is_name(e->d_name)) {
                for (size_t i = 0; i < p->nmpaths && !used; i++) {
                    if (strcmp(p->mpaths[i], path)) continue;
                    const struct chain_manifest *c = &p->ms[p->mof[i]];
                    used = c->on_chain;
                    describe(why, sizeof why, c);
                    if (!used)
                        snprintf(why + strlen(why), sizeof why - strlen(why),
                                 " is not in the chain to the newest backup (an aborted session, or another chain): "
                                 "its manifest is ignored");
                }
                if (!used && report) report(arg, path, why);
                continue;
            }
            for (size_t i = 0; i < p->nfiles && !used; i++) used = !strcmp(p->files[i].from, path);
            /* The same file in another directory than the one used. */
            for (size_t i = 0; i < p->nfiles && !used; i++)
                used = !strcmp(p->files[i].name, e->d_name) && !p->files[i].is_db;
            if (!used && report)
                report(arg, path, "not listed in any manifest of the chain: ignored (left by an earlier copy into the "
                                  "same place?)");
        }
        if (dd) closedir(dd);
    }
}

/* ---- jetutil's warnings ---- */

struct legacy_arg {
    void (*report)(void *arg, const char *path, const char *why);
    void *arg;
};

static void legacy_report(void *arg, const char *path)
{
    struct legacy_arg *la = arg;
    la->report(la->arg, path, "not listed in its set's backup.manifest: ignored (left by an earlier copy into the same "
                              "place?)");
}

JET_ERR JetInspectSetsUnused(const char *const *sets, int nsets,
                             void (*report)(void *arg, const char *path, const char *why), void *arg)
{
    struct chain_plan p;
    if (!sets || nsets < 1 || !report) return JET_errInvalidParameter;
    JET_ERR err = chain_plan(sets, nsets, false, &p);
    if (err < 0) return err;
    if (p.legacy) {
        struct legacy_arg la = {report, arg};
        for (int i = 0; i < nsets && err >= 0; i++) {
            char m[JET_PATH_MAX];
            if (os_join(m, sizeof m, sets[i], "backup.manifest") >= 0 && os_exists(m))
                err = JetInspectSetUnlisted(sets[i], legacy_report, &la);
        }
        return err;
    }
    chain_each_unused(&p, sets, nsets, report, arg);
    chain_plan_free(&p);
    return JET_errSuccess;
}

/*
 * instance.c -- instances, system parameters, handles, sessions and
 * transactions at the API boundary.
 *
 * Owns: the process-wide state (instance mode, instance list, handle table)
 * under g_lock.  Handles are (generation << 32 | slot + 1): a stale, closed
 * or made-up handle is detected without dereferencing anything, so bad
 * handles get JET_errInvalidInstance / JET_errInvalidSesid /
 * JET_errInvalidTableId rather than a crash.
 *
 * Modes (as ESE): NONE --JetInit(NULL)--> LEGACY (one implicit instance);
 * NONE --JetCreateInstance--> MULTI.  Each mode refuses the other's entry
 * point (JET_errRunningInOneInstanceMode / JET_errRunningInMultiInstanceMode).
 * The mode returns to NONE when the last instance terminates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "checkpoint.h"
#include "database.h"
#include "diag.h"
#include "dwb.h"
#include "instance.h"
#include "lockrank.h"
#include "logrec.h"
#include "os.h"
#include "page.h"
#include "recovery.h"
#include "tables.h"
#include "txn.h"

struct handle_slot {
    uint32_t gen;
    int kind;
    void *obj;
};

enum run_mode { MODE_NONE, MODE_LEGACY, MODE_MULTI };

static struct {
    pthread_mutex_t lock;
    enum run_mode mode;
    struct jet_instance *legacy;
    struct handle_slot *slots;
    size_t nslots;
    struct jet_params defaults;
    bool defaults_set;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void params_default(struct jet_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->system_path, sizeof p->system_path, ".");
    snprintf(p->log_path, sizeof p->log_path, ".");
    snprintf(p->base, sizeof p->base, "edb");
    p->log_file_size = 1024u * 1024u;
    p->circular = 0;
    p->cache_pages = 8192;
    p->page_size = PAGE_SIZE_DEFAULT;
    p->recovery = 1;
    p->ckpt_period_ms = 1000;
    p->snapshot_mem_max = 64ull << 20;
}

static struct jet_params *defaults(void)
{
    if (!g.defaults_set) {
        params_default(&g.defaults);
        g.defaults_set = true;
    }
    return &g.defaults;
}

/* ---- handles (g.lock held by callers of the _locked forms) ---- */

JET_API_PTR handle_new(int kind, void *obj)
{
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    size_t i;
    for (i = 0; i < g.nslots; i++)
        if (g.slots[i].kind == HK_NONE) break;
    if (i == g.nslots) {
        size_t n = g.nslots ? g.nslots * 2 : 64;
        struct handle_slot *ns = realloc(g.slots, n * sizeof *ns);
        if (!ns) {
            lk_mutex_unlock(&g.lock, LK_REGISTRY);
            return 0;
        }
        memset(ns + g.nslots, 0, (n - g.nslots) * sizeof *ns);
        g.slots = ns;
        g.nslots = n;
    }
    g.slots[i].gen++;
    g.slots[i].kind = kind;
    g.slots[i].obj = obj;
    JET_API_PTR h = ((JET_API_PTR)g.slots[i].gen << 32) | (JET_API_PTR)(i + 1);
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    return h;
}

static void *handle_lookup(JET_API_PTR h, int kind)
{
    void *obj = NULL;
    size_t i = (size_t)(h & 0xFFFFFFFFu);
    uint32_t gen = (uint32_t)(h >> 32);
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    if (i >= 1 && i <= g.nslots && g.slots[i - 1].kind == kind && g.slots[i - 1].gen == gen) obj = g.slots[i - 1].obj;
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    return obj;
}

void handle_free(JET_API_PTR h)
{
    size_t i = (size_t)(h & 0xFFFFFFFFu);
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    if (i >= 1 && i <= g.nslots) {
        g.slots[i - 1].kind = HK_NONE;
        g.slots[i - 1].obj = NULL;
    }
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
}

/* ---- instance state ---- */

static pthread_mutex_t failure_mu = PTHREAD_MUTEX_INITIALIZER;
static JET_ERR instance_of(JET_INSTANCE h, struct jet_instance **pinst);

JET_ERR inst_fatal(struct jet_instance *inst, JET_ERR err)
{
    /* The first failure is the one that counts: later ones follow from it. */
    lk_mutex_lock(&failure_mu, LK_FAILURE);
    if (!atomic_load(&inst->unavailable)) {
        snprintf(inst->failure, sizeof inst->failure, "%s (%ld): %s", JetErrorString(err), err, JetGetLastErrorDetail());
        atomic_store(&inst->unavailable, 1);
        fprintf(stderr, "jet: instance '%s' is unavailable after %s\n", inst->name, inst->failure);
    }
    lk_mutex_unlock(&failure_mu, LK_FAILURE);
    return JET_errInstanceUnavailable;
}

JET_ERR JetGetInstanceFailure(JET_INSTANCE instance, char *szReason, unsigned long cbMax)
{
    struct jet_instance *inst;
    JET_ERR err = instance_of(instance, &inst);
    if (err < 0) return err;
    if (szReason && cbMax) szReason[0] = '\0';
    lk_mutex_lock(&failure_mu, LK_FAILURE);
    if (atomic_load(&inst->unavailable)) {
        if (szReason && cbMax) snprintf(szReason, cbMax, "%s", inst->failure);
        err = JET_errInstanceUnavailable;
    }
    lk_mutex_unlock(&failure_mu, LK_FAILURE);
    return err;
}

JET_ERR inst_check(struct jet_instance *inst)
{
    if (atomic_load(&inst->unavailable)) return JET_errInstanceUnavailable;
    if (inst->state == INST_TERMINATING) return JET_errTermInProgress;
    if (inst->state != INST_RUNNING) return JET_errNotInitialized;
    return JET_errSuccess;
}

static struct jet_instance *instance_new(const char *name)
{
    struct jet_instance *inst = calloc(1, sizeof *inst);
    if (!inst) return NULL;
    snprintf(inst->name, sizeof inst->name, "%s", name ? name : "");
    inst->p = *defaults();
    pthread_mutex_init(&inst->mu, NULL);
    pthread_mutex_init(&inst->writer_mu, NULL);
    pthread_cond_init(&inst->writer_cv, NULL);
    pthread_mutex_init(&inst->ckpt_mu, NULL);
    pthread_mutex_init(&inst->backup_mu, NULL);
    pthread_cond_init(&inst->backup_cv, NULL);
    pthread_cond_init(&inst->ckpt_cv, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Commits must not starve behind a stream of readers. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&inst->commit_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    inst->lock_fd = -1;
    inst->state = INST_CREATED;
    return inst;
}

static void instance_free(struct jet_instance *inst)
{
    pthread_mutex_destroy(&inst->mu);
    pthread_mutex_destroy(&inst->writer_mu);
    pthread_cond_destroy(&inst->writer_cv);
    pthread_mutex_destroy(&inst->ckpt_mu);
    pthread_mutex_destroy(&inst->backup_mu);
    pthread_cond_destroy(&inst->backup_cv);
    pthread_cond_destroy(&inst->ckpt_cv);
    pthread_rwlock_destroy(&inst->commit_lock);
    free(inst);
}

static bool instance_name_taken(const char *name)
{
    for (size_t i = 0; i < g.nslots; i++) {
        if (g.slots[i].kind != HK_INSTANCE) continue;
        struct jet_instance *o = g.slots[i].obj;
        if (strcmp(o->name, name) == 0) return true;
    }
    return false;
}

bool inst_name_exists(const char *name)
{
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    bool taken = name && *name && instance_name_taken(name);
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    return taken;
}

JET_ERR JetCreateInstance(JET_INSTANCE *pinstance, const char *szInstanceName)
{
    jet_report_clear();
    if (!pinstance) return JET_errInvalidParameter;
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    if (g.mode == MODE_LEGACY) {
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        return JET_errRunningInOneInstanceMode;
    }
    const char *name = szInstanceName ? szInstanceName : "";
    if (*name && instance_name_taken(name)) {
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        return JET_errInstanceNameInUse;
    }
    g.mode = MODE_MULTI;
    defaults();
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    struct jet_instance *inst = instance_new(name);
    if (!inst) return JET_errOutOfMemory;
    inst->handle = handle_new(HK_INSTANCE, inst);
    if (!inst->handle) {
        instance_free(inst);
        return JET_errOutOfMemory;
    }
    *pinstance = inst->handle;
    return JET_errSuccess;
}

static JET_ERR instance_of(JET_INSTANCE h, struct jet_instance **pinst)
{
    /* Every call that names a handle starts here or in session_get: the
     * detail of an earlier call's error is not this call's. */
    jet_report_clear();
    if (h == 0 || h == JET_instanceNil) {
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        struct jet_instance *l = g.mode == MODE_LEGACY ? g.legacy : NULL;
        enum run_mode m = g.mode;
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        if (m == MODE_MULTI) return JET_errRunningInMultiInstanceMode;
        if (!l) return JET_errNotInitialized;
        *pinst = l;
        return JET_errSuccess;
    }
    struct jet_instance *inst = handle_lookup(h, HK_INSTANCE);
    if (!inst) return JET_errInvalidInstance;
    *pinst = inst;
    return JET_errSuccess;
}

/* For backup.c: the instance-less forms reach the legacy instance only. */
JET_ERR inst_lookup_for_backup(JET_INSTANCE h, struct jet_instance **pinst)
{
    jet_report_clear();
    if (h == 0) {
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        enum run_mode m = g.mode;
        struct jet_instance *l = g.legacy;
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        if (m == MODE_MULTI) return JET_errRunningInMultiInstanceMode;
        if (m == MODE_NONE || !l) return JET_errInvalidParameter;
        *pinst = l;
        return JET_errSuccess;
    }
    return instance_of(h, pinst);
}

/* ---- parameters ---- */

static JET_ERR param_set(struct jet_params *p, unsigned long id, JET_API_PTR l, const char *sz)
{
    switch (id) {
    case JET_paramSystemPath:
    case JET_paramLogFilePath:
    case JET_paramTempPath: {
        if (!sz || !*sz) return JET_errInvalidParameter;
        if (strlen(sz) >= JET_PATH_MAX - 32) return JET_errInvalidPath;
        if (id == JET_paramSystemPath) snprintf(p->system_path, sizeof p->system_path, "%s", sz);
        if (id == JET_paramLogFilePath) snprintf(p->log_path, sizeof p->log_path, "%s", sz);
        return JET_errSuccess;
    }
    case JET_paramBaseName:
        if (!sz || strlen(sz) != JET_BASE_NAME_LENGTH || strchr(sz, '/')) return JET_errInvalidParameter;
        snprintf(p->base, sizeof p->base, "%s", sz);
        return JET_errSuccess;
    case JET_paramLogFileSize:
        if (l < 64 || l > 1024 * 1024 || (l % 4)) return JET_errInvalidParameter;
        p->log_file_size = (uint32_t)l * 1024u;
        return JET_errSuccess;
    case JET_paramCircularLog:
        if (l > 1) return JET_errInvalidParameter;
        p->circular = (int)l;
        return JET_errSuccess;
    case JET_paramCacheSizeMax:
        if (l < 64 || l > (1u << 26)) return JET_errInvalidParameter;
        p->cache_pages = (uint32_t)l;
        return JET_errSuccess;
    case JET_paramDatabasePageSize:
        if (!page_size_valid((uint32_t)l)) return JET_errInvalidParameter;
        p->page_size = (uint32_t)l;
        return JET_errSuccess;
    case JET_paramRecovery:
        if (!sz) return JET_errInvalidParameter;
        if (strcasecmp(sz, "on") == 0) p->recovery = 1;
        else if (strcasecmp(sz, "off") == 0) p->recovery = 0;
        else return JET_errInvalidParameter;
        return JET_errSuccess;
    case JET_paramCheckpointPeriodMs:
        if (l < 10 || l > 3600000) return JET_errInvalidParameter;
        p->ckpt_period_ms = (uint32_t)l;
        return JET_errSuccess;
    case JET_paramCreatePathIfNotExist:
        if (l > 1) return JET_errInvalidParameter;
        p->create_paths = (int)l;
        return JET_errSuccess;
    case JET_paramSnapshotMemoryMax:
        if (l > (1ull << 30)) return JET_errInvalidParameter;
        p->snapshot_mem_max = (uint64_t)l * 1024u;
        return JET_errSuccess;
    default:
        return JET_errInvalidParameter;
    }
}

JET_ERR JetSetSystemParameter(JET_INSTANCE *pinstance, JET_SESID sesid, unsigned long paramid, JET_API_PTR lParam,
                              const char *szParam)
{
    jet_report_clear();
    (void)sesid;
    if (!pinstance || *pinstance == 0) {
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        JET_ERR err;
        if (g.mode == MODE_LEGACY && g.legacy && g.legacy->state != INST_CREATED) err = JET_errAlreadyInitialized;
        else err = param_set(defaults(), paramid, lParam, szParam);
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        return err;
    }
    struct jet_instance *inst = handle_lookup(*pinstance, HK_INSTANCE);
    if (!inst) return JET_errInvalidInstance;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    JET_ERR err = inst->state != INST_CREATED ? JET_errAlreadyInitialized : param_set(&inst->p, paramid, lParam, szParam);
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return err;
}

JET_ERR JetGetSystemParameter(JET_INSTANCE instance, JET_SESID sesid, unsigned long paramid, JET_API_PTR *plParam,
                              char *szParam, unsigned long cbMax)
{
    jet_report_clear();
    (void)sesid;
    struct jet_params p;
    if (instance == 0 || instance == JET_instanceNil) {
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        p = g.mode == MODE_LEGACY && g.legacy ? g.legacy->p : *defaults();
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
    } else {
        struct jet_instance *inst = handle_lookup(instance, HK_INSTANCE);
        if (!inst) return JET_errInvalidInstance;
        p = inst->p;
    }
    const char *s = NULL;
    JET_API_PTR v = 0;
    switch (paramid) {
    case JET_paramSystemPath: s = p.system_path; break;
    case JET_paramLogFilePath: s = p.log_path; break;
    case JET_paramTempPath: s = p.system_path; break;
    case JET_paramBaseName: s = p.base; break;
    case JET_paramLogFileSize: v = p.log_file_size / 1024u; break;
    case JET_paramCircularLog: v = (JET_API_PTR)p.circular; break;
    case JET_paramCacheSizeMax: v = p.cache_pages; break;
    case JET_paramDatabasePageSize: v = p.page_size; break;
    case JET_paramRecovery: s = p.recovery ? "On" : "Off"; break;
    case JET_paramCheckpointPeriodMs: v = p.ckpt_period_ms; break;
    case JET_paramSnapshotMemoryMax: v = (JET_API_PTR)(p.snapshot_mem_max / 1024u); break;
    case JET_paramCreatePathIfNotExist: v = (JET_API_PTR)p.create_paths; break;
    default: return JET_errInvalidParameter;
    }
    if (s) {
        if (!szParam || cbMax == 0) return JET_errInvalidParameter;
        if (strlen(s) + 1 > cbMax) return JET_errBufferTooSmall;
        memcpy(szParam, s, strlen(s) + 1);
    } else {
        if (!plParam) return JET_errInvalidParameter;
        *plParam = v;
    }
    return JET_errSuccess;
}

/* ---- init / term ---- */

/*
 * What a process that died leaves behind and nobody needs: a backup's spill
 * files (with the instance lock held, no backup of it runs) and the
 * temporaries of an interrupted file replacement (os_replace_file; the
 * files themselves are intact).  Removed only once recovery succeeded: a
 * refused start changes no file.
 */
static void remove_leftovers(struct jet_instance *inst)
{
    for (uint32_t d = 0; d < JET_MAX_DBS; d++) {
        char spill[64], sp[JET_PATH_MAX];
        snprintf(spill, sizeof spill, "%s-backup-%u.spill", inst->p.base, d);
        if (os_join(sp, sizeof sp, inst->p.system_path, spill) >= 0 && os_exists(sp)) (void)os_unlink(sp);
    }
    static const char *const temps[] = {"%s.chk.tmp", "%s.delivered.tmp"};
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
        char name[64], tp[JET_PATH_MAX];
        snprintf(name, sizeof name, temps[i], inst->p.base);
        if (os_join(tp, sizeof tp, inst->p.system_path, name) >= 0 && os_exists(tp)) (void)os_unlink(tp);
    }
}

/* Records a discard after damage in the new generation (logrec.h), then
 * drops the note that asked for it: from now on the log says it. */
static JET_ERR log_discard(struct jet_instance *inst)
{
    uint8_t p[DISCARD_PAYLOAD];
    char note[JET_PATH_MAX];
    lsn_t end;
    discard_encode(&inst->discard, p);
    struct iovec iov = {p, sizeof p};
    struct log_rec rec = {LR_DISCARD, &iov, 1, NULL};
    JET_ERR err = log_append(inst->log, &rec, 1, NULL, &end);
    if (err >= 0) err = log_flush(inst->log, end);
    if (err >= 0) err = discard_note_path(note, sizeof note, inst->p.system_path, inst->p.base);
    if (err >= 0) err = os_unlink(note);
    if (err >= 0) err = os_sync_dir(inst->p.system_path);
    if (err < 0) return jet_report(err, "recording the discard after damage in the log failed: %s", JetErrorString(err));
    inst->discard_pending = false;
    return JET_errSuccess;
}

static JET_ERR instance_start(struct jet_instance *inst, const struct recovery_opts *opts)
{
    JET_ERR err;
    char path[JET_PATH_MAX];
    uint32_t next_gen = 1;
    char eb[128];
    const char *what[2] = {"system path", "log path"}, *dirs[2] = {inst->p.system_path, inst->p.log_path};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode)) continue;
        /* A mistyped path must not start a fresh, empty instance. */
        if (!inst->p.create_paths)
            return jet_report(JET_errInvalidPath,
                              "%s %s is not a directory (set JET_paramCreatePathIfNotExist to have it created)",
                              what[i], dirs[i]);
        if ((err = os_mkdirs(dirs[i])) < 0)
            return jet_report(err, "cannot create %s %s: %s", what[i], dirs[i], os_reason(err, eb, sizeof eb));
    }
    /* One process per instance directory: a second one would interleave
     * logs and corrupt both. */
    char lockname[32];
    snprintf(lockname, sizeof lockname, "%s.lck", inst->p.base);
    if ((err = os_join(path, sizeof path, inst->p.system_path, lockname)) < 0) return err;
    if ((err = os_open(path, OS_OPEN_READ | OS_OPEN_WRITE | OS_OPEN_CREATE, &inst->lock_fd)) < 0) {
        inst->lock_fd = -1;
        return jet_report(err, "%s: cannot open the instance lock file: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = os_lock(inst->lock_fd)) < 0) {
        err = jet_report(err, "%s: the instance is in use by another process", path);
        goto fail;
    }
    if ((err = cache_init(&inst->cache, inst, inst->p.page_size, inst->p.cache_pages)) < 0) goto fail;
    if (inst->p.recovery) {
        if ((err = recovery_run(inst, &next_gen, opts)) < 0) goto fail_cache;
        remove_leftovers(inst);
        struct log_config cfg = {
            .dir = inst->p.log_path, .base = inst->p.base, .file_size = inst->p.log_file_size,
            .page_size = inst->p.page_size, .signature = inst->log_signature, .prepare_ahead = true,
            .on_close = ckpt_generation_closed, .on_close_arg = inst,
        };
        if ((err = dwb_path(path, sizeof path, inst->p.system_path, inst->p.base)) < 0) goto fail_cache;
        if ((err = dwb_open(path, inst->p.page_size, &inst->dwb)) < 0) goto fail_cache;
        if ((err = log_open(&cfg, next_gen, &inst->log)) < 0) goto fail_cache;
        /* Point the checkpoint at the new generation: everything before it
         * is now in the (clean) databases. */
        struct ckpt_file ck;
        memset(&ck, 0, sizeof ck);
        ck.log_signature = inst->log_signature;
        ck.lsn = log_end_lsn(inst->log);
        ck.gen_seen = log_current_generation(inst->log);
        if ((err = ckpt_path(inst, path, sizeof path)) < 0) goto fail_log;
        if ((err = ckpt_write(path, &ck)) < 0) goto fail_log;
        inst->checkpoint_lsn = ck.lsn;
        if (inst->discard_pending && (err = log_discard(inst)) < 0) goto fail_log;
    } else {
        remove_leftovers(inst);
    }
    inst->state = INST_RUNNING;
    if ((err = ckpt_start_thread(inst)) < 0) {
        inst->state = INST_CREATED;
        goto fail_log;
    }
    inst->init_done = true;
    return JET_errSuccess;
fail_log:
    if (inst->log) log_close(inst->log);
    inst->log = NULL;
fail_cache:
    (void)dwb_close(inst->dwb, false);
    inst->dwb = NULL;
    cache_destroy(&inst->cache);
fail:
    os_close(inst->lock_fd);
    inst->lock_fd = -1;
    return err;
}

static JET_ERR init_with(JET_INSTANCE *pinstance, const struct recovery_opts *opts);

/* A database name as the log records it: the absolute path through its
 * directory's real path (the name itself is kept: the file may be gone). */
static JET_ERR rstmap_name(const char *name, char *out, size_t cb)
{
    char dir[JET_PATH_MAX], rdir[PATH_MAX];
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    os_dirname(dir, sizeof dir, name);
    if (!*base) return jet_report(JET_errInvalidPath, "JetInit3: restore map name %s has no file name", name);
    if (realpath(dir, rdir)) return os_join(out, cb, rdir, base);
    if (name[0] != '/') return jet_report(JET_errInvalidPath, "JetInit3: %s: directory %s does not exist", name, dir);
    if (snprintf(out, cb, "%s", name) >= (int)cb) return JET_errInvalidPath;
    return JET_errSuccess;
}

JET_ERR JetInit3(JET_INSTANCE *pinstance, JET_RSTINFO *prstInfo, JET_GRBIT grbit)
{
    jet_report_clear();
    static const JET_LGPOS no_lgpos;
    static const JET_LOGTIME no_logtime;
    struct init_rstmap *map = NULL;
    JET_ERR err;
    if (grbit) return JET_errInvalidGrbit;
    if (!prstInfo) return JetInit(pinstance);
    if (prstInfo->cbStruct != sizeof *prstInfo || prstInfo->crstmap < 0 || prstInfo->crstmap > JET_MAX_DBS ||
        (prstInfo->crstmap > 0) != (prstInfo->rgrstmap != NULL))
        return jet_report(JET_errInvalidParameter,
                          "JetInit3: JET_RSTINFO must have cbStruct = %zu and a restore map of 0..%d entries with "
                          "rgrstmap given exactly when crstmap > 0",
                          sizeof *prstInfo, JET_MAX_DBS);
    if (memcmp(&prstInfo->lgposStop, &no_lgpos, sizeof no_lgpos) ||
        memcmp(&prstInfo->logtimeStop, &no_logtime, sizeof no_logtime))
        return jet_report(JET_errInvalidParameter,
                          "JetInit3: lgposStop/logtimeStop are not supported (a point-in-time stop is "
                          "JetExternalRestore3's stop_gen / stop_us)");
    if (prstInfo->crstmap > 0) {
        if (!(map = calloc(1, sizeof *map))) return JET_errOutOfMemory;
        for (long i = 0; i < prstInfo->crstmap; i++) {
            const JET_RSTMAP *m = &prstInfo->rgrstmap[i];
            if (!m->szDatabaseName || !*m->szDatabaseName || !m->szNewDatabaseName || !*m->szNewDatabaseName) {
                err = jet_report(JET_errInvalidParameter, "JetInit3: restore map entry %ld lacks a name", i);
                goto out;
            }
            if ((err = rstmap_name(m->szDatabaseName, map->m[i].from, sizeof map->m[i].from)) < 0 ||
                (err = rstmap_name(m->szNewDatabaseName, map->m[i].to, sizeof map->m[i].to)) < 0)
                goto out;
            map->n++;
        }
    }
    struct recovery_opts opts = {.status = prstInfo->pfnStatus, .rstmap = map};
    err = init_with(pinstance, &opts);
out:
    free(map);
    return err;
}

JET_ERR JetInit(JET_INSTANCE *pinstance) { return init_with(pinstance, NULL); }

static JET_ERR init_with(JET_INSTANCE *pinstance, const struct recovery_opts *opts)
{
    jet_report_clear();
    struct jet_instance *inst;
    JET_ERR err;
    if (!pinstance || *pinstance == 0) {
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        if (g.mode == MODE_MULTI) {
            lk_mutex_unlock(&g.lock, LK_REGISTRY);
            return JET_errRunningInMultiInstanceMode;
        }
        if (g.legacy) {
            lk_mutex_unlock(&g.lock, LK_REGISTRY);
            return JET_errAlreadyInitialized;
        }
        defaults();
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        inst = instance_new("");
        if (!inst) return JET_errOutOfMemory;
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        if (g.legacy || g.mode == MODE_MULTI) {
            lk_mutex_unlock(&g.lock, LK_REGISTRY);
            instance_free(inst);
            return g.mode == MODE_MULTI ? JET_errRunningInMultiInstanceMode : JET_errAlreadyInitialized;
        }
        g.mode = MODE_LEGACY;
        g.legacy = inst;
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        inst->handle = handle_new(HK_INSTANCE, inst);
        err = instance_start(inst, opts);
        if (err < 0) {
            handle_free(inst->handle);
            lk_mutex_lock(&g.lock, LK_REGISTRY);
            g.legacy = NULL;
            g.mode = MODE_NONE;
            lk_mutex_unlock(&g.lock, LK_REGISTRY);
            instance_free(inst);
            return err;
        }
        if (pinstance) *pinstance = inst->handle;
        return JET_errSuccess;
    }
    inst = handle_lookup(*pinstance, HK_INSTANCE);
    if (!inst) return JET_errInvalidInstance;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    if (inst->state != INST_CREATED) {
        lk_mutex_unlock(&inst->mu, LK_INSTANCE);
        return JET_errAlreadyInitialized;
    }
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return instance_start(inst, opts);
}

JET_ERR JetTerm2(JET_INSTANCE instance, JET_GRBIT grbit)
{
    struct jet_instance *inst;
    JET_ERR err = instance_of(instance, &inst);
    if (err < 0) return err;
    if (grbit & ~(JET_GRBIT)(JET_bitTermComplete | JET_bitTermAbrupt | JET_bitTermStopBackup))
        return JET_errInvalidGrbit;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    bool running = inst->state == INST_RUNNING;
    if (inst->state == INST_TERMINATING) {
        lk_mutex_unlock(&inst->mu, LK_INSTANCE);
        return JET_errTermInProgress;
    }
    inst->state = INST_TERMINATING;
    inst->init_done = false;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    /* A backup still open ends as aborted: nothing truncated or recorded. */
    if (running) backup_abort(inst);

    /* End every session still open on this instance. */
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    struct session **open = NULL;
    size_t nopen = 0;
    for (size_t i = 0; i < g.nslots; i++) {
        if (g.slots[i].kind != HK_SESSION) continue;
        struct session *s = g.slots[i].obj;
        if (s->inst != inst) continue;
        struct session **no = realloc(open, (nopen + 1) * sizeof *no);
        if (!no) break;
        open = no;
        open[nopen++] = s;
    }
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    for (size_t i = 0; i < nopen; i++) JetEndSession(open[i]->handle, 0);
    free(open);

    if (running) {
        ckpt_stop_thread(inst);
        bool clean = !atomic_load(&inst->unavailable) && !(grbit & JET_bitTermAbrupt);
        err = db_detach_all(inst, clean);
        if (inst->log) {
            JET_ERR e2 = clean ? log_close(inst->log) : JET_errSuccess;
            if (!clean) log_close(inst->log);
            if (err >= 0 && e2 < 0) err = e2;
            inst->log = NULL;
        }
        /* Emptied only when every page write finished: after a failure the
         * copies are what the next recovery repairs torn pages from. */
        JET_ERR e3 = dwb_close(inst->dwb, clean && err >= 0);
        if (err >= 0 && e3 < 0) err = e3;
        inst->dwb = NULL;
        cache_destroy(&inst->cache);
        if (inst->lock_fd >= 0) os_close(inst->lock_fd);
        inst->lock_fd = -1;
    }
    handle_free(inst->handle);
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    if (g.legacy == inst) {
        g.legacy = NULL;
        g.mode = MODE_NONE;
    } else if (g.mode == MODE_MULTI) {
        bool any = false;
        for (size_t i = 0; i < g.nslots; i++) any |= g.slots[i].kind == HK_INSTANCE;
        if (!any) g.mode = MODE_NONE;
    }
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
    /* A failed instance was not shut down cleanly, whatever was asked:
     * saying success would tell a supervisor all is well. */
    if (running && atomic_load(&inst->unavailable))
        err = jet_report(JET_errInstanceUnavailable,
                         "instance '%s' was not shut down cleanly: it failed after %s; the next start recovers every "
                         "acknowledged commit from the log",
                         inst->name, inst->failure);
    instance_free(inst);
    return err;
}

JET_ERR JetTerm(JET_INSTANCE instance) { return JetTerm2(instance, JET_bitTermComplete); }

/* ---- sessions ---- */

JET_ERR session_get(JET_SESID sesid, struct session **ps)
{
    jet_report_clear();
    struct session *s = handle_lookup(sesid, HK_SESSION);
    if (!s) return JET_errInvalidSesid;
    *ps = s;
    return JET_errSuccess;
}

JET_ERR cursor_get(JET_SESID sesid, JET_TABLEID tableid, struct session **ps, struct cursor **pc)
{
    JET_ERR err = session_get(sesid, ps);
    if (err < 0) return err;
    struct cursor *c = handle_lookup(tableid, HK_CURSOR);
    if (!c) return JET_errInvalidTableId;
    if (c->s != *ps) return JET_errSesidTableIdMismatch;
    *pc = c;
    return JET_errSuccess;
}

JET_ERR JetBeginSession(JET_INSTANCE instance, JET_SESID *psesid, const char *szUserName, const char *szPassword)
{
    (void)szUserName;
    (void)szPassword;
    struct jet_instance *inst;
    if (!psesid) return JET_errInvalidParameter;
    JET_ERR err = instance_of(instance, &inst);
    if (err < 0) return err;
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    err = inst_check(inst);
    if (err >= 0) inst->nsessions++;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    if (err < 0) return err;
    struct session *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->inst = inst;
    s->handle = handle_new(HK_SESSION, s);
    if (!s->handle) goto oom;
    *psesid = s->handle;
    return JET_errSuccess;
oom:
    free(s);
    lk_mutex_lock(&inst->mu, LK_INSTANCE);
    inst->nsessions--;
    lk_mutex_unlock(&inst->mu, LK_INSTANCE);
    return JET_errOutOfMemory;
}


JET_ERR JetEndSession(JET_SESID sesid, JET_GRBIT grbit)
{
    struct session *s;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (grbit) return JET_errInvalidGrbit;
    if (s->level) txn_rollback(s);
    tables_close_session(s);
    db_close_session(s);
    handle_free(s->handle);
    txn_free(&s->txn);
    lk_mutex_lock(&s->inst->mu, LK_INSTANCE);
    s->inst->nsessions--;
    lk_mutex_unlock(&s->inst->mu, LK_INSTANCE);
    free(s);
    return JET_errSuccess;
}

/* ---- transactions ---- */

JET_ERR JetBeginTransaction2(JET_SESID sesid, JET_GRBIT grbit)
{
    struct session *s;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (grbit & ~(JET_GRBIT)JET_bitTransactionReadOnly) return JET_errInvalidGrbit;
    if ((err = inst_check(s->inst)) < 0) return err;
    if (s->level) return JET_errTransTooDeep;
    return txn_begin(s, grbit & JET_bitTransactionReadOnly, false);
}

JET_ERR JetBeginTransaction(JET_SESID sesid) { return JetBeginTransaction2(sesid, 0); }

JET_ERR JetCommitTransaction(JET_SESID sesid, JET_GRBIT grbit)
{
    struct session *s;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (grbit & ~(JET_GRBIT)(JET_bitCommitLazyFlush | JET_bitWaitLastLevel0Commit | JET_bitWaitAllLevel0Commit))
        return JET_errInvalidGrbit;
    if (grbit & (JET_bitWaitLastLevel0Commit | JET_bitWaitAllLevel0Commit)) {
        /* As ESE: flushes earlier (lazy) commits -- the session's, or
         * everyone's -- in a transaction or not, and combines with no
         * other option. */
        if (grbit != JET_bitWaitLastLevel0Commit && grbit != JET_bitWaitAllLevel0Commit) return JET_errInvalidGrbit;
        if (atomic_load(&s->inst->unavailable)) return JET_errInstanceUnavailable;
        return grbit == JET_bitWaitAllLevel0Commit ? txn_wait_all_durable(s) : txn_wait_durable(s);
    }
    if (!s->level) return JET_errNotInTransaction;
    if (atomic_load(&s->inst->unavailable)) {
        txn_rollback(s);
        tables_end_txn(s, true);
        return JET_errInstanceUnavailable;
    }
    lsn_t before = s->last_commit_end;
    err = txn_commit(s, grbit & JET_bitCommitLazyFlush);
    /* A commit that failed before its record reached the log rolled back;
     * one that failed after it (the flush) is committed. */
    tables_end_txn(s, err < 0 && s->last_commit_end == before);
    return err;
}

JET_ERR JetRollback(JET_SESID sesid, JET_GRBIT grbit)
{
    struct session *s;
    JET_ERR err = session_get(sesid, &s);
    if (err < 0) return err;
    if (grbit & ~(JET_GRBIT)JET_bitRollbackAll) return JET_errInvalidGrbit;
    if (!s->level) return JET_errNotInTransaction;
    txn_rollback(s);
    tables_end_txn(s, true);
    return JET_errSuccess;
}

void handle_close_cursors(struct session *s, bool only_txn)
{
    for (;;) {
        struct cursor *found = NULL;
        lk_mutex_lock(&g.lock, LK_REGISTRY);
        for (size_t i = 0; i < g.nslots && !found; i++) {
            struct cursor *c = g.slots[i].obj;
            if (g.slots[i].kind == HK_CURSOR && c->s == s && (!only_txn || c->opened_in_txn)) found = c;
        }
        lk_mutex_unlock(&g.lock, LK_REGISTRY);
        if (!found) return;
        cursor_close_for_session(found);
    }
}

void handle_cursors_committed(struct session *s)
{
    /* The session's own cursors: only its thread reads the flag. */
    lk_mutex_lock(&g.lock, LK_REGISTRY);
    for (size_t i = 0; i < g.nslots; i++) {
        struct cursor *c = g.slots[i].obj;
        if (g.slots[i].kind == HK_CURSOR && c->s == s) c->opened_in_txn = false;
    }
    lk_mutex_unlock(&g.lock, LK_REGISTRY);
}

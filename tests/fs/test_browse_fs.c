/*
 * test_browse_fs.c -- fs/browse.c on a real mount (/dev/fuse), over a live
 * instance nobody writes to while it is mounted (what the browse needs:
 * an instance, a database, a point in time, a status source).
 *
 *  - keys with '/', '%', NUL, newline, bytes over 0x7f, "." and "..",
 *    and keys whose names are too long (the hashed form): each is a file
 *    of the exact size, mode, owner and time, with its value byte for
 *    byte; the listing holds exactly their names, in key order;
 *  - names that name no key (malformed, wrong hash): ENOENT;
 *  - every kind of write: EROFS;
 *  - status: the numbers given, as JSON;
 *  - a table of 200,000 keys listed whole and in order through small
 *    getdents64 buffers, and again after a seek back;
 *  - a damaged page: EIO for the keys on it, logged with the engine's
 *    detail, and never other bytes than the value's;
 *  - values of sizes around the page size and the page-cache store's
 *    limit: whole and exact after a listing (readdirplus: the listing
 *    alone holds their nodes and gives their sizes), at first opens that
 *    race each other, at later opens, with pread and mmap.
 *
 * Without /dev/fuse the test is skipped (77), unless CI is set: then it
 * fails.  SEED=... repeats the random values.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jetfs.h"
#include "keyname.h"
#include "testutil.h"

#define US_POINT 1700000000123456ull

static char g_log[64][1024];
static int g_nlog, g_eio_lines;
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;

static void test_log(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "browse: %s\n", line);
    pthread_mutex_lock(&g_log_mu);
    if (strstr(line, "answered EIO")) g_eio_lines++;
    if (g_nlog < 64) snprintf(g_log[g_nlog++], sizeof g_log[0], "%s", line);
    pthread_mutex_unlock(&g_log_mu);
}

static JET_ERR fake_info(void *arg, JET_BROWSEINFO *info)
{
    (void)arg;
    info->csets = 2;
    info->genLow = 3;
    info->genHigh = 7;
    info->genStop = 6;
    info->usStop = 0;
    info->usPoint = US_POINT;
    info->cbOverlay = 81920;
    info->cbOverlaySpilled = 0;
    return JET_errSuccess;
}

struct kv {
    uint8_t key[JET_cbKeyMost];
    size_t cb;
    uint8_t *val;
    size_t cbval;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    size_t n = x->cb < y->cb ? x->cb : y->cb;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->cb > y->cb) - (x->cb < y->cb);
}

static struct jetfs_browse *mount_browse(JET_INSTANCE inst, const char *dbpath, const char *mnt)
{
    const char *sets[] = {"/backups/full", "/backups/inc1"};
    struct jetfs_browse_options o = {
        .mountpoint = mnt, .database = dbpath, .us_point = US_POINT, .sets = sets, .nsets = 2,
        .info = fake_info, .log = test_log,
    };
    char why[1024] = "";
    struct jetfs_browse *b = NULL;
    int rc = jetfs_browse_mount(inst, &o, &b, why, sizeof why);
    if (rc < 0) fprintf(stderr, "jetfs_browse_mount: %d %s\n", rc, why);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return b;
}

static void unmount_browse(struct jetfs_browse *b)
{
    jetfs_browse_unmount(b);
    jetfs_browse_wait(b);
    jetfs_browse_free(b);
}

static uint8_t *read_file(const char *path, size_t *pn, int *perr)
{
    int fd = open(path, O_RDONLY);
    *perr = 0;
    if (fd < 0) {
        *perr = errno;
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            *perr = errno;
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *pn = n;
    return buf;
}

/* A number member of MOUNT/status; -1 if missing. */
static long status_number(const char *mnt, const char *member)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/status", mnt);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    long v = doc && json_is_integer(json_object_get(doc, member)) ? (long)json_integer_value(json_object_get(doc, member)) : -1;
    json_decref(doc);
    return v;
}

static void put(JET_SESID s, JET_TABLEID t, struct kv *e)
{
    JET_ERR err = JetPutKV(s, t, e->key, (unsigned long)e->cb, e->val, (unsigned long)e->cbval, 0);
    if (err < 0) fprintf(stderr, "put of %zu-byte key: %ld %s\n", e->cb, err, JetGetLastErrorDetail());
    CU_ASSERT_EQUAL_FATAL(err, 0);
}

#define NKEYS 24

static void test_browse_keys_of_any_bytes_are_files_of_their_values(void)
{
    char root[4096], dbpath[4200], mnt[4200], path[8192];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("browse_keys"));
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", root);
    mkdir(mnt, 0700);
    uint64_t seed = tu_seed("browse_keys");
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t, tk, tslash;
    CU_ASSERT_EQUAL_FATAL(tu_open("browse_keys", root, (struct tu_params){0}, dbpath, 1, &inst, &s, &db, &t), 0);
    CU_ASSERT_EQUAL_FATAL(JetCreateTable(s, db, "keys", 0, 0, &tk), 0);
    CU_ASSERT_EQUAL_FATAL(JetCreateTable(s, db, "a/b", 0, 0, &tslash), 0);
    CU_ASSERT_EQUAL_FATAL(JetPutKV(s, tslash, "x", 1, "in a/b", 6, 0), 0);

    static struct kv kvs[NKEYS];
    static const struct {
        const char *k;
        size_t cb;
    } fixed[] = {
        {"plain", 5},       {"a/b/c", 5},          {"100%", 4},         {"nul\0mid", 7}, {"\0", 1},
        {"line\nbreak", 10}, {"\xff\xfe high", 7}, {"caf\xc3\xa9", 5}, {".", 1},       {"..", 2},
        {"%2F", 3},         {"\x7f\x01", 2},       {"empty", 5},       {"big", 3},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, n++) {
        memcpy(kvs[n].key, fixed[i].k, fixed[i].cb);
        kvs[n].cb = fixed[i].cb;
    }
    /* Long keys: exactly a name, and hashed ones (two sharing a long prefix). */
    memset(kvs[n].key, 'x', 255), kvs[n++].cb = 255;
    memset(kvs[n].key, 0x01, 255), kvs[n++].cb = 255;
    memset(kvs[n].key, 'y', 254), kvs[n].key[0] = '/', kvs[n++].cb = 254;
    memset(kvs[n].key, '/', 255), kvs[n++].cb = 255;
    memset(kvs[n].key, '/', 255), kvs[n].key[254] = 'z', kvs[n++].cb = 255;
    memset(kvs[n].key, '/', 200), kvs[n++].cb = 200;
    for (int i = 0; i < 255; i++) kvs[n].key[i] = (uint8_t)(i + 1);
    kvs[n++].cb = 255;
    for (int i = 0; i < 256 - 1; i++) kvs[n].key[i] = (uint8_t)(255 - i);
    kvs[n++].cb = 255;
    for (int i = 0; i < 200; i++) kvs[n].key[i] = (uint8_t)("\xe2\x82\xac"[i % 3]);
    kvs[n].key[200] = '\n';
    kvs[n++].cb = 201;
    for (int i = 0; i < 100; i++) kvs[n].key[i] = (uint8_t)tu_rand(&seed);
    kvs[n++].cb = 100;
    CU_ASSERT_EQUAL_FATAL(n, NKEYS);
    for (int i = 0; i < n; i++) {
        kvs[i].cbval = (size_t)(tu_rand(&seed) % 3000);
        if (!memcmp(kvs[i].key, "empty", 5) && kvs[i].cb == 5) kvs[i].cbval = 0;
        if (!memcmp(kvs[i].key, "big", 3) && kvs[i].cb == 3) kvs[i].cbval = 1500000;
        kvs[i].val = malloc(kvs[i].cbval + 1);
        for (size_t j = 0; j < kvs[i].cbval; j++) kvs[i].val[j] = (uint8_t)tu_rand(&seed);
        put(s, tk, &kvs[i]);
    }
    qsort(kvs, (size_t)n, sizeof kvs[0], kv_cmp);

    struct jetfs_browse *b = mount_browse(inst, dbpath, mnt);

    /* The top: status and tables; the tables by their names' encoding. */
    snprintf(path, sizeof path, "%s/tables", mnt);
    DIR *d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        CU_ASSERT(!strcmp(de->d_name, "t") || !strcmp(de->d_name, "keys") || !strcmp(de->d_name, "a%2Fb"));
        CU_ASSERT_EQUAL(de->d_type, DT_DIR);
        seen++;
    }
    closedir(d);
    CU_ASSERT_EQUAL(seen, 3);
    snprintf(path, sizeof path, "%s/tables/a%%2Fb/x", mnt);
    size_t got = 0;
    int err = 0;
    uint8_t *v = read_file(path, &got, &err);
    CU_ASSERT(v && got == 6 && !memcmp(v, "in a/b", 6));
    free(v);

    /* Every key: a file of its value, with the tree's attributes. */
    for (int i = 0; i < n; i++) {
        char name[JK_NAME_MAX + 1];
        jk_encode(kvs[i].key, kvs[i].cb, name);
        snprintf(path, sizeof path, "%s/tables/keys/%s", mnt, name);
        struct stat st;
        if (stat(path, &st) != 0) {
            fprintf(stderr, "stat %s: %s\n", name, strerror(errno));
            CU_FAIL("a key's file is missing");
            continue;
        }
        CU_ASSERT(S_ISREG(st.st_mode));
        CU_ASSERT_EQUAL(st.st_mode & 07777, 0444);
        CU_ASSERT_EQUAL((size_t)st.st_size, kvs[i].cbval);
        CU_ASSERT_EQUAL(st.st_uid, getuid());
        CU_ASSERT_EQUAL(st.st_gid, getgid());
        CU_ASSERT_EQUAL(st.st_mtim.tv_sec, (time_t)(US_POINT / 1000000));
        CU_ASSERT_EQUAL(st.st_mtim.tv_nsec, (long)(US_POINT % 1000000) * 1000);
        CU_ASSERT_EQUAL(st.st_ctim.tv_sec, st.st_mtim.tv_sec);
        CU_ASSERT_EQUAL(st.st_atim.tv_sec, st.st_mtim.tv_sec);
        v = read_file(path, &got, &err);
        CU_ASSERT_PTR_NOT_NULL(v);
        CU_ASSERT(v && got == kvs[i].cbval && memcmp(v, kvs[i].val, got) == 0);
        free(v);
    }

    /* The listing: exactly those names, in key order. */
    snprintf(path, sizeof path, "%s/tables/keys", mnt);
    d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int k = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char name[JK_NAME_MAX + 1];
        if (k < n) jk_encode(kvs[k].key, kvs[k].cb, name);
        if (k >= n || strcmp(de->d_name, name) != 0) {
            fprintf(stderr, "entry %d is '%s', want '%s'\n", k, de->d_name, k < n ? name : "(the end)");
            CU_FAIL("the listing is not the keys in order");
            break;
        }
        CU_ASSERT_EQUAL(de->d_type, DT_REG);
        k++;
    }
    closedir(d);
    CU_ASSERT_EQUAL(k, n);

    /* Names of no key. */
    struct stat st;
    const char *none[] = {"nope", "%zz", "%41", "%2f", "ab%~0123456789ABCDEF", "%2E%2E"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        snprintf(path, sizeof path, "%s/tables/keys/%s", mnt, none[i]);
        CU_ASSERT(stat(path, &st) != 0 && errno == ENOENT);
    }
    {
        /* A hashed name with its hash changed. */
        char name[JK_NAME_MAX + 1];
        uint8_t key[255];
        memset(key, 0x01, 255);
        jk_encode(key, 255, name);
        char *h = strstr(name, JK_HASH_MARK) + 2;
        h[0] = h[0] == '0' ? '1' : '0';
        snprintf(path, sizeof path, "%s/tables/keys/%s", mnt, name);
        CU_ASSERT(stat(path, &st) != 0 && errno == ENOENT);
    }
    snprintf(path, sizeof path, "%s/tables/nope", mnt);
    CU_ASSERT(stat(path, &st) != 0 && errno == ENOENT);
    snprintf(path, sizeof path, "%s/nope", mnt);
    CU_ASSERT(stat(path, &st) != 0 && errno == ENOENT);

    /* Writes of any kind. */
    char file[8192], other[8300];
    snprintf(file, sizeof file, "%s/tables/keys/plain", mnt);
    snprintf(other, sizeof other, "%s/tables/keys/new", mnt);
    errno = 0;
    CU_ASSERT(open(file, O_WRONLY) < 0 && errno == EROFS);
    CU_ASSERT(open(file, O_RDWR) < 0 && errno == EROFS);
    CU_ASSERT(open(other, O_WRONLY | O_CREAT, 0644) < 0 && errno == EROFS);
    CU_ASSERT(truncate(file, 0) != 0 && errno == EROFS);
    CU_ASSERT(unlink(file) != 0 && errno == EROFS);
    CU_ASSERT(rename(file, other) != 0 && errno == EROFS);
    CU_ASSERT(chmod(file, 0644) != 0 && errno == EROFS);
    CU_ASSERT(mkdir(other, 0755) != 0 && errno == EROFS);
    CU_ASSERT(symlink("plain", other) != 0 && errno == EROFS);
    snprintf(path, sizeof path, "%s/tables/keys", mnt);
    CU_ASSERT(rmdir(path) != 0 && (errno == EROFS || errno == ENOTEMPTY || errno == EBUSY));
    snprintf(path, sizeof path, "%s/status", mnt);
    CU_ASSERT(open(path, O_WRONLY | O_TRUNC) < 0 && errno == EROFS);

    /* status: JSON with the numbers given. */
    char *text = (char *)read_file(path, &got, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    text = realloc(text, got + 1);
    text[got] = '\0';
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (!doc) fprintf(stderr, "status is not JSON (%s): %s\n", jerr.text, text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(doc, "point_in_time_us")), (json_int_t)US_POINT);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "point_in_time")), "2023-11-14T22:13:20.123456Z");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "sets")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(doc, "sets"), 1)), "/backups/inc1");
    json_t *gens = json_object_get(doc, "generations_replayed");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(gens, "low")), 3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(gens, "high")), 7);
    json_t *stop = json_object_get(doc, "stop_asked");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(stop, "generation")), 6);
    CU_ASSERT(json_is_null(json_object_get(stop, "time")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(doc, "overlay_bytes")), 81920);
    json_decref(doc);
    free(text);

    unmount_browse(b);
    /* Unmounted: the mount point is an empty directory again. */
    d = opendir(mnt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    seen = 0;
    while ((de = readdir(d))) seen += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    CU_ASSERT_EQUAL(seen, 0);
    for (int i = 0; i < n; i++) free(kvs[i].val);
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL(JetTerm(inst), 0);
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Reads up to max names of the open directory fd with small getdents64
 * calls (many FUSE readdir requests); returns how many were in order. */
static long list_in_order(int fd, long first, long max, long *pseen)
{
    char buf[600];
    long want = first, seen = 0;
    for (;;) {
        long nread = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (nread < 0) {
            perror("getdents64");
            return -1;
        }
        if (nread == 0) break;
        for (long off = 0; off < nread;) {
            struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
            off += e->d_reclen;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char name[32];
            snprintf(name, sizeof name, "k%07ld", want);
            if (strcmp(e->d_name, name) != 0) {
                fprintf(stderr, "entry %ld is '%s', want '%s'\n", seen, e->d_name, name);
                *pseen = seen;
                return want - first;
            }
            want++;
            seen++;
            if (seen == max) {
                *pseen = seen;
                return want - first;
            }
        }
    }
    *pseen = seen;
    return want - first;
}

struct reader {
    const char *mnt;
    long nkeys;
    uint64_t seed;
    int bad;
};

/* Random keys read whole, and listings, from several threads at once:
 * each request takes its own JET session from the pool. */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char path[4400], expect[32];
    for (int i = 0; i < 1500; i++) {
        long k = (long)(tu_rand(&r->seed) % (uint64_t)r->nkeys);
        snprintf(path, sizeof path, "%s/tables/t/k%07ld", r->mnt, k);
        int cv = snprintf(expect, sizeof expect, "value %ld\n", k);
        size_t got = 0;
        int err;
        uint8_t *v = read_file(path, &got, &err);
        if (!v || got != (size_t)cv || memcmp(v, expect, got) != 0) r->bad++;
        free(v);
        if (i % 500 == 0) {
            /* A listing of its own, part way. */
            snprintf(path, sizeof path, "%s/tables/t", r->mnt);
            DIR *d = opendir(path);
            struct dirent *de;
            long n = 0;
            while (d && (de = readdir(d)) && n < 3000) n++;
            if (!d || n < 3000) r->bad++;
            if (d) closedir(d);
        }
    }
    return NULL;
}

static void test_browse_lists_a_large_table_in_order(void)
{
    char root[4096], dbpath[4200], mnt[4200], path[8192];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("browse_large"));
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", root);
    mkdir(mnt, 0700);
    long nkeys = tu_count("BROWSE_KEYS", 200000, 2000000);
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_EQUAL_FATAL(tu_open("browse_large", root, (struct tu_params){0}, dbpath, 1, &inst, &s, &db, &t), 0);
    /* Inserted out of order, listed in order. */
    for (long i = 0; i < nkeys;) {
        CU_ASSERT_EQUAL_FATAL(JetBeginTransaction(s), 0);
        for (long j = 0; j < 2000 && i < nkeys; j++, i++) {
            long k = (i * 7919) % nkeys;
            char key[32], val[32];
            int cb = snprintf(key, sizeof key, "k%07ld", k);
            int cv = snprintf(val, sizeof val, "value %ld\n", k);
            CU_ASSERT_EQUAL_FATAL(JetPutKV(s, t, key, (unsigned long)cb, val, (unsigned long)cv, 0), 0);
        }
        CU_ASSERT_EQUAL_FATAL(JetCommitTransaction(s, JET_bitCommitLazyFlush), 0);
    }
    struct jetfs_browse *b = mount_browse(inst, dbpath, mnt);

    snprintf(path, sizeof path, "%s/tables/t", mnt);
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    CU_ASSERT_FATAL(fd >= 0);
    long seen = 0;
    long inorder = list_in_order(fd, 0, nkeys + 10, &seen);
    fprintf(stderr, "listed %ld of %ld keys in order\n", inorder, nkeys);
    CU_ASSERT_EQUAL(inorder, nkeys);
    CU_ASSERT_EQUAL(seen, nkeys);
    close(fd);

    /* A second reader, stopping half way, seeking back to an offset it
     * was given, and going on: the offsets are stable. */
    DIR *d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *de;
    long idx = 0, mark_idx = -1, pos = -1;
    while ((de = readdir(d)) && idx < nkeys / 2) {
        if (de->d_name[0] == '.') continue;
        if (idx == 1000) {
            pos = telldir(d);
            mark_idx = idx + 1;
        }
        idx++;
    }
    CU_ASSERT_FATAL(pos >= 0);
    seekdir(d, pos);
    char want[32];
    for (long i = mark_idx; i < mark_idx + 5000 && (de = readdir(d)); i++) {
        snprintf(want, sizeof want, "k%07ld", i);
        if (strcmp(de->d_name, want) != 0) {
            fprintf(stderr, "after seekdir: '%s', want '%s'\n", de->d_name, want);
            CU_FAIL("seekdir to a listed offset does not resume there");
            break;
        }
    }
    closedir(d);

    /* Four readers at once. */
    struct reader rd[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rd[i] = (struct reader){.mnt = mnt, .nkeys = nkeys, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(rd[i].bad, 0);
    }

    /* Key nodes are held only while the kernel holds them: stat many,
     * let the kernel drop its dentries, and the map shrinks. */
    for (long k = 0; k < 5000; k++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/tables/t/k%07ld", mnt, k);
        CU_ASSERT_EQUAL(stat(path, &st), 0);
    }
    long held = status_number(mnt, "key_nodes_held");
    fprintf(stderr, "key nodes held after 5000 stats: %ld\n", held);
    CU_ASSERT(held >= 5000);
    FILE *dc = geteuid() == 0 ? fopen("/proc/sys/vm/drop_caches", "w") : NULL;
    if (dc) {
        sync();
        fputs("2\n", dc);
        fclose(dc);
        long after = status_number(mnt, "key_nodes_held");
        fprintf(stderr, "key nodes held after the kernel dropped its dentries: %ld\n", after);
        CU_ASSERT(after < held);
    } else {
        fprintf(stderr, "not root: the forget half of the node test is skipped\n");
    }

    /* And the files themselves. */
    for (long k = 0; k < nkeys; k += nkeys / 7) {
        snprintf(path, sizeof path, "%s/tables/t/k%07ld", mnt, k);
        size_t got = 0;
        int err;
        char expect[32];
        int cv = snprintf(expect, sizeof expect, "value %ld\n", k);
        uint8_t *v = read_file(path, &got, &err);
        CU_ASSERT(v && got == (size_t)cv && !memcmp(v, expect, got));
        free(v);
    }
    unmount_browse(b);
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL(JetTerm(inst), 0);
}

/* A damaged page: EIO for what lies behind it, logged with the engine's
 * detail (the file and the page), and never bytes that are not the value. */
static void test_browse_damaged_page_is_eio_never_data(void)
{
    char root[4096], dbpath[4200], mnt[4200], path[8192];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("browse_damage"));
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", root);
    mkdir(mnt, 0700);
    enum { NK = 3000, VAL = 400 };
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    char key[32], val[VAL];
    CU_ASSERT_EQUAL_FATAL(tu_open("browse_damage", root, (struct tu_params){0}, dbpath, 1, &inst, &s, &db, &t), 0);
    for (int i = 0; i < NK; i++) {
        int cb = snprintf(key, sizeof key, "d%05d", i);
        memset(val, 'a' + i % 26, sizeof val);
        CU_ASSERT_EQUAL_FATAL(JetPutKV(s, t, key, (unsigned long)cb, val, VAL, JET_bitPutInsert), 0);
    }
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL_FATAL(JetTerm(inst), 0); /* clean: every page in the file */

    /* One byte flipped in each of a few pages in the middle of the file. */
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(dbpath, &st), 0);
    long pages = (long)(st.st_size / 8192);
    CU_ASSERT_FATAL(pages > 20);
    int fd = open(dbpath, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    for (long pg = pages / 2; pg < pages / 2 + 3; pg++) {
        unsigned char c;
        off_t at = (off_t)pg * 8192 + 4100;
        CU_ASSERT_EQUAL(pread(fd, &c, 1, at), 1);
        c ^= 0x5a;
        CU_ASSERT_EQUAL(pwrite(fd, &c, 1, at), 1);
    }
    CU_ASSERT_EQUAL(fsync(fd), 0);
    close(fd);

    CU_ASSERT_EQUAL_FATAL(tu_open("browse_damage2", root, (struct tu_params){0}, dbpath, 0, &inst, &s, &db, &t), 0);
    pthread_mutex_lock(&g_log_mu);
    g_nlog = g_eio_lines = 0;
    pthread_mutex_unlock(&g_log_mu);
    struct jetfs_browse *b = mount_browse(inst, dbpath, mnt);
    int ok = 0, eio = 0, other = 0;
    for (int i = 0; i < NK; i++) {
        snprintf(path, sizeof path, "%s/tables/t/d%05d", mnt, i);
        size_t got = 0;
        int err = 0;
        uint8_t *v = read_file(path, &got, &err);
        if (v) {
            memset(val, 'a' + i % 26, sizeof val);
            if (got != VAL || memcmp(v, val, VAL) != 0) CU_FAIL("a read served bytes that are not the value");
            ok++;
        } else if (err == EIO) {
            eio++;
        } else {
            fprintf(stderr, "d%05d: %s\n", i, strerror(err));
            other++;
        }
        free(v);
    }
    fprintf(stderr, "damaged pages: %d keys read, %d EIO, %d other errors\n", ok, eio, other);
    CU_ASSERT(eio > 0);
    CU_ASSERT(ok > 0);
    CU_ASSERT_EQUAL(other, 0);
    /* Listing through the damage fails too, with EIO, never a short list
     * taken for the whole. */
    snprintf(path, sizeof path, "%s/tables/t", mnt);
    DIR *d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    errno = 0;
    while (readdir(d)) n++;
    int lerr = errno;
    closedir(d);
    CU_ASSERT(lerr == EIO || n == NK + 2);
    bool logged = false;
    pthread_mutex_lock(&g_log_mu);
    for (int i = 0; i < g_nlog; i++)
        if (strstr(g_log[i], "answered EIO") && strstr(g_log[i], "page") && strstr(g_log[i], "jetfs.db")) logged = true;
    pthread_mutex_unlock(&g_log_mu);
    CU_ASSERT(logged);
    /* At most 10 lines a second, however many answers. */
    fprintf(stderr, "%d EIO answers, %d logged\n", eio, g_eio_lines);
    CU_ASSERT(g_eio_lines <= 10 * 5);
    CU_ASSERT(g_eio_lines < eio);
    CU_ASSERT(status_number(mnt, "eio_answers") >= eio);
    unmount_browse(b);
    JetEndSession(s, 0);
    JetTerm(inst);
}

struct racer {
    const char *path;
    const uint8_t *val;
    size_t cbval;
    pthread_barrier_t *go;
    int bad;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->go);
    size_t got = 0;
    int err = 0;
    uint8_t *v = read_file(r->path, &got, &err);
    r->bad = !v || got != r->cbval || memcmp(v, r->val, got) != 0;
    if (r->bad) fprintf(stderr, "racing read of %s: %zu bytes of %zu, err %d\n", r->path, got, r->cbval, err);
    free(v);
    return NULL;
}

/* Values are whole whether the first open pushed them into the page cache
 * (up to 128 KiB) or reads come as READ requests (larger ones, or pages
 * the kernel dropped), whichever open comes first. */
static void test_browse_values_of_every_size_read_whole(void)
{
    char root[4096], dbpath[4200], mnt[4200], path[8192];
    snprintf(root, sizeof root, "%s", tu_scratch_dir("browse_sizes"));
    snprintf(mnt, sizeof mnt, "%s/mnt", root);
    snprintf(dbpath, sizeof dbpath, "%s/jetfs.db", root);
    mkdir(mnt, 0700);
    uint64_t seed = tu_seed("browse_sizes");
    static const size_t sizes[] = {1, 4095, 4096, 4097, 10000, 131071, 131072, 131073, 300000};
    enum { NS = sizeof sizes / sizeof sizes[0], NRACE = 4 };
    uint8_t *vals[NS];
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    JET_TABLEID t;
    CU_ASSERT_EQUAL_FATAL(tu_open("browse_sizes", root, (struct tu_params){0}, dbpath, 1, &inst, &s, &db, &t), 0);
    for (int i = 0; i < NS; i++) {
        char key[32];
        int cb = snprintf(key, sizeof key, "v%07zu", sizes[i]);
        vals[i] = malloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++) vals[i][j] = (uint8_t)tu_rand(&seed);
        CU_ASSERT_EQUAL_FATAL(JetPutKV(s, t, key, (unsigned long)cb, vals[i], (unsigned long)sizes[i], 0), 0);
    }
    struct jetfs_browse *b = mount_browse(inst, dbpath, mnt);

    /* The listing alone: every entry comes with its node and its size. */
    snprintf(path, sizeof path, "%s/tables/t", mnt);
    DIR *d = opendir(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int listed = 0;
    for (struct dirent *de; (de = readdir(d));) listed += de->d_name[0] != '.';
    closedir(d);
    CU_ASSERT_EQUAL(listed, NS);
    long held = status_number(mnt, "key_nodes_held");
    fprintf(stderr, "key nodes held after listing %d keys: %ld\n", listed, held);
    CU_ASSERT(held >= NS);

    for (int i = 0; i < NS; i++) {
        snprintf(path, sizeof path, "%s/tables/t/v%07zu", mnt, sizes[i]);
        struct stat st;
        CU_ASSERT_EQUAL(stat(path, &st), 0);
        CU_ASSERT_EQUAL((size_t)st.st_size, sizes[i]);
        /* First opens racing: one stores, the others may READ meanwhile. */
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, NRACE);
        struct racer rc[NRACE];
        pthread_t th[NRACE];
        for (int k = 0; k < NRACE; k++) {
            rc[k] = (struct racer){.path = path, .val = vals[i], .cbval = sizes[i], .go = &go};
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[k], NULL, racer_main, &rc[k]), 0);
        }
        for (int k = 0; k < NRACE; k++) {
            pthread_join(th[k], NULL);
            CU_ASSERT_EQUAL(rc[k].bad, 0);
        }
        pthread_barrier_destroy(&go);
        /* A later open, its tail with pread, and the whole through mmap. */
        size_t got = 0;
        int err = 0;
        uint8_t *v = read_file(path, &got, &err);
        CU_ASSERT(v && got == sizes[i] && !memcmp(v, vals[i], got));
        free(v);
        int fd = open(path, O_RDONLY);
        CU_ASSERT_FATAL(fd >= 0);
        uint8_t tail[64];
        size_t cbt = sizes[i] < sizeof tail ? sizes[i] : sizeof tail;
        CU_ASSERT_EQUAL(pread(fd, tail, cbt, (off_t)(sizes[i] - cbt)), (ssize_t)cbt);
        CU_ASSERT(!memcmp(tail, vals[i] + sizes[i] - cbt, cbt));
        void *m = mmap(NULL, sizes[i], PROT_READ, MAP_PRIVATE, fd, 0);
        CU_ASSERT_FATAL(m != MAP_FAILED);
        CU_ASSERT(!memcmp(m, vals[i], sizes[i]));
        munmap(m, sizes[i]);
        close(fd);
    }
    CU_ASSERT_EQUAL(status_number(mnt, "eio_answers"), 0);
    unmount_browse(b);
    for (int i = 0; i < NS; i++) free(vals[i]);
    JetEndSession(s, 0);
    CU_ASSERT_EQUAL(JetTerm(inst), 0);
}

int main(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        if (!getenv("CI")) {
            fprintf(stderr, "SKIP: no /dev/fuse (CI unset)\n");
            return 77;
        }
        fprintf(stderr, "FAIL: /dev/fuse is missing under CI\n");
        return 1;
    }
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("browse", NULL, NULL);
    CU_add_test(s, "keys of any bytes are files of their values", test_browse_keys_of_any_bytes_are_files_of_their_values);
    CU_add_test(s, "a table of 200,000 keys lists whole, in order", test_browse_lists_a_large_table_in_order);
    CU_add_test(s, "a damaged page is EIO, never data", test_browse_damaged_page_is_eio_never_data);
    CU_add_test(s, "values of every size read whole", test_browse_values_of_every_size_read_whole);
    return tu_run();
}

/*
 * test_manifest.c -- engine/manifest.c: backup.manifest's writer and reader.
 * What is written reads back the same; the checksum covers the values, so
 * a manifest re-indented, with its members reordered or its strings escaped
 * differently (what jq and other tools do) still reads, while a changed,
 * added or removed value is refused naming the manifest; a manifest written
 * by the build before this module (checksum over its literal text) reads
 * unchanged and is what the writer still writes, byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "manifest.h"
#include "testutil.h"

#define PATH "/sets/full/backup.manifest"

/* Written by jetfs serve at commit 23dc101 (before manifest.c), verbatim. */
static const char OLD_FORMAT[] =
    "{\n"
    "  \"format\": 1,\n"
    "  \"backup_id\": \"fcc37fd09b2dd8cf\",\n"
    "  \"predecessor_id\": \"0000000000000000\",\n"
    "  \"type\": \"full\",\n"
    "  \"begin_time\": \"2026-12-07T12:56:54Z\",\n"
    "  \"begin_us\": 1796648214652831,\n"
    "  \"log_signature\": \"6d43c21db4513c77\",\n"
    "  \"log_base\": \"edb\",\n"
    "  \"generations\": {\"low\": 5, \"high\": 5},\n"
    "  \"databases\": [\n"
    "    {\"name\": \"jetfs.db\", \"dbidx\": 0, \"signature\": \"2a73377194415669\"}\n"
    "  ],\n"
    "  \"files\": [\n"
    "    {\"name\": \"jetfs.db\", \"size\": 4153344},\n"
    "    {\"name\": \"edb00000005.log\", \"size\": 1048576, \"xxh3\": \"3caec53ebcc9a47f\"}\n"
    "  ],\n"
    "  \"manifest_checksum\": \"6251951a18c4218a\"\n"
    "}\n";

static struct manifest_db dbs[] = {{"a.db", 0, 0x1122334455667788ull, "/var/lib/jetfs/a.db"},
                                   {"b \"quoted\" \\ caf\xc3\xa9.db", 3, 1, NULL}};
static struct manifest_file files[] = {
    {"a.db", 8192 * 40, false, 0},
    {"b \"quoted\" \\ caf\xc3\xa9.db", 5ull << 40, false, 0},
    {"edb00000011.log", 1048576, true, 0xfedcba9876543210ull},
    {"edb00000012.log", 4096, true, 0},
};

static struct manifest sample(void)
{
    struct manifest m = {.format = MANIFEST_FORMAT,
                         .backup_id = 0xabcdef0123456789ull,
                         .predecessor_id = 0x0123456789abcdefull,
                         .type = "incremental",
                         .begin_time = "2026-12-07T13:00:00Z",
                         .begin_us = 1796648400123456ull,
                         .log_signature = 0x5555aaaa5555aaaaull,
                         .log_base = "edb",
                         .gen_low = 11,
                         .gen_high = 12,
                         .ndbs = 2,
                         .nfiles = 4,
                         .dbs = dbs,
                         .files = files};
    return m;
}

static void assert_same(const struct manifest *a, const struct manifest *b)
{
    CU_ASSERT_EQUAL(a->format, b->format);
    CU_ASSERT_EQUAL(a->backup_id, b->backup_id);
    CU_ASSERT_EQUAL(a->predecessor_id, b->predecessor_id);
    CU_ASSERT_STRING_EQUAL(a->type, b->type);
    CU_ASSERT_STRING_EQUAL(a->begin_time, b->begin_time);
    CU_ASSERT_EQUAL(a->begin_us, b->begin_us);
    CU_ASSERT_EQUAL(a->log_signature, b->log_signature);
    CU_ASSERT_STRING_EQUAL(a->log_base, b->log_base);
    CU_ASSERT_EQUAL(a->gen_low, b->gen_low);
    CU_ASSERT_EQUAL(a->gen_high, b->gen_high);
    CU_ASSERT_EQUAL_FATAL(a->ndbs, b->ndbs);
    for (uint32_t i = 0; i < a->ndbs; i++) {
        CU_ASSERT_STRING_EQUAL(a->dbs[i].name, b->dbs[i].name);
        CU_ASSERT_EQUAL(a->dbs[i].dbidx, b->dbs[i].dbidx);
        CU_ASSERT_EQUAL(a->dbs[i].signature, b->dbs[i].signature);
        /* The original path goes through whole, or stays unrecorded. */
        CU_ASSERT_EQUAL(!a->dbs[i].path, !b->dbs[i].path);
        if (a->dbs[i].path && b->dbs[i].path) CU_ASSERT_STRING_EQUAL(a->dbs[i].path, b->dbs[i].path);
    }
    CU_ASSERT_EQUAL_FATAL(a->nfiles, b->nfiles);
    for (uint32_t i = 0; i < a->nfiles; i++) {
        CU_ASSERT_STRING_EQUAL(a->files[i].name, b->files[i].name);
        CU_ASSERT_EQUAL(a->files[i].size, b->files[i].size);
        CU_ASSERT_EQUAL(a->files[i].has_xxh3, b->files[i].has_xxh3);
        CU_ASSERT_EQUAL(a->files[i].xxh3, b->files[i].xxh3);
    }
}

static char *written(void)
{
    struct manifest m = sample();
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(manifest_write(&m, &text, &len) == JET_errSuccess);
    CU_ASSERT_FATAL(text != NULL && strlen(text) == len);
    return text;
}

/* text parses, and says what sample() says. */
static void assert_reads_as_sample(const char *text)
{
    struct manifest want = sample(), got;
    JET_ERR err = manifest_parse(text, strlen(text), PATH, &got);
    if (err < 0) fprintf(stderr, "parse: %ld %s\n%s\n", (long)err, JetGetLastErrorDetail(), text);
    CU_ASSERT_EQUAL_FATAL(err, JET_errSuccess);
    assert_same(&want, &got);
    CU_ASSERT_PTR_NOT_NULL(manifest_find(&got, "edb00000012.log"));
    CU_ASSERT_PTR_NULL(manifest_find(&got, "edb00000013.log"));
    manifest_free(&got);
}

/* text is refused as an invalid backup, naming the manifest and why. */
static void assert_refused(const char *text, const char *why)
{
    struct manifest got;
    JET_ERR err = manifest_parse(text, strlen(text), PATH, &got);
    CU_ASSERT_EQUAL(err, JET_errInvalidBackup);
    const char *d = JetGetLastErrorDetail();
    if (err != JET_errInvalidBackup || !strstr(d, PATH) || !strstr(d, why))
        fprintf(stderr, "refusal: %ld \"%s\", wanted \"%s\"\n", (long)err, d, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, PATH));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, why));
    CU_ASSERT_EQUAL(got.nfiles, 0);
    CU_ASSERT_PTR_NULL(got.files);
}

/* The JSON of text, re-encoded by jansson with flags (as another tool
 * would write it), and with its checksum set to the correct one when fix. */
static char *reencode(const char *text, size_t flags, bool fix)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    CU_ASSERT_FATAL(root != NULL);
    if (fix) {
        char *t = json_dumps(root, JSON_COMPACT);
        uint64_t sum = 0;
        CU_ASSERT_FATAL(t && manifest_text_checksum(t, strlen(t), &sum) == JET_errSuccess);
        free(t);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
        CU_ASSERT_FATAL(json_object_set_new(root, "manifest_checksum", json_string(hex)) == 0);
    }
    char *out = json_dumps(root, flags);
    json_decref(root);
    CU_ASSERT_FATAL(out != NULL);
    return out;
}

/* text with root's members in the reverse of their written order. */
static char *reversed(const char *text)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je), *rev = json_object();
    CU_ASSERT_FATAL(root && rev);
    size_t n = json_object_size(root), i = 0;
    const char **keys = calloc(n, sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) keys[i++] = k;
    while (i--) json_object_set(rev, keys[i], json_object_get(root, keys[i]));
    char *out = json_dumps(rev, JSON_INDENT(3));
    free(keys);
    json_decref(rev);
    json_decref(root);
    CU_ASSERT_FATAL(out != NULL);
    return out;
}

/* text with the first occurrence of from replaced by to. */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    CU_ASSERT_FATAL(p != NULL);
    size_t a = (size_t)(p - text), n = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    CU_ASSERT_FATAL(out != NULL);
    memcpy(out, text, a);
    strcpy(out + a, to);
    strcat(out, p + strlen(from));
    return out;
}

static void test_round_trip(void)
{
    char *text = written();
    assert_reads_as_sample(text);
    /* The file is its canonical form, then the checksum of it. */
    const char *ck = strstr(text, "  \"manifest_checksum\": \"");
    CU_ASSERT_FATAL(ck != NULL);
    char want[64];
    snprintf(want, sizeof want, "  \"manifest_checksum\": \"%016llx\"\n}\n",
             (unsigned long long)XXH3_64bits(text, (size_t)(ck - text)));
    CU_ASSERT_STRING_EQUAL(ck, want);
    uint64_t sum = 0;
    CU_ASSERT(manifest_text_checksum(text, strlen(text), &sum) == JET_errSuccess);
    CU_ASSERT_EQUAL(sum, XXH3_64bits(text, (size_t)(ck - text)));
    /* Strings are escaped: the name with a quote and a backslash. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"b \\\"quoted\\\" \\\\ caf\xc3\xa9.db\""));
    free(text);
}

static void test_reindented_and_reordered_still_read(void)
{
    char *text = written();
    /* jq . (indent 2), compact, sorted keys (jq -S), ASCII-only escapes
     * (jq -a), and every member in reverse order. */
    size_t flavours[] = {JSON_INDENT(2), JSON_COMPACT, JSON_INDENT(4) | JSON_SORT_KEYS,
                         JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH};
    for (size_t i = 0; i < sizeof flavours / sizeof flavours[0]; i++) {
        char *t = reencode(text, flavours[i], false);
        CU_ASSERT(strcmp(t, text) != 0);
        assert_reads_as_sample(t);
        free(t);
    }
    char *r = reversed(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"manifest_checksum\"") < strstr(r, "\"format\"") ? r : NULL);
    assert_reads_as_sample(r);
    free(r);
    free(text);
}

static void test_changed_values_refused(void)
{
    char *text = written();
    const struct {
        const char *from, *to;
    } edits[] = {
        {"\"size\": 1048576", "\"size\": 1048577"},
        {"\"type\": \"incremental\"", "\"type\": \"differential\""},
        {"\"backup_id\": \"abcdef0123456789\"", "\"backup_id\": \"abcdef0123456788\""},
        {"edb00000012.log", "edb00000013.log"},
        {"\"high\": 12", "\"high\": 13"},
        {", \"xxh3\": \"0000000000000000\"", ""},   /* a member removed */
        {"\"format\": 1,", "\"format\": 1, \"note\": \"x\","}, /* one added */
        {"\"begin_us\": 1796648400123456", "\"begin_us\": 1796648400123456.5"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *t = replaced(text, edits[i].from, edits[i].to);
        assert_refused(t, "edited?");
        /* the same edit, re-indented by a tool afterwards: still refused */
        char *t2 = reencode(t, JSON_INDENT(2) | JSON_SORT_KEYS, false);
        assert_refused(t2, "edited?");
        free(t2);
        free(t);
    }
    free(text);
}

static void test_old_format_manifest_reads_and_is_written_the_same(void)
{
    struct manifest m;
    CU_ASSERT_EQUAL_FATAL(manifest_parse(OLD_FORMAT, strlen(OLD_FORMAT), PATH, &m), JET_errSuccess);
    CU_ASSERT_EQUAL(m.backup_id, 0xfcc37fd09b2dd8cfull);
    CU_ASSERT_STRING_EQUAL(m.type, "full");
    CU_ASSERT_EQUAL(m.nfiles, 2);
    CU_ASSERT_EQUAL(m.files[1].xxh3, 0x3caec53ebcc9a47full);
    CU_ASSERT_FALSE(m.files[0].has_xxh3);
    /* The writer writes exactly what the previous build wrote: builds on
     * either side of this change read each other's manifests. */
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(manifest_write(&m, &text, &len) == JET_errSuccess);
    CU_ASSERT_STRING_EQUAL(text, OLD_FORMAT);
    free(text);
    manifest_free(&m);
    /* ... re-indented by jq, too; edited, refused. */
    char *t = reencode(OLD_FORMAT, JSON_INDENT(2) | JSON_SORT_KEYS, false);
    CU_ASSERT_EQUAL(manifest_parse(t, strlen(t), PATH, &m), JET_errSuccess);
    manifest_free(&m);
    free(t);
    t = replaced(OLD_FORMAT, "4153344", "4153345");
    assert_refused(t, "edited?");
    free(t);
}

static void test_malformed_refused_by_name(void)
{
    char *text = written();
    /* Not JSON, not an object, no checksum, a checksum of the wrong form. */
    char *t = strdup(text);
    t[strlen(t) / 2] = '\0';
    assert_refused(t, "not valid JSON (line");
    free(t);
    assert_refused("[1, 2]", "not a JSON object");
    const struct {
        const char *from, *to, *why;
    } raw[] = {
        {"  \"manifest_checksum\"", "  \"checksum\"", "has no checksum"},
        {"\"manifest_checksum\": \"", "\"manifest_checksum\": \"x", "manifest_checksum: not 16 hex digits"},
        /* another format is named, not taken for an edit */
        {"\"format\": 1", "\"format\": 2", "format 2; this build reads format 1"},
        /* a key twice: which one would count? */
        {"\"format\": 1,", "\"format\": 1, \"type\": \"full\",", "duplicate"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        t = replaced(text, raw[i].from, raw[i].to);
        assert_refused(t, raw[i].why);
        free(t);
    }
    /* With its checksum made right, the schema still refuses: an unknown
     * member, a missing one, a wrong type, a name outside the set, a
     * number out of range. */
    const struct {
        const char *from, *to, *why;
    } bad[] = {
        {"\"format\": 1,", "\"format\": 1, \"note\": \"x\",", "unknown member \"note\""},
        {"\"log_base\": \"edb\",", "", "log_base: missing"},
        {"\"size\": 4096", "\"size\": \"4096\"", "files[3].size: not an integer"},
        {"\"size\": 4096", "\"size\": -1", "files[3].size: out of range"},
        {"\"name\": \"edb00000012.log\"", "\"name\": \"../edb00000012.log\"", "files[3].name: not a file name"},
        {"\"name\": \"a.db\", \"size\"", "\"name\": \"..\", \"size\"", "files[0].name: not a file name"},
        {"\"type\": \"incremental\"", "\"type\": \"partial\"", "type: not full"},
        {"\"high\": 12", "\"high\": 4294967296", "generations.high: out of range"},
        {"\"signature\": \"1122334455667788\"", "\"signature\": \"11223344\"", "databases[0].signature: not 16 hex"},
        {"\"files\": [", "\"files\": {\"x\": [", "files: not an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *e = replaced(text, bad[i].from, bad[i].to);
        if (!strcmp(bad[i].from, "\"files\": [")) {
            char *e2 = replaced(e, "\n  ],\n  \"manifest", "\n  ]},\n  \"manifest");
            free(e);
            e = e2;
        }
        char *f = reencode(e, JSON_INDENT(2), true);
        assert_refused(f, bad[i].why);
        free(f);
        free(e);
    }
    free(text);
}

static void test_writer_refuses_what_it_cannot_write(void)
{
    char *text = (char *)"untouched";
    size_t len = 7;
    struct manifest m = sample();
    struct manifest_file f[] = {{"sub/dir.log", 1, true, 1}};
    m.files = f;
    m.nfiles = 1;
    CU_ASSERT_EQUAL(manifest_write(&m, &text, &len), JET_errInvalidParameter);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "sub/dir.log"));
    f[0].name = "bad\xff.log"; /* not UTF-8 */
    CU_ASSERT_EQUAL(manifest_write(&m, &text, &len), JET_errInvalidParameter);
    m = sample();
    snprintf(m.type, sizeof m.type, "partial");
    CU_ASSERT_EQUAL(manifest_write(&m, &text, &len), JET_errInvalidParameter);
    CU_ASSERT_PTR_NOT_NULL(strstr(JetGetLastErrorDetail(), "partial"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite su = CU_add_suite("manifest", NULL, NULL);
    CU_add_test(su, "test_round_trip", test_round_trip);
    CU_add_test(su, "test_reindented_and_reordered_still_read", test_reindented_and_reordered_still_read);
    CU_add_test(su, "test_changed_values_refused", test_changed_values_refused);
    CU_add_test(su, "test_old_format_manifest_reads_and_is_written_the_same",
                test_old_format_manifest_reads_and_is_written_the_same);
    CU_add_test(su, "test_malformed_refused_by_name", test_malformed_refused_by_name);
    CU_add_test(su, "test_writer_refuses_what_it_cannot_write", test_writer_refuses_what_it_cannot_write);
    return tu_run();
}

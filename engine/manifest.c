/*
 * manifest.c -- backup.manifest, the description every backup set carries
 * (SPEC.md section 4): written by backup.c when the set's manifest is read,
 * read by restore.c before a restore or verify uses the set.  This file is
 * the only one that knows its text.
 *
 * The format (format 1), one JSON object:
 *
 *   member            JSON type   value
 *   format            integer     1
 *   backup_id         string      16 hex digits
 *   predecessor_id    string      16 hex digits; 0 for a full or copy
 *   type              string      "full", "incremental", "differential", "copy"
 *   begin_time        string      UTC of the backup's begin, ISO 8601
 *   begin_us          integer     the same, microseconds since the epoch
 *   log_signature     string      16 hex digits: the log stream of the set
 *   log_base          string      the log files' base name ("edb")
 *   generations       object      {"low": integer, "high": integer}
 *   databases         array       {"name": string, "dbidx": integer, "signature": 16 hex[, "path": string]}
 *   files             array       {"name": string, "size": integer[, "xxh3": 16 hex]}
 *   manifest_checksum string      16 hex digits: XXH3-64 of the canonical form
 *
 * A database's "path" is where it was when backed up (a restore to the
 * original path needs it); it is left out when it is not UTF-8, and sets of
 * earlier builds have none.  Every other member is required and no other is allowed (an unknown member is
 * refused rather than ignored: nothing a reader skips can be trusted).  A
 * listed name is a plain file name: not empty, no '/', not "." or "..".
 *
 * The canonical form.  The checksum covers the object's values, not the
 * bytes a tool happened to write, so a manifest re-indented or with its
 * members reordered (jq . m) still verifies while a changed value does not.
 * The canonical form of the object without its manifest_checksum member is
 * the text this writer prints, which is also exactly the text the checksum
 * of builds before this module covered (the text before the checksum line);
 * so manifests from those builds verify unchanged, and need no second path:
 *   - "{\n", then each member as two spaces, "key": value, ",\n";
 *   - members in the order of the table above, and inside the nested
 *     objects low, high; name, dbidx, signature; name, size, xxh3 (an
 *     unknown key, which the schema then refuses, after them, bytewise);
 *   - an object inside it on one line: {"k": v, "k": v};
 *   - a non-empty array member: "[", each element as "\n" and four spaces
 *     before it, "," between elements, then "\n  ]"; an empty one "[]";
 *     deeper arrays on one line: [a, b];
 *   - integers in shortest decimal, no sign for zero, no leading zeroes;
 *   - strings in double quotes, escaping only '"' as \", '\' as \\, \b \f
 *     \n \r \t, and other bytes below 0x20 as \u00xx (lower-case hex);
 *     every other byte (UTF-8 included) as itself.
 * The file is the canonical form followed by
 *   "  \"manifest_checksum\": \"<16 hex>\"\n}\n".
 *
 * The JSON library is jansson (Debian's libjansson-dev), chosen over json-c
 * and cJSON because: its integers are 64-bit (json_int_t is long long), so
 * sizes and microsecond times round-trip exactly where cJSON keeps every
 * number as a double; JSON_REJECT_DUPLICATES refuses an object with a key
 * twice, where json-c and cJSON silently keep one of them, and a manifest
 * must not say two things; its parse errors give line and column for the
 * message; it validates UTF-8 and refuses NUL in strings by default.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <xxhash.h>

#include "diag.h"
#include "manifest.h"
#include "os.h"

/* Sizes and microsecond times need jansson's 64-bit integers. */
_Static_assert(sizeof(json_int_t) == 8, "jansson built without long long integers");
#define JSON_UINT_MAX ((uint64_t)LLONG_MAX)

static const char *const TYPES[] = {"full", "incremental", "differential", "copy"};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

/* The canonical order of keys: the table above, then nested keys. */
static const char *const KEY_ORDER[] = {
    "format",   "backup_id", "predecessor_id", "type", "begin_time", "begin_us",  "log_signature",
    "log_base", "generations", "low",          "high", "databases",  "files",     "name",
    "dbidx",    "signature", "path",           "size", "xxh3",              "manifest_checksum",
};
#define NKEYS (sizeof KEY_ORDER / sizeof KEY_ORDER[0])

/* ---- the canonical form ---- */

static size_t key_rank(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(k, KEY_ORDER[i])) return i;
    return NKEYS;
}

static int key_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t rx = key_rank(x), ry = key_rank(y);
    if (rx != ry) return rx < ry ? -1 : 1;
    return strcmp(x, y);
}

/* o's keys in canonical order (malloc'd; NULL with *n 0 for none, or on
 * running out of memory, which sets *oom). */
static const char **sorted_keys(bool *oom, json_t *o, size_t *n)
{
    const char *k;
    json_t *v;
    size_t i = 0;
    *n = json_object_size(o);
    if (!*n) return NULL;
    const char **keys = malloc(*n * sizeof *keys);
    if (!keys) {
        *oom = true;
        *n = 0;
        return NULL;
    }
    json_object_foreach(o, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof *keys, key_cmp);
    return keys;
}

static void render_string(FILE *b, const char *s, size_t n)
{
    fprintf(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fprintf(b, "\\\""); break;
        case '\\': fprintf(b, "\\\\"); break;
        case '\b': fprintf(b, "\\b"); break;
        case '\f': fprintf(b, "\\f"); break;
        case '\n': fprintf(b, "\\n"); break;
        case '\r': fprintf(b, "\\r"); break;
        case '\t': fprintf(b, "\\t"); break;
        default:
            if (c < 0x20) fprintf(b, "\\u%04x", c);
            else fputc(c, b);
        }
    }
    fprintf(b, "\"");
}

/* v, a value at depth (1: a member of the top object). */
static void render(FILE *b, bool *oom, json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n;
        const char **keys = sorted_keys(oom, v, &n);
        fprintf(b, "{");
        for (size_t i = 0; i < n; i++) {
            fprintf(b, "%s", i ? ", " : "");
            render_string(b, keys[i], strlen(keys[i]));
            fprintf(b, ": ");
            render(b, oom, json_object_get(v, keys[i]), depth + 1);
        }
        fprintf(b, "}");
        free(keys);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        fprintf(b, "[");
        for (size_t i = 0; i < n; i++) {
            fprintf(b, "%s%s", i ? "," : "", depth == 1 ? "\n    " : i ? " " : "");
            render(b, oom, json_array_get(v, i), depth + 1);
        }
        fprintf(b, "%s]", depth == 1 && n ? "\n  " : "");
        break;
    }
    case JSON_STRING: render_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: fprintf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: fprintf(b, "%.17g", json_real_value(v)); break;
    case JSON_TRUE: fprintf(b, "true"); break;
    case JSON_FALSE: fprintf(b, "false"); break;
    case JSON_NULL: fprintf(b, "null"); break;
    }
}

/* The canonical form of the object root, without its manifest_checksum,
 * in *ptext (malloc'd) and *plen. */
static JET_ERR canonical(json_t *root, char **ptext, size_t *plen)
{
    bool oom = false;
    size_t n;
    FILE *b = open_memstream(ptext, plen);
    if (!b) return JET_errOutOfMemory;
    const char **keys = sorted_keys(&oom, root, &n);
    fprintf(b, "{\n");
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(keys[i], "manifest_checksum")) continue;
        fprintf(b, "  ");
        render_string(b, keys[i], strlen(keys[i]));
        fprintf(b, ": ");
        render(b, &oom, json_object_get(root, keys[i]), 1);
        fprintf(b, ",\n");
    }
    free(keys);
    oom = ferror(b) || oom;
    if (fclose(b) != 0 || oom) {
        free(*ptext);
        *ptext = NULL;
        return JET_errOutOfMemory;
    }
    return JET_errSuccess;
}

static JET_ERR checksum_of(json_t *root, uint64_t *psum)
{
    char *text = NULL;
    size_t len = 0;
    JET_ERR err = canonical(root, &text, &len);
    if (err >= 0) *psum = XXH3_64bits(text, len);
    free(text);
    return err;
}

/* ---- writer ---- */

static bool plain_name(const char *s)
{
    return s && *s && strlen(s) <= MANIFEST_NAME_MAX && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static json_t *hex64(uint64_t v)
{
    char h[17];
    snprintf(h, sizeof h, "%016llx", (unsigned long long)v);
    return json_string(h);
}

/* Steals v; false if v or the set failed (out of memory, or a string that
 * is not UTF-8, which json_string refuses). */
static bool put(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

static bool fits_int(uint64_t v) { return v <= JSON_UINT_MAX; }

static json_t *build(const struct manifest *m)
{
    json_t *root = json_object(), *gens = json_object(), *dbs = json_array(), *files = json_array();
    bool ok = root && gens && dbs && files;
    ok = ok && put(root, "format", json_integer(m->format)) && put(root, "backup_id", hex64(m->backup_id)) &&
         put(root, "predecessor_id", hex64(m->predecessor_id)) && put(root, "type", json_string(m->type)) &&
         put(root, "begin_time", json_string(m->begin_time)) &&
         put(root, "begin_us", json_integer((json_int_t)m->begin_us)) &&
         put(root, "log_signature", hex64(m->log_signature)) && put(root, "log_base", json_string(m->log_base));
    ok = ok && put(gens, "low", json_integer(m->gen_low)) && put(gens, "high", json_integer(m->gen_high));
    for (uint32_t i = 0; ok && i < m->ndbs; i++) {
        const struct manifest_db *d = &m->dbs[i];
        json_t *e = json_object();
        /* json_string refuses a path that is not UTF-8: then it goes unrecorded. */
        json_t *dpath = d->path ? json_string(d->path) : NULL;
        ok = e && put(e, "name", json_string(d->name)) &&
             put(e, "dbidx", json_integer(d->dbidx)) && put(e, "signature", hex64(d->signature));
        if (ok && dpath) ok = put(e, "path", dpath); /* put takes dpath, even when it fails */
        else json_decref(dpath);
        ok = json_array_append_new(dbs, e) == 0 && ok;
    }
    for (uint32_t i = 0; ok && i < m->nfiles; i++) {
        const struct manifest_file *f = &m->files[i];
        json_t *e = json_object();
        ok = e && put(e, "name", json_string(f->name)) &&
             put(e, "size", json_integer((json_int_t)f->size)) && (!f->has_xxh3 || put(e, "xxh3", hex64(f->xxh3)));
        ok = json_array_append_new(files, e) == 0 && ok;
    }
    /* set_new steals even on failure; each goes once, then is not ours */
    ok = put(root, "generations", gens) && ok;
    gens = NULL;
    ok = put(root, "databases", dbs) && ok;
    dbs = NULL;
    ok = put(root, "files", files) && ok;
    files = NULL;
    if (!ok) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* Whether build(m) can write every value: it then fails only for memory. */
static JET_ERR writable(const struct manifest *m)
{
    bool known = false;
    for (size_t i = 0; i < NTYPES; i++) known = known || !strcmp(m->type, TYPES[i]);
    if (m->format != MANIFEST_FORMAT || !known)
        return jet_report(JET_errInvalidParameter, "manifest: format %u, type \"%.16s\": not one this build writes",
                          m->format, m->type);
    if (!fits_int(m->begin_us)) return jet_report(JET_errInvalidParameter, "manifest: begin_us past 2^63");
    const char *strings[] = {m->begin_time, m->log_base};
    for (size_t i = 0; i < 2; i++) {
        json_t *t = json_string(strings[i]);
        if (!t) return jet_report(JET_errInvalidParameter, "manifest: \"%.64s\" is not UTF-8", strings[i]);
        json_decref(t);
    }
    for (uint32_t i = 0; i < m->ndbs + m->nfiles; i++) {
        const char *name = i < m->ndbs ? m->dbs[i].name : m->files[i - m->ndbs].name;
        json_t *t = plain_name(name) ? json_string(name) : NULL;
        if (!t)
            return jet_report(JET_errInvalidParameter, "manifest: \"%.64s\" is not a UTF-8 file name of at most %d bytes",
                              name ? name : "(null)", MANIFEST_NAME_MAX);
        json_decref(t);
        if (i >= m->ndbs && !fits_int(m->files[i - m->ndbs].size))
            return jet_report(JET_errInvalidParameter, "manifest: %s: size past 2^63", name);
    }
    return JET_errSuccess;
}

JET_ERR manifest_write(const struct manifest *m, char **ptext, size_t *plen)
{
    if (!m || !ptext || !plen) return JET_errInvalidParameter;
    *ptext = NULL;
    *plen = 0;
    JET_ERR err = writable(m);
    if (err < 0) return err;
    json_t *root = build(m);
    if (!root) return JET_errOutOfMemory;
    char *text = NULL, *out;
    size_t len = 0;
    err = canonical(root, &text, &len);
    json_decref(root);
    if (err < 0) return err;
    static const char tail[] = "  \"manifest_checksum\": \"%016llx\"\n}\n";
    size_t cap = len + sizeof tail + 16;
    if (!(out = realloc(text, cap))) {
        free(text);
        return JET_errOutOfMemory;
    }
    len += (size_t)snprintf(out + len, cap - len, tail, (unsigned long long)XXH3_64bits(out, len));
    *ptext = out;
    *plen = len;
    return JET_errSuccess;
}

/* ---- reader ---- */

static JET_ERR bad(const char *path, const char *where, const char *why)
{
    return jet_report(JET_errInvalidBackup, "%s: %s: %s", path, where, why);
}

static JET_ERR only(json_t *o, const char *const *allowed, size_t n, const char *path, const char *where)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) ok = !strcmp(k, allowed[i]);
        if (!ok)
            return jet_report(JET_errInvalidBackup, "%s: %s: unknown member \"%.64s\" (format %d has none)", path, where,
                              k, MANIFEST_FORMAT);
    }
    return JET_errSuccess;
}

static JET_ERR get_uint(json_t *o, const char *key, uint64_t max, const char *path, const char *where, uint64_t *out)
{
    char w[96];
    json_t *v = json_object_get(o, key);
    snprintf(w, sizeof w, "%s%s", where, key);
    if (!v) return bad(path, w, "missing");
    if (!json_is_integer(v)) return bad(path, w, "not an integer");
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max) return bad(path, w, "out of range");
    *out = (uint64_t)x;
    return JET_errSuccess;
}

static JET_ERR get_u32(json_t *o, const char *key, const char *path, const char *where, uint32_t *out)
{
    uint64_t x = 0;
    JET_ERR err = get_uint(o, key, UINT32_MAX, path, where, &x);
    *out = (uint32_t)x;
    return err;
}

/* A string member of at most max bytes; NULL (and the error in *err) if not. */
static const char *get_str(json_t *o, const char *key, size_t max, const char *path, const char *where, JET_ERR *err)
{
    char w[96];
    json_t *v = json_object_get(o, key);
    snprintf(w, sizeof w, "%s%s", where, key);
    if (!v) *err = bad(path, w, "missing");
    else if (!json_is_string(v)) *err = bad(path, w, "not a string");
    else if (json_string_length(v) > max) *err = bad(path, w, "too long");
    else return json_string_value(v);
    return NULL;
}

static JET_ERR get_hex(json_t *o, const char *key, const char *path, const char *where, uint64_t *out)
{
    char w[96];
    JET_ERR err = JET_errSuccess;
    const char *s = get_str(o, key, SIZE_MAX, path, where, &err);
    if (!s) return err;
    size_t n = 0;
    while (isxdigit((unsigned char)s[n])) n++;
    snprintf(w, sizeof w, "%s%s", where, key);
    if (n != 16 || s[n]) return bad(path, w, "not 16 hex digits");
    *out = strtoull(s, NULL, 16);
    return JET_errSuccess;
}

static JET_ERR get_name(json_t *o, const char *path, const char *where, const char **out)
{
    char w[96];
    JET_ERR err = JET_errSuccess;
    const char *s = get_str(o, "name", MANIFEST_NAME_MAX, path, where, &err);
    if (!s) return err;
    snprintf(w, sizeof w, "%sname", where);
    if (!plain_name(s) || strlen(s) != json_string_length(json_object_get(o, "name")))
        return bad(path, w, "not a file name inside the set");
    *out = s;
    return JET_errSuccess;
}

static JET_ERR get_array(json_t *root, const char *key, const char *path, json_t **out)
{
    json_t *v = json_object_get(root, key);
    if (!v) return bad(path, key, "missing");
    if (!json_is_array(v)) return bad(path, key, "not an array");
    if (json_array_size(v) > UINT32_MAX) return bad(path, key, "too many entries");
    *out = v;
    return JET_errSuccess;
}

static JET_ERR read_db(json_t *e, const char *path, const char *w, struct manifest *m)
{
    struct manifest_db *d = &m->dbs[m->ndbs];
    JET_ERR err;
    if ((err = get_name(e, path, w, &d->name)) < 0 || (err = get_u32(e, "dbidx", path, w, &d->dbidx)) < 0 ||
        (err = get_hex(e, "signature", path, w, &d->signature)) < 0)
        return err;
    if (json_object_get(e, "path") && !(d->path = get_str(e, "path", SIZE_MAX, path, w, &err))) return err;
    m->ndbs++;
    return JET_errSuccess;
}

static JET_ERR read_file(json_t *e, const char *path, const char *w, struct manifest *m)
{
    struct manifest_file *f = &m->files[m->nfiles];
    JET_ERR err;
    if ((err = get_name(e, path, w, &f->name)) < 0 || (err = get_uint(e, "size", JSON_UINT_MAX, path, w, &f->size)) < 0)
        return err;
    f->has_xxh3 = json_object_get(e, "xxh3") != NULL;
    if (f->has_xxh3 && (err = get_hex(e, "xxh3", path, w, &f->xxh3)) < 0) return err;
    m->nfiles++;
    return JET_errSuccess;
}

/* Each element of array member key: an object of allowed members only,
 * read by one into m (whose array for it was allocated). */
static JET_ERR read_entries(json_t *arr, const char *key, const char *const allowed[4], const char *path,
                            JET_ERR (*one)(json_t *e, const char *path, const char *w, struct manifest *m),
                            struct manifest *m)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char w[48];
        json_t *e = json_array_get(arr, i);
        JET_ERR err;
        snprintf(w, sizeof w, "%s[%zu].", key, i);
        if (!json_is_object(e)) return bad(path, w, "not an object");
        if ((err = only(e, allowed, 4, path, w)) < 0 || (err = one(e, path, w, m)) < 0) return err;
    }
    return JET_errSuccess;
}

/* The members of a checked root into m. */
static JET_ERR read_members(json_t *root, const char *path, struct manifest *m)
{
    static const char *const allowed[] = {"format",   "backup_id",   "predecessor_id", "type",
                                          "begin_time", "begin_us",  "log_signature",  "log_base",
                                          "generations", "databases", "files",         "manifest_checksum"};
    static const char *const gallowed[] = {"low", "high"};
    JET_ERR err = only(root, allowed, sizeof allowed / sizeof allowed[0], path, "the manifest");
    const char *s;
    json_t *g, *dbs = NULL, *files = NULL;
    if (err < 0) return err;
    if ((err = get_hex(root, "backup_id", path, "", &m->backup_id)) < 0 ||
        (err = get_hex(root, "predecessor_id", path, "", &m->predecessor_id)) < 0)
        return err;
    if (!(s = get_str(root, "type", sizeof m->type - 1, path, "", &err))) return err;
    bool known = false;
    for (size_t i = 0; i < NTYPES; i++) known = known || !strcmp(s, TYPES[i]);
    if (!known) return bad(path, "type", "not full, incremental, differential or copy");
    snprintf(m->type, sizeof m->type, "%s", s);
    if (!(s = get_str(root, "begin_time", sizeof m->begin_time - 1, path, "", &err))) return err;
    snprintf(m->begin_time, sizeof m->begin_time, "%s", s);
    if ((err = get_uint(root, "begin_us", JSON_UINT_MAX, path, "", &m->begin_us)) < 0 ||
        (err = get_hex(root, "log_signature", path, "", &m->log_signature)) < 0)
        return err;
    if (!(s = get_str(root, "log_base", sizeof m->log_base - 1, path, "", &err))) return err;
    snprintf(m->log_base, sizeof m->log_base, "%s", s);
    if (!(g = json_object_get(root, "generations"))) return bad(path, "generations", "missing");
    if (!json_is_object(g)) return bad(path, "generations", "not an object");
    if ((err = only(g, gallowed, 2, path, "generations")) < 0 ||
        (err = get_u32(g, "low", path, "generations.", &m->gen_low)) < 0 ||
        (err = get_u32(g, "high", path, "generations.", &m->gen_high)) < 0)
        return err;
    if ((err = get_array(root, "databases", path, &dbs)) < 0 || (err = get_array(root, "files", path, &files)) < 0)
        return err;
    static const char *const db_members[4] = {"name", "dbidx", "signature", "path"},
                             *const file_members[4] = {"name", "size", "xxh3", "xxh3"};
    if ((json_array_size(dbs) && !(m->dbs = calloc(json_array_size(dbs), sizeof *m->dbs))) ||
        (json_array_size(files) && !(m->files = calloc(json_array_size(files), sizeof *m->files))))
        return JET_errOutOfMemory;
    if ((err = read_entries(dbs, "databases", db_members, path, read_db, m)) < 0) return err;
    return read_entries(files, "files", file_members, path, read_file, m);
}

static JET_ERR load(const char *text, size_t len, const char *path, json_t **proot)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return jet_report(JET_errInvalidBackup, "%s: not valid JSON (line %d, column %d): %s", path, je.line, je.column,
                          je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return jet_report(JET_errInvalidBackup, "%s: not a JSON object", path);
    }
    *proot = root;
    return JET_errSuccess;
}

JET_ERR manifest_parse(const char *text, size_t len, const char *path, struct manifest *m)
{
    json_t *root = NULL, *fmt;
    uint64_t want = 0, got = 0, format = 0;
    if (!m) return JET_errInvalidParameter;
    memset(m, 0, sizeof *m);
    if (!text || !path) return JET_errInvalidParameter;
    JET_ERR err = load(text, len, path, &root);
    if (err < 0) return err;
    /* The format first: another format's checksum is not this one's. */
    fmt = json_object_get(root, "format");
    if (fmt && json_is_integer(fmt) && json_integer_value(fmt) != MANIFEST_FORMAT) {
        err = jet_report(JET_errInvalidBackup, "%s: format %" JSON_INTEGER_FORMAT "; this build reads format %d", path,
                         json_integer_value(fmt), MANIFEST_FORMAT);
        goto out;
    }
    if (!json_object_get(root, "manifest_checksum")) {
        err = jet_report(JET_errInvalidBackup, "%s: the manifest has no checksum (manifest_checksum)", path);
        goto out;
    }
    if ((err = get_hex(root, "manifest_checksum", path, "", &want)) < 0) goto out;
    if ((err = checksum_of(root, &got)) < 0) goto out;
    if (want != got) {
        err = jet_report(JET_errInvalidBackup, "%s: manifest checksum %016llx does not match its contents (%016llx): edited?",
                         path, (unsigned long long)want, (unsigned long long)got);
        goto out;
    }
    if ((err = get_uint(root, "format", MANIFEST_FORMAT, path, "", &format)) < 0) goto out;
    m->format = (uint32_t)format;
    if ((err = read_members(root, path, m)) < 0) goto out;
    m->json = root; /* the names point into it */
    root = NULL;
out:
    json_decref(root);
    if (err < 0) manifest_free(m);
    return err;
}

JET_ERR manifest_text_checksum(const char *text, size_t len, uint64_t *psum)
{
    json_t *root = NULL;
    if (!text || !psum) return JET_errInvalidParameter;
    JET_ERR err = load(text, len, "manifest", &root);
    if (err >= 0) err = checksum_of(root, psum);
    json_decref(root);
    return err;
}

void manifest_session_name(char *buf, size_t n, uint64_t begin_us, uint64_t backup_id)
{
    time_t sec = (time_t)(begin_us / 1000000u);
    struct tm tm;
    char t[32] = "00000000T000000";
    if (gmtime_r(&sec, &tm)) strftime(t, sizeof t, "%Y%m%dT%H%M%S", &tm);
    snprintf(buf, n, "backup.%s.%06uZ-%016llx.manifest", t, (unsigned)(begin_us % 1000000u),
             (unsigned long long)backup_id);
}

bool manifest_is_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= strlen("backup.manifest") && !strncmp(name, "backup.", 7) && !strcmp(name + n - 9, ".manifest");
}

JET_ERR JetBackupManifestName(const char *szManifest, char *szName, unsigned long cbMax)
{
    struct manifest m;
    if (!szManifest || !szName || cbMax < MANIFEST_SESSION_NAME_MAX + 1) return JET_errInvalidParameter;
    JET_ERR err = manifest_parse(szManifest, strlen(szManifest), "backup.manifest", &m);
    if (err < 0) return err;
    manifest_session_name(szName, cbMax, m.begin_us, m.backup_id);
    manifest_free(&m);
    return JET_errSuccess;
}

const struct manifest_file *manifest_find(const struct manifest *m, const char *name)
{
    for (uint32_t i = 0; m && name && i < m->nfiles; i++)
        if (!strcmp(m->files[i].name, name)) return &m->files[i];
    return NULL;
}

void manifest_free(struct manifest *m)
{
    if (!m) return;
    free(m->dbs);
    free(m->files);
    json_decref(m->json);
    memset(m, 0, sizeof *m);
}

JET_ERR manifest_read(const char *path, struct manifest *m)
{
    int fd;
    uint64_t size = 0;
    JET_ERR err = os_open(path, OS_OPEN_READ, &fd);
    if (err < 0) {
        char eb[128];
        return jet_report(err, "%s: cannot read the manifest: %s", path, os_reason(err, eb, sizeof eb));
    }
    if ((err = os_fsize(fd, &size)) < 0 || size > (16u << 20)) {
        os_close(fd);
        return jet_report(JET_errInvalidBackup, "%s: manifest unreadable or too large", path);
    }
    char *text = malloc(size + 1);
    if (!text) {
        os_close(fd);
        return JET_errOutOfMemory;
    }
    err = os_pread_full(fd, text, size, 0);
    os_close(fd);
    text[size] = '\0';
    if (err >= 0) err = manifest_parse(text, (size_t)size, path, m);
    free(text);
    return err;
}

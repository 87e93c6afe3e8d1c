/*
 * jetutil -- the offline tool, in the spirit of ESE's esentutl.
 *
 *   jetutil header FILE [--json]
 *   jetutil logs DIR|FILE [--base XXX]
 *   jetutil check DIR|DBFILE [--json]
 *   jetutil load DIR --keys N --value-size BYTES [--table NAME] [--seed S] [--batch K] [--order O]
 *   jetutil export DIR
 *   jetutil restore --to DIR SET... [--stop-gen G] [--stop-time T]
 *   jetutil verify SET...
 *   jetutil recover DIR
 *
 * Exit codes: 0 ok, 1 failure found, 2 usage error.  Thin over libjet's
 * public API (jet.h) and its inspection API (jet_inspect.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "instance_dir.h"
#include "stop_point.h"
#include "jet.h"
#include "jet_inspect.h"

#define EXIT_FOUND 1
#define EXIT_USAGE 2

static int fail(const char *what, JET_ERR err)
{
    const char *d = JetGetLastErrorDetail();
    fprintf(stderr, "jetutil: %s: %s (%ld)%s%s\n", what, JetErrorString(err), err, *d ? ": " : "", d);
    return EXIT_FOUND;
}

/* Why the arguments were refused, said on its own line before the usage
 * (set by bad_arg and parse_sets; "" when nothing more precise is known). */
static char usage_why[512];

static int usage(const char *cmd, const char *text, int code)
{
    FILE *f = code ? stderr : stdout;
    if (code) fprintf(f, "jetutil %s: %s\n", cmd, usage_why[0] ? usage_why : "missing arguments");
    fprintf(f, "usage: jetutil %s %s\n", cmd, text);
    return code;
}

/* Whether the usage text names option opt (a whole word). */
static bool usage_names(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt))
        if ((p == text || p[-1] == ' ' || p[-1] == '[' || p[-1] == '\n') && strchr(" ]\n=", p[n] ? p[n] : ' '))
            return true;
    return false;
}

/* The argument at argv[i] was not expected: names it and why. */
static int bad_arg(const char *cmd, const char *text, int argc, char **argv, int i)
{
    const char *a = argv[i];
    if (a[0] == '-' && usage_names(text, a) && i + 1 >= argc) snprintf(usage_why, sizeof usage_why, "%s needs a value", a);
    else if (a[0] == '-' && !usage_names(text, a)) snprintf(usage_why, sizeof usage_why, "unknown option %s", a);
    else if (a[0] == '-') snprintf(usage_why, sizeof usage_why, "option %s given twice", a);
    else snprintf(usage_why, sizeof usage_why, "unexpected argument '%s'", a);
    return usage(cmd, text, EXIT_USAGE);
}

/* A value that does not parse: names the option, the value and the form. */
static int bad_value(const char *cmd, const char *text, const char *opt, const char *val, const char *want)
{
    snprintf(usage_why, sizeof usage_why, "%s '%s': not %s", opt, val, want);
    return usage(cmd, text, EXIT_USAGE);
}

#define GEN_FORM "a generation number (decimal, or 0x... hex)"
#define TIME_FORM "a time (seconds since the epoch, as date +%s prints, or UTC as 2026-12-08T01:57:20Z)"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

static void fmt_time(char *buf, size_t cb, uint64_t us)
{
    if (!us) {
        snprintf(buf, cb, "-");
        return;
    }
    time_t t = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cb, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- header ---- */

static json_t *jhex(uint64_t v)
{
    char h[17];
    snprintf(h, sizeof h, "%016" PRIx64, v);
    return json_string(h);
}

/* A log position as jetutil logs prints it: generation:offset. */
static json_t *jlsn(uint64_t lsn)
{
    char p[24];
    snprintf(p, sizeof p, "%u:%u", (unsigned)(lsn >> 32), (unsigned)lsn);
    return json_string(p);
}

/* Prints j (taken; NULL when building it failed) as one line of JSON. */
static int print_json(const char *file, json_t *j)
{
    int rc = 0;
    if (!j || json_dumpf(j, stdout, JSON_COMPACT) != 0 || putchar('\n') == EOF) {
        fprintf(stderr, "jetutil: %s: cannot write the header as JSON (out of memory, or a path that is not UTF-8)\n",
                file);
        rc = EXIT_FOUND;
    }
    json_decref(j);
    return rc;
}

static const char *HEADER_USAGE = "FILE [--json]\n  prints the header of a database, log generation or checkpoint file";

static int cmd_header(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("header", HEADER_USAGE, 0);
    const char *file = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!file && argv[i][0] != '-') file = argv[i];
        else return bad_arg("header", HEADER_USAGE, argc, argv, i);
    }
    if (!file) return snprintf(usage_why, sizeof usage_why, "no FILE given"), usage("header", HEADER_USAGE, EXIT_USAGE);
    int kind = JetInspectFileKind(file);
    char t1[32], t2[32], t3[32];
    JET_ERR err;
    if (kind == 1) {
        JET_INSPECT_DBHEADER h;
        if ((err = JetInspectDatabaseHeader(file, &h)) < 0) return fail(file, err);
        static const char *bk[4] = {"full", "incremental", "differential", "copy"};
        fmt_time(t1, sizeof t1, h.create_us);
        fmt_time(t2, sizeof t2, h.consistent_us);
        if (json) {
            json_t *bks = json_object();
            for (int i = 0; bks && i < 4; i++) {
                char tb[sizeof t1]; /* t1 stays the creation time */
                fmt_time(tb, sizeof tb, h.backup[i].time_us);
                if (json_object_set_new(bks, bk[i],
                                        json_pack("{s:I,s:I,s:s,s:o}", "gen_low", (json_int_t)h.backup[i].gen_low,
                                                  "gen_high", (json_int_t)h.backup[i].gen_high, "time", tb,
                                                  "backup_id", jhex(h.backup[i].backup_id))) != 0) {
                    json_decref(bks);
                    bks = NULL;
                }
            }
            fmt_time(t3, sizeof t3, h.discard_us);
            return print_json(file, json_pack("{s:s,s:s,s:I,s:s,s:o,s:o,s:o,s:o,s:s,s:s,s:[bb],s:I,s:I,s:I,s:o,"
                                              "s:{s:s,s:o,s:I}}",
                                              "file", file, "type", "database", "page_size", (json_int_t)h.page_size,
                                              "state", h.state_name, "db_signature", jhex(h.db_signature),
                                              "log_signature", jhex(h.log_signature), "lsn_consistent",
                                              jlsn(h.lsn_consistent), "lsn_attach", jlsn(h.lsn_attach), "created", t1,
                                              "consistent", t2, "header_copies_valid", h.copy_valid[0] != 0,
                                              h.copy_valid[1] != 0, "pages", (json_int_t)h.npages, "file_size",
                                              (json_int_t)h.file_size, "format_version", (json_int_t)h.format_version,
                                              "backups", bks, "discard", "time", h.discard_us ? t3 : "", "cut",
                                              jlsn(h.discard_cut), "commits", (json_int_t)h.discard_commits));
        } else {
            printf("database %s\n  format version   %u\n  page size        %u\n  state            %s\n  db signature     %016" PRIx64
                   "\n  log signature    %016" PRIx64 "\n  consistent at    %u:%u (%s)\n  attached at      %u:%u\n"
                   "  created          %s\n  header copies    %s, %s\n  pages in use     %u\n",
                   file, h.format_version, h.page_size, h.state_name, h.db_signature, h.log_signature,
                   (unsigned)(h.lsn_consistent >> 32), (unsigned)h.lsn_consistent, t2,
                   (unsigned)(h.lsn_attach >> 32), (unsigned)h.lsn_attach, t1, h.copy_valid[0] ? "valid" : "DAMAGED",
                   h.copy_valid[1] ? "valid" : "DAMAGED", h.npages);
            for (int i = 0; i < 4; i++) {
                fmt_time(t1, sizeof t1, h.backup[i].time_us);
                printf("  last %-12s %s\n", bk[i],
                       h.backup[i].backup_id ? t1 : "none");
            }
            if (h.discard_us) {
                fmt_time(t1, sizeof t1, h.discard_us);
                printf("  log discarded    at %s after damage: the log was cut at %u:%u, %" PRIu64
                       " commit(s) after it dropped\n",
                       t1, (unsigned)(h.discard_cut >> 32), (unsigned)h.discard_cut, h.discard_commits);
            }
        }
        return 0;
    }
    if (kind == 2) {
        JET_INSPECT_LOGHEADER h;
        if ((err = JetInspectLogHeader(file, &h)) < 0) return fail(file, err);
        fmt_time(t1, sizeof t1, h.create_us);
        fmt_time(t2, sizeof t2, h.prev_create_us);
        if (json)
            return print_json(file, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:s,s:s,s:o,s:s}", "file", file, "type", "log",
                                              "format_version", (json_int_t)h.format_version, "generation",
                                              (json_int_t)h.generation, "file_size", (json_int_t)h.file_size,
                                              "page_size", (json_int_t)h.page_size, "signature", jhex(h.signature),
                                              "created", t1, "previous_created", t2, "previous_hash", jhex(h.prev_hash),
                                              "base", h.base));
        else
            printf("log generation %s\n  format version   %u\n  generation       %u\n  file size        %u\n  signature        %016" PRIx64
                   "\n  created          %s\n  previous created %s\n  previous hash    %016" PRIx64 "\n",
                   file, h.format_version, h.generation, h.file_size, h.signature, t1, t2, h.prev_hash);
        return 0;
    }
    if (kind == 3) {
        JET_INSPECT_CHECKPOINT c;
        if ((err = JetInspectCheckpoint(file, &c)) < 0) return fail(file, err);
        if (json) {
            json_t *dbs = json_array();
            for (uint32_t i = 0; dbs && i < c.ndbs; i++)
                if (json_array_append_new(dbs, json_string(c.db_paths[i])) != 0) {
                    json_decref(dbs);
                    dbs = NULL;
                }
            return print_json(file, json_pack("{s:s,s:s,s:o,s:o,s:o}", "file", file, "type", "checkpoint", "log_signature",
                                              jhex(c.log_signature), "position", jlsn(c.lsn), "databases", dbs));
        } else {
            printf("checkpoint %s\n  log signature    %016" PRIx64 "\n  position         %u:%u\n", file, c.log_signature,
                   (unsigned)(c.lsn >> 32), (unsigned)c.lsn);
            for (uint32_t i = 0; i < c.ndbs; i++) printf("  attached         %s\n", c.db_paths[i]);
        }
        return 0;
    }
    fprintf(stderr, "jetutil: %s: not a jetfs database, log or checkpoint file\n", file);
    return EXIT_FOUND;
}

/* ---- logs ---- */

static const char *LOGS_USAGE = "DIR|FILE [--base XXX]\n  dumps the records of every log generation in DIR (or of one FILE)";

static int print_record(void *arg, const JET_INSPECT_LOGRECORD *r)
{
    long *count = arg;
    char t[32];
    (*count)++;
    printf("%08X:%08X %-7s %6u", (unsigned)(r->lsn >> 32), (unsigned)r->lsn, r->type_name, r->length);
    if (!strcmp(r->type_name, "delta")) {
        printf("  db %u page %u", r->dbidx, r->pgno);
        if (r->before) printf(" from %u:%u", (unsigned)(r->before >> 32), (unsigned)r->before);
        else printf(" from zeroes");
        if (r->malformed) printf(" MALFORMED");
        else printf(", %u range%s, %u bytes", r->nranges, r->nranges == 1 ? "" : "s", r->delta_bytes);
    } else if (!strcmp(r->type_name, "commit")) {
        fmt_time(t, sizeof t, r->commit_us);
        printf("  txn %" PRIu64 " at %s", r->txn_id, t);
    } else if (!strcmp(r->type_name, "attach") || !strcmp(r->type_name, "create")) printf("  db %u %s", r->dbidx, r->path);
    else if (!strcmp(r->type_name, "detach")) printf("  db %u", r->dbidx);
    else if (!strcmp(r->type_name, "backup")) printf("  set of backup %016" PRIx64 " ends here", r->txn_id);
    else if (!strcmp(r->type_name, "discard")) {
        fmt_time(t, sizeof t, r->commit_us);
        printf("  log cut at %u:%u at %s, %" PRIu64 " commit(s) after it discarded", (unsigned)(r->before >> 32),
               (unsigned)r->before, t, r->txn_id);
    }
    putchar('\n');
    return 0;
}

static int cmd_logs(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("logs", LOGS_USAGE, 0);
    const char *target = NULL, *base = JETFS_BASE_NAME;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--base") && i + 1 < argc) base = argv[++i];
        else if (!target && argv[i][0] != '-') target = argv[i];
        else return bad_arg("logs", LOGS_USAGE, argc, argv, i);
    }
    if (!target || strlen(base) != 3) {
        snprintf(usage_why, sizeof usage_why, "%s", !target ? "no DIR or FILE given" : "--base is 3 characters");
        return usage("logs", LOGS_USAGE, EXIT_USAGE);
    }
    char dir[4096];
    uint32_t first = 0, last = 0;
    if (is_dir(target)) snprintf(dir, sizeof dir, "%s", target);
    else {
        JET_INSPECT_LOGHEADER h;
        JET_ERR err = JetInspectLogHeader(target, &h);
        if (err < 0) return fail(target, err);
        const char *slash = strrchr(target, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - target), target);
        else snprintf(dir, sizeof dir, ".");
        first = last = h.generation;
        base = h.base;
    }
    long count = 0;
    int torn = 0;
    JET_ERR err = JetInspectLogRecords(dir, base, first, last, print_record, &count, &torn);
    if (err < 0) return fail(target, err);
    printf("%ld records%s\n", count, torn ? "; the log ends in a torn write (dropped by recovery)" : "");
    return 0;
}

/* ---- checklog ---- */

static const char *CHECKLOG_USAGE =
    "DIR [--base edb]\n  checks every log generation in DIR on its own and the chain between them (as\n"
    "  eseutil /ml) and prints each one's state; exit 1 if any is damaged or missing";

struct gen_count {
    long records, commits;
};

static int count_record(void *arg, const JET_INSPECT_LOGRECORD *r)
{
    struct gen_count *c = arg;
    c->records++;
    if (!strcmp(r->type_name, "commit")) c->commits++;
    return 0;
}

static int gen_cmp(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

static int cmd_checklog(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("checklog", CHECKLOG_USAGE, 0);
    const char *dir = NULL, *base = JETFS_BASE_NAME;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--base") && i + 1 < argc) base = argv[++i];
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else return bad_arg("checklog", CHECKLOG_USAGE, argc, argv, i);
    }
    if (!dir || strlen(base) != 3) {
        snprintf(usage_why, sizeof usage_why, "%s", !dir ? "no DIR given" : "--base is 3 characters");
        return usage("checklog", CHECKLOG_USAGE, EXIT_USAGE);
    }
    if (!is_dir(dir)) {
        fprintf(stderr, "jetutil: checklog: %s is not a directory\n", dir);
        return EXIT_FOUND;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "jetutil: checklog: %s: %s\n", dir, strerror(errno));
        return EXIT_FOUND;
    }
    unsigned long *gens = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long g;
        char tail[8];
        if (strncmp(e->d_name, base, 3) || strlen(e->d_name) != 15 || sscanf(e->d_name + 3, "%8lx%4s", &g, tail) != 2 ||
            strcmp(tail, ".log") || !g)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            unsigned long *ng = realloc(gens, cap * sizeof *ng);
            if (!ng) {
                closedir(d);
                free(gens);
                return fail("checklog", JET_errOutOfMemory);
            }
            gens = ng;
        }
        gens[n++] = g;
    }
    closedir(d);
    if (!n) {
        printf("%s: no log generation of base '%s'\n", dir, base);
        free(gens);
        return 0;
    }
    qsort(gens, n, sizeof *gens, gen_cmp);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s%08lX.log", dir, base, gens[i]);
        if (i && gens[i] != gens[i - 1] + 1) {
            printf("%s%08lX.log .. %s%08lX.log  missing\n", base, gens[i - 1] + 1, base, gens[i] - 1);
            bad = 1;
        }
        JET_INSPECT_LOGHEADER h;
        JET_ERR err = JetInspectLogHeader(path, &h);
        if (err < 0) {
            printf("%s  damaged header: %s\n", path, JetGetLastErrorDetail());
            bad = 1;
            continue;
        }
        struct gen_count c = {0, 0};
        int torn = 0;
        err = JetInspectLogRecords(dir, base, (uint32_t)gens[i], (uint32_t)gens[i], count_record, &c, &torn);
        char when[64];
        fmt_time(when, sizeof when, h.create_us);
        printf("%s%08lX.log  created %s  %ld records, %ld commits  ", base, gens[i], when, c.records, c.commits);
        if (err < 0) {
            printf("DAMAGED: %s\n", JetGetLastErrorDetail());
            bad = 1;
        } else if (!torn) {
            printf("ok\n");
        } else if (i + 1 == n) {
            printf("ok, ends in a torn write (the tail of the last flush, dropped by recovery)\n");
        } else {
            /* Read with the next one: a tail that an earlier recovery ended
             * the log at is vouched for by the next header's hash. */
            err = JetInspectLogRecords(dir, base, (uint32_t)gens[i], (uint32_t)gens[i] + 1, count_record, &c, &torn);
            if (err < 0) {
                printf("DAMAGED: %s\n", JetGetLastErrorDetail());
                bad = 1;
            } else {
                printf("ok, ended at a torn write by an earlier recovery (vouched for by the next generation)\n");
            }
        }
    }
    /* The chain as a whole: signatures, numbering, each header's hash of
     * its predecessor. */
    int torn = 0;
    struct gen_count all = {0, 0};
    JET_ERR err = JetInspectLogRecords(dir, base, (uint32_t)gens[0], 0, count_record, &all, &torn);
    if (err < 0) {
        printf("chain: BROKEN OR DAMAGED: %s\n", JetGetLastErrorDetail());
        bad = 1;
    } else {
        printf("chain: ok, generations %lu..%lu, %ld records, %ld commits\n", gens[0], gens[n - 1], all.records,
               all.commits);
    }
    free(gens);
    return bad ? EXIT_FOUND : 0;
}

/* ---- check ---- */

static const char *CHECK_USAGE =
    "DIR|DBFILE [--json]\n  verifies every page checksum and B+tree invariant; exit 1 if anything is wrong.\n"
    "  Prints each table's entries, pages, depth and fill (the part of its pages'\n"
    "  room its cells take), then the whole file's counts";

static void print_problem(void *arg, const char *msg)
{
    (void)arg;
    printf("problem: %s\n", msg);
}

/* check --json collects the problems and tables here (arg of the callbacks). */
struct check_json {
    json_t *problems, *tables;
};

static void check_problem(void *arg, const char *msg)
{
    struct check_json *cj = arg;
    if (!cj) print_problem(NULL, msg);
    else json_array_append_new(cj->problems, json_string(msg));
}

static void check_table(void *arg, const JET_INSPECT_TABLE *t)
{
    struct check_json *cj = arg;
    if (!cj) {
        printf("table %s: %" PRIu64 " entries, %" PRIu64 " leaf pages, %" PRIu64 " branch pages, %" PRIu64
               " overflow pages, depth %u, fill %u%% (branches %u%%)\n",
               t->name, t->entries, t->leaf_pages, t->branch_pages, t->overflow_pages, t->depth, t->leaf_fill,
               t->branch_fill);
        return;
    }
    json_array_append_new(cj->tables,
                          json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name", t->name, "root", (json_int_t)t->root,
                                    "depth", (json_int_t)t->depth, "entries", (json_int_t)t->entries, "leaf_pages",
                                    (json_int_t)t->leaf_pages, "branch_pages", (json_int_t)t->branch_pages,
                                    "overflow_pages", (json_int_t)t->overflow_pages, "fill", (json_int_t)t->leaf_fill,
                                    "branch_fill", (json_int_t)t->branch_fill));
}

static int cmd_check(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("check", CHECK_USAGE, 0);
    const char *target = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && !json) json = 1;
        else if (!strcmp(argv[i], "--json"))
            return snprintf(usage_why, sizeof usage_why, "option --json given twice"),
                   usage("check", CHECK_USAGE, EXIT_USAGE);
        else if (!target && argv[i][0] != '-') target = argv[i];
        else return bad_arg("check", CHECK_USAGE, argc, argv, i);
    }
    if (!target) return snprintf(usage_why, sizeof usage_why, "no DIR given"), usage("check", CHECK_USAGE, EXIT_USAGE);
    char path[4096];
    if (is_dir(target)) snprintf(path, sizeof path, "%s/%s", target, JETFS_DB_NAME);
    else snprintf(path, sizeof path, "%s", target);
    JET_INSPECT_CHECK st;
    struct check_json cj = {json_array(), json_array()}, *pcj = json ? &cj : NULL;
    JET_ERR err = JetInspectCheckDatabase2(path, check_problem, pcj, check_table, &st);
    if (err < 0 && err != JET_errDatabaseCorrupted) {
        json_decref(cj.problems);
        json_decref(cj.tables);
        return fail(path, err);
    }
    if (json) {
        int rc = print_json(path, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:b}", "file", path, "pages",
                                            (json_int_t)st.pages, "free_pages", (json_int_t)st.free_pages, "entries",
                                            (json_int_t)st.entries, "leaf_pages", (json_int_t)st.leaf_pages,
                                            "branch_pages", (json_int_t)st.branch_pages, "overflow_pages",
                                            (json_int_t)st.overflow_pages, "tables", cj.tables, "problems",
                                            cj.problems, "ok", !st.problems));
        return rc ? rc : st.problems ? EXIT_FOUND : 0;
    }
    json_decref(cj.problems);
    json_decref(cj.tables);
    printf("%s: %u pages (%u free), %u tables, %" PRIu64 " entries, %" PRIu64 " leaf / %" PRIu64 " branch / %" PRIu64
           " overflow pages: %s\n",
           path, st.pages, st.free_pages, st.tables, st.entries, st.leaf_pages, st.branch_pages, st.overflow_pages,
           st.problems ? "DAMAGED" : "ok");
    if (st.problems) {
        printf("%u problem(s) found\n", st.problems);
        return EXIT_FOUND;
    }
    return 0;
}

/* ---- instance helpers for load/export ---- */

struct inst {
    JET_INSTANCE inst;
    JET_SESID s;
    JET_DBID db;
    char path[4096];
    bool reported; /* inst_open has said what is wrong with the directory */
};

static void progress(const char *what, uint64_t done, uint64_t total, double t0);
static double now(void);

/* JET_PFNSTATUS for restore, verify and recover: a bar on a terminal. */
static JET_ERR show_replay(JET_SESID sesid, unsigned long snp, unsigned long snt, void *pv)
{
    static double t0;
    const JET_SNPROG *p = pv;
    (void)sesid;
    if (snp != JET_snpRestore || !p || p->cbStruct != sizeof *p) return JET_errSuccess;
    if (snt == JET_sntBegin) t0 = now();
    /* The last generation's progress and the completion are the same bar. */
    if (snt == JET_sntProgress && p->cunitDone >= p->cunitTotal) return JET_errSuccess;
    progress("replaying log generations", p->cunitDone, p->cunitTotal, t0);
    return JET_errSuccess;
}

/* mkdir -p dir (0700 for what it creates); 0 or -1 with errno. */
static int make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return errno = ENAMETOOLONG, -1;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c) continue;
        char was = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
        if (!is_dir(p)) return errno = ENOTDIR, -1;
        if (!(*c = was)) return 0;
    }
}

/*
 * Opens (recovering) the instance in dir.  What is wrong with dir itself
 * is said here, before JetInit, which would otherwise create an instance
 * in any directory it is pointed at: only load creates one.
 */
static JET_ERR inst_open(const char *dir, int create, struct inst *in)
{
    JET_ERR err;
    memset(in, 0, sizeof *in);
    snprintf(in->path, sizeof in->path, "%s/%s", dir, JETFS_DB_NAME);
    const char *why = NULL;
    if (create && make_dirs(dir) != 0) why = strerror(errno);
    else if (!create && !is_dir(dir)) why = access(dir, F_OK) == 0 ? "not a directory" : "no such directory";
    else if (!create && access(in->path, F_OK) != 0)
        why = "no " JETFS_DB_NAME " in it: not an instance directory (nothing was changed)";
    if (why) {
        fprintf(stderr, "jetutil: %s: %s\n", dir, why);
        in->reported = true;
        return JET_errInvalidPath;
    }
    if ((err = JetCreateInstance(&in->inst, "jetutil")) < 0) return err;
    if ((err = JetSetSystemParameter(&in->inst, 0, JET_paramSystemPath, 0, dir)) < 0) return err;
    if ((err = JetSetSystemParameter(&in->inst, 0, JET_paramLogFilePath, 0, dir)) < 0) return err;
    /* Recovery shows its progress on a terminal (jetutil recover). */
    JET_RSTINFO ri = {.cbStruct = sizeof ri, .pfnStatus = show_replay};
    if ((err = JetInit3(&in->inst, &ri, 0)) < 0) return err;
    if ((err = JetBeginSession(in->inst, &in->s, NULL, NULL)) < 0) return err;
    struct stat st;
    if (stat(in->path, &st) != 0) {
        if (!create) return JET_errFileNotFound;
        return JetCreateDatabase(in->s, in->path, NULL, &in->db, 0);
    }
    if ((err = JetAttachDatabase(in->s, in->path, 0)) < 0) return err;
    return JetOpenDatabase(in->s, in->path, NULL, &in->db, 0);
}

static JET_ERR inst_close(struct inst *in)
{
    if (!in->inst) return JET_errSuccess;
    return JetTerm(in->inst);
}

/* The exit code of a failed inst_open, its reason said once. */
static int inst_open_failed(struct inst *in, const char *dir, JET_ERR err)
{
    int rc = in->reported ? EXIT_FOUND : fail(dir, err);
    inst_close(in);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(const char *what, uint64_t done, uint64_t total, double t0)
{
    if (!isatty(2) || !total) return;
    int width = 40, fill = (int)(width * done / total);
    double dt = now() - t0;
    fprintf(stderr, "\r%s [%.*s%*s] %3d%% %.0fs", what, fill, "########################################", width - fill,
            "", (int)(100 * done / total), dt);
    if (done == total) fputc('\n', stderr);
}

/* ---- load ---- */

static const char *LOAD_USAGE =
    "DIR --keys N --value-size BYTES [--table NAME] [--seed S] [--batch K] [--order O]\n"
    "  bulk-loads N synthetic keys (key:0000000000 ...) with pseudo-random values,\n"
    "  K keys per transaction (default 1000), creating the instance in DIR if needed;\n"
    "  O is the order of the keys: ascending (default), descending, or random (a\n"
    "  permutation drawn from S)";

static int cmd_load(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("load", LOAD_USAGE, 0);
    const char *dir = NULL, *table = "data";
    long long keys = -1, vsize = -1, batch = 1000;
    unsigned long long seed = 1;
    const char *order = "ascending";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--keys") && v) keys = strtoll(v, &end, 10), i++;
        else if (!strcmp(a, "--value-size") && v) vsize = strtoll(v, &end, 10), i++;
        else if (!strcmp(a, "--batch") && v) batch = strtoll(v, &end, 10), i++;
        else if (!strcmp(a, "--seed") && v) seed = strtoull(v, &end, 0), i++;
        else if (!strcmp(a, "--table") && v) table = v, i++;
        else if (!strcmp(a, "--order") && v) order = v, i++;
        else if (!dir && a[0] != '-') dir = a;
        else return bad_arg("load", LOAD_USAGE, argc, argv, i);
        if (end && *end) return bad_value("load", LOAD_USAGE, a, v, "a whole number");
    }
    bool descending = !strcmp(order, "descending"), random_order = !strcmp(order, "random");
    if (!dir || keys < 0 || vsize < 0 || vsize > (long long)JET_cbValueMost || batch < 1 ||
        (!descending && !random_order && strcmp(order, "ascending"))) {
        snprintf(usage_why, sizeof usage_why, "%s",
                 !dir         ? "no DIR given"
                 : keys < 0   ? "--keys N is required"
                 : vsize < 0  ? "--value-size BYTES is required"
                 : batch < 1  ? "--batch must be at least 1"
                 : vsize > (long long)JET_cbValueMost ? "--value-size is larger than JET_cbValueMost (64 MiB)"
                              : "--order is ascending, descending or random");
        return usage("load", LOAD_USAGE, EXIT_USAGE);
    }
    /* A random order is a Fisher-Yates shuffle of the key numbers. */
    long long *perm = NULL;
    if (random_order) {
        if (!(perm = malloc((size_t)(keys ? keys : 1) * sizeof *perm))) return fail("load", JET_errOutOfMemory);
        uint64_t st = seed * 0x9E3779B97F4A7C15ull | 1;
        for (long long j = 0; j < keys; j++) perm[j] = j;
        for (long long j = keys - 1; j > 0; j--) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            long long r = (long long)(st % (uint64_t)(j + 1)), tmp = perm[j];
            perm[j] = perm[r];
            perm[r] = tmp;
        }
    }
    struct inst in;
    JET_ERR err = inst_open(dir, 1, &in);
    if (err < 0) {
        free(perm);
        return inst_open_failed(&in, dir, err);
    }
    JET_TABLEID t;
    err = JetOpenTable(in.s, in.db, table, NULL, 0, 0, &t);
    if (err == JET_errObjectNotFound) err = JetCreateTable(in.s, in.db, table, 0, 0, &t);
    if (err < 0) {
        int rc = fail(table, err);
        free(perm);
        inst_close(&in);
        return rc;
    }
    uint8_t *val = malloc((size_t)vsize + 1);
    if (!val) {
        free(perm);
        inst_close(&in);
        return fail("load", JET_errOutOfMemory);
    }
    double t0 = now();
    for (long long i = 0; i < keys && err >= 0; i += batch) {
        if ((err = JetBeginTransaction(in.s)) < 0) break;
        for (long long n = i; n < i + batch && n < keys && err >= 0; n++) {
            long long j = perm ? perm[n] : descending ? keys - 1 - n : n;
            char key[32];
            int kl = snprintf(key, sizeof key, "key:%010lld", j);
            uint64_t st = (seed ^ (uint64_t)j * 0x9E3779B97F4A7C15ull) | 1;
            for (long long b = 0; b < vsize; b++) {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                val[b] = (uint8_t)('a' + st % 26);
            }
            err = JetPutKV(in.s, t, key, (unsigned long)kl, val, (unsigned long)vsize, 0);
        }
        if (err < 0) {
            JetRollback(in.s, 0);
            break;
        }
        err = JetCommitTransaction(in.s, 0);
        progress("loading", (uint64_t)(i + batch < keys ? i + batch : keys), (uint64_t)keys, t0);
    }
    free(val);
    free(perm);
    if (err < 0) {
        int rc = fail("load", err);
        inst_close(&in);
        return rc;
    }
    double dt = now() - t0;
    JetCloseTable(in.s, t);
    if ((err = inst_close(&in)) < 0) return fail("closing the instance", err);
    double mb = (double)keys * (double)(14 + vsize) / 1e6;
    printf("loaded %lld keys (%.1f MB) into table '%s' of %s in %.2f s: %.1f MB/s\n", keys, mb, table, dir, dt,
           dt > 0 ? mb / dt : 0.0);
    return 0;
}

/* ---- export ---- */

static const char *EXPORT_USAGE =
    "DIR [--table T] [--prefix P]\n"
    "   or: export SET... [--stop-gen G] [--stop-time T] [--table T] [--prefix P]\n"
    "  prints every table's keys and values, sorted, in a stable text form:\n"
    "  'table NAME' then one line per record: HEXKEY HEXVALUE\n"
    "  DIR is an instance directory; SETs (directories with a backup.manifest: a full\n"
    "  set and its incrementals) are read as `restore` of them would give, without\n"
    "  restoring them (nothing is written to the sets); --table keeps one table,\n"
    "  --prefix the keys that begin with P";

static void hex(const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        putchar(d[p[i] >> 4]);
        putchar(d[p[i] & 15]);
    }
}

struct export_filter {
    const char *table;    /* NULL: every table */
    const char *prefix;   /* NULL: every key */
    size_t prefix_len;
    bool table_seen;      /* export_entry met the table asked for */
};

static bool export_wants(const struct export_filter *f, const char *table, const uint8_t *key, size_t klen)
{
    if (f->table && strcmp(f->table, table) != 0) return false;
    return !key || !f->prefix || (klen >= f->prefix_len && !memcmp(key, f->prefix, f->prefix_len));
}

static int export_entry(void *arg, const char *table, const uint8_t *key, size_t klen, const uint8_t *val,
                        size_t vlen)
{
    struct export_filter *f = arg;
    if (!export_wants(f, table, key, klen)) return 0;
    if (!key) f->table_seen = true;
    if (!key) printf("table %s\n", table);
    else {
        hex(key, (unsigned long)klen);
        putchar(' ');
        hex(val, (unsigned long)vlen);
        putchar('\n');
    }
    return 0;
}

/* Prints the tables of an open database as the filter says. */
static JET_ERR export_database(JET_SESID s, JET_DBID db, const struct export_filter *f)
{
    unsigned long cb = 0;
    char *names = NULL;
    JET_ERR err = JetGetTableNames(s, db, NULL, 0, &cb);
    if (err >= 0 && !(names = malloc(cb))) err = JET_errOutOfMemory;
    if (err >= 0) err = JetGetTableNames(s, db, names, cb, &cb);
    size_t vcap = 1 << 20;
    uint8_t *val = malloc(vcap);
    if (!val) err = JET_errOutOfMemory;
    bool found = !f->table;
    for (char *n = names; err >= 0 && n && *n; n += strlen(n) + 1) {
        JET_TABLEID t;
        if (f->table && strcmp(f->table, n) != 0) continue;
        found = true;
        if ((err = JetOpenTable(s, db, n, NULL, 0, 0, &t)) < 0) break;
        printf("table %s\n", n);
        if (f->prefix) err = JetSeekKV(s, t, f->prefix, (unsigned long)f->prefix_len, JET_bitSeekGE);
        else err = JetMove(s, t, JET_MoveFirst, 0);
        if (err == JET_errRecordNotFound) err = JET_errNoCurrentRecord;
        while (err >= 0) {
            uint8_t key[JET_cbKeyMost];
            unsigned long kl = 0, vl = 0;
            err = JetRetrieveCurrentKV(s, t, key, sizeof key, &kl, val, (unsigned long)vcap, &vl);
            if (err == JET_wrnBufferTruncated) {
                vcap = vl;
                uint8_t *nv = realloc(val, vcap);
                if (!nv) {
                    err = JET_errOutOfMemory;
                    break;
                }
                val = nv;
                continue;
            }
            if (err < 0) break;
            if (!export_wants(f, n, key, kl)) break; /* past the prefix */
            hex(key, kl);
            putchar(' ');
            hex(val, vl);
            putchar('\n');
            err = JetMove(s, t, JET_MoveNext, 0);
        }
        if (err == JET_errNoCurrentRecord) err = JET_errSuccess;
        JetCloseTable(s, t);
    }
    free(val);
    free(names);
    if (err >= 0 && !found) {
        fprintf(stderr, "jetutil: export: no table '%s' in the database\n", f->table);
        err = JET_errObjectNotFound;
    }
    return err;
}

static bool holds_manifest(const char *dir)
{
    char m[4200];
    snprintf(m, sizeof m, "%s/backup.manifest", dir);
    return access(m, F_OK) == 0;
}

/* export SET...: the sets' content as a restore would give it, read
 * through a browse (no restore directory, nothing written to the sets). */
static int export_sets(const char *const *sets, int nsets, unsigned long stop_gen, unsigned long long stop_us,
                       const struct export_filter *f)
{
    JET_BROWSE *b = NULL;
    JET_BROWSEOPTS o = {sizeof o, 0, NULL, show_replay};
    JET_BROWSEINFO info = {.cbStruct = sizeof info};
    JET_SESID s = 0;
    JET_DBID db;
    JET_ERR err = JetBrowseSets(sets, nsets, stop_gen, stop_us, &o, &b);
    if (err < 0) return fail("export refused", err);
    if ((err = JetBrowseGetInfo(b, &info)) >= 0 && (err = JetBeginSession(JetBrowseInstance(b), &s, NULL, NULL)) >= 0 &&
        (err = JetOpenDatabase(s, info.szDatabase, NULL, &db, JET_bitDbReadOnly)) >= 0)
        err = export_database(s, db, f);
    if (err >= 0 && JetBrowseGetInfo(b, &info) >= 0)
        fprintf(stderr, "jetutil: export: %d set(s), generations %lu to %lu replayed, %.1f MB of replayed pages kept "
                        "in a private overlay (nothing written to the sets)\n",
                info.csets, info.genLow, info.genHigh, (double)info.cbOverlay / 1e6);
    int rc = err < 0 ? (err == JET_errObjectNotFound ? EXIT_USAGE : fail("export", err)) : 0;
    if (s) JetEndSession(s, 0);
    JetBrowseClose(b);
    if (!rc && fflush(stdout) != 0) rc = EXIT_FOUND;
    return rc;
}

static int cmd_export(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("export", EXPORT_USAGE, 0);
    const char *dirs[64];
    int ndirs = 0;
    unsigned long stop_gen = 0;
    unsigned long long stop_us = 0;
    struct export_filter f = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--table") && i + 1 < argc) f.table = argv[++i];
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc) f.prefix = argv[++i], f.prefix_len = strlen(f.prefix);
        else if (!strcmp(argv[i], "--stop-gen") && i + 1 < argc) {
            if (stop_point_gen(argv[++i], &stop_gen) < 0)
                return bad_value("export", EXPORT_USAGE, "--stop-gen", argv[i], GEN_FORM);
        } else if (!strcmp(argv[i], "--stop-time") && i + 1 < argc) {
            if (stop_point_time(argv[++i], &stop_us) < 0)
                return bad_value("export", EXPORT_USAGE, "--stop-time", argv[i], TIME_FORM);
        } else if (argv[i][0] != '-' && ndirs < 64) dirs[ndirs++] = argv[i];
        else return bad_arg("export", EXPORT_USAGE, argc, argv, i);
    }
    if (!ndirs) return snprintf(usage_why, sizeof usage_why, "no DIR or SET given"), usage("export", EXPORT_USAGE, EXIT_USAGE);
    if (f.prefix && !f.prefix_len) f.prefix = NULL;
    if (ndirs > 1 || holds_manifest(dirs[0])) {
        for (int i = 0; i < ndirs; i++)
            if (!holds_manifest(dirs[i])) {
                fprintf(stderr, "jetutil: export: %s is not a backup set (no backup.manifest); give one instance "
                                "directory, or backup sets only\n", dirs[i]);
                return EXIT_USAGE;
            }
        return export_sets(dirs, ndirs, stop_gen, stop_us, &f);
    }
    if (stop_gen || stop_us) {
        fprintf(stderr, "jetutil: export: --stop-gen and --stop-time apply to backup sets, and %s is not one\n",
                dirs[0]);
        return EXIT_USAGE;
    }
    /* An export reads: a cleanly shut-down database is read directly, same
     * output, and nothing in DIR is written (no instance starts, so no log
     * generation is added and no mtime moves).  Only a database that needs
     * recovery starts an instance, which recovers it in place; on read-only
     * media (a snapshot, a mounted backup) that cannot be done. */
    char dbfile[4200];
    snprintf(dbfile, sizeof dbfile, "%s/%s", dirs[0], JETFS_DB_NAME);
    if (is_dir(dirs[0]) && access(dbfile, R_OK) == 0) {
        JET_ERR err = JetInspectReadDatabase(dbfile, export_entry, &f);
        bool read_only = access(dirs[0], W_OK) != 0 && (errno == EROFS || errno == EACCES);
        if (err != JET_errDatabaseDirtyShutdown || read_only) {
            if (err < 0) return fail("export", err);
            if (f.table && !f.table_seen) {
                fprintf(stderr, "jetutil: export: no table '%s' in the database\n", f.table);
                return EXIT_USAGE;
            }
            return fflush(stdout) == 0 ? 0 : EXIT_FOUND;
        }
        fprintf(stderr, "jetutil: export: %s was not shut down cleanly: recovering it first, in place\n", dirs[0]);
    }
    struct inst in;
    JET_ERR err = inst_open(dirs[0], 0, &in);
    if (err < 0) return inst_open_failed(&in, dirs[0], err);
    err = export_database(in.s, in.db, &f);
    if (err < 0) {
        int rc = err == JET_errObjectNotFound ? EXIT_USAGE : fail("export", err);
        inst_close(&in);
        return rc;
    }
    if ((err = inst_close(&in)) < 0) return fail("closing the instance", err);
    return fflush(stdout) == 0 ? 0 : EXIT_FOUND;
}

/* ---- restore, verify, recover ---- */

static const char *RESTORE_USAGE =
    "--to DIR SET... [--stop-gen G] [--stop-time T]\n"
    "  restores a full backup set and any following incremental (or one differential)\n"
    "  sets into DIR (new or empty), checking every file and the log chain first;\n"
    "  a SET may hold many sessions' sets copied into one directory (rsync, rclone,\n"
    "  cp -a, tar archives extracted in order): the first SET holds the full, and\n"
    "  the chain runs from the newest backup back to it, each file from wherever\n"
    "  a manifest of the chain vouches for it;\n"
    "  --stop-gen G / --stop-time T restore to a point in time (one of them): G a generation,\n"
    "  T seconds since the epoch or UTC as 2026-12-08T01:57:20Z";

static void warn_unused(void *arg, const char *path, const char *why)
{
    (void)arg;
    fprintf(stderr, "jetutil: warning: %s: %s\n", path, why);
}

/* Whether dir holds a manifest under any of its names (backup.manifest, a
 * session's backup.<begin>-<id>.manifest). */
static bool holds_any_manifest(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    bool any = false;
    while (dd && !any && (e = readdir(dd))) {
        size_t n = strlen(e->d_name);
        any = n >= 15 && !strncmp(e->d_name, "backup.", 7) && !strcmp(e->d_name + n - 9, ".manifest");
    }
    if (dd) closedir(dd);
    return any;
}

static const char *VERIFY_USAGE;

/* 0, or the exit code of a refusal it has said. */
static int parse_sets(int argc, char **argv, const char **to, const char **sets, int *nsets, unsigned long *stop_gen,
                      unsigned long long *stop_us, bool want_to)
{
    *nsets = 0;
    const char *cmd = want_to ? "restore" : "verify", *text = want_to ? RESTORE_USAGE : VERIFY_USAGE;
    for (int i = 1; i < argc; i++) {
        if (want_to && !strcmp(argv[i], "--to") && i + 1 < argc) *to = argv[++i];
        else if (want_to && !strcmp(argv[i], "--stop-gen") && i + 1 < argc) {
            if (stop_point_gen(argv[++i], stop_gen) < 0) return bad_value(cmd, text, "--stop-gen", argv[i], GEN_FORM);
        } else if (want_to && !strcmp(argv[i], "--stop-time") && i + 1 < argc) {
            if (stop_point_time(argv[++i], stop_us) < 0)
                return bad_value(cmd, text, "--stop-time", argv[i], TIME_FORM);
        } else if (argv[i][0] != '-' && *nsets < 64) sets[(*nsets)++] = argv[i];
        else return bad_arg(cmd, text, argc, argv, i);
    }
    if (*stop_gen && *stop_us) {
        snprintf(usage_why, sizeof usage_why, "--stop-gen and --stop-time: give one stop point, not both");
        return usage(cmd, text, EXIT_USAGE);
    }
    if (want_to && !*to) {
        snprintf(usage_why, sizeof usage_why, "--to DIR is required: where the sets are restored");
        return usage(cmd, text, EXIT_USAGE);
    }
    if (!*nsets) {
        snprintf(usage_why, sizeof usage_why, "no backup set given");
        return usage(cmd, text, EXIT_USAGE);
    }
    /* A set that is not a directory is said now, before any warning. */
    for (int i = 0; i < *nsets; i++)
        if (!is_dir(sets[i])) {
            fprintf(stderr, "jetutil %s: %s: %s\n", cmd, sets[i],
                    access(sets[i], F_OK) == 0 ? "not a directory (a backup set is one)" : "no such backup set directory");
            return EXIT_FOUND;
        }
    /* Without a manifest a set's files are checked only against each
     * other and the chain of ids cannot be: say so before anything runs. */
    for (int i = 0; i < *nsets; i++) {
        if (!holds_any_manifest(sets[i]))
            fprintf(stderr, "jetutil: warning: %s has no backup.manifest (nor any backup.*.manifest): its file sizes and hashes and its place in "
                            "the chain cannot be checked, only its logs' own chain\n", sets[i]);
    }
    /* What the restore will not use, each named.  Sets that fail their
     * checks are refused, with the reason, by the restore that follows:
     * only the warnings matter here. */
    (void)JetInspectSetsUnused(sets, *nsets, warn_unused, NULL);
    return 0;
}

static int cmd_restore(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("restore", RESTORE_USAGE, 0);
    const char *to = NULL, *sets[64];
    int nsets = 0;
    unsigned long stop_gen = 0;
    unsigned long long stop_us = 0;
    int rc = parse_sets(argc, argv, &to, sets, &nsets, &stop_gen, &stop_us, true);
    if (rc) return rc;
    fprintf(stderr, "restoring %d set(s) into %s...\n", nsets, to);
    JET_ERR err = JetRestoreSets2(sets, nsets, to, stop_gen, stop_us, show_replay);
    if (err < 0) return fail("restore refused", err);
    printf("restored into %s: consistent, clean shutdown; open it with jetutil export %s\n", to, to);
    return 0;
}

static const char *VERIFY_USAGE = "SET...\n  checks backup sets without changing them: restores them into a scratch\n"
                                  "  directory under $TMPDIR (default /tmp; it needs the set's size) -- every\n"
                                  "  file, the log chain, every page -- and removes it";

static int cmd_verify(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("verify", VERIFY_USAGE, 0);
    const char *to = NULL, *sets[64];
    int nsets = 0;
    unsigned long g = 0;
    unsigned long long t = 0;
    int prc = parse_sets(argc, argv, &to, sets, &nsets, &g, &t, false);
    if (prc) return prc;
    const char *tmp = getenv("TMPDIR");
    char scratch[4096];
    snprintf(scratch, sizeof scratch, "%s/jetutil-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "jetutil: verify: cannot make a scratch directory %s: %s\n", scratch, strerror(errno));
        return EXIT_FOUND;
    }
    JET_ERR err = JetRestoreSets2(sets, nsets, scratch, 0, 0, show_replay);
    int rc = 0;
    if (err < 0) rc = fail("verify: the sets do not restore", err);
    else {
        char db[4200];
        JET_INSPECT_CHECK st;
        snprintf(db, sizeof db, "%s/%s", scratch, JETFS_DB_NAME);
        if (access(db, F_OK) == 0 && (err = JetInspectCheckDatabase(db, print_problem, NULL, &st)) < 0)
            rc = fail("verify: the restored database", err);
        else printf("verified %d set(s): they restore to a consistent database\n", nsets);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "jetutil: could not remove %s\n", scratch);
    return rc;
}

static const char *RECOVER_USAGE =
    "DIR [--discard-after-damage]\n  runs crash recovery on the instance in DIR and leaves it in clean-shutdown state\n"
    "  --discard-after-damage: when recovery refuses damage in the log, end the log at the last commit\n"
    "      before it and recover from there, losing every commit after it (said before anything is done;\n"
    "      the original files are kept as *.discarded, and the log records the discard).  For when there\n"
    "      is no backup to restore instead.";

static int cmd_recover(int argc, char **argv)
{
    if (want_help(argc, argv)) return usage("recover", RECOVER_USAGE, 0);
    const char *dir = NULL;
    int discard = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--discard-after-damage")) discard = 1;
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else return bad_arg("recover", RECOVER_USAGE, argc, argv, i);
    }
    if (!dir) return snprintf(usage_why, sizeof usage_why, "no DIR given"), usage("recover", RECOVER_USAGE, EXIT_USAGE);
    if (discard && is_dir(dir)) {
        JET_INSPECT_DISCARD d;
        JET_ERR err = JetInspectDiscardAfterDamage(dir, dir, JETFS_BASE_NAME, &d);
        if (err < 0) return fail(dir, err);
        if (!d.found) {
            printf("%s: the log has no damage: nothing discarded\n", dir);
        } else {
            printf("%s: recovery refused the log: %s\n", dir, d.reason);
            printf("%s: discarding after the damage: the log now ends at %u:%u, the end of the last commit before "
                   "generation %u's damage at offset %u\n",
                   dir, (unsigned)(d.cut >> 32), (unsigned)d.cut, d.generation, d.damage_offset);
            printf("  discarded: %" PRIu64 " commit record(s) readable after the cut", d.commits_discarded);
            if (d.first_moved)
                printf("; generations %u..%u moved aside as *.discarded", d.first_moved, d.last_moved);
            printf("\n  kept: the original of generation %u as %s\n", (unsigned)(d.cut >> 32), d.saved);
        }
    }
    struct inst in;
    JET_ERR err = inst_open(dir, 0, &in);
    if (err < 0) return inst_open_failed(&in, dir, err);
    if ((err = inst_close(&in)) < 0) return fail("closing the instance", err);
    printf("%s: recovered; databases in clean-shutdown state\n", dir);
    return 0;
}

static int main_usage(int code)
{
    FILE *f = code ? stderr : stdout;
    fprintf(f, "usage: jetutil COMMAND [ARGS]   (jetutil COMMAND --help for each; jetutil --version)\n"
               "  header FILE [--json]      database, log or checkpoint header\n"
               "  logs DIR|FILE             dump log records\n"
               "  checklog DIR              every log generation's state and the chain (eseutil /ml)\n"
               "  check DIR|DBFILE [--json] page checksums, B+tree invariants, each table's fill\n"
               "  load DIR --keys N --value-size BYTES [--table NAME] [--seed S] [--batch K]\n"
               "       [--order ascending|descending|random]\n"
               "  export DIR|SET...         every table's keys and values, sorted\n"
               "  restore --to DIR SET...   restore full + incremental backup sets\n"
               "  verify SET...             check backup sets restore cleanly\n"
               "  recover DIR [--discard-after-damage]  crash recovery, leaves a clean shutdown\n"
               "exit codes: 0 ok, 1 failure found, 2 usage error\n");
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) return main_usage(EXIT_USAGE);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) return main_usage(0);
    if (!strcmp(cmd, "--version")) return printf("jetutil %s\n", JETFS_VERSION) < 0;
    if (!strcmp(cmd, "header")) return cmd_header(argc - 1, argv + 1);
    if (!strcmp(cmd, "logs")) return cmd_logs(argc - 1, argv + 1);
    if (!strcmp(cmd, "checklog")) return cmd_checklog(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "load")) return cmd_load(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "restore")) return cmd_restore(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "recover")) return cmd_recover(argc - 1, argv + 1);
    fprintf(stderr, "jetutil: unknown command '%s'\n", cmd);
    return main_usage(EXIT_USAGE);
}

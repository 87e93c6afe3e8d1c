/*
 * jetfs -- hosts a live jetfs instance, serves its clients, and mounts its
 * backups as files.
 *
 *   jetfs serve DBDIR MOUNT [--listen [HOST:]PORT] [--once] [--truncate auto|manual]
 *               [--group NAME] [--space-limit BYTES[K|M|G]] [--idle-timeout SECONDS]
 *               [--backup-priority idle|normal] [Redis-port options: --requirepass-file,
 *               --protected-mode, --tls-*, --maxclients, --timeout, --disable-command...]
 *   jetfs browse MOUNT SET [SET...] [--stop-gen G | --stop-time T] [--overlay-memory SIZE]
 *                [--listen [HOST:]PORT and the other Redis-port options of serve]
 *   jetfs end MOUNT [--abort]
 *   jetfs status MOUNT
 *
 * browse mounts what a restore of the sets would give (JetBrowseSets) as
 * MOUNT/status and MOUNT/tables/<table>/<key>, read-only, until unmounted
 * or SIGINT/SIGTERM; then the overlay is discarded.
 *
 * Thin over libjet (jet.h), libjetfs (jetfs.h) and the RESP front end
 * (resp.h): argument parsing, the instance's lifetime, signals and exit
 * codes live here.  Exit codes: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "instance_dir.h"
#include "jet.h"
#include "jetfs.h"
#include "notify.h"
#include "stop_point.h"
#ifdef JETFS_HAVE_RESP
#include "resp.h"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE 2
/* parse_serve: --help was asked for and shown; serve exits 0 without serving. */
#define HELP_SHOWN (-1)

static const char *USAGE =
    "usage: jetfs serve DBDIR MOUNT [options]   host the instance in DBDIR, mount its backups on MOUNT\n"
    "       jetfs browse MOUNT SET... [options]  mount the content of backup sets, read-only\n"
    "       jetfs end MOUNT [--abort]           end the backup of the mounted session now\n"
    "       jetfs status MOUNT                  print MOUNT/status\n"
    "       jetfs --version\n"
    "\n"
    "serve options:\n"
    "  --listen [HOST:]PORT   serve the Redis protocol there (127.0.0.1 unless HOST is given)\n"
    "  --requirepass-file PATH  clients must AUTH with the password on PATH's first line\n"
    "                         (the file must be mode 0600 or stricter)\n"
    "  --protected-mode yes|no  yes (default): refuse to listen on a non-loopback address\n"
    "                         without a password\n"
    "  --tls-port [HOST:]PORT serve the Redis protocol over TLS there (host: --listen's, else\n"
    "                         127.0.0.1); needs --tls-cert-file and --tls-key-file (PEM)\n"
    "  --tls-cert-file PATH, --tls-key-file PATH\n"
    "  --tls-ca-cert-file PATH  require client certificates signed by this CA\n"
    "  --maxclients N         most clients at once (default 10000)\n"
    "  --timeout SECS         close a Redis client that sent and read nothing for SECS (default 0: never)\n"
    "  --proto-max-bulk-len SIZE  longest argument (default 512M)\n"
    "  --client-query-buffer-limit SIZE  disconnect a client with more unexecuted input (default 1G)\n"
    "  --disable-command NAME  NAME (SHUTDOWN, FLUSHDB...) answers as an unknown command; repeatable\n"
    "  --once                 exit after the first unmount instead of mounting again\n"
    "  --truncate auto|manual auto (default): unmount after a complete read truncates the logs;\n"
    "                         manual: only `jetfs end MOUNT` truncates\n"
    "  --group NAME           open the tree to group NAME (files 0440); default: mounting user only (0400)\n"
    "  --space-limit SIZE     abort a backup whose snapshot outgrows SIZE (default 8G)\n"
    "  --idle-timeout SECS    abort a backup nobody read, with no file of it open, for SECS seconds\n"
    "                         (default 1800)\n"
    "  --backup-priority idle|normal\n"
    "                         idle (default): backup reads get only the CPU clients leave;\n"
    "                         normal: they compete with clients\n"
    "  --cache-size SIZE      engine buffer cache (default 64M)\n"
    "  --nonempty             mount even over a directory that holds files (hiding them)\n"
    "  --debug                trace FUSE requests\n"
    "\n"
    "browse options (and the Redis-port options above, from --listen to --disable-command):\n"
    "  --stop-gen G           the state as of the end of log generation G\n"
    "  --stop-time T          the state as of that time (seconds since the epoch, or UTC as\n"
    "                         2026-12-08T01:57:20Z, as jetutil restore)\n"
    "  --overlay-memory SIZE  pages the replay changes kept in memory before a temporary file (default 256M)\n"
    "  --listen ...           serves the Redis protocol's reads; writes get -READONLY\n"
    "\n"
    "Opening MOUNT/backup/full (or incremental, differential, copy) begins that backup; its files are\n"
    "the database and log generations as of that instant.  Until a file of the set is opened, listing\n"
    "another kind (du, find, ls -R) makes that one begin instead.  Unmount (fusermount3 -u MOUNT) or\n"
    "SIGTERM ends it: normally, truncating logs, if every file was read whole (a log generation read\n"
    "whole by an earlier backup counts); aborted, truncating nothing, if not.  `jetfs end MOUNT` ends it\n"
    "(refused if not read whole; --abort aborts), then the session unmounts and serve mounts again; it\n"
    "needs no root, only read access to MOUNT/status (a member of --group).  A watchdog abort (space\n"
    "limit, idle timeout) unmounts, and serve mounts again for the next backup.\n"
    "Under systemd (Type=notify) serve sends READY=1 once the instance, the listener and the mount are up,\n"
    "STATUS= as backups begin and end, STOPPING=1 at shutdown.  See jetfs(8).\n";

static int usage(int code)
{
    fputs(USAGE, code ? stderr : stdout);
    return code;
}

/* A refused command line: what was wrong has been said on its own line;
 * this adds the one subcommand's synopsis, not every subcommand's options. */
static int usage_of(const char *cmd)
{
    const char *line = strstr(USAGE, cmd), *eol;
    if (line && (eol = strchr(line, '\n')))
        fprintf(stderr, "usage: jetfs %.*s\n       (jetfs --help for every option; man jetfs)\n", (int)(eol - line), line);
    return EXIT_USAGE;
}

/* getopt_long's refusal, said as "jetfs CMD: ..." (opterr is off). */
static int bad_option(const char *cmd, char **argv)
{
    const char *arg = argv[optind - 1];
    if (optopt) fprintf(stderr, "jetfs %s: %s needs a value\n", cmd, arg);
    else fprintf(stderr, "jetfs %s: unknown option %s\n", cmd, arg);
    return usage_of(cmd);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s jetfs: ", when);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int jet_fail(const char *what, JET_ERR err)
{
    const char *d = JetGetLastErrorDetail();
    say("%s: %s (%ld)%s%s", what, JetErrorString(err), err, *d ? ": " : "", d);
    return EXIT_FAIL;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end) return -1;
    *out = v;
    return 0;
}

/* ---- serve ---- */

struct server {
    pthread_mutex_t mu;
    bool shutting_down;
    struct jetfs *fs;        /* the mounted session, if any */
    struct jetfs_browse *browse; /* jetfs browse's mount, once mounted */
    int exit_signal;
};

static struct server srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* SIGTERM, SIGINT, a client's SHUTDOWN: end the backup, unmount, stop. */
static void request_shutdown(void *arg)
{
    (void)arg;
    notify_stopping();
    pthread_mutex_lock(&srv.mu);
    srv.shutting_down = true;
    if (srv.fs) jetfs_unmount(srv.fs);
    if (srv.browse) jetfs_browse_unmount(srv.browse);
    pthread_mutex_unlock(&srv.mu);
}

static void *signal_main(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) == 0) {
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            say("received %s: ending the backup, unmounting, shutting down", strsignal(sig));
            srv.exit_signal = sig;
            request_shutdown(NULL);
        }
    }
    return NULL;
}

/* Signals go to one thread, which ends the session cleanly. */
static int start_signal_thread(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t sigthread;
    if (pthread_create(&sigthread, NULL, signal_main, &set) != 0) {
        say("cannot start the signal thread");
        return -1;
    }
    pthread_detach(sigthread);
    return 0;
}

/* The session's events (a backup begun, ended, aborted) go to stderr as
 * before and to the service manager as its STATUS= line. */
static void session_event(void *arg, const char *line)
{
    (void)arg;
    say("%s", line);
    notify_status("%s", line);
}

#define DISABLED_MAX 16

struct serve_opts {
    const char *dbdir, *mount, *listen;
    char listen_host[256];     /* --listen split: 127.0.0.1 unless a HOST was given */
    int listen_port;
    /* The Redis port's exposure and limits (resp.h). */
    const char *tls_listen, *tls_cert, *tls_key, *tls_ca, *requirepass_file;
    char tls_host[256];
    int tls_port;
    bool protected_off;
    unsigned maxclients, client_timeout;
    uint64_t max_bulk, query_buffer;
    const char *disabled[DISABLED_MAX];
    size_t ndisabled;
    bool once, truncate_manual, group_access, debug, normal_priority;
    bool nonempty;             /* --nonempty: mounting over files is asked for */
    gid_t gid;
    uint64_t space_limit, cache_size;
    unsigned idle_timeout;
};

/* An option that takes one of two words: *second says whether it was the
 * second (the default is the first); -1, said, for anything else. */
static int choice(const char *opt, const char *first, const char *second, bool *is_second)
{
    if (!strcmp(optarg, first) || !strcmp(optarg, second)) {
        *is_second = !strcmp(optarg, second);
        return 0;
    }
    fprintf(stderr, "jetfs: --%s takes %s or %s, not '%s'\n", opt, first, second, optarg);
    return -1;
}

/* --listen / --tls-port's [HOST:]PORT: PORT or :PORT is loopback.
 * Checked here, before anything is opened. */
static int host_port(const char *opt, char *host, size_t cbhost, int *pport)
{
    const char *colon = strrchr(optarg, ':');
    const char *ports = colon ? colon + 1 : optarg;
    char *end;
    long port = strtol(ports, &end, 10);
    size_t hostlen = colon ? (size_t)(colon - optarg) : 0;
    if (!*ports || *end || port < 0 || port > 65535 || hostlen >= cbhost) {
        fprintf(stderr, "jetfs: --%s takes [HOST:]PORT, not '%s'\n", opt, optarg);
        return -1;
    }
    snprintf(host, cbhost, "%.*s", (int)hostlen, optarg);
    *pport = (int)port;
    return 0;
}

/* The Redis port's options, shared by serve and browse (getopt_long). */
#define RESP_LONGOPTS                                                                                             \
    {"listen", required_argument, NULL, 'l'}, {"requirepass-file", required_argument, NULL, 'R'},               \
        {"protected-mode", required_argument, NULL, 'P'}, {"tls-port", required_argument, NULL, 'T'},           \
        {"tls-cert-file", required_argument, NULL, 'C'}, {"tls-key-file", required_argument, NULL, 'K'},        \
        {"tls-ca-cert-file", required_argument, NULL, 'A'}, {"maxclients", required_argument, NULL, 'M'},       \
        {"timeout", required_argument, NULL, 'I'}, {"proto-max-bulk-len", required_argument, NULL, 'B'},        \
        {"client-query-buffer-limit", required_argument, NULL, 'Q'},                                             \
        {"disable-command", required_argument, NULL, 'D'}

/* One Redis-port option (getopt's c and optarg): 0 taken, EXIT_USAGE
 * (said), or 1 when c is not one of them. */
static int resp_option(int c, struct serve_opts *o)
{
    switch (c) {
    case 'l':
        if (host_port("listen", o->listen_host, sizeof o->listen_host, &o->listen_port) < 0) return EXIT_USAGE;
        o->listen = optarg;
        return 0;
    case 'T':
        if (host_port("tls-port", o->tls_host, sizeof o->tls_host, &o->tls_port) < 0) return EXIT_USAGE;
        o->tls_listen = optarg;
        return 0;
    case 'R': o->requirepass_file = optarg; return 0;
    case 'C': o->tls_cert = optarg; return 0;
    case 'K': o->tls_key = optarg; return 0;
    case 'A': o->tls_ca = optarg; return 0;
    case 'P': {
        bool no;
        if (choice("protected-mode", "yes", "no", &no) < 0) return EXIT_USAGE;
        o->protected_off = no;
        return 0;
    }
    case 'M':
    case 'I': {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (!*optarg || *end || v < (c == 'M' ? 1 : 0) || v > (c == 'M' ? 1000000 : 86400 * 365)) {
            fprintf(stderr, "jetfs: --%s: '%s' is not %s\n", c == 'M' ? "maxclients" : "timeout", optarg,
                    c == 'M' ? "a number of clients (1 to 1000000)" : "a number of seconds (0: never)");
            return EXIT_USAGE;
        }
        if (c == 'M') o->maxclients = (unsigned)v;
        else o->client_timeout = (unsigned)v;
        return 0;
    }
    case 'B':
    case 'Q':
        if (parse_size(optarg, c == 'B' ? &o->max_bulk : &o->query_buffer) < 0 ||
            (c == 'B' ? o->max_bulk : o->query_buffer) < 1024) {
            fprintf(stderr, "jetfs: --%s: '%s' is not a size of at least 1K (like 1M or 512M)\n",
                    c == 'B' ? "proto-max-bulk-len" : "client-query-buffer-limit", optarg);
            return EXIT_USAGE;
        }
        return 0;
    case 'D':
        if (o->ndisabled == DISABLED_MAX) {
            fprintf(stderr, "jetfs: --disable-command: at most %d commands\n", DISABLED_MAX);
            return EXIT_USAGE;
        }
        o->disabled[o->ndisabled++] = optarg;
        return 0;
    default:
        return 1;
    }
}

/* Once the Redis-port options are parsed: the hosts' defaults, and the
 * combinations refused (cmd names the command in the message). */
static int resp_options_done(struct serve_opts *o, const char *cmd)
{
    /* A TLS port without a host listens where --listen does. */
    if (!o->tls_host[0]) snprintf(o->tls_host, sizeof o->tls_host, "%s", o->listen_host);
    if (!o->listen_host[0]) snprintf(o->listen_host, sizeof o->listen_host, "127.0.0.1");
    if (!o->tls_host[0]) snprintf(o->tls_host, sizeof o->tls_host, "127.0.0.1");
    if ((o->tls_cert || o->tls_key || o->tls_ca) && !o->tls_listen) {
        fprintf(stderr, "jetfs %s: --tls-cert-file, --tls-key-file and --tls-ca-cert-file need --tls-port\n", cmd);
        return EXIT_USAGE;
    }
    if (o->tls_listen && (!o->tls_cert || !o->tls_key)) {
        fprintf(stderr, "jetfs %s: --tls-port needs --tls-cert-file and --tls-key-file\n", cmd);
        return EXIT_USAGE;
    }
    if (!o->listen && !o->tls_listen &&
        (o->requirepass_file || o->maxclients || o->client_timeout || o->max_bulk || o->query_buffer || o->ndisabled)) {
        fprintf(stderr, "jetfs %s: the Redis-port options need --listen or --tls-port\n", cmd);
        return EXIT_USAGE;
    }
    return 0;
}

static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
    static const struct option longopts[] = {
        {"once", no_argument, NULL, 'o'},
        {"truncate", required_argument, NULL, 't'},   {"group", required_argument, NULL, 'g'},
        {"space-limit", required_argument, NULL, 's'}, {"idle-timeout", required_argument, NULL, 'i'},
        {"cache-size", required_argument, NULL, 'c'}, {"debug", no_argument, NULL, 'd'},
        {"backup-priority", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {"nonempty", no_argument, NULL, 'N'},
        RESP_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int r = resp_option(c, o);
        if (r == 0) continue;
        if (r != 1) return r;
        switch (c) {
        case 'o': o->once = true; break;
        case 'd': o->debug = true; break;
        case 't':
            if (choice("truncate", "auto", "manual", &o->truncate_manual) < 0) return EXIT_USAGE;
            break;
        case 'p':
            if (choice("backup-priority", "idle", "normal", &o->normal_priority) < 0) return EXIT_USAGE;
            break;
        case 'g': {
            struct group *g = getgrnam(optarg);
            if (!g) {
                fprintf(stderr, "jetfs: --group: no group named '%s'\n", optarg);
                return EXIT_USAGE;
            }
            o->group_access = true;
            o->gid = g->gr_gid;
            break;
        }
        case 's':
        case 'c':
            if (parse_size(optarg, c == 's' ? &o->space_limit : &o->cache_size) < 0) {
                fprintf(stderr, "jetfs: --%s: '%s' is not a size (like 512M or 8G)\n",
                        c == 's' ? "space-limit" : "cache-size", optarg);
                return EXIT_USAGE;
            }
            /* The engine's own bounds (JET_paramCacheSizeMax: 64 to 2^26
             * pages of 8 KiB), said before anything is created. */
            if (c == 'c' && (o->cache_size < 512ull << 10 || o->cache_size > 512ull << 30)) {
                fprintf(stderr, "jetfs: --cache-size: '%s' is outside 512K..512G\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'i': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 86400 * 365) {
                fprintf(stderr, "jetfs: --idle-timeout: '%s' is not a number of seconds\n", optarg);
                return EXIT_USAGE;
            }
            o->idle_timeout = (unsigned)v;
            break;
        }
        case 'N': o->nonempty = true; break;
        case 'h': usage(0); return HELP_SHOWN;
        default: return bad_option("serve", argv);
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "jetfs serve: expected DBDIR and MOUNT\n");
        return usage_of("serve");
    }
    o->dbdir = argv[optind];
    o->mount = argv[optind + 1];
    return resp_options_done(o, "serve");
}

struct live {
    JET_INSTANCE inst;
    JET_SESID ses;
    JET_DBID db;
    char dbpath[PATH_MAX];
};

static int open_instance(const struct serve_opts *o, struct live *lv)
{
    JET_ERR err;
    struct stat st;
    if (mkdir(o->dbdir, 0700) != 0 && errno != EEXIST) {
        say("cannot create %s: %s", o->dbdir, strerror(errno));
        return EXIT_FAIL;
    }
    if (stat(o->dbdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        say("%s is not a directory", o->dbdir);
        return EXIT_FAIL;
    }
    snprintf(lv->dbpath, sizeof lv->dbpath, "%s/%s", o->dbdir, JETFS_DB_NAME);
    if ((err = JetCreateInstance(&lv->inst, "jetfs")) < 0) return jet_fail("creating the instance", err);
    if ((err = JetSetSystemParameter(&lv->inst, 0, JET_paramSystemPath, 0, o->dbdir)) < 0 ||
        (err = JetSetSystemParameter(&lv->inst, 0, JET_paramLogFilePath, 0, o->dbdir)) < 0)
        return jet_fail("setting the instance paths", err);
    if (o->cache_size &&
        (err = JetSetSystemParameter(&lv->inst, 0, JET_paramCacheSizeMax, (JET_API_PTR)(o->cache_size / 8192), NULL)) < 0)
        return jet_fail("--cache-size", err);
    say("opening the instance in %s (recovering it if it was not shut down cleanly)", o->dbdir);
    if ((err = JetInit(&lv->inst)) < 0) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "cannot open the instance in %s", o->dbdir);
        lv->inst = 0;
        return jet_fail(what, err);
    }
    if ((err = JetBeginSession(lv->inst, &lv->ses, NULL, NULL)) < 0) return jet_fail("beginning a session", err);
    if (stat(lv->dbpath, &st) != 0) {
        if ((err = JetCreateDatabase(lv->ses, lv->dbpath, NULL, &lv->db, 0)) < 0)
            return jet_fail("creating the database", err);
        say("created %s", lv->dbpath);
    } else if ((err = JetAttachDatabase(lv->ses, lv->dbpath, 0)) < 0 ||
               (err = JetOpenDatabase(lv->ses, lv->dbpath, NULL, &lv->db, 0)) < 0) {
        return jet_fail(lv->dbpath, err);
    }
    return 0;
}

#ifdef JETFS_HAVE_RESP
/* What the Redis port's options name is checked before anything is opened:
 * the password file, protected mode, the TLS files.  EXIT_USAGE, said. */
static int resp_preflight(const struct serve_opts *o, char **pw, size_t *pwlen)
{
    char why[768];
    if (!o->listen && !o->tls_listen) return 0;
    if (o->requirepass_file && resp_password_read(o->requirepass_file, pw, pwlen, why, sizeof why) < 0) {
        say("%s", why);
        return EXIT_USAGE;
    }
    if ((o->listen && resp_check_exposure(o->listen_host, *pw != NULL, o->protected_off, why, sizeof why) < 0) ||
        (o->tls_listen && resp_check_exposure(o->tls_host, *pw != NULL, o->protected_off, why, sizeof why) < 0)) {
        say("%s", why);
        return EXIT_USAGE;
    }
    if (o->tls_listen && resp_tls_check(o->tls_cert, o->tls_key, o->tls_ca, why, sizeof why) < 0) {
        say("%s", why);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < o->ndisabled; i++)
        if (!resp_command_known(o->disabled[i])) {
            say("--disable-command: there is no command '%s'", o->disabled[i]);
            return EXIT_USAGE;
        }
    return 0;
}

static int resp_start(const struct serve_opts *o, JET_INSTANCE inst, const char *dbpath, bool read_only,
                      const char *pw, size_t pwlen, struct resp_server **resp)
{
    char why[768];
    struct resp_options ro = {
        .host = o->listen_host, .port = o->listen_port, .no_plain = !o->listen, .on_shutdown = request_shutdown,
        .max_clients = o->maxclients, .timeout_s = o->client_timeout, .max_bulk_bytes = o->max_bulk,
        .query_buffer_bytes = o->query_buffer, .password = pw, .password_len = pwlen,
        .protected_mode_off = o->protected_off, .disabled_commands = o->disabled, .ndisabled_commands = o->ndisabled,
        .read_only = read_only,
    };
    if (o->tls_listen) {
        ro.tls_host = o->tls_host;
        ro.tls_port = o->tls_port;
        ro.tls_cert_file = o->tls_cert;
        ro.tls_key_file = o->tls_key;
        ro.tls_ca_file = o->tls_ca;
    }
    if (resp_server_start(inst, dbpath, &ro, resp, why, sizeof why) < 0) {
        say("cannot serve clients on %s: %s", o->listen ? o->listen : o->tls_listen, why);
        return EXIT_FAIL;
    }
    if (o->listen) say("serving the Redis protocol on %s:%d", o->listen_host, resp_server_port(*resp));
    if (o->tls_listen)
        say("serving the Redis protocol over TLS on %s:%d%s", o->tls_host, resp_server_tls_port(*resp),
            o->tls_ca ? " (client certificates required)" : "");
    if (pw) say("clients must authenticate (AUTH; password from %s)", o->requirepass_file);
    return 0;
}
#endif

/*
 * What is wrong with MOUNT is said before the instance opens or a port is
 * bound: a missing directory, a file, or files a mount would hide.  Some
 * mount already there (a live jetfs serve, a stale one) is left to
 * jetfs_mount, which says which.
 */
static int mount_preflight(const struct serve_opts *o)
{
    struct stat st, parent;
    char up[PATH_MAX + 4];
    if (stat(o->mount, &st) != 0) {
        if (errno != ENOENT) return 0;
        fprintf(stderr, "jetfs serve: %s: no such directory (create the mount point first: mkdir -p %s)\n", o->mount,
                o->mount);
        return EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "jetfs serve: %s: not a directory (a mount point is one)\n", o->mount);
        return EXIT_USAGE;
    }
    snprintf(up, sizeof up, "%s/..", o->mount);
    if (stat(up, &parent) == 0 && parent.st_dev != st.st_dev) {
        char status[PATH_MAX + 16];
        snprintf(status, sizeof status, "%s/status", o->mount);
        if (access(status, F_OK) != 0) return 0; /* some other mount: jetfs_mount says which */
        fprintf(stderr,
                "jetfs serve: %s: a jetfs is serving there already; stop it (SIGTERM) or choose another mount point "
                "(fusermount3 -u would only end its backup session, and it mounts again)\n",
                o->mount);
        return EXIT_USAGE;
    }
    DIR *d = opendir(o->mount);
    struct dirent *e;
    long n = 0;
    char first[256] = "";
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !n++) snprintf(first, sizeof first, "%s", e->d_name);
    if (d) closedir(d);
    if (n && !o->nonempty) {
        fprintf(stderr,
                "jetfs serve: %s holds %ld file%s ('%s'%s): the mount would hide %s; give an empty directory, or "
                "--nonempty to mount over %s\n",
                o->mount, n, n == 1 ? "" : "s", first, n > 1 ? ", ..." : "", n == 1 ? "it" : "them",
                n == 1 ? "it" : "them");
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = {0};
    struct live lv = {0};
    int rc = parse_serve(argc, argv, &o);
    if (rc == HELP_SHOWN) return EXIT_SUCCESS;
    if (rc) return rc;
    if ((rc = mount_preflight(&o)) != 0) return rc;
#ifdef JETFS_HAVE_RESP
    char *pw = NULL;
    size_t pwlen = 0;
    if ((rc = resp_preflight(&o, &pw, &pwlen)) != 0) {
        resp_password_free(pw, pwlen);
        return rc;
    }
#endif

    if (start_signal_thread() != 0) return EXIT_FAIL;

#ifdef JETFS_HAVE_RESP
    struct resp_server *resp = NULL;
#endif
    if ((rc = open_instance(&o, &lv)) != 0) goto out;
#ifdef JETFS_HAVE_RESP
    if ((o.listen || o.tls_listen) && (rc = resp_start(&o, lv.inst, lv.dbpath, false, pw, pwlen, &resp)) != 0) goto out;
    resp_password_free(pw, pwlen); /* the server keeps only its digest */
    pw = NULL;
#else
    if (o.listen || o.tls_listen) {
        say("--listen: this build has no client protocol");
        rc = EXIT_FAIL;
        goto out;
    }
#endif
    const char *dbs[] = {lv.dbpath};
    struct jetfs_options fo = {
        .mountpoint = o.mount, .instance_name = o.dbdir, .db_paths = dbs, .ndb_paths = 1,
        .truncate_manual = o.truncate_manual, .group_access = o.group_access, .gid = o.gid,
        .space_limit = o.space_limit, .idle_timeout_s = o.idle_timeout, .debug = o.debug,
        .normal_priority = o.normal_priority, .mounts_again = !o.once, .log = session_event,
    };
    for (;;) {
        char why[1024], outcome[1024];
        struct jetfs *fs = NULL;
        pthread_mutex_lock(&srv.mu);
        bool stop = srv.shutting_down;
        pthread_mutex_unlock(&srv.mu);
        if (stop) break;
        if (jetfs_mount(lv.inst, &fo, &fs, why, sizeof why) < 0) {
            say("%s", why);
            rc = EXIT_FAIL;
            break;
        }
        pthread_mutex_lock(&srv.mu);
        srv.fs = fs;
        bool stopping = srv.shutting_down;
        if (stopping) jetfs_unmount(fs);
        pthread_mutex_unlock(&srv.mu);
        /* Ready only now: the instance is open, the listener accepts and
         * the tree is mounted (jetfs_mount returns with its loop serving);
         * never after STOPPING=1. */
        if (!stopping) notify_ready("%s mounted, waiting for a backup", o.mount);
        jetfs_wait(fs, outcome, sizeof outcome);
        pthread_mutex_lock(&srv.mu);
        srv.fs = NULL;
        pthread_mutex_unlock(&srv.mu);
        jetfs_free(fs);
        say("unmounted %s: %s", o.mount, outcome);
        if (o.once) break;
    }
out:
    notify_stopping();
#ifdef JETFS_HAVE_RESP
    if (resp) resp_server_stop(resp);
    resp_password_free(pw, pwlen);
#endif
    if (lv.inst) {
        JET_ERR err = JetTerm(lv.inst);
        if (err < 0) rc = jet_fail("shutting the instance down", err);
        else say("instance shut down cleanly");
    }
    return rc;
}

/* ---- browse ---- */

struct browse_opts {
    struct serve_opts resp; /* the Redis port's options (resp_option) */
    const char *mount;
    const char *sets[64];
    int nsets;
    unsigned long stop_gen;
    unsigned long long stop_us;
    uint64_t overlay_memory;
    bool debug;
};

static int parse_browse(int argc, char **argv, struct browse_opts *o)
{
    static const struct option longopts[] = {
        {"stop-gen", required_argument, NULL, 'G'}, {"stop-time", required_argument, NULL, 'S'},
        {"overlay-memory", required_argument, NULL, 'O'}, {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        RESP_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int r = resp_option(c, &o->resp);
        if (r == 0) continue;
        if (r != 1) return r;
        switch (c) {
        case 'G':
            if (stop_point_gen(optarg, &o->stop_gen) < 0 || !o->stop_gen) {
                fprintf(stderr, "jetfs browse: --stop-gen: '%s' is not a log generation\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'S':
            if (stop_point_time(optarg, &o->stop_us) < 0 || !o->stop_us) {
                fprintf(stderr,
                        "jetfs browse: --stop-time: '%s' is not a time (seconds since the epoch, or UTC as "
                        "2026-12-08T01:57:20Z)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'O':
            if (parse_size(optarg, &o->overlay_memory) < 0 || !o->overlay_memory) {
                fprintf(stderr, "jetfs browse: --overlay-memory: '%s' is not a size (like 256M or 1G)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'd': o->debug = true; break;
        case 'h': usage(0); return HELP_SHOWN;
        default: return bad_option("browse", argv);
        }
    }
    if (o->stop_gen && o->stop_us) {
        fprintf(stderr, "jetfs browse: give --stop-gen or --stop-time, not both\n");
        return EXIT_USAGE;
    }
    if (argc - optind < 2 || argc - optind > 65) {
        fprintf(stderr, "jetfs browse: expected MOUNT and one to 64 backup sets\n");
        return usage_of("browse");
    }
    o->mount = argv[optind];
    for (int i = optind + 1; i < argc; i++) o->sets[o->nsets++] = argv[i];
    return resp_options_done(&o->resp, "browse");
}

/* status's numbers, for the mount. */
static JET_ERR browse_info(void *arg, JET_BROWSEINFO *info)
{
    info->cbStruct = sizeof *info;
    return JetBrowseGetInfo(arg, info);
}

static int cmd_browse(int argc, char **argv)
{
    struct browse_opts o = {0};
    JET_BROWSE *br = NULL;
    int rc = parse_browse(argc, argv, &o);
    if (rc == HELP_SHOWN) return EXIT_SUCCESS;
    if (rc) return rc;
#ifdef JETFS_HAVE_RESP
    struct resp_server *resp = NULL;
    char *pw = NULL;
    size_t pwlen = 0;
    if ((rc = resp_preflight(&o.resp, &pw, &pwlen)) != 0) goto out;
#else
    if (o.resp.listen || o.resp.tls_listen) {
        say("--listen: this build has no client protocol");
        return EXIT_FAIL;
    }
#endif
    if (start_signal_thread() != 0) {
        rc = EXIT_FAIL;
        goto out;
    }
    /* A mount point that cannot be used is said before the replay, which
     * may take a while (the mount checks it again, fully). */
    struct stat mst;
    if (stat(o.mount, &mst) != 0) {
        say("mount point %s: %s", o.mount, strerror(errno));
        rc = EXIT_FAIL;
        goto out;
    }
    if (!S_ISDIR(mst.st_mode)) {
        say("mount point %s is not a directory", o.mount);
        rc = EXIT_FAIL;
        goto out;
    }
    /* The same checks as restore, then the replay into the overlay: a
     * set refused is said with restore's message, and nothing is mounted. */
    say("checking %d backup set(s) and replaying their logs%s", o.nsets,
        o.stop_gen || o.stop_us ? " to the stop point" : "");
    JET_BROWSEOPTS bo = {.cbStruct = sizeof bo, .cbOverlayMemory = o.overlay_memory};
    JET_ERR err = JetBrowseSets(o.sets, o.nsets, o.stop_gen, o.stop_us, &bo, &br);
    if (err < 0) {
        br = NULL;
        rc = jet_fail("browse refused", err);
        goto out;
    }
    JET_BROWSEINFO info = {.cbStruct = sizeof info};
    if ((err = JetBrowseGetInfo(br, &info)) < 0) {
        rc = jet_fail("reading the browse's state", err);
        goto out;
    }
    JET_INSTANCE inst = JetBrowseInstance(br);
#ifdef JETFS_HAVE_RESP
    if ((o.resp.listen || o.resp.tls_listen) &&
        (rc = resp_start(&o.resp, inst, info.szDatabase, true, pw, pwlen, &resp)) != 0)
        goto out;
    resp_password_free(pw, pwlen); /* the server keeps only its digest */
    pw = NULL;
#endif
    struct jetfs_browse_options fo = {
        .mountpoint = o.mount, .database = info.szDatabase, .us_point = info.usPoint, .sets = o.sets,
        .nsets = o.nsets, .info = browse_info, .info_arg = br, .debug = o.debug, .log = session_event,
    };
    struct jetfs_browse *b = NULL;
    char why[1024];
    pthread_mutex_lock(&srv.mu);
    bool stop = srv.shutting_down;
    pthread_mutex_unlock(&srv.mu);
    if (stop) goto out;
    if (jetfs_browse_mount(inst, &fo, &b, why, sizeof why) < 0) {
        say("%s", why);
        rc = EXIT_FAIL;
        goto out;
    }
    pthread_mutex_lock(&srv.mu);
    srv.browse = b;
    stop = srv.shutting_down;
    if (stop) jetfs_browse_unmount(b);
    pthread_mutex_unlock(&srv.mu);
    if (!stop) notify_ready("%s mounted: %d set(s) as of generation %lu", o.mount, o.nsets, info.genHigh);
    jetfs_browse_wait(b);
    pthread_mutex_lock(&srv.mu);
    srv.browse = NULL;
    pthread_mutex_unlock(&srv.mu);
    jetfs_browse_free(b); /* ends its sessions: before JetBrowseClose */
    say("unmounted %s", o.mount);
out:
    notify_stopping();
#ifdef JETFS_HAVE_RESP
    if (resp) resp_server_stop(resp);
    resp_password_free(pw, pwlen);
#endif
    if (br) {
        /* The overlay and the scratch directory go; the sets stay as they were. */
        err = JetBrowseClose(br);
        if (err < 0) rc = jet_fail("closing the browse", err);
    }
    return rc;
}

/* ---- end, status ---- */

static int open_status(const char *mount, int *pfd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/status", mount);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "jetfs: %s: %s (is a jetfs mounted there?)\n", path, strerror(errno));
        return EXIT_FAIL;
    }
    *pfd = fd;
    return 0;
}

static int print_status(const char *mount)
{
    int fd, rc = open_status(mount, &fd);
    if (rc) return rc;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) break;
    rc = n < 0 ? EXIT_FAIL : 0;
    close(fd);
    return rc;
}

/* The whole status text of an open status file (malloc'd, NUL-terminated), or NULL. */
static char *read_status_fd(int fd)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while (buf && (r = pread(fd, buf + n, cap - n, (off_t)n)) > 0) {
        n += (size_t)r;
        if (n == cap) {
            char *more = realloc(buf, 2 * cap + 1);
            if (!more) break;
            buf = more;
            cap *= 2;
        }
    }
    if (buf) buf[n] = '\0';
    return buf;
}

/*
 * Which mount MOUNT is now: a session's root directory carries its mount
 * time (nanoseconds) and a new mount may reuse the device number of the
 * one before, so both together.  False when MOUNT cannot be stat'ed.
 */
struct mount_id {
    dev_t dev;
    struct timespec mtime;
};
static bool mount_id_of(const char *mount, struct mount_id *id)
{
    struct stat st;
    if (stat(mount, &st) != 0) return false;
    id->dev = st.st_dev;
    id->mtime = st.st_mtim;
    return true;
}
static bool same_mount(const struct mount_id *a, const struct mount_id *b)
{
    return a->dev == b->dev && a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * After an explicit end the ended session unmounts (once `jetfs end` closed
 * status) and serve mounts a new one: waits until MOUNT is no longer the
 * ended session's mount and, when its status said a remount follows, until
 * the new session answers, so that the next backup can begin as soon as
 * end returns.  Polled with a deadline.  Returns false if that did not
 * happen in time.
 */
static bool wait_for_next_session(const char *mount, const struct mount_id *ended, bool remount)
{
    char status[PATH_MAX + 8];
    snprintf(status, sizeof status, "%s/status", mount);
    double deadline = mono_seconds() + JETFS_END_UNMOUNT_GRACE + 20;
    while (mono_seconds() < deadline) {
        struct mount_id now;
        if (mount_id_of(mount, &now) && !same_mount(&now, ended) && (!remount || access(status, F_OK) == 0))
            return true;
        struct timespec pause = {.tv_nsec = 20 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return false;
}

static int cmd_end(int argc, char **argv)
{
    bool abort_ = false;
    const char *mount = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--abort")) abort_ = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(0);
        else if (!mount && argv[i][0] != '-') mount = argv[i];
        else if (argv[i][0] == '-') return fprintf(stderr, "jetfs end: unknown option %s\n", argv[i]), usage_of("end");
        else return fprintf(stderr, "jetfs end: unexpected argument '%s'\n", argv[i]), usage_of("end");
    }
    if (!mount) return fprintf(stderr, "jetfs end: no MOUNT given\n"), usage_of("end");
    int fd, rc = open_status(mount, &fd);
    if (rc) return rc;
    struct mount_id ended_mount;
    bool known = mount_id_of(mount, &ended_mount);
    /* The ioctl answers 0 for a normal end, 1 for an abort. */
    int ended = ioctl(fd, abort_ ? JETFS_IOC_END_ABORT : JETFS_IOC_END_NORMAL);
    if (ended < 0) {
        int e = errno;
        if (e == EAGAIN)
            fprintf(stderr, "jetfs end: refused: not every byte of the set was read yet (see %s/status)\n", mount);
        else if (e == ENOENT)
            fprintf(stderr, "jetfs end: no backup is running on %s\n", mount);
        else
            fprintf(stderr, "jetfs end: %s\n", strerror(e));
        close(fd);
        return EXIT_FAIL;
    }
    /* The ended session's status, opened while fd still holds the session
     * mounted (it unmounts once no status is open). */
    int fd2 = -1;
    char *text = open_status(mount, &fd2) == 0 ? read_status_fd(fd2) : NULL;
    if (fd2 >= 0) close(fd2);
    close(fd);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    /* A server that predates the unmount at an explicit end has no "remount". */
    json_t *remount = doc ? json_object_get(doc, "remount") : NULL;
    bool unmounts = remount != NULL, mounts_again = json_is_true(remount);
    json_decref(doc);
    if (ended == 1 && !abort_)
        fprintf(stderr, "jetfs end: the backup was aborted instead of ending normally (see the outcome below)\n");
    else
        printf("jetfs end: %s\n", ended == 1 ? "aborted: nothing truncated, history unchanged" : "ended normally");
    if (text) fputs(text, stdout);
    fflush(stdout);
    free(text);
    if (unmounts && known) {
        if (wait_for_next_session(mount, &ended_mount, mounts_again)) {
            if (mounts_again) fprintf(stderr, "jetfs end: %s is mounted again for the next backup\n", mount);
        } else {
            fprintf(stderr, "jetfs end: %s was not %s within %d seconds (is a file of the ended set still open?)\n",
                    mount, mounts_again ? "mounted again" : "unmounted", JETFS_END_UNMOUNT_GRACE + 20);
        }
    }
    return ended == 1 && !abort_ ? EXIT_FAIL : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(EXIT_USAGE);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(0);
    if (!strcmp(argv[1], "--version")) return printf("jetfs %s\n", JETFS_VERSION) < 0;
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "browse")) return cmd_browse(argc - 1, argv + 1);
    if (!strcmp(argv[1], "end")) return cmd_end(argc - 1, argv + 1);
    if (!strcmp(argv[1], "status")) {
        if (argc != 3 || argv[2][0] == '-') return usage(argc == 3 && !strcmp(argv[2], "--help") ? 0 : EXIT_USAGE);
        return print_status(argv[2]);
    }
    fprintf(stderr, "jetfs: unknown command '%s'\n", argv[1]);
    return usage(EXIT_USAGE);
}

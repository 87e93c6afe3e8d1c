/*
 * resp_client.c -- the connection commands: what a client library sends
 * when it connects or manages its connection (HELLO, CLIENT ..., SELECT,
 * PING, ECHO, QUIT), and the answer to HELLO's AUTH option.
 *
 * Client libraries send some of these on every connect and go on only if
 * the answer is the one Redis gives, or an error they are written to
 * accept: redis-py sends CLIENT SETNAME and SELECT when asked to, and from
 * 5.0 CLIENT SETINFO (errors ignored) and HELLO 3 when asked for RESP3;
 * ioredis sends CLIENT SETINFO LIB-NAME/LIB-VER (errors ignored), CLIENT
 * SETNAME, SELECT and INFO (its ready check).  So each answer here is
 * Redis 7's, word for word, errors included:
 *
 *   - HELLO answers for protocol 2 as Redis does (the map as a flat
 *     array); 3 is refused "-NOPROTO unsupported protocol version", the
 *     error Redis gives a version it does not speak, after which every
 *     library falls back to RESP2 or reports it.  HELLO's AUTH and SETNAME
 *     options are parsed as Redis parses them; SETNAME is validated before
 *     AUTH is tried, and applied only when both pass.
 *   - One database, 0: SELECT 0 is OK, any other index is Redis's "DB
 *     index is out of range", as a server with `databases 1`.
 *   - CLIENT SETINFO keeps what the library says (CLIENT INFO shows it);
 *     names and attributes are limited to the printable characters '!'..'~',
 *     as Redis limits them.
 *
 * Authentication: jetfs has no password of its own here, so it answers as
 * Redis does with none configured.  resp_client_auth is the one place that
 * decides; the listener's AUTH support points it at its check.
 *
 * Every handler runs with no engine session (RESP_CMD_NO_DATA in the
 * table): these answer even after the instance failed.  A handler only
 * appends to c->out and changes the connection's own fields.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "resp.h"
#include "resp_auth.h"
#include "resp_commands.h"

/* ---- helpers ---- */

/* Redis's rule for client names and SETINFO values: printable ASCII,
 * no spaces. */
static bool attr_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~') return false;
    return true;
}

/* A valid client name fitting c->name, else replies why (Redis's text for
 * the characters) and returns false. */
static bool name_ok(struct resp_client *c, const char *name, size_t n)
{
    if (!attr_ok(name, n)) {
        resp_reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    if (n >= sizeof c->name) {
        resp_reply_error(&c->out, "ERR Client names are limited to %zu bytes by jetfs", sizeof c->name - 1);
        return false;
    }
    return true;
}

static void name_set(struct resp_client *c, const char *name, size_t n)
{
    memcpy(c->name, name, n);
    c->name[n] = '\0';
}

static void subcommand_arity_error(struct resp_client *c, const char *sub, size_t n)
{
    char lower[33];
    size_t k = n < sizeof lower - 1 ? n : sizeof lower - 1;
    for (size_t i = 0; i < k; i++) lower[i] = (char)(sub[i] >= 'A' && sub[i] <= 'Z' ? sub[i] - 'A' + 'a' : sub[i]);
    lower[k] = '\0';
    resp_reply_error(&c->out, "ERR wrong number of arguments for 'client|%s' command", lower);
}

/* ---- authentication ---- */

bool resp_client_auth(struct resp_client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    if (c->sh->auth.required) return resp_auth_try(c, user, ulen, pass, plen);
    /* No password is configured, so the default user has none ("nopass"):
     * Redis refuses the one-argument form as a likely mistake and accepts
     * any password for "default". */
    if (!user) {
        resp_reply_error(&c->out, "ERR AUTH <password> called without any password configured for the default user. "
                                  "Are you sure your configuration is correct?");
        return false;
    }
    if (ulen == 7 && memcmp(user, "default", 7) == 0) return true;
    resp_reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
    return false;
}

/* ---- PING, ECHO, SELECT, QUIT ---- */

JET_ERR cmd_ping(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    if (argc > 2) resp_reply_error(&c->out, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 2) resp_reply_bulk(&c->out, argv[1], len[1]);
    else resp_reply_status(&c->out, "PONG");
    return JET_errSuccess;
}

JET_ERR cmd_echo(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc;
    resp_reply_bulk(&c->out, argv[1], len[1]);
    return JET_errSuccess;
}

JET_ERR cmd_select(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long db;
    (void)argc;
    if (!resp_parse_int64(argv[1], len[1], &db)) resp_reply_error(&c->out, "ERR value is not an integer or out of range");
    else if (db != 0) resp_reply_error(&c->out, "ERR DB index is out of range");
    else resp_reply_status(&c->out, "OK");
    return JET_errSuccess;
}

JET_ERR cmd_quit(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    (void)argc, (void)argv, (void)len;
    resp_reply_status(&c->out, "OK");
    c->quit = true;
    return JET_errSuccess;
}

/* ---- CLIENT ---- */

/*
 * CLIENT INFO's line: Redis's fields in Redis's order (redis-py's parser
 * requires every numeric one), less the addresses and fd, which a client
 * does not know here.  The input buffer is the listener's and is not seen
 * here either: qbuf, qbuf-free and argv-mem are 0; idle is 0 since this
 * very command is the client's last.
 */
static void client_info(struct resp_client *c)
{
    char line[768];
    long long age = (long long)(time(NULL) - c->since);
    unsigned long long omem = c->out.len, multi_mem = c->queue_bytes;
    unsigned long long tot = c->out.cap + c->scratch_cap + c->queue_bytes + c->saved_cap;
    int n = snprintf(line, sizeof line,
                     "id=%llu name=%s age=%lld idle=0 flags=%s db=0 sub=0 psub=0 ssub=0 multi=%lld qbuf=0 "
                     "qbuf-free=0 argv-mem=0 multi-mem=%llu obl=0 oll=0 omem=%llu tot-mem=%llu events=r "
                     "cmd=client|info user=default redir=-1 resp=2 lib-name=%s lib-ver=%s\n",
                     (unsigned long long)c->id, c->name, age < 0 ? 0 : age, c->in_multi ? "x" : "N",
                     c->in_multi ? (long long)c->nqueue : -1LL, multi_mem, omem, tot, c->lib_name, c->lib_ver);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    resp_reply_bulk(&c->out, line, (size_t)n);
}

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "NO-EVICT (ON|OFF)",
    "    Accepted; jetfs evicts no keys.",
    "NO-TOUCH (ON|OFF)",
    "    Accepted; jetfs keeps no access times.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
};

static void client_setinfo(struct resp_client *c, char **argv, size_t *len)
{
    char *dst;
    size_t cap;
    if (resp_arg_is(argv[2], "lib-name")) {
        dst = c->lib_name;
        cap = sizeof c->lib_name;
    } else if (resp_arg_is(argv[2], "lib-ver")) {
        dst = c->lib_ver;
        cap = sizeof c->lib_ver;
    } else {
        resp_reply_error(&c->out, "ERR Unrecognized option '%.64s'", argv[2]);
        return;
    }
    if (!attr_ok(argv[3], len[3])) {
        resp_reply_error(&c->out, "ERR %.64s cannot contain spaces, newlines or special characters.", argv[2]);
        return;
    }
    if (len[3] >= cap) {
        resp_reply_error(&c->out, "ERR %.64s is limited to %zu bytes by jetfs", argv[2], cap - 1);
        return;
    }
    memcpy(dst, argv[3], len[3]);
    dst[len[3]] = '\0';
    resp_reply_status(&c->out, "OK");
}

JET_ERR cmd_client(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    struct {
        const char *name;
        size_t argc; /* exact, the command and subcommand included */
    } subs[] = {{"setname", 3}, {"getname", 2},  {"id", 2},       {"setinfo", 4},
                {"info", 2},    {"no-evict", 3}, {"no-touch", 3}, {"help", 2}};
    size_t k, nsubs = sizeof subs / sizeof subs[0];
    for (k = 0; k < nsubs; k++)
        if (resp_arg_is(argv[1], subs[k].name)) break;
    if (k == nsubs) {
        resp_reply_error(&c->out, "ERR unknown subcommand '%.128s'. Try CLIENT HELP.", argv[1]);
        return JET_errSuccess;
    }
    if (argc != subs[k].argc) {
        subcommand_arity_error(c, argv[1], len[1]);
        return JET_errSuccess;
    }
    switch (k) {
    case 0: /* SETNAME: an empty name clears it, as in Redis */
        if (name_ok(c, argv[2], len[2])) {
            name_set(c, argv[2], len[2]);
            resp_reply_status(&c->out, "OK");
        }
        break;
    case 1:
        if (c->name[0]) resp_reply_bulk_str(&c->out, c->name);
        else resp_reply_nil(&c->out);
        break;
    case 2:
        resp_reply_int(&c->out, (long long)c->id);
        break;
    case 3:
        client_setinfo(c, argv, len);
        break;
    case 4:
        client_info(c);
        break;
    case 5:
    case 6:
        if (resp_arg_is(argv[2], "on") || resp_arg_is(argv[2], "off")) resp_reply_status(&c->out, "OK");
        else resp_reply_error(&c->out, "ERR syntax error");
        break;
    default:
        resp_reply_array(&c->out, sizeof client_help / sizeof client_help[0]);
        for (size_t i = 0; i < sizeof client_help / sizeof client_help[0]; i++)
            resp_reply_status(&c->out, client_help[i]);
        break;
    }
    return JET_errSuccess;
}

/* ---- HELLO ---- */

/* HELLO [protover [AUTH username password] [SETNAME clientname]] */
JET_ERR cmd_hello(struct resp_client *c, size_t argc, char **argv, size_t *len)
{
    long long ver = 2;
    size_t i = 1;
    const char *user = NULL, *pass = NULL, *name = NULL;
    size_t ulen = 0, plen = 0, nlen = 0;

    if (argc >= 2) {
        if (!resp_parse_int64(argv[1], len[1], &ver)) {
            resp_reply_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return JET_errSuccess;
        }
        /* 3 is Redis's too, but jetfs speaks RESP2 only: refused as Redis
         * refuses a version it does not know, which libraries handle. */
        if (ver != 2) {
            resp_reply_error(&c->out, "NOPROTO unsupported protocol version");
            return JET_errSuccess;
        }
        i = 2;
    }
    for (; i < argc; i++) {
        size_t more = argc - 1 - i;
        if (resp_arg_is(argv[i], "auth") && more >= 2) {
            user = argv[i + 1];
            ulen = len[i + 1];
            pass = argv[i + 2];
            plen = len[i + 2];
            i += 2;
        } else if (resp_arg_is(argv[i], "setname") && more >= 1) {
            name = argv[i + 1];
            nlen = len[i + 1];
            if (!name_ok(c, name, nlen)) return JET_errSuccess;
            i += 1;
        } else {
            resp_reply_error(&c->out, "ERR Syntax error in HELLO option '%.128s'", argv[i]);
            return JET_errSuccess;
        }
    }
    if (user && !resp_client_auth(c, user, ulen, pass, plen)) return JET_errSuccess;
    if (!c->authenticated) {
        resp_reply_error(&c->out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                                  "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                                  "select the RESP protocol version at the same time");
        return JET_errSuccess;
    }
    if (name) name_set(c, name, nlen);

    resp_reply_array(&c->out, 14);
    resp_reply_bulk_str(&c->out, "server");
    resp_reply_bulk_str(&c->out, "jetfs");
    resp_reply_bulk_str(&c->out, "version");
    resp_reply_bulk_str(&c->out, RESP_VERSION);
    resp_reply_bulk_str(&c->out, "proto");
    resp_reply_int(&c->out, 2);
    resp_reply_bulk_str(&c->out, "id");
    resp_reply_int(&c->out, (long long)c->id);
    resp_reply_bulk_str(&c->out, "mode");
    resp_reply_bulk_str(&c->out, "standalone");
    resp_reply_bulk_str(&c->out, "role");
    resp_reply_bulk_str(&c->out, "master");
    resp_reply_bulk_str(&c->out, "modules");
    resp_reply_array(&c->out, 0);
    return JET_errSuccess;
}

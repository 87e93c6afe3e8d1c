/*
 * resp_server.c -- the listener, the connections and their threads.
 *
 * Threads: one acceptor, and one thread per connection (each connection
 * has its own engine session, and sessions are single-threaded).  The
 * acceptor polls the listening socket and a self-pipe ("wake"); a
 * connection thread writes a byte to the pipe when it finishes, so the
 * acceptor joins it promptly, and resp_server_stop writes one to make the
 * acceptor exit.
 *
 * A connection thread loops: execute every complete request in its input
 * buffer, send the replies, read more.  Replies are sent only between
 * requests, never while an engine transaction is open (resp_commands.c),
 * and only after the write they answer has committed durably: flush_out
 * waits once for the connection's last (lazy) commit before sending, so
 * the writes of one pipelined batch share a single fsync.  A protocol
 * error is replied to, then the connection is closed; other connections
 * are unaffected.
 *
 * Memory per connection: the input buffer holds at most one incomplete
 * request (complete ones are executed before reading again), whose size
 * the parser bounds; it grows by at most doubling what has arrived, so an
 * announced length costs nothing until its bytes come.  Output is sent
 * whenever OUT_FLUSH bytes are pending between requests.
 *
 * Lifetime of a connection: the acceptor creates it (fd open, counted in
 * sh.clients, linked into srv->conns) and starts its thread; the thread
 * finishes (engine handles closed, sh.clients decremented, finished set)
 * but never closes its fd; whoever joins the thread (the acceptor's reap,
 * or resp_server_stop) unlinks it, closes the fd and frees it.  Because the
 * fd stays open until after the join, resp_server_stop may shutdown(2) any
 * linked connection's fd without racing a reuse of the number.
 *
 * SHUTDOWN calls opt->on_shutdown from the connection thread after that
 * connection has ended its engine session.  If on_shutdown calls
 * resp_server_stop itself, stop detects that it runs on a connection
 * thread of this server (tl_conn), detaches that thread instead of joining
 * it, and tells it through tl_server_gone to touch nothing once
 * on_shutdown returns.
 *
 * Locking: srv->mu protects conns and stopping.  The acceptor is the only
 * thread that adds connections and increments sh.clients, so the
 * max_clients check needs no further lock.  Lock order: srv->mu, then
 * sh.cursor_mu (never both in practice).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resp.h"
#include "resp_commands.h"

#define READ_CHUNK (16u << 10)
#define IN_KEEP (1u << 20)   /* an idle input buffer larger than this is freed */
#define OUT_FLUSH (64u << 10)
#define OUT_KEEP (1u << 20)
#define CONN_STACK (2u << 20)
#define MAX_CLIENTS_DEFAULT 1024

struct resp_conn {
    struct resp_server *srv;
    int fd;
    pthread_t thread;
    atomic_bool finished;
    struct resp_conn *next, *prev;
};

struct resp_server {
    struct resp_shared sh;
    int listen_fd;
    int wake[2];
    pthread_t acceptor;
    bool acceptor_started;
    pthread_mutex_t mu; /* protects conns, stopping */
    struct resp_conn *conns;
    bool stopping;
};

/* The connection the calling thread serves (NULL on other threads). */
static _Thread_local struct resp_conn *tl_conn;
/* Set by resp_server_stop called from on_shutdown on that thread. */
static _Thread_local bool tl_server_gone;

static void wake_acceptor(struct resp_server *srv)
{
    ssize_t n;
    do n = write(srv->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so the acceptor will wake anyway. */
}

/* ---- a connection ---- */

struct inbuf {
    char *data;
    size_t start, len, cap; /* unconsumed bytes are data[start, len) */
};

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool flush_out(struct resp_conn *cn, struct resp_client *c)
{
    if (c->out.oom) return false;
    /* One durable wait for everything this batch wrote (resp_commands.h). */
    if (!resp_client_durable(c)) return false;
    bool ok = send_all(cn->fd, c->out.data, c->out.len);
    c->out.len = 0;
    resp_buf_shrink(&c->out, OUT_KEEP);
    return ok;
}

/*
 * Room for at least READ_CHUNK more bytes, or for the bulk in progress.
 * The buffer at least doubles when it grows, so a large request (a 40 MB
 * MSET of many small arguments) is copied a bounded number of times, not
 * once per READ_CHUNK; and it never grows by more than what has already
 * arrived, so a client that only announces a huge bulk gets no memory for
 * it.  The parser's limits bound the whole.
 */
static bool in_reserve(struct inbuf *in, size_t wanted)
{
    size_t need = READ_CHUNK;
    if (wanted > need) need = wanted < in->len ? wanted : (in->len > need ? in->len : need);
    if (in->cap - in->len >= need) return true;
    size_t ncap = in->len + need, doubled = in->cap * 2, bound = in->len * 2 + READ_CHUNK;
    if (doubled > bound) doubled = bound;
    if (doubled > ncap) ncap = doubled;
    char *nd = realloc(in->data, ncap);
    if (!nd) return false;
    in->data = nd;
    in->cap = ncap;
    return true;
}

static void in_compact(struct inbuf *in)
{
    if (in->start == 0) return;
    memmove(in->data, in->data + in->start, in->len - in->start);
    in->len -= in->start;
    in->start = 0;
    if (in->len == 0 && in->cap > IN_KEEP) {
        free(in->data);
        in->data = NULL;
        in->cap = 0;
    }
}

/* Executes every complete request in the buffer; false: close the connection. */
static bool execute_pending(struct resp_conn *cn, struct resp_client *c, struct resp_parser *p, struct inbuf *in,
                            char ***argv, size_t *argv_cap)
{
    while (in->start < in->len) {
        char *base = in->data + in->start;
        enum resp_parse_result r = resp_parse(p, base, in->len - in->start);
        if (r == RESP_PARSE_MORE) return true;
        if (r == RESP_PARSE_ERROR) {
            resp_reply_error(&c->out, "ERR %s", p->err);
            flush_out(cn, c);
            return false;
        }
        if (p->argc) {
            if (p->argc > *argv_cap) {
                char **na = realloc(*argv, p->argc * sizeof *na);
                if (!na) return false;
                *argv = na;
                *argv_cap = p->argc;
            }
            for (size_t i = 0; i < p->argc; i++) (*argv)[i] = base + p->off[i];
            resp_execute(c, p->argc, *argv, p->len);
        }
        in->start += p->consumed;
        resp_parser_reset(p);
        if (c->shutdown || c->quit) {
            flush_out(cn, c);
            return false;
        }
        if (c->out.oom) return false;
        if (c->out.len >= OUT_FLUSH && !flush_out(cn, c)) return false;
    }
    return true;
}

static void serve(struct resp_conn *cn, struct resp_client *c)
{
    struct resp_parser p;
    struct inbuf in = {0};
    char **argv = NULL;
    size_t argv_cap = 0;

    resp_parser_init(&p, &c->sh->lim);
    for (;;) {
        if (!execute_pending(cn, c, &p, &in, &argv, &argv_cap)) break;
        if (c->out.len && !flush_out(cn, c)) break;
        in_compact(&in);
        if (!in_reserve(&in, resp_parse_wanted(&p, in.len))) {
            resp_reply_error(&c->out, "ERR out of memory reading the request");
            flush_out(cn, c);
            break;
        }
        ssize_t n = recv(cn->fd, in.data + in.len, in.cap - in.len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        in.len += (size_t)n;
    }
    free(argv);
    free(in.data);
    resp_parser_free(&p);
}

static void *conn_main(void *arg)
{
    struct resp_conn *cn = arg;
    struct resp_server *srv = cn->srv;
    struct resp_client c;
    char why[200] = "";

    tl_conn = cn;
    JET_ERR err = resp_client_open(&c, &srv->sh, why, sizeof why);
    if (err == JET_errInstanceUnavailable) {
        serve(cn, &c); /* only what needs no session: INFO says why */
    } else if (err < 0) {
        resp_reply_error(&c.out, "ERR jetfs cannot serve this connection: %s", why);
        flush_out(cn, &c);
    } else {
        serve(cn, &c);
    }
    bool shutdown_requested = c.shutdown;
    resp_client_close(&c);
    atomic_fetch_sub(&srv->sh.clients, 1);
    if (shutdown_requested) {
        shutdown(cn->fd, SHUT_RDWR); /* the client sees the close at once */
        if (srv->sh.on_shutdown) srv->sh.on_shutdown(srv->sh.on_shutdown_arg);
        if (tl_server_gone) return NULL; /* stopped from on_shutdown: cn and srv are freed */
    }
    atomic_store(&cn->finished, true);
    wake_acceptor(srv);
    return NULL;
}

/* ---- the acceptor ---- */

static void conn_free(struct resp_conn *cn)
{
    close(cn->fd);
    free(cn);
}

/* Joins and frees finished connections. */
static void reap(struct resp_server *srv)
{
    struct resp_conn *done = NULL;
    pthread_mutex_lock(&srv->mu);
    for (struct resp_conn *cn = srv->conns, *next; cn; cn = next) {
        next = cn->next;
        if (!atomic_load(&cn->finished)) continue;
        if (cn->prev) cn->prev->next = cn->next;
        else srv->conns = cn->next;
        if (cn->next) cn->next->prev = cn->prev;
        cn->next = done;
        done = cn;
    }
    pthread_mutex_unlock(&srv->mu);
    while (done) {
        struct resp_conn *cn = done;
        done = cn->next;
        pthread_join(cn->thread, NULL);
        conn_free(cn);
    }
}

static void refuse(int fd, const char *msg)
{
    ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* best effort: the connection is being closed */
    close(fd);
}

static void accept_one(struct resp_server *srv)
{
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: back off instead of spinning on poll. */
            struct pollfd w = {srv->wake[0], POLLIN, 0};
            int r = poll(&w, 1, 50);
            (void)r;
        }
        return;
    }
    atomic_fetch_add(&srv->sh.connections, 1);
    if (atomic_load(&srv->sh.clients) >= srv->sh.max_clients) {
        atomic_fetch_add(&srv->sh.rejected, 1);
        refuse(fd, "-ERR max number of clients reached\r\n");
        return;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        /* not TCP, or not supported: latency only */
    }
    struct resp_conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        refuse(fd, "-ERR out of memory\r\n");
        return;
    }
    cn->srv = srv;
    cn->fd = fd;
    atomic_init(&cn->finished, false);
    atomic_fetch_add(&srv->sh.clients, 1);
    pthread_mutex_lock(&srv->mu);
    cn->next = srv->conns;
    if (srv->conns) srv->conns->prev = cn;
    srv->conns = cn;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        if (pthread_attr_setstacksize(&attr, CONN_STACK) != 0) {
            /* keep the default stack size */
        }
        rc = pthread_create(&cn->thread, &attr, conn_main, cn);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        srv->conns = cn->next;
        if (cn->next) cn->next->prev = NULL;
    }
    pthread_mutex_unlock(&srv->mu);
    if (rc != 0) {
        atomic_fetch_sub(&srv->sh.clients, 1);
        refuse(fd, "-ERR cannot start a thread for this connection\r\n");
        free(cn);
    }
}

static void *accept_main(void *arg)
{
    struct resp_server *srv = arg;
    for (;;) {
        struct pollfd pfd[2] = {{srv->listen_fd, POLLIN, 0}, {srv->wake[0], POLLIN, 0}};
        int r = poll(pfd, 2, -1);
        if (r < 0 && errno != EINTR) break;
        if (r > 0 && pfd[1].revents) {
            char drain[64];
            while (read(srv->wake[0], drain, sizeof drain) > 0) {
            }
        }
        reap(srv);
        pthread_mutex_lock(&srv->mu);
        bool stopping = srv->stopping;
        pthread_mutex_unlock(&srv->mu);
        if (stopping) break;
        if (r > 0 && (pfd[0].revents & POLLIN)) accept_one(srv);
    }
    return NULL;
}

/* ---- start / stop ---- */

static int listen_on(const char *host, int port, int *pport, char *why, size_t cbwhy)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, rc = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        snprintf(why, cbwhy, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
            rc = -errno;
            close(fd);
            fd = -1;
            continue;
        }
        break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, cbwhy, "cannot listen on %s:%d: %s", host, port, strerror(-rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "getsockname: %s", strerror(errno));
        close(fd);
        return rc;
    }
    *pport = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int resp_server_start(JET_INSTANCE inst, const char *dbpath, const struct resp_options *opt,
                      struct resp_server **out, char *why, size_t cbwhy)
{
    struct resp_options defaults = {0};
    struct resp_server *srv = NULL;
    int rc;

    *out = NULL;
    if (cbwhy) why[0] = '\0';
    if (!opt) opt = &defaults;
    if (!dbpath || opt->port < 0 || opt->port > 65535) {
        snprintf(why, cbwhy, "invalid database path or port");
        return JET_errInvalidParameter;
    }
    if ((rc = (int)resp_table_ensure(inst, dbpath, why, cbwhy)) < 0) return rc;
    if (!(srv = calloc(1, sizeof *srv))) {
        snprintf(why, cbwhy, "out of memory");
        return JET_errOutOfMemory;
    }
    srv->listen_fd = srv->wake[0] = srv->wake[1] = -1;
    struct resp_shared *sh = &srv->sh;
    sh->inst = inst;
    sh->max_clients = opt->max_clients ? opt->max_clients : MAX_CLIENTS_DEFAULT;
    sh->lim.max_request = opt->max_request_bytes;
    resp_limits_default(&sh->lim);
    sh->on_shutdown = opt->on_shutdown;
    sh->on_shutdown_arg = opt->on_shutdown_arg;
    sh->started = time(NULL);
    sh->next_cursor = (uint64_t)sh->started << 16; /* see resp_keyspace.c */
    if (pthread_mutex_init(&sh->cursor_mu, NULL) != 0) {
        free(srv);
        snprintf(why, cbwhy, "cannot create a mutex");
        return -ENOMEM;
    }
    if (pthread_mutex_init(&srv->mu, NULL) != 0) {
        rc = -ENOMEM;
        snprintf(why, cbwhy, "cannot create a mutex");
        goto out_cursor_mu;
    }
    if (!(sh->dbpath = strdup(dbpath))) {
        rc = JET_errOutOfMemory;
        snprintf(why, cbwhy, "out of memory");
        goto out_mu;
    }
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "pipe: %s", strerror(errno));
        goto out_path;
    }
    if ((srv->listen_fd = listen_on(opt->host ? opt->host : "127.0.0.1", opt->port, &sh->port, why, cbwhy)) < 0) {
        rc = srv->listen_fd;
        goto out_pipe;
    }
    if ((rc = pthread_create(&srv->acceptor, NULL, accept_main, srv)) != 0) {
        snprintf(why, cbwhy, "cannot start the accept thread: %s", strerror(rc));
        rc = -rc;
        goto out_listen;
    }
    srv->acceptor_started = true;
    *out = srv;
    return 0;

out_listen:
    close(srv->listen_fd);
out_pipe:
    close(srv->wake[0]);
    close(srv->wake[1]);
out_path:
    free(sh->dbpath);
out_mu:
    pthread_mutex_destroy(&srv->mu);
out_cursor_mu:
    pthread_mutex_destroy(&sh->cursor_mu);
    free(srv);
    return rc;
}

int resp_server_port(const struct resp_server *srv)
{
    return srv->sh.port;
}

void resp_server_stop(struct resp_server *srv)
{
    if (!srv) return;
    struct resp_conn *self = tl_conn && tl_conn->srv == srv ? tl_conn : NULL;

    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_mutex_unlock(&srv->mu);
    wake_acceptor(srv);
    if (srv->acceptor_started) pthread_join(srv->acceptor, NULL);
    close(srv->listen_fd);

    /* No thread adds connections any more; wake every one out of recv/send. */
    pthread_mutex_lock(&srv->mu);
    struct resp_conn *list = srv->conns;
    srv->conns = NULL;
    for (struct resp_conn *cn = list; cn; cn = cn->next)
        if (cn != self) shutdown(cn->fd, SHUT_RDWR);
    pthread_mutex_unlock(&srv->mu);
    while (list) {
        struct resp_conn *cn = list;
        list = cn->next;
        if (cn == self) {
            pthread_detach(cn->thread);
            tl_server_gone = true;
            tl_conn = NULL;
        } else {
            pthread_join(cn->thread, NULL);
        }
        conn_free(cn);
    }
    close(srv->wake[0]);
    close(srv->wake[1]);
    free(srv->sh.dbpath);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->sh.cursor_mu);
    free(srv);
}

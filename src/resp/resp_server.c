/*
 * resp_server.c -- the listener and the connections, served by one thread.
 *
 * One thread (the loop) does everything, as Redis does: it polls (epoll)
 * the listening socket, a self-pipe ("wake") and every connection; for each
 * connection with input it reads what has arrived and executes every
 * complete request (each connection has its own engine session; writes
 * commit lazily, resp_commands.h).  Once every ready connection has been
 * served, the turn's writes are made durable by the syncer thread -- one
 * fsync for all of them, since a log flush covers everything appended
 * before it -- while the loop goes on serving the next turn; when the
 * syncer's round is done (sync_pipe), the replies that waited for it are
 * sent.  So a turn costs one fsync however many clients wrote in it, the
 * CPU work of one turn overlaps the fsync of the one before, and a reply
 * never leaves before the writes it answers are durable.  A turn that
 * wrote nothing, with no round in flight, sends at once.  The engine calls
 * block (a page read), as Redis's do.
 *
 * Replies are sent only between requests, never while an engine
 * transaction is open (a connection's write batch is committed before the
 * loop moves on, so no session holds the engine's write lock while another
 * waits for it on this same thread), and only after the writes they answer
 * are durable: flush_out waits for the connection's last commit first.  A
 * protocol error is replied to, then the connection is closed; other
 * connections are unaffected.  Sends block, bounded by SEND_TIMEOUT_S: a
 * client that stops reading its replies is disconnected, not waited for.
 *
 * Memory per connection: the input buffer holds at most one incomplete
 * request (complete ones are executed before reading again), whose size
 * the parser bounds; it grows by at most doubling what has arrived, so an
 * announced length costs nothing until its bytes come.  Output is sent
 * whenever OUT_FLUSH bytes are pending between requests.
 *
 * SHUTDOWN calls opt->on_shutdown from the loop thread, after that
 * connection has ended its engine session.  If on_shutdown calls
 * resp_server_stop itself, stop sees it runs on the loop (tl_loop), marks
 * the server to be freed by the loop when the callback returns, and
 * detaches the loop thread instead of joining it.
 *
 * Locking: srv->mu protects stopping and self_stop (read by the loop,
 * written by resp_server_stop); srv->sync_mu the syncer's request and
 * progress.  Everything else belongs to the loop.  Never both at once.
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "resp.h"
#include "resp_commands.h"

#define READ_CHUNK (16u << 10)
#define IN_KEEP (1u << 20)   /* an idle input buffer larger than this is freed */
#define OUT_FLUSH (64u << 10)
#define OUT_KEEP (1u << 20)
#define SEND_TIMEOUT_S 10
#define READ_TURN (1u << 20)   /* most bytes read from one connection per turn */
#define MAX_CLIENTS_DEFAULT 1024

struct inbuf {
    char *data;
    size_t start, len, cap; /* unconsumed bytes are data[start, len) */
};

struct resp_conn {
    struct resp_server *srv;
    int fd;
    struct resp_client c;
    struct resp_parser p;
    struct inbuf in;
    char **argv;
    size_t argv_cap;
    bool closing;              /* close once its output is sent */
    uint64_t out_turn;         /* its output waits for the syncer's round (0: it does not) */
    struct resp_conn *next, *prev;
    struct resp_conn *ready_next;  /* served in this turn */
    struct resp_conn *wait_next;   /* on srv->waiting */
};

struct resp_server {
    struct resp_shared sh;
    int listen_fd;
    int wake[2];
    int ep;
    pthread_t loop;
    bool loop_started;
    pthread_mutex_t mu; /* protects stopping, self_stop */
    struct resp_conn *conns;
    bool stopping;
    bool self_stop;     /* resp_server_stop ran on the loop: it frees the server */
    /* The syncer: makes each turn's writes durable while the loop serves
     * the next turn (see the header comment).  sync_mu protects the four
     * fields below it; the loop alone touches turn and waiting. */
    pthread_t syncer;
    bool syncer_started;
    JET_SESID sync_ses;
    int sync_pipe[2];   /* syncer -> loop: a round is done */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t sync_requested, sync_done;
    bool sync_failed, sync_stop;
    uint64_t turn;
    struct resp_conn *waiting;
};

/* The server whose loop runs on the calling thread (NULL elsewhere). */
static _Thread_local struct resp_server *tl_loop;

static void wake_loop(struct resp_server *srv)
{
    ssize_t n;
    do n = write(srv->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so the loop will wake anyway. */
}

/* ---- a connection ---- */

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

/* Sends the pending output (once its writes are durable) and empties it. */
static bool send_out(struct resp_conn *cn, struct resp_client *c)
{
    bool ok = !c->out.oom && (!c->out.len || send_all(cn->fd, c->out.data, c->out.len));
    c->out.len = 0;
    resp_buf_shrink(&c->out, OUT_KEEP);
    return ok;
}

/* Sends now, waiting first for this client's own writes: for output that
 * cannot wait for the turn's end (a full buffer, the last words before a
 * close). */
static bool flush_out(struct resp_conn *cn, struct resp_client *c)
{
    if (c->out.oom) return false;
    /* One durable wait for everything this batch wrote (resp_commands.h). */
    if (!resp_client_durable(c)) return false;
    return send_out(cn, c);
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

/* Executes every complete request in the buffer; false: close the
 * connection.  Nothing is sent, and it does not return, while a write
 * batch is open (resp_commands.h): the batch is committed first. */
static bool execute_pending(struct resp_conn *cn, struct resp_client *c, struct resp_parser *p, struct inbuf *in,
                            char ***argv, size_t *argv_cap)
{
    while (in->start < in->len) {
        char *base = in->data + in->start;
        enum resp_parse_result r = resp_parse(p, base, in->len - in->start);
        if (r == RESP_PARSE_MORE) break;
        if (r == RESP_PARSE_ERROR) {
            resp_batch_end(c);
            resp_reply_error(&c->out, "ERR %s", p->err);
            flush_out(cn, c);
            return false;
        }
        if (p->argc) {
            if (p->argc > *argv_cap) {
                char **na = realloc(*argv, p->argc * sizeof *na);
                if (!na) {
                    resp_batch_end(c);
                    return false;
                }
                *argv = na;
                *argv_cap = p->argc;
            }
            for (size_t i = 0; i < p->argc; i++) (*argv)[i] = base + p->off[i];
            resp_execute(c, p->argc, *argv, p->len);
        }
        in->start += p->consumed;
        resp_parser_reset(p);
        if (c->shutdown || c->quit) {
            /* Both end the batch before they run (resp_commands.c). */
            flush_out(cn, c);
            return false;
        }
        if (c->out.oom) {
            resp_batch_end(c);
            return false;
        }
        if (c->out.len >= OUT_FLUSH) {
            resp_batch_end(c);
            if (!flush_out(cn, c)) return false;
        }
    }
    resp_batch_end(c);
    return true;
}

/* Reads what has arrived and executes it; sets closing when the
 * connection must go (end of input, an error, QUIT, SHUTDOWN). */
static void conn_input(struct resp_conn *cn)
{
    struct resp_client *c = &cn->c;
    struct inbuf *in = &cn->in;
    size_t got = 0;
    bool eof = false;
    while (got < READ_TURN) {
        in_compact(in);
        if (!in_reserve(in, resp_parse_wanted(&cn->p, in->len))) {
            resp_reply_error(&c->out, "ERR out of memory reading the request");
            flush_out(cn, c);
            cn->closing = true;
            return;
        }
        ssize_t n = recv(cn->fd, in->data + in->len, in->cap - in->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            eof = true;
            break;
        }
        in->len += (size_t)n;
        got += (size_t)n;
        if (!execute_pending(cn, c, &cn->p, in, &cn->argv, &cn->argv_cap)) {
            cn->closing = true;
            return;
        }
    }
    if (eof) cn->closing = true;
}

static void conn_free(struct resp_conn *cn)
{
    free(cn->argv);
    free(cn->in.data);
    resp_parser_free(&cn->p);
    close(cn->fd);
    free(cn);
}

/* Ends a connection: its session, its socket; SHUTDOWN's callback last.
 * False when the callback stopped the server (srv is gone). */
static bool conn_close(struct resp_conn *cn)
{
    struct resp_server *srv = cn->srv;
    bool shutdown_requested = cn->c.shutdown;
    for (struct resp_conn **pp = &srv->waiting; *pp; pp = &(*pp)->wait_next)
        if (*pp == cn) {
            *pp = cn->wait_next;
            break;
        }
    epoll_ctl(srv->ep, EPOLL_CTL_DEL, cn->fd, NULL);
    resp_client_close(&cn->c);
    atomic_fetch_sub(&srv->sh.clients, 1);
    if (cn->prev) cn->prev->next = cn->next;
    else srv->conns = cn->next;
    if (cn->next) cn->next->prev = cn->prev;
    if (shutdown_requested) shutdown(cn->fd, SHUT_RDWR); /* the client sees the close at once */
    conn_free(cn);
    if (shutdown_requested && srv->sh.on_shutdown) {
        srv->sh.on_shutdown(srv->sh.on_shutdown_arg);
        pthread_mutex_lock(&srv->mu);
        bool gone = srv->self_stop;
        pthread_mutex_unlock(&srv->mu);
        if (gone) return false;
    }
    return true;
}

static void refuse(int fd, const char *msg)
{
    ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* best effort: the connection is being closed */
    close(fd);
}

/* Accepts one connection and opens its session; false when none waits. */
static bool accept_one(struct resp_server *srv)
{
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: back off instead of spinning on poll. */
            struct pollfd w = {srv->wake[0], POLLIN, 0};
            int r = poll(&w, 1, 50);
            (void)r;
        }
        return false;
    }
    atomic_fetch_add(&srv->sh.connections, 1);
    if (atomic_load(&srv->sh.clients) >= srv->sh.max_clients) {
        atomic_fetch_add(&srv->sh.rejected, 1);
        refuse(fd, "-ERR max number of clients reached\r\n");
        return true;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        /* not TCP, or not supported: latency only */
    }
    struct timeval tv = {SEND_TIMEOUT_S, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        /* then a client that does not read can hold the loop longer */
    }
    struct resp_conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        refuse(fd, "-ERR out of memory\r\n");
        return true;
    }
    cn->srv = srv;
    cn->fd = fd;
    resp_parser_init(&cn->p, &srv->sh.lim);
    char why[200] = "";
    JET_ERR err = resp_client_open(&cn->c, &srv->sh, why, sizeof why);
    if (err < 0 && err != JET_errInstanceUnavailable) {
        /* (Unavailable: served anyway, for what needs no session: INFO.) */
        resp_reply_error(&cn->c.out, "ERR jetfs cannot serve this connection: %s", why);
        flush_out(cn, &cn->c);
        resp_client_close(&cn->c);
        conn_free(cn);
        return true;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = cn};
    if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        resp_client_close(&cn->c);
        resp_parser_free(&cn->p);
        free(cn);
        refuse(fd, "-ERR cannot watch this connection\r\n");
        return true;
    }
    atomic_fetch_add(&srv->sh.clients, 1);
    cn->next = srv->conns;
    if (srv->conns) srv->conns->prev = cn;
    srv->conns = cn;
    return true;
}

/* Sends a connection's output now; closes it if it was closing or the
 * send failed.  False when the close stopped the server. */
static bool conn_send(struct resp_conn *cn)
{
    if (!send_out(cn, &cn->c)) cn->closing = true;
    return cn->closing ? conn_close(cn) : true;
}

static void *syncer_main(void *arg)
{
    struct resp_server *srv = arg;
    pthread_mutex_lock(&srv->sync_mu);
    while (!srv->sync_stop) {
        if (srv->sync_requested == srv->sync_done) {
            pthread_cond_wait(&srv->sync_cv, &srv->sync_mu);
            continue;
        }
        uint64_t t = srv->sync_requested;
        pthread_mutex_unlock(&srv->sync_mu);
        JET_ERR err = JetCommitTransaction(srv->sync_ses, JET_bitWaitAllLevel0Commit);
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_done = t;
        if (err < 0) srv->sync_failed = true;
        ssize_t n;
        do n = write(srv->sync_pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
        /* EAGAIN: the pipe is full, so the loop will look anyway. */
    }
    pthread_mutex_unlock(&srv->sync_mu);
    return NULL;
}

/* After a turn: each served connection's output goes out now if nothing
 * it may depend on awaits durability, else waits for the syncer's round.
 * False when a close stopped the server. */
static bool end_turn(struct resp_server *srv, struct resp_conn *ready)
{
    bool wrote = false;
    for (struct resp_conn *cn = ready; cn; cn = cn->ready_next) wrote |= cn->c.unflushed;
    pthread_mutex_lock(&srv->sync_mu);
    uint64_t target = srv->sync_requested != srv->sync_done ? srv->sync_requested : 0;
    if (wrote) {
        target = srv->sync_requested = ++srv->turn;
        pthread_cond_signal(&srv->sync_cv);
    }
    pthread_mutex_unlock(&srv->sync_mu);
    for (struct resp_conn *cn = ready, *next; cn; cn = next) {
        next = cn->ready_next;
        if (!target && !cn->out_turn) {
            if (!conn_send(cn)) return false;
        } else if (cn->c.out.len || cn->out_turn) {
            if (!cn->out_turn) {
                cn->wait_next = srv->waiting;
                srv->waiting = cn;
            }
            if (target > cn->out_turn) cn->out_turn = target;
        } else if (cn->closing && !conn_close(cn)) {
            return false;
        }
    }
    return true;
}

/* The syncer finished a round: what waited for it goes out (or, if the
 * writes could not be made durable, the connections that wrote are
 * closed without their replies).  False when a close stopped the server. */
static bool sync_finished(struct resp_server *srv)
{
    pthread_mutex_lock(&srv->sync_mu);
    uint64_t done = srv->sync_done;
    bool failed = srv->sync_failed;
    pthread_mutex_unlock(&srv->sync_mu);
    for (struct resp_conn **pp = &srv->waiting; *pp;) {
        struct resp_conn *cn = *pp;
        if (cn->out_turn > done) {
            pp = &cn->wait_next;
            continue;
        }
        *pp = cn->wait_next;
        cn->out_turn = 0;
        if (failed && cn->c.unflushed) {
            fprintf(stderr, "jetfs: client %llu: its writes could not be made durable; closing the connection "
                            "without sending their replies\n",
                    (unsigned long long)cn->c.id);
            cn->c.out.len = 0;
            cn->closing = true;
        }
        cn->c.unflushed = false;
        if (!conn_send(cn)) return false;
    }
    return true;
}

/* Frees everything once the loop has ended. */
static void server_free(struct resp_server *srv)
{
    if (srv->syncer_started) {
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_stop = true;
        pthread_cond_signal(&srv->sync_cv);
        pthread_mutex_unlock(&srv->sync_mu);
        pthread_join(srv->syncer, NULL);
    }
    while (srv->conns) {
        struct resp_conn *cn = srv->conns;
        srv->conns = cn->next;
        resp_client_close(&cn->c);
        atomic_fetch_sub(&srv->sh.clients, 1);
        conn_free(cn);
    }
    if (srv->sync_ses) (void)JetEndSession(srv->sync_ses, 0); /* no transaction: nothing to lose */
    close(srv->ep);
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    close(srv->sync_pipe[0]);
    close(srv->sync_pipe[1]);
    pthread_mutex_destroy(&srv->sync_mu);
    pthread_cond_destroy(&srv->sync_cv);
    free(srv->sh.dbpath);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->sh.cursor_mu);
    free(srv);
}

static bool stopping(struct resp_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool st = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    return st;
}

static void *loop_main(void *arg)
{
    struct resp_server *srv = arg;
    struct epoll_event evs[128];
    tl_loop = srv;
    while (!stopping(srv)) {
        int n = epoll_wait(srv->ep, evs, 128, -1);
        if (n < 0 && errno != EINTR) break;
        struct resp_conn *ready = NULL;
        bool synced = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &srv->wake) {
                char drain[64];
                while (read(srv->wake[0], drain, sizeof drain) > 0) {
                }
            } else if (evs[i].data.ptr == &srv->sync_pipe) {
                char drain[64];
                while (read(srv->sync_pipe[0], drain, sizeof drain) > 0) {
                }
                synced = true;
            } else if (evs[i].data.ptr == &srv->listen_fd) {
                for (int k = 0; k < 64 && accept_one(srv); k++) {
                }
            } else {
                struct resp_conn *cn = evs[i].data.ptr;
                conn_input(cn);
                cn->ready_next = ready;
                ready = cn;
            }
        }
        /* Connections close only here, after every event of this batch:
         * a later event may name one. */
        if (!end_turn(srv, ready) || (synced && !sync_finished(srv))) {
            /* on_shutdown stopped the server from this thread. */
            server_free(srv);
            return NULL;
        }
    }
    pthread_mutex_lock(&srv->mu);
    bool self = srv->self_stop;
    pthread_mutex_unlock(&srv->mu);
    if (self) server_free(srv);
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
    srv->listen_fd = srv->wake[0] = srv->wake[1] = srv->ep = srv->sync_pipe[0] = srv->sync_pipe[1] = -1;
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
    if ((srv->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(why, cbwhy, "epoll_create1: %s", strerror(errno));
        goto out_listen;
    }
    if (pipe2(srv->sync_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "pipe: %s", strerror(errno));
        goto out_ep;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &srv->listen_fd};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &srv->wake};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &srv->sync_pipe};
    if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &lev) != 0 ||
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->wake[0], &wev) != 0 ||
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->sync_pipe[0], &sev) != 0) {
        rc = -errno;
        snprintf(why, cbwhy, "epoll_ctl: %s", strerror(errno));
        goto out_sync_pipe;
    }
    if ((rc = (int)JetBeginSession(inst, &srv->sync_ses, NULL, NULL)) < 0) {
        snprintf(why, cbwhy, "could not begin the syncer's session: %s", JetErrorString(rc));
        srv->sync_ses = 0;
        goto out_sync_pipe;
    }
    pthread_mutex_init(&srv->sync_mu, NULL);
    pthread_cond_init(&srv->sync_cv, NULL);
    if ((rc = pthread_create(&srv->syncer, NULL, syncer_main, srv)) != 0) {
        snprintf(why, cbwhy, "cannot start the syncer thread: %s", strerror(rc));
        rc = -rc;
        goto out_sync;
    }
    srv->syncer_started = true;
    if ((rc = pthread_create(&srv->loop, NULL, loop_main, srv)) != 0) {
        snprintf(why, cbwhy, "cannot start the server thread: %s", strerror(rc));
        rc = -rc;
        pthread_mutex_lock(&srv->sync_mu);
        srv->sync_stop = true;
        pthread_cond_signal(&srv->sync_cv);
        pthread_mutex_unlock(&srv->sync_mu);
        pthread_join(srv->syncer, NULL);
        goto out_sync;
    }
    srv->loop_started = true;
    *out = srv;
    return 0;

out_sync:
    pthread_mutex_destroy(&srv->sync_mu);
    pthread_cond_destroy(&srv->sync_cv);
    (void)JetEndSession(srv->sync_ses, 0);
out_sync_pipe:
    close(srv->sync_pipe[0]);
    close(srv->sync_pipe[1]);
out_ep:
    close(srv->ep);
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
    bool inside = tl_loop == srv;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    srv->self_stop = inside;
    pthread_mutex_unlock(&srv->mu);
    if (inside) {
        /* From on_shutdown, on the loop: it frees the server when the
         * callback returns; nobody joins it. */
        pthread_detach(pthread_self());
        return;
    }
    wake_loop(srv);
    if (srv->loop_started) pthread_join(srv->loop, NULL);
    server_free(srv);
}

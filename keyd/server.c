/*
 * server.c - see server.h.  Layout: buffers (wiped, since replies carry
 * DEKs), connection lifetime, reading and dispatching frames, the loop with
 * its group commit, set-up and tear-down.
 */
#include "config.h"
#include "keyd/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "keyd/proto.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/util.h"

#define OUT_HIGH_WATER (4u * 1024u * 1024u)   /* stop reading a peer that does not read */
#define FRAMES_PER_WAKE 64                     /* fairness between busy peers */

struct conn {
    int fd;
    struct keyd_peer peer;
    struct gbuf in, out, held;    /* held: replies waiting for the audit flush */
    uint64_t held_epoch;          /* audit_failures() when the first reply was held */
    unsigned held_n;
    uint64_t deadline;            /* ms; 0 = none */
    uint64_t idle_since;
    uint32_t evmask;              /* events registered with epoll */
    int subscriber, closing, touched;
    struct conn *prev, *next, *tnext;
};

struct keyd_server {
    struct keyd_state *st;
    char *conf_path;
    char *sock_path;
    int lfd, sfd, ep;
    struct conn *conns;
    struct conn *touched;
    size_t nconns;
    int stop;
    struct keyd_event_out *evq;
    size_t nev, evcap;
    struct gbuf reply;            /* the reply being packed */
};

/* --- buffers -------------------------------------------------------------- */

/* Every buffer that may hold a DEK is a struct gbuf (guarded, wiped). */
static int put_frame(struct gbuf *b, const void *body, size_t n)
{
    if (gbuf_reserve(b, FRAME_HDR + n) != 0)
        return -ENOMEM;
    uint8_t *d = b->p + b->len;
    frame_put_header(d, n);
    memcpy(d + FRAME_HDR, body, n);
    b->len += FRAME_HDR + n;
    return 0;
}

/* --- connections ------------------------------------------------------- */

static void conn_close(struct keyd_server *s, struct conn *c)
{
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    gbuf_free(&c->in);
    gbuf_free(&c->out);
    gbuf_free(&c->held);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    /* Unlink from the touched list too. */
    for (struct conn **pp = &s->touched; *pp; pp = &(*pp)->tnext)
        if (*pp == c) {
            *pp = c->tnext;
            break;
        }
    free(c);
}

static void touch(struct keyd_server *s, struct conn *c)
{
    if (!c->touched) {
        c->touched = 1;
        c->tnext = s->touched;
        s->touched = c;
    }
}

static void peer_creds(int fd, struct keyd_peer *p)
{
    struct ucred uc;
    socklen_t sl = sizeof(uc);

    p->uid = (uid_t)-1;
    p->gid = (gid_t)-1;
    p->pid = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) == 0) {
        p->uid = uc.uid;
        p->gid = uc.gid;
        p->pid = uc.pid;
    }
    sl = sizeof(p->groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &sl) == 0)
        p->ngroups = (int)(sl / sizeof(gid_t));
    else
        p->ngroups = -1;          /* look the groups up by uid instead */
}

static void accept_all(struct keyd_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("socket %s: accept: %s", s->sock_path, strerror(errno));
            return;
        }
        if (s->nconns >= (size_t)s->st->cfg->keyd.max_clients) {
            log_warn("socket %s: %zu clients connected (max_clients): refusing one",
                     s->sock_path, s->nconns);
            close(fd);
            continue;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        peer_creds(fd, &c->peer);
        c->idle_since = tv_now_ms();
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        c->evmask = EPOLLIN;
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
    }
}

/* Register the events C needs now; a syscall only when they change. */
static void set_events(struct keyd_server *s, struct conn *c)
{
    uint32_t evs = 0;
    if (!c->closing && c->out.len - c->out.off < OUT_HIGH_WATER)
        evs |= EPOLLIN;
    if (c->out.len > c->out.off)
        evs |= EPOLLOUT;
    if (evs == c->evmask)
        return;
    struct epoll_event ev = { .events = evs, .data.ptr = c };
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->evmask = evs;
}

/* Send what can be sent without blocking.  Returns -1 if C was closed. */
static int conn_flush_out(struct keyd_server *s, struct conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(s, c);
            return -1;
        }
        gbuf_consume(&c->out, (size_t)w);
    }
    if (c->out.off == c->out.len) {
        if (c->closing) {
            conn_close(s, c);
            return -1;
        }
    }
    uint64_t now = tv_now_ms();
    if (c->out.len > c->out.off) {
        if (!c->deadline)
            c->deadline = now + (uint64_t)s->st->cfg->keyd.client_timeout_ms;
    } else if (c->in.len == c->in.off) {
        c->deadline = 0;
        c->idle_since = now;
    }
    set_events(s, c);
    return 0;
}

/* Queue the reply built in s->reply for C: held until the audit flush. */
static void hold_reply(struct keyd_server *s, struct conn *c)
{
    if (c->held_n == 0)
        c->held_epoch = audit_failures(s->st->audit);
    if (put_frame(&c->held, s->reply.p, s->reply.len) != 0)
        c->closing = 1;          /* out of memory: drop the peer rather than lie */
    c->held_n++;
    gbuf_clear(&s->reply);
    touch(s, c);
}

static void queue_event(struct keyd_server *s, const struct keyd_event_out *ev)
{
    if (s->nev == s->evcap) {
        size_t cap = s->evcap ? s->evcap * 2 : 8;
        struct keyd_event_out *q = realloc(s->evq, cap * sizeof(*q));
        if (!q) {
            log_error("out of memory queueing a %s event for project \"%s\"",
                      keyd_event_name(ev->type), ev->project);
            return;
        }
        s->evq = q;
        s->evcap = cap;
    }
    s->evq[s->nev++] = *ev;
}

/* Take every complete frame out of C's input and dispatch it. */
static int conn_process(struct keyd_server *s, struct conn *c)
{
    int frames = 0, r = 0;

    while (!c->closing && frames < FRAMES_PER_WAKE) {
        size_t have = c->in.len - c->in.off, body;
        int pr = frame_peek(c->in.p + c->in.off, have, KEYD_REQ_MAX, &body);
        if (pr == 0)
            break;
        if (pr < 0) {
            /* Cannot resynchronise after a bogus length: answer and close. */
            ops_reject(s->st, &c->peer, EMSGSIZE, "keyd: frame larger than the request cap",
                       &s->reply);
            hold_reply(s, c);
            c->closing = 1;
            break;
        }
        int subscribe = 0;
        struct keyd_event_out ev;
        if (c->subscriber) {
            /* Subscribers only listen; anything they send is a protocol error. */
            ops_reject(s->st, &c->peer, EPROTO, "keyd: a subscription takes no requests",
                       &s->reply);
            hold_reply(s, c);
            c->closing = 1;
            break;
        }
        r = ops_handle(s->st, &c->peer, c->in.p + c->in.off + FRAME_HDR, body, &s->reply,
                       &subscribe, &ev);
        gbuf_consume(&c->in, FRAME_HDR + body);
        hold_reply(s, c);
        if (r != 0)
            break;
        if (subscribe)
            c->subscriber = 1;
        if (ev.type)
            queue_event(s, &ev);
        frames++;
    }
    return r;
}

/* Read what is there; returns -1 if C was closed, -EIO on a fatal error. */
static int conn_read(struct keyd_server *s, struct conn *c)
{
    for (;;) {
        size_t have = c->in.len - c->in.off, body = 0, want = 4096;
        int pr = frame_peek(c->in.p ? c->in.p + c->in.off : NULL, have, KEYD_REQ_MAX, &body);
        if (pr == 0 && have >= FRAME_HDR)
            want = FRAME_HDR + body - have;
        if (pr < 0)
            break;
        if (gbuf_reserve(&c->in, want < 4096 ? 4096 : want) != 0) {
            conn_close(s, c);
            return -1;
        }
        ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(s, c);
            return -1;
        }
        if (n == 0) {
            /* Peer closed; answer nothing more. */
            if (c->held_n == 0) {
                conn_close(s, c);
                return -1;
            }
            c->closing = 1;
            break;
        }
        int filled = (size_t)n == c->in.cap - c->in.len;
        c->in.len += (size_t)n;
        /* A short read means the socket is drained (level-triggered epoll
         * reports anything that arrives later): skip the EAGAIN round. */
        if (!filled || c->in.len - c->in.off >= 2 * KEYD_REQ_MAX)
            break;
    }
    int r = conn_process(s, c);
    if (r != 0)
        return r;
    uint64_t now = tv_now_ms();
    if (c->in.len > c->in.off) {
        if (!c->deadline)
            c->deadline = now + (uint64_t)s->st->cfg->keyd.client_timeout_ms;
    } else if (c->out.len == c->out.off) {
        c->deadline = 0;
        c->idle_since = now;
    }
    return 0;
}

/* Group commit: one audit flush for every reply held in this wake-up, then
 * release them (or, if the flush failed, replace each with an EIO error). */
static void release_held(struct keyd_server *s)
{
    int r = audit_flush(s->st->audit);
    uint64_t fails = audit_failures(s->st->audit);

    while (s->touched) {
        struct conn *c = s->touched;
        s->touched = c->tnext;
        c->touched = 0;
        c->tnext = NULL;
        if (c->held_n) {
            if (r == 0 && c->held_epoch == fails) {
                if (gbuf_put(&c->out, c->held.p, c->held.len) != 0)
                    c->closing = 1;       /* out of memory: drop the peer rather than lie */
            } else {
                for (unsigned i = 0; i < c->held_n; i++) {
                    ops_error_reply(&s->reply, EIO, "keyd: audit log: cannot record the request");
                    put_frame(&c->out, s->reply.p, s->reply.len);
                    gbuf_clear(&s->reply);
                }
            }
            gbuf_clear(&c->held);
            c->held_n = 0;
        }
        conn_flush_out(s, c);
    }
}

static void broadcast(struct keyd_server *s)
{
    for (size_t i = 0; i < s->nev; i++) {
        ops_event_pack(&s->reply, &s->evq[i]);
        for (struct conn *c = s->conns, *n; c; c = n) {
            n = c->next;
            if (c->subscriber && !c->closing && put_frame(&c->out, s->reply.p, s->reply.len) == 0)
                conn_flush_out(s, c);
        }
        log_info("project \"%s\": %s event sent to subscribers", s->evq[i].project,
                 keyd_event_name(s->evq[i].type));
        gbuf_clear(&s->reply);
    }
    s->nev = 0;
}

static void expire(struct keyd_server *s, uint64_t now)
{
    uint64_t idle = 12u * (uint64_t)s->st->cfg->keyd.client_timeout_ms;
    for (struct conn *c = s->conns, *n; c; c = n) {
        n = c->next;
        if (c->deadline && now >= c->deadline) {
            log_info("client uid %u pid %d: no progress within %d ms: closing",
                     (unsigned)c->peer.uid, (int)c->peer.pid, s->st->cfg->keyd.client_timeout_ms);
            conn_close(s, c);
        } else if (!c->deadline && !c->subscriber && now - c->idle_since >= idle) {
            conn_close(s, c);
        }
    }
}

static int next_timeout(struct keyd_server *s, uint64_t now)
{
    uint64_t idle = 12u * (uint64_t)s->st->cfg->keyd.client_timeout_ms, best = UINT64_MAX;
    for (struct conn *c = s->conns; c; c = c->next) {
        uint64_t t = c->deadline ? c->deadline
                                 : (c->subscriber ? UINT64_MAX : c->idle_since + idle);
        if (t < best)
            best = t;
    }
    if (best == UINT64_MAX)
        return -1;
    return best <= now ? 0 : (int)(best - now > 60000 ? 60000 : best - now);
}

static void reload_config(struct keyd_server *s)
{
    struct tv_config *cfg = NULL;
    char err[512];
    if (tv_config_load(s->conf_path, &cfg, err, sizeof(err)) != 0) {
        log_error("SIGHUP: %s; keeping the old configuration", err);
        return;
    }
    /* Only the user lists and limits take effect; paths need a restart. */
    struct tv_config *old = (struct tv_config *)s->st->cfg;
    s->st->cfg = cfg;
    tv_config_free(old);
    log_info("configuration %s reloaded", s->conf_path);
    /* A log renamed away by logrotate: go on in a new file that continues
     * the chain.  Replies held for the group commit go to the old file. */
    if (audit_rotate(s->st->audit, s->st->audit_path, err, sizeof(err)) != 0)
        log_error("SIGHUP: %s", err);
}

static void handle_signals(struct keyd_server *s)
{
    struct signalfd_siginfo si;
    while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP)
            reload_config(s);
        else
            s->stop = 1;
    }
}

int server_run(struct keyd_server *s)
{
    struct epoll_event evs[64];
    int fatal = 0;

    int tick = -1;                /* ms until ops_tick has work, -1: none */

    while (!s->stop && !fatal) {
        int t = next_timeout(s, tv_now_ms());
        if (tick >= 0 && (t < 0 || tick < t))
            t = tick;
        int n = epoll_wait(s->ep, evs, 64, t);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait: %s", strerror(errno));
            return -EIO;
        }
        for (int i = 0; i < n && !fatal; i++) {
            if (evs[i].data.ptr == &s->lfd) {
                accept_all(s);
                continue;
            }
            if (evs[i].data.ptr == &s->sfd) {
                handle_signals(s);
                continue;
            }
            /* Each fd appears once per batch and only its own event closes a
             * connection inside this loop, so C is alive here. */
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) {
                if (conn_flush_out(s, c) < 0)
                    continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int r = conn_read(s, c);
                if (r == -EIO)
                    fatal = 1;
            }
        }
        /* Staged before the group commit, so it is flushed with it. */
        tick = ops_tick(s->st, tv_now_ms());
        release_held(s);
        broadcast(s);
        expire(s, tv_now_ms());
    }
    return fatal ? -EIO : 0;
}

/* --- set-up ------------------------------------------------------------ */

static int socket_dir(const char *sock, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct stat st;
    char *slash;
    int r;

    snprintf(dir, sizeof(dir), "%s", sock);
    slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    if (!*dir)
        return 0;
    if (stat(dir, &st) != 0) {
        if ((r = tv_mkdir_p(dir, 0750)) != 0 || chmod(dir, 0750) != 0) {
            snprintf(err, errlen, "socket directory %s: cannot create: %s", dir,
                     strerror(r ? -r : errno));
            return r ? r : -errno;
        }
        return 0;
    }
    if (st.st_mode & S_IWOTH) {
        snprintf(err, errlen, "socket directory %s: writable by others (mode %04o); "
                 "use 0750", dir, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    if (st.st_mode & (S_IROTH | S_IXOTH))
        log_warn("socket directory %s: mode %04o lets others reach the socket; 0750 is "
                 "recommended (peers are still checked with SO_PEERCRED)", dir,
                 (unsigned)(st.st_mode & 07777));
    return 0;
}

int server_new(struct keyd_state *st, const char *conf_path, struct keyd_server **out,
               char *err, size_t errlen)
{
    struct keyd_server *s = calloc(1, sizeof(*s));
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = st->cfg->keyd.socket;
    struct stat stt;
    sigset_t mask;
    int r;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->lfd = s->sfd = s->ep = -1;
    s->st = st;
    if (!(s->conf_path = strdup(conf_path)) || !(s->sock_path = strdup(path))) {
        r = -ENOMEM;
        goto fail;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket %s: path too long", path);
        r = -ENAMETOOLONG;
        goto fail;
    }
    strcpy(sa.sun_path, path);
    if ((r = socket_dir(path, err, errlen)) != 0)
        goto fail;
    /* A stale socket from a crash is replaced; a live one (another keyd,
     * perhaps on another keystore) is not. */
    if (lstat(path, &stt) == 0) {
        if (!S_ISSOCK(stt.st_mode)) {
            snprintf(err, errlen, "socket %s: exists and is not a socket", path);
            r = -EEXIST;
            goto fail;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, errlen, "socket %s: another process is listening on it", path);
            r = -EADDRINUSE;
            goto fail;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0666) != 0 || listen(s->lfd, 128) != 0) {
        r = -errno;
        snprintf(err, errlen, "socket %s: %s", path, strerror(errno));
        goto fail;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->sfd < 0 || s->ep < 0) {
        r = -errno;
        snprintf(err, errlen, "signalfd/epoll: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event e1 = { .events = EPOLLIN, .data.ptr = &s->lfd };
    struct epoll_event e2 = { .events = EPOLLIN, .data.ptr = &s->sfd };
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e1) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &e2) != 0) {
        r = -errno;
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    server_free(s);
    return r;
}

void server_free(struct keyd_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s, s->conns);
    if (s->lfd >= 0) {
        close(s->lfd);
        unlink(s->sock_path);
    }
    if (s->sfd >= 0)
        close(s->sfd);
    if (s->ep >= 0)
        close(s->ep);
    gbuf_free(&s->reply);
    free(s->evq);
    free(s->conf_path);
    free(s->sock_path);
    free(s);
}

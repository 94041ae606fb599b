/*
 * keyd_client.c - see keyd_client.h.
 *
 * Layout: connection handling (lazy connect with retries, one blocking
 * socket per client), one generic round trip (rpc) that packs nothing and
 * knows nothing about operations, the request skeleton every operation uses,
 * and subscriptions.  The operations themselves, one small function each
 * that packs its arguments and picks its results out of the reply map, are
 * keyd_client_ops.c.  Buffers
 * that may hold key bytes (request and reply frames) are wiped before free.
 */
#include "config.h"
#include "keyd/keyd_client.h"
#include "keyd/keyd_client_int.h"
#include "lib/frame.h"

#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TRIES 6

struct keyd_client {
    pthread_mutex_t mu;
    char *path;
    int timeout_ms;
    int fd;
    char err[256];
};

struct keyd_sub {
    int fd;
};

void kc_set_err(struct keyd_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --- who keyd is ----------------------------------------------------------
 *
 * A client sends keyd API keys and receives DEKs, so before the first byte
 * it makes sure the socket is keyd's: the socket's directory must not be
 * writable by group or others (nobody else can have put a socket there),
 * and the peer (SO_PEERCRED) must be root or the keyd user.
 */

static pthread_mutex_t expect_mu = PTHREAD_MUTEX_INITIALIZER;
static char expect_user[64] = KEYD_USER_DEFAULT;

void keyd_client_expect_user(const char *user)
{
    pthread_mutex_lock(&expect_mu);
    snprintf(expect_user, sizeof(expect_user), "%s",
             user && *user ? user : KEYD_USER_DEFAULT);
    pthread_mutex_unlock(&expect_mu);
}

/* The uid keyd must run as: the expected user's (a name or a number), or,
 * when no such user exists on this host, the owner of the socket's
 * directory (DST is its stat).  NAME receives the expected user's name. */
static uid_t expected_uid(const struct stat *dst, char name[64])
{
    struct passwd pw, *res = NULL;
    char buf[1024], *end;

    pthread_mutex_lock(&expect_mu);
    memcpy(name, expect_user, 64);
    pthread_mutex_unlock(&expect_mu);
    unsigned long n = strtoul(name, &end, 10);
    if (*name && !*end)
        return (uid_t)n;
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res)
        return pw.pw_uid;
    return dst->st_uid;
}

/* Refuse a socket directory others could have written a socket into. */
static int check_dir(struct keyd_client *c, struct stat *st)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", c->path);
    slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, st) != 0) {
        kc_set_err(c, "keyd: socket directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        kc_set_err(c, "keyd: socket directory %s: writable by group or others (mode %04o): "
                "anyone could stand in for keyd there; refusing it (make it 0750)", dir,
                (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* The process at the other end of FD must be root or the keyd user. */
static int check_peer(struct keyd_client *c, int fd, const struct stat *dst)
{
    struct ucred uc;
    socklen_t sl = sizeof(uc);
    char name[64];
    uid_t want = expected_uid(dst, name);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) != 0) {
        kc_set_err(c, "keyd: socket %s: cannot identify the peer: %s", c->path, strerror(errno));
        return -EPERM;
    }
    if (uc.uid != 0 && uc.uid != want) {
        kc_set_err(c, "keyd: socket %s: the peer is uid %u (pid %d), not keyd_user %s (uid %u) "
                "or root: refusing to talk to it", c->path, (unsigned)uc.uid, (int)uc.pid,
                name, (unsigned)want);
        return -EPERM;
    }
    return 0;
}

/* Connect to C's socket with a few short retries (keyd may be restarting)
 * and check who is there.  Returns the fd, or a negative errno with c->err
 * set (-EPERM: not keyd; never retried). */
static int connect_keyd(struct keyd_client *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat dst;
    int delay = 25, r;

    if (strlen(c->path) >= sizeof(sa.sun_path)) {
        kc_set_err(c, "keyd: socket %s: path too long", c->path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, c->path);
    if ((r = check_dir(c, &dst)) != 0)
        return r;
    for (int i = 0; i < CONNECT_TRIES; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            break;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            if ((r = check_peer(c, fd, &dst)) != 0) {
                close(fd);
                return r;
            }
            if (c->timeout_ms > 0) {
                /* Bound blocking sends too: a stuck keyd must not hang callers. */
                struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            }
            return fd;
        }
        int e = errno;
        close(fd);
        if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR) {
            kc_set_err(c, "keyd: socket %s: %s", c->path, strerror(e));
            return -e;
        }
        if (i + 1 < CONNECT_TRIES)
            sleep_ms(delay);
        delay *= 2;
    }
    kc_set_err(c, "keyd: socket %s: %s", c->path, strerror(ECONNREFUSED));
    return -ECONNREFUSED;
}

struct keyd_client *keyd_client_new(const char *socket_path, int timeout_ms)
{
    /* sodium_malloc (API keys) aborts before sodium_init; it is idempotent. */
    if (sodium_init() < 0)
        return NULL;
    struct keyd_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->path = strdup(socket_path);
    if (!c->path) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->timeout_ms = timeout_ms;
    c->fd = -1;
    return c;
}

void keyd_client_free(struct keyd_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

const char *keyd_client_error(struct keyd_client *c)
{
    return c ? c->err : "no client";
}

static void drop_conn(struct keyd_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void reply_release(struct reply *r)
{
    if (r->body) {
        sodium_memzero(r->body, r->len);
        free(r->body);
        r->body = NULL;
    }
    msgpack_unpacked_destroy(&r->up);
}

/*
 * One round trip: send the packed request REQ and decode the reply into R
 * (caller releases R on success).  IDEMPOTENT requests are re-sent once on a
 * fresh connection when the old one turns out to be dead after sending;
 * others only when the failure happened before anything was sent.  A reply
 * with ok=false becomes its errno, with the server's message in c->err.
 * Called with c->mu held.
 */
static int rpc(struct keyd_client *c, const msgpack_sbuffer *req, int idempotent,
               struct reply *r)
{
    int rc = 0;

    memset(r, 0, sizeof(*r));
    msgpack_unpacked_init(&r->up);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = 0, wrote = 0;
        if (c->fd < 0) {
            int fd = connect_keyd(c);
            if (fd < 0) {
                rc = fd == -ENOENT ? -ECONNREFUSED : fd;
                goto fail;
            }
            c->fd = fd;
            fresh = 1;
        }
        rc = frame_write(c->fd, req->data, req->size);
        if (rc == 0) {
            wrote = 1;
            rc = frame_read(c->fd, KEYD_REPLY_MAX, c->timeout_ms, &r->body, &r->len);
        }
        if (rc == 0)
            break;
        drop_conn(c);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            rc = -ETIMEDOUT;
        if (rc == -ETIMEDOUT) {
            kc_set_err(c, "keyd: socket %s: no reply within %d ms", c->path, c->timeout_ms);
            goto fail;
        }
        /* A stale connection (keyd restarted) fails at once; retry once. */
        /* A request that reached keyd is repeated only if repeating is harmless. */
        if (fresh || (!idempotent && wrote) || attempt == 1) {
            kc_set_err(c, "keyd: socket %s: %s", c->path, strerror(-rc));
            if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
                rc = -ECONNREFUSED;
            goto fail;
        }
    }
    if (mp_decode(r->body, r->len, 8, r->len + 16, &r->up) != 0 ||
        r->up.data.type != MSGPACK_OBJECT_MAP) {
        drop_conn(c);
        kc_set_err(c, "keyd: malformed reply");
        rc = -EPROTO;
        goto fail;
    }
    r->map = &r->up.data;
    int okv = 0;
    if (mp_get_bool(r->map, "ok", &okv) != 0) {
        kc_set_err(c, "keyd: reply without \"ok\"");
        rc = -EPROTO;
        goto fail;
    }
    if (!okv) {
        const char *e = NULL, *m = NULL;
        size_t el = 0, ml = 0;
        int err = EPROTO;
        if (mp_get_str(r->map, "err", &e, &el) == 0)
            err = keyd_errno_parse(e, el);
        if (mp_get_str(r->map, "msg", &m, &ml) == 0)
            kc_set_err(c, "%.*s", (int)(ml > 250 ? 250 : ml), m);
        else
            kc_set_err(c, "keyd: %s", strerror(err));
        rc = -err;
        goto fail;
    }
    c->err[0] = '\0';
    return 0;
fail:
    reply_release(r);
    return rc;
}

/* --- the request skeleton -------------------------------------------------
 *
 * Every operation is: check the arguments, pack a request (kc_call_start and
 * the pairs after it), then kc_call_finish: one round trip under the client's
 * lock, an optional UNPACK callback that copies results out of the reply
 * while it is alive, release and wipe of both buffers, unlock.
 */



/* Start request {"op": OP, "project": PROJECT (if non-NULL)} plus EXTRA more
 * pairs that the caller packs next with K->pk. */
void kc_call_start(struct call *k, enum keyd_op op, const char *project, unsigned extra)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->pk, &k->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&k->pk, 1 + (project ? 1 : 0) + extra);
    mp_pack_cstr(&k->pk, "op");
    mp_pack_cstr(&k->pk, keyd_op_name(op));
    if (project) {
        mp_pack_cstr(&k->pk, "project");
        mp_pack_cstr(&k->pk, project);
    }
}

static void sbuf_wipe(msgpack_sbuffer *sb)
{
    if (sb->data)
        sodium_memzero(sb->data, sb->alloc);
    msgpack_sbuffer_destroy(sb);
}

/* Send K's request (re-sent after a dead connection only if IDEMPOTENT),
 * hand the reply to UNPACK (may be NULL), release everything. */
int kc_call_finish(struct keyd_client *c, struct call *k, int idempotent, unpack_fn unpack,
                       void *arg)
{
    struct reply r;
    int rc;

    pthread_mutex_lock(&c->mu);
    rc = rpc(c, &k->sb, idempotent, &r);
    if (rc == 0) {
        if (unpack)
            rc = unpack(c, &r, arg);
        reply_release(&r);
    }
    pthread_mutex_unlock(&c->mu);
    sbuf_wipe(&k->sb);
    return rc;
}

void kc_pack_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

void kc_pack_bin(msgpack_packer *pk, const char *key, const void *p, size_t n)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

int kc_valid_project(struct keyd_client *c, const char *project)
{
    size_t n = project ? strlen(project) : 0;
    if (n == 0 || n > KEYD_PROJECT_MAX) {
        kc_set_err(c, "keyd: project name must be 1..%d bytes", KEYD_PROJECT_MAX);
        return -EINVAL;
    }
    return 0;
}

int kc_valid_count(struct keyd_client *c, enum keyd_op op, unsigned n)
{
    if (n == 0 || n > KEYD_GEN_MAX) {
        kc_set_err(c, "keyd: %s count %u outside 1..%u", keyd_op_name(op), n, KEYD_GEN_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Fetch bin KEY of exactly WANT bytes from a reply into OUT. */
int kc_copy_bin(struct keyd_client *c, const struct reply *r, const char *key,
                    size_t want, void *out)
{
    const void *p;
    size_t n = 0;
    if (mp_get_bin(r->map, key, &p, &n) != 0 || n != want) {
        kc_set_err(c, "keyd: reply field \"%s\" missing or of the wrong size", key);
        return -EPROTO;
    }
    memcpy(out, p, n);
    return 0;
}

int kc_get_u32(struct keyd_client *c, const struct reply *r, const char *key, uint32_t *out)
{
    uint64_t v = 0;
    if (mp_get_uint(r->map, key, &v) != 0 || v > UINT32_MAX) {
        kc_set_err(c, "keyd: reply field \"%s\" missing or out of range", key);
        return -EPROTO;
    }
    *out = (uint32_t)v;
    return 0;
}

/* --- subscriptions ------------------------------------------------------ */

/* Take the connection that was subscribed away from its client. */
static int take_conn(struct keyd_client *c, const struct reply *r, void *arg)
{
    (void)r;
    *(int *)arg = c->fd;
    c->fd = -1;
    return 0;
}

int keyd_subscribe(const char *socket_path, struct keyd_sub **out)
{
    struct keyd_client *c = keyd_client_new(socket_path, 5000);
    struct call k;
    int fd = -1, rc;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    kc_call_start(&k, KEYD_OP_SUBSCRIBE, NULL, 0);
    rc = kc_call_finish(c, &k, 0, take_conn, &fd);
    keyd_client_free(c);
    if (rc != 0)
        return rc;
    struct keyd_sub *s = malloc(sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    /* Events may be far apart: no send timeout on a subscription. */
    struct timeval tv = { 0, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    s->fd = fd;
    *out = s;
    return 0;
}

int keyd_sub_fd(const struct keyd_sub *s)
{
    return s ? s->fd : -1;
}

int keyd_sub_read(struct keyd_sub *s, struct keyd_event *ev)
{
    void *body = NULL;
    size_t len = 0;
    msgpack_unpacked up;
    const char *t, *p;
    size_t tl, pl;
    uint64_t v = 0;
    int rc;

    memset(ev, 0, sizeof(*ev));
    rc = frame_read(s->fd, KEYD_REQ_MAX, -1, &body, &len);
    if (rc != 0)
        return rc == -EMSGSIZE ? -EPROTO : -ECONNRESET;
    msgpack_unpacked_init(&up);
    rc = -EPROTO;
    if (mp_decode(body, len, 4, 64, &up) != 0 ||
        mp_get_str(&up.data, "event", &t, &tl) != 0 ||
        mp_get_str(&up.data, "project", &p, &pl) != 0 || pl == 0 || pl >= sizeof(ev->project))
        goto out;
    mp_get_uint(&up.data, "version", &v);
    if ((ev->type = keyd_event_parse(t, tl)) == 0)
        goto out;
    memcpy(ev->project, p, pl);
    ev->version = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    free(body);
    return rc;
}

void keyd_sub_free(struct keyd_sub *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

/*
 * keyd_client.c - see keyd_client.h.
 *
 * Layout: connection handling (lazy connect with retries, one blocking
 * socket per client), one generic round trip (rpc) that packs nothing and
 * knows nothing about operations, then one small function per operation that
 * packs its arguments and picks its results out of the reply map.  Buffers
 * that may hold key bytes (request and reply frames) are wiped before free.
 */
#include "config.h"
#include "keyd/keyd_client.h"
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

/* A decoded reply: the frame body (wiped at release) and its msgpack view. */
struct reply {
    void *body;
    size_t len;
    msgpack_unpacked up;
    const msgpack_object *map;
};

static void set_err(struct keyd_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(struct keyd_client *c, const char *fmt, ...)
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
        set_err(c, "keyd: socket directory %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        set_err(c, "keyd: socket directory %s: writable by group or others (mode %04o): "
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
        set_err(c, "keyd: socket %s: cannot identify the peer: %s", c->path, strerror(errno));
        return -EPERM;
    }
    if (uc.uid != 0 && uc.uid != want) {
        set_err(c, "keyd: socket %s: the peer is uid %u (pid %d), not keyd_user %s (uid %u) "
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
        set_err(c, "keyd: socket %s: path too long", c->path);
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
            set_err(c, "keyd: socket %s: %s", c->path, strerror(e));
            return -e;
        }
        if (i + 1 < CONNECT_TRIES)
            sleep_ms(delay);
        delay *= 2;
    }
    set_err(c, "keyd: socket %s: %s", c->path, strerror(ECONNREFUSED));
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
            set_err(c, "keyd: socket %s: no reply within %d ms", c->path, c->timeout_ms);
            goto fail;
        }
        /* A stale connection (keyd restarted) fails at once; retry once. */
        /* A request that reached keyd is repeated only if repeating is harmless. */
        if (fresh || (!idempotent && wrote) || attempt == 1) {
            set_err(c, "keyd: socket %s: %s", c->path, strerror(-rc));
            if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
                rc = -ECONNREFUSED;
            goto fail;
        }
    }
    if (mp_decode(r->body, r->len, 8, r->len + 16, &r->up) != 0 ||
        r->up.data.type != MSGPACK_OBJECT_MAP) {
        drop_conn(c);
        set_err(c, "keyd: malformed reply");
        rc = -EPROTO;
        goto fail;
    }
    r->map = &r->up.data;
    int okv = 0;
    if (mp_get_bool(r->map, "ok", &okv) != 0) {
        set_err(c, "keyd: reply without \"ok\"");
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
            set_err(c, "%.*s", (int)(ml > 250 ? 250 : ml), m);
        else
            set_err(c, "keyd: %s", strerror(err));
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
 * Every operation is: check the arguments, pack a request (call_start and
 * the pairs after it), then call_finish: one round trip under the client's
 * lock, an optional UNPACK callback that copies results out of the reply
 * while it is alive, release and wipe of both buffers, unlock.
 */

struct call {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

/* Results are copied out of reply R by such a callback; it returns 0 or a
 * negative errno (with set_err). */
typedef int (*unpack_fn)(struct keyd_client *c, const struct reply *r, void *arg);

/* Start request {"op": OP, "project": PROJECT (if non-NULL)} plus EXTRA more
 * pairs that the caller packs next with K->pk. */
static void call_start(struct call *k, enum keyd_op op, const char *project, unsigned extra)
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
static int call_finish(struct keyd_client *c, struct call *k, int idempotent, unpack_fn unpack,
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

static void pack_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

static void pack_bin(msgpack_packer *pk, const char *key, const void *p, size_t n)
{
    mp_pack_cstr(pk, key);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static int valid_project(struct keyd_client *c, const char *project)
{
    size_t n = project ? strlen(project) : 0;
    if (n == 0 || n > KEYD_PROJECT_MAX) {
        set_err(c, "keyd: project name must be 1..%d bytes", KEYD_PROJECT_MAX);
        return -EINVAL;
    }
    return 0;
}

static int valid_count(struct keyd_client *c, enum keyd_op op, unsigned n)
{
    if (n == 0 || n > KEYD_GEN_MAX) {
        set_err(c, "keyd: %s count %u outside 1..%u", keyd_op_name(op), n, KEYD_GEN_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Fetch bin KEY of exactly WANT bytes from a reply into OUT. */
static int copy_bin(struct keyd_client *c, const struct reply *r, const char *key,
                    size_t want, void *out)
{
    const void *p;
    size_t n = 0;
    if (mp_get_bin(r->map, key, &p, &n) != 0 || n != want) {
        set_err(c, "keyd: reply field \"%s\" missing or of the wrong size", key);
        return -EPROTO;
    }
    memcpy(out, p, n);
    return 0;
}

static int get_u32(struct keyd_client *c, const struct reply *r, const char *key, uint32_t *out)
{
    uint64_t v = 0;
    if (mp_get_uint(r->map, key, &v) != 0 || v > UINT32_MAX) {
        set_err(c, "keyd: reply field \"%s\" missing or out of range", key);
        return -EPROTO;
    }
    *out = (uint32_t)v;
    return 0;
}

/* --- vault_users ------------------------------------------------------- */

/* Where a reply's keys go: VERSION (may be NULL), N DEKs into DEKS (may be
 * NULL), N wrapped DEKs into WRAPPED (may be NULL). */
struct dek_out {
    unsigned n;
    uint32_t *version;
    unsigned char *deks, *wrapped, *file_ids;
};

static int unpack_deks(struct keyd_client *c, const struct reply *r, void *arg)
{
    struct dek_out *o = arg;
    uint32_t v = 0;
    int rc = 0;

    if (o->version)
        rc = get_u32(c, r, "version", &v);
    if (rc == 0 && o->deks)
        rc = copy_bin(c, r, o->wrapped ? "deks" : "dek", (size_t)o->n * KEYD_DEK_LEN, o->deks);
    if (rc == 0 && o->file_ids)
        rc = copy_bin(c, r, "file_ids", (size_t)o->n * KEYD_FILE_ID_LEN, o->file_ids);
    if (rc == 0 && o->wrapped)
        rc = copy_bin(c, r, "wrapped", (size_t)o->n * KEYD_WRAPPED_LEN, o->wrapped);
    if (rc != 0 && o->deks)
        sodium_memzero(o->deks, (size_t)o->n * KEYD_DEK_LEN);
    if (rc == 0 && o->version)
        *o->version = v;
    return rc;
}

int keyd_gen_dek(struct keyd_client *c, const char *project, unsigned n,
                 uint32_t *version, unsigned char *deks, unsigned char *wrapped,
                 unsigned char *file_ids)
{
    struct dek_out o = { n, version, deks, wrapped, file_ids };
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0 || (rc = valid_count(c, KEYD_OP_GEN_DEK, n)) != 0)
        return rc;
    call_start(&k, KEYD_OP_GEN_DEK, project, file_ids ? 2 : 1);
    pack_uint(&k.pk, "n", n);
    if (file_ids) {
        mp_pack_cstr(&k.pk, "bind");
        msgpack_pack_true(&k.pk);
    }
    return call_finish(c, &k, 1, unpack_deks, &o);
}

int keyd_unwrap_many(struct keyd_client *c, const char *project, uint32_t version,
                     unsigned n, const unsigned char *file_ids, const unsigned char *wrapped,
                     unsigned char *deks)
{
    struct dek_out o = { n, NULL, deks, NULL, NULL };
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0 || (rc = valid_count(c, KEYD_OP_UNWRAP, n)) != 0)
        return rc;
    call_start(&k, KEYD_OP_UNWRAP, project, file_ids ? 3 : 2);
    pack_uint(&k.pk, "version", version);
    pack_bin(&k.pk, "wrapped", wrapped, (size_t)n * KEYD_WRAPPED_LEN);
    if (file_ids)
        pack_bin(&k.pk, "file_ids", file_ids, (size_t)n * KEYD_FILE_ID_LEN);
    return call_finish(c, &k, 1, unpack_deks, &o);
}

int keyd_unwrap(struct keyd_client *c, const char *project, uint32_t version,
                const unsigned char *file_id, const unsigned char wrapped[KEYD_WRAPPED_LEN],
                unsigned char dek[KEYD_DEK_LEN])
{
    return keyd_unwrap_many(c, project, version, 1, file_id, wrapped, dek);
}

int keyd_rewrap(struct keyd_client *c, const char *project, uint32_t version,
                const unsigned char *file_id, int legacy,
                const unsigned char wrapped[KEYD_WRAPPED_LEN],
                uint32_t *new_version, unsigned char new_wrapped[KEYD_WRAPPED_LEN])
{
    struct dek_out o = { 1, new_version, NULL, new_wrapped, NULL };
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, KEYD_OP_REWRAP, project, 2 + (file_id ? 1 : 0) + (legacy ? 1 : 0));
    pack_uint(&k.pk, "version", version);
    pack_bin(&k.pk, "wrapped", wrapped, KEYD_WRAPPED_LEN);
    if (file_id)
        pack_bin(&k.pk, "file_id", file_id, KEYD_FILE_ID_LEN);
    if (legacy) {
        mp_pack_cstr(&k.pk, "legacy");
        msgpack_pack_true(&k.pk);
    }
    return call_finish(c, &k, 1, unpack_deks, &o);
}

/* A 32-byte "key" (pseudonym key, vault audit key). */
_Static_assert(KEYD_AUDIT_KEY_LEN == 32 && KEYD_PSEUDONYM_KEY_LEN == 32, "32-byte keys");
static int unpack_key32(struct keyd_client *c, const struct reply *r, void *arg)
{
    return copy_bin(c, r, "key", 32, arg);
}

int keyd_vault_audit_key(struct keyd_client *c, unsigned char key[KEYD_AUDIT_KEY_LEN])
{
    struct call k;
    call_start(&k, KEYD_OP_VAULT_AUDIT_KEY, NULL, 0);
    return call_finish(c, &k, 1, unpack_key32, key);
}

/* --- agent_users ------------------------------------------------------- */

static int unpack_apikey(struct keyd_client *c, const struct reply *r, void *arg)
{
    char **key = arg;
    const void *p;
    size_t n;

    if (mp_get_bin(r->map, "key", &p, &n) != 0) {
        set_err(c, "keyd: reply without \"key\"");
        return -EPROTO;
    }
    char *k = n <= KEYD_APIKEY_MAX ? sodium_malloc(n + 1) : NULL;
    if (!k) {
        set_err(c, "keyd: API key too large or out of memory");
        return n <= KEYD_APIKEY_MAX ? -ENOMEM : -EPROTO;
    }
    memcpy(k, p, n);
    k[n] = '\0';
    *key = k;
    return 0;
}

int keyd_apikey_get(struct keyd_client *c, const char *project, char **key)
{
    struct call k;
    int rc;

    *key = NULL;
    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, KEYD_OP_APIKEY_GET, project, 0);
    return call_finish(c, &k, 1, unpack_apikey, key);
}

int keyd_pseudonym_key(struct keyd_client *c, const char *project,
                       unsigned char key[KEYD_PSEUDONYM_KEY_LEN])
{
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, KEYD_OP_PSEUDONYM_KEY, project, 0);
    return call_finish(c, &k, 1, unpack_key32, key);
}

/* --- admin_users ------------------------------------------------------- */

static int unpack_version(struct keyd_client *c, const struct reply *r, void *arg)
{
    return get_u32(c, r, "version", arg);
}

/* Key changes {op, project [, UKEY: UVAL]} -> {"version": n} if VERSION.
 * Never re-sent once they may have reached keyd. */
static int admin_call(struct keyd_client *c, enum keyd_op op, const char *project,
                      const char *ukey, uint64_t uval, uint32_t *version)
{
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, op, project, ukey ? 1 : 0);
    if (ukey)
        pack_uint(&k.pk, ukey, uval);
    return call_finish(c, &k, 0, version ? unpack_version : NULL, version);
}

int keyd_create(struct keyd_client *c, const char *project, uint32_t *version)
{
    uint32_t v;
    return admin_call(c, KEYD_OP_CREATE, project, NULL, 0, version ? version : &v);
}

int keyd_rotate(struct keyd_client *c, const char *project, uint32_t *new_version)
{
    uint32_t v;
    return admin_call(c, KEYD_OP_ROTATE, project, NULL, 0, new_version ? new_version : &v);
}

int keyd_retire(struct keyd_client *c, const char *project, uint32_t below)
{
    return admin_call(c, KEYD_OP_RETIRE, project, "below", below, NULL);
}

int keyd_shred(struct keyd_client *c, const char *project)
{
    return admin_call(c, KEYD_OP_SHRED, project, NULL, 0, NULL);
}

int keyd_rekey_master(struct keyd_client *c)
{
    struct call k;
    call_start(&k, KEYD_OP_REKEY_MASTER, NULL, 0);
    return call_finish(c, &k, 0, NULL, NULL);
}

int keyd_apikey_set(struct keyd_client *c, const char *project, const char *key)
{
    struct call k;
    size_t n = key ? strlen(key) : 0;
    int rc;

    if ((rc = valid_project(c, project)) != 0)
        return rc;
    if (n == 0 || n > KEYD_APIKEY_MAX) {
        set_err(c, "keyd: API key must be 1..%d bytes", KEYD_APIKEY_MAX);
        return -EINVAL;
    }
    call_start(&k, KEYD_OP_APIKEY_SET, project, 1);
    pack_bin(&k.pk, "key", key, n);
    return call_finish(c, &k, 1, NULL, NULL);
}

/* One LIST entry {name, current, versions: [[v, state]...], apikey, shredded}. */
static int list_entry(const msgpack_object *e, struct keyd_project_info *pi)
{
    const char *name;
    size_t nl;
    uint64_t cur;
    int b;

    if (mp_get_str(e, "name", &name, &nl) != 0 || nl == 0 || nl >= sizeof(pi->name) ||
        mp_get_uint(e, "current", &cur) != 0 || cur > UINT32_MAX)
        return -EPROTO;
    memcpy(pi->name, name, nl);
    pi->name[nl] = '\0';
    pi->current = (uint32_t)cur;
    pi->has_apikey = mp_get_bool(e, "apikey", &b) == 0 && b;
    pi->shredded = mp_get_bool(e, "shredded", &b) == 0 && b;
    const msgpack_object *vs = mp_map_get(e, "versions");
    if (!vs || vs->type != MSGPACK_OBJECT_ARRAY)
        return -EPROTO;
    pi->n_versions = vs->via.array.size;
    pi->versions = calloc(pi->n_versions ? pi->n_versions : 1, sizeof(*pi->versions));
    if (!pi->versions)
        return -ENOMEM;
    for (uint32_t i = 0; i < pi->n_versions; i++) {
        const msgpack_object *pair = &vs->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
            pair->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            pair->via.array.ptr[0].via.u64 > UINT32_MAX ||
            pair->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
            keyd_state_parse(pair->via.array.ptr[1].via.str.ptr,
                             pair->via.array.ptr[1].via.str.size,
                             &pi->versions[i].state) != 0)
            return -EPROTO;
        pi->versions[i].version = (uint32_t)pair->via.array.ptr[0].via.u64;
    }
    return 0;
}

struct list_out {
    struct keyd_project_info *list;
    size_t n;
};

static int unpack_list(struct keyd_client *c, const struct reply *r, void *arg)
{
    struct list_out *o = arg;
    const msgpack_object *ps = mp_map_get(r->map, "projects");
    int rc = 0;

    if (!ps || ps->type != MSGPACK_OBJECT_ARRAY) {
        rc = -EPROTO;
    } else {
        o->list = calloc(ps->via.array.size ? ps->via.array.size : 1, sizeof(*o->list));
        if (!o->list)
            rc = -ENOMEM;
        for (uint32_t i = 0; rc == 0 && i < ps->via.array.size; i++) {
            rc = list_entry(&ps->via.array.ptr[i], &o->list[i]);
            o->n = i + 1;
        }
    }
    if (rc == -EPROTO)
        set_err(c, "keyd: malformed LIST reply");
    return rc;
}

int keyd_list(struct keyd_client *c, struct keyd_project_info **out, size_t *n)
{
    struct list_out o = { NULL, 0 };
    struct call k;
    int rc;

    *out = NULL;
    *n = 0;
    call_start(&k, KEYD_OP_LIST, NULL, 0);
    rc = call_finish(c, &k, 1, unpack_list, &o);
    if (rc != 0) {
        keyd_list_free(o.list, o.n);
        return rc;
    }
    *out = o.list;
    *n = o.n;
    return 0;
}

void keyd_list_free(struct keyd_project_info *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i].versions);
    free(list);
}

static int unpack_records(struct keyd_client *c, const struct reply *r, void *arg)
{
    if (mp_get_uint(r->map, "records", arg) != 0) {
        set_err(c, "keyd: reply without \"records\"");
        return -EPROTO;
    }
    return 0;
}

int keyd_audit_verify(struct keyd_client *c, uint64_t *records)
{
    struct call k;
    call_start(&k, KEYD_OP_AUDIT_VERIFY, NULL, 0);
    return call_finish(c, &k, 1, unpack_records, records);
}

/* --- ingest keys -------------------------------------------------------- */

/* Copy str KEY of the reply, 1..CAP-1 bytes, into OUT (NUL-terminated). */
static int copy_str(struct keyd_client *c, const struct reply *r, const char *key, char *out,
                    size_t cap)
{
    const char *p;
    size_t n;
    if (mp_get_str(r->map, key, &p, &n) != 0 || n == 0 || n >= cap || memchr(p, 0, n)) {
        set_err(c, "keyd: reply field \"%s\" missing or malformed", key);
        return -EPROTO;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

struct ingest_out {
    char **key;
    char *id, *project;
};

static int unpack_ingest_create(struct keyd_client *c, const struct reply *r, void *arg)
{
    struct ingest_out *o = arg;
    char *k = sodium_malloc(KEYD_INGEST_TOKEN_LEN + 1);
    int rc;
    if (!k)
        return -ENOMEM;
    if ((rc = copy_str(c, r, "id", o->id, KEYD_INGEST_ID_LEN + 1)) != 0 ||
        (rc = copy_str(c, r, "key", k, KEYD_INGEST_TOKEN_LEN + 1)) != 0) {
        sodium_free(k);
        return rc;
    }
    *o->key = k;
    return 0;
}

int keyd_ingest_key_create(struct keyd_client *c, const char *project, char **key,
                           char id[KEYD_INGEST_ID_LEN + 1])
{
    struct ingest_out o = { key, id, NULL };
    struct call k;
    int rc;

    *key = NULL;
    id[0] = '\0';
    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, KEYD_OP_INGEST_KEY_CREATE, project, 0);
    return call_finish(c, &k, 0, unpack_ingest_create, &o);
}

struct ingest_list_out {
    struct keyd_ingest_key_info *list;
    size_t n;
};

static int unpack_ingest_list(struct keyd_client *c, const struct reply *r, void *arg)
{
    struct ingest_list_out *o = arg;
    const msgpack_object *ks = mp_map_get(r->map, "keys");

    if (!ks || ks->type != MSGPACK_OBJECT_ARRAY) {
        set_err(c, "keyd: malformed INGEST_KEY_LIST reply");
        return -EPROTO;
    }
    if (ks->via.array.size == 0)
        return 0;
    if (!(o->list = calloc(ks->via.array.size, sizeof(*o->list))))
        return -ENOMEM;
    for (uint32_t i = 0; i < ks->via.array.size; i++) {
        const msgpack_object *e = &ks->via.array.ptr[i];
        struct keyd_ingest_key_info *ki = &o->list[i];
        const char *id;
        size_t il;
        o->n = i + 1;
        if (mp_get_str(e, "id", &id, &il) != 0 || il != KEYD_INGEST_ID_LEN ||
            mp_get_uint(e, "created", &ki->created) != 0 ||
            mp_get_uint(e, "revoked", &ki->revoked) != 0) {
            set_err(c, "keyd: malformed INGEST_KEY_LIST reply");
            return -EPROTO;
        }
        memcpy(ki->id, id, il);
        ki->id[il] = '\0';
    }
    return 0;
}

int keyd_ingest_key_list(struct keyd_client *c, const char *project,
                         struct keyd_ingest_key_info **out, size_t *n)
{
    struct ingest_list_out o = { NULL, 0 };
    struct call k;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = valid_project(c, project)) != 0)
        return rc;
    call_start(&k, KEYD_OP_INGEST_KEY_LIST, project, 0);
    if ((rc = call_finish(c, &k, 1, unpack_ingest_list, &o)) != 0) {
        free(o.list);
        return rc;
    }
    *out = o.list;
    *n = o.n;
    return 0;
}

int keyd_ingest_key_revoke(struct keyd_client *c, const char *project, const char *id)
{
    struct call k;
    int rc;

    if ((rc = valid_project(c, project)) != 0)
        return rc;
    if (!id || strlen(id) != KEYD_INGEST_ID_LEN) {
        set_err(c, "keyd: ingest key ID must be %d hex characters", KEYD_INGEST_ID_LEN);
        return -EINVAL;
    }
    call_start(&k, KEYD_OP_INGEST_KEY_REVOKE, project, 1);
    mp_pack_cstr(&k.pk, "id");
    mp_pack_cstr(&k.pk, id);
    /* Revoking twice is harmless: re-sent after a dead connection. */
    return call_finish(c, &k, 1, NULL, NULL);
}

static int unpack_ingest_auth(struct keyd_client *c, const struct reply *r, void *arg)
{
    struct ingest_out *o = arg;
    int rc;
    if ((rc = copy_str(c, r, "project", o->project, KEYD_PROJECT_MAX + 1)) != 0 ||
        (rc = copy_str(c, r, "id", o->id, KEYD_INGEST_ID_LEN + 1)) != 0)
        o->project[0] = o->id[0] = '\0';
    return rc;
}

/* Longer bearer values are refused without asking keyd: no key is that
 * long, and the request must fit keyd's frame cap. */
#define INGEST_AUTH_SEND_MAX (KEYD_REQ_MAX / 2)

int keyd_ingest_auth(struct keyd_client *c, const char *key, size_t len,
                     char project[KEYD_PROJECT_MAX + 1], char id[KEYD_INGEST_ID_LEN + 1])
{
    struct ingest_out o = { NULL, id, project };
    struct call k;
    int rc;

    project[0] = id[0] = '\0';
    if (!key || len > INGEST_AUTH_SEND_MAX) {
        set_err(c, "keyd: ingest key of %zu bytes: longer than any key", key ? len : 0);
        return -EACCES;
    }
    call_start(&k, KEYD_OP_INGEST_AUTH, NULL, 1);
    pack_bin(&k.pk, "key", key, len);
    rc = call_finish(c, &k, 1, unpack_ingest_auth, &o);
    /* On the wire EKEYREJECTED is "the key does not verify" and EACCES "you
     * may not ask"; to the caller the first is the only -EACCES. */
    if (rc == -EKEYREJECTED)
        return -EACCES;
    if (rc == -EACCES)
        return -EPERM;
    return rc;
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
    call_start(&k, KEYD_OP_SUBSCRIBE, NULL, 0);
    rc = call_finish(c, &k, 0, take_conn, &fd);
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

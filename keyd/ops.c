/*
 * ops.c - see ops.h.  Layout: reply helpers, request parsing and the
 * authorization check (handle), then one function per operation.  Every
 * path through ops_handle stages exactly one audit record, allowed or not.
 */
#include "config.h"
#include "keyd/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/keyd_client.h"
#include "keyd/proto.h"
#include "keyd/seal.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/log.h"

/* A parsed request and what the audit record will say about it. */
struct req {
    const msgpack_object *map;
    enum keyd_op op;
    char project[64];             /* "" if absent or invalid */
    struct ks_project *p;
    uint32_t version;             /* audited */
    uint32_t n;                   /* audited */
    int err;                      /* positive errno of the outcome */
    char msg[200];
};

static void pk_str(msgpack_packer *pk, const char *s)
{
    mp_pack_cstr(pk, s);
}

static void pk_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

void ops_error_reply(msgpack_sbuffer *out, int err, const char *msg)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "ok");
    msgpack_pack_false(&pk);
    pk_str(&pk, "err");
    pk_str(&pk, keyd_errno_name(err));
    pk_str(&pk, "msg");
    pk_str(&pk, msg);
}

void ops_event_pack(msgpack_sbuffer *out, const struct keyd_event_out *ev)
{
    msgpack_packer pk;
    const char *t = ev->type == KEYD_EV_SHRED ? "SHRED"
                    : ev->type == KEYD_EV_RETIRE ? "RETIRE" : "ROTATE";
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "event");
    pk_str(&pk, t);
    pk_str(&pk, "project");
    pk_str(&pk, ev->project);
    pk_str(&pk, "version");
    msgpack_pack_uint32(&pk, ev->version);
}

static int fail(struct req *rq, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct req *rq, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->msg, sizeof(rq->msg), fmt, ap);
    va_end(ap);
    rq->err = err;
    return -err;
}

int ops_init(struct keyd_state *st, const unsigned char *master)
{
    st->master = master;
    st->audit_key = sodium_malloc(AUDIT_MAC_LEN);
    st->dek_scratch = sodium_malloc((size_t)KEYD_GEN_MAX * KEYD_DEK_LEN);
    if (!st->audit_key || !st->dek_scratch) {
        ops_release(st);
        return -ENOMEM;
    }
    return seal_derive(master, SEAL_SUB_AUDIT, st->audit_key);
}

void ops_release(struct keyd_state *st)
{
    if (st->audit_key)
        sodium_free(st->audit_key);
    if (st->dek_scratch)
        sodium_free(st->dek_scratch);
    st->audit_key = st->dek_scratch = NULL;
}

/* Stage the audit record for RQ.  Returns 0 or -EIO. */
static int audit_req(struct keyd_state *st, const struct keyd_peer *peer, const struct req *rq)
{
    struct audit_rec rec = {
        .gen = st->ks->gen, .uid = peer->uid, .pid = peer->pid,
        .op = keyd_op_name(rq->op), .project = rq->project[0] ? rq->project : NULL,
        .version = rq->version, .n = rq->n,
        .result = rq->err ? keyd_errno_name(rq->err) : "ok",
    };
    return audit_add(st->audit, &rec, NULL);
}

static const struct tv_userlist *class_list(const struct tv_config *cfg, enum keyd_class c)
{
    switch (c) {
    case KEYD_CLASS_VAULT: return &cfg->keyd.vault_users;
    case KEYD_CLASS_AGENT: return &cfg->keyd.agent_users;
    case KEYD_CLASS_ADMIN: return &cfg->keyd.admin_users;
    default: return NULL;
    }
}

static const char *class_key(enum keyd_class c)
{
    return c == KEYD_CLASS_VAULT ? "vault_users" : c == KEYD_CLASS_AGENT ? "agent_users"
                                                                         : "admin_users";
}

/* The project named by the request, which must exist. */
static int need_project(struct keyd_state *st, struct req *rq, int live)
{
    if (!rq->project[0])
        return fail(rq, EINVAL, "keyd: %s: missing or invalid \"project\"",
                    keyd_op_name(rq->op));
    rq->p = ks_find(st->ks, rq->project);
    if (!rq->p)
        return fail(rq, ENOENT, "keyd: project \"%s\": no such project", rq->project);
    if (live && rq->p->shredded)
        return fail(rq, EKEYREVOKED, "keyd: project \"%s\": shredded", rq->project);
    return 0;
}

/* The ACTIVE version V of the request's project, or the reason it is not. */
static struct ks_version *need_version(struct req *rq, uint32_t v)
{
    struct ks_project *p = rq->p;
    struct ks_version *kv = ks_version(p, v);
    if (kv)
        return kv;
    if (v == 0 || v > p->nv)
        fail(rq, ENOENT, "keyd: project \"%s\": no key version %" PRIu32, p->name, v);
    else if (p->v[v - 1].state == KEYD_V_RETIRED)
        fail(rq, EKEYEXPIRED, "keyd: project \"%s\": key version %" PRIu32 " is retired",
             p->name, v);
    else
        fail(rq, EKEYREVOKED, "keyd: project \"%s\": key version %" PRIu32 " is shredded",
             p->name, v);
    return NULL;
}

static int get_u32(struct req *rq, const char *key, uint32_t *out)
{
    uint64_t v;
    if (mp_get_uint(rq->map, key, &v) != 0 || v > UINT32_MAX)
        return fail(rq, EINVAL, "keyd: %s: missing or invalid \"%s\"", keyd_op_name(rq->op),
                    key);
    *out = (uint32_t)v;
    return 0;
}

/* --- vault_users ------------------------------------------------------- */

static void wrap_dek(const struct ks_project *p, const struct ks_version *v,
                     const unsigned char *dek, unsigned char *out)
{
    unsigned char aad[SEAL_AAD_MAX];
    size_t al = seal_aad(aad, SEAL_KIND_DEK, p->name, v->version, 0);
    seal_seal(v->kek, aad, al, dek, KEYD_DEK_LEN, out);
}

static int unwrap_dek(const struct ks_project *p, const struct ks_version *v,
                      const unsigned char *w, unsigned char *dek)
{
    unsigned char aad[SEAL_AAD_MAX];
    size_t al = seal_aad(aad, SEAL_KIND_DEK, p->name, v->version, 0);
    return seal_open(v->kek, aad, al, w, KEYD_WRAPPED_LEN, dek);
}

static int op_gen_dek(struct keyd_state *st, struct req *rq, unsigned char **wrapped)
{
    uint32_t n;
    int r;
    if ((r = need_project(st, rq, 1)) != 0 || (r = get_u32(rq, "n", &n)) != 0)
        return r;
    rq->n = n;
    rq->version = rq->p->current;
    if (n == 0 || n > KEYD_GEN_MAX)
        return fail(rq, EINVAL, "keyd: GEN_DEK: count %" PRIu32 " outside 1..%d", n,
                    KEYD_GEN_MAX);
    struct ks_version *v = ks_version(rq->p, rq->p->current);
    if (!v)
        return fail(rq, EIO, "keyd: project \"%s\": current version missing", rq->project);
    *wrapped = malloc((size_t)n * KEYD_WRAPPED_LEN);
    if (!*wrapped)
        return fail(rq, ENOMEM, "keyd: out of memory");
    randombytes_buf(st->dek_scratch, (size_t)n * KEYD_DEK_LEN);
    for (uint32_t i = 0; i < n; i++)
        wrap_dek(rq->p, v, st->dek_scratch + (size_t)i * KEYD_DEK_LEN,
                 *wrapped + (size_t)i * KEYD_WRAPPED_LEN);
    return 0;
}

static int op_unwrap(struct keyd_state *st, struct req *rq)
{
    const void *w;
    size_t wl;
    int r;
    if ((r = need_project(st, rq, 1)) != 0 || (r = get_u32(rq, "version", &rq->version)) != 0)
        return r;
    if (mp_get_bin(rq->map, "wrapped", &w, &wl) != 0 || wl == 0 || wl % KEYD_WRAPPED_LEN ||
        wl / KEYD_WRAPPED_LEN > KEYD_GEN_MAX)
        return fail(rq, EINVAL, "keyd: %s: \"wrapped\" must be 1..%d wrapped DEKs of %d bytes",
                    keyd_op_name(rq->op), KEYD_GEN_MAX, KEYD_WRAPPED_LEN);
    rq->n = (uint32_t)(wl / KEYD_WRAPPED_LEN);
    if (rq->op == KEYD_OP_REWRAP && rq->n != 1)
        return fail(rq, EINVAL, "keyd: REWRAP takes exactly one wrapped DEK");
    struct ks_version *v = need_version(rq, rq->version);
    if (!v)
        return -rq->err;
    for (uint32_t i = 0; i < rq->n; i++)
        if (unwrap_dek(rq->p, v, (const unsigned char *)w + (size_t)i * KEYD_WRAPPED_LEN,
                       st->dek_scratch + (size_t)i * KEYD_DEK_LEN) != 0) {
            sodium_memzero(st->dek_scratch, (size_t)rq->n * KEYD_DEK_LEN);
            return fail(rq, EBADMSG, "keyd: project \"%s\" version %" PRIu32 ": wrapped DEK "
                        "%" PRIu32 " does not authenticate", rq->project, rq->version, i);
        }
    return 0;
}

/* --- admin: changes of key material ----------------------------------- */

/*
 * Make a key change durable: stage its audit record (under the new
 * generation), store the record as the keystore's chain head and pending
 * record, save the keystore, then flush the log.  A crash between the save
 * and the flush is repaired at start-up from the pending record.  On a failed
 * save the in-memory keystore is reloaded from disk, so memory never holds
 * keys the disk does not.  Returns 0, -EIO (request failed, keyd consistent)
 * or -EPIPE (keyd must stop).
 */
static int commit_change(struct keyd_state *st, const struct keyd_peer *peer, struct req *rq)
{
    char line[AUDIT_LINE_MAX];
    struct audit_rec rec = {
        .gen = st->ks->gen, .uid = peer->uid, .pid = peer->pid, .op = keyd_op_name(rq->op),
        .project = rq->project, .version = rq->version, .n = rq->n, .result = "ok",
    };
    char err[256];
    int r;

    if ((r = audit_add(st->audit, &rec, line)) == 0) {
        audit_head(st->audit, &st->ks->head_seq, st->ks->head_mac);
        free(st->ks->pending);
        st->ks->pending = strdup(line);
        if (!st->ks->pending)
            r = -ENOMEM;
        else
            r = ks_save(st->ks);
        if (r != 0)
            audit_discard(st->audit);
    }
    if (r != 0) {
        struct keystore *fresh = NULL;
        log_error("keystore %s: cannot save: %s", st->ks->path, strerror(-r));
        if (ks_load(st->ks->path, st->master, &fresh, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return -EPIPE;
        }
        ks_free(st->ks);
        st->ks = fresh;
        rq->p = NULL;
        fail(rq, EIO, "keyd: keystore %s: cannot save", fresh->path);
        return -EIO;
    }
    /* Fault injection for the crash-recovery test: die in the one window
     * where the keystore is ahead of the log. */
    const char *crash = getenv("TRACEVAULT_KEYD_TEST_CRASH");
    if (crash && strcmp(crash, "after-keystore-save") == 0)
        _exit(137);
    if (audit_flush(st->audit) != 0) {
        log_error("audit log %s: cannot write after a key change; stopping (the record is "
                  "kept in the keystore and written at the next start)", st->audit_path);
        return -EPIPE;
    }
    return 0;
}

static int op_change(struct keyd_state *st, const struct keyd_peer *peer, struct req *rq,
                     struct keyd_event_out *ev)
{
    unsigned changed = 1;
    int r;

    /* Earlier staged records go first, so the keystore's head is the newest. */
    if (audit_flush(st->audit) != 0)
        return fail(rq, EIO, "keyd: audit log %s: cannot write", st->audit_path);
    switch (rq->op) {
    case KEYD_OP_CREATE:
        if (!rq->project[0])
            return fail(rq, EINVAL, "keyd: CREATE: missing or invalid \"project\"");
        r = ks_create(st->ks, rq->project, &rq->version);
        if (r == -EEXIST)
            return fail(rq, EEXIST, "keyd: project \"%s\": exists", rq->project);
        break;
    case KEYD_OP_ROTATE:
        if ((r = need_project(st, rq, 1)) != 0)
            return r;
        r = ks_rotate(st->ks, rq->p, &rq->version);
        ev->type = KEYD_EV_ROTATE;
        break;
    case KEYD_OP_RETIRE:
        if ((r = need_project(st, rq, 1)) != 0 || (r = get_u32(rq, "below", &rq->version)) != 0)
            return r;
        r = ks_retire(st->ks, rq->p, rq->version, &changed);
        if (r == -EINVAL)
            return fail(rq, EINVAL, "keyd: project \"%s\": cannot retire below %" PRIu32
                        " (current version is %" PRIu32 ")", rq->project, rq->version,
                        rq->p->current);
        ev->type = KEYD_EV_RETIRE;
        break;
    case KEYD_OP_SHRED:
        if ((r = need_project(st, rq, 1)) != 0)
            return r;
        r = ks_shred(st->ks, rq->p);
        ev->type = KEYD_EV_SHRED;
        break;
    default: { /* APIKEY_SET */
        const void *k;
        size_t kl;
        if ((r = need_project(st, rq, 1)) != 0)
            return r;
        if ((mp_get_bin(rq->map, "key", &k, &kl) != 0 &&
             mp_get_str(rq->map, "key", (const char **)&k, &kl) != 0) ||
            kl == 0 || kl > KEYD_APIKEY_MAX || memchr(k, 0, kl) || memchr(k, '\n', kl))
            return fail(rq, EINVAL, "keyd: APIKEY_SET: \"key\" must be 1..%d bytes without "
                        "NUL or newline", KEYD_APIKEY_MAX);
        r = ks_apikey_set(st->ks, rq->p, k, kl);
        break;
    }
    }
    if (r != 0) {
        ev->type = 0;
        return fail(rq, -r, "keyd: project \"%s\": %s failed: %s", rq->project,
                    keyd_op_name(rq->op), strerror(-r));
    }
    if (!changed) {           /* nothing retired: no new generation, plain record */
        ev->type = 0;
        return 0;
    }
    snprintf(ev->project, sizeof(ev->project), "%s", rq->project);
    ev->version = rq->version;
    r = commit_change(st, peer, rq);
    if (r != 0)
        ev->type = 0;
    return r == -EPIPE ? -EPIPE : (r ? -EIO : 1);   /* 1: record already written */
}

/* --- admin: read-only ------------------------------------------------- */

static const char *state_name(enum keyd_version_state s)
{
    return s == KEYD_V_ACTIVE ? "active" : s == KEYD_V_RETIRED ? "retired" : "shredded";
}

static void pack_list(const struct keystore *ks, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "projects");
    msgpack_pack_array(pk, ks->np);
    for (size_t i = 0; i < ks->np; i++) {
        const struct ks_project *p = &ks->p[i];
        msgpack_pack_map(pk, 5);
        pk_str(pk, "name");
        pk_str(pk, p->name);
        pk_str(pk, "current");
        msgpack_pack_uint32(pk, p->current);
        pk_str(pk, "versions");
        msgpack_pack_array(pk, p->nv);
        for (size_t j = 0; j < p->nv; j++) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint32(pk, p->v[j].version);
            pk_str(pk, state_name(p->v[j].state));
        }
        pk_str(pk, "apikey");
        p->apikey ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pk_str(pk, "shredded");
        p->shredded ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
}

static int op_audit_verify(struct keyd_state *st, struct req *rq, uint64_t *records)
{
    struct audit_scan sc;
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    char err[200];

    if (audit_flush(st->audit) != 0)
        return fail(rq, EIO, "keyd: audit log %s: cannot write", st->audit_path);
    audit_head(st->audit, &seq, mac);
    if (audit_verify_file(st->audit_path, st->audit_key, 0, NULL, &sc, err, sizeof(err)) != 0)
        return fail(rq, EBADMSG, "%s", err);
    if (sc.last_seq != seq || sodium_memcmp(sc.last_mac, mac, AUDIT_MAC_LEN) != 0)
        return fail(rq, EBADMSG, "audit log %s: ends at record %" PRIu64 " but the chain head "
                    "is record %" PRIu64 " (records removed from the end, or the log replaced)",
                    st->audit_path, sc.last_seq, seq);
    *records = sc.records;
    return 0;
}

/* --- dispatch ----------------------------------------------------------- */

void ops_reject(struct keyd_state *st, const struct keyd_peer *peer, int err, const char *msg,
                msgpack_sbuffer *out)
{
    struct req rq;
    memset(&rq, 0, sizeof(rq));
    rq.err = err;
    st->requests++;
    if (audit_req(st, peer, &rq) != 0)
        log_warn("audit log %s: cannot record a rejected frame", st->audit_path);
    ops_error_reply(out, err, msg);
}

static void parse_req(struct req *rq, const msgpack_object *map)
{
    const char *s;
    size_t sl;

    rq->map = map;
    if (mp_get_str(map, "op", &s, &sl) == 0)
        rq->op = keyd_op_parse(s, sl);
    if (mp_get_str(map, "project", &s, &sl) == 0 && sl > 0 && sl < sizeof(rq->project) &&
        !memchr(s, '\0', sl)) {
        memcpy(rq->project, s, sl);
        rq->project[sl] = '\0';
        if (!tv_project_name_valid(rq->project))
            rq->project[0] = '\0';
    }
}

int ops_handle(struct keyd_state *st, const struct keyd_peer *peer, const void *body,
               size_t len, msgpack_sbuffer *out, int *subscribe, struct keyd_event_out *ev)
{
    struct req rq;
    msgpack_unpacked up;
    msgpack_packer pk;
    unsigned char *wrapped = NULL;
    uint64_t records = 0;
    int r = 0, written = 0;

    memset(&rq, 0, sizeof(rq));
    memset(ev, 0, sizeof(*ev));
    *subscribe = 0;
    st->requests++;
    msgpack_unpacked_init(&up);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);

    if (mp_decode(body, len, KEYD_REQ_DEPTH, KEYD_REQ_OBJECTS, &up) != 0 ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        fail(&rq, EPROTO, "keyd: malformed request (not one msgpack map)");
        goto reply;
    }
    parse_req(&rq, &up.data);
    if (rq.op == KEYD_OP_UNKNOWN) {
        fail(&rq, EOPNOTSUPP, "keyd: unknown or missing \"op\"");
        goto reply;
    }
    enum keyd_class cls = keyd_op_class(rq.op);
    const struct tv_userlist *list = class_list(st->cfg, cls);
    if (!list || !tv_userlist_match(list, peer->uid, peer->gid,
                                    peer->ngroups >= 0 ? peer->groups : NULL, peer->ngroups)) {
        st->denied++;
        fail(&rq, EACCES, "keyd: uid %u may not %s (not in [keyd] %s)", (unsigned)peer->uid,
             keyd_op_name(rq.op), class_key(cls));
        goto reply;
    }
    switch (rq.op) {
    case KEYD_OP_GEN_DEK:
        op_gen_dek(st, &rq, &wrapped);
        break;
    case KEYD_OP_UNWRAP:
    case KEYD_OP_REWRAP:
        op_unwrap(st, &rq);
        break;
    case KEYD_OP_SUBSCRIBE:
        break;
    case KEYD_OP_APIKEY_GET:
        if (need_project(st, &rq, 1) == 0 && !rq.p->apikey)
            fail(&rq, ENOENT, "keyd: project \"%s\": no API key set", rq.project);
        break;
    case KEYD_OP_PSEUDONYM_KEY:
        need_project(st, &rq, 1);
        break;
    case KEYD_OP_CREATE: case KEYD_OP_ROTATE: case KEYD_OP_RETIRE: case KEYD_OP_SHRED:
    case KEYD_OP_APIKEY_SET:
        r = op_change(st, peer, &rq, ev);
        if (r == -EPIPE) {
            ops_error_reply(out, EIO, "keyd: cannot record a key change; keyd is stopping");
            r = -EIO;
            goto out;
        }
        written = r == 1;
        r = 0;
        break;
    case KEYD_OP_LIST:
        break;
    case KEYD_OP_AUDIT_VERIFY:
        op_audit_verify(st, &rq, &records);
        break;
    default:
        fail(&rq, EOPNOTSUPP, "keyd: unknown op");
        break;
    }
reply:
    if (!written && audit_req(st, peer, &rq) != 0) {
        if (rq.op == KEYD_OP_UNWRAP || rq.op == KEYD_OP_REWRAP || rq.op == KEYD_OP_GEN_DEK)
            sodium_memzero(st->dek_scratch, (size_t)KEYD_GEN_MAX * KEYD_DEK_LEN);
        ev->type = 0;
        *subscribe = 0;
        ops_error_reply(out, EIO, "keyd: audit log: cannot record the request");
        goto out;
    }
    if (rq.err) {
        ops_error_reply(out, rq.err, rq.msg);
        goto out;
    }
    switch (rq.op) {
    case KEYD_OP_GEN_DEK:
        msgpack_pack_map(&pk, 4);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "version");
        msgpack_pack_uint32(&pk, rq.version);
        pk_str(&pk, "deks");
        pk_bin(&pk, st->dek_scratch, (size_t)rq.n * KEYD_DEK_LEN);
        pk_str(&pk, "wrapped");
        pk_bin(&pk, wrapped, (size_t)rq.n * KEYD_WRAPPED_LEN);
        sodium_memzero(st->dek_scratch, (size_t)rq.n * KEYD_DEK_LEN);
        break;
    case KEYD_OP_UNWRAP:
        msgpack_pack_map(&pk, 2);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "dek");
        pk_bin(&pk, st->dek_scratch, (size_t)rq.n * KEYD_DEK_LEN);
        sodium_memzero(st->dek_scratch, (size_t)rq.n * KEYD_DEK_LEN);
        break;
    case KEYD_OP_REWRAP: {
        unsigned char nw[KEYD_WRAPPED_LEN];
        struct ks_version *cv = ks_version(rq.p, rq.p->current);
        wrap_dek(rq.p, cv, st->dek_scratch, nw);
        sodium_memzero(st->dek_scratch, KEYD_DEK_LEN);
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "version");
        msgpack_pack_uint32(&pk, cv->version);
        pk_str(&pk, "wrapped");
        pk_bin(&pk, nw, sizeof(nw));
        break;
    }
    case KEYD_OP_APIKEY_GET:
    case KEYD_OP_PSEUDONYM_KEY:
        msgpack_pack_map(&pk, 2);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "key");
        if (rq.op == KEYD_OP_APIKEY_GET)
            pk_bin(&pk, rq.p->apikey, rq.p->apikey_len);
        else
            pk_bin(&pk, rq.p->pseudonym, KEYD_PSEUDONYM_KEY_LEN);
        break;
    case KEYD_OP_LIST:
        pack_list(st->ks, &pk);
        break;
    case KEYD_OP_AUDIT_VERIFY:
        msgpack_pack_map(&pk, 2);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "records");
        msgpack_pack_uint64(&pk, records);
        break;
    case KEYD_OP_CREATE:
    case KEYD_OP_ROTATE:
        msgpack_pack_map(&pk, 2);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pk_str(&pk, "version");
        msgpack_pack_uint32(&pk, rq.version);
        break;
    case KEYD_OP_SUBSCRIBE:
        *subscribe = 1;
        /* fall through */
    default:
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        break;
    }
out:
    free(wrapped);
    msgpack_unpacked_destroy(&up);
    return r;
}

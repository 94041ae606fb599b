/*
 * ops.c - see ops.h.  Layout: the request context and its helpers, the
 * operations (one function each, as OpenSSH's ssh-agent has process_*: each
 * checks its arguments, acts and packs its own reply), the key-change
 * commit, the dispatch table (op -> allowed classes, handler) and
 * ops_handle, which decodes, authorizes, dispatches and audits.  Every path
 * through ops_handle stages or writes exactly one audit record, except
 * INGEST_AUTH verifications, which are counted and whose failures are
 * aggregated (op_ingest_auth, ops_tick): the gateway asks once per request.
 *
 * The keystore is reached only through keystore.h; KEK bytes never pass
 * through this file.
 *
 * To add an operation: a name in proto.h/proto.c, a handler here, a row in
 * op_table.  To add a class of callers: a bit, and a row in class_table
 * naming its [keyd] list in lib/config.h.
 */
#include "config.h"
#include "keyd/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyd/proto.h"
#include "keyd/records.h"
#include "keyd/seal.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/util.h"

/* One request in flight: what was asked, what the audit record will say
 * about it, and where its reply goes. */
struct op_ctx {
    struct keyd_state *st;
    const struct keyd_peer *peer;
    const msgpack_object *map;
    enum keyd_op op;
    char project[KEYD_PROJECT_MAX + 1];  /* "" if absent or invalid */
    struct ks_project *p;
    uint32_t version;             /* audited */
    uint32_t n;                   /* audited */
    int err;                      /* positive errno of the outcome */
    char msg[200];
    msgpack_packer pk;            /* the reply */
    struct keyd_event_out *ev;
    int subscribe;
    int audited;                  /* the op wrote its own record (key changes), or
                                     none is due (INGEST_AUTH) */
    char key_id[KEYD_INGEST_ID_LEN + 1];  /* audited when set: an ingest key's ID */
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

/* Start a successful reply of 1 + NFIELDS pairs: {"ok": true, ...}. */
static void reply_ok(struct op_ctx *x, uint32_t nfields)
{
    msgpack_pack_map(&x->pk, 1 + nfields);
    pk_str(&x->pk, "ok");
    msgpack_pack_true(&x->pk);
}

static void reply_ok_version(struct op_ctx *x, uint32_t version)
{
    reply_ok(x, 1);
    pk_str(&x->pk, "version");
    msgpack_pack_uint32(&x->pk, version);
}

void ops_error_reply(struct gbuf *out, int err, const char *msg)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, gbuf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "ok");
    msgpack_pack_false(&pk);
    pk_str(&pk, "err");
    pk_str(&pk, keyd_errno_name(err));
    pk_str(&pk, "msg");
    pk_str(&pk, msg);
}

void ops_event_pack(struct gbuf *out, const struct keyd_event_out *ev)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, gbuf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "event");
    pk_str(&pk, keyd_event_name(ev->type));
    pk_str(&pk, "project");
    pk_str(&pk, ev->project);
    pk_str(&pk, "version");
    msgpack_pack_uint32(&pk, ev->version);
}

static int fail(struct op_ctx *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct op_ctx *x, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
    va_end(ap);
    x->err = err;
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

/* Format X's audit record body into BODY (AUDIT_LINE_MAX). */
static int req_body(struct keyd_state *st, const struct keyd_peer *peer, const struct op_ctx *x,
                    char *body)
{
    struct keyd_rec rec = {
        .gen = ks_gen(st->ks), .uid = peer->uid, .pid = peer->pid,
        .op = keyd_op_name(x->op), .project = x->project[0] ? x->project : NULL,
        .version = x->version, .n = x->n, .key_id = x->key_id,
        .result = x->err ? keyd_errno_name(x->err) : "ok",
    };
    return keyd_rec_body(body, AUDIT_LINE_MAX, &rec) < 0 ? -EINVAL : 0;
}

/* Stage the audit record for X.  Returns 0 or -EIO. */
static int audit_req(struct keyd_state *st, const struct keyd_peer *peer,
                     const struct op_ctx *x)
{
    char body[AUDIT_LINE_MAX];
    if (req_body(st, peer, x, body) != 0 || audit_add(st->audit, body, NULL) != 0)
        return -EIO;
    return 0;
}

int ops_audit_cont(char *buf, size_t cap, const char *prev_hex, void *arg)
{
    struct keyd_state *st = arg;
    struct keyd_rec rec = { .gen = ks_gen(st->ks), .uid = getuid(), .pid = getpid(),
                            .op = "LOG_CONTINUES", .result = "ok", .prev_hex = prev_hex };
    return keyd_rec_body(buf, cap, &rec);
}

/* --- argument helpers ---------------------------------------------------- */

/* The project named by the request, which must exist (and, if LIVE, not be
 * shredded). */
static int need_project(struct op_ctx *x, int live)
{
    if (!x->project[0])
        return fail(x, EINVAL, "keyd: %s: missing or invalid \"project\"", keyd_op_name(x->op));
    x->p = ks_find(x->st->ks, x->project);
    if (!x->p)
        return fail(x, ENOENT, "keyd: project \"%s\": no such project", x->project);
    if (live && ks_shredded(x->p))
        return fail(x, EKEYREVOKED, "keyd: project \"%s\": shredded", x->project);
    return 0;
}

/* Version V of the request's project must be ACTIVE. */
static int need_usable(struct op_ctx *x, uint32_t v)
{
    switch (ks_usable(x->p, v)) {
    case 0:
        return 0;
    case -ENOENT:
        return fail(x, ENOENT, "keyd: project \"%s\": no key version %" PRIu32, x->project, v);
    case -EKEYEXPIRED:
        return fail(x, EKEYEXPIRED, "keyd: project \"%s\": key version %" PRIu32
                    " is retired", x->project, v);
    default:
        return fail(x, EKEYREVOKED, "keyd: project \"%s\": key version %" PRIu32
                    " is shredded", x->project, v);
    }
}

static int need_u32(struct op_ctx *x, const char *key, uint32_t *out)
{
    uint64_t v;
    if (mp_get_uint(x->map, key, &v) != 0 || v > UINT32_MAX)
        return fail(x, EINVAL, "keyd: %s: missing or invalid \"%s\"", keyd_op_name(x->op), key);
    *out = (uint32_t)v;
    return 0;
}

/* --- vault_users ------------------------------------------------------- */

/* GEN_DEK {n, bind?}: N fresh DEKs wrapped under the current version; with
 * "bind", each for a fresh random file ID (returned as "file_ids"), so the
 * wrapped DEK opens only for that file (docs/KEYD.md "Binding"). */
static int op_gen_dek(struct op_ctx *x)
{
    unsigned char *deks = x->st->dek_scratch;
    unsigned char fids[KEYD_GEN_MAX * KEYD_FILE_ID_LEN];
    uint32_t n;
    int r, bind = 0;

    if ((r = need_project(x, 1)) != 0 || (r = need_u32(x, "n", &n)) != 0)
        return r;
    x->n = n;
    x->version = ks_current(x->p);
    if (n == 0 || n > KEYD_GEN_MAX)
        return fail(x, EINVAL, "keyd: GEN_DEK: count %" PRIu32 " outside 1..%d", n,
                    KEYD_GEN_MAX);
    if (mp_get_bool(x->map, "bind", &bind) != 0)
        bind = 0;
    if (ks_usable(x->p, x->version) != 0)
        return fail(x, EIO, "keyd: project \"%s\": current version missing", x->project);
    randombytes_buf(deks, (size_t)n * KEYD_DEK_LEN);
    if (bind)
        randombytes_buf(fids, (size_t)n * KEYD_FILE_ID_LEN);
    reply_ok(x, bind ? 4 : 3);
    pk_str(&x->pk, "version");
    msgpack_pack_uint32(&x->pk, x->version);
    pk_str(&x->pk, "deks");
    pk_bin(&x->pk, deks, (size_t)n * KEYD_DEK_LEN);
    if (bind) {
        pk_str(&x->pk, "file_ids");
        pk_bin(&x->pk, fids, (size_t)n * KEYD_FILE_ID_LEN);
    }
    pk_str(&x->pk, "wrapped");
    msgpack_pack_bin(&x->pk, (size_t)n * KEYD_WRAPPED_LEN);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char w[KEYD_WRAPPED_LEN];
        ks_wrap(x->p, x->version, bind ? fids + (size_t)i * KEYD_FILE_ID_LEN : NULL,
                deks + (size_t)i * KEYD_DEK_LEN, w);
        msgpack_pack_bin_body(&x->pk, w, sizeof(w));
    }
    sodium_memzero(deks, (size_t)n * KEYD_DEK_LEN);
    return 0;
}

/* The request's optional FIELD of COUNT file IDs into *IDS (NULL when
 * absent: DEKs wrapped for no one file). */
static int get_file_ids(struct op_ctx *x, const char *field, uint32_t count,
                        const unsigned char **ids)
{
    const void *b;
    size_t bl;
    *ids = NULL;
    if (mp_get_bin(x->map, field, &b, &bl) != 0)
        return 0;
    if (bl != (size_t)count * KEYD_FILE_ID_LEN)
        return fail(x, EINVAL, "keyd: %s: \"%s\" must hold %" PRIu32 " file IDs of %d bytes",
                    keyd_op_name(x->op), field, count, KEYD_FILE_ID_LEN);
    *ids = b;
    return 0;
}

/* Common to UNWRAP and REWRAP: unwrap the request's "wrapped" DEKs (all
 * under "version"; for "file_ids", or REWRAP's "file_id" unless "legacy",
 * when they are bound to files) into the scratch buffer; the caller wipes it. */
static int unwrap_request(struct op_ctx *x, const unsigned char **fids)
{
    const void *w;
    size_t wl;
    int r, legacy = 0;

    if ((r = need_project(x, 1)) != 0 || (r = need_u32(x, "version", &x->version)) != 0)
        return r;
    if (mp_get_bin(x->map, "wrapped", &w, &wl) != 0 || wl == 0 || wl % KEYD_WRAPPED_LEN ||
        wl / KEYD_WRAPPED_LEN > KEYD_GEN_MAX)
        return fail(x, EINVAL, "keyd: %s: \"wrapped\" must be 1..%d wrapped DEKs of %d bytes",
                    keyd_op_name(x->op), KEYD_GEN_MAX, KEYD_WRAPPED_LEN);
    x->n = (uint32_t)(wl / KEYD_WRAPPED_LEN);
    if (x->op == KEYD_OP_REWRAP && x->n != 1)
        return fail(x, EINVAL, "keyd: REWRAP takes exactly one wrapped DEK");
    if ((r = get_file_ids(x, x->op == KEYD_OP_REWRAP ? "file_id" : "file_ids", x->n, fids)) != 0)
        return r;
    if (x->op == KEYD_OP_REWRAP && mp_get_bool(x->map, "legacy", &legacy) == 0 && legacy &&
        !*fids)
        return fail(x, EINVAL, "keyd: REWRAP: \"legacy\" binds to a \"file_id\"; none given");
    if ((r = need_usable(x, x->version)) != 0)
        return r;
    for (uint32_t i = 0; i < x->n; i++)
        if (ks_unwrap(x->p, x->version,
                      *fids && !legacy ? *fids + (size_t)i * KEYD_FILE_ID_LEN : NULL,
                      (const unsigned char *)w + (size_t)i * KEYD_WRAPPED_LEN,
                      x->st->dek_scratch + (size_t)i * KEYD_DEK_LEN) != 0) {
            sodium_memzero(x->st->dek_scratch, (size_t)x->n * KEYD_DEK_LEN);
            return fail(x, EBADMSG, "keyd: project \"%s\" version %" PRIu32 ": wrapped DEK "
                        "%" PRIu32 " does not authenticate", x->project, x->version, i);
        }
    return 0;
}

static int op_unwrap(struct op_ctx *x)
{
    const unsigned char *fids;
    int r = unwrap_request(x, &fids);
    if (r != 0)
        return r;
    reply_ok(x, 1);
    pk_str(&x->pk, "dek");
    pk_bin(&x->pk, x->st->dek_scratch, (size_t)x->n * KEYD_DEK_LEN);
    sodium_memzero(x->st->dek_scratch, (size_t)x->n * KEYD_DEK_LEN);
    return 0;
}

/* Re-wrap one DEK under the current version, for the same file ("file_id"),
 * or for that file from no file ("legacy": the upgrade of a first-version
 * header); the DEK never leaves keyd. */
static int op_rewrap(struct op_ctx *x)
{
    unsigned char nw[KEYD_WRAPPED_LEN];
    const unsigned char *fid;
    uint32_t cur;
    int r = unwrap_request(x, &fid);
    if (r != 0)
        return r;
    cur = ks_current(x->p);
    r = ks_wrap(x->p, cur, fid, x->st->dek_scratch, nw);
    sodium_memzero(x->st->dek_scratch, KEYD_DEK_LEN);
    if (r != 0)
        return fail(x, EIO, "keyd: project \"%s\": current version missing", x->project);
    reply_ok(x, 2);
    pk_str(&x->pk, "version");
    msgpack_pack_uint32(&x->pk, cur);
    pk_str(&x->pk, "wrapped");
    pk_bin(&x->pk, nw, sizeof(nw));
    return 0;
}

static int op_subscribe(struct op_ctx *x)
{
    x->subscribe = 1;
    reply_ok(x, 0);
    return 0;
}

/* --- agent_users ------------------------------------------------------- */

static int op_apikey_get(struct op_ctx *x)
{
    const char *key;
    size_t len;
    int r;
    if ((r = need_project(x, 1)) != 0)
        return r;
    if (ks_apikey(x->p, &key, &len) != 0)
        return fail(x, ENOENT, "keyd: project \"%s\": no API key set", x->project);
    reply_ok(x, 1);
    pk_str(&x->pk, "key");
    pk_bin(&x->pk, key, len);
    return 0;
}

static int op_pseudonym_key(struct op_ctx *x)
{
    int r;
    if ((r = need_project(x, 1)) != 0)
        return r;
    reply_ok(x, 1);
    pk_str(&x->pk, "key");
    pk_bin(&x->pk, ks_pseudonym(x->p), KEYD_PSEUDONYM_KEY_LEN);
    return 0;
}

/* --- admin: changes of key material ----------------------------------- */

/* Before a key change: earlier staged records go first, so the keystore's
 * chain head will be the change's own record. */
static int change_begin(struct op_ctx *x)
{
    if (audit_flush(x->st->audit) != 0)
        return fail(x, EIO, "keyd: audit log %s: cannot write", x->st->audit_path);
    return 0;
}

/* A mutation of the keystore failed with R (nothing changed). */
static int change_failed(struct op_ctx *x, int r)
{
    return fail(x, -r, "keyd: project \"%s\": %s failed: %s", x->project, keyd_op_name(x->op),
                strerror(-r));
}

/*
 * Make a key change durable: stage its audit record (under the new
 * generation), store the record as the keystore's chain head and pending
 * record, save the keystore, then flush the log.  A crash between the save
 * and the flush is repaired at start-up from the pending record.  On a failed
 * save the in-memory keystore is reloaded from disk, so memory never holds
 * keys the disk does not.  On success subscribers get event EV (0: none).
 * Returns 0, -EIO (request failed, keyd consistent) or -EPIPE (keyd must
 * stop).
 */
static int change_commit(struct op_ctx *x, int ev)
{
    struct keyd_state *st = x->st;
    char line[AUDIT_LINE_MAX], body[AUDIT_LINE_MAX];
    char err[256];
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    int r;

    if ((r = req_body(st, x->peer, x, body)) == 0 && (r = audit_add(st->audit, body, line)) == 0) {
        audit_head(st->audit, &seq, mac);
        if ((r = ks_set_head(st->ks, seq, mac, line)) == 0)
            r = ks_save(st->ks);
        if (r != 0)
            audit_discard(st->audit);
    }
    if (r != 0) {
        struct keystore *fresh = NULL;
        log_error("keystore %s: cannot save: %s", ks_path(st->ks), strerror(-r));
        if (ks_load(ks_path(st->ks), st->master, &fresh, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return -EPIPE;
        }
        ks_free(st->ks);
        st->ks = fresh;
        x->p = NULL;
        return fail(x, EIO, "keyd: keystore %s: cannot save", ks_path(fresh));
    }
    if (ks_stale(st->ks))
        log_warn("keystore %s: the previous sealing key could not be overwritten: a copy of "
                 "the keystore from before may still open; keyd retries at its next start",
                 ks_path(st->ks));
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
    x->audited = 1;
    if (ev) {
        x->ev->type = ev;
        snprintf(x->ev->project, sizeof(x->ev->project), "%s", x->project);
        x->ev->version = x->version;
    }
    return 0;
}

static int op_create(struct op_ctx *x)
{
    int r;
    if ((r = change_begin(x)) != 0)
        return r;
    if (!x->project[0])
        return fail(x, EINVAL, "keyd: CREATE: missing or invalid \"project\"");
    r = ks_create(x->st->ks, x->project, &x->version);
    if (r == -EEXIST)
        return fail(x, EEXIST, "keyd: project \"%s\": exists", x->project);
    if (r != 0)
        return change_failed(x, r);
    if ((r = change_commit(x, 0)) != 0)
        return r;
    reply_ok_version(x, x->version);
    return 0;
}

static int op_rotate(struct op_ctx *x)
{
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0)
        return r;
    if ((r = ks_rotate(x->st->ks, x->p, &x->version)) != 0)
        return change_failed(x, r);
    if ((r = change_commit(x, KEYD_EV_ROTATE)) != 0)
        return r;
    reply_ok_version(x, x->version);
    return 0;
}

static int op_retire(struct op_ctx *x)
{
    unsigned changed = 0;
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0 ||
        (r = need_u32(x, "below", &x->version)) != 0)
        return r;
    r = ks_retire(x->st->ks, x->p, x->version, &changed);
    if (r == -EINVAL)
        return fail(x, EINVAL, "keyd: project \"%s\": cannot retire below %" PRIu32
                    " (current version is %" PRIu32 ")", x->project, x->version,
                    ks_current(x->p));
    if (r != 0)
        return change_failed(x, r);
    /* Nothing retired: no new generation, a plain record. */
    if (changed && (r = change_commit(x, KEYD_EV_RETIRE)) != 0)
        return r;
    reply_ok(x, 0);
    return 0;
}

static int op_shred(struct op_ctx *x)
{
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0)
        return r;
    if ((r = ks_shred(x->st->ks, x->p)) != 0)
        return change_failed(x, r);
    if ((r = change_commit(x, KEYD_EV_SHRED)) != 0)
        return r;
    reply_ok(x, 0);
    return 0;
}

/* A fresh sealing key for the whole keystore, the old one destroyed: a
 * keystore copy taken before no longer opens (keystore.h). */
static int op_rekey_master(struct op_ctx *x)
{
    int r;
    if ((r = change_begin(x)) != 0)
        return r;
    ks_rekey(x->st->ks);
    if ((r = change_commit(x, 0)) != 0)
        return r;
    reply_ok(x, 0);
    return 0;
}

static int op_apikey_set(struct op_ctx *x)
{
    const void *k;
    size_t kl;
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0)
        return r;
    if ((mp_get_bin(x->map, "key", &k, &kl) != 0 &&
         mp_get_str(x->map, "key", (const char **)&k, &kl) != 0) ||
        kl == 0 || kl > KEYD_APIKEY_MAX || memchr(k, 0, kl) || memchr(k, '\n', kl))
        return fail(x, EINVAL, "keyd: APIKEY_SET: \"key\" must be 1..%d bytes without "
                    "NUL or newline", KEYD_APIKEY_MAX);
    if ((r = ks_apikey_set(x->st->ks, x->p, k, kl)) != 0)
        return change_failed(x, r);
    if ((r = change_commit(x, 0)) != 0)
        return r;
    reply_ok(x, 0);
    return 0;
}

/* --- ingest keys ------------------------------------------------------- */

/* INGEST_KEY_CREATE {project} -> {id, key}: the token is made here and
 * leaves keyd once, in this reply; the keystore keeps its verifier. */
static int op_ingest_key_create(struct op_ctx *x)
{
    char *token = (char *)x->st->dek_scratch;   /* guarded, wiped below */
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0)
        return r;
    r = ks_ingest_create(x->st->ks, x->p, (uint64_t)time(NULL), token, x->key_id);
    if (r == -ENOSPC)
        return fail(x, ENOSPC, "keyd: project \"%s\": %d live ingest keys already; revoke "
                    "one first", x->project, KS_INGEST_LIVE_MAX);
    if (r != 0)
        return change_failed(x, r);
    if ((r = change_commit(x, 0)) == 0) {
        reply_ok(x, 2);
        pk_str(&x->pk, "id");
        pk_str(&x->pk, x->key_id);
        pk_str(&x->pk, "key");
        msgpack_pack_str(&x->pk, KEYD_INGEST_TOKEN_LEN);
        msgpack_pack_str_body(&x->pk, token, KEYD_INGEST_TOKEN_LEN);
    }
    sodium_memzero(token, KEYD_INGEST_TOKEN_LEN + 1);
    return r;
}

/* INGEST_KEY_LIST {project} -> {keys: [{id, created, revoked}]}. */
static int op_ingest_key_list(struct op_ctx *x)
{
    struct ks_ingest_info k;
    int r;
    if ((r = need_project(x, 1)) != 0)
        return r;
    reply_ok(x, 1);
    pk_str(&x->pk, "keys");
    msgpack_pack_array(&x->pk, ks_ingest_count(x->p));
    for (size_t i = 0; ks_ingest_at(x->p, i, &k) == 0; i++) {
        msgpack_pack_map(&x->pk, 3);
        pk_str(&x->pk, "id");
        pk_str(&x->pk, k.id);
        pk_str(&x->pk, "created");
        msgpack_pack_uint64(&x->pk, k.created);
        pk_str(&x->pk, "revoked");
        msgpack_pack_uint64(&x->pk, k.revoked);
    }
    return 0;
}

/* Is the LEN bytes at S an ingest key ID (16 lowercase hex)? */
static int valid_key_id(const char *s, size_t len)
{
    if (len != KEYD_INGEST_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* INGEST_KEY_REVOKE {project, id} -> {}: the key stops verifying with the
 * next request (there is no cache in keyd to expire). */
static int op_ingest_key_revoke(struct op_ctx *x)
{
    const char *id;
    size_t il;
    unsigned changed = 0;
    int r;
    if ((r = change_begin(x)) != 0 || (r = need_project(x, 1)) != 0)
        return r;
    if (mp_get_str(x->map, "id", &id, &il) != 0 || !valid_key_id(id, il))
        return fail(x, EINVAL, "keyd: INGEST_KEY_REVOKE: \"id\" must be %d lowercase hex "
                    "characters", KEYD_INGEST_ID_LEN);
    memcpy(x->key_id, id, il);
    x->key_id[il] = '\0';
    r = ks_ingest_revoke(x->st->ks, x->p, x->key_id, (uint64_t)time(NULL), &changed);
    if (r == -ENOENT)
        return fail(x, ENOENT, "keyd: project \"%s\": no ingest key %s", x->project, x->key_id);
    if (r != 0)
        return change_failed(x, r);
    /* Already revoked: nothing changes, a plain record. */
    if (changed && (r = change_commit(x, 0)) != 0)
        return r;
    reply_ok(x, 0);
    return 0;
}

/* A failed INGEST_AUTH: the first of an interval is recorded now (by
 * ops_handle), later ones are held and summed by ops_tick. */
static void ingest_denied(struct op_ctx *x)
{
    struct keyd_state *st = x->st;
    uint64_t now = tv_now_ms();
    int interval = st->cfg->keyd.ingest_denied_interval;

    x->n = 1;
    if (interval <= 0 || now >= st->ingest_denied.until_ms) {
        st->ingest_denied.until_ms = interval > 0 ? now + (uint64_t)interval * 1000u : 0;
        return;
    }
    st->ingest_denied.held++;
    st->ingest_denied.uid = x->peer->uid;
    st->ingest_denied.pid = x->peer->pid;
    st->ingest_unrecorded++;
    x->audited = 1;
}

/* INGEST_AUTH {key} -> {project, id}, or EACCES for anything that is not a
 * live key of a live project.  The key alone names the project. */
static int op_ingest_auth(struct op_ctx *x)
{
    struct ks_project *p = NULL;
    const void *k;
    size_t kl;

    x->project[0] = '\0';          /* the request's "project", if any, means nothing */
    if (mp_get_bin(x->map, "key", &k, &kl) != 0 &&
        mp_get_str(x->map, "key", (const char **)&k, &kl) != 0)
        return fail(x, EINVAL, "keyd: INGEST_AUTH: missing \"key\" (bin or str)");
    int r = ks_ingest_verify(x->st->ks, k, kl, &p, x->key_id);
    if (p)
        snprintf(x->project, sizeof(x->project), "%s", ks_name(p));
    if (r != 0) {
        x->st->ingest_failed++;
        ingest_denied(x);
        /* Not EACCES: that one says the peer may not ask at all (a
         * gateway missing from ingest_users), which must not look like a
         * wrong key to the gateway's clients. */
        return fail(x, EKEYREJECTED, "keyd: INGEST_AUTH: the key does not verify (unknown, "
                    "wrong, revoked, or its project shredded)");
    }
    x->st->ingest_ok++;
    x->st->ingest_unrecorded++;
    x->audited = 1;                 /* counted, not recorded: one per ingest request */
    reply_ok(x, 2);
    pk_str(&x->pk, "project");
    pk_str(&x->pk, x->project);
    pk_str(&x->pk, "id");
    pk_str(&x->pk, x->key_id);
    return 0;
}

int ops_tick(struct keyd_state *st, uint64_t now_ms)
{
    char body[AUDIT_LINE_MAX];
    if (!st->ingest_denied.held)
        return -1;
    if (now_ms < st->ingest_denied.until_ms) {
        uint64_t left = st->ingest_denied.until_ms - now_ms;
        return left > 60000 ? 60000 : (int)left;
    }
    struct keyd_rec rec = { .gen = ks_gen(st->ks), .uid = st->ingest_denied.uid,
                            .pid = st->ingest_denied.pid, .op = keyd_op_name(KEYD_OP_INGEST_AUTH),
                            .n = st->ingest_denied.held,
                            .result = keyd_errno_name(EKEYREJECTED) };
    if (keyd_rec_body(body, sizeof(body), &rec) < 0 || audit_add(st->audit, body, NULL) != 0)
        log_warn("audit log %s: cannot record %" PRIu32 " failed INGEST_AUTH requests",
                 st->audit_path, st->ingest_denied.held);
    st->ingest_denied.held = 0;
    return -1;
}

/* --- admin: read-only ------------------------------------------------- */

static int op_list(struct op_ctx *x)
{
    struct keystore *ks = x->st->ks;
    msgpack_packer *pk = &x->pk;
    const char *key;
    size_t kl;

    reply_ok(x, 1);
    pk_str(pk, "projects");
    msgpack_pack_array(pk, ks_count(ks));
    for (size_t i = 0; i < ks_count(ks); i++) {
        const struct ks_project *p = ks_at(ks, i);
        uint32_t nv = ks_nversions(p);
        msgpack_pack_map(pk, 5);
        pk_str(pk, "name");
        pk_str(pk, ks_name(p));
        pk_str(pk, "current");
        msgpack_pack_uint32(pk, ks_current(p));
        pk_str(pk, "versions");
        msgpack_pack_array(pk, nv);
        for (uint32_t v = 1; v <= nv; v++) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint32(pk, v);
            pk_str(pk, keyd_state_name(ks_state(p, v)));
        }
        pk_str(pk, "apikey");
        ks_apikey(p, &key, &kl) == 0 ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pk_str(pk, "shredded");
        ks_shredded(p) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    return 0;
}

static int op_audit_verify(struct op_ctx *x)
{
    struct keyd_state *st = x->st;
    struct audit_scan sc;
    uint64_t seq;
    unsigned char mac[AUDIT_MAC_LEN];
    char err[200];

    if (audit_flush(st->audit) != 0)
        return fail(x, EIO, "keyd: audit log %s: cannot write", st->audit_path);
    audit_head(st->audit, &seq, mac);
    memset(&sc, 0, sizeof(sc));
    /* The anchor is always there while keyd runs (audit_open makes it). */
    if (audit_verify(&st->audit_path, 1, st->audit_key, &keyd_audit_format, 0, &sc, err,
                     sizeof(err)) != 0)
        return fail(x, EBADMSG, "%s", err);
    if (sc.last_seq != seq || sodium_memcmp(sc.last_mac, mac, AUDIT_MAC_LEN) != 0)
        return fail(x, EBADMSG, "audit log %s: ends at record %" PRIu64 " but the chain head "
                    "is record %" PRIu64 " (records removed from the end, or the log replaced)",
                    st->audit_path, sc.last_seq, seq);
    reply_ok(x, 1);
    pk_str(&x->pk, "records");
    msgpack_pack_uint64(&x->pk, sc.records);
    return 0;
}

/* The vault's audit MAC key: derived from the master key for that one
 * purpose, so it never rests in clear and a vault cannot forge keyd's log. */
static int op_vault_audit_key(struct op_ctx *x)
{
    unsigned char *k = x->st->dek_scratch;
    if (seal_derive(x->st->master, SEAL_SUB_VAULT_AUDIT, k) != 0)
        return fail(x, EIO, "keyd: cannot derive the vault's audit key");
    reply_ok(x, 1);
    pk_str(&x->pk, "key");
    pk_bin(&x->pk, k, KEYD_AUDIT_KEY_LEN);
    sodium_memzero(k, KEYD_AUDIT_KEY_LEN);
    return 0;
}

/* --- dispatch ----------------------------------------------------------- */

/* Classes of callers, each a [keyd] user list. */
enum { CL_VAULT = 1u << 0, CL_AGENT = 1u << 1, CL_ADMIN = 1u << 2, CL_INGEST = 1u << 3 };

static const struct {
    unsigned bit;
    const char *key;              /* its name in [keyd] */
    size_t off;                   /* its struct tv_userlist in struct tv_config */
} class_table[] = {
    { CL_VAULT, "vault_users", offsetof(struct tv_config, keyd.vault_users) },
    { CL_AGENT, "agent_users", offsetof(struct tv_config, keyd.agent_users) },
    { CL_ADMIN, "admin_users", offsetof(struct tv_config, keyd.admin_users) },
    { CL_INGEST, "ingest_users", offsetof(struct tv_config, keyd.ingest_users) },
};

/* Who may call each operation, and what it does.  Ops without a row
 * (KEYD_OP_UNKNOWN) are refused before authorization. */
static const struct {
    unsigned classes;
    int (*fn)(struct op_ctx *x);
} op_table[KEYD_OP_COUNT] = {
    [KEYD_OP_GEN_DEK] = { CL_VAULT, op_gen_dek },
    [KEYD_OP_UNWRAP] = { CL_VAULT, op_unwrap },
    [KEYD_OP_REWRAP] = { CL_VAULT, op_rewrap },
    /* The agent wipes its pseudonym and API keys on SHRED events. */
    [KEYD_OP_SUBSCRIBE] = { CL_VAULT | CL_AGENT, op_subscribe },
    [KEYD_OP_APIKEY_GET] = { CL_AGENT, op_apikey_get },
    [KEYD_OP_PSEUDONYM_KEY] = { CL_AGENT, op_pseudonym_key },
    [KEYD_OP_CREATE] = { CL_ADMIN, op_create },
    [KEYD_OP_ROTATE] = { CL_ADMIN, op_rotate },
    [KEYD_OP_RETIRE] = { CL_ADMIN, op_retire },
    [KEYD_OP_SHRED] = { CL_ADMIN, op_shred },
    [KEYD_OP_APIKEY_SET] = { CL_ADMIN, op_apikey_set },
    [KEYD_OP_REKEY_MASTER] = { CL_ADMIN, op_rekey_master },
    [KEYD_OP_LIST] = { CL_ADMIN, op_list },
    [KEYD_OP_AUDIT_VERIFY] = { CL_ADMIN, op_audit_verify },
    /* The vault writes its log; an admin verifies it (tracevault audit-verify). */
    [KEYD_OP_VAULT_AUDIT_KEY] = { CL_VAULT | CL_ADMIN, op_vault_audit_key },
    [KEYD_OP_INGEST_KEY_CREATE] = { CL_ADMIN, op_ingest_key_create },
    [KEYD_OP_INGEST_KEY_LIST] = { CL_ADMIN, op_ingest_key_list },
    [KEYD_OP_INGEST_KEY_REVOKE] = { CL_ADMIN, op_ingest_key_revoke },
    /* The gateway: verify a bearer key, learn its project; nothing else. */
    [KEYD_OP_INGEST_AUTH] = { CL_INGEST, op_ingest_auth },
};

/* Is the peer on one of the lists X's op allows?  If not, fail with the
 * names of those lists. */
static int authorize(struct op_ctx *x)
{
    const struct keyd_peer *peer = x->peer;
    unsigned allowed = op_table[x->op].classes;
    char names[128] = "";
    size_t used = 0;

    for (size_t i = 0; i < sizeof(class_table) / sizeof(class_table[0]); i++) {
        if (!(allowed & class_table[i].bit))
            continue;
        const struct tv_userlist *list =
            (const struct tv_userlist *)((const char *)x->st->cfg + class_table[i].off);
        if (tv_userlist_match(list, peer->uid, peer->gid,
                              peer->ngroups >= 0 ? peer->groups : NULL, peer->ngroups))
            return 0;
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                 used ? " or " : "", class_table[i].key);
        if (used >= sizeof(names))
            used = sizeof(names) - 1;
    }
    x->st->denied++;
    return fail(x, EACCES, "keyd: uid %u may not %s (not in [keyd] %s)", (unsigned)peer->uid,
                keyd_op_name(x->op), names);
}

void ops_reject(struct keyd_state *st, const struct keyd_peer *peer, int err, const char *msg,
                struct gbuf *out)
{
    struct op_ctx x;
    memset(&x, 0, sizeof(x));
    x.err = err;
    st->requests++;
    if (audit_req(st, peer, &x) != 0)
        log_warn("audit log %s: cannot record a rejected frame", st->audit_path);
    ops_error_reply(out, err, msg);
}

static void parse_req(struct op_ctx *x, const msgpack_object *map)
{
    const char *s;
    size_t sl;

    x->map = map;
    if (mp_get_str(map, "op", &s, &sl) == 0)
        x->op = keyd_op_parse(s, sl);
    if (mp_get_str(map, "project", &s, &sl) == 0 && sl > 0 && sl < sizeof(x->project) &&
        !memchr(s, '\0', sl)) {
        memcpy(x->project, s, sl);
        x->project[sl] = '\0';
        if (!tv_project_name_valid(x->project))
            x->project[0] = '\0';
    }
}


int ops_handle(struct keyd_state *st, const struct keyd_peer *peer, const void *body,
               size_t len, struct gbuf *out, int *subscribe, struct keyd_event_out *ev)
{
    struct op_ctx x;
    msgpack_unpacked up;
    size_t start = out->len;
    int r = 0;

    memset(&x, 0, sizeof(x));
    memset(ev, 0, sizeof(*ev));
    x.st = st;
    x.peer = peer;
    x.ev = ev;
    *subscribe = 0;
    st->requests++;
    msgpack_unpacked_init(&up);
    msgpack_packer_init(&x.pk, out, gbuf_msgpack_write);

    if (mp_decode(body, len, KEYD_REQ_DEPTH, KEYD_REQ_OBJECTS, &up) != 0 ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        fail(&x, EPROTO, "keyd: malformed request (not one msgpack map)");
    } else {
        parse_req(&x, &up.data);
        if (x.op == KEYD_OP_UNKNOWN || !op_table[x.op].fn)
            fail(&x, EOPNOTSUPP, "keyd: unknown or missing \"op\"");
        else if (authorize(&x) == 0)
            r = op_table[x.op].fn(&x);
    }
    if (r == -EPIPE) {
        gbuf_truncate(out, start);   /* it may hold key bytes */
        ops_error_reply(out, EIO, "keyd: cannot record a key change; keyd is stopping");
        r = -EIO;
        goto out;
    }
    r = 0;
    if (!x.audited && audit_req(st, peer, &x) != 0) {
        gbuf_truncate(out, start);   /* it may hold key bytes */
        memset(ev, 0, sizeof(*ev));
        ops_error_reply(out, EIO, "keyd: audit log: cannot record the request");
        goto out;
    }
    if (x.err) {
        gbuf_truncate(out, start);   /* it may hold key bytes */
        ops_error_reply(out, x.err, x.msg);
        goto out;
    }
    *subscribe = x.subscribe;
out:
    msgpack_unpacked_destroy(&up);
    return r;
}

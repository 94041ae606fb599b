/*
 * keyd_client_ops.c - one function per keyd operation (see keyd_client.h),
 * grouped by the [keyd] list of callers that may use it.  Each packs its
 * arguments with the request skeleton of keyd_client.c (keyd_client_int.h)
 * and copies its results out of the reply while it is alive.
 */
#include "config.h"
#include "keyd/keyd_client.h"
#include "keyd/keyd_client_int.h"
#include "lib/frame.h"

#include <errno.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        rc = kc_get_u32(c, r, "version", &v);
    if (rc == 0 && o->deks)
        rc = kc_copy_bin(c, r, o->wrapped ? "deks" : "dek", (size_t)o->n * KEYD_DEK_LEN, o->deks);
    if (rc == 0 && o->file_ids)
        rc = kc_copy_bin(c, r, "file_ids", (size_t)o->n * KEYD_FILE_ID_LEN, o->file_ids);
    if (rc == 0 && o->wrapped)
        rc = kc_copy_bin(c, r, "wrapped", (size_t)o->n * KEYD_WRAPPED_LEN, o->wrapped);
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

    if ((rc = kc_valid_project(c, project)) != 0 || (rc = kc_valid_count(c, KEYD_OP_GEN_DEK, n)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_GEN_DEK, project, file_ids ? 2 : 1);
    kc_pack_uint(&k.pk, "n", n);
    if (file_ids) {
        mp_pack_cstr(&k.pk, "bind");
        msgpack_pack_true(&k.pk);
    }
    return kc_call_finish(c, &k, 1, unpack_deks, &o);
}

int keyd_unwrap_many(struct keyd_client *c, const char *project, uint32_t version,
                     unsigned n, const unsigned char *file_ids, const unsigned char *wrapped,
                     unsigned char *deks)
{
    struct dek_out o = { n, NULL, deks, NULL, NULL };
    struct call k;
    int rc;

    if ((rc = kc_valid_project(c, project)) != 0 || (rc = kc_valid_count(c, KEYD_OP_UNWRAP, n)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_UNWRAP, project, file_ids ? 3 : 2);
    kc_pack_uint(&k.pk, "version", version);
    kc_pack_bin(&k.pk, "wrapped", wrapped, (size_t)n * KEYD_WRAPPED_LEN);
    if (file_ids)
        kc_pack_bin(&k.pk, "file_ids", file_ids, (size_t)n * KEYD_FILE_ID_LEN);
    return kc_call_finish(c, &k, 1, unpack_deks, &o);
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

    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_REWRAP, project, 2 + (file_id ? 1 : 0) + (legacy ? 1 : 0));
    kc_pack_uint(&k.pk, "version", version);
    kc_pack_bin(&k.pk, "wrapped", wrapped, KEYD_WRAPPED_LEN);
    if (file_id)
        kc_pack_bin(&k.pk, "file_id", file_id, KEYD_FILE_ID_LEN);
    if (legacy) {
        mp_pack_cstr(&k.pk, "legacy");
        msgpack_pack_true(&k.pk);
    }
    return kc_call_finish(c, &k, 1, unpack_deks, &o);
}

/* A 32-byte "key" (pseudonym key, vault audit key). */
_Static_assert(KEYD_AUDIT_KEY_LEN == 32 && KEYD_PSEUDONYM_KEY_LEN == 32, "32-byte keys");
static int unpack_key32(struct keyd_client *c, const struct reply *r, void *arg)
{
    return kc_copy_bin(c, r, "key", 32, arg);
}

int keyd_vault_audit_key(struct keyd_client *c, unsigned char key[KEYD_AUDIT_KEY_LEN])
{
    struct call k;
    kc_call_start(&k, KEYD_OP_VAULT_AUDIT_KEY, NULL, 0);
    return kc_call_finish(c, &k, 1, unpack_key32, key);
}

/* --- agent_users ------------------------------------------------------- */

static int unpack_apikey(struct keyd_client *c, const struct reply *r, void *arg)
{
    char **key = arg;
    const void *p;
    size_t n;

    if (mp_get_bin(r->map, "key", &p, &n) != 0) {
        kc_set_err(c, "keyd: reply without \"key\"");
        return -EPROTO;
    }
    char *k = n <= KEYD_APIKEY_MAX ? sodium_malloc(n + 1) : NULL;
    if (!k) {
        kc_set_err(c, "keyd: API key too large or out of memory");
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
    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_APIKEY_GET, project, 0);
    return kc_call_finish(c, &k, 1, unpack_apikey, key);
}

int keyd_pseudonym_key(struct keyd_client *c, const char *project,
                       unsigned char key[KEYD_PSEUDONYM_KEY_LEN])
{
    struct call k;
    int rc;

    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_PSEUDONYM_KEY, project, 0);
    return kc_call_finish(c, &k, 1, unpack_key32, key);
}

/* --- admin_users ------------------------------------------------------- */

static int unpack_version(struct keyd_client *c, const struct reply *r, void *arg)
{
    return kc_get_u32(c, r, "version", arg);
}

/* Key changes {op, project [, UKEY: UVAL]} -> {"version": n} if VERSION.
 * Never re-sent once they may have reached keyd. */
static int admin_call(struct keyd_client *c, enum keyd_op op, const char *project,
                      const char *ukey, uint64_t uval, uint32_t *version)
{
    struct call k;
    int rc;

    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, op, project, ukey ? 1 : 0);
    if (ukey)
        kc_pack_uint(&k.pk, ukey, uval);
    return kc_call_finish(c, &k, 0, version ? unpack_version : NULL, version);
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
    kc_call_start(&k, KEYD_OP_REKEY_MASTER, NULL, 0);
    return kc_call_finish(c, &k, 0, NULL, NULL);
}

int keyd_apikey_set(struct keyd_client *c, const char *project, const char *key)
{
    struct call k;
    size_t n = key ? strlen(key) : 0;
    int rc;

    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    if (n == 0 || n > KEYD_APIKEY_MAX) {
        kc_set_err(c, "keyd: API key must be 1..%d bytes", KEYD_APIKEY_MAX);
        return -EINVAL;
    }
    kc_call_start(&k, KEYD_OP_APIKEY_SET, project, 1);
    kc_pack_bin(&k.pk, "key", key, n);
    return kc_call_finish(c, &k, 1, NULL, NULL);
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
        kc_set_err(c, "keyd: malformed LIST reply");
    return rc;
}

int keyd_list(struct keyd_client *c, struct keyd_project_info **out, size_t *n)
{
    struct list_out o = { NULL, 0 };
    struct call k;
    int rc;

    *out = NULL;
    *n = 0;
    kc_call_start(&k, KEYD_OP_LIST, NULL, 0);
    rc = kc_call_finish(c, &k, 1, unpack_list, &o);
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
        kc_set_err(c, "keyd: reply without \"records\"");
        return -EPROTO;
    }
    return 0;
}

int keyd_audit_verify(struct keyd_client *c, uint64_t *records)
{
    struct call k;
    kc_call_start(&k, KEYD_OP_AUDIT_VERIFY, NULL, 0);
    return kc_call_finish(c, &k, 1, unpack_records, records);
}

/* --- ingest keys -------------------------------------------------------- */

/* Copy str KEY of the reply, 1..CAP-1 bytes, into OUT (NUL-terminated). */
static int copy_str(struct keyd_client *c, const struct reply *r, const char *key, char *out,
                    size_t cap)
{
    const char *p;
    size_t n;
    if (mp_get_str(r->map, key, &p, &n) != 0 || n == 0 || n >= cap || memchr(p, 0, n)) {
        kc_set_err(c, "keyd: reply field \"%s\" missing or malformed", key);
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
    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_INGEST_KEY_CREATE, project, 0);
    return kc_call_finish(c, &k, 0, unpack_ingest_create, &o);
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
        kc_set_err(c, "keyd: malformed INGEST_KEY_LIST reply");
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
            kc_set_err(c, "keyd: malformed INGEST_KEY_LIST reply");
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
    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    kc_call_start(&k, KEYD_OP_INGEST_KEY_LIST, project, 0);
    if ((rc = kc_call_finish(c, &k, 1, unpack_ingest_list, &o)) != 0) {
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

    if ((rc = kc_valid_project(c, project)) != 0)
        return rc;
    if (!id || strlen(id) != KEYD_INGEST_ID_LEN) {
        kc_set_err(c, "keyd: ingest key ID must be %d hex characters", KEYD_INGEST_ID_LEN);
        return -EINVAL;
    }
    kc_call_start(&k, KEYD_OP_INGEST_KEY_REVOKE, project, 1);
    mp_pack_cstr(&k.pk, "id");
    mp_pack_cstr(&k.pk, id);
    /* Revoking twice is harmless: re-sent after a dead connection. */
    return kc_call_finish(c, &k, 1, NULL, NULL);
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
        kc_set_err(c, "keyd: ingest key of %zu bytes: longer than any key", key ? len : 0);
        return -EACCES;
    }
    kc_call_start(&k, KEYD_OP_INGEST_AUTH, NULL, 1);
    kc_pack_bin(&k.pk, "key", key, len);
    rc = kc_call_finish(c, &k, 1, unpack_ingest_auth, &o);
    /* On the wire EKEYREJECTED is "the key does not verify" and EACCES "you
     * may not ask"; to the caller the first is the only -EACCES. */
    if (rc == -EKEYREJECTED)
        return -EACCES;
    if (rc == -EACCES)
        return -EPERM;
    return rc;
}


/*
 * test_keyd_ops.c - keyd's request dispatcher against hostile requests.
 * Every frame body below is fed to ops_handle() as a peer would send it;
 * each must produce one well-formed reply with the exact error, exactly one
 * audit record, and no change of key material.  Authorization per op class
 * (numeric uids in the config) and the shape of good replies are checked too.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/keyd_client.h"
#include "keyd/ops.h"
#include "keyd/records.h"
#include "keyd/seal.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/util.h"
#include "tests/unit/tap.h"

static struct keyd_state st;
static char dir[] = "/tmp/tv-ops.XXXXXX";
static char logp[300];

/* Reply of the last call: "ok" or the err name. */
static char last_err[32];
static msgpack_unpacked last;
static struct gbuf out;

static int call(uid_t uid, const void *body, size_t len)
{
    struct keyd_peer peer = { .uid = uid, .gid = 65534, .pid = 1, .ngroups = 0 };
    struct keyd_event_out ev;
    int sub;
    size_t before = audit_staged(st.audit);

    gbuf_clear(&out);
    int r = ops_handle(&st, &peer, body, len, &out, &sub, &ev);
    msgpack_unpacked_destroy(&last);
    msgpack_unpacked_init(&last);
    snprintf(last_err, sizeof(last_err), "?");
    if (r == 0 && mp_decode(out.p, out.len, 8, out.len + 16, &last) == 0) {
        int okv = 0;
        const char *e;
        size_t el;
        if (mp_get_bool(&last.data, "ok", &okv) == 0 && okv)
            snprintf(last_err, sizeof(last_err), "ok");
        else if (mp_get_str(&last.data, "err", &e, &el) == 0)
            snprintf(last_err, sizeof(last_err), "%.*s", (int)el, e);
    }
    /* Exactly one audit record per request (key changes flush their own). */
    size_t after = audit_staged(st.audit);
    audit_flush(st.audit);
    return after == before + 1 || (after == 0 && before == 0) ? 0 : -1;
}

/* Pack a request from a tiny format: keys and values alternate; values
 * "#N" are uints, "~N" bins of N bytes, others strings. */
static void req(msgpack_sbuffer *sb, int npairs, ...)
{
    va_list ap;
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, npairs);
    va_start(ap, npairs);
    for (int i = 0; i < npairs; i++) {
        mp_pack_cstr(&pk, va_arg(ap, const char *));
        const char *v = va_arg(ap, const char *);
        if (v[0] == '#') {
            msgpack_pack_uint64(&pk, strtoull(v + 1, NULL, 10));
        } else if (v[0] == '~') {
            size_t n = strtoull(v + 1, NULL, 10);
            unsigned char *z = calloc(1, n + 1);
            msgpack_pack_bin(&pk, n);
            msgpack_pack_bin_body(&pk, z, n);
            free(z);
        } else {
            mp_pack_cstr(&pk, v);
        }
    }
    va_end(ap);
}

static int last_audit_has(const char *needle)
{
    FILE *f = fopen(logp, "r");
    char line[600], lastl[600] = "";
    while (f && fgets(line, sizeof(line), f))
        strcpy(lastl, line);
    if (f)
        fclose(f);
    return strstr(lastl, needle) != NULL;
}

#define CALL_IS(uid, body, len, want, desc)                                       \
    do {                                                                          \
        int one_ = call(uid, body, len);                                          \
        ok(one_ == 0 && strcmp(last_err, want) == 0, "%s -> %s", desc, want);     \
        if (strcmp(last_err, want) != 0)                                          \
            printf("#   got %s\n", last_err);                                     \
    } while (0)

int main(void)
{
    char conf[300], ksp[300], err[512];
    unsigned char master[32];
    struct tv_config *cfg = NULL;
    struct audit_opts aopts = { .fmt = &keyd_audit_format, .no_sync = 1 };
    msgpack_sbuffer sb;
    FILE *f;

    plan(44 + 12);
    ok(sodium_init() >= 0 && mkdtemp(dir) != NULL, "set-up");
    snprintf(conf, sizeof(conf), "%s/tv.conf", dir);
    snprintf(ksp, sizeof(ksp), "%s/keys", dir);
    snprintf(logp, sizeof(logp), "%s/audit.log", dir);
    f = fopen(conf, "w");
    fprintf(f, "[keyd]\nsocket = %s/s\nkeystore = %s\nmaster_key = %s/mk\naudit_log = %s\n"
               "vault_users = 0, 5001\nagent_users = 5002\nadmin_users = 0\n"
               "ingest_users = 5004\ningest_denied_interval = 3600\n",
            dir, ksp, dir, logp);
    fclose(f);
    is_int(tv_config_load(conf, &cfg, err, sizeof(err)), 0, "config loads");
    randombytes_buf(master, 32);
    st.cfg = cfg;
    st.audit_path = logp;
    ok(ops_init(&st, master) == 0 && ks_new(ksp, master, &st.ks) == 0 &&
       audit_open(logp, st.audit_key, &aopts, NULL, &st.audit, err, sizeof(err)) == 0,
       "state ready");
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&last);

    req(&sb, 2, "op", "CREATE", "project", "p");
    CALL_IS(0, sb.data, sb.size, "ok", "CREATE p as admin");
    uint64_t gen = ks_gen(st.ks);

    /* Frames that are not a request at all. */
    CALL_IS(0, "", 0, "EPROTO", "empty body");
    CALL_IS(0, "\x93\x01\x02\x03", 4, "EPROTO", "an array, not a map");
    CALL_IS(0, "\x83\xa2op", 4, "EPROTO", "map of 3 with half a pair");
    CALL_IS(0, "\xdd\xff\xff\xff\xff", 5, "EPROTO", "array32 claiming 4G elements");
    CALL_IS(0, "\xdf\xff\xff\xff\xff\x00", 6, "EPROTO", "map32 claiming 4G pairs");
    {
        unsigned char bomb[200];
        memset(bomb, 0x91, sizeof(bomb));   /* [[[[...]]]] */
        bomb[199] = 0xc0;
        CALL_IS(0, bomb, sizeof(bomb), "EPROTO", "199 nested arrays");
    }
    {
        msgpack_packer pk;
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 100);
        for (int i = 0; i < 100; i++) {
            msgpack_pack_uint32(&pk, (uint32_t)i);
            msgpack_pack_nil(&pk);
        }
        CALL_IS(0, sb.data, sb.size, "EPROTO", "map of 100 pairs (object cap)");
    }
    CALL_IS(0, "\xdb\xff\xff\xff\xf0" "abc", 8, "EPROTO", "str32 longer than the frame");
    req(&sb, 2, "op", "LIST", "x", "y");
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    CALL_IS(0, sb.data, sb.size, "EPROTO", "trailing bytes after the map");

    /* Requests with bad fields. */
    req(&sb, 1, "project", "p");
    CALL_IS(0, sb.data, sb.size, "EOPNOTSUPP", "no op");
    req(&sb, 1, "op", "#7");
    CALL_IS(0, sb.data, sb.size, "EOPNOTSUPP", "op is a number");
    req(&sb, 1, "op", "GEN_DEKX");
    CALL_IS(0, sb.data, sb.size, "EOPNOTSUPP", "unknown op");
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "#0");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK n=0");
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "#1025");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK n=1025");
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "#4294967297");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK n=2^32+1");
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "5");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK n as a string");
    req(&sb, 3, "op", "GEN_DEK", "project", "../p", "n", "#1");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK project ../p");
    req(&sb, 2, "op", "GEN_DEK", "n", "#1");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "GEN_DEK without project");
    {
        msgpack_packer pk;
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        mp_pack_cstr(&pk, "op");
        mp_pack_cstr(&pk, "GEN_DEK");
        mp_pack_cstr(&pk, "project");
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "p\0x", 3);
        mp_pack_cstr(&pk, "n");
        msgpack_pack_uint32(&pk, 1);
        CALL_IS(0, sb.data, sb.size, "EINVAL", "project with an embedded NUL (\"p\\0x\")");
    }
    req(&sb, 3, "op", "GEN_DEK", "project", "nosuch", "n", "#1");
    CALL_IS(0, sb.data, sb.size, "ENOENT", "GEN_DEK unknown project");
    req(&sb, 4, "op", "UNWRAP", "project", "p", "version", "#1", "wrapped", "~71");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "UNWRAP 71-byte wrapped DEK");
    req(&sb, 4, "op", "UNWRAP", "project", "p", "version", "#1", "wrapped", "~0");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "UNWRAP empty wrapped");
    req(&sb, 4, "op", "UNWRAP", "project", "p", "version", "#8589934592", "wrapped", "~72");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "UNWRAP version 2^33");
    req(&sb, 4, "op", "UNWRAP", "project", "p", "version", "#1", "wrapped", "~72");
    CALL_IS(0, sb.data, sb.size, "EBADMSG", "UNWRAP 72 zero bytes");
    req(&sb, 4, "op", "UNWRAP", "project", "p", "version", "#9", "wrapped", "~72");
    CALL_IS(0, sb.data, sb.size, "ENOENT", "UNWRAP unknown version");
    req(&sb, 4, "op", "REWRAP", "project", "p", "version", "#1", "wrapped", "~144");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "REWRAP of two DEKs");
    req(&sb, 3, "op", "APIKEY_SET", "project", "p", "key", "a\nb");
    CALL_IS(0, sb.data, sb.size, "EINVAL", "APIKEY_SET with a newline");

    /* Authorization. */
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "#1");
    CALL_IS(5003, sb.data, sb.size, "EACCES", "GEN_DEK by a uid on no list");
    ok(last_audit_has("uid=5003 ") && last_audit_has("op=GEN_DEK project=p") &&
       last_audit_has("result=EACCES"), "the refusal is audited");
    CALL_IS(5002, sb.data, sb.size, "EACCES", "GEN_DEK by an agent user");
    req(&sb, 2, "op", "CREATE", "project", "q");
    CALL_IS(5001, sb.data, sb.size, "EACCES", "CREATE by a vault user");
    /* Duplicate "op" keys: the op authorized is the op executed. */
    req(&sb, 4, "op", "GEN_DEK", "project", "q", "n", "#1", "op", "CREATE");
    call(5001, sb.data, sb.size);
    ok(ks_find(st.ks, "q") == NULL, "duplicate op keys cannot smuggle a CREATE past a vault user");
    req(&sb, 2, "op", "PSEUDONYM_KEY", "project", "p");
    CALL_IS(0, sb.data, sb.size, "EACCES", "root on admin and vault lists only: PSEUDONYM_KEY denied");
    CALL_IS(5002, sb.data, sb.size, "ok", "PSEUDONYM_KEY by the agent user");
    req(&sb, 1, "op", "SUBSCRIBE");
    CALL_IS(5002, sb.data, sb.size, "ok", "SUBSCRIBE by the agent user (SHRED events)");
    CALL_IS(5003, sb.data, sb.size, "EACCES", "SUBSCRIBE by a uid on no list");
    ok(ks_gen(st.ks) == gen, "no hostile request changed key material");

    /* A good GEN_DEK: shapes. */
    req(&sb, 3, "op", "GEN_DEK", "project", "p", "n", "#3");
    call(5001, sb.data, sb.size);
    const void *d, *w;
    size_t dl = 0, wl = 0;
    mp_get_bin(&last.data, "deks", &d, &dl);
    mp_get_bin(&last.data, "wrapped", &w, &wl);
    ok(!strcmp(last_err, "ok") && dl == 3 * KEYD_DEK_LEN && wl == 3 * KEYD_WRAPPED_LEN,
       "GEN_DEK 3: 96 DEK bytes, 216 wrapped bytes");

    /* Good UNWRAP and REWRAP of the second DEK: exact reply shapes. */
    unsigned char dek1[KEYD_DEK_LEN], w1[KEYD_WRAPPED_LEN];
    memcpy(dek1, (const unsigned char *)d + KEYD_DEK_LEN, sizeof(dek1));
    memcpy(w1, (const unsigned char *)w + KEYD_WRAPPED_LEN, sizeof(w1));
    for (int rewrap = 0; rewrap < 2; rewrap++) {
        msgpack_packer pk;
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 4);
        mp_pack_cstr(&pk, "op");
        mp_pack_cstr(&pk, rewrap ? "REWRAP" : "UNWRAP");
        mp_pack_cstr(&pk, "project");
        mp_pack_cstr(&pk, "p");
        mp_pack_cstr(&pk, "version");
        msgpack_pack_uint32(&pk, 1);
        mp_pack_cstr(&pk, "wrapped");
        msgpack_pack_bin(&pk, sizeof(w1));
        msgpack_pack_bin_body(&pk, w1, sizeof(w1));
        call(5001, sb.data, sb.size);
        uint64_t rv = 0;
        dl = wl = 0;
        if (!rewrap) {
            mp_get_bin(&last.data, "dek", &d, &dl);
            ok(!strcmp(last_err, "ok") && last.data.via.map.size == 2 && dl == KEYD_DEK_LEN &&
               memcmp(d, dek1, KEYD_DEK_LEN) == 0, "UNWRAP: {ok, dek} with the DEK GEN_DEK gave");
        } else {
            mp_get_bin(&last.data, "wrapped", &w, &wl);
            mp_get_uint(&last.data, "version", &rv);
            ok(!strcmp(last_err, "ok") && last.data.via.map.size == 3 && rv == 1 &&
               wl == KEYD_WRAPPED_LEN && memcmp(w, w1, wl) != 0,
               "REWRAP: {ok, version, wrapped} with a fresh wrap");
        }
    }

    /* Ingest keys: admins manage, ingest_users verify, nobody else. */
    char token[KEYD_INGEST_TOKEN_LEN + 1] = "";
    req(&sb, 2, "op", "INGEST_KEY_CREATE", "project", "p");
    CALL_IS(5001, sb.data, sb.size, "EACCES", "INGEST_KEY_CREATE as a vault user");
    CALL_IS(5004, sb.data, sb.size, "EACCES", "INGEST_KEY_CREATE as the ingest user");
    CALL_IS(0, sb.data, sb.size, "ok", "INGEST_KEY_CREATE as admin");
    const char *ks_;
    size_t kl_ = 0;
    if (mp_get_str(&last.data, "key", &ks_, &kl_) == 0 && kl_ == KEYD_INGEST_TOKEN_LEN)
        memcpy(token, ks_, kl_);
    ok(kl_ == KEYD_INGEST_TOKEN_LEN && last_audit_has("op=INGEST_KEY_CREATE project=p ") &&
       strstr(token, "tvi_") == token, "the token is in the reply; the record names the key");
    req(&sb, 2, "op", "INGEST_AUTH", "key", token);
    CALL_IS(0, sb.data, sb.size, "EACCES", "INGEST_AUTH as admin (not in ingest_users)");
    size_t before = audit_staged(st.audit);
    call(5004, sb.data, sb.size);
    const char *pj;
    size_t pl = 0;
    mp_get_str(&last.data, "project", &pj, &pl);
    ok(!strcmp(last_err, "ok") && pl == 1 && *pj == 'p' && audit_staged(st.audit) == before &&
       st.ingest_ok == 1, "INGEST_AUTH as the ingest user: {project: p}, counted, no record");
    token[30] = token[30] == 'A' ? 'B' : 'A';
    req(&sb, 2, "op", "INGEST_AUTH", "key", token);
    CALL_IS(5004, sb.data, sb.size, "EKEYREJECTED", "INGEST_AUTH with a wrong secret (first)");
    ok(last_audit_has("op=INGEST_AUTH project=p version=0 n=1 key="), "...recorded with the ID");
    before = audit_staged(st.audit);
    call(5004, sb.data, sb.size);
    call(5004, sb.data, sb.size);
    ok(!strcmp(last_err, "EKEYREJECTED") && audit_staged(st.audit) == before &&
       st.ingest_denied.held == 2, "later failures in the interval: held, no record");
    ok(ops_tick(&st, tv_now_ms()) > 0 && audit_staged(st.audit) == before,
       "ops_tick before the interval ends: nothing, a timeout");
    ok(ops_tick(&st, UINT64_MAX) == -1 && audit_staged(st.audit) == before + 1 &&
       audit_flush(st.audit) == 0 && last_audit_has("op=INGEST_AUTH project=- version=0 n=2 "
                                                    "result=EKEYREJECTED"),
       "ops_tick at exit: one summary record with n=2");
    req(&sb, 1, "op", "INGEST_AUTH");
    CALL_IS(5004, sb.data, sb.size, "EINVAL", "INGEST_AUTH without a key");

    msgpack_unpacked_destroy(&last);
    gbuf_free(&out);
    msgpack_sbuffer_destroy(&sb);
    audit_close(st.audit);
    ks_free(st.ks);
    ops_release(&st);
    tv_config_free(cfg);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return done();
}

/*
 * fuzz_keyd_ops.c - libFuzzer target: keyd's request dispatcher (ops_handle)
 * on arbitrary frame bodies, with a real keystore and audit log in a temp
 * directory.  The first input byte picks the peer (admin + vault + agent,
 * or vault only, or nobody), so authorization, every operation and the
 * key-change path (keystore save, audit flush) are all reachable.  Every
 * reply must decode as a map with "ok"; the audit chain head must advance
 * by exactly one record per request, except INGEST_AUTH verifications that
 * keyd counts instead (successes, and failures held for a summary record).
 */
#include "config.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyd/ops.h"
#include "keyd/records.h"
#include "lib/config.h"
#include "lib/frame.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keyd_state st;
static char dir[] = "/tmp/tv-fuzz-keyd.XXXXXX";
static char ksp[300], logp[300], anchorp[310];
static unsigned char master[32];
static unsigned long runs;

static void reset_state(void)
{
    struct audit_opts ao = { .fmt = &keyd_audit_format, .no_sync = 1 };
    char err[512];
    uint32_t v;
    audit_close(st.audit);
    ks_free(st.ks);
    unlink(logp);
    unlink(anchorp);
    if (ks_new(ksp, master, &st.ks) != 0 || ks_create(st.ks, "p", &v) != 0 ||
        audit_open(logp, st.audit_key, &ao, NULL, &st.audit, err, sizeof(err)) != 0)
        abort();
}

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_keyd_ops: could not remove %s\n", dir);
}

static void setup(void)
{
    char conf[300], err[512];
    struct tv_config *cfg;
    FILE *f;

    if (sodium_init() < 0 || !mkdtemp(dir))
        abort();
    atexit(cleanup);
    log_init("fuzz_keyd_ops", 0, LOG_LVL_ERROR);
    snprintf(conf, sizeof(conf), "%s/tv.conf", dir);
    snprintf(ksp, sizeof(ksp), "%s/keys", dir);
    snprintf(logp, sizeof(logp), "%s/audit.log", dir);
    snprintf(anchorp, sizeof(anchorp), "%s.head", logp);
    f = fopen(conf, "w");
    fprintf(f, "[keyd]\nsocket = %s/s\nkeystore = %s\nmaster_key = %s/mk\naudit_log = %s\n"
               "vault_users = 0, 5001\nagent_users = 0\nadmin_users = 0\n"
               "ingest_users = 5001\n", dir, ksp, dir, logp);
    fclose(f);
    if (tv_config_load(conf, &cfg, err, sizeof(err)) != 0)
        abort();
    randombytes_buf(master, sizeof(master));
    st.cfg = cfg;
    st.audit_path = logp;
    if (ops_init(&st, master) != 0)
        abort();
    reset_state();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uid_t uids[] = { 0, 5001, 5003 };
    struct keyd_peer peer = { .gid = 65534, .pid = 1, .ngroups = 0 };
    struct keyd_event_out ev;
    struct gbuf out = { 0 };
    msgpack_unpacked up;
    uint64_t seq0, seq1;
    unsigned char mac[AUDIT_MAC_LEN];
    int sub;

    if (!st.ks)
        setup();
    /* Keep the keystore and log small so saves and AUDIT_VERIFY stay fast. */
    if (++runs % 4096 == 0 || ks_count(st.ks) > 16)
        reset_state();
    if (size < 1)
        return 0;
    peer.uid = uids[data[0] % 3];
    audit_head(st.audit, &seq0, mac);
    uint64_t unrec0 = st.ingest_unrecorded;
    int r = ops_handle(&st, &peer, data + 1, size - 1, &out, &sub, &ev);
    audit_flush(st.audit);
    audit_head(st.audit, &seq1, mac);
    if (r == 0 && seq1 - seq0 + (st.ingest_unrecorded - unrec0) != 1)
        abort();                       /* every request leaves exactly one record or count */
    msgpack_unpacked_init(&up);
    int okv;
    if (mp_decode(out.p, out.len, 8, out.len + 16, &up) != 0 ||
        mp_get_bool(&up.data, "ok", &okv) != 0)
        abort();                       /* every reply is a well-formed map */
    if (okv && peer.uid == 5003)
        abort();                       /* a peer on no list never succeeds */
    msgpack_unpacked_destroy(&up);
    gbuf_free(&out);
    return 0;
}

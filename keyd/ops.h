/*
 * ops.h - keyd's request dispatcher: one request frame in, one reply map
 * out, one audit record staged (docs/KEYD.md "Operations").
 *
 * The dispatcher owns no socket: the server (server.c) hands it a decoded
 * peer and a frame body and gets back the reply bytes, whether the peer
 * asked to subscribe, and any event for subscribers.  Replies of ordinary
 * requests must not be released before audit_flush() succeeds (the record
 * is only staged); operations that change key material flush and save
 * inside the call, in the order keystore-then-log that start-up recovery
 * relies on.  This split is also what the fuzz target drives.  The records
 * themselves are keyd/records.h lines on a lib/audit.h log.
 */
#ifndef TV_KEYD_OPS_H
#define TV_KEYD_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keyd/gbuf.h"
#include "keyd/keystore.h"
#include "lib/audit.h"

#define KEYD_PEER_GROUPS 64

struct tv_config;

struct keyd_peer {
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int ngroups;                  /* < 0: unknown, look up with getgrouplist */
    gid_t groups[KEYD_PEER_GROUPS];
};

struct keyd_event_out {
    int type;                     /* enum keyd_event_type, 0 = none */
    char project[64];
    uint32_t version;
};

struct keyd_state {
    const struct tv_config *cfg;  /* the user lists */
    struct keystore *ks;
    struct audit *audit;
    const char *audit_path;
    const unsigned char *master;  /* to reload the keystore after a failed save */
    unsigned char *audit_key;     /* sodium_malloc'd audit MAC subkey */
    unsigned char *dek_scratch;   /* sodium_malloc'd, KEYD_GEN_MAX DEKs */
    uint64_t requests, denied;    /* counters for the log */
    /* INGEST_AUTH is asked once per ingest request, so its outcomes are not
     * audited one by one: successes are counted, failures are recorded at
     * most twice per [keyd] ingest_denied_interval (the first at once, the
     * rest summed into one record when the interval ends: ops_tick). */
    uint64_t ingest_ok, ingest_failed;
    uint64_t ingest_unrecorded;   /* INGEST_AUTH requests that staged no record */
    struct {
        uint64_t until_ms;        /* end of the current interval (tv_now_ms) */
        uint32_t held;            /* failures in it not yet recorded */
        uid_t uid;                /* the last of them */
        pid_t pid;
    } ingest_denied;
};

/* Prepare ST's scratch and audit key from MASTER (the rest is set by the
 * caller).  Returns 0 or -ENOMEM. */
int ops_init(struct keyd_state *st, const unsigned char *master);
void ops_release(struct keyd_state *st);

/*
 * Handle one request body (untrusted bytes).  Appends exactly one reply map
 * to OUT (guarded memory: it may carry DEKs; the caller wipes it).  *SUBSCRIBE is set to 1 if the peer became a subscriber; EV->type
 * is non-zero if subscribers must be told something.  Returns 0, or -EIO
 * when keyd can no longer keep its promises (audit or keystore unwritable
 * after a key change): the caller must stop serving.
 */
int ops_handle(struct keyd_state *st, const struct keyd_peer *peer, const void *body,
               size_t len, struct gbuf *out, int *subscribe, struct keyd_event_out *ev);

/* Time-driven work at NOW_MS (tv_now_ms): stage the summary record of
 * INGEST_AUTH failures held back once their interval is over; with NOW_MS
 * UINT64_MAX (at exit), whatever is held.  Returns the milliseconds until it
 * has work again, or -1 for none.  The caller flushes the log. */
int ops_tick(struct keyd_state *st, uint64_t now_ms);

/* Record (audit) and answer a frame that could not be taken as a request at
 * all (e.g. oversized, -EMSGSIZE): an error reply for ERR is appended to OUT. */
void ops_reject(struct keyd_state *st, const struct keyd_peer *peer, int err, const char *msg,
                struct gbuf *out);

/* Append an error reply {ok: false, err, msg} to OUT. */
void ops_error_reply(struct gbuf *out, int err, const char *msg);

/* Pack an event frame body for EV into OUT. */
void ops_event_pack(struct gbuf *out, const struct keyd_event_out *ev);

/* lib/audit continuation callback (ARG: the struct keyd_state): the first
 * record of a rotated log, made by keyd itself. */
int ops_audit_cont(char *buf, size_t cap, const char *prev_hex, void *arg);

#endif

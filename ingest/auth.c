/*
 * auth.c - bearer tokens verified by keyd (auth.h).
 */
#include "config.h"
#include "ingest/auth.h"
#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct auth {
    int n;
    atomic_uint next;
    struct keyd_client **c;
    pthread_mutex_t lock;         /* the rate limiter below */
    time_t last_log;
    unsigned long suppressed;
};

struct auth *auth_new(const char *socket, int timeout_ms, int n)
{
    struct auth *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->c = calloc((size_t)n, sizeof(*a->c));
    if (!a->c) {
        free(a);
        return NULL;
    }
    a->n = n;
    pthread_mutex_init(&a->lock, NULL);
    for (int i = 0; i < n; i++)
        if (!(a->c[i] = keyd_client_new(socket, timeout_ms))) {
            auth_free(a);
            return NULL;
        }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n; i++)
        keyd_client_free(a->c[i]);
    free(a->c);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* The ID of a well-formed token, for the log; "" otherwise. */
static void token_id(const char *tok, size_t len, char id[KEYD_INGEST_ID_LEN + 1])
{
    id[0] = '\0';
    if (len < 4 + KEYD_INGEST_ID_LEN + 1 || strncmp(tok, "tvi_", 4) != 0 ||
        tok[4 + KEYD_INGEST_ID_LEN] != '_')
        return;
    for (int i = 0; i < KEYD_INGEST_ID_LEN; i++) {
        char c = tok[4 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return;
    }
    memcpy(id, tok + 4, KEYD_INGEST_ID_LEN);
    id[KEYD_INGEST_ID_LEN] = '\0';
}

/* One line per second at most; the lines in between are counted. */
static void log_denied(struct auth *a, const char *id, const char *reason)
{
    time_t now = time(NULL);

    pthread_mutex_lock(&a->lock);
    if (now != a->last_log) {
        if (a->suppressed)
            log_warn("ingest: %lu more request(s) refused for their key in the last second(s)",
                     a->suppressed);
        log_warn("ingest: request refused: %s%s%s", reason,
                 id[0] ? ", key ID " : "", id);
        a->last_log = now;
        a->suppressed = 0;
    } else {
        a->suppressed++;
    }
    pthread_mutex_unlock(&a->lock);
}

int auth_check(struct auth *a, const char *hdr, char project[KEYD_PROJECT_MAX + 1],
               char id[KEYD_INGEST_ID_LEN + 1])
{
    char tid[KEYD_INGEST_ID_LEN + 1];
    const char *tok;
    size_t len;
    int r;

    project[0] = '\0';
    id[0] = '\0';
    if (!hdr) {
        log_denied(a, "", "no Authorization header");
        return -EACCES;
    }
    if (strncasecmp(hdr, "Bearer ", 7) != 0) {
        log_denied(a, "", "Authorization is not a Bearer token");
        return -EACCES;
    }
    tok = hdr + 7;
    while (*tok == ' ')
        tok++;
    len = strlen(tok);
    while (len && tok[len - 1] == ' ')
        len--;
    if (len == 0 || len > KEYD_INGEST_KEY_MAX) {
        log_denied(a, "", "the bearer token is empty or too long");
        return -EACCES;
    }
    token_id(tok, len, tid);
    struct keyd_client *c = a->c[atomic_fetch_add(&a->next, 1) % (unsigned)a->n];
    r = keyd_ingest_auth(c, tok, len, project, id);
    if (r == -EACCES) {
        log_denied(a, tid, tid[0] ? "the key does not verify (unknown, wrong or revoked)"
                                  : "the bearer token is not an ingest key");
        return -EACCES;
    }
    if (r != 0) {
        log_error("ingest: keyd cannot verify keys: %s", keyd_client_error(c));
        return r;
    }
    return 0;
}

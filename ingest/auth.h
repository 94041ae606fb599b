/*
 * auth.h - who may ingest: the bearer token of a request, verified by keyd
 * (INGEST_AUTH; docs/KEYD.md, docs/INGEST.md).  The gateway keeps nothing
 * that verifies a key and caches no verification, so a revoked key fails on
 * its next request.
 *
 * Tokens never reach a log: failures are logged rate-limited with the key's
 * ID only (the public half of "tvi_<ID>_<SECRET>"), and only when it is well
 * formed.  keyd audits every failure itself.
 */
#ifndef TV_INGEST_AUTH_H
#define TV_INGEST_AUTH_H

#include <stddef.h>

#include "keyd/keyd_client.h"

struct auth;

/* N clients of keyd's SOCKET (requests through one client are serialised,
 * so N bounds the verifications in flight).  NULL on ENOMEM. */
struct auth *auth_new(const char *socket, int timeout_ms, int n);
void auth_free(struct auth *a);

/* Verify the Authorization header value HDR ("Bearer <token>"; NULL when the
 * header is absent).  Returns 0 with PROJECT and ID filled; -EACCES when the
 * header is missing or malformed or the key does not verify (unknown, wrong,
 * revoked, or its project shredded: the answer is 401); another negative
 * errno when keyd cannot be asked (the answer is 503). */
int auth_check(struct auth *a, const char *hdr, char project[KEYD_PROJECT_MAX + 1],
               char id[KEYD_INGEST_ID_LEN + 1]);

#endif

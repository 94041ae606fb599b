/*
 * server.h - the HTTP side of tracevault-ingest: libmicrohttpd daemons on the
 * listeners, the routes (POST /v1/traces and /opentelemetry/v1/traces, POST
 * /v1/events, GET /healthz), limits, and the answers of the OTLP/HTTP spec.
 *
 * Order of work for a request, so that nothing costly happens for a caller
 * that will be refused: route and media type; declared size (413 before a
 * byte of body is read); the bearer key (keyd; 401 or 503); the gateway's
 * in-flight limits (429); then the body is read into memory, capped;
 * inflated (capped), decoded (depth checked first), stored durably; and only
 * then answered 200.  Every connection has a thread (libmicrohttpd's thread
 * per connection): the storage step blocks on fsync and must not hold up
 * other clients.
 */
#ifndef TV_INGEST_SERVER_H
#define TV_INGEST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/auth.h"
#include "ingest/listen.h"

struct server_conf {
    const char *mount;
    size_t max_request_bytes, max_decoded_bytes, max_inflight_bytes;
    unsigned max_connections, max_requests;
    unsigned idle_timeout_s, request_timeout_s;
    const char *tls_cert_pem, *tls_key_pem;   /* NULL: no TLS */
    struct auth *auth;
};

struct server;

/* Serve every listener in L (N of them; the server takes over their
 * descriptors: their fd is set to -1).  TCP listeners get TLS when the conf
 * has a certificate; unix sockets never do.  Returns 0 and *OUT, or -1 with
 * ERR. */
int server_start(const struct server_conf *conf, struct listener *l, size_t n,
                 struct server **out, char *err, size_t errlen);

/* Stop accepting, finish or cut the connections, free.  NULL is fine. */
void server_stop(struct server *s);

#endif

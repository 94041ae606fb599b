/*
 * server.c - routes, limits and answers on libmicrohttpd (server.h).
 *
 * Layout: the per-request state and the in-flight accounting; answers (one
 * helper builds every response, in the request's encoding); the handler's
 * three phases (headers, body chunks, complete body); start and stop.
 */
#include "config.h"
#include "ingest/server.h"
#include "ingest/body.h"
#include "ingest/events.h"
#include "ingest/imetrics.h"
#include "ingest/otlp.h"
#include "ingest/store.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* gRPC status codes used in google.rpc.Status answers. */
#define RPC_INVALID_ARGUMENT 3
#define RPC_RESOURCE_EXHAUSTED 8
#define RPC_UNAVAILABLE 14
#define RPC_UNAUTHENTICATED 16

enum route { R_TRACES, R_EVENTS };

/* A connection, for the deadline reaper: libmicrohttpd's own timeout is
 * one of inactivity, which a client dribbling a byte every few seconds
 * (slowloris) never trips.  Each connection has a deadline by which its
 * current request must be complete; past it, the reaper shuts the socket
 * down and the connection's thread ends it. */
struct conn {
    struct conn *prev, *next;
    int fd;
    uint64_t deadline_ms;         /* 0: none (an answer is being sent) */
    int cut;
};

struct server {
    struct server_conf conf;
    struct MHD_Daemon **d;
    size_t n;
    pthread_mutex_t lock;         /* the two counters below */
    unsigned requests;            /* requests holding a reservation */
    size_t bytes;                 /* body bytes reserved */
    pthread_mutex_t conns_lock;   /* the list below */
    struct conn *conns;
    pthread_t reaper;
    int reaper_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cv;
    int stopping;
};

struct req {
    enum route route;
    int pb;                       /* protobuf encoding (else JSON) */
    int gzip;
    int started;                  /* the headers phase is done */
    int status;                   /* the answer, for the metrics */
    uint64_t t0_ms;
    char project[KEYD_PROJECT_MAX + 1];
    char key_id[KEYD_INGEST_ID_LEN + 1];
    unsigned char *body;
    size_t len, cap;
    size_t discarded;             /* bytes past the limit, read and dropped */
    size_t reserved;              /* in-flight bytes held (0: no reservation) */
    int holds_slot;
};

/* ---- in-flight accounting -------------------------------------------------- */

static int reserve(struct server *s, struct req *q, size_t bytes)
{
    int ok;

    pthread_mutex_lock(&s->lock);
    ok = s->requests < s->conf.max_requests && bytes <= s->conf.max_inflight_bytes - s->bytes;
    if (ok) {
        s->requests++;
        s->bytes += bytes;
    }
    pthread_mutex_unlock(&s->lock);
    if (ok) {
        q->holds_slot = 1;
        q->reserved = bytes;
        im_inflight(1, (long)bytes);
    }
    return ok;
}

static void release(struct server *s, struct req *q)
{
    if (!q->holds_slot)
        return;
    pthread_mutex_lock(&s->lock);
    s->requests--;
    s->bytes -= q->reserved;
    pthread_mutex_unlock(&s->lock);
    im_inflight(-1, -(long)q->reserved);
    q->holds_slot = 0;
    q->reserved = 0;
}

/* ---- answers ------------------------------------------------------------------ */

static enum MHD_Result send_buf(struct MHD_Connection *c, struct req *q, int status,
                                void *buf, size_t len, const char *ctype, int retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result r;

    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    q->status = status;
    /* Answering: the deadline no longer applies (a slow reader of the
     * answer is MHD's inactivity timeout's business). */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) {
        struct conn *k = ci->socket_context;
        __atomic_store_n(&k->deadline_ms, 0, __ATOMIC_RELAXED);
    }
    r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* An error answer: google.rpc.Status in the request's encoding (JSON for
 * events and for requests whose encoding is not known yet). */
static enum MHD_Result fail(struct MHD_Connection *c, struct req *q, int status,
                            enum im_reason reason, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(struct MHD_Connection *c, struct req *q, int status,
                            enum im_reason reason, int retry_after, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    int code;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    im_reject(reason);
    switch (status) {
    case MHD_HTTP_UNAUTHORIZED: code = RPC_UNAUTHENTICATED; break;
    case MHD_HTTP_TOO_MANY_REQUESTS: code = RPC_RESOURCE_EXHAUSTED; break;
    case MHD_HTTP_SERVICE_UNAVAILABLE: code = RPC_UNAVAILABLE; break;
    case MHD_HTTP_CONTENT_TOO_LARGE: code = RPC_RESOURCE_EXHAUSTED; break;
    default: code = RPC_INVALID_ARGUMENT; break;
    }
    if (status >= 500 || status == MHD_HTTP_TOO_MANY_REQUESTS)
        log_warn("ingest: %d for project \"%s\": %s", status, q->project[0] ? q->project : "-", msg);
    if (q->pb && q->route == R_TRACES) {
        uint8_t *buf;
        size_t len;
        if (otlp_pb_status(code, msg, &buf, &len) != 0)
            return MHD_NO;
        return send_buf(c, q, status, buf, len, "application/x-protobuf", retry_after);
    }
    char *buf;
    size_t len;
    if (otlp_json_status(code, msg, &buf, &len) != 0)
        return MHD_NO;
    return send_buf(c, q, status, buf, len, "application/json", retry_after);
}

/* ---- phase 1: headers --------------------------------------------------------- */

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum MHD_Result healthz(struct server *s, struct MHD_Connection *c, struct req *q)
{
    struct stat st;
    char path[4096];

    /* The vault answers a stat of its root only while it is mounted and
     * alive; the gateway cannot store anything otherwise. */
    snprintf(path, sizeof(path), "%s/.", s->conf.mount);
    if (stat(path, &st) != 0) {
        char *m = strdup("vault unavailable\n");
        return m ? send_buf(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, m, strlen(m), "text/plain", 5) : MHD_NO;
    }
    char *m = strdup("ok\n");
    return m ? send_buf(c, q, MHD_HTTP_OK, m, strlen(m), "text/plain", 0) : MHD_NO;
}

static enum MHD_Result on_headers(struct server *s, struct MHD_Connection *c, struct req *q,
                                  const char *url, const char *method)
{
    const char *ct, *ce, *cl;
    size_t want;
    int r;

    if (!strcmp(url, "/healthz")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            return fail(c, q, MHD_HTTP_METHOD_NOT_ALLOWED, IM_UNSUPPORTED, 0, "%s: use GET", url);
        return healthz(s, c, q);
    }
    if (!strcmp(url, "/v1/traces") || !strcmp(url, "/opentelemetry/v1/traces"))
        q->route = R_TRACES;
    else if (!strcmp(url, "/v1/events") || !strcmp(url, "/opentelemetry/v1/events"))
        q->route = R_EVENTS;
    else
        return fail(c, q, MHD_HTTP_NOT_FOUND, IM_UNSUPPORTED, 0, "no such endpoint");
    ct = hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (q->route == R_TRACES && body_type_is(ct, "application/x-protobuf"))
        q->pb = 1;
    if (strcmp(method, "POST"))
        return fail(c, q, MHD_HTTP_METHOD_NOT_ALLOWED, IM_UNSUPPORTED, 0, "%s: use POST", url);
    if (!q->pb && !body_type_is(ct, "application/json"))
        return fail(c, q, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, IM_UNSUPPORTED, 0,
                    "Content-Type must be %s", q->route == R_TRACES ?
                    "application/x-protobuf or application/json" : "application/json");
    ce = hdr(c, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (ce && !strcasecmp(ce, "gzip"))
        q->gzip = 1;
    else if (ce && strcasecmp(ce, "identity"))
        return fail(c, q, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, IM_UNSUPPORTED, 0,
                    "Content-Encoding must be gzip or identity");
    /* A declared size past the limit is refused before any body is read. */
    cl = hdr(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    want = s->conf.max_request_bytes;
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || v > s->conf.max_request_bytes)
            return fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0,
                        "the body is larger than %zu bytes", s->conf.max_request_bytes);
        want = (size_t)v;
    }
    r = auth_check(s->conf.auth, hdr(c, MHD_HTTP_HEADER_AUTHORIZATION), q->project, q->key_id);
    if (r == -EACCES)
        return fail(c, q, MHD_HTTP_UNAUTHORIZED, IM_UNAUTHORIZED, 0,
                    "missing, unknown or revoked ingest key");
    if (r != 0)
        return fail(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, IM_KEYD_UNAVAILABLE, 5,
                    "keys cannot be verified now (keyd unavailable)");
    if (!reserve(s, q, want))
        return fail(c, q, MHD_HTTP_TOO_MANY_REQUESTS, IM_OVERLOADED, 1,
                    "too many requests in flight; retry later");
    return MHD_YES;
}

/* ---- phase 3: the complete body --------------------------------------------- */

/* The answer for a store that failed with ERR (negative errno). */
static enum MHD_Result store_failed(struct MHD_Connection *c, struct req *q, int err)
{
    switch (-err) {
    case EDQUOT:
        return fail(c, q, MHD_HTTP_TOO_MANY_REQUESTS, IM_STORE_FULL, 60,
                    "the project's quota is used up");
    case ENOSPC:
        return fail(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, IM_STORE_FULL, 30,
                    "the vault is out of space");
    case EFBIG:
        return fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0,
                    "larger than the project's max_file_bytes");
    case EACCES:
    case EPERM:
        log_error("ingest: project \"%s\": the gateway's user is not one of its writers", q->project);
        return fail(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, IM_STORE_FAILED, 30,
                    "the gateway may not write into this project");
    default:
        return fail(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, IM_STORE_FAILED, 5,
                    "the vault cannot store now (%s)", strerror(-err));
    }
}

static enum MHD_Result on_body(struct server *s, struct MHD_Connection *c, struct req *q)
{
    unsigned char *inflated = NULL;
    const unsigned char *data = q->body;
    size_t len = q->len, spans = 0, events = 0, rejected = 0;
    struct otlp_result res;
    char rel[STORE_NAME_MAX], why[200];
    const void *store_data;
    size_t store_len;
    const char *suffix = ".json";
    enum MHD_Result ret;
    int r, dup = 0;

    memset(&res, 0, sizeof(res));
    if (q->discarded)
        return fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0,
                    "the body is larger than %zu bytes", s->conf.max_request_bytes);
    im_received(q->len);
    if (q->gzip) {
        r = body_gunzip(q->body, q->len, s->conf.max_decoded_bytes, &inflated, &len);
        if (r == -EFBIG)
            return fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0,
                        "the body inflates to more than %zu bytes", s->conf.max_decoded_bytes);
        if (r != 0)
            return fail(c, q, MHD_HTTP_BAD_REQUEST, IM_MALFORMED, 0,
                        "Content-Encoding gzip: the body is not gzip data or is truncated");
        data = inflated;
        /* The compressed copy is no longer needed. */
        free(q->body);
        q->body = NULL;
        q->len = q->cap = 0;
    } else if (len > s->conf.max_decoded_bytes) {
        return fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0,
                    "the body is larger than %zu bytes", s->conf.max_decoded_bytes);
    }
    store_data = data;
    store_len = len;
    if (q->route == R_TRACES && q->pb) {
        r = otlp_pb_to_json(data, len, s->conf.max_decoded_bytes, &res);
        suffix = ".pb.json";
        store_data = res.json;
        store_len = res.json_len;
    } else if (q->route == R_TRACES) {
        r = otlp_json_check((const char *)data, len, &res);
        if (r == 0 && res.spans == 0)
            store_data = NULL;    /* nothing to keep */
    } else {
        r = events_check((const char *)data, len, &events, why, sizeof(why));
        snprintf(res.why, sizeof(res.why), "%s", why);
    }
    spans = res.spans;
    rejected = res.rejected;
    if (r == -ELOOP)
        ret = fail(c, q, MHD_HTTP_BAD_REQUEST, IM_TOO_DEEP, 0, "%s", res.why);
    else if (r == -EFBIG || r == -E2BIG)
        ret = fail(c, q, MHD_HTTP_CONTENT_TOO_LARGE, IM_TOO_LARGE, 0, "%s", res.why);
    else if (r == -ENOMEM)
        ret = fail(c, q, MHD_HTTP_SERVICE_UNAVAILABLE, IM_OVERLOADED, 5, "out of memory");
    else if (r != 0)
        ret = fail(c, q, MHD_HTTP_BAD_REQUEST, IM_MALFORMED, 0, "%s", res.why);
    else if (store_data && (r = store_put(s->conf.mount, q->project, suffix, store_data,
                                          store_len, rel, &dup)) != 0)
        ret = store_failed(c, q, r);
    else {
        if (dup)
            im_duplicate();
        else
            im_stored(spans, events, rejected, store_data ? store_len : 0);
        log_debug("ingest: %s %s (%zu spans, %zu events, key %s)", dup ? "already stored" : "stored",
                  store_data ? rel : "nothing", spans, events, q->key_id);
        if (q->route == R_EVENTS) {
            char *buf;
            size_t blen;
            if (!(buf = malloc(64)))
                ret = MHD_NO;
            else {
                blen = (size_t)snprintf(buf, 64, "{\"success\":true,\"accepted\":%zu}", events);
                ret = send_buf(c, q, MHD_HTTP_OK, buf, blen, "application/json", 0);
            }
        } else if (q->pb) {
            uint8_t *buf;
            size_t blen;
            ret = otlp_pb_response(rejected, res.why, &buf, &blen) != 0 ? MHD_NO :
                  send_buf(c, q, MHD_HTTP_OK, buf, blen, "application/x-protobuf", 0);
        } else {
            char *buf;
            size_t blen;
            ret = otlp_json_response(rejected, res.why, &buf, &blen) != 0 ? MHD_NO :
                  send_buf(c, q, MHD_HTTP_OK, buf, blen, "application/json", 0);
        }
    }
    free(inflated);
    otlp_result_release(&res);
    return ret;
}

/* ---- the handler -------------------------------------------------------------- */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct req *q = *con_cls;

    (void)version;
    if (!q) {
        if (!(q = calloc(1, sizeof(*q))))
            return MHD_NO;
        q->t0_ms = tv_now_ms();
        *con_cls = q;
    }
    if (!q->started) {
        q->started = 1;
        return on_headers(s, c, q, url, method);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (tv_now_ms() - q->t0_ms > (uint64_t)s->conf.request_timeout_s * 1000) {
            im_reject(IM_TIMEOUT);
            log_warn("ingest: project \"%s\": body not complete after %u s, connection closed",
                     q->project, s->conf.request_timeout_s);
            return MHD_NO;
        }
        if (q->discarded || n > s->conf.max_request_bytes - q->len) {
            /* Past the limit (no Content-Length was declared): keep reading
             * for a while so the client gets its 413, but cut a sender that
             * keeps going. */
            q->discarded += n;
            return q->discarded > s->conf.max_request_bytes ? MHD_NO : MHD_YES;
        }
        if (q->len + n > q->cap) {
            /* First chunk: room for the whole reservation (the declared
             * length, or max_request_bytes for a chunked body: pages never
             * written cost no memory), so the body is never copied. */
            size_t ncap = q->cap ? q->cap : (q->reserved ? q->reserved : 65536);
            while (ncap < q->len + n)
                ncap *= 2;
            if (ncap > s->conf.max_request_bytes)
                ncap = s->conf.max_request_bytes;
            unsigned char *nb = realloc(q->body, ncap);
            if (!nb)
                return MHD_NO;
            q->body = nb;
            q->cap = ncap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    return on_body(s, c, q);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req *q = *con_cls;

    (void)toe;
    /* The next request on this connection gets a full period. */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        __atomic_store_n(&((struct conn *)ci->socket_context)->deadline_ms,
                         tv_now_ms() + (uint64_t)s->conf.request_timeout_s * 1000, __ATOMIC_RELAXED);
    if (!q)
        return;
    if (q->status)
        im_request(q->status, (double)(tv_now_ms() - q->t0_ms) / 1000.0);
    release(s, q);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    struct conn *k = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(k = calloc(1, sizeof(*k))))
            return;           /* not watched: MHD's inactivity timeout still applies */
        k->fd = ci->connect_fd;
        k->deadline_ms = tv_now_ms() + (uint64_t)s->conf.request_timeout_s * 1000;
        pthread_mutex_lock(&s->conns_lock);
        k->next = s->conns;
        if (s->conns)
            s->conns->prev = k;
        s->conns = k;
        pthread_mutex_unlock(&s->conns_lock);
        *socket_context = k;
        return;
    }
    if (!k)
        return;
    /* libmicrohttpd calls this before it closes the socket, so the reaper
     * (which holds the lock while it shuts sockets down) never touches a
     * descriptor that was closed and reused. */
    pthread_mutex_lock(&s->conns_lock);
    if (k->prev)
        k->prev->next = k->next;
    else
        s->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&s->conns_lock);
    free(k);
    *socket_context = NULL;
}

static void *reaper_main(void *arg)
{
    struct server *s = arg;

    pthread_mutex_lock(&s->stop_lock);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->stop_cv, &s->stop_lock, &ts);
        if (s->stopping)
            break;
        uint64_t now = tv_now_ms();
        unsigned cut = 0;
        pthread_mutex_lock(&s->conns_lock);
        for (struct conn *k = s->conns; k; k = k->next) {
            uint64_t dl = __atomic_load_n(&k->deadline_ms, __ATOMIC_RELAXED);
            if (dl && now > dl && !k->cut) {
                shutdown(k->fd, SHUT_RDWR);
                k->cut = 1;
                cut++;
            }
        }
        pthread_mutex_unlock(&s->conns_lock);
        for (unsigned i = 0; i < cut; i++)
            im_reject(IM_TIMEOUT);
        if (cut)
            log_warn("ingest: %u connection(s) closed: no complete request within %u s",
                     cut, s->conf.request_timeout_s);
    }
    pthread_mutex_unlock(&s->stop_lock);
    return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    /* Per-connection chatter (closures, resets) would flood the log under
     * attack; failures that matter are reported by the gateway itself. */
    log_debug("ingest: http: %s", buf);
}

/* ---- start and stop ------------------------------------------------------------ */

int server_start(const struct server_conf *conf, struct listener *l, size_t n,
                 struct server **out, char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s || !(s->d = calloc(n, sizeof(*s->d)))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->conf = *conf;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->conns_lock, NULL);
    pthread_mutex_init(&s->stop_lock, NULL);
    pthread_cond_init(&s->stop_cv, NULL);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        snprintf(err, errlen, "cannot start a thread");
        server_stop(s);
        return -1;
    }
    s->reaper_started = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_POLL | MHD_USE_ERROR_LOG;
        int tls = !l[i].is_unix && conf->tls_cert_pem;
        struct MHD_OptionItem tlsopts[] = {
            { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)conf->tls_cert_pem },
            { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)conf->tls_key_pem },
            /* TLS 1.2 and 1.3 only. */
            { MHD_OPTION_HTTPS_PRIORITIES, 0,
              (void *)"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE" },
            { MHD_OPTION_END, 0, NULL },
        };
        if (tls)
            flags |= MHD_USE_TLS;
        s->d[i] = MHD_start_daemon(
            flags, 0, NULL, NULL, handler, s,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_LISTEN_SOCKET, l[i].fd,
            MHD_OPTION_CONNECTION_LIMIT, conf->max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, conf->idle_timeout_s,
            /* Headers and each chunk of body pass through this buffer. */
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
            MHD_OPTION_ARRAY, tls ? tlsopts : &tlsopts[3],
            MHD_OPTION_END);
        if (!s->d[i]) {
            snprintf(err, errlen, "listen %s: the HTTP server did not start%s", l[i].name,
                     tls ? " (check tls_cert and tls_key)" : "");
            s->n = i;
            server_stop(s);
            return -1;
        }
        l[i].fd = -1;             /* libmicrohttpd closes it at stop */
        s->n = i + 1;
    }
    *out = s;
    return 0;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->d && s->d[i])
            MHD_stop_daemon(s->d[i]);
    if (s->reaper_started) {
        pthread_mutex_lock(&s->stop_lock);
        s->stopping = 1;
        pthread_cond_signal(&s->stop_cv);
        pthread_mutex_unlock(&s->stop_lock);
        pthread_join(s->reaper, NULL);
    }
    free(s->d);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->conns_lock);
    pthread_mutex_destroy(&s->stop_lock);
    pthread_cond_destroy(&s->stop_cv);
    free(s);
}

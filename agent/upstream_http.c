/*
 * upstream_http.c - the https:// and clickhouse+http(s):// sinks (upstream.h).
 *
 * One curl easy handle, reused so connections stay alive between batches.
 * TLS: 1.2 minimum, peer and host always verified, [agent] ca_file and
 * pinned_pubkey honoured, no redirects, protocols limited to the URL's.
 * Status classes: 2xx acknowledged; 408, 425, 429, 5xx, 401, 403 and 3xx
 * transient (401/403 because an API key can be fixed with keyctl while the
 * records wait); any other 4xx permanent (dead letter).
 */
#include "config.h"
#include "agent/keys.h"
#include "agent/record.h"
#include "agent/upstream.h"
#include "lib/config.h"
#include "lib/log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_sink {
    CURL *curl;
    struct keys *keys;
    char *url;                   /* https URL, or the ClickHouse base URL */
    char *ca_file, *pin;
    int clickhouse;
    char table[130];             /* db.table */
    char *insert_url;
    char *ddl;
    int table_ready;
};

/* 1 if the authority at HOSTPORT ("host:port/..." after the scheme) names
 * this host: localhost, 127.0.0.0/8 or [::1]. */
static int loopback_host(const char *hostport)
{
    char host[64];
    size_t n;

    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        return end && (size_t)(end - hostport) == 4 && !strncmp(hostport, "[::1]", 5);
    }
    n = strcspn(hostport, ":/?#@");
    if (n == 0 || n >= sizeof(host) || hostport[n] == '@')
        return 0;                          /* no user info: that would hide the host */
    memcpy(host, hostport, n);
    host[n] = '\0';
    if (!strcmp(host, "localhost"))
        return 1;
    unsigned a, b, c, d;
    char tail;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

int http_sink_new(const struct tv_config *cfg, struct keys *keys, const char *url,
                  struct http_sink **out, char *err, size_t errlen)
{
    struct http_sink *h = calloc(1, sizeof(*h));
    int r = 0;

    *out = NULL;
    if (!h)
        return -ENOMEM;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h->keys = keys;
    h->ca_file = cfg->agent.ca_file && *cfg->agent.ca_file ? strdup(cfg->agent.ca_file) : NULL;
    h->pin = cfg->agent.pinned_pubkey && *cfg->agent.pinned_pubkey ? strdup(cfg->agent.pinned_pubkey) : NULL;
    if (!(h->curl = curl_easy_init())) {
        r = -ENOMEM;
        goto out;
    }
    if (!strncmp(url, "clickhouse+", 11)) {
        /* clickhouse+http(s)://host:port/db.table */
        const char *base = url + 11;
        const char *hostpart = strstr(base, "://");
        const char *slash = hostpart ? strchr(hostpart + 3, '/') : NULL;
        const char *t = slash ? slash + 1 : "";
        const char *dot = strchr(t, '.');
        size_t tl = strlen(t);
        int ok = slash && dot && dot != t && dot[1] && tl < sizeof(h->table);
        for (size_t i = 0; ok && i < tl; i++)
            ok = isalnum((unsigned char)t[i]) || t[i] == '_' || (t + i == dot);
        if (!ok) {
            snprintf(err, errlen, "upstream \"%s\": expected clickhouse+http(s)://HOST:PORT/DB.TABLE "
                     "(letters, digits and _ only)", url);
            r = -EINVAL;
            goto out;
        }
        /* Credentials and rows cross the network: in plaintext only to this
         * host (a local ClickHouse); anywhere else clickhouse+https://, with
         * the same TLS rules as https:// (verified chain, host name, pin). */
        if (!strncmp(base, "http://", 7) && !loopback_host(base + 7)) {
            snprintf(err, errlen, "upstream \"%s\": plaintext clickhouse+http:// is allowed only to "
                     "loopback (127.0.0.1, ::1, localhost): use clickhouse+https://", url);
            r = -EINVAL;
            goto out;
        }
        h->clickhouse = 1;
        memcpy(h->table, t, tl + 1);
        h->url = strndup(base, (size_t)(slash - base) + 1);
        char *q = NULL;
        size_t n = strlen(h->url) + strlen(h->table) + 64;
        if (h->url && (q = malloc(n)) != NULL)
            snprintf(q, n, "%s?query=INSERT%%20INTO%%20%s%%20FORMAT%%20JSONEachRow", h->url, h->table);
        h->insert_url = q;
        h->ddl = record_clickhouse_ddl(h->table);
        if (!h->url || !h->insert_url || !h->ddl)
            r = -ENOMEM;
    } else {
        if (!(h->url = strdup(url)))
            r = -ENOMEM;
    }
out:
    if (r != 0) {
        http_sink_free(h);
        return r;
    }
    *out = h;
    return 0;
}

void http_sink_free(struct http_sink *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->url);
    free(h->insert_url);
    free(h->ddl);
    free(h->ca_file);
    free(h->pin);
    free(h);
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p; (void)ud;
    return sz * n;
}

/* Wipe header strings before curl frees them (one holds the API key). */
static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *x = l; x; x = x->next)
        if (x->data)
            sodium_memzero(x->data, strlen(x->data));
    curl_slist_free_all(l);
}

/* One POST of LEN bytes at BODY to URL.  Fills O from the outcome. */
static void post(struct http_sink *h, const char *url, const char *ctype, const char *body,
                 size_t len, struct curl_slist *extra, struct up_outcome *o)
{
    struct curl_slist *hdrs = extra;
    char ct[96];
    CURLcode result;
    long status = 0;
    curl_off_t ra = -1;
    int https = !strncmp(url, "https://", 8);

    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    hdrs = curl_slist_append(hdrs, ct);
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = curl_slist_append(hdrs, "User-Agent: tracevault-agent/" PACKAGE_VERSION);
    curl_easy_reset(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, 60000L);
    if (https) {
        curl_easy_setopt(h->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 2L);
        if (h->ca_file)
            curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->ca_file);
        if (h->pin)
            curl_easy_setopt(h->curl, CURLOPT_PINNEDPUBLICKEY, h->pin);
    }
    result = curl_easy_perform(h->curl);
    slist_free_wiped(hdrs);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    if (result != CURLE_OK) {
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "upstream %s: %s", h->url, curl_easy_strerror(result));
        return;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h->curl, CURLINFO_RETRY_AFTER, &ra);
    o->status = (int)status;
    o->retry_after_ms = ra > 0 ? (long)(ra > 86400 ? 86400 : ra) * 1000 : -1;
    if (status >= 200 && status < 300) {
        o->result = UP_OK;
        return;
    }
    if (status >= 400 && status < 500 && status != 401 && status != 403 && status != 408 &&
        status != 425 && status != 429)
        o->result = UP_REJECT;
    else
        o->result = UP_RETRY;
    snprintf(o->reason, sizeof(o->reason), "upstream %s: HTTP status %ld", h->url, status);
}

static void send_https(struct http_sink *h, const struct qbatch *b, const char *batch_id,
                       const struct up_cred *c, struct up_outcome *o)
{
    struct curl_slist *hdrs = NULL;
    msgpack_sbuffer sb;
    char *auth = NULL, idem[96], proj[96];
    size_t alen;

    if (c->rc != 0 || !c->key) {
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "%s", c->err[0] ? c->err : "no API key");
        return;
    }
    alen = strlen(c->key) + sizeof("Authorization: Bearer ");
    if ((auth = sodium_malloc(alen)) != NULL)
        snprintf(auth, alen, "Authorization: Bearer %s", c->key);
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", batch_id);
    snprintf(proj, sizeof(proj), "X-TraceVault-Project: %s", b->project);
    msgpack_sbuffer_init(&sb);
    if (!auth || upstream_body(b, batch_id, &sb) != 0) {
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "upstream %s: out of memory", h->url);
        goto out;
    }
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, idem);
    hdrs = curl_slist_append(hdrs, proj);
    post(h, h->url, "application/msgpack", sb.data, sb.size, hdrs, o);
out:
    msgpack_sbuffer_destroy(&sb);
    if (auth)
        sodium_free(auth);
}

/* PROJECT's ClickHouse credentials as headers (X-ClickHouse-User/-Key: never
 * in the URL, which servers and proxies log).  They are the project's API key
 * in keyd, "USER:PASSWORD" (keyctl apikey-set), sealed like any API key and
 * fetched per attempt; the header strings live in guarded memory and are
 * wiped after the request.  No key set: no credentials (ClickHouse's own
 * user rules decide).  *MEM: the two header lines (sodium_free), or NULL.
 * Returns 0, or -1 with O filled (retry later). */
static int ch_auth(const struct up_cred *c, char **mem, struct up_outcome *o)
{
    char *key, *colon;
    size_t n;

    *mem = NULL;
    if (c->rc != 0 || !c->key) {
        if (c->rc == -ENOENT || c->rc == -ECONNREFUSED)
            return 0;
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "%s", c->err[0] ? c->err : "no credentials");
        return -1;
    }
    /* a guarded working copy: the user part is cut at the colon */
    if (!(key = sodium_malloc(strlen(c->key) + 1))) {
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "clickhouse: out of memory");
        return -1;
    }
    memcpy(key, c->key, strlen(c->key) + 1);
    n = 2 * strlen(key) + 64;
    if (!(*mem = sodium_malloc(n))) {
        sodium_free(key);
        o->result = UP_RETRY;
        snprintf(o->reason, sizeof(o->reason), "clickhouse: out of memory");
        return -1;
    }
    colon = strchr(key, ':');
    if (colon)
        *colon = '\0';
    /* Two NUL-terminated header lines in one guarded buffer. */
    int u = snprintf(*mem, n, "X-ClickHouse-User: %s", key);
    snprintf(*mem + u + 1, n - (size_t)u - 1, "X-ClickHouse-Key: %s", colon ? colon + 1 : "");
    sodium_free(key);
    return 0;
}

/* post() consumes its header list: each request gets a fresh copy. */
static struct curl_slist *ch_headers(const char *mem)
{
    struct curl_slist *l = NULL;

    if (mem) {
        l = curl_slist_append(l, mem);
        l = curl_slist_append(l, mem + strlen(mem) + 1);
    }
    return l;
}

static void send_clickhouse(struct http_sink *h, const struct qbatch *b, const struct up_cred *c,
                            struct up_outcome *o)
{
    char *rows = NULL, *auth = NULL;
    size_t len = 0, cap = 0;

    if (ch_auth(c, &auth, o) != 0)
        return;

    if (!h->table_ready) {
        char db[140];
        snprintf(db, sizeof(db), "CREATE DATABASE IF NOT EXISTS %.*s",
                 (int)(strchr(h->table, '.') - h->table), h->table);
        post(h, h->url, "text/plain", db, strlen(db), ch_headers(auth), o);
        if (o->result == UP_OK)
            post(h, h->url, "text/plain", h->ddl, strlen(h->ddl), ch_headers(auth), o);
        if (o->result != UP_OK) {
            if (o->result == UP_REJECT)
                o->result = UP_RETRY;      /* no table yet: keep the records */
            goto out;
        }
        h->table_ready = 1;
        log_info("clickhouse: table %s ready", h->table);
    }
    for (size_t i = 0; i < b->n; i++) {
        json_t *row = record_to_row(b->buf + b->off[i], b->len[i]);
        char *line = row ? json_dumps(row, JSON_COMPACT) : NULL;
        json_decref(row);
        if (!line) {
            o->result = UP_RETRY;
            snprintf(o->reason, sizeof(o->reason), "clickhouse: cannot encode record %s", b->record_id[i]);
            goto out;
        }
        size_t n = strlen(line);
        if (len + n + 2 > cap) {
            size_t nc = cap ? cap * 2 : 65536;
            while (nc < len + n + 2)
                nc *= 2;
            char *nr = realloc(rows, nc);
            if (!nr) {
                free(line);
                o->result = UP_RETRY;
                snprintf(o->reason, sizeof(o->reason), "clickhouse: out of memory");
                goto out;
            }
            rows = nr;
            cap = nc;
        }
        memcpy(rows + len, line, n);
        len += n;
        rows[len++] = '\n';
        free(line);
    }
    post(h, h->insert_url, "application/x-ndjson", rows ? rows : "", len, ch_headers(auth), o);
    if (o->result != UP_OK)
        h->table_ready = 0;                /* it may have been dropped: check again */
out:
    free(rows);
    if (auth)
        sodium_free(auth);                 /* wipes the whole guarded buffer */
}

void http_sink_send(struct http_sink *h, const struct qbatch *b, const char *batch_id,
                    const struct up_cred *c, struct up_outcome *o)
{
    if (h->clickhouse)
        send_clickhouse(h, b, c, o);
    else
        send_https(h, b, batch_id, c, o);
}

struct keys *http_sink_keys(struct http_sink *h)
{
    return h->keys;
}

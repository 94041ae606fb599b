/*
 * upstream.c - the upstream dispatcher, the batch body, and the file:// sink
 * with its reader (`dump`).  HTTP(S) and ClickHouse live in upstream_http.c.
 */
#include "config.h"
#include "agent/upstream.h"
#include "agent/keys.h"
#include "agent/record.h"
#include "lib/config.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct upstream {
    char *dir;                   /* file:// */
    struct http_sink *http;      /* https:// and clickhouse+http(s):// */
};

int upstream_new(const struct tv_config *cfg, struct keys *keys, struct upstream **out,
                 char *err, size_t errlen)
{
    const char *url = cfg->agent.upstream;
    struct upstream *u = calloc(1, sizeof(*u));
    int r = 0;

    *out = NULL;
    if (!u)
        return -ENOMEM;
    if (!strncmp(url, "file://", 7)) {
        if (url[7] != '/') {
            snprintf(err, errlen, "upstream \"%s\": file:// needs an absolute directory", url);
            r = -EINVAL;
        } else if (!(u->dir = strdup(url + 7)))
            r = -ENOMEM;
        else if ((r = tv_mkdir_p(u->dir, 0750)) != 0)
            snprintf(err, errlen, "upstream directory %s: %s", u->dir, strerror(-r));
    } else if (!strncmp(url, "https://", 8) || !strncmp(url, "clickhouse+http://", 18) ||
               !strncmp(url, "clickhouse+https://", 19)) {
        r = http_sink_new(cfg, keys, url, &u->http, err, errlen);
    } else {
        snprintf(err, errlen, "upstream \"%s\": scheme must be https://, "
                 "clickhouse+http(s):// or file://", url);
        r = -EINVAL;
    }
    if (r != 0) {
        upstream_free(u);
        return r;
    }
    *out = u;
    return 0;
}

void upstream_free(struct upstream *u)
{
    if (!u)
        return;
    free(u->dir);
    http_sink_free(u->http);
    free(u);
}

int upstream_body(const struct qbatch *b, const char *batch_id, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 3) != 0 ||
        msgpack_pack_str_with_body(&pk, "batch_id", 8) != 0 ||
        msgpack_pack_str_with_body(&pk, batch_id, strlen(batch_id)) != 0 ||
        msgpack_pack_str_with_body(&pk, "project", 7) != 0 ||
        msgpack_pack_str_with_body(&pk, b->project, strlen(b->project)) != 0 ||
        msgpack_pack_str_with_body(&pk, "records", 7) != 0 ||
        msgpack_pack_array(&pk, b->n) != 0)
        return -ENOMEM;
    /* Records are already msgpack maps, contiguous: append them as they are. */
    if (b->n > 0 &&
        msgpack_sbuffer_write(sb, b->buf + b->off[0], b->off[b->n - 1] + b->len[b->n - 1] - b->off[0]) != 0)
        return -ENOMEM;
    return 0;
}

static void file_send(struct upstream *u, const struct qbatch *b, const char *batch_id,
                      struct up_outcome *o)
{
    char dir[PATH_MAX], name[80];
    msgpack_sbuffer sb;
    int r;

    msgpack_sbuffer_init(&sb);
    snprintf(dir, sizeof(dir), "%s/%s", u->dir, b->project);
    snprintf(name, sizeof(name), "%s.msgpack", batch_id);
    if ((r = upstream_body(b, batch_id, &sb)) == 0 && (r = tv_mkdir_p(dir, 0750)) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            r = -errno;
        else {
            r = tv_write_atomic(dfd, name, sb.data, sb.size, 0640);
            close(dfd);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    if (r == 0) {
        o->result = UP_OK;
        return;
    }
    o->result = UP_RETRY;
    snprintf(o->reason, sizeof(o->reason), "outbox %.100s: %s", dir, strerror(-r));
}

void upstream_cred(struct upstream *u, const char *project, struct up_cred *c)
{
    memset(c, 0, sizeof(*c));
    if (!u->http)
        return;                  /* file://: none */
    struct keys *k = http_sink_keys(u->http);
    c->rc = keys_apikey(k, project, &c->key);
    if (c->rc != 0)
        snprintf(c->err, sizeof(c->err), "%s", keys_error(k));
}

void upstream_cred_free(struct up_cred *c)
{
    if (c->key)
        sodium_free(c->key);     /* wipes it */
    c->key = NULL;
}

void upstream_send(struct upstream *u, const struct qbatch *b, const char *batch_id,
                   const struct up_cred *c, struct up_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = -1;
    if (u->dir)
        file_send(u, b, batch_id, o);
    else
        http_sink_send(u->http, b, batch_id, c, o);
}

int upstream_dump(const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, off = 0;
    msgpack_unpacked up;
    int r;

    if ((r = tv_read_file(path, (size_t)1 << 30, &buf, &len)) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    msgpack_unpacked_init(&up);
    r = -EBADMSG;
    if (msgpack_unpack_next(&up, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &up.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 7 ||
                memcmp(k->via.str.ptr, "records", 7) != 0 || v->type != MSGPACK_OBJECT_ARRAY)
                continue;
            r = 0;
            for (uint32_t j = 0; j < v->via.array.size && r == 0; j++) {
                json_t *rec = record_object_to_json(&v->via.array.ptr[j]);
                char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                if (!line)
                    r = -EBADMSG;
                else
                    printf("%s\n", line);
                free(line);
                json_decref(rec);
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    if (r != 0)
        snprintf(err, errlen, "%s: not a tracevault batch file", path);
    if (fflush(stdout) != 0 && r == 0) {
        snprintf(err, errlen, "stdout: %s", strerror(errno));
        r = -EIO;
    }
    return r;
}

/*
 * records.c - see records.h.
 */
#include "config.h"
#include "keyd/records.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

const struct audit_format keyd_audit_format = { "seq=", " ", " mac=", "\n", "prev=" };

int keyd_rec_body(char *buf, size_t cap, const struct keyd_rec *r)
{
    char ts[32];
    tv_rfc3339(tv_wall_ns(), ts);
    int n = snprintf(buf, cap,
                     "gen=%" PRIu64 " time=%s uid=%u pid=%d op=%s project=%s version=%" PRIu32
                     " n=%" PRIu32 "%s%s result=%s%s%s",
                     r->gen, ts, (unsigned)r->uid, (int)r->pid, r->op ? r->op : "?",
                     r->project && *r->project ? r->project : "-", r->version, r->n,
                     r->key_id && *r->key_id ? " key=" : "",
                     r->key_id && *r->key_id ? r->key_id : "", r->result ? r->result : "?", r->prev_hex ? " prev=" : "",
                     r->prev_hex ? r->prev_hex : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int keyd_rec_gen(const char *line, size_t len, uint64_t *gen)
{
    /* "seq=N gen=G ...": the gen field follows the seq field. */
    const char *p = memchr(line, ' ', len < 32 ? len : 32);
    uint64_t g = 0;
    int digits = 0;

    if (!p || (size_t)(line + len - p) < 6 || memcmp(p, " gen=", 5) != 0)
        return -EBADMSG;
    for (p += 5; p < line + len && *p >= '0' && *p <= '9' && digits < 20; p++, digits++)
        g = g * 10 + (uint64_t)(*p - '0');
    if (!digits || p >= line + len || *p != ' ')
        return -EBADMSG;
    *gen = g;
    return 0;
}

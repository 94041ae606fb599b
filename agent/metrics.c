/*
 * metrics.c - Prometheus text rendering (metrics.h).
 */
#include "config.h"
#include "agent/metrics.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char buf[16384];
    size_t len;
};

static void add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->len >= sizeof(o->buf))
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void metric(struct out *o, const char *name, const char *type, const char *help,
                   double value)
{
    add(o, "# HELP tracevault_agent_%s %s\n# TYPE tracevault_agent_%s %s\n"
        "tracevault_agent_%s %.17g\n", name, help, name, type, name, value);
}

int metrics_write(const struct metrics *m, const char *path)
{
    struct out *o = calloc(1, sizeof(*o));
    int r;

    if (!o)
        return -ENOMEM;
    metric(o, "traces_seen_total", "counter", "Trace documents and JSONL lines read.",
           (double)m->traces_seen);
    metric(o, "records_queued_total", "counter", "Metadata records queued durably.",
           (double)m->records_queued);
    metric(o, "records_shipped_total", "counter", "Records acknowledged by the upstream.",
           (double)m->records_shipped);
    metric(o, "records_dead_lettered_total", "counter",
           "Records permanently rejected by the upstream (dead-letter table).",
           (double)m->records_dead_lettered);
    metric(o, "batches_shipped_total", "counter", "Batches acknowledged by the upstream.",
           (double)m->batches_shipped);
    metric(o, "retries_total", "counter", "Delivery attempts that failed and will be retried.",
           (double)m->retries);
    metric(o, "rescans_total", "counter", "Full rescans of the watched tree.", (double)m->rescans);
    metric(o, "read_retries_total", "counter",
           "Reads that failed (vault EIO: keyd down, shredded or damaged file) and are retried with backoff.",
           (double)m->read_retries);
    metric(o, "bytes_read_total", "counter", "Trace bytes read.", (double)m->bytes_read);
    add(o, "# HELP tracevault_agent_skipped_total Documents skipped, by reason.\n"
        "# TYPE tracevault_agent_skipped_total counter\n");
    for (int i = 1; i < SKIP_REASON_COUNT; i++)
        add(o, "tracevault_agent_skipped_total{reason=\"%s\"} %llu\n", skip_reason_name(i),
            (unsigned long long)m->skipped[i]);
    add(o, "# HELP tracevault_agent_fields_dropped_total Strings from traces not shipped: "
        "they failed their field's shape or a PII detector.\n"
        "# TYPE tracevault_agent_fields_dropped_total counter\n");
    for (int f = 0; f < CF_COUNT; f++)
        for (int w = 0; w < DROP_REASONS; w++)
            add(o, "tracevault_agent_fields_dropped_total{field=\"%s\",reason=\"%s\"} %llu\n",
                record_checked_field_name(f), record_drop_reason_name(w),
                (unsigned long long)m->fields_dropped[f][w]);
    metric(o, "shredded_projects_total", "counter",
           "Projects shredded while the agent ran: keys wiped, nothing of them shipped since.",
           (double)m->shredded_projects);
    metric(o, "records_shredded_total", "counter",
           "Queued records of shredded projects deleted without being shipped.",
           (double)m->records_shredded);
    metric(o, "queue_depth", "gauge", "Records waiting in the durable queue.", (double)m->queue_depth);
    metric(o, "queue_bytes", "gauge", "Bytes of records waiting in the durable queue.",
           (double)m->queue_bytes);
    metric(o, "lag_seconds", "gauge", "Age of the oldest queued record.", m->lag_seconds);
    metric(o, "reading_paused", "gauge", "1 while reading is paused at the queue's disk cap.",
           (double)m->reading_paused);
    r = tv_write_atomic(AT_FDCWD, path, o->buf, o->len, 0644);
    free(o);
    return r;
}

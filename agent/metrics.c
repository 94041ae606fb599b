/*
 * metrics.c - the agent's metrics as a Prometheus textfile (metrics.h),
 * rendered with lib/prom.
 */
#include "config.h"
#include "agent/metrics.h"
#include "lib/prom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int metrics_write(const struct metrics *m, const char *path)
{
    struct prom *o = prom_new("tracevault_agent_");

    if (!o)
        return -ENOMEM;
    prom_metric(o, "traces_seen_total", "counter", "Trace documents and JSONL lines read.",
                (double)m->traces_seen);
    prom_metric(o, "records_queued_total", "counter", "Metadata records queued durably.",
                (double)m->records_queued);
    prom_metric(o, "records_shipped_total", "counter", "Records acknowledged by the upstream.",
                (double)m->records_shipped);
    prom_metric(o, "records_dead_lettered_total", "counter",
                "Records permanently rejected by the upstream (dead-letter table).",
                (double)m->records_dead_lettered);
    prom_metric(o, "batches_shipped_total", "counter", "Batches acknowledged by the upstream.",
                (double)m->batches_shipped);
    prom_metric(o, "retries_total", "counter", "Delivery attempts that failed and will be retried.",
                (double)m->retries);
    prom_metric(o, "rescans_total", "counter", "Full rescans of the watched tree.", (double)m->rescans);
    prom_metric(o, "read_retries_total", "counter",
                "Reads that failed (vault EIO: keyd down, shredded or damaged file) and are retried with backoff.",
                (double)m->read_retries);
    prom_metric(o, "bytes_read_total", "counter", "Trace bytes read.", (double)m->bytes_read);
    prom_add(o, "# HELP tracevault_agent_skipped_total Documents skipped, by reason.\n"
        "# TYPE tracevault_agent_skipped_total counter\n");
    for (int i = 1; i < SKIP_REASON_COUNT; i++)
        prom_add(o, "tracevault_agent_skipped_total{reason=\"%s\"} %llu\n", skip_reason_name(i),
            (unsigned long long)m->skipped[i]);
    prom_add(o, "# HELP tracevault_agent_fields_dropped_total Strings from traces not shipped: "
        "they failed their field's shape or a PII detector.\n"
        "# TYPE tracevault_agent_fields_dropped_total counter\n");
    for (int f = 0; f < CF_COUNT; f++)
        for (int w = 0; w < DROP_REASONS; w++)
            prom_add(o, "tracevault_agent_fields_dropped_total{field=\"%s\",reason=\"%s\"} %llu\n",
                record_checked_field_name(f), record_drop_reason_name(w),
                (unsigned long long)m->fields_dropped[f][w]);
    prom_metric(o, "shredded_projects_total", "counter",
                "Projects shredded while the agent ran: keys wiped, nothing of them shipped since.",
                (double)m->shredded_projects);
    prom_metric(o, "records_shredded_total", "counter",
                "Queued records of shredded projects deleted without being shipped.",
                (double)m->records_shredded);
    prom_metric(o, "queue_depth", "gauge", "Records waiting in the durable queue.", (double)m->queue_depth);
    prom_metric(o, "queue_bytes", "gauge", "Bytes of records waiting in the durable queue.",
                (double)m->queue_bytes);
    prom_metric(o, "lag_seconds", "gauge", "Age of the oldest queued record.", m->lag_seconds);
    prom_metric(o, "reading_paused", "gauge", "1 while reading is paused at the queue's disk cap.",
                (double)m->reading_paused);
    return prom_write(o, path);
}

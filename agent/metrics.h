/*
 * metrics.h - the agent's counters and gauges, written in the Prometheus text
 * exposition format to [agent] metrics_file atomically (temp file + rename),
 * for node_exporter's textfile collector.  The agent never listens on a port.
 */
#ifndef TV_AGENT_METRICS_H
#define TV_AGENT_METRICS_H

#include <stdint.h>

#include "agent/parse.h"
#include "agent/record.h"

struct metrics {
    uint64_t traces_seen;            /* documents and JSONL lines read */
    uint64_t records_queued;
    uint64_t records_shipped;
    uint64_t records_dead_lettered;
    uint64_t batches_shipped;
    uint64_t retries;                /* failed delivery attempts that will be retried */
    uint64_t rescans;                /* full rescans (start, queue overflow, watch limit) */
    uint64_t read_retries;           /* files that could not be read now, retried later */
    uint64_t bytes_read;
    uint64_t skipped[SKIP_REASON_COUNT];
    uint64_t fields_dropped[CF_COUNT][DROP_REASONS];   /* strings that failed record_check */
    uint64_t shredded_projects;      /* SHRED events acted on (keys wiped, records dropped) */
    uint64_t records_shredded;       /* queued records of shredded projects, deleted unsent */
    uint64_t queue_depth;            /* gauge */
    uint64_t queue_bytes;            /* gauge */
    double lag_seconds;              /* gauge: age of the oldest queued record */
    int reading_paused;              /* gauge: 1 while the queue is at its disk cap */
};

/* Render M into PATH atomically.  Returns 0 or a negative errno. */
int metrics_write(const struct metrics *m, const char *path);

#endif

/*
 * ship.h - delivery: batches per project from the durable queue to the
 * upstream, with exponential backoff and full jitter, Retry-After honoured,
 * and no retry limit (records wait in the queue, bounded by its disk cap).
 *
 * A batch is sent when the project has batch_max_records records or
 * batch_max_bytes bytes queued, or its oldest record is batch_linger_ms old
 * (or at once when forced: --once and shutdown).  Its idempotency key is a
 * hash of its record_ids.  Acknowledged batches are deleted; permanently
 * rejected ones move to the dead-letter table with a log line and a counter.
 * Sending is synchronous: a batch in flight when SIGTERM arrives finishes.
 */
#ifndef TV_AGENT_SHIP_H
#define TV_AGENT_SHIP_H

#include <stdint.h>

struct tv_config;
struct queue;
struct upstream;
struct metrics;
struct shipper;

int shipper_new(const struct tv_config *cfg, struct queue *q, struct upstream *u,
                struct metrics *m, struct shipper **out);
void shipper_free(struct shipper *s);

/* Send at most one due batch per project.  FORCE ignores the linger.
 * Returns the number of batches sent (acknowledged or dead-lettered), or a
 * negative errno on a state database failure.  *NEXT_MS: monotonic time at
 * which something becomes due (0 = nothing queued). */
int shipper_run(struct shipper *s, int force, uint64_t *next_ms);

/* Records dead-lettered by this process. */
uint64_t shipper_dead(const struct shipper *s);

/* Backoff delay for ATTEMPT (1, 2, ...): uniform in [0, min(cap, base*2^attempt)]
 * (full jitter), but never less than RETRY_AFTER_MS.  Exposed for tests. */
uint64_t ship_backoff_ms(unsigned attempt, long retry_after_ms, uint64_t base_ms, uint64_t cap_ms);

#endif

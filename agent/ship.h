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
 *
 * Sending happens on a thread of its own, up to 8 batches of one project per
 * flight, while the main loop goes on reading; the main loop alone touches
 * the queue and the keys (ship.c).  A flight in the air when SIGTERM arrives
 * lands before the agent exits; one it could not settle is sent again at the
 * next start under the same batch ids.
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

/* Settle the flight that landed, if any, and launch the next one when a
 * project is due (round robin).  FORCE ignores the linger.  Returns the
 * number of batches settled (acknowledged or dead-lettered), or a negative
 * errno on a state database failure.  *NEXT_MS: monotonic time at which a
 * project not yet due becomes due (0 = none); a flight in the air wakes
 * shipper_fd instead. */
int shipper_run(struct shipper *s, int force, uint64_t *next_ms);

/* Readable when a flight has landed (poll it with the loop's other fds). */
int shipper_fd(const struct shipper *s);
/* 1 while a flight is in the air or landed and not yet settled. */
int shipper_busy(const struct shipper *s);
/* Wait up to TIMEOUT_MS for the flight to land; 1 if it has. */
int shipper_wait(struct shipper *s, int timeout_ms);
/* Let the flight in the air, if any, land and settle it (before exiting).
 * 0 or a negative errno. */
int shipper_finish(struct shipper *s);
/* PROJECT was shredded (its rows deleted): a flight of it settles nothing. */
void shipper_forget(struct shipper *s, const char *project);

/* Records dead-lettered by this process. */
uint64_t shipper_dead(const struct shipper *s);

/* Backoff delay for ATTEMPT (1, 2, ...): uniform in [0, min(cap, base*2^attempt)]
 * (full jitter), but never less than RETRY_AFTER_MS.  Exposed for tests. */
uint64_t ship_backoff_ms(unsigned attempt, long retry_after_ms, uint64_t base_ms, uint64_t cap_ms);

#endif

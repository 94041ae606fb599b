/*
 * watch.h - discovery: recursive inotify over the root (libinotifytools) and
 * full scans.
 *
 * New directories (projects included) are watched as soon as their creation
 * is seen and then scanned, so files made before the watch existed are not
 * missed.  An inotify queue overflow, or running out of watches, triggers a
 * full rescan (and, while watches are short, a rescan every few seconds):
 * never a silent gap.  Scans are idempotent: checkpoints decide what is new.
 */
#ifndef TV_AGENT_WATCH_H
#define TV_AGENT_WATCH_H

#include <stdint.h>

struct ingest;
struct metrics;
struct watch;

/* Watch ROOT recursively.  Returns 0 and *OUT, or a negative errno (logged). */
int watch_new(const char *root, struct ingest *in, struct metrics *m, struct watch **out);
void watch_free(struct watch *w);

/* The inotify descriptor, to poll for POLLIN. */
int watch_fd(const struct watch *w);

/* Handle every queued event (non-blocking).  Returns 0. */
int watch_drain(struct watch *w);

/* Walk ROOT and report every trace file to IN (ingest_scanned).  SETTLE as in
 * ingest_scanned.  Usable without a watch (--once). */
int watch_scan(const char *root, struct ingest *in, int settle);

/* Rescan if one is due (overflow, watch limit).  Returns ms until the next
 * periodic rescan (0 = none planned). */
uint64_t watch_maintain(struct watch *w);

#endif

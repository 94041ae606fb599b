/*
 * watch.h - discovery: recursive inotify over the root and full scans.
 *
 * Every directory is watched before it is listed, and subdirectories found
 * by the listing are walked the same way, so whatever is made in a new tree
 * is either in a listing or raises an event.  An inotify queue overflow, or
 * running out of watches, triggers a full rescan (and, while watches are
 * short, a rescan every few seconds): never a silent gap.  The root is
 * checked every second: when its mount goes away (a dead FUSE mount, an
 * unmount, another mount in its place) every watch is dropped, the loss is
 * logged once, and when it is back the tree is watched and rescanned.
 * Scans are idempotent: checkpoints decide what is new.
 */
#ifndef TV_AGENT_WATCH_H
#define TV_AGENT_WATCH_H

#include <stdint.h>

struct ingest;
struct metrics;
struct watch;

/* Watch ROOT recursively (a ROOT not usable yet is watched once it is).
 * Scan it next.  Returns 0 and *OUT, or a negative errno (logged). */
int watch_new(const char *root, struct ingest *in, struct metrics *m, struct watch **out);
void watch_free(struct watch *w);

/* The inotify descriptor, to poll for POLLIN. */
int watch_fd(const struct watch *w);

/* Handle every queued event (non-blocking).  Returns 0. */
int watch_drain(struct watch *w);

/* Walk ROOT and report every trace file to IN (ingest_scanned).  SETTLE as in
 * ingest_scanned.  Usable without a watch (--once). */
int watch_scan(const char *root, struct ingest *in, int settle);

/* Check the root, rescan if one is due (overflow, watch limit, the mount
 * back).  Returns when to call again (tv_now_ms() time, within a second). */
uint64_t watch_maintain(struct watch *w);

#endif

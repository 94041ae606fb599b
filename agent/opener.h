/*
 * opener.h - open many files at once, on a few threads.
 *
 * Through the vault an open is a FUSE round trip whose reply waits until the
 * open's audit record is durable (two fdatasyncs): about 0.6 ms here, most of
 * it waiting, not working.  One reader opening files one after another
 * therefore gets ~1,500 files/s whatever the CPU; several opens in flight
 * share the vault's group commit.  The agent hands the opener the next
 * documents of a backlog and gets their descriptors back.  Nothing here
 * reads or parses: that stays on the caller's threads.
 */
#ifndef TV_AGENT_OPENER_H
#define TV_AGENT_OPENER_H

#include <stddef.h>

struct opener;

/* NTHREADS helper threads (0: the caller opens alone). */
int opener_new(unsigned nthreads, struct opener **out);
/* Stop and join; NULL is fine. */
void opener_free(struct opener *o);

/* Open PATHS[0..N) read-only (O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) on the
 * helpers and the calling thread; FDS[i] is the descriptor or -errno.
 * Returns when all are done. */
void opener_run(struct opener *o, const char *const *paths, int *fds, size_t n);

#endif

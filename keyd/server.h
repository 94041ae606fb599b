/*
 * server.h - keyd's socket side: one thread, one epoll loop, many clients.
 *
 * Why an event loop and not a thread per connection (docs/KEYD.md
 * "Concurrency"): keyd's state (keystore, audit chain) is one small thing
 * that every request touches, so threads would serialise on one lock
 * anyway; a single loop needs no locks, a hostile client costs only a
 * buffer and a deadline (not a thread), and the loop gives group commit for
 * free: every request that arrives in one wake-up shares one audit fsync.
 *
 * Per connection: a bounded input buffer (one frame of at most
 * KEYD_REQ_MAX), an output buffer, and a deadline.  A connection that holds
 * a partial frame or unread output for longer than [keyd]
 * client_timeout_ms, or stays idle for 12x that, is closed.  At most
 * [keyd] max_clients connections; more are accepted and closed at once.
 */
#ifndef TV_KEYD_SERVER_H
#define TV_KEYD_SERVER_H

#include "keyd/ops.h"

struct keyd_server;

/* Bind the socket of ST->cfg (its directory is created 0750 if missing and
 * must not be writable by others), ready to run.  CONF_PATH is reloaded on
 * SIGHUP (user lists).  Returns 0 and *OUT, or -errno with ERR set. */
int server_new(struct keyd_state *st, const char *conf_path, struct keyd_server **out,
               char *err, size_t errlen);

/* Serve until SIGTERM/SIGINT (0) or a fatal audit/keystore error (-EIO). */
int server_run(struct keyd_server *s);

/* Close every connection, remove the socket; NULL is fine. */
void server_free(struct keyd_server *s);

#endif

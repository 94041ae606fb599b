/*
 * listen.h - the gateway's listening sockets: from the [ingest] listen list
 * ("127.0.0.1:4318, [::1]:4318, unix:/run/tracevault/ingest.sock") or handed
 * over by systemd (socket activation).  The gateway binds them itself and
 * gives libmicrohttpd the descriptors, so every kind is served the same way.
 */
#ifndef TV_INGEST_LISTEN_H
#define TV_INGEST_LISTEN_H

#include <stddef.h>

struct listener {
    int fd;
    int is_unix;          /* AF_UNIX: local peers only */
    int loopback;         /* TCP on 127.0.0.0/8 or ::1 */
    char name[128];       /* as written in the config, for messages */
};

/* Bind and listen on every address of the comma list LIST.  Returns 0 with
 * *OUT (*N entries, free with listen_close), or -1 with ERR naming the
 * address and the reason.  A unix socket's stale file is replaced; the new
 * one is mode 0666 (who may ingest is decided by the key, not the socket). */
int listen_open(const char *list, struct listener **out, size_t *n, char *err, size_t errlen);

/* The sockets systemd passed (LISTEN_FDS), or 0 entries if none.  Returns 0
 * or -1 with ERR. */
int listen_systemd(struct listener **out, size_t *n, char *err, size_t errlen);

void listen_close(struct listener *l, size_t n);

#endif

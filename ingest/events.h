/*
 * events.h - POST /v1/events bodies: HoneyHive events, one object or an
 * array of them, in the shape the agent reads (agent/parse.c: an object with
 * event_type, event_name or event_id).  The body is stored as received; this
 * only decides whether it is such a document, before anything is stored.
 */
#ifndef TV_INGEST_EVENTS_H
#define TV_INGEST_EVENTS_H

#include <stddef.h>

#define EVENTS_MAX 10000        /* per request: the agent's events per document */

/* Check TEXT/LEN.  Returns 0 and *N (events), or -ELOOP (nesting), -EBADMSG
 * (not JSON, or not events: WHY names the index and the reason), -E2BIG (more
 * than EVENTS_MAX).  WHY never quotes the content. */
int events_check(const char *text, size_t len, size_t *n, char *why, size_t whylen);

#endif

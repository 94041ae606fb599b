/*
 * events.c - HoneyHive event bodies (events.h).
 */
#include "config.h"
#include "ingest/events.h"
#include "ingest/body.h"
#include "ingest/otlp.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>

/* What agent/parse.c recognises as a HoneyHive event. */
static int is_event(json_t *o)
{
    return json_is_object(o) &&
           (json_object_get(o, "event_type") || json_object_get(o, "event_name") ||
            json_object_get(o, "event_id"));
}

int events_check(const char *text, size_t len, size_t *n, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *doc, *x;
    size_t i;
    int r = 0;

    *n = 0;
    why[0] = '\0';
    if (body_json_depth_ok(text, len, OTLP_JSON_MAX_DEPTH) != 0) {
        snprintf(why, whylen, "JSON nested deeper than %d levels", OTLP_JSON_MAX_DEPTH);
        return -ELOOP;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(why, whylen, "malformed JSON at byte %d: %s", jerr.position, jerr.text);
        return -EBADMSG;
    }
    if (json_is_array(doc)) {
        if (json_array_size(doc) == 0) {
            snprintf(why, whylen, "an empty array holds no event");
            r = -EBADMSG;
        } else if (json_array_size(doc) > EVENTS_MAX) {
            snprintf(why, whylen, "more than %d events in one request", EVENTS_MAX);
            r = -E2BIG;
        }
        json_array_foreach(doc, i, x) {
            if (r)
                break;
            if (!is_event(x)) {
                snprintf(why, whylen, "element %zu is not a HoneyHive event "
                         "(an object with event_type, event_name or event_id)", i);
                r = -EBADMSG;
            }
        }
        if (!r)
            *n = json_array_size(doc);
    } else if (is_event(doc)) {
        *n = 1;
    } else {
        snprintf(why, whylen, "not a HoneyHive event (an object with event_type, "
                 "event_name or event_id) nor an array of them");
        r = -EBADMSG;
    }
    json_decref(doc);
    return r;
}

/*
 * imetrics.c - the gateway's counters (imetrics.h).
 */
#include "config.h"
#include "ingest/imetrics.h"
#include "lib/prom.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const reason_names[IM_REASON_COUNT] = {
    [IM_UNAUTHORIZED] = "unauthorized", [IM_TOO_LARGE] = "too_large",
    [IM_MALFORMED] = "malformed", [IM_TOO_DEEP] = "too_deep",
    [IM_UNSUPPORTED] = "unsupported", [IM_OVERLOADED] = "overloaded",
    [IM_KEYD_UNAVAILABLE] = "keyd_unavailable", [IM_STORE_FULL] = "store_full",
    [IM_STORE_FAILED] = "store_failed", [IM_TIMEOUT] = "timeout",
};

/* Answer classes counted separately; anything else is "other". */
static const int codes[] = { 200, 400, 401, 404, 405, 413, 415, 429, 500, 503 };
#define N_CODES (sizeof(codes) / sizeof(codes[0]))
/* Latency histogram bounds in seconds (le). */
static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static atomic_ullong req_by_code[N_CODES + 1];
static atomic_ullong rejects[IM_REASON_COUNT];
static atomic_ullong hist[N_BOUNDS + 1];
static atomic_ullong hist_sum_us;
static atomic_ullong duplicates;
static atomic_ullong spans_ok, spans_rej, events_ok, bytes_in, bytes_stored, files_stored;
static atomic_llong inflight_req, inflight_bytes;

void im_request(int status, double seconds)
{
    size_t i;
    for (i = 0; i < N_CODES && codes[i] != status; i++)
        ;
    atomic_fetch_add(&req_by_code[i], 1);
    for (i = 0; i < N_BOUNDS && seconds > bounds[i]; i++)
        ;
    atomic_fetch_add(&hist[i], 1);
    atomic_fetch_add(&hist_sum_us, (unsigned long long)(seconds * 1e6));
}

void im_reject(enum im_reason r)
{
    if ((unsigned)r < IM_REASON_COUNT)
        atomic_fetch_add(&rejects[r], 1);
}

void im_stored(size_t spans, size_t events, size_t rejected_spans, size_t bytes)
{
    atomic_fetch_add(&spans_ok, spans);
    atomic_fetch_add(&events_ok, events);
    atomic_fetch_add(&spans_rej, rejected_spans);
    if (bytes) {
        atomic_fetch_add(&bytes_stored, bytes);
        atomic_fetch_add(&files_stored, 1);
    }
}

void im_duplicate(void)
{
    atomic_fetch_add(&duplicates, 1);
}

void im_received(size_t bytes)
{
    atomic_fetch_add(&bytes_in, bytes);
}

void im_inflight(long requests_delta, long bytes_delta)
{
    atomic_fetch_add(&inflight_req, requests_delta);
    atomic_fetch_add(&inflight_bytes, bytes_delta);
}

int im_write(const char *path)
{
    struct prom *o = prom_new("tracevault_ingest_");
    unsigned long long cum = 0;

    if (!o)
        return -ENOMEM;
    prom_add(o, "# HELP tracevault_ingest_requests_total Requests answered, by HTTP status.\n"
        "# TYPE tracevault_ingest_requests_total counter\n");
    for (size_t i = 0; i <= N_CODES; i++) {
        if (i < N_CODES)
            prom_add(o, "tracevault_ingest_requests_total{code=\"%d\"} %llu\n", codes[i],
                     (unsigned long long)req_by_code[i]);
        else
            prom_add(o, "tracevault_ingest_requests_total{code=\"other\"} %llu\n",
                     (unsigned long long)req_by_code[i]);
    }
    prom_add(o, "# HELP tracevault_ingest_rejections_total Requests refused, by reason.\n"
        "# TYPE tracevault_ingest_rejections_total counter\n");
    for (int i = 0; i < IM_REASON_COUNT; i++)
        prom_add(o, "tracevault_ingest_rejections_total{reason=\"%s\"} %llu\n", reason_names[i],
                 (unsigned long long)rejects[i]);
    prom_metric(o, "spans_accepted_total", "counter", "Spans stored in the vault.", (double)spans_ok);
    prom_metric(o, "spans_rejected_total", "counter",
                "Spans left out of accepted requests (partial_success).", (double)spans_rej);
    prom_metric(o, "events_accepted_total", "counter", "HoneyHive events stored in the vault.",
                (double)events_ok);
    prom_metric(o, "files_stored_total", "counter", "Files written durably into the vault.",
                (double)files_stored);
    prom_metric(o, "duplicates_total", "counter",
                "Requests already stored (retries): answered 200, not stored again.", (double)duplicates);
    prom_metric(o, "bytes_received_total", "counter", "Request body bytes received (as sent).",
                (double)bytes_in);
    prom_metric(o, "bytes_stored_total", "counter", "Bytes written into the vault.",
                (double)bytes_stored);
    prom_metric(o, "inflight_requests", "gauge", "Requests being read or stored.", (double)inflight_req);
    prom_metric(o, "inflight_bytes", "gauge", "Body bytes reserved by requests in flight.",
                (double)inflight_bytes);
    prom_add(o, "# HELP tracevault_ingest_request_duration_seconds Time from a request's headers to its answer.\n"
        "# TYPE tracevault_ingest_request_duration_seconds histogram\n");
    for (size_t i = 0; i < N_BOUNDS; i++) {
        cum += hist[i];
        prom_add(o, "tracevault_ingest_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[i], cum);
    }
    cum += hist[N_BOUNDS];
    prom_add(o, "tracevault_ingest_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    prom_add(o, "tracevault_ingest_request_duration_seconds_sum %.6f\n", (double)hist_sum_us / 1e6);
    prom_add(o, "tracevault_ingest_request_duration_seconds_count %llu\n", cum);
    return prom_write(o, path);
}

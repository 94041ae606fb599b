/*
 * prom.h - metrics in the Prometheus text exposition format, written as a
 * node_exporter textfile (docs/OPERATIONS.md "Metrics").  The agent and the
 * ingest gateway render their counters with it; each names its metrics
 * with its own prefix (tracevault_agent_, tracevault_ingest_).
 *
 *   struct prom *p = prom_new("tracevault_agent_");
 *   prom_metric(p, "records_shipped_total", "counter", "Records ...", n);
 *   prom_add(p, "tracevault_agent_x{reason=\"%s\"} %llu\n", ...);
 *   rc = prom_write(p, path);          // atomically replaces PATH, frees P
 *
 * The text grows as needed; if memory runs out, the rest is dropped and
 * prom_write returns -ENOMEM without touching the file.
 */
#ifndef TV_LIB_PROM_H
#define TV_LIB_PROM_H

struct prom;

/* A new, empty rendering whose metric names start with PREFIX (kept by
 * pointer: a string literal); NULL on ENOMEM. */
struct prom *prom_new(const char *prefix);

/* Append printf-style text as it is (labelled series, HELP/TYPE lines). */
void prom_add(struct prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One unlabelled metric: its HELP and TYPE lines and its value. */
void prom_metric(struct prom *p, const char *name, const char *type, const char *help,
                 double value);

/* Write the text to PATH atomically (mode 0644) and free P: 0 or -errno. */
int prom_write(struct prom *p, const char *path);

/* Free P without writing. */
void prom_free(struct prom *p);

#endif

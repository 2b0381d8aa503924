/*
 * metrics.h - GET /metrics: request counters shared by every API process of
 * one deployment, and gauges read from the database at scrape time, in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * spawn-fcgi runs N dialflow-api processes and a scrape reaches one of them,
 * so the counters live in a POSIX shared-memory segment that all of them map
 * (created on first use, fixed size, zero-filled = empty). Every field is
 * updated with __atomic builtins and no lock is ever taken, so a process
 * killed in the middle of an update costs at most that one increment.
 *
 * The segment is named by DIALFLOW_METRICS_SHM, else derived from the path
 * of the FastCGI socket on fd 0 (one name per deployment on a host). A
 * process with neither (a test, a process not under spawn-fcgi) keeps its
 * counters in private memory.
 */
#ifndef DIALFLOW_METRICS_H
#define DIALFLOW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dialflow/http.h"

/* Latency histogram upper bounds, in milliseconds; +Inf is implicit. */
#define METRICS_NBUCKETS 9
extern const unsigned metrics_bucket_ms[METRICS_NBUCKETS];

/* The route of requests that matched no route (404, 405). */
#define METRICS_UNMATCHED "unmatched"

typedef struct metrics metrics_t;

/*
 * The segment name for this process into buf ("/dialflow-metrics-…"), or
 * NULL when the counters should stay private (no setting, fd 0 is not a
 * unix socket). A setting without a leading '/' gets one.
 */
const char *metrics_shm_name(char *buf, size_t bufsz);

/*
 * Map the shared segment `name`, creating it on first use; NULL name, or a
 * segment that cannot be opened or has another layout, gives private
 * counters (logged). Never returns NULL. Caller frees with metrics_close().
 */
metrics_t *metrics_open(const char *name);
void metrics_close(metrics_t *m);
/* Whether m is the shared segment (not a private fallback). */
int metrics_is_shared(const metrics_t *m);
/* Remove the segment `name` (tests, uninstall); mappings stay valid. */
int metrics_unlink(const char *name);

/*
 * Count one finished request: route pattern (NULL = METRICS_UNMATCHED),
 * method, final status and duration. Lock-free; a full route table counts
 * into one overflow route named "other".
 */
void metrics_observe_request(metrics_t *m, http_method_t method, const char *pattern, int status,
			     double ms);
/*
 * Report this process's db_connect_count(); the increase since the last
 * call is added to the shared connect and reconnect counters.
 */
void metrics_observe_db_connects(metrics_t *m, unsigned connects);

/* ---- the exposition writer (pure, unit-tested) ---- */

/* A growing text buffer (malloc'd; out-of-memory aborts). */
typedef struct metrics_text {
	char *p;
	size_t len, cap;
} metrics_text_t;

void metrics_text_free(metrics_text_t *t);

/* A label: name (a valid label name, not escaped) and value (escaped on output). */
typedef struct metrics_label {
	const char *name;
	const char *value;
} metrics_label_t;

/* "# HELP name help\n# TYPE name type\n", help escaped (\\ and \n). */
void metrics_write_header(metrics_text_t *t, const char *name, const char *type, const char *help);
/* "name{l1="v1",…} value\n"; values escaped (\\, \" and \n); no braces without labels. */
void metrics_write_sample(metrics_text_t *t, const char *name, const metrics_label_t *labels,
			  size_t nlabels, double value);
/*
 * One histogram series: name_bucket{…,le="0.005"} … le="+Inf", name_sum,
 * name_count. counts holds METRICS_NBUCKETS + 1 non-cumulative counts (the
 * last one above the highest bound); sum is in seconds.
 */
void metrics_write_histogram(metrics_text_t *t, const char *name, const metrics_label_t *labels,
			     size_t nlabels, const uint64_t *counts, double sum);

/* Append the shared counters (requests, latency, reconnects) to t. */
void metrics_write_counters(metrics_t *m, metrics_text_t *t);

/* GET /metrics (src/api/metrics.c); public, GUARD_NO_TX: answers even without a database. */
int metrics_handle(http_request_t *req);
/* Register the scrape's statements. */
void metrics_register(void);

#endif

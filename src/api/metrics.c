/*
 * metrics.c - GET /metrics: shared request counters and database gauges in
 * the Prometheus text format (see metrics.h for the shared-memory contract).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dialflow/api.h"
#include "dialflow/log.h"
#include "dialflow/metrics.h"

const unsigned metrics_bucket_ms[METRICS_NBUCKETS] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500};

/* Exact status codes counted one by one; any other counts as its class. */
static const int tracked_status[] = {200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405,
				     409, 410, 411, 413, 415, 422, 429, 500, 502, 503, 504};
#define NTRACKED   (sizeof(tracked_status) / sizeof(tracked_status[0]))
#define NSTATUS	   (NTRACKED + 5) /* then 1xx..5xx for the rest */
#define MAX_ROUTES 256
#define PATTERN_SZ 128
#define SHM_MAGIC  0x64666d31u /* "dfm1": bump with any layout change */

enum { SLOT_FREE = 0, SLOT_CLAIMING = 1, SLOT_READY = 2 };

/* One (method, route pattern): written only with __atomic operations. */
typedef struct route_slot {
	uint32_t state;
	uint32_t method;
	char pattern[PATTERN_SZ]; /* written once, before state becomes READY */
	uint64_t status[NSTATUS];
	uint64_t buckets[METRICS_NBUCKETS + 1]; /* non-cumulative; the last is > 2500 ms */
	uint64_t sum_us;
} route_slot_t;

typedef struct shm_layout {
	uint32_t magic; /* 0 in a fresh segment, SHM_MAGIC once claimed */
	uint32_t size;
	uint64_t process_starts;
	uint64_t db_connects;
	uint64_t db_reconnects;
	route_slot_t overflow; /* "other": the table was full */
	route_slot_t slots[MAX_ROUTES];
} shm_layout_t;

struct metrics {
	shm_layout_t *shm;
	int shared;
	unsigned db_seen; /* this process's connect count at the last report */
};

/* ---- the segment ---- */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h;
}

const char *metrics_shm_name(char *buf, size_t bufsz)
{
	const char *set = getenv("DIALFLOW_METRICS_SHM");
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	size_t plen;

	if (set != NULL && set[0] != '\0') {
		int n = snprintf(buf, bufsz, "%s%s", set[0] == '/' ? "" : "/", set);

		if (n <= 0 || (size_t)n >= bufsz || strchr(buf + 1, '/') != NULL) {
			log_warn("metrics", "DIALFLOW_METRICS_SHM is not a valid name, "
					    "keeping counters private");
			return NULL;
		}
		return buf;
	}
	memset(&sa, 0, sizeof(sa));
	if (getsockname(0, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
		return NULL;
	plen = strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
	snprintf(buf, bufsz, "/dialflow-metrics-%016llx",
		 (unsigned long long)fnv1a(sa.sun_path, plen, 14695981039346656037ull));
	return buf;
}

static shm_layout_t *map_shared(const char *name)
{
	struct stat st;
	void *p;
	int fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	uint32_t want = 0;

	if (fd < 0) {
		log_warn("metrics", "shm_open %s: %s; keeping counters private", name,
			 strerror(errno));
		return NULL;
	}
	/* Zero-filled is a valid empty state, so every process may size it:
	 * the first ftruncate creates the pages, the others change nothing. */
	if (fstat(fd, &st) < 0 ||
	    (st.st_size != (off_t)sizeof(shm_layout_t) &&
	     (st.st_size != 0 || ftruncate(fd, (off_t)sizeof(shm_layout_t)) < 0))) {
		log_warn("metrics", "shared segment %s has another size; keeping counters private",
			 name);
		close(fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(shm_layout_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		log_warn("metrics", "mmap %s: %s; keeping counters private", name, strerror(errno));
		return NULL;
	}
	if (!__atomic_compare_exchange_n(&((shm_layout_t *)p)->magic, &want, SHM_MAGIC, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
	    want != SHM_MAGIC) {
		log_warn("metrics",
			 "shared segment %s has another layout; keeping counters private", name);
		munmap(p, sizeof(shm_layout_t));
		return NULL;
	}
	return p;
}

metrics_t *metrics_open(const char *name)
{
	metrics_t *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		log_error("metrics", "out of memory");
		abort();
	}
	if (name != NULL)
		m->shm = map_shared(name);
	m->shared = m->shm != NULL;
	if (m->shm == NULL) {
		m->shm = calloc(1, sizeof(shm_layout_t));
		if (m->shm == NULL) {
			log_error("metrics", "out of memory");
			abort();
		}
		m->shm->magic = SHM_MAGIC;
	}
	m->shm->size = sizeof(shm_layout_t);
	__atomic_fetch_add(&m->shm->process_starts, 1, __ATOMIC_RELAXED);
	return m;
}

void metrics_close(metrics_t *m)
{
	if (m == NULL)
		return;
	if (m->shared)
		munmap(m->shm, sizeof(shm_layout_t));
	else
		free(m->shm);
	free(m);
}

int metrics_is_shared(const metrics_t *m)
{
	return m->shared;
}

int metrics_unlink(const char *name)
{
	return shm_unlink(name) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- recording ---- */

/*
 * The slot of (method, pattern): found, or claimed (FREE -> CLAIMING ->
 * pattern written -> READY). A slot left CLAIMING by a killed process is
 * skipped after a short wait; the same key may then land in two slots, and
 * the writer merges them.
 */
static route_slot_t *find_slot(shm_layout_t *s, uint32_t method, const char *pattern)
{
	size_t plen = strlen(pattern);
	uint64_t h = fnv1a(pattern, plen, fnv1a(&method, sizeof(method), 14695981039346656037ull));

	if (plen >= PATTERN_SZ)
		return &s->overflow;
	for (size_t i = 0; i < MAX_ROUTES; i++) {
		route_slot_t *r = &s->slots[(h + i) % MAX_ROUTES];
		uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);

		for (int spin = 0; st == SLOT_CLAIMING && spin < 1000; spin++)
			st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
		if (st == SLOT_FREE) {
			uint32_t free_state = SLOT_FREE;

			if (__atomic_compare_exchange_n(&r->state, &free_state, SLOT_CLAIMING,
							false, __ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				r->method = method;
				memcpy(r->pattern, pattern, plen + 1);
				__atomic_store_n(&r->state, SLOT_READY, __ATOMIC_RELEASE);
				return r;
			}
			i--; /* another process claimed it: look at it again */
			continue;
		}
		if (st == SLOT_READY && r->method == method && strcmp(r->pattern, pattern) == 0)
			return r;
	}
	return &s->overflow;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < NTRACKED; i++)
		if (tracked_status[i] == status)
			return i;
	if (status < 100 || status > 599)
		return NTRACKED + 4; /* nonsense counts as a server error */
	return NTRACKED + (size_t)(status / 100 - 1);
}

static uint32_t method_bit(http_method_t m)
{
	return (uint32_t)m;
}

void metrics_observe_request(metrics_t *m, http_method_t method, const char *pattern, int status,
			     double ms)
{
	route_slot_t *r;
	size_t b = 0;
	uint64_t us;

	if (m == NULL)
		return;
	r = find_slot(m->shm, method_bit(method), pattern ? pattern : METRICS_UNMATCHED);
	if (!(ms >= 0))
		ms = 0;
	while (b < METRICS_NBUCKETS && ms > (double)metrics_bucket_ms[b])
		b++;
	us = ms > 1e12 ? (uint64_t)1e15 : (uint64_t)(ms * 1000.0 + 0.5);
	__atomic_fetch_add(&r->status[status_index(status)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->buckets[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->sum_us, us, __ATOMIC_RELAXED);
}

void metrics_observe_db_connects(metrics_t *m, unsigned connects)
{
	unsigned delta, again;

	if (m == NULL || connects <= m->db_seen)
		return;
	delta = connects - m->db_seen;
	again = m->db_seen == 0 ? delta - 1 : delta; /* the first connect is not a reconnect */
	m->db_seen = connects;
	__atomic_fetch_add(&m->shm->db_connects, (uint64_t)delta, __ATOMIC_RELAXED);
	if (again > 0)
		__atomic_fetch_add(&m->shm->db_reconnects, (uint64_t)again, __ATOMIC_RELAXED);
}

/* ---- the exposition writer ---- */

static void text_reserve(metrics_text_t *t, size_t more)
{
	size_t cap = t->cap ? t->cap : 4096;

	if (t->len + more + 1 <= t->cap)
		return;
	while (cap < t->len + more + 1)
		cap *= 2;
	t->p = realloc(t->p, cap);
	if (t->p == NULL) {
		log_error("metrics", "out of memory");
		abort();
	}
	t->cap = cap;
}

static void text_put(metrics_text_t *t, const char *s, size_t n)
{
	text_reserve(t, n);
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void text_puts(metrics_text_t *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* s with \\ and \n escaped, and \" too when quoted (label values). */
static void text_escaped(metrics_text_t *t, const char *s, int quoted)
{
	for (; *s; s++) {
		if (*s == '\\')
			text_puts(t, "\\\\");
		else if (*s == '\n')
			text_puts(t, "\\n");
		else if (*s == '"' && quoted)
			text_puts(t, "\\\"");
		else
			text_put(t, s, 1);
	}
}

static void text_number(metrics_text_t *t, double v)
{
	char num[64];

	if (isnan(v))
		text_puts(t, "NaN");
	else if (isinf(v))
		text_puts(t, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9e15 && v < 9e15 && v == (double)(int64_t)v)
		snprintf(num, sizeof(num), "%lld", (long long)v);
	else if (snprintf(num, sizeof(num), "%.15g", v) > 0 && strtod(num, NULL) != v)
		snprintf(num, sizeof(num), "%.17g", v); /* the shortest that reads back exactly */
	if (isfinite(v))
		text_puts(t, num);
}

void metrics_text_free(metrics_text_t *t)
{
	free(t->p);
	memset(t, 0, sizeof(*t));
}

void metrics_write_header(metrics_text_t *t, const char *name, const char *type, const char *help)
{
	text_puts(t, "# HELP ");
	text_puts(t, name);
	text_puts(t, " ");
	text_escaped(t, help, 0);
	text_puts(t, "\n# TYPE ");
	text_puts(t, name);
	text_puts(t, " ");
	text_puts(t, type);
	text_puts(t, "\n");
}

static void write_labels(metrics_text_t *t, const metrics_label_t *labels, size_t n, const char *le)
{
	if (n == 0 && le == NULL)
		return;
	text_puts(t, "{");
	for (size_t i = 0; i < n; i++) {
		text_puts(t, i ? "," : "");
		text_puts(t, labels[i].name);
		text_puts(t, "=\"");
		text_escaped(t, labels[i].value ? labels[i].value : "", 1);
		text_puts(t, "\"");
	}
	if (le != NULL) {
		text_puts(t, n ? ",le=\"" : "le=\"");
		text_puts(t, le);
		text_puts(t, "\"");
	}
	text_puts(t, "}");
}

void metrics_write_sample(metrics_text_t *t, const char *name, const metrics_label_t *labels,
			  size_t nlabels, double value)
{
	text_puts(t, name);
	write_labels(t, labels, nlabels, NULL);
	text_puts(t, " ");
	text_number(t, value);
	text_puts(t, "\n");
}

void metrics_write_histogram(metrics_text_t *t, const char *name, const metrics_label_t *labels,
			     size_t nlabels, const uint64_t *counts, double sum)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t b = 0; b <= METRICS_NBUCKETS; b++) {
		cum += counts[b];
		if (b < METRICS_NBUCKETS)
			snprintf(le, sizeof(le), "%g", metrics_bucket_ms[b] / 1000.0);
		else
			snprintf(le, sizeof(le), "+Inf");
		text_puts(t, name);
		text_puts(t, "_bucket");
		write_labels(t, labels, nlabels, le);
		text_puts(t, " ");
		text_number(t, (double)cum);
		text_puts(t, "\n");
	}
	text_puts(t, name);
	text_puts(t, "_sum");
	write_labels(t, labels, nlabels, NULL);
	text_puts(t, " ");
	text_number(t, sum);
	text_puts(t, "\n");
	text_puts(t, name);
	text_puts(t, "_count");
	write_labels(t, labels, nlabels, NULL);
	text_puts(t, " ");
	text_number(t, (double)cum);
	text_puts(t, "\n");
}

static const char *method_name(uint32_t m)
{
	switch (m) {
	case HTTP_GET:
		return "GET";
	case HTTP_POST:
		return "POST";
	case HTTP_PUT:
		return "PUT";
	case HTTP_PATCH:
		return "PATCH";
	case HTTP_DELETE:
		return "DELETE";
	case HTTP_HEAD:
		return "HEAD";
	case HTTP_OPTIONS:
		return "OPTIONS";
	default:
		return "OTHER";
	}
}

static void status_label(size_t i, char *buf, size_t n)
{
	if (i < NTRACKED)
		snprintf(buf, n, "%d", tracked_status[i]);
	else
		snprintf(buf, n, "%zuxx", i - NTRACKED + 1);
}

/* A consistent-enough copy of the ready slots, duplicates merged. */
static size_t snapshot(const shm_layout_t *s, route_slot_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i <= MAX_ROUTES; i++) {
		const route_slot_t *r = i < MAX_ROUTES ? &s->slots[i] : &s->overflow;
		route_slot_t *dst = NULL;
		uint32_t method;
		const char *pattern;

		if (i < MAX_ROUTES && __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != SLOT_READY)
			continue;
		if (i == MAX_ROUTES && __atomic_load_n(&r->sum_us, __ATOMIC_RELAXED) == 0 &&
		    __atomic_load_n(&r->buckets[0], __ATOMIC_RELAXED) == 0 &&
		    __atomic_load_n(&r->status[0], __ATOMIC_RELAXED) == 0)
			continue; /* the overflow route was never used: no series */
		method = i < MAX_ROUTES ? r->method : 0;
		pattern = i < MAX_ROUTES ? r->pattern : "other";
		for (size_t j = 0; j < n && dst == NULL; j++)
			if (out[j].method == method && strcmp(out[j].pattern, pattern) == 0)
				dst = &out[j];
		if (dst == NULL) {
			dst = &out[n++];
			memset(dst, 0, sizeof(*dst));
			dst->method = method;
			snprintf(dst->pattern, sizeof(dst->pattern), "%s", pattern);
		}
		for (size_t k = 0; k < NSTATUS; k++)
			dst->status[k] += __atomic_load_n(&r->status[k], __ATOMIC_RELAXED);
		for (size_t k = 0; k <= METRICS_NBUCKETS; k++)
			dst->buckets[k] += __atomic_load_n(&r->buckets[k], __ATOMIC_RELAXED);
		dst->sum_us += __atomic_load_n(&r->sum_us, __ATOMIC_RELAXED);
	}
	return n;
}

void metrics_write_counters(metrics_t *m, metrics_text_t *t)
{
	route_slot_t *snap = calloc(MAX_ROUTES + 1, sizeof(*snap));
	size_t n;

	if (snap == NULL) {
		log_error("metrics", "out of memory");
		abort();
	}
	n = snapshot(m->shm, snap);
	metrics_write_header(t, "dialflow_http_requests_total", "counter",
			     "API requests answered, by method, route pattern and status code "
			     "(codes not listed one by one are counted as their class, e.g. 4xx).");
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < NSTATUS; k++) {
			char code[8];
			metrics_label_t l[3] = {{"method", method_name(snap[i].method)},
						{"route", snap[i].pattern},
						{"code", code}};

			if (snap[i].status[k] == 0)
				continue;
			status_label(k, code, sizeof(code));
			metrics_write_sample(t, "dialflow_http_requests_total", l, 3,
					     (double)snap[i].status[k]);
		}
	}
	metrics_write_header(
	    t, "dialflow_http_request_duration_seconds", "histogram",
	    "Time from dispatch to the response being ready, by method and route.");
	for (size_t i = 0; i < n; i++) {
		metrics_label_t l[2] = {{"method", method_name(snap[i].method)},
					{"route", snap[i].pattern}};

		metrics_write_histogram(t, "dialflow_http_request_duration_seconds", l, 2,
					snap[i].buckets, (double)snap[i].sum_us / 1e6);
	}
	metrics_write_header(t, "dialflow_db_connects_total", "counter",
			     "Database connections opened by the API processes.");
	metrics_write_sample(t, "dialflow_db_connects_total", NULL, 0,
			     (double)__atomic_load_n(&m->shm->db_connects, __ATOMIC_RELAXED));
	metrics_write_header(t, "dialflow_db_reconnects_total", "counter",
			     "Database connections reopened by an API process after losing one "
			     "(a database restart, a killed backend).");
	metrics_write_sample(t, "dialflow_db_reconnects_total", NULL, 0,
			     (double)__atomic_load_n(&m->shm->db_reconnects, __ATOMIC_RELAXED));
	metrics_write_header(t, "dialflow_api_process_starts_total", "counter",
			     "API processes started on this segment (restarts included).");
	metrics_write_sample(t, "dialflow_api_process_starts_total", NULL, 0,
			     (double)__atomic_load_n(&m->shm->process_starts, __ATOMIC_RELAXED));
	free(snap);
}

/* ---- the scrape ---- */

static const db_stmt_t stmts[] = {
    {"metrics_snapshot", "SELECT metric, l1, l2, value FROM metrics_snapshot($1::integer)"},
};

void metrics_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* The gauges of metrics_snapshot(), in its row order: one family per metric. */
static const struct gauge {
	const char *metric; /* the function's `metric` column */
	const char *name;
	const char *l1, *l2; /* label names, NULL = unused */
	const char *help;
} gauges[] = {
    {"runs", "dialflow_outbound_runs", "status", NULL, "Outbound call runs by status."},
    {"calls_in_flight", "dialflow_outbound_calls_in_flight", "status", NULL,
     "Outbound call jobs being dialled or on a call (dialing, calling)."},
    {"queue_jobs", "dialflow_queue_jobs", "kind", "status",
     "Background jobs waiting or running, by kind and status."},
    {"queue_oldest_age", "dialflow_queue_oldest_age_seconds", "kind", "status",
     "Seconds since the oldest queued (due) or running background job became due."},
    {"outbox_messages", "dialflow_wa_outbox_messages", "status", NULL,
     "WhatsApp outbox messages not yet sent (queued, sending)."},
    {"outbox_oldest_age", "dialflow_wa_outbox_oldest_age_seconds", "status", NULL,
     "Seconds since the oldest unsent WhatsApp outbox message was written."},
    {"workers_alive", "dialflow_workers_alive", NULL, NULL,
     "Workers that heartbeated within DIALFLOW_WORKER_STALE_S."},
    {"worker_heartbeat_age", "dialflow_worker_heartbeat_age_seconds", "worker", NULL,
     "Seconds since each running worker's last heartbeat (workers seen in the last hour)."},
};

static void write_gauges(metrics_text_t *t, const PGresult *r)
{
	int rows = r ? PQntuples(r) : 0;

	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		metrics_write_header(t, gauges[g].name, "gauge", gauges[g].help);
		for (int i = 0; i < rows; i++) {
			metrics_label_t l[2];
			size_t n = 0;

			if (strcmp(PQgetvalue(r, i, 0), gauges[g].metric) != 0)
				continue;
			if (gauges[g].l1 != NULL)
				l[n++] = (metrics_label_t){gauges[g].l1, PQgetvalue(r, i, 1)};
			if (gauges[g].l2 != NULL)
				l[n++] = (metrics_label_t){gauges[g].l2, PQgetvalue(r, i, 2)};
			metrics_write_sample(t, gauges[g].name, l, n,
					     strtod(PQgetvalue(r, i, 3), NULL));
		}
	}
}

int metrics_handle(http_request_t *req)
{
	api_ctx_t *ctx = api_ctx(req);
	metrics_text_t t = {0};
	PGresult *r = NULL;
	char *body;
	int err = 0;
	const char *stale = db_i64s(req->arena, req->cfg->worker_stale_s);

	/* Like /api/health: a connection that died since the last request is
	 * only noticed by using it, so try once more on a fresh one. */
	if (db_ensure(req->db) == 0)
		r = DB_EXEC(req->db, req->arena, &err, "metrics_snapshot", stale);
	if (r == NULL && !db_is_up(req->db) && db_ensure(req->db) == 0)
		r = DB_EXEC(req->db, req->arena, &err, "metrics_snapshot", stale);
	metrics_observe_db_connects(ctx->metrics, db_connect_count(req->db));

	metrics_write_header(&t, "dialflow_db_up", "gauge",
			     "Whether this scrape could read the database (1) or not (0); the "
			     "database gauges are absent when 0.");
	metrics_write_sample(&t, "dialflow_db_up", NULL, 0, r != NULL ? 1 : 0);
	if (r != NULL)
		write_gauges(&t, r);
	metrics_write_counters(ctx->metrics, &t);
	body = arena_strndup(req->arena, t.p, t.len);
	http_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, t.len);
	metrics_text_free(&t);
	return 0;
}

/*
 * test_metrics.c - GET /metrics through the API pipeline (api_dispatch) on a
 * real database as dialflow_app:
 *
 *   - no token needed; text/plain version 0.0.4 with HELP and TYPE lines;
 *   - requests are counted by method, route pattern and status (unknown
 *     paths as "unmatched"), with a latency histogram per route;
 *   - two API contexts (two processes) mapping one shared segment see the
 *     same counters, and both processes' database connects;
 *   - the database gauges reflect rows inserted through the owner
 *     connection, across tenants (metrics_snapshot() is SECURITY DEFINER):
 *     runs by status, calls in flight, queue depth and age by kind, outbox
 *     depth and age, a worker's heartbeat age.
 *
 * The segment name is unique to this run (DIALFLOW_METRICS_SHM), so the
 * test shares no state with a dev stack or another test binary.
 */
#include "apitest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/http.h"
#include "dialflow/metrics.h"

static struct {
	api_ctx_t a, b; /* two "processes" of one deployment */
	char secret[64];
	char shm[112];
	PGconn *owner;
} fx;

typedef struct scrape {
	int status;
	char *ctype;
	char *body;
} scrape_t;

/* GET uri through ctx, keeping the raw body (at_call decodes JSON only). */
static scrape_t get_raw(api_ctx_t *ctx, const char *uri)
{
	arena_t *a = arena_new(16384);
	const char *envp[1] = {NULL};
	http_request_t req;
	scrape_t out;

	memset(&req, 0, sizeof(req));
	req.arena = a;
	req.method = HTTP_GET;
	req.method_name = "GET";
	req.path = uri;
	req.query = "";
	req.body = "";
	req.remote_addr = "127.0.0.1";
	req.request_id = "itest-metrics";
	req.envp = envp;
	api_dispatch(ctx, &req);
	out.status = req.status;
	out.ctype = strdup(req.resp_ctype ? req.resp_ctype : "");
	out.body = strndup(req.resp_body ? req.resp_body : "", req.resp_len);
	assert_non_null(out.ctype);
	assert_non_null(out.body);
	arena_free(a);
	return out;
}

static void scrape_free(scrape_t *s)
{
	free(s->ctype);
	free(s->body);
}

/* The value of the series `series` ("name{labels}" exactly), or -1 when absent. */
static double value_of(const char *body, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = body; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

#define ASSERT_VALUE(body, series, want)                                                           \
	do {                                                                                       \
		double v_ = value_of((body), (series));                                            \
		if (v_ != (double)(want))                                                          \
			fail_msg("%s is %g, want %g", (series), v_, (double)(want));               \
	} while (0)

static scrape_t scrape(api_ctx_t *ctx)
{
	scrape_t s = get_raw(ctx, "/metrics");

	assert_int_equal(s.status, 200);
	assert_string_equal(s.ctype, "text/plain; version=0.0.4; charset=utf-8");
	if (getenv("ITEST_METRICS_DUMP") != NULL) /* to read a real scrape */
		fputs(s.body, stderr);
	return s;
}

static void test_requests_are_counted_across_processes(void **state)
{
	scrape_t s;
	at_resp_t r;

	(void)state;
	r = at_json(&fx.a, "GET", "/api/health", NULL, NULL);
	AT_STATUS(r, 200);
	at_free(&r);
	r = at_json(&fx.b, "GET", "/api/health", NULL, NULL);
	AT_STATUS(r, 200);
	at_free(&r);
	r = at_json(&fx.b, "GET", "/api/no/such/thing", NULL, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	r = at_json(&fx.a, "GET", "/api/me", NULL, NULL);
	AT_ERROR(r, 401, "unauthenticated");
	at_free(&r);
	r = at_json(&fx.a, "DELETE", "/api/health", NULL, NULL);
	AT_STATUS(r, 405);
	at_free(&r);

	/* a scrape of either process sees every process's requests */
	s = scrape(&fx.b);
	assert_non_null(strstr(s.body, "# HELP dialflow_http_requests_total "));
	assert_non_null(strstr(s.body, "# TYPE dialflow_http_requests_total counter\n"));
	assert_non_null(
	    strstr(s.body, "# TYPE dialflow_http_request_duration_seconds histogram\n"));
	ASSERT_VALUE(
	    s.body,
	    "dialflow_http_requests_total{method=\"GET\",route=\"/api/health\",code=\"200\"}", 2);
	ASSERT_VALUE(
	    s.body, "dialflow_http_requests_total{method=\"GET\",route=\"unmatched\",code=\"404\"}",
	    1);
	ASSERT_VALUE(s.body,
		     "dialflow_http_requests_total{method=\"DELETE\",route=\"unmatched\","
		     "code=\"405\"}",
		     1);
	ASSERT_VALUE(s.body,
		     "dialflow_http_requests_total{method=\"GET\",route=\"/api/me\",code=\"401\"}",
		     1);
	ASSERT_VALUE(s.body,
		     "dialflow_http_request_duration_seconds_count{method=\"GET\","
		     "route=\"/api/health\"}",
		     2);
	ASSERT_VALUE(s.body,
		     "dialflow_http_request_duration_seconds_bucket{method=\"GET\","
		     "route=\"/api/health\",le=\"+Inf\"}",
		     2);
	assert_true(value_of(s.body, "dialflow_http_request_duration_seconds_sum{method=\"GET\","
				     "route=\"/api/health\"}") >= 0);
	ASSERT_VALUE(s.body, "dialflow_api_process_starts_total", 2);
	/* both processes connected once, and neither reconnected */
	ASSERT_VALUE(s.body, "dialflow_db_connects_total", 2);
	ASSERT_VALUE(s.body, "dialflow_db_reconnects_total", 0);
	ASSERT_VALUE(s.body, "dialflow_db_up", 1);
	scrape_free(&s);

	/* the scrape itself is a request of the other process's next scrape */
	s = scrape(&fx.a);
	ASSERT_VALUE(s.body,
		     "dialflow_http_requests_total{method=\"GET\",route=\"/metrics\",code=\"200\"}",
		     1);
	scrape_free(&s);
}

/* Typed routes are counted under their pattern, not the path sent. */
static void test_route_pattern_label(void **state)
{
	scrape_t s;
	at_resp_t r;

	(void)state;
	r = at_json(&fx.a, "GET", "/api/outbound_calls/runs/12345", NULL, NULL);
	AT_ERROR(r, 401, "unauthenticated");
	at_free(&r);
	s = scrape(&fx.a);
	ASSERT_VALUE(s.body,
		     "dialflow_http_requests_total{method=\"GET\","
		     "route=\"/api/outbound_calls/runs/{id:int}\",code=\"401\"}",
		     1);
	assert_null(strstr(s.body, "/runs/12345"));
	scrape_free(&s);
}

static void test_gauges_reflect_rows(void **state)
{
	char u[64], kind[96], worker[112], bid[24], series[320];
	int64_t biz, lead, run, contact, msg;
	double cancelled_before, inflight_before;
	scrape_t s;

	(void)state;
	itest_unique(u, sizeof(u));
	snprintf(kind, sizeof(kind), "metrics_%s", u);
	snprintf(worker, sizeof(worker), "itest-metrics-%s", u);

	s = scrape(&fx.a);
	cancelled_before = value_of(s.body, "dialflow_outbound_runs{status=\"cancelled\"}");
	inflight_before = value_of(s.body, "dialflow_outbound_calls_in_flight{status=\"dialing\"}");
	assert_true(cancelled_before >= 0);
	assert_true(inflight_before >= 0);
	scrape_free(&s);

	biz = itest_create_business(fx.owner, "metrics", true);
	itest_i64s(bid, sizeof(bid), biz);
	run = ITEST_I64(fx.owner,
			"INSERT INTO outbound_call_runs (business_id, status) "
			"VALUES ($1::bigint, 'cancelled') RETURNING id",
			bid);
	(void)run;
	lead = ITEST_I64(fx.owner,
			 "INSERT INTO leads (business_id, phone_e164) "
			 "VALUES ($1::bigint, '+15005550100') RETURNING id",
			 bid);
	{
		char lid[24], rid[24];

		itest_i64s(lid, sizeof(lid), lead);
		run = ITEST_I64(fx.owner,
				"INSERT INTO outbound_call_runs (business_id, status) "
				"VALUES ($1::bigint, 'running') RETURNING id",
				bid);
		itest_i64s(rid, sizeof(rid), run);
		ITEST_X(
		    fx.owner,
		    "INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone, status) "
		    "VALUES ($1::bigint, $2::bigint, $3::bigint, '+15005550100', 'dialing')",
		    rid, bid, lid);
	}
	/* two jobs due 30 s ago and 10 s ago, one not due yet, one running */
	ITEST_X(fx.owner,
		"INSERT INTO background_jobs (kind, business_id, status, run_at) VALUES "
		"($1, $2::bigint, 'queued', now() - interval '30 seconds'), "
		"($1, $2::bigint, 'queued', now() - interval '10 seconds'), "
		"($1, $2::bigint, 'queued', now() + interval '1 hour'), "
		"($1, $2::bigint, 'running', now() - interval '5 seconds')",
		kind, bid);
	ITEST_X(fx.owner,
		"INSERT INTO workers (name, hostname, pid, last_heartbeat_at) "
		"VALUES ($1, 'itest', 1, now() - interval '7 seconds')",
		worker);
	/* a message written an hour ago, not due for another hour (no sender takes it) */
	contact = ITEST_I64(fx.owner,
			    "INSERT INTO contacts (business_id, wa_id) VALUES ($1::bigint, "
			    "'4915550100') RETURNING id",
			    bid);
	{
		char cid[24], mid[24];

		itest_i64s(cid, sizeof(cid), contact);
		msg = ITEST_I64(fx.owner,
				"INSERT INTO messages (business_id, contact_id, direction, type, "
				"status, sender) VALUES ($1::bigint, $2::bigint, 'out', 'text', "
				"'queued', 'bot') RETURNING id",
				bid, cid);
		itest_i64s(mid, sizeof(mid), msg);
		ITEST_X(
		    fx.owner,
		    "INSERT INTO wa_outbox (business_id, contact_id, message_id, payload, "
		    "next_attempt_at, created_at) VALUES ($1::bigint, $2::bigint, $3::bigint, "
		    "'{\"type\":\"text\"}', now() + interval '1 hour', now() - interval '1 hour')",
		    bid, cid, mid);
	}

	s = scrape(&fx.b);
	ASSERT_VALUE(s.body, "dialflow_db_up", 1);
	assert_non_null(strstr(s.body, "# TYPE dialflow_outbound_runs gauge\n"));
	assert_true(value_of(s.body, "dialflow_outbound_runs{status=\"cancelled\"}") >=
		    cancelled_before + 1);
	assert_true(value_of(s.body, "dialflow_outbound_runs{status=\"running\"}") >= 1);
	assert_true(value_of(s.body, "dialflow_outbound_calls_in_flight{status=\"dialing\"}") >= 1);
	assert_true(value_of(s.body, "dialflow_outbound_calls_in_flight{status=\"calling\"}") >= 0);
	snprintf(series, sizeof(series), "dialflow_queue_jobs{kind=\"%s\",status=\"queued\"}",
		 kind);
	ASSERT_VALUE(s.body, series, 3);
	snprintf(series, sizeof(series), "dialflow_queue_jobs{kind=\"%s\",status=\"running\"}",
		 kind);
	ASSERT_VALUE(s.body, series, 1);
	snprintf(series, sizeof(series),
		 "dialflow_queue_oldest_age_seconds{kind=\"%s\",status=\"queued\"}", kind);
	assert_true(value_of(s.body, series) >= 29 && value_of(s.body, series) < 300);
	assert_true(value_of(s.body, "dialflow_wa_outbox_messages{status=\"queued\"}") >= 1);
	assert_true(value_of(s.body, "dialflow_wa_outbox_oldest_age_seconds{status=\"queued\"}") >=
		    3599);
	assert_true(value_of(s.body, "dialflow_wa_outbox_messages{status=\"sending\"}") >= 0);
	snprintf(series, sizeof(series), "dialflow_worker_heartbeat_age_seconds{worker=\"%s\"}",
		 worker);
	assert_true(value_of(s.body, series) >= 6.5 && value_of(s.body, series) < 300);
	assert_true(value_of(s.body, "dialflow_workers_alive") >= 1);
	scrape_free(&s);

	/* leave nothing a worker test could pick up or count */
	ITEST_X(fx.owner, "UPDATE workers SET stopped_at = now() WHERE name = $1", worker);
	ITEST_X(fx.owner, "DELETE FROM background_jobs WHERE kind = $1", kind);
	ITEST_X(fx.owner,
		"UPDATE outbound_call_runs SET status = 'cancelled' WHERE id = $1::bigint",
		itest_i64s(bid, sizeof(bid), run));
	ITEST_X(fx.owner,
		"UPDATE outbound_call_jobs SET status = 'cancelled' WHERE run_id = $1::bigint",
		itest_i64s(bid, sizeof(bid), run));
	ITEST_X(fx.owner, "UPDATE wa_outbox SET status = 'failed' WHERE contact_id = $1::bigint",
		itest_i64s(bid, sizeof(bid), contact));
}

static int group_setup(void **state)
{
	char u[64];

	(void)state;
	itest_unique(u, sizeof(u));
	snprintf(fx.shm, sizeof(fx.shm), "/dialflow-metrics-itest-%s", u);
	setenv("DIALFLOW_METRICS_SHM", fx.shm, 1);
	at_ctx_init(&fx.a, fx.secret);
	at_ctx_init(&fx.b, fx.secret);
	assert_true(metrics_is_shared(fx.a.metrics));
	assert_true(metrics_is_shared(fx.b.metrics));
	/* each process connects at start, as dialflow-api does */
	assert_int_equal(db_ensure(fx.a.db), 0);
	assert_int_equal(db_ensure(fx.b.db), 0);
	fx.owner = itest_owner_pg();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	PQfinish(fx.owner);
	at_ctx_free(&fx.a);
	at_ctx_free(&fx.b);
	metrics_unlink(fx.shm);
	unsetenv("DIALFLOW_METRICS_SHM");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests_are_counted_across_processes),
	    cmocka_unit_test(test_route_pattern_label),
	    cmocka_unit_test(test_gauges_reflect_rows),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

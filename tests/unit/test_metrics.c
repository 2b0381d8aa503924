/*
 * test_metrics.c - the Prometheus exposition writer (escaping, histogram
 * lines) and the lock-free counters in private and shared memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/testutil.h"
#include "dialflow/metrics.h"

static void test_sample_without_labels(void **state)
{
	metrics_text_t t = {0};

	(void)state;
	metrics_write_sample(&t, "dialflow_db_up", NULL, 0, 1);
	metrics_write_sample(&t, "dialflow_x", NULL, 0, 0.25);
	metrics_write_sample(&t, "dialflow_big", NULL, 0, 12345678901.0);
	assert_string_equal(t.p, "dialflow_db_up 1\ndialflow_x 0.25\ndialflow_big 12345678901\n");
	metrics_text_free(&t);
}

static void test_label_values_are_escaped(void **state)
{
	metrics_text_t t = {0};
	metrics_label_t l[2] = {{"worker", "a\"b\\c\nd"}, {"kind", "plain"}};

	(void)state;
	metrics_write_sample(&t, "dialflow_worker_heartbeat_age_seconds", l, 2, 3);
	assert_string_equal(t.p, "dialflow_worker_heartbeat_age_seconds"
				 "{worker=\"a\\\"b\\\\c\\nd\",kind=\"plain\"} 3\n");
	metrics_text_free(&t);
}

static void test_help_is_escaped_but_quotes_stay(void **state)
{
	metrics_text_t t = {0};

	(void)state;
	metrics_write_header(&t, "dialflow_a_total", "counter", "one \"two\"\nthree \\ four");
	assert_string_equal(t.p, "# HELP dialflow_a_total one \"two\"\\nthree \\\\ four\n"
				 "# TYPE dialflow_a_total counter\n");
	metrics_text_free(&t);
}

static void test_histogram_lines_are_cumulative(void **state)
{
	metrics_text_t t = {0};
	uint64_t counts[METRICS_NBUCKETS + 1] = {2, 1, 0, 0, 0, 0, 0, 0, 0, 3};
	metrics_label_t l[1] = {{"route", "/api/x/{id:int}"}};
	const char *want = "h_bucket{route=\"/api/x/{id:int}\",le=\"0.005\"} 2\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.01\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.025\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.05\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.1\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.25\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"0.5\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"1\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"2.5\"} 3\n"
			   "h_bucket{route=\"/api/x/{id:int}\",le=\"+Inf\"} 6\n"
			   "h_sum{route=\"/api/x/{id:int}\"} 9.5\n"
			   "h_count{route=\"/api/x/{id:int}\"} 6\n";

	(void)state;
	metrics_write_histogram(&t, "h", l, 1, counts, 9.5);
	assert_string_equal(t.p, want);
	metrics_text_free(&t);

	/* without labels, le is the only one */
	metrics_write_histogram(&t, "h", NULL, 0, counts, 0);
	assert_non_null(strstr(t.p, "h_bucket{le=\"+Inf\"} 6\n"));
	assert_non_null(strstr(t.p, "h_sum 0\nh_count 6\n"));
	metrics_text_free(&t);
}

/* The counters rendered for one process, then checked line by line. */
static void test_counters_by_route_status_and_bucket(void **state)
{
	metrics_t *m = metrics_open(NULL);
	metrics_text_t t = {0};

	(void)state;
	assert_false(metrics_is_shared(m));
	metrics_observe_request(m, HTTP_GET, "/api/runs/{id:int}", 200, 3.0);
	metrics_observe_request(m, HTTP_GET, "/api/runs/{id:int}", 200, 7.0);
	metrics_observe_request(m, HTTP_GET, "/api/runs/{id:int}", 418, 3000.0);
	metrics_observe_request(m, HTTP_POST, NULL, 404, 1.0);
	metrics_observe_db_connects(m, 1);
	metrics_observe_db_connects(m, 1);
	metrics_observe_db_connects(m, 3);
	metrics_write_counters(m, &t);
	assert_non_null(strstr(t.p, "# TYPE dialflow_http_requests_total counter\n"));
	assert_non_null(strstr(t.p, "dialflow_http_requests_total{method=\"GET\",route=\"/api/runs/"
				    "{id:int}\",code=\"200\"} 2\n"));
	assert_non_null(strstr(t.p, "dialflow_http_requests_total{method=\"GET\",route=\"/api/runs/"
				    "{id:int}\",code=\"4xx\"} 1\n"));
	assert_non_null(strstr(t.p, "dialflow_http_requests_total{method=\"POST\",route="
				    "\"unmatched\",code=\"404\"} 1\n"));
	assert_non_null(strstr(t.p, "# TYPE dialflow_http_request_duration_seconds histogram\n"));
	assert_non_null(strstr(t.p, "dialflow_http_request_duration_seconds_bucket{method=\"GET\","
				    "route=\"/api/runs/{id:int}\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(t.p, "dialflow_http_request_duration_seconds_bucket{method=\"GET\","
				    "route=\"/api/runs/{id:int}\",le=\"0.01\"} 2\n"));
	assert_non_null(strstr(t.p, "dialflow_http_request_duration_seconds_bucket{method=\"GET\","
				    "route=\"/api/runs/{id:int}\",le=\"2.5\"} 2\n"));
	assert_non_null(strstr(t.p, "dialflow_http_request_duration_seconds_bucket{method=\"GET\","
				    "route=\"/api/runs/{id:int}\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t.p, "dialflow_http_request_duration_seconds_sum{method=\"GET\","
				    "route=\"/api/runs/{id:int}\"} 3.01\n"));
	assert_non_null(strstr(t.p, "dialflow_db_connects_total 3\n"));
	assert_non_null(strstr(t.p, "dialflow_db_reconnects_total 2\n"));
	metrics_text_free(&t);
	metrics_close(m);
}

/* Two mappings of one segment (two processes) count into the same place. */
static void test_shared_segment(void **state)
{
	char name[64];
	metrics_t *a, *b;
	metrics_text_t t = {0};

	(void)state;
	snprintf(name, sizeof(name), "/dialflow-metrics-unit-%d", (int)getpid());
	setenv("DIALFLOW_METRICS_SHM", name + 1, 1);
	assert_string_equal(metrics_shm_name((char[64]){0}, 64), name);
	unsetenv("DIALFLOW_METRICS_SHM");
	a = metrics_open(name);
	b = metrics_open(name);
	assert_true(metrics_is_shared(a));
	assert_true(metrics_is_shared(b));
	metrics_observe_request(a, HTTP_GET, "/metrics", 200, 1.0);
	metrics_observe_request(b, HTTP_GET, "/metrics", 200, 1.0);
	metrics_write_counters(a, &t);
	assert_non_null(strstr(t.p,
			       "dialflow_http_requests_total{method=\"GET\",route=\"/metrics\","
			       "code=\"200\"} 2\n"));
	assert_non_null(strstr(t.p, "dialflow_api_process_starts_total 2\n"));
	metrics_text_free(&t);
	metrics_close(a);
	metrics_close(b);
	assert_int_equal(metrics_unlink(name), 0);
}

/* A full route table counts into "other" rather than failing. */
static void test_route_table_overflow(void **state)
{
	metrics_t *m = metrics_open(NULL);
	metrics_text_t t = {0};
	char p[32];

	(void)state;
	for (int i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "/r/%d", i);
		metrics_observe_request(m, HTTP_GET, p, 200, 1.0);
	}
	metrics_write_counters(m, &t);
	assert_non_null(strstr(t.p, "route=\"other\",code=\"200\"} 44\n"));
	metrics_text_free(&t);
	metrics_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sample_without_labels),
	    cmocka_unit_test(test_label_values_are_escaped),
	    cmocka_unit_test(test_help_is_escaped_but_quotes_stay),
	    cmocka_unit_test(test_histogram_lines_are_cumulative),
	    cmocka_unit_test(test_counters_by_route_status_and_bucket),
	    cmocka_unit_test(test_shared_segment),
	    cmocka_unit_test(test_route_table_overflow),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

/*
 * bench_dispatch.c - the worker's dispatch overhead (issue 3, "Dispatch
 * overhead"), measured against references taken in the same process, on the
 * same PostgreSQL, a moment apart.
 *
 * The real worker loop (worker_run_with) dials through the in-process fake
 * provider of the integration tests, which answers place_call at once and
 * records a CLOCK_MONOTONIC microsecond stamp per call in shared memory.
 * Nothing is mocked on the database side: claims, the per-business advisory
 * lock, the pace bucket, the call_log rows and the NOTIFYs are the
 * production statements.
 *
 *   throughput   calls placed per second by one worker with no limit in the
 *                way: the run's and the business's concurrency CHECKs are
 *                lifted in this scratch database only, the pace is 10^6/s
 *                and calls never end. Timed from the first to the last call
 *                the provider saw.
 *   slot         a run with one slot: the bench ends the live call exactly as
 *                the status webhook does (outbound_call_event in its own
 *                transaction, whose commit sends the slot NOTIFY) and times
 *                from that commit to the provider seeing the next dial. The
 *                fallback poll is the production 1 s, so a lost wake-up shows.
 *   commit_ref   one connection's autocommit one-row UPDATEs per second on
 *                outbound_call_jobs: what one durable write costs here.
 *   wake_ref     commit of pg_notify() on one connection to a LISTENing one
 *                having received it and committed a one-row UPDATE: the
 *                floor of any event-driven dispatcher that writes its claim.
 *
 * It prints "BENCH <key> <value>" lines that bench/dispatch turns into medians
 * over rounds. It is a cmocka program only to reuse the worker fixtures
 * (scratch database, worker children); it asserts that every call was placed
 * exactly once, never a timing.
 *
 * Environment: as the integration tier (DIALFLOW_TEST_DATABASE_URL,
 * DIALFLOW_TEST_SUPERUSER_URL, DIALFLOW_MIGRATIONS_DIR), plus
 * BENCH_DISPATCH_CALLS (default 3000) and BENCH_DISPATCH_SLOTS (default 200).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/log.h"
#include "dialflow/queue.h"
#include "worker_fixture.h"

static int ncalls_target = 3000;
static int nslots_target = 200;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Percentile p (0..100) of n sorted values, nearest rank. */
static int64_t pct(const int64_t *v, int n, int p)
{
	int i = (p * n + 99) / 100 - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void print_dist(const char *key, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_i64);
	printf("BENCH %s_p50_us %lld\n", key, (long long)pct(v, n, 50));
	printf("BENCH %s_p90_us %lld\n", key, (long long)pct(v, n, 90));
	printf("BENCH %s_p99_us %lld\n", key, (long long)pct(v, n, 99));
	printf("BENCH %s_max_us %lld\n", key, (long long)v[n - 1]);
	fflush(stdout);
}

/* Bench settings: the fixture's, with production polling and no pace in the way. */
static void bench_config(config_t *cfg)
{
	wfix_config(cfg);
	cfg->dispatch_poll_ms = 1000;
	cfg->calls_per_second = 1000000;
	cfg->run_heartbeat_ms = 5000;
	cfg->run_stale_s = 30;
	cfg->worker_heartbeat_ms = 5000;
}

/* A pending run of n fresh leads, inserted in one statement. */
static int64_t bulk_run(int64_t business_id, int n, int concurrency)
{
	char bid[24], nn[16], conc[16], rid[24];
	int64_t run_id;

	itest_i64s(bid, sizeof(bid), business_id);
	snprintf(nn, sizeof(nn), "%d", n);
	snprintf(conc, sizeof(conc), "%d", concurrency);
	run_id = ITEST_I64(wfix_owner(),
			   "INSERT INTO outbound_call_runs (business_id, concurrency) "
			   "VALUES ($1::bigint, $2::integer) RETURNING id",
			   bid, conc);
	itest_i64s(rid, sizeof(rid), run_id);
	ITEST_X(wfix_owner(),
		"WITH l AS (INSERT INTO leads (business_id, phone_e164, name) "
		"SELECT $1::bigint, '+1555' || lpad((($3::bigint * 100000) + g)::text, 7, '0'), "
		"'Lead' FROM generate_series(1, $2::integer) g RETURNING id, phone_e164) "
		"INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
		"SELECT $3::bigint, $1::bigint, id, phone_e164 FROM l",
		bid, nn, rid);
	/* what POST /api/outbound_calls/runs sends on commit */
	ITEST_X(wfix_owner(), "SELECT pg_notify('" QUEUE_CHANNEL "', 'run:' || $1)", rid);
	return run_id;
}

/* Wait until the fake provider has seen n calls; false after timeout_ms. */
static bool wait_calls(fake_provider_t *fp, int n, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;

	while (fake_provider_ncalls(fp) < n) {
		if (now_us() > deadline)
			return false;
		sleep_us(50);
	}
	return true;
}

static void bench_commit_ref(void **state)
{
	PGconn *c = itest_pg_connect(wfix_url());
	int64_t t0, dt;
	int n = 2000;

	(void)state;
	ITEST_X(c, "CREATE TABLE IF NOT EXISTS bench_ref (id integer PRIMARY KEY, "
		   "n bigint NOT NULL DEFAULT 0, updated_at timestamptz)");
	ITEST_X(c, "INSERT INTO bench_ref (id) VALUES (1) ON CONFLICT DO NOTHING");
	t0 = now_us();
	for (int i = 0; i < n; i++)
		ITEST_X(c, "UPDATE bench_ref SET n = n + 1, updated_at = now() WHERE id = 1");
	dt = now_us() - t0;
	printf("BENCH commit_ref_per_s %.0f\n", n * 1e6 / (double)dt);
	fflush(stdout);
	PQfinish(c);
}

/*
 * The floor of "a slot frees, a dispatcher reacts": from the commit of a
 * pg_notify() on one connection to a LISTENing connection having received it
 * and committed one one-row UPDATE (the least a claim must write).
 */
static void bench_wake_ref(void **state)
{
	PGconn *l = itest_pg_connect(wfix_url()), *s = itest_pg_connect(wfix_url());
	int n = nslots_target;
	int64_t *v = calloc((size_t)n, sizeof(int64_t));

	(void)state;
	assert_non_null(v);
	ITEST_X(l, "LISTEN bench_ref");
	for (int i = 0; i < n; i++) {
		struct pollfd pfd = {PQsocket(l), POLLIN, 0};
		PGnotify *nt = NULL;
		int64_t t;

		ITEST_X(s, "SELECT pg_notify('bench_ref', 'x')");
		t = now_us(); /* the notifying commit has returned */
		while (nt == NULL) {
			assert_true(poll(&pfd, 1, 5000) > 0);
			assert_int_equal(PQconsumeInput(l), 1);
			nt = PQnotifies(l);
		}
		PQfreemem(nt);
		ITEST_X(l, "UPDATE bench_ref SET n = n + 1, updated_at = now() WHERE id = 1");
		v[i] = now_us() - t;
	}
	print_dist("wake_ref", v, n);
	free(v);
	PQfinish(s);
	PQfinish(l);
}

static void bench_throughput(void **state)
{
	fake_provider_t *fp = fake_provider_new();
	config_t cfg;
	fake_call_t first, last;
	int64_t b, run;
	pid_t w;
	int n = ncalls_target;

	(void)state;
	/* unlimited concurrency: lift the product's caps in this scratch database only */
	ITEST_X(wfix_owner(), "ALTER TABLE outbound_call_runs "
			      "DROP CONSTRAINT IF EXISTS outbound_call_runs_concurrency_check");
	ITEST_X(wfix_owner(), "ALTER TABLE businesses "
			      "DROP CONSTRAINT IF EXISTS businesses_max_concurrent_calls_check");
	bench_config(&cfg);
	b = wfix_business(1000000);
	w = wfix_spawn_worker(&cfg, fp);
	wfix_sleep_ms(500); /* registered and listening */
	run = bulk_run(b, n, 1000000);
	assert_true(wait_calls(fp, n, 120000));
	/* every job reached the provider once, and is recorded as calling */
	assert_true(WFIX_WAIT(n, 30000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'calling' AND call_sid IS NOT NULL",
			      itest_i64s((char[24]){0}, 24, run)));
	assert_int_equal(fake_provider_ncalls(fp), n);
	while (!fake_provider_call(fp, n - 1, &last))
		sleep_us(20);
	assert_true(fake_provider_call(fp, 0, &first));
	printf("BENCH calls %d\n", n);
	printf("BENCH calls_per_s %.0f\n",
	       (n - 1) * 1e6 / (double)(last.placed_us - first.placed_us));
	fflush(stdout);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void bench_slot(void **state)
{
	fake_provider_t *fp = fake_provider_new();
	db_t *hook = wfix_db("bench-webhook", NULL);
	int n = nslots_target;
	int64_t *v = calloc((size_t)n, sizeof(int64_t)), b, run;
	config_t cfg;
	pid_t w;

	(void)state;
	assert_non_null(v);
	bench_config(&cfg);
	b = wfix_business(1);
	w = wfix_spawn_worker(&cfg, fp);
	wfix_sleep_ms(500);
	run = bulk_run(b, n + 1, 1);
	(void)run;
	for (int i = 0; i < n; i++) {
		fake_call_t cur, next;
		bool changed = false;
		int64_t freed;

		assert_true(wait_calls(fp, i + 1, 10000));
		while (!fake_provider_call(fp, i, &cur))
			sleep_us(20);
		/* a call ends only once the worker has recorded it, as in life */
		assert_true(WFIX_WAIT(1, 10000,
				      "SELECT count(*) FROM outbound_call_jobs "
				      "WHERE call_sid = $1 AND status = 'calling'",
				      cur.sid));
		assert_int_equal(fake_provider_emit(hook, cur.sid, "completed", 1, &changed), 0);
		freed = now_us(); /* the slot NOTIFY went out with that commit */
		assert_true(changed);
		assert_true(wait_calls(fp, i + 2, 10000));
		while (!fake_provider_call(fp, i + 1, &next)) /* counted, being written */
			sleep_us(20);
		v[i] = next.placed_us - freed;
	}
	/* one slot: never two live calls */
	assert_int_equal(fake_provider_ncalls(fp), n + 1);
	print_dist("slot_to_dial", v, n);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	free(v);
	db_free(hook);
	fake_provider_free(fp);
}

static int env_int(const char *name, int dflt, int lo, int hi)
{
	const char *s = getenv(name);
	long v;

	if (s == NULL || *s == '\0')
		return dflt;
	v = strtol(s, NULL, 10);
	return v < lo ? lo : v > hi ? hi : (int)v;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bench_commit_ref),
	    cmocka_unit_test(bench_wake_ref),
	    cmocka_unit_test_setup(bench_throughput, wfix_quiesce),
	    cmocka_unit_test_setup(bench_slot, wfix_quiesce),
	};

	itest_init();
	ncalls_target = env_int("BENCH_DISPATCH_CALLS", 3000, 10, FAKE_MAX_CALLS);
	nslots_target = env_int("BENCH_DISPATCH_SLOTS", 200, 10, FAKE_MAX_CALLS - 1);
	return cmocka_run_group_tests(tests, wfix_setup, wfix_teardown);
}

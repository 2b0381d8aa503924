/*
 * test_worker_dispatch.c - the worker's dispatch, with worker children on the
 * fake provider and a carrier child ending calls at random:
 *
 *   - in-flight calls never exceed min(run.concurrency, business max) at any
 *     sampled instant, with 2 workers, 3 runs and 2 businesses (one stopped
 *     run's live calls count against its business's next run);
 *   - do-not-call leads are never dialled; the calling window (in the
 *     business's timezone) holds dialling back; busy leads are retried up to
 *     max_attempts; the account pace holds across workers;
 *   - cancel lets live calls finish; force-cancel hangs them up at once;
 *   - the provider's REJECTED / TRANSIENT / UNKNOWN outcomes.
 */
#include "worker_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/provider.h"

#define RUN_WAIT_MS 30000

static bool wait_run(int64_t run_id, const char *status, int ms)
{
	char rid[24];

	return WFIX_WAIT(1, ms,
			 "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
			 "AND status = $2",
			 itest_i64s(rid, sizeof(rid), run_id), status);
}

static int64_t inflight_of_run(int64_t run_id)
{
	char rid[24];

	return ITEST_I64(wfix_owner(),
			 "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			 "AND status IN ('dialing', 'calling')",
			 itest_i64s(rid, sizeof(rid), run_id));
}

static void test_concurrency_never_exceeded(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b1 = wfix_business(3), b2 = wfix_business(4), bs[2] = {b1, b2};
	char pa[25][24], pb[30][24], pc[20][24], s1[24], s2[24], rc_s[24] = "0";
	int64_t run_a, run_b, run_c = 0;
	int64_t max1 = 0, max2 = 0, maxc = 0, samples = 0, deadline;
	pid_t w1, w2, carrier;
	bool stopped = false;

	(void)state;
	run_a = wfix_run(b1, 25, 5, 1, 0, pa); /* limit min(5, 3) = 3 */
	run_b = wfix_run(b2, 30, 2, 1, 0, pb); /* limit min(2, 4) = 2 */
	itest_i64s(s1, sizeof(s1), b1);
	itest_i64s(s2, sizeof(s2), b2);
	wfix_config(&cfg);
	w1 = wfix_spawn_worker(&cfg, fp);
	w2 = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(bs, 2, "completed", 1, 25);
	deadline = itest_now_ms() + 60000;
	for (;;) {
		PGresult *r =
		    ITEST_Q(wfix_owner(),
			    "SELECT count(*) FILTER (WHERE business_id = $1::bigint), "
			    "count(*) FILTER (WHERE business_id = $2::bigint), "
			    "count(*) FILTER (WHERE run_id = $3::bigint) FROM outbound_call_jobs "
			    "WHERE status IN ('dialing', 'calling') AND business_id IN "
			    "($1::bigint, $2::bigint)",
			    s1, s2, rc_s);
		int64_t n1 = atoll(PQgetvalue(r, 0, 0)), n2 = atoll(PQgetvalue(r, 0, 1));
		int64_t nc = atoll(PQgetvalue(r, 0, 2));

		PQclear(r);
		max1 = n1 > max1 ? n1 : max1;
		max2 = n2 > max2 ? n2 : max2;
		maxc = nc > maxc ? nc : maxc;
		samples++;
		if (!stopped && wfix_jobs(run_a, "completed") >= 8 && inflight_of_run(run_a) > 0) {
			/* stop A as the API does, with its calls still live; C starts at once */
			char ra[24];

			itest_i64s(ra, sizeof(ra), run_a);
			ITEST_X(wfix_owner(),
				"WITH r AS (UPDATE outbound_call_runs SET status = 'stopped', "
				"cancel_requested = true, ended_at = now() WHERE id = $1::bigint) "
				"UPDATE outbound_call_jobs SET status = 'cancelled', "
				"error_message = 'Queue stopped by user' WHERE run_id = $1::bigint "
				"AND status = 'queued'",
				ra);
			run_c = wfix_run(b1, 20, 3, 1, 0, pc);
			itest_i64s(rc_s, sizeof(rc_s), run_c);
			ITEST_X(wfix_owner(), "SELECT pg_notify('dialflow_worker', 'run:' || $1)",
				rc_s);
			stopped = true;
		}
		if (stopped && samples % 25 == 0 && wfix_jobs(run_b, "completed") == 30 &&
		    wfix_jobs(run_c, "completed") == 20 && inflight_of_run(run_a) == 0) {
			char *sb = wfix_run_status(run_b), *sc = wfix_run_status(run_c);
			bool done = strcmp(sb, "completed") == 0 && strcmp(sc, "completed") == 0;

			free(sb);
			free(sc);
			if (done)
				break;
		}
		assert_true(itest_now_ms() < deadline);
		wfix_sleep_ms(2);
	}
	print_message("# %lld samples: max in flight b1=%lld (limit 3) b2=%lld (limit 2) "
		      "run C=%lld (limit 3)\n",
		      (long long)samples, (long long)max1, (long long)max2, (long long)maxc);
	assert_true(max1 <= 3);
	assert_true(max2 <= 2);
	assert_true(maxc <= 3);
	/* the limits were reached: the sampling was not vacuous */
	assert_int_equal(max1, 3);
	assert_int_equal(max2, 2);
	/* every lead dialled exactly once (A's queued-at-stop leads never) */
	for (int i = 0; i < 30; i++)
		assert_int_equal(fake_provider_calls_to(fp, pb[i]), 1);
	for (int i = 0; i < 20; i++)
		assert_int_equal(fake_provider_calls_to(fp, pc[i]), 1);
	for (int i = 0; i < 25; i++)
		assert_true(fake_provider_calls_to(fp, pa[i]) <= 1);
	assert_int_equal(fake_provider_ncalls(fp),
			 50 + wfix_jobs(run_a, "completed") + wfix_jobs(run_a, "failed"));
	assert_int_equal(wfix_jobs(run_a, "completed") + wfix_jobs(run_a, "cancelled"), 25);
	/* the calls carried the worker's URLs and the business's caller id */
	{
		fake_call_t c;

		assert_true(fake_provider_call(fp, 0, &c));
		assert_string_equal(c.from, WFIX_CALLER_ID);
		assert_string_equal(c.answer_url, "https://dialflow.test/webhooks/twilio/voice");
		assert_string_equal(c.status_url,
				    "https://dialflow.test/webhooks/twilio/call-status");
	}
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w1, SIGTERM, 10000), 0);
	assert_int_equal(wfix_stop(w2, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_do_not_call_never_dialled(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[6][24], rid[24];
	int64_t run;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 6, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	ITEST_X(wfix_owner(), "UPDATE leads SET do_not_call = true WHERE phone_e164 IN ($1, $2)",
		p[1], p[4]);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(fake_provider_calls_to(fp, p[1]), 0);
	assert_int_equal(fake_provider_calls_to(fp, p[4]), 0);
	assert_int_equal(fake_provider_ncalls(fp), 4);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND status = 'cancelled' AND error_code = 'do_not_call'",
		      rid),
	    2);
	assert_int_equal(wfix_jobs(run, "completed"), 4);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_calling_window_in_business_timezone(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[4][24], bid[24];
	int64_t run;
	pid_t w, carrier;

	(void)state;
	itest_i64s(bid, sizeof(bid), b);
	/* open for two hours around now in UTC, but the business is at UTC+12: closed there */
	ITEST_X(wfix_owner(),
		"UPDATE businesses SET timezone = 'Etc/GMT-12', "
		"calling_window_start = (now() AT TIME ZONE 'UTC')::time - interval '1 hour', "
		"calling_window_end = (now() AT TIME ZONE 'UTC')::time + interval '1 hour' "
		"WHERE id = $1::bigint",
		bid);
	run = wfix_run(b, 4, 3, 1, 0, p);
	wfix_config(&cfg);
	cfg.dispatch_poll_ms = 50;
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	assert_true(wait_run(run, "running", RUN_WAIT_MS));
	/* ten poll rounds: nothing may be dialled outside the window */
	wfix_sleep_ms(500);
	assert_int_equal(fake_provider_ncalls(fp), 0);
	assert_int_equal(wfix_jobs(run, "queued"), 4);
	/* the same clock in UTC: open */
	ITEST_X(wfix_owner(), "UPDATE businesses SET timezone = 'UTC' WHERE id = $1::bigint", bid);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(fake_provider_ncalls(fp), 4);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_busy_retried_up_to_max_attempts(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[4][24], rid[24];
	int64_t run;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 4, 2, 3, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "busy", 1, 5);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	for (int i = 0; i < 4; i++)
		assert_int_equal(fake_provider_calls_to(fp, p[i]), 3);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND status = 'failed' AND error_code = 'busy' AND attempts = 3",
		      rid),
	    4);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM call_log WHERE run_id = $1::bigint "
				   "AND status = 'busy' AND call_sid IS NOT NULL",
				   rid),
			 12);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_cancel_lets_live_calls_finish(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	db_t *db = wfix_db("itest-dispatch-cancel", "dialflow_worker");
	char rid[24];
	int64_t run;
	pid_t w;

	(void)state;
	run = wfix_run(b, 10, 3, 1, 0, NULL);
	itest_i64s(rid, sizeof(rid), run);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	/* no carrier: the first three calls stay live */
	assert_true(WFIX_WAIT(3, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'calling'",
			      rid));
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET cancel_requested = true WHERE id = $1::bigint", rid);
	assert_true(WFIX_WAIT(7, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'cancelled' AND error_code = 'cancelled'",
			      rid));
	/* still running while its calls are live */
	wfix_sleep_ms(300);
	{
		char *s = wfix_run_status(run);

		assert_string_equal(s, "running");
		free(s);
	}
	for (int i = 0; i < fake_provider_ncalls(fp); i++) {
		fake_call_t c;

		assert_true(fake_provider_call(fp, i, &c));
		assert_int_equal(fake_provider_emit(db, c.sid, "completed", 30, NULL), 0);
	}
	assert_true(wait_run(run, "cancelled", RUN_WAIT_MS));
	assert_int_equal(fake_provider_ncalls(fp), 3);
	assert_int_equal(fake_provider_nhangups(fp), 0);
	assert_int_equal(wfix_jobs(run, "completed"), 3);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	db_free(db);
	fake_provider_free(fp);
}

static void test_force_cancel_hangs_up(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3), t0, t1 = 0;
	char rid[24], bid[24];
	int64_t run;
	pid_t w;

	(void)state;
	run = wfix_run(b, 10, 3, 1, 0, NULL);
	itest_i64s(rid, sizeof(rid), run);
	itest_i64s(bid, sizeof(bid), b);
	wfix_config(&cfg);
	/* a slow poll: only the NOTIFY can make the hang-ups fast */
	cfg.dispatch_poll_ms = 20000;
	w = wfix_spawn_worker(&cfg, fp);
	assert_true(WFIX_WAIT(3, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'calling'",
			      rid));
	/* what POST .../force-cancel does, in one transaction */
	t0 = itest_now_ms();
	ITEST_X(wfix_owner(),
		"WITH r AS (UPDATE outbound_call_runs SET status = 'cancelled', "
		"cancel_requested = true, force_cancel = true, ended_at = now() "
		"WHERE id = $1::bigint), "
		"q AS (UPDATE outbound_call_jobs SET status = 'cancelled', "
		"error_message = 'Force cancelled by user' WHERE run_id = $1::bigint "
		"AND status = 'queued'), "
		"l AS (UPDATE outbound_call_jobs SET hangup_requested_at = now() "
		"WHERE run_id = $1::bigint AND status IN ('dialing', 'calling')) "
		"SELECT pg_notify('dialflow_worker', 'force_cancel:' || $1)",
		rid);
	while (itest_now_ms() - t0 < 5000) {
		if (fake_provider_nhangups(fp) >= 3) {
			t1 = itest_now_ms();
			break;
		}
		wfix_sleep_ms(1);
	}
	assert_true(t1 > 0);
	print_message("# force-cancel to 3 hang-ups: %lld ms\n", (long long)(t1 - t0));
	for (int i = 0; i < 3; i++) {
		fake_call_t c;

		assert_true(fake_provider_call(fp, i, &c));
		assert_int_equal(c.hangups, 1);
	}
	assert_true(WFIX_WAIT(3, 5000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'cancelled' AND error_code = 'force_cancelled'",
			      rid));
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM audit_events WHERE tag = 'FORCE_CANCEL' "
				   "AND resource_id = $1::bigint AND business_id = $2::bigint "
				   "AND (details->>'calls_hung_up')::int = 3",
				   rid, bid),
			 1);
	/* the lease goes; nothing else is dialled */
	assert_true(WFIX_WAIT(1, 5000,
			      "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
			      "AND locked_by_worker IS NULL AND lease_token IS NULL",
			      rid));
	assert_int_equal(fake_provider_ncalls(fp), 3);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_provider_outcomes(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[3][24], rid[24];
	int64_t run;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 3, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	fake_provider_script(fp, p[0], PROVIDER_ERR_REJECTED, -1);
	fake_provider_script(fp, p[1], PROVIDER_ERR_TRANSIENT, 1);
	fake_provider_script(fp, p[2], PROVIDER_ERR_UNKNOWN, -1);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	/* REJECTED: failed with the provider's code, never retried */
	assert_true(WFIX_WAIT(1, 10000,
			      "SELECT count(*) FROM outbound_call_jobs j JOIN call_log l "
			      "ON l.job_id = j.id WHERE j.phone = $1 AND j.status = 'failed' "
			      "AND j.error_code = '21211' AND l.status = 'failed' "
			      "AND l.error_code = '21211' AND l.call_sid IS NULL",
			      p[0]));
	/* TRANSIENT: nothing was placed; queued again later, the attempt undone */
	assert_true(WFIX_WAIT(1, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE phone = $1 "
			      "AND status = 'queued' AND attempts = 0 "
			      "AND error_code = 'provider_unavailable' "
			      "AND next_attempt_at > now() + interval '2 seconds'",
			      p[1]));
	/* UNKNOWN: the call may exist: left dialing without a sid, never redialled */
	assert_true(
	    WFIX_WAIT(1, 10000,
		      "SELECT count(*) FROM outbound_call_jobs j JOIN call_log l "
		      "ON l.job_id = j.id WHERE j.phone = $1 AND j.status = 'dialing' "
		      "AND j.call_sid IS NULL AND l.status = 'initiated' AND l.call_sid IS NULL",
		      p[2]));
	/* the transient one's turn comes again: placed this time */
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_jobs SET next_attempt_at = now() WHERE phone = $1", p[1]);
	assert_true(WFIX_WAIT(1, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE phone = $1 "
			      "AND status = 'completed' AND attempts = 1",
			      p[1]));
	wfix_sleep_ms(300);
	assert_int_equal(fake_provider_calls_to(fp, p[0]), 0);
	assert_int_equal(fake_provider_calls_to(fp, p[1]), 1);
	assert_int_equal(fake_provider_calls_to(fp, p[2]), 1);
	{
		char *s = wfix_run_status(run);

		/* the unknown dial keeps the run open until the call_log sweep settles it */
		assert_string_equal(s, "running");
		free(s);
	}
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_pace_holds_across_workers(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(10);
	int64_t run, first = INT64_MAX, last = 0, t0;
	pid_t w1, w2, carrier;

	(void)state;
	run = wfix_run(b, 15, 10, 1, 0, NULL);
	wfix_config(&cfg);
	cfg.calls_per_second = 5;
	t0 = itest_now_ms();
	w1 = wfix_spawn_worker(&cfg, fp);
	w2 = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(fake_provider_ncalls(fp), 15);
	for (int i = 0; i < 15; i++) {
		fake_call_t c;

		assert_true(fake_provider_call(fp, i, &c));
		first = (c.placed_us / 1000) < first ? (c.placed_us / 1000) : first;
		last = (c.placed_us / 1000) > last ? (c.placed_us / 1000) : last;
	}
	/* 5/s with a bucket of 5: the 15th call's slot comes (15 - 5) / 5 = 2 s after the
	 * first, whatever the number of workers; a call leaves after its slot, and the
	 * first slot after t0, so only slowness can add to this */
	print_message("# 15 calls at 5/s over 2 workers: first to last %lld ms\n",
		      (long long)(last - first));
	assert_true(last - t0 >= 2000);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w1, SIGTERM, 10000), 0);
	assert_int_equal(wfix_stop(w2, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_worker_without_provider_leaves_runs(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char rid[24];
	int64_t run;
	pid_t idle, w;

	(void)state;
	run = wfix_run(b, 2, 3, 1, 0, NULL);
	itest_i64s(rid, sizeof(rid), run);
	wfix_config(&cfg);
	cfg.dispatch_poll_ms = 50;
	/* a queue-only worker (no provider) must not sit on a run it cannot dial */
	idle = wfix_spawn_worker(&cfg, NULL);
	wfix_sleep_ms(500);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
				   "AND status = 'pending' AND locked_by_worker IS NULL",
				   rid),
			 1);
	w = wfix_spawn_worker(&cfg, fp);
	assert_true(WFIX_WAIT(2, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'calling'",
			      rid));
	assert_int_equal(wfix_stop(idle, SIGTERM, 10000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_concurrency_never_exceeded, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_do_not_call_never_dialled, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_calling_window_in_business_timezone, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_busy_retried_up_to_max_attempts, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_cancel_lets_live_calls_finish, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_force_cancel_hangs_up, wfix_quiesce, wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_provider_outcomes, wfix_quiesce, wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_pace_holds_across_workers, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_worker_without_provider_leaves_runs, wfix_quiesce,
					    wfix_quiesce),
	};

	itest_init();
	return cmocka_run_group_tests(tests, wfix_setup, wfix_teardown);
}

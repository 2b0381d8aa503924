/*
 * test_worker_recovery.c - the worker's recovery paths, with worker children
 * on the fake provider:
 *
 *   - stale takeover: a worker killed with SIGKILL mid-run; another takes the
 *     run over after run_stale_s and finishes it, no lead dialled twice;
 *   - the dialing crash case: a job left dialing without a call id is failed
 *     worker_lost on takeover and never dialled;
 *   - the call_log sweep, and reconciliation of calls whose final callback
 *     never came (fetch_status);
 *   - SIGTERM: the in-flight request completes, the leases are released (the
 *     next worker resumes at once), exit 0;
 *   - the connection killed mid-run: the worker reconnects, LISTENs again, and
 *     finishes with no lost or doubled dial; a call id the provider returned
 *     while the database was away is kept and written after the reconnect.
 */
#include "worker_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The pid in a locked_by_worker "host:pid" (0 when not locked). */
static pid_t holder(int64_t run_id)
{
	char rid[24];
	PGresult *r = ITEST_Q(wfix_owner(),
			      "SELECT coalesce(substring(locked_by_worker FROM ':([0-9]+)$'), '0') "
			      "FROM outbound_call_runs WHERE id = $1::bigint",
			      itest_i64s(rid, sizeof(rid), run_id));
	pid_t pid = (pid_t)atoi(PQgetvalue(r, 0, 0));

	PQclear(r);
	return pid;
}

static void test_stale_takeover_after_kill9(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[30][24], rid[24];
	int64_t run;
	pid_t w1, w2, carrier, victim, survivor;
	int lost;

	(void)state;
	run = wfix_run(b, 30, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	wfix_config(&cfg);
	cfg.calls_per_second = 10; /* long enough a run to kill its worker mid-way */
	w1 = wfix_spawn_worker(&cfg, fp);
	w2 = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 5, 30);
	assert_true(wait_run(run, "running", 10000));
	while (fake_provider_ncalls(fp) < 6)
		wfix_sleep_ms(2);
	victim = holder(run);
	assert_true(victim == w1 || victim == w2);
	survivor = victim == w1 ? w2 : w1;
	assert_int_equal(wfix_stop(victim, SIGKILL, 5000), 128 + SIGKILL);
	/* the live calls outlive their worker (the carrier ends them); the run is taken
	 * over once its heartbeat is older than run_stale_s and resumed to the end */
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM audit_events WHERE tag = 'STALE_DETECTION' "
		      "AND action = 'run.takeover' AND resource_id = $1::bigint",
		      rid),
	    1);
	for (int i = 0; i < 30; i++)
		assert_true(fake_provider_calls_to(fp, p[i]) <= 1);
	lost = (int)ITEST_I64(wfix_owner(),
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'failed' AND error_code = 'worker_lost'",
			      rid);
	assert_int_equal(wfix_jobs(run, "completed") + lost, 30);
	/* a lost one may or may not have reached the provider before the kill */
	assert_true(fake_provider_ncalls(fp) >= 30 - lost && fake_provider_ncalls(fp) <= 30);
	print_message("# killed %d, %d placed, %d lost mid-dial\n", (int)victim,
		      fake_provider_ncalls(fp), lost);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(survivor, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_dialing_without_sid_never_redialled(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[3][24], rid[24], bid[24];
	int64_t run;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 3, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	itest_i64s(bid, sizeof(bid), b);
	/* a worker died between claiming p[0] and recording its call id */
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET status = 'running', locked_by_worker = 'ghost:1', "
		"lease_token = gen_random_uuid(), lock_ts = now() - interval '1 hour', "
		"last_heartbeat_at = now() - interval '1 hour', started_at = now() - interval "
		"'1 hour' WHERE id = $1::bigint",
		rid);
	ITEST_X(wfix_owner(),
		"WITH j AS (UPDATE outbound_call_jobs SET status = 'dialing', attempts = 1, "
		"dial_started_at = now() WHERE run_id = $1::bigint AND phone = $2 "
		"RETURNING id, business_id, lead_id, phone) "
		"INSERT INTO call_log (business_id, to_number, status, lead_id, run_id, job_id) "
		"SELECT business_id, phone, 'initiated', lead_id, $1::bigint, id FROM j",
		rid, p[0]);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(fake_provider_calls_to(fp, p[0]), 0);
	assert_int_equal(fake_provider_calls_to(fp, p[1]), 1);
	assert_int_equal(fake_provider_calls_to(fp, p[2]), 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM outbound_call_jobs j JOIN call_log l "
				   "ON l.job_id = j.id WHERE j.phone = $1 AND j.status = 'failed' "
				   "AND j.error_code = 'worker_lost' AND l.status = 'failed' "
				   "AND l.error_code = 'worker_lost'",
				   p[0]),
			 1);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM audit_events WHERE tag = 'STALE_DETECTION' "
		      "AND resource_id = $1::bigint AND business_id = $2::bigint "
		      "AND details->>'previous_worker' = 'ghost:1' "
		      "AND (details->>'dialing_failed')::int = 1",
		      rid, bid),
	    1);
	/* and the worker it shows lost, as its own event */
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM audit_events WHERE tag = 'STALE_DETECTION' "
		      "AND action = 'worker.lost' AND resource_id = $1::bigint "
		      "AND business_id = $2::bigint AND details->>'worker' = 'ghost:1'",
		      rid, bid),
	    1);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_call_log_sweep(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[1][24], rid[24], bid[24];
	int64_t run;
	pid_t w;

	(void)state;
	run = wfix_run(b, 1, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	itest_i64s(bid, sizeof(bid), b);
	/* a run the API stopped (no lease to take over), its job caught mid-dial two
	 * minutes ago; a stray call_log row of the same age; a fresh one */
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET status = 'stopped' WHERE id = $1::bigint", rid);
	ITEST_X(wfix_owner(),
		"WITH j AS (UPDATE outbound_call_jobs SET status = 'dialing', attempts = 1 "
		"WHERE run_id = $1::bigint RETURNING id, business_id, lead_id, phone) "
		"INSERT INTO call_log (business_id, to_number, status, lead_id, run_id, job_id, "
		"created_at) SELECT business_id, phone, 'initiated', lead_id, $1::bigint, id, "
		"now() - interval '2 minutes' FROM j",
		rid);
	ITEST_X(wfix_owner(),
		"INSERT INTO call_log (business_id, to_number, status, created_at) VALUES "
		"($1::bigint, '+15550000001', 'initiated', now() - interval '2 minutes'), "
		"($1::bigint, '+15550000002', 'initiated', now())",
		bid);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	assert_true(WFIX_WAIT(2, 5000,
			      "SELECT count(*) FROM call_log WHERE business_id = $1::bigint "
			      "AND status = 'failed' AND error_code = 'no_call_sid' "
			      "AND error_message LIKE 'No provider call id within 60 s%'",
			      bid));
	assert_true(WFIX_WAIT(1, 5000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'failed' AND error_code = 'worker_lost'",
			      rid));
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM call_log WHERE business_id = $1::bigint "
				   "AND status = 'initiated' AND to_number = '+15550000002'",
				   bid),
			 1);
	assert_int_equal(fake_provider_ncalls(fp), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_reconcile_lost_callbacks(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[2][24], rid[24], u[64], sid1[64], sid2[64];
	int64_t run;
	pid_t w;

	(void)state;
	run = wfix_run(b, 2, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	snprintf(sid1, sizeof(sid1), "CArec1%s", itest_unique(u, sizeof(u)));
	snprintf(sid2, sizeof(sid2), "CArec2%s", itest_unique(u, sizeof(u)));
	/* two calls whose last callback ("ringing") came an hour ago, in a stopped run */
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET status = 'stopped' WHERE id = $1::bigint", rid);
	ITEST_X(wfix_owner(),
		"WITH j AS (UPDATE outbound_call_jobs SET status = 'calling', attempts = 1, "
		"call_sid = CASE WHEN phone = $2 THEN $3 ELSE $4 END WHERE run_id = $1::bigint "
		"RETURNING id, business_id, lead_id, phone, call_sid) "
		"INSERT INTO call_log (business_id, call_sid, to_number, status, lead_id, run_id, "
		"job_id, updated_at) SELECT business_id, call_sid, phone, 'ringing', lead_id, "
		"$1::bigint, id, now() - interval '1 hour' FROM j",
		rid, p[0], sid1, sid2);
	fake_provider_set_fetch(fp, PROVIDER_OK, 200, "completed", 33);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	assert_true(
	    WFIX_WAIT(2, 5000,
		      "SELECT count(*) FROM outbound_call_jobs j JOIN call_log l ON "
		      "l.call_sid = j.call_sid WHERE j.run_id = $1::bigint AND "
		      "j.status = 'completed' AND l.status = 'completed' AND l.duration = 33",
		      rid));
	assert_true(fake_provider_nfetches(fp) >= 2);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE unique_key IN "
				   "('lead_from_call:' || $1, 'lead_from_call:' || $2)",
				   sid1, sid2),
			 2);
	/* a calling job whose call_log row is already final is not left stuck either */
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_jobs SET status = 'calling', completed_at = NULL, "
		"updated_at = now() - interval '1 hour' WHERE call_sid = $1",
		sid2);
	assert_true(WFIX_WAIT(1, 5000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE call_sid = $1 "
			      "AND status = 'completed'",
			      sid2));
	/* a call the provider does not know: failed, not asked about forever */
	fake_provider_set_fetch(fp, PROVIDER_ERR_REJECTED, 404, "", -1);
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_jobs SET status = 'calling', completed_at = NULL "
		"WHERE call_sid = $1",
		sid1);
	ITEST_X(
	    wfix_owner(),
	    "UPDATE call_log SET status = 'in-progress', updated_at = now() - interval '1 hour' "
	    "WHERE call_sid = $1",
	    sid1);
	assert_true(
	    WFIX_WAIT(1, 5000,
		      "SELECT count(*) FROM outbound_call_jobs j JOIN call_log l ON "
		      "l.call_sid = j.call_sid WHERE j.call_sid = $1 AND j.status = 'failed' "
		      "AND j.error_code = 'not_found' AND l.status = 'failed'",
		      sid1));
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_sigterm_releases_leases(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3), t0;
	char rid[24], owner2[160], host[128];
	int64_t run;
	pid_t w, w2;

	(void)state;
	run = wfix_run(b, 10, 3, 1, 0, NULL);
	itest_i64s(rid, sizeof(rid), run);
	fake_provider_set_latency(fp, 300);
	wfix_config(&cfg);
	cfg.run_stale_s = 120; /* a takeover by staleness cannot happen in this test */
	w = wfix_spawn_worker(&cfg, fp);
	assert_true(WFIX_WAIT(1, 10000,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND status = 'calling'",
			      rid));
	/* signal it while a provider request is in flight */
	while (fake_provider_in_flight(fp) == 0)
		wfix_sleep_ms(1);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	/* the in-flight call was recorded; nothing is left dialing; the lease is released */
	assert_int_equal(wfix_jobs(run, "dialing"), 0);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND call_sid IS NOT NULL",
		      rid),
	    fake_provider_ncalls(fp));
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
				   "AND status = 'running' AND locked_by_worker IS NULL "
				   "AND lease_token IS NULL",
				   rid),
			 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM call_log WHERE run_id = $1::bigint "
				   "AND call_sid IS NULL",
				   rid),
			 0);
	{
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)w);
		assert_int_equal(ITEST_I64(wfix_owner(),
					   "SELECT count(*) FROM workers WHERE pid = $1::integer "
					   "AND stopped_at IS NOT NULL",
					   pid),
				 1);
	}
	/* the next worker resumes it at once, not after run_stale_s */
	t0 = itest_now_ms();
	w2 = wfix_spawn_worker(&cfg, fp);
	gethostname(host, sizeof(host));
	snprintf(owner2, sizeof(owner2), "%s:%d", host, (int)w2);
	assert_true(WFIX_WAIT(1, 5000,
			      "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
			      "AND locked_by_worker = $2",
			      rid, owner2));
	print_message("# resumed by the next worker after %lld ms\n",
		      (long long)(itest_now_ms() - t0));
	assert_int_equal(wfix_stop(w2, SIGTERM, 10000), 0);
	fake_provider_free(fp);
}

static void test_reconnects_after_connection_loss(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[20][24], app[64], rid[24];
	PGconn *super = itest_super_pg();
	int64_t run, run2;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 20, 3, 1, 0, p);
	wfix_config(&cfg);
	cfg.calls_per_second = 20;
	cfg.dispatch_poll_ms = 20000; /* after the reconnect, only a NOTIFY is fast */
	w = wfix_spawn_worker(&cfg, fp);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 2, 10);
	while (fake_provider_ncalls(fp) < 5)
		wfix_sleep_ms(2);
	snprintf(app, sizeof(app), "dialflow-worker:%d", (int)w);
	itest_kill_session(super, app, NULL);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	for (int i = 0; i < 20; i++)
		assert_int_equal(fake_provider_calls_to(fp, p[i]), 1);
	assert_int_equal(wfix_jobs(run, "completed"), 20);
	/* it reconnected as itself */
	assert_true(itest_backend_pid(super, app) > 0);
	/* and LISTENs again: a new run is taken on its NOTIFY, well before the next poll */
	run2 = wfix_run(b, 1, 3, 1, 0, NULL);
	itest_i64s(rid, sizeof(rid), run2);
	wfix_sleep_ms(100);
	ITEST_X(wfix_owner(), "SELECT pg_notify('dialflow_worker', 'run:' || $1)", rid);
	assert_true(wait_run(run2, "completed", 2000));
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	PQfinish(super);
	fake_provider_free(fp);
}

static void test_outcome_kept_while_database_away(void **state)
{
	config_t cfg;
	fake_provider_t *fp = fake_provider_new();
	int64_t b = wfix_business(3);
	char p[6][24], app[64], rid[24];
	PGconn *super = itest_super_pg();
	int64_t run;
	pid_t w, carrier;

	(void)state;
	run = wfix_run(b, 6, 3, 1, 0, p);
	itest_i64s(rid, sizeof(rid), run);
	fake_provider_set_latency(fp, 400);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fp);
	/* the connection dies while the provider holds a request: the call id cannot be
	 * written at once; it is kept and written after the reconnect */
	while (fake_provider_in_flight(fp) == 0)
		wfix_sleep_ms(1);
	snprintf(app, sizeof(app), "dialflow-worker:%d", (int)w);
	itest_kill_session(super, app, NULL);
	carrier = wfix_spawn_carrier(&b, 1, "completed", 1, 5);
	assert_true(wait_run(run, "completed", RUN_WAIT_MS));
	assert_int_equal(wfix_jobs(run, "completed"), 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(fake_provider_calls_to(fp, p[i]), 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM call_log WHERE run_id = $1::bigint "
				   "AND status = 'completed' AND call_sid IS NOT NULL",
				   rid),
			 6);
	assert_int_equal(wfix_stop(carrier, SIGTERM, 5000), 0);
	assert_int_equal(wfix_stop(w, SIGTERM, 10000), 0);
	PQfinish(super);
	fake_provider_free(fp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stale_takeover_after_kill9, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_dialing_without_sid_never_redialled, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_call_log_sweep, wfix_quiesce, wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_reconcile_lost_callbacks, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_sigterm_releases_leases, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_reconnects_after_connection_loss, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test_setup_teardown(test_outcome_kept_while_database_away, wfix_quiesce,
					    wfix_quiesce),
	};

	itest_init();
	return cmocka_run_group_tests(tests, wfix_setup, wfix_teardown);
}

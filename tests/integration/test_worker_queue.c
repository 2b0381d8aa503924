/*
 * test_worker_queue.c - the background job queue (src/queue): enqueue with
 * dedupe and NOTIFY, batch claims under SKIP LOCKED, retry with backoff to
 * `dead`, lease rescue (also of a worker killed mid-job), and the
 * create_lead_from_call handler.
 */
#include "worker_fixture.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/queue.h"

static int64_t count_jobs(const char *where_kind)
{
	return ITEST_I64(wfix_owner(), "SELECT count(*) FROM background_jobs WHERE kind = $1",
			 where_kind);
}

static int reset(void **state)
{
	(void)state;
	itest_exec(wfix_owner(), "DELETE FROM background_jobs WHERE true", 0, NULL);
	return 0;
}

/* Enqueue in a transaction of db (committed). */
static int enqueue(db_t *db, const char *kind, int64_t business, const char *key, int max)
{
	arena_t *a = arena_new(1024);
	json_t *p = json_pack("{s:i}", "n", 1);
	int rc = db_begin(db);

	if (rc == 0)
		rc = queue_enqueue(db, a, kind, business, p, key, max);
	if (rc == 0)
		rc = db_commit(db);
	else
		db_rollback(db);
	json_decref(p);
	arena_free(a);
	return rc;
}

static int run_batch(db_t *db, const char *worker, int batch)
{
	arena_t *a = arena_new(4096);
	int claimed = -1;

	assert_int_equal(queue_run_batch(db, a, worker, batch, 60, NULL, &claimed), 0);
	arena_free(a);
	return claimed;
}

static void test_enqueue_dedupe_and_notify(void **state)
{
	db_t *db = wfix_db("itest-q-enqueue", "dialflow_worker");
	PGconn *listener = itest_pg_connect(wfix_url());
	struct pollfd pf;
	PGnotify *n;
	int notes = 0;

	(void)state;
	itest_exec(listener, "LISTEN " QUEUE_CHANNEL, 0, NULL);
	assert_int_equal(enqueue(db, "noop", 0, "dedupe:1", 0), 0);
	/* the same key while the first is queued: no error, nothing new */
	assert_int_equal(enqueue(db, "noop", 0, "dedupe:1", 0), 0);
	assert_int_equal(enqueue(db, "noop", 0, "dedupe:2", 3), 0);
	assert_int_equal(enqueue(db, "noop", 0, NULL, 0), 0);
	assert_int_equal(enqueue(db, "noop", 0, NULL, 0), 0);
	assert_int_equal(count_jobs("noop"), 4);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT max_attempts FROM background_jobs WHERE unique_key = $1",
				   "dedupe:2"),
			 3);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT max_attempts FROM background_jobs WHERE unique_key = $1",
				   "dedupe:1"),
			 5);
	/* every committed enqueue woke the listeners */
	pf.fd = PQsocket(listener);
	pf.events = POLLIN;
	while (poll(&pf, 1, 200) > 0 && PQconsumeInput(listener)) {
		while ((n = PQnotifies(listener)) != NULL) {
			assert_string_equal(n->extra, "jobs");
			notes++;
			PQfreemem(n);
		}
		if (notes >= 4)
			break;
	}
	assert_int_equal(notes, 4);
	/* once done, the key is free again */
	assert_int_equal(run_batch(db, "itest-w1", 50), 4);
	assert_int_equal(enqueue(db, "noop", 0, "dedupe:1", 0), 0);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE unique_key = $1",
				   "dedupe:1"),
			 2);
	PQfinish(listener);
	db_free(db);
}

static void test_enqueue_as_app_tenant(void **state)
{
	int64_t b = wfix_business(3);
	db_t *db = wfix_db("itest-q-app", ITEST_APP_ROLE);
	arena_t *a = arena_new(1024);
	char bid[24];

	(void)state;
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_set_tenant(db, a, b, false), 0);
	assert_int_equal(queue_enqueue(db, a, "noop", b, NULL, "app:1", 0), 0);
	assert_int_equal(queue_enqueue(db, a, "noop", b, NULL, "app:1", 0), 0);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM background_jobs WHERE business_id = $1::bigint",
		      itest_i64s(bid, sizeof(bid), b)),
	    1);
	arena_free(a);
	db_free(db);
}

static void test_claims_never_overlap(void **state)
{
	db_t *db = wfix_db("itest-q-claim", "dialflow_worker");
	arena_t *a = arena_new(4096);
	queue_job_t *j1, *j2;
	int n1, n2;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(enqueue(db, "noop", 0, NULL, 0), 0);
	assert_int_equal(queue_claim(db, a, "itest-a", 3, 60, &j1, &n1), 0);
	assert_int_equal(n1, 3);
	assert_int_equal(queue_claim(db, a, "itest-b", 10, 60, &j2, &n2), 0);
	assert_int_equal(n2, 2);
	for (int i = 0; i < n1; i++) {
		assert_int_equal(j1[i].attempts, 1);
		assert_string_equal(j1[i].kind, "noop");
		assert_true(json_is_object(j1[i].payload));
		for (int k = 0; k < n2; k++)
			assert_true(j1[i].id != j2[k].id);
	}
	/* only the holder completes: b cannot finish a's jobs */
	assert_int_equal(queue_complete(db, a, "itest-b", &j1[0].id, 1), 0);
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE status = 'running' "
				   "AND locked_by = 'itest-a'",
				   0, NULL),
			 3);
	assert_int_equal(queue_complete(db, a, "itest-a", &j1[0].id, 1), 0);
	/* released jobs go back with the attempt undone */
	{
		int64_t rest[2] = {j1[1].id, j1[2].id};

		assert_int_equal(queue_release(db, a, "itest-a", rest, 2), 0);
	}
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE status = 'queued' "
				   "AND attempts = 0",
				   0, NULL),
			 2);
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE status = 'done'", 0,
				   NULL),
			 1);
	arena_free(a);
	db_free(db);
}

static int fail_handler(db_t *db, arena_t *a, const queue_job_t *job, const char **why)
{
	(void)db;
	(void)a;
	(void)job;
	*why = "boom: itest failure";
	return ERR_INTERNAL;
}

/* Seconds from now until the job's run_at. */
static double run_at_in(void)
{
	PGresult *r = itest_query(wfix_owner(),
				  "SELECT extract(epoch FROM run_at - now()) FROM background_jobs "
				  "WHERE kind = 'itest_fail'",
				  0, NULL);
	double d = atof(PQgetvalue(r, 0, 0));

	PQclear(r);
	return d;
}

static void test_retry_backoff_then_dead(void **state)
{
	db_t *db = wfix_db("itest-q-retry", "dialflow_worker");
	double d;

	(void)state;
	assert_int_equal(queue_register_handler("itest_fail", fail_handler), 0);
	assert_int_equal(enqueue(db, "itest_fail", 0, "retry:1", 3), 0);

	assert_int_equal(run_batch(db, "itest-w", 10), 1);
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE kind = 'itest_fail' "
				   "AND status = 'queued' AND attempts = 1 AND locked_by IS NULL "
				   "AND last_error = 'boom: itest failure'",
				   0, NULL),
			 1);
	/* retry 1: base 2 s +-25 % */
	d = run_at_in();
	assert_true(d > 1.4 && d <= 2.5);
	/* not due yet: nothing to claim */
	assert_int_equal(run_batch(db, "itest-w", 10), 0);
	itest_exec(wfix_owner(),
		   "UPDATE background_jobs SET run_at = now() WHERE kind = 'itest_fail'", 0, NULL);

	assert_int_equal(run_batch(db, "itest-w", 10), 1);
	d = run_at_in();
	/* retry 2: 4 s +-25 % */
	assert_true(d > 2.9 && d <= 5.0);
	itest_exec(wfix_owner(),
		   "UPDATE background_jobs SET run_at = now() WHERE kind = 'itest_fail'", 0, NULL);

	assert_int_equal(run_batch(db, "itest-w", 10), 1);
	assert_int_equal(
	    itest_i64(wfix_owner(),
		      "SELECT count(*) FROM background_jobs WHERE kind = 'itest_fail' "
		      "AND status = 'dead' AND attempts = 3 AND finished_at IS NOT NULL "
		      "AND last_error = 'boom: itest failure' AND locked_by = 'itest-w'",
		      0, NULL),
	    1);
	/* dead jobs are kept and never claimed again */
	assert_int_equal(run_batch(db, "itest-w", 10), 0);
	/* and a dead job's key is free for a new one */
	assert_int_equal(enqueue(db, "itest_fail", 0, "retry:1", 1), 0);
	assert_int_equal(count_jobs("itest_fail"), 2);
	db_free(db);
}

static void test_unknown_kind_fails(void **state)
{
	db_t *db = wfix_db("itest-q-unknown", "dialflow_worker");

	(void)state;
	assert_int_equal(enqueue(db, "itest_nobody_handles", 0, NULL, 1), 0);
	assert_int_equal(run_batch(db, "itest-w", 10), 1);
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE status = 'dead' "
				   "AND last_error = 'no handler for this kind'",
				   0, NULL),
			 1);
	db_free(db);
}

static void test_rescue_expired_lease(void **state)
{
	db_t *db = wfix_db("itest-q-rescue", "dialflow_worker");
	arena_t *a = arena_new(4096);
	queue_job_t *jobs;
	int n, rescued = -1;

	(void)state;
	assert_int_equal(enqueue(db, "noop", 0, "rescue:1", 0), 0);
	assert_int_equal(enqueue(db, "noop", 0, "rescue:last", 1), 0);
	/* a worker claims both and dies */
	assert_int_equal(queue_claim(db, a, "itest-ghost", 10, 60, &jobs, &n), 0);
	assert_int_equal(n, 2);
	/* a live lease is left alone */
	assert_int_equal(queue_rescue(db, a, &rescued), 0);
	assert_int_equal(rescued, 0);
	itest_exec(wfix_owner(),
		   "UPDATE background_jobs SET locked_until = now() - interval '1 second' "
		   "WHERE locked_by = 'itest-ghost'",
		   0, NULL);
	assert_int_equal(queue_rescue(db, a, &rescued), 0);
	assert_int_equal(rescued, 2);
	/* the one with attempts left is queued again; the one at its last attempt is dead */
	assert_int_equal(
	    itest_i64(wfix_owner(),
		      "SELECT count(*) FROM background_jobs WHERE unique_key = 'rescue:1' "
		      "AND status = 'queued' AND locked_by IS NULL "
		      "AND last_error LIKE 'lease expired: worker itest-ghost%'",
		      0, NULL),
	    1);
	assert_int_equal(itest_i64(wfix_owner(),
				   "SELECT count(*) FROM background_jobs WHERE unique_key = "
				   "'rescue:last' AND status = 'dead'",
				   0, NULL),
			 1);
	/* the dead worker's late completion changes nothing now */
	assert_int_equal(queue_complete(db, a, "itest-ghost", &jobs[0].id, 1), 0);
	assert_int_equal(
	    itest_i64(wfix_owner(),
		      "SELECT count(*) FROM background_jobs WHERE unique_key = 'rescue:1' "
		      "AND status = 'queued'",
		      0, NULL),
	    1);
	assert_int_equal(run_batch(db, "itest-w2", 10), 1);
	assert_int_equal(
	    itest_i64(wfix_owner(),
		      "SELECT count(*) FROM background_jobs WHERE unique_key = 'rescue:1' "
		      "AND status = 'done' AND attempts = 2",
		      0, NULL),
	    1);
	arena_free(a);
	db_free(db);
}

/* First attempt: hang (the worker gets killed). Later attempts succeed. */
static int hang_once_handler(db_t *db, arena_t *a, const queue_job_t *job, const char **why)
{
	(void)db;
	(void)a;
	(void)why;
	if (job->attempts == 1)
		wfix_sleep_ms(60000);
	return 0;
}

static void test_worker_killed_mid_job_is_rescued(void **state)
{
	config_t cfg;
	db_t *db = wfix_db("itest-q-kill", "dialflow_worker");
	pid_t w1, w2;

	(void)state;
	assert_int_equal(queue_register_handler("itest_hang_once", hang_once_handler), 0);
	wfix_config(&cfg);
	cfg.queue_lease_s = 1;
	w1 = wfix_spawn_worker(&cfg, NULL);
	assert_int_equal(enqueue(db, "itest_hang_once", 0, "kill:1", 0), 0);
	assert_true(wfix_wait(1, 5000,
			      "SELECT count(*) FROM background_jobs WHERE kind = 'itest_hang_once' "
			      "AND status = 'running'",
			      0, NULL));
	assert_int_equal(wfix_stop(w1, SIGKILL, 5000), 128 + SIGKILL);
	/* another worker rescues it once the 1 s lease expired, and runs it to the end */
	w2 = wfix_spawn_worker(&cfg, NULL);
	assert_true(wfix_wait(1, 10000,
			      "SELECT count(*) FROM background_jobs WHERE kind = 'itest_hang_once' "
			      "AND status = 'done' AND attempts = 2",
			      0, NULL));
	assert_int_equal(wfix_stop(w2, SIGTERM, 5000), 0);
	db_free(db);
}

/* A call_log row of business b to phone with sid and status. */
static void call_log(int64_t b, const char *sid, const char *to, const char *status)
{
	char bid[24];

	ITEST_X(wfix_owner(),
		"INSERT INTO call_log (business_id, call_sid, direction, from_number, to_number, "
		"status) VALUES ($1::bigint, $2, 'outbound', '+15005550006', $3, $4)",
		itest_i64s(bid, sizeof(bid), b), sid, to, status);
}

static void test_lead_from_call(void **state)
{
	int64_t b = wfix_business(3);
	db_t *db = wfix_db("itest-q-lead", "dialflow_worker");
	arena_t *a = arena_new(4096);
	char bid[24], u[64], sid1[64], sid2[64], sid3[64];
	queue_job_t job;
	const char *why = NULL;
	int64_t lead;

	(void)state;
	itest_i64s(bid, sizeof(bid), b);
	snprintf(sid1, sizeof(sid1), "CAlead1%s", itest_unique(u, sizeof(u)));
	snprintf(sid2, sizeof(sid2), "CAlead2%s", itest_unique(u, sizeof(u)));
	snprintf(sid3, sizeof(sid3), "CAlead3%s", itest_unique(u, sizeof(u)));
	/* an answered call to a number with no lead: a new lead, source call, contacted */
	call_log(b, sid1, "+15557770001", "completed");
	memset(&job, 0, sizeof(job));
	job.id = 1;
	job.kind = "create_lead_from_call";
	job.attempts = 1;
	job.max_attempts = 5;
	job.payload = json_arena(a, json_pack("{s:s}", "call_sid", sid1));
	assert_int_equal(queue_lead_from_call(db, a, &job, &why), 0);
	lead = ITEST_I64(wfix_owner(),
			 "SELECT id FROM leads WHERE business_id = $1::bigint AND phone_e164 = "
			 "'+15557770001' AND source = 'call' AND status = 'contacted' "
			 "AND last_call_at IS NOT NULL",
			 bid);
	assert_int_equal(
	    ITEST_I64(wfix_owner(), "SELECT lead_id FROM call_log WHERE call_sid = $1", sid1),
	    lead);
	/* idempotent: again, the same single lead */
	assert_int_equal(queue_lead_from_call(db, a, &job, &why), 0);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM leads WHERE business_id = $1::bigint "
				   "AND phone_e164 = '+15557770001'",
				   bid),
			 1);

	/* an existing imported lead: touched, not re-sourced, a busy call does not promote it */
	ITEST_X(wfix_owner(),
		"INSERT INTO leads (business_id, phone_e164, source) VALUES ($1::bigint, "
		"'+15557770002', 'import')",
		bid);
	call_log(b, sid2, "+15557770002", "busy");
	job.payload = json_arena(a, json_pack("{s:s}", "call_sid", sid2));
	assert_int_equal(queue_lead_from_call(db, a, &job, &why), 0);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM leads WHERE business_id = $1::bigint "
				   "AND phone_e164 = '+15557770002' AND source = 'import' "
				   "AND status = 'new' AND last_call_at IS NOT NULL",
				   bid),
			 1);

	/* the same through the queue: enqueue with the call_sid only, a worker runs it */
	call_log(b, sid3, "+15557770003", "no-answer");
	{
		json_t *p = json_pack("{s:s}", "call_sid", sid3);

		assert_int_equal(db_begin(db), 0);
		assert_int_equal(queue_enqueue(db, a, "create_lead_from_call", b, p, NULL, 0), 0);
		assert_int_equal(db_commit(db), 0);
		json_decref(p);
	}
	assert_int_equal(run_batch(db, "itest-w", 10), 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM leads WHERE business_id = $1::bigint "
				   "AND phone_e164 = '+15557770003' AND status = 'new'",
				   bid),
			 1);

	/* no call_log row: a failure the queue retries, then keeps as dead */
	job.payload = json_arena(a, json_pack("{s:s}", "call_sid", "CAnosuchcall"));
	assert_true(queue_lead_from_call(db, a, &job, &why) < 0);
	assert_string_equal(why, "no call_log row for this call_sid");
	job.payload = json_arena(a, json_pack("{s:i}", "call_sid", 5));
	assert_int_equal(queue_lead_from_call(db, a, &job, &why), ERR_INVAL);
	arena_free(a);
	db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_enqueue_dedupe_and_notify, reset),
	    cmocka_unit_test_setup(test_enqueue_as_app_tenant, reset),
	    cmocka_unit_test_setup(test_claims_never_overlap, reset),
	    cmocka_unit_test_setup(test_retry_backoff_then_dead, reset),
	    cmocka_unit_test_setup(test_unknown_kind_fails, reset),
	    cmocka_unit_test_setup(test_rescue_expired_lease, reset),
	    cmocka_unit_test_setup(test_worker_killed_mid_job_is_rescued, reset),
	    cmocka_unit_test_setup(test_lead_from_call, reset),
	};

	itest_init();
	return cmocka_run_group_tests(tests, wfix_setup, wfix_teardown);
}

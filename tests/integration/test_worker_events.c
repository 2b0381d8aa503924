/*
 * test_worker_events.c - outbound_call_event() (src/outbound/callevents.c):
 * repeated and out-of-order callbacks never double count or move a finished
 * job; busy / no-answer retries up to the run's max_attempts; the final event
 * enqueues create_lead_from_call once, stamps the lead and NOTIFYs a free
 * slot; the webhook's path (dialflow_app, tenant-scoped) and RLS.
 */
#include "worker_fixture.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/outbound.h"
#include "dialflow/queue.h"

/* One live call: a running run, a job in calling with sid, its call_log row. */
typedef struct call {
	int64_t business_id;
	int64_t run_id;
	int64_t job_id;
	int64_t lead_id;
	char sid[64];
	char bid[24], rid[24], jid[24], lid[24];
} call_t;

static void live_call(call_t *c, int max_attempts, int retry_delay_s, int attempts)
{
	char u[64], phone[24], att[16];

	memset(c, 0, sizeof(*c));
	c->business_id = wfix_business(3);
	c->run_id = wfix_run(c->business_id, 1, 3, max_attempts, retry_delay_s, &phone);
	itest_i64s(c->bid, sizeof(c->bid), c->business_id);
	itest_i64s(c->rid, sizeof(c->rid), c->run_id);
	snprintf(c->sid, sizeof(c->sid), "CAev%s", itest_unique(u, sizeof(u)));
	snprintf(att, sizeof(att), "%d", attempts);
	itest_exec(wfix_owner(),
		   "UPDATE outbound_call_runs SET status = 'running' WHERE id = $1::bigint", 1,
		   (const char *[]){c->rid});
	c->job_id = ITEST_I64(wfix_owner(),
			      "UPDATE outbound_call_jobs SET status = 'calling', call_sid = $2, "
			      "attempts = $3::integer, dial_started_at = now() "
			      "WHERE run_id = $1::bigint RETURNING id",
			      c->rid, c->sid, att);
	c->lead_id =
	    ITEST_I64(wfix_owner(), "SELECT lead_id FROM outbound_call_jobs WHERE id = $1::bigint",
		      itest_i64s(c->jid, sizeof(c->jid), c->job_id));
	itest_i64s(c->lid, sizeof(c->lid), c->lead_id);
	ITEST_X(wfix_owner(),
		"INSERT INTO call_log (business_id, call_sid, to_number, from_number, status, "
		"lead_id, run_id, job_id) VALUES ($1::bigint, $2, $3, $4, 'initiated', $5::bigint, "
		"$6::bigint, $7::bigint)",
		c->bid, c->sid, phone, WFIX_CALLER_ID, c->lid, c->rid, c->jid);
}

static char *job_field(const call_t *c, const char *col)
{
	char sql[160];
	PGresult *r;
	char *v;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(%s::text, '-') FROM outbound_call_jobs "
		 "WHERE id = $1::bigint",
		 col);
	r = ITEST_Q(wfix_owner(), sql, c->jid);
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static char *log_field(const call_t *c, const char *col)
{
	char sql[160];
	PGresult *r;
	char *v;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(%s::text, '-') FROM call_log WHERE job_id = "
		 "$1::bigint ORDER BY id LIMIT 1",
		 col);
	r = ITEST_Q(wfix_owner(), sql, c->jid);
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

#define ASSERT_JOB(c, col, want)                                                                   \
	do {                                                                                       \
		char *v_ = job_field((c), (col));                                                  \
		if (strcmp(v_, (want)) != 0) {                                                     \
			print_error("job %s = %s, want %s\n", (col), v_, (want));                  \
			free(v_);                                                                  \
			fail();                                                                    \
		}                                                                                  \
		free(v_);                                                                          \
	} while (0)
#define ASSERT_LOG(c, col, want)                                                                   \
	do {                                                                                       \
		char *v_ = log_field((c), (col));                                                  \
		if (strcmp(v_, (want)) != 0) {                                                     \
			print_error("call_log %s = %s, want %s\n", (col), v_, (want));             \
			free(v_);                                                                  \
			fail();                                                                    \
		}                                                                                  \
		free(v_);                                                                          \
	} while (0)

static bool emit(db_t *db, const char *sid, const char *status, int duration)
{
	bool changed = true;

	assert_int_equal(fake_provider_emit(db, sid, status, duration, &changed), 0);
	return changed;
}

static int64_t lead_jobs(const call_t *c)
{
	char key[96];

	snprintf(key, sizeof(key), "lead_from_call:%s", c->sid);
	return ITEST_I64(
	    wfix_owner(),
	    "SELECT count(*) FROM background_jobs WHERE kind = 'create_lead_from_call' "
	    "AND unique_key = $1 AND payload = jsonb_build_object('call_sid', $2::text) "
	    "AND business_id = $3::bigint",
	    key, c->sid, c->bid);
}

/* Wait (bounded) for a NOTIFY on listener; returns whether `payload` arrived. */
static bool notified(PGconn *listener, const char *payload)
{
	struct pollfd pf = {.fd = PQsocket(listener), .events = POLLIN};
	PGnotify *n;
	bool seen = false;

	while (!seen && poll(&pf, 1, 500) > 0 && PQconsumeInput(listener)) {
		while ((n = PQnotifies(listener)) != NULL) {
			seen = seen || strcmp(n->extra, payload) == 0;
			PQfreemem(n);
		}
	}
	return seen;
}

static void test_progress_then_final_once(void **state)
{
	db_t *db = wfix_db("itest-ev-final", "dialflow_worker");
	PGconn *listener = itest_pg_connect(wfix_url());
	char slot[48];
	call_t c;

	(void)state;
	live_call(&c, 1, 0, 1);
	itest_exec(listener, "LISTEN " QUEUE_CHANNEL, 0, NULL);
	assert_true(emit(db, c.sid, "ringing", -1));
	ASSERT_LOG(&c, "status", "ringing");
	ASSERT_JOB(&c, "call_status", "ringing");
	ASSERT_JOB(&c, "status", "calling");
	/* "answered" is accepted as in-progress */
	assert_true(emit(db, c.sid, "answered", -1));
	ASSERT_LOG(&c, "status", "in-progress");
	assert_int_equal(lead_jobs(&c), 0);

	assert_true(emit(db, c.sid, "completed", 42));
	ASSERT_JOB(&c, "status", "completed");
	ASSERT_JOB(&c, "error_code", "-");
	ASSERT_LOG(&c, "status", "completed");
	ASSERT_LOG(&c, "duration", "42");
	assert_int_equal(lead_jobs(&c), 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM leads WHERE id = $1::bigint "
				   "AND last_call_at IS NOT NULL",
				   c.lid),
			 1);
	snprintf(slot, sizeof(slot), "slot:%s", c.bid);
	assert_true(notified(listener, slot));

	/* repeated and late callbacks: nothing moves, nothing is counted again */
	assert_false(emit(db, c.sid, "completed", 99));
	assert_false(emit(db, c.sid, "ringing", -1));
	assert_false(emit(db, c.sid, "in-progress", -1));
	assert_false(emit(db, c.sid, "busy", -1));
	assert_false(emit(db, c.sid, "failed", -1));
	ASSERT_JOB(&c, "status", "completed");
	ASSERT_JOB(&c, "call_status", "completed");
	ASSERT_LOG(&c, "status", "completed");
	ASSERT_LOG(&c, "duration", "42");
	assert_int_equal(lead_jobs(&c), 1);
	PQfinish(listener);
	db_free(db);
}

static void test_out_of_order(void **state)
{
	db_t *db = wfix_db("itest-ev-order", "dialflow_worker");
	call_t c, d;

	(void)state;
	/* in-progress before ringing: the late ringing changes nothing */
	live_call(&c, 1, 0, 1);
	assert_true(emit(db, c.sid, "in-progress", -1));
	assert_false(emit(db, c.sid, "ringing", -1));
	assert_false(emit(db, c.sid, "initiated", -1));
	ASSERT_LOG(&c, "status", "in-progress");
	ASSERT_JOB(&c, "call_status", "in-progress");

	/* the final status first, the progress after: the job stays finished */
	live_call(&d, 1, 0, 1);
	assert_true(emit(db, d.sid, "no-answer", 0));
	assert_false(emit(db, d.sid, "ringing", -1));
	assert_false(emit(db, d.sid, "in-progress", -1));
	ASSERT_JOB(&d, "status", "failed");
	ASSERT_JOB(&d, "error_code", "no-answer");
	ASSERT_JOB(&d, "error_message", "Call ended with status: no-answer");
	ASSERT_LOG(&d, "status", "no-answer");
	assert_int_equal(lead_jobs(&d), 1);
	db_free(db);
}

static void test_busy_retries_until_max_attempts(void **state)
{
	db_t *db = wfix_db("itest-ev-retry", "dialflow_worker");
	char u[64], sid2[64], sid3[64];
	call_t c;

	(void)state;
	live_call(&c, 3, 120, 1);
	assert_true(emit(db, c.sid, "busy", 0));
	/* back in the queue for a later attempt; the call stays in call_log */
	ASSERT_JOB(&c, "status", "queued");
	ASSERT_JOB(&c, "call_sid", "-");
	ASSERT_JOB(&c, "error_code", "busy");
	ASSERT_JOB(&c, "completed_at", "-");
	ASSERT_LOG(&c, "status", "busy");
	ASSERT_LOG(&c, "call_sid", c.sid);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
				   "AND next_attempt_at BETWEEN now() + interval '110 seconds' "
				   "AND now() + interval '130 seconds'",
				   c.jid),
			 1);
	assert_int_equal(lead_jobs(&c), 1);
	/* the old call's late callbacks no longer reach the job */
	assert_false(emit(db, c.sid, "busy", 0));
	ASSERT_JOB(&c, "status", "queued");

	/* attempt 2: no-answer, retried again */
	snprintf(sid2, sizeof(sid2), "CAev2%s", itest_unique(u, sizeof(u)));
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_jobs SET status = 'calling', call_sid = $2, attempts = 2 "
		"WHERE id = $1::bigint",
		c.jid, sid2);
	assert_true(emit(db, sid2, "no-answer", 0));
	ASSERT_JOB(&c, "status", "queued");
	/* attempt 3 of 3: busy is final now */
	snprintf(sid3, sizeof(sid3), "CAev3%s", itest_unique(u, sizeof(u)));
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_jobs SET status = 'calling', call_sid = $2, attempts = 3 "
		"WHERE id = $1::bigint",
		c.jid, sid3);
	assert_true(emit(db, sid3, "busy", 0));
	ASSERT_JOB(&c, "status", "failed");
	ASSERT_JOB(&c, "call_sid", sid3);
	ASSERT_JOB(&c, "error_code", "busy");
	db_free(db);
}

static void test_no_retry_when_cancelled_or_failed(void **state)
{
	db_t *db = wfix_db("itest-ev-noretry", "dialflow_worker");
	call_t c, d, e;

	(void)state;
	/* a cancel stops retries */
	live_call(&c, 3, 0, 1);
	itest_exec(wfix_owner(),
		   "UPDATE outbound_call_runs SET cancel_requested = true WHERE id = $1::bigint", 1,
		   (const char *[]){c.rid});
	assert_true(emit(db, c.sid, "busy", 0));
	ASSERT_JOB(&c, "status", "failed");
	/* failed is not retryable; the provider's code and message are kept */
	live_call(&d, 3, 0, 1);
	{
		arena_t *a = arena_new(1024);
		bool changed = false;

		assert_int_equal(db_begin(db), 0);
		assert_int_equal(outbound_call_event(db, a, d.sid, "failed", 0, "32009",
						     "Carrier rejected the call", &changed),
				 0);
		assert_int_equal(db_commit(db), 0);
		assert_true(changed);
		arena_free(a);
	}
	ASSERT_JOB(&d, "status", "failed");
	ASSERT_JOB(&d, "error_code", "32009");
	ASSERT_JOB(&d, "error_message", "Carrier rejected the call");
	ASSERT_LOG(&d, "error_code", "32009");
	/* canceled by the provider: the job is cancelled */
	live_call(&e, 3, 0, 1);
	assert_true(emit(db, e.sid, "canceled", 0));
	ASSERT_JOB(&e, "status", "cancelled");
	ASSERT_LOG(&e, "status", "canceled");
	db_free(db);
}

static void test_unknown_sid_and_status(void **state)
{
	db_t *db = wfix_db("itest-ev-unknown", "dialflow_worker");
	call_t c;

	(void)state;
	live_call(&c, 1, 0, 1);
	assert_false(emit(db, "CAnosuchcall", "completed", 5));
	assert_false(emit(db, c.sid, "exploded", 5));
	assert_false(emit(db, c.sid, "", 5));
	ASSERT_JOB(&c, "status", "calling");
	ASSERT_LOG(&c, "status", "initiated");
	db_free(db);
}

/* The webhook's path: dialflow_app scoped to the call's tenant; another tenant sees nothing. */
static void test_as_app_under_rls(void **state)
{
	db_t *db = wfix_db("itest-ev-app", ITEST_APP_ROLE);
	arena_t *a = arena_new(4096);
	bool changed = true;
	int64_t other = wfix_business(3);
	call_t c;

	(void)state;
	live_call(&c, 1, 0, 1);
	/* the wrong tenant: RLS hides the call, nothing changes, no error */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_set_tenant(db, a, other, false), 0);
	assert_int_equal(outbound_call_event(db, a, c.sid, "completed", 3, NULL, NULL, &changed),
			 0);
	assert_int_equal(db_commit(db), 0);
	assert_false(changed);
	ASSERT_JOB(&c, "status", "calling");
	/* its own tenant */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_set_tenant(db, a, c.business_id, false), 0);
	assert_int_equal(outbound_call_event(db, a, c.sid, "completed", 3, NULL, NULL, &changed),
			 0);
	assert_int_equal(db_commit(db), 0);
	assert_true(changed);
	ASSERT_JOB(&c, "status", "completed");
	assert_int_equal(lead_jobs(&c), 1);
	arena_free(a);
	db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_progress_then_final_once),
	    cmocka_unit_test(test_out_of_order),
	    cmocka_unit_test(test_busy_retries_until_max_attempts),
	    cmocka_unit_test(test_no_retry_when_cancelled_or_failed),
	    cmocka_unit_test(test_unknown_sid_and_status),
	    cmocka_unit_test(test_as_app_under_rls),
	};

	itest_init();
	return cmocka_run_group_tests(tests, wfix_setup, wfix_teardown);
}

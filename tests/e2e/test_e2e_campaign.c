/*
 * test_e2e_campaign.c - outbound campaigns end to end, through nginx, with the
 * real worker and the sandbox carrier (dialflow-sandbox, which speaks the
 * Twilio REST API and posts signed status callbacks back through nginx):
 *
 *   - import 50 leads, run them, watch the run complete, never above the
 *     concurrency limit, every lead dialled exactly once;
 *   - kill -9 the worker mid-run, start another: the run resumes after the
 *     stale threshold and no lead is dialled twice;
 *   - force-cancel with live calls: they are hung up through the provider;
 *   - PostgreSQL restarts mid-run: the run still completes, no double dial.
 *
 * The sandbox's view of the calls (GET $DIALFLOW_TEST_SANDBOX_URL/__sandbox/calls)
 * is the ground truth for "dialled": it is what the carrier saw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

#define RUN_WAIT_MS 90000

typedef struct campaign {
	int64_t business_id;
	e2e_user_t owner;
	char prefix[32]; /* unique digits: every lead's number starts +1555<prefix> */
	int64_t run_id;
} campaign_t;

/* Run one statement on the test database as the owner (fixtures the API has no endpoint for). */
static void owner_exec(const char *sql, const char *p1)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {e2e_env_required("DIALFLOW_TEST_DATABASE_URL"), "5", NULL};
	const char *params[1] = {p1};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r = NULL;

	if (PQstatus(c) != CONNECTION_OK) {
		print_error("owner connect: %s\n", PQerrorMessage(c));
		PQfinish(c);
		fail();
	}
	r = PQexecParams(c, sql, p1 ? 1 : 0, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		print_error("owner exec: %s\n", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		fail();
	}
	PQclear(r);
	PQfinish(c);
}

/* A business that may call right now, with an owner and n leads imported as one list. */
static int64_t campaign_setup(campaign_t *cp, int nleads, int max_calls)
{
	char bid[32], maxs[16], *body;
	size_t cap = (size_t)nleads * 64 + 64, len = 0;
	json_int_t list_id = 0;
	e2e_resp_t r;

	memset(cp, 0, sizeof(*cp));
	cp->business_id = e2e_business_create("campaign", "calls_outbound", NULL);
	e2e_user_create(&cp->owner, cp->business_id, "owner");
	snprintf(bid, sizeof(bid), "%lld", (long long)cp->business_id);
	snprintf(maxs, sizeof(maxs), "%d", max_calls);
	/* open the calling window all day and allow max_calls in flight */
	owner_exec("UPDATE businesses SET calling_window_start = '00:00', "
		   "calling_window_end = '23:59:59', caller_id = '+15005550006' "
		   "WHERE id = $1::bigint",
		   bid);
	{
		char sql[160];

		snprintf(sql, sizeof(sql),
			 "UPDATE businesses SET max_concurrent_calls = %d WHERE id = $1::bigint",
			 max_calls);
		owner_exec(sql, bid);
	}
	/* numbers unique to this business: +1 555 PPPP NNN, with PPPP (from the business id)
	 * starting 2-9, as a NANP exchange code must */
	snprintf(cp->prefix, sizeof(cp->prefix), "%04lld",
		 (long long)(2000 + cp->business_id % 8000));
	body = malloc(cap);
	assert_non_null(body);
	len += (size_t)snprintf(body + len, cap - len, "{\"list_name\":\"e2e\",\"rows\":[");
	for (int i = 0; i < nleads; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"phone\":\"+1555%s%03d\",\"name\":\"Lead %d\"}",
					i ? "," : "", cp->prefix, i, i);
	snprintf(body + len, cap - len, "]}");
	r = e2e_raw_json("POST", "/api/leads/import", cp->owner.token, body);
	free(body);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "imported", nleads);
	E2E_TRUE(r, e2e_jint(r.json, "list_id", &list_id) && list_id > 0, "no list_id");
	e2e_resp_free(&r);
	return (int64_t)list_id;
}

static void campaign_start(campaign_t *cp, int64_t list_id, int concurrency)
{
	char body[128];
	json_int_t id = 0;
	e2e_resp_t r;

	snprintf(body, sizeof(body), "{\"list_id\":%lld,\"concurrency\":%d}", (long long)list_id,
		 concurrency);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", cp->owner.token, body);
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &id) && id > 0, "no run.id");
	cp->run_id = id;
	e2e_resp_free(&r);
}

/* GET the run; returns its JSON (new reference). */
static json_t *run_get(const campaign_t *cp)
{
	char path[96];
	e2e_resp_t r;
	json_t *run;

	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld", (long long)cp->run_id);
	r = e2e_get(path, cp->owner.token, NULL);
	E2E_STATUS(r, 200);
	run = json_incref(e2e_jget(r.json, "run"));
	e2e_resp_free(&r);
	assert_non_null(run);
	return run;
}

/* An integer field of the run (progress_pct is a JSON real: read any number). */
static json_int_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? (json_int_t)(json_number_value(v) + 0.5) : -1;
}

/*
 * Poll the run until `pred` holds (or it ends), checking on every sample that
 * in-flight calls never exceed `limit`. Returns the last run JSON.
 */
static json_t *run_wait(const campaign_t *cp, int limit, bool (*pred)(json_t *), int timeout_ms)
{
	double deadline = e2e_now_ms() + timeout_ms;
	json_t *run = NULL;

	for (;;) {
		json_decref(run);
		run = run_get(cp);
		if (jint(run, "in_progress") > limit) {
			print_error("in_progress %lld above the limit %d\n",
				    (long long)jint(run, "in_progress"), limit);
			json_decref(run);
			fail();
		}
		if (pred(run))
			return run;
		if (e2e_now_ms() > deadline) {
			char *s = json_dumps(run, JSON_COMPACT);

			print_error("run did not get there in %d ms: %s\n", timeout_ms, s);
			free(s);
			json_decref(run);
			fail();
		}
		e2e_sleep_ms(100);
	}
}

static bool is_ended(json_t *run)
{
	const char *s = json_string_value(json_object_get(run, "status"));

	return s != NULL && strcmp(s, "pending") != 0 && strcmp(s, "running") != 0;
}

static bool some_done(json_t *run)
{
	return jint(run, "completed") + jint(run, "failed") >= 6 || is_ended(run);
}

static bool some_live(json_t *run)
{
	return jint(run, "in_progress") >= 2 || is_ended(run);
}

/*
 * How many times the carrier was asked to call each of this campaign's
 * numbers: counts[i] for +1555<prefix><i>. Also counts hung-up calls.
 */
static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0;
	char *nb = realloc(*buf, old + size * n + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + old, p, size * n);
	nb[old + size * n] = '\0';
	*buf = nb;
	return size * n;
}

/*
 * How many times the carrier was asked to call each of this campaign's
 * numbers: counts[i] for +1555<prefix><i>; *hungup counts the calls that were
 * hung up through the API (Status=completed while live).
 */
static void sandbox_counts(const campaign_t *cp, int n, int *counts, int *hungup)
{
	char url[512], want[48], *body = NULL;
	CURL *h = curl_easy_init();
	json_t *root, *calls, *c;
	long status = 0;
	size_t i;

	assert_non_null(h);
	memset(counts, 0, sizeof(int) * (size_t)n);
	*hungup = 0;
	snprintf(url, sizeof(url), "%s/__sandbox/calls",
		 e2e_env_required("DIALFLOW_TEST_SANDBOX_URL"));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, E2E_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	assert_int_equal(status, 200);
	root = json_loads(body ? body : "", 0, NULL);
	free(body);
	assert_non_null(root);
	calls = json_is_array(root) ? root : json_object_get(root, "calls");
	assert_true(json_is_array(calls));
	snprintf(want, sizeof(want), "+1555%s", cp->prefix);
	json_array_foreach(calls, i, c)
	{
		const char *to = json_string_value(json_object_get(c, "to"));
		int k;

		if (to == NULL)
			to = json_string_value(json_object_get(c, "To"));
		if (to == NULL || strncmp(to, want, strlen(want)) != 0 || strlen(to) != 12)
			continue;
		k = atoi(to + 9);
		if (k >= 0 && k < n)
			counts[k]++;
		if (json_is_true(json_object_get(c, "hangup_requested")) ||
		    json_is_true(json_object_get(c, "hung_up")))
			(*hungup)++;
	}
	json_decref(root);
}

static void expect_no_double_dial(const campaign_t *cp, int n, int *dialled_out)
{
	int *counts = calloc((size_t)n, sizeof(int)), hungup, dialled = 0, twice = -1, times = 0;

	assert_non_null(counts);
	sandbox_counts(cp, n, counts, &hungup);
	for (int i = 0; i < n; i++) {
		if (counts[i] > 1 && twice < 0) {
			twice = i;
			times = counts[i];
		}
		dialled += counts[i];
	}
	free(counts);
	if (twice >= 0) {
		print_error("lead %d was dialled %d times\n", twice, times);
		fail();
	}
	if (dialled_out)
		*dialled_out = dialled;
}

static int group_setup(void **state)
{
	return e2e_global_setup(state);
}

static int group_teardown(void **state)
{
	return e2e_global_teardown(state);
}

static void test_fifty_leads_complete(void **state)
{
	campaign_t cp;
	json_t *run;
	int dialled = 0;

	(void)state;
	int64_t list = campaign_setup(&cp, 50, 10);
	campaign_start(&cp, list, 10);
	run = run_wait(&cp, 10, is_ended, RUN_WAIT_MS);
	assert_string_equal(json_string_value(json_object_get(run, "status")), "completed");
	assert_int_equal(jint(run, "total"), 50);
	assert_int_equal(jint(run, "queued"), 0);
	assert_int_equal(jint(run, "in_progress"), 0);
	assert_int_equal(jint(run, "completed") + jint(run, "failed"), 50);
	assert_int_equal(jint(run, "progress_pct"), 100);
	json_decref(run);
	expect_no_double_dial(&cp, 50, &dialled);
	assert_int_equal(dialled, 50);
	e2e_user_free(&cp.owner);
}

/* Start one more worker from the same build, with the stack's settings; record its pid
 * in the stack's pidfile so the harness stops it. */
static pid_t worker_spawn(void)
{
	const char *admin = e2e_env_required("DIALFLOW_ADMIN_BIN");
	const char *pidfile = e2e_env_required("DIALFLOW_TEST_WORKER_PIDFILE");
	const char *slash = strrchr(admin, '/');
	char bin[4096], logpath[4200];
	pid_t pid;
	FILE *f;

	snprintf(bin, sizeof(bin), "%.*s/dialflow-worker", (int)(slash - admin), admin);
	snprintf(logpath, sizeof(logpath), "%s/log/worker.log",
		 e2e_env_required("DIALFLOW_TEST_STACK_DIR"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* it outlives this test: never hold the test's stdout (the TAP pipe) */
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		setsid();
		setenv("DIALFLOW_LOG_FILE", logpath, 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	f = fopen(pidfile, "w");
	assert_non_null(f);
	fprintf(f, "%ld\n", (long)pid);
	fclose(f);
	return pid;
}

static pid_t worker_pid(void)
{
	FILE *f = fopen(e2e_env_required("DIALFLOW_TEST_WORKER_PIDFILE"), "r");
	long pid = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	return (pid_t)pid;
}

static void test_worker_killed_mid_run_resumes(void **state)
{
	campaign_t cp;
	json_t *run;
	pid_t old;
	int dialled = 0;

	(void)state;
	int64_t list = campaign_setup(&cp, 30, 5);
	campaign_start(&cp, list, 5);
	run = run_wait(&cp, 5, some_done, RUN_WAIT_MS);
	json_decref(run);
	old = worker_pid();
	assert_int_equal(kill(old, SIGKILL), 0);
	/* our child when a previous test spawned it; otherwise the harness's */
	(void)waitpid(old, NULL, WNOHANG);
	worker_spawn();
	run = run_wait(&cp, 5, is_ended, RUN_WAIT_MS);
	assert_string_equal(json_string_value(json_object_get(run, "status")), "completed");
	/* every job ended; the ones caught dialling without a call id failed (worker_lost) */
	assert_int_equal(jint(run, "completed") + jint(run, "failed"), 30);
	json_decref(run);
	expect_no_double_dial(&cp, 30, &dialled);
	assert_true(dialled <= 30);
	e2e_user_free(&cp.owner);
}

static void test_force_cancel_hangs_up_live_calls(void **state)
{
	campaign_t cp;
	json_t *run;
	char path[128];
	json_int_t hang = 0, cancelled = 0;
	e2e_resp_t r;
	int *counts = calloc(20, sizeof(int)), hungup = 0;
	double deadline;

	(void)state;
	assert_non_null(counts);
	int64_t list = campaign_setup(&cp, 20, 4);
	campaign_start(&cp, list, 4);
	run = run_wait(&cp, 4, some_live, RUN_WAIT_MS);
	json_decref(run);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel",
		 (long long)cp.run_id);
	r = e2e_req("POST", path, cp.owner.token, NULL, NULL, 0, NULL);
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "run.status", "cancelled");
	E2E_TRUE(r, e2e_jint(r.json, "calls_hangup_requested", &hang), "no calls_hangup_requested");
	E2E_TRUE(r, e2e_jint(r.json, "jobs_cancelled", &cancelled), "no jobs_cancelled");
	e2e_resp_free(&r);
	/* the carrier sees the hang-ups within about a second */
	deadline = e2e_now_ms() + 3000;
	do {
		sandbox_counts(&cp, 20, counts, &hungup);
		if (hungup >= hang)
			break;
		e2e_sleep_ms(100);
	} while (e2e_now_ms() < deadline);
	free(counts);
	if (hungup < hang) {
		print_error("%d of %lld live calls hung up\n", hungup, (long long)hang);
		fail();
	}
	/* idempotent */
	r = e2e_req("POST", path, cp.owner.token, NULL, NULL, 0, NULL);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "jobs_cancelled", 0);
	e2e_resp_free(&r);
	e2e_user_free(&cp.owner);
}

static void test_postgres_restart_mid_run(void **state)
{
	campaign_t cp;
	json_t *run;
	int dialled = 0;

	(void)state;
	int64_t list = campaign_setup(&cp, 30, 5);
	campaign_start(&cp, list, 5);
	run = run_wait(&cp, 5, some_done, RUN_WAIT_MS);
	json_decref(run);
	assert_int_equal(system(e2e_env_required("DIALFLOW_TEST_PG_STOP")), 0);
	e2e_sleep_ms(1000);
	assert_int_equal(system(e2e_env_required("DIALFLOW_TEST_PG_START")), 0);
	run = run_wait(&cp, 5, is_ended, RUN_WAIT_MS);
	assert_string_equal(json_string_value(json_object_get(run, "status")), "completed");
	assert_int_equal(jint(run, "completed") + jint(run, "failed"), 30);
	json_decref(run);
	expect_no_double_dial(&cp, 30, &dialled);
	e2e_user_free(&cp.owner);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifty_leads_complete),
	    cmocka_unit_test(test_worker_killed_mid_run_resumes),
	    cmocka_unit_test(test_force_cancel_hangs_up_live_calls),
	    cmocka_unit_test(test_postgres_restart_mid_run),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

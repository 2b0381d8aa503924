/*
 * test_e2e_voice_script.c - a `gather` call script end to end, through nginx,
 * with the real worker and the sandbox carrier executing the TwiML the voice
 * webhook answers (issue 7):
 *
 *   - a gather script ("press 1 to talk to us, 2 to stop calls", bridged to an
 *     agent number with a whisper) runs over 12 leads whose names need XML
 *     escaping; every call is answered; the sandbox presses 1 for half of the
 *     numbers and 2 for the others (its rules, POST /__sandbox/rules, keyed by
 *     number prefix, so no other test's calls change);
 *   - the run completes; every answered job shows the digit its callee
 *     pressed; the ones who pressed 1 were bridged (the carrier saw a <Dial>,
 *     fetched the whisper and talked), the ones who pressed 2 heard a goodbye,
 *     were hung up and are do_not_call now; no TwiML was malformed; the call
 *     log lists every call of the run.
 *
 * The sandbox's view of the calls (GET $DIALFLOW_TEST_SANDBOX_URL/__sandbox/calls)
 * is the ground truth for what the carrier did.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define RUN_WAIT_MS 90000
#define NLEADS	    12
#define BRIDGE_TO   "+15552010000" /* an agent; exchange 201 */

/* Lead i's number suffix: 000-005 press 1 (rule "...00"), 010-015 press 2 (rule "...01"). */
static int lead_suffix(int i)
{
	return i < NLEADS / 2 ? i : 10 + (i - NLEADS / 2);
}

static char expected_digit(int suffix)
{
	return suffix < 10 ? '1' : '2';
}

typedef struct voice_fx {
	int64_t business_id;
	e2e_user_t owner;
	char prefix[16]; /* every lead's number is +1555<prefix><NNN> */
	int64_t list_id, script_id, run_id;
} voice_fx_t;

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

/* --- the sandbox's own endpoints (plain HTTP on loopback) ------------------ */

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

/* GET (form NULL) or POST a form to the sandbox; returns the JSON answer (new reference). */
static json_t *sandbox_req(const char *path, const char *form, long want_status)
{
	char url[512], *body = NULL;
	CURL *h = curl_easy_init();
	long status = 0;
	json_t *root;

	assert_non_null(h);
	snprintf(url, sizeof(url), "%s%s", e2e_env_required("DIALFLOW_TEST_SANDBOX_URL"), path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, E2E_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (form != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (status != want_status) {
		print_error("sandbox %s: HTTP %ld, expected %ld: %s\n", path, status, want_status,
			    body ? body : "");
		free(body);
		fail();
	}
	root = json_loads(body ? body : "", 0, NULL);
	free(body);
	assert_non_null(root);
	return root;
}

/* Calls to numbers starting +1555<prefix><suffix3>, keyed by the whole number. */
static void sandbox_rule(const voice_fx_t *fx, const char *sub, const char *digits)
{
	char form[256];
	json_t *r;

	/* %2B: the prefix's '+' */
	snprintf(form, sizeof(form),
		 "prefix=%%2B1555%s%s&answer_pct=100&busy_pct=0&noanswer_pct=0&fail_pct=0&"
		 "machine_pct=0&digits=%s",
		 fx->prefix, sub, digits);
	r = sandbox_req("/__sandbox/rules", form, 200);
	json_decref(r);
}

/* --- fixtures ------------------------------------------------------------- */

static void fx_setup(voice_fx_t *fx)
{
	char bid[32], *body;
	size_t cap = NLEADS * 96 + 64, len = 0;
	json_int_t id = 0;
	e2e_resp_t r;

	memset(fx, 0, sizeof(*fx));
	fx->business_id = e2e_business_create("voice", "calls_outbound", NULL);
	e2e_user_create(&fx->owner, fx->business_id, "owner");
	snprintf(bid, sizeof(bid), "%lld", (long long)fx->business_id);
	owner_exec("UPDATE businesses SET calling_window_start = '00:00', "
		   "calling_window_end = '23:59:59', caller_id = '+15005550006', "
		   "max_concurrent_calls = 6 WHERE id = $1::bigint",
		   bid);
	/* a NANP exchange code 2-9, from the business id: unique to this business */
	snprintf(fx->prefix, sizeof(fx->prefix), "%04lld",
		 (long long)(2000 + fx->business_id % 8000));
	body = malloc(cap);
	assert_non_null(body);
	len += (size_t)snprintf(body + len, cap - len, "{\"list_name\":\"voice\",\"rows\":[");
	for (int i = 0; i < NLEADS; i++)
		/* names the TwiML must escape: the carrier refuses malformed XML */
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"phone\":\"+1555%s%03d\",\"name\":\"O'Brien <&> "
					"\\\"%d\\\"\"}",
					i ? "," : "", fx->prefix, lead_suffix(i), i);
	snprintf(body + len, cap - len, "]}");
	r = e2e_raw_json("POST", "/api/leads/import", fx->owner.token, body);
	free(body);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "imported", NLEADS);
	E2E_TRUE(r, e2e_jint(r.json, "list_id", &id) && id > 0, "no list_id");
	fx->list_id = id;
	e2e_resp_free(&r);

	r = e2e_raw_json(
	    "POST", "/api/outbound_calls/scripts", fx->owner.token,
	    "{\"name\":\"e2e gather\",\"kind\":\"gather\",\"text\":\"Hello {{ lead.name "
	    "}}. Press 1 to talk to us, or 2 to stop these calls.\",\"bridge_to\":\"" BRIDGE_TO
	    "\",\"options\":{\"whisper\":\"A lead pressed one.\"}}");
	E2E_STATUS(r, 201);
	E2E_JSTR_EQ(r, "script.kind", "gather");
	E2E_TRUE(r, e2e_jint(r.json, "script.id", &id) && id > 0, "no script.id");
	fx->script_id = id;
	e2e_resp_free(&r);
}

static void run_start(voice_fx_t *fx)
{
	char body[160];
	json_int_t id = 0;
	e2e_resp_t r;

	snprintf(body, sizeof(body), "{\"list_id\":%lld,\"concurrency\":6,\"script_id\":%lld}",
		 (long long)fx->list_id, (long long)fx->script_id);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", fx->owner.token, body);
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &id) && id > 0, "no run.id");
	fx->run_id = id;
	e2e_resp_free(&r);
}

static json_int_t jnum(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? (json_int_t)(json_number_value(v) + 0.5) : -1;
}

/* Poll the run until it ends; returns its JSON (new reference). */
static json_t *run_wait_ended(const voice_fx_t *fx)
{
	double deadline = e2e_now_ms() + RUN_WAIT_MS;
	char path[96];

	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld", (long long)fx->run_id);
	for (;;) {
		e2e_resp_t r = e2e_get(path, fx->owner.token, NULL);
		json_t *run;
		const char *st;

		E2E_STATUS(r, 200);
		run = json_incref(e2e_jget(r.json, "run"));
		e2e_resp_free(&r);
		assert_non_null(run);
		st = json_string_value(json_object_get(run, "status"));
		if (st != NULL && strcmp(st, "pending") != 0 && strcmp(st, "running") != 0)
			return run;
		if (e2e_now_ms() > deadline) {
			char *s = json_dumps(run, JSON_COMPACT);

			print_error("run did not end in %d ms: %s\n", RUN_WAIT_MS, s);
			free(s);
			json_decref(run);
			fail();
		}
		json_decref(run);
		e2e_sleep_ms(200);
	}
}

/* The suffix NNN of one of this fixture's numbers, or -1. */
static int suffix_of(const voice_fx_t *fx, const char *phone)
{
	char want[48];

	snprintf(want, sizeof(want), "+1555%s", fx->prefix);
	if (phone == NULL || strlen(phone) != 12 || strncmp(phone, want, strlen(want)) != 0)
		return -1;
	return atoi(phone + 9);
}

/* The sandbox's record of the call with this sid, or NULL (borrowed from calls). */
static json_t *sandbox_find(json_t *calls, const char *sid)
{
	size_t i;
	json_t *c;

	json_array_foreach(calls, i, c)
	{
		const char *s = json_string_value(json_object_get(c, "sid"));

		if (s != NULL && sid != NULL && strcmp(s, sid) == 0)
			return c;
	}
	return NULL;
}

static bool verbs_have(json_t *call, const char *verb)
{
	return e2e_jarray_has_str(json_object_get(call, "verbs"), verb);
}

static int group_setup(void **state)
{
	return e2e_global_setup(state);
}

static int group_teardown(void **state)
{
	return e2e_global_teardown(state);
}

static void test_gather_run_bridges_and_opts_out(void **state)
{
	voice_fx_t fx;
	json_t *run, *sbx, *calls, *jobs, *j, *leads, *l;
	char path[160], err[512] = "";
	int dialled[NLEADS] = {0}, pressed1 = 0, pressed2 = 0;
	size_t i;
	e2e_resp_t r;

	(void)state;
	fx_setup(&fx);
	sandbox_rule(&fx, "00", "1:100,2:0,none:0");
	sandbox_rule(&fx, "01", "1:0,2:100,none:0");
	run_start(&fx);
	run = run_wait_ended(&fx);
	assert_string_equal(json_string_value(json_object_get(run, "status")), "completed");
	assert_int_equal(jnum(run, "total"), NLEADS);
	assert_int_equal(jnum(run, "completed") + jnum(run, "failed"), NLEADS);
	json_decref(run);

	/* what the carrier did, call by call */
	sbx = sandbox_req("/__sandbox/calls", NULL, 200);
	calls = json_object_get(sbx, "calls");
	assert_true(json_is_array(calls));
	json_array_foreach(calls, i, j)
	{
		int k = suffix_of(&fx, json_string_value(json_object_get(j, "to")));

		if (k < 0)
			continue;
		for (int n = 0; n < NLEADS; n++)
			if (lead_suffix(n) == k)
				dialled[n]++;
		if (!json_is_null(json_object_get(j, "twiml_error")) && err[0] == '\0')
			snprintf(err, sizeof(err), "call to ...%03d: application error: %s", k,
				 json_string_value(json_object_get(j, "twiml_error")));
	}
	if (err[0] != '\0') {
		print_error("%s\n", err);
		fail();
	}
	for (int n = 0; n < NLEADS; n++) {
		if (dialled[n] != 1) {
			print_error("lead ...%03d dialled %d times\n", lead_suffix(n), dialled[n]);
			fail();
		}
	}

	/* every job: answered, the digit its callee pressed; the carrier agrees */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/jobs?page_size=100",
		 (long long)fx.run_id);
	r = e2e_get(path, fx.owner.token, NULL);
	E2E_LIST(r, 1, 100);
	jobs = e2e_jget(r.json, "items");
	E2E_TRUE(r, json_array_size(jobs) == NLEADS, "%zu jobs", json_array_size(jobs));
	json_array_foreach(jobs, i, j)
	{
		const char *phone = json_string_value(json_object_get(j, "phone"));
		const char *digits = json_string_value(json_object_get(j, "digits"));
		const char *sid = json_string_value(json_object_get(j, "call_sid"));
		int k = suffix_of(&fx, phone);
		json_t *c = sandbox_find(calls, sid);
		char want[2] = {0};

		E2E_TRUE(r, k >= 0, "job %zu: phone %s is not one of the run's", i,
			 phone ? "given" : "missing");
		E2E_TRUE(r, c != NULL, "job ...%03d: the carrier has no call %s", k,
			 sid ? sid : "(none)");
		E2E_TRUE(r, json_string_value(json_object_get(c, "answered_at")) != NULL,
			 "job ...%03d: the call was not answered (outcome %s)", k,
			 json_string_value(json_object_get(c, "outcome")));
		want[0] = expected_digit(k);
		E2E_TRUE(r, digits != NULL && strcmp(digits, want) == 0,
			 "job ...%03d: digits %s, expected %s (the carrier pressed %s)", k,
			 digits ? digits : "null", want,
			 json_string_value(json_object_get(c, "digits"))
			     ? json_string_value(json_object_get(c, "digits"))
			     : "nothing");
		E2E_TRUE(
		    r, strcmp(json_string_value(json_object_get(j, "status")), "completed") == 0,
		    "job ...%03d: status %s", k, json_string_value(json_object_get(j, "status")));
		E2E_TRUE(r, verbs_have(c, "Gather"), "call ...%03d never reached its <Gather>", k);
		if (want[0] == '1') {
			pressed1++;
			E2E_TRUE(
			    r, json_is_true(json_object_get(c, "bridged")) && verbs_have(c, "Dial"),
			    "call ...%03d pressed 1 but was not bridged", k);
		} else {
			pressed2++;
			E2E_TRUE(r,
				 !json_is_true(json_object_get(c, "bridged")) &&
				     !verbs_have(c, "Dial") && verbs_have(c, "Hangup"),
				 "call ...%03d pressed 2 but was not hung up politely", k);
		}
		E2E_TRUE(
		    r, strcmp(json_string_value(json_object_get(c, "status")), "completed") == 0,
		    "call ...%03d ended %s", k, json_string_value(json_object_get(c, "status")));
	}
	e2e_resp_free(&r);
	assert_int_equal(pressed1, NLEADS / 2);
	assert_int_equal(pressed2, NLEADS / 2);

	/* the ones who pressed 2 opted out; the others did not */
	snprintf(path, sizeof(path), "/api/leads?list_id=%lld&page_size=100",
		 (long long)fx.list_id);
	r = e2e_get(path, fx.owner.token, NULL);
	E2E_LIST(r, 1, 100);
	leads = e2e_jget(r.json, "items");
	E2E_TRUE(r, json_array_size(leads) == NLEADS, "%zu leads", json_array_size(leads));
	json_array_foreach(leads, i, l)
	{
		int k = suffix_of(&fx, json_string_value(json_object_get(l, "phone")));
		bool dnc = json_is_true(json_object_get(l, "do_not_call"));

		E2E_TRUE(r, k >= 0, "lead %zu is not one of the run's", i);
		E2E_TRUE(r, dnc == (expected_digit(k) == '2'), "lead ...%03d: do_not_call %s", k,
			 dnc ? "true" : "false");
	}
	e2e_resp_free(&r);

	/* the call log lists every call of the run, each finished */
	snprintf(path, sizeof(path), "/api/calls?run_id=%lld&page_size=100", (long long)fx.run_id);
	r = e2e_get(path, fx.owner.token, NULL);
	E2E_LIST(r, 1, 100);
	E2E_JINT_EQ(r, "total", NLEADS);
	json_array_foreach(e2e_jget(r.json, "items"), i, l)
	{
		const char *sid = json_string_value(json_object_get(l, "call_sid"));

		E2E_TRUE(r, sandbox_find(calls, sid) != NULL, "call log entry %zu: unknown sid", i);
		E2E_TRUE(r, suffix_of(&fx, json_string_value(json_object_get(l, "to_number"))) >= 0,
			 "call log entry %zu: another number", i);
		E2E_TRUE(r,
			 json_string_value(json_object_get(l, "status")) != NULL &&
			     strcmp(json_string_value(json_object_get(l, "status")), "completed") ==
				 0,
			 "call log entry %zu: status %s", i,
			 json_string_value(json_object_get(l, "status")));
	}
	e2e_resp_free(&r);
	json_decref(sbx);
	e2e_user_free(&fx.owner);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gather_run_bridges_and_opts_out),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

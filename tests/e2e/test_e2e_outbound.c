/*
 * test_e2e_outbound.c - the outbound-calls API through nginx: lead import
 * (JSON and CSV, per-row errors, dedupe, the 5000-row cap), leads and
 * do-not-call, runs with derived progress, the 409 of a second active run,
 * cancel, force-cancel on both paths (idempotent), the active-run shape,
 * scripts, the call log; and for every endpoint that takes an id, another
 * tenant's id is 403 with a [SECURITY] line in the API log, an unknown one
 * 404; plus the 401 / page_not_enabled / insufficient_role guards.
 *
 * The stack runs a real worker. So that what is asserted here does not
 * depend on dialling, every business of this file has its calling window
 * closed (set through the owner connection, as no endpoint sets it): the
 * worker may claim a run (pending -> running) but dials nobody. The dialling
 * itself is test_e2e_campaign's; the stale-run stop is in the integration
 * tier (test_outbound_api), where the worker fleet can be declared dead.
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

#define NO_SUCH_ID "999999999999"

static int64_t biz_a, biz_b, biz_nopage;
static e2e_user_t admin_a, agent_a, admin_b, agent_b, agent_nopage;

/* Run one statement as the owner of the test database (fixtures with no endpoint). */
static void owner_exec(const char *sql, int64_t id)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {e2e_env_required("DIALFLOW_TEST_DATABASE_URL"), "5", NULL};
	char ids[24];
	const char *params[1] = {ids};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	if (PQstatus(c) != CONNECTION_OK) {
		print_error("owner connect: %s\n", PQerrorMessage(c));
		PQfinish(c);
		fail();
	}
	r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		print_error("owner exec: %s\n", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		fail();
	}
	PQclear(r);
	PQfinish(c);
}

/* A calling window that opens in two hours: the worker dials nobody of this business. */
static void close_calling_window(int64_t business_id)
{
	owner_exec("UPDATE businesses SET timezone = 'UTC', "
		   "calling_window_start = (now() AT TIME ZONE 'UTC')::time + interval '2 hours', "
		   "calling_window_end = (now() AT TIME ZONE 'UTC')::time + interval '3 hours' "
		   "WHERE id = $1::bigint",
		   business_id);
}

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz_a = e2e_business_create("e2e-outbound-a", "calls_outbound", NULL);
	biz_b = e2e_business_create("e2e-outbound-b", "calls_outbound", NULL);
	biz_nopage = e2e_business_create("e2e-outbound-nopage", "whatsapp_flows", NULL);
	close_calling_window(biz_a);
	close_calling_window(biz_b);
	e2e_user_create(&admin_a, biz_a, "admin");
	e2e_user_create(&agent_a, biz_a, "agent");
	e2e_user_create(&admin_b, biz_b, "admin");
	e2e_user_create(&agent_b, biz_b, "agent");
	e2e_user_create(&agent_nopage, biz_nopage, "owner");
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&admin_a);
	e2e_user_free(&agent_a);
	e2e_user_free(&admin_b);
	e2e_user_free(&agent_b);
	e2e_user_free(&agent_nopage);
	return e2e_global_teardown(state);
}

/* --- helpers -------------------------------------------------------------- */

static void expect_keys(const e2e_resp_t *r, json_t *obj, const char *what,
			const char *const keys[])
{
	E2E_TRUE(*r, json_is_object(obj), "%s is not an object", what);
	for (size_t i = 0; keys[i] != NULL; i++) {
		E2E_TRUE(*r, json_object_get(obj, keys[i]) != NULL, "%s lacks \"%s\"", what,
			 keys[i]);
	}
}

/* The run object of API.md, every field present with its type. */
static void expect_run(const e2e_resp_t *r, json_t *run)
{
	static const char *const keys[] = {"id",
					   "status",
					   "concurrency",
					   "total",
					   "queued",
					   "in_progress",
					   "completed",
					   "failed",
					   "cancelled",
					   "progress_pct",
					   "cancel_requested",
					   "stale",
					   "locked_by_worker",
					   "last_heartbeat_at",
					   "created_by",
					   "created_at",
					   "started_at",
					   "ended_at",
					   NULL};
	static const char *const counts[] = {"total",  "queued",    "in_progress", "completed",
					     "failed", "cancelled", NULL};

	expect_keys(r, run, "run", keys);
	E2E_TRUE(*r, json_is_integer(json_object_get(run, "id")), "run.id is not an integer");
	for (size_t i = 0; counts[i] != NULL; i++)
		E2E_TRUE(*r, json_is_integer(json_object_get(run, counts[i])),
			 "run.%s is not an integer", counts[i]);
	E2E_TRUE(*r, json_is_number(json_object_get(run, "progress_pct")),
		 "run.progress_pct is not a number");
	E2E_TRUE(*r, json_is_boolean(json_object_get(run, "cancel_requested")),
		 "run.cancel_requested is not a boolean");
	E2E_TRUE(*r, json_is_boolean(json_object_get(run, "stale")), "run.stale");
	{
		const char *ts = json_string_value(json_object_get(run, "created_at"));

		/* RFC 3339 UTC: 2025-01-01T10:00:00Z */
		E2E_TRUE(*r, ts != NULL && strlen(ts) == 20 && ts[10] == 'T' && ts[19] == 'Z',
			 "run.created_at is not RFC 3339 UTC: %s", ts ? ts : "(null)");
	}
}

/* Import `n` leads +1 <area> 555 <base+i> with names into the business of `tok`. */
static json_int_t import_n(const char *tok, int n, int base, const char *list_name)
{
	size_t cap = (size_t)n * 64 + 128, len = 0;
	char *body = malloc(cap);
	json_int_t list = 0;
	e2e_resp_t r;

	assert_non_null(body);
	len +=
	    (size_t)snprintf(body + len, cap - len, "{\"list_name\":\"%s\",\"rows\":[", list_name);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"phone\":\"+1 (646) 555-%04d\",\"name\":\"Lead %d\"}",
					i ? "," : "", base + i, base + i);
	snprintf(body + len, cap - len, "]}");
	r = e2e_raw_json("POST", "/api/leads/import", tok, body);
	free(body);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, e2e_jint(r.json, "list_id", &list) && list > 0, "no list_id");
	e2e_resp_free(&r);
	return list;
}

/* Ids of the leads whose name matches q, in the business of tok (at most 200). */
static size_t lead_ids(const char *tok, const char *q, json_int_t *out, size_t max)
{
	char path[160];
	e2e_resp_t r;
	json_t *it;
	size_t i, n = 0;

	snprintf(path, sizeof(path), "/api/leads?page_size=200&q=%s", q);
	r = e2e_get(path, tok, NULL);
	E2E_LIST(r, 1, 200);
	json_array_foreach(e2e_jget(r.json, "items"), i, it)
	{
		if (n < max)
			out[n++] = json_integer_value(json_object_get(it, "id"));
	}
	e2e_resp_free(&r);
	return n;
}

static e2e_resp_t post_run(const char *tok, const json_int_t *ids, size_t n, const char *extra)
{
	char body[2048];
	size_t len = 0;

	len += (size_t)snprintf(body + len, sizeof(body) - len, "{\"lead_ids\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%lld", i ? "," : "",
					(long long)ids[i]);
	snprintf(body + len, sizeof(body) - len, "]%s}", extra ? extra : "");
	return e2e_raw_json("POST", "/api/outbound_calls/runs", tok, body);
}

static e2e_resp_t post(const char *path, const char *tok)
{
	return e2e_req("POST", path, tok, NULL, NULL, 0, NULL);
}

/* End whatever run of the business of tok is active, so the next test may start one. */
static void end_active_run(const char *tok)
{
	e2e_resp_t r = e2e_get("/api/outbound_calls/jobs/active", tok, NULL);
	json_int_t id = 0;

	E2E_STATUS(r, 200);
	if (json_is_true(e2e_jget(r.json, "active")) && e2e_jint(r.json, "run.id", &id)) {
		char path[96];
		e2e_resp_t f;

		snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel",
			 (long long)id);
		f = post(path, tok);
		E2E_STATUS(f, 200);
		e2e_resp_free(&f);
	}
	e2e_resp_free(&r);
}

/* --- lead import ------------------------------------------------------------- */

static void test_import_json_with_row_errors(void **state)
{
	(void)state;
	e2e_resp_t r;
	json_t *errors;

	r = e2e_raw_json(
	    "POST", "/api/leads/import", admin_a.token,
	    "{\"list_name\":\"json rows\",\"rows\":["
	    "{\"phone\":\"+1 212 555 0101\",\"name\":\"Ada\",\"email\":\"ada@example.com\"},"
	    "{\"phone\":\"(212) 555-0102\",\"name\":\"Grace\",\"notes\":\"VIP\"},"
	    "{\"phone\":\"212.555.0101\",\"name\":\"Ada again\"},"
	    "{\"phone\":\"1-800-FLOWERS\"},"
	    "{\"phone\":\"212-555-0103 x12\"},"
	    "{\"name\":\"no phone\"},"
	    "{\"phone\":\"+1 212 555 0104\",\"email\":\"nope\"}]}");
	E2E_STATUS(r, 200);
	E2E_JSON_HEADERS(r);
	E2E_JINT_EQ(r, "imported", 2);
	E2E_JINT_EQ(r, "skipped", 1);
	E2E_JSTR_EQ(r, "list_name", "json rows");
	errors = e2e_jget(r.json, "errors");
	E2E_TRUE(r, json_array_size(errors) == 4, "want 4 row errors");
	E2E_JINT_EQ(r, "errors.0.row", 4);
	E2E_TRUE(r, strstr(e2e_jstr(r.json, "errors.0.reason"), "letters") != NULL, "reason 4");
	E2E_JINT_EQ(r, "errors.1.row", 5);
	E2E_TRUE(r, strstr(e2e_jstr(r.json, "errors.1.reason"), "extension") != NULL, "reason 5");
	E2E_JINT_EQ(r, "errors.2.row", 6);
	E2E_JINT_EQ(r, "errors.3.row", 7);
	E2E_TRUE(r, strstr(e2e_jstr(r.json, "errors.3.reason"), "email") != NULL, "reason 7");
	e2e_resp_free(&r);

	/* the same again: deduplicated by (business, phone) */
	r = e2e_raw_json("POST", "/api/leads/import", admin_a.token,
			 "{\"rows\":[{\"phone\":\"+12125550101\"},{\"phone\":\"+12125550102\"}]}");
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "imported", 0);
	E2E_JINT_EQ(r, "skipped", 2);
	E2E_TRUE(r, e2e_jstr(r.json, "list_name") != NULL, "a default list name");
	e2e_resp_free(&r);

	/* only invalid rows: 400 with the errors */
	r = e2e_raw_json("POST", "/api/leads/import", admin_a.token,
			 "{\"rows\":[{\"phone\":\"12\"},{\"phone\":null}]}");
	E2E_FIELD_ERROR(r, "rows");
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "error.errors")) == 2, "both rows listed");
	e2e_resp_free(&r);
	/* the request itself malformed */
	r = e2e_raw_json("POST", "/api/leads/import", admin_a.token, "{\"rows\":{}}");
	E2E_FIELD_ERROR(r, "rows");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/leads/import", admin_a.token,
			 "{\"rows\":[{\"phone\":\"+12125550199\"}],\"list_name\":7}");
	E2E_FIELD_ERROR(r, "list_name");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/leads/import", admin_a.token, "[]");
	E2E_FIELD_ERROR(r, "body");
	e2e_resp_free(&r);
}

static void test_import_csv(void **state)
{
	(void)state;
	static const char csv[] =
	    "\xEF\xBB\xBF"
	    "Full Name,Phone Number,Email,Notes,Ignored\r\n"
	    "\"Hopper, Grace\",(312) 555-0150,grace@example.com,\"says \"\"hi\"\"\",x\r\n"
	    "Alan,312-555-0151,,\"two\r\nlines\",\r\n"
	    "\r\n"
	    "Bad,312-555-015,,,\r\n"
	    "Broken \xff,312-555-0152,,,\r\n"
	    "Last,3125550153,,,\r\n";
	e2e_resp_t r;

	r = e2e_req("POST", "/api/leads/import?list_name=csv%20upload", admin_a.token,
		    "text/csv; charset=utf-8", csv, sizeof(csv) - 1, NULL);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "imported", 3);
	E2E_JINT_EQ(r, "skipped", 0);
	E2E_JSTR_EQ(r, "list_name", "csv upload");
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "errors")) == 2, "two bad rows");
	E2E_JINT_EQ(r, "errors.0.row", 4);
	E2E_JINT_EQ(r, "errors.0.line", 6);
	E2E_TRUE(r, strstr(e2e_jstr(r.json, "errors.0.reason"), "too short") != NULL, "short");
	E2E_JINT_EQ(r, "errors.1.row", 5);
	E2E_TRUE(r, strstr(e2e_jstr(r.json, "errors.1.reason"), "UTF-8") != NULL, "utf-8");
	e2e_resp_free(&r);

	r = e2e_get("/api/leads?q=hopper", agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 1);
	E2E_JSTR_EQ(r, "items.0.name", "Hopper, Grace");
	E2E_JSTR_EQ(r, "items.0.phone", "+13125550150");
	E2E_JSTR_EQ(r, "items.0.email", "grace@example.com");
	E2E_JSTR_EQ(r, "items.0.source", "import");
	E2E_JSTR_EQ(r, "items.0.status", "new");
	e2e_resp_free(&r);

	/* no phone column: 400 */
	r = e2e_req("POST", "/api/leads/import", admin_a.token, "text/csv", "name,email\nx,y\n", 15,
		    NULL);
	E2E_FIELD_ERROR(r, "header");
	e2e_resp_free(&r);
	/* header only */
	r = e2e_req("POST", "/api/leads/import", admin_a.token, "text/csv", "phone\r\n", 7, NULL);
	E2E_FIELD_ERROR(r, "rows");
	e2e_resp_free(&r);
	/* another media type */
	r = e2e_req("POST", "/api/leads/import", admin_a.token, "text/plain", "phone\n1\n", 8,
		    NULL);
	E2E_ERROR(r, 415, "unsupported_media_type");
	e2e_resp_free(&r);
	/* an unknown default country */
	r = e2e_req("POST", "/api/leads/import?default_country=XX", admin_a.token, "text/csv",
		    "phone\n1\n", 8, NULL);
	E2E_FIELD_ERROR(r, "default_country");
	e2e_resp_free(&r);
}

static void test_import_cap(void **state)
{
	(void)state;
	size_t cap = 5001 * 40 + 64, len = 0;
	char *body = malloc(cap);
	e2e_resp_t r;
	int64_t biz = e2e_business_create("e2e-outbound-cap", "calls_outbound", NULL);
	e2e_user_t admin;

	assert_non_null(body);
	e2e_user_create(&admin, biz, "admin");
	len += (size_t)snprintf(body + len, cap - len, "phone\n");
	for (int i = 0; i < 5001; i++)
		len += (size_t)snprintf(body + len, cap - len, "+1 (917) %03d-%04d\n",
					200 + i / 10000, 2000 + i);
	/* 5001 rows: refused whole */
	r = e2e_req("POST", "/api/leads/import", admin.token, "text/csv", body, len, NULL);
	E2E_FIELD_ERROR(r, "rows");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads", admin.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 0);
	e2e_resp_free(&r);
	/* 5000 rows: one request, one transaction */
	len = (size_t)(strrchr(body, '+') - body);
	r = e2e_req("POST", "/api/leads/import", admin.token, "text/csv", body, len, NULL);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "imported", 5000);
	E2E_JINT_EQ(r, "total_rows", 5000);
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?page=3&page_size=200", admin.token, NULL);
	E2E_LIST(r, 3, 200);
	E2E_JINT_EQ(r, "total", 5000);
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "items")) == 200, "a full page");
	e2e_resp_free(&r);
	r = e2e_get("/api/lead_lists", admin.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "items.0.lead_count", 5000);
	e2e_resp_free(&r);
	free(body);
	e2e_user_free(&admin);
}

/* --- leads -------------------------------------------------------------------- */

static void test_leads_patch(void **state)
{
	(void)state;
	json_int_t ids[4];
	char path[96];
	e2e_resp_t r;
	static const char *const keys[] = {"id",	   "name",   "phone",	    "email",
					   "status",	   "source", "do_not_call", "created_at",
					   "last_call_at", NULL};

	import_n(admin_a.token, 2, 7000, "patch");
	assert_int_equal(lead_ids(agent_a.token, "Lead%207000", ids, 4), 1);
	snprintf(path, sizeof(path), "/api/leads/%lld", (long long)ids[0]);
	r = e2e_raw_json("PATCH", path, admin_a.token,
			 "{\"do_not_call\":true,\"name\":\"Renamed\",\"status\":\"contacted\"}");
	E2E_STATUS(r, 200);
	expect_keys(&r, e2e_jget(r.json, "lead"), "lead", keys);
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "lead.do_not_call")), "do_not_call");
	E2E_JSTR_EQ(r, "lead.name", "Renamed");
	E2E_JSTR_EQ(r, "lead.status", "contacted");
	E2E_TRUE(r, json_is_null(e2e_jget(r.json, "lead.last_call_at")), "last_call_at null");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?do_not_call=true&q=Renamed", agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 1);
	e2e_resp_free(&r);
	/* bad input, every problem at once */
	r = e2e_raw_json("PATCH", path, admin_a.token,
			 "{\"do_not_call\":\"yes\",\"status\":\"vip\",\"name\":null}");
	E2E_FIELD_ERROR(r, "do_not_call");
	E2E_FIELD_ERROR(r, "status");
	E2E_FIELD_ERROR(r, "name");
	e2e_resp_free(&r);
	r = e2e_raw_json("PATCH", path, admin_a.token, "{}");
	E2E_FIELD_ERROR(r, "body");
	e2e_resp_free(&r);
	/* an agent reads leads but does not edit them */
	r = e2e_raw_json("PATCH", path, agent_a.token, "{\"do_not_call\":false}");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_raw_json("PATCH", "/api/leads/" NO_SUCH_ID, admin_a.token, "{\"name\":\"x\"}");
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?page_size=0", agent_a.token, NULL);
	E2E_FIELD_ERROR(r, "page_size");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?status=vip", agent_a.token, NULL);
	E2E_FIELD_ERROR(r, "status");
	e2e_resp_free(&r);
}

/* --- runs ------------------------------------------------------------------------ */

static void test_run_lifecycle(void **state)
{
	(void)state;
	json_int_t ids[3], run = 0, other = 0;
	char path[128];
	e2e_resp_t r;
	json_t *it;
	size_t i;
	static const char *const job_keys[] = {
	    "id",	  "lead_id",	  "phone",	"lead_name",	 "status",
	    "call_sid",	  "attempts",	  "error_code", "error_message", "created_at",
	    "started_at", "completed_at", NULL};

	end_active_run(agent_a.token);
	import_n(admin_a.token, 3, 7100, "lifecycle");
	assert_int_equal(lead_ids(agent_a.token, "Lead%20710", ids, 3), 3);
	/* one of them is do-not-call: it gets no job */
	snprintf(path, sizeof(path), "/api/leads/%lld", (long long)ids[2]);
	r = e2e_raw_json("PATCH", path, admin_a.token, "{\"do_not_call\":true}");
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);

	r = post_run(agent_a.token, ids, 3, ",\"concurrency\":2");
	E2E_STATUS(r, 201);
	E2E_JSON_HEADERS(r);
	expect_run(&r, e2e_jget(r.json, "run"));
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &run) && run > 0, "run.id");
	E2E_JINT_EQ(r, "run.total", 2);
	E2E_JINT_EQ(r, "run.queued", 2);
	E2E_JINT_EQ(r, "run.concurrency", 2);
	E2E_JINT_EQ(r, "run.created_by", agent_a.id);
	E2E_JINT_EQ(r, "skipped_dnc", 1);
	E2E_TRUE(r, json_is_false(e2e_jget(r.json, "run.cancel_requested")), "cancel_requested");
	e2e_resp_free(&r);

	/* one active run per business */
	r = post_run(agent_a.token, ids, 2, NULL);
	E2E_ERROR(r, 409, "active_run_exists");
	E2E_JINT_EQ(r, "error.run_id", run);
	e2e_resp_free(&r);

	/* it is the active run; pending or, once a worker claimed it, running */
	r = e2e_get("/api/outbound_calls/jobs/active", agent_a.token, NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "active")), "active");
	expect_run(&r, e2e_jget(r.json, "run"));
	E2E_JINT_EQ(r, "run.id", run);
	E2E_TRUE(r,
		 strcmp(e2e_jstr(r.json, "run.status"), "pending") == 0 ||
		     strcmp(e2e_jstr(r.json, "run.status"), "running") == 0,
		 "active run status");
	E2E_JINT_EQ(r, "run.in_progress", 0); /* the calling window is closed */
	e2e_resp_free(&r);

	/* list (newest first), one run, its jobs */
	r = e2e_get("/api/outbound_calls/runs", agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "items.0.id", run);
	expect_run(&r, e2e_jget(r.json, "items.0"));
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld", (long long)run);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_STATUS(r, 200);
	expect_run(&r, e2e_jget(r.json, "run"));
	E2E_JINT_EQ(r, "run.total", 2);
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/jobs", (long long)run);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 2);
	json_array_foreach(e2e_jget(r.json, "items"), i, it)
	{
		expect_keys(&r, it, "job", job_keys);
		E2E_TRUE(r, strcmp(json_string_value(json_object_get(it, "status")), "queued") == 0,
			 "job %zu not queued", i);
		E2E_TRUE(r, json_integer_value(json_object_get(it, "lead_id")) != ids[2],
			 "the do-not-call lead has a job");
		E2E_TRUE(r,
			 strncmp(json_string_value(json_object_get(it, "lead_name")), "Lead 710",
				 8) == 0,
			 "lead_name");
	}
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/jobs?status=completed",
		 (long long)run);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 0);
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/jobs?status=done",
		 (long long)run);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_FIELD_ERROR(r, "status");
	e2e_resp_free(&r);

	/* cancel: no call is live, so the run ends at once */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	r = post(path, agent_a.token);
	E2E_STATUS(r, 200);
	expect_run(&r, e2e_jget(r.json, "run"));
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "run.cancel_requested")), "cancel_requested");
	E2E_JSTR_EQ(r, "run.status", "cancelled");
	E2E_JINT_EQ(r, "run.cancelled", 2);
	E2E_TRUE(r, json_real_value(e2e_jget(r.json, "run.progress_pct")) == 100.0, "progress 100");
	E2E_TRUE(r, json_is_string(e2e_jget(r.json, "run.ended_at")), "ended_at");
	e2e_resp_free(&r);
	r = post(path, agent_a.token);
	E2E_ERROR(r, 409, "run_finished");
	e2e_resp_free(&r);
	r = e2e_get("/api/outbound_calls/jobs/active", agent_a.token, NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, json_is_false(e2e_jget(r.json, "active")), "nothing active");
	E2E_TRUE(r, json_object_size(r.json) == 1, "just {\"active\":false}");
	e2e_resp_free(&r);

	/* a new run may start now; validation first */
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token,
			 "{\"lead_ids\":[],\"concurrency\":11}");
	E2E_FIELD_ERROR(r, "lead_ids");
	E2E_FIELD_ERROR(r, "concurrency");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token,
			 "{\"lead_ids\":[1],\"list_id\":1}");
	E2E_FIELD_ERROR(r, "list_id");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token,
			 "{\"lead_ids\":[\"1\"],\"concurrency\":null}");
	E2E_FIELD_ERROR(r, "lead_ids");
	E2E_FIELD_ERROR(r, "concurrency");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token, "{}");
	E2E_FIELD_ERROR(r, "lead_ids");
	e2e_resp_free(&r);
	r = post_run(agent_a.token, ids + 2, 1, NULL); /* only the do-not-call lead */
	E2E_FIELD_ERROR(r, "lead_ids");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token,
			 "{\"lead_ids\":[" NO_SUCH_ID "]}");
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	{
		/* from a list, default concurrency */
		json_int_t list = import_n(admin_a.token, 2, 7200, "by list");
		char body[64];

		snprintf(body, sizeof(body), "{\"list_id\":%lld}", (long long)list);
		r = e2e_raw_json("POST", "/api/outbound_calls/runs", agent_a.token, body);
		E2E_STATUS(r, 201);
		E2E_JINT_EQ(r, "run.total", 2);
		E2E_JINT_EQ(r, "run.concurrency", 3);
		E2E_TRUE(r, e2e_jint(r.json, "run.id", &other) && other > run, "newer id");
		e2e_resp_free(&r);
	}
	r = e2e_get("/api/outbound_calls/runs?page_size=2", agent_a.token, NULL);
	E2E_LIST(r, 1, 2);
	E2E_JINT_EQ(r, "items.0.id", other);
	E2E_JINT_EQ(r, "items.1.id", run);
	e2e_resp_free(&r);
	end_active_run(agent_a.token);
}

static void test_force_cancel_both_paths(void **state)
{
	(void)state;
	json_int_t ids[3], run = 0;
	char path[128], legacy[128];
	long long off;
	e2e_resp_t r;
	char needle[64];

	end_active_run(agent_a.token);
	import_n(admin_a.token, 3, 7300, "force");
	assert_int_equal(lead_ids(agent_a.token, "Lead%20730", ids, 3), 3);
	r = post_run(agent_a.token, ids, 3, NULL);
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &run), "run.id");
	e2e_resp_free(&r);

	off = e2e_log_offset();
	snprintf(legacy, sizeof(legacy), "/api/outbound_calls/jobs/%lld/force-cancel",
		 (long long)run);
	r = post(legacy, agent_a.token);
	E2E_STATUS(r, 200);
	expect_run(&r, e2e_jget(r.json, "run"));
	E2E_JSTR_EQ(r, "run.status", "cancelled");
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "run.cancel_requested")), "cancel_requested");
	E2E_JINT_EQ(r, "jobs_cancelled", 3);
	E2E_JINT_EQ(r, "calls_hangup_requested", 0);
	E2E_JINT_EQ(r, "run.cancelled", 3);
	e2e_resp_free(&r);
	snprintf(needle, sizeof(needle), "run=%lld", (long long)run);
	E2E_LOG_EXPECT(off, "[FORCE_CANCEL]", needle);

	/* idempotent, on either path */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	r = post(path, agent_a.token);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "jobs_cancelled", 0);
	E2E_JSTR_EQ(r, "run.status", "cancelled");
	e2e_resp_free(&r);
	r = post(legacy, agent_a.token);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "jobs_cancelled", 0);
	e2e_resp_free(&r);
	/* cancel after the end: 409 */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	r = post(path, agent_a.token);
	E2E_ERROR(r, 409, "run_finished");
	e2e_resp_free(&r);
	/* unknown and malformed ids */
	r = post("/api/outbound_calls/runs/" NO_SUCH_ID "/force-cancel", agent_a.token);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = post("/api/outbound_calls/jobs/-1/force-cancel", agent_a.token);
	E2E_4XX_JSON(r);
	e2e_resp_free(&r);
	r = post("/api/outbound_calls/runs/99999999999999999999/cancel", agent_a.token);
	E2E_4XX_JSON(r);
	e2e_resp_free(&r);
}

/* --- scripts and calls ---------------------------------------------------------- */

static void test_scripts_crud(void **state)
{
	(void)state;
	json_int_t id = 0, ids[1], run = 0;
	char path[96], body[160];
	e2e_resp_t r;
	static const char *const keys[] = {"id",    "name",	 "kind",    "text",	 "language",
					   "voice", "bridge_to", "options", "voicemail", NULL};

	r = e2e_raw_json(
	    "POST", "/api/outbound_calls/scripts", admin_a.token,
	    "{\"name\":\"Greeting\",\"kind\":\"gather\",\"text\":\"Press 1\","
	    "\"language\":\"en-GB\",\"voice\":\"Polly.Amy\",\"bridge_to\":\"(646) 555-0101\","
	    "\"options\":{\"num_digits\":1}}");
	E2E_STATUS(r, 201);
	expect_keys(&r, e2e_jget(r.json, "script"), "script", keys);
	E2E_TRUE(r, e2e_jint(r.json, "script.id", &id) && id > 0, "script.id");
	E2E_JSTR_EQ(r, "script.kind", "gather");
	E2E_JINT_EQ(r, "script.options.num_digits", 1);
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/scripts/%lld", (long long)id);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "script.voice", "Polly.Amy");
	e2e_resp_free(&r);
	r = e2e_get("/api/outbound_calls/scripts", agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	e2e_resp_free(&r);
	r = e2e_raw_json(
	    "PUT", path, admin_a.token,
	    "{\"name\":\"Bridge\",\"kind\":\"bridge\",\"bridge_to\":\"(646) 555-0100\"}");
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "script.bridge_to", "+16465550100");
	e2e_resp_free(&r);
	r = e2e_raw_json("PUT", path, admin_a.token, "{\"name\":\"x\",\"kind\":\"dance\"}");
	E2E_FIELD_ERROR(r, "kind");
	e2e_resp_free(&r);
	/* agents read, admins write */
	r = e2e_raw_json("POST", "/api/outbound_calls/scripts", agent_a.token,
			 "{\"name\":\"x\",\"kind\":\"say\",\"text\":\"x\"}");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_req("DELETE", path, agent_a.token, NULL, NULL, 0, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);

	/* in use by the active run: 409; afterwards it goes */
	end_active_run(agent_a.token);
	import_n(admin_a.token, 1, 7400, "script");
	assert_int_equal(lead_ids(agent_a.token, "Lead%207400", ids, 1), 1);
	snprintf(body, sizeof(body), ",\"script_id\":%lld", (long long)id);
	r = post_run(agent_a.token, ids, 1, body);
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &run), "run.id");
	e2e_resp_free(&r);
	r = e2e_req("DELETE", path, admin_a.token, NULL, NULL, 0, NULL);
	E2E_ERROR(r, 409, "script_in_use");
	E2E_JINT_EQ(r, "error.run_id", run);
	e2e_resp_free(&r);
	end_active_run(agent_a.token);
	r = e2e_req("DELETE", path, admin_a.token, NULL, NULL, 0, NULL);
	E2E_STATUS(r, 204);
	e2e_resp_free(&r);
	r = e2e_get(path, agent_a.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	/* an inline script */
	r = post_run(agent_a.token, ids, 1,
		     ",\"script\":{\"kind\":\"say\",\"text\":\"Hello\",\"voicemail\":\"Bye\"}");
	E2E_STATUS(r, 201);
	e2e_resp_free(&r);
	end_active_run(agent_a.token);
}

static void test_calls_list(void **state)
{
	(void)state;
	e2e_resp_t r;

	r = e2e_get("/api/calls", agent_a.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JSON_HEADERS(r);
	e2e_resp_free(&r);
	r = e2e_get("/api/calls?direction=outbound&status=completed&page_size=10", agent_a.token,
		    NULL);
	E2E_LIST(r, 1, 10);
	e2e_resp_free(&r);
	r = e2e_get("/api/calls?direction=up&status=ended&run_id=abc", agent_a.token, NULL);
	E2E_FIELD_ERROR(r, "direction");
	E2E_FIELD_ERROR(r, "status");
	E2E_FIELD_ERROR(r, "run_id");
	e2e_resp_free(&r);
	r = e2e_get("/api/calls?run_id=" NO_SUCH_ID, agent_a.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
}

/* --- tenant isolation and guards ------------------------------------------------- */

/* 403 forbidden, and a [SECURITY] line naming the resource. */
static void expect_cross_at(e2e_resp_t r, const char *type, json_int_t id, long long off,
			    const char *file, int line)
{
	char res[64];

	e2e_expect_forbidden_at(&r, "forbidden", file, line);
	snprintf(res, sizeof(res), "resource=%s:%lld", type, (long long)id);
	e2e_log_expect_at(off, (const char *const[]){"[SECURITY]", res, NULL}, file, line);
	e2e_resp_free(&r);
}
#define CROSS(req, type, id)                                                                       \
	do {                                                                                       \
		long long off_ = e2e_log_offset();                                                 \
		expect_cross_at((req), (type), (id), off_, __FILE__, __LINE__);                    \
	} while (0)

static void test_cross_tenant_every_id(void **state)
{
	(void)state;
	json_int_t ids[2], run = 0, script = 0, list;
	char p[160], body[128];
	e2e_resp_t r;

	end_active_run(agent_a.token);
	list = import_n(admin_a.token, 2, 7500, "cross");
	assert_int_equal(lead_ids(agent_a.token, "Lead%20750", ids, 2), 2);
	r = post_run(agent_a.token, ids, 2, NULL);
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "run.id", &run), "run.id");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/outbound_calls/scripts", admin_a.token,
			 "{\"name\":\"A\",\"kind\":\"say\",\"text\":\"A\"}");
	E2E_STATUS(r, 201);
	E2E_TRUE(r, e2e_jint(r.json, "script.id", &script), "script.id");
	e2e_resp_free(&r);

	snprintf(p, sizeof(p), "/api/leads/%lld", (long long)ids[0]);
	CROSS(e2e_raw_json("PATCH", p, admin_b.token, "{\"do_not_call\":true}"), "lead", ids[0]);
	snprintf(p, sizeof(p), "/api/outbound_calls/runs/%lld", (long long)run);
	CROSS(e2e_get(p, agent_b.token, NULL), "run", run);
	snprintf(p, sizeof(p), "/api/outbound_calls/runs/%lld/jobs", (long long)run);
	CROSS(e2e_get(p, agent_b.token, NULL), "run", run);
	snprintf(p, sizeof(p), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	CROSS(post(p, agent_b.token), "run", run);
	snprintf(p, sizeof(p), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	CROSS(post(p, agent_b.token), "run", run);
	snprintf(p, sizeof(p), "/api/outbound_calls/jobs/%lld/force-cancel", (long long)run);
	CROSS(post(p, agent_b.token), "run", run);
	snprintf(p, sizeof(p), "/api/outbound_calls/scripts/%lld", (long long)script);
	CROSS(e2e_get(p, agent_b.token, NULL), "script", script);
	CROSS(e2e_raw_json("PUT", p, admin_b.token,
			   "{\"name\":\"B\",\"kind\":\"say\",\"text\":\"B\"}"),
	      "script", script);
	CROSS(e2e_req("DELETE", p, admin_b.token, NULL, NULL, 0, NULL), "script", script);
	snprintf(p, sizeof(p), "/api/calls?run_id=%lld", (long long)run);
	CROSS(e2e_get(p, agent_b.token, NULL), "run", run);
	snprintf(p, sizeof(p), "/api/leads?list_id=%lld", (long long)list);
	CROSS(e2e_get(p, agent_b.token, NULL), "list", list);
	/* ids in a body */
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld]}", (long long)ids[1]);
	CROSS(e2e_raw_json("POST", "/api/outbound_calls/runs", agent_b.token, body), "lead",
	      ids[1]);
	snprintf(body, sizeof(body), "{\"list_id\":%lld}", (long long)list);
	CROSS(e2e_raw_json("POST", "/api/outbound_calls/runs", agent_b.token, body), "list", list);

	/* A's run is untouched, and B sees nothing of A */
	snprintf(p, sizeof(p), "/api/outbound_calls/runs/%lld", (long long)run);
	r = e2e_get(p, agent_a.token, NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, json_is_false(e2e_jget(r.json, "run.cancel_requested")), "A's run touched");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?q=Lead%20750", agent_b.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JINT_EQ(r, "total", 0);
	e2e_resp_free(&r);

	/* unknown ids: 404 everywhere */
	r = e2e_get("/api/outbound_calls/runs/" NO_SUCH_ID, agent_b.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = e2e_get("/api/outbound_calls/runs/" NO_SUCH_ID "/jobs", agent_b.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = post("/api/outbound_calls/runs/" NO_SUCH_ID "/cancel", agent_b.token);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = post("/api/outbound_calls/jobs/" NO_SUCH_ID "/force-cancel", agent_b.token);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = e2e_get("/api/outbound_calls/scripts/" NO_SUCH_ID, agent_b.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = e2e_req("DELETE", "/api/outbound_calls/scripts/" NO_SUCH_ID, admin_b.token, NULL, NULL,
		    0, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	r = e2e_get("/api/leads?list_id=" NO_SUCH_ID, agent_b.token, NULL);
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	/* malformed ids never reach a handler */
	r = e2e_get("/api/outbound_calls/runs/1'OR'1'='1", agent_b.token, NULL);
	E2E_4XX_JSON(r);
	e2e_resp_free(&r);
	end_active_run(agent_a.token);
}

static void test_guards(void **state)
{
	(void)state;
	static const struct {
		const char *method, *path, *body;
		bool admin; /* admin and up */
	} routes[] = {
	    {"POST", "/api/leads/import", "{\"rows\":[{\"phone\":\"+12125550199\"}]}", true},
	    {"GET", "/api/leads", NULL, false},
	    {"PATCH", "/api/leads/1", "{\"name\":\"x\"}", true},
	    {"GET", "/api/lead_lists", NULL, false},
	    {"POST", "/api/outbound_calls/runs", "{\"lead_ids\":[1]}", false},
	    {"GET", "/api/outbound_calls/runs", NULL, false},
	    {"GET", "/api/outbound_calls/runs/1", NULL, false},
	    {"GET", "/api/outbound_calls/runs/1/jobs", NULL, false},
	    {"GET", "/api/outbound_calls/jobs/active", NULL, false},
	    {"POST", "/api/outbound_calls/runs/1/cancel", NULL, false},
	    {"POST", "/api/outbound_calls/runs/1/force-cancel", NULL, false},
	    {"POST", "/api/outbound_calls/jobs/1/force-cancel", NULL, false},
	    {"GET", "/api/outbound_calls/scripts", NULL, false},
	    {"POST", "/api/outbound_calls/scripts",
	     "{\"name\":\"x\",\"kind\":\"say\",\"text\":\"x\"}", true},
	    {"GET", "/api/outbound_calls/scripts/1", NULL, false},
	    {"PUT", "/api/outbound_calls/scripts/1",
	     "{\"name\":\"x\",\"kind\":\"say\",\"text\":\"x\"}", true},
	    {"DELETE", "/api/outbound_calls/scripts/1", NULL, true},
	    {"GET", "/api/calls", NULL, false},
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		e2e_resp_t r;
		const char *b = routes[i].body;

		/* no token */
		r = e2e_req(routes[i].method, routes[i].path, NULL, b ? "application/json" : NULL,
			    b, b ? strlen(b) : 0, NULL);
		E2E_ERROR(r, 401, "unauthenticated");
		e2e_resp_free(&r);
		/* a business without the page (even its owner) */
		r = e2e_req(routes[i].method, routes[i].path, agent_nopage.token,
			    b ? "application/json" : NULL, b, b ? strlen(b) : 0, NULL);
		E2E_FORBIDDEN(r, "page_not_enabled");
		e2e_resp_free(&r);
		/* an agent on an admin endpoint */
		if (routes[i].admin) {
			r = e2e_req(routes[i].method, routes[i].path, agent_a.token,
				    b ? "application/json" : NULL, b, b ? strlen(b) : 0, NULL);
			E2E_FORBIDDEN(r, "insufficient_role");
			e2e_resp_free(&r);
		}
	}
	/* a method the path does not serve */
	{
		e2e_resp_t r = e2e_req("DELETE", "/api/outbound_calls/runs", agent_a.token, NULL,
				       NULL, 0, NULL);

		E2E_ERROR(r, 405, "method_not_allowed");
		E2E_TRUE(r, e2e_header(&r, "Allow") != NULL, "Allow header");
		e2e_resp_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_json_with_row_errors),
	    cmocka_unit_test(test_import_csv),
	    cmocka_unit_test(test_import_cap),
	    cmocka_unit_test(test_leads_patch),
	    cmocka_unit_test(test_run_lifecycle),
	    cmocka_unit_test(test_force_cancel_both_paths),
	    cmocka_unit_test(test_scripts_crud),
	    cmocka_unit_test(test_calls_list),
	    cmocka_unit_test(test_cross_tenant_every_id),
	    cmocka_unit_test(test_guards),
	};

	e2e_skip_without_stack();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

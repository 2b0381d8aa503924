/*
 * test_outbound_api.c - the outbound-calls API run through api_dispatch()
 * (route, token, guards, one transaction) against a real database, as the
 * API's own role dialflow_app: lead import with dedupe, runs with derived
 * progress, the race-free 409 of a second active run (two connections, one
 * waiting on the other), cancel and force-cancel with their NOTIFY, the
 * stale-run stop of the active endpoint when no worker is alive, scripts,
 * the call log, and tenant isolation with its [SECURITY] audit rows.
 *
 * The state no API call can reach (a heartbeat an hour old, a job in
 * `calling`, a dead worker fleet) is set through the owner connection.
 */
#include "apitest.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/api.h"
#include "dialflow/auth.h"
#include "dialflow/http.h"

static struct {
	api_ctx_t ctx, ctx2; /* two API processes: two connections */
	PGconn *owner;
	PGconn *listener; /* LISTEN dialflow_worker */
	char secret[64];
	char tag[64]; /* makes this process's call sids unique in a database that outlives it */
} fx;

/* A tenant with an admin and an agent. */
typedef struct tenant {
	int64_t biz, admin, agent;
	char *admin_tok, *agent_tok;
	char bid[24];
} tenant_t;

typedef at_resp_t resp_t; /* apitest.h: status, json */

/* --- plumbing -------------------------------------------------------------- */

static char *token_for(int64_t user)
{
	return at_token(&fx.ctx, user);
}

static void tenant_new(tenant_t *t, const char *country)
{
	static const char *const pages[] = {"calls_outbound", NULL};

	t->biz = itest_create_business(fx.owner, "outbound", true);
	itest_i64s(t->bid, sizeof(t->bid), t->biz);
	ITEST_X(fx.owner, "UPDATE businesses SET default_country = $1 WHERE id = $2::bigint",
		country, t->bid);
	itest_enable_pages(fx.owner, t->biz, pages);
	t->admin = itest_create_user(fx.owner, t->biz, "admin", NULL, NULL, 0);
	t->agent = itest_create_user(fx.owner, t->biz, "agent", NULL, NULL, 0);
	t->admin_tok = token_for(t->admin);
	t->agent_tok = token_for(t->agent);
}

static void tenant_free(tenant_t *t)
{
	free(t->admin_tok);
	free(t->agent_tok);
}

/* One request through the API pipeline of ctx. `uri` may carry a query. */
static resp_t call_ctx(api_ctx_t *ctx, const char *method, const char *uri, const char *token,
		       const char *ctype, const char *body)
{
	return at_call(ctx, method, uri, token, ctype, body, NULL, "itest-outbound");
}

static resp_t call(const char *method, const char *uri, const char *token, const char *json)
{
	return call_ctx(&fx.ctx, method, uri, token, json ? "application/json" : NULL, json);
}

static void resp_free(resp_t *r)
{
	at_free(r);
}

/* The value at a dotted path ("run.id", "items.0.status"). */
static json_t *jget(json_t *v, const char *path)
{
	char buf[128], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && v != NULL;
	     tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, (size_t)strtoul(tok, NULL, 10));
		else
			v = json_object_get(v, tok);
	}
	return v;
}

static int64_t jint(const resp_t *r, const char *path)
{
	return at_int(r, path);
}

static const char *jstr(const resp_t *r, const char *path)
{
	return at_str(r, path);
}

static bool jbool(const resp_t *r, const char *path)
{
	json_t *v = jget(r->json, path);

	if (!json_is_boolean(v))
		fail_msg("%s is not a boolean", path);
	return json_is_true(v);
}

#define STATUS(r, want)	   AT_STATUS(r, want)
#define ERROR(r, st, code) AT_ERROR(r, st, code)

static const char *s64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

/* Import `n` leads "+1415555<base+i>" named Lead<i> into t; returns the list id. */
static int64_t import_leads(tenant_t *t, int n, int base, int64_t *ids)
{
	json_t *rows = json_array(), *body;
	char *text, phone[32], name[32], bid[24];
	resp_t r;
	int64_t list;

	for (int i = 0; i < n; i++) {
		snprintf(phone, sizeof(phone), "+1415555%04d", base + i);
		snprintf(name, sizeof(name), "Lead%d", i);
		json_array_append_new(rows, json_pack("{s:s,s:s}", "phone", phone, "name", name));
	}
	body = json_pack("{s:o}", "rows", rows);
	text = json_dumps(body, JSON_COMPACT);
	r = call("POST", "/api/leads/import", t->admin_tok, text);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "imported"), n);
	list = jint(&r, "list_id");
	resp_free(&r);
	free(text);
	json_decref(body);
	if (ids != NULL) {
		PGresult *q =
		    ITEST_Q(fx.owner,
			    "SELECT l.id FROM lead_list_members m JOIN leads l ON l.id = "
			    "m.lead_id WHERE m.list_id = $1::bigint ORDER BY l.phone_e164",
			    s64(bid, list));

		assert_int_equal(PQntuples(q), n);
		for (int i = 0; i < n; i++)
			ids[i] = strtoll(PQgetvalue(q, i, 0), NULL, 10);
		PQclear(q);
	}
	return list;
}

/* POST a run over lead ids; returns the response (caller frees). */
static resp_t create_run(api_ctx_t *ctx, tenant_t *t, const int64_t *ids, int n)
{
	char body[1024];
	size_t off = 0;

	off += (size_t)snprintf(body + off, sizeof(body) - off, "{\"lead_ids\":[");
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(body + off, sizeof(body) - off, "%s%lld", i ? "," : "",
					(long long)ids[i]);
	snprintf(body + off, sizeof(body) - off, "],\"concurrency\":2}");
	return call_ctx(ctx, "POST", "/api/outbound_calls/runs", t->agent_tok, "application/json",
			body);
}

/* The ids of run's jobs, in order. */
static int job_ids(int64_t run, int64_t *out, int max)
{
	char b[24];
	PGresult *q = ITEST_Q(
	    fx.owner, "SELECT id FROM outbound_call_jobs WHERE run_id = $1::bigint ORDER BY id",
	    s64(b, run));
	int n = PQntuples(q);

	assert_true(n <= max);
	for (int i = 0; i < n; i++)
		out[i] = strtoll(PQgetvalue(q, i, 0), NULL, 10);
	PQclear(q);
	return n;
}

/* A provider call id unique to this process: "<name>-<tag>". */
static const char *sid_of(const char *name)
{
	static char buf[4][128];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, 128, "%s-%s", name, fx.tag);
	return b;
}

/* Move a job by hand (what the worker and the status webhook would do). */
static void set_job(int64_t job, const char *status, const char *sid_name)
{
	char b[24];
	const char *sid = sid_name ? sid_of(sid_name) : NULL;

	ITEST_X(fx.owner,
		"UPDATE outbound_call_jobs SET status = $2, call_sid = $3, "
		"dial_started_at = now() WHERE id = $1::bigint",
		s64(b, job), status, sid);
}

/* Wait (up to 2 s) for a NOTIFY on dialflow_worker with exactly `payload`. */
static bool notified(const char *payload)
{
	int64_t until = itest_now_ms() + 2000;

	while (itest_now_ms() < until) {
		PGnotify *n;
		struct pollfd pfd = {.fd = PQsocket(fx.listener), .events = POLLIN};

		PQconsumeInput(fx.listener);
		while ((n = PQnotifies(fx.listener)) != NULL) {
			bool hit = strcmp(n->relname, "dialflow_worker") == 0 &&
				   strcmp(n->extra, payload) == 0;

			PQfreemem(n);
			if (hit)
				return true;
		}
		(void)poll(&pfd, 1, 50);
	}
	return false;
}

static int64_t audit_rows(const char *tag, const char *action, const char *type, int64_t id)
{
	char b[24];

	return ITEST_I64(fx.owner,
			 "SELECT count(*) FROM audit_events WHERE tag = $1 AND action = $2 "
			 "AND resource_type = $3 AND resource_id = $4::bigint",
			 tag, action, type, s64(b, id));
}

/* --- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	at_ctx_init_named(&fx.ctx, fx.secret, "itest_outbound_api");
	at_ctx_init_named(&fx.ctx2, fx.secret, "itest_outbound_api2");
	fx.ctx.cfg.run_stale_s = fx.ctx2.cfg.run_stale_s = 30;
	fx.ctx.cfg.worker_stale_s = fx.ctx2.cfg.worker_stale_s = 5;
	itest_unique(fx.tag, sizeof(fx.tag));
	fx.owner = itest_owner_pg();
	fx.listener = itest_owner_pg();
	itest_exec(fx.listener, "LISTEN dialflow_worker", 0, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	api_ctx_free(&fx.ctx);
	api_ctx_free(&fx.ctx2);
	PQfinish(fx.owner);
	PQfinish(fx.listener);
	return 0;
}

/* --- leads ---------------------------------------------------------------------- */

static void test_import_dedupes_and_fills_blanks(void **state)
{
	tenant_t t;
	resp_t r;
	char b[24];
	int64_t lists_before;

	(void)state;
	tenant_new(&t, "IL");
	r = call("POST", "/api/leads/import", t.admin_tok,
		 "{\"list_name\":\"first\",\"rows\":["
		 "{\"phone\":\"050-1234567\"},"
		 "{\"phone\":\"+972 52 765 4321\",\"name\":\"Dana\"},"
		 "{\"phone\":\"972501234567\",\"name\":\"dup in file\"},"
		 "{\"phone\":\"123\"}]}");
	STATUS(r, 200);
	assert_int_equal(jint(&r, "imported"), 2);
	assert_int_equal(jint(&r, "skipped"), 1);
	assert_int_equal(json_array_size(jget(r.json, "errors")), 1);
	assert_int_equal(jint(&r, "errors.0.row"), 4);
	assert_non_null(strstr(jstr(&r, "errors.0.reason"), "too short"));
	assert_string_equal(jstr(&r, "list_name"), "first");
	resp_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM leads WHERE business_id = $1::bigint", t.bid),
	    2);

	/* again, as CSV: a known phone with an empty name gets it, a named one keeps its name */
	r = call_ctx(&fx.ctx, "POST", "/api/leads/import?list_name=second", t.admin_tok, "text/csv",
		     "phone,name,email\r\n"
		     "+972501234567,Filled,f@example.com\r\n"
		     "052-7654321,Other,\r\n"
		     "03-1234567,New,\r\n");
	STATUS(r, 200);
	assert_int_equal(jint(&r, "imported"), 1);
	assert_int_equal(jint(&r, "skipped"), 2);
	assert_int_equal(jint(&r, "updated"), 1);
	assert_int_equal(json_array_size(jget(r.json, "errors")), 0);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM lead_list_members WHERE list_id = $1::bigint",
		      s64(b, jint(&r, "list_id"))),
	    3); /* the known leads join the list too */
	resp_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM leads WHERE business_id = $1::bigint AND "
		      "((phone_e164 = '+972501234567' AND name = 'Filled' AND email = "
		      "'f@example.com') OR (phone_e164 = '+972527654321' AND name = "
		      "'Dana') OR (phone_e164 = '+97231234567' AND source = 'import'))",
		      t.bid),
	    3);

	/* search by name and by phone digits; the list filter */
	r = call("GET", "/api/leads?q=dan", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	assert_string_equal(jstr(&r, "items.0.phone"), "+972527654321");
	assert_false(jbool(&r, "items.0.do_not_call"));
	resp_free(&r);
	r = call("GET", "/api/leads?q=765-43", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	resp_free(&r);
	r = call("GET", "/api/leads?q=%25", t.agent_tok, NULL); /* '%' is not a wildcard */
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 0);
	resp_free(&r);

	/* the cap: 5001 rows are refused whole, and nothing is created */
	lists_before = ITEST_I64(
	    fx.owner, "SELECT count(*) FROM lead_lists WHERE business_id = $1::bigint", t.bid);
	{
		json_t *rows = json_array(), *body;
		char *text;

		for (int i = 0; i < 5001; i++)
			json_array_append_new(rows, json_pack("{s:s}", "phone", "+14155550123"));
		body = json_pack("{s:o}", "rows", rows);
		text = json_dumps(body, JSON_COMPACT);
		r = call("POST", "/api/leads/import", t.admin_tok, text);
		ERROR(r, 400, "invalid_input");
		assert_string_equal(jstr(&r, "error.fields.0.field"), "rows");
		resp_free(&r);
		free(text);
		json_decref(body);
	}
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM lead_lists WHERE business_id = $1::bigint",
				   t.bid),
			 lists_before);
	/* only invalid rows: 400 with the errors, nothing created */
	r = call("POST", "/api/leads/import", t.admin_tok, "{\"rows\":[{\"phone\":\"abc\"}]}");
	ERROR(r, 400, "invalid_input");
	assert_int_equal(jint(&r, "error.errors.0.row"), 1);
	resp_free(&r);
	/* an agent may not import */
	r = call("POST", "/api/leads/import", t.agent_tok, "{\"rows\":[{\"phone\":\"+1\"}]}");
	ERROR(r, 403, "forbidden");
	assert_string_equal(jstr(&r, "error.reason"), "insufficient_role");
	resp_free(&r);
	tenant_free(&t);
}

static void test_do_not_call(void **state)
{
	tenant_t t;
	int64_t ids[3], run;
	resp_t r;
	char path[96], b[24];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 3, 100, ids);
	snprintf(path, sizeof(path), "/api/leads/%lld", (long long)ids[1]);
	r = call("PATCH", path, t.admin_tok, "{\"do_not_call\":true,\"status\":\"contacted\"}");
	STATUS(r, 200);
	assert_true(jbool(&r, "lead.do_not_call"));
	assert_string_equal(jstr(&r, "lead.status"), "contacted");
	resp_free(&r);
	/* a re-import never clears do_not_call */
	r = call("POST", "/api/leads/import", t.admin_tok,
		 "{\"rows\":[{\"phone\":\"+14155550101\",\"name\":\"x\"}]}");
	STATUS(r, 200);
	assert_int_equal(jint(&r, "skipped"), 1);
	resp_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM leads WHERE id = $1::bigint AND do_not_call",
		      s64(b, ids[1])),
	    1);
	/* the run skips it */
	r = create_run(&fx.ctx, &t, ids, 3);
	STATUS(r, 201);
	assert_int_equal(jint(&r, "skipped_dnc"), 1);
	assert_int_equal(jint(&r, "run.total"), 2);
	run = jint(&r, "run.id");
	resp_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND lead_id = $2::bigint",
		      s64(b, run), s64(path, ids[1])),
	    0);
	/* marking a lead do-not-call cancels its waiting job at once */
	snprintf(path, sizeof(path), "/api/leads/%lld", (long long)ids[2]);
	r = call("PATCH", path, t.admin_tok, "{\"do_not_call\":true}");
	STATUS(r, 200);
	assert_int_equal(jint(&r, "jobs_cancelled"), 1);
	resp_free(&r);
	/* all of them do-not-call: nothing to dial, no run */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	resp_free(&r);
	{
		int64_t dnc[2] = {ids[1], ids[2]};

		r = create_run(&fx.ctx, &t, dnc, 2);
		ERROR(r, 400, "invalid_input");
		assert_string_equal(jstr(&r, "error.fields.0.field"), "lead_ids");
		resp_free(&r);
	}
	/* PATCH validation, and the role */
	snprintf(path, sizeof(path), "/api/leads/%lld", (long long)ids[0]);
	r = call("PATCH", path, t.admin_tok, "{\"do_not_call\":null,\"status\":\"bogus\"}");
	ERROR(r, 400, "invalid_input");
	assert_int_equal(json_array_size(jget(r.json, "error.fields")), 2);
	resp_free(&r);
	r = call("PATCH", path, t.admin_tok, "{}");
	ERROR(r, 400, "invalid_input");
	resp_free(&r);
	r = call("PATCH", path, t.agent_tok, "{\"do_not_call\":true}");
	ERROR(r, 403, "forbidden");
	resp_free(&r);
	tenant_free(&t);
}

/* --- runs ----------------------------------------------------------------------- */

static void test_run_progress_and_cancel(void **state)
{
	tenant_t t;
	int64_t ids[4], jobs[4], run;
	resp_t r;
	char path[128], payload[48];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 4, 200, ids);
	r = create_run(&fx.ctx, &t, ids, 4);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	assert_string_equal(jstr(&r, "run.status"), "pending");
	assert_int_equal(jint(&r, "run.total"), 4);
	assert_int_equal(jint(&r, "run.queued"), 4);
	assert_int_equal(jint(&r, "run.concurrency"), 2);
	assert_int_equal(jint(&r, "run.created_by"), t.agent);
	assert_false(jbool(&r, "run.stale"));
	assert_true(json_is_null(jget(r.json, "run.ended_at")));
	resp_free(&r);
	snprintf(payload, sizeof(payload), "run:%lld", (long long)run);
	assert_true(notified(payload));
	assert_int_equal(audit_rows("AUDIT", "run.create", "run", run), 1);

	/* progress is counted from the jobs */
	assert_int_equal(job_ids(run, jobs, 4), 4);
	set_job(jobs[0], "completed", "CA-prog-1");
	set_job(jobs[1], "failed", NULL);
	set_job(jobs[2], "calling", "CA-prog-3");
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld", (long long)run);
	r = call("GET", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "run.completed"), 1);
	assert_int_equal(jint(&r, "run.failed"), 1);
	assert_int_equal(jint(&r, "run.in_progress"), 1);
	assert_int_equal(jint(&r, "run.queued"), 1);
	assert_true(json_real_value(jget(r.json, "run.progress_pct")) == 50.0);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/jobs?status=calling",
		 (long long)run);
	r = call("GET", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	assert_string_equal(jstr(&r, "items.0.call_sid"), sid_of("CA-prog-3"));
	assert_string_equal(jstr(&r, "items.0.lead_name"), "Lead2");
	assert_string_equal(jstr(&r, "items.0.phone"), "+14155550202");
	resp_free(&r);
	r = call("GET", "/api/outbound_calls/runs?status=pending", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	assert_int_equal(jint(&r, "items.0.id"), run);
	resp_free(&r);

	/* cancel with a live call: the queued job goes, the run waits for the call */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_true(jbool(&r, "run.cancel_requested"));
	assert_string_equal(jstr(&r, "run.status"), "pending");
	assert_int_equal(jint(&r, "jobs_cancelled"), 1);
	assert_int_equal(jint(&r, "run.cancelled"), 1);
	resp_free(&r);
	assert_true(notified(payload));
	/* the call ends; a second cancel finds nothing live and ends the run */
	set_job(jobs[2], "completed", "CA-prog-3");
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_string_equal(jstr(&r, "run.status"), "cancelled");
	assert_true(json_is_string(jget(r.json, "run.ended_at")));
	resp_free(&r);
	r = call("POST", path, t.agent_tok, NULL);
	ERROR(r, 409, "run_finished");
	assert_string_equal(jstr(&r, "error.status"), "cancelled");
	resp_free(&r);
	/* no run is active any more */
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_false(jbool(&r, "active"));
	assert_null(jget(r.json, "stopped_run_id"));
	resp_free(&r);
	tenant_free(&t);
}

static void test_force_cancel(void **state)
{
	tenant_t t;
	int64_t ids[4], jobs[4], run;
	resp_t r;
	char path[128], payload[48], b[24];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 4, 300, ids);
	r = create_run(&fx.ctx, &t, ids, 4);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	job_ids(run, jobs, 4);
	set_job(jobs[0], "calling", "CA-force-1");
	set_job(jobs[1], "dialing", NULL);
	ITEST_X(fx.owner,
		"UPDATE outbound_call_runs SET status = 'running', started_at = now(), "
		"last_heartbeat_at = now(), locked_by_worker = 'w:1' WHERE id = $1::bigint",
		s64(b, run));
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_true(jbool(&r, "active"));
	assert_int_equal(jint(&r, "run.id"), run);
	assert_int_equal(jint(&r, "run.in_progress"), 2);
	assert_string_equal(jstr(&r, "run.locked_by_worker"), "w:1");
	resp_free(&r);

	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_string_equal(jstr(&r, "run.status"), "cancelled");
	assert_true(jbool(&r, "run.cancel_requested"));
	assert_true(jbool(&r, "run.force_cancel"));
	assert_int_equal(jint(&r, "jobs_cancelled"), 2);
	assert_int_equal(jint(&r, "calls_hangup_requested"), 2);
	assert_int_equal(jint(&r, "run.cancelled"), 2);
	resp_free(&r);
	snprintf(payload, sizeof(payload), "force_cancel:%lld", (long long)run);
	assert_true(notified(payload));
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND hangup_requested_at IS NOT NULL AND status IN ('dialing', "
		      "'calling')",
		      s64(b, run)),
	    2);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
		      "AND status = 'cancelled' AND error_message = 'Force cancelled by "
		      "user'",
		      s64(b, run)),
	    2);
	assert_int_equal(audit_rows("FORCE_CANCEL", "run.force_cancel", "run", run), 1);

	/* idempotent, also on the legacy path (its id is the run's) */
	snprintf(path, sizeof(path), "/api/outbound_calls/jobs/%lld/force-cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "jobs_cancelled"), 0);
	assert_int_equal(jint(&r, "calls_hangup_requested"), 2); /* still live */
	assert_string_equal(jstr(&r, "run.status"), "cancelled");
	resp_free(&r);
	set_job(jobs[0], "completed", "CA-force-1");
	set_job(jobs[1], "failed", NULL);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "jobs_cancelled"), 0);
	assert_int_equal(jint(&r, "calls_hangup_requested"), 0);
	resp_free(&r);
	/* a finished run is not cancelled again */
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	ERROR(r, 409, "run_finished");
	resp_free(&r);
	tenant_free(&t);
}

/* --- the race-free 409 ----------------------------------------------------------- */

typedef struct racer {
	tenant_t *t;
	int64_t *ids;
	resp_t r;
} racer_t;

static void *race(void *arg)
{
	racer_t *x = arg;

	x->r = create_run(&fx.ctx2, x->t, x->ids, 2);
	return NULL;
}

/* Start a run creation on the second connection while the owner holds an
 * uncommitted active run; finish the owner's transaction with `end`. */
static resp_t race_against(tenant_t *t, int64_t *ids, const char *end, int64_t *held)
{
	racer_t x = {.t = t, .ids = ids};
	PGconn *super = itest_super_pg();
	pthread_t th;
	bool waiting = false;

	itest_exec(fx.owner, "BEGIN", 0, NULL);
	*held = ITEST_I64(fx.owner,
			  "INSERT INTO outbound_call_runs (business_id) VALUES ($1::bigint) "
			  "RETURNING id",
			  t->bid);
	assert_int_equal(pthread_create(&th, NULL, race, &x), 0);
	/* the API's insert must be waiting on our transaction, not failing */
	for (int i = 0; i < 250 && !waiting; i++) {
		PGresult *q =
		    ITEST_Q(super, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
				   "'itest_outbound_api2' AND wait_event_type = 'Lock'");

		waiting = strcmp(PQgetvalue(q, 0, 0), "1") == 0;
		PQclear(q);
		if (!waiting)
			usleep(20000);
	}
	PQfinish(super);
	itest_exec(fx.owner, end, 0, NULL);
	pthread_join(th, NULL);
	assert_true(waiting);
	return x.r;
}

static void test_second_active_run_is_409_race_free(void **state)
{
	tenant_t t;
	int64_t ids[2], held, run;
	resp_t r;
	char path[96], b[24];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 2, 400, ids);
	/* the other transaction commits: 409 with its run */
	r = race_against(&t, ids, "COMMIT", &held);
	ERROR(r, 409, "active_run_exists");
	assert_int_equal(jint(&r, "error.run_id"), held);
	resp_free(&r);
	ITEST_X(fx.owner, "UPDATE outbound_call_runs SET status = 'failed' WHERE id = $1::bigint",
		s64(b, held));
	/* the other transaction rolls back: ours goes through */
	r = race_against(&t, ids, "ROLLBACK", &held);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	/* and a plain second request is 409 too */
	r = create_run(&fx.ctx, &t, ids, 2);
	ERROR(r, 409, "active_run_exists");
	assert_int_equal(jint(&r, "error.run_id"), run);
	resp_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_runs WHERE business_id = "
				   "$1::bigint AND status IN ('pending', 'running')",
				   t.bid),
			 1);
	snprintf(path, sizeof(path), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	r = call("POST", path, t.agent_tok, NULL);
	STATUS(r, 200);
	resp_free(&r);
	tenant_free(&t);
}

/* --- the stale run -------------------------------------------------------------- */

static void kill_all_workers(void)
{
	ITEST_X(fx.owner, "UPDATE workers SET stopped_at = now() WHERE stopped_at IS NULL");
}

static void test_stale_run_stopped_when_no_worker_is_alive(void **state)
{
	tenant_t t;
	int64_t ids[3], jobs[3], run, worker;
	resp_t r;
	char b[24], u[64], name[96];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 3, 500, ids);
	r = create_run(&fx.ctx, &t, ids, 3);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	job_ids(run, jobs, 3);
	set_job(jobs[0], "dialing", NULL); /* the worker died before the provider answered */
	set_job(jobs[1], "calling", "CA-stale-2");
	ITEST_X(fx.owner,
		"UPDATE outbound_call_runs SET status = 'running', started_at = now() - interval "
		"'2 hours', locked_by_worker = 'ghost:1', last_heartbeat_at = now() - interval "
		"'1 hour' WHERE id = $1::bigint",
		s64(b, run));

	/* a live worker will take the run over: it is reported stale, not stopped */
	kill_all_workers();
	snprintf(name, sizeof(name), "itest-live-%s", itest_unique(u, sizeof(u)));
	worker = ITEST_I64(fx.owner,
			   "INSERT INTO workers (name, hostname, pid) VALUES ($1, 'itest', 1) "
			   "RETURNING id",
			   name);
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_true(jbool(&r, "active"));
	assert_true(jbool(&r, "run.stale"));
	assert_string_equal(jstr(&r, "run.status"), "running");
	resp_free(&r);

	/* no worker alive: this request stops it */
	ITEST_X(fx.owner, "UPDATE workers SET stopped_at = now() WHERE id = $1::bigint",
		s64(b, worker));
	kill_all_workers();
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_false(jbool(&r, "active"));
	assert_int_equal(jint(&r, "stopped_run_id"), run);
	assert_null(jget(r.json, "run"));
	resp_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint "
				   "AND status = 'stopped' AND ended_at IS NOT NULL AND last_error "
				   "LIKE 'Run stopped - worker unresponsive%'",
				   s64(b, run)),
			 1);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
		      "AND status = 'failed' AND error_message = 'Run stopped - worker "
		      "unresponsive'",
		      s64(b, jobs[2])),
	    1);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
				   "AND status = 'failed' AND error_code = 'worker_lost'",
				   s64(b, jobs[0])),
			 1);
	/* a call in progress is left to its status callback */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
				   "AND status = 'calling'",
				   s64(b, jobs[1])),
			 1);
	assert_int_equal(audit_rows("STALE_DETECTION", "run.stop_stale", "run", run), 1);
	/* the next look finds nothing active, and stops nothing again */
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_false(jbool(&r, "active"));
	assert_null(jget(r.json, "stopped_run_id"));
	resp_free(&r);

	/* a run left pending, never claimed for longer than the threshold, is stale too */
	r = create_run(&fx.ctx, &t, ids + 2, 1);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_true(jbool(&r, "active")); /* fresh: not stale yet */
	assert_false(jbool(&r, "run.stale"));
	resp_free(&r);
	ITEST_X(fx.owner,
		"UPDATE outbound_call_runs SET created_at = now() - interval '10 minutes' "
		"WHERE id = $1::bigint",
		s64(b, run));
	kill_all_workers();
	r = call("GET", "/api/outbound_calls/jobs/active", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "stopped_run_id"), run);
	resp_free(&r);
	tenant_free(&t);
}

/* --- scripts and the call log -------------------------------------------------------- */

static void test_scripts(void **state)
{
	tenant_t t;
	int64_t ids[1], sid, run;
	resp_t r;
	char path[128], body[256], b[24];

	(void)state;
	tenant_new(&t, "IL");
	import_leads(&t, 1, 600, ids);
	r = call("POST", "/api/outbound_calls/scripts", t.admin_tok,
		 "{\"name\":\"Bridge\",\"kind\":\"bridge\",\"bridge_to\":\"03-1234567\","
		 "\"language\":\"he-IL\",\"options\":{\"record\":true}}");
	STATUS(r, 201);
	sid = jint(&r, "script.id");
	assert_string_equal(jstr(&r, "script.bridge_to"), "+97231234567");
	assert_string_equal(jstr(&r, "script.voice"), "alice");
	assert_string_equal(jstr(&r, "script.text"), "");
	assert_true(json_is_true(jget(r.json, "script.options.record")));
	resp_free(&r);
	/* validation lists every problem */
	r = call("POST", "/api/outbound_calls/scripts", t.admin_tok,
		 "{\"kind\":\"say\",\"language\":\"english\",\"bridge_to\":\"+1\"}");
	ERROR(r, 400, "invalid_input");
	assert_int_equal(json_array_size(jget(r.json, "error.fields")), 4);
	resp_free(&r);
	r = call("POST", "/api/outbound_calls/scripts", t.agent_tok,
		 "{\"name\":\"x\",\"kind\":\"say\",\"text\":\"hi\"}");
	ERROR(r, 403, "forbidden");
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/outbound_calls/scripts/%lld", (long long)sid);
	r = call("PUT", path, t.admin_tok,
		 "{\"name\":\"Hello\",\"kind\":\"say\",\"text\":\"Hello from us\",\"voicemail\":"
		 "\"Call us back\"}");
	STATUS(r, 200);
	assert_string_equal(jstr(&r, "script.kind"), "say");
	assert_true(json_is_null(jget(r.json, "script.bridge_to")));
	assert_string_equal(jstr(&r, "script.voicemail"), "Call us back");
	resp_free(&r);
	r = call("GET", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_string_equal(jstr(&r, "script.name"), "Hello");
	resp_free(&r);
	r = call("GET", "/api/outbound_calls/scripts", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	resp_free(&r);

	/* a run using it: the script cannot go while the run is active */
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld],\"script_id\":%lld}", (long long)ids[0],
		 (long long)sid);
	r = call("POST", "/api/outbound_calls/runs", t.agent_tok, body);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	assert_int_equal(jint(&r, "run.script_id"), sid);
	resp_free(&r);
	r = call("DELETE", path, t.admin_tok, NULL);
	ERROR(r, 409, "script_in_use");
	assert_int_equal(jint(&r, "error.run_id"), run);
	resp_free(&r);
	snprintf(body, sizeof(body), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	r = call("POST", body, t.agent_tok, NULL);
	STATUS(r, 200);
	resp_free(&r);
	r = call("DELETE", path, t.admin_tok, NULL);
	STATUS(r, 204);
	resp_free(&r);
	r = call("GET", path, t.agent_tok, NULL);
	ERROR(r, 404, "not_found");
	resp_free(&r);
	/* the finished run kept what it ran */
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint AND "
		      "script_id IS NULL AND script->>'text' = 'Hello from us'",
		      s64(b, run)),
	    1);
	/* an inline script, validated with its field path */
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld],\"script\":{\"kind\":\"gather\"}}",
		 (long long)ids[0]);
	r = call("POST", "/api/outbound_calls/runs", t.agent_tok, body);
	ERROR(r, 400, "invalid_input");
	assert_string_equal(jstr(&r, "error.fields.0.field"), "script.text");
	resp_free(&r);
	snprintf(body, sizeof(body),
		 "{\"lead_ids\":[%lld],\"script\":{\"kind\":\"say\",\"text\":\"Hi\"},"
		 "\"max_attempts\":3,\"retry_delay_s\":60}",
		 (long long)ids[0]);
	r = call("POST", "/api/outbound_calls/runs", t.agent_tok, body);
	STATUS(r, 201);
	assert_int_equal(jint(&r, "run.max_attempts"), 3);
	assert_int_equal(jint(&r, "run.retry_delay_s"), 60);
	run = jint(&r, "run.id");
	resp_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM outbound_call_runs WHERE id = $1::bigint AND "
		      "script->>'kind' = 'say' AND script->>'language' = 'en-US'",
		      s64(b, run)),
	    1);
	tenant_free(&t);
}

static void test_calls_list(void **state)
{
	tenant_t t;
	int64_t ids[2], run;
	resp_t r;
	char path[128], b[24], l[24];

	(void)state;
	tenant_new(&t, "US");
	import_leads(&t, 2, 700, ids);
	r = create_run(&fx.ctx, &t, ids, 2);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	ITEST_X(fx.owner,
		"INSERT INTO call_log (business_id, call_sid, direction, from_number, to_number, "
		"status, duration, lead_id, run_id) VALUES ($1::bigint, $4, 'outbound', "
		"'+15550000000', '+14155550700', 'completed', 42, $2::bigint, $3::bigint), "
		"($1::bigint, $5, 'inbound', '+14155550701', '+15550000000', 'no-answer', "
		"NULL, NULL, NULL)",
		t.bid, s64(l, ids[0]), s64(b, run), sid_of("CA-log-1"), sid_of("CA-log-2"));
	snprintf(path, sizeof(path), "/api/calls?run_id=%lld", (long long)run);
	r = call("GET", path, t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	assert_string_equal(jstr(&r, "items.0.call_sid"), sid_of("CA-log-1"));
	assert_int_equal(jint(&r, "items.0.duration"), 42);
	assert_int_equal(jint(&r, "items.0.lead_id"), ids[0]);
	resp_free(&r);
	r = call("GET", "/api/calls?direction=inbound&status=no-answer", t.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 1);
	assert_true(json_is_null(jget(r.json, "items.0.duration")));
	resp_free(&r);
	r = call("GET", "/api/calls?status=in_progress&direction=sideways&run_id=-1", t.agent_tok,
		 NULL);
	ERROR(r, 400, "invalid_input");
	assert_int_equal(json_array_size(jget(r.json, "error.fields")), 3);
	resp_free(&r);
	tenant_free(&t);
}

/* --- tenant isolation ----------------------------------------------------------- */

/* 403 forbidden for another tenant's resource, with its [SECURITY] audit row. */
static void expect_cross_at(const char *method, const char *uri, const char *token,
			    const char *body, const char *type, int64_t id, int line)
{
	int64_t before = audit_rows("SECURITY", "tenant.cross_access", type, id);
	resp_t r = call(method, uri, token, body);

	if (r.status != 403)
		fail_msg("line %d: %s %s: status %d, want 403", line, method, uri, r.status);
	assert_string_equal(jstr(&r, "error.code"), "forbidden");
	assert_string_equal(jstr(&r, "error.reason"), "forbidden");
	resp_free(&r);
	if (audit_rows("SECURITY", "tenant.cross_access", type, id) != before + 1)
		fail_msg("line %d: %s %s left no SECURITY audit row", line, method, uri);
}
#define CROSS(m, u, tok, body, type, id)                                                           \
	expect_cross_at((m), (u), (tok), (body), (type), (id), __LINE__)

static void test_tenant_isolation(void **state)
{
	tenant_t a, b;
	int64_t ids[2], list, run, script;
	resp_t r;
	char u[160], body[160];

	(void)state;
	tenant_new(&a, "US");
	tenant_new(&b, "US");
	list = import_leads(&a, 2, 800, ids);
	r = create_run(&fx.ctx, &a, ids, 2);
	STATUS(r, 201);
	run = jint(&r, "run.id");
	resp_free(&r);
	r = call("POST", "/api/outbound_calls/scripts", a.admin_tok,
		 "{\"name\":\"A\",\"kind\":\"say\",\"text\":\"hi\"}");
	STATUS(r, 201);
	script = jint(&r, "script.id");
	resp_free(&r);

	snprintf(u, sizeof(u), "/api/leads/%lld", (long long)ids[0]);
	CROSS("PATCH", u, b.admin_tok, "{\"do_not_call\":true}", "lead", ids[0]);
	snprintf(u, sizeof(u), "/api/outbound_calls/runs/%lld", (long long)run);
	CROSS("GET", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/outbound_calls/runs/%lld/jobs", (long long)run);
	CROSS("GET", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/outbound_calls/runs/%lld/cancel", (long long)run);
	CROSS("POST", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/outbound_calls/runs/%lld/force-cancel", (long long)run);
	CROSS("POST", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/outbound_calls/jobs/%lld/force-cancel", (long long)run);
	CROSS("POST", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/outbound_calls/scripts/%lld", (long long)script);
	CROSS("GET", u, b.agent_tok, NULL, "script", script);
	CROSS("PUT", u, b.admin_tok, "{\"name\":\"x\",\"kind\":\"say\",\"text\":\"x\"}", "script",
	      script);
	CROSS("DELETE", u, b.admin_tok, NULL, "script", script);
	snprintf(u, sizeof(u), "/api/calls?run_id=%lld", (long long)run);
	CROSS("GET", u, b.agent_tok, NULL, "run", run);
	snprintf(u, sizeof(u), "/api/leads?list_id=%lld", (long long)list);
	CROSS("GET", u, b.agent_tok, NULL, "list", list);
	/* in a body: leads, a list, a script */
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld]}", (long long)ids[1]);
	CROSS("POST", "/api/outbound_calls/runs", b.agent_tok, body, "lead", ids[1]);
	snprintf(body, sizeof(body), "{\"list_id\":%lld}", (long long)list);
	CROSS("POST", "/api/outbound_calls/runs", b.agent_tok, body, "list", list);
	import_leads(&b, 1, 900, ids + 1);
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld],\"script_id\":%lld}", (long long)ids[1],
		 (long long)script);
	CROSS("POST", "/api/outbound_calls/runs", b.agent_tok, body, "script", script);

	/* nothing of A's changed, and B sees none of it */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_runs WHERE business_id = "
				   "$1::bigint AND status = 'pending'",
				   a.bid),
			 1);
	r = call("GET", "/api/outbound_calls/runs", b.agent_tok, NULL);
	STATUS(r, 200);
	assert_int_equal(jint(&r, "total"), 0);
	resp_free(&r);
	r = call("GET", "/api/outbound_calls/jobs/active", b.agent_tok, NULL);
	STATUS(r, 200);
	assert_false(jbool(&r, "active"));
	resp_free(&r);

	/* unknown ids are 404, unknown lead ids in a body too */
	r = call("GET", "/api/outbound_calls/runs/999999999999", b.agent_tok, NULL);
	ERROR(r, 404, "not_found");
	resp_free(&r);
	r = call("POST", "/api/outbound_calls/runs", b.agent_tok, "{\"lead_ids\":[999999999999]}");
	ERROR(r, 404, "not_found");
	assert_int_equal(jint(&r, "error.lead_id"), 999999999999LL);
	resp_free(&r);
	r = call("POST", "/api/outbound_calls/runs/1'OR'1'='1/cancel", b.agent_tok, NULL);
	ERROR(r, 404, "not_found");
	resp_free(&r);
	/* and no token at all */
	r = call("GET", "/api/leads", NULL, NULL);
	ERROR(r, 401, "unauthenticated");
	resp_free(&r);
	tenant_free(&a);
	tenant_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_dedupes_and_fills_blanks),
	    cmocka_unit_test(test_do_not_call),
	    cmocka_unit_test(test_run_progress_and_cancel),
	    cmocka_unit_test(test_force_cancel),
	    cmocka_unit_test(test_second_active_run_is_409_race_free),
	    cmocka_unit_test(test_stale_run_stopped_when_no_worker_is_alive),
	    cmocka_unit_test(test_scripts),
	    cmocka_unit_test(test_calls_list),
	    cmocka_unit_test(test_tenant_isolation),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

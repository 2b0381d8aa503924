/*
 * test_audit_ratelimit.c - the audit trail and the app-level rate limits,
 * through the API pipeline (api_dispatch) on a real database as dialflow_app.
 *
 *   - every event class lands in audit_events with the right actor and
 *     tenant: login success and failure (email hashed), refresh reuse,
 *     logout, role/active and page changes, impersonation (and its refusal),
 *     cross-tenant refusals, rate-limit refusals;
 *   - the app role cannot UPDATE, DELETE or TRUNCATE the trail;
 *   - a cross-tenant 403 is kept although its transaction rolled back (the
 *     rate-limit hit taken before it is given back);
 *   - owners see their own tenant's trail only, with the filters;
 *   - retention: dialflow-admin audit prune, monthly partitions;
 *   - rate limits at their boundary (N pass, N+1 is 429 with Retry-After),
 *     across two API processes, per-business overrides, the sliding window;
 *   - failed logins: backoff per account, answers identical to a wrong
 *     password or an unknown email.
 */
#include "apitest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	api_ctx_t ctx, ctx2; /* two API processes */
	char secret[64];
	PGconn *owner;
	int64_t sysadmin;
	char *sys_tok;
	unsigned seq;
} fx;

typedef struct tenant {
	int64_t biz, owner, admin, agent;
	char *owner_tok, *admin_tok, *agent_tok;
	char bid[24];
	char owner_email[128];
} tenant_t;

static void tenant_new(tenant_t *t)
{
	static const char *const pages[] = {"calls_outbound", "settings", NULL};

	memset(t, 0, sizeof(*t));
	t->biz = itest_create_business(fx.owner, "audit", true);
	itest_i64s(t->bid, sizeof(t->bid), t->biz);
	itest_enable_pages(fx.owner, t->biz, pages);
	t->owner = itest_create_user(fx.owner, t->biz, "owner", NULL, t->owner_email,
				     sizeof(t->owner_email));
	t->admin = itest_create_user(fx.owner, t->biz, "admin", NULL, NULL, 0);
	t->agent = itest_create_user(fx.owner, t->biz, "agent", NULL, NULL, 0);
	t->owner_tok = at_token(&fx.ctx, t->owner);
	t->admin_tok = at_token(&fx.ctx, t->admin);
	t->agent_tok = at_token(&fx.ctx, t->agent);
}

static void tenant_free(tenant_t *t)
{
	free(t->owner_tok);
	free(t->admin_tok);
	free(t->agent_tok);
}

/* A request id unique to this call, to find its audit rows. */
static const char *rid(char *buf, size_t n)
{
	snprintf(buf, n, "at-%d-%u", (int)getpid(), ++fx.seq);
	return buf;
}

static at_resp_t login(const char *email, const char *password, const char *request_id)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	return at_call(&fx.ctx, "POST", "/api/auth/login", NULL, "application/json", body, NULL,
		       request_id);
}

static char *event_field(const char *request_id, const char *action, const char *expr)
{
	char sql[512];
	PGresult *r;
	char *s;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce((%s)::text, '<null>') FROM audit_events "
		 "WHERE request_id = $1 AND action = $2",
		 expr);
	r = ITEST_Q(fx.owner, sql, request_id, action);
	assert_int_equal(PQntuples(r), 1);
	s = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return s;
}
#define FIELD_IS(req, action, expr, want)                                                          \
	do {                                                                                       \
		char *v_ = event_field((req), (action), (expr));                                   \
		assert_string_equal(v_, (want));                                                   \
		free(v_);                                                                          \
	} while (0)

/* --- the audit trail ------------------------------------------------------- */

static void test_login_success_and_failure(void **state)
{
	tenant_t t;
	char r1[64], r2[64], r3[64], uid[24];
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	itest_i64s(uid, sizeof(uid), t.owner);
	r = login(t.owner_email, ITEST_PASSWORD, rid(r1, sizeof(r1)));
	AT_STATUS(r, 200);
	at_free(&r);
	FIELD_IS(r1, "auth.login", "tag", "AUDIT");
	FIELD_IS(r1, "auth.login", "actor_id", uid);
	FIELD_IS(r1, "auth.login", "business_id", t.bid);
	FIELD_IS(r1, "auth.login", "outcome", "ok");

	r = login(t.owner_email, "wrong-password", rid(r2, sizeof(r2)));
	AT_ERROR(r, 401, "invalid_credentials");
	at_free(&r);
	FIELD_IS(r2, "auth.login_failed", "tag", "SECURITY");
	FIELD_IS(r2, "auth.login_failed", "business_id", t.bid);
	FIELD_IS(r2, "auth.login_failed", "details->>'reason'", "bad_password");
	/* the email is hashed, never stored */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM audit_events WHERE request_id = $1 "
				   "AND details->>'email' LIKE 'sha256:%' "
				   "AND position(lower($2) IN lower(details::text)) = 0",
				   r2, t.owner_email),
			 1);

	r = login("nobody-at-all@example.test", "whatever", rid(r3, sizeof(r3)));
	AT_ERROR(r, 401, "invalid_credentials");
	at_free(&r);
	FIELD_IS(r3, "auth.login_failed", "business_id", "<null>");
	FIELD_IS(r3, "auth.login_failed", "actor_id", "<null>");
	FIELD_IS(r3, "auth.login_failed", "details->>'reason'", "unknown_email");
	tenant_free(&t);
}

static void test_refresh_reuse_and_logout(void **state)
{
	tenant_t t;
	char r1[64], r2[64], r3[64], uid[24], body[512], *refresh, *access;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	r = login(t.owner_email, ITEST_PASSWORD, rid(r1, sizeof(r1)));
	AT_STATUS(r, 200);
	refresh = strdup(at_str(&r, "refresh_token"));
	access = strdup(at_str(&r, "access_token"));
	at_free(&r);
	snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh);
	r = at_call(&fx.ctx, "POST", "/api/auth/refresh", NULL, "application/json", body, NULL,
		    NULL);
	AT_STATUS(r, 200);
	at_free(&r);
	/* the rotated token comes back: the family dies, and that is recorded */
	r = at_call(&fx.ctx2, "POST", "/api/auth/refresh", NULL, "application/json", body, NULL,
		    rid(r2, sizeof(r2)));
	AT_ERROR(r, 401, "invalid_refresh_token");
	at_free(&r);
	itest_i64s(uid, sizeof(uid), t.owner);
	FIELD_IS(r2, "auth.refresh_reuse", "tag", "SECURITY");
	FIELD_IS(r2, "auth.refresh_reuse", "actor_id", uid);
	FIELD_IS(r2, "auth.refresh_reuse", "business_id", t.bid);

	r = at_call(&fx.ctx, "POST", "/api/auth/logout", access, NULL, NULL, NULL,
		    rid(r3, sizeof(r3)));
	AT_STATUS(r, 204);
	at_free(&r);
	FIELD_IS(r3, "auth.logout", "actor_id", uid);
	FIELD_IS(r3, "auth.logout", "actor_role", "owner");
	FIELD_IS(r3, "auth.logout", "business_id", t.bid);
	free(refresh);
	free(access);
	tenant_free(&t);
}

static void test_role_pages_and_impersonation(void **state)
{
	tenant_t t;
	char r1[64], r2[64], r3[64], r4[64], uri[96], hdr[64], sys[24], own[24];
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	itest_i64s(sys, sizeof(sys), fx.sysadmin);
	itest_i64s(own, sizeof(own), t.owner);
	/* role and active changes by the owner */
	snprintf(uri, sizeof(uri), "/api/users/%lld", (long long)t.agent);
	r = at_call(&fx.ctx, "PATCH", uri, t.owner_tok, "application/json",
		    "{\"role\":\"admin\",\"is_active\":false}", NULL, rid(r1, sizeof(r1)));
	AT_STATUS(r, 200);
	at_free(&r);
	FIELD_IS(r1, "user.update", "actor_id", own);
	FIELD_IS(r1, "user.update", "business_id", t.bid);
	FIELD_IS(r1, "user.update", "details->>'role'", "admin");
	FIELD_IS(r1, "user.update", "details->>'is_active'", "false");

	/* page changes by the platform */
	snprintf(uri, sizeof(uri), "/api/admin/businesses/%lld/pages", (long long)t.biz);
	r = at_call(&fx.ctx, "PATCH", uri, fx.sys_tok, "application/json",
		    "{\"enabled_pages\":[\"calls_outbound\",\"settings\"]}", NULL,
		    rid(r2, sizeof(r2)));
	AT_STATUS(r, 200);
	at_free(&r);
	FIELD_IS(r2, "business.pages", "actor_id", sys);
	FIELD_IS(r2, "business.pages", "actor_role", "system_admin");
	FIELD_IS(r2, "business.pages", "business_id", t.bid);

	/* impersonation via X-Business-Id */
	snprintf(hdr, sizeof(hdr), "HTTP_X_BUSINESS_ID=%lld", (long long)t.biz);
	r = at_call(&fx.ctx, "GET", "/api/users", fx.sys_tok, NULL, NULL, hdr, rid(r3, sizeof(r3)));
	AT_STATUS(r, 200);
	at_free(&r);
	FIELD_IS(r3, "impersonate", "impersonator_id", sys);
	FIELD_IS(r3, "impersonate", "business_id", t.bid);

	/* ... and the refusal of it to anyone else */
	r = at_call(&fx.ctx, "GET", "/api/users", t.owner_tok, NULL, NULL, hdr,
		    rid(r4, sizeof(r4)));
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	FIELD_IS(r4, "auth.impersonation_denied", "tag", "SECURITY");
	FIELD_IS(r4, "auth.impersonation_denied", "actor_id", own);
	FIELD_IS(r4, "auth.impersonation_denied", "business_id", t.bid);
	tenant_free(&t);
}

/*
 * A run request naming another tenant's script: 403, the event kept, and
 * everything the request did before the refusal (its rate-limit hit) undone.
 */
static void test_cross_tenant_kept_although_rolled_back(void **state)
{
	tenant_t a, b;
	char r1[64], body[256], adm[24], sid[24];
	int64_t lead, script;
	at_resp_t r;

	(void)state;
	tenant_new(&a);
	tenant_new(&b);
	itest_i64s(adm, sizeof(adm), a.admin);
	r = at_json(&fx.ctx, "POST", "/api/leads/import", a.admin_tok,
		    "{\"rows\":[{\"phone\":\"+14155550101\",\"name\":\"A\"}]}");
	AT_STATUS(r, 200);
	at_free(&r);
	lead =
	    ITEST_I64(fx.owner, "SELECT max(id) FROM leads WHERE business_id = $1::bigint", a.bid);
	script = ITEST_I64(fx.owner,
			   "INSERT INTO call_scripts (business_id, name, kind, text) "
			   "VALUES ($1::bigint, 'theirs', 'say', 'hi') RETURNING id",
			   b.bid);
	itest_i64s(sid, sizeof(sid), script);
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld],\"script_id\":%lld}", (long long)lead,
		 (long long)script);
	r = at_call(&fx.ctx, "POST", "/api/outbound_calls/runs", a.admin_tok, "application/json",
		    body, NULL, rid(r1, sizeof(r1)));
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	FIELD_IS(r1, "tenant.cross_access", "tag", "SECURITY");
	FIELD_IS(r1, "tenant.cross_access", "actor_id", adm);
	FIELD_IS(r1, "tenant.cross_access", "business_id", a.bid);
	FIELD_IS(r1, "tenant.cross_access", "resource_id", sid);
	FIELD_IS(r1, "tenant.cross_access", "outcome", "denied");
	/* the request's own transaction rolled back: no run, and its rate-limit hit is gone */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM outbound_call_runs "
				   "WHERE business_id = $1::bigint",
				   a.bid),
			 0);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM rate_limit_hits WHERE bucket = "
				   "'run_create:' || $1 || ':business'",
				   a.bid),
			 0);
	tenant_free(&a);
	tenant_free(&b);
}

static void test_app_role_cannot_rewrite_the_trail(void **state)
{
	char *ci = itest_conninfo_with(itest_db_url(), (const char *)NULL);
	PGconn *c = itest_pg_connect(ci);

	(void)state;
	free(ci);
	itest_create_audit(fx.owner, 0, "itest.immutable");
	itest_exec(c, "SET ROLE dialflow_app", 0, NULL);
	assert_string_equal(itest_sqlstate(c, "UPDATE audit_events SET action = 'x'", 0, NULL),
			    "42501");
	assert_string_equal(itest_sqlstate(c, "DELETE FROM audit_events", 0, NULL), "42501");
	assert_string_equal(itest_sqlstate(c, "TRUNCATE audit_events", 0, NULL), "42501");
	/* nor a partition behind the parent's back */
	assert_string_equal(itest_sqlstate(c, "DELETE FROM audit_events_default", 0, NULL),
			    "42501");
	itest_exec(c, "SET ROLE dialflow_worker", 0, NULL);
	assert_string_equal(itest_sqlstate(c, "UPDATE audit_events SET action = 'x'", 0, NULL),
			    "42501");
	assert_string_equal(itest_sqlstate(c, "DELETE FROM audit_events", 0, NULL), "42501");
	PQfinish(c);
}

static void test_owners_see_their_own_trail(void **state)
{
	tenant_t a, b;
	char uri[256];
	int64_t ea, eb;
	at_resp_t r;
	json_t *items, *it;
	size_t i;
	bool seen_a = false;

	(void)state;
	tenant_new(&a);
	tenant_new(&b);
	ea = itest_create_audit(fx.owner, a.biz, "itest.mine");
	eb = itest_create_audit(fx.owner, b.biz, "itest.mine");
	r = at_json(&fx.ctx, "GET", "/api/audit?page_size=200", a.owner_tok, NULL);
	AT_STATUS(r, 200);
	items = at_get(&r, "items");
	assert_true(json_array_size(items) > 0);
	json_array_foreach(items, i, it)
	{
		assert_int_equal(json_integer_value(json_object_get(it, "business_id")), a.biz);
		assert_int_not_equal(json_integer_value(json_object_get(it, "id")), eb);
		seen_a |= json_integer_value(json_object_get(it, "id")) == ea;
	}
	assert_true(seen_a);
	at_free(&r);
	/* filters: action and resource, newest first */
	snprintf(uri, sizeof(uri), "/api/audit?action=itest.mine&tag=AUDIT");
	r = at_json(&fx.ctx, "GET", uri, a.owner_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 1);
	assert_int_equal(at_int(&r, "items.0.id"), ea);
	at_free(&r);
	/* an admin is not an owner */
	r = at_json(&fx.ctx, "GET", "/api/audit", a.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	/* the platform sees both, and can narrow to one tenant's events by actor/resource */
	r = at_json(&fx.ctx, "GET", "/api/admin/audit?action=itest.mine&page_size=200", fx.sys_tok,
		    NULL);
	AT_STATUS(r, 200);
	assert_true(at_int(&r, "total") >= 2);
	at_free(&r);
	tenant_free(&a);
	tenant_free(&b);
}

static void test_retention_prune_and_partitions(void **state)
{
	char cmd[1024];
	FILE *p;
	char out[256] = "";
	int64_t old_id, new_id;

	(void)state;
	old_id = itest_i64(fx.owner,
			   "INSERT INTO audit_events (tag, action, ts) VALUES ('AUDIT', "
			   "'itest.old', now() - interval '400 days') RETURNING id",
			   0, NULL);
	new_id = itest_create_audit(fx.owner, 0, "itest.recent");
	/* the months ahead exist, and an event of the far past found a home */
	assert_true(itest_i64(fx.owner, "SELECT audit_ensure_partitions(now(), 3)", 0, NULL) >= 0);
	assert_int_equal(
	    itest_i64(fx.owner,
		      "SELECT count(*) FROM pg_class WHERE relname = 'audit_events_y' || "
		      "to_char(now() + interval '2 months', 'YYYY\"m\"MM')",
		      0, NULL),
	    1);
	snprintf(cmd, sizeof(cmd),
		 "env -u DIALFLOW_JWT_SECRET_FILE DIALFLOW_DATABASE_URL='%s' ./dialflow-admin "
		 "audit prune --older-than 180d "
		 "2>/dev/null",
		 itest_db_url());
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(out, "\"removed\":"));
	{
		char ids[24];

		assert_int_equal(
		    ITEST_I64(fx.owner, "SELECT count(*) FROM audit_events WHERE id = $1::bigint",
			      itest_i64s(ids, sizeof(ids), old_id)),
		    0);
		assert_int_equal(
		    ITEST_I64(fx.owner, "SELECT count(*) FROM audit_events WHERE id = $1::bigint",
			      itest_i64s(ids, sizeof(ids), new_id)),
		    1);
	}
	/* a typo must not wipe today's trail */
	snprintf(cmd, sizeof(cmd),
		 "env -u DIALFLOW_JWT_SECRET_FILE DIALFLOW_DATABASE_URL='%s' ./dialflow-admin "
		 "audit prune --older-than 5m "
		 ">/dev/null 2>&1",
		 itest_db_url());
	assert_int_not_equal(system(cmd), 0);
}

/* --- rate limits ----------------------------------------------------------- */

static at_resp_t create_run(api_ctx_t *ctx, tenant_t *t, int64_t lead)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld]}", (long long)lead);
	return at_json(ctx, "POST", "/api/outbound_calls/runs", t->admin_tok, body);
}

/* End the business's active run (as a finished campaign would), so another may start. */
static void finish_runs(tenant_t *t)
{
	ITEST_X(fx.owner,
		"UPDATE outbound_call_runs SET status = 'completed', ended_at = now() "
		"WHERE business_id = $1::bigint AND status IN ('pending', 'running')",
		t->bid);
}

static void test_run_creation_limit_across_processes(void **state)
{
	tenant_t t, other;
	int64_t lead, lead2;
	at_resp_t r;
	int retry;

	(void)state;
	tenant_new(&t);
	tenant_new(&other);
	r = at_json(&fx.ctx, "POST", "/api/leads/import", t.admin_tok,
		    "{\"rows\":[{\"phone\":\"+14155550111\"}]}");
	AT_STATUS(r, 200);
	at_free(&r);
	r = at_json(&fx.ctx, "POST", "/api/leads/import", other.admin_tok,
		    "{\"rows\":[{\"phone\":\"+14155550112\"}]}");
	AT_STATUS(r, 200);
	at_free(&r);
	lead =
	    ITEST_I64(fx.owner, "SELECT max(id) FROM leads WHERE business_id = $1::bigint", t.bid);
	lead2 = ITEST_I64(fx.owner, "SELECT max(id) FROM leads WHERE business_id = $1::bigint",
			  other.bid);
	/* 2 a minute: one through each process, then both refuse the third */
	r = create_run(&fx.ctx, &t, lead);
	AT_STATUS(r, 201);
	at_free(&r);
	finish_runs(&t);
	r = create_run(&fx.ctx2, &t, lead);
	AT_STATUS(r, 201);
	at_free(&r);
	finish_runs(&t);
	r = create_run(&fx.ctx, &t, lead);
	AT_ERROR(r, 429, "rate_limited");
	retry = atoi(r.retry_after);
	assert_true(retry >= 1 && retry <= 60);
	assert_int_equal(at_int(&r, "error.retry_after"), retry);
	at_free(&r);
	r = create_run(&fx.ctx2, &t, lead);
	AT_ERROR(r, 429, "rate_limited");
	at_free(&r);
	assert_true(ITEST_I64(fx.owner,
			      "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint "
			      "AND tag = 'RATE_LIMIT' AND action = 'ratelimit.run_create'",
			      t.bid) == 2);
	/* another business is not affected */
	r = create_run(&fx.ctx2, &other, lead2);
	AT_STATUS(r, 201);
	at_free(&r);
	tenant_free(&t);
	tenant_free(&other);
}

static void test_lead_import_limit_and_override(void **state)
{
	tenant_t t;
	char uri[96];
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	for (int i = 0; i < 5; i++) {
		r = at_json(i % 2 ? &fx.ctx2 : &fx.ctx, "POST", "/api/leads/import", t.admin_tok,
			    "{\"rows\":[{\"phone\":\"+14155550121\"}]}");
		AT_STATUS(r, 200);
		at_free(&r);
	}
	r = at_json(&fx.ctx2, "POST", "/api/leads/import", t.admin_tok,
		    "{\"rows\":[{\"phone\":\"+14155550121\"}]}");
	AT_ERROR(r, 429, "rate_limited");
	assert_true(atoi(r.retry_after) >= 1);
	at_free(&r);
	/* a refused body (400) does not count: it never reached the limit */
	/* the platform raises this business's limit to 7 a minute: two more pass */
	snprintf(uri, sizeof(uri), "/api/admin/businesses/%lld/rate_limits", (long long)t.biz);
	r = at_json(&fx.ctx, "PUT", uri, fx.sys_tok,
		    "{\"rate_limits\":{\"lead_import\":{\"max_hits\":7,\"window_s\":60}}}");
	AT_STATUS(r, 200);
	at_free(&r);
	for (int i = 0; i < 2; i++) {
		r = at_json(&fx.ctx, "POST", "/api/leads/import", t.admin_tok,
			    "{\"rows\":[{\"phone\":\"+14155550121\"}]}");
		AT_STATUS(r, 200);
		at_free(&r);
	}
	r = at_json(&fx.ctx, "POST", "/api/leads/import", t.admin_tok,
		    "{\"rows\":[{\"phone\":\"+14155550121\"}]}");
	AT_ERROR(r, 429, "rate_limited");
	at_free(&r);
	/* unknown rules and silly values are refused; only the platform may set them */
	r = at_json(&fx.ctx, "PUT", uri, fx.sys_tok,
		    "{\"rate_limits\":{\"nope\":null,\"run_create\":{\"max_hits\":0,"
		    "\"window_s\":60}}}");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	r = at_json(&fx.ctx, "PUT", uri, t.owner_tok,
		    "{\"rate_limits\":{\"lead_import\":{\"max_hits\":99,\"window_s\":1}}}");
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	r = at_json(&fx.ctx, "GET", uri, fx.sys_tok, NULL);
	AT_STATUS(r, 200);
	assert_string_equal(at_str(&r, "rate_limits.1.name"), "lead_import");
	assert_int_equal(at_int(&r, "rate_limits.1.max_hits"), 7);
	assert_true(json_is_true(at_get(&r, "rate_limits.1.overridden")));
	at_free(&r);
	tenant_free(&t);
}

/* The window slides: a hit frees exactly when it leaves it. */
static void test_sliding_window(void **state)
{
	char subject[48];
	PGresult *r;

	(void)state;
	snprintf(subject, sizeof(subject), "itest-%d-%u", (int)getpid(), ++fx.seq);
	for (int i = 0; i < 3; i++) {
		r = ITEST_Q(
		    fx.owner,
		    "SELECT allowed, retry_after_s FROM rate_limit_take(NULL, 'flow_start', "
		    "$1, 2, 1)",
		    subject);
		assert_string_equal(PQgetvalue(r, 0, 0), i < 2 ? "t" : "f");
		if (i == 2)
			assert_string_equal(PQgetvalue(r, 0, 1), "1");
		PQclear(r);
	}
	usleep(1100 * 1000);
	r = ITEST_Q(fx.owner, "SELECT allowed FROM rate_limit_take(NULL, 'flow_start', $1, 2, 1)",
		    subject);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
}

static void test_failed_login_backoff(void **state)
{
	tenant_t t;
	char r1[64], *locked_body, *unknown_body;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	for (int i = 0; i < 5; i++) {
		r = login(t.owner_email, "not-the-password", NULL);
		AT_ERROR(r, 401, "invalid_credentials");
		at_free(&r);
	}
	/* locked now (1 s after the 5th failure): the right password is refused too */
	r = login(t.owner_email, ITEST_PASSWORD, rid(r1, sizeof(r1)));
	AT_ERROR(r, 401, "invalid_credentials");
	locked_body = json_dumps(r.json, JSON_COMPACT | JSON_SORT_KEYS);
	at_free(&r);
	FIELD_IS(r1, "auth.login_failed", "details->>'reason'", "locked");
	/* indistinguishable from an account that does not exist */
	r = login("no-such-account@example.test", ITEST_PASSWORD, NULL);
	unknown_body = json_dumps(r.json, JSON_COMPACT | JSON_SORT_KEYS);
	AT_ERROR(r, 401, "invalid_credentials");
	at_free(&r);
	assert_string_equal(locked_body, unknown_body);
	free(locked_body);
	free(unknown_body);
	/* a locked attempt is not counted; once the lock ends the password works */
	usleep(1200 * 1000);
	r = login(t.owner_email, ITEST_PASSWORD, NULL);
	AT_STATUS(r, 200);
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT failed_logins FROM users WHERE id = $1::bigint",
				   itest_i64s((char[24]){0}, 24, t.owner)),
			 0);
	/* the lock doubles with each failure after the 5th */
	for (int i = 0; i < 5; i++) {
		r = login(t.owner_email, "not-the-password", NULL);
		at_free(&r);
	}
	usleep(1200 * 1000);
	r = login(t.owner_email, "not-the-password", NULL); /* 6th: locked for 2 s */
	at_free(&r);
	assert_true(ITEST_I64(fx.owner,
			      "SELECT extract(epoch FROM login_locked_until - now())::int "
			      "FROM users WHERE id = $1::bigint",
			      itest_i64s((char[24]){0}, 24, t.owner)) >= 1);
	tenant_free(&t);
}

static int group_setup(void **state)
{
	(void)state;
	at_ctx_init(&fx.ctx, fx.secret);
	at_ctx_init(&fx.ctx2, fx.secret);
	fx.owner = itest_owner_pg();
	fx.sysadmin = itest_create_user(fx.owner, 0, "system_admin", NULL, NULL, 0);
	fx.sys_tok = at_token(&fx.ctx, fx.sysadmin);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(fx.sys_tok);
	PQfinish(fx.owner);
	at_ctx_free(&fx.ctx);
	at_ctx_free(&fx.ctx2);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login_success_and_failure),
	    cmocka_unit_test(test_refresh_reuse_and_logout),
	    cmocka_unit_test(test_role_pages_and_impersonation),
	    cmocka_unit_test(test_cross_tenant_kept_although_rolled_back),
	    cmocka_unit_test(test_app_role_cannot_rewrite_the_trail),
	    cmocka_unit_test(test_owners_see_their_own_trail),
	    cmocka_unit_test(test_retention_prune_and_partitions),
	    cmocka_unit_test(test_run_creation_limit_across_processes),
	    cmocka_unit_test(test_lead_import_limit_and_override),
	    cmocka_unit_test(test_sliding_window),
	    cmocka_unit_test(test_failed_login_backoff),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

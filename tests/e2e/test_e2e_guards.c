/*
 * test_e2e_guards.c - the guard matrix of the route table, seen from outside:
 * 401 without a token, 403 page_not_enabled / insufficient_role, 404 for an
 * unknown path, 405 with Allow, and the X-Business-Id rule for system_admins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "e2e.h"

static int64_t biz_full, biz_nosettings;
static e2e_user_t sysadmin, owner_full, admin_full, agent_full, owner_nosettings;

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz_full =
	    e2e_business_create("e2e-guards-full", "calls_outbound,whatsapp_flows,settings", NULL);
	biz_nosettings =
	    e2e_business_create("e2e-guards-nosettings", "calls_outbound,whatsapp_flows", NULL);
	e2e_user_create(&sysadmin, 0, "system_admin");
	e2e_user_create(&owner_full, biz_full, "owner");
	e2e_user_create(&admin_full, biz_full, "admin");
	e2e_user_create(&agent_full, biz_full, "agent");
	e2e_user_create(&owner_nosettings, biz_nosettings, "owner");
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&sysadmin);
	e2e_user_free(&owner_full);
	e2e_user_free(&admin_full);
	e2e_user_free(&agent_full);
	e2e_user_free(&owner_nosettings);
	return e2e_global_teardown(state);
}

typedef struct {
	const char *method;
	const char *path;
	const char *body; /* JSON text for body-carrying methods, NULL for none */
} route_t;

/* Every authenticated route of this issue; ids are filled in at run time. */
static e2e_resp_t send_route(const route_t *rt, const char *token, const char *const *hdrs)
{
	if (rt->body != NULL) {
		return e2e_req(rt->method, rt->path, token, "application/json", rt->body,
			       strlen(rt->body), hdrs);
	}
	return e2e_req(rt->method, rt->path, token, NULL, NULL, 0, hdrs);
}

static void expect_unauthenticated(const e2e_resp_t *r)
{
	const char *www;

	E2E_ERROR(*r, 401, "unauthenticated");
	www = e2e_header(r, "WWW-Authenticate");
	E2E_TRUE(*r, www != NULL && strncasecmp(www, "Bearer", 6) == 0,
		 "401 without a WWW-Authenticate: Bearer header");
}

static void test_401_without_token_everywhere(void **state)
{
	(void)state;
	char user_path[64], pages_path[96];

	snprintf(user_path, sizeof(user_path), "/api/users/%lld", (long long)agent_full.id);
	snprintf(pages_path, sizeof(pages_path), "/api/admin/businesses/%lld/pages",
		 (long long)biz_full);
	const route_t routes[] = {
	    {"GET", "/api/me", NULL},
	    {"POST", "/api/auth/logout", NULL},
	    {"GET", "/api/users", NULL},
	    {"POST", "/api/users",
	     "{\"email\":\"x@e2e.example.com\",\"name\":\"x\",\"password\":\"" E2E_PASSWORD
	     "\",\"role\":\"agent\"}"},
	    {"PATCH", user_path, "{\"role\":\"admin\"}"},
	    {"GET", "/api/admin/businesses", NULL},
	    {"POST", "/api/admin/businesses", "{\"name\":\"e2e guard\"}"},
	    {"PATCH", pages_path, "{\"enabled_pages\":[]}"},
	    {"GET", "/api/admin/audit", NULL},
	    {"GET", "/api/audit", NULL},
	};
	static const char *const bad_auth[][2] = {
	    {NULL, NULL},
	    {"Authorization: Bearer not.a.jwt", NULL},
	    {"Authorization: Bearer", NULL},
	    {"Authorization: Basic YWRtaW46YWRtaW4=", NULL},
	    {"Authorization: bearer", NULL},
	};

	e2e_resp_t before = e2e_get("/api/me", agent_full.token, NULL);
	E2E_STATUS(before, 200);
	char *pages_before = json_dumps(e2e_jget(before.json, "pages"), JSON_COMPACT);
	e2e_resp_free(&before);

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		for (size_t k = 0; k < sizeof(bad_auth) / sizeof(bad_auth[0]); k++) {
			e2e_resp_t r = send_route(&routes[i], NULL, bad_auth[k]);
			expect_unauthenticated(&r);
			e2e_resp_free(&r);
		}
	}
	/* Nothing happened: the agent is still an agent, the pages unchanged. */
	e2e_resp_t m = e2e_get("/api/me", agent_full.token, NULL);
	E2E_STATUS(m, 200);
	E2E_JSTR_EQ(m, "user.role", "agent");
	char *pages_after = json_dumps(e2e_jget(m.json, "pages"), JSON_COMPACT);
	E2E_TRUE(m,
		 pages_before != NULL && pages_after != NULL &&
		     strcmp(pages_before, pages_after) == 0,
		 "pages changed");
	free(pages_before);
	free(pages_after);
	e2e_resp_free(&m);
}

static void test_403_page_not_enabled(void **state)
{
	(void)state;
	e2e_resp_t r = e2e_get("/api/audit", owner_nosettings.token, NULL);

	E2E_FORBIDDEN(r, "page_not_enabled");
	e2e_resp_free(&r);
	/* The same owner with the page enabled elsewhere is fine: it is the page, not the role. */
	r = e2e_get("/api/audit", owner_full.token, NULL);
	E2E_LIST(r, 1, -1);
	e2e_resp_free(&r);
}

static void test_403_insufficient_role(void **state)
{
	(void)state;
	e2e_resp_t r;
	char *email = e2e_unique_email("e2e-guard");
	char body[512];

	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"name\":\"G\",\"password\":\"%s\",\"role\":\"agent\"}", email,
		 E2E_PASSWORD);
	r = e2e_raw_json("POST", "/api/users", agent_full.token, body);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/users", admin_full.token, body);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_get("/api/users", agent_full.token, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	/* `settings` is enabled for this tenant but needs an owner. */
	r = e2e_get("/api/audit", admin_full.token, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_get("/api/admin/businesses", owner_full.token, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = e2e_get("/api/admin/audit", owner_full.token, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	free(email);
}

static void test_404_unknown_path(void **state)
{
	(void)state;
	static const char *const paths[] = {"/api/does-not-exist", "/api/users/1/nope",
					    "/api/admin",	   "/api/me/extra",
					    "/api/users/abc",	   NULL};

	for (size_t i = 0; paths[i] != NULL; i++) {
		e2e_resp_t r = e2e_get(paths[i], owner_full.token, NULL);
		E2E_ERROR(r, 404, "not_found");
		E2E_JSON_HEADERS(r);
		e2e_resp_free(&r);
	}
}

static void test_405_wrong_method(void **state)
{
	(void)state;
	static const struct {
		const char *method;
		const char *path;
		const char *allowed;
	} cases[] = {
	    {"DELETE", "/api/me", "GET"},
	    {"POST", "/api/me", "GET"},
	    {"PUT", "/api/health", "GET"},
	    {"GET", "/api/auth/login", "POST"},
	    {"DELETE", "/api/auth/refresh", "POST"},
	    {"DELETE", "/api/users", "GET"},
	    {"GET", "/api/auth/logout", "POST"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e2e_resp_t r =
		    e2e_req(cases[i].method, cases[i].path, owner_full.token, NULL, NULL, 0, NULL);
		const char *allow;

		E2E_ERROR(r, 405, "method_not_allowed");
		allow = e2e_header(&r, "Allow");
		E2E_TRUE(r, allow != NULL && strstr(allow, cases[i].allowed) != NULL,
			 "Allow does not list %s", cases[i].allowed);
		E2E_TRUE(r, strstr(allow, cases[i].method) == NULL, "Allow lists %s",
			 cases[i].method);
		e2e_resp_free(&r);
	}
	/* A path with two methods lists both. */
	e2e_resp_t r =
	    e2e_req("DELETE", "/api/admin/businesses", sysadmin.token, NULL, NULL, 0, NULL);
	E2E_ERROR(r, 405, "method_not_allowed");
	E2E_TRUE(r,
		 e2e_header(&r, "Allow") && strstr(e2e_header(&r, "Allow"), "GET") &&
		     strstr(e2e_header(&r, "Allow"), "POST"),
		 "Allow does not list GET and POST");
	e2e_resp_free(&r);
}

static void test_system_admin_needs_business_on_tenant_routes(void **state)
{
	(void)state;
	e2e_resp_t r;
	char *email = e2e_unique_email("e2e-guard-sa");
	char body[512];

	r = e2e_get("/api/users", sysadmin.token, NULL);
	E2E_ERROR(r, 400, "invalid_input");
	e2e_resp_free(&r);

	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"name\":\"G\",\"password\":\"%s\",\"role\":\"agent\"}", email,
		 E2E_PASSWORD);
	r = e2e_raw_json("POST", "/api/users", sysadmin.token, body);
	E2E_ERROR(r, 400, "invalid_input");
	e2e_resp_free(&r);

	/* System routes need no tenant. */
	r = e2e_get("/api/admin/businesses", sysadmin.token, NULL);
	E2E_LIST(r, 1, -1);
	e2e_resp_free(&r);
	free(email);
}

/*
 * The application's own limit, through nginx to the four API processes: a
 * business with the default lead-import limit (5 a minute) gets its 6th import
 * refused with 429 and Retry-After, whichever process answers; the platform can
 * then raise it for that business alone.
 */
static void test_app_rate_limit_across_processes(void **state)
{
	(void)state;
	int64_t biz = e2e_business_create("e2e-guards-limit", "calls_outbound", NULL);
	char bid[32], path[96];
	const char *body = "{\"rows\":[{\"phone\":\"+14155550199\"}]}";
	e2e_user_t admin;
	e2e_resp_t r;

	snprintf(bid, sizeof(bid), "%lld", (long long)biz);
	const char *reset[] = {"limits", "set", "--business", bid, "lead_import=default", NULL};
	free(e2e_cli(reset));
	e2e_user_create(&admin, biz, "admin");
	for (int i = 0; i < 5; i++) {
		r = e2e_raw_json("POST", "/api/leads/import", admin.token, body);
		E2E_STATUS(r, 200);
		e2e_resp_free(&r);
	}
	r = e2e_raw_json("POST", "/api/leads/import", admin.token, body);
	E2E_ERROR(r, 429, "rate_limited");
	E2E_TRUE(r,
		 e2e_header(&r, "Retry-After") != NULL && atoi(e2e_header(&r, "Retry-After")) >= 1,
		 "Retry-After missing");
	e2e_resp_free(&r);
	snprintf(path, sizeof(path), "/api/admin/businesses/%s/rate_limits", bid);
	r = e2e_raw_json("PUT", path, sysadmin.token,
			 "{\"rate_limits\":{\"lead_import\":{\"max_hits\":6,\"window_s\":60}}}");
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/leads/import", admin.token, body);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	e2e_user_free(&admin);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_401_without_token_everywhere),
	    cmocka_unit_test(test_403_page_not_enabled),
	    cmocka_unit_test(test_403_insufficient_role),
	    cmocka_unit_test(test_404_unknown_path),
	    cmocka_unit_test(test_405_wrong_method),
	    cmocka_unit_test(test_system_admin_needs_business_on_tenant_routes),
	    cmocka_unit_test(test_app_rate_limit_across_processes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
